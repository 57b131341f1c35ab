//! [`Fixed`]: always the business-as-usual joint action — the "no experiment" baseline.
//!
//! # Decision
//! The policy plays the use case's business-as-usual (BAU) joint action ([`Setup::business_as_usual`])
//! with base probability 1. When the use case has no BAU action (its control is "no message"), or a
//! customer may not receive it (an eligibility rule removes one of its options for them, or an exclusion
//! rule forbids it), the policy falls back to a **uniformly random eligible action** for that customer,
//! with base probability `1 / n` each: a documented, exactly-logged choice rather than an error, so a
//! run never stops on one ineligible customer.
//!
//! With the exploration floor `f` (with probability `f·n`, `n` eligible actions, a uniformly random
//! eligible action is played instead) the logged propensities are exact:
//! `π(BAU) = (1 − f·n) + f`, and `f` for every other eligible action.
//!
//! # Learning
//! Nothing is learned: [`Policy::update`] validates the batch (a bad batch is refused) and counts it for
//! the model version (`fixed/<updates>`).

use offerloop_domain::usecase::Algorithm;
use offerloop_domain::{ActionId, Customer};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::floor::Floor;
use crate::policy::{DecisionRound, Explanation, Feedback, Policy, PolicyDecision, UpdateReport};
use crate::sampling::{Eligible, check_features, customer_rng};
use crate::setup::Setup;
use crate::snapshot::Snapshot;
use crate::{Error, Result};

/// Stream id of the decision draw in [`customer_rng`].
const DECIDE_STREAM: u64 = 0;

/// Always the business-as-usual joint action; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Fixed {
    setup: Setup,
    floor: Floor,
    /// The BAU action's id, when the use case has one that encodes in its space.
    bau: Option<ActionId>,
    state: FixedState,
}

/// The serialised state of [`Fixed`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct FixedState {
    updates: u64,
}

impl Fixed {
    /// A fixed policy over `setup`, playing its business-as-usual action.
    pub fn new(setup: Setup) -> Self {
        Self::from_state(setup, FixedState::default())
    }

    fn from_state(setup: Setup, state: FixedState) -> Self {
        let bau = setup.business_as_usual().and_then(|a| setup.space().encode(a).ok());
        Self {
            floor: Floor::of(&setup),
            bau,
            setup,
            state,
        }
    }

    pub(crate) fn restore(setup: Setup, state: serde_json::Value) -> Result<Self> {
        let state = serde_json::from_value(state).map_err(|e| Error::Snapshot(format!("fixed state: {e}")))?;
        Ok(Self::from_state(setup, state))
    }

    /// The business-as-usual action when this customer may receive it.
    fn target(&self, eligible: &Eligible<'_>) -> Option<ActionId> {
        self.bau.filter(|&a| eligible.contains_id(a))
    }

    /// The base probability (before the floor) of an eligible action.
    fn base_probability(&self, eligible: &Eligible<'_>, action: ActionId) -> f64 {
        match self.target(eligible) {
            Some(bau) => f64::from(bau == action),
            None => 1.0 / eligible.count() as f64,
        }
    }
}

