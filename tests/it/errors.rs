//! Exit codes of SPEC §8 with one clear line, and no secret on stderr.

use serde_json::json;

use crate::support::{Case, shared};

#[test]
fn usage_errors_exit_2() {
    let mut case = Case::new();
    case.run(&["get", "--no-such-flag"])
        .fails(2, "--no-such-flag");
    case.run(&["get", "-o", "yaml"]).fails(2, "yaml");
    case.run(&["get", "--refresh-before", "5x"]).fails(2, "5x");
    let config = case.dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[profiles.default]\nserver_url = \"https://x\"\nsecrte = \"typo\"\n",
    )
    .unwrap();
    case.run(&["--config", config.to_str().unwrap(), "get"])
        .fails(2, "secrte");
    std::fs::write(&config, "[profiles.default\n").unwrap();
    case.run(&["--config", config.to_str().unwrap(), "get"])
        .fails(2, "bad.toml");
    case.set("SEATABLE_SERVER_URL", "not a url");
    case.run(&["get"]).fails(2, "server_url");
    case.unset("SEATABLE_SERVER_URL");
    case.run(&["get"]).fails(2, "SEATABLE_SERVER_URL");
    assert_eq!(case.standin.stats().exchange_requests, 0);
}

#[test]
fn no_backtrace_even_when_asked_for() {
    let mut case = Case::new();
    case.set("RUST_BACKTRACE", "full")
        .set("RUST_LIB_BACKTRACE", "1");
    case.set("SEATABLE_CRED_SECRET", "secret/it/does-not-exist");
    let out = case
        .run(&["get"])
        .fails(3, "no secret at secret/it/does-not-exist");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(!out.stderr.contains("backtrace") && !out.stderr.contains("stack"));
}

#[test]
fn vault_refusals_exit_3() {
    let shared = shared();
    let mut case = Case::new();
    // A token without the reader policy.
    let weak = shared.bao.token(&["default"], "1h");
    case.secrets.push(weak.clone());
    case.set("VAULT_TOKEN", weak);
    case.run(&["get", "-vvvv"]).fails(3, "403");
    // An invalid token.
    case.set("VAULT_TOKEN", "s.invalid-token-value");
    case.secrets.push("s.invalid-token-value".into());
    case.run(&["get", "-vvvv"]).fails(3, "Vault");
    // No token at all.
    case.unset("VAULT_TOKEN");
    case.run(&["get"]).fails(2, "VAULT_TOKEN");
}

#[test]
fn missing_secret_field_or_wrong_type_exit_3() {
    let shared = shared();
    let mut case = Case::new();
    let token = case.env["VAULT_TOKEN"].clone();
    let _ = token;
    case.set("SEATABLE_CRED_FIELD", "nope");
    let out = case.run(&["get", "-vvvv"]).fails(3, "no field 'nope'");
    assert!(
        out.stderr.contains("api_token"),
        "names the fields that exist"
    );
    let id = seatable_standin::random_hex(5);
    shared
        .bao
        .kv2_put("secret", &format!("it/{id}"), json!({"api_token": 12345}));
    case.set("SEATABLE_CRED_SECRET", format!("secret/it/{id}"))
        .unset("SEATABLE_CRED_FIELD");
    case.run(&["get"]).fails(3, "not a string");
    shared
        .bao
        .kv2_put("secret", &format!("it/{id}"), json!({"api_token": ""}));
    case.run(&["get"]).fails(3, "empty");
}

#[test]
fn seatable_rejection_exits_4_and_drops_the_entry() {
    let case = Case::new();
    case.run(&["get", "-o", "token"]).ok();
    let entries = case.entry_files().len();
    assert_eq!(entries, 1);
    // The base is deleted: 404 is permanent; --refresh reaches the server.
    case.standin
        .update_base(&case.base.api_token, |b| b.gone = true);
    let requests = case.standin.stats().exchange_requests;
    case.run(&["get", "--refresh", "-vvvv"]).fails(4, "404");
    assert_eq!(
        case.standin.stats().exchange_requests,
        requests + 1,
        "never retried"
    );
    let entries = case.entry_files().len();
    assert_eq!(entries, 0, "a permanent rejection drops the cached entry");
}

#[test]
fn invalid_api_token_exits_4() {
    let shared = shared();
    let mut case = Case::new();
    let id = seatable_standin::random_hex(5);
    let bogus = "0123456789abcdef0123456789abcdef01234567";
    case.secrets.push(bogus.into());
    shared
        .bao
        .kv2_put("secret", &format!("it/{id}"), json!({"api_token": bogus}));
    case.set("SEATABLE_CRED_SECRET", format!("secret/it/{id}"));
    case.run(&["get", "-vvvv"])
        .fails(4, "403 Permission denied.");
    assert_eq!(case.standin.stats().exchange_requests, 1);
}

#[test]
fn unreachable_services_exit_5() {
    let mut case = Case::new();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    case.set("SEATABLE_CRED_TIMEOUT", "3s");
    case.set("SEATABLE_SERVER_URL", format!("http://127.0.0.1:{closed}"));
    case.run(&["get", "-vvvv"]).fails(5, "SeaTable");
    case.set("SEATABLE_SERVER_URL", case.standin.url.clone());
    case.set("VAULT_ADDR", format!("http://127.0.0.1:{closed}"));
    case.run(&["get", "-vvvv"]).fails(5, "Vault");
}

#[test]
fn seatable_transient_failures_are_retried() {
    use seatable_standin::Fault;
    let case = Case::new();
    case.standin.push_faults([
        Fault::Status { code: 500 },
        Fault::RateLimited {
            retry_after: Some(1),
            ratelimit_reset: None,
        },
        Fault::Drop,
        Fault::Html,
    ]);
    let out = case.run(&["get", "-o", "token", "-v"]).ok();
    assert!(!out.stdout.is_empty());
    assert_eq!(case.standin.stats().exchange_requests, 5);
    assert_eq!(case.standin.exchanges(), 1);
}

#[test]
fn seatable_failing_beyond_the_deadline_exits_5() {
    use seatable_standin::Fault;
    let mut case = Case::new();
    case.set("SEATABLE_CRED_TIMEOUT", "2s");
    case.standin
        .push_faults(std::iter::repeat_n(Fault::Status { code: 503 }, 200));
    let started = std::time::Instant::now();
    case.run(&["get"]).fails(5, "503");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "bounded by --timeout"
    );
    case.standin.clear_faults();
    case.standin.push_faults([Fault::Slow { millis: 5000 }]);
    case.run(&["get"]).fails(5, "");
    case.standin.clear_faults();
    case.standin
        .push_faults(std::iter::repeat_n(Fault::Oversize, 50));
    case.set("SEATABLE_CRED_TIMEOUT", "1s");
    case.run(&["get"]).fails(5, "larger than");
}
