//! The local cache: where tokens live (memory only), one refresh at a time,
//! the refresh window, erase and status, the kernel keyring, Vault logins.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use seatable_standin::Fault;

use crate::support::{Case, Out, shared, wait_bounded};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Starts `n` helpers at once (spawned first, released together through a
/// barrier on stdin) and collects their outputs.
pub fn run_concurrently(cases: &[&Case], per_case: usize, args: &[&str]) -> Vec<Out> {
    let mut children = Vec::new();
    for case in cases {
        for _ in 0..per_case {
            let mut cmd = case.tool("sh");
            // Each waits for the go signal on stdin, then execs the helper.
            cmd.arg("-c")
                .arg("read go; exec \"$0\" \"$@\"")
                .arg(crate::support::HELPER)
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            children.push((case, cmd.spawn().unwrap()));
        }
    }
    for (_, child) in children.iter_mut() {
        use std::io::Write;
        let _ = child.stdin.take().unwrap().write_all(b"go\n");
    }
    children
        .into_iter()
        .map(|(case, child)| {
            let output = wait_bounded(child, Duration::from_secs(120));
            let out = Out {
                code: output.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            };
            case.assert_no_secrets(&out);
            out
        })
        .collect()
}

#[test]
fn file_cache_is_private_on_tmpfs() {
    let case = Case::new();
    case.run(&["get"]).ok();
    let dir = case.cache_dir();
    assert_eq!(mode(&dir), 0o700);
    let entries = case.entry_files();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(mode(&entries[0]), 0o600);
    // The entry holds the base token but never the API token.
    let text = std::fs::read_to_string(&entries[0]).unwrap();
    assert!(!text.contains(&case.base.api_token));
    // Its lock file holds nothing at all.
    let lock = entries[0].with_extension("lock");
    assert_eq!(mode(&lock), 0o600);
    assert_eq!(std::fs::metadata(&lock).unwrap().len(), 0);
}

#[test]
fn persistent_cache_dir_is_refused_with_nothing_written() {
    let mut case = Case::new();
    let disk = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dir = disk.path().join("cache");
    case.set("SEATABLE_CRED_CACHE_DIR", dir.to_str().unwrap());
    case.run(&["get"]).fails(2, "persistent filesystem");
    assert!(!dir.exists());
    assert_eq!(
        case.standin.stats().exchange_requests,
        0,
        "refused before any network work"
    );
    // Accepting the risk explicitly makes it work.
    case.run(&["get", "--allow-disk-cache"]).ok();
    assert!(dir.exists());
}

#[test]
fn corrupt_or_loose_entries_are_misses() {
    let case = Case::new();
    case.run(&["get"]).ok();
    let entry = case.entry_files().remove(0);
    std::fs::write(&entry, b"{\"v\":1,\"key\":\"trunc").unwrap();
    case.run(&["get"]).ok();
    assert_eq!(case.standin.exchanges(), 2, "a truncated entry is a miss");
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o644)).unwrap();
    case.run(&["get"]).ok();
    assert_eq!(
        case.standin.exchanges(),
        3,
        "a world-readable entry is a miss"
    );
    assert_eq!(mode(&entry), 0o600, "and is replaced by a private one");
    case.run(&["get"]).ok();
    assert_eq!(case.standin.exchanges(), 3);
}

#[test]
fn cache_none_always_exchanges() {
    let mut case = Case::new();
    case.set("SEATABLE_CRED_CACHE", "none");
    case.run(&["get"]).ok();
    case.run(&["get"]).ok();
    assert_eq!(case.standin.exchanges(), 2);
    assert!(!case.cache_dir().exists());
}

#[test]
fn forty_concurrent_cold_gets_make_one_exchange() {
    let case = Case::new();
    // A slow exchange keeps the race window wide open.
    case.standin.push_faults([Fault::Slow { millis: 300 }]);
    let outs = run_concurrently(&[&case], 40, &["get", "-o", "token"]);
    let first = &outs[0].stdout;
    for out in &outs {
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(&out.stdout, first, "every process prints the same token");
    }
    assert_eq!(
        case.standin.stats().exchange_requests,
        1,
        "exactly one exchange"
    );
}

