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
use http_body_util::{BodyExt, Either, Full, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri::PathAndQuery;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use tracing::{info, warn};

use super::handler::{Out, error};
use super::session::{self, Verdict};
use super::state::{Agent, Current, Forced, MIN_FORCED_INTERVAL, Profiles, Served};
use super::upstream;

/// Request bodies beyond this are refused with 413. SeaTable's own limits
/// (1000 rows a call) stay well under it.
pub const MAX_REQUEST_BODY: usize = 10 * 1024 * 1024;
/// A client has this long to send its request body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// SeaTable has this long to start answering (big SQL queries are slow).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(120);

/// The methods SeaTable's API uses. Others — `TRACE` above all, which a
/// front server may answer by echoing the request, base token included —
/// are refused with 405.
const FORWARDED_METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];
/// [`FORWARDED_METHODS`] as the `Allow` header and the refusal name them.
const ALLOWED: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// A `Connection` header naming more headers than this is refused: no
/// client needs many, and each is looked for among the message's headers.
const MAX_CONNECTION_NAMES: usize = 32;

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
    if !FORWARDED_METHODS.contains(&parts.method) {
        let mut refusal = error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("only {ALLOWED} are forwarded"),
        );
        refusal
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(ALLOWED));
        return refusal;
    }
    // Origin-form, the only form routed here, always has one.
    let Some(target) = parts.uri.path_and_query().cloned() else {
        return error(StatusCode::BAD_REQUEST, "the request has no path");
    };
    let served = match session_of(&parts.headers, &agent.profiles()) {
        Ok(served) => served.clone(),
        Err(refusal) => return refusal,
    };
    let body = match read_body(body, &parts.headers).await {
        Ok(body) => body,
        // The rest of the body may still be on its way: the connection
        // cannot carry another request, and the client is told so — else
        // it may send its next one on a connection about to close.
        Err(mut refusal) => {
            refusal
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return refusal;
        }
    };
    let current = match served.current() {
        Some(current) => current,
        None => match served.wait_current(served.profile.timeout).await {
            Some(current) => current,
            None => return super::exchange::unavailable(&served.name),
        },
    };
    let method = parts.method;
    let Some(headers) = forwarded_headers(parts.headers) else {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("the Connection header names more than {MAX_CONNECTION_NAMES} headers"),
        );
    };

    let response = match send(&served, &method, &target, &headers, &body, &current).await {
        Ok(response) => response,
        Err(failed) => return failed,
    };
    if response.status() != StatusCode::FORBIDDEN {
        return streamed(response);
    }
    // A 403: small; read it to see whether SeaTable says the token expired.
    let (head, answer) = response.into_parts();
    let read = tokio::time::timeout(
        UPSTREAM_TIMEOUT,
        Limited::new(answer, crate::http::MAX_BODY).collect(),
    );
    let Ok(Ok(text)) = read.await else {
        return error(
            StatusCode::BAD_GATEWAY,
            "SeaTable's answer broke off or was too large",
        );
    };
    let text = text.to_bytes();
    if !token_expired(&text) {
        return passed_on(head, Either::Left(Full::new(text)));
    }
    let current = match served.refresh_after(current.generation).await {
        Ok(Forced::Refreshed(current)) => current,
        Ok(Forced::TooSoonAfterSuccess) => {
            warn!(
                profile = %served.name,
                "SeaTable says the base token expired again within {}s of a refresh; answering that to the client",
                MIN_FORCED_INTERVAL.as_secs()
            );
            return passed_on(head, Either::Left(Full::new(text)));
        }
        Ok(Forced::TooSoonAfterFailure) => {
            return super::exchange::unavailable(&served.name);
        }
        Err(err) => {
            served
                .metrics
                .refresh_failures
                .fetch_add(1, Ordering::Relaxed);
            warn!(profile = %served.name, "refresh after \"Token expired.\" failed: {}", crate::error::one_line(&err));
            return super::exchange::unavailable(&served.name);
        }
    };
    served.metrics.replays.fetch_add(1, Ordering::Relaxed);
    info!(profile = %served.name, "SeaTable said the base token expired; replaying the request with a new one");
    match send(&served, &method, &target, &headers, &body, &current).await {
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
    match profiles.session(token, crate::time::now()) {
        Ok(served) => Ok(served),
        Err(Verdict::Expired) => Err(error(StatusCode::FORBIDDEN, "Token expired.")),
        Err(_) => Err(denied()),
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

/// One attempt: the client's headers (hop-by-hop ones gone) with the base
/// token, to the profile's origin only.
async fn send(
    served: &Served,
    method: &Method,
    target: &PathAndQuery,
    headers: &HeaderMap,
    body: &Bytes,
    current: &Current,
) -> Result<Response<upstream::Body>, Response<Out>> {
    let mut headers = headers.clone();
    headers.insert(header::AUTHORIZATION, current.authorization.clone());
    let sent = served
        .upstream
        .send(method.clone(), target, headers, body.clone());
    let origin = &served.upstream.origin;
    match tokio::time::timeout(UPSTREAM_TIMEOUT, sent).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => {
            let why = crate::error::root_cause(&*e);
            warn!(profile = %served.name, "SeaTable at {origin} did not answer: {why}");
            Err(error(
                StatusCode::BAD_GATEWAY,
                &format!("SeaTable at {origin} did not answer: {why}"),
            ))
        }
        Err(_) => {
            warn!(profile = %served.name, "SeaTable at {origin} did not answer in time");
            Err(error(
                StatusCode::GATEWAY_TIMEOUT,
                &format!("SeaTable at {origin} did not answer in time"),
            ))
        }
    }
}

/// SeaTable's answer, its body streamed through as it arrives.
fn streamed(response: Response<upstream::Body>) -> Response<Out> {
    let (parts, body) = response.into_parts();
    passed_on(parts, Either::Right(body))
}

/// SeaTable's answer with `body`, without its hop-by-hop headers.
fn passed_on(mut head: hyper::http::response::Parts, body: Out) -> Response<Out> {
    if strip_hop_by_hop(&mut head.headers).is_err() {
        warn!(
            "SeaTable's answer had a Connection header naming more than {MAX_CONNECTION_NAMES} headers"
        );
        return error(
            StatusCode::BAD_GATEWAY,
            "SeaTable's answer could not be passed on",
        );
    }
    Response::from_parts(head, body)
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

/// Removes hop-by-hop headers, those the `Connection` header names,
/// `Upgrade` (the agent does not tunnel protocols) and `Set-Cookie` (the
/// agent's clients hold no session of SeaTable's web interface). `Err` when
/// `Connection` names more than [`MAX_CONNECTION_NAMES`].
fn strip_hop_by_hop(headers: &mut HeaderMap) -> Result<(), TooManyNames> {
    strip(headers, &[header::SET_COOKIE])
}

/// The client's headers as they go to SeaTable: without hop-by-hop headers,
/// without its `Authorization` (replaced by the base token), `Host` (that of
/// the upstream), what the client set for its own connection, and its
/// cookies (cookies for 127.0.0.1 are not SeaTable's). In place: the
/// request's own map, not a copy. `None` when `Connection` names more than
/// [`MAX_CONNECTION_NAMES`].
fn forwarded_headers(mut headers: HeaderMap) -> Option<HeaderMap> {
    strip(
        &mut headers,
        &[
            header::AUTHORIZATION,
            header::HOST,
            header::CONTENT_LENGTH,
            header::EXPECT,
            header::COOKIE,
            header::MAX_FORWARDS,
        ],
    )
    .ok()?;
    Some(headers)
}

#[derive(Debug)]
struct TooManyNames;

/// [`strip_hop_by_hop`]'s list, and the headers `also` names. The names
/// present are found in one pass over the few a message has, and only they
/// are removed: a removal by name hashes the name, and most messages carry
/// none of these but `Connection` and `Host`.
fn strip(headers: &mut HeaderMap, also: &[HeaderName]) -> Result<(), TooManyNames> {
    let mut named: Vec<HeaderName> = Vec::new();
    let listed = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty());
    for name in listed {
        if named.len() == MAX_CONNECTION_NAMES {
            return Err(TooManyNames);
        }
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            named.push(name);
        }
    }
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            HOP_BY_HOP.contains(name)
                || *name == header::UPGRADE
                || also.contains(name)
                || named.contains(name)
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
    Ok(())
}

