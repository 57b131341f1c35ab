//! Success metrics: how a stream of outcomes becomes the reward of a decision.
//!
//! Every metric has an attribution window in days. An outcome is attributed to a decision when it
//! belongs to the same customer, matches the metric, and happens in `[decided_at, decided_at + window)`.
//! The reward is [`RewardStatus::Pending`] while the window is open and [`RewardStatus::Final`] once it
//! has closed. Outcomes seen twice (same `dedupe_key`) count once.
//!
//! Every reward is `offset + sign × accrual` ([`SuccessMetric::accrual_parts`]): an accrual that only
//! grows as matching outcomes arrive (a 0/1 "it happened", or a sum of values), turned into the metric
//! by a constant offset (e.g. minus the options' cost) and a sign (−1 for a churn event, which lowers
//! retention). This is what lets the engine learn from a window still open: the policy's delay model
//! (`offerloop_policy::delay`) corrects the accrual observed so far, never the offset.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::decision::{Decision, Outcome, OutcomeKind, Reward, RewardStatus};

/// Longest attribution window accepted, in days.
pub const MAX_ATTRIBUTION_WINDOW_DAYS: u32 = 365;

/// Which outcomes count as a conversion.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "on", rename_all = "snake_case")]
pub enum ConversionOn {
    /// A custom event with this name.
    CustomEvent {
        /// Event name.
        event: String,
    },
    /// A purchase of this product, or of any product when `None`.
    Purchase {
        /// Product id filter.
        product: Option<String>,
    },
}

/// What the marketer optimises.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MetricKind {
    /// 1 if the customer converted within the window, else 0.
    Conversion {
        /// What counts as converting.
        on: ConversionOn,
    },
    /// Sum of purchase values within the window, minus the chosen options' cost when asked.
    Revenue {
        /// Product id filter (`None`: every purchase).
        product: Option<String>,
        /// Subtract [`Decision::cost`].
        subtract_option_cost: bool,
    },
    /// Average revenue per user: per decision the revenue in the window (zero included); reports divide
    /// by the number of customers of a group.
    Arpu {
        /// Product id filter.
        product: Option<String>,
    },
    /// 1 if the customer stayed: did the activity event (`active_event`), or did not do the churn event
    /// (`churn_event`), within the window. Exactly one of the two is set.
    Retention {
        /// Event that shows the customer is active.
        active_event: Option<String>,
        /// Event that shows the customer left (cancellation, unsubscription).
        churn_event: Option<String>,
    },
    /// 1 if the renewal event happened within the window.
    Renewal {
        /// The renewal event.
        event: String,
    },
    /// Sum of the value of a custom event within the window (e.g. loyalty points, referral sign-ups).
    EventValue {
        /// Event name.
        event: String,
        /// The event property that carries the value (read by the engine into [`Outcome::value`]).
        property: String,
        /// Subtract [`Decision::cost`].
        subtract_option_cost: bool,
    },
    /// Net present value of purchases in the window, each discounted from its day back to the decision
    /// at an annual rate, minus the options' cost when asked.
    Npv {
        /// Product id filter.
        product: Option<String>,
        /// Annual discount rate, e.g. 0.1 for 10 %.
        annual_discount_rate: f64,
        /// Subtract [`Decision::cost`].
        subtract_option_cost: bool,
    },
}

impl MetricKind {
    /// Whether the reward has the chosen options' costs subtracted (`subtract_option_cost` of the
    /// amount metrics; never for the others).
    pub fn subtracts_option_cost(&self) -> bool {
        match self {
            Self::Revenue {
                subtract_option_cost, ..
            }
            | Self::EventValue {
                subtract_option_cost, ..
            }
            | Self::Npv {
                subtract_option_cost, ..
            } => *subtract_option_cost,
            _ => false,
        }
    }

