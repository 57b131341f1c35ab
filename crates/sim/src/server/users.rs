//! User routes: `POST /users/track` (braze-api.md §7), `POST /users/export/ids` (§5) and
//! `POST /users/export/segment` (§6), with the validation rules and limits of §16.
//!
//! `/users/track` semantics: objects are validated one by one; a bad object becomes an entry of
//! `errors[]` (`{"type", "input_array", "index"}`) and the others are applied (201, partial success).
//! Only a malformed body or an array over [`MAX_TRACK_OBJECTS`] is fatal (400, nothing applied).
//! Unknown `external_id`s create users unless `_update_existing_only` is true; so does an object
//! identified by `email` alone whose address no profile has: it creates an email-only profile (no
//! `external_id`), which later lookups by email find. Objects identified by `user_alias`, `braze_id`
//! or `phone` only update existing users (unknown: skipped, as Braze does silently). Tracked events
//! and purchases are applied at once, with times in the future clamped to the simulated now.
//!
//! Simplifications: an attributes object with one invalid attribute is refused whole (Braze drops
//! only the bad attribute, or every nested custom attribute update of the request); user aliases
//! are not modelled (alias objects update nobody, alias lookups find nobody); `device_id` lookups
//! find nobody; the first lookup by `email`/`phone`/`braze_id` renders every profile once to build
//! an index (seconds for a million users).

use std::collections::BTreeSet;
use std::time::Duration;

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
use crate::state::exports::{ExportJob, ExportStatus, filter_fields};

/// Most objects per `/users/track` array: Braze's documented limit, kept here independently of `offerloop_braze::limits` (the simulator checks the
/// client's contract instead of sharing its mistakes); `tests/e2e/braze_contract.rs` holds the two equal.
pub const MAX_TRACK_OBJECTS: usize = 75;
/// Most `external_ids` + `user_aliases` per `/users/export/ids` request: Braze's documented limit, kept here independently of `offerloop_braze::limits` (the simulator checks the
/// client's contract instead of sharing its mistakes); `tests/e2e/braze_contract.rs` holds the two equal.
pub const MAX_EXPORT_IDS: usize = 50;
/// Most `custom_attributes_to_export` of a segment export.
pub const MAX_CUSTOM_ATTRIBUTES_TO_EXPORT: usize = 500;
/// Most units in one purchase object.
pub const MAX_PURCHASE_QUANTITY: u64 = 100;
/// Longest event/purchase property key and string value, and product id.
pub const MAX_PROPERTY_LEN: usize = 255;
/// Largest event `properties` payload (bytes of JSON); purchases allow half.
pub const MAX_EVENT_PROPERTIES_BYTES: usize = 100 * 1024;
/// Most elements of an array custom attribute.
pub const MAX_ARRAY_ATTRIBUTE_LEN: usize = 100;

/// Valid `fields_to_export` names (braze-api.md §5).
pub const EXPORT_FIELDS: &[&str] = &[
    "apps",
    "attributed_campaign",
    "attributed_source",
    "attributed_adgroup",
    "attributed_ad",
    "braze_id",
    "campaigns_received",
    "canvases_received",
    "cards_clicked",
    "country",
    "created_at",
    "custom_attributes",
    "custom_events",
    "devices",
    "dob",
    "email",
    "email_subscribe",
    "external_id",
    "first_name",
    "gender",
    "home_city",
    "language",
    "last_coordinates",
    "last_name",
    "phone",
    "purchases",
    "push_subscribe",
    "push_tokens",
    "random_bucket",
    "time_zone",
    "total_revenue",
    "uninstalled_at",
    "user_aliases",
];

/// Standard profile fields an attributes object may set (all others are custom attributes); also
/// what a send's `attributes` (with `send_to_existing_only: false`) may set.
pub(crate) const STANDARD_ATTRIBUTES: &[&str] = &[
    "first_name",
    "last_name",
    "email",
    "phone",
    "dob",
    "country",
    "language",
    "home_city",
    "gender",
    "time_zone",
    "email_subscribe",
    "push_subscribe",
    "subscription_groups",
    "push_tokens",
    "current_location",
    "date_of_first_session",
    "date_of_last_session",
    "email_open_tracking_disabled",
    "email_click_tracking_disabled",
    "marked_email_as_spam_at",
    "image_url",
    "bio",
    "facebook",
    "twitter",
];

/// `external_id`s Braze refuses as placeholders.
const BLOCKED_EXTERNAL_IDS: &[&str] = &[
    "undefined",
    "null",
    "nil",
    "none",
    "n/a",
    "na",
    "-1",
    "0",
    "unknown",
    "[object object]",
];

/// This module's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users/track", post(track))
        .route("/users/export/ids", post(export_ids))
        .route("/users/export/segment", post(export_segment))
}

/// Parses a JSON object body.
fn parse_body(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request("Invalid request: the body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!("Invalid JSON: {e}"))),
    }
}

fn item_error(kind: impl Into<String>, array: &str, index: usize) -> Value {
    json!({ "type": kind.into(), "input_array": array, "index": index })
}

