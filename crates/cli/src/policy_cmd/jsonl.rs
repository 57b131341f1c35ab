//! Reading the JSON Lines files of the policy interface: one JSON object a line, located errors.
//!
//! # Customer features
//! A line's `"features"` object is read by the use case's feature names into one
//! [`FeatureValue`] per schema feature, in schema order; keys the schema does not name are ignored.
//!
//! | type | accepted | refused |
//! |---|---|---|
//! | `number` | a finite JSON number | a numeric string, a boolean |
//! | `category` | a string; a number or boolean is read as its text (`3` → `"3"`) | an array, an object |
//! | `boolean` | `true`/`false`, or the numbers `0`/`1` | anything else |
//! | `timestamp` | an RFC 3339 string with offset or `Z` | anything else |
//!
//! An absent key or `null` is [`FeatureValue::Missing`], never a silent zero.
//!
//! # Actions
//! An `"action"` is an object naming one option id for every dimension,
//! `{"offer": "pct10", "channel": "sms", "send_time": "evening"}`.
//!
//! Blank lines are skipped. Every other line that cannot be read is a [`LineError`] naming
//! `FILE:LINE`.
//!
//! # Bounded lines, short quotes
//! A line may be at most [`MAX_LINE_BYTES`] (1 MiB) long, its line break excluded: [`Lines`] never
//! holds more than that of a line, and a longer one is a bad line (`FILE:LINE: line longer than
//! 1048576 bytes (1 MiB) ...`, skipped with `--skip-bad`) read to its end without being kept. A message
//! quotes at most [`offerloop_domain::text::EXCERPT_CHARS`] characters of what it refuses (an id, an
//! option, the start of an overlong line), cut on a character boundary and marked `…`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::Path;

use anyhow::Context as _;
use offerloop_domain::text::{excerpt, excerpt_bytes};
use offerloop_domain::{
    ActionId, ActionSpace, Customer, CustomerId, FeatureSchema, FeatureType, FeatureValue, Identifier,
};
use serde_json::{Map, Value};

/// The longest line read, in bytes, its line break excluded: 1 MiB. A customer, feedback or log
/// record is a few hundred bytes; a longer line is refused as a bad line, never held whole.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// How many warnings about skipped lines are kept for the report; the rest are only counted.
pub const SHOWN_BAD_LINES: usize = 20;

/// A line that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// The file, as named on the command line.
    pub file: String,
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for LineError {}

/// The bad lines of one input: fatal, or skipped and counted with `--skip-bad`.
#[derive(Debug, Clone, Default)]
pub struct BadLines {
    skip: bool,
    count: usize,
    shown: Vec<LineError>,
}

impl BadLines {
    /// Bad lines are fatal unless `skip`.
    pub fn new(skip: bool) -> Self {
        Self {
            skip,
            count: 0,
            shown: Vec::new(),
        }
    }

    /// Records a bad line.
    ///
    /// # Errors
    /// The line's error, unless bad lines are skipped.
    pub fn handle(&mut self, error: LineError) -> Result<(), LineError> {
        if !self.skip {
            return Err(error);
        }
        self.count += 1;
        if self.shown.len() < SHOWN_BAD_LINES {
            self.shown.push(error);
        }
        Ok(())
    }

    /// How many lines were skipped.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Appends one `warning: FILE:LINE: ...` line per skipped line (the first [`SHOWN_BAD_LINES`]) and a
    /// count, or nothing when no line was skipped.
    pub fn report(&self, out: &mut String) {
        use std::fmt::Write as _;
        if self.count == 0 {
            return;
        }
        for e in &self.shown {
            let _ = writeln!(out, "warning: skipped {e}");
        }
        if self.count > self.shown.len() {
            let _ = writeln!(out, "warning: ... and {} more", self.count - self.shown.len());
        }
        let _ = writeln!(
            out,
            "skipped {} bad line{} (--skip-bad)",
            self.count,
            if self.count == 1 { "" } else { "s" }
        );
    }
}

/// The non-blank lines of a file with their 1-based numbers, each at most [`MAX_LINE_BYTES`] long.
#[derive(Debug)]
pub struct Lines {
    file: String,
    reader: BufReader<File>,
    line: usize,
    buf: Vec<u8>,
    limit: usize,
}

/// One line read by [`Lines::next_line`]: its bytes, or why they were not kept.
pub type Line<'a> = Result<&'a [u8], String>;

