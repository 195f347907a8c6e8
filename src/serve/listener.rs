//! The listener: accepts connections and serves HTTP/1.1 on them, bounded
//! against bad clients so that one never harms the others:
//!
//! * **the peer's user** — a connection from a user the agent does not
//!   serve ([`super::peer`]) is closed at once, before anything is read:
//!   one rate-limited log line, no one's budget;
//! * **budgets** ([`super::budget`]) — connections that never showed a key
//!   have a small budget and a short idle limit of their own; past
//!   `--max-connections`, a connection gets a short 503 and is closed,
//!   rather than waiting unseen in the kernel's backlog;
//! * **a header read timeout** — a slow-loris client (or an idle keep-alive
//!   connection) is closed when a request's head has not arrived in time;
//! * **bounded heads** — oversized request lines and headers get 431/400
//!   from hyper; request bodies are bounded by the proxy;
//! * errors — malformed requests, timeouts, clients that go away mid-stream —
//!   end that connection with one log line.
//!
//! Shutdown stops accepting, lets requests in flight finish within
//! [`DRAIN`], and reports how many connections it had to cut.

use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::budget::{Admitted, Conn, KEYLESS_IDLE, Table};
use super::listen::{Listener, Stream};
use super::peer::{Peer, TcpOwners, Trust};
use super::state::Agent;

/// A request's head must arrive within this (also the idle keep-alive limit
/// of connections that showed a key).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests in flight at shutdown get this long to finish.
pub const DRAIN: Duration = Duration::from_secs(10);
/// Request line and headers beyond this get 431.
const MAX_HEAD: usize = 64 * 1024;
/// Refusals of one kind are logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// A busy keyless connection is looked at again after this.
const RECHECK: Duration = Duration::from_millis(250);
/// At shutdown, a connection that has not begun its first request gets this
/// long to (it was accepted for it: it is served, not dropped) …
const FIRST_REQUEST: Duration = Duration::from_secs(1);
/// … looked at this often.
const POLL: Duration = Duration::from_millis(20);

/// Serves until `stop` resolves; returns the number of connections still
/// open when the drain time ran out.
pub async fn serve(
    listener: Listener,
    agent: Arc<Agent>,
    max_connections: usize,
    trust: Trust,
    stop: impl Future<Output = ()>,
) -> usize {
    let table = Table::new(max_connections);
    let owners = TcpOwners::default();
    let (strangers, full) = (Throttle::default(), Throttle::default());
    let (shutdown, shutting_down) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_header_size(MAX_HEAD)
        .keep_alive(true);
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(stream) => stream,
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
        let (peer, from, label) = identify(&stream, &owners);
        if let Err(refusal) = trust.admit(&peer, from) {
            agent.metrics.peers_refused.fetch_add(1, Ordering::Relaxed);
            if let Some(more) = strangers.note() {
                warn!(peer = %label, "refused a connection {refusal}{}", also(more));
            }
            continue;
        }
        if let Stream::Tcp(tcp) = &stream {
            let _ = tcp.set_nodelay(true);
        }
        let conn = match table.admit(stream.dup()) {
            Admitted::Yes(conn, evicted) => {
                if evicted > 0 {
                    agent
                        .metrics
                        .keyless_closed
                        .fetch_add(evicted as u64, Ordering::Relaxed);
                    debug!("closed {evicted} idle connection(s) without a key to make room");
                }
                conn
            }
            Admitted::Full => {
                agent
                    .metrics
                    .connections_refused
                    .fetch_add(1, Ordering::Relaxed);
                if let Some(more) = full.note() {
                    warn!(
                        peer = %label,
                        "refused a connection: {max_connections} are open (--max-connections){}",
                        also(more)
                    );
                }
                tokio::spawn(refuse(stream));
                continue;
            }
        };
        let connection = Connection {
            agent: agent.clone(),
            table: table.clone(),
            conn,
            label,
            shutdown: shutting_down.clone(),
        };
        tokio::spawn(connection.run(http.clone(), stream));
    }
    drop(listener);
    let _ = shutdown.send(true);
    let (keyed, keyless) = table.counts();
    if keyed + keyless > 0 {
        info!(
            "stopped accepting; waiting for {} connections to finish",
            keyed + keyless
        );
    }
    let drained = tokio::time::timeout(DRAIN, async {
        loop {
            let closed = table.closed.notified();
            let (keyed, keyless) = table.counts();
            if keyed + keyless == 0 {
                break;
            }
            closed.await;
        }
    })
    .await;
    match drained {
        Ok(()) => 0,
        Err(_) => {
            let (keyed, keyless) = table.counts();
            let left = keyed + keyless;
            warn!(
                "{left} connections were still busy after {}s; closing them",
                DRAIN.as_secs()
            );
            left
        }
    }
}

/// Who is on the other end, where it connects from, and how the log names it.
fn identify(stream: &Stream, owners: &TcpOwners) -> (Peer, IpAddr, String) {
    match stream {
        Stream::Tcp(tcp) => match (tcp.local_addr(), tcp.peer_addr()) {
            (Ok(local), Ok(peer)) => (owners.of(local, peer), peer.ip(), peer.to_string()),
            // Gone already.
            _ => (Peer::Orphaned, Ipv4Addr::LOCALHOST.into(), "?".into()),
        },
        Stream::Unix(_) => {
            let peer = super::peer::of_unix(stream.raw_fd()).unwrap_or(Peer::Orphaned);
            (peer, Ipv4Addr::LOCALHOST.into(), "unix socket".into())
        }
    }
}

