//! The `vault` tier: one entry per cache key in a KV v2 secret that every
//! host of a deployment reads, written with check-and-set.
//!
//! ```json
//! {"entry": {…the cache entry…} | null, "claim": {"holder": "host:pid:nonce", "until": 1764539700} | null}
//! ```
//! A host that finds the entry missing or due for refresh writes a *claim*
//! with check-and-set; exactly one such write succeeds, so exactly one host
//! exchanges while the others wait for (and read) its entry. A claim lapses
//! at `until`, so a claimer that dies is replaced.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vaultrs::api::kv2::requests::{ReadSecretRequest, SetSecretRequestOptions};
use vaultrs::client::VaultClient;
use vaultrs::error::ClientError;

use super::{Key, entry};
use crate::config::SecretRef;
use crate::error::Failure;
use crate::seatable::BaseToken;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    pub holder: String,
    /// Unix seconds after which the claim no longer counts.
    pub until: u64,
}

/// What the shared secret holds now.
pub struct State {
    /// KV version, for the next check-and-set (0: the secret does not exist).
    pub version: u64,
    pub token: Option<BaseToken>,
    pub claim: Option<Claim>,
}

pub struct Shared<'a> {
    at: SecretRef,
    key: &'a Key,
    addr: &'a str,
}

impl<'a> Shared<'a> {
    /// The entry of `key` under the `shared_cache` path.
    pub fn new(shared_cache: &SecretRef, key: &'a Key, addr: &'a str) -> Shared<'a> {
        Shared {
            at: SecretRef {
                mount: shared_cache.mount.clone(),
                path: format!("{}/{}", shared_cache.path, key.as_str()),
            },
            key,
            addr,
        }
    }

    fn fail(&self, e: ClientError, doing: &str) -> Failure {
        crate::vault::classify(
            e,
            self.addr,
            &format!("{doing} the shared cache at {}", self.at),
            &format!(
                "give the identity read, create and update on {}/data/{}/*",
                self.at.mount,
                self.at.path.rsplit_once('/').map_or("", |(p, _)| p)
            ),
            &format!(
                "no KV v2 mount {} for the shared cache: check shared_cache",
                self.at.mount
            ),
        )
    }

    pub async fn read(&self, client: &VaultClient) -> Result<State> {
        match self.read_data(client).await? {
            Some(state) => Ok(state),
            None => {
                // Missing — or its latest version deleted by hand, when the
                // next write must name the current version. The metadata may
                // also be of a claim written since the read above: read the
                // data again, after the metadata, so that a claim is never
                // overwritten with a version number that skipped it.
                let version = match vaultrs::kv2::read_metadata(
                    client,
                    &self.at.mount,
                    &self.at.path,
                )
                .await
                {
                    Ok(meta) => meta.current_version,
                    Err(_) => 0,
                };
                if version > 0
                    && let Some(state) = self.read_data(client).await?
                {
                    return Ok(state);
                }
                Ok(State {
                    version,
                    token: None,
                    claim: None,
                })
            }
        }
    }

    /// The current version's data; `None` when there is none (404).
    async fn read_data(&self, client: &VaultClient) -> Result<Option<State>> {
        let request = ReadSecretRequest::builder()
            .mount(&self.at.mount)
            .path(&self.at.path)
            .build()
            .map_err(|e| Failure::internal(format!("shared cache request: {e}")))?;
        match vaultrs::api::exec_with_result(client, request).await {
            Ok(response) => Ok(Some(State {
                version: response.metadata.version,
                token: self.decode_entry(response.data.get("entry")),
                claim: response
                    .data
                    .get("claim")
                    .and_then(|c| serde_json::from_value(c.clone()).ok()),
            })),
            Err(ClientError::APIError { code: 404, .. }) => Ok(None),
            Err(e) => Err(self.fail(e, "reading").into()),
        }
    }

    fn decode_entry(&self, value: Option<&Value>) -> Option<BaseToken> {
        let value = value.filter(|v| v.is_object())?;
        let bytes = zeroize::Zeroizing::new(serde_json::to_vec(value).ok()?);
        entry::decode(self.key, &bytes)
    }

    /// Writes the entry and claim if the secret is still at `version`.
    /// `Ok(None)` when another writer got there first.
    pub async fn write(
        &self,
        client: &VaultClient,
        version: u64,
        token: Option<&BaseToken>,
        claim: Option<&Claim>,
    ) -> Result<Option<u64>> {
        #[derive(Serialize)]
        struct Data<'a> {
            entry: Option<entry::Out<'a>>,
            claim: Option<&'a Claim>,
        }
        let data = Data {
            entry: token.map(|t| entry::record(self.key, t)),
            claim,
        };
        let cas = u32::try_from(version).unwrap_or(u32::MAX);
        match vaultrs::kv2::set_with_options(
            client,
            &self.at.mount,
            &self.at.path,
            &data,
            SetSecretRequestOptions { cas },
        )
        .await
        {
            Ok(meta) => Ok(Some(meta.version)),
            Err(ClientError::APIError { code: 400, errors })
                if errors.iter().any(|e| e.contains("check-and-set")) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.fail(e, "writing").into()),
        }
    }

    /// Empties the entry (no check-and-set: erasing always wins).
    pub async fn erase(&self, client: &VaultClient) -> Result<()> {
        let empty = serde_json::json!({"entry": null, "claim": null});
        vaultrs::kv2::set(client, &self.at.mount, &self.at.path, &empty)
            .await
            .map(|_| ())
            .map_err(|e| self.fail(e, "erasing").into())
    }
}

/// Who is claiming: host, process and a nonce, for the claim record.
pub fn holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut nonce = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce);
    format!(
        "{}:{}:{:08x}",
        host.trim(),
        std::process::id(),
        u32::from_le_bytes(nonce)
    )
}

/// The keys of every entry under the shared path.
pub async fn list(client: &VaultClient, shared_cache: &SecretRef, addr: &str) -> Result<Vec<Key>> {
    match vaultrs::kv2::list(client, &shared_cache.mount, &shared_cache.path).await {
        Ok(names) => Ok(names
            .into_iter()
            .filter(|n| Key::is_base_token(n))
            .map(Key)
            .collect()),
        Err(ClientError::APIError { code: 404, .. }) => Ok(Vec::new()),
        Err(e) => Err(crate::vault::classify(
            e,
            addr,
            &format!("listing the shared cache at {shared_cache}"),
            &format!(
                "erase --all needs list on {}/metadata/{}",
                shared_cache.mount, shared_cache.path
            ),
            "no shared cache",
        )
        .into()),
    }
}
