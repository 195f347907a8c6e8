//! The SeaTable exchange of SPEC §5: API token in, base token out.
//!
//! `GET {server}/api/v2.1/dtable/app-access-token/` with
//! `Authorization: Token <api token>` (every SeaTable version accepts it;
//! `Bearer` only from 4.0), `?exp=` in SeaTable's units (whole hours `5h`
//! or days `3d`). 403/404 are permanent; 429, 5xx, resets and timeouts are
//! retried inside the call's deadline; bodies are capped.

pub mod account;
pub mod jwt;
mod response;
pub mod team;

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::{debug, info, warn};
use zeroize::Zeroizing;

use crate::error::{Failure, root_cause};
use crate::retry::{Backoff, server_hint};
use response::AccessTokenResponse;

pub use crate::http::MAX_BODY;
/// What SeaTable issues when no lifetime is asked for.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3 * 24 * 3600);

/// What a SeaTable client needs besides the token; nothing here is secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BaseContext {
    pub server_url: String,
    pub api_gateway_url: String,
    pub dtable_server: Option<String>,
    pub dtable_uuid: Option<String>,
    pub dtable_name: Option<String>,
    pub workspace_id: Option<i64>,
    pub app_name: Option<String>,
    /// `r` or `rw`, from the token's payload.
    pub permission: Option<String>,
    pub use_api_gateway: Option<bool>,
}

/// A base token stamped with its expiry.
pub struct BaseToken {
    pub token: SecretString,
    /// Unix seconds: the JWT's `exp`.
    pub expires_at: u64,
    /// Unix seconds: when it was obtained.
    pub fetched_at: u64,
    pub context: BaseContext,
}

/// Where a token stands, relative to now and the refresh window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Serve it; no network.
    Fresh,
    /// Still valid but inside the refresh window: refresh, and serve it if
    /// the refresh fails for a transient reason.
    Refresh,
    /// Unusable.
    Expired,
}

impl BaseToken {
    /// When to ask again: `refresh_before` ahead of the expiry — but never
    /// more than half the token's lifetime ahead, so that short-lived tokens
    /// (`--lifetime 2m`) are still served from cache for a while.
    pub fn refresh_at(&self, refresh_before: Duration) -> u64 {
        let lifetime = self.expires_at.saturating_sub(self.fetched_at);
        let window = refresh_before.as_secs().min(lifetime / 2);
        self.expires_at - window
    }

    pub fn freshness(&self, now: u64, refresh_before: Duration) -> Freshness {
        if now >= self.expires_at {
            Freshness::Expired
        } else if now >= self.refresh_at(refresh_before) {
            Freshness::Refresh
        } else {
            Freshness::Fresh
        }
    }
}

/// `exp` for a lifetime, in the units SeaTable's spec gives (`5h`, `3d`):
/// whole days when it is some, else whole hours, rounded up; with the
/// lifetime that asks for.
pub fn exp_param(lifetime: Duration) -> (String, Duration) {
    const HOUR: u64 = 3600;
    const DAY: u64 = 24 * HOUR;
    let secs = lifetime.as_secs() + u64::from(lifetime.subsec_nanos() > 0);
    if secs > 0 && secs.is_multiple_of(DAY) {
        return (format!("{}d", secs / DAY), Duration::from_secs(secs));
    }
    let hours = secs.div_ceil(HOUR).max(1);
    (format!("{hours}h"), Duration::from_secs(hours * HOUR))
}

