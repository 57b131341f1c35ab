//! A day shared by several workers ([`DailyRun::work`]): in one process (`offerloop run --workers
//! N`) or in many, on any hosts that reach the same store (`offerloop worker`).
//!
//! Every worker runs the same protocol; the store's records are the only coordination
//! (`offerloop_store`'s `workers` module):
//! 1. **Plan, once.** A worker that finds no shard plan for the day takes the use case's lock
//!    ([`Store::lock_use_case`]) and does what a single run does before deciding: export the audience,
//!    attribute outcomes, learn, store the model (one model version for the day). It then stores the
//!    shard plan: shard `k` is the stored audience rows `k × shard_size ..`. The others wait for the
//!    plan; a planner that dies releases the lock with its process and the next worker resumes the
//!    phases it left.
//! 2. **Shards, by lease.** Each worker leases a shard ([`Store::lease_shard`], until now + the lease's
//!    time to live, renewed every third of it), decides its customers with the day's model (every
//!    decision is a pure function of the customer, the model and the round, so a shard taken over
//!    decides exactly what its first holder decided), plans and sends its batches through the send
//!    ledger, and completes it with its summary. A worker killed mid-shard stops renewing: its lease
//!    expires and another worker takes the shard over; its batches left `sending` become `unknown`
//!    and are never resent, its `planned` ones are sent once (the ledger's `planned → sending` move
//!    is one transaction, so of two holders only one ever sends a batch). A worker whose lease was
//!    taken over stops work on the shard at once.
//! 3. **Finish, once.** When every shard is done, a worker takes the lock again and stores the day's
//!    summary: the planner's part plus every shard's.
//!
//! Each shard spends its share of the run's budgets (`max_sends_per_run`, `max_cost_per_run`) in
//! proportion to its customers, so the shards together stay under them.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use offerloop_domain::Decision;
use offerloop_policy::Policy;
use offerloop_store::{LockHolder, RunPhase, RunRecord, ShardLease, ShardPlan, ShardState, UseCaseLock, WorkerRecord};

use super::{DailyRun, Start, blocking, timed};
use crate::decide::{GroupCounts, decision_id, is_message};
use crate::guardrails::Budget;
use crate::summary::RunSummary;
use crate::{Error, Result};

/// How a worker takes part in a day shared by workers.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// This worker's id: unique across hosts and restarts ([`WorkerOptions::new_id`]).
    pub id: String,
    /// Customers per shard (the planner's value is the day's).
    pub shard_size: u64,
    /// How long a shard's lease lasts unless renewed; it is renewed every third of it. A dead
    /// worker's shard is taken over this long after its last renewal.
    pub lease_ttl: Duration,
    /// How often a waiting worker looks again (for the plan, for shards held by others, for the lock).
    pub poll: Duration,
    /// When the worker started (for the registry).
    pub started_at: Timestamp,
    /// This worker's batches in flight at once. Workers of one process share its cores and its
    /// Braze client: `offerloop run --workers N` gives each `⌈concurrency / N⌉`.
    pub concurrency: usize,
}

impl WorkerOptions {
    /// Customers per shard by default: small enough that a dead worker's shard is cheap to take over,
    /// large enough that a million-customer day has 20 shards.
    pub const DEFAULT_SHARD_SIZE: u64 = 50_000;
    /// Lease time to live by default.
    pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(60);

    /// Options with the defaults, for the worker `id`, started at `started_at`.
    pub fn new(id: impl Into<String>, started_at: Timestamp) -> Self {
        Self {
            id: id.into(),
            shard_size: Self::DEFAULT_SHARD_SIZE,
            lease_ttl: Self::DEFAULT_LEASE_TTL,
            poll: Duration::from_secs(1),
            started_at,
            concurrency: 4,
        }
    }

    /// A fresh worker id: `<host>-<pid>-<n>`, with `n` the worker's number in its process.
    pub fn new_id(n: usize) -> String {
        format!(
            "{}-{}-{n}",
            gethostname::gethostname().to_string_lossy(),
            std::process::id()
        )
    }
}

