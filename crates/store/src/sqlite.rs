//! The embedded SQLite implementation of [`Store`].
//!
//! One file (default [`DEFAULT_PATH`]) in WAL mode with `synchronous = NORMAL` (a power loss may lose
//! the last commits but never corrupts the file), foreign keys on and a busy timeout, so a second
//! process (e.g. `offerloop status` during a run) waits instead of failing. The schema is migrated on
//! open (see `schema`).
//!
//! One connection behind a [`Mutex`] serves every thread: the daily loop writes in a few large
//! transactions (one per step), so a connection pool would add nothing but lock contention inside
//! SQLite. Every write method is exactly one `IMMEDIATE` transaction: a failure (or a crash) anywhere
//! inside it rolls it back whole, and bulk inserts reuse one prepared statement inside it.

mod codec;
mod schema;
mod workers;

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;
use offerloop_domain::{Decision, Outcome, Reward, RewardStatus};
use rusqlite::{Connection, OptionalExtension as _, Transaction, TransactionBehavior, params};

use self::codec::{
    BATCH_COLUMNS, DECISION_COLUMNS, DECISION_WIDTH, RUN_COLUMNS, RawBatch, RawDecision, RawReward, RawRun,
};
use crate::{
    AudienceRow, BatchMark, BatchRecord, BatchState, BatchStatus, DeliveryRecord, DeliveryStatus, DriftAlertRecord,
    Error, FeedbackRow, LockHolder, ModelRecord, Result, RunPhase, RunRecord, ShardLease, ShardPlan, ShardRecord,
    Store, UseCaseLock, WorkerRecord,
};

/// Where `offerloop` keeps its state by default, relative to the working directory.
pub const DEFAULT_PATH: &str = ".offerloop/state.db";

/// How long a write waits for another process's write to finish before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The embedded SQLite store.
///
/// `Send + Sync`: one connection behind a mutex (see the module docs for why that is enough).
#[derive(Debug)]
pub struct SqliteStore {
    /// The database file (`None` in memory): use-case locks are files beside it.
    path: Option<std::path::PathBuf>,
    /// The use-case locks of an in-memory store.
    memory_locks: crate::lock::MemoryLocks,
    /// The connection. A poisoned lock is recovered: a panic inside a write drops its transaction,
    /// which rolls back, so the connection is consistent whatever the panicking thread did.
    conn: Mutex<Connection>,
}

/// Adds the operation's name to a SQLite error.
pub(crate) trait Ctx<T> {
    /// Maps the error to [`Error::Database`] for `operation`.
    fn ctx(self, operation: &'static str) -> Result<T>;
}

impl<T> Ctx<T> for rusqlite::Result<T> {
    fn ctx(self, operation: &'static str) -> Result<T> {
        self.map_err(|source| Error::Database { operation, source })
    }
}

impl SqliteStore {
    /// Where `offerloop` keeps its state by default (the same as the module's [`DEFAULT_PATH`]).
    pub const DEFAULT_PATH: &'static str = DEFAULT_PATH;

    /// Opens (or creates, with its directory) the store at `path`, migrating an older schema.
    ///
    /// # Errors
    /// [`Error::Open`] when the directory cannot be created, [`Error::SchemaTooNew`] for a file written
    /// by a newer offerloop (left untouched), [`Error::Database`] for a file SQLite cannot open or
    /// migrate.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::Open {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path).ctx("open the database")?;
        Self::setup(conn, Some(path.to_path_buf()))
    }

    /// Copies the store file at `from` to the new file `to`, consistently (SQLite's `VACUUM INTO`,
    /// one read transaction), opening `from` read-only: the original is never written, a run in
    /// progress on it is not disturbed, and the copy holds its last committed state. `to` is migrated
    /// when it is opened, not here.
    ///
    /// # Errors
    /// [`Error::Database`] when `from` cannot be read or `to` cannot be written (it must not exist).
    pub fn copy_file(from: &Path, to: &Path) -> Result<()> {
        let conn = Connection::open_with_flags(
            from,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ctx("open the store to copy")?;
        conn.busy_timeout(BUSY_TIMEOUT).ctx("set the busy timeout")?;
        let target = to.to_str().ok_or_else(|| Error::Unstorable {
            what: "store copy path",
            message: format!("{} is not UTF-8", to.display()),
        })?;
        conn.execute("VACUUM INTO ?1", [target]).ctx("copy the store")?;
        Ok(())
    }

    /// A fresh store in memory (for tests and dry runs): nothing survives it.
    ///
    /// # Errors
    /// [`Error::Database`] if SQLite cannot create it.
    pub fn in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory().ctx("open an in-memory database")?;
        Self::setup(conn, None)
    }

