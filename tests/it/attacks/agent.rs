//! Other local users, and key holders, against `serve`: the agent listens
//! on loopback TCP, which every user of the machine can reach. Each test
//! reproduces what was done against an earlier version (issue 18); the
//! attackers are throwaway users, their programs small Python scripts
//! (`support::hostile`).

use std::io::{Read, Write};
use std::time::Duration;

use crate::support::Case;
use crate::support::agent::Agent;
use crate::support::hostile::{self, exchange_request};
use crate::support::users::User;

const LONG: Duration = Duration::from_secs(60);

/// `n` local exchanges with the agent's key, each on a new connection,
/// a little apart; their status codes (0: no answer at all).
fn exchanges_on_new_connections(agent: &Agent, n: usize) -> Vec<u16> {
    let client = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(LONG)
        .build()
        .unwrap();
    (0..n)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            client
                .get(format!("{}/api/v2.1/dtable/app-access-token/", agent.url))
                .header("Authorization", format!("Token {}", agent.key))
                .send()
                .map_or(0, |r| r.status().as_u16())
        })
        .collect()
}

/// Issue 18, 1: 256 idle keep-alive connections, each asking `/health`
/// every 8 s, locked every client out (503 on every exchange) — from any
/// user of the machine, with no key. Now another user's connections are
/// closed the moment they are accepted, costing one log line.
#[test]
fn a_keyless_flood_from_another_user_leaves_clients_at_200() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let attacker = User::new("a keyless flood from another user");
    let flood = hostile::flood(Some(&attacker), &agent.addr(), 256);
    let statuses = exchanges_on_new_connections(&agent, 20);
    let flooded = flood.stop();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "the client with the key got {statuses:?} ({flooded})"
    );
    assert!(
        flooded.contains("answered=0 "),
        "another user's connections got answers: {flooded}"
    );
    // Refusals are logged, but not one line per connection.
    let lines = agent.log_lines("from another user");
    assert!(
        (1..=5).contains(&lines),
        "{lines} lines: {}",
        agent.stderr()
    );
}

/// Issue 18, 1 again, from the agent's own user (a misbehaving health
/// checker, or a key holder's other programs): connections that never
/// presented a key have a small budget and a short idle limit of their
/// own, so that clients with the key keep working whatever they do.
#[test]
fn keyless_connections_cannot_crowd_out_clients_with_the_key() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let flood = hostile::flood(None, &agent.addr(), 256);
    let statuses = exchanges_on_new_connections(&agent, 20);
    let flooded = flood.stop();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "the client with the key got {statuses:?} ({flooded})"
    );
}

/// Issue 18, 3: a user who held the agent's port while it restarted
/// caught the local key from a client, and the key still worked once the
/// agent was back. Now a key is useless from another user's process.
#[test]
fn a_key_caught_on_the_agents_port_is_useless_to_another_user() {
    let case = Case::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let agent = Agent::start_at(&case, &addr, false, &[]);
    let key = agent.key.clone();
    let session = agent.exchange()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    drop(agent);

    // The restart window: a client asks, the squatter listens.
    let attacker = User::new("a squatted agent port");
    let squatter = hostile::squat(&attacker, &addr);
    hostile::request(None, &addr, &exchange_request(&key));
    let caught = String::from_utf8_lossy(&squatter.stop()).into_owned();
    assert!(caught.contains(&key), "the squatter caught: {caught}");

    let agent = Agent::start_at(&case, &addr, true, &[]);
    assert_eq!(agent.key, key, "the key survives the restart");
    let answer = hostile::request(Some(&attacker), &addr, &exchange_request(&key));
    assert!(
        !answer.contains("access_token"),
        "another user exchanged the caught key: {answer}"
    );
    let rows = format!(
        "GET /api-gateway/api/v2/dtables/{}/rows/?table_name=Table1 HTTP/1.1\r\nHost: x\r\nAuthorization: Token {session}\r\nConnection: close\r\n\r\n",
        case.base.dtable_uuid
    );
    let answer = hostile::request(Some(&attacker), &addr, &rows);
    assert!(
        !answer.starts_with("HTTP/1.1 200"),
        "another user read the base with a caught session: {answer}"
    );
    // The owner's clients go on.
    assert_eq!(
        agent.exchange()["dtable_uuid"],
        case.base.dtable_uuid.as_str()
    );
}

/// Only the agent's own user gets in by default; `--allow-uid` and
/// `--allow-gid` let another one in (a sidecar's app running as its own
/// uid). Run outside the tests' user namespace, where the kernel reports
/// the peers' real uids.
#[test]
fn another_users_client_is_refused_unless_allowed() {
    let case = Case::new();
    let other = User::new("a client of another user");
    let ask = |agent: &Agent| {
        hostile::request(Some(&other), &agent.addr(), &exchange_request(&agent.key))
    };

    let agent = Agent::start_outside_namespace(&case, &[]);
    let answer = ask(&agent);
    assert!(!answer.contains("HTTP/1.1"), "{answer}");
    drop(agent);

    let uid = other.uid.to_string();
    let agent = Agent::start_outside_namespace(&case, &["--allow-uid", &uid]);
    let answer = ask(&agent);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(agent);

    let gid = other.gid.to_string();
    let agent = Agent::start_outside_namespace(&case, &["--allow-gid", &gid]);
    let answer = ask(&agent);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// A key holder could make the agent hold 256 request bodies of 10 MiB at
/// once — the sidecar example gives it 64 MiB. Bodies held at once are
/// bounded as a whole; past that, 503 with Retry-After.
#[test]
fn request_bodies_held_at_once_are_bounded() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let session = agent.exchange()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    // SeaTable slow to answer: every body is held until it does.
    case.standin.set_gateway_delay(Duration::from_secs(3));
    let path = format!(
        "/api-gateway/api/v2/dtables/{}/rows/",
        case.base.dtable_uuid
    );
    const BODY: usize = 8 * 1024 * 1024;
    let statuses: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(|| {
                    let mut c = std::net::TcpStream::connect(agent.addr()).unwrap();
                    c.set_read_timeout(Some(LONG)).unwrap();
                    let head = format!(
                        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Token {session}\r\nContent-Type: application/json\r\nContent-Length: {BODY}\r\nConnection: close\r\n\r\n"
                    );
                    let _ = c.write_all(head.as_bytes());
                    let _ = c.write_all(&vec![b' '; BODY]);
                    let mut answer = Vec::new();
                    let _ = c.read_to_end(&mut answer);
                    String::from_utf8_lossy(&answer)
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let peak_mib = agent.status_kib("VmHWM") / 1024;
    assert!(
        peak_mib < 64,
        "the agent held {peak_mib} MiB at its peak: {statuses:?}"
    );
    assert!(
        statuses.iter().any(|s| s.starts_with("HTTP/1.1 503")),
        "{statuses:?}"
    );
    // What did go through went to SeaTable; the agent is fine afterwards.
    case.standin.set_gateway_delay(Duration::ZERO);
    assert_eq!(
        agent.exchange()["dtable_uuid"],
        case.base.dtable_uuid.as_str()
    );
}
