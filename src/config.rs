//! Profile resolution: flags > environment > config file > defaults (SPEC §3).
//!
//! The result, [`Profile`], is everything one call needs, validated up front
//! so that a typo fails fast with exit 2 — before any network work and also
//! on a cache hit. Secrets are not read here: [`SecretInput`] only says where
//! a secret comes from, and it is read when a login actually happens, so the
//! cache-hit path touches no secret file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use secrecy::SecretString;
use serde::Deserialize;

use crate::cli::{AuthMethod, CacheBackend, GlobalArgs};
use crate::error::Failure;

mod profiles;
pub use profiles::{profile_names, resolve_named, resolve_settings};

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
/// Where Kubernetes mounts the service-account token.
pub const KUBERNETES_SA_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// The config file: one table per profile under `[profiles.NAME]`.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    profiles: BTreeMap<String, ProfileConfig>,
}

/// One `[profiles.NAME]` table. Unknown keys are an error: a typo must not
/// silently fall back to a default. There are deliberately no keys for
/// secret values; files holding them are named instead.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields)]
struct ProfileConfig {
    server_url: Option<String>,
    ca_cert: Option<PathBuf>,
    vault_addr: Option<String>,
    vault_namespace: Option<String>,
    vault_ca_cert: Option<PathBuf>,
    vault_ca_path: Option<PathBuf>,
    vault_client_cert: Option<PathBuf>,
    vault_client_key: Option<PathBuf>,
    secret: Option<String>,
    field: Option<String>,
    kv_version: Option<u8>,
    auth: Option<AuthMethod>,
    auth_mount: Option<String>,
    role: Option<String>,
    role_id: Option<String>,
    secret_id_file: Option<PathBuf>,
    jwt_file: Option<PathBuf>,
    username: Option<String>,
    cache: Option<CacheBackend>,
    cache_dir: Option<PathBuf>,
    shared_cache: Option<String>,
    allow_disk_cache: Option<bool>,
    allow_http: Option<bool>,
    refresh_before: Option<String>,
    lifetime: Option<String>,
    allow_long_lifetime: Option<bool>,
    timeout: Option<String>,
    account_secret: Option<String>,
    account: Option<String>,
    token_max_age: Option<String>,
}

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

/// Where a secret comes from. Reading happens only when it is needed.
pub enum SecretInput {
    /// Already read from this environment variable.
    Env(&'static str, SecretString),
    /// A file whose content (trimmed) is the secret.
    File(PathBuf),
    /// A file that may not exist; then this hint says what to do.
    FileOr(PathBuf, String),
    /// Ask on the terminal with this prompt.
    Prompt(String),
    /// Not configured; the method proceeds without it (e.g. AppRole with
    /// `bind_secret_id = false`) or fails with the contained hint.
    Absent(String),
}

impl std::fmt::Debug for SecretInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretInput::Env(name, _) => write!(f, "Env({name})"),
            SecretInput::File(path) | SecretInput::FileOr(path, _) => {
                write!(f, "File({})", path.display())
            }
            SecretInput::Prompt(_) => f.write_str("Prompt"),
            SecretInput::Absent(_) => f.write_str("Absent"),
        }
    }
}

impl SecretInput {
    /// Where the secret comes from, for people: never the secret.
    pub fn origin(&self) -> String {
        match self {
            SecretInput::Env(name, _) => format!("from {name}"),
            SecretInput::File(path) | SecretInput::FileOr(path, _) => {
                format!("from {}", path.display())
            }
            SecretInput::Prompt(_) => "asked on the terminal".to_string(),
            SecretInput::Absent(_) => "not set".to_string(),
        }
    }
}

/// The Vault login of a profile.
#[derive(Debug)]
pub enum Auth {
    Token(SecretInput),
    AppRole {
        role_id: String,
        secret_id: SecretInput,
    },
    Kubernetes {
        role: String,
        jwt: SecretInput,
    },
    Jwt {
        role: Option<String>,
        jwt: SecretInput,
    },
    Userpass {
        username: String,
        password: SecretInput,
    },
    Cert {
        role: Option<String>,
    },
}

/// Everything needed to talk to Vault.
#[derive(Debug)]
pub struct VaultSettings {
    /// Normalised, without a trailing slash.
    pub addr: String,
    pub namespace: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub ca_path: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Set only by an explicit `VAULT_SKIP_VERIFY`/`BAO_SKIP_VERIFY`.
    pub skip_verify: bool,
    pub auth: Auth,
    pub auth_method: AuthMethod,
    pub auth_mount: String,
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

#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub backend: CacheBackend,
    pub dir: Option<PathBuf>,
    /// Where `dir` was set (for messages about it).
    pub dir_origin: Origin,
    pub allow_disk: bool,
    /// The KV v2 path of the `vault` tier.
    pub shared: Option<SecretRef>,
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
}

impl Profile {
    /// Where the setting with this profile key came from ([`Origin::Default`]
    /// when nothing set it).
    pub fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }
}

