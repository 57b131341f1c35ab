//! The [`Policy`] trait and what passes through it: customers in, [`PolicyDecision`]s with their
//! propensity out, [`Feedback`] back in.
//!
//! Every decision is reproducible: its randomness comes from a generator seeded by the policy's seed,
//! the [`DecisionRound`] and the customer id ([`crate::sampling::customer_rng`]), so a batch decided in
//! parallel, or a run repeated after a crash, chooses the same actions with the same propensities.

use jiff::Timestamp;
use offerloop_domain::{ActionId, Customer, FeatureValue};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::drift::DriftAlert;
use crate::sampling::Eligible;
use crate::snapshot::Snapshot;

/// What is shared by every decision of one batch: when it is made and which round it belongs to.
///
/// Two calls with the same round decide identically (same random draws); the engine uses one round per
/// use case and day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRound {
    /// When the decisions are made.
    pub decided_at: Timestamp,
    /// A number that distinguishes rounds (e.g. the day index); mixed into every random draw.
    pub round: u64,
}

impl DecisionRound {
    /// A round at `decided_at`, numbered by the whole days since the Unix epoch.
    pub fn at(decided_at: Timestamp) -> Self {
        let round = u64::try_from(decided_at.as_second().div_euclid(86_400)).unwrap_or(0);
        Self { decided_at, round }
    }
}

/// One customer's decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyDecision {
    /// The chosen joint action.
    pub action: ActionId,
    /// The probability with which the policy chose it, given the customer (exact where closed-form,
    /// otherwise the documented estimate of the policy; never below the exploration floor).
    pub propensity: f64,
    /// The model version that decided (algorithm and number of updates), for the decision log.
    pub model_version: String,
}

/// One logged interaction to learn from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// The customer's feature values at decision time, in schema order.
    pub features: Vec<FeatureValue>,
    /// The joint action that was taken.
    pub action: ActionId,
    /// The probability with which the logging policy took it.
    pub propensity: f64,
    /// The reward (the use case's metric, net of option costs where the metric subtracts them). For a
    /// reward whose window is still open, the unbiased estimate of the final reward
    /// ([`crate::delay::corrected_reward`]).
    pub reward: f64,
    /// When the decision was made.
    pub decided_at: Timestamp,
    /// The share `F(e)` of the final reward's accrual observed when the reward was read, in `(0, 1]`: 1
    /// for a final reward (the default), less for an estimate from an open window, which is learned
    /// with this weight (see [`crate::delay`]). Only policies whose [`Policy::learns_partial`] is true
    /// accept less than 1.
    #[serde(default = "one")]
    pub observed: f64,
}

fn one() -> f64 {
    1.0
}

/// What one [`Policy::update`] did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UpdateReport {
    /// Feedback records learned from.
    pub learned: usize,
    /// Drift alerts raised by this batch (empty when drift detection is off or nothing changed).
    pub alerts: Vec<DriftAlert>,
    /// The model version after the update.
    pub model_version: String,
}

/// Why a customer got their decision: the score of every option of every dimension, and the
/// features that contributed most to each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The model version explained.
    pub model_version: String,
    /// One entry per dimension, in dimension order.
    pub dimensions: Vec<DimensionExplanation>,
}

impl Explanation {
    /// An explanation of every option of every dimension of `space`, in declaration order: `score(d, o)`
    /// gives option `o` of dimension `d` its score and feature contributions, and `mask` its eligibility.
    pub fn from_scores(
        model_version: String,
        space: &offerloop_domain::ActionSpace,
        mask: &offerloop_domain::EligibilityMask,
        mut score: impl FnMut(usize, usize) -> (f64, Vec<(String, f64)>),
    ) -> Self {
        let dimensions = space
            .dimensions()
            .iter()
            .enumerate()
            .map(|(d, dim)| DimensionExplanation {
                dimension: dim.name.to_string(),
                options: dim
                    .options
                    .iter()
                    .enumerate()
                    .map(|(o, opt)| {
                        let (score, contributions) = score(d, o);
                        OptionScore {
                            option: opt.id.to_string(),
                            eligible: mask.allows(d, o),
                            score,
                            contributions,
                        }
                    })
                    .collect(),
            })
            .collect();
        Self {
            model_version,
            dimensions,
        }
    }
}

/// The options of one dimension, scored for one customer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DimensionExplanation {
    /// The dimension's name.
    pub dimension: String,
    /// Every option, in declaration order.
    pub options: Vec<OptionScore>,
}

