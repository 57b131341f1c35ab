//! In-memory fakes of the ports for the engine's unit tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use apache_avro::types::Value;
use apache_avro::{Codec, Schema, Writer};
use async_trait::async_trait;
use jiff::Timestamp;
use jiff::civil::Date;
use offerloop_activation::{ActivationRequest, Activator, BatchKind, BatchOutcome, PlannedBatch};
use offerloop_domain::{Decision, Outcome, Reward, RewardStatus, UseCase};
use offerloop_store::{
    AudienceRow, BatchRecord, BatchState, DeliveryRecord, DriftAlertRecord, Error, FeedbackRow, ModelRecord, Result,
    RunPhase, RunRecord, Store,
};

#[derive(Debug, Default)]
struct Inner {
    runs: Vec<RunRecord>,
    audience: BTreeMap<i64, Vec<AudienceRow>>,
    decisions: Vec<(i64, Decision)>,
    batches: Vec<BatchRecord>,
    outcomes: Vec<Outcome>,
    rewards: HashMap<String, Reward>,
    learned: HashSet<String>,
    /// Learned early, final reward not yet judged by the drift detectors (a subset of `learned`).
    early: HashSet<String>,
    deliveries: Vec<DeliveryRecord>,
    models: Vec<ModelRecord>,
    alerts: Vec<DriftAlertRecord>,
    /// `(use case, source, key)` of every outcome-feed object read.
    feed_keys: HashSet<(String, String, String)>,
    writes: usize,
}

/// A `Store` in memory, with a write counter.
#[derive(Debug, Default)]
pub struct FakeStore {
    inner: Mutex<Inner>,
    /// Fail the next `mark_learned` or `mark_learned_early` (a crash right after the model was saved).
    pub fail_next_mark_learned: Mutex<bool>,
}

impl FakeStore {
    pub fn writes(&self) -> usize {
        self.inner.lock().unwrap().writes
    }

    /// The decisions marked learned.
    pub fn learned(&self) -> HashSet<String> {
        self.inner.lock().unwrap().learned.clone()
    }

    /// Fails once if `fail_next_mark_learned` is set (a simulated crash while marking).
    fn crash_if_asked(&self) -> Result<()> {
        if std::mem::take(&mut *self.fail_next_mark_learned.lock().unwrap()) {
            return Err(Error::BatchState {
                batch: "simulated crash".into(),
                from: BatchState::Planned,
                to: BatchState::Planned,
            });
        }
        Ok(())
    }

    /// The decisions learned early whose final reward the drift detectors have not judged.
    pub fn unmonitored(&self) -> HashSet<String> {
        self.inner.lock().unwrap().early.clone()
    }

    /// Unlearned decisions whose reward has `status`, with the features of their run's audience row.
    fn unlearned(&self, status: RewardStatus) -> Vec<FeedbackRow> {
        self.feedback_where(status, |s, id| !s.learned.contains(id))
    }

    /// Decisions accepted by `keep` whose reward has `status`, with their audience row's features.
    fn feedback_where(&self, status: RewardStatus, keep: impl Fn(&Inner, &str) -> bool) -> Vec<FeedbackRow> {
        let s = self.inner.lock().unwrap();
        let mut out = Vec::new();
        for (run, d) in &s.decisions {
            if !keep(&s, &d.id) {
                continue;
            }
            let Some(r) = s.rewards.get(&d.id).filter(|r| r.status == status) else {
                continue;
            };
            let features = s.audience[run]
                .iter()
                .find(|a| a.customer_id == d.customer_id.as_str())
                .unwrap()
                .features
                .clone();
            out.push(FeedbackRow {
                decision: d.clone(),
                reward: r.value,
                features,
            });
        }
        out
    }
}

