//! The stores the suite runs against: an in-memory SQLite store, or a PostgreSQL store in a fresh
//! schema of a database created once per run of this binary (see the crate docs of this test
//! binary for the environment it reads).
//!
//! The database is named `offerloop_it_<pid>_<random>`. It is not dropped when the binary ends
//! (there is no hook for that), but every run first drops the test databases of processes that are
//! gone, so at most one is left behind.

use std::io::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use offerloop_store::{DEFAULT_PASSWORD_ENV, PostgresConfig, PostgresStore, SqliteStore};
use tokio_postgres::NoTls;

/// The environment variable naming the test server.
pub const ENV: &str = "OFFERLOOP_TEST_POSTGRES";

/// The test server when [`ENV`] is not set: the one this machine runs (trust authentication).
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The prefix of the databases this binary creates.
const PREFIX: &str = "offerloop_it_";

/// The URL of this run's database, or why there is none.
static DATABASE: OnceLock<Result<String, String>> = OnceLock::new();

/// Schemas handed out so far.
static SCHEMAS: AtomicUsize = AtomicUsize::new(0);

/// A fresh in-memory SQLite store.
pub fn sqlite() -> Box<SqliteStore> {
    Box::new(SqliteStore::in_memory().unwrap())
}

/// A PostgreSQL store in a fresh schema, or `None` (said on stderr) when PostgreSQL tests are
/// skipped.
pub fn postgres() -> Option<PostgresStore> {
    let config = config()?;
    Some(PostgresStore::connect(&config).unwrap())
}

/// The configuration of a fresh schema (not created yet) of this run's database, or `None` (said
/// on stderr) when PostgreSQL tests are skipped. Panics, saying how to point the tests at a server,
/// when none is reachable.
pub fn config() -> Option<PostgresConfig> {
    let url = database()?;
    let schema = format!("t_{}", SCHEMAS.fetch_add(1, Ordering::SeqCst));
    Some(
        PostgresConfig::parse(url, DEFAULT_PASSWORD_ENV)
            .unwrap()
            .with_schema(&schema)
            .unwrap(),
    )
}

/// Whether PostgreSQL tests run (saying on stderr when they do not).
pub fn enabled() -> bool {
    database().is_some()
}

/// The URL of this run's database, created on first use.
pub fn database() -> Option<&'static str> {
    let setting = std::env::var(ENV).unwrap_or_else(|_| DEFAULT_URL.to_owned());
    if setting == "skip" {
        // Straight to the process's stderr, past the test harness's capture: a skip is never silent.
        let _ = writeln!(std::io::stderr(), "skipped: {ENV}=skip");
        return None;
    }
    match DATABASE.get_or_init(|| create_database(&setting)) {
        Ok(url) => Some(url),
        Err(message) => panic!("{message}"),
    }
}

/// Runs `sql` (several statements allowed) in `schema` of this run's database, on a connection of
/// its own.
pub fn execute(schema: &str, sql: &str) {
    let url = database().expect("PostgreSQL tests are enabled");
    block_on(async {
        let client = connect(url, Some(schema)).await.unwrap();
        client.batch_execute(sql).await.unwrap();
    });
}

/// The first column of the rows of `sql` in `schema` of this run's database, as text.
pub fn query(schema: &str, sql: &str) -> Vec<Option<String>> {
    let url = database().expect("PostgreSQL tests are enabled");
    block_on(async {
        let client = connect(url, Some(schema)).await.unwrap();
        client
            .simple_query(sql)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|message| match message {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_owned)),
                _ => None,
            })
            .collect()
    })
}

/// Holds a connection to this run's database open in `schema` while `work` runs with it.
pub fn with_connection<T>(schema: &str, work: impl AsyncFnOnce(&tokio_postgres::Client) -> T) -> T {
    let url = database().expect("PostgreSQL tests are enabled");
    block_on(async {
        let client = connect(url, Some(schema)).await.unwrap();
        work(&client).await
    })
}

/// Runs `work` on a current-thread runtime of its own.
pub fn block_on<T>(work: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(work)
}

/// A connection to `url` (with `search_path` set to `schema`), its password from the environment.
async fn connect(url: &str, schema: Option<&str>) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut config: tokio_postgres::Config = url.parse()?;
    if let Ok(password) = std::env::var(DEFAULT_PASSWORD_ENV) {
        config.password(password);
    }
    if let Some(schema) = schema {
        config.options(format!("-c search_path={schema}"));
    }
    config.connect_timeout(std::time::Duration::from_secs(10));
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Creates this run's database on the server of `admin_url` (after dropping those of processes
/// that are gone); returns its URL.
fn create_database(admin_url: &str) -> Result<String, String> {
    let unreachable = |error: &dyn std::error::Error| {
        let mut error_text = error.to_string();
        let mut cause = error.source();
        while let Some(error) = cause {
            error_text = format!("{error_text}: {error}");
            cause = error.source();
        }
        format!(
            "PostgreSQL at {admin_url} cannot be used for the store's tests: {error_text}. Point {ENV} at a server and \
             database where the user may create databases (postgres://user@host:port/database; a password goes \
             in {DEFAULT_PASSWORD_ENV}), or set {ENV}=skip to skip the PostgreSQL tests"
        )
    };
    let mut url = url::Url::parse(admin_url).map_err(|e| unreachable(&e))?;
    let name = format!("{PREFIX}{}_{:016x}", std::process::id(), random());
    block_on(async {
        let client = connect(admin_url, None).await.map_err(|e| unreachable(&e))?;
        drop_stale_databases(&client).await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(|e| unreachable(&e))
    })?;
    url.set_path(&name);
    Ok(url.to_string())
}

/// Drops the test databases of processes that no longer run (where `/proc` says so).
async fn drop_stale_databases(client: &tokio_postgres::Client) {
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let Ok(rows) = client
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'offerloop\\_it\\_%'",
            &[],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let pid = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            // Best effort: a database still in use stays.
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await;
        }
    }
}

/// A random number (the standard library's randomly keyed hasher).
fn random() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}
