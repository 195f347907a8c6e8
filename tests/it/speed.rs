//! What keeps a cache hit fast, checked without timing anything: it opens
//! no socket, starts no async runtime (no epoll, no eventfd) and no thread.
//! The helper runs under a seccomp filter that refuses exactly those system
//! calls; a hit must not notice, while a refresh must fail under it.

use std::os::unix::process::CommandExt;

use crate::support::{Case, run_with_input};

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

/// A classic BPF program: `EPERM` for the denied calls, allow the rest.
fn filter() -> Vec<libc::sock_filter> {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const RET_ERRNO: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO
    const RET_ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
    let calls = denied();
    let mut program = vec![libc::sock_filter {
        code: LD_W_ABS,
        jt: 0,
        jf: 0,
        k: 0,
    }]; // seccomp_data.nr
    for (i, nr) in calls.iter().enumerate() {
        // Jump to the EPERM return at the end when equal.
        let to_deny = (calls.len() - i) as u8;
        program.push(libc::sock_filter {
            code: JEQ_K,
            jt: to_deny,
            jf: 0,
            k: *nr as u32,
        });
    }
    program.push(libc::sock_filter {
        code: RET_K,
        jt: 0,
        jf: 0,
        k: RET_ALLOW,
    });
    program.push(libc::sock_filter {
        code: RET_K,
        jt: 0,
        jf: 0,
        k: RET_ERRNO | libc::EPERM as u32,
    });
    program
}

/// Runs the helper with those system calls refused.
fn confined(case: &Case, args: &[&str], input: &str) -> crate::support::Out {
    let mut program = filter();
    let mut cmd = case.command(args);
    // SAFETY: only prctl between fork and exec; the program was built before.
    unsafe {
        cmd.pre_exec(move || {
            let fprog = libc::sock_fprog {
                len: program.len() as u16,
                filter: program.as_mut_ptr(),
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &fprog as *const _,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
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
