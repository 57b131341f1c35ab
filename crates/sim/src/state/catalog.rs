//! The workspace's catalog: campaigns, Canvases, segments, email templates and send ids, initialised
//! from the scenario's [`WorkspaceSpec`] and extended by `/templates/email/*` and `/sends/id/create`.
//!
//! Generated ids (`message_variation_id`, Canvas variant ids, `email_template_id`, and the `dispatch_id`
//! / `schedule_id` of [`super::sends`]) are UUID-shaped and deterministic: an [`IdGen`] hashes a seed,
//! a kind and a counter with xxh3, so the same scenario and the same request sequence give the same ids.
//!
//! Braze's list endpoints order items by creation time; the catalog keeps each collection in creation
//! order (ties keep the scenario's order), so listing is a slice.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde_json::Value;

use super::spec::{CampaignSpec, CanvasSpec, EmailTemplateSpec, MessageSpec, SegmentSpec, WorkspaceSpec};
use crate::world::Channel;

/// A deterministic generator of UUID-shaped ids (`8-4-4-4-12` lower-case hex).
#[derive(Clone, Debug)]
pub struct IdGen {
    seed: u64,
    counter: u64,
}

impl IdGen {
    /// A generator whose ids depend only on `seed` and the sequence of calls.
    pub fn new(seed: u64) -> IdGen {
        IdGen { seed, counter: 0 }
    }

    /// The next id; `kind` (e.g. `"dispatch"`) separates the streams of different id kinds so adding
    /// a kind does not shift the others' values in tests that only look at one kind.
    pub fn next_id(&mut self, kind: &str) -> String {
        self.counter += 1;
        let mut input = Vec::with_capacity(kind.len() + 16);
        input.extend_from_slice(&self.seed.to_le_bytes());
        input.extend_from_slice(kind.as_bytes());
        input.extend_from_slice(&self.counter.to_le_bytes());
        uuid_like(xxhash_rust::xxh3::xxh3_128(&input))
    }
}

/// Formats 128 bits as a version-4-looking UUID string.
fn uuid_like(bits: u128) -> String {
    // Set the version (4) and variant (10xx) nibbles so the ids look like random UUIDs.
    let bits = (bits & !(0xF << 76)) | (0x4 << 76);
    let bits = (bits & !(0x3 << 62)) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Braze's name of a channel in `/campaigns/details`, `/canvas/details` and analytics `messages` keys.
///
/// The simulator has one push channel; it is reported as `ios_push`.
pub fn braze_channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email",
        Channel::Sms => "sms",
        Channel::Push => "ios_push",
        Channel::ContentCard => "content_cards",
        Channel::InApp => "trigger_in_app_message",
        Channel::Webhook => "webhook",
        Channel::WhatsApp => "whats_app",
    }
}

/// Formats a time as Braze does in metadata (`2024-03-01T10:12:45+00:00`).
pub fn format_time(time: Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// Parses a Braze time parameter: RFC 3339 with an offset, or a date-time or date without a zone
/// (read as UTC).
pub fn parse_time(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(time) = text.parse::<Timestamp>() {
        return Some(time);
    }
    if let Ok(civil) = text.parse::<jiff::civil::DateTime>() {
        return civil
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp());
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        return date
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp());
    }
    None
}

/// One message variation of a campaign or Canvas step.
#[derive(Clone, Debug, PartialEq)]
pub struct Variation {
    /// `message_variation_id` (also `variation_api_id` in analytics).
    pub id: String,
    /// The channel.
    pub channel: Channel,
    /// Variation name (`Variant 1`, ... when the scenario gives none).
    pub name: String,
    /// Subject (email) or title (push).
    pub subject: Option<String>,
    /// Body.
    pub body: String,
}

/// A campaign of the workspace.
#[derive(Clone, Debug)]
pub struct Campaign {
    /// What the scenario declared.
    pub spec: CampaignSpec,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last edit time.
    pub updated_at: Timestamp,
    /// Message variations: the scenario's `messages`, plus an empty one for every listed channel
    /// without a message. Never empty when the campaign has a channel.
    pub variations: Vec<Variation>,
    /// The id of the control variant, when the campaign has one.
    pub control_id: Option<String>,
}

