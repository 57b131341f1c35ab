//! One daily run at scale: 1,000,000 customers of the simulator's win-back world, every one in the
//! audience, decided over the use case's 64 allowed joint actions (4 offers × 3 channels × 3 send times
//! × 2 subject lines, minus the rules' exclusions), stored in SQLite and activated through the real
//! Braze client over HTTP in batches of 50, with the simulator's rate limits lifted.
//!
//! `cargo xtask bench daily-run` (= `cargo bench -p offerloop-cli --bench daily_run`). Prints the
//! run's phase durations, its summary counts and the peak RSS (`VmHWM`) of offerloop's process. The
//! simulator (world, server, and every send it records) runs in a child process (this benchmark
//! binary, re-executed with `DAILY_RUN_ROLE=simulator`), so the figure is offerloop's own; the
//! child's peak is printed beside it. Both share the machine's cores. Environment:
//! `DAILY_RUN_CUSTOMERS` (default 1,000,000).
//!
//! With `DAILY_RUN_RATE_LIMIT=N` it measures rate-limit use instead: the simulator enforces N requests
//! a second on the default pool (API-triggered sends to explicit users) and on `/users/track`, the
//! client is configured with 95 % of those budgets and without retries of its own, and the run sends 8
//! batches at a time. A 429 would come back to the engine as a retryable rejection, so the summary's
//! retry count is the number of times the limit was hit; the activation phase's request rate, against
//! N, is how much of the limit the run uses.
//!
//! With `DAILY_RUN_STORE=postgres://…` the state goes to PostgreSQL instead of an SQLite file (the
//! schema `daily_run_bench`, dropped with `psql` before the run); with `DAILY_RUN_WORKERS=N` the day
//! is shared by N workers of this process (`DailyRun::work`, shards of `DAILY_RUN_SHARD_SIZE`
//! customers, default 50,000) instead of one single-process run. The phase lines of a shared day
//! add up every shard's time, so the total is the figure to compare.

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use offerloop_activation::BrazeActivator;
use offerloop_braze::export::ExportPoll;
use offerloop_braze::retry::RetryPolicy;
use offerloop_braze::{ApiKey, BrazeApi, BrazeClient, BrazeConfig, RateLimit, RateLimitPool};
use offerloop_engine::{Clock, DailyRun, RunOptions};
use offerloop_sim::server::ratelimit::{Limit, RateLimits};
use offerloop_sim::state::DEFAULT_API_KEY;
use offerloop_sim::{Scenario, SimBraze, SimConfig, World};
use offerloop_store::{SqliteStore, Store};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const SCENARIO: &str = include_str!("../../sim/scenarios/winback.toml");
const USE_CASE: &str = include_str!("../../../examples/winback.toml");

/// The allocator of the `offerloop` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/rss.rs"]
mod rss;
use rss::{current_rss_mib, peak_rss_mib};

/// The simulator's clock, read once: it only moves when told to, and the run does not tell it.
#[derive(Debug)]
struct FixedClock(Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rate: Option<u32> = std::env::var("DAILY_RUN_RATE_LIMIT").ok().and_then(|v| v.parse().ok());
    let customers: usize = std::env::var("DAILY_RUN_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if rate.is_some() { 20_000 } else { 1_000_000 });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if std::env::var("DAILY_RUN_ROLE").as_deref() == Ok("simulator") {
        let export_dir = std::env::var("DAILY_RUN_EXPORT_DIR")?;
        return runtime.block_on(simulator(customers, rate, PathBuf::from(export_dir)));
    }
    runtime.block_on(run(customers, rate))
}

/// The child: serves the world until its stdin closes (the parent is done, or gone).
async fn simulator(customers: usize, rate: Option<u32>, export_dir: PathBuf) -> Result<()> {
    let mut scenario = Scenario::from_toml_str(SCENARIO, None)?;
    scenario.customers = customers;
    let world = World::new(scenario)?;
    let mut limits = RateLimits::unlimited();
    if let Some(rate) = rate {
        limits.default = Limit::new(rate, Duration::from_secs(1));
        limits.users_track = Limit::new(rate, Duration::from_secs(1));
    }
    let config = SimConfig {
        rate_limits: limits,
        export_delay: Duration::ZERO,
        export_dir: Some(export_dir),
        ..SimConfig::default()
    };
    let sim = SimBraze::start(world, config).await?;
    println!("{}", sim.base_url());
    std::io::stdout().flush()?;
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await?;
    drop(sim);
    Ok(())
}

