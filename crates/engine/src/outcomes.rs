//! [`OutcomeSource`]: where a run learns what customers did, beyond the profile deltas of exports.
//!
//! [`crate::CurrentsFeed`] reads Braze Currents from the customer's bucket: purchases, custom events
//! (worth the metric's value property when it has one) and unsubscribes, with exact times and a
//! unique `id` each, so it is preferred to profile deltas when configured.
//!
//! The same feed carries **message events** ([`OutcomeSource::message_events`]): sends, deliveries
//! and engagement, bounces and failures of each campaign or canvas, from which the engine finds the
//! messages Braze never sent (see [`crate::delivery`]). Profile deltas carry none: there, only the
//! send ledger (a rejected batch, a schedule that reached Braze after its time) and the rule that
//! never plans a send whose local time has passed protect learning.

use std::fmt;

use async_trait::async_trait;
use jiff::Timestamp;
use offerloop_currents::MessageIds;
use offerloop_domain::metric::MetricKind;
use offerloop_domain::{CustomerId, Outcome, UseCase};
use offerloop_store::Store;

use crate::Result;

/// The outcomes observed in a time range. Object-safe: `Arc<dyn OutcomeSource>`.
#[async_trait]
pub trait OutcomeSource: Send + Sync + fmt::Debug {
    /// Every outcome of `use_case`'s customers that occurred in `[from, to)` (a superset is fine:
    /// attribution ignores what does not match; each outcome carries a stable `dedupe_key`).
    async fn outcomes(&self, use_case: &UseCase, from: Timestamp, to: Timestamp) -> Result<Vec<Outcome>>;

    /// Stores what the last [`OutcomeSource::outcomes`] returned and returns how many were new. By
    /// default [`Store::record_outcomes`]; a source that keeps a checkpoint (the files it has read)
    /// stores it in the same transaction ([`Store::record_feed_outcomes`]), so a crash before this
    /// call reads the same files again and one after it never reads them twice.
    ///
    /// # Errors
    /// The store's.
    fn record(&self, store: &dyn Store, use_case: &UseCase, outcomes: &[Outcome], now: Timestamp) -> Result<usize> {
        let _ = now;
        Ok(store.record_outcomes(use_case.name.as_str(), outcomes)?)
    }

    /// Every message event (send, delivery or engagement, bounce or abort) of `use_case`'s customers
    /// in `[from, to)`, of any campaign or canvas (a superset is fine), or `None` when the source
    /// carries no message events (the default). With events, a message of which none arrives is
    /// found not delivered ([`crate::delivery`]).
    async fn message_events(
        &self,
        use_case: &UseCase,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Option<Vec<MessageEvent>>> {
        let _ = (use_case, from, to);
        Ok(None)
    }
}

/// What a message event says about its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageEventKind {
    /// Braze sent it (`Send`, SMS `CarrierSend`).
    Sent,
    /// It arrived: a delivery, or engagement that proves one (`Delivery`, `Open`, `Click`, `Read`,
    /// `Impression`, `ShortLinkClick`, `Dismiss`, `IosForeground`).
    Delivered,
    /// It did not reach the customer (`Bounce`, `DeliveryFailure`, `Rejection`, `Failure`, `Abort`).
    /// A `SoftBounce` is not one: Braze retries it.
    Failed,
}

impl MessageEventKind {
    /// What a Currents message event named `name` (`Send`, `Delivery`, `Bounce`…, the last part of
    /// `users.messages.<channel>.<name>`) says, or `None` for one that says nothing about delivery.
    pub fn of_event_name(name: &str) -> Option<Self> {
        match name {
            "Send" | "CarrierSend" => Some(Self::Sent),
            "Delivery" | "Open" | "Click" | "Read" | "Impression" | "ShortLinkClick" | "Dismiss" | "IosForeground" => {
                Some(Self::Delivered)
            }
            "Bounce" | "DeliveryFailure" | "Rejection" | "Failure" | "Abort" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One message event of a customer, with the ids Braze ties it to its message by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageEvent {
    /// The customer (`external_user_id`).
    pub customer_id: CustomerId,
    /// What it says.
    pub kind: MessageEventKind,
    /// When.
    pub occurred_at: Timestamp,
    /// The channel as Currents names it (`email`, `sms`, `pushnotification`, `whatsapp`, …).
    pub channel: String,
    /// The campaign, canvas, variation and dispatch it belongs to.
    pub ids: MessageIds,
}

/// The value property of custom events under `metric`, if any.
pub(crate) fn value_property(metric: &MetricKind) -> Option<&str> {
    match metric {
        MetricKind::EventValue { property, .. } => Some(property),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_event_names_say_sent_delivered_or_failed() {
        let kind = MessageEventKind::of_event_name;
        assert_eq!(kind("Send"), Some(MessageEventKind::Sent));
        assert_eq!(kind("CarrierSend"), Some(MessageEventKind::Sent));
        for delivered in ["Delivery", "Open", "Click", "Read", "Impression", "ShortLinkClick"] {
            assert_eq!(kind(delivered), Some(MessageEventKind::Delivered), "{delivered}");
        }
        for failed in ["Bounce", "DeliveryFailure", "Rejection", "Failure", "Abort"] {
            assert_eq!(kind(failed), Some(MessageEventKind::Failed), "{failed}");
        }
        assert_eq!(kind("SoftBounce"), None, "Braze retries a soft bounce");
        assert_eq!(kind("InboundReceive"), None);
    }
}
