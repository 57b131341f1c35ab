//! `offerloop run`: one daily run of a use case against Braze (or a dry run writing JSONL), and the
//! wall clock the binary gives the engine.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use jiff::Timestamp;
use jiff::civil::Date;
use offerloop_activation::{Activator, BrazeActivator, DryRunActivator};
use offerloop_braze::{ApiKey, BrazeApi, BrazeClient, BrazeConfig};
use offerloop_domain::UseCase;
use offerloop_engine::{Clock, CurrentsFeed, DailyRun, RunOptions, RunSummary, WorkerOptions, WorkerReport};
use offerloop_store::{LockHolder, SqliteStore, Store, StoreLocation};

use crate::validate::{self, Verdict};

/// The default store file, relative to the working directory.
pub const DEFAULT_STORE: &str = ".offerloop/state.db";

/// The wall clock: only the binary reads it (the engine takes a [`Clock`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // The composition root is where the wall clock is read.
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock running at wall-clock speed from another clock's reading: the simulator's (`GET
/// /_sim/clock`), for processes run against `offerloop sim serve` (`--sim-clock`, hidden: tests and
/// demos only).
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock {
    offset: jiff::SignedDuration,
}

impl OffsetClock {
    /// A clock that reads `now` at this instant of the wall clock.
    pub fn starting_at(now: Timestamp) -> Self {
        Self {
            offset: now.duration_since(SystemClock.now()),
        }
    }

    /// The clock of the simulator at `base_url` (its `GET /_sim/clock`), running on from there.
    ///
    /// # Errors
    /// The simulator cannot be reached or answers something else.
    pub async fn of_simulator(base_url: &str) -> anyhow::Result<Self> {
        let url = format!("{}/_sim/clock", base_url.trim_end_matches('/'));
        let _ = rustls::crypto::ring::default_provider().install_default();
        let body: serde_json::Value = reqwest::get(&url)
            .await
            .with_context(|| format!("reading the simulator's clock at {url}"))?
            .json()
            .await
            .with_context(|| format!("reading the simulator's clock at {url}"))?;
        let now: Timestamp = body
            .get("now")
            .and_then(serde_json::Value::as_str)
            .with_context(|| format!("{url} answered without `now`: {body}"))?
            .parse()
            .with_context(|| format!("{url}: `now` is not a timestamp"))?;
        Ok(Self::starting_at(now))
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        SystemClock.now().saturating_add(self.offset).unwrap_or(Timestamp::MAX)
    }
}

/// What `offerloop run` was asked for.
#[derive(Debug, Clone)]
pub struct RunArgs {
    /// The use-case file.
    pub use_case: PathBuf,
    /// The run's date (default: today in the use case's time zone).
    pub date: Option<Date>,
    /// Run the day on a copy of the store and write the batches to a file instead of sending them
    /// ([`dry_run_dir`]); the store is left untouched.
    pub dry_run: bool,
    /// Resend the day's batches that were certainly not sent (`failed`), also on a day already done.
    pub resend_failed: bool,
    /// The store: an SQLite file or a `postgres://` URL (default: the use case's `[store] url`, else
    /// [`DEFAULT_STORE`]; see [`crate::store_cmd::location`]).
    pub store: Option<String>,
    /// Share the day among this many workers in this process (0: one single-process run). Other
    /// processes may join with `offerloop worker` ([`offerloop_engine::DailyRun::work`]).
    pub workers: usize,
    /// Customers per shard of a day shared by workers.
    pub shard_size: u64,
    /// How long a worker's shard lease lasts unless renewed.
    pub lease_ttl: std::time::Duration,
    /// Send batches in flight at once.
    pub concurrency: usize,
    /// How long to wait for the segment export to be ready (`--export-timeout`; default
    /// [`crate::export_wait::default_export_timeout`]).
    pub export_timeout: std::time::Duration,
    /// Told about every check while the export is awaited (the binary prints a line a minute).
    pub export_progress: Option<offerloop_braze::export::ExportProgress>,
    /// Where the progress of long phases goes (the binary draws bars on a terminal).
    pub progress: Arc<dyn offerloop_engine::Progress>,
}

/// Reads and validates a use-case file, every problem rendered.
///
/// # Errors
/// The file's problems, or why it cannot be read.
pub fn load_use_case(path: &Path) -> anyhow::Result<UseCase> {
    let name = path.display().to_string();
    match validate::check_file(path) {
        (Verdict::Valid(use_case), _) => Ok(*use_case),
        (Verdict::Invalid(diagnostics), source) => bail!("{}", validate::render_problems(&name, &source, &diagnostics)),
        (Verdict::Unreadable(message), _) => bail!("{message}"),
    }
}

/// The date of `now` in the use case's time zone.
///
/// # Errors
/// An unknown time zone.
pub fn today(use_case: &UseCase, now: Timestamp) -> anyhow::Result<Date> {
    let tz =
        jiff::tz::TimeZone::get(&use_case.time_zone).with_context(|| format!("time zone `{}`", use_case.time_zone))?;
    Ok(tz.to_datetime(now).date())
}

/// Opens (creating its directory) the SQLite store at `path`.
///
/// # Errors
/// The directory or the database cannot be created.
pub fn open_store(path: &Path) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(Arc::new(
        SqliteStore::open(path).with_context(|| format!("opening the store {}", path.display()))?,
    ))
}

