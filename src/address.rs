//! Addresses of SeaTable and Vault (SPEC §3, §9): what a URL may be, how it
//! is shown, and whether plain HTTP to it stays on the machine.
//!
//! A leaf: [`crate::config`] checks the profile's addresses here, `init`
//! its answers, [`crate::http`] and the agent's upstream client ask it what
//! is loopback and where `localhost` goes. Where an address was set (a flag,
//! a variable, a file key) is the caller's; it comes in as something to
//! print.

use std::fmt::Display;

use crate::error::Failure;

/// A SeaTable or Vault address as the helper uses it: validated, without a
/// trailing slash, plain HTTP beyond loopback only with `allow_http` — the
/// rules `config::resolve` applies, for `init` to check an answer by.
/// `origin` names where the address was set and `allow_http` where plain
/// HTTP was allowed; `what` is the secret the address would carry ("the API
/// token").
pub fn check_address(
    text: &str,
    origin: &impl Display,
    what: &str,
    allow_http: Option<&impl Display>,
) -> Result<String, Failure> {
    let url = normalise_url(text).map_err(|e| Failure::usage(format!("{origin}: {e}")))?;
    check_plain_http(&url, origin, what, allow_http)?;
    Ok(url_text(&url))
}

/// Validates an http(s) URL and drops a trailing slash. URLs carrying
/// credentials or a query are refused: they would sit in argv or a config
/// file. Messages show the URL without them ([`redact_url`]).
fn normalise_url(text: &str) -> Result<url::Url, String> {
    let shown = redact_url(text);
    let url = url::Url::parse(text.trim()).map_err(|e| format!("'{shown}' is not a URL ({e})"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("'{shown}' must start with https:// or http://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("'{shown}' has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "'{shown}' carries credentials: a URL must not (they would sit in argv or a file)"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("'{shown}' must not have a query or fragment"));
    }
    Ok(url)
}

/// A URL as it may be shown: without user, password, query or fragment.
/// Works on text that does not parse as a URL too — that is exactly when
/// an error message would otherwise echo it.
pub fn redact_url(text: &str) -> String {
    let text = text.trim();
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, text),
    };
    // Everything up to the last '@' may be credentials — a password may
    // hold '/', '?', '#' or '@' itself, so no other separator is trusted
    // before it. Then the query and fragment go.
    let rest = match rest.rfind('@') {
        Some(at) => format!("***@{}", &rest[at + 1..]),
        None => rest.to_string(),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let shown: String = rest.chars().filter(|c| !c.is_control()).take(200).collect();
    match scheme {
        Some(scheme) => format!("{scheme}://{shown}"),
        None => shown,
    }
}

/// Whether plain HTTP to this URL stays on the machine: a loopback address
/// (127.0.0.0/8, ::1, or either as an IPv4-mapped IPv6 address) or exactly
/// the name `localhost`, which the HTTP clients pin to 127.0.0.1
/// ([`pinned`]). Other names — `localhost.`, `vault.localhost` — are
/// resolved by DNS, which may send them anywhere.
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Checks a normalised URL's scheme against `allow_http`: plain HTTP to a
/// host that is not loopback carries tokens in clear text over a network.
fn check_plain_http(
    url: &url::Url,
    origin: &impl Display,
    what: &str,
    allow_http: Option<&impl Display>,
) -> Result<(), Failure> {
    if url.scheme() != "http" || is_loopback(url) {
        return Ok(());
    }
    let shown = redact_url(&url_text(url));
    match allow_http {
        None => Err(Failure::usage(format!(
            "{origin}: '{shown}' is plain HTTP to a host that is not loopback: {what} would cross the network in clear text; use https://, or accept the risk with --allow-http, allow_http = true or SEATABLE_CRED_ALLOW_HTTP=1"
        ))),
        Some(allowed) => {
            tracing::warn!(
                "plain HTTP to {shown} ({origin}): {what} crosses the network unencrypted (allowed by {allowed})"
            );
            Ok(())
        }
    }
}

/// The URL as the helper uses it: without a trailing slash.
fn url_text(url: &url::Url) -> String {
    url.as_str().trim_end_matches('/').to_string()
}

/// Where a host name is pinned rather than resolved: `localhost` is always
/// 127.0.0.1 (port 0: the URL's port is used), whatever `/etc/hosts` or
/// DNS say, so that a loopback address never leaves the machine.
pub fn pinned(name: &str) -> Option<std::net::SocketAddr> {
    name.eq_ignore_ascii_case("localhost")
        .then(|| std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials_or_query() {
        for (text, shown) in [
            (
                "https://alice:S3CRET@host:99999/p?x=1",
                "https://***@host:99999/p",
            ),
            (
                "https://host/path?api_token=SECRET#frag",
                "https://host/path",
            ),
            ("https://user@host", "https://***@host"),
            ("not a url but:PASSWORD@host", "***@host"),
            ("https://a@b@host/x", "https://***@host/x"),
            ("https://user:pa/ss@host", "https://***@host"),
            ("https://user:p?ss@host/x", "https://***@host/x"),
            ("https://user:p#ss@host", "https://***@host"),
            ("https://host:8200", "https://host:8200"),
            ("http://h/\u{1b}[31m", "http://h/[31m"),
        ] {
            assert_eq!(redact_url(text), shown, "{text}");
        }
    }

    #[test]
    fn loopback_is_by_address_or_the_name_localhost() {
        let yes = |u: &str| is_loopback(&url::Url::parse(u).unwrap());
        for u in [
            "http://127.0.0.1:1",
            "http://127.9.8.7",
            "http://[::1]:8",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:8200",
            "http://LOCALHOST",
        ] {
            assert!(yes(u), "{u}");
        }
        for u in [
            "http://0.0.0.0:1",
            "http://10.0.0.1",
            "http://[::]:1",
            "http://localhost.example.com",
            "http://localhost.",
            "http://vault.localhost",
            "http://mylocalhost",
            "http://[::ffff:10.0.0.1]",
        ] {
            assert!(!yes(u), "{u}");
        }
    }

    /// What `init` checks an answer by: the origin named, plain HTTP
    /// refused beyond loopback, the trailing slash dropped.
    #[test]
    fn an_address_is_checked_and_its_origin_named() {
        let shown = check_address(
            "http://s.example.com/",
            &"--server-url",
            "the API token",
            None::<&&str>,
        )
        .unwrap_err()
        .to_string();
        assert!(
            shown.starts_with("--server-url: 'http://s.example.com' is plain HTTP"),
            "{shown}"
        );
        assert_eq!(
            check_address("https://s.example.com/", &"the default", "x", None::<&&str>).unwrap(),
            "https://s.example.com"
        );
        assert_eq!(
            check_address("http://s.example.com/", &"x", "y", Some(&"--allow-http")).unwrap(),
            "http://s.example.com"
        );
    }
}
