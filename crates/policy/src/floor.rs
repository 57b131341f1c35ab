//! The exploration floor, shared by the non-contextual policies ([`crate::Fixed`],
//! [`crate::ExploreThenCommit`], [`crate::BetaBernoulliTs`], [`crate::GaussianTs`]).
//!
//! With the use case's `exploration_floor` `f > 0` and `n` eligible joint actions for a customer, a
//! policy first draws `u ~ U[0, 1)` from the customer's generator: when `u < f·n` it plays a uniformly
//! random eligible action ([`Eligible::sample_uniform`]), otherwise its own (base) choice. So every
//! eligible action `a` has the *exact* probability
//!
//! ```text
//! π(a) = (1 − f·n) · π_base(a) + f        (≥ f)
//! ```
//!
//! and ineligible actions have probability 0. The probabilities add up to 1 whenever `π_base` does,
//! because `n · f` is the uniform part. [`crate::Setup::new`] refuses a floor with `f · (joint actions)
//! > 1`, and a customer never has more eligible actions than the space, so `f·n ≤ 1` (it is clamped to
//! 1 anyway). With `f = 0` no draw is made, so the base choice sees the generator untouched.

use offerloop_domain::ActionId;
use rand::RngExt as _;
use rand::rngs::StdRng;

use crate::sampling::Eligible;
use crate::setup::Setup;

/// The exploration floor of a setup; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Floor {
    floor: f64,
}

impl Floor {
    /// The floor `setup`'s settings ask for.
    pub(crate) fn of(setup: &Setup) -> Self {
        Self {
            floor: setup.settings().exploration_floor.max(0.0),
        }
    }

    /// The probability `f·n` (at most 1) of playing uniformly for a customer with these eligible actions.
    pub(crate) fn share(&self, eligible: &Eligible<'_>) -> f64 {
        (self.floor * eligible.count() as f64).min(1.0)
    }

    /// Chooses with the floor: uniformly among `eligible` with probability [`Self::share`], otherwise
    /// `base(rng)`, the policy's own choice (drawn from the same generator, after the floor's draw).
    pub(crate) fn choose(
        &self,
        eligible: &Eligible<'_>,
        rng: &mut StdRng,
        base: impl FnOnce(&mut StdRng) -> ActionId,
    ) -> ActionId {
        let share = self.share(eligible);
        if share > 0.0 {
            let u: f64 = rng.random();
            if u < share {
                return eligible.sample_uniform(rng).0;
            }
        }
        base(rng)
    }

    /// The exact probability of an *eligible* action whose base probability is `base`:
    /// `(1 − f·n) · base + f`. The caller returns 0 for ineligible actions without asking.
    pub(crate) fn probability(&self, eligible: &Eligible<'_>, base: f64) -> f64 {
        let share = self.share(eligible);
        ((1.0 - share) * base + self.floor).clamp(0.0, 1.0)
    }
}

/// Test helpers shared by the non-contextual policies' tests: small use cases, customers and a check
/// that logged propensities match choice frequencies.
#[cfg(test)]
pub(crate) mod testkit {
    use std::collections::BTreeMap;

    use jiff::Timestamp;
    use offerloop_domain::action::EligibilityRule;
    use offerloop_domain::dimension::DimensionKind;
    use offerloop_domain::features::FieldPath;
    use offerloop_domain::metric::ConversionOn;
    use offerloop_domain::predicate::{Literal, Predicate};
    use offerloop_domain::usecase::PolicySettings;
    use offerloop_domain::{
        ActionId, ActionSpace, Customer, CustomerId, Dimension, ExclusionRule, FeatureSchema, FeatureSpec, FeatureType,
        FeatureValue, Identifier, JointAction, MetricKind, OptionSpec, UseCase,
    };
    use statrs::distribution::{ChiSquared, ContinuousCDF as _};

    use crate::policy::{DecisionRound, Feedback, Policy};
    use crate::sampling::Eligible;
    use crate::setup::Setup;

    /// Identifier from a literal.
    pub(crate) fn id(s: &str) -> Identifier {
        Identifier::new(s).unwrap()
    }

    fn dim(name: &str, options: &[&str]) -> Dimension {
        Dimension::new(
            id(name),
            DimensionKind::Custom,
            options.iter().map(|o| OptionSpec::new(id(o))).collect(),
        )
        .unwrap()
    }

    /// `offer ∈ {none, pct10, pct20}` × `channel ∈ {email, sms, push}`; rule: no `pct20` by `push`;
    /// `sms` only for customers whose single boolean feature `sms_consent` is true. 8 joint actions
    /// (5 without consent).
    pub(crate) fn small_space() -> (ActionSpace, FeatureSchema) {
        let space = ActionSpace::new(
            vec![
                dim("offer", &["none", "pct10", "pct20"]),
                dim("channel", &["email", "sms", "push"]),
            ],
            vec![ExclusionRule {
                name: "no pct20 push".into(),
                conditions: BTreeMap::from([(id("offer"), vec![id("pct20")]), (id("channel"), vec![id("push")])]),
            }],
            vec![EligibilityRule {
                dimension: id("channel"),
                option: id("sms"),
                when: Predicate::Eq {
                    feature: 0,
                    value: Literal::Boolean(true),
                },
            }],
        )
        .unwrap();
        let schema = FeatureSchema::new(vec![FeatureSpec {
            name: id("sms_consent"),
            field: FieldPath::parse("custom_attributes.sms_consent").unwrap(),
            ty: FeatureType::Boolean,
        }])
        .unwrap();
        (space, schema)
    }

