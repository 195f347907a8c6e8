//! A logged-in Vault client, reusing the Vault token of an earlier login.
//!
//! After an AppRole, Kubernetes, JWT, userpass or cert login the Vault token
//! is kept in the same memory-only cache as base tokens until its TTL, so a
//! refresh does not log in again; a renewable token is renewed (past two
//! thirds of its TTL) rather than replaced. Token auth keeps nothing: the
//! token is the user's own — and one from a file that an agent keeps (its
//! sink) is read afresh for every session, and again when Vault refuses it
//! and the file has changed since: the agent has replaced it.

use anyhow::Result;
use secrecy::{ExposeSecret, SecretString};
use tracing::{debug, info};
use vaultrs::api::token::requests::LookupTokenSelfRequest;
use vaultrs::api::token::responses::LookupTokenResponse;
use vaultrs::client::{Client, VaultClient};
use vaultrs::error::ClientError;

use super::auth::{self, FileStamp, Login};
use super::kv::Wanted;
use crate::config::{Auth, SecretSource, VaultSettings};
use crate::error::Failure;

/// A Vault token obtained by a login, with its lease.
pub struct CachedLogin {
    pub token: SecretString,
    pub issued_at: u64,
    pub expires_at: u64,
    pub renewable: bool,
}

/// Where the Vault tokens of logins are kept between calls: the helper's
/// cache ([`crate::cache::Cache`] implements it), asked here without this
/// room importing that one.
pub trait LoginCache {
    /// The backend's name, for diagnostics.
    fn name(&self) -> &'static str;
    /// The token of a login with these settings, expired or not; `None`
    /// for token auth, which keeps nothing.
    fn load_login(&self, v: &VaultSettings) -> Option<CachedLogin>;
    /// Keeps a login's token until it expires.
    fn save_login(&self, v: &VaultSettings, login: &CachedLogin) -> Result<()>;
    /// Drops a login's token (Vault refused it, or it could not be renewed).
    fn remove_login(&self, v: &VaultSettings) -> Result<()>;
}

impl CachedLogin {
    /// Still valid, with a moment to spare for the requests of this call.
    fn usable(&self, now: u64) -> bool {
        now + 2 < self.expires_at
    }

    /// Past two thirds of its TTL, a renewable token is renewed.
    fn wants_renewal(&self, now: u64) -> bool {
        let ttl = self.expires_at - self.issued_at;
        now >= self.issued_at + ttl * 2 / 3
    }
}

/// What a session will start from, decided before the network deadline
/// starts so that a password prompt does not eat into `--timeout`.
pub enum Prepared {
    /// Log in with this material.
    Login(Login),
    /// Reuse the Vault token of an earlier login.
    Cached(CachedLogin),
}

impl Prepared {
    /// Looks for a reusable login; reads login material (files, environment,
    /// a prompt) only when there is none.
    pub fn new(v: &VaultSettings, cache: &dyn LoginCache) -> Result<Prepared> {
        if let Some(login) = cache.load_login(v)
            && login.usable(crate::time::now())
        {
            debug!(backend = cache.name(), "reusing the cached Vault token");
            return Ok(Prepared::Cached(login));
        }
        Ok(Prepared::Login(auth::prepare(&v.auth)?))
    }
}

/// A Vault client with a token set.
pub struct Session<'a> {
    pub client: VaultClient,
    settings: &'a VaultSettings,
    cache: &'a dyn LoginCache,
    /// The token came from the cache (it may have been revoked since).
    reused: bool,
    /// Token auth from a file: when the file was last changed as the token
    /// in use was read from it.
    token_file: Option<FileStamp>,
    /// Transient Vault failures are retried until then.
    deadline: tokio::time::Instant,
}