impl Store for FakeStore {
    fn begin_run(&self, use_case: &str, date: Date, now: Timestamp) -> Result<RunRecord> {
        let mut s = self.inner.lock().unwrap();
        if let Some(r) = s.runs.iter().find(|r| r.use_case == use_case && r.date == date) {
            return Ok(r.clone());
        }
        s.writes += 1;
        let r = RunRecord {
            id: s.runs.len() as i64 + 1,
            use_case: use_case.into(),
            date,
            phase: RunPhase::Started,
            started_at: now,
            updated_at: now,
            summary: None,
        };
        s.runs.push(r.clone());
        Ok(r)
    }
    fn run(&self, use_case: &str, date: Date) -> Result<Option<RunRecord>> {
        let s = self.inner.lock().unwrap();
        Ok(s.runs
            .iter()
            .find(|r| r.use_case == use_case && r.date == date)
            .cloned())
    }
    fn advance_run(&self, run_id: i64, phase: RunPhase, now: Timestamp) -> Result<()> {
        let mut s = self.inner.lock().unwrap();
        s.writes += 1;
        let r = s.runs.iter_mut().find(|r| r.id == run_id).unwrap();
        if phase > r.phase {
            r.phase = phase;
            r.updated_at = now;
        }
        Ok(())
    }
    fn finish_run(&self, run_id: i64, summary: &serde_json::Value, now: Timestamp) -> Result<()> {
        let mut s = self.inner.lock().unwrap();
        s.writes += 1;
        let r = s.runs.iter_mut().find(|r| r.id == run_id).unwrap();
        r.phase = RunPhase::Done;
        r.summary = Some(summary.clone());
        r.updated_at = now;
        Ok(())
    }
    fn runs(&self, use_case: &str, limit: usize) -> Result<Vec<RunRecord>> {
        let s = self.inner.lock().unwrap();
        let mut v: Vec<_> = s.runs.iter().filter(|r| r.use_case == use_case).cloned().collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.date));
        v.truncate(limit);
        Ok(v)
    }
    fn record_audience(&self, run_id: i64, customers: &[AudienceRow]) -> Result<usize> {
        let mut s = self.inner.lock().unwrap();
        s.writes += 1;
        let rows = s.audience.entry(run_id).or_default();
        let mut n = 0;
        for c in customers {
            if !rows.iter().any(|r| r.customer_id == c.customer_id) {
                rows.push(c.clone());
                n += 1;
            }
        }
        Ok(n)
    }
    fn audience(&self, run_id: i64) -> Result<Vec<AudienceRow>> {
        Ok(self
            .inner
            .lock()
            .unwrap()
            .audience
            .get(&run_id)
            .cloned()
            .unwrap_or_default())
    }
    fn record_decisions(&self, run_id: i64, decisions: &[Decision]) -> Result<usize> {
        let mut s = self.inner.lock().unwrap();
        s.writes += 1;
        let mut n = 0;
        for d in decisions {
            if !s.decisions.iter().any(|(_, x)| x.id == d.id) {
                s.decisions.push((run_id, d.clone()));
                n += 1;
            }
        }
        Ok(n)
    }
    fn decisions(&self, run_id: i64) -> Result<Vec<Decision>> {
        let s = self.inner.lock().unwrap();
        Ok(s.decisions
            .iter()
            .filter(|(r, _)| *r == run_id)
            .map(|(_, d)| d.clone())
            .collect())
    }
    fn decisions_between(&self, use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Decision>> {
        let s = self.inner.lock().unwrap();
        Ok(s.decisions
            .iter()
            .map(|(_, d)| d)
            .filter(|d| d.use_case == use_case && d.decided_at >= from && d.decided_at < to)
            .cloned()
            .collect())
    }
    fn plan_batch(&self, batch: &BatchRecord) -> Result<BatchRecord> {
        let mut s = self.inner.lock().unwrap();
        if let Some(b) = s.batches.iter().find(|b| b.id == batch.id) {
            return Ok(b.clone());
        }
        s.writes += 1;
        s.batches.push(batch.clone());
        Ok(batch.clone())
    }
    fn mark_batch(&self, batch_id: &str, state: BatchState, detail: Option<&str>, now: Timestamp) -> Result<()> {
        let mut s = self.inner.lock().unwrap();
        s.writes += 1;
        let b = s.batches.iter_mut().find(|b| b.id == batch_id).unwrap();
        let ok = matches!(
            (b.state, state),
            (BatchState::Planned, BatchState::Sending)
                | (
                    BatchState::Sending,
                    BatchState::Sent | BatchState::Failed | BatchState::Unknown
                )
                | (BatchState::Failed, BatchState::Sending)
        );
        if !ok {
            return Err(Error::BatchState {
                batch: batch_id.into(),
                from: b.state,
                to: state,
            });
        }
        b.state = state;
        b.detail = detail.map(str::to_owned);
        b.updated_at = now;
        Ok(())
    }
    fn batches(&self, run_id: i64) -> Result<Vec<BatchRecord>> {
        let s = self.inner.lock().unwrap();
        Ok(s.batches.iter().filter(|b| b.run_id == run_id).cloned().collect())
    }
    fn unknown_batches(&self, _use_case: &str) -> Result<Vec<BatchRecord>> {
        let s = self.inner.lock().unwrap();
        Ok(s.batches
            .iter()
            .filter(|b| b.state == BatchState::Unknown)
            .cloned()
            .collect())
    }
    fn record_outcomes(&self, _use_case: &str, outcomes: &[Outcome]) -> Result<usize> {
        let mut s = self.inner.lock().unwrap();
        s.writes += 1;
        let mut n = 0;
        for o in outcomes {
            if !s.outcomes.iter().any(|x| x.dedupe_key == o.dedupe_key) {
                s.outcomes.push(o.clone());
                n += 1;
            }
        }
        Ok(n)
    }
    fn feed_keys_read(&self, use_case: &str, source: &str) -> Result<HashSet<String>> {
        let s = self.inner.lock().unwrap();
        Ok(s.feed_keys
            .iter()
            .filter(|(u, f, _)| u == use_case && f == source)
            .map(|(_, _, k)| k.clone())
            .collect())
    }
    fn record_feed_outcomes(
        &self,
        use_case: &str,
        source: &str,
        keys: &[String],
        outcomes: &[Outcome],
        _now: Timestamp,
    ) -> Result<usize> {
        let new = self.record_outcomes(use_case, outcomes)?;
        let mut s = self.inner.lock().unwrap();
        for k in keys {
            s.feed_keys.insert((use_case.to_owned(), source.to_owned(), k.clone()));
        }
        Ok(new)
    }
    fn outcomes_between(&self, _use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Outcome>> {
        let s = self.inner.lock().unwrap();
        Ok(s.outcomes
            .iter()
            .filter(|o| o.occurred_at >= from && o.occurred_at < to)
            .cloned()
            .collect())
    }
    fn upsert_rewards(&self, rewards: &[Reward]) -> Result<()> {
        let mut s = self.inner.lock().unwrap();
        s.writes += 1;
        for r in rewards {
            let keep = s
                .rewards
                .get(&r.decision_id)
                .is_some_and(|old| old.status == RewardStatus::Final && r.status == RewardStatus::Pending);
            if !keep {
                s.rewards.insert(r.decision_id.clone(), r.clone());
            }
        }
        Ok(())
    }
    fn rewards_between(&self, use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Reward>> {
        let ids: Vec<String> = self
            .decisions_between(use_case, from, to)?
            .into_iter()
            .map(|d| d.id)
            .collect();
        let s = self.inner.lock().unwrap();
        Ok(ids.iter().filter_map(|id| s.rewards.get(id).cloned()).collect())
    }
    fn matured_feedback(&self, _use_case: &str) -> Result<Vec<FeedbackRow>> {
        Ok(self.unlearned(RewardStatus::Final))
    }
    fn pending_feedback(&self, _use_case: &str) -> Result<Vec<FeedbackRow>> {
        Ok(self.unlearned(RewardStatus::Pending))
    }
    fn mark_learned(&self, decision_ids: &[String]) -> Result<()> {
        self.crash_if_asked()?;
        let mut s = self.inner.lock().unwrap();
        s.writes += 1;
        for id in decision_ids {
            s.early.remove(id);
        }
        s.learned.extend(decision_ids.iter().cloned());
        Ok(())
    }
    fn mark_learned_early(&self, decision_ids: &[String]) -> Result<()> {
        self.crash_if_asked()?;
        let mut s = self.inner.lock().unwrap();
        s.writes += 1;
        for id in decision_ids {
            if s.learned.insert(id.clone()) {
                s.early.insert(id.clone());
            }
        }
        Ok(())
    }
    fn unmonitored_feedback(&self, _use_case: &str) -> Result<Vec<FeedbackRow>> {
        Ok(self.feedback_where(RewardStatus::Final, |s, id| s.early.contains(id)))
    }
    fn mark_monitored(&self, decision_ids: &[String]) -> Result<()> {
        let mut s = self.inner.lock().unwrap();
        s.writes += 1;
        for id in decision_ids {
            s.early.remove(id);
        }
        Ok(())
    }
    fn record_deliveries(&self, records: &[DeliveryRecord]) -> Result<usize> {
        let mut s = self.inner.lock().unwrap();
        s.writes += 1;
        let mut new = 0;
        for r in records {
            if !s.decisions.iter().any(|(_, d)| d.id == r.decision_id) {
                return Err(Error::Unstorable {
                    what: "delivery record",
                    message: r.decision_id.clone(),
                });
            }
            if !s.deliveries.iter().any(|x| x.decision_id == r.decision_id) {
                s.deliveries.push(r.clone());
                new += 1;
            }
        }
        Ok(new)
    }
    fn deliveries_between(&self, use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<DeliveryRecord>> {
        let s = self.inner.lock().unwrap();
        Ok(s.deliveries
            .iter()
            .filter(|r| {
                s.decisions.iter().any(|(_, d)| {
                    d.id == r.decision_id && d.use_case == use_case && d.decided_at >= from && d.decided_at < to
                })
            })
            .cloned()
            .collect())
    }
    fn save_model(&self, use_case: &str, version: &str, snapshot: &serde_json::Value, now: Timestamp) -> Result<()> {
        let mut s = self.inner.lock().unwrap();
        s.writes += 1;
        s.models.push(ModelRecord {
            use_case: use_case.into(),
            version: version.into(),
            snapshot: snapshot.clone(),
            saved_at: now,
        });
        Ok(())
    }
    fn latest_model(&self, use_case: &str) -> Result<Option<ModelRecord>> {
        let s = self.inner.lock().unwrap();
        Ok(s.models.iter().rev().find(|m| m.use_case == use_case).cloned())
    }
    fn record_drift_alerts(&self, _use_case: &str, alerts: &[DriftAlertRecord]) -> Result<()> {
        let mut s = self.inner.lock().unwrap();
        s.writes += 1;
        s.alerts.extend(alerts.iter().cloned());
        Ok(())
    }
    fn drift_alerts(&self, _use_case: &str) -> Result<Vec<DriftAlertRecord>> {
        Ok(self.inner.lock().unwrap().alerts.clone())
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
