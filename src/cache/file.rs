//! The `file` backend: one file per key in a directory on a memory-backed
//! filesystem. Directory 0700 and files 0600, both owned by the user; files
//! are written atomically (temp file + rename) so a reader never sees half an
//! entry and a killed writer leaves the old entry intact.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use tracing::debug;
use zeroize::Zeroizing;

use super::Store;
use super::entry::MAX_ENTRY;
use super::own::{euid, open_own};
use crate::config::CacheSettings;
use crate::error::Failure;

const TMPFS_MAGIC: i64 = 0x0102_1994;
const RAMFS_MAGIC: i64 = 0x8584_58f6;

pub struct FileStore {
    dir: PathBuf,
}

/// The directory of the file backend — and of whatever else must stay
/// beside the cached tokens, as the agent's env files: the one the settings
/// name, or the default (see [`super::dir`]), created 0700 if missing,
/// refused or avoided when others could write it. A directory on a
/// persistent filesystem is refused unless `allow_disk_cache`.
pub fn directory(settings: &CacheSettings) -> Result<PathBuf> {
    // Refused before anything is created there.
    if let Some(dir) = &settings.dir
        && !settings.allow_disk
    {
        in_memory(dir)?;
    }
    let dir = super::dir::resolve(settings)?;
    if !settings.allow_disk {
        in_memory(&dir)?;
    }
    Ok(dir)
}

impl FileStore {
    /// Opens the file backend in [`directory`].
    pub fn open(settings: &CacheSettings) -> Result<FileStore> {
        Ok(FileStore {
            dir: directory(settings)?,
        })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Refuses a directory on a persistent filesystem, where tokens would
/// outlive a reboot.
fn in_memory(dir: &Path) -> Result<()> {
    match filesystem_of(dir) {
        Some((_, true)) => Ok(()),
        Some((kind, false)) => Err(Failure::usage(format!(
            "cache directory {} is on a persistent filesystem ({kind}), where tokens would outlive a reboot: use a tmpfs directory (e.g. $XDG_RUNTIME_DIR), or set allow_disk_cache = true / --allow-disk-cache to accept the risk",
            dir.display()
        ))
        .into()),
        None => Err(Failure::usage(format!(
            "cache directory {} has no existing parent to create it in",
            dir.display()
        ))
        .into()),
    }
}

/// The filesystem type of `dir` (or of its nearest existing ancestor) and
/// whether it is memory-backed.
fn filesystem_of(dir: &Path) -> Option<(String, bool)> {
    let mut probe = dir;
    loop {
        if let Some(kind) = statfs_type(probe) {
            let memory = kind == TMPFS_MAGIC || kind == RAMFS_MAGIC;
            let name = match kind {
                0xEF53 => "ext4".to_string(),
                0x5846_5342 => "xfs".to_string(),
                0x9123_683E => "btrfs".to_string(),
                0x794C_7630 => "overlayfs".to_string(),
                TMPFS_MAGIC => "tmpfs".to_string(),
                RAMFS_MAGIC => "ramfs".to_string(),
                other => format!("type {other:#x}"),
            };
            return Some((name, memory));
        }
        probe = probe.parent()?;
    }
}

fn statfs_type(path: &Path) -> Option<i64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid NUL-terminated string and stat a valid out-pointer.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut stat) };
    #[allow(clippy::unnecessary_cast)]
    (rc == 0).then_some(stat.f_type as i64)
}

/// Deletes the helper's own files in `dir` — entries (`<key>.json` holding
/// an entry of that key) and temp files a killed refresh left (`.tmp-*`
/// holding an entry) — and nothing else: not the user's other files, not
/// lock files (another process may hold one), not the directory's mode.
/// Returns how many were deleted.
pub fn erase_own(dir: &Path) -> Result<usize> {
    let entries = fs::read_dir(dir)
        .map_err(|e| Failure::internal(format!("cannot list {}: {e}", dir.display())))?;
    let mut erased = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let expected_key = if let Some(id) = name.strip_suffix(".json") {
            if !super::Key::is_entry_id(id) {
                continue;
            }
            Some(id.to_string())
        } else if is_temp_name(&name) {
            None
        } else {
            continue;
        };
        let path = entry.path();
        if holds_entry(&path, expected_key.as_deref()) && fs::remove_file(&path).is_ok() {
            erased += 1;
        }
    }
    Ok(erased)
}

