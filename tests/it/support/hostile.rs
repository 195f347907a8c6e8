//! What another local user does to the agent's port, as small Python
//! programs run as that user (or as the test's own user): hold many idle
//! keep-alive connections, squat the port and record what arrives, send
//! one raw request. `/usr/bin/python3` — the system's, which every user may
//! run — is used, not the tests' venv under the developer's home.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::TempDir;
use super::agent::wait_for;
use super::users::User;

const PYTHON: &str = "/usr/bin/python3";

/// `ADDR N READY STOP`: opens N connections and sends `GET /health` on
/// each every 8 s (reading the answers), reopening those the agent closed;
/// writes READY after the first round, stops when STOP exists. Prints
/// `answered=… open=…`.
const FLOOD: &str = r#"
import os, socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
n, ready, stop = int(sys.argv[2]), sys.argv[3], sys.argv[4]
socks, answered = [], 0
request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
while not os.path.exists(stop):
    while len(socks) < n:
        try:
            socks.append(socket.create_connection((host, int(port)), timeout=5))
        except OSError:
            break
    for s in list(socks):
        try:
            s.sendall(request)
            if s.recv(65536):
                answered += 1
            else:
                socks.remove(s)
                s.close()
        except OSError:
            socks.remove(s)
            s.close()
    if not os.path.exists(ready):
        open(ready, "w").close()
    for _ in range(80):
        if os.path.exists(stop):
            break
        time.sleep(0.1)
print(f"answered={answered} open={len(socks)}")
"#;

/// `ADDR N READY STOP`: opens N connections, each with a tiny receive
/// window, and on each sends 2000 `GET /metrics` requests in one go without
/// ever reading an answer — so that the agent's answers cannot be written.
/// Writes READY once all are sent (or stuck), stops when STOP exists.
const PIPELINE: &str = r#"
import os, socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
n, ready, stop = int(sys.argv[2]), sys.argv[3], sys.argv[4]
requests = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 2000
socks = []
for _ in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(2)
    try:
        s.connect((host, int(port)))
        s.sendall(requests)
    except OSError:
        pass
    socks.append(s)
open(ready, "w").close()
while not os.path.exists(stop):
    time.sleep(0.1)
"#;

/// `ADDR LOG READY STOP`: listens on ADDR and appends every byte any
/// connection sends to LOG until STOP exists.
const SQUAT: &str = r#"
import os, socket, sys, threading
host, port = sys.argv[1].rsplit(":", 1)
log, ready, stop = sys.argv[2], sys.argv[3], sys.argv[4]
lock = threading.Lock()
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((host, int(port)))
listener.listen(64)
listener.settimeout(0.1)
open(ready, "w").close()
def serve(conn):
    conn.settimeout(5)
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            with lock, open(log, "ab") as f:
                f.write(data)
    except OSError:
        pass
    conn.close()
while not os.path.exists(stop):
    try:
        conn, _ = listener.accept()
    except socket.timeout:
        continue
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
listener.close()
"#;

/// `ADDR` (HOST:PORT, or the path of a Unix socket), the request on stdin:
/// sends it, prints what came back before the agent closed or 10 s passed.
const REQUEST: &str = r#"
import socket, sys
addr = sys.argv[1]
request = sys.stdin.buffer.read()
out = b""
try:
    if addr.startswith("/"):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(addr)
    else:
        host, port = addr.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(request)
    while True:
        data = s.recv(65536)
        if not data:
            break
        out += data
except OSError as e:
    out += f"\n[{e}]".encode()
sys.stdout.buffer.write(out)
"#;

fn python(user: Option<&User>, script: &str) -> Command {
    assert!(
        Path::new(PYTHON).exists(),
        "these tests need the system's {PYTHON} (Debian: apt-get install python3)"
    );
    let mut cmd = match user {
        Some(user) => user.command(PYTHON),
        None => {
            let mut cmd = Command::new(PYTHON);
            cmd.env_clear();
            cmd
        }
    };
    cmd.arg("-c").arg(script);
    cmd
}

/// A running program that stops when its stop file appears (or it is dropped).
pub struct Running {
    child: Option<Child>,
    stop: PathBuf,
    _scratch: TempDir,
}

impl Running {
    /// Asks it to stop; its stdout.
    pub fn stop(mut self) -> String {
        std::fs::write(&self.stop, "").unwrap();
        let out = super::wait_bounded(self.child.take().unwrap(), Duration::from_secs(60));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.stop, "");
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A directory every user may write into, for the programs' files.
fn scratch() -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    let scratch = TempDir::new("hostile");
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    scratch
}

/// `n` idle keep-alive connections to `addr`, each asking for `/health`
/// every 8 s; returns once the first round went out.
pub fn flood(user: Option<&User>, addr: &str, n: usize) -> Running {
    let scratch = scratch();
    let (ready, stop) = (scratch.path().join("ready"), scratch.path().join("stop"));
    let child = python(user, FLOOD)
        .arg(addr)
        .arg(n.to_string())
        .arg(&ready)
        .arg(&stop)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running {
        child: Some(child),
        stop,
        _scratch: scratch,
    };
    wait_for("the flood's first round", Duration::from_secs(120), || {
        ready.exists()
    });
    running
}

/// `n` connections that pipeline requests and never read the answers;
/// returns once they are all sent (or stuck).
pub fn pipeline(addr: &str, n: usize) -> Running {
    let scratch = scratch();
    let (ready, stop) = (scratch.path().join("ready"), scratch.path().join("stop"));
    let child = python(None, PIPELINE)
        .arg(addr)
        .arg(n.to_string())
        .arg(&ready)
        .arg(&stop)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running {
        child: Some(child),
        stop,
        _scratch: scratch,
    };
    wait_for("the pipelined requests", Duration::from_secs(180), || {
        ready.exists()
    });
    running
}

/// A listener on someone else's port that records whatever arrives.
pub struct Squatter {
    running: Running,
    log: PathBuf,
}

impl Squatter {
    /// Stops listening; every byte that was sent to it.
    pub fn stop(self) -> Vec<u8> {
        let log = self.log.clone();
        std::fs::write(&self.running.stop, "").unwrap();
        let mut running = self.running;
        let child = running.child.take().unwrap();
        super::wait_bounded(child, Duration::from_secs(60));
        std::fs::read(&log).unwrap_or_default()
    }
}

/// A listener on `addr`, run as `user`, that records everything sent to it.
pub fn squat(user: &User, addr: &str) -> Squatter {
    let scratch = scratch();
    let (log, ready, stop) = (
        scratch.path().join("received"),
        scratch.path().join("ready"),
        scratch.path().join("stop"),
    );
    let mut child = python(Some(user), SQUAT)
        .arg(addr)
        .arg(&log)
        .arg(&ready)
        .arg(&stop)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the squatter to listen", Duration::from_secs(60), || {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("the squatter exited ({status}): {err}");
        }
        ready.exists()
    });
    Squatter {
        running: Running {
            child: Some(child),
            stop,
            _scratch: scratch,
        },
        log,
    }
}

/// Sends `request` to `addr` as `user` (the test's own with `None`); what
/// came back.
pub fn request(user: Option<&User>, addr: &str, request: &str) -> String {
    let mut cmd = python(user, REQUEST);
    cmd.arg(addr);
    super::run_with_input(cmd, request).stdout
}

/// The local exchange with `key`, as a raw request that closes the connection.
pub fn exchange_request(key: &str) -> String {
    format!(
        "GET /api/v2.1/dtable/app-access-token/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {key}\r\nConnection: close\r\n\r\n"
    )
}
