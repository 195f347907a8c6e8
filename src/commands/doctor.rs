//! `doctor`: checks each step a `get` depends on, one line each, and says
//! what to fix. Never prints a secret. Exits with the code of the first
//! failed step (SPEC §8), 0 when all pass.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Result;

use crate::cache::{Cache, Key};
use crate::cli::{CacheBackend, GlobalArgs};
use crate::config::{self, Auth, ProcessEnv, Profile};
use crate::error::{Kind, kind_of, one_line};
use crate::seatable::Freshness;
use crate::vault::{Prepared, Session};

/// Clocks further apart than this make expiry decisions wrong.
const SKEW_WARN: u64 = 30;

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    Ok,
    Warn,
    Fail,
    Skip,
}

struct Report {
    out: String,
    first_failure: Option<Kind>,
}

impl Report {
    fn line(&mut self, mark: Mark, step: &str, text: impl AsRef<str>) {
        let mark = match mark {
            Mark::Ok => "ok  ",
            Mark::Warn => "warn",
            Mark::Fail => "FAIL",
            Mark::Skip => "skip",
        };
        let _ = writeln!(self.out, "{mark}  {step:<9} {}", text.as_ref());
    }

    fn fail(&mut self, step: &str, err: &anyhow::Error) {
        self.line(Mark::Fail, step, one_line(err));
        self.first_failure.get_or_insert(kind_of(err));
    }
}

