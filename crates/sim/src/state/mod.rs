//! The simulated Braze workspace the server mutates: users (profiles), catalog (campaigns, canvases,
//! segments, email templates, send ids), the send log and schedules, segment exports, the event log,
//! and the simulated clock. One `Workspace` per server, behind a mutex; handlers lock it briefly.
//!
//! Ownership while it is being built: `mod.rs`, `users.rs`, `exports.rs`, `currents/` (users,
//! outcomes, clock, exports, Currents feed) by one author; `catalog.rs`, `sends.rs` (catalog,
//! send log, schedules, analytics) by another; `spec.rs` and `events.rs` are the shared contract.
//!
//! How outcomes happen: [`Workspace::deliver`] asks the world what one delivery causes
//! ([`World::respond`]), logs the `Send` at once and queues the sampled outcomes in
//! [`Workspace::pending`]; [`Workspace::advance_to`] moves the clock and applies every queued outcome
//! that has become due, in time order, together with the customers' organic behaviour
//! ([`World::organic`], sampled one simulated day ahead for every customer when the clock enters the
//! previous day: the cost is one `organic` call per customer per simulated day).

pub mod analytics;
pub mod catalog;
pub mod currents;
pub mod events;
pub mod exports;
pub mod sends;
pub mod spec;
pub mod users;

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};

pub use self::events::{Event, EventKind, MessageRef};
pub use self::spec::{DEFAULT_API_KEY, WorkspaceSpec};
use crate::world::{Channel, Delivery, OutcomeKind, World};

/// How long after a message a conversion event is attributed to it (Braze's default conversion
/// deadline, three days; scenarios cannot change it yet).
pub const CONVERSION_WINDOW: SignedDuration = SignedDuration::from_hours(72);

/// The whole mutable state of one simulated workspace.
#[derive(Debug)]
pub struct Workspace {
    /// The world behind it (profiles at start, response model).
    pub world: Arc<World>,
    /// Simulated now.
    pub now: Timestamp,
    /// Every send and outcome so far.
    pub events: Vec<Event>,
    /// Profiles: what changed since the world's start (tracked attributes, events, purchases, received messages).
    pub users: users::Users,
    /// Segment exports in progress or done.
    pub exports: exports::Exports,
    /// Campaigns, canvases, segments, email templates, send ids.
    pub catalog: catalog::Catalog,
    /// Dispatches and schedules.
    pub sends: sends::Sends,
    /// Outcomes sampled but not yet due, in time order.
    pub pending: Pending,
    /// Deliveries so far: the `stream` of the next [`World::respond`] call.
    pub deliveries: u64,
    /// The next simulated day whose organic behaviour has not been sampled yet.
    pub organic_next: Date,
    /// The Currents-style feed, when enabled.
    pub currents: Option<currents::Currents>,
}

/// What [`Workspace::deliver`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// Whether the channel could reach the user (no `Bounced` outcome).
    pub reachable: bool,
    /// Outcomes queued (or applied at once when already due), the delivery/bounce included.
    pub queued: usize,
    /// The `stream` the world's response was sampled with.
    pub stream: u64,
}

/// One sampled outcome waiting for the clock.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingOutcome {
    /// When it happens.
    pub at: Timestamp,
    /// Insertion order (ties in `at` apply in insertion order).
    pub seq: u64,
    /// The user.
    pub user: usize,
    /// The message that caused it; `None` for organic behaviour.
    pub message: Option<Arc<MessageRef>>,
    /// What happens.
    pub kind: OutcomeKind,
}

impl Eq for PendingOutcome {}

impl Ord for PendingOutcome {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: `BinaryHeap` is a max-heap and the earliest outcome must come out first.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for PendingOutcome {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The queue of outcomes not applied yet, earliest first.
#[derive(Debug, Default)]
pub struct Pending {
    heap: BinaryHeap<PendingOutcome>,
    seq: u64,
}

impl Pending {
    /// Queues `kind` for `user` at `at`.
    pub fn push(&mut self, at: Timestamp, user: usize, message: Option<Arc<MessageRef>>, kind: OutcomeKind) {
        let seq = self.seq;
        self.seq += 1;
        self.heap.push(PendingOutcome {
            at,
            seq,
            user,
            message,
            kind,
        });
    }

    /// Removes and returns the earliest outcome due at or before `until`.
    pub fn pop_due(&mut self, until: Timestamp) -> Option<PendingOutcome> {
        if self.heap.peek().is_some_and(|p| p.at <= until) {
            self.heap.pop()
        } else {
            None
        }
    }

