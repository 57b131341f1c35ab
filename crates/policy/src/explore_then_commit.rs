//! [`ExploreThenCommit`]: the classical A/B(/n) test — uniform exploration for a number of days, then
//! the global winner for everyone.
//!
//! # Phases
//! - **Explore**: every eligible joint action with probability `1 / n` (as [`crate::Uniform`]), for
//!   `explore_days` days ([`PolicySettings::explore_days`], [`DEFAULT_EXPLORE_DAYS`] when unset).
//! - **Commit**: the joint action with the best mean reward seen so far (ties: the lowest
//!   [`ActionId`]), for every customer who may receive it; a customer for whom the winner is ineligible
//!   (eligibility or rules) gets a uniformly random eligible action, as during exploration.
//!
//! # When the experiment started
//! [`Policy::decide`] takes `&self` and must not change the state (so decisions replay identically),
//! so the start is *learned*: it is the UTC day of the earliest `decided_at` in any feedback learned
//! so far (the first decision that was acted on). Before any feedback the policy explores (it has
//! nothing to commit to). A round explores while the UTC day of its `decided_at` is before
//! `start day + explore_days`, whatever its `round` number — calendar days, so a run a few minutes
//! earlier or later than the first does not shift the switch by a day. `explore_days = 0` commits as
//! soon as there is feedback.
//!
//! # What is learned
//! Per joint action, the number of rewards and their sum, from every feedback record (including
//! feedback of the exploration phase that arrives after the switch, which is why the winner is the
//! best mean *so far*, recomputed after each update, not frozen at the switch). The means are plain
//! averages: exploration is uniform, so they are unbiased during exploration. Nothing is forgotten —
//! a classical test — so the forgetting factor is not used.
//!
//! With the exploration floor `f` (with probability `f·n`, `n` eligible actions, a uniformly random
//! eligible action is played instead): `π(winner) = (1 − f·n) + f` and `f` for the
//! others when committed; exploration is uniform whatever the floor.
//!
//! [`PolicySettings::explore_days`]: offerloop_domain::usecase::PolicySettings::explore_days

use std::collections::BTreeMap;

use jiff::Timestamp;
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

/// Days of exploration when the use case does not set `explore_days`.
pub const DEFAULT_EXPLORE_DAYS: u32 = 7;

/// Stream id of the decision draw in [`customer_rng`].
const DECIDE_STREAM: u64 = 0;

/// Explore uniformly, then commit to the best joint action; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct ExploreThenCommit {
    setup: Setup,
    floor: Floor,
    state: EtcState,
    /// The best joint action of `state` (derived; recomputed after each update and on restore).
    winner: Option<ActionId>,
}

/// Count and sum of the rewards of one joint action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Tally {
    count: u64,
    sum: f64,
}

impl Tally {
    fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

/// The serialised state of [`ExploreThenCommit`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct EtcState {
    /// UTC day (since the Unix epoch) of the earliest decision seen in feedback.
    start_day: Option<i64>,
    /// Rewards per joint action, in id order.
    tallies: BTreeMap<ActionId, Tally>,
    updates: u64,
}

/// The UTC day of a timestamp, counted from the Unix epoch.
fn day_of(t: Timestamp) -> i64 {
    t.as_second().div_euclid(86_400)
}

impl ExploreThenCommit {
    /// A new test over `setup`, exploring for its `explore_days`.
    pub fn new(setup: Setup) -> Self {
        Self::from_state(setup, EtcState::default())
    }

    fn from_state(setup: Setup, state: EtcState) -> Self {
        let winner = best(&state.tallies);
        Self {
            floor: Floor::of(&setup),
            setup,
            state,
            winner,
        }
    }

    pub(crate) fn restore(setup: Setup, state: serde_json::Value) -> Result<Self> {
        let state =
            serde_json::from_value(state).map_err(|e| Error::Snapshot(format!("explore_then_commit state: {e}")))?;
        Ok(Self::from_state(setup, state))
    }

    /// The number of exploration days.
    pub fn explore_days(&self) -> u32 {
        self.setup.settings().explore_days.unwrap_or(DEFAULT_EXPLORE_DAYS)
    }

