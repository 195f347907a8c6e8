//! Vault through a Vault or OpenBao Proxy or Agent that adds its own token
//! to every request (`--auth none`, `api_proxy { use_auto_auth_token =
//! "force" }`): whose token Vault sees, for the login line of `doctor` and
//! `init`.
//!
//! The helper sends no token; the proxy's auto-auth identity answers. A
//! proxy marks what it passes on with an `X-Cache` header (`MISS`, or `HIT`
//! from its cache), which Vault itself never sends — so an address that is
//! Vault itself, where a request without a token is simply refused, is told
//! apart from a proxy whose token may not look itself up.

use anyhow::Result;
use serde::Deserialize;
use vaultrs::client::VaultClient;

use super::{classify_status, unreachable};
use crate::config::VaultSettings;
use crate::error::Failure;

/// What `auth/token/lookup-self`, sent without a token, found.
pub enum Whose {
    /// A token was added on the way: its identity, as Vault describes it.
    Token { proxy: bool, info: ProxyToken },
    /// Vault refused the request: no token was added, or the added one may
    /// not look itself up.
    Refused { proxy: bool },
}

/// The parts of `lookup-self` that tell people whose token it is — never
/// the token or its accessor (a proxy strips both anyway).
#[derive(Deserialize)]
pub struct ProxyToken {
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub policies: Vec<String>,
    #[serde(default)]
    pub ttl: u64,
    #[serde(default)]
    pub meta: Option<std::collections::BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct Lookup {
    data: ProxyToken,
}

/// Asks the address who it is to Vault, without a token of our own.
pub async fn whose_token(client: &VaultClient, v: &VaultSettings) -> Result<Whose> {
    let url = format!("{}/v1/auth/token/lookup-self", v.addr);
    let mut request = client.http.http.get(url).header("X-Vault-Request", "true");
    if let Some(ns) = &v.namespace {
        request = request.header("X-Vault-Namespace", ns.as_str());
    }
    let response = request.send().await.map_err(|e| unreachable(&e, &v.addr))?;
    let status = response.status().as_u16();
    let proxy = response.headers().contains_key("x-cache");
    let body = crate::http::read_capped(response).await.map_err(|e| {
        Failure::unavailable(format!(
            "Vault at {} failed answering lookup-self ({e:?})",
            v.addr
        ))
    })?;
    match status {
        200 => {
            let lookup: Lookup = serde_json::from_slice(&body).map_err(|_| {
                Failure::vault(format!(
                    "{} answered lookup-self with unexpected data: is it Vault, or a Vault Proxy or Agent?",
                    v.addr
                ))
            })?;
            Ok(Whose::Token {
                proxy,
                info: lookup.data,
            })
        }
        403 => Ok(Whose::Refused { proxy }),
        _ => Err(classify_status(
            status,
            "",
            &v.addr,
            "looking up the proxy's token",
            "",
            "no token lookup at this address",
        )
        .into()),
    }
}

impl ProxyToken {
    /// `approle, role crm-sync; policies default,seatable-reader; expires in
    /// 59m` — what came from the server, control characters escaped by the
    /// one sanitiser (`shown`), as every other line from outside.
    pub fn describe(&self) -> String {
        let clean = |s: &str| crate::shown::text(s).into_owned();
        let role = self
            .meta
            .as_ref()
            .and_then(|m| m.get("role_name").or_else(|| m.get("role")))
            .and_then(|r| r.as_str())
            .map(|r| format!(", role {}", clean(r)))
            .unwrap_or_default();
        let ttl = if self.ttl == 0 {
            "no expiry".to_string()
        } else {
            format!(
                "expires in {}",
                crate::time::compact(std::time::Duration::from_secs(self.ttl))
            )
        };
        format!(
            "{}{role}; policies {}; {ttl}",
            clean(&self.display_name),
            clean(&self.policies.join(","))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxys_lookup_is_described_without_its_token() {
        // What an OpenBao Proxy passed on for an AppRole auto-auth token
        // (it strips `id` and `accessor`).
        let body = r#"{"request_id":"67d0","lease_id":"","lease_duration":0,"renewable":false,"data":{"creation_time":1796513168,"creation_ttl":3600,"display_name":"approle","entity_id":"536b","expire_time":"2026-12-06T00:26:08Z","explicit_max_ttl":0,"issue_time":"2026-12-05T23:26:08Z","meta":{"role_name":"r"},"num_uses":0,"orphan":true,"path":"auth/approle/login","policies":["default","seatable-reader"],"renewable":true,"ttl":3596,"type":"service"},"warnings":null}"#;
        let lookup: Lookup = serde_json::from_str(body).unwrap();
        assert_eq!(
            lookup.data.describe(),
            "approle, role r; policies default,seatable-reader; expires in 3596s"
        );
        let root =
            r#"{"data":{"display_name":"to\u001bken","policies":["root"],"ttl":0,"meta":null}}"#;
        let lookup: Lookup = serde_json::from_str(root).unwrap();
        assert_eq!(
            lookup.data.describe(),
            r"to\x1bken; policies root; no expiry"
        );
    }
}
