//! A Currents-style feed: applied events appended as newline-delimited JSON files of
//! `users.messages.*` / `users.behaviors.*` events (braze-api.md §14).
//!
//! Layout: `<dir>/<YYYY-MM-DD>/events-<NNNNNN>.json`, one directory per simulated (UTC) day of the
//! events' time, and a new file per flush: a file that has been renamed into place is never written
//! again, so a reader that has read it never sees it change. Files are written under a name starting
//! with `.` and renamed once complete.
//!
//! Each line is one event: `id`, `event_type` (e.g. `users.messages.email.Send`), `external_user_id`,
//! `time` (epoch seconds), `campaign_id`, `canvas_id`, `canvas_step_id`, `message_variation_id`,
//! `send_id`, `dispatch_id` (message fields only when the event belongs to a message), and for
//! behaviours `name`/`properties` (custom events, `properties` as a JSON string like Currents) or
//! `product_id`/`price`/`currency`/`quantity` (purchases).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use jiff::civil::Date;
use serde_json::{Map, Value, json};

use super::events::{Event, EventKind};
use crate::error::{Error, Result};
use crate::world::Channel;

/// The feed: events buffered per simulated day until [`Currents::flush`].
#[derive(Debug)]
pub struct Currents {
    dir: PathBuf,
    buffered: BTreeMap<Date, Vec<u8>>,
    next_id: u64,
    files: u64,
}

impl Currents {
    /// A feed writing under `dir` (created on the first flush).
    pub fn new(dir: impl Into<PathBuf>) -> Currents {
        Currents {
            dir: dir.into(),
            buffered: BTreeMap::new(),
            next_id: 0,
            files: 0,
        }
    }

    /// The directory the feed writes to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Buffers `event` (written by the next [`Currents::flush`]). Events with no Currents equivalent
    /// (an open on a channel without opens, say) are still written, with the closest type name.
    pub fn push(&mut self, event: &Event) {
        let id = self.next_id;
        self.next_id += 1;
        let line = currents_record(event, id);
        let day = event.time.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
        let buf = self.buffered.entry(day).or_default();
        // Serialising a `Value` cannot fail (its map keys are strings).
        if serde_json::to_writer(&mut *buf, &line).is_ok() {
            buf.push(b'\n');
        }
    }

    /// Number of events buffered and not yet written.
    pub fn buffered_days(&self) -> usize {
        self.buffered.len()
    }

    /// Writes every buffered day to a new file and clears the buffer.
    ///
    /// # Errors
    /// [`Error::Io`] when a directory or file cannot be written; the unwritten days stay buffered.
    pub fn flush(&mut self) -> Result<()> {
        while let Some((day, bytes)) = self.buffered.pop_first() {
            let dir = self.dir.join(day.to_string());
            let name = format!("events-{:06}.json", self.files);
            let tmp = dir.join(format!(".{name}.partial"));
            let path = dir.join(&name);
            let written = std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::File::create(&tmp))
                .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()))
                .and_then(|()| std::fs::rename(&tmp, &path));
            if let Err(source) = written {
                self.buffered.insert(day, bytes);
                return Err(Error::Io { path, source });
            }
            self.files += 1;
        }
        Ok(())
    }
}

/// The Currents channel segment of an event type name.
fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email",
        Channel::Sms => "sms",
        Channel::Push => "pushnotification",
        Channel::ContentCard => "contentcard",
        Channel::InApp => "inappmessage",
        Channel::Webhook => "webhook",
        Channel::WhatsApp => "whatsapp",
    }
}

/// The Currents event type of `event`, e.g. `users.messages.email.Open`.
pub fn event_type(event: &Event) -> String {
    let message_event = |name: &str| match &event.message {
        Some(m) => format!("users.messages.{}.{name}", channel_name(m.channel)),
        None => format!("users.messages.{name}"),
    };
    match &event.kind {
        EventKind::Send => message_event("Send"),
        EventKind::Delivery => message_event("Delivery"),
        EventKind::Bounce => match event.message.as_ref().map(|m| m.channel) {
            Some(Channel::Sms) => message_event("DeliveryFailure"),
            _ => message_event("Bounce"),
        },
        EventKind::Open => message_event("Open"),
        EventKind::Click => match event.message.as_ref().map(|m| m.channel) {
            Some(Channel::Sms) => message_event("ShortLinkClick"),
            _ => message_event("Click"),
        },
        EventKind::Unsubscribe => message_event("Unsubscribe"),
        EventKind::CustomEvent { .. } => "users.behaviors.CustomEvent".into(),
        EventKind::Purchase { .. } => "users.behaviors.Purchase".into(),
    }
}