    /// Whether decisions of `round` still explore.
    pub fn exploring(&self, round: &DecisionRound) -> bool {
        match (self.state.start_day, self.winner) {
            (Some(start), Some(_)) => day_of(round.decided_at) < start.saturating_add(i64::from(self.explore_days())),
            _ => true,
        }
    }

    /// The joint action with the best mean reward so far (ties: the lowest id), if any was rewarded.
    pub fn winner(&self) -> Option<ActionId> {
        self.winner
    }

    /// The committed action for this customer in `round`: the winner when committing and eligible.
    fn target(&self, eligible: &Eligible<'_>, round: &DecisionRound) -> Option<ActionId> {
        if self.exploring(round) {
            return None;
        }
        self.winner.filter(|&a| eligible.contains_id(a))
    }

    fn base_probability(&self, target: Option<ActionId>, eligible: &Eligible<'_>, action: ActionId) -> f64 {
        match target {
            Some(winner) => f64::from(winner == action),
            None => 1.0 / eligible.count() as f64,
        }
    }
}

/// The id with the highest mean (the first, i.e. lowest id, among equals).
fn best(tallies: &BTreeMap<ActionId, Tally>) -> Option<ActionId> {
    let mut top: Option<(ActionId, f64)> = None;
    for (&id, tally) in tallies {
        if tally.count == 0 {
            continue;
        }
        let mean = tally.mean();
        if top.is_none_or(|(_, m)| mean > m) {
            top = Some((id, mean));
        }
    }
    top.map(|(id, _)| id)
}

impl Policy for ExploreThenCommit {
    fn model_version(&self) -> String {
        format!("explore_then_commit/{}", self.state.updates)
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
        let target = self.target(&eligible, round);
        let action = match target {
            Some(winner) => self.floor.choose(&eligible, &mut rng, |_| winner),
            // Uniform, floor or not: the floor's mixture of a uniform choice is the uniform choice.
            None => eligible.sample_uniform(&mut rng).0,
        };
        Ok(PolicyDecision {
            action,
            propensity: self
                .floor
                .probability(&eligible, self.base_probability(target, &eligible, action)),
            model_version: self.model_version(),
        })
    }

    fn decide_batch(&self, customers: &[Customer], round: &DecisionRound) -> Result<Vec<PolicyDecision>> {
        customers.par_iter().map(|c| self.decide(c, round)).collect()
    }

    fn action_probability(&self, customer: &Customer, action: ActionId, round: &DecisionRound) -> Result<f64> {
        check_features(customer, self.setup.schema())?;
        let eligible = Eligible::of(self.setup.space(), customer)?;
        if !eligible.contains_id(action) {
            return Ok(0.0);
        }
        let target = self.target(&eligible, round);
        Ok(self
            .floor
            .probability(&eligible, self.base_probability(target, &eligible, action)))
    }

    fn update(&mut self, feedback: &[Feedback]) -> Result<UpdateReport> {
        crate::validate_feedback(&self.setup, feedback)?;
        for f in feedback {
            let tally = self.state.tallies.entry(f.action).or_default();
            tally.count += 1;
            tally.sum += f.reward;
            let day = day_of(f.decided_at);
            self.state.start_day = Some(self.state.start_day.map_or(day, |s| s.min(day)));
        }
        self.state.updates += 1;
        self.winner = best(&self.state.tallies);
        Ok(UpdateReport {
            learned: feedback.len(),
            alerts: Vec::new(),
            model_version: self.model_version(),
        })
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::capture(Algorithm::ExploreThenCommit, self.setup.fingerprint(), &self.state)
    }

    /// Scores each option by the mean reward of every joint action that contains it (0 without data).
    fn explain(&self, customer: &Customer) -> Result<Explanation> {
        check_features(customer, self.setup.schema())?;
        let space = self.setup.space();
        let mask = space.eligibility_mask(&customer.features);
        let mut marginal: Vec<Vec<Tally>> = space
            .dimensions()
            .iter()
            .map(|d| vec![Tally::default(); d.options.len()])
            .collect();
        for (&id, tally) in &self.state.tallies {
            for (d, options) in marginal.iter_mut().enumerate() {
                if let Some(m) = options.get_mut(space.option_of(id, d)) {
                    m.count += tally.count;
                    m.sum += tally.sum;
                }
            }
        }
        Ok(Explanation::from_scores(self.model_version(), space, &mask, |d, o| {
            (marginal[d][o].mean(), Vec::new())
        }))
    }
}

