//! Is this ours? The checks every file the cache touches goes through —
//! entries, temp files, lock files — and the directories they live in: owned
//! by the user, closed to everyone else, never a symlink or a FIFO in
//! disguise — and who "we" are: the user ([`euid`]) and its groups
//! ([`in_group`], which a pod's shared volume is judged by). A leaf:
//! [`super::dir`], [`super::file`] and [`super::lock`] all ask it, and it
//! asks none of them.

use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// The user the helper runs as.
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether `gid` is this process's group, or one of its supplementary groups.
pub fn in_group(gid: u32) -> bool {
    // SAFETY: getegid cannot fail; getgroups fills at most the buffer given.
    unsafe {
        if libc::getegid() == gid {
            return true;
        }
        let mut groups = [0 as libc::gid_t; 256];
        let n = libc::getgroups(groups.len() as libc::c_int, groups.as_mut_ptr());
        n > 0 && groups[..n as usize].contains(&gid)
    }
}

/// Opens a file of ours without following a symlink or blocking on a
/// FIFO, and checks what it is: a regular file, owned by the user, closed
/// to others, no larger than `cap` bytes. Why not, in words, otherwise.
pub fn open_own(path: &Path, options: &mut fs::OpenOptions, cap: u64) -> Result<File, String> {
    let file = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        Err("not a regular file".into())
    } else if meta.uid() != euid() {
        Err(format!("owned by uid {}", meta.uid()))
    } else if meta.mode() & 0o077 != 0 {
        Err("open to others".into())
    } else if meta.len() > cap {
        Err("too large".into())
    } else {
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_small_private_regular_files_of_ours_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"12345").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let read = || fs::OpenOptions::new().read(true).clone();
        assert!(open_own(&path, &mut read(), 5).is_ok());
        assert_eq!(open_own(&path, &mut read(), 4).unwrap_err(), "too large");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(
            open_own(&path, &mut read(), 5).unwrap_err(),
            "open to others"
        );
        let sub = dir.path().join("d");
        fs::create_dir(&sub).unwrap();
        assert_eq!(
            open_own(&sub, &mut read(), 5).unwrap_err(),
            "not a regular file"
        );
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(
            open_own(&link, &mut read(), 5).is_err(),
            "no symlink followed"
        );
    }
}