async fn run(customers: usize, rate: Option<u32>) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe()?)
        .env("DAILY_RUN_ROLE", "simulator")
        .env("DAILY_RUN_CUSTOMERS", customers.to_string())
        .env("DAILY_RUN_EXPORT_DIR", dir.path().join("sim-exports"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let child_pid = child.id().to_string();
    let mut base_url = String::new();
    BufReader::new(child.stdout.take().ok_or("no child stdout")?).read_line(&mut base_url)?;
    let base_url = base_url.trim().to_owned();
    if base_url.is_empty() {
        return Err("the simulator process exited before serving".into());
    }
    println!(
        "simulator (child process {child_pid}): {customers} customers generated and served in {:.1} s; its peak RSS {:.0} MiB",
        started.elapsed().as_secs_f64(),
        peak_rss_mib(&child_pid)
    );
    // 06:00 UTC: the day's local send times are still ahead everywhere.
    let advanced: serde_json::Value = reqwest::Client::new()
        .post(format!("{base_url}/_sim/clock/advance"))
        .json(&serde_json::json!({"seconds": 6 * 3600}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let now: Timestamp = advanced["now"].as_str().ok_or("no clock in the answer")?.parse()?;

    // The win-back use case, for everyone and without the per-run caps that would stop it early.
    let text = USE_CASE
        .replace(
            "endpoint = \"https://rest.iad-01.braze.com\"",
            &format!("endpoint = \"{base_url}\""),
        )
        .replace(
            "segment_id = \"3b4f5c2e-lapsed-90d\"",
            "segment_id = \"0c6a8e14-all-customers\"",
        )
        .replace("max_customers_per_run = 250000\n", "")
        .replace("max_cost_per_run = 25000.0\n", "");
    let use_case = Arc::new(
        offerloop_domain::config::parse_use_case(&text, "winback.toml")
            .map_err(|e| format!("the benchmark use case does not validate: {e:?}"))?,
    );
    let mut config = BrazeConfig::builder(base_url.as_str(), ApiKey::new(DEFAULT_API_KEY)?);
    if let Some(rate) = rate {
        // The client keeps 5 % headroom: requests leave it evenly spaced but reach the server with
        // jitter, and a server bucket run at exactly its refill rate has no slack for that.
        let budget = RateLimit {
            requests: rate * 95 / 100,
            per: Duration::from_secs(1),
        };
        config = config
            .rate_limit(RateLimitPool::Default, budget)
            .rate_limit(RateLimitPool::UsersTrack, budget)
            .retry(RetryPolicy::disabled());
    }
    let config = config.build()?;
    let braze: Arc<dyn BrazeApi> = Arc::new(BrazeClient::new(config)?);
    let store: Arc<dyn Store> = match std::env::var("DAILY_RUN_STORE") {
        Ok(url) if !url.is_empty() => {
            let status = Command::new("psql")
                .arg(url.as_str())
                .args(["-q", "-c", "DROP SCHEMA IF EXISTS daily_run_bench CASCADE"])
                .status()?;
            if !status.success() {
                return Err(format!("psql could not reset the schema daily_run_bench at {url}").into());
            }
            let separator = if url.contains('?') { '&' } else { '?' };
            let location = offerloop_store::StoreLocation::parse(
                &format!("{url}{separator}schema=daily_run_bench"),
                offerloop_store::DEFAULT_PASSWORD_ENV,
            )?;
            println!("store: {location}");
            offerloop_store::open(&location)?
        }
        _ => Arc::new(SqliteStore::open(&dir.path().join("state.db"))?),
    };
    let workers: usize = std::env::var("DAILY_RUN_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let shard_size: u64 = std::env::var("DAILY_RUN_SHARD_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(offerloop_engine::WorkerOptions::DEFAULT_SHARD_SIZE);
    let activator = Arc::new(BrazeActivator::new(braze.clone()));
    let clock: Arc<dyn Clock> = Arc::new(FixedClock(now));
    let date = offerloop_cli::run_cmd::today(&use_case, clock.now()).map_err(|e| e.to_string())?;
    let run = DailyRun::builder(use_case, date)
        .braze(braze)
        .store(store)
        .activator(activator)
        .clock(clock)
        .options(RunOptions {
            export_dir: dir.path().join("exports"),
            export_poll: ExportPoll::default()
                .with_initial_delay(Duration::from_millis(50))
                .with_max_delay(Duration::from_millis(200))
                .with_timeout(Duration::from_secs(300)),
            concurrency: 8,
            ..RunOptions::default()
        })
        .build()?;
    let started = Instant::now();
    let samples = Arc::new(std::sync::Mutex::new(Vec::<(f64, f64)>::new()));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (samples, sampling) = (samples.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                let rss = current_rss_mib();
                samples.lock().unwrap().push((started.elapsed().as_secs_f64(), rss));
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let summary = if workers == 0 {
        run.execute().await?
    } else {
        let options: Vec<offerloop_engine::WorkerOptions> = (0..workers)
            .map(|n| offerloop_engine::WorkerOptions {
                shard_size,
                // The run's 8 in flight, shared by the process's workers.
                concurrency: 8_usize.div_ceil(workers),
                ..offerloop_engine::WorkerOptions::new(format!("bench-{n}"), now)
            })
            .collect();
        let reports = futures::future::try_join_all(options.iter().map(|o| run.work(o))).await?;
        for r in &reports {
            println!(
                "  worker {}: planned {}, {} shards, finished {}",
                r.worker,
                r.planned,
                r.shards.len(),
                r.finished
            );
        }
        reports.into_iter().next().ok_or("no worker")?.summary
    };
    let elapsed = started.elapsed().as_secs_f64();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    sampler.join().map_err(|_| "the RSS sampler panicked")?;
    let samples = samples.lock().unwrap().clone();
    println!(
        "daily run: {elapsed:.1} s for {} customers: {} decisions, {} messages in {} batches sent ({} failed, {} unknown); \
         offerloop's peak RSS {:.0} MiB (the simulator's {:.0} MiB)",
        summary.audience,
        summary.decisions,
        summary.messages,
        summary.batches.sent,
        summary.batches.failed,
        summary.batches.unknown,
        peak_rss_mib("self"),
        peak_rss_mib(&child_pid)
    );
    // Phases in the order they ran, each with the largest RSS sampled (every 100 ms) while it ran.
    let mut from = 0.0;
    for phase in ["audience", "outcomes", "learn", "decide", "activate"] {
        let Some(seconds) = summary.durations.get(phase).copied() else {
            continue;
        };
        let peak = samples
            .iter()
            .filter(|(t, _)| *t >= from && *t <= from + seconds)
            .map(|(_, rss)| *rss)
            .fold(f64::NAN, f64::max);
        println!("  {phase:<12} {seconds:>7.2} s   peak RSS {peak:>6.0} MiB");
        from += seconds;
    }
    if let Some(rate) = rate {
        let activate = summary.durations.get("activate").copied().unwrap_or(f64::NAN);
        let requests =
            summary.batches.sent + summary.batches.failed + summary.batches.unknown + summary.batches.retries;
        let achieved = requests as f64 / activate;
        // Both pools start with a full bucket (`rate` requests each) that the average would count as
        // sustained throughput; without it, the rate the run keeps up.
        let sustained = (requests as f64 - 2.0 * f64::from(rate)) / activate;
        println!(
            "rate limit {rate}/s: {requests} requests in {activate:.1} s = {achieved:.1}/s on average, \
             {sustained:.1}/s sustained ({:.0} % of the limit); 429s (retried rejections): {}",
            100.0 * sustained / f64::from(rate),
            summary.batches.retries
        );
    }
    drop(child.stdin.take());
    child.wait()?;
    Ok(())
}
