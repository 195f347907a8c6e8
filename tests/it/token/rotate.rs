//! `token rotate` and `token prune`: the successor in Vault before the
//! predecessor goes; a run killed at any step is finished by `prune`; two
//! rotations at once leave exactly one winner and no orphan.

use seatable_standin::{Fault, random_hex};
use serde_json::json;

use super::flaky_vault::FlakyVault;
use super::{TokenCase, is_successor_of, vault_read, wait_for};
use crate::support::shared;
use std::time::Duration;

#[test]
fn rotate_replaces_the_token_and_drops_the_cached_base_tokens() {
    let t = TokenCase::new();
    let old = t.case.base.api_token.clone();
    let cached = t.run(&["get", "-o", "json"]).ok().json();
    assert_eq!(t.case.entry_files().len(), 1, "a cached base token");
    let exchanges = t.case.standin.exchanges();

    let out = t.run(&["token", "rotate", "-vv"]).ok();
    // SeaTable cannot revoke base tokens: until when the old ones work.
    assert!(
        out.stdout.contains(&format!(
            "base tokens of 'seatable-cred' may still work until {}",
            cached["expires_at"].as_str().unwrap()
        )),
        "{}",
        out.stdout
    );
    let names = t.app_names();
    assert_eq!(names.len(), 1, "family of one: {names:?}");
    let successor = names[0].clone();
    assert!(is_successor_of(&successor, "seatable-cred"), "{successor}");
    assert!(
        out.stdout
            .contains(&format!("'seatable-cred' -> '{successor}' (rw)")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("version 2"), "{}", out.stdout);
    let new = t.token_of(&successor).unwrap();
    assert_eq!(new.permission, "rw", "same permission");
    assert_eq!(vault_read(&t.case.secret), (2, Some(new.api_token.clone())));
    assert!(!t.exchange_accepts(&old), "the old token is refused");
    assert!(t.exchange_accepts(&new.api_token), "the new one works");
    assert!(
        t.case.entry_files().is_empty(),
        "the cached base token was dropped"
    );
    let got = t.run(&["get", "-o", "json"]).ok().json();
    assert_eq!(got["app_name"], successor.as_str());
    assert_eq!(got["cached"], false);
    assert!(t.case.standin.exchanges() > exchanges);

    // Again: the family stays `seatable-cred`, and stays one token.
    t.run(&["token", "rotate"]).ok();
    let names = t.app_names();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(is_successor_of(&names[0], "seatable-cred"), "{names:?}");
    assert_ne!(names[0], successor);
    assert_eq!(vault_read(&t.case.secret).0, 3);
    // Nothing of the family is left to prune.
    let out = t.run(&["token", "prune"]).ok();
    assert!(out.stdout.contains("nothing"), "{}", out.stdout);
}

#[test]
fn rotate_with_a_shared_cache_drops_the_shared_entry() {
    let mut t = TokenCase::new();
    let shared_at = format!("secret/seatable-cred/cache/it-{}", random_hex(4));
    t.set("SEATABLE_CRED_CACHE", "vault")
        .set("SEATABLE_CRED_SHARED_CACHE", shared_at.clone());
    t.run(&["get"]).ok();
    t.run(&["get"]).ok();
    assert_eq!(
        t.case.standin.exchanges(),
        1,
        "served from the shared entry"
    );
    t.run(&["token", "rotate"]).ok();
    let exchanges = t.case.standin.exchanges();
    let got = t.run(&["get", "-o", "json"]).ok().json();
    assert_eq!(got["cached"], false, "the shared entry was dropped");
    assert!(t.case.standin.exchanges() > exchanges);
    assert_eq!(got["app_name"], t.app_names()[0].as_str());
}

#[test]
fn rotate_killed_during_the_delete_then_prune_finishes_it() {
    let t = TokenCase::new();
    let old = t.case.base.api_token.clone();
    // Minted well before the rotation (seconds count), yet moments ago.
    t.case.standin.age_api_tokens(5);
    t.case.standin.hang_deletes(true);
    let mut rotation = t.spawn(&["token", "rotate"]);
    wait_for("the rotation's delete", || {
        t.case.standin.account_stats().delete_requests >= 1
    });
    rotation.kill().unwrap(); // SIGKILL
    rotation.wait().unwrap();

    // Vault holds the successor, which works; the predecessor still exists.
    let names = t.app_names();
    assert_eq!(names.len(), 2, "{names:?}");
    let successor = names
        .iter()
        .find(|n| is_successor_of(n, "seatable-cred"))
        .unwrap()
        .clone();
    let new = t.token_of(&successor).unwrap();
    assert_eq!(vault_read(&t.case.secret).1, Some(new.api_token.clone()));
    let got = t.run(&["get", "--refresh", "-o", "json"]).ok().json();
    assert_eq!(got["app_name"], successor.as_str());
    assert!(t.exchange_accepts(&old), "the delete never landed");

    t.case.standin.hang_deletes(false);
    // Another rotation's successor, minted after the one Vault holds, may
    // still be on its way to Vault.
    std::thread::sleep(Duration::from_secs(1));
    let young = t.add_token("seatable-cred-20991231235959", "rw");
    // Right after the kill: the predecessor was minted before the token
    // Vault holds, so it can never win a check-and-set again — deleted at
    // once; the younger one is kept for now.
    let out = t.run(&["token", "prune"]).ok();
    assert!(
        out.stdout.contains("deleted   seatable-cred\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("'seatable-cred-20991231235959' for now"),
        "{}",
        out.stdout
    );
    let mut names = t.app_names();
    names.sort();
    assert_eq!(names, [successor.clone(), young.app_name.clone()]);
    // Minutes later it is a leftover like any other.
    t.case.standin.age_api_tokens(600);
    t.run(&["token", "prune"]).ok();
    assert_eq!(t.app_names(), [successor]);
    assert!(!t.exchange_accepts(&old));
    t.run(&["get", "--refresh"]).ok();
}

#[test]
fn rotate_killed_after_the_create_then_prune_undoes_it() {
    let t = TokenCase::new();
    let old = t.case.base.api_token.clone();
    // The successor is made, but its answer never reaches the rotation.
    t.case.standin.hold_creates(1, true);
    let mut rotation = t.spawn(&["token", "rotate"]);
    wait_for("the successor", || {
        t.case.standin.account_stats().creates >= 1
    });
    rotation.kill().unwrap();
    rotation.wait().unwrap();
    t.case.standin.release_creates();

    assert_eq!(t.app_names().len(), 2, "an orphan successor");
    assert_eq!(
        vault_read(&t.case.secret),
        (1, Some(old.clone())),
        "Vault still holds the working predecessor"
    );
    t.run(&["get", "--refresh"]).ok();
    // Minutes later: the orphan is no longer possibly a running rotation's.
    t.case.standin.age_api_tokens(600);
    let out = t.run(&["token", "prune"]).ok();
    assert!(
        out.stdout.contains("deleted   seatable-cred-"),
        "{}",
        out.stdout
    );
    assert_eq!(t.app_names(), ["seatable-cred"]);

    // A rotation finishes such leftovers too.
    t.case.standin.hold_creates(1, true);
    let mut rotation = t.spawn(&["token", "rotate"]);
    wait_for("the successor", || {
        t.case.standin.account_stats().creates >= 2
    });
    rotation.kill().unwrap();
    rotation.wait().unwrap();
    t.case.standin.release_creates();
    assert_eq!(t.app_names().len(), 2);
    t.case.standin.age_api_tokens(600);
    let out = t.run(&["token", "rotate"]).ok();
    assert!(
        out.stdout.contains("(left by an interrupted rotation)"),
        "{}",
        out.stdout
    );
    assert_eq!(t.app_names().len(), 1, "{:?}", t.app_names());
    assert_eq!(
        vault_read(&t.case.secret).1.as_deref(),
        Some(t.tokens()[0].api_token.as_str())
    );
}

#[test]
fn a_lost_check_and_set_deletes_the_successor_and_changes_nothing_else() {
    let t = TokenCase::new();
    // A reads the secret, then its create waits while B rotates.
    t.case.standin.hold_creates(1, false);
    let a = t.spawn(&["token", "rotate"]);
    wait_for("A's create", || {
        t.case.standin.account_stats().create_requests >= 1
    });
    let b = t.run(&["token", "rotate"]).ok();
    let winner = t.app_names();
    assert_eq!(winner.len(), 1, "{winner:?}");
    t.case.standin.release_creates();
    let a = t.finish(a).fails(3, "check-and-set");
    assert!(a.stderr.contains("deleted again"), "{}", a.stderr);
    assert!(b.stdout.contains(&winner[0]));

    assert_eq!(t.app_names(), winner, "no orphan left");
    let held = t.token_of(&winner[0]).unwrap().api_token;
    assert_eq!(vault_read(&t.case.secret), (2, Some(held.clone())));
    assert!(t.exchange_accepts(&held));
    let stats = t.case.standin.account_stats();
    assert_eq!(stats.creates, 2, "{stats:?}");
}

#[test]
fn two_rotations_at_once_leave_exactly_one_winner_and_no_orphan() {
    let t = TokenCase::new();
    // Both have read the secret's version before either creates.
    t.case.standin.hold_creates(2, false);
    let first = t.spawn(&["token", "rotate"]);
    let second = t.spawn(&["token", "rotate"]);
    wait_for("both creates", || {
        t.case.standin.account_stats().create_requests >= 2
    });
    t.case.standin.release_creates();
    let outs = [t.finish(first), t.finish(second)];
    let won: Vec<_> = outs.iter().filter(|o| o.code == 0).collect();
    assert_eq!(
        won.len(),
        1,
        "exactly one wins: {:?}",
        outs.iter()
            .map(|o| (o.code, o.stderr.clone()))
            .collect::<Vec<_>>()
    );
    let lost = outs.iter().find(|o| o.code != 0).unwrap();
    assert!(
        [3, 4].contains(&lost.code),
        "the loser lost the race: {}",
        lost.stderr
    );
    let names = t.app_names();
    assert_eq!(names.len(), 1, "no orphan: {names:?}");
    assert!(won[0].stdout.contains(&names[0]), "{}", won[0].stdout);
    let held = t.token_of(&names[0]).unwrap().api_token;
    assert_eq!(vault_read(&t.case.secret), (2, Some(held.clone())));
    assert!(t.exchange_accepts(&held));
}

#[test]
fn kv1_is_refused_and_nothing_changes() {
    let mut t = TokenCase::new();
    let id = random_hex(6);
    shared().bao.kv1_put(
        "kv1",
        &format!("it-{id}"),
        json!({ "api_token": t.case.base.api_token }),
    );
    t.set("SEATABLE_CRED_SECRET", format!("kv1/it-{id}"));
    t.run(&["token", "rotate"]).fails(2, "KV v1");
    t.run(&["token", "create", "--app", "x", "--force"])
        .fails(2, "KV v1");
    let stats = t.case.standin.account_stats();
    assert_eq!((stats.create_requests, stats.delete_requests), (0, 0));
    assert_eq!(t.app_names(), ["seatable-cred"]);
    // Reading is fine on KV v1.
    t.run(&["token", "list"]).ok();
    t.run(&["token", "prune"]).ok();
    // Also when the version is configured rather than detected.
    t.set("SEATABLE_CRED_KV_VERSION", "1");
    t.run(&["token", "rotate"]).fails(2, "KV v1");
    assert_eq!(t.case.standin.account_stats().create_requests, 0);
}

#[test]
fn rotate_with_grace_keeps_the_predecessor_meanwhile() {
    let t = TokenCase::new();
    let old = t.case.base.api_token.clone();
    let rotation = t.spawn(&["token", "rotate", "--grace", "5s"]);
    // Once the successor is in Vault, both work until the grace is over.
    wait_for("the successor in Vault", || {
        vault_read(&t.case.secret).0 == 2
    });
    assert!(t.exchange_accepts(&old), "kept during the grace period");
    let out = t.finish(rotation).ok();
    assert!(out.stdout.contains("deleted   seatable-cred\n"));
    assert!(!t.exchange_accepts(&old));
    assert_eq!(t.app_names().len(), 1);
}

#[test]
fn a_successor_that_stops_working_after_the_write_is_undone() {
    let t = TokenCase::new();
    let old = t.case.base.api_token.clone();
    // The exchanges: the token in Vault, the successor before the write,
    // then the successor after it — refused, as if deleted meanwhile.
    t.case
        .standin
        .push_faults([Fault::Pass, Fault::Pass, Fault::Status { code: 403 }]);
    let out = t.run(&["token", "rotate"]).fails(4, "written back");
    assert!(out.stderr.contains("deleted again"), "{}", out.stderr);
    assert_eq!(
        vault_read(&t.case.secret),
        (3, Some(old.clone())),
        "the predecessor is in Vault again"
    );
    assert_eq!(t.app_names(), ["seatable-cred"]);
    assert!(t.exchange_accepts(&old));
}

#[test]
fn a_token_written_back_during_the_grace_period_is_not_deleted() {
    let t = TokenCase::new();
    let old = t.case.base.api_token.clone();
    let rotation = t.spawn(&["token", "rotate", "--grace", "5s"]);
    wait_for("the successor in Vault", || {
        vault_read(&t.case.secret).0 == 2
    });
    // Someone puts the old token back while the rotation waits.
    let path = t.case.secret.strip_prefix("secret/").unwrap().to_string();
    shared()
        .bao
        .kv2_put("secret", &path, json!({ "api_token": old }));
    let out = t.finish(rotation);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("it was kept"), "{}", out.stderr);
    assert!(t.exchange_accepts(&old), "the token in Vault still works");
    assert_eq!(t.app_names().len(), 2);
}

#[test]
fn a_write_whose_answer_is_lost_is_recognised_as_landed() {
    let mut t = TokenCase::new();
    let old = t.case.base.api_token.clone();
    let vault = FlakyVault::start(&shared().bao.addr);
    t.set("VAULT_ADDR", vault.url.clone());
    vault.lose_write_answers(1);
    let out = t.run(&["token", "rotate", "-vv"]).ok();
    assert_eq!(vault.lost(), 1, "the write's answer was lost");
    assert!(
        out.stderr.contains("the write landed after all"),
        "{}",
        out.stderr
    );
    let names = t.app_names();
    assert_eq!(names.len(), 1, "{names:?}");
    let new = t.token_of(&names[0]).unwrap().api_token;
    assert_eq!(vault_read(&t.case.secret), (2, Some(new)));
    assert!(!t.exchange_accepts(&old));
}

/// A prune that deletes the successor of a concurrent rotation — after
/// retrying a failed delete while the rotation wrote that successor to
/// Vault and deleted its predecessor — would leave the base without a
/// working token. Prune reads Vault again before every try.
#[test]
fn a_prune_racing_a_rotation_never_deletes_the_token_vault_comes_to_hold() {
    let t = TokenCase::new();
    // The rotation's successor exists, its answer held back: not in Vault yet.
    t.case.standin.hold_creates(1, true);
    let rotation = t.spawn(&["token", "rotate"]);
    wait_for("the successor", || {
        t.case.standin.account_stats().creates >= 1
    });
    let successor = t
        .app_names()
        .into_iter()
        .find(|n| is_successor_of(n, "seatable-cred"))
        .unwrap();
    // Old enough not to look like a running rotation's, so prune goes for it.
    t.case.standin.age_api_tokens(600);
    // Deletes fail for now; prune keeps retrying the successor's.
    t.case
        .standin
        .fail_account_requests("delete", std::iter::repeat_n(503, 1000));
    let prune = t.spawn(&["token", "prune", "--timeout", "120s"]);
    wait_for("prune retrying its delete", || {
        t.case.standin.account_stats().delete_requests >= 2
    });
    // The rotation goes on: the successor reaches Vault.
    let version = vault_read(&t.case.secret).0;
    t.case.standin.release_creates();
    wait_for("the rotation writing Vault", || {
        vault_read(&t.case.secret).0 > version
    });
    t.case.standin.clear_account_failures();
    let rotated = crate::support::wait_bounded(rotation, Duration::from_secs(120));
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let pruned = crate::support::wait_bounded(prune, Duration::from_secs(120));
    assert!(
        pruned.status.success(),
        "{}",
        String::from_utf8_lossy(&pruned.stderr)
    );
    assert_eq!(
        t.app_names(),
        std::slice::from_ref(&successor),
        "the successor survived, the predecessor is gone"
    );
    assert_eq!(
        vault_read(&t.case.secret).1,
        t.token_of(&successor).map(|b| b.api_token)
    );
    t.run(&["get", "--refresh"]).ok();
}
