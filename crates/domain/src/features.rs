//! Customer features: what the policy may know about a customer, typed, from exported profile fields.
//!
//! A [`FeatureSpec`] names a feature and the Braze export path it is read from ([`FieldPath`]); the
//! [`FeatureSchema`] is the ordered list of them, and a [`Customer`] carries one [`FeatureValue`] per
//! schema entry, in schema order (no per-customer maps: a daily run holds millions of customers).
//! Building a path runs the [PII guard](crate::pii), so a schema can only ever name consented,
//! non-identifying fields.

use std::collections::BTreeSet;
use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::{CustomerId, Identifier};
use crate::pii;
use crate::{Error, Result};

/// The declared type of a feature.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureType {
    /// A real number (standardised by the policy).
    Number,
    /// A category (one-hot or hashed by the policy). Numbers and booleans are read as their text.
    Category,
    /// True or false.
    Boolean,
    /// A point in time (the policy turns it into "days since").
    Timestamp,
}

impl FeatureType {
    /// The name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Number => "number",
            Self::Category => "category",
            Self::Boolean => "boolean",
            Self::Timestamp => "timestamp",
        }
    }
}

/// One customer's value of one feature.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum FeatureValue {
    /// A finite number.
    Number(f64),
    /// A category label.
    Category(String),
    /// A boolean.
    Boolean(bool),
    /// A timestamp.
    Timestamp(Timestamp),
    /// The profile has no value for this feature. Missing is explicit, never a silent zero.
    Missing,
}

impl FeatureValue {
    /// Whether the value is [`FeatureValue::Missing`].
    pub fn is_missing(&self) -> bool {
        matches!(self, Self::Missing)
    }

    /// The number, if this is one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Self::Number(x) => Some(*x),
            _ => None,
        }
    }
}

/// Statistic of a custom event or purchase in the export (`count` is all-time; `first`/`last` are
/// timestamps).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStat {
    /// How many times, all-time.
    Count,
    /// When first.
    First,
    /// When last.
    Last,
}

impl EventStat {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "count" => Some(Self::Count),
            "first" => Some(Self::First),
            "last" => Some(Self::Last),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::First => "first",
            Self::Last => "last",
        }
    }
}

/// Braze standard export fields a feature may read directly.
pub const READABLE_PROFILE_FIELDS: &[&str] = &[
    "country",
    "language",
    "time_zone",
    "total_revenue",
    "created_at",
    "email_subscribe",
    "push_subscribe",
    "random_bucket",
    "attributed_campaign",
    "attributed_source",
    "attributed_adgroup",
    "attributed_ad",
];

/// Where in an exported profile a feature is read from.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum FieldPath {
    /// A standard field such as `country` or `total_revenue`.
    Profile(String),
    /// `custom_attributes.<name>` (further `.`-separated keys address nested attributes).
    CustomAttribute(Vec<String>),
    /// `custom_events.<event name>.<count|first|last>`.
    CustomEvent {
        /// The event name.
        name: String,
        /// Which statistic.
        stat: EventStat,
    },
    /// `purchases.<product id>.<count|first|last>`.
    Purchase {
        /// The product id.
        product: String,
        /// Which statistic.
        stat: EventStat,
    },
}

