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
    /// `templates sync`: a template file of an option cannot be read.
    #[error("option {option}: cannot read the template file {path}: {source}")]
    TemplateFile {
        /// The option, as `<dimension>.<option>`.
        option: String,
        /// The file, as resolved against the use-case file's directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `templates sync`: Braze's templates cannot be matched to the use case's (two share a name, ...).
    #[error("template `{name}`: {message}")]
    Template {
        /// The template name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// `templates sync`: a Braze request failed.
    #[error(transparent)]
    Braze(#[from] offerloop_braze::BrazeError),
    /// A local state file (the template ids) is not what offerloop wrote.
    #[error("{path}: {message}")]
    BadFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
