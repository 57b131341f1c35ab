//! A 30-day loop whose outcomes come from a real S3 server: the win-back world's simulated Currents
//! connector writes Braze's Avro files (duplicates, late events and some truncated files followed by
//! complete rewrites), each day's new files are uploaded to moto as Braze would write them to the
//! customer's bucket, and every daily run reads `s3://acme-currents/currents` through
//! `CurrentsFeed`. Across the 30 runs, every outcome of the bucket is stored once (the same set a
//! single read of the whole bucket finds), the checkpoint holds every complete outcome file and no
//! truncated one, and rewards are learned from them.
//!
//! Needs an S3 server: `OFFERLOOP_MOTO_SERVER` or `moto_server` (`.ci/run` installs it); without one
//! the test says it is skipped, except under CI. `OFFERLOOP_E2E_S3_CUSTOMERS` (default 400) and
//! `OFFERLOOP_E2E_S3_DAYS` (default 30) size it.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jiff::{Timestamp, tz::TimeZone};
use object_store::{ObjectStore, ObjectStoreExt as _};
use offerloop_activation::BrazeActivator;
use offerloop_braze::export::ExportPoll;
use offerloop_braze::{ApiKey, BrazeClient, BrazeConfig};
use offerloop_cli::demo_cmd;
use offerloop_currents::Bucket;
use offerloop_currents::test_servers::MotoServer;
use offerloop_engine::{Clock, CurrentsFeed, DailyRun, OutcomeSource as _, RunOptions};
use offerloop_sim::state::EventKind;
use offerloop_sim::state::currents::CurrentsConfig;
use offerloop_sim::state::spec::ApiKeySpec;
use offerloop_sim::{Scenario, SimBraze, SimConfig, World};
use offerloop_store::{SqliteStore, Store};

const KEY: &str = "e2e-s3-key";
const BUCKET: &str = "acme-currents";