/// No `.`/`..` segments, encoded dots or slashes, or backslashes: what
/// reaches SeaTable is the path the client named, under the same prefix.
/// Most paths have no `%`, `\` or `/.` at all, which two quick scans tell.
fn clean_path(path: &str) -> bool {
    let encoded = |w: &[u8]| {
        w[0] == b'%'
            && matches!(
                (w[1], w[2].to_ascii_lowercase()),
                (b'2', b'e' | b'f') | (b'5', b'c')
            )
    };
    let smuggled = path.contains(['%', '\\'])
        && (path.contains('\\') || path.as_bytes().windows(3).any(encoded));
    let dotted = (path.starts_with('.') || path.contains("/."))
        && path.split('/').any(|seg| seg == "." || seg == "..");
    !smuggled && !dotted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_is_not_forwarded() {
        assert!(clean_path("/api-gateway/api/v2/dtables/u/rows/"));
        assert!(clean_path("/dtable-server/api/v1/dtables/u/metadata/"));
        assert!(clean_path("/api-gateway/api/v2/dtables/u/rows/My%20Table"));
        assert!(clean_path("/api-gateway/a.b/..c/"));
        for bad in [
            "/api-gateway/../api/v2.1/admin/",
            "/api-gateway/./x",
            "/api-gateway/%2e%2e/x",
            "/api-gateway/%2E%2E/x",
            "/api-gateway/a%2fb",
            "/api-gateway/a\\..\\b",
            "/api-gateway/a%5cb",
            "/api-gateway/a%2Fb",
            "/api-gateway/%2e./x",
            "/api-gateway/..",
            "..",
            "./api-gateway/",
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
            ("cookie", "sessionid=for-127.0.0.1"),
            ("max-forwards", "0"),
        ] {
            h.append(k, HeaderValue::from_static(v));
        }
        let f = forwarded_headers(h).unwrap();
        let mut names: Vec<&str> = f.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, ["accept-encoding", "content-type", "user-agent"]);
    }

    #[test]
    fn a_connection_header_naming_too_many_is_refused() {
        let listing = |n: usize| {
            let names: Vec<String> = (0..n).map(|i| format!("x-{i}")).collect();
            let mut h = HeaderMap::new();
            h.insert(
                "connection",
                HeaderValue::from_str(&names.join(", ")).unwrap(),
            );
            h.insert("x-0", HeaderValue::from_static("1"));
            h.insert("x-keep", HeaderValue::from_static("1"));
            h
        };
        let kept = forwarded_headers(listing(MAX_CONNECTION_NAMES)).unwrap();
        assert_eq!(
            kept.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["x-keep"]
        );
        assert!(forwarded_headers(listing(MAX_CONNECTION_NAMES + 1)).is_none());
        assert!(strip_hop_by_hop(&mut listing(MAX_CONNECTION_NAMES + 1)).is_err());
        // Empty list items (`a,,b`, a trailing comma) are not names.
        let mut h = listing(0);
        let commas = ",".repeat(MAX_CONNECTION_NAMES * 2);
        h.insert(
            "connection",
            HeaderValue::from_str(&format!("x-0{commas}")).unwrap(),
        );
        assert!(strip_hop_by_hop(&mut h).is_ok());
        assert!(!h.contains_key("x-0"));
    }

    #[test]
    fn answers_lose_hop_by_hop_headers_and_cookies() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("Connection", "Keep-Alive, X-Trace"),
            ("x-trace", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("content-type", "application/json"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ] {
            h.append(k, HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut h).unwrap();
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort();
        // Cookies of SeaTable's are not for the agent's clients.
        assert_eq!(names, ["content-type"]);
        // Nothing to strip: nothing changes.
        let before = h.clone();
        strip_hop_by_hop(&mut h).unwrap();
        assert_eq!(h, before);
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