impl<'a> Session<'a> {
    pub async fn connect(
        v: &'a VaultSettings,
        prepared: Prepared,
        cache: &'a dyn LoginCache,
        deadline: tokio::time::Instant,
    ) -> Result<Session<'a>> {
        let mut session = Session {
            client: super::client(v)?,
            settings: v,
            cache,
            reused: false,
            token_file: None,
            deadline,
        };
        match prepared {
            Prepared::Login(login) => session.login(&login).await?,
            Prepared::Cached(cached) => {
                session.client.set_token(cached.token.expose_secret());
                session.reused = true;
                if cached.renewable && cached.wants_renewal(crate::time::now()) {
                    session.renew().await?;
                }
            }
        }
        Ok(session)
    }

    async fn login(&mut self, login: &Login) -> Result<()> {
        let (client, settings) = (&mut self.client, self.settings);
        let fresh = crate::retry::transient(self.deadline, "Vault login", async || {
            auth::login(client, settings, login).await
        })
        .await?;
        if let Some(fresh) = fresh {
            self.remember(&fresh);
        }
        self.reused = false;
        if let Login::Token(_, stamp) = login {
            self.token_file = *stamp;
        }
        Ok(())
    }

    /// Token auth from a file an agent keeps: when the file has changed
    /// since its token was read (its modification time, then its content),
    /// takes the new token and says `true` — the agent replaced the token
    /// Vault just refused. An unchanged file leaves the refusal standing.
    fn reread_token_file(&mut self) -> Result<bool> {
        let (Some(stamp), crate::config::Auth::Token(input)) =
            (self.token_file, &self.settings.auth)
        else {
            return Ok(false);
        };
        let Some(path) = input.token_file() else {
            return Ok(false);
        };
        if !stamp.changed(path) {
            return Ok(false);
        }
        let (token, stamp) = auth::read_token(input)?;
        self.token_file = stamp;
        if token.expose_secret() == self.client.settings.token {
            return Ok(false);
        }
        info!(
            file = %path.display(),
            "the Vault token file has changed since its token was read; using its new token"
        );
        self.client.set_token(token.expose_secret());
        Ok(true)
    }

    /// Renews the reused token; if Vault will not, logs in afresh.
    async fn renew(&mut self) -> Result<()> {
        let (client, addr) = (&self.client, self.settings.addr.as_str());
        let renewed = crate::retry::transient(self.deadline, "Vault token renewal", async || {
            let request = vaultrs::api::token::requests::RenewTokenSelfRequest::builder()
                .build()
                .map_err(|e| Failure::internal(format!("Vault request: {e}")))?;
            super::api::auth(client, request).await.map_err(|e| {
                super::classify(e, addr, "renewing the cached Vault token", "", "").into()
            })
        })
        .await;
        match renewed {
            Err(e) if crate::error::is_transient(&e) => Err(e),
            Ok(info) if info.lease_duration > 0 => {
                let now = crate::time::now();
                let renewed = CachedLogin {
                    token: SecretString::from(info.client_token),
                    issued_at: now,
                    expires_at: now + info.lease_duration,
                    renewable: info.renewable,
                };
                debug!(
                    ttl_secs = info.lease_duration,
                    "renewed the cached Vault token"
                );
                self.client.set_token(renewed.token.expose_secret());
                self.remember(&renewed);
                Ok(())
            }
            _ => {
                info!("the cached Vault token could not be renewed; logging in again");
                self.relogin().await
            }
        }
    }

    async fn relogin(&mut self) -> Result<()> {
        self.cache.remove_login(self.settings).ok();
        let login = auth::prepare(&self.settings.auth)?;
        self.login(&login).await
    }

    fn remember(&self, login: &CachedLogin) {
        if let Err(e) = self.cache.save_login(self.settings, login) {
            debug!(
                "the Vault token is not cached: {}",
                crate::error::one_line(&e)
            );
        }
    }

    /// What Vault says of the session's own Vault token
    /// (`auth/token/lookup-self`): its policies and TTL, or `None` when a
    /// policy forbids the lookup. With token auth — the user's own token,
    /// never checked by a login — a token Vault refuses itself (unknown,
    /// expired, revoked) is the error that says so; with `--auth none` the
    /// token Vault saw is the one a proxy adds (or none at all), and the
    /// error says that instead.
    pub async fn lookup_self(&self) -> Result<Option<LookupTokenResponse>> {
        let request = LookupTokenSelfRequest::builder()
            .build()
            .map_err(|e| Failure::internal(format!("Vault request: {e}")))?;
        match super::api::exec(&self.client, request).await {
            Ok(info) => Ok(Some(info)),
            Err(ClientError::APIError { code: 403, errors }) if refuses_the_token(&errors) => {
                match &self.settings.auth {
                    Auth::Token(input) => Err(token_refused(self.settings, &input.source()).into()),
                    Auth::None => Err(proxy_token_refused(self.settings).into()),
                    _ => Ok(None),
                }
            }
            Err(_) => Ok(None),
        }
    }

    /// Reads a secret value — the API token, the account token — detecting
    /// the KV version unless given. A reused Vault token that Vault now
    /// refuses (revoked, or its policy changed) is dropped, and the read
    /// retried once after a fresh login; a token from a file that has
    /// changed since it was read is replaced by the file's new one, and the
    /// read retried once.
    pub async fn read_api_token(&mut self, want: Wanted<'_>) -> Result<SecretString> {
        match self.read_once(want).await {
            Err(e) if self.reused && crate::error::status_of(&e) == Some(403) => {
                info!("Vault refused the cached Vault token; logging in again");
                self.relogin().await?;
                self.read_once(want).await
            }
            // Denied: an agent may have replaced the token in its file;
            // else the policy — or the token itself, which no policy fixes.
            Err(e) if crate::error::status_of(&e) == Some(403) => {
                let e = if self.reread_token_file()? {
                    match self.read_once(want).await {
                        Err(e) if crate::error::status_of(&e) == Some(403) => e,
                        other => return other,
                    }
                } else {
                    e
                };
                self.lookup_self().await?;
                Err(e)
            }
            other => other,
        }
    }

    async fn read_once(&self, want: Wanted<'_>) -> Result<SecretString> {
        let doing = format!("reading {}", want.what);
        crate::retry::transient(self.deadline, &doing, async || {
            debug!(secret = %want.secret, kv_version = ?want.kv_version, "{doing}");
            match want.kv_version {
                Some(version) => {
                    super::kv::read_field(&self.client, self.settings, want, version).await
                }
                None => super::kv::read_field_detecting(&self.client, self.settings, want).await,
            }
        })
        .await
    }
}

