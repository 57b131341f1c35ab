//! Which typed fields of [`ExportedUser`] a reader fills in, and the parser that skips the others.
//!
//! Two filters apply to every line of an export. First, [`ExportedUser`] has no field for anything
//! offerloop does not read (PII such as `email` or `phone`, devices, push tokens...): such keys are
//! skipped with [`serde::de::IgnoredAny`], which checks the JSON syntax without allocating or storing
//! anything. Second, a [`FieldSet`] built from the export's `fields_to_export` drops the typed fields
//! that were *not* requested, at parse time too: if a file carries `campaigns_received` but the export
//! did not ask for it, the value is skipped and the field stays empty. Third, when the export named
//! its custom attributes (`custom_attributes_to_export`), an [`AttributeFilter`] keeps only those
//! from the `custom_attributes` object: another attribute's value (a work email Braze returned
//! anyway) is skipped like an unknown key, never allocated. A user's data therefore never contains
//! more than the export asked for, whatever the file holds.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, de};

use super::ExportedUser;

/// The typed fields of [`ExportedUser`], by their Braze names (the names of `fields_to_export`).
pub const TYPED_FIELDS: [&str; 15] = [
    "external_id",
    "braze_id",
    "country",
    "language",
    "time_zone",
    "created_at",
    "total_revenue",
    "email_subscribe",
    "push_subscribe",
    "random_bucket",
    "custom_attributes",
    "custom_events",
    "purchases",
    "campaigns_received",
    "canvases_received",
];

/// A typed field of [`ExportedUser`] (its discriminant is its bit in a [`FieldSet`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Field {
    ExternalId,
    BrazeId,
    Country,
    Language,
    TimeZone,
    CreatedAt,
    TotalRevenue,
    EmailSubscribe,
    PushSubscribe,
    RandomBucket,
    CustomAttributes,
    CustomEvents,
    Purchases,
    CampaignsReceived,
    CanvasesReceived,
}

impl Field {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "external_id" => Self::ExternalId,
            "braze_id" => Self::BrazeId,
            "country" => Self::Country,
            "language" => Self::Language,
            "time_zone" => Self::TimeZone,
            "created_at" => Self::CreatedAt,
            "total_revenue" => Self::TotalRevenue,
            "email_subscribe" => Self::EmailSubscribe,
            "push_subscribe" => Self::PushSubscribe,
            "random_bucket" => Self::RandomBucket,
            "custom_attributes" => Self::CustomAttributes,
            "custom_events" => Self::CustomEvents,
            "purchases" => Self::Purchases,
            "campaigns_received" => Self::CampaignsReceived,
            "canvases_received" => Self::CanvasesReceived,
            _ => return None,
        })
    }

    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// A set of typed [`ExportedUser`] fields to fill in (a bit set over [`TYPED_FIELDS`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FieldSet(u16);

impl Default for FieldSet {
    /// All typed fields.
    fn default() -> Self {
        Self::all()
    }
}

impl FieldSet {
    /// Every typed field.
    pub const fn all() -> Self {
        Self((1 << TYPED_FIELDS.len()) - 1)
    }

    /// The typed fields among an export's `fields_to_export`. Names without a typed field (`email`,
    /// `devices`, an unknown name...) select nothing: such values are skipped whatever the list says.
    pub fn from_fields_to_export<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let bits = names
            .into_iter()
            .filter_map(|n| Field::from_name(n.as_ref()))
            .fold(0, |bits, f| bits | f.bit());
        Self(bits)
    }

    /// Whether the typed field named `name` is selected (`false` for names without a typed field).
    pub fn contains(&self, name: &str) -> bool {
        Field::from_name(name).is_some_and(|f| self.has(f))
    }

    fn has(self, field: Field) -> bool {
        self.0 & field.bit() != 0
    }
}

/// The custom attributes a reader keeps: all of them, or only the named ones (sorted, deduplicated).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct AttributeFilter(Option<Box<[String]>>);

impl AttributeFilter {
    /// Every custom attribute in the file.
    pub const fn all() -> Self {
        Self(None)
    }

    /// Only these custom attributes (by top-level name); an empty list keeps none.
    pub fn only<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut names: Vec<String> = names.into_iter().map(Into::into).collect();
        names.sort();
        names.dedup();
        Self(Some(names.into_boxed_slice()))
    }

    /// Whether the attribute named `name` is kept.
    pub fn keeps(&self, name: &str) -> bool {
        self.0
            .as_ref()
            .is_none_or(|names| names.binary_search_by(|n| n.as_str().cmp(name)).is_ok())
    }
}

