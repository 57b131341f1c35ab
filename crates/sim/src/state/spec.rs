//! The Braze workspace a scenario declares (`[braze]` in a scenario file): API keys and their
//! permissions, campaigns, canvases, segments and email templates that exist before the first request.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::world::Channel;

/// `[braze]` of a scenario.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceSpec {
    /// REST API keys the server accepts. Empty: one key, [`DEFAULT_API_KEY`], with every permission.
    #[serde(default)]
    pub api_keys: Vec<ApiKeySpec>,
    /// Campaigns.
    #[serde(default)]
    pub campaigns: Vec<CampaignSpec>,
    /// Canvases.
    #[serde(default)]
    pub canvases: Vec<CanvasSpec>,
    /// Segments.
    #[serde(default)]
    pub segments: Vec<SegmentSpec>,
    /// Email templates that already exist.
    #[serde(default)]
    pub email_templates: Vec<EmailTemplateSpec>,
    /// At most this many `/users/track` updates per request, attributes, events and purchases
    /// combined, as on Braze's "Monthly Active Users CY 24-25" package (50); none: only the 75 per
    /// array that every workspace has.
    #[serde(default)]
    pub track_updates_per_request: Option<usize>,
}

/// The key used when a scenario declares none (every permission).
pub const DEFAULT_API_KEY: &str = "sim-rest-key-all-permissions";

/// One REST API key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySpec {
    /// The key as sent in `Authorization: Bearer <key>`.
    pub key: String,
    /// Permission strings (`users.track`, `campaigns.trigger.send`, ...); `"*"` grants every one.
    pub permissions: Vec<String>,
    /// Source IPs allowed; empty: any.
    #[serde(default)]
    pub ip_allowlist: Vec<String>,
}

/// A campaign of the workspace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    /// `campaign_id`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Channels it has a message for.
    pub channels: Vec<Channel>,
    /// API-triggered delivery (`is_api_campaign`); triggering a campaign that is not answers 400.
    #[serde(default = "yes")]
    pub api_triggered: bool,
    /// Archived.
    #[serde(default)]
    pub archived: bool,
    /// Draft.
    #[serde(default)]
    pub draft: bool,
    /// Stopped/paused: a trigger answers success with a `notice` and sends nothing.
    #[serde(default)]
    pub paused: bool,
    /// Has a Braze control variant (what `offerloop check` must catch).
    #[serde(default)]
    pub control_variant: bool,
    /// The id of the segment the campaign targets (one of `segments`); none is Braze's "All Users".
    /// A broadcast reaches the segment; listed recipients outside it receive nothing.
    #[serde(default)]
    pub segment: Option<String>,
    /// Conversion behaviours: the custom event or `purchase` it tracks as conversion.
    #[serde(default)]
    pub conversion_events: Vec<String>,
    /// Message bodies per channel (Liquid included), for `/campaigns/details` and Liquid checks.
    #[serde(default)]
    pub messages: Vec<MessageSpec>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Creation time (RFC 3339); list pages are ordered by it. Default: the scenario start.
    #[serde(default)]
    pub created_at: Option<String>,
}

/// One message of a campaign or canvas step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageSpec {
    /// Channel.
    pub channel: Channel,
    /// Variation name.
    #[serde(default)]
    pub name: Option<String>,
    /// Subject (email) or title (push).
    #[serde(default)]
    pub subject: Option<String>,
    /// Body (HTML for email), Liquid included.
    #[serde(default)]
    pub body: String,
}

/// A canvas of the workspace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanvasSpec {
    /// `canvas_id`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Enabled (not paused): a paused canvas answers success with a `notice` and sends nothing.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Archived.
    #[serde(default)]
    pub archived: bool,
    /// API-triggered entry.
    #[serde(default = "yes")]
    pub api_triggered: bool,
    /// The id of the segment the canvas targets (one of `segments`); none is Braze's "All Users".
    #[serde(default)]
    pub segment: Option<String>,
    /// Steps, in order; an entered user receives the first step's message(s).
    pub steps: Vec<CanvasStepSpec>,
    /// Conversion behaviours.
    #[serde(default)]
    pub conversion_events: Vec<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Creation time (RFC 3339).
    #[serde(default)]
    pub created_at: Option<String>,
}

/// One canvas step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanvasStepSpec {
    /// `id` of the step.
    pub id: String,
    /// Name.
    pub name: String,
    /// Its messages.
    pub messages: Vec<MessageSpec>,
}

