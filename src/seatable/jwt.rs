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

/// Tokens larger than this are not base tokens.
pub const MAX_TOKEN: usize = 16 * 1024;

/// The longest lifetime a base token may plausibly have: a year (the
/// longest `--lifetime` accepted) and a day for clocks that disagree.
/// Beyond it an `exp` is treated as unreadable, never cached as decades.
pub const MAX_LIFETIME_SECS: u64 = 366 * 24 * 3600;

/// Whether `token` is shaped like a compact JWS — `header.payload.signature`,
/// base64url and dots only. Anything else (a newline that would end a git
/// credential line, a CR LF that would start an HTTP header, spaces, quotes)
/// is refused before a token is cached or printed.
pub fn is_compact_jws(token: &str) -> bool {
    let b64url = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let parts: Vec<&str> = token.split('.').collect();
    token.len() <= MAX_TOKEN
        && parts.len() == 3
        && !parts[0].is_empty()
        && !parts[1].is_empty()
        && parts.iter().all(|p| b64url(p))
}

/// `exp` if it is plausible for a token requested at `requested_at`: not
/// more than [`MAX_LIFETIME_SECS`] ahead (an `exp` of 1e300 or the year
/// 10000 is a broken or hostile server, not a token to keep for ages).
pub fn plausible_exp(exp: Option<u64>, requested_at: u64) -> Option<u64> {
    exp.filter(|&e| e <= requested_at.saturating_add(MAX_LIFETIME_SECS))
}

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
    if parts.next().is_some() || payload.len() > MAX_TOKEN {
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
    fn only_compact_jws_shapes_pass() {
        assert!(is_compact_jws(&token(r#"{"exp":1}"#)));
        assert!(
            is_compact_jws("a.b."),
            "an empty signature is a shape JWS allows"
        );
        assert!(is_compact_jws("aZ09-_.aZ09-_.aZ09-_"));
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            ".b.c",
            "a..c",
            "a.b.c\n",
            "abc\nusername=x.b.c",
            "a.b.c\r\nX-Injected: 1",
            "a b.c.d",
            "a.b=.c",
            "a.b+/.c",
        ] {
            assert!(!is_compact_jws(bad), "{bad:?}");
        }
        // Up to 16 KiB, far more than any base token needs; not a byte more.
        assert!(is_compact_jws(&format!(
            "a.{}.c",
            "b".repeat(16 * 1024 - 4)
        )));
        assert!(!is_compact_jws(&format!(
            "a.{}.c",
            "b".repeat(16 * 1024 - 3)
        )));
    }

    #[test]
    fn payloads_are_decoded_up_to_max_token() {
        // A payload of `len` bytes (unpadded base64 of JSON with trailing spaces).
        let payload = |len: usize| {
            let mut json = br#"{"exp":1}"#.to_vec();
            json.resize(len * 3 / 4, b' ');
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
            assert_eq!(b64.len(), len);
            format!("h.{b64}.s")
        };
        assert_eq!(claims(&payload(MAX_TOKEN)).unwrap().exp, Some(1));
        assert_eq!(claims(&payload(MAX_TOKEN + 2)), None);
    }

    #[test]
    fn implausible_expiries_are_dropped() {
        let t = 1_800_000_000;
        assert_eq!(plausible_exp(Some(t + 3600), t), Some(t + 3600));
        let year = 365 * 24 * 3600; // the longest --lifetime
        assert_eq!(plausible_exp(Some(t + year), t), Some(t + year));
        assert_eq!(
            plausible_exp(Some(t + MAX_LIFETIME_SECS), t),
            Some(t + MAX_LIFETIME_SECS)
        );
        assert_eq!(plausible_exp(Some(t + MAX_LIFETIME_SECS + 1), t), None);
        assert_eq!(plausible_exp(Some(253_402_300_800), t), None);
        assert_eq!(plausible_exp(Some(u64::MAX), t), None);
        assert_eq!(plausible_exp(Some(u64::MAX), u64::MAX), Some(u64::MAX));
        assert_eq!(plausible_exp(None, t), None);
    }

    #[test]
    fn not_a_jwt_is_none() {
        assert_eq!(claims("opaque-token"), None);
        assert_eq!(claims("a.b"), None);
        assert_eq!(claims("a.b.c.d"), None);
        assert_eq!(claims(&format!("{}.d", token(r#"{"exp":1}"#))), None);
        assert_eq!(claims("a.!!!.c"), None);
        assert_eq!(claims(&token("[1,2]")), None);
        assert_eq!(claims(&token("not json")), None);
    }
}
