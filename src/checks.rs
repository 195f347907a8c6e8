//! The checks of `doctor` (SPEC §8): each step a `get` depends on —
//! config, cache, Vault, login, secret, SeaTable, exchange, clock (and the
//! API token's age, with account credentials) — one line each that says
//! what to fix, never a secret.
//!
//! Each probe is a function of its own ([`cache`], [`vault`], [`login`],
//! [`secret`], [`seatable`], [`exchange`]) with its result line
//! ([`format_line`]); `init` calls them too, to check an answer the moment
//! it is given. [`run`] is doctor's whole report; `commands::doctor` prints it.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Result;

use crate::cache::Cache;
use crate::config::{self, Auth, CacheSettings, GlobalArgs, ProcessEnv, Profile, VaultSettings};
use crate::error::{Failure, Kind, kind_of, one_line};
use crate::vault::{Prepared, Session, Wanted};

/// Clocks further apart than this make expiry decisions wrong.
const SKEW_WARN: u64 = 30;

#[derive(Clone, Copy, PartialEq)]
pub enum Mark {
    Ok,
    Warn,
    Fail,
    Skip,
}

/// doctor's report: its lines, and the kind of the first failure (which
/// decides the exit code).
pub struct Report {
    pub out: String,
    pub first_failure: Option<Kind>,
}

/// One line of the report: `ok    vault     https://… reachable`.
pub fn format_line(mark: Mark, step: &str, text: &str) -> String {
    let mark = match mark {
        Mark::Ok => "ok  ",
        Mark::Warn => "warn",
        Mark::Fail => "FAIL",
        Mark::Skip => "skip",
    };
    // What a step reports quotes servers (base names, versions, their
    // error messages): shown escaped, one line.
    format!("{mark}  {step:<9} {}", crate::shown::Shown(text))
}

impl Report {
    fn line(&mut self, mark: Mark, step: &str, text: impl AsRef<str>) {
        let _ = writeln!(self.out, "{}", format_line(mark, step, text.as_ref()));
    }

    fn fail(&mut self, step: &str, err: &anyhow::Error) {
        self.line(Mark::Fail, step, one_line(err));
        self.first_failure.get_or_insert(kind_of(err));
    }
}

/// Every check, in order; a step that cannot run for want of an earlier one
/// says so.
pub fn run(global: &GlobalArgs) -> Report {
    let mut report = Report {
        out: String::new(),
        first_failure: None,
    };
    check(global, &mut report);
    report
}

impl Report {
    /// The exit code: the first failed step's (SPEC §8), 0 when all passed.
    pub fn exit_code(&self) -> u8 {
        self.first_failure.map_or(0, Kind::exit_code)
    }
}

fn check(global: &GlobalArgs, report: &mut Report) {
    let profile = match config::resolve(global, &ProcessEnv) {
        Ok(p) => p,
        Err(e) => {
            report.fail("config", &e);
            for step in [
                "cache", "vault", "login", "secret", "seatable", "exchange", "clock",
            ] {
                report.line(Mark::Skip, step, "needs a valid configuration");
            }
            return;
        }
    };
    let source = match config::default_config_path(&ProcessEnv) {
        _ if global.config.is_some() => {
            format!("from {}", global.config.as_ref().unwrap().display())
        }
        Some(path) if path.is_file() => format!("from {}", path.display()),
        _ => "from flags and environment".to_string(),
    };
    report.line(
        Mark::Ok,
        "config",
        format!(
            "profile {} {source}: server {}, secret {} field {}, {} auth",
            profile.name,
            profile.server_url,
            profile.secret,
            profile.field,
            profile.vault.auth_method.name()
        ),
    );
    if let Some(allowed) = &profile.allow_http {
        for (what, url) in [
            ("SeaTable", &profile.server_url),
            ("Vault", &profile.vault.addr),
        ] {
            if let Ok(parsed) = url::Url::parse(url)
                && parsed.scheme() == "http"
                && !crate::address::is_loopback(&parsed)
            {
                report.line(
                    Mark::Warn,
                    "config",
                    format!(
                        "plain HTTP to {what} at {url} (allowed by {allowed}): tokens cross the network unencrypted; use https://"
                    ),
                );
            }
        }
    }

    let Some(cache) = check_cache(&profile, report) else {
        return;
    };
    crate::http::install_provider();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            report.fail(
                "vault",
                &anyhow::anyhow!("cannot start the network runtime: {e}"),
            );
            return;
        }
    };
    let mut clocks = Vec::new();
    let vault_ok = runtime.block_on(check_vault(&profile, &cache, report, &mut clocks));
    runtime.block_on(check_seatable(&profile, report, &mut clocks));
    if vault_ok {
        check_exchange(&profile, &cache, report);
    } else {
        report.line(Mark::Skip, "exchange", "needs the API token from Vault");
    }
    check_clock(&clocks, report);
    check_token_age(global, &profile, vault_ok, report);
}

