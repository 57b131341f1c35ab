//! The table every Braze route goes through: path → (method, permission, rate-limit pool), from
//! braze-api.md §1 ("Key permission strings") and §2 (pools). The middleware
//! ([`super::middleware`]) answers 404 for a path not in the table and 405 for a known path with
//! another method, before authentication.

use axum::http::Method;
use serde::{Deserialize, Serialize};

/// A rate-limit pool: endpoints in one pool share one bucket (braze-api.md §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    /// The shared default pool (250,000 requests/hour).
    Default,
    /// `POST /users/track` (3,000 requests / 3 seconds).
    UsersTrack,
    /// `POST /users/export/ids` (250 / minute).
    UsersExportIds,
    /// Messaging endpoints when the request targets a segment or audience (250 / minute).
    Broadcast,
    /// `GET /campaigns/data_series` (50,000 / minute).
    CampaignsDataSeries,
}

/// One Braze endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The path, e.g. `/users/track`.
    pub path: &'static str,
    /// `GET` or `POST`.
    pub method: Method,
    /// The API key permission it needs.
    pub permission: &'static str,
    /// Its rate-limit pool.
    pub pool: Pool,
    /// Whether a request targeting a segment or audience (`broadcast: true`, `segment_id`,
    /// `audience`) counts in [`Pool::Broadcast`] instead of `pool`.
    pub broadcast_pool: bool,
}

const fn route(path: &'static str, method: Method, permission: &'static str, pool: Pool) -> Route {
    Route {
        path,
        method,
        permission,
        pool,
        broadcast_pool: false,
    }
}

const fn send(path: &'static str, permission: &'static str) -> Route {
    Route {
        path,
        method: Method::POST,
        permission,
        pool: Pool::Default,
        broadcast_pool: true,
    }
}

/// Every Braze endpoint the simulator serves.
pub const ROUTES: &[Route] = &[
    route("/users/track", Method::POST, "users.track", Pool::UsersTrack),
    route(
        "/users/export/ids",
        Method::POST,
        "users.export.ids",
        Pool::UsersExportIds,
    ),
    route(
        "/users/export/segment",
        Method::POST,
        "users.export.segment",
        Pool::Default,
    ),
    send("/messages/send", "messages.send"),
    route(
        "/messages/schedule/create",
        Method::POST,
        "messages.schedule.create",
        Pool::Default,
    ),
    route(
        "/messages/schedule/update",
        Method::POST,
        "messages.schedule.update",
        Pool::Default,
    ),
    route(
        "/messages/schedule/delete",
        Method::POST,
        "messages.schedule.delete",
        Pool::Default,
    ),
    send("/campaigns/trigger/send", "campaigns.trigger.send"),
    route(
        "/campaigns/trigger/schedule/create",
        Method::POST,
        "campaigns.trigger.schedule.create",
        Pool::Default,
    ),
    route(
        "/campaigns/trigger/schedule/update",
        Method::POST,
        "campaigns.trigger.schedule.update",
        Pool::Default,
    ),
    route(
        "/campaigns/trigger/schedule/delete",
        Method::POST,
        "campaigns.trigger.schedule.delete",
        Pool::Default,
    ),
    send("/canvas/trigger/send", "canvas.trigger.send"),
    route(
        "/canvas/trigger/schedule/create",
        Method::POST,
        "canvas.trigger.schedule.create",
        Pool::Default,
    ),
    route(
        "/canvas/trigger/schedule/update",
        Method::POST,
        "canvas.trigger.schedule.update",
        Pool::Default,
    ),
    route(
        "/canvas/trigger/schedule/delete",
        Method::POST,
        "canvas.trigger.schedule.delete",
        Pool::Default,
    ),
    route("/campaigns/list", Method::GET, "campaigns.list", Pool::Default),
    route("/campaigns/details", Method::GET, "campaigns.details", Pool::Default),
    route(
        "/campaigns/data_series",
        Method::GET,
        "campaigns.data_series",
        Pool::CampaignsDataSeries,
    ),
    route("/canvas/list", Method::GET, "canvas.list", Pool::Default),
    route("/canvas/details", Method::GET, "canvas.details", Pool::Default),
    route("/canvas/data_series", Method::GET, "canvas.data_series", Pool::Default),
    route("/segments/list", Method::GET, "segments.list", Pool::Default),
    route("/segments/details", Method::GET, "segments.details", Pool::Default),
    route(
        "/segments/data_series",
        Method::GET,
        "segments.data_series",
        Pool::Default,
    ),
    route("/sends/data_series", Method::GET, "sends.data_series", Pool::Default),
    // Braze's "100 new send ids per day" is a quota on ids, not on requests: the catalog enforces it
    // per simulated day (`state::catalog::SEND_IDS_PER_DAY`); requests count in the default pool.
    route("/sends/id/create", Method::POST, "sends.id.create", Pool::Default),
    route(
        "/templates/email/create",
        Method::POST,
        "templates.email.create",
        Pool::Default,
    ),
    route(
        "/templates/email/update",
        Method::POST,
        "templates.email.update",
        Pool::Default,
    ),
    route(
        "/templates/email/info",
        Method::GET,
        "templates.email.info",
        Pool::Default,
    ),
    route(
        "/templates/email/list",
        Method::GET,
        "templates.email.list",
        Pool::Default,
    ),
];

/// The route of `path` (exact match; a trailing `/` is ignored).
pub fn find(path: &str) -> Option<&'static Route> {
    let path = if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    };
    ROUTES.iter().find(|r| r.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_listed_once_with_a_permission_named_after_it() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert!(ROUTES[i + 1..].iter().all(|o| o.path != r.path), "{} twice", r.path);
            let from_path = r.path.trim_start_matches('/').replace('/', ".");
            assert_eq!(r.permission, from_path, "{}", r.path);
        }
        assert_eq!(ROUTES.len(), 30);
    }

    #[test]
    fn find_matches_exact_paths_and_pools() {
        assert_eq!(find("/users/track").map(|r| r.pool), Some(Pool::UsersTrack));
        assert_eq!(find("/users/track/").map(|r| r.path), Some("/users/track"));
        assert_eq!(
            find("/campaigns/data_series").map(|r| r.pool),
            Some(Pool::CampaignsDataSeries)
        );
        assert!(find("/messages/send").is_some_and(|r| r.broadcast_pool));
        assert!(find("/users").is_none());
        assert!(find("/").is_none());
    }
}