impl Lines {
    /// Opens `path`.
    ///
    /// # Errors
    /// When it cannot be opened.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let file = path.display().to_string();
        let reader = File::open(path).with_context(|| format!("{file}: cannot read"))?;
        Ok(Self {
            file,
            reader: BufReader::with_capacity(1 << 16, reader),
            line: 0,
            buf: Vec::new(),
            limit: MAX_LINE_BYTES,
        })
    }

    /// The file's name in messages.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The next non-blank line: its number and bytes (without the line break), or, for a line longer
    /// than [`MAX_LINE_BYTES`], its number and a message quoting its start (the rest of it is read and
    /// dropped); `None` at the end.
    ///
    /// # Errors
    /// When reading fails.
    pub fn next_line(&mut self) -> anyhow::Result<Option<(usize, Line<'_>)>> {
        loop {
            self.buf.clear();
            let mut overlong = false;
            let mut any = false;
            loop {
                let available = match self.reader.fill_buf() {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(anyhow::Error::new(e).context(format!(
                            "{}:{}: cannot read",
                            self.file,
                            self.line + 1
                        )));
                    }
                };
                if available.is_empty() {
                    break;
                }
                any = true;
                let (chunk, used, ends) = match available.iter().position(|&b| b == b'\n') {
                    Some(i) => (&available[..i], i + 1, true),
                    None => (available, available.len(), false),
                };
                if !overlong && self.buf.len() + chunk.len() > self.limit {
                    // Keep only the start, for the message; the rest is skipped as it streams by.
                    overlong = true;
                    let room = EXCERPT_BYTES.saturating_sub(self.buf.len());
                    self.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    self.buf.truncate(EXCERPT_BYTES);
                    self.buf.shrink_to(EXCERPT_BYTES);
                } else if !overlong {
                    self.buf.extend_from_slice(chunk);
                }
                self.reader.consume(used);
                if ends {
                    break;
                }
            }
            if !any {
                return Ok(None);
            }
            self.line += 1;
            if overlong {
                let message = format!(
                    "line longer than {} bytes ({}), the longest line read; it starts `{}`",
                    self.limit,
                    human_bytes(self.limit),
                    excerpt_bytes(&self.buf)
                );
                return Ok(Some((self.line, Err(message))));
            }
            if !self.buf.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some((self.line, Ok(self.buf.as_slice()))));
            }
        }
    }

    /// A [`LineError`] at `line` of this file.
    pub fn error(&self, line: usize, message: impl Into<String>) -> LineError {
        LineError {
            file: self.file.clone(),
            line,
            message: message.into(),
        }
    }
}

/// Bytes kept of an overlong line for its message (an excerpt needs at most four a character).
const EXCERPT_BYTES: usize = 4 * offerloop_domain::text::EXCERPT_CHARS + 4;

/// `1 MiB`, `64 KiB`, `100 bytes`.
fn human_bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n.is_multiple_of(1 << 20) => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n.is_multiple_of(1 << 10) => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// Parses a line as a JSON object.
///
/// # Errors
/// A message for a line that is not JSON or not an object.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!("expected a JSON object, found {}", describe(&other))),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

/// The `customer_id` of a line.
///
/// # Errors
/// When it is absent, not a string, empty or too long.
pub fn customer_id(line: &Map<String, Value>) -> Result<CustomerId, String> {
    match line.get("customer_id") {
        None | Some(Value::Null) => Err("missing `customer_id`".to_owned()),
        Some(Value::String(s)) => CustomerId::new(s.as_str()).map_err(|e| format!("`customer_id`: {e}")),
        Some(other) => Err(format!("`customer_id` must be a string, found {}", describe(other))),
    }
}

/// The customer of a line: its id and its `"features"` read by the schema.
///
/// `"features"` may be absent only when the schema has no features.
///
/// # Errors
/// A message naming the field that is wrong.
pub fn customer(line: &Map<String, Value>, schema: &FeatureSchema) -> Result<Customer, String> {
    let id = customer_id(line)?;
    let features = match line.get("features") {
        Some(Value::Object(map)) => features(map, schema)?,
        None | Some(Value::Null) if schema.is_empty() => Vec::new(),
        None | Some(Value::Null) => return Err("missing `features`".to_owned()),
        Some(other) => return Err(format!("`features` must be an object, found {}", describe(other))),
    };
    Ok(Customer {
        id,
        features,
        time_zone: None,
    })
}

/// One value per schema feature, in schema order, from a `"features"` object (see the module docs).
///
/// # Errors
/// A message naming the first feature whose value has the wrong type.
pub fn features(map: &Map<String, Value>, schema: &FeatureSchema) -> Result<Vec<FeatureValue>, String> {
    schema
        .specs()
        .iter()
        .map(|spec| {
            feature_value(spec.ty, map.get(spec.name.as_str()))
                .map_err(|got| format!("feature `{}` expects {}, got {got}", spec.name, spec.ty.as_str()))
        })
        .collect()
}

