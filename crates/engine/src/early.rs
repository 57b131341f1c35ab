//! Learning before the attribution window closes: which pending rewards the learn phase may learn
//! now, and with what value and weight.
//!
//! A decision's reward can no longer change once it is *closed*: at the end of its window, or as soon
//! as the same customer has a later decision, which takes every later outcome (attribution credits the
//! latest decision). A closed reward is learned as it is (observed share 1), even though its status
//! stays pending until the window's end. An open one is learned when the delay model
//! ([`offerloop_policy::delay`]) says that the share `F(e)` of its final accrual observed by now
//! reaches [`crate::RunOptions::early_learning_share`], as the unbiased estimate
//! `offset + sign · S(e) / F(e)` with weight `F(e)`, and only by a policy that
//! [learns partial rewards](offerloop_policy::Policy::learns_partial). Either way it is marked learned
//! and never learned again at maturity.
//!
//! Nothing is learned before its delivery has been judged ([`crate::delivery`]: a message that never
//! went out is consumed, not learned, `delivery_grace` after its send).
//!
//! Elapsed time counts from the decision's planned send time (its decision time when not scheduled):
//! a message sent in the evening has had less time to convert by the next run than one sent in the
//! morning. The delay model is estimated here, from the closed decisions of the reward lookback, per
//! channel option (decisions that send nothing form a group of their own), by the same attribution as
//! the rewards themselves.

use std::collections::{HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};
use offerloop_domain::{Decision, DimensionKind, Outcome, UseCase, attribution::attribute_outcomes};
use offerloop_policy::delay::{DelayConfig, DelayModel, DelayRecord};
use serde::{Deserialize, Serialize};

use crate::decide::is_message;
use crate::delivery::deadline;

/// One pending decision as of the run: whether it has closed, and what has accrued.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Assessment {
    /// Closed: its reward can no longer change.
    pub closed: bool,
    /// Whether its delivery has been judged ([`crate::delivery::deadline`] has passed): a message that
    /// never went out is consumed by then, and no other is learned before.
    pub judged: bool,
    /// Its delay-model group (the channel option).
    pub group: Option<String>,
    /// Hours since its origin (planned send, or decision).
    pub elapsed_hours: f64,
    /// `offset`, `sign` and the accrual so far: the reward is `offset + sign · accrual`.
    pub offset: f64,
    /// See `offset`.
    pub sign: f64,
    /// See `offset`.
    pub accrual: f64,
}

impl Assessment {
    /// The reward to learn and its observed share, when it may be learned now: closed (share 1), or
    /// open with `F(e) ≥ needed` and `partial` allowed.
    pub fn learnable(&self, model: &DelayModel, needed: f64, partial: bool) -> Option<(f64, f64)> {
        if !self.judged {
            return None;
        }
        if self.closed {
            return Some((self.offset + self.sign * self.accrual, 1.0));
        }
        if !partial {
            return None;
        }
        let share = model.share(self.group.as_deref(), self.elapsed_hours);
        (share >= needed && share > 0.0).then(|| {
            (
                offerloop_policy::delay::corrected_reward(self.offset, self.sign, self.accrual, share),
                share,
            )
        })
    }
}

/// The delay model's key figures, for the run summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DelaySummary {
    /// Closed decisions with a non-zero accrual the pooled curve was estimated from.
    pub records: u64,
    /// The pooled share `F(e)` observed 1, 2, 3 and 7 days after the send.
    pub share_by_day: Vec<(u32, f64)>,
    /// Per channel option: the records behind its curve and its share after one day.
    pub groups: Vec<(String, u64, f64)>,
}

