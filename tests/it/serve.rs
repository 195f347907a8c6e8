//! `serve`: the local agent, with the unmodified SDKs (PyPI `seatable-api`
//! 4.0.0, npm `seatable-api` 1.0.46), curl and raw sockets against it — the
//! real OpenBao behind it and the SeaTable stand-in beyond.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use seatable_standin::Fault;
use serde_json::Value;

use crate::support::Case;
use crate::support::agent::{Agent, wait_for};
use crate::support::sdk::{self, Lang};

const LONG: Duration = Duration::from_secs(60);

const PYTHON_ROUND: &str = r#"
import json, os
from seatable_api import Base
base = Base(os.environ["KEY"], os.environ["AGENT"])
base.auth()
tables = [t["name"] for t in base.list_tables()]
first = base.append_row("Table1", {"Name": "Grace"})
rows = base.list_rows("Table1")
print(json.dumps({"tables": tables, "first": first, "rows": rows, "token": base.jwt_token,
                  "server": base.dtable_server_url}))
"#;

const NODE_ROUND: &str = r#"
const { Base } = require('seatable-api');
(async () => {
  const base = new Base({ server: process.env.AGENT, APIToken: process.env.KEY });
  await base.auth();
  const metadata = await base.getMetadata();
  const first = await base.appendRow('Table1', { Name: 'Hopper' });
  const rows = await base.listRows('Table1');
  console.log(JSON.stringify({ tables: metadata.tables.map(t => t.name), first, rows,
                               token: base.accessToken, server: base.dtableServer }));
})().catch(e => { console.error(e && e.response ? e.response.status + ' ' + JSON.stringify(e.response.data) : e); process.exit(1); });
"#;

/// What an SDK round trip printed holds what it should; returns the token it held.
fn check_round(case: &Case, agent: &Agent, out: &Value, name: &str) -> String {
    assert_eq!(out["tables"], serde_json::json!(["Table1"]), "{out}");
    assert_eq!(out["first"]["Name"], name, "{out}");
    let rows = out["rows"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["Name"] == name), "{out}");
    assert_eq!(
        out["server"].as_str().unwrap().trim_end_matches('/'),
        format!("{}/api-gateway", agent.url)
    );
    // The row reached SeaTable itself.
    let stored = case.standin.rows(&case.base.dtable_uuid, "Table1");
    assert!(stored.iter().any(|r| r["Name"] == name), "{stored:?}");
    out["token"].as_str().unwrap().to_string()
}

/// The token a client holds is no base token and works nowhere but at the agent.
fn useless_elsewhere(case: &Case, token: &str) {
    assert!(!case.standin.issued_tokens().iter().any(|t| t == token));
    assert!(!case.standin.accepts(token, &case.base.dtable_uuid));
    let direct = reqwest::blocking::Client::new()
        .get(format!(
            "{}/api-gateway/api/v2/dtables/{}/metadata/",
            case.standin.url, case.base.dtable_uuid
        ))
        .header("Authorization", format!("Token {token}"))
        .send()
        .unwrap();
    assert!(
        direct.status() == 401 || direct.status() == 403,
        "{}",
        direct.status()
    );
}

#[test]
fn python_sdk_works_through_the_agent() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let out = sdk::json(
        Lang::Python,
        PYTHON_ROUND,
        &[("KEY", &agent.key), ("AGENT", &agent.url)],
    );
    let token = check_round(&case, &agent, &out, "Grace");
    useless_elsewhere(&case, &token);
    case.assert_no_secrets(&crate::support::Out {
        code: 0,
        stdout: String::new(),
        stderr: agent.stderr(),
    });
}

#[test]
fn npm_sdk_works_through_the_agent() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let out = sdk::json(
        Lang::Node,
        NODE_ROUND,
        &[("KEY", &agent.key), ("AGENT", &agent.url)],
    );
    let token = check_round(&case, &agent, &out, "Hopper");
    useless_elsewhere(&case, &token);
}

const PYTHON_LOOP: &str = r#"
import json, os, sys
from seatable_api import Base
base = Base(os.environ["KEY"], os.environ["AGENT"])
base.auth()
calls = failures = 0
errors = []
while not os.path.exists(os.environ["STOP"]):
    try:
        base.list_rows("Table1")
        base.append_row("Table1", {"Name": "loop"})
        calls += 2
    except Exception as e:
        failures += 1
        errors.append(repr(e)[:200])
print(json.dumps({"calls": calls, "failures": failures, "errors": errors[:3]}))
"#;

const NODE_LOOP: &str = r#"
const fs = require('fs');
const { Base } = require('seatable-api');
(async () => {
  const base = new Base({ server: process.env.AGENT, APIToken: process.env.KEY });
  await base.auth();
  let calls = 0, failures = 0; const errors = [];
  while (!fs.existsSync(process.env.STOP)) {
    try { await base.listRows('Table1'); await base.appendRow('Table1', { Name: 'loop' }); calls += 2; }
    catch (e) { failures += 1; errors.push(String(e && e.response ? e.response.status : e).slice(0, 200)); }
  }
  console.log(JSON.stringify({ calls, failures, errors: errors.slice(0, 3) }));
})();
"#;

