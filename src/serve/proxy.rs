//! The API proxy: requests under `/api-gateway/`, `/dtable-server/` and
//! `/dtable-db/` that carry a session token go to the session's profile's
//! SeaTable origin — that origin only, the path re-rooted on it — with the
//! real base token in place of the session token. Responses stream back.
//!
//! Request bodies are read whole first (up to [`MAX_REQUEST_BODY`]) so that
//! a request can be sent twice: when SeaTable answers 403 `Token expired.`
//! (the token was revoked, or clocks disagree) — or 401, as other servers
//! and proxies in front of SeaTable say it — the profile's token is
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
use bytes::BytesMut;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::http::uri::PathAndQuery;
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{info, warn};

use super::headers::{self, MAX_CONNECTION_NAMES};
use super::reply::{self, Out, error};
use super::session::{self, Verdict};
use super::state::{Agent, Forced, MIN_FORCED_INTERVAL, Profiles, Served};
use super::upstream;

/// Request bodies beyond this are refused with 413. SeaTable's own limits
/// (1000 rows a call) stay well under it.
pub const MAX_REQUEST_BODY: usize = 10 * 1024 * 1024;
/// Request bodies held at once, all requests together: two of the largest
/// and some. The agent's memory stays within a sidecar's small limit
/// however many clients send big bodies at once; past it, 503.
pub const MAX_BODIES_HELD: usize = 2 * MAX_REQUEST_BODY + 4 * 1024 * 1024;
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

pub async fn forward(req: Request<Incoming>, agent: &Agent) -> Response<Out> {
    let response = forward_once_or_twice(req, agent).await;
    agent.metrics.proxied(response.status().as_u16());
    response
}

async fn forward_once_or_twice(req: Request<Incoming>, agent: &Agent) -> Response<Out> {
    let (parts, body) = req.into_parts();
    if !headers::clean_path(parts.uri.path()) {
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
    // A client with a session: its connection leaves the keyless budget.
    super::budget::promote(&parts.extensions);
    let held = match read_body(body, &parts.headers, &agent.bodies).await {
        Ok(held) => held,
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
            None => return reply::unavailable(&served.name),
        },
    };
    let method = parts.method;
    let Some(outgoing) = headers::forwarded_headers(parts.headers) else {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("the Connection header names more than {MAX_CONNECTION_NAMES} headers"),
        );
    };

    let body = &held.bytes;
    let response = match send(
        &served,
        &method,
        &target,
        &outgoing,
        body,
        &current.authorization,
    )
    .await
    {
        Ok(response) => response,
        Err(failed) => return failed,
    };
    let status = response.status();
    if status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED {
        return streamed(response);
    }
    // A 403 or 401: small; read it to see whether SeaTable says the token
    // expired (a 401 always does: it is how other servers and proxies say it).
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
    if !says_expired(status, &text) {
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
            return reply::unavailable(&served.name);
        }
        Err(err) => {
            served
                .metrics
                .refresh_failures
                .fetch_add(1, Ordering::Relaxed);
            warn!(profile = %served.name, "refresh after SeaTable said the base token expired failed: {}", crate::error::one_line(&err));
            return reply::unavailable(&served.name);
        }
    };
    served.metrics.replays.fetch_add(1, Ordering::Relaxed);
    info!(profile = %served.name, "SeaTable said the base token expired; replaying the request with a new one");
    match send(
        &served,
        &method,
        &target,
        &outgoing,
        body,
        &current.authorization,
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
    match profiles.session(token, crate::time::now()) {
        Ok(served) => Ok(served),
        Err(Verdict::Expired) => Err(error(StatusCode::FORBIDDEN, "Token expired.")),
        Err(_) => Err(denied()),
    }
}

/// A request body read whole, and its share of the bytes that bodies may
/// hold at once ([`MAX_BODIES_HELD`]), given back when the request is done.
struct Held {
    bytes: Bytes,
    _share: Option<OwnedSemaphorePermit>,
}

