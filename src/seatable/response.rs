//! SeaTable's answers: the body of `GET /api/v2.1/dtable/app-access-token/`,
//! and the error body every endpoint answers a refusal with ([`ErrorBody`]).
//!
//! 6.x sends `access_token`, `app_name`, `dtable_name`, `dtable_server` (ending
//! in `/api-gateway/`), `dtable_uuid`, `use_api_gateway`, `workspace_id`; 4.x
//! also `dtable_socket` and `dtable_db`. Only `access_token` is required and
//! unknown keys are ignored, so newer servers keep working.

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct AccessTokenResponse {
    pub access_token: SecretString,
    #[serde(default, deserialize_with = "lenient_string")]
    pub app_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub dtable_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub dtable_server: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub dtable_uuid: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub use_api_gateway: Option<bool>,
    #[serde(default, deserialize_with = "lenient_id")]
    pub workspace_id: Option<i64>,
}

impl AccessTokenResponse {
    /// Parses a response body; `None` when it is not the JSON object above
    /// (e.g. an HTML maintenance page answered with 200).
    pub fn parse(body: &[u8]) -> Option<AccessTokenResponse> {
        if !crate::json::is_object(body) {
            return None;
        }
        serde_json::from_slice(body).ok()
    }
}

/// SeaTable's error body: `{"error_msg": "…"}` — or, from the Django REST
/// framework views behind the account API, `{"detail": "…"}`. Read
/// leniently like the rest: a field that is not a string is not there.
#[derive(Deserialize, Default, Debug)]
pub struct ErrorBody {
    #[serde(default, deserialize_with = "lenient_string")]
    error_msg: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    detail: Option<String>,
}

impl ErrorBody {
    /// The error fields of an answer's body; none when it is not JSON.
    pub fn parse(body: &[u8]) -> ErrorBody {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// `error_msg`, short and printable.
    pub fn error_msg(&self) -> Option<String> {
        self.error_msg.as_deref().and_then(printable)
    }

    /// `error_msg`, else `detail`, short and printable.
    pub fn message(&self) -> Option<String> {
        self.error_msg
            .as_deref()
            .or(self.detail.as_deref())
            .and_then(printable)
    }
}

/// A server's words as they may be shown: no control characters, at most
/// 200 characters, not empty.
fn printable(text: &str) -> Option<String> {
    let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    (!text.is_empty()).then_some(text)
}

fn lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Bool(b) => Some(b),
        _ => None,
    })
}

/// Workspace ids are integers; some proxies stringify them.
fn lenient_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn parses_6x_response() {
        let body = br#"{"app_name":"crm-sync","access_token":"eyJ.x.y","dtable_uuid":"7c3b","dtable_server":"https://cloud.seatable.io/api-gateway/","dtable_socket":"https://cloud.seatable.io/","dtable_db":"https://cloud.seatable.io/dtable-db/","workspace_id":42,"dtable_name":"CRM","use_api_gateway":true}"#;
        let r = AccessTokenResponse::parse(body).unwrap();
        assert_eq!(r.access_token.expose_secret(), "eyJ.x.y");
        assert_eq!(r.app_name.as_deref(), Some("crm-sync"));
        assert_eq!(r.dtable_name.as_deref(), Some("CRM"));
        assert_eq!(
            r.dtable_server.as_deref(),
            Some("https://cloud.seatable.io/api-gateway/")
        );
        assert_eq!(r.dtable_uuid.as_deref(), Some("7c3b"));
        assert_eq!(r.use_api_gateway, Some(true));
        assert_eq!(r.workspace_id, Some(42));
    }

    #[test]
    fn parses_4x_response_without_gateway_fields() {
        let body = br#"{"app_name":"a","access_token":"t","dtable_uuid":"u","dtable_server":"https://s/dtable-server/","dtable_socket":"https://s/","workspace_id":"7","dtable_name":"B"}"#;
        let r = AccessTokenResponse::parse(body).unwrap();
        assert_eq!(r.use_api_gateway, None);
        assert_eq!(r.workspace_id, Some(7));
    }

    #[test]
    fn only_access_token_is_required() {
        let r = AccessTokenResponse::parse(
            br#"{"access_token":"t","workspace_id":null,"dtable_name":3}"#,
        )
        .unwrap();
        assert_eq!(r.workspace_id, None);
        assert_eq!(r.dtable_name, None);
        assert!(AccessTokenResponse::parse(br#"{"dtable_uuid":"u"}"#).is_none());
        assert!(AccessTokenResponse::parse(br#"{"access_token":5}"#).is_none());
        assert!(AccessTokenResponse::parse(b"<html>Down for maintenance</html>").is_none());
        assert!(AccessTokenResponse::parse(b"").is_none());
        assert!(AccessTokenResponse::parse(br#"["t"]"#).is_none());
    }

    #[test]
    fn error_text_is_short_and_clean() {
        let e = |body: &[u8]| ErrorBody::parse(body);
        assert_eq!(
            e(br#"{"error_msg":"Permission denied."}"#)
                .error_msg()
                .as_deref(),
            Some("Permission denied.")
        );
        assert_eq!(e(b"<html>").error_msg(), None);
        assert_eq!(e(b"<html>").message(), None);
        assert_eq!(
            e(br#"{"error_msg":"a\nb"}"#).error_msg().as_deref(),
            Some("ab")
        );
        assert_eq!(e(br#"{"error_msg":"\n"}"#).error_msg(), None);
        let long = format!(r#"{{"error_msg":"{}"}}"#, "x".repeat(300));
        assert_eq!(e(long.as_bytes()).error_msg().unwrap().len(), 200);
        // The account API's views say `detail`; the exchange reads error_msg only.
        let detail = e(br#"{"detail":"Invalid token"}"#);
        assert_eq!(detail.message().as_deref(), Some("Invalid token"));
        assert_eq!(detail.error_msg(), None);
        let both = e(br#"{"error_msg":"api token already exist.","detail":"x"}"#);
        assert_eq!(both.message().as_deref(), Some("api token already exist."));
        assert_eq!(
            e(br#"{"error_msg":5,"detail":"d"}"#).message().as_deref(),
            Some("d")
        );
    }
}
