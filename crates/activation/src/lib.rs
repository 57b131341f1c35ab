//! offerloop-activation: decisions become Braze requests, behind the [`Activator`] trait.
//!
//! The channel option of a decision selects the API-triggered campaign or canvas; the other
//! dimensions' options become per-recipient `trigger_properties` (campaigns) or `context` (canvases)
//! — `{"<dimension>": "<option id>", ...the option's properties}` — and, when the use case asks for
//! it, profile attributes through `/users/track` (only those that changed since
//! [`ActivationRequest::previous`]); send-time and day-of-week options become a schedule
//! in the customer's local time, or an immediate send; a frequency "skip" option sends nothing.
//! Recipients sharing a target and a schedule are batched 50 to a request, profile attributes 75 to a
//! `/users/track` request (planned first). The planning rules in detail (which keys a recipient gets,
//! how day-of-week and send-time options become schedules, and the one rule for a local time that
//! has already passed: the send moves to the next occurrence of that local time, never to a time
//! Braze would skip) are in [`plan`]'s documentation.
//!
//! The send ledger is the engine's job (it records each [`PlannedBatch`] before calling
//! [`Activator::execute`] and its [`BatchOutcome`] after); this crate guarantees that a batch is a
//! self-contained, deterministic request (same decisions → same batch id and bytes) and that
//! [`Activator::execute`] classifies every failure as certainly-rejected or unknown, never retrying
//! a request that may have been applied.
//!
//! [`BrazeActivator`] talks to Braze through `offerloop_braze::BrazeApi`; [`DryRunActivator`] writes
//! the batches as JSONL instead.

mod braze;
mod dry_run;
mod error;
pub mod plan;
pub mod preflight;
pub mod templates;

use async_trait::async_trait;
use jiff::civil::Date;
use offerloop_domain::{CustomerId, UseCase};
use serde::{Deserialize, Serialize};

pub use braze::BrazeActivator;
pub use dry_run::DryRunActivator;
pub use error::{Error, Result};
pub use plan::{DEFAULT_DAY_SEND_TIME, Scheduler, SendSlot};

// The use case's `[braze] track_objects_per_request` is validated against the domain's copy of Braze's
// `/users/track` limit (the domain depends on no other crate): the two must stay the same number.
const _: () = assert!(
    offerloop_domain::usecase::MAX_TRACK_OBJECTS as usize == offerloop_braze::limits::MAX_TRACK_OBJECTS,
    "the domain's MAX_TRACK_OBJECTS differs from Braze's /users/track limit"
);

/// One treated or control decision to activate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivationRequest {
    /// The decision's id (carried into the batch, for the ledger).
    pub decision_id: String,
    /// The customer (`external_user_id`).
    pub customer_id: CustomerId,
    /// One option per dimension, as indices into the use case's dimensions' options (the domain's
    /// `JointAction` of the decided `ActionId`).
    pub options: Vec<u32>,
    /// The customer's IANA time zone, when known (local send times); else the use case's.
    pub time_zone: Option<String>,
    /// With `activation.write_profile_attributes`: the options (same shape as `options`) of the
    /// customer's previous decision whose profile attributes are known to have been written, if any.
    /// Only the attributes of the dimensions whose option differs are written (none at all when every
    /// option is the same); `None` writes every dimension. Naming options whose write may not have
    /// landed leaves a stale attribute on the profile, so when in doubt, leave it `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Vec<u32>>,
    /// The earliest instant the message may be scheduled at: a send-time or day-of-week schedule
    /// whose local time falls before it moves to the next occurrence of that local time (the next
    /// day, or the next week for a weekday option), since Braze silently skips recipients whose local
    /// time has passed ([`plan::Scheduler::slot`], the [`plan`] module's docs). The engine passes the
    /// decision's `planned_send_at`, which the same rule computed from the decision time plus a
    /// safety margin. `None` places the schedule on the run date whatever the time (Braze decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<jiff::Timestamp>,
}