    /// The schema version of the open database (after migration: always the newest this code knows).
    ///
    /// # Errors
    /// [`Error::Database`] if it cannot be read.
    pub fn schema_version(&self) -> Result<i64> {
        schema::version(&self.conn())
    }

    /// The ids of the decisions marked learned: every one (learned from a final or a partial reward),
    /// or with `early_unjudged` only those learned early whose final reward the drift detectors have
    /// not judged yet. For inspection (tests, diagnostics).
    ///
    /// # Errors
    /// [`Error::Database`] if they cannot be read.
    pub fn learned_decisions(&self, early_unjudged: bool) -> Result<std::collections::HashSet<String>> {
        let condition = if early_unjudged { "learned = 2" } else { "learned <> 0" };
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!("SELECT id FROM decisions WHERE {condition}"))
            .ctx("read learned decisions")?;
        let rows = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .ctx("read learned decisions")?;
        rows.map(|r| r.ctx("read learned decisions")).collect()
    }

    /// The newest schema version this code knows.
    pub const SCHEMA_VERSION: i64 = schema::VERSION;

    fn setup(mut conn: Connection, path: Option<std::path::PathBuf>) -> Result<Self> {
        conn.busy_timeout(BUSY_TIMEOUT).ctx("set the busy timeout")?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .ctx("enable foreign keys")?;
        schema::migrate(&mut conn)?;
        if path.is_some() {
            let mode: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
                .ctx("enable WAL")?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(journal_mode = %mode, "the store could not switch to WAL mode");
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .ctx("set synchronous")?;
        Ok(Self {
            path,
            memory_locks: crate::lock::MemoryLocks::default(),
            conn: Mutex::new(conn),
        })
    }

    /// The connection, for reads.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `write` in one `IMMEDIATE` transaction, committed only if it returns `Ok`.
    fn write<T>(&self, operation: &'static str, write: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx(operation)?;
        // On an error `tx` is dropped here, which rolls it back.
        let value = write(&tx)?;
        tx.commit().ctx(operation)?;
        Ok(value)
    }
}

/// The run `run_id`, or [`Error::NotFound`].
/// Inserts outcomes, ignoring those whose `dedupe_key` is stored; returns how many were new.
fn insert_outcomes(tx: &Transaction<'_>, use_case: &str, outcomes: &[Outcome]) -> Result<usize> {
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO outcomes (use_case, dedupe_key, customer_id, kind, occurred_at, value) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (use_case, dedupe_key) DO NOTHING",
        )
        .ctx("record outcomes")?;
    let mut new = 0;
    for outcome in outcomes {
        if outcome.value.is_nan() {
            return Err(Error::Unstorable {
                what: "outcome value",
                message: format!("outcome `{}` has value NaN", outcome.dedupe_key),
            });
        }
        new += stmt
            .execute(params![
                use_case,
                outcome.dedupe_key,
                outcome.customer_id.as_str(),
                codec::json("outcome kind", &outcome.kind)?,
                codec::time("outcome time", outcome.occurred_at)?,
                outcome.value,
            ])
            .ctx("record outcomes")?;
    }
    Ok(new)
}

fn require_run(conn: &Connection, run_id: i64) -> Result<RunRecord> {
    conn.query_row(
        &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
        [run_id],
        RawRun::read,
    )
    .optional()
    .ctx("read a run")?
    .ok_or_else(|| Error::NotFound {
        what: "run",
        id: run_id.to_string(),
    })?
    .decode()
}

/// Inserts one planned batch (the parameters in this order).
const INSERT_BATCH: &str = "INSERT INTO batches \
     (id, run_id, target_kind, target_id, decision_ids, request, state, detail, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// The batch `batch_id`, if stored.
fn find_batch(conn: &Connection, batch_id: &str) -> Result<Option<BatchRecord>> {
    conn.query_row(
        &format!("SELECT {BATCH_COLUMNS} FROM batches b WHERE b.id = ?1"),
        [batch_id],
        RawBatch::read,
    )
    .optional()
    .ctx("read a batch")?
    .map(RawBatch::decode)
    .transpose()
}

/// Whether a batch may move from `from` to `to` (the send-ledger protocol documented on
/// [`Store::mark_batch`]).
fn batch_move_allowed(from: BatchState, to: BatchState) -> bool {
    use BatchState::{Failed, Planned, Sending, Sent, Unknown};
    matches!(
        (from, to),
        (Planned, Sending) | (Sending, Sent | Failed | Unknown) | (Failed, Sending)
    )
}

