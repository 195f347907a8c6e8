//! Entry points for the fuzz targets in `fuzz/` (and the corpus replay in
//! `tests/fuzz_corpus.rs`): every parser that reads outside input, fed
//! arbitrary bytes. Each must return — never panic, whatever the input —
//! and the invariants checked here must hold.

use std::path::Path;
use std::time::Duration;

use crate::cache::{Key, entry};
use crate::config::SecretRef;
use crate::protocol::exec_credential::ApiVersion;
use crate::protocol::git_credential::Request;

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// The targets, by name: what `cargo fuzz run NAME` exercises.
pub const TARGETS: [(&str, Target); 11] = [
    ("jwt_claims", jwt_claims),
    ("exchange_response", exchange_response),
    ("vault_response", vault_response),
    ("git_credential", git_credential),
    ("exec_info", exec_info),
    ("config_file", config_file),
    ("cache_entry", cache_entry),
    ("shared_entry", shared_entry),
    ("serve_session", serve_session),
    ("account_response", account_response),
    ("shown", shown),
];

/// Text from outside on its way to a terminal: the sanitiser, the error
/// line and the log line. Nothing a terminal acts on comes out raw; text
/// with nothing to escape comes out as it went in.
pub fn shown(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let acted_on = |c: char| {
        c.is_control()
            || matches!(
                c,
                '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
            )
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    };
    let shown = crate::shown::text(&text);
    assert!(
        !shown.chars().any(acted_on),
        "a control character came out raw"
    );
    if !text.chars().any(acted_on) {
        assert_eq!(shown, text, "text without controls was changed");
    }
    let line = crate::error::one_line(&anyhow::anyhow!("{text}"));
    assert!(
        !line.chars().any(acted_on),
        "the error line holds a control character"
    );
}

/// What a client of `serve` presents: an `Authorization` header, read as a
/// local key or a session token. Never panics; nothing random verifies.
pub fn serve_session(data: &[u8]) {
    use crate::serve::session::{self, LocalKey, Presented, Verdict, Verified};
    let Ok(header) = hyper::header::HeaderValue::from_bytes(data) else {
        return;
    };
    let Some(credential) = session::credential(Some(&header)) else {
        return;
    };
    let key = LocalKey::from_hex(secrecy::SecretString::from(
        "0123456789abcdef0123456789abcdef01234567",
    ))
    .expect("a valid key");
    let _ = key.matches(credential.as_bytes());
    let _ = Presented::read(credential);
    assert_ne!(
        key.verify(credential, 0),
        Verdict::Valid,
        "a token nobody signed verified"
    );
    // What the proxy remembers answers for that very token only.
    let remembered = Verified::default();
    assert_eq!(remembered.lookup(credential), None);
    remembered.remember(credential, 0, 1);
    assert_eq!(remembered.lookup(credential), Some((0, 1)));
}

/// The JWT payload of a base token.
pub fn jwt_claims(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::seatable::jwt::claims(text);
    }
}

/// SeaTable's answer to the exchange.
pub fn exchange_response(data: &[u8]) {
    if let Some(token) =
        crate::seatable::parse_exchange(data, "https://s", Some(Duration::from_secs(3600)), 1000)
    {
        // Whatever the server says, the derived times stay ordered.
        let refresh = token.refresh_at(Duration::from_secs(300));
        assert!(refresh <= token.expires_at);
        let _ = token.freshness(1000, Duration::from_secs(300));
    }
}

/// Vault's answers: a KV secret's data (the field extraction), the mount
/// lookup, and the shared cache's entry inside a KV secret.
pub fn vault_response(data: &[u8]) {
    let secret = SecretRef {
        mount: "secret".into(),
        path: "seatable/crm".into(),
    };
    if let Ok(map) = serde_json::from_slice(data) {
        let want = crate::vault::kv::Wanted {
            secret: &secret,
            field: "api_token",
            kv_version: None,
            what: "the API token",
            secret_key: "secret",
            field_key: Some("field"),
        };
        let _ = crate::vault::kv::field_value(map, want);
    }
    if let Some((mount, version)) = crate::vault::kv::parse_mount_info(data) {
        assert!(version == 1 || version == 2);
        let _ = crate::vault::kv::remount(&secret, &mount);
    }
}

/// git's credential request on stdin.
pub fn git_credential(data: &[u8]) {
    if let Ok(request) = Request::read(data) {
        for (key, value) in &request.attrs {
            assert!(!key.contains('\n') && !value.contains('\n'));
        }
    }
}

