//! The PostgreSQL implementation of [`Store`]: one database shared by several workers (processes or
//! hosts) deciding one day together, with the same semantics as [`SqliteStore`](crate::SqliteStore)
//! method for method (the integration tests run one suite against both).
//!
//! # A synchronous trait over an async client
//!
//! [`Store`] is synchronous, and is called from blocking threads (`spawn_blocking`,
//! `block_in_place`) and sometimes directly on a thread that runs a current-thread tokio runtime.
//! `tokio-postgres` is async. So a [`PostgresStore`] owns a small runtime of its own (multi-thread,
//! two workers, built once in [`PostgresStore::connect`]) on which its connections live; each method
//! spawns its work as a task on that runtime and waits for the task with
//! `futures::executor::block_on`, which parks the calling thread without entering any tokio context.
//! That never panics with "cannot start a runtime from within a runtime", whatever runtime the
//! caller is on, and never deadlocks it: the work runs on the store's threads, not the caller's. (A
//! caller on an async thread is blocked for the duration of the call, as with the SQLite store; the
//! engine calls the store from blocking threads.) Dropping the store shuts its runtime down in the
//! background (`Runtime::shutdown_background`), which is allowed inside an async context.
//!
//! # Connections and transactions
//!
//! A `deadpool-postgres` pool (default 8 connections) serves every method; each connection has
//! `search_path` set to the store's schema (the URL's `?schema=`, default `public`). Every write
//! method is exactly one transaction (or one statement), as the trait requires. Bulk writes
//! (audience, decisions, batches, outcomes, rewards, deliveries, learning marks) send their rows as
//! arrays, one `INSERT … SELECT … FROM unnest($1::text[], …) WITH ORDINALITY … ORDER BY ordinality ON
//! CONFLICT DO NOTHING` per chunk of rows, inside the call's one transaction: a few round trips for a
//! million rows, rows inserted in the order given (so "the first one wins" and the storage order are
//! those of the SQLite store). Reads stream their rows and decode them as they come.
//!
//! # Schema
//!
//! Migrations are versioned in code (`schema`), applied under a transaction-level advisory lock so
//! several workers starting at once migrate once. Times are `BIGINT` nanoseconds, as in SQLite.
//!
//! # Locks and shard leases
//!
//! [`Store::lock_use_case`] takes a session-level advisory lock on a connection of its own (see
//! `lock`). [`Store::lease_shard`] takes the lowest free shard with `SELECT … FOR UPDATE SKIP LOCKED`
//! in the statement that leases it, so concurrent workers never wait on each other nor get the same
//! shard.
//!
//! # Durability and latency
//!
//! Each write commits with the server's `synchronous_commit` (by default `on`: the commit waits for
//! the server's WAL to reach its disk), so a small write such as [`Store::mark_batch`] costs one
//! round trip plus one WAL flush (about 3 ms on this project's machines, against 0.2 ms for the
//! SQLite file store, which does not flush on commit). A URL option
//! `?options=-c%20synchronous_commit%3Doff` trades that for the SQLite store's guarantee (a crash of
//! the server's host may lose the last commits; a crash of offerloop loses nothing committed).
//!
//! Only plain TCP (or Unix-socket) connections are made: no TLS (`sslmode=require` fails).

mod codec;
mod config;
mod feedback;
mod lock;
mod schema;
mod workers;

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use jiff::Timestamp;
use jiff::civil::Date;
use offerloop_domain::{Decision, Outcome, Reward};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use self::codec::{BATCH_COLUMNS, DECISION_COLUMNS, RUN_COLUMNS};
pub use self::config::{DEFAULT_SCHEMA, PostgresConfig};
pub(crate) use self::lock::PgLock;
use crate::{
    AudienceRow, BatchMark, BatchRecord, BatchState, BatchStatus, DeliveryRecord, DriftAlertRecord, Error, FeedbackRow,
    LockHolder, ModelRecord, Result, RunPhase, RunRecord, ShardLease, ShardPlan, ShardRecord, Store, UseCaseLock,
    WorkerRecord,
};

/// Rows sent per statement by the bulk writes (a statement's arrays stay a few MiB).
const ROWS_PER_STATEMENT: usize = 20_000;

/// Bytes of batch requests sent per statement by [`Store::plan_batches`] at most (besides
/// [`ROWS_PER_STATEMENT`]).
const BYTES_PER_STATEMENT: usize = 32 << 20;

/// How long a method waits for a free pooled connection before failing.
const POOL_WAIT: Duration = Duration::from_secs(120);

/// How long opening a new pooled connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The runtime a [`PostgresStore`] runs its connections and queries on (see the module docs),
/// shared with the use-case locks it hands out so that their connections outlive the store if need
/// be. Shut down in the background when the last owner drops it.
pub(crate) struct Bridge {
    /// `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge").finish_non_exhaustive()
    }
}

impl Bridge {
    /// A runtime of two worker threads.
    fn new() -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("offerloop-store-pg")
            .enable_all()
            .build()
            .map_err(|error| Error::Runtime {
                operation: "start the PostgreSQL store's runtime",
                message: error.to_string(),
            })?;
        Ok(Self { runtime: Some(runtime) })
    }

    /// Runs `work` as a task on the store's runtime and waits for it on the calling thread without
    /// entering any tokio context (see the module docs).
    pub(crate) fn run<T, F>(&self, operation: &'static str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        let runtime = self.runtime.as_ref().ok_or(Error::Runtime {
            operation,
            message: "the runtime is shut down".to_owned(),
        })?;
        let task = runtime.spawn(work);
        futures::executor::block_on(task).unwrap_or_else(|error| {
            Err(Error::Runtime {
                operation,
                message: error.to_string(),
            })
        })
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Never blocks, so it may run inside an async context (unlike dropping the runtime).
            runtime.shutdown_background();
        }
    }
}

