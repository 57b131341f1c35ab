//! Sends: `POST /messages/send`, `/campaigns/trigger/send`, `/canvas/trigger/send`, their
//! `.../schedule/create` variants, and `.../schedule/update` / `.../schedule/delete`.
//!
//! Every request is validated as Braze does (§16 of the Braze notes: recipient limits, `broadcast`
//! with recipients, no audience, `send_to_existing_only`, campaign/Canvas state, 50 KB properties,
//! `send_id`, schedule times) before anything is sent: a fatal error sends nothing. An accepted
//! request becomes a [`SendPlan`] and [`Target`]s (see [`crate::state::sends`]), executed now or stored
//! as a schedule. There is no idempotency: the same request twice sends twice, with two
//! `dispatch_id`s; the same user twice in one request is sent once (the first occurrence wins).
//!
//! Recipients are resolved by `external_user_id`, `braze_id` or `email` (profile lookups);
//! `user_alias` recipients are accepted but reach nobody (the simulator's users have no aliases), and
//! unknown identifiers are skipped silently, as Braze does, unless `send_to_existing_only: false` with
//! `attributes` creates them. `attributes` are applied (plain set) before the send; standard profile
//! fields go to the profile, the rest to custom attributes. `/messages/send` with a `segment_id` reaches
//! only the segment's members (listed users outside it receive nothing; an unknown `segment_id` is
//! fatal). The simulator's campaigns and Canvases declare no dashboard target segment, so they target
//! Braze's "All Users": a broadcast reaches every user and listed recipients are not filtered.
//! `audience` filters support `AND`/`OR`/`NOT`, `custom_attribute`, `email_subscription_status`
//! and `push_subscription_status`. Schedule updates change the time only. `recipient_subscription_state`,
//! `override_frequency_capping`/`override_messaging_limits` and `attachments` are accepted and ignored
//! (reachability is the world's: [`Workspace::deliver`] decides delivery or bounce).

use std::collections::HashSet;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::AppState;
use super::envelope::{ApiError, success};
use crate::state::Workspace;
use crate::state::catalog::{parse_time, validate_send_id};
use crate::state::sends::{self, ScheduleTime, SendPlan, Source, Target};
use crate::state::spec::SegmentSpec;
use crate::world::Channel;

/// Most listed recipients in one request: Braze's documented limit, kept here independently of `offerloop_braze::limits` (the simulator checks the
/// client's contract instead of sharing its mistakes); `tests/e2e/braze_contract.rs` holds the two equal.
pub const MAX_RECIPIENTS: usize = 50;

/// Largest `trigger_properties` / `context` object, serialised (50 KB).
pub const MAX_PROPERTIES_BYTES: usize = 50 * 1024;

/// Braze's text for more than [`MAX_RECIPIENTS`] recipients.
pub const TOO_MANY_RECIPIENTS: &str = "The max number of external_ids and aliases per request was exceeded";

/// This module's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/messages/send", post(messages_send))
        .route("/messages/schedule/create", post(messages_schedule_create))
        .route("/messages/schedule/update", post(messages_schedule_update))
        .route("/messages/schedule/delete", post(messages_schedule_delete))
        .route("/campaigns/trigger/send", post(campaign_send))
        .route("/campaigns/trigger/schedule/create", post(campaign_schedule_create))
        .route("/campaigns/trigger/schedule/update", post(campaign_schedule_update))
        .route("/campaigns/trigger/schedule/delete", post(campaign_schedule_delete))
        .route("/canvas/trigger/send", post(canvas_send))
        .route("/canvas/trigger/schedule/create", post(canvas_schedule_create))
        .route("/canvas/trigger/schedule/update", post(canvas_schedule_update))
        .route("/canvas/trigger/schedule/delete", post(canvas_schedule_delete))
}

/// Which family of endpoints a request came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Messages,
    Campaign,
    Canvas,
}

async fn messages_send(State(state): State<AppState>, body: Bytes) -> Response {
    handle_send(&state, Kind::Messages, &body, false)
}

async fn messages_schedule_create(State(state): State<AppState>, body: Bytes) -> Response {
    handle_send(&state, Kind::Messages, &body, true)
}

async fn messages_schedule_update(State(state): State<AppState>, body: Bytes) -> Response {
    handle_schedule_update(&state, Kind::Messages, &body)
}

async fn messages_schedule_delete(State(state): State<AppState>, body: Bytes) -> Response {
    handle_schedule_delete(&state, Kind::Messages, &body)
}

async fn campaign_send(State(state): State<AppState>, body: Bytes) -> Response {
    handle_send(&state, Kind::Campaign, &body, false)
}

async fn campaign_schedule_create(State(state): State<AppState>, body: Bytes) -> Response {
    handle_send(&state, Kind::Campaign, &body, true)
}

async fn campaign_schedule_update(State(state): State<AppState>, body: Bytes) -> Response {
    handle_schedule_update(&state, Kind::Campaign, &body)
}

async fn campaign_schedule_delete(State(state): State<AppState>, body: Bytes) -> Response {
    handle_schedule_delete(&state, Kind::Campaign, &body)
}

async fn canvas_send(State(state): State<AppState>, body: Bytes) -> Response {
    handle_send(&state, Kind::Canvas, &body, false)
}

