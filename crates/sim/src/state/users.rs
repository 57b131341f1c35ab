//! User profiles as deltas over the world's start profiles.
//!
//! The world renders a customer's start profile on demand ([`World::profile`]); a million of them are
//! never copied. [`Users`] keeps only what changed since the start, per user that changed: tracked
//! standard fields and custom attributes, custom event and purchase tallies, revenue, the campaigns and
//! canvases received (with `engaged`/`converted`), and the messages of the last 7 days (fatigue and
//! conversion attribution). [`Users::profile`] merges the two into the current Braze export object.
//!
//! Users created by `/users/track` (an unknown `external_id`, or an unknown `email` alone: an email-only
//! profile without `external_id`) get indices after the world's customers: `world.len()`,
//! `world.len() + 1`, ...; they have no start profile and no response model.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use super::events::MessageRef;
use crate::world::{Channel, World};

/// How far back [`Users::recent_sends`] counts messages (the world's fatigue window).
pub const FATIGUE_WINDOW: SignedDuration = SignedDuration::from_hours(7 * 24);

/// Per-user changes since the world's start, for every user that changed.
#[derive(Debug, Default)]
pub struct Users {
    deltas: HashMap<usize, UserDelta>,
    /// Created users in index order: their `external_id`, `None` for an email-only profile.
    created: Vec<Option<String>>,
    created_index: HashMap<String, usize>,
    /// `(field, value) → user` for [`INDEXED_FIELDS`], built on the first lookup by one of them.
    lookup: Option<HashMap<(&'static str, String), usize>>,
}

/// Identifier fields [`Users::find_by`] can look users up by.
pub const INDEXED_FIELDS: [&str; 3] = ["email", "phone", "braze_id"];

/// When a custom event or product was first and last seen, and how often (all-time).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tally {
    /// First occurrence.
    pub first: Timestamp,
    /// Last occurrence.
    pub last: Timestamp,
    /// Occurrences.
    pub count: u64,
}

impl Tally {
    fn add(tally: &mut Option<Tally>, at: Timestamp, count: u64) {
        match tally {
            Some(t) => {
                t.first = t.first.min(at);
                t.last = t.last.max(at);
                t.count += count;
            }
            None => {
                *tally = Some(Tally {
                    first: at,
                    last: at,
                    count,
                })
            }
        }
    }
}

/// A campaign a user received (`campaigns_received[]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CampaignReceived {
    /// Campaign name.
    pub name: String,
    /// Last time a message of it was received.
    pub last_received: Option<Timestamp>,
    /// `engaged` flags (`opened_email`, `opened_push`, `clicked_email`, `clicked_triggered_in_app_message`).
    pub engaged: BTreeMap<String, bool>,
    /// Converted within the conversion window of a message of it.
    pub converted: bool,
    /// The variation's api id, when the send named one.
    pub variation_api_id: Option<String>,
}

/// A canvas a user received (`canvases_received[]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CanvasReceived {
    /// Canvas name.
    pub name: String,
    /// When the user last entered it.
    pub last_entered: Option<Timestamp>,
    /// When the user last received a message of it.
    pub last_received_message: Option<Timestamp>,
    /// Steps received: step id → (last received).
    pub steps_received: BTreeMap<String, Timestamp>,
    /// Converted within the conversion window of a message of it.
    pub converted: bool,
}

/// What changed for one user since the world's start.
#[derive(Clone, Debug, Default)]
pub struct UserDelta {
    /// For users created through `/users/track`: their creation time.
    pub created_at: Option<Timestamp>,
    /// Standard export fields set since start (`first_name`, `email_subscribe`, ...); `Null` removes.
    pub fields: Map<String, Value>,
    /// Custom attributes set since start; `Null` removes.
    pub custom_attributes: Map<String, Value>,
    /// Custom events since start, by name.
    pub custom_events: BTreeMap<String, Tally>,
    /// Purchases since start, by product id (`count` counts units, as Braze counts quantity N as N purchases).
    pub purchases: BTreeMap<String, Tally>,
    /// Revenue since start.
    pub revenue: f64,
    /// Campaigns received, by campaign id.
    pub campaigns_received: BTreeMap<String, CampaignReceived>,
    /// Canvases received, by canvas id.
    pub canvases_received: BTreeMap<String, CanvasReceived>,
    /// Messages received in the last [`FATIGUE_WINDOW`] (oldest first).
    pub recent: VecDeque<(Timestamp, Arc<MessageRef>)>,
}

