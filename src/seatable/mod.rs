//! The SeaTable exchange of SPEC §5: API token in, base token out.
//!
//! `GET {server}/api/v2.1/dtable/app-access-token/` with
//! `Authorization: Token <api token>` (every SeaTable version accepts it;
//! `Bearer` only from 4.0), `?exp=` in SeaTable's units (whole hours `5h`
//! or days `3d`). 403/404 are permanent; 429, 5xx, resets and timeouts are
//! retried inside the call's deadline; bodies are capped.

pub mod account;
pub mod jwt;
pub mod request;
mod response;
pub mod team;

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use reqwest::StatusCode;
use reqwest::header::AUTHORIZATION;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::{debug, info};

use crate::error::{Failure, one_line, root_cause};
use crate::retry::{Policy, Stop, Verdict};
use response::AccessTokenResponse;
pub use response::ErrorBody;

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
        .map_err(|e| unanswered(&e, server_url))?;
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
    let auth = request::authorization(api_token.expose_secret()).ok_or_else(|| {
        Failure::vault("the API token read from Vault contains characters that cannot be sent in an HTTP header: store the token exactly as SeaTable shows it")
    })?;

    let mut attempts = 0u32;
    let classify = |outcome: Attempt| match outcome {
        Attempt::Done(token) => Verdict::Done(token),
        Attempt::Transient(failure, hint) => Verdict::Again(failure.into(), hint),
        Attempt::Permanent(failure) => Verdict::Final(failure.into()),
    };
    let exchanged = Policy::NETWORK
        .run(deadline, "", classify, async || {
            attempts += 1;
            debug!(attempt = attempts, url = %url, "exchanging the API token for a base token");
            let requested_at = crate::time::now();
            let get = client
                .get(&url)
                .header(AUTHORIZATION, auth.clone())
                .header("accept", "application/json");
            let sent = request::send_once(get, server_url, "", deadline).await;
            attempt(sent, server_url, lifetime, requested_at)
        })
        .await;
    match exchanged {
        Ok(token) => {
            info!(attempts, expires_at = %crate::time::rfc3339(token.expires_at), "SeaTable issued a base token");
            Ok(token)
        }
        Err(Stop::Final(failure)) => Err(failure),
        Err(Stop::OutOfTime(failure)) => {
            let after = if attempts > 1 {
                format!(" after {attempts} attempts")
            } else {
                String::new()
            };
            Err(
                Failure::unavailable(format!("{}{after}: try again later", one_line(&failure)))
                    .into(),
            )
        }
    }
}

/// What one try of the exchange came to.
fn attempt(
    sent: request::Sent,
    server_url: &str,
    lifetime: Option<Duration>,
    requested_at: u64,
) -> Attempt {
    let (status, hint, body) = match sent {
        request::Sent::Answered { status, hint, body } => (status, hint, body),
        request::Sent::Unanswered(e) => {
            return Attempt::Transient(unanswered(&e, server_url), None);
        }
        request::Sent::Refused(failure) => return Attempt::Permanent(failure),
    };
    let body = match body {
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
                ErrorBody::parse(&body)
                    .error_msg()
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
            ErrorBody::parse(&body)
                .error_msg()
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

/// A request that got no answer, for people: permanent for a certificate
/// problem, else worth another try.
fn unanswered(e: &reqwest::Error, server_url: &str) -> Failure {
    if let Some(failure) = request::tls_failure(e, server_url) {
        return failure;
    }
    let what = if e.is_timeout() {
        "timed out".to_string()
    } else {
        format!("unreachable: {}", root_cause(e))
    };
    Failure::unavailable(format!("SeaTable at {server_url} {what}"))
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