/// Whether Vault's words for a denied token lookup mean the token itself:
/// Vault and OpenBao answer a token they do not know (or no longer: expired,
/// revoked) with a bare "permission denied" — a token whose policy forbids
/// the lookup gets the ACL's "1 error occurred: * permission denied".
fn refuses_the_token(errors: &[String]) -> bool {
    errors.iter().any(|e| {
        let e = e.trim();
        e == "permission denied" || e.contains("invalid token") || e.contains("bad token")
    })
}

/// Vault refuses the user's own Vault token: that, where it came from, and
/// how to get a new one there.
fn token_refused(v: &VaultSettings, source: &SecretSource) -> Failure {
    let renew = match source {
        SecretSource::Env(name) => format!(
            "log in again (`bao login -address={addr}` or `vault login`) and put the new token in {name} — or unset {name} to use the one `bao login` writes to ~/.vault-token",
            addr = v.addr
        ),
        SecretSource::File {
            path,
            named_by: crate::config::Origin::Default,
        } => format!(
            "log in again with `bao login -address={}` (or `vault login`): it writes a new token to {}",
            v.addr,
            path.display()
        ),
        SecretSource::File { path, .. } => format!(
            "put a valid token in {} (or have whatever writes it log in again)",
            path.display()
        ),
        SecretSource::Prompt | SecretSource::Absent => {
            "log in again with `bao login` (or `vault login`)".to_string()
        }
    };
    Failure::vault(format!(
        "Vault at {} refused the Vault token itself (from {source}): it is unknown, expired or revoked — no policy can fix that; {renew}",
        v.addr
    ))
    .with_status(403)
}

/// With `--auth none`, Vault refuses the token itself: the one the proxy
/// at the address adds (its auto-auth token, unknown, expired or revoked) —
/// or none, when nothing there adds one. Not the user's token: there is
/// none to renew.
fn proxy_token_refused(v: &VaultSettings) -> Failure {
    Failure::vault(format!(
        "Vault at {addr} refused the token itself (403): with --auth none that is the token a Vault Proxy or Agent at {addr} adds, not one of the helper's — its auto-auth token is unknown, expired or revoked, or nothing there adds one (--auth none sends none); check the proxy's log and that --vault-addr is its listener with api_proxy use_auto_auth_token = \"force\"",
        addr = v.addr
    ))
    .with_status(403)
    .about("auth")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OpenBao's and Vault's words: a token they do not know, and one
    /// whose policy forbids the lookup.
    #[test]
    fn a_bare_permission_denied_is_the_token_itself() {
        assert!(refuses_the_token(&["permission denied".into()]));
        assert!(refuses_the_token(&["invalid token".into()]));
        assert!(!refuses_the_token(&[
            "1 error occurred:\n\t* permission denied\n\n".into()
        ]));
        assert!(!refuses_the_token(&[]));
    }
}
