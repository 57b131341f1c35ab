//! One Currents file: an Avro object container of one event type, decoded all or nothing.

use apache_avro::Reader;

use crate::event::{CurrentsEvent, EventType, READ};
use crate::projection::{self, Broken, RecordPlan};
use crate::{Error, Result};

/// Every event in the Avro object container `bytes`, the file at `key` of `event_type` (from
/// [`crate::CurrentsKey::parse`]). Each record is read with the file's own writer schema and by field
/// name, so schema changes Braze announces as non-breaking (added optional fields) change nothing.
///
/// All or nothing: a file that fails anywhere (truncated, corrupt, a record without `id`) yields an
/// error and no events, so the caller can report it and read its events from the complete file Braze
/// writes later.
///
/// # Errors
/// [`Error::Avro`] for a container that cannot be read, [`Error::Field`] for a record that is not an
/// event, each naming `key` (and the record).
pub fn decode(key: &str, event_type: &str, bytes: &[u8]) -> Result<Vec<CurrentsEvent>> {
    let kind = EventType::of(event_type);
    let header = projection::header(bytes).map_err(|Broken(reason)| container_error(key, reason))?;
    if RecordPlan::new(&header.schema, &READ).is_err() {
        // A schema the projection does not walk (logical types, named references): apache_avro.
        return decode_values(key, &kind, bytes);
    }
    let mut events = Vec::new();
    let mut problem = None;
    let read = projection::for_each_record(bytes, &header, &READ, |index, slots| {
        match CurrentsEvent::from_slots(&kind, slots) {
            Ok(event) => events.push(event),
            Err(p) => {
                problem = Some((index, p));
                return Err(Broken(String::new()));
            }
        }
        Ok(())
    });
    if let Some((record, p)) = problem {
        return Err(Error::Field {
            key: key.to_owned(),
            record,
            field: p.field,
            reason: p.reason,
        });
    }
    read.map_err(|Broken(reason)| container_error(key, reason))?;
    Ok(events)
}

fn container_error(key: &str, reason: String) -> Error {
    Error::Container {
        key: key.to_owned(),
        reason,
    }
}

