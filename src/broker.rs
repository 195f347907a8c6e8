//! The broker: the only place that decides when to use the cache and when
//! to go to Vault and SeaTable (SPEC §2, §6).
//!
//! * A fresh local entry is answered without a runtime, a socket or a Vault
//!   read.
//! * Otherwise one refresh at a time per key: the per-key lock is taken
//!   (waiting at most `--timeout`), the cache looked at again — another
//!   process may have refreshed meanwhile — and only then Vault and SeaTable
//!   are asked, under one network deadline (`--timeout`), on a
//!   current-thread tokio runtime.
//! * With `--cache vault` the host's local backend is the first level; the
//!   shared entry in Vault is read only when the local entry is missing or
//!   due, and a check-and-set claim makes one host of the fleet refresh it.

use std::time::{Duration, Instant};

use anyhow::Result;
use tracing::{debug, info, warn};
use vaultrs::client::VaultClient;

use crate::cache::seal::SealKey;
use crate::cache::shared::{Shared, Turn, Want};
use crate::cache::{Cache, Key};
use crate::config::{CacheSettings, Profile, SecretRef};
use crate::error::{Failure, Kind, kind_of, one_line};
use crate::seatable::{self, BaseToken, Freshness};
use crate::vault::{Prepared, Session};

/// A token and where it came from.
pub struct Outcome {
    pub token: BaseToken,
    /// Served from the cache (fresh, or stale-if-error).
    pub cached: bool,
}

impl Outcome {
    fn cached(token: BaseToken) -> Outcome {
        Outcome {
            token,
            cached: true,
        }
    }
}

/// The credential for the profile: from cache while fresh, else refreshed.
/// `force` skips the cache lookup (`get --refresh`).
///
/// With `--cache vault` there are two levels: this host's local backend in
/// front (a fresh local entry is served without Vault), and the shared entry
/// in Vault behind it, read only when the local one is missing or due.
pub fn get(profile: &Profile, force: bool) -> Result<Outcome> {
    get_with(&Cache::open(&profile.cache)?, profile, force)
}

/// [`get`] with the profile's cache already open (`doctor` and `init` have
/// checked it).
pub fn get_with(cache: &Cache, profile: &Profile, force: bool) -> Result<Outcome> {
    let key = Key::for_profile(profile);
    let mut stale = None;
    if !force {
        match look(cache, &key, profile) {
            Look::Fresh(token) => return Ok(Outcome::cached(token)),
            Look::Stale(token) => stale = Some(token),
            Look::Miss => {}
        }
    }
    let _lock = match cache.lock(&key, Instant::now() + profile.timeout) {
        Ok(lock) => lock,
        Err(busy) => {
            let err = Failure::unavailable(format!(
                "another seatable-cred has been refreshing this token for {}s (lock in {}); try again later",
                busy.waited.as_secs(),
                cache
                    .lock_dir()
                    .map_or(String::new(), |d| d.display().to_string())
            ));
            return settle(err.into(), stale, || {});
        }
    };
    // Whoever held the lock may have refreshed the entry meanwhile.
    if !force && let Look::Fresh(token) = look(cache, &key, profile) {
        debug!("another process refreshed the token while we waited");
        return Ok(Outcome::cached(token));
    }
    let mut stale_shared = None;
    let result = match &profile.cache.shared {
        Some(shared_at) => {
            let stale_shared = &mut stale_shared;
            with_vault(profile, cache, async |session, deadline| {
                refresh_shared(profile, shared_at, session, deadline, force, stale_shared).await
            })
        }
        None => with_vault(profile, cache, async |session, deadline| {
            let api_token = session
                .read_api_token(crate::vault::Wanted::api_token(profile))
                .await?;
            Ok((exchange(profile, &api_token, deadline).await?, false))
        }),
    };
    match result {
        Ok((token, cached)) => {
            cache.save_token(&key, &token);
            Ok(Outcome { token, cached })
        }
        Err(err) => settle(err, stale_shared.or(stale), || cache.remove(&key)),
    }
}

