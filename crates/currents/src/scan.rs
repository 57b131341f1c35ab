//! What a Currents bucket holds, before a first run: files and events per event type and day, users,
//! anonymous events, purchase revenue per currency, duplicates and unreadable files
//! (`offerloop currents scan`). The JSON form of [`ScanReport`] is documented in
//! `docs/configuration.md` and stable: fields are only ever added.

use std::collections::{BTreeMap, HashSet};

use jiff::Timestamp;
use serde::Serialize;

use crate::bucket::Bucket;
use crate::dedupe::Dedupe;
use crate::event::EventType;
use crate::{Result, file};

/// One event type on one UTC day (of the hour Braze queued the files).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DayCount {
    /// Files read.
    pub files: usize,
    /// Events, duplicates excluded.
    pub events: usize,
}

/// What [`scan`] found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ScanReport {
    /// The bucket's URL.
    pub bucket: String,
    /// Files queued before this were not read.
    pub since: Option<Timestamp>,
    /// Event files under the prefix (since `since`), read or not.
    pub files: usize,
    /// Objects under the prefix that are not event files.
    pub other_objects: usize,
    /// Events read, duplicates excluded.
    pub events: usize,
    /// Events dropped because an event of the same type and id was read before.
    pub duplicates: usize,
    /// Per event type, per UTC day (`YYYY-MM-DD`): files and events.
    pub by_type: BTreeMap<String, BTreeMap<String, DayCount>>,
    /// Distinct Braze users (`user_id`) with an event.
    pub users: usize,
    /// Distinct Braze users with an event that carries no `external_user_id` (anonymous profiles:
    /// offerloop cannot attribute their events).
    pub users_without_external_id: usize,
    /// Events without an `external_user_id`.
    pub events_without_external_id: usize,
    /// Sum of purchase prices per currency code.
    pub purchase_revenue: BTreeMap<String, f64>,
    /// The earliest and latest event `time`.
    pub first_event: Option<Timestamp>,
    /// See `first_event`.
    pub last_event: Option<Timestamp>,
    /// Files that could not be read: key and reason.
    pub unreadable: Vec<Unreadable>,
}

/// A file that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    /// Its key.
    pub key: String,
    /// Why.
    pub reason: String,
}