/// How an object names its user.
enum Identifier {
    External(String),
    Alias,
    Other(&'static str, String),
}

/// The identifier of a `/users/track` object. `email`/`phone` identify only when none of
/// `external_id`, `user_alias`, `braze_id` is present (then `email` wins over `phone`).
fn identifier(obj: &Map<String, Value>) -> Result<Identifier, String> {
    let explicit: Vec<&str> = ["external_id", "user_alias", "braze_id"]
        .into_iter()
        .filter(|k| obj.get(*k).is_some_and(|v| !v.is_null()))
        .collect();
    match explicit.as_slice() {
        [] => {}
        [one] => {
            return match *one {
                "external_id" => match obj.get("external_id") {
                    Some(Value::String(s)) if !s.is_empty() => {
                        if BLOCKED_EXTERNAL_IDS.contains(&s.to_ascii_lowercase().as_str()) {
                            Err("provided external_id is blacklisted and disallowed".into())
                        } else {
                            Ok(Identifier::External(s.clone()))
                        }
                    }
                    _ => Err("'external_id' must be a non-empty string".into()),
                },
                "user_alias" => match obj.get("user_alias") {
                    Some(Value::Object(a))
                        if a.get("alias_name").is_some_and(Value::is_string)
                            && a.get("alias_label").is_some_and(Value::is_string) =>
                    {
                        Ok(Identifier::Alias)
                    }
                    _ => Err("'user_alias' must be an object with string 'alias_name' and 'alias_label'".into()),
                },
                _ => match obj.get("braze_id") {
                    Some(Value::String(s)) if !s.is_empty() => Ok(Identifier::Other("braze_id", s.clone())),
                    _ => Err("'braze_id' must be a non-empty string".into()),
                },
            };
        }
        _ => {
            return Err(
                "only one of 'external_id', 'user_alias', 'braze_id', 'email' or 'phone' may identify a user".into(),
            );
        }
    }
    for key in ["email", "phone"] {
        if let Some(v) = obj.get(key).filter(|v| !v.is_null()) {
            return match v {
                Value::String(s) if !s.is_empty() => Ok(Identifier::Other(key, s.clone())),
                _ => Err(format!("'{key}' must be a non-empty string")),
            };
        }
    }
    Err("'external_id' or 'braze_id' or 'user_alias' or 'email' or 'phone' is required".into())
}

/// The user an object names: existing, created (unknown `external_id` or `email` unless
/// `_update_existing_only`), or none (skipped silently).
fn resolve(
    ws: &mut Workspace,
    id: &Identifier,
    obj: &Map<String, Value>,
    default_update_existing_only: bool,
) -> Result<Option<usize>, String> {
    let update_existing_only = match obj.get("_update_existing_only") {
        None | Some(Value::Null) => default_update_existing_only,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("'_update_existing_only' must be a boolean".into()),
    };
    Ok(match id {
        Identifier::External(external_id) => match ws.users.index_of(&ws.world, external_id) {
            Some(i) => Some(i),
            None if update_existing_only => None,
            None => {
                let now = ws.now;
                let world = ws.world.clone();
                Some(ws.users.create(&world, external_id, now))
            }
        },
        Identifier::Alias => None,
        Identifier::Other(field, value) => {
            let now = ws.now;
            let world = ws.world.clone();
            match ws.users.find_by(&world, field, value) {
                Some(i) => Some(i),
                // Braze creates an email-only profile for an email no profile has.
                None if *field == "email" && !update_existing_only => {
                    Some(ws.users.create_email_only(&world, value, now))
                }
                None => None,
            }
        }
    })
}

/// Parses a required ISO-8601 `time`, clamped to `now` when in the future.
fn event_time(obj: &Map<String, Value>, now: Timestamp) -> Result<Timestamp, String> {
    let text = match obj.get("time") {
        Some(Value::String(s)) => s,
        None | Some(Value::Null) => return Err("'time' is required".into()),
        Some(_) => return Err("'time' must be an ISO-8601 string".into()),
    };
    let at = parse_time(text).ok_or_else(|| format!("'time' is not a valid ISO-8601 time: {text}"))?;
    Ok(at.min(now))
}

/// RFC 3339 / ISO-8601 with an offset, or a civil date-time taken as UTC, or a date (midnight UTC).
fn parse_time(text: &str) -> Option<Timestamp> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Some(t);
    }
    if let Ok(dt) = text.parse::<jiff::civil::DateTime>() {
        return jiff::tz::TimeZone::UTC.to_timestamp(dt).ok();
    }
    text.parse::<jiff::civil::Date>().ok().and_then(|d| {
        jiff::tz::TimeZone::UTC
            .to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
            .ok()
    })
}

