//! The report's data: what `report.json` holds and what `report.html` draws. Its shape is the crate's
//! API boundary and is versioned ([`REPORT_VERSION`]); a field is only ever added.
//!
//! Every interval is a 95 % confidence interval; the `method` texts beside them say how it was
//! computed (the statistics are in [`crate::stats`]).

use serde::{Deserialize, Serialize};

/// Version of the JSON shape.
pub const REPORT_VERSION: u32 = 1;

/// Group names as they appear in the report (the domain's `Group`, snake case).
pub const TREATMENT: &str = "treatment";
/// Business as usual.
pub const CONTROL: &str = "control";
/// Uniformly random over the eligible actions.
pub const RANDOM_CONTROL: &str = "random_control";

/// A whole report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// The use case's name.
    pub use_case: String,
    /// When it was built (RFC 3339).
    pub generated_at: String,
    /// Decision dates covered, inclusive (`YYYY-MM-DD`).
    pub from: String,
    /// Last decision date covered, inclusive.
    pub to: String,
    /// The success metric.
    pub metric: MetricInfo,
    /// The numbers people look at first.
    pub headline: Headline,
    /// Groups compared on the success metric and the guardrail metrics.
    pub performance: Vec<MetricPerformance>,
    /// Off-policy estimates of alternative policies.
    pub what_if: WhatIf,
    /// What was learned about who prefers what.
    pub insights: Insights,
    /// Drift alerts and the run timeline.
    pub drift: Drift,
    /// Braze's own analytics for the activated campaigns and canvases, beside offerloop's numbers.
    pub braze: BrazeSide,
    /// Caveats worth reading (small samples, pending rewards, missing Braze data...).
    pub notes: Vec<String>,
}

/// The success metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricInfo {
    /// `conversion`, `revenue`, `arpu`, `renewal`, `npv`... (the use case's metric kind).
    pub kind: String,
    /// For people: "revenue in 14 days − offer cost".
    pub label: String,
    /// Attribution window in days.
    pub window_days: u32,
}

/// A point estimate with its 95 % interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Point estimate.
    pub estimate: f64,
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

impl Interval {
    /// Whether the interval contains zero.
    pub fn includes_zero(&self) -> bool {
        self.low <= 0.0 && 0.0 <= self.high
    }
}

/// One group's results on one metric (final rewards only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    /// [`TREATMENT`], [`CONTROL`] or [`RANDOM_CONTROL`].
    pub group: String,
    /// Decisions with a final value.
    pub n: u64,
    /// Raw mean per decision, with its interval (normal approximation).
    pub mean: Interval,
    /// Inverse propensity (Horvitz–Thompson) estimate of the mean per decision had the whole audience
    /// been in this group: each decision weighted by 1 / (group share × logged action propensity) ×
    /// the group policy's own probability of the action, i.e. 1 / group share.
    pub ips: Option<Interval>,
    /// The self-normalised (Hájek) version of `ips`.
    pub snips: Option<Interval>,
}

/// A difference between two groups' means.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Uplift {
    /// Metric key (as in [`MetricPerformance::metric`]).
    pub metric: String,
    /// The group compared (usually [`TREATMENT`]).
    pub group: String,
    /// The baseline ([`CONTROL`] or [`RANDOM_CONTROL`]).
    pub baseline: String,
    /// `mean(group) − mean(baseline)` with its interval.
    pub difference: Interval,
    /// `difference / |mean(baseline)|`, when the baseline is not zero.
    pub relative: Option<f64>,
    /// How the interval was computed, e.g. "delta method (Welch standard error), normal 95 %".
    pub method: String,
    /// Whether the interval includes zero (so the uplift is not yet shown).
    pub includes_zero: bool,
    /// A sentence for people when the interval includes zero (or the samples are too small).
    pub note: Option<String>,
}

