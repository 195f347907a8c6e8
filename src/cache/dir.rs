//! Where the file cache and the lock files live, and whether a directory
//! there can be trusted (SPEC §6, §9).
//!
//! A cache directory must be a real directory (not a symlink), owned by the
//! user and closed to everyone else (no group or other permissions). One
//! that is not is never tightened and used — whoever could write it may have
//! planted files in it:
//!
//! * a directory named with `--cache-dir` / `cache_dir` is refused, with
//!   what to do;
//! * the default (`$XDG_RUNTIME_DIR/seatable-cred`, else
//!   `/dev/shm/seatable-cred-<uid>`) is *avoided*: another local user can
//!   create that name in the world-writable /dev/shm before the user's first
//!   call. The helper then uses a private directory of its own beside it,
//!   `…-<uid>.XXXXXX`, remembered in `$XDG_STATE_HOME/seatable-cred/runtime-dir`
//!   (in the user's home, where no one else can write), so that every later
//!   call finds the same one — and one refresh at a time still holds. Such an
//!   attack costs a warning, never a token, a hang or a refresh storm.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::Result;
use tracing::{debug, warn};

use super::own::{euid, in_group};
use crate::config::{CacheSettings, Origin};
use crate::error::Failure;

/// Why a directory cannot be trusted.
#[derive(Debug, PartialEq, Eq)]
pub enum Unsafe {
    Missing,
    NotADirectory,
    Foreign(u32),
    Open(u32),
    Unreadable(String),
}

impl Unsafe {
    /// What is wrong, and what to do about it, for `dir`.
    pub fn explain(&self, dir: &Path) -> String {
        let d = dir.display();
        match self {
            Unsafe::Missing => format!("{d} does not exist"),
            Unsafe::NotADirectory => {
                format!("{d} is not a directory (a symlink?): remove it or choose another")
            }
            Unsafe::Foreign(uid) => format!(
                "{d} belongs to uid {uid}, not to you: files in it may have been planted; remove it (as its owner or root) or choose another"
            ),
            Unsafe::Open(mode) => format!(
                "{d} is open to others (mode {mode:03o}): files in it may have been planted; the helper never changes a directory it did not create — check it, then run chmod 700 {d}, or choose another"
            ),
            Unsafe::Unreadable(e) => format!("{d} cannot be inspected: {e}"),
        }
    }
}

/// Whether `dir` is a directory of ours that no one else can enter.
pub fn check(dir: &Path) -> Result<(), Unsafe> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Unsafe::Missing),
        Err(e) => return Err(Unsafe::Unreadable(e.to_string())),
    };
    if !meta.file_type().is_dir() {
        return Err(Unsafe::NotADirectory);
    }
    if meta.uid() != euid() {
        return Err(Unsafe::Foreign(meta.uid()));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(Unsafe::Open(meta.mode() & 0o777));
    }
    Ok(())
}

