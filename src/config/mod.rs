//! Profile resolution: flags > environment > config file > defaults (SPEC §3).
//!
//! The result, [`Profile`], is everything one call needs, validated up front
//! so that a typo fails fast with exit 2 — before any network work and also
//! on a cache hit. Secrets are not read here: [`SecretInput`] only says where
//! a secret comes from, and it is read when a login actually happens, so the
//! cache-hit path touches no secret file.
//!
//! ```text
//! flags.rs    each setting declared once (GlobalArgs: clap's options, and a profile's
//!             table in the file); the value sets of --auth and --cache
//! origin.rs   where each value came from: flag, variable, file key
//! file.rs     the config file: trusted, capped, parsed into profile tables
//! vault.rs    Vault's address, TLS files and login
//! cache.rs    where tokens are kept: the local tier, and the shared one or none
//! account.rs  the token commands' account settings
//! profiles.rs the team admin's resolutions: every profile of the file, and one
//!             that names no secret of its own
//! mod.rs      the resolution itself, and the profile it makes
//! ```

/// A setting with a flag and a file key, named once: the flag's value (or
/// its clap-read variable's), else the file's — and where it came from,
/// noted in the [`Origins`](origin::Origins) `$o`.
macro_rules! setting {
    ($o:expr, $args:expr, $file:expr, $key:ident) => {
        $o.pick(
            stringify!($key),
            $args.$key.clone(),
            vec![],
            $file.$key.clone(),
        )
    };
}

mod account;
mod cache;
mod file;
pub mod flags;
mod origin;
mod profiles;
mod vault;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use cache::cache_settings;
use file::profile_table;
use origin::{Origins, Place, bad};
use vault::resolve_vault;

pub use account::{AccountAuth, AccountSettings, DEFAULT_TOKEN_MAX_AGE, resolve_account};
pub use cache::{CacheSettings, resolve_cache};
pub use file::{check, default_config_path, profile_names};
pub(crate) use file::{modified, read_token_file, read_trusted};
pub use flags::{AuthMethod, CacheBackend, GlobalArgs, LocalCache};
pub use origin::{Origin, SecretSource, Sources, name_origin};
pub use profiles::{resolve_named, resolve_settings};
pub use vault::{Auth, DEFAULT_VAULT_ADDR, KUBERNETES_SA_TOKEN, SecretInput, VaultSettings};

/// The environment variables that carry secret values for the helper
/// itself: read where needed, never passed on to `exec`'s command.
pub const SECRET_VARIABLES: [&str; 7] = [
    "VAULT_TOKEN",
    "BAO_TOKEN",
    "SEATABLE_CRED_SECRET_ID",
    "SEATABLE_CRED_JWT",
    "SEATABLE_CRED_PASSWORD",
    "SEATABLE_CRED_ACCOUNT_PASSWORD",
    "SEATABLE_CRED_OTP",
];

/// Default SeaTable refresh window, lifetime-independent.
pub const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);
/// Default overall deadline of the network work of one call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Read access to the environment; a trait so tests can resolve profiles
/// without touching the process environment.
pub trait Env {
    /// The variable's value; unset and empty are the same.
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// A KV secret: the first segment is the mount (unless Vault's mount table
/// says the mount is deeper, see [`crate::vault`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub mount: String,
    pub path: String,
}

impl std::fmt::Display for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.mount, self.path)
    }
}

impl SecretRef {
    pub fn parse(text: &str) -> Option<SecretRef> {
        let trimmed = text.trim().trim_matches('/');
        let (mount, path) = trimmed.split_once('/')?;
        let path = path.trim_matches('/');
        if mount.is_empty() || path.is_empty() || trimmed.contains("//") {
            return None;
        }
        Some(SecretRef {
            mount: mount.to_string(),
            path: path.to_string(),
        })
    }
}

/// A resolved, validated profile.
#[derive(Debug)]
pub struct Profile {
    pub name: String,
    /// Normalised, without a trailing slash.
    pub server_url: String,
    pub ca_cert: Option<PathBuf>,
    pub vault: VaultSettings,
    pub secret: SecretRef,
    pub field: String,
    pub kv_version: Option<u8>,
    pub cache: CacheSettings,
    pub refresh_before: Duration,
    pub lifetime: Option<Duration>,
    /// Set (with where it was set) when a `lifetime` over
    /// [`DEFAULT_MAX_LIFETIME`] is accepted (SPEC §12).
    pub allow_long_lifetime: Option<Origin>,
    pub timeout: Duration,
    /// Set (with where it was set) when plain HTTP to a host that is not
    /// loopback is accepted (SPEC §9).
    pub allow_http: Option<Origin>,
    /// Where each setting that has a profile key came from.
    pub origins: BTreeMap<&'static str, Origin>,
    /// The config file of the profile's table (there or not), for
    /// messages that say where to set what nothing set.
    pub config_file: Option<PathBuf>,
}

