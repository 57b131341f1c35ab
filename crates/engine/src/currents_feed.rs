//! [`CurrentsFeed`]: outcomes and message events from a Braze Currents bucket, as Braze writes it
//! (Avro files under `event_type=…/date=…/`; see `offerloop_currents`).
//!
//! - **Outcomes** (purchases, custom events, unsubscribes) are read from the files not yet in the
//!   store's checkpoint of this use case and bucket, and stored with the keys of the files they came
//!   from in one transaction (its [`OutcomeSource::record`], [`Store::record_feed_outcomes`]): a run
//!   that crashes before re-reads the same files, and a file is never read twice once stored. Every new event is returned, whatever its
//!   time, so a late event (an old `time` in a new file) is attributed by its own time.
//! - **Message events** (send, delivery and engagement, bounce and failure) are only needed for the
//!   messages whose grace period ends, so they are read from the files Braze queued since the
//!   period's start (`date=` hour), never checkpointed in the store; the feed keeps each file's
//!   events in memory, so a later call of the same process reads only the files it has not.
//! - Events without an `external_user_id` (anonymous users) cannot be attributed: they are counted
//!   and logged, not returned. Unreadable files are logged and retried at the next run.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use offerloop_currents::{Bucket, CurrentsEvent, Dedupe, EventType, ReadReport, Select};
use offerloop_domain::{CustomerId, Outcome, OutcomeKind, UseCase};
use offerloop_store::Store;

use crate::Result;
use crate::outcomes::{MessageEvent, MessageEventKind, OutcomeSource, value_property};

/// How long before the first message's send Braze may have queued its events (a clock skew margin).
const QUEUE_SLACK: SignedDuration = SignedDuration::from_hours(1);

/// Outcomes and message events from a Braze Currents bucket: outcomes from the files not yet in the
/// store's checkpoint, stored with their keys in one transaction ([`OutcomeSource::record`]); message
/// events from the files queued since the period asked about, read again each time.
#[derive(Debug)]
pub struct CurrentsFeed {
    bucket: Bucket,
    /// Where the checkpoint is read from.
    store: Arc<dyn Store>,
    /// The keys of the files the last [`OutcomeSource::outcomes`] read, checkpointed by
    /// [`OutcomeSource::record`] with their outcomes.
    pending: Mutex<Vec<String>>,
    /// The message events of each file read, by queue hour and key: a later call in the same
    /// process (the demo's days, a service) reads only the files it has not, and forgets the files
    /// queued before the period it is asked about.
    message_files: Mutex<BTreeMap<(Timestamp, String), Vec<MessageEvent>>>,
}

impl CurrentsFeed {
    /// The feed of `bucket`, checkpointed in `store`.
    pub fn new(bucket: Bucket, store: Arc<dyn Store>) -> Self {
        Self {
            bucket,
            store,
            pending: Mutex::new(Vec::new()),
            message_files: Mutex::new(BTreeMap::new()),
        }
    }

    /// Opens the bucket at `url` (credentials from the environment).
    ///
    /// # Errors
    /// [`crate::Error::Currents`] for a URL the bucket cannot be opened with.
    pub fn open(url: &str, store: Arc<dyn Store>) -> Result<Self> {
        Ok(Self::new(Bucket::open(url)?, store))
    }
}

/// The subscription changes of channels other than email (an email unsubscribe is read from
/// `users.messages.email.Unsubscribe`, which Braze writes beside the global change).
const SUBSCRIPTION_CHANGES: [&str; 2] = [
    "users.behaviors.subscriptiongroup.StateChange",
    "users.behaviors.subscription.GlobalStateChange",
];

/// Whether files of `event_type` hold outcomes.
fn holds_outcomes(event_type: &str) -> bool {
    match EventType::of(event_type) {
        EventType::Purchase | EventType::CustomEvent => true,
        EventType::Message { name, .. } => name == "Unsubscribe",
        EventType::Other(other) => SUBSCRIPTION_CHANGES.contains(&other.as_str()),
    }
}

/// Whether files of `event_type` hold message events that say something about delivery.
fn holds_message_events(event_type: &str) -> bool {
    matches!(EventType::of(event_type), EventType::Message { name, .. } if MessageEventKind::of_event_name(&name).is_some())
}

