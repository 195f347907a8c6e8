//! Other local users, and key holders, against `serve`: the agent listens
//! on loopback TCP, which every user of the machine can reach. Each test
//! reproduces what was done against an earlier version (issue 18); the
//! attackers are throwaway users, their programs small Python scripts
//! (`support::hostile`).

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use crate::support::agent::{Agent, wait_for};
use crate::support::hostile::{self, exchange_request};
use crate::support::users::{Group, User, helper_for_anyone};
use crate::support::{Case, run_with_input};

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
    // Connections that pipeline requests and never read the answers, so
    // that those cannot be written: they too make room.
    let stuck = hostile::pipeline(&agent.addr(), 40);
    let statuses = exchanges_on_new_connections(&agent, 20);
    stuck.stop();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "beside clients that never read, the client with the key got {statuses:?}"
    );
}

/// A profile whose server comes from the config file, and the shell line
/// docs/serve.md gives for loading the env file, then `CMD…`.
fn shell_with_env_file(case: &Case, env_file: &std::path::Path, cmd: &str) -> crate::support::Out {
    let mut sh = case.tool("sh");
    sh.arg("-c")
        .arg(format!("set -a; . \"$1\"; set +a; exec \"$2\" {cmd}"))
        .arg("sh")
        .arg(env_file)
        .arg(crate::support::HELPER);
    let out = run_with_input(sh, "");
    case.assert_no_secrets(&out);
    out
}

/// Issue 18, 2: the env file sets `SEATABLE_SERVER_URL` to the agent, and
/// the helper read that variable as its own `--server-url`: in a shell that
/// loaded the env file, `get --refresh` sent the real API token to the
/// agent — and, while the agent was down, to whoever held its port. Now
/// the helper never sends it there, and an agent started from such a shell
/// does not point at itself.
#[test]
fn a_shell_that_loaded_the_env_file_sends_no_api_token_to_the_agents_port() {
    let mut case = Case::new();
    let config = case.dir.path().join("profiles.toml");
    let (url, secret) = (case.standin.url.clone(), case.secret.clone());
    let profile = |server: bool| {
        let server = match server {
            true => format!("server_url = \"{url}\"\n"),
            false => String::new(),
        };
        let text = format!("[profiles.default]\n{server}secret = \"{secret}\"\n");
        std::fs::write(&config, text).unwrap();
    };
    profile(true);
    case.unset("SEATABLE_SERVER_URL")
        .unset("SEATABLE_CRED_SECRET")
        .set("SEATABLE_CRED_CONFIG", config.display().to_string());
    let agent = Agent::start(&case, &[]);
    let (env_file, addr) = (agent.env_file.clone(), agent.addr());

    // The agent up: the exchange goes to SeaTable, nothing to the agent.
    let before = case.standin.exchanges();
    let out = shell_with_env_file(&case, &env_file, "get --refresh -o json");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["server_url"], case.standin.url.as_str());
    assert_eq!(case.standin.exchanges(), before + 1);
    assert_eq!(
        agent.metric("seatable_cred_exchanges_refused_total"),
        Some(0.0),
        "the agent was sent a key that is not its own"
    );

    // The agent down, its port held by another user: nothing goes there.
    drop(agent);
    let attacker = User::new("a squatted agent port");
    let squatter = hostile::squat(&attacker, &addr);
    let out = shell_with_env_file(&case, &env_file, "get --refresh -o json");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(case.standin.exchanges(), before + 2);
    // Without a server of its own, the profile is refused — still sending nothing.
    profile(false);
    shell_with_env_file(&case, &env_file, "get --refresh").fails(2, "SEATABLE_SERVER_URL");
    let got = squatter.stop();
    assert!(
        got.is_empty(),
        "the squatter received: {}",
        String::from_utf8_lossy(&got)
    );

    // An agent started from such a shell, on the same address, serves the
    // profile's SeaTable — not itself.
    profile(true);
    let mut serve = case.tool("sh");
    serve
        .arg("-c")
        .arg("set -a; . \"$1\"; set +a; exec \"$2\" serve -v --listen \"$3\"")
        .arg("sh")
        .arg(&env_file)
        .arg(crate::support::HELPER)
        .arg(&addr)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut again = serve.spawn().unwrap();
    let http = reqwest::blocking::Client::new();
    let key = std::fs::read_to_string(&env_file)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("SEATABLE_API_TOKEN="))
        .unwrap()
        .to_string();
    let exchanged = std::cell::Cell::new(0u16);
    wait_for("the restarted agent's exchange", LONG, || {
        if let Ok(Some(status)) = again.try_wait() {
            let mut err = String::new();
            let _ = again.stderr.take().unwrap().read_to_string(&mut err);
            panic!("serve exited ({status}): {err}");
        }
        let status = http
            .get(format!("http://{addr}/api/v2.1/dtable/app-access-token/"))
            .header("Authorization", format!("Token {key}"))
            .timeout(Duration::from_secs(30))
            .send()
            .map_or(0, |r| r.status().as_u16());
        exchanged.set(status);
        status != 0 && status != 503
    });
    let _ = again.kill();
    let _ = again.wait();
    assert_eq!(exchanged.get(), 200);
}

