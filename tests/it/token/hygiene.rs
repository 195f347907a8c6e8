//! Secret hygiene of the `token` commands, as tests/it/hygiene.rs does it
//! for the others: every command at -vvvv through working and failing
//! paths, with an account token from Vault and with a password +
//! two-factor login. No API token value (of any token ever issued), no
//! account token, password, code or Vault token on stdout or stderr
//! ([`TokenCase::run`] checks each run) nor in any file outside the cache.

use super::{PASSWORD, TokenCase, fresh_secret};
use crate::support::Out;

const OTP: &str = "552211";

fn every_token_command(t: &mut TokenCase) -> Vec<Out> {
    let tmp = t.case.dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    t.set("TMPDIR", tmp.to_str().unwrap());
    let mut outs = Vec::new();
    let mut run = |t: &TokenCase, args: &[&str], code: i32| {
        let mut all = args.to_vec();
        all.push("-vvvv");
        let out = t.run(&all);
        assert_eq!(out.code, code, "{all:?}: {}", out.stderr);
        outs.push(out);
    };
    let original = t.case.secret.clone();
    t.set("SEATABLE_CRED_SECRET", fresh_secret());
    let create = [
        "token",
        "create",
        "--app",
        "hygiene",
        "--permission",
        "rw",
        "--base",
        "Demo base",
    ];
    run(t, &create, 0);
    run(t, &create, 2);
    run(t, &["get", "-o", "json"], 0);
    run(t, &["token", "list"], 0);
    run(t, &["token", "list", "-o", "json"], 0);
    run(t, &["token", "rotate"], 0);
    run(t, &["token", "prune"], 0);
    t.set("SEATABLE_CRED_SECRET", original);
    t.add_token("extra", "r");
    run(t, &["token", "revoke", "--app", "extra"], 0);
    run(t, &["token", "revoke", "--app", "seatable-cred"], 2);
    // A delete that never answers: the rotation is done, its clean-up not.
    t.case.standin.hang_deletes(true);
    run(t, &["token", "rotate", "--timeout", "2s"], 5);
    t.case.standin.hang_deletes(false);
    run(t, &["token", "prune"], 0);
    run(t, &["doctor"], 0);
    outs
}

fn check_world(t: &TokenCase, outs: &[Out]) {
    let chatty = outs
        .iter()
        .filter(|o| o.stderr.contains(": debug: "))
        .count();
    assert!(
        chatty * 2 >= outs.len(),
        "most commands said a lot at -vvvv"
    );
    let mut secrets = t.case.standin.issued_api_tokens();
    secrets.extend(t.case.secrets.iter().cloned());
    assert!(secrets.len() > 4, "{secrets:?}");
    crate::support::assert_no_secret_in_files(t.case.dir.path(), &t.case.cache_dir(), &secrets);
}

#[test]
fn with_an_account_token_from_vault() {
    let mut t = TokenCase::new();
    let outs = every_token_command(&mut t);
    check_world(&t, &outs);
}

#[test]
fn with_a_password_and_two_factor_login() {
    let mut t = TokenCase::new();
    // The account token a login answers is a secret too.
    let account_token = t
        .case
        .standin
        .add_account("mfa@example.com", PASSWORD, Some(OTP));
    t.case.secrets.push(account_token);
    t.case.secrets.push(OTP.into());
    t.unset("SEATABLE_CRED_ACCOUNT_SECRET")
        .set("SEATABLE_CRED_ACCOUNT", "mfa@example.com")
        .set("SEATABLE_CRED_ACCOUNT_PASSWORD", PASSWORD)
        .set("SEATABLE_CRED_OTP", OTP);
    let mut outs = every_token_command(&mut t);
    assert!(t.case.standin.account_stats().logins >= 10);
    let wrong = "wrong-password-hygiene-0";
    t.case.secrets.push(wrong.into());
    t.set("SEATABLE_CRED_ACCOUNT_PASSWORD", wrong);
    outs.push(
        t.run(&["token", "list", "-vvvv"])
            .fails(4, "refused the login"),
    );
    check_world(&t, &outs);
}

/// The team admin's commands at -vvvv: the audit in both formats,
/// `--revoke`, `revoke --base` (working and refused), paging with a 429
/// ridden out, a non-admin's error. Every token value of the team — read
/// from SeaTable's lists and from Vault's secrets — stays off stdout,
/// stderr and every file.
#[test]
fn the_team_admin_commands() {
    let mut f = super::audit::fixture();
    let (pool, scripts) = (f.team.pool(), f.team.scripts());
    let ops = f.team.bases[2].0.clone();
    let t = &mut f.team.t;
    let tmp = t.case.dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    t.set("TMPDIR", tmp.to_str().unwrap());
    // A Vault value under the prefix that is no token is a secret too.
    t.case.secrets.push("not-a-token-at-all".into());
    let mut outs = Vec::new();
    let mut run = |t: &TokenCase, args: &[&str], code: i32| {
        let mut all = args.to_vec();
        all.push("-vvvv");
        let out = t.run(&all);
        assert_eq!(out.code, code, "{all:?}: {}", out.stderr);
        outs.push(out);
    };
    run(t, &["token", "audit", &pool, &scripts], 0);
    run(t, &["token", "audit", "-o", "json", &pool, &scripts], 0);
    run(
        t,
        &[
            "token",
            "audit",
            "--findings-only",
            "--fail-on",
            "old",
            &pool,
            &scripts,
        ],
        1,
    );
    run(
        t,
        &["token", "audit", "--revoke", "duplicate-app", &pool],
        2,
    );
    run(
        t,
        &[
            "token",
            "audit",
            "--revoke",
            "not-in-vault",
            "--yes",
            &pool,
            &scripts,
        ],
        0,
    );
    run(
        t,
        &["token", "revoke", "--base", &ops, "--app", "etl", &pool],
        2,
    );
    run(
        t,
        &[
            "token", "revoke", "--base", &ops, "--app", "etl", &pool, "--force",
        ],
        0,
    );
    t.case
        .standin
        .set_team_budget(seatable_standin::TeamBudget {
            limit: Some(2),
            window_secs: Some(1),
            max_per_page: Some(2),
        });
    run(t, &["token", "audit", "-o", "json", &pool], 0);
    assert!(t.case.standin.team_requests().1 > 0, "a 429 was ridden out");
    let member = t
        .case
        .standin
        .add_team_account("member@team.local", PASSWORD, 7, false);
    t.case.secrets.push(member.clone());
    t.unset("SEATABLE_CRED_ACCOUNT_SECRET")
        .set("SEATABLE_CRED_ACCOUNT", "member@team.local")
        .set("SEATABLE_CRED_ACCOUNT_PASSWORD", PASSWORD);
    run(t, &["token", "audit", &pool], 4);
    assert!(
        outs.iter()
            .any(|o| o.stderr.contains("read what Vault holds")),
        "the Vault scan said what it did"
    );
    check_world(t, &outs);
}

#[test]
fn exec_does_not_pass_the_account_password_or_code_on() {
    let mut t = TokenCase::new();
    t.set("SEATABLE_CRED_ACCOUNT_PASSWORD", PASSWORD)
        .set("SEATABLE_CRED_OTP", OTP);
    let out = t
        .run(&[
            "exec",
            "--",
            "sh",
            "-c",
            "echo ${SEATABLE_CRED_ACCOUNT_PASSWORD:-unset} ${SEATABLE_CRED_OTP:-unset}",
        ])
        .ok();
    assert_eq!(out.stdout, "unset unset\n");
}
