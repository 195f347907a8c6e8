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
mod tests {
    use super::*;
    use crate::error::Failure;
    use std::collections::HashMap;
    use std::path::Path;

    pub(super) struct FakeEnv(HashMap<&'static str, String>);
    impl Env for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned().filter(|v| !v.is_empty())
        }
    }
    pub(super) fn env(pairs: &[(&'static str, &str)]) -> FakeEnv {
        FakeEnv(pairs.iter().map(|(k, v)| (*k, v.to_string())).collect())
    }

    pub(super) fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    pub(super) fn args_with(config: &Path) -> GlobalArgs {
        GlobalArgs {
            config: Some(config.to_path_buf()),
            ..GlobalArgs::default()
        }
    }

    fn err_text(r: Result<Profile>) -> String {
        crate::error::one_line(&r.unwrap_err())
    }

    const BASIC: &str = r#"
[profiles.default]
server_url = "https://file.example.com/"
vault_addr = "https://vault-file:8200"
secret = "secret/seatable/crm"
refresh_before = "10m"

[profiles.crm]
server_url = "https://crm.example.com"
secret = "kv/crm"
auth = "approle"
role_id = "role-123"
secret_id_file = "/run/secrets/sid"
lifetime = "1h"
"#;

    #[test]
    fn file_values_apply_and_urls_are_normalised() {
        let (_d, path) = write_config(BASIC);
        let p = resolve(&args_with(&path), &env(&[])).unwrap();
        assert_eq!(p.name, "default");
        assert_eq!(p.server_url, "https://file.example.com");
        assert_eq!(p.vault.addr, "https://vault-file:8200");
        assert_eq!(
            p.secret,
            SecretRef {
                mount: "secret".into(),
                path: "seatable/crm".into()
            }
        );
        assert_eq!(p.field, "api_token");
        assert_eq!(p.refresh_before, Duration::from_secs(600));
        assert_eq!(p.timeout, DEFAULT_TIMEOUT);
        assert_eq!(p.lifetime, None);
        assert_eq!(p.cache.backend(), CacheBackend::Auto);
    }

    #[test]
    fn flags_beat_env_beats_file() {
        let (_d, path) = write_config(BASIC);
        let mut args = args_with(&path);
        // clap has already folded SEATABLE_SERVER_URL into the flag value;
        // the Vault address is merged here.
        let p = resolve(
            &args,
            &env(&[
                ("VAULT_ADDR", "https://env-vault:8200"),
                ("BAO_ADDR", "https://bao:1"),
            ]),
        )
        .unwrap();
        assert_eq!(p.vault.addr, "https://env-vault:8200");
        let p = resolve(&args, &env(&[("BAO_ADDR", "https://bao:1")])).unwrap();
        assert_eq!(p.vault.addr, "https://bao:1");
        args.vault_addr = Some("https://flag-vault:8200".into());
        args.refresh_before = Some(Duration::from_secs(30));
        let p = resolve(&args, &env(&[("VAULT_ADDR", "https://env-vault:8200")])).unwrap();
        assert_eq!(p.vault.addr, "https://flag-vault:8200");
        assert_eq!(p.refresh_before, Duration::from_secs(30));
    }

    #[test]
    fn named_profile_with_approle() {
        let (_d, path) = write_config(BASIC);
        let mut args = args_with(&path);
        args.profile = Some("crm".into());
        let p = resolve(&args, &env(&[])).unwrap();
        assert_eq!(p.lifetime, Some(Duration::from_secs(3600)));
        assert_eq!(p.vault.auth_mount, "approle");
        match &p.vault.auth {
            Auth::AppRole { role_id, secret_id } => {
                assert_eq!(role_id, "role-123");
                assert!(
                    matches!(secret_id, SecretInput::File(p) if p == Path::new("/run/secrets/sid"))
                );
            }
            other => panic!("unexpected auth {other:?}"),
        }
        // The environment's value beats the config's file.
        let p = resolve(&args, &env(&[("SEATABLE_CRED_SECRET_ID", "sid-value")])).unwrap();
        assert!(matches!(
            &p.vault.auth,
            Auth::AppRole {
                secret_id: SecretInput::Env("SEATABLE_CRED_SECRET_ID", _),
                ..
            }
        ));
    }

    #[test]
    fn unknown_key_names_key_file_and_line() {
        let (_d, path) =
            write_config("[profiles.default]\nserver_url = \"https://x\"\nsever_url = \"typo\"\n");
        let text = err_text(resolve(&args_with(&path), &env(&[])));
        assert!(text.contains("sever_url"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("line 3"), "{text}");
        // The key that was meant, not all thirty.
        assert!(
            text.ends_with("unknown key `sever_url`: did you mean `server_url`?"),
            "{text}"
        );
        let (_d, path) = write_config("[profile.default]\nserver_url = \"https://x\"\n");
        let text = err_text(resolve(&args_with(&path), &env(&[])));
        assert!(text.ends_with("did you mean `profiles`?"), "{text}");
        let (_d, path) = write_config("[profiles.default]\nzzz = 1\n");
        let text = err_text(resolve(&args_with(&path), &env(&[])));
        assert!(
            text.contains("unknown key `zzz`: `seatable-cred --help` lists the settings")
                && !text.contains("`server_url`"),
            "{text}"
        );
    }

    #[test]
    fn broken_toml_is_one_line_usage_error() {
        let (_d, path) = write_config("[profiles.default\nserver_url = ");
        let err = resolve(&args_with(&path), &env(&[])).unwrap_err();
        assert_eq!(crate::error::kind_of(&err), crate::error::Kind::Usage);
        assert!(!crate::error::one_line(&err).contains('\n'));
    }

    #[test]
    fn missing_default_file_is_fine_missing_explicit_file_is_not() {
        let args = GlobalArgs {
            server_url: Some("https://s".into()),
            secret: Some("secret/x".into()),
            ..GlobalArgs::default()
        };
        let home = tempfile::tempdir().unwrap();
        let e = env(&[("HOME", home.path().to_str().unwrap())]);
        assert!(resolve(&args, &e).is_ok());
        let args = GlobalArgs {
            config: Some(home.path().join("nope.toml")),
            ..args
        };
        assert!(err_text(resolve(&args, &e)).contains("nope.toml"));
    }

    /// The real cause first: a profile the file does not have (with the
    /// ones it has), or no file at all — `init` writes one.
    #[test]
    fn a_missing_profile_is_the_cause_named() {
        let (_d, path) =
            write_config("[profiles.crm]\nserver_url = \"https://s\"\n[profiles.ops]\n");
        let text = err_text(resolve(&args_with(&path), &env(&[])));
        assert_eq!(
            text,
            format!(
                "profile 'default' is not in {} (it has 'crm', 'ops'): pick one with --profile NAME or SEATABLE_CRED_PROFILE=NAME — or set --server-url or SEATABLE_SERVER_URL for a call without a profile",
                path.display()
            )
        );
        let mut args = args_with(&path);
        args.profile = Some("billing".into());
        args.sources =
            Sources::from_map([("profile".to_string(), Origin::Flag("--profile".into()))].into());
        assert_eq!(
            err_text(resolve(&args, &env(&[]))),
            format!(
                "profile 'billing' (from --profile) is not in {} (it has 'crm', 'ops'): pick one with --profile NAME or SEATABLE_CRED_PROFILE=NAME",
                path.display()
            )
        );
        let home = tempfile::tempdir().unwrap();
        let e = env(&[("HOME", home.path().to_str().unwrap())]);
        let text = err_text(resolve(&GlobalArgs::default(), &e));
        assert!(
            text.starts_with("no SeaTable server and no config file (")
                && text.contains("write a profile with `seatable-cred init`"),
            "{text}"
        );
    }

    /// A failure about a setting names where its value came from — the
    /// file's key and line — or, for a default, where to set it.
    #[test]
    fn failures_about_a_setting_name_its_origin() {
        let (_d, path) = write_config(
            "[profiles.default]\n# the server\nserver_url = \"https://s\"\n  secret = \"secret/x\"\n",
        );
        let p = resolve(&args_with(&path), &env(&[("VAULT_ADDR", "https://v")])).unwrap();
        let about = |key| -> anyhow::Error { Failure::vault("it failed").about(key).into() };
        assert_eq!(
            crate::error::one_line(&p.name_origin(about("secret"))),
            format!(
                "it failed (set by secret in [profiles.default] of {}, line 4)",
                path.display()
            )
        );
        assert_eq!(
            crate::error::one_line(&p.name_origin(about("vault_addr"))),
            "it failed (set by VAULT_ADDR)"
        );
        let named = p.name_origin(about("field"));
        assert_eq!(
            crate::error::one_line(&named),
            format!(
                "it failed (field: nothing set it, so the default applies; set --field, SEATABLE_CRED_FIELD or field in [profiles.default] of {})",
                path.display()
            )
        );
        assert_eq!(crate::error::kind_of(&named), crate::error::Kind::Vault);
        assert_eq!(crate::error::setting_of(&named), None, "named once");
        let plain: anyhow::Error = Failure::vault("no setting").into();
        assert_eq!(crate::error::one_line(&p.name_origin(plain)), "no setting");
        assert_eq!(
            Origin::Answer("Vault address".into()).to_string(),
            "your answer to 'Vault address'"
        );
    }

    #[test]
    fn missing_settings_say_where_to_set_them() {
        let (_d, path) = write_config("[profiles.default]\nsecret = \"secret/x\"\n");
        let text = err_text(resolve(&args_with(&path), &env(&[])));
        assert!(
            text.contains("--server-url")
                && text.contains("SEATABLE_SERVER_URL")
                && text.contains("server_url"),
            "{text}"
        );
        let mut args = args_with(&path);
        args.server_url = Some("https://s".into());
        args.auth = Some(AuthMethod::Approle);
        let text = err_text(resolve(&args, &env(&[])));
        assert!(text.contains("role-id"), "{text}");
        args.profile = Some("nope".into());
        assert!(err_text(resolve(&args, &env(&[]))).contains("profile 'nope'"));
    }

    #[test]
    fn bad_values_are_rejected() {
        let base = GlobalArgs {
            server_url: Some("https://s".into()),
            secret: Some("secret/x".into()),
            config: Some(PathBuf::from("/nonexistent-dir/none.toml")),
            ..GlobalArgs::default()
        };
        let mut a = base.clone();
        a.config = None;
        a.server_url = Some("ftp://s".into());
        assert!(err_text(resolve(&a, &env(&[]))).contains("https://"));
        a.server_url = Some("https://user:pw@s".into());
        assert!(err_text(resolve(&a, &env(&[]))).contains("credentials"));
        let mut a = base.clone();
        a.config = None;
        a.secret = Some("justmount".into());
        assert!(err_text(resolve(&a, &env(&[]))).contains("MOUNT/PATH"));
        let mut a = base.clone();
        a.config = None;
        assert!(
            err_text(resolve(&a, &env(&[("VAULT_SKIP_VERIFY", "maybe")])))
                .contains("VAULT_SKIP_VERIFY")
        );
        assert!(
            resolve(&a, &env(&[("VAULT_SKIP_VERIFY", "true")]))
                .unwrap()
                .vault
                .skip_verify
        );
    }

    #[test]
    fn token_auth_sources() {
        let args = GlobalArgs {
            server_url: Some("https://s".into()),
            secret: Some("secret/x".into()),
            ..GlobalArgs::default()
        };
        let p = resolve(&args, &env(&[("BAO_TOKEN", "b"), ("HOME", "/h")])).unwrap();
        assert!(matches!(
            p.vault.auth,
            Auth::Token(SecretInput::Env("BAO_TOKEN", _))
        ));
        let p = resolve(&args, &env(&[("HOME", "/h")])).unwrap();
        assert!(
            matches!(p.vault.auth, Auth::Token(SecretInput::FileOr(ref f, _)) if f == Path::new("/h/.vault-token"))
        );
    }

    #[test]
    fn a_vault_token_file_is_where_the_token_comes_from_and_names_its_origin() {
        let base = GlobalArgs {
            server_url: Some("https://s".into()),
            secret: Some("secret/x".into()),
            ..GlobalArgs::default()
        };
        let sink = Path::new("/run/agent/token");
        // The flag (or its variable, which clap folds into it) — VAULT_TOKEN
        // and BAO_TOKEN are then not looked at.
        let mut args = base.clone();
        args.vault_token_file = Some(sink.into());
        let p = resolve(&args, &env(&[("VAULT_TOKEN", "t"), ("HOME", "/h")])).unwrap();
        match &p.vault.auth {
            Auth::Token(input @ SecretInput::TokenFile(path, origin)) => {
                assert_eq!(path, sink);
                assert_eq!(origin, &Origin::Flag("--vault-token-file".into()));
                assert_eq!(
                    format!("from {}", input.source()),
                    "from /run/agent/token (set by --vault-token-file)"
                );
            }
            other => panic!("{other:?}"),
        }
        // The profile's key, named with its file.
        let (_d, path) = write_config(
            "[profiles.default]\nserver_url = \"https://s\"\nsecret = \"secret/x\"\nvault_token_file = \"/run/agent/token\"\n",
        );
        let p = resolve(&args_with(&path), &env(&[("BAO_TOKEN", "b")])).unwrap();
        match &p.vault.auth {
            Auth::Token(input @ SecretInput::TokenFile(..)) => assert_eq!(
                format!("from {}", input.source()),
                format!(
                    "from /run/agent/token (set by vault_token_file in [profiles.default] of {}, line 4)",
                    path.display()
                )
            ),
            other => panic!("{other:?}"),
        }
        // A token file for another login is a mistake, said with both origins.
        let mut args = args.clone();
        args.auth = Some(AuthMethod::None);
        let text = err_text(resolve(&args, &env(&[])));
        assert_eq!(
            text,
            "--vault-token-file: a Vault token file is for --auth token, not --auth none (set by --auth): drop one of them"
        );
    }

    #[test]
    fn auth_none_reads_no_token() {
        let args = GlobalArgs {
            server_url: Some("https://s".into()),
            secret: Some("secret/x".into()),
            auth: Some(AuthMethod::None),
            ..GlobalArgs::default()
        };
        let p = resolve(&args, &env(&[("VAULT_TOKEN", "t"), ("HOME", "/h")])).unwrap();
        assert!(matches!(p.vault.auth, Auth::None));
        assert_eq!(p.vault.auth_method.name(), "none");
        let (_d, path) = write_config(
            "[profiles.default]\nserver_url = \"https://s\"\nsecret = \"secret/x\"\nauth = \"none\"\n",
        );
        let p = resolve(&args_with(&path), &env(&[])).unwrap();
        assert!(matches!(p.vault.auth, Auth::None));
    }

    #[test]
    fn plain_http_beyond_loopback_needs_allow_http() {
        let args = |url: &str| GlobalArgs {
            server_url: Some(url.into()),
            secret: Some("secret/x".into()),
            ..GlobalArgs::default()
        };
        let e = env(&[("VAULT_ADDR", "https://v")]);
        let text = err_text(resolve(&args("http://seatable.example.com"), &e));
        assert!(
            text.starts_with("--server-url: 'http://seatable.example.com' is plain HTTP")
                && text.contains("--allow-http")
                && text.contains("SEATABLE_CRED_ALLOW_HTTP"),
            "{text}"
        );
        assert!(resolve(&args("http://127.0.0.1:9"), &e).is_ok());
        assert!(resolve(&args("https://seatable.example.com"), &e).is_ok());
        let mut allowed = args("http://seatable.example.com");
        allowed.allow_http = true;
        let p = resolve(&allowed, &e).unwrap();
        assert_eq!(p.allow_http, Some(Origin::Flag("--allow-http".into())));
        let vault = env(&[("BAO_ADDR", "http://vault.example.com:8200")]);
        let text = err_text(resolve(&args("https://s"), &vault));
        assert!(
            text.starts_with("BAO_ADDR: 'http://vault.example.com:8200'"),
            "{text}"
        );
    }

    /// `lifetime` is whole hours or days, at least 1h and at most 3d
    /// (SeaTable's default) unless `allow_long_lifetime`, from any source.
    #[test]
    fn lifetime_is_between_an_hour_and_three_days_unless_allowed() {
        let (_d, path) =
            write_config("[profiles.default]\nserver_url = \"https://s\"\nsecret = \"secret/x\"\n");
        let mut a = args_with(&path);
        for ok in [3600, 90 * 60, 3 * 24 * 3600] {
            a.lifetime = Some(Duration::from_secs(ok));
            assert!(resolve(&a, &env(&[])).is_ok(), "{ok}");
        }
        a.lifetime = Some(Duration::from_secs(59 * 60));
        assert!(err_text(resolve(&a, &env(&[]))).contains("at least 1h"));
        a.lifetime = Some(Duration::from_secs(3 * 24 * 3600 + 1));
        let text = err_text(resolve(&a, &env(&[])));
        assert!(
            text.starts_with("--lifetime: must be at most 3d")
                && text.contains("--allow-long-lifetime")
                && text.contains("SEATABLE_CRED_ALLOW_LONG_LIFETIME")
                && text.contains("allow_long_lifetime"),
            "{text}"
        );
        a.allow_long_lifetime = true;
        let p = resolve(&a, &env(&[])).unwrap();
        assert_eq!(
            p.allow_long_lifetime,
            Some(Origin::Flag("--allow-long-lifetime".into()))
        );
        let (_d, path) = write_config(
            "[profiles.default]\nserver_url = \"https://s\"\nsecret = \"secret/x\"\nlifetime = \"7d\"\nallow_long_lifetime = true\n",
        );
        let p = resolve(&args_with(&path), &env(&[])).unwrap();
        assert_eq!(p.lifetime, Some(Duration::from_secs(7 * 24 * 3600)));
        let (_d, path) = write_config(
            "[profiles.default]\nserver_url = \"https://s\"\nsecret = \"secret/x\"\nlifetime = \"7d\"\n",
        );
        assert!(err_text(resolve(&args_with(&path), &env(&[]))).contains("at most 3d"));
    }

    #[test]
    fn messages_name_the_true_origin() {
        let (_d, path) = write_config(
            "[profiles.default]\nlifetime = \"3s\"\nserver_url = \"https://s\"\nsecret = \"secret/x\"\n",
        );
        let text = err_text(resolve(&args_with(&path), &env(&[])));
        assert_eq!(
            text,
            format!(
                "lifetime in [profiles.default] of {}, line 2: must be at least 1h: SeaTable issues base tokens for whole hours or days",
                path.display()
            )
        );
        let mut args = args_with(&path);
        args.lifetime = Some(Duration::from_secs(3));
        assert_eq!(
            err_text(resolve(&args, &env(&[]))),
            "--lifetime: must be at least 1h: SeaTable issues base tokens for whole hours or days"
        );
        let mut sources = std::collections::BTreeMap::new();
        sources.insert(
            "lifetime".to_string(),
            Origin::Env("SEATABLE_CRED_LIFETIME".into()),
        );
        args.sources = crate::config::Sources::from_map(sources);
        assert_eq!(
            err_text(resolve(&args, &env(&[]))),
            "SEATABLE_CRED_LIFETIME: must be at least 1h: SeaTable issues base tokens for whole hours or days"
        );
        args.lifetime = Some(Duration::from_secs(366 * 24 * 3600));
        args.allow_long_lifetime = true;
        assert!(err_text(resolve(&args, &env(&[]))).contains("at most 365d"));
        let (_d, path) =
            write_config("[profiles.default]\nserver_url = \"https://s\"\nsecret = \"secret/x\"\n");
        let args = args_with(&path);
        let p = resolve(&args, &env(&[("BAO_ADDR", "https://b")])).unwrap();
        assert_eq!(p.origin("vault_addr"), Origin::Env("BAO_ADDR".into()));
        assert_eq!(p.origin("vault_namespace"), Origin::Default);
        assert!(matches!(
            p.origin("server_url"),
            Origin::File {
                key: "server_url",
                ..
            }
        ));
        let p = resolve(&args, &env(&[])).unwrap();
        assert_eq!(p.origin("vault_addr"), Origin::Default);
        assert_eq!(p.vault.addr, DEFAULT_VAULT_ADDR);
    }

    /// What `init` checks: flags and environment only, never the table it
    /// is about to replace.
    #[test]
    fn unwritten_profiles_ignore_the_file() {
        let (_d, path) = write_config(BASIC);
        let mut args = args_with(&path);
        args.profile = Some("crm".into());
        args.server_url = Some("https://flag.example.com".into());
        args.secret = Some("secret/x".into());
        let p = resolve_unwritten(&args, &env(&[("VAULT_ADDR", "https://v")])).unwrap();
        assert_eq!(p.lifetime, None, "not the file's 1h");
        assert_eq!(
            p.vault.auth_method,
            AuthMethod::Token,
            "not the file's approle"
        );
        assert_eq!(p.origin("server_url"), Origin::Flag("--server-url".into()));
        let v = resolve_vault_unwritten(&args, &env(&[("VAULT_ADDR", "https://v")])).unwrap();
        assert_eq!(v.addr, "https://v");
    }

    #[test]
    fn secret_ref_parsing() {
        assert_eq!(
            SecretRef::parse("/secret/a/b/").unwrap().to_string(),
            "secret/a/b"
        );
        assert!(SecretRef::parse("secret").is_none());
        assert!(SecretRef::parse("secret/").is_none());
        assert!(SecretRef::parse("secret//x").is_none());
    }
}
