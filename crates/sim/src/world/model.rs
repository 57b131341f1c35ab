//! The resolved response model: a scenario file after validation, with every name replaced by an
//! index so generation and responses do no string lookups. Built by
//! [`Scenario::from_toml_str`](super::Scenario::from_toml_str); read by the population generator and
//! by the response model (`respond`, `expected`, `organic` share every number here, which is what
//! makes the oracle exact).

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde_json::{Map, Value};

use super::Channel;
use super::math::normal_cdf;
use super::spec::{ConversionKind, DelaySpec, DistKind, ShapeKind};

/// The resolved model of a scenario.
#[derive(Clone, Debug)]
pub(crate) struct Model {
    /// Hidden traits.
    pub traits: Vec<TraitDef>,
    /// Observable attributes.
    pub attrs: Vec<AttrDef>,
    /// Reach conditions per channel (all factors must be positive); channels absent always reach.
    pub reach: Vec<(Channel, Vec<Factor>)>,
    /// Levers.
    pub levers: Vec<LeverDef>,
    /// The conversion.
    pub conversion: ConversionDef,
    /// Stages indexed by [`Stage`].
    pub stages: [StageDef; 5],
    /// Effects per target, indexed by [`Stage`] then `Value` (index 5).
    pub effects: [Vec<EffectDef>; 6],
    /// Delays.
    pub delays: DelaySpec,
    /// Time zone when no attribute gives one.
    pub default_tz: TimeZone,
    /// The attribute with `field = "time_zone"`, and the time zone of each of its categories.
    pub tz_attr: Option<(usize, Vec<TimeZone>)>,
}

/// A response stage (index into [`Model::stages`] and [`Model::effects`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Open.
    Open = 0,
    /// Click.
    Click = 1,
    /// Conversion.
    Convert = 2,
    /// Unsubscribe.
    Unsubscribe = 3,
    /// Organic conversion (per day).
    Organic = 4,
}

/// Index of the value effects in [`Model::effects`].
pub(crate) const VALUE_EFFECTS: usize = 5;

/// A hidden trait.
#[derive(Clone, Debug)]
pub(crate) struct TraitDef {
    /// Name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Scalar or categorical.
    pub kind: TraitKind,
}

/// The kinds of [`TraitDef`].
#[derive(Clone, Debug)]
pub(crate) enum TraitKind {
    /// A value in (0, 1).
    Scalar,
    /// One of `categories`.
    Categorical {
        /// Category names.
        categories: Vec<String>,
        /// Normalised probabilities.
        weights: Vec<f64>,
        /// Local-hour window per category.
        windows: Vec<Option<[f64; 2]>>,
    },
}

/// An observable attribute.
#[derive(Clone, Debug)]
pub(crate) struct AttrDef {
    /// Name.
    pub name: String,
    /// Where it appears in the export object.
    pub field: Field,
    /// How it is generated.
    pub kind: AttrKind,
}

/// Where an attribute appears in the export object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    /// A top-level standard field (`country`, `total_revenue`, `email_subscribe`, ...).
    Standard(String),
    /// `custom_attributes.<key>`.
    Custom(String),
    /// An entry of `custom_events` (`purchases` when `purchase`) named `name`.
    Entry {
        /// `purchases` rather than `custom_events`.
        purchase: bool,
        /// Event name or product id.
        name: String,
    },
}

/// How an attribute is generated.
#[derive(Clone, Debug)]
pub(crate) enum AttrKind {
    /// A number.
    Number {
        /// Distribution.
        dist: Dist,
        /// Latent shifts.
        shifts: Vec<(Source, f64)>,
    },
    /// A category.
    Category {
        /// Category names.
        categories: Vec<String>,
        /// Weights.
        weights: Weights,
        /// Log-weight shifts per category.
        shifts: Vec<Vec<(Source, f64)>>,
    },
    /// A boolean.
    Boolean {
        /// Log-odds before shifts.
        logit: f64,
        /// Log-odds shifts.
        shifts: Vec<(Source, f64)>,
    },
    /// Days before the start (rendered as an ISO-8601 time).
    Timestamp {
        /// Distribution of days ago.
        dist: Dist,
        /// Latent shifts.
        shifts: Vec<(Source, f64)>,
    },
    /// A `custom_events` / `purchases` entry.
    Event {
        /// Count distribution.
        count: Dist,
        /// Days since the last occurrence.
        last: Dist,
        /// Latent shifts of the count.
        shifts: Vec<(Source, f64)>,
    },
}

