//! Avro object container files framed as Braze's are (braze-currents.md §1.3): the `Obj\x01`
//! magic, a metadata map holding **only** `avro.schema` (no `avro.codec` key, which readers take as
//! codec `null`), a 16-byte sync marker, then blocks of records. Records are encoded by
//! `apache_avro`; the framing is written here because `apache_avro`'s writer always adds an
//! `avro.codec` key, which Braze's files do not have.

use apache_avro::Schema;
use apache_avro::types::Value;

/// The Avro container magic.
const MAGIC: &[u8; 4] = b"Obj\x01";

/// A container file of `records` (already valid for `schema`), in one block like Braze's small
/// files, or none when `records` is empty (Braze never writes empty files; the caller does not ask).
///
/// # Errors
/// `apache_avro`'s, when a record does not match `schema` (a bug in the caller's records).
pub fn container(
    schema_json: &str,
    schema: &Schema,
    records: Vec<Value>,
    sync: [u8; 16],
) -> Result<Vec<u8>, apache_avro::Error> {
    let mut out = Vec::with_capacity(64 + schema_json.len() + records.len() * 128);
    out.extend_from_slice(MAGIC);
    // The metadata map: one block of one entry, then the empty block that ends it.
    write_long(&mut out, 1);
    write_bytes(&mut out, b"avro.schema");
    write_bytes(&mut out, schema_json.as_bytes());
    write_long(&mut out, 0);
    out.extend_from_slice(&sync);
    let count = records.len();
    let mut block = Vec::new();
    let writer = apache_avro::writer::datum::GenericDatumWriter::builder(schema).build()?;
    for record in records {
        writer.write_value(&mut block, record)?;
    }
    if count > 0 {
        write_long(&mut out, i64::try_from(count).unwrap_or(i64::MAX));
        write_long(&mut out, i64::try_from(block.len()).unwrap_or(i64::MAX));
        out.extend(block);
        out.extend_from_slice(&sync);
    }
    Ok(out)
}

/// An Avro `long`: zig-zag, then base-128 varint.
fn write_long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Avro `bytes`/`string`: the length as a `long`, then the bytes.
fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_long(out, i64::try_from(bytes.len()).unwrap_or(i64::MAX));
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{"type":"record","name":"E","namespace":"x","fields":[{"name":"id","type":"string"},{"name":"n","type":["null","long"],"default":null}]}"#;

    #[test]
    fn apache_avro_reads_what_is_written_and_finds_no_codec_key() {
        let schema = Schema::parse_str(SCHEMA).unwrap();
        let records: Vec<Value> = (0..300_i64)
            .map(|i| {
                Value::Record(vec![
                    ("id".into(), Value::String(format!("e{i}"))),
                    ("n".into(), Value::Union(1, Box::new(Value::Long(i * 1_000_003 - 77)))),
                ])
            })
            .collect();
        let bytes = container(SCHEMA, &schema, records.clone(), [7; 16]).unwrap();
        let reader = apache_avro::Reader::new(&bytes[..]).unwrap();
        assert!(reader.user_metadata().is_empty());
        let read: Vec<Value> = reader.map(Result::unwrap).collect();
        assert_eq!(read, records);
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("avro.schema") && !text.contains("avro.codec"));
    }

    #[test]
    fn longs_are_zigzag_varints() {
        let enc = |n| {
            let mut v = Vec::new();
            write_long(&mut v, n);
            v
        };
        assert_eq!(enc(0), [0]);
        assert_eq!(enc(-1), [1]);
        assert_eq!(enc(1), [2]);
        assert_eq!(enc(64), [0x80, 0x01]);
        assert_eq!(enc(-65), [0x81, 0x01]);
    }
}
