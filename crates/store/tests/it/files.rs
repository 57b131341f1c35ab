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

/// Hostile files: garbage, a truncated store and another program's SQLite database are refused with
/// an error, and none of them is written to.
#[test]
fn a_corrupt_truncated_or_foreign_file_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    // Garbage.
    let garbage = dir.path().join("garbage.db");
    let bytes: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&garbage, &bytes).unwrap();
    let err = SqliteStore::open(&garbage).unwrap_err();
    assert!(err.to_string().contains("not a database"), "{err}");
    assert_eq!(std::fs::read(&garbage).unwrap(), bytes);
    // A real store cut in half.
    let whole = dir.path().join("whole.db");
    {
        let store = SqliteStore::open(&whole).unwrap();
        let run = store
            .begin_run("winback", crate::day("2026-11-29"), crate::at("2026-11-29T06:00:00Z"))
            .unwrap();
        let rows: Vec<offerloop_store::AudienceRow> = (0..2000)
            .map(|i| offerloop_store::AudienceRow {
                customer_id: format!("c{i}"),
                features: format!("{{\"x\": {i}}}"),
                time_zone: None,
            })
            .collect();
        store.record_audience(run.id, &rows).unwrap();
    }
    let full = std::fs::read(&whole).unwrap();
    let truncated = dir.path().join("truncated.db");
    std::fs::write(&truncated, &full[..full.len() / 2]).unwrap();
    let result = SqliteStore::open(&truncated).and_then(|s| s.audience(1));
    assert!(result.is_err(), "a truncated store is refused when read");
    // Another program's database.
    let foreign = dir.path().join("foreign.db");
    {
        let conn = rusqlite::Connection::open(&foreign).unwrap();
        conn.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL);")
            .unwrap();
    }
    let before = std::fs::read(&foreign).unwrap();
    let err = SqliteStore::open(&foreign).unwrap_err();
    assert!(matches!(err, offerloop_store::Error::Foreign { tables: 1 }), "{err}");
    assert!(err.to_string().contains("not an offerloop store"), "{err}");
    assert_eq!(std::fs::read(&foreign).unwrap(), before, "left untouched");
}
