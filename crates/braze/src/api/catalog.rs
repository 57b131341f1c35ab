//! What exists in the workspace and how it performs: campaigns, Canvases and segments (list, details,
//! daily data series), send analytics, and send-id creation.
//!
//! All but `/sends/id/create` are `GET` endpoints, so their requests hold only scalar fields (the client
//! sends them as a query string). The three list endpoints page by number, [`LIST_PAGE_SIZE`] items a
//! page, with no total and no next token: the end is the first short page. [`PagedRequest`] tells the
//! client's pagination stream how to ask for page `n` and how long a page was.
//!
//! Analytics are open-ended per channel (`email`, `ios_push`, `webhook`, ... each with its own counters),
//! so per-channel statistics stay JSON maps; the cross-channel totals are typed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::null_as_default;
use crate::endpoint::{Endpoint, Request};
use crate::limits::LIST_PAGE_SIZE;

/// A request for one page of a paged listing. The client's pagination stream asks for pages `0, 1, ...`
/// and stops after the first page shorter than [`PagedRequest::page_size`].
pub trait PagedRequest: Request + Clone {
    /// One listed item.
    type Item;

    /// This request, for page `page` (0-based) of the listing.
    fn with_page(&self, page: u32) -> Self;

    /// Items in a full page.
    fn page_size(&self) -> usize {
        LIST_PAGE_SIZE
    }

    /// Items in `response`.
    fn page_len(response: &Self::Response) -> usize;

    /// The items of `response`.
    fn into_items(response: Self::Response) -> Vec<Self::Item>;
}

/// Sort order of a listing by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortDirection {
    /// Oldest first (Braze's default).
    Asc,
    /// Newest first.
    Desc,
}

/// `GET /campaigns/list`: one page of campaigns, oldest first unless sorted otherwise.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CampaignListRequest {
    /// Page number, from 0.
    #[serde(default)]
    pub page: u32,
    /// Include archived campaigns (Braze's default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_archived: Option<bool>,
    /// Sort order by creation time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort_direction: Option<SortDirection>,
    /// Only campaigns edited after this time (`yyyy-MM-DDTHH:mm:ss`), query key `last_edit.time[gt]`.
    #[serde(rename = "last_edit.time[gt]", skip_serializing_if = "Option::is_none")]
    pub last_edit_time_gt: Option<String>,
}

/// `GET /canvas/list`: one page of Canvases (stopped ones included; archived ones on request).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CanvasListRequest {
    /// Page number, from 0.
    #[serde(default)]
    pub page: u32,
    /// Include archived Canvases (Braze's default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_archived: Option<bool>,
    /// Sort order by creation time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort_direction: Option<SortDirection>,
    /// Only Canvases edited after this time (`yyyy-MM-DDTHH:mm:ss`), query key `last_edit.time[gt]`.
    #[serde(rename = "last_edit.time[gt]", skip_serializing_if = "Option::is_none")]
    pub last_edit_time_gt: Option<String>,
}

/// Constructor and setters shared by the campaign and Canvas list requests.
macro_rules! list_request {
    ($ty:ty) => {
        impl $ty {
            /// The first page, with Braze's defaults.
            pub fn new() -> Self {
                Self::default()
            }

            /// Sets the page number (from 0).
            pub fn page(mut self, page: u32) -> Self {
                self.page = page;
                self
            }

            /// Sets `include_archived`.
            pub fn include_archived(mut self, include: bool) -> Self {
                self.include_archived = Some(include);
                self
            }

            /// Sets the sort order.
            pub fn sort_direction(mut self, direction: SortDirection) -> Self {
                self.sort_direction = Some(direction);
                self
            }

            /// Lists only items edited after `time` (`yyyy-MM-DDTHH:mm:ss`).
            pub fn last_edit_time_gt(mut self, time: impl Into<String>) -> Self {
                self.last_edit_time_gt = Some(time.into());
                self
            }
        }
    };
}

list_request!(CampaignListRequest);
list_request!(CanvasListRequest);

impl Request for CampaignListRequest {
    const ENDPOINT: Endpoint = Endpoint::CampaignsList;
    type Response = CampaignListResponse;
}

impl PagedRequest for CampaignListRequest {
    type Item = CampaignSummary;

    fn with_page(&self, page: u32) -> Self {
        self.clone().page(page)
    }

    fn page_len(response: &CampaignListResponse) -> usize {
        response.campaigns.len()
    }

    fn into_items(response: CampaignListResponse) -> Vec<CampaignSummary> {
        response.campaigns
    }
}

/// One page of `GET /campaigns/list`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CampaignListResponse {
    /// `success` (empty if Braze omitted it).
    #[serde(default)]
    pub message: String,
    /// The page's campaigns (fewer than [`LIST_PAGE_SIZE`] on the last page).
    #[serde(default)]
    pub campaigns: Vec<CampaignSummary>,
    /// Braze's non-fatal errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

