//! `seatable-cred serve` run as a user runs it: a process of its own on a
//! free loopback port, its stderr in a file, stopped when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Case;

pub struct Agent {
    child: Option<Child>,
    pub url: String,
    /// The local key, from the env file.
    pub key: String,
    pub env_file: PathBuf,
    log: PathBuf,
    pub http: reqwest::blocking::Client,
}

/// Polls `cond` every 20 ms until it holds; fails the test after `limit`.
#[track_caller]
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How an agent is started.
struct Start<'a> {
    args: &'a [&'a str],
    env: &'a [(&'a str, &'a str)],
    /// Go on with the env file an earlier agent of the case left.
    keep: bool,
    /// Whose key and env file the agent's fields hold.
    profile: &'a str,
    listen: &'a str,
    wait_healthy: bool,
    /// Outside the case's user namespace.
    outside: bool,
}

impl Default for Start<'_> {
    fn default() -> Self {
        Start {
            args: &[],
            env: &[],
            keep: false,
            profile: "default",
            listen: "127.0.0.1:0",
            wait_healthy: true,
            outside: false,
        }
    }
}

impl Agent {
    /// `serve -vvvv --listen 127.0.0.1:0 ARGS…` with the case's environment;
    /// returns once the env file is written and `/health` answers 200.
    pub fn start(case: &Case, args: &[&str]) -> Agent {
        Self::start_with(case, args, &[])
    }

    pub fn start_with(case: &Case, args: &[&str], env: &[(&str, &str)]) -> Agent {
        Self::start_inner(
            case,
            Start {
                args,
                env,
                ..Start::default()
            },
        )
    }

    /// Listens on `listen` and does not wait for `/health` to answer 200:
    /// for agents that are not meant to become healthy.
    pub fn start_unchecked(case: &Case, listen: &str, args: &[&str], profile: &str) -> Agent {
        Self::start_inner(
            case,
            Start {
                args,
                profile,
                listen,
                wait_healthy: false,
                ..Start::default()
            },
        )
    }

    /// Serves the profiles `args` names; `key` and `env_file` are those of `profile`.
    pub fn start_profiles(case: &Case, args: &[&str], profile: &str) -> Agent {
        Self::start_inner(
            case,
            Start {
                args,
                profile,
                ..Start::default()
            },
        )
    }

    /// Starts again where an earlier agent of the case left its env file.
    pub fn start_keep(case: &Case) -> Agent {
        Self::start_inner(
            case,
            Start {
                keep: true,
                ..Start::default()
            },
        )
    }

    /// Listens on `listen` (e.g. a port an earlier agent had); with `keep`,
    /// goes on with the env file an earlier agent of the case left.
    pub fn start_at(case: &Case, listen: &str, keep: bool, args: &[&str]) -> Agent {
        Self::start_inner(
            case,
            Start {
                args,
                keep,
                listen,
                ..Start::default()
            },
        )
    }

    /// Not in the case's user namespace, where every other user's uid reads
    /// as 65534: the agent sees the real uids of its peers (for
    /// `--allow-uid`). Only with the file cache: the keyring of the
    /// developer's user namespace is never touched.
    pub fn start_outside_namespace(case: &Case, args: &[&str]) -> Agent {
        assert_eq!(case.env["SEATABLE_CRED_CACHE"], "file");
        Self::start_inner(
            case,
            Start {
                args,
                outside: true,
                ..Start::default()
            },
        )
    }

    fn start_inner(case: &Case, start: Start<'_>) -> Agent {
        let Start {
            args,
            env,
            keep,
            profile,
            listen,
            wait_healthy,
            outside,
        } = start;
        let log = case
            .dir
            .path()
            .join(format!("serve-{}.log", seatable_standin::random_hex(4)));
        let env_file = case
            .cache_dir()
            .join("serve")
            .join(format!("{profile}.env"));
        if !keep {
            let _ = std::fs::remove_file(&env_file);
        }
        let old_time = std::fs::metadata(&env_file).and_then(|m| m.modified()).ok();
        let mut cmd = if outside {
            let mut cmd = std::process::Command::new(super::HELPER);
            cmd.args(["serve", "-vvvv", "--listen", listen])
                .env_clear()
                .envs(&case.env);
            cmd
        } else {
            case.command(&["serve", "-vvvv", "--listen", listen])
        };
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn serve");
        wait_for("the env file", Duration::from_secs(60), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "serve exited with {status}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            // A restarted agent rewrites the file (the same text when the
            // key is kept): its modification time tells.
            std::fs::metadata(&env_file)
                .and_then(|m| m.modified())
                .is_ok_and(|m| Some(m) != old_time)
                && std::fs::read_to_string(&env_file)
                    .is_ok_and(|t| t.contains("SEATABLE_API_TOKEN="))
        });
        let text = std::fs::read_to_string(&env_file).unwrap();
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap()
                .to_string()
        };
        let agent = Agent {
            child: Some(child),
            url: value("SEATABLE_SERVER_URL="),
            key: value("SEATABLE_API_TOKEN="),
            env_file,
            log,
            // Pooled connections are dropped before the agent closes them
            // (2 s for connections that show no key, as /health's and
            // /metrics' do): a request must never race the agent's close.
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .pool_idle_timeout(Duration::from_millis(1500))
                .build()
                .unwrap(),
        };
        wait_for("a healthy agent", Duration::from_secs(60), || {
            !wait_healthy
                || agent
                    .http
                    .get(format!("{}/health", agent.url))
                    .send()
                    .is_ok_and(|r| r.status() == 200)
        });
        agent
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.pid(), signal) };
    }

    /// Waits for the agent to exit; its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> i32 {
        let child = self.child.as_mut().unwrap();
        let until = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < until,
                "serve did not exit in time: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Lines of the agent's log that mention `needle`.
    pub fn log_lines(&self, needle: &str) -> usize {
        self.stderr().lines().filter(|l| l.contains(needle)).count()
    }

    /// A kernel figure of the agent's process from /proc, e.g. `VmHWM`, in KiB.
    pub fn status_kib(&self, field: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"))
    }

    /// The local key of another profile this agent serves.
    pub fn key_of(&self, profile: &str) -> String {
        let path = self.env_file.with_file_name(format!("{profile}.env"));
        let text = std::fs::read_to_string(path).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("SEATABLE_API_TOKEN="))
            .unwrap()
            .to_string()
    }

    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    /// The local exchange with the agent's key; its JSON answer.
    pub fn exchange(&self) -> Value {
        let r = self
            .http
            .get(format!("{}/api/v2.1/dtable/app-access-token/", self.url))
            .header("Authorization", format!("Token {}", self.key))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().unwrap()
    }

    /// A GET with `Authorization: Token <token>`: status and body.
    pub fn get(&self, path: &str, token: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .header("Authorization", format!("Token {token}"))
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    pub fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.url))
            .send()
            .unwrap()
            .text()
            .unwrap()
    }

    /// One sample of the metrics text, e.g. `seatable_cred_replays_total{profile="default"}`.
    pub fn metric(&self, sample: &str) -> Option<f64> {
        self.metrics().lines().find_map(|l| {
            l.strip_prefix(sample)
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
    }

    /// Sends raw bytes on a new connection; what the agent answered before
    /// closing or within `limit`.
    pub fn raw(&self, bytes: &[u8], limit: Duration) -> String {
        let mut s = TcpStream::connect(self.addr()).unwrap();
        s.set_read_timeout(Some(limit)).unwrap();
        s.write_all(bytes).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