pub fn run(global: &GlobalArgs) -> Result<u8> {
    let mut report = Report {
        out: String::new(),
        first_failure: None,
    };
    check(global, &mut report);
    super::print(&report.out)?;
    Ok(report.first_failure.map_or(0, Kind::exit_code))
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
                && !config::is_loopback(&parsed)
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
                    t.app_name.replace(char::is_control, "?"),
                    rough(age)
                ),
            ),
            (Some(age), Some(at)) => report.line(
                Mark::Ok,
                "token",
                format!(
                    "API token '{}' in Vault is {} old (generated {at}; token_max_age {max})",
                    t.app_name.replace(char::is_control, "?"),
                    rough(age)
                ),
            ),
            _ => report.line(
                Mark::Ok,
                "token",
                format!(
                    "API token '{}' in Vault; SeaTable does not say when it was generated",
                    t.app_name.replace(char::is_control, "?")
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
    let cache = match Cache::open(&profile.cache) {
        Ok(c) => c,
        Err(e) => {
            report.fail("cache", &e);
            return None;
        }
    };
    // A round trip of a throwaway entry proves the backend usable.
    let probe = format!("doctor-{}", std::process::id());
    let works = cache
        .store
        .save(&probe, b"{}", crate::time::now() + 60)
        .map(|()| cache.store.load(&probe).is_some() || cache.name() == "none");
    let _ = cache.store.remove(&probe);
    let where_ = match (profile.cache.backend, cache.name()) {
        (CacheBackend::Vault, local) => format!(
            "vault at {} (Vault logins and locks kept locally: {local})",
            profile
                .cache
                .shared
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default()
        ),
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
    match works {
        Ok(true) => report.line(Mark::Ok, "cache", where_),
        Ok(false) => {
            report.fail(
                "cache",
                &anyhow::anyhow!("{where_}: an entry written could not be read back"),
            );
            return None;
        }
        Err(e) => {
            report.fail("cache", &e);
            return None;
        }
    }
    Some(cache)
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
    match tokio::time::timeout_at(deadline, crate::vault::health(v)).await {
        Ok(Ok(health)) if health.sealed => {
            report.fail(
                "vault",
                &crate::error::Failure::unavailable(format!("{} is sealed: unseal it", v.addr))
                    .into(),
            );
            return false;
        }
        Ok(Ok(health)) => {
            report.line(
                Mark::Ok,
                "vault",
                format!("{} reachable, version {}, unsealed", v.addr, health.version),
            );
            if let Some(date) = health.date {
                clocks.push(("Vault".into(), date));
            }
        }
        Ok(Err(e)) => {
            report.fail("vault", &e);
            report.line(Mark::Skip, "login", "needs Vault");
            report.line(Mark::Skip, "secret", "needs Vault");
            return false;
        }
        Err(_) => {
            report.fail(
                "vault",
                &crate::error::Failure::unavailable(format!(
                    "{} did not answer within --timeout",
                    v.addr
                ))
                .into(),
            );
            return false;
        }
    }
    let prepared = match Prepared::new(v, cache) {
        Ok(p) => p,
        Err(e) => {
            report.fail("login", &e);
            report.line(Mark::Skip, "secret", "needs a login");
            return false;
        }
    };
    let reused = matches!(prepared, Prepared::Cached(_));
    let mut session = match Session::connect(v, prepared, cache, deadline).await {
        Ok(s) => s,
        Err(e) => {
            report.fail("login", &e);
            report.line(Mark::Skip, "secret", "needs a login");
            return false;
        }
    };
    let how = match (&v.auth, reused) {
        (Auth::Token(input), _) => format!("token auth, {}", input.origin()),
        (_, true) => format!(
            "{} login at auth/{} (cached Vault token)",
            v.auth_method.name(),
            v.auth_mount
        ),
        (_, false) => format!("{} login at auth/{}", v.auth_method.name(), v.auth_mount),
    };
    let lookup = async {
        let request = vaultrs::api::token::requests::LookupTokenSelfRequest::builder()
            .build()
            .ok()?;
        crate::vault::api::exec(&session.client, request).await.ok()
    };
    match lookup.await.ok_or(()) {
        Ok(info) => {
            let ttl = if info.ttl == 0 {
                "no expiry".to_string()
            } else {
                format!(
                    "expires in {}",
                    crate::time::compact(Duration::from_secs(info.ttl))
                )
            };
            report.line(
                Mark::Ok,
                "login",
                format!("{how}: policies {}; {ttl}", info.policies.join(",")),
            );
        }
        // Some policies forbid lookup-self; the read below still tells.
        Err(_) => report.line(Mark::Ok, "login", how),
    }
    match session
        .read_api_token(&profile.secret, &profile.field, profile.kv_version)
        .await
    {
        Ok(_) => {
            report.line(
                Mark::Ok,
                "secret",
                format!(
                    "{} has a non-empty string field {}",
                    profile.secret, profile.field
                ),
            );
            true
        }
        Err(e) => {
            report.fail("secret", &e);
            false
        }
    }
}

async fn check_seatable(profile: &Profile, report: &mut Report, clocks: &mut Vec<(String, u64)>) {
    let result = async {
        let client = crate::seatable::http_client(&profile.server_url, profile.ca_cert.as_deref())?;
        tokio::time::timeout(
            profile.timeout,
            crate::seatable::ping(&client, &profile.server_url),
        )
        .await
        .unwrap_or_else(|_| {
            Err(crate::error::Failure::unavailable(format!(
                "{} did not answer within --timeout",
                profile.server_url
            ))
            .into())
        })
    }
    .await;
    match result {
        Ok(date) => {
            report.line(
                Mark::Ok,
                "seatable",
                format!("{} reachable", profile.server_url),
            );
            if let Some(date) = date {
                clocks.push(("SeaTable".into(), date));
            }
        }
        Err(e) => report.fail("seatable", &e),
    }
}

fn check_exchange(profile: &Profile, cache: &Cache, report: &mut Report) {
    let cached = cache
        .load_token(&Key::for_profile(profile))
        .filter(|t| t.freshness(crate::time::now(), profile.refresh_before) == Freshness::Fresh);
    let outcome = match cached {
        Some(token) => Ok((token, true)),
        None => crate::broker::get(profile, false).map(|o| (o.token, o.cached)),
    };
    match outcome {
        Ok((token, cached)) => {
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
            report.line(
                Mark::Ok,
                "exchange",
                format!(
                    "{from}: base {base} ({permission}), valid until {}",
                    crate::time::rfc3339(token.expires_at)
                ),
            );
        }
        Err(e) => report.fail("exchange", &e),
    }
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
