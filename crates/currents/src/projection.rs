//! Decoding a Currents file reading only the fields an event keeps: the Avro container's blocks are
//! framed and decompressed here (codecs null, deflate, snappy), and each record is walked with its
//! writer schema (parsed by `apache_avro`), the fields offerloop reads decoded and every other one
//! skipped without allocating. `apache_avro`'s reader builds every field of every record (names
//! included) as owned values; a Currents message record has 20–35 fields of which offerloop keeps a
//! handful, and this is what lets a read of ten million events stay within a minute
//! (`cargo xtask bench currents`). Tested against `apache_avro`'s own decoding (`file::tests`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Read as _;
use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::schema::RecordSchema;
use apache_avro::types::Value;

/// Why a container or record could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Broken(pub String);

type Result<T> = std::result::Result<T, Broken>;

fn broken(reason: impl Into<String>) -> Broken {
    Broken(reason.into())
}

/// A cursor over Avro binary data.
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }

    fn done(&self) -> bool {
        self.at >= self.data.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.data.len());
        let end = end.ok_or_else(|| broken(format!("unexpected end of data at byte {}", self.at)))?;
        let out = &self.data[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn long(&mut self) -> Result<i64> {
        let mut z: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = *self
                .data
                .get(self.at)
                .ok_or_else(|| broken(format!("unexpected end of data at byte {}", self.at)))?;
            self.at += 1;
            z |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
            }
        }
        Err(broken(format!(
            "a variable-length integer longer than 10 bytes at {}",
            self.at
        )))
    }

    fn len(&mut self) -> Result<usize> {
        let n = self.long()?;
        usize::try_from(n).map_err(|_| broken(format!("negative length {n}")))
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.len()?;
        self.take(n)
    }
}

/// How to read (or skip) one value of the writer schema.
#[derive(Debug)]
enum Plan {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Fixed(usize),
    Enum,
    Union(Vec<Plan>),
    Array(Box<Plan>),
    Map(Box<Plan>),
    Record(Vec<(Option<usize>, Plan)>),
}

/// The plan of a record of `schema` whose fields named in `wanted` are read into their index.
pub(crate) struct RecordPlan(Vec<(Option<usize>, Plan)>);

impl RecordPlan {
    /// The plan for a file whose writer schema is `schema` (a record).
    pub(crate) fn new(schema: &Schema, wanted: &[&str]) -> Result<Self> {
        let Schema::Record(RecordSchema { fields, .. }) = schema else {
            return Err(broken("the file's schema is not a record"));
        };
        let mut plan = Vec::with_capacity(fields.len());
        for field in fields {
            let slot = wanted.iter().position(|w| *w == field.name);
            plan.push((slot, plan_of(&field.schema, 0)?));
        }
        Ok(Self(plan))
    }

    /// Reads one record from `data` into `slots` (wanted fields only; a union is read as its branch,
    /// null as `Value::Null`).
    fn read<const N: usize>(&self, data: &mut Bytes<'_>, slots: &mut [Option<Value>; N]) -> Result<()> {
        for (slot, plan) in &self.0 {
            match slot {
                Some(i) => {
                    let value = read_value(plan, data)?;
                    if let Some(s) = slots.get_mut(*i) {
                        *s = Some(value);
                    }
                }
                None => skip(plan, data)?,
            }
        }
        Ok(())
    }
}

fn plan_of(schema: &Schema, depth: usize) -> Result<Plan> {
    if depth > 32 {
        return Err(broken("a schema nested deeper than 32 levels"));
    }
    Ok(match schema {
        Schema::Null => Plan::Null,
        Schema::Boolean => Plan::Boolean,
        Schema::Int | Schema::Date | Schema::TimeMillis => Plan::Int,
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => Plan::Long,
        Schema::Float => Plan::Float,
        Schema::Double => Plan::Double,
        Schema::Bytes => Plan::Bytes,
        Schema::String => Plan::String,
        Schema::Fixed(f) => Plan::Fixed(f.size),
        Schema::Enum(_) => Plan::Enum,
        Schema::Union(u) => Plan::Union(
            u.variants()
                .iter()
                .map(|v| plan_of(v, depth + 1))
                .collect::<Result<_>>()?,
        ),
        Schema::Array(a) => Plan::Array(Box::new(plan_of(&a.items, depth + 1)?)),
        Schema::Map(m) => Plan::Map(Box::new(plan_of(&m.types, depth + 1)?)),
        Schema::Record(r) => Plan::Record(
            r.fields
                .iter()
                .map(|f| plan_of(&f.schema, depth + 1).map(|p| (None, p)))
                .collect::<Result<_>>()?,
        ),
        // Logical types over several encodings and named references: Currents writes none; the
        // caller decodes such a file with `apache_avro` instead.
        other => return Err(broken(format!("a schema type Currents does not write: {other:?}"))),
    })
}

