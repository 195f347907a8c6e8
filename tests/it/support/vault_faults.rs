//! A TCP forwarder in front of the real OpenBao that can answer a
//! connection's first request itself — a 5xx, a 429, "Vault is sealed", a
//! refusal — and close it, so that a retry has to come back on a new
//! connection; or hold a connection until the test lets it through (to
//! change something between the helper's reading its settings and its
//! first request reaching OpenBao). It counts connections: how often the
//! helper asked.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// An answer in Vault's shape: a status and `{"errors": [...]}`.
#[derive(Clone, Debug)]
pub struct VaultFault {
    pub status: u16,
    pub error: &'static str,
}

impl VaultFault {
    pub const fn new(status: u16, error: &'static str) -> VaultFault {
        VaultFault { status, error }
    }
}

/// A held connection, seen from the test: it has arrived, and may go on.
pub struct Gate {
    arrived: mpsc::Receiver<()>,
    release: mpsc::Sender<()>,
}

impl Gate {
    /// Waits until the held connection has arrived; fails the test after `limit`.
    #[track_caller]
    pub fn wait_arrived(&self, limit: Duration) {
        self.arrived
            .recv_timeout(limit)
            .unwrap_or_else(|_| panic!("no connection arrived within {limit:?}"));
    }

    /// Lets the held connection through to OpenBao.
    pub fn release(self) {
        let _ = self.release.send(());
    }
}

/// The forwarder's side of a [`Gate`].
struct Held {
    arrived: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
}

pub struct VaultFaults {
    pub url: String,
    faults: Arc<Mutex<VecDeque<VaultFault>>>,
    /// The `version` that `GET /v1/sys/health` answers instead of the server's.
    health_version: Arc<Mutex<Option<String>>>,
    holds: Arc<Mutex<VecDeque<Held>>>,
    connections: Arc<AtomicUsize>,
    faulted: Arc<AtomicUsize>,
}

impl VaultFaults {
    /// Forwards 127.0.0.1:<free port> to `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> VaultFaults {
        let target = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let faults = Arc::new(Mutex::new(VecDeque::new()));
        let health_version = Arc::new(Mutex::new(None::<String>));
        let connections = Arc::new(AtomicUsize::new(0));
        let faulted = Arc::new(AtomicUsize::new(0));
        let holds: Arc<Mutex<VecDeque<Held>>> = Arc::new(Mutex::new(VecDeque::new()));
        let (f, c, n) = (faults.clone(), connections.clone(), faulted.clone());
        let (h, hd) = (health_version.clone(), holds.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(client) = stream else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let fault = f.lock().unwrap().pop_front();
                let version = h.lock().unwrap().clone();
                let held = hd.lock().unwrap().pop_front();
                let (target, n) = (target.clone(), n.clone());
                std::thread::spawn(move || match fault {
                    Some(fault) => {
                        n.fetch_add(1, Ordering::SeqCst);
                        answer(client, &fault);
                    }
                    None if version.is_some() && asks_health(&client) => {
                        health(client, &target, version.as_deref().unwrap());
                    }
                    None => {
                        if let Some(held) = held {
                            let _ = held.arrived.send(());
                            // Bounded: a test that never releases fails on
                            // its own; the connection goes on regardless.
                            let _ = held.release.recv_timeout(Duration::from_secs(120));
                        }
                        if let Ok(server) = TcpStream::connect(&target) {
                            pipe(client, server);
                        }
                    }
                });
            }
        });
        VaultFaults {
            url,
            faults,
            health_version,
            holds,
            connections,
            faulted,
        }
    }

    /// Holds the next connection (that no fault answers) until the gate
    /// releases it.
    pub fn hold_next(&self) -> Gate {
        let (arrived_tx, arrived) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        self.holds.lock().unwrap().push_back(Held {
            arrived: arrived_tx,
            release: release_rx,
        });
        Gate { arrived, release }
    }

    /// Queues faults for the next connections, in order.
    pub fn push(&self, faults: impl IntoIterator<Item = VaultFault>) {
        self.faults.lock().unwrap().extend(faults);
    }

    /// `GET /v1/sys/health` answers the server's health with this `version`.
    pub fn set_health_version(&self, version: &str) {
        *self.health_version.lock().unwrap() = Some(version.to_string());
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Connections answered with a fault.
    pub fn faulted(&self) -> usize {
        self.faulted.load(Ordering::SeqCst)
    }
}

/// Reads the request, answers with the fault and closes.
fn answer(stream: TcpStream, fault: &VaultFault) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    let _ = reader.read_exact(&mut body);
    let json = format!("{{\"errors\":[\"{}\"]}}", fault.error);
    let mut out = stream;
    let _ = out.write_all(
        format!(
            "HTTP/1.1 {} Fault\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
            fault.status,
            json.len()
        )
        .as_bytes(),
    );
    let _ = out.shutdown(Shutdown::Both);
}

/// Whether the connection's first request is for `/v1/sys/health`
/// (looked at without taking it from the socket).
fn asks_health(client: &TcpStream) -> bool {
    let mut first = [0u8; 32];
    let _ = client.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    let n = client.peek(&mut first).unwrap_or(0);
    first[..n].starts_with(b"GET /v1/sys/health")
}

/// Answers the health request with the server's own answer, its
/// `version` replaced.
fn health(client: TcpStream, target: &str, version: &str) {
    let mut server = TcpStream::connect(target).unwrap();
    write!(
        server,
        "GET /v1/sys/health HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    server.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().to_string();
    let mut value: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    value["version"] = serde_json::Value::String(version.to_string());
    let body = value.to_string();
    // The request itself, read and dropped.
    let mut reader = BufReader::new(client.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim_end().is_empty() {
            break;
        }
    }
    let mut out = client;
    let _ = write!(
        out,
        "{status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = out.shutdown(Shutdown::Both);
}

fn pipe(a: TcpStream, b: TcpStream) {
    let (a2, b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    std::thread::spawn(move || copy(a, b));
    std::thread::spawn(move || copy(b2, a2));
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}