/// Validates event/purchase `properties`.
fn check_properties(obj: &Map<String, Value>, max_bytes: usize) -> Result<Map<String, Value>, String> {
    let props = match obj.get("properties") {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::Object(p)) => p,
        Some(_) => return Err("'properties' must be an object".into()),
    };
    for (key, value) in props {
        if key.is_empty() || key.len() > MAX_PROPERTY_LEN {
            return Err(format!("property keys must be 1..={MAX_PROPERTY_LEN} characters"));
        }
        if key.starts_with('$') {
            return Err(format!("property key '{key}' must not start with '$'"));
        }
        if key == "time" || key == "event_name" {
            return Err(format!("'{key}' is a reserved property key"));
        }
        if let Value::String(s) = value
            && s.chars().count() > MAX_PROPERTY_LEN
        {
            return Err(format!("property '{key}' is longer than {MAX_PROPERTY_LEN} characters"));
        }
    }
    let size = serde_json::to_vec(props).map_or(0, |v| v.len());
    if size > max_bytes {
        return Err(format!("'properties' is larger than {max_bytes} bytes"));
    }
    Ok(props.clone())
}

/// One validated attribute change.
enum AttrChange {
    Standard(String, Value),
    Custom(String, CustomOp),
}

enum CustomOp {
    Set(Value),
    Inc(f64),
    Add(Vec<Value>),
    Remove(Vec<Value>),
}

const ONE_OF_SUBSCRIBE: [&str; 3] = ["opted_in", "subscribed", "unsubscribed"];

/// Validates a standard attribute and returns (export field name, value).
fn standard_attribute(key: &str, value: &Value) -> Result<(String, Value), String> {
    let bad = |what: &str| Err(format!("'{key}' {what}"));
    let out = match key {
        "email_subscribe" | "push_subscribe" => match value {
            Value::String(s) if ONE_OF_SUBSCRIBE.contains(&s.as_str()) => value.clone(),
            _ => return bad("must be one of \"opted_in\", \"subscribed\", \"unsubscribed\""),
        },
        "gender" => match value {
            Value::Null => Value::Null,
            Value::String(s) if ["M", "F", "O", "N", "P"].contains(&s.to_ascii_uppercase().as_str()) => {
                json!(s.to_ascii_uppercase())
            }
            _ => return bad("must be one of M, F, O, N, P or null"),
        },
        "dob" => match value {
            Value::Null => Value::Null,
            Value::String(s) if s.parse::<jiff::civil::Date>().is_ok() => value.clone(),
            _ => return bad("must be a date \"YYYY-MM-DD\""),
        },
        // Unmappable countries and unknown time zones are stored as null, as Braze does.
        "country" => match value {
            Value::String(s) if s.len() == 2 && s.chars().all(|c| c.is_ascii_alphabetic()) => {
                json!(s.to_ascii_uppercase())
            }
            _ => Value::Null,
        },
        "time_zone" => match value {
            Value::String(s) if jiff::tz::TimeZone::get(s).is_ok() => value.clone(),
            _ => Value::Null,
        },
        "current_location" => match value {
            Value::Object(loc) => match (
                loc.get("longitude").and_then(Value::as_f64),
                loc.get("latitude").and_then(Value::as_f64),
            ) {
                (Some(lon), Some(lat)) if (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat) => {
                    return Ok(("last_coordinates".into(), json!([lon, lat])));
                }
                _ => return bad("must be {\"longitude\": -180..180, \"latitude\": -90..90}"),
            },
            _ => return bad("must be an object"),
        },
        "push_tokens" | "subscription_groups" => match value {
            Value::Array(_) | Value::Null => value.clone(),
            _ => return bad("must be an array"),
        },
        "email_open_tracking_disabled" | "email_click_tracking_disabled" => match value {
            Value::Bool(_) | Value::Null => value.clone(),
            _ => return bad("must be a boolean"),
        },
        _ => match value {
            Value::String(_) | Value::Null => value.clone(),
            _ => return bad("must be a string or null"),
        },
    };
    Ok((key.to_owned(), out))
}

/// Validates a custom attribute.
fn custom_attribute(key: &str, value: &Value) -> Result<CustomOp, String> {
    if key.is_empty() || key.len() > MAX_PROPERTY_LEN {
        return Err(format!(
            "custom attribute keys must be 1..={MAX_PROPERTY_LEN} characters"
        ));
    }
    if key.starts_with('$') {
        return Err(format!("custom attribute key '{key}' must not start with '$'"));
    }
    match value {
        Value::Object(ops) if ops.len() == 1 && ops.contains_key("inc") => match ops.get("inc").and_then(Value::as_f64)
        {
            Some(n) if ops.get("inc").is_some_and(|v| v.is_i64() || v.is_u64()) => Ok(CustomOp::Inc(n)),
            _ => Err(format!("'{key}': 'inc' must be an integer")),
        },
        Value::Object(ops) if ops.len() == 1 && (ops.contains_key("add") || ops.contains_key("remove")) => {
            let (op, list) = ops
                .iter()
                .next()
                .map(|(k, v)| (k.as_str(), v))
                .unwrap_or(("add", &Value::Null));
            let Value::Array(items) = list else {
                return Err(format!("'{key}': '{op}' must be an array"));
            };
            if items.iter().any(|v| v.is_object() || v.is_array()) {
                return Err(format!("'{key}': '{op}' takes scalar values"));
            }
            Ok(if op == "add" {
                CustomOp::Add(items.clone())
            } else {
                CustomOp::Remove(items.clone())
            })
        }
        Value::Array(items) => {
            if items.len() > MAX_ARRAY_ATTRIBUTE_LEN {
                return Err(format!("'{key}': arrays hold at most {MAX_ARRAY_ATTRIBUTE_LEN} values"));
            }
            let mut seen = Vec::new();
            for item in items {
                if !seen.contains(item) {
                    seen.push(item.clone());
                }
            }
            Ok(CustomOp::Set(Value::Array(seen)))
        }
        Value::String(s) if s.chars().count() > MAX_PROPERTY_LEN => {
            Err(format!("'{key}' is longer than {MAX_PROPERTY_LEN} characters"))
        }
        _ => Ok(CustomOp::Set(value.clone())),
    }
}

