//! The HTTP front's router: the local exchange, the API proxy, SeaTable's
//! file endpoints (by their exact paths), `/health` and `/metrics`;
//! everything else is SeaTable's 404. Requests in absolute
//! or authority form (`GET http://elsewhere/…`, `CONNECT host:port`) are
//! refused before routing: the agent is never an open proxy.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tracing::debug;

use super::reply::{Out, error};
use super::state::Agent;

/// Paths forwarded to SeaTable.
pub const PROXIED: [&str; 3] = ["/api-gateway/", "/dtable-server/", "/dtable-db/"];
const EXCHANGE: &str = "/api/v2.1/dtable/app-access-token/";

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
    if let Some(endpoint) = super::files::endpoint(path) {
        return super::files::forward(req, agent, endpoint).await;
    }
    let now = crate::time::now();
    match (req.method(), path) {
        (&Method::GET, "/health") => super::health::answer(&agent.profiles(), now),
        (&Method::GET, "/metrics") => {
            let profiles = agent.profiles();
            let names: Vec<&str> = profiles.list.iter().map(|s| s.name.as_str()).collect();
            agent.metrics.answer(&names, now)
        }
        _ => error(StatusCode::NOT_FOUND, "Not found."),
    }
}
