//! The secret source: Vault or OpenBao, through vaultrs (SPEC §4).
//!
//! vaultrs' settings builder reads `VAULT_*` variables on its own and panics
//! on a bad URL, so the client is built from an explicit
//! [`VaultClientSettings`] made of the already-validated profile.

pub mod api;
mod auth;
pub mod kv;
pub mod proxied;
pub mod scan;
mod session;
pub mod versioned;

use anyhow::Result;
use tracing::warn;
use vaultrs::client::{VaultClient, VaultClientSettings};
use vaultrs::error::ClientError;

use crate::config::VaultSettings;
use crate::error::{Failure, root_cause};

pub use auth::Login;
pub use kv::Wanted;
pub use session::{CachedLogin, LoginCache, Prepared, Session};

/// A vaultrs client with every setting given explicitly. The HTTP client
/// is ours (the TLS set-up of [`crate::http`]); the settings carry the rest.
pub(crate) fn client(v: &VaultSettings) -> Result<VaultClient> {
    let address = url::Url::parse(&v.addr)
        .map_err(|e| Failure::usage(format!("vault_addr '{}' is not a URL ({e})", v.addr)))?;
    let https = address.scheme() == "https";
    let mut extra_roots = Vec::new();
    if https {
        if let Some(path) = &v.ca_cert {
            extra_roots.extend(crate::http::ca_bundle(path)?);
        }
        if let Some(dir) = &v.ca_path {
            extra_roots.extend(crate::http::ca_dir(dir)?);
        }
    }
    let identity = match (&v.client_cert, &v.client_key) {
        (Some(cert), Some(key)) if https => Some(crate::http::identity(cert, key)?),
        _ => None,
    };
    if v.skip_verify {
        warn!("VAULT_SKIP_VERIFY is set: the Vault server's certificate is not checked");
    }
    let trust = crate::http::Trust {
        extra_roots,
        verify: !v.skip_verify,
    };
    let http = crate::http::http_client(&v.addr, trust, identity)?;
    let settings = VaultClientSettings {
        address,
        ca_certs: Vec::new(), // verification is in `http`
        identity: None,
        timeout: None, // the broker's deadline bounds the whole call
        token: String::new(),
        verify: !v.skip_verify,
        version: 1,
        wrapping: false,
        namespace: v.namespace.clone(),
        proxy: None,
    };
    Ok(VaultClient {
        http: rustify::clients::reqwest::Client::new(&v.addr, http),
        middle: vaultrs::api::EndpointMiddleware {
            token: String::new(),
            version: "v1".to_string(),
            wrap: None,
            namespace: v.namespace.clone(),
        },
        settings,
    })
}

/// Whose policy decides what the helper may do, for hints: the identity it
/// logs in as — or, with `--auth none`, the token a proxy at the address
/// adds.
pub(crate) fn identity(v: &VaultSettings) -> String {
    match v.auth {
        crate::config::Auth::None => format!(
            "the token the Vault Proxy or Agent at {} adds (--auth none sends none: is that address such a proxy, with use_auto_auth_token = \"force\"?)",
            v.addr
        ),
        _ => format!("the {} identity", v.auth_method.name()),
    }
}

/// Whose policy a refused read is about, for hints that name the policy:
/// the identity's — or, with `--auth none`, that of the token a proxy adds.
pub(crate) fn policy_of(v: &VaultSettings) -> String {
    match v.auth {
        crate::config::Auth::None => format!("the policy of {}", identity(v)),
        _ => format!("the {} identity's policy", v.auth_method.name()),
    }
}

/// What `sys/health` says of a server.
pub struct Health {
    pub version: String,
    pub sealed: bool,
    /// The server's clock (its `Date` header), Unix seconds.
    pub date: Option<u64>,
}