impl Users {
    /// Number of users: the world's customers plus those created since.
    pub fn len(&self, world: &World) -> usize {
        world.len() + self.created.len()
    }

    /// Whether there is no user at all.
    pub fn is_empty(&self, world: &World) -> bool {
        self.len(world) == 0
    }

    /// A user's index by `external_id` (world customers first, then created users).
    pub fn index_of(&self, world: &World, external_id: &str) -> Option<usize> {
        world
            .index_of(external_id)
            .or_else(|| self.created_index.get(external_id).copied())
    }

    /// The `external_id` of user `index`, if it exists.
    pub fn external_id<'a>(&'a self, world: &'a World, index: usize) -> Option<&'a str> {
        if index < world.len() {
            Some(world.external_id(index))
        } else {
            self.created.get(index - world.len()).and_then(Option::as_deref)
        }
    }

    /// Creates a user with `external_id` at `at` (or returns the existing one's index).
    pub fn create(&mut self, world: &World, external_id: &str, at: Timestamp) -> usize {
        if let Some(index) = self.index_of(world, external_id) {
            return index;
        }
        let index = world.len() + self.created.len();
        self.created.push(Some(external_id.to_owned()));
        self.created_index.insert(external_id.to_owned(), index);
        self.deltas.entry(index).or_default().created_at = Some(at);
        index
    }

    /// Creates an email-only profile (no `external_id`) with `email` at `at`, as `/users/track` does
    /// for an object identified by an unknown email; [`Users::find_by`] finds it by that email.
    pub fn create_email_only(&mut self, world: &World, email: &str, at: Timestamp) -> usize {
        let index = world.len() + self.created.len();
        self.created.push(None);
        self.deltas.entry(index).or_default().created_at = Some(at);
        self.set_field(world, index, "email", Value::String(email.to_owned()));
        index
    }

    /// The delta of user `index`, if anything changed.
    pub fn delta(&self, index: usize) -> Option<&UserDelta> {
        self.deltas.get(&index)
    }

    /// The delta of user `index`, created empty if needed.
    pub fn delta_mut(&mut self, index: usize) -> &mut UserDelta {
        self.deltas.entry(index).or_default()
    }

    /// Number of users with a delta (for memory accounting).
    pub fn changed(&self) -> usize {
        self.deltas.len()
    }