enum Look {
    Fresh(BaseToken),
    /// Valid but inside the refresh window.
    Stale(BaseToken),
    Miss,
}

fn look(cache: &Cache, key: &Key, profile: &Profile) -> Look {
    let Some(token) = cache.load_token(key) else {
        return Look::Miss;
    };
    match token.freshness(crate::time::now(), profile.refresh_before) {
        Freshness::Fresh => {
            debug!(backend = cache.name(), "cache hit");
            Look::Fresh(token)
        }
        Freshness::Refresh => {
            info!(
                backend = cache.name(),
                "the cached token is inside the refresh window; refreshing"
            );
            Look::Stale(token)
        }
        Freshness::Expired => {
            debug!(backend = cache.name(), "the cached token has expired");
            Look::Miss
        }
    }
}

/// The policy for a failed refresh: a permanent SeaTable rejection drops the
/// entry; a transient failure is answered with the still-valid token, with a
/// warning; anything else is the caller's error.
fn settle(
    err: anyhow::Error,
    stale: Option<BaseToken>,
    drop_entry: impl FnOnce(),
) -> Result<Outcome> {
    match kind_of(&err) {
        Kind::SeaTable => drop_entry(),
        Kind::Unavailable => {
            if let Some(token) = stale.filter(|t| t.expires_at > crate::time::now()) {
                warn!(
                    "refresh failed ({}); using the cached token, valid until {}",
                    one_line(&err),
                    crate::time::rfc3339(token.expires_at)
                );
                return Ok(Outcome::cached(token));
            }
        }
        _ => {}
    }
    Err(err)
}

/// Runs `work` with a logged-in Vault session, on a current-thread runtime,
/// under the network deadline it is given. Login material (files, a
/// password prompt) is read before the clock starts. A failure about one of
/// the profile's settings names where it was set.
fn with_vault<T>(
    profile: &Profile,
    cache: &Cache,
    work: impl AsyncFnOnce(&mut Session<'_>, tokio::time::Instant) -> Result<T>,
) -> Result<T> {
    vault_session(profile, cache, work).map_err(|e| profile.name_origin(e))
}

fn vault_session<T>(
    profile: &Profile,
    cache: &Cache,
    work: impl AsyncFnOnce(&mut Session<'_>, tokio::time::Instant) -> Result<T>,
) -> Result<T> {
    let prepared = Prepared::new(&profile.vault, cache)?;
    crate::http::install_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the network runtime: {e}")))?;
    runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + profile.timeout;
        let run = async {
            let mut session = Session::connect(&profile.vault, prepared, cache, deadline).await?;
            work(&mut session, deadline).await
        };
        // A moment of grace, so that a step that watches the deadline itself
        // (the exchange's retries) reports its own, more precise error.
        match tokio::time::timeout_at(deadline + Duration::from_millis(250), run).await {
            Ok(result) => result,
            Err(_) => Err(timed_out(profile).into()),
        }
    })
}

fn timed_out(profile: &Profile) -> Failure {
    Failure::unavailable(format!(
        "gave up after {} (--timeout): Vault at {} or SeaTable at {} did not answer in time; try again later",
        crate::time::compact(profile.timeout),
        profile.vault.addr,
        profile.server_url
    ))
}

/// The SeaTable half of a refresh.
async fn exchange(
    profile: &Profile,
    api_token: &secrecy::SecretString,
    deadline: tokio::time::Instant,
) -> Result<BaseToken> {
    let client = seatable::http_client(&profile.server_url, profile.ca_cert.as_deref())?;
    seatable::exchange(
        &client,
        &profile.server_url,
        profile.lifetime,
        api_token,
        deadline,
    )
    .await
    // The same words for the spec's 403 and older servers' 404.
    .map_err(|e| match crate::error::kind_of(&e) {
        crate::error::Kind::SeaTable => e.context("the API token in Vault was refused"),
        _ => e,
    })
}

