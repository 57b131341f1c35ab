//! What Braze Currents writes for each simulated event: the event types per channel and the
//! values of each record (braze-currents.md §3). A simulated event with no Currents counterpart
//! (a push delivery, an SMS open) writes nothing; one SMS or WhatsApp unsubscribe writes the
//! inbound `STOP` and the subscription-group change, as Braze does.

use apache_avro::types::Value;

use super::schemas::{Field, FieldType};
use crate::state::events::{Event, EventKind};
use crate::world::Channel;

/// One Currents record before it meets its schema: its event type and the values it has (every
/// other optional field is null).
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The event type, e.g. `users.messages.email.Open`.
    pub event_type: &'static str,
    /// Values by field name; the `id` is set by the feed.
    pub values: Vec<(&'static str, Value)>,
}

/// Who the event is of, as Currents names them.
#[derive(Clone, Debug)]
pub struct Identity<'a> {
    /// The Braze user id (`user_id`, the export's `braze_id`).
    pub user_id: &'a str,
    /// The user's IANA time zone, when known.
    pub timezone: Option<&'a str>,
}

/// The workspace's app group id (`app_group_id`), the same on every record.
pub const APP_GROUP_ID: &str = "5f3b2c1a-0d4e-4b6a-9c8d-7e6f5a4b3c2d";
/// The app that push, in-app and content-card events name (`app_id`).
const APP_ID: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
/// The business number of SMS and WhatsApp.
const BUSINESS_NUMBER: &str = "+15550100100";
/// What a connector with the "Removed" field transformation writes for `email_address` (§2).
const REDACTED: &str = "[REDACTED]";
/// The subscription group of SMS and WhatsApp messages.
const SUBSCRIPTION_GROUP_ID: &str = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";

/// The Currents records of `event` (none when Currents has no counterpart).
pub fn records_of(event: &Event, who: &Identity<'_>) -> Vec<Record> {
    let mut records = Vec::new();
    for event_type in event_types_of(event) {
        let mut values = common_values(event, who);
        values.extend(specific_values(event, event_type));
        if let EventKind::Purchase { quantity, .. } = &event.kind {
            // braze-api.md: a purchase of quantity N is N purchases; Currents has no quantity field.
            for _ in 0..(*quantity).max(1) {
                records.push(Record {
                    event_type,
                    values: values.clone(),
                });
            }
            continue;
        }
        records.push(Record { event_type, values });
    }
    records
}

/// The event types `event` is written as.
pub fn event_types_of(event: &Event) -> Vec<&'static str> {
    let channel = event.message.as_ref().map(|m| m.channel);
    match (&event.kind, channel) {
        (EventKind::Purchase { .. }, _) => vec!["users.behaviors.Purchase"],
        (EventKind::CustomEvent { .. }, _) => vec!["users.behaviors.CustomEvent"],
        (kind, Some(channel)) => message_event_types(kind, channel),
        (_, None) => Vec::new(),
    }
}

