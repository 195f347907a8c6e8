//! The API proxy: requests under `/api-gateway/`, `/dtable-server/` and
//! `/dtable-db/` that carry a session token go to the session's profile's
//! SeaTable origin — that origin only, the path re-rooted on it — with the
//! real base token in place of the session token. Responses stream back.
//!
//! Request bodies are read whole first (up to [`MAX_REQUEST_BODY`]) so that
//! a request can be sent twice: when SeaTable answers 403 `Token expired.`
//! (the token was revoked, or clocks disagree), the profile's token is
//! refreshed once — one refresh however many requests saw that answer — and
//! the request replayed once. Clients never see that expiry, and never hold
//! the base token or the API token.

// The `Err` of the helpers below is the refusal answered to the client,
// made at most once per request: boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderMap, HeaderName};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use tracing::{info, warn};

use super::handler::{Out, error};
use super::session::{self, Verdict};
use super::state::{Agent, Current, Profiles, Served};

/// Request bodies beyond this are refused with 413. SeaTable's own limits
/// (1000 rows a call) stay well under it.
pub const MAX_REQUEST_BODY: usize = 10 * 1024 * 1024;
/// A client has this long to send its request body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// SeaTable has this long to start answering (big SQL queries are slow).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(120);

pub async fn forward(req: Request<Incoming>, agent: &Agent) -> Response<Out> {
    let response = forward_once_or_twice(req, agent).await;
    agent.metrics.proxied(response.status().as_u16());
    response
}

async fn forward_once_or_twice(req: Request<Incoming>, agent: &Agent) -> Response<Out> {
    let (parts, body) = req.into_parts();
    if !clean_path(parts.uri.path()) {
        return error(
            StatusCode::BAD_REQUEST,
            "paths with '.' or '..' segments or encoded slashes and dots are not forwarded",
        );
    }
    let profiles = agent.profiles();
    let served = match session_of(&parts.headers, &profiles) {
        Ok(served) => served.clone(),
        Err(refusal) => return refusal,
    };
    drop(profiles);
    let body = match read_body(body, &parts.headers).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let current = match served.current() {
        Some(current) => current,
        None => match served.wait_current(served.profile.timeout).await {
            Some(current) => current,
            None => return super::exchange::unavailable(&served.name),
        },
    };
    let target = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |pq| pq.as_str());
    let url = format!("{}{target}", served.upstream.origin);

    let response = match send(
        &served,
        &parts.method,
        &url,
        &parts.headers,
        &body,
        &current,
    )
    .await
    {
        Ok(response) => response,
        Err(failed) => return failed,
    };
    if response.status() != StatusCode::FORBIDDEN {
        return streamed(response);
    }
    // A 403: small; read it to see whether SeaTable says the token expired.
    let status = response.status();
    let mut headers = response.headers().clone();
    let Ok(text) = crate::http::read_capped(response).await else {
        return error(
            StatusCode::BAD_GATEWAY,
            "SeaTable's answer broke off or was too large",
        );
    };
    if !token_expired(&text) {
        strip_hop_by_hop(&mut headers);
        let mut refused = Response::new(Out::Full(Full::new(Bytes::copy_from_slice(&text))));
        *refused.status_mut() = status;
        *refused.headers_mut() = headers;
        return refused;
    }
    served.metrics.replays.fetch_add(1, Ordering::Relaxed);
    info!(profile = %served.name, "SeaTable says the base token expired; refreshing once and replaying the request");
    let current = match served.refresh_after(current.generation).await {
        Ok(current) => current,
        Err(err) => {
            served
                .metrics
                .refresh_failures
                .fetch_add(1, Ordering::Relaxed);
            warn!(profile = %served.name, "refresh after \"Token expired.\" failed: {}", crate::error::one_line(&err));
            return super::exchange::unavailable(&served.name);
        }
    };
    match send(
        &served,
        &parts.method,
        &url,
        &parts.headers,
        &body,
        &current,
    )
    .await
    {
        Ok(response) => streamed(response),
        Err(failed) => failed,
    }
}

/// The profile whose session token the request carries; else SeaTable's
/// own refusals: 403 `Token expired.` for an expired session (SDKs then
/// authenticate again), 403 `Permission denied.` for anything else.
fn session_of<'a>(
    headers: &HeaderMap,
    profiles: &'a Profiles,
) -> Result<&'a Arc<Served>, Response<Out>> {
    let denied = || error(StatusCode::FORBIDDEN, "Permission denied.");
    let token = session::credential(headers.get(header::AUTHORIZATION)).ok_or_else(denied)?;
    let claims = session::peek(token).ok_or_else(denied)?;
    let served = profiles.by_name(&claims.sub).ok_or_else(denied)?;
    match served.key.verify(token, crate::time::now()) {
        Verdict::Valid => Ok(served),
        Verdict::Expired => Err(error(StatusCode::FORBIDDEN, "Token expired.")),
        Verdict::Invalid => Err(denied()),
    }
}

