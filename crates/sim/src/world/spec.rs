//! The scenario file format as serde types (what a `crates/sim/scenarios/*.toml` file may contain).
//! Every table denies unknown keys. These raw types are validated and resolved into the
//! [`Model`](super::model::Model) by [`Scenario::from_toml_str`](super::Scenario::from_toml_str);
//! `docs/simulator.md` documents the format with examples.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::state::WorkspaceSpec;
use crate::world::Channel;

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScenarioFile {
    /// Scenario name.
    #[serde(default = "default_name")]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Seed of everything random.
    #[serde(default)]
    pub seed: u64,
    /// Population size (callers may override it).
    #[serde(default = "default_customers")]
    pub customers: usize,
    /// Simulated start instant, RFC 3339 (`"2026-01-05T00:00:00Z"`).
    #[serde(default = "default_start")]
    pub start: String,
    /// Days after a delivery within which its outcomes (and the oracle's organic conversions) fall.
    #[serde(default = "default_horizon")]
    pub horizon_days: u32,
    /// Prefix of `external_id`s (the rest is the zero-padded customer index).
    #[serde(default = "default_prefix")]
    pub id_prefix: String,
    /// IANA time zone of customers when no attribute has `field = "time_zone"`.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Hidden traits, in generation order.
    #[serde(default, rename = "trait")]
    pub traits: Vec<TraitSpec>,
    /// Observable attributes, in generation order (an attribute may depend on earlier ones).
    #[serde(default, rename = "attribute")]
    pub attributes: Vec<AttributeSpec>,
    /// Per channel, the factors that must all be positive for the channel to reach a customer.
    #[serde(default)]
    pub reach: BTreeMap<Channel, Vec<FactorSpec>>,
    /// The levers: which trigger property carries which dimension's option id.
    #[serde(default, rename = "lever")]
    pub levers: Vec<LeverSpec>,
    /// What a conversion is.
    #[serde(default)]
    pub conversion: ConversionSpec,
    /// Base score and shape of every response stage.
    #[serde(default)]
    pub response: ResponseSpec,
    /// Effect terms.
    #[serde(default, rename = "effect")]
    pub effects: Vec<EffectSpec>,
    /// Scheduled changes.
    #[serde(default, rename = "drift")]
    pub drift: Vec<DriftSpec>,
    /// Delays of outcomes after a delivery.
    #[serde(default)]
    pub delays: DelaySpec,
    /// The Braze workspace.
    #[serde(default)]
    pub braze: WorkspaceSpec,
}

fn default_name() -> String {
    "unnamed".to_owned()
}

fn default_customers() -> usize {
    100
}

fn default_start() -> String {
    "2026-01-05T00:00:00Z".to_owned()
}

fn default_horizon() -> u32 {
    14
}

fn default_prefix() -> String {
    "cust-".to_owned()
}

fn default_time_zone() -> String {
    "UTC".to_owned()
}

/// `[[trait]]`: a hidden trait. Without `categories` it is a scalar in (0, 1) (the normal CDF of a
/// standard normal latent, so uniform); with `categories` (weights) it is categorical, and `windows`
/// can give each category a local-hour window `[start, end)` (for active hours).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TraitSpec {
    /// Name used by effects, shifts and reach conditions.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Category weights (categorical trait).
    #[serde(default)]
    pub categories: Option<BTreeMap<String, f64>>,
    /// Local-hour windows per category.
    #[serde(default)]
    pub windows: BTreeMap<String, [f64; 2]>,
}

/// The type of an attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AttributeType {
    /// A number drawn from `dist`.
    Number,
    /// A category drawn from `categories` (or `given` + `by`).
    Category,
    /// A boolean with probability `p`.
    Boolean,
    /// A timestamp `days_ago` days before the start.
    Timestamp,
    /// A `custom_events` / `purchases` entry: `count` and `last_days_ago`.
    Event,
}

