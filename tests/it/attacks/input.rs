//! Hostile servers and hostile input: what a broken or compromised SeaTable
//! answers, URLs that carry credentials, git requests for other hosts, and
//! what `exec`'s command inherits.

use seatable_standin::Fault;

use crate::support::{Case, HELPER, run_with_input};

const THREE_DAYS: u64 = 3 * 24 * 3600;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn unix(rfc3339: &str) -> u64 {
    humantime::parse_rfc3339(rfc3339)
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn absurd_expiries_are_unreadable_never_a_crash_nor_decades() {
    for exp in [
        serde_json::json!(253_402_300_800u64), // 10000-01-01
        serde_json::json!(1e300),
        serde_json::json!(u64::MAX),
    ] {
        let case = Case::new();
        case.standin.push_faults([Fault::Claims {
            claims: serde_json::json!({ "exp": exp }),
        }]);
        let v = case.run(&["get", "-o", "json", "-v"]).ok().json();
        let expires = unix(v["expires_at"].as_str().unwrap());
        assert!(
            expires <= now() + THREE_DAYS && expires > now() + THREE_DAYS - 60,
            "{exp}: assumed SeaTable's default lifetime, got {}",
            v["expires_at"]
        );
        // Every output of the (now cached) token works.
        for args in [
            &["get"][..],
            &["get", "-o", "env"],
            &["get", "-o", "json"],
            &["status"],
            &["status", "-o", "json"],
            &["exec", "--", "true"],
        ] {
            case.run(args).ok();
        }
        let status = case.run(&["status", "-o", "json"]).ok().json();
        assert!(status["seconds_left"].as_u64().unwrap() <= THREE_DAYS);
    }
}

/// A 200 answer whose token is not a JWT: after retrying until the
/// deadline, exit 5 — never printed, never cached.
fn hostile_token(value: &str) -> Case {
    let mut case = Case::new();
    case.set("SEATABLE_CRED_TIMEOUT", "2s");
    case.standin.push_faults(std::iter::repeat_n(
        Fault::AccessToken {
            value: value.to_string(),
        },
        500,
    ));
    case
}

#[test]
fn an_injected_git_credential_never_reaches_git() {
    let case = hostile_token("abc\nusername=injected\nhost=evil.example.com\npassword=second");
    let host = case.standin.url.trim_start_matches("http://").to_string();
    let mut git = case.tool("git");
    git.args([
        "-c",
        &format!("credential.helper=!{HELPER} git-credential"),
        "credential",
        "fill",
    ])
    .env("GIT_TERMINAL_PROMPT", "0")
    .env("GIT_CONFIG_NOSYSTEM", "1");
    let out = run_with_input(git, &format!("protocol=http\nhost={host}\n\n"));
    assert!(
        !out.stdout.contains("evil.example.com") && !out.stdout.contains("second"),
        "git was handed the injected credential: {}",
        out.stdout
    );
    assert!(case.entry_files().is_empty(), "nothing was cached");
}

#[test]
fn an_injected_header_is_never_printed() {
    let case = hostile_token("abc\r\nX-Injected: yes");
    let out = case.run(&["get", "-o", "header"]);
    assert!(
        !out.stdout.contains("X-Injected"),
        "a header was injected: {:?}",
        out.stdout
    );
    out.fails(5, "not a base token");
}

#[test]
fn urls_carrying_credentials_are_not_echoed() {
    let mut case = Case::new();
    for (name, url, secret) in [
        (
            "SEATABLE_SERVER_URL",
            "https://alice:S3CRET-PW@seatable.example.com:99999/",
            "S3CRET-PW",
        ),
        (
            "SEATABLE_SERVER_URL",
            "https://seatable.example.com/?api_token=QUERY-SECRET",
            "QUERY-SECRET",
        ),
        (
            "VAULT_ADDR",
            "https://bob:VAULT-PW@vault.example.com:8200",
            "VAULT-PW",
        ),
        ("VAULT_ADDR", "not a url but:PASSWORD@host", "PASSWORD"),
        // Passwords holding '/', '?' or '#' end the authority early.
        (
            "SEATABLE_SERVER_URL",
            "https://user:pa/ss-word@seatable.example.com",
            "ss-word",
        ),
        (
            "SEATABLE_SERVER_URL",
            "https://user:pa?ss-word@seatable.example.com",
            "ss-word",
        ),
        (
            "SEATABLE_SERVER_URL",
            "https://user:pa#ss-word@seatable.example.com",
            "pa#",
        ),
        (
            "SEATABLE_SERVER_URL",
            "https://user:pa@ss-word@seatable.example.com",
            "ss-word",
        ),
    ] {
        let saved = case.env[name].clone();
        case.set(name, url);
        let out = case.run(&["get"]);
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(
            !out.stderr.contains(secret),
            "the URL's secret was echoed: {}",
            out.stderr
        );
        case.set(name, saved);
    }
    assert_eq!(case.standin.stats().exchange_requests, 0);
}

#[test]
fn errors_name_the_true_origin_of_a_setting() {
    let mut case = Case::new();
    // From the environment, with no config file at all.
    case.set("SEATABLE_CRED_LIFETIME", "3s");
    let out = case.run(&["get"]).fails(2, "SEATABLE_CRED_LIFETIME");
    assert!(!out.stderr.contains("config.toml"), "{}", out.stderr);
    // From a flag.
    case.unset("SEATABLE_CRED_LIFETIME");
    let out = case
        .run(&["get", "--lifetime", "3s"])
        .fails(2, "--lifetime");
    assert!(!out.stderr.contains("config.toml"), "{}", out.stderr);
    // From the config file: the file and the key.
    let config = case.dir.path().join("c.toml");
    std::fs::write(&config, "[profiles.default]\nlifetime = \"3s\"\n").unwrap();
    let out = case
        .run(&["--config", config.to_str().unwrap(), "get"])
        .fails(2, "c.toml");
    assert!(out.stderr.contains("lifetime"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("SEATABLE_CRED_LIFETIME"),
        "{}",
        out.stderr
    );
}

#[test]
fn git_credential_answers_only_requests_naming_the_server() {
    let case = Case::new();
    for request in [
        "url=https://evil.example.com/x\n\n".to_string(),
        format!("url={}\n\n", case.standin.url),
        format!(
            "host={}\n\n",
            case.standin.url.trim_start_matches("http://")
        ),
        "protocol=http\n\n".to_string(),
    ] {
        let out = case
            .run_with_stdin(&["git-credential", "get"], &request)
            .ok();
        assert_eq!(out.stdout, "", "answered {request:?}");
    }
    assert_eq!(case.standin.stats().exchange_requests, 0);
}

#[test]
fn exec_does_not_hand_vault_tokens_to_the_command() {
    let mut case = Case::new();
    let token = case.env["VAULT_TOKEN"].clone();
    case.set("BAO_TOKEN", token.clone())
        .set("SEATABLE_CRED_PASSWORD", "pw-not-for-the-child")
        .set("SEATABLE_CRED_JWT", "jwt-not-for-the-child")
        .set(
            "SEATABLE_CRED_ACCOUNT_PASSWORD",
            "account-pw-not-for-the-child",
        )
        .set("SEATABLE_CRED_OTP", "123456");
    let out = case.run(&["exec", "--", "env"]).ok();
    for name in [
        "VAULT_TOKEN=",
        "BAO_TOKEN=",
        "SEATABLE_CRED_PASSWORD=",
        "SEATABLE_CRED_JWT=",
        "SEATABLE_CRED_ACCOUNT_PASSWORD=",
        "SEATABLE_CRED_OTP=",
    ] {
        assert!(
            !out.stdout.lines().any(|l| l.starts_with(name)),
            "the command inherited {name}"
        );
    }
    assert!(!out.stdout.contains(&token));
    assert!(out.stdout.contains("SEATABLE_BASE_TOKEN="));
}

/// An API token given where the secret's path belongs (a paste into the
/// wrong variable) is refused without being repeated.
#[test]
fn a_token_given_as_the_secret_path_is_not_echoed() {
    let api_token = Case::new().base.api_token;
    for name in ["SEATABLE_CRED_SECRET", "SEATABLE_CRED_SHARED_CACHE"] {
        let mut case = Case::new();
        case.set(name, api_token.clone())
            .set("SEATABLE_CRED_CACHE", "vault");
        let out = case.run(&["get", "-vvvv"]);
        assert_eq!(out.code, 2, "{name}: {}", out.stderr);
        assert!(!out.stderr.contains(&api_token), "{name}: {}", out.stderr);
    }
}

/// A base name a hostile or careless SeaTable may send: a terminal title,
/// a bell and a screen clear.
const EVIL: &str = "CRM\u{1b}]0;PWNED\u{7}\u{1b}[2J";
/// The same, as the helper shows it.
const EVIL_SHOWN: &str = r"CRM\x1b]0;PWNED\x07\x1b[2J";

/// No control character but line breaks reaches the terminal.
#[track_caller]
fn no_raw_controls(what: &str, text: &str) {
    let raw: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(raw.is_empty(), "{what} printed {raw:?} raw: {text}");
}

/// Issue 18, 4: a base named with terminal escape sequences came out raw
/// in `doctor`, `init` and `status`: whoever names a base (or answers for
/// SeaTable) could retitle, clear or rewrite the user's terminal. Every
/// string from a server is shown with its control characters escaped.
#[test]
fn terminal_escapes_in_a_base_name_are_shown_escaped() {
    let case = Case::new();
    case.standin
        .update_base(&case.base.api_token, |b| b.dtable_name = EVIL.into());
    let doctor = case.run(&["doctor"]).ok();
    no_raw_controls("doctor", &doctor.stdout);
    assert!(doctor.stdout.contains(EVIL_SHOWN), "{}", doctor.stdout);
    case.run(&["get"]).ok();
    let status = case.run(&["status"]).ok();
    no_raw_controls("status", &status.stdout);
    assert!(status.stdout.contains(EVIL_SHOWN), "{}", status.stdout);
    // Without a terminal, init's check lines go to the log (-v).
    let init = case.run(&["init", "--yes", "-v", "-p", "escapes"]).ok();
    no_raw_controls("init", &init.stdout);
    no_raw_controls("init", &init.stderr);
    assert!(init.stderr.contains(EVIL_SHOWN), "{}", init.stderr);
}

/// Issue 18, 4: Vault's version string (`doctor`), and Vault's error
/// messages in the error line and the log, came out with ESC raw.
#[test]
fn terminal_escapes_from_vault_are_shown_escaped() {
    use crate::support::vault_faults::{VaultFault, VaultFaults};
    let mut case = Case::new();
    let proxy = VaultFaults::start(&crate::support::shared().bao.addr);
    case.set("VAULT_ADDR", proxy.url.clone());
    proxy.set_health_version("2.7.2\u{1b}]0;PWNED\u{7}");
    let doctor = case.run(&["doctor"]).ok();
    no_raw_controls("doctor", &doctor.stdout);
    assert!(
        doctor.stdout.contains(r"2.7.2\x1b]0;PWNED\x07"),
        "{}",
        doctor.stdout
    );
    // KV v2 named: no mount lookup after a refused read.
    case.set("SEATABLE_CRED_KV_VERSION", "2");
    proxy.push([VaultFault::new(
        403,
        "permission denied\\u001b]0;PWNED\\u0007\\u001b[2J",
    )]);
    let out = case
        .run(&["get", "--refresh", "-vvvv"])
        .fails(3, r"permission denied\x1b]0;PWNED\x07\x1b[2J");
    no_raw_controls("get", &out.stderr);
    proxy.push(std::iter::repeat_n(
        VaultFault::new(503, "busy\\u001b[2J\\u001b]0;PWNED\\u0007"),
        2,
    ));
    // Retried: the warnings of the log quote Vault too.
    let out = case.run(&["get", "--refresh", "-vvvv"]).ok();
    no_raw_controls("get", &out.stderr);
    assert!(
        out.stderr.contains(r"busy\x1b[2J\x1b]0;PWNED\x07"),
        "{}",
        out.stderr
    );
}
