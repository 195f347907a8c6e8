//! What the agent knows while it runs: the profiles it serves, each with its
//! local key, its SeaTable upstream and its current base token.
//!
//! A reload (SIGHUP) builds a new [`Profiles`] table and swaps it in;
//! requests in flight keep the [`Served`] they started with.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Result;
use hyper::header::HeaderValue;
use secrecy::ExposeSecret;
use tokio::sync::watch;
use tracing::{debug, info};

use super::metrics::{Metrics, ProfileMetrics};
use super::session::{LocalKey, Presented, Verdict, Verified};
use super::upstream::Upstream;
use crate::config::Profile;
use crate::error::Failure;
use crate::seatable::{BaseContext, BaseToken};

/// The whole agent: shared by every connection.
pub struct Agent {
    /// How clients reach the agent, e.g. `http://127.0.0.1:8799`.
    pub url: String,
    profiles: RwLock<Arc<Profiles>>,
    pub metrics: Metrics,
    /// Bytes of request bodies the proxy may hold at once.
    pub bodies: Arc<tokio::sync::Semaphore>,
}

impl Agent {
    /// `bodies`: the bytes of request bodies the proxy may hold at once.
    pub fn new(url: String, profiles: Profiles, metrics: Metrics, bodies: usize) -> Agent {
        Agent {
            url,
            profiles: RwLock::new(Arc::new(profiles)),
            metrics,
            bodies: Arc::new(tokio::sync::Semaphore::new(bodies)),
        }
    }

    pub fn profiles(&self) -> Arc<Profiles> {
        self.profiles
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn replace(&self, profiles: Profiles) -> Arc<Profiles> {
        let mut slot = self.profiles.write().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *slot, Arc::new(profiles))
    }
}

/// The profiles being served.
pub struct Profiles {
    pub list: Vec<Arc<Served>>,
    /// Sessions verified with these profiles' keys.
    sessions: Verified,
}

impl Profiles {
    pub fn new(list: Vec<Arc<Served>>) -> Profiles {
        Profiles {
            list,
            sessions: Verified::default(),
        }
    }

    /// The profile a session token belongs to, if it is one of ours, signed
    /// with that profile's key and unexpired; else why not.
    pub fn session(&self, token: &str, now: u64) -> Result<&Arc<Served>, Verdict> {
        if let Some((index, exp)) = self.sessions.lookup(token) {
            return if exp > now {
                Ok(&self.list[index])
            } else {
                Err(Verdict::Expired)
            };
        }
        let presented = Presented::read(token).ok_or(Verdict::Invalid)?;
        let (index, served) = self
            .list
            .iter()
            .enumerate()
            .find(|(_, s)| s.name == presented.sub)
            .ok_or(Verdict::Invalid)?;
        match served.key.check(&presented, now) {
            Verdict::Valid => {
                self.sessions.remember(token, index, presented.exp);
                Ok(served)
            }
            refused => Err(refused),
        }
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<Served>> {
        self.list.iter().find(|s| s.name == name)
    }

    /// The profile whose local key `presented` is. Every key is compared,
    /// each in constant time, so the time taken tells nothing about which
    /// key came close.
    pub fn by_key(&self, presented: &[u8]) -> Option<&Arc<Served>> {
        let mut found = None;
        for served in &self.list {
            if served.key.matches(presented) && found.is_none() {
                found = Some(served);
            }
        }
        found
    }
}

/// Forced refreshes (SeaTable said "Token expired." of a token that should
/// have lived on) of one profile are at least this far apart.
pub const MIN_FORCED_INTERVAL: Duration = Duration::from_secs(30);
/// After a forced refresh that failed, the next one waits this long: the
/// failure (Vault or SeaTable down for a moment) is likely over soon, and
/// meanwhile requests are answered 503 rather than each trying again.
pub const FAILED_FORCED_INTERVAL: Duration = Duration::from_secs(5);

/// What became of a forced refresh.
pub enum Forced {
    /// A token to replay with: a new one, or one installed meanwhile.
    Refreshed(Arc<Current>),
    /// The last forced refresh worked less than [`MIN_FORCED_INTERVAL`] ago:
    /// SeaTable says "Token expired." of fresh tokens too.
    TooSoonAfterSuccess,
    /// The last forced refresh failed less than [`FAILED_FORCED_INTERVAL`] ago.
    TooSoonAfterFailure,
}

/// A base token as the proxy uses it.
pub struct Current {
    /// `Token <base token>`, marked sensitive (never printed by `Debug`).
    pub authorization: HeaderValue,
    pub expires_at: u64,
    pub refresh_at: u64,
    pub context: BaseContext,
    /// Bumped whenever the token changes; a request that saw SeaTable reject
    /// generation `g` refreshes only if nobody has replaced `g` meanwhile.
    pub generation: u64,
}

/// One profile being served.
pub struct Served {
    pub name: String,
    pub profile: Arc<Profile>,
    pub key: LocalKey,
    pub upstream: Upstream,
    pub metrics: Arc<ProfileMetrics>,
    token: watch::Sender<Option<Arc<Current>>>,
    /// One refresh at a time per profile in this agent (the broker's lock
    /// file does the same across processes); inside, when the last forced
    /// one was and whether it worked.
    refreshing: tokio::sync::Mutex<Option<(Instant, bool)>>,
    generation: AtomicU64,
    /// Vault reads of the API token in flight for file requests; the rest wait.
    api_token_reads: tokio::sync::Semaphore,
}

/// Vault reads of a profile's API token (for SeaTable's file endpoints) at
/// once: a client uploading many files at once waits its turn rather than
/// making the agent ask Vault for each of them together.
pub const MAX_API_TOKEN_READS: usize = 4;

impl Served {
    pub fn new(
        profile: Profile,
        key: LocalKey,
        upstream: Upstream,
        metrics: Arc<ProfileMetrics>,
        carried: Option<Arc<Current>>,
    ) -> Served {
        let generation = carried.as_ref().map_or(0, |c| c.generation);
        Served {
            name: profile.name.clone(),
            profile: Arc::new(profile),
            key,
            upstream,
            metrics,
            token: watch::channel(carried).0,
            refreshing: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(generation),
            api_token_reads: tokio::sync::Semaphore::new(MAX_API_TOKEN_READS),
        }
    }