impl Profile {
    /// Where the setting with this profile key came from ([`Origin::Default`]
    /// when nothing set it).
    pub fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }

    /// An error about one of the profile's settings ([`Failure::setting`](crate::error::Failure::setting))
    /// with where that setting's value came from — "(set by
    /// SEATABLE_CRED_SECRET)" — or, for a default, where to set it.
    pub fn name_origin(&self, err: anyhow::Error) -> anyhow::Error {
        origin::name_origin(
            err,
            |key| Some(self.origin(key)),
            || {
                Place {
                    profile: self.name.clone(),
                    file: self.config_file.clone(),
                    text: origin::FileText::default(),
                    table: origin::Table::Found,
                }
                .table()
            },
        )
    }
}

/// Resolves the profile for this call.
pub fn resolve(args: &GlobalArgs, env: &dyn Env) -> Result<Profile> {
    let (name, file, place) = profile_table(args, env)?;
    resolve_table(args, env, name, &file, &place)
}

/// Resolves a profile from flags and environment alone, as if the config
/// file had no table for it: what `init` checks before it writes the table
/// (which replaces, never merges with, an existing one).
pub fn resolve_unwritten(args: &GlobalArgs, env: &dyn Env) -> Result<Profile> {
    let (name, place) = unwritten_place(args);
    resolve_table(args, env, name, &GlobalArgs::default(), &place)
}

/// The Vault settings alone, from flags and environment (see
/// [`resolve_unwritten`]): what `init` checks before the rest of the
/// profile is known.
pub fn resolve_vault_unwritten(args: &GlobalArgs, env: &dyn Env) -> Result<VaultSettings> {
    let (_, place) = unwritten_place(args);
    let file = GlobalArgs::default();
    let mut o = Origins {
        sources: &args.sources,
        place: &place,
        seen: BTreeMap::new(),
    };
    let allow_http = pick_allow_http(args, &mut o, &file);
    Ok(resolve_vault(
        args,
        &file,
        env,
        &mut o,
        allow_http.as_ref(),
    )?)
}

fn unwritten_place(args: &GlobalArgs) -> (String, Place) {
    let name = args
        .profile
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let place = Place {
        profile: name.clone(),
        file: None,
        text: origin::FileText::default(),
        table: origin::Table::Found,
    };
    (name, place)
}

/// Whether plain HTTP may be used, and where that was said. Checked first:
/// it decides whether the addresses of the profile are acceptable.
fn pick_allow_http(args: &GlobalArgs, o: &mut Origins<'_>, file: &GlobalArgs) -> Option<Origin> {
    o.pick(
        "allow_http",
        // An explicit SEATABLE_CRED_ALLOW_HTTP=false beats the file.
        (args.allow_http || args.sources.contains_key("allow_http")).then_some(args.allow_http),
        vec![],
        file.file_allow_http,
    )
    .unwrap_or(false)
    .then(|| o.of("allow_http"))
}

/// The variable in `serve`'s env files that names the agent's own address.
pub const AGENT_URL: &str = "SEATABLE_CRED_AGENT_URL";

/// Whether the server URL came from `SEATABLE_SERVER_URL` and is the
/// address [`AGENT_URL`] names: put there by an env file of `serve`. Looked
/// at only when the URL came from the environment, so that a profile whose
/// server is in its file pays nothing for it.
fn names_an_agent(args: &GlobalArgs, env: &dyn Env) -> bool {
    let Some(url) = &args.server_url else {
        return false;
    };
    let same = |a: &str, b: &str| a.trim().trim_end_matches('/') == b.trim().trim_end_matches('/');
    matches!(args.sources.get("server_url"), Some(Origin::Env(_)))
        && env.var(AGENT_URL).is_some_and(|agent| same(&agent, url))
}