impl FieldPath {
    /// Parses and checks a path, refusing personal data.
    ///
    /// # Errors
    /// [`Error::Pii`] for a refused field; [`Error::InvalidField`] for anything that is not a readable
    /// export path.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidField {
            field: text.to_owned(),
            reason: reason.to_owned(),
        };
        let mut parts = text.split('.');
        let head = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        if rest.iter().any(|p| p.is_empty()) || head.is_empty() {
            return Err(invalid("empty path segment"));
        }
        match head {
            "custom_attributes" => {
                if rest.is_empty() {
                    return Err(invalid("name the attribute: `custom_attributes.<name>`"));
                }
                for part in &rest {
                    pii::check_custom_attribute(part)?;
                }
                // `contact.email` is as personal as `contact_email`: judge the joined name too.
                pii::check_custom_attribute(&rest.join("_"))?;
                Ok(Self::CustomAttribute(rest.iter().map(|s| (*s).to_owned()).collect()))
            }
            "custom_events" | "purchases" => {
                let [name, stat] = rest.as_slice() else {
                    return Err(invalid(&format!("expected `{head}.<name>.<count|first|last>`")));
                };
                let stat = EventStat::parse(stat)
                    .ok_or_else(|| invalid("the statistic must be `count`, `first` or `last`"))?;
                Ok(if head == "custom_events" {
                    Self::CustomEvent {
                        name: (*name).to_owned(),
                        stat,
                    }
                } else {
                    Self::Purchase {
                        product: (*name).to_owned(),
                        stat,
                    }
                })
            }
            field => {
                pii::check_profile_field(field)?;
                if !rest.is_empty() || !READABLE_PROFILE_FIELDS.contains(&field) {
                    return Err(invalid(&format!(
                        "not a readable profile field; use one of {}, or custom_attributes.<name>, custom_events.<name>.<stat>, purchases.<product>.<stat>",
                        READABLE_PROFILE_FIELDS.join(", ")
                    )));
                }
                Ok(Self::Profile(field.to_owned()))
            }
        }
    }

    /// The top-level Braze `fields_to_export` entry this path needs.
    pub fn export_field(&self) -> &str {
        match self {
            Self::Profile(f) => f,
            Self::CustomAttribute(_) => "custom_attributes",
            Self::CustomEvent { .. } => "custom_events",
            Self::Purchase { .. } => "purchases",
        }
    }

    /// The custom attribute to name in `custom_attributes_to_export`, if any.
    pub fn custom_attribute(&self) -> Option<&str> {
        match self {
            Self::CustomAttribute(parts) => parts.first().map(String::as_str),
            _ => None,
        }
    }

    /// Reads the raw JSON at this path from an exported profile object.
    pub fn lookup<'a>(&self, profile: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        match self {
            Self::Profile(f) => profile.get(f),
            Self::CustomAttribute(parts) => {
                let mut v = profile.get("custom_attributes")?;
                for p in parts {
                    v = v.get(p)?;
                }
                Some(v)
            }
            Self::CustomEvent { name, stat } => {
                find_named(profile.get("custom_events")?, "name", name)?.get(stat.as_str())
            }
            Self::Purchase { product, stat } => {
                find_named(profile.get("purchases")?, "name", product)?.get(stat.as_str())
            }
        }
    }
}

fn find_named<'a>(list: &'a serde_json::Value, key: &str, name: &str) -> Option<&'a serde_json::Value> {
    list.as_array()?
        .iter()
        .find(|item| item.get(key).and_then(|n| n.as_str()) == Some(name))
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Profile(field) => f.write_str(field),
            Self::CustomAttribute(parts) => write!(f, "custom_attributes.{}", parts.join(".")),
            Self::CustomEvent { name, stat } => write!(f, "custom_events.{name}.{}", stat.as_str()),
            Self::Purchase { product, stat } => write!(f, "purchases.{product}.{}", stat.as_str()),
        }
    }
}

impl TryFrom<String> for FieldPath {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::parse(&value)
    }
}

impl From<FieldPath> for String {
    fn from(value: FieldPath) -> Self {
        value.to_string()
    }
}

/// One feature: its name, where it is read and its type.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// Name used by rules, eligibility and reports.
    pub name: Identifier,
    /// Export path.
    pub field: FieldPath,
    /// Declared type.
    #[serde(rename = "type")]
    pub ty: FeatureType,
}

/// The ordered features of a use case. A [`Customer`]'s values follow this order.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct FeatureSchema {
    specs: Vec<FeatureSpec>,
}

