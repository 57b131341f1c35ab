//! `offerloop currents scan URL [--since TIME] [--json]`: what a Braze Currents bucket holds before
//! the first run (`offerloop_currents::scan`), for people or as stable JSON.

use std::fmt::Write as _;

use anyhow::Context as _;
use jiff::Timestamp;
use offerloop_currents::{Bucket, ScanReport};

/// Scans the bucket at `url` (credentials from the environment), reporting progress per file.
///
/// # Errors
/// The bucket cannot be opened or listed, or a file cannot be fetched.
pub async fn scan(
    url: &str,
    since: Option<Timestamp>,
    progress: impl FnMut(usize, usize),
) -> anyhow::Result<ScanReport> {
    let bucket = Bucket::open(url)?;
    offerloop_currents::scan(&bucket, since, progress)
        .await
        .with_context(|| format!("scanning {url}"))
}

/// The report for people.
pub fn render(r: &ScanReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Currents bucket {}", r.bucket);
    if let Some(since) = r.since {
        let _ = writeln!(out, "files queued since {since}");
    }
    let _ = writeln!(
        out,
        "{} event files ({} other objects), {} events, {} duplicates dropped",
        r.files, r.other_objects, r.events, r.duplicates
    );
    if let (Some(first), Some(last)) = (r.first_event, r.last_event) {
        let _ = writeln!(out, "events from {first} to {last}");
    }
    let _ = writeln!(
        out,
        "{} users, {} of them with events without an external id ({} events: not attributable)",
        r.users, r.users_without_external_id, r.events_without_external_id
    );
    for (currency, revenue) in &r.purchase_revenue {
        let _ = writeln!(out, "purchase revenue {currency} {revenue:.2}");
    }
    let _ = writeln!(
        out,
        "\n{:<52} {:<10} {:>7} {:>9}",
        "event type", "day", "files", "events"
    );
    for (event_type, days) in &r.by_type {
        for (day, c) in days {
            let _ = writeln!(out, "{event_type:<52} {day:<10} {:>7} {:>9}", c.files, c.events);
        }
    }
    if !r.unreadable.is_empty() {
        let _ = writeln!(
            out,
            "\n{} unreadable files (skipped; a complete copy is read when Braze writes one):",
            r.unreadable.len()
        );
        for u in &r.unreadable {
            let _ = writeln!(out, "  {}: {}", u.key, u.reason);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use offerloop_currents::scan::{DayCount, Unreadable};

    use super::*;

    #[test]
    fn the_report_for_people_names_every_count_and_broken_file() {
        let mut days = BTreeMap::new();
        days.insert("2026-01-01".to_owned(), DayCount { files: 2, events: 30 });
        let report = ScanReport {
            bucket: "s3://acme/currents".into(),
            files: 3,
            events: 30,
            duplicates: 4,
            by_type: BTreeMap::from([("users.behaviors.Purchase".to_owned(), days)]),
            users: 25,
            users_without_external_id: 2,
            events_without_external_id: 3,
            purchase_revenue: BTreeMap::from([("USD".to_owned(), 1234.5)]),
            unreadable: vec![Unreadable {
                key: "k.avro".into(),
                reason: "truncated".into(),
            }],
            ..ScanReport::default()
        };
        let text = render(&report);
        for needle in [
            "s3://acme/currents",
            "3 event files",
            "30 events, 4 duplicates dropped",
            "25 users, 2 of them",
            "purchase revenue USD 1234.50",
            "users.behaviors.Purchase",
            "2026-01-01",
            "1 unreadable files",
            "k.avro: truncated",
        ] {
            assert!(text.contains(needle), "{needle} in\n{text}");
        }
    }
}
