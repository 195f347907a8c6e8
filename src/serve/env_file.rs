//! The env file, the agent's sink for clients (as Vault Agent's file sink):
//! `<cache dir>/serve/<profile>.env`, the agent's URL and the profile's
//! local key as `SEATABLE_SERVER_URL=…` and `SEATABLE_API_TOKEN=…` (and as
//! `dtable_web_url=…`, `api_token=…` for SeaTable's Python runner's
//! scripts) — what an unmodified SDK reads, and what systemd (`EnvironmentFile=`) and docker
//! (`--env-file`) load as they are: no quotes, one `NAME=value` a line.
//! Directory 0700, file 0600, owner checked, written atomically. The key is
//! reused while the file is intact, so restarting the agent does not break
//! its clients.
//!
//! The agent's other sink is the local cache, which needs nothing here:
//! every base token the refresher obtains goes through
//! [`crate::broker::get`], which writes it to the profile's cache backend —
//! so `seatable-cred get` on the same machine stays a cache hit.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Result;
use secrecy::{ExposeSecret, SecretString};
use tracing::{debug, info};
use zeroize::Zeroizing;

use super::session::LocalKey;
use crate::config::Profile;
use crate::error::Failure;

/// Env files larger than this are not ours.
const MAX_FILE: u64 = 4096;

/// The env file of a profile.
pub struct EnvFile {
    path: PathBuf,
    /// Readable by the group of the pod's shared volume it is in.
    for_the_pod: bool,
}

/// Mode of an env file: the user's alone; in a pod's shared volume, its
/// group's too.
const fn file_mode(for_the_pod: bool) -> u32 {
    if for_the_pod { 0o640 } else { 0o600 }
}

impl EnvFile {
    /// `<cache dir>/serve/<profile>.env`, creating the directories (0700)
    /// by the file cache's rules: on a memory-backed filesystem unless
    /// `allow_disk_cache` — the file holds a secret.
    ///
    /// In a pod's shared volume (an `emptyDir` with `fsGroup`, see
    /// [`crate::cache::dir::is_shared_volume`]) the cache keeps to a
    /// private directory of its own, and the env file goes to
    /// `<volume>/serve/<profile>.env` instead: the directory 2750 and the
    /// file 0640, of the pod's group, so that the app's container — another
    /// uid in that group — can read the agent's address and key, and
    /// nobody can write them. (The key alone opens nothing for a uid the
    /// agent does not serve: see `--allow-uid`.)
    pub fn for_profile(profile: &Profile) -> Result<EnvFile> {
        if !is_file_name(&profile.name) {
            return Err(Failure::usage(format!(
                "profile name '{}' cannot name a file: use letters, digits, '-', '_' and '.' for profiles to serve",
                profile.name
            ))
            .into());
        }
        let cache = crate::cache::file::directory(&profile.cache)?;
        let volume = cache
            .parent()
            .filter(|v| {
                crate::cache::dir::is_shared_volume(v) && crate::cache::dir::own_in(v) == cache
            })
            .map(Path::to_path_buf);
        let for_the_pod = volume.is_some();
        let dir = volume.unwrap_or(cache).join("serve");
        private_dir(&dir, for_the_pod)?;
        Ok(EnvFile {
            path: dir.join(format!("{}.env", profile.name)),
            for_the_pod,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key this file holds, when it is intact and ours; else a new one.
    pub fn key(&self) -> LocalKey {
        match self.read_key() {
            Some(key) => {
                debug!(path = %self.path.display(), "reusing the local key of the env file");
                key
            }
            None => {
                info!(path = %self.path.display(), "made a new local key");
                LocalKey::generate()
            }
        }
    }

    fn read_key(&self) -> Option<LocalKey> {
        let mut file = File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&self.path)
            .ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file()
            || meta.uid() != euid()
            || meta.mode() & 0o777 & !file_mode(self.for_the_pod) != 0
            || meta.len() > MAX_FILE
        {
            debug!(path = %self.path.display(), "ignoring an env file that is not a private file of ours");
            return None;
        }
        let mut text = Zeroizing::new(String::new());
        Read::by_ref(&mut file)
            .take(MAX_FILE)
            .read_to_string(&mut text)
            .ok()?;
        parse_key(&text)
    }

    /// Writes the URL and key (temp file 0600, or 0640 for the pod, + rename).
    pub fn write(&self, url: &str, key: &LocalKey, profile: &str) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        let text = render(url, key.secret(), profile);
        let write = || -> std::io::Result<()> {
            let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
            tmp.write_all(text.as_bytes())?;
            if self.for_the_pod {
                tmp.as_file()
                    .set_permissions(fs::Permissions::from_mode(file_mode(true)))?;
            }
            tmp.persist(&self.path).map_err(|e| e.error)?;
            Ok(())
        };
        write().map_err(|e| {
            Failure::internal(format!("cannot write {}: {e}", self.path.display())).into()
        })
    }
}

/// The file's text. `SEATABLE_CRED_AGENT_URL` repeats the agent's address
/// under a name of the helper's own: where a shell loaded the file, the
/// helper sees that `SEATABLE_SERVER_URL` is the agent and never sends an
/// API token there ([`crate::config::AGENT_URL`]). `dtable_web_url` and
/// `api_token` are the same two values in the names SeaTable's own Python
/// runner gives a script (`seatable_api.context`), so that such a script
/// runs unchanged through the agent; the helper reads neither.
pub fn render(url: &str, key: &SecretString, profile: &str) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "# seatable-cred serve, profile {profile}: for systemd EnvironmentFile= and docker --env-file\n\
         SEATABLE_SERVER_URL={url}\n\
         SEATABLE_API_TOKEN={key}\n\
         {}={url}\n\
         # the same for scripts written for SeaTable's Python runner (seatable_api.context)\n\
         dtable_web_url={url}\n\
         api_token={key}\n",
        crate::config::AGENT_URL,
        key = key.expose_secret(),
    ))
}

