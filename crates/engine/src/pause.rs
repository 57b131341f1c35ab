//! A test hook for crash tests of whole processes: `OFFERLOOP_PAUSE_AT=<point>[:<n>]` makes the
//! `n`-th arrival (default the first) of this process at `point` print `offerloop: paused at <point>`
//! to stderr and stop there (sleep for an hour), so that a test can kill the process at exactly that
//! point with `SIGKILL`. Unset (as in production) it costs one read of a cached value per arrival.
//!
//! The points: `decide-slice` (a slice of decisions stored), `batch-sending` (a batch marked
//! `sending`, its request not yet made), `batch-sent` (a batch marked `sent`, the next not begun).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The variable naming the point.
pub const PAUSE_AT_VAR: &str = "OFFERLOOP_PAUSE_AT";

/// The configured point and arrival, read once.
fn configured() -> Option<&'static (String, u64)> {
    static CONFIG: OnceLock<Option<(String, u64)>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let text = std::env::var(PAUSE_AT_VAR).ok()?;
            let (point, n) = match text.split_once(':') {
                Some((point, n)) => (point.to_owned(), n.parse().unwrap_or(1)),
                None => (text, 1),
            };
            Some((point, n))
        })
        .as_ref()
}

/// Arrivals at the configured point so far.
static ARRIVALS: AtomicU64 = AtomicU64::new(0);

/// Stops the process here when `OFFERLOOP_PAUSE_AT` names `point` and this is the arrival it names.
pub(crate) fn point(point: &str) {
    let Some((at, n)) = configured() else { return };
    if at != point || ARRIVALS.fetch_add(1, Ordering::SeqCst) + 1 != *n {
        return;
    }
    // The test reads this line from the process's stderr: it must not depend on the log settings.
    #[allow(clippy::print_stderr)]
    {
        eprintln!("offerloop: paused at {point}");
    }
    std::thread::sleep(std::time::Duration::from_secs(3600));
}
