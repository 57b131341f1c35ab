//! `offerloop-policy`: the experiment policies. Given a customer's features and the use case's action
//! space, a [`Policy`] chooses one option in every dimension at once, logs the probability of that
//! choice, and learns from rewards that arrive days later.
//!
//! Pure: no I/O, no async, no clock (times are passed in), and all randomness seeded
//! ([`sampling::customer_rng`]), so every decision can be replayed.
//!
//! - [`Policy`]: decide (one customer, or a batch in parallel), `action_probability`, update, monitor,
//!   snapshot, explain.
//! - [`build`] and [`restore`]: the policy a use case configures, new or from a [`Snapshot`].
//! - [`ope`]: off-policy evaluation of a candidate policy from logged decisions.
//! - [`drift`]: change detectors on reward residuals, raising [`drift::DriftAlert`]s.
//! - [`challenger`]: what an alert starts: a model re-learning beside the deciding one, promoted only
//!   when it predicts the new data better.
//! - [`reward`]: the plausible range of a reward per metric; a reward outside it (10^200, a negative
//!   conversion, NaN) is refused by [`Policy::update`], never clipped, and a state that still ends up
//!   holding a non-finite number gives a [`Snapshot`] that cannot be saved ([`Snapshot::check`]).
//! - [`delay`]: the delay model that lets a reward whose attribution window is still open be learned
//!   from without bias ([`Feedback::observed`]).

#![deny(missing_docs)]

pub mod ascent;
pub mod challenger;
pub mod contextual;
pub mod delay;
pub mod drift;
mod error;
pub mod explore_then_commit;
pub mod featurize;
pub mod fixed;
mod floor;
pub mod glm;
pub mod joint_ts;
pub mod ope;
pub mod policy;
#[cfg(test)]
mod props;
pub mod reward;
pub mod sampling;
pub mod setup;
pub mod snapshot;
mod uniform;

pub use contextual::{Contextual, ContextualConfig, Selection};
pub use error::{Error, Result};
pub use explore_then_commit::ExploreThenCommit;
pub use fixed::Fixed;
pub use joint_ts::{BetaBernoulliTs, GaussianTs, JointTsConfig};
use offerloop_domain::UseCase;
use offerloop_domain::usecase::Algorithm;
pub use policy::{DecisionRound, Explanation, Feedback, Policy, PolicyDecision, UpdateReport};
pub use setup::Setup;
pub use snapshot::{SNAPSHOT_FORMAT, Snapshot};
pub use uniform::Uniform;

/// The policy `use_case` configures, with no learning yet.
///
/// # Errors
/// [`Error::Setting`] for settings the algorithm cannot honour.
pub fn build(use_case: &UseCase) -> Result<Box<dyn Policy>> {
    build_with(Setup::from_use_case(use_case)?, use_case.policy.algorithm)
}

/// A new policy of `algorithm` over `setup` (the algorithm in `setup`'s settings is ignored).
///
/// # Errors
/// [`Error::Setting`] for settings the algorithm cannot honour.
pub fn build_with(setup: Setup, algorithm: Algorithm) -> Result<Box<dyn Policy>> {
    match algorithm {
        Algorithm::Uniform => Ok(Box::new(Uniform::new(setup))),
        Algorithm::Fixed => Ok(Box::new(Fixed::new(setup))),
        Algorithm::ExploreThenCommit => Ok(Box::new(ExploreThenCommit::new(setup))),
        Algorithm::BetaTs => Ok(Box::new(BetaBernoulliTs::new(setup)?)),
        Algorithm::GaussianTs => Ok(Box::new(GaussianTs::new(setup)?)),
        Algorithm::LinTs | Algorithm::LinUcb | Algorithm::LogisticTs => Ok(Box::new(Contextual::new(
            setup,
            algorithm,
            ContextualConfig::default(),
        )?)),
    }
}

/// Rebuilds the policy a [`Snapshot`] was taken of, over `setup`.
///
/// # Errors
/// [`Error::Snapshot`] when the format is not [`SNAPSHOT_FORMAT`], the fingerprint does not match the
/// setup (another action space or schema), or the state does not parse;
/// [`Error::NonFiniteSnapshot`] for a snapshot [captured](Snapshot::capture) with a non-finite number.
pub fn restore(setup: Setup, snapshot: Snapshot) -> Result<Box<dyn Policy>> {
    snapshot.check()?;
    if snapshot.format != SNAPSHOT_FORMAT {
        return Err(Error::Snapshot(format!(
            "format {} cannot be read by this build (it reads format {SNAPSHOT_FORMAT})",
            snapshot.format
        )));
    }
    if snapshot.fingerprint != setup.fingerprint() {
        return Err(Error::Snapshot(
            "it was learned on another action space or feature schema (dimensions, options, rules or features differ)"
                .to_owned(),
        ));
    }
    match snapshot.algorithm {
        Algorithm::Uniform => Ok(Box::new(Uniform::restore(setup, snapshot.state)?)),
        Algorithm::Fixed => Ok(Box::new(Fixed::restore(setup, snapshot.state)?)),
        Algorithm::ExploreThenCommit => Ok(Box::new(ExploreThenCommit::restore(setup, snapshot.state)?)),
        Algorithm::BetaTs => Ok(Box::new(BetaBernoulliTs::restore(setup, snapshot.state)?)),
        Algorithm::GaussianTs => Ok(Box::new(GaussianTs::restore(setup, snapshot.state)?)),
        algorithm @ (Algorithm::LinTs | Algorithm::LinUcb | Algorithm::LogisticTs) => {
            Ok(Box::new(Contextual::restore(setup, algorithm, snapshot.state)?))
        }
    }
}