#[test]
fn forty_concurrent_cold_gets_in_the_kernel_keyring() {
    let mut case = Case::new();
    case.set("SEATABLE_CRED_CACHE", "keyring");
    let outs = run_concurrently(&[&case], 40, &["get", "-o", "token"]);
    assert!(
        outs.iter()
            .all(|o| o.code == 0 && o.stdout == outs[0].stdout)
    );
    assert_eq!(case.standin.stats().exchange_requests, 1);
    assert!(
        case.entry_files().is_empty(),
        "nothing in files: the token is in the keyring"
    );
    case.run(&["erase"]).ok();
}

/// Tests never touch the developer's keyring: each case's helpers run in a
/// user namespace of the case's own, with a fresh user keyring. (Checked by
/// reading only: the key the helper made is not in this process's keyring.)
#[test]
fn the_tests_keyring_is_not_the_users() {
    use linux_keyutils::{KeyRing, KeyRingIdentifier};
    let mut case = Case::new();
    case.set("SEATABLE_CRED_CACHE", "keyring");
    case.run(&["get"]).ok();
    case.run(&["get"]).ok();
    assert_eq!(case.standin.exchanges(), 1, "the case's keyring caches");
    let description = format!("seatable-cred:{}", crate::support::cache_key(&case.env));
    let users = KeyRing::from_special_id(KeyRingIdentifier::User, false)
        .expect("this process's user keyring");
    assert!(
        users.search(&description).is_err(),
        "the helper wrote into the developer's keyring"
    );
    case.run(&["erase", "--all"]).ok();
}

#[test]
fn keyring_round_trip_status_and_erase() {
    let mut case = Case::new();
    case.set("SEATABLE_CRED_CACHE", "keyring");
    let token = case.run(&["get", "-o", "token"]).ok().stdout;
    assert_eq!(case.run(&["get", "-o", "token"]).ok().stdout, token);
    assert_eq!(
        case.standin.exchanges(),
        1,
        "second call from the kernel keyring"
    );
    let status = case.run(&["status", "-o", "json"]).ok();
    assert!(
        !status.stdout.contains(token.trim()),
        "status never shows the token"
    );
    let v = status.json();
    assert_eq!(v["backend"], "keyring");
    assert_eq!(v["state"], "fresh");
    assert_eq!(v["cached"], true);
    case.run(&["erase"]).ok();
    let v = case.run(&["status", "-o", "json"]).ok().json();
    assert_eq!(v["state"], "missing");
    case.run(&["get"]).ok();
    assert_eq!(case.standin.exchanges(), 2, "erased, so exchanged again");
    case.run(&["erase"]).ok();
}

#[test]
fn auto_prefers_the_kernel_keyring() {
    let mut case = Case::new();
    case.set("SEATABLE_CRED_CACHE", "auto");
    let v = case.run(&["status", "-o", "json"]).ok().json();
    assert_eq!(
        v["backend"], "keyring",
        "keyutils works here, so auto picks it"
    );
    case.run(&["get"]).ok();
    case.run(&["get"]).ok();
    assert_eq!(case.standin.exchanges(), 1);
    assert!(case.entry_files().is_empty(), "the token is in the keyring");
    case.run(&["erase"]).ok();
}

#[test]
fn status_text_and_json_never_show_the_token() {
    let case = Case::new();
    let v = case.run(&["status", "-o", "json"]).ok().json();
    assert_eq!(v["state"], "missing");
    assert_eq!(v["cached"], false);
    let token = case.run(&["get", "-o", "token"]).ok().stdout;
    let v = case.run(&["status", "-o", "json"]).ok().json();
    assert_eq!(v["backend"], "file");
    assert_eq!(v["state"], "fresh");
    assert_eq!(v["dtable_name"], case.base.dtable_name);
    assert_eq!(v["dtable_uuid"], case.base.dtable_uuid);
    assert_eq!(v["permission"], "rw");
    let left = v["seconds_left"].as_u64().unwrap();
    assert!(left > 2 * 24 * 3600 && left <= 3 * 24 * 3600);
    let text = case.run(&["status"]).ok().stdout;
    assert!(
        text.contains("yes (fresh)") && text.contains(&case.base.dtable_name),
        "{text}"
    );
    assert!(!text.contains(token.trim()) && !v.to_string().contains(token.trim()));
}

