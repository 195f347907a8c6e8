//! The flag layer of the settings (SPEC §3): the options every command
//! takes, as clap reads them from the command line and the environment —
//! the same struct is a profile's table in the config file, so each setting
//! is declared once — and the value sets of `--auth` and `--cache`. As close
//! to the flags as possible (ripgrep's "low-level arguments"): nothing here
//! reads the file or decides anything; [`super::resolve`] merges the
//! command line's values with the file's.
//!
//! Secrets have no flags on purpose — argv is readable by every user through
//! `/proc` — so the environment variables that carry secret *values*
//! (`VAULT_TOKEN`, `SEATABLE_CRED_SECRET_ID`, `SEATABLE_CRED_JWT`,
//! `SEATABLE_CRED_PASSWORD`, `SEATABLE_CRED_ACCOUNT_PASSWORD`,
//! `SEATABLE_CRED_OTP`) are read by [`super::vault`] and [`super::account`],
//! not declared here.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::origin::Sources;

/// Where the API token is read with: the Vault auth methods of SPEC §4, and
/// `none` — no token at all, for a Vault or OpenBao Proxy or Agent whose API
/// proxy adds its own (`use_auto_auth_token`).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    Token,
    Approle,
    Kubernetes,
    Jwt,
    Userpass,
    Cert,
    None,
}

impl AuthMethod {
    /// The method's name, which is also its default mount path.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Token => "token",
            AuthMethod::Approle => "approle",
            AuthMethod::Kubernetes => "kubernetes",
            AuthMethod::Jwt => "jwt",
            AuthMethod::Userpass => "userpass",
            AuthMethod::Cert => "cert",
            AuthMethod::None => "none",
        }
    }
}

/// The cache backends of SPEC §6.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheBackend {
    /// The kernel keyring if usable, else a memory-backed file directory, else none.
    Auto,
    /// The Linux kernel user keyring.
    Keyring,
    /// Files in a memory-backed directory.
    File,
    /// One entry shared by every host, in Vault (see --shared-cache).
    Vault,
    /// No caching: every call exchanges.
    None,
}

impl CacheBackend {
    pub fn name(self) -> &'static str {
        match self {
            CacheBackend::Auto => "auto",
            CacheBackend::Keyring => "keyring",
            CacheBackend::File => "file",
            CacheBackend::Vault => "vault",
            CacheBackend::None => "none",
        }
    }

    /// The two tiers this backend stands for: this host's, and whether the
    /// shared one in Vault is behind it — `vault` is the local `auto` in
    /// front of the shared tier; the others are local only. (The one place
    /// that says what `vault` means.)
    pub fn tiers(self) -> (LocalCache, bool) {
        match self {
            CacheBackend::Auto => (LocalCache::Auto, false),
            CacheBackend::Keyring => (LocalCache::Keyring, false),
            CacheBackend::File => (LocalCache::File, false),
            CacheBackend::None => (LocalCache::None, false),
            CacheBackend::Vault => (LocalCache::Auto, true),
        }
    }

    /// The backend of these tiers (the inverse of [`CacheBackend::tiers`]).
    pub fn of_tiers(local: LocalCache, shared: bool) -> CacheBackend {
        match (local, shared) {
            (_, true) => CacheBackend::Vault,
            (LocalCache::Auto, false) => CacheBackend::Auto,
            (LocalCache::Keyring, false) => CacheBackend::Keyring,
            (LocalCache::File, false) => CacheBackend::File,
            (LocalCache::None, false) => CacheBackend::None,
        }
    }
}

/// This host's cache tier (SPEC §6): what `--cache` keeps locally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalCache {
    /// The kernel keyring if usable, else a memory-backed file directory, else none.
    Auto,
    Keyring,
    File,
    /// No caching: every call exchanges.
    None,
}

/// clap's parser of durations (`90s`, `5m`, `1h30m`, `3d`).
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    crate::time::parse_duration(text)
}

