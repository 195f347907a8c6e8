//! `GET /health`: 200 when every profile holds an unexpired base token, 503
//! otherwise — for systemd, Kubernetes probes and monitoring. No key, no
//! token: profile names, readiness and time left.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use hyper::{Response, StatusCode};

use super::reply::{Out, json};
use super::state::Profiles;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: String,
    pub profiles: BTreeMap<String, ProfileHealth>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ProfileHealth {
    /// Holds a base token that has not expired.
    pub ready: bool,
    /// Seconds until that token expires, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
}

/// The answer to `GET /health`: 200 `ok`, else 503 `degraded`.
pub fn answer(profiles: &Profiles, now: u64) -> Response<Out> {
    let health = check(profiles, now);
    let status = if health.status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, &health)
}

fn check(profiles: &Profiles, now: u64) -> Health {
    let profiles: BTreeMap<String, ProfileHealth> = profiles
        .list
        .iter()
        .map(|served| {
            let current = served.current();
            let expires_in = current.as_ref().map(|c| c.expires_at as i64 - now as i64);
            let health = ProfileHealth {
                ready: expires_in.is_some_and(|s| s > 0),
                expires_in,
            };
            (served.name.clone(), health)
        })
        .collect();
    let ok = profiles.values().all(|p| p.ready);
    Health {
        status: if ok { "ok" } else { "degraded" }.to_string(),
        profiles,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_json_both_ways() {
        let mut profiles = BTreeMap::new();
        profiles.insert(
            "crm".to_string(),
            ProfileHealth {
                ready: true,
                expires_in: Some(120),
            },
        );
        profiles.insert(
            "new".to_string(),
            ProfileHealth {
                ready: false,
                expires_in: None,
            },
        );
        let h = Health {
            status: "degraded".into(),
            profiles,
        };
        let text = serde_json::to_string(&h).unwrap();
        assert_eq!(
            text,
            r#"{"status":"degraded","profiles":{"crm":{"ready":true,"expires_in":120},"new":{"ready":false}}}"#
        );
        let back: Health = serde_json::from_str(
            r#"{"status":"degraded","profiles":{"crm":{"ready":true,"expires_in":120},"new":{"ready":false,"x":1}},"extra":0}"#,
        )
        .unwrap();
        assert_eq!(back, h);
    }
}