/// The Braze client of a use case, its key read from the environment variable it names, behind the
/// [`BrazeApi`] trait (commands take any implementation: the simulator's, a mock).
///
/// # Errors
/// A missing key variable or an invalid endpoint.
pub fn braze_client(use_case: &UseCase) -> anyhow::Result<Arc<dyn BrazeApi>> {
    braze_client_sharing(use_case, 1)
}

/// [`braze_client`] with `1 / processes` of every rate-limit budget: one of `processes` worker
/// processes sharing a day ([`offerloop_braze::BrazeConfigBuilder::share_rate_limits`]).
///
/// # Errors
/// As [`braze_client`].
pub fn braze_client_sharing(use_case: &UseCase, processes: u32) -> anyhow::Result<Arc<dyn BrazeApi>> {
    let key = ApiKey::from_env(&use_case.braze.api_key_env)?;
    let config = BrazeConfig::builder(use_case.braze.endpoint.clone(), key)
        .share_rate_limits(processes)
        .build()?;
    Ok(Arc::new(BrazeClient::new(config)?))
}

/// What a run did: its summary, and where a dry run's output went.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The day's summary.
    pub summary: RunSummary,
    /// For a dry run, its directory ([`dry_run_dir`]): the copy of the store it ran on
    /// (`state.db`) and the batches it would have sent (`batches.jsonl`).
    pub dry_run: Option<PathBuf>,
    /// What each worker of this process did, for a day shared by workers (empty otherwise).
    pub workers: Vec<WorkerReport>,
}

impl RunOutcome {
    /// The process's exit code: 0 when the day is complete, [`EXIT_INCOMPLETE`] when batches were
    /// certainly not sent (resend them with `--resend-failed`).
    pub fn exit_code(&self) -> u8 {
        if self.summary.batches.failed > 0 {
            EXIT_INCOMPLETE
        } else {
            0
        }
    }
}

/// The exit code of a run that ended with batches certainly not sent.
pub const EXIT_INCOMPLETE: u8 = 3;

/// Where a dry run of `use_case` on `date` writes, beside the store `store`:
/// `<store's directory>/dry-run/<use case>/<date>/`.
pub fn dry_run_dir(store: &Path, use_case: &str, date: Date) -> PathBuf {
    store_dir(store).join("dry-run").join(use_case).join(date.to_string())
}

