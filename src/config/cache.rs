//! Where base tokens and Vault logins are kept between calls (SPEC §6):
//! `--cache` as two tiers — this host's, and the shared one in Vault behind
//! it, on only with `--cache vault` — the cache directory and whether it
//! may lie on disk.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use super::file::profile_table;
use super::flags::{CacheBackend, GlobalArgs, LocalCache};
use super::origin::{Origin, Origins, bad};
use super::{Env, SecretRef};
use crate::error::Failure;

/// Where base tokens (and Vault logins) are kept between calls (SPEC §6).
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// This host's tier, in front.
    pub local: LocalCache,
    pub dir: Option<PathBuf>,
    /// Where `dir` was set (for messages about it).
    pub dir_origin: Origin,
    pub allow_disk: bool,
    /// The shared tier in Vault behind it — the KV v2 path of its entries —
    /// when `--cache vault` switched it on, and only then.
    pub shared: Option<SecretRef>,
}

impl CacheSettings {
    /// The settings of `--cache BACKEND`, with the shared tier at `shared`
    /// if the backend has one (a path given to another backend is not used).
    pub fn new(
        backend: CacheBackend,
        shared: Option<SecretRef>,
        dir: Option<PathBuf>,
        dir_origin: Origin,
        allow_disk: bool,
    ) -> CacheSettings {
        let (local, has_shared) = backend.tiers();
        CacheSettings {
            local,
            dir,
            dir_origin,
            allow_disk,
            shared: shared.filter(|_| has_shared),
        }
    }

    /// The backend as `--cache` names it: `vault` when the shared tier is
    /// on, else the local one's name.
    pub fn backend(&self) -> CacheBackend {
        CacheBackend::of_tiers(self.local, self.shared.is_some())
    }
}

/// Only the cache settings of the profile: enough for `erase --all`, which
/// must work without a server or secret configured.
pub fn resolve_cache(args: &GlobalArgs, env: &dyn Env) -> Result<CacheSettings> {
    let (_, file, place) = profile_table(args, env)?;
    let mut origins = Origins {
        sources: &args.sources,
        place: &place,
        seen: BTreeMap::new(),
    };
    cache_settings(args, &file, &mut origins)
}

pub(super) fn cache_settings(
    args: &GlobalArgs,
    file: &GlobalArgs,
    o: &mut Origins<'_>,
) -> Result<CacheSettings> {
    let backend = setting!(o, args, file, cache).unwrap_or(CacheBackend::Auto);
    let shared_text = setting!(o, args, file, shared_cache);
    let shared = match shared_text {
        Some(text) => Some(SecretRef::parse(&text).ok_or_else(|| {
            bad(
                &o.of("shared_cache"),
                "the value is not MOUNT/PATH of a KV v2 mount, e.g. secret/seatable-cred/cache"
                    .to_string(),
            )
        })?),
        None if backend.tiers().1 => {
            return Err(Failure::usage(format!(
                "--cache vault needs a KV v2 path for the shared entries: {}",
                o.place
                    .hint("shared-cache", "SEATABLE_CRED_SHARED_CACHE", "shared_cache")
            ))
            .into());
        }
        None => None,
    };
    let dir = setting!(o, args, file, cache_dir);
    let allow_disk = o
        .pick(
            "allow_disk_cache",
            args.allow_disk_cache.then_some(true),
            vec![],
            file.file_allow_disk_cache,
        )
        .unwrap_or(false);
    Ok(CacheSettings::new(
        backend,
        shared,
        dir,
        o.of("cache_dir"),
        allow_disk,
    ))
}