/// Deletes `dir`'s entry of `id` if it holds an entry of that key (for
/// `erase`, whatever backend the profile uses now). Whether it did.
pub fn remove_in(dir: &Path, id: &str) -> bool {
    let path = dir.join(format!("{id}.json"));
    holds_entry(&path, Some(id)) && fs::remove_file(&path).is_ok()
}

/// Whether `path` is a file of ours holding an entry — of the key `id`, or
/// of any key when `None`: what the erasers check before they delete.
fn holds_entry(path: &Path, id: Option<&str>) -> bool {
    let Ok(mut file) = open_own(path, fs::OpenOptions::new().read(true), MAX_ENTRY as u64) else {
        return false;
    };
    let mut bytes = Zeroizing::new(Vec::new());
    if Read::by_ref(&mut file)
        .take(MAX_ENTRY as u64 + 1)
        .read_to_end(&mut bytes)
        .is_err()
    {
        return false;
    }
    match (super::entry::key_of(&bytes), id) {
        (Some(key), Some(id)) => key == id,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// The names the atomic writes use for their temp files: `.tmp-<id>-` and
/// six random letters or digits (`.tmp-` and the six alone, from versions
/// that did not name the entry).
const TEMP_PREFIX: &str = ".tmp-";

/// The temp-file prefix of entry `id`.
fn temp_prefix(id: &str) -> String {
    format!("{TEMP_PREFIX}{id}-")
}

fn is_temp_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(TEMP_PREFIX) else {
        return false;
    };
    let random = match rest.rsplit_once('-') {
        Some((id, random)) if super::Key::is_entry_id(id) => random,
        Some(_) => return false,
        None => rest,
    };
    random.len() == 6 && random.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A temp file this old was left by a writer that died between writing and
/// renaming (a write takes milliseconds).
const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(60);

impl FileStore {
    /// Removes what killed writers of entry `id` left behind (they hold a
    /// token, 0600, until the next reboot otherwise).
    fn remove_stale_temps(&self, id: &str) {
        let prefix = temp_prefix(id);
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with(&prefix) || !is_temp_name(name) {
                continue;
            }
            let stale = entry
                .metadata()
                .ok()
                .filter(|m| m.is_file() && m.uid() == euid())
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_TEMP);
            if stale && fs::remove_file(entry.path()).is_ok() {
                debug!(
                    file = name,
                    "removed a temp file a killed refresh left behind"
                );
            }
        }
    }
}

