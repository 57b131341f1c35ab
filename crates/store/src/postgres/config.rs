//! [`PostgresConfig`]: where a PostgreSQL store lives (a `postgres://` URL and a schema) and the
//! password to log in with, which never comes from the URL and never leaves this value except to
//! the client that logs in.

use secrecy::{ExposeSecret as _, SecretString};

use crate::{Error, Result};

/// The schema used when the URL names none.
pub const DEFAULT_SCHEMA: &str = "public";

/// The longest schema name PostgreSQL keeps (`NAMEDATALEN - 1`).
const MAX_SCHEMA_LEN: usize = 63;

/// Connections a store's pool opens at most by default.
const DEFAULT_POOL_SIZE: usize = 8;

/// Where a [`PostgresStore`](crate::PostgresStore) connects: a `postgres://` (or `postgresql://`)
/// URL without a password, the schema holding offerloop's tables, and the password (from the
/// environment, see [`crate::StoreLocation::parse`]).
///
/// Guaranteed: the URL holds no password (neither `user:password@` nor `?password=`), and the schema
/// name matches `[a-z_][a-z0-9_]*` (so it is safe to put in SQL and in `search_path`). Its `Debug`
/// and [`PostgresConfig::display`] never show the password.
#[derive(Clone)]
pub struct PostgresConfig {
    /// The URL as given, without the `schema` parameter.
    url: String,
    /// The schema (default [`DEFAULT_SCHEMA`]).
    schema: String,
    /// The password, if any (`None`: the server trusts the user, or a `.pgpass`-like mechanism of
    /// the server's side applies).
    password: Option<SecretString>,
    /// Connections the pool opens at most.
    pool_size: usize,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &self.url)
            .field("schema", &self.schema)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

impl PostgresConfig {
    /// The configuration of `url` (`postgres://user@host:port/database?schema=NAME&...`), with the
    /// password read from the environment variable `password_env` (absent or empty: no password).
    ///
    /// Every URL parameter but `schema` is handed to the client as it is (e.g. `connect_timeout`,
    /// `application_name`, `host=/run/postgresql` for a Unix socket); `sslmode` must be `disable` or
    /// `prefer` (this client speaks no TLS).
    ///
    /// # Errors
    /// [`Error::Config`] when `url` is not a PostgreSQL URL, holds a password, names an invalid
    /// schema, or is refused by the client's parser.
    pub fn parse(url: &str, password_env: &str) -> Result<Self> {
        let password = std::env::var(password_env)
            .ok()
            .filter(|p| !p.is_empty())
            .map(SecretString::from);
        Self::from_url(url, password_env, password)
    }

    /// As [`PostgresConfig::parse`] with the password given (`password_env` only names where it
    /// should have come from, in the error for a URL holding one).
    ///
    /// # Errors
    /// As [`PostgresConfig::parse`].
    pub fn from_url(url: &str, password_env: &str, password: Option<SecretString>) -> Result<Self> {
        let config = |message: String| Error::Config { message };
        let mut parsed = url::Url::parse(url).map_err(|e| config(format!("invalid PostgreSQL URL: {e}")))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(config(format!(
                "`{}` is not a PostgreSQL URL (postgres:// or postgresql://)",
                redacted(&parsed)
            )));
        }
        let in_query = parsed
            .query_pairs()
            .any(|(key, _)| key.eq_ignore_ascii_case("password"));
        if parsed.password().is_some() || in_query {
            return Err(config(format!(
                "the PostgreSQL URL `{}` contains a password: put the password in the environment variable \
                 {password_env}, not in the URL",
                redacted(&parsed)
            )));
        }
        // The other parameters are kept as written: the client decodes `%XX` but not `+`, so they
        // must not be re-encoded as a form would.
        let mut schema = None;
        let mut rest = Vec::new();
        for piece in parsed.query().unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let Some((key, value)) = url::form_urlencoded::parse(piece.as_bytes()).next() else {
                continue;
            };
            if key == "schema" {
                if schema.replace(value.into_owned()).is_some() {
                    return Err(config("the PostgreSQL URL names `schema` twice".to_owned()));
                }
            } else {
                rest.push(piece.to_owned());
            }
        }
        let rest = rest.join("&");
        parsed.set_query((!rest.is_empty()).then_some(rest.as_str()));
        let schema = schema.unwrap_or_else(|| DEFAULT_SCHEMA.to_owned());
        check_schema(&schema)?;
        let this = Self {
            url: parsed.to_string(),
            schema,
            password,
            pool_size: DEFAULT_POOL_SIZE,
        };
        // Refuse now what the client would refuse at connection time.
        this.client_config()?;
        Ok(this)
    }

    /// The same store in another schema.
    ///
    /// # Errors
    /// [`Error::Config`] when `schema` does not match `[a-z_][a-z0-9_]*` (at most 63 characters).
    pub fn with_schema(mut self, schema: &str) -> Result<Self> {
        check_schema(schema)?;
        schema.clone_into(&mut self.schema);
        Ok(self)
    }

    /// The same store, logging in with `password` instead.
    pub fn with_password(mut self, password: Option<SecretString>) -> Self {
        self.password = password;
        self
    }

    /// The same store with at most `size` pooled connections (at least 1; default 8). A lock of a
    /// use case holds one more connection of its own while held.
    pub fn with_pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// The schema holding offerloop's tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Connections the pool opens at most.
    pub fn pool_size(&self) -> usize {
        self.pool_size
    }

    /// Whether a password is set (it is never shown).
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// The location for people: the URL (which holds no password) with its schema.
    pub fn display(&self) -> String {
        if self.schema == DEFAULT_SCHEMA {
            return self.url.clone();
        }
        let separator = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{separator}schema={}", self.url, self.schema)
    }

    /// The client's configuration: the URL, the password, `search_path` set to the schema on every
    /// connection, and `application_name` `offerloop` unless the URL names one.
    pub(crate) fn client_config(&self) -> Result<tokio_postgres::Config> {
        let mut config: tokio_postgres::Config = self.url.parse().map_err(|e| Error::Config {
            message: format!("invalid PostgreSQL URL `{}`: {e}", self.url),
        })?;
        if let Some(password) = &self.password {
            config.password(password.expose_secret());
        }
        // The schema name is checked (`[a-z_][a-z0-9_]*`): it needs no quoting in an option.
        let search_path = format!("-c search_path={}", self.schema);
        let options = match config.get_options() {
            Some(given) if !given.is_empty() => format!("{given} {search_path}"),
            _ => search_path,
        };
        config.options(options);
        if config.get_application_name().is_none() {
            config.application_name("offerloop");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        Ok(config)
    }
}

