//! Email templates: `POST /templates/email/create` and `/update`, `GET /templates/email/info` and
//! `/list`.
//!
//! Validation follows Braze's documented texts (missing `template_name`, `tags` not an array, not
//! strings or not existing in the workspace, non-boolean `should_inline_css`). Tags exist when the
//! scenario uses them anywhere (campaigns, Canvases, segments, templates); the simulator has no tag
//! management endpoint. The listing is in creation order, `count` is the number of templates matching
//! the `modified_after`/`modified_before` window (inclusive) before `limit`/`offset` apply.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::AppState;
use super::envelope::{ApiError, success};
use super::messaging::{lock, parse_object};
use crate::state::Workspace;
use crate::state::catalog::{EmailTemplate, format_time, parse_time};

/// Default `limit` of `/templates/email/list`: Braze's documented limit, kept here independently of `offerloop_braze::limits` (the simulator checks the
/// client's contract instead of sharing its mistakes); `tests/e2e/braze_contract.rs` holds the two equal.
pub const DEFAULT_LIMIT: usize = 100;

/// Largest `limit` of `/templates/email/list`: Braze's documented limit, kept here independently of `offerloop_braze::limits` (the simulator checks the
/// client's contract instead of sharing its mistakes); `tests/e2e/braze_contract.rs` holds the two equal.
pub const MAX_LIMIT: usize = 1000;

/// Braze's text for a non-boolean `should_inline_css`.
pub const INVALID_INLINE_CSS: &str = "Invalid value for `should_inline_css`. One of `true` or `false` was expected";

/// This module's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/templates/email/create", post(create))
        .route("/templates/email/update", post(update))
        .route("/templates/email/info", get(info))
        .route("/templates/email/list", get(list))
}

/// The optional fields of a create or update body, validated.
#[derive(Debug, Default)]
struct Fields {
    template_name: Option<String>,
    subject: Option<String>,
    body: Option<String>,
    plaintext_body: Option<String>,
    preheader: Option<String>,
    description: Option<String>,
    tags: Option<Vec<String>>,
    should_inline_css: Option<bool>,
}

fn string_field(body: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(format!("{key} must be a string"))),
    }
}

fn fields(ws: &Workspace, body: &Map<String, Value>) -> Result<Fields, ApiError> {
    let template_name = match body.get("template_name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(_) => return Err(ApiError::bad_request("Template name is required")),
    };
    let tags = match body.get("tags") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let mut tags = Vec::with_capacity(items.len());
            for item in items {
                let Value::String(tag) = item else {
                    return Err(ApiError::bad_request("All tags must be strings"));
                };
                tags.push(tag.clone());
            }
            if tags.iter().any(|t| !ws.catalog.tags.contains(t)) {
                return Err(ApiError::bad_request("Some tags could not be found"));
            }
            Some(tags)
        }
        Some(_) => return Err(ApiError::bad_request("Tags must be an array")),
    };
    let should_inline_css = match body.get("should_inline_css") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(ApiError::bad_request(INVALID_INLINE_CSS)),
    };
    Ok(Fields {
        template_name,
        subject: string_field(body, "subject")?,
        body: string_field(body, "body")?,
        plaintext_body: string_field(body, "plaintext_body")?,
        preheader: string_field(body, "preheader")?,
        description: string_field(body, "description")?,
        tags,
        should_inline_css,
    })
}

