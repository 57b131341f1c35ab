//! Routes (being written).

use axum::Router;

use super::AppState;

/// This module's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
