//! The body of `GET /api/v2.1/dtable/app-access-token/`.
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
}