/// Checks every feedback record against the setup before anything is learned, for a policy that
/// learns partial rewards ([`Policy::learns_partial`]): features, action, propensity in `(0, 1]`,
/// observed share in `(0, 1]`, and the reward in its metric's plausible range ([`reward`]).
///
/// # Errors
/// [`Error::BadFeedback`] naming the first bad record.
pub(crate) fn validate_partial_feedback(setup: &Setup, feedback: &[Feedback]) -> Result<()> {
    for (index, f) in feedback.iter().enumerate() {
        let bad = |message: String| Error::BadFeedback { index, message };
        if f.features.len() != setup.schema().len() {
            return Err(bad(format!(
                "{} feature values for a schema of {}",
                f.features.len(),
                setup.schema().len()
            )));
        }
        let action = setup.space().decode(f.action).map_err(|e| bad(e.to_string()))?;
        if setup.space().is_excluded(&action) {
            return Err(bad(format!("action {} is excluded by a rule", f.action)));
        }
        if !(f.propensity > 0.0 && f.propensity <= 1.0) {
            return Err(bad(format!(
                "propensity {} is outside (0, 1]",
                reward::Number(f.propensity)
            )));
        }
        if !(f.observed > 0.0 && f.observed <= 1.0) {
            return Err(bad(format!(
                "observed share {} is outside (0, 1]",
                reward::Number(f.observed)
            )));
        }
        reward::check(setup, f.reward, f.observed).map_err(|e| bad(format!("reward {e}")))?;
    }
    Ok(())
}

