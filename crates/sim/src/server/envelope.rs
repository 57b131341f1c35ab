//! Braze's response envelope: JSON with a `message` (`"success"` when it worked) and, for partial or
//! fatal errors, an `errors` array. [`ApiError`] is the fatal form every handler returns.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A fatal Braze error response: `status` with `{"message": ..., "errors": [...]}`.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The `message` text, Braze's wording.
    pub message: String,
    /// The optional `errors` array.
    pub errors: Vec<Value>,
}

impl ApiError {
    /// Any status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            errors: Vec::new(),
        }
    }

    /// 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 with `message`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// Adds entries to `errors`.
    pub fn with_errors(mut self, errors: Vec<Value>) -> ApiError {
        self.errors = errors;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = if self.errors.is_empty() {
            json!({ "message": self.message })
        } else {
            json!({ "message": self.message, "errors": self.errors })
        };
        (self.status, Json(body)).into_response()
    }
}

/// A success body: `{"message": "success", ..fields}`.
pub fn success(fields: Value) -> Json<Value> {
    let mut body = match fields {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    body.insert("message".into(), Value::String("success".into()));
    Json(Value::Object(body))
}