/// What one worker did for a day.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkerReport {
    /// The worker.
    pub worker: String,
    /// It planned the day (exported, learned and stored the shard plan).
    pub planned: bool,
    /// The shards it completed.
    pub shards: Vec<u32>,
    /// Of those, the shards it took over after another worker's lease expired.
    pub taken_over: Vec<u32>,
    /// Shards whose lease it lost to another worker (it stopped work on them).
    pub lost: Vec<u32>,
    /// It wrote the day's summary.
    pub finished: bool,
    /// The day's summary (whoever wrote it).
    pub summary: RunSummary,
}

/// Where the day stands for a worker.
enum Day {
    /// Done: its summary.
    Done(Box<RunSummary>),
    /// Planned: the run and its shards.
    Shared(Box<(RunRecord, ShardPlan)>),
}

impl DailyRun {
    /// Takes part in the day as one of several workers (see the module docs) and returns what this
    /// worker did, with the day's summary, once every shard is done. Workers may join at any time,
    /// in this process or others.
    ///
    /// # Errors
    /// [`Error::WorkerVersion`] when the day was planned with another version of the use case;
    /// [`Error::SharedDay`] when the day was started by a single-process run; Braze, store, policy
    /// and activation errors (the day can be resumed by any worker).
    #[tracing::instrument(skip_all, fields(use_case = %self.use_case.name, date = %self.date, worker = %worker.id))]
    pub async fn work(&self, worker: &WorkerOptions) -> Result<WorkerReport> {
        crate::audience::check_export_fields(&self.use_case)?;
        let mut report = WorkerReport {
            worker: worker.id.clone(),
            ..WorkerReport::default()
        };
        self.report_worker(worker, "waiting for the day's plan")?;
        let (run, plan) = loop {
            match self.day(worker, &mut report).await? {
                Some(Day::Done(summary)) => {
                    report.summary = *summary;
                    self.report_worker(worker, "done")?;
                    return Ok(report);
                }
                Some(Day::Shared(shared)) => break *shared,
                None => tokio::time::sleep(worker.poll).await,
            }
        };
        let policy = self.day_policy(&plan)?;
        self.work_shards(worker, &run, &plan, policy.as_ref(), &mut report)
            .await?;
        report.summary = loop {
            if let Some(summary) = self.finish_day(worker, &run, &plan, &mut report).await? {
                break summary;
            }
            tokio::time::sleep(worker.poll).await;
        };
        self.report_worker(worker, "done")?;
        Ok(report)
    }

    /// The day's plan: read, or made by this worker when it gets the lock. `None`: another worker
    /// is planning; look again later.
    async fn day(&self, worker: &WorkerOptions, report: &mut WorkerReport) -> Result<Option<Day>> {
        if let Some(day) = self.planned_day()? {
            return Ok(Some(day));
        }
        let Some(_lock) = self.try_lock(worker, "plan")? else {
            return Ok(None);
        };
        // Under the lock: another worker may have planned meanwhile.
        if let Some(day) = self.planned_day()? {
            return Ok(Some(day));
        }
        let day = self.plan_day(worker).await?;
        report.planned = matches!(day, Day::Shared(_));
        Ok(Some(day))
    }

    /// The day as stored, when it is done or planned.
    fn planned_day(&self) -> Result<Option<Day>> {
        let Some(run) = self.store.run(self.name(), self.date)? else {
            return Ok(None);
        };
        if let Some(plan) = self.store.shard_plan(run.id)? {
            let ours = self.use_case.fingerprint();
            if plan.fingerprint != ours {
                return Err(Error::WorkerVersion {
                    use_case: self.name().to_owned(),
                    ours,
                    theirs: plan.fingerprint,
                });
            }
            if run.phase == RunPhase::Done {
                return Ok(Some(Day::Done(Box::new(stored_summary(&run)?))));
            }
            return Ok(Some(Day::Shared(Box::new((run, plan)))));
        }
        if run.phase >= RunPhase::Decided {
            return Err(Error::SharedDay {
                use_case: self.name().to_owned(),
                date: self.date,
                why: "was started by `offerloop run` without workers: finish it the same way".to_owned(),
            });
        }
        Ok(None)
    }

