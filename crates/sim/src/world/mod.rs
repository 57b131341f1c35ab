//! The simulated customer world: a seeded population, its hidden traits, the response model and the
//! oracle. Pure: no I/O beyond reading a scenario file, no clock (times come in as arguments), and
//! randomness only from the scenario's seed and the `stream` passed in, so everything is reproducible.
//!
//! CONTRACT (used by `state` and `server`; the world helper implements the bodies and may add items,
//! but keeps these signatures):
//! - [`Scenario::from_file`] / [`Scenario::from_toml_str`] parse and validate a scenario, errors located
//!   by file, line and field;
//! - [`World::new`] generates the population deterministically from the scenario;
//! - [`World::expected`] is the oracle for one customer and one delivery; [`World::expected_organic`]
//!   the no-message baseline for a day;
//! - [`World::respond`] samples what one delivery causes, [`World::organic`] what a customer does on a
//!   day without any message.
//!
//! Layout: `spec` (the scenario file format as serde types), `scenario` (parsing, validation and
//! located errors, resolution into `model`), `population` (generation, column storage, Braze-shaped
//! profiles), `response` (the funnel, sampled and in expectation) and `math`. The format is documented
//! in `docs/simulator.md`; the default scenario is `crates/sim/scenarios/winback.toml`
//! ([`DEFAULT_SCENARIO`]).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A message channel as Braze names it in `messages` objects and analytics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// `email`.
    Email,
    /// `sms`.
    Sms,
    /// `apple_push` / `android_push` (one channel here).
    Push,
    /// `content_card`.
    ContentCard,
    /// `in_app_message`.
    InApp,
    /// `webhook`.
    Webhook,
    /// `whats_app` in Braze's `messages` objects; `whatsapp` in scenario files (`whats_app` accepted).
    #[serde(rename = "whatsapp", alias = "whats_app")]
    WhatsApp,
}

/// One message reaching (or trying to reach) one customer.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The channel it goes out on.
    pub channel: Channel,
    /// The API-triggered campaign, when sent through one.
    pub campaign_id: Option<String>,
    /// The canvas, when sent through one.
    pub canvas_id: Option<String>,
    /// The per-recipient `trigger_properties` / canvas `context`, merged with request-level ones
    /// (recipient-level wins). The response model reads option ids from here.
    pub properties: Map<String, Value>,
    /// When it is delivered (UTC; the world converts to the customer's local time).
    pub at: Timestamp,
    /// Messages this customer received in the 7 days before `at` (fatigue).
    pub recent_sends: u32,
}

/// The expected outcome of one delivery (or of a day with none), from the true model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    /// Whether the channel can reach the customer at all (opt-in, token, address).
    pub reachable: bool,
    /// P(open) (email/push; 0 where the channel has no opens).
    pub open: f64,
    /// P(click).
    pub click: f64,
    /// P(at least one conversion within the scenario's horizon caused or not by the message;
    /// organic conversions included).
    pub convert: f64,
    /// Expected revenue (currency units), conversions times order value, organic included.
    pub revenue: f64,
    /// Expected cost of the offer (paid only on conversion).
    pub cost: f64,
    /// P(unsubscribe from the channel).
    pub unsubscribe: f64,
}

/// Something a customer does, at a time, as the world samples it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// When it happens.
    pub at: Timestamp,
    /// What happens.
    pub kind: OutcomeKind,
}

/// The kinds of [`Outcome`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutcomeKind {
    /// The message was delivered.
    Delivered,
    /// The channel could not deliver it (no opt-in, no token, hard bounce).
    Bounced,
    /// Opened (email, push).
    Opened,
    /// Clicked.
    Clicked,
    /// Unsubscribed from the delivery's channel.
    Unsubscribed,
    /// A custom event (e.g. the use case's conversion event), with its properties.
    CustomEvent {
        /// Event name.
        name: String,
        /// Event properties.
        properties: Map<String, Value>,
    },
    /// A purchase.
    Purchase {
        /// Product id.
        product_id: String,
        /// Unit price.
        price: f64,
        /// ISO currency.
        currency: String,
        /// Quantity.
        quantity: u32,
    },
}

pub use self::population::{MAX_CUSTOMERS, World};
pub use self::scenario::{ConversionEvent, DEFAULT_SCENARIO, Scenario};

mod math;
mod model;
mod population;
mod response;
mod scenario;
mod spec;