/// A campaign in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CampaignSummary {
    /// The campaign's API id.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// When it was last edited (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_edited: Option<String>,
    /// Whether it is an API campaign (content sent with the request).
    #[serde(default)]
    pub is_api_campaign: bool,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `GET /campaigns/details`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CampaignDetailsRequest {
    /// The campaign.
    pub campaign_id: String,
    /// Return the post-launch draft instead of the live version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_launch_draft_version: Option<bool>,
}

impl CampaignDetailsRequest {
    /// The details of `campaign_id`.
    pub fn new(campaign_id: impl Into<String>) -> Self {
        Self {
            campaign_id: campaign_id.into(),
            post_launch_draft_version: None,
        }
    }

    /// Sets `post_launch_draft_version`.
    pub fn post_launch_draft_version(mut self, draft: bool) -> Self {
        self.post_launch_draft_version = Some(draft);
        self
    }
}

impl Request for CampaignDetailsRequest {
    const ENDPOINT: Endpoint = Endpoint::CampaignsDetails;
    type Response = CampaignDetailsResponse;
}

/// The response of `GET /campaigns/details`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CampaignDetailsResponse {
    /// `success` (empty if Braze omitted it).
    #[serde(default)]
    pub message: String,
    /// When it was created (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When it was last updated (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Whether it is archived.
    #[serde(default)]
    pub archived: bool,
    /// Whether it is a draft.
    #[serde(default)]
    pub draft: bool,
    /// Whether it is active (not stopped).
    #[serde(default)]
    pub enabled: bool,
    /// Whether it has a post-launch draft.
    #[serde(default)]
    pub has_post_launch_draft: bool,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// How it is scheduled, e.g. `api_triggered`, `action_based`, `date`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_type: Option<String>,
    /// Its channels, e.g. `email`, `ios_push`.
    #[serde(default)]
    pub channels: Vec<String>,
    /// When it first sent (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_sent: Option<String>,
    /// When it last sent (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent: Option<String>,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Its teams.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
    /// Its message variants, by message variation id (control variants included).
    #[serde(default)]
    pub messages: BTreeMap<String, CampaignMessage>,
    /// Its conversion events, primary first.
    #[serde(default)]
    pub conversion_behaviors: Vec<ConversionBehavior>,
    /// Braze's non-fatal errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

/// One message variant of a campaign or Canvas step: its channel and name, the `type` (`"control"` for
/// a control group), and every channel field (`subject`, `body`, `alert`, `url`, ...) as raw JSON.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CampaignMessage {
    /// The channel, e.g. `email`, `ios_push`, `webhook`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The variant's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The JSON `type`: `"control"` for a control variant (a webhook's `type` is its content type).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Every other field of the message, by name.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

impl CampaignMessage {
    /// Whether this is a control variant (users assigned to it receive nothing).
    pub fn is_control(&self) -> bool {
        self.kind.as_deref() == Some("control")
    }

    /// A string field of the message, e.g. `subject` or `alert`.
    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }
}

/// A campaign's conversion event.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConversionBehavior {
    /// What counts, e.g. "Makes Specific Purchase", "Performs Custom Event", "Opens Email".
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The conversion window in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<u64>,
    /// The product, for "Makes Specific Purchase".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// The event, for "Performs Custom Event".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_event_name: Option<String>,
    /// The apps it is restricted to, if any (Braze sends `null` for none).
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub app_ids: Vec<String>,
}

/// `GET /campaigns/data_series`: daily analytics of a campaign (50,000 requests a minute).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CampaignDataSeriesRequest {
    /// The campaign.
    pub campaign_id: String,
    /// Days before `ending_at`, 1 to 100.
    pub length: u32,
    /// The last day (ISO-8601; Braze's default now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ending_at: Option<String>,
}

impl CampaignDataSeriesRequest {
    /// The last `length` days (1 to 100) of `campaign_id`.
    pub fn new(campaign_id: impl Into<String>, length: u32) -> Self {
        Self {
            campaign_id: campaign_id.into(),
            length,
            ending_at: None,
        }
    }

    /// Sets the last day (ISO-8601).
    pub fn ending_at(mut self, time: impl Into<String>) -> Self {
        self.ending_at = Some(time.into());
        self
    }
}

impl Request for CampaignDataSeriesRequest {
    const ENDPOINT: Endpoint = Endpoint::CampaignsDataSeries;
    type Response = CampaignDataSeriesResponse;
}

/// The response of `GET /campaigns/data_series`: one point per day.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CampaignDataSeriesResponse {
    /// `success` (empty if Braze omitted it).
    #[serde(default)]
    pub message: String,
    /// One point per day, oldest first.
    #[serde(default)]
    pub data: Vec<CampaignDataPoint>,
    /// Braze's non-fatal errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

