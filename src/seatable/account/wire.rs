//! The account API's wire types (SPEC §12): plain serde types, parsed
//! leniently — unknown fields are ignored and ids that some proxies send as
//! strings are accepted. The list endpoint returns every token's *value*; a
//! listed value is hashed while it is parsed and dropped ([`Digest`]).

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};
use zeroize::Zeroizing;

/// The SHA-256 of an API token: enough to tell whether two tokens are the
/// same, useless for opening a base.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    pub fn of(token: &SecretString) -> Digest {
        Self::of_str(token.expose_secret())
    }

    pub(crate) fn of_str(token: &str) -> Digest {
        let d = ring::digest::digest(&ring::digest::SHA256, token.trim().as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Digest(out)
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Digest(…)")
    }
}

/// A base as the API-token endpoints name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BaseRef {
    pub workspace_id: i64,
    #[serde(rename = "dtable_name")]
    pub name: String,
}

impl std::fmt::Display for BaseRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "'{}' (workspace {})", self.name, self.workspace_id)
    }
}

/// `POST /api2/auth-token/` → 200.
#[derive(Deserialize)]
pub struct AuthTokenResponse {
    pub token: SecretString,
}

/// `POST /api2/auth-token/` → 400.
#[derive(Deserialize, Default)]
pub(super) struct LoginError {
    #[serde(default)]
    pub(super) non_field_errors: Vec<String>,
    #[serde(default)]
    pub(super) detail: Option<String>,
}

/// `GET /api/v2.1/workspaces/`.
#[derive(Deserialize, Debug, PartialEq)]
pub struct WorkspaceList {
    #[serde(default)]
    pub workspace_list: Vec<Workspace>,
}

#[derive(Deserialize, Debug, PartialEq)]
pub struct Workspace {
    /// `None` for the "starred" and "shared" pseudo-workspaces (`""`).
    #[serde(default, deserialize_with = "lenient_id")]
    pub id: Option<i64>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub name: String,
    #[serde(default, rename = "type", deserialize_with = "lenient_text")]
    pub kind: String,
    #[serde(default)]
    pub table_list: Vec<Table>,
}

/// A base in a workspace's `table_list`.
#[derive(Deserialize, Debug, PartialEq)]
pub struct Table {
    pub name: String,
    #[serde(default, deserialize_with = "lenient_text")]
    pub uuid: String,
    /// The workspace the base lives in (a starred base's own).
    #[serde(default, deserialize_with = "lenient_id")]
    pub workspace_id: Option<i64>,
}

/// `GET …/api-tokens/`.
#[derive(Deserialize)]
pub struct ApiTokenList {
    pub api_tokens: Vec<ListedToken>,
}

/// One token of a list: its value reduced to a [`Digest`].
#[derive(Deserialize, Debug)]
pub struct ListedToken {
    pub app_name: String,
    #[serde(rename = "api_token", deserialize_with = "digest_of")]
    pub digest: Digest,
    #[serde(default, deserialize_with = "lenient_string")]
    pub generated_by: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub generated_at: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub last_access: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub permission: String,
}

/// `POST …/api-tokens/` → 201, and `PUT …/api-tokens/{app_name}/` → 200.
#[derive(Deserialize)]
pub struct NewToken {
    pub app_name: String,
    pub api_token: SecretString,
    #[serde(default, deserialize_with = "lenient_text")]
    pub permission: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub generated_at: Option<String>,
}

pub(in crate::seatable) fn digest_of<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
    let value = Zeroizing::new(String::deserialize(d)?);
    Ok(Digest::of_str(&value))
}

pub(in crate::seatable) fn lenient_string<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s),
        _ => None,
    })
}

pub(in crate::seatable) fn lenient_text<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<String, D::Error> {
    Ok(lenient_string(d)?.unwrap_or_default())
}

