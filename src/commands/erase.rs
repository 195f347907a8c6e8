//! `erase [--all]`: drop cached tokens (the broker's, [`crate::broker::erase`]),
//! and say what went.

use anyhow::Result;

use crate::broker::Erased;
use crate::cache::Cache;
use crate::cli::EraseArgs;
use crate::config::{self, GlobalArgs, ProcessEnv, Profile};

pub fn run(global: &GlobalArgs, args: &EraseArgs) -> Result<u8> {
    if args.all {
        let settings = config::resolve_cache(global, &ProcessEnv)?;
        let erased = crate::broker::erase_all(&settings, || config::resolve(global, &ProcessEnv))?;
        crate::process::print(&said_all(&erased))?;
        return Ok(0);
    }
    let resolved = config::resolve(global, &ProcessEnv)?;
    let erased = profile(&resolved)?;
    crate::process::print(&said(&resolved.name, &erased))?;
    Ok(0)
}

/// Drops the cached base token of one profile, in every local backend and
/// the shared tier (also git's `reject` of a refused token).
pub fn profile(profile: &Profile) -> Result<Erased> {
    crate::broker::erase(profile, &Cache::open(&profile.cache)?)
}

/// What `erase` did, for people.
fn said(name: &str, erased: &Erased) -> String {
    let shared = if erased.shared {
        " and its shared entry in Vault"
    } else {
        ""
    };
    match erased.local {
        0 if !erased.shared => {
            format!("profile '{name}' had no cached base token; nothing to erase\n")
        }
        0 => format!(
            "erased the shared entry in Vault of profile '{name}' (none was cached here); the next get exchanges anew\n"
        ),
        _ => format!(
            "erased the cached base token of profile '{name}'{shared}; the next get exchanges anew\n"
        ),
    }
}

/// What `erase --all` did, for people.
fn said_all(erased: &Erased) -> String {
    let shared = if erased.shared {
        ", and the current profile's shared entry in Vault"
    } else {
        ""
    };
    format!(
        "erased {} cached entr{} (base tokens and Vault logins of every profile){shared}\n",
        erased.local,
        if erased.local == 1 { "y" } else { "ies" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erase_says_what_went() {
        let e = |local, shared| Erased { local, shared };
        assert_eq!(
            said("crm", &e(1, false)),
            "erased the cached base token of profile 'crm'; the next get exchanges anew\n"
        );
        assert_eq!(
            said("crm", &e(0, false)),
            "profile 'crm' had no cached base token; nothing to erase\n"
        );
        assert!(said("crm", &e(2, true)).contains("'crm' and its shared entry in Vault"));
        assert_eq!(
            said_all(&e(3, false)),
            "erased 3 cached entries (base tokens and Vault logins of every profile)\n"
        );
        assert!(said_all(&e(1, false)).starts_with("erased 1 cached entry "));
    }
}
