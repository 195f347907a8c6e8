//! The fault and bad-input matrix: each case asserts the exit code of
//! SPEC §8, one clear stderr line, no panic, no secret on stderr (checked by
//! `Case::run` for every run), and that the good cached entry survives.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use seatable_standin::Fault;
use serde_json::json;

use crate::support::proxy::Proxy;
use crate::support::vault_faults::{VaultFault, VaultFaults};
use crate::support::{Case, Out, shared};

/// A case with a good cached token, Vault reached through a proxy that can
/// be taken away.
struct World {
    case: Case,
    vault: Option<Proxy>,
    /// The KV path (under the `secret` mount) of the API token.
    kv_path: String,
    good: Vec<u8>,
}

impl World {
    fn new() -> World {
        let mut case = Case::new();
        let vault = Proxy::start(&shared().bao.addr);
        case.set("VAULT_ADDR", vault.url.clone());
        case.set("SEATABLE_CRED_TIMEOUT", "3s");
        case.run(&["get"]).ok();
        let entry = case.entry_files().remove(0);
        let good = std::fs::read(&entry).unwrap();
        let kv_path = case.secret.trim_start_matches("secret/").to_string();
        World {
            case,
            vault: Some(vault),
            kv_path,
            good,
        }
    }

    fn entry(&self) -> std::path::PathBuf {
        self.case
            .entry_files()
            .into_iter()
            .find(|p| {
                !p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("vault-")
            })
            .expect("an entry")
    }

    /// Runs the helper and checks the failure: code, one line naming `needle`.
    fn fails(&self, args: &[&str], code: i32, needle: &str) -> Out {
        let out = self.case.run(args);
        assert_ne!(out.code, 101, "panic: {}", out.stderr);
        out.fails(code, needle)
    }

    #[track_caller]
    fn entry_intact(&self) {
        assert_eq!(
            std::fs::read(self.entry()).unwrap(),
            self.good,
            "the good entry was changed"
        );
    }

    fn vault_down(&mut self) {
        self.vault = None;
    }
}

// --- Vault -------------------------------------------------------------------

#[test]
fn vault_down_with_a_fresh_cache_still_answers() {
    let mut w = World::new();
    w.vault_down();
    let out = w.case.run(&["get", "-o", "json"]).ok();
    assert_eq!(out.json()["cached"], true);
    w.entry_intact();
}

#[test]
fn vault_down_without_a_usable_cache_exits_5() {
    let mut w = World::new();
    w.vault_down();
    let started = Instant::now();
    w.fails(&["get", "--refresh", "-vvvv"], 5, "cannot reach Vault");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by --timeout"
    );
    w.entry_intact();
}

#[test]
fn vault_token_invalid_exits_3() {
    let mut w = World::new();
    w.case.set("VAULT_TOKEN", "s.not-a-real-token");
    w.case.secrets.push("s.not-a-real-token".into());
    w.fails(&["get", "--refresh", "-vvvv"], 3, "Vault denied");
    w.entry_intact();
}

#[test]
fn secret_path_missing_exits_3() {
    let w = World::new();
    shared()
        .bao
        .api("DELETE", &format!("secret/metadata/{}", w.kv_path), None);
    w.fails(
        &["get", "--refresh", "-vvvv"],
        3,
        &format!("no secret at {}", w.case.secret),
    );
    w.entry_intact();
}

#[test]
fn field_missing_exits_3() {
    let w = World::new();
    shared()
        .bao
        .kv2_put("secret", &w.kv_path, json!({"token": "x"}));
    w.fails(&["get", "--refresh"], 3, "no field 'api_token'");
    w.entry_intact();
}

#[test]
fn field_not_a_string_exits_3() {
    let w = World::new();
    shared()
        .bao
        .kv2_put("secret", &w.kv_path, json!({"api_token": {"nested": true}}));
    w.fails(&["get", "--refresh"], 3, "is an object, not a string");
    shared()
        .bao
        .kv2_put("secret", &w.kv_path, json!({"api_token": ""}));
    w.fails(&["get", "--refresh"], 3, "is empty");
    w.entry_intact();
}

/// A case whose Vault is reached through a forwarder that can inject faults.
fn behind_faults() -> (Case, VaultFaults) {
    let mut case = Case::new();
    let vault = VaultFaults::start(&shared().bao.addr);
    case.set("VAULT_ADDR", vault.url.clone())
        .set("SEATABLE_CRED_TIMEOUT", "10s");
    (case, vault)
}

