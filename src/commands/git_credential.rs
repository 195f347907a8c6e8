//! `git-credential get|store|erase`: git's credential-helper protocol.
//!
//! Configure it with `credential.<url>.helper = "!seatable-cred git-credential"`.
//! It answers only for the SeaTable server of the profile: for any other host
//! it prints nothing, and git asks its next helper.

use anyhow::Result;
use tracing::debug;

use crate::cli::{GitAction, GitCredentialArgs};
use crate::config::{self, GlobalArgs, ProcessEnv};
use crate::protocol::Credential;
use crate::protocol::git_credential::{self, Request};

pub fn run(global: &GlobalArgs, args: &GitCredentialArgs) -> Result<u8> {
    let request = Request::read(std::io::stdin().lock())?;
    if args.action == GitAction::Store {
        return Ok(0);
    }
    let profile = config::resolve(global, &ProcessEnv)?;
    if !for_server(&request, &profile.server_url) {
        debug!("git asked for another host; not answering");
        return Ok(0);
    }
    match args.action {
        GitAction::Get => {
            let outcome = crate::broker::get(&profile, false)?;
            let cred = Credential {
                token: &outcome.token,
                cached: outcome.cached,
                refresh_before: profile.refresh_before,
            };
            let username = request.get("username").unwrap_or("seatable-cred");
            crate::process::print(&git_credential::render(&cred, username))?;
        }
        GitAction::Erase => super::erase::profile(&profile)?,
        GitAction::Store => {}
    }
    Ok(0)
}

/// Whether git's request names the server: its `protocol` and `host` must
/// both be sent and be the server's (git splits every URL into them before
/// asking a helper; a request without them is not git asking for this
/// server, and gets no answer).
fn for_server(request: &Request, server_url: &str) -> bool {
    let Ok(url) = url::Url::parse(server_url) else {
        return false;
    };
    let (Some(protocol), Some(host)) = (request.get("protocol"), request.get("host")) else {
        return false;
    };
    if !protocol.eq_ignore_ascii_case(url.scheme()) {
        return false;
    }
    // git sends `host:port` only for a port that is not the scheme's default.
    let Ok(asked) = url::Url::parse(&format!("{}://{host}", url.scheme())) else {
        return false;
    };
    asked.host_str().is_some_and(|h| Some(h) == url.host_str())
        && asked.port_or_known_default() == url.port_or_known_default()
        && asked.username().is_empty()
        && asked.path() == "/"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str) -> Request {
        Request::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn answers_only_for_the_server() {
        let server = "https://cloud.seatable.io";
        assert!(for_server(
            &req("protocol=https\nhost=cloud.seatable.io\n"),
            server
        ));
        assert!(for_server(
            &req("protocol=https\nhost=CLOUD.seatable.io\n"),
            server
        ));
        assert!(
            !for_server(&req(""), server),
            "no protocol and host: no answer"
        );
        assert!(!for_server(
            &req("url=https://cloud.seatable.io/x\n"),
            server
        ));
        assert!(!for_server(&req("host=cloud.seatable.io\n"), server));
        assert!(!for_server(&req("protocol=https\n"), server));
        assert!(for_server(
            &req("protocol=https\nhost=cloud.seatable.io:443\n"),
            server
        ));
        assert!(!for_server(
            &req("protocol=https\nhost=cloud.seatable.io:8443\n"),
            server
        ));
        assert!(!for_server(
            &req("protocol=https\nhost=cloud.seatable.io.evil.com\n"),
            server
        ));
        assert!(!for_server(
            &req("protocol=https\nhost=evil.com/cloud.seatable.io\n"),
            server
        ));
        assert!(!for_server(
            &req("protocol=https\nhost=x@cloud.seatable.io\n"),
            server
        ));
        assert!(!for_server(
            &req("protocol=https\nhost=github.com\n"),
            server
        ));
        assert!(!for_server(
            &req("protocol=http\nhost=cloud.seatable.io\n"),
            server
        ));
        assert!(for_server(
            &req("protocol=http\nhost=127.0.0.1:8080\n"),
            "http://127.0.0.1:8080"
        ));
        assert!(!for_server(
            &req("protocol=http\nhost=127.0.0.1\n"),
            "http://127.0.0.1:8080"
        ));
    }
}