    /// When the earliest queued outcome happens.
    pub fn next_at(&self) -> Option<Timestamp> {
        self.heap.peek().map(|p| p.at)
    }

    /// Number of queued outcomes.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

impl Workspace {
    /// A workspace at the scenario's start.
    pub fn new(world: Arc<World>) -> Workspace {
        let now = world.scenario().start;
        let catalog = catalog::from_spec(&world.scenario().braze, now);
        Workspace {
            organic_next: now.to_zoned_datetime(jiff::tz::TimeZone::UTC).date(),
            world,
            now,
            events: Vec::new(),
            users: users::Users::default(),
            exports: exports::Exports::default(),
            catalog,
            sends: sends::Sends::default(),
            pending: Pending::default(),
            deliveries: 0,
            currents: None,
        }
    }

    /// Appends `event` to the log (and to the Currents feed when enabled).
    pub fn record(&mut self, event: Event) {
        if let Some(feed) = &mut self.currents {
            let index = self.users.index_of(&self.world, &event.external_user_id);
            let user_id = match index.filter(|i| *i < self.world.len()) {
                Some(i) => self.world.braze_id(i),
                // A user created through the API: a Braze id derived from its external id.
                None => format!(
                    "{:024x}",
                    u128::from(xxhash_rust::xxh3::xxh3_64(event.external_user_id.as_bytes()))
                ),
            };
            let timezone = index.and_then(|i| self.users.time_zone(&self.world, i));
            let who = currents::records::Identity {
                user_id: &user_id,
                timezone: timezone.as_deref(),
            };
            feed.push(&event, &who);
        }
        self.events.push(event);
    }

    /// Sends `message` to `user` at `at`: asks the world what it causes, logs the `Send`, records the
    /// message on the profile (fatigue window, `campaigns_received`/`canvases_received`) and queues
    /// the sampled outcomes; those already due (at or before [`Workspace::now`]) are applied at once.
    ///
    /// `properties` are the merged `trigger_properties`/`context` the world reads option ids from.
    /// Users created by `/users/track` (outside the world) have no response model: they get a
    /// `Delivered` outcome and nothing else. An index that names no user sends nothing
    /// (`reachable: false`, nothing queued or logged).
    pub fn deliver(
        &mut self,
        user: usize,
        message: impl Into<Arc<MessageRef>>,
        properties: Map<String, Value>,
        at: Timestamp,
    ) -> Delivered {
        let message: Arc<MessageRef> = message.into();
        let stream = self.deliveries;
        self.deliveries += 1;
        let Some(external_user_id) = self.users.external_id(&self.world, user).map(str::to_owned) else {
            // No such user: nothing is sent (callers resolve users first; this guards the index).
            return Delivered {
                reachable: false,
                queued: 0,
                stream,
            };
        };
        let delivery = Delivery {
            channel: message.channel,
            campaign_id: message.campaign_id.clone(),
            canvas_id: message.canvas_id.clone(),
            properties,
            at,
            recent_sends: self.users.recent_sends(user, at),
        };
        // The world reaches customers by their profile at start; an unsubscribe since (an outcome or
        // `/users/track`) closes the channel from then on.
        let field = match delivery.channel {
            Channel::Email => Some("email_subscribe"),
            Channel::Push => Some("push_subscribe"),
            _ => None,
        };
        let unsubscribed_since_start = field.is_some_and(|field| {
            self.users
                .delta(user)
                .and_then(|d| d.fields.get(field))
                .and_then(Value::as_str)
                == Some("unsubscribed")
        });
        let outcomes = if unsubscribed_since_start {
            vec![crate::world::Outcome {
                at,
                kind: OutcomeKind::Bounced,
            }]
        } else if user < self.world.len() {
            self.world.respond(user, &delivery, stream)
        } else {
            vec![crate::world::Outcome {
                at,
                kind: OutcomeKind::Delivered,
            }]
        };
        let reachable = !outcomes.iter().any(|o| o.kind == OutcomeKind::Bounced);
        self.record(Event {
            time: at,
            external_user_id,
            kind: EventKind::Send,
            message: Some(Arc::clone(&message)),
        });
        if reachable {
            self.users.record_message(&self.world, user, at, &message);
        }
        let queued = outcomes.len();
        for outcome in outcomes {
            self.pending
                .push(outcome.at.max(at), user, Some(Arc::clone(&message)), outcome.kind);
        }
        self.apply_due(self.now);
        Delivered {
            reachable,
            queued,
            stream,
        }
    }