/// Category weights, fixed or depending on an earlier categorical value.
#[derive(Clone, Debug)]
pub(crate) enum Weights {
    /// Normalised probabilities.
    Fixed(Vec<f64>),
    /// Per category of `given`, normalised probabilities.
    Given {
        /// The categorical it depends on.
        given: CatRef,
        /// Rows per category of `given`.
        table: Vec<Vec<f64>>,
    },
}

/// A categorical value of a customer: a trait or an attribute (category or boolean).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CatRef {
    /// A categorical trait.
    Trait(usize),
    /// A category or boolean attribute (boolean: 0 false, 1 true).
    Attr(usize),
}

/// A numeric value of a customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NumRef {
    /// A scalar trait's value in (0, 1).
    Trait(usize),
    /// A number, timestamp (days ago), boolean (0/1) or event count attribute.
    Attr(usize),
}

/// A source of a generation shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// A scalar trait's latent or a numeric attribute's latent (index into the generation latents:
    /// traits first, then attributes).
    Latent(usize),
    /// Indicator of a categorical value.
    Is(CatRef, u8),
}

/// A numeric distribution driven by a latent `z`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Dist {
    /// Family.
    pub kind: DistKind,
    /// Mean / median / min / value.
    pub a: f64,
    /// SD / sigma / max.
    pub b: f64,
    /// Lower clamp.
    pub min: Option<f64>,
    /// Upper clamp.
    pub max: Option<f64>,
    /// Round to an integer.
    pub integer: bool,
}

impl Dist {
    /// The value for latent `z`.
    pub fn at(&self, z: f64) -> f64 {
        let mut x = match self.kind {
            DistKind::Normal => self.a + self.b * z,
            DistKind::Lognormal => self.a * (self.b * z).exp(),
            DistKind::Uniform => self.a + (self.b - self.a) * normal_cdf(z),
            DistKind::Fixed => self.a,
        };
        if let Some(min) = self.min {
            x = x.max(min);
        }
        if let Some(max) = self.max {
            x = x.min(max);
        }
        if self.integer {
            x = x.round();
        }
        x
    }

    /// The exact mean for a standard-normal latent (only without clamps or rounding, which
    /// validation guarantees where a mean is needed).
    pub fn mean(&self) -> f64 {
        match self.kind {
            DistKind::Normal | DistKind::Fixed => self.a,
            DistKind::Lognormal => self.a * (self.b * self.b / 2.0).exp(),
            DistKind::Uniform => (self.a + self.b) / 2.0,
        }
    }
}

/// A lever.
#[derive(Clone, Debug)]
pub(crate) struct LeverDef {
    /// Name.
    pub name: String,
    /// Property key.
    pub property: String,
    /// Option ids.
    pub options: Vec<String>,
    /// Discount per option.
    pub discount: Vec<f64>,
    /// Cost per caused conversion per option.
    pub cost: Vec<f64>,
}

/// The conversion.
#[derive(Clone, Debug)]
pub(crate) struct ConversionDef {
    /// Purchase or custom event.
    pub kind: ConversionKind,
    /// Event name (custom event).
    pub name: String,
    /// Product id (purchase).
    pub product_id: String,
    /// Currency.
    pub currency: String,
    /// Value before effects and discount.
    pub value: Dist,
    /// Property carrying the value (custom event).
    pub value_property: Option<String>,
    /// Constant properties (custom event).
    pub properties: Map<String, Value>,
}