/// Where a setting's value came from, so that a message names the place to
/// fix it: the flag, the environment variable or the config file's key —
/// whichever really set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag, e.g. `--lifetime`.
    Flag(String),
    /// An environment variable, e.g. `SEATABLE_CRED_LIFETIME`.
    Env(String),
    /// A key of the profile's table in the config file.
    File {
        key: &'static str,
        profile: String,
        path: PathBuf,
    },
    /// Nothing set it.
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag(flag) => f.write_str(flag),
            Origin::Env(name) => f.write_str(name),
            Origin::File { key, profile, path } => {
                write!(f, "{key} in [profiles.{profile}] of {}", path.display())
            }
            Origin::Default => f.write_str("the default"),
        }
    }
}

/// Where the profile's table is, for messages that tell the user where to
/// fix a setting.
struct Place {
    profile: String,
    file: Option<PathBuf>,
}

impl Place {
    /// "set --flag, ENV or key in [profiles.NAME] of FILE"
    fn hint(&self, flag: &str, env: &str, key: &str) -> String {
        let place = match &self.file {
            Some(file) => format!("[profiles.{}] of {}", self.profile, file.display()),
            None => format!("[profiles.{}] of the config file", self.profile),
        };
        format!("set --{flag}, {env} or {key} in {place}")
    }

    fn file_key(&self, key: &'static str) -> Origin {
        match &self.file {
            Some(path) => Origin::File {
                key,
                profile: self.profile.clone(),
                path: path.clone(),
            },
            None => Origin::Default,
        }
    }
}

/// A usage error about a setting, naming where it was set.
fn bad(origin: &Origin, problem: impl std::fmt::Display) -> Failure {
    Failure::usage(format!("{origin}: {problem}"))
}

/// The origin of a value clap parsed for the argument `id` (a flag, or its
/// environment variable); a flag when clap did not say (tests build
/// [`GlobalArgs`] by hand).
fn clap_origin(args: &GlobalArgs, id: &str) -> Origin {
    args.sources
        .get(id)
        .cloned()
        .unwrap_or_else(|| Origin::Flag(format!("--{}", id.replace('_', "-"))))
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

/// Records where each setting came from while the profile is resolved.
struct Origins<'a> {
    args: &'a GlobalArgs,
    place: &'a Place,
    seen: BTreeMap<&'static str, Origin>,
}

impl Origins<'_> {
    /// The first of: the flag (or its clap-read variable) `from_args`, the
    /// other environment variables `envs`, the file's value; and notes
    /// where it came from under `key` (also the clap argument id).
    fn pick<T>(
        &mut self,
        key: &'static str,
        from_args: Option<T>,
        envs: Vec<(&'static str, Option<T>)>,
        from_file: Option<T>,
    ) -> Option<T> {
        let found = match from_args {
            Some(v) => Some((v, clap_origin(self.args, key))),
            None => envs
                .into_iter()
                .find_map(|(name, v)| v.map(|v| (v, Origin::Env(name.to_string()))))
                .or_else(|| from_file.map(|v| (v, self.place.file_key(key)))),
        };
        found.map(|(v, origin)| {
            self.seen.insert(key, origin);
            v
        })
    }

    /// Where `key` came from, once picked.
    fn of(&self, key: &str) -> Origin {
        self.seen.get(key).cloned().unwrap_or(Origin::Default)
    }
}

/// The default config file: `$XDG_CONFIG_HOME/seatable-cred/config.toml`,
/// falling back to `~/.config` as the XDG spec says.
pub fn default_config_path(env: &dyn Env) -> Option<PathBuf> {
    let base = env
        .var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| env.var("HOME").map(|h| Path::new(&h).join(".config")))?;
    Some(base.join("seatable-cred").join("config.toml"))
}

/// Reads the profile table `name` from `path`. A missing default file is an
/// empty profile; a missing file that was asked for explicitly is an error.
fn load_profile(
    path: Option<&Path>,
    explicit: bool,
    name: &str,
) -> Result<Option<ProfileConfig>, Failure> {
    let Some(path) = path else {
        return Ok(None);
    };
    let Some(text) = read_trusted(path, !explicit, false)? else {
        return Ok(None);
    };
    let mut file = parse(&text, path)?;
    Ok(file.profiles.remove(name))
}

