//! The delay model: how much of a decision's final reward has been observed after a given time, so
//! that a reward whose attribution window is still open can be learned from without bias.
//!
//! # The reward as an accrual
//! Every success metric is `r = offset + sign · S` ([`offerloop_domain::SuccessMetric::accrual_parts`]):
//! `S` is an *accrual* that starts at 0 and only grows as outcomes are attributed (the 0/1 indicator of
//! a conversion, or a sum of purchase values), the offset is known at decision time (minus the
//! options' cost, or 1 for retention measured by a churn event, whose sign is −1). Write `S(e)` for
//! the accrual observed `e` hours after the decision's *origin* (its planned send time, or the decision
//! time when it is not scheduled; what happens between the decision and the send counts at `e = 0`),
//! and `S` for the final one.
//!
//! A decision's reward can no longer change once it is *closed*: at the end of its window, or earlier
//! when the same customer gets a later decision, which takes every later outcome (attribution credits
//! the latest decision). Its *span* is the time from origin to close. The final reward is the one
//! attribution gives at the close; a decision still open does not know when it will close, so the
//! model below holds for the mix of early and late closes of the recent past (set by the guardrails'
//! spacing of messages), which the estimate assumes the future repeats.
//!
//! # The delayed-feedback model
//! For a decision still open `e` hours after its origin,
//!
//! ```text
//! E[S(e) | x, a, open at e] = F(e) · E[S | x, a, open at e]
//! ```
//!
//! where `F(e)` is the share of the final accrual observed by `e` — for a 0/1 metric `P(observed by e |
//! converts)`, for amounts the value-weighted share. Hence `S(e) / F(e)` is an unbiased estimate of the
//! final accrual, and `offset + sign · S(e) / F(e)` of the final reward, as long as `F` is right. `F`
//! is assumed the same for every customer and action of a *group* (the channel option: email, SMS and
//! push differ in how fast they are read); it is estimated per group where the data supports it and
//! pooled otherwise.
//!
//! # Estimation, from closed decisions
//! On a grid `e_k = k · Δ` (`Δ` one hour, coarser for windows above 30 days), from the closed decisions
//! `i` with a non-zero final accrual `S_i` whose span exceeds `e_k` (the decisions that were open at
//! `e_k`, like the ones the estimate is applied to):
//!
//! ```text
//!           Σ_i S_i(e_k) + n₀ · s̄ · F₀(e_k)
//! F(e_k) = ──────────────────────────────────        (a ratio estimator, shrunk towards a prior)
//!              Σ_i S_i     + n₀ · s̄
//! ```
//!
//! with `s̄` the mean non-zero final accrual (so `n₀` counts converting decisions) and `n₀ =`
//! [`DelayConfig::prior_strength`]. Decisions that accrue nothing say nothing about *when* accrual
//! happens and drop out. Censoring by the next decision is handled by the risk set: a decision informs
//! `F(e_k)` only if it was still open at `e_k`. Between grid points `F` is interpolated linearly; at
//! and after the window's end it is 1.
//!
//! - **Pooled**: `F₀` is the prior, a truncated exponential delay `F₀(e) = (1 − e^{−e/μ}) /
//!   (1 − e^{−W/μ})` whose mean `μ` is fitted to every decision with an outcome, open ones included,
//!   so it is there from the first day on: each accrual step `ΔS_ij` at delay `d_ij` of a decision
//!   observed for `a_i` hours (its age, or its span once closed) is a draw of the delay truncated at
//!   `a_i`, and `μ̂` maximises `Σ ΔS_ij · [log f(d_ij) − log F(a_i)]` with `f(d) = e^{−d/μ}/μ`,
//!   `F(a) = 1 − e^{−a/μ}` (the classic estimator of reporting delays from right-truncated data). It
//!   is shrunk on the log scale towards [`DelayConfig::prior_mean_hours`] (24 hours: most purchases
//!   after a message happen within a day or two), `log μ = (m log μ̂ + n_μ log μ₀) / (m + n_μ)` with
//!   `m` the converting decisions behind `μ̂` and `n_μ =` [`DelayConfig::prior_mean_strength`] (200:
//!   the fit of the first days, from delays truncated at a day or two and mixed with purchases that
//!   would have happened anyway, is pulled towards slow delays — in the demo's world it put a third of
//!   a reward at one day where the truth is 55 %, and rewards learned on it were half as large again
//!   as they should be). Before any outcome, `μ = μ₀`.
//! - **Per group**: the same ratio, shrunk towards the pooled curve instead of the prior, so a group
//!   with a few converting decisions stays near the pooled curve and one with hundreds follows its own
//!   data.
//!
//! The variance of the data part of the ratio (the delta method) is
//! `Var F(e_k) ≈ Σ_i (S_i(e_k) − F(e_k) S_i)² / (Σ_i S_i + n₀ s̄)²` ([`DelayModel::variance`]).
//!
//! # Learning from it
//! The engine learns each decision **once**: when it has closed (`F = 1`, the exact final reward), or
//! earlier, as soon as `F(e)` reaches the share its options ask for, with the reward
//! `offset + sign · S(e) / F(e)` and the weight `F(e)` ([`crate::Feedback::observed`]). Weighting by
//! `F` makes a young observation count for the share of the evidence it holds: for the identity link the
//! weighted score `F · (r̂ − η) = offset·F + sign·S(e) − F·η` has expectation `F · (E[r] − η)`, zero at
//! the truth, and its curvature `F` is the information it carries. It is never learned again at
//! maturity, so no decision's information is counted twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Tunables of the delay model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DelayConfig {
    /// The attribution window, in hours: the longest a decision stays open.
    pub window_hours: f64,
    /// Mean of the prior's truncated exponential delay before any outcome, in hours (`μ₀`); the fitted
    /// mean is shrunk towards it.
    pub prior_mean_hours: f64,
    /// Weight of the prior (pooled curve) or of the pooled curve (group curves), in converting
    /// decisions.
    pub prior_strength: f64,
    /// Weight of [`DelayConfig::prior_mean_hours`] against the fitted mean, in converting decisions.
    pub prior_mean_strength: f64,
    /// Most grid points; the step is one hour unless the window needs more.
    pub max_bins: usize,
}

