//! `--cache auto` where keyutils does not work (a seccomp filter refuses
//! its system calls, as container runtimes' profiles do): the memory-backed
//! directory, and without one, no cache at all — each said at `-v`.

use std::os::unix::fs::PermissionsExt;

use crate::support::{Case, Out, mountns, run_with_input, seccomp};

const NO_KEYRING: &str = "info: cache: the kernel keyring is not usable here";
const NO_DIRECTORY: &str = "info: cache: no usable memory-backed directory";

/// The system calls of keyutils.
fn keyutils() -> Vec<i64> {
    vec![libc::SYS_add_key, libc::SYS_request_key, libc::SYS_keyctl]
}

/// The helper with keyutils refused.
fn without_keyutils(case: &Case, args: &[&str]) -> Out {
    let mut cmd = case.command(args);
    seccomp::deny(&mut cmd, &keyutils(), seccomp::Action::Refuse);
    let out = run_with_input(cmd, "");
    case.assert_no_secrets(&out);
    out
}

/// `auto` with nothing configured: no --cache-dir; the runtime directory
/// (memory-backed, the user's) is the case's own.
fn auto_case() -> Case {
    let mut case = Case::new();
    let runtime = case.dir.path().join("run");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    case.set("SEATABLE_CRED_CACHE", "auto")
        .unset("SEATABLE_CRED_CACHE_DIR")
        .set("XDG_RUNTIME_DIR", runtime.to_str().unwrap());
    case
}

#[test]
fn auto_falls_back_to_the_file_cache_without_keyutils() {
    let case = auto_case();
    // Where keyutils works, auto takes the keyring: the filter is what changes it.
    let v = case.run(&["status", "-o", "json"]).ok().json();
    assert_eq!(v["backend"], "keyring");

    let first = without_keyutils(&case, &["get", "-o", "json", "-v"]).ok();
    assert_eq!(first.json()["cached"], false);
    assert_eq!(
        first.stderr.matches(NO_KEYRING).count(),
        1,
        "{}",
        first.stderr
    );
    assert!(!first.stderr.contains(NO_DIRECTORY), "{}", first.stderr);
    // The entry is a file in the runtime directory, and it answers the next call.
    let dir = case.dir.path().join("run/seatable-cred");
    let entry = dir.join(format!("{}.json", crate::support::cache_key(&case.env)));
    assert!(entry.is_file(), "no entry at {}", entry.display());
    let second = without_keyutils(&case, &["get", "-o", "json"]).ok();
    assert_eq!(second.json()["cached"], true);
    assert_eq!(second.json()["token"], first.json()["token"]);
    assert_eq!(second.stderr, "", "silent without -v");
    assert_eq!(case.standin.exchanges(), 1);
    let v = without_keyutils(&case, &["status", "-o", "json"])
        .ok()
        .json();
    assert_eq!(
        (v["backend"].as_str(), v["state"].as_str()),
        (Some("file"), Some("fresh"))
    );
}

#[test]
fn auto_caches_nothing_without_keyutils_and_a_memory_backed_directory() {
    let mut case = auto_case();
    // Nothing memory-backed left: no runtime directory, and /dev/shm —
    // in this run's own mount namespace — a directory on a persistent disk.
    case.unset("XDG_RUNTIME_DIR");
    let disk = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let kind = std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(disk.path())
        .output()
        .unwrap();
    let kind = String::from_utf8_lossy(&kind.stdout).trim().to_string();
    assert!(
        kind != "tmpfs" && kind != "ramfs",
        "this test needs {} on a persistent filesystem, not {kind}",
        env!("CARGO_TARGET_TMPDIR")
    );
    let setup = "mount --bind \"$DISK\" /dev/shm";
    let run = |args: &[&str]| {
        mountns::run(&case, setup, args, |cmd| {
            cmd.env("DISK", disk.path());
            seccomp::deny(cmd, &keyutils(), seccomp::Action::Refuse);
        })
    };
    for round in 0..2 {
        let out = run(&["get", "-o", "json", "-v"]).ok();
        assert_eq!(out.json()["cached"], false, "round {round}");
        for said in [NO_KEYRING, NO_DIRECTORY] {
            assert_eq!(out.stderr.matches(said).count(), 1, "{}", out.stderr);
        }
        // Why: /dev/shm is the disk now.
        assert!(
            out.stderr.contains("is on a persistent filesystem")
                && out.stderr.contains("caching is off"),
            "{}",
            out.stderr
        );
    }
    assert_eq!(case.standin.exchanges(), 2, "every call exchanged");
    let v = run(&["status", "-o", "json"]).ok().json();
    assert_eq!(
        (v["backend"].as_str(), v["state"].as_str()),
        (Some("none"), Some("missing"))
    );
    // Nothing was written to the disk: at most the empty directory that was refused.
    let mut found = Vec::new();
    let mut stack = vec![disk.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                found.push(entry.path());
            }
        }
    }
    assert!(found.is_empty(), "files on the disk: {found:?}");
}
