//! Where tokens are kept between calls (SPEC §6): base tokens, and the Vault
//! tokens of logins. Every backend keeps them in memory-backed storage only;
//! the broker alone decides when an entry is fresh, stale or gone.
//!
//! One file per backend, as docker-credential-helpers does: each local
//! backend is a [`Store`] of opaque entries with an expiry; [`entry`] is
//! their serialised form; [`lock`] serialises refreshes; [`shared`] is the
//! Vault-hosted tier that one deployment's hosts share.

pub mod dir;
pub mod entry;
pub mod file;
pub mod keyring;
pub mod lock;
pub mod own;
pub mod seal;
pub mod shared;

use std::path::PathBuf;

use anyhow::Result;
use tracing::{debug, info, warn};
use zeroize::Zeroizing;

use crate::config::{CacheSettings, LocalCache, Profile, VaultSettings};
use crate::seatable::BaseToken;

/// A local cache backend: entries by id, each with an expiry. Loading never
/// fails: a missing, corrupt, truncated or foreign entry is a miss.
pub trait Store {
    /// The backend's name as `--cache` spells it.
    fn name(&self) -> &'static str;
    fn load(&self, id: &str) -> Option<Zeroizing<Vec<u8>>>;
    /// Stores `bytes`; backends that can expire entries by themselves (the
    /// kernel keyring) do so at `expires_at` (Unix seconds).
    fn save(&self, id: &str, bytes: &[u8], expires_at: u64) -> Result<()>;
    fn remove(&self, id: &str) -> Result<()>;
    /// Every entry id this backend holds (for `erase --all`).
    fn ids(&self) -> Result<Vec<String>>;
}

/// The id of a cache entry: a hash of the non-secret settings that determine
/// what is cached — never of a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(String);

impl Key {
    fn hashed(prefix: &str, parts: serde_json::Value) -> Key {
        let digest = ring::digest::digest(&ring::digest::SHA256, parts.to_string().as_bytes());
        let hex: String = digest.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Key(format!("{prefix}{hex}"))
    }

    /// The base token of a profile: server, Vault address and namespace,
    /// secret path, field, lifetime.
    pub fn for_profile(p: &Profile) -> Key {
        Self::hashed(
            "",
            serde_json::json!([
                "seatable-cred/1",
                p.server_url,
                p.vault.addr,
                p.vault.namespace.as_deref().unwrap_or(""),
                p.secret.to_string(),
                p.field,
                p.lifetime.map(|l| l.as_secs()),
            ]),
        )
    }

    /// The shared tier's entry of a profile: as [`Key::for_profile`] but
    /// without the Vault address — every host of a deployment must find the
    /// same entry, whichever node or load balancer of the Vault it talks to
    /// (the entry lives in that Vault, so its address adds nothing).
    pub fn for_shared(p: &Profile) -> Key {
        Self::hashed(
            "",
            serde_json::json!([
                "seatable-cred/shared/1",
                p.server_url,
                p.vault.namespace.as_deref().unwrap_or(""),
                p.secret.to_string(),
                p.field,
                p.lifetime.map(|l| l.as_secs()),
            ]),
        )
    }