/// Validates every attribute of an attributes object (nothing is applied when one is invalid).
fn attribute_changes(obj: &Map<String, Value>, id: &Identifier) -> Result<Vec<AttrChange>, String> {
    let identifies_by = match id {
        Identifier::Other(field, _) => Some(*field),
        _ => None,
    };
    let mut changes = Vec::new();
    for (key, value) in obj {
        let control = [
            "external_id",
            "user_alias",
            "braze_id",
            "_update_existing_only",
            "push_token_import",
        ];
        if control.contains(&key.as_str()) || identifies_by == Some(key.as_str()) {
            continue;
        }
        if STANDARD_ATTRIBUTES.contains(&key.as_str()) {
            let (field, value) = standard_attribute(key, value)?;
            changes.push(AttrChange::Standard(field, value));
        } else {
            changes.push(AttrChange::Custom(key.clone(), custom_attribute(key, value)?));
        }
    }
    Ok(changes)
}

fn apply_changes(ws: &mut Workspace, user: usize, changes: Vec<AttrChange>) {
    for change in changes {
        match change {
            AttrChange::Standard(field, value) => {
                let world = ws.world.clone();
                ws.users.set_field(&world, user, &field, value);
            }
            AttrChange::Custom(key, op) => {
                // Only the operations that build on the current value read it (reading renders the
                // profile: a plain `set` of a million attributes need not).
                let current = match &op {
                    CustomOp::Set(_) => None,
                    _ => ws.users.custom_attribute(&ws.world, user, &key),
                };
                let next = match op {
                    CustomOp::Set(v) => v,
                    CustomOp::Inc(n) => {
                        let base = current.as_ref().and_then(Value::as_f64).unwrap_or(0.0);
                        let sum = base + n;
                        if sum.fract() == 0.0 && sum.abs() < 9.0e15 {
                            json!(sum as i64)
                        } else {
                            json!(sum)
                        }
                    }
                    CustomOp::Add(items) => {
                        let mut list = match current {
                            Some(Value::Array(a)) => a,
                            _ => Vec::new(),
                        };
                        for item in items {
                            if !list.contains(&item) {
                                list.push(item);
                            }
                        }
                        let overflow = list.len().saturating_sub(MAX_ARRAY_ATTRIBUTE_LEN);
                        list.drain(..overflow);
                        Value::Array(list)
                    }
                    CustomOp::Remove(items) => {
                        let mut list = match current {
                            Some(Value::Array(a)) => a,
                            _ => Vec::new(),
                        };
                        list.retain(|v| !items.contains(v));
                        Value::Array(list)
                    }
                };
                ws.users.delta_mut(user).custom_attributes.insert(key, next);
            }
        }
    }
}

/// The array `key` of a track body: absent, or at most [`MAX_TRACK_OBJECTS`] entries.
fn track_array<'b>(body: &'b Map<String, Value>, key: &str) -> Result<Option<&'b Vec<Value>>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) if items.len() > MAX_TRACK_OBJECTS => {
            Err(ApiError::bad_request("Max Input Length Exceeded").with_errors(vec![
                json!({ "type": format!("'{key}' holds more than {MAX_TRACK_OBJECTS} objects"), "input_array": key }),
            ]))
        }
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(_) => Err(ApiError::bad_request(format!("'{key}' must be an array"))),
    }
}

