//! The `vault` tier: one entry per cache key in a KV v2 secret that every
//! host of a deployment reads, written with check-and-set.
//!
//! ```json
//! {"v": 2, "entry": "<sealed entry>" | null, "claim": "<sealed claim>" | null}
//! ```
//! Both records are sealed ([`super::seal`]) with a key only identities that
//! can read the API token can derive: whoever else may write the path can
//! neither read a base token nor plant one, and a record that does not open
//! is a miss.
//!
//! A host that finds the entry missing or due for refresh writes a *claim*
//! with check-and-set; exactly one such write succeeds, so exactly one host
//! exchanges while the others wait for (and read) its entry. A claim lapses
//! at its `until`, and in any case `timeout` after Vault stored it, so a
//! claimer that dies — or a claim written with a far-off `until` — holds
//! nobody up for longer than a call may take.

use std::time::Duration;

use anyhow::Result;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};
use vaultrs::api::kv2::requests::{
    DeleteSecretMetadataRequest, ReadSecretMetadataRequest, ReadSecretRequest, SetSecretRequest,
    SetSecretRequestOptions,
};
use vaultrs::client::VaultClient;
use vaultrs::error::ClientError;

use super::seal::{Kind, SealKey};
use super::{Key, entry};
use crate::config::SecretRef;
use crate::error::Failure;
use crate::retry::Policy;
use crate::seatable::{BaseToken, Freshness};
use crate::vault::api;

/// The format of the KV data; older formats are not read (they were not
/// sealed), so an entry from an old version is a miss.
const FORMAT: u64 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    pub holder: String,
    /// Unix seconds after which the claim no longer counts.
    pub until: u64,
}

/// What the shared secret holds now.
pub struct State {
    /// KV version, for the next check-and-set (0: the secret does not exist).
    pub version: u64,
    /// When Vault stored that version (Unix seconds, Vault's clock).
    pub written_at: Option<u64>,
    pub token: Option<BaseToken>,
    pub claim: Option<Claim>,
}

impl State {
    /// The claim, if it still counts at `now`: until its `until`, and never
    /// longer than `timeout` after Vault stored it.
    pub fn live_claim(&self, now: u64, timeout: std::time::Duration) -> Option<&Claim> {
        let claim = self.claim.as_ref()?;
        let cap = self
            .written_at
            .map_or(now, |at| at)
            .saturating_add(timeout.as_secs().max(1));
        (now < claim.until.min(cap)).then_some(claim)
    }
}

/// How a settled write ended.
pub enum Written {
    /// It is in Vault, as this version.
    Landed(u64),
    /// Another write won; this is the state after it.
    Lost(Box<State>),
}

/// What the refresh of a call asks of the shared entry.
#[derive(Clone, Copy)]
pub struct Want {
    /// The profile's refresh window.
    pub refresh_before: Duration,
    /// `--timeout`: how long a claim lasts at most.
    pub timeout: Duration,
    /// `get --refresh`: a fresh entry is not enough.
    pub force: bool,
}

/// Whose turn it is to exchange, as [`Shared::claim_or_wait`] found it.
pub enum Turn {
    /// The entry is fresh: no one needs to exchange.
    Fresh(BaseToken),
    /// This host holds the claim: it exchanges, then publishes or releases.
    Claimed(Claimed),
    /// The entry keeps changing under this host without a claim or entry
    /// it can open — another identity writing the path: exchange without it.
    Unclaimable,
}

/// A claim this host holds on the shared entry.
pub struct Claimed {
    /// The entry's version with this host's claim in it.
    version: u64,
    /// The token the entry held when it was claimed (kept on release).
    held: Option<BaseToken>,
}

/// The KV data, as written.
#[derive(Serialize, Deserialize)]
struct Data {
    v: u64,
    entry: Option<String>,
    claim: Option<String>,
}

pub struct Shared<'a> {
    at: SecretRef,
    key: &'a Key,
    addr: &'a str,
    seal: &'a SealKey,
}