    /// The Vault token of a login: address, namespace, method, mount and
    /// the non-secret identity (role, role-id, username, client certificate).
    pub fn for_login(v: &VaultSettings) -> Key {
        use crate::config::Auth;
        let who = match &v.auth {
            Auth::Token(_) | Auth::None => String::new(),
            Auth::AppRole { role_id, .. } => role_id.clone(),
            Auth::Kubernetes { role, .. } => role.clone(),
            Auth::Jwt { role, .. } | Auth::Cert { role } => role.clone().unwrap_or_default(),
            Auth::Userpass { username, .. } => username.clone(),
        };
        Self::hashed(
            "vault-",
            serde_json::json!([
                "seatable-cred/vault-token/1",
                v.addr,
                v.namespace.as_deref().unwrap_or(""),
                v.auth_method.name(),
                v.auth_mount,
                who,
                v.client_cert.as_ref().map(|p| p.display().to_string()),
            ]),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A key by its id, as it appears in file names and the shared path
    /// (for tools and tests that find entries there).
    pub fn from_id(id: &str) -> Key {
        Key(id.to_string())
    }

    /// The key the fuzz targets decode entries under.
    #[doc(hidden)]
    pub fn fuzz() -> Key {
        Key("0123456789abcdef0123456789abcdef".into())
    }

    /// Whether this is the key of a base token (not of a Vault login).
    pub fn is_base_token(id: &str) -> bool {
        id.len() == 32
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    /// Whether this is the id of any entry: a base token's key or a Vault
    /// login's (`vault-<key>`).
    pub fn is_entry_id(id: &str) -> bool {
        Self::is_base_token(id.strip_prefix("vault-").unwrap_or(id))
    }
}

/// Caching switched off: every call exchanges.
pub struct NoCache;

impl Store for NoCache {
    fn name(&self) -> &'static str {
        "none"
    }
    fn load(&self, _: &str) -> Option<Zeroizing<Vec<u8>>> {
        None
    }
    fn save(&self, _: &str, _: &[u8], _: u64) -> Result<()> {
        Ok(())
    }
    fn remove(&self, _: &str) -> Result<()> {
        Ok(())
    }
    fn ids(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// Drops the entry `key` from every local backend that may hold it — the
/// kernel keyring, the configured cache directory and the default ones —
/// whatever backend the profile uses now: a base token cached under an
/// earlier setting would stay there, valid, until it expires (SeaTable
/// cannot revoke it). How many entries were dropped.
pub fn remove_everywhere(settings: &CacheSettings, key: &Key) -> usize {
    let mut dropped = 0;
    if let Ok(store) = keyring::KeyringStore::open()
        && store.load(key.as_str()).is_some()
        && store.remove(key.as_str()).is_ok()
    {
        dropped += 1;
    }
    let mut dirs = dir::existing(settings);
    if settings.dir.is_some() {
        let defaults = CacheSettings {
            dir: None,
            ..settings.clone()
        };
        dirs.extend(dir::existing(&defaults));
    }
    dirs.dedup();
    for dir in dirs {
        if file::remove_in(&dir, key.as_str()) {
            dropped += 1;
        }
    }
    dropped
}

/// The local cache of one call: a store, and where its lock files go.
pub struct Cache {
    pub store: Box<dyn Store>,
    /// Directory for the per-key lock files (they hold no secret).
    locks: LockDir,
}

/// Where the lock files go.
enum LockDir {
    /// Nowhere, and nothing to protect (`none`).
    None,
    At(PathBuf),
    /// The default directory, found (and checked, and created) only when a
    /// lock is wanted: a cache hit of the keyring takes no lock.
    Default(std::sync::OnceLock<Option<PathBuf>>),
}

impl Cache {
    /// The backend the profile asks for. `auto` is the kernel keyring when
    /// keyutils works (containers often block it), else the memory-backed
    /// file directory, else none — said once at `-v`. With `vault` the same
    /// `auto` tier stands in front of the shared one, which the broker asks.
    pub fn open(settings: &CacheSettings) -> Result<Cache> {
        match settings.local {
            LocalCache::None => Ok(Cache {
                store: Box::new(NoCache),
                locks: LockDir::None,
            }),
            LocalCache::File => {
                let store = file::FileStore::open(settings)?;
                let dir = store.dir().to_path_buf();
                Ok(Cache {
                    store: Box::new(store),
                    locks: LockDir::At(dir),
                })
            }
            LocalCache::Keyring => Ok(Cache {
                store: Box::new(keyring::KeyringStore::open()?),
                locks: lock_dir(settings)?,
            }),
            LocalCache::Auto => Self::auto(settings),
        }
    }

    fn auto(settings: &CacheSettings) -> Result<Cache> {
        match keyring::KeyringStore::open() {
            Ok(store) => {
                debug!("cache: kernel keyring");
                return Ok(Cache {
                    store: Box::new(store),
                    locks: lock_dir(settings)?,
                });
            }
            Err(e) => info!(
                "cache: the kernel keyring is not usable here ({}); trying a memory-backed directory",
                crate::error::one_line(&e)
            ),
        }
        match file::FileStore::open(settings) {
            Ok(store) => {
                let dir = store.dir().to_path_buf();
                Ok(Cache {
                    store: Box::new(store),
                    locks: LockDir::At(dir),
                })
            }
            // A directory the user named is theirs to fix.
            Err(e) if settings.dir.is_some() => Err(e),
            Err(e) => {
                info!(
                    "cache: no usable memory-backed directory ({}); caching is off",
                    crate::error::one_line(&e)
                );
                Ok(Cache {
                    store: Box::new(NoCache),
                    locks: LockDir::None,
                })
            }
        }
    }

    pub fn name(&self) -> &'static str {
        self.store.name()
    }

    pub fn load_token(&self, key: &Key) -> Option<BaseToken> {
        let bytes = self.store.load(key.as_str())?;
        let token = entry::decode(key, &bytes);
        if token.is_none() {
            debug!(
                backend = self.name(),
                "ignoring a corrupt or foreign cache entry"
            );
        }
        token
    }

    /// Caches a token unless it is already unusable by the local clock.
    pub fn save_token(&self, key: &Key, token: &BaseToken) {
        let now = crate::time::now();
        if token.expires_at <= now {
            warn!(
                "SeaTable's token expired at {}, before the local time {}: check this machine's clock; not caching it",
                crate::time::rfc3339(token.expires_at),
                crate::time::rfc3339(now)
            );
            return;
        }
        match self
            .store
            .save(key.as_str(), &entry::encode(key, token), token.expires_at)
        {
            Ok(()) => debug!(backend = self.name(), "cached the new token"),
            Err(e) => warn!("{}; the token is not cached", crate::error::one_line(&e)),
        }
    }

    pub fn remove(&self, key: &Key) {
        if let Err(e) = self.store.remove(key.as_str()) {
            warn!("{}", crate::error::one_line(&e));
        }
    }

    /// The directory of the lock files, if there is one.
    pub fn lock_dir(&self) -> Option<&std::path::Path> {
        match &self.locks {
            LockDir::None => None,
            LockDir::At(dir) => Some(dir),
            LockDir::Default(found) => found
                .get_or_init(|| match dir::default() {
                    Ok(dir) => Some(dir),
                    Err(e) => {
                        warn!(
                            "{}; refreshing without the lock",
                            crate::error::one_line(&e)
                        );
                        None
                    }
                })
                .as_deref(),
        }
    }

    /// Takes the refresh lock of `key`, waiting until `deadline` at most.
    pub fn lock(
        &self,
        key: &Key,
        deadline: std::time::Instant,
    ) -> Result<Option<lock::Lock>, lock::Busy> {
        match self.lock_dir() {
            Some(dir) => lock::Lock::acquire(dir, key.as_str(), deadline),
            None => Ok(None),
        }
    }
}

/// Logins' Vault tokens are kept beside the base tokens, under keys of
/// their own ([`Key::for_login`]).
impl crate::vault::LoginCache for Cache {
    fn name(&self) -> &'static str {
        self.store.name()
    }

    fn load_login(&self, v: &VaultSettings) -> Option<crate::vault::CachedLogin> {
        // The token of token auth is the user's, that of a proxy the proxy's.
        if matches!(
            v.auth,
            crate::config::Auth::Token(_) | crate::config::Auth::None
        ) {
            return None;
        }
        let key = Key::for_login(v);
        let bytes = self.store.load(key.as_str())?;
        entry::decode_login(&key, &bytes)
    }

    fn save_login(&self, v: &VaultSettings, login: &crate::vault::CachedLogin) -> Result<()> {
        let key = Key::for_login(v);
        self.store.save(
            key.as_str(),
            &entry::encode_login(&key, login),
            login.expires_at,
        )
    }

    fn remove_login(&self, v: &VaultSettings) -> Result<()> {
        self.store.remove(Key::for_login(v).as_str())
    }
}

/// Where the lock files of the keyring (and Vault) tier go: the cache
/// directory the settings name (checked now: refused if unsafe), else the
/// default one (found when first needed; avoided if unsafe). Lock files hold
/// nothing, so a persistent disk is fine for them.
fn lock_dir(settings: &CacheSettings) -> Result<LockDir> {
    Ok(match settings.dir {
        Some(_) => LockDir::At(dir::resolve(settings)?),
        None => LockDir::Default(std::sync::OnceLock::new()),
    })
}

pub use dir::default_dir;

/// Every entry of the local backends, whatever a profile says now — tokens
/// cached under another backend earlier go too: every `seatable-cred:` key
/// of the user's keyring, and the helper's own files in the cache
/// directories — nothing else there, and no directory is re-moded
/// (`erase --all`). How many entries (and leftover temp files) went.
pub fn erase_local_everything(settings: &CacheSettings) -> Result<usize> {
    let mut erased = 0;
    if let Ok(store) = keyring::KeyringStore::open() {
        let ids = store.ids()?;
        for id in &ids {
            store.remove(id)?;
        }
        info!(backend = store.name(), "erased {} entries", ids.len());
        erased += ids.len();
    }
    for dir in dir::existing(settings) {
        let files = file::erase_own(&dir)?;
        info!(dir = %dir.display(), "erased {files} files");
        erased += files;
    }
    Ok(erased)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids() {
        let id = "0123456789abcdef0123456789abcdef";
        assert!(Key::is_base_token(id));
        assert!(!Key::is_base_token(&format!("vault-{id}")));
        assert!(!Key::is_base_token(".tmp-x"));
        assert!(!Key::is_base_token("0123456789ABCDEF0123456789abcdef"));
        assert!(!Key::is_base_token(&id[1..]));
        assert!(Key::is_entry_id(id));
        assert!(Key::is_entry_id(&format!("vault-{id}")));
        assert!(!Key::is_entry_id(&format!("vault-{}", &id[1..])));
        assert!(!Key::is_entry_id("package"));
        // The keys the helper makes are of that shape.
        let key = Key::hashed("", serde_json::json!(["x"]));
        assert!(Key::is_base_token(key.as_str()));
        let login = Key::hashed("vault-", serde_json::json!(["x"]));
        assert!(Key::is_entry_id(login.as_str()) && !Key::is_base_token(login.as_str()));
    }
}
