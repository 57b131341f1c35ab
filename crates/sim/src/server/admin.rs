//! Admin routes under `/_sim/` (outside Braze's namespace; no auth, no rate limits, no faults):
//!
//! - `GET /_sim/clock` → `{"now": RFC 3339}`;
//! - `POST /_sim/clock/advance` with `{"seconds": N}` or `{"to": RFC 3339}` → `{"now": ...}`
//!   (runs due schedules and applies due outcomes; 400 for a negative step or a time in the past);
//! - `GET /_sim/faults`, `PUT /_sim/faults` ([`Faults`] as JSON, reseeding the fault RNG);
//! - `GET /_sim/sends` → `{"sends": [...]}`, every `Send` of the event log (user, time, campaign,
//!   canvas, step, variation, dispatch and send ids, channel), for assertions;
//! - `GET /_sim/events` → `{"events": [...]}`, the whole event log;
//! - `POST /_sim/currents/flush` writes the buffered Currents events;
//! - `GET /_sim/exports/{object_prefix}.zip` serves a finished segment export (404 until it is
//!   ready and after it expires).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::AppState;
use super::envelope::{ApiError, success};
use super::faults::Faults;
use crate::state::EventKind;

/// This module's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_sim/clock", get(clock))
        .route("/_sim/clock/advance", post(advance))
        .route("/_sim/faults", get(get_faults).put(put_faults))
        .route("/_sim/sends", get(sends))
        .route("/_sim/events", get(events))
        .route("/_sim/currents/flush", post(flush_currents))
        .route("/_sim/exports/{file}", get(download_export))
}

async fn clock(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "now": state.lock().now.to_string() }))
}

async fn advance(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body: Value = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("Invalid JSON: {e}")))?;
    // Advancing samples organic behaviour for every customer and applies outcomes: on a large world
    // that takes a while, so it runs off the async workers.
    tokio::task::spawn_blocking(move || {
        let mut ws = state.lock();
        let until = target(&body, ws.now)?;
        ws.advance_to(until);
        Ok(Json(json!({ "now": ws.now.to_string() })))
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("advancing the clock failed: {e}"),
        )
    })?
}

/// The time `{"seconds": N}` or `{"to": "<RFC 3339>"}` moves the clock to from `now`.
fn target(body: &Value, now: Timestamp) -> Result<Timestamp, ApiError> {
    match (body.get("seconds"), body.get("to")) {
        (Some(s), None) => {
            let secs = s
                .as_i64()
                .ok_or_else(|| ApiError::bad_request("seconds must be an integer"))?;
            if secs < 0 {
                return Err(ApiError::bad_request(
                    "seconds must not be negative: the clock never goes back",
                ));
            }
            now.checked_add(SignedDuration::from_secs(secs))
                .map_err(|_| ApiError::bad_request("seconds moves the clock out of range"))
        }
        (None, Some(to)) => {
            let to = to
                .as_str()
                .and_then(|t| t.parse::<Timestamp>().ok())
                .ok_or_else(|| ApiError::bad_request("to must be an RFC 3339 time"))?;
            if to < now {
                return Err(ApiError::bad_request(format!(
                    "to is before now ({now}): the clock never goes back"
                )));
            }
            Ok(to)
        }
        _ => Err(ApiError::bad_request(
            "give exactly one of {\"seconds\": N} or {\"to\": \"<RFC 3339>\"}",
        )),
    }
}

async fn get_faults(State(state): State<AppState>) -> Json<Faults> {
    Json(
        state
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .faults()
            .clone(),
    )
}

async fn put_faults(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let faults: Faults =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("Invalid faults: {e}")))?;
    faults.validate().map_err(ApiError::bad_request)?;
    state
        .faults
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .set(faults);
    Ok(success(json!({})))
}

async fn sends(State(state): State<AppState>) -> Json<Value> {
    let ws = state.lock();
    let sends: Vec<Value> = ws
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Send)
        .map(|e| {
            let m = e.message.as_ref();
            json!({
                "external_user_id": e.external_user_id,
                "time": e.time.to_string(),
                "campaign_id": m.and_then(|m| m.campaign_id.clone()),
                "canvas_id": m.and_then(|m| m.canvas_id.clone()),
                "canvas_step_id": m.and_then(|m| m.canvas_step_id.clone()),
                "message_variation_id": m.and_then(|m| m.message_variation_id.clone()),
                "dispatch_id": m.map(|m| m.dispatch_id.clone()),
                "send_id": m.and_then(|m| m.send_id.clone()),
                "channel": m.map(|m| m.channel),
            })
        })
        .collect();
    Json(json!({ "sends": sends }))
}

async fn events(State(state): State<AppState>) -> Json<Value> {
    let ws = state.lock();
    Json(json!({ "events": ws.events }))
}

async fn flush_currents(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut ws = state.lock();
    let now = ws.now;
    if let Some(feed) = &mut ws.currents {
        feed.flush(now)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    }
    Ok(success(json!({})))
}

async fn download_export(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let prefix = file.strip_suffix(".zip").unwrap_or(&file);
    let path = state.lock().exports.download(prefix, tokio::time::Instant::now());
    let Some(path) = path else {
        return ApiError::not_found("Not Found").into_response();
    };
    // The whole ZIP is read into memory to serve it (compressed; a million users with a few fields
    // is tens of MB).
    match tokio::fs::read(&path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/zip")], bytes).into_response(),
        Err(error) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the export failed: {error}"),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_targets_never_go_back() {
        let now: Timestamp = "2026-01-05T00:00:00Z".parse().unwrap();
        assert_eq!(
            target(&json!({"seconds": 60}), now).unwrap(),
            "2026-01-05T00:01:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            target(&json!({"to": "2026-02-01T00:00:00Z"}), now).unwrap(),
            "2026-02-01T00:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert!(target(&json!({"seconds": -1}), now).is_err());
        assert!(target(&json!({"seconds": 1.5}), now).is_err());
        assert!(target(&json!({"to": "2026-01-04T00:00:00Z"}), now).is_err());
        assert!(target(&json!({"to": "soon"}), now).is_err());
        assert!(target(&json!({"seconds": 1, "to": "2026-02-01T00:00:00Z"}), now).is_err());
        assert!(target(&json!({}), now).is_err());
    }
}