/// ` (and N more since the last line)`.
fn also(more: u64) -> String {
    if more == 0 {
        String::new()
    } else {
        format!(" (and {more} more since the last such line)")
    }
}

/// At most one line every [`LOG_EVERY`] of a kind that an attacker could
/// repeat at will; the lines in between are counted.
#[derive(Default)]
struct Throttle {
    last: Mutex<Option<Instant>>,
    skipped: AtomicU64,
}

impl Throttle {
    /// `Some(skipped since the last line)` when a line is due.
    fn note(&self) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| at.elapsed() < LOG_EVERY) {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(Instant::now());
        Some(self.skipped.swap(0, Ordering::Relaxed))
    }
}

/// One admitted connection.
struct Connection {
    agent: Arc<Agent>,
    table: Arc<Table>,
    conn: Arc<Conn>,
    label: String,
    shutdown: watch::Receiver<bool>,
}

impl Connection {
    async fn run(mut self, http: hyper::server::conn::http1::Builder, stream: Stream) {
        let metrics = &self.agent.metrics;
        metrics.connections_open.fetch_add(1, Ordering::Relaxed);
        // Requests seen on this connection: a header timeout after some is
        // an idle keep-alive connection closing, not a slow client.
        let requests = Arc::new(AtomicU64::new(0));
        let service = {
            let (agent, conn, requests) = (self.agent.clone(), self.conn.clone(), requests.clone());
            hyper::service::service_fn(move |mut req| {
                requests.fetch_add(1, Ordering::Relaxed);
                conn.begin();
                req.extensions_mut().insert(conn.clone());
                let (agent, conn) = (agent.clone(), conn.clone());
                async move {
                    let answer = super::handler::handle(req, agent).await;
                    conn.end();
                    answer
                }
            })
        };
        let io = TokioIo::new(Counted {
            inner: stream,
            conn: self.conn.clone(),
        });
        let connection = http.serve_connection(io, service);
        tokio::pin!(connection);
        // Once asked to close: by when it must have (an answer a client
        // does not read cannot be finished).
        let mut closing: Option<tokio::time::Instant> = None;
        // At shutdown, a connection accepted a moment ago whose request has
        // not been read yet gets it served first: until when it may take.
        let mut first_request: Option<tokio::time::Instant> = None;
        let result = loop {
            // A keyless connection is looked at again when it may have
            // been quiet for the idle limit — and, while it is busy, now
            // and then, never in a tight loop.
            let wait = KEYLESS_IDLE
                .saturating_sub(self.conn.quiet_for())
                .max(RECHECK);
            let watch_idle = closing.is_none() && !self.conn.is_keyed();
            let give_up = closing.unwrap_or_else(|| tokio::time::Instant::now() + DRAIN);
            tokio::select! {
                result = connection.as_mut() => break result,
                () = self.conn.close.notified(), if closing.is_none() => {
                    closing = Some(tokio::time::Instant::now() + KEYLESS_IDLE);
                    connection.as_mut().graceful_shutdown();
                }
                _ = self.shutdown.changed(), if closing.is_none() && first_request.is_none() => {
                    if self.conn.has_begun() {
                        closing = Some(tokio::time::Instant::now() + DRAIN);
                        connection.as_mut().graceful_shutdown();
                    } else {
                        first_request = Some(tokio::time::Instant::now() + FIRST_REQUEST);
                    }
                }
                () = tokio::time::sleep(POLL), if closing.is_none() && first_request.is_some() => {
                    let late = first_request.is_some_and(|by| tokio::time::Instant::now() >= by);
                    if self.conn.has_begun() || late {
                        first_request = None;
                        closing = Some(tokio::time::Instant::now() + DRAIN);
                        connection.as_mut().graceful_shutdown();
                    }
                }
                () = tokio::time::sleep_until(give_up), if closing.is_some() => break Ok(()),
                () = tokio::time::sleep(wait), if watch_idle => {
                    if self.conn.idle_too_long() {
                        // Nothing in flight, nothing read for the limit:
                        // nothing to finish.
                        self.closed_idle(requests.load(Ordering::Relaxed));
                        break Ok(());
                    }
                }
            }
        };
        if let Err(e) = result {
            log_connection_error(&e, &self.label, requests.load(Ordering::Relaxed));
        }
        self.table.release(&self.conn);
        metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// A keyless connection quiet for the idle limit is closed; a request
    /// head begun and not finished is a slow client, logged as such.
    fn closed_idle(&self, requests: u64) {
        self.agent
            .metrics
            .keyless_closed
            .fetch_add(1, Ordering::Relaxed);
        if self.conn.head_begun() {
            info!(
                peer = %self.label,
                "connection closed: no complete request head within {}s",
                KEYLESS_IDLE.as_secs()
            );
        } else {
            debug!(
                peer = %self.label,
                requests,
                "closed a connection that showed no key: idle for {}s",
                KEYLESS_IDLE.as_secs()
            );
        }
    }
}

/// The connection's stream, telling its [`Conn`] what it reads.
struct Counted {
    inner: Stream,
    conn: Arc<Conn>,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            this.conn.read(read);
        }
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Past the cap: a 503 in SeaTable's error shape, then close.
async fn refuse(mut stream: Stream) {
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
fn log_connection_error(e: &hyper::Error, peer: &str, requests: u64) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_logged_now_and_then_and_counted_between() {
        let t = Throttle::default();
        assert_eq!(t.note(), Some(0));
        assert_eq!(t.note(), None);
        assert_eq!(t.note(), None);
        *t.last.lock().unwrap() = Some(Instant::now() - LOG_EVERY);
        assert_eq!(t.note(), Some(2));
    }
}