/// Adds the operation's name to a PostgreSQL error.
pub(crate) trait PgCtx<T> {
    /// Maps the error to [`Error::Postgres`] for `operation`.
    fn ctx(self, operation: &'static str) -> Result<T>;
}

impl<T> PgCtx<T> for std::result::Result<T, tokio_postgres::Error> {
    fn ctx(self, operation: &'static str) -> Result<T> {
        self.map_err(|error| Error::Postgres { operation, error })
    }
}

/// A stable 64-bit advisory-lock key of `parts` (xxh3 of the parts separated by NUL bytes).
pub(crate) fn lock_key(parts: &[&str]) -> i64 {
    let text = parts.join("\0");
    i64::from_ne_bytes(xxhash_rust::xxh3::xxh3_64(text.as_bytes()).to_ne_bytes())
}

/// The PostgreSQL store (see the module docs).
///
/// `Send + Sync`; cheap to share behind an `Arc`. Its `Debug` shows where it is, never the password.
pub struct PostgresStore {
    /// The pool of connections (on `bridge`'s runtime).
    pool: Pool,
    /// The client configuration (for the connections of use-case locks).
    client_config: tokio_postgres::Config,
    /// Where it is.
    config: PostgresConfig,
    /// The runtime; declared last so that the pool is dropped before it.
    bridge: Arc<Bridge>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.config.display())
            .finish_non_exhaustive()
    }
}

/// A pooled connection for `operation`.
async fn connection(pool: &Pool, operation: &'static str) -> Result<deadpool_postgres::Client> {
    pool.get().await.map_err(|error| Error::Pool { operation, error })
}

/// Runs `sql` (prepared once per connection) with `params`; returns how many rows it changed.
async fn execute(
    client: &impl GenericClient,
    operation: &'static str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64> {
    let statement = client.prepare_cached(sql).await.ctx(operation)?;
    client.execute(&statement, params).await.ctx(operation)
}

/// The one row, if any, of `sql` with `params`.
async fn query_opt(
    client: &impl GenericClient,
    operation: &'static str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>> {
    let statement = client.prepare_cached(sql).await.ctx(operation)?;
    client.query_opt(&statement, params).await.ctx(operation)
}

/// The rows of `sql` with `params`, decoded as they stream in.
async fn query<T>(
    client: &impl GenericClient,
    operation: &'static str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    decode: impl Fn(&Row) -> Result<T> + Send,
) -> Result<Vec<T>> {
    use futures::TryStreamExt as _;
    let statement = client.prepare_cached(sql).await.ctx(operation)?;
    let rows = client
        .query_raw(&statement, params.iter().copied())
        .await
        .ctx(operation)?;
    let mut rows = std::pin::pin!(rows);
    let mut decoded = Vec::new();
    while let Some(row) = rows.try_next().await.ctx(operation)? {
        decoded.push(decode(&row)?);
    }
    Ok(decoded)
}

/// The ranges of `len` rows sent one statement each.
fn chunks(len: usize) -> impl Iterator<Item = Range<usize>> {
    (0..len)
        .step_by(ROWS_PER_STATEMENT)
        .map(move |start| start..len.min(start.saturating_add(ROWS_PER_STATEMENT)))
}

/// The use case of run `run_id`, or [`Error::NotFound`].
async fn require_run(client: &impl GenericClient, run_id: i64) -> Result<String> {
    query_opt(
        client,
        "read a run",
        "SELECT use_case FROM runs WHERE id = $1",
        &[&run_id],
    )
    .await?
    .map(|row| codec::get(&row, 0, "run use case"))
    .transpose()?
    .ok_or_else(|| Error::NotFound {
        what: "run",
        id: run_id.to_string(),
    })
}

/// The first of `ids` (in their order) that is not a stored decision.
async fn first_missing_decision(
    client: &impl GenericClient,
    operation: &'static str,
    ids: &[String],
) -> Result<Option<(usize, String)>> {
    let row = query_opt(
        client,
        operation,
        "SELECT u.n, u.id FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n) \
         WHERE NOT EXISTS (SELECT 1 FROM decisions d WHERE d.id = u.id) ORDER BY u.n LIMIT 1",
        &[&ids],
    )
    .await?;
    row.map(|row| {
        let n: i64 = codec::get(&row, 0, "ordinality")?;
        let index = usize::try_from(n - 1).map_err(|e| codec::corrupt("ordinality", e))?;
        Ok((index, codec::get(&row, 1, "decision id")?))
    })
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

/// The states a batch may move to `to` from.
fn batch_sources(to: BatchState) -> Vec<&'static str> {
    use BatchState::{Failed, Planned, Sending, Sent, Unknown};
    [Planned, Sending, Sent, Failed, Unknown]
        .into_iter()
        .filter(|from| batch_move_allowed(*from, to))
        .map(codec::batch_state)
        .collect()
}

