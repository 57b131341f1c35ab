//! The report's statistics: pure functions of numbers, no I/O, no clock, no randomness.
//!
//! Every interval is a two-sided 95 % normal ("Wald") interval, `estimate ± z · se`, with
//! `z` = [`Z95`] = Φ⁻¹(0.975) ≈ 1.959964 and `se` the estimated standard error given below.
//! A function returns `None` rather than an interval it cannot stand behind: too few values to
//! estimate a variance, invalid inputs, or a result that is not finite.
//!
//! # Formulas
//!
//! **Mean of one group** ([`MeanAccumulator`], [`mean_interval`]), values `x_1 … x_n`:
//!
//! - mean `x̄ = Σ x_i / n`;
//! - sample variance `s² = Σ (x_i − x̄)² / (n − 1)` (needs `n ≥ 2`);
//! - interval `x̄ ± z · s / √n`.
//!
//! The accumulator streams with Welford's update (`δ = x − x̄`, `x̄ += δ / n`,
//! `M₂ += δ · (x − x̄_new)`, `s² = M₂ / (n − 1)`) and merges two partial results with the parallel
//! formula of Chan, Golub and LeVeque (`δ = x̄_b − x̄_a`, `n = n_a + n_b`, `x̄ = x̄_a + δ · n_b / n`,
//! `M₂ = M₂_a + M₂_b + δ² · n_a · n_b / n`), so the order in which values arrive does not matter
//! (up to rounding). Non-finite values (NaN, ±∞) are **ignored**: they are not counted in `n`.
//!
//! **Difference of two independent means** ([`difference`], [`uplift`]): `d = x̄_a − x̄_b` with the
//! Welch (unpooled) standard error `se = √(s_a² / n_a + s_b² / n_b)` — the delta method for a
//! difference of independent means — and the interval `d ± z · se` (normal, not Student *t*; with
//! fewer than [`MIN_NORMAL_N`] values in a group the [`Uplift::note`] says the approximation is
//! rough). The relative uplift is `d / |x̄_b|` when `x̄_b ≠ 0`; it is a point value without interval.
//! A baseline mean counts as zero when it is within the rounding error of its own computation,
//! `|x̄_b| ≤ n_b · ε · √(x̄_b² + M₂_b / n_b)` (ε the machine epsilon): values that cancel out, such as
//! an equal number of −1 and +1, should not yield a relative uplift of 10¹⁷.
//!
//! **Horvitz–Thompson mean of a group per unit of the population** ([`horvitz_thompson`]): the group's
//! `n` members, unit `i` with reward `r_i` and inclusion probability `π_i` (the probability that unit
//! `i` was in the group *and* got the action it got: group share × logged propensity), a population
//! of `N` units:
//!
//! - estimate `Ŷ = (1 / N) · Σ r_i / π_i`;
//! - variance by the with-replacement (Hansen–Hurwitz) approximation. Read the sample as `n`
//!   independent draws, a draw picking unit `i` with probability `p_i = π_i / n`. Each draw `k` is on
//!   its own an unbiased estimate of the population mean, `z_k = r_k / (N · p_k) = n · r_k / (N · π_k)`,
//!   and `Ŷ = Σ z_k / n` is their average, so `Var(Ŷ) = Var(z) / n`, estimated by
//!   `v(Ŷ) = Σ (z_k − Ŷ)² / (n (n − 1)) = n / (n − 1) · Σ (n · r_k / (N · π_k) − Ŷ)² / n²` (needs `n ≥ 2`);
//! - interval `Ŷ ± z · √v(Ŷ)`.
//!
//! The approximation drops the finite-population correction, so it overstates the variance when the
//! `π_i` are large (conservative), and it conditions on the realised group size `n`. With equal
//! `π_i = n / N` every `z_k = r_k`, and the estimate and its interval reduce to the plain mean's.
//!
//! **Hájek (self-normalised) mean** ([`hajek`]): the same inputs without `N`:
//!
//! - estimate `μ̂ = Σ (r_i / π_i) / Σ (1 / π_i)` (the population size estimated by `N̂ = Σ 1 / π_i`);
//! - variance by linearisation (first-order Taylor expansion of the ratio):
//!   `v(μ̂) = Σ ((r_i − μ̂) / π_i)² / (Σ 1 / π_i)²` (needs `n ≥ 2`). This is the Poisson-sampling
//!   linearised variance with its finite-population factor `(1 − π_i)` dropped (conservative);
//!   with equal `π_i` it is `(n − 1) / n · s² / n`, marginally narrower than the plain mean's;
//! - interval `μ̂ ± z · √v(μ̂)`.
//!
//! Both estimators return `None` for empty input, lengths that differ, a `π_i` outside `(0, 1]`, a
//! non-finite reward, fewer than two units (no variance), and — for Horvitz–Thompson — a population
//! `N` that is not finite and positive.
//!
//! **Kish effective sample size** ([`effective_sample_size`]) of weights `w_i`:
//! `ESS = (Σ w_i)² / Σ w_i²`; 0 when there are no weights or they are all zero. Non-finite weights are
//! ignored; the weights are rescaled by their largest magnitude first (ESS does not depend on scale)
//! so very large weights do not overflow.
//!
//! [`Uplift::note`]: crate::model::Uplift::note