impl Campaign {
    /// The channels the campaign sends on, in order of first appearance.
    pub fn channels(&self) -> Vec<Channel> {
        let mut out = Vec::new();
        for channel in self
            .spec
            .channels
            .iter()
            .chain(self.variations.iter().map(|v| &v.channel))
        {
            if !out.contains(channel) {
                out.push(*channel);
            }
        }
        out
    }
}

/// One step of a Canvas.
#[derive(Clone, Debug)]
pub struct CanvasStep {
    /// Step id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Its messages.
    pub variations: Vec<Variation>,
}

/// A Canvas of the workspace.
#[derive(Clone, Debug)]
pub struct Canvas {
    /// What the scenario declared.
    pub spec: CanvasSpec,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last edit time.
    pub updated_at: Timestamp,
    /// The single variant every entry goes through.
    pub variant_id: String,
    /// Steps in order; entered users receive the first step's messages.
    pub steps: Vec<CanvasStep>,
}

impl Canvas {
    /// The channels of every step, in order of first appearance.
    pub fn channels(&self) -> Vec<Channel> {
        let mut out = Vec::new();
        for variation in self.steps.iter().flat_map(|s| &s.variations) {
            if !out.contains(&variation.channel) {
                out.push(variation.channel);
            }
        }
        out
    }
}

/// A segment of the workspace.
#[derive(Clone, Debug)]
pub struct Segment {
    /// What the scenario declared (its filter decides membership).
    pub spec: SegmentSpec,
    /// Creation time.
    pub created_at: Timestamp,
}

impl Segment {
    /// A human-readable description of the filter, as `/segments/details` gives it.
    pub fn description(&self) -> String {
        if self.spec.filter.is_empty() {
            return "All users".to_owned();
        }
        let parts: Vec<String> = self
            .spec
            .filter
            .iter()
            .map(|c| {
                let mut terms = Vec::new();
                if let Some(eq) = &c.eq {
                    terms.push(format!("{} is {}", c.field, eq));
                }
                if let Some(set) = &c.one_of {
                    let items: Vec<String> = set.iter().map(Value::to_string).collect();
                    terms.push(format!("{} is one of [{}]", c.field, items.join(", ")));
                }
                if let Some(min) = c.gte {
                    terms.push(format!("{} at least {min}", c.field));
                }
                if let Some(max) = c.lte {
                    terms.push(format!("{} at most {max}", c.field));
                }
                if terms.is_empty() {
                    terms.push(format!("{} exists", c.field));
                }
                format!("({})", terms.join(" AND "))
            })
            .collect();
        parts.join(" AND ")
    }
}

/// An email template.
#[derive(Clone, Debug, PartialEq)]
pub struct EmailTemplate {
    /// `email_template_id`.
    pub id: String,
    /// `template_name`.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Subject.
    pub subject: String,
    /// HTML body.
    pub body: String,
    /// Plain-text body.
    pub plaintext_body: Option<String>,
    /// Preheader.
    pub preheader: Option<String>,
    /// Tags (each one exists in the workspace).
    pub tags: Vec<String>,
    /// `should_inline_css`.
    pub should_inline_css: Option<bool>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last update time.
    pub updated_at: Timestamp,
}

/// A send id created with `/sends/id/create` (or generated for a tracked broadcast).
#[derive(Clone, Debug, PartialEq)]
pub struct SendIdRecord {
    /// The campaign it belongs to.
    pub campaign_id: String,
    /// The id.
    pub send_id: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Whether it was created through `/sends/id/create` (counts toward the daily limit).
    pub created_by_api: bool,
}