async fn canvas_schedule_create(State(state): State<AppState>, body: Bytes) -> Response {
    handle_send(&state, Kind::Canvas, &body, true)
}

async fn canvas_schedule_update(State(state): State<AppState>, body: Bytes) -> Response {
    handle_schedule_update(&state, Kind::Canvas, &body)
}

async fn canvas_schedule_delete(State(state): State<AppState>, body: Bytes) -> Response {
    handle_schedule_delete(&state, Kind::Canvas, &body)
}

/// Locks the workspace; a poisoned lock (a handler panicked) still holds consistent enough state for
/// a simulator, so it is used as is.
pub(crate) fn lock(state: &AppState) -> std::sync::MutexGuard<'_, Workspace> {
    state
        .workspace
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Parses a JSON object body.
pub(crate) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request("Request body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!("Malformed JSON: {e}"))),
    }
}

/// A `201 Created` success envelope.
fn created(fields: Value) -> Response {
    (StatusCode::CREATED, success(fields)).into_response()
}

fn handle_send(state: &AppState, kind: Kind, body: &[u8], scheduled: bool) -> Response {
    let result = parse_object(body).and_then(|body| {
        let mut ws = lock(state);
        send(&mut ws, kind, &body, scheduled)
    });
    match result {
        Ok(fields) => created(fields),
        Err(error) => error.into_response(),
    }
}

/// Validates and performs one send or schedule request; returns the success fields.
fn send(ws: &mut Workspace, kind: Kind, body: &Map<String, Value>, scheduled: bool) -> Result<Value, ApiError> {
    let (source, notice) = source(ws, kind, body)?;
    let request_properties = request_properties(kind, body)?;
    let schedule_time = if scheduled {
        Some(parse_schedule(ws.now, body)?)
    } else {
        None
    };
    let audience = Audience::parse(kind, body)?;
    let segment = target_segment(ws, &source, &audience)?;
    let campaign_id = match &source {
        Source::Campaign { campaign_id } => Some(campaign_id.clone()),
        Source::Messages { campaign_id, .. } => campaign_id.clone(),
        Source::Canvas { .. } => None,
    };
    let mut send_id = match (kind, body.get("send_id")) {
        (Kind::Canvas, _) | (_, None | Some(Value::Null)) => None,
        (_, Some(Value::String(id))) => {
            validate_send_id(id).map_err(ApiError::bad_request)?;
            let Some(campaign) = &campaign_id else {
                return Err(ApiError::bad_request("send_id requires a campaign_id"));
            };
            if !ws.catalog.has_send_id(campaign, id) {
                return Err(ApiError::bad_request(
                    "Invalid send_id: create it with /sends/id/create first",
                ));
            }
            Some(id.clone())
        }
        (_, Some(_)) => return Err(ApiError::bad_request("send_id must be a string")),
    };
    // Braze tracks a broadcast of a campaign under a generated send id when none is given.
    if send_id.is_none()
        && audience.broadcast
        && let Some(campaign) = &campaign_id
    {
        let generated = ws.sends.new_send_id();
        ws.catalog.add_send_id(campaign, &generated, ws.now, false);
        send_id = Some(generated);
    }

    let dispatch_id = ws.sends.new_dispatch_id();
    let plan = SendPlan {
        source,
        dispatch_id: dispatch_id.clone(),
        send_id: send_id.clone(),
    };
    let mut fields = Map::new();
    fields.insert("dispatch_id".into(), json!(dispatch_id));
    if let Some(id) = &send_id {
        fields.insert("send_id".into(), json!(id));
    }
    if let Some(notice) = &notice
        && !scheduled
    {
        fields.insert("notice".into(), json!(notice));
        return Ok(Value::Object(fields));
    }
    let targets = audience.resolve(ws, &request_properties, segment.as_ref())?;
    match schedule_time {
        None => {
            let now = ws.now;
            sends::execute(ws, &plan, &targets, now);
        }
        Some(time) => {
            let schedule_id = sends::add_schedule(ws, plan, targets, time);
            fields.insert("schedule_id".into(), json!(schedule_id));
            if let Some(notice) = notice {
                fields.insert("notice".into(), json!(notice));
            }
        }
    }
    Ok(Value::Object(fields))
}

/// The segment a send is restricted to: `/messages/send`'s `segment_id`, checked to exist (before
/// anything changes, as every fatal error), or the campaign's or canvas's target segment (its
/// scenario `segment`; none is Braze's "All Users").
fn target_segment(ws: &Workspace, source: &Source, audience: &Audience) -> Result<Option<SegmentSpec>, ApiError> {
    let declared = match source {
        Source::Campaign { campaign_id } => ws.catalog.campaign(campaign_id).and_then(|c| c.spec.segment.clone()),
        Source::Canvas { canvas_id } => ws.catalog.canvas(canvas_id).and_then(|c| c.spec.segment.clone()),
        Source::Messages { .. } => None,
    };
    match audience.segment_id.as_ref().or(declared.as_ref()) {
        Some(id) => match ws.catalog.segment(id) {
            Some(segment) => Ok(Some(segment.spec.clone())),
            None => Err(ApiError::bad_request("Invalid segment_id")),
        },
        None => Ok(None),
    }
}

