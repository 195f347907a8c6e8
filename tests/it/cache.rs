//! The file cache: where tokens live on disk (memory-backed only).

use std::os::unix::fs::PermissionsExt;

use crate::support::Case;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn file_cache_is_private_on_tmpfs() {
    let case = Case::new();
    case.run(&["get"]).ok();
    let dir = case.cache_dir();
    assert_eq!(mode(&dir), 0o700);
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(mode(&files[0]), 0o600);
    // The entry holds the base token but never the API token.
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(!text.contains(&case.base.api_token));
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
    let entry = std::fs::read_dir(case.cache_dir())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
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
