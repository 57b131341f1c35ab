//! The contextual policies through the public API: exact propensities, determinism, snapshots,
//! eligibility, learning, and a 10^10-action space.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::Timestamp;
use offerloop_domain::config::parse_use_case;
use offerloop_domain::usecase::Algorithm;
use offerloop_domain::{ActionId, Customer, CustomerId, FeatureValue, UseCase};
use offerloop_policy::{DecisionRound, Feedback, Policy, Setup, build_with, restore};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};

/// Features: `x` (number) and `tier` (category). Dimensions given as option counts.
fn use_case(dims: &[usize], metric: &str, extra: &str) -> UseCase {
    let mut toml = format!(
        "[use_case]\nname = \"t\"\nkind = \"custom\"\ntime_zone = \"UTC\"\n\n\
         [braze]\nendpoint = \"https://rest.iad-01.braze.com\"\napi_key_env = \"K\"\n\n\
         [audience]\nsegment_id = \"s\"\n\n[holdout]\nsalt = \"t\"\ncontrol_fraction = 0.0\ncontrol = \"no_message\"\n\n[activation]\ncampaign_id = \"camp-1\"\n\n{metric}\n\n[policy]\n{extra}\n\n\
         [[feature]]\nname = \"x\"\nfield = \"custom_attributes.x\"\ntype = \"number\"\n\n\
         [[feature]]\nname = \"tier\"\nfield = \"custom_attributes.tier\"\ntype = \"category\"\n\n"
    );
    for (d, &k) in dims.iter().enumerate() {
        writeln!(toml, "[[dimension]]\nname = \"d{d}\"\nkind = \"custom\"\n").unwrap();
        for o in 0..k {
            writeln!(toml, "  [[dimension.options]]\n  id = \"o{o}\"\n").unwrap();
        }
    }
    parse_use_case(&toml, "t.toml").unwrap_or_else(|e| panic!("{e}"))
}

const CONVERSION: &str = "[metric]\nkind = \"conversion\"\nevent = \"purchase\"\nattribution_window_days = 7";

fn customer(id: &str, x: f64, tier: &str) -> Customer {
    Customer {
        id: CustomerId::new(id).unwrap(),
        features: vec![FeatureValue::Number(x), FeatureValue::Category(tier.into())],
        time_zone: None,
    }
}

fn round(day: u64) -> DecisionRound {
    DecisionRound {
        decided_at: Timestamp::from_second(day as i64 * 86_400).unwrap(),
        round: day,
    }
}

/// Simulated world: in dimension 0, option 1 converts when x > 0 and option 0 when x < 0; in
/// dimension 1, option 2 always helps.
fn truth(x: f64, a: &[u32]) -> f64 {
    let eta = -1.5 + if a[0] == 1 { 1.2 * x } else { -1.2 * x } + if a[1] == 2 { 0.7 } else { 0.0 };
    1.0 / (1.0 + (-eta).exp())
}

fn train(policy: &mut dyn Policy, uc: &UseCase, days: u64, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for day in 0..days {
        let customers: Vec<Customer> = (0..2000)
            .map(|i| customer(&format!("d{day}c{i}"), rng.random::<f64>() * 4.0 - 2.0, "gold"))
            .collect();
        let decisions = policy.decide_batch(&customers, &round(day)).unwrap();
        let feedback: Vec<Feedback> = customers
            .iter()
            .zip(&decisions)
            .map(|(c, d)| {
                let a = uc.actions.decode(d.action).unwrap();
                let x = c.features[0].as_number().unwrap();
                Feedback {
                    features: c.features.clone(),
                    action: d.action,
                    propensity: d.propensity,
                    reward: f64::from(u8::from(rng.random::<f64>() < truth(x, &a.0))),
                    decided_at: round(day).decided_at,
                    observed: 1.0,
                }
            })
            .collect();
        policy.update(&feedback).unwrap();
    }
}

