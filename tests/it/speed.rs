//! What keeps a cache hit fast, checked without timing anything: it opens
//! no socket, starts no async runtime (no epoll, no eventfd) and no thread.
//! The helper runs under a seccomp filter that refuses exactly those system
//! calls; a hit must not notice, while a refresh must fail under it.

use crate::support::{Case, run_with_input, seccomp};

/// System calls a cache hit must not make.
fn denied() -> Vec<i64> {
    let mut calls = vec![
        libc::SYS_socket,
        libc::SYS_connect,
        libc::SYS_clone,
        libc::SYS_clone3,
        libc::SYS_epoll_create1,
        libc::SYS_eventfd2,
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([
        libc::SYS_epoll_create,
        libc::SYS_eventfd,
        libc::SYS_fork,
        libc::SYS_vfork,
    ]);
    calls
}

/// Runs the helper with those system calls refused.
fn confined(case: &Case, args: &[&str], input: &str) -> crate::support::Out {
    let mut cmd = case.command(args);
    seccomp::deny(&mut cmd, &denied(), seccomp::Action::Refuse);
    run_with_input(cmd, input)
}

#[test]
fn cache_hit_makes_no_socket_no_runtime_and_no_thread() {
    for backend in ["file", "keyring"] {
        let mut case = Case::new();
        case.set("SEATABLE_CRED_CACHE", backend);
        let warm = case.run(&["get", "-o", "json"]).ok();
        let hit = confined(&case, &["get", "-o", "json"], "");
        assert_eq!(
            hit.code, 0,
            "{backend}: a hit needs none of the refused calls: {}",
            hit.stderr
        );
        assert_eq!(hit.json()["token"], warm.json()["token"]);
        assert_eq!(hit.json()["cached"], true);
        // The filter does bite: a refresh cannot run under it.
        let refresh = confined(&case, &["get", "--refresh"], "");
        assert_ne!(
            refresh.code, 0,
            "{backend}: the refresh should have been refused"
        );
        case.run(&["erase"]).ok();
    }
}

#[test]
fn git_credential_hit_is_as_light() {
    let case = Case::new();
    case.run(&["get"]).ok();
    let host = case.standin.url.trim_start_matches("http://").to_string();
    let out = confined(
        &case,
        &["git-credential", "get"],
        &format!("protocol=http\nhost={host}\n\n"),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("password="));
}