/// `POST /users/track`.
pub async fn track(State(state): State<AppState>, body: Bytes) -> Response {
    match track_inner(&state, &body) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn track_inner(state: &AppState, body: &Bytes) -> Result<Response, ApiError> {
    let body = parse_body(body)?;
    let attributes = track_array(&body, "attributes")?;
    let events = track_array(&body, "events")?;
    let purchases = track_array(&body, "purchases")?;
    let mut ws = state.lock();
    let updates = [attributes, events, purchases]
        .iter()
        .flatten()
        .map(|a| a.len())
        .sum::<usize>();
    if let Some(limit) = ws.catalog.track_updates_per_request
        && updates > limit
    {
        return Err(ApiError::bad_request("Max Input Length Exceeded").with_errors(vec![json!({
            "type": format!("this workspace accepts at most {limit} updates per request, attributes, events and purchases combined; got {updates}"),
        })]));
    }
    let now = ws.now;
    let mut errors = Vec::new();
    let mut out = Map::new();

    if let Some(items) = attributes {
        let mut processed = BTreeSet::new();
        for (index, item) in items.iter().enumerate() {
            let applied = (|| {
                let obj = item.as_object().ok_or("attribute objects must be JSON objects")?;
                let id = identifier(obj)?;
                let default_existing_only = matches!(id, Identifier::Alias);
                let changes = attribute_changes(obj, &id)?;
                let user = resolve(&mut ws, &id, obj, default_existing_only)?;
                if let Some(user) = user {
                    apply_changes(&mut ws, user, changes);
                }
                Ok::<_, String>(user)
            })();
            match applied {
                Ok(Some(user)) => {
                    processed.insert(user);
                }
                Ok(None) => {}
                Err(e) => errors.push(item_error(e, "attributes", index)),
            }
        }
        out.insert("attributes_processed".into(), json!(processed.len()));
    }

    if let Some(items) = events {
        let mut processed = 0usize;
        for (index, item) in items.iter().enumerate() {
            let applied = (|| {
                let obj = item.as_object().ok_or("event objects must be JSON objects")?;
                let id = identifier(obj)?;
                let name = match obj.get("name") {
                    Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_PROPERTY_LEN => s.clone(),
                    Some(Value::String(s)) if !s.is_empty() => {
                        return Err(format!("'name' is longer than {MAX_PROPERTY_LEN} characters"));
                    }
                    _ => return Err("'name' is required".to_owned()),
                };
                let at = event_time(obj, now)?;
                let properties = check_properties(obj, MAX_EVENT_PROPERTIES_BYTES)?;
                let default_existing_only = matches!(id, Identifier::Alias);
                let user = resolve(&mut ws, &id, obj, default_existing_only)?;
                if let Some(user) = user {
                    ws.track_event(user, name, properties, at);
                }
                Ok::<_, String>(user.is_some())
            })();
            match applied {
                Ok(true) => processed += 1,
                Ok(false) => {}
                Err(e) => errors.push(item_error(e, "events", index)),
            }
        }
        out.insert("events_processed".into(), json!(processed));
    }

    if let Some(items) = purchases {
        let mut processed = 0usize;
        for (index, item) in items.iter().enumerate() {
            let applied = (|| {
                let obj = item.as_object().ok_or("purchase objects must be JSON objects")?;
                let id = identifier(obj)?;
                let product_id = match obj.get("product_id") {
                    Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_PROPERTY_LEN => s.clone(),
                    Some(Value::String(s)) if !s.is_empty() => {
                        return Err(format!("'product_id' is longer than {MAX_PROPERTY_LEN} characters"));
                    }
                    _ => return Err("'product_id' is required".to_owned()),
                };
                let currency = match obj.get("currency") {
                    Some(Value::String(s)) if s.len() == 3 && s.chars().all(|c| c.is_ascii_alphabetic()) => {
                        s.to_ascii_uppercase()
                    }
                    Some(_) => return Err("'currency' must be an ISO-4217 code".to_owned()),
                    None => return Err("'currency' is required".to_owned()),
                };
                let price = match obj.get("price") {
                    Some(v) if v.is_number() => v.as_f64().unwrap_or(0.0),
                    Some(_) => return Err("'price' must be a number".to_owned()),
                    None => return Err("'price' is required".to_owned()),
                };
                let quantity = match obj.get("quantity") {
                    None | Some(Value::Null) => 1,
                    Some(v) => match v.as_u64() {
                        Some(q) if (1..=MAX_PURCHASE_QUANTITY).contains(&q) => q,
                        Some(q) if q > MAX_PURCHASE_QUANTITY => {
                            return Err(format!("'quantity' must be at most {MAX_PURCHASE_QUANTITY}"));
                        }
                        _ => return Err("'quantity' must be a positive integer".to_owned()),
                    },
                };
                let at = event_time(obj, now)?;
                let _properties = check_properties(obj, MAX_EVENT_PROPERTIES_BYTES / 2)?;
                let default_existing_only = matches!(id, Identifier::Alias);
                let user = resolve(&mut ws, &id, obj, default_existing_only)?;
                if let Some(user) = user {
                    // `quantity` is bounded by MAX_PURCHASE_QUANTITY above, so it fits.
                    let quantity = u32::try_from(quantity).unwrap_or(1);
                    ws.track_purchase(user, product_id, price, currency, quantity, at);
                }
                Ok::<_, String>(user.is_some())
            })();
            match applied {
                Ok(true) => processed += 1,
                Ok(false) => {}
                Err(e) => errors.push(item_error(e, "purchases", index)),
            }
        }
        out.insert("purchases_processed".into(), json!(processed));
    }

    if !errors.is_empty() {
        out.insert("errors".into(), Value::Array(errors));
    }
    Ok((StatusCode::CREATED, success(Value::Object(out))).into_response())
}

/// Reads a required `fields_to_export` (and checks every name).
fn fields_to_export(body: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let Some(value) = body.get("fields_to_export").filter(|v| !v.is_null()) else {
        return Err(ApiError::bad_request("fields_to_export is required"));
    };
    let fields = string_list(value, "fields_to_export")?;
    if let Some(bad) = fields.iter().find(|f| !EXPORT_FIELDS.contains(&f.as_str())) {
        return Err(ApiError::bad_request(format!(
            "Invalid fields_to_export: '{bad}' is not an exportable field"
        )));
    }
    Ok(fields)
}

fn string_list(value: &Value, name: &str) -> Result<Vec<String>, ApiError> {
    let error = || ApiError::bad_request(format!("{name} must be an array of strings"));
    let Value::Array(items) = value else {
        return Err(error());
    };
    items
        .iter()
        .map(|v| v.as_str().map(str::to_owned).ok_or_else(error))
        .collect()
}

/// `POST /users/export/ids`.
pub async fn export_ids(State(state): State<AppState>, body: Bytes) -> Response {
    match export_ids_inner(&state, &body) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn export_ids_inner(state: &AppState, body: &Bytes) -> Result<Response, ApiError> {
    let body = parse_body(body)?;
    let external_ids = match body.get("external_ids") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => string_list(v, "external_ids")?,
    };
    let aliases = match body.get("user_aliases") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => return Err(ApiError::bad_request("user_aliases must be an array")),
    };
    if external_ids.len() + aliases.len() > MAX_EXPORT_IDS {
        return Err(ApiError::bad_request(
            "The max number of external_ids and aliases per request was exceeded",
        ));
    }
    let singles: Vec<(&str, String)> = ["device_id", "email_address", "phone", "braze_id"]
        .into_iter()
        .filter_map(|k| body.get(k).filter(|v| !v.is_null()).map(|v| (k, v)))
        .map(|(k, v)| {
            v.as_str()
                .map(|s| (k, s.to_owned()))
                .ok_or_else(|| ApiError::bad_request(format!("{k} must be a string")))
        })
        .collect::<Result<_, _>>()?;
    if singles.iter().filter(|(k, _)| *k != "braze_id").count() > 1 {
        return Err(ApiError::bad_request(
            "Only one of device_id, email_address or phone may be given per request",
        ));
    }
    if external_ids.is_empty() && aliases.is_empty() && singles.is_empty() {
        return Err(ApiError::bad_request(
            "No identifiers: give external_ids, user_aliases, braze_id, device_id, email_address or phone",
        ));
    }
    let fields = fields_to_export(&body)?;

    let mut ws = state.lock();
    let world = ws.world.clone();
    let mut users = Vec::new();
    let mut invalid = Vec::new();
    let mut seen = BTreeSet::new();
    for id in &external_ids {
        match ws.users.index_of(&world, id) {
            Some(i) => {
                if seen.insert(i) {
                    users.push(i);
                }
            }
            None => invalid.push(Value::String(id.clone())),
        }
    }
    for alias in &aliases {
        // Aliases are not modelled: no user has one, so every alias is reported by its name.
        if let Some(name) = alias.get("alias_name").and_then(Value::as_str) {
            invalid.push(Value::String(name.to_owned()));
        }
    }
    for (kind, value) in &singles {
        let field = match *kind {
            "email_address" => "email",
            "device_id" => "device_id",
            other => other,
        };
        match ws.users.find_by(&world, field, value) {
            Some(i) => {
                if seen.insert(i) {
                    users.push(i);
                }
            }
            None => invalid.push(Value::String(value.clone())),
        }
    }
    let rendered: Vec<Value> = users
        .into_iter()
        .map(|i| Value::Object(filter_fields(ws.users.profile(&world, i), &fields, &[])))
        .collect();
    drop(ws);
    let mut out = json!({ "users": rendered });
    if !invalid.is_empty()
        && let Some(map) = out.as_object_mut()
    {
        map.insert("invalid_user_ids".into(), Value::Array(invalid));
    }
    Ok((StatusCode::CREATED, success(out)).into_response())
}

