//! Braze's documented per-request limits, each defined once: the activation layer batches to them, the
//! engine exports ids files in requests of them, and the request types' documentation points here.
//!
//! Every number is Braze's own, from its API documentation (the page named on each constant). The
//! simulator (`offerloop-sim`) keeps its own copy on purpose, so that it checks the client's contract
//! instead of sharing its mistakes; the contract suite (`tests/e2e/braze_contract.rs`) holds the two to
//! the same values.

/// Most listed users in one message request: `recipients`, or `external_user_ids` and
/// `user_aliases` combined, of `/messages/send`, `/campaigns/trigger/send`, `/canvas/trigger/send`
/// and their `schedule/create` variants. Braze answers more with 400 "The max number of external_ids
/// and aliases per request was exceeded".
///
/// Source: <https://www.braze.com/docs/api/endpoints/messaging/send_messages/post_send_triggered_campaigns/>
/// (one request reaches up to 50 specific `external_ids`, each with its own message parameters).
pub const MAX_RECIPIENTS: usize = 50;

/// Most objects in each array (`attributes`, `events`, `purchases`) of one `/users/track` request,
/// so at most three times this many updates in one request. Braze answers more with 400 "Max Input
/// Length Exceeded". Some contracts allow fewer updates per request (the "Monthly Active Users CY
/// 24-25" package: 50 across all three arrays); a use case lowers its batches with
/// `[braze] track_objects_per_request`.
///
/// Source: <https://www.braze.com/docs/api/endpoints/user_data/post_user_track/> (up to 75 events, 75
/// attribute updates and 75 purchases per request).
pub const MAX_TRACK_OBJECTS: usize = 75;

/// Most users in one `/users/export/ids` request (`external_ids` and `user_aliases` combined).
///
/// Source: <https://www.braze.com/docs/api/endpoints/export/user_data/post_users_identifier/> (up to
/// 50 `external_ids` or `user_aliases` in a single request).
pub const MAX_EXPORT_IDS: usize = 50;

/// Largest serialised `trigger_properties` / `context` (`canvas_entry_properties`) object, in bytes.
/// Braze documents a maximum of 50 KB without saying which kilobyte; 50,000 bytes is under it
/// either way.
///
/// Source: <https://www.braze.com/docs/api/objects_filters/trigger_properties_object/>.
pub const MAX_PROPERTIES_BYTES: usize = 50_000;

/// Items per page of `/campaigns/list`, `/canvas/list` and `/segments/list` (fixed; the last page is
/// shorter).
///
/// Source: <https://www.braze.com/docs/api/endpoints/export/campaigns/get_campaigns/> (campaigns
/// are returned in groups of 100; the Canvas and segment listings page the same way).
pub const LIST_PAGE_SIZE: usize = 100;

/// The largest `limit` of `/templates/email/list`.
///
/// Source: <https://www.braze.com/docs/api/endpoints/templates/email_templates/get_list_email_templates/>
/// (`limit` defaults to 100, at most 1000).
pub const TEMPLATE_LIST_MAX_LIMIT: u32 = 1000;

/// The `limit` of `/templates/email/list` when none is given (same source).
pub const TEMPLATE_LIST_DEFAULT_LIMIT: u32 = 100;