    /// The current token, if any (it may be past its expiry).
    pub fn current(&self) -> Option<Arc<Current>> {
        self.token.borrow().clone()
    }

    /// The current token, waiting up to `limit` for the first one.
    pub async fn wait_current(&self, limit: Duration) -> Option<Arc<Current>> {
        let mut rx = self.token.subscribe();
        let waited = tokio::time::timeout(limit, rx.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(token)) => token.clone(),
            _ => None,
        }
    }

    /// Asks the broker for the profile's token (`force`: skip the cache)
    /// and installs it. One at a time; the broker runs on a blocking thread
    /// with its own runtime, as it does for `get`.
    pub async fn refresh(&self, force: bool) -> Result<Arc<Current>> {
        let _one = self.refreshing.lock().await;
        self.refresh_locked(force).await
    }

    /// After SeaTable said "Token expired." for generation `seen`: one
    /// forced refresh — unless another request or the refresher has already
    /// replaced that token, which is then used as it is. Not sooner than
    /// [`MIN_FORCED_INTERVAL`] after the last forced refresh that worked (a
    /// server that says so of every token would otherwise make each client
    /// request an exchange), nor [`FAILED_FORCED_INTERVAL`] after one that
    /// failed.
    pub async fn refresh_after(&self, seen: u64) -> Result<Forced> {
        let mut last_forced = self.refreshing.lock().await;
        if let Some(current) = self.current()
            && current.generation > seen
        {
            debug!(profile = %self.name, "the token was replaced meanwhile; replaying with it");
            return Ok(Forced::Refreshed(current));
        }
        match *last_forced {
            Some((at, true)) if at.elapsed() < MIN_FORCED_INTERVAL => {
                return Ok(Forced::TooSoonAfterSuccess);
            }
            Some((at, false)) if at.elapsed() < FAILED_FORCED_INTERVAL => {
                return Ok(Forced::TooSoonAfterFailure);
            }
            _ => {}
        }
        let refreshed = self.refresh_locked(true).await;
        *last_forced = Some((Instant::now(), refreshed.is_ok()));
        refreshed.map(Forced::Refreshed)
    }

    /// `Token <API token>` for one request to SeaTable's file endpoints,
    /// which take the API token itself: read from Vault for this request
    /// (the broker's [`crate::broker::read_api_token`], on a blocking
    /// thread as a refresh is), never kept — a rotation is picked up at
    /// once. The header is built by the request primitive, as the
    /// exchange's is: a zeroed buffer, marked sensitive.
    pub async fn api_token_authorization(&self) -> Result<HeaderValue> {
        let _turn = self
            .api_token_reads
            .acquire()
            .await
            .map_err(|e| Failure::internal(format!("the API token's turn failed: {e}")))?;
        let profile = self.profile.clone();
        let token = tokio::task::spawn_blocking(move || crate::broker::read_api_token(&profile))
            .await
            .map_err(|e| Failure::internal(format!("the Vault read task failed: {e}")))??;
        let header = crate::seatable::request::authorization(token.expose_secret());
        drop(token);
        Ok(header.ok_or_else(|| {
            Failure::internal("the API token in Vault holds characters a header cannot carry")
        })?)
    }

    async fn refresh_locked(&self, force: bool) -> Result<Arc<Current>> {
        let profile = self.profile.clone();
        let outcome = tokio::task::spawn_blocking(move || crate::broker::get(&profile, force))
            .await
            .map_err(|e| Failure::internal(format!("the refresh task failed: {e}")))??;
        self.metrics.refreshes.fetch_add(1, Ordering::Relaxed);
        Ok(self.install(&outcome.token, outcome.cached))
    }

    fn install(&self, token: &BaseToken, cached: bool) -> Arc<Current> {
        // Built by the request primitive, as the exchange builds its own
        // header (a zeroed buffer, marked sensitive): the header value is
        // the only copy that lives on.
        let authorization = crate::seatable::request::authorization(token.token.expose_secret())
            // The broker checked the token's characters; unreachable in practice.
            .unwrap_or_else(|| {
                let mut v = HeaderValue::from_static("Token invalid");
                v.set_sensitive(true);
                v
            });
        let refresh_at = token.refresh_at(self.profile.refresh_before);
        let same = self
            .current()
            .is_some_and(|c| c.authorization == authorization);
        let generation = if same {
            self.generation.load(Ordering::SeqCst)
        } else {
            self.generation.fetch_add(1, Ordering::SeqCst) + 1
        };
        let current = Arc::new(Current {
            authorization,
            expires_at: token.expires_at,
            refresh_at,
            context: token.context.clone(),
            generation,
        });
        self.metrics
            .expires_at
            .store(token.expires_at, Ordering::Relaxed);
        if !same {
            info!(
                profile = %self.name,
                from = if cached { "cache" } else { "SeaTable" },
                expires_at = %crate::time::rfc3339(token.expires_at),
                "new base token"
            );
        }
        self.token.send_replace(Some(current.clone()));
        current
    }
}