/// One Currents record for `event`.
pub fn currents_record(event: &Event, id: u64) -> Value {
    let mut record = Map::new();
    record.insert("id".into(), json!(format!("sim-{id:012}")));
    record.insert("event_type".into(), json!(event_type(event)));
    record.insert("external_user_id".into(), json!(event.external_user_id));
    record.insert("time".into(), json!(event.time.as_second()));
    if let Some(m) = &event.message {
        let fields = [
            ("campaign_id", &m.campaign_id),
            ("canvas_id", &m.canvas_id),
            ("canvas_step_id", &m.canvas_step_id),
            ("message_variation_id", &m.message_variation_id),
            ("send_id", &m.send_id),
        ];
        for (key, value) in fields {
            if let Some(v) = value {
                record.insert(key.into(), json!(v));
            }
        }
        record.insert("dispatch_id".into(), json!(m.dispatch_id));
    }
    match &event.kind {
        EventKind::CustomEvent { name, properties } => {
            record.insert("name".into(), json!(name));
            record.insert(
                "properties".into(),
                json!(Value::Object(properties.clone()).to_string()),
            );
        }
        EventKind::Purchase {
            product_id,
            price,
            currency,
            quantity,
        } => {
            record.insert("product_id".into(), json!(product_id));
            record.insert("price".into(), json!(price));
            record.insert("currency".into(), json!(currency));
            record.insert("quantity".into(), json!(quantity));
        }
        _ => {}
    }
    Value::Object(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MessageRef;

    fn event(time: &str, kind: EventKind, message: bool) -> Event {
        Event {
            time: time.parse().unwrap(),
            external_user_id: "u1".into(),
            kind,
            message: message.then(|| {
                std::sync::Arc::new(MessageRef {
                    campaign_id: Some("c1".into()),
                    canvas_id: None,
                    canvas_step_id: None,
                    message_variation_id: None,
                    dispatch_id: "d1".into(),
                    send_id: None,
                    channel: Channel::Email,
                })
            }),
        }
    }

    #[test]
    fn records_carry_currents_fields() {
        let e = event("2026-01-05T10:00:00Z", EventKind::Open, true);
        let r = currents_record(&e, 7);
        assert_eq!(r["event_type"], "users.messages.email.Open");
        assert_eq!(r["time"], 1_767_607_200);
        assert_eq!(r["campaign_id"], "c1");
        assert_eq!(r["dispatch_id"], "d1");
        let p = event(
            "2026-01-05T10:00:00Z",
            EventKind::Purchase {
                product_id: "sku".into(),
                price: 9.5,
                currency: "USD".into(),
                quantity: 2,
            },
            false,
        );
        let r = currents_record(&p, 8);
        assert_eq!(r["event_type"], "users.behaviors.Purchase");
        assert!(r.get("dispatch_id").is_none());
    }

    #[test]
    fn each_flush_writes_new_files_per_day() {
        let dir = tempfile::tempdir().unwrap();
        let mut feed = Currents::new(dir.path());
        feed.push(&event("2026-01-05T10:00:00Z", EventKind::Send, true));
        feed.push(&event("2026-01-06T10:00:00Z", EventKind::Delivery, true));
        feed.flush().unwrap();
        feed.push(&event("2026-01-05T11:00:00Z", EventKind::Click, true));
        feed.flush().unwrap();
        feed.flush().unwrap();
        let day1: Vec<_> = std::fs::read_dir(dir.path().join("2026-01-05"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(day1.len(), 2);
        let first = std::fs::read_to_string(dir.path().join("2026-01-05/events-000000.json")).unwrap();
        assert_eq!(first.lines().count(), 1);
        let second = std::fs::read_to_string(dir.path().join("2026-01-05/events-000002.json")).unwrap();
        assert!(second.contains("users.messages.email.Click"));
        assert_eq!(feed.buffered_days(), 0);
    }
}
