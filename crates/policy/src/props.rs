//! Property tests of what every policy promises off-policy evaluation and the report: whatever it has
//! learned, the probabilities of a customer's eligible actions add up to one, each is in [0, 1], an
//! ineligible action has none, and every decision logs a propensity in (0, 1] equal to
//! `action_probability` of the action it chose.

use offerloop_domain::usecase::Algorithm;
use offerloop_domain::{JointAction, MetricKind};
use proptest::prelude::*;
use proptest::test_runner::{RngSeed, TestCaseError};

use crate::floor::testkit::{conversion, customer, feedback, revenue, round, settings, small_setup};
use crate::sampling::Eligible;
use crate::{Feedback, build_with};

/// One learned record of the small space: offer, channel, a reward in the metric's range, a day.
type Record = (u32, u32, f64, u64);

fn record() -> impl Strategy<Value = Record> {
    (0..3u32, 0..2u32, 0.0..=1.0f64, 0..60u64)
}

fn check(
    algorithm: Algorithm,
    binary: bool,
    floor: f64,
    learned: &[Record],
    asked: &[(usize, bool, u64)],
) -> Result<(), TestCaseError> {
    let metric: MetricKind = if binary { conversion() } else { revenue() };
    let setup = small_setup(settings(11, floor, 1.0), metric, None);
    let mut policy = build_with(setup.clone(), algorithm)
        .map_err(|e| TestCaseError::fail(format!("{}: {e}", algorithm.as_str())))?;
    let records: Vec<Feedback> = learned
        .iter()
        .map(|&(o, c, u, day)| {
            let reward = if binary { u.round() } else { u * 100.0 };
            let mut f = feedback(setup.space(), &[0, 0], reward, day);
            f.action = setup.space().encode(&JointAction(vec![o, c])).unwrap_or(f.action);
            f
        })
        .collect();
    if !records.is_empty() {
        policy
            .update(&records)
            .map_err(|e| TestCaseError::fail(format!("{}: {e}", algorithm.as_str())))?;
    }
    let space = setup.space();
    for &(i, consent, day) in asked {
        let who = customer(i, consent);
        let at = round(60 + day);
        let eligible = Eligible::of(space, &who).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let distribution = policy
            .action_distribution(&who, &eligible, &at)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let total: f64 = distribution.iter().map(|(_, p)| p).sum();
        prop_assert!((total - 1.0).abs() < 1e-9, "{}: sums to {total}", algorithm.as_str());
        prop_assert!(distribution.iter().all(|(_, p)| (0.0..=1.0).contains(p)));
        let decision = policy
            .decide(&who, &at)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let p = decision.propensity;
        prop_assert!(p > 0.0 && p <= 1.0, "{}: propensity {p}", algorithm.as_str());
        prop_assert!(eligible.iter().any(|(a, _)| a == decision.action), "an eligible action");
        let again = policy
            .action_probability(&who, decision.action, &at)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(
            (again - p).abs() < 1e-9,
            "{}: logged {p}, probability {again}",
            algorithm.as_str()
        );
        for (id, _) in space.iter() {
            if !eligible.iter().any(|(a, _)| a == id) {
                let none = policy
                    .action_probability(&who, id, &at)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(none, 0.0, "{}: an ineligible action", algorithm.as_str());
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        rng_seed: RngSeed::Fixed(29),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_policy_logs_propensities_that_match_a_distribution_summing_to_one(
        algorithm in prop::sample::select(Algorithm::ALL.to_vec()),
        binary in any::<bool>(),
        floor in prop_oneof![Just(0.0), Just(0.02), Just(0.1)],
        learned in prop::collection::vec(record(), 0..40),
        asked in prop::collection::vec((0..50usize, any::<bool>(), 0..30u64), 1..6),
    ) {
        check(algorithm, binary, floor, &learned, &asked)?;
    }
}
