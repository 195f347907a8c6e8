//! git's credential-helper protocol (gitcredentials(7), git-credential(1)):
//! `key=value` lines on stdin, ended by a blank line or EOF; the answer in
//! the same form on stdout.
//!
//! Values are not quoted; a key may repeat (`capability[]=…`, `wwwauth[]=…`);
//! unknown keys are ignored, as git asks of helpers. Input is bounded: git
//! sends a few hundred bytes, so anything huge or binary is refused.

use std::collections::BTreeMap;
use std::io::Read;

use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::Credential;
use crate::error::Failure;

/// More than git ever sends for one request.
pub const MAX_INPUT: usize = 64 * 1024;

/// The attributes of one request; only the first value of a key is kept
/// (the repeated ones are capability lists the helper does not need).
#[derive(Debug, Default, PartialEq)]
pub struct Request {
    pub attrs: BTreeMap<String, String>,
}

impl Request {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).map(String::as_str)
    }

    /// Reads a request; stops at the first blank line.
    pub fn read(input: impl Read) -> Result<Request, Failure> {
        let mut bytes = Vec::new();
        input
            .take(MAX_INPUT as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::usage(format!("cannot read git's request on stdin: {e}")))?;
        if bytes.len() > MAX_INPUT {
            return Err(Failure::usage(format!(
                "git's request on stdin is larger than {} KiB: not a credential request",
                MAX_INPUT / 1024
            )));
        }
        Self::parse(&bytes)
    }

    pub fn parse(bytes: &[u8]) -> Result<Request, Failure> {
        let text = std::str::from_utf8(bytes).map_err(|_| {
            Failure::usage("git's request on stdin is not UTF-8 text: not a credential request")
        })?;
        let mut request = Request::default();
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                break;
            }
            if line.contains('\0') {
                return Err(Failure::usage(
                    "git's request contains a NUL byte: not a credential request",
                ));
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(Failure::usage(
                    "git's request has a line without '=': expected key=value lines",
                ));
            };
            request
                .attrs
                .entry(key.to_string())
                .or_insert_with(|| value.to_string());
        }
        Ok(request)
    }
}

/// The answer to `get`: the username, the base token as the password, and
/// `password_expiry_utc` (git ≥ 2.41 drops the password from its memory at
/// that time) — the refresh time, so git asks again before the token dies.
pub fn render(cred: &Credential<'_>, username: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    out.push_str("username=");
    out.push_str(&sanitize(username));
    out.push_str("\npassword=");
    out.push_str(cred.token.token.expose_secret());
    out.push_str("\npassword_expiry_utc=");
    out.push_str(&cred.refresh_at().to_string());
    out.push('\n');
    out
}

/// A value may not contain a newline or NUL (they would end or corrupt the line).
fn sanitize(value: &str) -> String {
    value.chars().filter(|c| *c != '\n' && *c != '\0').collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::{cred, sample};

    #[test]
    fn parses_gits_request() {
        let r = Request::parse(b"protocol=https\nhost=cloud.seatable.io\npath=a/b\ncapability[]=authtype\ncapability[]=state\nwwwauth[]=Basic realm=x\n\nignored=after-blank\n").unwrap();
        assert_eq!(r.get("protocol"), Some("https"));
        assert_eq!(r.get("host"), Some("cloud.seatable.io"));
        assert_eq!(r.get("capability[]"), Some("authtype"));
        assert_eq!(
            r.get("wwwauth[]"),
            Some("Basic realm=x"),
            "values keep their '='"
        );
        assert_eq!(r.get("ignored"), None);
    }

    #[test]
    fn eof_ends_input_and_crlf_is_tolerated() {
        let r = Request::parse(b"protocol=http\r\nhost=h:8080").unwrap();
        assert_eq!(r.get("host"), Some("h:8080"));
        assert_eq!(Request::parse(b"").unwrap(), Request::default());
    }

    #[test]
    fn refuses_noise_and_oversize() {
        assert!(Request::parse(b"\xff\xfe\x00garbage").is_err());
        assert!(Request::parse(b"no equals sign\n").is_err());
        assert!(Request::parse(b"a=b\0c\n").is_err());
        let huge = vec![b'a'; MAX_INPUT + 10];
        assert!(Request::read(&huge[..]).is_err());
    }

    #[test]
    fn reads_up_to_64_kib_and_no_more() {
        // A valid request of `len` bytes: one long host name.
        let request = |len: usize| {
            let mut r = b"protocol=https\nhost=".to_vec();
            r.resize(len, b'x');
            r
        };
        let r = Request::read(&request(64 * 1024)[..]).unwrap();
        assert_eq!(r.get("host").unwrap().len(), 64 * 1024 - 20, "read whole");
        let err = Request::read(&request(64 * 1024 + 1)[..]).unwrap_err();
        assert!(err.to_string().contains("larger than 64 KiB"), "{err}");
    }

    #[test]
    fn pins_the_answer() {
        let t = sample();
        assert_eq!(
            *render(&cred(&t), "me\nevil=1"),
            "username=meevil=1\npassword=eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3NjQ1Mzk3MDB9.c2ln\npassword_expiry_utc=1764539400\n"
        );
    }
}
