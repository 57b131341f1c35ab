//! The schema of the SQLite store and its migrations, versioned in code.
//!
//! The file's `PRAGMA user_version` is the number of migrations applied. Opening a file applies the
//! missing ones in order, all in one transaction (a crash mid-migration leaves the file at its old
//! version); a file whose version is newer than [`MIGRATIONS`] knows is refused untouched. A migration
//! is never edited once released: a change to the schema is a new script appended to the list.
//!
//! Times are integer nanoseconds since the Unix epoch (lossless for jiff timestamps between the years
//! 1678 and 2261), dates are `YYYY-MM-DD` text, JSON is text, enums are their snake_case names.

use rusqlite::{Connection, TransactionBehavior};

use super::Ctx as _;
use crate::{Error, Result};

/// Version 1: every table of the daily loop.
const V1: &str = r#"
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    use_case    TEXT    NOT NULL,
    date        TEXT    NOT NULL,
    phase       TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    summary     TEXT,
    UNIQUE (use_case, date)
);

CREATE TABLE audience (
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    customer_id TEXT    NOT NULL,
    features    TEXT    NOT NULL,
    time_zone   TEXT,
    UNIQUE (run_id, customer_id)
);

CREATE TABLE decisions (
    id              TEXT    NOT NULL PRIMARY KEY,
    run_id          INTEGER NOT NULL REFERENCES runs (id),
    use_case        TEXT    NOT NULL,
    customer_id     TEXT    NOT NULL,
    decided_at      INTEGER NOT NULL,
    decision_group  TEXT    NOT NULL,
    action_id       INTEGER NOT NULL,
    propensity      REAL    NOT NULL,
    policy_version  TEXT    NOT NULL,
    planned_send_at INTEGER,
    cost            REAL    NOT NULL,
    learned         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX decisions_run ON decisions (run_id);
CREATE INDEX decisions_use_case_time ON decisions (use_case, decided_at);
CREATE INDEX decisions_unlearned ON decisions (use_case) WHERE learned = 0;

CREATE TABLE batches (
    id           TEXT    NOT NULL PRIMARY KEY,
    run_id       INTEGER NOT NULL REFERENCES runs (id),
    target       TEXT    NOT NULL,
    decision_ids TEXT    NOT NULL,
    request      TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    detail       TEXT,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX batches_run ON batches (run_id);
CREATE INDEX batches_state ON batches (state, run_id);

CREATE TABLE outcomes (
    id          INTEGER PRIMARY KEY,
    use_case    TEXT    NOT NULL,
    dedupe_key  TEXT    NOT NULL,
    customer_id TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    occurred_at INTEGER NOT NULL,
    value       REAL    NOT NULL,
    UNIQUE (use_case, dedupe_key)
);
CREATE INDEX outcomes_use_case_time ON outcomes (use_case, occurred_at);

CREATE TABLE rewards (
    decision_id         TEXT    NOT NULL PRIMARY KEY REFERENCES decisions (id),
    value               REAL    NOT NULL,
    status              TEXT    NOT NULL,
    attributed_outcomes INTEGER NOT NULL
);
CREATE INDEX rewards_final ON rewards (decision_id) WHERE status = 'final';

CREATE TABLE models (
    id       INTEGER PRIMARY KEY,
    use_case TEXT    NOT NULL,
    version  TEXT    NOT NULL,
    snapshot TEXT    NOT NULL,
    saved_at INTEGER NOT NULL
);
CREATE INDEX models_use_case ON models (use_case, id);

CREATE TABLE drift_alerts (
    id          INTEGER PRIMARY KEY,
    use_case    TEXT    NOT NULL,
    dimension   TEXT,
    option_id   TEXT,
    detected_at INTEGER NOT NULL,
    magnitude   REAL    NOT NULL,
    run_id      INTEGER REFERENCES runs (id)
);
CREATE UNIQUE INDEX drift_alerts_identity ON drift_alerts (
    use_case, coalesce(run_id, -1), coalesce(dimension, ''), coalesce(option_id, ''), detected_at
);
"#;

/// Version 2: what became of messages that did not simply reach their customer (one row per decision,
/// the first finding kept).
const V2: &str = r#"
CREATE TABLE deliveries (
    decision_id TEXT    NOT NULL PRIMARY KEY REFERENCES decisions (id),
    status      TEXT    NOT NULL,
    noted_at    INTEGER NOT NULL
);
"#;

/// Version 3: `decisions.learned = 2` marks a decision learned from a partial reward whose final
/// reward the drift detectors have not judged yet (0 = not learned, 1 = learned and done); this index
/// finds them.
const V3: &str = r#"
CREATE INDEX decisions_unmonitored ON decisions (use_case) WHERE learned = 2;
"#;

/// Version 4: the checkpoint of an outcome feed (a Currents bucket): every object key read, per use
/// case and feed URL.
const V4: &str = r#"
CREATE TABLE feed_keys (
    use_case TEXT    NOT NULL,
    source   TEXT    NOT NULL,
    key      TEXT    NOT NULL,
    read_at  INTEGER NOT NULL,
    PRIMARY KEY (use_case, source, key)
);
"#;

/// Version 5: the send ledger's protocol in typed columns instead of text. `target` (`campaign:<id>`,
/// `canvas_schedule:<id>`, `users.track`, ...) becomes `target_kind` + `target_id`; a failed batch's
/// `retryable: ` prefix in `detail` becomes `retryable = 1` (the prefix removed: `detail` is for
/// people); a batch a dry run "sent" (`detail = 'dry run'`) gets `dry_run = 1`, and so does its run
/// (`runs.dry_run`), and the run and its decisions move to the use case `<name> (dry run)`: kept, but
/// neither attributed, learned from nor taken for the real run of their date (dry runs made before
/// they got their own store wrote into the real one).
const V5: &str = r#"
ALTER TABLE batches ADD COLUMN target_kind TEXT NOT NULL DEFAULT '';
ALTER TABLE batches ADD COLUMN target_id TEXT;
ALTER TABLE batches ADD COLUMN retryable INTEGER NOT NULL DEFAULT 0;
ALTER TABLE batches ADD COLUMN dry_run INTEGER NOT NULL DEFAULT 0;
UPDATE batches SET
    target_kind = CASE
        WHEN target = 'users.track' THEN 'users_track'
        WHEN instr(target, ':') > 0 THEN substr(target, 1, instr(target, ':') - 1)
        ELSE target
    END,
    target_id = CASE WHEN instr(target, ':') > 0 THEN substr(target, instr(target, ':') + 1) END;
UPDATE batches SET retryable = 1, detail = substr(detail, length('retryable: ') + 1)
    WHERE state = 'failed' AND detail LIKE 'retryable: %';
UPDATE batches SET dry_run = 1 WHERE state = 'sent' AND detail = 'dry run';
ALTER TABLE batches DROP COLUMN target;
ALTER TABLE runs ADD COLUMN dry_run INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET dry_run = 1, use_case = use_case || ' (dry run)'
    WHERE id IN (SELECT run_id FROM batches WHERE dry_run = 1);
UPDATE decisions SET use_case = use_case || ' (dry run)'
    WHERE run_id IN (SELECT id FROM runs WHERE dry_run = 1);
"#;

/// Version 6: a day shared by workers (see the crate's `workers` module): the run's shard plan, one
/// row per shard with its lease (holder, expiry, fencing token), and the registry of workers.
const V6: &str = r#"
CREATE TABLE shard_plans (
    run_id        INTEGER NOT NULL PRIMARY KEY REFERENCES runs (id),
    shards        INTEGER NOT NULL,
    shard_size    INTEGER NOT NULL,
    customers     INTEGER NOT NULL,
    model_version TEXT    NOT NULL,
    fingerprint   TEXT    NOT NULL,
    planned_at    INTEGER NOT NULL,
    prepared      TEXT    NOT NULL
);

CREATE TABLE shards (
    run_id     INTEGER NOT NULL REFERENCES runs (id),
    shard      INTEGER NOT NULL,
    state      TEXT    NOT NULL,
    holder     TEXT,
    expires_at INTEGER,
    token      INTEGER NOT NULL DEFAULT 0,
    done_at    INTEGER,
    summary    TEXT,
    PRIMARY KEY (run_id, shard)
);

CREATE TABLE workers (
    id         TEXT    NOT NULL PRIMARY KEY,
    use_case   TEXT    NOT NULL,
    host       TEXT    NOT NULL,
    pid        INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    status     TEXT    NOT NULL
);
CREATE INDEX workers_last_seen ON workers (last_seen);
"#;

/// The migrations, in order: the file's `user_version` is how many of them it has applied.
pub(super) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6];

/// The schema version this code writes (the number of migrations).
pub(super) const VERSION: i64 = MIGRATIONS.len() as i64;

/// The schema version of the open database.
pub(super) fn version(conn: &Connection) -> Result<i64> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
        .ctx("read the schema version")
}

