//! [`Uniform`]: every eligible joint action with equal probability — the random control.

use offerloop_domain::usecase::Algorithm;
use offerloop_domain::{ActionId, Customer};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::policy::{DecisionRound, Explanation, Feedback, Policy, PolicyDecision, UpdateReport};
use crate::sampling::{Eligible, check_features, customer_rng};
use crate::setup::Setup;
use crate::snapshot::Snapshot;
use crate::{Error, Result};

/// Stream id of the decision draw in [`customer_rng`].
const DECIDE_STREAM: u64 = 0;

/// Chooses uniformly among the customer's eligible joint actions; the propensity is exactly
/// `1 / eligible count`, computed without enumerating.
#[derive(Debug, Clone)]
pub struct Uniform {
    setup: Setup,
    state: UniformState,
}

/// The serialised state of [`Uniform`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct UniformState {
    updates: u64,
}

impl Uniform {
    /// A uniform policy over `setup`'s action space.
    pub fn new(setup: Setup) -> Self {
        Self {
            setup,
            state: UniformState::default(),
        }
    }

    pub(crate) fn restore(setup: Setup, state: serde_json::Value) -> Result<Self> {
        let state = serde_json::from_value(state).map_err(|e| Error::Snapshot(format!("uniform state: {e}")))?;
        Ok(Self { setup, state })
    }
}

impl Policy for Uniform {
    fn model_version(&self) -> String {
        format!("uniform/{}", self.state.updates)
    }

    fn decide(&self, customer: &Customer, round: &DecisionRound) -> Result<PolicyDecision> {
        check_features(customer, self.setup.schema())?;
        let eligible = Eligible::of(self.setup.space(), customer)?;
        let mut rng = customer_rng(
            self.setup.settings().seed,
            round.round,
            DECIDE_STREAM,
            customer.id.as_str(),
        );
        let (action, _) = eligible.sample_uniform(&mut rng);
        Ok(PolicyDecision {
            action,
            propensity: 1.0 / eligible.count() as f64,
            model_version: self.model_version(),
        })
    }

    fn decide_batch(&self, customers: &[Customer], round: &DecisionRound) -> Result<Vec<PolicyDecision>> {
        customers.par_iter().map(|c| self.decide(c, round)).collect()
    }

    fn action_probability(&self, customer: &Customer, action: ActionId, _round: &DecisionRound) -> Result<f64> {
        check_features(customer, self.setup.schema())?;
        let eligible = Eligible::of(self.setup.space(), customer)?;
        Ok(if eligible.contains_id(action) {
            1.0 / eligible.count() as f64
        } else {
            0.0
        })
    }

    fn update(&mut self, feedback: &[Feedback]) -> Result<UpdateReport> {
        crate::validate_feedback(&self.setup, feedback)?;
        self.state.updates += 1;
        Ok(UpdateReport {
            learned: feedback.len(),
            alerts: Vec::new(),
            model_version: self.model_version(),
        })
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::capture(Algorithm::Uniform, self.setup.fingerprint(), &self.state)
    }

    fn explain(&self, customer: &Customer) -> Result<Explanation> {
        check_features(customer, self.setup.schema())?;
        let mask = self.setup.space().eligibility_mask(&customer.features);
        Ok(Explanation::from_scores(
            self.model_version(),
            self.setup.space(),
            &mask,
            |_, _| (0.0, Vec::new()),
        ))
    }
}
