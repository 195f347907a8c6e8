//! KV v2 reads that keep the version, and check-and-set writes: what the
//! `token` commands (SPEC §12) need to put an API token into Vault without
//! ever overwriting a change they did not see. A write names the version it
//! was based on; if anyone wrote in between, Vault refuses it and the caller
//! learns that it lost the race instead of silently winning it.
//!
//! KV v1 has no versions and no check-and-set; [`locate`] says which engine
//! holds a secret so that callers can refuse it.

use std::collections::BTreeMap;

use anyhow::Result;
use secrecy::SecretString;
use serde_json::Value;
use vaultrs::api::kv2::requests::{
    ReadSecretMetadataRequest, ReadSecretRequest, SetSecretRequest, SetSecretRequestOptions,
};
use vaultrs::client::VaultClient;
use vaultrs::error::ClientError;

use super::classify;
use crate::config::{SecretRef, VaultSettings};
use crate::error::Failure;

/// The data of a secret. Its values may be secrets: they are zeroed on drop
/// and never shown (no `Debug`).
#[derive(Clone, Default)]
pub struct SecretData(BTreeMap<String, Value>);

impl Drop for SecretData {
    fn drop(&mut self) {
        self.0.values_mut().for_each(scrub);
    }
}

/// Zeroes every string of a secret's data, nested ones included (also
/// what [`super::scan`] read).
pub(super) fn scrub(v: &mut Value) {
    match v {
        Value::String(s) => zeroize::Zeroize::zeroize(s),
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::Object(map) => map.values_mut().for_each(scrub),
        _ => {}
    }
}

impl SecretData {
    /// `field` when it is a non-empty string (trimmed).
    pub fn string(&self, field: &str) -> Option<SecretString> {
        match self.0.get(field) {
            Some(Value::String(s)) if !s.trim().is_empty() => {
                Some(SecretString::from(s.trim().to_owned()))
            }
            _ => None,
        }
    }

    /// A copy with `field` set to `value`; the other fields are kept.
    pub fn with(&self, field: &str, value: &SecretString) -> SecretData {
        use secrecy::ExposeSecret;
        let mut copy = self.clone();
        copy.0.insert(
            field.to_string(),
            Value::String(value.expose_secret().to_owned()),
        );
        copy
    }
}

/// A KV v2 secret as read for a check-and-set write.
pub struct Versioned {
    /// The version a check-and-set write must name: the current one, or 0
    /// when the secret was never written.
    pub version: u64,
    /// The current version's data; `None` when there is none (never
    /// written, or its latest version deleted or destroyed).
    pub data: Option<SecretData>,
}

/// The result of a check-and-set write.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// Vault took it; the secret's new version.
    Version(u64),
    /// Someone wrote the secret after the version the write was based on.
    Conflict,
}

/// Which mount holds `secret` and which KV version it runs: as configured
/// (`--kv-version`), else asked of Vault as the vault CLI does.
pub async fn locate(
    client: &VaultClient,
    v: &VaultSettings,
    secret: &SecretRef,
    kv_version: Option<u8>,
) -> Result<(SecretRef, u8)> {
    match kv_version {
        Some(version) => Ok((secret.clone(), version)),
        None => super::kv::detect(client, v, secret).await,
    }
}

fn data_path(secret: &SecretRef) -> String {
    format!("{}/data/{}", secret.mount, secret.path)
}

/// Reads the current version of a KV v2 secret and its data.
pub async fn read(
    client: &VaultClient,
    v: &VaultSettings,
    secret: &SecretRef,
) -> Result<Versioned> {
    if let Some(found) = read_current(client, v, secret).await? {
        return Ok(found);
    }
    // Missing — or its latest version deleted, when the next write must
    // still name the current version, which only the metadata tells. A
    // write may land between the two reads: read the data once more, after
    // the metadata, so that the version is never older than the data seen.
    let meta = ReadSecretMetadataRequest::builder()
        .mount(&secret.mount)
        .path(&secret.path)
        .build()
        .map_err(|e| Failure::internal(format!("KV request for {secret}: {e}")))?;
    let version = match super::api::exec(client, meta).await {
        Ok(meta) => meta.current_version,
        Err(ClientError::APIError { code: 404, .. }) => 0,
        // Without read on the metadata, assume it was never written: a
        // check-and-set with 0 is refused if that is wrong, never harmful.
        Err(ClientError::APIError { code: 403, .. }) => 0,
        Err(e) => return Err(read_failure(e, v, secret).into()),
    };
    if version > 0
        && let Some(found) = read_current(client, v, secret).await?
    {
        return Ok(found);
    }
    Ok(Versioned {
        version,
        data: None,
    })
}

