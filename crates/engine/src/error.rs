//! The engine's error type: every failure of a daily run, wrapping the layer it came from.

use std::path::PathBuf;

/// Everything that can stop a daily run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field the run would export is personal data; refused before any call.
    #[error("refused before any Braze call: {0}")]
    Pii(#[from] offerloop_domain::pii::PiiRefused),
    /// Braze refused or failed a call (the message names the endpoint and, for 403, the permission).
    #[error(transparent)]
    Braze(#[from] offerloop_braze::BrazeError),
    /// Reading an export's files failed.
    #[error("reading the audience export: {0}")]
    Export(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] offerloop_store::Error),
    /// Reading a Braze Currents bucket failed (listing, fetching, a key).
    #[error(transparent)]
    Currents(#[from] offerloop_currents::Error),
    /// The policy failed.
    #[error(transparent)]
    Policy(#[from] offerloop_policy::Error),
    /// Planning activation batches failed.
    #[error(transparent)]
    Activation(#[from] offerloop_activation::Error),
    /// A domain value was invalid (a customer id, a probability, an action).
    #[error(transparent)]
    Domain(#[from] offerloop_domain::Error),
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Stored JSON did not have the expected shape.
    #[error("stored {what} does not parse: {source}")]
    Json {
        /// What was being read.
        what: &'static str,
        /// Why.
        source: serde_json::Error,
    },
    /// The run is misconfigured (missing builder part, bad option).
    #[error("daily run misconfigured: {0}")]
    Config(String),
    /// A day shared by workers was asked to run as a single process (or the reverse): the day's
    /// state belongs to the other protocol.
    #[error("the run of `{use_case}` on {date} {why}")]
    SharedDay {
        /// The use case.
        use_case: String,
        /// The day.
        date: jiff::civil::Date,
        /// What is in the way, and what to do.
        why: String,
    },
    /// A worker was started with another version of the use case than the day's planner.
    #[error(
        "this worker's `{use_case}` (fingerprint {ours}) is not the version the day was planned with ({theirs}): start every worker with the same use-case file"
    )]
    WorkerVersion {
        /// The use case.
        use_case: String,
        /// This worker's fingerprint.
        ours: String,
        /// The day's.
        theirs: String,
    },
    /// A blocking task died.
    #[error("a background task failed: {0}")]
    Task(String),
}

/// The engine's result type.
pub type Result<T> = std::result::Result<T, Error>;