impl DelayConfig {
    /// The default configuration for a window of `days` days.
    pub fn for_window_days(days: u32) -> Self {
        Self {
            window_hours: f64::from(days) * 24.0,
            prior_mean_hours: 24.0,
            prior_strength: 20.0,
            prior_mean_strength: 200.0,
            max_bins: 720,
        }
    }
}

/// One decision, as the delay model sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DelayRecord {
    /// Its group (the channel option), if any.
    pub group: Option<String>,
    /// Hours from its origin to its close, or to now while it is open: how long it was observed.
    pub span_hours: f64,
    /// Whether it has closed (its final accrual is known). Only closed decisions enter the ratio
    /// estimator; open ones inform the prior's fitted mean.
    pub closed: bool,
    /// The accrual observed by each outcome, in time order: `(hours after the origin, accrual so far)`.
    /// The last one's accrual is the final accrual (0 without outcomes).
    pub steps: Vec<(f64, f64)>,
}

impl DelayRecord {
    /// The final accrual.
    pub fn final_accrual(&self) -> f64 {
        self.steps.last().map_or(0.0, |s| s.1)
    }

    /// The accrual observed by `hours` after the origin.
    pub fn accrual_at(&self, hours: f64) -> f64 {
        self.steps
            .iter()
            .take_while(|(at, _)| *at <= hours)
            .last()
            .map_or(0.0, |s| s.1)
    }
}

/// One estimated curve `F(e_k)` on the grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DelayCurve {
    /// `F(k · step)` for `k = 0 ..= bins`.
    pub share: Vec<f64>,
    /// The variance of each `F(k · step)`'s data part.
    pub variance: Vec<f64>,
    /// Closed decisions with a non-zero accrual behind the curve.
    pub records: u64,
}