    /// A custom event tracked through `/users/track`, applied at once: counted on the profile, logged
    /// (attributed to a message when it is a conversion within the window) and fed to Currents.
    pub fn track_event(&mut self, user: usize, name: String, properties: Map<String, Value>, at: Timestamp) {
        let kind = OutcomeKind::CustomEvent { name, properties };
        self.apply(PendingOutcome {
            at,
            seq: 0,
            user,
            message: None,
            kind,
        });
    }

    /// A purchase tracked through `/users/track` (`quantity` units at `price` each), applied at once.
    pub fn track_purchase(
        &mut self,
        user: usize,
        product_id: String,
        price: f64,
        currency: String,
        quantity: u32,
        at: Timestamp,
    ) {
        let kind = OutcomeKind::Purchase {
            product_id,
            price,
            currency,
            quantity,
        };
        self.apply(PendingOutcome {
            at,
            seq: 0,
            user,
            message: None,
            kind,
        });
    }

    /// Moves the simulated clock to `until` (never backwards): runs due schedules, samples organic
    /// behaviour for the simulated days entered (one day ahead), then applies the outcomes that have
    /// become due, in time order. Flushes the Currents feed.
    pub fn advance_to(&mut self, until: Timestamp) {
        if until <= self.now {
            return;
        }
        sends::run_due_schedules(self, until);
        self.sample_organic(until);
        self.apply_due(until);
        self.now = until;
        self.flush_currents();
    }

    /// Writes the buffered Currents events to new files (no-op when the feed is disabled).
    pub fn flush_currents(&mut self) {
        let now = self.now;
        if let Some(feed) = &mut self.currents
            && let Err(error) = feed.flush(now)
        {
            tracing::error!(%error, "writing the Currents feed failed");
        }
    }

    /// Samples [`World::organic`] for every world customer for each day up to the day after `until`.
    fn sample_organic(&mut self, until: Timestamp) {
        let last = until
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .date()
            .tomorrow()
            .unwrap_or(self.organic_next);
        let start = self.world.scenario().start;
        while self.organic_next <= last {
            let day = self.organic_next;
            for user in 0..self.world.len() {
                for outcome in self.world.organic(user, day) {
                    if outcome.at >= start {
                        self.pending.push(outcome.at, user, None, outcome.kind);
                    }
                }
            }
            match day.tomorrow() {
                Ok(next) => self.organic_next = next,
                Err(_) => break,
            }
        }
    }

    /// Applies every pending outcome due at or before `until`.
    fn apply_due(&mut self, until: Timestamp) {
        while let Some(p) = self.pending.pop_due(until) {
            self.apply(p);
        }
    }

    /// Applies one outcome: an event in the log and the profile change it implies.
    fn apply(&mut self, p: PendingOutcome) {
        let PendingOutcome {
            at,
            user,
            message,
            kind,
            ..
        } = p;
        let external_user_id = self.users.external_id(&self.world, user).unwrap_or_default().to_owned();
        let (kind, message) = match kind {
            OutcomeKind::Delivered => (EventKind::Delivery, message),
            OutcomeKind::Bounced => (EventKind::Bounce, message),
            OutcomeKind::Opened => {
                if let Some(m) = &message {
                    self.users.record_engagement(user, m, false);
                }
                (EventKind::Open, message)
            }
            OutcomeKind::Clicked => {
                if let Some(m) = &message {
                    self.users.record_engagement(user, m, true);
                }
                (EventKind::Click, message)
            }
            OutcomeKind::Unsubscribed => {
                if let Some(m) = &message {
                    let field = match m.channel {
                        Channel::Email => Some("email_subscribe"),
                        Channel::Push => Some("push_subscribe"),
                        _ => None,
                    };
                    if let Some(field) = field {
                        self.users
                            .delta_mut(user)
                            .fields
                            .insert(field.into(), Value::String("unsubscribed".into()));
                    }
                }
                (EventKind::Unsubscribe, message)
            }
            OutcomeKind::CustomEvent { name, properties } => {
                self.users.record_event(user, &name, at, 1);
                let attributed = self.attribute(user, at, message.as_ref(), &name);
                (EventKind::CustomEvent { name, properties }, attributed)
            }
            OutcomeKind::Purchase {
                product_id,
                price,
                currency,
                quantity,
            } => {
                self.users
                    .record_purchase(user, &product_id, at, quantity, price * f64::from(quantity));
                let attributed = self.attribute(user, at, message.as_ref(), "purchase");
                (
                    EventKind::Purchase {
                        product_id,
                        price,
                        currency,
                        quantity,
                    },
                    attributed,
                )
            }
        };
        self.record(Event {
            time: at,
            external_user_id,
            kind,
            message,
        });
    }

