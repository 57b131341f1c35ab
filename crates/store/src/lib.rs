//! offerloop-store: the persistence of the daily loop behind the [`Store`] trait.
//!
//! A run's every step reads what the previous step stored, so a crash resumes at the first
//! unfinished step and nothing is decided or sent twice. The store keeps: runs and their phase,
//! audience snapshots (each customer's features as used for the decision), decisions, send batches
//! and their fate (the send ledger), outcomes (deduplicated), rewards, delivery records (messages that
//! were rejected, late, never sent or bounced), model snapshots (opaque blobs with a version) and
//! drift alerts. Every write is one transaction: a crash at any point leaves a
//! consistent state.
//!
//! [`SqliteStore`] is the embedded implementation (default file `.offerloop/state.db`, WAL,
//! migrations versioned in code). The trait is synchronous and `Send + Sync`; async callers run it on
//! a blocking thread.

mod error;
#[cfg(feature = "faults")]
pub mod faults;
mod lock;
mod open;
mod postgres;
mod records;
mod sqlite;
mod workers;

pub use error::{Error, Result};
pub use lock::{LockHolder, UseCaseLock, lock_file, lock_path};
pub use open::{DEFAULT_PASSWORD_ENV, StoreLocation, open};
pub use postgres::{DEFAULT_SCHEMA, PostgresConfig, PostgresStore};
pub use records::*;
pub use sqlite::{DEFAULT_PATH, SqliteStore};
pub use workers::{ShardLease, ShardPlan, ShardRecord, ShardState, WorkerRecord};

use jiff::Timestamp;
use jiff::civil::Date;
use offerloop_domain::{Decision, Outcome, Reward};

/// Everything a daily run persists. Object-safe: hold it as `Arc<dyn Store>`.
pub trait Store: Send + Sync + std::fmt::Debug {
    // ---------------------------------------------------------------- locks

    /// Takes the lock of `use_case` in this store for `holder`, held until the returned guard is
    /// dropped (or its process ends). One runner per use case and store: `offerloop run`, `report`
    /// and `templates sync` take it first.
    ///
    /// # Errors
    /// [`Error::Locked`] naming the current holder (command, pid, host, since when) when another
    /// runner holds it; an I/O error when the lock cannot be made.
    fn lock_use_case(&self, use_case: &str, holder: &LockHolder) -> Result<UseCaseLock>;

    // ---------------------------------------------------------------- runs

    /// The run of `use_case` on `date`, creating it (phase [`RunPhase::Started`]) when there is none.
    /// Idempotent: a second call returns the existing run, whatever its phase.
    fn begin_run(&self, use_case: &str, date: Date, now: Timestamp) -> Result<RunRecord>;
    /// The run of `use_case` on `date`, if any.
    fn run(&self, use_case: &str, date: Date) -> Result<Option<RunRecord>>;
    /// Records that `run_id` completed `phase` (phases only move forward; an earlier phase is ignored).
    fn advance_run(&self, run_id: i64, phase: RunPhase, now: Timestamp) -> Result<()>;
    /// Stores the run's summary (JSON) and marks it [`RunPhase::Done`].
    fn finish_run(&self, run_id: i64, summary: &serde_json::Value, now: Timestamp) -> Result<()>;
    /// The last `limit` runs of `use_case`, newest first.
    fn runs(&self, use_case: &str, limit: usize) -> Result<Vec<RunRecord>>;

    // ---------------------------------------------------------------- audience

    /// Stores the audience of `run_id` (customers and their features as JSON), replacing nothing:
    /// customers already stored for the run are ignored. One transaction.
    fn record_audience(&self, run_id: i64, customers: &[AudienceRow]) -> Result<usize>;
    /// The stored audience of `run_id`, in insertion order.
    fn audience(&self, run_id: i64) -> Result<Vec<AudienceRow>>;

    // ---------------------------------------------------------------- decisions

