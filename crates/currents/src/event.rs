//! One Currents event, with the fields attribution and delivery read, taken from an Avro record by
//! field name.

use apache_avro::types::Value;
use jiff::Timestamp;

/// What kind of event a file holds, from its event type (`users.behaviors.Purchase`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventType {
    /// `users.behaviors.Purchase`.
    Purchase,
    /// `users.behaviors.CustomEvent`.
    CustomEvent,
    /// `users.messages.<channel>.<name>`, e.g. channel `email`, name `Delivery`.
    Message {
        /// `email`, `sms`, `pushnotification`, `whatsapp`, `webhook`, …
        channel: String,
        /// `Send`, `Delivery`, `Open`, `Click`, `Bounce`, `Unsubscribe`, …
        name: String,
    },
    /// Any other event type (conversions, canvas entries, subscription changes, …).
    Other(String),
}

impl EventType {
    /// The kind of `event_type` (case-sensitive, as Braze writes it).
    pub fn of(event_type: &str) -> Self {
        match event_type {
            "users.behaviors.Purchase" => Self::Purchase,
            "users.behaviors.CustomEvent" => Self::CustomEvent,
            _ => match event_type
                .strip_prefix("users.messages.")
                .and_then(|r| r.split_once('.'))
            {
                Some((channel, name)) if !channel.is_empty() && !name.is_empty() && !name.contains('.') => {
                    Self::Message {
                        channel: channel.to_owned(),
                        name: name.to_owned(),
                    }
                }
                _ => Self::Other(event_type.to_owned()),
            },
        }
    }
}

/// The ids that tie a message event to its message (braze-currents.md §3.1–3.2); each may be absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageIds {
    /// The campaign.
    pub campaign_id: Option<String>,
    /// The campaign's message variation.
    pub message_variation_id: Option<String>,
    /// The canvas.
    pub canvas_id: Option<String>,
    /// The canvas variation.
    pub canvas_variation_id: Option<String>,
    /// The canvas step.
    pub canvas_step_id: Option<String>,
    /// The dispatch every message event of one send shares.
    pub dispatch_id: Option<String>,
    /// The message send id.
    pub send_id: Option<String>,
}

/// One event as offerloop reads it. Ids are opaque strings; names are not read (Braze fills them late).
#[derive(Clone, Debug, PartialEq)]
pub struct CurrentsEvent {
    /// What kind of event.
    pub event_type: EventType,
    /// Braze's globally unique event id: the key for at-least-once deduplication.
    pub id: String,
    /// When the event happened (`time`, UNIX seconds; `int`, or `long` for WhatsApp).
    pub time: Timestamp,
    /// The Braze user id (`user_id`; absent only on inbound SMS and WhatsApp).
    pub user_id: Option<String>,
    /// The customer's own id (`external_user_id`; absent for anonymous users).
    pub external_user_id: Option<String>,
    /// The user's IANA time zone at the event, when Braze knows it.
    pub timezone: Option<String>,
    /// The campaign, canvas and dispatch a message event belongs to (all `None` for behaviours).
    pub message: MessageIds,
    /// Purchase: the product.
    pub product_id: Option<String>,
    /// Purchase: the price, an Avro 32-bit float read as the decimal it was written as (12.34, not
    /// 12.340000152587890625).
    pub price: Option<f64>,
    /// Purchase: the currency code.
    pub currency: Option<String>,
    /// Custom event: its name.
    pub name: Option<String>,
    /// Purchase or custom event: the properties, a JSON-encoded object (not parsed here).
    pub properties: Option<String>,
    /// Subscription change: the new state (`Subscribed`, `Unsubscribed`, `Opted In`; any case).
    pub subscription_status: Option<String>,
    /// Subscription change: the channel (`email`, `sms`, `push`, `whatsapp`, …).
    pub channel: Option<String>,
}

/// Why a record could not be read as an event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FieldProblem {
    pub field: &'static str,
    pub reason: String,
}

/// The fields an event is read from; every other field is skipped.
pub(crate) const READ: [&str; 19] = [
    "id",
    "user_id",
    "external_user_id",
    "timezone",
    "campaign_id",
    "message_variation_id",
    "canvas_id",
    "canvas_variation_id",
    "canvas_step_id",
    "dispatch_id",
    "send_id",
    "product_id",
    "currency",
    "name",
    "properties",
    "subscription_status",
    "channel",
    "time",
    "price",
];

impl CurrentsEvent {
    /// The event in `record` of a file of `event_type`.
    pub(crate) fn from_record(event_type: &EventType, record: Value) -> Result<Self, FieldProblem> {
        let Value::Record(fields) = record else {
            return Err(FieldProblem {
                field: "(record)",
                reason: "the file's values are not records".to_owned(),
            });
        };
        // One pass over the record's fields, keeping the ones read (a record has 15–35 fields).
        let mut slots: [Option<Value>; READ.len()] = Default::default();
        for (name, value) in fields {
            if let Some(i) = READ.iter().position(|r| *r == name) {
                slots[i] = Some(value);
            }
        }
        Self::from_slots(event_type, slots)
    }