/// Parses a `custom_attributes` object (or `null`, read as empty), keeping only what the filter keeps.
#[derive(Clone, Copy)]
struct AttributesSeed<'f>(&'f AttributeFilter);

impl<'de> DeserializeSeed<'de> for AttributesSeed<'_> {
    type Value = BTreeMap<String, serde_json::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for AttributesSeed<'_> {
    type Value = BTreeMap<String, serde_json::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of custom attributes")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kept = BTreeMap::new();
        while let Some(name) = map.next_key_seed(AttributeName(self.0))? {
            match name {
                Some(name) => {
                    kept.insert(name, map.next_value()?);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(kept)
    }
}

/// A custom attribute's name: `Some` (allocated) when the filter keeps it, else `None`.
#[derive(Clone, Copy)]
struct AttributeName<'f>(&'f AttributeFilter);

impl<'de> DeserializeSeed<'de> for AttributeName<'_> {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for AttributeName<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an attribute name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.keeps(v).then(|| v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(self.0.keeps(&v).then_some(v))
    }
}

/// A key of the user object: a selected typed field, or anything else (skipped).
enum Key {
    Typed(Field),
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Field::from_name(v).map_or(Key::Other, Key::Typed))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Key, E> {
                Ok(std::str::from_utf8(v)
                    .ok()
                    .and_then(Field::from_name)
                    .map_or(Key::Other, Key::Typed))
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// Parses one user object, filling in only the fields of its [`FieldSet`], and of its custom
/// attributes only those its [`AttributeFilter`] keeps.
///
/// Lenient where Braze omits rather than nulls: a `null` list or map reads as empty, like a missing
/// one. Of a repeated key, the last value wins.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UserSeed<'f> {
    pub(crate) fields: FieldSet,
    pub(crate) attributes: &'f AttributeFilter,
}