fn parse_key(text: &str) -> Option<LocalKey> {
    let value = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("SEATABLE_API_TOKEN="))?;
    LocalKey::from_hex(SecretString::from(value.trim().to_string()))
}

/// A profile name that is safe as a file name on its own.
fn is_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

use crate::cache::own::euid;

/// Creates `dir` 0700 — for the pod 2750: its group may read, and files
/// made in it take that group — or accepts an existing one that is a
/// directory of ours that nobody else can enter (for the pod: write);
/// anything else is refused, never fixed.
fn private_dir(dir: &Path, for_the_pod: bool) -> Result<()> {
    let mode = if for_the_pod { 0o2750 } else { 0o700 };
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        // Set explicitly: a umask would take the group's bits away.
        Ok(()) => {
            return fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(|e| {
                Failure::usage(format!("cannot set the mode of {}: {e}", dir.display())).into()
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Failure::usage(format!("cannot create {}: {e}", dir.display())).into());
        }
    }
    if for_the_pod {
        let meta = fs::symlink_metadata(dir)
            .map_err(|e| Failure::usage(format!("cannot inspect {}: {e}", dir.display())))?;
        if !meta.file_type().is_dir() || meta.uid() != euid() || meta.mode() & 0o022 != 0 {
            return Err(Failure::usage(format!(
                "{} is not a directory of yours closed to writers: files in it may have been planted; remove it or use another cache_dir",
                dir.display()
            ))
            .into());
        }
        return Ok(());
    }
    crate::cache::dir::check(dir).map_err(|why| Failure::usage(why.explain(dir)).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_text_is_plain_name_value_lines() {
        let key = SecretString::from("0123456789abcdef0123456789abcdef01234567");
        let text = render("http://127.0.0.1:8799", &key, "crm");
        assert_eq!(
            text.as_str(),
            "# seatable-cred serve, profile crm: for systemd EnvironmentFile= and docker --env-file\n\
             SEATABLE_SERVER_URL=http://127.0.0.1:8799\n\
             SEATABLE_API_TOKEN=0123456789abcdef0123456789abcdef01234567\n\
             SEATABLE_CRED_AGENT_URL=http://127.0.0.1:8799\n\
             # the same for scripts written for SeaTable's Python runner (seatable_api.context)\n\
             dtable_web_url=http://127.0.0.1:8799\n\
             api_token=0123456789abcdef0123456789abcdef01234567\n"
        );
        let back = parse_key(&text).unwrap();
        assert_eq!(back.secret().expose_secret(), key.expose_secret());
        assert!(parse_key("SEATABLE_API_TOKEN=short\n").is_none());
        assert!(parse_key("").is_none());
    }

    #[test]
    fn profile_names_must_be_file_names() {
        for ok in ["default", "crm-ci", "a.b_c"] {
            assert!(is_file_name(ok), "{ok}");
        }
        for bad in ["", ".hidden", "../x", "a/b", "a b", &"x".repeat(101)] {
            assert!(!is_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn directories_of_others_or_open_ones_are_refused() {
        let root = tempfile::Builder::new()
            .prefix("sc-test-")
            .tempdir_in("/dev/shm")
            .unwrap();
        let dir = root.path().join("serve");
        private_dir(&dir, false).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        private_dir(&dir, false).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(
            private_dir(&dir, false).is_err(),
            "never tightened and used"
        );
        let link = root.path().join("link");
        std::os::unix::fs::symlink(root.path(), &link).unwrap();
        assert!(private_dir(&link, false).is_err());
        // For a pod: readable by the group, writable by none but us.
        let pod = root.path().join("pod");
        private_dir(&pod, true).unwrap();
        assert_eq!(fs::metadata(&pod).unwrap().mode() & 0o7777, 0o2750);
        private_dir(&pod, true).unwrap();
        fs::set_permissions(&pod, fs::Permissions::from_mode(0o2770)).unwrap();
        assert!(private_dir(&pod, true).is_err(), "never tightened and used");
    }
}
