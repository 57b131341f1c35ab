//! Unit tests of the SQLite store's internals: the batch state machine's table, transactions rolling
//! back whole, migrations between versions and the connection's settings. The behaviour through the
//! `Store` trait is tested in `tests/it/`.

use super::*;
use crate::BatchTarget;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn count(store: &SqliteStore, table: &str) -> i64 {
    store
        .conn()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| row.get(0))
        .unwrap()
}

#[test]
fn the_batch_state_machine_allows_exactly_the_documented_moves() {
    use BatchState::{Failed, Planned, Sending, Sent, Unknown};
    let all = [Planned, Sending, Sent, Failed, Unknown];
    let allowed = [
        (Planned, Sending),
        (Sending, Sent),
        (Sending, Failed),
        (Sending, Unknown),
        (Failed, Sending),
    ];
    for from in all {
        for to in all {
            assert_eq!(
                batch_move_allowed(from, to),
                allowed.contains(&(from, to)),
                "{from:?} -> {to:?}"
            );
        }
    }
}

#[test]
fn a_write_that_fails_midway_leaves_nothing() {
    let store = SqliteStore::in_memory().unwrap();
    let run = store
        .begin_run("winback", "2026-11-29".parse().unwrap(), at("2026-11-29T06:00:00Z"))
        .unwrap();
    let result: Result<()> = store.write("test", |tx| {
        tx.execute(
            "INSERT INTO audience (run_id, customer_id, features) VALUES (?1, 'c1', '{}')",
            [run.id],
        )
        .ctx("test")?;
        tx.execute(
            "INSERT INTO audience (run_id, customer_id, features) VALUES (?1, 'c2', '{}')",
            [run.id],
        )
        .ctx("test")?;
        Err(Error::NotFound {
            what: "test",
            id: "crash".to_owned(),
        })
    });
    assert!(matches!(result, Err(Error::NotFound { .. })));
    assert_eq!(count(&store, "audience"), 0);
    // The connection is usable afterwards: the transaction was rolled back, not left open.
    let rows = [AudienceRow {
        customer_id: "c1".to_owned(),
        features: serde_json::json!({}).to_string(),
        time_zone: None,
    }];
    assert_eq!(store.record_audience(run.id, &rows).unwrap(), 1);
}

#[test]
fn a_panic_inside_a_write_rolls_back_and_the_store_stays_usable() {
    let store = SqliteStore::in_memory().unwrap();
    let run = store
        .begin_run("winback", "2026-11-29".parse().unwrap(), at("2026-11-29T06:00:00Z"))
        .unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _: Result<()> = store.write("test", |tx| {
            tx.execute(
                "INSERT INTO audience (run_id, customer_id, features) VALUES (?1, 'c1', '{}')",
                [run.id],
            )
            .ctx("test")?;
            panic!("crash in the middle of a write");
        });
    }));
    assert!(outcome.is_err());
    assert_eq!(count(&store, "audience"), 0);
    assert_eq!(store.runs("winback", 10).unwrap().len(), 1);
}

#[test]
fn the_connection_is_set_up_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("nested/dir/state.db")).unwrap();
    let conn = store.conn();
    let journal: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0)).unwrap();
    let foreign_keys: i64 = conn.query_row("PRAGMA foreign_keys", [], |row| row.get(0)).unwrap();
    let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |row| row.get(0)).unwrap();
    let busy: i64 = conn.query_row("PRAGMA busy_timeout", [], |row| row.get(0)).unwrap();
    assert_eq!(journal, "wal");
    assert_eq!(foreign_keys, 1);
    assert_eq!(synchronous, 1, "NORMAL");
    assert_eq!(busy, 30_000);
}

