//! Exported Braze profiles become domain customers, and successive profiles become outcomes.
//!
//! [`customer_from_export`] is the one conversion "exported user → [`Customer`]" of offerloop: the
//! features are read with the use case's [`FeatureSchema`] (leniently: a value of the wrong type is
//! missing, and counted), and the profile's counters (custom event and purchase counts, lifetime
//! revenue, campaigns received) are kept beside them in the stored audience row ([`AudienceFeatures`]),
//! so the next run can turn their differences into [`Outcome`]s ([`profile_delta_outcomes`]).

use std::collections::BTreeMap;

use jiff::Timestamp;
use offerloop_braze::ExportedUser;
use offerloop_domain::{Customer, CustomerId, FeatureSchema, FeatureValue, Outcome, OutcomeKind};
use serde::{Deserialize, Serialize};

/// How often something happened, and when last, as an export reports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    /// All-time count.
    pub count: u64,
    /// Last occurrence, when exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Timestamp>,
}

/// The counters of one exported profile that outcomes are derived from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfileCounters {
    /// Custom events by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub events: BTreeMap<String, Counter>,
    /// Purchases by product id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub purchases: BTreeMap<String, Counter>,
    /// Lifetime revenue, when exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_revenue: Option<f64>,
    /// Campaigns received: API id (or name) → last received.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub campaigns: BTreeMap<String, Option<Timestamp>>,
}

/// The JSON stored as an audience row's `features`: the feature values the decision saw, in schema
/// order, and the profile's counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AudienceFeatures {
    /// One value per schema feature.
    pub values: Vec<FeatureValue>,
    /// Counters for outcome deltas.
    #[serde(default)]
    pub counters: ProfileCounters,
}

impl AudienceFeatures {
    /// As stored: JSON text.
    pub fn to_json(&self) -> String {
        // Serialising plain data (strings, finite numbers, timestamps, string-keyed maps) cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| "null".to_owned())
    }

    /// From a stored row's JSON text.
    ///
    /// # Errors
    /// [`crate::Error::Json`] when the JSON is not an audience row of this engine.
    pub fn from_json(text: &str) -> crate::Result<Self> {
        serde_json::from_str(text).map_err(|source| crate::Error::Json {
            what: "audience features",
            source,
        })
    }
}

/// A customer read from an export, with the counters of their profile.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportedCustomer {
    /// The customer as the policy sees them.
    pub customer: Customer,
    /// The profile's counters.
    pub counters: ProfileCounters,
    /// How many feature values had the wrong type (read as missing).
    pub mismatches: usize,
}

fn parse_time(text: Option<&str>) -> Option<Timestamp> {
    let text = text?;
    text.parse::<Timestamp>().ok().or_else(|| {
        let date: jiff::civil::Date = text.parse().ok()?;
        jiff::tz::TimeZone::UTC
            .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
            .ok()
    })
}

/// The counters of an exported profile.
pub fn counters_of(user: &ExportedUser) -> ProfileCounters {
    let summary = |list: &[offerloop_braze::export::EventSummary]| {
        list.iter()
            .map(|e| {
                (
                    e.name.clone(),
                    Counter {
                        count: e.count,
                        last: parse_time(e.last.as_deref()),
                    },
                )
            })
            .collect()
    };
    ProfileCounters {
        events: summary(&user.custom_events),
        purchases: summary(&user.purchases),
        total_revenue: user.total_revenue,
        campaigns: user
            .campaigns_received
            .iter()
            .map(|c| {
                (
                    c.api_campaign_id.clone().unwrap_or_else(|| c.name.clone()),
                    parse_time(c.last_received.as_deref()),
                )
            })
            .collect(),
    }
}

/// The customer of an exported profile, or `None` when it has no usable `external_id`.
pub fn customer_from_export(schema: &FeatureSchema, user: &ExportedUser) -> Option<ExportedCustomer> {
    let id = CustomerId::new(user.external_id.clone()?).ok()?;
    let profile = serde_json::to_value(user).ok()?;
    let (features, mismatches) = schema.extract_lenient(&profile);
    Some(ExportedCustomer {
        customer: Customer {
            id,
            features,
            time_zone: user.time_zone.clone(),
        },
        counters: counters_of(user),
        mismatches,
    })
}

