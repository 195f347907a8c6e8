//! A forwarder in front of Vault that can lose the answer of a write after
//! Vault took it — what a Raft cluster losing its leader while committing
//! looks like to a client. One request per connection (it asks Vault to
//! close), which is all the helper's client needs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct FlakyVault {
    pub url: String,
    drop_writes: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

impl FlakyVault {
    /// Forwards 127.0.0.1:<free port> to `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> FlakyVault {
        let target = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let drop_writes = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let (d, n) = (drop_writes.clone(), dropped.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (target, d, n) = (target.clone(), d.clone(), n.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, &target, &d, &n);
                });
            }
        });
        FlakyVault {
            url,
            drop_writes,
            dropped,
        }
    }

    /// The next `n` KV writes reach Vault, but their answers are lost.
    pub fn lose_write_answers(&self, n: usize) {
        self.drop_writes.store(n, Ordering::SeqCst);
    }

    pub fn lost(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
}

fn serve(
    client: TcpStream,
    target: &str,
    drop_writes: &AtomicUsize,
    dropped: &AtomicUsize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    let mut length = 0usize;
    let mut first = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if first.is_empty() {
            first = line.clone();
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("connection:") {
            continue;
        }
        head.extend_from_slice(line.as_bytes());
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let mut words = first.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let write = (method == "POST" || method == "PUT") && path.contains("/data/");
    let lose = write
        && drop_writes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    let mut upstream = TcpStream::connect(target)?;
    upstream.write_all(&head)?;
    upstream.write_all(&body)?;
    let mut answer = Vec::new();
    upstream.read_to_end(&mut answer)?;
    let mut client = client;
    if lose {
        dropped.fetch_add(1, Ordering::SeqCst);
    } else {
        client.write_all(&answer)?;
    }
    client.shutdown(Shutdown::Both)
}