/// Whether two base UUIDs name the same base: SeaTable writes them
/// hyphenated (the spec's form, and every workspace list) or, in the
/// exchange of older servers, as 32 hex digits. Text that is no UUID only
/// equals itself.
pub fn same_base(a: &str, b: &str) -> bool {
    match (uuid::Uuid::try_parse(a), uuid::Uuid::try_parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// An HTTP client for SeaTable: rustls with the system roots plus an
/// optional private CA.
pub fn http_client(server_url: &str, ca_cert: Option<&Path>) -> Result<reqwest::Client> {
    let extra_roots = match ca_cert {
        Some(path) if server_url.starts_with("https://") => crate::http::ca_bundle(path)?,
        _ => Vec::new(),
    };
    crate::http::http_client(
        server_url,
        crate::http::Trust {
            extra_roots,
            verify: true,
        },
        None,
    )
}

/// `GET /api2/ping/` (unauthenticated): the server's clock from its `Date`
/// header, when it answers `pong`.
pub async fn ping(client: &reqwest::Client, server_url: &str) -> Result<Option<u64>> {
    let response = client
        .get(format!("{server_url}/api2/ping/"))
        .send()
        .await
        .map_err(|e| match send_error(&e, server_url) {
            Attempt::Transient(f, _) | Attempt::Permanent(f) => f,
            Attempt::Done(_) => Failure::internal("ping"),
        })?;
    let date = response
        .headers()
        .get("date")
        .and_then(|d| d.to_str().ok())
        .and_then(crate::retry::httpdate_to_unix);
    let status = response.status();
    let body = crate::http::read_capped(response).await.unwrap_or_default();
    if !status.is_success() || !String::from_utf8_lossy(&body).contains("pong") {
        return Err(Failure::unavailable(format!(
            "{server_url}/api2/ping/ answered {} without \"pong\": is --server-url a SeaTable server?",
            status.as_u16()
        ))
        .into());
    }
    Ok(date)
}

/// The outcome of one attempt.
enum Attempt {
    Done(BaseToken),
    /// Worth retrying; with the server's requested wait, if any.
    Transient(Failure, Option<Duration>),
    Permanent(Failure),
}

/// Trades the API token for a base token, retrying transient failures with
/// backoff until `deadline`.
pub async fn exchange(
    client: &reqwest::Client,
    server_url: &str,
    lifetime: Option<Duration>,
    api_token: &SecretString,
    deadline: Instant,
) -> Result<BaseToken> {
    let mut url = format!("{server_url}/api/v2.1/dtable/app-access-token/");
    let lifetime = lifetime.map(|wanted| {
        let (exp, asked) = exp_param(wanted);
        if asked != wanted {
            info!(
                "asking SeaTable for base tokens of {exp}: it takes whole hours or days, so --lifetime {} is rounded up",
                crate::time::compact(wanted)
            );
        }
        url.push_str("?exp=");
        url.push_str(&exp);
        asked
    });
    let mut auth = {
        let value = Zeroizing::new(format!("Token {}", api_token.expose_secret()));
        HeaderValue::from_str(&value).map_err(|_| {
            Failure::vault("the API token read from Vault contains characters that cannot be sent in an HTTP header: store the token exactly as SeaTable shows it")
        })?
    };
    auth.set_sensitive(true);

    let mut backoff = Backoff::default();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Failure::unavailable(format!("SeaTable at {server_url} did not answer in time: try again later or raise --timeout")).into());
        }
        debug!(attempt = attempts, url = %url, "exchanging the API token for a base token");
        let request = client
            .get(&url)
            .header(AUTHORIZATION, auth.clone())
            .header("accept", "application/json")
            .timeout(remaining);
        match attempt(request, server_url, lifetime).await {
            Attempt::Done(token) => {
                info!(attempts, expires_at = %crate::time::rfc3339(token.expires_at), "SeaTable issued a base token");
                return Ok(token);
            }
            Attempt::Permanent(failure) => return Err(failure.into()),
            Attempt::Transient(failure, hint) => {
                let delay = hint.unwrap_or_else(|| backoff.next_delay());
                let left = deadline.saturating_duration_since(Instant::now());
                if delay >= left {
                    let after = if attempts > 1 {
                        format!(" after {attempts} attempts")
                    } else {
                        String::new()
                    };
                    return Err(
                        Failure::unavailable(format!("{failure}{after}: try again later")).into(),
                    );
                }
                warn!("{failure}; retrying in {} ms", delay.as_millis());
                tokio::time::sleep(delay).await;
            }
        }
    }
}

