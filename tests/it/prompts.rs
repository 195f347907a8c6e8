//! The secrets asked on the terminal — by `get` (a userpass password) and
//! by the `token` commands (the account password, the two-factor code) —
//! driven through a pseudo-terminal that echoes as a person's does: each
//! is asked with echo off, works, and never shows up in the transcript.

use crate::support::pty::Pty;
use crate::support::{Case, Out, bao, shared};
use crate::token::TokenCase;

#[test]
fn get_asks_a_userpass_password_on_the_terminal_without_echo() {
    let mut case = Case::new();
    let password = shared().userpass_password();
    case.secrets.push(password.to_string());
    case.unset("VAULT_TOKEN")
        .set("SEATABLE_CRED_AUTH", "userpass")
        .set("SEATABLE_CRED_USERNAME", bao::USERPASS_USER);
    let stdout = case.dir.path().join("get.out");
    let mut pty = Pty::spawn(&case, &["get", "-o", "json"], &stdout);
    pty.answer_hidden(
        &format!("Vault password for {}: ", bao::USERPASS_USER),
        password,
    );
    let (code, transcript) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    assert!(!transcript.contains(password), "echoed:\n{transcript}");
    // stdout holds the credential and nothing of the question.
    let out = Out {
        code,
        stdout: std::fs::read_to_string(&stdout).unwrap(),
        stderr: transcript,
    };
    case.assert_no_secrets(&out);
    assert!(case.standin.accepts(
        out.json()["token"].as_str().unwrap(),
        &case.base.dtable_uuid
    ));
}

const USER: &str = "prompted@example.com";
const PASSWORD: &str = "typed-account-password-31";
const OTP: &str = "246810";

#[test]
fn token_commands_ask_the_account_password_and_two_factor_code_without_echo() {
    let mut t = TokenCase::new();
    t.case.standin.add_account(USER, PASSWORD, Some(OTP));
    t.case
        .secrets
        .extend([PASSWORD.to_string(), OTP.to_string()]);
    t.unset("SEATABLE_CRED_ACCOUNT_SECRET")
        .set("SEATABLE_CRED_ACCOUNT", USER);
    let stdout = t.case.dir.path().join("list.out");
    let mut pty = Pty::spawn(&t.case, &["token", "list"], &stdout);
    pty.answer_hidden(&format!("SeaTable password for {USER}: "), PASSWORD);
    pty.answer_hidden(&format!("Two-factor code for {USER}: "), OTP);
    let (code, transcript) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    for typed in [PASSWORD, OTP] {
        assert!(!transcript.contains(typed), "echoed:\n{transcript}");
    }
    let out = Out {
        code,
        stdout: std::fs::read_to_string(&stdout).unwrap(),
        stderr: transcript,
    };
    t.check(&out);
    assert!(
        out.stdout.contains(&t.case.base.app_name),
        "the list: {}",
        out.stdout
    );
    let stats = t.case.standin.account_stats();
    assert_eq!(
        (stats.login_requests, stats.otp_challenges, stats.logins),
        (2, 1, 1),
        "the typed password, then the typed code: {stats:?}"
    );
}
