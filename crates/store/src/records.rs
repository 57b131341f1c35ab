//! The records the [`crate::Store`] reads and writes (beside the domain's `Decision`, `Outcome` and
//! `Reward`).

use jiff::Timestamp;
use jiff::civil::Date;
use offerloop_domain::Decision;
use serde::{Deserialize, Serialize};

/// How far a run got. Phases only move forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunPhase {
    /// Created.
    Started,
    /// The audience is stored.
    Audience,
    /// Outcomes collected and rewards computed.
    Outcomes,
    /// The policy learned and its snapshot is stored.
    Learned,
    /// Every decision is stored.
    Decided,
    /// Every batch has a fate (sent, failed or unknown).
    Activated,
    /// The summary is written.
    Done,
}

/// One run of a use case on a date.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Store id.
    pub id: i64,
    /// Use case name.
    pub use_case: String,
    /// The run's date (in the use case's time zone).
    pub date: Date,
    /// The last completed phase.
    pub phase: RunPhase,
    /// Created.
    pub started_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// The summary, once done.
    pub summary: Option<serde_json::Value>,
}

/// One customer of a run's audience: the features used for the decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AudienceRow {
    /// `external_id`.
    pub customer_id: String,
    /// The customer's features as the policy saw them: JSON text (of the engine's feature values and
    /// profile counters), stored as given. Text rather than a `serde_json::Value` tree keeps a
    /// million-customer audience in a few hundred MiB.
    pub features: String,
    /// The customer's IANA time zone, when exported.
    pub time_zone: Option<String>,
}

/// The fate of a send batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    /// Recorded, not sent yet: safe to send.
    Planned,
    /// The request is (being) sent: after a crash in this state the fate is unknown.
    Sending,
    /// Braze accepted it.
    Sent,
    /// Certainly rejected (a 4xx before processing, or a transport error before sending): may be retried.
    Failed,
    /// Maybe applied (timeout, connection lost after sending, 5xx after the request left): never resent
    /// automatically; reported.
    Unknown,
}

/// One batch of the send ledger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchRecord {
    /// Deterministic id (same run, target, schedule and recipients → same id).
    pub id: String,
    /// The run.
    pub run_id: i64,
    /// What it targets, for people (`campaign:<id>`, `canvas:<id>`, `users.track`, ...).
    pub target: String,
    /// The decisions it carries.
    pub decision_ids: Vec<String>,
    /// The exact request to send, as JSON text (so a resumed run sends the same request).
    pub request: String,
    /// Its state.
    pub state: BatchState,
    /// `dispatch_id`/`schedule_id` once sent, or the error.
    pub detail: Option<String>,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A batch's id and fate, without its payload ([`crate::Store::batch_states`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchStatus {
    /// The batch.
    pub id: String,
    /// Its state.
    pub state: BatchState,
    /// `dispatch_id`/`schedule_id` once sent, or the error.
    pub detail: Option<String>,
}

/// What became of a message that did not simply reach the customer, as the engine found out
/// ([`crate::Store::record_deliveries`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Its message batch was certainly rejected by Braze: nothing was sent.
    Rejected,
    /// Its schedule reached Braze after the send time: Braze skips recipients whose local time has
    /// passed.
    Late,
    /// The message-event feed shows no event of its campaign or canvas for the customer within the
    /// grace period after its send time: Braze never sent it.
    NotSent,
    /// Braze sent it but the channel did not reach the customer (a bounce, a delivery failure, an
    /// abort).
    Bounced,
}

impl DeliveryStatus {
    /// Whether the message never went out for a reason that says nothing about the customer's
    /// response to the action (rejected, late, not sent): such a decision is not learned from. A
    /// bounce is learned: the channel not reaching the customer is a consequence of choosing it.
    pub fn never_sent(self) -> bool {
        !matches!(self, Self::Bounced)
    }

    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rejected => "rejected",
            Self::Late => "late",
            Self::NotSent => "not_sent",
            Self::Bounced => "bounced",
        }
    }

    /// The status of a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Rejected, Self::Late, Self::NotSent, Self::Bounced]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// One decision's [`DeliveryStatus`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// The decision.
    pub decision_id: String,
    /// What became of its message.
    pub status: DeliveryStatus,
    /// When the engine found out.
    pub noted_at: Timestamp,
}

/// A final reward ready to learn from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeedbackRow {
    /// The decision.
    pub decision: Decision,
    /// Its final reward value.
    pub reward: f64,
    /// The features the decision was made with: the run's audience row's JSON text (`null` when the
    /// run has no row for the customer).
    pub features: String,
}

/// A stored model snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// Use case.
    pub use_case: String,
    /// The policy's model version.
    pub version: String,
    /// The snapshot (opaque to the store).
    pub snapshot: serde_json::Value,
    /// Saved at.
    pub saved_at: Timestamp,
}

/// A drift alert as stored (the policy's alert, without depending on the policy crate).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftAlertRecord {
    /// The dimension whose option changed, when attributed.
    pub dimension: Option<String>,
    /// The option.
    pub option: Option<String>,
    /// When it was detected.
    pub detected_at: Timestamp,
    /// The size of the change.
    pub magnitude: f64,
    /// The run that raised it.
    pub run_id: Option<i64>,
}
