//! Key holders and others against the agent's file forwarding, where the
//! agent puts the profile's real API token on a request: only a valid
//! local key gets it put there, only on the file endpoints' exact paths
//! and methods, only towards the profile's SeaTable — and no answer or log
//! line of the agent's holds it.

use std::time::Duration;

use crate::serve_files::{FILE_PATHS, api_token_went_only_where_it_may, file_requests};
use crate::support::Case;
use crate::support::agent::Agent;

const LONG: Duration = Duration::from_secs(60);

/// The status of a raw answer (0 when there was none).
fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A raw request for `target` with `Authorization: Token <key>`.
fn raw_get(agent: &Agent, method: &str, target: &str, extra: &str, key: &str) -> String {
    agent.raw(
        format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Token {key}\r\n{extra}Connection: close\r\n\r\n",
            agent.addr()
        )
        .as_bytes(),
        LONG,
    )
}

/// Every key but the profile's own — one character off, the session token
/// the agent itself issued, the local key under another scheme's spelling,
/// none — gets SeaTable's 403 on every file endpoint, and SeaTable never
/// sees the API token for it. The valid key, on the same paths, is
/// forwarded.
#[test]
fn only_the_profiles_own_key_has_the_api_token_put_on_a_file_request() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let session = agent.exchange()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut near = agent.key.clone().into_bytes();
    near[0] = if near[0] == b'a' { b'b' } else { b'a' };
    let near = String::from_utf8(near).unwrap();
    // A key of digits only has no other case: one character off then.
    let upper = match agent.key.to_uppercase() {
        same if same == agent.key => near.clone(),
        upper => upper,
    };
    let before = file_requests(&case);
    for path in FILE_PATHS {
        for auth in [
            Some(format!("Token {near}")),
            Some(format!("Token {session}")),
            Some(format!("Bearer {session}")),
            Some(format!("Token {upper}")),
            Some(format!("Token {}{}", agent.key, agent.key)),
            Some(format!("Token {}", &agent.key[..39])),
            Some(format!("Basic {}", agent.key)),
            Some("Token ".to_string()),
            None,
        ] {
            let mut request = agent.http.get(format!("{}{path}?path=/x", agent.url));
            if let Some(auth) = &auth {
                request = request.header("Authorization", auth);
            }
            let r = request.send().unwrap();
            let status = r.status().as_u16();
            let body = r.text().unwrap();
            assert_eq!(
                (status, body.as_str()),
                (403, r#"{"error_msg":"Permission denied."}"#),
                "{path} with {auth:?}"
            );
        }
    }
    assert_eq!(
        file_requests(&case),
        before,
        "SeaTable saw the API token for a wrong key"
    );
    // The profile's key, on each path: forwarded with the API token.
    for path in FILE_PATHS {
        let r = agent
            .http
            .get(format!("{}{path}", agent.url))
            .query(&[("path", "/"), ("username", "x@auth.local")])
            .header("Authorization", format!("Token {}", agent.key))
            .send()
            .unwrap();
        assert_ne!(r.status(), 403, "{path}: {}", r.text().unwrap());
    }
    assert_eq!(
        file_requests(&case).len(),
        before.len() + FILE_PATHS.len(),
        "{:?}",
        file_requests(&case)
    );
    api_token_went_only_where_it_may(&case);
}

