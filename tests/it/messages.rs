//! The first hour (issue 23): what a newcomer meets when something is set
//! wrong — each diagnosis names the real cause, where the setting came
//! from and what to do, on the first line of stderr and within seconds.
//! Driven as a user meets them: the helper against the real OpenBao and the
//! stand-in. TESTING.md's "Messages" section maps each diagnosis here.

use std::time::Duration;

use crate::support::Case;

// --- the process itself -------------------------------------------------------

/// A reader of stderr that went away (a closed pipe) is no reason to abort:
/// the helper exits with the code its failure has, as with stderr closed.
#[test]
fn a_closed_stderr_pipe_is_no_crash() {
    let mut case = Case::new();
    case.set("VAULT_ADDR", "http://127.0.0.1:1");
    for args in [
        &["get", "--refresh", "-vv"][..],
        &["doctor", "-vv"][..],
        &["exec"][..],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut cmd = case.command(args);
        cmd.stdout(std::process::Stdio::null())
            .stderr(writer)
            .stdin(std::process::Stdio::null());
        let child = cmd.spawn().unwrap();
        let status = crate::support::wait_bounded(child, Duration::from_secs(60)).status;
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            None,
            "{args:?} died of a signal: {status:?}"
        );
        let expected = match args[0] {
            "exec" => 2,
            "doctor" => 5,
            _ => 5,
        };
        assert_eq!(status.code(), Some(expected), "{args:?}");
    }
}

// --- retries and refused connections ------------------------------------------

/// A retried failure is no warning: a call that succeeded on its second try
/// says nothing at the default verbosity, and shows the retry at -v.
#[test]
fn retries_are_shown_at_v_not_as_warnings() {
    let case = Case::new();
    case.standin
        .push_faults([seatable_standin::Fault::Status { code: 502 }]);
    let out = case.run(&["get", "-o", "token"]).ok();
    assert_eq!(out.stderr, "", "a retry that worked is no warning");
    case.standin
        .push_faults([seatable_standin::Fault::Status { code: 502 }]);
    let out = case.run(&["get", "--refresh", "-o", "token", "-v"]).ok();
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("seatable-cred: info: ")
                && l.contains("failed (502)")
                && l.contains("retrying in")),
        "the retry at -v: {}",
        out.stderr
    );
    assert_eq!(
        case.standin.stats().exchange_requests,
        4,
        "each 502 retried once"
    );
}

