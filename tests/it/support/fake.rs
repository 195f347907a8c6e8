//! Hostile HTTP peers on loopback, written on raw sockets so that they can
//! misbehave in ways a real server never would: a body that never ends, a
//! redirect to another origin. Each records the requests it saw.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What the fake does with every request.
#[derive(Clone)]
pub enum Behaviour {
    /// 200 with a chunked body that goes on until the client hangs up.
    EndlessBody,
    /// 307 to this URL (the request's path and query appended).
    RedirectTo(String),
    /// 200 with this JSON body.
    Json(String),
}

/// One request: its request line and headers (names lower-cased).
#[derive(Clone, Debug)]
pub struct Seen {
    pub line: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct Fake {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    pub fn start(behaviour: Behaviour) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (behaviour, log) = (behaviour.clone(), log.clone());
                std::thread::spawn(move || serve(stream, &behaviour, &log));
            }
        });
        Fake { url, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, behaviour: &Behaviour, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                let (n, v) = (n.trim().to_ascii_lowercase(), v.trim().to_string());
                if n == "content-length" {
                    length = v.parse().unwrap_or(0);
                }
                headers.push((n, v));
            }
        }
        let mut body = vec![0u8; length];
        if std::io::Read::read_exact(&mut reader, &mut body).is_err() {
            return;
        }
        let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        log.lock().unwrap().push(Seen {
            line: line.trim_end().to_string(),
            headers,
        });
        let ok = match behaviour {
            Behaviour::EndlessBody => {
                let _ = out.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
                );
                let chunk = vec![b' '; 64 * 1024];
                let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                framed.extend_from_slice(&chunk);
                framed.extend_from_slice(b"\r\n");
                let _ = out.write_all(b"10\r\n{\"data\":{\"data\":\r\n");
                while out.write_all(&framed).is_ok() {}
                return;
            }
            Behaviour::RedirectTo(base) => out.write_all(
                format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nlocation: {base}{target}\r\ncontent-length: 0\r\n\r\n"
                )
                .as_bytes(),
            ),
            Behaviour::Json(body) => out.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            ),
        };
        if ok.is_err() {
            return;
        }
    }
}