/// Options shared by every command. Each also has a profile key in the
/// config file; [`super::resolve`] merges them (flags > env > file > defaults).
//
// Each setting is declared once, here, for clap and for serde: this struct
// is also the type of a profile's table in the config file. What only one
// side has is skipped by the other (`--profile` is no file key,
// `vault_ca_cert` no flag); the durations and switches are two fields each,
// as clap checks a flag's value while it parses, but a file's value is
// checked after merging, where the error can name its key and file. The
// tables refuse unknown keys: a typo must not silently fall back to a
// default. There are deliberately no keys for secret values; files holding
// them are named instead.
#[derive(Args, Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalArgs {
    /// Profile of the config file to use.
    #[serde(skip)]
    #[arg(
        short,
        long,
        global = true,
        env = "SEATABLE_CRED_PROFILE",
        value_name = "NAME"
    )]
    pub profile: Option<String>,
    /// Config file [default: $XDG_CONFIG_HOME/seatable-cred/config.toml].
    #[serde(skip)]
    #[arg(long, global = true, env = "SEATABLE_CRED_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// SeaTable server, e.g. https://cloud.seatable.io.
    #[arg(long, global = true, env = "SEATABLE_SERVER_URL", value_name = "URL")]
    pub server_url: Option<String>,
    /// CA bundle (PEM) to trust for SeaTable, on top of the system roots.
    #[arg(long, global = true, env = "SEATABLE_CA_CERT", value_name = "PATH")]
    pub ca_cert: Option<PathBuf>,
    /// Vault or OpenBao address [env: VAULT_ADDR, BAO_ADDR].
    #[arg(long, global = true, value_name = "URL")]
    pub vault_addr: Option<String>,
    /// Vault namespace [env: VAULT_NAMESPACE, BAO_NAMESPACE].
    #[arg(long, global = true, value_name = "NS")]
    pub vault_namespace: Option<String>,
    /// File key only (its variables are VAULT_CACERT and BAO_CACERT).
    #[arg(skip)]
    pub vault_ca_cert: Option<PathBuf>,
    /// File key only (VAULT_CAPATH, BAO_CAPATH).
    #[arg(skip)]
    pub vault_ca_path: Option<PathBuf>,
    /// File key only (VAULT_CLIENT_CERT, BAO_CLIENT_CERT).
    #[arg(skip)]
    pub vault_client_cert: Option<PathBuf>,
    /// File key only (VAULT_CLIENT_KEY, BAO_CLIENT_KEY).
    #[arg(skip)]
    pub vault_client_key: Option<PathBuf>,
    /// Where the API token lives: MOUNT/PATH, e.g. secret/seatable/crm.
    #[arg(
        long,
        global = true,
        env = "SEATABLE_CRED_SECRET",
        value_name = "MOUNT/PATH"
    )]
    pub secret: Option<String>,
    /// Key inside the secret [default: api_token].
    #[arg(long, global = true, env = "SEATABLE_CRED_FIELD", value_name = "NAME")]
    pub field: Option<String>,
    /// KV engine version [default: detected from the mount].
    #[arg(long, global = true, env = "SEATABLE_CRED_KV_VERSION", value_name = "1|2", value_parser = clap::value_parser!(u8).range(1..=2))]
    pub kv_version: Option<u8>,
    /// Vault auth method [default: token]; none sends no Vault token, for a Vault or OpenBao Proxy or Agent that adds its own.
    #[arg(
        long,
        global = true,
        env = "SEATABLE_CRED_AUTH",
        value_enum,
        value_name = "METHOD"
    )]
    pub auth: Option<AuthMethod>,
    /// File holding the Vault token for --auth token, e.g. an agent's sink: read on every use, never kept [default: VAULT_TOKEN, BAO_TOKEN, else ~/.vault-token].
    #[arg(
        long,
        global = true,
        env = "SEATABLE_CRED_VAULT_TOKEN_FILE",
        value_name = "PATH"
    )]
    pub vault_token_file: Option<PathBuf>,
    /// Mount path of the auth method [default: the method's name].
    #[arg(
        long,
        global = true,
        env = "SEATABLE_CRED_AUTH_MOUNT",
        value_name = "PATH"
    )]
    pub auth_mount: Option<String>,
    /// Role (kubernetes, jwt; optional certificate role for cert).
    #[arg(long, global = true, env = "SEATABLE_CRED_ROLE", value_name = "NAME")]
    pub role: Option<String>,
    /// AppRole role-id.
    #[arg(long, global = true, env = "SEATABLE_CRED_ROLE_ID", value_name = "ID")]
    pub role_id: Option<String>,
    /// File holding the AppRole secret-id [or its value in env SEATABLE_CRED_SECRET_ID].
    #[arg(long, global = true, value_name = "PATH")]
    pub secret_id_file: Option<PathBuf>,
    /// File holding the JWT [or its value in env SEATABLE_CRED_JWT].
    #[arg(long, global = true, value_name = "PATH")]
    pub jwt_file: Option<PathBuf>,
    /// Userpass user; the password comes from SEATABLE_CRED_PASSWORD or a prompt.
    #[arg(
        long,
        global = true,
        env = "SEATABLE_CRED_USERNAME",
        value_name = "NAME"
    )]
    pub username: Option<String>,
    /// Cache backend [default: auto].
    #[arg(
        long,
        global = true,
        env = "SEATABLE_CRED_CACHE",
        value_enum,
        value_name = "BACKEND"
    )]
    pub cache: Option<CacheBackend>,
    /// Directory of the file cache and the lock files.
    #[arg(
        long,
        global = true,
        env = "SEATABLE_CRED_CACHE_DIR",
        value_name = "DIR"
    )]
    pub cache_dir: Option<PathBuf>,
    /// KV v2 path of the shared cache for --cache vault, e.g. secret/seatable-cred/cache.
    #[arg(
        long,
        global = true,
        env = "SEATABLE_CRED_SHARED_CACHE",
        value_name = "MOUNT/PATH"
    )]
    pub shared_cache: Option<String>,
    #[serde(skip)]
    /// Accept a cache directory on a persistent filesystem (tokens would lie on disk).
    #[arg(long, global = true)]
    pub allow_disk_cache: bool,
    /// `allow_disk_cache` as the config file says it, checked once merged.
    #[arg(skip)]
    #[serde(rename = "allow_disk_cache")]
    pub file_allow_disk_cache: Option<bool>,
    #[serde(skip)]
    /// Accept plain http:// to a SeaTable or Vault that is not loopback (tokens in clear text).
    #[arg(long, global = true, env = "SEATABLE_CRED_ALLOW_HTTP", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_http: bool,
    /// `allow_http` as the config file says it, checked once merged.
    #[arg(skip)]
    #[serde(rename = "allow_http")]
    pub file_allow_http: Option<bool>,
    #[serde(skip)]
    /// Refresh this long before the token expires [default: 5m].
    #[arg(long, global = true, env = "SEATABLE_CRED_REFRESH_BEFORE", value_name = "DURATION", value_parser = duration)]
    pub refresh_before: Option<Duration>,
    /// `refresh_before` as the config file says it, checked once merged.
    #[arg(skip)]
    #[serde(rename = "refresh_before")]
    pub file_refresh_before: Option<String>,
    #[serde(skip)]
    /// Ask SeaTable for base tokens that live this long (default: the server's, 3d).
    #[arg(long, global = true, env = "SEATABLE_CRED_LIFETIME", value_name = "DURATION", value_parser = duration)]
    pub lifetime: Option<Duration>,
    /// `lifetime` as the config file says it, checked once merged.
    #[arg(skip)]
    #[serde(rename = "lifetime")]
    pub file_lifetime: Option<String>,
    #[serde(skip)]
    /// Accept a --lifetime over 3d, SeaTable's default (a base token outlives a revoked or rotated API token until it expires).
    #[arg(long, global = true, env = "SEATABLE_CRED_ALLOW_LONG_LIFETIME", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_long_lifetime: bool,
    /// `allow_long_lifetime` as the config file says it, checked once merged.
    #[arg(skip)]
    #[serde(rename = "allow_long_lifetime")]
    pub file_allow_long_lifetime: Option<bool>,
    #[serde(skip)]
    /// Overall deadline for the network work of one call [default: 30s].
    #[arg(long, global = true, env = "SEATABLE_CRED_TIMEOUT", value_name = "DURATION", value_parser = duration)]
    pub timeout: Option<Duration>,
    /// `timeout` as the config file says it, checked once merged.
    #[arg(skip)]
    #[serde(rename = "timeout")]
    pub file_timeout: Option<String>,
    /// `token` commands: Vault secret whose field account_token holds a SeaTable account token.
    #[arg(
        long,
        global = true,
        env = "SEATABLE_CRED_ACCOUNT_SECRET",
        value_name = "MOUNT/PATH"
    )]
    pub account_secret: Option<String>,
    /// `token` commands: log in as this SeaTable user (password from SEATABLE_CRED_ACCOUNT_PASSWORD or a prompt).
    #[arg(
        long,
        global = true,
        env = "SEATABLE_CRED_ACCOUNT",
        value_name = "EMAIL"
    )]
    pub account: Option<String>,
    #[serde(skip)]
    /// `doctor` warns when the API token in Vault is older than this, `token audit` finds older tokens `old` [default: 90d].
    #[arg(long, global = true, env = "SEATABLE_CRED_TOKEN_MAX_AGE", value_name = "DURATION", value_parser = duration)]
    pub token_max_age: Option<Duration>,
    /// `token_max_age` as the config file says it, checked once merged.
    #[arg(skip)]
    #[serde(rename = "token_max_age")]
    pub file_token_max_age: Option<String>,
    #[serde(skip)]
    /// More diagnostics on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[serde(skip)]
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Where clap found each value: the flag or its environment variable.
    #[arg(skip)]
    #[serde(skip)]
    pub sources: Sources,
}
