//! The broker: the only place that decides when to use the cache and when
//! to go to Vault and SeaTable (SPEC §2, §6).
//!
//! A fresh cache entry is answered without a runtime, a socket or a Vault
//! read. Otherwise a current-thread tokio runtime does the network work under
//! one deadline (`--timeout`).

use anyhow::Result;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::cache::{self, Key, Store};
use crate::config::Profile;
use crate::error::{Failure, Kind, kind_of, one_line};
use crate::seatable::{self, BaseToken, Freshness};

/// A token and where it came from.
pub struct Outcome {
    pub token: BaseToken,
    /// Served from the cache (fresh, or stale-if-error).
    pub cached: bool,
}

/// The credential for the profile: from cache while fresh, else refreshed.
/// `force` skips the cache lookup (`get --refresh`).
pub fn get(profile: &Profile, force: bool) -> Result<Outcome> {
    let store = cache::open(&profile.cache)?;
    let key = Key::for_profile(profile);
    let now = crate::time::now();
    let mut still_valid = None;
    if !force && let Some(token) = store.load(&key) {
        match token.freshness(now, profile.refresh_before) {
            Freshness::Fresh => {
                debug!(backend = store.name(), "cache hit");
                return Ok(Outcome {
                    token,
                    cached: true,
                });
            }
            Freshness::Refresh => {
                info!(
                    backend = store.name(),
                    "cached token is inside the refresh window; refreshing"
                );
                still_valid = Some(token);
            }
            Freshness::Expired => debug!(backend = store.name(), "cached token has expired"),
        }
    }
    match fetch(profile) {
        Ok(token) => {
            remember(store.as_ref(), &key, &token, now);
            Ok(Outcome {
                token,
                cached: false,
            })
        }
        Err(err) => {
            match kind_of(&err) {
                // The API token is invalid or the base is gone: the cached
                // token will not come back to life.
                Kind::SeaTable => {
                    if let Err(e) = store.remove(&key) {
                        warn!("{}", one_line(&e));
                    }
                }
                Kind::Unavailable => {
                    if let Some(token) = still_valid {
                        warn!(
                            "refresh failed ({}); using the cached token, valid until {}",
                            one_line(&err),
                            crate::time::rfc3339(token.expires_at)
                        );
                        return Ok(Outcome {
                            token,
                            cached: true,
                        });
                    }
                }
                _ => {}
            }
            Err(err)
        }
    }
}

/// Caches a new token unless it is already unusable by the local clock.
fn remember(store: &dyn Store, key: &Key, token: &BaseToken, now: u64) {
    if token.expires_at <= now {
        warn!(
            "SeaTable's token expired at {}, before the local time {}: check this machine's clock; not caching it",
            crate::time::rfc3339(token.expires_at),
            crate::time::rfc3339(now)
        );
        return;
    }
    match store.save(key, token) {
        Ok(()) => debug!(backend = store.name(), "cached the new token"),
        Err(e) => warn!("{}; the token is not cached", one_line(&e)),
    }
}

/// Vault read and SeaTable exchange, under the call's deadline.
fn fetch(profile: &Profile) -> Result<BaseToken> {
    // Secret material (files, a password prompt) is read before the clock starts.
    let login = crate::vault::prepare(&profile.vault.auth)?;
    crate::tls::install_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the network runtime: {e}")))?;
    runtime.block_on(async {
        let deadline = Instant::now() + profile.timeout;
        let work = async {
            let api_token = crate::vault::read_api_token(
                &profile.vault,
                &login,
                &profile.secret,
                &profile.field,
                profile.kv_version,
            )
            .await?;
            let client = seatable::http_client(&profile.server_url, profile.ca_cert.as_deref())?;
            seatable::exchange(&client, &profile.server_url, profile.lifetime, &api_token, deadline).await
        };
        match tokio::time::timeout_at(deadline, work).await {
            Ok(result) => result,
            Err(_) => Err(Failure::unavailable(format!(
                "gave up after {} (--timeout): Vault at {} or SeaTable at {} did not answer in time; try again later",
                crate::time::compact(profile.timeout),
                profile.vault.addr,
                profile.server_url
            ))
            .into()),
        }
    })
}