/// The score of one option for one customer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptionScore {
    /// The option's id.
    pub option: String,
    /// Whether the customer may receive it.
    pub eligible: bool,
    /// The model's score of the option (on the model's scale: a log-odds contribution for logistic
    /// models, a reward contribution for linear ones, a posterior mean for non-contextual ones).
    pub score: f64,
    /// The largest feature contributions to the score (`encoded feature`, `weight × value`), largest
    /// magnitude first. Empty for non-contextual policies.
    pub contributions: Vec<(String, f64)>,
}

/// A policy: decides one joint action per customer, logs its propensity, and learns from feedback.
///
/// Object-safe: the engine holds a `Box<dyn Policy>` built by [`crate::build`] or
/// [`crate::restore`].
pub trait Policy: Send + Sync {
    /// The model version: the algorithm and how many updates it has seen (`lin_ts/17`).
    fn model_version(&self) -> String;

    /// Decides for one customer.
    ///
    /// # Errors
    /// [`crate::Error::FeatureCount`] when the features do not match the schema,
    /// [`crate::Error::NoEligibleAction`] when nothing is allowed for this customer.
    fn decide(&self, customer: &Customer, round: &DecisionRound) -> Result<PolicyDecision>;

    /// Decides for a batch, in parallel across cores; the result is in input order and equal to
    /// calling [`Policy::decide`] on each customer.
    ///
    /// # Errors
    /// As [`Policy::decide`], for the first customer that fails.
    fn decide_batch(&self, customers: &[Customer], round: &DecisionRound) -> Result<Vec<PolicyDecision>>;

    /// The probability that [`Policy::decide`] in `round` chooses `action` for `customer` (0 for an
    /// action the customer may not receive). Off-policy evaluation of this policy uses it.
    ///
    /// # Errors
    /// As [`Policy::decide`].
    fn action_probability(&self, customer: &Customer, action: ActionId, round: &DecisionRound) -> Result<f64>;

    /// The probability of every joint action in `eligible` (the customer's eligible actions) in
    /// `round`, in id order: what the direct method of off-policy evaluation sums over. The default
    /// asks [`Policy::action_probability`] once per action; policies that score every action at once
    /// override it.
    ///
    /// # Errors
    /// As [`Policy::decide`]; [`Error::TooManyActions`](crate::Error::TooManyActions) when `eligible`
    /// is not [enumerable](Eligible::enumerable).
    fn action_distribution(
        &self,
        customer: &Customer,
        eligible: &Eligible<'_>,
        round: &DecisionRound,
    ) -> Result<Vec<(ActionId, f64)>> {
        ensure_enumerable(customer, eligible)?;
        eligible
            .iter()
            .map(|(id, _)| Ok((id, self.action_probability(customer, id, round)?)))
            .collect()
    }

    /// Learns from a batch of logged feedback.
    ///
    /// # Errors
    /// [`crate::Error::BadFeedback`] when a record does not fit the action space or schema, or has an
    /// observed share below 1 and the policy does not [learn partial rewards](Policy::learns_partial);
    /// then nothing of the batch is learned.
    fn update(&mut self, feedback: &[Feedback]) -> Result<UpdateReport>;

    /// Whether [`Policy::update`] accepts rewards from windows still open ([`Feedback::observed`] below
    /// 1), learning each with the weight of the share observed. False unless a policy says otherwise;
    /// the contextual policies do.
    fn learns_partial(&self) -> bool {
        false
    }

    /// Judges, without learning them, the final rewards of decisions already learned from partial
    /// rewards: the drift detectors only trust final rewards (a partial one is corrected by a delay
    /// model that is itself re-estimated as windows close), and a decision is learned only once, so
    /// its final reward comes back here. Returns the alerts raised (none without drift detection; the
    /// default does nothing).
    ///
    /// # Errors
    /// [`crate::Error::BadFeedback`] when a record does not fit the action space or schema, or is not
    /// final (observed share below 1).
    fn monitor(&mut self, finals: &[Feedback]) -> Result<Vec<DriftAlert>> {
        let _ = finals;
        Ok(Vec::new())
    }

    /// A versioned, serialisable copy of the whole state; [`crate::restore`] rebuilds an identical
    /// policy from it.
    fn snapshot(&self) -> Snapshot;

    /// Explains the scores behind a customer's decision.
    ///
    /// # Errors
    /// As [`Policy::decide`].
    fn explain(&self, customer: &Customer) -> Result<Explanation>;
}

/// [`Error::TooManyActions`](crate::Error::TooManyActions) unless `eligible` can be listed.
pub(crate) fn ensure_enumerable(customer: &Customer, eligible: &Eligible<'_>) -> Result<()> {
    if eligible.enumerable() {
        Ok(())
    } else {
        Err(crate::Error::TooManyActions {
            customer: customer.id.to_string(),
            count: eligible.count(),
            limit: crate::sampling::ENUMERATION_LIMIT,
        })
    }
}