/// Path tricks that try to carry the API token from a file endpoint to
/// another endpoint — dot segments, percent-encoding, doubled slashes,
/// another case, a trailing extra, a query or fragment that looks like a
/// path, absolute-form and a Host of another server — with the valid key:
/// each is refused by the agent or lands on the file endpoint itself;
/// SeaTable never sees the API token anywhere else, and the other server
/// nothing at all.
#[test]
fn path_tricks_carry_the_api_token_nowhere_else() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let elsewhere = seatable_standin::Standin::start();
    let key = agent.key.clone();
    let before = file_requests(&case).len();
    let refused = [
        "/api/v2.1/dtable/app-upload-link/../app-access-token/",
        "/api/v2.1/dtable/app-upload-link/../../../api2/account/info/",
        "/api/v2.1/dtable/app-upload-link/..%2f..%2f..%2fapi2%2faccount%2finfo%2f",
        "/api/v2.1/dtable/app-upload-link/%2e%2e/app-access-token/",
        "/api/v2.1/dtable/custom/..%2Fapp-access-token/",
        "/api/v2.1/dtable/custom/../app-access-token/",
        "//api/v2.1/dtable/app-upload-link/",
        "/api/v2.1/dtable//app-upload-link/",
        "/api/v2.1//dtable/custom/app-asset-dir/",
        "/api/v2.1/dtable/%61pp-upload-link/",
        "/api/v2.1/dtable/app-upload-link%2f",
        "/api/v2.1/dtable/app-upload-link",
        "/api/v2.1/dtable/app-upload-link/x",
        "/api/v2.1/dtable/app-upload-link/;/../../../api2/account/info/",
        "/API/v2.1/dtable/app-upload-link/",
        "/api/v2.1/dtable/app-upload-link/\\..\\app-access-token/",
        "/api/v2.1/dtable/./app-upload-link/",
        "/./api/v2.1/dtable/app-user-info/",
        "/api/v2.1/dtable/custom/app-asset-dir/%00/../../app-access-token/",
        "/api/v2.1/dtables/app-upload-link/",
        "/api2/account/info/",
        "/api/v2.1/workspaces/",
        "/api/v2.1/dtable/app-access-token/../app-upload-link/",
        "/api-gateway/../api/v2.1/dtable/app-upload-link/",
        "/dtable-server/../api/v2.1/dtable/app-download-link/",
    ];
    for target in refused {
        let answer = raw_get(&agent, "GET", target, "", &key);
        let status = status_of(&answer);
        assert!(matches!(status, 400 | 403 | 404), "{target}: {answer}");
        assert!(!answer.contains(&case.base.api_token), "{target}: {answer}");
    }
    // Absolute and authority form: the agent is no forward proxy.
    for target in [
        format!("{}/api/v2.1/dtable/app-upload-link/", elsewhere.url),
        format!("{}/api2/account/info/", case.standin.url),
    ] {
        let answer = raw_get(&agent, "GET", &target, "", &key);
        assert_eq!(status_of(&answer), 400, "{target}: {answer}");
    }
    assert_eq!(
        status_of(&raw_get(
            &agent,
            "CONNECT",
            &elsewhere.addr.to_string(),
            "",
            &key
        )),
        400
    );
    assert_eq!(
        file_requests(&case).len(),
        before,
        "a trick reached SeaTable with the API token: {:?}",
        file_requests(&case)
    );

    // Queries and fragments that look like paths, and a Host naming another
    // server: forwarded to the file endpoint itself, at the profile's
    // SeaTable only.
    let forwarded = [
        "/api/v2.1/dtable/app-upload-link/?next=/../../api2/account/info/",
        "/api/v2.1/dtable/app-download-link/?path=../../../api2/account/info/",
        "/api/v2.1/dtable/custom/app-asset-dir/?path=%2F..%2F..%2Fapi2&x=//elsewhere",
        "/api/v2.1/dtable/app-user-info/?username=a@b&@elsewhere/",
    ];
    for target in forwarded {
        let answer = raw_get(&agent, "GET", target, "", &key);
        assert!(!answer.contains(&case.base.api_token), "{target}: {answer}");
    }
    let host = format!(
        "GET /api/v2.1/dtable/app-upload-link/ HTTP/1.1\r\nHost: {}\r\nAuthorization: Token {key}\r\nX-Forwarded-Host: {0}\r\nConnection: close\r\n\r\n",
        elsewhere.addr
    );
    assert_eq!(status_of(&agent.raw(host.as_bytes(), LONG)), 200);
    // A fragment is not part of a request target: hyper refuses it, or it
    // goes nowhere but the file endpoint.
    let _ = raw_get(
        &agent,
        "GET",
        "/api/v2.1/dtable/app-upload-link/#/../../api2/account/info/",
        "",
        &key,
    );
    let seen = file_requests(&case);
    assert!(
        seen.len() > before + forwarded.len(),
        "the valid forms were forwarded: {seen:?}"
    );
    for (request, target) in seen[before..].iter().zip(forwarded) {
        assert_eq!(request, &format!("GET {target}"));
    }
    api_token_went_only_where_it_may(&case);
    assert!(
        elsewhere.api_token_requests().is_empty() && elsewhere.stats().exchange_requests == 0,
        "another server was reached"
    );
}

/// At -vvvv, through forwarded file requests, refused ones, an upstream that
/// is down and SeaTable's refusal of the API token: the API token is in no
/// line of the agent's log and no answer of the agent's own.
#[test]
fn the_api_token_is_in_no_log_line_and_no_answer_of_the_agents() {
    let mut case = Case::new();
    let agent = Agent::start(&case, &[]);
    let token = case.base.api_token.clone();
    let mut answers = Vec::new();
    for path in FILE_PATHS {
        answers.push(raw_get(
            &agent,
            "GET",
            &format!("{path}?path=/"),
            "",
            &agent.key,
        ));
        answers.push(raw_get(&agent, "GET", path, "", "wrong"));
    }
    // SeaTable no longer takes the API token (rotated away): its refusal,
    // as SeaTable words it.
    case.standin.update_base(&token, |b| b.gone = true);
    let refused = raw_get(&agent, "GET", FILE_PATHS[0], "", &agent.key);
    assert_eq!(status_of(&refused), 403, "{refused}");
    answers.push(refused);
    // SeaTable down.
    case.standin.stop();
    let down = raw_get(&agent, "GET", FILE_PATHS[1], "", &agent.key);
    assert!(matches!(status_of(&down), 502 | 504), "{down}");
    answers.push(down);
    for answer in &answers {
        assert!(!answer.contains(&token), "{answer}");
    }
    let log = agent.stderr();
    assert!(log.contains(": debug: "), "-vvvv said a lot: {log}");
    case.secrets.push(agent.key.clone());
    case.assert_no_secrets(&crate::support::Out {
        code: 0,
        stdout: String::new(),
        stderr: log,
    });
}
