//! Vault as deployments run it (README "Behind a Vault Agent or Proxy"):
//! the helper with no Vault token of its own behind a real `bao proxy` that
//! adds its auto-auth token (`--auth none`), run with README's own
//! configuration block ([`BaoAgent`]).

use seatable_standin::random_hex;
use serde_json::json;
use std::path::Path;

use crate::support::agent::Agent;
use crate::support::bao_agent::BaoAgent;
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
