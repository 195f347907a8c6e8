//! `status`: what is cached for the profile — never the token.

use anyhow::Result;
use serde::Serialize;

use crate::cache::Cache;
use crate::cli::{StatusArgs, StatusFormat};
use crate::config::{self, Auth, GlobalArgs, ProcessEnv, Profile};
use crate::seatable::{BaseToken, Freshness};
use crate::vault::LoginCache;

#[derive(Serialize)]
struct Status {
    profile: String,
    backend: &'static str,
    cached: bool,
    /// `fresh`, `refresh` (inside the refresh window), `expired` or `missing`.
    state: &'static str,
    expires_at: Option<String>,
    refresh_at: Option<String>,
    fetched_at: Option<String>,
    seconds_left: Option<u64>,
    server_url: String,
    dtable_name: Option<String>,
    dtable_uuid: Option<String>,
    workspace_id: Option<i64>,
    permission: Option<String>,
    vault_login: Option<VaultLogin>,
}

#[derive(Serialize)]
struct VaultLogin {
    method: &'static str,
    cached: bool,
    expires_at: Option<String>,
    renewable: Option<bool>,
}

pub fn run(global: &GlobalArgs, args: &StatusArgs) -> Result<u8> {
    let profile = config::resolve(global, &ProcessEnv)?;
    let cache = Cache::open(&profile.cache)?;
    let peeked = crate::broker::peek(&profile, &cache)?;
    let status = describe(&profile, &cache, peeked.backend, peeked.token.as_ref());
    let text = match args.format {
        StatusFormat::Json => serde_json::to_string(&status).unwrap_or_default() + "\n",
        StatusFormat::Text => text(&status),
    };
    crate::process::print(&text)?;
    Ok(0)
}

fn describe(
    profile: &Profile,
    cache: &Cache,
    backend: &'static str,
    token: Option<&BaseToken>,
) -> Status {
    let now = crate::time::now();
    let state = match token.map(|t| t.freshness(now, profile.refresh_before)) {
        None => "missing",
        Some(Freshness::Fresh) => "fresh",
        Some(Freshness::Refresh) => "refresh",
        Some(Freshness::Expired) => "expired",
    };
    let vault_login = match &profile.vault.auth {
        Auth::Token(_) | Auth::None => None,
        _ => {
            let login = cache
                .load_login(&profile.vault)
                .filter(|l| l.expires_at > now);
            Some(VaultLogin {
                method: profile.vault.auth_method.name(),
                cached: login.is_some(),
                expires_at: login.as_ref().map(|l| crate::time::rfc3339(l.expires_at)),
                renewable: login.as_ref().map(|l| l.renewable),
            })
        }
    };
    Status {
        profile: profile.name.clone(),
        backend,
        cached: token.is_some_and(|t| t.expires_at > now),
        state,
        expires_at: token.map(|t| crate::time::rfc3339(t.expires_at)),
        refresh_at: token.map(|t| crate::time::rfc3339(t.refresh_at(profile.refresh_before))),
        fetched_at: token.map(|t| crate::time::rfc3339(t.fetched_at)),
        seconds_left: token.map(|t| t.expires_at.saturating_sub(now)),
        server_url: profile.server_url.clone(),
        dtable_name: token.and_then(|t| t.context.dtable_name.clone()),
        dtable_uuid: token.and_then(|t| t.context.dtable_uuid.clone()),
        workspace_id: token.and_then(|t| t.context.workspace_id),
        permission: token.and_then(|t| t.context.permission.clone()),
        vault_login,
    }
}

/// Time left as people read it: `2d 23h 59m`, `45m`, `30s` — minutes are
/// precise enough past the first one.
fn left(secs: u64) -> String {
    if secs < 60 {
        return format!("{secs}s");
    }
    let (days, hours, minutes) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    let parts: Vec<String> = [(days, "d"), (hours, "h"), (minutes, "m")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    parts.join(" ")
}

fn text(s: &Status) -> String {
    let mut out = String::new();
    // Names and permissions come from SeaTable (through the cache): shown escaped.
    let mut line = |k: &str, v: String| {
        out.push_str(&format!("{k:<12} {}\n", crate::shown::Shown(&v)));
    };
    line("profile", s.profile.clone());
    line("backend", s.backend.to_string());
    line("server", s.server_url.clone());
    let state = match s.state {
        "fresh" => "yes (fresh)",
        "refresh" => "yes (inside the refresh window: the next get refreshes it)",
        "expired" => "no (expired)",
        _ => "no",
    };
    line("cached", state.to_string());
    if let (Some(expires), Some(secs)) = (&s.expires_at, s.seconds_left) {
        line("expires at", format!("{expires} (in {})", left(secs)));
    }
    if let Some(refresh) = &s.refresh_at {
        line("refresh at", refresh.clone());
    }
    if let Some(name) = &s.dtable_name {
        let uuid = s.dtable_uuid.as_deref().unwrap_or("?");
        line("base", format!("{name} ({uuid})"));
    }
    if let Some(p) = &s.permission {
        line(
            "permission",
            if p == "rw" {
                "rw (read-write)".into()
            } else {
                format!("{p} (read-only)")
            },
        );
    }
    if let Some(v) = &s.vault_login {
        let what = match &v.expires_at {
            Some(exp) => format!("{} token cached until {exp}", v.method),
            None => format!("{} (no cached token)", v.method),
        };
        line("vault login", what);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_reads_as_days_hours_minutes() {
        assert_eq!(left(3 * 86_400 - 60), "2d 23h 59m");
        assert_eq!(left(86_400 + 60), "1d 1m");
        assert_eq!(left(3_600), "1h");
        assert_eq!(left(45 * 60 + 59), "45m");
        assert_eq!(left(59), "59s");
    }
}