async fn read_current(
    client: &VaultClient,
    v: &VaultSettings,
    secret: &SecretRef,
) -> Result<Option<Versioned>> {
    let request = ReadSecretRequest::builder()
        .mount(&secret.mount)
        .path(&secret.path)
        .build()
        .map_err(|e| Failure::internal(format!("KV request for {secret}: {e}")))?;
    match super::api::exec(client, request).await {
        Ok(response) => {
            let data = match response.data {
                Value::Object(map) => SecretData(map.into_iter().collect()),
                _ => SecretData::default(),
            };
            Ok(Some(Versioned {
                version: response.metadata.version,
                data: Some(data),
            }))
        }
        Err(ClientError::APIError { code: 404, .. }) => Ok(None),
        Err(e) => Err(read_failure(e, v, secret).into()),
    }
}

fn read_failure(e: ClientError, v: &VaultSettings, secret: &SecretRef) -> Failure {
    classify(
        e,
        &v.addr,
        &format!("reading {secret}"),
        &format!(
            "check the policy of {}: it needs read on {} and {}/metadata/{}",
            super::identity(v),
            data_path(secret),
            secret.mount,
            secret.path
        ),
        &format!(
            "no KV v2 mount {} in Vault at {}: check the secret's path",
            secret.mount, v.addr
        ),
    )
    .about("secret")
}

/// Writes `data` as the secret's next version if it is still at `cas`
/// (0: only if it does not exist yet).
pub async fn write(
    client: &VaultClient,
    v: &VaultSettings,
    secret: &SecretRef,
    data: &SecretData,
    cas: u64,
) -> Result<Written> {
    let cas = u32::try_from(cas).map_err(|_| {
        Failure::vault(format!(
            "{secret} is at version {cas}, beyond what check-and-set can name"
        ))
    })?;
    let value = serde_json::to_value(&data.0)
        .map_err(|e| Failure::internal(format!("KV data for {secret}: {e}")))?;
    let set = SetSecretRequest::builder()
        .mount(&secret.mount)
        .path(&secret.path)
        .data(value)
        .options(SetSecretRequestOptions { cas })
        .build()
        .map_err(|e| Failure::internal(format!("KV request for {secret}: {e}")))?;
    match super::api::exec(client, set).await {
        Ok(meta) => Ok(Written::Version(meta.version)),
        Err(ClientError::APIError { code: 400, errors })
            if errors.iter().any(|e| e.contains("check-and-set")) =>
        {
            Ok(Written::Conflict)
        }
        Err(e) => Err(classify(
            e,
            &v.addr,
            &format!("writing {secret}"),
            &format!(
                "check the policy of {}: it needs create and update on {}",
                super::identity(v),
                data_path(secret)
            ),
            &format!(
                "no KV v2 mount {} in Vault at {}: check the secret's path",
                secret.mount, v.addr
            ),
        )
        .about("secret")
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn data(json: &str) -> SecretData {
        SecretData(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn string_fields_are_trimmed_and_must_not_be_empty() {
        let d = data(r#"{"api_token":" abc\n","empty":"  ","n":3}"#);
        assert_eq!(d.string("api_token").unwrap().expose_secret(), "abc");
        assert!(d.string("empty").is_none());
        assert!(d.string("n").is_none());
        assert!(d.string("missing").is_none());
    }

    #[test]
    fn with_replaces_one_field_and_keeps_the_others() {
        let d = data(r#"{"api_token":"old","note":"kept"}"#);
        let new = d.with("api_token", &SecretString::from("new"));
        assert_eq!(
            serde_json::to_string(&new.0).unwrap(),
            r#"{"api_token":"new","note":"kept"}"#
        );
        assert_eq!(d.string("api_token").unwrap().expose_secret(), "old");
        let added = SecretData::default().with("api_token", &SecretString::from("t"));
        assert_eq!(
            serde_json::to_string(&added.0).unwrap(),
            r#"{"api_token":"t"}"#
        );
    }
}