/// The shared level of `--cache vault`: the entry in Vault, refreshed by
/// whichever host wins the check-and-set claim; the others wait for its
/// entry ([`Shared::claim_or_wait`]). `(token, served from the shared entry)`.
///
/// The entry is sealed with a key derived from the API token, so the API
/// token is read first; the exchange then uses the same read.
async fn refresh_shared(
    profile: &Profile,
    shared_at: &SecretRef,
    session: &mut Session<'_>,
    deadline: tokio::time::Instant,
    force: bool,
    stale: &mut Option<BaseToken>,
) -> Result<(BaseToken, bool)> {
    let key = Key::for_shared(profile);
    let api_token = session
        .read_api_token(crate::vault::Wanted::api_token(profile))
        .await?;
    let seal = SealKey::derive(&api_token, &key);
    let shared = Shared::new(shared_at, &key, &profile.vault.addr, &seal);
    let client = &session.client;
    let want = Want {
        refresh_before: profile.refresh_before,
        timeout: profile.timeout,
        force,
    };
    let claimed = match shared.claim_or_wait(client, want, deadline, stale).await? {
        Turn::Fresh(token) => return Ok((token, true)),
        Turn::Unclaimable => {
            warn!(
                "the shared entry keeps changing under this host without a claim or entry it can open (another identity writing it?); exchanging without it"
            );
            return Ok((exchange(profile, &api_token, deadline).await?, false));
        }
        Turn::Claimed(claimed) => claimed,
    };
    debug!("claimed the shared entry; refreshing it");
    match exchange(profile, &api_token, deadline).await {
        Ok(token) => {
            shared.publish(client, &claimed, &token, deadline).await;
            Ok((token, false))
        }
        Err(err) => {
            // Release the claim; a permanent rejection also drops the entry.
            shared
                .release(client, claimed, kind_of(&err) == Kind::SeaTable)
                .await;
            Err(err)
        }
    }
}

/// The profile's API token, read from Vault now and never cached: for the
/// agent, which forwards SeaTable's file endpoints (they take the API token
/// itself) with it. A Vault login is reused as for [`get`].
pub fn read_api_token(profile: &Profile) -> Result<secrecy::SecretString> {
    let cache = Cache::open(&profile.cache)?;
    with_vault(profile, &cache, async |session, _| {
        session
            .read_api_token(crate::vault::Wanted::api_token(profile))
            .await
    })
}

/// Whether two profiles share one cached base token — the same cache key
/// (the agent's reload carries a profile's current token over only then).
pub fn same_token(a: &Profile, b: &Profile) -> bool {
    Key::for_profile(a) == Key::for_profile(b)
}

/// What is cached for a profile, without refreshing it (`status`).
pub struct Peeked {
    /// The backend as `--cache` names it.
    pub backend: &'static str,
    /// The base token: the shared entry with `--cache vault` (read from
    /// Vault), else the local one.
    pub token: Option<BaseToken>,
}

/// The profile's cached base token, as [`get`] would find it, never
/// refreshed.
pub fn peek(profile: &Profile, cache: &Cache) -> Result<Peeked> {
    let Some(shared_at) = &profile.cache.shared else {
        return Ok(Peeked {
            backend: cache.name(),
            token: cache.load_token(&Key::for_profile(profile)),
        });
    };
    let key = Key::for_shared(profile);
    let token = with_vault(profile, cache, async |session, _| {
        let api_token = session
            .read_api_token(crate::vault::Wanted::api_token(profile))
            .await?;
        let seal = SealKey::derive(&api_token, &key);
        let shared = Shared::new(shared_at, &key, &profile.vault.addr, &seal);
        Ok(shared.read(&session.client).await?.token)
    })?;
    Ok(Peeked {
        backend: profile.cache.backend().name(),
        token,
    })
}

/// Drops the cached base token of one profile: the local entry — in every
/// local backend, whatever the profile's is now — then with `--cache vault`
/// the shared one with its KV history, which holds earlier (sealed) tokens;
/// the local one is gone even when Vault cannot be reached (git's `reject`
/// of a refused token).
pub fn erase(profile: &Profile, cache: &Cache) -> Result<Erased> {
    let key = Key::for_profile(profile);
    let here = cache.store.load(key.as_str()).is_some();
    cache.store.remove(key.as_str())?;
    let elsewhere = crate::cache::remove_everywhere(&profile.cache, &key);
    info!(
        backend = cache.name(),
        "erased the cached token of profile {} (and {elsewhere} cached under another backend)",
        profile.name
    );
    erase_shared(profile, cache)?;
    Ok(Erased {
        local: usize::from(here) + elsewhere,
        shared: profile.cache.shared.is_some(),
    })
}