/// Vault failing for a moment — 5xx, 429, sealed — is retried within the
/// deadline, on a new connection each time.
#[test]
fn vault_failing_for_a_moment_is_retried() {
    for fault in [
        VaultFault::new(500, "internal error"),
        VaultFault::new(502, "bad gateway"),
        VaultFault::new(503, "Vault is sealed"),
        VaultFault::new(429, "request path: rate limit quota exceeded"),
    ] {
        let (case, vault) = behind_faults();
        vault.push([fault.clone(), fault.clone()]);
        case.run(&["get", "-v"]).ok();
        assert_eq!(vault.faulted(), 2, "{fault:?}");
        assert!(vault.connections() >= 3, "{fault:?}: retried");
        assert_eq!(case.standin.exchanges(), 1);
    }
}

/// Vault failing until the deadline: exit 5, bounded by --timeout.
#[test]
fn vault_failing_until_the_deadline_exits_5() {
    let (mut case, vault) = behind_faults();
    case.set("SEATABLE_CRED_TIMEOUT", "2s");
    vault.push(std::iter::repeat_n(
        VaultFault::new(503, "Vault is sealed"),
        500,
    ));
    let started = Instant::now();
    case.run(&["get"]).fails(5, "sealed");
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(vault.faulted() >= 2, "it kept trying within the deadline");
}

/// Refusals are final: one request, no retry. (With the KV version given:
/// otherwise a refused KV v2 read is followed by the mount lookup, as the
/// vault CLI does, which is another question, not a retry.)
#[test]
fn vault_refusals_are_not_retried() {
    for (fault, needle) in [
        (VaultFault::new(403, "permission denied"), "Vault denied"),
        (VaultFault::new(400, "invalid request"), "Vault refused"),
    ] {
        let (mut case, vault) = behind_faults();
        case.set("SEATABLE_CRED_KV_VERSION", "2");
        vault.push([fault.clone()]);
        case.run(&["get"]).fails(3, needle);
        assert_eq!(vault.connections(), 1, "{fault:?} was retried");
        assert_eq!(case.standin.stats().exchange_requests, 0);
    }
}

// --- SeaTable ----------------------------------------------------------------

/// Each transient failure once, then a good answer: retried after the wait
/// the server asked for (or a backoff of at least 50 ms), exit 0.
#[test]
fn seatable_transient_failures_then_ok() {
    for (fault, waited_ms) in [
        (Fault::Status { code: 500 }, 50),
        (
            Fault::RateLimited {
                retry_after: Some(1),
                ratelimit_reset: None,
            },
            1000,
        ),
        (
            Fault::RateLimited {
                retry_after: None,
                ratelimit_reset: Some("1".into()),
            },
            1000,
        ),
        (Fault::Drop, 50),
        (Fault::Html, 50),
        (Fault::Oversize, 50),
    ] {
        let w = World::new();
        w.case.standin.push_faults([fault.clone()]);
        let out = w.case.run(&["get", "--refresh", "-o", "json", "-v"]).ok();
        assert_eq!(out.json()["cached"], false, "{fault:?}");
        let stats = w.case.standin.stats();
        assert_eq!(
            stats.exchange_requests, 3,
            "{fault:?}: first get, the fault, the retry"
        );
        let times = &stats.exchange_times_ms;
        assert!(
            times[2] - times[1] >= waited_ms,
            "{fault:?}: retried {} ms after the fault, not after {waited_ms} ms",
            times[2] - times[1]
        );
    }
}

/// A server asking for a wait longer than the deadline leaves: no retry
/// before it, no waiting out the deadline.
#[test]
fn seatable_asking_for_a_wait_past_the_deadline_is_not_retried() {
    let w = World::new();
    w.case.standin.push_faults(std::iter::repeat_n(
        Fault::RateLimited {
            retry_after: Some(60),
            ratelimit_reset: None,
        },
        10,
    ));
    let requests = w.case.standin.stats().exchange_requests;
    let started = Instant::now();
    w.fails(&["get", "--refresh"], 5, "429");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "left at once, without waiting out --timeout (3s)"
    );
    assert_eq!(w.case.standin.stats().exchange_requests, requests + 1);
    w.entry_intact();
}

#[test]
fn seatable_failing_until_the_deadline_exits_5() {
    for (fault, needle) in [
        (Fault::Status { code: 503 }, "503"),
        (Fault::Html, "maintenance page"),
        (Fault::Oversize, "larger than"),
        (Fault::Drop, "connection closed"),
        (
            Fault::RateLimited {
                retry_after: None,
                ratelimit_reset: None,
            },
            "429",
        ),
    ] {
        let w = World::new();
        w.case.standin.push_faults(std::iter::repeat_n(fault, 200));
        let started = Instant::now();
        w.fails(&["get", "--refresh", "-vvvv"], 5, needle);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{needle}: bounded by --timeout"
        );
        w.entry_intact();
    }
}

#[test]
fn seatable_slow_beyond_the_deadline_exits_5() {
    let w = World::new();
    w.case.standin.push_faults([Fault::Slow { millis: 8000 }]);
    let started = Instant::now();
    w.fails(&["get", "--refresh"], 5, "SeaTable");
    assert!(started.elapsed() < Duration::from_secs(7));
    w.entry_intact();
}

