//! Versioned, serialisable model state: what `offerloop policy init|learn` write to `model.json` and
//! what the engine stores with `Store::save_model`.
//!
//! # Never a non-finite number
//! JSON has no NaN or infinity: `serde_json` writes them as `null`, and a model saved so cannot be
//! restored (every later decision fails). So a [`Snapshot`] is taken by [`Snapshot::capture`], which
//! walks the policy's typed state before it becomes JSON and remembers the first number that is not
//! finite, with its path in the state. Such a snapshot is *unsavable*: [`Snapshot::check`] returns
//! [`Error::NonFiniteSnapshot`], and serialising it fails with the same message, so neither the CLI's
//! model file nor the engine's stored model (both serialise the snapshot) can receive it. The previous
//! model stays in place.

use std::fmt;

use offerloop_domain::usecase::Algorithm;
use serde::ser::{self, Serialize, Serializer};
use serde::{Deserialize, Deserializer};

use crate::{Error, Result};

/// The snapshot format this build writes. A snapshot of another format is refused by
/// [`crate::restore`] with a message naming both versions.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// A policy's whole state. `serde_json` writes floats so that they read back bit-for-bit
/// (`float_roundtrip`), so a restored policy decides exactly as the original.
///
/// Guaranteed, when [`Snapshot::check`] succeeds (and only then does it serialise): every number of
/// the state is finite.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// [`SNAPSHOT_FORMAT`] when written.
    pub format: u32,
    /// The algorithm that wrote it.
    pub algorithm: Algorithm,
    /// A fingerprint of the action space and feature schema it was learned on
    /// ([`crate::sampling::space_fingerprint`]); restoring onto another space is refused.
    pub fingerprint: u64,
    /// The algorithm's own state.
    pub state: serde_json::Value,
    /// Why the state cannot be saved, when it cannot (set by [`Snapshot::capture`] only).
    defect: Option<Defect>,
}

/// What makes a captured state unsavable.
#[derive(Clone, Debug, PartialEq)]
enum Defect {
    /// A number that is not finite, at a path of the state.
    NonFinite { path: String, value: f64 },
    /// The state did not serialise at all.
    Unserialisable(String),
}

impl Defect {
    fn error(&self, algorithm: Algorithm) -> Error {
        match self {
            Self::NonFinite { path, value } => Error::NonFiniteSnapshot {
                algorithm: algorithm.as_str(),
                path: path.clone(),
                value: *value,
            },
            Self::Unserialisable(message) => Error::Snapshot(format!(
                "the {} state does not serialise: {message}",
                algorithm.as_str()
            )),
        }
    }
}

impl Snapshot {
    /// The snapshot of `state`, a policy's typed state: serialised to JSON, and checked on the way for
    /// numbers that are not finite (see the module docs).
    pub fn capture<S: Serialize + ?Sized>(algorithm: Algorithm, fingerprint: u64, state: &S) -> Self {
        let mut defect = first_non_finite(state).map(|(path, value)| Defect::NonFinite { path, value });
        let state = match serde_json::to_value(state) {
            Ok(value) => value,
            Err(e) => {
                defect.get_or_insert_with(|| Defect::Unserialisable(e.to_string()));
                serde_json::Value::Null
            }
        };
        Self {
            format: SNAPSHOT_FORMAT,
            algorithm,
            fingerprint,
            state,
            defect,
        }
    }

    /// Whether this snapshot may be saved.
    ///
    /// # Errors
    /// [`Error::NonFiniteSnapshot`] naming the first number of the state that is not finite and where
    /// it is; [`Error::Snapshot`] for a state that did not serialise.
    pub fn check(&self) -> Result<()> {
        match &self.defect {
            None => Ok(()),
            Some(defect) => Err(defect.error(self.algorithm)),
        }
    }
}

/// The serialised form (what a model file and the store hold).
#[derive(serde::Serialize, Deserialize)]
struct Repr<V> {
    format: u32,
    algorithm: Algorithm,
    fingerprint: u64,
    state: V,
}

