//! Local keys and session tokens: what clients of the agent hold instead of
//! SeaTable's API token and base token.
//!
//! * A **local key** is 40 random hex characters per profile, shaped like an
//!   API token so that SDKs take it where they take one. Presented keys are
//!   compared in constant time.
//! * A **session token** is what the local exchange hands out as
//!   `access_token`: a JWT-shaped token (HS256 over `{"alg","typ"}` and the
//!   claims below) with a correct `exp`, so SDKs that decode base tokens read
//!   sane values. Its signing key is derived from the profile's local key, so
//!   it needs no table in the agent (nothing grows with clients), survives an
//!   agent restart while the key file does, and replacing the key revokes
//!   every session of the profile at once. It is useless anywhere but at this
//!   agent: SeaTable never accepts it.
//! * [`Verified`] remembers the last few tokens that verified (a fixed
//!   number of slots, so still nothing grows with clients), sparing a
//!   client's every request the HMAC; a reload forgets them.

use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Bytes of randomness in a local key (40 hex characters).
const KEY_BYTES: usize = 20;
/// Session tokens larger than this are not ours.
const MAX_TOKEN: usize = 4096;
/// What the `iss` claim says.
pub const ISSUER: &str = "seatable-cred serve";
/// `{"alg":"HS256","typ":"JWT"}` as it stands in every token (base64url):
/// compared as text, so that no request encodes or decodes it.
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// A profile's local key and the session-signing key derived from it.
pub struct LocalKey {
    secret: SecretString,
    signing: hmac::Key,
}

impl std::fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalKey(..)")
    }
}

impl LocalKey {
    /// A fresh random key.
    pub fn generate() -> LocalKey {
        let mut bytes = zeroize::Zeroizing::new([0u8; KEY_BYTES]);
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes[..])
            .expect("the system's random source failed");
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Self::from_hex(SecretString::from(hex)).expect("40 hex characters")
    }

    /// A key read back from its env file; `None` unless it is 40 hex characters.
    pub fn from_hex(secret: SecretString) -> Option<LocalKey> {
        let text = secret.expose_secret();
        if text.len() != 2 * KEY_BYTES || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        // Session tokens are signed with a key of their own, derived from
        // the local key, so that the local key itself never signs anything.
        let derive = hmac::Key::new(hmac::HMAC_SHA256, text.as_bytes());
        let derived = hmac::sign(&derive, b"seatable-cred serve session key v1");
        let signing = hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref());
        Some(LocalKey { secret, signing })
    }

    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    /// Whether `presented` is this key, in time independent of where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let ours = self.secret.expose_secret().as_bytes();
        // `ct_eq` on slices of different lengths returns false at once; the
        // length of a key is no secret (always 40).
        bool::from(ours.ct_eq(presented))
    }

    /// Signs a session token with these claims.
    pub fn issue(&self, claims: &Claims) -> SecretString {
        let payload = serde_json::to_vec(claims).expect("claims serialise");
        let input = format!("{HEADER_B64}.{}", B64.encode(payload));
        let tag = hmac::sign(&self.signing, input.as_bytes());
        SecretString::from(format!("{input}.{}", B64.encode(tag.as_ref())))
    }

    /// Checks a session token's signature and expiry.
    pub fn verify(&self, token: &str, now: u64) -> Verdict {
        match Presented::read(token) {
            Some(presented) => self.check(&presented, now),
            None => Verdict::Invalid,
        }
    }

    /// [`verify`](Self::verify) for a token already read: the proxy reads
    /// each token once, to learn its profile, then checks it with that
    /// profile's key.
    pub fn check(&self, presented: &Presented<'_>, now: u64) -> Verdict {
        // An HS256 tag is 32 bytes; room for more makes longer tags fail
        // the comparison instead of the decoding.
        let mut tag = [0u8; 64];
        let Ok(len) = B64.decode_slice(presented.tag, &mut tag) else {
            return Verdict::Invalid;
        };
        if hmac::verify(&self.signing, presented.signed.as_bytes(), &tag[..len]).is_err() {
            return Verdict::Invalid;
        }
        if presented.exp > now {
            Verdict::Valid
        } else {
            Verdict::Expired
        }
    }
}

/// A presented session token, split and the claims that route it read —
/// not yet verified: [`LocalKey::check`] does that.
pub struct Presented<'a> {
    /// `header.payload`, what the tag signs.
    signed: &'a str,
    tag: &'a str,
    /// The profile whose key is to check it.
    pub sub: String,
    pub exp: u64,
}