/// Issue 18, 3: a user who held the agent's port while it restarted
/// caught the local key from a client, and the key still worked once the
/// agent was back. Now a key is useless from another user's process.
#[test]
fn a_key_caught_on_the_agents_port_is_useless_to_another_user() {
    let case = Case::new();
    let port = crate::support::free_port();
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

/// Issue 18, 6: the Kubernetes sidecar could not start. A pod's `emptyDir`
/// with `fsGroup` is a directory owned by root, mode 2777, of the pod's
/// group; the sidecar (one uid) refused it as "belongs to uid 0", and the
/// app (another uid, in the pod's group) must read the env file. Here with
/// a tmpfs directory, two throwaway users and a throwaway group.
#[test]
fn the_kubernetes_sidecar_layout_works() {
    let case = Case::new();
    let pod = Group::new("the sidecar layout");
    let sidecar = User::new("the sidecar layout");
    let app = User::new("the sidecar layout");
    let stranger = User::new("the sidecar layout");
    let root = crate::support::TempDir::new("pod");
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let volume = root.path().join("run");
    std::fs::create_dir(&volume).unwrap();
    std::os::unix::fs::chown(&volume, Some(0), Some(pod.gid)).unwrap();
    std::fs::set_permissions(&volume, std::fs::Permissions::from_mode(0o2777)).unwrap();

    let mut env = case.env.clone();
    env.insert(
        "SEATABLE_CRED_CACHE_DIR".into(),
        volume.display().to_string(),
    );
    env.insert("HOME".into(), sidecar.home.display().to_string());
    env.remove("XDG_CONFIG_HOME");
    let helper = helper_for_anyone();
    let uid = app.uid.to_string();
    let log = case.dir.path().join("sidecar.log");
    let mut serve = sidecar.command_in(&pod, &helper);
    serve
        .args([
            "serve",
            "-v",
            "--listen",
            "127.0.0.1:0",
            "--allow-uid",
            &uid,
        ])
        .envs(&env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut agent = serve.spawn().unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let env_file = volume.join("serve").join("default.env");
    wait_for("the sidecar's env file", LONG, || {
        if let Ok(Some(status)) = agent.try_wait() {
            panic!(
                "the sidecar exited ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::fs::read_to_string(&env_file).is_ok_and(|t| t.contains("SEATABLE_API_TOKEN="))
    });
    let agent = Kill(agent);

    // The app reads the env file through the pod's group; a stranger cannot.
    let read_as = |user: &User, in_pod: bool| {
        let mut cat = if in_pod {
            user.command_in(&pod, "cat")
        } else {
            user.command("cat")
        };
        cat.arg(&env_file);
        run_with_input(cat, "")
    };
    let text = read_as(&app, true);
    assert_eq!(
        text.code, 0,
        "the app cannot read the env file: {}",
        text.stderr
    );
    assert_ne!(
        read_as(&stranger, false).code,
        0,
        "a stranger read the env file"
    );
    let meta = std::fs::metadata(&env_file).unwrap();
    assert_eq!(meta.uid(), sidecar.uid);
    assert_eq!(meta.mode() & 0o777, 0o640);
    // Nothing of the sidecar's cache is open to the pod's group.
    for entry in std::fs::read_dir(&volume).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        if entry.file_name() != "serve" {
            assert_eq!(meta.mode() & 0o077, 0, "{} is open", entry.path().display());
        }
    }

    // The app, with the env file's values, through the agent.
    let values = |name: &str| {
        text.stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .to_string()
    };
    let (url, key) = (
        values("SEATABLE_SERVER_URL="),
        values("SEATABLE_API_TOKEN="),
    );
    let addr = url.trim_start_matches("http://").to_string();
    let answer = hostile::request(Some(&app), &addr, &exchange_request(&key));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // `get` as the sidecar's user, with the same cache directory: a hit.
    let get = |_: ()| {
        let mut cmd = sidecar.command_in(&pod, &helper);
        cmd.args(["get", "-o", "json"]).envs(&env);
        let out = run_with_input(cmd, "");
        case.assert_no_secrets(&out);
        out
    };
    assert_eq!(get(()).ok().json()["cached"], true);
    drop(agent);
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
                    // Sent from a small buffer: the test process itself stays
                    // small (a child it forks meanwhile starts as large as it
                    // is, and other tests measure their children's peak).
                    let _ = std::io::copy(&mut std::io::repeat(b' ').take(BODY as u64), &mut c);
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