/// Base tokens that live 4 s; both SDKs keep working for several lifetimes
/// with the one session token they got at the start.
#[test]
fn clients_outlive_short_lived_base_tokens() {
    let case = Case::new();
    case.standin
        .update_base(&case.base.api_token, |b| b.lifetime_secs = Some(4));
    let agent = Agent::start(&case, &[]);
    let stop = case.dir.path().join("stop");
    let stop_text = stop.display().to_string();
    let env = [
        ("KEY", agent.key.as_str()),
        ("AGENT", agent.url.as_str()),
        ("STOP", stop_text.as_str()),
    ];
    let py = sdk::script(Lang::Python, PYTHON_LOOP, &env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let js = sdk::script(Lang::Node, NODE_LOOP, &env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = case.standin.exchanges();
    // Several lifetimes: the agent refreshes in the background meanwhile.
    wait_for("three refreshes", LONG, || {
        case.standin.exchanges() >= start + 3
    });
    std::fs::write(&stop, "").unwrap();
    for (name, child) in [("python", py), ("node", js)] {
        let out = crate::support::wait_bounded(child, LONG);
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{name} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert_eq!(summary["failures"], 0, "{name}: {summary}");
        assert!(summary["calls"].as_u64().unwrap() > 4, "{name}: {summary}");
    }
    assert_eq!(
        agent.metric("seatable_cred_refresh_failures_total{profile=\"default\"}"),
        Some(0.0)
    );
}

/// SeaTable says "Token expired." for a token it had issued: one refresh,
/// one replay, and the client sees nothing — however many requests saw it.
#[test]
fn token_expired_from_seatable_is_absorbed_with_one_refresh() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let session = session_of(&agent);
    let rows = rows_of(&case);
    assert_eq!(agent.get(&rows, &session).0, 200);

    // One request, one injected answer.
    let before = case.standin.exchanges();
    case.standin.push_gateway_faults([Fault::TokenExpired]);
    let (status, body) = agent.get(&rows, &session);
    assert_eq!(status, 200, "{body}");
    assert_eq!(case.standin.exchanges(), before + 1, "exactly one refresh");
    assert_eq!(
        agent.metric("seatable_cred_replays_total{profile=\"default\"}"),
        Some(1.0)
    );

    // A 403 that is not about expiry goes to the client as it is.
    case.standin
        .push_gateway_faults([Fault::Status { code: 403 }]);
    let before = case.standin.exchanges();
    assert_eq!(agent.get(&rows, &session).0, 403);
    assert_eq!(case.standin.exchanges(), before);
}

/// Eight requests at once with a token SeaTable no longer takes: one
/// refresh for all of them.
#[test]
fn token_expired_for_many_requests_at_once_is_one_refresh() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let session = session_of(&agent);
    let rows = rows_of(&case);
    assert_eq!(agent.get(&rows, &session).0, 200);
    let before = case.standin.exchanges();
    case.standin.expire_issued();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| agent.get(&rows, &session)))
            .collect();
        for h in handles {
            let (status, body) = h.join().unwrap();
            assert_eq!(status, 200, "{body}");
        }
    });
    assert_eq!(case.standin.exchanges(), before + 1, "one refresh for all");
}

/// A SeaTable (or a path of it) that answers "Token expired." to every
/// token, the new one too, must not turn each client request into an
/// exchange: a client looping on such an answer would spend the API
/// token's rate limit for everyone using it. After one forced refresh the
/// next ones wait out a minimum interval; meanwhile the client gets
/// SeaTable's answer as it is.
#[test]
fn token_expired_again_and_again_is_not_an_exchange_per_request() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let session = session_of(&agent);
    let rows = rows_of(&case);
    assert_eq!(agent.get(&rows, &session).0, 200);
    let before = case.standin.exchanges();
    case.standin
        .push_gateway_faults(std::iter::repeat_n(Fault::TokenExpired, 40));
    let mut answers = Vec::new();
    for _ in 0..12 {
        answers.push(agent.get(&rows, &session));
    }
    assert_eq!(
        case.standin.exchanges(),
        before + 1,
        "one forced refresh, then none within the interval: {answers:?}"
    );
    // The client sees SeaTable's own answer, which SDKs know.
    for (status, body) in &answers {
        assert_eq!(
            (*status, body.as_str()),
            (403, r#"{"error_msg":"Token expired."}"#)
        );
    }
    // What was answered is visible to whoever watches the agent.
    assert_eq!(
        agent.metric("seatable_cred_replays_total{profile=\"default\"}"),
        Some(1.0)
    );
}

/// Servers (and proxies in front of them) that answer an expired base
/// token with 401 rather than SeaTable's 403 "Token expired.": the agent
/// takes a 401 for an expiry too — one refresh, one replay, and the client
/// (here the unmodified Python SDK, which would raise on a 401) never sees
/// it.
#[test]
fn a_401_from_the_gateway_is_an_expiry_absorbed_with_one_refresh() {
    let case = Case::new();
    case.standin.set_compat(seatable_standin::Compat {
        expired_401: true,
        ..Default::default()
    });
    let agent = Agent::start(&case, &[]);
    let session = session_of(&agent);
    let rows = rows_of(&case);
    assert_eq!(agent.get(&rows, &session).0, 200);

    // The token the agent holds expires at SeaTable, which says so with
    // 401 — in the middle of the unmodified Python SDK's work.
    let before = case.standin.stats();
    case.standin.expire_issued();
    let out = sdk::json(
        Lang::Python,
        PYTHON_ROUND,
        &[("KEY", &agent.key), ("AGENT", &agent.url)],
    );
    check_round(&case, &agent, &out, "Grace");
    let after = case.standin.stats();
    assert_eq!(after.exchanges, before.exchanges + 1, "exactly one refresh");
    assert_eq!(after.gateway_refused, before.gateway_refused + 1, "one 401");
    assert_eq!(
        agent.metric("seatable_cred_replays_total{profile=\"default\"}"),
        Some(1.0),
        "exactly one replay"
    );
    assert_eq!(agent.get(&rows, &session).0, 200);
}

