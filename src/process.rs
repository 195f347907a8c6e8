//! Process start-up: hardening, the panic report, and what the std runtime
//! would otherwise have done (the binary has its own C `main`); stdout,
//! written in one go; and stderr, written without ever panicking.

use std::io::Write;

use crate::error::Failure;

/// Everything before the command line is parsed.
pub fn start() {
    // SAFETY: plain syscalls with valid arguments.
    unsafe {
        // Standard descriptors that are closed get /dev/null, so that no
        // file the helper opens (a cache entry) can become its stdout.
        for fd in 0..=2 {
            if libc::fcntl(fd, libc::F_GETFD) == -1
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
                && libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) == -1
            {
                libc::abort();
            }
        }
        // A reader that goes away is an error to report, not a signal to die of.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    harden();
}

static ORIGINAL_CORE_LIMIT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Gives `exec`'s child the core-dump limit the helper started with (the
/// "dumpable" flag is reset by execve itself).
pub fn restore_core_dumps() {
    // SAFETY: plain syscalls with valid arguments.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_CORE, &mut limit) == 0 {
            limit.rlim_cur = ORIGINAL_CORE_LIMIT.load(std::sync::atomic::Ordering::Relaxed);
            libc::setrlimit(libc::RLIMIT_CORE, &limit);
        }
    }
}

/// Core dumps off (a dump would hold every secret in memory), no ptrace
/// attach or /proc/PID/mem reads by other processes of the same user, and a
/// panic reported as one line with exit 1 — never a backtrace, whatever
/// `RUST_BACKTRACE` says.
pub fn harden() {
    // SAFETY: plain syscalls with valid arguments.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_CORE, &mut limit) == 0 {
            limit.rlim_cur = 0;
            libc::setrlimit(libc::RLIMIT_CORE, &limit);
        }
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_string());
        let line: String = what.split_whitespace().collect::<Vec<_>>().join(" ");
        let line = crate::shown::text(&line);
        say(&format!(
            "seatable-cred: internal error: {line}; please report this bug\n"
        ));
        std::process::exit(1);
    }));
}

/// Writes everything in one go; a closed pipe is an error, not a panic.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::internal(format!("cannot write to stdout: {e}")).into())
}

/// Writes to stderr in one go. A reader that went away (a closed pipe) is
/// no reason to stop: `eprint!` would panic there, and a panic while
/// reporting one aborts — the helper keeps the exit code of what it did.
pub fn say(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