/// Campaigns, Canvases, segments, email templates and send ids.
#[derive(Clone, Debug)]
pub struct Catalog {
    /// Campaigns in creation order.
    pub campaigns: Vec<Campaign>,
    /// Canvases in creation order.
    pub canvases: Vec<Canvas>,
    /// Segments in creation order.
    pub segments: Vec<Segment>,
    /// Email templates in creation order.
    pub templates: Vec<EmailTemplate>,
    /// Send ids in creation order.
    pub send_ids: Vec<SendIdRecord>,
    /// Tags that exist in the workspace (every tag the scenario uses anywhere).
    pub tags: BTreeSet<String>,
    /// The id generator of catalog objects.
    pub ids: IdGen,
    /// Segment sizes already reported by `/segments/data_series`, by segment and UTC day.
    pub segment_sizes: BTreeMap<(String, jiff::civil::Date), u64>,
    /// The workspace's combined `/users/track` limit per request, if its contract has one.
    pub track_updates_per_request: Option<usize>,
}

impl Default for Catalog {
    fn default() -> Catalog {
        from_spec(&WorkspaceSpec::default(), Timestamp::UNIX_EPOCH)
    }
}

/// Most send ids `/sends/id/create` makes per simulated UTC day (Braze: 100 per day per workspace).
pub const SEND_IDS_PER_DAY: usize = 100;

/// Longest `send_id` (ASCII characters).
pub const MAX_SEND_ID_LEN: usize = 64;

/// The catalog a scenario declares, at `start`. Items without `created_at` (or with one that does not
/// parse; the scenario validator reports those) are created at `start`.
pub fn from_spec(spec: &WorkspaceSpec, start: Timestamp) -> Catalog {
    let mut ids = IdGen::new(xxhash_rust::xxh3::xxh3_64(
        format!("catalog:{}", start.as_second()).as_bytes(),
    ));
    let created = |text: &Option<String>| text.as_deref().and_then(parse_time).unwrap_or(start);
    let mut tags = BTreeSet::new();

    let mut campaigns: Vec<Campaign> = spec
        .campaigns
        .iter()
        .map(|c| {
            tags.extend(c.tags.iter().cloned());
            let mut variations = variations(&mut ids, &c.messages);
            for channel in &c.channels {
                if !variations.iter().any(|v| v.channel == *channel) {
                    let name = format!("Variant {}", variations.len() + 1);
                    variations.push(Variation {
                        id: ids.next_id("variation"),
                        channel: *channel,
                        name,
                        subject: None,
                        body: String::new(),
                    });
                }
            }
            let control_id = c.control_variant.then(|| ids.next_id("variation"));
            let at = created(&c.created_at);
            Campaign {
                spec: c.clone(),
                created_at: at,
                updated_at: at,
                variations,
                control_id,
            }
        })
        .collect();
    campaigns.sort_by_key(|c| c.created_at);

    let mut canvases: Vec<Canvas> = spec
        .canvases
        .iter()
        .map(|c| {
            tags.extend(c.tags.iter().cloned());
            let variant_id = ids.next_id("canvas_variant");
            let steps = c
                .steps
                .iter()
                .map(|s| CanvasStep {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    variations: variations(&mut ids, &s.messages),
                })
                .collect();
            let at = created(&c.created_at);
            Canvas {
                spec: c.clone(),
                created_at: at,
                updated_at: at,
                variant_id,
                steps,
            }
        })
        .collect();
    canvases.sort_by_key(|c| c.created_at);

    let mut segments: Vec<Segment> = spec
        .segments
        .iter()
        .map(|s| {
            tags.extend(s.tags.iter().cloned());
            Segment {
                spec: s.clone(),
                created_at: created(&s.created_at),
            }
        })
        .collect();
    segments.sort_by_key(|s| s.created_at);

    let templates = spec
        .email_templates
        .iter()
        .map(|t| {
            tags.extend(t.tags.iter().cloned());
            template_from_spec(&mut ids, t, start)
        })
        .collect();

    Catalog {
        campaigns,
        canvases,
        segments,
        templates,
        send_ids: Vec::new(),
        tags,
        ids,
        segment_sizes: BTreeMap::new(),
        track_updates_per_request: spec.track_updates_per_request,
    }
}

fn variations(ids: &mut IdGen, messages: &[MessageSpec]) -> Vec<Variation> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| Variation {
            id: ids.next_id("variation"),
            channel: m.channel,
            name: m.name.clone().unwrap_or_else(|| format!("Variant {}", i + 1)),
            subject: m.subject.clone(),
            body: m.body.clone(),
        })
        .collect()
}

