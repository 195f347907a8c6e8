//! Vault logins: token, AppRole, Kubernetes, JWT/OIDC, userpass, TLS cert.

use anyhow::Result;
use secrecy::{ExposeSecret, SecretString};
use tracing::debug;
use vaultrs::client::{Client, VaultClient};

use super::{CachedLogin, classify};
use crate::config::{Auth, SecretInput, VaultSettings};
use crate::error::Failure;

impl SecretInput {
    /// Reads the secret: `what` names it in messages ("the AppRole secret-id").
    pub fn read(&self, what: &str) -> Result<Option<SecretString>> {
        match self {
            SecretInput::Env(_, value) => {
                Ok(Some(SecretString::from(value.expose_secret().to_owned())))
            }
            SecretInput::TokenFile(..) | SecretInput::FileOr(..) => {
                Ok(Some(self.read_token_file()?.0))
            }
            SecretInput::File(path) => {
                let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    Failure::usage(format!("cannot read {what} from {}: {e}", path.display()))
                })?);
                let value = text.trim();
                if value.is_empty() {
                    return Err(Failure::usage(format!(
                        "{} is empty: it should hold {what}",
                        path.display()
                    ))
                    .into());
                }
                Ok(Some(SecretString::from(value.to_owned())))
            }
            SecretInput::Prompt(prompt) => {
                let value = rpassword::prompt_password(prompt).map_err(|e| {
                    Failure::usage(format!(
                        "cannot ask for {what} on the terminal ({e}): set SEATABLE_CRED_PASSWORD"
                    ))
                })?;
                Ok(Some(SecretString::from(value)))
            }
            SecretInput::Absent(hint) if hint.is_empty() => Ok(None),
            SecretInput::Absent(hint) => Err(Failure::usage(hint.clone()).into()),
        }
    }
}

impl SecretInput {
    /// The file a Vault token comes from, if it comes from one.
    pub fn token_file(&self) -> Option<&std::path::Path> {
        match self {
            SecretInput::TokenFile(path, _) | SecretInput::FileOr(path, _) => Some(path),
            _ => None,
        }
    }

    /// Reads a Vault token file (an agent's sink, `~/.vault-token`) as the
    /// config file is read — the user's own, written by nobody else: the
    /// token, and when the file was last changed.
    fn read_token_file(&self) -> Result<(SecretString, FileStamp)> {
        let (path, missing, if_empty) = match self {
            SecretInput::TokenFile(path, origin) => (
                path,
                format!(
                    "no Vault token file at {} (set by {origin}): is the agent running, and does its sink write there?",
                    path.display()
                ),
                "the agent has not written its token yet",
            ),
            SecretInput::FileOr(path, hint) => (
                path,
                hint.clone(),
                "log in again with `bao login`/`vault login`",
            ),
            _ => return Err(Failure::internal("not a Vault token file").into()),
        };
        let read = crate::config::read_token_file(path)?.ok_or_else(|| Failure::usage(missing))?;
        let token = token_in_file(&read.text, path, if_empty)?;
        Ok((
            token,
            FileStamp {
                modified: read.modified,
            },
        ))
    }
}

/// When a Vault token file was last changed as its token was read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FileStamp {
    modified: Option<std::time::SystemTime>,
}

impl FileStamp {
    /// Whether the file at `path` has been changed since (or cannot be
    /// seen any more).
    pub fn changed(&self, path: &std::path::Path) -> bool {
        self.modified.is_none() || crate::config::modified(path) != self.modified
    }
}

/// The Vault token of token auth, ready to send, and — when it comes from a
/// file — when that file was last changed.
pub fn read_token(input: &SecretInput) -> Result<(SecretString, Option<FileStamp>)> {
    let (token, stamp) = match input.token_file() {
        Some(_) => {
            let (token, stamp) = input.read_token_file()?;
            (token, Some(stamp))
        }
        None => (required(input.read("the Vault token")?), None),
    };
    Ok((sendable(token, input)?, stamp))
}

/// The Vault token a sink file holds: its text, trimmed. A sink written
/// with `wrap_ttl` (or `dh_type`) holds JSON instead — refused with what to
/// change, never sent as a token.
fn token_in_file(text: &str, path: &std::path::Path, if_empty: &str) -> Result<SecretString> {
    let token = text.trim();
    if token.is_empty() {
        return Err(Failure::usage(format!(
            "Vault token file {} is empty: {if_empty}",
            path.display()
        ))
        .into());
    }
    if token.starts_with('{') {
        return Err(Failure::usage(format!(
            "Vault token file {} holds JSON, not a token: a response-wrapped or encrypted sink (wrap_ttl, dh_type) — write the token plainly to a file sink of its own",
            path.display()
        ))
        .into());
    }
    Ok(SecretString::from(token.to_owned()))
}

