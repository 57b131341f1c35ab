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
    /// A worker's shard lease is no longer its own: it expired and another worker took the shard
    /// over (or finished it). The worker must stop working on the shard.
    #[error(
        "shard {shard} of run {run_id}: the lease of `{holder}` (token {token}) was lost: the shard was taken over or is done"
    )]
    LeaseLost {
        /// The run.
        run_id: i64,
        /// The shard.
        shard: u32,
        /// The worker that lost it.
        holder: String,
        /// Its lease's token.
        token: i64,
    },
    /// PostgreSQL reported an error during `operation` (the server's message, or why the connection
    /// failed; never the password). The message includes the client error's causes (its own
    /// `Display` says only "db error"), so `error` is not also given as the error's `source`.
    #[error("store ({operation}): {}", chain(error))]
    Postgres {
        /// What was being done.
        operation: &'static str,
        /// The client's error.
        error: tokio_postgres::Error,
    },
    /// No PostgreSQL connection could be had from the pool during `operation` (the server is
    /// unreachable, refused the login, or every connection stayed busy past the wait timeout). As
    /// for [`Error::Postgres`], the message includes the causes.
    #[error("store ({operation}): no database connection: {}", chain(error))]
    Pool {
        /// What was being done.
        operation: &'static str,
        /// The pool's error.
        error: deadpool_postgres::PoolError,
    },
    /// A store location or its settings are invalid (e.g. a PostgreSQL URL holding a password).
    #[error("store location: {message}")]
    Config {
        /// What is wrong, for people (never the password).
        message: String,
    },
    /// The PostgreSQL store's own runtime could not run `operation` (it could not be started, or
    /// the task running the operation failed).
    #[error("store ({operation}): the store's runtime failed: {message}")]
    Runtime {
        /// What was being done.
        operation: &'static str,
        /// Why.
        message: String,
    },
    /// The store cannot do `operation` (e.g. a test helper asked of a store that does not offer it).
    #[error("store: {operation} is not supported by this store")]
    Unsupported {
        /// What was asked.
        operation: &'static str,
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

/// `error` and its causes, each once: `a: b: c`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let part = error.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = error.source();
    }
    text
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
