//! What the command line shows while a run waits for Braze's segment export, and `--export-timeout`.
//!
//! A segment export can take an hour or more for a large segment, and Braze has no status endpoint:
//! the client checks until the file is there ([`offerloop_braze::export::ExportPoll`]). The engine
//! and the Braze client draw nothing; they report each check to an
//! [`ExportProgress`] callback, and [`ExportWaitLines`] turns those reports into a line for people at
//! most once a minute (the first check that finds the export not ready, then every
//! [`LINE_INTERVAL`], then "ready" if anything was shown).

use std::sync::Mutex;
use std::time::Duration;

use offerloop_braze::export::{ExportPoll, ExportProgress, ExportWait};

/// The `--export-timeout` default: the Braze client's own (two hours; Braze says a 20M-user export
/// can take an hour or more).
pub fn default_export_timeout() -> Duration {
    ExportPoll::default().timeout()
}

/// Parses a `--export-timeout` value: a positive duration such as `90s`, `45m`, `2h`, `1h 30m` or
/// ISO 8601 `PT2H`.
///
/// # Errors
/// A value that is not a duration, or is zero or negative.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let parsed: jiff::SignedDuration = text
        .trim()
        .parse()
        .map_err(|e| format!("`{text}` is not a duration such as 90s, 45m, 2h or 1h 30m: {e}"))?;
    match Duration::try_from(parsed) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("`{text}`: the export timeout must be positive")),
    }
}

/// How often, at most, a line is shown while waiting.
pub const LINE_INTERVAL: Duration = Duration::from_secs(60);

/// Turns the reports of one export wait into lines for people, at most one a [`LINE_INTERVAL`].
#[derive(Debug, Default)]
pub struct ExportWaitLines {
    /// The `waited` of the last line shown, if any.
    last: Mutex<Option<Duration>>,
}

impl ExportWaitLines {
    /// The line to show for this report, if one is due: the first report of an export not ready,
    /// then one a minute, then the final "ready" when a line was shown before (a quick export shows
    /// nothing).
    pub fn line(&self, wait: &ExportWait) -> Option<String> {
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if wait.ready {
            return last.take().map(|_| {
                format!(
                    "{} export ready after {} ({})",
                    wait.endpoint,
                    minutes(wait.waited),
                    checks(wait.checks)
                )
            });
        }
        let due = last.is_none_or(|shown| wait.waited.saturating_sub(shown) >= LINE_INTERVAL);
        if !due {
            return None;
        }
        *last = Some(wait.waited);
        let left = wait.timeout.saturating_sub(wait.waited);
        Some(format!(
            "waiting for the {} export: not ready after {} ({}, last answer: {}); giving up in {} (--export-timeout {})",
            wait.endpoint,
            minutes(wait.waited),
            checks(wait.checks),
            wait.status,
            minutes(left),
            minutes(wait.timeout)
        ))
    }

    /// A progress callback that writes each due line with `write` (for `offerloop run`: to stderr).
    pub fn callback(write: impl Fn(&str) + Send + Sync + 'static) -> ExportProgress {
        let lines = Self::default();
        ExportProgress::new(move |wait| {
            if let Some(line) = lines.line(wait) {
                write(&line);
            }
        })
    }
}

/// `1 check`, `7 checks`.
fn checks(n: u32) -> String {
    if n == 1 {
        "1 check".to_owned()
    } else {
        format!("{n} checks")
    }
}

/// `2h`, `1h 05m`, `45m`, `12m 30s`, `45s` (to the minute above an hour, to the second below).
fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, 0) => format!("{min}m"),
        (0, min, sec) => format!("{min}m {sec:02}s"),
        (h, 0, _) => format!("{h}h"),
        (h, min, _) => format!("{h}h {min:02}m"),
    }
}

#[cfg(test)]
mod tests {
    use offerloop_braze::Endpoint;

    use super::*;

    fn report(waited: u64, checks: u32, ready: bool) -> ExportWait {
        let mut wait = ExportWait {
            endpoint: Endpoint::UsersExportSegment,
            checks,
            waited: Duration::from_secs(waited),
            timeout: Duration::from_secs(2 * 3600),
            ready,
            status: String::new(),
        };
        if !ready {
            wait.status = "HTTP 404".into();
        }
        wait
    }

    #[test]
    fn timeouts_parse_as_people_write_them() {
        assert_eq!(parse_timeout("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_timeout("45m"), Ok(Duration::from_secs(45 * 60)));
        assert_eq!(parse_timeout("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_timeout("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_timeout("PT2H"), Ok(Duration::from_secs(7200)));
        for bad in ["", "soon", "0s", "-5m"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
        assert_eq!(default_export_timeout(), Duration::from_secs(7200));
    }

    #[test]
    fn a_line_on_the_first_wait_then_once_a_minute_then_ready() {
        let lines = ExportWaitLines::default();
        let first = lines.line(&report(0, 1, false)).unwrap();
        assert_eq!(
            first,
            "waiting for the POST /users/export/segment export: not ready after 0s (1 check, last answer: HTTP 404); \
             giving up in 2h (--export-timeout 2h)"
        );
        assert_eq!(lines.line(&report(35, 4, false)), None);
        let minute = lines.line(&report(75, 5, false)).unwrap();
        assert!(
            minute.contains("not ready after 1m 15s (5 checks, last answer: HTTP 404)"),
            "{minute}"
        );
        assert!(minute.contains("giving up in 1h 58m"), "{minute}");
        assert_eq!(lines.line(&report(120, 6, false)), None);
        assert_eq!(
            lines.line(&report(140, 7, true)).as_deref(),
            Some("POST /users/export/segment export ready after 2m 20s (7 checks)")
        );
        // An export ready at the first check shows nothing.
        assert_eq!(ExportWaitLines::default().line(&report(0, 1, true)), None);
    }
}
