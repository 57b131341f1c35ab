//! The event log: every send and every outcome, in time order of application. The single source of
//! truth for analytics (`*/data_series`), profile `campaigns_received`, and the Currents-style feed.

use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::world::Channel;

/// Which message an event belongs to. Shared (`Arc`) by every event, pending outcome and profile
/// entry of the same dispatch, channel and variation, so a delivery costs a few pointers, not copies.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MessageRef {
    /// The campaign, when sent through one.
    pub campaign_id: Option<String>,
    /// The canvas, when sent through one.
    pub canvas_id: Option<String>,
    /// The canvas step.
    pub canvas_step_id: Option<String>,
    /// The message variation (campaign variant / step message).
    pub message_variation_id: Option<String>,
    /// The request's `dispatch_id`.
    pub dispatch_id: String,
    /// The request's `send_id`, when given.
    pub send_id: Option<String>,
    /// The channel.
    pub channel: Channel,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A message was sent (`users.messages.*.Send`).
    Send,
    /// Delivered.
    Delivery,
    /// Bounced / not reachable.
    Bounce,
    /// Opened.
    Open,
    /// Clicked.
    Click,
    /// Unsubscribed.
    Unsubscribe,
    /// A custom event (`users.behaviors.CustomEvent`).
    CustomEvent {
        /// Name.
        name: String,
        /// Properties.
        properties: Map<String, Value>,
    },
    /// A purchase (`users.behaviors.Purchase`).
    Purchase {
        /// Product id.
        product_id: String,
        /// Unit price.
        price: f64,
        /// Currency.
        currency: String,
        /// Quantity.
        quantity: u32,
    },
}

/// One entry of the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened (simulated time).
    pub time: Timestamp,
    /// `external_user_id`.
    pub external_user_id: String,
    /// What.
    pub kind: EventKind,
    /// The message it belongs to (messages events) or is attributed to (a conversion within the
    /// campaign's conversion window); `None` for organic behaviour.
    pub message: Option<Arc<MessageRef>>,
}