/// The text of the config file at `path`, if it is trusted
/// ([`check_trusted`]) and not too large; `None` if there is none and
/// `missing_ok`. Opened without blocking: a FIFO planted where the file
/// should be must not hang the call before it is found to be someone
/// else's. Only a regular file is taken when `regular_only`; otherwise a
/// pipe of the user's own (`--config <(…)`) is read as it comes.
pub(crate) fn read_trusted(
    path: &Path,
    missing_ok: bool,
    regular_only: bool,
) -> Result<Option<String>, Failure> {
    let cannot = |e: std::io::Error| {
        Failure::usage(format!("cannot read config file {}: {e}", path.display()))
    };
    let file = match std::os::unix::fs::OpenOptionsExt::custom_flags(
        std::fs::File::options().read(true),
        libc::O_NONBLOCK | libc::O_CLOEXEC,
    )
    .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && missing_ok => return Ok(None),
        Err(e) => return Err(cannot(e)),
    };
    let meta = check_trusted(&file, path)?;
    if !meta.is_file() {
        if regular_only {
            return Err(Failure::usage(format!(
                "config file {} is not a regular file: name a file with --config",
                path.display()
            )));
        }
        // O_NONBLOCK means nothing to a regular file: cleared only here.
        blocking(&file).map_err(cannot)?;
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(&file, MAX_CONFIG + 1), &mut text)
        .map_err(cannot)?;
    if text.len() as u64 > MAX_CONFIG {
        return Err(Failure::usage(format!(
            "config file {} is larger than {} KiB: not a seatable-cred config file",
            path.display(),
            MAX_CONFIG / 1024
        )));
    }
    Ok(Some(text))
}

/// Clears `O_NONBLOCK` once the file is known to be trusted.
fn blocking(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function's caller owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags == -1 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) == -1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Config files are small; anything larger is not one.
const MAX_CONFIG: u64 = 1024 * 1024;

/// Refuses a config file that someone else could have written, as ssh does:
/// its `server_url` or `vault_addr` decides where the API token is sent. The
/// owner must be the user (or root) and group and others must not write it.
fn check_trusted(file: &std::fs::File, path: &Path) -> Result<std::fs::Metadata, Failure> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = file.metadata().map_err(|e| {
        Failure::usage(format!(
            "cannot inspect config file {}: {e}",
            path.display()
        ))
    })?;
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    // A device of root's (`/dev/null`) holds no one's settings.
    if meta.file_type().is_char_device() && meta.uid() == 0 {
        return Ok(meta);
    }
    if meta.uid() != me && meta.uid() != 0 {
        return Err(Failure::usage(format!(
            "config file {} belongs to uid {}, not to you: whoever can write it decides where your tokens go; use a file of your own",
            path.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Failure::usage(format!(
            "config file {} is writable by others (mode {:03o}): whoever can write it decides where your tokens go; run chmod go-w {}",
            path.display(),
            meta.mode() & 0o777,
            path.display()
        )));
    }
    Ok(meta)
}

fn parse(text: &str, path: &Path) -> Result<ConfigFile, Failure> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| {
            let upto = s.start.min(text.len());
            text.as_bytes()[..upto]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1
        });
        let at = line.map(|l| format!(", line {l}")).unwrap_or_default();
        Failure::usage(format!(
            "config file {}{at}: {}",
            path.display(),
            e.message().trim()
        ))
    })
}

/// Checks a config file's text; the names of its profiles. (For `doctor`
/// and the fuzzer: the same parser `resolve` uses.)
pub fn check(text: &str, path: &Path) -> Result<Vec<String>, Failure> {
    Ok(parse(text, path)?.profiles.into_keys().collect())
}

/// Validates an http(s) URL and drops a trailing slash. URLs carrying
/// credentials or a query are refused: they would sit in argv or a config
/// file. Messages show the URL without them ([`redact_url`]).
fn normalise_url(text: &str) -> Result<url::Url, String> {
    let shown = redact_url(text);
    let url = url::Url::parse(text.trim()).map_err(|e| format!("'{shown}' is not a URL ({e})"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("'{shown}' must start with https:// or http://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("'{shown}' has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "'{shown}' carries credentials: a URL must not (they would sit in argv or a file)"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("'{shown}' must not have a query or fragment"));
    }
    Ok(url)
}

/// A URL as it may be shown: without user, password, query or fragment.
/// Works on text that does not parse as a URL too — that is exactly when
/// an error message would otherwise echo it.
pub fn redact_url(text: &str) -> String {
    let text = text.trim();
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, text),
    };
    // Everything up to the last '@' may be credentials — a password may
    // hold '/', '?', '#' or '@' itself, so no other separator is trusted
    // before it. Then the query and fragment go.
    let rest = match rest.rfind('@') {
        Some(at) => format!("***@{}", &rest[at + 1..]),
        None => rest.to_string(),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let shown: String = rest.chars().filter(|c| !c.is_control()).take(200).collect();
    match scheme {
        Some(scheme) => format!("{scheme}://{shown}"),
        None => shown,
    }
}

/// Whether plain HTTP to this URL stays on the machine: a loopback address
/// (127.0.0.0/8, ::1, or either as an IPv4-mapped IPv6 address) or exactly
/// the name `localhost`, which the HTTP clients pin to 127.0.0.1
/// ([`crate::http`]). Other names — `localhost.`, `vault.localhost` — are
/// resolved by DNS, which may send them anywhere.
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Checks a normalised URL's scheme against `allow_http`: plain HTTP to a
/// host that is not loopback carries tokens in clear text over a network.
fn check_plain_http(
    url: &url::Url,
    origin: &Origin,
    what: &str,
    allow_http: Option<&Origin>,
) -> Result<(), Failure> {
    if url.scheme() != "http" || is_loopback(url) {
        return Ok(());
    }
    let shown = redact_url(&url_text(url));
    match allow_http {
        None => Err(bad(
            origin,
            format!(
                "'{shown}' is plain HTTP to a host that is not loopback: {what} would cross the network in clear text; use https://, or accept the risk with --allow-http, allow_http = true or SEATABLE_CRED_ALLOW_HTTP=1"
            ),
        )),
        Some(allowed) => {
            tracing::warn!(
                "plain HTTP to {shown} ({origin}): {what} crosses the network unencrypted (allowed by {allowed})"
            );
            Ok(())
        }
    }
}

