//! Catalog reads and analytics: `GET /campaigns/list|details|data_series`,
//! `/canvas/list|details|data_series`, `/segments/list|details|data_series`, `/sends/data_series`,
//! and `POST /sends/id/create`.
//!
//! Lists page by number, [`PAGE_SIZE`] items a page in creation order (`sort_direction=desc` reverses
//! it), and end with the first short (possibly empty) page. Unknown ids answer 400 with Braze's
//! "Invalid ... ID" wording (Braze keeps 404 for unknown paths). Analytics come from
//! [`crate::state::analytics`], i.e. from the event log.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::AppState;
use super::envelope::{ApiError, success};
use super::messaging::{lock, parse_object};
use crate::state::Workspace;
use crate::state::analytics;
use crate::state::catalog::{
    SEND_IDS_PER_DAY, Variation, braze_channel_name, format_time, parse_time, validate_send_id,
};

/// Items per list page: Braze's documented limit, kept here independently of `offerloop_braze::limits` (the simulator checks the
/// client's contract instead of sharing its mistakes); `tests/e2e/braze_contract.rs` holds the two equal.
pub const PAGE_SIZE: usize = 100;

/// `length` range of campaign, segment and send series (days).
pub const MAX_LENGTH: u32 = 100;

/// `length` range of Canvas series (days).
pub const MAX_CANVAS_LENGTH: u32 = 14;

/// This module's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/campaigns/list", get(campaigns_list))
        .route("/campaigns/details", get(campaigns_details))
        .route("/campaigns/data_series", get(campaigns_data_series))
        .route("/canvas/list", get(canvas_list))
        .route("/canvas/details", get(canvas_details))
        .route("/canvas/data_series", get(canvas_data_series))
        .route("/segments/list", get(segments_list))
        .route("/segments/details", get(segments_details))
        .route("/segments/data_series", get(segments_data_series))
        .route("/sends/data_series", get(sends_data_series))
        .route("/sends/id/create", post(sends_id_create))
}

type Params = Query<HashMap<String, String>>;

fn respond(result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(fields) => success(fields).into_response(),
        Err(error) => error.into_response(),
    }
}

/// The list parameters shared by the three list endpoints.
#[derive(Debug)]
struct ListParams {
    page: usize,
    descending: bool,
    include_archived: bool,
    edited_after: Option<Timestamp>,
}

fn list_params(params: &HashMap<String, String>) -> Result<ListParams, ApiError> {
    let page = match params.get("page") {
        None => 0,
        Some(text) => text
            .trim()
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request("page must be a non-negative integer"))?,
    };
    let descending = match params.get("sort_direction").map(|s| s.to_ascii_lowercase()) {
        None => false,
        Some(s) if s == "asc" => false,
        Some(s) if s == "desc" => true,
        Some(_) => return Err(ApiError::bad_request("sort_direction must be asc or desc")),
    };
    let include_archived = bool_param(params, "include_archived")?.unwrap_or(false);
    let edited_after = match params.get("last_edit.time[gt]") {
        None => None,
        Some(text) => Some(parse_time(text).ok_or_else(|| ApiError::bad_request("last_edit.time[gt] must be a time"))?),
    };
    Ok(ListParams {
        page,
        descending,
        include_archived,
        edited_after,
    })
}

fn bool_param(params: &HashMap<String, String>, key: &str) -> Result<Option<bool>, ApiError> {
    match params.get(key).map(|s| s.to_ascii_lowercase()) {
        None => Ok(None),
        Some(s) if s == "true" => Ok(Some(true)),
        Some(s) if s == "false" => Ok(Some(false)),
        Some(_) => Err(ApiError::bad_request(format!("{key} must be true or false"))),
    }
}

/// Page `p.page` of `items` (already in creation order and filtered), in the requested direction.
fn page_of<T>(items: Vec<T>, p: &ListParams) -> Vec<T> {
    let mut items = items;
    if p.descending {
        items.reverse();
    }
    items
        .into_iter()
        .skip(p.page.saturating_mul(PAGE_SIZE))
        .take(PAGE_SIZE)
        .collect()
}

fn required<'a>(params: &'a HashMap<String, String>, key: &str, invalid: &str) -> Result<&'a str, ApiError> {
    params
        .get(key)
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request(invalid))
}