fn message_event_types(kind: &EventKind, channel: Channel) -> Vec<&'static str> {
    use Channel as C;
    use EventKind as K;
    let one = match (channel, kind) {
        (C::Email, K::Send) => "users.messages.email.Send",
        (C::Email, K::Delivery) => "users.messages.email.Delivery",
        (C::Email, K::Bounce) => "users.messages.email.Bounce",
        (C::Email, K::Open) => "users.messages.email.Open",
        (C::Email, K::Click) => "users.messages.email.Click",
        (C::Email, K::Unsubscribe) => "users.messages.email.Unsubscribe",
        (C::Sms, K::Send) => "users.messages.sms.Send",
        (C::Sms, K::Delivery) => "users.messages.sms.Delivery",
        (C::Sms, K::Bounce) => "users.messages.sms.DeliveryFailure",
        (C::Sms, K::Click) => "users.messages.sms.ShortLinkClick",
        (C::Sms, K::Unsubscribe) => {
            return vec![
                "users.messages.sms.InboundReceive",
                "users.behaviors.subscriptiongroup.StateChange",
            ];
        }
        (C::WhatsApp, K::Send) => "users.messages.whatsapp.Send",
        (C::WhatsApp, K::Delivery) => "users.messages.whatsapp.Delivery",
        (C::WhatsApp, K::Open) => "users.messages.whatsapp.Read",
        (C::WhatsApp, K::Bounce) => "users.messages.whatsapp.Failure",
        (C::WhatsApp, K::Unsubscribe) => {
            return vec![
                "users.messages.whatsapp.InboundReceive",
                "users.behaviors.subscriptiongroup.StateChange",
            ];
        }
        (C::Push, K::Send) => "users.messages.pushnotification.Send",
        // A push open includes button clicks: one Open per engagement.
        (C::Push, K::Open) => "users.messages.pushnotification.Open",
        (C::Push, K::Bounce) => "users.messages.pushnotification.Bounce",
        (C::Push, K::Unsubscribe) => "users.behaviors.subscription.GlobalStateChange",
        (C::Webhook, K::Send) => "users.messages.webhook.Send",
        (C::Webhook, K::Bounce) => "users.messages.webhook.Failure",
        (C::ContentCard, K::Send) => "users.messages.contentcard.Send",
        (C::ContentCard, K::Open) => "users.messages.contentcard.Impression",
        (C::ContentCard, K::Click) => "users.messages.contentcard.Click",
        (C::InApp, K::Open) => "users.messages.inappmessage.Impression",
        (C::InApp, K::Click) => "users.messages.inappmessage.Click",
        _ => return Vec::new(),
    };
    vec![one]
}

fn text(s: &str) -> Value {
    Value::String(s.to_owned())
}

/// The identity, time and message fields (set only where the schema has them).
fn common_values(event: &Event, who: &Identity<'_>) -> Vec<(&'static str, Value)> {
    let mut values = vec![
        ("user_id", text(who.user_id)),
        ("external_user_id", text(&event.external_user_id)),
        ("time", Value::Long(event.time.as_second())),
        ("app_group_id", text(APP_GROUP_ID)),
    ];
    if let Some(tz) = who.timezone {
        values.push(("timezone", text(tz)));
    }
    if let Some(m) = &event.message {
        let ids = [
            ("campaign_id", &m.campaign_id),
            ("canvas_id", &m.canvas_id),
            ("canvas_step_id", &m.canvas_step_id),
            ("message_variation_id", &m.message_variation_id),
            ("send_id", &m.send_id),
        ];
        for (field, value) in ids {
            if let Some(v) = value {
                values.push((field, text(v)));
            }
        }
        // A canvas step's message variation is the step's message.
        if m.canvas_id.is_some()
            && let Some(v) = &m.message_variation_id
        {
            values.push(("canvas_step_message_variation_id", text(v)));
        }
        values.push(("dispatch_id", text(&m.dispatch_id)));
    }
    values
}