/// One day of a campaign's (or one send's) analytics.
///
/// `conversions` counts the primary conversion event, `conversions1..3` the secondary ones; the
/// `_by_send_time` variants attribute them to the day of the send rather than of the conversion.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CampaignDataPoint {
    /// The day (ISO-8601 date).
    pub time: String,
    /// Primary conversions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversions: Option<u64>,
    /// Conversions of the second conversion event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversions1: Option<u64>,
    /// Conversions of the third conversion event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversions2: Option<u64>,
    /// Conversions of the fourth conversion event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversions3: Option<u64>,
    /// Primary conversions by send day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversions_by_send_time: Option<u64>,
    /// Second-event conversions by send day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversions1_by_send_time: Option<u64>,
    /// Third-event conversions by send day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversions2_by_send_time: Option<u64>,
    /// Fourth-event conversions by send day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversions3_by_send_time: Option<u64>,
    /// Unique recipients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_recipients: Option<u64>,
    /// Revenue in USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revenue: Option<f64>,
    /// Per-channel statistics, one object per variant (`variation_api_id` or `variation_name` plus the
    /// channel's counters, e.g. `sent`, `opens`, `clicks`).
    #[serde(default)]
    pub messages: BTreeMap<String, Vec<Map<String, Value>>>,
}

impl Request for CanvasListRequest {
    const ENDPOINT: Endpoint = Endpoint::CanvasList;
    type Response = CanvasListResponse;
}

impl PagedRequest for CanvasListRequest {
    type Item = CanvasSummary;

    fn with_page(&self, page: u32) -> Self {
        self.clone().page(page)
    }

    fn page_len(response: &CanvasListResponse) -> usize {
        response.canvases.len()
    }

    fn into_items(response: CanvasListResponse) -> Vec<CanvasSummary> {
        response.canvases
    }
}

/// One page of `GET /canvas/list`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CanvasListResponse {
    /// `success` (empty if Braze omitted it).
    #[serde(default)]
    pub message: String,
    /// The page's Canvases (fewer than [`LIST_PAGE_SIZE`] on the last page).
    #[serde(default)]
    pub canvases: Vec<CanvasSummary>,
    /// Braze's non-fatal errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

/// A Canvas in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CanvasSummary {
    /// The Canvas's API id.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// When it was last edited (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_edited: Option<String>,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `GET /canvas/details`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CanvasDetailsRequest {
    /// The Canvas.
    pub canvas_id: String,
    /// Return the post-launch draft instead of the live version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_launch_draft_version: Option<bool>,
}

impl CanvasDetailsRequest {
    /// The details of `canvas_id`.
    pub fn new(canvas_id: impl Into<String>) -> Self {
        Self {
            canvas_id: canvas_id.into(),
            post_launch_draft_version: None,
        }
    }

    /// Sets `post_launch_draft_version`.
    pub fn post_launch_draft_version(mut self, draft: bool) -> Self {
        self.post_launch_draft_version = Some(draft);
        self
    }
}

impl Request for CanvasDetailsRequest {
    const ENDPOINT: Endpoint = Endpoint::CanvasDetails;
    type Response = CanvasDetailsResponse;
}

/// The response of `GET /canvas/details`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CanvasDetailsResponse {
    /// `success` (empty if Braze omitted it).
    #[serde(default)]
    pub message: String,
    /// When it was created (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When it was last updated (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether it is archived.
    #[serde(default)]
    pub archived: bool,
    /// Whether it is a draft.
    #[serde(default)]
    pub draft: bool,
    /// Whether it is active (not stopped).
    #[serde(default)]
    pub enabled: bool,
    /// Whether it has a post-launch draft.
    #[serde(default)]
    pub has_post_launch_draft: bool,
    /// How users enter, e.g. `api_triggered`, `action_based`, `date`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_type: Option<String>,
    /// When the first user entered (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_entry: Option<String>,
    /// When the last user entered (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_entry: Option<String>,
    /// Its channels.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Its variants (entry paths).
    #[serde(default)]
    pub variants: Vec<CanvasVariant>,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Its teams.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
    /// Its steps.
    #[serde(default)]
    pub steps: Vec<CanvasStep>,
    /// Braze's non-fatal errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

/// A Canvas variant: a path users are split into on entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CanvasVariant {
    /// Its API id.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// The ids of its first steps.
    #[serde(default)]
    pub first_step_ids: Vec<String>,
    /// The id of its first step (deprecated by Braze in favour of `first_step_ids`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_step_id: Option<String>,
}

/// A Canvas step.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CanvasStep {
    /// Its API id.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its JSON `type`, e.g. `message`, `delay`, `experiment_paths`, `decision_split`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The ids of the steps that follow.
    #[serde(default)]
    pub next_step_ids: Vec<String>,
    /// Named paths to the following steps (experiment path names, "Yes"/"No" of a decision split).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next_paths: Vec<CanvasNextPath>,
    /// Its channels.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Its messages, by message variation id.
    #[serde(default)]
    pub messages: BTreeMap<String, CampaignMessage>,
}

/// A named path out of a Canvas step.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CanvasNextPath {
    /// The path's name (Braze sends `null` for an unnamed path: empty).
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// The step it leads to; `None` when the path ends the Canvas (Braze sends `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_step_id: Option<String>,
}