/// The URL as the helper uses it: without a trailing slash.
fn url_text(url: &url::Url) -> String {
    url.as_str().trim_end_matches('/').to_string()
}

/// `true`/`false` the way Go's strconv.ParseBool reads them, as the vault CLI does.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The profile's table of the config file, and where it is.
fn profile_table(args: &GlobalArgs, env: &dyn Env) -> Result<(String, ProfileConfig, Place)> {
    let name = args
        .profile
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let (path, explicit) = match &args.config {
        Some(path) => (Some(path.clone()), true),
        None => (default_config_path(env), false),
    };
    let file = load_profile(path.as_deref(), explicit, &name)?;
    let place = Place {
        profile: name.clone(),
        file: path.clone(),
    };
    if file.is_none() && name != "default" {
        let place = path.as_ref().map_or("no config file".to_string(), |p| {
            format!("no [profiles.{name}] in {}", p.display())
        });
        return Err(Failure::usage(format!(
            "profile '{name}' is not defined ({place}): add it or pick another with --profile"
        ))
        .into());
    }
    Ok((name, file.unwrap_or_default(), place))
}

/// Only the cache settings of the profile: enough for `erase --all`, which
/// must work without a server or secret configured.
pub fn resolve_cache(args: &GlobalArgs, env: &dyn Env) -> Result<CacheSettings> {
    let (_, file, place) = profile_table(args, env)?;
    let mut origins = Origins {
        args,
        place: &place,
        seen: BTreeMap::new(),
    };
    cache_settings(&file, &mut origins)
}

fn cache_settings(file: &ProfileConfig, o: &mut Origins<'_>) -> Result<CacheSettings> {
    let args = o.args;
    let backend = o
        .pick("cache", args.cache, vec![], file.cache)
        .unwrap_or(CacheBackend::Auto);
    let shared_text = o.pick(
        "shared_cache",
        args.shared_cache.clone(),
        vec![],
        file.shared_cache.clone(),
    );
    let shared = match shared_text {
        Some(text) => Some(SecretRef::parse(&text).ok_or_else(|| {
            bad(
                &o.of("shared_cache"),
                "the value is not MOUNT/PATH of a KV v2 mount, e.g. secret/seatable-cred/cache"
                    .to_string(),
            )
        })?),
        None if backend == CacheBackend::Vault => {
            return Err(Failure::usage(format!(
                "--cache vault needs a KV v2 path for the shared entries: {}",
                o.place
                    .hint("shared-cache", "SEATABLE_CRED_SHARED_CACHE", "shared_cache")
            ))
            .into());
        }
        None => None,
    };
    let dir = o.pick(
        "cache_dir",
        args.cache_dir.clone(),
        vec![],
        file.cache_dir.clone(),
    );
    let allow_disk = o
        .pick(
            "allow_disk_cache",
            args.allow_disk_cache.then_some(true),
            vec![],
            file.allow_disk_cache,
        )
        .unwrap_or(false);
    Ok(CacheSettings {
        backend,
        dir,
        dir_origin: o.of("cache_dir"),
        allow_disk,
        shared,
    })
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
    resolve_table(args, env, name, &ProfileConfig::default(), &place)
}

/// The Vault settings alone, from flags and environment (see
/// [`resolve_unwritten`]): what `init` checks before the rest of the
/// profile is known.
pub fn resolve_vault_unwritten(args: &GlobalArgs, env: &dyn Env) -> Result<VaultSettings> {
    let (_, place) = unwritten_place(args);
    let file = ProfileConfig::default();
    let mut o = Origins {
        args,
        place: &place,
        seen: BTreeMap::new(),
    };
    let allow_http = pick_allow_http(&mut o, &file);
    Ok(resolve_vault(&file, env, &mut o, allow_http.as_ref())?)
}

fn unwritten_place(args: &GlobalArgs) -> (String, Place) {
    let name = args
        .profile
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let place = Place {
        profile: name.clone(),
        file: None,
    };
    (name, place)
}

/// A SeaTable or Vault address as the helper uses it: validated, without a
/// trailing slash, plain HTTP beyond loopback only with `allow_http` — the
/// rules [`resolve`] applies, for `init` to check an answer by. `what` is
/// the secret the address would carry ("the API token").
pub fn check_address(
    text: &str,
    origin: &Origin,
    what: &str,
    allow_http: Option<&Origin>,
) -> Result<String, Failure> {
    let url = normalise_url(text).map_err(|e| bad(origin, e))?;
    check_plain_http(&url, origin, what, allow_http)?;
    Ok(url_text(&url))
}