/// The outcome an event is, or `None` for one that is not an outcome or names no customer.
fn outcome_of(event: &CurrentsEvent, value_property: Option<&str>) -> Option<Outcome> {
    let customer_id = CustomerId::new(event.external_user_id.as_deref()?).ok()?;
    let (kind, value) = match &event.event_type {
        // Real Currents purchases carry one product at its `price` (no quantity field).
        EventType::Purchase => (
            OutcomeKind::Purchase {
                product_id: event.product_id.clone()?,
            },
            event.price.unwrap_or(0.0),
        ),
        EventType::CustomEvent => {
            let value = value_property
                .and_then(|p| {
                    let properties: serde_json::Value = serde_json::from_str(event.properties.as_deref()?).ok()?;
                    properties.get(p)?.as_f64()
                })
                .unwrap_or(0.0);
            (
                OutcomeKind::CustomEvent {
                    name: event.name.clone()?,
                },
                value,
            )
        }
        EventType::Message { channel, name } if name == "Unsubscribe" => (
            OutcomeKind::Unsubscribe {
                channel: Some(channel.clone()),
            },
            0.0,
        ),
        EventType::Other(other) if SUBSCRIPTION_CHANGES.contains(&other.as_str()) => {
            let unsubscribed = event
                .subscription_status
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("unsubscribed"));
            let channel = event.channel.as_deref().map(str::to_ascii_lowercase);
            if !unsubscribed || channel.as_deref() == Some("email") {
                return None;
            }
            (OutcomeKind::Unsubscribe { channel }, 0.0)
        }
        _ => return None,
    };
    Some(Outcome {
        customer_id,
        kind,
        occurred_at: event.time,
        value,
        dedupe_key: format!("currents:{}", event.id),
    })
}

/// The message event an event is, or `None`.
fn message_event_of(event: &CurrentsEvent) -> Option<MessageEvent> {
    let EventType::Message { channel, name } = &event.event_type else {
        return None;
    };
    Some(MessageEvent {
        customer_id: CustomerId::new(event.external_user_id.as_deref()?).ok()?,
        kind: MessageEventKind::of_event_name(name)?,
        occurred_at: event.time,
        channel: channel.clone(),
        ids: event.message.clone(),
    })
}

fn log(report: &ReadReport, url: &str, what: &str) {
    for (key, reason) in &report.unreadable {
        tracing::warn!(
            bucket = url,
            key,
            reason,
            "an unreadable Currents file was skipped; it is read again next run"
        );
    }
    tracing::info!(
        bucket = url,
        what,
        files = report.files_read,
        events = report.events,
        duplicates = report.duplicates,
        without_external_id = report.without_external_id,
        "read Currents"
    );
}

#[async_trait]
impl OutcomeSource for CurrentsFeed {
    async fn outcomes(&self, use_case: &UseCase, _from: Timestamp, _to: Timestamp) -> Result<Vec<Outcome>> {
        let name = use_case.name.as_str();
        let url = self.bucket.url();
        let checkpoint = self.store.feed_keys_read(name, url)?;
        let property = value_property(&use_case.metric.kind);
        let mut outcomes = Vec::new();
        let read = self
            .bucket
            .for_each_new(
                &checkpoint,
                &mut Dedupe::default(),
                &Select {
                    event_type: &holds_outcomes,
                    queued_since: None,
                },
                |_, event| outcomes.extend(outcome_of(&event, property)),
            )
            .await?;
        log(&read.report, url, "outcomes");
        *self.pending.lock().unwrap_or_else(PoisonError::into_inner) = read.keys;
        Ok(outcomes)
    }

    fn record(&self, store: &dyn Store, use_case: &UseCase, outcomes: &[Outcome], now: Timestamp) -> Result<usize> {
        let keys = std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        Ok(store.record_feed_outcomes(use_case.name.as_str(), self.bucket.url(), &keys, outcomes, now)?)
    }