use crate::model::{Interval, Uplift};

/// The 97.5 % quantile of the standard normal distribution, Φ⁻¹(0.975): the multiplier of the
/// standard error in every 95 % interval of this module.
pub const Z95: f64 = 1.959963984540054;

/// Below this many values in a group, [`uplift`] notes that the normal approximation is rough.
pub const MIN_NORMAL_N: u64 = 30;

/// How [`uplift`] computes its interval, for the report to show.
pub const UPLIFT_METHOD: &str = "difference of means, Welch standard error (delta method), normal 95 % interval";

/// How [`horvitz_thompson`] computes its interval, for the report to show.
pub const HORVITZ_THOMPSON_METHOD: &str = "Horvitz–Thompson estimate Σ(r/π)/N, with-replacement \
     (Hansen–Hurwitz) variance approximation, normal 95 % interval";

/// How [`hajek`] computes its interval, for the report to show.
pub const HAJEK_METHOD: &str = "Hájek estimate Σ(r/π)/Σ(1/π), linearised variance \
     Σ((r − μ̂)/π)²/(Σ1/π)², normal 95 % interval";

/// The normal 95 % interval `estimate ± Z95 · standard_error`.
///
/// `None` when the estimate or the standard error is not finite, the standard error is negative, or
/// an end of the interval overflows.
pub fn normal_interval(estimate: f64, standard_error: f64) -> Option<Interval> {
    if !estimate.is_finite() || !standard_error.is_finite() || standard_error < 0.0 {
        return None;
    }
    let half = Z95 * standard_error;
    let (low, high) = (estimate - half, estimate + half);
    (low.is_finite() && high.is_finite()).then_some(Interval { estimate, low, high })
}

/// A streaming mean and variance (Welford), mergeable (Chan et al.).
///
/// Non-finite values pushed are ignored (not counted). Guaranteed: `n()` is the number of finite
/// values pushed or merged in, and the running sum of squared deviations is never negative.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MeanAccumulator {
    n: u64,
    mean: f64,
    /// Sum of squared deviations from the running mean (Welford's M₂).
    m2: f64,
}

