//! [`DailyRun`]: one use case, one date, resumable.
//!
//! Phases, each recorded with [`Store::advance_run`] once complete: audience → outcomes (and
//! rewards) → learned → decided → activated → done. Re-running the same date starts at the first
//! unfinished phase: the audience is re-read from the store, the model from its last snapshot, the
//! decisions from the store (a half-stored decision phase is recomputed identically and the store
//! ignores ids it has), and the send ledger says which batches are left: `planned` ones are sent,
//! `sending` ones (a crash mid-request) become `unknown` and are never resent.
//!
//! Nothing is written before the audience export succeeds, so a bad key or a missing permission
//! leaves the store untouched.
//!
//! Sends Braze would skip are never planned: each message's send instant is placed at the decide
//! phase by activation's rule, at least [`RunOptions::schedule_margin`] ahead (see
//! [`crate::decide`]). Messages that still never go out (a rejected batch, a schedule accepted after
//! its time, no event in the feed) are found by [`crate::delivery`]: counted in the summary and not
//! learned from.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use offerloop_activation::{ActivationRequest, Activator, BatchKind, BatchOutcome, PlannedBatch};
use offerloop_braze::BrazeApi;
use offerloop_braze::export::ExportPoll;
use offerloop_domain::{Customer, Decision, Outcome, RewardStatus, UseCase};
use offerloop_policy::drift::DriftAlert;
use offerloop_policy::{DecisionRound, Feedback, Policy, Setup, Snapshot};
use offerloop_store::{
    AudienceRow, BatchMark, BatchRecord, BatchState, BatchStatus, BatchTarget, DeliveryRecord, DeliveryStatus,
    DriftAlertRecord, FeedbackRow, RunPhase, RunRecord, Store,
};

use crate::attribution::{attribute, unsubscribe_rates};
use crate::audience::{AudienceOptions, check_export_fields, export_audience};
use crate::clock::Clock;
use crate::decide::{
    DecideContext, Decider, GroupCounts, MIN_MESSAGES_FOR_UNSUBSCRIBE_GUARDRAIL, NO_MESSAGE_VERSION, is_message,
};
use crate::delivery::{DeliveryCounts, classify_by_events, deadline};
use crate::early::{self, DelaySummary};
use crate::guardrails::{Budget, MessageHistory};
use crate::outcomes::OutcomeSource;
use crate::profile::{AudienceFeatures, profile_delta_outcomes};
use crate::progress::{Phase, PhaseProgress, Progress};
use crate::summary::{BatchCounts, RunSummary};
use crate::{Error, Result};

/// Runs, beyond [`RunOptions::attribute_lookback_days`], read when looking for earlier attribute
/// writes: room for runs of later dates than the one being run (a replayed day). Missing one only
/// writes more attributes, never fewer.
const EXTRA_RUNS_SCANNED: usize = 366;

/// The default of [`RunOptions::early_learning_share`].
pub const DEFAULT_EARLY_LEARNING_SHARE: f64 = 0.5;

mod sharded;

pub use sharded::{WorkerOptions, WorkerReport};

/// Tunables of a run (defaults suit a daily production run).
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Where segment exports are downloaded (one subdirectory per use case and date).
    pub export_dir: PathBuf,
    /// How long and how often to wait for a segment export.
    pub export_poll: ExportPoll,
    /// The directory an ids file is resolved against (the use-case file's directory).
    pub base_dir: PathBuf,
    /// Customers per policy call and per stored chunk of decisions.
    pub chunk: usize,
    /// Attempts of a certainly-rejected, retryable batch (1: no retry).
    pub max_batch_attempts: u32,
    /// Wait before retrying a rejected batch (times the attempt number).
    pub retry_delay: Duration,
    /// Days, beyond the attribution window, that rewards are still recomputed for.
    pub reward_lookback_days: u32,
    /// Days before the run date that a customer's last written profile attributes are looked for
    /// (`activation.write_profile_attributes` writes only the attributes that changed since then); a
    /// customer without such a write in that time gets every attribute again.
    pub attribute_lookback_days: u32,
    /// Where the progress of long phases is reported (default: nowhere; the CLI renders bars).
    pub progress: Arc<dyn Progress>,
    /// Resend the batches of the day that were certainly not sent (`failed`: rejected before
    /// processing, a 401 after a revoked key, 429s past the retry budget), also on a day already
    /// done. Batches whose fate is `unknown` are never resent. Without it, a failed batch is retried
    /// only within the run that failed it, when its rejection was retryable.
    pub resend_failed: bool,
    /// Send batches in flight at once. 1 (the default) sends in plan order, so a run against the
    /// simulator is reproducible; raise it for large audiences (each batch still follows the ledger
    /// protocol on its own).
    pub concurrency: usize,
    /// How far after the decide phase a scheduled send must fall, so that its request reaches Braze
    /// before the customer's local send time (default 15 minutes): a send-time (or day-of-week)
    /// option whose local time is nearer than that moves to its next occurrence, the same local time
    /// the next day (the next week for a weekday). Raise it when activation takes longer (it sends
    /// the earliest schedules first, in plan order).
    pub schedule_margin: Duration,
    /// How long after a message's send time the outcome feed's message events are awaited before a
    /// message without any is found not sent (default 12 hours; only with an [`OutcomeSource`] that
    /// reports message events).
    pub delivery_grace: Duration,
    /// Learning before the attribution window closes. A pending reward already closed by a later
    /// decision of the same customer (which takes every later outcome) is learned as it is; an open
    /// one, by a policy that [learns partial rewards](offerloop_policy::Policy::learns_partial), once
    /// the share of it observed since the send, `F(e)` of the [delay model](offerloop_policy::delay)
    /// estimated from the store, reaches this value, as `offset + sign · S(e) / F(e)` with weight
    /// `F(e)`. Each decision is learned once. `None` learns final rewards only, at the window's end.
    pub early_learning_share: Option<f64>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            export_dir: PathBuf::from(".offerloop/exports"),
            export_poll: ExportPoll::default(),
            base_dir: PathBuf::from("."),
            chunk: 10_000,
            max_batch_attempts: 3,
            retry_delay: Duration::from_secs(1),
            reward_lookback_days: 30,
            attribute_lookback_days: 90,
            progress: crate::progress::silent(),
            resend_failed: false,
            concurrency: 1,
            schedule_margin: Duration::from_secs(15 * 60),
            delivery_grace: Duration::from_secs(12 * 3600),
            early_learning_share: Some(DEFAULT_EARLY_LEARNING_SHARE),
        }
    }
}

