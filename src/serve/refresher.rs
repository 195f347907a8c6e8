//! The auth loop: one task per profile that keeps its base token fresh, as
//! Vault Agent's auto-auth does for Vault tokens.
//!
//! It asks the broker — which decides, as for `get`, whether the cached
//! token will do or a refresh is due, and writes a new token to the cache —
//! then sleeps until the token's `refresh_at` plus a little jitter (so that
//! agents on many hosts sharing a cache do not all ask in the same
//! instant). A failed refresh is retried with exponential backoff; the
//! broker keeps serving the still-valid token meanwhile (stale-if-error),
//! and so does the proxy.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;
use tracing::warn;

use super::state::Served;
use crate::retry::{Jitter, Policy};

/// Jitter after `refresh_at`: at most this, and at most a fifth of the window.
const MAX_JITTER: Duration = Duration::from_secs(30);

pub fn spawn(served: Arc<Served>) -> JoinHandle<()> {
    tokio::spawn(run(served))
}

async fn run(served: Arc<Served>) {
    let mut failures = 0u32;
    loop {
        let wait = match served.refresh(false).await {
            Ok(current) if current.refresh_at > now_secs() => {
                failures = 0;
                let window = current.expires_at.saturating_sub(current.refresh_at);
                until(current.refresh_at) + jitter(window)
            }
            Ok(_) => {
                // Only a token inside its refresh window: the broker's refresh
                // failed and it fell back to the cached token (it said why).
                failures += 1;
                served
                    .metrics
                    .refresh_failures
                    .fetch_add(1, Ordering::Relaxed);
                backoff(failures)
            }
            Err(err) => {
                failures += 1;
                served
                    .metrics
                    .refresh_failures
                    .fetch_add(1, Ordering::Relaxed);
                let wait = backoff(failures);
                warn!(
                    profile = %served.name,
                    "cannot get a base token: {}; trying again in {}s",
                    crate::error::one_line(&err),
                    wait.as_secs().max(1)
                );
                wait
            }
        };
        tokio::time::sleep(wait).await;
    }
}

fn now_secs() -> u64 {
    crate::time::now()
}

/// From now until Unix second `at` (zero if past), to the millisecond.
fn until(at: u64) -> Duration {
    (UNIX_EPOCH + Duration::from_secs(at))
        .duration_since(SystemTime::now())
        .unwrap_or_default()
}

/// Up to a fifth of the refresh window, at most [`MAX_JITTER`].
fn jitter(window_secs: u64) -> Duration {
    let most = Duration::from_secs(window_secs)
        .div_f64(5.0)
        .min(MAX_JITTER);
    Jitter::Full.draw(most)
}

/// The refresher's policy: 1 s · 2ⁿ⁻¹, capped, times 0.5–1.0.
fn backoff(failures: u32) -> Duration {
    Policy::REFRESHER.delay(failures.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= Duration::from_secs(1));
        assert!(backoff(1) >= Duration::from_millis(500));
        assert!(backoff(3) >= Duration::from_secs(2) && backoff(3) <= Duration::from_secs(4));
        let max = Policy::REFRESHER.max;
        assert!(backoff(30) <= max && backoff(30) >= max / 2);
    }

    #[test]
    fn jitter_stays_inside_the_window() {
        for _ in 0..100 {
            assert!(jitter(2) <= Duration::from_millis(400));
            assert!(jitter(300) <= Duration::from_secs(30));
        }
        assert_eq!(jitter(0), Duration::ZERO);
    }

    #[test]
    fn until_the_past_is_now() {
        assert_eq!(until(0), Duration::ZERO);
        let later = until(crate::time::now() + 10);
        assert!(later > Duration::from_secs(8) && later <= Duration::from_secs(10));
    }
}