#[cfg(test)]
mod tests {
    use offerloop_domain::JointAction;

    use super::*;
    use crate::floor::testkit::*;

    fn etc(floor: f64, explore_days: Option<u32>) -> (Setup, ExploreThenCommit) {
        let mut s = settings(11, floor, 1.0);
        s.explore_days = explore_days;
        let setup = small_setup(s, conversion(), None);
        (setup.clone(), ExploreThenCommit::new(setup))
    }

    /// One day of feedback: `per_action` records for every action a consenting customer may receive,
    /// rewarded `1` with the action's rate (deterministically: the first `rate · per_action` records).
    fn day_of_feedback(setup: &Setup, day: u64, rate: impl Fn(&JointAction) -> f64) -> Vec<Feedback> {
        let per_action = 20;
        let mut out = Vec::new();
        for (_, action) in setup.space().iter() {
            let wins = (rate(&action) * f64::from(per_action)).round() as u32;
            for k in 0..per_action {
                out.push(feedback(setup.space(), &action.0, f64::from(k < wins), day));
            }
        }
        out
    }

    fn rate(a: &JointAction) -> f64 {
        // pct10 by email is best (0.5); everything else 0.2.
        if a.0 == [1, 0] { 0.5 } else { 0.2 }
    }

    #[test]
    fn explores_uniformly_then_commits_to_the_winner() {
        let (setup, mut policy) = etc(0.0, Some(3));
        let winner = setup.space().encode(&JointAction(vec![1, 0])).unwrap();
        // Before any feedback: uniform.
        assert!(policy.exploring(&round(1000)));
        let dev = check_frequencies(&policy, setup.space(), &customers(20_000), &round(1000));
        println!("etc, exploring: max |frequency − propensity| = {dev:.5}");
        // Days 1000..=1002 explore; feedback of each day arrives that day.
        for day in 1000..1003 {
            assert!(policy.exploring(&round(day)), "day {day}");
            let dist = distribution(&policy, setup.space(), &customer(1, true), &round(day));
            assert!(dist.iter().all(|(_, p)| (p - 1.0 / 8.0).abs() < 1e-15));
            policy.update(&day_of_feedback(&setup, day, rate)).unwrap();
        }
        assert_eq!(policy.winner(), Some(winner));
        assert_eq!(policy.state.start_day, Some(1000));
        // Day 1003: committed.
        let r = round(1003);
        assert!(!policy.exploring(&r));
        let yes = customer(4, true);
        let d = policy.decide(&yes, &r).unwrap();
        assert_eq!((d.action, d.propensity), (winner, 1.0));
        // The winner (email) is eligible without consent too.
        assert_eq!(policy.decide(&customer(3, false), &r).unwrap().action, winner);
        let decisions = policy.decide_batch(&customers(1000), &r).unwrap();
        assert!(decisions.iter().all(|d| d.action == winner && d.propensity == 1.0));
    }

    #[test]
    fn committed_with_a_floor_and_ineligible_winner() {
        let (setup, mut policy) = etc(0.01, Some(1));
        // sms (only for consenting customers) wins.
        let sms = JointAction(vec![2, 1]);
        let winner = setup.space().encode(&sms).unwrap();
        policy
            .update(&day_of_feedback(&setup, 50, |a| if *a == sms { 0.9 } else { 0.1 }))
            .unwrap();
        let r = round(51);
        assert!(!policy.exploring(&r));
        let yes = customer(0, true);
        let p = policy.action_probability(&yes, winner, &r).unwrap();
        assert!((p - (1.0 - 0.08 + 0.01)).abs() < 1e-12);
        // Without consent the winner is ineligible: uniform over the other 5.
        let no = customer(0, false);
        let dist = distribution(&policy, setup.space(), &no, &r);
        assert_eq!(dist.len(), 5);
        assert!(dist.iter().all(|(_, p)| (p - 1.0 / 5.0).abs() < 1e-12));
        let dev = check_frequencies(&policy, setup.space(), &customers(20_000), &r);
        println!("etc, committed with floor 0.01: max |frequency − propensity| = {dev:.5}");
        // Still exploring on the start day.
        assert!(policy.exploring(&round(50)));
    }

