//! What is learned is what was delivered, end to end: the shipped referral example on its simulated
//! world (Australian customers), run at 00:00 UTC — 11:00 in Sydney, 08:00 in Perth, when the
//! 07:30 send time has passed everywhere. Braze (and the simulator) skip a local-time schedule for
//! recipients whose time has passed; before the fix every 07:30 send was recorded as sent and never
//! arrived. Now every recorded message reaches the simulator's event log (delivered or bounced), and
//! the feed's message events find nothing undelivered the next day.
//!
//! `OFFERLOOP_E2E_REFERRAL_CUSTOMERS=7000` runs the full world (the figures of docs/benchmarks.md).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;
use offerloop_activation::BrazeActivator;
use offerloop_braze::export::ExportPoll;
use offerloop_braze::{ApiKey, BrazeClient, BrazeConfig};
use offerloop_engine::{Clock, CurrentsFeed, DailyRun, RunOptions, RunSummary, is_message};
use offerloop_sim::state::EventKind;
use offerloop_sim::state::currents::CurrentsConfig;
use offerloop_sim::state::spec::ApiKeySpec;
use offerloop_sim::{Scenario, SimBraze, SimConfig, World};
use offerloop_store::{SqliteStore, Store};

const KEY: &str = "e2e-referral-key";
const CAMPAIGN: &str = "f61c2d84-referral-email";

#[derive(Debug)]
struct SimClock(Arc<SimBraze>);

impl Clock for SimClock {
    fn now(&self) -> jiff::Timestamp {
        self.0.now()
    }
}

/// The referral campaign's messages in the simulator's event log, per customer: (sends, deliveries,
/// bounces).
fn logged(sim: &SimBraze) -> HashMap<String, (usize, usize, usize)> {
    let ws = sim.state().lock();
    let mut out: HashMap<String, (usize, usize, usize)> = HashMap::new();
    for e in &ws.events {
        if e.message.as_ref().and_then(|m| m.campaign_id.as_deref()) != Some(CAMPAIGN) {
            continue;
        }
        let entry = out.entry(e.external_user_id.clone()).or_default();
        match e.kind {
            EventKind::Send => entry.0 += 1,
            EventKind::Delivery => entry.1 += 1,
            EventKind::Bounce => entry.2 += 1,
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recorded_referral_message_is_delivered_when_run_at_midnight_utc() {
    let customers: usize = std::env::var("OFFERLOOP_E2E_REFERRAL_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_500);
    let path = format!("{}/../crates/sim/scenarios/referral.toml", env!("CARGO_MANIFEST_DIR"));
    let mut scenario = Scenario::from_file(std::path::Path::new(&path)).unwrap();
    scenario.customers = customers;
    scenario.braze.api_keys = vec![ApiKeySpec {
        key: KEY.into(),
        permissions: vec!["*".into()],
        ip_allowlist: vec![],
    }];
    let dir = tempfile::tempdir().unwrap();
    let currents = CurrentsConfig::new(dir.path().join("bucket"));
    let bucket_url = format!("file://{}", currents.prefix_dir().display());
    let config = SimConfig {
        export_delay: Duration::from_millis(20),
        export_dir: Some(dir.path().join("sim-exports")),
        currents: Some(currents),
        ..SimConfig::default()
    };
    let sim = Arc::new(SimBraze::start(World::new(scenario).unwrap(), config).await.unwrap());
    assert_eq!(sim.now(), "2026-01-05T00:00:00Z".parse::<jiff::Timestamp>().unwrap());
    let example = std::fs::read_to_string(format!("{}/../examples/referral.toml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let text = example.replace(
        "endpoint = \"https://rest.au-01.braze.com\"",
        &format!("endpoint = \"{}\"", sim.base_url()),
    );
    let use_case = Arc::new(offerloop_domain::config::parse_use_case(&text, "referral.toml").unwrap());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let braze = Arc::new(
        BrazeClient::new(
            BrazeConfig::builder(sim.base_url(), ApiKey::new(KEY).unwrap())
                .build()
                .unwrap(),
        )
        .unwrap(),
    );
    let run = |date: jiff::civil::Date| {
        DailyRun::builder(use_case.clone(), date)
            .braze(braze.clone())
            .store(store.clone())
            .activator(Arc::new(BrazeActivator::new(braze.clone())))
            .clock(Arc::new(SimClock(sim.clone())))
            .outcome_source(Arc::new(CurrentsFeed::open(&bucket_url, store.clone()).unwrap()))
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
    let today = |sim: &SimBraze| offerloop_cli::run_cmd::today(&use_case, sim.now()).unwrap();

    // Day 1 at 00:00 UTC, then two simulated days so every schedule (today's 19:30, tomorrow's
    // 07:30) comes due.
    let first: RunSummary = run(today(&sim)).execute().await.unwrap();
    assert_eq!(first.batches.failed + first.batches.unknown, 0, "{:?}", first.batches);
    let decisions = store.decisions(first.run_id).unwrap();
    let messages: HashSet<String> = decisions
        .iter()
        .filter(|d| is_message(&use_case, d))
        .map(|d| d.customer_id.as_str().to_owned())
        .collect();
    assert_eq!(messages.len() as u64, first.messages);
    sim.advance_clock(SignedDuration::from_hours(48));
    let log = logged(&sim);
    let sent: usize = log.values().map(|c| c.0).sum();
    let delivered: usize = log.values().map(|c| c.1).sum();
    let bounced: usize = log.values().map(|c| c.2).sum();
    eprintln!(
        "referral at 00:00 UTC, {customers} customers: {} messages recorded, {sent} sent, {delivered} delivered, {bounced} bounced",
        first.messages
    );
    // Both send times were chosen (the test would be empty otherwise).
    let send_time = use_case.actions.dimension_index("send_time").unwrap();
    let breakfast = use_case.actions.dimensions()[send_time]
        .option_index("breakfast")
        .unwrap();
    assert!(
        decisions
            .iter()
            .any(|d| is_message(&use_case, d) && use_case.actions.option_of(d.action, send_time) == breakfast),
        "some 07:30 sends"
    );
    // Every recorded message reached the event log once, delivered or bounced; nobody else got one.
    assert_eq!(sent as u64, first.messages, "recorded messages that Braze never sent");
    assert_eq!((delivered + bounced) as u64, first.messages);
    assert!(log.keys().all(|c| messages.contains(c)));
    assert!(log.values().all(|c| c.0 == 1));

    // The next day's run reads the feed: nothing found undelivered.
    let second = run(today(&sim)).execute().await.unwrap();
    assert_eq!(second.deliveries.not_delivered(), 0, "{:?}", second.deliveries);
    assert_eq!(second.deliveries.bounced as usize, bounced);
}