/// `GET /canvas/data_series`: daily analytics of a Canvas over `length` days (1 to 14) or since
/// `starting_at`; one of the two is required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CanvasDataSeriesRequest {
    /// The Canvas.
    pub canvas_id: String,
    /// The last day (ISO-8601; Braze's default now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ending_at: Option<String>,
    /// The first day (ISO-8601), instead of `length`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starting_at: Option<String>,
    /// Days before `ending_at`, 1 to 14, instead of `starting_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<u32>,
    /// Add per-variant statistics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_variant_breakdown: Option<bool>,
    /// Add per-step statistics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_step_breakdown: Option<bool>,
    /// Include the statistics of deleted steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_deleted_step_data: Option<bool>,
}

impl CanvasDataSeriesRequest {
    /// The last `length` days (1 to 14) of `canvas_id`.
    pub fn new(canvas_id: impl Into<String>, length: u32) -> Self {
        Self {
            canvas_id: canvas_id.into(),
            ending_at: None,
            starting_at: None,
            length: Some(length),
            include_variant_breakdown: None,
            include_step_breakdown: None,
            include_deleted_step_data: None,
        }
    }

    /// The days of `canvas_id` from `starting_at` (ISO-8601).
    pub fn since(canvas_id: impl Into<String>, starting_at: impl Into<String>) -> Self {
        Self {
            starting_at: Some(starting_at.into()),
            length: None,
            ..Self::new(canvas_id, 0)
        }
    }

    /// Sets the last day (ISO-8601).
    pub fn ending_at(mut self, time: impl Into<String>) -> Self {
        self.ending_at = Some(time.into());
        self
    }

    /// Sets `include_variant_breakdown`.
    pub fn include_variant_breakdown(mut self, include: bool) -> Self {
        self.include_variant_breakdown = Some(include);
        self
    }

    /// Sets `include_step_breakdown`.
    pub fn include_step_breakdown(mut self, include: bool) -> Self {
        self.include_step_breakdown = Some(include);
        self
    }

    /// Sets `include_deleted_step_data`.
    pub fn include_deleted_step_data(mut self, include: bool) -> Self {
        self.include_deleted_step_data = Some(include);
        self
    }
}

impl Request for CanvasDataSeriesRequest {
    const ENDPOINT: Endpoint = Endpoint::CanvasDataSeries;
    type Response = CanvasDataSeriesResponse;
}

/// The response of `GET /canvas/data_series`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CanvasDataSeriesResponse {
    /// `success` (empty if Braze omitted it).
    #[serde(default)]
    pub message: String,
    /// The series.
    #[serde(default)]
    pub data: CanvasDataSeries,
    /// Braze's non-fatal errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

/// A Canvas's daily statistics.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CanvasDataSeries {
    /// The Canvas's name.
    #[serde(default)]
    pub name: String,
    /// One entry per day, oldest first.
    #[serde(default)]
    pub stats: Vec<CanvasStats>,
}

/// One day of a Canvas's statistics.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CanvasStats {
    /// The day (ISO-8601 date).
    pub time: String,
    /// The whole Canvas.
    #[serde(default)]
    pub total_stats: CanvasTotals,
    /// Per variant, by variant id; present only with `include_variant_breakdown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_stats: Option<BTreeMap<String, CanvasVariantStats>>,
    /// Per step, by step id; present only with `include_step_breakdown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_stats: Option<BTreeMap<String, CanvasStepStats>>,
}

/// A day's totals of a whole Canvas.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CanvasTotals {
    /// Revenue in USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revenue: Option<f64>,
    /// Conversions, by conversion day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversions: Option<u64>,
    /// Conversions, by entry day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversions_by_entry_time: Option<u64>,
    /// Entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<u64>,
}

/// A day's statistics of one Canvas variant.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CanvasVariantStats {
    /// The variant's name.
    #[serde(default)]
    pub name: String,
    /// Revenue in USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revenue: Option<f64>,
    /// Conversions, by conversion day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversions: Option<u64>,
    /// Conversions, by entry day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversions_by_entry_time: Option<u64>,
    /// Entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<u64>,
}

/// A day's statistics of one Canvas step.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CanvasStepStats {
    /// The step's name.
    #[serde(default)]
    pub name: String,
    /// Revenue in USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revenue: Option<f64>,
    /// Conversions, by conversion day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversions: Option<u64>,
    /// Conversions, by entry day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversions_by_entry_time: Option<u64>,
    /// Per-channel counters (`sent`, `opens`, `clicks`, ...), one object per message.
    #[serde(default)]
    pub messages: BTreeMap<String, Vec<Map<String, Value>>>,
}

/// `GET /segments/list`: one page of segments (archived segments are never listed).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SegmentListRequest {
    /// Page number, from 0.
    #[serde(default)]
    pub page: u32,
    /// Sort order by creation time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort_direction: Option<SortDirection>,
}

impl SegmentListRequest {
    /// The first page, with Braze's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the page number (from 0).
    pub fn page(mut self, page: u32) -> Self {
        self.page = page;
        self
    }

    /// Sets the sort order.
    pub fn sort_direction(mut self, direction: SortDirection) -> Self {
        self.sort_direction = Some(direction);
        self
    }
}