impl DelaySummary {
    /// The summary of `model`.
    pub fn of(model: &DelayModel) -> Self {
        Self {
            records: model.records(None),
            share_by_day: [1, 2, 3, 7]
                .into_iter()
                .map(|d| (d, round3(model.share(None, f64::from(d) * 24.0))))
                .collect(),
            groups: model
                .groups
                .keys()
                .map(|g| (g.clone(), model.records(Some(g)), round3(model.share(Some(g), 24.0))))
                .collect(),
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1_000.0).round() / 1_000.0
}

fn hours(d: SignedDuration) -> f64 {
    d.as_secs_f64() / 3_600.0
}

/// The delay-model group of decisions that send nothing (a frequency "skip", or no message at all):
/// what accrues after them is what customers do unprompted, at its own pace.
pub const NO_MESSAGE_GROUP: &str = "(no message)";

/// A decision's delay-model group: its channel option, or [`NO_MESSAGE_GROUP`].
fn group_of(use_case: &UseCase, channel: Option<usize>, d: &Decision) -> Option<String> {
    if !is_message(use_case, d) {
        return Some(NO_MESSAGE_GROUP.to_owned());
    }
    let c = channel?;
    let action = use_case.actions.decode(d.action).ok()?;
    let option = *action.0.get(c)?;
    let dim = use_case.actions.dimensions().get(c)?;
    Some(dim.options.get(option as usize)?.id.to_string())
}

/// Estimates the delay model from the decisions among `decisions` and assesses the ones whose ids are
/// in `wanted`, as of `as_of`. `decisions` must hold every decision that may take outcomes from
/// another (all of the use case's decisions of the reward lookback), `outcomes` the outcomes since the
/// earliest of them, up to `as_of`; a message's delivery is judged `grace` after its send
/// ([`crate::RunOptions::delivery_grace`]).
pub(crate) fn assess(
    use_case: &UseCase,
    decisions: &[Decision],
    outcomes: &[Outcome],
    as_of: Timestamp,
    grace: SignedDuration,
    wanted: &HashSet<&str>,
) -> (DelayModel, HashMap<String, Assessment>) {
    let metric = &use_case.metric;
    let window = metric.window();
    let outcomes: Vec<Outcome> = outcomes.iter().filter(|o| o.occurred_at < as_of).cloned().collect();
    let attributed = attribute_outcomes(window, decisions, &outcomes, |o| metric.counts(&o.kind));
    // Each decision's close: the customer's next decision, or the window's end.
    let mut by_customer: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, d) in decisions.iter().enumerate() {
        by_customer.entry(d.customer_id.as_str()).or_default().push(i);
    }
    let mut next: Vec<Option<Timestamp>> = vec![None; decisions.len()];
    for list in by_customer.values_mut() {
        list.sort_by(|&a, &b| {
            decisions[a]
                .decided_at
                .cmp(&decisions[b].decided_at)
                .then_with(|| decisions[a].id.cmp(&decisions[b].id))
        });
        for pair in list.windows(2) {
            next[pair[0]] = Some(decisions[pair[1]].decided_at);
        }
    }
    let channel = use_case
        .actions
        .dimensions()
        .iter()
        .position(|d| d.kind == DimensionKind::Channel);
    let mut records = Vec::new();
    let mut assessed = HashMap::new();
    for (i, (d, outs)) in decisions.iter().zip(&attributed).enumerate() {
        let want = wanted.contains(d.id.as_str());
        let end = metric.window_end(d.decided_at);
        let close = next[i].map_or(end, |n| n.min(end));
        let closed = close <= as_of;
        let origin = d.planned_send_at.unwrap_or(d.decided_at).clamp(d.decided_at, close);
        let (offset, sign) = metric.accrual_parts(d);
        let mut outs: Vec<&Outcome> = outs.clone();
        outs.sort_by_key(|o| o.occurred_at);
        let mut steps = Vec::with_capacity(outs.len());
        for k in 0..outs.len() {
            let reward = metric.reward(d, outs[..=k].iter().copied(), as_of).value;
            let accrual = (reward - offset) / sign;
            steps.push((hours(outs[k].occurred_at.duration_since(origin)).max(0.0), accrual));
        }
        let accrual = steps.last().map_or(0.0, |s| s.1);
        let group = group_of(use_case, channel, d);
        if want {
            assessed.insert(
                d.id.clone(),
                Assessment {
                    closed,
                    judged: deadline(d, grace) < as_of,
                    group: group.clone(),
                    elapsed_hours: hours(as_of.duration_since(origin)),
                    offset,
                    sign,
                    accrual,
                },
            );
        }
        if closed || as_of > origin {
            records.push(DelayRecord {
                group,
                span_hours: hours(close.min(as_of).duration_since(origin)),
                closed,
                steps,
            });
        }
    }
    let model = DelayModel::estimate(DelayConfig::for_window_days(metric.attribution_window_days), &records);
    (model, assessed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use offerloop_domain::{CustomerId, Group, OutcomeKind, Probability};

    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn use_case() -> UseCase {
        offerloop_domain::config::parse_use_case(include_str!("../../../examples/winback.toml"), "winback.toml")
            .unwrap()
    }

    /// A decision for `customer` at `at`, sending email at `send` (or unscheduled).
    fn decision(id: &str, customer: &str, at: &str, send: Option<&str>, uc: &UseCase) -> Decision {
        let setup = offerloop_policy::Setup::from_use_case(uc).unwrap();
        let bau = setup.business_as_usual().unwrap().clone();
        Decision {
            id: id.into(),
            use_case: uc.name.to_string(),
            customer_id: CustomerId::new(customer).unwrap(),
            decided_at: ts(at),
            group: Group::Treatment,
            action: uc.actions.encode(&bau).unwrap(),
            propensity: Probability::new(0.5).unwrap(),
            policy_version: "lin_ts/1".into(),
            planned_send_at: send.map(ts),
            cost: 3.5,
        }
    }

    fn purchase(customer: &str, at: &str, value: f64) -> Outcome {
        Outcome {
            customer_id: CustomerId::new(customer).unwrap(),
            kind: OutcomeKind::Purchase { product_id: "p".into() },
            occurred_at: ts(at),
            value,
            dedupe_key: format!("{customer}@{at}"),
        }
    }

    #[test]
    fn a_later_decision_closes_a_reward_and_open_ones_count_from_their_send() {
        let uc = use_case();
        let decisions = [
            // c1: decided on the 1st, sent at 14:00, bought on the 2nd, decided again on the 4th.
            decision("a", "c1", "2026-01-01T06:00:00Z", Some("2026-01-01T14:00:00Z"), &uc),
            decision("b", "c1", "2026-01-04T06:00:00Z", None, &uc),
            // c2: decided on the 4th, sent at 14:00, bought at once; still open on the 5th.
            decision("c", "c2", "2026-01-04T06:00:00Z", Some("2026-01-04T14:00:00Z"), &uc),
        ];
        let outcomes = [
            purchase("c1", "2026-01-02T14:00:00Z", 50.0),
            purchase("c1", "2026-01-04T07:00:00Z", 80.0),
            purchase("c2", "2026-01-04T20:00:00Z", 30.0),
            // Not yet seen at the run.
            purchase("c2", "2026-01-05T07:00:00Z", 99.0),
        ];
        let as_of = ts("2026-01-05T06:00:00Z");
        let wanted: HashSet<&str> = ["a", "b", "c"].into_iter().collect();
        let grace = SignedDuration::from_hours(12);
        let (model, assessed) = assess(&uc, &decisions, &outcomes, as_of, grace, &wanted);
        let a = &assessed["a"];
        assert!(a.closed, "b took over c1's later outcomes");
        assert_eq!((a.offset, a.sign, a.accrual), (-3.5, 1.0, 50.0));
        assert_eq!(a.learnable(&model, 0.99, false), Some((46.5, 1.0)));
        let b = &assessed["b"];
        assert!(!b.closed);
        assert_eq!(b.accrual, 80.0);
        let c = &assessed["c"];
        assert!(!c.closed);
        assert_eq!(c.elapsed_hours, 16.0, "from the send, not the decision");
        assert_eq!(c.group.as_deref(), Some("email"));
        // Only `a` has closed: one converting record, 24 hours after its send.
        assert_eq!(model.records(None), 1);
        let f = model.share(Some("email"), 16.0);
        assert!(f > 0.0 && f < 1.0);
        assert!(c.judged, "sent 16 hours ago, its delivery is judged");
        assert_eq!(c.learnable(&model, f + 0.01, true), None, "not enough observed yet");
        assert_eq!(
            c.learnable(&model, f, false),
            None,
            "the policy learns final rewards only"
        );
        let (reward, share) = c.learnable(&model, f, true).unwrap();
        assert_eq!(share, f);
        assert!((reward - (-3.5 + 30.0 / f)).abs() < 1e-9);
        // With a day of grace, c's delivery is not judged yet: nothing is learned.
        let (_, late) = assess(
            &uc,
            &decisions,
            &outcomes,
            as_of,
            SignedDuration::from_hours(24),
            &wanted,
        );
        assert_eq!(late["c"].learnable(&model, 0.0, true), None);
        assert!(late["a"].learnable(&model, 0.0, true).is_some());
    }
}
