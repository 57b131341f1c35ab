//! Test helpers: Currents writer schemas shaped like Braze's sample files, records and containers.

use apache_avro::types::Value;
use apache_avro::{Codec, Schema, Writer};

/// The event type of [`PURCHASE`].
pub(crate) const PURCHASE_TYPE: &str = "users.behaviors.Purchase";

/// A Currents writer schema as Braze's sample files have it: compact JSON, the event type's
/// namespace, optional fields as `["null", T]` with a null default. `fields`: (name, type, optional).
pub(crate) fn schema(event_type: &str, fields: &[(&str, &str, bool)]) -> Schema {
    let (namespace, name) = event_type.rsplit_once('.').unwrap();
    let fields: Vec<String> = fields
        .iter()
        .map(|(f, t, optional)| {
            if *optional {
                format!(r#"{{"name":"{f}","type":["null","{t}"],"doc":"","default":null}}"#)
            } else {
                format!(r#"{{"name":"{f}","type":"{t}","doc":""}}"#)
            }
        })
        .collect();
    let json = format!(
        r#"{{"type":"record","name":"{name}","namespace":"dataexport.S3.inner.{namespace}","doc":"","fields":[{}],"owner":"@Appboy/x"}}"#,
        fields.join(",")
    );
    Schema::parse_str(&json).unwrap()
}

/// `users.behaviors.Purchase`'s fields in Braze's order (braze-currents.md §3.3).
pub(crate) const PURCHASE: &[(&str, &str, bool)] = &[
    ("id", "string", false),
    ("user_id", "string", false),
    ("external_user_id", "string", true),
    ("app_id", "string", true),
    ("time", "int", false),
    ("platform", "string", true),
    ("os_version", "string", true),
    ("device_model", "string", true),
    ("device_id", "string", true),
    ("product_id", "string", false),
    ("price", "float", false),
    ("currency", "string", false),
    ("properties", "string", false),
    ("ad_id", "string", true),
    ("ad_id_type", "string", true),
    ("ad_tracking_enabled", "boolean", true),
    ("app_group_id", "string", true),
];

pub(crate) fn optional(schema_fields: &[(&str, &str, bool)], name: &str) -> bool {
    schema_fields.iter().find(|(f, _, _)| *f == name).is_some_and(|f| f.2)
}

/// A record of `fields` with `values` set (by name) and every other optional field null.
pub(crate) fn record(fields: &[(&str, &str, bool)], values: &[(&str, Value)]) -> Value {
    Value::Record(
        fields
            .iter()
            .map(|(f, _, opt)| {
                let v = values.iter().find(|(n, _)| n == f).map(|(_, v)| v.clone());
                let v = match (v, opt) {
                    (Some(v), true) => Value::Union(1, Box::new(v)),
                    (None, true) => Value::Union(0, Box::new(Value::Null)),
                    (Some(v), false) => v,
                    (None, false) => panic!("required field {f} not given"),
                };
                ((*f).to_owned(), v)
            })
            .collect(),
    )
}

pub(crate) fn purchase(id: &str, external: Option<&str>, price: f32) -> Value {
    let mut values = vec![
        ("id", Value::String(id.to_owned())),
        ("user_id", Value::String("5f0c1b2a3d4e5f6071829304".to_owned())),
        ("time", Value::Int(1_767_225_600)),
        ("product_id", Value::String("coffee-1kg".to_owned())),
        ("price", Value::Float(price)),
        ("currency", Value::String("USD".to_owned())),
        ("properties", Value::String(r#"{"size":"1kg"}"#.to_owned())),
    ];
    if let Some(e) = external {
        values.push(("external_user_id", Value::String(e.to_owned())));
    }
    record(PURCHASE, &values)
}

pub(crate) fn container(schema: &Schema, codec: Codec, records: Vec<Value>) -> Vec<u8> {
    let mut writer = Writer::with_codec(schema, Vec::new(), codec).unwrap();
    for r in records {
        writer.append_value(r).unwrap();
    }
    writer.into_inner().unwrap()
}

/// A container of purchases in Braze's Purchase schema.
pub(crate) fn purchase_file(codec: Codec, records: Vec<Value>) -> Vec<u8> {
    container(&schema(PURCHASE_TYPE, PURCHASE), codec, records)
}