/// The numbers people look at first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    /// Treatment vs control on the success metric, cumulative over the period.
    pub uplift: Uplift,
    /// Distinct customers decided for.
    pub customers: u64,
    /// Decisions (all groups).
    pub decisions: u64,
    /// Decisions that sent a message.
    pub messages: u64,
    /// Daily runs in the period.
    pub runs: u64,
    /// Decisions whose reward is final (the window has closed).
    pub final_rewards: u64,
    /// Decisions whose reward is still pending.
    pub pending_rewards: u64,
    /// The model version now deciding.
    pub model_version: Option<String>,
}

/// One metric across groups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricPerformance {
    /// Key: `success` (the use case's metric), `conversion`, `revenue`, `unsubscribe`.
    pub metric: String,
    /// For people.
    pub label: String,
    /// A guardrail metric (watched, not optimised).
    pub guardrail: bool,
    /// Cumulative per group over the period.
    pub groups: Vec<GroupStats>,
    /// Treatment − control, cumulative.
    pub uplift_vs_control: Option<Uplift>,
    /// Treatment − random control, cumulative.
    pub uplift_vs_random: Option<Uplift>,
    /// Per decision date.
    pub daily: Vec<DailyPoint>,
}

/// One decision date of one metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DailyPoint {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// That day's decisions per group.
    pub groups: Vec<DailyGroup>,
    /// Treatment − control over every decision up to and including this date.
    pub cumulative_uplift: Option<Interval>,
}

/// One group on one day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DailyGroup {
    /// Group name.
    pub group: String,
    /// Decisions of the day with a final value.
    pub n: u64,
    /// Their mean.
    pub mean: f64,
    /// Mean over every decision up to and including the day, with its interval.
    pub cumulative: Interval,
}

/// Off-policy estimates of alternative policies on the logged data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WhatIf {
    /// Logged decisions used (treatment and random control, final rewards).
    pub samples: u64,
    /// How to read the numbers (estimators, interval method).
    pub method: String,
    /// One row per policy.
    pub policies: Vec<PolicyEstimate>,
}

/// One alternative policy's estimated value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyEstimate {
    /// `current`, `business_as_usual`, `best_static`, `uniform`.
    pub kind: String,
    /// For people: "current policy (lin_ts/14)", "best single action: offer=pct20, channel=sms, ...".
    pub name: String,
    /// One estimate per estimator.
    pub estimates: Vec<EstimateRow>,
}

/// One estimator's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EstimateRow {
    /// `ips`, `snips`, `dm`, `dr`, `sndr`.
    pub estimator: String,
    /// Value per decision with its bootstrap interval.
    pub value: Interval,
    /// Kish effective sample size of the importance weights (`(Σw)² / Σw²`).
    pub effective_sample_size: f64,
}

/// What was learned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Insights {
    /// Per dimension: each option's share of the treatment group's messages, per decision date.
    pub option_shares: Vec<OptionShares>,
    /// Per-option feature effects from the model.
    pub feature_effects: Vec<FeatureEffect>,
    /// Per segmenting feature: preferred options and uplift per segment.
    pub segments: Vec<SegmentTable>,
    /// Mean final reward of the treatment and control groups per decision date.
    pub learning_curve: Vec<LearningPoint>,
}

/// One dimension's option shares over time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptionShares {
    /// Dimension name.
    pub dimension: String,
    /// Decision dates (`YYYY-MM-DD`), the x axis.
    pub dates: Vec<String>,
    /// One line per option.
    pub options: Vec<OptionShareLine>,
}

/// One option's share on each date (0–1; same length as [`OptionShares::dates`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptionShareLine {
    /// Option id.
    pub option: String,
    /// Share of the day's treatment messages.
    pub shares: Vec<f64>,
}

/// How much a feature pushes an option's score, on average over the audience.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureEffect {
    /// Dimension.
    pub dimension: String,
    /// Option.
    pub option: String,
    /// Feature (or feature=value for a category).
    pub feature: String,
    /// Mean contribution to the option's score relative to the dimension's average option (in reward
    /// units); positive favours the option.
    pub effect: f64,
}

/// One segmenting feature's table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentTable {
    /// The feature the audience is split by (a category, or a number split into bands).
    pub feature: String,
    /// One row per segment.
    pub rows: Vec<SegmentRow>,
}

