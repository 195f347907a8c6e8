//! The one retry engine of the network clients — the exchange, the account
//! API, Vault reads and logins, the shared tier's writes, the token
//! commands' deletes — and the waits of the loops that poll: how a wait
//! grows ([`Policy`]), how much of it is drawn at random ([`Jitter`]), and
//! the server's own hints (`Retry-After`, `x-ratelimit-reset`). Every wait is
//! bounded by the call's deadline.

use std::time::Duration;

use tokio::time::Instant;

/// How the waits between tries grow: the n-th wait's ceiling is
/// `min(base · 2ⁿ, max)`, of which [`Jitter`] draws the wait.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    pub base: Duration,
    pub max: Duration,
    pub jitter: Jitter,
}

/// How much of a wait's ceiling is drawn at random. Spreading the waits
/// keeps a fleet of helpers that failed together from retrying in lockstep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jitter {
    /// The ceiling itself.
    None,
    /// Uniform in `[ceiling / 2, ceiling)`: exponential backoff with "full
    /// jitter" kept from collapsing to nothing.
    UpperHalf,
    /// Uniform in `[0.75, 1.25) · ceiling`: polls of hosts waiting for one
    /// another.
    Around,
    /// Uniform in `[0, ceiling)`: a spread after a moment many agree on.
    Full,
}

impl Jitter {
    /// A wait drawn from `ceiling`.
    pub fn draw(self, ceiling: Duration) -> Duration {
        match self {
            Jitter::None => ceiling,
            Jitter::UpperHalf => {
                let half = ceiling / 2;
                half + half.mul_f64(random_unit())
            }
            Jitter::Around => ceiling.mul_f64(0.75 + random_unit() / 2.0),
            Jitter::Full => ceiling.mul_f64(random_unit()),
        }
    }
}

impl Policy {
    /// The network clients': 100 ms, 200 ms, 400 ms … at most 5 s, each
    /// drawn from the upper half.
    pub const NETWORK: Policy = Policy {
        base: Duration::from_millis(100),
        max: Duration::from_secs(5),
        jitter: Jitter::UpperHalf,
    };

    /// The agent's refresher after failed refreshes: 1 s, 2 s, 4 s … at
    /// most 60 s, each drawn from the upper half.
    pub const REFRESHER: Policy = Policy {
        base: Duration::from_secs(1),
        max: Duration::from_secs(60),
        jitter: Jitter::UpperHalf,
    };

    /// Hosts waiting for the one that claimed the shared entry: polls from
    /// 50 ms to 500 ms, 75–125 % each.
    pub const SHARED_CLAIM: Policy = Policy {
        base: Duration::from_millis(50),
        max: Duration::from_millis(500),
        jitter: Jitter::Around,
    };

    /// Reading until a standby shows a newer version of the shared entry:
    /// 10 ms to 200 ms.
    pub const NEWER_VERSION: Policy = Policy {
        base: Duration::from_millis(10),
        max: Duration::from_millis(200),
        jitter: Jitter::None,
    };

    /// The ceiling of the wait after `waits` earlier ones.
    pub fn ceiling(&self, waits: u32) -> Duration {
        self.base
            .saturating_mul(1u32 << waits.min(16))
            .min(self.max)
    }

    /// The wait after `waits` earlier ones, jitter drawn.
    pub fn delay(&self, waits: u32) -> Duration {
        self.jitter.draw(self.ceiling(waits))
    }

    /// Runs `op` until `classify` says its outcome is done or final, or the
    /// deadline leaves no room for the next wait — the policy's, or the
    /// server's hint when the verdict carries one. Each retry is warned
    /// about, `what` first (empty when the failures name what was done).
    pub async fn run<O, T>(
        &self,
        deadline: Instant,
        what: &str,
        mut classify: impl FnMut(O) -> Verdict<T>,
        mut op: impl AsyncFnMut() -> O,
    ) -> Result<T, Stop> {
        let mut waits = 0;
        loop {
            let (failure, hint) = match classify(op().await) {
                Verdict::Done(value) => return Ok(value),
                Verdict::Final(failure) => return Err(Stop::Final(failure)),
                Verdict::Again(failure, hint) => (failure, hint),
            };
            // A server's hint is its own wait: the policy's next is not used up.
            let delay = match hint {
                Some(hint) => hint,
                None => {
                    let delay = self.delay(waits);
                    waits += 1;
                    delay
                }
            };
            if Instant::now() + delay >= deadline {
                return Err(Stop::OutOfTime(failure));
            }
            tracing::warn!("{}", warning(what, &failure, delay));
            tokio::time::sleep(delay).await;
        }
    }
}