/// The fields only some event types have.
fn specific_values(event: &Event, event_type: &str) -> Vec<(&'static str, Value)> {
    let mut values = Vec::new();
    match &event.kind {
        EventKind::Purchase {
            product_id,
            price,
            currency,
            ..
        } => {
            values.push(("product_id", text(product_id)));
            // Currents' price is a 32-bit float (§3.1).
            values.push(("price", Value::Float(*price as f32)));
            values.push(("currency", text(currency)));
            values.push(("properties", text("{}")));
        }
        EventKind::CustomEvent { name, properties } => {
            values.push(("name", text(name)));
            values.push((
                "properties",
                text(&serde_json::Value::Object(properties.clone()).to_string()),
            ));
        }
        _ => {}
    }
    if event_type.starts_with("users.messages.email.") {
        values.push(("email_address", text(REDACTED)));
    }
    if event_type.starts_with("users.messages.pushnotification.") {
        values.push(("app_id", text(APP_ID)));
        values.push(("platform", text("ios")));
    }
    if event_type.starts_with("users.messages.whatsapp.") || event_type.starts_with("users.messages.sms.") {
        values.push(("from_phone_number", text(BUSINESS_NUMBER)));
        values.push(("subscription_group_id", text(SUBSCRIPTION_GROUP_ID)));
    }
    match event_type {
        "users.messages.whatsapp.Failure" => {
            values.push(("provider_error_code", text("131026")));
            values.push(("provider_error_title", text("Message undeliverable")));
        }
        "users.messages.sms.DeliveryFailure" => values.push(("error", text("Undeliverable"))),
        "users.messages.sms.InboundReceive" | "users.messages.whatsapp.InboundReceive" => {
            values.push(("inbound_phone_number", text(BUSINESS_NUMBER)));
            values.push(("user_phone_number", text(REDACTED)));
            values.push(("action", text("Unsubscribed")));
            values.push(("message_body", text("STOP")));
        }
        "users.behaviors.subscriptiongroup.StateChange" => {
            values.push(("subscription_group_id", text(SUBSCRIPTION_GROUP_ID)));
            values.push(("subscription_status", text("Unsubscribed")));
            let channel = match event.message.as_ref().map(|m| m.channel) {
                Some(Channel::WhatsApp) => "whatsapp",
                _ => "sms",
            };
            values.push(("channel", text(channel)));
            values.push(("state_change_source", text("SMS")));
        }
        "users.behaviors.subscription.GlobalStateChange" => {
            values.push(("subscription_status", text("Unsubscribed")));
            values.push(("channel", text("push")));
            values.push(("state_change_source", text("SDK")));
        }
        _ => {}
    }
    values
}

/// Why a record does not fit its schema (a bug in [`records_of`]).
#[derive(Debug, PartialEq, Eq)]
pub struct MissingField {
    /// The event type.
    pub event_type: &'static str,
    /// The required field without a value.
    pub field: &'static str,
}

/// The Avro record of `record` under `fields` (in the schema's order): each field's value, as its
/// type says (`time` an `int` or a `long`), a union branch for optional fields, null where unset.
/// Values for fields the schema lacks are dropped.
///
/// # Errors
/// [`MissingField`] when a required field has no value.
pub fn avro_record(record: &Record, id: &str, fields: &[Field]) -> Result<Value, MissingField> {
    let mut out = Vec::with_capacity(fields.len());
    for field in fields {
        let value = if field.name == "id" {
            Some(text(id))
        } else {
            record
                .values
                .iter()
                .find(|(name, _)| *name == field.name)
                .map(|(_, v)| typed(v.clone(), field.ty))
        };
        let value = match (value, field.optional) {
            (Some(v), true) => Value::Union(1, Box::new(v)),
            (Some(v), false) => v,
            (None, true) => Value::Union(0, Box::new(Value::Null)),
            (None, false) => {
                return Err(MissingField {
                    event_type: record.event_type,
                    field: field.name,
                });
            }
        };
        out.push((field.name.to_owned(), value));
    }
    Ok(Value::Record(out))
}