/// `POST /users/export/segment`: answers at once with `object_prefix` and `url`; the ZIP is written in
/// the background after [`crate::SimConfig::export_delay`] and served at `url` until
/// [`crate::SimConfig::export_ttl`] has passed.
pub async fn export_segment(State(state): State<AppState>, body: Bytes) -> Response {
    match export_segment_inner(&state, &body) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn export_segment_inner(state: &AppState, body: &Bytes) -> Result<Response, ApiError> {
    let body = parse_body(body)?;
    let segment_id = match body.get("segment_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        None | Some(Value::Null) => return Err(ApiError::bad_request("segment_id is required")),
        Some(_) => return Err(ApiError::bad_request("segment_id must be a string")),
    };
    let fields = fields_to_export(&body)?;
    let custom = match body.get("custom_attributes_to_export") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => string_list(v, "custom_attributes_to_export")?,
    };
    if custom.len() > MAX_CUSTOM_ATTRIBUTES_TO_EXPORT {
        return Err(ApiError::bad_request(format!(
            "custom_attributes_to_export holds at most {MAX_CUSTOM_ATTRIBUTES_TO_EXPORT} names"
        )));
    }
    let callback = match body.get("callback_endpoint") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.starts_with("http://") || s.starts_with("https://") => Some(s.clone()),
        Some(_) => return Err(ApiError::bad_request("callback_endpoint must be an http(s) URL")),
    };
    match body.get("output_format").and_then(Value::as_str) {
        None | Some("zip") => {}
        Some("gzip") => {
            return Err(ApiError::bad_request(
                "output_format \"gzip\" requires your own storage bucket; use \"zip\"",
            ));
        }
        Some(other) => return Err(ApiError::bad_request(format!("Invalid output_format: {other}"))),
    }
    let mut ws = state.lock();
    if !ws.world.scenario().braze.segments.iter().any(|s| s.id == segment_id) {
        return Err(ApiError::bad_request(format!("Invalid segment_id: {segment_id}")));
    }
    if let Some(reason) = ws.exports.refuse(&segment_id) {
        return Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, reason));
    }
    let job = ExportJob {
        segment_id: segment_id.clone(),
        object_prefix: String::new(),
        fields_to_export: fields,
        custom_attributes_to_export: custom,
        callback_endpoint: callback,
        status: ExportStatus::Running,
        users: 0,
        files: 0,
    };
    let (seed, now) = (ws.world.scenario().seed, ws.now.as_second());
    let prefix = ws.exports.start(job, seed, now);
    drop(ws);
    let url = format!("{}/_sim/exports/{prefix}.zip", state.base_url);
    tokio::spawn(run_export(state.clone(), prefix.clone(), url.clone()));
    Ok((
        StatusCode::CREATED,
        success(json!({ "object_prefix": prefix, "url": url })),
    )
        .into_response())
}