#[test]
fn seatable_port_closed_exits_5() {
    let w = World::new();
    w.case.standin.stop();
    w.fails(&["get", "--refresh", "-vvvv"], 5, "unreachable");
    w.entry_intact();
    // ... while a plain get is still answered from the cache.
    w.case.run(&["get"]).ok();
}

#[test]
fn seatable_rejection_exits_4_never_retried_and_drops_the_entry() {
    let w = World::new();
    w.case
        .standin
        .update_base(&w.case.base.api_token, |b| b.gone = true);
    let requests = w.case.standin.stats().exchange_requests;
    w.fails(&["get", "--refresh", "-vvvv"], 4, "404");
    assert_eq!(
        w.case.standin.stats().exchange_requests,
        requests + 1,
        "never retried"
    );
    assert!(
        w.case.entry_files().is_empty(),
        "a permanent rejection drops the entry"
    );
}

#[test]
fn invalid_api_token_exits_4() {
    let mut w = World::new();
    let bogus = "0123456789abcdef0123456789abcdef01234567";
    w.case.secrets.push(bogus.into());
    shared()
        .bao
        .kv2_put("secret", &w.kv_path, json!({"api_token": bogus}));
    let requests = w.case.standin.stats().exchange_requests;
    w.fails(&["get", "--refresh", "-vvvv"], 4, "403 Permission denied.");
    assert_eq!(
        w.case.standin.stats().exchange_requests,
        requests + 1,
        "never retried"
    );
    assert!(
        w.case.entry_files().is_empty(),
        "a permanent rejection drops the entry"
    );
}

/// A bad API token reads the same, exit 4, whether SeaTable answers as its
/// spec says (403 `Permission denied.`) or as older servers (404 `api
/// token not found.`).
#[test]
fn a_refused_api_token_reads_the_same_for_the_specs_403_and_older_servers_404() {
    for (older, status) in [
        (false, "403 Permission denied."),
        (true, "404 api token not found."),
    ] {
        let mut w = World::new();
        w.case.standin.set_compat(seatable_standin::Compat {
            bad_token_404: older,
            ..Default::default()
        });
        let bogus = "0123456789abcdef0123456789abcdef01234567";
        w.case.secrets.push(bogus.into());
        shared()
            .bao
            .kv2_put("secret", &w.kv_path, json!({"api_token": bogus}));
        let out = w.fails(
            &["get", "--refresh"],
            4,
            "the API token in Vault was refused",
        );
        assert!(out.stderr.contains(status), "{}", out.stderr);
        assert!(
            w.case.entry_files().is_empty(),
            "{status}: the entry is dropped"
        );
    }
}

// --- the cache itself --------------------------------------------------------

#[test]
fn bad_entries_are_misses_and_are_replaced() {
    let w = World::new();
    let entry = w.entry();
    let truncated = &w.good[..w.good.len() / 2];
    let foreign = String::from_utf8(w.good.clone())
        .unwrap()
        .replace("\"key\":\"", "\"key\":\"f");
    for (what, bytes) in [
        ("corrupt", b"\x00\xffnot json at all".to_vec()),
        ("truncated", truncated.to_vec()),
        ("foreign", foreign.into_bytes()),
    ] {
        let requests = w.case.standin.stats().exchange_requests;
        std::fs::write(&entry, bytes).unwrap();
        w.case.run(&["get"]).ok();
        assert_eq!(
            w.case.standin.stats().exchange_requests,
            requests + 1,
            "{what} entry is a miss"
        );
        w.case.run(&["get"]).ok();
        assert_eq!(
            w.case.standin.stats().exchange_requests,
            requests + 1,
            "{what} entry was replaced"
        );
    }
}

#[test]
fn wrong_mode_and_foreign_owner_entries_are_misses() {
    let w = World::new();
    let entry = w.entry();
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o640)).unwrap();
    let requests = w.case.standin.stats().exchange_requests;
    w.case.run(&["get"]).ok();
    assert_eq!(
        w.case.standin.stats().exchange_requests,
        requests + 1,
        "wrong mode: a miss"
    );
    // Owned by another user (a throwaway one; creating it needs root).
    let other = crate::support::users::User::new("an entry owned by another user");
    crate::support::users::chown(&entry, other.uid, other.gid);
    w.case.run(&["get"]).ok();
    assert_eq!(
        w.case.standin.stats().exchange_requests,
        requests + 2,
        "foreign owner: a miss"
    );
}

