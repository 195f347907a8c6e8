//! A real `bao proxy` or `bao agent` (the same OpenBao binary as the dev
//! server) in front of the tests' OpenBao, configured with the docs' own
//! blocks — the HCL under "Behind a Vault Agent or Proxy" in
//! docs/configuration.md, with the example's address, files and port
//! replaced by the test's — so that what the page shows is what runs here.
//!
//! Each is a process of its own on a free loopback port, killed when
//! dropped; every wait is bounded and on an event: the proxy's listener
//! passing a request on with its auto-auth token, the agent's sink file
//! holding a token.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::TempDir;
use super::agent::wait_for;
use super::bao::bao_bin;

/// What the docs' blocks name, replaced by each test's own.
pub const README_VAULT_ADDR: &str = "https://vault.example.com:8200";
pub const README_ROLE_ID_FILE: &str = "/etc/openbao/role-id";
pub const README_SECRET_ID_FILE: &str = "/etc/openbao/secret-id";
pub const README_LISTENER: &str = "127.0.0.1:8100";
pub const README_SINK: &str = "/run/user/1000/vault-token";

/// The pages of the docs whose blocks tests run, by their path.
fn page(path: &str) -> &'static str {
    match path {
        "README.md" => include_str!("../../../README.md"),
        "docs/configuration.md" => include_str!("../../../docs/configuration.md"),
        "docs/serve.md" => include_str!("../../../docs/serve.md"),
        _ => panic!("no page {path} among the tests' pages"),
    }
}

/// The fenced block of the page at `path` (`docs/configuration.md`) whose
/// first line starts with `first` (e.g. `# proxy.hcl`), without its fences.
pub fn doc_block(path: &str, first: &str) -> String {
    let mut lines = page(path).lines();
    while let Some(line) = lines.next() {
        if line.starts_with("```")
            && let Some(head) = lines.next()
            && head.starts_with(first)
        {
            let mut block = vec![head];
            block.extend(lines.by_ref().take_while(|l| !l.starts_with("```")));
            return block.join("\n") + "\n";
        }
    }
    panic!("{path} has no fenced block starting with {first:?}")
}

/// A running `bao proxy` or `bao agent`.
pub struct BaoAgent {
    /// The proxy's listener (`http://127.0.0.1:PORT`), if it has one.
    pub url: Option<String>,
    /// The agent's sink file, if it has one.
    pub sink: Option<PathBuf>,
    pid: u32,
    log: PathBuf,
    _dir: TempDir,
    _sink_dir: Option<TempDir>,
}

impl BaoAgent {
    /// `bao proxy` with docs/configuration.md's `# proxy.hcl`, logging in with this AppRole
    /// to the OpenBao at `vault`; returns once a request through its
    /// listener carries its auto-auth token.
    pub fn proxy(vault: &str, role_id: &str, secret_id: &str) -> BaoAgent {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let listener = format!("127.0.0.1:{port}");
            let mut started = Self::start(
                "proxy",
                &doc_block("docs/configuration.md", "# proxy.hcl"),
                vault,
                role_id,
                secret_id,
                &[(README_LISTENER, &listener)],
                None,
            );
            let url = format!("http://{listener}");
            let http = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let mut ready = false;
            let mut exited = false;
            wait_for(
                "the proxy passing requests on with its token",
                Duration::from_secs(60),
                || {
                    exited = !super::alive(started.pid);
                    ready = !exited
                        && http
                            .get(format!("{url}/v1/auth/token/lookup-self"))
                            .send()
                            .is_ok_and(|r| r.status() == 200);
                    ready || exited
                },
            );
            if ready {
                started.url = Some(url);
                return started;
            }
            // The port was taken meanwhile: another one.
            last = started.log();
        }
        panic!("bao proxy did not start: {last}")
    }

    /// `bao agent` with docs/configuration.md's `# agent.hcl`, logging in with this AppRole
    /// to the OpenBao at `vault`; returns once its sink file holds a token.
    pub fn agent(vault: &str, role_id: &str, secret_id: &str) -> BaoAgent {
        let sink_dir = TempDir::new("bao-sink");
        let sink = sink_dir.path().join("vault-token");
        let mut started = Self::start(
            "agent",
            &doc_block("docs/configuration.md", "# agent.hcl"),
            vault,
            role_id,
            secret_id,
            &[(README_SINK, sink.to_str().unwrap())],
            Some(sink_dir),
        );
        wait_for("the agent's sink file", Duration::from_secs(60), || {
            assert!(
                super::alive(started.pid),
                "bao agent exited: {}",
                started.log()
            );
            std::fs::read_to_string(&sink).is_ok_and(|t| !t.trim().is_empty())
        });
        started.sink = Some(sink);
        started
    }

    fn start(
        kind: &str,
        readme: &str,
        vault: &str,
        role_id: &str,
        secret_id: &str,
        more: &[(&str, &str)],
        keep: Option<TempDir>,
    ) -> BaoAgent {
        let dir = TempDir::new(&format!("bao-{kind}"));
        let role_id_file = dir.path().join("role-id");
        let secret_id_file = dir.path().join("secret-id");
        std::fs::write(&role_id_file, role_id).unwrap();
        std::fs::write(&secret_id_file, secret_id).unwrap();
        let mut config = readme.to_string();
        for (from, to) in [
            (README_VAULT_ADDR, vault),
            (README_ROLE_ID_FILE, role_id_file.to_str().unwrap()),
            (README_SECRET_ID_FILE, secret_id_file.to_str().unwrap()),
        ]
        .iter()
        .chain(more.iter())
        {
            assert!(
                config.contains(from),
                "docs/configuration.md's {kind} block names {from}"
            );
            config = config.replace(from, to);
        }
        let config_file = dir.path().join(format!("{kind}.hcl"));
        std::fs::write(&config_file, config).unwrap();
        let mut cmd = Command::new(bao_bin());
        cmd.arg(kind)
            .arg(format!("-config={}", config_file.display()))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path());
        let log = dir.path().join(format!("{kind}.log"));
        let pid = super::spawn_tied_to_process(cmd, &log);
        BaoAgent {
            url: None,
            sink: None,
            pid,
            log,
            _dir: dir,
            // The sink's directory lives as long as the agent.
            _sink_dir: keep,
        }
    }

    /// What the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The token in the agent's sink file now.
    pub fn sink_token(&self) -> String {
        std::fs::read_to_string(self.sink.as_deref().unwrap())
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn sink_path(&self) -> &Path {
        self.sink.as_deref().unwrap()
    }
}

impl Drop for BaoAgent {
    fn drop(&mut self) {
        super::kill(self.pid);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
