//! `offerloop demo`: the whole loop on a simulated world, end to end over HTTP.
//!
//! It starts [`SimBraze`] on a scenario (by default the embedded win-back world,
//! `crates/sim/scenarios/winback.toml`; `--scenario FILE` and `--seed N` choose another world), writes
//! the shipped use case aligned with that scenario (the example of `examples/` whose segment, campaigns,
//! attributes and options the scenario serves, matched by the scenario's `name`; `--use-case FILE`
//! overrides it) pointed at the simulator, and runs one [`DailyRun`] per simulated day through the
//! real [`BrazeClient`], the SQLite store and the Braze activator, reading outcomes from the
//! simulator's Currents connector: Avro files under Braze's key layout in `OUT/bucket/currents/`,
//! read by [`CurrentsFeed`] through the `[outcomes] currents = "file://…"` the written use case names
//! (so `offerloop run` on that file reads the same bucket).
//!
//! Braze's rate limits are per real minute while the demo lives a simulated day in seconds, so the demo
//! lifts them on both sides (the simulator's and the client's; `offerloop run` keeps Braze's).
//! A use case whose audience is a file of external ids (lead nurture: the CRM's open MQLs) finds the
//! members of the scenario's first segment there before each run.
//!
//! Every simulated day's run starts at [`RUN_LOCAL_HOUR`]:00 in the use case's time zone, as a nightly
//! job would: every local send time of the day is still ahead, also for customers a few time zones
//! east of the programme's own (London customers of the New York win-back programme get their 09:00
//! message at 01:00 New York time + 8 h), and messages without a send time go out at that hour.
//!
//! Then it compares the groups: realised reward per message, in the use case's success metric, of the
//! AI (treatment) group against the business-as-usual control and the uniformly random control (what
//! an A/B test's exploration arm earns), with a 95 % interval on the uplift; and, from the simulator's
//! oracle (which only the demo may read, see [`crate::demo_oracle`]), the expected value in the same
//! metric of the AI's latest actions against business as usual, uniform exploration, the best single
//! action an ideal A/B test would roll out, and the best action per customer, the ceiling; the same
//! for the last week's decisions, and a learning curve: per simulated day, a sample of that day's AI
//! decisions valued the same way.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use offerloop_activation::BrazeActivator;
use offerloop_braze::export::ExportPoll;
use offerloop_braze::{ApiKey, BrazeApi, BrazeClient, BrazeConfig, RateLimit, RateLimitPool};
use offerloop_domain::{Decision, FeatureValue, Group, RewardStatus, UseCase};
use offerloop_engine::{AudienceFeatures, Clock, CurrentsFeed, DailyRun, NO_MESSAGE_VERSION, RunOptions, RunSummary};
use offerloop_sim::state::currents::CurrentsConfig;
use offerloop_sim::{Scenario, SimBraze, SimConfig, World};
use offerloop_store::{SqliteStore, Store};
use serde::{Deserialize, Serialize};

use crate::demo_oracle::{self, DayOracle, Oracle, OracleSummary, Scored, Valuation};

/// The default scenario, embedded.
pub const SCENARIO: &str = include_str!("../../sim/scenarios/winback.toml");
/// The use case the demo starts from by default, embedded.
pub const USE_CASE: &str = include_str!("../../../examples/winback.toml");

/// Every shipped scenario with the example use case aligned with it: (scenario name, scenario text,
/// use-case file name, use-case text). The scenario's `name` picks the use case.
pub const WORLDS: &[(&str, &str, &str, &str)] = &[
    ("winback", SCENARIO, "winback.toml", USE_CASE),
    (
        "cross-sell",
        include_str!("../../sim/scenarios/cross-sell.toml"),
        "cross-sell.toml",
        include_str!("../../../examples/cross-sell.toml"),
    ),
    (
        "lead-nurture",
        include_str!("../../sim/scenarios/lead-nurture.toml"),
        "lead-nurture.toml",
        include_str!("../../../examples/lead-nurture.toml"),
    ),
    (
        "loyalty",
        include_str!("../../sim/scenarios/loyalty.toml"),
        "loyalty.toml",
        include_str!("../../../examples/loyalty.toml"),
    ),
    (
        "referral",
        include_str!("../../sim/scenarios/referral.toml"),
        "referral.toml",
        include_str!("../../../examples/referral.toml"),
    ),
    (
        "renewal",
        include_str!("../../sim/scenarios/renewal.toml"),
        "renewal.toml",
        include_str!("../../../examples/renewal.toml"),
    ),
    (
        "repeat-purchase",
        include_str!("../../sim/scenarios/repeat-purchase.toml"),
        "repeat-purchase.toml",
        include_str!("../../../examples/repeat-purchase.toml"),
    ),
];

