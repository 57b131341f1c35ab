//! The plausible range of a reward, by success metric: what [`crate::Policy::update`] accepts.
//!
//! A reward outside it is refused ([`crate::Error::BadFeedback`], nothing of the batch learned), never
//! clipped: a reward of 10^200 or a negative conversion is a data error upstream, and learning a clipped
//! value would hide it while still biasing the model. The rule, for a reward `r` of joint action `a`
//! read with observed share `F` ([`crate::Feedback::observed`], 1 for a final reward):
//!
//! | metric | accepted |
//! |---|---|
//! | `conversion`, `renewal`, `retention` (0/1) | `1 − 1/F ≤ r ≤ 1/F`: `[0, 1]` for a final reward |
//! | `revenue`, `arpu`, `event_value`, `npv` without `subtract_option_cost` | `0 ≤ r ≤ 10^12` |
//! | the same with `subtract_option_cost = true` | `−10^12 ≤ r ≤ 10^12` |
//!
//! Every reward must also be finite and at most [`MAX_REWARD_MAGNITUDE`] in absolute value. An amount
//! metric's reward is a sum of what the customer brought in, never negative, unless the metric
//! subtracts the options' costs; then it is negative whenever nothing came in, and how negative
//! depends on costs a use case may change between a decision and its reward, so only the magnitude
//! is bounded. A lower bound of 0 tolerates [`TOLERANCE`] of rounding. The bound 10^12 keeps every sum
//! of squares a policy accumulates far inside `f64` (a reward of 10^200 overflowed the posterior to
//! NaN), and no single decision brings in a trillion of any currency.

use std::fmt;

use offerloop_domain::MetricKind;

use crate::setup::Setup;

/// The largest reward magnitude accepted, in the metric's unit: 10^12.
pub const MAX_REWARD_MAGNITUDE: f64 = 1e12;

/// How far below its lower bound a reward may be and still be accepted (float rounding of
/// `value − cost`).
pub const TOLERANCE: f64 = 1e-9;

/// The interval of rewards accepted for one record (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RewardRange {
    /// The smallest reward accepted.
    pub low: f64,
    /// The largest reward accepted.
    pub high: f64,
}

impl RewardRange {
    /// The range of a reward under `setup`'s metric, read with observed share `observed` (in
    /// `(0, 1]`; 1 for a final reward).
    pub fn of(setup: &Setup, observed: f64) -> Self {
        let metric = setup.metric();
        if metric.is_binary() {
            let spread = 1.0 / observed;
            return Self {
                low: 1.0 - spread,
                high: spread,
            }
            .clamped();
        }
        let low = if setup.reward_nets_option_cost() {
            -MAX_REWARD_MAGNITUDE
        } else {
            0.0
        };
        Self {
            low,
            high: MAX_REWARD_MAGNITUDE,
        }
    }

    /// Within `±`[`MAX_REWARD_MAGNITUDE`].
    fn clamped(self) -> Self {
        Self {
            low: self.low.max(-MAX_REWARD_MAGNITUDE),
            high: self.high.min(MAX_REWARD_MAGNITUDE),
        }
    }

    /// Whether `reward` is in the range (finite, and at most [`TOLERANCE`] below its lower bound).
    pub fn contains(&self, reward: f64) -> bool {
        reward.is_finite() && reward >= self.low - TOLERANCE && reward <= self.high
    }
}

impl fmt::Display for RewardRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {}]", Number(self.low), Number(self.high))
    }
}

/// A number for messages: plain when moderate, in scientific notation when very large or small
/// (`1e200`, not two hundred digits).
#[derive(Clone, Copy, Debug)]
pub struct Number(pub f64);

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        if x == 0.0 {
            f.write_str("0")
        } else if !x.is_finite() || (1e-4..1e12).contains(&x.abs()) {
            write!(f, "{x}")
        } else {
            write!(f, "{x:e}")
        }
    }
}