/// `url` with its password, if any, replaced by `***`, for messages.
fn redacted(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Setting a password fails only for URLs that cannot have one, and this one has one.
        let _ = shown.set_password(Some("***"));
    }
    let pairs: Vec<(String, String)> = shown
        .query_pairs()
        .map(|(key, value)| {
            let value = if key.eq_ignore_ascii_case("password") {
                "***".to_owned()
            } else {
                value.into_owned()
            };
            (key.into_owned(), value)
        })
        .collect();
    if !pairs.is_empty() {
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

/// Checks a schema name: `[a-z_][a-z0-9_]*`, at most 63 characters.
fn check_schema(schema: &str) -> Result<()> {
    let mut chars = schema.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= MAX_SCHEMA_LEN;
    if valid {
        Ok(())
    } else {
        Err(Error::Config {
            message: format!(
                "invalid schema name `{schema}`: use lowercase letters, digits and `_`, not starting with a digit, \
                 at most {MAX_SCHEMA_LEN} characters"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_parameter_is_taken_out_and_other_parameters_kept() {
        let config =
            PostgresConfig::from_url("postgres://me@db:5433/app?connect_timeout=3&schema=day_1", "X", None).unwrap();
        assert_eq!(config.schema(), "day_1");
        assert_eq!(config.url, "postgres://me@db:5433/app?connect_timeout=3");
        assert_eq!(
            config.display(),
            "postgres://me@db:5433/app?connect_timeout=3&schema=day_1"
        );
        let client = config.client_config().unwrap();
        assert_eq!(client.get_options(), Some("-c search_path=day_1"));
        assert_eq!(client.get_dbname(), Some("app"));
        let plain = PostgresConfig::from_url("postgresql://me@db/app", "X", None).unwrap();
        assert_eq!(plain.schema(), DEFAULT_SCHEMA);
        assert_eq!(plain.display(), "postgresql://me@db/app");
    }

    #[test]
    fn other_parameters_reach_the_client_as_written() {
        let config = PostgresConfig::from_url(
            "postgres://me@db/app?options=-c%20synchronous_commit%3Doff&schema=s&application_name=day%201",
            "X",
            None,
        )
        .unwrap();
        let client = config.client_config().unwrap();
        assert_eq!(client.get_options(), Some("-c synchronous_commit=off -c search_path=s"));
        assert_eq!(client.get_application_name(), Some("day 1"));
        assert_eq!(
            config.display(),
            "postgres://me@db/app?options=-c%20synchronous_commit%3Doff&application_name=day%201&schema=s"
        );
    }

    #[test]
    fn passwords_in_the_url_are_refused_without_being_shown() {
        for url in [
            "postgres://me:hunter2@db/app",
            "postgres://me@db/app?password=hunter2",
            "postgres://me@db/app?PASSWORD=hunter2&schema=x",
        ] {
            let err = PostgresConfig::from_url(url, "MY_PASSWORD", None).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("MY_PASSWORD"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
            assert!(!format!("{err:?}").contains("hunter2"));
        }
    }

    #[test]
    fn schema_names_are_checked() {
        for bad in ["", "1x", "Day", "a-b", "a b", "x;drop", &"a".repeat(64)] {
            let url = format!("postgres://me@db/app?schema={bad}");
            assert!(
                matches!(PostgresConfig::from_url(&url, "X", None), Err(Error::Config { .. })),
                "{bad:?}"
            );
        }
        for good in ["_", "a", "t_12", &"a".repeat(63)] {
            let url = format!("postgres://me@db/app?schema={good}");
            assert_eq!(PostgresConfig::from_url(&url, "X", None).unwrap().schema(), good);
        }
    }

    #[test]
    fn the_password_never_shows_in_debug() {
        let config =
            PostgresConfig::from_url("postgres://me@db/app", "X", Some(SecretString::from("hunter2"))).unwrap();
        assert!(config.has_password());
        let shown = format!("{config:?} {}", config.display());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        let client = config.client_config().unwrap();
        assert!(!format!("{client:?}").contains("hunter2"));
    }
}
