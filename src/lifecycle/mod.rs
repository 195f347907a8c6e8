//! The API-token life cycle of SPEC §12, a room of its own beside the `get`
//! flow: it talks to SeaTable's account API ([`crate::seatable::account`])
//! and reads and writes Vault through [`crate::vault`]. One file per
//! command; [`commands::token`](crate::commands) only prints what they return.
//!
//! The rules every command keeps, as Vault's own static-role rotation does,
//! so that at no moment is the only copy of a working token gone:
//!
//! * A token reaches Vault only by a KV v2 check-and-set write naming the
//!   version that was read. A refused write (someone else wrote first) and a
//!   failed one delete the token this run created — after Vault was read
//!   again, in case the write landed after all.
//! * Nothing is deleted in SeaTable without reading Vault first: the token
//!   Vault holds at that moment is never deleted (except by
//!   `revoke --force`). A predecessor goes only once its successor is in
//!   Vault and exchanges.
//! * Every step is finished or undone by the next `rotate` or `prune`:
//!   the leftovers of a run killed at any step are tokens of the family
//!   that Vault does not hold.
//!
//! `--timeout` bounds each step (a login, a Vault read, one SeaTable
//! request with its retries), not the whole command: a rotation with a
//! `--grace` period lasts as long as that period.

mod age;
pub mod audit;
mod create;
mod credentials;
mod list;
pub mod naming;
mod prune;
mod rotate;

use std::time::Duration;

use anyhow::Result;
use secrecy::SecretString;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::cache::Cache;
use crate::config::{AccountSettings, Profile, SecretRef};
use crate::error::{Failure, Kind, kind_of, one_line};
use crate::retry::{Policy, Verdict};
use crate::seatable::account::{Account, BaseRef, Deleted, Digest, ListedToken};
use crate::vault::versioned::{self, SecretData, Versioned, Written};
use crate::vault::{Prepared, Session};

pub use age::{TokenAge, token_age};
pub use create::{Created, Request as CreateRequest, create};
pub use list::{Listing, TokenInfo, list};
pub use prune::{Pruned, Revoked, prune, revoke};
pub use rotate::{Rotated, rotate};

/// A logged-in Vault session, a SeaTable client and the account token: what
/// every `token` command works with.
pub struct Ctx<'a> {
    pub profile: &'a Profile,
    cache: &'a Cache,
    session: Session<'a>,
    http: reqwest::Client,
    account_token: SecretString,
    /// The profile's secret as located by [`Ctx::held`] (KV v2).
    located: Option<SecretRef>,
}

/// The base a token opens, as the exchange names it.
pub struct Opened {
    pub base: BaseRef,
    pub dtable_uuid: Option<String>,
}