    /// Messages user `index` received in the [`FATIGUE_WINDOW`] before `at` (exclusive of `at`).
    pub fn recent_sends(&self, index: usize, at: Timestamp) -> u32 {
        let Some(delta) = self.deltas.get(&index) else {
            return 0;
        };
        let since = at - FATIGUE_WINDOW;
        let n = delta.recent.iter().filter(|(t, _)| *t >= since && *t < at).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Records that user `index` was sent `message` at `at`: the fatigue window, and
    /// `campaigns_received`/`canvases_received` (names from `world`'s workspace spec).
    pub fn record_message(&mut self, world: &World, index: usize, at: Timestamp, message: &Arc<MessageRef>) {
        let delta = self.delta_mut(index);
        delta.recent.push_back((at, Arc::clone(message)));
        let horizon = delta.recent.iter().map(|(t, _)| *t).max().unwrap_or(at) - FATIGUE_WINDOW;
        while delta.recent.front().is_some_and(|(t, _)| *t < horizon) {
            delta.recent.pop_front();
        }
        let spec = &world.scenario().braze;
        if let Some(id) = &message.campaign_id {
            let name = spec
                .campaigns
                .iter()
                .find(|c| &c.id == id)
                .map(|c| c.name.clone())
                .unwrap_or_default();
            let entry = delta.campaigns_received.entry(id.clone()).or_default();
            entry.name = name;
            entry.last_received = Some(entry.last_received.map_or(at, |t| t.max(at)));
            if message.message_variation_id.is_some() {
                entry.variation_api_id.clone_from(&message.message_variation_id);
            }
        }
        if let Some(id) = &message.canvas_id {
            let name = spec
                .canvases
                .iter()
                .find(|c| &c.id == id)
                .map(|c| c.name.clone())
                .unwrap_or_default();
            let entry = delta.canvases_received.entry(id.clone()).or_default();
            entry.name = name;
            entry.last_received_message = Some(entry.last_received_message.map_or(at, |t| t.max(at)));
            match &message.canvas_step_id {
                Some(step) => {
                    let first_step = spec
                        .canvases
                        .iter()
                        .find(|c| &c.id == id)
                        .and_then(|c| c.steps.first())
                        .is_none_or(|s| &s.id == step);
                    if first_step {
                        entry.last_entered = Some(at);
                    }
                    let last = entry.steps_received.entry(step.clone()).or_insert(at);
                    *last = (*last).max(at);
                }
                None => entry.last_entered = Some(at),
            }
        }
    }

    /// Marks an open or click of `message` in `campaigns_received[].engaged`.
    pub fn record_engagement(&mut self, index: usize, message: &MessageRef, clicked: bool) {
        let Some(id) = &message.campaign_id else {
            return;
        };
        let flag = match (message.channel, clicked) {
            (Channel::Email, false) => "opened_email",
            (Channel::Push, false) => "opened_push",
            (Channel::Email, true) => "clicked_email",
            (Channel::InApp, true) => "clicked_triggered_in_app_message",
            _ => return,
        };
        if let Some(entry) = self.delta_mut(index).campaigns_received.get_mut(id) {
            entry.engaged.insert(flag.to_owned(), true);
        }
    }

    /// Marks a conversion of `message` in `campaigns_received`/`canvases_received`.
    pub fn record_conversion(&mut self, index: usize, message: &MessageRef) {
        let delta = self.delta_mut(index);
        if let Some(entry) = message
            .campaign_id
            .as_ref()
            .and_then(|id| delta.campaigns_received.get_mut(id))
        {
            entry.converted = true;
        }
        if let Some(entry) = message
            .canvas_id
            .as_ref()
            .and_then(|id| delta.canvases_received.get_mut(id))
        {
            entry.converted = true;
        }
    }

    /// The most recent message user `index` received at or before `at` and no earlier than `window`
    /// before it, for which `matches` holds.
    pub fn last_message_within(
        &self,
        index: usize,
        at: Timestamp,
        window: SignedDuration,
        mut matches: impl FnMut(&MessageRef) -> bool,
    ) -> Option<&Arc<MessageRef>> {
        let delta = self.deltas.get(&index)?;
        delta
            .recent
            .iter()
            .rev()
            .filter(|(t, _)| *t <= at && *t >= at - window)
            .map(|(_, m)| m)
            .find(|m| matches(m))
    }

    /// Counts `count` occurrences of custom event `name` at `at`.
    pub fn record_event(&mut self, index: usize, name: &str, at: Timestamp, count: u64) {
        let delta = self.delta_mut(index);
        let mut tally = delta.custom_events.get(name).copied();
        Tally::add(&mut tally, at, count);
        if let Some(t) = tally {
            delta.custom_events.insert(name.to_owned(), t);
        }
    }

    /// Counts a purchase of `quantity` units of `product_id` at `at` with `revenue` (price × quantity).
    pub fn record_purchase(&mut self, index: usize, product_id: &str, at: Timestamp, quantity: u32, revenue: f64) {
        let delta = self.delta_mut(index);
        let mut tally = delta.purchases.get(product_id).copied();
        Tally::add(&mut tally, at, u64::from(quantity));
        if let Some(t) = tally {
            delta.purchases.insert(product_id.to_owned(), t);
        }
        delta.revenue += revenue;
    }

    /// User `index`'s current profile as a Braze export object (every field it has; the caller
    /// filters by `fields_to_export`). Empty for an index that does not exist.
    pub fn profile(&self, world: &World, index: usize) -> Map<String, Value> {
        let mut profile = if index < world.len() {
            world.profile(index)
        } else {
            match self.created.get(index - world.len()) {
                Some(id) => {
                    let mut map = Map::new();
                    if let Some(id) = id {
                        map.insert("external_id".into(), Value::String(id.clone()));
                    }
                    map
                }
                None => return Map::new(),
            }
        };
        let Some(delta) = self.deltas.get(&index) else {
            return profile;
        };
        if let Some(created) = delta.created_at {
            profile
                .entry("created_at")
                .or_insert_with(|| Value::String(created.to_string()));
        }
        for (key, value) in &delta.fields {
            if value.is_null() {
                profile.remove(key);
            } else {
                profile.insert(key.clone(), value.clone());
            }
        }
        if !delta.custom_attributes.is_empty() {
            let mut attrs = match profile.remove("custom_attributes") {
                Some(Value::Object(map)) => map,
                _ => Map::new(),
            };
            for (key, value) in &delta.custom_attributes {
                if value.is_null() {
                    attrs.remove(key);
                } else {
                    attrs.insert(key.clone(), value.clone());
                }
            }
            if !attrs.is_empty() {
                profile.insert("custom_attributes".into(), Value::Object(attrs));
            }
        }
        merge_tallies(&mut profile, "custom_events", &delta.custom_events);
        merge_tallies(&mut profile, "purchases", &delta.purchases);
        if delta.revenue != 0.0 || !delta.purchases.is_empty() {
            let base = profile.get("total_revenue").and_then(Value::as_f64).unwrap_or(0.0);
            profile.insert("total_revenue".into(), json!(round_cents(base + delta.revenue)));
        }
        if !delta.campaigns_received.is_empty() {
            let mut list = match profile.remove("campaigns_received") {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            for (id, c) in &delta.campaigns_received {
                list.retain(|item| item.get("api_campaign_id").and_then(Value::as_str) != Some(id));
                let mut item = json!({
                    "name": c.name,
                    "api_campaign_id": id,
                    "engaged": c.engaged,
                    "converted": c.converted,
                    "in_control": false,
                });
                if let (Some(obj), Some(t)) = (item.as_object_mut(), c.last_received) {
                    obj.insert("last_received".into(), Value::String(t.to_string()));
                }
                if let (Some(obj), Some(v)) = (item.as_object_mut(), &c.variation_api_id) {
                    obj.insert("variation_api_id".into(), Value::String(v.clone()));
                }
                list.push(item);
            }
            profile.insert("campaigns_received".into(), Value::Array(list));
        }
        if !delta.canvases_received.is_empty() {
            let mut list = match profile.remove("canvases_received") {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            for (id, c) in &delta.canvases_received {
                list.retain(|item| item.get("api_canvas_id").and_then(Value::as_str) != Some(id));
                let steps: Vec<Value> = c
                    .steps_received
                    .iter()
                    .map(
                        |(step, t)| json!({ "name": step, "api_canvas_step_id": step, "last_received": t.to_string() }),
                    )
                    .collect();
                let mut item = Map::new();
                item.insert("name".into(), Value::String(c.name.clone()));
                item.insert("api_canvas_id".into(), Value::String(id.clone()));
                item.insert("in_control".into(), Value::Bool(false));
                item.insert("converted".into(), Value::Bool(c.converted));
                if let Some(t) = c.last_received_message {
                    item.insert("last_received_message".into(), Value::String(t.to_string()));
                }
                if let Some(t) = c.last_entered {
                    item.insert("last_entered".into(), Value::String(t.to_string()));
                }
                if !steps.is_empty() {
                    item.insert("steps_received".into(), Value::Array(steps));
                }
                list.push(Value::Object(item));
            }
            profile.insert("canvases_received".into(), Value::Array(list));
        }
        profile
    }

    /// The user whose `field` (`email`, `phone` or `braze_id`) is `value`. The first lookup builds an
    /// index over every user's current profile (one render per user); later ones are O(1).
    pub fn find_by(&mut self, world: &World, field: &str, value: &str) -> Option<usize> {
        let field = INDEXED_FIELDS.into_iter().find(|f| *f == field)?;
        if self.lookup.is_none() {
            let mut index = HashMap::new();
            for user in 0..self.len(world) {
                let profile = self.profile(world, user);
                for f in INDEXED_FIELDS {
                    if let Some(Value::String(v)) = profile.get(f) {
                        index.entry((f, v.clone())).or_insert(user);
                    }
                }
            }
            self.lookup = Some(index);
        }
        self.lookup
            .as_ref()
            .and_then(|index| index.get(&(field, value.to_owned())).copied())
    }

    /// Sets standard export field `field` of user `index` (`Null` removes it), keeping the lookup
    /// index of [`Users::find_by`] current.
    pub fn set_field(&mut self, world: &World, index: usize, field: &str, value: Value) {
        if let Some(f) = INDEXED_FIELDS.into_iter().find(|f| *f == field)
            && self.lookup.is_some()
        {
            let old = self
                .profile(world, index)
                .get(f)
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let Some(lookup) = self.lookup.as_mut() {
                if let Some(old) = old
                    && lookup.get(&(f, old.clone())) == Some(&index)
                {
                    lookup.remove(&(f, old));
                }
                if let Value::String(new) = &value {
                    lookup.insert((f, new.clone()), index);
                }
            }
        }
        self.delta_mut(index).fields.insert(field.to_owned(), value);
    }

    /// The IANA name in user `index`'s `time_zone` field (after deltas), without rendering the whole
    /// profile.
    pub fn time_zone(&self, world: &World, index: usize) -> Option<String> {
        if let Some(v) = self.deltas.get(&index).and_then(|d| d.fields.get("time_zone")) {
            return v.as_str().map(str::to_owned);
        }
        if index < world.len() {
            return world.time_zone_name(index);
        }
        None
    }

    /// The current value of custom attribute `key` of user `index` (after deltas).
    pub fn custom_attribute(&self, world: &World, index: usize, key: &str) -> Option<Value> {
        if let Some(v) = self.deltas.get(&index).and_then(|d| d.custom_attributes.get(key)) {
            return (!v.is_null()).then(|| v.clone());
        }
        if index < world.len() {
            return world
                .profile(index)
                .get("custom_attributes")
                .and_then(|a| a.get(key))
                .cloned();
        }
        None
    }
}

fn round_cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Merges `tallies` into the `[{name, first, last, count}]` array at `key` of `profile`.
fn merge_tallies(profile: &mut Map<String, Value>, key: &str, tallies: &BTreeMap<String, Tally>) {
    if tallies.is_empty() {
        return;
    }
    let mut list = match profile.remove(key) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    for (name, tally) in tallies {
        let existing = list
            .iter_mut()
            .find(|i| i.get("name").and_then(Value::as_str) == Some(name.as_str()));
        match existing.and_then(Value::as_object_mut) {
            Some(item) => {
                let count = item.get("count").and_then(Value::as_u64).unwrap_or(0) + tally.count;
                item.insert("count".into(), json!(count));
                let first = item
                    .get("first")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<Timestamp>().ok());
                let last = item
                    .get("last")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<Timestamp>().ok());
                let first = first.map_or(tally.first, |f| f.min(tally.first));
                let last = last.map_or(tally.last, |l| l.max(tally.last));
                item.insert("first".into(), Value::String(first.to_string()));
                item.insert("last".into(), Value::String(last.to_string()));
            }
            None => list.push(json!({
                "name": name,
                "first": tally.first.to_string(),
                "last": tally.last.to_string(),
                "count": tally.count,
            })),
        }
    }
    profile.insert(key.to_owned(), Value::Array(list));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::Scenario;

    fn world(n: usize) -> World {
        World::new(Scenario::from_toml_str("seed = 1\n", None).unwrap().with_customers(n)).unwrap()
    }

    fn msg(campaign: &str) -> Arc<MessageRef> {
        Arc::new(MessageRef {
            campaign_id: Some(campaign.into()),
            canvas_id: None,
            canvas_step_id: None,
            message_variation_id: None,
            dispatch_id: "d1".into(),
            send_id: None,
            channel: Channel::Email,
        })
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn untouched_users_render_the_world_profile() {
        let w = world(5);
        let users = Users::default();
        assert_eq!(users.profile(&w, 3), w.profile(3));
        assert!(users.profile(&w, 99).is_empty());
        assert_eq!(users.changed(), 0);
    }

    #[test]
    fn created_users_get_indices_after_the_world() {
        let w = world(5);
        let mut users = Users::default();
        let i = users.create(&w, "new-user", ts("2026-01-05T10:00:00Z"));
        assert_eq!(i, 5);
        assert_eq!(users.create(&w, "new-user", ts("2026-01-06T10:00:00Z")), 5);
        assert_eq!(users.len(&w), 6);
        assert_eq!(users.index_of(&w, "new-user"), Some(5));
        assert_eq!(users.external_id(&w, 5), Some("new-user"));
        let p = users.profile(&w, 5);
        assert_eq!(p["external_id"], "new-user");
        assert_eq!(p["created_at"], "2026-01-05T10:00:00Z");
    }

    #[test]
    fn email_only_profiles_have_no_external_id_and_are_found_by_email() {
        let w = world(5);
        let mut users = Users::default();
        // Build the lookup index first: the new profile must be added to it.
        assert_eq!(users.find_by(&w, "email", "walk-in@example.org"), None);
        let i = users.create_email_only(&w, "walk-in@example.org", ts("2026-01-05T10:00:00Z"));
        assert_eq!(i, 5);
        assert_eq!(users.len(&w), 6);
        assert_eq!(users.external_id(&w, 5), None);
        assert_eq!(users.find_by(&w, "email", "walk-in@example.org"), Some(5));
        let p = users.profile(&w, 5);
        assert!(!p.contains_key("external_id"));
        assert_eq!(p["email"], "walk-in@example.org");
        assert_eq!(p["created_at"], "2026-01-05T10:00:00Z");
        // Without an index yet, the first lookup builds one that includes it.
        let mut fresh = Users::default();
        let j = fresh.create_email_only(&w, "other@example.org", ts("2026-01-05T10:00:00Z"));
        assert_eq!(fresh.find_by(&w, "email", "other@example.org"), Some(j));
        assert_eq!(fresh.create(&w, "after", ts("2026-01-05T11:00:00Z")), 6);
    }

    #[test]
    fn deltas_override_fields_and_merge_tallies() {
        let w = world(5);
        let mut users = Users::default();
        users
            .delta_mut(1)
            .fields
            .insert("email_subscribe".into(), json!("unsubscribed"));
        users.delta_mut(1).fields.insert("email".into(), Value::Null);
        users
            .delta_mut(1)
            .custom_attributes
            .insert("plan".into(), json!("gold"));
        users.delta_mut(1).custom_attributes.insert("tier".into(), json!(2));
        users.record_event(1, "app_opened", ts("2026-01-06T00:00:00Z"), 1);
        users.record_event(1, "app_opened", ts("2026-01-05T00:00:00Z"), 1);
        users.record_purchase(1, "sku", ts("2026-01-07T00:00:00Z"), 3, 30.0);
        let p = users.profile(&w, 1);
        assert_eq!(p["email_subscribe"], "unsubscribed");
        assert!(!p.contains_key("email"));
        assert_eq!(p["custom_attributes"], json!({"plan": "gold", "tier": 2}));
        assert_eq!(
            p["custom_events"],
            json!([{"name": "app_opened", "first": "2026-01-05T00:00:00Z", "last": "2026-01-06T00:00:00Z", "count": 2}])
        );
        assert_eq!(p["purchases"][0]["count"], 3);
        assert_eq!(p["total_revenue"], 30.0);
    }

    #[test]
    fn recent_sends_counts_the_last_seven_days_only() {
        let w = world(5);
        let mut users = Users::default();
        users.record_message(&w, 0, ts("2026-01-01T00:00:00Z"), &msg("c1"));
        users.record_message(&w, 0, ts("2026-01-05T00:00:00Z"), &msg("c1"));
        users.record_message(&w, 0, ts("2026-01-07T00:00:00Z"), &msg("c2"));
        assert_eq!(users.recent_sends(0, ts("2026-01-07T00:00:00Z")), 2);
        assert_eq!(users.recent_sends(0, ts("2026-01-07T00:00:01Z")), 3);
        assert_eq!(users.recent_sends(0, ts("2026-01-08T00:00:01Z")), 2);
        assert_eq!(users.recent_sends(0, ts("2026-01-13T00:00:00Z")), 1);
        assert_eq!(users.recent_sends(1, ts("2026-01-07T00:00:00Z")), 0);
        let p = users.profile(&w, 0);
        let received = p["campaigns_received"].as_array().unwrap();
        assert_eq!(received.len(), 2);
        assert_eq!(received[0]["last_received"], "2026-01-05T00:00:00Z");
    }

    #[test]
    fn engagement_and_conversion_mark_the_campaign() {
        let w = world(5);
        let mut users = Users::default();
        let m = msg("c1");
        users.record_message(&w, 2, ts("2026-01-05T00:00:00Z"), &m);
        users.record_engagement(2, &m, false);
        users.record_engagement(2, &m, true);
        users.record_conversion(2, &m);
        let p = users.profile(&w, 2);
        let c = &p["campaigns_received"][0];
        assert_eq!(c["engaged"], json!({"opened_email": true, "clicked_email": true}));
        assert_eq!(c["converted"], true);
        let found = users.last_message_within(2, ts("2026-01-06T00:00:00Z"), SignedDuration::from_hours(72), |_| true);
        assert_eq!(found, Some(&m));
        let late = users.last_message_within(2, ts("2026-01-09T00:00:00Z"), SignedDuration::from_hours(72), |_| true);
        assert_eq!(late, None);
    }

    proptest::proptest! {
        #[test]
        fn tallies_count_every_occurrence_with_first_before_last(
            events in proptest::collection::vec((0usize..3, 0i64..1_000_000), 1..40),
        ) {
            let w = world(2);
            let mut users = Users::default();
            let names = ["a", "b", "c"];
            let base = ts("2026-01-05T00:00:00Z");
            for (name, secs) in &events {
                users.record_event(1, names[*name], base + SignedDuration::from_secs(*secs), 1);
            }
            let p = users.profile(&w, 1);
            let list = p["custom_events"].as_array().unwrap();
            let total: u64 = list.iter().map(|e| e["count"].as_u64().unwrap()).sum();
            proptest::prop_assert_eq!(total, events.len() as u64);
            for e in list {
                let first: Timestamp = e["first"].as_str().unwrap().parse().unwrap();
                let last: Timestamp = e["last"].as_str().unwrap().parse().unwrap();
                proptest::prop_assert!(first <= last);
            }
        }
    }
}