    /// Stores decisions of `run_id`. A decision whose id is already stored is ignored (never decided
    /// twice). One transaction. Returns how many were new. A decision of another use case than the
    /// run's is refused ([`Error::Unstorable`]), and with it the whole call.
    fn record_decisions(&self, run_id: i64, decisions: &[Decision]) -> Result<usize>;
    /// The decisions of `run_id`.
    fn decisions(&self, run_id: i64) -> Result<Vec<Decision>>;
    /// The decisions of `use_case` decided in `[from, to)`, for attribution and reports.
    fn decisions_between(&self, use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Decision>>;

    // ---------------------------------------------------------------- send ledger

    /// Records a planned batch (state [`BatchState::Planned`]) before anything is sent. A batch whose
    /// id already exists is left as it is (and returned), so re-planning after a crash is harmless.
    fn plan_batch(&self, batch: &BatchRecord) -> Result<BatchRecord>;
    /// Records many planned batches at once (one transaction in [`SqliteStore`]), each as
    /// [`Store::plan_batch`] would: state [`BatchState::Planned`], an existing id left as it is.
    /// The default calls `plan_batch` for each.
    fn plan_batches(&self, batches: &[BatchRecord]) -> Result<()> {
        for batch in batches {
            self.plan_batch(batch)?;
        }
        Ok(())
    }
    /// Moves a batch to `mark.state`, with what is known of it (the dispatch id or error for people,
    /// whether a failure may be retried, whether a dry run wrote it). Allowed moves: planned → sending
    /// → sent | failed | unknown, and failed → sending (a resend of a certainly-rejected batch). Any
    /// other move is refused with [`Error::BatchState`].
    fn mark_batch(&self, batch_id: &str, mark: &BatchMark, now: Timestamp) -> Result<()>;
    /// The batches of `run_id`.
    fn batches(&self, run_id: i64) -> Result<Vec<BatchRecord>>;
    /// The fate of each batch of `run_id`, in plan order, without requests or decision ids (a day of a
    /// million recipients has a GiB of those). The default reads [`Store::batches`].
    fn batch_states(&self, run_id: i64) -> Result<Vec<BatchStatus>> {
        Ok(self
            .batches(run_id)?
            .into_iter()
            .map(|b| BatchStatus {
                id: b.id,
                target: b.target,
                state: b.state,
                detail: b.detail,
                retryable: b.retryable,
                dry_run: b.dry_run,
            })
            .collect())
    }
    /// Batches of `use_case` whose fate is unknown (never resent automatically; reported).
    fn unknown_batches(&self, use_case: &str) -> Result<Vec<BatchRecord>>;

    // ---------------------------------------------------------------- outcomes and rewards

    /// Stores outcomes of `use_case`, ignoring those whose `dedupe_key` is already stored. Returns how
    /// many were new.
    fn record_outcomes(&self, use_case: &str, outcomes: &[Outcome]) -> Result<usize>;
    /// Outcomes of `use_case` that occurred in `[from, to)`.
    fn outcomes_between(&self, use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Outcome>>;
    /// The object keys of the outcome feed `source` (a Currents bucket's URL) already read for
    /// `use_case`: the feed's checkpoint.
    fn feed_keys_read(&self, use_case: &str, source: &str) -> Result<std::collections::HashSet<String>>;
    /// Stores `outcomes` as [`Store::record_outcomes`] does and adds `keys` to the checkpoint of
    /// `source`, in **one transaction**: a crash leaves both or neither, so no file is skipped with
    /// its events lost and none is counted twice. `now` is when the keys were read. Returns how many
    /// outcomes were new.
    fn record_feed_outcomes(
        &self,
        use_case: &str,
        source: &str,
        keys: &[String],
        outcomes: &[Outcome],
        now: Timestamp,
    ) -> Result<usize>;
    /// Inserts or replaces rewards (by decision id). A final reward is never replaced by a pending one.
    fn upsert_rewards(&self, rewards: &[Reward]) -> Result<()>;
    /// The reward of each decision of `use_case` decided in `[from, to)` that has one.
    fn rewards_between(&self, use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Reward>>;
    /// Final rewards not yet learned from, with their decision and the features it was made with.
    fn matured_feedback(&self, use_case: &str) -> Result<Vec<FeedbackRow>>;
    /// Pending rewards (their window still open) not yet learned from, with their decision and the
    /// features it was made with, in the order the decisions were stored: what the engine may learn
    /// early, corrected by the delay model.
    fn pending_feedback(&self, use_case: &str) -> Result<Vec<FeedbackRow>>;
    /// Marks decisions as learned from (they are returned by neither `matured_feedback` nor
    /// `pending_feedback` again).
    fn mark_learned(&self, decision_ids: &[String]) -> Result<()>;
    /// Marks decisions as learned from a *partial* reward (read before its window closed): as
    /// `mark_learned`, and once their reward is final they are returned by `unmonitored_feedback`, so
    /// that the drift detectors judge the final reward. Decisions already learned are left as they are.
    fn mark_learned_early(&self, decision_ids: &[String]) -> Result<()>;
    /// Final rewards of decisions learned early (`mark_learned_early`) that the drift detectors have
    /// not judged yet, with their decision and features, in the order the decisions were stored.
    fn unmonitored_feedback(&self, use_case: &str) -> Result<Vec<FeedbackRow>>;
    /// Marks the final rewards of decisions learned early as judged by the drift detectors (they are
    /// not returned by `unmonitored_feedback` again).
    fn mark_monitored(&self, decision_ids: &[String]) -> Result<()>;
    /// Records what became of messages that did not simply reach their customer. A decision keeps
    /// its first record (a later one is ignored), so the engine may report the same message from two
    /// sources; a record of a decision that is not stored is refused ([`Error::Unstorable`]), and with
    /// it the whole call. Returns how many were new.
    fn record_deliveries(&self, records: &[DeliveryRecord]) -> Result<usize>;
    /// Withdraws the `rejected` delivery records of `decision_ids` (their batch is being resent after
    /// a certain rejection), and makes those decisions learnable again (a rejection consumed them
    /// unlearned). One transaction. Returns how many records were withdrawn; other statuses and other
    /// decisions are left as they are.
    fn retract_rejections(&self, decision_ids: &[String]) -> Result<usize>;
    /// The delivery records of `use_case`'s decisions decided in `[from, to)`.
    fn deliveries_between(&self, use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<DeliveryRecord>>;

    // ---------------------------------------------------------------- models and drift

    /// Stores a model snapshot of `use_case` (opaque JSON) under `version`.
    fn save_model(&self, use_case: &str, version: &str, snapshot: &serde_json::Value, now: Timestamp) -> Result<()>;
    /// The latest model snapshot of `use_case`.
    fn latest_model(&self, use_case: &str) -> Result<Option<ModelRecord>>;
    /// Stores drift alerts.
    fn record_drift_alerts(&self, use_case: &str, alerts: &[DriftAlertRecord]) -> Result<()>;
    /// Every drift alert of `use_case`, oldest first.
    fn drift_alerts(&self, use_case: &str) -> Result<Vec<DriftAlertRecord>>;

    // ---------------------------------------------------------------- workers (see `workers`)

    /// The stored audience rows of `run_id` from `offset`, at most `limit` of them, in storage order
    /// (a shard's customers).
    fn audience_range(&self, run_id: i64, offset: u64, limit: u64) -> Result<Vec<AudienceRow>>;
    /// The stored decisions among `ids` (in no particular order; ids not stored are left out).
    fn decisions_by_id(&self, ids: &[String]) -> Result<Vec<Decision>>;
    /// Stores the shard plan of its run and its shards (all [`ShardState::Open`]), in one
    /// transaction; when the run already has a plan, that one is returned and nothing changes.
    fn plan_shards(&self, plan: &ShardPlan) -> Result<ShardPlan>;
    /// The shard plan of `run_id`, if the day is shared by workers.
    fn shard_plan(&self, run_id: i64) -> Result<Option<ShardPlan>>;
    /// Leases one shard of `run_id` to `holder` until `now + ttl`: an open shard, or a leased one
    /// whose lease expired before `now` (lowest number first), its token incremented. `None` when
    /// every shard is done or held by a live lease. Two workers never get the same shard.
    fn lease_shard(
        &self,
        run_id: i64,
        holder: &str,
        ttl: std::time::Duration,
        now: Timestamp,
    ) -> Result<Option<ShardLease>>;
    /// Extends `lease` to `now + ttl`.
    ///
    /// # Errors
    /// [`Error::LeaseLost`] when the shard changed hands (its token moved on) or is done.
    fn renew_shard(&self, lease: &ShardLease, ttl: std::time::Duration, now: Timestamp) -> Result<ShardLease>;
    /// Marks the leased shard done with its worker's summary (JSON).
    ///
    /// # Errors
    /// [`Error::LeaseLost`] as for [`Store::renew_shard`].
    fn complete_shard(&self, lease: &ShardLease, summary: &serde_json::Value, now: Timestamp) -> Result<()>;
    /// Every shard of `run_id`, by number.
    fn shards(&self, run_id: i64) -> Result<Vec<ShardRecord>>;
    /// Registers `worker` or updates its record (by id): its status and `last_seen`.
    fn report_worker(&self, worker: &WorkerRecord) -> Result<()>;
    /// The registered workers, most recently seen first, at most `limit`.
    fn workers(&self, limit: usize) -> Result<Vec<WorkerRecord>>;
}