/// Builds a [`DailyRun`].
pub struct DailyRunBuilder {
    use_case: Arc<UseCase>,
    date: Date,
    braze: Option<Arc<dyn BrazeApi>>,
    store: Option<Arc<dyn Store>>,
    activator: Option<Arc<dyn Activator>>,
    clock: Option<Arc<dyn Clock>>,
    outcomes: Option<Arc<dyn OutcomeSource>>,
    options: RunOptions,
}

impl DailyRunBuilder {
    /// The Braze API (audience exports).
    #[must_use]
    pub fn braze(mut self, braze: Arc<dyn BrazeApi>) -> Self {
        self.braze = Some(braze);
        self
    }

    /// The store.
    #[must_use]
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The activator (Braze, dry run, ...).
    #[must_use]
    pub fn activator(mut self, activator: Arc<dyn Activator>) -> Self {
        self.activator = Some(activator);
        self
    }

    /// The clock.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// An outcome feed (e.g. [`crate::CurrentsFeed`]); preferred to profile deltas.
    #[must_use]
    pub fn outcome_source(mut self, source: Arc<dyn OutcomeSource>) -> Self {
        self.outcomes = Some(source);
        self
    }

    /// Tunables.
    #[must_use]
    pub fn options(mut self, options: RunOptions) -> Self {
        self.options = options;
        self
    }

    /// The run.
    ///
    /// # Errors
    /// [`Error::Config`] naming a missing part.
    pub fn build(self) -> Result<DailyRun> {
        let missing = |what: &str| Error::Config(format!("no {what} given to the builder"));
        Ok(DailyRun {
            setup: Setup::from_use_case(&self.use_case)?,
            use_case: self.use_case,
            date: self.date,
            braze: self.braze.ok_or_else(|| missing("Braze API"))?,
            store: self.store.ok_or_else(|| missing("store"))?,
            activator: self.activator.ok_or_else(|| missing("activator"))?,
            clock: self.clock.ok_or_else(|| missing("clock"))?,
            outcomes: self.outcomes,
            options: self.options,
        })
    }
}

/// One use case's run on one date.
///
/// Phases, each recorded with [`Store::advance_run`] once complete: audience → outcomes (and
/// rewards) → learned → decided → activated → done. Re-running the same date starts at the first
/// unfinished phase: the audience is re-read from the store, the model from its last snapshot, the
/// decisions from the store (a half-stored decision phase is recomputed identically and the store
/// ignores ids it has), and the send ledger says which batches are left: `planned` ones are sent,
/// `sending` ones (a crash mid-request) become `unknown` and are never resent.
///
/// Nothing is written before the audience export succeeds, so a bad key or a missing permission
/// leaves the store untouched.
pub struct DailyRun {
    use_case: Arc<UseCase>,
    setup: Setup,
    date: Date,
    braze: Arc<dyn BrazeApi>,
    store: Arc<dyn Store>,
    activator: Arc<dyn Activator>,
    clock: Arc<dyn Clock>,
    outcomes: Option<Arc<dyn OutcomeSource>>,
    options: RunOptions,
}

impl std::fmt::Debug for DailyRunBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DailyRunBuilder")
            .field("use_case", &self.use_case.name)
            .field("date", &self.date)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DailyRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DailyRun")
            .field("use_case", &self.use_case.name)
            .field("date", &self.date)
            .field("store", &self.store)
            .field("activator", &self.activator)
            .field("outcomes", &self.outcomes)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn days(n: u32) -> SignedDuration {
    SignedDuration::from_hours(24 * i64::from(n))
}

/// A run option's duration as a signed one (saturating: no option is near 292 billion years).
fn signed(duration: Duration) -> SignedDuration {
    SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX)
}

impl DailyRun {
    /// A builder for the run of `use_case` on `date`.
    pub fn builder(use_case: impl Into<Arc<UseCase>>, date: Date) -> DailyRunBuilder {
        DailyRunBuilder {
            use_case: use_case.into(),
            date,
            braze: None,
            store: None,
            activator: None,
            clock: None,
            outcomes: None,
            options: RunOptions::default(),
        }
    }

    /// Its options.
    pub fn options(&self) -> &RunOptions {
        &self.options
    }

    /// The use case.
    pub fn use_case(&self) -> &UseCase {
        &self.use_case
    }

    fn name(&self) -> &str {
        self.use_case.name.as_str()
    }

    fn progress(&self, phase: Phase, total: Option<u64>) -> Box<dyn PhaseProgress> {
        self.options.progress.start(phase, total)
    }

