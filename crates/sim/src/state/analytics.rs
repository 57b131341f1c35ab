//! Analytics as Braze's `*/data_series` endpoints report them, computed from the event log
//! ([`Workspace::events`](crate::state::Workspace::events), the single source of truth) on every call.
//!
//! Days are UTC calendar days. A message event counts on the day it happened; a conversion counts on
//! the day it happened (`conversions*`) and on the day of the send it is attributed to
//! (`conversions*_by_send_time`, Canvas: `conversions_by_entry_time`). `conversions` is the campaign's
//! first conversion event, `conversions1..3` the next ones; a campaign without conversion events
//! counts every attributed behaviour as its primary conversion. Revenue is the attributed purchases'
//! price × quantity. Segment sizes are the segment's membership over the current profiles, computed
//! the first time a day is asked and then cached for that day (profiles are not versioned, so a past
//! day first asked later gets today's membership).

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use crate::state::Workspace;
use crate::state::catalog::{braze_channel_name, utc_date};
use crate::state::events::{Event, EventKind, MessageRef};
use crate::world::Channel;

/// How long send analytics are kept after the send (Braze: 14 days).
pub const SEND_ANALYTICS_RETENTION: SignedDuration = SignedDuration::from_hours(14 * 24);

/// The `length` UTC days ending with `ending_at`'s day, oldest first.
pub fn days_ending(ending_at: Timestamp, length: u32) -> Vec<Date> {
    let last = utc_date(ending_at);
    let mut days: Vec<Date> = Vec::new();
    let mut day = last;
    for _ in 0..length {
        days.push(day);
        match day.yesterday() {
            Ok(d) => day = d,
            Err(_) => break,
        }
    }
    days.reverse();
    days
}

/// The UTC days from `start`'s day to `end`'s day, inclusive (empty when `end` is before `start`).
pub fn days_between(start: Timestamp, end: Timestamp) -> Vec<Date> {
    let (first, last) = (utc_date(start), utc_date(end));
    let mut days = Vec::new();
    let mut day = first;
    while day <= last {
        days.push(day);
        match day.tomorrow() {
            Ok(d) => day = d,
            Err(_) => break,
        }
    }
    days
}

/// Counters of one bucket (a day, a variation, a step, ...).
#[derive(Clone, Debug, Default)]
struct Counters {
    sent: u64,
    delivered: u64,
    bounces: u64,
    opens: u64,
    clicks: u64,
    unsubscribes: u64,
    unique_opens: HashSet<String>,
    unique_clicks: HashSet<String>,
    recipients: HashSet<String>,
    /// Distinct (dispatch, user) entries (Canvas).
    entries: HashSet<(String, String)>,
    conversions: [u64; 4],
    conversions_by_send_time: [u64; 4],
    revenue: f64,
}

impl Counters {
    fn conversions_fields(&self, map: &mut Map<String, Value>, by: &str) {
        for (i, name) in ["conversions", "conversions1", "conversions2", "conversions3"]
            .iter()
            .enumerate()
        {
            map.insert((*name).to_owned(), json!(self.conversions[i]));
            map.insert(format!("{name}_by_{by}"), json!(self.conversions_by_send_time[i]));
        }
    }