/// The secret material of a login, read before the network deadline starts
/// (a password prompt must not eat into `--timeout`).
pub enum Login {
    /// The token, and when its file was last changed (if it has one).
    Token(SecretString, Option<FileStamp>),
    AppRole {
        role_id: String,
        secret_id: Option<SecretString>,
    },
    Kubernetes {
        role: String,
        jwt: SecretString,
    },
    Jwt {
        role: Option<String>,
        jwt: SecretString,
    },
    Userpass {
        username: String,
        password: SecretString,
    },
    Cert {
        role: Option<String>,
    },
    /// No token: the proxy at the address adds its own.
    None,
}

fn required(value: Option<SecretString>) -> SecretString {
    value.unwrap_or_else(|| SecretString::from(String::new()))
}

/// A Vault token goes into a header: anything but visible ASCII (a
/// control character, a line break, a space) would be refused by the HTTP
/// library — or sent as no token at all — so it is refused here, naming
/// where it came from.
fn sendable(token: SecretString, input: &SecretInput) -> Result<SecretString> {
    let ok = {
        let t = token.expose_secret();
        !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic())
    };
    if ok {
        Ok(token)
    } else {
        Err(Failure::usage(format!(
            "the Vault token from {} is not one: it holds characters an HTTP header cannot carry (a space, a line break, a control character)",
            input.source()
        ))
        .into())
    }
}

/// Reads what the profile's login needs: files, environment, a prompt.
pub fn prepare(auth: &Auth) -> Result<Login> {
    Ok(match auth {
        Auth::Token(input) => {
            let (token, stamp) = read_token(input)?;
            Login::Token(token, stamp)
        }
        Auth::None => Login::None,
        Auth::AppRole { role_id, secret_id } => Login::AppRole {
            role_id: role_id.clone(),
            secret_id: secret_id.read("the AppRole secret-id")?,
        },
        Auth::Kubernetes { role, jwt } => Login::Kubernetes {
            role: role.clone(),
            jwt: required(jwt.read("the Kubernetes service-account token")?),
        },
        Auth::Jwt { role, jwt } => Login::Jwt {
            role: role.clone(),
            jwt: required(jwt.read("the JWT")?),
        },
        Auth::Userpass { username, password } => Login::Userpass {
            username: username.clone(),
            password: required(password.read("the Vault password")?),
        },
        Auth::Cert { role } => Login::Cert { role: role.clone() },
    })
}