/// Runs `work` with the profile's Vault session and the account token, on
/// a current-thread runtime. Login material — the Vault login's and the
/// account password — is read before any network work.
pub fn run<T>(
    profile: &Profile,
    account: &AccountSettings,
    work: impl AsyncFnOnce(&mut Ctx<'_>) -> Result<T>,
) -> Result<T> {
    run_in(profile, account, work).map_err(|e| account.name_origin(profile, e))
}

fn run_in<T>(
    profile: &Profile,
    account: &AccountSettings,
    work: impl AsyncFnOnce(&mut Ctx<'_>) -> Result<T>,
) -> Result<T> {
    let auth = account.auth.as_ref().ok_or_else(|| {
        Failure::usage(
            "the token commands need SeaTable account credentials: set --account-secret (SEATABLE_CRED_ACCOUNT_SECRET, account_secret), a Vault secret whose field account_token holds an account token, or --account (SEATABLE_CRED_ACCOUNT, account) to log in",
        )
    })?;
    let cache = Cache::open(&profile.cache)?;
    let prepared = Prepared::new(&profile.vault, &cache)?;
    let material = credentials::prepare(auth)?;
    crate::http::install_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the network runtime: {e}")))?;
    runtime.block_on(async {
        let deadline = Instant::now() + profile.timeout;
        let mut session = bounded(
            profile,
            deadline,
            "logging in to Vault",
            Session::connect(&profile.vault, prepared, &cache, deadline),
        )
        .await?;
        let http = crate::seatable::http_client(&profile.server_url, profile.ca_cert.as_deref())?;
        let account_token =
            credentials::account_token(&mut session, &http, profile, material).await?;
        let mut ctx = Ctx {
            profile,
            cache: &cache,
            session,
            http,
            account_token,
            located: None,
        };
        work(&mut ctx).await
    })
}

/// Runs a step that has no deadline of its own (vaultrs sets no timeout)
/// under `deadline`, with a moment of grace for steps that report their own.
async fn bounded<T>(
    profile: &Profile,
    deadline: Instant,
    what: &str,
    step: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout_at(deadline + Duration::from_millis(250), step).await {
        Ok(result) => result,
        Err(_) => Err(Failure::unavailable(format!(
            "gave up after {} (--timeout) while {what}: Vault at {} or SeaTable at {} did not answer in time; try again later",
            crate::time::compact(profile.timeout),
            profile.vault.addr,
            profile.server_url
        ))
        .into()),
    }
}

/// What the profile's secret holds, for a check-and-set write.
pub struct Held {
    /// The secret as Vault's mount table splits it.
    pub secret: SecretRef,
    pub state: Versioned,
}

impl Held {
    /// The API token in the profile's field.
    pub fn token(&self, field: &str) -> Option<SecretString> {
        self.state.data.as_ref()?.string(field)
    }

    pub fn holds(&self, field: &str, digest: Digest) -> bool {
        self.token(field).is_some_and(|t| Digest::of(&t) == digest)
    }
}

impl Ctx<'_> {
    /// The deadline of a step starting now.
    fn deadline(&self) -> Instant {
        Instant::now() + self.profile.timeout
    }

    pub fn account(&self) -> Result<Account<'_>> {
        Account::new(&self.http, &self.profile.server_url, &self.account_token)
    }

    /// The API token the profile's secret holds now (KV v1 or v2).
    pub async fn vault_token(&mut self) -> Result<SecretString> {
        let deadline = self.deadline();
        let p = self.profile;
        bounded(
            p,
            deadline,
            "reading the API token",
            self.session
                .read_api_token(crate::vault::Wanted::api_token(p)),
        )
        .await
    }

    /// The profile's secret on a KV v2 mount, read with its version. KV v1
    /// is refused: it can neither tell a concurrent change nor refuse to
    /// overwrite one.
    pub async fn held(&mut self, doing: &str) -> Result<Held> {
        let p = self.profile;
        let deadline = self.deadline();
        let client = &self.session.client;
        let (secret, version) = bounded(
            p,
            deadline,
            "looking up the secret's KV version",
            versioned::locate(client, &p.vault, &p.secret, p.kv_version),
        )
        .await?;
        if version != 2 {
            return Err(Failure::usage(format!(
                "{} is on a KV v1 mount, which has no versions and no check-and-set: {doing} needs KV v2 so that a concurrent change is never overwritten; nothing was changed (move the secret to a KV v2 mount)",
                p.secret
            ))
            .into());
        }
        let state = self.reread(&secret).await?;
        self.located = Some(secret.clone());
        Ok(Held { secret, state })
    }

    /// Reads the KV v2 secret again (retrying transient failures).
    async fn reread(&self, secret: &SecretRef) -> Result<Versioned> {
        let p = self.profile;
        let deadline = self.deadline();
        let client = &self.session.client;
        bounded(
            p,
            deadline,
            "reading the secret",
            crate::retry::transient(deadline, "reading the secret", async || {
                versioned::read(client, &p.vault, secret).await
            }),
        )
        .await
    }

    /// Writes `token` into the profile's field with check-and-set on
    /// `held`'s version. A refused or failed write is checked by reading
    /// again: if Vault holds the token after all, the write landed (a Raft
    /// cluster can fail a write ambiguously, losing its leader while
    /// committing).
    pub async fn write(&self, held: &Held, token: &SecretString) -> Result<Written> {
        let p = self.profile;
        let data = held
            .state
            .data
            .as_ref()
            .map_or_else(SecretData::default, |d| d.clone())
            .with(&p.field, token);
        let deadline = self.deadline();
        let client = &self.session.client;
        // Retrying is safe: a first attempt that landed makes the next one
        // a refused check-and-set, which the read below recognises.
        let written = bounded(
            p,
            deadline,
            "writing the secret",
            crate::retry::transient(deadline, "writing the secret", async || {
                versioned::write(client, &p.vault, &held.secret, &data, held.state.version).await
            }),
        )
        .await;
        match written {
            Ok(Written::Version(v)) => Ok(Written::Version(v)),
            outcome => {
                let again = self.reread(&held.secret).await;
                match again {
                    Ok(now)
                        if now
                            .data
                            .as_ref()
                            .and_then(|d| d.string(&p.field))
                            .is_some_and(|t| Digest::of(&t) == Digest::of(token)) =>
                    {
                        debug!("the write landed after all");
                        Ok(Written::Version(now.version))
                    }
                    _ => outcome,
                }
            }
        }
    }

    /// Trades `token` for a base token to learn which base it opens.
    /// `whose` names the token in messages.
    pub async fn open(&self, token: &SecretString, whose: &str) -> Result<Opened> {
        let p = self.profile;
        let exchanged = crate::seatable::exchange(
            &self.http,
            &p.server_url,
            p.lifetime,
            token,
            self.deadline(),
        )
        .await
        .map_err(|e| e.context(format!("trading {whose} for a base token")))?;
        let c = exchanged.context;
        match (c.workspace_id, c.dtable_name) {
            (Some(workspace_id), Some(name)) => Ok(Opened {
                base: BaseRef { workspace_id, name },
                dtable_uuid: c.dtable_uuid,
            }),
            _ => Err(Failure::internal(format!(
                "SeaTable at {} did not name the base's workspace and name when trading {whose}: the token commands need them",
                p.server_url
            ))
            .into()),
        }
    }

    /// The base the profile's API token opens, and that token.
    pub async fn vault_base(&mut self) -> Result<(SecretString, Opened)> {
        let token = self.vault_token().await?;
        let opened = self.open_vault_token(&token).await?;
        Ok((token, opened))
    }

    /// The base the token read from the profile's secret opens; a refusal
    /// says how to get a working token again.
    pub async fn open_vault_token(&self, token: &SecretString) -> Result<Opened> {
        self.open(token, &format!("the API token in {}", self.profile.secret))
            .await
            .map_err(|e| {
                if kind_of(&e) == Kind::SeaTable {
                    Failure::seatable(format!(
                        "the API token in Vault was refused ({}); to mint a new one: seatable-cred token create --force --base NAME --app NAME",
                        one_line(&e)
                    ))
                    .into()
                } else {
                    e
                }
            })
    }

    /// The base's API tokens (values reduced to digests).
    pub async fn tokens(&self, base: &BaseRef) -> Result<Vec<ListedToken>> {
        self.account()?.list_tokens(base, self.deadline()).await
    }

    /// Deletes token `app` (of digest `digest`) unless the profile's secret
    /// holds it at this moment. `None` when it was kept for that reason.
    ///
    /// Vault is read again before every try: a delete retried after a
    /// failure must not remove a token that a concurrent rotation has
    /// written to Vault in the meantime. And SeaTable deletes by name: the
    /// base's tokens are listed again too, so that a token made anew under
    /// that name since the caller's list (and perhaps stored in Vault by
    /// now) is not the one deleted — a refusal, not a guess.
    pub async fn delete_unless_held(
        &mut self,
        base: &BaseRef,
        app: &str,
        digest: Digest,
    ) -> Result<Option<Deleted>> {
        // Each try reads Vault and lists the base first; only a transient
        // failure of the delete itself is tried again — a failed read, or a
        // token replaced since the caller's list, is final.
        enum Tried {
            Held,
            Deleted(Result<Deleted>),
            Stopped(anyhow::Error),
        }
        let classify = |tried: Tried| match tried {
            Tried::Held => Verdict::Done(None),
            Tried::Stopped(e) => Verdict::Final(e),
            Tried::Deleted(Err(e)) if crate::error::is_transient(&e) => Verdict::Again(e, None),
            Tried::Deleted(Err(e)) => Verdict::Final(e),
            Tried::Deleted(Ok(deleted)) => Verdict::Done(Some(deleted)),
        };
        let until = self.deadline();
        let mut tries = 0;
        Ok(Policy::NETWORK
            .run(until, "", classify, async || {
                tries += 1;
                if tries > 1 {
                    debug!("checking Vault again before deleting '{app}'");
                }
                let now = match self.vault_digest().await {
                    Ok(now) => now,
                    Err(e) => {
                        return Tried::Stopped(e.context(format!(
                            "reading Vault before deleting '{app}' (kept; run `seatable-cred token prune` later)"
                        )));
                    }
                };
                if now == Some(digest) {
                    warn!(
                        "'{app}' is the token {} holds now; not deleting it",
                        self.profile.secret
                    );
                    return Tried::Held;
                }
                let listed = match self.tokens(base).await {
                    Ok(listed) => listed,
                    Err(e) => return Tried::Stopped(e),
                };
                match listed.iter().find(|t| t.app_name == app) {
                    None => return Tried::Deleted(Ok(Deleted::Missing)),
                    Some(t) if t.digest != digest => {
                        return Tried::Stopped(Failure::usage(format!(
                            "API token '{app}' of base {base} was replaced since it was listed (by another run, or in the web interface); nothing was deleted: look with `seatable-cred token list`, then try again"
                        ))
                        .into());
                    }
                    Some(_) => {}
                }
                Tried::Deleted(self.delete(base, app).await)
            })
            .await?)
    }

    /// Whether a listed token may be the successor of a rotation that is
    /// still running, not yet in Vault: `prune` and rotate's sweep of
    /// leftovers leave it alone for now. Only a token minted after the one
    /// Vault holds (`held_at`) can be: one minted before it could only reach
    /// Vault by a check-and-set on a version older than the one holding the
    /// newer token, which Vault refuses. Of those, one made moments ago
    /// (within 2 × `--timeout`) may be.
    pub fn may_be_in_flight(&self, generated_at: Option<&str>, held_at: Option<&str>) -> bool {
        use crate::seatable::account::unix_seconds;
        let at = generated_at.and_then(unix_seconds);
        if let (Some(at), Some(held)) = (at, held_at.and_then(unix_seconds))
            && at < held
        {
            return false;
        }
        let window = self.profile.timeout.as_secs().saturating_mul(2);
        at.is_some_and(|at| at + window > crate::time::now())
    }

    /// The digest of the token the profile's secret holds now; `None` when
    /// a KV v2 secret read by [`Ctx::held`] holds none (yet).
    async fn vault_digest(&mut self) -> Result<Option<Digest>> {
        match self.located.clone() {
            Some(secret) => {
                let state = self.reread(&secret).await?;
                let field = &self.profile.field;
                Ok(state
                    .data
                    .and_then(|d| d.string(field))
                    .map(|t| Digest::of(&t)))
            }
            None => Ok(Some(Digest::of(&self.vault_token().await?))),
        }
    }

    /// Deletes token `app` in SeaTable (a missing one counts as deleted).
    pub async fn delete(&self, base: &BaseRef, app: &str) -> Result<Deleted> {
        let deleted = self
            .account()?
            .delete_token(base, app, self.deadline())
            .await?;
        match deleted {
            Deleted::Deleted => info!("deleted API token '{app}' of base {base}"),
            Deleted::Missing => info!("API token '{app}' of base {base} was already gone"),
        }
        Ok(deleted)
    }

    /// The latest expiry of a base token of `api_token` that the profile's
    /// cache holds, read before they are dropped (the broker's
    /// [`crate::broker::cached_until_with`]): those stay valid until then
    /// even after `api_token` is deleted.
    pub async fn cached_expiry(&self, api_token: &SecretString) -> Option<u64> {
        crate::broker::cached_until_with(
            self.profile,
            self.cache,
            &self.session.client,
            api_token,
            self.deadline() + Duration::from_millis(250),
        )
        .await
    }

    /// Drops the profile's cached base tokens — the local entry, and the
    /// shared one with `cache = vault` — so that the next `get` exchanges
    /// the token Vault holds now.
    pub async fn drop_cached(&self) {
        let p = self.profile;
        let erased = bounded(
            p,
            self.deadline(),
            "erasing the shared cache entry",
            crate::broker::forget_with(p, self.cache, &self.session.client),
        )
        .await;
        if let Err(e) = erased {
            warn!(
                "{}; the shared cache entry is used until it expires",
                one_line(&e)
            );
        }
        debug!("dropped the cached base tokens of profile {}", p.name);
    }
}

