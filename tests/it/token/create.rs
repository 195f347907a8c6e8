//! `token create`: minted straight into Vault, with check-and-set.

use seatable_standin::{Base, random_hex};
use serde_json::json;

use super::{TokenCase, fresh_secret, vault_read};
use crate::support::shared;

#[test]
fn create_mints_into_vault_a_token_that_opens_the_base() {
    let mut t = TokenCase::new();
    let secret = fresh_secret();
    t.set("SEATABLE_CRED_SECRET", secret.clone());
    let out = t
        .run(&[
            "token",
            "create",
            "--app",
            "reporting",
            "--base",
            "Demo base",
        ])
        .ok();
    for said in [
        "'reporting' (r)",
        "base 'Demo base' (workspace 7)",
        &format!("{secret} field api_token, version 1"),
    ] {
        assert!(out.stdout.contains(said), "{said:?} in {}", out.stdout);
    }
    let made = t
        .token_of("reporting")
        .expect("the token exists in SeaTable");
    assert_eq!(made.permission, "r", "read-only by default");
    assert_eq!(made.generated_by, super::EMAIL);
    let (version, in_vault) = vault_read(&secret);
    assert_eq!(version, 1);
    assert_eq!(in_vault.as_deref(), Some(made.api_token.as_str()));
    // The helper uses it: right base, right permission, right app.
    let got = t.run(&["get", "-o", "json"]).ok().json();
    assert_eq!(got["dtable_uuid"], t.case.base.dtable_uuid.as_str());
    assert_eq!(got["permission"], "r");
    assert_eq!(got["app_name"], "reporting");

    // Read-write on request, in another secret.
    let secret = fresh_secret();
    t.set("SEATABLE_CRED_SECRET", secret.clone());
    let out = t
        .run(&[
            "token",
            "create",
            "--app",
            "writer",
            "--permission",
            "rw",
            "--base",
            "Demo base",
        ])
        .ok();
    assert!(out.stdout.contains("'writer' (rw)"), "{}", out.stdout);
    let got = t.run(&["get", "-o", "json"]).ok().json();
    assert_eq!(got["permission"], "rw");
    assert_eq!(got["app_name"], "writer");
    assert_eq!(vault_read(&secret).0, 1);
}

#[test]
fn an_existing_secret_is_refused_without_force() {
    let t = TokenCase::new();
    let before = t.app_names();
    let (version, held) = vault_read(&t.case.secret);
    t.run(&["token", "create", "--app", "second"])
        .fails(2, "--force");
    assert_eq!(t.app_names(), before, "nothing was created in SeaTable");
    assert_eq!(t.case.standin.account_stats().create_requests, 0);
    assert_eq!(vault_read(&t.case.secret), (version, held.clone()));

    // --force writes a new version; the base is the one the old token opens.
    let out = t
        .run(&["token", "create", "--app", "second", "--force"])
        .ok();
    assert!(
        out.stdout.contains("revoke --app seatable-cred"),
        "says the old token still works: {}",
        out.stdout
    );
    let (new_version, now) = vault_read(&t.case.secret);
    assert_eq!(new_version, version + 1);
    let second = t.token_of("second").unwrap();
    assert_eq!(now.as_deref(), Some(second.api_token.as_str()));
    assert!(
        t.exchange_accepts(held.as_deref().unwrap()),
        "the old one still works"
    );
}

#[test]
fn an_ambiguous_base_name_lists_the_candidates() {
    let mut t = TokenCase::new();
    t.case.standin.name_workspace(9, "Team");
    let other = t.case.standin.add_base(Base {
        workspace_id: 9,
        ..Base::default()
    });
    assert_eq!(other.dtable_name, t.case.base.dtable_name);
    t.set("SEATABLE_CRED_SECRET", fresh_secret());
    let out = t
        .run(&["token", "create", "--app", "x", "--base", "Demo base"])
        .fails(2, "--workspace");
    assert!(
        out.stderr.contains("7 (personal)") && out.stderr.contains("9 (Team)"),
        "{}",
        out.stderr
    );
    assert_eq!(t.case.standin.account_stats().create_requests, 0);

    t.run(&[
        "token",
        "create",
        "--app",
        "x",
        "--base",
        "Demo base",
        "--workspace",
        "9",
    ])
    .ok();
    let made = t.case.standin.api_tokens(&other.dtable_uuid);
    assert!(
        made.iter().any(|b| b.app_name == "x"),
        "made in workspace 9"
    );
    assert!(t.token_of("x").is_none(), "not in workspace 7");

    t.set("SEATABLE_CRED_SECRET", fresh_secret());
    t.run(&["token", "create", "--app", "x", "--base", "Nope"])
        .fails(2, "no base named 'Nope'");
    t.run(&[
        "token",
        "create",
        "--app",
        "x",
        "--base",
        "Demo base",
        "--workspace",
        "8",
    ])
    .fails(2, "in workspace 8");
    t.run(&["token", "create", "--app", "x", "--workspace", "9"])
        .fails(2, "--base");
    t.run(&["token", "create", "--app", "a/b", "--base", "Demo base"])
        .fails(2, "--app");
}