/// `value` as the schema's type: times are kept as `long` until a schema says `int`.
fn typed(value: Value, ty: FieldType) -> Value {
    match (value, ty) {
        // Simulated times stay below 2^31 - 1 (2038), so seconds fit an `int`.
        (Value::Long(n), FieldType::Int) => Value::Int(i32::try_from(n).unwrap_or(i32::MAX)),
        (v, _) => v,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::schemas;
    use super::*;
    use crate::state::MessageRef;

    fn event(kind: EventKind, channel: Option<Channel>) -> Event {
        Event {
            time: "2026-01-05T10:00:00Z".parse().unwrap(),
            external_user_id: "u1".into(),
            kind,
            message: channel.map(|channel| {
                Arc::new(MessageRef {
                    campaign_id: Some("c1".into()),
                    canvas_id: None,
                    canvas_step_id: None,
                    message_variation_id: Some("v1".into()),
                    dispatch_id: "d1".into(),
                    send_id: None,
                    channel,
                })
            }),
        }
    }

    const WHO: Identity<'static> = Identity {
        user_id: "0123456789abcdef01234567",
        timezone: Some("Europe/Paris"),
    };

    fn all_kinds() -> Vec<EventKind> {
        vec![
            EventKind::Send,
            EventKind::Delivery,
            EventKind::Bounce,
            EventKind::Open,
            EventKind::Click,
            EventKind::Unsubscribe,
        ]
    }

    #[test]
    fn every_record_of_every_channel_fits_its_schema() {
        let channels = [
            Channel::Email,
            Channel::Sms,
            Channel::Push,
            Channel::ContentCard,
            Channel::InApp,
            Channel::Webhook,
            Channel::WhatsApp,
        ];
        let mut written = 0;
        for channel in channels {
            for kind in all_kinds() {
                for record in records_of(&event(kind.clone(), Some(channel)), &WHO) {
                    let fields = schemas::fields(record.event_type)
                        .unwrap_or_else(|| panic!("no schema for {}", record.event_type));
                    let avro = avro_record(&record, "id-1", &fields).unwrap();
                    let json = schemas::schema_json(record.event_type, &fields, "S3");
                    let schema = apache_avro::Schema::parse_str(&json).unwrap();
                    apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
                        .build()
                        .unwrap()
                        .write_value_to_vec(avro)
                        .unwrap_or_else(|e| panic!("{}: {e}", record.event_type));
                    written += 1;
                }
            }
        }
        // Every event type of the table is reachable from some simulated event.
        assert!(written >= schemas::event_types().count() - 2, "{written}");
    }

    #[test]
    fn a_purchase_of_three_is_three_purchases_at_the_unit_price() {
        let purchase = event(
            EventKind::Purchase {
                product_id: "sku".into(),
                price: 12.34,
                currency: "USD".into(),
                quantity: 3,
            },
            None,
        );
        let records = records_of(&purchase, &WHO);
        assert_eq!(records.len(), 3);
        let fields = schemas::fields("users.behaviors.Purchase").unwrap();
        let Value::Record(r) = avro_record(&records[0], "p", &fields).unwrap() else {
            panic!()
        };
        let get = |n: &str| r.iter().find(|(k, _)| k == n).unwrap().1.clone();
        assert_eq!(get("price"), Value::Float(12.34));
        assert_eq!(get("time"), Value::Int(1_767_607_200));
        assert_eq!(get("external_user_id"), Value::Union(1, Box::new(text("u1"))));
        assert_eq!(get("app_id"), Value::Union(0, Box::new(Value::Null)));
    }

    #[test]
    fn events_without_a_currents_counterpart_write_nothing() {
        assert!(records_of(&event(EventKind::Delivery, Some(Channel::Push)), &WHO).is_empty());
        assert!(records_of(&event(EventKind::Open, Some(Channel::Sms)), &WHO).is_empty());
        let sms_stop = records_of(&event(EventKind::Unsubscribe, Some(Channel::Sms)), &WHO);
        let types: Vec<_> = sms_stop.iter().map(|r| r.event_type).collect();
        assert_eq!(
            types,
            [
                "users.messages.sms.InboundReceive",
                "users.behaviors.subscriptiongroup.StateChange"
            ]
        );
    }

    #[test]
    fn a_required_field_without_a_value_is_an_error() {
        let record = Record {
            event_type: "users.behaviors.Purchase",
            values: vec![("user_id", text("u"))],
        };
        let fields = schemas::fields("users.behaviors.Purchase").unwrap();
        assert_eq!(avro_record(&record, "x", &fields).unwrap_err().field, "time");
    }
}
