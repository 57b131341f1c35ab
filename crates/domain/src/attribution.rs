//! Attribution: each outcome goes to the latest decision for its customer that it follows within the
//! metric's window, and each decision's reward is computed from the outcomes attributed to it.
//!
//! "Latest" matters when a customer is decided for several times within one window (a message every
//! three days with a 14-day window): a purchase is credited once, to the message just before it, not
//! to every open window. The reward itself is [`SuccessMetric::reward`], so every metric kind is
//! computed in one place. Pure: the engine attributes rewards with it, the report guardrail metrics.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};

use crate::{Decision, Outcome, Reward, SuccessMetric};

/// For each decision, the outcomes accepted by `keep` that it is the latest preceding decision of,
/// within `window` after it.
pub fn attribute_outcomes<'a>(
    window: SignedDuration,
    decisions: &[Decision],
    outcomes: &'a [Outcome],
    keep: impl Fn(&Outcome) -> bool,
) -> Vec<Vec<&'a Outcome>> {
    // Each customer's decisions, latest first.
    let mut by_customer: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, d) in decisions.iter().enumerate() {
        by_customer.entry(d.customer_id.as_str()).or_default().push(i);
    }
    for list in by_customer.values_mut() {
        list.sort_by(|&a, &b| {
            decisions[b]
                .decided_at
                .cmp(&decisions[a].decided_at)
                .then_with(|| decisions[b].id.cmp(&decisions[a].id))
        });
    }
    let mut attributed: Vec<Vec<&Outcome>> = vec![Vec::new(); decisions.len()];
    for o in outcomes.iter().filter(|o| keep(o)) {
        let Some(list) = by_customer.get(o.customer_id.as_str()) else {
            continue;
        };
        // The latest decision at or before the outcome; it must still have its window open.
        if let Some(&i) = list.iter().find(|&&i| decisions[i].decided_at <= o.occurred_at)
            && o.occurred_at < decisions[i].decided_at.saturating_add(window).unwrap_or(Timestamp::MAX)
        {
            attributed[i].push(o);
        }
    }
    attributed
}

/// The rewards of `decisions` given `outcomes`, as of `now` (one per decision, in input order).
pub fn attribute(metric: &SuccessMetric, decisions: &[Decision], outcomes: &[Outcome], now: Timestamp) -> Vec<Reward> {
    let attributed = attribute_outcomes(metric.window(), decisions, outcomes, |_| true);
    decisions
        .iter()
        .zip(attributed)
        .map(|(d, outs)| metric.reward(d, outs, now))
        .collect()
}
