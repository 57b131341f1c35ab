//! The crate's error.

/// What can go wrong building or writing a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store refused a read.
    #[error("reading the store: {0}")]
    Store(#[from] offerloop_store::Error),
    /// The stored model cannot be restored or used.
    #[error("the stored model: {0}")]
    Policy(#[from] offerloop_policy::Error),
    /// Off-policy evaluation refused its input.
    #[error("off-policy evaluation: {0}")]
    Ope(#[from] offerloop_policy::ope::OpeError),
    /// A stored record does not read back.
    #[error("{what} does not read back: {message}")]
    Corrupt {
        /// What was read.
        what: &'static str,
        /// Why it failed.
        message: String,
    },
    /// A chart could not be drawn.
    #[error("drawing the chart `{chart}`: {message}")]
    Chart {
        /// Chart title.
        chart: String,
        /// Why.
        message: String,
    },
    /// Writing the report's files.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