/// The outcomes that explain how a customer's counters grew from `before` to `after`.
///
/// Each new purchase of a product is one [`OutcomeKind::Purchase`] worth the growth of lifetime revenue
/// divided by the number of new purchases (exports do not itemise); each new custom event is one
/// [`OutcomeKind::CustomEvent`] worth 0. An outcome happened at the counter's `last` time when it is
/// after `before_at` (else at `after_at`). The `dedupe_key` is the occurrence's rank
/// (`profile:<customer>:purchase:<product>:<n>`), so the same purchase seen in two exports counts once.
pub fn profile_delta_outcomes(
    customer: &CustomerId,
    before: &ProfileCounters,
    after: &ProfileCounters,
    before_at: Timestamp,
    after_at: Timestamp,
) -> Vec<Outcome> {
    let new_purchases: u64 = after
        .purchases
        .iter()
        .map(|(p, c)| c.count.saturating_sub(before.purchases.get(p).map_or(0, |b| b.count)))
        .sum();
    let revenue_growth = match (before.total_revenue, after.total_revenue) {
        (Some(b), Some(a)) if a > b => a - b,
        (None, Some(a)) if a > 0.0 => a,
        _ => 0.0,
    };
    let per_purchase = if new_purchases > 0 {
        revenue_growth / new_purchases as f64
    } else {
        0.0
    };
    let mut out = Vec::new();
    let mut push = |kind: OutcomeKind, tag: &str, name: &str, old: u64, counter: &Counter, value: f64| {
        let at = counter.last.filter(|t| *t > before_at).unwrap_or(after_at);
        for n in old + 1..=counter.count {
            out.push(Outcome {
                customer_id: customer.clone(),
                kind: kind.clone(),
                occurred_at: at,
                value,
                dedupe_key: format!("profile:{customer}:{tag}:{name}:{n}"),
            });
        }
    };
    for (product, counter) in &after.purchases {
        let old = before.purchases.get(product).map_or(0, |b| b.count);
        push(
            OutcomeKind::Purchase {
                product_id: product.clone(),
            },
            "purchase",
            product,
            old,
            counter,
            per_purchase,
        );
    }
    for (name, counter) in &after.events {
        let old = before.events.get(name).map_or(0, |b| b.count);
        push(
            OutcomeKind::CustomEvent { name: name.clone() },
            "event",
            name,
            old,
            counter,
            0.0,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn user(json: serde_json::Value) -> ExportedUser {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn an_export_becomes_a_customer_with_counters() {
        let schema = FeatureSchema::new(vec![
            offerloop_domain::FeatureSpec {
                name: offerloop_domain::Identifier::new("ltv").unwrap(),
                field: offerloop_domain::features::FieldPath::parse("total_revenue").unwrap(),
                ty: offerloop_domain::FeatureType::Number,
            },
            offerloop_domain::FeatureSpec {
                name: offerloop_domain::Identifier::new("plan").unwrap(),
                field: offerloop_domain::features::FieldPath::parse("custom_attributes.plan").unwrap(),
                ty: offerloop_domain::FeatureType::Number,
            },
        ])
        .unwrap();
        let u = user(serde_json::json!({
            "external_id": "c1", "total_revenue": 12.5, "time_zone": "Europe/Paris",
            "custom_attributes": {"plan": "gold"},
            "purchases": [{"name": "shoes", "count": 2, "last": "2026-01-02T10:00:00Z"}]
        }));
        let c = customer_from_export(&schema, &u).unwrap();
        assert_eq!(c.customer.id.as_str(), "c1");
        assert_eq!(
            c.customer.features,
            vec![FeatureValue::Number(12.5), FeatureValue::Missing]
        );
        assert_eq!(c.mismatches, 1, "plan is text, declared number");
        assert_eq!(c.customer.time_zone.as_deref(), Some("Europe/Paris"));
        assert_eq!(c.counters.purchases["shoes"].count, 2);
        assert!(customer_from_export(&schema, &user(serde_json::json!({"braze_id": "x"}))).is_none());
        let row = AudienceFeatures {
            values: c.customer.features.clone(),
            counters: c.counters.clone(),
        };
        assert_eq!(AudienceFeatures::from_json(&row.to_json()).unwrap(), row);
    }

    #[test]
    fn deltas_split_revenue_and_dedupe_by_rank() {
        let c = CustomerId::new("c1").unwrap();
        let before = ProfileCounters {
            purchases: BTreeMap::from([("a".into(), Counter { count: 1, last: None })]),
            total_revenue: Some(10.0),
            ..Default::default()
        };
        let after = ProfileCounters {
            purchases: BTreeMap::from([
                (
                    "a".into(),
                    Counter {
                        count: 2,
                        last: Some(ts("2026-01-03T05:00:00Z")),
                    },
                ),
                ("b".into(), Counter { count: 1, last: None }),
            ]),
            events: BTreeMap::from([("login".into(), Counter { count: 3, last: None })]),
            total_revenue: Some(70.0),
            ..Default::default()
        };
        let out = profile_delta_outcomes(
            &c,
            &before,
            &after,
            ts("2026-01-02T00:00:00Z"),
            ts("2026-01-04T00:00:00Z"),
        );
        let purchases: Vec<_> = out
            .iter()
            .filter(|o| matches!(o.kind, OutcomeKind::Purchase { .. }))
            .collect();
        assert_eq!(purchases.len(), 2);
        assert!(purchases.iter().all(|o| (o.value - 30.0).abs() < 1e-9));
        assert_eq!(purchases[0].dedupe_key, "profile:c1:purchase:a:2");
        assert_eq!(purchases[0].occurred_at, ts("2026-01-03T05:00:00Z"));
        assert_eq!(purchases[1].occurred_at, ts("2026-01-04T00:00:00Z"));
        assert_eq!(out.len(), 5, "three new login events too");
        // Nothing grew: nothing happened.
        assert!(
            profile_delta_outcomes(
                &c,
                &after,
                &after,
                ts("2026-01-04T00:00:00Z"),
                ts("2026-01-05T00:00:00Z")
            )
            .is_empty()
        );
    }
}
