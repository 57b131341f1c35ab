//! Every Braze REST operation offerloop uses, with what the transport must know about it: method,
//! path, the API-key permission it needs, the rate-limit pool it draws from, and whether it sends
//! messages (and so must never be retried blindly).

use std::fmt;

/// HTTP method of an endpoint.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Method {
    /// Query-string parameters, no body.
    Get,
    /// JSON body.
    Post,
}

/// A Braze rate-limit pool: requests of every endpoint in one pool share one budget.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum RateLimitPool {
    /// The default pool, 250,000 requests per hour, shared by every endpoint not listed elsewhere.
    Default,
    /// `/users/track`: 3,000 requests per 3 seconds.
    UsersTrack,
    /// `/users/export/ids`: 250 requests per minute (new workspaces).
    UsersExportIds,
    /// `/campaigns/data_series`: 50,000 requests per minute.
    CampaignsDataSeries,
    /// `/sends/id/create`: 100 new send ids per day.
    SendsIdCreate,
}

impl RateLimitPool {
    /// Every pool.
    pub const ALL: [Self; 5] = [
        Self::Default,
        Self::UsersTrack,
        Self::UsersExportIds,
        Self::CampaignsDataSeries,
        Self::SendsIdCreate,
    ];

    /// Braze's documented default budget: `(requests, per seconds)`.
    pub fn documented_limit(self) -> (u32, u64) {
        match self {
            Self::Default => (250_000, 3_600),
            Self::UsersTrack => (3_000, 3),
            Self::UsersExportIds => (250, 60),
            Self::CampaignsDataSeries => (50_000, 60),
            Self::SendsIdCreate => (100, 86_400),
        }
    }
}