/// What the request sends, and the `notice` when it is accepted but nothing will go out.
fn source(ws: &Workspace, kind: Kind, body: &Map<String, Value>) -> Result<(Source, Option<String>), ApiError> {
    match kind {
        Kind::Campaign => {
            let Some(id) = body.get("campaign_id").and_then(Value::as_str) else {
                return Err(ApiError::bad_request("Invalid Campaign ID"));
            };
            let Some(campaign) = ws.catalog.campaign(id) else {
                return Err(ApiError::bad_request("Invalid Campaign ID"));
            };
            if !campaign.spec.api_triggered {
                return Err(ApiError::bad_request("Invalid Campaign ID")
                    .with_errors(vec![json!(format!("campaign {id} is not an API-triggered campaign"))]));
            }
            if campaign.spec.archived {
                return Err(ApiError::bad_request(
                    "The campaign is archived. Unarchive the campaign to ensure trigger requests will take effect.",
                ));
            }
            let notice = if campaign.spec.draft {
                Some("The campaign is a draft. Launch the campaign to ensure trigger requests will take effect.")
            } else if campaign.spec.paused {
                Some("The campaign is paused. Resume the campaign to ensure trigger requests will take effect.")
            } else {
                None
            };
            Ok((
                Source::Campaign {
                    campaign_id: id.to_owned(),
                },
                notice.map(str::to_owned),
            ))
        }
        Kind::Canvas => {
            let Some(id) = body.get("canvas_id").and_then(Value::as_str) else {
                return Err(ApiError::bad_request("Invalid Canvas ID"));
            };
            let Some(canvas) = ws.catalog.canvas(id) else {
                return Err(ApiError::bad_request("Invalid Canvas ID"));
            };
            if !canvas.spec.api_triggered {
                return Err(ApiError::bad_request("Invalid Canvas ID")
                    .with_errors(vec![json!(format!("canvas {id} is not API-triggered"))]));
            }
            let notice = if canvas.spec.archived {
                Some("The Canvas is archived. Unarchive the Canvas to ensure trigger requests will take effect.")
            } else if !canvas.spec.enabled {
                Some("The Canvas is paused. Resume the Canvas to ensure trigger requests will take effect.")
            } else {
                None
            };
            Ok((
                Source::Canvas {
                    canvas_id: id.to_owned(),
                },
                notice.map(str::to_owned),
            ))
        }
        Kind::Messages => {
            let campaign_id = match body.get("campaign_id") {
                None | Some(Value::Null) => None,
                Some(Value::String(id)) if ws.catalog.campaign(id).is_some() => Some(id.clone()),
                Some(_) => return Err(ApiError::bad_request("Invalid Campaign ID")),
            };
            let Some(Value::Object(messages)) = body.get("messages") else {
                return Err(ApiError::bad_request("No message to send"));
            };
            let mut channels: Vec<(Channel, Option<String>)> = Vec::new();
            for (key, object) in messages {
                let Some(channel) = message_channel(key) else {
                    return Err(ApiError::bad_request(format!("Unknown message type: {key}")));
                };
                let Value::Object(object) = object else {
                    return Err(ApiError::bad_request(format!("messages.{key} must be an object")));
                };
                if channel == Channel::Push && object.get("extra").is_some_and(|e| !e.is_object()) {
                    return Err(ApiError::bad_request("Invalid Extra Push Payload"));
                }
                let variation = object
                    .get("message_variation_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if !channels.iter().any(|(c, _)| *c == channel) {
                    channels.push((channel, variation));
                }
            }
            if channels.is_empty() {
                return Err(ApiError::bad_request("No message to send"));
            }
            Ok((Source::Messages { campaign_id, channels }, None))
        }
    }
}

/// The simulator's channel of a `/messages/send` `messages` key.
fn message_channel(key: &str) -> Option<Channel> {
    match key {
        "email" => Some(Channel::Email),
        "sms" => Some(Channel::Sms),
        "whats_app" => Some(Channel::WhatsApp),
        "apple_push" | "android_push" | "kindle_push" | "web_push" => Some(Channel::Push),
        "content_card" => Some(Channel::ContentCard),
        "webhook" => Some(Channel::Webhook),
        "in_app_message" => Some(Channel::InApp),
        _ => None,
    }
}

/// The names under which a request or recipient carries its properties.
fn property_keys(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Campaign => &["trigger_properties"],
        // `context` wins over the legacy name when both are given (it is merged last).
        Kind::Canvas => &["canvas_entry_properties", "context"],
        Kind::Messages => &[],
    }
}

/// The merged properties object(s) of `object` (request or recipient), validated (object, ≤ 50 KB).
fn properties_of(kind: Kind, object: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let mut merged = Map::new();
    for key in property_keys(kind) {
        match object.get(*key) {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                let size = serde_json::to_vec(map).map(|v| v.len()).unwrap_or(usize::MAX);
                if size > MAX_PROPERTIES_BYTES {
                    return Err(ApiError::bad_request(format!("{key} must be less than 50KB")));
                }
                merged.extend(map.clone());
            }
            Some(_) => return Err(ApiError::bad_request(format!("{key} must be an object"))),
        }
    }
    Ok(merged)
}

fn request_properties(kind: Kind, body: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    properties_of(kind, body)
}

