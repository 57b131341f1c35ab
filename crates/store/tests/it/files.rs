//! The store as a file: created with its directory, persistent, migrated, refused when newer.

use offerloop_store::{Error, RunPhase, SqliteStore, Store};

use crate::{at, day, decision};

#[test]
fn a_file_store_is_created_with_its_directory_and_keeps_everything_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".offerloop").join("state.db");
    let run_id = {
        let store = SqliteStore::open(&path).unwrap();
        let run = store
            .begin_run("winback", day("2026-11-29"), at("2026-11-29T06:00:00Z"))
            .unwrap();
        store.record_decisions(run.id, &[decision("d1", "c1", 0)]).unwrap();
        store
            .advance_run(run.id, RunPhase::Decided, at("2026-11-29T06:01:00Z"))
            .unwrap();
        run.id
    };
    assert!(path.is_file());
    let store = SqliteStore::open(&path).unwrap();
    let run = store.run("winback", day("2026-11-29")).unwrap().unwrap();
    assert_eq!((run.id, run.phase), (run_id, RunPhase::Decided));
    assert_eq!(store.decisions(run_id).unwrap(), vec![decision("d1", "c1", 0)]);
}

#[test]
fn two_handles_on_one_file_see_each_others_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let writer = SqliteStore::open(&path).unwrap();
    let reader = SqliteStore::open(&path).unwrap();
    let run = writer
        .begin_run("winback", day("2026-11-29"), at("2026-11-29T06:00:00Z"))
        .unwrap();
    assert_eq!(reader.run("winback", day("2026-11-29")).unwrap(), Some(run));
}

#[test]
fn an_empty_version_0_file_is_migrated_to_the_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(&path, b"").unwrap();
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SqliteStore::SCHEMA_VERSION);
    const { assert!(SqliteStore::SCHEMA_VERSION >= 1) };
    store
        .begin_run("winback", day("2026-11-29"), at("2026-11-29T06:00:00Z"))
        .unwrap();
}

#[test]
fn a_file_from_a_newer_offerloop_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(SqliteStore::open(&path).unwrap());
    {
        // Pretend a newer offerloop wrote the file, without depending on SQL here: SQLite keeps
        // `user_version` as a big-endian 32-bit integer at byte offset 60 of the file header.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[60..64].copy_from_slice(&99_u32.to_be_bytes());
        std::fs::write(&path, bytes).unwrap();
    }
    match SqliteStore::open(&path) {
        Err(error @ Error::SchemaTooNew { found: 99, .. }) => {
            assert!(error.to_string().contains("upgrade offerloop"), "{error}");
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[test]
fn a_file_that_is_not_a_database_is_a_database_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(
        &path,
        b"this is not a SQLite file, it is plain text, long enough to matter.....",
    )
    .unwrap();
    assert!(matches!(SqliteStore::open(&path), Err(Error::Database { .. })));
}

#[test]
fn the_default_path_is_the_documented_one() {
    assert_eq!(offerloop_store::DEFAULT_PATH, ".offerloop/state.db");
    assert_eq!(SqliteStore::DEFAULT_PATH, offerloop_store::DEFAULT_PATH);
}
