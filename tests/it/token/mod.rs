//! The API-token life cycle (SPEC §12): `token create|list|rotate|revoke|
//! prune` against the real OpenBao and the stand-in's account API.
//!
//! Every run here also checks that no API token value — of any token the
//! stand-in ever issued — nor the account token or password reached stdout
//! or stderr.

mod audit;
mod create;
mod doctor;
mod flaky_vault;
mod hygiene;
mod list;
mod login;
mod revoke;
mod rotate;

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use seatable_standin::{Base, random_hex};
use serde_json::json;

use crate::support::{Case, Out, run_with_input, shared};

/// What the identity running `token` commands may do: read and write the
/// API tokens' secrets (and their metadata), read the account token.
pub const MANAGER_POLICY: &str = "seatable-token-manager";
const MANAGER_HCL: &str = r#"
path "secret/data/it/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/it/*" { capabilities = ["read"] }
path "kv1/*" { capabilities = ["read"] }
path "secret/data/seatable-cred/cache/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/seatable-cred/cache/*" { capabilities = ["read", "list"] }
"#;

pub const EMAIL: &str = "ops@example.com";
pub const PASSWORD: &str = "account-password-horse-42";

fn manager_policy() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        shared().bao.api(
            "PUT",
            &format!("sys/policies/acl/{MANAGER_POLICY}"),
            Some(json!({ "policy": MANAGER_HCL })),
        );
    });
}

/// A [`Case`] whose Vault token may write the secret, with an account
/// token in Vault at `SEATABLE_CRED_ACCOUNT_SECRET`.
pub struct TokenCase {
    pub case: Case,
    pub account_token: String,
}

impl TokenCase {
    pub fn new() -> TokenCase {
        let mut case = Case::new();
        manager_policy();
        let vault_token = shared().bao.token(&[MANAGER_POLICY], "1h");
        case.secrets.push(vault_token.clone());
        case.set("VAULT_TOKEN", vault_token);
        let account_token = case.standin.add_account(EMAIL, PASSWORD, None);
        let id = random_hex(6);
        shared().bao.kv2_put(
            "secret",
            &format!("it/account-{id}"),
            json!({ "account_token": account_token }),
        );
        case.set(
            "SEATABLE_CRED_ACCOUNT_SECRET",
            format!("secret/it/account-{id}"),
        );
        case.secrets.push(account_token.clone());
        case.secrets.push(PASSWORD.to_string());
        TokenCase {
            case,
            account_token,
        }
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.case.set(name, value);
        self
    }

    pub fn unset(&mut self, name: &str) -> &mut Self {
        self.case.unset(name);
        self
    }

    /// The helper with this case's environment, in a session of its own:
    /// no controlling terminal, so that nothing can wait for a prompt.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.case.command(args);
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Out {
        let out = run_with_input(self.command(args), "");
        self.check(&out);
        out
    }

    /// Starts the helper in the background (its output piped).
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn helper")
    }

    /// Waits for a spawned helper (at most two minutes).
    pub fn finish(&self, child: Child) -> Out {
        let output = crate::support::wait_bounded(child, Duration::from_secs(120));
        let out = Out {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        self.check(&out);
        out
    }

    /// No API token value the stand-in ever issued, and no secret of the
    /// case, on stdout or stderr.
    #[track_caller]
    pub fn check(&self, out: &Out) {
        self.case.assert_no_secrets(out);
        let mut secrets = self.case.standin.issued_api_tokens();
        secrets.extend(self.case.secrets.iter().cloned());
        for secret in &secrets {
            assert!(
                !out.stdout.contains(secret.as_str()) && !out.stderr.contains(secret.as_str()),
                "a secret in the output:\nstdout: {}\nstderr: {}",
                out.stdout,
                out.stderr
            );
        }
    }

    /// The base's API tokens in the stand-in, by app name.
    pub fn tokens(&self) -> Vec<Base> {
        self.case.standin.api_tokens(&self.case.base.dtable_uuid)
    }

    pub fn app_names(&self) -> Vec<String> {
        self.tokens().into_iter().map(|b| b.app_name).collect()
    }

    /// The token of app `name` in the stand-in.
    pub fn token_of(&self, name: &str) -> Option<Base> {
        self.tokens().into_iter().find(|b| b.app_name == name)
    }

    /// Registers another API token for the case's base.
    pub fn add_token(&self, app_name: &str, permission: &str) -> Base {
        self.case.standin.add_base(Base {
            api_token: random_hex(20),
            app_name: app_name.to_string(),
            permission: permission.to_string(),
            generated_at: None,
            last_access: None,
            ..self.case.base.clone()
        })
    }

    /// Whether SeaTable's exchange accepts `api_token`.
    pub fn exchange_accepts(&self, api_token: &str) -> bool {
        exchange_status(&self.case.standin.url, api_token) == 200
    }
}

/// The current version and `api_token` of a KV v2 secret `secret/…`.
pub fn vault_read(secret: &str) -> (u64, Option<String>) {
    let path = secret.strip_prefix("secret/").expect("a secret/ path");
    let meta = shared()
        .bao
        .api_as(
            crate::support::bao::ROOT_TOKEN,
            "GET",
            &format!("secret/metadata/{path}"),
            None,
        )
        .ok();
    let version = meta
        .as_ref()
        .and_then(|m| m["data"]["current_version"].as_u64())
        .unwrap_or(0);
    let data = shared()
        .bao
        .api_as(
            crate::support::bao::ROOT_TOKEN,
            "GET",
            &format!("secret/data/{path}"),
            None,
        )
        .ok();
    let token = data
        .as_ref()
        .and_then(|d| d["data"]["data"]["api_token"].as_str())
        .map(str::to_string);
    (version, token)
}

/// The status SeaTable's exchange answers for `api_token`.
pub fn exchange_status(url: &str, api_token: &str) -> u16 {
    crate::support::install_crypto();
    reqwest::blocking::Client::builder()
        .tls_certs_only(Vec::new())
        .build()
        .unwrap()
        .get(format!("{url}/api/v2.1/dtable/app-access-token/"))
        .header("Authorization", format!("Token {api_token}"))
        .timeout(Duration::from_secs(30))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// Polls `condition` until it holds, failing the test after a minute.
#[track_caller]
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh, unwritten secret path under `secret/it/`.
pub fn fresh_secret() -> String {
    format!("secret/it/new-{}", random_hex(6))
}

/// Whether `name` is `<family>-<14 digits>`.
pub fn is_successor_of(name: &str, family: &str) -> bool {
    name.strip_prefix(family)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|stamp| stamp.len() == 14 && stamp.bytes().all(|b| b.is_ascii_digit()))
}
