//! `GET /metrics`: Prometheus' text format, version 0.0.4 — counters kept in
//! atomics, so counting costs requests nothing measurable. No secret, no key
//! and no token ever appears here: only profile names and numbers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hyper::{Response, StatusCode};

use super::reply::{Out, bytes};

/// Counters of one profile; kept across reloads by profile name.
#[derive(Default)]
pub struct ProfileMetrics {
    /// Session tokens issued by the local exchange.
    pub exchanges: AtomicU64,
    /// Base tokens obtained through the broker.
    pub refreshes: AtomicU64,
    pub refresh_failures: AtomicU64,
    /// Requests replayed after SeaTable said the base token expired (403 "Token expired." or 401).
    pub replays: AtomicU64,
    /// Unix seconds; 0 before the first token.
    pub expires_at: AtomicU64,
}

/// Status codes 100–599; one counter each.
const CODES: usize = 600;

pub struct Metrics {
    profiles: Mutex<BTreeMap<String, Arc<ProfileMetrics>>>,
    /// Local exchanges refused for a missing or wrong key.
    pub exchanges_refused: AtomicU64,
    /// Proxied requests by the status code answered to the client.
    proxied: Box<[AtomicU64]>,
    pub connections_refused: AtomicU64,
    pub connections_open: AtomicU64,
    /// Connections closed at accept: from a user the agent does not serve.
    pub peers_refused: AtomicU64,
    /// Connections that never showed a key, closed idle or to make room.
    pub keyless_closed: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            profiles: Mutex::default(),
            exchanges_refused: AtomicU64::new(0),
            proxied: (0..CODES).map(|_| AtomicU64::new(0)).collect(),
            connections_refused: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            peers_refused: AtomicU64::new(0),
            keyless_closed: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// The counters of `profile`, made on first use.
    pub fn profile(&self, profile: &str) -> Arc<ProfileMetrics> {
        self.profiles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(profile.to_string())
            .or_default()
            .clone()
    }

    pub fn proxied(&self, status: u16) {
        if let Some(counter) = self.proxied.get(usize::from(status)) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The answer to `GET /metrics`.
    pub fn answer(&self, served: &[&str], now: u64) -> Response<Out> {
        bytes(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            self.render(served, now).into(),
        )
    }

    /// The exposition text; `served` lists the profiles served now (others
    /// keep their counters but show no expiry).
    pub fn render(&self, served: &[&str], now: u64) -> String {
        let profiles = self
            .profiles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut out = String::with_capacity(2048);
        let per_profile =
            |out: &mut String,
             name: &str,
             kind: &str,
             help: &str,
             value: &dyn Fn(&ProfileMetrics) -> Option<i64>| {
                family(out, name, kind, help);
                for (profile, m) in &profiles {
                    if let Some(v) = value(m) {
                        let _ = writeln!(out, "{name}{{profile=\"{}\"}} {v}", label(profile));
                    }
                }
            };
        let count = |a: &AtomicU64| Some(a.load(Ordering::Relaxed) as i64);
        per_profile(
            &mut out,
            "seatable_cred_exchanges_total",
            "counter",
            "Session tokens issued by the local exchange.",
            &|m| count(&m.exchanges),
        );
        single(
            &mut out,
            "seatable_cred_exchanges_refused_total",
            "counter",
            "Local exchanges refused for a missing or wrong key.",
            &self.exchanges_refused,
        );
        per_profile(
            &mut out,
            "seatable_cred_refreshes_total",
            "counter",
            "Base tokens obtained through the broker (from SeaTable or the cache).",
            &|m| count(&m.refreshes),
        );
        per_profile(
            &mut out,
            "seatable_cred_refresh_failures_total",
            "counter",
            "Refreshes that failed or left only a token inside its refresh window.",
            &|m| count(&m.refresh_failures),
        );
        per_profile(
            &mut out,
            "seatable_cred_replays_total",
            "counter",
            "Requests replayed once after SeaTable said the base token expired (403 \"Token expired.\" or 401).",
            &|m| count(&m.replays),
        );
        let served_names: Vec<String> = served.iter().map(|s| s.to_string()).collect();
        family(
            &mut out,
            "seatable_cred_token_expiry_seconds",
            "gauge",
            "Seconds until the profile's base token expires (negative once expired).",
        );
        for (profile, m) in &profiles {
            let expires_at = m.expires_at.load(Ordering::Relaxed);
            if expires_at > 0 && served_names.contains(profile) {
                let left = expires_at as i64 - now as i64;
                let _ = writeln!(
                    out,
                    "seatable_cred_token_expiry_seconds{{profile=\"{}\"}} {left}",
                    label(profile)
                );
            }
        }
        family(
            &mut out,
            "seatable_cred_proxied_requests_total",
            "counter",
            "Requests forwarded to SeaTable (file requests too), by the status code answered to the client.",
        );
        for (code, counter) in self.proxied.iter().enumerate() {
            let n = counter.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "seatable_cred_proxied_requests_total{{code=\"{code}\"}} {n}"
                );
            }
        }
        single(
            &mut out,
            "seatable_cred_connections_open",
            "gauge",
            "Client connections open now.",
            &self.connections_open,
        );
        single(
            &mut out,
            "seatable_cred_connections_refused_total",
            "counter",
            "Connections refused at the connection cap (--max-connections).",
            &self.connections_refused,
        );
        single(
            &mut out,
            "seatable_cred_peers_refused_total",
            "counter",
            "Connections closed at accept: from a user the agent does not serve.",
            &self.peers_refused,
        );
        single(
            &mut out,
            "seatable_cred_keyless_closed_total",
            "counter",
            "Connections that never showed a key, closed when idle or to make room.",
            &self.keyless_closed,
        );
        out
    }
}

