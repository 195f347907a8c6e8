//! `token revoke`: any token of the base, except the one Vault holds
//! unless forced.

use std::time::Duration;

use serde_json::json;

use super::TokenCase;
use crate::support::shared;

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

/// `revoke` and `prune` decide by digest, and SeaTable deletes by name: a
/// token deleted and made again under the same name between the list and
/// the delete — and written to Vault meanwhile — was deleted, leaving
/// Vault with a dead token. The name is checked again just before the delete.
#[test]
fn a_token_made_again_under_its_name_after_the_list_is_not_deleted() {
    let t = TokenCase::new();
    let old = t.add_token("dashboard", "r");
    let lists = t.case.standin.list_requests();
    t.case.standin.hold_lists(1);
    let child = t.spawn(&["token", "revoke", "--app", "dashboard"]);
    crate::support::agent::wait_for("the held list", Duration::from_secs(60), || {
        t.case.standin.list_requests() > lists
    });
    // Meanwhile someone replaces "dashboard" and stores the new one in Vault.
    t.case.standin.remove_api_token(&old.api_token);
    let new = t.add_token("dashboard", "r");
    let path = t.case.secret.strip_prefix("secret/").unwrap();
    shared()
        .bao
        .kv2_put("secret", path, json!({"api_token": new.api_token}));
    t.case.standin.release_lists();
    let out = t.finish(child);
    assert!(
        t.exchange_accepts(&new.api_token),
        "the token Vault holds was deleted: {}",
        out.stderr
    );
    assert_ne!(out.code, 0, "{}", out.stdout);
}