/// With account credentials configured: how old the API token in Vault is
/// (SeaTable's `generated_at`), a warning past `token_max_age`.
fn check_token_age(global: &GlobalArgs, profile: &Profile, vault_ok: bool, report: &mut Report) {
    let account = match config::resolve_account(global, &ProcessEnv) {
        Ok(a) if a.auth.is_none() => return,
        Ok(a) => a,
        Err(e) => return report.fail("token", &e),
    };
    if !vault_ok {
        return report.line(Mark::Skip, "token", "needs the API token from Vault");
    }
    let age = crate::lifecycle::run(profile, &account, async |ctx| {
        crate::lifecycle::token_age(ctx).await
    });
    let max = crate::time::compact(account.token_max_age);
    match age {
        Ok(t) => match (t.age, t.generated_at) {
            (Some(age), Some(at)) if age > account.token_max_age => report.line(
                Mark::Warn,
                "token",
                format!(
                    "API token '{}' in Vault is {} old (generated {at}), past token_max_age {max}: rotate it with `seatable-cred token rotate`",
                    t.app_name,
                    rough(age)
                ),
            ),
            (Some(age), Some(at)) => report.line(
                Mark::Ok,
                "token",
                format!(
                    "API token '{}' in Vault is {} old (generated {at}; token_max_age {max})",
                    t.app_name,
                    rough(age)
                ),
            ),
            _ => report.line(
                Mark::Ok,
                "token",
                format!(
                    "API token '{}' in Vault; SeaTable does not say when it was generated",
                    t.app_name
                ),
            ),
        },
        Err(e) => report.fail("token", &e),
    }
}