#[test]
fn logged_propensities_match_empirical_choice_frequencies() {
    let uc = use_case(&[2, 3], CONVERSION, "exploration_floor = 0.02");
    let mut policy = build_with(Setup::from_use_case(&uc).unwrap(), Algorithm::LogisticTs).unwrap();
    train(policy.as_mut(), &uc, 2, 1);
    // 30,000 customers with identical features: each decision is a draw from the same distribution.
    let n = 30_000;
    let customers: Vec<Customer> = (0..n).map(|i| customer(&format!("p{i}"), 0.3, "gold")).collect();
    let decisions = policy.decide_batch(&customers, &round(9)).unwrap();
    let mut logged: BTreeMap<ActionId, f64> = BTreeMap::new();
    let mut counts: BTreeMap<ActionId, f64> = BTreeMap::new();
    for d in &decisions {
        *counts.entry(d.action).or_default() += 1.0;
        let p = logged.entry(d.action).or_insert(d.propensity);
        assert_eq!(*p, d.propensity, "one propensity per action for identical customers");
    }
    // The propensities of every eligible action sum to 1.
    let total: f64 = uc
        .actions
        .iter()
        .map(|(id, _)| policy.action_probability(&customers[0], id, &round(9)).unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-9, "sum {total}");
    // Chi-square goodness of fit of the choices to the logged propensities (5 degrees of freedom).
    let chi2: f64 = uc
        .actions
        .iter()
        .map(|(id, _)| {
            let expected = policy.action_probability(&customers[0], id, &round(9)).unwrap() * n as f64;
            let observed = counts.get(&id).copied().unwrap_or(0.0);
            (observed - expected).powi(2) / expected
        })
        .sum();
    // 99.9th percentile of chi-square with 5 degrees of freedom is 20.5.
    assert!(
        chi2 < 20.5,
        "chi-square {chi2}: choices do not follow the logged propensities"
    );
    // The floor holds.
    assert!(logged.values().all(|&p| p >= 0.02 - 1e-12));
    // The whole distribution at once agrees with the per-action probabilities.
    let eligible = offerloop_policy::sampling::Eligible::of(&uc.actions, &customers[0]).unwrap();
    let distribution = policy.action_distribution(&customers[0], &eligible, &round(9)).unwrap();
    assert_eq!(distribution.len(), 6);
    for (id, p) in distribution {
        assert_eq!(p, policy.action_probability(&customers[0], id, &round(9)).unwrap());
    }
}

#[test]
fn decisions_are_deterministic_and_batch_equals_single() {
    let uc = use_case(&[2, 3], CONVERSION, "seed = 7");
    let mut policy = build_with(Setup::from_use_case(&uc).unwrap(), Algorithm::LogisticTs).unwrap();
    train(policy.as_mut(), &uc, 1, 2);
    let customers: Vec<Customer> = (0..200)
        .map(|i| customer(&format!("c{i}"), f64::from(i) / 50.0 - 2.0, "gold"))
        .collect();
    let batch = policy.decide_batch(&customers, &round(3)).unwrap();
    let single: Vec<_> = customers.iter().map(|c| policy.decide(c, &round(3)).unwrap()).collect();
    assert_eq!(batch, single);
    assert_eq!(batch, policy.decide_batch(&customers, &round(3)).unwrap());
    assert_ne!(
        batch,
        policy.decide_batch(&customers, &round(4)).unwrap(),
        "another round draws anew"
    );
}

#[test]
fn snapshot_restores_an_identical_policy_through_json() {
    for algorithm in [Algorithm::LogisticTs, Algorithm::LinTs, Algorithm::LinUcb] {
        let uc = use_case(&[2, 3], CONVERSION, "");
        let setup = Setup::from_use_case(&uc).unwrap();
        let mut policy = build_with(setup.clone(), algorithm).unwrap();
        train(policy.as_mut(), &uc, 2, 3);
        let text = serde_json::to_string(&policy.snapshot()).unwrap();
        let restored = restore(setup, serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(
            restored.snapshot(),
            policy.snapshot(),
            "{algorithm:?}: state round-trips exactly"
        );
        let customers: Vec<Customer> = (0..50)
            .map(|i| customer(&format!("c{i}"), f64::from(i) / 10.0 - 2.5, "new"))
            .collect();
        assert_eq!(
            restored.decide_batch(&customers, &round(5)).unwrap(),
            policy.decide_batch(&customers, &round(5)).unwrap(),
            "{algorithm:?}"
        );
        assert_eq!(restored.model_version(), policy.model_version());
    }
}

#[test]
fn a_snapshot_does_not_restore_onto_another_action_space() {
    let uc = use_case(&[2, 3], CONVERSION, "");
    let other = use_case(&[2, 4], CONVERSION, "");
    let policy = build_with(Setup::from_use_case(&uc).unwrap(), Algorithm::LogisticTs).unwrap();
    let err = restore(Setup::from_use_case(&other).unwrap(), policy.snapshot())
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("another action space"), "{err}");
}

