//! `token revoke`: any token of the base, except the one Vault holds
//! unless forced.

use super::TokenCase;

#[test]
fn revoke_deletes_a_token_but_not_the_one_vault_holds_unless_forced() {
    let t = TokenCase::new();
    let held = t.case.base.api_token.clone();
    let other = t.add_token("dashboard", "r");

    t.run(&["token", "revoke", "--app", "seatable-cred"])
        .fails(2, "--force");
    assert!(t.exchange_accepts(&held), "refused without --force");

    let out = t.run(&["token", "revoke", "--app", "dashboard"]).ok();
    assert!(
        out.stdout
            .contains("API token 'dashboard' of base 'Demo base' (workspace 7) deleted"),
        "{}",
        out.stdout
    );
    assert!(
        !t.exchange_accepts(&other.api_token),
        "deleted tokens are refused"
    );
    assert_eq!(t.app_names(), ["seatable-cred"]);

    t.run(&["token", "revoke", "--app", "nope"])
        .fails(2, "no API token named 'nope' (it has: seatable-cred)");
    t.run(&["token", "revoke", "--app", ""]).fails(2, "--app");

    t.run(&["get"]).ok();
    let out = t
        .run(&["token", "revoke", "--app", "seatable-cred", "--force"])
        .ok();
    assert!(
        out.stderr.contains("holds a revoked token"),
        "{}",
        out.stderr
    );
    assert!(!t.exchange_accepts(&held));
    assert!(
        t.case.entry_files().is_empty(),
        "its cached base token dropped"
    );
    t.run(&["get"]).fails(4, "rejected the API token");
}

/// Issue 18, 5: `.` and `..` passed as app names and became dot segments —
/// `token revoke --app ..` sent `DELETE …/api-tokens/`, the collection —
/// so a token so named could not be revoked by the tool. Such names are
/// refused before any request is sent, as app names and as base names;
/// names with `/` too.
#[test]
fn dot_names_never_become_dot_segments() {
    let t = TokenCase::new();
    for name in ["..", "."] {
        t.add_token(name, "r");
    }
    for name in ["..", ".", "a/b", "../x"] {
        t.run(&["token", "revoke", "--app", name]).fails(2, "--app");
        t.run(&["token", "create", "--app", name, "--force"])
            .fails(2, "--app");
    }
    let sent = t.case.standin.account_requests();
    assert!(
        sent.iter()
            .all(|r| !r.starts_with("DELETE") && !r.starts_with("POST")),
        "{sent:?}"
    );
    assert!(t.app_names().contains(&"..".to_string()));

    // A base SeaTable calls `..`: its token URLs would lose a segment.
    let before = sent.len();
    t.case
        .standin
        .update_base(&t.case.base.api_token, |b| b.dtable_name = "..".into());
    t.run(&["token", "list"]).fails(2, "'..'");
    t.run(&["token", "create", "--app", "x", "--base", ".."])
        .fails(2, "--base");
    let sent = t.case.standin.account_requests();
    assert!(
        sent[before..].iter().all(|r| !r.contains("/api-tokens/")),
        "{:?}",
        &sent[before..]
    );
}