/// [`validate_partial_feedback`], and every reward final (`observed = 1`): what a policy that does not
/// learn partial rewards accepts.
///
/// # Errors
/// [`Error::BadFeedback`] naming the first bad record.
pub(crate) fn validate_feedback(setup: &Setup, feedback: &[Feedback]) -> Result<()> {
    validate_partial_feedback(setup, feedback)?;
    match feedback.iter().position(|f| f.observed < 1.0) {
        Some(index) => Err(Error::BadFeedback {
            index,
            message: format!(
                "observed share {} below 1: this policy learns final rewards only",
                feedback[index].observed
            ),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use offerloop_domain::usecase::Algorithm;

    use crate::floor::testkit::{conversion, feedback, settings, small_setup, winback};
    use crate::{Error, Setup, build_with};

    /// Issue 17, defect 8: a reward of 1e200 made the model's state non-finite (saved as `null`), and
    /// every later decision failed. Every algorithm must refuse it and learn nothing.
    #[test]
    fn a_huge_finite_reward_is_refused_by_every_algorithm() {
        let setups = [
            small_setup(settings(1, 0.0, 1.0), conversion(), None),
            Setup::from_use_case(&winback()).unwrap(),
        ];
        for setup in setups {
            for algorithm in Algorithm::ALL {
                let Ok(mut policy) = build_with(setup.clone(), algorithm) else {
                    continue;
                };
                let before = policy.snapshot();
                let space = setup.space();
                let first = vec![0; space.dimensions().len()];
                assert!(!space.is_excluded(&offerloop_domain::JointAction(first.clone())));
                let mut f = feedback(space, &first, 1e200, 0);
                f.features = vec![offerloop_domain::FeatureValue::Missing; setup.schema().len()];
                let err = policy.update(&[f]).unwrap_err();
                assert!(
                    matches!(&err, Error::BadFeedback { index: 0, message } if message.contains("1e200")),
                    "{}: {err}",
                    algorithm.as_str()
                );
                assert_eq!(policy.snapshot(), before, "{}: nothing learned", algorithm.as_str());
            }
        }
    }

    mod finite_snapshots {
        use offerloop_domain::usecase::Algorithm;
        use offerloop_domain::{FeatureValue, JointAction, MetricKind};
        use proptest::prelude::*;
        use proptest::test_runner::{RngSeed, TestCaseError};

        use crate::floor::testkit::{conversion, feedback, revenue, settings, small_setup};
        use crate::{Feedback, build_with};

        /// A reward: mostly in the metric's range (`u` in [0, 1], scaled for an amount by `scale`, up to
        /// 10^12), sometimes any finite number (`hostile`, huge and subnormal ones included).
        #[derive(Clone, Copy, Debug)]
        struct Draw {
            u: f64,
            scale: f64,
            hostile: Option<f64>,
        }

        /// The metrics the property runs under.
        #[derive(Clone, Copy, Debug)]
        enum Metric {
            Conversion,
            Revenue,
            RevenueNetOfCosts,
        }

        impl Draw {
            fn reward(self, metric: Metric, observed: f64) -> f64 {
                match (self.hostile, metric) {
                    (Some(r), _) => r,
                    (None, Metric::Conversion) => self.u.round() / observed,
                    (None, Metric::Revenue) => (self.u * self.scale / observed).min(1e12),
                    (None, Metric::RevenueNetOfCosts) => {
                        ((2.0 * self.u - 1.0) * self.scale / observed).clamp(-1e12, 1e12)
                    }
                }
            }
        }

        fn draw() -> impl Strategy<Value = Draw> {
            let u = prop_oneof![Just(0.0), Just(1.0), 0.0..=1.0f64];
            let scale = prop::sample::select(vec![1.0, 1e3, 1e6, 1e12]);
            let hostile = prop_oneof![
                12 => Just(None),
                1 => (-1e13..1e13f64).prop_map(Some),
                1 => (prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO).prop_map(Some),
            ];
            (u, scale, hostile).prop_map(|(u, scale, hostile)| Draw { u, scale, hostile })
        }

        /// A record of the small space: an action (now and then an excluded one), consent or not, a
        /// propensity (now and then any number), a reward, an observed share (final, mostly), a day in the
        /// first three years.
        type Record = (u32, u32, bool, f64, Draw, f64, u64);

        fn record() -> impl Strategy<Value = Record> {
            (
                0..3u32,
                prop_oneof![12 => 0..2u32, 1 => Just(2u32)],
                prop_oneof![4 => Just(true), 1 => Just(false)],
                prop_oneof![12 => 1e-6..=1.0f64, 1 => prop::num::f64::ANY],
                draw(),
                prop_oneof![12 => Just(1.0), 1 => 1e-6..1.0f64],
                0..1000u64,
            )
        }

        fn check(
            algorithm: Algorithm,
            metric: Metric,
            gamma: f64,
            batches: &[Vec<Record>],
        ) -> Result<(), TestCaseError> {
            let kind: MetricKind = match metric {
                Metric::Conversion => conversion(),
                Metric::Revenue => revenue(),
                Metric::RevenueNetOfCosts => MetricKind::Revenue {
                    product: None,
                    subtract_option_cost: true,
                },
            };
            let setup = small_setup(settings(5, 0.0, gamma), kind, None);
            let Ok(mut policy) = build_with(setup.clone(), algorithm) else {
                return Ok(());
            };
            for batch in batches {
                let records: Vec<Feedback> = batch
                    .iter()
                    .map(|&(o, c, consent, propensity, draw, observed, day)| {
                        let mut f = feedback(setup.space(), &[0, 0], draw.reward(metric, observed), day);
                        f.action = setup.space().encode(&JointAction(vec![o, c])).unwrap_or(f.action);
                        f.features = vec![FeatureValue::Boolean(consent)];
                        f.propensity = propensity;
                        f.observed = observed;
                        f
                    })
                    .collect();
                let before = policy.snapshot();
                let learned = policy.update(&records);
                let after = policy.snapshot();
                match learned {
                    Ok(_) => prop_assert!(after.check().is_ok(), "{}: {:?}", algorithm.as_str(), after.check()),
                    Err(_) => prop_assert_eq!(&after, &before, "a refused batch teaches nothing"),
                }
                let finals: Vec<Feedback> = records.into_iter().map(|f| Feedback { observed: 1.0, ..f }).collect();
                let _ = policy.monitor(&finals);
                let judged = policy.snapshot();
                prop_assert!(judged.check().is_ok(), "{}: {:?}", algorithm.as_str(), judged.check());
                // Whatever was accepted serialises and restores.
                let json = serde_json::to_string(&judged).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let back: crate::Snapshot =
                    serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(crate::restore(setup.clone(), back).is_ok());
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: 256,
                rng_seed: RngSeed::Fixed(17),
                ..ProptestConfig::default()
            })]

            /// Issue 17, defect 8: no sequence of finite feedback leaves a policy whose snapshot holds a
            /// non-finite number; what the range refuses teaches nothing.
            #[test]
            fn no_finite_feedback_makes_a_snapshot_non_finite(
                algorithm in prop::sample::select(Algorithm::ALL.to_vec()),
                metric in prop::sample::select(vec![Metric::Conversion, Metric::Revenue, Metric::RevenueNetOfCosts]),
                gamma in prop_oneof![Just(1.0), Just(0.9), Just(1e-3)],
                batches in prop::collection::vec(prop::collection::vec(record(), 1..8), 1..8),
            ) {
                check(algorithm, metric, gamma, &batches)?;
            }
        }
    }
}