#[test]
fn learns_the_best_action_per_context() {
    let uc = use_case(&[2, 3], CONVERSION, "exploration_floor = 0.005");
    for algorithm in [Algorithm::LogisticTs, Algorithm::LinTs, Algorithm::LinUcb] {
        let mut policy = build_with(Setup::from_use_case(&uc).unwrap(), algorithm).unwrap();
        train(policy.as_mut(), &uc, 8, 4);
        let check = |x: f64, want: [u32; 2]| {
            let customers: Vec<Customer> = (0..400).map(|i| customer(&format!("q{i}"), x, "gold")).collect();
            let decisions = policy.decide_batch(&customers, &round(20)).unwrap();
            let hits = decisions
                .iter()
                .filter(|d| uc.actions.decode(d.action).unwrap().0 == want)
                .count();
            assert!(
                hits > 300,
                "{algorithm:?}: x = {x}: best action chosen {hits}/400 times"
            );
        };
        check(1.5, [1, 2]);
        check(-1.5, [0, 2]);
    }
}

#[test]
fn bad_feedback_is_refused_and_nothing_is_learned() {
    let uc = use_case(&[2, 3], CONVERSION, "");
    let mut policy = build_with(Setup::from_use_case(&uc).unwrap(), Algorithm::LogisticTs).unwrap();
    let before = policy.snapshot();
    let good = Feedback {
        features: customer("a", 1.0, "gold").features,
        action: ActionId(1),
        propensity: 0.5,
        reward: 1.0,
        decided_at: Timestamp::UNIX_EPOCH,
        observed: 1.0,
    };
    let bad = Feedback {
        action: ActionId(999),
        ..good.clone()
    };
    let err = policy.update(&[good, bad]).unwrap_err();
    assert!(err.to_string().contains("feedback #1"), "{err}");
    assert_eq!(policy.snapshot(), before);
}

#[test]
fn eligibility_and_exclusion_rules_are_respected() {
    let uc = use_case(
        &[2, 3],
        CONVERSION,
        "exploration_floor = 0.05\n\n[[rule]]\nexclude = { d0 = \"o1\", d1 = [\"o2\"] }\n\n\
         [[eligibility]]\ndimension = \"d1\"\noption = \"o0\"\nwhen = { feature = \"x\", gt = 0 }",
    );
    let policy = build_with(Setup::from_use_case(&uc).unwrap(), Algorithm::LogisticTs).unwrap();
    let customers: Vec<Customer> = (0..3000).map(|i| customer(&format!("e{i}"), -1.0, "gold")).collect();
    for d in policy.decide_batch(&customers, &round(1)).unwrap() {
        let a = uc.actions.decode(d.action).unwrap().0;
        assert_ne!(a, vec![1, 2], "excluded by the rule");
        assert_ne!(a[1], 0, "o0 needs x > 0");
    }
}

#[test]
fn ten_dimensions_of_ten_options_are_decided_without_enumeration() {
    let uc = use_case(&[10; 10], CONVERSION, "");
    assert_eq!(uc.actions.size(), 10_000_000_000);
    for algorithm in [Algorithm::LogisticTs, Algorithm::LinTs] {
        let mut policy = build_with(Setup::from_use_case(&uc).unwrap(), algorithm).unwrap();
        let mut rng = StdRng::seed_from_u64(5);
        let feedback: Vec<Feedback> = (0..2000)
            .map(|i| {
                let action = ActionId(rng.random_range(0..uc.actions.size()));
                let a = uc.actions.decode(action).unwrap();
                Feedback {
                    features: customer(&format!("f{i}"), 0.0, "gold").features,
                    action,
                    propensity: 1e-10,
                    reward: f64::from(u8::from(a.0[0] == 3)),
                    decided_at: Timestamp::UNIX_EPOCH,
                    observed: 1.0,
                }
            })
            .collect();
        policy.update(&feedback).unwrap();
        let customers: Vec<Customer> = (0..50).map(|i| customer(&format!("c{i}"), 0.0, "gold")).collect();
        let decisions = policy.decide_batch(&customers, &round(1)).unwrap();
        let threes = decisions
            .iter()
            .filter(|d| uc.actions.decode(d.action).unwrap().0[0] == 3)
            .count();
        assert!(
            threes >= 45,
            "{algorithm:?}: option 3 of d0 always converts; chosen {threes}/50"
        );
        assert!(decisions.iter().all(|d| d.propensity > 0.0 && d.propensity <= 1.0));
    }
}