/// Logs the client in and leaves the resulting token set on it. Returns the
/// new token with its lease, or `None` for token auth (nothing new to keep).
pub async fn login(
    client: &mut VaultClient,
    v: &VaultSettings,
    login: &Login,
) -> Result<Option<CachedLogin>> {
    let mount = v.auth_mount.as_str();
    let addr = v.addr.as_str();
    let method = v.auth_method.name();
    let doing = format!("the {method} login at auth/{mount}");
    let denied = format!("check the {method} role and what it is bound to");
    let missing = format!(
        "Vault at {addr} has no {method} auth method at auth/{mount}: check the mount path"
    );
    let fail = |e| {
        let failure = classify(e, addr, &doing, &denied, &missing);
        match failure.status {
            Some(404) => failure.about("auth_mount"),
            _ => failure,
        }
    };
    let built = |e: String| Failure::internal(format!("Vault login request: {e}"));
    let info = match login {
        Login::Token(token, _) => {
            client.set_token(token.expose_secret());
            return Ok(None);
        }
        Login::None => {
            client.set_token("");
            return Ok(None);
        }
        Login::AppRole { role_id, secret_id } => {
            use vaultrs::api::auth::approle::requests::LoginWithApproleRequest;
            let request = LoginWithApproleRequest::builder()
                .mount(mount)
                .role_id(role_id)
                .secret_id(secret_id.as_ref().map_or("", |s| s.expose_secret()))
                .build()
                .map_err(|e| built(e.to_string()))?;
            super::api::auth(client, request).await.map_err(fail)?
        }
        Login::Kubernetes { role, jwt } => {
            use vaultrs::api::auth::kubernetes::requests::LoginWithKubernetesRequest;
            let request = LoginWithKubernetesRequest::builder()
                .mount(mount)
                .role(role)
                .jwt(jwt.expose_secret())
                .build()
                .map_err(|e| built(e.to_string()))?;
            super::api::auth(client, request).await.map_err(fail)?
        }
        Login::Jwt { role, jwt } => {
            use vaultrs::api::auth::oidc::requests::JWTLoginRequest;
            let mut request = JWTLoginRequest::builder();
            if let Some(role) = role {
                request.role(role.clone());
            }
            let request = request
                .mount(mount)
                .jwt(jwt.expose_secret())
                .build()
                .map_err(|e| built(e.to_string()))?;
            super::api::auth(client, request).await.map_err(fail)?
        }
        Login::Userpass { username, password } => {
            use vaultrs::api::auth::userpass::requests::LoginRequest;
            let request = LoginRequest::builder()
                .mount(mount)
                .username(username)
                .password(password.expose_secret())
                .build()
                .map_err(|e| built(e.to_string()))?;
            super::api::auth(client, request).await.map_err(fail)?
        }
        Login::Cert { role } => {
            use vaultrs::api::auth::cert::requests::LoginRequest;
            let request = LoginRequest::builder()
                .mount(mount)
                .cert_name(role.as_deref().unwrap_or(""))
                .build()
                .map_err(|e| built(e.to_string()))?;
            super::api::auth(client, request).await.map_err(fail)?
        }
    };
    let now = crate::time::now();
    let login = CachedLogin {
        token: SecretString::from(info.client_token),
        issued_at: now,
        // A token without a TTL (root-like) is kept for an hour at most.
        expires_at: now
            + if info.lease_duration == 0 {
                3600
            } else {
                info.lease_duration
            },
        renewable: info.renewable,
    };
    debug!(
        method,
        ttl_secs = info.lease_duration,
        renewable = info.renewable,
        "logged in to Vault"
    );
    client.set_token(login.token.expose_secret());
    Ok(Some(login))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::config::Origin;

    fn token_file(dir: &std::path::Path, text: &str, mode: u32) -> SecretInput {
        let path = dir.join("token");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        SecretInput::TokenFile(path, Origin::Env("SEATABLE_CRED_VAULT_TOKEN_FILE".into()))
    }

    fn error(input: &SecretInput) -> String {
        crate::error::one_line(&read_token(input).unwrap_err())
    }

    #[test]
    fn a_token_file_is_read_as_the_config_file_is() {
        let dir = tempfile::tempdir().unwrap();
        // An agent's sink: the token and a line break, mode 0640.
        let input = token_file(dir.path(), "s.agent-token\n", 0o640);
        let (token, stamp) = read_token(&input).unwrap();
        assert_eq!(token.expose_secret(), "s.agent-token");
        let stamp = stamp.expect("a file's stamp");
        assert!(!stamp.changed(input.token_file().unwrap()));
        // Writable by group or others: whoever could write it would choose
        // the identity.
        for mode in [0o660, 0o602] {
            let input = token_file(dir.path(), "s.agent-token", mode);
            let text = error(&input);
            assert!(
                text.contains("is writable by others") && text.contains("chmod go-w"),
                "{text}"
            );
        }
        // A response-wrapped sink, an empty one, a missing one.
        let input = token_file(dir.path(), r#"{"token":"s.wrapped","ttl":300}"#, 0o600);
        assert!(error(&input).contains("holds JSON, not a token"));
        let input = token_file(dir.path(), " \n", 0o600);
        assert!(error(&input).contains("is empty"));
        let missing = SecretInput::TokenFile(
            dir.path().join("nope"),
            Origin::Flag("--vault-token-file".into()),
        );
        let text = error(&missing);
        assert!(
            text.contains("(set by --vault-token-file)") && text.contains("is the agent running"),
            "{text}"
        );
    }

    #[test]
    fn a_token_no_header_can_carry_is_refused_naming_its_origin() {
        for bad in ["s.a\nb", "s.a\u{1}b", "s.a b", "s.ä"] {
            let input = SecretInput::Env("VAULT_TOKEN", SecretString::from(bad.to_string()));
            let text = error(&input);
            assert!(
                text.starts_with("the Vault token from VAULT_TOKEN is not one"),
                "{text}"
            );
            assert!(!text.contains(bad));
        }
    }

    #[test]
    fn a_changed_file_is_seen_by_its_modification_time() {
        let dir = tempfile::tempdir().unwrap();
        let input = token_file(dir.path(), "s.first", 0o600);
        let (_, stamp) = read_token(&input).unwrap();
        let stamp = stamp.unwrap();
        let path = input.token_file().unwrap();
        // The agent writes a new file and renames it over the old one.
        let next = dir.path().join("token.tmp");
        std::fs::write(&next, "s.second").unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&next)
            .unwrap()
            .set_modified(later)
            .unwrap();
        std::fs::rename(&next, path).unwrap();
        assert!(stamp.changed(path));
        assert_eq!(read_token(&input).unwrap().0.expose_secret(), "s.second");
    }
}
