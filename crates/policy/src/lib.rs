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
/// setup (another action space or schema), or the state does not parse.
pub fn restore(setup: Setup, snapshot: Snapshot) -> Result<Box<dyn Policy>> {
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
/// learns partial rewards ([`Policy::learns_partial`]).
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
            return Err(bad(format!("propensity {} is outside (0, 1]", f.propensity)));
        }
        if !f.reward.is_finite() {
            return Err(bad(format!("reward {} is not finite", f.reward)));
        }
        if !(f.observed > 0.0 && f.observed <= 1.0) {
            return Err(bad(format!("observed share {} is outside (0, 1]", f.observed)));
        }
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
