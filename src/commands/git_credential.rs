//! `git-credential get|store|erase`: git's credential-helper protocol.
//!
//! Configure it with `credential.<url>.helper = "!seatable-cred git-credential"`.
//! It answers only for the SeaTable server of the profile: for any other host
//! it prints nothing, and git asks its next helper.

use anyhow::Result;
use tracing::debug;

use crate::cli::{GitAction, GitCredentialArgs, GlobalArgs};
use crate::config::{self, ProcessEnv};
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
            super::print(&git_credential::render(&cred, username))?;
        }
        GitAction::Erase => super::erase::profile(&profile)?,
        GitAction::Store => {}
    }
    Ok(0)
}

/// Whether git's `protocol` and `host` (when sent) are the server's.
fn for_server(request: &Request, server_url: &str) -> bool {
    let Ok(url) = url::Url::parse(server_url) else {
        return false;
    };
    if let Some(protocol) = request.get("protocol")
        && !protocol.eq_ignore_ascii_case(url.scheme())
    {
        return false;
    }
    if let Some(host) = request.get("host") {
        let ours = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        return host.eq_ignore_ascii_case(&ours);
    }
    true
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
        assert!(for_server(&req(""), server));
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
