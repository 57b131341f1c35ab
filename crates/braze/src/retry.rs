//! Retry decisions as a pure function, unit-tested without clock or network (async-stripe style).
//!
//! [`decide`] looks at one attempt's outcome and says: done, wait and retry, or give up. The rules:
//! - `429` is retried for every endpoint (Braze did not act on it), waiting `Retry-After` when present,
//!   else until `X-RateLimit-Reset`, else the backoff delay; a wait longer than
//!   [`RetryPolicy::max_rate_limit_wait`] gives up instead;
//! - `5xx` and timeouts are retried only for idempotent endpoints ([`Endpoint::is_idempotent`]);
//! - connection errors (nothing was sent) are retried for idempotent endpoints; for message sends they
//!   are returned at once with a "not accepted" fate, so the activation layer decides;
//! - any other status gives up.
//!
//! Backoff delays come from `backon`'s exponential builder with full jitter, bounded by
//! [`RetryPolicy::max_backoff`].

use std::time::Duration;

use crate::endpoint::Endpoint;

/// How persistently to retry.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// First backoff delay.
    pub initial_backoff: Duration,
    /// Longest backoff delay.
    pub max_backoff: Duration,
    /// Longest single wait for a rate-limit window to reset before giving up with `RateLimited`.
    pub max_rate_limit_wait: Duration,
}

impl RetryPolicy {
    /// Four attempts, 200 ms doubling to 10 s, rate-limit waits up to 2 minutes.
    pub fn standard() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_rate_limit_wait: Duration::from_secs(120),
        }
    }

    /// No retries at all.
    pub fn disabled() -> Self {
        Self {
            max_attempts: 1,
            ..Self::standard()
        }
    }

    /// The backoff delays of this policy, with full jitter (an iterator from `backon`).
    pub fn backoff(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        use backon::BackoffBuilder as _;
        backon::ExponentialBuilder::default()
            .with_min_delay(self.initial_backoff)
            .with_max_delay(self.max_backoff)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(usize::MAX)
            .build()
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::standard()
    }
}

/// What one attempt produced.
#[derive(Clone, Debug, PartialEq)]
pub enum AttemptOutcome {
    /// An HTTP response.
    Response {
        /// Status code.
        status: u16,
        /// `Retry-After`, parsed.
        retry_after: Option<Duration>,
        /// `X-RateLimit-Reset`, UTC epoch seconds.
        reset_at: Option<i64>,
    },
    /// No connection could be made: the request was certainly not sent.
    ConnectFailed,
    /// The request timed out or broke after the connection was made: it may have been received.
    TimedOut,
}

/// What to do after an attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// The response is final (success or an error to map).
    Done,
    /// Wait, then try again.
    RetryAfter(Duration),
    /// Give up: the outcome is final and is an error.
    GiveUp,
}

/// Decides what to do after attempt number `attempt` (1-based) of a request to `endpoint`.
///
/// `backoff` is the next exponential-backoff delay and `now` the current UTC epoch second (for
/// `X-RateLimit-Reset`); passing them in keeps this function pure.
pub fn decide(
    endpoint: Endpoint,
    outcome: &AttemptOutcome,
    attempt: u32,
    policy: &RetryPolicy,
    backoff: Duration,
    now: i64,
) -> Decision {
    let attempts_left = attempt < policy.max_attempts;
    match outcome {
        AttemptOutcome::Response { status, .. } if (200..300).contains(status) => Decision::Done,
        AttemptOutcome::Response {
            status: 429,
            retry_after,
            reset_at,
        } => {
            if !attempts_left {
                return Decision::GiveUp;
            }
            let wait = retry_after
                .or_else(|| reset_at.map(|r| Duration::from_secs(u64::try_from(r - now).unwrap_or(0).max(1))))
                .unwrap_or(backoff);
            if wait > policy.max_rate_limit_wait {
                Decision::GiveUp
            } else {
                Decision::RetryAfter(wait)
            }
        }
        AttemptOutcome::Response { status, .. } if *status >= 500 => {
            if endpoint.is_idempotent() && attempts_left {
                Decision::RetryAfter(backoff)
            } else {
                Decision::GiveUp
            }
        }
        AttemptOutcome::Response { .. } => Decision::Done,
        AttemptOutcome::ConnectFailed | AttemptOutcome::TimedOut => {
            if endpoint.is_idempotent() && attempts_left {
                Decision::RetryAfter(backoff)
            } else {
                Decision::GiveUp
            }
        }
    }
}