fn template_from_spec(ids: &mut IdGen, spec: &EmailTemplateSpec, start: Timestamp) -> EmailTemplate {
    // Always draw an id so later generated ids do not depend on which templates had explicit ids.
    let generated = ids.next_id("email_template");
    EmailTemplate {
        id: spec.id.clone().unwrap_or(generated),
        name: spec.name.clone(),
        description: None,
        subject: spec.subject.clone(),
        body: spec.body.clone(),
        plaintext_body: spec.plaintext_body.clone(),
        preheader: spec.preheader.clone(),
        tags: spec.tags.clone(),
        should_inline_css: None,
        created_at: start,
        updated_at: start,
    }
}

impl Catalog {
    /// The campaign with `id`.
    pub fn campaign(&self, id: &str) -> Option<&Campaign> {
        self.campaigns.iter().find(|c| c.spec.id == id)
    }

    /// The Canvas with `id`.
    pub fn canvas(&self, id: &str) -> Option<&Canvas> {
        self.canvases.iter().find(|c| c.spec.id == id)
    }

    /// The segment with `id`.
    pub fn segment(&self, id: &str) -> Option<&Segment> {
        self.segments.iter().find(|s| s.spec.id == id)
    }

    /// The email template with `id`.
    pub fn template(&self, id: &str) -> Option<&EmailTemplate> {
        self.templates.iter().find(|t| t.id == id)
    }

    /// The email template with `id`, mutably.
    pub fn template_mut(&mut self, id: &str) -> Option<&mut EmailTemplate> {
        self.templates.iter_mut().find(|t| t.id == id)
    }

    /// Whether `send_id` exists for `campaign_id`.
    pub fn has_send_id(&self, campaign_id: &str, send_id: &str) -> bool {
        self.send_ids
            .iter()
            .any(|s| s.campaign_id == campaign_id && s.send_id == send_id)
    }

    /// How many send ids `/sends/id/create` made on `now`'s UTC day.
    pub fn send_ids_created_on_day_of(&self, now: Timestamp) -> usize {
        let day = utc_date(now);
        self.send_ids
            .iter()
            .filter(|s| s.created_by_api && utc_date(s.created_at) == day)
            .count()
    }

    /// Records a send id (no validation; see [`validate_send_id`]).
    pub fn add_send_id(&mut self, campaign_id: &str, send_id: &str, at: Timestamp, created_by_api: bool) {
        if !self.has_send_id(campaign_id, send_id) {
            self.send_ids.push(SendIdRecord {
                campaign_id: campaign_id.to_owned(),
                send_id: send_id.to_owned(),
                created_at: at,
                created_by_api,
            });
        }
    }
}

/// The UTC calendar date of `time`.
pub fn utc_date(time: Timestamp) -> jiff::civil::Date {
    time.to_zoned_datetime(jiff::tz::TimeZone::UTC).date()
}

