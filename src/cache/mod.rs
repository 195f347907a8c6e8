//! Where base tokens are kept between calls (SPEC §6). Every backend keeps
//! them in memory-backed storage only; the broker alone decides when an entry
//! is fresh, stale or gone.
//!
//! One folder per backend, as docker-credential-helpers does: each
//! implements [`Store`]; [`open`] picks one from the profile.

pub mod entry;
pub mod file;

use std::path::PathBuf;

use anyhow::Result;
use tracing::info;

use crate::cli::CacheBackend;
use crate::config::{CacheSettings, Profile};
use crate::seatable::BaseToken;

/// A local cache backend. Loading never fails: a missing, corrupt,
/// truncated or foreign entry is a miss.
pub trait Store {
    /// The backend's name as `--cache` spells it.
    fn name(&self) -> &'static str;
    fn load(&self, key: &Key) -> Option<BaseToken>;
    fn save(&self, key: &Key, token: &BaseToken) -> Result<()>;
    fn remove(&self, key: &Key) -> Result<()>;
}

/// The cache key of a profile: a hash of the non-secret settings that
/// determine the token — never of a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(String);

impl Key {
    pub fn for_profile(p: &Profile) -> Key {
        let parts = serde_json::json!([
            "seatable-cred/1",
            p.server_url,
            p.vault.addr,
            p.vault.namespace.as_deref().unwrap_or(""),
            p.secret.to_string(),
            p.field,
            p.lifetime.map(|l| l.as_secs()),
        ]);
        let digest = ring::digest::digest(&ring::digest::SHA256, parts.to_string().as_bytes());
        let hex: String = digest.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Key(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Caching switched off: every call exchanges.
pub struct NoCache;

impl Store for NoCache {
    fn name(&self) -> &'static str {
        "none"
    }
    fn load(&self, _: &Key) -> Option<BaseToken> {
        None
    }
    fn save(&self, _: &Key, _: &BaseToken) -> Result<()> {
        Ok(())
    }
    fn remove(&self, _: &Key) -> Result<()> {
        Ok(())
    }
}

/// The backend the profile asks for. `auto` takes the memory-backed file
/// directory when there is one, else none — said once at `-v`.
pub fn open(settings: &CacheSettings) -> Result<Box<dyn Store>> {
    match settings.backend {
        CacheBackend::None => Ok(Box::new(NoCache)),
        CacheBackend::File => Ok(Box::new(file::FileStore::open(
            settings.dir.as_deref(),
            settings.allow_disk,
        )?)),
        CacheBackend::Auto => {
            match file::FileStore::open(settings.dir.as_deref(), settings.allow_disk) {
                Ok(store) => Ok(Box::new(store)),
                Err(e) if settings.dir.is_none() => {
                    info!(
                        "cache: no usable memory-backed directory ({}); caching is off",
                        crate::error::one_line(&e)
                    );
                    Ok(Box::new(NoCache))
                }
                Err(e) => Err(e),
            }
        }
    }
}

/// `$XDG_RUNTIME_DIR/seatable-cred`, else `/dev/shm/seatable-cred-<uid>`.
pub fn default_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) if std::path::Path::new(&dir).is_absolute() => {
            PathBuf::from(dir).join("seatable-cred")
        }
        _ => PathBuf::from(format!("/dev/shm/seatable-cred-{}", unsafe {
            libc::geteuid()
        })),
    }
}
