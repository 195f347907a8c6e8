//! Where `serve` listens: a Unix socket (`--listen unix:PATH`), a socket
//! systemd holds and hands over (socket activation, with Debian's
//! `systemd-socket-activate`), and a restart behind such a socket that
//! refuses no connection.

use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::support::agent::wait_for;
use crate::support::hostile::{self, exchange_request};
use crate::support::users::User;
use crate::support::{Case, HELPER};

const LONG: Duration = Duration::from_secs(60);

/// A child killed when dropped.
struct Kill(Option<Child>);

impl Kill {
    /// SIGTERM, and its exit status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let child = self.0.take().unwrap();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        crate::support::wait_bounded(child, LONG).status
    }
}

impl Drop for Kill {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `NAME=VALUE` of the env file at `path`, once it is written.
fn env_value(path: &std::path::Path, name: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .to_string()
}

#[test]
fn a_unix_socket_serves_its_user_only() {
    let case = Case::new();
    let socket = case.dir.path().join("agent.sock");
    let listen = format!("unix:{}", socket.display());
    let log = case.dir.path().join("unix.log");
    let start = || {
        let mut cmd = case.command(&["serve", "-vvvv", "--listen", &listen]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        Kill(Some(cmd.spawn().unwrap()))
    };
    let env_file = case.cache_dir().join("serve").join("default.env");
    let _ = std::fs::remove_file(&env_file);
    // Others may reach the directory: only the socket's own mode stands between.
    std::fs::set_permissions(case.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let agent = start();
    wait_for("the agent's socket", LONG, || {
        socket.exists() && env_file.exists()
    });
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let url = env_value(&env_file, "SEATABLE_SERVER_URL");
    let encoded = socket.display().to_string().replace('/', "%2F");
    assert_eq!(url, format!("http+unix://{encoded}"));
    let key = env_value(&env_file, "SEATABLE_API_TOKEN");

    // curl over the socket, as docs/serve.md shows.
    let exchange = || {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "30", "--unix-socket"])
            .arg(&socket)
            .args(["-H", &format!("Authorization: Token {key}")])
            .arg("http://localhost/api/v2.1/dtable/app-access-token/")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let answer = exchange();
    assert!(answer.contains(&case.base.dtable_uuid), "{answer}");

    // Another user: no way in through the file's mode, nor through a
    // loosened one — the agent asks the kernel who connected.
    let other = User::new("another user at the agent's Unix socket");
    let path = socket.display().to_string();
    let answer = hostile::request(Some(&other), &path, &exchange_request(&key));
    assert!(answer.contains("Permission denied"), "{answer}");
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let answer = hostile::request(Some(&other), &path, &exchange_request(&key));
    assert!(!answer.contains("HTTP/1.1"), "{answer}");

    // Killed, and started again: the stale socket is replaced.
    drop(agent);
    assert!(socket.exists());
    let _again = start();
    wait_for("the new agent", LONG, || {
        exchange().contains(&case.base.dtable_uuid)
    });
}

/// Socket activation as systemd does it, with Debian's own tool: the agent
/// starts at the first connection and serves on the socket it was handed.
#[test]
fn systemd_socket_activation_hands_the_agent_its_socket() {
    let case = Case::new();
    let port = crate::support::free_port();
    let addr = format!("127.0.0.1:{port}");
    let log = case.dir.path().join("activated.log");
    let mut cmd = case.tool("systemd-socket-activate");
    cmd.args(["-l", &addr]);
    // It hands the program a fresh environment: the case's, named.
    for name in case.env.keys() {
        cmd.args(["-E", name]);
    }
    cmd.args([HELPER, "serve", "-vvvv", "--listen", "127.0.0.1:9"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let _activator = Kill(Some(
        cmd.spawn()
            .expect("systemd-socket-activate (Debian: apt-get install systemd)"),
    ));
    let http = reqwest::blocking::Client::builder()
        .timeout(LONG)
        .build()
        .unwrap();
    // The first connection starts the agent.
    wait_for("the activated agent", LONG, || {
        http.get(format!("http://{addr}/health"))
            .send()
            .is_ok_and(|r| r.status() == 200)
    });
    let env_file = case.cache_dir().join("serve").join("default.env");
    assert_eq!(
        env_value(&env_file, "SEATABLE_SERVER_URL"),
        format!("http://{addr}")
    );
    let key = env_value(&env_file, "SEATABLE_API_TOKEN");
    let r = http
        .get(format!("http://{addr}/api/v2.1/dtable/app-access-token/"))
        .header("Authorization", format!("Token {key}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(
        stderr.contains("--listen 127.0.0.1:9 is not used"),
        "{stderr}"
    );
}

/// The agent behind a socket that outlives it (as systemd holds it):
/// stopped and started again while a client keeps asking, and no request
/// is refused — each waits in the socket's queue for the next agent.
#[test]
fn the_agent_restarts_behind_its_socket_refusing_no_connection() {
    let case = Case::new();
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let fd = socket.as_raw_fd();
    let start = |n: usize| {
        let log = case.dir.path().join(format!("restart-{n}.log"));
        let mut cmd = case.tool("sh");
        cmd.arg("-c")
            .arg("export LISTEN_PID=$$ LISTEN_FDS=1; exec \"$0\" \"$@\"")
            .args([HELPER, "serve", "-vvvv"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        use std::os::unix::process::CommandExt;
        // SAFETY: dup2 is async-signal-safe; fd 3 is where systemd puts it.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        (Kill(Some(cmd.spawn().unwrap())), log)
    };
    let env_file = case.cache_dir().join("serve").join("default.env");
    let (first, first_log) = start(1);
    wait_for("the first agent", LONG, || {
        env_file.exists()
            && std::fs::read_to_string(&first_log).is_ok_and(|l| l.contains("new base token"))
    });
    let key = env_value(&env_file, "SEATABLE_API_TOKEN");
    let stop = AtomicBool::new(false);
    let answers = std::thread::scope(|s| {
        let client = s.spawn(|| {
            let http = reqwest::blocking::Client::builder()
                .pool_max_idle_per_host(0)
                .timeout(LONG)
                .build()
                .unwrap();
            let mut answers = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let answer = http
                    .get(format!("http://{addr}/api/v2.1/dtable/app-access-token/"))
                    .header("Authorization", format!("Token {key}"))
                    .send()
                    .map(|r| r.status().as_u16())
                    .map_err(|e| e.to_string());
                answers.push(answer);
            }
            answers
        });
        let mut first = first;
        wait_for("a few answers", LONG, || {
            std::fs::read_to_string(&first_log)
                .is_ok_and(|l| l.matches("issued a session token").count() >= 5)
        });
        let status = first.terminate();
        assert!(status.success(), "{status}");
        let (_second, second_log) = start(2);
        wait_for("answers from the second agent", LONG, || {
            std::fs::read_to_string(&second_log)
                .is_ok_and(|l| l.matches("issued a session token").count() >= 5)
        });
        stop.store(true, Ordering::SeqCst);
        client.join().unwrap()
    });
    assert!(answers.len() >= 10, "{answers:?}");
    let failed: Vec<_> = answers.iter().filter(|a| **a != Ok(200)).collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        answers.len()
    );
    drop(socket);
}