/// Inserts one batch as planned, unless its id is stored (the parameters in this order).
const INSERT_BATCH: &str = "INSERT INTO batches \
     (id, run_id, target_kind, target_id, decision_ids, request, state, detail, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, 'planned', $7, $8) ON CONFLICT (id) DO NOTHING";

/// The batch `batch_id`, if stored.
async fn find_batch(client: &impl GenericClient, batch_id: &str) -> Result<Option<BatchRecord>> {
    query_opt(
        client,
        "read a batch",
        &format!("SELECT {BATCH_COLUMNS} FROM batches b WHERE b.id = $1"),
        &[&batch_id],
    )
    .await?
    .map(|row| codec::batch(&row))
    .transpose()
}

impl PostgresStore {
    /// The newest schema version this code knows.
    pub const SCHEMA_VERSION: i64 = schema::VERSION;

    /// Connects to the store at `config` (creating its schema when missing) and migrates it to
    /// [`PostgresStore::SCHEMA_VERSION`]; several processes may do so at once.
    ///
    /// # Errors
    /// [`Error::Pool`] when the server cannot be reached or refuses the login, [`Error::SchemaTooNew`]
    /// for a schema written by a newer offerloop and [`Error::Foreign`] for a schema holding another
    /// program's tables (both left untouched), [`Error::Postgres`] when the migration fails,
    /// [`Error::Runtime`] when the store's runtime cannot start.
    pub fn connect(config: &PostgresConfig) -> Result<Self> {
        let store = Self::open_unmigrated(config)?;
        store.migrate(schema::MIGRATIONS)?;
        Ok(store)
    }

    /// The store at `config`, without touching its schema.
    fn open_unmigrated(config: &PostgresConfig) -> Result<Self> {
        let client_config = config.client_config()?;
        let bridge = Arc::new(Bridge::new()?);
        let manager = Manager::from_config(
            client_config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size())
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|error| Error::Runtime {
                operation: "build the connection pool",
                message: error.to_string(),
            })?;
        Ok(Self {
            pool,
            client_config,
            config: config.clone(),
            bridge,
        })
    }

    /// Applies `migrations` (see `schema`), in one transaction.
    fn migrate(&self, migrations: &'static [&'static str]) -> Result<i64> {
        const OP: &str = "migrate the schema";
        let pool = self.pool.clone();
        let schema = self.config.schema().to_owned();
        self.bridge.run(OP, async move {
            let mut client = connection(&pool, OP).await?;
            let tx = client.transaction().await.ctx(OP)?;
            let version = schema::migrate_with(&tx, &schema, migrations).await?;
            tx.commit().await.ctx(OP)?;
            Ok(version)
        })
    }

    /// Where the store is: its configuration (which never shows the password).
    pub fn config(&self) -> &PostgresConfig {
        &self.config
    }

    /// The schema version of the store (after [`PostgresStore::connect`]: always the newest this
    /// code knows, unless another process changed it since).
    ///
    /// # Errors
    /// [`Error::Postgres`] or [`Error::Pool`] if it cannot be read.
    pub fn schema_version(&self) -> Result<i64> {
        const OP: &str = "read the schema version";
        let pool = self.pool.clone();
        let schema = self.config.schema().to_owned();
        self.bridge.run(OP, async move {
            let client = connection(&pool, OP).await?;
            schema::version(&**client, &schema).await
        })
    }

    /// The ids of the decisions marked learned: every one (learned from a final or a partial reward),
    /// or with `early_unjudged` only those learned early whose final reward the drift detectors have
    /// not judged yet. For inspection (tests, diagnostics).
    ///
    /// # Errors
    /// [`Error::Postgres`] or [`Error::Pool`] if they cannot be read.
    pub fn learned_decisions(&self, early_unjudged: bool) -> Result<std::collections::HashSet<String>> {
        const OP: &str = "read learned decisions";
        let sql = if early_unjudged {
            "SELECT id FROM decisions WHERE learned = 2"
        } else {
            "SELECT id FROM decisions WHERE learned <> 0"
        };
        self.read(OP, move |client| async move {
            let ids = query(&client, OP, sql, &[], |row| codec::get::<String>(row, 0, "decision id")).await?;
            Ok(ids.into_iter().collect())
        })
    }

    /// The advisory-lock key of `use_case`'s lock in this store (a stable hash of the schema and the
    /// use case), for diagnostics: PostgreSQL's `pg_locks` shows it as `classid` (high 32 bits) and
    /// `objid` (low 32 bits) with `objsubid = 1`.
    pub fn lock_key(&self, use_case: &str) -> i64 {
        lock_key(&[self.config.schema(), use_case])
    }

    /// Runs `work` with a pooled connection on the store's runtime.
    fn read<T, F, Fut>(&self, operation: &'static str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Client) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let pool = self.pool.clone();
        self.bridge.run(operation, async move {
            let client = connection(&pool, operation).await?;
            work(client).await
        })
    }

    /// A handle on the pool (cheap: the pool is shared), to move into a task.
    fn pool(&self) -> Pool {
        self.pool.clone()
    }
}

/// Decisions as columns, for one `unnest` insert per chunk.
struct DecisionColumns {
    id: Vec<String>,
    customer: Vec<String>,
    decided_at: Vec<i64>,
    group: Vec<&'static str>,
    action: Vec<i64>,
    propensity: Vec<f64>,
    policy_version: Vec<String>,
    planned_send_at: Vec<Option<i64>>,
    cost: Vec<f64>,
}