/// Collects decoded rows of a statement.
fn collect<R, T>(
    rows: impl Iterator<Item = rusqlite::Result<R>>,
    operation: &'static str,
    decode: impl Fn(R) -> Result<T>,
) -> Result<Vec<T>> {
    rows.map(|row| decode(row.ctx(operation)?)).collect()
}

impl SqliteStore {
    /// Rewards of `status` of `use_case`'s decisions not yet learned from, with their decision and
    /// features, in the order the decisions were stored.
    fn unlearned_feedback(&self, use_case: &str, status: RewardStatus, what: &'static str) -> Result<Vec<FeedbackRow>> {
        self.feedback_where(use_case, Learned::No, status, what)
    }

    /// Decisions of `use_case` in learning state `learned` whose reward has `status`, with the reward
    /// and the features of their run's audience row.
    fn feedback_where(
        &self,
        use_case: &str,
        learned: Learned,
        status: RewardStatus,
        what: &'static str,
    ) -> Result<Vec<FeedbackRow>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {DECISION_COLUMNS}, r.value, a.features \
                 FROM decisions d JOIN rewards r ON r.decision_id = d.id \
                 LEFT JOIN audience a ON a.run_id = d.run_id AND a.customer_id = d.customer_id \
                 WHERE d.use_case = ?1 AND d.learned = ?3 AND r.status = ?2 \
                 ORDER BY d.rowid"
            ))
            .ctx(what)?;
        let rows = stmt
            .query_map(params![use_case, codec::reward_status(status), learned as i64], |row| {
                Ok((
                    RawDecision::read(row)?,
                    row.get::<_, f64>(DECISION_WIDTH)?,
                    row.get::<_, Option<String>>(DECISION_WIDTH + 1)?,
                ))
            })
            .ctx(what)?;
        collect(rows, what, |(decision, reward, features)| {
            Ok(FeedbackRow {
                decision: decision.decode()?,
                reward,
                features: features.unwrap_or_else(|| "null".to_owned()),
            })
        })
    }
}

/// The values of `decisions.learned` (see schema version 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Learned {
    /// Not learned yet.
    No = 0,
    /// Learned, from a final reward or with the final reward judged by the drift detectors.
    Done = 1,
    /// Learned from a partial reward; the final reward is still to be judged by the drift detectors.
    Early = 2,
}

impl SqliteStore {
    /// Sets `learned` to `to` for the decisions whose current state matches `condition`.
    fn set_learned(&self, decision_ids: &[String], condition: &str, to: Learned, what: &'static str) -> Result<()> {
        self.write(what, |tx| {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "UPDATE decisions SET learned = ?2 WHERE id = ?1 AND {condition}"
                ))
                .ctx(what)?;
            for id in decision_ids {
                stmt.execute(params![id, to as i64]).ctx(what)?;
            }
            Ok(())
        })
    }
}

impl Store for SqliteStore {
    fn lock_use_case(&self, use_case: &str, holder: &LockHolder) -> Result<UseCaseLock> {
        match &self.path {
            Some(path) => crate::lock::lock_file(path, use_case, holder),
            None => crate::lock::lock_in_memory(&self.memory_locks, use_case, holder),
        }
    }