/// ε-greedy and softmax: exact propensities that sum to 1 and match the choices actually made.
#[test]
fn epsilon_greedy_and_softmax_log_exact_propensities() {
    use offerloop_policy::{Contextual, ContextualConfig, Selection};
    let uc = use_case(&[2, 3], CONVERSION, "");
    for selection in [
        Selection::Greedy,
        Selection::EpsilonGreedy { epsilon: 0.3 },
        Selection::Softmax { temperature: 0.5 },
    ] {
        let config = ContextualConfig {
            selection,
            ..ContextualConfig::default()
        };
        let mut policy = Contextual::new(Setup::from_use_case(&uc).unwrap(), Algorithm::LogisticTs, config).unwrap();
        // Learn the same data as the trainer, so the posterior means are meaningful.
        train(&mut policy, &uc, 2, 6);
        let n = 20_000;
        let customers: Vec<Customer> = (0..n).map(|i| customer(&format!("s{i}"), 0.8, "gold")).collect();
        let decisions = policy.decide_batch(&customers, &round(9)).unwrap();
        let probabilities: Vec<(ActionId, f64)> = uc
            .actions
            .iter()
            .map(|(id, _)| (id, policy.action_probability(&customers[0], id, &round(9)).unwrap()))
            .collect();
        let total: f64 = probabilities.iter().map(|(_, p)| p).sum();
        assert!((total - 1.0).abs() < 1e-9, "{selection:?}: sum {total}");
        let mut chi2 = 0.0;
        let mut cells = 0;
        for (id, p) in &probabilities {
            let observed = decisions.iter().filter(|d| d.action == *id).count() as f64;
            if *p == 0.0 {
                assert_eq!(observed, 0.0, "{selection:?}: chose an action of probability 0");
                continue;
            }
            for d in decisions.iter().filter(|d| d.action == *id) {
                assert!(
                    (d.propensity - p).abs() < 1e-12,
                    "{selection:?}: logged {} vs {p}",
                    d.propensity
                );
            }
            chi2 += (observed - p * n as f64).powi(2) / (p * n as f64);
            cells += 1;
        }
        // 99.9th percentile of chi-square with at most 5 degrees of freedom is 20.5.
        assert!(cells <= 1 || chi2 < 20.5, "{selection:?}: chi-square {chi2}");
        match selection {
            Selection::Greedy => assert_eq!(cells, 1, "greedy without a floor plays one action"),
            Selection::EpsilonGreedy { .. } => {
                let min = probabilities.iter().map(|(_, p)| *p).fold(1.0, f64::min);
                assert!((min - 0.3 / 6.0).abs() < 1e-12, "ε / n for the others: {min}");
            }
            _ => assert_eq!(cells, 6, "softmax gives every action a chance"),
        }
    }
}

#[test]
fn the_metric_says_whether_rewards_are_binary_and_net_of_option_costs() {
    let revenue = |subtract: bool| {
        use_case(
            &[2, 3],
            &format!("[metric]\nkind = \"revenue\"\nattribution_window_days = 7\nsubtract_option_cost = {subtract}"),
            "",
        )
    };
    let net = Setup::from_use_case(&revenue(true)).unwrap();
    assert!(net.reward_nets_option_cost() && !net.binary_reward());
    let gross = Setup::from_use_case(&revenue(false)).unwrap();
    assert!(!gross.reward_nets_option_cost() && !gross.binary_reward());
    let conversion = Setup::from_use_case(&use_case(&[2, 3], CONVERSION, "")).unwrap();
    assert!(conversion.binary_reward() && !conversion.reward_nets_option_cost());
}