/// A gateway that answers 401 to every token, the new one too, is bounded
/// as the 403 "Token expired." path is: one forced refresh, then none for
/// 30 s; the client gets SeaTable's 401 as it is.
#[test]
fn a_401_again_and_again_is_not_an_exchange_per_request() {
    let case = Case::new();
    case.standin.set_compat(seatable_standin::Compat {
        expired_401: true,
        ..Default::default()
    });
    let agent = Agent::start(&case, &[]);
    let session = session_of(&agent);
    let rows = rows_of(&case);
    assert_eq!(agent.get(&rows, &session).0, 200);
    let before = case.standin.exchanges();
    case.standin
        .push_gateway_faults(std::iter::repeat_n(Fault::TokenExpired, 40));
    let answers: Vec<(u16, String)> = (0..12).map(|_| agent.get(&rows, &session)).collect();
    assert_eq!(
        case.standin.exchanges(),
        before + 1,
        "one forced refresh, then none within the interval: {answers:?}"
    );
    for (status, body) in &answers {
        assert_eq!(
            (*status, body.as_str()),
            (401, r#"{"error_msg":"Token expired."}"#)
        );
    }
    assert_eq!(
        agent.metric("seatable_cred_replays_total{profile=\"default\"}"),
        Some(1.0)
    );
}

fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "30"])
        .args(args)
        .output()
        .expect("curl is needed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_string())
}

#[test]
fn wrong_or_missing_keys_get_seatables_403() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let exchange = format!("{}/api/v2.1/dtable/app-access-token/", agent.url);
    let mut near = agent.key.clone().into_bytes();
    near[39] = if near[39] == b'0' { b'1' } else { b'0' };
    let near = String::from_utf8(near).unwrap();
    for header in [
        String::new(),
        "Authorization: Token ".to_string(),
        format!("Authorization: Token {near}"),
        format!("Authorization: Token {}", &agent.key[..39]),
        format!("Authorization: Basic {}", agent.key),
        // The real API token is no key of the agent's.
        format!("Authorization: Token {}", case.base.api_token),
    ] {
        let mut args = vec![exchange.as_str()];
        if !header.is_empty() {
            args.extend(["-H", header.as_str()]);
        }
        let (code, body) = curl(&args);
        assert_eq!(code, 403, "{header}: {body}");
        assert_eq!(body, r#"{"error_msg":"Permission denied."}"#);
    }
    // Bearer, as SeaTable 4.0+ accept, works.
    let bearer = format!("Authorization: Bearer {}", agent.key);
    let (code, body) = curl(&[&exchange, "-H", &bearer]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        agent.metric("seatable_cred_exchanges_refused_total"),
        Some(6.0)
    );

    // Proxied requests without a valid session token never reach SeaTable.
    let seen = case.standin.stats().gateway_requests;
    let metadata = format!(
        "{}/api-gateway/api/v2/dtables/{}/metadata/",
        agent.url, case.base.dtable_uuid
    );
    let stranger = {
        // A session token made by another agent (another key).
        let other =
            Case::with_standin(crate::support::shared(), seatable_standin::Standin::start());
        let other_agent = Agent::start(&other, &[]);
        other_agent.exchange()["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for header in [
        String::new(),
        "Authorization: Token not-a-token".to_string(),
        format!("Authorization: Token {}", agent.key),
        format!("Authorization: Token {stranger}"),
    ] {
        let mut args = vec![metadata.as_str()];
        if !header.is_empty() {
            args.extend(["-H", header.as_str()]);
        }
        let (code, body) = curl(&args);
        assert_eq!(code, 403, "{header}: {body}");
        assert_eq!(body, r#"{"error_msg":"Permission denied."}"#);
    }
    assert_eq!(case.standin.stats().gateway_requests, seen);
}

/// A session asked with `?exp=` ends like SeaTable's tokens do: 403 "Token
/// expired.", which the SDKs know how to handle (authenticate again).
#[test]
fn sessions_expire_as_asked() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let r: Value = agent
        .http
        .get(format!(
            "{}/api/v2.1/dtable/app-access-token/?exp=1s",
            agent.url
        ))
        .header("Authorization", format!("Token {}", agent.key))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let session = r["access_token"].as_str().unwrap().to_string();
    let metadata = format!(
        "/api-gateway/api/v2/dtables/{}/metadata/",
        case.base.dtable_uuid
    );
    wait_for("the session to expire", LONG, || {
        agent.get(&metadata, &session) == (403, r#"{"error_msg":"Token expired."}"#.to_string())
    });
    let (code, _) = curl(&[
        &format!("{}/api/v2.1/dtable/app-access-token/?exp=never", agent.url),
        "-H",
        &format!("Authorization: Token {}", agent.key),
    ]);
    assert_eq!(code, 400);
}

const PARSE_METRICS: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        out[f"{s.name}{{{labels}}}"] = s.value
print(json.dumps(out))
"#;

#[test]
fn metrics_parse_and_hold_no_secrets() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let session = session_of(&agent);
    agent.exchange();
    let metadata = format!(
        "/api-gateway/api/v2/dtables/{}/metadata/",
        case.base.dtable_uuid
    );
    assert_eq!(agent.get(&metadata, &session).0, 200);
    assert_eq!(agent.get(&metadata, "wrong").0, 403);
    let text = agent.metrics();
    let mut child = sdk::script(Lang::Python, PARSE_METRICS, &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        parsed["seatable_cred_exchanges_total{profile=default}"], 2.0,
        "{parsed}"
    );
    assert_eq!(
        parsed["seatable_cred_proxied_requests_total{code=200}"],
        1.0
    );
    assert_eq!(
        parsed["seatable_cred_proxied_requests_total{code=403}"],
        1.0
    );
    assert_eq!(
        parsed["seatable_cred_refresh_failures_total{profile=default}"],
        0.0
    );
    let left = parsed["seatable_cred_token_expiry_seconds{profile=default}"]
        .as_f64()
        .unwrap();
    assert!(left > 3.0 * 24.0 * 3600.0 - 120.0, "{left}");
    for secret in case
        .secrets
        .iter()
        .chain(case.standin.issued_tokens().iter())
        .chain([&agent.key, &session])
    {
        assert!(!text.contains(secret.as_str()), "a secret in /metrics");
    }
    let health: Value = agent
        .http
        .get(format!("{}/health", agent.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["profiles"]["default"]["ready"], true);
}

/// The agent's cached token is `get`'s: a cache hit, no exchange.
#[test]
fn get_stays_a_cache_hit_while_serving() {
    let case = Case::new();
    let _agent = Agent::start(&case, &[]);
    let exchanges = case.standin.exchanges();
    let out = case.run(&["get", "-o", "json"]).ok();
    assert_eq!(out.json()["cached"], true);
    assert_eq!(case.standin.exchanges(), exchanges);
}

#[test]
fn env_file_is_private_and_its_key_survives_a_restart() {
    use std::os::unix::fs::PermissionsExt;
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&agent.env_file), 0o600);
    assert_eq!(mode(agent.env_file.parent().unwrap()), 0o700);
    let text = std::fs::read_to_string(&agent.env_file).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        [
            format!("SEATABLE_SERVER_URL={}", agent.url),
            format!("SEATABLE_API_TOKEN={}", agent.key),
            format!("SEATABLE_CRED_AGENT_URL={}", agent.url),
            format!("dtable_web_url={}", agent.url),
            format!("api_token={}", agent.key),
        ]
    );
    assert_eq!(agent.key.len(), 40);
    assert!(agent.key.bytes().all(|b| b.is_ascii_hexdigit()));
    let session = session_of(&agent);
    let key = agent.key.clone();
    drop(agent);
    let again = Agent::start_keep(&case);
    assert_eq!(again.key, key, "the key is reused");
    let metadata = format!(
        "/api-gateway/api/v2/dtables/{}/metadata/",
        case.base.dtable_uuid
    );
    assert_eq!(again.get(&metadata, &session).0, 200, "sessions survive");
}

