//! [`FaultyStore`] (feature `faults`): the real [`SqliteStore`] behind a thin wrapper that counts
//! writes and fails the ones a test asks for, as a process killed at that point would leave the
//! store: the engine's tests and the end-to-end crash matrix run against the store's own ledger state
//! machine, transactions and queries, not a copy of them.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use jiff::Timestamp;
use jiff::civil::Date;
use offerloop_domain::{Decision, Outcome, Reward};

use crate::{
    AudienceRow, BatchMark, BatchRecord, BatchStatus, DeliveryRecord, DriftAlertRecord, Error, FeedbackRow, LockHolder,
    ModelRecord, Result, RunPhase, RunRecord, SqliteStore, Store, UseCaseLock,
};

/// A [`SqliteStore`] that counts writes and fails the ones asked for (see the module docs).
#[derive(Debug)]
pub struct FaultyStore {
    inner: SqliteStore,
    writes: AtomicUsize,
    /// Fail the next `mark_learned` or `mark_learned_early` (a crash right after the model was saved).
    pub fail_next_mark_learned: Mutex<bool>,
    /// Fail every write from the `n`-th on (1-based), as a process killed at that point would leave
    /// the store: the failing write and all later ones are not applied.
    pub fail_writes_from: Mutex<Option<usize>>,
}

impl FaultyStore {
    /// A fresh in-memory store behind the wrapper.
    ///
    /// # Errors
    /// SQLite's, if it cannot create it.
    pub fn in_memory() -> Result<Self> {
        Ok(Self::new(SqliteStore::in_memory()?))
    }

    /// `inner` behind the wrapper, no fault asked for.
    pub fn new(inner: SqliteStore) -> Self {
        Self {
            inner,
            writes: AtomicUsize::new(0),
            fail_next_mark_learned: Mutex::new(false),
            fail_writes_from: Mutex::new(None),
        }
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

    /// The decisions marked learned (done or early).
    ///
    /// # Errors
    /// The store's.
    pub fn learned(&self) -> Result<HashSet<String>> {
        self.inner.learned_decisions(false)
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
    /// The store's.
    pub fn unmonitored(&self) -> Result<HashSet<String>> {
        self.inner.learned_decisions(true)
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
}
