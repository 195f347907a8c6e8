//! `erase [--all]`: drop cached tokens (the broker's, [`crate::broker::erase`]).

use anyhow::Result;

use crate::cache::Cache;
use crate::cli::EraseArgs;
use crate::config::{self, GlobalArgs, ProcessEnv, Profile};

pub fn run(global: &GlobalArgs, args: &EraseArgs) -> Result<u8> {
    if args.all {
        let settings = config::resolve_cache(global, &ProcessEnv)?;
        crate::broker::erase_all(&settings, || config::resolve(global, &ProcessEnv))?;
        return Ok(0);
    }
    profile(&config::resolve(global, &ProcessEnv)?)?;
    Ok(0)
}

/// Drops the cached base token of one profile, in every local backend and
/// the shared tier (also git's `reject` of a refused token).
pub fn profile(profile: &Profile) -> Result<()> {
    crate::broker::erase(profile, &Cache::open(&profile.cache)?)
}