/// Parses the required `schedule` object against `now`.
fn parse_schedule(now: Timestamp, body: &Map<String, Value>) -> Result<ScheduleTime, ApiError> {
    let Some(Value::Object(schedule)) = body.get("schedule") else {
        return Err(ApiError::bad_request("schedule is required"));
    };
    schedule_time(now, schedule)
}

/// Reads a schedule object: `time`, `in_local_time`, `at_optimal_time`.
///
/// `at_optimal_time` is treated as `in_local_time` at the given time; with a bare date it sends at
/// local noon (the simulator has no Intelligent Timing data, and Braze falls back to a fixed time too).
/// A UTC time before `now` is refused; a local time is refused when it has passed in every time zone
/// (the latest zone is UTC−12).
pub fn schedule_time(now: Timestamp, schedule: &Map<String, Value>) -> Result<ScheduleTime, ApiError> {
    let flag = |key: &str| -> Result<bool, ApiError> {
        match schedule.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(ApiError::bad_request(format!("schedule.{key} must be a boolean"))),
        }
    };
    let optimal = flag("at_optimal_time")?;
    let local = flag("in_local_time")? || optimal;
    let Some(text) = schedule.get("time").and_then(Value::as_str) else {
        return Err(ApiError::bad_request("schedule.time is required"));
    };
    let invalid = || ApiError::bad_request(format!("Invalid schedule time: {text} is not an ISO-8601 time"));
    if local {
        let mut civil = parse_local(text).ok_or_else(invalid)?;
        if optimal && !text.contains('T') {
            civil = civil.date().at(12, 0, 0, 0);
        }
        let latest = civil
            .to_zoned_datetime(jiff::tz::TimeZone::fixed(jiff::tz::offset(-12)))
            .map_err(|_| invalid())?
            .timestamp();
        if latest < now {
            return Err(ApiError::bad_request(
                "The schedule time has already passed in every time zone",
            ));
        }
        Ok(ScheduleTime::Local(civil))
    } else {
        let at = parse_time(text).ok_or_else(invalid)?;
        if at < now {
            return Err(ApiError::bad_request("The schedule time has already passed"));
        }
        Ok(ScheduleTime::At(at))
    }
}

/// A wall-clock time: `2026-01-05T09:00:00` (a zone designator, if any, is ignored) or a bare date.
fn parse_local(text: &str) -> Option<jiff::civil::DateTime> {
    let text = text.trim();
    let bare = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix('z'))
        .unwrap_or(text);
    if let Ok(dt) = bare.parse::<jiff::civil::DateTime>() {
        return Some(dt);
    }
    bare.parse::<jiff::civil::Date>().ok().map(jiff::civil::DateTime::from)
}

