//! The daily loop end to end against the simulator: the real `BrazeClient` over HTTP, the store
//! and the Braze activator, driven by `offerloop_engine::DailyRun`. Every test that is not about
//! SQLite files runs on both store back-ends: `mod sqlite` and `mod postgres` at the end instantiate
//! them (`both!`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use jiff::SignedDuration;
use jiff::civil::Date;
use offerloop_activation::{ActivationRequest, Activator, BatchOutcome, BrazeActivator, PlannedBatch};
use offerloop_braze::export::ExportPoll;
use offerloop_braze::{ApiKey, BrazeApi, BrazeClient, BrazeConfig};
use offerloop_cli::demo_cmd;
use offerloop_domain::UseCase;
use offerloop_engine::{Clock, DailyRun, RunOptions};
use offerloop_sim::server::Faults;
use offerloop_sim::state::EventKind;
use offerloop_sim::state::spec::ApiKeySpec;
use offerloop_sim::{Scenario, SimBraze, SimConfig, World};
use offerloop_store::{BatchState, Store};

const FULL_KEY: &str = "e2e-full-key";
const LIMITED_KEY: &str = "e2e-no-export-key";

#[derive(Debug)]
struct SimClock(Arc<SimBraze>);

impl Clock for SimClock {
    fn now(&self) -> jiff::Timestamp {
        self.0.now()
    }
}

/// The store back-end a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

struct Harness {
    dir: tempfile::TempDir,
    sim: Arc<SimBraze>,
    use_case: Arc<UseCase>,
    store: Arc<dyn Store>,
    /// Where `store` is, as `--store` takes it.
    location: String,
}

async fn harness(customers: usize) -> Harness {
    harness_on(Backend::Sqlite, customers).await.unwrap()
}

