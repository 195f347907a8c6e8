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

    assert!(
        out.stdout.contains(
            "base tokens of 'dashboard' that others obtained still work until they expire"
        ),
        "{}",
        out.stdout
    );
    let cached = t.run(&["get", "-o", "json"]).ok().json();
    let out = t
        .run(&["token", "revoke", "--app", "seatable-cred", "--force"])
        .ok();
    assert!(
        out.stdout.contains(&format!(
            "base tokens of 'seatable-cred' may still work until {}",
            cached["expires_at"].as_str().unwrap()
        )),
        "{}",
        out.stdout
    );
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
    t.run(&["get"])
        .fails(4, "the API token in Vault was refused");
}