/// A segment: a filter over profile fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentSpec {
    /// `segment_id`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Conditions, all of which must hold; empty: every user.
    #[serde(default)]
    pub filter: Vec<SegmentCondition>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Creation time (RFC 3339).
    #[serde(default)]
    pub created_at: Option<String>,
}

/// One condition of a segment: `field` (an export field path such as
/// `custom_attributes.plan` or `total_revenue`) compared with a value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentCondition {
    /// The field path.
    pub field: String,
    /// Equal to.
    #[serde(default)]
    pub eq: Option<Value>,
    /// One of.
    #[serde(default, rename = "in")]
    pub one_of: Option<Vec<Value>>,
    /// Greater than or equal.
    #[serde(default)]
    pub gte: Option<f64>,
    /// Less than or equal.
    #[serde(default)]
    pub lte: Option<f64>,
}

/// An email template that exists at start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailTemplateSpec {
    /// `email_template_id`; generated when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// `template_name`.
    pub name: String,
    /// Subject.
    #[serde(default)]
    pub subject: String,
    /// HTML body.
    #[serde(default)]
    pub body: String,
    /// Plain-text body.
    #[serde(default)]
    pub plaintext_body: Option<String>,
    /// Preheader.
    #[serde(default)]
    pub preheader: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

fn yes() -> bool {
    true
}

impl SegmentSpec {
    /// Whether a profile (a Braze export object) is in the segment: every condition holds.
    pub fn contains(&self, profile: &serde_json::Map<String, Value>) -> bool {
        self.filter.iter().all(|c| c.holds(profile))
    }
}

impl SegmentCondition {
    /// Whether the condition holds for `profile`. A missing field fails every comparison.
    pub fn holds(&self, profile: &serde_json::Map<String, Value>) -> bool {
        let Some(value) = lookup(profile, &self.field) else {
            return false;
        };
        if self.eq.as_ref().is_some_and(|eq| eq != value) {
            return false;
        }
        if self.one_of.as_ref().is_some_and(|set| !set.contains(value)) {
            return false;
        }
        let number = value.as_f64();
        if let Some(min) = self.gte
            && number.is_none_or(|n| n < min)
        {
            return false;
        }
        if let Some(max) = self.lte
            && number.is_none_or(|n| n > max)
        {
            return false;
        }
        true
    }
}

/// A field of an export object by path: `country`, `custom_attributes.plan`, or
/// `custom_events.<name>.count` / `purchases.<name>.count` (the `[{name, count, first, last}]` arrays).
pub fn lookup<'p>(profile: &'p serde_json::Map<String, Value>, path: &str) -> Option<&'p Value> {
    let mut parts = path.splitn(3, '.');
    let head = parts.next()?;
    let value = profile.get(head)?;
    let Some(second) = parts.next() else {
        return Some(value);
    };
    match value {
        Value::Object(map) => {
            let inner = map.get(second)?;
            match parts.next() {
                None => Some(inner),
                Some(rest) => inner.as_object()?.get(rest),
            }
        }
        Value::Array(items) => {
            let item = items
                .iter()
                .find(|i| i.get("name").and_then(Value::as_str) == Some(second))?;
            item.get(parts.next().unwrap_or("count"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn conditions_read_nested_fields_and_event_arrays() {
        let profile = json!({
            "country": "US",
            "custom_attributes": { "plan": "gold", "days": 20 },
            "custom_events": [{ "name": "app_opened", "count": 3 }],
        });
        let profile = profile.as_object().cloned().unwrap_or_default();
        let cond = |field: &str, eq: Option<Value>, gte: Option<f64>, lte: Option<f64>| SegmentCondition {
            field: field.into(),
            eq,
            one_of: None,
            gte,
            lte,
        };
        assert!(cond("country", Some(json!("US")), None, None).holds(&profile));
        assert!(!cond("country", Some(json!("FR")), None, None).holds(&profile));
        assert!(cond("custom_attributes.days", None, Some(14.0), Some(30.0)).holds(&profile));
        assert!(!cond("custom_attributes.days", None, None, Some(14.0)).holds(&profile));
        assert!(cond("custom_events.app_opened.count", None, Some(3.0), None).holds(&profile));
        assert!(!cond("custom_events.other.count", None, Some(0.0), None).holds(&profile));
        assert!(!cond("custom_attributes.missing", None, None, None).holds(&profile));
    }
}