/// An age in its largest whole unit: `120d`, `5h`, `3m`, `9s`.
fn rough(age: Duration) -> String {
    let secs = age.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= size {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

fn check_cache(profile: &Profile, report: &mut Report) -> Option<Cache> {
    match cache(&profile.cache) {
        Ok((cache, text)) => {
            report.line(Mark::Ok, "cache", text);
            Some(cache)
        }
        Err(e) => {
            report.fail("cache", &e);
            None
        }
    }
}

/// The cache backend opens and an entry written can be read back; the
/// cache, and what it is, for people. (`init` checks an answer with it.)
pub fn cache(settings: &CacheSettings) -> Result<(Cache, String)> {
    let cache = Cache::open(settings)?;
    // A round trip of a throwaway entry proves the backend usable.
    let probe = format!("doctor-{}", std::process::id());
    let works = cache
        .store
        .save(&probe, b"{}", crate::time::now() + 60)
        .map(|()| cache.store.load(&probe).is_some() || cache.name() == "none");
    let _ = cache.store.remove(&probe);
    let where_ = match (&settings.shared, cache.name()) {
        (Some(shared), local) => {
            format!("vault at {shared} (Vault logins and locks kept locally: {local})")
        }
        (_, "keyring") => "keyring (the kernel's user keyring)".to_string(),
        (_, "file") => format!(
            "file in {}",
            cache
                .lock_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        ),
        (_, other) => format!("{other}: every call exchanges"),
    };
    if !works? {
        return Err(anyhow::anyhow!(
            "{where_}: an entry written could not be read back"
        ));
    }
    Ok((cache, where_))
}

/// Vault reachable, the login, the secret and its field. `true` when the
/// API token could be read.
async fn check_vault(
    profile: &Profile,
    cache: &Cache,
    report: &mut Report,
    clocks: &mut Vec<(String, u64)>,
) -> bool {
    let v = &profile.vault;
    let deadline = tokio::time::Instant::now() + profile.timeout;
    match vault(v, profile.timeout).await {
        Ok((text, date)) => {
            report.line(Mark::Ok, "vault", text);
            clocks.extend(date.map(|d| ("Vault".to_string(), d)));
        }
        Err(e) => {
            report.fail("vault", &profile.name_origin(e));
            report.line(Mark::Skip, "login", "needs Vault");
            report.line(Mark::Skip, "secret", "needs Vault");
            return false;
        }
    }
    let mut session = match login(v, cache, deadline).await {
        Ok((session, text)) => {
            report.line(Mark::Ok, "login", text);
            session
        }
        Err(e) => {
            report.fail("login", &profile.name_origin(e));
            report.line(Mark::Skip, "secret", "needs a login");
            return false;
        }
    };
    match secret(&mut session, Wanted::api_token(profile)).await {
        Ok(text) => {
            report.line(Mark::Ok, "secret", text);
            true
        }
        Err(e) => {
            report.fail("secret", &profile.name_origin(e));
            false
        }
    }
}

/// Vault answers `sys/health` within `timeout` and is unsealed: what it
/// says, and its clock.
pub async fn vault(v: &VaultSettings, timeout: Duration) -> Result<(String, Option<u64>)> {
    match tokio::time::timeout(timeout, crate::vault::health(v)).await {
        Ok(Ok(health)) if health.sealed => {
            Err(Failure::unavailable(format!("{} is sealed: unseal it", v.addr)).into())
        }
        Ok(Ok(health)) => Ok((
            format!("{} reachable, version {}, unsealed", v.addr, health.version),
            health.date,
        )),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            Err(Failure::unavailable(format!("{} did not answer within --timeout", v.addr)).into())
        }
    }
}

/// Logs in (or reuses the cached login); the session, and how it logged
/// in with which policies, for people.
pub async fn login<'a>(
    v: &'a VaultSettings,
    cache: &'a Cache,
    deadline: tokio::time::Instant,
) -> Result<(Session<'a>, String)> {
    let prepared = Prepared::new(v, cache)?;
    let reused = matches!(prepared, Prepared::Cached(_));
    let session = Session::connect(v, prepared, cache, deadline).await?;
    if matches!(v.auth, Auth::None) {
        let text = tokio::time::timeout_at(deadline, proxy_login(&session, v))
            .await
            .unwrap_or_else(|_| {
                Err(
                    Failure::unavailable(format!("{} did not answer within --timeout", v.addr))
                        .into(),
                )
            })?;
        return Ok((session, text));
    }
    let how = match (&v.auth, reused) {
        (Auth::Token(input), _) => format!("token auth, from {}", input.source()),
        (_, true) => format!(
            "{} login at auth/{} (cached Vault token)",
            v.auth_method.name(),
            v.auth_mount
        ),
        (_, false) => format!("{} login at auth/{}", v.auth_method.name(), v.auth_mount),
    };
    // With token auth nothing checked the token yet: a token Vault refuses
    // fails here, not later as a policy's denial.
    let text = match session.lookup_self().await? {
        Some(info) => {
            let ttl = if info.ttl == 0 {
                "no expiry".to_string()
            } else {
                format!(
                    "expires in {}",
                    crate::time::compact(Duration::from_secs(info.ttl))
                )
            };
            format!("{how}: policies {}; {ttl}", info.policies.join(","))
        }
        // Some policies forbid lookup-self; the read of the secret still tells.
        None => how,
    };
    Ok((session, text))
}