impl FeatureSchema {
    /// A schema of `specs`.
    ///
    /// # Errors
    /// [`Error::Duplicate`] when two features share a name.
    pub fn new(specs: Vec<FeatureSpec>) -> Result<Self> {
        for (i, spec) in specs.iter().enumerate() {
            if specs[..i].iter().any(|s| s.name == spec.name) {
                return Err(Error::Duplicate {
                    what: "feature",
                    name: spec.name.to_string(),
                });
            }
        }
        Ok(Self { specs })
    }

    /// The features in order.
    pub fn specs(&self) -> &[FeatureSpec] {
        &self.specs
    }

    /// The number of features.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// Whether there are no features.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// The position of the feature named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.specs.iter().position(|s| s.name.as_str() == name)
    }

    /// The Braze `fields_to_export` and `custom_attributes_to_export` lists that read exactly these
    /// features (plus `external_id`, always needed), sorted and deduplicated.
    pub fn export_fields(&self) -> (Vec<String>, Vec<String>) {
        let mut fields = BTreeSet::from(["external_id".to_owned()]);
        let mut attributes = BTreeSet::new();
        for spec in &self.specs {
            fields.insert(spec.field.export_field().to_owned());
            if let Some(a) = spec.field.custom_attribute() {
                attributes.insert(a.to_owned());
            }
        }
        (fields.into_iter().collect(), attributes.into_iter().collect())
    }

    /// Reads every feature from an exported profile, strictly.
    ///
    /// # Errors
    /// [`Error::FeatureType`] for the first value whose JSON type does not fit the declared type.
    pub fn extract(&self, profile: &serde_json::Value) -> Result<Vec<FeatureValue>> {
        self.specs
            .iter()
            .map(|spec| convert(spec, spec.field.lookup(profile)))
            .collect()
    }

    /// Reads every feature, turning values of the wrong type into [`FeatureValue::Missing`]; returns the
    /// values and how many were turned.
    pub fn extract_lenient(&self, profile: &serde_json::Value) -> (Vec<FeatureValue>, usize) {
        let mut mismatches = 0;
        let values = self
            .specs
            .iter()
            .map(|spec| {
                convert(spec, spec.field.lookup(profile)).unwrap_or_else(|_| {
                    mismatches += 1;
                    FeatureValue::Missing
                })
            })
            .collect();
        (values, mismatches)
    }
}

fn convert(spec: &FeatureSpec, raw: Option<&serde_json::Value>) -> Result<FeatureValue> {
    use serde_json::Value as J;
    let mismatch = |got: &J| Error::FeatureType {
        feature: spec.name.to_string(),
        expected: spec.ty.as_str(),
        got: match got {
            J::Null => "null".to_owned(),
            J::Bool(b) => format!("boolean {b}"),
            J::Number(n) => format!("number {n}"),
            J::String(s) => format!("text {s:?}"),
            J::Array(_) => "an array".to_owned(),
            J::Object(_) => "an object".to_owned(),
        },
    };
    let Some(raw) = raw else {
        return Ok(FeatureValue::Missing);
    };
    if raw.is_null() {
        return Ok(FeatureValue::Missing);
    }
    Ok(match spec.ty {
        FeatureType::Number => match raw.as_f64() {
            Some(x) if x.is_finite() => FeatureValue::Number(x),
            _ => return Err(mismatch(raw)),
        },
        FeatureType::Boolean => match raw {
            J::Bool(b) => FeatureValue::Boolean(*b),
            _ => return Err(mismatch(raw)),
        },
        FeatureType::Category => match raw {
            J::String(s) => FeatureValue::Category(s.clone()),
            J::Number(n) => FeatureValue::Category(n.to_string()),
            J::Bool(b) => FeatureValue::Category(b.to_string()),
            _ => return Err(mismatch(raw)),
        },
        FeatureType::Timestamp => match raw {
            J::String(s) => parse_timestamp(s)
                .map(FeatureValue::Timestamp)
                .ok_or_else(|| mismatch(raw))?,
            _ => return Err(mismatch(raw)),
        },
    })
}

