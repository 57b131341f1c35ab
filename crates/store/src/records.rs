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

/// Who a batch is sent to: the Braze endpoint and object its request names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum BatchTarget {
    /// `/campaigns/trigger/send` of this campaign.
    Campaign(String),
    /// `/campaigns/trigger/schedule/create` of this campaign.
    CampaignSchedule(String),
    /// `/canvas/trigger/send` of this canvas.
    Canvas(String),
    /// `/canvas/trigger/schedule/create` of this canvas.
    CanvasSchedule(String),
    /// `/users/track` (profile attributes).
    UsersTrack,
}

impl BatchTarget {
    /// Its stored kind name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Campaign(_) => "campaign",
            Self::CampaignSchedule(_) => "campaign_schedule",
            Self::Canvas(_) => "canvas",
            Self::CanvasSchedule(_) => "canvas_schedule",
            Self::UsersTrack => "users_track",
        }
    }

    /// The campaign or canvas id (`None` for `/users/track`).
    pub fn object_id(&self) -> Option<&str> {
        match self {
            Self::Campaign(id) | Self::CampaignSchedule(id) | Self::Canvas(id) | Self::CanvasSchedule(id) => Some(id),
            Self::UsersTrack => None,
        }
    }

    /// The target of a stored kind and id, `None` when they do not name one.
    pub fn from_parts(kind: &str, id: Option<String>) -> Option<Self> {
        Some(match (kind, id) {
            ("campaign", Some(id)) => Self::Campaign(id),
            ("campaign_schedule", Some(id)) => Self::CampaignSchedule(id),
            ("canvas", Some(id)) => Self::Canvas(id),
            ("canvas_schedule", Some(id)) => Self::CanvasSchedule(id),
            ("users_track", None) => Self::UsersTrack,
            _ => return None,
        })
    }

    /// Whether it sends a message (every target but `/users/track`).
    pub fn is_message(&self) -> bool {
        !matches!(self, Self::UsersTrack)
    }
}

impl std::fmt::Display for BatchTarget {
    /// For people: `campaign abc`, `canvas schedule xyz`, `users.track`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Campaign(id) => write!(f, "campaign {id}"),
            Self::CampaignSchedule(id) => write!(f, "campaign schedule {id}"),
            Self::Canvas(id) => write!(f, "canvas {id}"),
            Self::CanvasSchedule(id) => write!(f, "canvas schedule {id}"),
            Self::UsersTrack => f.write_str("users.track"),
        }
    }
}

/// A move of a batch in the send ledger ([`crate::Store::mark_batch`]): the new state and what is
/// known about it. `detail` is for people only; what the engine acts on is typed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMark {
    /// The new state.
    pub state: BatchState,
    /// `dispatch_id`/`schedule_id` once sent, or the error, for people.
    pub detail: Option<String>,
    /// For [`BatchState::Failed`]: waiting and retrying may succeed (a 429, a refused connection);
    /// `false` when the request itself was refused (a 401, a 400).
    pub retryable: bool,
    /// For [`BatchState::Sent`]: "sent" by a dry run, which wrote the batch to a file and sent nothing.
    pub dry_run: bool,
}

impl BatchMark {
    /// The request is (being) sent.
    pub fn sending() -> Self {
        Self::to(BatchState::Sending, None)
    }

    /// Braze accepted it (`detail`: its dispatch or schedule id).
    pub fn sent(detail: Option<String>) -> Self {
        Self::to(BatchState::Sent, detail)
    }

    /// A dry run wrote it instead of sending it.
    pub fn dry_run(detail: Option<String>) -> Self {
        Self {
            dry_run: true,
            ..Self::to(BatchState::Sent, detail)
        }
    }

    /// Certainly rejected; `retryable` when waiting may help.
    pub fn failed(error: impl Into<String>, retryable: bool) -> Self {
        Self {
            retryable,
            ..Self::to(BatchState::Failed, Some(error.into()))
        }
    }

    /// Maybe applied: never resent automatically.
    pub fn unknown(error: impl Into<String>) -> Self {
        Self::to(BatchState::Unknown, Some(error.into()))
    }

    fn to(state: BatchState, detail: Option<String>) -> Self {
        Self {
            state,
            detail,
            retryable: false,
            dry_run: false,
        }
    }
}

/// One batch of the send ledger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchRecord {
    /// Deterministic id (same run, target, schedule and recipients → same id).
    pub id: String,
    /// The run.
    pub run_id: i64,
    /// What it targets.
    pub target: BatchTarget,
    /// The decisions it carries.
    pub decision_ids: Vec<String>,
    /// The exact request to send, as JSON text (so a resumed run sends the same request).
    pub request: String,
    /// Its state.
    pub state: BatchState,
    /// `dispatch_id`/`schedule_id` once sent, or the error: for people only.
    pub detail: Option<String>,
    /// A failed batch that may be retried automatically ([`BatchMark::retryable`]).
    pub retryable: bool,
    /// Written by a dry run, not sent ([`BatchMark::dry_run`]).
    pub dry_run: bool,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A batch's id and fate, without its payload ([`crate::Store::batch_states`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchStatus {
    /// The batch.
    pub id: String,
    /// What it targets.
    pub target: BatchTarget,
    /// Its state.
    pub state: BatchState,
    /// `dispatch_id`/`schedule_id` once sent, or the error: for people only.
    pub detail: Option<String>,
    /// A failed batch that may be retried automatically.
    pub retryable: bool,
    /// Written by a dry run, not sent.
    pub dry_run: bool,
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