/// A harness whose store is on `backend`; `None` when PostgreSQL tests are skipped.
async fn harness_on(backend: Backend, customers: usize) -> Option<Harness> {
    let mut scenario = Scenario::from_toml_str(demo_cmd::SCENARIO, None).unwrap();
    scenario.customers = customers;
    scenario.braze.api_keys = vec![
        ApiKeySpec {
            key: FULL_KEY.into(),
            permissions: vec!["*".into()],
            ip_allowlist: vec![],
        },
        ApiKeySpec {
            key: LIMITED_KEY.into(),
            permissions: vec!["campaigns.trigger.send".into(), "users.track".into()],
            ip_allowlist: vec![],
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    let config = SimConfig {
        export_delay: Duration::from_millis(20),
        export_dir: Some(dir.path().join("sim-exports")),
        ..SimConfig::default()
    };
    let sim = Arc::new(SimBraze::start(World::new(scenario).unwrap(), config).await.unwrap());
    // 01:00 in New York: the day's local send times are ahead.
    sim.advance_clock(SignedDuration::from_hours(6));
    let text = demo_cmd::demo_use_case_text(&sim.base_url());
    let use_case = Arc::new(offerloop_domain::config::parse_use_case(&text, "winback.toml").unwrap());
    let location = match backend {
        Backend::Sqlite => dir.path().join("state.db").display().to_string(),
        Backend::Postgres => offerloop_tests::postgres_location()?,
    };
    let store = open_location(&location);
    Some(Harness {
        dir,
        sim,
        use_case,
        store,
        location,
    })
}

/// The store at `location` (a file path or a `postgres://` URL).
fn open_location(location: &str) -> Arc<dyn Store> {
    let location = offerloop_store::StoreLocation::parse(location, offerloop_store::DEFAULT_PASSWORD_ENV).unwrap();
    offerloop_store::open(&location).unwrap()
}

/// A fresh store on the harness's back-end behind the fault-injecting wrapper.
fn faulty(h: &Harness, backend: Backend) -> Arc<offerloop_store::faults::FaultyStore> {
    use offerloop_store::faults::FaultyStore;
    Arc::new(match backend {
        Backend::Sqlite => FaultyStore::in_memory().unwrap(),
        Backend::Postgres => {
            let _ = h;
            FaultyStore::from_dyn(open_location(&offerloop_tests::postgres_location().unwrap()))
        }
    })
}

/// Instantiates `async fn $name(backend: Backend)` once per back-end.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

both!(
    a_crash_between_batches_resumes_and_nobody_gets_two_sends,
    an_applied_send_whose_response_is_lost_is_unknown_and_not_resent,
    a_missing_permission_is_named_and_nothing_is_written,
    a_second_run_of_the_same_use_case_fails_fast_naming_the_holder,
    batches_certainly_not_sent_make_the_day_incomplete_and_are_resent_on_request,
    a_day_killed_at_store_writes_across_every_phase_sends_each_message_once,
    workers_in_one_process_share_the_day_and_send_each_message_once,
);

impl Harness {
    /// The use case written to a file, and `offerloop run`'s arguments for it on the store `store`.
    fn cli_args(&self, store: &str) -> offerloop_cli::run_cmd::RunArgs {
        let file = self.dir.path().join("winback.toml");
        std::fs::write(&file, demo_cmd::demo_use_case_text(&self.sim.base_url())).unwrap();
        offerloop_cli::run_cmd::RunArgs {
            use_case: file,
            date: Some(self.date()),
            dry_run: false,
            resend_failed: false,
            store: Some(store.to_owned()),
            workers: 0,
            shard_size: offerloop_engine::WorkerOptions::DEFAULT_SHARD_SIZE,
            lease_ttl: offerloop_engine::WorkerOptions::DEFAULT_LEASE_TTL,
            concurrency: 2,
            export_timeout: Duration::from_secs(30),
            export_progress: None,
            progress: offerloop_engine::progress::silent(),
        }
    }

    /// `offerloop run` as the binary runs it, through the simulator with `key`.
    async fn cli_run(
        &self,
        args: &offerloop_cli::run_cmd::RunArgs,
        key: &str,
    ) -> anyhow::Result<offerloop_cli::run_cmd::RunOutcome> {
        let use_case = offerloop_cli::run_cmd::load_use_case(&args.use_case).unwrap();
        offerloop_cli::run_cmd::run_with(args, use_case, self.braze(key), Arc::new(SimClock(self.sim.clone()))).await
    }

    fn braze(&self, key: &str) -> Arc<dyn BrazeApi> {
        let config = BrazeConfig::builder(self.sim.base_url(), ApiKey::new(key).unwrap())
            .build()
            .unwrap();
        Arc::new(BrazeClient::new(config).unwrap())
    }

    fn date(&self) -> Date {
        offerloop_cli::run_cmd::today(&self.use_case, self.sim.now()).unwrap()
    }

    fn run(&self, key: &str, activator: Arc<dyn Activator>) -> DailyRun {
        DailyRun::builder(self.use_case.clone(), self.date())
            .braze(self.braze(key))
            .store(self.store.clone())
            .activator(activator)
            .clock(Arc::new(SimClock(self.sim.clone())))
            .options(RunOptions {
                export_dir: self.dir.path().join("exports"),
                export_poll: ExportPoll::default()
                    .with_initial_delay(Duration::from_millis(10))
                    .with_max_delay(Duration::from_millis(100))
                    .with_timeout(Duration::from_secs(30)),
                retry_delay: Duration::from_millis(10),
                ..RunOptions::default()
            })
            .build()
            .unwrap()
    }

    fn activator(&self) -> Arc<dyn Activator> {
        Arc::new(BrazeActivator::new(self.braze(FULL_KEY)))
    }

    /// Sends per customer in the simulator's event log.
    fn sends(&self) -> HashMap<String, usize> {
        let ws = self.sim.state().lock();
        let mut out = HashMap::new();
        for e in ws.events.iter().filter(|e| e.kind == EventKind::Send) {
            *out.entry(e.external_user_id.clone()).or_default() += 1;
        }
        out
    }
}

/// Applies the batch, then "crashes" before the ledger hears the answer, after `k` batches.
#[derive(Debug)]
struct CrashAfter {
    inner: Arc<dyn Activator>,
    k: usize,
    executed: AtomicUsize,
}

#[async_trait::async_trait]
impl Activator for CrashAfter {
    fn plan(
        &self,
        use_case: &UseCase,
        date: Date,
        requests: &[ActivationRequest],
    ) -> offerloop_activation::Result<Vec<PlannedBatch>> {
        self.inner.plan(use_case, date, requests)
    }

    async fn execute(&self, batch: &PlannedBatch) -> BatchOutcome {
        let outcome = self.inner.execute(batch).await;
        if self.executed.fetch_add(1, Ordering::SeqCst) + 1 == self.k {
            panic!("simulated crash after batch {}", batch.id);
        }
        outcome
    }
}

async fn a_crash_between_batches_resumes_and_nobody_gets_two_sends(backend: Backend) {
    let Some(h) = harness_on(backend, 1_500).await else {
        return;
    };
    let crashing = Arc::new(CrashAfter {
        inner: h.activator(),
        k: 3,
        executed: AtomicUsize::new(0),
    });
    let first = Arc::new(h.run(FULL_KEY, crashing));
    assert!(
        tokio::spawn(async move { first.execute().await }).await.is_err(),
        "the first run crashed"
    );
    let summary = h.run(FULL_KEY, h.activator()).execute().await.unwrap();
    assert_eq!(summary.resumed_from, Some(offerloop_store::RunPhase::Decided));
    assert!(summary.messages > 100 && summary.batches.sent >= 3, "{summary:?}");
    assert_eq!(
        summary.batches.unknown, 1,
        "the batch in flight at the crash is reported"
    );
    assert_eq!(summary.batches.planned + summary.batches.failed, 0);
    // A third invocation does nothing.
    let again = h.run(FULL_KEY, h.activator()).execute().await.unwrap();
    assert_eq!(again, summary);
    // Let the day's schedules fire.
    h.sim.advance_clock(SignedDuration::from_hours(24));
    let sends = h.sends();
    assert!(sends.values().all(|&n| n == 1), "somebody got two sends");
    assert_eq!(
        sends.len() as u64,
        summary.messages,
        "every messaged customer got exactly one send"
    );
}

async fn an_applied_send_whose_response_is_lost_is_unknown_and_not_resent(backend: Backend) {
    let Some(h) = harness_on(backend, 600).await else {
        return;
    };
    h.sim.state().faults.lock().unwrap().set(Faults {
        lost_response_rate: 1.0,
        paths: vec!["/campaigns/trigger".into()],
        ..Faults::default()
    });
    let summary = h.run(FULL_KEY, h.activator()).execute().await.unwrap();
    let batches = h.store.batches(summary.run_id).unwrap();
    let sends: Vec<_> = batches.iter().filter(|b| b.target.is_message()).collect();
    assert!(!sends.is_empty());
    assert!(sends.iter().all(|b| b.state == BatchState::Unknown), "{sends:?}");
    assert_eq!(summary.batches.unknown as usize, sends.len());
    assert_eq!(
        h.store.unknown_batches(h.use_case.name.as_str()).unwrap().len(),
        sends.len()
    );
    h.sim.state().faults.lock().unwrap().set(Faults::default());
    h.run(FULL_KEY, h.activator()).execute().await.unwrap();
    h.sim.advance_clock(SignedDuration::from_hours(24));
    let per_customer = h.sends();
    assert!(per_customer.values().all(|&n| n == 1), "an unknown batch was resent");
    assert_eq!(
        per_customer.len() as u64,
        summary.messages,
        "the lost responses were applied once"
    );
}

async fn a_missing_permission_is_named_and_nothing_is_written(backend: Backend) {
    let Some(h) = harness_on(backend, 200).await else {
        return;
    };
    let err = h.run(LIMITED_KEY, h.activator()).execute().await.unwrap_err();
    assert!(err.to_string().contains("users.export.segment"), "{err}");
    assert!(h.store.runs(h.use_case.name.as_str(), 10).unwrap().is_empty());
    assert!(h.store.latest_model(h.use_case.name.as_str()).unwrap().is_none());
    // A wrong key: 401, nothing written either.
    let err = h.run("not-a-key", h.activator()).execute().await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    assert!(h.store.runs(h.use_case.name.as_str(), 10).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pii_in_the_fields_is_refused_before_any_call() {
    let h = harness(50).await;
    let text = demo_cmd::demo_use_case_text(&h.sim.base_url()).replace(
        "[[feature]]\nname = \"country\"",
        "[[feature]]\nname = \"mail\"\nfield = \"email\"\ntype = \"category\"\n\n[[feature]]\nname = \"country\"",
    );
    let file = h.dir.path().join("pii.toml");
    std::fs::write(&file, text).unwrap();
    let store = h.dir.path().join("pii-state.db");
    let args = offerloop_cli::run_cmd::RunArgs {
        use_case: file,
        date: None,
        dry_run: false,
        store: Some(store.display().to_string()),
        workers: 0,
        shard_size: offerloop_engine::WorkerOptions::DEFAULT_SHARD_SIZE,
        lease_ttl: offerloop_engine::WorkerOptions::DEFAULT_LEASE_TTL,
        concurrency: 1,
        export_timeout: offerloop_cli::export_wait::default_export_timeout(),
        export_progress: None,
        resend_failed: false,
        progress: offerloop_engine::progress::silent(),
    };
    let err = offerloop_cli::run_cmd::run(&args, Arc::new(SimClock(h.sim.clone())))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("personal data"), "{err:#}");
    assert!(!store.exists(), "nothing written");
    assert!(h.sim.state().lock().events.is_empty(), "no call reached Braze");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_days_on_a_small_world_the_ai_beats_the_control() {
    let customers = std::env::var("OFFERLOOP_E2E_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6_000);
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("oracle.jsonl");
    let args = demo_cmd::DemoArgs {
        days: 30,
        customers,
        out: dir.path().to_path_buf(),
        oracle_dump: Some(dump.clone()),
        ..demo_cmd::DemoArgs::default()
    };
    let report = demo_cmd::run(&args, |_, _| {}).await.unwrap();
    oracle_dump_values_every_eligible_action(&dump);
    let uplift = report.treatment.minus(&report.control);
    assert!(
        uplift.mean - uplift.half_width > 0.0,
        "uplift {:.3} ± {:.3}\n{}",
        uplift.mean,
        uplift.half_width,
        demo_cmd::render(&report)
    );
    assert_eq!(report.unknown_batches, 0);
    assert!(report.oracle.ceiling.mean >= report.oracle.ai.mean);
    planted_truths_are_recovered(&report);
}

/// `--oracle-dump`: a header naming the features and dimensions, then one line per sampled AI
/// decision with its features and every eligible joint action (valid option indexes, a probability).
fn oracle_dump_values_every_eligible_action(path: &std::path::Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap());
    let header = lines.next().unwrap();
    let features = header["features"].as_array().unwrap().len();
    let sizes: Vec<usize> = header["dims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d[1].as_array().unwrap().len())
        .collect();
    let mut decisions = 0;
    for line in lines {
        decisions += 1;
        assert_eq!(line["x"].as_array().unwrap().len(), features, "{line}");
        let actions = line["a"].as_array().unwrap();
        assert!(!actions.is_empty(), "{line}");
        for a in actions {
            let options = a[0].as_array().unwrap();
            assert_eq!(options.len(), sizes.len(), "{a}");
            for (o, size) in options.iter().zip(&sizes) {
                assert!(o.as_u64().unwrap() < *size as u64, "{a}");
            }
            assert!((0.0..=1.0).contains(&a[2].as_f64().unwrap()), "{a}");
        }
    }
    assert_eq!(
        decisions,
        demo_cmd::ORACLE_DUMP_SAMPLE,
        "the demo makes more AI decisions than the sample"
    );
}

/// The report's "what works best" tables recover the simulator's planted truths (the scenario's
/// header): the price-sensitive `basic` members gain more conversion from the larger discount over
/// none than `gold` members do; an SMS's best send time follows the customer's active
/// hours (seen through `daypart`; the use case allows SMS in the morning and at lunch). Each is
/// checked against the oracle's true values for the same segments first, so a failure says which
/// part is wrong: the world (the oracle disagrees with the planted truth) or the report.
fn planted_truths_are_recovered(report: &demo_cmd::DemoReport) {
    let built = report.report.as_ref().expect("the demo writes its report");
    assert!(report.report_file.exists());
    let metric = "conversion";
    let oracle = |feature: &str, segment: &str, dimension: &str, given: Option<&str>| -> Vec<(String, f64)> {
        report
            .oracle_segments
            .iter()
            .find(|o| {
                o.metric == metric
                    && o.feature == feature
                    && o.segment == segment
                    && o.dimension == dimension
                    && o.given.as_deref() == given
            })
            .unwrap_or_else(|| panic!("no oracle values for {feature}={segment} {dimension} {given:?}"))
            .values
            .clone()
    };
    let estimated = |feature: &str, segment: &str, dimension: &str, given: Option<&str>| -> Vec<(String, f64)> {
        built
            .insights
            .segments
            .iter()
            .find(|t| t.feature == feature)
            .and_then(|t| t.rows.iter().find(|r| r.segment == segment))
            .unwrap_or_else(|| panic!("the report has no segment {feature}={segment}"))
            .best
            .iter()
            .find(|b| b.metric == metric && b.dimension == dimension && b.given.as_deref() == given)
            .unwrap_or_else(|| panic!("the report estimates no best {dimension} {given:?} for {feature}={segment}"))
            .options
            .iter()
            .map(|o| (o.option.clone(), o.value))
            .collect()
    };
    let value = |values: &[(String, f64)], option: &str| -> f64 {
        values
            .iter()
            .find(|(o, _)| o == option)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no value for {option} in {values:?}"))
    };
    // Price sensitivity: pct20 − none, in basic and in gold.
    let lift = |values: &[(String, f64)]| value(values, "pct20") - value(values, "none");
    let (true_basic, true_gold) = (
        oracle("plan", "basic", "offer", None),
        oracle("plan", "gold", "offer", None),
    );
    assert!(
        lift(&true_basic) > 0.0 && lift(&true_basic) > lift(&true_gold),
        "the world does not hold the planted price sensitivity: basic {true_basic:?}, gold {true_gold:?}"
    );
    let (basic, gold) = (
        estimated("plan", "basic", "offer", None),
        estimated("plan", "gold", "offer", None),
    );
    // The relative truth only: on 6,000 customers the oracle's absolute lift for `basic` (about +0.007
    // in conversion) is within the noise of estimates read from the few `pct20` decisions a ≈ 1 %
    // exploration floor logs, so the sign of `basic`'s own lift is not asserted (it held for the seed
    // of issue 7's policy and not after issue 15's learning changes: docs/benchmarks.md).
    assert!(
        lift(&basic) > lift(&gold),
        "the report does not show basic members gaining more from the larger discount than gold ones: basic {basic:?}, gold {gold:?} \
         (oracle: basic {true_basic:?}, gold {true_gold:?})"
    );
    // Active hours: an SMS's best send time.
    for (segment, planted) in [("morning", "morning"), ("midday", "lunch")] {
        let truth = oracle("daypart", segment, "send_time", Some("channel=sms"));
        assert_eq!(
            truth[0].0, planted,
            "the world's best SMS send time for daypart={segment}: {truth:?}"
        );
        let shown = estimated("daypart", segment, "send_time", Some("channel=sms"));
        assert_eq!(
            shown[0].0, planted,
            "the report's best SMS send time for daypart={segment}: {shown:?} (oracle {truth:?})"
        );
    }
}

/// Issue 17, defect 1: a dry run used to write into the real store and finish the day there, so the
/// real run of that date found it done and sent nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_leaves_the_store_untouched_and_the_real_run_still_sends() {
    let h = harness(300).await;
    let store = h.dir.path().join("cli").join("state.db");
    // The store exists (with its schema) for the dry run to copy.
    drop(offerloop_cli::run_cmd::open_store(&store).unwrap());
    let before = std::fs::read(&store).unwrap();
    let sends_before = h.sends().values().sum::<usize>();

    let mut dry = h.cli_args(&store.display().to_string());
    dry.dry_run = true;
    let outcome = h.cli_run(&dry, FULL_KEY).await.unwrap();
    let dir = outcome.dry_run.clone().expect("a dry run says where its output went");
    assert!(outcome.summary.messages > 0, "the dry run decided messages");
    let lines = std::fs::read_to_string(dir.join("batches.jsonl")).unwrap();
    assert!(lines.lines().count() > 0, "the batches it would have sent are written");
    assert!(dir.join("state.db").exists());
    assert_eq!(
        h.sends().values().sum::<usize>(),
        sends_before,
        "a dry run sends nothing"
    );
    assert_eq!(
        std::fs::read(&store).unwrap(),
        before,
        "the real store is byte for byte untouched"
    );
    let text = offerloop_cli::run_cmd::render_outcome(&outcome);
    assert!(
        text.contains("dry run: nothing was sent and the store was not touched"),
        "{text}"
    );

    // The real run of the same date decides and sends.
    let real = h
        .cli_run(&h.cli_args(&store.display().to_string()), FULL_KEY)
        .await
        .unwrap();
    assert_eq!(real.summary.resumed_from, None, "the real run starts fresh");
    assert!(real.summary.batches.sent > 0);
    h.sim.advance_clock(SignedDuration::from_hours(24));
    let sends = h.sends().values().sum::<usize>() - sends_before;
    assert_eq!(
        sends as u64, real.summary.messages,
        "every message of the real run was sent"
    );
}

/// Issue 17, defect 4: a second runner of the same use case and store fails fast naming the holder.
async fn a_second_run_of_the_same_use_case_fails_fast_naming_the_holder(backend: Backend) {
    let Some(h) = harness_on(backend, 50).await else { return };
    let store_path = h.location.clone();
    let store = h.store.clone();
    let holder = offerloop_store::LockHolder {
        command: "offerloop run".into(),
        pid: 31337,
        host: "ops-1".into(),
        since: h.sim.now(),
    };
    let held = store.lock_use_case(h.use_case.name.as_str(), &holder).unwrap();
    let err = h.cli_run(&h.cli_args(&store_path), FULL_KEY).await.unwrap_err();
    assert!(
        matches!(
            err.downcast_ref::<offerloop_store::Error>(),
            Some(offerloop_store::Error::Locked { .. })
        ),
        "{err:#}"
    );
    let text = format!("{err:#}");
    assert!(text.contains("pid 31337 on host ops-1"), "{text}");
    assert!(h.sim.state().lock().events.is_empty(), "nothing reached Braze");
    assert!(
        store.runs(h.use_case.name.as_str(), 5).unwrap().is_empty(),
        "nothing written"
    );
    drop(held);
    h.cli_run(&h.cli_args(&store_path), FULL_KEY).await.unwrap();
}

/// Revokes the key after `k` batches: later batches get a 401 (certainly not sent).
#[derive(Debug)]
struct RevokedAfter {
    inner: Arc<dyn Activator>,
    k: usize,
    executed: AtomicUsize,
    rejected: std::sync::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Activator for RevokedAfter {
    fn plan(
        &self,
        use_case: &UseCase,
        date: Date,
        requests: &[ActivationRequest],
    ) -> offerloop_activation::Result<Vec<PlannedBatch>> {
        self.inner.plan(use_case, date, requests)
    }

    async fn execute(&self, batch: &PlannedBatch) -> BatchOutcome {
        if self.executed.fetch_add(1, Ordering::SeqCst) >= self.k {
            self.rejected.lock().unwrap().push(batch.id.clone());
            return BatchOutcome::Rejected {
                error: "401 Unauthorized: invalid API key (/campaigns/trigger/send)".into(),
                retryable: false,
            };
        }
        self.inner.execute(batch).await
    }
}

/// Issue 17, defect 6: batches certainly not sent (a key revoked mid-run) used to leave the day
/// `done` with exit code 0, and a re-run did nothing. Now the day says it is incomplete, a plain
/// re-run changes nothing, and `--resend-failed` sends exactly the failed batches, once.
async fn batches_certainly_not_sent_make_the_day_incomplete_and_are_resent_on_request(backend: Backend) {
    let Some(h) = harness_on(backend, 400).await else {
        return;
    };
    let date = h.date();
    let revoked = Arc::new(RevokedAfter {
        inner: h.activator(),
        k: 3,
        executed: AtomicUsize::new(0),
        rejected: std::sync::Mutex::new(Vec::new()),
    });
    let first = h.run(FULL_KEY, revoked.clone()).execute().await.unwrap();
    let rejected = revoked.rejected.lock().unwrap().clone();
    assert!(!rejected.is_empty(), "some batches were refused");
    assert_eq!(first.batches.failed as usize, rejected.len());
    let outcome = offerloop_cli::run_cmd::RunOutcome {
        summary: first.clone(),
        dry_run: None,
        workers: Vec::new(),
    };
    assert_eq!(outcome.exit_code(), offerloop_cli::run_cmd::EXIT_INCOMPLETE);
    assert!(offerloop_cli::run_cmd::render_outcome(&outcome).contains("--resend-failed"));
    let sent_first: usize = h.sends().values().sum();
    assert!(
        first.deliveries.rejected > 0,
        "the refused messages are counted as not delivered"
    );

    // A plain re-run: the day is done and stays incomplete; nothing is sent.
    let again = h.run(FULL_KEY, h.activator()).execute().await.unwrap();
    assert_eq!(again.batches.failed, first.batches.failed);
    assert_eq!(h.sends().values().sum::<usize>(), sent_first);

    // The key is fixed: `--resend-failed` sends the failed batches, and only them.
    let mut run = h.run(FULL_KEY, h.activator());
    let mut options = run.options().clone();
    options.resend_failed = true;
    run = DailyRun::builder(h.use_case.clone(), h.date())
        .braze(h.braze(FULL_KEY))
        .store(h.store.clone())
        .activator(h.activator())
        .clock(Arc::new(SimClock(h.sim.clone())))
        .options(options)
        .build()
        .unwrap();
    let resent = run.execute().await.unwrap();
    assert_eq!(resent.batches.failed, 0);
    assert_eq!(resent.batches.unknown, 0);
    assert_eq!(
        resent.deliveries.rejected, 0,
        "the resent messages are no longer counted as refused"
    );
    h.sim.advance_clock(SignedDuration::from_hours(24));
    let per_customer = h.sends();
    assert!(per_customer.values().all(|&n| n == 1), "nobody got two messages");
    assert_eq!(
        per_customer.values().sum::<usize>() as u64,
        resent.messages,
        "everyone got their message"
    );
    let stored = h.store.run(h.use_case.name.as_str(), date).unwrap().unwrap();
    let states = h.store.batch_states(stored.id).unwrap();
    assert!(states.iter().all(|b| b.state == BatchState::Sent));
}

/// Issue 17, the crash matrix against the simulator: the day is killed at store writes across every
/// phase (each boundary, and ledger moves throughout activation), then resumed; the simulator's own
/// event log shows every message decision sent exactly once — a kill between Braze's answer and the
/// ledger leaves an `unknown` batch, applied once and never resent.
async fn a_day_killed_at_store_writes_across_every_phase_sends_each_message_once(backend: Backend) {
    if backend == Backend::Postgres && offerloop_tests::postgres_location().is_none() {
        return;
    }
    // An uninterrupted day tells how many writes a day makes.
    let reference = {
        let mut h = harness(200).await;
        let store = faulty(&h, backend);
        h.store = store.clone();
        let summary = h.run(FULL_KEY, h.activator()).execute().await.unwrap();
        (store.writes(), summary.messages)
    };
    let (writes, messages) = reference;
    assert!(writes > 10 && messages > 0, "{writes} writes, {messages} messages");
    // Every write up to the activation phase's first sends, then every third one.
    let points: Vec<usize> = (1..=writes).filter(|n| *n <= 12 || n % 3 == 0).collect();
    for n in points {
        let mut h = harness(200).await;
        let store = faulty(&h, backend);
        h.store = store.clone();
        *store.fail_writes_from.lock().unwrap() = Some(n);
        let crashed = h.run(FULL_KEY, h.activator()).execute().await;
        assert!(crashed.is_err(), "write {n} failed, so did the run");
        *store.fail_writes_from.lock().unwrap() = None;
        let summary = h.run(FULL_KEY, h.activator()).execute().await.unwrap();
        assert_eq!(summary.messages, messages, "kill at write {n}: the same decisions");
        assert!(summary.batches.unknown <= 1, "kill at write {n}: {:?}", summary.batches);
        h.sim.advance_clock(SignedDuration::from_hours(24));
        let per_customer = h.sends();
        assert!(
            per_customer.values().all(|&k| k == 1),
            "kill at write {n}: someone got two messages"
        );
        assert_eq!(
            per_customer.values().sum::<usize>() as u64,
            messages,
            "kill at write {n}: every message sent once"
        );
    }
}

/// `offerloop run --workers 3` (shards of 100 customers) through the real client and the simulator:
/// one planner, every shard done, the simulator's log shows each message decision sent once, and a
/// second invocation does nothing.
async fn workers_in_one_process_share_the_day_and_send_each_message_once(backend: Backend) {
    let Some(h) = harness_on(backend, 800).await else {
        return;
    };
    let mut args = h.cli_args(&h.location);
    args.workers = 3;
    args.shard_size = 100;
    let outcome = h.cli_run(&args, FULL_KEY).await.unwrap();
    assert_eq!(outcome.workers.len(), 3);
    assert_eq!(outcome.workers.iter().filter(|w| w.planned).count(), 1);
    assert_eq!(outcome.workers.iter().filter(|w| w.finished).count(), 1);
    let summary = &outcome.summary;
    let shards: usize = outcome.workers.iter().map(|w| w.shards.len()).sum();
    assert_eq!(shards as u64, summary.audience.div_ceil(100));
    assert_eq!(summary.batches.unknown + summary.batches.failed, 0);
    assert!(summary.messages > 100, "{summary:?}");
    let again = h.cli_run(&args, FULL_KEY).await.unwrap();
    assert_eq!(&again.summary, summary, "a second invocation reads the day's summary");
    let run = h.store.run(h.use_case.name.as_str(), h.date()).unwrap().unwrap();
    assert_eq!(run.phase, offerloop_store::RunPhase::Done);
    assert!(h.store.shard_plan(run.id).unwrap().is_some());
    h.sim.advance_clock(SignedDuration::from_hours(24));
    let per_customer = h.sends();
    assert!(per_customer.values().all(|&n| n == 1), "nobody got two messages");
    assert_eq!(per_customer.values().sum::<usize>() as u64, summary.messages);
}