#[test]
fn an_older_file_is_migrated_keeping_its_data_and_a_newer_one_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SqliteStore::SCHEMA_VERSION);
        store
            .begin_run("winback", "2026-11-29".parse().unwrap(), at("2026-11-29T06:00:00Z"))
            .unwrap();
    }
    // A later offerloop with one more migration upgrades the file and keeps the run.
    let mut later = schema::MIGRATIONS.to_vec();
    later.push("ALTER TABLE runs ADD COLUMN note TEXT;");
    let newer = SqliteStore::SCHEMA_VERSION + 1;
    {
        let mut conn = Connection::open(&path).unwrap();
        schema::migrate_with(&mut conn, &later).unwrap();
        assert_eq!(schema::version(&conn).unwrap(), newer);
        let (runs, notes): (i64, i64) = conn
            .query_row("SELECT count(*), count(note) FROM runs", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert_eq!((runs, notes), (1, 0));
        // Migrating again is a no-op.
        schema::migrate_with(&mut conn, &later).unwrap();
    }
    // This offerloop does not know the last migration: the file is refused and left as it is.
    match SqliteStore::open(&path) {
        Err(Error::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (newer, SqliteStore::SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let conn = Connection::open(&path).unwrap();
    assert_eq!(schema::version(&conn).unwrap(), newer);
}

#[test]
fn a_version_1_file_gains_the_deliveries_table_keeping_its_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let mut conn = Connection::open(&path).unwrap();
        schema::migrate_with(&mut conn, &schema::MIGRATIONS[..1]).unwrap();
        assert_eq!(schema::version(&conn).unwrap(), 1);
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SqliteStore::SCHEMA_VERSION);
    let tables: i64 = store
        .conn()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'deliveries'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1);
}

#[test]
fn a_failing_migration_leaves_the_file_at_its_old_version() {
    let mut conn = Connection::open_in_memory().unwrap();
    let broken = [
        schema::MIGRATIONS[0],
        "CREATE TABLE extra (x INTEGER); THIS IS NOT SQL;",
    ];
    assert!(matches!(
        schema::migrate_with(&mut conn, &broken),
        Err(Error::Database { .. })
    ));
    assert_eq!(schema::version(&conn).unwrap(), 0);
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(tables, 0, "the whole migration rolled back, version 1 included");
}

#[test]
fn a_version_4_ledger_gets_typed_targets_retryability_and_its_dry_runs_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let mut conn = Connection::open(&path).unwrap();
        schema::migrate_with(&mut conn, &schema::MIGRATIONS[..4]).unwrap();
        conn.execute_batch(
            "INSERT INTO runs (id, use_case, date, phase, started_at, updated_at) VALUES
                 (1, 'winback', '2026-11-28', 'done', 0, 0),
                 (2, 'winback', '2026-11-29', 'done', 0, 0);
             INSERT INTO decisions (id, run_id, use_case, customer_id, decided_at, decision_group, action_id,
                                    propensity, policy_version, cost)
                 VALUES ('d1', 1, 'winback', 'c1', 0, 'treatment', 0, 0.5, 'v', 0),
                        ('d2', 2, 'winback', 'c1', 1, 'treatment', 0, 0.5, 'v', 0);
             INSERT INTO batches (id, run_id, target, decision_ids, request, state, detail, updated_at) VALUES
                 ('a', 1, 'campaign:camp-1', '[\"d1\"]', '{}', 'failed', 'retryable: 429 Too Many Requests', 0),
                 ('b', 1, 'users.track', '[\"d1\"]', '{}', 'failed', '401 Unauthorized', 0),
                 ('c', 1, 'canvas_schedule:cv:1', '[\"d1\"]', '{}', 'sent', 'dispatch-1', 0),
                 ('d', 2, 'campaign:camp-1', '[\"d2\"]', '{}', 'sent', 'dry run', 0);",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SqliteStore::SCHEMA_VERSION);
    let states = store.batch_states(1).unwrap();
    let typed: Vec<_> = states
        .iter()
        .map(|b| (b.target.clone(), b.retryable, b.dry_run, b.detail.clone().unwrap()))
        .collect();
    assert_eq!(
        typed,
        [
            (
                BatchTarget::Campaign("camp-1".into()),
                true,
                false,
                "429 Too Many Requests".into()
            ),
            (BatchTarget::UsersTrack, false, false, "401 Unauthorized".into()),
            (
                BatchTarget::CanvasSchedule("cv:1".into()),
                false,
                false,
                "dispatch-1".into()
            ),
        ]
    );
    // The dry run's run and decisions left the use case: the real run of its date can be made.
    let dry = store.batch_states(2).unwrap();
    assert!(dry[0].dry_run);
    assert!(store.run("winback", "2026-11-29".parse().unwrap()).unwrap().is_none());
    assert_eq!(
        store
            .run("winback (dry run)", "2026-11-29".parse().unwrap())
            .unwrap()
            .unwrap()
            .id,
        2
    );
    let ids: Vec<String> = store
        .decisions_between("winback", Timestamp::MIN, Timestamp::MAX)
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, ["d1"]);
}