/// Waits for the export delay, writes the ZIP (chunk by chunk, locking the workspace per chunk),
/// marks it ready and calls the callback.
async fn run_export(state: AppState, prefix: String, url: String) {
    tokio::time::sleep(state.config.export_delay).await;
    let dir = state
        .config
        .export_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("offerloop-sim-exports-{}", std::process::id())));
    let path = dir.join(format!("{prefix}.zip"));
    let writer_state = state.clone();
    let writer_prefix = prefix.clone();
    let written = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir).map_err(|source| crate::Error::Io {
            path: dir.clone(),
            source,
        })?;
        write_export(&writer_state, &writer_prefix, &path).map(|(users, files)| (path, users, files))
    })
    .await;
    let callback = {
        let mut ws = state.lock();
        let callback = ws.exports.get(&prefix).and_then(|j| j.callback_endpoint.clone());
        match written {
            Ok(Ok((path, users, files))) => {
                let expires_at = tokio::time::Instant::now() + state.config.export_ttl;
                ws.exports
                    .finish(&prefix, ExportStatus::Ready { path, expires_at }, users, files);
                callback.map(|c| (c, true))
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "segment export failed");
                ws.exports
                    .finish(&prefix, ExportStatus::Failed(error.to_string()), 0, 0);
                callback.map(|c| (c, false))
            }
            Err(error) => {
                tracing::error!(%error, "segment export task failed");
                ws.exports
                    .finish(&prefix, ExportStatus::Failed(error.to_string()), 0, 0);
                callback.map(|c| (c, false))
            }
        }
    };
    if let Some((endpoint, ok)) = callback {
        let body = if ok {
            json!({ "success": true, "url": url })
        } else {
            json!({ "success": false })
        };
        let posted = tokio::task::spawn_blocking(move || post_json(&endpoint, &body, Duration::from_secs(10))).await;
        match posted {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "segment export callback failed"),
            Err(error) => tracing::warn!(%error, "segment export callback task failed"),
        }
    }
}

/// Writes the ZIP of export `prefix` to `path`.
fn write_export(state: &AppState, prefix: &str, path: &std::path::Path) -> crate::Result<(usize, usize)> {
    let (job, world, segment) = {
        let ws = state.lock();
        let job = ws.exports.get(prefix).cloned();
        let segment = job.as_ref().and_then(|j| {
            ws.world
                .scenario()
                .braze
                .segments
                .iter()
                .find(|s| s.id == j.segment_id)
                .cloned()
        });
        (job, ws.world.clone(), segment)
    };
    let (Some(job), Some(segment)) = (job, segment) else {
        return Err(crate::Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other("export or segment vanished"),
        });
    };
    let total = state.lock().users.len(&world);
    crate::state::exports::write_zip(path, total, state.config.export_users_per_file, |range| {
        let ws = state.lock();
        range
            .filter_map(|i| {
                let profile = ws.users.profile(&world, i);
                if !segment.contains(&profile) {
                    return None;
                }
                let filtered = filter_fields(profile, &job.fields_to_export, &job.custom_attributes_to_export);
                serde_json::to_vec(&Value::Object(filtered)).ok()
            })
            .collect()
    })
}