impl<'a> Presented<'a> {
    /// `None` unless the token is ours in shape: three parts, our header,
    /// our issuer. Reads the payload once and only the claims it needs —
    /// this runs for every proxied request.
    pub fn read(token: &'a str) -> Option<Presented<'a>> {
        /// The claims that route and bound a session; others are ignored.
        #[derive(Deserialize)]
        struct Routing<'p> {
            exp: u64,
            #[serde(borrow)]
            sub: std::borrow::Cow<'p, str>,
            #[serde(borrow)]
            iss: std::borrow::Cow<'p, str>,
        }
        if token.len() > MAX_TOKEN {
            return None;
        }
        let (signed, tag) = token.rsplit_once('.')?;
        let (header, payload) = signed.split_once('.')?;
        if header != HEADER_B64 || payload.contains('.') {
            return None;
        }
        let bytes = B64.decode(payload).ok()?;
        let claims: Routing<'_> = serde_json::from_slice(&bytes).ok()?;
        (claims.iss == ISSUER).then(|| Presented {
            signed,
            tag,
            sub: claims.sub.into_owned(),
            exp: claims.exp,
        })
    }
}

/// The claims of a session token: SeaTable's own (`exp`, `dtable_uuid`,
/// `permission`, `app_name`), plus whose it is. Unknown claims are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub exp: u64,
    pub iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtable_uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    /// The agent's profile whose base token the session uses.
    pub sub: String,
    pub iss: String,
}

/// What a presented session token is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// Ours, but past its `exp`: SeaTable's "Token expired." makes SDKs re-authenticate.
    Expired,
    Invalid,
}

/// Session tokens verified lately, each with the profile (its index in the
/// profiles table) and the expiry it verified for: a client presents the
/// same token with every request, and reading and verifying it each time
/// was about a tenth of the agent's work per proxied request.
///
/// Direct-mapped: a token has one slot, chosen by the last characters of
/// its tag (an HMAC, so spread evenly); a newer token there replaces the
/// older one. Only tokens that verified are stored, and a presented token is
/// compared with the stored one in constant time. The cache belongs to the
/// profiles table, which a reload replaces: a replaced key's sessions are
/// forgotten with it.
pub struct Verified {
    slots: [Mutex<Option<Remembered>>; SLOTS],
}

/// More slots than the sessions a profile's clients usually hold at once.
const SLOTS: usize = 16;

struct Remembered {
    token: SecretString,
    profile: usize,
    exp: u64,
}

impl Default for Verified {
    fn default() -> Self {
        Verified {
            slots: std::array::from_fn(|_| Mutex::new(None)),
        }
    }
}

impl Verified {
    /// The profile and expiry `token` verified for, if it is remembered.
    pub fn lookup(&self, token: &str) -> Option<(usize, u64)> {
        let slot = self.slot(token).lock().unwrap_or_else(|p| p.into_inner());
        let seen = slot.as_ref()?;
        // The tag is what no one can make without the key: it is compared
        // in constant time. The signed part is public (base64 of the
        // header and claims), and an ordinary comparison of it is quicker.
        fn split(t: &str) -> (&str, &str) {
            // No dot (never so in a token that verified): all of it is tag.
            t.rsplit_once('.').unwrap_or(("", t))
        }
        let (signed, tag) = split(token);
        let (seen_signed, seen_tag) = split(seen.token.expose_secret());
        (signed == seen_signed && bool::from(tag.as_bytes().ct_eq(seen_tag.as_bytes())))
            .then_some((seen.profile, seen.exp))
    }

    /// Remembers a token that just verified.
    pub fn remember(&self, token: &str, profile: usize, exp: u64) {
        let mut slot = self.slot(token).lock().unwrap_or_else(|p| p.into_inner());
        *slot = Some(Remembered {
            token: SecretString::from(token),
            profile,
            exp,
        });
    }

    fn slot(&self, token: &str) -> &Mutex<Option<Remembered>> {
        let tail = &token.as_bytes()[token.len().saturating_sub(4)..];
        let mixed = tail.iter().fold(0usize, |h, &b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        });
        &self.slots[mixed % SLOTS]
    }
}

