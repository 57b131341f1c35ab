//! [`FaultyStore`] (feature `faults`): a real store ([`SqliteStore`] in memory by default,
//! [`PostgresStore`], or any other [`Store`]) behind a thin wrapper that counts writes and fails the
//! ones a test asks for, as a process killed at that point would leave the store: the engine's tests
//! and the end-to-end crash matrix run against the store's own ledger state machine, transactions
//! and queries, not a copy of them.

use std::any::Any;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;
use offerloop_domain::{Decision, Outcome, Reward};

use crate::{
    AudienceRow, BatchMark, BatchRecord, BatchStatus, DeliveryRecord, DriftAlertRecord, Error, FeedbackRow, LockHolder,
    ModelRecord, PostgresStore, Result, RunPhase, RunRecord, ShardLease, ShardPlan, ShardRecord, SqliteStore, Store,
    StoreLocation, UseCaseLock, WorkerRecord,
};

/// The stores whose learned decisions can be listed ([`FaultyStore::learned`]).
trait Inspect: Send + Sync {
    /// As [`SqliteStore::learned_decisions`].
    fn learned_decisions(&self, early_unjudged: bool) -> Result<HashSet<String>>;
}

impl Inspect for SqliteStore {
    fn learned_decisions(&self, early_unjudged: bool) -> Result<HashSet<String>> {
        SqliteStore::learned_decisions(self, early_unjudged)
    }
}

impl Inspect for PostgresStore {
    fn learned_decisions(&self, early_unjudged: bool) -> Result<HashSet<String>> {
        PostgresStore::learned_decisions(self, early_unjudged)
    }
}

/// A store that counts writes and fails the ones asked for (see the module docs).
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    /// The same store when it can list its learned decisions (an SQLite or PostgreSQL store).
    inspect: Option<Arc<dyn Inspect>>,
    writes: AtomicUsize,
    /// Fail the next `mark_learned` or `mark_learned_early` (a crash right after the model was saved).
    pub fail_next_mark_learned: Mutex<bool>,
    /// Fail every write from the `n`-th on (1-based), as a process killed at that point would leave
    /// the store: the failing write and all later ones are not applied.
    pub fail_writes_from: Mutex<Option<usize>>,
}

impl std::fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyStore")
            .field("inner", &self.inner)
            .field("writes", &self.writes)
            .field("fail_next_mark_learned", &self.fail_next_mark_learned)
            .field("fail_writes_from", &self.fail_writes_from)
            .finish_non_exhaustive()
    }
}

impl FaultyStore {
    /// A fresh in-memory SQLite store behind the wrapper.
    ///
    /// # Errors
    /// SQLite's, if it cannot create it.
    pub fn in_memory() -> Result<Self> {
        Ok(Self::new(SqliteStore::in_memory()?))
    }

    /// The store at `location` behind the wrapper (e.g. a PostgreSQL schema, to run a crash test
    /// against PostgreSQL).
    ///
    /// # Errors
    /// Those of [`SqliteStore::open`] or [`PostgresStore::connect`].
    pub fn open(location: &StoreLocation) -> Result<Self> {
        Ok(match location {
            StoreLocation::Sqlite(path) => Self::new(SqliteStore::open(path)?),
            StoreLocation::Postgres(config) => Self::new(PostgresStore::connect(config)?),
        })
    }

    /// `inner` behind the wrapper, no fault asked for. [`FaultyStore::learned`] and
    /// [`FaultyStore::unmonitored`] work when it is a [`SqliteStore`] or a [`PostgresStore`].
    pub fn new<S: Store + 'static>(inner: S) -> Self {
        let inner = Arc::new(inner);
        let any: Arc<dyn Any + Send + Sync> = Arc::clone(&inner) as _;
        let inspect: Option<Arc<dyn Inspect>> = match any.downcast::<SqliteStore>() {
            Ok(sqlite) => Some(sqlite),
            Err(any) => any.downcast::<PostgresStore>().ok().map(|pg| pg as _),
        };
        Self::with(inner, inspect)
    }

    /// Any shared store behind the wrapper ([`FaultyStore::learned`] and
    /// [`FaultyStore::unmonitored`] are then unsupported).
    pub fn from_dyn(inner: Arc<dyn Store>) -> Self {
        Self::with(inner, None)
    }

    fn with(inner: Arc<dyn Store>, inspect: Option<Arc<dyn Inspect>>) -> Self {
        Self {
            inner,
            inspect,
            writes: AtomicUsize::new(0),
            fail_next_mark_learned: Mutex::new(false),
            fail_writes_from: Mutex::new(None),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }
}

fn simulated_crash(what: &str) -> Error {
    Error::Unstorable {
        what: "simulated crash",
        message: what.to_owned(),
    }
}