/// Checks a `send_id`'s form: 1 to [`MAX_SEND_ID_LEN`] ASCII characters. Returns Braze-style error text.
pub fn validate_send_id(send_id: &str) -> Result<(), &'static str> {
    if send_id.is_empty() {
        return Err("send_id must not be empty");
    }
    if !send_id.is_ascii() {
        return Err("send_id must contain only ASCII characters");
    }
    if send_id.len() > MAX_SEND_ID_LEN {
        return Err("send_id must be at most 64 characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::spec::CanvasStepSpec;

    fn campaign(id: &str, created_at: Option<&str>) -> CampaignSpec {
        CampaignSpec {
            id: id.into(),
            name: format!("Campaign {id}"),
            channels: vec![Channel::Email, Channel::Push],
            api_triggered: true,
            archived: false,
            draft: false,
            paused: false,
            control_variant: false,
            segment: None,
            conversion_events: vec!["purchase".into()],
            messages: vec![MessageSpec {
                channel: Channel::Email,
                name: None,
                subject: Some("Hi".into()),
                body: "<p/>".into(),
            }],
            tags: vec!["offers".into()],
            created_at: created_at.map(Into::into),
        }
    }

    fn start() -> Timestamp {
        "2026-01-05T00:00:00Z".parse().unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn ids_are_uuid_shaped_deterministic_and_distinct() {
        let mut a = IdGen::new(7);
        let mut b = IdGen::new(7);
        let first: Vec<String> = (0..50).map(|_| a.next_id("dispatch")).collect();
        let second: Vec<String> = (0..50).map(|_| b.next_id("dispatch")).collect();
        assert_eq!(first, second);
        let unique: BTreeSet<&String> = first.iter().collect();
        assert_eq!(unique.len(), 50);
        for id in &first {
            let parts: Vec<&str> = id.split('-').collect();
            assert_eq!(
                parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12],
                "{id}"
            );
            assert!(parts[2].starts_with('4'), "{id}");
        }
        assert_ne!(IdGen::new(8).next_id("dispatch"), first[0]);
    }

    #[test]
    fn from_spec_orders_by_creation_and_fills_channels() {
        let spec = WorkspaceSpec {
            campaigns: vec![
                campaign("late", Some("2026-01-03T00:00:00Z")),
                campaign("early", Some("2025-12-01T00:00:00Z")),
                campaign("default", None),
            ],
            canvases: vec![CanvasSpec {
                id: "cv".into(),
                name: "Canvas".into(),
                enabled: true,
                archived: false,
                api_triggered: true,
                segment: None,
                steps: vec![CanvasStepSpec {
                    id: "s1".into(),
                    name: "Step 1".into(),
                    messages: vec![MessageSpec {
                        channel: Channel::Sms,
                        name: None,
                        subject: None,
                        body: "hi".into(),
                    }],
                }],
                conversion_events: vec![],
                tags: vec!["journey".into()],
                created_at: None,
            }],
            ..WorkspaceSpec::default()
        };
        let catalog = from_spec(&spec, start());
        let order: Vec<&str> = catalog.campaigns.iter().map(|c| c.spec.id.as_str()).collect();
        assert_eq!(order, ["early", "late", "default"]);
        let c = catalog.campaign("late").map(|c| c.channels());
        assert_eq!(c, Some(vec![Channel::Email, Channel::Push]));
        let Some(camp) = catalog.campaign("default") else {
            panic!("campaign missing")
        };
        assert_eq!(camp.created_at, start());
        assert_eq!(camp.variations.len(), 2, "email message + generated push variation");
        assert_eq!(catalog.canvas("cv").map(|c| c.channels()), Some(vec![Channel::Sms]));
        assert!(catalog.tags.contains("offers") && catalog.tags.contains("journey"));
        // Same spec, same ids.
        let again = from_spec(&spec, start());
        assert_eq!(again.campaigns[0].variations, catalog.campaigns[0].variations);
    }

    #[test]
    fn send_ids_are_validated_and_counted_per_day() {
        assert!(validate_send_id("spring-2026").is_ok());
        assert!(validate_send_id(&"x".repeat(64)).is_ok());
        assert!(validate_send_id(&"x".repeat(65)).is_err());
        assert!(validate_send_id("été").is_err());
        assert!(validate_send_id("").is_err());
        let mut catalog = Catalog::default();
        catalog.add_send_id("c", "a", start(), true);
        catalog.add_send_id("c", "a", start(), true);
        catalog.add_send_id("c", "b", start(), false);
        assert_eq!(catalog.send_ids.len(), 2);
        assert_eq!(catalog.send_ids_created_on_day_of(start()), 1);
        let next_day = start()
            .checked_add(jiff::SignedDuration::from_hours(24))
            .unwrap_or(start());
        assert_eq!(catalog.send_ids_created_on_day_of(next_day), 0);
        assert!(catalog.has_send_id("c", "a") && !catalog.has_send_id("d", "a"));
    }

    #[test]
    fn times_parse_with_and_without_zone() {
        assert_eq!(parse_time("2026-01-05T00:00:00Z"), Some(start()));
        assert_eq!(parse_time("2026-01-05T01:00:00+01:00"), Some(start()));
        assert_eq!(parse_time("2026-01-05T00:00:00"), Some(start()));
        assert_eq!(parse_time("2026-01-05"), Some(start()));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(format_time(start()), "2026-01-05T00:00:00+00:00");
    }
}