/// `[[attribute]]`: an observable profile field.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttributeSpec {
    /// Name used by effects, shifts and reach conditions.
    pub name: String,
    /// Export field path: a standard field (`country`, `total_revenue`, `push_subscribe`, ...),
    /// `custom_attributes.<key>`, `custom_events.<name>` or `purchases.<product_id>`. Default:
    /// `custom_attributes.<name>`.
    #[serde(default)]
    pub field: Option<String>,
    /// The type.
    #[serde(rename = "type")]
    pub kind: AttributeType,
    /// Number: the distribution.
    #[serde(default)]
    pub dist: Option<DistSpec>,
    /// Category: weights.
    #[serde(default)]
    pub categories: Option<BTreeMap<String, f64>>,
    /// Category: the categorical trait or earlier attribute the weights depend on.
    #[serde(default)]
    pub given: Option<String>,
    /// Category with `given`: weights per category of `given`.
    #[serde(default)]
    pub by: Option<BTreeMap<String, BTreeMap<String, f64>>>,
    /// Boolean: probability of `true` before shifts.
    #[serde(default)]
    pub p: Option<f64>,
    /// Timestamp: days before the start.
    #[serde(default)]
    pub days_ago: Option<DistSpec>,
    /// Event: all-time count (rounded; 0 leaves the entry out of the export).
    #[serde(default)]
    pub count: Option<DistSpec>,
    /// Event: days between the last occurrence and the start.
    #[serde(default)]
    pub last_days_ago: Option<DistSpec>,
    /// Number, boolean, event count, timestamp: shift of the standard-normal latent (number) or of
    /// the log-odds (boolean) per unit of a source: a scalar trait or a numeric attribute (its
    /// latent), `<categorical>.<category>` or a boolean attribute (indicators).
    #[serde(default)]
    pub shift: BTreeMap<String, f64>,
    /// Category: per category, log-weight shifts per source (as `shift`).
    #[serde(default)]
    pub category_shift: BTreeMap<String, BTreeMap<String, f64>>,
}

/// The family of a [`DistSpec`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DistKind {
    /// `mean + sd * z`.
    Normal,
    /// `median * exp(sigma * z)`.
    Lognormal,
    /// `min + (max - min) * Φ(z)`.
    Uniform,
    /// `value`.
    Fixed,
}

/// A numeric distribution driven by a standard-normal latent `z` (shifted by correlations).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DistSpec {
    /// Family.
    pub kind: DistKind,
    /// Normal mean.
    #[serde(default)]
    pub mean: Option<f64>,
    /// Normal standard deviation.
    #[serde(default)]
    pub sd: Option<f64>,
    /// Lognormal median.
    #[serde(default)]
    pub median: Option<f64>,
    /// Lognormal log-sd.
    #[serde(default)]
    pub sigma: Option<f64>,
    /// Lower clamp (uniform: lower bound).
    #[serde(default)]
    pub min: Option<f64>,
    /// Upper clamp (uniform: upper bound).
    #[serde(default)]
    pub max: Option<f64>,
    /// Fixed value.
    #[serde(default)]
    pub value: Option<f64>,
    /// Round to an integer.
    #[serde(default)]
    pub integer: bool,
}

/// `[[lever]]`: a decision dimension the world responds to.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LeverSpec {
    /// Name used by effects (usually the use case's dimension name).
    pub name: String,
    /// The `Delivery.properties` key holding the option id. Default: `name`.
    #[serde(default)]
    pub property: Option<String>,
    /// Options by id.
    pub options: BTreeMap<String, OptionSpec>,
}

/// One option of a lever.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OptionSpec {
    /// Fraction taken off the price of a conversion it causes (0.2 = 20 % off).
    #[serde(default)]
    pub discount: f64,
    /// What the company pays per conversion it causes (shipping, points liability...).
    #[serde(default)]
    pub cost_per_conversion: f64,
}

/// The kind of conversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ConversionKind {
    /// A purchase (`product_id`, `currency`, price drawn from `value`).
    Purchase,
    /// A custom event (`name`, optional `value_property` carrying the value).
    CustomEvent,
}