    /// The use case's lock for `step`, or `None` when another runner holds it.
    fn try_lock(&self, worker: &WorkerOptions, step: &str) -> Result<Option<UseCaseLock>> {
        let holder = LockHolder::this_process(format!("offerloop worker {} ({step})", worker.id), self.clock.now());
        match self.store.lock_use_case(self.name(), &holder) {
            Ok(lock) => Ok(Some(lock)),
            Err(offerloop_store::Error::Locked { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Does what a single run does before deciding (export, outcomes, learning), then stores the
    /// shard plan. Resumes whatever an earlier planner left.
    async fn plan_day(&self, worker: &WorkerOptions) -> Result<Day> {
        self.report_worker(worker, "planning the day: export, outcomes, learning")?;
        let (existing, mut summary) = match self.start().await? {
            Start::Done(summary) => return Ok(Day::Done(summary)),
            Start::Resume { existing, summary } => (existing, *summary),
        };
        let started = Instant::now();
        let (run, rows) = self.audience_step(existing).await?;
        summary.run_id = run.id;
        summary.audience = rows.len() as u64;
        timed(&mut summary, "audience", started);
        if run.phase < RunPhase::Outcomes {
            let started = Instant::now();
            self.outcomes_phase(&run, &rows, &mut summary).await?;
            self.store.advance_run(run.id, RunPhase::Outcomes, self.clock.now())?;
            timed(&mut summary, "outcomes", started);
        }
        let customers = rows.len() as u64;
        drop(rows);
        let policy = if run.phase < RunPhase::Learned {
            let started = Instant::now();
            let policy = blocking(|| self.learn_phase(&run, &mut summary))?;
            self.store.advance_run(run.id, RunPhase::Learned, self.clock.now())?;
            timed(&mut summary, "learn", started);
            policy
        } else {
            self.load_policy()?
        };
        summary.model_version = policy.model_version();
        let shard_size = worker.shard_size.max(1);
        let plan = ShardPlan {
            run_id: run.id,
            shards: u32::try_from(customers.div_ceil(shard_size).max(1)).unwrap_or(u32::MAX),
            shard_size,
            customers,
            model_version: self.stored_model_version()?,
            fingerprint: self.use_case.fingerprint(),
            planned_at: self.clock.now(),
            prepared: summary.to_json(),
        };
        let plan = self.store.plan_shards(&plan)?;
        tracing::info!(
            run_id = run.id,
            shards = plan.shards,
            customers,
            model = %plan.model_version,
            "day planned for workers"
        );
        Ok(Day::Shared(Box::new((run, plan))))
    }

    /// The version of the stored model the day decides with (`none` before any model is stored).
    fn stored_model_version(&self) -> Result<String> {
        Ok(self
            .store
            .latest_model(self.name())?
            .map_or_else(|| "none".to_owned(), |m| m.version))
    }

    /// The day's model: the stored one the plan names.
    fn day_policy(&self, plan: &ShardPlan) -> Result<Box<dyn Policy>> {
        let stored = self.stored_model_version()?;
        if stored != plan.model_version {
            return Err(Error::SharedDay {
                use_case: self.name().to_owned(),
                date: self.date,
                why: format!(
                    "was planned with the model `{}`, but the store's latest model is `{stored}` (a later day learned meanwhile?)",
                    plan.model_version
                ),
            });
        }
        self.load_policy()
    }

    /// Leases shards and works them until none is left to lease and every shard is done.
    async fn work_shards(
        &self,
        worker: &WorkerOptions,
        run: &RunRecord,
        plan: &ShardPlan,
        policy: &dyn Policy,
        report: &mut WorkerReport,
    ) -> Result<()> {
        loop {
            let lease = self
                .store
                .lease_shard(run.id, &worker.id, worker.lease_ttl, self.clock.now())?;
            let Some(lease) = lease else {
                let shards = self.store.shards(run.id)?;
                let done = shards.iter().filter(|s| s.state == ShardState::Done).count();
                if done == shards.len() {
                    return Ok(());
                }
                self.report_worker(
                    worker,
                    &format!(
                        "waiting: {done} of {} shards done, the rest held by others",
                        shards.len()
                    ),
                )?;
                tokio::time::sleep(worker.poll).await;
                continue;
            };
            let shard = lease.shard;
            if lease.taken_over {
                tracing::warn!(shard, token = lease.token, "taking over a shard whose lease expired");
            }
            self.report_worker(
                worker,
                &format!("shard {} of {} (run {})", shard + 1, plan.shards, run.id),
            )?;
            match self.run_shard(worker, run, plan, &lease, policy).await {
                Ok(()) => {
                    report.shards.push(shard);
                    if lease.taken_over {
                        report.taken_over.push(shard);
                    }
                }
                Err(Error::Store(offerloop_store::Error::LeaseLost { .. })) => {
                    tracing::warn!(shard, "lost the shard's lease to another worker: stopped work on it");
                    report.lost.push(shard);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Works one leased shard while keeping its lease, and completes it. The lease is renewed by a
    /// task of its own ([`keep_lease`]), so the shard's blocking work (deciding, reading the
    /// audience) never delays a renewal. When the lease is lost the work stops where it is (a batch
    /// being sent stays `sending`: its next holder finds it unknown).
    async fn run_shard(
        &self,
        worker: &WorkerOptions,
        run: &RunRecord,
        plan: &ShardPlan,
        lease: &ShardLease,
        policy: &dyn Policy,
    ) -> Result<()> {
        let (lost_tx, lost_rx) = tokio::sync::oneshot::channel();
        let keeper = tokio::spawn(keep_lease(
            self.store.clone(),
            self.clock.clone(),
            lease.clone(),
            worker.lease_ttl,
            lost_tx,
        ));
        let summary = tokio::select! {
            summary = self.shard_work(worker, run, plan, lease, policy) => summary,
            lost = lost_rx => Err(lost.unwrap_or_else(|_| Error::Task("the lease keeper stopped".to_owned()))),
        };
        keeper.abort();
        let summary = summary?.to_json();
        let lease = lease.clone();
        self.store_call(move |store, now| store.complete_shard(&lease, &summary, now))
            .await?;
        Ok(())
    }

    /// Decides (unless already decided) and activates one shard; returns its part of the summary.
    async fn shard_work(
        &self,
        worker: &WorkerOptions,
        run: &RunRecord,
        plan: &ShardPlan,
        lease: &ShardLease,
        policy: &dyn Policy,
    ) -> Result<RunSummary> {
        let mut summary = RunSummary::default();
        let (offset, limit) = plan.range(lease.shard);
        let rows = blocking(|| self.store.audience_range(run.id, offset, limit))?;
        let ids: Vec<String> = rows
            .iter()
            .map(|r| decision_id(self.name(), self.date, &r.customer_id))
            .collect();
        // A shard leased for the first time (token 1) has no stored decision: it is decided and its
        // decisions kept. A shard taken over is decided again only when some are missing (the same
        // decisions: deciding is a pure function of its inputs), and read back from the store.
        let fresh = lease.token == 1;
        let mut decisions: Vec<Decision> = Vec::new();
        let decided = !fresh && blocking(|| self.store.decisions_by_id(&ids))?.len() == rows.len();
        if !decided {
            let started = Instant::now();
            let budget = Budget::share_of(rows.len() as u64, plan.customers);
            let keep = fresh.then_some(&mut decisions);
            blocking(|| self.decide_phase(run, &rows, policy, budget, &mut summary, keep))?;
            timed(&mut summary, "decide", started);
        }
        if !fresh {
            decisions = blocking(|| self.store.decisions_by_id(&ids))?;
        }
        decisions.sort_by(|a, b| a.id.cmp(&b.id));
        let messages: Vec<&Decision> = decisions.iter().filter(|d| is_message(&self.use_case, d)).collect();
        summary.decisions = decisions.len() as u64;
        summary.messages = messages.len() as u64;
        summary.groups = GroupCounts::of(&decisions);
        summary.cost = messages.iter().map(|d| d.cost).sum();
        let started = Instant::now();
        let requests = blocking(|| self.activation_requests(&rows, &messages))?;
        drop(messages);
        drop(decisions);
        drop(rows);
        self.activate_phase(run, &requests, &mut summary, worker.concurrency)
            .await?;
        timed(&mut summary, "activate", started);
        Ok(summary)
    }

    /// Writes the day's summary once every shard is done, under the lock. `None`: another worker
    /// holds the lock (it is finishing); look again later.
    async fn finish_day(
        &self,
        worker: &WorkerOptions,
        run: &RunRecord,
        plan: &ShardPlan,
        report: &mut WorkerReport,
    ) -> Result<Option<RunSummary>> {
        let Some(_lock) = self.try_lock(worker, "finish")? else {
            return Ok(None);
        };
        let current = self.store.run(self.name(), self.date)?;
        if let Some(done) = current.filter(|r| r.phase == RunPhase::Done) {
            return Ok(Some(stored_summary(&done)?));
        }
        let mut summary: RunSummary = serde_json::from_value(plan.prepared.clone()).map_err(|source| Error::Json {
            what: "shard plan summary",
            source,
        })?;
        for shard in self.store.shards(run.id)? {
            let part = shard.summary.unwrap_or(serde_json::Value::Null);
            let part: RunSummary = serde_json::from_value(part).map_err(|source| Error::Json {
                what: "shard summary",
                source,
            })?;
            summary.absorb_shard(&part);
        }
        summary.batches = self.count_batches(run.id, summary.batches.retries).await?;
        let now = self.clock.now();
        self.store.advance_run(run.id, RunPhase::Decided, now)?;
        self.store.advance_run(run.id, RunPhase::Activated, now)?;
        self.finish(run, &summary)?;
        report.finished = true;
        Ok(Some(summary))
    }

    /// Registers this worker's status (and that it is alive).
    fn report_worker(&self, worker: &WorkerOptions, status: &str) -> Result<()> {
        self.store.report_worker(&WorkerRecord {
            id: worker.id.clone(),
            use_case: self.name().to_owned(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            pid: std::process::id(),
            started_at: worker.started_at,
            last_seen: self.clock.now(),
            status: status.to_owned(),
        })?;
        Ok(())
    }

    /// Refuses a single-process run of a day that workers share.
    pub(super) fn refuse_if_shared(&self, run: Option<&RunRecord>) -> Result<()> {
        let Some(run) = run else { return Ok(()) };
        if let Some(plan) = self.store.shard_plan(run.id)? {
            let done = self
                .store
                .shards(run.id)?
                .iter()
                .filter(|s| s.state == ShardState::Done)
                .count();
            return Err(Error::SharedDay {
                use_case: self.name().to_owned(),
                date: self.date,
                why: format!(
                    "is shared by workers ({done} of {} shards done): run it with `offerloop run --workers N` or `offerloop worker`",
                    plan.shards
                ),
            });
        }
        Ok(())
    }
}

/// Renews `lease` every third of its time to live, for ever (until aborted); sends the error that
/// ended it (the lease was lost, or the store failed) on `lost`.
async fn keep_lease(
    store: std::sync::Arc<dyn offerloop_store::Store>,
    clock: std::sync::Arc<dyn crate::Clock>,
    mut lease: ShardLease,
    ttl: Duration,
    lost: tokio::sync::oneshot::Sender<Error>,
) {
    loop {
        tokio::time::sleep(ttl / 3).await;
        let current = lease.clone();
        let store = store.clone();
        let now = clock.now();
        let renewed = tokio::task::spawn_blocking(move || store.renew_shard(&current, ttl, now)).await;
        match renewed {
            Ok(Ok(renewed)) => lease = renewed,
            Ok(Err(e)) => {
                let _ = lost.send(e.into());
                return;
            }
            Err(e) => {
                let _ = lost.send(Error::Task(format!("renewing a shard's lease: {e}")));
                return;
            }
        }
    }
}

/// The summary stored with a done run.
fn stored_summary(run: &RunRecord) -> Result<RunSummary> {
    serde_json::from_value(run.summary.clone().unwrap_or(serde_json::Value::Null)).map_err(|source| Error::Json {
        what: "run summary",
        source,
    })
}