    /// The event whose fields of [`READ`] are `slots` (in its order; `None` when absent).
    pub(crate) fn from_slots(
        event_type: &EventType,
        mut slots: [Option<Value>; READ.len()],
    ) -> Result<Self, FieldProblem> {
        let mut take = |name: &'static str| READ.iter().position(|r| *r == name).and_then(|i| slots[i].take());
        let mut text = |name: &'static str| optional_string(take(name), name);
        let id = text("id")?.ok_or_else(|| missing("id"))?;
        let user_id = text("user_id")?;
        let external_user_id = text("external_user_id")?;
        let timezone = text("timezone")?;
        let message = MessageIds {
            campaign_id: text("campaign_id")?,
            message_variation_id: text("message_variation_id")?,
            canvas_id: text("canvas_id")?,
            canvas_variation_id: text("canvas_variation_id")?,
            canvas_step_id: text("canvas_step_id")?,
            dispatch_id: text("dispatch_id")?,
            send_id: text("send_id")?,
        };
        let product_id = text("product_id")?;
        let currency = text("currency")?;
        let name = text("name")?;
        let properties = text("properties")?;
        let subscription_status = text("subscription_status")?;
        let channel = text("channel")?;
        let time = seconds(take("time"))?;
        let price = price(take("price"))?;
        Ok(Self {
            event_type: event_type.clone(),
            id,
            time,
            user_id,
            external_user_id,
            timezone,
            message,
            product_id,
            price,
            currency,
            name,
            properties,
            subscription_status,
            channel,
        })
    }
}

fn missing(field: &'static str) -> FieldProblem {
    FieldProblem {
        field,
        reason: "required, but absent or null".to_owned(),
    }
}

fn wrong(field: &'static str, expected: &str, got: &Value) -> FieldProblem {
    FieldProblem {
        field,
        reason: format!("expected {expected}, found {got:?}"),
    }
}

/// A union `["null", T]` is read as its branch; absent and null are `None`.
fn unwrap_union(value: Option<Value>) -> Option<Value> {
    match value? {
        Value::Union(_, inner) => unwrap_union(Some(*inner)),
        Value::Null => None,
        v => Some(v),
    }
}

fn optional_string(value: Option<Value>, field: &'static str) -> Result<Option<String>, FieldProblem> {
    match unwrap_union(value) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong(field, "a string", &other)),
    }
}

fn seconds(value: Option<Value>) -> Result<Timestamp, FieldProblem> {
    let secs = match unwrap_union(value) {
        None => return Err(missing("time")),
        Some(Value::Int(s)) => i64::from(s),
        Some(Value::Long(s)) => s,
        Some(other) => return Err(wrong("time", "UNIX seconds (int or long)", &other)),
    };
    Timestamp::from_second(secs).map_err(|e| FieldProblem {
        field: "time",
        reason: format!("{secs} seconds is not a time: {e}"),
    })
}

fn price(value: Option<Value>) -> Result<Option<f64>, FieldProblem> {
    match unwrap_union(value) {
        None => Ok(None),
        // The shortest decimal that reads back as the same f32 is what the writer meant.
        Some(Value::Float(p)) => Ok(p.to_string().parse::<f64>().ok()),
        Some(Value::Double(p)) => Ok(Some(p)),
        Some(Value::Int(p)) => Ok(Some(f64::from(p))),
        Some(other) => Err(wrong("price", "a number", &other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_by_name() {
        assert_eq!(EventType::of("users.behaviors.Purchase"), EventType::Purchase);
        assert_eq!(EventType::of("users.behaviors.CustomEvent"), EventType::CustomEvent);
        assert_eq!(
            EventType::of("users.messages.email.Delivery"),
            EventType::Message {
                channel: "email".to_owned(),
                name: "Delivery".to_owned()
            }
        );
        for other in [
            "users.campaigns.Conversion",
            "users.behaviors.subscription.GlobalStateChange",
            "users.messages.email",
            "users.messages.canvas.exit.x",
        ] {
            assert_eq!(EventType::of(other), EventType::Other(other.to_owned()), "{other}");
        }
    }

    #[test]
    fn a_record_without_id_or_time_names_the_field() {
        let record =
            |fields: Vec<(&str, Value)>| Value::Record(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
        let purchase = EventType::Purchase;
        let err = CurrentsEvent::from_record(&purchase, record(vec![("time", Value::Int(1))])).unwrap_err();
        assert_eq!(err.field, "id");
        let err = CurrentsEvent::from_record(&purchase, record(vec![("id", Value::String("a".into()))])).unwrap_err();
        assert_eq!(err.field, "time");
        let err = CurrentsEvent::from_record(
            &purchase,
            record(vec![
                ("id", Value::String("a".into())),
                ("time", Value::String("noon".into())),
            ]),
        )
        .unwrap_err();
        assert_eq!(err.field, "time");
        assert!(err.reason.contains("UNIX seconds"), "{}", err.reason);
    }
}