    /// A conversion metric.
    pub(crate) fn conversion() -> MetricKind {
        MetricKind::Conversion {
            on: ConversionOn::Purchase { product: None },
        }
    }

    /// A revenue metric.
    pub(crate) fn revenue() -> MetricKind {
        MetricKind::Revenue {
            product: None,
            subtract_option_cost: false,
        }
    }

    /// Settings with this seed, floor and forgetting factor.
    pub(crate) fn settings(seed: u64, floor: f64, gamma: f64) -> PolicySettings {
        PolicySettings {
            seed,
            exploration_floor: floor,
            forgetting_factor: gamma,
            ..PolicySettings::default()
        }
    }

    /// A setup over [`small_space`].
    pub(crate) fn small_setup(settings: PolicySettings, metric: MetricKind, bau: Option<JointAction>) -> Setup {
        let (space, schema) = small_space();
        Setup::new(space, schema, settings, metric, bau).unwrap()
    }

    /// The win-back example use case (4 × 3 × 3 × 2 joint actions, 64 allowed).
    pub(crate) fn winback() -> UseCase {
        offerloop_domain::config::parse_use_case(include_str!("../../../examples/winback.toml"), "winback.toml")
            .unwrap()
    }

    /// A customer of [`small_space`].
    pub(crate) fn customer(i: usize, sms_consent: bool) -> Customer {
        Customer {
            id: CustomerId::new(format!("c-{i}")).unwrap(),
            features: vec![FeatureValue::Boolean(sms_consent)],
            time_zone: None,
        }
    }

    /// `n` customers of [`small_space`], every third one without SMS consent.
    pub(crate) fn customers(n: usize) -> Vec<Customer> {
        (0..n).map(|i| customer(i, i % 3 != 0)).collect()
    }

    /// A customer of the win-back use case; `i` varies consent and push status.
    pub(crate) fn winback_customer(i: usize) -> Customer {
        Customer {
            id: CustomerId::new(format!("w-{i}")).unwrap(),
            features: vec![
                FeatureValue::Number(120.0),
                FeatureValue::Number(3.0),
                FeatureValue::Number(250.0),
                FeatureValue::Category("gold".into()),
                FeatureValue::Category("US".into()),
                FeatureValue::Boolean(i.is_multiple_of(2)),
                FeatureValue::Category(
                    if i.is_multiple_of(3) {
                        "opted_in"
                    } else {
                        "unsubscribed"
                    }
                    .into(),
                ),
                FeatureValue::Category(["morning", "midday", "evening"][i % 3].into()),
            ],
            time_zone: None,
        }
    }

    /// The round of day `day` (since the epoch).
    pub(crate) fn round(day: u64) -> DecisionRound {
        DecisionRound::at(Timestamp::from_second(day as i64 * 86_400 + 9 * 3600).unwrap())
    }

    /// A feedback record of [`small_space`] (consenting customer) for `action`.
    pub(crate) fn feedback(space: &ActionSpace, action: &[u32], reward: f64, day: u64) -> Feedback {
        Feedback {
            features: vec![FeatureValue::Boolean(true)],
            action: space.encode(&JointAction(action.to_vec())).unwrap(),
            propensity: 0.125,
            reward,
            decided_at: round(day).decided_at,
            observed: 1.0,
        }
    }

    /// The eligible actions of a customer, with the policy's probability of each.
    pub(crate) fn distribution(
        policy: &dyn Policy,
        space: &ActionSpace,
        customer: &Customer,
        round: &DecisionRound,
    ) -> Vec<(ActionId, f64)> {
        let eligible = Eligible::of(space, customer).unwrap();
        eligible
            .iter()
            .map(|(a, _)| (a, policy.action_probability(customer, a, round).unwrap()))
            .collect()
    }