impl FaultyStore {
    /// Write calls so far (refused ones included).
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    /// Counts a write, failing it when a crash was asked for at or before it.
    fn write(&self, what: &str) -> Result<()> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if self
            .fail_writes_from
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|from| n >= from)
        {
            return Err(simulated_crash(what));
        }
        Ok(())
    }

    /// The inner store's learned decisions, when it can list them.
    fn inspect(&self, early_unjudged: bool) -> Result<HashSet<String>> {
        match &self.inspect {
            Some(store) => store.learned_decisions(early_unjudged),
            None => Err(Error::Unsupported {
                operation: "listing learned decisions",
            }),
        }
    }

    /// The decisions marked learned (done or early).
    ///
    /// # Errors
    /// The store's; [`Error::Unsupported`] for a store given to [`FaultyStore::from_dyn`].
    pub fn learned(&self) -> Result<HashSet<String>> {
        self.inspect(false)
    }

    /// Fails once if `fail_next_mark_learned` is set (a simulated crash while marking).
    fn crash_if_asked(&self) -> Result<()> {
        if std::mem::take(
            &mut *self
                .fail_next_mark_learned
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        ) {
            return Err(simulated_crash("marking decisions learned"));
        }
        Ok(())
    }

    /// The decisions learned early whose final reward the drift detectors have not judged.
    ///
    /// # Errors
    /// As [`FaultyStore::learned`].
    pub fn unmonitored(&self) -> Result<HashSet<String>> {
        self.inspect(true)
    }
}