impl<'de> DeserializeSeed<'de> for UserSeed<'_> {
    type Value = ExportedUser;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ExportedUser, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for UserSeed<'_> {
    type Value = ExportedUser;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a user export object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ExportedUser, A::Error> {
        let mut user = ExportedUser::default();
        // An exhaustive pattern: adding a field to `ExportedUser` fails to compile until it is parsed here.
        let ExportedUser {
            external_id,
            braze_id,
            country,
            language,
            time_zone,
            created_at,
            total_revenue,
            email_subscribe,
            push_subscribe,
            random_bucket,
            custom_attributes,
            custom_events,
            purchases,
            campaigns_received,
            canvases_received,
        } = &mut user;
        while let Some(key) = map.next_key::<Key>()? {
            let field = match key {
                Key::Typed(field) if self.fields.has(field) => field,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            match field {
                Field::ExternalId => *external_id = map.next_value()?,
                Field::BrazeId => *braze_id = map.next_value()?,
                Field::Country => *country = map.next_value()?,
                Field::Language => *language = map.next_value()?,
                Field::TimeZone => *time_zone = map.next_value()?,
                Field::CreatedAt => *created_at = map.next_value()?,
                Field::TotalRevenue => *total_revenue = map.next_value()?,
                Field::EmailSubscribe => *email_subscribe = map.next_value()?,
                Field::PushSubscribe => *push_subscribe = map.next_value()?,
                Field::RandomBucket => *random_bucket = map.next_value()?,
                Field::CustomAttributes => *custom_attributes = map.next_value_seed(AttributesSeed(self.attributes))?,
                Field::CustomEvents => *custom_events = map.next_value::<Option<_>>()?.unwrap_or_default(),
                Field::Purchases => *purchases = map.next_value::<Option<_>>()?.unwrap_or_default(),
                Field::CampaignsReceived => *campaigns_received = map.next_value::<Option<_>>()?.unwrap_or_default(),
                Field::CanvasesReceived => *canvases_received = map.next_value::<Option<_>>()?.unwrap_or_default(),
            }
        }
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(fields: FieldSet, value: &serde_json::Value) -> ExportedUser {
        let attributes = AttributeFilter::all();
        UserSeed {
            fields,
            attributes: &attributes,
        }
        .deserialize(value)
        .unwrap()
    }

    fn full_user() -> serde_json::Value {
        json!({
            "external_id": "u1", "braze_id": "b1", "country": "FR", "language": "fr",
            "time_zone": "Europe/Paris", "created_at": "2024-01-02T03:04:05.000Z", "total_revenue": 12.5,
            "email_subscribe": "opted_in", "push_subscribe": "subscribed", "random_bucket": 4242,
            "custom_attributes": {"tier": "gold", "orders": 3},
            "custom_events": [{"name": "view", "first": "2024-01-01", "last": "2024-02-01", "count": 7}],
            "purchases": [{"name": "sku-1", "count": 1}],
            "campaigns_received": [{"name": "c", "api_campaign_id": "cid", "converted": true,
                                     "engaged": {"opened_email": true}, "multiple_converted": {"x": true}}],
            "canvases_received": [{"name": "v", "api_canvas_id": "vid", "in_control": true,
                                    "steps_received": []}],
        })
    }

    #[test]
    fn typed_field_names_match_the_field_enum() {
        let bits: Vec<u16> = TYPED_FIELDS
            .iter()
            .map(|n| Field::from_name(n).unwrap().bit())
            .collect();
        let all = bits.iter().fold(0, |acc, b| {
            assert_eq!(acc & b, 0, "two names share a field");
            acc | b
        });
        assert_eq!(FieldSet(all), FieldSet::all());
        assert_eq!(Field::CanvasesReceived.bit(), 1 << (TYPED_FIELDS.len() - 1));
    }

    #[test]
    fn every_typed_field_parses_like_the_derive() {
        let value = full_user();
        let derived: ExportedUser = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(parse(FieldSet::all(), &value), derived);
        // Every typed field is present in the fixture, so the comparison covers all of them.
        let object = value.as_object().unwrap();
        assert!(TYPED_FIELDS.iter().all(|f| object.contains_key(*f)));
        assert_eq!(
            serde_json::to_value(&derived).unwrap(),
            serde_json::to_value(parse(FieldSet::all(), &value)).unwrap()
        );
    }

    #[test]
    fn fields_not_requested_stay_empty() {
        let fields = FieldSet::from_fields_to_export(["external_id", "custom_events", "email", "devices"]);
        let user = parse(fields, &full_user());
        let expected = ExportedUser {
            external_id: Some("u1".into()),
            custom_events: parse(FieldSet::all(), &full_user()).custom_events,
            ..ExportedUser::default()
        };
        assert_eq!(user, expected);
        assert!(fields.contains("custom_events") && !fields.contains("purchases") && !fields.contains("email"));
    }

    #[test]
    fn null_collections_read_as_empty_and_unknown_keys_are_skipped() {
        let value = json!({"external_id": "u", "custom_events": null, "custom_attributes": null,
                           "email": "x@example.com", "devices": [{"idfa": "x"}], "last_coordinates": [1.0, 2.0]});
        let user = parse(FieldSet::all(), &value);
        assert_eq!(
            user,
            ExportedUser {
                external_id: Some("u".into()),
                ..ExportedUser::default()
            }
        );
    }

    #[test]
    fn a_wrong_type_in_a_selected_field_is_an_error_and_in_a_dropped_field_is_not() {
        let value = json!({"random_bucket": "many"});
        let all = AttributeFilter::all();
        let seed = UserSeed {
            fields: FieldSet::all(),
            attributes: &all,
        };
        assert!(seed.deserialize(&value).is_err());
        let user = parse(FieldSet::from_fields_to_export(["external_id"]), &value);
        assert_eq!(user, ExportedUser::default());
    }

    #[test]
    fn only_the_named_custom_attributes_are_kept() {
        let value = json!({"external_id": "u1", "custom_attributes": {
            "plan": "gold", "work_email": "jane@example.com", "orders": 3,
            "home_address": {"street": "1 Main St", "city": "Springfield"}, "loyalty": {"tier": "a"}}});
        let filter = AttributeFilter::only(["plan", "loyalty", "orders", "plan"]);
        let seed = UserSeed {
            fields: FieldSet::all(),
            attributes: &filter,
        };
        let user = seed.deserialize(&value).unwrap();
        let names: Vec<&str> = user.custom_attributes.keys().map(String::as_str).collect();
        assert_eq!(names, ["loyalty", "orders", "plan"]);
        assert_eq!(user.custom_attributes["loyalty"], json!({"tier": "a"}));
        // No named attribute keeps none; `null` reads as empty under any filter.
        let none = AttributeFilter::only(Vec::<String>::new());
        let seed = UserSeed {
            fields: FieldSet::all(),
            attributes: &none,
        };
        assert!(seed.deserialize(&value).unwrap().custom_attributes.is_empty());
        let null = json!({"custom_attributes": null});
        assert!(seed.deserialize(&null).unwrap().custom_attributes.is_empty());
        assert!(AttributeFilter::all().keeps("anything") && !filter.keeps("work_email"));
    }
}
