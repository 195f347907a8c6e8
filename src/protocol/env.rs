//! `get -o env`: `export NAME='value'` lines for POSIX shells
//! (`eval "$(seatable-cred get -o env)"`). `exec` sets the same names.

use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::Credential;

/// The variables, in output order, with their values.
pub fn variables(cred: &Credential<'_>) -> Vec<(&'static str, Zeroizing<String>)> {
    let t = cred.token;
    let c = &t.context;
    vec![
        ("SEATABLE_SERVER_URL", Zeroizing::new(c.server_url.clone())),
        (
            "SEATABLE_API_GATEWAY_URL",
            Zeroizing::new(c.api_gateway_url.clone()),
        ),
        (
            "SEATABLE_BASE_UUID",
            Zeroizing::new(c.dtable_uuid.clone().unwrap_or_default()),
        ),
        (
            "SEATABLE_BASE_TOKEN",
            Zeroizing::new(t.token.expose_secret().to_owned()),
        ),
        (
            "SEATABLE_BASE_TOKEN_EXPIRES_AT",
            Zeroizing::new(crate::time::rfc3339(t.expires_at)),
        ),
    ]
}

/// Single quotes keep everything literal in POSIX shells; a single quote
/// itself is closed, escaped and reopened: `'` → `'\''`.
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

pub fn render(cred: &Credential<'_>) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    for (name, value) in variables(cred) {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str("export ");
        out.push_str(name);
        out.push('=');
        out.push_str(&Zeroizing::new(quote(&value)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::{cred, sample};

    #[test]
    fn pins_the_lines() {
        let t = sample();
        assert_eq!(
            *render(&cred(&t)),
            "export SEATABLE_SERVER_URL='https://cloud.seatable.io'\n\
             export SEATABLE_API_GATEWAY_URL='https://cloud.seatable.io/api-gateway/'\n\
             export SEATABLE_BASE_UUID='7c3b1d2e'\n\
             export SEATABLE_BASE_TOKEN='eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3NjQ1Mzk3MDB9.c2ln'\n\
             export SEATABLE_BASE_TOKEN_EXPIRES_AT='2025-11-30T21:55:00Z'"
        );
    }

    #[test]
    fn quoting_survives_a_shell() {
        let nasty = "a'b \"c\" $HOME `id` \\ \n end";
        let script = format!("printf %s {}", quote(nasty));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), nasty);
    }
}