impl Serialize for Snapshot {
    /// Serialises a savable snapshot; an unsavable one (see [`Snapshot::check`]) is an error.
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        if let Err(e) = self.check() {
            return Err(ser::Error::custom(e));
        }
        Repr {
            format: self.format,
            algorithm: self.algorithm,
            fingerprint: self.fingerprint,
            state: &self.state,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Snapshot {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let Repr {
            format,
            algorithm,
            fingerprint,
            state,
        } = Repr::<serde_json::Value>::deserialize(deserializer)?;
        Ok(Self {
            format,
            algorithm,
            fingerprint,
            state,
            defect: None,
        })
    }
}

/// The path (`model.blocks[2].mean[7]`) and value of the first number of `value` that is not finite,
/// in serialisation order.
pub(crate) fn first_non_finite<S: Serialize + ?Sized>(value: &S) -> Option<(String, f64)> {
    match value.serialize(Finder) {
        Err(Found::NonFinite { mut path, value }) => {
            path.reverse();
            let mut text = String::new();
            for segment in path {
                match segment {
                    Segment::Field(name) if text.is_empty() => text.push_str(&name),
                    Segment::Field(name) => {
                        text.push('.');
                        text.push_str(&name);
                    }
                    Segment::Index(key) => {
                        text.push('[');
                        text.push_str(&key);
                        text.push(']');
                    }
                }
            }
            Some((
                if text.is_empty() {
                    "(the state itself)".to_owned()
                } else {
                    text
                },
                value,
            ))
        }
        // A state that fails to serialise is reported by `serde_json` itself.
        Ok(()) | Err(Found::Other(_)) => None,
    }
}

/// One step of a path into the state.
#[derive(Debug)]
enum Segment {
    Field(String),
    Index(String),
}

/// How the walk of [`Finder`] stops: at a non-finite number (its path innermost first), or because the
/// state's own `Serialize` failed.
#[derive(Debug)]
enum Found {
    NonFinite { path: Vec<Segment>, value: f64 },
    Other(String),
}

impl Found {
    fn at(mut self, segment: impl FnOnce() -> Segment) -> Self {
        if let Self::NonFinite { path, .. } = &mut self {
            path.push(segment());
        }
        self
    }
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NonFinite { value, .. } => write!(f, "non-finite number {value}"),
            Self::Other(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Found {}

impl ser::Error for Found {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::Other(msg.to_string())
    }
}

/// A serializer that writes nothing and stops at the first non-finite `f32`/`f64`.
struct Finder;

/// The compound values of [`Finder`]: the index of the next element, and the last map key seen.
struct Compound {
    index: usize,
    key: Option<String>,
}

impl Compound {
    fn new() -> Self {
        Self { index: 0, key: None }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> std::result::Result<(), Found> {
        let index = self.index;
        self.index += 1;
        value
            .serialize(Finder)
            .map_err(|e| e.at(|| Segment::Index(index.to_string())))
    }

    fn field<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> std::result::Result<(), Found> {
        value
            .serialize(Finder)
            .map_err(|e| e.at(|| Segment::Field(name.to_owned())))
    }
}

fn finite(value: f64) -> std::result::Result<(), Found> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(Found::NonFinite {
            path: Vec::new(),
            value,
        })
    }
}

impl Serializer for Finder {
    type Ok = ();
    type Error = Found;
    type SerializeSeq = Compound;
    type SerializeTuple = Compound;
    type SerializeTupleStruct = Compound;
    type SerializeTupleVariant = Compound;
    type SerializeMap = Compound;
    type SerializeStruct = Compound;
    type SerializeStructVariant = Compound;