/// `--auth none`: the helper sends no token. Which proxy answered, and
/// that the token Vault saw is the proxy's, whose identity it is — or, when
/// the address is Vault itself (nothing added a token), a failure that says
/// so.
async fn proxy_login(session: &Session<'_>, v: &VaultSettings) -> Result<String> {
    use crate::vault::proxied::{Whose, whose_token};
    let addr = &v.addr;
    match whose_token(&session.client, v).await? {
        Whose::Token { proxy: true, info } => Ok(format!(
            "auth none: the Vault Proxy or Agent at {addr} answered with its own token: {}",
            info.describe()
        )),
        Whose::Token { proxy: false, info } => Ok(format!(
            "auth none: {addr} added a token of its own, though it does not mark its answers as a Vault Proxy or Agent does (X-Cache): {}",
            info.describe()
        )),
        Whose::Refused { proxy: true } => Ok(format!(
            "auth none: the Vault Proxy or Agent at {addr} answered, but Vault refused lookup-self with its token (403): that token may not look itself up, or the proxy adds none (api_proxy use_auto_auth_token = \"force\"); the secret's read tells"
        )),
        Whose::Refused { proxy: false } => Err(Failure::vault(format!(
            "{addr} answered lookup-self without anyone's token (403): it is not a Vault Proxy or Agent that adds its own, and --auth none sends none; point --vault-addr at the proxy's listener (api_proxy use_auto_auth_token = \"force\"), or choose another --auth"
        ))
        .into()),
    }
}

/// The secret holds a non-empty string field; says so for people. The
/// API token read is dropped here.
pub async fn secret(session: &mut Session<'_>, want: Wanted<'_>) -> Result<String> {
    session.read_api_token(want).await?;
    Ok(format!(
        "{} has a non-empty string field {}",
        want.secret, want.field
    ))
}

async fn check_seatable(profile: &Profile, report: &mut Report, clocks: &mut Vec<(String, u64)>) {
    match seatable(
        &profile.server_url,
        profile.ca_cert.as_deref(),
        profile.timeout,
    )
    .await
    {
        Ok((text, date)) => {
            report.line(Mark::Ok, "seatable", text);
            clocks.extend(date.map(|d| ("SeaTable".to_string(), d)));
        }
        Err(e) => report.fail("seatable", &profile.name_origin(e)),
    }
}

/// SeaTable answers its ping within `timeout`: says so, and its clock.
pub async fn seatable(
    server_url: &str,
    ca_cert: Option<&std::path::Path>,
    timeout: Duration,
) -> Result<(String, Option<u64>)> {
    let client = crate::seatable::http_client(server_url, ca_cert)?;
    let date = tokio::time::timeout(timeout, crate::seatable::ping(&client, server_url))
        .await
        .unwrap_or_else(|_| {
            Err(
                Failure::unavailable(format!("{server_url} did not answer within --timeout"))
                    .into(),
            )
        })?;
    Ok((format!("{server_url} reachable"), date))
}

fn check_exchange(profile: &Profile, cache: &Cache, report: &mut Report) {
    match exchange(profile, cache) {
        Ok(text) => report.line(Mark::Ok, "exchange", text),
        Err(e) => report.fail("exchange", &e),
    }
}

/// The profile's API token exchanges (through the broker, so the token is
/// cached as `get` would) — or a fresh cached token shows it did; what was
/// obtained, for people.
pub fn exchange(profile: &Profile, cache: &Cache) -> Result<String> {
    let outcome = crate::broker::get_with(cache, profile, false)?;
    let (token, cached) = (outcome.token, outcome.cached);
    let c = &token.context;
    let base = c.dtable_name.as_deref().unwrap_or("?");
    let permission = match c.permission.as_deref() {
        Some("rw") => "read-write",
        Some("r") => "read-only",
        _ => "permission unknown",
    };
    let from = if cached {
        "cached token"
    } else {
        "API token accepted"
    };
    Ok(format!(
        "{from}: base {base} ({permission}), valid until {}",
        crate::time::rfc3339(token.expires_at)
    ))
}

fn check_clock(clocks: &[(String, u64)], report: &mut Report) {
    if clocks.is_empty() {
        report.line(Mark::Skip, "clock", "no server told its time");
        return;
    }
    let now = crate::time::now();
    let mut worst = 0;
    let mut said = Vec::new();
    for (who, date) in clocks {
        let skew = now.abs_diff(*date);
        worst = worst.max(skew);
        let dir = if now >= *date { "ahead of" } else { "behind" };
        said.push(format!("{skew}s {dir} {who}"));
    }
    let text = format!("local clock {}", said.join(", "));
    if worst > SKEW_WARN {
        report.line(
            Mark::Warn,
            "clock",
            format!("{text}: expiry decisions will be off; sync the clock (NTP)"),
        );
    } else {
        report.line(Mark::Ok, "clock", text);
    }
}