impl Store for FileStore {
    fn name(&self) -> &'static str {
        "file"
    }

    fn load(&self, id: &str) -> Option<Zeroizing<Vec<u8>>> {
        let path = self.path(id);
        let mut file = match open_own(&path, fs::OpenOptions::new().read(true), MAX_ENTRY as u64) {
            Ok(file) => file,
            Err(why) => {
                if path.exists() {
                    debug!(path = %path.display(), "ignoring cache entry: {why}");
                }
                return None;
            }
        };
        let mut bytes = Zeroizing::new(Vec::new());
        Read::by_ref(&mut file)
            .take(MAX_ENTRY as u64 + 1)
            .read_to_end(&mut bytes)
            .ok()?;
        (bytes.len() <= MAX_ENTRY).then_some(bytes)
    }

    fn save(&self, id: &str, bytes: &[u8], _expires_at: u64) -> Result<()> {
        self.remove_stale_temps(id);
        let write = || -> std::io::Result<()> {
            // tempfile creates the file 0600 with O_EXCL in our 0700 directory.
            let mut tmp = tempfile::Builder::new()
                .prefix(&temp_prefix(id))
                .rand_bytes(6)
                .tempfile_in(&self.dir)?;
            tmp.write_all(bytes)?;
            tmp.persist(self.path(id)).map_err(|e| e.error)?;
            Ok(())
        };
        write().map_err(|e| {
            Failure::internal(format!(
                "cannot write the cache entry in {}: {e}",
                self.dir.display()
            ))
            .into()
        })
    }

    fn remove(&self, id: &str) -> Result<()> {
        match fs::remove_file(self.path(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Failure::internal(format!(
                "cannot remove the cache entry in {}: {e}",
                self.dir.display()
            ))
            .into()),
        }
    }

    fn ids(&self) -> Result<Vec<String>> {
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| Failure::internal(format!("cannot list {}: {e}", self.dir.display())))?;
        Ok(entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".json")
                    .filter(|id| super::Key::is_entry_id(id))
                    .map(str::to_string)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Origin;
    use std::os::unix::fs::PermissionsExt;

    fn shm_dir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("sc-test-")
            .tempdir_in("/dev/shm")
            .unwrap()
    }

    fn settings(dir: &Path, allow_disk: bool) -> CacheSettings {
        CacheSettings {
            local: crate::config::LocalCache::File,
            dir: Some(dir.to_path_buf()),
            dir_origin: Origin::Flag("--cache-dir".into()),
            allow_disk,
            shared: None,
        }
    }

    #[test]
    fn round_trip_with_private_modes() {
        let root = shm_dir();
        let dir = root.path().join("cache");
        let store = FileStore::open(&settings(&dir, false)).unwrap();
        let id = "0123456789abcdef0123456789abcdef";
        assert!(store.load(id).is_none());
        store.save(id, b"{\"x\":1}", 0).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(
            fs::metadata(dir.join(format!("{id}.json"))).unwrap().mode() & 0o777,
            0o600
        );
        assert_eq!(&**store.load(id).unwrap(), b"{\"x\":1}");
        assert_eq!(store.ids().unwrap(), vec![id.to_string()]);
        store.remove(id).unwrap();
        assert!(store.load(id).is_none());
        store.remove(id).unwrap();
    }

    #[test]
    fn loose_entries_fifos_and_symlinks_are_misses() {
        let root = shm_dir();
        let dir = root.path().join("cache");
        let store = FileStore::open(&settings(&dir, false)).unwrap();
        store.save("abc", b"{}", 0).unwrap();
        fs::set_permissions(dir.join("abc.json"), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(store.load("abc").is_none());
        // A symlink in place of the entry is not followed.
        fs::remove_file(dir.join("abc.json")).unwrap();
        let elsewhere = root.path().join("elsewhere.json");
        fs::write(&elsewhere, b"{}").unwrap();
        fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.join("abc.json")).unwrap();
        assert!(store.load("abc").is_none());
        // A FIFO is neither waited on nor read.
        fs::remove_file(dir.join("abc.json")).unwrap();
        let fifo = std::ffi::CString::new(dir.join("abc.json").to_str().unwrap()).unwrap();
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let started = std::time::Instant::now();
        assert!(store.load("abc").is_none());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn a_loose_directory_is_refused_not_tightened() {
        let root = shm_dir();
        let dir = root.path().join("cache");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let err = FileStore::open(&settings(&dir, false)).err().unwrap();
        let text = crate::error::one_line(&err);
        assert!(
            text.contains("chmod 700") && text.contains("--cache-dir"),
            "{text}"
        );
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o777);
    }

    #[test]
    fn persistent_directory_is_refused_unless_allowed() {
        // The build directory is on the checkout's filesystem, which is
        // persistent wherever these tests run (CI included).
        let disk = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        assert!(
            matches!(filesystem_of(disk.path()), Some((_, false))),
            "the checkout must be on a persistent filesystem for this test"
        );
        let dir = disk.path().join("cache");
        let err = FileStore::open(&settings(&dir, false)).err().unwrap();
        let text = crate::error::one_line(&err);
        assert!(text.contains("persistent filesystem"), "{text}");
        assert!(!dir.exists(), "nothing may be created on refusal");
        assert!(FileStore::open(&settings(&dir, true)).is_ok());
    }

    #[test]
    fn relative_directory_is_refused() {
        assert!(FileStore::open(&settings(Path::new("rel/dir"), true)).is_err());
    }

    #[test]
    fn temp_names() {
        assert!(is_temp_name(".tmp-Ab12Cd"));
        for name in [
            ".tmp-notes",
            ".tmp-Ab12Cd7",
            ".tmp-Ab 2Cd",
            "tmp-Ab12Cd",
            ".tmp-",
        ] {
            assert!(!is_temp_name(name), "{name}");
        }
    }
}