fn resolve_table(
    args: &GlobalArgs,
    env: &dyn Env,
    name: String,
    file: &GlobalArgs,
    place: &Place,
) -> Result<Profile> {
    let mut o = Origins {
        sources: &args.sources,
        place,
        seen: BTreeMap::new(),
    };
    let allow_http = pick_allow_http(args, &mut o, file);

    // A shell (or unit) that loaded an env file of `serve` has the agent's
    // address in SEATABLE_SERVER_URL, for its SeaTable clients; the helper
    // never sends an API token there, nor to whoever holds that port.
    let agent = names_an_agent(args, env);
    let server_url = o
        .pick(
            "server_url",
            args.server_url.clone().filter(|_| !agent),
            vec![],
            file.server_url.clone(),
        )
        .ok_or_else(|| {
            if agent {
                return crate::error::Failure::usage(format!(
                    "SEATABLE_SERVER_URL is the address of a seatable-cred agent (its env file says so in {AGENT_URL}), where the API token must never go: {}",
                    place.hint(
                        "server-url",
                        "SEATABLE_SERVER_URL (to SeaTable's own address)",
                        "server_url"
                    )
                ));
            }
            place.missing(
                "no SeaTable server",
                "server-url",
                "SEATABLE_SERVER_URL",
                "server_url",
            )
        })?;
    let server_url = crate::address::check_seatable_address(
        &server_url,
        &o.of("server_url"),
        allow_http.as_ref(),
    )?;

    let secret_text = setting!(o, args, file, secret).ok_or_else(|| {
        place.missing(
            "no secret path for the API token",
            "secret",
            "SEATABLE_CRED_SECRET",
            "secret",
        )
    })?;
    let secret = SecretRef::parse(&secret_text).ok_or_else(|| {
        bad(
            &o.of("secret"),
            "the value is not MOUNT/PATH, e.g. secret/seatable/crm".to_string(),
        )
    })?;

    let field = setting!(o, args, file, field).unwrap_or_else(|| "api_token".to_string());
    if field.is_empty() {
        return Err(bad(&o.of("field"), "must not be empty").into());
    }
    let kv_version = setting!(o, args, file, kv_version);
    if let Some(v) = kv_version
        && v != 1
        && v != 2
    {
        return Err(bad(&o.of("kv_version"), format!("{v} is not 1 or 2")).into());
    }

    let mut duration = |key: &'static str, flag: Option<Duration>, text: Option<String>| {
        let parsed = text.map(|t| crate::time::parse_duration(&t));
        let found = o.pick(key, flag.map(Ok), vec![], parsed);
        found.transpose().map_err(|e| bad(&o.of(key), e))
    };
    let refresh_before = duration(
        "refresh_before",
        args.refresh_before,
        file.file_refresh_before.clone(),
    )?
    .unwrap_or(DEFAULT_REFRESH_BEFORE);
    let lifetime = duration("lifetime", args.lifetime, file.file_lifetime.clone())?;
    let timeout =
        duration("timeout", args.timeout, file.file_timeout.clone())?.unwrap_or(DEFAULT_TIMEOUT);
    // SeaTable takes `exp` in whole hours or days (SPEC §12).
    if lifetime.is_some_and(|l| l < Duration::from_secs(3600)) {
        return Err(bad(
            &o.of("lifetime"),
            "must be at least 1h: SeaTable issues base tokens for whole hours or days",
        )
        .into());
    }
    let allow_long_lifetime = o
        .pick(
            "allow_long_lifetime",
            // An explicit SEATABLE_CRED_ALLOW_LONG_LIFETIME=false beats the file.
            (args.allow_long_lifetime || args.sources.contains_key("allow_long_lifetime"))
                .then_some(args.allow_long_lifetime),
            vec![],
            file.file_allow_long_lifetime,
        )
        .unwrap_or(false)
        .then(|| o.of("allow_long_lifetime"));
    if lifetime.is_some_and(|l| l > DEFAULT_MAX_LIFETIME) && allow_long_lifetime.is_none() {
        return Err(bad(
            &o.of("lifetime"),
            "must be at most 3d, SeaTable's default: a base token keeps working until it expires, even after its API token was revoked or rotated; to accept longer ones set --allow-long-lifetime (SEATABLE_CRED_ALLOW_LONG_LIFETIME, allow_long_lifetime = true)",
        )
        .into());
    }
    if lifetime.is_some_and(|l| l.as_secs() > MAX_LIFETIME.as_secs()) {
        return Err(bad(&o.of("lifetime"), "must be at most 365d").into());
    }
    if timeout.is_zero() {
        return Err(bad(&o.of("timeout"), "must be more than 0s").into());
    }

    let ca_cert = setting!(o, args, file, ca_cert);
    let vault = resolve_vault(args, file, env, &mut o, allow_http.as_ref())?;
    let cache = cache_settings(args, file, &mut o)?;

    Ok(Profile {
        name,
        server_url,
        ca_cert,
        vault,
        secret,
        field,
        kv_version,
        cache,
        refresh_before,
        lifetime,
        allow_long_lifetime,
        timeout,
        allow_http,
        origins: o.seen,
        config_file: place.file.clone(),
    })
}

/// The longest `--lifetime` accepted without `--allow-long-lifetime`:
/// SeaTable's own default, 3 days.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(3 * 24 * 3600);

/// The longest `--lifetime` accepted.
pub const MAX_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

#[cfg(test)]
mod tests;
