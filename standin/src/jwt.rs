//! Signing and checking compact JWTs: HS256 for SeaTable's base tokens,
//! ES256 for identity tokens handed to Vault's jwt and kubernetes methods.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::{hmac, rand, signature};

pub fn hs256(secret: &[u8], claims: &serde_json::Value) -> String {
    let signing_input = format!(
        "{}.{}",
        B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        B64.encode(claims.to_string())
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let sig = hmac::sign(&key, signing_input.as_bytes());
    format!("{signing_input}.{}", B64.encode(sig.as_ref()))
}

/// The claims of an HS256 token signed with `secret`, if the signature holds.
pub fn verify_hs256(secret: &[u8], token: &str) -> Option<serde_json::Value> {
    let (signing_input, sig) = token.rsplit_once('.')?;
    let sig = B64.decode(sig).ok()?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, signing_input.as_bytes(), &sig).ok()?;
    let (_, payload) = signing_input.split_once('.')?;
    serde_json::from_slice(&B64.decode(payload).ok()?).ok()
}

/// An ES256 signing key with its public key as PEM (SPKI), for Vault's
/// `jwt_validation_pubkeys`.
pub struct Es256 {
    pair: signature::EcdsaKeyPair,
    pub public_pem: String,
}

impl Default for Es256 {
    fn default() -> Self {
        Self::new()
    }
}

impl Es256 {
    pub fn new() -> Es256 {
        let rng = rand::SystemRandom::new();
        let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .expect("ec key");
        let pair = signature::EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .expect("ec key");
        // SPKI for P-256: fixed algorithm header, then the uncompressed point.
        let mut spki = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        spki.extend_from_slice(signature::KeyPair::public_key(&pair).as_ref());
        let b64 = base64::engine::general_purpose::STANDARD.encode(&spki);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let public_pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        );
        Es256 { pair, public_pem }
    }

    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let signing_input = format!(
            "{}.{}",
            B64.encode(br#"{"alg":"ES256","typ":"JWT","kid":"test"}"#),
            B64.encode(claims.to_string())
        );
        let sig = self
            .pair
            .sign(&rand::SystemRandom::new(), signing_input.as_bytes())
            .expect("sign");
        format!("{signing_input}.{}", B64.encode(sig.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hs256_round_trip() {
        let t = hs256(b"k", &serde_json::json!({"exp": 5}));
        assert_eq!(verify_hs256(b"k", &t).unwrap()["exp"], 5);
        assert!(verify_hs256(b"other", &t).is_none());
    }
}