    /// Braze's per-channel statistics object (§11 shapes).
    fn channel_stats(&self, channel: Channel) -> Map<String, Value> {
        let unique_opens = self.unique_opens.len() as u64;
        let unique_clicks = self.unique_clicks.len() as u64;
        let value = match channel {
            Channel::Email => json!({
                "sent": self.sent, "opens": self.opens, "unique_opens": unique_opens, "clicks": self.clicks,
                "unique_clicks": unique_clicks, "unsubscribes": self.unsubscribes, "bounces": self.bounces,
                "delivered": self.delivered, "reported_spam": 0,
            }),
            Channel::Push => json!({
                "sent": self.sent, "direct_opens": self.opens, "total_opens": self.opens,
                "bounces": self.bounces, "body_clicks": self.clicks,
            }),
            Channel::Sms | Channel::WhatsApp => json!({
                "sent": self.sent, "sent_to_carrier": self.sent, "delivered": self.delivered,
                "rejected": 0, "delivery_failed": self.bounces, "clicks": self.clicks,
                "opt_out": self.unsubscribes, "help": 0,
            }),
            Channel::Webhook => json!({ "sent": self.sent, "errors": self.bounces }),
            Channel::ContentCard => json!({
                "sent": self.sent, "total_clicks": self.clicks, "total_dismissals": 0,
                "total_impressions": self.opens, "unique_clicks": unique_clicks, "unique_dismissals": 0,
                "unique_impressions": unique_opens,
            }),
            Channel::InApp => json!({
                "impressions": self.opens, "clicks": self.clicks, "first_button_clicks": 0,
                "second_button_clicks": 0, "revenue": self.revenue,
                "unique_recipients": self.recipients.len(), "conversions": self.conversions[0],
                "enrolled": self.recipients.len(),
            }),
        };
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The uniform statistics object of `/sends/data_series` entries.
    fn send_stats(&self) -> Map<String, Value> {
        let mut map = Map::new();
        let fields: [(&str, Value); 11] = [
            ("sent", json!(self.sent)),
            ("delivered", json!(self.delivered)),
            ("undelivered", json!(self.bounces)),
            ("delivery_failed", json!(0)),
            ("direct_opens", json!(self.opens)),
            ("total_opens", json!(self.opens)),
            ("bounces", json!(self.bounces)),
            ("body_clicks", json!(self.clicks)),
            ("revenue", json!(self.revenue)),
            ("unique_recipients", json!(self.recipients.len())),
            ("unsubscribes", json!(self.unsubscribes)),
        ];
        for (k, v) in fields {
            map.insert(k.to_owned(), v);
        }
        self.conversions_fields(&mut map, "send_time");
        map
    }
}

/// Which conversion slot (0 = primary) a behaviour `name` fills for a campaign/Canvas tracking `events`.
fn conversion_slot(events: &[String], name: &str) -> Option<usize> {
    if events.is_empty() {
        return Some(0);
    }
    events.iter().position(|e| e == name).filter(|i| *i < 4)
}

/// A grouping key below the day: the bucket an event adds to besides the day's totals.
type SubKey = (Channel, Option<String>);

/// One day's counters: totals, per (channel, variation), per step.
#[derive(Debug, Default)]
struct Day {
    total: Counters,
    by_variation: BTreeMap<SubKey, Counters>,
    by_step: BTreeMap<String, Counters>,
    by_step_variation: BTreeMap<(String, Channel, Option<String>), Counters>,
}

/// Aggregates the events whose message matches into per-day counters.
struct Aggregation {
    index: HashMap<Date, usize>,
    days: Vec<Day>,
}

impl Aggregation {
    fn new(days: &[Date]) -> Aggregation {
        Aggregation {
            index: days.iter().enumerate().map(|(i, d)| (*d, i)).collect(),
            days: days.iter().map(|_| Day::default()).collect(),
        }
    }