impl DecisionColumns {
    /// The columns of `decisions`, or the first reason one of them cannot be stored (checked in
    /// their order, as the SQLite store does).
    fn new(decisions: &[Decision]) -> Result<Self> {
        let mut columns = Self {
            id: Vec::with_capacity(decisions.len()),
            customer: Vec::with_capacity(decisions.len()),
            decided_at: Vec::with_capacity(decisions.len()),
            group: Vec::with_capacity(decisions.len()),
            action: Vec::with_capacity(decisions.len()),
            propensity: Vec::with_capacity(decisions.len()),
            policy_version: Vec::with_capacity(decisions.len()),
            planned_send_at: Vec::with_capacity(decisions.len()),
            cost: Vec::with_capacity(decisions.len()),
        };
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
            columns
                .decided_at
                .push(codec::time("decision time", decision.decided_at)?);
            columns.planned_send_at.push(planned);
            columns.id.push(decision.id.clone());
            columns.customer.push(decision.customer_id.as_str().to_owned());
            columns.group.push(decision.group.as_str());
            columns.action.push(codec::action(decision.action));
            columns.propensity.push(decision.propensity.get());
            columns.policy_version.push(decision.policy_version.clone());
            columns.cost.push(decision.cost);
        }
        Ok(columns)
    }
}

/// Batches as columns, for one `unnest` insert per chunk.
struct BatchColumns {
    id: Vec<String>,
    run_id: Vec<i64>,
    target_kind: Vec<&'static str>,
    target_id: Vec<Option<String>>,
    decision_ids: Vec<String>,
    request: Vec<String>,
    detail: Vec<Option<String>>,
    updated_at: Vec<i64>,
}

impl BatchColumns {
    fn new(batches: &[BatchRecord]) -> Result<Self> {
        let mut columns = Self {
            id: Vec::with_capacity(batches.len()),
            run_id: Vec::with_capacity(batches.len()),
            target_kind: Vec::with_capacity(batches.len()),
            target_id: Vec::with_capacity(batches.len()),
            decision_ids: Vec::with_capacity(batches.len()),
            request: Vec::with_capacity(batches.len()),
            detail: Vec::with_capacity(batches.len()),
            updated_at: Vec::with_capacity(batches.len()),
        };
        for batch in batches {
            columns
                .decision_ids
                .push(codec::json("batch decision ids", &batch.decision_ids)?);
            columns
                .updated_at
                .push(codec::time("batch update time", batch.updated_at)?);
            columns.id.push(batch.id.clone());
            columns.run_id.push(batch.run_id);
            columns.target_kind.push(batch.target.kind());
            columns.target_id.push(batch.target.object_id().map(str::to_owned));
            columns.request.push(batch.request.clone());
            columns.detail.push(batch.detail.clone());
        }
        Ok(columns)
    }

    /// The ranges of rows sent one statement each: at most [`ROWS_PER_STATEMENT`] rows and about
    /// [`BYTES_PER_STATEMENT`] bytes of requests (a single larger request goes alone).
    fn chunks(&self) -> Vec<Range<usize>> {
        let mut ranges = Vec::new();
        let mut start = 0;
        let mut bytes = 0;
        for (index, request) in self.request.iter().enumerate() {
            let full = index - start >= ROWS_PER_STATEMENT || bytes + request.len() > BYTES_PER_STATEMENT;
            if full && index > start {
                ranges.push(start..index);
                start = index;
                bytes = 0;
            }
            bytes += request.len();
        }
        if start < self.request.len() {
            ranges.push(start..self.request.len());
        }
        ranges
    }
}

impl Store for PostgresStore {
    fn lock_use_case(&self, use_case: &str, holder: &LockHolder) -> Result<UseCaseLock> {
        lock::lock(
            &self.bridge,
            &self.client_config,
            self.lock_key(use_case),
            use_case,
            holder,
        )
    }

    fn begin_run(&self, use_case: &str, date: Date, now: Timestamp) -> Result<RunRecord> {
        const OP: &str = "begin a run";
        let now = codec::time("run start", now)?;
        let use_case = use_case.to_owned();
        let date = codec::date(date);
        let pool = self.pool();
        self.bridge.run(OP, async move {
            let mut client = connection(&pool, OP).await?;
            let tx = client.transaction().await.ctx(OP)?;
            execute(
                &tx,
                OP,
                "INSERT INTO runs (use_case, date, phase, started_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
                 ON CONFLICT (use_case, date) DO NOTHING",
                &[&use_case, &date, &codec::phase(RunPhase::Started), &now],
            )
            .await?;
            let row = query_opt(
                &tx,
                "read the run begun",
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE use_case = $1 AND date = $2"),
                &[&use_case, &date],
            )
            .await?
            .ok_or_else(|| Error::NotFound {
                what: "run",
                id: format!("{use_case} {date}"),
            })?;
            let run = codec::run(&row)?;
            tx.commit().await.ctx(OP)?;
            Ok(run)
        })
    }

    fn run(&self, use_case: &str, date: Date) -> Result<Option<RunRecord>> {
        const OP: &str = "read a run";
        let use_case = use_case.to_owned();
        let date = codec::date(date);
        self.read(OP, move |client| async move {
            query_opt(
                &client,
                OP,
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE use_case = $1 AND date = $2"),
                &[&use_case, &date],
            )
            .await?
            .map(|row| codec::run(&row))
            .transpose()
        })
    }

