//! Property tests of the action space: encoding round trips, counting without enumeration, iteration
//! order and eligibility.

use std::collections::BTreeMap;

use offerloop_domain::action::{EligibilityRule, ExclusionRule};
use offerloop_domain::predicate::{Literal, Predicate};
use offerloop_domain::{
    ActionId, ActionSpace, Dimension, DimensionKind, FeatureValue, Identifier, JointAction, OptionSpec,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

fn id(s: &str) -> Identifier {
    Identifier::new(s).expect("test identifiers are valid")
}

fn dims(shape: &[usize]) -> Vec<Dimension> {
    shape
        .iter()
        .enumerate()
        .map(|(d, &n)| {
            let options = (0..n).map(|o| OptionSpec::new(id(&format!("o{o}")))).collect();
            Dimension::new(id(&format!("d{d}")), DimensionKind::Custom, options).expect("non-empty, unique")
        })
        .collect()
}

/// A rule drawn as: for each dimension, maybe a non-empty subset of its options.
fn rule_strategy(shape: Vec<usize>) -> impl Strategy<Value = RawRule> {
    shape
        .into_iter()
        .map(|n| proptest::option::weighted(0.5, proptest::sample::subsequence((0..n).collect::<Vec<_>>(), 1..=n)))
        .collect::<Vec<_>>()
}

fn to_rule(i: usize, raw: &[Option<Vec<usize>>]) -> Option<ExclusionRule> {
    let conditions: BTreeMap<Identifier, Vec<Identifier>> = raw
        .iter()
        .enumerate()
        .filter_map(|(d, set)| {
            set.as_ref()
                .map(|os| (id(&format!("d{d}")), os.iter().map(|o| id(&format!("o{o}"))).collect()))
        })
        .collect();
    (!conditions.is_empty()).then(|| ExclusionRule {
        name: format!("r{i}"),
        conditions,
    })
}

/// A rule as drawn: per dimension, maybe the option indices it constrains.
type RawRule = Vec<Option<Vec<usize>>>;

fn space_strategy() -> impl Strategy<Value = (Vec<usize>, Vec<RawRule>)> {
    proptest::collection::vec(1usize..5, 1..5).prop_flat_map(|shape| {
        let rules = proptest::collection::vec(rule_strategy(shape.clone()), 0..5);
        (Just(shape), rules)
    })
}

/// Brute force: every index vector in lexicographic order.
fn all_actions(shape: &[usize]) -> Vec<JointAction> {
    let mut out = vec![JointAction(vec![])];
    for &n in shape {
        out = out
            .into_iter()
            .flat_map(|a| {
                (0..n as u32).map(move |o| {
                    let mut v = a.0.clone();
                    v.push(o);
                    JointAction(v)
                })
            })
            .collect();
    }
    out
}

fn check_count_matches_iteration(shape: &[usize], raw_rules: &[RawRule]) -> Result<(), TestCaseError> {
    let rules: Vec<ExclusionRule> = raw_rules
        .iter()
        .enumerate()
        .filter_map(|(i, r)| to_rule(i, r))
        .collect();
    let space = match ActionSpace::new(dims(shape), rules.clone(), vec![]) {
        Ok(space) => space,
        // Rules may forbid everything; then the brute force must agree that nothing is left.
        Err(offerloop_domain::Error::EmptyActionSpace) => {
            let probe = ActionSpace::new(dims(shape), vec![], vec![]).expect("no rules");
            let left = all_actions(shape)
                .iter()
                .filter(|a| !rules_match(&probe, &rules, a))
                .count();
            prop_assert_eq!(left, 0);
            return Ok(());
        }
        Err(e) => return Err(TestCaseError::fail(e.to_string())),
    };
    let iterated: Vec<(ActionId, JointAction)> = space.iter().collect();
    prop_assert_eq!(space.count(), iterated.len() as u64);
    // Brute force agrees on which actions are allowed, and iteration is in increasing id order.
    let expected: Vec<JointAction> = all_actions(shape)
        .into_iter()
        .filter(|a| !space.is_excluded(a))
        .collect();
    prop_assert_eq!(iterated.iter().map(|(_, a)| a.clone()).collect::<Vec<_>>(), expected);
    prop_assert!(iterated.windows(2).all(|w| w[0].0 < w[1].0));
    for (id, action) in &iterated {
        prop_assert_eq!(
            &space.decode(*id).map_err(|e| TestCaseError::fail(e.to_string()))?,
            action
        );
    }
    Ok(())
}

fn rules_match(space: &ActionSpace, rules: &[ExclusionRule], action: &JointAction) -> bool {
    rules.iter().any(|r| {
        r.conditions.iter().all(|(dim, options)| {
            let d = space.dimension_index(dim.as_str()).expect("rule dims exist");
            let chosen = &space.dimensions()[d].options[action.0[d] as usize].id;
            options.contains(chosen)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn action_ids_round_trip_for_any_shape(
        shape in proptest::collection::vec(1usize..40, 1..12),
        seed in any::<u64>(),
    ) {
        let space = match ActionSpace::new(dims(&shape), vec![], vec![]) {
            Ok(space) => space,
            Err(offerloop_domain::Error::ActionSpaceTooLarge) => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        };
        let expected_size: u128 = shape.iter().map(|&n| n as u128).product();
        prop_assert_eq!(u128::from(space.size()), expected_size);
        let id = ActionId(seed % space.size());
        let action = space.decode(id).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(action.0.len(), shape.len());
        for (d, &o) in action.0.iter().enumerate() {
            prop_assert!((o as usize) < shape[d]);
            prop_assert_eq!(space.option_of(id, d), o as usize);
        }
        prop_assert_eq!(space.encode(&action).map_err(|e| TestCaseError::fail(e.to_string()))?, id);
    }

    #[test]
    fn count_equals_iteration_without_rules(shape in proptest::collection::vec(1usize..6, 1..5)) {
        check_count_matches_iteration(&shape, &[])?;
    }

    #[test]
    fn count_equals_iteration_with_rules((shape, rules) in space_strategy()) {
        check_count_matches_iteration(&shape, &rules)?;
    }

    #[test]
    fn eligibility_masks_are_counted_exactly(
        (shape, rules) in space_strategy(),
        gated in proptest::collection::vec((0usize..5, 0usize..5), 0..4),
        flags in proptest::collection::vec(any::<bool>(), 4),
    ) {
        let rules: Vec<ExclusionRule> = rules.iter().enumerate().filter_map(|(i, r)| to_rule(i, r)).collect();
        // Option (d, o) is gated on boolean feature i being true.
        let gates: Vec<EligibilityRule> = gated
            .iter()
            .enumerate()
            .filter(|(_, (d, o))| *d < shape.len() && *o < shape[*d])
            .map(|(i, (d, o))| EligibilityRule {
                dimension: id(&format!("d{d}")),
                option: id(&format!("o{o}")),
                when: Predicate::Eq { feature: i, value: Literal::Boolean(true) },
            })
            .collect();
        let Ok(space) = ActionSpace::new(dims(&shape), rules, gates) else { return Ok(()) };
        let features: Vec<FeatureValue> = flags.iter().map(|&b| FeatureValue::Boolean(b)).collect();
        let mask = space.eligibility_mask(&features);
        let brute = all_actions(&shape).iter().filter(|a| space.is_allowed(a, &mask)).count() as u64;
        prop_assert_eq!(space.count_for(&mask), brute);
        prop_assert_eq!(space.iter_for(mask).count() as u64, brute);
    }
}

#[test]
fn ten_dimensions_of_ten_options_never_enumerate() {
    let space = ActionSpace::new(dims(&[10; 10]), vec![], vec![]).expect("10^10 fits a u64");
    assert_eq!(space.size(), 10_u64.pow(10));
    assert_eq!(space.count(), 10_u64.pow(10));
    // The iterator is lazy: the first thousand come without touching the rest.
    assert_eq!(space.iter().take(1000).count(), 1000);
    assert_eq!(space.iter().nth(999).map(|(id, _)| id), Some(ActionId(999)));
}