async fn campaigns_list(State(state): State<AppState>, Query(params): Params) -> Response {
    respond(list_params(&params).map(|p| {
        let ws = lock(&state);
        let items: Vec<Value> = ws
            .catalog
            .campaigns
            .iter()
            .filter(|c| p.include_archived || !c.spec.archived)
            .filter(|c| p.edited_after.is_none_or(|t| c.updated_at > t))
            .map(|c| {
                json!({
                    "id": c.spec.id, "last_edited": format_time(c.updated_at), "name": c.spec.name,
                    "is_api_campaign": c.spec.api_triggered, "tags": c.spec.tags,
                })
            })
            .collect();
        json!({ "campaigns": page_of(items, &p) })
    }))
}

async fn canvas_list(State(state): State<AppState>, Query(params): Params) -> Response {
    respond(list_params(&params).map(|p| {
        let ws = lock(&state);
        let items: Vec<Value> = ws
            .catalog
            .canvases
            .iter()
            .filter(|c| p.include_archived || !c.spec.archived)
            .filter(|c| p.edited_after.is_none_or(|t| c.updated_at > t))
            .map(|c| json!({ "id": c.spec.id, "last_edited": format_time(c.updated_at), "name": c.spec.name, "tags": c.spec.tags }))
            .collect();
        json!({ "canvases": page_of(items, &p) })
    }))
}

async fn segments_list(State(state): State<AppState>, Query(params): Params) -> Response {
    respond(list_params(&params).map(|p| {
        let ws = lock(&state);
        let items: Vec<Value> = ws
            .catalog
            .segments
            .iter()
            .map(|s| json!({ "id": s.spec.id, "name": s.spec.name, "analytics_tracking_enabled": true, "tags": s.spec.tags }))
            .collect();
        json!({ "segments": page_of(items, &p) })
    }))
}

/// A variation as a `messages` entry of `/campaigns/details` or a Canvas step.
fn message_object(v: &Variation) -> Value {
    let channel = braze_channel_name(v.channel);
    let mut map = Map::new();
    map.insert("channel".into(), json!(channel));
    map.insert("name".into(), json!(v.name));
    match v.channel {
        crate::world::Channel::Email => {
            map.insert("subject".into(), json!(v.subject.clone().unwrap_or_default()));
            map.insert("body".into(), json!(v.body));
            map.insert("from".into(), json!("Simulated <sim@offerloop.invalid>"));
        }
        crate::world::Channel::Push => {
            map.insert("alert".into(), json!(v.body));
            map.insert("title".into(), json!(v.subject.clone().unwrap_or_default()));
            map.insert("extras".into(), json!({}));
        }
        crate::world::Channel::Webhook => {
            map.insert("url".into(), json!("https://sim.offerloop.invalid/webhook"));
            map.insert("body".into(), json!(v.body));
            map.insert("method".into(), json!("POST"));
        }
        _ => {
            map.insert("body".into(), json!(v.body));
        }
    }
    Value::Object(map)
}

/// A control variant's `messages` entry, as Braze gives it: `{channel, type: "control"}`, with the
/// channel the control is for (the campaign's first channel; the simulator has one control per campaign).
fn control_object(channel: Option<&str>) -> Value {
    let mut map = Map::new();
    if let Some(channel) = channel {
        map.insert("channel".into(), json!(channel));
    }
    map.insert("type".into(), json!("control"));
    Value::Object(map)
}

/// `conversion_behaviors` of a campaign or Canvas (3-day windows).
fn conversion_behaviors(events: &[String]) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            if e == "purchase" {
                json!({ "type": "Makes Any Purchase", "window": 259_200 })
            } else {
                json!({ "type": "Performs Custom Event", "window": 259_200, "custom_event_name": e })
            }
        })
        .collect()
}

/// First and last time a message of the campaign (or Canvas) was sent, from the event log.
fn first_last(ws: &Workspace, matches: impl Fn(&crate::state::MessageRef) -> bool) -> (Option<String>, Option<String>) {
    let mut times = ws
        .events
        .iter()
        .filter(|e| e.kind == crate::state::EventKind::Send && e.message.as_deref().is_some_and(&matches))
        .map(|e| e.time);
    let first = times.next();
    let last = times.last().or(first);
    (first.map(format_time), last.map(format_time))
}

