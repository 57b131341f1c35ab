//! The audience segment row: the segment exists, and its latest size gives the holdout's statistical
//! power, stated as the minimum detectable uplift at 95 % confidence and 80 % power ([`Power`]; the
//! thresholds and the formula are in the [`preflight`](super) module docs).

use offerloop_braze::BrazeApi;
use offerloop_braze::api::catalog::{SegmentDataSeriesRequest, SegmentDetailsRequest};
use offerloop_domain::UseCase;
use offerloop_domain::usecase::AudienceSource;
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

use super::{CheckResult, CheckStatus, RETRY_FIX, ReadFailure, classify, names, not_checked};

/// Baseline conversion rate assumed for binary metrics when stating the minimum detectable uplift.
pub const ASSUMED_BASELINE: f64 = 0.05;
/// A binary metric's minimum detectable uplift above this share of the baseline is a ⚠.
pub const WARN_RELATIVE_MDE: f64 = 0.20;
/// A binary metric's minimum detectable uplift above this share of the baseline is a ✗.
pub const FAIL_RELATIVE_MDE: f64 = 1.0;
/// A value metric's minimum detectable uplift above this many standard deviations is a ⚠.
pub const WARN_MDE_SD: f64 = 0.05;
/// A value metric's minimum detectable uplift above this many standard deviations is a ✗.
pub const FAIL_MDE_SD: f64 = 0.25;
/// Days of `/segments/data_series` read for the segment's recent size.
pub const SEGMENT_SERIES_DAYS: u32 = 7;

/// `z₀.₉₇₅ + z₀.₈ ≈ 2.8016`: the two-sided 95 % confidence and 80 % power multiplier.
pub fn power_multiplier() -> f64 {
    let normal = Normal::standard();
    normal.inverse_cdf(0.975) + normal.inverse_cdf(0.8)
}

/// The minimum detectable difference of means, in standard deviations of the reward, between
/// `n_treatment` and `n_control` customers (two-sample normal approximation, equal variances):
/// `(z₀.₉₇₅ + z₀.₈) · √(1/n_t + 1/n_c)`. `None` when a group has fewer than one customer.
pub fn minimum_detectable_effect(n_treatment: f64, n_control: f64) -> Option<f64> {
    (n_treatment >= 1.0 && n_control >= 1.0).then(|| power_multiplier() * (1.0 / n_treatment + 1.0 / n_control).sqrt())
}

/// The holdout's power for an audience of a given size.
#[derive(Clone, Copy, PartialEq, Debug, Serialize)]
pub struct Power {
    /// Customers in the audience.
    pub audience: u64,
    /// Expected treated customers (the policy decides): `audience · (1 − control − random control)`.
    pub n_treatment: f64,
    /// Expected control customers: `audience · control`.
    pub n_control: f64,
    /// [`minimum_detectable_effect`] of the two groups, in standard deviations.
    pub mde_sd: Option<f64>,
}

impl Power {
    /// The power of an audience of `audience` customers split by the holdout shares.
    pub fn new(audience: u64, control: f64, random_control: f64) -> Self {
        let n = audience as f64;
        let n_control = n * control;
        let n_treatment = n * (1.0 - control - random_control).max(0.0);
        Self {
            audience,
            n_treatment,
            n_control,
            mde_sd: minimum_detectable_effect(n_treatment, n_control),
        }
    }

    /// For a binary metric at `baseline`: the minimum detectable uplift in absolute terms (a rate,
    /// e.g. 0.0204 for 2.04 percentage points), `σ = √(p(1 − p))` times [`Power::mde_sd`].
    pub fn binary_mde(&self, baseline: f64) -> Option<f64> {
        self.mde_sd.map(|sd| sd * (baseline * (1.0 - baseline)).sqrt())
    }
}