    /// Checks, for every eligibility class of `customers`: the probabilities of the eligible actions add
    /// up to 1, ineligible and excluded actions have probability 0, every decision is eligible and logs
    /// `action_probability`, and the choice frequencies match the probabilities (a chi-square test at
    /// level 1e-6 and a 5-standard-error bound per action). Returns the largest absolute deviation of a
    /// frequency from its probability.
    pub(crate) fn check_frequencies(
        policy: &dyn Policy,
        space: &ActionSpace,
        customers: &[Customer],
        round: &DecisionRound,
    ) -> f64 {
        let decisions = policy.decide_batch(customers, round).unwrap();
        assert_eq!(decisions.len(), customers.len());
        // Group by eligibility class: the list of eligible ids.
        let mut groups: BTreeMap<Vec<ActionId>, (usize, BTreeMap<ActionId, usize>)> = BTreeMap::new();
        let mut representative: BTreeMap<Vec<ActionId>, &Customer> = BTreeMap::new();
        for (c, d) in customers.iter().zip(&decisions) {
            let eligible = Eligible::of(space, c).unwrap();
            assert!(
                eligible.contains_id(d.action),
                "{} got ineligible {}",
                c.id.as_str(),
                d.action
            );
            let p = policy.action_probability(c, d.action, round).unwrap();
            assert_eq!(d.propensity, p, "logged propensity differs from action_probability");
            let key: Vec<ActionId> = eligible.iter().map(|(a, _)| a).collect();
            let entry = groups.entry(key.clone()).or_default();
            entry.0 += 1;
            *entry.1.entry(d.action).or_default() += 1;
            representative.entry(key).or_insert(c);
        }
        let mut max_dev: f64 = 0.0;
        for (key, (n, counts)) in &groups {
            let c = representative[key];
            let dist = distribution(policy, space, c, round);
            let total: f64 = dist.iter().map(|(_, p)| p).sum();
            assert!((total - 1.0).abs() < 1e-9, "probabilities add up to {total}");
            for (a, _) in space.iter() {
                if !key.contains(&a) {
                    assert_eq!(policy.action_probability(c, a, round).unwrap(), 0.0);
                }
            }
            // An id outside the space is never chosen.
            assert_eq!(
                policy.action_probability(c, ActionId(space.size()), round).unwrap(),
                0.0
            );
            let mut chi2 = 0.0;
            let mut df = 0usize;
            for (a, p) in &dist {
                let observed = counts.get(a).copied().unwrap_or(0) as f64;
                let freq = observed / *n as f64;
                let dev = (freq - p).abs();
                max_dev = max_dev.max(dev);
                if *p > 0.0 {
                    let se = (p * (1.0 - p) / *n as f64).sqrt();
                    assert!(
                        dev <= 5.0 * se + 1e-12,
                        "action {a}: frequency {freq} vs probability {p}"
                    );
                    let expected = p * *n as f64;
                    chi2 += (observed - expected).powi(2) / expected;
                    df += 1;
                } else {
                    assert_eq!(observed, 0.0, "action {a} of probability 0 was chosen");
                }
            }
            if df > 1 {
                let critical = ChiSquared::new((df - 1) as f64).unwrap().inverse_cdf(1.0 - 1e-6);
                assert!(chi2 < critical, "chi-square {chi2} ≥ {critical} ({} dof)", df - 1);
            }
        }
        max_dev
    }
}

#[cfg(test)]
mod tests {
    use offerloop_domain::{ActionId, JointAction};

    use super::testkit::*;
    use super::*;
    use crate::sampling::customer_rng;

    #[test]
    fn probabilities_add_up_and_keep_the_floor() {
        let setup = small_setup(settings(1, 0.05, 1.0), conversion(), None);
        let floor = Floor::of(&setup);
        let c = customer(0, true);
        let eligible = Eligible::of(setup.space(), &c).unwrap();
        assert_eq!(eligible.count(), 8);
        assert!((floor.share(&eligible) - 0.4).abs() < 1e-12);
        let total: f64 = eligible
            .iter()
            .map(|(a, _)| floor.probability(&eligible, if a == ActionId(0) { 1.0 } else { 0.0 }))
            .sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert!((floor.probability(&eligible, 0.0) - 0.05).abs() < 1e-12);
        assert!((floor.probability(&eligible, 1.0) - 0.65).abs() < 1e-12);
    }

    #[test]
    fn choose_mixes_in_uniform_with_the_floor_share() {
        let setup = small_setup(settings(1, 0.05, 1.0), conversion(), None);
        let floor = Floor::of(&setup);
        let c = customer(0, true);
        let eligible = Eligible::of(setup.space(), &c).unwrap();
        let target = setup.space().encode(&JointAction(vec![1, 0])).unwrap();
        let n = 40_000;
        let hits = (0..n)
            .filter(|&i| {
                let mut rng = customer_rng(7, 0, 0, &format!("c-{i}"));
                floor.choose(&eligible, &mut rng, |_| target) == target
            })
            .count();
        let p = floor.probability(&eligible, 1.0);
        let freq = hits as f64 / f64::from(n);
        assert!(
            (freq - p).abs() < 5.0 * (p * (1.0 - p) / f64::from(n)).sqrt(),
            "{freq} vs {p}"
        );
    }

    #[test]
    fn without_a_floor_the_base_choice_sees_the_generator_untouched() {
        let setup = small_setup(settings(1, 0.0, 1.0), conversion(), None);
        let floor = Floor::of(&setup);
        let c = customer(0, true);
        let eligible = Eligible::of(setup.space(), &c).unwrap();
        let mut a = customer_rng(7, 0, 0, "x");
        let mut b = customer_rng(7, 0, 0, "x");
        let first = floor.choose(&eligible, &mut a, |rng| ActionId(rng.random_range(0..8)));
        assert_eq!(first, ActionId(b.random_range(0..8)));
        assert_eq!(floor.probability(&eligible, 0.25), 0.25);
    }
}