/// A stage's shape and base.
#[derive(Clone, Debug)]
pub(crate) struct StageDef {
    /// Shape.
    pub shape: ShapeKind,
    /// Base score.
    pub base: f64,
    /// Saturating ceiling.
    pub p_max: f64,
    /// Saturating rate.
    pub k: f64,
    /// Base shifts from a date on.
    pub drift: Vec<(Date, f64)>,
}

impl StageDef {
    /// The probability for an effect score `sum` on `date` (base and drift added here).
    pub fn probability(&self, sum: f64, date: Date) -> f64 {
        let score = self.base
            + sum
            + self
                .drift
                .iter()
                .filter(|(from, _)| date >= *from)
                .map(|(_, s)| s)
                .sum::<f64>();
        match self.shape {
            ShapeKind::Logistic => super::math::sigmoid(score),
            ShapeKind::Saturating => self.p_max * (1.0 - (-self.k * score.max(0.0)).exp()),
        }
    }
}

/// An effect term.
#[derive(Clone, Debug)]
pub(crate) struct EffectDef {
    /// Weight.
    pub weight: f64,
    /// Factors.
    pub factors: Vec<Factor>,
    /// Weight multipliers from a date on.
    pub drift: Vec<(Date, f64)>,
}

impl EffectDef {
    /// The weight on `date`.
    pub fn weight_on(&self, date: Date) -> f64 {
        self.drift
            .iter()
            .filter(|(from, _)| date >= *from)
            .fold(self.weight, |w, (_, s)| w * s)
    }
}

/// A resolved factor.
#[derive(Clone, Debug)]
pub(crate) enum Factor {
    /// Indicator of the lever's option being one of `options`.
    Lever {
        /// Lever.
        lever: usize,
        /// Option indices.
        options: Vec<u16>,
    },
    /// Indicator of the channel.
    Channel(Vec<Channel>),
    /// A numeric value, transformed.
    Numeric {
        /// Subject.
        subject: NumRef,
        /// Transform.
        xform: Xform,
    },
    /// Indicator of a categorical value.
    Is {
        /// Subject.
        subject: CatRef,
        /// Accepted categories.
        categories: Vec<u8>,
    },
    /// Indicator of a categorical value naming the delivery's channel.
    MatchesChannel {
        /// Subject.
        subject: CatRef,
        /// Channel per category.
        map: Vec<Option<Channel>>,
    },
    /// Indicator of a categorical value naming the delivery's option of a lever.
    MatchesLever {
        /// Subject.
        subject: CatRef,
        /// Lever.
        lever: usize,
        /// Option per category.
        map: Vec<Option<u16>>,
    },
    /// Indicator of the local hour in a window.
    LocalHours([f64; 2]),
    /// Indicator of the local hour in the customer's window of a categorical trait.
    InActiveHours {
        /// The trait.
        trait_index: usize,
        /// Window per category.
        windows: Vec<Option<[f64; 2]>>,
    },
    /// Indicator of the weekday (bit `n` = `n` days after Monday).
    Weekday(u8),
    /// Messages in the last 7 days, capped.
    RecentSends {
        /// Cap.
        cap: f64,
    },
}

/// A numeric transform: cap, then threshold indicator(s), else `(v - center) / scale`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Xform {
    /// Upper cap.
    pub cap: Option<f64>,
    /// Indicator of `v > above`.
    pub above: Option<f64>,
    /// Indicator of `v < below`.
    pub below: Option<f64>,
    /// Subtracted.
    pub center: f64,
    /// Divisor.
    pub scale: f64,
}

impl Xform {
    /// Applies the transform.
    pub fn apply(&self, v: f64) -> f64 {
        let v = self.cap.map_or(v, |c| v.min(c));
        if self.above.is_some() || self.below.is_some() {
            let ok = self.above.is_none_or(|a| v > a) && self.below.is_none_or(|b| v < b);
            return if ok { 1.0 } else { 0.0 };
        }
        (v - self.center) / self.scale
    }
}