#[derive(Debug)]
struct SimClock(Arc<SimBraze>);

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        self.0.now()
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Every file under `dir`, as keys relative to `root`.
fn keys_under(root: &Path, dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.file_name().unwrap().to_string_lossy().starts_with('.') {
                out.push(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// Uploads the connector's files not uploaded yet (what Braze's connector does to the bucket).
async fn upload_new(s3: &dyn ObjectStore, root: &Path, uploaded: &mut HashSet<String>) -> usize {
    let mut new = 0;
    for key in keys_under(root, &root.join("currents")) {
        if uploaded.contains(&key) {
            continue;
        }
        let bytes = std::fs::read(root.join(&key)).unwrap();
        s3.put(&object_store::path::Path::from(key.as_str()), bytes.into())
            .await
            .unwrap();
        uploaded.insert(key);
        new += 1;
    }
    new
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_days_of_outcomes_read_from_an_s3_bucket_are_each_stored_once() {
    let Some(moto) = MotoServer::start() else { return };
    moto.create_bucket(BUCKET);
    let s3 = moto.store(BUCKET);
    let customers = env("OFFERLOOP_E2E_S3_CUSTOMERS", 400);
    let days = env("OFFERLOOP_E2E_S3_DAYS", 30);

    let mut scenario = Scenario::from_toml_str(demo_cmd::SCENARIO, None).unwrap();
    scenario.customers = customers;
    scenario.braze.api_keys = vec![ApiKeySpec {
        key: KEY.into(),
        permissions: vec!["*".into()],
        ip_allowlist: vec![],
    }];
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("connector");
    let config = SimConfig {
        export_delay: Duration::from_millis(20),
        export_dir: Some(dir.path().join("sim-exports")),
        currents: Some(CurrentsConfig {
            truncated_rate: 0.2,
            duplicate_rate: 0.02,
            late_rate: 0.05,
            seed: 3,
            // Hourly files instead of Braze's 5 minutes: a tenth of the files, the same layout.
            flush_minutes: 60,
            ..CurrentsConfig::new(&root)
        }),
        ..SimConfig::default()
    };
    let sim = Arc::new(SimBraze::start(World::new(scenario).unwrap(), config).await.unwrap());
    let use_case = Arc::new(
        offerloop_domain::config::parse_use_case(&demo_cmd::demo_use_case_text(&sim.base_url()), "winback.toml")
            .unwrap(),
    );
    let zone = TimeZone::get(&use_case.time_zone).unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let braze = Arc::new(
        BrazeClient::new(
            BrazeConfig::builder(sim.base_url(), ApiKey::new(KEY).unwrap())
                .build()
                .unwrap(),
        )
        .unwrap(),
    );
    let url = format!("s3://{BUCKET}/currents");
    let feed = Arc::new(CurrentsFeed::new(
        Bucket::from_store(&url, s3.clone(), object_store::path::Path::from("currents")),
        store.clone(),
    ));
    let run = |date: jiff::civil::Date| {
        DailyRun::builder(use_case.clone(), date)
            .braze(braze.clone())
            .store(store.clone())
            .activator(Arc::new(BrazeActivator::new(braze.clone())))
            .clock(Arc::new(SimClock(sim.clone())))
            .outcome_source(feed.clone())
            .options(RunOptions {
                export_dir: dir.path().join("exports"),
                export_poll: ExportPoll::default()
                    .with_initial_delay(Duration::from_millis(10))
                    .with_max_delay(Duration::from_millis(100))
                    .with_timeout(Duration::from_secs(60)),
                ..RunOptions::default()
            })
            .build()
            .unwrap()
    };

    let mut uploaded = HashSet::new();
    let (mut outcomes_new, mut learned) = (0, 0);
    sim.advance_clock(demo_cmd::next_run(&zone, sim.now()).unwrap() - sim.now());
    for _ in 0..days {
        upload_new(s3.as_ref(), &root, &mut uploaded).await;
        let date = offerloop_cli::run_cmd::today(&use_case, sim.now()).unwrap();
        let summary = run(date).execute().await.unwrap();
        outcomes_new += summary.outcomes_new;
        learned += summary.rewards_learned;
        let next = demo_cmd::next_run(&zone, sim.now() + jiff::SignedDuration::from_secs(1)).unwrap();
        sim.advance_clock(next - sim.now());
    }
    // The last files, read by one more run's outcome phase.
    upload_new(s3.as_ref(), &root, &mut uploaded).await;
    let last = feed.outcomes(&use_case, Timestamp::MIN, sim.now()).await.unwrap();
    outcomes_new += feed.record(store.as_ref(), &use_case, &last, sim.now()).unwrap() as u64;

    // One read of the whole bucket (the local copy, a fresh checkpoint) finds the same outcomes.
    let local_store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("check.db")).unwrap());
    let local_url = url::Url::from_directory_path(root.join("currents"))
        .unwrap()
        .to_string();
    let local = CurrentsFeed::open(&local_url, local_store.clone()).unwrap();
    let all = local.outcomes(&use_case, Timestamp::MIN, sim.now()).await.unwrap();
    let distinct: HashSet<&str> = all.iter().map(|o| o.dedupe_key.as_str()).collect();
    let stored = store
        .outcomes_between(use_case.name.as_str(), Timestamp::MIN, Timestamp::MAX)
        .unwrap();
    let stored_keys: HashSet<&str> = stored.iter().map(|o| o.dedupe_key.as_str()).collect();
    assert_eq!(stored.len(), stored_keys.len(), "an outcome stored twice");
    assert_eq!(
        stored_keys, distinct,
        "the 30 runs stored exactly what the bucket holds"
    );
    assert_eq!(outcomes_new as usize, stored.len());

    // The checkpoint holds every complete outcome file and no truncated one.
    let checkpoint = store.feed_keys_read(use_case.name.as_str(), &url).unwrap();
    let bucket = Bucket::open(&local_url).unwrap();
    let complete = bucket
        .read_new_where(
            &HashSet::new(),
            &mut offerloop_currents::Dedupe::unbounded(),
            &offerloop_currents::Select {
                event_type: &|t| t == "users.behaviors.Purchase" || t == "users.behaviors.CustomEvent",
                queued_since: None,
            },
        )
        .await
        .unwrap();
    eprintln!(
        "uploaded {} files; {} complete outcome files, {} unreadable; {} stored outcomes; {} checkpointed",
        uploaded.len(),
        complete.keys.len(),
        complete.report.unreadable.len(),
        stored.len(),
        checkpoint.len()
    );
    assert!(
        !complete.report.unreadable.is_empty(),
        "the connector left truncated files"
    );
    for key in &complete.keys {
        assert!(
            checkpoint.contains(&format!("currents/{key}")) || checkpoint.contains(key),
            "{key} not checkpointed"
        );
    }
    for (key, _) in &complete.report.unreadable {
        assert!(
            !checkpoint.iter().any(|c| c.ends_with(key.as_str())),
            "truncated {key} checkpointed"
        );
    }

    // The world's purchases reached the store (all but those still queued late at the end).
    let purchases_in_world: usize = {
        let ws = sim.state().lock();
        ws.events
            .iter()
            .map(|e| match &e.kind {
                EventKind::Purchase { quantity, .. } => *quantity as usize,
                _ => 0,
            })
            .sum()
    };
    let purchases_stored = stored
        .iter()
        .filter(|o| matches!(o.kind, offerloop_domain::OutcomeKind::Purchase { .. }))
        .count();
    eprintln!(
        "{days} days, {customers} customers: {} files uploaded, {} outcome files checkpointed, {} truncated skipped, {purchases_stored} of {purchases_in_world} purchases stored, {outcomes_new} outcomes, {learned} rewards learned",
        uploaded.len(),
        checkpoint.len(),
        complete.report.unreadable.len()
    );
    assert!(
        purchases_stored * 100 >= purchases_in_world * 95,
        "{purchases_stored} of {purchases_in_world}"
    );
    assert!(purchases_stored <= purchases_in_world);
    assert!(learned > 0, "rewards were learned from the bucket's outcomes");
}