impl Policy for Fixed {
    fn model_version(&self) -> String {
        format!("fixed/{}", self.state.updates)
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
        let target = self.target(&eligible);
        let action = self.floor.choose(&eligible, &mut rng, |rng| match target {
            Some(bau) => bau,
            None => eligible.sample_uniform(rng).0,
        });
        Ok(PolicyDecision {
            action,
            propensity: self
                .floor
                .probability(&eligible, self.base_probability(&eligible, action)),
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
            self.floor
                .probability(&eligible, self.base_probability(&eligible, action))
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
        Snapshot::capture(Algorithm::Fixed, self.setup.fingerprint(), &self.state)
    }

    /// Scores 1 for the business-as-usual option of each dimension and 0 for the others (all 0 when the
    /// use case has no BAU action).
    fn explain(&self, customer: &Customer) -> Result<Explanation> {
        check_features(customer, self.setup.schema())?;
        let space = self.setup.space();
        let mask = space.eligibility_mask(&customer.features);
        let bau = self.setup.business_as_usual();
        Ok(Explanation::from_scores(self.model_version(), space, &mask, |d, o| {
            (f64::from(bau.and_then(|a| a.option(d)) == Some(o)), Vec::new())
        }))
    }
}

#[cfg(test)]
mod tests {
    use offerloop_domain::JointAction;

    use super::*;
    use crate::floor::testkit::*;

    fn bau() -> JointAction {
        // pct10 by sms: only consenting customers may receive it.
        JointAction(vec![1, 1])
    }

    #[test]
    fn plays_bau_when_eligible_and_uniform_otherwise() {
        let setup = small_setup(settings(3, 0.0, 1.0), conversion(), Some(bau()));
        let policy = Fixed::new(setup.clone());
        let bau_id = setup.space().encode(&bau()).unwrap();
        let r = round(100);
        let yes = customer(1, true);
        let d = policy.decide(&yes, &r).unwrap();
        assert_eq!((d.action, d.propensity), (bau_id, 1.0));
        assert_eq!(d.model_version, "fixed/0");
        // Without consent BAU (sms) is ineligible: uniform over the 5 eligible actions.
        let no = customer(2, false);
        let dist = distribution(&policy, setup.space(), &no, &r);
        assert_eq!(dist.len(), 5);
        assert!(dist.iter().all(|(_, p)| (p - 1.0 / 5.0).abs() < 1e-15));
        assert_eq!(policy.action_probability(&no, bau_id, &r).unwrap(), 0.0);
        let dev = check_frequencies(&policy, setup.space(), &customers(20_000), &r);
        println!("fixed, no floor: max |frequency − propensity| = {dev:.5}");
    }

    #[test]
    fn floor_mixes_exactly() {
        let setup = small_setup(settings(3, 0.02, 1.0), conversion(), Some(bau()));
        let policy = Fixed::new(setup.clone());
        let bau_id = setup.space().encode(&bau()).unwrap();
        let r = round(100);
        let yes = customer(1, true);
        let p = policy.action_probability(&yes, bau_id, &r).unwrap();
        assert!((p - (1.0 - 0.02 * 8.0 + 0.02)).abs() < 1e-12);
        let dev = check_frequencies(&policy, setup.space(), &customers(20_000), &r);
        println!("fixed, floor 0.02: max |frequency − propensity| = {dev:.5}");
        assert!(dev < 0.01);
    }

    #[test]
    fn no_bau_is_uniform_and_decisions_are_deterministic() {
        let setup = small_setup(settings(3, 0.0, 1.0), conversion(), None);
        let policy = Fixed::new(setup.clone());
        let cs = customers(500);
        let r = round(5);
        let a = policy.decide_batch(&cs, &r).unwrap();
        let b = Fixed::new(setup.clone()).decide_batch(&cs, &r).unwrap();
        assert_eq!(a, b);
        let sequential: Vec<_> = cs.iter().map(|c| policy.decide(c, &r).unwrap()).collect();
        assert_eq!(a, sequential);
        check_frequencies(&policy, setup.space(), &customers(20_000), &r);
    }

    #[test]
    fn winback_bau_respects_eligibility_and_rules() {
        let use_case = winback();
        let setup = Setup::from_use_case(&use_case).unwrap();
        let policy = Fixed::new(setup.clone());
        let bau = setup.space().encode(setup.business_as_usual().unwrap()).unwrap();
        let r = round(20_000);
        let floor = use_case.policy.exploration_floor;
        for i in 0..6 {
            let c = winback_customer(i);
            let n = Eligible::of(setup.space(), &c).unwrap().count() as f64;
            let p = policy.action_probability(&c, bau, &r).unwrap();
            assert!((p - (1.0 - floor * n + floor)).abs() < 1e-12);
        }
        let cs: Vec<_> = (0..20_000).map(winback_customer).collect();
        let dev = check_frequencies(&policy, setup.space(), &cs, &r);
        println!("fixed, winback: max |frequency − propensity| = {dev:.5}");
        let explained = policy.explain(&winback_customer(1)).unwrap();
        assert_eq!(explained.dimensions.len(), 4);
        assert_eq!(explained.dimensions[0].options[1].score, 1.0); // pct10
        assert_eq!(explained.dimensions[0].options[0].score, 0.0);
        assert!(!explained.dimensions[1].options[2].eligible); // push, not opted in
    }

    #[test]
    fn bad_feedback_is_refused_and_snapshot_round_trips() {
        let setup = small_setup(settings(3, 0.01, 1.0), conversion(), Some(bau()));
        let mut policy = Fixed::new(setup.clone());
        let good = feedback(setup.space(), &[1, 1], 1.0, 3);
        policy.update(std::slice::from_ref(&good)).unwrap();
        let before = policy.snapshot();
        let mut excluded = good.clone();
        excluded.action = setup.space().encode(&JointAction(vec![2, 2])).unwrap();
        let mut short = good.clone();
        short.features.clear();
        for bad in [excluded, short] {
            assert!(matches!(
                policy.update(&[good.clone(), bad]),
                Err(Error::BadFeedback { index: 1, .. })
            ));
            assert_eq!(policy.snapshot(), before);
        }
        let restored = crate::restore(setup.clone(), policy.snapshot()).unwrap();
        assert_eq!(restored.model_version(), "fixed/1");
        let cs = customers(300);
        assert_eq!(
            restored.decide_batch(&cs, &round(9)).unwrap(),
            policy.decide_batch(&cs, &round(9)).unwrap()
        );
    }
}
