//! `offerloop demo`: the whole loop on the simulated world, end to end over HTTP.
//!
//! It starts [`SimBraze`] on the default scenario (embedded, so an installed binary has it), writes a
//! ready use case for it (the shipped `examples/winback.toml` pointed at the simulator), and runs one
//! [`DailyRun`] per simulated day through the real [`BrazeClient`], the SQLite store and the Braze
//! activator, reading outcomes from the simulator's Currents feed. Then it compares the groups:
//! realised reward per decision of the AI (treatment) group against the business-as-usual control and
//! the uniformly random control (what an A/B test's exploration arm earns), with a 95 % interval on
//! the uplift; and, from the simulator's oracle (which only the demo may read), the expected value of
//! the AI's actions against business as usual, uniform exploration, the best single action an ideal
//! A/B test would roll out, and the best action per customer, the ceiling.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use jiff::{SignedDuration, Timestamp};
use offerloop_activation::BrazeActivator;
use offerloop_braze::export::ExportPoll;
use offerloop_braze::{ApiKey, BrazeApi, BrazeClient, BrazeConfig};
use offerloop_domain::dimension::OptionPayload;
use offerloop_domain::{Decision, FeatureValue, Group, JointAction, RewardStatus, UseCase};
use offerloop_engine::{AudienceFeatures, Clock, CurrentsDirectory, DailyRun, RunOptions, RunSummary};
use offerloop_sim::world::Delivery;
use offerloop_sim::{Scenario, SimBraze, SimConfig, World};
use offerloop_store::{SqliteStore, Store};

/// The default scenario, embedded.
pub const SCENARIO: &str = include_str!("../../sim/scenarios/winback.toml");
/// The use case the demo starts from, embedded.
pub const USE_CASE: &str = include_str!("../../../examples/winback.toml");
/// Decisions per group the oracle is evaluated on (every eligible joint action each).
const ORACLE_SAMPLE: usize = 1_500;

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
}

/// Mean and 95 % half-width of one group's rewards.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
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

