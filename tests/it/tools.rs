//! `exec` and git's credential protocol through real `git credential fill`
//! (shell completions: completions.rs).

use crate::support::{Case, run_with_input};

#[test]
fn exec_puts_the_credential_in_the_childs_environment() {
    let mut case = Case::new();
    case.set("SEATABLE_CRED_SECRET_ID", "must-not-leak-to-the-child");
    let out = case
        .run(&["exec", "--", "sh", "-c", "printf '%s|%s|%s|%s|%s|%s' \"$SEATABLE_SERVER_URL\" \"$SEATABLE_API_GATEWAY_URL\" \"$SEATABLE_BASE_UUID\" \"$SEATABLE_BASE_TOKEN\" \"$SEATABLE_BASE_TOKEN_EXPIRES_AT\" \"${SEATABLE_CRED_SECRET_ID:-unset}\""])
        .ok();
    let parts: Vec<&str> = out.stdout.split('|').collect();
    assert_eq!(parts[0], case.standin.url);
    assert_eq!(parts[1], format!("{}/api-gateway/", case.standin.url));
    assert_eq!(parts[2], case.base.dtable_uuid);
    assert!(case.standin.accepts(parts[3], &case.base.dtable_uuid));
    assert!(parts[4].ends_with('Z'));
    assert_eq!(
        parts[5], "unset",
        "the helper's own secrets stay with the helper"
    );
}

#[test]
fn exec_passes_the_exit_status_and_arguments_through() {
    let case = Case::new();
    let out = case.run(&[
        "exec",
        "sh",
        "-c",
        "echo \"$1 $2\"; exit 7",
        "sh",
        "-x",
        "--y",
    ]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert_eq!(
        out.stdout, "-x --y\n",
        "arguments after CMD are CMD's, even flag-like ones"
    );
    // The process is replaced: the shell's PID is the helper's own.
    let child = case
        .command(&["exec", "--", "sh", "-c", "echo $$"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let helper_pid = child.id();
    let out = crate::support::wait_bounded(child, std::time::Duration::from_secs(60));
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        helper_pid.to_string(),
        "the command runs in the helper's process"
    );
}

#[test]
fn exec_errors() {
    let case = Case::new();
    case.run(&["exec"]).fails(2, "CMD");
    let out = case.run(&["exec", "--", "no-such-command-xyz"]);
    assert_eq!(out.code, 127);
    assert!(
        out.stderr
            .contains("no-such-command-xyz: command not found"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1);
}

fn git(case: &Case, args: &[&str], input: &str) -> crate::support::Out {
    let mut cmd = case.tool("git");
    cmd.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    run_with_input(cmd, input)
}

#[test]
fn git_credential_fill_gets_the_base_token() {
    let case = Case::new();
    let helper = format!("!{} git-credential", crate::support::HELPER);
    let host = case.standin.url.trim_start_matches("http://").to_string();
    let out = git(
        &case,
        &[
            "-c",
            &format!("credential.helper={helper}"),
            "credential",
            "fill",
        ],
        &format!("protocol=http\nhost={host}\n\n"),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let answer: std::collections::HashMap<&str, &str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .collect();
    assert_eq!(answer["username"], "seatable-cred");
    assert!(
        case.standin
            .accepts(answer["password"], &case.base.dtable_uuid)
    );
    let expiry: u64 = answer["password_expiry_utc"].parse().unwrap();
    let v = case.run(&["get", "-o", "json"]).ok().json();
    let refresh_at = humantime::parse_rfc3339(v["refresh_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        expiry,
        refresh_at
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );

    // git reject → our erase: the cached token is dropped.
    let exchanges = case.standin.exchanges();
    let out = git(
        &case,
        &[
            "-c",
            &format!("credential.helper={helper}"),
            "credential",
            "reject",
        ],
        &format!(
            "protocol=http\nhost={host}\nusername=seatable-cred\npassword={}\n\n",
            answer["password"]
        ),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(case.entry_files().is_empty());
    case.run(&["get"]).ok();
    assert_eq!(case.standin.exchanges(), exchanges + 1);
}

#[test]
fn git_credential_ignores_other_hosts_and_store() {
    let case = Case::new();
    let out = case
        .run_with_stdin(
            &["git-credential", "get"],
            "protocol=https\nhost=github.com\n\n",
        )
        .ok();
    assert_eq!(
        out.stdout, "",
        "no answer for a host that is not the SeaTable server"
    );
    assert_eq!(case.standin.stats().exchange_requests, 0);
    case.run_with_stdin(
        &["git-credential", "store"],
        "protocol=https\nhost=x\nusername=u\npassword=p\n\n",
    )
    .ok();
    // Unknown keys and capabilities are fine; EOF ends the input.
    let host = case.standin.url.trim_start_matches("http://").to_string();
    let out = case
        .run_with_stdin(
            &["git-credential", "get"],
            &format!(
                "capability[]=authtype\nprotocol=http\nhost={host}\nwwwauth[]=Bearer realm=\"x\""
            ),
        )
        .ok();
    assert!(out.stdout.contains("password="));
}
