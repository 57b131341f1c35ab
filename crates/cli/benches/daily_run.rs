//! One daily run at scale: 1,000,000 customers of the simulator's win-back world, every one in the
//! audience, decided over the use case's 64 allowed joint actions (4 offers × 3 channels × 3 send times
//! × 2 subject lines, minus the rules' exclusions), stored in SQLite and activated through the real
//! Braze client over HTTP in batches of 50, with the simulator's rate limits lifted.
//!
//! `cargo xtask bench daily-run` (= `cargo bench -p offerloop-cli --bench daily_run`). Prints the
//! run's phase durations, its summary counts and the process's peak RSS (`VmHWM`), split into what
//! the simulator (world + server) holds before the run and the peak after it. Environment:
//! `DAILY_RUN_CUSTOMERS` (default 1,000,000).
//!
//! With `DAILY_RUN_RATE_LIMIT=N` it measures rate-limit use instead: the simulator enforces N requests
//! a second on the default pool (API-triggered sends to explicit users) and on `/users/track`, the
//! client is configured with 95 % of those budgets and without retries of its own, and the run sends 8
//! batches at a time. A 429 would come back to the engine as a retryable rejection, so the summary's
//! retry count is the number of times the limit was hit; the activation phase's request rate, against
//! N, is how much of the limit the run uses.

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
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

/// Peak resident set size of this process so far, in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// The simulator's clock is the run's "now".
#[derive(Debug)]
struct SimClock(Arc<SimBraze>);

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        self.0.now()
    }
}

fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rate: Option<u32> = std::env::var("DAILY_RUN_RATE_LIMIT").ok().and_then(|v| v.parse().ok());
    let customers: usize = std::env::var("DAILY_RUN_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if rate.is_some() { 20_000 } else { 1_000_000 });
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(customers, rate))
}

async fn run(customers: usize, rate: Option<u32>) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut scenario = Scenario::from_toml_str(SCENARIO, None)?;
    scenario.customers = customers;
    let started = Instant::now();
    let world = World::new(scenario)?;
    let mut limits = RateLimits::unlimited();
    if let Some(rate) = rate {
        limits.default = Limit::new(rate, Duration::from_secs(1));
        limits.users_track = Limit::new(rate, Duration::from_secs(1));
    }
    let config = SimConfig {
        rate_limits: limits,
        export_delay: Duration::ZERO,
        export_dir: Some(dir.path().join("sim-exports")),
        ..SimConfig::default()
    };
    let sim = Arc::new(SimBraze::start(world, config).await?);
    println!(
        "simulator: {customers} customers generated and served in {:.1} s; peak RSS {:.0} MiB",
        started.elapsed().as_secs_f64(),
        peak_rss_mib()
    );

    // The win-back use case, for everyone and without the per-run caps that would stop it early.
    let text = USE_CASE
        .replace(
            "endpoint = \"https://rest.iad-01.braze.com\"",
            &format!("endpoint = \"{}\"", sim.base_url()),
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
    let mut config = BrazeConfig::builder(sim.base_url(), ApiKey::new(DEFAULT_API_KEY)?);
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
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("state.db"))?);
    let activator = Arc::new(BrazeActivator::new(braze.clone()));
    // 06:00 UTC: the day's local send times are still ahead everywhere.
    sim.advance_clock(SignedDuration::from_hours(6));
    let clock: Arc<dyn Clock> = Arc::new(SimClock(sim.clone()));
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
            progress: false,
            concurrency: 8,
            ..RunOptions::default()
        })
        .build()?;
    let started = Instant::now();
    let summary = run.execute().await?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "daily run: {elapsed:.1} s for {} customers: {} decisions, {} messages in {} batches sent ({} failed, {} unknown); \
         peak RSS {:.0} MiB",
        summary.audience,
        summary.decisions,
        summary.messages,
        summary.batches.sent,
        summary.batches.failed,
        summary.batches.unknown,
        peak_rss_mib()
    );
    for (phase, seconds) in &summary.durations {
        println!("  {phase:<12} {seconds:>7.2} s");
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
    Ok(())
}