/// Whether plain HTTP may be used, and where that was said. Checked first:
/// it decides whether the addresses of the profile are acceptable.
fn pick_allow_http(o: &mut Origins<'_>, file: &ProfileConfig) -> Option<Origin> {
    let args = o.args;
    o.pick(
        "allow_http",
        // An explicit SEATABLE_CRED_ALLOW_HTTP=false beats the file.
        (args.allow_http || args.sources.contains_key("allow_http")).then_some(args.allow_http),
        vec![],
        file.allow_http,
    )
    .unwrap_or(false)
    .then(|| o.of("allow_http"))
}

fn resolve_table(
    args: &GlobalArgs,
    env: &dyn Env,
    name: String,
    file: &ProfileConfig,
    place: &Place,
) -> Result<Profile> {
    let mut o = Origins {
        args,
        place,
        seen: BTreeMap::new(),
    };
    let allow_http = pick_allow_http(&mut o, file);

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
                return Failure::usage(format!(
                    "SEATABLE_SERVER_URL is the address of a seatable-cred agent (its env file says so in {AGENT_URL}), where the API token must never go: {}",
                    place.hint(
                        "server-url",
                        "SEATABLE_SERVER_URL (to SeaTable's own address)",
                        "server_url"
                    )
                ));
            }
            Failure::usage(format!(
                "no SeaTable server: {}",
                place.hint("server-url", "SEATABLE_SERVER_URL", "server_url")
            ))
        })?;
    let server_url = check_address(
        &server_url,
        &o.of("server_url"),
        "the API token",
        allow_http.as_ref(),
    )?;

    let secret_text = o
        .pick("secret", args.secret.clone(), vec![], file.secret.clone())
        .ok_or_else(|| {
            Failure::usage(format!(
                "no secret path for the API token: {}",
                place.hint("secret", "SEATABLE_CRED_SECRET", "secret")
            ))
        })?;
    let secret = SecretRef::parse(&secret_text).ok_or_else(|| {
        bad(
            &o.of("secret"),
            "the value is not MOUNT/PATH, e.g. secret/seatable/crm".to_string(),
        )
    })?;

    let field = o
        .pick("field", args.field.clone(), vec![], file.field.clone())
        .unwrap_or_else(|| "api_token".to_string());
    if field.is_empty() {
        return Err(bad(&o.of("field"), "must not be empty").into());
    }
    let kv_version = o.pick("kv_version", args.kv_version, vec![], file.kv_version);
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
        file.refresh_before.clone(),
    )?
    .unwrap_or(DEFAULT_REFRESH_BEFORE);
    let lifetime = duration("lifetime", args.lifetime, file.lifetime.clone())?;
    let timeout =
        duration("timeout", args.timeout, file.timeout.clone())?.unwrap_or(DEFAULT_TIMEOUT);
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
            (args.allow_long_lifetime || args.sources.contains_key("allow_long_lifetime"))
                .then_some(args.allow_long_lifetime),
            vec![],
            file.allow_long_lifetime,
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

    let ca_cert = o.pick(
        "ca_cert",
        args.ca_cert.clone(),
        vec![],
        file.ca_cert.clone(),
    );
    let vault = resolve_vault(file, env, &mut o, allow_http.as_ref())?;
    let cache = cache_settings(file, &mut o)?;

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
    })
}

/// The longest `--lifetime` accepted without `--allow-long-lifetime`:
/// SeaTable's own default, 3 days.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(3 * 24 * 3600);

/// The longest `--lifetime` accepted.
pub const MAX_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