/// What kind of Braze request a batch is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BatchKind {
    /// `POST /campaigns/trigger/send`.
    CampaignSend {
        /// Campaign.
        campaign_id: String,
    },
    /// `POST /campaigns/trigger/schedule/create`.
    CampaignSchedule {
        /// Campaign.
        campaign_id: String,
    },
    /// `POST /canvas/trigger/send`.
    CanvasSend {
        /// Canvas.
        canvas_id: String,
    },
    /// `POST /canvas/trigger/schedule/create`.
    CanvasSchedule {
        /// Canvas.
        canvas_id: String,
    },
    /// `POST /users/track` (recommendation attributes, at most 75 objects).
    TrackAttributes,
}

impl BatchKind {
    /// Whether sending the batch twice has the same effect as sending it once. Only
    /// [`BatchKind::TrackAttributes`] is: it sets attributes to absolute values (no events, no
    /// increments), so a batch whose fate is [`BatchOutcome::Unknown`] may be resent without harm.
    /// Message sends and schedules are never idempotent in Braze.
    pub fn is_idempotent(&self) -> bool {
        matches!(self, Self::TrackAttributes)
    }
}

/// One request to make, deterministic in its decisions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedBatch {
    /// Deterministic id: a hash of the run date, kind, schedule and decision ids.
    pub id: String,
    /// What it is.
    pub kind: BatchKind,
    /// The decisions it carries (in request order). A decision is in at most one message batch
    /// (send or schedule) and, with `activation.write_profile_attributes`, also in at most one
    /// [`BatchKind::TrackAttributes`] batch (none when no attribute changed since
    /// [`ActivationRequest::previous`]): whether a decision's message went out is the fate of its
    /// message batch, whether its attributes were written the fate of its track batch.
    pub decision_ids: Vec<String>,
    /// The request body as JSON text, exactly as it will be sent (text, not a `serde_json::Value`
    /// tree: a day's batches of a million recipients stay a few hundred MiB).
    pub request: String,
}

impl PlannedBatch {
    /// The request body parsed (for inspection and tests; sending reads it into the client's typed
    /// request instead).
    ///
    /// # Errors
    /// When `request` is not JSON (a batch built by hand).
    pub fn request_json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_str(&self.request)
    }
}

/// What became of one executed batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fate", rename_all = "snake_case")]
pub enum BatchOutcome {
    /// Accepted: the `dispatch_id` or `schedule_id`, and Braze's `notice` when it sent nothing (a
    /// paused campaign).
    Sent {
        /// `dispatch_id` / `schedule_id`.
        id: Option<String>,
        /// Braze's notice, if any.
        notice: Option<String>,
    },
    /// Certainly not applied (rejected before processing, or never sent): may be retried.
    Rejected {
        /// Why (Braze's message, endpoint, permission...).
        error: String,
        /// Whether retrying can help (429, transport error before sending) or not (400, 403).
        retryable: bool,
    },
    /// Not sent: a dry run wrote the batch to a file instead.
    Written {
        /// The file.
        to: std::path::PathBuf,
    },
    /// Maybe applied: never resend automatically.
    Unknown {
        /// Why.
        error: String,
    },
}

/// Turns decisions into Braze requests and executes them. Object-safe: `Arc<dyn Activator>`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Activator: Send + Sync + std::fmt::Debug {
    /// The batches for `requests` of `use_case` on `date` (local schedules are computed for that date).
    /// Pure and deterministic: the same inputs give the same batches, ids and bytes. A decision whose
    /// frequency option is "skip" gets no batch; profile attributes are written as deltas against
    /// [`ActivationRequest::previous`].
    fn plan(&self, use_case: &UseCase, date: Date, requests: &[ActivationRequest]) -> Result<Vec<PlannedBatch>>;
    /// Sends one batch, once. Never retries a request that may have been applied.
    async fn execute(&self, batch: &PlannedBatch) -> BatchOutcome;
}
