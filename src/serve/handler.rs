//! The HTTP front's router: the local exchange, the API proxy, `/health`
//! and `/metrics`; everything else is SeaTable's 404. Requests in absolute
//! or authority form (`GET http://elsewhere/…`, `CONNECT host:port`) are
//! refused before routing: the agent is never an open proxy.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tracing::debug;

use super::state::Agent;

/// Paths forwarded to SeaTable.
pub const PROXIED: [&str; 3] = ["/api-gateway/", "/dtable-server/", "/dtable-db/"];
const EXCHANGE: &str = "/api/v2.1/dtable/app-access-token/";

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body: one the agent made (`Left`), or SeaTable's, streamed
/// through (`Right`).
pub type Out = Either<Full<Bytes>, super::upstream::Body>;

/// A JSON answer.
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Out> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    bytes(status, "application/json", body.into())
}

/// SeaTable's error shape: `{"error_msg": "…"}`.
pub fn error(status: StatusCode, message: &str) -> Response<Out> {
    json(status, &serde_json::json!({ "error_msg": message }))
}

pub fn bytes(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Out> {
    let mut response = Response::new(Either::Left(Full::new(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub async fn handle(
    req: Request<Incoming>,
    agent: Arc<Agent>,
) -> Result<Response<Out>, Infallible> {
    // What the debug line shows, taken only when it is shown: copying every
    // request's path is a measurable part of a proxied request's cost.
    // Only the path is logged: queries may carry row data.
    let seen = tracing::enabled!(tracing::Level::DEBUG).then(|| {
        (
            Instant::now(),
            req.method().clone(),
            req.uri().path().to_string(),
        )
    });
    let response = route(req, &agent).await;
    if let Some((started, method, path)) = seen {
        debug!(
            method = %method,
            path = %path,
            status = response.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "answered"
        );
    }
    Ok(response)
}

async fn route(req: Request<Incoming>, agent: &Agent) -> Response<Out> {
    if req.method() == Method::CONNECT || req.uri().authority().is_some() {
        return error(
            StatusCode::BAD_REQUEST,
            "seatable-cred serve is not a forward proxy: send requests for its own paths only",
        );
    }
    let path = req.uri().path();
    if path == EXCHANGE {
        return super::exchange::answer(req, agent).await;
    }
    if PROXIED.iter().any(|p| path.starts_with(p)) {
        return super::proxy::forward(req, agent).await;
    }
    match (req.method(), path) {
        (&Method::GET, "/health") => {
            let health = super::health::check(&agent.profiles(), crate::time::now());
            let status = if health.status == "ok" {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json(status, &health)
        }
        (&Method::GET, "/metrics") => {
            let profiles = agent.profiles();
            let names: Vec<&str> = profiles.list.iter().map(|s| s.name.as_str()).collect();
            let text = agent.metrics.render(&names, crate::time::now());
            bytes(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                text.into(),
            )
        }
        _ => error(StatusCode::NOT_FOUND, "Not found."),
    }
}