impl MeanAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one value; a non-finite value (NaN, ±∞) is ignored.
    pub fn push(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
        // Rounding cannot make M₂ negative in exact arithmetic; keep the invariant in floating point.
        self.m2 = self.m2.max(0.0);
    }

    /// Adds everything `other` has seen (the parallel formula of Chan, Golub and LeVeque).
    pub fn merge(&mut self, other: &Self) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        let (na, nb) = (self.n as f64, other.n as f64);
        let n = na + nb;
        let delta = other.mean - self.mean;
        self.mean += delta * (nb / n);
        self.m2 = (self.m2 + other.m2 + delta * delta * (na * nb / n)).max(0.0);
        self.n += other.n;
    }

    /// Number of (finite) values seen.
    pub fn n(&self) -> u64 {
        self.n
    }

    /// The mean; `None` when nothing was seen.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then_some(self.mean)
    }

    /// The sample variance `Σ (x − x̄)² / (n − 1)`; `None` when fewer than two values were seen.
    pub fn variance(&self) -> Option<f64> {
        (self.n >= 2).then(|| self.m2 / (self.n - 1) as f64)
    }

    /// The standard error of the mean `s / √n`; `None` when fewer than two values were seen.
    pub fn standard_error(&self) -> Option<f64> {
        self.variance().map(|v| (v / self.n as f64).sqrt())
    }

    /// Whether the mean is zero up to the rounding of its computation: `|x̄| ≤ n · ε · rms`, with
    /// `ε` the machine epsilon and `rms = √(x̄² + M₂ / n)` the root mean square of the values (a
    /// bound on the rounding error of a running mean of `n` values of that size). True when empty.
    fn mean_is_rounding_noise(&self) -> bool {
        let n = self.n as f64;
        let rms = (self.mean * self.mean + self.m2 / n).sqrt();
        self.n == 0 || self.mean.abs() <= n * f64::EPSILON * rms
    }

    /// The mean with its normal 95 % interval `x̄ ± Z95 · s / √n`; `None` when fewer than two values
    /// were seen (or the result is not finite).
    pub fn interval(&self) -> Option<Interval> {
        normal_interval(self.mean()?, self.standard_error()?)
    }
}

impl Extend<f64> for MeanAccumulator {
    fn extend<I: IntoIterator<Item = f64>>(&mut self, iter: I) {
        for x in iter {
            self.push(x);
        }
    }
}

impl FromIterator<f64> for MeanAccumulator {
    fn from_iter<I: IntoIterator<Item = f64>>(iter: I) -> Self {
        let mut acc = Self::new();
        acc.extend(iter);
        acc
    }
}

/// The mean of `values` with its normal 95 % interval (see [`MeanAccumulator::interval`]);
/// non-finite values are ignored, `None` when fewer than two finite values remain.
pub fn mean_interval(values: &[f64]) -> Option<Interval> {
    values.iter().copied().collect::<MeanAccumulator>().interval()
}

/// `mean(a) − mean(b)` with the Welch standard error `√(s_a²/n_a + s_b²/n_b)` and a normal 95 %
/// interval; `None` when either side has fewer than two values (or the result is not finite).
pub fn difference(a: &MeanAccumulator, b: &MeanAccumulator) -> Option<Interval> {
    let (va, vb) = (a.variance()?, b.variance()?);
    let se = (va / a.n as f64 + vb / b.n as f64).sqrt();
    normal_interval(a.mean()? - b.mean()?, se)
}

/// `group` (values in `a`) against `baseline` (values in `b`) on `metric`: the [`difference`], the
/// relative uplift `d / |mean(b)|` (when `mean(b) ≠ 0` beyond rounding error, see the module docs),
/// [`UPLIFT_METHOD`], and a note for people
/// when the interval includes zero or a side has fewer than [`MIN_NORMAL_N`] values.
///
/// `None` when either side has fewer than two values.
pub fn uplift(metric: &str, group: &str, baseline: &str, a: &MeanAccumulator, b: &MeanAccumulator) -> Option<Uplift> {
    let diff = difference(a, b)?;
    let base = b.mean()?;
    let relative = (!b.mean_is_rounding_noise())
        .then(|| diff.estimate / base.abs())
        .filter(|r| r.is_finite());
    let includes_zero = diff.includes_zero();
    let (na, nb) = (a.n(), b.n());
    let mut sentences = Vec::new();
    if includes_zero {
        sentences.push(format!(
            "The 95 % interval still includes zero: not enough evidence yet that {group} differs \
             from {baseline} (n = {na} vs {nb})."
        ));
    }
    if na < MIN_NORMAL_N || nb < MIN_NORMAL_N {
        sentences.push(format!(
            "Fewer than {MIN_NORMAL_N} values in a group (n = {na} vs {nb}): the normal \
             approximation behind the interval is rough."
        ));
    }
    Some(Uplift {
        metric: metric.to_owned(),
        group: group.to_owned(),
        baseline: baseline.to_owned(),
        difference: diff,
        relative,
        method: UPLIFT_METHOD.to_owned(),
        includes_zero,
        note: (!sentences.is_empty()).then(|| sentences.join(" ")),
    })
}