/// SIGTERM: no new connections, the request in flight finishes, exit 0.
#[test]
fn sigterm_finishes_requests_in_flight_and_exits_0() {
    let case = Case::new();
    let mut agent = Agent::start(&case, &[]);
    let session = session_of(&agent);
    case.standin.set_gateway_delay(Duration::from_millis(1500));
    let seen = case.standin.stats().gateway_requests;
    let metadata = format!(
        "/api-gateway/api/v2/dtables/{}/metadata/",
        case.base.dtable_uuid
    );
    std::thread::scope(|s| {
        let in_flight = s.spawn(|| agent.get(&metadata, &session));
        wait_for("the request to reach SeaTable", LONG, || {
            case.standin.stats().gateway_requests > seen
        });
        agent.signal(libc::SIGTERM);
        wait_for("the listener to close", LONG, || {
            TcpStream::connect(agent.addr()).is_err()
        });
        let (status, body) = in_flight.join().unwrap();
        assert_eq!(status, 200, "{body}");
    });
    assert_eq!(agent.wait_exit(LONG), 0, "{}", agent.stderr());
}

/// SIGHUP reads the config again (a new lifetime makes a new token); a
/// broken config leaves the agent as it was. systemd hears of each step.
#[test]
fn sighup_reloads_the_config() {
    let mut case = Case::new();
    let config = case.dir.path().join("serve.toml");
    let (url, secret) = (case.standin.url.clone(), case.secret.clone());
    let write = |lifetime: &str| {
        std::fs::write(
            &config,
            format!(
                "[profiles.default]\nserver_url = \"{url}\"\nsecret = \"{secret}\"\n{lifetime}"
            ),
        )
        .unwrap()
    };
    write("");
    case.unset("SEATABLE_SERVER_URL")
        .unset("SEATABLE_CRED_SECRET")
        .set("SEATABLE_CRED_CONFIG", config.display().to_string());
    let notify_path = case.dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(LONG)).unwrap();
    let notify_text = notify_path.display().to_string();
    let agent = Agent::start_with(&case, &[], &[("NOTIFY_SOCKET", notify_text.as_str())]);
    let next = || {
        let mut buf = [0u8; 256];
        let n = notify.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(next(), "READY=1");
    assert_eq!(case.standin.stats().last_exp, None);

    write("lifetime = \"1h\"\n");
    agent.signal(libc::SIGHUP);
    assert!(next().starts_with("RELOADING=1\nMONOTONIC_USEC="));
    assert_eq!(next(), "READY=1");
    wait_for("a token of the new lifetime", LONG, || {
        case.standin.stats().last_exp.as_deref() == Some("1h")
    });
    let session = session_of(&agent);

    std::fs::write(&config, "[profiles.default\nbroken").unwrap();
    agent.signal(libc::SIGHUP);
    assert!(next().starts_with("RELOADING=1"));
    assert_eq!(next(), "READY=1");
    assert!(
        agent.stderr().contains("reload failed"),
        "{}",
        agent.stderr()
    );
    let metadata = format!(
        "/api-gateway/api/v2/dtables/{}/metadata/",
        case.base.dtable_uuid
    );
    assert_eq!(agent.get(&metadata, &session).0, 200);
    agent.signal(libc::SIGTERM);
    assert_eq!(next(), "STOPPING=1");
}