/// The local hour (in the use case's time zone) at which every simulated day's run starts.
pub const RUN_LOCAL_HOUR: i8 = 1;
/// AI decisions the headline oracle values (the latest ones, every eligible joint action each).
const ORACLE_SAMPLE: usize = 1_500;
/// AI decisions per simulated day the learning curve values, by default.
pub const CURVE_SAMPLE: usize = 300;
/// The days whose decisions make "the last week".
pub const LAST_WEEK_DAYS: usize = 7;

/// What `offerloop demo` was asked for.
#[derive(Debug, Clone)]
pub struct DemoArgs {
    /// Simulated days.
    pub days: u32,
    /// Customers in the world.
    pub customers: usize,
    /// Where the use case, the store, exports and the Currents feed go.
    pub out: PathBuf,
    /// Show progress bars.
    pub progress: bool,
    /// The world's seed instead of the scenario's.
    pub seed: Option<u64>,
    /// A scenario file instead of the embedded win-back world.
    pub scenario: Option<PathBuf>,
    /// A use-case file instead of the shipped one aligned with the scenario.
    pub use_case: Option<PathBuf>,
    /// Write the HTML report (`<out>/report/`).
    pub report: bool,
    /// AI decisions per day the learning curve values.
    pub curve_sample: usize,
    /// Where to write the result as JSON.
    pub json: Option<PathBuf>,
    /// Where to write the oracle's value of every eligible action for a sample of the AI's decisions
    /// (JSON lines: a header naming the features and dimensions, then one line per decision), for
    /// studying model classes offline (`xtask/analysis/model_classes.py`).
    pub oracle_dump: Option<PathBuf>,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self {
            days: 30,
            customers: 20_000,
            out: PathBuf::from(".offerloop/demo"),
            progress: false,
            seed: None,
            scenario: None,
            use_case: None,
            report: true,
            curve_sample: CURVE_SAMPLE,
            json: None,
            oracle_dump: None,
        }
    }
}

/// Mean and 95 % half-width of one group's rewards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Values.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// 1.96 standard errors.
    pub half_width: f64,
}

impl Estimate {
    /// The estimate of `values`.
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        if n == 0 {
            return Self::default();
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Self {
            n,
            mean,
            half_width: 1.96 * (var / n as f64).sqrt(),
        }
    }

    /// `self − other`, with the interval of a difference of independent means.
    pub fn minus(&self, other: &Self) -> Self {
        Self {
            n: self.n.min(other.n),
            mean: self.mean - other.mean,
            half_width: (self.half_width.powi(2) + other.half_width.powi(2)).sqrt(),
        }
    }
}

/// The demo's result (what `--json` writes, the HTML report's data and the segment truths aside).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DemoReport {
    /// The scenario's name.
    pub scenario: String,
    /// The world's seed.
    pub seed: u64,
    /// The use case's name.
    pub use_case: String,
    /// The use case's success metric, in words.
    pub metric: String,
    /// When each day's run started, e.g. `01:00 America/New_York`.
    pub run_time: String,
    /// Days run.
    pub days: u32,
    /// Customers in the world.
    pub customers: usize,
    /// Decisions made over all days.
    pub decisions: u64,
    /// Messages sent (batches accepted × recipients is not counted; decisions that send).
    pub messages: u64,
    /// Unknown batches over all days.
    pub unknown_batches: u64,
    /// Final realised reward per message: AI group.
    pub treatment: Estimate,
    /// Business-as-usual control.
    pub control: Estimate,
    /// Uniformly random control.
    pub random_control: Estimate,
    /// Why the oracle cannot value the use case's metric in this world (then every oracle figure is
    /// empty).
    pub oracle_unavailable: Option<String>,
    /// Oracle: the AI group's latest decisions (the most learned model).
    pub oracle: OracleSummary,
    /// Oracle: a sample of the AI's decisions of the last [`LAST_WEEK_DAYS`] simulated days.
    pub last_week: OracleSummary,
    /// Oracle: per simulated day, a sample of that day's AI decisions.
    pub curve: Vec<DayOracle>,
    /// The last model version.
    pub model_version: String,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The use-case file written.
    pub use_case_file: PathBuf,
    /// Oracle: per segment of each category feature, per dimension (and per channel for the other
    /// dimensions), every option's true value, best first: what the report's "what works best"
    /// tables estimate from the data.
    #[serde(skip)]
    pub oracle_segments: Vec<OracleBest>,
    /// The HTML report written at the end (`<out>/report/report.html`), when asked for.
    pub report_file: PathBuf,
    /// The report's data.
    #[serde(skip)]
    pub report: Option<offerloop_report::Report>,
}