    fn advance_run(&self, run_id: i64, phase: RunPhase, now: Timestamp) -> Result<()> {
        const OP: &str = "advance a run";
        let now = codec::time("run update time", now)?;
        let pool = self.pool();
        self.bridge.run(OP, async move {
            let mut client = connection(&pool, OP).await?;
            let tx = client.transaction().await.ctx(OP)?;
            let current = query_opt(&tx, OP, "SELECT phase FROM runs WHERE id = $1 FOR UPDATE", &[&run_id])
                .await?
                .ok_or_else(|| Error::NotFound {
                    what: "run",
                    id: run_id.to_string(),
                })?;
            let current = codec::read_phase(codec::get(&current, 0, "run phase")?)?;
            if phase > current {
                execute(
                    &tx,
                    OP,
                    "UPDATE runs SET phase = $2, updated_at = $3 WHERE id = $1",
                    &[&run_id, &codec::phase(phase), &now],
                )
                .await?;
            }
            tx.commit().await.ctx(OP)?;
            Ok(())
        })
    }

    fn finish_run(&self, run_id: i64, summary: &serde_json::Value, now: Timestamp) -> Result<()> {
        const OP: &str = "finish a run";
        let now = codec::time("run update time", now)?;
        let summary = codec::json("run summary", summary)?;
        self.read(OP, move |client| async move {
            let changed = execute(
                &client,
                OP,
                "UPDATE runs SET phase = $2, updated_at = $3, summary = $4 WHERE id = $1",
                &[&run_id, &codec::phase(RunPhase::Done), &now, &summary],
            )
            .await?;
            if changed == 0 {
                return Err(Error::NotFound {
                    what: "run",
                    id: run_id.to_string(),
                });
            }
            Ok(())
        })
    }

    fn runs(&self, use_case: &str, limit: usize) -> Result<Vec<RunRecord>> {
        const OP: &str = "list runs";
        let use_case = use_case.to_owned();
        let limit = codec::count(limit);
        self.read(OP, move |client| async move {
            query(
                &client,
                OP,
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE use_case = $1 ORDER BY date DESC, id DESC LIMIT $2"),
                &[&use_case, &limit],
                codec::run,
            )
            .await
        })
    }

    fn record_audience(&self, run_id: i64, customers: &[AudienceRow]) -> Result<usize> {
        const OP: &str = "record the audience";
        let ids: Vec<String> = customers.iter().map(|c| c.customer_id.clone()).collect();
        let features: Vec<String> = customers.iter().map(|c| c.features.clone()).collect();
        let zones: Vec<Option<String>> = customers.iter().map(|c| c.time_zone.clone()).collect();
        let pool = self.pool();
        self.bridge.run(OP, async move {
            let mut client = connection(&pool, OP).await?;
            let tx = client.transaction().await.ctx(OP)?;
            require_run(&tx, run_id).await?;
            let mut new = 0;
            for range in chunks(ids.len()) {
                new += execute(
                    &tx,
                    OP,
                    "INSERT INTO audience (run_id, customer_id, features, time_zone) \
                     SELECT $1, u.customer_id, u.features, u.time_zone \
                     FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS u(customer_id, features, time_zone, n) \
                     ORDER BY u.n ON CONFLICT (run_id, customer_id) DO NOTHING",
                    &[&run_id, &&ids[range.clone()], &&features[range.clone()], &&zones[range]],
                )
                .await?;
            }
            tx.commit().await.ctx(OP)?;
            usize::try_from(new).map_err(|e| codec::corrupt("row count", e))
        })
    }

    fn audience(&self, run_id: i64) -> Result<Vec<AudienceRow>> {
        self.audience_range(run_id, 0, u64::MAX)
    }

    fn record_decisions(&self, run_id: i64, decisions: &[Decision]) -> Result<usize> {
        const OP: &str = "record decisions";
        // The first decision whose use case differs from the first one's: with the first, the two
        // candidates for the first decision of another use case than the run's.
        let first = decisions.first().map(|d| (d.id.clone(), d.use_case.clone()));
        let other = first.as_ref().and_then(|(_, use_case)| {
            decisions
                .iter()
                .find(|d| d.use_case != *use_case)
                .map(|d| (d.id.clone(), d.use_case.clone()))
        });
        // Checked after the run, as the SQLite store does.
        let columns = DecisionColumns::new(decisions);
        let pool = self.pool();
        self.bridge.run(OP, async move {
            let mut client = connection(&pool, OP).await?;
            let tx = client.transaction().await.ctx(OP)?;
            let use_case = require_run(&tx, run_id).await?;
            let stray = match first {
                Some(first) if first.1 != use_case => Some(first),
                _ => other,
            };
            if let Some((id, stray_use_case)) = stray {
                return Err(Error::Unstorable {
                    what: "decision",
                    message: format!(
                        "decision `{id}` is of use case `{stray_use_case}` but run {run_id} is of `{use_case}`"
                    ),
                });
            }
            let c = columns?;
            let mut new = 0;
            for r in chunks(c.id.len()) {
                new += execute(
                    &tx,
                    OP,
                    "INSERT INTO decisions (id, run_id, use_case, customer_id, decided_at, decision_group, action_id, \
                     propensity, policy_version, planned_send_at, cost) \
                     SELECT u.id, $1, $2, u.customer_id, u.decided_at, u.decision_group, u.action_id, u.propensity, \
                     u.policy_version, u.planned_send_at, u.cost \
                     FROM unnest($3::text[], $4::text[], $5::bigint[], $6::text[], $7::bigint[], $8::float8[], \
                     $9::text[], $10::bigint[], $11::float8[]) WITH ORDINALITY \
                     AS u(id, customer_id, decided_at, decision_group, action_id, propensity, policy_version, \
                     planned_send_at, cost, n) \
                     ORDER BY u.n ON CONFLICT (id) DO NOTHING",
                    &[
                        &run_id,
                        &use_case,
                        &&c.id[r.clone()],
                        &&c.customer[r.clone()],
                        &&c.decided_at[r.clone()],
                        &&c.group[r.clone()],
                        &&c.action[r.clone()],
                        &&c.propensity[r.clone()],
                        &&c.policy_version[r.clone()],
                        &&c.planned_send_at[r.clone()],
                        &&c.cost[r],
                    ],
                )
                .await?;
            }
            tx.commit().await.ctx(OP)?;
            usize::try_from(new).map_err(|e| codec::corrupt("row count", e))
        })
    }