    fn begin_run(&self, use_case: &str, date: Date, now: Timestamp) -> Result<RunRecord> {
        let now = codec::time("run start", now)?;
        self.write("begin a run", |tx| {
            tx.execute(
                "INSERT INTO runs (use_case, date, phase, started_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4) \
                 ON CONFLICT (use_case, date) DO NOTHING",
                params![use_case, codec::date(date), codec::phase(RunPhase::Started), now],
            )
            .ctx("begin a run")?;
            tx.query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE use_case = ?1 AND date = ?2"),
                params![use_case, codec::date(date)],
                RawRun::read,
            )
            .ctx("read the run begun")?
            .decode()
        })
    }

    fn run(&self, use_case: &str, date: Date) -> Result<Option<RunRecord>> {
        self.conn()
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE use_case = ?1 AND date = ?2"),
                params![use_case, codec::date(date)],
                RawRun::read,
            )
            .optional()
            .ctx("read a run")?
            .map(RawRun::decode)
            .transpose()
    }

    fn advance_run(&self, run_id: i64, phase: RunPhase, now: Timestamp) -> Result<()> {
        let now = codec::time("run update time", now)?;
        self.write("advance a run", |tx| {
            let run = require_run(tx, run_id)?;
            if phase > run.phase {
                tx.execute(
                    "UPDATE runs SET phase = ?2, updated_at = ?3 WHERE id = ?1",
                    params![run_id, codec::phase(phase), now],
                )
                .ctx("advance a run")?;
            }
            Ok(())
        })
    }

    fn finish_run(&self, run_id: i64, summary: &serde_json::Value, now: Timestamp) -> Result<()> {
        let now = codec::time("run update time", now)?;
        let summary = codec::json("run summary", summary)?;
        self.write("finish a run", |tx| {
            require_run(tx, run_id)?;
            tx.execute(
                "UPDATE runs SET phase = ?2, updated_at = ?3, summary = ?4 WHERE id = ?1",
                params![run_id, codec::phase(RunPhase::Done), now, summary],
            )
            .ctx("finish a run")?;
            Ok(())
        })
    }

    fn runs(&self, use_case: &str, limit: usize) -> Result<Vec<RunRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE use_case = ?1 ORDER BY date DESC, id DESC LIMIT ?2"
            ))
            .ctx("list runs")?;
        let rows = stmt
            .query_map(params![use_case, codec::count(limit)], RawRun::read)
            .ctx("list runs")?;
        collect(rows, "list runs", RawRun::decode)
    }

    fn record_audience(&self, run_id: i64, customers: &[AudienceRow]) -> Result<usize> {
        self.write("record the audience", |tx| {
            require_run(tx, run_id)?;
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO audience (run_id, customer_id, features, time_zone) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (run_id, customer_id) DO NOTHING",
                )
                .ctx("record the audience")?;
            let mut new = 0;
            for customer in customers {
                new += stmt
                    .execute(params![
                        run_id,
                        customer.customer_id,
                        customer.features,
                        customer.time_zone
                    ])
                    .ctx("record the audience")?;
            }
            Ok(new)
        })
    }

    fn audience(&self, run_id: i64) -> Result<Vec<AudienceRow>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT customer_id, features, time_zone FROM audience WHERE run_id = ?1 ORDER BY rowid")
            .ctx("read the audience")?;
        let rows = stmt
            .query_map([run_id], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get(2)?))
            })
            .ctx("read the audience")?;
        collect(rows, "read the audience", |(customer_id, features, time_zone)| {
            Ok(AudienceRow {
                customer_id,
                features,
                time_zone,
            })
        })
    }

    fn record_decisions(&self, run_id: i64, decisions: &[Decision]) -> Result<usize> {
        self.write("record decisions", |tx| {
            let run = require_run(tx, run_id)?;
            if let Some(stray) = decisions.iter().find(|decision| decision.use_case != run.use_case) {
                return Err(Error::Unstorable {
                    what: "decision",
                    message: format!(
                        "decision `{}` is of use case `{}` but run {run_id} is of `{}`",
                        stray.id, stray.use_case, run.use_case
                    ),
                });
            }
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO decisions (id, run_id, use_case, customer_id, decided_at, decision_group, \
                     action_id, propensity, policy_version, planned_send_at, cost) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (id) DO NOTHING",
                )
                .ctx("record decisions")?;
            let mut new = 0;
            for decision in decisions {
                if !decision.cost.is_finite() {
                    return Err(Error::Unstorable {
                        what: "decision cost",
                        message: format!("decision `{}` has cost {}", decision.id, decision.cost),
                    });
                }
                let planned = decision
                    .planned_send_at
                    .map(|at| codec::time("planned send time", at))
                    .transpose()?;
                new += stmt
                    .execute(params![
                        decision.id,
                        run_id,
                        decision.use_case,
                        decision.customer_id.as_str(),
                        codec::time("decision time", decision.decided_at)?,
                        codec::group(decision.group),
                        codec::action(decision.action),
                        decision.propensity.get(),
                        decision.policy_version,
                        planned,
                        decision.cost,
                    ])
                    .ctx("record decisions")?;
            }
            Ok(new)
        })
    }

    fn decisions(&self, run_id: i64) -> Result<Vec<Decision>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {DECISION_COLUMNS} FROM decisions d WHERE d.run_id = ?1 ORDER BY d.rowid"
            ))
            .ctx("read decisions")?;
        let rows = stmt.query_map([run_id], RawDecision::read).ctx("read decisions")?;
        collect(rows, "read decisions", RawDecision::decode)
    }

    fn decisions_between(&self, use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Decision>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {DECISION_COLUMNS} FROM decisions d \
                 WHERE d.use_case = ?1 AND d.decided_at >= ?2 AND d.decided_at < ?3 \
                 ORDER BY d.decided_at, d.rowid"
            ))
            .ctx("read decisions")?;
        let rows = stmt
            .query_map(
                params![use_case, codec::bound(from), codec::bound(to)],
                RawDecision::read,
            )
            .ctx("read decisions")?;
        collect(rows, "read decisions", RawDecision::decode)
    }

    fn plan_batch(&self, batch: &BatchRecord) -> Result<BatchRecord> {
        let decision_ids = codec::json("batch decision ids", &batch.decision_ids)?;
        let updated_at = codec::time("batch update time", batch.updated_at)?;
        self.write("plan a batch", |tx| {
            if let Some(existing) = find_batch(tx, &batch.id)? {
                return Ok(existing);
            }
            require_run(tx, batch.run_id)?;
            tx.execute(
                INSERT_BATCH,
                params![
                    batch.id,
                    batch.run_id,
                    batch.target.kind(),
                    batch.target.object_id(),
                    decision_ids,
                    batch.request,
                    codec::batch_state(BatchState::Planned),
                    batch.detail,
                    updated_at,
                ],
            )
            .ctx("plan a batch")?;
            find_batch(tx, &batch.id)?.ok_or_else(|| Error::NotFound {
                what: "batch",
                id: batch.id.clone(),
            })
        })
    }

    fn plan_batches(&self, batches: &[BatchRecord]) -> Result<()> {
        let encoded = batches
            .iter()
            .map(|b| {
                Ok((
                    b,
                    codec::json("batch decision ids", &b.decision_ids)?,
                    codec::time("batch update time", b.updated_at)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        self.write("plan batches", |tx| {
            let mut runs = std::collections::BTreeSet::new();
            let mut insert = tx
                .prepare_cached(&format!("{INSERT_BATCH} ON CONFLICT (id) DO NOTHING"))
                .ctx("plan batches")?;
            for (batch, decision_ids, updated_at) in &encoded {
                if runs.insert(batch.run_id) {
                    require_run(tx, batch.run_id)?;
                }
                insert
                    .execute(params![
                        batch.id,
                        batch.run_id,
                        batch.target.kind(),
                        batch.target.object_id(),
                        decision_ids,
                        batch.request,
                        codec::batch_state(BatchState::Planned),
                        batch.detail,
                        updated_at,
                    ])
                    .ctx("plan batches")?;
            }
            Ok(())
        })
    }

    fn mark_batch(&self, batch_id: &str, mark: &BatchMark, now: Timestamp) -> Result<()> {
        let now = codec::time("batch update time", now)?;
        let state = mark.state;
        self.write("mark a batch", |tx| {
            // Only the state: reading the whole record would parse its request back (tens of KiB).
            let from: String = tx
                .query_row("SELECT state FROM batches WHERE id = ?1", [batch_id], |row| row.get(0))
                .optional()
                .ctx("read a batch state")?
                .ok_or_else(|| Error::NotFound {
                    what: "batch",
                    id: batch_id.to_owned(),
                })?;
            let from = codec::read_batch_state(&from)?;
            if !batch_move_allowed(from, state) {
                return Err(Error::BatchState {
                    batch: batch_id.to_owned(),
                    from,
                    to: state,
                });
            }
            tx.execute(
                "UPDATE batches SET state = ?2, detail = ?3, retryable = ?4, dry_run = ?5, updated_at = ?6 \
                 WHERE id = ?1",
                params![
                    batch_id,
                    codec::batch_state(state),
                    mark.detail,
                    mark.retryable && state == BatchState::Failed,
                    mark.dry_run && state == BatchState::Sent,
                    now
                ],
            )
            .ctx("mark a batch")?;
            Ok(())
        })
    }

    fn batches(&self, run_id: i64) -> Result<Vec<BatchRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {BATCH_COLUMNS} FROM batches b WHERE b.run_id = ?1 ORDER BY b.rowid"
            ))
            .ctx("read batches")?;
        let rows = stmt.query_map([run_id], RawBatch::read).ctx("read batches")?;
        collect(rows, "read batches", RawBatch::decode)
    }

    fn batch_states(&self, run_id: i64) -> Result<Vec<BatchStatus>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, target_kind, target_id, state, detail, retryable, dry_run FROM batches \
                 WHERE run_id = ?1 ORDER BY rowid",
            )
            .ctx("read batch states")?;
        let rows = stmt
            .query_map([run_id], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<String>>(4)?,
                    row.get::<_, bool>(5)?,
                    row.get::<_, bool>(6)?,
                ))
            })
            .ctx("read batch states")?;
        collect(
            rows,
            "read batch states",
            |(id, kind, target_id, state, detail, retryable, dry_run)| {
                Ok(BatchStatus {
                    id,
                    target: codec::read_batch_target(&kind, target_id)?,
                    state: codec::read_batch_state(&state)?,
                    detail,
                    retryable,
                    dry_run,
                })
            },
        )
    }

    fn unknown_batches(&self, use_case: &str) -> Result<Vec<BatchRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {BATCH_COLUMNS} FROM batches b JOIN runs r ON r.id = b.run_id \
                 WHERE b.state = ?2 AND r.use_case = ?1 ORDER BY b.rowid"
            ))
            .ctx("read unknown batches")?;
        let rows = stmt
            .query_map(
                params![use_case, codec::batch_state(BatchState::Unknown)],
                RawBatch::read,
            )
            .ctx("read unknown batches")?;
        collect(rows, "read unknown batches", RawBatch::decode)
    }

    fn record_outcomes(&self, use_case: &str, outcomes: &[Outcome]) -> Result<usize> {
        self.write("record outcomes", |tx| insert_outcomes(tx, use_case, outcomes))
    }

    fn feed_keys_read(&self, use_case: &str, source: &str) -> Result<std::collections::HashSet<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT key FROM feed_keys WHERE use_case = ?1 AND source = ?2")
            .ctx("read the feed checkpoint")?;
        let keys = stmt
            .query_map(params![use_case, source], |row| row.get::<_, String>(0))
            .ctx("read the feed checkpoint")?
            .collect::<std::result::Result<_, _>>()
            .ctx("read the feed checkpoint")?;
        Ok(keys)
    }

    fn record_feed_outcomes(
        &self,
        use_case: &str,
        source: &str,
        keys: &[String],
        outcomes: &[Outcome],
        now: Timestamp,
    ) -> Result<usize> {
        self.write("record feed outcomes", |tx| {
            let new = insert_outcomes(tx, use_case, outcomes)?;
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO feed_keys (use_case, source, key, read_at) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT DO NOTHING",
                )
                .ctx("record the feed checkpoint")?;
            let now = codec::time("feed read time", now)?;
            for key in keys {
                stmt.execute(params![use_case, source, key, now])
                    .ctx("record the feed checkpoint")?;
            }
            Ok(new)
        })
    }

    fn outcomes_between(&self, use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Outcome>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT customer_id, kind, occurred_at, value, dedupe_key FROM outcomes \
                 WHERE use_case = ?1 AND occurred_at >= ?2 AND occurred_at < ?3 ORDER BY occurred_at, id",
            )
            .ctx("read outcomes")?;
        let rows = stmt
            .query_map(params![use_case, codec::bound(from), codec::bound(to)], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, f64>(3)?,
                    row.get::<_, String>(4)?,
                ))
            })
            .ctx("read outcomes")?;
        collect(
            rows,
            "read outcomes",
            |(customer, kind, occurred_at, value, dedupe_key)| {
                Ok(Outcome {
                    customer_id: offerloop_domain::CustomerId::new(customer)
                        .map_err(|error| codec::corrupt("outcome customer", error))?,
                    kind: codec::read_json("outcome kind", &kind)?,
                    occurred_at: codec::read_time("outcome time", occurred_at)?,
                    value,
                    dedupe_key,
                })
            },
        )
    }

    fn upsert_rewards(&self, rewards: &[Reward]) -> Result<()> {
        self.write("store rewards", |tx| {
            let mut exists = tx
                .prepare_cached("SELECT 1 FROM decisions WHERE id = ?1")
                .ctx("store rewards")?;
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO rewards (decision_id, value, status, attributed_outcomes) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (decision_id) DO UPDATE SET value = excluded.value, status = excluded.status, \
                     attributed_outcomes = excluded.attributed_outcomes \
                     WHERE rewards.status <> 'final' OR excluded.status = 'final'",
                )
                .ctx("store rewards")?;
            for reward in rewards {
                if reward.value.is_nan() {
                    return Err(Error::Unstorable {
                        what: "reward value",
                        message: format!("the reward of decision `{}` is NaN", reward.decision_id),
                    });
                }
                if !exists.exists([&reward.decision_id]).ctx("store rewards")? {
                    return Err(Error::NotFound {
                        what: "decision",
                        id: reward.decision_id.clone(),
                    });
                }
                upsert
                    .execute(params![
                        reward.decision_id,
                        reward.value,
                        codec::reward_status(reward.status),
                        codec::count(reward.attributed_outcomes),
                    ])
                    .ctx("store rewards")?;
            }
            Ok(())
        })
    }

    fn rewards_between(&self, use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Reward>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT r.decision_id, r.value, r.status, r.attributed_outcomes \
                 FROM rewards r JOIN decisions d ON d.id = r.decision_id \
                 WHERE d.use_case = ?1 AND d.decided_at >= ?2 AND d.decided_at < ?3 \
                 ORDER BY d.decided_at, d.rowid",
            )
            .ctx("read rewards")?;
        let rows = stmt
            .query_map(params![use_case, codec::bound(from), codec::bound(to)], RawReward::read)
            .ctx("read rewards")?;
        collect(rows, "read rewards", RawReward::decode)
    }

    /// Final rewards of `use_case`'s decisions not yet learned from, in the order the decisions were
    /// stored. A decision whose run has no audience row for its customer comes with `null` features
    /// (the engine stores the audience before deciding, so this only happens to hand-made decisions).
    fn matured_feedback(&self, use_case: &str) -> Result<Vec<FeedbackRow>> {
        self.unlearned_feedback(use_case, RewardStatus::Final, "read matured feedback")
    }

    /// As [`SqliteStore::matured_feedback`], for pending rewards.
    fn pending_feedback(&self, use_case: &str) -> Result<Vec<FeedbackRow>> {
        self.unlearned_feedback(use_case, RewardStatus::Pending, "read pending feedback")
    }

    fn mark_learned(&self, decision_ids: &[String]) -> Result<()> {
        self.set_learned(decision_ids, "learned <> 1", Learned::Done, "mark decisions learned")
    }

    fn mark_learned_early(&self, decision_ids: &[String]) -> Result<()> {
        self.set_learned(
            decision_ids,
            "learned = 0",
            Learned::Early,
            "mark decisions learned early",
        )
    }

    fn unmonitored_feedback(&self, use_case: &str) -> Result<Vec<FeedbackRow>> {
        self.feedback_where(
            use_case,
            Learned::Early,
            RewardStatus::Final,
            "read unmonitored feedback",
        )
    }

    fn mark_monitored(&self, decision_ids: &[String]) -> Result<()> {
        self.set_learned(decision_ids, "learned = 2", Learned::Done, "mark decisions monitored")
    }

    fn record_deliveries(&self, records: &[DeliveryRecord]) -> Result<usize> {
        self.write("record deliveries", |tx| {
            let mut exists = tx
                .prepare_cached("SELECT 1 FROM decisions WHERE id = ?1")
                .ctx("record deliveries")?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO deliveries (decision_id, status, noted_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (decision_id) DO NOTHING",
                )
                .ctx("record deliveries")?;
            let mut new = 0;
            for record in records {
                if !exists.exists([&record.decision_id]).ctx("record deliveries")? {
                    return Err(Error::Unstorable {
                        what: "delivery record",
                        message: format!("decision `{}` is not stored", record.decision_id),
                    });
                }
                new += insert
                    .execute(params![
                        record.decision_id,
                        record.status.as_str(),
                        codec::time("delivery time", record.noted_at)?,
                    ])
                    .ctx("record deliveries")?;
            }
            Ok(new)
        })
    }

    fn retract_rejections(&self, decision_ids: &[String]) -> Result<usize> {
        let rejected = DeliveryStatus::Rejected.as_str();
        self.write("retract rejections", |tx| {
            let mut relearn = tx
                .prepare_cached(
                    "UPDATE decisions SET learned = 0 WHERE id = ?1 AND learned = 1 \
                     AND EXISTS (SELECT 1 FROM deliveries WHERE decision_id = ?1 AND status = ?2)",
                )
                .ctx("retract rejections")?;
            let mut delete = tx
                .prepare_cached("DELETE FROM deliveries WHERE decision_id = ?1 AND status = ?2")
                .ctx("retract rejections")?;
            let mut retracted = 0;
            for id in decision_ids {
                relearn.execute(params![id, rejected]).ctx("retract rejections")?;
                retracted += delete.execute(params![id, rejected]).ctx("retract rejections")?;
            }
            Ok(retracted)
        })
    }

    fn deliveries_between(&self, use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<DeliveryRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT x.decision_id, x.status, x.noted_at FROM deliveries x JOIN decisions d ON d.id = x.decision_id \
                 WHERE d.use_case = ?1 AND d.decided_at >= ?2 AND d.decided_at < ?3 ORDER BY d.decided_at, d.rowid",
            )
            .ctx("read deliveries")?;
        let rows = stmt
            .query_map(params![use_case, codec::bound(from), codec::bound(to)], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })
            .ctx("read deliveries")?;
        collect(rows, "read deliveries", |(decision_id, status, noted_at)| {
            Ok(DeliveryRecord {
                status: DeliveryStatus::from_name(&status)
                    .ok_or_else(|| codec::corrupt("delivery status", format!("unknown status `{status}`")))?,
                decision_id,
                noted_at: codec::read_time("delivery time", noted_at)?,
            })
        })
    }

    fn save_model(&self, use_case: &str, version: &str, snapshot: &serde_json::Value, now: Timestamp) -> Result<()> {
        let snapshot = codec::json("model snapshot", snapshot)?;
        let now = codec::time("model save time", now)?;
        self.write("save a model", |tx| {
            tx.execute(
                "INSERT INTO models (use_case, version, snapshot, saved_at) VALUES (?1, ?2, ?3, ?4)",
                params![use_case, version, snapshot, now],
            )
            .ctx("save a model")?;
            Ok(())
        })
    }

    /// The snapshot of `use_case` saved last (by order of saving, whatever the clock said).
    fn latest_model(&self, use_case: &str) -> Result<Option<ModelRecord>> {
        let row = self
            .conn()
            .query_row(
                "SELECT use_case, version, snapshot, saved_at FROM models WHERE use_case = ?1 \
                 ORDER BY id DESC LIMIT 1",
                [use_case],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                },
            )
            .optional()
            .ctx("read the latest model")?;
        row.map(|(use_case, version, snapshot, saved_at)| {
            Ok(ModelRecord {
                use_case,
                version,
                snapshot: codec::read_json("model snapshot", &snapshot)?,
                saved_at: codec::read_time("model save time", saved_at)?,
            })
        })
        .transpose()
    }

    /// Stores drift alerts; an alert identical to a stored one (same use case, run, dimension, option
    /// and detection time) is ignored, so a resumed run does not record its alerts twice.
    fn record_drift_alerts(&self, use_case: &str, alerts: &[DriftAlertRecord]) -> Result<()> {
        self.write("record drift alerts", |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO drift_alerts (use_case, dimension, option_id, detected_at, magnitude, run_id) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                )
                .ctx("record drift alerts")?;
            for alert in alerts {
                if alert.magnitude.is_nan() {
                    return Err(Error::Unstorable {
                        what: "drift magnitude",
                        message: "NaN".to_owned(),
                    });
                }
                stmt.execute(params![
                    use_case,
                    alert.dimension,
                    alert.option,
                    codec::time("drift detection time", alert.detected_at)?,
                    alert.magnitude,
                    alert.run_id,
                ])
                .ctx("record drift alerts")?;
            }
            Ok(())
        })
    }

    fn drift_alerts(&self, use_case: &str) -> Result<Vec<DriftAlertRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT dimension, option_id, detected_at, magnitude, run_id FROM drift_alerts \
                 WHERE use_case = ?1 ORDER BY detected_at, id",
            )
            .ctx("read drift alerts")?;
        let rows = stmt
            .query_map([use_case], |row| {
                Ok((
                    row.get::<_, Option<String>>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, f64>(3)?,
                    row.get::<_, Option<i64>>(4)?,
                ))
            })
            .ctx("read drift alerts")?;
        collect(
            rows,
            "read drift alerts",
            |(dimension, option, detected_at, magnitude, run_id)| {
                Ok(DriftAlertRecord {
                    dimension,
                    option,
                    detected_at: codec::read_time("drift detection time", detected_at)?,
                    magnitude,
                    run_id,
                })
            },
        )
    }

    fn audience_range(&self, run_id: i64, offset: u64, limit: u64) -> Result<Vec<AudienceRow>> {
        self.sqlite_audience_range(run_id, offset, limit)
    }

    fn decisions_by_id(&self, ids: &[String]) -> Result<Vec<Decision>> {
        self.sqlite_decisions_by_id(ids)
    }

    fn plan_shards(&self, plan: &ShardPlan) -> Result<ShardPlan> {
        self.sqlite_plan_shards(plan)
    }

    fn shard_plan(&self, run_id: i64) -> Result<Option<ShardPlan>> {
        self.sqlite_shard_plan(run_id)
    }

    fn lease_shard(
        &self,
        run_id: i64,
        holder: &str,
        ttl: std::time::Duration,
        now: Timestamp,
    ) -> Result<Option<ShardLease>> {
        self.sqlite_lease_shard(run_id, holder, ttl, now)
    }

    fn renew_shard(&self, lease: &ShardLease, ttl: std::time::Duration, now: Timestamp) -> Result<ShardLease> {
        self.sqlite_renew_shard(lease, ttl, now)
    }

    fn complete_shard(&self, lease: &ShardLease, summary: &serde_json::Value, now: Timestamp) -> Result<()> {
        self.sqlite_complete_shard(lease, summary, now)
    }

    fn shards(&self, run_id: i64) -> Result<Vec<ShardRecord>> {
        self.sqlite_shards(run_id)
    }

    fn report_worker(&self, worker: &WorkerRecord) -> Result<()> {
        self.sqlite_report_worker(worker)
    }

    fn workers(&self, limit: usize) -> Result<Vec<WorkerRecord>> {
        self.sqlite_workers(limit)
    }
}

#[cfg(test)]
mod tests;
