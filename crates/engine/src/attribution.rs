//! Attribution: each outcome goes to the latest decision for its customer that it follows within the
//! metric's window, and each decision's reward is computed from the outcomes attributed to it.
//!
//! "Latest" matters when a customer is decided for several times within one window (a message every
//! three days with a 14-day window): a purchase is credited once, to the message just before it, not
//! to every open window. The reward itself is the domain's [`SuccessMetric::reward`], so every metric
//! kind (conversion, revenue net of cost, ARPU, retention, renewal, event value, NPV) is computed in
//! one place; it is pending until the window closes and final afterwards.

use jiff::SignedDuration;
use offerloop_domain::Decision;
use offerloop_domain::Outcome;
pub use offerloop_domain::attribution::{attribute, attribute_outcomes};

/// Unsubscribe rates of the treatment and business-as-usual control messages among `decisions`
/// (an unsubscribe counts for the latest message before it, within `window`): `(treatment rate,
/// treatment messages, control rate, control messages)`.
pub fn unsubscribe_rates(
    window: SignedDuration,
    decisions: &[&Decision],
    outcomes: &[Outcome],
) -> (f64, usize, f64, usize) {
    let owned: Vec<Decision> = decisions.iter().map(|d| (*d).clone()).collect();
    let attributed = attribute_outcomes(window, &owned, outcomes, |o| {
        matches!(o.kind, offerloop_domain::OutcomeKind::Unsubscribe { .. })
    });
    let (mut t, mut nt, mut c, mut nc) = (0usize, 0usize, 0usize, 0usize);
    for (d, outs) in owned.iter().zip(attributed) {
        let hit = usize::from(!outs.is_empty());
        match d.group {
            offerloop_domain::Group::Treatment => (t, nt) = (t + hit, nt + 1),
            offerloop_domain::Group::Control => (c, nc) = (c + hit, nc + 1),
            offerloop_domain::Group::RandomControl => {}
        }
    }
    let rate = |k: usize, n: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    (rate(t, nt), nt, rate(c, nc), nc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use offerloop_domain::metric::{ConversionOn, MetricKind};
    use offerloop_domain::{ActionId, CustomerId, Group, OutcomeKind, Probability, RewardStatus, SuccessMetric};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn decision(id: &str, customer: &str, at: &str, cost: f64) -> Decision {
        Decision {
            id: id.into(),
            use_case: "uc".into(),
            customer_id: CustomerId::new(customer).unwrap(),
            decided_at: ts(at),
            group: Group::Treatment,
            action: ActionId(0),
            propensity: Probability::new(0.5).unwrap(),
            policy_version: "v".into(),
            planned_send_at: None,
            cost,
        }
    }

    fn purchase(customer: &str, at: &str, value: f64, key: &str) -> Outcome {
        Outcome {
            customer_id: CustomerId::new(customer).unwrap(),
            kind: OutcomeKind::Purchase { product_id: "p".into() },
            occurred_at: ts(at),
            value,
            dedupe_key: key.into(),
        }
    }

    fn revenue(window: u32) -> SuccessMetric {
        SuccessMetric {
            kind: MetricKind::Revenue {
                product: None,
                subtract_option_cost: true,
            },
            attribution_window_days: window,
        }
    }

    #[test]
    fn an_outcome_goes_to_the_latest_preceding_decision_only() {
        let decisions = [
            decision("d1", "c1", "2026-01-01T09:00:00Z", 2.0),
            decision("d2", "c1", "2026-01-04T09:00:00Z", 1.0),
            decision("d3", "c2", "2026-01-01T09:00:00Z", 0.0),
        ];
        let outcomes = [
            purchase("c1", "2026-01-02T00:00:00Z", 10.0, "a"), // after d1 only
            purchase("c1", "2026-01-05T00:00:00Z", 50.0, "b"), // after d1 and d2: d2
            purchase("c1", "2026-01-05T00:00:00Z", 50.0, "b"), // seen twice: once
            purchase("c2", "2025-12-31T00:00:00Z", 99.0, "c"), // before any decision
            purchase("c3", "2026-01-02T00:00:00Z", 99.0, "d"), // nobody decided
        ];
        let now = ts("2026-01-06T00:00:00Z");
        let r = attribute(&revenue(14), &decisions, &outcomes, now);
        assert_eq!((r[0].value, r[0].attributed_outcomes), (8.0, 1));
        assert_eq!((r[1].value, r[1].attributed_outcomes), (49.0, 1));
        assert_eq!((r[2].value, r[2].attributed_outcomes), (0.0, 0));
        assert!(r.iter().all(|r| r.status == RewardStatus::Pending));
    }

    #[test]
    fn an_outcome_after_the_latest_window_is_not_credited_to_an_earlier_one() {
        let decisions = [
            decision("d1", "c1", "2026-01-01T09:00:00Z", 0.0),
            decision("d2", "c1", "2026-01-02T09:00:00Z", 0.0),
        ];
        let outcomes = [purchase("c1", "2026-01-03T10:00:00Z", 5.0, "a")];
        let r = attribute(&revenue(1), &decisions, &outcomes, ts("2026-02-01T00:00:00Z"));
        assert_eq!(r[0].value + r[1].value, 0.0);
        assert!(r.iter().all(|r| r.status == RewardStatus::Final));
    }

    #[test]
    fn conversion_rewards_are_binary_and_final_after_the_window() {
        let metric = SuccessMetric {
            kind: MetricKind::Conversion {
                on: ConversionOn::Purchase { product: None },
            },
            attribution_window_days: 3,
        };
        let decisions = [decision("d1", "c1", "2026-01-01T00:00:00Z", 0.0)];
        let outcomes = [
            purchase("c1", "2026-01-02T00:00:00Z", 10.0, "a"),
            purchase("c1", "2026-01-02T01:00:00Z", 10.0, "b"),
        ];
        let pending = attribute(&metric, &decisions, &outcomes, ts("2026-01-03T00:00:00Z"));
        assert_eq!((pending[0].value, pending[0].status), (1.0, RewardStatus::Pending));
        let done = attribute(&metric, &decisions, &outcomes, ts("2026-01-04T00:00:00Z"));
        assert_eq!((done[0].value, done[0].status), (1.0, RewardStatus::Final));
    }

    #[test]
    fn unsubscribe_rates_per_group() {
        let mut control = decision("d2", "c2", "2026-01-01T09:00:00Z", 0.0);
        control.group = Group::Control;
        let treated = decision("d1", "c1", "2026-01-01T09:00:00Z", 0.0);
        let unsub = |c: &str| Outcome {
            customer_id: CustomerId::new(c).unwrap(),
            kind: OutcomeKind::Unsubscribe { channel: None },
            occurred_at: ts("2026-01-02T00:00:00Z"),
            value: 0.0,
            dedupe_key: format!("u{c}"),
        };
        let outcomes = [unsub("c1"), purchase("c2", "2026-01-02T00:00:00Z", 1.0, "p")];
        let (t, nt, c, nc) = unsubscribe_rates(SignedDuration::from_hours(24 * 7), &[&treated, &control], &outcomes);
        assert_eq!((t, nt, c, nc), (1.0, 1, 0.0, 1));
    }

    #[test]
    fn every_metric_kind_is_computed_by_the_domain() {
        let d = [decision("d1", "c1", "2026-01-01T00:00:00Z", 3.0)];
        let o = [purchase("c1", "2026-01-02T00:00:00Z", 100.0, "a")];
        let now = ts("2026-03-01T00:00:00Z");
        let value = |kind: MetricKind| {
            attribute(
                &SuccessMetric {
                    kind,
                    attribution_window_days: 30,
                },
                &d,
                &o,
                now,
            )[0]
            .value
        };
        assert_eq!(value(MetricKind::Arpu { product: None }), 100.0);
        assert_eq!(
            value(MetricKind::Revenue {
                product: None,
                subtract_option_cost: false
            }),
            100.0
        );
        assert_eq!(
            value(MetricKind::Revenue {
                product: Some("other".into()),
                subtract_option_cost: true
            }),
            -3.0
        );
        let npv = value(MetricKind::Npv {
            product: None,
            annual_discount_rate: 0.1,
            subtract_option_cost: true,
        });
        assert!(npv < 97.0 && npv > 96.9, "{npv}");
        assert_eq!(value(MetricKind::Renewal { event: "renew".into() }), 0.0);
        assert_eq!(
            value(MetricKind::Retention {
                active_event: None,
                churn_event: Some("cancel".into())
            }),
            1.0
        );
    }
}
