//! [`OutcomeSource`]: where a run learns what customers did, beyond the profile deltas of exports.
//!
//! [`CurrentsDirectory`] reads a Currents-style feed (newline-delimited JSON files under
//! `<dir>/<YYYY-MM-DD>/`, as Braze Currents writes to a bucket synced to a local directory): purchases
//! (`users.behaviors.Purchase`, worth `price × quantity`), custom events (`users.behaviors.CustomEvent`,
//! worth the metric's value property when it has one) and unsubscribes
//! (`users.messages.<channel>.Unsubscribe`). Every event has exact times and a unique `id`, so it is
//! preferred to profile deltas when configured.
//!
//! The same feed carries **message events** ([`OutcomeSource::message_events`]): sends, deliveries
//! and engagement, bounces and aborts of each campaign or canvas, from which the engine finds the
//! messages Braze never sent (see [`crate::delivery`]). Profile deltas carry none: there, only the
//! send ledger (a rejected batch, a schedule that reached Braze after its time) and the rule that
//! never plans a send whose local time has passed protect learning.

use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use jiff::Timestamp;
use offerloop_domain::metric::MetricKind;
use offerloop_domain::{CustomerId, Outcome, OutcomeKind, UseCase};
use offerloop_store::Store;

use crate::{Error, Result};

/// The outcomes observed in a time range. Object-safe: `Arc<dyn OutcomeSource>`.
#[async_trait]
pub trait OutcomeSource: Send + Sync + fmt::Debug {
    /// Every outcome of `use_case`'s customers that occurred in `[from, to)` (a superset is fine:
    /// attribution ignores what does not match; each outcome carries a stable `dedupe_key`).
    async fn outcomes(&self, use_case: &UseCase, from: Timestamp, to: Timestamp) -> Result<Vec<Outcome>>;

    /// Stores what the last [`OutcomeSource::outcomes`] returned and returns how many were new. By
    /// default [`Store::record_outcomes`]; a source that keeps a checkpoint (the files it has read)
    /// stores it in the same transaction ([`Store::record_feed_outcomes`]), so a crash before this
    /// call reads the same files again and one after it never reads them twice.
    ///
    /// # Errors
    /// The store's.
    fn record(&self, store: &dyn Store, use_case: &UseCase, outcomes: &[Outcome], now: Timestamp) -> Result<usize> {
        let _ = now;
        Ok(store.record_outcomes(use_case.name.as_str(), outcomes)?)
    }

    /// Every message event (send, delivery or engagement, bounce or abort) of `use_case`'s customers
    /// in `[from, to)`, of any campaign or canvas (a superset is fine), or `None` when the source
    /// carries no message events (the default). With events, a message of which none arrives is
    /// found not delivered ([`crate::delivery`]).
    async fn message_events(
        &self,
        use_case: &UseCase,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Option<Vec<MessageEvent>>> {
        let _ = (use_case, from, to);
        Ok(None)
    }
}

/// What a message event says about its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageEventKind {
    /// Braze sent it (`Send`, SMS `CarrierSend`).
    Sent,
    /// It arrived: a delivery, or engagement that proves one (`Delivery`, `Open`, `Click`, `Read`,
    /// `Impression`, `ShortLinkClick`, `Dismiss`, `IosForeground`).
    Delivered,
    /// It did not reach the customer (`Bounce`, `DeliveryFailure`, `Rejection`, `Failure`, `Abort`).
    /// A `SoftBounce` is not one: Braze retries it.
    Failed,
}

