//! The claims of a SeaTable base token that the helper needs.
//!
//! The payload is read, never verified: the signature is the server's
//! business, and the helper only uses `exp` to know when to ask again.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;

/// URL-safe base64 that accepts the payload with or without padding.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Payloads larger than this are not base tokens.
const MAX_PAYLOAD: usize = 16 * 1024;

#[derive(Debug, Default, Deserialize, PartialEq)]
pub struct Claims {
    /// Expiry, Unix seconds.
    #[serde(default, deserialize_with = "unix_seconds")]
    pub exp: Option<u64>,
    /// `r` or `rw`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub permission: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub dtable_uuid: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub app_name: Option<String>,
}

/// Reads the claims of a compact JWS (`header.payload.signature`); `None` when
/// the token is not one. Unknown claims are ignored.
pub fn claims(token: &str) -> Option<Claims> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.len() > MAX_PAYLOAD {
        return None;
    }
    let bytes = LENIENT.decode(payload).ok()?;
    if !crate::json::is_object(&bytes) {
        return None;
    }
    serde_json::from_slice(&bytes).ok()
}

/// `exp` is an integer by RFC 7519 (NumericDate may carry a fraction); any
/// other type is treated as absent rather than failing the whole payload.
fn unix_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(match value {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u64)
        }),
        _ => None,
    })
}

fn lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(match value {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(payload: &str) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            b64.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
            b64.encode(payload)
        )
    }

    #[test]
    fn reads_seatable_claims() {
        let t = token(
            r#"{"exp":1764539700,"dtable_uuid":"abc","username":"","permission":"rw","app_name":"crm-sync","extra":[1]}"#,
        );
        assert_eq!(
            claims(&t),
            Some(Claims {
                exp: Some(1_764_539_700),
                permission: Some("rw".into()),
                dtable_uuid: Some("abc".into()),
                app_name: Some("crm-sync".into()),
            })
        );
    }

    #[test]
    fn tolerates_odd_types_and_padding() {
        let t = token(r#"{"exp":1764539700.9,"permission":5}"#);
        let c = claims(&t).unwrap();
        assert_eq!(c.exp, Some(1_764_539_700));
        assert_eq!(c.permission, None);
        let b64 = base64::engine::general_purpose::URL_SAFE;
        let padded = format!("h.{}.s", b64.encode(r#"{"exp":1}"#));
        assert_eq!(claims(&padded).unwrap().exp, Some(1));
        assert_eq!(claims(&token(r#"{"exp":"soon"}"#)).unwrap().exp, None);
        assert_eq!(claims(&token(r#"{"exp":-5}"#)).unwrap().exp, None);
    }

    #[test]
    fn not_a_jwt_is_none() {
        assert_eq!(claims("opaque-token"), None);
        assert_eq!(claims("a.b"), None);
        assert_eq!(claims("a.b.c.d"), None);
        assert_eq!(claims("a.!!!.c"), None);
        assert_eq!(claims(&token("[1,2]")), None);
        assert_eq!(claims(&token("not json")), None);
    }
}