impl Store for FaultyStore {
    fn lock_use_case(&self, use_case: &str, holder: &LockHolder) -> Result<UseCaseLock> {
        self.inner.lock_use_case(use_case, holder)
    }
    fn begin_run(&self, use_case: &str, date: Date, now: Timestamp) -> Result<RunRecord> {
        self.write("begin_run")?;
        self.inner.begin_run(use_case, date, now)
    }
    fn run(&self, use_case: &str, date: Date) -> Result<Option<RunRecord>> {
        self.inner.run(use_case, date)
    }
    fn advance_run(&self, run_id: i64, phase: RunPhase, now: Timestamp) -> Result<()> {
        self.write("advance_run")?;
        self.inner.advance_run(run_id, phase, now)
    }
    fn finish_run(&self, run_id: i64, summary: &serde_json::Value, now: Timestamp) -> Result<()> {
        self.write("finish_run")?;
        self.inner.finish_run(run_id, summary, now)
    }
    fn runs(&self, use_case: &str, limit: usize) -> Result<Vec<RunRecord>> {
        self.inner.runs(use_case, limit)
    }
    fn record_audience(&self, run_id: i64, customers: &[AudienceRow]) -> Result<usize> {
        self.write("record_audience")?;
        self.inner.record_audience(run_id, customers)
    }
    fn audience(&self, run_id: i64) -> Result<Vec<AudienceRow>> {
        self.inner.audience(run_id)
    }
    fn record_decisions(&self, run_id: i64, decisions: &[Decision]) -> Result<usize> {
        self.write("record_decisions")?;
        self.inner.record_decisions(run_id, decisions)
    }
    fn decisions(&self, run_id: i64) -> Result<Vec<Decision>> {
        self.inner.decisions(run_id)
    }
    fn decisions_between(&self, use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Decision>> {
        self.inner.decisions_between(use_case, from, to)
    }
    fn plan_batch(&self, batch: &BatchRecord) -> Result<BatchRecord> {
        self.write("plan_batch")?;
        self.inner.plan_batch(batch)
    }
    fn plan_batches(&self, batches: &[BatchRecord]) -> Result<()> {
        self.write("plan_batches")?;
        self.inner.plan_batches(batches)
    }
    fn mark_batch(&self, batch_id: &str, mark: &BatchMark, now: Timestamp) -> Result<()> {
        self.write("mark_batch")?;
        self.inner.mark_batch(batch_id, mark, now)
    }
    fn batches(&self, run_id: i64) -> Result<Vec<BatchRecord>> {
        self.inner.batches(run_id)
    }
    fn batch_states(&self, run_id: i64) -> Result<Vec<BatchStatus>> {
        self.inner.batch_states(run_id)
    }
    fn unknown_batches(&self, use_case: &str) -> Result<Vec<BatchRecord>> {
        self.inner.unknown_batches(use_case)
    }
    fn record_outcomes(&self, use_case: &str, outcomes: &[Outcome]) -> Result<usize> {
        self.write("record_outcomes")?;
        self.inner.record_outcomes(use_case, outcomes)
    }
    fn feed_keys_read(&self, use_case: &str, source: &str) -> Result<HashSet<String>> {
        self.inner.feed_keys_read(use_case, source)
    }
    fn record_feed_outcomes(
        &self,
        use_case: &str,
        source: &str,
        keys: &[String],
        outcomes: &[Outcome],
        now: Timestamp,
    ) -> Result<usize> {
        self.write("record_feed_outcomes")?;
        self.inner.record_feed_outcomes(use_case, source, keys, outcomes, now)
    }
    fn outcomes_between(&self, use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Outcome>> {
        self.inner.outcomes_between(use_case, from, to)
    }
    fn upsert_rewards(&self, rewards: &[Reward]) -> Result<()> {
        self.write("upsert_rewards")?;
        self.inner.upsert_rewards(rewards)
    }
    fn rewards_between(&self, use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Reward>> {
        self.inner.rewards_between(use_case, from, to)
    }
    fn matured_feedback(&self, use_case: &str) -> Result<Vec<FeedbackRow>> {
        self.inner.matured_feedback(use_case)
    }
    fn pending_feedback(&self, use_case: &str) -> Result<Vec<FeedbackRow>> {
        self.inner.pending_feedback(use_case)
    }
    fn mark_learned(&self, decision_ids: &[String]) -> Result<()> {
        self.crash_if_asked()?;
        self.write("mark_learned")?;
        self.inner.mark_learned(decision_ids)
    }
    fn mark_learned_early(&self, decision_ids: &[String]) -> Result<()> {
        self.crash_if_asked()?;
        self.write("mark_learned_early")?;
        self.inner.mark_learned_early(decision_ids)
    }
    fn unmonitored_feedback(&self, use_case: &str) -> Result<Vec<FeedbackRow>> {
        self.inner.unmonitored_feedback(use_case)
    }
    fn mark_monitored(&self, decision_ids: &[String]) -> Result<()> {
        self.write("mark_monitored")?;
        self.inner.mark_monitored(decision_ids)
    }
    fn record_deliveries(&self, records: &[DeliveryRecord]) -> Result<usize> {
        self.write("record_deliveries")?;
        self.inner.record_deliveries(records)
    }
    fn retract_rejections(&self, decision_ids: &[String]) -> Result<usize> {
        self.write("retract_rejections")?;
        self.inner.retract_rejections(decision_ids)
    }
    fn deliveries_between(&self, use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<DeliveryRecord>> {
        self.inner.deliveries_between(use_case, from, to)
    }
    fn save_model(&self, use_case: &str, version: &str, snapshot: &serde_json::Value, now: Timestamp) -> Result<()> {
        self.write("save_model")?;
        self.inner.save_model(use_case, version, snapshot, now)
    }
    fn latest_model(&self, use_case: &str) -> Result<Option<ModelRecord>> {
        self.inner.latest_model(use_case)
    }
    fn record_drift_alerts(&self, use_case: &str, alerts: &[DriftAlertRecord]) -> Result<()> {
        self.write("record_drift_alerts")?;
        self.inner.record_drift_alerts(use_case, alerts)
    }
    fn drift_alerts(&self, use_case: &str) -> Result<Vec<DriftAlertRecord>> {
        self.inner.drift_alerts(use_case)
    }
    fn audience_range(&self, run_id: i64, offset: u64, limit: u64) -> Result<Vec<AudienceRow>> {
        self.inner.audience_range(run_id, offset, limit)
    }
    fn decisions_by_id(&self, ids: &[String]) -> Result<Vec<Decision>> {
        self.inner.decisions_by_id(ids)
    }
    fn plan_shards(&self, plan: &ShardPlan) -> Result<ShardPlan> {
        self.write("plan_shards")?;
        self.inner.plan_shards(plan)
    }
    fn shard_plan(&self, run_id: i64) -> Result<Option<ShardPlan>> {
        self.inner.shard_plan(run_id)
    }
    fn lease_shard(&self, run_id: i64, holder: &str, ttl: Duration, now: Timestamp) -> Result<Option<ShardLease>> {
        self.write("lease_shard")?;
        self.inner.lease_shard(run_id, holder, ttl, now)
    }
    fn renew_shard(&self, lease: &ShardLease, ttl: Duration, now: Timestamp) -> Result<ShardLease> {
        self.write("renew_shard")?;
        self.inner.renew_shard(lease, ttl, now)
    }
    fn complete_shard(&self, lease: &ShardLease, summary: &serde_json::Value, now: Timestamp) -> Result<()> {
        self.write("complete_shard")?;
        self.inner.complete_shard(lease, summary, now)
    }
    fn shards(&self, run_id: i64) -> Result<Vec<ShardRecord>> {
        self.inner.shards(run_id)
    }
    fn report_worker(&self, worker: &WorkerRecord) -> Result<()> {
        self.write("report_worker")?;
        self.inner.report_worker(worker)
    }
    fn workers(&self, limit: usize) -> Result<Vec<WorkerRecord>> {
        self.inner.workers(limit)
    }
}