async fn attempt(
    request: reqwest::RequestBuilder,
    server_url: &str,
    lifetime: Option<Duration>,
) -> Attempt {
    let requested_at = crate::time::now();
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return send_error(&e, server_url),
    };
    let status = response.status();
    let hint = server_hint(response.headers(), crate::time::now());
    let body = match crate::http::read_capped(response).await {
        Ok(body) => body,
        Err(crate::http::BodyError::TooLarge) => {
            let msg = format!(
                "SeaTable at {server_url} sent a response larger than {} KiB",
                MAX_BODY / 1024
            );
            return Attempt::Transient(Failure::unavailable(msg), None);
        }
        Err(crate::http::BodyError::Broken) => {
            let msg = format!("SeaTable at {server_url} dropped the connection while answering");
            return Attempt::Transient(Failure::unavailable(msg), None);
        }
    };
    match status {
        StatusCode::OK => match AccessTokenResponse::parse(&body) {
            None => Attempt::Transient(
                Failure::unavailable(format!(
                    "SeaTable at {server_url} answered 200 with something that is not a base token (a maintenance page?)"
                )),
                None,
            ),
            Some(r) if !jwt::is_compact_jws(r.access_token.expose_secret()) => Attempt::Transient(
                Failure::unavailable(format!(
                    "SeaTable at {server_url} answered with an access_token that is not a base token (a JWT: base64url and dots only); it is neither cached nor printed"
                )),
                None,
            ),
            Some(r) => Attempt::Done(base_token(r, server_url, lifetime, requested_at)),
        },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
            Attempt::Permanent(Failure::seatable(format!(
                "SeaTable at {server_url} refused it ({}{}): it is invalid or was deleted, or its base is gone; store a valid API token in Vault",
                status.as_u16(),
                error_msg(&body)
                    .map(|m| format!(" {m}"))
                    .unwrap_or_default()
            )).with_status(status.as_u16()))
        }
        StatusCode::TOO_MANY_REQUESTS => Attempt::Transient(
            Failure::unavailable(format!(
                "SeaTable at {server_url} is rate limiting this client (429)"
            )),
            hint,
        ),
        s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => Attempt::Transient(
            Failure::unavailable(format!("SeaTable at {server_url} failed ({})", s.as_u16())),
            hint.filter(|_| s == StatusCode::SERVICE_UNAVAILABLE),
        ),
        s => Attempt::Permanent(Failure::internal(format!(
            "SeaTable at {server_url} answered the token exchange with an unexpected {}{}: check --server-url{}",
            s.as_u16(),
            error_msg(&body)
                .map(|m| format!(" {m}"))
                .unwrap_or_default(),
            if s == StatusCode::BAD_REQUEST && lifetime.is_some() {
                " and --lifetime"
            } else {
                ""
            }
        ))),
    }
}

fn send_error(e: &reqwest::Error, server_url: &str) -> Attempt {
    let cause = root_cause(e);
    if crate::http::is_certificate_problem(e) {
        return Attempt::Permanent(
            Failure::unavailable(format!(
                "TLS to SeaTable at {server_url} failed: {cause}; for a private CA set SEATABLE_CA_CERT or ca_cert"
            ))
            .permanent(),
        );
    }
    let what = if e.is_timeout() {
        "timed out".to_string()
    } else {
        format!("unreachable: {cause}")
    };
    Attempt::Transient(
        Failure::unavailable(format!("SeaTable at {server_url} {what}")),
        None,
    )
}

/// SeaTable's `{"error_msg": "..."}`, when short and printable.
fn error_msg(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ErrorBody {
        error_msg: String,
    }
    let msg = serde_json::from_slice::<ErrorBody>(body).ok()?.error_msg;
    let msg: String = msg.chars().filter(|c| !c.is_control()).take(200).collect();
    (!msg.is_empty()).then_some(msg)
}

/// A base token from the body of a 200 answer; `None` when the body is not
/// the exchange's JSON or its token is not shaped like a JWT.
pub fn parse_exchange(
    body: &[u8],
    server_url: &str,
    lifetime: Option<Duration>,
    requested_at: u64,
) -> Option<BaseToken> {
    AccessTokenResponse::parse(body)
        .filter(|r| jwt::is_compact_jws(r.access_token.expose_secret()))
        .map(|r| base_token(r, server_url, lifetime, requested_at))
}

