//! Guardrails enforced at decision time: frequency cap over a rolling week, minimum days between
//! messages, eligibility, and per-run budgets (sends and option cost), each counted for the summary.
//!
//! The per-customer checks read the messages already decided in earlier runs (the store's decisions),
//! so they hold whatever the policy wants; the budgets are spent in audience order, so a resumed run
//! admits exactly the same decisions.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use offerloop_domain::LocalTime;
use offerloop_domain::usecase::Guardrails;
use serde::{Deserialize, Serialize};

/// Why a customer got no decision (or lost it) today.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Blocked {
    /// Already `max_messages_per_customer_per_week` messages in the last 7 days.
    FrequencyCap,
    /// The last message is fewer than `min_days_between_messages` days old.
    MinDaysBetween,
    /// No eligible joint action (eligibility rules and exclusions leave nothing).
    Ineligible,
    /// `max_sends_per_run` reached.
    MaxSendsPerRun,
    /// `max_cost_per_run` would be exceeded.
    MaxCostPerRun,
    /// The chosen send time falls in the use case's quiet hours.
    QuietHours,
}

/// How many customers each guardrail stopped in a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardrailCounts {
    /// Frequency cap over a rolling week.
    pub frequency_cap: u64,
    /// Minimum days between messages.
    pub min_days_between: u64,
    /// No eligible action.
    pub ineligible: u64,
    /// Sends budget of the run.
    pub max_sends_per_run: u64,
    /// Cost budget of the run.
    pub max_cost_per_run: u64,
    /// Send time in the quiet hours.
    #[serde(default)]
    pub quiet_hours: u64,
}

impl GuardrailCounts {
    /// Counts one block.
    pub fn count(&mut self, why: Blocked) {
        let slot = match why {
            Blocked::FrequencyCap => &mut self.frequency_cap,
            Blocked::MinDaysBetween => &mut self.min_days_between,
            Blocked::Ineligible => &mut self.ineligible,
            Blocked::MaxSendsPerRun => &mut self.max_sends_per_run,
            Blocked::MaxCostPerRun => &mut self.max_cost_per_run,
            Blocked::QuietHours => &mut self.quiet_hours,
        };
        *slot += 1;
    }

    /// Every block.
    pub fn total(&self) -> u64 {
        self.frequency_cap
            + self.min_days_between
            + self.ineligible
            + self.max_sends_per_run
            + self.max_cost_per_run
            + self.quiet_hours
    }
}

/// The messages each customer received in the week before a run.
#[derive(Clone, Debug, Default)]
pub struct MessageHistory {
    times: HashMap<String, Vec<Timestamp>>,
}

impl MessageHistory {
    /// From `(customer, decided_at)` of earlier messages (decisions that send something).
    pub fn new<'a>(messages: impl IntoIterator<Item = (&'a str, Timestamp)>) -> Self {
        let mut times: HashMap<String, Vec<Timestamp>> = HashMap::new();
        for (c, t) in messages {
            times.entry(c.to_owned()).or_default().push(t);
        }
        Self { times }
    }

    /// Whether a message to `customer` at `now` breaks the frequency guardrails.
    pub fn check(&self, guardrails: &Guardrails, customer: &str, now: Timestamp) -> Result<(), Blocked> {
        let Some(times) = self.times.get(customer) else {
            return Ok(());
        };
        let earlier = times.iter().filter(|&&t| t < now);
        if let Some(days) = guardrails.min_days_between_messages
            && let Some(last) = earlier.clone().max()
            && now.duration_since(*last) < SignedDuration::from_hours(24 * i64::from(days))
        {
            return Err(Blocked::MinDaysBetween);
        }
        if let Some(cap) = guardrails.max_messages_per_customer_per_week {
            let week_ago = now
                .checked_sub(SignedDuration::from_hours(24 * 7))
                .unwrap_or(Timestamp::MIN);
            let in_week = earlier.filter(|&&t| t > week_ago).count();
            if in_week >= cap as usize {
                return Err(Blocked::FrequencyCap);
            }
        }
        Ok(())
    }
}

/// Whether local time `t` is in the quiet window `[start, end)` (which may wrap past midnight).
pub fn in_quiet_hours(quiet: (LocalTime, LocalTime), t: LocalTime) -> bool {
    let (s, e, t) = (
        quiet.0.minutes_since_midnight(),
        quiet.1.minutes_since_midnight(),
        t.minutes_since_midnight(),
    );
    if s <= e { s <= t && t < e } else { t >= s || t < e }
}

/// What a run has spent of its budgets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Budget {
    /// Messages admitted.
    pub sends: u64,
    /// Option cost admitted.
    pub cost: f64,
    /// The share `(part, whole)` of the run's budgets this budget may spend: a shard of `part`
    /// customers of a day of `whole` spends `⌊max × part / whole⌋` sends and `max × part / whole`
    /// cost, so the shards together never exceed the run's budgets. `None`: all of them.
    pub share: Option<(u64, u64)>,
}

