//! The shared tier on a real three-node OpenBao Raft cluster (SPEC §6,
//! §11): one exchange per fleet whatever node each host talks to — standbys
//! answer reads themselves, so a host may read a stale entry — through the
//! loss of the leader, with each host's local level in front. First, a KV
//! v2 mount enabled on the active node and read at once through a standby,
//! which answers 400 until it has seen the mount's upgrade finish.
//!
//! A test binary of its own: cargo runs test binaries one after another, so
//! the cluster's elections do not compete with the other tests for the CPU.
//! The cluster starts once (about half a minute: autopilot promotes joined
//! nodes to voters after its stabilization time) and the steps run in order
//! in one test, because the last ones kill the leader.

#[path = "it/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use seatable_standin::{Base, Fault, Standin};
use serde_json::json;

use support::raft::{Cluster, wait_for};
use support::userns::Namespace;
use support::{HELPER, Out, TempDir, wait_bounded};

/// One base and its API token in the cluster; the fleet of hosts that use it.
struct Fleet {
    standin: Standin,
    base: Base,
    env: BTreeMap<String, String>,
    /// Values that must never appear on stderr.
    secrets: Vec<String>,
}

/// A host: its own Vault node, cache directory and keyring (namespace).
struct Host {
    env: BTreeMap<String, String>,
    ns: Namespace,
    _dir: TempDir,
}

impl Host {
    /// One `get -o token` on this host.
    fn get(&self) -> Out {
        let mut cmd = Command::new(HELPER);
        cmd.args(["get", "-o", "token"]).env_clear().envs(&self.env);
        self.ns.join(&mut cmd);
        support::run_with_input(cmd, "")
    }
}

