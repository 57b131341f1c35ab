//! The user export object: one customer's profile as `/users/export/ids` and segment exports return it.
//!
//! Only the fields offerloop may read are typed; everything else in the object (including any field a
//! caller did not ask for) is skipped by serde without being stored. PII fields are deliberately not
//! modelled: offerloop never requests them, and if a response carries them anyway they are dropped at
//! parse time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An exported user profile, restricted to non-PII fields.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExportedUser {
    /// The customer's `external_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Braze's own id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub braze_id: Option<String>,
    /// ISO-3166 alpha-2 country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// ISO-639-1 language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// IANA time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// When the profile was created (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Lifetime revenue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_revenue: Option<f64>,
    /// `opted_in`, `subscribed` or `unsubscribed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_subscribe: Option<String>,
    /// `opted_in`, `subscribed` or `unsubscribed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_subscribe: Option<String>,
    /// Braze's random bucket number (0–9999).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_bucket: Option<u32>,
    /// Custom attributes (only those requested).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_attributes: BTreeMap<String, serde_json::Value>,
    /// Custom events of the last 90 days (`count` and `first` are all-time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_events: Vec<EventSummary>,
    /// Purchases of the last 90 days (`count` and `first` are all-time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purchases: Vec<EventSummary>,
    /// Campaigns received in the last 90 days.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub campaigns_received: Vec<CampaignReceived>,
    /// Canvases received in the last 90 days.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canvases_received: Vec<CanvasReceived>,
}

/// A custom event or purchase summary.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EventSummary {
    /// Event name or product id.
    pub name: String,
    /// First occurrence (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<String>,
    /// Last occurrence (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
    /// All-time count.
    #[serde(default)]
    pub count: u64,
}

/// A campaign the user received.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CampaignReceived {
    /// Campaign name.
    #[serde(default)]
    pub name: String,
    /// API id of the campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_campaign_id: Option<String>,
    /// When last received (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_received: Option<String>,
    /// Engagement flags (`opened_email`, `clicked_email`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub engaged: BTreeMap<String, bool>,
    /// Whether the user converted.
    #[serde(default)]
    pub converted: bool,
    /// Whether the user was in the campaign's control group.
    #[serde(default)]
    pub in_control: bool,
    /// Variation name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variation_name: Option<String>,
}

/// A canvas the user received.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CanvasReceived {
    /// Canvas name.
    #[serde(default)]
    pub name: String,
    /// API id of the canvas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_canvas_id: Option<String>,
    /// When the last message was received (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_received_message: Option<String>,
    /// When last entered (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_entered: Option<String>,
    /// Whether the user was in the canvas's control group.
    #[serde(default)]
    pub in_control: bool,
}
