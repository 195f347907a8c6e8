//! Read-your-writes on a Raft cluster (docs/cache.md, "On a highly available
//! Vault"): every request sends back the newest storage index the helper has
//! seen (`X-Vault-Index`), with `X-Vault-Inconsistent: forward-active-node`.
//!
//! OpenBao's dev server keeps no Raft index, so a recording proxy in front
//! of it stamps each answer with one, as a cluster's nodes do, and records
//! the headers of every request — the wire the helper writes. (What the
//! headers achieve on a real cluster is `tests/raft.rs`' part.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use crate::support::{Case, shared};

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
struct Seen {
    line: String,
    /// `x-vault-index`, `x-vault-inconsistent`.
    index: Option<String>,
    inconsistent: Option<String>,
    /// The index stamped on its answer.
    answered: String,
}

/// Forwards each connection's one request to `upstream` and stamps the
/// answer with `X-Vault-Index: index-<n>` (and `Connection: close`, so that
/// every request comes on a connection of its own).
fn start(upstream: &str) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let target = upstream.trim_start_matches("http://").to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            // One at a time: the order of the log is the order of the wire.
            relay(client, &target, &log);
        }
    });
    (url, seen)
}

fn relay(client: TcpStream, target: &str, log: &Mutex<Vec<Seen>>) -> Option<()> {
    let n = log.lock().unwrap().len();
    let mut reader = BufReader::new(client.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let line = line.trim_end().to_string();
    if line.is_empty() {
        return None;
    }
    let (mut head, mut length) = (format!("{line}\r\n"), 0usize);
    let (mut index, mut inconsistent) = (None, None);
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':')?;
        let (name, value) = (name.to_ascii_lowercase(), value.trim().to_string());
        match name.as_str() {
            "content-length" => length = value.parse().ok()?,
            "transfer-encoding" => panic!("a chunked request body: {line}"),
            "x-vault-index" => index = Some(value.clone()),
            "x-vault-inconsistent" => inconsistent = Some(value.clone()),
            _ => {}
        }
        // The dev server keeps no Raft index: the stamped ones stay here.
        if !matches!(
            name.as_str(),
            "connection" | "x-vault-index" | "x-vault-inconsistent"
        ) {
            head.push_str(&format!("{h}\r\n"));
        }
    }
    head.push_str("connection: close\r\n\r\n");
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    let mut server = TcpStream::connect(target).ok()?;
    server.write_all(head.as_bytes()).ok()?;
    server.write_all(&body).ok()?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).ok()?;
    let answered = format!("index-{n}");
    let end = answer.windows(2).position(|w| w == b"\r\n")? + 2;
    let mut out = answer[..end].to_vec();
    out.extend_from_slice(format!("X-Vault-Index: {answered}\r\n").as_bytes());
    out.extend_from_slice(&answer[end..]);
    // Recorded before the client has its answer: once the helper exits,
    // every request it made is in the log.
    log.lock().unwrap().push(Seen {
        line,
        index,
        inconsistent,
        answered,
    });
    let mut client = client;
    let _ = client.write_all(&out);
    let _ = client.shutdown(Shutdown::Both);
    Some(())
}

#[test]
fn every_request_sends_back_the_newest_index_seen() {
    let mut case = Case::new();
    let (url, seen) = start(&shared().bao.addr);
    // The shared tier: reads, check-and-set writes (claim, entry), reads.
    case.set("VAULT_ADDR", url)
        .set("SEATABLE_CRED_CACHE", "vault")
        .set(
            "SEATABLE_CRED_SHARED_CACHE",
            format!(
                "secret/seatable-cred/cache/{}",
                seatable_standin::random_hex(4)
            ),
        );
    case.run(&["get"]).ok();
    let seen = seen.lock().unwrap().clone();
    let writes = seen
        .iter()
        .filter(|s| s.line.starts_with("POST ") || s.line.starts_with("PUT "))
        .count();
    assert!(
        writes >= 2,
        "the claim and the entry were written: {seen:#?}"
    );
    assert!(seen.last().unwrap().line.starts_with("POST "), "{seen:#?}");
    // A fresh process has seen no index; from then on each request carries
    // the one the answer before it brought.
    assert_eq!(seen[0].index, None, "{seen:#?}");
    assert_eq!(seen[0].inconsistent, None, "{seen:#?}");
    for pair in seen.windows(2) {
        let (before, request) = (&pair[0], &pair[1]);
        assert_eq!(
            request.index.as_deref(),
            Some(before.answered.as_str()),
            "{} after {}: {seen:#?}",
            request.line,
            before.line
        );
        assert_eq!(
            request.inconsistent.as_deref(),
            Some("forward-active-node"),
            "{}",
            request.line
        );
    }
}