/// The directory of the store file `store` (`.` for a bare file name).
fn store_dir(store: &Path) -> &Path {
    store
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The store a dry run runs on, in `dir`: a consistent copy of the store at `store` (taken with
/// SQLite's `VACUUM INTO`, which reads the real store without writing to it), or a new store when
/// there is none yet. Whatever an earlier dry run of the same day left in `dir` is replaced.
///
/// # Errors
/// The directory cannot be made or the copy cannot be written.
pub fn dry_run_store(store: &Path, dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing the earlier dry run in {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let copy = dir.join("state.db");
    if store.exists() {
        SqliteStore::copy_file(store, &copy)
            .with_context(|| format!("copying the store {} for the dry run", store.display()))?;
    }
    open_store(&copy)
}

/// Runs (or resumes) the day with the Braze client the use case names (its key from the
/// environment).
///
/// # Errors
/// Configuration, Braze, store, policy and activation errors.
pub async fn run(args: &RunArgs, clock: Arc<dyn Clock>) -> anyhow::Result<RunOutcome> {
    let use_case = load_use_case(&args.use_case)?;
    let braze = braze_client(&use_case)?;
    run_with(args, use_case, braze, clock).await
}

/// Runs (or resumes) the day through `braze` (any [`BrazeApi`]: the client, the simulator's, a
/// mock). Takes the use case's lock in the store first ([`Store::lock_use_case`]): a second runner
/// fails fast naming the holder. A dry run takes no lock and writes nothing to the store: it runs on
/// a copy ([`dry_run_store`]).
///
/// # Errors
/// Configuration, Braze, store, policy and activation errors; the use case busy in the store.
pub async fn run_with(
    args: &RunArgs,
    use_case: UseCase,
    braze: Arc<dyn BrazeApi>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<RunOutcome> {
    let clock_now = clock.now();
    let date = match args.date {
        Some(d) => d,
        None => today(&use_case, clock_now)?,
    };
    let location = crate::store_cmd::location(args.store.as_deref(), Some(&use_case))?;
    let (store, activator, dry_dir, _lock): (Arc<dyn Store>, Arc<dyn Activator>, _, _) = if args.dry_run {
        let StoreLocation::Sqlite(store_path) = &location else {
            bail!(
                "--dry-run runs the day on a copy of an SQLite store; the store {location} is PostgreSQL: copy the day's state into a file store first (`offerloop store export`), or run without --dry-run"
            );
        };
        let dir = dry_run_dir(store_path, use_case.name.as_str(), date);
        let store = dry_run_store(store_path, &dir)?;
        let activator = Arc::new(DryRunActivator::new(dir.join("batches.jsonl")));
        (store, activator, Some(dir), None)
    } else {
        let store = crate::store_cmd::open(&location)?;
        // Workers coordinate through the store's leases; a single run holds the use case's lock.
        let lock = if args.workers == 0 {
            Some(lock(
                store.as_ref(),
                use_case.name.as_str(),
                "offerloop run",
                clock.as_ref(),
            )?)
        } else {
            None
        };
        (store, Arc::new(BrazeActivator::new(braze.clone())), None, lock)
    };
    let base_dir = args
        .use_case
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let feed = match &use_case.outcomes.currents {
        Some(url) => Some(Arc::new(
            CurrentsFeed::open(url, store.clone()).with_context(|| format!("opening the Currents bucket {url}"))?,
        )),
        None => None,
    };
    let mut builder = DailyRun::builder(use_case, date)
        .braze(braze)
        .store(store)
        .activator(activator)
        .clock(clock)
        .options(RunOptions {
            base_dir,
            concurrency: args.concurrency,
            export_poll: export_poll(args),
            resend_failed: args.resend_failed,
            progress: args.progress.clone(),
            // Downloads go beside the store (`.offerloop/exports` for the default store), a dry
            // run's into its own directory.
            export_dir: match (&dry_dir, &location) {
                (Some(dir), _) => dir.join("exports"),
                (None, StoreLocation::Sqlite(path)) => store_dir(path).join("exports"),
                (None, _) => store_dir(Path::new(DEFAULT_STORE)).join("exports"),
            },
            ..RunOptions::default()
        });
    if let Some(feed) = feed {
        builder = builder.outcome_source(feed);
    }
    let day = builder.build()?;
    if args.workers == 0 {
        let summary = day.execute().await?;
        return Ok(RunOutcome {
            summary,
            dry_run: dry_dir,
            workers: Vec::new(),
        });
    }
    let workers = work(&day, args, clock_now).await?;
    Ok(RunOutcome {
        summary: workers.first().map(|w| w.summary.clone()).unwrap_or_default(),
        dry_run: None,
        workers,
    })
}

/// Takes part in `day` with `args.workers` workers of this process until the day is done.
///
/// # Errors
/// The first worker's error (the others stop with it; the day resumes with any worker).
async fn work(day: &DailyRun, args: &RunArgs, started_at: Timestamp) -> anyhow::Result<Vec<WorkerReport>> {
    let options: Vec<WorkerOptions> = (0..args.workers.max(1))
        .map(|n| WorkerOptions {
            shard_size: args.shard_size,
            lease_ttl: args.lease_ttl,
            // The process's `--concurrency`, shared by its workers.
            concurrency: args.concurrency.div_ceil(args.workers.max(1)),
            ..WorkerOptions::new(WorkerOptions::new_id(n), started_at)
        })
        .collect();
    Ok(futures::future::try_join_all(options.iter().map(|o| day.work(o))).await?)
}

/// Takes the lock of `use_case` in `store` for this process running `command`.
///
/// # Errors
/// The use case is busy (the message names the holder), or the lock cannot be made.
pub fn lock(
    store: &dyn Store,
    use_case: &str,
    command: &str,
    clock: &dyn Clock,
) -> anyhow::Result<offerloop_store::UseCaseLock> {
    Ok(store.lock_use_case(use_case, &LockHolder::this_process(command, clock.now()))?)
}

/// The export schedule of a run: the client's backoff, `--export-timeout`, and the progress callback.
fn export_poll(args: &RunArgs) -> offerloop_braze::export::ExportPoll {
    let poll = offerloop_braze::export::ExportPoll::default().with_timeout(args.export_timeout);
    match &args.export_progress {
        Some(progress) => poll.with_progress(progress.clone()),
        None => poll,
    }
}

/// What `offerloop run` prints: the summary, where a dry run's output went, and what to do about
/// batches certainly not sent.
pub fn render_outcome(outcome: &RunOutcome) -> String {
    let mut out = render_summary(&outcome.summary);
    for w in &outcome.workers {
        let mut did = Vec::new();
        if w.planned {
            did.push("planned the day".to_owned());
        }
        did.push(format!("{} shard(s) {:?}", w.shards.len(), w.shards));
        if !w.taken_over.is_empty() {
            did.push(format!("took over {:?} after their lease expired", w.taken_over));
        }
        if !w.lost.is_empty() {
            did.push(format!("lost the lease of {:?}", w.lost));
        }
        if w.finished {
            did.push("wrote the day's summary".to_owned());
        }
        let _ = writeln!(out, "  worker {}: {}", w.worker, did.join(", "));
    }
    let failed = outcome.summary.batches.failed;
    if let Some(dir) = &outcome.dry_run {
        let _ = writeln!(
            out,
            "dry run: nothing was sent and the store was not touched; the batches that would have been sent are in {}, the day's state in {}",
            dir.join("batches.jsonl").display(),
            dir.join("state.db").display()
        );
    } else if failed > 0 {
        let _ = writeln!(
            out,
            "incomplete: {failed} batch(es) were certainly not sent (see the errors above and `offerloop status`); fix the cause, then run `offerloop run --resend-failed` for this date"
        );
    }
    out
}

/// The summary for people.
pub fn render_summary(s: &RunSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "run {} of `{}` on {}", s.run_id, s.use_case, s.date);
    if let Some(phase) = s.resumed_from {
        let _ = writeln!(out, "  resumed after phase {phase:?}");
    }
    let _ = writeln!(out, "  audience        {}", s.audience);
    let _ = writeln!(
        out,
        "  outcomes        {} new; rewards {} pending, {} final, {} learned",
        s.outcomes_new, s.rewards_pending, s.rewards_final, s.rewards_learned
    );
    if s.rewards_refused > 0 {
        let _ = writeln!(
            out,
            "  warning: {} reward(s) outside the metric's plausible range were not learned (see the log for the first)",
            s.rewards_refused
        );
    }
    let _ = writeln!(out, "  model           {}", s.model_version);
    let g = &s.groups;
    let _ = writeln!(
        out,
        "  decisions       {} ({} treatment, {} control, {} random control; {} without message)",
        s.decisions, g.treatment, g.control, g.random_control, g.no_message
    );
    let gr = &s.guardrails;
    let _ = writeln!(
        out,
        "  guardrails      {} stopped (frequency cap {}, spacing {}, ineligible {}, quiet hours {}, send budget {}, cost budget {})",
        gr.total(),
        gr.frequency_cap,
        gr.min_days_between,
        gr.ineligible,
        gr.quiet_hours,
        gr.max_sends_per_run,
        gr.max_cost_per_run
    );
    let _ = writeln!(out, "  messages        {} (option cost {:.2})", s.messages, s.cost);
    let b = &s.batches;
    let _ = writeln!(
        out,
        "  batches         {} sent, {} failed, {} unknown, {} planned ({} retries)",
        b.sent, b.failed, b.unknown, b.planned, b.retries
    );
    if b.unknown > 0 {
        let _ = writeln!(
            out,
            "  warning: {} batch(es) may or may not have been applied; they are never resent automatically (see `offerloop status`)",
            b.unknown
        );
    }
    let d = &s.deliveries;
    if d.not_delivered() + d.bounced > 0 {
        let _ = writeln!(
            out,
            "  not delivered   {} (rejected {}, late {}, never sent {}: not learned from); {} bounced",
            d.not_delivered(),
            d.rejected,
            d.late,
            d.not_sent,
            d.bounced
        );
    }
    for alert in &s.drift_alerts {
        let _ = writeln!(out, "  drift           {alert}");
    }
    let timings: Vec<String> = s.durations.iter().map(|(k, v)| format!("{k} {v:.1}s")).collect();
    if !timings.is_empty() {
        let _ = writeln!(out, "  durations       {}", timings.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_reads_well() {
        let s = RunSummary {
            run_id: 3,
            use_case: "uc".into(),
            date: "2026-01-05".into(),
            audience: 10,
            decisions: 9,
            batches: offerloop_engine::BatchCounts {
                sent: 2,
                unknown: 1,
                ..Default::default()
            },
            ..RunSummary::default()
        };
        let text = render_summary(&s);
        assert!(text.starts_with("run 3 of `uc` on 2026-01-05\n"), "{text}");
        assert!(text.contains("2 sent, 0 failed, 1 unknown"), "{text}");
        assert!(text.contains("never resent"), "{text}");
        assert!(!text.contains("not delivered"), "nothing to say: {text}");
        let lost = RunSummary {
            deliveries: offerloop_engine::DeliveryCounts {
                late: 3,
                not_sent: 2,
                bounced: 1,
                ..Default::default()
            },
            ..s
        };
        let text = render_summary(&lost);
        assert!(
            text.contains("not delivered   5 (rejected 0, late 3, never sent 2: not learned from); 1 bounced"),
            "{text}"
        );
    }

    #[test]
    fn today_is_in_the_use_cases_time_zone() {
        let text = include_str!("../../../examples/winback.toml");
        let uc = offerloop_domain::config::parse_use_case(text, "winback.toml").unwrap();
        // 03:00 UTC is still the previous evening in New York.
        let now: Timestamp = "2026-01-06T03:00:00Z".parse().unwrap();
        assert_eq!(today(&uc, now).unwrap(), Date::constant(2026, 1, 5));
    }
}