fn text(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|e| broken(format!("a string that is not UTF-8: {e}")))
}

/// A wanted field's value: primitives as themselves, a union as its branch; a complex value is
/// read past and stands as an empty array (which no field of an event accepts, so it is reported).
fn read_value(plan: &Plan, data: &mut Bytes<'_>) -> Result<Value> {
    Ok(match plan {
        Plan::Null => Value::Null,
        Plan::Boolean => Value::Boolean(data.take(1)?[0] != 0),
        Plan::Int => Value::Int(i32::try_from(data.long()?).map_err(|_| broken("an int out of range"))?),
        Plan::Long => Value::Long(data.long()?),
        Plan::Float => {
            let b = data.take(4)?;
            Value::Float(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }
        Plan::Double => {
            let b = data.take(8)?;
            Value::Double(f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
        }
        Plan::String => Value::String(text(data.bytes()?)?),
        Plan::Union(branches) => {
            let index = data.len()?;
            let branch = branches
                .get(index)
                .ok_or_else(|| broken(format!("union branch {index} of {}", branches.len())))?;
            read_value(branch, data)?
        }
        other => {
            skip(other, data)?;
            Value::Array(Vec::new())
        }
    })
}

fn skip(plan: &Plan, data: &mut Bytes<'_>) -> Result<()> {
    match plan {
        Plan::Null => {}
        Plan::Boolean => {
            data.take(1)?;
        }
        Plan::Int | Plan::Long | Plan::Enum => {
            data.long()?;
        }
        Plan::Float => {
            data.take(4)?;
        }
        Plan::Double => {
            data.take(8)?;
        }
        Plan::Bytes | Plan::String => {
            data.bytes()?;
        }
        Plan::Fixed(n) => {
            data.take(*n)?;
        }
        Plan::Union(branches) => {
            let index = data.len()?;
            let branch = branches
                .get(index)
                .ok_or_else(|| broken(format!("union branch {index} of {}", branches.len())))?;
            skip(branch, data)?;
        }
        Plan::Array(items) => skip_blocks(data, |d| skip(items, d))?,
        Plan::Map(values) => skip_blocks(data, |d| {
            d.bytes()?;
            skip(values, d)
        })?,
        Plan::Record(fields) => {
            for (_, f) in fields {
                skip(f, data)?;
            }
        }
    }
    Ok(())
}

/// Array and map blocks: a count (negative: followed by the block's size in bytes), until 0.
fn skip_blocks(data: &mut Bytes<'_>, mut item: impl FnMut(&mut Bytes<'_>) -> Result<()>) -> Result<()> {
    loop {
        let count = data.long()?;
        if count == 0 {
            return Ok(());
        }
        if count < 0 {
            let size = data.len()?;
            data.take(size)?;
            continue;
        }
        for _ in 0..count {
            let before = data.at;
            item(data)?;
            if data.at == before {
                // Items of a schema that takes no bytes (null, a record of nulls) are all alike and
                // all empty: the rest of the block is skipped too, instead of up to 2^63 times nothing.
                break;
            }
        }
    }
}

/// A container's header: its writer schema, codec and sync marker, and where the blocks start.
pub(crate) struct Header {
    pub schema: Arc<Schema>,
    codec: Codec,
    sync: [u8; 16],
    blocks_at: usize,
}

enum Codec {
    Null,
    Deflate,
    Snappy,
}

/// How many parsed schemas each thread keeps: a bucket holds a few dozen event types, each with
/// one schema per Currents version.
const SCHEMAS_KEPT: usize = 256;

thread_local! {
    /// Parsed writer schemas by their JSON: every file carries its schema, and the files of one
    /// event type share it, so each is parsed once per thread instead of once per file.
    static SCHEMAS: RefCell<HashMap<Vec<u8>, Arc<Schema>>> = RefCell::new(HashMap::new());
}

/// The schema whose JSON is `json`, parsed once per thread.
fn parsed_schema(json: &[u8]) -> Result<Arc<Schema>> {
    if let Some(schema) = SCHEMAS.with(|s| s.borrow().get(json).cloned()) {
        return Ok(schema);
    }
    let text = std::str::from_utf8(json).map_err(|_| broken("a schema that is not UTF-8"))?;
    let schema = Arc::new(Schema::parse_str(text).map_err(|e| broken(format!("the schema: {e}")))?);
    SCHEMAS.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() >= SCHEMAS_KEPT {
            s.clear();
        }
        s.insert(json.to_vec(), schema.clone());
    });
    Ok(schema)
}

