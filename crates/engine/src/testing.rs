//! In-memory fakes of the ports for the engine's unit tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use apache_avro::types::Value;
use apache_avro::{Codec, Schema, Writer};
use async_trait::async_trait;
use jiff::Timestamp;
use jiff::civil::Date;
use offerloop_activation::{ActivationRequest, Activator, BatchKind, BatchOutcome, PlannedBatch};
use offerloop_domain::{Decision, Outcome, Reward, UseCase};
use offerloop_store::{
    AudienceRow, BatchMark, BatchRecord, BatchStatus, DeliveryRecord, DriftAlertRecord, Error, FeedbackRow, LockHolder,
    ModelRecord, Result, RunPhase, RunRecord, SqliteStore, Store, UseCaseLock,
};

/// The real [`SqliteStore`], in memory, behind a thin wrapper that counts writes and injects the
/// failures a test asks for (a crash at a chosen call), so the engine is tested against the store's
/// own ledger state machine, transactions and queries, not a copy of them.
#[derive(Debug)]
pub struct FakeStore {
    inner: SqliteStore,
    writes: AtomicUsize,
    /// Fail the next `mark_learned` or `mark_learned_early` (a crash right after the model was saved).
    pub fail_next_mark_learned: Mutex<bool>,
    /// Fail every write from the `n`-th on (1-based), as a process killed at that point would leave
    /// the store: the failing write and all later ones are not applied.
    pub fail_writes_from: Mutex<Option<usize>>,
}

impl Default for FakeStore {
    fn default() -> Self {
        Self {
            inner: SqliteStore::in_memory().unwrap(),
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

impl FakeStore {
    /// Write calls so far (refused ones included).
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    /// Counts a write, failing it when a crash was asked for at or before it.
    fn write(&self, what: &str) -> Result<()> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_writes_from.lock().unwrap().is_some_and(|from| n >= from) {
            return Err(simulated_crash(what));
        }
        Ok(())
    }

    /// The decisions marked learned (done or early).
    pub fn learned(&self) -> HashSet<String> {
        self.inner.learned_decisions(false).unwrap()
    }

    /// Fails once if `fail_next_mark_learned` is set (a simulated crash while marking).
    fn crash_if_asked(&self) -> Result<()> {
        if std::mem::take(&mut *self.fail_next_mark_learned.lock().unwrap()) {
            return Err(simulated_crash("marking decisions learned"));
        }
        Ok(())
    }

    /// The decisions learned early whose final reward the drift detectors have not judged.
    pub fn unmonitored(&self) -> HashSet<String> {
        self.inner.learned_decisions(true).unwrap()
    }
}

impl Store for FakeStore {
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

/// An activator that plans one batch per decision group of 50 and records executions; its fate per
/// execution index is scripted.
#[derive(Debug, Default)]
pub struct FakeActivator {
    pub executed: Mutex<Vec<String>>,
    /// Fates by execution index (default: sent).
    pub script: Mutex<HashMap<usize, BatchOutcome>>,
}

#[async_trait]
impl Activator for FakeActivator {
    fn plan(
        &self,
        _use_case: &UseCase,
        date: Date,
        requests: &[ActivationRequest],
    ) -> offerloop_activation::Result<Vec<PlannedBatch>> {
        Ok(requests
            .chunks(50)
            .enumerate()
            .map(|(i, chunk)| PlannedBatch {
                id: format!("{date}-{i}"),
                kind: BatchKind::CampaignSend {
                    campaign_id: "c".into(),
                },
                decision_ids: chunk.iter().map(|r| r.decision_id.clone()).collect(),
                request:
                    serde_json::json!({"recipients": chunk.iter().map(|r| r.customer_id.as_str()).collect::<Vec<_>>()})
                        .to_string(),
            })
            .collect())
    }
    async fn execute(&self, batch: &PlannedBatch) -> BatchOutcome {
        let mut executed = self.executed.lock().unwrap();
        let index = executed.len();
        executed.push(batch.id.clone());
        self.script
            .lock()
            .unwrap()
            .remove(&index)
            .unwrap_or(BatchOutcome::Sent {
                id: Some(format!("dispatch-{index}")),
                notice: None,
            })
    }
}

// ---------------------------------------------------------------- Currents files

/// A minimal `users.behaviors.Purchase` writer schema (the reader reads fields by name).
pub const PURCHASE: &str = r#"{"type":"record","name":"Purchase","namespace":"dataexport.S3.inner.users.behaviors","fields":[{"name":"id","type":"string"},{"name":"user_id","type":"string"},{"name":"external_user_id","type":["null","string"],"default":null},{"name":"time","type":"int"},{"name":"product_id","type":"string"},{"name":"price","type":"float"},{"name":"currency","type":"string"},{"name":"properties","type":"string"}]}"#;
/// A minimal `users.messages.email.Delivery` writer schema.
pub const DELIVERY: &str = r#"{"type":"record","name":"Delivery","namespace":"dataexport.S3.inner.users.messages.email","fields":[{"name":"id","type":"string"},{"name":"user_id","type":"string"},{"name":"external_user_id","type":["null","string"],"default":null},{"name":"time","type":"int"},{"name":"campaign_id","type":["null","string"],"default":null}]}"#;

/// A key in Braze's layout.
pub fn currents_key(event_type: &str, hour: &str, n: u32) -> String {
    format!(
        "currents/dataexport.prod-01.S3.integration.69cadaaed2d51b7c75b1a3e5/event_type={event_type}/date={hour}/version=10/us-01/f+0+{n}.avro"
    )
}

/// An optional string field's value.
pub fn opt(v: Option<&str>) -> Value {
    match v {
        Some(s) => Value::Union(1, Box::new(Value::String(s.into()))),
        None => Value::Union(0, Box::new(Value::Null)),
    }
}

/// Writes an Avro container of `records` at `key` under `dir`.
pub fn write_avro(dir: &std::path::Path, key: &str, schema: &str, records: Vec<Vec<(&str, Value)>>) {
    let schema = Schema::parse_str(schema).unwrap();
    let mut w = Writer::with_codec(&schema, Vec::new(), Codec::Null).unwrap();
    for r in records {
        w.append_value(Value::Record(r.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
            .unwrap();
    }
    let path = dir.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, w.into_inner().unwrap()).unwrap();
}

/// A purchase record of [`PURCHASE`].
pub fn purchase(id: &str, customer: Option<&str>, time: i32, price: f32) -> Vec<(&'static str, Value)> {
    vec![
        ("id", Value::String(id.into())),
        ("user_id", Value::String("5f0c1b2a3d4e5f6071829304".into())),
        ("external_user_id", opt(customer)),
        ("time", Value::Int(time)),
        ("product_id", Value::String("boots".into())),
        ("price", Value::Float(price)),
        ("currency", Value::String("USD".into())),
        ("properties", Value::String("{}".into())),
    ]
}
