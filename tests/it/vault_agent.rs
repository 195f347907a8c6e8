//! Vault as deployments run it (docs/configuration.md, "Behind a Vault Agent or Proxy"):
//! the helper with no Vault token of its own behind a real `bao proxy` that
//! adds its auto-auth token (`--auth none`), and with the token a real `bao
//! agent` keeps in its sink file (`vault_token_file`) — replaced by the
//! agent after the old one was revoked. Proxy and agent run the page's own
//! configuration blocks ([`BaoAgent`]).

use std::path::Path;
use std::time::Duration;

use seatable_standin::{Fault, random_hex};
use serde_json::json;

use crate::support::agent::{Agent, wait_for};
use crate::support::bao::{READER_POLICY, ROOT_TOKEN};
use crate::support::bao_agent::BaoAgent;
use crate::support::vault_faults::VaultFaults;
use crate::support::{Case, shared};
use crate::token::{MANAGER_POLICY, TokenCase};

/// A new AppRole role with these policies and token TTLs: its name, its
/// role-id and a secret-id that logs in as often as asked.
fn approle(policies: &[&str], ttl: &str) -> (String, String, String) {
    let bao = &shared().bao;
    let name = format!("deployed-{}", random_hex(4));
    bao.api(
        "POST",
        &format!("auth/approle/role/{name}"),
        Some(json!({"token_policies": policies, "token_ttl": ttl, "token_max_ttl": "2h"})),
    );
    let role_id =
        bao.api("GET", &format!("auth/approle/role/{name}/role-id"), None)["data"]["role_id"]
            .as_str()
            .unwrap()
            .to_string();
    let secret_id =
        bao.api("POST", &format!("auth/approle/role/{name}/secret-id"), None)["data"]["secret_id"]
            .as_str()
            .unwrap()
            .to_string();
    (name, role_id, secret_id)
}

/// Whether OpenBao refuses `token` now (revoked or expired).
fn refused(token: &str) -> bool {
    shared()
        .bao
        .api_as(token, "GET", "auth/token/lookup-self", None)
        .is_err_and(|e| e.starts_with("403"))
}

/// Revokes `token` as an operator would.
fn revoke(token: &str) {
    shared()
        .bao
        .api_as(
            ROOT_TOKEN,
            "POST",
            "auth/token/revoke",
            Some(json!({ "token": token })),
        )
        .unwrap();
    assert!(refused(token), "OpenBao refuses the revoked token");
}

/// The one line of `doctor`'s report for `step`.
fn line<'a>(report: &'a str, step: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(step)))
        .unwrap_or_else(|| panic!("no {step} line: {report}"))
}