/// `KUBERNETES_EXEC_INFO`.
pub fn exec_info(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(version) = ApiVersion::from_exec_info(Some(text))
    {
        assert!(
            version
                .as_str()
                .starts_with("client.authentication.k8s.io/")
        );
    }
}

/// The config file.
pub fn config_file(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Err(e) = crate::config::check(text, Path::new("/fuzz/config.toml"))
    {
        assert!(!e.to_string().contains('\n'), "one-line errors");
    }
}

/// A cache entry (base token or Vault login) read back from a backend;
/// what decodes re-encodes to something that decodes the same.
pub fn cache_entry(data: &[u8]) {
    let key = Key::fuzz();
    if let Some(token) = entry::decode(&key, data) {
        let again =
            entry::decode(&key, &entry::encode(&key, &token)).expect("re-encoded entry decodes");
        assert_eq!(again.expires_at, token.expires_at);
        assert_eq!(again.context, token.context);
    }
    if let Some(login) = entry::decode_login(&key, data) {
        let again = entry::decode_login(&key, &entry::encode_login(&key, &login))
            .expect("re-encoded login decodes");
        assert_eq!(again.expires_at, login.expires_at);
    }
}

/// The shared tier's KV data as Vault returns it: sealed records, or
/// anything an identity with write access planted. Only what opens with the
/// key counts; what opens re-seals to data that opens the same.
pub fn shared_entry(data: &[u8]) {
    use crate::cache::seal::{Kind, SealKey};
    use crate::cache::shared;
    let key = Key::fuzz();
    let seal = SealKey::derive(&secrecy::SecretString::from("fuzz-api-token"), &key);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let (token, claim) = shared::open(value, &key, &seal);
        let again = shared::sealed_data(&key, &seal, token.as_ref(), claim.as_ref());
        let (token2, claim2) = shared::open(again, &key, &seal);
        assert_eq!(claim, claim2);
        assert_eq!(
            token.map(|t| (t.expires_at, t.context)),
            token2.map(|t| (t.expires_at, t.context))
        );
    }
    // The bytes as a sealed record: whatever they are, opening returns.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = seal.open(Kind::Entry, text);
        let _ = seal.open(Kind::Claim, text);
    }
}

/// SeaTable's account API answers (login, workspaces, API tokens, errors)
/// and the times in them.
pub fn account_response(data: &[u8]) {
    use crate::seatable::ErrorBody;
    use crate::seatable::account::{
        ApiTokenList, AuthTokenResponse, NewToken, WorkspaceList, unix_seconds,
    };
    let _ = serde_json::from_slice::<AuthTokenResponse>(data);
    let _ = serde_json::from_slice::<NewToken>(data);
    let _ = serde_json::from_slice::<WorkspaceList>(data);
    if let Ok(list) = serde_json::from_slice::<ApiTokenList>(data) {
        for token in &list.api_tokens {
            if let Some(at) = token.generated_at.as_deref() {
                let _ = unix_seconds(at);
            }
        }
    }
    let error = ErrorBody::parse(data);
    for msg in [error.message(), error.error_msg()].into_iter().flatten() {
        assert!(!msg.chars().any(char::is_control), "printable messages");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = unix_seconds(text);
    }
}

#[cfg(test)]
mod tests {
    use crate::cache::seal::SealKey;
    use crate::cache::shared;

    /// The committed corpus of `shared_entry` holds records sealed with the
    /// fuzz key — which the fuzzer cannot make itself — so that replaying it
    /// exercises the path where records open.
    #[test]
    fn the_shared_entry_seeds_open_as_they_should() {
        let key = crate::cache::Key::fuzz();
        let seal = SealKey::derive(&secrecy::SecretString::from("fuzz-api-token"), &key);
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/shared_entry");
        let read = |name: &str| {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            shared::open(serde_json::from_str(&text).unwrap(), &key, &seal)
        };
        let (token, claim) = read("sealed-entry-and-claim.json");
        assert_eq!(token.unwrap().expires_at, 1_764_539_700);
        assert_eq!(claim.unwrap().holder, "host:1:00ff00ff");
        assert!(read("sealed-entry.json").0.is_some());
        for foreign in [
            "sealed-by-another-team.json",
            "old-unsealed-format.json",
            "garbage-records.json",
        ] {
            let (token, claim) = read(foreign);
            assert!(token.is_none() && claim.is_none(), "{foreign}");
        }
    }
}