/// `[conversion]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConversionSpec {
    /// Purchase or custom event.
    #[serde(rename = "type")]
    pub kind: ConversionKind,
    /// Custom event name.
    #[serde(default)]
    pub name: Option<String>,
    /// Purchase product id.
    #[serde(default)]
    pub product_id: Option<String>,
    /// Currency (ISO 4217).
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Value per conversion before value effects and discount (fixed, uniform or lognormal, no clamps).
    #[serde(default)]
    pub value: Option<DistSpec>,
    /// Custom event: the property carrying the value.
    #[serde(default)]
    pub value_property: Option<String>,
    /// Custom event: constant properties.
    #[serde(default)]
    pub properties: Map<String, Value>,
}

fn default_currency() -> String {
    "USD".to_owned()
}

impl Default for ConversionSpec {
    /// A purchase of `product` worth about 50 USD (lognormal, median 50, sigma 0.5).
    fn default() -> Self {
        ConversionSpec {
            kind: ConversionKind::Purchase,
            name: None,
            product_id: Some("product".to_owned()),
            currency: default_currency(),
            value: Some(DistSpec {
                kind: DistKind::Lognormal,
                mean: None,
                sd: None,
                median: Some(50.0),
                sigma: Some(0.5),
                min: None,
                max: None,
                value: None,
                integer: false,
            }),
            value_property: None,
            properties: Map::new(),
        }
    }
}

/// The response shape of a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ShapeKind {
    /// `p = σ(score)`.
    Logistic,
    /// `p = p_max (1 - e^{-k max(0, score)})`.
    Saturating,
}

/// `[response.<stage>]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StageSpec {
    /// Shape.
    #[serde(default = "default_shape")]
    pub shape: ShapeKind,
    /// Base score (before effects).
    pub base: f64,
    /// Saturating: ceiling.
    #[serde(default)]
    pub p_max: Option<f64>,
    /// Saturating: rate.
    #[serde(default)]
    pub k: Option<f64>,
}

fn default_shape() -> ShapeKind {
    ShapeKind::Logistic
}

impl StageSpec {
    fn logistic(base: f64) -> StageSpec {
        StageSpec {
            shape: ShapeKind::Logistic,
            base,
            p_max: None,
            k: None,
        }
    }
}

impl Default for ResponseSpec {
    /// About 20 % opens, 15 % clicks per open, 20 % conversions per click, 0.25 % unsubscribes and
    /// 0.1 % organic conversions a day.
    fn default() -> Self {
        ResponseSpec {
            open: StageSpec::logistic(-1.4),
            click: StageSpec::logistic(-1.7),
            convert: StageSpec::logistic(-1.4),
            unsubscribe: StageSpec::logistic(-6.0),
            organic: StageSpec::logistic(-6.9),
        }
    }
}

/// `[response]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResponseSpec {
    /// P(open) on channels with opens (email, push).
    pub open: StageSpec,
    /// P(click | open) (or P(click) on channels without opens).
    pub click: StageSpec,
    /// P(conversion | click) (webhook: P(conversion)).
    pub convert: StageSpec,
    /// P(unsubscribe) on email, SMS and push.
    pub unsubscribe: StageSpec,
    /// Per-day probability of an organic conversion.
    pub organic: StageSpec,
}

/// What an effect term adds to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Target {
    /// The open score.
    Open,
    /// The click score.
    Click,
    /// The conversion score.
    Convert,
    /// The unsubscribe score.
    Unsubscribe,
    /// The per-day organic conversion score.
    Organic,
    /// The log of the conversion value multiplier.
    Value,
}

/// `[[effect]]`: `weight * product(when)` added to `target`'s score.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EffectSpec {
    /// Name (drift refers to it); several effects may share one.
    #[serde(default)]
    pub name: Option<String>,
    /// Target.
    pub target: Target,
    /// Weight.
    pub weight: f64,
    /// Factors, multiplied; empty: the constant 1.
    #[serde(default)]
    pub when: Vec<FactorSpec>,
}