impl Request for SegmentListRequest {
    const ENDPOINT: Endpoint = Endpoint::SegmentsList;
    type Response = SegmentListResponse;
}

impl PagedRequest for SegmentListRequest {
    type Item = SegmentSummary;

    fn with_page(&self, page: u32) -> Self {
        self.clone().page(page)
    }

    fn page_len(response: &SegmentListResponse) -> usize {
        response.segments.len()
    }

    fn into_items(response: SegmentListResponse) -> Vec<SegmentSummary> {
        response.segments
    }
}

/// One page of `GET /segments/list`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SegmentListResponse {
    /// `success` (empty if Braze omitted it).
    #[serde(default)]
    pub message: String,
    /// The page's segments (fewer than [`LIST_PAGE_SIZE`] on the last page).
    #[serde(default)]
    pub segments: Vec<SegmentSummary>,
    /// Braze's non-fatal errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

/// A segment in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SegmentSummary {
    /// The segment's API id.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Whether Braze tracks its analytics (needed for `/segments/data_series`).
    #[serde(default)]
    pub analytics_tracking_enabled: bool,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `GET /segments/details`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SegmentDetailsRequest {
    /// The segment.
    pub segment_id: String,
}

impl SegmentDetailsRequest {
    /// The details of `segment_id`.
    pub fn new(segment_id: impl Into<String>) -> Self {
        Self {
            segment_id: segment_id.into(),
        }
    }
}

impl Request for SegmentDetailsRequest {
    const ENDPOINT: Endpoint = Endpoint::SegmentsDetails;
    type Response = SegmentDetailsResponse;
}

/// The response of `GET /segments/details`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SegmentDetailsResponse {
    /// `success` (empty if Braze omitted it).
    #[serde(default)]
    pub message: String,
    /// When it was created (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When it was last updated (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A human-readable description of its filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_description: Option<String>,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Its teams.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
    /// Braze's non-fatal errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

/// `GET /segments/data_series`: a segment's estimated daily size (needs analytics tracking).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SegmentDataSeriesRequest {
    /// The segment.
    pub segment_id: String,
    /// Days before `ending_at`, 1 to 100.
    pub length: u32,
    /// The last day (ISO-8601; Braze's default now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ending_at: Option<String>,
}

impl SegmentDataSeriesRequest {
    /// The last `length` days (1 to 100) of `segment_id`.
    pub fn new(segment_id: impl Into<String>, length: u32) -> Self {
        Self {
            segment_id: segment_id.into(),
            length,
            ending_at: None,
        }
    }

    /// Sets the last day (ISO-8601).
    pub fn ending_at(mut self, time: impl Into<String>) -> Self {
        self.ending_at = Some(time.into());
        self
    }
}

impl Request for SegmentDataSeriesRequest {
    const ENDPOINT: Endpoint = Endpoint::SegmentsDataSeries;
    type Response = SegmentDataSeriesResponse;
}

/// The response of `GET /segments/data_series`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SegmentDataSeriesResponse {
    /// `success` (empty if Braze omitted it).
    #[serde(default)]
    pub message: String,
    /// One size per day, oldest first.
    #[serde(default)]
    pub data: Vec<SegmentSize>,
    /// Braze's non-fatal errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

/// A segment's estimated size on one day.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SegmentSize {
    /// The day (ISO-8601 date).
    pub time: String,
    /// The estimated number of users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// `GET /sends/data_series`: daily analytics of one send of an API campaign (kept 14 days).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SendDataSeriesRequest {
    /// The campaign.
    pub campaign_id: String,
    /// The send.
    pub send_id: String,
    /// Days before `ending_at`, 1 to 100.
    pub length: u32,
    /// The last day (ISO-8601; Braze's default now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ending_at: Option<String>,
}

impl SendDataSeriesRequest {
    /// The last `length` days (1 to 100) of `send_id` of `campaign_id`.
    pub fn new(campaign_id: impl Into<String>, send_id: impl Into<String>, length: u32) -> Self {
        Self {
            campaign_id: campaign_id.into(),
            send_id: send_id.into(),
            length,
            ending_at: None,
        }
    }

    /// Sets the last day (ISO-8601).
    pub fn ending_at(mut self, time: impl Into<String>) -> Self {
        self.ending_at = Some(time.into());
        self
    }
}

impl Request for SendDataSeriesRequest {
    const ENDPOINT: Endpoint = Endpoint::SendsDataSeries;
    type Response = SendDataSeriesResponse;
}

/// The response of `GET /sends/data_series`: one point per day, shaped like a campaign's.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SendDataSeriesResponse {
    /// `success` (empty if Braze omitted it).
    #[serde(default)]
    pub message: String,
    /// One point per day, oldest first.
    #[serde(default)]
    pub data: Vec<CampaignDataPoint>,
    /// Braze's non-fatal errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