/// One listed recipient, validated.
#[derive(Debug)]
struct RecipientEntry {
    /// The `external_user_id`, when the recipient is named by it.
    external_id: Option<String>,
    /// `("braze_id" | "email", value)` when the recipient is named by one of those.
    other_id: Option<(&'static str, String)>,
    /// Merged per-recipient properties.
    properties: Map<String, Value>,
    /// `send_to_existing_only`.
    existing_only: bool,
    /// `attributes` to apply before the send.
    attributes: Option<Map<String, Value>>,
}

/// Who a request targets.
#[derive(Debug)]
struct Audience {
    recipients: Vec<RecipientEntry>,
    broadcast: bool,
    segment_id: Option<String>,
    filter: Option<Value>,
}

impl Audience {
    fn parse(kind: Kind, body: &Map<String, Value>) -> Result<Audience, ApiError> {
        let broadcast = match body.get("broadcast") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(ApiError::bad_request("broadcast must be a boolean")),
        };
        let filter = match body.get("audience") {
            None | Some(Value::Null) => None,
            Some(value) => {
                audience_matches(value, &Map::new())
                    .map_err(|e| ApiError::bad_request(format!("Invalid audience: {e}")))?;
                Some(value.clone())
            }
        };
        let mut recipients = Vec::new();
        let mut segment_id = None;
        let listed;
        if kind == Kind::Messages {
            let ids = match body.get("external_user_ids") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) => items.clone(),
                Some(_) => return Err(ApiError::bad_request("external_user_ids must be an array")),
            };
            let aliases = match body.get("user_aliases") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) => items.clone(),
                Some(_) => return Err(ApiError::bad_request("user_aliases must be an array")),
            };
            listed = ids.len() + aliases.len();
            if listed > MAX_RECIPIENTS {
                return Err(ApiError::bad_request(TOO_MANY_RECIPIENTS));
            }
            for id in ids {
                let Value::String(id) = id else {
                    return Err(ApiError::bad_request("external_user_ids must be strings"));
                };
                recipients.push(RecipientEntry {
                    external_id: Some(id),
                    other_id: None,
                    properties: Map::new(),
                    existing_only: true,
                    attributes: None,
                });
            }
            for alias in aliases {
                if !alias.get("alias_name").is_some_and(Value::is_string)
                    || !alias.get("alias_label").is_some_and(Value::is_string)
                {
                    return Err(ApiError::bad_request(
                        "user_aliases must have alias_name and alias_label",
                    ));
                }
                recipients.push(RecipientEntry {
                    external_id: None,
                    other_id: None,
                    properties: Map::new(),
                    existing_only: true,
                    attributes: None,
                });
            }
            segment_id = match body.get("segment_id") {
                None | Some(Value::Null) => None,
                Some(Value::String(id)) => Some(id.clone()),
                Some(_) => return Err(ApiError::bad_request("segment_id must be a string")),
            };
        } else {
            let items = match body.get("recipients") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) => items.clone(),
                Some(_) => return Err(ApiError::bad_request("recipients must be an array")),
            };
            listed = items.len();
            if listed > MAX_RECIPIENTS {
                return Err(ApiError::bad_request(TOO_MANY_RECIPIENTS));
            }
            for item in &items {
                recipients.push(parse_recipient(kind, item)?);
            }
        }
        if broadcast && listed > 0 {
            return Err(ApiError::bad_request(
                "Cannot set broadcast to true when recipients are specified",
            ));
        }
        if listed == 0 && !broadcast && filter.is_none() {
            if segment_id.is_some() {
                return Err(ApiError::bad_request(
                    "broadcast must be true to send to a whole segment",
                ));
            }
            return Err(ApiError::bad_request("No Recipients"));
        }
        Ok(Audience {
            recipients,
            broadcast,
            segment_id,
            filter,
        })
    }

    /// The users the request reaches, deduplicated (first occurrence wins), with merged properties;
    /// with a `segment`, only its members. Creates users and applies `attributes` as asked.
    fn resolve(
        &self,
        ws: &mut Workspace,
        request: &Map<String, Value>,
        segment: Option<&SegmentSpec>,
    ) -> Result<Vec<Target>, ApiError> {
        let mut candidates: Vec<(usize, Map<String, Value>)> = Vec::new();
        if self.recipients.is_empty() {
            // Broadcast, or an audience over the whole population.
            let n = ws.users.len(&ws.world);
            candidates.extend((0..n).map(|user| (user, request.clone())));
        } else {
            let now = ws.now;
            for recipient in &self.recipients {
                let user = match (&recipient.external_id, &recipient.other_id) {
                    (Some(external_id), _) => match ws.users.index_of(&ws.world, external_id) {
                        Some(user) => user,
                        None if !recipient.existing_only && recipient.attributes.is_some() => {
                            ws.users.create(&ws.world, external_id, now)
                        }
                        None => continue,
                    },
                    (None, Some((field, value))) => {
                        let world = ws.world.clone();
                        match ws.users.find_by(&world, field, value) {
                            Some(user) => user,
                            None => continue,
                        }
                    }
                    (None, None) => continue,
                };
                if let Some(attributes) = &recipient.attributes {
                    apply_attributes(ws, user, attributes);
                }
                let mut properties = request.clone();
                properties.extend(recipient.properties.clone());
                candidates.push((user, properties));
            }
        }
        let mut seen = HashSet::new();
        let mut targets = Vec::new();
        for (user, properties) in candidates {
            if !seen.insert(user) {
                continue;
            }
            if segment.is_some() || self.filter.is_some() {
                let profile = ws.users.profile(&ws.world, user);
                if segment.is_some_and(|s| !s.contains(&profile)) {
                    continue;
                }
                if let Some(filter) = &self.filter
                    && !audience_matches(filter, &profile).unwrap_or(false)
                {
                    continue;
                }
            }
            targets.push(Target { user, properties });
        }
        Ok(targets)
    }
}

fn parse_recipient(kind: Kind, item: &Value) -> Result<RecipientEntry, ApiError> {
    let Value::Object(object) = item else {
        return Err(ApiError::bad_request("Each recipient must be an object"));
    };
    let identifiers = ["external_user_id", "user_alias", "braze_id", "email"];
    let present: Vec<&str> = identifiers
        .iter()
        .copied()
        .filter(|k| object.get(*k).is_some_and(|v| !v.is_null()))
        .collect();
    if present.len() != 1 {
        return Err(ApiError::bad_request(
            "Each recipient must have exactly one of external_user_id, user_alias, braze_id or email",
        ));
    }
    let external_id = match object.get("external_user_id") {
        Some(Value::String(id)) => Some(id.clone()),
        Some(Value::Null) | None => None,
        Some(_) => return Err(ApiError::bad_request("external_user_id must be a string")),
    };
    let existing_only = match object.get("send_to_existing_only") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::bad_request("send_to_existing_only must be a boolean")),
    };
    let attributes = match object.get("attributes") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map.clone()),
        Some(_) => return Err(ApiError::bad_request("attributes must be an object")),
    };
    if !existing_only {
        if present[0] == "user_alias" {
            return Err(ApiError::bad_request(
                "send_to_existing_only cannot be false for a user_alias",
            ));
        }
        if attributes.is_none() {
            return Err(ApiError::bad_request(
                "attributes are required when send_to_existing_only is false",
            ));
        }
    }
    let other_id = ["braze_id", "email"]
        .into_iter()
        .find_map(|key| object.get(key).and_then(Value::as_str).map(|v| (key, v.to_owned())));
    Ok(RecipientEntry {
        external_id,
        other_id,
        properties: properties_of(kind, object)?,
        existing_only,
        attributes,
    })
}