fn request<E>(built: Result<E, impl std::fmt::Display>) -> Result<E, Failure> {
    built.map_err(|e| Failure::internal(format!("shared cache request: {e}")))
}

impl<'a> Shared<'a> {
    /// The entry of `key` under the `shared_cache` path, sealed with `seal`.
    pub fn new(
        shared_cache: &SecretRef,
        key: &'a Key,
        addr: &'a str,
        seal: &'a SealKey,
    ) -> Shared<'a> {
        Shared {
            at: SecretRef {
                mount: shared_cache.mount.clone(),
                path: format!("{}/{}", shared_cache.path, key.as_str()),
            },
            key,
            addr,
            seal,
        }
    }

    fn fail(&self, e: ClientError, doing: &str) -> Failure {
        crate::vault::classify(
            e,
            self.addr,
            &format!("{doing} the shared cache at {}", self.at),
            &format!(
                "give the identity read, create and update on {}/data/{}/*",
                self.at.mount,
                self.at.path.rsplit_once('/').map_or("", |(p, _)| p)
            ),
            &format!(
                "no KV v2 mount {} for the shared cache: check shared_cache",
                self.at.mount
            ),
        )
    }

    pub async fn read(&self, client: &VaultClient) -> Result<State> {
        match self.read_data(client).await? {
            Some(state) => Ok(state),
            None => {
                // Missing — or its latest version deleted by hand, when the
                // next write must name the current version. The metadata may
                // also be of a claim written since the read above: read the
                // data again, after the metadata, so that a claim is never
                // overwritten with a version number that skipped it.
                let meta = ReadSecretMetadataRequest::builder()
                    .mount(&self.at.mount)
                    .path(&self.at.path)
                    .build();
                let version = match api::exec(client, request(meta)?).await {
                    Ok(meta) => meta.current_version,
                    Err(_) => 0,
                };
                if version > 0
                    && let Some(state) = self.read_data(client).await?
                {
                    return Ok(state);
                }
                Ok(State {
                    version,
                    written_at: None,
                    token: None,
                    claim: None,
                })
            }
        }
    }

    /// The current version's data; `None` when there is none (404).
    async fn read_data(&self, client: &VaultClient) -> Result<Option<State>> {
        let read = ReadSecretRequest::builder()
            .mount(&self.at.mount)
            .path(&self.at.path)
            .build();
        match api::exec(client, request(read)?).await {
            Ok(response) => {
                let (token, claim) = open(response.data, self.key, self.seal);
                Ok(Some(State {
                    version: response.metadata.version,
                    written_at: crate::time::parse_rfc3339(&response.metadata.created_time),
                    token,
                    claim,
                }))
            }
            Err(ClientError::APIError { code: 404, .. }) => Ok(None),
            Err(e) => Err(self.fail(e, "reading").into()),
        }
    }

    /// Reads until the state is no longer `version` — after a check-and-set
    /// on `version` was refused, the node this host talks to may not have
    /// replicated the write that won yet (standbys answer reads
    /// themselves). A lower version (the entry deleted meanwhile) is a
    /// change too. Transient failures are retried; all bounded by
    /// `deadline`.
    pub async fn read_newer_than(
        &self,
        client: &VaultClient,
        version: u64,
        deadline: tokio::time::Instant,
    ) -> Result<State> {
        let mut polls = 0;
        loop {
            let state = crate::retry::transient(deadline, "reading the shared cache", async || {
                self.read(client).await
            })
            .await?;
            if state.version != version {
                return Ok(state);
            }
            let pause = Policy::NEWER_VERSION.delay(polls);
            polls += 1;
            if tokio::time::Instant::now() + pause >= deadline {
                return Err(Failure::unavailable(format!(
                    "Vault at {} did not show the shared entry's newer version in time; try again later",
                    self.addr
                ))
                .into());
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Writes with check-and-set on `version` and settles what happened,
    /// also when an answer was lost: a write that failed for a transient
    /// reason (a leader lost while committing, a connection reset) may have
    /// landed, so it is tried again — the same check-and-set cannot land
    /// twice — and a refusal after such a try is judged by reading the
    /// newer state: if `ours` says it is what this host wrote, it landed.
    pub async fn write_settled(
        &self,
        client: &VaultClient,
        version: u64,
        token: Option<&BaseToken>,
        claim: Option<&Claim>,
        ours: impl Fn(&State) -> bool,
        deadline: tokio::time::Instant,
    ) -> Result<Written> {
        // A try after a failed one is ambiguous: the failed one may have
        // landed.
        let mut tries = 0;
        let written = crate::retry::transient(deadline, "writing the shared cache", async || {
            tries += 1;
            self.write(client, version, token, claim).await
        })
        .await?;
        match written {
            Some(landed) => Ok(Written::Landed(landed)),
            None => {
                let newer = self.read_newer_than(client, version, deadline).await?;
                if tries > 1 && ours(&newer) {
                    tracing::debug!("an earlier try of the write had landed");
                    return Ok(Written::Landed(newer.version));
                }
                Ok(Written::Lost(Box::new(newer)))
            }
        }
    }

    /// Writes the entry and claim if the secret is still at `version`.
    /// `Ok(None)` when another writer got there first.
    pub async fn write(
        &self,
        client: &VaultClient,
        version: u64,
        token: Option<&BaseToken>,
        claim: Option<&Claim>,
    ) -> Result<Option<u64>> {
        let data = sealed_data(self.key, self.seal, token, claim);
        let cas = u32::try_from(version).unwrap_or(u32::MAX);
        let set = SetSecretRequest::builder()
            .mount(&self.at.mount)
            .path(&self.at.path)
            .data(data)
            .options(SetSecretRequestOptions { cas })
            .build();
        match api::exec(client, request(set)?).await {
            Ok(meta) => Ok(Some(meta.version)),
            Err(ClientError::APIError { code: 400, errors })
                if errors.iter().any(|e| e.contains("check-and-set")) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.fail(e, "writing").into()),
        }
    }

    /// Reads the entry until it is fresh (a hit), this host holds the claim
    /// to refresh it, or it is found unclaimable; while another host's
    /// claim is live, waits for its entry, polling with a growing,
    /// jittered pause. `stale` is set to the entry's token whenever it is
    /// still valid but due (or fresh and `force`d): what a failed refresh
    /// may serve.
    ///
    /// Reads may come from a standby that has not seen the latest write,
    /// and writes may fail without saying whether they landed (a leader lost
    /// while committing): a refused or failed write is settled by reading
    /// the newer state ([`Shared::write_settled`]), never guessed.
    pub async fn claim_or_wait(
        &self,
        client: &VaultClient,
        want: Want,
        deadline: tokio::time::Instant,
        stale: &mut Option<BaseToken>,
    ) -> Result<Turn> {
        let me = holder_id();
        let mut polls = 0;
        let mut state = crate::retry::transient(deadline, "reading the shared cache", async || {
            self.read(client).await
        })
        .await?;
        // Check-and-set lost to writes that left nothing this host can open —
        // no claim, no entry: another identity scribbling on the path.
        let mut scribbled = 0;
        loop {
            let now = crate::time::now();
            *stale = None;
            if let Some(token) = state.token.as_ref() {
                match token.freshness(now, want.refresh_before) {
                    Freshness::Fresh if !want.force => {
                        debug!("shared cache hit");
                        return Ok(Turn::Fresh(clone_token(token)));
                    }
                    Freshness::Fresh | Freshness::Refresh => *stale = Some(clone_token(token)),
                    Freshness::Expired => {}
                }
            }
            if let Some(claim) = state.live_claim(now, want.timeout)
                && claim.holder != me
            {
                debug!(holder = %claim.holder, "another host is refreshing the shared entry; waiting");
                let pause = Policy::SHARED_CLAIM.ceiling(polls);
                polls += 1;
                if tokio::time::Instant::now() + pause >= deadline {
                    return Err(Failure::unavailable(format!(
                        "{} has been refreshing the shared entry for too long; try again later",
                        claim.holder
                    ))
                    .into());
                }
                tokio::time::sleep(Policy::SHARED_CLAIM.jitter.draw(pause)).await;
                state = crate::retry::transient(deadline, "reading the shared cache", async || {
                    self.read(client).await
                })
                .await?;
                continue;
            }
            let claim = Claim {
                holder: me.clone(),
                until: now + want.timeout.as_secs().max(1),
            };
            let mine = |s: &State| s.claim.as_ref().is_some_and(|c| c.holder == me);
            let written = self
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
                Ok(Written::Landed(version)) => {
                    return Ok(Turn::Claimed(Claimed {
                        version,
                        held: state.token,
                    }));
                }
                Ok(Written::Lost(newer)) => {
                    if newer.token.is_none() && newer.live_claim(now, want.timeout).is_none() {
                        scribbled += 1;
                    }
                    if scribbled >= 3 {
                        return Ok(Turn::Unclaimable);
                    }
                    debug!("another host claimed the shared entry first");
                    state = *newer;
                }
                // The entry would not settle in time: availability over
                // exactly-once.
                Err(e)
                    if crate::error::is_transient(&e) && tokio::time::Instant::now() < deadline =>
                {
                    warn!("{}", crate::error::one_line(&e));
                    return Ok(Turn::Unclaimable);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes the token this host refreshed under its claim into the entry
    /// (the claim goes with it). A failure is only warned about: the token
    /// is good, others refresh on their own.
    pub async fn publish(
        &self,
        client: &VaultClient,
        claimed: &Claimed,
        token: &BaseToken,
        deadline: tokio::time::Instant,
    ) {
        let published = |s: &State| {
            s.token
                .as_ref()
                .is_some_and(|t| t.token.expose_secret() == token.token.expose_secret())
        };
        match self
            .write_settled(
                client,
                claimed.version,
                Some(token),
                None,
                published,
                deadline,
            )
            .await
        {
            Ok(Written::Landed(_)) => debug!("published the new token to the shared cache"),
            Ok(Written::Lost(_)) => {
                warn!("the shared cache changed while refreshing; the new token was not published")
            }
            Err(e) => warn!(
                "{}; the new token was not published",
                crate::error::one_line(&e)
            ),
        }
    }

    /// Gives the claim up after a failed refresh, keeping the entry's token
    /// unless `drop_entry` (SeaTable rejected the API token for good).
    pub async fn release(&self, client: &VaultClient, claimed: Claimed, drop_entry: bool) {
        let keep = if drop_entry {
            None
        } else {
            claimed.held.as_ref()
        };
        let _ = self.write(client, claimed.version, keep, None).await;
    }
}

/// What a shared secret's data holds for `key`: the entry and the claim,
/// each only if it opens with `seal` and parses. Anything else — an old
/// unsealed format, a record sealed by someone else, garbage — is nothing.
pub fn open(
    data: serde_json::Value,
    key: &Key,
    seal: &SealKey,
) -> (Option<BaseToken>, Option<Claim>) {
    let Some(data) = serde_json::from_value::<Data>(data)
        .ok()
        .filter(|d| d.v == FORMAT)
    else {
        return (None, None);
    };
    let token = data
        .entry
        .as_deref()
        .and_then(|s| seal.open(Kind::Entry, s))
        .and_then(|plain| entry::decode(key, &plain));
    let claim = data
        .claim
        .as_deref()
        .and_then(|s| seal.open(Kind::Claim, s))
        .and_then(|plain| serde_json::from_slice(&plain).ok());
    (token, claim)
}

/// The data written for an entry and a claim (the inverse of [`open`]).
pub fn sealed_data(
    key: &Key,
    seal: &SealKey,
    token: Option<&BaseToken>,
    claim: Option<&Claim>,
) -> serde_json::Value {
    let data = Data {
        v: FORMAT,
        entry: token.map(|t| seal.seal(Kind::Entry, &entry::encode(key, t))),
        claim: claim.map(|c| {
            let plain = serde_json::to_vec(c).unwrap_or_default();
            seal.seal(Kind::Claim, &plain)
        }),
    };
    serde_json::to_value(&data).unwrap_or_default()
}

/// Deletes the entry of `key` with every version of it: KV v2 keeps old
/// versions, and those held base tokens too.
pub async fn erase(
    client: &VaultClient,
    shared_cache: &SecretRef,
    key: &Key,
    addr: &str,
) -> Result<()> {
    let at = SecretRef {
        mount: shared_cache.mount.clone(),
        path: format!("{}/{}", shared_cache.path, key.as_str()),
    };
    destroy(client, &at, addr).await
}

/// Deletes a KV v2 secret's metadata, and with it all its versions.
async fn destroy(client: &VaultClient, at: &SecretRef, addr: &str) -> Result<()> {
    let delete = DeleteSecretMetadataRequest::builder()
        .mount(&at.mount)
        .path(&at.path)
        .build();
    match api::exec_empty(client, request(delete)?).await {
        Ok(()) | Err(ClientError::APIError { code: 404, .. }) => Ok(()),
        Err(e) => Err(crate::vault::classify(
            e,
            addr,
            &format!("erasing the shared cache entry {at}"),
            &format!(
                "erasing needs delete on {}/metadata/{}",
                at.mount,
                at.path.rsplit_once('/').map_or("", |(p, _)| p)
            ),
            "no shared cache",
        )
        .into()),
    }
}

/// Who is claiming: host, process and a nonce, for the claim record.
fn holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut nonce = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce);
    format!(
        "{}:{}:{:08x}",
        host.trim(),
        std::process::id(),
        u32::from_le_bytes(nonce)
    )
}

fn clone_token(t: &BaseToken) -> BaseToken {
    BaseToken {
        token: secrecy::SecretString::from(t.token.expose_secret().to_owned()),
        expires_at: t.expires_at,
        fetched_at: t.fetched_at,
        context: t.context.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(written_at: Option<u64>, until: u64) -> State {
        State {
            version: 3,
            written_at,
            token: None,
            claim: Some(Claim {
                holder: "h".into(),
                until,
            }),
        }
    }

    #[test]
    fn a_claim_counts_until_its_until_and_at_most_timeout_after_it_was_written() {
        let t = Duration::from_secs(30);
        assert!(state(Some(1000), 1030).live_claim(1029, t).is_some());
        assert!(state(Some(1000), 1030).live_claim(1030, t).is_none());
        // A far-off `until` is cut at written + timeout.
        let far = state(Some(1000), 4_102_444_800);
        assert!(far.live_claim(1029, t).is_some());
        assert!(far.live_claim(1030, t).is_none());
        // Without Vault's time the reader's own clock bounds it.
        assert!(state(None, 4_102_444_800).live_claim(5000, t).is_some());
        assert!(state(None, 1030).live_claim(1030, t).is_none());
        let none = State {
            claim: None,
            ..state(Some(1000), 0)
        };
        assert!(none.live_claim(0, t).is_none());
    }

    #[test]
    fn data_format_is_pinned() {
        let d = Data {
            v: FORMAT,
            entry: Some("AAAA".into()),
            claim: None,
        };
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"v":2,"entry":"AAAA","claim":null}"#
        );
        // Unknown fields are ignored; an old, unsealed format is not this one.
        let back: Data =
            serde_json::from_str(r#"{"v":2,"entry":null,"claim":"x","future":1}"#).unwrap();
        assert_eq!((back.v, back.claim.as_deref()), (2, Some("x")));
        assert!(serde_json::from_str::<Data>(r#"{"entry":{"token":"t"},"claim":null}"#).is_err());
    }
}