/// The delay model: one curve pooled over every group, and one per group seen in the data; see the
/// [module docs](self).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DelayModel {
    /// Its configuration.
    pub config: DelayConfig,
    /// Grid step, in hours.
    pub step_hours: f64,
    /// The mean `μ` of the pooled curve's prior, fitted and shrunk (hours).
    pub prior_mean_hours: f64,
    /// The pooled curve.
    pub pooled: DelayCurve,
    /// The curve of each group.
    pub groups: BTreeMap<String, DelayCurve>,
}

/// Sums of one curve's ratio estimator, per grid point.
#[derive(Clone, Debug)]
struct Sums {
    /// `Σ S_i(e_k)`, `Σ S_i`, `Σ S_i(e_k)²`, `Σ S_i(e_k) S_i`, `Σ S_i²`.
    a: Vec<f64>,
    b: Vec<f64>,
    aa: Vec<f64>,
    ab: Vec<f64>,
    bb: Vec<f64>,
    /// Sum and count of non-zero final accruals (for `s̄`).
    total: f64,
    records: u64,
}

impl Sums {
    fn new(points: usize) -> Self {
        Self {
            a: vec![0.0; points],
            b: vec![0.0; points],
            aa: vec![0.0; points],
            ab: vec![0.0; points],
            bb: vec![0.0; points],
            total: 0.0,
            records: 0,
        }
    }

    fn add(&mut self, record: &DelayRecord, total: f64, step: f64) {
        self.total += total.abs();
        self.records += 1;
        let mut next = 0;
        let mut accrued = 0.0;
        for k in 0..self.a.len() {
            let e = k as f64 * step;
            if record.span_hours <= e {
                break;
            }
            while next < record.steps.len() && record.steps[next].0 <= e {
                accrued = record.steps[next].1;
                next += 1;
            }
            self.a[k] += accrued;
            self.b[k] += total;
            self.aa[k] += accrued * accrued;
            self.ab[k] += accrued * total;
            self.bb[k] += total * total;
        }
    }

    /// The curve, shrunk towards `prior` with `strength` converting decisions.
    fn curve(&self, prior: &[f64], strength: f64) -> DelayCurve {
        let mean = if self.records > 0 {
            self.total / self.records as f64
        } else {
            1.0
        };
        let pseudo = strength * mean;
        let mut share = Vec::with_capacity(self.a.len());
        let mut variance = Vec::with_capacity(self.a.len());
        for (k, &prior) in prior.iter().enumerate().take(self.a.len()) {
            let denominator = self.b[k] + pseudo;
            let f = if denominator > 0.0 {
                ((self.a[k] + pseudo * prior) / denominator).clamp(0.0, 1.0)
            } else {
                prior
            };
            let v = if denominator > 0.0 {
                ((self.aa[k] - 2.0 * f * self.ab[k] + f * f * self.bb[k]) / (denominator * denominator)).max(0.0)
            } else {
                0.0
            };
            share.push(f);
            variance.push(v);
        }
        if let Some(last) = share.last_mut() {
            *last = 1.0;
        }
        DelayCurve {
            share,
            variance,
            records: self.records,
        }
    }
}

impl DelayModel {
    /// The model before any decision has closed: the prior, for every group.
    pub fn prior(config: DelayConfig) -> Self {
        Self::estimate(config, &[])
    }

