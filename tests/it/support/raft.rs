//! A real three-node OpenBao cluster on loopback: integrated storage
//! (Raft), joined by `retry_join`, auto-unsealed by a static seal — what
//! deployments run highly available, and what `-dev` cannot be.
//!
//! Start-up: each node gets its own config file (`storage "raft"` with
//! `path`, `node_id` and a `retry_join` to all three `leader_api_addr`s; a
//! `listener "tcp"` with its own address and cluster address; a `seal
//! "static"` whose key is a file of 32 random bytes in hex; `api_addr`,
//! `cluster_addr`; a file audit device — the same options on every node, as
//! OpenBao requires — to count what the helper asks).
//! `bao operator init` on the first node; then the harness waits — on
//! events, each bounded — until all three are voters (autopilot promotes
//! new nodes after its stabilization time; killing the leader before that
//! would leave no quorum) and until the KV v2 mount takes writes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::TempDir;
use super::bao::bao_bin;

pub struct Node {
    pub addr: String,
    pub pid: u32,
    pub audit: PathBuf,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub root_token: String,
    dir: TempDir,
    http: reqwest::blocking::Client,
}

/// Polls `check` until it returns `Some`, at most `limit`; `what` names it
/// in the failure.
#[track_caller]
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "the Raft cluster: {what} did not happen within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Cluster {
    pub fn start() -> Cluster {
        super::install_crypto();
        let dir = TempDir::new("raft");
        let key = dir.path().join("seal.hex");
        std::fs::write(&key, seatable_standin::random_hex(32)).unwrap();
        // Three pairs (API, cluster) that do not overlap.
        let mut ports: Vec<u16> = Vec::new();
        while ports.len() < 3 {
            let port = super::bao::free_port_pair();
            if ports.iter().all(|p| p.abs_diff(port) > 1) {
                ports.push(port);
            }
        }
        let joins: String = ports
            .iter()
            .map(|p| format!("  retry_join {{ leader_api_addr = \"http://127.0.0.1:{p}\" }}\n"))
            .collect();
        let mut nodes = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            let data = dir.path().join(format!("node{i}"));
            std::fs::create_dir(&data).unwrap();
            // The same relative path on every node (OpenBao keeps the audit
            // device's options cluster-wide and refuses a node whose own
            // differ), resolved in each node's working directory.
            let audit = data.join("audit.log");
            let config = dir.path().join(format!("node{i}.hcl"));
            std::fs::write(
                &config,
                format!(
                    r#"storage "raft" {{
  path = "{data}"
  node_id = "node{i}"
{joins}}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cluster}"
  tls_disable = true
}}
seal "static" {{
  current_key_id = "test-key"
  current_key = "file://{key}"
}}
api_addr = "http://127.0.0.1:{port}"
cluster_addr = "https://127.0.0.1:{cluster}"
audit "file" "requests" {{
  options {{
    file_path = "audit.log"
  }}
}}
"#,
                    data = data.display(),
                    key = key.display(),
                    cluster = port + 1,
                ),
            )
            .unwrap();
            let mut cmd = Command::new(bao_bin());
            cmd.arg("server")
                .arg(format!("-config={}", config.display()))
                .env_remove("BAO_ADDR")
                .env_remove("VAULT_ADDR")
                .env("HOME", dir.path())
                .current_dir(&data);
            let pid = super::spawn_tied_to_process(cmd, &dir.path().join(format!("node{i}.log")));
            nodes.push(Node {
                addr: format!("http://127.0.0.1:{port}"),
                pid,
                audit,
            });
        }
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .tls_certs_only(Vec::new())
            .build()
            .unwrap();
        let mut cluster = Cluster {
            nodes,
            root_token: String::new(),
            dir,
            http,
        };
        let first = cluster.nodes[0].addr.clone();
        wait_for("the first node answering", Duration::from_secs(60), || {
            cluster.get(&first, "sys/seal-status", None).ok()
        });
        let init = cluster
            .request(
                "PUT",
                &first,
                "sys/init",
                None,
                Some(json!({"recovery_shares": 1, "recovery_threshold": 1})),
            )
            .unwrap_or_else(|e| panic!("bao operator init: {e}; {}", cluster.logs()));
        cluster.root_token = init["root_token"].as_str().unwrap().to_string();
        cluster.wait_for_voters();
        cluster.enable_kv();
        cluster
    }

    /// The nodes' logs, for a failure message.
    pub fn logs(&self) -> String {
        (0..self.nodes.len())
            .map(|i| {
                let log = std::fs::read_to_string(self.dir.path().join(format!("node{i}.log")))
                    .unwrap_or_default();
                format!("--- node{i}: {}", &log[log.len().saturating_sub(1500)..])
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// One HTTP call to `node` (an address); errors as text.
    pub fn request(
        &self,
        method: &str,
        node: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{node}/v1/{path}"));
        if let Some(token) = token {
            req = req.header("X-Vault-Token", token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().map_err(|e| e.to_string())?;
        let status = resp.status();
        let text = resp.text().map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{status}: {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn get(&self, node: &str, path: &str, token: Option<&str>) -> Result<Value, String> {
        self.request("GET", node, path, token, None)
    }

    /// Calls the API as root on whichever live node answers.
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut errors = Vec::new();
        for node in self.live_nodes() {
            match self.request(method, &node, path, Some(&self.root_token), body.clone()) {
                Ok(v) => return v,
                Err(e) => errors.push(e),
            }
        }
        panic!("{method} {path}: {errors:?}")
    }

    pub fn live_nodes(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| super::alive(n.pid))
            .map(|n| n.addr.clone())
            .collect()
    }

    /// The index of the active node, as the nodes themselves say.
    pub fn leader(&self) -> Option<usize> {
        self.live_nodes().iter().find_map(|node| {
            let v = self.get(node, "sys/leader", None).ok()?;
            let leader = v["leader_address"].as_str()?.trim_end_matches('/');
            self.nodes.iter().position(|n| n.addr == leader)
        })
    }

    fn wait_for_voters(&self) {
        let first = self.nodes[0].addr.clone();
        wait_for("three Raft voters", Duration::from_secs(120), || {
            let v = self
                .get(
                    &first,
                    "sys/storage/raft/configuration",
                    Some(&self.root_token),
                )
                .ok()?;
            let servers = v["data"]["config"]["servers"].as_array()?.clone();
            (servers.len() == 3 && servers.iter().all(|s| s["voter"] == true)).then_some(())
        });
    }

    fn enable_kv(&self) {
        self.api(
            "POST",
            "sys/mounts/secret",
            Some(json!({"type": "kv", "options": {"version": "2"}})),
        );
        // KV v2 upgrades its storage first; writes fail until it is done —
        // on every node, since each answers for itself.
        for node in self
            .nodes
            .iter()
            .map(|n| n.addr.clone())
            .collect::<Vec<_>>()
        {
            wait_for("KV v2 taking writes", Duration::from_secs(60), || {
                self.request(
                    "POST",
                    &node,
                    "secret/data/harness/probe",
                    Some(&self.root_token),
                    Some(json!({"data": {"ok": true}})),
                )
                .ok()?;
                self.get(&node, "secret/data/harness/probe", Some(&self.root_token))
                    .ok()
            });
        }
    }

    /// Kills a node as a crash would (SIGKILL).
    pub fn kill(&self, node: usize) {
        super::kill(self.nodes[node].pid);
    }

    /// Waits until the surviving nodes have elected a new active node.
    pub fn wait_for_new_leader(&self, old: usize) -> usize {
        wait_for("a new active node", Duration::from_secs(60), || {
            self.leader().filter(|&l| l != old)
        })
    }

    /// How many requests of `operation` on paths starting with `prefix`
    /// the nodes have audited so far (each request is audited by the node
    /// that handled it; a standby forwarding a write logs it as forwarded).
    pub fn audited(&self, operation: &str, prefix: &str) -> usize {
        self.nodes
            .iter()
            .map(|n| count_requests(&n.audit, operation, prefix))
            .sum()
    }
}

fn count_requests(log: &Path, operation: &str, prefix: &str) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "request")
        .filter(|v| v["request"]["operation"] == operation)
        .filter(|v| {
            v["request"]["path"]
                .as_str()
                .is_some_and(|p| p.starts_with(prefix))
        })
        .count()
}
