//! Store locations as people write them: SQLite paths and PostgreSQL URLs, the password only from
//! the environment, and `open` behind `Arc<dyn Store>`.

use offerloop_store::{DEFAULT_PASSWORD_ENV, Error, StoreLocation, open};

use crate::{at, backend, day};

/// An environment variable that is never set.
const UNSET: &str = "OFFERLOOP_IT_UNSET_PASSWORD_VARIABLE";

#[test]
fn a_url_is_a_postgres_store_and_anything_else_an_sqlite_file() {
    let location = StoreLocation::parse("postgres://offerloop@db.internal:5433/loop?schema=winback", UNSET).unwrap();
    let StoreLocation::Postgres(config) = &location else {
        panic!("{location:?}");
    };
    assert_eq!(config.schema(), "winback");
    assert!(!config.has_password());
    assert_eq!(
        location.display(),
        "postgres://offerloop@db.internal:5433/loop?schema=winback"
    );
    assert_eq!(location.to_string(), location.display());
    let location = StoreLocation::parse("postgresql://offerloop@db.internal/loop", UNSET).unwrap();
    let StoreLocation::Postgres(config) = &location else {
        panic!("{location:?}");
    };
    assert_eq!(config.schema(), "public");
    let file = StoreLocation::parse(".offerloop/state.db", UNSET).unwrap();
    assert!(matches!(&file, StoreLocation::Sqlite(path) if path.ends_with("state.db")));
    assert_eq!(file.display(), ".offerloop/state.db");
    assert_eq!(DEFAULT_PASSWORD_ENV, "OFFERLOOP_STORE_PASSWORD");
}

#[test]
fn a_password_in_the_url_is_refused_and_never_shown() {
    for url in [
        "postgres://offerloop:correct-horse@db/loop",
        "postgres://offerloop@db/loop?password=correct-horse",
    ] {
        let err = StoreLocation::parse(url, "LOOP_DB_PASSWORD").unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("put the password in the environment variable LOOP_DB_PASSWORD, not in the URL"),
            "{text}"
        );
        assert!(!text.contains("correct-horse") && !format!("{err:?}").contains("correct-horse"));
    }
}

#[test]
fn the_password_comes_from_the_named_environment_variable_and_never_shows() {
    // `PATH` is set in any test environment: it stands for a password variable here.
    let secret = std::env::var("PATH").unwrap();
    let location = StoreLocation::parse("postgres://offerloop@db/loop", "PATH").unwrap();
    let StoreLocation::Postgres(config) = &location else {
        panic!("{location:?}");
    };
    assert!(config.has_password());
    let shown = format!("{location:?} {location} {config:?}");
    assert!(!shown.contains(&secret), "{shown}");
}

#[test]
fn invalid_schemas_and_urls_are_refused() {
    for url in [
        "postgres://offerloop@db/loop?schema=Winback",
        "postgres://offerloop@db/loop?schema=a;drop",
        "postgres://offerloop@db/loop?schema=a&schema=b",
        "postgres://offerloop@db:notaport/loop",
    ] {
        assert!(
            matches!(StoreLocation::parse(url, UNSET), Err(Error::Config { .. })),
            "{url}"
        );
    }
}

#[test]
fn open_opens_either_back_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let sqlite = open(&StoreLocation::parse(path.to_str().unwrap(), UNSET).unwrap()).unwrap();
    sqlite
        .begin_run("winback", day("2026-11-29"), at("2026-11-29T06:00:00Z"))
        .unwrap();
    assert!(path.is_file());
    let Some(config) = backend::config() else {
        return;
    };
    let postgres = open(&StoreLocation::Postgres(config.clone())).unwrap();
    let run = postgres
        .begin_run("winback", day("2026-11-29"), at("2026-11-29T06:00:00Z"))
        .unwrap();
    // The same schema opened again holds the same run.
    let again = open(&StoreLocation::parse(&config.display(), DEFAULT_PASSWORD_ENV).unwrap()).unwrap();
    assert_eq!(again.run("winback", day("2026-11-29")).unwrap(), Some(run));
}