    async fn message_events(
        &self,
        _use_case: &UseCase,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Option<Vec<MessageEvent>>> {
        // A file's `date=` is the start of the hour its events were queued in, at or after their time.
        let earliest = from
            .checked_sub(QUEUE_SLACK + SignedDuration::from_hours(1))
            .unwrap_or(from);
        let known: HashSet<String> = {
            let mut cache = self.message_files.lock().unwrap_or_else(PoisonError::into_inner);
            cache.retain(|(hour, _), _| *hour >= earliest);
            cache.keys().map(|(_, key)| key.clone()).collect()
        };
        let mut new: BTreeMap<(Timestamp, String), Vec<MessageEvent>> = BTreeMap::new();
        let read = self
            .bucket
            .for_each_new(
                &known,
                &mut Dedupe::default(),
                &Select {
                    event_type: &holds_message_events,
                    queued_since: Some(earliest),
                },
                |file, event| {
                    let events = new.entry((file.parsed.queued_hour, file.key.clone())).or_default();
                    events.extend(message_event_of(&event));
                },
            )
            .await?;
        log(&read.report, self.bucket.url(), "message events");
        let mut cache = self.message_files.lock().unwrap_or_else(PoisonError::into_inner);
        cache.extend(new);
        Ok(Some(
            cache
                .values()
                .flatten()
                .filter(|e| (from..to).contains(&e.occurred_at))
                .cloned()
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use apache_avro::types::Value;

    use super::*;
    use crate::testing::{DELIVERY, FakeStore, PURCHASE, currents_key as key, opt, purchase, write_avro as write};

    fn use_case() -> UseCase {
        offerloop_domain::config::parse_use_case(include_str!("../../../examples/winback.toml"), "winback.toml")
            .unwrap()
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn outcomes_are_read_once_with_their_files_checkpointed_and_late_events_kept() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let store = Arc::new(FakeStore::in_memory().unwrap());
        let feed = CurrentsFeed::open(&url, store.clone()).unwrap();
        let uc = use_case();
        // 2026-01-02T10:00:00Z = 1767348000.
        write(
            dir.path(),
            &key("users.behaviors.Purchase", "2026-01-02-10", 1),
            PURCHASE,
            vec![
                purchase("e1", Some("c1"), 1_767_348_000, 12.34),
                purchase("e2", None, 1_767_348_001, 5.0),
            ],
        );
        // A late event (a week old) in a new folder, and the duplicate of e1.
        write(
            dir.path(),
            &key("users.behaviors.Purchase", "2026-01-02-11", 2),
            PURCHASE,
            vec![
                purchase("e0", Some("c2"), 1_766_743_200, 7.5),
                purchase("e1", Some("c1"), 1_767_348_000, 12.34),
            ],
        );
        let now = t("2026-01-02T12:00:00Z");
        let got = feed.outcomes(&uc, t("2026-01-02T00:00:00Z"), now).await.unwrap();
        assert!(
            store.feed_keys_read("winback-lapsed-90d", &url).unwrap().is_empty(),
            "nothing before record"
        );
        assert_eq!(feed.record(store.as_ref(), &uc, &got, now).unwrap(), 2);
        let mut keys: Vec<(&str, f64)> = got.iter().map(|o| (o.dedupe_key.as_str(), o.value)).collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        assert_eq!(
            keys,
            [("currents:e0", 7.5), ("currents:e1", 12.34)],
            "anonymous e2 is not an outcome"
        );
        assert_eq!(
            store
                .outcomes_between("winback-lapsed-90d", Timestamp::MIN, now)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(store.feed_keys_read("winback-lapsed-90d", &url).unwrap().len(), 2);
        // Read again: nothing new.
        assert!(
            feed.outcomes(&uc, t("2026-01-02T00:00:00Z"), now)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn message_events_come_from_the_files_queued_since_the_period() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let feed = CurrentsFeed::open(&url, Arc::new(FakeStore::in_memory().unwrap())).unwrap();
        let delivery = |id: &str, time: i32| {
            vec![
                ("id", Value::String(id.into())),
                ("user_id", Value::String("u".into())),
                ("external_user_id", opt(Some("c1"))),
                ("time", Value::Int(time)),
                ("campaign_id", opt(Some("camp-1"))),
            ]
        };
        let event_type = "users.messages.email.Delivery";
        write(
            dir.path(),
            &key(event_type, "2026-01-02-10", 1),
            DELIVERY,
            vec![delivery("d1", 1_767_348_000)],
        );
        write(
            dir.path(),
            &key(event_type, "2025-12-01-10", 2),
            DELIVERY,
            vec![delivery("d0", 1_764_583_200)],
        );
        let from = t("2026-01-02T09:00:00Z");
        let events = feed
            .message_events(&use_case(), from, t("2026-01-03T00:00:00Z"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, MessageEventKind::Delivered);
        assert_eq!(events[0].ids.campaign_id.as_deref(), Some("camp-1"));
        assert_eq!(events[0].occurred_at, t("2026-01-02T10:00:00Z"));

        // A later call reads the new file only: the first one's events come from the feed's memory.
        let first = dir.path().join(key(event_type, "2026-01-02-10", 1));
        std::fs::remove_file(&first).unwrap();
        write(
            dir.path(),
            &key(event_type, "2026-01-02-11", 3),
            DELIVERY,
            vec![delivery("d2", 1_767_351_600)],
        );
        let events = feed
            .message_events(&use_case(), from, t("2026-01-03T00:00:00Z"))
            .await
            .unwrap()
            .unwrap();
        let mut times: Vec<Timestamp> = events.iter().map(|e| e.occurred_at).collect();
        times.sort();
        assert_eq!(times, [t("2026-01-02T10:00:00Z"), t("2026-01-02T11:00:00Z")]);
        // A period after the first file's hour forgets it.
        let later = feed
            .message_events(&use_case(), t("2026-01-02T14:00:00Z"), t("2026-01-03T00:00:00Z"))
            .await
            .unwrap()
            .unwrap();
        assert!(later.is_empty());
        assert!(
            feed.message_files
                .lock()
                .unwrap()
                .keys()
                .all(|(hour, _)| *hour >= t("2026-01-02T11:00:00Z"))
        );
    }

    fn event(event_type: &str, status: Option<&str>, channel: Option<&str>) -> CurrentsEvent {
        CurrentsEvent {
            event_type: EventType::of(event_type),
            id: "e".into(),
            time: t("2026-01-02T10:00:00Z"),
            user_id: Some("u".into()),
            external_user_id: Some("c1".into()),
            timezone: None,
            message: offerloop_currents::MessageIds {
                campaign_id: Some("camp".into()),
                message_variation_id: Some("var".into()),
                dispatch_id: Some("disp".into()),
                ..Default::default()
            },
            product_id: None,
            price: None,
            currency: None,
            name: None,
            properties: None,
            subscription_status: status.map(str::to_owned),
            channel: channel.map(str::to_owned),
        }
    }

    #[test]
    fn sms_whatsapp_and_push_unsubscribes_come_from_subscription_changes_and_email_ones_once() {
        let kind = |e: &CurrentsEvent| outcome_of(e, None).map(|o| o.kind);
        let group = "users.behaviors.subscriptiongroup.StateChange";
        let global = "users.behaviors.subscription.GlobalStateChange";
        let unsubscribe = |c: &str| {
            Some(OutcomeKind::Unsubscribe {
                channel: Some(c.into()),
            })
        };
        assert_eq!(
            kind(&event(group, Some("Unsubscribed"), Some("sms"))),
            unsubscribe("sms")
        );
        assert_eq!(
            kind(&event(group, Some("unsubscribed"), Some("WhatsApp"))),
            unsubscribe("whatsapp")
        );
        assert_eq!(
            kind(&event(global, Some("Unsubscribed"), Some("push"))),
            unsubscribe("push")
        );
        assert_eq!(kind(&event(group, Some("Subscribed"), Some("sms"))), None);
        assert_eq!(
            kind(&event(global, Some("Unsubscribed"), Some("email"))),
            None,
            "read from email.Unsubscribe"
        );
        assert_eq!(
            kind(&event("users.messages.email.Unsubscribe", None, None)),
            unsubscribe("email")
        );
        assert!(holds_outcomes(group) && holds_outcomes(global));
        assert!(!holds_outcomes("users.messages.sms.InboundReceive"));
    }

    #[test]
    fn message_events_keep_channel_variation_and_dispatch() {
        let read = message_event_of(&event("users.messages.whatsapp.Read", None, None)).unwrap();
        assert_eq!(read.kind, MessageEventKind::Delivered);
        assert_eq!(read.channel, "whatsapp");
        assert_eq!(read.ids.message_variation_id.as_deref(), Some("var"));
        assert_eq!(read.ids.dispatch_id.as_deref(), Some("disp"));
        let failure = message_event_of(&event("users.messages.webhook.Failure", None, None)).unwrap();
        assert_eq!(failure.kind, MessageEventKind::Failed);
        assert!(message_event_of(&event("users.messages.sms.InboundReceive", None, None)).is_none());
        assert!(message_event_of(&event("users.behaviors.Purchase", None, None)).is_none());
    }
}
