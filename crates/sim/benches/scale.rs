//! Simulator scale benchmark: generate a world of 1,000,000 customers, export all of them through
//! the asynchronous segment export (ZIP of newline-delimited JSON, downloaded from its `url`), and
//! measure how many API-triggered sends of 50 recipients per request the server sustains on this
//! machine's cores, against Braze's default limit for them (250,000 requests an hour shared, ≈ 69.4/s).
//!
//! `cargo xtask bench sim` (= `cargo bench -p offerloop-sim --bench scale`). Figures go to
//! docs/benchmarks.md. Environment: `SIM_BENCH_CUSTOMERS` (default 1,000,000), `SIM_BENCH_SCENARIO`
//! (default crates/sim/scenarios/winback.toml), `SIM_BENCH_SECONDS` (trigger phase, default 10).

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use offerloop_sim::server::ratelimit::RateLimits;
use offerloop_sim::state::DEFAULT_API_KEY;
use offerloop_sim::state::spec::{ApiKeySpec, SegmentSpec};
use offerloop_sim::{Scenario, SimBraze, SimConfig, World};
use serde_json::{Value, json};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Peak resident set size of this process so far, in MiB (`VmHWM`).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let customers: usize = env_or("SIM_BENCH_CUSTOMERS", 1_000_000);
    let seconds: u64 = env_or("SIM_BENCH_SECONDS", 10);
    let scenario_path = std::env::var("SIM_BENCH_SCENARIO").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/winback.toml"),
        PathBuf::from,
    );
    // reqwest is built without a TLS crypto provider; the workspace's choice is ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(scenario_path, customers, seconds))
}

async fn run(scenario_path: PathBuf, customers: usize, seconds: u64) -> Result<()> {
    let mut scenario = Scenario::from_file(&scenario_path)?;
    scenario.customers = customers;
    scenario.braze.segments.push(SegmentSpec {
        id: "bench-everyone".into(),
        name: "Everyone (benchmark)".into(),
        filter: Vec::new(),
        tags: Vec::new(),
        created_at: None,
    });
    if !scenario.braze.api_keys.is_empty() {
        scenario.braze.api_keys.push(ApiKeySpec {
            key: DEFAULT_API_KEY.into(),
            permissions: vec!["*".into()],
            ip_allowlist: Vec::new(),
        });
    }
    let campaign = scenario
        .braze
        .campaigns
        .iter()
        .find(|c| c.api_triggered && !c.archived && !c.paused)
        .map(|c| c.id.clone())
        .ok_or("the scenario has no API-triggered campaign")?;

    println!("scenario {} with {customers} customers", scenario_path.display());
    let started = Instant::now();
    let world = World::new(scenario)?;
    let generated = started.elapsed();
    // The first 100,000 customers receive the sends of phase 2.
    let ids: Arc<Vec<String>> = Arc::new(
        (0..customers.min(100_000))
            .map(|i| world.external_id(i).to_string())
            .collect(),
    );
    let rss_world = peak_rss_mib();
    println!(
        "generate: {:.2} s, peak RSS {rss_world:.0} MiB",
        generated.as_secs_f64()
    );

    let export_dir = tempfile::tempdir()?;
    let config = SimConfig {
        rate_limits: RateLimits::unlimited(),
        export_delay: Duration::ZERO,
        export_dir: Some(export_dir.path().to_path_buf()),
        ..SimConfig::default()
    };
    let server = SimBraze::start(world, config).await?;
    let base = server.base_url();
    let http = reqwest::Client::new();
    let auth = format!("Bearer {DEFAULT_API_KEY}");

    // 1. The whole population through the segment export.
    let started = Instant::now();
    let response: Value = http
        .post(format!("{base}/users/export/segment"))
        .header("Authorization", &auth)
        .json(&json!({
            "segment_id": "bench-everyone",
            "fields_to_export": ["external_id", "country", "time_zone", "custom_attributes", "custom_events",
                                 "purchases", "total_revenue", "email_subscribe", "push_subscribe"],
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let url = response["url"]
        .as_str()
        .ok_or("no url in the export response")?
        .to_string();
    let zip_bytes = loop {
        let answer = http.get(&url).send().await?;
        if answer.status().is_success() {
            break answer.bytes().await?;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let ready = started.elapsed();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes.to_vec()))?;
    let (mut users, files) = (0usize, archive.len());
    for i in 0..files {
        let mut text = String::new();
        archive.by_index(i)?.read_to_string(&mut text)?;
        users += text.lines().filter(|l| !l.trim().is_empty()).count();
    }
    assert_eq!(users, customers, "every customer is exported exactly once");
    println!(
        "segment export: {users} users in {files} files, {:.1} MiB zipped, ready and downloaded in {:.2} s \
         ({:.0} users/s); peak RSS {:.0} MiB",
        zip_bytes.len() as f64 / (1024.0 * 1024.0),
        ready.as_secs_f64(),
        users as f64 / ready.as_secs_f64(),
        peak_rss_mib()
    );

    // 2. API-triggered sends, 50 recipients each, from 16 concurrent clients.
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for worker in 0..16u64 {
        let (http, auth, base, campaign) = (http.clone(), auth.clone(), base.clone(), campaign.clone());
        let (sent, failed) = (Arc::clone(&sent), Arc::clone(&failed));
        let ids = Arc::clone(&ids);
        let total = ids.len() as u64;
        tasks.push(tokio::spawn(async move {
            let mut next = worker * 50;
            while Instant::now() < deadline {
                let recipients: Vec<Value> = (0..50)
                    .map(|k| {
                        let index = (next + k) % total;
                        json!({
                            "external_user_id": ids[index as usize],
                            "trigger_properties": {"offer": "pct10", "send_time": "morning"},
                        })
                    })
                    .collect();
                next = (next + 16 * 50) % total;
                let body = json!({"campaign_id": campaign, "recipients": recipients});
                match http
                    .post(format!("{base}/campaigns/trigger/send"))
                    .header("Authorization", &auth)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => sent.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let started = Instant::now();
    for task in tasks {
        task.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (ok, bad) = (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    let per_second = ok as f64 / elapsed;
    println!(
        "trigger/send: {ok} requests ({} recipients) in {elapsed:.1} s = {per_second:.0} requests/s, {:.0} recipients/s; \
         {bad} failed; Braze's default pool allows 69.4 requests/s → {:.1}× headroom; peak RSS {:.0} MiB",
        ok * 50,
        per_second * 50.0,
        per_second / (250_000.0 / 3600.0),
        peak_rss_mib()
    );
    drop(server);
    Ok(())
}
