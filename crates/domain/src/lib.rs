//! The vocabulary of offerloop: what a lifecycle marketer configures and what every later layer speaks.
//!
//! A [`UseCase`] names a success metric ([`SuccessMetric`]), the dimensions to test ([`Dimension`]) and
//! the options of each ([`OptionSpec`]). Their cartesian product, minus exclusion rules and per-customer
//! eligibility, is the [`ActionSpace`]; one point of it, a joint action, is encoded compactly as an
//! [`ActionId`] in mixed radix so a space of 10^10 joint actions is counted, encoded and iterated without
//! ever being enumerated.
//!
//! The key design decision of this crate: **it is pure**. No I/O, no async, no clock, no Braze JSON
//! types, no SQL. Time is passed in; randomness is not needed here at all (holdout assignment is a
//! salted hash, stable across runs and machines). That keeps the domain usable from the policy, the
//! engine, the simulator and by library consumers alike, and makes its invariants property-testable.
//!
//! Configuration lives in [`config`]: one TOML file per use case, parsed with every problem reported in
//! one pass, each located by file, line, column and field path.

#![deny(missing_docs)]

pub mod action;
pub mod attribution;
pub mod config;
pub mod decision;
pub mod dimension;
pub mod error;
pub mod features;
pub mod holdout;
pub mod ids;
pub mod metric;
pub mod pii;
pub mod predicate;
pub mod text;
pub mod usecase;

pub use action::{ActionId, ActionSpace, EligibilityMask, ExclusionRule, JointAction};
pub use decision::{Decision, Outcome, OutcomeKind, Reward, RewardStatus};
pub use dimension::{Channel, Dimension, DimensionKind, LocalTime, MessageTarget, OptionSpec};
pub use error::{Error, Result};
pub use features::{Customer, FeatureSchema, FeatureSpec, FeatureType, FeatureValue};
pub use holdout::{ControlAction, Group, Holdout};
pub use ids::{CustomerId, Fraction, Identifier, Probability};
pub use metric::{MetricKind, SuccessMetric};
pub use usecase::{StoreSettings, UseCase, UseCaseKind};
