//! One daily run at scale: 1,000,000 customers of the simulator's win-back world, every one in the
//! audience, decided over the use case's 64 allowed joint actions (4 offers × 3 channels × 3 send times
//! × 2 subject lines, minus the rules' exclusions), stored in SQLite and activated through the real
//! Braze client over HTTP in batches of 50, with the simulator's rate limits lifted.
//!
//! `cargo xtask bench daily-run` (= `cargo bench -p offerloop-cli --bench daily_run`). Prints the
//! run's phase durations, its summary counts and the process's peak RSS (`VmHWM`), split into what
//! the simulator (world + server) holds before the run and the peak after it. Environment:
//! `DAILY_RUN_CUSTOMERS` (default 1,000,000).

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use offerloop_activation::BrazeActivator;
use offerloop_braze::export::ExportPoll;
use offerloop_braze::{ApiKey, BrazeApi, BrazeClient, BrazeConfig};
use offerloop_engine::{Clock, DailyRun, RunOptions};
use offerloop_sim::server::ratelimit::RateLimits;
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
    let customers: usize = std::env::var("DAILY_RUN_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(customers))
}

async fn run(customers: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut scenario = Scenario::from_toml_str(SCENARIO, None)?;
    scenario.customers = customers;
    let started = Instant::now();
    let world = World::new(scenario)?;
    let config = SimConfig {
        rate_limits: RateLimits::unlimited(),
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
    let config = BrazeConfig::builder(sim.base_url(), ApiKey::new(DEFAULT_API_KEY)?).build()?;
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
    Ok(())
}