pub(in crate::seatable) fn lenient_id<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<i64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A time as SeaTable writes it (RFC 3339 with an offset: `+00:00`, or the
/// server's zone) as Unix seconds.
pub fn unix_seconds(text: &str) -> Option<u64> {
    let at =
        time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
            .ok()?;
    u64::try_from(at.unix_timestamp()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_token_list_and_keeps_only_digests() {
        // As in SeaTable's API reference, plus a field it may add one day.
        let body = br#"{"api_tokens":[
            {"app_name":"Google","api_token":"d66f83fccd0299f0dfe70e1ca807f05921f2de5f","generated_by":"12345cfaf1154efba122f92359f4e580@auth.local","generated_at":"2019-09-19T02:41:53+00:00","last_access":"2019-09-19T03:56:13+00:00","permission":"rw","future":1},
            {"app_name":"Postman","api_token":"4351cacae2c504e6a8ce5a75e95ae769629a70a2","generated_by":"x@auth.local","generated_at":"2019-09-19T03:01:58+00:00","last_access":null,"permission":"r"}
        ]}"#;
        let list: ApiTokenList = serde_json::from_slice(body).unwrap();
        let [google, postman] = &list.api_tokens[..] else {
            panic!("two tokens")
        };
        assert_eq!(google.app_name, "Google");
        assert_eq!(
            google.digest,
            Digest::of(&SecretString::from(
                "d66f83fccd0299f0dfe70e1ca807f05921f2de5f"
            ))
        );
        assert_ne!(google.digest, postman.digest);
        assert_eq!(
            google.generated_by.as_deref(),
            Some("12345cfaf1154efba122f92359f4e580@auth.local")
        );
        assert_eq!(
            google.generated_at.as_deref(),
            Some("2019-09-19T02:41:53+00:00")
        );
        assert_eq!(
            google.last_access.as_deref(),
            Some("2019-09-19T03:56:13+00:00")
        );
        assert_eq!(google.permission, "rw");
        assert_eq!(postman.last_access, None);
        assert_eq!(postman.permission, "r");
        // Debug never shows a value, nor its digest.
        let shown = format!("{list:?}", list = list.api_tokens);
        assert!(!shown.contains("d66f83"), "{shown}");
    }

    #[test]
    fn parses_a_created_token() {
        let body = br#"{"app_name":"Google","api_token":"d66f83fccd0299f0dfe70e1ca807f05921f2de5f","generated_by":"a@auth.local","generated_at":"2019-09-19T02:41:53+00:00","last_access":"2019-09-19T03:56:13+00:00","permission":"rw"}"#;
        let t: NewToken = serde_json::from_slice(body).unwrap();
        assert_eq!(t.app_name, "Google");
        assert_eq!(
            t.api_token.expose_secret(),
            "d66f83fccd0299f0dfe70e1ca807f05921f2de5f"
        );
        assert_eq!(t.permission, "rw");
        assert_eq!(t.generated_at.as_deref(), Some("2019-09-19T02:41:53+00:00"));
        assert!(serde_json::from_slice::<NewToken>(br#"{"app_name":"x"}"#).is_err());
    }

    #[test]
    fn parses_workspaces_with_pseudo_workspaces_and_string_ids() {
        // Shaped as SeaTable's reference answers (detail=true), trimmed.
        let body = br##"{"workspace_list":[
            {"id":"","name":"starred","type":"starred","table_list":[{"id":3,"workspace_id":5,"uuid":"64155cad","name":"nice","starred":true}]},
            {"id":"","name":"shared","type":"shared","shared_table_list":[{"id":2,"workspace_id":2,"uuid":"3af8","name":"good"}]},
            {"id":1,"name":"personal","type":"personal","table_list":[{"id":1,"workspace_id":1,"uuid":"4662","name":"hello","color":"#FF8000"}]},
            {"id":"5","name":"my group","type":"group","group_id":22,"table_list":[{"id":3,"workspace_id":"5","uuid":"64155cad","name":"nice"}]}
        ]}"##;
        let list: WorkspaceList = serde_json::from_slice(body).unwrap();
        assert_eq!(
            list,
            WorkspaceList {
                workspace_list: vec![
                    Workspace {
                        id: None,
                        name: "starred".into(),
                        kind: "starred".into(),
                        table_list: vec![Table {
                            name: "nice".into(),
                            uuid: "64155cad".into(),
                            workspace_id: Some(5)
                        }],
                    },
                    Workspace {
                        id: None,
                        name: "shared".into(),
                        kind: "shared".into(),
                        table_list: vec![],
                    },
                    Workspace {
                        id: Some(1),
                        name: "personal".into(),
                        kind: "personal".into(),
                        table_list: vec![Table {
                            name: "hello".into(),
                            uuid: "4662".into(),
                            workspace_id: Some(1)
                        }],
                    },
                    Workspace {
                        id: Some(5),
                        name: "my group".into(),
                        kind: "group".into(),
                        table_list: vec![Table {
                            name: "nice".into(),
                            uuid: "64155cad".into(),
                            workspace_id: Some(5)
                        }],
                    },
                ]
            }
        );
    }

    #[test]
    fn base_ref_serialises_as_the_list_output_names_it() {
        let base = BaseRef {
            workspace_id: 7,
            name: "CRM".into(),
        };
        assert_eq!(
            serde_json::to_string(&base).unwrap(),
            r#"{"workspace_id":7,"dtable_name":"CRM"}"#
        );
        assert_eq!(base.to_string(), "'CRM' (workspace 7)");
    }
    #[test]
    fn login_answer_and_errors() {
        let ok: AuthTokenResponse =
            serde_json::from_slice(br#"{"token":"24fd3c026886e3121b2ca630805ed425c272cb96"}"#)
                .unwrap();
        assert_eq!(
            ok.token.expose_secret(),
            "24fd3c026886e3121b2ca630805ed425c272cb96"
        );
        let refused: LoginError = serde_json::from_slice(
            br#"{"non_field_errors":["Unable to login with provided credentials."]}"#,
        )
        .unwrap();
        assert_eq!(
            refused.non_field_errors,
            ["Unable to login with provided credentials."]
        );
    }
}
