//! [`StoreLocation`]: where a store is, as people write it (an SQLite file path or a
//! `postgres://` URL), and [`open`], which opens either behind `Arc<dyn Store>`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::{PostgresConfig, PostgresStore, Result, SqliteStore, Store};

/// The environment variable holding the PostgreSQL password by default.
pub const DEFAULT_PASSWORD_ENV: &str = "OFFERLOOP_STORE_PASSWORD";

/// Where a store is.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum StoreLocation {
    /// An SQLite file (created with its directory when missing).
    Sqlite(PathBuf),
    /// A PostgreSQL database and schema.
    Postgres(PostgresConfig),
}

impl StoreLocation {
    /// The location `text` names: a `postgres://` or `postgresql://` URL is a PostgreSQL store (its
    /// password, if any, read from the environment variable `password_env`, see
    /// [`PostgresConfig::parse`]; a schema chosen with `?schema=NAME`, default `public`); anything
    /// else is the path of an SQLite file.
    ///
    /// # Errors
    /// [`crate::Error::Config`] for a PostgreSQL URL that is invalid, names an invalid schema, or
    /// holds a password (which belongs in `password_env`, never in a URL that ends up in logs and
    /// shell histories).
    pub fn parse(text: &str, password_env: &str) -> Result<Self> {
        let lower = text.trim_start().to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Ok(Self::Postgres(PostgresConfig::parse(text.trim(), password_env)?))
        } else {
            Ok(Self::Sqlite(PathBuf::from(text)))
        }
    }

    /// The location for people (messages, logs): the path, or the URL and schema, never a password.
    pub fn display(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres(config) => config.display(),
        }
    }

    /// Whether it is a PostgreSQL store (shared by several workers and hosts).
    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

/// Opens the store at `location` (creating and migrating it as [`SqliteStore::open`] and
/// [`PostgresStore::connect`] do).
///
/// # Errors
/// Those of [`SqliteStore::open`] or [`PostgresStore::connect`].
pub fn open(location: &StoreLocation) -> Result<Arc<dyn Store>> {
    Ok(match location {
        StoreLocation::Sqlite(path) => Arc::new(SqliteStore::open(path)?),
        StoreLocation::Postgres(config) => Arc::new(PostgresStore::connect(config)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_postgres_and_everything_else_a_file() {
        let env = "OFFERLOOP_TEST_NO_SUCH_PASSWORD_VARIABLE";
        for url in [
            "postgres://me@db/app",
            "postgresql://me@db/app?schema=day",
            "POSTGRES://me@db/app",
        ] {
            let location = StoreLocation::parse(url, env).unwrap();
            assert!(location.is_postgres(), "{url}");
        }
        for path in [".offerloop/state.db", "postgres.db", "/tmp/postgres://x", "sqlite://x"] {
            assert!(
                matches!(StoreLocation::parse(path, env).unwrap(), StoreLocation::Sqlite(p) if p == std::path::Path::new(path))
            );
        }
        assert_eq!(
            StoreLocation::parse("postgres://me@db/app?schema=day", env)
                .unwrap()
                .display(),
            "postgres://me@db/app?schema=day"
        );
    }
}