/// One segment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentRow {
    /// The segment's value ("gold", "30–90 days", ...).
    pub segment: String,
    /// Customers in it (distinct, over the period).
    pub customers: u64,
    /// Per dimension, the option the policy chose most for the segment's treated customers, with its
    /// share (over the last week of the period, once learning has settled).
    pub preferred: Vec<PreferredOption>,
    /// Treatment − control on the success metric within the segment.
    pub uplift: Option<Interval>,
    /// What the data say works best in the segment, whatever the policy chose: per dimension (and,
    /// for the other dimensions, per channel), the option with the highest estimated value.
    #[serde(default)]
    pub best: Vec<EstimatedBest>,
}

/// The option with the highest estimated value in a segment.
///
/// The value of option `o` of a dimension is the self-normalised (Hájek) inverse-propensity estimate
/// over the segment's treatment and random-control decisions that chose `o`, each weighted by
/// 1 / its logged propensity: the mean reward of `o` with the other dimensions' options averaged
/// uniformly over what was eligible.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EstimatedBest {
    /// The metric estimated: `success` (the use case's) or `conversion`.
    pub metric: String,
    /// Dimension.
    pub dimension: String,
    /// A condition, e.g. `channel=sms`, when the estimate is restricted to decisions with it.
    pub given: Option<String>,
    /// The best option.
    pub option: String,
    /// Its estimated value per decision, with its interval.
    pub value: Interval,
    /// Every option's estimate, best first: (option, value, decisions).
    pub options: Vec<OptionValue>,
}

/// One option's estimated value in a segment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptionValue {
    /// Option id.
    pub option: String,
    /// Estimated value per decision.
    pub value: f64,
    /// Decisions behind it.
    pub n: u64,
}

/// The option chosen most in a segment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PreferredOption {
    /// Dimension.
    pub dimension: String,
    /// Option.
    pub option: String,
    /// Its share of the segment's treatment messages.
    pub share: f64,
}

/// One point of the learning curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LearningPoint {
    /// Decision date.
    pub date: String,
    /// Treatment's mean final reward of that day's decisions.
    pub treatment: Option<f64>,
    /// Control's.
    pub control: Option<f64>,
    /// Random control's.
    pub random_control: Option<f64>,
}

/// Drift alerts and what happened around them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// The policy's alerts in the period.
    pub alerts: Vec<DriftAlert>,
    /// Runs, model versions, configuration changes and alerts by date.
    pub timeline: Vec<TimelineEvent>,
}

/// One drift alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftAlert {
    /// When it was detected (RFC 3339).
    pub detected_at: String,
    /// Dimension, when the alert is about one.
    pub dimension: Option<String>,
    /// Option, when the alert is about one.
    pub option: Option<String>,
    /// Size of the change.
    pub magnitude: f64,
}

/// One event of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// `run`, `model`, `drift`, `config`.
    pub kind: String,
    /// For people.
    pub label: String,
}

/// Braze's analytics beside offerloop's numbers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BrazeSide {
    /// Why there is nothing (no key, a refused permission...), when there is nothing.
    pub note: Option<String>,
    /// One entry per activated campaign or canvas.
    pub series: Vec<BrazeSeries>,
}

/// One campaign's or canvas's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BrazeSeries {
    /// `campaign` or `canvas`.
    pub kind: String,
    /// API identifier.
    pub id: String,
    /// Name, when Braze gave one.
    pub name: Option<String>,
    /// Messages Braze reports sent in the period.
    pub braze_sent: u64,
    /// Conversions Braze reports (its own conversion events).
    pub braze_conversions: u64,
    /// Revenue Braze reports, when it does.
    pub braze_revenue: Option<f64>,
    /// Messages offerloop sent to it in the period (from its ledger).
    pub offerloop_messages: u64,
    /// Per day.
    pub days: Vec<BrazeDay>,
}

/// One day of Braze figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BrazeDay {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Sent.
    pub sent: u64,
    /// Conversions.
    pub conversions: u64,
    /// Revenue, when reported.
    pub revenue: Option<f64>,
}