/// The oracle's best option of a dimension in a segment.
#[derive(Debug, Clone, PartialEq)]
pub struct OracleBest {
    /// Feature the audience is split by.
    pub feature: String,
    /// Its value.
    pub segment: String,
    /// Dimension.
    pub dimension: String,
    /// `channel=<option>` when restricted to one channel.
    pub given: Option<String>,
    /// `success` (the use case's metric) or `conversion` (conversion probability).
    pub metric: String,
    /// Every option's true value (mean expected reward over the segment's customers and the eligible
    /// joint actions with that option, the other dimensions uniform), best first.
    pub values: Vec<(String, f64)>,
}

/// The simulated clock, as the engine's [`Clock`].
#[derive(Debug)]
struct SimClock(Arc<SimBraze>);

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        self.0.now()
    }
}

/// `text` (a use-case file) with its Braze `endpoint` replaced by `base_url`.
pub fn point_at(text: &str, base_url: &str) -> String {
    let mut done = false;
    let mut out: String = text
        .lines()
        .map(|line| {
            if !done && line.trim_start().starts_with("endpoint =") {
                done = true;
                format!("endpoint = \"{base_url}\"")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    out.push('\n');
    out
}

/// `text` with `[outcomes] currents = "{url}"` appended, unless it already names a Currents bucket.
pub fn with_currents(text: &str, url: &str) -> String {
    if text.lines().any(|l| l.trim() == "[outcomes]") {
        return text.to_owned();
    }
    format!("{text}\n[outcomes]\n# The simulator's Currents connector writes here.\ncurrents = \"{url}\"\n")
}

/// The `file://` URL of directory `dir` (made absolute).
fn file_url(dir: &Path) -> anyhow::Result<String> {
    let absolute = std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
    url::Url::from_directory_path(&absolute)
        .map(String::from)
        .map_err(|()| anyhow::anyhow!("{} cannot be a file:// URL", absolute.display()))
}

/// The demo use case: the shipped win-back example pointed at `base_url`.
pub fn demo_use_case_text(base_url: &str) -> String {
    point_at(USE_CASE, base_url)
}

/// The shipped use case aligned with the scenario named `scenario`: its file name and text.
pub fn use_case_for(scenario: &str) -> Option<(&'static str, &'static str)> {
    WORLDS
        .iter()
        .find(|(name, ..)| *name == scenario)
        .map(|(_, _, file, text)| (*file, *text))
}

/// The first instant at or after `after` whose local time in `zone` is [`RUN_LOCAL_HOUR`]:00.
///
/// # Errors
/// The instant cannot be represented.
pub fn next_run(zone: &TimeZone, after: Timestamp) -> anyhow::Result<Timestamp> {
    let mut date = zone.to_datetime(after).date();
    loop {
        let at = zone.to_timestamp(date.at(RUN_LOCAL_HOUR, 0, 0, 0))?;
        if at >= after {
            return Ok(at);
        }
        date = date.tomorrow()?;
    }
}

/// The scenario the demo runs: the file asked for or the embedded default, with the seed and size.
fn load_scenario(args: &DemoArgs) -> anyhow::Result<Scenario> {
    let mut scenario = match &args.scenario {
        Some(path) => Scenario::from_file(path)?,
        None => Scenario::from_toml_str(SCENARIO, None)?,
    };
    scenario.customers = args.customers;
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    Ok(scenario)
}

/// The use case's file name and text: the file asked for, or the shipped one aligned with `scenario`.
fn load_use_case(args: &DemoArgs, scenario: &Scenario) -> anyhow::Result<(String, String)> {
    match &args.use_case {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let name = path
                .file_name()
                .map_or_else(|| "use-case.toml".to_owned(), |n| n.to_string_lossy().into_owned());
            Ok((name, text))
        }
        None => use_case_for(&scenario.name)
            .map(|(file, text)| (file.to_owned(), text.to_owned()))
            .with_context(|| {
                format!(
                    "no shipped use case is aligned with scenario `{}` (shipped: {}); pass --use-case FILE",
                    scenario.name,
                    WORLDS.iter().map(|w| w.0).collect::<Vec<_>>().join(", ")
                )
            }),
    }
}

/// Runs the demo; `on_day` sees each day's summary.
///
/// # Errors
/// Any failure of the simulator, the engine or the files.
pub async fn run(args: &DemoArgs, mut on_day: impl FnMut(u32, &RunSummary)) -> anyhow::Result<DemoReport> {
    let started = Instant::now();
    let scenario = load_scenario(args)?;
    let (use_case_name, use_case_text) = load_use_case(args, &scenario)?;
    let conversion = scenario.conversion();
    let (scenario_name, seed) = (scenario.name.clone(), scenario.seed);
    let world = World::new(scenario)?;
    if args.out.exists() {
        for stale in [
            "state.db",
            "state.db-wal",
            "state.db-shm",
            "bucket",
            "currents",
            "exports",
        ] {
            let p = args.out.join(stale);
            if p.is_dir() {
                std::fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
            } else if p.exists() {
                std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
            }
        }
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let currents = CurrentsConfig {
        seed,
        ..CurrentsConfig::new(args.out.join("bucket"))
    };
    let bucket_url = file_url(&currents.prefix_dir())?;
    let config = SimConfig {
        currents: Some(currents),
        export_delay: Duration::from_millis(50),
        export_dir: Some(args.out.join("sim-exports")),
        // Braze's limits are per real minute and the demo lives a day in seconds (a use case reading
        // its audience by ids would wait on `/users/export/ids`' 250 a minute): lifted on both sides.
        rate_limits: offerloop_sim::server::ratelimit::RateLimits::unlimited(),
        ..SimConfig::default()
    };
    let sim = Arc::new(SimBraze::start(world, config).await?);
    let key = sim
        .api_keys()
        .into_iter()
        .find(|k| k.permissions.iter().any(|p| p == "*"))
        .map_or_else(|| offerloop_sim::state::DEFAULT_API_KEY.to_string(), |k| k.key);

    let use_case_file = args.out.join(&use_case_name);
    let text = with_currents(&point_at(&use_case_text, &sim.base_url()), &bucket_url);
    std::fs::write(&use_case_file, &text).with_context(|| format!("writing {}", use_case_file.display()))?;
    let use_case = Arc::new(
        offerloop_domain::config::parse_use_case(&text, &use_case_name)
            .map_err(|e| anyhow::anyhow!("the demo use case does not validate: {e:?}"))?,
    );
    let zone = TimeZone::get(&use_case.time_zone).with_context(|| format!("time zone `{}`", use_case.time_zone))?;

    // The key is handed over in-process (the use case names `api_key_env` for real runs; setting an
    // environment variable is unsafe in a multi-threaded process).
    let mut config = BrazeConfig::builder(sim.base_url(), ApiKey::new(key)?);
    for pool in RateLimitPool::ALL {
        let unlimited = RateLimit {
            requests: 1_000_000,
            per: Duration::from_secs(1),
        };
        config = config.rate_limit(pool, unlimited);
    }
    let config = config.build()?;
    let braze: Arc<dyn BrazeApi> = Arc::new(BrazeClient::new(config)?);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&args.out.join("state.db"))?);
    let activator = Arc::new(BrazeActivator::new(braze.clone()));
    let clock: Arc<dyn Clock> = Arc::new(SimClock(sim.clone()));
    let outcomes = Arc::new(CurrentsFeed::open(&bucket_url, store.clone())?);
    let mut report = DemoReport {
        scenario: scenario_name,
        seed,
        use_case: use_case.name.to_string(),
        metric: demo_oracle::metric_label(&use_case.metric),
        run_time: format!("{RUN_LOCAL_HOUR:02}:00 {}", use_case.time_zone),
        days: args.days,
        customers: args.customers,
        use_case_file,
        ..DemoReport::default()
    };
    // The first run at the local run hour (06:00 UTC for the win-back world's New York start).
    let first = next_run(&zone, clock.now())?;
    sim.advance_clock(first - clock.now());
    let first_day = clock.now();
    for day in 0..args.days {
        let date = crate::run_cmd::today(&use_case, clock.now())?;
        if let offerloop_domain::usecase::AudienceSource::IdsFile { path } = &use_case.audience.source {
            write_ids_file(&sim, &args.out.join(path))?;
        }
        let run = DailyRun::builder(use_case.clone(), date)
            .braze(braze.clone())
            .store(store.clone())
            .activator(activator.clone())
            .clock(clock.clone())
            .outcome_source(outcomes.clone())
            .options(RunOptions {
                base_dir: args.out.clone(),
                export_dir: args.out.join("exports"),
                export_poll: ExportPoll::default()
                    .with_initial_delay(Duration::from_millis(20))
                    .with_max_delay(Duration::from_millis(200))
                    .with_timeout(Duration::from_secs(60)),
                progress: if args.progress {
                    std::sync::Arc::new(crate::progress::TerminalProgress)
                } else {
                    offerloop_engine::progress::silent()
                },
                retry_delay: Duration::from_millis(200),
                ..RunOptions::default()
            })
            .build()?;
        let summary = run.execute().await.with_context(|| format!("day {day} ({date})"))?;
        report.decisions += summary.decisions;
        report.messages += summary.messages;
        report.unknown_batches += summary.batches.unknown;
        report.model_version.clone_from(&summary.model_version);
        on_day(day, &summary);
        // The next day's run, at the same local hour (23 or 25 hours later across a DST change).
        let next = next_run(&zone, clock.now() + jiff::SignedDuration::from_hours(1))?;
        sim.advance_clock(next - clock.now());
    }

    let end = clock.now();
    let decisions = store.decisions_between(use_case.name.as_str(), first_day, end)?;
    let rewards = store.rewards_between(use_case.name.as_str(), first_day, end)?;
    let finals: HashMap<&str, f64> = rewards
        .iter()
        .filter(|r| r.status == RewardStatus::Final)
        .map(|r| (r.decision_id.as_str(), r.value))
        .collect();
    let realised = |group: Group| {
        let values: Vec<f64> = decisions
            .iter()
            .filter(|d| d.group == group && offerloop_engine::is_message(&use_case, d))
            .filter_map(|d| finals.get(d.id.as_str()).copied())
            .collect();
        Estimate::of(&values)
    };
    report.treatment = realised(Group::Treatment);
    report.control = realised(Group::Control);
    report.random_control = realised(Group::RandomControl);
    match Valuation::of(&use_case.metric, &conversion) {
        Ok(valuation) => oracle(
            &sim,
            &use_case,
            valuation,
            store.as_ref(),
            &decisions,
            args,
            &mut report,
        )?,
        Err(why) => report.oracle_unavailable = Some(why),
    }

    if args.report {
        // The report, as `offerloop report` writes it, with the simulator's Braze analytics beside it.
        let now = clock.now();
        let mut input = offerloop_report::build::ReportInput::new(&use_case, store.as_ref(), now);
        input.ope.bootstrap_samples = 100;
        input.explain_sample = 200;
        input.braze = crate::report_cmd::braze_side(braze.as_ref(), &use_case, store.as_ref(), None, None, now).await;
        let built = offerloop_report::build::build(&input)?;
        let written = offerloop_report::html::write(&built, &args.out.join("report"))?;
        report.report_file = written.html;
        report.report = Some(built);
    }
    report.seconds = started.elapsed().as_secs_f64();
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

/// For a use case whose audience is a file of external ids (lead nurture: the CRM writes today's open
/// MQLs), the members of the scenario's first segment now, one per line, as the CRM would write them.
fn write_ids_file(sim: &SimBraze, path: &std::path::Path) -> anyhow::Result<()> {
    let ids = {
        let ws = sim.state().lock();
        let segment = ws
            .catalog
            .segments
            .first()
            .context("the scenario declares no segment")?;
        let mut ids = String::new();
        for i in 0..ws.users.len(&ws.world) {
            if segment.spec.contains(&ws.users.profile(&ws.world, i))
                && let Some(id) = ws.users.external_id(&ws.world, i)
            {
                ids.push_str(id);
                ids.push('\n');
            }
        }
        ids
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, ids).with_context(|| format!("writing {}", path.display()))
}

/// The oracle's view of the AI group's decisions (message or "skip"; the rare treatment decisions
/// that send nothing because business as usual was not eligible during a pause are left out): the
/// latest [`ORACLE_SAMPLE`] (the most learned model), a sample of each day's for the learning curve,
/// and those of the last [`LAST_WEEK_DAYS`] days together; plus the true value of every option per
/// segment.
fn oracle(
    sim: &SimBraze,
    use_case: &UseCase,
    valuation: Valuation,
    store: &dyn Store,
    decisions: &[Decision],
    args: &DemoArgs,
    report: &mut DemoReport,
) -> anyhow::Result<()> {
    let curve_sample = args.curve_sample;
    let ai: Vec<&Decision> = decisions
        .iter()
        .filter(|d| d.group == Group::Treatment && d.policy_version != NO_MESSAGE_VERSION)
        .collect();
    // The features and time zone each decision was made with, by run date and customer.
    let mut audience: HashMap<String, (Vec<FeatureValue>, Option<String>)> = HashMap::new();
    let mut dates = Vec::new();
    for run in store.runs(use_case.name.as_str(), 4_000)? {
        dates.push(run.date);
        for row in store.audience(run.id)? {
            let values = AudienceFeatures::from_json(&row.features)?.values;
            audience.insert(format!("{}:{}", run.date, row.customer_id), (values, row.time_zone));
        }
    }
    dates.sort();
    dates.dedup();
    let oracle = {
        let state = sim.state().lock();
        Oracle::new(use_case, &state, valuation, &audience)?
    };

    // The headline: the latest decisions.
    let latest: Vec<&Decision> = ai.iter().rev().take(ORACLE_SAMPLE).copied().collect();
    let scored = oracle.score_all(&latest);
    report.oracle = oracle.summarise(&scored);
    report.oracle_segments = segments(use_case, &scored);

    // The learning curve: a sample of each day's decisions.
    let mut by_date: HashMap<jiff::civil::Date, Vec<&Decision>> = HashMap::new();
    for d in &ai {
        if let Ok(date) = crate::run_cmd::today(use_case, d.decided_at) {
            by_date.entry(date).or_default().push(d);
        }
    }
    let mut last_week: Vec<Scored> = Vec::new();
    let first_of_last_week = dates.len().saturating_sub(LAST_WEEK_DAYS);
    for (i, date) in dates.iter().enumerate() {
        let mut today = by_date.remove(date).unwrap_or_default();
        today.sort_by(|a, b| a.id.cmp(&b.id));
        let sample = demo_oracle::spread(&today, curve_sample);
        let scored = oracle.score_all(&sample);
        let s = demo_oracle::summarise(&scored, |_| String::new());
        report.curve.push(DayOracle {
            day: u32::try_from(i + 1).unwrap_or(u32::MAX),
            date: date.to_string(),
            n: scored.len(),
            ai: s.ai.mean,
            business_as_usual: s.business_as_usual.mean,
            uniform: s.uniform.mean,
            ceiling: s.ceiling.mean,
        });
        if i >= first_of_last_week {
            last_week.extend(scored);
        }
    }
    report.last_week = oracle.summarise(&last_week);
    if let Some(path) = &args.oracle_dump {
        let sample = demo_oracle::spread(&ai, ORACLE_DUMP_SAMPLE);
        write_oracle_dump(use_case, &oracle.score_all(&sample), path)?;
    }
    Ok(())
}

/// AI decisions the oracle dump values, spread over the run.
pub const ORACLE_DUMP_SAMPLE: usize = 4_000;

/// Writes `scored` as JSON lines to `path`: first `{"features": [names], "dims": [[name, [option
/// ids]]]}`, then one line per decision, `{"x": [feature values], "a": [[[option index per dimension],
/// value, P(conversion)], …]}` with every eligible joint action. `xtask/analysis/capacity.py` reads it.
fn write_oracle_dump(use_case: &UseCase, scored: &[Scored], path: &std::path::Path) -> anyhow::Result<()> {
    use std::io::Write as _;
    let space = &use_case.actions;
    let features: Vec<&str> = use_case.features.specs().iter().map(|s| s.name.as_str()).collect();
    let dims: Vec<(&str, Vec<&str>)> = space
        .dimensions()
        .iter()
        .map(|d| (d.name.as_str(), d.options.iter().map(|o| o.id.as_str()).collect()))
        .collect();
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    serde_json::to_writer(&mut out, &serde_json::json!({ "features": features, "dims": dims }))?;
    out.write_all(b"\n")?;
    for s in scored {
        let actions: Vec<serde_json::Value> = s
            .actions
            .iter()
            .filter_map(|(id, value, conversion)| {
                let action = space.decode(offerloop_domain::ActionId(*id)).ok()?;
                Some(serde_json::json!([action.0, value, conversion]))
            })
            .collect();
        serde_json::to_writer(&mut out, &serde_json::json!({ "x": s.features, "a": actions }))?;
        out.write_all(b"\n")?;
    }
    out.flush().with_context(|| format!("writing {}", path.display()))
}

/// Per segment of each category feature, per dimension (and per channel for the other dimensions),
/// every option's true value, best first, over the scored customers' eligible actions.
fn segments(use_case: &UseCase, scored: &[Scored]) -> Vec<OracleBest> {
    let space = &use_case.actions;
    let dims = space.dimensions();
    let channel_dim = dims
        .iter()
        .position(|d| d.kind == offerloop_domain::DimensionKind::Channel);
    // (metric, feature, segment, dimension, given channel option, option) → (sum of values, actions).
    type SegmentKey = (&'static str, String, String, usize, Option<u32>, u32);
    let mut sums: std::collections::BTreeMap<SegmentKey, (f64, f64)> = std::collections::BTreeMap::new();
    for s in scored {
        for (f, spec) in use_case.features.specs().iter().enumerate() {
            let Some(FeatureValue::Category(segment)) = s.features.get(f) else {
                continue;
            };
            for (id, v, c) in &s.actions {
                let Ok(a) = space.decode(offerloop_domain::ActionId(*id)) else {
                    continue;
                };
                let channel = channel_dim.and_then(|c| a.0.get(c).copied());
                for (d, &o) in a.0.iter().enumerate() {
                    let mut givens = vec![None];
                    if Some(d) != channel_dim {
                        givens.push(channel);
                    }
                    for given in givens {
                        for (metric, x) in [("success", *v), ("conversion", *c)] {
                            let e = sums
                                .entry((metric, spec.name.to_string(), segment.clone(), d, given, o))
                                .or_insert((0.0, 0.0));
                            e.0 += x;
                            e.1 += 1.0;
                        }
                    }
                }
            }
        }
    }
    type GroupKey = (&'static str, String, String, usize, Option<u32>);
    let mut grouped: std::collections::BTreeMap<GroupKey, Vec<(String, f64)>> = std::collections::BTreeMap::new();
    for ((metric, feature, segment, d, given, o), (sum, n)) in sums {
        let option = dims[d]
            .options
            .get(o as usize)
            .map(|x| x.id.to_string())
            .unwrap_or_default();
        grouped
            .entry((metric, feature, segment, d, given))
            .or_default()
            .push((option, sum / n));
    }
    grouped
        .into_iter()
        .map(|((metric, feature, segment, d, given), mut values)| {
            values.sort_by(|a, b| b.1.total_cmp(&a.1));
            let given = given.and_then(|c| {
                let cd = &dims[channel_dim?];
                Some(format!("{}={}", cd.name, cd.options.get(c as usize)?.id))
            });
            OracleBest {
                metric: metric.to_owned(),
                feature,
                segment,
                dimension: dims[d].name.to_string(),
                given,
                values,
            }
        })
        .collect()
}

fn line(out: &mut String, label: &str, e: &Estimate) {
    let _ = writeln!(
        out,
        "  {label:<38} {:>9.3} ± {:<7.3} (n = {})",
        e.mean, e.half_width, e.n
    );
}

fn oracle_block(out: &mut String, s: &OracleSummary) {
    line(out, "AI's actions", &s.ai);
    line(out, "business as usual", &s.business_as_usual);
    line(out, "uniform random (A/B test exploration)", &s.uniform);
    let _ = writeln!(
        out,
        "  {:<38} {:>9.3}   ({})",
        "best single action (ideal A/B winner)", s.single_best, s.single_best_action
    );
    line(out, "best action per customer (ceiling)", &s.ceiling);
}

/// `x` with three decimals, or `–` when it is not a number.
fn num(x: Option<f64>, decimals: usize) -> String {
    x.filter(|v| v.is_finite())
        .map_or_else(|| "–".to_owned(), |v| format!("{v:.decimals$}"))
}

/// The report for people.
pub fn render(r: &DemoReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "offerloop demo: {} simulated days, {} customers, {} decisions, {} messages ({:.1} s)",
        r.days, r.customers, r.decisions, r.messages, r.seconds
    );
    let _ = writeln!(
        out,
        "world: {} (seed {}), each day's run at {}",
        r.scenario, r.seed, r.run_time
    );
    let _ = writeln!(
        out,
        "use case: {}   model: {}",
        r.use_case_file.display(),
        r.model_version
    );
    let _ = writeln!(out, "\nrealised reward per message ({}; final rewards only):", r.metric);
    line(&mut out, "AI (treatment)", &r.treatment);
    line(&mut out, "business as usual (control)", &r.control);
    line(&mut out, "uniform random (A/B exploration arm)", &r.random_control);
    let uplift = r.treatment.minus(&r.control);
    let verdict = if uplift.mean - uplift.half_width > 0.0 {
        "the 95 % interval excludes zero"
    } else {
        "not significant yet: run more days or customers"
    };
    let _ = writeln!(
        out,
        "  {:<38} {:>9.3} ± {:<7.3} {verdict}",
        "uplift AI − control", uplift.mean, uplift.half_width
    );
    if let Some(why) = &r.oracle_unavailable {
        let _ = writeln!(out, "\noracle: not available for this metric: {why}");
    } else {
        let _ = writeln!(
            out,
            "\noracle (simulator's true model, expected {} per message, same customers):",
            r.metric
        );
        oracle_block(&mut out, &r.oracle);
        let _ = writeln!(
            out,
            "\noracle, the last {} days' AI decisions (a sample of up to {} a day):",
            LAST_WEEK_DAYS.min(r.curve.len()),
            r.curve.iter().map(|d| d.n).max().unwrap_or(0)
        );
        oracle_block(&mut out, &r.last_week);
        let _ = writeln!(
            out,
            "  {:<38} {:>8} %",
            "score (AI − uniform) / (ceiling − uniform)",
            num(r.last_week.score(), 1)
        );
        let _ = writeln!(
            out,
            "\nlearning curve (oracle, each day's AI decisions; score = (AI − uniform) / (ceiling − uniform)):"
        );
        let _ = writeln!(
            out,
            "  {:>3}  {:<10}  {:>4}  {:>9}  {:>9}  {:>9}  {:>9}  {:>7}",
            "day", "date", "n", "AI", "BAU", "uniform", "ceiling", "score"
        );
        for d in &r.curve {
            if d.n == 0 {
                let _ = writeln!(out, "  {:>3}  {:<10}  {:>4}  no AI decision that day", d.day, d.date, 0);
                continue;
            }
            let _ = writeln!(
                out,
                "  {:>3}  {:<10}  {:>4}  {:>9.3}  {:>9.3}  {:>9.3}  {:>9.3}  {:>6} %",
                d.day,
                d.date,
                d.n,
                d.ai,
                d.business_as_usual,
                d.uniform,
                d.ceiling,
                num(d.score(), 0)
            );
        }
    }
    if r.unknown_batches > 0 {
        let _ = writeln!(out, "\n{} batch(es) of unknown fate (not resent)", r.unknown_batches);
    }
    if !r.report_file.as_os_str().is_empty() {
        let _ = writeln!(out, "\nreport: {}", r.report_file.display());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_and_differences() {
        let e = Estimate::of(&[1.0, 2.0, 3.0]);
        assert_eq!((e.n, e.mean), (3, 2.0));
        assert!((e.half_width - 1.96 * (1.0f64 / 3.0).sqrt()).abs() < 1e-12);
        let d = e.minus(&Estimate::of(&[0.0, 0.0]));
        assert_eq!(d.mean, 2.0);
        assert_eq!(Estimate::of(&[]), Estimate::default());
    }

    #[test]
    fn the_demo_use_case_points_at_the_simulator_and_validates() {
        let text = demo_use_case_text("http://127.0.0.1:4321");
        assert!(text.contains("endpoint = \"http://127.0.0.1:4321\""));
        let uc = offerloop_domain::config::parse_use_case(&text, "demo.toml").unwrap();
        assert_eq!(uc.braze.endpoint, "http://127.0.0.1:4321");
        assert!(Scenario::from_toml_str(SCENARIO, None).is_ok());
    }

    #[test]
    fn every_shipped_scenario_has_its_use_case_and_the_oracle_values_its_metric() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sim/scenarios");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        assert_eq!(files.len(), WORLDS.len(), "every scenario file is embedded");
        for file in files {
            let scenario = Scenario::from_file(&file).unwrap();
            let (name, text) = use_case_for(&scenario.name).unwrap_or_else(|| panic!("{}", file.display()));
            let embedded = WORLDS.iter().find(|w| w.0 == scenario.name).unwrap().1;
            assert_eq!(embedded, std::fs::read_to_string(&file).unwrap());
            let uc = offerloop_domain::config::parse_use_case(&point_at(text, "http://127.0.0.1:1"), name).unwrap();
            assert_eq!(uc.braze.endpoint, "http://127.0.0.1:1", "{name}");
            let valuation = Valuation::of(&uc.metric, &scenario.conversion());
            assert!(valuation.is_ok(), "{name}: {valuation:?}");
        }
        assert!(use_case_for("nowhere").is_none());
    }

    #[test]
    fn runs_start_at_the_local_run_hour() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let ny = TimeZone::get("America/New_York").unwrap();
        // The simulator starts at 00:00 UTC = 19:00 the evening before in New York.
        assert_eq!(
            next_run(&ny, at("2026-01-05T00:00:00Z")).unwrap(),
            at("2026-01-05T06:00:00Z")
        );
        let sydney = TimeZone::get("Australia/Sydney").unwrap();
        // 11:00 in Sydney: the next 01:00 is tomorrow's (UTC+11 in January).
        assert_eq!(
            next_run(&sydney, at("2026-01-05T00:00:00Z")).unwrap(),
            at("2026-01-05T14:00:00Z")
        );
        // Across a DST change the run stays at 01:00 local: 23 hours apart in March.
        let before = next_run(&ny, at("2026-03-08T06:00:00Z")).unwrap();
        let after = next_run(&ny, before + jiff::SignedDuration::from_hours(1)).unwrap();
        assert_eq!(after - before, jiff::SignedDuration::from_hours(23));
    }
}