/// The whole request body, bounded in size and time, and in what all
/// bodies held at once may take: past that, 503 and the client tries again.
async fn read_body(
    body: Incoming,
    headers: &HeaderMap,
    held: &Arc<Semaphore>,
) -> Result<Held, Response<Out>> {
    if body.is_end_stream() {
        return Ok(Held {
            bytes: Bytes::new(),
            _share: None,
        });
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
    let busy = || {
        info!("refused a request body: bodies held for other requests fill the agent's share");
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "seatable-cred serve holds as many request bodies as it may; try again in a moment",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    };
    if declared.is_some_and(|n| n > MAX_REQUEST_BODY as u64) {
        info!("refused a request body of {} bytes", declared.unwrap_or(0));
        return Err(too_large());
    }
    // A declared length is reserved at once; a chunked body as it comes.
    let mut share = match declared {
        Some(n) => Some(
            held.clone()
                .try_acquire_many_owned(n as u32)
                .map_err(|_| busy())?,
        ),
        None => None,
    };
    let mut bytes = BytesMut::with_capacity(declared.unwrap_or(0) as usize);
    let read = async {
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                info!("a client's request body broke off: {e}");
                error(
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read",
                )
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if bytes.len() + data.len() > MAX_REQUEST_BODY
                || declared.is_some_and(|n| (bytes.len() + data.len()) as u64 > n)
            {
                info!("refused a request body over the limit");
                return Err(too_large());
            }
            if declared.is_none() {
                let more = held
                    .clone()
                    .try_acquire_many_owned(data.len() as u32)
                    .map_err(|_| busy())?;
                match &mut share {
                    Some(share) => share.merge(more),
                    None => share = Some(more),
                }
            }
            bytes.extend_from_slice(&data);
        }
        Ok(())
    };
    match tokio::time::timeout(BODY_READ_TIMEOUT, read).await {
        Ok(Ok(())) => Ok(Held {
            bytes: bytes.freeze(),
            _share: share,
        }),
        Ok(Err(refusal)) => Err(refusal),
        Err(_) => {
            info!("a client took too long to send its request body");
            Err(error(
                StatusCode::REQUEST_TIMEOUT,
                "the request body took too long",
            ))
        }
    }
}

/// One attempt: the client's headers (hop-by-hop ones gone) with
/// `authorization` (the base token's; for the file endpoints the API
/// token's), to the profile's origin only.
pub(super) async fn send(
    served: &Served,
    method: &Method,
    target: &PathAndQuery,
    headers: &HeaderMap,
    body: &Bytes,
    authorization: &HeaderValue,
) -> Result<Response<upstream::Body>, Response<Out>> {
    let mut headers = headers.clone();
    headers.insert(header::AUTHORIZATION, authorization.clone());
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
pub(super) fn streamed(response: Response<upstream::Body>) -> Response<Out> {
    let (parts, body) = response.into_parts();
    passed_on(parts, Either::Right(body))
}

/// SeaTable's answer with `body`, without its hop-by-hop headers.
fn passed_on(mut head: hyper::http::response::Parts, body: Out) -> Response<Out> {
    if headers::strip_hop_by_hop(&mut head.headers).is_err() {
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

/// Whether SeaTable's refusal says the base token expired: any 401, or a
/// 403 whose text is SeaTable's "Token expired.".
fn says_expired(status: StatusCode, body: &[u8]) -> bool {
    status == StatusCode::UNAUTHORIZED || (status == StatusCode::FORBIDDEN && token_expired(body))
}

/// Whether SeaTable's answer is its "Token expired." refusal (read by the
/// one parser of its error text, [`crate::seatable::ErrorBody`]).
fn token_expired(body: &[u8]) -> bool {
    crate::seatable::ErrorBody::parse(body)
        .error_msg()
        .is_some_and(|msg| msg.trim() == "Token expired.")
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_401_or_seatables_403_says_the_token_expired() {
        let expired = br#"{"error_msg":"Token expired."}"#;
        assert!(says_expired(StatusCode::FORBIDDEN, expired));
        assert!(says_expired(StatusCode::UNAUTHORIZED, expired));
        assert!(says_expired(StatusCode::UNAUTHORIZED, b""));
        assert!(says_expired(
            StatusCode::UNAUTHORIZED,
            br#"{"detail":"Invalid token"}"#
        ));
        assert!(!says_expired(
            StatusCode::FORBIDDEN,
            br#"{"error_msg":"Permission denied."}"#
        ));
        assert!(!says_expired(StatusCode::NOT_FOUND, expired));
    }
}
