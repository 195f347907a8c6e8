//! Retry policy shared by the network clients: exponential backoff with full
//! jitter, and the server's own hints (`Retry-After`, `x-ratelimit-reset`).
//! Every wait is bounded by the call's deadline, which the caller checks.

use std::time::Duration;

/// Exponential backoff with "full jitter": the n-th delay is uniform in
/// `[cap_n / 2, cap_n]`, `cap_n = min(base · 2ⁿ, max)`. Spreading the waits
/// keeps a fleet of helpers that failed together from retrying in lockstep.
pub struct Backoff {
    attempt: u32,
    base: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            attempt: 0,
            base: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max);
        self.attempt += 1;
        let half = ceiling / 2;
        half + half.mul_f64(random_unit())
    }
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

/// Runs `op` until it succeeds, fails for good, or the deadline leaves no
/// room for another try; transient failures ([`crate::error::is_transient`])
/// are retried with backoff. `what` names the operation in warnings.
pub async fn transient<T>(
    deadline: tokio::time::Instant,
    what: &str,
    mut op: impl AsyncFnMut() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut backoff = Backoff::default();
    loop {
        match op().await {
            Err(err) if crate::error::is_transient(&err) => {
                let delay = backoff.next_delay();
                if tokio::time::Instant::now() + delay >= deadline {
                    return Err(err);
                }
                tracing::warn!(
                    "{what}: {}; retrying in {} ms",
                    crate::error::one_line(&err),
                    delay.as_millis()
                );
                tokio::time::sleep(delay).await;
            }
            other => return other,
        }
    }
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
    fn backoff_grows_and_stays_within_bounds() {
        let mut b = Backoff::default();
        let ceilings = [100, 200, 400, 800, 1600, 3200, 5000, 5000];
        for ceiling in ceilings {
            let d = b.next_delay().as_millis() as u64;
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{d} not in [{}, {ceiling}]",
                ceiling / 2
            );
        }
    }

    #[test]
    fn jitter_spreads_a_fleet_that_failed_together() {
        // Twenty helpers whose first try failed at the same moment.
        let firsts: Vec<Duration> = (0..20).map(|_| Backoff::default().next_delay()).collect();
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