/// A reload that leaves a profile's settings as they were keeps its base
/// token: no gap in which the profile has none, no new token fetched.
#[test]
fn a_reload_keeps_an_unchanged_profiles_token() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let session = session_of(&agent);
    let metadata = format!(
        "/api-gateway/api/v2/dtables/{}/metadata/",
        case.base.dtable_uuid
    );
    assert_eq!(agent.get(&metadata, &session).0, 200);
    let installed = log_lines(&agent, "new base token");
    assert_eq!(installed, 1, "{}", agent.stderr());
    let exchanges = case.standin.exchanges();
    agent.signal(libc::SIGHUP);
    wait_for("the reload", LONG, || {
        log_lines(&agent, "reloaded the configuration") == 1
    });
    // Ready at once, with the same token: it was carried over, not fetched again.
    healthy(&agent);
    assert_eq!(agent.get(&metadata, &session).0, 200);
    assert_eq!(
        log_lines(&agent, "new base token"),
        installed,
        "{}",
        agent.stderr()
    );
    assert_eq!(case.standin.exchanges(), exchanges);
}

/// Replacing a key (delete the env file, SIGHUP) ends every session of the
/// profile at once — also a session the agent has verified before, and
/// would otherwise take on trust.
#[test]
fn replacing_the_key_ends_its_sessions() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let session = session_of(&agent);
    let metadata = format!(
        "/api-gateway/api/v2/dtables/{}/metadata/",
        case.base.dtable_uuid
    );
    // Twice: the second time the agent knows the session already.
    assert_eq!(agent.get(&metadata, &session).0, 200);
    assert_eq!(agent.get(&metadata, &session).0, 200);

    std::fs::remove_file(&agent.env_file).unwrap();
    agent.signal(libc::SIGHUP);
    wait_for("the reload", LONG, || {
        log_lines(&agent, "reloaded the configuration") == 1
    });
    let text = std::fs::read_to_string(&agent.env_file).unwrap();
    let new_key = text
        .lines()
        .find_map(|l| l.strip_prefix("SEATABLE_API_TOKEN="))
        .unwrap();
    assert_ne!(new_key, agent.key);
    let denied = (403, r#"{"error_msg":"Permission denied."}"#.to_string());
    assert_eq!(agent.get(&metadata, &session), denied);
    assert_eq!(
        agent.get("/api/v2.1/dtable/app-access-token/", &agent.key),
        denied
    );
    // The new key's sessions work, and the old one stays refused after them.
    let r: Value = agent
        .http
        .get(format!("{}/api/v2.1/dtable/app-access-token/", agent.url))
        .header("Authorization", format!("Token {new_key}"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let fresh = r["access_token"].as_str().unwrap();
    assert_eq!(agent.get(&metadata, fresh).0, 200);
    assert_eq!(agent.get(&metadata, fresh).0, 200);
    assert_eq!(agent.get(&metadata, &session), denied);
}

/// Several profiles at once: each key opens its own base; a session of one
/// profile carries that profile's base token only.
#[test]
fn several_profiles_each_with_its_own_key() {
    let mut case = Case::new();
    let shared = crate::support::shared();
    let other = case.standin.add_base(seatable_standin::Base::default());
    let other_path = format!("it/{}", seatable_standin::random_hex(6));
    shared.bao.kv2_put(
        "secret",
        &other_path,
        serde_json::json!({"api_token": other.api_token}),
    );
    let config = case.dir.path().join("profiles.toml");
    std::fs::write(
        &config,
        format!(
            "[profiles.crm]\nserver_url = \"{url}\"\nsecret = \"{}\"\n\n[profiles.billing]\nserver_url = \"{url}\"\nsecret = \"secret/{other_path}\"\n",
            case.secret,
            url = case.standin.url
        ),
    )
    .unwrap();
    case.unset("SEATABLE_SERVER_URL")
        .unset("SEATABLE_CRED_SECRET")
        .set("SEATABLE_CRED_CONFIG", config.display().to_string());
    let agent = Agent::start_profiles(&case, &["crm", "billing"], "crm");
    let billing_key = agent.key_of("billing");
    assert_ne!(agent.key, billing_key);
    let exchange = |key: &str| -> Value {
        agent
            .http
            .get(format!("{}/api/v2.1/dtable/app-access-token/", agent.url))
            .header("Authorization", format!("Token {key}"))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let crm = exchange(&agent.key);
    let billing = exchange(&billing_key);
    assert_eq!(crm["dtable_uuid"], case.base.dtable_uuid.as_str());
    assert_eq!(billing["dtable_uuid"], other.dtable_uuid.as_str());
    let metadata = |uuid: &str| format!("/api-gateway/api/v2/dtables/{uuid}/metadata/");
    let crm_session = crm["access_token"].as_str().unwrap();
    let billing_session = billing["access_token"].as_str().unwrap();
    assert_eq!(
        agent.get(&metadata(&other.dtable_uuid), billing_session).0,
        200
    );
    assert_eq!(
        agent.get(&metadata(&case.base.dtable_uuid), crm_session).0,
        200
    );
    // crm's session holds crm's base token: SeaTable refuses it for billing's base.
    assert_eq!(agent.get(&metadata(&other.dtable_uuid), crm_session).0, 403);
    let health: Value = agent
        .http
        .get(format!("{}/health", agent.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(health["profiles"]["crm"]["ready"], true);
    assert_eq!(health["profiles"]["billing"]["ready"], true);
}

/// The proxied path of the case's base's rows.
fn rows_of(case: &Case) -> String {
    format!(
        "/api-gateway/api/v2/dtables/{}/rows/?table_name=Table1",
        case.base.dtable_uuid
    )
}

fn session_of(agent: &Agent) -> String {
    agent.exchange()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn healthy(agent: &Agent) {
    assert_eq!(
        agent
            .http
            .get(format!("{}/health", agent.url))
            .send()
            .unwrap()
            .status(),
        200
    );
}

/// Lines of the agent's log that mention `needle`.
fn log_lines(agent: &Agent, needle: &str) -> usize {
    agent.log_lines(needle)
}

#[test]
fn malformed_requests_get_400_and_one_log_line() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let answer = agent.raw(b"THIS IS NOT HTTP\r\n\r\n", LONG);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let huge = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100_000)
    );
    let answer = agent.raw(huge.as_bytes(), LONG);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.100}");
    healthy(&agent);
    wait_for("the log lines", LONG, || {
        log_lines(&agent, "malformed request") == 1
            && log_lines(&agent, "request head too large") == 1
    });
}

#[test]
fn oversized_bodies_get_413() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let session = session_of(&agent);
    let path = format!(
        "/api-gateway/api/v2/dtables/{}/rows/",
        case.base.dtable_uuid
    );
    // Declared too large: refused before reading.
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Token {session}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        11 * 1024 * 1024
    );
    let answer = agent.raw(head.as_bytes(), LONG);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // The unread body makes the connection unusable: the client is told.
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{answer}"
    );
    // Chunked, growing past the limit.
    let big = reqwest::blocking::Body::new(std::io::repeat(b'x').take(11 * 1024 * 1024));
    let r = agent
        .http
        .post(format!("{}{path}", agent.url))
        .header("Authorization", format!("Token {session}"))
        .body(big)
        .send();
    if let Ok(r) = r {
        assert_eq!(r.status(), 413);
    }
    let seen = case.standin.stats().gateway_requests;
    healthy(&agent);
    assert_eq!(case.standin.stats().gateway_requests, seen);
    assert_eq!(
        agent.get(&format!("{path}?table_name=Table1"), &session).0,
        200
    );
}

