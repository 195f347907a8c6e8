//! The network: plain HTTP beyond loopback, a Vault that never stops
//! talking, and redirects that would carry the Vault token elsewhere.
//!
//! `http://0.0.0.0:PORT` stands for "a plain-HTTP address that is not
//! loopback": it is not a loopback address, so the helper must treat it as
//! remote, yet Linux delivers a connection to it to this machine's own
//! servers — the tests never leave the host.

use std::time::{Duration, Instant};

use crate::support::fake::{Behaviour, Fake};
use crate::support::{Case, shared, wait_bounded};

fn port(url: &str) -> &str {
    url.rsplit(':').next().unwrap()
}

#[test]
fn plain_http_beyond_loopback_is_refused() {
    let mut case = Case::new();
    let standin = case.standin.url.clone();
    let vault = shared().bao.addr.clone();
    case.set("SEATABLE_SERVER_URL", "http://seatable.example.com");
    let out = case.run(&["get"]).fails(2, "--allow-http");
    for name in [
        "allow_http",
        "SEATABLE_CRED_ALLOW_HTTP",
        "seatable.example.com",
    ] {
        assert!(out.stderr.contains(name), "{name}: {}", out.stderr);
    }
    case.set("SEATABLE_SERVER_URL", standin.clone());
    case.set("VAULT_ADDR", "http://vault.example.com:8200");
    case.run(&["get"]).fails(2, "--allow-http");
    case.set("VAULT_ADDR", format!("http://0.0.0.0:{}", port(&vault)));
    case.run(&["get"]).fails(2, "--allow-http");
    assert_eq!(case.standin.stats().exchange_requests, 0);
    // Loopback is fine as it is: by address and by the name localhost.
    case.set("VAULT_ADDR", format!("http://localhost:{}", port(&vault)));
    case.set(
        "SEATABLE_SERVER_URL",
        format!("http://localhost:{}", port(&standin)),
    );
    let out = case.run(&["get"]).ok();
    assert!(!out.stderr.contains("plain HTTP"), "{}", out.stderr);
}

#[test]
fn allowed_plain_http_warns_on_every_call_and_in_doctor() {
    let mut case = Case::new();
    let standin = format!("http://0.0.0.0:{}", port(&case.standin.url));
    let vault = format!("http://0.0.0.0:{}", port(&shared().bao.addr));
    case.set("SEATABLE_SERVER_URL", standin)
        .set("VAULT_ADDR", vault);
    let cold = case.run(&["get", "--allow-http"]).ok();
    let hit = case.run(&["get", "--allow-http"]).ok();
    assert_eq!(case.standin.exchanges(), 1, "the second call was a hit");
    for out in [&cold, &hit] {
        assert!(
            out.stderr.contains("warning") && out.stderr.contains("plain HTTP"),
            "{}",
            out.stderr
        );
    }
    case.set("SEATABLE_CRED_ALLOW_HTTP", "true");
    let doctor = case.run(&["doctor"]);
    assert!(
        doctor
            .stdout
            .lines()
            .any(|l| l.starts_with("warn") && l.contains("plain HTTP")),
        "{}",
        doctor.stdout
    );
}

#[test]
fn a_vault_that_never_stops_talking_is_cut_off() {
    let mut case = Case::new();
    let vault = Fake::start(Behaviour::EndlessBody);
    case.set("VAULT_ADDR", vault.url.clone())
        .set("SEATABLE_CRED_TIMEOUT", "5s");
    let child = case
        .command(&["get"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    // wait4 reports the child's peak memory; wait_bounded would reap it first.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut status = 0;
        // SAFETY: an all-zero rusage is valid; we wait for our own child.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        let _ = tx.send((status, usage.ru_maxrss));
    });
    let (status, max_rss_kib) = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(r) => r,
        Err(_) => {
            drop(wait_bounded(child, Duration::from_secs(1)));
            panic!("the helper did not finish within 60 s");
        }
    };
    drop(child);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) != 0,
        "the helper should fail with an exit code: wait status {status:#x}, {max_rss_kib} KiB"
    );
    assert!(
        max_rss_kib < 64 * 1024,
        "the helper grew to {max_rss_kib} KiB reading Vault's answer"
    );
}

#[test]
fn the_vault_token_never_follows_a_redirect_to_another_origin() {
    let mut case = Case::new();
    let elsewhere = Fake::start(Behaviour::Json("{}".into()));
    let elsewhere_url = format!("http://localhost:{}", port(&elsewhere.url));
    let vault = Fake::start(Behaviour::RedirectTo(elsewhere_url));
    case.set("VAULT_ADDR", vault.url.clone())
        .set("SEATABLE_CRED_TIMEOUT", "3s");
    let started = Instant::now();
    let out = case.run(&["get"]);
    assert_ne!(out.code, 0);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        vault.seen().iter().any(|s| s.line.starts_with("GET /v1/")),
        "the helper asked the fake Vault"
    );
    let leaked: Vec<_> = elsewhere
        .seen()
        .into_iter()
        .filter(|s| s.header("x-vault-token").is_some())
        .collect();
    assert!(
        leaked.is_empty(),
        "the Vault token reached another origin: {leaked:?}"
    );
}

/// Plain HTTP is accepted for loopback because it stays on the machine: a
/// proxy from the environment must not take it elsewhere (reqwest would
/// send it to `HTTP_PROXY`, Vault token and API token in clear text).
#[test]
fn loopback_traffic_never_goes_through_a_proxy() {
    let mut case = Case::new();
    let proxy = Fake::start(Behaviour::Json("{}".into()));
    for name in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        case.set(name, proxy.url.clone());
    }
    let port = |url: &str| url.rsplit(':').next().unwrap().to_string();
    case.set(
        "VAULT_ADDR",
        format!("http://localhost:{}", port(&shared().bao.addr)),
    );
    case.run(&["get", "--refresh"]).ok();
    assert!(
        proxy.seen().is_empty(),
        "loopback requests went to the proxy: {:?}",
        proxy.seen()
    );
}

/// Only IP literals and the name `localhost` itself are loopback: other
/// names under it (`vault.localhost`, `localhost.`) go to DNS, which may
/// send them anywhere.
#[test]
fn names_that_dns_resolves_are_not_loopback() {
    let mut case = Case::new();
    let port = case.standin.url.rsplit(':').next().unwrap().to_string();
    for host in ["localhost.", "seatable.localhost"] {
        case.set("SEATABLE_SERVER_URL", format!("http://{host}:{port}"));
        case.run(&["get"]).fails(2, "--allow-http");
    }
    assert_eq!(case.standin.stats().exchange_requests, 0);
}