    /// The name used in configuration files.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Conversion { .. } => "conversion",
            Self::Revenue { .. } => "revenue",
            Self::Arpu { .. } => "arpu",
            Self::Retention { .. } => "retention",
            Self::Renewal { .. } => "renewal",
            Self::EventValue { .. } => "event_value",
            Self::Npv { .. } => "npv",
        }
    }

    /// Whether rewards are 0/1 (a Bernoulli model fits) rather than real-valued.
    pub fn is_binary(&self) -> bool {
        matches!(
            self,
            Self::Conversion { .. } | Self::Retention { .. } | Self::Renewal { .. }
        )
    }

    fn matches(&self, kind: &OutcomeKind) -> bool {
        let purchase = |filter: &Option<String>| match kind {
            OutcomeKind::Purchase { product_id } => filter.as_ref().is_none_or(|p| p == product_id),
            _ => false,
        };
        let event = |wanted: &str| matches!(kind, OutcomeKind::CustomEvent { name } if name == wanted);
        match self {
            Self::Conversion {
                on: ConversionOn::CustomEvent { event: e },
            } => event(e),
            Self::Conversion {
                on: ConversionOn::Purchase { product },
            } => purchase(product),
            Self::Revenue { product, .. } | Self::Arpu { product } | Self::Npv { product, .. } => purchase(product),
            Self::Retention {
                active_event,
                churn_event,
            } => active_event.as_deref().is_some_and(event) || churn_event.as_deref().is_some_and(event),
            Self::Renewal { event: e } | Self::EventValue { event: e, .. } => event(e),
        }
    }
}

/// The success metric of a use case.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct SuccessMetric {
    /// What is optimised.
    pub kind: MetricKind,
    /// Attribution window in days (1 to [`MAX_ATTRIBUTION_WINDOW_DAYS`]).
    pub attribution_window_days: u32,
}

impl SuccessMetric {
    /// The length of the attribution window.
    pub fn window(&self) -> SignedDuration {
        SignedDuration::from_hours(i64::from(self.attribution_window_days) * 24)
    }

    /// When the window of a decision made at `decided_at` closes.
    pub fn window_end(&self, decided_at: Timestamp) -> Timestamp {
        decided_at.saturating_add(self.window()).unwrap_or(Timestamp::MAX)
    }

    /// Whether an outcome of this kind counts for the metric (before the window and deduplication).
    pub fn counts(&self, kind: &OutcomeKind) -> bool {
        self.kind.matches(kind)
    }

    /// The reward of `decision` as `(offset, sign)`: `reward = offset + sign × accrual`, where the
    /// accrual starts at 0 and only grows as outcomes are attributed — the 0/1 indicator of the event
    /// for conversion, renewal and retention, the (discounted) sum of values for amounts. The offset is
    /// minus the options' cost when the metric subtracts it, and 1 for retention measured by a churn
    /// event, whose sign is −1 (retained unless the churn event happens).
    pub fn accrual_parts(&self, decision: &Decision) -> (f64, f64) {
        match &self.kind {
            MetricKind::Retention { active_event: None, .. } => (1.0, -1.0),
            kind if kind.subtracts_option_cost() => (-decision.cost, 1.0),
            _ => (0.0, 1.0),
        }
    }

