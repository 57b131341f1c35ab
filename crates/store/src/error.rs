//! The error type of `offerloop-store`.

/// Everything the store can fail at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database reported an error during `operation`.
    #[error("store ({operation}): {source}")]
    Database {
        /// What was being done.
        operation: &'static str,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// A batch cannot move from its state to the one asked.
    #[error("send batch {batch}: cannot move from {from:?} to {to:?}")]
    BatchState {
        /// The batch.
        batch: String,
        /// Its state.
        from: crate::BatchState,
        /// The state asked for.
        to: crate::BatchState,
    },
    /// A record names something that is not stored.
    #[error("{what} `{id}` is not in the store")]
    NotFound {
        /// Kind of record.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A stored value could not be read back.
    #[error("store: corrupt {what}: {message}")]
    Corrupt {
        /// What.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// A value cannot be stored (e.g. a time outside the years 1678 to 2261, which the store keeps as
    /// integer nanoseconds, or a number that is not a number).
    #[error("store: cannot store {what}: {message}")]
    Unstorable {
        /// What.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// The database was written by a newer offerloop: its schema version is one this code does not
    /// know, so it is left untouched.
    #[error(
        "store: the database's schema version is {found} but this offerloop knows versions up to {supported}: upgrade offerloop"
    )]
    SchemaTooNew {
        /// The file's schema version (`PRAGMA user_version`).
        found: i64,
        /// The newest version this code migrates to.
        supported: i64,
    },
    /// Another process (or task) holds the use case's lock: it is running, reporting or syncing the
    /// same use case on the same store ([`crate::Store::lock_use_case`]).
    #[error(
        "the use case `{use_case}` is busy in this store: {} holds it{}; wait for it to finish, or stop it (a killed process releases it at once)",
        holder.as_ref().map_or_else(|| "another process".to_owned(), |h| h.to_string()),
        path.as_ref().map(|p| format!(" (lock file {})", p.display())).unwrap_or_default()
    )]
    Locked {
        /// The use case.
        use_case: String,
        /// Who holds it, when it could be read.
        holder: Option<Box<crate::LockHolder>>,
        /// The lock file, for a file store.
        path: Option<std::path::PathBuf>,
    },
    /// The file is an SQLite database that offerloop did not create (it has tables but no offerloop
    /// schema version): it is left untouched.
    #[error(
        "store: not an offerloop store (an SQLite database with {tables} table(s) of another program); left untouched"
    )]
    Foreign {
        /// How many tables it has.
        tables: i64,
    },
    /// The database file or its directory could not be created.
    #[error("store {path}: {source}")]
    Open {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