/// Applies `attributes` to user `user` as plain sets (`/users/track` operators such as `{"inc": 1}`
/// are stored as given; `subscription_groups` is ignored).
fn apply_attributes(ws: &mut Workspace, user: usize, attributes: &Map<String, Value>) {
    let world = ws.world.clone();
    for (key, value) in attributes {
        if key == "external_id" || key == "subscription_groups" {
            continue;
        }
        if super::users::STANDARD_ATTRIBUTES.contains(&key.as_str()) {
            ws.users.set_field(&world, user, key, value.clone());
        } else {
            ws.users
                .delta_mut(user)
                .custom_attributes
                .insert(key.clone(), value.clone());
        }
    }
}

/// Whether `profile` matches a Connected Audience filter. Every branch is evaluated, so an
/// unsupported filter anywhere is an error even when another branch decides the result.
///
/// # Errors
/// A description of the first malformed or unsupported filter.
pub fn audience_matches(filter: &Value, profile: &Map<String, Value>) -> Result<bool, String> {
    let Value::Object(map) = filter else {
        return Err("a filter must be an object".into());
    };
    if map.len() != 1 {
        return Err("a filter must have exactly one key".into());
    }
    let Some((key, inner)) = map.iter().next() else {
        return Err("empty filter".into());
    };
    match key.as_str() {
        "AND" | "OR" => {
            let Value::Array(items) = inner else {
                return Err(format!("{key} must be an array"));
            };
            let results = items
                .iter()
                .map(|i| audience_matches(i, profile))
                .collect::<Result<Vec<bool>, String>>()?;
            Ok(if key == "AND" {
                results.iter().all(|b| *b)
            } else {
                results.iter().any(|b| *b)
            })
        }
        "NOT" => audience_matches(inner, profile).map(|b| !b),
        "custom_attribute" => {
            let name = inner
                .get("custom_attribute_name")
                .and_then(Value::as_str)
                .ok_or("custom_attribute_name is required")?;
            let comparison = inner
                .get("comparison")
                .and_then(Value::as_str)
                .ok_or("comparison is required")?;
            let actual = profile.get("custom_attributes").and_then(|c| c.get(name));
            compare(actual, comparison, inner.get("value"))
        }
        "email_subscription_status" | "push_subscription_status" => {
            let field = if key == "email_subscription_status" {
                "email_subscribe"
            } else {
                "push_subscribe"
            };
            let comparison = inner
                .get("comparison")
                .and_then(Value::as_str)
                .ok_or("comparison is required")?;
            let value = inner.get("value").and_then(Value::as_str).ok_or("value is required")?;
            let actual = profile.get(field).and_then(Value::as_str);
            match comparison {
                "is" => Ok(actual == Some(value)),
                "is_not" => Ok(actual != Some(value)),
                other => Err(format!("unsupported comparison {other}")),
            }
        }
        other => Err(format!("unsupported filter {other}")),
    }
}

fn compare(actual: Option<&Value>, comparison: &str, value: Option<&Value>) -> Result<bool, String> {
    let actual = actual.filter(|v| !v.is_null());
    let number = |v: Option<&Value>| v.and_then(Value::as_f64);
    let need = || value.ok_or_else(|| format!("{comparison} needs a value"));
    Ok(match comparison {
        "equals" => actual == Some(need()?),
        "not_equal" => actual != Some(need()?),
        "greater_than" => matches!((number(actual), number(Some(need()?))), (Some(a), Some(b)) if a > b),
        "less_than" => matches!((number(actual), number(Some(need()?))), (Some(a), Some(b)) if a < b),
        "greater_than_or_equal_to" => matches!((number(actual), number(Some(need()?))), (Some(a), Some(b)) if a >= b),
        "less_than_or_equal_to" => matches!((number(actual), number(Some(need()?))), (Some(a), Some(b)) if a <= b),
        "exists" => actual.is_some(),
        "does_not_exist" => actual.is_none(),
        "includes_value" => {
            let v = need()?;
            actual.and_then(Value::as_array).is_some_and(|items| items.contains(v))
        }
        "does_not_include_value" => {
            let v = need()?;
            !actual.and_then(Value::as_array).is_some_and(|items| items.contains(v))
        }
        other => return Err(format!("unsupported comparison {other}")),
    })
}

fn handle_schedule_update(state: &AppState, kind: Kind, body: &[u8]) -> Response {
    let result = parse_object(body).and_then(|body| {
        let mut ws = lock(state);
        let schedule_id = owned_schedule(&ws, kind, &body)?;
        let Some(Value::Object(schedule)) = body.get("schedule") else {
            return Err(ApiError::bad_request("schedule is required"));
        };
        let time = schedule_time(ws.now, schedule)?;
        sends::reschedule(&mut ws, &schedule_id, time);
        Ok(json!({}))
    });
    match result {
        Ok(fields) => created(fields),
        Err(error) => error.into_response(),
    }
}

fn handle_schedule_delete(state: &AppState, kind: Kind, body: &[u8]) -> Response {
    let result = parse_object(body).and_then(|body| {
        let mut ws = lock(state);
        let schedule_id = owned_schedule(&ws, kind, &body)?;
        if let Some(schedule) = ws.sends.schedule_mut(&schedule_id) {
            schedule.deleted = true;
        }
        Ok(json!({}))
    });
    match result {
        Ok(fields) => created(fields),
        Err(error) => error.into_response(),
    }
}