/// `POST /sends/id/create`: registers a send id for an API campaign (100 a day per workspace; ASCII,
/// at most 64 characters). Without `send_id`, Braze generates one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SendIdCreateRequest {
    /// The campaign.
    pub campaign_id: String,
    /// The send id to register.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_id: Option<String>,
}

impl SendIdCreateRequest {
    /// A send id for `campaign_id`, generated by Braze unless set.
    pub fn new(campaign_id: impl Into<String>) -> Self {
        Self {
            campaign_id: campaign_id.into(),
            send_id: None,
        }
    }

    /// Sets the send id to register.
    pub fn send_id(mut self, id: impl Into<String>) -> Self {
        self.send_id = Some(id.into());
        self
    }
}

impl Request for SendIdCreateRequest {
    const ENDPOINT: Endpoint = Endpoint::SendsIdCreate;
    type Response = SendIdCreateResponse;
}

/// The response of `POST /sends/id/create`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SendIdCreateResponse {
    /// `success` (empty if Braze omitted it).
    #[serde(default)]
    pub message: String,
    /// The registered send id.
    pub send_id: String,
    /// Braze's non-fatal errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::test_support::{check_body, check_query, check_response};

    #[test]
    fn campaign_list_request_is_a_query() {
        check_query(&CampaignListRequest::new(), &[("page", "0")]);
        let query = check_query(
            &CampaignListRequest::new()
                .page(3)
                .include_archived(true)
                .sort_direction(SortDirection::Desc)
                .last_edit_time_gt("2024-01-01T00:00:00"),
            &[
                ("page", "3"),
                ("include_archived", "true"),
                ("sort_direction", "desc"),
                ("last_edit.time[gt]", "2024-01-01T00:00:00"),
            ],
        );
        assert!(
            query.contains("last_edit.time%5Bgt%5D=2024-01-01T00%3A00%3A00"),
            "{query}"
        );
    }

    #[test]
    fn campaign_list_response_parses() {
        let response: CampaignListResponse =
            check_response("campaigns_list.json", |r: &CampaignListResponse| &r.errors);
        assert_eq!(response.campaigns.len(), 3);
        assert!(response.campaigns[0].is_api_campaign);
        assert_eq!(response.campaigns[1].tags, ["retention"]);
        assert_eq!(CampaignListRequest::page_len(&response), 3);
    }

    #[test]
    fn campaign_details_request_is_a_query() {
        check_query(&CampaignDetailsRequest::new("camp-1"), &[("campaign_id", "camp-1")]);
        check_query(
            &CampaignDetailsRequest::new("camp-1").post_launch_draft_version(true),
            &[("campaign_id", "camp-1"), ("post_launch_draft_version", "true")],
        );
    }

    #[test]
    fn campaign_details_response_parses() {
        let response: CampaignDetailsResponse =
            check_response("campaigns_details.json", |r: &CampaignDetailsResponse| &r.errors);
        assert_eq!(response.name.as_deref(), Some("Spring cross-sell"));
        assert!(response.enabled && !response.archived && !response.draft);
        assert_eq!(response.schedule_type.as_deref(), Some("api_triggered"));
        assert_eq!(response.messages.len(), 3);
        let email = &response.messages["a1b2c3d4-0001"];
        assert_eq!(email.channel.as_deref(), Some("email"));
        assert_eq!(
            email.str_field("subject"),
            Some("{{api_trigger_properties.${headline}}}")
        );
        assert!(!email.is_control());
        assert!(response.messages["a1b2c3d4-0003"].is_control());
        assert_eq!(
            response.messages["a1b2c3d4-0002"].str_field("alert"),
            Some("A little something for you")
        );
        assert_eq!(response.conversion_behaviors.len(), 2);
        assert_eq!(response.conversion_behaviors[0].kind, "Makes Specific Purchase");
        assert_eq!(response.conversion_behaviors[0].window, Some(259_200));
        assert_eq!(response.conversion_behaviors[0].product.as_deref(), Some("sku-42"));
        assert_eq!(
            response.conversion_behaviors[1].custom_event_name.as_deref(),
            Some("offer_redeemed")
        );
    }

    #[test]
    fn campaign_data_series_request_is_a_query() {
        check_query(
            &CampaignDataSeriesRequest::new("camp-1", 7),
            &[("campaign_id", "camp-1"), ("length", "7")],
        );
        let query = check_query(
            &CampaignDataSeriesRequest::new("camp-1", 7).ending_at("2024-05-31T23:59:59+02:00"),
            &[
                ("campaign_id", "camp-1"),
                ("length", "7"),
                ("ending_at", "2024-05-31T23:59:59+02:00"),
            ],
        );
        // A `+` must be escaped, or the server reads a space.
        assert!(query.contains("%2B02%3A00"), "{query}");
    }

    #[test]
    fn campaign_data_series_response_parses() {
        let response: CampaignDataSeriesResponse =
            check_response("campaigns_data_series.json", |r: &CampaignDataSeriesResponse| &r.errors);
        assert_eq!(response.data.len(), 2);
        let day = &response.data[0];
        assert_eq!(day.conversions, Some(12));
        assert_eq!(day.conversions1, Some(3));
        assert_eq!(day.unique_recipients, Some(1480));
        assert_eq!(day.revenue, Some(1234.5));
        assert_eq!(day.messages["email"][0]["variation_name"], json!("Variant 1"));
        assert_eq!(day.messages["email"][1]["unique_opens"], json!(301));
    }

    #[test]
    fn canvas_list_request_is_a_query() {
        check_query(&CanvasListRequest::new(), &[("page", "0")]);
        check_query(
            &CanvasListRequest::new()
                .page(1)
                .include_archived(false)
                .sort_direction(SortDirection::Asc)
                .last_edit_time_gt("2024-02-01T10:00:00"),
            &[
                ("page", "1"),
                ("include_archived", "false"),
                ("sort_direction", "asc"),
                ("last_edit.time[gt]", "2024-02-01T10:00:00"),
            ],
        );
    }

    #[test]
    fn canvas_list_response_parses() {
        let response: CanvasListResponse = check_response("canvas_list.json", |r: &CanvasListResponse| &r.errors);
        assert_eq!(response.canvases.len(), 2);
        assert_eq!(response.canvases[0].name, "Onboarding journey");
    }

    #[test]
    fn canvas_details_request_is_a_query() {
        check_query(&CanvasDetailsRequest::new("canvas-1"), &[("canvas_id", "canvas-1")]);
        check_query(
            &CanvasDetailsRequest::new("canvas-1").post_launch_draft_version(false),
            &[("canvas_id", "canvas-1"), ("post_launch_draft_version", "false")],
        );
    }

    #[test]
    fn canvas_details_response_parses() {
        let response: CanvasDetailsResponse =
            check_response("canvas_details.json", |r: &CanvasDetailsResponse| &r.errors);
        assert!(response.enabled && !response.archived);
        assert_eq!(response.variants.len(), 2);
        assert_eq!(response.variants[0].first_step_ids, ["step-1"]);
        assert_eq!(response.steps.len(), 3);
        let split = &response.steps[0];
        assert_eq!(split.kind.as_deref(), Some("experiment_paths"));
        assert_eq!(split.next_paths[1].name, "Path 2");
        let message = &response.steps[1].messages["m-1"];
        assert_eq!(message.channel.as_deref(), Some("email"));
        assert_eq!(
            message.str_field("subject"),
            Some("Welcome, {{context.${first_offer}}}")
        );
    }

    /// Real workspaces send `null` where the documentation shows a value: a conversion behavior
    /// without app restriction, a path without a name or a following step.
    #[test]
    fn nulls_in_campaign_and_canvas_details_decode() {
        let behavior: ConversionBehavior =
            serde_json::from_value(json!({"type": "Opens App", "window": 86400, "app_ids": null})).unwrap();
        assert!(behavior.app_ids.is_empty());
        let path: CanvasNextPath = serde_json::from_value(json!({"name": null, "next_step_id": null})).unwrap();
        assert_eq!(path, CanvasNextPath::default());
        let path: CanvasNextPath = serde_json::from_value(json!({"name": "Yes", "next_step_id": "s-2"})).unwrap();
        assert_eq!(path.next_step_id.as_deref(), Some("s-2"));
    }

    #[test]
    fn canvas_data_series_request_is_a_query() {
        check_query(
            &CanvasDataSeriesRequest::new("canvas-1", 14),
            &[("canvas_id", "canvas-1"), ("length", "14")],
        );
        check_query(
            &CanvasDataSeriesRequest::since("canvas-1", "2024-05-01T00:00:00Z")
                .ending_at("2024-05-07T00:00:00Z")
                .include_variant_breakdown(true)
                .include_step_breakdown(true)
                .include_deleted_step_data(false),
            &[
                ("canvas_id", "canvas-1"),
                ("ending_at", "2024-05-07T00:00:00Z"),
                ("starting_at", "2024-05-01T00:00:00Z"),
                ("include_variant_breakdown", "true"),
                ("include_step_breakdown", "true"),
                ("include_deleted_step_data", "false"),
            ],
        );
    }

    #[test]
    fn canvas_data_series_response_parses() {
        let response: CanvasDataSeriesResponse =
            check_response("canvas_data_series.json", |r: &CanvasDataSeriesResponse| &r.errors);
        assert_eq!(response.data.name, "Onboarding journey");
        assert_eq!(response.data.stats.len(), 2);
        let day = &response.data.stats[0];
        assert_eq!(day.total_stats.entries, Some(540));
        assert_eq!(day.total_stats.revenue, Some(980.25));
        let variants = day.variant_stats.as_ref().unwrap();
        assert_eq!(variants["variant-a"].conversions, Some(20));
        let steps = day.step_stats.as_ref().unwrap();
        assert_eq!(steps["step-2"].messages["email"][0]["sent"], json!(260));
        // Without the breakdown flags the keys are absent.
        assert!(response.data.stats[1].variant_stats.is_none());
        assert!(response.data.stats[1].step_stats.is_none());
    }

    #[test]
    fn segment_list_request_is_a_query() {
        check_query(&SegmentListRequest::new(), &[("page", "0")]);
        check_query(
            &SegmentListRequest::new().page(2).sort_direction(SortDirection::Desc),
            &[("page", "2"), ("sort_direction", "desc")],
        );
    }

    #[test]
    fn segment_list_response_parses() {
        let response: SegmentListResponse = check_response("segments_list.json", |r: &SegmentListResponse| &r.errors);
        assert_eq!(response.segments.len(), 2);
        assert!(response.segments[0].analytics_tracking_enabled);
        assert_eq!(response.segments[1].tags, ["winback", "offerloop"]);
    }

    #[test]
    fn segment_details_request_is_a_query() {
        check_query(&SegmentDetailsRequest::new("seg-1"), &[("segment_id", "seg-1")]);
    }

    #[test]
    fn segment_details_response_parses() {
        let response: SegmentDetailsResponse =
            check_response("segments_details.json", |r: &SegmentDetailsResponse| &r.errors);
        assert_eq!(response.name.as_deref(), Some("Lapsed 90 days"));
        assert!(
            response
                .description
                .as_deref()
                .is_some_and(|d| d.contains("Last used app"))
        );
        assert_eq!(response.teams, ["Growth"]);
    }

    #[test]
    fn segment_data_series_request_is_a_query() {
        check_query(
            &SegmentDataSeriesRequest::new("seg-1", 30).ending_at("2024-05-31"),
            &[("segment_id", "seg-1"), ("length", "30"), ("ending_at", "2024-05-31")],
        );
    }

    #[test]
    fn segment_data_series_response_parses() {
        let response: SegmentDataSeriesResponse =
            check_response("segments_data_series.json", |r: &SegmentDataSeriesResponse| &r.errors);
        assert_eq!(
            response.data,
            [
                SegmentSize {
                    time: "2024-05-30".to_owned(),
                    size: Some(48_210)
                },
                SegmentSize {
                    time: "2024-05-31".to_owned(),
                    size: Some(48_377)
                },
            ]
        );
    }

    #[test]
    fn send_data_series_request_is_a_query() {
        check_query(
            &SendDataSeriesRequest::new("camp-1", "send-1", 5),
            &[("campaign_id", "camp-1"), ("send_id", "send-1"), ("length", "5")],
        );
        check_query(
            &SendDataSeriesRequest::new("camp-1", "send-1", 5).ending_at("2024-05-31T00:00:00Z"),
            &[
                ("campaign_id", "camp-1"),
                ("send_id", "send-1"),
                ("length", "5"),
                ("ending_at", "2024-05-31T00:00:00Z"),
            ],
        );
    }

    #[test]
    fn send_data_series_response_parses() {
        let response: SendDataSeriesResponse =
            check_response("sends_data_series.json", |r: &SendDataSeriesResponse| &r.errors);
        assert_eq!(response.data.len(), 1);
        let stats = &response.data[0].messages["email"][0];
        assert_eq!(stats["delivered"], json!(1190));
        assert_eq!(stats["conversions_by_send_time"], json!(14));
    }

    #[test]
    fn send_id_create_request_omits_what_is_absent() {
        check_body(&SendIdCreateRequest::new("camp-1"), json!({"campaign_id": "camp-1"}));
        check_body(
            &SendIdCreateRequest::new("camp-1").send_id("spring-offers-2024-05"),
            json!({"campaign_id": "camp-1", "send_id": "spring-offers-2024-05"}),
        );
    }

    #[test]
    fn send_id_create_response_parses() {
        let response: SendIdCreateResponse =
            check_response("sends_id_create.json", |r: &SendIdCreateResponse| &r.errors);
        assert_eq!(response.send_id, "spring-offers-2024-05");
    }

    #[test]
    fn list_requests_page_by_number() {
        let base = CampaignListRequest::new().include_archived(true).page(7);
        assert_eq!(
            base.with_page(2),
            CampaignListRequest::new().include_archived(true).page(2)
        );
        assert_eq!(base.page_size(), LIST_PAGE_SIZE);
        let canvases = CanvasListRequest::new().sort_direction(SortDirection::Desc);
        assert_eq!(canvases.with_page(4).page, 4);
        assert_eq!(canvases.with_page(4).sort_direction, Some(SortDirection::Desc));
        assert_eq!(SegmentListRequest::new().with_page(9).page, 9);

        let segments = SegmentListResponse {
            segments: vec![SegmentSummary::default(); 2],
            ..SegmentListResponse::default()
        };
        assert_eq!(SegmentListRequest::page_len(&segments), 2);
        assert_eq!(SegmentListRequest::into_items(segments).len(), 2);
        let canvases = CanvasListResponse {
            canvases: vec![CanvasSummary::default(); 3],
            ..CanvasListResponse::default()
        };
        assert_eq!(CanvasListRequest::page_len(&canvases), 3);
        assert_eq!(CanvasListRequest::into_items(canvases).len(), 3);
        assert!(CampaignListRequest::into_items(CampaignListResponse::default()).is_empty());
    }
}