/// Reads one feature value of type `ty`; the error is a description of what was found.
fn feature_value(ty: FeatureType, raw: Option<&Value>) -> Result<FeatureValue, String> {
    let Some(raw) = raw.filter(|v| !v.is_null()) else {
        return Ok(FeatureValue::Missing);
    };
    let value = match (ty, raw) {
        (FeatureType::Number, Value::Number(n)) => n.as_f64().filter(|x| x.is_finite()).map(FeatureValue::Number),
        (FeatureType::Category, Value::String(s)) => Some(FeatureValue::Category(s.clone())),
        (FeatureType::Category, Value::Number(n)) => Some(FeatureValue::Category(n.to_string())),
        (FeatureType::Category, Value::Bool(b)) => Some(FeatureValue::Category(b.to_string())),
        (FeatureType::Boolean, Value::Bool(b)) => Some(FeatureValue::Boolean(*b)),
        (FeatureType::Boolean, Value::Number(n)) => match n.as_f64() {
            Some(0.0) => Some(FeatureValue::Boolean(false)),
            Some(1.0) => Some(FeatureValue::Boolean(true)),
            _ => None,
        },
        (FeatureType::Timestamp, Value::String(s)) => s.parse::<jiff::Timestamp>().ok().map(FeatureValue::Timestamp),
        _ => None,
    };
    value.ok_or_else(|| describe(raw))
}

/// A short description of a JSON value for messages: `text "12"`, `number 3`, `an array`.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => match excerpt(s) {
            Cow::Borrowed(whole) => format!("text {whole:?}"),
            Cow::Owned(cut) => format!("text {:?}…", cut.trim_end_matches('…')),
        },
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// The joint action of a line's `"action"` object, by dimension and option names.
///
/// # Errors
/// A message for a missing or malformed action, an unknown dimension or option, or a dimension
/// without a choice.
pub fn action(line: &Map<String, Value>, space: &ActionSpace) -> Result<ActionId, String> {
    let map = match line.get("action") {
        Some(Value::Object(map)) => map,
        None | Some(Value::Null) => return Err("missing `action`".to_owned()),
        Some(other) => return Err(format!("`action` must be an object, found {}", describe(other))),
    };
    let mut choice = BTreeMap::new();
    for (dimension, option) in map {
        let dim = Identifier::new(dimension.as_str())
            .ok()
            .filter(|d| space.dimension_index(d.as_str()).is_some())
            .ok_or_else(|| {
                format!(
                    "`action`: unknown dimension `{}` ({})",
                    excerpt(dimension),
                    dimension_names(space)
                )
            })?;
        let Value::String(option) = option else {
            return Err(format!(
                "`action.{dimension}` must be an option id (a string), found {}",
                describe(option)
            ));
        };
        let opt = Identifier::new(option.as_str()).map_err(|_| {
            format!(
                "`action`: unknown option `{}` in dimension `{dimension}` ({})",
                excerpt(option),
                option_names(space, dimension)
            )
        })?;
        choice.insert(dim, opt);
    }
    let joint = space.action_from_names(&choice).map_err(|e| match e {
        offerloop_domain::Error::UnknownOption { dimension, option } => format!(
            "`action`: unknown option `{option}` in dimension `{dimension}` ({})",
            option_names(space, &dimension)
        ),
        other => format!("`action`: {other}"),
    })?;
    space.encode(&joint).map_err(|e| format!("`action`: {e}"))
}

fn dimension_names(space: &ActionSpace) -> String {
    let names: Vec<&str> = space.dimensions().iter().map(|d| d.name.as_str()).collect();
    format!("dimensions: {}", names.join(", "))
}

fn option_names(space: &ActionSpace, dimension: &str) -> String {
    let names: Vec<&str> = space
        .dimension_index(dimension)
        .and_then(|d| space.dimensions().get(d))
        .map(|d| d.options.iter().map(|o| o.id.as_str()).collect())
        .unwrap_or_default();
    format!("options: {}", names.join(", "))
}

/// A required number field in `[low, high]`-style checks done by the caller: the field's value.
///
/// # Errors
/// When the field is absent or not a finite number.
pub fn number(line: &Map<String, Value>, key: &str) -> Result<f64, String> {
    match line.get(key) {
        None | Some(Value::Null) => Err(format!("missing `{key}`")),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("`{key}` must be a finite number, found number {n}")),
        Some(other) => Err(format!("`{key}` must be a number, found {}", describe(other))),
    }
}