macro_rules! endpoints {
    ($( $(#[$doc:meta])* $variant:ident => ($method:ident, $path:literal, $permission:literal, $pool:ident, $sends:literal) ),* $(,)?) => {
        /// A Braze REST operation.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Endpoint {
            $( $(#[$doc])* $variant, )*
        }

        impl Endpoint {
            /// Every endpoint, in documentation order.
            pub const ALL: &'static [Endpoint] = &[$(Endpoint::$variant),*];

            /// The HTTP method.
            pub fn method(self) -> Method {
                match self { $(Endpoint::$variant => Method::$method,)* }
            }

            /// The path below the instance's base URL, e.g. `/users/track`.
            pub fn path(self) -> &'static str {
                match self { $(Endpoint::$variant => $path,)* }
            }

            /// The REST API key permission it needs, e.g. `users.track`.
            pub fn permission(self) -> &'static str {
                match self { $(Endpoint::$variant => $permission,)* }
            }

            /// The rate-limit pool it draws from.
            pub fn pool(self) -> RateLimitPool {
                match self { $(Endpoint::$variant => RateLimitPool::$pool,)* }
            }

            /// Whether it sends or schedules messages. Braze has no idempotency key for these, so the
            /// client never retries them after the request may have been received.
            pub fn sends_messages(self) -> bool {
                match self { $(Endpoint::$variant => $sends,)* }
            }
        }
    };
}

endpoints! {
    /// `POST /users/export/ids`.
    UsersExportIds => (Post, "/users/export/ids", "users.export.ids", UsersExportIds, false),
    /// `POST /users/export/segment`.
    UsersExportSegment => (Post, "/users/export/segment", "users.export.segment", Default, false),
    /// `POST /users/track`.
    UsersTrack => (Post, "/users/track", "users.track", UsersTrack, false),
    /// `POST /messages/send`.
    MessagesSend => (Post, "/messages/send", "messages.send", Default, true),
    /// `POST /messages/schedule/create`.
    MessagesScheduleCreate => (Post, "/messages/schedule/create", "messages.schedule.create", Default, true),
    /// `POST /campaigns/trigger/send`.
    CampaignsTriggerSend => (Post, "/campaigns/trigger/send", "campaigns.trigger.send", Default, true),
    /// `POST /campaigns/trigger/schedule/create`.
    CampaignsTriggerScheduleCreate => (Post, "/campaigns/trigger/schedule/create", "campaigns.trigger.schedule.create", Default, true),
    /// `POST /canvas/trigger/send`.
    CanvasTriggerSend => (Post, "/canvas/trigger/send", "canvas.trigger.send", Default, true),
    /// `POST /canvas/trigger/schedule/create`.
    CanvasTriggerScheduleCreate => (Post, "/canvas/trigger/schedule/create", "canvas.trigger.schedule.create", Default, true),
    /// `GET /campaigns/list`.
    CampaignsList => (Get, "/campaigns/list", "campaigns.list", Default, false),
    /// `GET /campaigns/details`.
    CampaignsDetails => (Get, "/campaigns/details", "campaigns.details", Default, false),
    /// `GET /campaigns/data_series`.
    CampaignsDataSeries => (Get, "/campaigns/data_series", "campaigns.data_series", CampaignsDataSeries, false),
    /// `GET /canvas/list`.
    CanvasList => (Get, "/canvas/list", "canvas.list", Default, false),
    /// `GET /canvas/details`.
    CanvasDetails => (Get, "/canvas/details", "canvas.details", Default, false),
    /// `GET /canvas/data_series`.
    CanvasDataSeries => (Get, "/canvas/data_series", "canvas.data_series", Default, false),
    /// `GET /segments/list`.
    SegmentsList => (Get, "/segments/list", "segments.list", Default, false),
    /// `GET /segments/details`.
    SegmentsDetails => (Get, "/segments/details", "segments.details", Default, false),
    /// `GET /segments/data_series`.
    SegmentsDataSeries => (Get, "/segments/data_series", "segments.data_series", Default, false),
    /// `GET /sends/data_series`.
    SendsDataSeries => (Get, "/sends/data_series", "sends.data_series", Default, false),
    /// `POST /sends/id/create`.
    SendsIdCreate => (Post, "/sends/id/create", "sends.id.create", SendsIdCreate, false),
    /// `POST /templates/email/create`.
    TemplatesEmailCreate => (Post, "/templates/email/create", "templates.email.create", Default, false),
    /// `POST /templates/email/update`.
    TemplatesEmailUpdate => (Post, "/templates/email/update", "templates.email.update", Default, false),
    /// `GET /templates/email/info`.
    TemplatesEmailInfo => (Get, "/templates/email/info", "templates.email.info", Default, false),
    /// `GET /templates/email/list`.
    TemplatesEmailList => (Get, "/templates/email/list", "templates.email.list", Default, false),
}

impl Endpoint {
    /// Whether repeating the request cannot change state twice: reads, and writes that set state to a
    /// value (template update). `/users/track` is not idempotent (events and purchases are counted
    /// again), nor is template creation (a second template) or send-id creation (the daily quota).
    pub fn is_idempotent(self) -> bool {
        self.method() == Method::Get
            || matches!(
                self,
                Self::UsersExportIds | Self::UsersExportSegment | Self::TemplatesEmailUpdate
            )
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = match self.method() {
            Method::Get => "GET",
            Method::Post => "POST",
        };
        write!(f, "{method} {}", self.path())
    }
}

/// A typed request: which endpoint it goes to and what comes back.
///
/// `GET` requests serialise as query-string parameters, `POST` requests as the JSON body.
pub trait Request: serde::Serialize + Send + Sync {
    /// The endpoint.
    const ENDPOINT: Endpoint;
    /// The success response.
    type Response: serde::de::DeserializeOwned + Send;

    /// The endpoint of this value; [`Request::ENDPOINT`] unless the type serves several endpoints.
    fn endpoint(&self) -> Endpoint {
        Self::ENDPOINT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_are_exactly_the_messaging_endpoints_and_never_idempotent() {
        for e in Endpoint::ALL {
            let messaging = e.path().starts_with("/messages/") || e.path().contains("/trigger/");
            assert_eq!(e.sends_messages(), messaging, "{e}");
            if e.sends_messages() {
                assert!(!e.is_idempotent(), "{e}");
            }
        }
        assert_eq!(Endpoint::UsersTrack.to_string(), "POST /users/track");
    }

    #[test]
    fn permissions_follow_the_path() {
        for e in Endpoint::ALL {
            let from_path = e.path().trim_start_matches('/').replace('/', ".");
            assert_eq!(e.permission(), from_path, "{e}");
        }
    }
}