    /// Walks `events`; `matches` selects messages; `conversion_events` names the conversion slots;
    /// `keep_send` drops dispatches by their send time (send-analytics retention).
    fn run(
        &mut self,
        events: &[Event],
        matches: impl Fn(&MessageRef) -> bool,
        conversion_events: &[String],
        keep_send: impl Fn(Timestamp) -> bool,
    ) {
        // Send time per (dispatch, user): conversions by send time and retention.
        let mut sent_at: HashMap<(&str, &str), Timestamp> = HashMap::new();
        for event in events {
            if let (EventKind::Send, Some(m)) = (&event.kind, &event.message)
                && matches(m)
            {
                sent_at
                    .entry((m.dispatch_id.as_str(), event.external_user_id.as_str()))
                    .or_insert(event.time);
            }
        }
        for event in events {
            let Some(m) = &event.message else { continue };
            if !matches(m) {
                continue;
            }
            let send_time = sent_at
                .get(&(m.dispatch_id.as_str(), event.external_user_id.as_str()))
                .copied();
            if !send_time.is_none_or(&keep_send) {
                continue;
            }
            let user = event.external_user_id.as_str();
            let day = self.index.get(&utc_date(event.time)).copied();
            let send_day = send_time.and_then(|t| self.index.get(&utc_date(t)).copied());
            let conversion = match &event.kind {
                EventKind::Purchase { price, quantity, .. } => {
                    conversion_slot(conversion_events, "purchase").map(|slot| (slot, price * f64::from(*quantity)))
                }
                EventKind::CustomEvent { name, .. } => conversion_slot(conversion_events, name).map(|slot| (slot, 0.0)),
                _ => None,
            };
            if let Some((slot, revenue)) = conversion {
                if let Some(d) = day {
                    self.each_bucket(d, m, |c| {
                        c.conversions[slot] += 1;
                        c.revenue += revenue;
                    });
                }
                if let Some(d) = send_day {
                    self.each_bucket(d, m, |c| c.conversions_by_send_time[slot] += 1);
                }
                continue;
            }
            let Some(d) = day else { continue };
            let kind = event.kind.clone();
            let entry = (m.dispatch_id.clone(), user.to_owned());
            self.each_bucket(d, m, |c| match &kind {
                EventKind::Send => {
                    c.sent += 1;
                    c.recipients.insert(user.to_owned());
                    c.entries.insert(entry.clone());
                }
                EventKind::Delivery => c.delivered += 1,
                EventKind::Bounce => c.bounces += 1,
                EventKind::Open => {
                    c.opens += 1;
                    c.unique_opens.insert(user.to_owned());
                }
                EventKind::Click => {
                    c.clicks += 1;
                    c.unique_clicks.insert(user.to_owned());
                }
                EventKind::Unsubscribe => c.unsubscribes += 1,
                EventKind::CustomEvent { .. } | EventKind::Purchase { .. } => {}
            });
        }
    }