    #[test]
    fn ties_go_to_the_lowest_id_and_default_is_seven_days() {
        let (setup, mut policy) = etc(0.0, None);
        assert_eq!(policy.explore_days(), DEFAULT_EXPLORE_DAYS);
        policy
            .update(&[
                feedback(setup.space(), &[2, 1], 1.0, 10),
                feedback(setup.space(), &[0, 1], 1.0, 12),
                feedback(setup.space(), &[1, 1], 1.0, 11),
                feedback(setup.space(), &[0, 0], 0.0, 11),
            ])
            .unwrap();
        assert_eq!(policy.winner(), setup.space().encode(&JointAction(vec![0, 1])).ok());
        assert!(policy.exploring(&round(16)));
        assert!(!policy.exploring(&round(17)));
    }

    #[test]
    fn bad_feedback_learns_nothing_and_snapshots_round_trip() {
        let (setup, mut policy) = etc(0.01, Some(2));
        policy.update(&day_of_feedback(&setup, 7, rate)).unwrap();
        let before = policy.snapshot();
        let good = feedback(setup.space(), &[0, 0], 1.0, 8);
        let mut excluded = good.clone();
        excluded.action = setup.space().encode(&JointAction(vec![2, 2])).unwrap();
        let mut long = good.clone();
        long.features.push(offerloop_domain::FeatureValue::Missing);
        for bad in [excluded, long] {
            assert!(matches!(
                policy.update(&[good.clone(), bad]),
                Err(Error::BadFeedback { index: 1, .. })
            ));
            assert_eq!(policy.snapshot(), before);
        }
        let json = serde_json::to_string(&policy.snapshot()).unwrap();
        let restored = crate::restore(setup.clone(), serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(restored.snapshot(), policy.snapshot());
        let cs = customers(500);
        for day in [8, 9, 10] {
            assert_eq!(
                restored.decide_batch(&cs, &round(day)).unwrap(),
                policy.decide_batch(&cs, &round(day)).unwrap()
            );
        }
        let explained = restored.explain(&customer(0, false)).unwrap();
        let offer = &explained.dimensions[0].options;
        // pct10 (one action at 0.5, two at 0.2) scores above none.
        assert!(offer[1].score > offer[0].score);
        assert!(!explained.dimensions[1].options[1].eligible);
    }

    #[test]
    fn winback_commits_and_respects_eligibility() {
        let mut use_case = winback();
        use_case.policy.explore_days = Some(2);
        let setup = Setup::from_use_case(&use_case).unwrap();
        let mut policy = ExploreThenCommit::new(setup.clone());
        let push = setup.space().dimension_index("channel").unwrap();
        // Push actions convert best; only opted-in customers may receive them.
        let mut batch = Vec::new();
        for (id, action) in setup.space().iter() {
            let reward = if action.option(push) == Some(2) { 0.3 } else { 0.1 } + 0.001 * (id.0 % 3) as f64;
            batch.push(Feedback {
                features: winback_customer(0).features,
                action: id,
                propensity: 1.0 / 64.0,
                reward,
                decided_at: round(300).decided_at,
                observed: 1.0,
            });
        }
        policy.update(&batch).unwrap();
        let winner = policy.winner().unwrap();
        assert_eq!(setup.space().option_of(winner, push), 2);
        let cs: Vec<_> = (0..20_000).map(winback_customer).collect();
        let dev = check_frequencies(&policy, setup.space(), &cs, &round(302));
        println!("etc, winback committed: max |frequency − propensity| = {dev:.5}");
        let opted_in = policy.decide(&winback_customer(0), &round(302)).unwrap();
        assert!(opted_in.propensity > 0.8);
    }
}
