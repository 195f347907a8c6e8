//! KV v1/v2 reads, with the engine version (and the mount) detected the way
//! the vault CLI does: `GET sys/internal/ui/mounts/<path>`.

use std::collections::HashMap;

use anyhow::Result;
use reqwest::header::HeaderValue;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;
use vaultrs::client::{Client, VaultClient};

use super::{classify, classify_status, unreachable};
use crate::config::{SecretRef, VaultSettings};
use crate::error::Failure;

#[derive(Deserialize)]
struct MountInfo {
    data: MountData,
}

#[derive(Deserialize)]
struct MountData {
    #[serde(default)]
    path: String,
    #[serde(default)]
    options: Option<HashMap<String, Value>>,
}

/// Asks Vault which mount holds the secret and which KV version it runs.
/// As in the vault CLI, a 404 (a Vault without this endpoint) means KV v1.
pub async fn detect(
    client: &VaultClient,
    v: &VaultSettings,
    secret: &SecretRef,
) -> Result<(SecretRef, u8)> {
    Ok(match mount_of(client, v, secret).await? {
        Some((mount, version)) => (remount(secret, &mount), version),
        None => (secret.clone(), 1),
    })
}

/// The mount Vault reports for `secret` (its path, e.g. `team/kv/`) and
/// its KV version; `None` from a Vault without the lookup endpoint (404).
pub async fn mount_of(
    client: &VaultClient,
    v: &VaultSettings,
    secret: &SecretRef,
) -> Result<Option<(String, u8)>> {
    let mut url = client.settings().address.clone();
    url.path_segments_mut()
        .map_err(|_| Failure::usage(format!("vault_addr {} cannot take a path", v.addr)))?
        .pop_if_empty()
        .extend(["v1", "sys", "internal", "ui", "mounts", &secret.mount])
        .extend(secret.path.split('/'));
    let mut request = client
        .http()
        .http
        .get(url)
        .header("X-Vault-Request", "true");
    let token = &client.settings().token;
    if !token.is_empty() {
        let mut value = HeaderValue::from_str(token).map_err(|_| {
            Failure::usage(
                "the Vault token contains characters that cannot be sent in an HTTP header",
            )
        })?;
        value.set_sensitive(true);
        request = request.header("X-Vault-Token", value);
    }
    if let Some(ns) = &v.namespace {
        request = request.header("X-Vault-Namespace", ns.as_str());
    }
    let response = request.send().await.map_err(|e| unreachable(&e, &v.addr))?;
    let status = response.status().as_u16();
    if status == 404 {
        return Ok(None);
    }
    if status != 200 {
        let denied = match v.auth {
            crate::config::Auth::None => format!(
                "give {} read access to the secret, or pass --kv-version to skip the lookup",
                super::identity(v)
            ),
            _ => {
                "give the token read access to the secret, or pass --kv-version to skip the lookup"
                    .to_string()
            }
        };
        return Err(classify_status(
            status,
            "",
            &v.addr,
            &format!("looking up the mount of {secret}"),
            &denied,
            &format!("no secrets engine is mounted for {secret}"),
        )
        .into());
    }
    let body = crate::http::read_capped(response).await.map_err(|e| {
        Failure::unavailable(format!(
            "Vault at {} failed answering the mount lookup of {secret} ({e:?})",
            v.addr
        ))
    })?;
    let found = parse_mount_info(&body).ok_or_else(|| {
        Failure::vault(format!("Vault at {} answered the mount lookup of {secret} with unexpected data: pass --kv-version", v.addr))
    })?;
    Ok(Some(found))
}

/// The mount path and KV version in an answer of `sys/internal/ui/mounts`.
pub fn parse_mount_info(body: &[u8]) -> Option<(String, u8)> {
    if body.len() > crate::http::MAX_BODY {
        return None;
    }
    let info: MountInfo = serde_json::from_slice(body).ok()?;
    let version = match info.data.options.as_ref().and_then(|o| o.get("version")) {
        Some(Value::String(s)) if s == "2" => 2,
        _ => 1,
    };
    Some((info.data.path, version))
}

/// Splits the full secret path at the mount Vault reported, so that
/// multi-segment mounts (`team/kv/app`) work as in the vault CLI.
pub fn remount(secret: &SecretRef, mount_path: &str) -> SecretRef {
    let mount = mount_path.trim_matches('/');
    let full = secret.to_string();
    match full
        .strip_prefix(mount)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        Some(path) if !mount.is_empty() && !path.is_empty() => SecretRef {
            mount: mount.to_string(),
            path: path.to_string(),
        },
        _ => secret.clone(),
    }
}

/// Reads `field` of the secret; it must be a non-empty string.
pub async fn read_field(
    client: &VaultClient,
    v: &VaultSettings,
    secret: &SecretRef,
    version: u8,
    field: &str,
) -> Result<SecretString> {
    field_value(read_data(client, v, secret, version).await?, secret, field)
}