/// Whether `hour` (fractional, local) is in `[start, end)`, wrapping past midnight.
pub(crate) fn in_window(hour: f64, [start, end]: [f64; 2]) -> bool {
    if start <= end {
        hour >= start && hour < end
    } else {
        hour >= start || hour < end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_wrap_past_midnight() {
        assert!(in_window(9.5, [9.0, 12.0]));
        assert!(!in_window(12.0, [9.0, 12.0]));
        assert!(in_window(23.0, [21.0, 2.0]));
        assert!(in_window(1.0, [21.0, 2.0]));
        assert!(!in_window(3.0, [21.0, 2.0]));
    }

    #[test]
    fn xform_thresholds_and_scales() {
        let scaled = Xform {
            center: 10.0,
            scale: 5.0,
            ..Xform::default()
        };
        assert_eq!(scaled.apply(20.0), 2.0);
        let threshold = Xform {
            above: Some(0.6),
            scale: 1.0,
            ..Xform::default()
        };
        assert_eq!(threshold.apply(0.7), 1.0);
        assert_eq!(threshold.apply(0.6), 0.0);
        let band = Xform {
            above: Some(1.0),
            below: Some(3.0),
            cap: Some(2.0),
            scale: 1.0,
            ..Xform::default()
        };
        assert_eq!(band.apply(10.0), 1.0, "capped to 2, inside (1, 3)");
    }

    #[test]
    fn stage_shapes_and_base_drift() {
        let day = |d: i8| jiff::civil::date(2026, 1, d);
        let logistic = StageDef {
            shape: ShapeKind::Logistic,
            base: -1.0,
            p_max: 1.0,
            k: 1.0,
            drift: vec![(day(19), 1.0)],
        };
        assert!((logistic.probability(1.0, day(18)) - 0.5).abs() < 1e-12);
        assert!(
            (logistic.probability(0.0, day(19)) - 0.5).abs() < 1e-12,
            "the base shift applies from its date"
        );
        let saturating = StageDef {
            shape: ShapeKind::Saturating,
            base: -0.5,
            p_max: 0.4,
            k: 2.0,
            drift: Vec::new(),
        };
        assert_eq!(
            saturating.probability(0.3, day(5)),
            0.0,
            "below the threshold score nothing happens"
        );
        let high = saturating.probability(10.0, day(5));
        assert!(high < 0.4 && high > 0.399, "saturates at p_max: {high}");
        let mid = saturating.probability(1.0, day(5));
        assert!((mid - 0.4 * (1.0 - (-1.0f64).exp())).abs() < 1e-12);
    }

    #[test]
    fn effect_drift_multiplies_from_its_date() {
        let e = EffectDef {
            weight: 2.0,
            factors: Vec::new(),
            drift: vec![
                (jiff::civil::date(2026, 1, 19), 0.5),
                (jiff::civil::date(2026, 2, 1), 0.5),
            ],
        };
        assert_eq!(e.weight_on(jiff::civil::date(2026, 1, 18)), 2.0);
        assert_eq!(e.weight_on(jiff::civil::date(2026, 1, 19)), 1.0);
        assert_eq!(e.weight_on(jiff::civil::date(2026, 3, 1)), 0.5);
    }

    #[test]
    fn dist_means_are_exact_for_unclamped_laws() {
        let logn = Dist {
            kind: DistKind::Lognormal,
            a: 50.0,
            b: 0.4,
            min: None,
            max: None,
            integer: false,
        };
        assert!((logn.mean() - 50.0 * (0.08f64).exp()).abs() < 1e-12);
        let uni = Dist {
            kind: DistKind::Uniform,
            a: 10.0,
            b: 30.0,
            min: None,
            max: None,
            integer: false,
        };
        assert!((uni.at(0.0) - 20.0).abs() < 1e-5);
        assert_eq!(uni.mean(), 20.0);
        let clamped = Dist {
            kind: DistKind::Normal,
            a: 1.0,
            b: 10.0,
            min: Some(0.0),
            max: None,
            integer: true,
        };
        assert_eq!(clamped.at(-3.0), 0.0);
        assert_eq!(clamped.at(0.26), 4.0);
    }
}