/// The warning before a retry: `what` (when the failure does not say it),
/// the failure, the wait.
fn warning(what: &str, failure: &anyhow::Error, delay: Duration) -> String {
    let said = crate::error::one_line(failure);
    let ms = delay.as_millis();
    if what.is_empty() {
        format!("{said}; retrying in {ms} ms")
    } else {
        format!("{what}: {said}; retrying in {ms} ms")
    }
}

/// What one try's outcome means, as the caller judges it.
pub enum Verdict<T> {
    Done(T),
    /// Worth another try, after the server's requested wait if it gave one.
    Again(anyhow::Error, Option<Duration>),
    /// Not worth another try.
    Final(anyhow::Error),
}

/// Why [`Policy::run`] stopped without a result.
#[derive(Debug)]
pub enum Stop {
    /// A failure `classify` judged final.
    Final(anyhow::Error),
    /// The deadline leaves no room for another try after this failure.
    OutOfTime(anyhow::Error),
}

impl Stop {
    /// The failure, however the run stopped.
    pub fn into_error(self) -> anyhow::Error {
        match self {
            Stop::Final(e) | Stop::OutOfTime(e) => e,
        }
    }
}

impl From<Stop> for anyhow::Error {
    fn from(stop: Stop) -> anyhow::Error {
        stop.into_error()
    }
}

/// The classification most operations need: a failure is worth another try
/// when it is transient ([`crate::error::is_transient`]).
pub fn transient_failures<T>(outcome: anyhow::Result<T>) -> Verdict<T> {
    match outcome {
        Ok(value) => Verdict::Done(value),
        Err(e) if crate::error::is_transient(&e) => Verdict::Again(e, None),
        Err(e) => Verdict::Final(e),
    }
}

/// Runs `op` until it succeeds, fails for good, or the deadline leaves no
/// room for another try; transient failures are retried with the network
/// policy. `what` names the operation in warnings; the last failure is
/// returned as it is.
pub async fn transient<T>(
    deadline: Instant,
    what: &str,
    op: impl AsyncFnMut() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    Ok(Policy::NETWORK
        .run(deadline, what, transient_failures, op)
        .await?)
}

/// A uniform number in [0, 1) from the OS generator (no seeding cost).
fn random_unit() -> f64 {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 4];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        return 0.5;
    }
    unit_interval(u32::from_le_bytes(bytes))
}

/// `n / 2³²`: every `u32` maps into [0, 1), never onto 1, so a jittered
/// delay stays below its ceiling.
fn unit_interval(n: u32) -> f64 {
    f64::from(n) / (f64::from(u32::MAX) + 1.0)
}

/// How long the server asked us to wait: `Retry-After` (seconds or an HTTP
/// date) or `x-ratelimit-reset` (a Unix time, or seconds when small).
pub fn server_hint(headers: &reqwest::header::HeaderMap, now_unix: u64) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(value) = text("retry-after") {
        if let Ok(secs) = value.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Some(when) = httpdate_to_unix(value) {
            return Some(Duration::from_secs(when.saturating_sub(now_unix)));
        }
    }
    if let Some(value) = text("x-ratelimit-reset")
        && let Ok(n) = value.parse::<f64>()
        && n.is_finite()
        && n >= 0.0
    {
        let n = n.ceil() as u64;
        // Unix times are large; a small number is a count of seconds.
        let secs = if n > 1_000_000_000 {
            n.saturating_sub(now_unix)
        } else {
            n
        };
        return Some(Duration::from_secs(secs));
    }
    None
}

