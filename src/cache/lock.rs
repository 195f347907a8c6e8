//! One refresh at a time per cache key: an exclusive `flock` on
//! `<dir>/<key>.lock`. The file holds nothing; the kernel releases the lock
//! when its holder exits, however it exits (kill -9 included), so a lock can
//! never be left behind. Lock files are never deleted — deleting them would
//! let two processes lock two different files of the same name.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::entry::MAX_ENTRY;

/// The lock could not be had before the deadline.
#[derive(Debug)]
pub struct Busy {
    pub waited: Duration,
}

/// Held until dropped.
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Waits for the lock of `id` in `dir` until `deadline`. `Ok(None)` when
    /// no lock file can be made there: the call goes on uncoordinated
    /// rather than failing.
    pub fn acquire(dir: &Path, id: &str, deadline: Instant) -> Result<Option<Lock>, Busy> {
        let started = Instant::now();
        let path = dir.join(format!("{id}.lock"));
        // The directory is one [`super::dir`] trusts; the file must be ours
        // too (no symlink, no FIFO, not open to others), or an attacker's
        // lock could hold every refresh up until the deadline.
        let opened = super::own::open_own(
            &path,
            File::options()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .mode(0o600),
            // A lock file holds nothing; the cap is an entry's, as for every
            // file of the cache.
            MAX_ENTRY as u64,
        );
        let file = match opened {
            Ok(file) => file,
            Err(why) => {
                warn!(
                    "cannot use the lock file {} ({why}); refreshing without it",
                    path.display()
                );
                return Ok(None);
            }
        };
        let mut pause = Duration::from_millis(2);
        let mut said = false;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    if said {
                        debug!(
                            waited_ms = started.elapsed().as_millis() as u64,
                            "got the refresh lock"
                        );
                    }
                    return Ok(Some(Lock { _file: file }));
                }
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    warn!(
                        "cannot lock {}: {e}; refreshing without the lock",
                        path.display()
                    );
                    return Ok(None);
                }
            }
            if !said {
                debug!("another seatable-cred is refreshing this token; waiting for it");
                said = true;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Busy {
                    waited: started.elapsed(),
                });
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(25));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_until_dropped_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let held = Lock::acquire(dir.path(), "k", Instant::now() + Duration::from_secs(1))
            .unwrap()
            .unwrap();
        let busy = Lock::acquire(dir.path(), "k", Instant::now() + Duration::from_millis(100))
            .err()
            .unwrap();
        assert!(busy.waited >= Duration::from_millis(100));
        // Another key is independent.
        assert!(
            Lock::acquire(dir.path(), "other", Instant::now())
                .unwrap()
                .is_some()
        );
        drop(held);
        assert!(
            Lock::acquire(dir.path(), "k", Instant::now() + Duration::from_millis(100))
                .unwrap()
                .is_some()
        );
        let meta = std::fs::metadata(dir.path().join("k.lock")).unwrap();
        assert_eq!(meta.len(), 0, "a lock file holds nothing");
    }

    #[test]
    fn a_lock_file_that_is_not_ours_is_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let soon = Instant::now() + Duration::from_secs(5);
        assert!(Lock::acquire(dir.path(), "k", soon).unwrap().is_none());
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/null", &path).unwrap();
        assert!(Lock::acquire(dir.path(), "k", soon).unwrap().is_none());
        std::fs::remove_file(&path).unwrap();
        let fifo = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let started = Instant::now();
        assert!(Lock::acquire(dir.path(), "k", soon).unwrap().is_none());
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a FIFO never blocks"
        );
    }
}
