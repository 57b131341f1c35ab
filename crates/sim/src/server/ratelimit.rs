//! Rate limiting: one token bucket per [`Pool`], on real (tokio) time, not the simulated clock.
//!
//! A bucket holds `requests` tokens and refills at `requests / per`. Every Braze response carries
//! `X-RateLimit-Limit` (the bucket size), `X-RateLimit-Remaining` (whole tokens left) and
//! `X-RateLimit-Reset` (UTC epoch seconds when the bucket is full again, i.e. when the window
//! "resets"); an empty bucket answers 429, with `Retry-After` (seconds until the next token) when
//! [`RateLimits::retry_after`] is set (Braze does not document it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use tokio::time::Instant;

use super::routes_table::Pool;

/// The size and period of one pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Requests per period (the bucket size).
    pub requests: u32,
    /// The period.
    pub per: Duration,
}

impl Limit {
    /// `requests` per `per`.
    pub const fn new(requests: u32, per: Duration) -> Limit {
        Limit { requests, per }
    }
}

/// The limits of every pool (braze-api.md §2 defaults) and whether 429s carry `Retry-After`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// The shared default pool: 250,000 / hour.
    pub default: Limit,
    /// `/users/track`: 3,000 / 3 s.
    pub users_track: Limit,
    /// `/users/export/ids`: 250 / minute.
    pub users_export_ids: Limit,
    /// Broadcast (segment/audience) sends: 250 / minute.
    pub broadcast: Limit,
    /// `/campaigns/data_series`: 50,000 / minute.
    pub campaigns_data_series: Limit,
    /// Add `Retry-After` to 429 responses.
    pub retry_after: bool,
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits {
            default: Limit::new(250_000, Duration::from_secs(3600)),
            users_track: Limit::new(3_000, Duration::from_secs(3)),
            users_export_ids: Limit::new(250, Duration::from_secs(60)),
            broadcast: Limit::new(250, Duration::from_secs(60)),
            campaigns_data_series: Limit::new(50_000, Duration::from_secs(60)),
            retry_after: false,
        }
    }
}

impl RateLimits {
    /// Tiny buckets for tests: 3 requests per 60 s in every pool, with `Retry-After`.
    pub fn tiny() -> RateLimits {
        let tiny = Limit::new(3, Duration::from_secs(60));
        RateLimits {
            default: tiny,
            users_track: tiny,
            users_export_ids: tiny,
            broadcast: tiny,
            campaigns_data_series: tiny,
            retry_after: true,
        }
    }

    /// No practical limit (a billion requests per second) in every pool: for load tests.
    pub fn unlimited() -> RateLimits {
        let huge = Limit::new(1_000_000_000, Duration::from_secs(1));
        RateLimits {
            default: huge,
            users_track: huge,
            users_export_ids: huge,
            broadcast: huge,
            campaigns_data_series: huge,
            retry_after: false,
        }
    }

    /// The limit of `pool`.
    pub fn limit(&self, pool: Pool) -> Limit {
        match pool {
            Pool::Default => self.default,
            Pool::UsersTrack => self.users_track,
            Pool::UsersExportIds => self.users_export_ids,
            Pool::Broadcast => self.broadcast,
            Pool::CampaignsDataSeries => self.campaigns_data_series,
        }
    }
}

/// The state of one bucket after a request, and what the response headers say.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    /// Whether the request may proceed (a token was taken).
    pub allowed: bool,
    /// `X-RateLimit-Limit`.
    pub limit: u32,
    /// `X-RateLimit-Remaining`.
    pub remaining: u32,
    /// Time until the bucket is full again (`X-RateLimit-Reset` is now plus this).
    pub reset_in: Duration,
    /// Time until the next token (`Retry-After` of a 429).
    pub retry_in: Duration,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Every pool's bucket.
#[derive(Debug)]
pub struct Buckets {
    limits: RateLimits,
    buckets: Mutex<HashMap<Pool, Bucket>>,
}

