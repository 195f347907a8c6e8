//! Seccomp filters for the helper under test: refuse some system calls
//! (what a cache hit must not need), or kill the process the moment it makes
//! one (a `kill -9` that lands exactly at a step, e.g. the rename that
//! publishes a cache entry).

use std::os::unix::process::CommandExt;
use std::process::Command;

/// What happens to a denied call.
#[derive(Clone, Copy)]
pub enum Action {
    /// It fails with EPERM.
    Refuse,
    /// The process dies of it, as uncatchably as by SIGKILL.
    Kill,
}

/// A classic BPF program: `action` for the `calls`, allow the rest.
fn filter(calls: &[i64], action: Action) -> Vec<libc::sock_filter> {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const RET_ERRNO: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO
    const RET_KILL_PROCESS: u32 = 0x8000_0000; // SECCOMP_RET_KILL_PROCESS
    const RET_ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
    let deny = match action {
        Action::Refuse => RET_ERRNO | libc::EPERM as u32,
        Action::Kill => RET_KILL_PROCESS,
    };
    let mut program = vec![libc::sock_filter {
        code: LD_W_ABS,
        jt: 0,
        jf: 0,
        k: 0,
    }]; // seccomp_data.nr
    for (i, nr) in calls.iter().enumerate() {
        // Jump to the deny return at the end when equal.
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
        k: deny,
    });
    program
}

/// Runs `cmd` under a filter that applies `action` to `calls`.
pub fn deny(cmd: &mut Command, calls: &[i64], action: Action) {
    let mut program = filter(calls, action);
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
}

/// The calls that rename a file (how an entry is published).
pub fn renames() -> Vec<i64> {
    let mut calls = vec![libc::SYS_renameat, libc::SYS_renameat2];
    #[cfg(target_arch = "x86_64")]
    calls.push(libc::SYS_rename);
    calls
}
