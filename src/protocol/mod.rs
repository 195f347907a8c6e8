//! Output protocols of SPEC §7: how a credential is printed for the calling
//! tool. Protocols format; they never touch the network or the cache.
//! Every format ends with a newline, and stdout carries nothing else.

pub mod env;
pub mod exec_credential;
pub mod git_credential;
pub mod json;

use std::time::Duration;

use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::seatable::BaseToken;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// client-go's ExecCredential JSON (kubectl and friends).
    ExecCredential,
    /// Everything a SeaTable client needs, as JSON.
    Json,
    /// `export NAME='value'` lines for POSIX shells.
    Env,
    /// `Authorization: Bearer <token>`, for `curl -H @file`.
    Header,
    /// The bare token.
    Token,
}

/// A credential about to be printed.
pub struct Credential<'a> {
    pub token: &'a BaseToken,
    /// Answered from the cache, without network.
    pub cached: bool,
    pub refresh_before: Duration,
}

impl Credential<'_> {
    /// When to ask again (Unix seconds).
    pub fn refresh_at(&self) -> u64 {
        self.token.refresh_at(self.refresh_before)
    }
}

/// Renders the credential; `exec_info` is `KUBERNETES_EXEC_INFO`, already
/// checked by [`exec_credential::ApiVersion::from_exec_info`].
pub fn render(
    format: Format,
    cred: &Credential<'_>,
    api_version: exec_credential::ApiVersion,
) -> Zeroizing<String> {
    let mut out = match format {
        Format::ExecCredential => exec_credential::render(cred, api_version),
        Format::Json => json::render(cred),
        Format::Env => env::render(cred),
        Format::Header => Zeroizing::new(format!(
            "Authorization: Bearer {}",
            cred.token.token.expose_secret()
        )),
        Format::Token => Zeroizing::new(cred.token.token.expose_secret().to_owned()),
    };
    out.push('\n');
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::seatable::BaseContext;
    use secrecy::SecretString;

    /// A token valid from 2025-11-27T21:55:00Z to 2025-11-30T21:55:00Z.
    pub fn sample() -> BaseToken {
        BaseToken {
            token: SecretString::from("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3NjQ1Mzk3MDB9.c2ln"),
            expires_at: 1_764_539_700,
            fetched_at: 1_764_280_500,
            context: BaseContext {
                server_url: "https://cloud.seatable.io".into(),
                api_gateway_url: "https://cloud.seatable.io/api-gateway/".into(),
                dtable_server: Some("https://cloud.seatable.io/api-gateway/".into()),
                dtable_uuid: Some("7c3b1d2e".into()),
                dtable_name: Some("CRM's base".into()),
                workspace_id: Some(42),
                app_name: Some("crm-sync".into()),
                permission: Some("rw".into()),
                use_api_gateway: Some(true),
            },
        }
    }

    pub fn cred(token: &BaseToken) -> Credential<'_> {
        Credential {
            token,
            cached: true,
            refresh_before: Duration::from_secs(300),
        }
    }

    #[test]
    fn header_and_token_formats() {
        let t = sample();
        let v = exec_credential::ApiVersion::V1;
        assert_eq!(
            *render(Format::Header, &cred(&t), v),
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3NjQ1Mzk3MDB9.c2ln\n"
        );
        assert_eq!(
            *render(Format::Token, &cred(&t), v),
            "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3NjQ1Mzk3MDB9.c2ln\n"
        );
    }

    #[test]
    fn every_format_ends_with_exactly_one_newline() {
        let t = sample();
        for f in [
            Format::ExecCredential,
            Format::Json,
            Format::Env,
            Format::Header,
            Format::Token,
        ] {
            let out = render(f, &cred(&t), exec_credential::ApiVersion::V1);
            assert!(out.ends_with('\n') && !out.ends_with("\n\n"), "{f:?}");
        }
    }
}