/// The credential in an `Authorization: Token …` (or `Bearer …`) header,
/// as both SDKs and SeaTable 4.0+ spell it.
pub fn credential(header: Option<&hyper::header::HeaderValue>) -> Option<&str> {
    let value = header?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer"))
        .then(|| rest.trim())
        .filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The claims a token carries, unverified.
    fn peek(token: &str) -> Option<Claims> {
        if token.len() > MAX_TOKEN {
            return None;
        }
        let mut parts = token.split('.');
        let (header, payload, _tag) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || header != HEADER_B64 {
            return None;
        }
        let bytes = B64.decode(payload).ok()?;
        serde_json::from_slice::<Claims>(&bytes)
            .ok()
            .filter(|c| c.iss == ISSUER)
    }

    fn claims(exp: u64) -> Claims {
        Claims {
            exp,
            iat: 100,
            dtable_uuid: Some("7c3b".into()),
            permission: Some("rw".into()),
            app_name: Some("crm".into()),
            sub: "default".into(),
            iss: ISSUER.into(),
        }
    }

    #[test]
    fn keys_are_40_hex_and_compared_exactly() {
        let key = LocalKey::generate();
        let text = key.secret().expose_secret().to_string();
        assert_eq!(text.len(), 40);
        assert!(text.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(key.matches(text.as_bytes()));
        assert!(!key.matches(&text.as_bytes()[..39]));
        let mut other = text.clone().into_bytes();
        other[39] = if other[39] == b'0' { b'1' } else { b'0' };
        assert!(!key.matches(&other));
        assert!(!key.matches(b""));
        assert_ne!(LocalKey::generate().secret().expose_secret(), text.as_str());
        assert!(LocalKey::from_hex(SecretString::from("xyz")).is_none());
        assert!(LocalKey::from_hex(SecretString::from("g".repeat(40))).is_none());
    }

    #[test]
    fn session_tokens_verify_expire_and_resist_tampering() {
        let key = LocalKey::generate();
        let token = key.issue(&claims(1000));
        let token = token.expose_secret();
        assert_eq!(token.matches('.').count(), 2, "JWT-shaped");
        assert_eq!(key.verify(token, 999), Verdict::Valid);
        assert_eq!(key.verify(token, 1000), Verdict::Expired);
        assert_eq!(peek(token), Some(claims(1000)));
        // Another key (another profile, or a replaced key) does not accept it.
        assert_eq!(LocalKey::generate().verify(token, 0), Verdict::Invalid);
        // A changed payload breaks the signature.
        let forged = LocalKey::generate().issue(&claims(u64::MAX));
        let (_, forged_payload) = forged.expose_secret().split_once('.').unwrap();
        let forged_payload = forged_payload.split_once('.').unwrap().0;
        let parts: Vec<&str> = token.split('.').collect();
        let tampered = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
        assert_eq!(key.verify(&tampered, 0), Verdict::Invalid);
        for junk in ["", "a.b", "a.b.c", "..", &"x".repeat(5000)] {
            assert_eq!(key.verify(junk, 0), Verdict::Invalid, "{junk:.20}");
            assert!(peek(junk).is_none());
        }
    }

    #[test]
    fn the_same_key_text_signs_the_same_way() {
        // What makes sessions survive an agent restart that reuses the env file.
        let a = LocalKey::generate();
        let b =
            LocalKey::from_hex(SecretString::from(a.secret().expose_secret().to_string())).unwrap();
        let token = a.issue(&claims(50));
        assert_eq!(b.verify(token.expose_secret(), 1), Verdict::Valid);
    }

    #[test]
    fn verified_sessions_are_remembered_exactly() {
        let key = LocalKey::generate();
        let cache = Verified::default();
        let tokens: Vec<SecretString> = (0..40).map(|i| key.issue(&claims(1000 + i))).collect();
        let text = |i: usize| tokens[i].expose_secret();
        assert_eq!(cache.lookup(text(0)), None);
        cache.remember(text(0), 2, 1000);
        assert_eq!(cache.lookup(text(0)), Some((2, 1000)));
        // Another token, a prefix or an extension of it: not remembered.
        assert_eq!(cache.lookup(text(1)), None);
        assert_eq!(cache.lookup(&text(0)[..text(0).len() - 1]), None);
        assert_eq!(cache.lookup(&format!("{}A", text(0))), None);
        // Same claims, same slot, another tag: not remembered either.
        let mut forged = text(0).as_bytes().to_vec();
        let i = forged.len() - 10;
        forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
        assert_eq!(cache.lookup(std::str::from_utf8(&forged).unwrap()), None);
        assert_eq!(cache.lookup(""), None);
        // More tokens than slots: each lookup is the token's own or none.
        for i in 0..tokens.len() {
            cache.remember(text(i), i, 1000 + i as u64);
        }
        let mut kept = 0;
        for i in 0..tokens.len() {
            if let Some(found) = cache.lookup(text(i)) {
                assert_eq!(found, (i, 1000 + i as u64));
                kept += 1;
            }
        }
        assert!((1..=SLOTS).contains(&kept), "{kept}");
        assert_eq!(cache.lookup(text(tokens.len() - 1)).map(|f| f.0), Some(39));
    }

    #[test]
    fn the_header_is_hs256_jwt() {
        assert_eq!(B64.encode(r#"{"alg":"HS256","typ":"JWT"}"#), HEADER_B64);
    }

    #[test]
    fn claims_json_both_ways() {
        let json = serde_json::to_string(&claims(1000)).unwrap();
        assert_eq!(
            json,
            r#"{"exp":1000,"iat":100,"dtable_uuid":"7c3b","permission":"rw","app_name":"crm","sub":"default","iss":"seatable-cred serve"}"#
        );
        let parsed: Claims = serde_json::from_str(
            r#"{"exp":5,"iat":1,"sub":"p","iss":"seatable-cred serve","username":"","extra":[1]}"#,
        )
        .unwrap();
        assert_eq!(parsed.exp, 5);
        assert_eq!(parsed.dtable_uuid, None);
    }

    #[test]
    fn credentials_from_token_or_bearer() {
        use hyper::header::HeaderValue;
        let h = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(credential(Some(&h("Token abc"))), Some("abc"));
        assert_eq!(credential(Some(&h("bearer abc "))), Some("abc"));
        assert_eq!(credential(Some(&h("Basic abc"))), None);
        assert_eq!(credential(Some(&h("Token "))), None);
        assert_eq!(credential(Some(&h("Token"))), None);
        assert_eq!(credential(None), None);
    }
}