/// A revenue use case with one dimension: `cheap` costs nothing and converts 10 % of the time,
/// `offer` costs 2 and converts 25 % of the time; a conversion is worth 20. `offer` is better
/// (3.0 against 2.0 per decision).
fn priced_use_case() -> UseCase {
    let toml = "[use_case]\nname = \"t\"\nkind = \"custom\"\ntime_zone = \"UTC\"\n\n\
         [braze]\nendpoint = \"https://rest.iad-01.braze.com\"\napi_key_env = \"K\"\n\n\
         [audience]\nsegment_id = \"s\"\n\n[holdout]\nsalt = \"t\"\ncontrol_fraction = 0.0\ncontrol = \"no_message\"\n\n\
         [activation]\ncampaign_id = \"camp-1\"\n\n\
         [metric]\nkind = \"revenue\"\nattribution_window_days = 14\nsubtract_option_cost = true\n\n\
         [[feature]]\nname = \"x\"\nfield = \"custom_attributes.x\"\ntype = \"number\"\n\n\
         [[feature]]\nname = \"tier\"\nfield = \"custom_attributes.tier\"\ntype = \"category\"\n\n\
         [[dimension]]\nname = \"d0\"\nkind = \"offer\"\n\n\
         [[dimension.options]]\nid = \"cheap\"\n\n[[dimension.options]]\nid = \"offer\"\ncost = 2.0\n";
    parse_use_case(toml, "t.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// Rewards read three days into a 14-day window, when only `F = 0.35` of the conversions have been
/// seen: corrected (`−cost + 20 · 1{seen} / F`, weight `F`) the policy finds the better, dearer offer,
/// as it does from final rewards; read naively ("not converted yet" = 0) the cost outweighs the
/// conversions seen so far and it picks the cheap one.
#[test]
fn partial_rewards_corrected_by_the_observed_share_learn_what_final_ones_do() {
    const F: f64 = 0.35;
    let uc = priced_use_case();
    let setup = Setup::from_use_case(&uc).unwrap();
    let (p, cost) = ([0.10, 0.25], [0.0, 2.0]);
    for algorithm in [Algorithm::LinTs, Algorithm::LogisticTs] {
        let mut chosen = Vec::new();
        for mode in ["final", "corrected", "naive"] {
            let mut policy = build_with(setup.clone(), algorithm).unwrap();
            assert!(policy.learns_partial());
            let mut rng = StdRng::seed_from_u64(17);
            let feedback: Vec<Feedback> = (0..20_000)
                .map(|i| {
                    let o = i % 2;
                    let converts = rng.random::<f64>() < p[o];
                    let seen = converts && rng.random::<f64>() < F;
                    let (reward, observed) = match mode {
                        "final" => (20.0 * f64::from(u8::from(converts)) - cost[o], 1.0),
                        "corrected" => (
                            offerloop_policy::delay::corrected_reward(
                                -cost[o],
                                1.0,
                                20.0 * f64::from(u8::from(seen)),
                                F,
                            ),
                            F,
                        ),
                        _ => (20.0 * f64::from(u8::from(seen)) - cost[o], 1.0),
                    };
                    Feedback {
                        features: customer(&format!("f{i}"), 0.0, "gold").features,
                        action: ActionId(o as u64),
                        propensity: 0.5,
                        reward,
                        decided_at: Timestamp::UNIX_EPOCH,
                        observed,
                    }
                })
                .collect();
            policy.update(&feedback).unwrap();
            let customers: Vec<Customer> = (0..200).map(|i| customer(&format!("c{i}"), 0.0, "gold")).collect();
            let offers = policy
                .decide_batch(&customers, &round(1))
                .unwrap()
                .iter()
                .filter(|d| d.action == ActionId(1))
                .count();
            chosen.push(offers);
        }
        assert!(chosen[0] >= 180, "{algorithm:?} from final rewards: {chosen:?}");
        assert!(
            chosen[1] >= 180,
            "{algorithm:?} from corrected partial rewards: {chosen:?}"
        );
        assert!(chosen[2] <= 20, "{algorithm:?} from naive partial rewards: {chosen:?}");
    }
}

/// Policies that learn final rewards only refuse a partial one, and learn nothing of its batch.
#[test]
fn non_contextual_policies_refuse_partial_rewards() {
    let uc = priced_use_case();
    for algorithm in [Algorithm::GaussianTs, Algorithm::BetaTs, Algorithm::Uniform] {
        let Ok(mut policy) = build_with(Setup::from_use_case(&uc).unwrap(), algorithm) else {
            continue;
        };
        assert!(!policy.learns_partial(), "{algorithm:?}");
        let before = policy.snapshot();
        let partial = Feedback {
            features: customer("a", 0.0, "gold").features,
            action: ActionId(1),
            propensity: 0.5,
            reward: 3.0,
            decided_at: Timestamp::UNIX_EPOCH,
            observed: 0.5,
        };
        let err = policy.update(&[partial]).unwrap_err();
        assert!(err.to_string().contains("final rewards only"), "{algorithm:?}: {err}");
        assert_eq!(policy.snapshot(), before);
    }
}

/// The drift detectors judge fully observed rewards only: a batch whose rewards are all partial
/// (corrected by the delay model) raises no alert however far it moves, while the same change seen
/// in final rewards does.
#[test]
fn only_fully_observed_rewards_can_raise_a_drift_alert() {
    let uc = use_case(&[2, 3], CONVERSION, "algorithm = \"lin_ts\"\ndrift_detection = true");
    let mut policy = build_with(Setup::from_use_case(&uc).unwrap(), Algorithm::LinTs).unwrap();
    train(policy.as_mut(), &uc, 6, 11);
    let changed = everyone_converts;
    let snapshot = policy.snapshot();
    let mut partial = restore(Setup::from_use_case(&uc).unwrap(), snapshot.clone()).unwrap();
    let report = partial.update(&changed(0.5)).unwrap();
    assert!(report.alerts.is_empty(), "partial rewards raised {:?}", report.alerts);
    let mut full = restore(Setup::from_use_case(&uc).unwrap(), snapshot).unwrap();
    let report = full.update(&changed(1.0)).unwrap();
    assert!(
        !report.alerts.is_empty(),
        "the same change in final rewards raised no alert"
    );
}

/// A batch of `n` uniformly random decisions in the world `truth(flip · x, a)`, decided on `day`, for
/// customers with `x` in `[0.5, 2]` (so that a flip moves the mean response to each option of
/// dimension 0; a change that keeps every option's mean, such as a flip over a symmetric population,
/// moves no option's residual mean and is not what the detectors watch).
fn random_batch(uc: &UseCase, n: usize, day: u64, flip: f64, seed: u64) -> Vec<Feedback> {
    let mut rng = StdRng::seed_from_u64(seed);
    let count = uc.actions.count();
    (0..n)
        .map(|i| {
            let c = customer(&format!("r{day}c{i}"), 0.5 + rng.random::<f64>() * 1.5, "gold");
            let action = ActionId(rng.random_range(0..count));
            let x = c.features[0].as_number().unwrap();
            let a = uc.actions.decode(action).unwrap();
            Feedback {
                features: c.features,
                action,
                propensity: 1.0 / count as f64,
                reward: f64::from(u8::from(rng.random::<f64>() < truth(flip * x, &a.0))),
                decided_at: round(day).decided_at,
                observed: 1.0,
            }
        })
        .collect()
}

/// How often dimension 0's option 1 is chosen for customers with `x > 0` (the better one before the
/// flip, the worse after).
fn share_of_option_1(policy: &dyn Policy, uc: &UseCase, day: u64) -> f64 {
    let customers: Vec<Customer> = (0..400).map(|i| customer(&format!("q{i}"), 1.5, "gold")).collect();
    let decisions = policy.decide_batch(&customers, &round(day)).unwrap();
    let ones = decisions
        .iter()
        .filter(|d| uc.actions.decode(d.action).unwrap().0[0] == 1)
        .count();
    ones as f64 / customers.len() as f64
}

/// A drift alert starts a challenger but does not change who decides: until the challenger predicts
/// the new batches better, the policy decides exactly as the same policy without drift detection
/// (so an alert, true or false, costs nothing the next day); once it does, it takes over and the
/// policy follows the new market sooner than without detection.
#[test]
fn after_an_alert_the_champion_decides_until_the_challenger_predicts_better() {
    let on = use_case(
        &[2, 3],
        CONVERSION,
        "algorithm = \"logistic_ts\"\ndrift_detection = true\nseed = 3",
    );
    let off = use_case(
        &[2, 3],
        CONVERSION,
        "algorithm = \"logistic_ts\"\ndrift_detection = false\nseed = 3",
    );
    let mut watching = build_with(Setup::from_use_case(&on).unwrap(), Algorithm::LogisticTs).unwrap();
    let mut blind = build_with(Setup::from_use_case(&off).unwrap(), Algorithm::LogisticTs).unwrap();
    for day in 0..8 {
        let batch = random_batch(&on, 3000, day, 1.0, 100 + day);
        assert!(
            watching.update(&batch).unwrap().alerts.is_empty(),
            "day {day}: false alarm"
        );
        blind.update(&batch).unwrap();
    }
    assert!(share_of_option_1(watching.as_ref(), &on, 8) > 0.9);
    // The market flips: option 0 is now the better one for x > 0.
    let mut alerted = None;
    let mut promoted = None;
    for day in 8..12 {
        let batch = random_batch(&on, 3000, day, -1.0, 100 + day);
        let report = watching.update(&batch).unwrap();
        blind.update(&batch).unwrap();
        if alerted.is_none() && !report.alerts.is_empty() {
            alerted = Some(day);
        }
        let same = watching.snapshot().state["model"] == blind.snapshot().state["model"];
        if promoted.is_none() {
            if same {
                let probe = [customer("probe", 1.5, "gold")];
                assert_eq!(
                    watching.decide_batch(&probe, &round(day + 1)).unwrap(),
                    blind.decide_batch(&probe, &round(day + 1)).unwrap(),
                    "day {day}: the same model decided differently"
                );
            } else {
                promoted = Some(day);
                // The day after the promotion the watching policy has left the old best option;
                // the blind one, whose evidence is still mostly of the old market, has not.
                let (w, b) = (
                    share_of_option_1(watching.as_ref(), &on, day + 1),
                    share_of_option_1(blind.as_ref(), &off, day + 1),
                );
                assert!(
                    w < 0.1 && b > 0.5,
                    "option 1 chosen for {w} (watching) and {b} (blind) of x > 0 customers"
                );
            }
        }
    }
    let alerted = alerted.expect("the flip raised no alert");
    let promoted = promoted.expect("the challenger was never promoted");
    assert!(
        promoted > alerted && promoted <= alerted + 3,
        "alert on day {alerted}, promotion on day {promoted}"
    );
}

/// The market changes: every customer now converts (rewards read with the observed share `observed`).
fn everyone_converts(observed: f64) -> Vec<Feedback> {
    let mut rng = StdRng::seed_from_u64(12);
    (0..3000)
        .map(|i| {
            let c = customer(&format!("late{i}"), rng.random::<f64>() * 4.0 - 2.0, "gold");
            let action = ActionId(rng.random_range(0..6u64));
            Feedback {
                features: c.features,
                action,
                propensity: 1.0 / 6.0,
                reward: 1.0 / observed,
                decided_at: round(7).decided_at,
                observed,
            }
        })
        .collect()
}

/// The final rewards of decisions learned early are judged by the detectors without being learned:
/// a change in them raises an alert, the model that decides is untouched, and partial rewards are
/// refused.
#[test]
fn final_rewards_of_decisions_learned_early_are_judged_not_learned() {
    let uc = use_case(
        &[2, 3],
        CONVERSION,
        "algorithm = \"logistic_ts\"\ndrift_detection = true",
    );
    let mut policy = build_with(Setup::from_use_case(&uc).unwrap(), Algorithm::LogisticTs).unwrap();
    train(policy.as_mut(), &uc, 6, 11);
    let before = policy.snapshot();
    let err = policy.monitor(&everyone_converts(0.5)).unwrap_err();
    assert!(err.to_string().contains("final rewards only"), "{err}");
    let alerts = policy.monitor(&everyone_converts(1.0)).unwrap();
    assert!(!alerts.is_empty(), "the change in final rewards raised no alert");
    let after = policy.snapshot();
    assert_eq!(
        after.state["model"], before.state["model"],
        "monitoring changed the deciding model"
    );
    assert_eq!(after.state["updates"], before.state["updates"]);
    assert!(after.state["challenger"].is_object(), "the alert started no challenger");
    // Without drift detection there is nothing to judge.
    let quiet = use_case(
        &[2, 3],
        CONVERSION,
        "algorithm = \"logistic_ts\"\ndrift_detection = false",
    );
    let mut policy = build_with(Setup::from_use_case(&quiet).unwrap(), Algorithm::LogisticTs).unwrap();
    train(policy.as_mut(), &quiet, 6, 11);
    assert!(policy.monitor(&everyone_converts(1.0)).unwrap().is_empty());
}
