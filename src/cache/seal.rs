//! Sealing of the shared tier's records (SPEC §6): whoever may write under
//! `shared_cache` is not trusted with base tokens. Each record — the entry
//! and the claim — is encrypted and authenticated (ChaCha20-Poly1305) with a
//! key derived by HKDF-SHA256 from the API token and the cache key. Only an
//! identity that can read the API token can open, forge or replace a
//! record; one sealed for another key, or by anyone else, does not open and
//! is a miss.
//!
//! A sealed record is `base64url(nonce ‖ ciphertext ‖ tag)`; the associated
//! data binds it to its cache key and its kind, so an entry cannot be
//! replayed as a claim or moved to another key's place.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::aead::{self, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::Key;

/// Versions the derivation: a new scheme gets a new salt.
const SALT: &[u8] = b"seatable-cred shared tier v2";

/// Sealed records larger than this are not ours (an entry is a few KiB).
pub const MAX_SEALED: usize = 96 * 1024;

/// What a sealed record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Entry,
    Claim,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Entry => "entry",
            Kind::Claim => "claim",
        }
    }
}

/// The key that seals one cache key's records. Holds no `Debug`: it opens
/// base tokens.
pub struct SealKey {
    aead: LessSafeKey,
    /// The cache key, bound into every record's associated data.
    key: String,
}

impl SealKey {
    /// HKDF-SHA256 (salt [`SALT`], input the API token, info the cache key).
    pub fn derive(api_token: &SecretString, key: &Key) -> SealKey {
        let prk =
            hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(api_token.expose_secret().as_bytes());
        let info = [key.as_str().as_bytes()];
        // expand cannot fail for a 32-byte output of SHA-256.
        let okm = prk
            .expand(&info, &aead::CHACHA20_POLY1305)
            .expect("HKDF-SHA256 can expand 32 bytes");
        SealKey {
            aead: LessSafeKey::new(UnboundKey::from(okm)),
            key: key.as_str().to_string(),
        }
    }

    fn aad(&self, kind: Kind) -> Vec<u8> {
        format!("seatable-cred/shared/v2/{}/{}", self.key, kind.name()).into_bytes()
    }

    /// Encrypts `plaintext` as a record of `kind`.
    pub fn seal(&self, kind: Kind, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        // The OS generator does not fail on Linux; a failure would only
        // cost uniqueness of this one nonce, never the key.
        let _ = SystemRandom::new().fill(&mut nonce);
        let mut buffer = Zeroizing::new(plaintext.to_vec());
        let tag = self
            .aead
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.aad(kind)),
                &mut buffer,
            )
            .expect("ChaCha20-Poly1305 seals any record this small");
        let mut out = Vec::with_capacity(NONCE_LEN + buffer.len() + tag.as_ref().len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buffer);
        out.extend_from_slice(tag.as_ref());
        B64.encode(out)
    }

    /// The plaintext of a record of `kind`, if it was sealed with this key
    /// for this cache key; `None` for anything else.
    pub fn open(&self, kind: Kind, sealed: &str) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() > MAX_SEALED {
            return None;
        }
        let mut bytes = Zeroizing::new(B64.decode(sealed).ok()?);
        if bytes.len() < NONCE_LEN + aead::CHACHA20_POLY1305.tag_len() {
            return None;
        }
        let nonce = Nonce::try_assume_unique_for_key(&bytes[..NONCE_LEN]).ok()?;
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(self.aad(kind)), &mut bytes[NONCE_LEN..])
            .ok()?;
        Some(Zeroizing::new(plain.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> Key {
        Key(id.to_string())
    }

    #[test]
    fn opens_only_with_the_same_token_key_and_kind() {
        let k1 = key("0123456789abcdef0123456789abcdef");
        let token = SecretString::from("api-token-of-base-b");
        let seal = SealKey::derive(&token, &k1);
        let sealed = seal.seal(Kind::Entry, b"{\"entry\":1}");
        assert_eq!(
            &**SealKey::derive(&token, &k1)
                .open(Kind::Entry, &sealed)
                .unwrap(),
            b"{\"entry\":1}"
        );
        // Another API token (another team), another cache key, another kind.
        let other = SealKey::derive(&SecretString::from("api-token-of-base-a"), &k1);
        assert!(other.open(Kind::Entry, &sealed).is_none());
        let moved = SealKey::derive(&token, &key("fedcba9876543210fedcba9876543210"));
        assert!(moved.open(Kind::Entry, &sealed).is_none());
        assert!(seal.open(Kind::Claim, &sealed).is_none());
    }

    #[test]
    fn tampering_truncation_and_garbage_do_not_open() {
        let seal = SealKey::derive(&SecretString::from("t"), &key("k"));
        let sealed = seal.seal(Kind::Claim, b"claim");
        let mut bytes = B64.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(seal.open(Kind::Claim, &B64.encode(&bytes)).is_none());
        bytes[last] ^= 1;
        bytes[NONCE_LEN] ^= 0x80;
        assert!(seal.open(Kind::Claim, &B64.encode(&bytes)).is_none());
        assert!(
            seal.open(Kind::Claim, &sealed[..sealed.len() - 2])
                .is_none()
        );
        for garbage in ["", "!!!", "AAAA", &"A".repeat(MAX_SEALED + 4)] {
            assert!(seal.open(Kind::Claim, garbage).is_none(), "{garbage:.10}");
        }
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let seal = SealKey::derive(&SecretString::from("t"), &key("k"));
        let (a, b) = (seal.seal(Kind::Entry, b"x"), seal.seal(Kind::Entry, b"x"));
        assert_ne!(a, b);
        assert_eq!(a.len(), b.len());
        // Nonce, one byte, tag: nothing else is added.
        assert_eq!(B64.decode(&a).unwrap().len(), NONCE_LEN + 1 + 16);
    }
}