/// `erase` drops the profile's cached base token wherever a local backend
/// holds it, not only in the backend the profile names now: one cached
/// under an earlier setting would stay valid until it expires.
#[test]
fn erase_drops_the_entry_whatever_the_backend_is_now() {
    let mut case = Case::new();
    case.run(&["get"]).ok();
    assert_eq!(case.entry_files().len(), 1);
    case.set("SEATABLE_CRED_CACHE", "none");
    case.run(&["erase"]).ok();
    assert!(
        case.entry_files().is_empty(),
        "the file entry went with --cache none: {:?}",
        case.entry_files()
    );
    case.set("SEATABLE_CRED_CACHE", "file");
    case.run(&["get"]).ok();
    assert_eq!(case.standin.exchanges(), 2, "the next get exchanged again");
}

#[test]
fn erase_and_erase_all() {
    let mut case = Case::new();
    case.run(&["get"]).ok();
    case.run(&["erase"]).ok();
    assert!(case.entry_files().is_empty());
    case.run(&["get"]).ok();
    assert_eq!(case.standin.exchanges(), 2);
    // A second profile (another lifetime, so another key) in the same directory.
    case.run(&["get", "--lifetime", "1h"]).ok();
    assert_eq!(case.entry_files().len(), 2);
    case.run(&["erase", "--all"]).ok();
    assert!(case.entry_files().is_empty());
    // --all needs no server or secret configured.
    case.unset("SEATABLE_SERVER_URL")
        .unset("SEATABLE_CRED_SECRET");
    case.run(&["erase", "--all"]).ok();
}

#[test]
fn refresh_window_refreshes_and_serves_stale_on_transient_failure() {
    let mut case = Case::new();
    let first = case.run(&["get", "-o", "json"]).ok().json();
    // Move the cached token into its refresh window: issued 500 s ago, valid
    // 100 s more; the window is min(5m, lifetime/2) = 300 s.
    let now = crate::support::now();
    case.edit_entry(false, |v| {
        v["fetched_at"] = (now - 500).into();
        v["expires_at"] = (now + 100).into();
    });
    // Inside the window, SeaTable failing: the still-valid token, a warning, exit 0.
    case.set("SEATABLE_CRED_TIMEOUT", "1s");
    case.standin
        .push_faults(std::iter::repeat_n(Fault::Status { code: 502 }, 100));
    let out = case.run(&["get", "-o", "json"]).ok();
    assert_eq!(
        out.json()["token"],
        first["token"],
        "the good token is served"
    );
    assert_eq!(out.json()["cached"], true);
    assert!(
        out.stderr.contains("warning") && out.stderr.contains("refresh failed"),
        "{}",
        out.stderr
    );
    assert!(
        case.standin.stats().exchange_requests > 1,
        "a refresh was tried"
    );
    // The failed refresh did not replace the good entry; a working one does.
    case.standin.clear_faults();
    let second = case.run(&["get", "-o", "json"]).ok().json();
    assert_ne!(second["token"], first["token"]);
    assert_eq!(second["cached"], false);
    assert_eq!(case.standin.exchanges(), 2);
    // Fresh again: the next call is a hit.
    case.run(&["get"]).ok();
    assert_eq!(case.standin.exchanges(), 2);
}

#[test]
fn kill_9_of_the_lock_holder_leaves_no_stuck_lock() {
    let case = Case::new();
    let mut holder = case.spawn_stuck_refresh();
    holder.kill().unwrap(); // SIGKILL, while it holds the lock
    holder.wait().unwrap();
    let started = Instant::now();
    let out = case.run(&["get", "-o", "token"]).ok();
    assert!(!out.stdout.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the kernel released the lock"
    );
    assert_eq!(case.entry_files().len(), 1);
}