/// Asks `sys/health` (unauthenticated), accepting standbys and sealed
/// servers as answers rather than errors.
pub async fn health(v: &VaultSettings) -> Result<Health> {
    let client = client(v)?;
    let url = format!(
        "{}/v1/sys/health?standbyok=true&perfstandbyok=true&sealedcode=200&uninitcode=200",
        v.addr
    );
    let response = client
        .http
        .http
        .get(url)
        .send()
        .await
        .map_err(|e| unreachable(&e, &v.addr))?;
    let date = response
        .headers()
        .get("date")
        .and_then(|d| d.to_str().ok())
        .and_then(crate::retry::httpdate_to_unix);
    let status = response.status().as_u16();
    let body = crate::http::read_capped(response).await.map_err(|e| {
        Failure::unavailable(format!(
            "Vault at {} failed answering sys/health ({e:?})",
            v.addr
        ))
    })?;
    if status != 200 {
        return Err(Failure::unavailable(format!(
            "Vault at {} answered sys/health with {status}",
            v.addr
        ))
        .into());
    }
    let info: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    Ok(Health {
        version: info["version"].as_str().unwrap_or("?").to_string(),
        sealed: info["sealed"].as_bool().unwrap_or(false),
        date,
    })
}

/// Vault's own `errors` text, one line and short; it never holds secrets
/// (it says "permission denied", "invalid role or secret ID", ...).
fn server_errors(errors: &[String]) -> String {
    let text: String = errors
        .join("; ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let text: String = text.chars().take(300).collect();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// Maps a vaultrs error of an operation (`doing`, e.g. "reading
/// secret/seatable/crm") to a classified failure. `denied_hint` says what to
/// do about a 403; `missing` is the message for a 404.
pub(crate) fn classify(
    e: ClientError,
    addr: &str,
    doing: &str,
    denied_hint: &str,
    missing: &str,
) -> Failure {
    match e {
        ClientError::APIError { code, errors } => classify_status(
            code,
            &server_errors(&errors),
            addr,
            doing,
            denied_hint,
            missing,
        ),
        ClientError::RestClientError { source } => match source {
            rustify::errors::ClientError::ServerResponseError { code, .. } => {
                classify_status(code, "", addr, doing, denied_hint, missing)
            }
            rustify::errors::ClientError::RequestError { source, .. } => {
                unreachable(&*source, addr)
            }
            other => Failure::unavailable(format!(
                "Vault at {addr} failed while {doing}: {}",
                root_cause(&other)
            )),
        },
        ClientError::ResponseEmptyError | ClientError::ResponseDataEmptyError => {
            Failure::vault(format!("Vault at {addr} returned nothing while {doing}"))
        }
        ClientError::JsonParseError { .. } => Failure::vault(format!(
            "Vault at {addr} returned unexpected data while {doing}"
        )),
        other => Failure::internal(format!("{doing} at {addr}: {other}")),
    }
}

pub(crate) fn classify_status(
    code: u16,
    errors: &str,
    addr: &str,
    doing: &str,
    denied_hint: &str,
    missing: &str,
) -> Failure {
    let failure = match code {
        403 => Failure::vault(format!("Vault denied {doing} (403{errors}): {denied_hint}")),
        // "what is missing: what to do" gets the status after what is missing.
        404 => Failure::vault(match missing.split_once(": ") {
            Some((what, fix)) => format!("{what} (404{errors}): {fix}"),
            None => format!("{missing} (404{errors})"),
        }),
        429 => Failure::unavailable(format!(
            "Vault at {addr} is rate limiting this client (429) while {doing}: try again later"
        )),
        503 if errors.contains("sealed") => Failure::unavailable(format!(
            "Vault at {addr} is sealed: try again once it is unsealed"
        )),
        // A KV v2 mount that was just enabled (or tuned from v1 to v2)
        // upgrades its storage first; until it is done it answers 400 —
        // on the active node for a moment, on a standby until it sees the
        // active node finish (it looks once a second). Waited out like any
        // answer of a server briefly away.
        400 if is_kv_upgrade(errors) => Failure::unavailable(format!(
            "Vault at {addr} answered {doing} with 400: the KV v2 mount is still upgrading from non-versioned to versioned data, as a mount does right after it is enabled or tuned to version 2 (a standby waits until the active node is done); it serves again in a moment: try again, or give --timeout more time"
        )),
        // A standby that cannot forward a request (no active node while the
        // cluster elects one) redirects it to the active node's address.
        // Redirects are followed only within the same origin, so that the
        // Vault token goes nowhere else: it is a failure to wait out.
        300..=399 => Failure::unavailable(format!(
            "Vault at {addr} redirected {doing} to another server ({code}): a standby without an active node to forward to? Redirects are followed only within the same origin; try again, or set --vault-addr to the server that answers"
        )),
        500..=599 | 412 => Failure::unavailable(format!(
            "Vault at {addr} failed ({code}{errors}) while {doing}: try again later"
        )),
        _ => Failure::vault(format!("Vault refused {doing} ({code}{errors})")),
    };
    failure.with_status(code)
}

/// Vault's 400 while a KV v2 mount upgrades its storage — both wordings:
/// the active node's ("Upgrading from non-versioned to versioned data. …
/// will resume service shortly.") and a standby's ("Waiting for the primary
/// to upgrade from non-versioned to versioned data. … when the primary is
/// finished.").
fn is_kv_upgrade(errors: &str) -> bool {
    errors.contains("pgrading from non-versioned to versioned data")
        || errors.contains("upgrade from non-versioned to versioned data")
}

/// A request that never got an answer: worth another try, unless nothing
/// listens there, the host does not exist or the certificate is refused —
/// then at once, about the address where that is the cause.
fn unreachable(source: &(dyn std::error::Error + 'static), addr: &str) -> Failure {
    if crate::http::is_certificate_problem(source) {
        return Failure::unavailable(format!(
            "TLS to Vault at {addr} failed: {}; set VAULT_CACERT for a private CA",
            crate::http::tls_cause(source)
        ))
        .permanent();
    }
    if let Some(why) = crate::http::Unreachable::of(source) {
        return Failure::unavailable(why.explain("Vault", addr, source))
            .permanent()
            .about("vault_addr");
    }
    // Worth another try; if none works, the address is what to check.
    Failure::unavailable(format!(
        "cannot reach Vault at {addr}: {}",
        root_cause(source)
    ))
    .about("vault_addr")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Kind, is_transient};

    /// The answer as a Vault error reaches [`classify`]: Vault's own JSON
    /// body, parsed the way [`api`] parses it.
    fn answer(status: u16, body: &str) -> Failure {
        let errors: vaultrs::api::EndpointError = serde_json::from_str(body).unwrap();
        classify(
            ClientError::APIError {
                code: status,
                errors: errors.errors,
            },
            "http://127.0.0.1:8200",
            "reading secret/seatable/crm",
            "check the policy",
            "no secret",
        )
    }

    #[test]
    fn a_kv_v2_mount_still_upgrading_is_waited_out_in_both_wordings() {
        // OpenBao's exact bodies: a standby's (reproduced on the Raft
        // cluster of tests/raft.rs) and the active node's.
        for body in [
            r#"{"errors":["Waiting for the primary to upgrade from non-versioned to versioned data. This backend will be unavailable for a brief period and will resume service when the primary is finished."]}"#,
            r#"{"errors":["Upgrading from non-versioned to versioned data. This backend will be unavailable for a brief period and will resume service shortly."]}"#,
        ] {
            let failure = answer(400, body);
            assert!(failure.transient, "{failure}");
            assert_eq!(failure.kind, Kind::Unavailable);
            assert_eq!(failure.status, Some(400));
            let text = failure.to_string();
            assert!(
                text.contains("the KV v2 mount is still upgrading"),
                "{text}"
            );
            assert!(is_transient(&failure.into()));
        }
    }

    #[test]
    fn any_other_400_is_a_refusal() {
        let failure = answer(400, r#"{"errors":["invalid request"]}"#);
        assert!(!failure.transient);
        assert_eq!(failure.kind, Kind::Vault);
        assert_eq!(
            failure.to_string(),
            "Vault refused reading secret/seatable/crm (400: invalid request)"
        );
    }
}