/// POSTs `body` as JSON to an `http://` URL with a bare, blocking HTTP/1.1 request (no TLS:
/// `https://` callbacks are refused with an error). Run it on a blocking thread.
///
/// # Errors
/// A message when the URL is not plain HTTP, the connection fails, or the server does not answer 2xx.
pub fn post_json(url: &str, body: &Value, timeout: Duration) -> Result<(), String> {
    use std::io::{Read as _, Write as _};
    use std::net::ToSocketAddrs as _;
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// callbacks are supported: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host_port = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let payload = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    );
    let addr = host_port
        .to_socket_addrs()
        .map_err(|e| format!("{host_port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host_port}: no address"))?;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).map_err(|e| e.to_string())?;
    let status = std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(0);
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("callback answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn identifiers_are_exactly_one() {
        assert!(matches!(
            identifier(&obj(json!({"external_id": "u"}))),
            Ok(Identifier::External(_))
        ));
        assert!(matches!(
            identifier(&obj(json!({"external_id": "u", "email": "a@b"}))),
            Ok(Identifier::External(_))
        ));
        assert!(matches!(
            identifier(&obj(json!({"email": "a@b", "phone": "+1"}))),
            Ok(Identifier::Other("email", _))
        ));
        assert!(identifier(&obj(json!({"external_id": "u", "braze_id": "b"}))).is_err());
        assert!(identifier(&obj(json!({"name": "x"}))).is_err());
        assert!(identifier(&obj(json!({"external_id": 5}))).is_err());
        assert!(identifier(&obj(json!({"external_id": "undefined"}))).is_err());
        assert!(matches!(
            identifier(&obj(json!({"user_alias": {"alias_name": "a", "alias_label": "l"}}))),
            Ok(Identifier::Alias)
        ));
        assert!(identifier(&obj(json!({"user_alias": {"alias_name": "a"}}))).is_err());
    }

    #[test]
    fn properties_follow_the_rules() {
        assert!(check_properties(&obj(json!({"properties": {"a": 1}})), 1000).is_ok());
        assert!(check_properties(&obj(json!({"properties": {"time": 1}})), 1000).is_err());
        assert!(check_properties(&obj(json!({"properties": {"event_name": 1}})), 1000).is_err());
        assert!(check_properties(&obj(json!({"properties": {"$x": 1}})), 1000).is_err());
        assert!(check_properties(&obj(json!({"properties": {"": 1}})), 1000).is_err());
        assert!(check_properties(&obj(json!({"properties": {"s": "x".repeat(256)}})), 1000).is_err());
        assert!(check_properties(&obj(json!({"properties": {"s": "x".repeat(200)}})), 100).is_err());
        assert!(check_properties(&obj(json!({"properties": 3})), 1000).is_err());
    }

    #[test]
    fn times_parse_and_clamp() {
        let now: Timestamp = "2026-01-05T00:00:00Z".parse().unwrap();
        let t = |s: &str| event_time(&obj(json!({"time": s})), now);
        assert_eq!(
            t("2026-01-04T10:00:00Z").unwrap(),
            "2026-01-04T10:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            t("2026-01-04T10:00:00+02:00").unwrap(),
            "2026-01-04T08:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            t("2026-01-04").unwrap(),
            "2026-01-04T00:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(t("2030-01-01T00:00:00Z").unwrap(), now);
        assert!(t("yesterday").is_err());
        assert!(event_time(&obj(json!({})), now).is_err());
    }

    #[test]
    fn attribute_validation() {
        assert!(standard_attribute("email_subscribe", &json!("opted_in")).is_ok());
        assert!(standard_attribute("email_subscribe", &json!("yes")).is_err());
        assert_eq!(standard_attribute("gender", &json!("f")).unwrap().1, json!("F"));
        assert!(standard_attribute("gender", &json!("X")).is_err());
        assert!(standard_attribute("dob", &json!("1990-13-01")).is_err());
        assert_eq!(standard_attribute("country", &json!("Narnia")).unwrap().1, Value::Null);
        assert_eq!(
            standard_attribute("time_zone", &json!("Mars/Base")).unwrap().1,
            Value::Null
        );
        assert_eq!(
            standard_attribute("time_zone", &json!("Europe/Paris")).unwrap().1,
            json!("Europe/Paris")
        );
        assert_eq!(
            standard_attribute("current_location", &json!({"longitude": 2.3, "latitude": 48.8})).unwrap(),
            ("last_coordinates".to_owned(), json!([2.3, 48.8]))
        );
        assert!(matches!(
            custom_attribute("n", &json!({"inc": 2})),
            Ok(CustomOp::Inc(_))
        ));
        assert!(custom_attribute("n", &json!({"inc": 2.5})).is_err());
        assert!(matches!(
            custom_attribute("l", &json!({"add": ["a"]})),
            Ok(CustomOp::Add(_))
        ));
        assert!(custom_attribute("l", &json!({"remove": "a"})).is_err());
        assert!(matches!(
            custom_attribute("o", &json!({"nested": 1})),
            Ok(CustomOp::Set(_))
        ));
        assert!(custom_attribute("$bad", &json!(1)).is_err());
        assert!(custom_attribute("big", &Value::Array((0..101).map(|i| json!(i)).collect())).is_err());
    }
}