fn created(result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(fields) => (StatusCode::CREATED, success(fields)).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn create(State(state): State<AppState>, body: Bytes) -> Response {
    created(parse_object(&body).and_then(|body| {
        let mut ws = lock(&state);
        let f = fields(&ws, &body)?;
        let name = f
            .template_name
            .ok_or_else(|| ApiError::bad_request("Template name is required"))?;
        let subject = f.subject.ok_or_else(|| ApiError::bad_request("Subject is required"))?;
        let html = f.body.ok_or_else(|| ApiError::bad_request("Body is required"))?;
        let id = ws.catalog.ids.next_id("email_template");
        let now = ws.now;
        ws.catalog.templates.push(EmailTemplate {
            id: id.clone(),
            name,
            description: f.description,
            subject,
            body: html,
            plaintext_body: f.plaintext_body,
            preheader: f.preheader,
            tags: f.tags.unwrap_or_default(),
            should_inline_css: f.should_inline_css,
            created_at: now,
            updated_at: now,
        });
        Ok(json!({ "email_template_id": id }))
    }))
}

async fn update(State(state): State<AppState>, body: Bytes) -> Response {
    created(parse_object(&body).and_then(|body| {
        let mut ws = lock(&state);
        let Some(id) = body.get("email_template_id").and_then(Value::as_str) else {
            return Err(ApiError::bad_request("email_template_id is required"));
        };
        let f = fields(&ws, &body)?;
        let now = ws.now;
        let template = ws
            .catalog
            .template_mut(id)
            .ok_or_else(|| ApiError::bad_request("Invalid email_template_id"))?;
        let mut changed = false;
        let mut set = |target: &mut String, value: Option<String>| {
            if let Some(v) = value {
                *target = v;
                changed = true;
            }
        };
        set(&mut template.name, f.template_name);
        set(&mut template.subject, f.subject);
        set(&mut template.body, f.body);
        for (target, value) in [
            (&mut template.plaintext_body, f.plaintext_body),
            (&mut template.preheader, f.preheader),
            (&mut template.description, f.description),
        ] {
            if value.is_some() {
                *target = value;
                changed = true;
            }
        }
        if let Some(tags) = f.tags {
            template.tags = tags;
            changed = true;
        }
        if f.should_inline_css.is_some() {
            template.should_inline_css = f.should_inline_css;
            changed = true;
        }
        if !changed {
            return Err(ApiError::bad_request("At least one field to update is required"));
        }
        template.updated_at = now;
        Ok(json!({}))
    }))
}

async fn info(State(state): State<AppState>, Query(params): Query<HashMap<String, String>>) -> Response {
    let result = (|| {
        let Some(id) = params.get("email_template_id").filter(|s| !s.is_empty()) else {
            return Err(ApiError::bad_request("email_template_id is required"));
        };
        let ws = lock(&state);
        let t = ws
            .catalog
            .template(id)
            .ok_or_else(|| ApiError::bad_request("Invalid email_template_id"))?;
        let mut out = json!({
            "email_template_id": t.id,
            "template_name": t.name,
            "description": t.description.clone().unwrap_or_default(),
            "subject": t.subject,
            "body": t.body,
            "tags": t.tags,
            "created_at": format_time(t.created_at),
            "updated_at": format_time(t.updated_at),
        });
        if let Value::Object(map) = &mut out {
            if let Some(p) = &t.preheader {
                map.insert("preheader".into(), json!(p));
            }
            if let Some(p) = &t.plaintext_body {
                map.insert("plaintext_body".into(), json!(p));
            }
            if let Some(b) = t.should_inline_css {
                map.insert("should_inline_css".into(), json!(b));
            }
        }
        Ok(out)
    })();
    match result {
        Ok(fields) => success(fields).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn list(State(state): State<AppState>, Query(params): Query<HashMap<String, String>>) -> Response {
    let result = (|| {
        let time = |key: &str| -> Result<Option<jiff::Timestamp>, ApiError> {
            match params.get(key) {
                None => Ok(None),
                Some(text) => parse_time(text)
                    .map(Some)
                    .ok_or_else(|| ApiError::bad_request(format!("{key} must be an ISO-8601 time"))),
            }
        };
        let after = time("modified_after")?;
        let before = time("modified_before")?;
        let limit = match params.get("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => match text.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => return Err(ApiError::bad_request("limit must be an integer between 1 and 1000")),
            },
        };
        let offset = match params.get("offset") {
            None => 0,
            Some(text) => text
                .trim()
                .parse::<usize>()
                .map_err(|_| ApiError::bad_request("offset must be a non-negative integer"))?,
        };
        let ws = lock(&state);
        let matching: Vec<&EmailTemplate> = ws
            .catalog
            .templates
            .iter()
            .filter(|t| after.is_none_or(|a| t.updated_at >= a) && before.is_none_or(|b| t.updated_at <= b))
            .collect();
        let templates: Vec<Value> = matching
            .iter()
            .skip(offset)
            .take(limit)
            .map(|t| {
                json!({
                    "email_template_id": t.id, "template_name": t.name, "created_at": format_time(t.created_at),
                    "updated_at": format_time(t.updated_at), "tags": t.tags,
                })
            })
            .collect();
        Ok(json!({ "count": matching.len(), "templates": templates }))
    })();
    match result {
        Ok(fields) => success(fields).into_response(),
        Err(error) => error.into_response(),
    }
}