    /// Runs `call` against the store on a blocking thread, with the clock's `now`: the store is
    /// synchronous (SQLite), and activation's concurrent sends share the runtime's threads, which
    /// must keep polling the requests in flight. A panic inside `call` is resumed here.
    async fn store_call<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn Store, Timestamp) -> offerloop_store::Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = Arc::clone(&self.store);
        let now = self.clock.now();
        match tokio::task::spawn_blocking(move || call(store.as_ref(), now)).await {
            Ok(result) => Ok(result?),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(Error::Task(format!("a store call was cancelled: {e}"))),
        }
    }

    /// [`Self::note_deliveries`] on a blocking thread (see [`Self::store_call`]).
    async fn note_deliveries_off_runtime(
        &self,
        found: Vec<(String, DeliveryStatus)>,
        counts: &mut DeliveryCounts,
    ) -> Result<()> {
        if found.is_empty() {
            return Ok(());
        }
        let store = Arc::clone(&self.store);
        let now = self.clock.now();
        let mut local = DeliveryCounts::default();
        let task = tokio::task::spawn_blocking(move || {
            let found: Vec<(&str, DeliveryStatus)> = found.iter().map(|(id, s)| (id.as_str(), *s)).collect();
            note_deliveries(store.as_ref(), &found, &mut local, now).map(|()| local)
        });
        let noted = match task.await {
            Ok(result) => result?,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => return Err(Error::Task(format!("recording deliveries was cancelled: {e}"))),
        };
        counts.add(&noted);
        Ok(())
    }

    /// Runs (or resumes) the day and returns its summary. A run already done returns its stored
    /// summary without doing anything (unless [`RunOptions::resend_failed`] finds batches to resend).
    ///
    /// # Errors
    /// [`Error::Pii`] before any call; Braze, store, policy and activation errors. A failed run can be
    /// re-run: it resumes at the first unfinished phase.
    #[tracing::instrument(skip(self), fields(use_case = %self.use_case.name, date = %self.date))]
    pub async fn execute(&self) -> Result<RunSummary> {
        check_export_fields(&self.use_case)?;
        let (existing, mut summary) = match self.start().await? {
            Start::Done(summary) => return Ok(*summary),
            Start::Resume { existing, summary } => (existing, *summary),
        };
        self.refuse_if_shared(existing.as_ref())?;
        // 1. Audience: exported before anything is written, unless already stored.
        let started = Instant::now();
        let (run, rows) = self.audience_step(existing).await?;
        summary.run_id = run.id;
        summary.audience = rows.len() as u64;
        timed(&mut summary, "audience", started);

        // 2. Outcomes and rewards.
        if run.phase < RunPhase::Outcomes {
            let started = Instant::now();
            self.outcomes_phase(&run, &rows, &mut summary).await?;
            self.store.advance_run(run.id, RunPhase::Outcomes, self.clock.now())?;
            timed(&mut summary, "outcomes", started);
        }

        // 3. Learning.
        let started = Instant::now();
        let policy = if run.phase < RunPhase::Learned {
            let policy = blocking(|| self.learn_phase(&run, &mut summary))?;
            self.store.advance_run(run.id, RunPhase::Learned, self.clock.now())?;
            timed(&mut summary, "learn", started);
            policy
        } else {
            self.load_policy()?
        };
        summary.model_version = policy.model_version();

        // 4–6. Holdout, guardrails, decisions.
        if run.phase < RunPhase::Decided {
            let started = Instant::now();
            blocking(|| self.decide_phase(&run, &rows, policy.as_ref(), Budget::default(), &mut summary, None))?;
            self.store.advance_run(run.id, RunPhase::Decided, self.clock.now())?;
            timed(&mut summary, "decide", started);
        }
        // Activation always starts from the stored decisions, in id order, so a resumed run plans
        // exactly the batches (ids and bytes) an interrupted one planned.
        let mut decisions = self.store.decisions(run.id)?;
        decisions.sort_by(|a, b| a.id.cmp(&b.id));
        let messages: Vec<&Decision> = decisions.iter().filter(|d| is_message(&self.use_case, d)).collect();
        summary.decisions = decisions.len() as u64;
        summary.messages = messages.len() as u64;
        summary.groups = GroupCounts::of(&decisions);
        summary.cost = messages.iter().map(|d| d.cost).sum();

        // 7. Activation. The audience and the decisions are dropped once the requests are built: a
        // million customers' worth of them need not outlive planning.
        if run.phase < RunPhase::Activated {
            let started = Instant::now();
            let requests = blocking(|| self.activation_requests(&rows, &messages))?;
            drop(messages);
            drop(decisions);
            drop(rows);
            self.activate_phase(&run, &requests, &mut summary, self.options.concurrency)
                .await?;
            self.store.advance_run(run.id, RunPhase::Activated, self.clock.now())?;
            timed(&mut summary, "activate", started);
        }

        // 8. Summary.
        summary.batches = self.count_batches(run.id, summary.batches.retries).await?;
        self.finish(&run, &summary)?;
        Ok(summary)
    }

    /// Where the day starts: done already (its stored summary), or resumed from the stored run, if
    /// any — a done day whose failed batches are to be resent resumes at activation, from its stored
    /// summary (the earlier phases are not redone).
    async fn start(&self) -> Result<Start> {
        let existing = self.store.run(self.name(), self.date)?;
        let fresh = RunSummary {
            use_case: self.name().to_owned(),
            date: self.date.to_string(),
            resumed_from: existing.as_ref().map(|r| r.phase),
            config_fingerprint: self.use_case.fingerprint(),
            ..RunSummary::default()
        };
        let run = match existing {
            Some(run) if run.phase == RunPhase::Done => run,
            existing => {
                return Ok(Start::Resume {
                    existing,
                    summary: Box::new(fresh),
                });
            }
        };
        let stored = run
            .summary
            .as_ref()
            .and_then(|s| serde_json::from_value::<RunSummary>(s.clone()).ok());
        let failed = self.failed_batches(run.id).await?;
        if failed == 0 || !self.options.resend_failed {
            tracing::info!(run_id = run.id, failed, "run already done");
            if let Some(s) = stored {
                return Ok(Start::Done(Box::new(s)));
            }
            return Ok(Start::Resume {
                existing: Some(run),
                summary: Box::new(fresh),
            });
        }
        tracing::info!(run_id = run.id, failed, "resending the batches certainly not sent");
        let summary = match stored {
            Some(s) => RunSummary {
                resumed_from: Some(RunPhase::Done),
                ..s
            },
            None => fresh,
        };
        Ok(Start::Resume {
            existing: Some(RunRecord {
                phase: RunPhase::Decided,
                ..run
            }),
            summary: Box::new(summary),
        })
    }

    /// The run's audience: read back when stored, else exported (before anything is written) and
    /// stored, creating the run.
    async fn audience_step(&self, existing: Option<RunRecord>) -> Result<(RunRecord, Vec<AudienceRow>)> {
        if let Some(run) = existing.as_ref().filter(|r| r.phase >= RunPhase::Audience) {
            let rows = self.store.audience(run.id)?;
            return Ok((run.clone(), rows));
        }
        let options = AudienceOptions {
            download_dir: self.options.export_dir.join(self.name()).join(self.date.to_string()),
            poll: self.options.export_poll.clone(),
            base_dir: self.options.base_dir.clone(),
        };
        let progress = self.progress(Phase::Export, None);
        let exported = export_audience(self.braze.as_ref(), &self.use_case, &options).await;
        drop(progress);
        let rows = exported?;
        let run = match existing {
            Some(run) => run,
            None => self.store.begin_run(self.name(), self.date, self.clock.now())?,
        };
        blocking(|| -> Result<()> {
            for chunk in rows.chunks(self.options.chunk.max(1)) {
                self.store.record_audience(run.id, chunk)?;
            }
            Ok(())
        })?;
        self.store.advance_run(run.id, RunPhase::Audience, self.clock.now())?;
        tracing::info!(customers = rows.len(), "audience stored");
        Ok((run, rows))
    }

    /// The fate of every batch of `run_id`, with the run's `retries`.
    async fn count_batches(&self, run_id: i64, retries: u64) -> Result<BatchCounts> {
        let mut counts = BatchCounts {
            retries,
            ..BatchCounts::default()
        };
        for b in self.store_call(move |store, _| store.batch_states(run_id)).await? {
            match b.state {
                BatchState::Planned => counts.planned += 1,
                BatchState::Sending => counts.sending += 1,
                BatchState::Sent => counts.sent += 1,
                BatchState::Failed => counts.failed += 1,
                BatchState::Unknown => counts.unknown += 1,
            }
        }
        Ok(counts)
    }

    /// Stores the summary (the run is done) and says what is left to do.
    fn finish(&self, run: &RunRecord, summary: &RunSummary) -> Result<()> {
        self.store.finish_run(run.id, &summary.to_json(), self.clock.now())?;
        if summary.batches.failed > 0 {
            tracing::warn!(
                failed = summary.batches.failed,
                "batches were certainly not sent: fix the cause, then resend them (`offerloop run --resend-failed`)"
            );
        }
        tracing::info!(
            decisions = summary.decisions,
            messages = summary.messages,
            sent = summary.batches.sent,
            failed = summary.batches.failed,
            unknown = summary.batches.unknown,
            "run done"
        );
        Ok(())
    }

    /// How many batches of `run_id` were certainly not sent (`failed`).
    async fn failed_batches(&self, run_id: i64) -> Result<usize> {
        self.store_call(move |store, _| {
            Ok(store
                .batch_states(run_id)?
                .iter()
                .filter(|b| b.state == BatchState::Failed)
                .count())
        })
        .await
    }

    /// The latest earlier run that stored an audience.
    fn previous_run(&self) -> Result<Option<RunRecord>> {
        Ok(self
            .store
            .runs(self.name(), 30)?
            .into_iter()
            .find(|r| r.date < self.date && r.phase >= RunPhase::Audience))
    }

    async fn outcomes_phase(&self, run: &RunRecord, rows: &[AudienceRow], summary: &mut RunSummary) -> Result<()> {
        let now = self.clock.now();
        let window = self.use_case.metric.window();
        let from = now
            .checked_sub(window)
            .and_then(|t| t.checked_sub(days(self.options.reward_lookback_days)))
            .unwrap_or(Timestamp::MIN);
        let previous = self.previous_run()?;
        let previous_started = previous.as_ref().map(|r| r.started_at);
        let observed: Vec<Outcome> = match &self.outcomes {
            Some(source) => {
                // Only what happened since the previous run (a day of slack for late files; the store
                // ignores outcomes it has): older outcomes are already stored.
                let since = previous
                    .as_ref()
                    .and_then(|r| r.started_at.checked_sub(days(1)).ok())
                    .map_or(from, |t| t.max(from));
                source.outcomes(&self.use_case, since, now).await?
            }
            None => match previous {
                Some(previous_run) => {
                    let before_at = previous_run.started_at;
                    let previous = self.store.audience(previous_run.id)?;
                    let previous: HashMap<&str, &AudienceRow> =
                        previous.iter().map(|r| (r.customer_id.as_str(), r)).collect();
                    let mut out = Vec::new();
                    for row in rows {
                        let Some(prev) = previous.get(row.customer_id.as_str()) else {
                            continue;
                        };
                        let before = AudienceFeatures::from_json(&prev.features)?;
                        let after = AudienceFeatures::from_json(&row.features)?;
                        let id = offerloop_domain::CustomerId::new(row.customer_id.clone())?;
                        out.extend(profile_delta_outcomes(
                            &id,
                            &before.counters,
                            &after.counters,
                            before_at,
                            run.started_at,
                        ));
                    }
                    out
                }
                None => Vec::new(),
            },
        };
        let decisions = blocking(|| self.attribute_rewards(run, &observed, from, now, summary))?;
        tracing::info!(
            outcomes = observed.len(),
            new = summary.outcomes_new,
            rewards = summary.rewards_final + summary.rewards_pending,
            "outcomes attributed"
        );
        // Messages whose grace period ended since the previous run: judged from the feed's message
        // events, when it has any.
        if let Some(source) = &self.outcomes {
            let grace = signed(self.options.delivery_grace);
            let since = previous_started.unwrap_or(from);
            let due: Vec<&Decision> = decisions
                .iter()
                .filter(|d| is_message(&self.use_case, d))
                .filter(|d| (since..now).contains(&deadline(d, grace)))
                .collect();
            if let Some(start) = due.iter().map(|d| d.decided_at).min()
                && let Some(events) = source.message_events(&self.use_case, start, now).await?
            {
                match classify_by_events(&self.use_case, &due, &events, grace) {
                    None => tracing::warn!(
                        messages = due.len(),
                        "the outcome feed has no message event of this use case's campaigns or canvases: \
                         undelivered messages are only found from the send ledger"
                    ),
                    Some(statuses) => {
                        let found: Vec<(&str, DeliveryStatus)> = due
                            .iter()
                            .zip(statuses)
                            .filter_map(|(d, s)| Some((d.id.as_str(), s?)))
                            .collect();
                        self.note_deliveries(&found, &mut summary.deliveries)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Stores the outcomes observed, attributes every stored outcome of the window to the decisions
    /// of `[from, run start)` and stores the rewards that can still change; returns those decisions.
    fn attribute_rewards(
        &self,
        run: &RunRecord,
        observed: &[Outcome],
        from: Timestamp,
        now: Timestamp,
        summary: &mut RunSummary,
    ) -> Result<Vec<Decision>> {
        summary.outcomes_new = match &self.outcomes {
            Some(source) => source.record(self.store.as_ref(), &self.use_case, observed, now)?,
            None => self.store.record_outcomes(self.name(), observed)?,
        } as u64;
        let decisions = self.store.decisions_between(self.name(), from, run.started_at)?;
        let finals: std::collections::HashSet<String> = self
            .store
            .rewards_between(self.name(), from, run.started_at)?
            .into_iter()
            .filter(|r| r.status == RewardStatus::Final)
            .map(|r| r.decision_id)
            .collect();
        let outcomes = self.store.outcomes_between(self.name(), from, now)?;
        // Attribution needs every decision (a later one takes an outcome from an earlier one), but
        // only rewards that can still change are written.
        let rewards: Vec<_> = attribute(&self.use_case.metric, &decisions, &outcomes, now)
            .into_iter()
            .filter(|r| !finals.contains(&r.decision_id))
            .collect();
        summary.rewards_final = rewards.iter().filter(|r| r.status == RewardStatus::Final).count() as u64;
        summary.rewards_pending = rewards.len() as u64 - summary.rewards_final;
        self.store.upsert_rewards(&rewards)?;
        Ok(decisions)
    }

    /// Records what became of messages that did not simply arrive ([`note_deliveries`]).
    fn note_deliveries(&self, found: &[(&str, DeliveryStatus)], counts: &mut DeliveryCounts) -> Result<()> {
        note_deliveries(self.store.as_ref(), found, counts, self.clock.now())
    }

    /// The policy of the latest stored model, or a new one.
    fn load_policy(&self) -> Result<Box<dyn Policy>> {
        match self.store.latest_model(self.name())? {
            Some(model) => {
                let snapshot: Snapshot = serde_json::from_value(model.snapshot).map_err(|source| Error::Json {
                    what: "model snapshot",
                    source,
                })?;
                Ok(offerloop_policy::restore(self.setup.clone(), snapshot)?)
            }
            None => Ok(offerloop_policy::build_with(
                self.setup.clone(),
                self.use_case.policy.algorithm,
            )?),
        }
    }

    /// Saves the policy's snapshot under `<model version>+run<id>`: the suffix tells a resumed learn
    /// phase that this run's update is already in the stored model (a crash between saving the model
    /// and marking the feedback learned must not learn the same feedback twice).
    fn save_policy(&self, policy: &dyn Policy, run: &RunRecord) -> Result<()> {
        let snapshot = serde_json::to_value(policy.snapshot()).map_err(|source| Error::Json {
            what: "model snapshot",
            source,
        })?;
        let version = format!("{}{}", policy.model_version(), run_suffix(run));
        self.store
            .save_model(self.name(), &version, &snapshot, self.clock.now())?;
        Ok(())
    }

    /// What the learn phase learns: the final rewards not learned yet, and the pending ones that may be
    /// learned early ([`crate::early`]), each with its reward and observed share. A pure function of
    /// the store and the run's start, so a resumed learn phase selects the same decisions.
    fn feedback_to_learn(
        &self,
        run: &RunRecord,
        policy: &dyn Policy,
        summary: &mut RunSummary,
    ) -> Result<Vec<(FeedbackRow, f64)>> {
        let mut rows: Vec<(FeedbackRow, f64)> = self
            .store
            .matured_feedback(self.name())?
            .into_iter()
            .map(|row| (row, 1.0))
            .collect();
        let Some(needed) = self.options.early_learning_share else {
            return Ok(rows);
        };
        let pending = self.store.pending_feedback(self.name())?;
        if pending.is_empty() {
            return Ok(rows);
        }
        let as_of = run.started_at;
        let from = as_of
            .checked_sub(self.use_case.metric.window())
            .and_then(|t| t.checked_sub(days(self.options.reward_lookback_days)))
            .unwrap_or(Timestamp::MIN);
        let decisions = self.store.decisions_between(self.name(), from, as_of)?;
        let outcomes = self.store.outcomes_between(self.name(), from, as_of)?;
        let wanted: HashSet<&str> = pending.iter().map(|r| r.decision.id.as_str()).collect();
        let grace = signed(self.options.delivery_grace);
        let (model, assessed) = early::assess(&self.use_case, &decisions, &outcomes, as_of, grace, &wanted);
        summary.delay = Some(DelaySummary::of(&model));
        let partial = policy.learns_partial();
        for row in pending {
            let learnable = assessed
                .get(&row.decision.id)
                .and_then(|a| a.learnable(&model, needed, partial));
            if let Some((reward, observed)) = learnable {
                if row.decision.policy_version != NO_MESSAGE_VERSION {
                    summary.rewards_learned_early += 1;
                }
                rows.push((FeedbackRow { reward, ..row }, observed));
            }
        }
        Ok(rows)
    }

    fn learn_phase(&self, run: &RunRecord, summary: &mut RunSummary) -> Result<Box<dyn Policy>> {
        let latest = self.store.latest_model(self.name())?;
        let had_model = latest.is_some();
        let mut policy = self.load_policy()?;
        let rows = self.feedback_to_learn(run, policy.as_ref(), summary)?;
        let finals = self.store.unmonitored_feedback(self.name())?;
        if latest.is_some_and(|m| m.version.ends_with(&run_suffix(run))) {
            // This run already learned and saved the model; only the marking was lost.
            self.mark_learned_rows(&rows, &finals)?;
            summary.rewards_learned_early = 0;
            return Ok(policy);
        }
        let feedback = policy_feedback(
            &self.setup,
            rows.iter().map(|(row, observed)| (row, *observed)),
            summary,
        )?;
        let mut alerts = Vec::new();
        if !feedback.is_empty() {
            let report = policy.update(&feedback)?;
            summary.rewards_learned = report.learned as u64;
            alerts.extend(report.alerts);
        }
        // The final rewards of decisions learned early are judged by the drift detectors, after the
        // update (a challenger started by an alert in them is judged from the next batch on).
        let judged = policy_feedback(&self.setup, finals.iter().map(|row| (row, 1.0)), summary)?;
        if !judged.is_empty() {
            alerts.extend(policy.monitor(&judged)?);
        }
        self.record_alerts(run, &alerts, summary)?;
        if !feedback.is_empty() || !judged.is_empty() || !had_model {
            self.save_policy(policy.as_ref(), run)?;
        }
        self.mark_learned_rows(&rows, &finals)?;
        tracing::info!(
            learned = feedback.len(),
            early = summary.rewards_learned_early,
            judged = judged.len(),
            model = %policy.model_version(),
            "policy updated"
        );
        Ok(policy)
    }

    /// Marks what the learn phase consumed: rewards learned final, rewards learned early (their final
    /// reward is judged by the drift detectors later), and final rewards judged.
    fn mark_learned_rows(&self, rows: &[(FeedbackRow, f64)], finals: &[FeedbackRow]) -> Result<()> {
        let (early, done): (Vec<_>, Vec<_>) = rows
            .iter()
            .partition(|(row, observed)| *observed < 1.0 && row.decision.policy_version != NO_MESSAGE_VERSION);
        let ids = |rows: Vec<&(FeedbackRow, f64)>| -> Vec<String> {
            rows.iter().map(|(r, _)| r.decision.id.clone()).collect()
        };
        let (early, done) = (ids(early), ids(done));
        if !done.is_empty() {
            self.store.mark_learned(&done)?;
        }
        if !early.is_empty() {
            self.store.mark_learned_early(&early)?;
        }
        let judged: Vec<String> = finals.iter().map(|r| r.decision.id.clone()).collect();
        if !judged.is_empty() {
            self.store.mark_monitored(&judged)?;
        }
        Ok(())
    }

    /// Records the learn phase's drift alerts in the store and the run summary.
    fn record_alerts(&self, run: &RunRecord, alerts: &[DriftAlert], summary: &mut RunSummary) -> Result<()> {
        summary.drift_alerts = alerts
            .iter()
            .map(|a| {
                format!(
                    "{}={} at {} (magnitude {:.3})",
                    a.dimension.as_deref().unwrap_or("*"),
                    a.option.as_deref().unwrap_or("*"),
                    a.detected_at,
                    a.magnitude
                )
            })
            .collect();
        let records: Vec<DriftAlertRecord> = alerts
            .iter()
            .map(|a| DriftAlertRecord {
                dimension: a.dimension.clone(),
                option: a.option.clone(),
                detected_at: a.detected_at,
                magnitude: a.magnitude,
                run_id: Some(run.id),
            })
            .collect();
        if !records.is_empty() {
            tracing::warn!(alerts = records.len(), "drift detected");
            self.store.record_drift_alerts(self.name(), &records)?;
        }
        Ok(())
    }

    /// Whether the unsubscribe guardrail pauses treatment at `at`: over the metric's window before it,
    /// treatment's unsubscribe rate exceeds control's by more than `max_unsubscribe_rate_increase`
    /// (with at least [`MIN_MESSAGES_FOR_UNSUBSCRIBE_GUARDRAIL`] messages in each group).
    fn treatment_paused(&self, at: Timestamp) -> Result<bool> {
        let Some(max) = self.use_case.guardrails.max_unsubscribe_rate_increase else {
            return Ok(false);
        };
        let window = self.use_case.metric.window();
        let from = at.checked_sub(window).unwrap_or(Timestamp::MIN);
        let decisions = self.store.decisions_between(self.name(), from, at)?;
        let messages: Vec<&Decision> = decisions.iter().filter(|d| is_message(&self.use_case, d)).collect();
        let outcomes = self.store.outcomes_between(self.name(), from, at)?;
        let (t, nt, c, nc) = unsubscribe_rates(window, &messages, &outcomes);
        let paused =
            nt >= MIN_MESSAGES_FOR_UNSUBSCRIBE_GUARDRAIL && nc >= MIN_MESSAGES_FOR_UNSUBSCRIBE_GUARDRAIL && t - c > max;
        if paused {
            tracing::warn!(
                treatment = t,
                control = c,
                max,
                "treatment paused: its unsubscribe rate exceeds control's"
            );
        }
        Ok(paused)
    }

    fn decide_phase(
        &self,
        run: &RunRecord,
        rows: &[AudienceRow],
        policy: &dyn Policy,
        budget: Budget,
        summary: &mut RunSummary,
        mut keep: Option<&mut Vec<Decision>>,
    ) -> Result<()> {
        let at = run.started_at;
        let week_ago = at.checked_sub(days(7)).unwrap_or(Timestamp::MIN);
        let earlier = self.store.decisions_between(self.name(), week_ago, at)?;
        let history = MessageHistory::new(
            earlier
                .iter()
                .filter(|d| is_message(&self.use_case, d))
                .map(|d| (d.customer_id.as_str(), d.decided_at)),
        );
        let round = DecisionRound {
            decided_at: at,
            round: u64::try_from(self.date.since(Date::constant(1970, 1, 1)).map_or(0, |s| s.get_days())).unwrap_or(0),
        };
        let paused = self.treatment_paused(at)?;
        summary.treatment_paused = paused;
        let not_before = self
            .clock
            .now()
            .max(at)
            .saturating_add(signed(self.options.schedule_margin))
            .unwrap_or(Timestamp::MAX);
        let bar = self.progress(Phase::Decide, Some(rows.len() as u64));
        let mut decider = Decider::with_budget(
            DecideContext {
                use_case: &self.use_case,
                setup: &self.setup,
                policy,
                round,
                date: self.date,
                history: &history,
                chunk: self.options.chunk,
                paused,
                not_before,
            },
            budget,
        );
        // A slice at a time: the customers' feature values are read from the stored JSON, decided and
        // stored, and dropped before the next slice.
        let mut decided = 0;
        for slice in rows.chunks(self.options.chunk.max(1)) {
            let mut customers = Vec::with_capacity(slice.len());
            for row in slice {
                customers.push(Customer {
                    id: offerloop_domain::CustomerId::new(row.customer_id.clone())?,
                    features: AudienceFeatures::from_json(&row.features)?.values,
                    time_zone: row.time_zone.clone(),
                });
            }
            let decisions = decider.decide(&customers, bar.as_ref())?;
            self.store.record_decisions(run.id, &decisions)?;
            decided += decisions.len();
            if let Some(kept) = keep.as_deref_mut() {
                kept.extend(decisions);
            }
            crate::pause::point("decide-slice");
        }
        drop(bar);
        summary.guardrails = decider.guardrails();
        tracing::info!(
            decisions = decided,
            blocked = summary.guardrails.total(),
            "decisions stored"
        );
        Ok(())
    }

    /// What to activate: one request per message decision, with the customer's time zone and, with
    /// `activation.write_profile_attributes`, the options whose attributes are already on the
    /// profile ([`Self::fill_previous`]).
    fn activation_requests(&self, rows: &[AudienceRow], messages: &[&Decision]) -> Result<Vec<ActivationRequest>> {
        let zones: HashMap<&str, Option<&String>> = rows
            .iter()
            .map(|r| (r.customer_id.as_str(), r.time_zone.as_ref()))
            .collect();
        let mut requests = Vec::with_capacity(messages.len());
        for d in messages {
            requests.push(ActivationRequest {
                decision_id: d.id.clone(),
                customer_id: d.customer_id.clone(),
                options: self.use_case.actions.decode(d.action)?.0,
                time_zone: zones.get(d.customer_id.as_str()).copied().flatten().cloned(),
                previous: None,
                // The instant the decision placed the send at: activation schedules exactly it.
                not_before: d.planned_send_at,
            });
        }
        if self.use_case.activation.write_profile_attributes {
            self.fill_previous(&mut requests)?;
        }
        Ok(requests)
    }

    /// Sets each request's `previous` to the options the customer's profile attributes certainly
    /// hold, so that only changed attributes are written. When that cannot be told, `previous` stays
    /// `None` and every attribute is written: a needless write costs a few bytes, a wrongly skipped
    /// one leaves a stale attribute.
    ///
    /// - Earlier runs are read newest first, back to [`RunOptions::attribute_lookback_days`] before
    ///   the run date, one at a time (a run's decisions, a `HashMap` lookup each), until every
    ///   customer is settled. The first message decision met for a customer settles it, by the fate
    ///   of its `users.track` batch: `sent` → its options; `failed` (certainly not applied) → the
    ///   customer's decision before it decides; `unknown` (maybe applied) → `None`, since the profile
    ///   may hold either value. A message decision in no `users.track` batch had nothing to write
    ///   (its options were the ones already written): its options.
    /// - Only finished runs with today's configuration (the same [`UseCase::fingerprint`] in their
    ///   summary) are trusted: the walk stops at the first other one, since a configuration change
    ///   may have renamed attributes, options or their order, or turned the attributes off. A dry run
    ///   wrote nothing and is passed over.
    /// - When every batch of a run was sent, its batches (and their request bodies) are not read.
    fn fill_previous(&self, requests: &mut [ActivationRequest]) -> Result<()> {
        if requests.is_empty() {
            return Ok(());
        }
        let lookback = self.options.attribute_lookback_days;
        let earliest = self
            .date
            .checked_sub(jiff::Span::new().days(i64::from(lookback)))
            .unwrap_or(Date::MIN);
        let fingerprint = self.use_case.fingerprint();
        let mut found: Vec<Option<Vec<u32>>> = vec![None; requests.len()];
        let mut pending: HashMap<&str, usize> = requests
            .iter()
            .enumerate()
            .map(|(i, r)| (r.customer_id.as_str(), i))
            .collect();
        let limit = usize::try_from(lookback)
            .unwrap_or(usize::MAX)
            .saturating_add(EXTRA_RUNS_SCANNED);
        let runs = self.store.runs(self.name(), limit)?;
        let mut trusted_runs = 0;
        for run in runs.iter().filter(|r| r.date < self.date && r.date >= earliest) {
            if pending.is_empty() {
                break;
            }
            let same_config = run.phase == RunPhase::Done
                && run
                    .summary
                    .as_ref()
                    .and_then(|s| s.get("config_fingerprint"))
                    .and_then(serde_json::Value::as_str)
                    == Some(fingerprint.as_str());
            if !same_config {
                tracing::info!(
                    run_id = run.id,
                    date = %run.date,
                    "earlier runs are not trusted for profile attributes (unfinished or configured differently)"
                );
                break;
            }
            trusted_runs += 1;
            let states = self.store.batch_states(run.id)?;
            if states.iter().any(|b| b.dry_run) {
                continue;
            }
            // The fate of each decision's `users.track` batch; empty when every batch was sent.
            let mut fates: HashMap<String, BatchState> = HashMap::new();
            if states.iter().any(|b| b.state != BatchState::Sent) {
                for batch in self.store.batches(run.id)? {
                    if batch.target == BatchTarget::UsersTrack {
                        fates.extend(batch.decision_ids.into_iter().map(|id| (id, batch.state)));
                    }
                }
            }
            for d in self.store.decisions(run.id)? {
                let Some(&i) = pending.get(d.customer_id.as_str()) else {
                    continue;
                };
                if !is_message(&self.use_case, &d) {
                    continue;
                }
                match fates.get(&d.id) {
                    None | Some(BatchState::Sent) => found[i] = Some(self.use_case.actions.decode(d.action)?.0),
                    Some(BatchState::Failed) => continue,
                    Some(BatchState::Unknown | BatchState::Sending | BatchState::Planned) => {}
                }
                pending.remove(d.customer_id.as_str());
            }
        }
        drop(pending);
        let deltas = found.iter().filter(|f| f.is_some()).count();
        for (request, previous) in requests.iter_mut().zip(found) {
            request.previous = previous;
        }
        tracing::info!(
            customers = requests.len(),
            deltas,
            runs = trusted_runs,
            "earlier profile attributes looked up"
        );
        Ok(())
    }

    /// Plans and sends the batches of `requests`, `concurrency` at a time.
    async fn activate_phase(
        &self,
        run: &RunRecord,
        requests: &[ActivationRequest],
        summary: &mut RunSummary,
        concurrency: usize,
    ) -> Result<()> {
        let planned = self.activator.plan(&self.use_case, self.date, requests)?;
        let send_at: HashMap<&str, Timestamp> = requests
            .iter()
            .filter_map(|r| Some((r.decision_id.as_str(), r.not_before?)))
            .collect();
        let existing: HashMap<String, BatchStatus> = self
            .store
            .batch_states(run.id)?
            .into_iter()
            .map(|b| (b.id.clone(), b))
            .collect();
        // Every new batch is recorded as planned before anything is sent, a thousand to a transaction.
        let now = self.clock.now();
        for chunk in planned
            .iter()
            .filter(|b| !existing.contains_key(&b.id))
            .collect::<Vec<_>>()
            .chunks(1_000)
        {
            let records: Vec<BatchRecord> = chunk
                .iter()
                .map(|batch| BatchRecord {
                    id: batch.id.clone(),
                    run_id: run.id,
                    target: target_of(&batch.kind),
                    decision_ids: batch.decision_ids.clone(),
                    request: batch.request.clone(),
                    state: BatchState::Planned,
                    detail: None,
                    retryable: false,
                    dry_run: false,
                    updated_at: now,
                })
                .collect();
            self.store.plan_batches(&records)?;
        }
        let bar = self.progress(Phase::Send, Some(planned.len() as u64));
        let mut to_send = Vec::new();
        let mut resent = Vec::new();
        for batch in &planned {
            let (state, retryable) = match existing.get(&batch.id) {
                Some(r) => (r.state, r.retryable),
                None => (BatchState::Planned, false),
            };
            match state {
                BatchState::Planned => to_send.push(batch),
                BatchState::Failed if retryable || self.options.resend_failed => {
                    resent.extend(batch.decision_ids.iter().cloned());
                    to_send.push(batch);
                }
                BatchState::Sending => {
                    tracing::warn!(batch = %batch.id, "batch was being sent when the run stopped: its fate is unknown, it is not resent");
                    let mark =
                        BatchMark::unknown("the run stopped while this batch was being sent; it may have been applied");
                    let id = batch.id.clone();
                    self.store_call(move |store, now| store.mark_batch(&id, &mark, now))
                        .await?;
                }
                BatchState::Sent | BatchState::Failed | BatchState::Unknown => bar.advance(1),
            }
        }
        if !resent.is_empty() {
            // Their rejection was recorded when they failed; a resend gives them a new fate.
            let retracted = self
                .store_call(move |store, _| store.retract_rejections(&resent))
                .await?;
            summary.deliveries.rejected = summary.deliveries.rejected.saturating_sub(retracted as u64);
        }
        // Sends in plan order, `concurrency` at a time. The first error (a store failure) stops the
        // phase: batches still in flight are dropped in their `sending` state, so a re-run reports
        // them unknown and never sends them twice.
        use futures::StreamExt as _;
        // The futures are built up front (they do nothing until polled) so the stream's item type
        // names one lifetime, as `tokio::spawn`'s `Send` bound needs.
        let pending: Vec<_> = to_send.into_iter().map(|batch| self.send(batch, &send_at)).collect();
        let mut sends = futures::stream::iter(pending).buffered(concurrency.max(1));
        while let Some(result) = sends.next().await {
            bar.advance(1);
            let (retries, found) = result?;
            summary.batches.retries += retries;
            self.note_deliveries_off_runtime(found, &mut summary.deliveries).await?;
        }
        drop(bar);
        Ok(())
    }

    /// Sends one batch following the ledger protocol; retries a certainly-rejected, retryable batch a
    /// bounded number of times. Returns the retries and the batch's messages that will not go out: all
    /// of a message batch that ends rejected, and those of a schedule accepted after their send
    /// instant (`send_at`, Braze skips them).
    async fn send(
        &self,
        batch: &PlannedBatch,
        send_at: &HashMap<&str, Timestamp>,
    ) -> Result<(u64, Vec<(String, DeliveryStatus)>)> {
        let message = batch.kind != BatchKind::TrackAttributes;
        let all = |status| -> Vec<(String, DeliveryStatus)> {
            if message {
                batch.decision_ids.iter().map(|id| (id.clone(), status)).collect()
            } else {
                Vec::new()
            }
        };
        let mut attempt = 1;
        let mut retries = 0;
        loop {
            let id = batch.id.clone();
            self.store_call(move |store, now| store.mark_batch(&id, &BatchMark::sending(), now))
                .await?;
            crate::pause::point("batch-sending");
            let outcome = self.activator.execute(batch).await;
            let id = batch.id.clone();
            match outcome {
                BatchOutcome::Sent { id: dispatch, notice } => {
                    let detail = match (dispatch, notice) {
                        (Some(id), Some(n)) => Some(format!("{id} ({n})")),
                        (Some(id), None) => Some(id),
                        (None, Some(n)) => Some(n),
                        (None, None) => None,
                    };
                    let now = self
                        .store_call(move |store, now| {
                            store.mark_batch(&id, &BatchMark::sent(detail), now).map(|()| now)
                        })
                        .await?;
                    crate::pause::point("batch-sent");
                    let late = batch
                        .decision_ids
                        .iter()
                        .filter(|id| message && send_at.get(id.as_str()).is_some_and(|at| *at < now))
                        .map(|id| (id.clone(), DeliveryStatus::Late))
                        .collect();
                    return Ok((retries, late));
                }
                BatchOutcome::Written { to } => {
                    let mark = BatchMark::dry_run(Some(format!("dry run: written to {}", to.display())));
                    self.store_call(move |store, now| store.mark_batch(&id, &mark, now))
                        .await?;
                    return Ok((retries, Vec::new()));
                }
                BatchOutcome::Rejected { error, retryable } => {
                    let mark = BatchMark::failed(error.clone(), retryable);
                    self.store_call(move |store, now| store.mark_batch(&id, &mark, now))
                        .await?;
                    if !retryable || attempt >= self.options.max_batch_attempts {
                        tracing::warn!(batch = %batch.id, %error, attempt, "batch rejected");
                        return Ok((retries, all(DeliveryStatus::Rejected)));
                    }
                    retries += 1;
                    tokio::time::sleep(self.options.retry_delay * attempt).await;
                    attempt += 1;
                }
                BatchOutcome::Unknown { error } => {
                    tracing::warn!(batch = %batch.id, %error, "batch fate unknown: not resent");
                    let mark = BatchMark::unknown(error);
                    self.store_call(move |store, now| store.mark_batch(&id, &mark, now))
                        .await?;
                    return Ok((retries, Vec::new()));
                }
            }
        }
    }
}

/// Records what became of messages that did not simply arrive, counts the new findings, and
/// consumes the decisions whose message never went out without learning from them
/// ([`crate::delivery`]).
fn note_deliveries(
    store: &dyn Store,
    found: &[(&str, DeliveryStatus)],
    counts: &mut DeliveryCounts,
    now: Timestamp,
) -> Result<()> {
    if found.is_empty() {
        return Ok(());
    }
    for status in [
        DeliveryStatus::Rejected,
        DeliveryStatus::Late,
        DeliveryStatus::NotSent,
        DeliveryStatus::Bounced,
    ] {
        let ids: Vec<String> = found
            .iter()
            .filter(|(_, s)| *s == status)
            .map(|(id, _)| (*id).to_owned())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let records: Vec<DeliveryRecord> = ids
            .iter()
            .map(|id| DeliveryRecord {
                decision_id: id.clone(),
                status,
                noted_at: now,
            })
            .collect();
        let new = store.record_deliveries(&records)?;
        for _ in 0..new {
            counts.count(status);
        }
        if status.never_sent() {
            store.mark_learned(&ids)?;
        }
        tracing::info!(
            status = status.as_str(),
            messages = ids.len(),
            new,
            "messages not delivered as decided"
        );
    }
    Ok(())
}

/// Runs blocking work — the store's SQLite calls, the policy's CPU-bound learning and deciding —
/// without stalling the async runtime's other tasks: on a multi-thread runtime the worker first hands
/// its other tasks to the rest (`block_in_place`); a current-thread runtime has no other worker, so
/// the work runs in place. (Activation's store calls, interleaved with requests in flight, go to
/// `spawn_blocking` instead: [`DailyRun::store_call`].)
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// Where [`DailyRun::execute`] starts.
enum Start {
    /// The day is done: its stored summary.
    Done(Box<RunSummary>),
    /// Run or resume from the stored run (`None`: a new day).
    Resume {
        existing: Option<RunRecord>,
        summary: Box<RunSummary>,
    },
}

/// Records how long the phase begun at `started` took.
fn timed(summary: &mut RunSummary, phase: &str, started: Instant) {
    summary.durations.insert(phase.into(), started.elapsed().as_secs_f64());
}

/// The policy's feedback for stored rows, each with its observed share; the decisions that sent
/// nothing (the control's "no message") are not the policy's and are skipped, and so is a reward
/// outside its metric's plausible range ([`offerloop_policy::reward::check`]): counted in
/// [`RunSummary::rewards_refused`] and logged, so that one bad outcome in the feed never stops the
/// day's learning (the policy would refuse the whole batch).
fn policy_feedback<'a>(
    setup: &Setup,
    rows: impl Iterator<Item = (&'a FeedbackRow, f64)>,
    summary: &mut RunSummary,
) -> Result<Vec<Feedback>> {
    let mut feedback = Vec::new();
    for (row, observed) in rows {
        if row.decision.policy_version == NO_MESSAGE_VERSION {
            continue;
        }
        if let Err(why) = offerloop_policy::reward::check(setup, row.reward, observed) {
            if summary.rewards_refused == 0 {
                tracing::warn!(decision = %row.decision.id, reward = row.reward, %why, "reward not learned: outside its metric's range");
            }
            summary.rewards_refused += 1;
            continue;
        }
        let features = AudienceFeatures::from_json(&row.features)?;
        feedback.push(Feedback {
            features: features.values,
            action: row.decision.action,
            propensity: row.decision.propensity.get(),
            reward: row.reward,
            decided_at: row.decision.decided_at,
            observed,
        });
    }
    Ok(feedback)
}

/// The suffix of the model versions a run saves.
fn run_suffix(run: &RunRecord) -> String {
    format!("+run{}", run.id)
}

/// The ledger's target of a batch kind.
pub fn target_of(kind: &BatchKind) -> BatchTarget {
    match kind {
        BatchKind::CampaignSend { campaign_id } => BatchTarget::Campaign(campaign_id.clone()),
        BatchKind::CampaignSchedule { campaign_id } => BatchTarget::CampaignSchedule(campaign_id.clone()),
        BatchKind::CanvasSend { canvas_id } => BatchTarget::Canvas(canvas_id.clone()),
        BatchKind::CanvasSchedule { canvas_id } => BatchTarget::CanvasSchedule(canvas_id.clone()),
        BatchKind::TrackAttributes => BatchTarget::UsersTrack,
    }
}