#[test]
fn slow_loris_is_cut_and_others_are_served() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let mut slow = TcpStream::connect(agent.addr()).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    healthy(&agent);
    slow.set_read_timeout(Some(LONG)).unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(30), "cut after {waited:?}");
    assert!(
        !String::from_utf8_lossy(&buf).contains("200 OK"),
        "no answer to half a request"
    );
    // On a connection of its own: the client's pooled one, idle since the
    // first check, is cut by the same header timeout at about this moment.
    let answer = agent.raw(
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        LONG,
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    wait_for("the log line", LONG, || {
        log_lines(&agent, "no complete request head") == 1
    });
}

#[test]
fn clients_going_away_mid_stream_cost_one_log_line() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let session = session_of(&agent);
    let path = format!(
        "/api-gateway/api/v2/dtables/{}/rows/",
        case.base.dtable_uuid
    );
    // Mid-response: a big answer, read a little, hang up.
    case.standin
        .push_gateway_faults([Fault::Big { bytes: 8 << 20 }]);
    let mut s = TcpStream::connect(agent.addr()).unwrap();
    write!(
        s,
        "GET {path}?table_name=Table1 HTTP/1.1\r\nHost: x\r\nAuthorization: Token {session}\r\n\r\n"
    )
    .unwrap();
    let mut first = [0u8; 4096];
    s.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"HTTP/1.1 200"));
    drop(s);
    // Mid-request: half a body, and the client's end of the stream (a
    // client whose socket is gone before the agent accepts it is not
    // served at all: its owner cannot be told).
    let mut s = TcpStream::connect(agent.addr()).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Token {session}\r\nContent-Length: 1000\r\n\r\n{{\"table_name\":"
    )
    .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    wait_for("the log lines", LONG, || {
        log_lines(&agent, "broke off") == 1 && log_lines(&agent, "connection closed: ") >= 1
    });
    assert!(
        log_lines(&agent, "connection closed: ") <= 2,
        "{}",
        agent.stderr()
    );
    healthy(&agent);
    assert_eq!(
        agent.get(&format!("{path}?table_name=Table1"), &session).0,
        200
    );
}

