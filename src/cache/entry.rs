//! The serialised form of cache entries, shared by all backends.
//!
//! A base token:
//! ```json
//! {"v":1,"key":"…","token":"…","expires_at":1764539700,"fetched_at":1764280500,"context":{…}}
//! ```
//! A Vault login:
//! ```json
//! {"v":1,"key":"vault-…","vault_token":"…","issued_at":…,"expires_at":…,"renewable":true}
//! ```
//! The key is stored inside so that an entry copied or renamed into another
//! key's place is foreign, hence a miss.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::Key;
use crate::seatable::{BaseContext, BaseToken};
use crate::vault::CachedLogin;

const VERSION: u8 = 1;
/// Entries are small; anything bigger is not ours.
pub const MAX_ENTRY: usize = 64 * 1024;

/// The serialisable form of a base-token entry (the Vault tier stores it as
/// a JSON value inside its KV secret).
#[derive(Serialize)]
pub struct Out<'a> {
    v: u8,
    key: &'a str,
    token: &'a str,
    expires_at: u64,
    fetched_at: u64,
    context: &'a BaseContext,
}

#[derive(Deserialize)]
struct In {
    v: u8,
    key: String,
    token: SecretString,
    expires_at: u64,
    fetched_at: u64,
    context: BaseContext,
}

pub fn record<'a>(key: &'a Key, token: &'a BaseToken) -> Out<'a> {
    Out {
        v: VERSION,
        key: key.as_str(),
        token: token.token.expose_secret(),
        expires_at: token.expires_at,
        fetched_at: token.fetched_at,
        context: &token.context,
    }
}

pub fn encode(key: &Key, token: &BaseToken) -> Zeroizing<Vec<u8>> {
    // Serialising plain data into a Vec cannot fail.
    Zeroizing::new(serde_json::to_vec(&record(key, token)).unwrap_or_default())
}

/// `None` for anything that is not a well-formed entry of this key.
pub fn decode(key: &Key, bytes: &[u8]) -> Option<BaseToken> {
    if bytes.len() > MAX_ENTRY || !crate::json::is_object(bytes) {
        return None;
    }
    let entry: In = serde_json::from_slice(bytes).ok()?;
    // What a backend holds is checked like what SeaTable sends: a token
    // that is not a JWT, or an expiry no real token has, is not ours.
    let valid = entry.v == VERSION
        && entry.key == key.as_str()
        && crate::seatable::jwt::is_compact_jws(entry.token.expose_secret())
        && entry.expires_at > entry.fetched_at
        && entry.expires_at - entry.fetched_at <= crate::seatable::jwt::MAX_LIFETIME_SECS;
    valid.then_some(BaseToken {
        token: entry.token,
        expires_at: entry.expires_at,
        fetched_at: entry.fetched_at,
        context: entry.context,
    })
}

/// The key an entry says it belongs to, if `bytes` are shaped like an
/// entry of either kind (a JSON object with this format's `v` and a key of
/// the helper's own shape) — for `erase`, which deletes nothing else.
pub fn key_of(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Shape {
        v: u8,
        key: String,
    }
    if bytes.len() > MAX_ENTRY || !crate::json::is_object(bytes) {
        return None;
    }
    let shape: Shape = serde_json::from_slice(bytes).ok()?;
    (shape.v == VERSION && Key::is_entry_id(&shape.key)).then_some(shape.key)
}

#[derive(Serialize)]
struct LoginOut<'a> {
    v: u8,
    key: &'a str,
    vault_token: &'a str,
    issued_at: u64,
    expires_at: u64,
    renewable: bool,
}

#[derive(Deserialize)]
struct LoginIn {
    v: u8,
    key: String,
    vault_token: SecretString,
    issued_at: u64,
    expires_at: u64,
    renewable: bool,
}

pub fn encode_login(key: &Key, login: &CachedLogin) -> Zeroizing<Vec<u8>> {
    let out = LoginOut {
        v: VERSION,
        key: key.as_str(),
        vault_token: login.token.expose_secret(),
        issued_at: login.issued_at,
        expires_at: login.expires_at,
        renewable: login.renewable,
    };
    Zeroizing::new(serde_json::to_vec(&out).unwrap_or_default())
}