fn resolve_vault(
    file: &ProfileConfig,
    env: &dyn Env,
    o: &mut Origins<'_>,
    allow_http: Option<&Origin>,
) -> Result<VaultSettings, Failure> {
    let args = o.args;
    // The vault CLI's default address.
    let addr_text = o
        .pick(
            "vault_addr",
            args.vault_addr.clone(),
            vec![
                ("VAULT_ADDR", env.var("VAULT_ADDR")),
                ("BAO_ADDR", env.var("BAO_ADDR")),
            ],
            file.vault_addr.clone(),
        )
        .unwrap_or_else(|| DEFAULT_VAULT_ADDR.to_string());
    let addr = check_address(
        &addr_text,
        &o.of("vault_addr"),
        "the Vault token",
        allow_http,
    )?;
    let namespace = o.pick(
        "vault_namespace",
        args.vault_namespace.clone(),
        vec![
            ("VAULT_NAMESPACE", env.var("VAULT_NAMESPACE")),
            ("BAO_NAMESPACE", env.var("BAO_NAMESPACE")),
        ],
        file.vault_namespace.clone(),
    );
    let either = |a: &'static str, b: &'static str| {
        vec![
            (a, env.var(a).map(PathBuf::from)),
            (b, env.var(b).map(PathBuf::from)),
        ]
    };
    let skip_verify = match env
        .var("VAULT_SKIP_VERIFY")
        .or_else(|| env.var("BAO_SKIP_VERIFY"))
    {
        None => false,
        Some(v) => parse_bool(&v).ok_or_else(|| {
            Failure::usage(format!(
                "VAULT_SKIP_VERIFY='{v}' is not a boolean: use true or false"
            ))
        })?,
    };

    let method = o
        .pick("auth", args.auth, vec![], file.auth)
        .unwrap_or(AuthMethod::Token);
    let auth_mount = o
        .pick(
            "auth_mount",
            args.auth_mount.clone(),
            vec![],
            file.auth_mount.clone(),
        )
        .unwrap_or_else(|| method.name().to_string())
        .trim_matches('/')
        .to_string();
    let role = o.pick("role", args.role.clone(), vec![], file.role.clone());
    // A secret value in the environment or a file that holds it; the flag's
    // file wins over the environment's value, which wins over the config's file.
    let secret_input = |flag: &Option<PathBuf>, env_name: &'static str, key: &Option<PathBuf>| {
        if let Some(path) = flag {
            Some(SecretInput::File(path.clone()))
        } else if let Some(value) = env.var(env_name) {
            Some(SecretInput::Env(env_name, SecretString::from(value)))
        } else {
            key.clone().map(SecretInput::File)
        }
    };
    let place = o.place;
    let required = |value: Option<String>, what: &str, flag: &str, env_name: &str, key: &str| {
        value.ok_or_else(|| {
            Failure::usage(format!(
                "--auth {} needs {what}: {}",
                method.name(),
                place.hint(flag, env_name, key)
            ))
        })
    };

    let auth = match method {
        AuthMethod::Token => Auth::Token(
            if let Some(v) = env.var("VAULT_TOKEN") {
                SecretInput::Env("VAULT_TOKEN", SecretString::from(v))
            } else if let Some(v) = env.var("BAO_TOKEN") {
                SecretInput::Env("BAO_TOKEN", SecretString::from(v))
            } else {
                const HINT: &str = "no Vault token: set VAULT_TOKEN or BAO_TOKEN, log in with `bao login`/`vault login`, or choose another --auth";
                match env.var("HOME") {
                    Some(home) => SecretInput::FileOr(Path::new(&home).join(".vault-token"), HINT.into()),
                    None => SecretInput::Absent(HINT.into()),
                }
            },
        ),
        AuthMethod::Approle => Auth::AppRole {
            role_id: required(
                o.pick("role_id", args.role_id.clone(), vec![], file.role_id.clone()),
                "a role-id",
                "role-id",
                "SEATABLE_CRED_ROLE_ID",
                "role_id",
            )?,
            secret_id: secret_input(&args.secret_id_file, "SEATABLE_CRED_SECRET_ID", &file.secret_id_file)
                .unwrap_or_else(|| SecretInput::Absent(String::new())),
        },
        AuthMethod::Kubernetes => Auth::Kubernetes {
            role: required(role, "a role", "role", "SEATABLE_CRED_ROLE", "role")?,
            jwt: secret_input(&args.jwt_file, "SEATABLE_CRED_JWT", &file.jwt_file)
                .unwrap_or_else(|| SecretInput::File(PathBuf::from(KUBERNETES_SA_TOKEN))),
        },
        AuthMethod::Jwt => Auth::Jwt {
            role,
            jwt: secret_input(&args.jwt_file, "SEATABLE_CRED_JWT", &file.jwt_file).ok_or_else(|| {
                Failure::usage(format!(
                    "--auth jwt needs a JWT: set --jwt-file, SEATABLE_CRED_JWT (the token itself) or jwt_file in [profiles.{}]",
                    place.profile
                ))
            })?,
        },
        AuthMethod::Userpass => {
            let username = required(
                o.pick("username", args.username.clone(), vec![], file.username.clone()),
                "a username",
                "username",
                "SEATABLE_CRED_USERNAME",
                "username",
            )?;
            let password = match env.var("SEATABLE_CRED_PASSWORD") {
                Some(v) => SecretInput::Env("SEATABLE_CRED_PASSWORD", SecretString::from(v)),
                None => SecretInput::Prompt(format!("Vault password for {username}: ")),
            };
            Auth::Userpass { username, password }
        }
        AuthMethod::Cert => Auth::Cert { role },
    };

    let client_cert = o.pick(
        "vault_client_cert",
        None,
        either("VAULT_CLIENT_CERT", "BAO_CLIENT_CERT"),
        file.vault_client_cert.clone(),
    );
    let client_key = o.pick(
        "vault_client_key",
        None,
        either("VAULT_CLIENT_KEY", "BAO_CLIENT_KEY"),
        file.vault_client_key.clone(),
    );
    if method == AuthMethod::Cert && (client_cert.is_none() || client_key.is_none()) {
        return Err(Failure::usage(
            "--auth cert needs a client certificate: set VAULT_CLIENT_CERT and VAULT_CLIENT_KEY (or vault_client_cert and vault_client_key in the profile)",
        ));
    }
    if client_cert.is_some() != client_key.is_some() {
        return Err(Failure::usage(
            "a Vault client certificate needs both VAULT_CLIENT_CERT and VAULT_CLIENT_KEY",
        ));
    }
    let ca_cert = o.pick(
        "vault_ca_cert",
        None,
        either("VAULT_CACERT", "BAO_CACERT"),
        file.vault_ca_cert.clone(),
    );
    let ca_path = o.pick(
        "vault_ca_path",
        None,
        either("VAULT_CAPATH", "BAO_CAPATH"),
        file.vault_ca_path.clone(),
    );

    Ok(VaultSettings {
        addr,
        namespace,
        ca_cert,
        ca_path,
        client_cert,
        client_key,
        skip_verify,
        auth,
        auth_method: method,
        auth_mount,
    })
}