/// Checks the inputs shared by [`horvitz_thompson`] and [`hajek`]: same non-zero length, at least two
/// units, finite rewards, every `π` in `(0, 1]`.
fn valid_weighted(rewards: &[f64], inclusion: &[f64]) -> bool {
    rewards.len() == inclusion.len()
        && rewards.len() >= 2
        && rewards.iter().all(|r| r.is_finite())
        && inclusion.iter().all(|&p| p > 0.0 && p <= 1.0)
}

/// The Horvitz–Thompson estimate of the group's mean per unit of a population of `population` units,
/// `Σ (r_i / π_i) / N`, with the with-replacement (Hansen–Hurwitz) variance
/// `Σ (n r_i / (N π_i) − Ŷ)² / (n (n − 1))` and a normal 95 % interval (see the module docs).
///
/// `None` for empty input, lengths that differ, a `π_i` outside `(0, 1]`, a non-finite reward, fewer
/// than two units, a population that is not finite and positive, or a non-finite result.
pub fn horvitz_thompson(rewards: &[f64], inclusion: &[f64], population: f64) -> Option<Interval> {
    if !valid_weighted(rewards, inclusion) || !population.is_finite() || population <= 0.0 {
        return None;
    }
    let n = rewards.len() as f64;
    // z_k = n r_k / (N π_k): each unit's own estimate of the population mean; Ŷ is their average.
    let z = || {
        rewards
            .iter()
            .zip(inclusion)
            .map(move |(r, p)| n * (r / p) / population)
    };
    let estimate = z().sum::<f64>() / n;
    let squares: f64 = z().map(|zk| (zk - estimate).powi(2)).sum();
    normal_interval(estimate, (squares / (n * (n - 1.0))).sqrt())
}

/// The Hájek (self-normalised) estimate `Σ (r_i / π_i) / Σ (1 / π_i)`, with the linearised variance
/// `Σ ((r_i − μ̂) / π_i)² / (Σ 1 / π_i)²` and a normal 95 % interval (see the module docs).
///
/// `None` for empty input, lengths that differ, a `π_i` outside `(0, 1]`, a non-finite reward, fewer
/// than two units, or a non-finite result.
pub fn hajek(rewards: &[f64], inclusion: &[f64]) -> Option<Interval> {
    if !valid_weighted(rewards, inclusion) {
        return None;
    }
    let pairs = || rewards.iter().zip(inclusion);
    let weight_sum: f64 = inclusion.iter().map(|p| 1.0 / p).sum();
    let estimate = pairs().map(|(r, p)| r / p).sum::<f64>() / weight_sum;
    let squares: f64 = pairs().map(|(r, p)| ((r - estimate) / p).powi(2)).sum();
    normal_interval(estimate, squares.sqrt() / weight_sum)
}