fn base_token(
    r: AccessTokenResponse,
    server_url: &str,
    lifetime: Option<Duration>,
    requested_at: u64,
) -> BaseToken {
    let claims = jwt::claims(r.access_token.expose_secret()).unwrap_or_default();
    let expires_at = match jwt::plausible_exp(claims.exp, requested_at) {
        Some(exp) => exp,
        None => {
            let assumed = lifetime.unwrap_or(DEFAULT_LIFETIME);
            let why = if claims.exp.is_some() {
                "is implausibly far ahead"
            } else {
                "cannot be read"
            };
            info!(
                "the base token's expiry (JWT exp) {why}; assuming {} from the time of the request",
                crate::time::compact(assumed)
            );
            requested_at.saturating_add(assumed.as_secs())
        }
    };
    let gateway_flag = r.use_api_gateway == Some(true);
    let api_gateway_url = match &r.dtable_server {
        Some(s) if gateway_flag || s.trim_end_matches('/').ends_with("/api-gateway") => {
            format!("{}/", s.trim_end_matches('/'))
        }
        _ => format!("{server_url}/api-gateway/"),
    };
    BaseToken {
        token: r.access_token,
        expires_at,
        fetched_at: requested_at,
        context: BaseContext {
            server_url: server_url.to_string(),
            api_gateway_url,
            dtable_server: r.dtable_server,
            dtable_uuid: r.dtable_uuid.or(claims.dtable_uuid),
            dtable_name: r.dtable_name,
            workspace_id: r.workspace_id,
            app_name: r.app_name.or(claims.app_name),
            permission: claims.permission,
            use_api_gateway: r.use_api_gateway,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(fetched_at: u64, expires_at: u64) -> BaseToken {
        BaseToken {
            token: SecretString::from("t"),
            expires_at,
            fetched_at,
            context: BaseContext::default(),
        }
    }

    #[test]
    fn freshness_follows_the_refresh_window() {
        let t = token(0, 3 * 24 * 3600);
        let rb = Duration::from_secs(300);
        assert_eq!(t.refresh_at(rb), 3 * 24 * 3600 - 300);
        assert_eq!(t.freshness(0, rb), Freshness::Fresh);
        assert_eq!(t.freshness(t.refresh_at(rb) - 1, rb), Freshness::Fresh);
        assert_eq!(t.freshness(t.refresh_at(rb), rb), Freshness::Refresh);
        assert_eq!(t.freshness(t.expires_at - 1, rb), Freshness::Refresh);
        assert_eq!(t.freshness(t.expires_at, rb), Freshness::Expired);
    }

    #[test]
    fn window_is_at_most_half_the_lifetime() {
        let t = token(1000, 1120);
        assert_eq!(t.refresh_at(Duration::from_secs(300)), 1060);
        assert_eq!(
            t.freshness(1059, Duration::from_secs(300)),
            Freshness::Fresh
        );
    }

    #[test]
    fn gateway_url_from_6x_and_4x() {
        let parse = |body: &str| AccessTokenResponse::parse(body.as_bytes()).unwrap();
        let t = base_token(
            parse(
                r#"{"access_token":"x","dtable_server":"https://s/api-gateway/","use_api_gateway":true}"#,
            ),
            "https://s",
            None,
            10,
        );
        assert_eq!(t.context.api_gateway_url, "https://s/api-gateway/");
        let t = base_token(
            parse(r#"{"access_token":"x","dtable_server":"https://s/dtable-server/"}"#),
            "https://s",
            None,
            10,
        );
        assert_eq!(t.context.api_gateway_url, "https://s/api-gateway/");
        assert_eq!(
            t.context.dtable_server.as_deref(),
            Some("https://s/dtable-server/")
        );
    }

    #[test]
    fn expiry_without_exp_assumes_the_lifetime() {
        let parse = |body: &str| AccessTokenResponse::parse(body.as_bytes()).unwrap();
        let t = base_token(
            parse(r#"{"access_token":"opaque"}"#),
            "https://s",
            None,
            100,
        );
        assert_eq!(t.expires_at, 100 + 3 * 24 * 3600);
        let t = base_token(
            parse(r#"{"access_token":"opaque"}"#),
            "https://s",
            Some(Duration::from_secs(3600)),
            100,
        );
        assert_eq!(t.expires_at, 3700);
    }

    fn jws(payload: &str) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            b64.encode(r#"{"alg":"HS256"}"#),
            b64.encode(payload)
        )
    }

    #[test]
    fn only_jwt_shaped_tokens_are_taken() {
        let body = |token: &str| serde_json::json!({ "access_token": token }).to_string();
        let good = jws(r#"{"exp":2000}"#);
        let t = parse_exchange(body(&good).as_bytes(), "https://s", None, 1000).unwrap();
        assert_eq!(t.token.expose_secret(), good);
        assert_eq!(t.expires_at, 2000);
        for bad in [
            "opaque",
            "a\nhost=evil.b.c",
            "a.b.c\r\nX-Injected: 1",
            "a.b",
        ] {
            assert!(
                parse_exchange(body(bad).as_bytes(), "https://s", None, 1000).is_none(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn implausible_exp_assumes_the_lifetime() {
        let body = |exp: &str| {
            serde_json::json!({ "access_token": jws(&format!(r#"{{"exp":{exp}}}"#)) }).to_string()
        };
        for exp in ["253402300800", "1e300", "18446744073709551615"] {
            let t = parse_exchange(body(exp).as_bytes(), "https://s", None, 1000).unwrap();
            assert_eq!(t.expires_at, 1000 + 3 * 24 * 3600, "{exp}");
            let t = parse_exchange(
                body(exp).as_bytes(),
                "https://s",
                Some(Duration::from_secs(3600)),
                1000,
            )
            .unwrap();
            assert_eq!(t.expires_at, 4600, "{exp}");
        }
    }

    #[test]
    fn exp_is_whole_hours_or_days_rounded_up() {
        let h = |n: u64| Duration::from_secs(n * 3600);
        for (lifetime, exp, asked) in [
            (h(1), "1h", h(1)),
            (h(5), "5h", h(5)),
            (Duration::from_secs(90 * 60), "2h", h(2)),
            (Duration::from_secs(3601), "2h", h(2)),
            (Duration::from_millis(3_600_001), "2h", h(2)),
            (h(24), "1d", h(24)),
            (h(36), "36h", h(36)),
            (h(72), "3d", h(72)),
            (Duration::from_secs(61), "1h", h(1)),
        ] {
            assert_eq!(
                exp_param(lifetime),
                (exp.to_string(), asked),
                "{lifetime:?}"
            );
        }
    }

    #[test]
    fn base_uuids_compare_as_uuids() {
        let hyphenated = "650d8a0d-7e27-46a8-8b18-6cc6f3db2057";
        assert!(same_base(hyphenated, "650d8a0d7e2746a88b186cc6f3db2057"));
        assert!(same_base("650D8A0D7E2746A88B186CC6F3DB2057", hyphenated));
        assert!(!same_base(hyphenated, "650d8a0d7e2746a88b186cc6f3db2058"));
        assert!(same_base("7c3b", "7c3b"));
        assert!(!same_base("7c3b", "7c3c"));
    }

    #[test]
    fn error_msg_is_short_and_clean() {
        assert_eq!(
            error_msg(br#"{"error_msg":"Permission denied."}"#).as_deref(),
            Some("Permission denied.")
        );
        assert_eq!(error_msg(b"<html>"), None);
        assert_eq!(error_msg(br#"{"error_msg":"a\nb"}"#).as_deref(), Some("ab"));
    }
}

#[cfg(test)]
mod tls_tests {
    /// rustls' verdict arrives wrapped in two io::Errors; it must still be
    /// recognised, or a bad certificate is retried until the deadline.
    #[test]
    fn unknown_issuer_is_a_certificate_problem() {
        crate::http::install_provider();
        let standin = seatable_standin::Standin::start_tls();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = super::http_client(&standin.url, None).unwrap();
        let err = rt.block_on(client.get(&standin.url).send()).unwrap_err();
        assert!(crate::http::is_certificate_problem(&err));
        let ca = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(ca.path(), standin.ca_pem.as_ref().unwrap()).unwrap();
        let client = super::http_client(&standin.url, Some(ca.path())).unwrap();
        let status = rt
            .block_on(client.get(format!("{}/nothing", standin.url)).send())
            .unwrap()
            .status();
        assert_eq!(status, 404, "with the private CA the connection works");
    }
}