    fn decisions(&self, run_id: i64) -> Result<Vec<Decision>> {
        const OP: &str = "read decisions";
        self.read(OP, move |client| async move {
            query(
                &client,
                OP,
                &format!("SELECT {DECISION_COLUMNS} FROM decisions d WHERE d.run_id = $1 ORDER BY d.seq"),
                &[&run_id],
                codec::decision,
            )
            .await
        })
    }

    fn decisions_between(&self, use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Decision>> {
        const OP: &str = "read decisions";
        let use_case = use_case.to_owned();
        let (from, to) = (codec::bound(from), codec::bound(to));
        self.read(OP, move |client| async move {
            query(
                &client,
                OP,
                &format!(
                    "SELECT {DECISION_COLUMNS} FROM decisions d \
                     WHERE d.use_case = $1 AND d.decided_at >= $2 AND d.decided_at < $3 \
                     ORDER BY d.decided_at, d.seq"
                ),
                &[&use_case, &from, &to],
                codec::decision,
            )
            .await
        })
    }

    fn plan_batch(&self, batch: &BatchRecord) -> Result<BatchRecord> {
        const OP: &str = "plan a batch";
        let c = BatchColumns::new(std::slice::from_ref(batch))?;
        let id = batch.id.clone();
        let run_id = batch.run_id;
        let pool = self.pool();
        self.bridge.run(OP, async move {
            let mut client = connection(&pool, OP).await?;
            let tx = client.transaction().await.ctx(OP)?;
            if let Some(existing) = find_batch(&tx, &id).await? {
                return Ok(existing);
            }
            require_run(&tx, run_id).await?;
            // A concurrent planner of the same id makes this insert wait for its commit, then do
            // nothing: the batch read next is the one stored.
            execute(
                &tx,
                OP,
                INSERT_BATCH,
                &[
                    &c.id[0],
                    &c.run_id[0],
                    &c.target_kind[0],
                    &c.target_id[0],
                    &c.decision_ids[0],
                    &c.request[0],
                    &c.detail[0],
                    &c.updated_at[0],
                ],
            )
            .await?;
            let stored = find_batch(&tx, &id)
                .await?
                .ok_or_else(|| Error::NotFound { what: "batch", id })?;
            tx.commit().await.ctx(OP)?;
            Ok(stored)
        })
    }

    fn plan_batches(&self, batches: &[BatchRecord]) -> Result<()> {
        const OP: &str = "plan batches";
        let c = BatchColumns::new(batches)?;
        let mut runs = Vec::new();
        for batch in batches {
            if !runs.contains(&batch.run_id) {
                runs.push(batch.run_id);
            }
        }
        let pool = self.pool();
        self.bridge.run(OP, async move {
            let mut client = connection(&pool, OP).await?;
            let tx = client.transaction().await.ctx(OP)?;
            let missing = query_opt(
                &tx,
                OP,
                "SELECT u.id FROM unnest($1::bigint[]) WITH ORDINALITY AS u(id, n) \
                 WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = u.id) ORDER BY u.n LIMIT 1",
                &[&runs],
            )
            .await?;
            if let Some(row) = missing {
                return Err(Error::NotFound {
                    what: "run",
                    id: codec::get::<i64>(&row, 0, "run id")?.to_string(),
                });
            }
            for r in c.chunks() {
                execute(
                    &tx,
                    OP,
                    "INSERT INTO batches (id, run_id, target_kind, target_id, decision_ids, request, state, detail, \
                     updated_at) \
                     SELECT u.id, u.run_id, u.target_kind, u.target_id, u.decision_ids, u.request, 'planned', \
                     u.detail, u.updated_at \
                     FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], \
                     $7::text[], $8::bigint[]) WITH ORDINALITY \
                     AS u(id, run_id, target_kind, target_id, decision_ids, request, detail, updated_at, n) \
                     ORDER BY u.n ON CONFLICT (id) DO NOTHING",
                    &[
                        &&c.id[r.clone()],
                        &&c.run_id[r.clone()],
                        &&c.target_kind[r.clone()],
                        &&c.target_id[r.clone()],
                        &&c.decision_ids[r.clone()],
                        &&c.request[r.clone()],
                        &&c.detail[r.clone()],
                        &&c.updated_at[r],
                    ],
                )
                .await?;
            }
            tx.commit().await.ctx(OP)?;
            Ok(())
        })
    }

    /// One statement: the move is applied only from a state that allows it; when nothing moved, the
    /// batch's state says why (not stored, or a refused move).
    fn mark_batch(&self, batch_id: &str, mark: &BatchMark, now: Timestamp) -> Result<()> {
        const OP: &str = "mark a batch";
        let now = codec::time("batch update time", now)?;
        let state = mark.state;
        let sources = batch_sources(state);
        let detail = mark.detail.clone();
        let retryable = mark.retryable && state == BatchState::Failed;
        let dry_run = mark.dry_run && state == BatchState::Sent;
        let batch_id = batch_id.to_owned();
        self.read(OP, move |client| async move {
            // A batch may change state between the refused update and the read of its state: then
            // the move is tried again.
            for _ in 0..3 {
                let moved = execute(
                    &client,
                    OP,
                    "UPDATE batches SET state = $2, detail = $3, retryable = $4, dry_run = $5, updated_at = $6 \
                     WHERE id = $1 AND state = ANY($7::text[])",
                    &[
                        &batch_id,
                        &codec::batch_state(state),
                        &detail,
                        &retryable,
                        &dry_run,
                        &now,
                        &sources,
                    ],
                )
                .await?;
                if moved > 0 {
                    return Ok(());
                }
                let from = query_opt(
                    &client,
                    "read a batch state",
                    "SELECT state FROM batches WHERE id = $1",
                    &[&batch_id],
                )
                .await?
                .ok_or_else(|| Error::NotFound {
                    what: "batch",
                    id: batch_id.clone(),
                })?;
                let from = codec::read_batch_state(codec::get(&from, 0, "batch state")?)?;
                if !batch_move_allowed(from, state) {
                    return Err(Error::BatchState {
                        batch: batch_id,
                        from,
                        to: state,
                    });
                }
            }
            Err(Error::Runtime {
                operation: OP,
                message: format!("batch `{batch_id}` kept changing state under concurrent updates"),
            })
        })
    }

    fn batches(&self, run_id: i64) -> Result<Vec<BatchRecord>> {
        const OP: &str = "read batches";
        self.read(OP, move |client| async move {
            query(
                &client,
                OP,
                &format!("SELECT {BATCH_COLUMNS} FROM batches b WHERE b.run_id = $1 ORDER BY b.seq"),
                &[&run_id],
                codec::batch,
            )
            .await
        })
    }

    fn batch_states(&self, run_id: i64) -> Result<Vec<BatchStatus>> {
        const OP: &str = "read batch states";
        self.read(OP, move |client| async move {
            query(
                &client,
                OP,
                "SELECT id, target_kind, target_id, state, detail, retryable, dry_run FROM batches \
                 WHERE run_id = $1 ORDER BY seq",
                &[&run_id],
                |row| {
                    Ok(BatchStatus {
                        id: codec::get(row, 0, "batch id")?,
                        target: codec::read_batch_target(
                            codec::get(row, 1, "batch target")?,
                            codec::get(row, 2, "batch target")?,
                        )?,
                        state: codec::read_batch_state(codec::get(row, 3, "batch state")?)?,
                        detail: codec::get(row, 4, "batch detail")?,
                        retryable: codec::get(row, 5, "batch retryability")?,
                        dry_run: codec::get(row, 6, "batch dry run")?,
                    })
                },
            )
            .await
        })
    }

    fn unknown_batches(&self, use_case: &str) -> Result<Vec<BatchRecord>> {
        const OP: &str = "read unknown batches";
        let use_case = use_case.to_owned();
        self.read(OP, move |client| async move {
            query(
                &client,
                OP,
                &format!(
                    "SELECT {BATCH_COLUMNS} FROM batches b JOIN runs r ON r.id = b.run_id \
                     WHERE b.state = 'unknown' AND r.use_case = $1 ORDER BY b.seq"
                ),
                &[&use_case],
                codec::batch,
            )
            .await
        })
    }

    fn record_outcomes(&self, use_case: &str, outcomes: &[Outcome]) -> Result<usize> {
        self.pg_record_outcomes(use_case, outcomes)
    }

    fn outcomes_between(&self, use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Outcome>> {
        self.pg_outcomes_between(use_case, from, to)
    }

    fn feed_keys_read(&self, use_case: &str, source: &str) -> Result<std::collections::HashSet<String>> {
        self.pg_feed_keys_read(use_case, source)
    }

    fn record_feed_outcomes(
        &self,
        use_case: &str,
        source: &str,
        keys: &[String],
        outcomes: &[Outcome],
        now: Timestamp,
    ) -> Result<usize> {
        self.pg_record_feed_outcomes(use_case, source, keys, outcomes, now)
    }

    fn upsert_rewards(&self, rewards: &[Reward]) -> Result<()> {
        self.pg_upsert_rewards(rewards)
    }

    fn rewards_between(&self, use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Reward>> {
        self.pg_rewards_between(use_case, from, to)
    }

    fn matured_feedback(&self, use_case: &str) -> Result<Vec<FeedbackRow>> {
        self.pg_feedback(use_case, feedback::Learned::No, offerloop_domain::RewardStatus::Final)
    }

    fn pending_feedback(&self, use_case: &str) -> Result<Vec<FeedbackRow>> {
        self.pg_feedback(use_case, feedback::Learned::No, offerloop_domain::RewardStatus::Pending)
    }

    fn mark_learned(&self, decision_ids: &[String]) -> Result<()> {
        self.pg_set_learned(
            decision_ids,
            "learned <> 1",
            feedback::Learned::Done,
            "mark decisions learned",
        )
    }

    fn mark_learned_early(&self, decision_ids: &[String]) -> Result<()> {
        self.pg_set_learned(
            decision_ids,
            "learned = 0",
            feedback::Learned::Early,
            "mark decisions learned early",
        )
    }

    fn unmonitored_feedback(&self, use_case: &str) -> Result<Vec<FeedbackRow>> {
        self.pg_feedback(
            use_case,
            feedback::Learned::Early,
            offerloop_domain::RewardStatus::Final,
        )
    }

    fn mark_monitored(&self, decision_ids: &[String]) -> Result<()> {
        self.pg_set_learned(
            decision_ids,
            "learned = 2",
            feedback::Learned::Done,
            "mark decisions monitored",
        )
    }

    fn record_deliveries(&self, records: &[DeliveryRecord]) -> Result<usize> {
        self.pg_record_deliveries(records)
    }

    fn retract_rejections(&self, decision_ids: &[String]) -> Result<usize> {
        self.pg_retract_rejections(decision_ids)
    }

    fn deliveries_between(&self, use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<DeliveryRecord>> {
        self.pg_deliveries_between(use_case, from, to)
    }

    fn save_model(&self, use_case: &str, version: &str, snapshot: &serde_json::Value, now: Timestamp) -> Result<()> {
        self.pg_save_model(use_case, version, snapshot, now)
    }

    fn latest_model(&self, use_case: &str) -> Result<Option<ModelRecord>> {
        self.pg_latest_model(use_case)
    }

    fn record_drift_alerts(&self, use_case: &str, alerts: &[DriftAlertRecord]) -> Result<()> {
        self.pg_record_drift_alerts(use_case, alerts)
    }

    fn drift_alerts(&self, use_case: &str) -> Result<Vec<DriftAlertRecord>> {
        self.pg_drift_alerts(use_case)
    }

    fn audience_range(&self, run_id: i64, offset: u64, limit: u64) -> Result<Vec<AudienceRow>> {
        self.pg_audience_range(run_id, offset, limit)
    }

    fn decisions_by_id(&self, ids: &[String]) -> Result<Vec<Decision>> {
        self.pg_decisions_by_id(ids)
    }

    fn plan_shards(&self, plan: &ShardPlan) -> Result<ShardPlan> {
        self.pg_plan_shards(plan)
    }

    fn shard_plan(&self, run_id: i64) -> Result<Option<ShardPlan>> {
        self.pg_shard_plan(run_id)
    }

    fn lease_shard(&self, run_id: i64, holder: &str, ttl: Duration, now: Timestamp) -> Result<Option<ShardLease>> {
        self.pg_lease_shard(run_id, holder, ttl, now)
    }

    fn renew_shard(&self, lease: &ShardLease, ttl: Duration, now: Timestamp) -> Result<ShardLease> {
        self.pg_renew_shard(lease, ttl, now)
    }

    fn complete_shard(&self, lease: &ShardLease, summary: &serde_json::Value, now: Timestamp) -> Result<()> {
        self.pg_complete_shard(lease, summary, now)
    }

    fn shards(&self, run_id: i64) -> Result<Vec<ShardRecord>> {
        self.pg_shards(run_id)
    }

    fn report_worker(&self, worker: &WorkerRecord) -> Result<()> {
        self.pg_report_worker(worker)
    }

    fn workers(&self, limit: usize) -> Result<Vec<WorkerRecord>> {
        self.pg_workers(limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_state_machine_allows_exactly_the_documented_moves() {
        assert_eq!(batch_sources(BatchState::Sending), ["planned", "failed"]);
        assert_eq!(batch_sources(BatchState::Sent), ["sending"]);
        assert_eq!(batch_sources(BatchState::Failed), ["sending"]);
        assert_eq!(batch_sources(BatchState::Unknown), ["sending"]);
        assert!(batch_sources(BatchState::Planned).is_empty());
    }

    #[test]
    fn chunks_cover_every_row_once() {
        assert_eq!(chunks(0).count(), 0);
        let ranges: Vec<_> = chunks(2 * ROWS_PER_STATEMENT + 1).collect();
        assert_eq!(
            ranges,
            [
                0..ROWS_PER_STATEMENT,
                ROWS_PER_STATEMENT..2 * ROWS_PER_STATEMENT,
                2 * ROWS_PER_STATEMENT..2 * ROWS_PER_STATEMENT + 1
            ]
        );
    }

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(lock_key(&["public", "winback"]), lock_key(&["public", "winback"]));
        assert_ne!(lock_key(&["public", "winback"]), lock_key(&["other", "winback"]));
    }

    #[test]
    fn a_runtime_is_usable_from_inside_another_runtime_and_dropped_there() {
        let outer = tokio::runtime::Builder::new_current_thread().build().unwrap();
        outer.block_on(async {
            let bridge = Bridge::new().unwrap();
            let answer = bridge.run("test", async {
                tokio::task::yield_now().await;
                Ok(42)
            });
            assert_eq!(answer.unwrap(), 42);
            drop(bridge);
        });
    }
}