/// The vault CLI's default address, used when nothing sets one.
pub const DEFAULT_VAULT_ADDR: &str = "https://127.0.0.1:8200";

/// Default of `token_max_age`: `doctor` warns about older API tokens.
pub const DEFAULT_TOKEN_MAX_AGE: Duration = Duration::from_secs(90 * 24 * 3600);

/// Who the `token` commands act as on SeaTable's account API (SPEC §12).
pub enum AccountAuth {
    /// An account token kept in Vault: field `account_token` of this secret.
    Vault(SecretRef),
    /// A login as this user; the password (and a two-factor code) from the
    /// environment, else asked on the terminal.
    Login {
        email: String,
        password: Option<SecretString>,
        otp: Option<SecretString>,
    },
}

impl std::fmt::Debug for AccountAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountAuth::Vault(secret) => write!(f, "Vault({secret})"),
            AccountAuth::Login { email, .. } => write!(f, "Login({email})"),
        }
    }
}

/// The settings of the API-token life cycle; resolved apart from
/// [`Profile`] because only the `token` commands and `doctor` use them.
#[derive(Debug)]
pub struct AccountSettings {
    /// `None` when neither `account_secret` nor `account` is set.
    pub auth: Option<AccountAuth>,
    pub token_max_age: Duration,
}