/// Reads the header of the container `bytes`.
pub(crate) fn header(bytes: &[u8]) -> Result<Header> {
    let mut data = Bytes::new(bytes);
    if data.take(4)? != b"Obj\x01" {
        return Err(broken("not an Avro object container (no `Obj\\x01` magic)"));
    }
    let (mut schema, mut codec) = (None, Codec::Null);
    loop {
        let mut count = data.long()?;
        if count == 0 {
            break;
        }
        if count < 0 {
            // A negative count is followed by the block's size in bytes, not needed here.
            count = count
                .checked_neg()
                .ok_or_else(|| broken(format!("a header block count out of range ({count})")))?;
            data.long()?;
        }
        for _ in 0..count {
            let key = data.bytes()?;
            let value = data.bytes()?;
            match key {
                b"avro.schema" => schema = Some(parsed_schema(value)?),
                b"avro.codec" => {
                    codec = match value {
                        b"null" => Codec::Null,
                        b"deflate" => Codec::Deflate,
                        b"snappy" => Codec::Snappy,
                        other => {
                            return Err(broken(format!(
                                "codec `{}` (Currents files use null; deflate and snappy are read)",
                                String::from_utf8_lossy(other)
                            )));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let sync: [u8; 16] = data
        .take(16)?
        .try_into()
        .map_err(|_| broken("a sync marker of 16 bytes"))?;
    let schema = schema.ok_or_else(|| broken("no `avro.schema` in the header"))?;
    Ok(Header {
        schema,
        codec,
        sync,
        blocks_at: data.at,
    })
}

/// Calls `each` with the wanted fields of every record of the container `bytes` (whose header is
/// `header`), in order; `slots` are cleared before each record.
pub(crate) fn for_each_record<const N: usize>(
    bytes: &[u8],
    header: &Header,
    wanted: &[&str; N],
    mut each: impl FnMut(usize, [Option<Value>; N]) -> Result<()>,
) -> Result<()> {
    let plan = RecordPlan::new(&header.schema, wanted)?;
    let mut data = Bytes::new(bytes);
    data.at = header.blocks_at;
    let mut index = 0;
    while !data.done() {
        let count = data.len()?;
        let block = data.bytes()?;
        if data.take(16)? != header.sync {
            return Err(broken(format!("block {index}: its sync marker is not the file's")));
        }
        let inflated;
        let block = match header.codec {
            Codec::Null => block,
            Codec::Deflate => {
                let mut out = Vec::with_capacity(block.len() * 4);
                flate2::read::DeflateDecoder::new(block)
                    .read_to_end(&mut out)
                    .map_err(|e| broken(format!("deflate: {e}")))?;
                inflated = out;
                &inflated[..]
            }
            Codec::Snappy => {
                let (compressed, crc) = block
                    .split_at_checked(block.len().saturating_sub(4))
                    .ok_or_else(|| broken("a snappy block without its checksum"))?;
                let out = snap::raw::Decoder::new()
                    .decompress_vec(compressed)
                    .map_err(|e| broken(format!("snappy: {e}")))?;
                if crc32fast::hash(&out).to_be_bytes() != crc {
                    return Err(broken("snappy: the block's checksum does not match"));
                }
                inflated = out;
                &inflated[..]
            }
        };
        let mut records = Bytes::new(block);
        for _ in 0..count {
            let mut slots: [Option<Value>; N] = std::array::from_fn(|_| None);
            plan.read(&mut records, &mut slots)
                .map_err(|Broken(reason)| broken(format!("record {index}: {reason}")))?;
            each(index, slots)?;
            index += 1;
        }
        if !records.done() {
            return Err(broken(format!("block ending at record {index} has bytes left over")));
        }
    }
    Ok(())
}
