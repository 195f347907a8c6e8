//! The helper's process itself: `exec` of a command that cannot be run, and
//! the hardening other processes of the same user run into — the helper is
//! not dumpable, so they can neither read its memory nor its environment.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::users::{User, helper_for_anyone};
use crate::support::{Case, wait_bounded};

#[test]
fn exec_of_a_command_that_cannot_be_run_exits_126() {
    let case = Case::new();
    // There, but without execute permission: even root may not run it.
    let script = case.dir.path().join("job.sh");
    std::fs::write(&script, "#!/bin/sh\necho ran\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = case.run(&["exec", "--", script.to_str().unwrap()]);
    assert_eq!(out.code, 126, "{}", out.stderr);
    assert_eq!(out.stdout, "", "the command did not run");
    assert_eq!(
        out.stderr,
        format!(
            "seatable-cred: cannot run {}: permission denied\n",
            script.display()
        )
    );
    // A directory is no command either.
    let dir = case.dir.path();
    let out = case.run(&["exec", "--", dir.to_str().unwrap()]);
    assert_eq!(out.code, 126, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with(&format!("seatable-cred: cannot run {}: ", dir.display())),
        "{}",
        out.stderr
    );
}

/// Kills the child when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads `/proc/<pid>/<file>` as `user`: the bytes, or the error `cat` gave.
fn read_as(user: &User, pid: u32, file: &str) -> Result<Vec<u8>, String> {
    let mut cmd = user.command("cat");
    cmd.arg(format!("/proc/{pid}/{file}"));
    let out = wait_bounded(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(30),
    );
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn other_processes_of_the_same_user_cannot_read_the_helpers_memory_or_environment() {
    let case = Case::new();
    let user = User::new("reading another process's memory as the same user");
    // The helper as that user, holding its Vault token (in its environment)
    // and the API token (in its memory) while SeaTable takes its time.
    case.standin
        .push_faults([seatable_standin::Fault::Slow { millis: 20_000 }]);
    let mut cmd = user.command(helper_for_anyone());
    cmd.arg("get")
        .envs(&case.env)
        .env("HOME", &user.home)
        .env("SEATABLE_CRED_CACHE", "none")
        .env_remove("SEATABLE_CRED_CACHE_DIR")
        .env_remove("XDG_CONFIG_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let helper = Running(cmd.spawn().unwrap());
    let pid = helper.0.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    while case.standin.stats().exchange_requests == 0 {
        assert!(
            Instant::now() < deadline,
            "the helper never reached SeaTable"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:")
                && l.split_whitespace().nth(1) == Some(&user.uid.to_string())),
        "the helper runs as the user: {status}"
    );

    // The same user, another process: as that user's shell would try it.
    for file in ["environ", "mem", "maps"] {
        let read = read_as(&user, pid, file);
        assert!(
            read.as_ref()
                .is_err_and(|e| e.contains("Permission denied")),
            "/proc/{pid}/{file} of the helper was readable by its own user: {:?}",
            read.map(|b| b.len())
        );
    }
    // The kernel hands the /proc files of a process that is not dumpable to root.
    let meta = std::fs::metadata(format!("/proc/{pid}/environ")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (0, 0),
        "/proc/{pid}/environ belongs to root"
    );

    // The control: an ordinary process of that user is open to it — what the
    // helper's hardening takes away.
    let mut sleeper = user.command("sleep");
    sleeper.arg("60").stdin(Stdio::null());
    let sleeper = Running(sleeper.spawn().unwrap());
    let environ = read_as(&user, sleeper.0.id(), "environ").expect("the control is readable");
    assert!(
        String::from_utf8_lossy(&environ).contains("HOME="),
        "the control's environment"
    );
    drop(helper);
}