/// Parses `Retry-After` as delay-seconds (the HTTP-date form is not used by Braze's peers; it is
/// ignored).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: Endpoint = Endpoint::CampaignsList;
    const SEND: Endpoint = Endpoint::CampaignsTriggerSend;
    const B: Duration = Duration::from_millis(300);

    fn resp(status: u16) -> AttemptOutcome {
        AttemptOutcome::Response {
            status,
            retry_after: None,
            reset_at: None,
        }
    }

    #[test]
    fn success_and_client_errors_are_final() {
        let p = RetryPolicy::standard();
        assert_eq!(decide(READ, &resp(201), 1, &p, B, 0), Decision::Done);
        assert_eq!(decide(SEND, &resp(400), 1, &p, B, 0), Decision::Done);
        assert_eq!(decide(SEND, &resp(403), 1, &p, B, 0), Decision::Done);
    }

    #[test]
    fn server_errors_and_timeouts_retry_reads_only() {
        let p = RetryPolicy::standard();
        assert_eq!(decide(READ, &resp(503), 1, &p, B, 0), Decision::RetryAfter(B));
        assert_eq!(decide(READ, &resp(503), 4, &p, B, 0), Decision::GiveUp);
        assert_eq!(decide(SEND, &resp(503), 1, &p, B, 0), Decision::GiveUp);
        assert_eq!(decide(SEND, &AttemptOutcome::TimedOut, 1, &p, B, 0), Decision::GiveUp);
        assert_eq!(
            decide(SEND, &AttemptOutcome::ConnectFailed, 1, &p, B, 0),
            Decision::GiveUp
        );
        assert_eq!(decide(Endpoint::UsersTrack, &resp(500), 1, &p, B, 0), Decision::GiveUp);
        assert_eq!(
            decide(READ, &AttemptOutcome::ConnectFailed, 2, &p, B, 0),
            Decision::RetryAfter(B)
        );
    }

    #[test]
    fn rate_limits_wait_for_retry_after_then_reset_then_backoff() {
        let p = RetryPolicy::standard();
        let with = |retry_after, reset_at| AttemptOutcome::Response {
            status: 429,
            retry_after,
            reset_at,
        };
        assert_eq!(
            decide(SEND, &with(Some(Duration::from_secs(7)), Some(1_000)), 1, &p, B, 990),
            Decision::RetryAfter(Duration::from_secs(7))
        );
        assert_eq!(
            decide(SEND, &with(None, Some(1_000)), 1, &p, B, 990),
            Decision::RetryAfter(Duration::from_secs(10))
        );
        // A reset already past still waits a second rather than hammering.
        assert_eq!(
            decide(READ, &with(None, Some(900)), 1, &p, B, 990),
            Decision::RetryAfter(Duration::from_secs(1))
        );
        assert_eq!(decide(READ, &with(None, None), 1, &p, B, 990), Decision::RetryAfter(B));
        assert_eq!(
            decide(READ, &with(None, Some(100_000)), 1, &p, B, 990),
            Decision::GiveUp
        );
        assert_eq!(decide(READ, &with(None, None), 4, &p, B, 990), Decision::GiveUp);
    }

    #[test]
    fn disabled_policy_never_retries() {
        let p = RetryPolicy::disabled();
        assert_eq!(decide(READ, &resp(503), 1, &p, B, 0), Decision::GiveUp);
    }

    #[test]
    fn retry_after_parses_seconds() {
        assert_eq!(parse_retry_after(" 12 "), Some(Duration::from_secs(12)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