/// Reads every event file of `bucket` queued at or after `since`, calling `progress(done, total)`
/// after each file.
///
/// # Errors
/// Listing or fetching fails ([`crate::Error::Bucket`]), or a key looks like an event file but cannot
/// be read ([`crate::Error::Key`]). An undecodable file is reported in the result, not an error.
pub async fn scan(
    bucket: &Bucket,
    since: Option<Timestamp>,
    mut progress: impl FnMut(usize, usize),
) -> Result<ScanReport> {
    let (files, other_objects) = bucket.list().await?;
    let files: Vec<_> = files
        .into_iter()
        .filter(|f| since.is_none_or(|s| f.parsed.queued_hour >= s))
        .collect();
    let mut report = ScanReport {
        bucket: bucket.url().to_owned(),
        since,
        files: files.len(),
        other_objects,
        ..ScanReport::default()
    };
    let mut seen = Dedupe::unbounded();
    let mut users: HashSet<String> = HashSet::new();
    let mut anonymous: HashSet<String> = HashSet::new();
    for (done, f) in files.iter().enumerate() {
        let bytes = bucket.fetch(&f.key).await?;
        let day = jiff::tz::TimeZone::UTC
            .to_datetime(f.parsed.queued_hour)
            .date()
            .to_string();
        match file::decode(&f.key, &f.parsed.event_type, &bytes) {
            Err(e) => report.unreadable.push(Unreadable {
                key: f.key.clone(),
                reason: e.to_string(),
            }),
            Ok(events) => {
                let count = report
                    .by_type
                    .entry(f.parsed.event_type.clone())
                    .or_default()
                    .entry(day)
                    .or_default();
                count.files += 1;
                for e in events {
                    if !seen.first_time(&f.parsed.event_type, &e.id, f.parsed.queued_hour) {
                        report.duplicates += 1;
                        continue;
                    }
                    count.events += 1;
                    report.events += 1;
                    report.first_event = Some(report.first_event.map_or(e.time, |t| t.min(e.time)));
                    report.last_event = Some(report.last_event.map_or(e.time, |t| t.max(e.time)));
                    if let Some(user) = &e.user_id {
                        users.insert(user.clone());
                        if e.external_user_id.is_none() {
                            anonymous.insert(user.clone());
                        }
                    }
                    if e.external_user_id.is_none() {
                        report.events_without_external_id += 1;
                    }
                    if e.event_type == EventType::Purchase
                        && let (Some(price), Some(currency)) = (e.price, &e.currency)
                    {
                        *report.purchase_revenue.entry(currency.clone()).or_default() += price;
                    }
                }
            }
        }
        progress(done + 1, files.len());
    }
    report.users = users.len();
    report.users_without_external_id = anonymous.len();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use apache_avro::Codec;
    use object_store::path::Path;
    use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};

    use super::*;
    use crate::testing::{PURCHASE_TYPE, purchase, purchase_file};

    #[tokio::test]
    async fn a_scan_counts_per_type_and_day_users_revenue_duplicates_and_broken_files() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let key = |hour: &str, n: u32| {
            format!(
                "currents/dataexport.prod-01.S3.integration.x/event_type={PURCHASE_TYPE}/date={hour}/version=10/us-01/f+0+{n}.avro"
            )
        };
        let put = |k: String, bytes: Vec<u8>| {
            let store = store.clone();
            async move { store.put(&Path::from(k), PutPayload::from(bytes)).await.unwrap() }
        };
        put(
            key("2026-01-01-10", 1),
            purchase_file(
                Codec::Null,
                vec![purchase("e1", Some("c1"), 10.0), purchase("e2", None, 2.5)],
            ),
        )
        .await;
        put(
            key("2026-01-02-00", 2),
            purchase_file(
                Codec::Null,
                vec![purchase("e1", Some("c1"), 10.0), purchase("e3", Some("c3"), 4.0)],
            ),
        )
        .await;
        put(key("2026-01-02-01", 3), b"Obj\x01broken".to_vec()).await;
        put("currents/README".to_owned(), b"x".to_vec()).await;
        let bucket = Bucket::from_store("memory://", store.clone(), Path::from("currents"));
        let mut calls = Vec::new();
        let report = scan(&bucket, None, |d, t| calls.push((d, t))).await.unwrap();
        assert_eq!(calls.last(), Some(&(3, 3)));
        assert_eq!(
            (report.files, report.other_objects, report.events, report.duplicates),
            (3, 1, 3, 1)
        );
        let days = &report.by_type[PURCHASE_TYPE];
        assert_eq!(days["2026-01-01"], DayCount { files: 1, events: 2 });
        assert_eq!(days["2026-01-02"], DayCount { files: 1, events: 1 });
        // Every test purchase has the same Braze user id; one of its events is anonymous.
        assert_eq!(
            (
                report.users,
                report.users_without_external_id,
                report.events_without_external_id
            ),
            (1, 1, 1)
        );
        assert_eq!(report.purchase_revenue["USD"], 16.5);
        assert_eq!(report.unreadable.len(), 1);
        assert!(report.unreadable[0].key.ends_with("f+0+3.avro"));

        let since: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let later = scan(&bucket, Some(since), |_, _| {}).await.unwrap();
        assert_eq!((later.files, later.events, later.duplicates), (2, 2, 0));
        let json = serde_json::to_value(&later).unwrap();
        for field in [
            "bucket",
            "since",
            "files",
            "events",
            "by_type",
            "users",
            "purchase_revenue",
            "unreadable",
        ] {
            assert!(json.get(field).is_some(), "{field} in {json}");
        }
    }
}