/// What [`erase`] dropped.
pub struct Erased {
    /// Local entries of the profile's key (its backend's, and any other's).
    pub local: usize,
    /// Whether the shared entry in Vault (with its history) was deleted.
    pub shared: bool,
}

/// `erase --all`: every entry of the local backends
/// ([`crate::cache::erase_local_everything`]), then — last, so that the
/// local entries are gone even when Vault cannot be reached — the shared
/// entry of this profile, resolved by `profile` only when the shared tier is
/// on (the rest needs no server or secret configured). The others under the
/// shared path may belong to other teams (whose identities may write it
/// too); they are theirs to erase.
pub fn erase_all(
    settings: &CacheSettings,
    profile: impl FnOnce() -> Result<Profile>,
) -> Result<Erased> {
    let local = crate::cache::erase_local_everything(settings)?;
    if settings.shared.is_some() {
        let profile = profile()?;
        erase_shared(&profile, &Cache::open(&profile.cache)?)?;
    }
    Ok(Erased {
        local,
        shared: settings.shared.is_some(),
    })
}

/// Deletes the profile's shared entry with its KV history.
fn erase_shared(profile: &Profile, cache: &Cache) -> Result<()> {
    if profile.cache.shared.is_none() {
        return Ok(());
    }
    with_vault(profile, cache, async |session, _| {
        erase_shared_with(profile, &session.client).await?;
        info!("erased the shared entry of profile {}", profile.name);
        Ok(())
    })
}

/// Drops the profile's cached base tokens inside a Vault session the
/// caller holds (the token commands, after Vault's token changed): the
/// local entry — in every local backend, whatever the profile's is now —
/// whose failure is only warned about, then the shared one, whose failure
/// is the caller's to report.
pub async fn forget_with(profile: &Profile, cache: &Cache, client: &VaultClient) -> Result<()> {
    let key = Key::for_profile(profile);
    cache.remove(&key);
    crate::cache::remove_everywhere(&profile.cache, &key);
    erase_shared_with(profile, client).await
}

/// The latest expiry of a base token of `api_token` that the profile's
/// cache holds — the local entry, and the shared one with `--cache vault`,
/// read inside a Vault session the caller holds and by `deadline` — before
/// the token commands drop them: SeaTable cannot revoke base tokens (JWTs
/// without an id), so those stay valid until then even after `api_token` is
/// deleted. A shared entry that cannot be read counts as none.
pub async fn cached_until_with(
    profile: &Profile,
    cache: &Cache,
    client: &VaultClient,
    api_token: &secrecy::SecretString,
    deadline: tokio::time::Instant,
) -> Option<u64> {
    let local = cache
        .load_token(&Key::for_profile(profile))
        .map(|t| t.expires_at);
    let Some(shared_at) = &profile.cache.shared else {
        return local;
    };
    let key = Key::for_shared(profile);
    let seal = SealKey::derive(api_token, &key);
    let entry = Shared::new(shared_at, &key, &profile.vault.addr, &seal);
    let shared = match tokio::time::timeout_at(deadline, entry.read(client)).await {
        Ok(Ok(state)) => state.token.map(|t| t.expires_at),
        Ok(Err(e)) => {
            debug!("reading the shared cache entry: {}", one_line(&e));
            None
        }
        Err(_) => {
            debug!("reading the shared cache entry: no answer by the deadline");
            None
        }
    };
    local.max(shared)
}

async fn erase_shared_with(profile: &Profile, client: &VaultClient) -> Result<()> {
    let Some(shared_at) = &profile.cache.shared else {
        return Ok(());
    };
    let key = Key::for_shared(profile);
    crate::cache::shared::erase(client, shared_at, &key, &profile.vault.addr).await
}