/// Checks that a token just made opens `base` (of `uuid`, when known).
async fn check_opens(
    ctx: &Ctx<'_>,
    token: &SecretString,
    app: &str,
    base: &BaseRef,
    uuid: Option<&str>,
) -> Result<()> {
    let opened = ctx
        .open(token, &format!("the new token '{app}'"))
        .await
        .map_err(|e| match kind_of(&e) {
            Kind::SeaTable => Failure::seatable(format!(
                "SeaTable refused the new token '{app}' right after making it ({})",
                one_line(&e)
            ))
            .into(),
            _ => e,
        })?;
    // 32 hex digits and the hyphenated form are the same base: older
    // servers answer the exchange with the one, the workspaces with the other.
    let same_uuid = match (uuid, opened.dtable_uuid.as_deref()) {
        (Some(want), Some(got)) => crate::seatable::same_base(want, got),
        _ => true,
    };
    if opened.base != *base || !same_uuid {
        return Err(Failure::internal(format!(
            "the new token '{app}' opens base {}, not {base}",
            opened.base
        ))
        .into());
    }
    Ok(())
}

/// Deletes the token this run created after a step failed, and says so in
/// the error — keeping its exit code.
async fn discard(
    ctx: &mut Ctx<'_>,
    base: &BaseRef,
    app: &str,
    digest: Digest,
    err: anyhow::Error,
) -> anyhow::Error {
    let outcome = match ctx.delete_unless_held(base, app, digest).await {
        Ok(Some(_)) => format!("the new token '{app}' was deleted again in SeaTable"),
        Ok(None) => format!("the new token '{app}' is what Vault holds now, so it was kept"),
        Err(e) => format!(
            "the new token '{app}' could not be deleted ({}): delete it with `seatable-cred token prune` or `seatable-cred token revoke --app {app}`",
            one_line(&e)
        ),
    };
    restate(&err, |line| format!("{line}; {outcome}"))
}

/// `err` said differently (`say` gets its one line), keeping its exit code.
fn restate(err: &anyhow::Error, say: impl FnOnce(String) -> String) -> anyhow::Error {
    let mut failure = Failure::new(kind_of(err), say(one_line(err)));
    failure.status = crate::error::status_of(err);
    failure.into()
}