/// Reads `field` without knowing the KV version: first as KV v2 at the
/// first segment's mount — the common case, one request — and only when
/// that finds nothing usable, the way the vault CLI does: ask Vault for the
/// mount and its version, then read. (The answer is the same as always
/// asking first; it just costs one round trip less where KV v2 is in use.)
pub async fn read_field_detecting(
    client: &VaultClient,
    v: &VaultSettings,
    secret: &SecretRef,
    field: &str,
) -> Result<SecretString> {
    match read_data(client, v, secret, 2).await {
        Ok(data) => return field_value(data, secret, field),
        Err(e) if crate::error::is_transient(&e) => return Err(e),
        Err(_) => {}
    }
    let (secret, version) = detect(client, v, secret).await?;
    read_field(client, v, &secret, version, field).await
}

/// The data of a secret, as Vault returns it.
async fn read_data(
    client: &VaultClient,
    v: &VaultSettings,
    secret: &SecretRef,
    version: u8,
) -> Result<HashMap<String, Value>> {
    let doing = format!("reading {secret}");
    let hint = format!(
        "check the policy of {}: it needs read on {}",
        super::identity(v),
        policy_path(secret, version)
    );
    let missing = format!(
        "no secret at {secret} in Vault at {} (KV v{version}): check --secret",
        v.addr
    );
    let fail = |e| classify(e, &v.addr, &doing, &hint, &missing);
    let data = if version == 2 {
        let request = vaultrs::api::kv2::requests::ReadSecretRequest::builder()
            .mount(&secret.mount)
            .path(&secret.path)
            .build()
            .map_err(|e| Failure::internal(format!("Vault request: {e}")))?;
        super::api::exec(client, request).await.map_err(fail)?.data
    } else {
        let request = vaultrs::api::kv1::requests::GetSecretRequest::builder()
            .mount(&secret.mount)
            .path(&secret.path)
            .build()
            .map_err(|e| Failure::internal(format!("Vault request: {e}")))?;
        super::api::exec_whole(client, request)
            .await
            .map_err(fail)?
            .data
    };
    serde_json::from_value(data).map_err(|_| {
        Failure::vault(format!(
            "Vault at {} answered reading {secret} with data that is not a JSON object",
            v.addr
        ))
        .into()
    })
}

/// The ACL path a policy must grant for the read.
pub fn policy_path(secret: &SecretRef, version: u8) -> String {
    if version == 2 {
        format!("{}/data/{}", secret.mount, secret.path)
    } else {
        secret.to_string()
    }
}

/// The API token in a KV secret's data: `field`, a non-empty string.
pub fn field_value(
    mut data: HashMap<String, Value>,
    secret: &SecretRef,
    field: &str,
) -> Result<SecretString> {
    match data.remove(field) {
        Some(Value::String(s)) => {
            let token = s.trim();
            if token.is_empty() {
                Err(Failure::vault(format!(
                    "field '{field}' of {secret} is empty: store the SeaTable API token in it"
                ))
                .into())
            } else {
                let token = SecretString::from(token.to_owned());
                zeroize::Zeroize::zeroize(&mut { s });
                Ok(token)
            }
        }
        Some(other) => {
            let kind = match other {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::Array(_) => "a list",
                Value::Object(_) => "an object",
                Value::String(_) => "a string",
            };
            Err(Failure::vault(format!("field '{field}' of {secret} is {kind}, not a string: store the API token as a string")).into())
        }
        None => {
            let mut names: Vec<&str> = data.keys().map(String::as_str).collect();
            names.sort_unstable();
            let has = if names.is_empty() {
                "no fields".to_string()
            } else {
                format!("fields {}", names.join(", "))
            };
            Err(Failure::vault(format!(
                "secret {secret} has no field '{field}' (it has {has}): set --field"
            ))
            .into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn secret() -> SecretRef {
        SecretRef {
            mount: "secret".into(),
            path: "seatable/crm".into(),
        }
    }

    fn data(json: &str) -> HashMap<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn field_must_be_a_non_empty_string() {
        let t = field_value(
            data(r#"{"api_token":" abc \n","other":"x"}"#),
            &secret(),
            "api_token",
        )
        .unwrap();
        assert_eq!(t.expose_secret(), "abc");
        let msg = |json: &str| {
            crate::error::one_line(&field_value(data(json), &secret(), "api_token").unwrap_err())
        };
        assert_eq!(
            msg(r#"{"api_token":""}"#),
            "field 'api_token' of secret/seatable/crm is empty: store the SeaTable API token in it"
        );
        assert!(msg(r#"{"api_token":42}"#).contains("is a number"));
        let missing = msg(r#"{"token":"SECRETVALUE","b":"x"}"#);
        assert!(missing.contains("fields b, token"), "{missing}");
        assert!(!missing.contains("SECRETVALUE"));
    }

    #[test]
    fn remount_follows_the_reported_mount() {
        let s = SecretRef {
            mount: "team".into(),
            path: "kv/app/crm".into(),
        };
        assert_eq!(
            remount(&s, "team/kv/"),
            SecretRef {
                mount: "team/kv".into(),
                path: "app/crm".into()
            }
        );
        assert_eq!(remount(&secret(), "secret/"), secret());
        assert_eq!(remount(&secret(), ""), secret());
        assert_eq!(remount(&secret(), "other/"), secret());
    }

    #[test]
    fn policy_paths() {
        assert_eq!(policy_path(&secret(), 2), "secret/data/seatable/crm");
        assert_eq!(policy_path(&secret(), 1), "secret/seatable/crm");
    }
}
