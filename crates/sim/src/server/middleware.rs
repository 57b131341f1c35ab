//! The middleware every Braze route goes through, in this order:
//!
//! 1. `/_sim/*` passes through untouched (no auth, no limits, no faults).
//! 2. Faults ([`super::faults`]): added latency, then maybe a reset, a 5xx or a 429 instead of the
//!    handler (a "lost response" is decided here and carried out after the handler).
//! 3. Routing ([`super::routes_table`]): a path not in the table → 404; a known path with another
//!    method → 405 with `Allow` (Braze's real behaviour for a wrong method is unconfirmed).
//! 4. Authentication ([`super::auth`]): 401/403.
//! 5. Rate limit ([`super::ratelimit`]): a token from the route's pool (the broadcast pool for
//!    messaging requests targeting a segment or audience), else 429.
//!
//! Every response except `/_sim/*` carries the `X-RateLimit-*` headers of the pool the request
//! counted in (or would have: refusals before step 5 report the pool without taking a token).

use std::net::IpAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::time::Instant;

use super::AppState;
use super::conn::ConnInfo;
use super::envelope::ApiError;
use super::faults::Action;
use super::ratelimit::{Window, set_headers};
use super::routes_table::{self, Pool};

/// Largest request body the middleware buffers to pick a messaging request's pool (larger bodies
/// are refused with 413 by the middleware itself).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The Braze middleware (see the module docs); install with
/// `axum::middleware::from_fn_with_state(state, braze_middleware)`.
pub async fn braze_middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if path == "/_sim" || path.starts_with("/_sim/") {
        return next.run(req).await;
    }
    let conn = req.extensions().get::<ConnectInfo<ConnInfo>>().map(|c| c.0.clone());
    let ip: Option<IpAddr> = conn.as_ref().map(|c| c.addr.ip()).or_else(|| {
        req.extensions()
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
    });
    let route = routes_table::find(&path);
    let retry_after = state.buckets.limits().retry_after;
    let peek = |pool: Pool| state.buckets.check(pool, false, Instant::now());
    let finish = |response: Response, window: &Window| {
        let mut response = response;
        set_headers(response.headers_mut(), window, retry_after);
        response
    };

    // 2. Faults.
    let (latency, action) = {
        // A poisoned lock only means a request panicked while drawing; the RNG state is still valid.
        let mut faults = state.faults.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        faults.draw(&path)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let default_pool = route.map_or(Pool::Default, |r| r.pool);
    match action {
        Action::Serve | Action::LoseResponse => {}
        Action::Reset => {
            if let Some(conn) = &conn {
                conn.kill();
            }
            // Never written when the connection is killed; served without connect info, a 502 stands in.
            let error = ApiError::new(StatusCode::BAD_GATEWAY, "connection reset (simulated)");
            return finish(error.into_response(), &peek(default_pool));
        }
        Action::ServerError(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let error = ApiError::new(status, "Internal Server Error (simulated fault)");
            return finish(error.into_response(), &peek(default_pool));
        }
        Action::RateLimited => {
            let mut window = peek(default_pool);
            window.allowed = false;
            window.remaining = 0;
            return finish(rate_limited(), &window);
        }
    }

    // 3. Routing.
    let Some(route) = route else {
        let error = ApiError::not_found(format!("Not Found: no endpoint {path}"));
        return finish(error.into_response(), &peek(Pool::Default));
    };
    if req.method() != route.method {
        let error = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Method Not Allowed: {path} takes {}", route.method),
        );
        let mut response = finish(error.into_response(), &peek(route.pool));
        if let Ok(allow) = HeaderValue::from_str(route.method.as_str()) {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        return response;
    }

    // 4. Authentication.
    if let Err(error) = state.keys.check(req.headers(), ip, route.permission) {
        return finish(error.into_response(), &peek(route.pool));
    }

    // 5. Rate limit, with the pool read from the body for messaging requests.
    let (req, pool) = if route.broadcast_pool {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
            let error = ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
            return finish(error.into_response(), &peek(route.pool));
        };
        let pool = if targets_audience(&bytes) {
            Pool::Broadcast
        } else {
            route.pool
        };
        (Request::from_parts(parts, Body::from(bytes)), pool)
    } else {
        (req, route.pool)
    };
    let window = state.buckets.check(pool, true, Instant::now());
    if !window.allowed {
        return finish(rate_limited(), &window);
    }

    let response = next.run(req).await;
    if action == Action::LoseResponse
        && let Some(conn) = &conn
    {
        conn.kill();
    }
    finish(response, &window)
}

/// Braze's 429.
fn rate_limited() -> Response {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "API rate limit exceeded (Rate Limited — over rate limit)",
    )
    .into_response()
}

/// Whether a messaging body targets a segment or audience rather than listed users.
fn targets_audience(body: &[u8]) -> bool {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    map.get("broadcast").and_then(Value::as_bool) == Some(true)
        || map.get("segment_id").is_some_and(|v| !v.is_null())
        || map.get("audience").is_some_and(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_detection_reads_the_body() {
        assert!(targets_audience(br#"{"broadcast": true, "campaign_id": "c"}"#));
        assert!(targets_audience(br#"{"segment_id": "s"}"#));
        assert!(targets_audience(br#"{"audience": {"AND": []}}"#));
        assert!(!targets_audience(
            br#"{"recipients": [{"external_user_id": "u"}], "broadcast": false}"#
        ));
        assert!(!targets_audience(b"not json"));
    }
}