/// Past `--max-connections`, when every slot is held by a client that
/// showed its key, a new connection gets 503 at once. (Connections that
/// never showed one make room instead: see `tests/it/attacks/agent.rs`.)
#[test]
fn connections_past_the_cap_get_503() {
    let case = Case::new();
    let agent = Agent::start(&case, &["--max-connections", "3"]);
    wait_for("no open connections", LONG, || {
        agent
            .metric("seatable_cred_connections_open")
            .is_some_and(|n| n <= 1.0)
    });
    // Three clients with the key, each keeping its connection alive.
    let keyed: Vec<reqwest::blocking::Client> = (0..3)
        .map(|_| {
            let client = reqwest::blocking::Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(LONG)
                .build()
                .unwrap();
            let r = client
                .get(format!("{}/api/v2.1/dtable/app-access-token/", agent.url))
                .header("Authorization", format!("Token {}", agent.key))
                .send()
                .unwrap();
            assert_eq!(r.status(), 200);
            let _ = r.bytes();
            client
        })
        .collect();
    let answer = agent.raw(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", LONG);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    drop(keyed);
    wait_for("a free slot", LONG, || {
        agent
            .raw(
                b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                LONG,
            )
            .starts_with("HTTP/1.1 200")
    });
    assert!(
        agent
            .metric("seatable_cred_connections_refused_total")
            .unwrap()
            >= 1.0
    );
}

/// Never an open proxy: absolute-form and CONNECT requests, traversal out
/// of the forwarded prefixes and unknown paths stop at the agent.
#[test]
fn not_an_open_proxy() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let session = session_of(&agent);
    let stats = case.standin.stats();
    for request in [
        format!(
            "GET http://example.invalid/api-gateway/api/v2/dtables/{}/metadata/ HTTP/1.1\r\nHost: example.invalid\r\nAuthorization: Token {session}\r\nConnection: close\r\n\r\n",
            case.base.dtable_uuid
        ),
        "CONNECT example.invalid:443 HTTP/1.1\r\nHost: example.invalid:443\r\nConnection: close\r\n\r\n".to_string(),
        format!(
            "GET /api-gateway/../api/v2.1/dtable/app-access-token/ HTTP/1.1\r\nHost: x\r\nAuthorization: Token {session}\r\nConnection: close\r\n\r\n"
        ),
        format!(
            "GET /api-gateway/%2e%2e/api2/ping/ HTTP/1.1\r\nHost: x\r\nAuthorization: Token {session}\r\nConnection: close\r\n\r\n"
        ),
    ] {
        let answer = agent.raw(request.as_bytes(), LONG);
        assert!(answer.starts_with("HTTP/1.1 400"), "{request:.60}: {answer}");
    }
    let answer = agent.raw(
        format!("GET /api2/ping/ HTTP/1.1\r\nHost: x\r\nAuthorization: Token {session}\r\nConnection: close\r\n\r\n").as_bytes(),
        LONG,
    );
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    let after = case.standin.stats();
    assert_eq!(after.gateway_requests, stats.gateway_requests);
    assert_eq!(after.exchange_requests, stats.exchange_requests);
}

/// Only the methods SeaTable's API uses are forwarded with the base token:
/// a `TRACE` that a front server echoes back would hand the client the real
/// token. A `Connection` header naming more headers than any client needs
/// is refused before the agent spends time on it.
#[test]
fn only_the_apis_methods_are_forwarded() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let session = session_of(&agent);
    let rows = rows_of(&case);
    let stats = case.standin.stats();
    for method in ["TRACE", "TRACK", "PROPFIND", "FOO"] {
        let answer = agent.raw(
            format!("{method} {rows} HTTP/1.1\r\nHost: x\r\nAuthorization: Token {session}\r\nConnection: close\r\n\r\n").as_bytes(),
            LONG,
        );
        assert!(answer.starts_with("HTTP/1.1 405"), "{method}: {answer}");
        assert!(!answer.contains("Token ey"), "{method}: {answer}");
    }
    let names: Vec<String> = (0..100).map(|i| format!("x-{i}")).collect();
    let answer = agent.raw(
        format!(
            "GET {rows} HTTP/1.1\r\nHost: x\r\nAuthorization: Token {session}\r\nConnection: close, {}\r\n\r\n",
            names.join(", ")
        )
        .as_bytes(),
        LONG,
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(
        case.standin.stats().gateway_requests,
        stats.gateway_requests
    );
    // What the SDKs send still goes through, a few names in `Connection` too.
    let answer = agent.raw(
        format!("GET {rows} HTTP/1.1\r\nHost: x\r\nAuthorization: Token {session}\r\nConnection: close, x-a, x-b\r\n\r\n").as_bytes(),
        LONG,
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        case.standin.stats().gateway_requests,
        stats.gateway_requests + 1
    );
}