    /// Estimates the model from decisions, closed and open (see the [module docs](self)). Records with
    /// a zero final accrual are ignored; a group's curve exists once one of its closed records accrued
    /// something.
    pub fn estimate(config: DelayConfig, records: &[DelayRecord]) -> Self {
        let window = if config.window_hours.is_finite() && config.window_hours > 0.0 {
            config.window_hours
        } else {
            24.0
        };
        let bins = (window.ceil() as usize).clamp(1, config.max_bins.max(1));
        let step = window / bins as f64;
        let points = bins + 1;
        let mean = fitted_mean(&config, window, records);
        let norm = 1.0 - (-window / mean).exp();
        let prior: Vec<f64> = (0..points)
            .map(|k| ((1.0 - (-(k as f64 * step) / mean).exp()) / norm).clamp(0.0, 1.0))
            .collect();
        let mut pooled = Sums::new(points);
        let mut groups: BTreeMap<String, Sums> = BTreeMap::new();
        for record in records.iter().filter(|r| r.closed) {
            let total = record.final_accrual();
            if total == 0.0 || !total.is_finite() || !record.span_hours.is_finite() {
                continue;
            }
            pooled.add(record, total, step);
            if let Some(g) = &record.group {
                groups
                    .entry(g.clone())
                    .or_insert_with(|| Sums::new(points))
                    .add(record, total, step);
            }
        }
        let pooled = pooled.curve(&prior, config.prior_strength);
        let groups = groups
            .into_iter()
            .map(|(g, sums)| (g, sums.curve(&pooled.share, config.prior_strength)))
            .collect();
        Self {
            config: DelayConfig {
                window_hours: window,
                ..config
            },
            step_hours: step,
            prior_mean_hours: mean,
            pooled,
            groups,
        }
    }

    fn curve(&self, group: Option<&str>) -> &DelayCurve {
        group.and_then(|g| self.groups.get(g)).unwrap_or(&self.pooled)
    }

    fn interpolate(&self, values: &[f64], hours: f64) -> f64 {
        let x = (hours.max(0.0) / self.step_hours).min((values.len() - 1) as f64);
        let k = x.floor() as usize;
        let t = x - k as f64;
        match values.get(k + 1) {
            Some(next) => values[k] * (1.0 - t) + next * t,
            None => values[k],
        }
    }

    /// `F(e)`: the share of the final accrual observed `hours` after the origin, for `group` (the
    /// pooled curve for an unknown group or `None`); 1 at and after the window's end.
    pub fn share(&self, group: Option<&str>, hours: f64) -> f64 {
        if hours.is_nan() {
            return 0.0;
        }
        if hours >= self.config.window_hours {
            return 1.0;
        }
        self.interpolate(&self.curve(group).share, hours)
    }

    /// The variance of [`DelayModel::share`]'s data part (the prior is taken as known).
    pub fn variance(&self, group: Option<&str>, hours: f64) -> f64 {
        if hours.is_nan() || hours >= self.config.window_hours {
            return 0.0;
        }
        self.interpolate(&self.curve(group).variance, hours)
    }

    /// Closed decisions with a non-zero accrual behind `group`'s curve (the pooled one for `None`).
    pub fn records(&self, group: Option<&str>) -> u64 {
        self.curve(group).records
    }
}