/// An HTTP `Date` as Unix seconds.
pub fn httpdate_to_unix(text: &str) -> Option<u64> {
    httpdate::parse_http_date(text)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn network_waits_grow_and_stay_within_bounds() {
        let ceilings = [100, 200, 400, 800, 1600, 3200, 5000, 5000];
        for (waits, ceiling) in ceilings.into_iter().enumerate() {
            let p = Policy::NETWORK;
            assert_eq!(p.ceiling(waits as u32), Duration::from_millis(ceiling));
            let d = p.delay(waits as u32).as_millis() as u64;
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{d} not in [{}, {ceiling}]",
                ceiling / 2
            );
        }
        // However many waits came before: the cap, no overflow.
        assert_eq!(Policy::NETWORK.ceiling(40), Duration::from_secs(5));
        assert_eq!(Policy::REFRESHER.ceiling(0), Duration::from_secs(1));
        assert_eq!(Policy::REFRESHER.ceiling(2), Duration::from_secs(4));
        assert_eq!(Policy::REFRESHER.ceiling(29), Duration::from_secs(60));
    }

    #[test]
    fn jitter_spreads_a_fleet_that_failed_together() {
        // Twenty helpers whose first try failed at the same moment.
        let firsts: Vec<Duration> = (0..20).map(|_| Policy::NETWORK.delay(0)).collect();
        let distinct: std::collections::BTreeSet<_> = firsts.iter().collect();
        assert!(distinct.len() >= 18, "retrying in lockstep: {firsts:?}");
        let spread = firsts
            .iter()
            .max()
            .unwrap()
            .saturating_sub(*firsts.iter().min().unwrap());
        assert!(
            spread > Duration::from_millis(10),
            "all within {spread:?} of each other"
        );
    }

    #[test]
    fn each_jitter_draws_from_its_range() {
        let c = Duration::from_secs(1);
        let draws = |j: Jitter| (0..200).map(|_| j.draw(c)).collect::<Vec<_>>();
        assert!(draws(Jitter::None).iter().all(|&d| d == c));
        let upper = draws(Jitter::UpperHalf);
        assert!(upper.iter().all(|&d| d >= c / 2 && d < c), "{upper:?}");
        let around = draws(Jitter::Around);
        assert!(
            around
                .iter()
                .all(|&d| d >= c.mul_f64(0.75) && d < c.mul_f64(1.25)),
            "{around:?}"
        );
        assert!(around.iter().any(|&d| d > c), "never above: {around:?}");
        assert!(around.iter().any(|&d| d < c), "never below: {around:?}");
        let full = draws(Jitter::Full);
        assert!(full.iter().all(|&d| d < c), "{full:?}");
        assert!(full.iter().any(|&d| d < c / 4), "{full:?}");
        assert!(full.iter().any(|&d| d > c * 3 / 4), "{full:?}");
        assert_eq!(Policy::NEWER_VERSION.delay(1), Duration::from_millis(20));
        let claim = Policy::SHARED_CLAIM.delay(0);
        assert!(claim >= Duration::from_micros(37_500) && claim < Duration::from_micros(62_500));
    }

    #[test]
    fn warnings_say_what_unless_the_failure_does() {
        let failure = crate::error::Failure::unavailable("SeaTable at s timed out").into();
        let wait = Duration::from_millis(250);
        assert_eq!(
            warning("", &failure, wait),
            "SeaTable at s timed out; retrying in 250 ms"
        );
        assert_eq!(
            warning("reading the secret", &failure, wait),
            "reading the secret: SeaTable at s timed out; retrying in 250 ms"
        );
    }

    /// A runtime whose clock only moves when every task sleeps: waits are
    /// exact, whatever the machine's load.
    fn paused<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn waits_grow_and_the_last_fits_before_the_deadline() {
        let policy = Policy {
            base: Duration::from_millis(200),
            max: Duration::from_secs(10),
            jitter: Jitter::None,
        };
        let tries = paused(async {
            let start = Instant::now();
            let mut tries = Vec::new();
            let stop = policy
                .run(
                    start + Duration::from_millis(1400),
                    "test",
                    transient_failures::<()>,
                    async || {
                        tries.push(Instant::now() - start);
                        if tries.len() > 10 {
                            // Ends a loop that never waits (a broken policy).
                            return Err(crate::error::Failure::internal("no wait").into());
                        }
                        Err(crate::error::Failure::unavailable("down").into())
                    },
                )
                .await
                .unwrap_err();
            assert!(matches!(stop, Stop::OutOfTime(_)), "{stop:?}");
            tries
        });
        // 0, +200 ms, +400 ms; the next wait (800 ms) would end at 1.4 s.
        let ms: Vec<u128> = tries.iter().map(|t| t.as_millis()).collect();
        assert_eq!(ms, [0, 200, 600]);
    }

    #[test]
    fn a_server_hint_replaces_the_policy_wait() {
        let (tries, stop) = paused(async {
            let start = Instant::now();
            let mut tries = Vec::new();
            let stop = Policy::NETWORK
                .run(
                    start + Duration::from_secs(10),
                    "",
                    |n: u32| {
                        if n < 3 {
                            Verdict::Again(anyhow::anyhow!("busy"), Some(Duration::from_secs(3)))
                        } else {
                            Verdict::Done(n)
                        }
                    },
                    async || {
                        tries.push(Instant::now() - start);
                        tries.len() as u32
                    },
                )
                .await;
            (tries, stop)
        });
        let secs: Vec<u64> = tries.iter().map(|t| t.as_secs()).collect();
        assert_eq!(secs, [0, 3, 6]);
        assert_eq!(stop.unwrap(), 3);
        // After a hinted wait the policy starts from its first.
        let policy = Policy {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: Jitter::None,
        };
        let tries = paused(async {
            let start = Instant::now();
            let mut tries = Vec::new();
            let done = policy
                .run(
                    start + Duration::from_secs(10),
                    "",
                    |n: usize| match n {
                        1 => Verdict::Again(anyhow::anyhow!("busy"), Some(Duration::from_secs(3))),
                        2 => Verdict::Again(anyhow::anyhow!("down"), None),
                        _ => Verdict::Done(()),
                    },
                    async || {
                        tries.push((Instant::now() - start).as_millis());
                        tries.len()
                    },
                )
                .await;
            assert!(done.is_ok());
            tries
        });
        assert_eq!(tries, [0, 3000, 3100]);
        // A hint beyond the deadline: no wait begins.
        let stop = paused(Policy::NETWORK.run(
            Instant::now() + Duration::from_secs(1),
            "",
            |()| Verdict::<()>::Again(anyhow::anyhow!("busy"), Some(Duration::from_secs(2))),
            async || {},
        ));
        assert!(matches!(stop, Err(Stop::OutOfTime(_))));
    }

    #[test]
    fn random_draws_map_into_the_unit_interval() {
        assert_eq!(unit_interval(0), 0.0);
        assert_eq!(unit_interval(1 << 31), 0.5);
        assert!(
            unit_interval(u32::MAX) < 1.0,
            "the largest draw would reach the ceiling"
        );
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn in_secs(secs: u64) -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_secs(secs)
    }

    #[test]
    fn transient_failures_are_retried_until_one_succeeds() {
        let mut calls = 0;
        let out = block_on(transient(in_secs(10), "test", async || {
            calls += 1;
            if calls < 3 {
                Err(crate::error::Failure::unavailable("down").into())
            } else {
                Ok(calls)
            }
        }));
        assert_eq!(out.unwrap(), 3);
    }

    #[test]
    fn refusals_are_returned_at_once() {
        let stop = block_on(Policy::NETWORK.run(
            in_secs(2),
            "",
            |()| Verdict::<()>::Final(anyhow::anyhow!("no")),
            async || {},
        ));
        assert!(matches!(stop, Err(Stop::Final(e)) if e.to_string() == "no"));
        for refusal in [
            crate::error::Failure::seatable("403 Permission denied."),
            crate::error::Failure::vault("permission denied"),
            crate::error::Failure::unavailable("certificate").permanent(),
        ] {
            let what = refusal.to_string();
            let mut refusal = Some(refusal);
            let mut calls = 0;
            let err = block_on(transient(in_secs(2), "test", async || {
                calls += 1;
                match refusal.take() {
                    Some(r) => Err::<(), _>(r.into()),
                    None => Ok(()),
                }
            }))
            .unwrap_err();
            assert_eq!(calls, 1, "{what} was retried");
            assert_eq!(err.to_string(), what);
        }
    }

    #[test]
    fn gives_up_rather_than_wait_past_the_deadline() {
        let deadline = in_secs(1);
        // A timer may wake a little late on a busy machine; a try a second
        // past the deadline is a wait that should not have begun.
        let too_late = deadline + Duration::from_secs(1);
        let (mut calls, mut late) = (0, false);
        let err = block_on(transient(deadline, "test", async || {
            calls += 1;
            if tokio::time::Instant::now() >= too_late {
                // Ends the loop, so that a broken deadline check shows.
                late = true;
                return Err::<(), _>(crate::error::Failure::internal("tried too late").into());
            }
            Err(crate::error::Failure::unavailable("down").into())
        }))
        .unwrap_err();
        assert!(!late, "a try started long past the deadline");
        assert!(calls >= 2, "retried within the deadline: {calls} calls");
        assert_eq!(err.to_string(), "down", "the last failure is returned");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(server_hint(&h, 0), Some(Duration::from_secs(7)));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(server_hint(&h, 784_111_770), Some(Duration::from_secs(7)));
    }

    #[test]
    fn ratelimit_reset_as_unix_time_or_seconds() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1764540000"));
        assert_eq!(
            server_hint(&h, 1_764_539_990),
            Some(Duration::from_secs(10))
        );
        h.insert("x-ratelimit-reset", HeaderValue::from_static("3"));
        assert_eq!(server_hint(&h, 1_764_539_990), Some(Duration::from_secs(3)));
        // Where one reading ends and the other begins: up to 10⁹ (a Unix
        // time of 2001) a count of seconds, above it a Unix time.
        let now_2001 = 999_999_990;
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1000000000"));
        assert_eq!(
            server_hint(&h, now_2001),
            Some(Duration::from_secs(1_000_000_000))
        );
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1000000001"));
        assert_eq!(server_hint(&h, now_2001), Some(Duration::from_secs(11)));
        assert_eq!(server_hint(&HeaderMap::new(), 0), None);
    }
}
