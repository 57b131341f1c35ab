//! How long and how often to check whether a segment export is ready.
//!
//! Braze has no status endpoint for segment exports: the client checks the download URL or the bucket
//! prefix until the files are there. Checks back off exponentially (no jitter: one caller polls one
//! URL, so there is no herd to spread) and stop at an overall timeout. The delays are a pure
//! iterator, [`ExportPoll::delays`], tested without a clock.

use std::time::Duration;

/// The shortest delay between two checks, so a zero setting cannot turn polling into a busy loop.
const MIN_DELAY: Duration = Duration::from_millis(1);

/// The polling schedule: an exponential backoff bounded by an overall timeout.
///
/// Guaranteed: `1 ms <= initial_delay <= max_delay` and `factor >= 1.0` (the setters clamp), so the
/// delays are positive, non-decreasing and never exceed `max_delay`.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportPoll {
    initial_delay: Duration,
    factor: f64,
    max_delay: Duration,
    timeout: Duration,
}

impl Default for ExportPoll {
    /// 5 s doubling to 2 min, for at most 2 h (Braze says a 20M-user export can take an hour or more).
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_secs(5),
            factor: 2.0,
            max_delay: Duration::from_secs(120),
            timeout: Duration::from_secs(2 * 60 * 60),
        }
    }
}

impl ExportPoll {
    /// The delay before the second check (at least 1 ms); raises `max_delay` to it if needed.
    #[must_use]
    pub fn with_initial_delay(mut self, delay: Duration) -> Self {
        let delay = delay.max(MIN_DELAY);
        self.initial_delay = delay;
        self.max_delay = self.max_delay.max(delay);
        self
    }

    /// The growth factor between delays; values below 1.0 or not finite are taken as 1.0 (constant
    /// delay).
    #[must_use]
    pub fn with_factor(mut self, factor: f64) -> Self {
        self.factor = if factor.is_finite() && factor >= 1.0 {
            factor
        } else {
            1.0
        };
        self
    }

    /// The longest delay between two checks (at least 1 ms); lowers `initial_delay` to it if needed.
    #[must_use]
    pub fn with_max_delay(mut self, delay: Duration) -> Self {
        let delay = delay.max(MIN_DELAY);
        self.max_delay = delay;
        self.initial_delay = self.initial_delay.min(delay);
        self
    }

    /// The overall time budget, from the first check: once it has passed, the last check is made and
    /// the wait fails with [`super::ExportError::NotReady`].
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The overall time budget.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The delays between consecutive checks: `initial_delay`, then each one `factor` times the last,
    /// capped at `max_delay`, forever (the timeout, not a count, ends the wait).
    pub fn delays(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        let (factor, max) = (self.factor, self.max_delay);
        std::iter::successors(Some(self.initial_delay), move |last| {
            // `try_from_secs_f64` rejects overflow (then the cap applies); `max(*last)` absorbs the
            // rounding of the float round trip, so the sequence never decreases.
            let next = Duration::try_from_secs_f64(last.as_secs_f64() * factor).unwrap_or(max);
            Some(next.max(*last).min(max))
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn default_delays_double_up_to_the_cap() {
        let delays: Vec<u64> = ExportPoll::default().delays().take(8).map(|d| d.as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 120, 120, 120]);
    }

    #[test]
    fn setters_keep_the_invariants() {
        let poll = ExportPoll::default()
            .with_max_delay(Duration::from_secs(1))
            .with_factor(f64::NAN);
        let delays: Vec<Duration> = poll.delays().take(3).collect();
        assert_eq!(delays, [Duration::from_secs(1); 3]);
        let poll = ExportPoll::default().with_initial_delay(Duration::from_secs(600));
        assert_eq!(poll.delays().nth(5), Some(Duration::from_secs(600)));
    }

    proptest! {
        #[test]
        fn delays_are_bounded_and_non_decreasing(
            initial_ms in 0u64..100_000,
            factor in -2.0f64..10.0,
            max_ms in 0u64..1_000_000,
        ) {
            let poll = ExportPoll::default()
                .with_initial_delay(Duration::from_millis(initial_ms))
                .with_max_delay(Duration::from_millis(max_ms))
                .with_factor(factor);
            let delays: Vec<Duration> = poll.delays().take(64).collect();
            prop_assert_eq!(delays.len(), 64);
            for pair in delays.windows(2) {
                prop_assert!(pair[0] <= pair[1]);
            }
            let max = Duration::from_millis(max_ms).max(MIN_DELAY);
            prop_assert!(delays.iter().all(|d| *d >= MIN_DELAY && *d <= max));
        }
    }
}