/// [`decode`] through `apache_avro`'s reader (every field of every record built as a value).
fn decode_values(key: &str, kind: &EventType, bytes: &[u8]) -> Result<Vec<CurrentsEvent>> {
    let avro = |record: Option<usize>, source: apache_avro::Error| Error::Avro {
        key: key.to_owned(),
        record,
        source: Box::new(source),
    };
    let reader = Reader::new(bytes).map_err(|e| avro(None, e))?;
    let mut events = Vec::new();
    for (index, value) in reader.enumerate() {
        let value = value.map_err(|e| avro(Some(index), e))?;
        let event = CurrentsEvent::from_record(kind, value).map_err(|p| Error::Field {
            key: key.to_owned(),
            record: index,
            field: p.field,
            reason: p.reason,
        })?;
        events.push(event);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use apache_avro::types::Value;
    use apache_avro::{Codec, DeflateSettings, Schema};
    use jiff::Timestamp;

    use super::*;
    use crate::testing::{PURCHASE, container, optional, purchase, record, schema};

    const KEY: &str = "currents/dataexport.prod-01.S3.integration.x/event_type=users.behaviors.Purchase/date=2026-01-01-00/version=10/us-01/f+0+1.avro";

    #[test]
    fn purchases_in_every_codec() {
        let schema = schema("users.behaviors.Purchase", PURCHASE);
        for codec in [Codec::Null, Codec::Deflate(DeflateSettings::default()), Codec::Snappy] {
            let bytes = container(
                &schema,
                codec,
                vec![purchase("e1", Some("cust-1"), 12.34), purchase("e2", None, 5.0)],
            );
            let events = decode(KEY, "users.behaviors.Purchase", &bytes).unwrap();
            assert_eq!(events.len(), 2, "{codec:?}");
            let e = &events[0];
            assert_eq!(e.event_type, EventType::Purchase);
            assert_eq!(e.id, "e1");
            assert_eq!(e.external_user_id.as_deref(), Some("cust-1"));
            assert_eq!(e.user_id.as_deref(), Some("5f0c1b2a3d4e5f6071829304"));
            assert_eq!(e.time, Timestamp::from_second(1_767_225_600).unwrap());
            assert_eq!(e.price, Some(12.34), "the float's decimal, not 12.3400001525…");
            assert_eq!(e.currency.as_deref(), Some("USD"));
            assert_eq!(e.properties.as_deref(), Some(r#"{"size":"1kg"}"#));
            assert_eq!(events[1].external_user_id, None, "anonymous users have none");
        }
    }

    #[test]
    fn added_fields_are_ignored_and_missing_optional_ones_are_none() {
        // The same purchase in a newer schema with a field offerloop does not know, and in an older
        // one without `external_user_id` (`record` takes the values its schema has).
        let values = [
            ("id", Value::String("e1".into())),
            ("user_id", Value::String("u".into())),
            ("external_user_id", Value::String("cust-1".into())),
            ("loyalty_tier", Value::String("gold".into())),
            ("time", Value::Int(1_700_000_000)),
            ("product_id", Value::String("p".into())),
            ("price", Value::Float(1.5)),
            ("currency", Value::String("EUR".into())),
            ("properties", Value::String("{}".into())),
        ];
        let read = |fields: &[(&str, &str, bool)]| {
            let bytes = container(
                &schema("users.behaviors.Purchase", fields),
                Codec::Null,
                vec![record(fields, &values)],
            );
            decode(KEY, "users.behaviors.Purchase", &bytes).unwrap()
        };
        let mut newer = PURCHASE.to_vec();
        newer.insert(3, ("loyalty_tier", "string", true));
        assert_eq!(read(&newer)[0].external_user_id.as_deref(), Some("cust-1"));

        assert!(optional(PURCHASE, "external_user_id"));
        let older: Vec<_> = PURCHASE.iter().copied().filter(|f| f.0 != "external_user_id").collect();
        assert_eq!(read(&older)[0].external_user_id, None);
    }

    #[test]
    fn whatsapp_times_are_longs_and_message_ids_are_read() {
        let fields: &[(&str, &str, bool)] = &[
            ("id", "string", false),
            ("time", "long", false),
            ("user_id", "string", false),
            ("external_user_id", "string", true),
            ("from_phone_number", "string", false),
            ("campaign_id", "string", true),
            ("canvas_id", "string", true),
            ("dispatch_id", "string", true),
            ("send_id", "string", true),
        ];
        let event_type = "users.messages.whatsapp.Send";
        let bytes = container(
            &schema(event_type, fields),
            Codec::Null,
            vec![record(
                fields,
                &[
                    ("id", Value::String("w1".into())),
                    ("time", Value::Long(1_767_225_601)),
                    ("user_id", Value::String("u".into())),
                    ("external_user_id", Value::String("cust-9".into())),
                    ("from_phone_number", Value::String("+14155550100".into())),
                    ("canvas_id", Value::String("canvas-1".into())),
                    ("dispatch_id", Value::String("d-1".into())),
                ],
            )],
        );
        let events = decode("k.avro", event_type, &bytes).unwrap();
        let e = &events[0];
        assert_eq!(
            e.event_type,
            EventType::Message {
                channel: "whatsapp".into(),
                name: "Send".into()
            }
        );
        assert_eq!(e.time, Timestamp::from_second(1_767_225_601).unwrap());
        assert_eq!(e.message.canvas_id.as_deref(), Some("canvas-1"));
        assert_eq!(e.message.campaign_id, None);
        assert_eq!(e.message.dispatch_id.as_deref(), Some("d-1"));
    }

    #[test]
    fn a_truncated_file_is_an_error_naming_the_key_and_yields_nothing() {
        let schema = schema("users.behaviors.Purchase", PURCHASE);
        let records = (0..50).map(|i| purchase(&format!("e{i}"), Some("c"), 1.0)).collect();
        let bytes = container(&schema, Codec::Deflate(DeflateSettings::default()), records);
        for cut in [bytes.len() - 1, bytes.len() / 2, 10, 0] {
            let err = decode(KEY, "users.behaviors.Purchase", &bytes[..cut]).unwrap_err();
            assert!(
                matches!(err, Error::Container { .. } | Error::Avro { .. }),
                "cut at {cut}: {err:?}"
            );
            assert!(err.to_string().contains(KEY), "{err}");
        }
    }

    #[test]
    fn a_record_without_a_required_field_names_the_record_and_field() {
        let fields: &[(&str, &str, bool)] = &[("id", "string", true), ("time", "int", false)];
        let bytes = container(
            &schema("users.behaviors.CustomEvent", fields),
            Codec::Null,
            vec![
                record(fields, &[("id", Value::String("a".into())), ("time", Value::Int(1))]),
                record(fields, &[("time", Value::Int(2))]),
            ],
        );
        let err = decode(KEY, "users.behaviors.CustomEvent", &bytes).unwrap_err();
        match &err {
            Error::Field { record, field, .. } => assert_eq!((*record, *field), (1, "id")),
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("record 1, field `id`"), "{err}");
    }

    /// Avro's zigzag variable-length encoding of `n`.
    fn varint(n: i64) -> Vec<u8> {
        let mut z = ((n << 1) ^ (n >> 63)) as u64;
        let mut out = Vec::new();
        while z >= 0x80 {
            out.push((z & 0x7f) as u8 | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
        out
    }

    #[test]
    fn a_header_count_that_cannot_be_made_positive_is_an_error() {
        // Found by the `currents_file` fuzz target: a header map count of i64::MIN (nine 0xff bytes
        // and a 0x01) overflowed when negated (a panic in debug builds).
        let mut bytes = b"Obj\x01".to_vec();
        bytes.extend(varint(i64::MIN));
        assert_eq!(bytes[4..], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        let err = decode(KEY, "users.behaviors.Purchase", &bytes).unwrap_err();
        assert!(matches!(err, Error::Container { .. }), "{err:?}");
        assert!(err.to_string().contains("out of range"), "{err}");
    }

    #[test]
    fn an_array_of_items_that_take_no_bytes_is_skipped_at_once() {
        // An unread field holding an array of 2^63 - 1 nulls: skipping it item by item never ended
        // (the `currents_file` fuzz target times out on it before the fix).
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"CustomEvent","fields":[{"name":"id","type":"string"},
               {"name":"time","type":"int"},{"name":"pad","type":{"type":"array","items":"null"}}]}"#,
        )
        .unwrap();
        let header = container(&schema, Codec::Null, Vec::new());
        let sync = &header[header.len() - 16..];
        let mut record = varint(2);
        record.extend(b"e1");
        record.extend(varint(1));
        record.extend(varint(i64::MAX));
        record.extend(varint(0));
        let mut bytes = header.clone();
        bytes.extend(varint(1));
        bytes.extend(varint(record.len() as i64));
        bytes.extend(&record);
        bytes.extend(sync);
        let events = decode(KEY, "users.behaviors.CustomEvent", &bytes).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].id, "e1");
    }

    proptest::proptest! {
        /// Reading field by field finds exactly what apache_avro's full decoding finds, in every
        /// codec and for any ids, prices and anonymous users, split over any number of blocks.
        #[test]
        fn the_projection_reads_what_apache_avro_reads(
            rows in proptest::collection::vec(("[a-z0-9-]{1,40}", proptest::option::of("[ -~]{0,30}"), -1e6_f32..1e6), 1..60),
            codec in 0_u8..3,
            block in 1_usize..20,
        ) {
            let codec = match codec {
                0 => Codec::Null,
                1 => Codec::Deflate(DeflateSettings::default()),
                _ => Codec::Snappy,
            };
            let schema = schema("users.behaviors.Purchase", PURCHASE);
            let mut writer = apache_avro::Writer::builder().schema(&schema).writer(Vec::new()).codec(codec).block_size(block * 40).build().unwrap();
            for (id, external, price) in &rows {
                writer.append_value(purchase(id, external.as_deref(), *price)).unwrap();
            }
            let bytes = writer.into_inner().unwrap();
            let fast = decode(KEY, "users.behaviors.Purchase", &bytes).unwrap();
            let full = decode_values(KEY, &EventType::Purchase, &bytes).unwrap();
            proptest::prop_assert_eq!(fast.len(), rows.len());
            proptest::prop_assert_eq!(fast, full);
        }
    }
}
