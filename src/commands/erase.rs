//! `erase [--all]`: drop cached tokens.

use anyhow::Result;
use tracing::info;

use crate::cache::{Cache, Key, Store, keyring::KeyringStore};
use crate::cli::{CacheBackend, EraseArgs, GlobalArgs};
use crate::config::{self, ProcessEnv, Profile};

pub fn run(global: &GlobalArgs, args: &EraseArgs) -> Result<u8> {
    if args.all {
        let settings = config::resolve_cache(global, &ProcessEnv)?;
        // Whatever the profile says now, tokens cached under another
        // backend earlier are dropped too: every `seatable-cred:` key of the
        // user's keyring, and the helper's own files in the cache
        // directories — nothing else there, and no directory is re-moded.
        if let Ok(store) = KeyringStore::open() {
            let ids = store.ids()?;
            for id in &ids {
                store.remove(id)?;
            }
            info!(backend = store.name(), "erased {} entries", ids.len());
        }
        for dir in crate::cache::dir::existing(&settings) {
            let erased = crate::cache::file::erase_own(&dir)?;
            info!(dir = %dir.display(), "erased {erased} files");
        }
        // The shared tier, last (the local entries are gone even when Vault
        // cannot be reached): this profile's entry only. The others under
        // the shared path may belong to other teams (whose identities may
        // write it too); they are theirs to erase.
        if settings.backend == CacheBackend::Vault {
            let profile = config::resolve(global, &ProcessEnv)?;
            crate::broker::erase_shared(&profile, &Cache::open(&profile.cache)?)?;
        }
        return Ok(0);
    }
    profile(&config::resolve(global, &ProcessEnv)?)?;
    Ok(0)
}

/// Drops the cached base token of one profile: the local entry — in every
/// local backend, whatever the profile's is now — and with `--cache vault`
/// then the shared one too; the local one is gone even when Vault cannot be
/// reached (git's `reject` of a refused token).
pub fn profile(profile: &Profile) -> Result<()> {
    let cache = Cache::open(&profile.cache)?;
    let key = Key::for_profile(profile);
    cache.store.remove(key.as_str())?;
    let elsewhere = crate::cache::remove_everywhere(&profile.cache, &key);
    info!(
        backend = cache.name(),
        "erased the cached token of profile {} (and {elsewhere} cached under another backend)",
        profile.name
    );
    if profile.cache.backend == CacheBackend::Vault {
        crate::broker::erase_shared(profile, &cache)?;
    }
    Ok(())
}