/// A family of one sample without labels.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: &AtomicU64) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value escaped as the text format wants: `\`, `"` and newlines.
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_text_is_pinned() {
        let m = Metrics::default();
        let p = m.profile("crm");
        p.exchanges.fetch_add(2, Ordering::Relaxed);
        p.refreshes.fetch_add(1, Ordering::Relaxed);
        p.expires_at.store(1300, Ordering::Relaxed);
        m.exchanges_refused.fetch_add(1, Ordering::Relaxed);
        m.proxied(200);
        m.proxied(200);
        m.proxied(403);
        m.proxied(1000); // out of range: ignored, no panic
        let text = m.render(&["crm"], 1000);
        assert_eq!(
            text,
            "# HELP seatable_cred_exchanges_total Session tokens issued by the local exchange.
# TYPE seatable_cred_exchanges_total counter
seatable_cred_exchanges_total{profile=\"crm\"} 2
# HELP seatable_cred_exchanges_refused_total Local exchanges refused for a missing or wrong key.
# TYPE seatable_cred_exchanges_refused_total counter
seatable_cred_exchanges_refused_total 1
# HELP seatable_cred_refreshes_total Base tokens obtained through the broker (from SeaTable or the cache).
# TYPE seatable_cred_refreshes_total counter
seatable_cred_refreshes_total{profile=\"crm\"} 1
# HELP seatable_cred_refresh_failures_total Refreshes that failed or left only a token inside its refresh window.
# TYPE seatable_cred_refresh_failures_total counter
seatable_cred_refresh_failures_total{profile=\"crm\"} 0
# HELP seatable_cred_replays_total Requests replayed once after SeaTable said the base token expired (403 \"Token expired.\" or 401).
# TYPE seatable_cred_replays_total counter
seatable_cred_replays_total{profile=\"crm\"} 0
# HELP seatable_cred_token_expiry_seconds Seconds until the profile's base token expires (negative once expired).
# TYPE seatable_cred_token_expiry_seconds gauge
seatable_cred_token_expiry_seconds{profile=\"crm\"} 300
# HELP seatable_cred_proxied_requests_total Requests forwarded to SeaTable (file requests too), by the status code answered to the client.
# TYPE seatable_cred_proxied_requests_total counter
seatable_cred_proxied_requests_total{code=\"200\"} 2
seatable_cred_proxied_requests_total{code=\"403\"} 1
# HELP seatable_cred_connections_open Client connections open now.
# TYPE seatable_cred_connections_open gauge
seatable_cred_connections_open 0
# HELP seatable_cred_connections_refused_total Connections refused at the connection cap (--max-connections).
# TYPE seatable_cred_connections_refused_total counter
seatable_cred_connections_refused_total 0
# HELP seatable_cred_peers_refused_total Connections closed at accept: from a user the agent does not serve.
# TYPE seatable_cred_peers_refused_total counter
seatable_cred_peers_refused_total 0
# HELP seatable_cred_keyless_closed_total Connections that never showed a key, closed when idle or to make room.
# TYPE seatable_cred_keyless_closed_total counter
seatable_cred_keyless_closed_total 0
"
        );
        // A profile no longer served keeps its counters but shows no expiry.
        assert!(
            !m.render(&[], 1000)
                .contains("seatable_cred_token_expiry_seconds{")
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(label("x\ny"), "x\\ny");
    }
}