/// A propensity field: a number in `(0, 1]`.
///
/// # Errors
/// When it is absent, not a number or outside `(0, 1]`.
pub fn propensity(line: &Map<String, Value>, key: &str) -> Result<f64, String> {
    let p = number(line, key)?;
    if p > 0.0 && p <= 1.0 {
        Ok(p)
    } else {
        Err(format!("`{key}` must be in (0, 1], got {p}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use offerloop_domain::features::{FeatureSpec, FieldPath};
    use serde_json::json;

    fn schema() -> FeatureSchema {
        let spec = |name: &str, ty| FeatureSpec {
            name: Identifier::new(name).unwrap(),
            field: FieldPath::parse(&format!("custom_attributes.{name}")).unwrap(),
            ty,
        };
        FeatureSchema::new(vec![
            spec("orders", FeatureType::Number),
            spec("plan", FeatureType::Category),
            spec("vip", FeatureType::Boolean),
            spec("seen", FeatureType::Timestamp),
        ])
        .unwrap()
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn features_are_typed_in_schema_order_and_absent_or_null_is_missing() {
        let line = obj(json!({"customer_id": "c1", "features": {
            "seen": "2026-01-02T03:04:05Z", "vip": 1, "plan": 3, "orders": 2.5, "extra": [1]
        }}));
        let c = customer(&line, &schema()).unwrap();
        assert_eq!(c.id.as_str(), "c1");
        assert_eq!(
            c.features,
            vec![
                FeatureValue::Number(2.5),
                FeatureValue::Category("3".into()),
                FeatureValue::Boolean(true),
                FeatureValue::Timestamp("2026-01-02T03:04:05Z".parse().unwrap()),
            ]
        );
        let line = obj(json!({"customer_id": "c2", "features": {"plan": null, "vip": false}}));
        let c = customer(&line, &schema()).unwrap();
        assert_eq!(
            c.features,
            vec![
                FeatureValue::Missing,
                FeatureValue::Missing,
                FeatureValue::Boolean(false),
                FeatureValue::Missing
            ]
        );
        let c = customer(
            &obj(json!({"customer_id": "c3", "features": {"plan": true}})),
            &schema(),
        )
        .unwrap();
        assert_eq!(c.features[1], FeatureValue::Category("true".into()));
    }

    #[test]
    fn wrong_types_are_named() {
        let check = |features: Value, expected: &str| {
            let line = obj(json!({"customer_id": "c", "features": features}));
            assert_eq!(customer(&line, &schema()).unwrap_err(), expected);
        };
        check(
            json!({"orders": "12"}),
            "feature `orders` expects number, got text \"12\"",
        );
        check(
            json!({"orders": true}),
            "feature `orders` expects number, got boolean true",
        );
        check(json!({"vip": 2}), "feature `vip` expects boolean, got number 2");
        check(json!({"vip": "yes"}), "feature `vip` expects boolean, got text \"yes\"");
        check(json!({"plan": [1]}), "feature `plan` expects category, got an array");
        check(
            json!({"seen": "yesterday"}),
            "feature `seen` expects timestamp, got text \"yesterday\"",
        );
        check(json!({"seen": 5}), "feature `seen` expects timestamp, got number 5");
    }

    #[test]
    fn ids_and_shapes_are_checked() {
        let s = schema();
        assert_eq!(
            customer(&obj(json!({"features": {}})), &s).unwrap_err(),
            "missing `customer_id`"
        );
        assert_eq!(
            customer(&obj(json!({"customer_id": 7, "features": {}})), &s).unwrap_err(),
            "`customer_id` must be a string, found number 7"
        );
        assert_eq!(
            customer(&obj(json!({"customer_id": "c"})), &s).unwrap_err(),
            "missing `features`"
        );
        assert_eq!(
            customer(&obj(json!({"customer_id": "c", "features": [1]})), &s).unwrap_err(),
            "`features` must be an object, found an array"
        );
        assert!(customer(&obj(json!({"customer_id": "c"})), &FeatureSchema::default()).is_ok());
        assert_eq!(
            parse_object(b"[1]").unwrap_err(),
            "expected a JSON object, found an array"
        );
        assert!(parse_object(b"{\"a\": ").unwrap_err().starts_with("invalid JSON: "));
    }

    #[test]
    fn propensities_and_numbers_are_checked() {
        let line = obj(json!({"propensity": 0.0, "reward": "1", "p2": 1.0}));
        assert_eq!(
            propensity(&line, "propensity").unwrap_err(),
            "`propensity` must be in (0, 1], got 0"
        );
        assert_eq!(propensity(&line, "p2"), Ok(1.0));
        assert_eq!(
            number(&line, "reward").unwrap_err(),
            "`reward` must be a number, found text \"1\""
        );
        assert_eq!(number(&line, "nope").unwrap_err(), "missing `nope`");
    }

    /// The lines of `text` read with a limit of `limit` bytes: `(number, Ok(text) | Err(message))`.
    fn read_all(text: &[u8], limit: usize) -> Vec<(usize, Result<String, String>)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        std::fs::write(&path, text).unwrap();
        let mut lines = Lines::open(&path).unwrap();
        lines.limit = limit;
        let mut out = Vec::new();
        while let Some((n, line)) = lines.next_line().unwrap() {
            out.push((n, line.map(|b| String::from_utf8_lossy(b).into_owned())));
            assert!(
                lines.buf.capacity() <= 2 * limit.max(EXCERPT_BYTES),
                "{}",
                lines.buf.capacity()
            );
        }
        out
    }

    #[test]
    fn lines_are_numbered_blank_ones_skipped_and_overlong_ones_refused_without_being_kept() {
        let mut text = b"{\"a\": 1}\n\n   \n".to_vec();
        text.extend("é".repeat(150).as_bytes());
        text.extend(b"\n{\"b\": 2}\r\n");
        text.extend(vec![b'x'; 1 << 17]);
        text.extend(b"\n{\"c\": 3}");
        let got = read_all(&text, 64);
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(got[0], (1, Ok("{\"a\": 1}".to_owned())));
        assert_eq!(
            got[1],
            (
                4,
                Err(format!(
                    "line longer than 64 bytes (64 bytes), the longest line read; it starts `{}…`",
                    "é".repeat(80)
                ))
            )
        );
        assert_eq!(got[2], (5, Ok("{\"b\": 2}\r".to_owned())));
        let (n, Err(message)) = &got[3] else { panic!("{got:?}") };
        assert_eq!(*n, 6);
        assert!(
            message.ends_with(&format!("it starts `{}…`", "x".repeat(80))),
            "{message}"
        );
        assert_eq!(
            got[4],
            (7, Ok("{\"c\": 3}".to_owned())),
            "the last line needs no line break"
        );
        // At the limit exactly, a line is read.
        assert_eq!(read_all(b"0123456789\n", 10), vec![(1, Ok("0123456789".to_owned()))]);
        assert!(read_all(b"0123456789\n", 9)[0].1.is_err());
        assert_eq!(human_bytes(MAX_LINE_BYTES), "1 MiB");
    }

    #[test]
    fn messages_quote_at_most_an_excerpt_of_what_they_refuse() {
        let long = "y".repeat(5000);
        let space = {
            let source = include_str!("../../../../tests/fixtures/valid/minimal.toml");
            offerloop_domain::config::parse_use_case(source, "minimal.toml")
                .unwrap()
                .actions
        };
        let quoted = format!("{}…", "y".repeat(80));
        let err = customer_id(&obj(json!({ "customer_id": long }))).unwrap_err();
        assert!(err.contains(&quoted) && err.len() < 200, "{err}");
        let err = action(&obj(json!({"action": {"offer": long, "channel": "email"}})), &space).unwrap_err();
        assert!(err.contains(&quoted) && err.len() < 300, "{err}");
        let err = action(&obj(json!({"action": {long.clone(): "none"}})), &space).unwrap_err();
        assert!(err.contains(&quoted) && err.len() < 300, "{err}");
        let err = customer(
            &obj(json!({"customer_id": "c", "features": {"orders": long}})),
            &schema(),
        )
        .unwrap_err();
        assert!(
            err.contains(&format!("{}\"…", "y".repeat(80))) && err.len() < 200,
            "{err}"
        );
        assert_eq!(describe(&json!("short")), "text \"short\"");
    }

    #[test]
    fn bad_lines_are_fatal_or_counted() {
        let e = LineError {
            file: "f.jsonl".into(),
            line: 3,
            message: "missing `customer_id`".into(),
        };
        assert_eq!(e.to_string(), "f.jsonl:3: missing `customer_id`");
        assert!(BadLines::new(false).handle(e.clone()).is_err());
        let mut bad = BadLines::new(true);
        for _ in 0..SHOWN_BAD_LINES + 2 {
            bad.handle(e.clone()).unwrap();
        }
        let mut text = String::new();
        bad.report(&mut text);
        assert_eq!(bad.count(), SHOWN_BAD_LINES + 2);
        assert!(
            text.starts_with("warning: skipped f.jsonl:3: missing `customer_id`\n"),
            "{text}"
        );
        assert!(
            text.ends_with("warning: ... and 2 more\nskipped 22 bad lines (--skip-bad)\n"),
            "{text}"
        );
    }
}
