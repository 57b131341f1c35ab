//! The error type of `offerloop-activation`.

/// Everything planning can refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A decision names an option that does not exist in the use case.
    #[error("decision {decision}: {message}")]
    BadDecision {
        /// The decision id.
        decision: String,
        /// What is wrong.
        message: String,
    },
    /// The use case cannot be activated (no channel dimension and no default target, ...).
    #[error("use case {use_case}: {message}")]
    UseCase {
        /// Its name.
        use_case: String,
        /// What is missing.
        message: String,
    },
    /// Writing the dry-run file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
