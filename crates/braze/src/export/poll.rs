//! How long and how often to check whether a segment export is ready, and how the wait is reported.
//!
//! Braze has no status endpoint for segment exports: the client checks the download URL or the bucket
//! prefix until the files are there. Checks back off exponentially (no jitter: one caller polls one
//! URL, so there is no herd to spread) and stop at an overall timeout. The delays are a pure
//! iterator, [`ExportPoll::delays`], tested without a clock.
//!
//! A wait can last hours, so it is never silent: the first check that finds the export not ready, and
//! then one check a minute ([`PROGRESS_LOG_INTERVAL`]), are logged at `info`, and every check is
//! reported to the [`ExportProgress`] callback given with [`ExportPoll::with_progress`] (the
//! command line renders it; this crate draws nothing).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::ExportError;
use crate::Endpoint;

/// How often, at most, a wait that goes on is logged at `info` (the first "not ready" always is).
pub const PROGRESS_LOG_INTERVAL: Duration = Duration::from_secs(60);

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
    progress: Option<ExportProgress>,
}

/// Where a wait for an export stands, as reported to an [`ExportProgress`] callback after each check.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ExportWait {
    /// The export endpoint whose result is awaited.
    pub endpoint: Endpoint,
    /// Checks made so far (this one included).
    pub checks: u32,
    /// Time since the first check, by the Tokio clock.
    pub waited: Duration,
    /// The overall time budget ([`ExportPoll::with_timeout`]).
    pub timeout: Duration,
    /// `true` when this check found the export ready (the last report of a wait that succeeds).
    pub ready: bool,
    /// Why the export is not ready yet (`HTTP 404`, `no files yet`...); empty when ready. Never the
    /// download URL.
    pub status: String,
}

/// A callback told about every check of a wait ([`ExportWait`]). Cloning shares the callback;
/// two are equal when they share it.
#[derive(Clone)]
pub struct ExportProgress(Arc<dyn Fn(&ExportWait) + Send + Sync>);

impl ExportProgress {
    /// Wraps a callback. It runs on the task that waits, so it must return quickly (print a line,
    /// update a progress bar, send on a channel).
    pub fn new(callback: impl Fn(&ExportWait) + Send + Sync + 'static) -> Self {
        Self(Arc::new(callback))
    }

    fn report(&self, wait: &ExportWait) {
        (self.0)(wait);
    }
}

impl fmt::Debug for ExportProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExportProgress(..)")
    }
}

impl PartialEq for ExportProgress {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Default for ExportPoll {
    /// 5 s doubling to 2 min, for at most 2 h (Braze says a 20M-user export can take an hour or more).
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_secs(5),
            factor: 2.0,
            max_delay: Duration::from_secs(120),
            timeout: Duration::from_secs(2 * 60 * 60),
            progress: None,
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

    /// Reports every check of a wait to `progress` (see [`ExportWait`]).
    #[must_use]
    pub fn with_progress(mut self, progress: ExportProgress) -> Self {
        self.progress = Some(progress);
        self
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

/// One wait on the [`ExportPoll`] schedule: counts the checks, reports each one (to the log and the
/// progress callback), sleeps between them and gives up at the timeout. Time is read from
/// `tokio::time`, so tests run it with a paused clock.
pub(crate) struct Wait<'p> {
    policy: &'p ExportPoll,
    endpoint: Endpoint,
    started: Instant,
    delays: Box<dyn Iterator<Item = Duration> + Send>,
    checks: u32,
    last_logged: Option<Instant>,
}

impl<'p> Wait<'p> {
    /// Starts the clock: the timeout runs from now.
    pub(crate) fn start(policy: &'p ExportPoll, endpoint: Endpoint) -> Self {
        Self {
            policy,
            endpoint,
            started: Instant::now(),
            delays: Box::new(policy.delays()),
            checks: 0,
            last_logged: None,
        }
    }

    /// Counts a check about to be made; returns its number (from 1).
    pub(crate) fn check(&mut self) -> u32 {
        self.checks += 1;
        self.checks
    }

    /// The check found the export ready: reports it and returns the number of checks made.
    pub(crate) fn ready(&self) -> u32 {
        self.report(true, String::new());
        self.checks
    }

    /// The check did not find the export ready because of `why`: reports it, then sleeps until the
    /// next check, or fails when the timeout has passed (a last check is made at the deadline).
    ///
    /// # Errors
    /// [`ExportError::NotReady`] once the timeout has passed.
    pub(crate) async fn not_ready(&mut self, why: String) -> Result<(), ExportError> {
        let now = Instant::now();
        let waited = now - self.started;
        let timeout = self.policy.timeout;
        let log_due = self.last_logged.is_none_or(|last| now - last >= PROGRESS_LOG_INTERVAL);
        if log_due {
            self.last_logged = Some(now);
            tracing::info!(
                endpoint = %self.endpoint,
                checks = self.checks,
                waited_s = waited.as_secs(),
                timeout_s = timeout.as_secs(),
                status = %why,
                "waiting for the export to be ready"
            );
        } else {
            tracing::debug!(endpoint = %self.endpoint, checks = self.checks, status = %why, "export not ready yet");
        }
        self.report(false, why);
        if waited >= timeout {
            return Err(ExportError::NotReady {
                endpoint: self.endpoint,
                segment_id: None,
                waited,
                timeout,
                attempts: self.checks,
            });
        }
        let deadline = self.started + timeout;
        let delay = self.delays.next().unwrap_or(timeout);
        tokio::time::sleep_until((now + delay).min(deadline)).await;
        Ok(())
    }

    fn report(&self, ready: bool, status: String) {
        if let Some(progress) = &self.policy.progress {
            progress.report(&ExportWait {
                endpoint: self.endpoint,
                checks: self.checks,
                waited: self.started.elapsed(),
                timeout: self.policy.timeout,
                ready,
                status,
            });
        }
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
