//! The one error type of `offerloop-domain`.
//!
//! Configuration problems are not reported through this enum one at a time: the config reader collects
//! every [`crate::config::Diagnostic`] of a file in one pass and returns them together as
//! [`Error::Config`]. The other variants are the invariants the domain types guard when they are built
//! programmatically.

use crate::config::Diagnostics;

/// Everything that can go wrong while building or using domain values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A use-case file has one or more problems; each is located by file, line, column and field path.
    #[error("{0}")]
    Config(Diagnostics),
    /// An identifier (use case, dimension, option, feature) is empty or uses characters outside
    /// `[a-z0-9_-]`. The message quotes at most [`crate::text::EXCERPT_CHARS`] characters of it.
    #[error("invalid identifier `{}`: {reason}", crate::text::excerpt(value))]
    InvalidIdentifier {
        /// The offending text.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A probability or fraction is outside its allowed range or not finite.
    #[error("{what} must be in {range}, got {value}")]
    OutOfRange {
        /// Which quantity.
        what: &'static str,
        /// The allowed range, written as an interval.
        range: &'static str,
        /// The value that was given.
        value: f64,
    },
    /// A dimension has no options.
    #[error("dimension `{0}` has no options")]
    EmptyDimension(String),
    /// Two dimensions share a name, or two options of one dimension share an id.
    #[error("duplicate {what} `{name}`")]
    Duplicate {
        /// `dimension` or `option`.
        what: &'static str,
        /// The repeated name.
        name: String,
    },
    /// The product of the dimensions' sizes does not fit the 64-bit [`crate::ActionId`].
    #[error("the action space has more than 2^64 joint actions")]
    ActionSpaceTooLarge,
    /// A use case has no dimensions.
    #[error("an action space needs at least one dimension")]
    NoDimensions,
    /// A name does not refer to a dimension of the action space.
    #[error("unknown dimension `{0}`")]
    UnknownDimension(String),
    /// A name does not refer to an option of the given dimension.
    #[error("unknown option `{option}` in dimension `{dimension}`")]
    UnknownOption {
        /// The dimension that was searched.
        dimension: String,
        /// The option id that was not found.
        option: String,
    },
    /// An [`crate::ActionId`] is not below the size of the space it is decoded against.
    #[error("action id {id} is outside an action space of {size} joint actions")]
    ActionIdOutOfRange {
        /// The id.
        id: u64,
        /// The number of joint actions (before exclusions).
        size: u64,
    },
    /// A joint action has the wrong number of dimensions or an option index past the dimension's end.
    #[error("joint action does not fit the action space: {0}")]
    MalformedAction(String),
    /// Every joint action is excluded by the rules.
    #[error("the exclusion rules leave no joint action")]
    EmptyActionSpace,
    /// A profile field or custom attribute is personal data and is refused.
    #[error(transparent)]
    Pii(#[from] crate::pii::PiiRefused),
    /// A feature path is not a valid export path.
    #[error("invalid feature field `{field}`: {reason}")]
    InvalidField {
        /// The field path.
        field: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A feature value does not have the type the schema declares.
    #[error("feature `{feature}` expects {expected}, got {got}")]
    FeatureType {
        /// Feature name.
        feature: String,
        /// The declared type.
        expected: &'static str,
        /// What was found.
        got: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