impl MessageEventKind {
    /// What a Currents message event named `name` (`Send`, `Delivery`, `Bounce`…, the last part of
    /// `users.messages.<channel>.<name>`) says, or `None` for one that says nothing about delivery.
    pub fn of_event_name(name: &str) -> Option<Self> {
        match name {
            "Send" | "CarrierSend" => Some(Self::Sent),
            "Delivery" | "Open" | "Click" | "Read" | "Impression" | "ShortLinkClick" | "Dismiss" | "IosForeground" => {
                Some(Self::Delivered)
            }
            "Bounce" | "DeliveryFailure" | "Rejection" | "Failure" | "Abort" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One message event of a customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageEvent {
    /// The customer (`external_user_id`).
    pub customer_id: CustomerId,
    /// What it says.
    pub kind: MessageEventKind,
    /// When.
    pub occurred_at: Timestamp,
    /// The campaign it belongs to, if any.
    pub campaign_id: Option<String>,
    /// The canvas it belongs to, if any.
    pub canvas_id: Option<String>,
}

/// One Currents record as a message event, or `None` for a record that is not one (behaviours, a
/// soft bounce, an inbound message) or lacks a field.
pub fn currents_message_event(record: &serde_json::Value) -> Option<MessageEvent> {
    let event_type = record.get("event_type")?.as_str()?;
    let name = event_type.strip_prefix("users.messages.")?.rsplit('.').next()?;
    let kind = MessageEventKind::of_event_name(name)?;
    let text = |key: &str| record.get(key).and_then(serde_json::Value::as_str).map(str::to_owned);
    Some(MessageEvent {
        customer_id: CustomerId::new(record.get("external_user_id")?.as_str()?).ok()?,
        kind,
        occurred_at: Timestamp::from_second(record.get("time")?.as_i64()?).ok()?,
        campaign_id: text("campaign_id"),
        canvas_id: text("canvas_id"),
    })
}

/// A Currents-style directory of NDJSON event files.
#[derive(Clone, Debug)]
pub struct CurrentsDirectory {
    dir: PathBuf,
}

impl CurrentsDirectory {
    /// A feed read from `dir` (its subdirectories are UTC dates).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The value property of custom events under `metric`, if any.
pub(crate) fn value_property(metric: &MetricKind) -> Option<&str> {
    match metric {
        MetricKind::EventValue { property, .. } => Some(property),
        _ => None,
    }
}

/// One Currents record as an outcome, or `None` for a record that is not an outcome (sends, opens...)
/// or lacks a field.
pub fn currents_outcome(record: &serde_json::Value, value_property: Option<&str>) -> Option<Outcome> {
    let event_type = record.get("event_type")?.as_str()?;
    let customer_id = CustomerId::new(record.get("external_user_id")?.as_str()?).ok()?;
    let occurred_at = Timestamp::from_second(record.get("time")?.as_i64()?).ok()?;
    let id = match record.get("id")? {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let (kind, value) = match event_type {
        "users.behaviors.Purchase" => {
            let price = record.get("price").and_then(serde_json::Value::as_f64).unwrap_or(0.0);
            let quantity = record
                .get("quantity")
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(1.0);
            let product_id = record.get("product_id")?.as_str()?.to_owned();
            (OutcomeKind::Purchase { product_id }, price * quantity)
        }
        "users.behaviors.CustomEvent" => {
            let name = record.get("name")?.as_str()?.to_owned();
            let value = value_property
                .and_then(|p| {
                    let props = record.get("properties")?;
                    // Currents writes `properties` as a JSON string; accept an object too.
                    let parsed;
                    let object = match props {
                        serde_json::Value::String(s) => {
                            parsed = serde_json::from_str::<serde_json::Value>(s).ok()?;
                            &parsed
                        }
                        other => other,
                    };
                    object.get(p)?.as_f64()
                })
                .unwrap_or(0.0);
            (OutcomeKind::CustomEvent { name }, value)
        }
        t if t.starts_with("users.messages.") && t.ends_with(".Unsubscribe") => {
            let channel = t
                .trim_start_matches("users.messages.")
                .split('.')
                .next()
                .map(str::to_owned);
            (OutcomeKind::Unsubscribe { channel }, 0.0)
        }
        _ => return None,
    };
    Some(Outcome {
        customer_id,
        kind,
        occurred_at,
        value,
        dedupe_key: format!("currents:{id}"),
    })
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    Ok(paths)
}

fn scan(dir: &Path, from: Timestamp, to: Timestamp, value_property: Option<&str>) -> Result<Vec<Outcome>> {
    scan_with(
        dir,
        from,
        to,
        |_| true,
        |record| currents_outcome(record, value_property).map(|o| (o.occurred_at, o)),
    )
}

/// The message events of the feed in `[from, to)`.
fn scan_messages(dir: &Path, from: Timestamp, to: Timestamp) -> Result<Vec<MessageEvent>> {
    scan_with(
        dir,
        from,
        to,
        |line| line.contains("users.messages."),
        |record| currents_message_event(record).map(|e| (e.occurred_at, e)),
    )
}

/// Every record of the day directories covering `[from, to)` that `parse` turns into a value at a
/// time in `[from, to)`; lines `keep` refuses are not parsed.
fn scan_with<T>(
    dir: &Path,
    from: Timestamp,
    to: Timestamp,
    keep: impl Fn(&str) -> bool,
    parse: impl Fn(&serde_json::Value) -> Option<(Timestamp, T)>,
) -> Result<Vec<T>> {
    let first_day = jiff::tz::TimeZone::UTC.to_datetime(from).date();
    let last_day = jiff::tz::TimeZone::UTC.to_datetime(to).date();
    let mut out = Vec::new();
    let mut malformed = 0usize;
    for day_dir in read_dir_sorted(dir)? {
        let Some(day) = day_dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<jiff::civil::Date>().ok())
        else {
            continue;
        };
        if day < first_day || day > last_day || !day_dir.is_dir() {
            continue;
        }
        for file in read_dir_sorted(&day_dir)? {
            let hidden = file
                .file_name()
                .and_then(|n| n.to_str())
                .is_none_or(|n| n.starts_with('.'));
            if hidden || !file.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&file).map_err(|source| Error::Io {
                path: file.clone(),
                source,
            })?;
            for line in text.lines().filter(|l| !l.trim().is_empty() && keep(l)) {
                match serde_json::from_str::<serde_json::Value>(line) {
                    Ok(record) => {
                        if let Some((at, value)) = parse(&record)
                            && at >= from
                            && at < to
                        {
                            out.push(value);
                        }
                    }
                    Err(_) => malformed += 1,
                }
            }
        }
    }
    if malformed > 0 {
        tracing::warn!(malformed, dir = %dir.display(), "skipped malformed Currents lines");
    }
    Ok(out)
}

#[async_trait]
impl OutcomeSource for CurrentsDirectory {
    async fn outcomes(&self, use_case: &UseCase, from: Timestamp, to: Timestamp) -> Result<Vec<Outcome>> {
        let dir = self.dir.clone();
        let property = value_property(&use_case.metric.kind).map(str::to_owned);
        tokio::task::spawn_blocking(move || scan(&dir, from, to, property.as_deref()))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    }

    async fn message_events(
        &self,
        _use_case: &UseCase,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Option<Vec<MessageEvent>>> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || scan_messages(&dir, from, to))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn currents_records_become_outcomes() {
        let purchase = json!({"id": "e1", "event_type": "users.behaviors.Purchase", "external_user_id": "c1",
            "time": 1_767_607_200, "product_id": "p", "price": 20.0, "quantity": 2});
        let o = currents_outcome(&purchase, None).unwrap();
        assert_eq!(o.value, 40.0);
        assert_eq!(o.dedupe_key, "currents:e1");
        assert_eq!(o.occurred_at.as_second(), 1_767_607_200);
        let event = json!({"id": "e2", "event_type": "users.behaviors.CustomEvent", "external_user_id": "c1",
            "time": 1_767_607_200, "name": "points", "properties": "{\"amount\": 7}"});
        assert_eq!(currents_outcome(&event, Some("amount")).unwrap().value, 7.0);
        assert_eq!(currents_outcome(&event, None).unwrap().value, 0.0);
        let unsub =
            json!({"id": "e3", "event_type": "users.messages.email.Unsubscribe", "external_user_id": "c1", "time": 1});
        assert_eq!(
            currents_outcome(&unsub, None).unwrap().kind,
            OutcomeKind::Unsubscribe {
                channel: Some("email".into())
            }
        );
        let send = json!({"id": "e4", "event_type": "users.messages.email.Send", "external_user_id": "c1", "time": 1});
        assert!(currents_outcome(&send, None).is_none());
    }

    #[test]
    fn message_records_become_message_events() {
        let record = |event_type: &str| {
            json!({"id": "m", "event_type": event_type, "external_user_id": "c1", "time": 1_767_607_200,
                "campaign_id": "camp", "dispatch_id": "d"})
        };
        let kind = |event_type: &str| currents_message_event(&record(event_type)).map(|e| e.kind);
        assert_eq!(kind("users.messages.email.Send"), Some(MessageEventKind::Sent));
        assert_eq!(kind("users.messages.email.Delivery"), Some(MessageEventKind::Delivered));
        assert_eq!(
            kind("users.messages.pushnotification.Open"),
            Some(MessageEventKind::Delivered)
        );
        assert_eq!(kind("users.messages.email.Bounce"), Some(MessageEventKind::Failed));
        assert_eq!(
            kind("users.messages.sms.DeliveryFailure"),
            Some(MessageEventKind::Failed)
        );
        assert_eq!(kind("users.messages.email.SoftBounce"), None);
        assert_eq!(kind("users.behaviors.Purchase"), None);
        let event = currents_message_event(&record("users.messages.email.Send")).unwrap();
        assert_eq!(event.campaign_id.as_deref(), Some("camp"));
        assert_eq!(event.canvas_id, None);
        assert_eq!(event.occurred_at.as_second(), 1_767_607_200);
    }

    #[test]
    fn a_directory_is_scanned_by_day_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let day = dir.path().join("2026-01-05");
        std::fs::create_dir_all(&day).unwrap();
        let line = |id: &str, t: i64| {
            json!({"id": id, "event_type": "users.behaviors.Purchase", "external_user_id": "c1",
                "time": t, "product_id": "p", "price": 1.0, "quantity": 1})
            .to_string()
        };
        // 2026-01-05T00:00:00Z = 1767571200.
        std::fs::write(
            day.join("events-000001.json"),
            format!("{}\n{}\nnot json\n", line("a", 1_767_571_200), line("b", 1_767_600_000)),
        )
        .unwrap();
        std::fs::write(day.join(".events-000002.json"), line("hidden", 1_767_571_300)).unwrap();
        let from = Timestamp::from_second(1_767_571_200).unwrap();
        let to = Timestamp::from_second(1_767_590_000).unwrap();
        let out = scan(dir.path(), from, to, None).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].dedupe_key, "currents:a");
        assert!(scan(&dir.path().join("absent"), from, to, None).unwrap().is_empty());
        std::fs::write(
            day.join("events-000003.json"),
            json!({"id": "s", "event_type": "users.messages.email.Send", "external_user_id": "c1",
                "time": 1_767_571_300, "campaign_id": "camp"})
            .to_string(),
        )
        .unwrap();
        let sends = scan_messages(dir.path(), from, to).unwrap();
        assert_eq!(sends.len(), 1);
        assert_eq!(sends[0].kind, MessageEventKind::Sent);
        assert_eq!(
            scan(dir.path(), from, to, None).unwrap().len(),
            1,
            "a send is not an outcome"
        );
    }
}