/// The demo's result.
#[derive(Debug, Clone, Default)]
pub struct DemoReport {
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
    /// Final realised reward per decision: AI group.
    pub treatment: Estimate,
    /// Business-as-usual control.
    pub control: Estimate,
    /// Uniformly random control.
    pub random_control: Estimate,
    /// Oracle: expected reward of the AI group's actions.
    pub oracle_treatment: Estimate,
    /// Oracle: expected reward of the business-as-usual action for the same customers.
    pub oracle_control: Estimate,
    /// Oracle: expected reward of uniformly random eligible actions for the same customers.
    pub oracle_random: Estimate,
    /// Oracle: the best eligible action per customer, the ceiling.
    pub oracle_best: Estimate,
    /// Oracle: the best single joint action for everyone (business as usual where it is not
    /// eligible): what an ideal A/B test would roll out.
    pub oracle_single_best: f64,
    /// The last model version.
    pub model_version: String,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The use-case file written.
    pub use_case_file: PathBuf,
    /// Oracle: per segment of each category feature, per dimension (and per channel for the other
    /// dimensions), every option's true value, best first: what the report's "what works best"
    /// tables estimate from the data.
    pub oracle_segments: Vec<OracleBest>,
    /// The HTML report written at the end (`<out>/report/report.html`).
    pub report_file: PathBuf,
    /// The report's data.
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
    /// `success` (expected revenue − cost) or `conversion` (conversion probability).
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

/// The demo use case: the shipped win-back example pointed at `base_url`.
pub fn demo_use_case_text(base_url: &str) -> String {
    USE_CASE.replace(
        "endpoint = \"https://rest.iad-01.braze.com\"",
        &format!("endpoint = \"{base_url}\""),
    )
}

/// Runs the demo; `on_day` sees each day's summary.
///
/// # Errors
/// Any failure of the simulator, the engine or the files.
pub async fn run(args: &DemoArgs, mut on_day: impl FnMut(u32, &RunSummary)) -> anyhow::Result<DemoReport> {
    let started = Instant::now();
    let mut scenario = Scenario::from_toml_str(SCENARIO, None)?;
    scenario.customers = args.customers;
    let world = World::new(scenario)?;
    if args.out.exists() {
        for stale in ["state.db", "state.db-wal", "state.db-shm", "currents", "exports"] {
            let p = args.out.join(stale);
            if p.is_dir() {
                std::fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
            } else if p.exists() {
                std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
            }
        }
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let currents = args.out.join("currents");
    let config = SimConfig {
        currents_dir: Some(currents.clone()),
        export_delay: Duration::from_millis(50),
        export_dir: Some(args.out.join("sim-exports")),
        ..SimConfig::default()
    };
    let sim = Arc::new(SimBraze::start(world, config).await?);
    let key = sim
        .api_keys()
        .into_iter()
        .find(|k| k.permissions.iter().any(|p| p == "*"))
        .map_or_else(|| offerloop_sim::state::DEFAULT_API_KEY.to_string(), |k| k.key);

    let use_case_file = args.out.join("winback.toml");
    let text = demo_use_case_text(&sim.base_url());
    std::fs::write(&use_case_file, &text).with_context(|| format!("writing {}", use_case_file.display()))?;
    let use_case = Arc::new(
        offerloop_domain::config::parse_use_case(&text, "winback.toml")
            .map_err(|e| anyhow::anyhow!("the demo use case does not validate: {e:?}"))?,
    );

    // The key is handed over in-process (the use case names `api_key_env` for real runs; setting an
    // environment variable is unsafe in a multi-threaded process).
    let config = BrazeConfig::builder(sim.base_url(), ApiKey::new(key)?).build()?;
    let braze: Arc<dyn BrazeApi> = Arc::new(BrazeClient::new(config)?);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&args.out.join("state.db"))?);
    let activator = Arc::new(BrazeActivator::new(braze.clone()));
    let clock: Arc<dyn Clock> = Arc::new(SimClock(sim.clone()));
    let outcomes = Arc::new(CurrentsDirectory::new(&currents));
    // Run at 06:00 UTC (01:00 in New York) so the day's local send times are ahead.
    sim.advance_clock(SignedDuration::from_hours(6));
    let mut report = DemoReport {
        days: args.days,
        customers: args.customers,
        use_case_file,
        ..DemoReport::default()
    };
    let first_day = clock.now();
    for day in 0..args.days {
        let date = crate::run_cmd::today(&use_case, clock.now())?;
        let run = DailyRun::builder(use_case.clone(), date)
            .braze(braze.clone())
            .store(store.clone())
            .activator(activator.clone())
            .clock(clock.clone())
            .outcome_source(outcomes.clone())
            .options(RunOptions {
                export_dir: args.out.join("exports"),
                export_poll: ExportPoll::default()
                    .with_initial_delay(Duration::from_millis(20))
                    .with_max_delay(Duration::from_millis(200))
                    .with_timeout(Duration::from_secs(60)),
                progress: args.progress,
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
        sim.advance_clock(SignedDuration::from_hours(24));
    }

    let end = clock.now();
    let decisions = store.decisions_between(use_case.name.as_str(), first_day, end)?;
    let rewards = store.rewards_between(use_case.name.as_str(), first_day, end)?;
    let finals: std::collections::HashMap<&str, f64> = rewards
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
    oracle(&sim, &use_case, store.as_ref(), &decisions, &mut report)?;

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
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The oracle's view: for the AI group's latest decisions (the most learned model), the expected reward (revenue within
/// the horizon minus the options' cost) of the action taken, of business as usual, of a uniformly
/// random eligible action, and of the best eligible action.
fn oracle(
    sim: &SimBraze,
    use_case: &UseCase,
    store: &dyn Store,
    decisions: &[Decision],
    report: &mut DemoReport,
) -> anyhow::Result<()> {
    let space = &use_case.actions;
    let setup = offerloop_policy::Setup::from_use_case(use_case)?;
    let bau = setup.business_as_usual().cloned();
    let treated: Vec<&Decision> = decisions
        .iter()
        .rev()
        .filter(|d| d.group == Group::Treatment && offerloop_engine::is_message(use_case, d))
        .take(ORACLE_SAMPLE)
        .collect();
    // The features each decision was made with, by run.
    let mut features: std::collections::HashMap<String, Vec<FeatureValue>> = std::collections::HashMap::new();
    let mut zones: std::collections::HashMap<String, Option<String>> = std::collections::HashMap::new();
    for run in store.runs(use_case.name.as_str(), 400)? {
        for row in store.audience(run.id)? {
            let key = format!("{}:{}", run.date, row.customer_id);
            features.insert(key.clone(), AudienceFeatures::from_json(&row.features)?.values);
            zones.insert(key, row.time_zone);
        }
    }
    let state = sim.state().lock();
    let world = &state.world;
    let (mut taken, mut control, mut random, mut best) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut single: Vec<(u64, f64)> = space.iter().map(|(id, _)| (id.0, 0.0)).collect();
    let mut customers_seen = 0usize;
    let dims = space.dimensions();
    let channel_dim = dims
        .iter()
        .position(|d| d.kind == offerloop_domain::DimensionKind::Channel);
    // (feature, segment, dimension, given channel option, option) → (sum of values, actions).
    type SegmentKey = (&'static str, String, String, usize, Option<u32>, u32);
    let mut segments: std::collections::BTreeMap<SegmentKey, (f64, f64)> = std::collections::BTreeMap::new();
    for d in treated {
        let date = d.id.split(':').nth(1).unwrap_or_default().to_owned();
        let key = format!("{date}:{}", d.customer_id);
        let (Some(values), Some(index)) = (features.get(&key), world.index_of(d.customer_id.as_str())) else {
            continue;
        };
        let zone = zones
            .get(&key)
            .cloned()
            .flatten()
            .unwrap_or_else(|| use_case.time_zone.clone());
        let Ok(day) = date.parse::<jiff::civil::Date>() else {
            continue;
        };
        let value = |action: &JointAction| -> Option<f64> {
            let delivery = delivery(use_case, action, day, &zone)?;
            let e = world.expected(index, &delivery);
            Some(e.revenue - setup.cost(action))
        };
        let conversion = |action: &JointAction| -> Option<f64> {
            let delivery = delivery(use_case, action, day, &zone)?;
            Some(world.expected(index, &delivery).convert)
        };
        let mask = space.eligibility_mask(values);
        let scored: Vec<(u64, f64)> = space
            .iter_for(mask)
            .filter_map(|(id, a)| Some((id.0, value(&a)?)))
            .collect();
        for (f, spec) in use_case.features.specs().iter().enumerate() {
            let Some(FeatureValue::Category(segment)) = values.get(f) else {
                continue;
            };
            for (id, v) in &scored {
                let Ok(a) = space.decode(offerloop_domain::ActionId(*id)) else {
                    continue;
                };
                let Some(c) = conversion(&a) else { continue };
                let channel = channel_dim.and_then(|c| a.0.get(c).copied());
                for (d, &o) in a.0.iter().enumerate() {
                    let mut givens = vec![None];
                    if Some(d) != channel_dim {
                        givens.push(channel);
                    }
                    for given in givens {
                        for (metric, x) in [("success", *v), ("conversion", c)] {
                            let e = segments
                                .entry((metric, spec.name.to_string(), segment.clone(), d, given, o))
                                .or_insert((0.0, 0.0));
                            e.0 += x;
                            e.1 += 1.0;
                        }
                    }
                }
            }
        }
        let all: Vec<f64> = scored.iter().map(|(_, v)| *v).collect();
        let (Ok(action), false) = (space.decode(d.action), all.is_empty()) else {
            continue;
        };
        let (Some(v), Some(b)) = (value(&action), bau.as_ref().and_then(&value)) else {
            continue;
        };
        taken.push(v);
        control.push(b);
        // For the single best action: every action's value for this customer, business as usual
        // where the action is not eligible.
        customers_seen += 1;
        let by_id: std::collections::HashMap<u64, f64> = scored.iter().copied().collect();
        for (id, total) in &mut single {
            *total += by_id.get(id).copied().unwrap_or(b);
        }
        random.push(all.iter().sum::<f64>() / all.len() as f64);
        best.push(all.iter().copied().fold(f64::NEG_INFINITY, f64::max));
    }
    type GroupKey = (&'static str, String, String, usize, Option<u32>);
    let mut grouped: std::collections::BTreeMap<GroupKey, Vec<(String, f64)>> = std::collections::BTreeMap::new();
    for ((metric, feature, segment, d, given, o), (sum, n)) in segments {
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
    report.oracle_segments = grouped
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
        .collect();
    report.oracle_treatment = Estimate::of(&taken);
    report.oracle_control = Estimate::of(&control);
    report.oracle_random = Estimate::of(&random);
    report.oracle_best = Estimate::of(&best);
    if customers_seen > 0 {
        report.oracle_single_best = single
            .iter()
            .map(|(_, total)| total / customers_seen as f64)
            .fold(f64::NEG_INFINITY, f64::max);
    }
    Ok(())
}

/// The simulator delivery of a joint action sent on `day` in `zone` (as the activator sends it:
/// the channel's campaign, the other dimensions as properties, at the local send time).
fn delivery(use_case: &UseCase, action: &JointAction, day: jiff::civil::Date, zone: &str) -> Option<Delivery> {
    let mut properties = serde_json::Map::new();
    let mut channel = None;
    let mut campaign_id = None;
    let mut canvas_id = None;
    let mut local = jiff::civil::Time::constant(9, 0, 0, 0);
    for (dim, &o) in use_case.actions.dimensions().iter().zip(&action.0) {
        let option = dim.options.get(o as usize)?;
        match &option.payload {
            OptionPayload::Channel { channel: c, target } => {
                channel = serde_json::from_value(serde_json::Value::String(c.as_str().to_owned())).ok();
                match target {
                    offerloop_domain::MessageTarget::Campaign(id) => campaign_id = Some(id.clone()),
                    offerloop_domain::MessageTarget::Canvas(id) => canvas_id = Some(id.clone()),
                }
                continue;
            }
            OptionPayload::SendTime { local_time } => {
                local = jiff::civil::Time::new(local_time.hour() as i8, local_time.minute() as i8, 0, 0).ok()?;
            }
            _ => {}
        }
        for (k, v) in &option.properties {
            properties.insert(k.clone(), v.clone());
        }
        properties.insert(dim.name.to_string(), serde_json::Value::String(option.id.to_string()));
    }
    let tz = jiff::tz::TimeZone::get(zone).ok()?;
    let at = tz.to_timestamp(day.to_datetime(local)).ok()?;
    Some(Delivery {
        channel: channel?,
        campaign_id,
        canvas_id,
        properties,
        at,
        recent_sends: 0,
    })
}

fn line(out: &mut String, label: &str, e: &Estimate) {
    let _ = writeln!(
        out,
        "  {label:<38} {:>9.3} ± {:<7.3} (n = {})",
        e.mean, e.half_width, e.n
    );
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
        "use case: {}   model: {}",
        r.use_case_file.display(),
        r.model_version
    );
    let _ = writeln!(
        out,
        "\nrealised reward per message (revenue in 14 days − offer cost; final rewards only):"
    );
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
    let _ = writeln!(
        out,
        "\noracle (simulator's true model, expected value per message, same customers):"
    );
    line(&mut out, "AI's actions", &r.oracle_treatment);
    line(&mut out, "business as usual", &r.oracle_control);
    line(&mut out, "uniform random (A/B test exploration)", &r.oracle_random);
    let _ = writeln!(
        out,
        "  {:<38} {:>9.3}",
        "best single action (ideal A/B winner)", r.oracle_single_best
    );
    line(&mut out, "best action per customer (ceiling)", &r.oracle_best);
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
}