impl Budget {
    /// A budget spending `part / whole` of the run's budgets (a shard of a day shared by workers).
    pub fn share_of(part: u64, whole: u64) -> Self {
        Self {
            share: Some((part, whole.max(1))),
            ..Self::default()
        }
    }

    /// The sends allowed of a run budget of `max`.
    fn max_sends(&self, max: u64) -> u64 {
        match self.share {
            Some((part, whole)) => u64::try_from(u128::from(max) * u128::from(part) / u128::from(whole)).unwrap_or(max),
            None => max,
        }
    }

    /// The cost allowed of a run budget of `max`.
    fn max_cost(&self, max: f64) -> f64 {
        match self.share {
            Some((part, whole)) => max * part as f64 / whole as f64,
            None => max,
        }
    }

    /// Admits one message of `cost`, or says which budget it would break.
    pub fn admit(&mut self, guardrails: &Guardrails, cost: f64) -> Result<(), Blocked> {
        if guardrails
            .max_sends_per_run
            .is_some_and(|max| self.sends >= self.max_sends(max))
        {
            return Err(Blocked::MaxSendsPerRun);
        }
        if guardrails
            .max_cost_per_run
            .is_some_and(|max| self.cost + cost > self.max_cost(max) + 1e-9)
        {
            return Err(Blocked::MaxCostPerRun);
        }
        self.sends += 1;
        self.cost += cost;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn frequency_cap_and_spacing() {
        let g = Guardrails {
            max_messages_per_customer_per_week: Some(2),
            min_days_between_messages: Some(3),
            ..Guardrails::default()
        };
        let h = MessageHistory::new([
            ("a", ts("2026-01-01T09:00:00Z")),
            ("a", ts("2026-01-04T09:00:00Z")),
            ("b", ts("2026-01-06T09:00:00Z")),
            ("c", ts("2025-12-01T09:00:00Z")),
        ]);
        let now = ts("2026-01-07T09:00:00Z");
        assert_eq!(
            h.check(&g, "a", ts("2026-01-06T09:00:00Z")),
            Err(Blocked::MinDaysBetween)
        );
        assert_eq!(
            h.check(&g, "a", now),
            Err(Blocked::FrequencyCap),
            "exactly 3 days later, but 2 this week"
        );
        assert_eq!(h.check(&g, "a", ts("2026-01-07T10:00:00Z")), Err(Blocked::FrequencyCap));
        assert_eq!(
            h.check(&g, "a", ts("2026-01-08T10:00:00Z")),
            Ok(()),
            "the first left the week"
        );
        assert_eq!(h.check(&g, "b", now), Err(Blocked::MinDaysBetween));
        assert_eq!(h.check(&g, "c", now), Ok(()));
        assert_eq!(h.check(&g, "nobody", now), Ok(()));
        assert_eq!(h.check(&Guardrails::default(), "a", now), Ok(()));
    }

    #[test]
    fn budgets_stop_at_their_limits() {
        let g = Guardrails {
            max_sends_per_run: Some(3),
            max_cost_per_run: Some(10.0),
            ..Guardrails::default()
        };
        let mut b = Budget::default();
        assert_eq!(b.admit(&g, 4.0), Ok(()));
        assert_eq!(b.admit(&g, 7.0), Err(Blocked::MaxCostPerRun));
        assert_eq!(b.admit(&g, 6.0), Ok(()));
        assert_eq!(b.admit(&g, 0.0), Ok(()));
        assert_eq!(b.admit(&g, 0.0), Err(Blocked::MaxSendsPerRun));
        assert_eq!((b.sends, b.cost), (3, 10.0));
        let mut counts = GuardrailCounts::default();
        counts.count(Blocked::MaxCostPerRun);
        counts.count(Blocked::Ineligible);
        assert_eq!((counts.total(), counts.ineligible), (2, 1));
    }

    #[test]
    fn quiet_hours_may_wrap_midnight() {
        let t = |s: &str| LocalTime::parse(s).unwrap();
        let night = (t("21:00"), t("08:00"));
        assert!(in_quiet_hours(night, t("21:00")));
        assert!(in_quiet_hours(night, t("03:00")));
        assert!(!in_quiet_hours(night, t("08:00")));
        assert!(!in_quiet_hours(night, t("19:00")));
        let lunch = (t("12:00"), t("13:00"));
        assert!(in_quiet_hours(lunch, t("12:30")));
        assert!(!in_quiet_hours(lunch, t("13:00")));
    }

    proptest! {
        #[test]
        fn budgets_are_never_exceeded(costs in proptest::collection::vec(0.0f64..20.0, 0..60), max_sends in 0u64..40, max_cost in 0.0f64..200.0) {
            let g = Guardrails { max_sends_per_run: Some(max_sends), max_cost_per_run: Some(max_cost), ..Guardrails::default() };
            let mut b = Budget::default();
            for c in costs {
                let _ = b.admit(&g, c);
            }
            prop_assert!(b.sends <= max_sends);
            prop_assert!(b.cost <= max_cost + 1e-6);
        }
    }
}
