//! What is learned is what was delivered: finding the messages that never went out.
//!
//! A decision's message can be lost after the decision for reasons that say nothing about how the
//! customer responds to the chosen action. Learning its zero reward would teach the policy that the
//! action fails (a 07:30 send that Braze skipped every day looked like the worst send time), so such
//! a decision is **not learned from**. It is not silently dropped either: the run summary counts it
//! (`deliveries`, "not delivered"), the store keeps its [`DeliveryStatus`], and its reward is still
//! attributed and stored, so the report compares treatment and control by **intention to treat** —
//! every decided message counts in its group's uplift whether or not it arrived, which keeps the
//! comparison with the holdout unbiased (control messages are lost the same way).
//!
//! A message never went out ([`DeliveryStatus::never_sent`], excluded from learning) when:
//! - **rejected**: its message batch ended `failed` (Braze certainly did not apply it);
//! - **late**: its schedule was accepted after its planned send instant — Braze skips recipients
//!   whose local time has passed (a resumed run, or an activation slower than
//!   [`crate::RunOptions::schedule_margin`]); both from the send ledger, so they work with any
//!   outcome source;
//! - **not sent**: the outcome source reports message events ([`OutcomeSource::message_events`], a
//!   Currents feed) and none of its campaign or canvas arrived for the customer between the decision
//!   and [`crate::RunOptions::delivery_grace`] after its send time. This is checked once the grace
//!   has passed, and only when the feed holds events of the use case's campaigns or canvases at all
//!   (a feed without message events proves nothing).
//!
//! A **bounce** (or a delivery failure, a rejection by the carrier, an abort) is recorded as
//! [`DeliveryStatus::Bounced`] and counted, but *learned*: Braze sent the message and the channel did
//! not reach this customer, which is a consequence of choosing that channel for them (an SMS to a
//! customer without a phone). Excluding bounces would make unreachable channels look as good as
//! reachable ones and the policy would keep choosing them.
//!
//! With profile deltas (no message events), the ledger checks and activation's rule that never
//! schedules a local time that has passed ([`offerloop_activation::Scheduler::slot`]) are the only
//! protection. Exclusion uses [`offerloop_store::Store::mark_learned`]: a decision that never went
//! out is consumed without being learned, so no later learning step reads it.
//!
//! [`OutcomeSource::message_events`]: crate::OutcomeSource::message_events

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use offerloop_domain::dimension::{MessageTarget, OptionPayload};
use offerloop_domain::{Decision, UseCase};
use offerloop_store::DeliveryStatus;
use serde::{Deserialize, Serialize};

use crate::outcomes::{MessageEvent, MessageEventKind};

/// Messages a run found not delivered, or bounced, by status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryCounts {
    /// In a batch Braze certainly rejected.
    pub rejected: u64,
    /// Scheduled after their send time (Braze skips them).
    pub late: u64,
    /// No event of their campaign or canvas in the feed within the grace period.
    pub not_sent: u64,
    /// Sent, but the channel did not reach the customer (learned).
    pub bounced: u64,
}

impl DeliveryCounts {
    /// Counts one newly found status.
    pub fn count(&mut self, status: DeliveryStatus) {
        match status {
            DeliveryStatus::Rejected => self.rejected += 1,
            DeliveryStatus::Late => self.late += 1,
            DeliveryStatus::NotSent => self.not_sent += 1,
            DeliveryStatus::Bounced => self.bounced += 1,
        }
    }

    /// Adds `other`'s counts.
    pub fn add(&mut self, other: &Self) {
        self.rejected += other.rejected;
        self.late += other.late;
        self.not_sent += other.not_sent;
        self.bounced += other.bounced;
    }

    /// Messages that never went out (rejected, late, not sent): not learned from.
    pub fn not_delivered(&self) -> u64 {
        self.rejected + self.late + self.not_sent
    }
}

/// The campaign or canvas that sends `decision`'s message: its channel option's target, else the use
/// case's default target.
pub fn message_target(use_case: &UseCase, decision: &Decision) -> Option<MessageTarget> {
    let action = use_case.actions.decode(decision.action).ok()?;
    let from_channel = use_case
        .actions
        .dimensions()
        .iter()
        .zip(&action.0)
        .find_map(|(dim, &o)| match dim.options.get(o as usize).map(|opt| &opt.payload) {
            Some(OptionPayload::Channel { target, .. }) => Some(target.clone()),
            _ => None,
        });
    from_channel.or_else(|| use_case.activation.default_target.clone())
}

/// When a message's fate can be judged from the feed: `grace` after its send time (its planned send
/// instant, or the decision for an immediate send).
pub fn deadline(decision: &Decision, grace: SignedDuration) -> Timestamp {
    let sent = decision
        .planned_send_at
        .map_or(decision.decided_at, |p| p.max(decision.decided_at));
    sent.saturating_add(grace).unwrap_or(Timestamp::MAX)
}

fn matches(target: &MessageTarget, event: &MessageEvent) -> bool {
    match target {
        MessageTarget::Campaign(id) => event.ids.campaign_id.as_deref() == Some(id),
        MessageTarget::Canvas(id) => event.ids.canvas_id.as_deref() == Some(id),
    }
}