/// Thousands separated by commas, for counts people read.
fn count(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The segment row's verdict on a measured size.
fn power_result(use_case: &UseCase, segment_id: &str, size: u64) -> CheckResult {
    let control = use_case.holdout.control_fraction().get();
    let random_control = use_case.holdout.random_control_fraction().get();
    if size == 0 {
        return CheckResult::warn(
            names::SEGMENT,
            format!(
                "segment `{segment_id}` exists but Braze reports 0 customers in it over the last {SEGMENT_SERIES_DAYS} days"
            ),
            Some(
                "check the segment's filters in Braze; a new segment's size appears after Braze computes it".to_owned(),
            ),
        );
    }
    if control <= 0.0 {
        return CheckResult::warn(
            names::SEGMENT,
            format!(
                "segment `{segment_id}`: {} customers, but the holdout has no control group, so uplift cannot be measured",
                count(size as f64)
            ),
            Some("set `holdout.control_fraction` (e.g. 0.1)".to_owned()),
        );
    }
    let power = Power::new(size, control, random_control);
    let groups = format!(
        "{} customers: about {} treated, {} control ({:.0} % control share)",
        count(size as f64),
        count(power.n_treatment),
        count(power.n_control),
        control * 100.0
    );
    let fix = format!(
        "use a larger audience segment, or raise `holdout.control_fraction` ({:.0} % now) toward 50 %",
        control * 100.0
    );
    let Some(sd) = power.mde_sd else {
        return CheckResult::fail(
            names::SEGMENT,
            format!("segment `{segment_id}`: {groups}: a group would be empty, so uplift cannot be measured"),
            fix,
        );
    };
    let (status, what) = if use_case.metric.kind.is_binary() {
        let absolute = power.binary_mde(ASSUMED_BASELINE).unwrap_or(f64::INFINITY);
        let relative = absolute / ASSUMED_BASELINE;
        let status = if relative > FAIL_RELATIVE_MDE {
            CheckStatus::Fail
        } else if relative > WARN_RELATIVE_MDE {
            CheckStatus::Warn
        } else {
            CheckStatus::Pass
        };
        (
            status,
            format!(
                "minimum detectable uplift {:.2} percentage points on an assumed {:.0} % baseline ({:.0} % relative)",
                absolute * 100.0,
                ASSUMED_BASELINE * 100.0,
                relative * 100.0
            ),
        )
    } else {
        let status = if sd > FAIL_MDE_SD {
            CheckStatus::Fail
        } else if sd > WARN_MDE_SD {
            CheckStatus::Warn
        } else {
            CheckStatus::Pass
        };
        (
            status,
            format!("minimum detectable uplift {sd:.3} standard deviations of the reward"),
        )
    };
    let detail = format!("segment `{segment_id}`: {groups}; {what} at 95 % confidence and 80 % power");
    match status {
        CheckStatus::Pass => CheckResult::pass(names::SEGMENT, detail),
        CheckStatus::Warn => CheckResult::warn(
            names::SEGMENT,
            format!("{detail}: only a large effect will be measurable"),
            Some(fix),
        ),
        CheckStatus::Fail => CheckResult::fail(
            names::SEGMENT,
            format!("{detail}: too small to measure any realistic effect"),
            fix,
        ),
    }
}

/// The segment row.
pub(super) async fn segment_check(api: &dyn BrazeApi, use_case: &UseCase) -> CheckResult {
    let segment_id = match &use_case.audience.source {
        AudienceSource::Segment { segment_id } => segment_id,
        AudienceSource::IdsFile { path } => {
            return CheckResult::pass(
                names::SEGMENT,
                format!("the audience is the ids file `{path}`: no segment to check"),
            );
        }
    };
    if let Err(e) = api
        .segment_details(SegmentDetailsRequest::new(segment_id.clone()))
        .await
    {
        return match classify(&e) {
            ReadFailure::Missing => CheckResult::fail(
                names::SEGMENT,
                format!("segment `{segment_id}` does not exist in this workspace"),
                "correct `audience.segment_id` (Braze: Segments > the segment, API identifier)",
            ),
            ReadFailure::NoPermission(p) => not_checked(names::SEGMENT, &format!("segment `{segment_id}`"), p),
            ReadFailure::Other(message) => CheckResult::fail(
                names::SEGMENT,
                format!("segment `{segment_id}` could not be read: {message}"),
                RETRY_FIX,
            ),
        };
    }
    let series = api
        .segment_data_series(SegmentDataSeriesRequest::new(segment_id.clone(), SEGMENT_SERIES_DAYS))
        .await;
    match series {
        Ok(series) => match series.data.iter().rev().find_map(|point| point.size) {
            Some(size) => power_result(use_case, segment_id, size),
            None => CheckResult::warn(
                names::SEGMENT,
                format!(
                    "segment `{segment_id}` exists, but Braze reported no size for the last {SEGMENT_SERIES_DAYS} days"
                ),
                Some("enable analytics tracking for the segment in Braze so its size is recorded".to_owned()),
            ),
        },
        Err(e) => match classify(&e) {
            ReadFailure::NoPermission(p) => {
                not_checked(names::SEGMENT, &format!("the size of segment `{segment_id}`"), p)
            }
            ReadFailure::Missing | ReadFailure::Other(_) => CheckResult::warn(
                names::SEGMENT,
                format!("segment `{segment_id}` exists, but its size could not be read: {e}"),
                None,
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::example;

    #[test]
    fn the_minimum_detectable_effect_matches_a_hand_computation() {
        // z(0.975) = 1.959964, z(0.8) = 0.841621.
        assert!((power_multiplier() - 2.801585).abs() < 1e-6);
        // 10,000 customers, 10 % control, 5 % random control: 1,000 control and 8,500 treated.
        // √(1/8500 + 1/1000) = √0.00111765 = 0.0334312; × 2.801585 = 0.093661 standard deviations.
        let power = Power::new(10_000, 0.10, 0.05);
        assert!((power.n_control - 1_000.0).abs() < 1e-9 && (power.n_treatment - 8_500.0).abs() < 1e-9);
        let sd = power.mde_sd.unwrap();
        assert!((sd - 0.093661).abs() < 1e-6, "{sd}");
        // At a 5 % baseline σ = √(0.05 · 0.95) = 0.217945: 0.093661 · 0.217945 = 0.020413, i.e.
        // 2.04 percentage points, 40.8 % of the baseline.
        let absolute = power.binary_mde(0.05).unwrap();
        assert!((absolute - 0.020413).abs() < 1e-6, "{absolute}");
        assert!(Power::new(5, 0.1, 0.0).mde_sd.is_none(), "half a control customer");
        assert!(minimum_detectable_effect(10.0, 0.0).is_none());
    }

    #[test]
    fn power_rows_follow_the_thresholds() {
        let use_case = example("winback"); // revenue: standard deviations
        let row = |size| power_result(&use_case, "seg", size);
        assert_eq!(row(0).status, CheckStatus::Warn);
        assert!(row(0).detail.contains("0 customers"));
        // 2,000,000 customers: 0.0066 SD.
        assert_eq!(row(2_000_000).status, CheckStatus::Pass);
        assert!(
            row(2_000_000).detail.contains("2,000,000 customers"),
            "{}",
            row(2_000_000).detail
        );
        assert_eq!(row(10_000).status, CheckStatus::Warn);
        assert_eq!(row(100).status, CheckStatus::Fail);
        assert_eq!(row(5).status, CheckStatus::Fail, "no control customer");
        assert!(row(5).detail.contains("would be empty"));
    }

    #[test]
    fn binary_metrics_are_judged_in_percentage_points() {
        let use_case = example("lead-nurture"); // conversion on `trial_started`
        let row = power_result(&use_case, "seg", 10_000);
        assert!(
            row.detail.contains("percentage points on an assumed 5 % baseline"),
            "{}",
            row.detail
        );
        assert_eq!(row.status, CheckStatus::Warn, "{}", row.detail);
        assert_eq!(power_result(&use_case, "seg", 5_000_000).status, CheckStatus::Pass);
    }

    #[tokio::test]
    async fn the_segment_row_reads_the_latest_size() {
        use offerloop_braze::api::catalog::{SegmentDataSeriesResponse, SegmentDetailsResponse};
        use offerloop_braze::{BrazeError, Endpoint, MockBrazeApi};
        use serde_json::json;

        let use_case = example("winback");
        let mut api = MockBrazeApi::new();
        api.expect_segment_details()
            .times(1)
            .returning(|_| Ok(SegmentDetailsResponse::default()));
        api.expect_segment_data_series().times(1).returning(|r| {
            assert_eq!(r.length, SEGMENT_SERIES_DAYS);
            Ok(serde_json::from_value::<SegmentDataSeriesResponse>(json!({"data": [{"time": "2026-01-05"}]})).unwrap())
        });
        let row = segment_check(&api, &use_case).await;
        assert_eq!(row.status, CheckStatus::Warn);
        assert!(row.detail.contains("reported no size"), "{}", row.detail);

        let mut api = MockBrazeApi::new();
        api.expect_segment_details().times(1).returning(|_| {
            Err(BrazeError::NotFound {
                endpoint: Endpoint::SegmentsDetails,
                message: String::new(),
            })
        });
        let row = segment_check(&api, &use_case).await;
        assert_eq!(row.status, CheckStatus::Fail);
        assert!(row.detail.contains("does not exist"), "{}", row.detail);
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(
            [
                count(0.0),
                count(999.0),
                count(1_000.0),
                count(1_234_567.4),
                count(-3.0)
            ],
            ["0", "999", "1,000", "1,234,567", "0"]
        );
    }
}