/// A refresh killed at the very moment it publishes its entry — the rename
/// of the written temp file — leaves the old entry whole, and the next
/// refresh removes the temp file it left (which holds a token).
#[test]
fn kill_9_at_the_write_leaves_the_old_entry_whole() {
    use crate::support::seccomp;
    let case = Case::new();
    case.run(&["get"]).ok();
    let entry = case.entry_files().remove(0);
    let good = std::fs::read(&entry).unwrap();
    let mut cmd = case.command(&["get", "--refresh"]);
    seccomp::deny(&mut cmd, &seccomp::renames(), seccomp::Action::Kill);
    let status = crate::support::run_with_input(cmd, "");
    assert_eq!(
        status.code, -1,
        "killed (by a signal) at the rename: {}",
        status.stderr
    );
    assert_eq!(
        case.standin.exchanges(),
        2,
        "it was killed after the exchange"
    );
    assert_eq!(
        std::fs::read(&entry).unwrap(),
        good,
        "the old entry is whole"
    );
    let temps = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(case.cache_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".tmp-")
            })
            .collect()
    };
    let left = temps();
    assert_eq!(
        left.len(),
        1,
        "the kill landed after the temp file was written"
    );
    assert_eq!(mode(&left[0]), 0o600);
    // Minutes later, the next refresh cleans up.
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(300);
    std::fs::File::options()
        .write(true)
        .open(&left[0])
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    let started = Instant::now();
    case.run(&["get", "--refresh"]).ok();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no lock was left"
    );
    assert!(temps().is_empty(), "{:?}", temps());
    assert_ne!(
        std::fs::read(&entry).unwrap(),
        good,
        "a new entry was written"
    );
}

#[test]
fn waiting_for_the_lock_is_bounded_by_the_timeout() {
    let mut case = Case::new();
    let holder = case.spawn_stuck_refresh();
    case.set("SEATABLE_CRED_TIMEOUT", "1s");
    let started = Instant::now();
    case.run(&["get"]).fails(5, "refreshing this token");
    assert!(started.elapsed() < Duration::from_secs(8));
    let _ = wait_bounded(holder, Duration::from_secs(60));
}

#[test]
fn vault_login_is_cached_and_renewed_instead_of_repeated() {
    let shared = shared();
    let mut case = Case::new();
    // The secret-id works once: every later Vault access must reuse the token.
    let (role_id, secret_id) = shared.once_credentials();
    case.secrets.push(secret_id.clone());
    case.unset("VAULT_TOKEN")
        .set("SEATABLE_CRED_AUTH", "approle")
        .set("SEATABLE_CRED_ROLE_ID", role_id)
        .set("SEATABLE_CRED_SECRET_ID", secret_id);
    case.run(&["get", "-vv"]).ok();
    let out = case.run(&["get", "--refresh", "-vv"]).ok();
    assert!(
        out.stderr.contains("reusing the cached Vault token"),
        "{}",
        out.stderr
    );
    let v = case.run(&["status", "-o", "json"]).ok().json();
    assert_eq!(v["vault_login"]["cached"], true);
    assert_eq!(v["vault_login"]["method"], "approle");
    // Past two thirds of its TTL a renewable token is renewed: make the
    // cached login look 100 s old with 20 s to go (Vault's own TTL is 60 s).
    let now = crate::support::now();
    case.edit_entry(true, |v| {
        v["issued_at"] = (now - 100).into();
        v["expires_at"] = (now + 20).into();
    });
    let out = case.run(&["get", "--refresh", "-vv"]).ok();
    assert!(
        out.stderr.contains("renewed the cached Vault token"),
        "{}",
        out.stderr
    );
    assert_eq!(case.standin.exchanges(), 3);
    // The cached login is in the cache directory, private like the rest.
    let files = case.entry_files();
    assert!(files.iter().any(|f| {
        f.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("vault-")
    }));
    for f in &files {
        assert_eq!(mode(f), 0o600);
    }
}

#[test]
fn revoked_cached_vault_token_leads_to_a_fresh_login() {
    let mut case = Case::new();
    case.login_approle();
    case.run(&["get"]).ok();
    // Revoke every token of the reader role's logins made so far.
    let entry = case
        .entry_files()
        .into_iter()
        .find(|f| {
            f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("vault-")
        })
        .unwrap();
    let cached: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();
    let token = cached["vault_token"].as_str().unwrap().to_string();
    case.secrets.push(token.clone());
    shared().bao.api(
        "POST",
        "auth/token/revoke",
        Some(serde_json::json!({"token": token})),
    );
    let out = case.run(&["get", "--refresh", "-vv"]).ok();
    assert!(out.stderr.contains("logging in again"), "{}", out.stderr);
    assert_eq!(case.standin.exchanges(), 2);
}