/// The prior's mean `μ`: the right-truncated maximum-likelihood fit of an exponential delay to every
/// record's accrual steps, shrunk on the log scale towards [`DelayConfig::prior_mean_hours`] (see the
/// [module docs](self)).
fn fitted_mean(config: &DelayConfig, window: f64, records: &[DelayRecord]) -> f64 {
    let mu0 = if config.prior_mean_hours.is_finite() && config.prior_mean_hours > 0.0 {
        config.prior_mean_hours
    } else {
        24.0
    };
    // (delay, truncation, weight) of every positive accrual step.
    let mut steps: Vec<(f64, f64, f64)> = Vec::new();
    let (mut total, mut converting) = (0.0, 0u64);
    for r in records {
        let span = r.span_hours.min(window);
        if span.is_nan() || span <= 0.0 {
            continue;
        }
        let mut before = 0.0;
        let mut any = false;
        for &(d, accrual) in &r.steps {
            let weight = accrual - before;
            before = accrual;
            if weight > 0.0 && weight.is_finite() && d.is_finite() && d < span {
                steps.push((d.max(0.0), span, weight));
                total += weight;
                any = true;
            }
        }
        converting += u64::from(any);
    }
    if converting == 0 || total <= 0.0 {
        return mu0;
    }
    let log_likelihood = |log_mu: f64| -> f64 {
        let mu = log_mu.exp();
        steps
            .iter()
            .map(|&(d, a, w)| {
                let truncation = -(-a / mu).exp_m1();
                w * (-d / mu - log_mu - truncation.max(1e-300).ln())
            })
            .sum::<f64>()
    };
    // Golden-section search on log μ, from half an hour to ten windows.
    let (mut lo, mut hi) = ((0.5f64).ln(), (10.0 * window).ln());
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let mut x1 = hi - ratio * (hi - lo);
    let mut x2 = lo + ratio * (hi - lo);
    let (mut f1, mut f2) = (log_likelihood(x1), log_likelihood(x2));
    for _ in 0..80 {
        if f1 < f2 {
            lo = x1;
            x1 = x2;
            f1 = f2;
            x2 = lo + ratio * (hi - lo);
            f2 = log_likelihood(x2);
        } else {
            hi = x2;
            x2 = x1;
            f2 = f1;
            x1 = hi - ratio * (hi - lo);
            f1 = log_likelihood(x1);
        }
    }
    let fitted = (lo + hi) / 2.0;
    let m = converting as f64;
    let n0 = config.prior_mean_strength.max(0.0);
    ((m * fitted + n0 * mu0.ln()) / (m + n0)).exp()
}