async fn campaigns_details(State(state): State<AppState>, Query(params): Params) -> Response {
    respond((|| {
        let id = required(&params, "campaign_id", "Invalid Campaign ID")?;
        let ws = lock(&state);
        let c = ws
            .catalog
            .campaign(id)
            .ok_or_else(|| ApiError::bad_request("Invalid Campaign ID"))?;
        let mut messages = Map::new();
        for v in &c.variations {
            messages.insert(v.id.clone(), message_object(v));
        }
        let channels: Vec<&str> = c.channels().into_iter().map(braze_channel_name).collect();
        if let Some(control) = &c.control_id {
            messages.insert(control.clone(), control_object(channels.first().copied()));
        }
        let (first_sent, last_sent) = first_last(&ws, |m| m.campaign_id.as_deref() == Some(id));
        Ok(json!({
            "created_at": format_time(c.created_at),
            "updated_at": format_time(c.updated_at),
            "archived": c.spec.archived,
            "draft": c.spec.draft,
            "enabled": !c.spec.paused && !c.spec.archived && !c.spec.draft,
            "has_post_launch_draft": false,
            "name": c.spec.name,
            "description": "",
            "schedule_type": if c.spec.api_triggered { "api_triggered" } else { "time_based" },
            "channels": channels,
            "first_sent": first_sent,
            "last_sent": last_sent,
            "tags": c.spec.tags,
            "teams": [],
            "messages": messages,
            "conversion_behaviors": conversion_behaviors(&c.spec.conversion_events),
        }))
    })())
}

async fn canvas_details(State(state): State<AppState>, Query(params): Params) -> Response {
    respond((|| {
        let id = required(&params, "canvas_id", "Invalid Canvas ID")?;
        let ws = lock(&state);
        let c = ws
            .catalog
            .canvas(id)
            .ok_or_else(|| ApiError::bad_request("Invalid Canvas ID"))?;
        let steps: Vec<Value> = c
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let next: Vec<&str> = c.steps.get(i + 1).map(|n| vec![n.id.as_str()]).unwrap_or_default();
                let mut messages = Map::new();
                let mut channels: Vec<&str> = Vec::new();
                for v in &s.variations {
                    messages.insert(v.id.clone(), message_object(v));
                    let name = braze_channel_name(v.channel);
                    if !channels.contains(&name) {
                        channels.push(name);
                    }
                }
                json!({
                    "name": s.name, "type": "message", "id": s.id, "next_step_ids": next,
                    "channels": channels, "messages": messages,
                })
            })
            .collect();
        let first: Vec<&str> = c.steps.first().map(|s| vec![s.id.as_str()]).unwrap_or_default();
        let channels: Vec<&str> = c.channels().into_iter().map(braze_channel_name).collect();
        let (first_entry, last_entry) = first_last(&ws, |m| m.canvas_id.as_deref() == Some(id));
        Ok(json!({
            "created_at": format_time(c.created_at),
            "updated_at": format_time(c.updated_at),
            "name": c.spec.name,
            "description": "",
            "archived": c.spec.archived,
            "draft": false,
            "enabled": c.spec.enabled,
            "has_post_launch_draft": false,
            "schedule_type": if c.spec.api_triggered { "api_triggered" } else { "time_based" },
            "first_entry": first_entry,
            "last_entry": last_entry,
            "channels": channels,
            "variants": [{ "name": "Variant 1", "id": c.variant_id, "first_step_ids": first, "first_step_id": first.first() }],
            "tags": c.spec.tags,
            "teams": [],
            "steps": steps,
            "conversion_behaviors": conversion_behaviors(&c.spec.conversion_events),
        }))
    })())
}

async fn segments_details(State(state): State<AppState>, Query(params): Params) -> Response {
    respond((|| {
        let id = required(&params, "segment_id", "Invalid Segment ID")?;
        let ws = lock(&state);
        let s = ws
            .catalog
            .segment(id)
            .ok_or_else(|| ApiError::bad_request("Invalid Segment ID"))?;
        Ok(json!({
            "created_at": format_time(s.created_at),
            "updated_at": format_time(s.created_at),
            "name": s.spec.name,
            "description": s.description(),
            "text_description": s.description(),
            "tags": s.spec.tags,
            "teams": [],
            "analytics_tracking_enabled": true,
        }))
    })())
}

/// `length` in `1..=max`.
fn length_param(params: &HashMap<String, String>, max: u32) -> Result<Option<u32>, ApiError> {
    let Some(text) = params.get("length") else {
        return Ok(None);
    };
    match text.trim().parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
        _ => Err(ApiError::bad_request(format!(
            "length must be an integer between 1 and {max}"
        ))),
    }
}

/// `ending_at` (default now).
fn ending_at(params: &HashMap<String, String>, now: Timestamp) -> Result<Timestamp, ApiError> {
    match params.get("ending_at") {
        None => Ok(now),
        Some(text) => parse_time(text).ok_or_else(|| ApiError::bad_request("ending_at must be an ISO-8601 time")),
    }
}

