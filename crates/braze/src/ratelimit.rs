//! Client-side rate limiting per Braze pool, corrected by Braze's own headers.
//!
//! Two mechanisms, both per [`RateLimitPool`]:
//! - a `governor` token bucket with the pool's configured budget, so a burst of requests is spread out
//!   before Braze has to refuse it;
//! - the server's view: after every response the client records `X-RateLimit-Remaining` and
//!   `X-RateLimit-Reset` (read case-insensitively); when the window is spent (`remaining == 0`), the
//!   next request of that pool waits until the reset instead of earning a `429`.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::config::RateLimit;
use crate::endpoint::RateLimitPool;

/// What Braze's headers said about a pool's window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct WindowState {
    /// Requests left in the window.
    pub remaining: Option<u64>,
    /// When the window resets, UTC epoch seconds.
    pub reset_at: Option<i64>,
}

/// Per-pool limiters and window states.
#[derive(Debug)]
pub(crate) struct RateLimits {
    buckets: BTreeMap<RateLimitPool, DefaultDirectRateLimiter>,
    windows: Mutex<BTreeMap<RateLimitPool, WindowState>>,
}

impl RateLimits {
    pub(crate) fn new(limits: &BTreeMap<RateLimitPool, RateLimit>) -> Self {
        let buckets = limits
            .iter()
            .filter_map(|(&pool, limit)| {
                let burst = NonZeroU32::new(limit.requests)?;
                let period = limit.per / limit.requests;
                let quota = Quota::with_period(period.max(Duration::from_nanos(1)))?.allow_burst(burst);
                Some((pool, RateLimiter::direct(quota)))
            })
            .collect();
        Self {
            buckets,
            windows: Mutex::new(BTreeMap::new()),
        }
    }

    /// Waits until a request of `pool` may go out: first for Braze's window when it is spent, then for a
    /// token of the client-side bucket. Returns how long it waited for the window.
    pub(crate) async fn acquire(&self, pool: RateLimitPool, now_epoch: i64) -> Duration {
        let wait = self.window_wait(pool, now_epoch);
        if !wait.is_zero() {
            tracing::debug!(
                ?pool,
                wait_ms = wait.as_millis() as u64,
                "rate-limit window spent; waiting for reset"
            );
            tokio::time::sleep(wait).await;
        }
        if let Some(bucket) = self.buckets.get(&pool) {
            bucket.until_ready().await;
        }
        wait
    }

    /// How long to wait for the server window of `pool`, given the current epoch second.
    pub(crate) fn window_wait(&self, pool: RateLimitPool, now_epoch: i64) -> Duration {
        let windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match windows.get(&pool) {
            Some(WindowState {
                remaining: Some(0),
                reset_at: Some(reset),
            }) if *reset >= now_epoch => {
                // Reset is to the second: wait until the start of the following second.
                Duration::from_secs(u64::try_from(reset - now_epoch).unwrap_or(0) + 1)
            }
            _ => Duration::ZERO,
        }
    }

    /// Records what a response's headers said.
    pub(crate) fn observe(&self, pool: RateLimitPool, state: WindowState) {
        if state.remaining.is_none() && state.reset_at.is_none() {
            return;
        }
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        windows.insert(pool, state);
    }

    /// The last recorded window of `pool`.
    pub(crate) fn window(&self, pool: RateLimitPool) -> WindowState {
        let windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        windows.get(&pool).copied().unwrap_or_default()
    }
}

/// Reads the rate-limit headers of a response (names are matched case-insensitively by `http`).
pub(crate) fn window_from_headers(headers: &reqwest::header::HeaderMap) -> WindowState {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    WindowState {
        remaining: number("x-ratelimit-remaining").and_then(|n| u64::try_from(n).ok()),
        reset_at: number("x-ratelimit-reset"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> RateLimits {
        RateLimits::new(&BTreeMap::from([(
            RateLimitPool::Default,
            RateLimit {
                requests: 5,
                per: Duration::from_secs(1),
            },
        )]))
    }

    #[test]
    fn a_spent_window_waits_until_the_reset() {
        let l = limits();
        assert_eq!(l.window_wait(RateLimitPool::Default, 100), Duration::ZERO);
        l.observe(
            RateLimitPool::Default,
            WindowState {
                remaining: Some(0),
                reset_at: Some(103),
            },
        );
        assert_eq!(l.window_wait(RateLimitPool::Default, 100), Duration::from_secs(4));
        // Past the reset, nothing to wait for.
        assert_eq!(l.window_wait(RateLimitPool::Default, 104), Duration::ZERO);
        l.observe(
            RateLimitPool::Default,
            WindowState {
                remaining: Some(3),
                reset_at: Some(200),
            },
        );
        assert_eq!(l.window_wait(RateLimitPool::Default, 150), Duration::ZERO);
        // Responses without headers leave the last state alone.
        l.observe(RateLimitPool::Default, WindowState::default());
        assert_eq!(l.window(RateLimitPool::Default).remaining, Some(3));
    }

    #[test]
    fn headers_are_read_case_insensitively() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("X-RateLimit-Remaining", "0".parse().unwrap());
        h.insert("x-ratelimit-reset", "1700000000".parse().unwrap());
        assert_eq!(
            window_from_headers(&h),
            WindowState {
                remaining: Some(0),
                reset_at: Some(1_700_000_000)
            }
        );
    }

    #[tokio::test]
    async fn the_bucket_admits_a_burst_of_the_budget() {
        let l = limits();
        for _ in 0..5 {
            assert_eq!(l.acquire(RateLimitPool::Default, 0).await, Duration::ZERO);
        }
        assert!(
            l.buckets[&RateLimitPool::Default].check().is_err(),
            "the sixth request must wait"
        );
    }
}
