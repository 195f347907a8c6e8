//! `doctor` with account credentials: the age of the API token in Vault,
//! and a warning past `token_max_age`.

use std::time::{SystemTime, UNIX_EPOCH};

use seatable_standin::{Base, random_hex};
use serde_json::json;

use super::TokenCase;
use crate::support::{Out, shared};

fn token_line(out: &Out) -> Option<&str> {
    out.stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("token"))
}

#[test]
fn doctor_reports_the_age_of_the_api_token_and_warns_when_old() {
    let mut t = TokenCase::new();
    let out = t.run(&["doctor", "--timeout", "10s"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let line = token_line(&out).expect("a token line").to_string();
    assert!(line.starts_with("ok "), "{line}");
    assert!(
        line.contains("API token 'seatable-cred' in Vault is")
            && line.contains("token_max_age 90d"),
        "{line}"
    );

    // A token generated 100 days ago.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let old = t.case.standin.add_base(Base {
        api_token: random_hex(20),
        app_name: "aged".into(),
        generated_at: Some(now - 100 * 86_400),
        last_access: None,
        ..t.case.base.clone()
    });
    t.case.secrets.push(old.api_token.clone());
    let path = t.case.secret.strip_prefix("secret/").unwrap().to_string();
    shared()
        .bao
        .kv2_put("secret", &path, json!({ "api_token": old.api_token }));
    let out = t.run(&["doctor", "--timeout", "10s"]);
    assert_eq!(out.code, 0, "a warning is not a failure: {}", out.stdout);
    let line = token_line(&out).unwrap();
    assert!(line.starts_with("warn"), "{line}");
    assert!(
        line.contains("'aged' in Vault is 100d old") && line.contains("token rotate"),
        "{line}"
    );

    t.set("SEATABLE_CRED_TOKEN_MAX_AGE", "200d");
    let out = t.run(&["doctor", "--timeout", "10s"]);
    let line = token_line(&out).unwrap();
    assert!(
        line.starts_with("ok ") && line.contains("100d old"),
        "{line}"
    );

    // Without account credentials there is no such step.
    t.unset("SEATABLE_CRED_ACCOUNT_SECRET");
    let out = t.run(&["doctor", "--timeout", "10s"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(token_line(&out).is_none(), "{}", out.stdout);

    // Refused account credentials fail the step.
    t.set("SEATABLE_CRED_ACCOUNT", "nobody@example.com")
        .set("SEATABLE_CRED_ACCOUNT_PASSWORD", "not-the-password-xyz");
    t.case.secrets.push("not-the-password-xyz".into());
    let out = t.run(&["doctor", "--timeout", "10s"]);
    assert_eq!(out.code, 4, "{}", out.stdout);
    assert!(
        token_line(&out).unwrap().starts_with("FAIL"),
        "{}",
        out.stdout
    );
}
