//! The error type of `offerloop-sim`.

use std::path::PathBuf;

/// Everything the simulator can refuse or fail at (outside HTTP responses, which are Braze-shaped).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A scenario file could not be read.
    #[error("scenario {path}: {source}")]
    ReadScenario {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A scenario is malformed or inconsistent: `location` says where (file, line, field).
    #[error("scenario {location}: {message}")]
    Scenario {
        /// `file:line: field` or the field path when there is no file.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// The server could not bind or serve.
    #[error("simulated Braze server: {0}")]
    Server(#[source] std::io::Error),
    /// Writing an export or event file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