/// When the forced refresh itself fails (SeaTable refusing the exchange for
/// a moment), the client gets 503 and the agent tries again a few seconds
/// later — not only after the 30 s that guard against a server saying
/// "Token expired." of every token.
#[test]
fn a_failed_forced_refresh_is_tried_again_soon() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let session = session_of(&agent);
    let rows = rows_of(&case);
    assert_eq!(agent.get(&rows, &session).0, 200);
    let before = case.standin.stats();
    case.standin.expire_issued();
    // A refusal is not retried by the broker: one failed exchange.
    case.standin.push_faults([Fault::Status { code: 403 }]);
    let failed_at = std::time::Instant::now();
    let (status, body) = agent.get(&rows, &session);
    assert_eq!(status, 503, "{body}");
    // Polled until the agent has a working token again.
    let mut answers = Vec::new();
    wait_for("a working token again", LONG, || {
        let (status, body) = agent.get(&rows, &session);
        answers.push(status);
        if status != 200 {
            assert_eq!(status, 503, "{body}");
            std::thread::sleep(Duration::from_millis(200));
        }
        status == 200
    });
    let took = failed_at.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "recovered only after {took:?}"
    );
    // Meanwhile the agent did not try on every request: one refused
    // exchange, one that worked.
    assert!(answers.len() > 5, "{answers:?}");
    let after = case.standin.stats();
    assert_eq!(after.exchanges, before.exchanges + 1, "{answers:?}");
    assert_eq!(
        after.exchange_requests,
        before.exchange_requests + 2,
        "{answers:?}"
    );
}

/// At -vvvv, through exchanges, proxying, a replay, refusals and shutdown:
/// no API token, Vault token, base token, local key or session token on
/// stderr, nor in any file outside the cache directory.
#[test]
fn no_secrets_on_stderr_at_full_verbosity() {
    let case = Case::new();
    let mut agent = Agent::start(&case, &[]);
    let session = session_of(&agent);
    let metadata = format!(
        "/api-gateway/api/v2/dtables/{}/metadata/",
        case.base.dtable_uuid
    );
    assert_eq!(agent.get(&metadata, &session).0, 200);
    case.standin.expire_issued();
    assert_eq!(agent.get(&metadata, &session).0, 200);
    assert_eq!(agent.get(&metadata, &agent.key).0, 403);
    assert_eq!(
        agent.get("/api/v2.1/dtable/app-access-token/", "wrong").0,
        403
    );
    let _ = agent.raw(b"BROKEN\r\n\r\n", LONG);
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit(LONG), 0);
    let stderr = agent.stderr();
    assert!(
        stderr.contains(": debug: "),
        "said a lot at -vvvv: {stderr}"
    );
    let issued = case.standin.issued_tokens();
    assert!(issued.len() >= 2);
    let mut secrets = case.secrets.clone();
    secrets.extend(issued);
    secrets.push(agent.key.clone());
    secrets.push(session.clone());
    for secret in &secrets {
        assert!(
            !stderr.contains(secret.as_str()),
            "a secret on stderr: {stderr}"
        );
    }
    // Files: only the cache directory (which holds the env file) may hold them.
    crate::support::assert_no_secret_in_files(case.dir.path(), &case.cache_dir(), &secrets);
}

/// `/health` answers 503 `degraded` while any profile holds no usable token
/// (here: its SeaTable cannot be reached), even when the others are ready:
/// a readiness probe must hold back the app that needs that profile.
#[test]
fn health_is_503_degraded_while_a_profile_has_no_token() {
    let mut case = Case::new();
    let nobody = {
        // A loopback port nothing listens on.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port())
    };
    let config = case.dir.path().join("profiles.toml");
    std::fs::write(
        &config,
        format!(
            "[profiles.crm]\nserver_url = \"{}\"\nsecret = \"{}\"\n\n[profiles.gone]\nserver_url = \"{nobody}\"\nsecret = \"{}\"\n",
            case.standin.url, case.secret, case.secret
        ),
    )
    .unwrap();
    case.unset("SEATABLE_SERVER_URL")
        .unset("SEATABLE_CRED_SECRET")
        .set("SEATABLE_CRED_CONFIG", config.display().to_string());
    let agent = Agent::start_unchecked(&case, "127.0.0.1:0", &["crm", "gone"], "crm");
    let health = || {
        let r = agent
            .http
            .get(format!("{}/health", agent.url))
            .send()
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().unwrap())
    };
    // crm becomes ready; gone never does.
    wait_for("crm's token", LONG, || {
        health().1["profiles"]["crm"]["ready"] == true
    });
    let (status, body) = health();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["profiles"]["gone"]["ready"], false, "{body}");
    // The ready profile is served meanwhile.
    assert_eq!(
        agent.exchange()["dtable_uuid"],
        case.base.dtable_uuid.as_str()
    );
}

/// Listening beyond loopback works, with a warning that says who can then
/// use the bases.
#[test]
fn a_listen_address_beyond_loopback_is_warned_about() {
    let case = Case::new();
    let agent = Agent::start_unchecked(&case, "0.0.0.0:0", &[], "default");
    wait_for("a healthy agent", LONG, || {
        agent
            .http
            .get(format!("{}/health", agent.url))
            .send()
            .is_ok_and(|r| r.status() == 200)
    });
    // Clients are told the loopback address.
    assert!(agent.url.starts_with("http://127.0.0.1:"), "{}", agent.url);
    assert_eq!(log_lines(&agent, "which is not a loopback address"), 1);
    let quiet = Agent::start(&case, &[]);
    assert_eq!(log_lines(&quiet, "not a loopback address"), 0);
}