pub fn decode_login(key: &Key, bytes: &[u8]) -> Option<CachedLogin> {
    if bytes.len() > MAX_ENTRY || !crate::json::is_object(bytes) {
        return None;
    }
    let entry: LoginIn = serde_json::from_slice(bytes).ok()?;
    let valid = entry.v == VERSION
        && entry.key == key.as_str()
        && !entry.vault_token.expose_secret().is_empty()
        && entry.expires_at > entry.issued_at;
    valid.then_some(CachedLogin {
        token: entry.vault_token,
        issued_at: entry.issued_at,
        expires_at: entry.expires_at,
        renewable: entry.renewable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BaseToken {
        BaseToken {
            token: SecretString::from("h.p.s"),
            expires_at: 200,
            fetched_at: 100,
            context: BaseContext {
                server_url: "https://s".into(),
                api_gateway_url: "https://s/api-gateway/".into(),
                dtable_uuid: Some("u".into()),
                workspace_id: Some(3),
                permission: Some("rw".into()),
                ..BaseContext::default()
            },
        }
    }

    fn login() -> CachedLogin {
        CachedLogin {
            token: SecretString::from("s.abc"),
            issued_at: 10,
            expires_at: 3610,
            renewable: true,
        }
    }

    /// `bytes` with spaces after the JSON, `len` bytes in all.
    fn padded(bytes: &[u8], len: usize) -> Vec<u8> {
        let mut b = bytes.to_vec();
        b.resize(len, b' ');
        b
    }

    #[test]
    fn round_trip_pins_the_format() {
        let key = Key("k1".into());
        let bytes = encode(&key, &sample());
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"v":1,"key":"k1","token":"h.p.s","expires_at":200,"fetched_at":100,"context":{"server_url":"https://s","api_gateway_url":"https://s/api-gateway/","dtable_server":null,"dtable_uuid":"u","dtable_name":null,"workspace_id":3,"app_name":null,"permission":"rw","use_api_gateway":null}}"#
        );
        let back = decode(&key, &bytes).unwrap();
        assert_eq!(back.token.expose_secret(), "h.p.s");
        assert_eq!((back.expires_at, back.fetched_at), (200, 100));
        assert_eq!(back.context, sample().context);
    }

    #[test]
    fn foreign_corrupt_and_truncated_entries_are_misses() {
        let key = Key("k1".into());
        let bytes = encode(&key, &sample());
        assert!(decode(&Key("k2".into()), &bytes).is_none());
        assert!(decode(&key, &bytes[..bytes.len() - 5]).is_none());
        assert!(decode(&key, b"\x00\xff garbage").is_none());
        assert!(decode(&key, b"").is_none());
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(decode(&key, text.replace("\"v\":1", "\"v\":2").as_bytes()).is_none());
        assert!(decode(&key, text.replace("\"h.p.s\"", "\"\"").as_bytes()).is_none());
        assert!(decode(&key, text.replace("200", "50").as_bytes()).is_none());
        // A planted token that is not a JWT, or an expiry no token has.
        assert!(decode(&key, text.replace("h.p.s", "h.p.s\\nhost=evil").as_bytes()).is_none());
        assert!(decode(&key, text.replace("h.p.s", "opaque").as_bytes()).is_none());
        let decades = text.replace("\"expires_at\":200", "\"expires_at\":253402300800");
        assert!(decode(&key, decades.as_bytes()).is_none());
        let year = text.replace("\"expires_at\":200", "\"expires_at\":31622500");
        assert!(
            decode(&key, year.as_bytes()).is_some(),
            "a year and a day is the most"
        );
        let more = text.replace("\"expires_at\":200", "\"expires_at\":31622501");
        assert!(decode(&key, more.as_bytes()).is_none());
        // A token that expires as it is fetched is no token.
        let none = text.replace("\"expires_at\":200", "\"expires_at\":100");
        assert!(decode(&key, none.as_bytes()).is_none());
    }

    #[test]
    fn entries_are_read_up_to_max_entry_and_only_as_objects() {
        let id = "0123456789abcdef0123456789abcdef";
        let key = Key(id.into());
        let login_key = Key(format!("vault-{id}"));
        let entry = encode(&key, &sample());
        let login = encode_login(&login_key, &login());
        for bytes in [&entry, &login] {
            assert!(key_of(&padded(bytes, MAX_ENTRY)).is_some());
            assert!(key_of(&padded(bytes, MAX_ENTRY + 1)).is_none());
        }
        assert!(decode(&key, &padded(&entry, MAX_ENTRY)).is_some());
        assert!(decode(&key, &padded(&entry, MAX_ENTRY + 1)).is_none());
        assert!(decode_login(&login_key, &padded(&login, MAX_ENTRY)).is_some());
        assert!(decode_login(&login_key, &padded(&login, MAX_ENTRY + 1)).is_none());
        // serde reads a struct from an array too; an array is not an entry.
        let array = format!(
            r#"[1,"{id}","h.p.s",200,100,{{"server_url":"https://s","api_gateway_url":"https://s/"}}]"#
        );
        assert!(decode(&key, array.as_bytes()).is_none());
        assert!(key_of(array.as_bytes()).is_none());
        let array = format!(r#"[1,"vault-{id}","s.abc",10,3610,true]"#);
        assert!(decode_login(&login_key, array.as_bytes()).is_none());
        // The largest token the helper takes fits in an entry.
        let mut big = sample();
        let max = crate::seatable::jwt::MAX_TOKEN;
        big.token = SecretString::from(format!("h.{}.s", "p".repeat(max - 4)));
        assert!(crate::seatable::jwt::is_compact_jws(
            big.token.expose_secret()
        ));
        assert!(decode(&key, &encode(&key, &big)).is_some());
    }

    /// `erase` deletes what `key_of` names, and nothing else.
    #[test]
    fn key_of_names_only_entries_of_the_helpers_own_shape() {
        let id = "0123456789abcdef0123456789abcdef";
        let key = Key(id.into());
        let entry = encode(&key, &sample());
        assert_eq!(key_of(&entry).as_deref(), Some(id));
        let login_id = format!("vault-{id}");
        let login = encode_login(&Key(login_id.clone()), &login());
        assert_eq!(key_of(&login), Some(login_id));
        let text = std::str::from_utf8(&entry).unwrap();
        for other in [
            text.replace("\"v\":1", "\"v\":2"),
            text.replace(id, "package"),
            text.replace(id, &format!("../{id}")),
            text.replace(id, &id.to_uppercase()),
            r#"{"name":"mine","v":1}"#.into(),
            "{}".into(),
            "".into(),
        ] {
            assert_eq!(key_of(other.as_bytes()), None, "{other}");
        }
    }

    #[test]
    fn login_round_trip_pins_the_format() {
        let key = Key("vault-k".into());
        let bytes = encode_login(&key, &login());
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"v":1,"key":"vault-k","vault_token":"s.abc","issued_at":10,"expires_at":3610,"renewable":true}"#
        );
        let back = decode_login(&key, &bytes).unwrap();
        assert_eq!(back.token.expose_secret(), "s.abc");
        assert_eq!(
            (back.issued_at, back.expires_at, back.renewable),
            (10, 3610, true)
        );
        assert!(decode_login(&Key("vault-other".into()), &bytes).is_none());
        // Another format version, an empty token, a lease that ends as it begins.
        let text = std::str::from_utf8(&bytes).unwrap();
        for other in [
            text.replace("\"v\":1", "\"v\":2"),
            text.replace("\"s.abc\"", "\"\""),
            text.replace("\"expires_at\":3610", "\"expires_at\":10"),
        ] {
            assert!(decode_login(&key, other.as_bytes()).is_none(), "{other}");
        }
        // A base-token entry is not a login, and the other way round.
        assert!(decode(&key, &bytes).is_none());
        assert!(decode_login(&Key("k1".into()), &encode(&Key("k1".into()), &sample())).is_none());
    }
}
