//! Account credentials: a login with password and two-factor code, an
//! account token from Vault, and every way they can be wrong — one line,
//! the right exit code, never the password.

use seatable_standin::random_hex;
use serde_json::json;

use super::{EMAIL, PASSWORD, TokenCase};
use crate::support::shared;

const TWO_FACTOR_USER: &str = "2fa@example.com";
const TWO_FACTOR_PASSWORD: &str = "second-password-correct-77";
const OTP: &str = "918273";

#[test]
fn login_with_password_and_two_factor_code() {
    let mut t = TokenCase::new();
    t.case
        .standin
        .add_account(TWO_FACTOR_USER, TWO_FACTOR_PASSWORD, Some(OTP));
    t.case.secrets.push(TWO_FACTOR_PASSWORD.into());
    t.case.secrets.push(OTP.into());
    t.unset("SEATABLE_CRED_ACCOUNT_SECRET")
        .set("SEATABLE_CRED_ACCOUNT", TWO_FACTOR_USER)
        .set("SEATABLE_CRED_ACCOUNT_PASSWORD", TWO_FACTOR_PASSWORD)
        .set("SEATABLE_CRED_OTP", OTP);
    let out = t.run(&["token", "list", "-vvvv"]).ok();
    assert!(out.stdout.contains("seatable-cred"), "{}", out.stdout);
    let stats = t.case.standin.account_stats();
    assert_eq!(
        (stats.login_requests, stats.otp_challenges, stats.logins),
        (2, 1, 1),
        "the code was sent when the server asked for it: {stats:?}"
    );

    // A wrong password: exit 4, one line, no password.
    let wrong = "wrong-password-for-2fa-123";
    t.case.secrets.push(wrong.into());
    t.set("SEATABLE_CRED_ACCOUNT_PASSWORD", wrong);
    let out = t
        .run(&["token", "list", "-vvvv"])
        .fails(4, "refused the login of 2fa@example.com");
    assert!(
        out.stderr
            .contains("Unable to login with provided credentials."),
        "{}",
        out.stderr
    );

    // A wrong code: exit 4.
    t.set("SEATABLE_CRED_ACCOUNT_PASSWORD", TWO_FACTOR_PASSWORD)
        .set("SEATABLE_CRED_OTP", "000000");
    t.run(&["token", "list", "-vvvv"])
        .fails(4, "refused the two-factor code");

    // No code and no terminal to ask on: exit 2, saying where to put it.
    t.unset("SEATABLE_CRED_OTP");
    t.run(&["token", "list"]).fails(2, "SEATABLE_CRED_OTP");
    // No password and no terminal: exit 2 before anything is sent.
    t.unset("SEATABLE_CRED_ACCOUNT_PASSWORD");
    let before = t.case.standin.account_stats().login_requests;
    t.run(&["token", "list"])
        .fails(2, "SEATABLE_CRED_ACCOUNT_PASSWORD");
    assert_eq!(t.case.standin.account_stats().login_requests, before);
}

#[test]
fn login_without_two_factor() {
    let mut t = TokenCase::new();
    t.unset("SEATABLE_CRED_ACCOUNT_SECRET")
        .set("SEATABLE_CRED_ACCOUNT", EMAIL)
        .set("SEATABLE_CRED_ACCOUNT_PASSWORD", PASSWORD);
    t.run(&["token", "list", "-vvvv"]).ok();
    let stats = t.case.standin.account_stats();
    assert_eq!((stats.logins, stats.otp_challenges), (1, 0));
    // Unknown user: the same refusal as a wrong password.
    t.set("SEATABLE_CRED_ACCOUNT", "nobody@example.com");
    t.run(&["token", "list"])
        .fails(4, "refused the login of nobody@example.com");
}

#[test]
fn account_credentials_that_are_wrong_or_missing() {
    let mut t = TokenCase::new();
    // An account token SeaTable does not know.
    let id = random_hex(6);
    let bogus = random_hex(20);
    t.case.secrets.push(bogus.clone());
    shared().bao.kv2_put(
        "secret",
        &format!("it/bogus-{id}"),
        json!({ "account_token": bogus }),
    );
    t.set(
        "SEATABLE_CRED_ACCOUNT_SECRET",
        format!("secret/it/bogus-{id}"),
    );
    t.run(&["token", "list"]).fails(4, "refused the account");
    assert_eq!(t.case.standin.account_stats().unauthorized, 1);

    // The account secret without the field.
    shared().bao.kv2_put(
        "secret",
        &format!("it/nofield-{id}"),
        json!({ "token": "x" }),
    );
    t.set(
        "SEATABLE_CRED_ACCOUNT_SECRET",
        format!("secret/it/nofield-{id}"),
    );
    t.run(&["token", "list"]).fails(3, "account_token");

    // Both ways at once, or none.
    t.set("SEATABLE_CRED_ACCOUNT", EMAIL);
    t.run(&["token", "list"]).fails(2, "only one");
    t.unset("SEATABLE_CRED_ACCOUNT")
        .unset("SEATABLE_CRED_ACCOUNT_SECRET");
    t.run(&["token", "list"]).fails(2, "account credentials");
    t.run(&["token", "rotate"]).fails(2, "--account-secret");
    assert_eq!(t.case.standin.account_stats().list_requests, 0);
}

/// A server that quotes what it was sent in its refusal (a debug page, a
/// proxy's error) must not bring the password or the two-factor code into
/// the error line or the log — also where the quote is cut short, which
/// the old check (an exact match in the first 200 characters) let through.
#[test]
fn a_refusal_quoting_the_password_or_the_code_is_not_repeated() {
    let mut t = TokenCase::new();
    t.case
        .standin
        .add_account(TWO_FACTOR_USER, TWO_FACTOR_PASSWORD, Some(OTP));
    let wrong = "wrong-password-quoted-by-the-server-9";
    let sent_code = "564738";
    t.case.secrets.push(TWO_FACTOR_PASSWORD.into());
    t.case.secrets.push(wrong.into());
    t.case.secrets.push(sent_code.into());
    t.unset("SEATABLE_CRED_ACCOUNT_SECRET")
        .set("SEATABLE_CRED_ACCOUNT", TWO_FACTOR_USER)
        .set("SEATABLE_CRED_OTP", sent_code);
    // Pieces of a secret long enough to matter.
    let pieces = |secret: &str, n: usize| -> Vec<String> {
        let chars: Vec<char> = secret.chars().collect();
        chars.windows(n).map(|w| w.iter().collect()).collect()
    };
    let cases = [
        (wrong, format!("{} {wrong}", "x".repeat(190))),
        (
            wrong,
            format!("login as {TWO_FACTOR_USER} with password {wrong} refused"),
        ),
        (TWO_FACTOR_PASSWORD, format!("code {sent_code} refused")),
    ];
    for (password, refusal) in cases {
        t.set("SEATABLE_CRED_ACCOUNT_PASSWORD", password);
        t.case.standin.set_login_refusal(Some(&refusal));
        let out = t.run(&["token", "list", "-vvvv"]);
        assert_eq!(out.code, 4, "{}", out.stderr);
        for piece in pieces(password, 8).iter().chain(&[sent_code.to_string()]) {
            assert!(
                !out.stderr.contains(piece.as_str()),
                "{piece:?} of a secret on stderr: {}",
                out.stderr
            );
        }
    }
}
