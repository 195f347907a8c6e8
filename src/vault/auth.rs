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
            SecretInput::File(path) | SecretInput::FileOr(path, _) => {
                let text =
                    zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(
                        |e| match self {
                            SecretInput::FileOr(_, hint)
                                if e.kind() == std::io::ErrorKind::NotFound =>
                            {
                                Failure::usage(hint.clone())
                            }
                            _ => Failure::usage(format!(
                                "cannot read {what} from {}: {e}",
                                path.display()
                            )),
                        },
                    )?);
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

/// The secret material of a login, read before the network deadline starts
/// (a password prompt must not eat into `--timeout`).
pub enum Login {
    Token(SecretString),
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

/// Reads what the profile's login needs: files, environment, a prompt.
pub fn prepare(auth: &Auth) -> Result<Login> {
    Ok(match auth {
        Auth::Token(input) => Login::Token(required(input.read("the Vault token")?)),
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
    let missing =
        format!("Vault at {addr} has no {method} auth method at auth/{mount}: check --auth-mount");
    let fail = |e| classify(e, addr, &doing, &denied, &missing);
    let built = |e: String| Failure::internal(format!("Vault login request: {e}"));
    let info = match login {
        Login::Token(token) => {
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