/// Parses Braze's ISO-8601 timestamps: with an offset or `Z`, or a bare date (midnight UTC).
fn parse_timestamp(text: &str) -> Option<Timestamp> {
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Some(ts);
    }
    let date: jiff::civil::Date = text.parse().ok()?;
    jiff::tz::TimeZone::UTC
        .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
        .ok()
}

/// A customer as the policy sees them: an id and one value per schema feature.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Customer {
    /// Braze `external_id`.
    pub id: CustomerId,
    /// One value per feature of the use case's [`FeatureSchema`], in schema order.
    pub features: Vec<FeatureValue>,
    /// The customer's IANA time zone, when the profile has one (for local send times).
    pub time_zone: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(name: &str, field: &str, ty: FeatureType) -> FeatureSpec {
        FeatureSpec {
            name: Identifier::new(name).unwrap(),
            field: FieldPath::parse(field).unwrap(),
            ty,
        }
    }

    #[test]
    fn paths_parse_and_refuse_pii() {
        assert!(matches!(FieldPath::parse("email"), Err(Error::Pii(_))));
        assert!(matches!(
            FieldPath::parse("custom_attributes.home_address"),
            Err(Error::Pii(_))
        ));
        assert!(matches!(
            FieldPath::parse("custom_attributes"),
            Err(Error::InvalidField { .. })
        ));
        assert!(matches!(
            FieldPath::parse("custom_events.login"),
            Err(Error::InvalidField { .. })
        ));
        assert!(matches!(
            FieldPath::parse("favourite_colour"),
            Err(Error::InvalidField { .. })
        ));
        let p = FieldPath::parse("custom_events.login.last").unwrap();
        assert_eq!(p.to_string(), "custom_events.login.last");
        assert_eq!(p.export_field(), "custom_events");
    }

    #[test]
    fn extraction_types_values_and_keeps_missing_explicit() {
        let schema = FeatureSchema::new(vec![
            spec("plan", "custom_attributes.plan", FeatureType::Category),
            spec("ltv", "total_revenue", FeatureType::Number),
            spec("logins", "custom_events.login.count", FeatureType::Number),
            spec("last_login", "custom_events.login.last", FeatureType::Timestamp),
            spec("vip", "custom_attributes.vip", FeatureType::Boolean),
            spec("tier", "custom_attributes.loyalty.tier", FeatureType::Category),
        ])
        .unwrap();
        let profile = json!({
            "external_id": "u1",
            "total_revenue": 120.5,
            "custom_attributes": {"plan": "gold", "loyalty": {"tier": 3}},
            "custom_events": [{"name": "login", "count": 7, "first": "2026-01-01T00:00:00Z", "last": "2026-11-20T08:00:00.000Z"}]
        });
        let values = schema.extract(&profile).unwrap();
        assert_eq!(values[0], FeatureValue::Category("gold".into()));
        assert_eq!(values[1], FeatureValue::Number(120.5));
        assert_eq!(values[2], FeatureValue::Number(7.0));
        assert_eq!(
            values[3],
            FeatureValue::Timestamp("2026-11-20T08:00:00Z".parse().unwrap())
        );
        assert_eq!(values[4], FeatureValue::Missing);
        assert_eq!(values[5], FeatureValue::Category("3".into()));
        let (fields, attributes) = schema.export_fields();
        assert_eq!(
            fields,
            ["custom_attributes", "custom_events", "external_id", "total_revenue"]
        );
        assert_eq!(attributes, ["loyalty", "plan", "vip"]);
    }

    #[test]
    fn wrong_types_are_errors_or_missing_when_lenient() {
        let schema = FeatureSchema::new(vec![spec("ltv", "total_revenue", FeatureType::Number)]).unwrap();
        let profile = json!({"total_revenue": "a lot"});
        let err = schema.extract(&profile).unwrap_err();
        assert_eq!(err.to_string(), "feature `ltv` expects number, got text \"a lot\"");
        let (values, mismatches) = schema.extract_lenient(&profile);
        assert_eq!((values, mismatches), (vec![FeatureValue::Missing], 1));
    }
}