/// An AppRole auto-auth proxy with `use_auto_auth_token = "force"`, and no
/// Vault token in the helper's environment or home: `get`, `doctor`,
/// `token list`, the shared tier and `serve` all work through it, with the
/// proxy's identity — and `doctor` says which proxy answered and that the
/// token is the proxy's.
#[test]
fn behind_a_bao_proxy_every_command_works_with_no_token_of_its_own() {
    let mut t = TokenCase::new();
    let (role, role_id, secret_id) = approle(&[MANAGER_POLICY], "1h");
    t.case.secrets.push(secret_id.clone());
    let proxy = BaoAgent::proxy(&shared().bao.addr, &role_id, &secret_id);
    let url = proxy.url.clone().unwrap();
    t.unset("VAULT_TOKEN")
        .set("VAULT_ADDR", url.as_str())
        .set("SEATABLE_CRED_AUTH", "none");
    let home = Path::new(&t.case.env["HOME"]);
    assert!(!home.join(".vault-token").exists());

    // get, cold: the API token came through the proxy (at full verbosity:
    // no secret on stderr).
    let token = t.run(&["get", "-o", "token", "-vvvv"]).ok().stdout;
    assert!(
        t.case
            .standin
            .accepts(token.trim(), &t.case.base.dtable_uuid)
    );
    assert_eq!(t.case.standin.exchanges(), 1);

    // doctor: the proxy, and whose token.
    let report = t.run(&["doctor"]).ok().stdout;
    let login = line(&report, "login");
    assert!(
        login.starts_with("ok")
            && login.contains(&format!(
                "auth none: the Vault Proxy or Agent at {url} answered with its own token: approle, role {role}; policies "
            ))
            && login.contains(MANAGER_POLICY),
        "{report}"
    );
    assert!(line(&report, "secret").starts_with("ok"), "{report}");

    // init: the login check says the same; the profile says auth = "none".
    let out = t.run(&["init", "--yes", "-v", "-p", "proxied"]).ok();
    assert!(
        out.stderr.contains(&format!(
            "ok    login     auth none: the Vault Proxy or Agent at {url} answered with its own token: approle, role {role}"
        )),
        "{}",
        out.stderr
    );
    let config = Path::new(&t.case.env["XDG_CONFIG_HOME"]).join("seatable-cred/config.toml");
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(
        written.contains(&format!("vault_addr = \"{url}\""))
            && written.contains("auth = \"none\"\n"),
        "{written}"
    );
    let mut bare = t.case.on_another_host("proxied-profile");
    for name in [
        "VAULT_ADDR",
        "SEATABLE_CRED_AUTH",
        "SEATABLE_SERVER_URL",
        "SEATABLE_CRED_SECRET",
    ] {
        bare.unset(name);
    }
    bare.run(&["get", "-p", "proxied", "--refresh"]).ok();

    // A token command.
    let list = t.run(&["token", "list", "-o", "json"]).ok().json();
    let mine = list["api_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["app_name"] == "seatable-cred")
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(mine["in_vault"], true, "{list}");

    // The shared tier: one host exchanges, another reads its entry.
    let path = format!("secret/seatable-cred/cache/{}", random_hex(4));
    let host = |name: &str| {
        let mut host = t.case.on_another_host(name);
        host.set("SEATABLE_CRED_CACHE", "vault")
            .set("SEATABLE_CRED_SHARED_CACHE", path.as_str());
        host
    };
    let (a, b) = (host("proxied-a"), host("proxied-b"));
    let before = t.case.standin.exchanges();
    let first = a.run(&["get", "-o", "json", "--refresh"]).ok().json();
    let second = b.run(&["get", "-o", "json"]).ok().json();
    assert_eq!(second["cached"], true, "{second}");
    assert_eq!(second["token"], first["token"]);
    assert_eq!(t.case.standin.exchanges(), before + 1);
    let entries = shared().bao.api(
        "LIST",
        &format!("secret/metadata/{}", path.trim_start_matches("secret/")),
        None,
    );
    assert_eq!(entries["data"]["keys"].as_array().unwrap().len(), 1);

    // serve, on a host of its own (an empty cache): its first refresh
    // reads the API token through the proxy.
    let served = t.case.on_another_host("proxied-serve");
    let before = t.case.standin.exchanges();
    let agent = Agent::start(&served, &[]);
    let answer = agent.exchange();
    assert!(answer["access_token"].is_string(), "{answer}");
    assert_eq!(t.case.standin.exchanges(), before + 1);
    let log = agent.stderr();
    for secret in &t.case.secrets {
        assert!(!log.contains(secret.as_str()), "a secret in serve's log");
    }
}

/// `--auth none` pointed at Vault itself: nothing adds a token, and both
/// `doctor` and `get` say so rather than blame a policy alone.
#[test]
fn auth_none_at_vault_itself_says_that_no_proxy_added_a_token() {
    let mut case = Case::new();
    case.unset("VAULT_TOKEN").set("SEATABLE_CRED_AUTH", "none");
    let out = case.run(&["doctor"]);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let login = line(&out.stdout, "login");
    assert!(
        login.starts_with("FAIL")
            && login.contains("answered lookup-self without anyone's token (403)")
            && login.contains("--auth none sends none"),
        "{}",
        out.stdout
    );
    case.run(&["get"]).fails(3, "--auth none sends none");
}

/// A real `bao agent` keeps its token in a sink file. The operator revokes
/// it; the agent logs in again and replaces the file; the next `get
/// --refresh` — and `serve`'s next refresh — read the new token, never the
/// revoked one.
#[test]
fn an_agents_sink_replaced_after_a_revocation_is_read_again() {
    let mut case = Case::new();
    // Short-lived, renewable tokens: the agent renews every few seconds,
    // so it notices the revocation soon and logs in again.
    let (_, role_id, secret_id) = approle(&[READER_POLICY], "4s");
    case.secrets.push(secret_id.clone());
    let agent = BaoAgent::agent(&shared().bao.addr, &role_id, &secret_id);
    let sink = agent.sink_path().display().to_string();
    case.unset("VAULT_TOKEN")
        .set("SEATABLE_CRED_VAULT_TOKEN_FILE", sink.as_str());
    let old = agent.sink_token();
    case.secrets.push(old.clone());
    case.run(&["get", "-o", "token"]).ok();
    let mut served = case.on_another_host("sink-serve");
    served.secrets.push(old.clone());
    let serve = Agent::start(&served, &[]);
    let session = serve.exchange()["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    // init takes the file and writes its path, never the token.
    let out = case.run(&["init", "--yes", "-v", "-p", "sink"]).ok();
    assert!(
        out.stderr.contains(&format!(
            "ok    login     token auth, from {sink} (set by SEATABLE_CRED_VAULT_TOKEN_FILE)"
        )),
        "{}",
        out.stderr
    );
    let config = Path::new(&case.env["XDG_CONFIG_HOME"]).join("seatable-cred/config.toml");
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(
        written.contains(&format!(
            "auth = \"token\"\nvault_token_file = \"{sink}\"\n"
        )),
        "{written}"
    );
    assert!(!written.contains(old.as_str()));

    revoke(&old);
    wait_for(
        "the agent replacing its revoked token",
        Duration::from_secs(60),
        || agent.sink_token() != old,
    );
    let new = agent.sink_token();
    case.secrets.push(new.clone());
    let before = case.standin.exchanges();
    let token = case
        .run(&["get", "--refresh", "-o", "token", "-vvvv"])
        .ok()
        .stdout;
    assert!(case.standin.accepts(token.trim(), &case.base.dtable_uuid));
    assert_eq!(case.standin.exchanges(), before + 1);
    // So does the profile init wrote, with nothing else set.
    case.unset("SEATABLE_CRED_VAULT_TOKEN_FILE");
    case.run(&["get", "-p", "sink", "--refresh"]).ok();

    // serve: SeaTable says the base token expired; the refresh it forces
    // reads the sink again.
    let rows = format!(
        "/api-gateway/api/v2/dtables/{}/rows/?table_name=Table1",
        case.base.dtable_uuid
    );
    let before = case.standin.exchanges();
    case.standin.push_gateway_faults([Fault::TokenExpired]);
    let (status, body) = serve.get(&rows, &session);
    assert_eq!(status, 200, "{body}\n{}", serve.stderr());
    assert_eq!(case.standin.exchanges(), before + 1, "one refresh");
    let log = serve.stderr();
    for secret in [&old, &new, &secret_id] {
        assert!(!log.contains(secret.as_str()), "a secret in serve's log");
    }
}

/// The agent replaces its token in the middle of a call: `get` has read the
/// sink, its first request to Vault is held on the way, the operator
/// revokes that token and the agent writes a new one. Vault refuses the
/// old token; the helper sees that the file changed since it read it and
/// reads it again, instead of failing.
#[test]
fn a_token_replaced_in_the_middle_of_a_call_is_read_again() {
    let mut case = Case::new();
    let (_, role_id, secret_id) = approle(&[READER_POLICY], "4s");
    case.secrets.push(secret_id.clone());
    let agent = BaoAgent::agent(&shared().bao.addr, &role_id, &secret_id);
    let old = agent.sink_token();
    case.secrets.push(old.clone());
    let vault = VaultFaults::start(&shared().bao.addr);
    case.unset("VAULT_TOKEN")
        .set("VAULT_ADDR", vault.url.as_str())
        .set(
            "SEATABLE_CRED_VAULT_TOKEN_FILE",
            agent.sink_path().display().to_string(),
        )
        .set("SEATABLE_CRED_TIMEOUT", "90s")
        .set("SEATABLE_CRED_LOG", "info");
    let gate = vault.hold_next();
    let get = case
        .command(&["get", "-o", "token"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    gate.wait_arrived(Duration::from_secs(60));
    revoke(&old);
    wait_for(
        "the agent replacing its revoked token",
        Duration::from_secs(60),
        || agent.sink_token() != old,
    );
    case.secrets.push(agent.sink_token());
    gate.release();
    let out = crate::support::wait_bounded(get, Duration::from_secs(120));
    let out = crate::support::Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    case.assert_no_secrets(&out);
    let out = out.ok();
    assert!(
        case.standin
            .accepts(out.stdout.trim(), &case.base.dtable_uuid)
    );
    assert!(
        out.stderr
            .contains("the Vault token file has changed since its token was read"),
        "{}",
        out.stderr
    );
}