/// One factor of an effect (or a reach condition). Exactly one subject key (`lever`, `channel`,
/// `trait`, `attribute`, `local_hours`, `in_active_hours`, `weekday`, `recent_sends`) plus modifiers.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FactorSpec {
    /// A lever: with `is` / `in`, indicator of the delivery's option.
    #[serde(default)]
    pub lever: Option<String>,
    /// Indicator of the delivery's channel being one of these.
    #[serde(default)]
    pub channel: Option<Vec<Channel>>,
    /// A hidden trait.
    #[serde(default, rename = "trait")]
    pub trait_name: Option<String>,
    /// An attribute.
    #[serde(default)]
    pub attribute: Option<String>,
    /// Indicator of the local delivery hour in `[start, end)` (wrapping past midnight).
    #[serde(default)]
    pub local_hours: Option<[f64; 2]>,
    /// Indicator of the local delivery hour within the customer's window of this categorical trait.
    #[serde(default)]
    pub in_active_hours: Option<String>,
    /// Indicator of the local weekday (of the delivery, or of the day for organic) being one of these.
    #[serde(default)]
    pub weekday: Option<Vec<WeekdayName>>,
    /// The number of messages in the 7 days before the delivery (fatigue), capped by `cap`.
    #[serde(default)]
    pub recent_sends: Option<bool>,
    /// Categorical subject (or lever): indicator of this value.
    #[serde(default)]
    pub is: Option<Value>,
    /// Categorical subject (or lever): indicator of one of these values.
    #[serde(default, rename = "in")]
    pub one_of: Option<Vec<Value>>,
    /// Categorical subject: indicator of its category equal to the delivery's channel (`"channel"`)
    /// or to the option id of a lever.
    #[serde(default)]
    pub matches: Option<String>,
    /// Numeric subject: indicator of value > this (a threshold).
    #[serde(default)]
    pub above: Option<f64>,
    /// Numeric subject: indicator of value < this.
    #[serde(default)]
    pub below: Option<f64>,
    /// Numeric subject: subtracted before `scale`.
    #[serde(default)]
    pub center: Option<f64>,
    /// Numeric subject: divisor after `center`.
    #[serde(default)]
    pub scale: Option<f64>,
    /// Numeric subject: upper cap of the value.
    #[serde(default)]
    pub cap: Option<f64>,
}

/// `[[drift]]`: from `from` (a UTC date) on, scale the named effects or shift a stage's base.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DriftSpec {
    /// First day it applies (`"2026-01-19"`).
    pub from: String,
    /// Effect name to scale.
    #[serde(default)]
    pub effect: Option<String>,
    /// Multiplier of the named effects' weights.
    #[serde(default)]
    pub scale: Option<f64>,
    /// Stage whose base to shift.
    #[serde(default)]
    pub target: Option<Target>,
    /// Added to the stage's base.
    #[serde(default)]
    pub shift: Option<f64>,
}

/// `[delays]`: means of the delays of outcomes after a delivery (exponential, truncated).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DelaySpec {
    /// Mean hours from delivery to open (capped at 48 h).
    #[serde(default = "default_open_hours")]
    pub open_hours: f64,
    /// Mean hours from open to click (capped at 24 h).
    #[serde(default = "default_click_hours")]
    pub click_hours: f64,
    /// Mean days from click to conversion (capped by the horizon).
    #[serde(default = "default_convert_days")]
    pub convert_days: f64,
    /// Mean days from delivery to unsubscribe (capped at 7 days).
    #[serde(default = "default_unsubscribe_days")]
    pub unsubscribe_days: f64,
}

impl Default for DelaySpec {
    fn default() -> Self {
        DelaySpec {
            open_hours: default_open_hours(),
            click_hours: default_click_hours(),
            convert_days: default_convert_days(),
            unsubscribe_days: default_unsubscribe_days(),
        }
    }
}

fn default_open_hours() -> f64 {
    3.0
}

fn default_click_hours() -> f64 {
    0.5
}

fn default_convert_days() -> f64 {
    1.5
}

fn default_unsubscribe_days() -> f64 {
    0.5
}

/// A weekday as scenario files spell it (`"monday"` ... `"sunday"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WeekdayName {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

impl WeekdayName {
    /// Days since Monday (0..7), as `jiff::civil::Weekday::to_monday_zero_offset`.
    pub(crate) fn monday_zero(self) -> u8 {
        self as u8
    }
}
