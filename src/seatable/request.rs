//! How every request to SeaTable is sent, whatever it asks: with the
//! `Authorization: Token …` header built in a buffer that is zeroed and
//! marked sensitive, with what is left of the call's deadline as its
//! timeout, its body read with a size limit, the server's requested wait
//! noted, and a certificate problem made a failure no retry can fix. The
//! exchange and the account API each say in their own words what a status
//! means ([`super::exchange`], [`super::account`]); SeaTable's error text
//! is read by [`super::ErrorBody`].

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::error::{Failure, root_cause};
use crate::http::BodyError;

/// `Token <token>` as a header value marked sensitive (never shown by a
/// debug print), built in a buffer zeroed when dropped; `None` when the
/// token holds characters a header cannot carry.
pub fn authorization(token: &str) -> Option<HeaderValue> {
    let value = Zeroizing::new(format!("Token {token}"));
    let mut header = HeaderValue::from_str(&value).ok()?;
    header.set_sensitive(true);
    Some(header)
}

/// What one request came to.
pub enum Sent {
    /// The server answered: its status, the server's requested wait
    /// (`Retry-After`, `x-ratelimit-reset`) and the body, read up to
    /// [`crate::http::MAX_BODY`].
    Answered {
        status: StatusCode,
        hint: Option<Duration>,
        body: Result<Zeroizing<Vec<u8>>, BodyError>,
    },
    /// No answer: the connection failed or timed out (the caller words it).
    Unanswered(reqwest::Error),
    /// Not worth another try: no time left, or a certificate problem.
    Refused(Failure),
}

/// Sends `request` once with what is left of `deadline` as its timeout.
/// `what` names the request in a message about running out of time (empty
/// when the server's address says enough).
pub async fn send_once(
    request: reqwest::RequestBuilder,
    server_url: &str,
    what: &str,
    deadline: Instant,
) -> Sent {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        let while_ = if what.is_empty() {
            String::new()
        } else {
            format!(" while {what}")
        };
        return Sent::Refused(Failure::unavailable(format!(
            "SeaTable at {server_url} did not answer in time{while_}: try again later or raise --timeout"
        )));
    }
    match request.timeout(remaining).send().await {
        Err(e) => match tls_failure(&e, server_url) {
            Some(failure) => Sent::Refused(failure),
            None => Sent::Unanswered(e),
        },
        Ok(response) => {
            let status = response.status();
            let hint = crate::retry::server_hint(response.headers(), crate::time::now());
            let body = crate::http::read_capped(response).await;
            Sent::Answered { status, hint, body }
        }
    }
}

/// A request that failed for a certificate problem: no retry can fix it.
pub fn tls_failure(e: &reqwest::Error, server_url: &str) -> Option<Failure> {
    crate::http::is_certificate_problem(e).then(|| {
        Failure::unavailable(format!(
            "TLS to SeaTable at {server_url} failed: {}; for a private CA set SEATABLE_CA_CERT or ca_cert",
            root_cause(e)
        ))
        .permanent()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorization_header_is_sensitive() {
        let header = authorization("abc123").unwrap();
        assert_eq!(header.to_str().unwrap(), "Token abc123");
        assert!(header.is_sensitive());
        assert!(!format!("{header:?}").contains("abc123"));
        assert!(authorization("bad\ntoken").is_none());
    }
}
