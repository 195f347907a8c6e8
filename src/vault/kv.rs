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

/// A value to read from a KV secret: where, and what it is — the words
/// and the settings (profile keys) that messages about it name.
#[derive(Clone, Copy)]
pub struct Wanted<'a> {
    pub secret: &'a SecretRef,
    pub field: &'a str,
    /// The KV version, when the profile says; else it is detected.
    pub kv_version: Option<u8>,
    /// What the value is, for people: "the API token".
    pub what: &'static str,
    /// The setting that names the secret: `secret`, `account_secret`.
    pub secret_key: &'static str,
    /// The setting that names the field; `None` when it is fixed.
    pub field_key: Option<&'static str>,
}

impl<'a> Wanted<'a> {
    /// The profile's API token: `field` of `secret`.
    pub fn api_token(profile: &'a crate::config::Profile) -> Wanted<'a> {
        Wanted {
            secret: &profile.secret,
            field: &profile.field,
            kv_version: profile.kv_version,
            what: "the API token",
            secret_key: "secret",
            field_key: Some("field"),
        }
    }

    /// The same value at `secret` (the path split at the mount Vault
    /// reported).
    fn at(self, secret: &'a SecretRef) -> Wanted<'a> {
        Wanted { secret, ..self }
    }
}

/// Reads the wanted field of the secret (KV `version`); it must be a
/// non-empty string.
pub async fn read_field(
    client: &VaultClient,
    v: &VaultSettings,
    want: Wanted<'_>,
    version: u8,
) -> Result<SecretString> {
    field_value(read_data(client, v, want, version).await?, want)
}

/// Reads the wanted field without knowing the KV version: first as KV v2 at
/// the first segment's mount — the common case, one request — and only when
/// that finds nothing usable, the way the vault CLI does: ask Vault for the
/// mount and its version, then read. (The answer is the same as always
/// asking first; it just costs one round trip less where KV v2 is in use.)
pub async fn read_field_detecting(
    client: &VaultClient,
    v: &VaultSettings,
    want: Wanted<'_>,
) -> Result<SecretString> {
    let first = match read_data(client, v, want, 2).await {
        Ok(data) => return field_value(data, want),
        Err(e) if crate::error::is_transient(&e) => return Err(e),
        Err(e) => e,
    };
    let (secret, version) = match detect(client, v, want.secret).await {
        Ok(found) => found,
        // Denied the lookup too: the read's denial says more (which path
        // the policy lacks).
        Err(e) if crate::error::status_of(&e) == Some(403) => return Err(first),
        Err(e) => return Err(crate::error::about(e, want.secret_key)),
    };
    read_field(client, v, want.at(&secret), version).await
}

/// The data of a secret, as Vault returns it.
async fn read_data(
    client: &VaultClient,
    v: &VaultSettings,
    want: Wanted<'_>,
    version: u8,
) -> Result<HashMap<String, Value>> {
    let secret = want.secret;
    let doing = format!("reading {secret}");
    let api_path = api_path_hint(secret, version);
    let hint = format!(
        "{} does not grant read on {}{}",
        super::policy_of(v),
        policy_path(secret, version),
        api_path
            .as_deref()
            .unwrap_or(" — is the path right? Else give the policy read there")
    );
    let missing = format!(
        "no secret at {secret} in Vault at {}, KV v{version}{}",
        v.addr,
        api_path.as_deref().unwrap_or(": check the path")
    );
    let fail = |e| classify(e, &v.addr, &doing, &hint, &missing).about(want.secret_key);
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

/// A path like `secret/data/seatable/crm` — what `bao kv put` prints as
/// "Secret Path", the API's path — names the secret `seatable/crm` of the
/// KV v2 mount `secret`: the helper adds `data/` itself.
fn api_path_hint(secret: &SecretRef, version: u8) -> Option<String> {
    match secret.path.strip_prefix("data/") {
        Some(rest) if version == 2 && !rest.is_empty() => Some(format!(
            ": `{secret}` is the API path that `bao kv put` prints; the secret is {}/{rest} — drop `data/`, the helper adds it",
            secret.mount
        )),
        _ => None,
    }
}

/// The ACL path a policy must grant for the read.
pub fn policy_path(secret: &SecretRef, version: u8) -> String {
    if version == 2 {
        format!("{}/data/{}", secret.mount, secret.path)
    } else {
        secret.to_string()
    }
}

/// The wanted value in a KV secret's data: its field, a non-empty string.
pub fn field_value(mut data: HashMap<String, Value>, want: Wanted<'_>) -> Result<SecretString> {
    let (secret, field, what) = (want.secret, want.field, want.what);
    match data.remove(field) {
        Some(Value::String(s)) => {
            let token = s.trim();
            if token.is_empty() {
                Err(Failure::vault(format!(
                    "field '{field}' of {secret} is empty: store {what} in it"
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
            Err(Failure::vault(format!(
                "field '{field}' of {secret} is {kind}, not a string: store {what} as a string"
            ))
            .into())
        }
        None => {
            let mut names: Vec<&str> = data.keys().map(String::as_str).collect();
            names.sort_unstable();
            let has = if names.is_empty() {
                "no fields".to_string()
            } else {
                format!("fields {}", names.join(", "))
            };
            let fix = match want.field_key {
                Some(_) => "name the field that holds it",
                None => "store it in that field",
            };
            let failure = Failure::vault(format!(
                "secret {secret} has no field '{field}' for {what} (it has {has}): {fix}"
            ));
            Err(match want.field_key {
                Some(key) => failure.about(key),
                None => failure,
            }
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

    fn wanted(secret: &SecretRef) -> Wanted<'_> {
        Wanted {
            secret,
            field: "api_token",
            kv_version: None,
            what: "the API token",
            secret_key: "secret",
            field_key: Some("field"),
        }
    }

    #[test]
    fn field_must_be_a_non_empty_string() {
        let secret = secret();
        let t = field_value(
            data(r#"{"api_token":" abc \n","other":"x"}"#),
            wanted(&secret),
        )
        .unwrap();
        assert_eq!(t.expose_secret(), "abc");
        let msg = |json: &str| {
            crate::error::one_line(&field_value(data(json), wanted(&secret)).unwrap_err())
        };
        assert_eq!(
            msg(r#"{"api_token":""}"#),
            "field 'api_token' of secret/seatable/crm is empty: store the API token in it"
        );
        assert!(msg(r#"{"api_token":42}"#).contains("is a number"));
        let missing = msg(r#"{"token":"SECRETVALUE","b":"x"}"#);
        assert!(missing.contains("fields b, token"), "{missing}");
        assert!(!missing.contains("SECRETVALUE"));
        let err = field_value(data(r#"{"token":"x"}"#), wanted(&secret)).unwrap_err();
        assert_eq!(crate::error::setting_of(&err), Some("field"));
        let fixed = Wanted {
            field_key: None,
            ..wanted(&secret)
        };
        let err = field_value(data(r#"{"token":"x"}"#), fixed).unwrap_err();
        assert_eq!(
            crate::error::setting_of(&err),
            None,
            "a fixed field is no setting"
        );
    }

    /// `bao kv put` prints the API path (`secret/data/…`) as "Secret
    /// Path"; given as the secret, it is named for what it is.
    #[test]
    fn an_api_path_is_told_to_drop_data() {
        let api = SecretRef {
            mount: "secret".into(),
            path: "data/seatable/crm".into(),
        };
        assert!(
            api_path_hint(&api, 2)
                .unwrap()
                .contains("the secret is secret/seatable/crm — drop `data/`")
        );
        assert_eq!(api_path_hint(&api, 1), None);
        assert_eq!(api_path_hint(&secret(), 2), None);
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