#[test]
fn foreign_cache_directory_is_refused() {
    let mut case = Case::new();
    let other = crate::support::users::User::new("a cache directory of another user");
    let dir = case.dir.path().join("theirs");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    crate::support::users::chown(&dir, other.uid, other.gid);
    case.set("SEATABLE_CRED_CACHE_DIR", dir.to_str().unwrap());
    // (Inside the case's user namespace the other user shows as unmapped.)
    case.run(&["get"]).fails(2, "belongs to uid");
}

// --- bad input ---------------------------------------------------------------

#[test]
fn usage_errors_exit_2_before_any_network_work() {
    let mut w = World::new();
    let requests = w.case.standin.stats().exchange_requests;
    w.fails(&["get", "--no-such-flag"], 2, "--no-such-flag");
    w.fails(&["get", "-o", "yaml"], 2, "yaml");
    w.fails(&["get", "--refresh-before", "5x"], 2, "5x");
    w.fails(&["get", "--timeout", "0s"], 2, "timeout");
    let config = w.case.dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[profiles.default]\nserver_url = \"https://x\"\nsecrte = \"typo\"\n",
    )
    .unwrap();
    w.fails(&["--config", config.to_str().unwrap(), "get"], 2, "secrte");
    std::fs::write(&config, "[profiles.default\nserver_url = ").unwrap();
    w.fails(
        &["--config", config.to_str().unwrap(), "get"],
        2,
        "bad.toml",
    );
    std::fs::write(&config, [0xff, 0xfe, 0x00, 0x01]).unwrap();
    w.fails(
        &["--config", config.to_str().unwrap(), "get"],
        2,
        "bad.toml",
    );
    w.case.set("SEATABLE_SERVER_URL", "not a url");
    w.fails(&["get"], 2, "SEATABLE_SERVER_URL: 'not a url'");
    w.case.set("SEATABLE_SERVER_URL", "ftp://x");
    w.fails(&["get"], 2, "https://");
    w.case.unset("SEATABLE_SERVER_URL");
    w.fails(&["get"], 2, "SEATABLE_SERVER_URL");
    w.case
        .set("SEATABLE_SERVER_URL", w.case.standin.url.clone());
    w.case.set("VAULT_ADDR", "vault.example.com:8200");
    w.fails(&["get"], 2, "VAULT_ADDR: 'vault.example.com:8200'");
    assert_eq!(w.case.standin.stats().exchange_requests, requests);
    w.entry_intact();
}

#[test]
fn garbage_kubernetes_exec_info_exits_2() {
    let mut w = World::new();
    for garbage in [
        "{not json",
        "\u{1}\u{2}\u{3}",
        "[1,2,3]",
        r#"{"apiVersion":"client.authentication.k8s.io/v9"}"#,
    ] {
        w.case.set("KUBERNETES_EXEC_INFO", garbage);
        w.fails(&["get"], 2, "KUBERNETES_EXEC_INFO");
    }
    // Other formats do not read it.
    w.case.run(&["get", "-o", "token"]).ok();
    w.entry_intact();
}

#[test]
fn git_credential_noise_and_oversize_lines_exit_2() {
    let w = World::new();
    let requests = w.case.standin.stats().exchange_requests;
    for (input, needle) in [
        ("\u{0}\u{1}\u{2}\u{3}".to_string(), "NUL"),
        ("plain words\n".to_string(), "key=value"),
        (format!("host={}\n", "x".repeat(200 * 1024)), "larger than"),
    ] {
        let out = w.case.run_with_stdin(&["git-credential", "get"], &input);
        assert_ne!(out.code, 101);
        out.fails(2, needle);
    }
    let binary: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let mut cmd = w.case.command(&["git-credential", "get"]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let _ = child.stdin.take().unwrap().write_all(&binary);
    }
    let output = crate::support::wait_bounded(child, Duration::from_secs(60));
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&output.stderr).lines().count(), 1);
    assert_eq!(w.case.standin.stats().exchange_requests, requests);
    w.entry_intact();
}

#[test]
fn no_backtrace_even_when_asked_for() {
    let mut w = World::new();
    w.case
        .set("RUST_BACKTRACE", "full")
        .set("RUST_LIB_BACKTRACE", "1");
    shared()
        .bao
        .api("DELETE", &format!("secret/metadata/{}", w.kv_path), None);
    let out = w.fails(&["get", "--refresh"], 3, "no secret at");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(!out.stderr.contains("backtrace") && !out.stderr.contains("stack"));
}

#[test]
fn vault_refusals_exit_3() {
    let mut w = World::new();
    // A token without the reader policy.
    let weak = shared().bao.token(&["default"], "1h");
    w.case.secrets.push(weak.clone());
    w.case.set("VAULT_TOKEN", weak);
    w.fails(&["get", "--refresh", "-vvvv"], 3, "403");
    // No token at all.
    w.case.unset("VAULT_TOKEN");
    w.fails(&["get", "--refresh"], 2, "VAULT_TOKEN");
    w.entry_intact();
}
