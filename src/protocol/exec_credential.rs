//! client-go's exec credential protocol (kubectl `users[].user.exec`).
//!
//! The expiration timestamp is `expires_at − refresh_before`: client-go
//! applies no skew of its own, so it comes back before the token's last
//! minutes instead of sending a token that is about to die.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::Credential;
use crate::error::Failure;
use secrecy::ExposeSecret;

/// The protocol versions client-go speaks today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    V1,
    V1Beta1,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "client.authentication.k8s.io/v1",
            ApiVersion::V1Beta1 => "client.authentication.k8s.io/v1beta1",
        }
    }

    /// The version to answer with: that of `KUBERNETES_EXEC_INFO` when the
    /// caller sets it (other fields are ignored), else v1.
    pub fn from_exec_info(exec_info: Option<&str>) -> Result<ApiVersion, Failure> {
        #[derive(Deserialize)]
        struct ExecInfo {
            #[serde(rename = "apiVersion")]
            api_version: Option<String>,
        }
        let Some(text) = exec_info.filter(|t| !t.trim().is_empty()) else {
            return Ok(ApiVersion::V1);
        };
        let info: ExecInfo = serde_json::from_str(text).map_err(|_| {
            Failure::usage(
                "KUBERNETES_EXEC_INFO is not ExecCredential JSON: unset it, or let kubectl set it",
            )
        })?;
        match info.api_version.as_deref() {
            None | Some("client.authentication.k8s.io/v1") => Ok(ApiVersion::V1),
            Some("client.authentication.k8s.io/v1beta1") => Ok(ApiVersion::V1Beta1),
            Some(other) => {
                let shown: String = other.chars().filter(|c| !c.is_control()).take(80).collect();
                Err(Failure::usage(format!(
                    "KUBERNETES_EXEC_INFO asks for apiVersion '{shown}'; supported are client.authentication.k8s.io/v1 and v1beta1"
                )))
            }
        }
    }
}

#[derive(Serialize)]
struct ExecCredential<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    status: Status<'a>,
}

#[derive(Serialize)]
struct Status<'a> {
    token: &'a str,
    #[serde(rename = "expirationTimestamp")]
    expiration_timestamp: String,
}

pub fn render(cred: &Credential<'_>, version: ApiVersion) -> Zeroizing<String> {
    let doc = ExecCredential {
        api_version: version.as_str(),
        kind: "ExecCredential",
        status: Status {
            token: cred.token.token.expose_secret(),
            expiration_timestamp: crate::time::rfc3339(cred.refresh_at()),
        },
    };
    Zeroizing::new(serde_json::to_string(&doc).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::{cred, sample};

    #[test]
    fn pins_v1_output() {
        let t = sample();
        assert_eq!(
            *render(&cred(&t), ApiVersion::V1),
            r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3NjQ1Mzk3MDB9.c2ln","expirationTimestamp":"2025-11-30T21:50:00Z"}}"#
        );
    }

    #[test]
    fn answers_in_the_callers_api_version() {
        let info = r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":false,"cluster":{"server":"x"}}}"#;
        let v = ApiVersion::from_exec_info(Some(info)).unwrap();
        assert_eq!(v, ApiVersion::V1Beta1);
        let t = sample();
        assert!(render(&cred(&t), v).starts_with(
            r#"{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential""#
        ));
        assert_eq!(ApiVersion::from_exec_info(None).unwrap(), ApiVersion::V1);
        assert_eq!(
            ApiVersion::from_exec_info(Some("")).unwrap(),
            ApiVersion::V1
        );
        let v1 = r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":true}}"#;
        assert_eq!(
            ApiVersion::from_exec_info(Some(v1)).unwrap(),
            ApiVersion::V1
        );
    }

    #[test]
    fn rejects_garbage_and_unknown_versions() {
        assert!(ApiVersion::from_exec_info(Some("{not json")).is_err());
        assert!(ApiVersion::from_exec_info(Some("\u{0}\u{1}")).is_err());
        let alpha = r#"{"apiVersion":"client.authentication.k8s.io/v1alpha1"}"#;
        assert!(
            ApiVersion::from_exec_info(Some(alpha))
                .unwrap_err()
                .to_string()
                .contains("v1alpha1")
        );
    }
}