/// The whole request body, bounded in size and time.
async fn read_body(body: Incoming, headers: &HeaderMap) -> Result<Bytes, Response<Out>> {
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "request bodies are limited to {} MiB",
                MAX_REQUEST_BODY / (1024 * 1024)
            ),
        )
    };
    if declared.is_some_and(|n| n > MAX_REQUEST_BODY as u64) {
        info!("refused a request body of {} bytes", declared.unwrap_or(0));
        return Err(too_large());
    }
    let read = Limited::new(body, MAX_REQUEST_BODY).collect();
    match tokio::time::timeout(BODY_READ_TIMEOUT, read).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            info!("refused a request body over the limit");
            Err(too_large())
        }
        Ok(Err(e)) => {
            info!("a client's request body broke off: {e}");
            Err(error(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            ))
        }
        Err(_) => {
            info!("a client took too long to send its request body");
            Err(error(
                StatusCode::REQUEST_TIMEOUT,
                "the request body took too long",
            ))
        }
    }
}

async fn send(
    served: &Served,
    method: &Method,
    url: &str,
    client_headers: &HeaderMap,
    body: &Bytes,
    current: &Current,
) -> Result<reqwest::Response, Response<Out>> {
    let mut headers = forwarded_headers(client_headers);
    headers.insert(header::AUTHORIZATION, current.authorization.clone());
    let mut request = served
        .upstream
        .client
        .request(method.clone(), url)
        .headers(headers);
    if !body.is_empty() {
        request = request.body(body.clone());
    }
    match tokio::time::timeout(UPSTREAM_TIMEOUT, request.send()).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => {
            let why = crate::error::root_cause(&e);
            warn!(profile = %served.name, "SeaTable at {} did not answer: {why}", served.upstream.origin);
            Err(error(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "SeaTable at {} did not answer: {why}",
                    served.upstream.origin
                ),
            ))
        }
        Err(_) => {
            warn!(profile = %served.name, "SeaTable at {} did not answer in time", served.upstream.origin);
            Err(error(
                StatusCode::GATEWAY_TIMEOUT,
                &format!(
                    "SeaTable at {} did not answer in time",
                    served.upstream.origin
                ),
            ))
        }
    }
}

/// SeaTable's answer, its body streamed through as it arrives.
fn streamed(response: reqwest::Response) -> Response<Out> {
    let response: hyper::Response<reqwest::Body> = response.into();
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, Out::Stream(body))
}

fn token_expired(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct ErrorBody {
        error_msg: String,
    }
    serde_json::from_slice::<ErrorBody>(body).is_ok_and(|b| b.error_msg.trim() == "Token expired.")
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Removes hop-by-hop headers, those the `Connection` header names, and
/// `Upgrade` (the agent does not tunnel protocols).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(named.iter()) {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

/// The client's headers as they go to SeaTable: without hop-by-hop headers,
/// without its `Authorization` (replaced by the base token), `Host` (that of
/// the upstream) and what the client set for its own connection.
fn forwarded_headers(client: &HeaderMap) -> HeaderMap {
    let mut headers = client.clone();
    strip_hop_by_hop(&mut headers);
    for name in [
        header::AUTHORIZATION,
        header::HOST,
        header::CONTENT_LENGTH,
        header::EXPECT,
    ] {
        headers.remove(name);
    }
    headers
}

/// No `.`/`..` segments, encoded dots or slashes, or backslashes: what
/// reaches SeaTable is the path the client named, under the same prefix.
fn clean_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    !["%2e", "%2f", "%5c", "\\"]
        .iter()
        .any(|s| lower.contains(s))
        && path.split('/').all(|seg| seg != "." && seg != "..")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn traversal_is_not_forwarded() {
        assert!(clean_path("/api-gateway/api/v2/dtables/u/rows/"));
        assert!(clean_path("/dtable-server/api/v1/dtables/u/metadata/"));
        for bad in [
            "/api-gateway/../api/v2.1/admin/",
            "/api-gateway/./x",
            "/api-gateway/%2e%2e/x",
            "/api-gateway/%2E%2E/x",
            "/api-gateway/a%2fb",
            "/api-gateway/a\\..\\b",
        ] {
            assert!(!clean_path(bad), "{bad}");
        }
    }

    #[test]
    fn hop_by_hop_and_credentials_do_not_travel() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-private"),
            ("keep-alive", "timeout=5"),
            ("x-private", "1"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("proxy-authorization", "Basic abc"),
            ("authorization", "Token session"),
            ("host", "127.0.0.1:8799"),
            ("content-length", "5"),
            ("content-type", "application/json"),
            ("user-agent", "python-requests/2"),
            ("accept-encoding", "gzip"),
        ] {
            h.append(k, HeaderValue::from_static(v));
        }
        let f = forwarded_headers(&h);
        let mut names: Vec<&str> = f.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, ["accept-encoding", "content-type", "user-agent"]);
    }

    #[test]
    fn only_seatables_expiry_answer_triggers_a_replay() {
        assert!(token_expired(br#"{"error_msg":"Token expired."}"#));
        assert!(token_expired(
            br#"{"error_msg": "Token expired. ", "x": 1}"#
        ));
        assert!(!token_expired(br#"{"error_msg":"Permission denied."}"#));
        assert!(!token_expired(b"Token expired."));
        assert!(!token_expired(b""));
    }
}
