//! The error type of `offerloop-policy`.

/// Everything a policy can refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A customer's feature vector does not match the use case's schema.
    #[error("customer `{customer}`: {found} feature values for a schema of {expected}")]
    FeatureCount {
        /// The customer.
        customer: String,
        /// Values given.
        found: usize,
        /// Features in the schema.
        expected: usize,
    },
    /// No joint action is allowed for this customer (eligibility and rules exclude them all).
    #[error("customer `{customer}`: no eligible joint action (eligibility rules and exclusions forbid every one)")]
    NoEligibleAction {
        /// The customer.
        customer: String,
    },
    /// Feedback names an action outside the action space, or one the rules forbid.
    #[error("feedback #{index}: {message}")]
    BadFeedback {
        /// Position of the record in the batch.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// A whole action distribution was asked for a space too large to enumerate.
    #[error("customer `{customer}`: {count} eligible joint actions are too many to list (at most {limit})")]
    TooManyActions {
        /// The customer.
        customer: String,
        /// Eligible joint actions.
        count: u64,
        /// The enumeration limit ([`crate::sampling::ENUMERATION_LIMIT`]).
        limit: u64,
    },
    /// A setting is out of its range.
    #[error("policy setting `{setting}`: {message}")]
    Setting {
        /// The setting's name.
        setting: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A snapshot cannot be restored.
    #[error("model snapshot: {0}")]
    Snapshot(String),
    /// A policy's state holds a number that is not finite (learning overflowed), so its snapshot must
    /// not be saved: JSON would write it as `null`, and the saved model would not restore.
    #[error("model snapshot: the {algorithm} state holds {value} at `{path}`, not a finite number; it cannot be saved")]
    NonFiniteSnapshot {
        /// The algorithm whose state it is.
        algorithm: &'static str,
        /// Where in the state (`model.blocks[2].mean[7]`).
        path: String,
        /// The number (NaN or an infinity).
        value: f64,
    },
    /// The domain refused something (an action id out of range, ...).
    #[error(transparent)]
    Domain(#[from] offerloop_domain::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