/// The `schedule_id` of an update/delete request, checked to exist and to belong to the endpoint's
/// family (and campaign/Canvas when given).
fn owned_schedule(ws: &Workspace, kind: Kind, body: &Map<String, Value>) -> Result<String, ApiError> {
    let Some(id) = body.get("schedule_id").and_then(Value::as_str) else {
        return Err(ApiError::bad_request("schedule_id is required"));
    };
    let invalid = || ApiError::bad_request("Invalid schedule_id");
    let schedule = ws.sends.schedule(id).ok_or_else(invalid)?;
    let matches = match (&schedule.plan.source, kind) {
        (Source::Messages { .. }, Kind::Messages) => true,
        (Source::Campaign { campaign_id }, Kind::Campaign) => body
            .get("campaign_id")
            .and_then(Value::as_str)
            .is_none_or(|c| c == campaign_id),
        (Source::Canvas { canvas_id }, Kind::Canvas) => body
            .get("canvas_id")
            .and_then(Value::as_str)
            .is_none_or(|c| c == canvas_id),
        _ => false,
    };
    if matches { Ok(id.to_owned()) } else { Err(invalid()) }
}

/// The latest instant a wall-clock time reaches anywhere (UTC−12), for tests of the "passed
/// everywhere" rule.
#[cfg(test)]
fn latest_instant(civil: jiff::civil::DateTime) -> Option<Timestamp> {
    civil
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp() + jiff::SignedDuration::from_hours(12))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap_or(Timestamp::UNIX_EPOCH)
    }

    const SCENARIO: &str = r#"
name = "unit"
seed = 3
customers = 12
start = "2026-01-05T00:00:00Z"

[conversion]
type = "purchase"
product_id = "sku"
value = { kind = "fixed", value = 10 }

[response]
open = { base = 0.0 }
click = { base = -1.0 }
convert = { base = -1.0 }
unsubscribe = { base = -6.0 }
organic = { base = -9.0 }