    /// The message a conversion behaviour `name` (a custom event name, or `"purchase"`) at `at` is
    /// attributed to: the causing message when it is within [`CONVERSION_WINDOW`] and tracks `name`,
    /// else the user's most recent such message. Marks it converted on the profile.
    fn attribute(
        &mut self,
        user: usize,
        at: Timestamp,
        cause: Option<&Arc<MessageRef>>,
        name: &str,
    ) -> Option<Arc<MessageRef>> {
        let tracks = |m: &MessageRef| tracks_conversion(&self.world.scenario().braze, m, name);
        let found = match cause {
            Some(m) if tracks(m) && self.within_window(user, at, m) => Some(Arc::clone(m)),
            _ => self
                .users
                .last_message_within(user, at, CONVERSION_WINDOW, tracks)
                .cloned(),
        };
        if let Some(m) = &found {
            self.users.record_conversion(user, m);
        }
        found
    }

    /// Whether `message` was received by `user` within the conversion window before `at`.
    fn within_window(&self, user: usize, at: Timestamp, message: &MessageRef) -> bool {
        self.users
            .last_message_within(user, at, CONVERSION_WINDOW, |m| m.dispatch_id == message.dispatch_id)
            .is_some()
    }
}

/// Whether the campaign or canvas of `message` counts behaviour `name` as a conversion: it lists it
/// in `conversion_events` (`"purchase"` for purchases), or lists none (then every behaviour counts).
fn tracks_conversion(spec: &WorkspaceSpec, message: &MessageRef, name: &str) -> bool {
    let events = if let Some(id) = &message.campaign_id {
        spec.campaigns
            .iter()
            .find(|c| &c.id == id)
            .map(|c| &c.conversion_events)
    } else if let Some(id) = &message.canvas_id {
        spec.canvases.iter().find(|c| &c.id == id).map(|c| &c.conversion_events)
    } else {
        None
    };
    events.is_none_or(|list| list.is_empty() || list.iter().any(|e| e == name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::Scenario;

    /// A scenario where nearly every delivery is opened, clicked and converted (a 50.0 purchase).
    const EAGER: &str = r#"
seed = 3
customers = 10
start = "2026-01-05T00:00:00Z"

[conversion]
type = "purchase"
product_id = "sku"
value = { kind = "fixed", value = 50 }

[response]
open = { base = 8.0 }
click = { base = 8.0 }
convert = { base = 8.0 }
unsubscribe = { base = -12.0 }
organic = { base = -20.0 }
"#;

    fn workspace(n: usize) -> Workspace {
        let scenario = Scenario::from_toml_str(EAGER, None).unwrap().with_customers(n);
        Workspace::new(Arc::new(World::new(scenario).unwrap()))
    }

    fn msg(dispatch: &str) -> MessageRef {
        MessageRef {
            campaign_id: Some("camp".into()),
            canvas_id: None,
            canvas_step_id: None,
            message_variation_id: None,
            dispatch_id: dispatch.into(),
            send_id: None,
            channel: Channel::Email,
        }
    }

    #[test]
    fn pending_pops_in_time_then_insertion_order() {
        let mut pending = Pending::default();
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        pending.push(t("2026-01-02T00:00:00Z"), 1, None, OutcomeKind::Opened);
        pending.push(t("2026-01-01T00:00:00Z"), 2, None, OutcomeKind::Clicked);
        pending.push(t("2026-01-01T00:00:00Z"), 3, None, OutcomeKind::Delivered);
        assert_eq!(pending.next_at(), Some(t("2026-01-01T00:00:00Z")));
        assert_eq!(pending.pop_due(t("2026-01-01T12:00:00Z")).unwrap().user, 2);
        assert_eq!(pending.pop_due(t("2026-01-01T12:00:00Z")).unwrap().user, 3);
        assert!(pending.pop_due(t("2026-01-01T12:00:00Z")).is_none());
        assert_eq!(pending.len(), 1);
    }

    #[test]
    fn deliver_logs_the_send_and_applies_outcomes_as_the_clock_reaches_them() {
        let mut ws = workspace(10);
        let now = ws.now;
        let d = ws.deliver(4, msg("d0"), Map::new(), now);
        assert!(d.reachable);
        assert_eq!(d.stream, 0);
        assert!(d.queued >= 3, "delivered, opened, clicked at least: {d:?}");
        assert_eq!(ws.events[0].kind, EventKind::Send);
        assert_eq!(ws.events[0].external_user_id, ws.world.external_id(4));
        assert!(ws.events.iter().all(|e| e.time <= now));
        assert_eq!(ws.users.recent_sends(4, now + SignedDuration::from_secs(1)), 1);
        ws.advance_to(now + SignedDuration::from_hours(24 * 15));
        assert!(ws.pending.is_empty());
        let kinds: Vec<_> = ws.events.iter().map(|e| e.kind.clone()).collect();
        assert!(kinds.contains(&EventKind::Delivery));
        assert!(kinds.contains(&EventKind::Open));
        assert!(kinds.contains(&EventKind::Click));
        assert!(
            ws.events.windows(2).skip(1).all(|w| w[0].time <= w[1].time),
            "outcomes apply in time order"
        );
        let purchase = ws
            .events
            .iter()
            .find(|e| matches!(e.kind, EventKind::Purchase { .. }))
            .unwrap();
        let attributed = purchase.time - now <= CONVERSION_WINDOW;
        assert_eq!(purchase.message.is_some(), attributed);
        let profile = ws.users.profile(&ws.world, 4);
        assert!(profile["total_revenue"].as_f64().unwrap() >= 50.0);
        assert_eq!(profile["campaigns_received"][0]["engaged"]["opened_email"], true);
        assert_eq!(profile["campaigns_received"][0]["converted"], attributed);
        let second = ws.deliver(4, msg("d1"), Map::new(), ws.now);
        assert_eq!(second.stream, 1);
    }

    #[test]
    fn tracked_behaviour_is_attributed_within_the_window() {
        let mut ws = workspace(3);
        let now = ws.now;
        ws.deliver(1, msg("d0"), Map::new(), now);
        ws.track_event(1, "signup".into(), Map::new(), now + SignedDuration::from_hours(1));
        ws.track_purchase(2, "sku".into(), 10.0, "USD".into(), 2, now);
        let signup = ws
            .events
            .iter()
            .find(|e| matches!(&e.kind, EventKind::CustomEvent { name, .. } if name == "signup"))
            .unwrap();
        assert_eq!(signup.message.as_ref().map(|m| m.dispatch_id.as_str()), Some("d0"));
        let other = ws
            .events
            .iter()
            .find(|e| e.external_user_id == ws.world.external_id(2))
            .unwrap();
        assert!(other.message.is_none());
        assert_eq!(ws.users.profile(&ws.world, 2)["total_revenue"], 20.0);
        assert_eq!(ws.users.profile(&ws.world, 1)["custom_events"][0]["count"], 1);
    }

    #[test]
    fn future_deliveries_wait_for_the_clock() {
        let mut ws = workspace(10);
        let later = ws.now + SignedDuration::from_hours(2);
        ws.deliver(1, msg("d0"), Map::new(), later);
        assert_eq!(
            ws.events.len(),
            1,
            "only the send is logged before the clock reaches it"
        );
        assert!(!ws.pending.is_empty());
        ws.advance_to(later);
        assert_eq!(ws.now, later);
        assert_eq!(ws.events[1].kind, EventKind::Delivery);
        assert!(ws.pending.next_at().is_none_or(|t| t > later));
    }

    #[test]
    fn delivering_to_no_user_sends_nothing() {
        let mut ws = workspace(3);
        let now = ws.now;
        let d = ws.deliver(99, msg("d0"), Map::new(), now);
        assert!(!d.reachable);
        assert_eq!(d.queued, 0);
        assert!(ws.events.is_empty());
    }

    #[test]
    fn the_clock_never_goes_back() {
        let mut ws = workspace(3);
        let start = ws.now;
        ws.advance_to(start + SignedDuration::from_hours(1));
        ws.advance_to(start);
        assert_eq!(ws.now, start + SignedDuration::from_hours(1));
    }

    #[test]
    fn conversion_tracking_follows_the_campaign_spec() {
        let mut spec = WorkspaceSpec::default();
        let campaign: spec::CampaignSpec =
            toml::from_str("id = \"camp\"\nname = \"C\"\nchannels = [\"email\"]\nconversion_events = [\"signup\"]\n")
                .unwrap();
        spec.campaigns.push(campaign);
        assert!(tracks_conversion(&spec, &msg("d"), "signup"));
        assert!(!tracks_conversion(&spec, &msg("d"), "purchase"));
        let mut other = msg("d");
        other.campaign_id = Some("unknown".into());
        assert!(tracks_conversion(&spec, &other, "purchase"));
    }
}
