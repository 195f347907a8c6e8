//! One refresh at a time per cache key: an exclusive `flock` on
//! `<dir>/<key>.lock`. The file holds nothing; the kernel releases the lock
//! when its holder exits, however it exits (kill -9 included), so a lock can
//! never be left behind. Lock files are never deleted — deleting them would
//! let two processes lock two different files of the same name.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use tracing::debug;

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
        let opened = super::file::ensure_private_dir(dir).ok().and_then(|()| {
            File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
                .ok()
        });
        let Some(file) = opened else {
            debug!(path = %path.display(), "cannot create the lock file; refreshing without the lock");
            return Ok(None);
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
                    debug!(
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
}
