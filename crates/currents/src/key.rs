//! Object keys of a Currents connector: which event type a file holds and the hour Braze queued it.
//!
//! Braze documents two layouts (and warns that naming may change):
//!
//! ```text
//! <prefix>/dataexport.<cluster>.<conn>.integration.<id>/event_type=<type>/date=<YYYY-MM-DD-HH>/<schema-id>/<zone>/<name>.avro
//! <prefix>/dataexport.<cluster>.<conn>.integration.<id>/event_type=<type>/date=<YYYY-MM-DD-HH>/version=<n>/<environment>/<name>.avro
//! ```
//!
//! So a key is read by its labels only: the `event_type=` segment, the `date=` segment after it, and a
//! last segment ending `.avro`; the rest is opaque. `date=` is the UTC hour the events were queued,
//! not when they happened: attribution uses each event's own `time`.

use jiff::Timestamp;
use jiff::civil::DateTime;

use crate::{Error, Result};

/// What a Currents object key says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentsKey {
    /// The exact, case-sensitive Currents event name, e.g. `users.behaviors.Purchase`.
    pub event_type: String,
    /// The start of the UTC hour Braze queued the file's events in (the `date=` segment).
    pub queued_hour: Timestamp,
}

impl CurrentsKey {
    /// Reads `key`: `Ok(None)` for an object that is not a Currents event file (no `.avro` name, no
    /// `event_type=` or `date=` segment: a marker file, another tool's output), an error for one that
    /// is but whose labels cannot be read (an empty event type, a malformed hour).
    ///
    /// # Errors
    /// [`Error::Key`] naming the key and the segment.
    pub fn parse(key: &str) -> Result<Option<Self>> {
        let segments: Vec<&str> = key.split('/').collect();
        let Some(name) = segments.last() else {
            return Ok(None);
        };
        if !name.ends_with(".avro") {
            return Ok(None);
        }
        let directories = &segments[..segments.len() - 1];
        let Some(type_at) = directories.iter().position(|s| s.starts_with("event_type=")) else {
            return Ok(None);
        };
        let Some(date) = directories[type_at + 1..].iter().find_map(|s| s.strip_prefix("date=")) else {
            return Ok(None);
        };
        let bad = |reason: String| Error::Key {
            key: key.to_owned(),
            reason,
        };
        let event_type = directories[type_at].trim_start_matches("event_type=");
        if event_type.is_empty() {
            return Err(bad("the `event_type=` segment is empty".to_owned()));
        }
        let queued_hour = parse_hour(date).ok_or_else(|| {
            bad(format!(
                "the `date=` segment `{date}` is not a UTC hour `YYYY-MM-DD-HH`"
            ))
        })?;
        Ok(Some(Self {
            event_type: event_type.to_owned(),
            queued_hour,
        }))
    }
}

/// `YYYY-MM-DD-HH` as the start of that UTC hour.
fn parse_hour(text: &str) -> Option<Timestamp> {
    let (day, hour) = text.rsplit_once('-')?;
    if hour.len() != 2 || day.len() != 10 {
        return None;
    }
    let hour: i8 = hour.parse().ok()?;
    let date: jiff::civil::Date = day.parse().ok()?;
    let at = DateTime::from_parts(date, jiff::civil::Time::new(hour, 0, 0, 0).ok()?);
    jiff::tz::TimeZone::UTC.to_timestamp(at).ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn hour(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn brazes_worked_example_of_the_versioned_layout() {
        let key = "currents-export/dataexport.prod-01.S3.integration.69cadaaed2d51b7c75b1a3e5/\
                   event_type=users.messages.pushnotification.Send/date=2025-04-01-17/version=6/us-01/\
                   dataexport.prod-01.S3.integration.69cadaaed2d51b7c75b1a3e5+0+123456.avro";
        let parsed = CurrentsKey::parse(key).unwrap().unwrap();
        assert_eq!(parsed.event_type, "users.messages.pushnotification.Send");
        assert_eq!(parsed.queued_hour, hour("2025-04-01T17:00:00Z"));
    }

    #[test]
    fn the_older_schema_id_and_zone_layout() {
        let key = "currents/dataexport.prod-05.GCS.integration.65fdf55eea9932004d7fb071/\
                   event_type=users.behaviors.Purchase/date=2024-12-31-23/412/us-03/\
                   dataexport.prod-05.GCS.integration.65fdf55eea9932004d7fb071+3+99.avro";
        let parsed = CurrentsKey::parse(key).unwrap().unwrap();
        assert_eq!(parsed.event_type, "users.behaviors.Purchase");
        assert_eq!(parsed.queued_hour, hour("2024-12-31T23:00:00Z"));
    }

    #[test]
    fn objects_that_are_not_event_files_are_skipped() {
        for key in [
            "currents/dataexport.prod-01.S3.integration.x/event_type=users.behaviors.Purchase/date=2025-04-01-17/_SUCCESS",
            "currents/dataexport.prod-01.S3.integration.x/date=2025-04-01-17/file.avro",
            "currents/dataexport.prod-01.S3.integration.x/event_type=users.behaviors.Purchase/file.avro",
            "file.avro",
            "",
        ] {
            assert_eq!(CurrentsKey::parse(key).unwrap(), None, "{key}");
        }
    }

    #[test]
    fn a_malformed_hour_or_empty_type_is_an_error_naming_the_key() {
        for (key, says) in [
            (
                "p/event_type=users.behaviors.Purchase/date=2025-04-01/v/e/f.avro",
                "`date=` segment `2025-04-01`",
            ),
            (
                "p/event_type=users.behaviors.Purchase/date=2025-13-01-17/v/e/f.avro",
                "2025-13-01-17",
            ),
            (
                "p/event_type=users.behaviors.Purchase/date=2025-04-01-24/v/e/f.avro",
                "2025-04-01-24",
            ),
            (
                "p/event_type=/date=2025-04-01-17/v/e/f.avro",
                "`event_type=` segment is empty",
            ),
        ] {
            let err = CurrentsKey::parse(key).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains(says), "{err}");
        }
    }

    proptest! {
        /// Whatever the prefix and the opaque segments, the labels are what is read.
        #[test]
        fn labels_are_read_whatever_the_opaque_segments(
            prefix in proptest::collection::vec("[a-z0-9.+-]{1,12}", 0..4),
            opaque in proptest::collection::vec("[a-z0-9.+-]{1,12}", 0..4),
            event_type in "[a-zA-Z.]{1,40}",
            day in 0u32..3650,
            h in 0i8..24,
        ) {
            let date = jiff::civil::date(2020, 1, 1) + jiff::Span::new().days(i64::from(day));
            let mut segments = prefix.clone();
            segments.push(format!("event_type={event_type}"));
            segments.push(format!("date={date}-{h:02}"));
            segments.extend(opaque);
            segments.push("x+0+1.avro".to_owned());
            let parsed = CurrentsKey::parse(&segments.join("/")).unwrap().unwrap();
            prop_assert_eq!(parsed.event_type, event_type);
            let expected = jiff::tz::TimeZone::UTC.to_timestamp(date.at(h, 0, 0, 0)).unwrap();
            prop_assert_eq!(parsed.queued_hour, expected);
        }
    }
}