/// Kish's effective sample size `(Σ w)² / Σ w²` of importance weights; 0 for no weights or all-zero
/// weights. Non-finite weights are ignored.
pub fn effective_sample_size(weights: &[f64]) -> f64 {
    let finite = || weights.iter().copied().filter(|w| w.is_finite());
    let scale = finite().fold(0.0_f64, |m, w| m.max(w.abs()));
    if scale == 0.0 {
        return 0.0;
    }
    // ESS is scale-free; dividing by the largest magnitude keeps Σw² from overflowing.
    let (sum, sum_sq) = finite()
        .map(|w| w / scale)
        .fold((0.0, 0.0), |(s, q), w| (s + w, q + w * w));
    sum * sum / sum_sq
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use statrs::distribution::{ContinuousCDF, Normal};

    /// `|x − y| ≤ tol · max(1, |x|, |y|)`.
    fn close(x: f64, y: f64, tol: f64) -> bool {
        (x - y).abs() <= tol * 1.0_f64.max(x.abs()).max(y.abs())
    }

    fn assert_interval(got: Option<Interval>, estimate: f64, half: f64) {
        let got = got.expect("an interval");
        assert!(close(got.estimate, estimate, 1e-12), "{got:?} vs {estimate}");
        assert!(close(got.low, estimate - half, 1e-12), "{got:?} vs ±{half}");
        assert!(close(got.high, estimate + half, 1e-12), "{got:?} vs ±{half}");
    }

    fn acc(values: &[f64]) -> MeanAccumulator {
        values.iter().copied().collect()
    }

    #[test]
    fn z95_is_the_normal_quantile() {
        let normal = Normal::new(0.0, 1.0).unwrap();
        assert!(close(normal.inverse_cdf(0.975), Z95, 1e-12));
    }

    #[test]
    fn mean_of_one_to_four() {
        // [1,2,3,4]: mean 2.5; deviations ±1.5, ±0.5 → squares 2.25+0.25+0.25+2.25 = 5; s² = 5/3;
        // se = √(5/3 / 4) = √(5/12) ≈ 0.645497; half-width = 1.959964 · 0.645497 ≈ 1.265151.
        let a = acc(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(a.n(), 4);
        assert_eq!(a.mean(), Some(2.5));
        assert!(close(a.variance().unwrap(), 5.0 / 3.0, 1e-14));
        assert_interval(a.interval(), 2.5, 1.26515131188166);
        assert_interval(mean_interval(&[1.0, 2.0, 3.0, 4.0]), 2.5, 1.26515131188166);
    }

    #[test]
    fn accumulator_edges() {
        let empty = MeanAccumulator::new();
        assert_eq!((empty.n(), empty.mean(), empty.variance()), (0, None, None));
        assert_eq!(empty.interval(), None);
        let one = acc(&[7.0]);
        assert_eq!((one.n(), one.mean(), one.variance()), (1, Some(7.0), None));
        assert_eq!(one.interval(), None);
        assert_eq!(mean_interval(&[]), None);
        assert_eq!(mean_interval(&[3.0]), None);
        // Non-finite values are not counted: [1, NaN, ∞, 3] is [1, 3] (mean 2, s² = 2).
        let skipped = acc(&[1.0, f64::NAN, f64::INFINITY, 3.0]);
        assert_eq!(skipped, acc(&[1.0, 3.0]));
        assert_eq!(skipped.variance(), Some(2.0));
        // Constant values: zero-width interval.
        assert_interval(mean_interval(&[5.0, 5.0, 5.0]), 5.0, 0.0);
        // Merging with an empty accumulator, either way round, changes nothing.
        let mut a = acc(&[1.0, 2.0]);
        a.merge(&MeanAccumulator::new());
        assert_eq!(a, acc(&[1.0, 2.0]));
        let mut e = MeanAccumulator::new();
        e.merge(&a);
        assert_eq!(e, a);
    }

    #[test]
    fn merge_by_hand() {
        // [1,2] (mean 1.5, M₂ 0.5) + [3,4] (mean 3.5, M₂ 0.5): δ = 2, M₂ = 0.5 + 0.5 + 4·2·2/4 = 5.
        let mut a = acc(&[1.0, 2.0]);
        a.merge(&acc(&[3.0, 4.0]));
        assert_eq!(a.n(), 4);
        assert_eq!(a.mean(), Some(2.5));
        assert!(close(a.variance().unwrap(), 5.0 / 3.0, 1e-14));
    }

    #[test]
    fn welch_difference_by_hand() {
        // a = [1,2,3,4]: mean 2.5, s² = 5/3, n 4; b = [2,4,6]: mean 4, s² = (4+0+4)/2 = 4, n 3.
        // d = −1.5; se² = (5/3)/4 + 4/3 = 5/12 + 16/12 = 21/12 = 1.75; half = 1.959964·√1.75 ≈ 2.592789.
        let (a, b) = (acc(&[1.0, 2.0, 3.0, 4.0]), acc(&[2.0, 4.0, 6.0]));
        assert_interval(difference(&a, &b), -1.5, 2.592788640868114);
        assert_interval(difference(&b, &a), 1.5, 2.592788640868114);
        assert_eq!(difference(&a, &acc(&[1.0])), None);
        assert_eq!(difference(&MeanAccumulator::new(), &b), None);
    }

    #[test]
    fn uplift_by_hand() {
        let (a, b) = (acc(&[1.0, 2.0, 3.0, 4.0]), acc(&[2.0, 4.0, 6.0]));
        let u = uplift("success", "treatment", "control", &a, &b).unwrap();
        assert_eq!(
            (u.metric.as_str(), u.group.as_str(), u.baseline.as_str()),
            ("success", "treatment", "control")
        );
        assert_interval(Some(u.difference), -1.5, 2.592788640868114);
        // Relative: −1.5 / |4| = −0.375.
        assert_eq!(u.relative, Some(-0.375));
        assert_eq!(u.method, UPLIFT_METHOD);
        assert!(u.includes_zero);
        let note = u.note.unwrap();
        assert!(
            note.contains("still includes zero")
                && note.contains("treatment differs from control (n = 4 vs 3)")
                && note.contains("normal approximation"),
            "{note}"
        );

        // 40 values of 10 ± 1 against 40 values of 0 ± 1: clearly non-zero, large samples, no note.
        let high: MeanAccumulator = (0..40).map(|i| 10.0 + f64::from(i % 2) * 2.0 - 1.0).collect();
        let low: MeanAccumulator = (0..40).map(|i| f64::from(i % 2) * 2.0 - 1.0).collect();
        let u = uplift("success", "treatment", "control", &high, &low).unwrap();
        assert!(!u.includes_zero);
        assert_eq!(u.note, None);
        // A zero baseline mean has no relative uplift, even when the running mean of the ±1 values
        // is not exactly zero after rounding.
        assert_eq!(u.relative, None);
        let zeros = acc(&[0.0; 5]);
        assert_eq!(zeros.mean(), Some(0.0));
        let u = uplift("success", "treatment", "control", &high, &zeros).unwrap();
        assert_eq!(u.relative, None);
        // A small but real baseline mean keeps its relative uplift: d = 10 − 0.001 over 0.001.
        let small = acc(&[0.0005, 0.0015]);
        let u = uplift("success", "treatment", "control", &high, &small).unwrap();
        assert!(close(u.relative.unwrap(), 9.999 / 0.001, 1e-9), "{:?}", u.relative);
        // Large samples whose interval includes zero: only the first sentence.
        let u = uplift("success", "treatment", "control", &low, &low).unwrap();
        let note = u.note.unwrap();
        assert!(note.contains("(n = 40 vs 40)") && !note.contains("rough"), "{note}");
        assert_eq!(uplift("m", "g", "b", &a, &acc(&[1.0])), None);
    }

    #[test]
    fn horvitz_thompson_by_hand() {
        // r = [10, 0, 5], π = [0.5, 0.25, 0.1], N = 40: r/π = [20, 0, 50], Σ = 70, Ŷ = 70/40 = 1.75.
        // z = 3·r/π/40 = [1.5, 0, 3.75] (mean 1.75); deviations −0.25, −1.75, 2 → squares
        // 0.0625 + 3.0625 + 4 = 7.125; v = 7.125 / (3·2) = 1.1875; half = 1.959964·√1.1875 ≈ 2.135821.
        let (r, p) = ([10.0, 0.0, 5.0], [0.5, 0.25, 0.1]);
        assert_interval(horvitz_thompson(&r, &p, 40.0), 1.75, 2.1358212353973527);
    }

    #[test]
    fn hajek_by_hand() {
        // Same units: Σ r/π = 70, Σ 1/π = 2 + 4 + 10 = 16, μ̂ = 70/16 = 4.375.
        // (r − μ̂)/π: 5.625/0.5 = 11.25, −4.375/0.25 = −17.5, 0.625/0.1 = 6.25 (they sum to 0);
        // squares 126.5625 + 306.25 + 39.0625 = 471.875; v = 471.875 / 16² = 1.84326171875;
        // half = 1.959964·√1.84326171875 ≈ 2.660980.
        let (r, p) = ([10.0, 0.0, 5.0], [0.5, 0.25, 0.1]);
        assert_interval(hajek(&r, &p), 4.375, 2.6609798925095247);
    }

    #[test]
    fn weighted_estimators_reject_bad_input() {
        let ok = [0.5, 0.5];
        for (r, p) in [
            (&[][..], &[][..]),
            (&[1.0][..], &[0.5][..]),
            (&[1.0, 2.0][..], &[0.5][..]),
            (&[1.0, 2.0][..], &[0.5, 0.0][..]),
            (&[1.0, 2.0][..], &[0.5, -0.1][..]),
            (&[1.0, 2.0][..], &[0.5, 1.5][..]),
            (&[1.0, 2.0][..], &[0.5, f64::NAN][..]),
            (&[1.0, f64::NAN][..], &ok[..]),
            (&[1.0, f64::INFINITY][..], &ok[..]),
        ] {
            assert_eq!(horvitz_thompson(r, p, 10.0), None, "{r:?} {p:?}");
            assert_eq!(hajek(r, p), None, "{r:?} {p:?}");
        }
        for n in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(horvitz_thompson(&[1.0, 2.0], &ok, n), None, "N = {n}");
        }
        // π = 1 is allowed.
        assert!(horvitz_thompson(&[1.0, 2.0], &[1.0, 1.0], 2.0).is_some());
        assert!(hajek(&[1.0, 2.0], &[1.0, 1.0]).is_some());
    }

    #[test]
    fn effective_sample_size_by_hand() {
        // [1,1,2]: (1+1+2)² / (1+1+4) = 16/6 = 8/3.
        assert!(close(effective_sample_size(&[1.0, 1.0, 2.0]), 8.0 / 3.0, 1e-14));
        // Equal weights: ESS = n, whatever the scale (also where Σw² would overflow).
        assert!(close(effective_sample_size(&[3.0; 5]), 5.0, 1e-14));
        assert!(close(effective_sample_size(&[1e300; 4]), 4.0, 1e-14));
        assert_eq!(effective_sample_size(&[]), 0.0);
        assert_eq!(effective_sample_size(&[0.0, 0.0]), 0.0);
        assert!(close(effective_sample_size(&[2.0, f64::NAN, 2.0]), 2.0, 1e-14));
    }

    #[test]
    fn normal_interval_rejects_non_finite() {
        assert_eq!(normal_interval(f64::NAN, 1.0), None);
        assert_eq!(normal_interval(1.0, f64::INFINITY), None);
        assert_eq!(normal_interval(1.0, -1.0), None);
        assert_eq!(normal_interval(f64::MAX, f64::MAX), None);
        assert_interval(normal_interval(1.0, 0.5), 1.0, Z95 * 0.5);
    }

    /// Two-pass mean and sample variance: the plain slice computation the accumulator must match.
    fn two_pass(values: &[f64]) -> (f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var)
    }

    fn contains_estimate(i: &Interval) -> bool {
        i.low <= i.estimate && i.estimate <= i.high
    }

    fn values(min: usize) -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(-1e3..1e3_f64, min..60)
    }

    fn check_intervals_contain_estimates(a: &[f64], p: &[f64]) -> Result<(), TestCaseError> {
        let intervals = [mean_interval(a), horvitz_thompson(a, p, 1000.0), hajek(a, p)];
        for i in intervals {
            let i = i.ok_or_else(|| TestCaseError::fail("no interval"))?;
            prop_assert!(contains_estimate(&i), "{i:?}");
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x0ff3_7100),
            ..ProptestConfig::default()
        })]

        #[test]
        fn pushed_equals_slice(xs in values(2)) {
            let a = acc(&xs);
            let (mean, var) = two_pass(&xs);
            prop_assert_eq!(a.n(), xs.len() as u64);
            prop_assert!(close(a.mean().unwrap(), mean, 1e-9));
            prop_assert!(close(a.variance().unwrap(), var, 1e-9));
            let se = (var / xs.len() as f64).sqrt();
            let i = mean_interval(&xs).unwrap();
            prop_assert!(close(i.low, mean - Z95 * se, 1e-9) && close(i.high, mean + Z95 * se, 1e-9));
        }

        #[test]
        fn merge_equals_pushing_everything(xs in values(0), ys in values(0)) {
            let mut merged = acc(&xs);
            merged.merge(&acc(&ys));
            let all = acc(&[xs.as_slice(), ys.as_slice()].concat());
            prop_assert_eq!(merged.n(), all.n());
            match (merged.mean(), all.mean()) {
                (Some(m), Some(a)) => prop_assert!(close(m, a, 1e-9), "{m} vs {a}"),
                (m, a) => prop_assert_eq!(m, a),
            }
            match (merged.variance(), all.variance()) {
                (Some(m), Some(a)) => prop_assert!(close(m, a, 1e-9), "{m} vs {a}"),
                (m, a) => prop_assert_eq!(m, a),
            }
        }

        #[test]
        fn difference_is_antisymmetric(xs in values(2), ys in values(2)) {
            let (a, b) = (acc(&xs), acc(&ys));
            let ab = difference(&a, &b).unwrap();
            let ba = difference(&b, &a).unwrap();
            // IEEE subtraction and addition are exactly sign-symmetric and commutative.
            prop_assert_eq!(ab.estimate, -ba.estimate);
            prop_assert_eq!(ab.low, -ba.high);
            prop_assert_eq!(ab.high, -ba.low);
            prop_assert!(contains_estimate(&ab));
        }

        #[test]
        fn intervals_contain_their_estimates(
            pairs in prop::collection::vec((-1e3..1e3_f64, 0.001..=1.0_f64), 2..60)
        ) {
            let (r, p): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
            check_intervals_contain_estimates(&r, &p)?;
        }

        #[test]
        fn equal_inclusion_gives_the_plain_mean(xs in values(2), pi in 0.001..=1.0_f64) {
            let p = vec![pi; xs.len()];
            let plain = mean_interval(&xs).unwrap();
            let h = hajek(&xs, &p).unwrap();
            prop_assert!(close(h.estimate, plain.estimate, 1e-9), "{h:?} vs {plain:?}");
            // With π = n/N the Horvitz–Thompson estimate and interval are the plain mean's.
            let n = xs.len() as f64;
            let ht = horvitz_thompson(&xs, &p, n / pi).unwrap();
            prop_assert!(close(ht.estimate, plain.estimate, 1e-9), "{ht:?} vs {plain:?}");
            prop_assert!(close(ht.low, plain.low, 1e-9) && close(ht.high, plain.high, 1e-9));
        }

        #[test]
        fn ess_is_between_one_and_n(ws in prop::collection::vec(0.001..1e6_f64, 1..60)) {
            let ess = effective_sample_size(&ws);
            prop_assert!(ess >= 1.0 - 1e-9 && ess <= ws.len() as f64 + 1e-9, "{ess}");
        }
    }
}
