//! What flows through a daily run after the decision: [`Decision`]s, the [`Outcome`]s observed after
//! them, and the [`Reward`]s the success metric turns those into.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::action::ActionId;
use crate::holdout::Group;
use crate::ids::{CustomerId, Probability};

/// One customer's decision in one run.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Decision {
    /// Unique id of the decision (stable: derived from run and customer by the engine).
    pub id: String,
    /// The use case's name.
    pub use_case: String,
    /// The customer.
    pub customer_id: CustomerId,
    /// When the decision was made.
    pub decided_at: Timestamp,
    /// Control, random control or treatment.
    pub group: Group,
    /// The joint action chosen (for control: the business-as-usual action).
    pub action: ActionId,
    /// The probability with which this action was chosen for this customer, at this moment, under the
    /// group's policy (1 for a deterministic control).
    pub propensity: Probability,
    /// The policy and model version that decided.
    pub policy_version: String,
    /// When the message is planned to go out, if it is scheduled.
    pub planned_send_at: Option<Timestamp>,
    /// The cost of the chosen options (sum over dimensions), for metrics that subtract it.
    pub cost: f64,
}

/// What kind of thing happened.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutcomeKind {
    /// A Braze custom event.
    CustomEvent {
        /// Event name.
        name: String,
    },
    /// A purchase.
    Purchase {
        /// Product id.
        product_id: String,
    },
    /// The customer unsubscribed (a guardrail signal).
    Unsubscribe {
        /// From which channel, when known.
        channel: Option<String>,
    },
}

/// Something a customer did, observed after a decision.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Outcome {
    /// The customer.
    pub customer_id: CustomerId,
    /// What happened.
    pub kind: OutcomeKind,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// Its value: the price × quantity of a purchase, the configured property of a custom event, or 0.
    pub value: f64,
    /// Key that identifies the same outcome seen twice (e.g. in two successive exports).
    pub dedupe_key: String,
}

/// Whether a reward can still change.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardStatus {
    /// The attribution window is still open; the value may grow.
    Pending,
    /// The window has closed; the value is final and may be learned from.
    Final,
}

/// The reward of one decision under the use case's success metric.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Reward {
    /// The decision rewarded.
    pub decision_id: String,
    /// The reward value.
    pub value: f64,
    /// Pending or final.
    pub status: RewardStatus,
    /// How many outcomes were attributed to the decision.
    pub attributed_outcomes: usize,
}
