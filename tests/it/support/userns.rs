//! A user namespace of the test's own. The kernel keeps user keyrings per
//! user namespace, so every helper a test runs joins one — where `@u` is a
//! fresh keyring — and nothing a test does (`erase --all` included) can
//! touch the developer's keyring (SPEC §11).
//!
//! A holder process (`unshare --user … sleep`) keeps the namespace alive;
//! commands join it with `setns` between fork and exec. The user's ids are
//! mapped to themselves, so files the helper makes are the user's as usual.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Namespace {
    holder: u32,
    fd: OwnedFd,
}

impl Namespace {
    #[track_caller]
    pub fn new() -> Namespace {
        // SAFETY: plain syscalls.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--user",
            &format!("--map-user={uid}"),
            &format!("--map-group={gid}"),
            "--",
            "sleep",
            "1000000",
        ]);
        let log = std::env::temp_dir().join(format!(
            "sc-it-userns-{}.log",
            seatable_standin::random_hex(4)
        ));
        let holder = super::spawn_tied_to_process(cmd, &log);
        // Joinable once unshare has mapped the ids and become `sleep`.
        let deadline = Instant::now() + Duration::from_secs(30);
        let comm = PathBuf::from(format!("/proc/{holder}/comm"));
        loop {
            if std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() == "sleep") {
                break;
            }
            let why = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                super::alive(holder) && Instant::now() < deadline,
                "cannot make a user namespace for the test's own keyring (unshare --user): {why}; \
                 the tests need unprivileged user namespaces (or root)"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = std::fs::remove_file(&log);
        let fd = std::fs::File::open(format!("/proc/{holder}/ns/user"))
            .expect("the holder's user namespace")
            .into();
        Namespace { holder, fd }
    }

    /// Makes `cmd` run in the namespace.
    pub fn join(&self, cmd: &mut Command) {
        let fd = self.fd.as_raw_fd();
        // SAFETY: setns is async-signal-safe; the child is single-threaded.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWUSER) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        super::kill(self.holder);
    }
}