impl Fleet {
    fn new(cluster: &Cluster) -> Fleet {
        let standin = Standin::start();
        let base = standin.add_base(Base::default());
        let id = seatable_standin::random_hex(6);
        cluster.api(
            "POST",
            &format!("secret/data/it/{id}"),
            Some(json!({"data": {"api_token": base.api_token}})),
        );
        let policy = format!("fleet-{id}");
        cluster.api(
            "PUT",
            &format!("sys/policies/acl/{policy}"),
            Some(json!({"policy": format!(r#"
path "secret/data/it/{id}" {{ capabilities = ["read"] }}
path "secret/data/seatable-cred/cache/*" {{ capabilities = ["create", "read", "update"] }}
path "secret/metadata/seatable-cred/cache/*" {{ capabilities = ["read", "list", "delete"] }}
"#)})),
        );
        let token = cluster.api(
            "POST",
            "auth/token/create",
            Some(json!({"policies": [policy], "ttl": "2h"})),
        )["auth"]["client_token"]
            .as_str()
            .unwrap()
            .to_string();
        let mut env = BTreeMap::new();
        env.insert("PATH".into(), std::env::var("PATH").unwrap_or_default());
        env.insert("VAULT_TOKEN".into(), token.clone());
        env.insert("SEATABLE_SERVER_URL".into(), standin.url.clone());
        env.insert("SEATABLE_CRED_SECRET".into(), format!("secret/it/{id}"));
        env.insert("SEATABLE_CRED_CACHE".into(), "vault".into());
        env.insert(
            "SEATABLE_CRED_SHARED_CACHE".into(),
            format!("secret/seatable-cred/cache/{id}"),
        );
        env.insert("SEATABLE_CRED_TIMEOUT".into(), "60s".into());
        let secrets = vec![base.api_token.clone(), token, cluster.root_token.clone()];
        Fleet {
            standin,
            base,
            env,
            secrets,
        }
    }

    /// A new host talking to `node`.
    fn host(&self, node: &str) -> Host {
        let dir = TempDir::new("raft-host");
        let mut env = self.env.clone();
        env.insert("VAULT_ADDR".into(), node.to_string());
        env.insert("HOME".into(), dir.path().display().to_string());
        env.insert(
            "SEATABLE_CRED_CACHE_DIR".into(),
            dir.path().join("cache").display().to_string(),
        );
        Host {
            env,
            ns: Namespace::new(),
            _dir: dir,
        }
    }

    /// Starts `per_host` `get -o token` on every host together; their outputs.
    fn run_together(&self, hosts: &[Host], per_host: usize, then: impl FnOnce()) -> Vec<Out> {
        let mut children: Vec<Child> = Vec::new();
        for host in hosts {
            for _ in 0..per_host {
                let mut cmd = Command::new("sh");
                cmd.arg("-c")
                    .arg("read go; exec \"$0\" \"$@\"")
                    .arg(HELPER)
                    .args(["get", "-o", "token"])
                    .env_clear()
                    .envs(&host.env)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                host.ns.join(&mut cmd);
                children.push(cmd.spawn().unwrap());
            }
        }
        for child in children.iter_mut() {
            use std::io::Write;
            let _ = child.stdin.take().unwrap().write_all(b"go\n");
        }
        then();
        let outs: Vec<Out> = children
            .into_iter()
            .map(|child| {
                let o = wait_bounded(child, Duration::from_secs(180));
                Out {
                    code: o.status.code().unwrap_or(-1),
                    stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
                }
            })
            .collect();
        for out in &outs {
            for secret in &self.secrets {
                assert!(!out.stderr.contains(secret.as_str()), "a secret on stderr");
            }
        }
        outs
    }
}

/// Every process succeeded and printed the same token, which opens the base.
#[track_caller]
fn one_token(fleet: &Fleet, outs: &[Out], step: &str) {
    for out in outs {
        assert_eq!(out.code, 0, "{step}: {}", out.stderr);
        assert_eq!(
            out.stdout, outs[0].stdout,
            "{step}: one token for the fleet"
        );
    }
    assert!(
        fleet
            .standin
            .accepts(outs[0].stdout.trim(), &fleet.base.dtable_uuid),
        "{step}: the token opens the base"
    );
}

const SHARED_READS: &str = "secret/data/seatable-cred/cache/";

/// Figures for BENCHMARKS.md: bench/run.sh runs this test with
/// `SEATABLE_CRED_BENCH_OUT` naming a file, where they are written as JSON.
/// (Times are recorded, never asserted: a loaded machine is slower.)
#[derive(Default, serde::Serialize)]
struct Figures {
    cold_3x8_exchanges: u64,
    cold_3x8_seconds: f64,
    warm_60_calls_shared_reads: usize,
    leader_loss_exchanges: u64,
    leader_loss_seconds: f64,
    cold_30x3_exchanges: u64,
    cold_30x3_seconds: f64,
    lifetimes: u64,
    shared_reads_per_host_per_lifetime: f64,
}

/// Fails with every failed process's stderr and the nodes' logs.
#[track_caller]
fn all_ok(cluster: &Cluster, outs: &[Out], step: &str) {
    let failed: Vec<String> = outs
        .iter()
        .enumerate()
        .filter(|(_, o)| o.code != 0)
        .map(|(i, o)| format!("process {i} exited {}:\n{}", o.code, o.stderr))
        .collect();
    assert!(
        failed.is_empty(),
        "{step}: {} of {} processes failed:\n{}\n{}",
        failed.len(),
        outs.len(),
        failed.join("\n"),
        cluster.logs()
    );
}

/// What a standby answers for a KV v2 mount whose storage upgrade it has
/// not yet seen finish on the active node.
const STANDBY_UPGRADING: &str =
    "Waiting for the primary to upgrade from non-versioned to versioned data";

/// 0. A KV v2 mount enabled on the active node and read at once through a
///    standby: the standby answers 400 "Waiting for the primary to
///    upgrade…" until it sees the upgrade done (it looks once a second), and
///    `get` — then `doctor` — waits that out within `--timeout` instead of
///    failing at once.
///
///    Each attempt takes a fresh mount. The window is about a second; an
///    attempt counts only when the standby was seen answering that 400
///    right before the helper started and the helper's log shows that it
///    met the answer too (on a machine slow enough to miss the window, the
///    attempt proves nothing and the next one is made). Any attempt whose
///    helper fails fails the test; so does never meeting the window.
fn a_fresh_kv_v2_mount_read_through_a_standby(cluster: &Cluster) {
    let leader_index = cluster.leader().expect("an active node");
    let leader = cluster.nodes[leader_index].addr.clone();
    let standby = cluster.nodes[(leader_index + 1) % 3].addr.clone();
    let standin = Standin::start();
    let base = standin.add_base(Base::default());
    let home = TempDir::new("raft-fresh-mount");
    let mut met = [0, 0];
    for attempt in 0..8 {
        if met.iter().all(|&m| m > 0) {
            break;
        }
        let command = if met[0] == 0 { "get" } else { "doctor" };
        let mount = format!("fresh-{}", seatable_standin::random_hex(4));
        let policy = format!("{mount}-reader");
        cluster.api(
            "PUT",
            &format!("sys/policies/acl/{policy}"),
            Some(json!({"policy": format!(r#"path "{mount}/data/*" {{ capabilities = ["read"] }}"#)})),
        );
        let token = cluster.api(
            "POST",
            "auth/token/create",
            Some(json!({"policies": [policy], "ttl": "10m"})),
        )["auth"]["client_token"]
            .as_str()
            .unwrap()
            .to_string();
        cluster
            .request(
                "POST",
                &leader,
                &format!("sys/mounts/{mount}"),
                Some(&cluster.root_token),
                Some(json!({"type": "kv", "options": {"version": "2"}})),
            )
            .unwrap();
        // The active node takes the write once its own upgrade is done.
        wait_for(
            "the active node taking the write",
            Duration::from_secs(30),
            || {
                cluster
                    .request(
                        "POST",
                        &leader,
                        &format!("{mount}/data/crm"),
                        Some(&cluster.root_token),
                        Some(json!({"data": {"api_token": base.api_token}})),
                    )
                    .ok()
            },
        );
        let probe = cluster.request(
            "GET",
            &standby,
            &format!("{mount}/data/crm"),
            Some(&token),
            None,
        );
        if !matches!(&probe, Err(e) if e.starts_with("400") && e.contains(STANDBY_UPGRADING)) {
            eprintln!(
                "attempt {attempt}: the standby was done before the helper started ({probe:?})"
            );
            continue;
        }
        let mut cmd = Command::new(HELPER);
        cmd.arg(command)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("VAULT_ADDR", &standby)
            .env("VAULT_TOKEN", &token)
            .env("SEATABLE_SERVER_URL", &standin.url)
            .env("SEATABLE_CRED_SECRET", format!("{mount}/crm"))
            .env("SEATABLE_CRED_CACHE", "none")
            .env("SEATABLE_CRED_TIMEOUT", "30s")
            .env("SEATABLE_CRED_LOG", "debug");
        if command == "get" {
            cmd.args(["-o", "token"]);
        }
        let out = support::run_with_input(cmd, "");
        for secret in [&token, &base.api_token, &cluster.root_token] {
            assert!(!out.stderr.contains(secret.as_str()), "a secret on stderr");
        }
        assert_eq!(
            out.code, 0,
            "{command} through a standby while the fresh mount {mount} upgrades:\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        );
        if command == "get" {
            assert!(
                standin.accepts(out.stdout.trim(), &base.dtable_uuid),
                "the token opens the base"
            );
        } else {
            assert!(
                out.stdout.lines().any(|l| l.starts_with("ok    secret")),
                "{}",
                out.stdout
            );
        }
        if out.stderr.contains("the KV v2 mount is still upgrading") {
            met[usize::from(command == "doctor")] += 1;
        } else {
            eprintln!("attempt {attempt}: {command} did not meet the upgrading standby");
        }
    }
    assert!(
        met.iter().all(|&m| m > 0),
        "get and doctor each met a standby still upgrading a fresh KV v2 mount and waited it out ({met:?} of 8 attempts): the window was never caught; the machine is too slow for it, or OpenBao no longer answers so"
    );
}

#[test]
fn the_shared_tier_on_a_raft_cluster() {
    let cluster = Cluster::start();
    let nodes: Vec<String> = cluster.nodes.iter().map(|n| n.addr.clone()).collect();
    let mut figures = Figures::default();

    a_fresh_kv_v2_mount_read_through_a_standby(&cluster);

    // 1. A cold fleet, each host on another node: one exchange, one token.
    let fleet = Fleet::new(&cluster);
    fleet.standin.push_faults([Fault::Slow { millis: 500 }]);
    let hosts: Vec<Host> = nodes.iter().map(|n| fleet.host(n)).collect();
    let started = Instant::now();
    let outs = fleet.run_together(&hosts, 8, || {});
    figures.cold_3x8_seconds = started.elapsed().as_secs_f64();
    all_ok(&cluster, &outs, "3 hosts × 8 processes, cold");
    one_token(&fleet, &outs, "3 hosts × 8 processes, cold");
    figures.cold_3x8_exchanges = fleet.standin.stats().exchange_requests;
    assert_eq!(
        figures.cold_3x8_exchanges, 1,
        "one exchange for 24 processes on 3 hosts, each on another node"
    );

    // 2. Warm: three new hosts make 60 calls; each reads the shared entry
    //    once, then answers from its local level.
    let reads = cluster.audited("read", SHARED_READS);
    let warm: Vec<Host> = nodes.iter().map(|n| fleet.host(n)).collect();
    for round in 0..20 {
        for host in &warm {
            let out = host.get();
            assert_eq!(out.code, 0, "warm call {round}: {}", out.stderr);
            assert_eq!(out.stdout, outs[0].stdout);
        }
    }
    figures.warm_60_calls_shared_reads = cluster.audited("read", SHARED_READS) - reads;
    // At least one: new hosts have no local entry (and a count of 0 would
    // mean the audit log was not read at all).
    assert!(
        (1..=3).contains(&figures.warm_60_calls_shared_reads),
        "60 warm calls over 3 hosts read the shared entry {} times",
        figures.warm_60_calls_shared_reads
    );
    assert_eq!(fleet.standin.exchanges(), 1);

    // 3. Over several token lifetimes (6-second tokens, refreshed 3 s
    //    before they expire), each host reads the shared entry about once a
    //    lifetime: its local level answers the rest.
    let fleet = Fleet::new(&cluster);
    fleet
        .standin
        .update_base(&fleet.base.api_token, |b| b.lifetime_secs = Some(6));
    let hosts: Vec<Host> = nodes.iter().map(|n| fleet.host(n)).collect();
    let reads = cluster.audited("read", SHARED_READS);
    let deadline = Instant::now() + Duration::from_secs(120);
    // Until the fleet has gone through four tokens (the first one cold).
    while fleet.standin.exchanges() < 4 {
        assert!(Instant::now() < deadline, "four tokens within 120 s");
        for host in &hosts {
            let out = host.get();
            assert_eq!(out.code, 0, "{}", out.stderr);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    figures.lifetimes = fleet.standin.exchanges();
    assert_eq!(
        fleet.standin.stats().exchange_requests,
        figures.lifetimes,
        "one exchange per token lifetime for the fleet"
    );
    let per_host = (cluster.audited("read", SHARED_READS) - reads) as f64
        / (hosts.len() as f64 * figures.lifetimes as f64);
    figures.shared_reads_per_host_per_lifetime = per_host;
    assert!(
        per_host > 0.0 && per_host <= 2.0,
        "{per_host:.2} shared reads per host per token lifetime (goal: at most 2)"
    );

    // 4. The leader is killed while a host holds the claim (SeaTable is
    //    slow): every process still gets the same token.
    let mut fleet = Fleet::new(&cluster);
    fleet.env.insert("SEATABLE_CRED_LOG".into(), "debug".into());
    let leader = cluster.leader().expect("an active node");
    let standbys: Vec<String> = (0..3)
        .filter(|&i| i != leader)
        .map(|i| nodes[i].clone())
        .collect();
    let hosts: Vec<Host> = (0..3).map(|i| fleet.host(&standbys[i % 2])).collect();
    fleet.standin.push_faults([Fault::Slow { millis: 3000 }]);
    let started = Instant::now();
    let outs = fleet.run_together(&hosts, 8, || {
        // Once a claimer is exchanging, the leader dies.
        wait_for("a claimer exchanging", Duration::from_secs(60), || {
            (fleet.standin.stats().exchange_requests > 0).then_some(())
        });
        cluster.kill(leader);
    });
    figures.leader_loss_seconds = started.elapsed().as_secs_f64();
    all_ok(
        &cluster,
        &outs,
        "3 hosts × 8 processes through a leader loss",
    );
    one_token(&fleet, &outs, "3 hosts × 8 processes through a leader loss");
    figures.leader_loss_exchanges = fleet.standin.stats().exchange_requests;
    assert!(
        figures.leader_loss_exchanges <= 2,
        "{} exchanges through the leader loss (at most one extra)",
        figures.leader_loss_exchanges
    );
    cluster.wait_for_new_leader(leader);

    // 5. Thirty hosts of three processes, cold, on the surviving nodes.
    let fleet = Fleet::new(&cluster);
    fleet.standin.push_faults([Fault::Slow { millis: 500 }]);
    let hosts: Vec<Host> = (0..30).map(|i| fleet.host(&standbys[i % 2])).collect();
    let started = Instant::now();
    let outs = fleet.run_together(&hosts, 3, || {});
    figures.cold_30x3_seconds = started.elapsed().as_secs_f64();
    all_ok(&cluster, &outs, "30 hosts × 3 processes, cold");
    one_token(
        &fleet,
        &outs,
        "30 hosts × 3 processes, cold, after the leader loss",
    );
    figures.cold_30x3_exchanges = fleet.standin.stats().exchange_requests;
    assert_eq!(
        figures.cold_30x3_exchanges, 1,
        "one exchange for 90 processes on 30 hosts"
    );

    if let Some(path) = std::env::var_os("SEATABLE_CRED_BENCH_OUT") {
        std::fs::write(path, serde_json::to_string_pretty(&figures).unwrap()).unwrap();
    }
}