/// The unbiased estimate of a final reward from the accrual observed so far: `offset + sign · accrual
/// / share` (`share` is `F(e)`; at 1 this is the observed reward itself).
pub fn corrected_reward(offset: f64, sign: f64, accrual: f64, share: f64) -> f64 {
    offset + sign * accrual / share
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use rand::rngs::StdRng;
    use rand::{RngExt as _, SeedableRng as _};

    use super::*;

    const W: f64 = 14.0 * 24.0;

    /// A truncated exponential delay with mean `mean` hours, below `cap` (inverse CDF).
    fn delay(rng: &mut StdRng, mean: f64, cap: f64) -> f64 {
        let u: f64 = rng.random();
        -mean * (1.0 - u * (1.0 - (-cap / mean).exp())).ln()
    }

    fn true_share(mean: f64, e: f64) -> f64 {
        (1.0 - (-e / mean).exp()) / (1.0 - (-W / mean).exp())
    }

    /// `n` decisions converting with probability `p` after a truncated exponential delay of mean
    /// `mean` hours, closed after `span` hours: the records of the closed ones, and how many of all
    /// had converted by `observed` hours.
    fn cohort(rng: &mut StdRng, n: usize, p: f64, mean: f64, span: f64) -> Vec<DelayRecord> {
        (0..n)
            .map(|_| {
                let converted = rng.random::<f64>() < p;
                let d = delay(rng, mean, W);
                DelayRecord {
                    group: None,
                    span_hours: span,
                    closed: true,
                    steps: if converted && d < span {
                        vec![(d, 1.0)]
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect()
    }

    #[test]
    fn the_prior_is_a_truncated_exponential_and_one_at_the_end() {
        let model = DelayModel::prior(DelayConfig::for_window_days(14));
        assert_eq!(model.step_hours, 1.0);
        assert_eq!(model.prior_mean_hours, 24.0);
        assert!((model.share(None, 48.0) - true_share(24.0, 48.0)).abs() < 1e-9);
        assert!((model.share(Some("sms"), 30.5) - true_share(24.0, 30.5)).abs() < 1e-3);
        assert_eq!(model.share(None, 0.0), 0.0);
        assert_eq!(model.share(None, W), 1.0);
        assert_eq!(model.share(None, 1e9), 1.0);
        assert_eq!(model.records(None), 0);
    }

    #[test]
    fn enough_data_outweighs_the_prior_and_groups_shrink_to_the_pool() {
        let mut rng = StdRng::seed_from_u64(7);
        // Email converts slowly (mean 72 h), SMS fast (mean 6 h); push has two converting decisions.
        let mut records = Vec::new();
        for (group, mean, n) in [("email", 72.0, 20_000), ("sms", 6.0, 20_000), ("push", 6.0, 20)] {
            for mut r in cohort(&mut rng, n, 0.2, mean, W) {
                r.group = Some(group.to_owned());
                records.push(r);
            }
        }
        let model = DelayModel::estimate(DelayConfig::for_window_days(14), &records);
        let e = 24.0;
        assert!((model.share(Some("email"), e) - true_share(72.0, e)).abs() < 0.03);
        assert!((model.share(Some("sms"), e) - true_share(6.0, e)).abs() < 0.03);
        // Push has too little data of its own: it stays near the pooled curve, not at its truth.
        let push = model.share(Some("push"), e);
        let pooled = model.share(None, e);
        assert!(
            (push - pooled).abs() < (true_share(6.0, e) - pooled).abs() / 2.0,
            "{push} {pooled}"
        );
        assert!(model.records(Some("email")) > 3_000);
    }

    #[test]
    fn decisions_closed_early_count_for_the_time_they_were_open() {
        // Half the decisions are closed after 2 days (a later message took over, and with it every
        // later outcome), half run their whole window. Before 2 days both kinds are open, so the share
        // observed is `2 F(e) / (1 + F(48 h))`; after, only the long ones are, and it is `F(e)`.
        let mut rng = StdRng::seed_from_u64(11);
        let mut records = cohort(&mut rng, 30_000, 0.2, 24.0, W);
        records.extend(cohort(&mut rng, 30_000, 0.2, 24.0, 48.0));
        let model = DelayModel::estimate(DelayConfig::for_window_days(14), &records);
        for e in [12.0, 36.0] {
            let expected = 2.0 * true_share(24.0, e) / (1.0 + true_share(24.0, 48.0));
            assert!((model.share(None, e) - expected).abs() < 0.02, "F({e})");
        }
        assert!((model.share(None, 72.0) - true_share(24.0, 72.0)).abs() < 0.02, "F(72)");
    }

    /// The test the issue asks for: in a world with a known delay distribution, the conversion
    /// estimate from three days of partial data is unbiased — the true value inside its 95 % interval
    /// in at least 95 % of seeded repetitions — and the naive estimate (not converted yet = 0) is not.
    ///
    /// Each repetition draws a matured cohort (every window closed) to learn the delay model from, and
    /// a new cohort observed for three days; `p̂ = ȳ(3 d) / F̂(3 d)` with
    /// `Var p̂ ≈ Var ȳ / F̂² + ȳ² Var F̂ / F̂⁴` (the delta method). With 200 repetitions the standard
    /// error of a coverage of 0.95 is `√(0.95 · 0.05 / 200) = 0.0154`; the test asks for at least
    /// 0.95 − 2 × 0.0154 ≈ 0.919 (a true coverage of 95 % passes with probability ≈ 98 %) and for the
    /// naive interval to cover in fewer than half of the repetitions.
    #[test]
    fn three_days_of_partial_data_estimate_conversion_without_bias() {
        const REPS: usize = 200;
        const MATURED: usize = 4_000;
        const FRESH: usize = 4_000;
        const P: f64 = 0.08;
        // The delay: log-normal-like shapes would do as well; a truncated exponential with a mean of
        // 40 hours, unlike the prior's 48, so the data must correct the prior.
        const MEAN: f64 = 40.0;
        const E: f64 = 72.0;
        let config = DelayConfig::for_window_days(14);
        let (mut covered, mut naive_covered) = (0, 0);
        let (mut sum, mut naive_sum) = (0.0, 0.0);
        for rep in 0..REPS {
            let mut rng = StdRng::seed_from_u64(1_000 + rep as u64);
            let matured = cohort(&mut rng, MATURED, P, MEAN, W);
            let model = DelayModel::estimate(config.clone(), &matured);
            let fresh = cohort(&mut rng, FRESH, P, MEAN, W);
            let y: Vec<f64> = fresh.iter().map(|r| r.accrual_at(E)).collect();
            let n = y.len() as f64;
            let mean = y.iter().sum::<f64>() / n;
            let var_mean = y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) / n;
            let f = model.share(None, E);
            let estimate = corrected_reward(0.0, 1.0, mean, f);
            let var = var_mean / (f * f) + mean * mean * model.variance(None, E) / f.powi(4);
            let half = 1.96 * var.sqrt();
            covered += usize::from((estimate - P).abs() <= half);
            sum += estimate;
            let naive_half = 1.96 * var_mean.sqrt();
            naive_covered += usize::from((mean - P).abs() <= naive_half);
            naive_sum += mean;
        }
        let coverage = covered as f64 / REPS as f64;
        let naive = naive_covered as f64 / REPS as f64;
        let (mean, naive_mean) = (sum / REPS as f64, naive_sum / REPS as f64);
        assert!(
            coverage >= 0.919,
            "coverage {coverage}, mean estimate {mean} (true {P})"
        );
        assert!(coverage <= 0.995, "intervals too wide: coverage {coverage}");
        assert!(naive < 0.5, "naive coverage {naive}");
        // The naive estimate misses the conversions still to come: its mean is P · F(3 d).
        assert!((naive_mean - P * true_share(MEAN, E)).abs() < 0.002, "{naive_mean}");
        assert!((mean - P).abs() < 0.002, "mean estimate {mean}");
    }

    #[test]
    fn before_any_decision_closes_the_prior_is_fitted_to_the_open_ones() {
        // Decisions one to two days old, nothing closed: the delays seen so far are truncated at each
        // decision's age. The fitted mean recovers a fast world's; in a slow one, where the first two
        // days say little about the mean beyond "long", it is long, and little is taken as observed
        // after a day (so nothing is learned early on the prior alone).
        for (mean, lo, hi) in [(30.0, 24.0, 37.0), (200.0, 110.0, f64::INFINITY)] {
            let mut rng = StdRng::seed_from_u64(3);
            let records: Vec<DelayRecord> = (0..40_000)
                .map(|_| {
                    let age = 20.0 + 24.0 * rng.random::<f64>();
                    let d = delay(&mut rng, mean, W);
                    let converted = rng.random::<f64>() < 0.05;
                    DelayRecord {
                        group: None,
                        span_hours: age,
                        closed: false,
                        steps: if converted && d < age {
                            vec![(d, 1.0)]
                        } else {
                            Vec::new()
                        },
                    }
                })
                .collect();
            let model = DelayModel::estimate(DelayConfig::for_window_days(14), &records);
            assert!(
                model.prior_mean_hours > lo && model.prior_mean_hours < hi,
                "true mean {mean}: fitted {}",
                model.prior_mean_hours
            );
            assert_eq!(model.records(None), 0, "no closed decision behind the ratio");
            let expected = true_share(mean, 24.0);
            assert!(
                (model.share(None, 24.0) - expected).abs() < 0.1,
                "F(24 h) for mean {mean}"
            );
        }
    }

    #[test]
    fn amounts_are_weighted_by_value_and_the_model_round_trips() {
        // Big purchases come late, small ones early: the value-weighted share is below the count share.
        let records: Vec<DelayRecord> = (0..200)
            .map(|i| DelayRecord {
                group: Some("email".into()),
                span_hours: W,
                closed: true,
                steps: if i % 2 == 0 {
                    vec![(2.0, 10.0)]
                } else {
                    vec![(100.0, 90.0)]
                },
            })
            .collect();
        let mut config = DelayConfig::for_window_days(14);
        config.prior_strength = 0.0;
        let model = DelayModel::estimate(config, &records);
        assert!((model.share(Some("email"), 50.0) - 0.1).abs() < 1e-9);
        assert!((model.share(Some("email"), 1.0) - 0.0).abs() < 1e-9);
        let json = serde_json::to_string(&model).unwrap();
        assert_eq!(serde_json::from_str::<DelayModel>(&json).unwrap(), model);
    }
}