impl Buckets {
    /// Full buckets for `limits`.
    pub fn new(limits: RateLimits) -> Buckets {
        Buckets {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The limits.
    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// Takes a token from `pool` when `consume` (else only reports its state), at `now`.
    pub fn check(&self, pool: Pool, consume: bool, now: Instant) -> Window {
        let limit = self.limits.limit(pool);
        let capacity = f64::from(limit.requests.max(1));
        let rate = capacity / limit.per.as_secs_f64().max(1e-9);
        // A poisoned lock only means another request panicked mid-update; the counts are still usable.
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(pool).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.at = now;
        let allowed = bucket.tokens >= 1.0;
        if consume && allowed {
            bucket.tokens -= 1.0;
        }
        let tokens = bucket.tokens;
        Window {
            allowed: allowed || !consume,
            limit: limit.requests,
            remaining: tokens.floor().clamp(0.0, capacity) as u32,
            reset_in: Duration::from_secs_f64(((capacity - tokens) / rate).max(0.0)),
            retry_in: Duration::from_secs_f64(((1.0 - tokens) / rate).max(0.0)),
        }
    }
}

/// Real wall-clock seconds since the epoch: the reset header is real time by design (buckets run on
/// real time, not the simulated clock).
#[allow(clippy::disallowed_methods)]
fn wall_clock_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Adds the `X-RateLimit-*` headers of `window` (and `Retry-After` on a refused request when
/// `retry_after`).
pub fn set_headers(headers: &mut HeaderMap, window: &Window, retry_after: bool) {
    let reset = wall_clock_secs() + window.reset_in.as_secs() + u64::from(window.reset_in.subsec_nanos() > 0);
    headers.insert("x-ratelimit-limit", HeaderValue::from(window.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(window.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
    if retry_after && !window.allowed {
        let secs = window.retry_in.as_secs() + u64::from(window.retry_in.subsec_nanos() > 0);
        headers.insert("retry-after", HeaderValue::from(secs.max(1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_then_refills_with_time() {
        let buckets = Buckets::new(RateLimits::tiny());
        let t0 = Instant::now();
        let w = buckets.check(Pool::UsersTrack, true, t0);
        assert!(w.allowed);
        assert_eq!((w.limit, w.remaining), (3, 2));
        buckets.check(Pool::UsersTrack, true, t0);
        let w = buckets.check(Pool::UsersTrack, true, t0);
        assert!(w.allowed);
        assert_eq!(w.remaining, 0);
        let w = buckets.check(Pool::UsersTrack, true, t0);
        assert!(!w.allowed);
        assert_eq!(w.retry_in, Duration::from_secs(20));
        assert_eq!(w.reset_in, Duration::from_secs(60));
        // Another pool is untouched; peeking does not consume.
        assert_eq!(buckets.check(Pool::Default, false, t0).remaining, 3);
        assert_eq!(buckets.check(Pool::Default, false, t0).remaining, 3);
        // 20 s later one token is back.
        let w = buckets.check(Pool::UsersTrack, true, t0 + Duration::from_secs(20));
        assert!(w.allowed);
        assert_eq!(w.remaining, 0);
    }

    #[test]
    fn headers_are_set_and_retry_after_only_on_refusal() {
        let mut h = HeaderMap::new();
        let w = Window {
            allowed: true,
            limit: 10,
            remaining: 4,
            reset_in: Duration::from_millis(1500),
            retry_in: Duration::ZERO,
        };
        set_headers(&mut h, &w, true);
        assert_eq!(h["x-ratelimit-limit"], "10");
        assert_eq!(h["x-ratelimit-remaining"], "4");
        let reset: u64 = h["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
        assert!(reset > wall_clock_secs());
        assert!(h.get("retry-after").is_none());
        let refused = Window {
            allowed: false,
            remaining: 0,
            retry_in: Duration::from_millis(200),
            ..w
        };
        set_headers(&mut h, &refused, true);
        assert_eq!(h["retry-after"], "1");
    }

    proptest::proptest! {
        #[test]
        fn remaining_never_exceeds_the_limit(requests in 1u32..50, steps in proptest::collection::vec(0u64..5_000, 1..60)) {
            let limits = RateLimits { users_track: Limit::new(requests, Duration::from_secs(10)), ..RateLimits::default() };
            let buckets = Buckets::new(limits);
            let mut now = Instant::now();
            let start = now;
            let mut allowed = 0u32;
            for (i, ms) in steps.iter().enumerate() {
                if i > 0 { now += Duration::from_millis(*ms); }
                let w = buckets.check(Pool::UsersTrack, true, now);
                proptest::prop_assert!(w.remaining <= requests);
                proptest::prop_assert!(w.reset_in <= Duration::from_secs(10));
                allowed += u32::from(w.allowed);
            }
            // Never more than a full bucket plus what refilled meanwhile.
            let refilled = (now - start).as_secs_f64() * f64::from(requests) / 10.0;
            proptest::prop_assert!(f64::from(allowed) <= f64::from(requests) + refilled + 1e-9);
        }
    }
}