/// Creates `dir` 0700 (and, with `parents`, missing parents 0700 too); an
/// existing one is left as it is.
fn create(dir: &Path, parents: bool) -> std::io::Result<()> {
    match fs::DirBuilder::new()
        .recursive(parents)
        .mode(0o700)
        .create(dir)
    {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// The default directory: `$XDG_RUNTIME_DIR/seatable-cred` when that runtime
/// directory exists and is the user's, else `/dev/shm/seatable-cred-<uid>`.
pub fn default_dir() -> PathBuf {
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        let runtime = PathBuf::from(runtime);
        if runtime.is_absolute() && check(&runtime).is_ok() {
            return runtime.join("seatable-cred");
        }
    }
    PathBuf::from(format!("/dev/shm/seatable-cred-{}", euid()))
}

/// The directory for the cache and its locks, created if needed: the one
/// the settings name (refused if unsafe), else the default (avoided if
/// unsafe).
pub fn resolve(settings: &CacheSettings) -> Result<PathBuf> {
    match &settings.dir {
        Some(dir) => explicit(dir, &settings.dir_origin),
        None => default(),
    }
}

fn explicit(dir: &Path, origin: &Origin) -> Result<PathBuf> {
    if !dir.is_absolute() {
        return Err(Failure::usage(format!(
            "cache directory {} ({origin}) must be an absolute path",
            dir.display()
        ))
        .into());
    }
    create(dir, true).map_err(|e| {
        Failure::usage(format!(
            "cannot create cache directory {} ({origin}): {e}",
            dir.display()
        ))
    })?;
    let refused = |dir: &Path, why: Unsafe| {
        Failure::usage(format!(
            "cache directory from {origin}: {}",
            why.explain(dir)
        ))
    };
    match check(dir) {
        Ok(()) => Ok(dir.to_path_buf()),
        // Not ours, and open to the pod's group: a private directory of
        // our own inside it, never the volume itself.
        Err(_) if is_shared_volume(dir) => {
            let own = own_in(dir);
            let _ = create(&own, false);
            check(&own).map_err(|why| refused(&own, why))?;
            Ok(own)
        }
        Err(why) => Err(refused(dir, why).into()),
    }
}

/// A pod's shared volume, as Kubernetes makes an `emptyDir` with
/// `fsGroup`: a directory of root's, mode 2777, of the pod's group — which
/// is one of this process's groups. Another container of the pod may write
/// in it, so the helper never uses it itself: it keeps to a 0700 directory
/// of its own inside ([`own_in`]), as it does in /dev/shm.
pub fn is_shared_volume(dir: &Path) -> bool {
    fs::symlink_metadata(dir).is_ok_and(|m| {
        m.file_type().is_dir() && m.uid() == 0 && m.mode() & libc::S_ISGID != 0 && in_group(m.gid())
    })
}

/// The helper's own directory in a shared volume: `seatable-cred-<uid>`.
pub fn own_in(volume: &Path) -> PathBuf {
    volume.join(format!("seatable-cred-{}", euid()))
}

/// The default directory if it can be trusted, else the user's private
/// replacement for it.
pub fn default() -> Result<PathBuf> {
    let dir = default_dir();
    let _ = create(&dir, false);
    match check(&dir) {
        Ok(()) => Ok(dir),
        Err(why) => {
            let private = replacement(&dir)?;
            warn!("{}; using {} instead", why.explain(&dir), private.display());
            Ok(private)
        }
    }
}

/// Where the replacement of a squatted default directory is remembered:
/// `$XDG_STATE_HOME/seatable-cred` (else `~/.local/state/seatable-cred`).
fn state_dir() -> Option<PathBuf> {
    let from = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    from("XDG_STATE_HOME")
        .or_else(|| from("HOME").map(|h| h.join(".local").join("state")))
        .map(|d| d.join("seatable-cred"))
}

/// A private directory beside `squatted`, the same one on every call.
fn replacement(squatted: &Path) -> Result<PathBuf> {
    let no_place = |why: String| {
        Failure::usage(format!(
            "{}; and there is no private place to use instead ({why}): set XDG_RUNTIME_DIR or --cache-dir",
            check(squatted)
                .err()
                .map_or_else(|| squatted.display().to_string(), |u| u.explain(squatted))
        ))
    };
    let state = state_dir().ok_or_else(|| no_place("HOME is not set".into()))?;
    create(&state, true).map_err(|e| no_place(format!("{}: {e}", state.display())))?;
    check(&state).map_err(|u| no_place(u.explain(&state)))?;
    let parent = squatted
        .parent()
        .ok_or_else(|| no_place("no parent directory".into()))?;
    let prefix = format!(
        "{}.",
        squatted
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let pointer = state.join("runtime-dir");
    let usable = |path: &Path| {
        path.parent() == Some(parent)
            && path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
            && check(path).is_ok()
    };
    let remembered = || {
        fs::read_to_string(&pointer)
            .ok()
            .map(|text| PathBuf::from(text.trim()))
            .filter(|p| usable(p))
    };
    if let Some(dir) = remembered() {
        return Ok(dir);
    }
    // One process makes the replacement; the others wait and find it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let _lock = super::lock::Lock::acquire(&state, "runtime-dir", deadline)
        .map_err(|_| no_place("another seatable-cred holds its lock".into()))?;
    if let Some(dir) = remembered() {
        return Ok(dir);
    }
    let dir = tempfile::Builder::new()
        .prefix(&prefix)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(parent)
        .map_err(|e| no_place(format!("{}: {e}", parent.display())))?
        .keep();
    let mut tmp = tempfile::Builder::new()
        .prefix(".runtime-dir-")
        .tempfile_in(&state)
        .map_err(|e| no_place(e.to_string()))?;
    writeln!(tmp, "{}", dir.display()).map_err(|e| no_place(e.to_string()))?;
    tmp.persist(&pointer)
        .map_err(|e| no_place(e.error.to_string()))?;
    debug!(dir = %dir.display(), "made a private cache directory");
    Ok(dir)
}

/// The directory `erase --all` looks in, without creating anything: the
/// configured one, else the default or its remembered replacement.
pub fn existing(settings: &CacheSettings) -> Vec<PathBuf> {
    if let Some(dir) = &settings.dir {
        return vec![dir.clone()];
    }
    let mut dirs = vec![default_dir()];
    if let Some(remembered) = state_dir()
        .and_then(|s| fs::read_to_string(s.join("runtime-dir")).ok())
        .map(|t| PathBuf::from(t.trim()))
    {
        dirs.push(remembered);
    }
    dirs.retain(|d| fs::symlink_metadata(d).is_ok_and(|m| m.is_dir() && m.uid() == euid()));
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_private_directories_of_ours_are_trusted() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("d");
        assert_eq!(check(&dir), Err(Unsafe::Missing));
        create(&dir, false).unwrap();
        assert_eq!(check(&dir), Ok(()));
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        for mode in [0o777, 0o755, 0o710, 0o701] {
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(check(&dir), Err(Unsafe::Open(mode)));
        }
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert_eq!(check(&link), Err(Unsafe::NotADirectory));
        let file = root.path().join("f");
        fs::write(&file, "").unwrap();
        assert_eq!(check(&file), Err(Unsafe::NotADirectory));
        // Creating never changes what exists.
        create(&dir, false).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o701);
    }

    #[test]
    fn messages_say_what_to_do() {
        let d = Path::new("/x");
        assert!(Unsafe::Open(0o777).explain(d).contains("chmod 700 /x"));
        assert!(Unsafe::Foreign(42).explain(d).contains("uid 42"));
    }
}
