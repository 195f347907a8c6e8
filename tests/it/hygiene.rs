//! Secret hygiene: every command at -vvvv (`init` included), through
//! success and failure paths and every kind of login, with no secret — API
//! token, base token, Vault token, secret-id, JWT, password — on stderr or
//! in any file outside the cache (the config file `init` wrote included);
//! and no core dumps.

use seatable_standin::Fault;

use crate::support::{Case, Out};

/// The Vault token of the case's cached login, if it logged in (not with a
/// token of its own).
fn cached_login_token(case: &Case) -> Option<String> {
    let login = case.entry_files().into_iter().find(|f| {
        f.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("vault-")
    })?;
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(login).unwrap()).unwrap();
    Some(v["vault_token"].as_str().unwrap().to_string())
}

/// Runs every command of the helper, in working and failing variants. A
/// login's Vault token joins the case's secrets as soon as it exists — every
/// later run is checked against it, and so are the earlier ones by `check`.
fn every_command(case: &mut Case) -> Vec<Out> {
    let host = case.standin.url.trim_start_matches("http://").to_string();
    let git_request = format!("protocol=http\nhost={host}\n\n");
    let mut outs = Vec::new();
    // init checks every step with the case's login, then writes the
    // profile into the case's config file (searched below like every file).
    let init = case.run(&["init", "--yes", "-vvvv"]);
    assert_eq!(init.code, 0, "init: {}", init.stderr);
    outs.push(init);
    outs.push(case.run(&["get", "-vvvv"]));
    let logs_in = case
        .env
        .get("SEATABLE_CRED_AUTH")
        .is_some_and(|a| a != "token");
    match cached_login_token(case) {
        Some(token) => case.secrets.push(token),
        None => assert!(
            !logs_in,
            "a login's Vault token is cached after the first get"
        ),
    }
    for format in ["exec-credential", "json", "env", "header", "token"] {
        outs.push(case.run(&["get", "-vvvv", "-o", format]));
    }
    outs.push(case.run(&["get", "-vvvv", "--refresh"]));
    outs.push(case.run(&["status", "-vvvv"]));
    outs.push(case.run(&["status", "-vvvv", "-o", "json"]));
    outs.push(case.run_with_stdin(&["git-credential", "get", "-vvvv"], &git_request));
    outs.push(case.run_with_stdin(&["git-credential", "store", "-vvvv"], &git_request));
    outs.push(case.run(&["exec", "-vvvv", "--", "true"]));
    outs.push(case.run(&["completions", "bash", "-vvvv"]));
    // Failure paths: SeaTable failing, refusing, then a broken config.
    case.standin
        .push_faults(std::iter::repeat_n(Fault::Status { code: 500 }, 50));
    outs.push(case.run(&["get", "-vvvv", "--refresh", "--timeout", "1s"]));
    case.standin.clear_faults();
    outs.push(case.run(&["get", "-vvvv", "--refresh", "--field", "missing"]));
    outs.push(case.run(&[
        "get",
        "-vvvv",
        "--refresh",
        "--server-url",
        "http://127.0.0.1:9",
        "--timeout",
        "1s",
    ]));
    outs.push(case.run_with_stdin(&["git-credential", "erase", "-vvvv"], &git_request));
    outs.push(case.run(&["erase", "-vvvv"]));
    outs.push(case.run(&["erase", "-vvvv", "--all"]));
    outs
}

fn check_world(case: &Case, outs: &[Out]) {
    check(case, outs, true)
}

fn check(case: &Case, outs: &[Out], printed_tokens: bool) {
    // Base tokens printed on stdout count as secrets too.
    let mut secrets = case.secrets.clone();
    for out in outs {
        for word in out
            .stdout
            .split(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
        {
            if word.matches('.').count() == 2 && word.len() > 40 {
                secrets.push(word.to_string());
            }
        }
    }
    if printed_tokens {
        assert!(
            secrets.len() > case.secrets.len(),
            "some base tokens were printed"
        );
        let chatty = outs
            .iter()
            .filter(|o| o.stderr.contains(": debug: "))
            .count();
        assert!(
            chatty * 2 >= outs.len(),
            "most commands said a lot at -vvvv"
        );
    }
    for out in outs {
        assert_ne!(out.code, 101, "panic: {}", out.stderr);
        for secret in &secrets {
            assert!(
                !out.stderr.contains(secret.as_str()),
                "a secret on stderr: {}",
                out.stderr
            );
        }
    }
    // No file outside the cache holds a secret (HOME, config, TMPDIR, cwd all live here).
    crate::support::assert_no_secret_in_files(case.dir.path(), &case.cache_dir(), &secrets);
}

fn isolated(case: &mut Case) {
    let tmp = case.dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    case.set("TMPDIR", tmp.to_str().unwrap());
}

#[test]
fn token_auth() {
    let mut case = Case::new();
    isolated(&mut case);
    let outs = every_command(&mut case);
    check_world(&case, &outs);
}

#[test]
fn approle_login_with_secret_id() {
    let mut case = Case::new();
    isolated(&mut case);
    case.login_approle();
    // The Vault token of the login is a secret too; it lives in the cache only.
    let outs = every_command(&mut case);
    check_world(&case, &outs);
    // A wrong secret-id fails without echoing it.
    case.set(
        "SEATABLE_CRED_SECRET_ID",
        "11111111-2222-3333-4444-555555555555",
    );
    case.secrets
        .push("11111111-2222-3333-4444-555555555555".into());
    let out = case.run(&["get", "-vvvv", "--refresh", "--cache", "none"]);
    check(&case, &[out.fails(3, "approle")], false);
}

#[test]
fn userpass_and_jwt_logins() {
    let mut case = Case::new();
    isolated(&mut case);
    case.login_userpass();
    let outs = every_command(&mut case);
    check_world(&case, &outs);

    let mut case = Case::new();
    isolated(&mut case);
    case.login_jwt();
    let outs = every_command(&mut case);
    check_world(&case, &outs);
}

#[test]
fn core_dumps_are_off() {
    let case = Case::new();
    let mut child = case.spawn_stuck_refresh();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let soft = core.split_whitespace().nth(4).unwrap();
    assert_eq!(soft, "0", "{core}");
    child.kill().unwrap();
    child.wait().unwrap();
}
