//! Decision quality in the product's own loop: every shipped scenario (`crates/sim/scenarios/*.toml`)
//! × 3 seeds × 30 simulated days of `offerloop demo`'s machinery (the simulator's Braze API over HTTP,
//! the real Braze client, the SQLite store, the activator's send ledger, Currents attribution and the
//! use case's own policy), release build, each world with the shipped use case aligned with it.
//!
//! `cargo xtask bench loop` (= `cargo bench -p offerloop-cli --bench loop`). Prints, per scenario and
//! seed, the oracle's value (in the use case's own metric) of the AI's decisions of the last 7
//! simulated days against business as usual, the best single action (an ideal A/B test's winner),
//! uniform random and the per-customer ceiling, the normalised score `(AI − uniform) / (ceiling −
//! uniform)`, whether the AI beats the best single action, and the daily learning curve; then one line
//! per scenario with its worst seed. Each run's full result is kept as JSON in
//! `target/bench-loop/<scenario>-<seed>.json`.
//!
//! The seeds are the scenario's own and the next ones. Environment: `LOOP_CUSTOMERS` (customers per
//! world, default 15,000), `LOOP_DAYS` (30), `LOOP_SEEDS` (3), `LOOP_CURVE_SAMPLE` (AI decisions
//! valued per day, 300), `LOOP_SCENARIOS` (comma-separated names, default all).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use offerloop_cli::demo_cmd::{self, DemoArgs};
use offerloop_cli::loop_bench::{self, LoopRun};
use offerloop_sim::Scenario;

/// The allocator of the `offerloop` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().unwrap_or(root);
    let customers: usize = env_or("LOOP_CUSTOMERS", 15_000);
    let days: u32 = env_or("LOOP_DAYS", 30);
    let seeds: u64 = env_or("LOOP_SEEDS", 3);
    let curve_sample: usize = env_or("LOOP_CURVE_SAMPLE", demo_cmd::CURVE_SAMPLE);
    let only: Option<Vec<String>> = std::env::var("LOOP_SCENARIOS")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("crates/sim/scenarios"))
        .expect("the scenarios directory")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let out_dir = root.join("target/bench-loop");
    std::fs::create_dir_all(&out_dir).expect("target/bench-loop");
    println!(
        "loop benchmark: {} scenario file(s) × {seeds} seed(s) × {days} days, {customers} customers per world, \
         up to {curve_sample} AI decisions valued per day, last week = the last {} days",
        files.len(),
        demo_cmd::LAST_WEEK_DAYS
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let started = Instant::now();
    let mut runs = Vec::new();
    for file in &files {
        let scenario = Scenario::from_file(file).expect("a valid scenario");
        if only.as_ref().is_some_and(|o| !o.contains(&scenario.name)) {
            continue;
        }
        for k in 0..seeds {
            let seed = scenario.seed + k;
            let work = tempfile::tempdir().expect("a temporary directory");
            let args = DemoArgs {
                days,
                customers,
                out: work.path().to_path_buf(),
                seed: Some(seed),
                scenario: Some(file.clone()),
                report: false,
                curve_sample,
                json: Some(out_dir.join(format!("{}-{seed}.json", scenario.name))),
                ..DemoArgs::default()
            };
            let report = runtime
                .block_on(demo_cmd::run(&args, |_, _| {}))
                .unwrap_or_else(|e| panic!("{} seed {seed}: {e:#}", scenario.name));
            let run = LoopRun::from_report(&report);
            eprintln!("{}", loop_bench::row(&run));
            runs.push(run);
        }
    }
    println!("\n{}", loop_bench::render_runs(&runs));
    println!("worst seed per scenario:\n{}", loop_bench::render_summary(&runs));
    println!(
        "total {:.0} s; per-run JSON in {}",
        started.elapsed().as_secs_f64(),
        out_dir.display()
    );
}