async fn campaigns_data_series(State(state): State<AppState>, Query(params): Params) -> Response {
    respond((|| {
        let id = required(&params, "campaign_id", "Invalid Campaign ID")?;
        let length = length_param(&params, MAX_LENGTH)?.ok_or_else(|| ApiError::bad_request("length is required"))?;
        let ws = lock(&state);
        ws.catalog
            .campaign(id)
            .ok_or_else(|| ApiError::bad_request("Invalid Campaign ID"))?;
        let days = analytics::days_ending(ending_at(&params, ws.now)?, length);
        Ok(json!({ "data": analytics::campaign_series(&ws, id, &days) }))
    })())
}

async fn sends_data_series(State(state): State<AppState>, Query(params): Params) -> Response {
    respond((|| {
        let campaign_id = required(&params, "campaign_id", "Invalid Campaign ID")?;
        let send_id = required(&params, "send_id", "Invalid send_id")?;
        let length = length_param(&params, MAX_LENGTH)?.ok_or_else(|| ApiError::bad_request("length is required"))?;
        let ws = lock(&state);
        ws.catalog
            .campaign(campaign_id)
            .ok_or_else(|| ApiError::bad_request("Invalid Campaign ID"))?;
        if !ws.catalog.has_send_id(campaign_id, send_id) {
            return Err(ApiError::bad_request("Invalid send_id"));
        }
        let days = analytics::days_ending(ending_at(&params, ws.now)?, length);
        Ok(json!({ "data": analytics::send_series(&ws, campaign_id, send_id, &days, ws.now) }))
    })())
}

async fn canvas_data_series(State(state): State<AppState>, Query(params): Params) -> Response {
    respond((|| {
        let id = required(&params, "canvas_id", "Invalid Canvas ID")?;
        let length = length_param(&params, MAX_CANVAS_LENGTH)?;
        let variants = bool_param(&params, "include_variant_breakdown")?.unwrap_or(false);
        let steps = bool_param(&params, "include_step_breakdown")?.unwrap_or(false);
        bool_param(&params, "include_deleted_step_data")?;
        let ws = lock(&state);
        let canvas = ws
            .catalog
            .canvas(id)
            .ok_or_else(|| ApiError::bad_request("Invalid Canvas ID"))?;
        let end = ending_at(&params, ws.now)?;
        let days = match (length, params.get("starting_at")) {
            (Some(length), _) => analytics::days_ending(end, length),
            (None, Some(start)) => {
                let start =
                    parse_time(start).ok_or_else(|| ApiError::bad_request("starting_at must be an ISO-8601 time"))?;
                if start > end {
                    return Err(ApiError::bad_request("starting_at must be before ending_at"));
                }
                analytics::days_between(start, end)
            }
            (None, None) => return Err(ApiError::bad_request("Either length or starting_at is required")),
        };
        let stats = analytics::canvas_series(&ws, id, &days, variants, steps);
        Ok(json!({ "data": { "name": canvas.spec.name, "stats": stats } }))
    })())
}

async fn segments_data_series(State(state): State<AppState>, Query(params): Params) -> Response {
    respond((|| {
        let id = required(&params, "segment_id", "Invalid Segment ID")?;
        let length = length_param(&params, MAX_LENGTH)?.ok_or_else(|| ApiError::bad_request("length is required"))?;
        let mut ws = lock(&state);
        ws.catalog
            .segment(id)
            .ok_or_else(|| ApiError::bad_request("Invalid Segment ID"))?;
        let days = analytics::days_ending(ending_at(&params, ws.now)?, length);
        Ok(json!({ "data": analytics::segment_series(&mut ws, id, &days) }))
    })())
}

async fn sends_id_create(State(state): State<AppState>, body: Bytes) -> Response {
    let result = parse_object(&body).and_then(|body| {
        let mut ws = lock(&state);
        let campaign_id = body
            .get("campaign_id")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request("Invalid Campaign ID"))?;
        ws.catalog
            .campaign(campaign_id)
            .ok_or_else(|| ApiError::bad_request("Invalid Campaign ID"))?;
        let send_id = match body.get("send_id") {
            None | Some(Value::Null) => ws.sends.new_send_id(),
            Some(Value::String(id)) => {
                validate_send_id(id).map_err(ApiError::bad_request)?;
                id.clone()
            }
            Some(_) => return Err(ApiError::bad_request("send_id must be a string")),
        };
        let now = ws.now;
        if !ws.catalog.has_send_id(campaign_id, &send_id) {
            if ws.catalog.send_ids_created_on_day_of(now) >= SEND_IDS_PER_DAY {
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "The daily limit of 100 send ids was exceeded",
                ));
            }
            ws.catalog.add_send_id(campaign_id, &send_id, now, true);
        }
        Ok(json!({ "send_id": send_id }))
    });
    match result {
        Ok(fields) => (StatusCode::CREATED, success(fields)).into_response(),
        Err(error) => error.into_response(),
    }
}
