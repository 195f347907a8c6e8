//! The secret source: Vault or OpenBao, through vaultrs (SPEC §4).
//!
//! vaultrs' settings builder reads `VAULT_*` variables on its own and panics
//! on a bad URL, so the client is built from an explicit
//! [`VaultClientSettings`] made of the already-validated profile.

pub mod api;
mod auth;
pub mod kv;
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
        404 => Failure::vault(format!("{missing} (404{errors})")),
        429 => Failure::unavailable(format!(
            "Vault at {addr} is rate limiting this client (429) while {doing}: try again later"
        )),
        503 if errors.contains("sealed") => Failure::unavailable(format!(
            "Vault at {addr} is sealed: try again once it is unsealed"
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

/// A request that never got an answer.
fn unreachable(source: &(dyn std::error::Error + 'static), addr: &str) -> Failure {
    let cause = root_cause(source);
    if crate::http::is_certificate_problem(source) {
        return Failure::unavailable(format!(
            "TLS to Vault at {addr} failed: {cause}; set VAULT_CACERT for a private CA"
        ))
        .permanent();
    }
    Failure::unavailable(format!("cannot reach Vault at {addr}: {cause}"))
}