#[test]
fn an_app_name_taken_is_a_usage_error() {
    let mut t = TokenCase::new();
    t.set("SEATABLE_CRED_SECRET", fresh_secret());
    t.run(&[
        "token",
        "create",
        "--app",
        "seatable-cred",
        "--base",
        "Demo base",
    ])
    .fails(2, "already has an API token named 'seatable-cred'");
}

#[test]
fn a_refused_write_leaves_no_token_behind() {
    let mut t = TokenCase::new();
    // An identity that may read secrets but not write them.
    let reader = shared()
        .bao
        .token(&[crate::support::bao::READER_POLICY], "1h");
    t.case.secrets.push(reader.clone());
    t.set("VAULT_TOKEN", reader);
    // The account token must stay readable for it.
    let id = random_hex(6);
    shared().bao.kv2_put(
        "secret",
        &format!("it/acct-{id}"),
        json!({ "account_token": t.account_token }),
    );
    t.set(
        "SEATABLE_CRED_ACCOUNT_SECRET",
        format!("secret/it/acct-{id}"),
    );
    let secret = fresh_secret();
    t.set("SEATABLE_CRED_SECRET", secret.clone());
    let before = t.app_names();
    t.run(&["token", "create", "--app", "denied", "--base", "Demo base"])
        .fails(3, "deleted again");
    let stats = t.case.standin.account_stats();
    assert_eq!((stats.creates, stats.deletes), (1, 1), "{stats:?}");
    assert_eq!(t.app_names(), before);
    assert_eq!(vault_read(&secret), (0, None));
}

#[test]
fn a_secret_written_meanwhile_is_never_overwritten() {
    let mut t = TokenCase::new();
    let secret = fresh_secret();
    t.set("SEATABLE_CRED_SECRET", secret.clone());
    // A reads the (missing) secret, then its create waits while B writes.
    t.case.standin.hold_creates(1, false);
    let a = t.spawn(&["token", "create", "--app", "first", "--base", "Demo base"]);
    super::wait_for("A's create", || {
        t.case.standin.account_stats().create_requests >= 1
    });
    t.run(&["token", "create", "--app", "second", "--base", "Demo base"])
        .ok();
    t.case.standin.release_creates();
    let a = t.finish(a).fails(3, "check-and-set");
    assert!(a.stderr.contains("deleted again"), "{}", a.stderr);
    assert!(t.token_of("first").is_none(), "A's token is gone");
    let second = t.token_of("second").unwrap();
    assert_eq!(vault_read(&secret), (1, Some(second.api_token)));
}

#[test]
fn a_create_that_may_have_landed_is_never_repeated_while_reads_are_retried() {
    let mut t = TokenCase::new();
    t.set("SEATABLE_CRED_SECRET", fresh_secret());
    // The workspaces list fails once and is retried; the create fails and
    // is not sent again (it might have been done).
    t.case.standin.fail_account_requests("workspaces", [503]);
    t.case.standin.fail_account_requests("create", [500]);
    let out = t
        .run(&["token", "create", "--app", "maybe", "--base", "Demo base"])
        .fails(5, "may or may not have been done");
    assert!(
        out.stderr.contains("token revoke --app maybe"),
        "{}",
        out.stderr
    );
    let stats = t.case.standin.account_stats();
    assert_eq!(stats.workspace_requests, 1, "answered on the retry");
    assert_eq!(stats.create_requests, 1, "never repeated: {stats:?}");
}

/// Older servers answer the exchange with the base's UUID as 32 hex digits
/// and the workspace list with it hyphenated: the same base. `token create
/// --base NAME` (the UUID from the workspaces, checked against the
/// exchange's) and `token rotate` work there, as on a server of the spec's
/// form.
#[test]
fn create_and_rotate_on_a_server_that_mixes_the_uuid_forms() {
    let mut t = TokenCase::new();
    t.case.standin.set_compat(seatable_standin::Compat {
        hex_uuid_in_exchange: true,
        ..Default::default()
    });
    let secret = fresh_secret();
    t.set("SEATABLE_CRED_SECRET", secret.clone());
    let out = t.run(&["token", "create", "--app", "mixed", "--base", "Demo base"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let made = t.token_of("mixed").expect("kept in SeaTable");
    assert_eq!(
        vault_read(&secret).1.as_deref(),
        Some(made.api_token.as_str())
    );
    let got = t.run(&["get", "-o", "json"]).ok().json();
    assert_eq!(
        got["dtable_uuid"],
        t.case.base.dtable_uuid.replace('-', "").as_str()
    );
    let out = t.run(&["token", "rotate"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!t.app_names().contains(&"mixed".to_string()));
    assert_eq!(vault_read(&secret).0, 2);
}
