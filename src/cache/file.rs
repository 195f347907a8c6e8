//! The `file` backend: one file per key in a directory on a memory-backed
//! filesystem. Directory 0700 and files 0600, both owned by the user; files
//! are written atomically (temp file + rename) so a reader never sees half an
//! entry and a killed writer leaves the old entry intact.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Result;
use tracing::debug;
use zeroize::Zeroizing;

use super::Store;
use super::entry::MAX_ENTRY;
use crate::error::Failure;

const TMPFS_MAGIC: i64 = 0x0102_1994;
const RAMFS_MAGIC: i64 = 0x8584_58f6;

pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// Opens (creating if needed) the cache directory: `dir`, else the
    /// default of [`super::default_dir`]. A directory on a persistent
    /// filesystem is refused unless `allow_disk`.
    pub fn open(dir: Option<&Path>, allow_disk: bool) -> Result<FileStore> {
        let dir = dir.map_or_else(super::default_dir, Path::to_path_buf);
        if !dir.is_absolute() {
            return Err(Failure::usage(format!(
                "cache directory {} must be an absolute path",
                dir.display()
            ))
            .into());
        }
        if !allow_disk {
            match filesystem_of(&dir) {
                Some((_, true)) => {}
                Some((kind, false)) => {
                    return Err(Failure::usage(format!(
                        "cache directory {} is on a persistent filesystem ({kind}), where tokens would outlive a reboot: use a tmpfs directory (e.g. $XDG_RUNTIME_DIR), or set allow_disk_cache = true / --allow-disk-cache to accept the risk",
                        dir.display()
                    ))
                    .into());
                }
                None => {
                    return Err(Failure::usage(format!(
                        "cache directory {} has no existing parent to create it in",
                        dir.display()
                    ))
                    .into());
                }
            }
        }
        ensure_private_dir(&dir)?;
        Ok(FileStore { dir })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
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

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// Creates the directory 0700 or checks an existing one: a real directory,
/// owned by us; group/other access is removed.
pub(super) fn ensure_private_dir(dir: &Path) -> Result<()> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) => {
            return Err(Failure::usage(format!(
                "cannot create cache directory {}: {e}",
                dir.display()
            ))
            .into());
        }
    }
    let meta = fs::symlink_metadata(dir).map_err(|e| {
        Failure::usage(format!(
            "cannot inspect cache directory {}: {e}",
            dir.display()
        ))
    })?;
    if !meta.file_type().is_dir() {
        return Err(Failure::usage(format!(
            "cache directory {} is not a directory (a symlink?): remove it or choose --cache-dir",
            dir.display()
        ))
        .into());
    }
    if meta.uid() != euid() {
        return Err(Failure::usage(format!(
            "cache directory {} belongs to uid {}, not to you: remove it or choose --cache-dir",
            dir.display(),
            meta.uid()
        ))
        .into());
    }
    if meta.mode() & 0o077 != 0 {
        debug!(dir = %dir.display(), "tightening the cache directory to 0700");
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| Failure::usage(format!("cannot chmod 700 {}: {e}", dir.display())))?;
    }
    Ok(())
}

impl Store for FileStore {
    fn name(&self) -> &'static str {
        "file"
    }

    fn load(&self, id: &str) -> Option<Zeroizing<Vec<u8>>> {
        let path = self.path(id);
        let mut file = match File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    debug!(path = %path.display(), "cache entry unreadable ({e}); treating as a miss");
                }
                return None;
            }
        };
        let meta = file.metadata().ok()?;
        let why_not = if !meta.is_file() {
            Some("not a regular file")
        } else if meta.uid() != euid() {
            Some("owned by another user")
        } else if meta.mode() & 0o077 != 0 {
            Some("readable by others")
        } else if meta.len() > MAX_ENTRY as u64 {
            Some("too large")
        } else {
            None
        };
        if let Some(why) = why_not {
            debug!(path = %path.display(), "ignoring cache entry: {why}");
            return None;
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
        Read::by_ref(&mut file)
            .take(MAX_ENTRY as u64 + 1)
            .read_to_end(&mut bytes)
            .ok()?;
        Some(bytes)
    }

    fn save(&self, id: &str, bytes: &[u8], _expires_at: u64) -> Result<()> {
        let write = || -> std::io::Result<()> {
            // tempfile creates the file 0600 with O_EXCL in our 0700 directory.
            let mut tmp = tempfile::Builder::new()
                .prefix(".tmp-")
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
                    .filter(|id| !id.starts_with('.'))
                    .map(str::to_string)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shm_dir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("sc-test-")
            .tempdir_in("/dev/shm")
            .unwrap()
    }

    #[test]
    fn round_trip_with_private_modes() {
        let root = shm_dir();
        let dir = root.path().join("cache");
        let store = FileStore::open(Some(&dir), false).unwrap();
        assert!(store.load("abc").is_none());
        store.save("abc", b"{\"x\":1}", 0).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(
            fs::metadata(dir.join("abc.json")).unwrap().mode() & 0o777,
            0o600
        );
        assert_eq!(&**store.load("abc").unwrap(), b"{\"x\":1}");
        assert_eq!(store.ids().unwrap(), vec!["abc".to_string()]);
        store.remove("abc").unwrap();
        assert!(store.load("abc").is_none());
        store.remove("abc").unwrap();
    }

    #[test]
    fn loose_entries_are_misses_and_loose_dirs_are_tightened() {
        let root = shm_dir();
        let dir = root.path().join("cache");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let store = FileStore::open(Some(&dir), false).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
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
    }

    #[test]
    fn persistent_directory_is_refused_unless_allowed() {
        // Any persistent directory will do; the checkout normally is one.
        let candidates = [env!("CARGO_MANIFEST_DIR"), "/var/tmp", "/tmp"];
        let Some(parent) = candidates
            .iter()
            .find(|c| matches!(filesystem_of(Path::new(c)), Some((_, false))))
        else {
            eprintln!("no persistent filesystem among {candidates:?}; nothing to refuse here");
            return;
        };
        let disk = tempfile::tempdir_in(parent).unwrap();
        let dir = disk.path().join("cache");
        let err = FileStore::open(Some(&dir), false).err().unwrap();
        let text = crate::error::one_line(&err);
        assert!(text.contains("persistent filesystem"), "{text}");
        assert!(!dir.exists(), "nothing may be created on refusal");
        assert!(FileStore::open(Some(&dir), true).is_ok());
    }

    #[test]
    fn relative_directory_is_refused() {
        assert!(FileStore::open(Some(Path::new("rel/dir")), true).is_err());
    }
}
