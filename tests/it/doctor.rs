//! `doctor`: one line per step, what to fix, the exit code of the first
//! failure — and never a secret, on stdout or stderr.

use crate::support::{Case, Out};

fn doctor(case: &Case) -> Out {
    let out = case.run(&["doctor", "--timeout", "3s"]);
    for secret in &case.secrets {
        assert!(
            !out.stdout.contains(secret.as_str()),
            "a secret in doctor's report: {}",
            out.stdout
        );
    }
    assert!(
        !out.stdout.contains("eyJ"),
        "no token in doctor's report: {}",
        out.stdout
    );
    out
}

/// The mark of a step: `ok`, `warn`, `FAIL` or `skip`.
fn mark<'a>(out: &'a Out, step: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(step))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {step} line: {}", out.stdout))
}

#[test]
fn all_steps_pass() {
    let case = Case::new();
    let out = doctor(&case);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    for step in [
        "config", "cache", "vault", "login", "secret", "seatable", "exchange", "clock",
    ] {
        assert_eq!(mark(&out, step), "ok", "{}", out.stdout);
    }
    assert_eq!(out.stdout.lines().count(), 8);
    assert!(out.stdout.contains("API token accepted"));
    // The token doctor obtained was cached: the next doctor uses it.
    let again = doctor(&case);
    assert!(again.stdout.contains("cached token"), "{}", again.stdout);
    assert_eq!(case.standin.exchanges(), 1);
}

#[test]
fn failures_name_the_step_and_set_the_exit_code() {
    let mut case = Case::new();
    case.set("SEATABLE_CRED_FIELD", "nope");
    let out = doctor(&case);
    assert_eq!(out.code, 3);
    assert_eq!(mark(&out, "secret"), "FAIL");
    assert!(
        out.stdout
            .contains("name the field that holds it (set by SEATABLE_CRED_FIELD)"),
        "{}",
        out.stdout
    );
    assert_eq!(mark(&out, "exchange"), "skip");
    assert_eq!(mark(&out, "seatable"), "ok");
    case.unset("SEATABLE_CRED_FIELD");

    let token = case.env["VAULT_TOKEN"].clone();
    case.set("VAULT_TOKEN", "s.wrong");
    case.secrets.push("s.wrong".into());
    let out = doctor(&case);
    assert_eq!(out.code, 3, "{}", out.stdout);
    assert!(matches!(mark(&out, "login"), "FAIL") || mark(&out, "secret") == "FAIL");
    case.set("VAULT_TOKEN", token);

    case.standin.stop();
    let out = doctor(&case);
    assert_eq!(out.code, 5);
    assert_eq!(mark(&out, "seatable"), "FAIL");
    assert_eq!(mark(&out, "vault"), "ok");
}

#[test]
fn vault_down_and_bad_config() {
    let mut case = Case::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    case.set("VAULT_ADDR", format!("http://127.0.0.1:{closed}"));
    let out = doctor(&case);
    assert_eq!(out.code, 5);
    assert_eq!(mark(&out, "vault"), "FAIL");
    assert_eq!(mark(&out, "login"), "skip");
    assert_eq!(mark(&out, "seatable"), "ok");

    case.set("SEATABLE_SERVER_URL", "nonsense");
    let out = doctor(&case);
    assert_eq!(out.code, 2);
    assert_eq!(mark(&out, "config"), "FAIL");
    assert_eq!(mark(&out, "clock"), "skip");
}

#[test]
fn clock_skew_is_reported() {
    let case = Case::new();
    case.standin.set_clock_offset(-600);
    let out = doctor(&case);
    assert_eq!(
        out.code, 0,
        "a skew warns, it does not fail: {}",
        out.stdout
    );
    assert_eq!(mark(&out, "clock"), "warn");
    assert!(out.stdout.contains("ahead of SeaTable"), "{}", out.stdout);
}

#[test]
fn cached_vault_login_is_reported() {
    let mut case = Case::new();
    case.login_approle();
    let first = doctor(&case);
    assert_eq!(first.code, 0, "{}", first.stdout);
    let second = doctor(&case);
    assert!(
        second.stdout.contains("cached Vault token"),
        "{}",
        second.stdout
    );
}

/// A Vault address nobody set is the built-in default: its failure says so
/// and names the setting — an address that was set gets no such note.
#[test]
fn a_default_vault_address_is_named_as_such() {
    let mut case = Case::new();
    case.unset("VAULT_ADDR");
    let out = doctor(&case);
    assert_eq!(out.code, 5, "{}", out.stdout);
    assert_eq!(mark(&out, "vault"), "FAIL");
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("FAIL  vault"))
        .unwrap();
    assert!(
        line.contains("cannot reach Vault at https://127.0.0.1:8200")
            && line.contains(
                "(vault_addr: nothing set it, so the default applies; set --vault-addr, VAULT_ADDR (or BAO_ADDR) or vault_addr in [profiles.default]"
            ),
        "{line}"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    case.set("VAULT_ADDR", format!("http://127.0.0.1:{closed}"));
    let out = doctor(&case);
    assert_eq!(mark(&out, "vault"), "FAIL");
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("FAIL  vault"))
        .unwrap();
    assert!(!line.contains("default"), "{line}");
}