[[braze.campaigns]]
id = "c"
name = "C"
channels = ["email"]
"#;

    fn workspace() -> Workspace {
        let scenario = crate::world::Scenario::from_toml_str(SCENARIO, None).unwrap();
        Workspace::new(std::sync::Arc::new(crate::world::World::new(scenario).unwrap()))
    }

    #[test]
    fn recipient_properties_merge_over_request_ones_and_duplicates_collapse() {
        let mut ws = workspace();
        let (a, b) = (ws.world.external_id(0).to_owned(), ws.world.external_id(1).to_owned());
        let body = obj(json!({
            "campaign_id": "c",
            "trigger_properties": {"offer": "base", "season": "winter"},
            "recipients": [
                {"external_user_id": a, "trigger_properties": {"offer": "mine"}},
                {"external_user_id": b},
                {"external_user_id": a, "trigger_properties": {"offer": "later"}},
                {"external_user_id": "unknown"},
            ],
        }));
        let request = request_properties(Kind::Campaign, &body).unwrap();
        let targets = Audience::parse(Kind::Campaign, &body)
            .unwrap()
            .resolve(&mut ws, &request, None)
            .unwrap();
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].user, 0);
        assert_eq!(
            Value::Object(targets[0].properties.clone()),
            json!({"offer": "mine", "season": "winter"})
        );
        assert_eq!(
            Value::Object(targets[1].properties.clone()),
            json!({"offer": "base", "season": "winter"})
        );
    }

    proptest::proptest! {
        /// Whatever the listed users (with repeats), each is sent once, in order of first mention.
        #[test]
        fn listed_recipients_resolve_to_distinct_users_in_first_mention_order(picks in proptest::collection::vec(0usize..12, 1..50)) {
            let mut ws = workspace();
            let recipients: Vec<Value> =
                picks.iter().map(|i| json!({"external_user_id": ws.world.external_id(*i)})).collect();
            let body = obj(json!({"campaign_id": "c", "recipients": recipients}));
            let targets = Audience::parse(Kind::Campaign, &body).unwrap().resolve(&mut ws, &Map::new(), None).unwrap();
            let mut expected: Vec<usize> = Vec::new();
            for p in &picks {
                if !expected.contains(p) {
                    expected.push(*p);
                }
            }
            let users: Vec<usize> = targets.iter().map(|t| t.user).collect();
            proptest::prop_assert_eq!(users, expected);
        }
    }

    #[test]
    fn schedule_times_parse_and_refuse_the_past() {
        let now = t("2026-01-05T12:00:00Z");
        let at = schedule_time(now, &obj(json!({"time": "2026-01-05T13:00:00Z"})));
        assert_eq!(at.ok(), Some(ScheduleTime::At(t("2026-01-05T13:00:00Z"))));
        let naive = schedule_time(now, &obj(json!({"time": "2026-01-05T13:00:00"})));
        assert_eq!(naive.ok(), Some(ScheduleTime::At(t("2026-01-05T13:00:00Z"))));
        let past = schedule_time(now, &obj(json!({"time": "2026-01-05T11:00:00Z"})));
        assert_eq!(
            past.err().map(|e| e.message),
            Some("The schedule time has already passed".into())
        );
        let bad = schedule_time(now, &obj(json!({"time": "tomorrow"})));
        assert!(
            bad.is_err_and(|e| e.status == StatusCode::BAD_REQUEST && e.message.starts_with("Invalid schedule time"))
        );
        // 09:00 local has passed in UTC+X zones but not in the Americas yet: accepted.
        let local = schedule_time(now, &obj(json!({"time": "2026-01-05T09:00:00", "in_local_time": true})));
        assert!(matches!(local, Ok(ScheduleTime::Local(_))));
        // 23:00 on the 4th has passed everywhere (latest zone reaches it at 11:00Z on the 5th).
        let gone = schedule_time(now, &obj(json!({"time": "2026-01-04T23:00:00", "in_local_time": true})));
        assert!(gone.is_err_and(|e| e.message.contains("every time zone")));
        let civil = parse_local("2026-01-04T23:00:00Z");
        assert_eq!(civil.and_then(latest_instant), Some(t("2026-01-05T11:00:00Z")));
        let flag = schedule_time(now, &obj(json!({"time": "2026-01-06", "at_optimal_time": "yes"})));
        assert!(flag.is_err());
        let noon = jiff::civil::date(2026, 1, 6).at(12, 0, 0, 0);
        assert_eq!(
            schedule_time(now, &obj(json!({"time": "2026-01-06", "at_optimal_time": true}))).ok(),
            Some(ScheduleTime::Local(noon))
        );
        let midnight = jiff::civil::date(2026, 1, 6).at(0, 0, 0, 0);
        assert_eq!(
            schedule_time(now, &obj(json!({"time": "2026-01-06", "in_local_time": true}))).ok(),
            Some(ScheduleTime::Local(midnight))
        );
    }

    #[test]
    fn audiences_filter_profiles() {
        let profile = obj(json!({
            "email_subscribe": "opted_in",
            "custom_attributes": {"plan": "gold", "visits": 4, "tags": ["a", "b"]},
        }));
        let check = |filter: Value| audience_matches(&filter, &profile);
        assert_eq!(
            check(
                json!({"custom_attribute": {"custom_attribute_name": "plan", "comparison": "equals", "value": "gold"}})
            ),
            Ok(true)
        );
        assert_eq!(
            check(
                json!({"custom_attribute": {"custom_attribute_name": "visits", "comparison": "greater_than", "value": 4}})
            ),
            Ok(false)
        );
        assert_eq!(
            check(
                json!({"custom_attribute": {"custom_attribute_name": "tags", "comparison": "includes_value", "value": "b"}})
            ),
            Ok(true)
        );
        assert_eq!(
            check(json!({"custom_attribute": {"custom_attribute_name": "nope", "comparison": "does_not_exist"}})),
            Ok(true)
        );
        assert_eq!(
            check(json!({"AND": [
                {"email_subscription_status": {"comparison": "is", "value": "opted_in"}},
                {"NOT": {"push_subscription_status": {"comparison": "is", "value": "opted_in"}}},
            ]})),
            Ok(true)
        );
        assert_eq!(check(json!({"OR": []})), Ok(false));
        assert!(check(json!({"OR": [{"custom_attribute": {"custom_attribute_name": "plan", "comparison": "equals", "value": "gold"}}, {"last_used_app": {}}]})).is_err());
        assert!(check(json!({"custom_attribute": {"custom_attribute_name": "plan", "comparison": "matches_regex", "value": "g.*"}})).is_err());
        assert!(check(json!("AND")).is_err());
    }

    #[test]
    fn recipients_validate_identifiers_and_existing_only() {
        let ok = parse_recipient(
            Kind::Campaign,
            &json!({"external_user_id": "u", "trigger_properties": {"a": 1}}),
        );
        assert!(ok.is_ok_and(|r| r.existing_only && r.properties["a"] == 1));
        let two = parse_recipient(Kind::Campaign, &json!({"external_user_id": "u", "braze_id": "b"}));
        assert!(two.is_err_and(|e| e.message.contains("exactly one")));
        let none = parse_recipient(Kind::Campaign, &json!({"trigger_properties": {}}));
        assert!(none.is_err());
        let alias = parse_recipient(
            Kind::Campaign,
            &json!({"user_alias": {"alias_name": "a", "alias_label": "l"}, "send_to_existing_only": false, "attributes": {}}),
        );
        assert!(alias.is_err_and(|e| e.message.contains("user_alias")));
        let no_attrs = parse_recipient(
            Kind::Campaign,
            &json!({"external_user_id": "u", "send_to_existing_only": false}),
        );
        assert!(no_attrs.is_err_and(|e| e.message.contains("attributes")));
        // Canvas: `context` wins over the legacy name.
        let canvas = parse_recipient(
            Kind::Canvas,
            &json!({"external_user_id": "u", "canvas_entry_properties": {"k": 1, "j": 1}, "context": {"k": 2}}),
        );
        assert!(canvas.is_ok_and(|r| r.properties["k"] == 2 && r.properties["j"] == 1));
        let big = "x".repeat(MAX_PROPERTIES_BYTES);
        let too_big = parse_recipient(
            Kind::Campaign,
            &json!({"external_user_id": "u", "trigger_properties": {"k": big}}),
        );
        assert!(too_big.is_err_and(|e| e.message.contains("50KB")));
    }
}