    /// The reward of `decision` given the outcomes observed so far, as of `now`.
    ///
    /// Outcomes of other customers, outside the window, not matching the metric, or repeated (same
    /// `dedupe_key`) are ignored, so the caller may pass a superset.
    pub fn reward<'a>(
        &self,
        decision: &Decision,
        outcomes: impl IntoIterator<Item = &'a Outcome>,
        now: Timestamp,
    ) -> Reward {
        let end = self.window_end(decision.decided_at);
        let mut seen = BTreeSet::new();
        let attributed: Vec<&Outcome> = outcomes
            .into_iter()
            .filter(|o| o.customer_id == decision.customer_id)
            .filter(|o| o.occurred_at >= decision.decided_at && o.occurred_at < end)
            .filter(|o| self.kind.matches(&o.kind))
            .filter(|o| seen.insert(o.dedupe_key.as_str()))
            .collect();
        let any = !attributed.is_empty();
        let sum: f64 = attributed.iter().map(|o| o.value).sum();
        let cost = |subtract: bool| if subtract { decision.cost } else { 0.0 };
        let value = match &self.kind {
            MetricKind::Conversion { .. } | MetricKind::Renewal { .. } => f64::from(u8::from(any)),
            MetricKind::Retention {
                active_event: Some(_), ..
            } => f64::from(u8::from(any)),
            MetricKind::Retention { .. } => f64::from(u8::from(!any)),
            MetricKind::Revenue {
                subtract_option_cost, ..
            } => sum - cost(*subtract_option_cost),
            MetricKind::Arpu { .. } => sum,
            MetricKind::EventValue {
                subtract_option_cost, ..
            } => sum - cost(*subtract_option_cost),
            MetricKind::Npv {
                annual_discount_rate,
                subtract_option_cost,
                ..
            } => {
                let discounted: f64 = attributed
                    .iter()
                    .map(|o| {
                        let days = (o.occurred_at - decision.decided_at).as_secs_f64() / 86_400.0;
                        o.value / (1.0 + annual_discount_rate).powf(days / 365.0)
                    })
                    .sum();
                discounted - cost(*subtract_option_cost)
            }
        };
        let status = if now >= end {
            RewardStatus::Final
        } else {
            RewardStatus::Pending
        };
        Reward {
            decision_id: decision.id.clone(),
            value,
            status,
            attributed_outcomes: attributed.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ActionId;
    use crate::holdout::Group;
    use crate::ids::{CustomerId, Probability};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn decision(cost: f64) -> Decision {
        Decision {
            id: "d1".into(),
            use_case: "uc".into(),
            customer_id: CustomerId::new("c1").unwrap(),
            decided_at: ts("2026-11-01T09:00:00Z"),
            group: Group::Treatment,
            action: ActionId(3),
            propensity: Probability::new(0.25).unwrap(),
            policy_version: "v1".into(),
            planned_send_at: None,
            cost,
        }
    }

    fn purchase(customer: &str, at: &str, value: f64, key: &str) -> Outcome {
        Outcome {
            customer_id: CustomerId::new(customer).unwrap(),
            kind: OutcomeKind::Purchase {
                product_id: "shoes".into(),
            },
            occurred_at: ts(at),
            value,
            dedupe_key: key.into(),
        }
    }

    fn event(name: &str, at: &str) -> Outcome {
        Outcome {
            customer_id: CustomerId::new("c1").unwrap(),
            kind: OutcomeKind::CustomEvent { name: name.into() },
            occurred_at: ts(at),
            value: 0.0,
            dedupe_key: format!("{name}@{at}"),
        }
    }

    #[test]
    fn revenue_sums_attributed_purchases_once_and_subtracts_cost() {
        let metric = SuccessMetric {
            kind: MetricKind::Revenue {
                product: None,
                subtract_option_cost: true,
            },
            attribution_window_days: 7,
        };
        let outcomes = [
            purchase("c1", "2026-11-01T08:59:59Z", 100.0, "before"),
            purchase("c1", "2026-11-02T10:00:00Z", 40.0, "p1"),
            purchase("c1", "2026-11-02T10:00:00Z", 40.0, "p1"),
            purchase("c2", "2026-11-02T10:00:00Z", 55.0, "other"),
            purchase("c1", "2026-11-08T08:59:59Z", 10.0, "p2"),
            purchase("c1", "2026-11-08T09:00:00Z", 1000.0, "after"),
        ];
        let pending = metric.reward(&decision(5.0), &outcomes, ts("2026-11-05T00:00:00Z"));
        assert_eq!(
            (pending.value, pending.status, pending.attributed_outcomes),
            (45.0, RewardStatus::Pending, 2)
        );
        let done = metric.reward(&decision(5.0), &outcomes, ts("2026-11-08T09:00:00Z"));
        assert_eq!(done.status, RewardStatus::Final);
    }

    #[test]
    fn binary_metrics() {
        let conversion = SuccessMetric {
            kind: MetricKind::Conversion {
                on: ConversionOn::CustomEvent { event: "signup".into() },
            },
            attribution_window_days: 3,
        };
        let now = ts("2026-12-01T00:00:00Z");
        assert_eq!(
            conversion
                .reward(&decision(0.0), &[event("signup", "2026-11-02T00:00:00Z")], now)
                .value,
            1.0
        );
        assert_eq!(
            conversion
                .reward(&decision(0.0), &[event("signup", "2026-11-05T00:00:00Z")], now)
                .value,
            0.0
        );
        let churn = SuccessMetric {
            kind: MetricKind::Retention {
                active_event: None,
                churn_event: Some("cancelled".into()),
            },
            attribution_window_days: 30,
        };
        assert_eq!(churn.reward(&decision(0.0), &[], now).value, 1.0);
        assert_eq!(
            churn
                .reward(&decision(0.0), &[event("cancelled", "2026-11-10T00:00:00Z")], now)
                .value,
            0.0
        );
    }

    #[test]
    fn npv_discounts_by_days_elapsed() {
        let metric = SuccessMetric {
            kind: MetricKind::Npv {
                product: None,
                annual_discount_rate: 0.1,
                subtract_option_cost: false,
            },
            attribution_window_days: 365,
        };
        let r = metric.reward(
            &decision(0.0),
            &[purchase("c1", "2027-11-01T08:59:59Z", 110.0, "k")],
            ts("2030-01-01T00:00:00Z"),
        );
        assert!((r.value - 100.0).abs() < 0.01, "{}", r.value);
    }

    #[test]
    fn rewards_are_offset_plus_signed_accrual() {
        let now = ts("2026-12-01T00:00:00Z");
        let d = decision(5.0);
        let kinds = [
            (
                MetricKind::Conversion {
                    on: ConversionOn::Purchase { product: None },
                },
                1.0,
            ),
            (
                MetricKind::Revenue {
                    product: None,
                    subtract_option_cost: true,
                },
                40.0,
            ),
            (
                MetricKind::Revenue {
                    product: None,
                    subtract_option_cost: false,
                },
                40.0,
            ),
            (MetricKind::Arpu { product: None }, 40.0),
            (
                MetricKind::EventValue {
                    event: "points".into(),
                    property: "n".into(),
                    subtract_option_cost: true,
                },
                0.0,
            ),
        ];
        for (kind, accrual) in kinds {
            let metric = SuccessMetric {
                kind,
                attribution_window_days: 14,
            };
            let (offset, sign) = metric.accrual_parts(&d);
            assert_eq!(metric.reward(&d, &[], now).value, offset, "{metric:?}");
            let bought = metric.reward(&d, &[purchase("c1", "2026-11-02T10:00:00Z", 40.0, "p")], now);
            assert_eq!(bought.value, offset + sign * accrual, "{metric:?}");
        }
        let churn = SuccessMetric {
            kind: MetricKind::Retention {
                active_event: None,
                churn_event: Some("cancelled".into()),
            },
            attribution_window_days: 30,
        };
        assert_eq!(churn.accrual_parts(&d), (1.0, -1.0));
        let left = churn
            .reward(&d, &[event("cancelled", "2026-11-10T00:00:00Z")], now)
            .value;
        assert_eq!(left, 1.0 - 1.0);
        assert!(churn.counts(&OutcomeKind::CustomEvent {
            name: "cancelled".into()
        }));
        assert!(!churn.counts(&OutcomeKind::CustomEvent { name: "other".into() }));
    }
}