/// Brings the database to [`VERSION`], in one transaction, or refuses a newer one untouched.
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_with(conn, MIGRATIONS)
}

/// [`migrate`] with the list of migrations given (tests use longer lists to exercise upgrades).
pub(super) fn migrate_with(conn: &mut Connection, migrations: &[&str]) -> Result<()> {
    let supported = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ctx("begin the migration")?;
    let found = version(&tx)?;
    if found > supported {
        return Err(Error::SchemaTooNew { found, supported });
    }
    if found == 0 {
        // A file at version 0 is new and empty, unless another program made it: never add
        // offerloop's tables to someone else's database.
        let tables: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |row| {
                row.get(0)
            })
            .ctx("read the schema")?;
        if tables > 0 {
            return Err(Error::Foreign { tables });
        }
    }
    let applied = usize::try_from(found).map_err(|_| Error::Corrupt {
        what: "schema version",
        message: format!("negative user_version {found}"),
    })?;
    for (index, script) in migrations.iter().enumerate().skip(applied) {
        tx.execute_batch(script).ctx("migrate the schema")?;
        tx.pragma_update(None, "user_version", index + 1)
            .ctx("record the schema version")?;
    }
    tx.commit().ctx("commit the migration")?;
    if found < supported {
        tracing::info!(from = found, to = supported, "store schema migrated");
    }
    Ok(())
}