/// What the feed says about each message decision of `messages` (judged with `grace`): `Some`
/// status for a message that bounced or never went out, `None` for one that did. Returns `None`
/// altogether when `events` hold no event of any of the messages' campaigns or canvases (the feed
/// does not carry this use case's message events: absence proves nothing).
pub fn classify_by_events(
    use_case: &UseCase,
    messages: &[&Decision],
    events: &[MessageEvent],
    grace: SignedDuration,
) -> Option<Vec<Option<DeliveryStatus>>> {
    let targets: Vec<Option<MessageTarget>> = messages.iter().map(|d| message_target(use_case, d)).collect();
    let mut by_customer: HashMap<&str, Vec<&MessageEvent>> = HashMap::new();
    for event in events {
        by_customer.entry(event.customer_id.as_str()).or_default().push(event);
    }
    // The use case has a handful of campaigns and canvases: compare against the distinct ones.
    let mut distinct: Vec<&MessageTarget> = Vec::new();
    for target in targets.iter().flatten() {
        if !distinct.contains(&target) {
            distinct.push(target);
        }
    }
    let any_of_ours = events.iter().any(|e| distinct.iter().any(|target| matches(target, e)));
    if !any_of_ours {
        return None;
    }
    let statuses = messages
        .iter()
        .zip(&targets)
        .map(|(decision, target)| {
            let target = target.as_ref()?;
            let end = deadline(decision, grace);
            let mut seen = false;
            for event in by_customer.get(decision.customer_id.as_str()).into_iter().flatten() {
                if event.occurred_at < decision.decided_at || event.occurred_at >= end || !matches(target, event) {
                    continue;
                }
                if event.kind == MessageEventKind::Failed {
                    return Some(DeliveryStatus::Bounced);
                }
                seen = true;
            }
            (!seen).then_some(DeliveryStatus::NotSent)
        })
        .collect();
    Some(statuses)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use offerloop_domain::{ActionId, CustomerId, Group, Probability};

    use super::*;

    fn use_case() -> UseCase {
        let text = include_str!("../../../examples/referral.toml");
        offerloop_domain::config::parse_use_case(text, "referral.toml").unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn decision(id: &str, customer: &str, planned: Option<&str>) -> Decision {
        Decision {
            id: id.into(),
            use_case: "referral-give-get".into(),
            customer_id: CustomerId::new(customer).unwrap(),
            decided_at: ts("2026-01-05T00:00:00Z"),
            group: Group::Treatment,
            action: ActionId(0),
            propensity: Probability::new(0.5).unwrap(),
            policy_version: "v".into(),
            planned_send_at: planned.map(ts),
            cost: 1.0,
        }
    }

    fn event(customer: &str, kind: MessageEventKind, at: &str, campaign: &str) -> MessageEvent {
        MessageEvent {
            customer_id: CustomerId::new(customer).unwrap(),
            kind,
            occurred_at: ts(at),
            channel: "email".into(),
            ids: offerloop_currents::MessageIds {
                campaign_id: Some(campaign.into()),
                ..Default::default()
            },
        }
    }

    #[test]
    fn messages_are_judged_by_their_campaigns_events_within_the_grace() {
        let uc = use_case();
        let ours = "f61c2d84-referral-email";
        let grace = SignedDuration::from_hours(12);
        let decisions = [
            decision("sent", "c1", Some("2026-01-05T08:30:00Z")),
            decision("skipped", "c2", Some("2026-01-04T20:30:00Z")),
            decision("bounced", "c3", Some("2026-01-05T08:30:00Z")),
            decision("other-campaign-only", "c4", Some("2026-01-05T08:30:00Z")),
            decision("too-late", "c5", None),
        ];
        let events = [
            event("c1", MessageEventKind::Sent, "2026-01-05T08:30:00Z", ours),
            event("c1", MessageEventKind::Delivered, "2026-01-05T08:30:05Z", ours),
            event("c3", MessageEventKind::Sent, "2026-01-05T08:30:00Z", ours),
            event("c3", MessageEventKind::Failed, "2026-01-05T08:30:01Z", ours),
            event(
                "c4",
                MessageEventKind::Delivered,
                "2026-01-05T09:00:00Z",
                "someone-elses",
            ),
            // 13 hours after an immediate send: past the grace.
            event("c5", MessageEventKind::Sent, "2026-01-05T13:00:00Z", ours),
        ];
        let refs: Vec<&Decision> = decisions.iter().collect();
        let statuses = classify_by_events(&uc, &refs, &events, grace).unwrap();
        assert_eq!(
            statuses,
            [
                None,
                Some(DeliveryStatus::NotSent),
                Some(DeliveryStatus::Bounced),
                Some(DeliveryStatus::NotSent),
                Some(DeliveryStatus::NotSent),
            ]
        );
        // A feed with no event of the use case's campaign says nothing.
        assert_eq!(classify_by_events(&uc, &refs, &events[4..5], grace), None);
        assert_eq!(classify_by_events(&uc, &refs, &[], grace), None);
    }

    #[test]
    fn counts_split_never_sent_from_bounced() {
        let mut c = DeliveryCounts::default();
        for s in [
            DeliveryStatus::Rejected,
            DeliveryStatus::Late,
            DeliveryStatus::Late,
            DeliveryStatus::NotSent,
            DeliveryStatus::Bounced,
        ] {
            c.count(s);
        }
        assert_eq!((c.not_delivered(), c.bounced), (4, 1));
        let d = decision("d", "c", Some("2026-01-05T08:30:00Z"));
        assert_eq!(deadline(&d, SignedDuration::from_hours(1)), ts("2026-01-05T09:30:00Z"));
    }
}