/// Resolves `account_secret`, `account` and `token_max_age` (flags > env >
/// file). Setting both account keys at the same level is an error; a flag
/// or variable beats the other key in the file.
pub fn resolve_account(args: &GlobalArgs, env: &dyn Env) -> Result<AccountSettings> {
    let (_, file, place) = profile_table(args, env)?;
    let mut o = Origins {
        args,
        place: &place,
        seen: BTreeMap::new(),
    };
    enum Chosen {
        Secret(String),
        Email(String),
    }
    let pick = |secret: &Option<String>, email: &Option<String>, place: &str| match (secret, email)
    {
        (Some(_), Some(_)) => Err(Failure::usage(format!(
            "both an account secret and an account are set {place}: keep only one of account_secret and account"
        ))),
        (Some(s), None) => Ok(Some(Chosen::Secret(s.clone()))),
        (None, Some(e)) => Ok(Some(Chosen::Email(e.clone()))),
        (None, None) => Ok(None),
    };
    let in_file = match &place.file {
        Some(file) => format!("in [profiles.{}] of {}", place.profile, file.display()),
        None => "in the config file".to_string(),
    };
    let chosen = match pick(
        &args.account_secret,
        &args.account,
        "(--account-secret/SEATABLE_CRED_ACCOUNT_SECRET and --account/SEATABLE_CRED_ACCOUNT)",
    )? {
        Some(found) => Some(found),
        None => pick(&file.account_secret, &file.account, &in_file)?,
    };
    // Where the chosen key came from, for messages about its value.
    let from_args = args.account_secret.is_some() || args.account.is_some();
    let origin_of = |key: &'static str| {
        if from_args {
            clap_origin(args, key)
        } else {
            place.file_key(key)
        }
    };
    let auth = match chosen {
        Some(Chosen::Secret(text)) => Some(AccountAuth::Vault(
            SecretRef::parse(&text).ok_or_else(|| {
                bad(
                    &origin_of("account_secret"),
                    "the value is not MOUNT/PATH, e.g. secret/seatable/account".to_string(),
                )
            })?,
        )),
        Some(Chosen::Email(email)) => {
            let email = email.trim().to_string();
            if email.is_empty() || email.chars().any(char::is_control) {
                return Err(bad(
                    &origin_of("account"),
                    "must be the e-mail address of a SeaTable user",
                )
                .into());
            }
            Some(AccountAuth::Login {
                email,
                password: env
                    .var("SEATABLE_CRED_ACCOUNT_PASSWORD")
                    .map(SecretString::from),
                otp: env.var("SEATABLE_CRED_OTP").map(SecretString::from),
            })
        }
        None => None,
    };
    let parsed = file
        .token_max_age
        .as_ref()
        .map(|t| crate::time::parse_duration(t));
    let token_max_age = o
        .pick("token_max_age", args.token_max_age.map(Ok), vec![], parsed)
        .transpose()
        .map_err(|e| bad(&o.of("token_max_age"), e))?
        .unwrap_or(DEFAULT_TOKEN_MAX_AGE);
    if token_max_age.is_zero() {
        return Err(bad(&o.of("token_max_age"), "must be more than 0s").into());
    }
    Ok(AccountSettings {
        auth,
        token_max_age,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct FakeEnv(HashMap<&'static str, String>);
    impl Env for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned().filter(|v| !v.is_empty())
        }
    }
    fn env(pairs: &[(&'static str, &str)]) -> FakeEnv {
        FakeEnv(pairs.iter().map(|(k, v)| (*k, v.to_string())).collect())
    }

    fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn args_with(config: &Path) -> GlobalArgs {
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
        assert_eq!(p.cache.backend, CacheBackend::Auto);
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
        let (_d, path) = write_config("[profile.default]\nserver_url = \"https://x\"\n");
        let text = err_text(resolve(&args_with(&path), &env(&[])));
        assert!(text.contains("profile"), "{text}");
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
    fn urls_are_shown_without_credentials_or_query() {
        for (text, shown) in [
            (
                "https://alice:S3CRET@host:99999/p?x=1",
                "https://***@host:99999/p",
            ),
            (
                "https://host/path?api_token=SECRET#frag",
                "https://host/path",
            ),
            ("https://user@host", "https://***@host"),
            ("not a url but:PASSWORD@host", "***@host"),
            ("https://a@b@host/x", "https://***@host/x"),
            ("https://user:pa/ss@host", "https://***@host"),
            ("https://user:p?ss@host/x", "https://***@host/x"),
            ("https://user:p#ss@host", "https://***@host"),
            ("https://host:8200", "https://host:8200"),
            ("http://h/\u{1b}[31m", "http://h/[31m"),
        ] {
            assert_eq!(redact_url(text), shown, "{text}");
        }
    }

    #[test]
    fn loopback_is_by_address_or_the_name_localhost() {
        let yes = |u: &str| is_loopback(&url::Url::parse(u).unwrap());
        for u in [
            "http://127.0.0.1:1",
            "http://127.9.8.7",
            "http://[::1]:8",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:8200",
            "http://LOCALHOST",
        ] {
            assert!(yes(u), "{u}");
        }
        for u in [
            "http://0.0.0.0:1",
            "http://10.0.0.1",
            "http://[::]:1",
            "http://localhost.example.com",
            "http://localhost.",
            "http://vault.localhost",
            "http://mylocalhost",
            "http://[::ffff:10.0.0.1]",
        ] {
            assert!(!yes(u), "{u}");
        }
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
                "lifetime in [profiles.default] of {}: must be at least 1h: SeaTable issues base tokens for whole hours or days",
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
        args.sources = crate::cli::Sources::from_map(sources);
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
        let shown = check_address(
            "http://s.example.com/",
            &Origin::Flag("--server-url".into()),
            "the API token",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            shown.starts_with("--server-url: 'http://s.example.com' is plain HTTP"),
            "{shown}"
        );
        assert_eq!(
            check_address("https://s.example.com/", &Origin::Default, "x", None).unwrap(),
            "https://s.example.com"
        );
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

    #[test]
    fn account_settings() {
        let (_d, path) = write_config(
            "[profiles.default]\naccount_secret = \"secret/seatable/account\"\ntoken_max_age = \"30d\"\n",
        );
        let a = resolve_account(&args_with(&path), &env(&[])).unwrap();
        assert!(
            matches!(&a.auth, Some(AccountAuth::Vault(s)) if s.to_string() == "secret/seatable/account")
        );
        assert_eq!(a.token_max_age, Duration::from_secs(30 * 86_400));
        // A flag beats the file's other key; its password comes from the environment.
        let mut args = args_with(&path);
        args.account = Some("ops@example.com".into());
        let a = resolve_account(
            &args,
            &env(&[
                ("SEATABLE_CRED_ACCOUNT_PASSWORD", "pw"),
                ("SEATABLE_CRED_OTP", "123456"),
            ]),
        )
        .unwrap();
        match &a.auth {
            Some(AccountAuth::Login {
                email,
                password: Some(_),
                otp: Some(_),
            }) => assert_eq!(email, "ops@example.com"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(!format!("{:?}", a.auth).contains("pw"));
        // Both at one level is an error; nothing set is fine.
        args.account_secret = Some("secret/x".into());
        let e = resolve_account(&args, &env(&[])).unwrap_err();
        assert!(crate::error::one_line(&e).contains("only one"), "{e}");
        let none = resolve_account(&GlobalArgs::default(), &env(&[])).unwrap();
        assert!(none.auth.is_none());
        assert_eq!(none.token_max_age, DEFAULT_TOKEN_MAX_AGE);
        let (_d, path) = write_config("[profiles.default]\naccount_secret = \"nomount\"\n");
        let e = resolve_account(&args_with(&path), &env(&[])).unwrap_err();
        assert!(crate::error::one_line(&e).contains("account_secret"), "{e}");
    }
}