    fn each_bucket(&mut self, day: usize, m: &MessageRef, mut f: impl FnMut(&mut Counters)) {
        let Some(d) = self.days.get_mut(day) else { return };
        f(&mut d.total);
        f(d.by_variation
            .entry((m.channel, m.message_variation_id.clone()))
            .or_default());
        if let Some(step) = &m.canvas_step_id {
            f(d.by_step.entry(step.clone()).or_default());
            f(d.by_step_variation
                .entry((step.clone(), m.channel, m.message_variation_id.clone()))
                .or_default());
        }
    }
}

/// The name of a variation for analytics entries.
fn variation_name(ws: &Workspace, id: Option<&str>) -> String {
    let Some(id) = id else { return "API message".to_owned() };
    ws.catalog
        .campaigns
        .iter()
        .flat_map(|c| &c.variations)
        .chain(
            ws.catalog
                .canvases
                .iter()
                .flat_map(|c| &c.steps)
                .flat_map(|s| &s.variations),
        )
        .find(|v| v.id == id)
        .map(|v| v.name.clone())
        .unwrap_or_else(|| id.to_owned())
}

fn day_string(day: Date) -> String {
    day.strftime("%Y-%m-%d").to_string()
}

/// `/campaigns/data_series` `data`: one object per day of `days`.
pub fn campaign_series(ws: &Workspace, campaign_id: &str, days: &[Date]) -> Vec<Value> {
    let conversion_events = ws
        .catalog
        .campaign(campaign_id)
        .map(|c| c.spec.conversion_events.clone())
        .unwrap_or_default();
    let mut agg = Aggregation::new(days);
    agg.run(
        &ws.events,
        |m| m.campaign_id.as_deref() == Some(campaign_id),
        &conversion_events,
        |_| true,
    );
    days.iter()
        .zip(&agg.days)
        .map(|(day, d)| {
            let mut obj = Map::new();
            obj.insert("time".into(), json!(day_string(*day)));
            d.total.conversions_fields(&mut obj, "send_time");
            obj.insert("unique_recipients".into(), json!(d.total.recipients.len()));
            obj.insert("revenue".into(), json!(d.total.revenue));
            let mut messages: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
            for ((channel, variation), c) in &d.by_variation {
                let mut entry = Map::new();
                entry.insert("variation_name".into(), json!(variation_name(ws, variation.as_deref())));
                if let Some(v) = variation {
                    entry.insert("variation_api_id".into(), json!(v));
                }
                entry.extend(c.channel_stats(*channel));
                messages
                    .entry(braze_channel_name(*channel))
                    .or_default()
                    .push(Value::Object(entry));
            }
            obj.insert("messages".into(), json!(messages));
            Value::Object(obj)
        })
        .collect()
}

/// `/sends/data_series` `data` for `send_id` of `campaign_id`: events of dispatches sent less than
/// [`SEND_ANALYTICS_RETENTION`] before `now` (older ones have vanished).
pub fn send_series(ws: &Workspace, campaign_id: &str, send_id: &str, days: &[Date], now: Timestamp) -> Vec<Value> {
    let conversion_events = ws
        .catalog
        .campaign(campaign_id)
        .map(|c| c.spec.conversion_events.clone())
        .unwrap_or_default();
    let mut agg = Aggregation::new(days);
    let horizon = now - SEND_ANALYTICS_RETENTION;
    agg.run(
        &ws.events,
        |m| m.campaign_id.as_deref() == Some(campaign_id) && m.send_id.as_deref() == Some(send_id),
        &conversion_events,
        |sent| sent >= horizon,
    );
    days.iter()
        .zip(&agg.days)
        .map(|(day, d)| {
            let mut obj = Map::new();
            obj.insert("time".into(), json!(day_string(*day)));
            let mut messages: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
            for ((channel, variation), c) in &d.by_variation {
                let mut entry = Map::new();
                entry.insert("variation_name".into(), json!(variation_name(ws, variation.as_deref())));
                entry.extend(c.send_stats());
                messages
                    .entry(braze_channel_name(*channel))
                    .or_default()
                    .push(Value::Object(entry));
            }
            obj.insert("messages".into(), json!(messages));
            d.total.conversions_fields(&mut obj, "send_time");
            obj.insert("unique_recipients".into(), json!(d.total.recipients.len()));
            obj.insert("revenue".into(), json!(d.total.revenue));
            Value::Object(obj)
        })
        .collect()
}

/// `/canvas/data_series` `data.stats`: one object per day; `variant_stats` / `step_stats` only when
/// asked for.
pub fn canvas_series(ws: &Workspace, canvas_id: &str, days: &[Date], variants: bool, steps: bool) -> Vec<Value> {
    let Some(canvas) = ws.catalog.canvas(canvas_id) else {
        return Vec::new();
    };
    let mut agg = Aggregation::new(days);
    agg.run(
        &ws.events,
        |m| m.canvas_id.as_deref() == Some(canvas_id),
        &canvas.spec.conversion_events,
        |_| true,
    );
    let totals = |c: &Counters| {
        json!({
            "revenue": c.revenue,
            "conversions": c.conversions.iter().sum::<u64>(),
            "conversions_by_entry_time": c.conversions_by_send_time.iter().sum::<u64>(),
            "entries": c.entries.len(),
        })
    };
    days.iter()
        .zip(&agg.days)
        .map(|(day, d)| {
            let mut obj = Map::new();
            obj.insert("time".into(), json!(day_string(*day)));
            obj.insert("total_stats".into(), totals(&d.total));
            if variants {
                let mut stats = totals(&d.total);
                if let Value::Object(map) = &mut stats {
                    map.insert("name".into(), json!("Variant 1"));
                }
                obj.insert("variant_stats".into(), json!({ canvas.variant_id.clone(): stats }));
            }
            if steps {
                let mut step_stats = Map::new();
                for step in &canvas.steps {
                    let empty = Counters::default();
                    let c = d.by_step.get(&step.id).unwrap_or(&empty);
                    let mut messages: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
                    for ((s, channel, _), counters) in &d.by_step_variation {
                        if s == &step.id {
                            messages
                                .entry(braze_channel_name(*channel))
                                .or_default()
                                .push(Value::Object(counters.channel_stats(*channel)));
                        }
                    }
                    step_stats.insert(
                        step.id.clone(),
                        json!({
                            "name": step.name,
                            "revenue": c.revenue,
                            "conversions": c.conversions.iter().sum::<u64>(),
                            "conversions_by_entry_time": c.conversions_by_send_time.iter().sum::<u64>(),
                            "messages": messages,
                        }),
                    );
                }
                obj.insert("step_stats".into(), Value::Object(step_stats));
            }
            Value::Object(obj)
        })
        .collect()
}

/// Number of users in segment `segment_id` now (0 for an unknown segment).
pub fn segment_size_now(ws: &Workspace, segment_id: &str) -> u64 {
    let Some(segment) = ws.catalog.segment(segment_id) else {
        return 0;
    };
    let n = ws.users.len(&ws.world);
    (0..n)
        .filter(|i| segment.spec.contains(&ws.users.profile(&ws.world, *i)))
        .count() as u64
}

/// `/segments/data_series` `data`: `{time, size}` per day of `days` up to `now`'s day (later days are
/// omitted; a day is computed once and cached, see the module docs).
pub fn segment_series(ws: &mut Workspace, segment_id: &str, days: &[Date]) -> Vec<Value> {
    let today = utc_date(ws.now);
    let mut out = Vec::new();
    let mut current: Option<u64> = None;
    for day in days.iter().filter(|d| **d <= today) {
        let key = (segment_id.to_owned(), *day);
        let size = match ws.catalog.segment_sizes.get(&key) {
            Some(size) => *size,
            None => {
                let size = match current {
                    Some(size) => size,
                    None => {
                        let size = segment_size_now(ws, segment_id);
                        current = Some(size);
                        size
                    }
                };
                ws.catalog.segment_sizes.insert(key, size);
                size
            }
        };
        out.push(json!({ "time": day_string(*day), "size": size }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn day_ranges_are_inclusive_and_ordered() {
        let days = days_ending(t("2026-01-10T12:00:00Z"), 3);
        let names: Vec<String> = days.iter().map(|d| day_string(*d)).collect();
        assert_eq!(names, ["2026-01-08", "2026-01-09", "2026-01-10"]);
        assert_eq!(days_between(t("2026-01-08T23:00:00Z"), t("2026-01-10T00:00:00Z")), days);
        assert!(days_between(t("2026-01-10T00:00:00Z"), t("2026-01-08T00:00:00Z")).is_empty());
        assert_eq!(days_ending(t("2026-03-01T00:00:00Z"), 100).len(), 100);
    }

    proptest::proptest! {
        /// `length` consecutive days ending with the day of `ending_at`.
        #[test]
        fn days_ending_are_consecutive_and_end_on_the_right_day(seconds in 0i64..4_000_000_000, length in 1u32..=100) {
            let end = Timestamp::from_second(seconds).unwrap();
            let days = days_ending(end, length);
            proptest::prop_assert_eq!(days.len(), length as usize);
            proptest::prop_assert_eq!(days.last().copied(), Some(utc_date(end)));
            for pair in days.windows(2) {
                proptest::prop_assert_eq!(pair[0].tomorrow().ok(), Some(pair[1]));
            }
        }
    }

    #[test]
    fn conversion_slots_follow_the_campaign_list() {
        let events = vec!["purchase".to_owned(), "signup".to_owned()];
        assert_eq!(conversion_slot(&events, "purchase"), Some(0));
        assert_eq!(conversion_slot(&events, "signup"), Some(1));
        assert_eq!(conversion_slot(&events, "other"), None);
        assert_eq!(conversion_slot(&[], "anything"), Some(0));
    }

    #[test]
    fn channel_stats_have_braze_shapes() {
        let mut c = Counters {
            sent: 3,
            delivered: 2,
            bounces: 1,
            opens: 2,
            clicks: 1,
            ..Counters::default()
        };
        c.unique_opens.insert("a".into());
        let email = c.channel_stats(Channel::Email);
        assert_eq!(email["sent"], 3);
        assert_eq!(email["unique_opens"], 1);
        assert_eq!(email["opens"], 2);
        assert!(email.contains_key("reported_spam"));
        let push = c.channel_stats(Channel::Push);
        assert_eq!(push["direct_opens"], 2);
        assert!(!push.contains_key("unique_opens"));
        assert_eq!(c.channel_stats(Channel::Webhook)["errors"], 1);
        let sends = c.send_stats();
        assert_eq!(sends["undelivered"], 1);
        assert_eq!(sends["conversions3_by_send_time"], 0);
    }
}
