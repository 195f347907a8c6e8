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

use crate::cache::seal::SealKey;
use crate::cache::shared::{Claim, Shared, State, Written, holder_id};
use crate::cache::{Cache, Key};
use crate::cli::CacheBackend;
use crate::config::Profile;
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
    let cache = Cache::open(&profile.cache)?;
    let key = Key::for_profile(profile);
    let mut stale = None;
    if !force {
        match look(&cache, &key, profile) {
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
    if !force && let Look::Fresh(token) = look(&cache, &key, profile) {
        debug!("another process refreshed the token while we waited");
        return Ok(Outcome::cached(token));
    }
    let mut stale_shared = None;
    let result = match &profile.cache.shared {
        Some(shared_at) if profile.cache.backend == CacheBackend::Vault => {
            let stale_shared = &mut stale_shared;
            with_vault(profile, &cache, async |session, deadline| {
                refresh_shared(profile, shared_at, session, deadline, force, stale_shared).await
            })
        }
        _ => with_vault(profile, &cache, async |session, deadline| {
            let api_token = session
                .read_api_token(&profile.secret, &profile.field, profile.kv_version)
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
/// password prompt) is read before the clock starts.
fn with_vault<T>(
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
/// entry. `(token, served from the shared entry)`.
///
/// The entry is sealed with a key derived from the API token, so the API
/// token is read first; the exchange then uses the same read. Reads may come
/// from a standby that has not seen the latest write, and writes may fail
/// without saying whether they landed (a leader lost while committing): a
/// refused or failed write is settled by reading the newer state
/// ([`Shared::write_settled`]), never guessed.
async fn refresh_shared(
    profile: &Profile,
    shared_at: &crate::config::SecretRef,
    session: &mut Session<'_>,
    deadline: tokio::time::Instant,
    force: bool,
    stale: &mut Option<BaseToken>,
) -> Result<(BaseToken, bool)> {
    let key = Key::for_shared(profile);
    let api_token = session
        .read_api_token(&profile.secret, &profile.field, profile.kv_version)
        .await?;
    let seal = SealKey::derive(&api_token, &key);
    let shared = Shared::new(shared_at, &key, &profile.vault.addr, &seal);
    let client = &session.client;
    let me = holder_id();
    let mut pause = Duration::from_millis(50);
    let mut state = crate::retry::transient(deadline, "reading the shared cache", async || {
        shared.read(client).await
    })
    .await?;
    // Check-and-set lost to writes that left nothing this host can open —
    // no claim, no entry: another identity scribbling on the path.
    let mut scribbled = 0;
    let claimed = loop {
        let now = crate::time::now();
        *stale = None;
        if let Some(token) = state.token.as_ref() {
            match token.freshness(now, profile.refresh_before) {
                Freshness::Fresh if !force => {
                    debug!("shared cache hit");
                    return Ok((clone_token(token), true));
                }
                Freshness::Fresh | Freshness::Refresh => *stale = Some(clone_token(token)),
                Freshness::Expired => {}
            }
        }
        if let Some(claim) = state.live_claim(now, profile.timeout)
            && claim.holder != me
        {
            debug!(holder = %claim.holder, "another host is refreshing the shared entry; waiting");
            if tokio::time::Instant::now() + pause >= deadline {
                return Err(Failure::unavailable(format!(
                    "{} has been refreshing the shared entry for too long; try again later",
                    claim.holder
                ))
                .into());
            }
            tokio::time::sleep(jitter(pause)).await;
            pause = (pause * 2).min(Duration::from_millis(500));
            state = crate::retry::transient(deadline, "reading the shared cache", async || {
                shared.read(client).await
            })
            .await?;
            continue;
        }
        let claim = Claim {
            holder: me.clone(),
            until: now + profile.timeout.as_secs().max(1),
        };
        let mine = |s: &State| s.claim.as_ref().is_some_and(|c| c.holder == me);
        let written = shared
            .write_settled(
                client,
                state.version,
                state.token.as_ref(),
                Some(&claim),
                mine,
                deadline,
            )
            .await;
        match written {
            Ok(Written::Landed(version)) => break Some(version),
            Ok(Written::Lost(newer)) => {
                if newer.token.is_none() && newer.live_claim(now, profile.timeout).is_none() {
                    scribbled += 1;
                }
                if scribbled >= 3 {
                    break None;
                }
                debug!("another host claimed the shared entry first");
                state = *newer;
            }
            // The entry would not settle in time: availability over
            // exactly-once.
            Err(e) if crate::error::is_transient(&e) && tokio::time::Instant::now() < deadline => {
                warn!("{}", one_line(&e));
                break None;
            }
            Err(e) => return Err(e),
        }
    };
    let Some(claimed) = claimed else {
        warn!(
            "the shared entry keeps changing under this host without a claim or entry it can open (another identity writing it?); exchanging without it"
        );
        return Ok((exchange(profile, &api_token, deadline).await?, false));
    };
    debug!("claimed the shared entry; refreshing it");
    let refreshed = exchange(profile, &api_token, deadline).await;
    match refreshed {
        Ok(token) => {
            let published = |s: &State| {
                s.token.as_ref().is_some_and(|t| {
                    use secrecy::ExposeSecret;
                    t.token.expose_secret() == token.token.expose_secret()
                })
            };
            match shared
                .write_settled(client, claimed, Some(&token), None, published, deadline)
                .await
            {
                Ok(Written::Landed(_)) => debug!("published the new token to the shared cache"),
                Ok(Written::Lost(_)) => warn!(
                    "the shared cache changed while refreshing; the new token was not published"
                ),
                Err(e) => warn!("{}; the new token was not published", one_line(&e)),
            }
            Ok((token, false))
        }
        Err(err) => {
            // Release the claim; a permanent rejection also drops the entry.
            let keep = if kind_of(&err) == Kind::SeaTable {
                None
            } else {
                state.token.as_ref()
            };
            let _ = shared.write(client, claimed, keep, None).await;
            Err(err)
        }
    }
}

/// Spreads waiting hosts' polls: 75–125 % of `base`.
fn jitter(base: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut byte);
    base.mul_f64(0.75 + f64::from(byte[0]) / 510.0)
}

fn clone_token(t: &BaseToken) -> BaseToken {
    use secrecy::ExposeSecret;
    BaseToken {
        token: secrecy::SecretString::from(t.token.expose_secret().to_owned()),
        expires_at: t.expires_at,
        fetched_at: t.fetched_at,
        context: t.context.clone(),
    }
}

/// The shared entry of the profile, without refreshing it (`status`).
pub fn peek_shared(profile: &Profile, cache: &Cache) -> Result<Option<BaseToken>> {
    let Some(shared_at) = &profile.cache.shared else {
        return Ok(None);
    };
    let key = Key::for_shared(profile);
    with_vault(profile, cache, async |session, _| {
        let api_token = session
            .read_api_token(&profile.secret, &profile.field, profile.kv_version)
            .await?;
        let seal = SealKey::derive(&api_token, &key);
        let shared = Shared::new(shared_at, &key, &profile.vault.addr, &seal);
        Ok(shared.read(&session.client).await?.token)
    })
}

/// Deletes the profile's shared entry with its KV history, which holds
/// earlier (sealed) tokens.
pub fn erase_shared(profile: &Profile, cache: &Cache) -> Result<()> {
    let Some(shared_at) = &profile.cache.shared else {
        return Ok(());
    };
    with_vault(profile, cache, async |session, _| {
        let key = Key::for_shared(profile);
        crate::cache::shared::erase(&session.client, shared_at, &key, &profile.vault.addr).await?;
        info!("erased the shared entry of profile {}", profile.name);
        Ok(())
    })
}