/// Checks a reward read with observed share `observed` against its metric's range.
///
/// # Errors
/// A message for a reward that is not finite or outside the range, without the field's name:
/// `1e200 is outside [0, 1]: conversion rewards are 0 or 1`.
pub fn check(setup: &Setup, reward: f64, observed: f64) -> Result<(), String> {
    if !reward.is_finite() {
        return Err(format!("{} is not a finite number", Number(reward)));
    }
    let range = RewardRange::of(setup, observed);
    if range.contains(reward) {
        return Ok(());
    }
    let metric = setup.metric();
    let why = if metric.is_binary() {
        if observed < 1.0 {
            format!(
                "{} rewards are 0 or 1, at most 1/{} while {} of it is observed",
                metric.name(),
                Number(observed),
                Number(observed)
            )
        } else {
            format!("{} rewards are 0 or 1", metric.name())
        }
    } else {
        let brought_in = amount_source(metric);
        if range.low < 0.0 {
            format!(
                "{} rewards are {brought_in} minus the options' cost; beyond ±{} one is taken for a data error",
                metric.name(),
                Number(MAX_REWARD_MAGNITUDE)
            )
        } else {
            format!(
                "{} rewards are {brought_in}, never negative; above {} one is taken for a data error",
                metric.name(),
                Number(MAX_REWARD_MAGNITUDE)
            )
        }
    };
    Err(format!("{} is outside {range}: {why}", Number(reward)))
}

fn amount_source(metric: &MetricKind) -> &'static str {
    match metric {
        MetricKind::EventValue { .. } => "sums of event values",
        MetricKind::Npv { .. } => "discounted sums of purchase values",
        _ => "sums of purchase values",
    }
}

#[cfg(test)]
mod tests {
    use offerloop_domain::metric::ConversionOn;

    use super::*;
    use crate::floor::testkit::{revenue, settings, small_setup};

    fn setup(metric: MetricKind) -> Setup {
        small_setup(settings(1, 0.0, 1.0), metric, None)
    }

    #[test]
    fn numbers_in_messages_are_short() {
        assert_eq!(Number(1e200).to_string(), "1e200");
        assert_eq!(Number(-2.5).to_string(), "-2.5");
        assert_eq!(Number(1e12).to_string(), "1e12");
        assert_eq!(Number(-0.0).to_string(), "0");
        assert_eq!(Number(123_456.5).to_string(), "123456.5");
        assert_eq!(Number(1e-7).to_string(), "1e-7");
        assert_eq!(Number(f64::NAN).to_string(), "NaN");
    }

    #[test]
    fn binary_rewards_are_between_zero_and_one_scaled_by_the_observed_share() {
        let s = setup(MetricKind::Conversion {
            on: ConversionOn::Purchase { product: None },
        });
        for r in [0.0, 1.0, 0.25] {
            assert_eq!(check(&s, r, 1.0), Ok(()));
        }
        assert_eq!(
            check(&s, 1e200, 1.0).unwrap_err(),
            "1e200 is outside [0, 1]: conversion rewards are 0 or 1"
        );
        assert!(check(&s, -1.0, 1.0).is_err());
        assert!(check(&s, 1.5, 1.0).is_err());
        // Read at half its window: 1/F = 2 for a conversion seen, 1 − 1/F for a churn event seen.
        assert_eq!(check(&s, 2.0, 0.5), Ok(()));
        assert_eq!(check(&s, -1.0, 0.5), Ok(()));
        assert_eq!(
            check(&s, 2.5, 0.5).unwrap_err(),
            "2.5 is outside [-1, 2]: conversion rewards are 0 or 1, at most 1/0.5 while 0.5 of it is observed"
        );
        assert_eq!(check(&s, f64::NAN, 1.0).unwrap_err(), "NaN is not a finite number");
        assert_eq!(check(&s, f64::INFINITY, 1.0).unwrap_err(), "inf is not a finite number");
        // A tiny observed share widens the range but never beyond the magnitude bound.
        assert_eq!(RewardRange::of(&s, 1e-300).high, MAX_REWARD_MAGNITUDE);
    }

    #[test]
    fn amounts_are_never_negative_unless_costs_are_subtracted() {
        let gross = setup(revenue());
        assert_eq!(check(&gross, 0.0, 1.0), Ok(()));
        assert_eq!(check(&gross, 1e12, 1.0), Ok(()));
        assert_eq!(
            check(&gross, -0.5, 1.0).unwrap_err(),
            "-0.5 is outside [0, 1e12]: revenue rewards are sums of purchase values, never negative; above 1e12 one is taken for a data error"
        );
        assert!(check(&gross, 2e12, 1.0).is_err());
        assert!(check(&gross, -1e-12, 1.0).is_ok(), "rounding is tolerated");
        let net = setup(MetricKind::EventValue {
            event: "referred".into(),
            property: "value".into(),
            subtract_option_cost: true,
        });
        assert_eq!(check(&net, -3.5, 1.0), Ok(()));
        assert_eq!(check(&net, -1e12, 1.0), Ok(()));
        assert_eq!(
            check(&net, -1e200, 1.0).unwrap_err(),
            "-1e200 is outside [-1e12, 1e12]: event_value rewards are sums of event values minus the options' cost; beyond ±1e12 one is taken for a data error"
        );
    }
}