    fn serialize_bool(self, _: bool) -> std::result::Result<(), Found> {
        Ok(())
    }
    fn serialize_i8(self, _: i8) -> std::result::Result<(), Found> {
        Ok(())
    }
    fn serialize_i16(self, _: i16) -> std::result::Result<(), Found> {
        Ok(())
    }
    fn serialize_i32(self, _: i32) -> std::result::Result<(), Found> {
        Ok(())
    }
    fn serialize_i64(self, _: i64) -> std::result::Result<(), Found> {
        Ok(())
    }
    fn serialize_u8(self, _: u8) -> std::result::Result<(), Found> {
        Ok(())
    }
    fn serialize_u16(self, _: u16) -> std::result::Result<(), Found> {
        Ok(())
    }
    fn serialize_u32(self, _: u32) -> std::result::Result<(), Found> {
        Ok(())
    }
    fn serialize_u64(self, _: u64) -> std::result::Result<(), Found> {
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> std::result::Result<(), Found> {
        finite(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> std::result::Result<(), Found> {
        finite(v)
    }
    fn serialize_char(self, _: char) -> std::result::Result<(), Found> {
        Ok(())
    }
    fn serialize_str(self, _: &str) -> std::result::Result<(), Found> {
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> std::result::Result<(), Found> {
        Ok(())
    }
    fn serialize_none(self) -> std::result::Result<(), Found> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> std::result::Result<(), Found> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> std::result::Result<(), Found> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> std::result::Result<(), Found> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> std::result::Result<(), Found> {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> std::result::Result<(), Found> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> std::result::Result<(), Found> {
        value
            .serialize(self)
            .map_err(|e| e.at(|| Segment::Field(variant.to_owned())))
    }
    fn serialize_seq(self, _: Option<usize>) -> std::result::Result<Compound, Found> {
        Ok(Compound::new())
    }
    fn serialize_tuple(self, _: usize) -> std::result::Result<Compound, Found> {
        Ok(Compound::new())
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> std::result::Result<Compound, Found> {
        Ok(Compound::new())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> std::result::Result<Compound, Found> {
        Ok(Compound::new())
    }
    fn serialize_map(self, _: Option<usize>) -> std::result::Result<Compound, Found> {
        Ok(Compound::new())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> std::result::Result<Compound, Found> {
        Ok(Compound::new())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> std::result::Result<Compound, Found> {
        Ok(Compound::new())
    }
}

impl ser::SerializeSeq for Compound {
    type Ok = ();
    type Error = Found;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> std::result::Result<(), Found> {
        self.element(value)
    }
    fn end(self) -> std::result::Result<(), Found> {
        Ok(())
    }
}

impl ser::SerializeTuple for Compound {
    type Ok = ();
    type Error = Found;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> std::result::Result<(), Found> {
        self.element(value)
    }
    fn end(self) -> std::result::Result<(), Found> {
        Ok(())
    }
}

impl ser::SerializeTupleStruct for Compound {
    type Ok = ();
    type Error = Found;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> std::result::Result<(), Found> {
        self.element(value)
    }
    fn end(self) -> std::result::Result<(), Found> {
        Ok(())
    }
}

impl ser::SerializeTupleVariant for Compound {
    type Ok = ();
    type Error = Found;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> std::result::Result<(), Found> {
        self.element(value)
    }
    fn end(self) -> std::result::Result<(), Found> {
        Ok(())
    }
}

impl ser::SerializeMap for Compound {
    type Ok = ();
    type Error = Found;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> std::result::Result<(), Found> {
        // Map keys are short (ids, names); rendered as JSON they name the entry in a path.
        self.key = Some(serde_json::to_string(key).unwrap_or_else(|_| format!("#{}", self.index)));
        key.serialize(Finder)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> std::result::Result<(), Found> {
        let key = self.key.take().unwrap_or_else(|| format!("#{}", self.index));
        self.index += 1;
        value.serialize(Finder).map_err(|e| e.at(|| Segment::Index(key)))
    }
    fn end(self) -> std::result::Result<(), Found> {
        Ok(())
    }
}

impl ser::SerializeStruct for Compound {
    type Ok = ();
    type Error = Found;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> std::result::Result<(), Found> {
        self.field(name, value)
    }
    fn end(self) -> std::result::Result<(), Found> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for Compound {
    type Ok = ();
    type Error = Found;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> std::result::Result<(), Found> {
        self.field(name, value)
    }
    fn end(self) -> std::result::Result<(), Found> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    struct Block {
        mean: Vec<f64>,
        scale: Option<f32>,
    }

    #[derive(Serialize)]
    struct State {
        updates: u64,
        blocks: Vec<Block>,
        by_action: BTreeMap<u64, (f64, f64)>,
    }

    fn state(poison: impl FnOnce(&mut State)) -> State {
        let mut s = State {
            updates: 3,
            blocks: vec![
                Block {
                    mean: vec![0.5, -1.0],
                    scale: None,
                },
                Block {
                    mean: vec![1e300, 2.0, 3.0],
                    scale: Some(1.0),
                },
            ],
            by_action: BTreeMap::from([(7, (1.0, 2.0)), (9, (3.0, 4.0))]),
        };
        poison(&mut s);
        s
    }

    #[test]
    fn the_first_non_finite_number_is_found_with_its_path() {
        assert_eq!(first_non_finite(&state(|_| {})), None);
        assert_eq!(
            first_non_finite(&state(|s| s.blocks[1].mean[2] = f64::NAN)).map(|(p, _)| p),
            Some("blocks[1].mean[2]".to_owned())
        );
        assert_eq!(
            first_non_finite(&state(|s| s.blocks[1].scale = Some(f32::INFINITY))),
            Some(("blocks[1].scale".to_owned(), f64::INFINITY))
        );
        assert_eq!(
            first_non_finite(&state(|s| {
                s.by_action.insert(9, (3.0, f64::NEG_INFINITY));
            })),
            Some(("by_action[9][1]".to_owned(), f64::NEG_INFINITY))
        );
        assert_eq!(
            first_non_finite(&f64::NAN).map(|(p, _)| p),
            Some("(the state itself)".to_owned())
        );
    }

    #[test]
    fn a_snapshot_with_a_non_finite_number_cannot_be_saved() {
        let good = Snapshot::capture(Algorithm::LinTs, 42, &state(|_| {}));
        good.check().unwrap();
        let json = serde_json::to_string(&good).unwrap();
        assert!(
            json.starts_with(r#"{"format":1,"algorithm":"lin_ts","fingerprint":42,"state":{"#),
            "{json}"
        );
        let back: Snapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, good);

        let bad = Snapshot::capture(Algorithm::LinTs, 42, &state(|s| s.blocks[0].mean[1] = f64::NAN));
        let err = bad.check().unwrap_err();
        assert!(matches!(&err, Error::NonFiniteSnapshot { path, .. } if path == "blocks[0].mean[1]"));
        assert_eq!(
            err.to_string(),
            "model snapshot: the lin_ts state holds NaN at `blocks[0].mean[1]`, not a finite number; it cannot be saved"
        );
        let refused = serde_json::to_vec(&bad).unwrap_err().to_string();
        assert!(refused.contains("holds NaN at `blocks[0].mean[1]`"), "{refused}");
        assert!(serde_json::to_value(&bad).is_err());
    }
}
