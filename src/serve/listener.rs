//! The listener: accepts connections and serves HTTP/1.1 on them, bounded
//! against bad clients so that one never harms the others:
//!
//! * a **connection cap** — past it, a connection gets a short 503 and is
//!   closed, rather than waiting unseen in the kernel's backlog;
//! * a **header read timeout** — a slow-loris client (or an idle keep-alive
//!   connection) is closed when a request's head has not arrived in time;
//! * **bounded heads** — oversized request lines and headers get 431/400
//!   from hyper; request bodies are capped by the proxy;
//! * errors — malformed requests, timeouts, clients that go away mid-stream —
//!   end that connection with one log line.
//!
//! Shutdown stops accepting, lets requests in flight finish within
//! [`DRAIN`], and reports how many connections it had to cut.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use super::state::Agent;

/// A request's head must arrive within this (also the idle keep-alive limit).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests in flight at shutdown get this long to finish.
pub const DRAIN: Duration = Duration::from_secs(10);
/// Request line and headers beyond this get 431.
const MAX_HEAD: usize = 64 * 1024;

/// Serves until `stop` resolves; returns the number of connections still
/// open when the drain time ran out.
pub async fn serve(
    listener: TcpListener,
    agent: Arc<Agent>,
    max_connections: usize,
    stop: impl Future<Output = ()>,
) -> usize {
    let slots = Arc::new(Semaphore::new(max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_header_size(MAX_HEAD)
        .keep_alive(true);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, or a connection reset before accept:
                    // pause briefly instead of spinning.
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            agent
                .metrics
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            warn!(%peer, "refused a connection: {max_connections} are open (--max-connections)");
            tokio::spawn(refuse(stream));
            continue;
        };
        // Requests seen on this connection: a header timeout after some is
        // an idle keep-alive connection closing, not a slow client.
        let requests = Arc::new(AtomicU64::new(0));
        let service = {
            let agent = agent.clone();
            let requests = requests.clone();
            hyper::service::service_fn(move |req| {
                requests.fetch_add(1, Ordering::Relaxed);
                super::handler::handle(req, agent.clone())
            })
        };
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        let agent = agent.clone();
        tokio::spawn(async move {
            agent
                .metrics
                .connections_open
                .fetch_add(1, Ordering::Relaxed);
            if let Err(e) = connection.await {
                log_connection_error(&e, peer, requests.load(Ordering::Relaxed));
            }
            agent
                .metrics
                .connections_open
                .fetch_sub(1, Ordering::Relaxed);
            drop(slot);
        });
    }
    drop(listener);
    let open = graceful.count();
    if open > 0 {
        info!("stopped accepting; waiting for {open} connections to finish");
    }
    match tokio::time::timeout(DRAIN, graceful.shutdown()).await {
        Ok(()) => 0,
        Err(_) => {
            let left = agent.metrics.connections_open.load(Ordering::Relaxed) as usize;
            warn!(
                "{left} connections were still busy after {}s; closing them",
                DRAIN.as_secs()
            );
            left
        }
    }
}

/// Past the cap: a 503 in SeaTable's error shape, then close.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str =
        r#"{"error_msg":"seatable-cred serve has too many connections open; try again later"}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// One line per connection that ended in an error, saying why.
fn log_connection_error(e: &hyper::Error, peer: SocketAddr, requests: u64) {
    if e.is_timeout() && requests > 0 {
        debug!(%peer, "closed an idle keep-alive connection");
        return;
    }
    let why = if e.is_parse_too_large() {
        "request head too large".to_string()
    } else if e.is_parse() {
        "malformed request".to_string()
    } else if e.is_timeout() {
        format!(
            "no complete request head within {}s",
            HEADER_READ_TIMEOUT.as_secs()
        )
    } else if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        "the client went away mid-request".to_string()
    } else if e.is_body_write_aborted() || e.is_user() {
        format!("the answer could not be finished: {e}")
    } else {
        format!("{e}")
    };
    if e.is_user() {
        warn!(%peer, "connection closed: {why}");
    } else {
        info!(%peer, "connection closed: {why}");
    }
}
