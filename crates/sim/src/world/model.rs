//! TEMPORARY STAND-IN with the contract's signatures, so the server compiles while the real world
//! model (scenario parsing, population, response model, oracle) is written; replaced wholesale.

use std::path::Path;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::{Channel, Delivery, Expectation, Outcome, OutcomeKind};
use crate::error::{Error, Result};
use crate::state::WorkspaceSpec;

/// A scenario: the world's population, response model, drift schedule and Braze workspace.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Scenario name.
    pub name: String,
    /// Seed of everything random.
    pub seed: u64,
    /// Number of customers.
    pub customers: usize,
    /// Simulated clock at start.
    pub start: Timestamp,
    /// The Braze workspace: API keys, campaigns, canvases, segments, templates.
    pub braze: WorkspaceSpec,
}

impl Scenario {
    /// Parses and validates a scenario file.
    pub fn from_file(path: &Path) -> Result<Scenario> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadScenario {
            path: path.to_path_buf(),
            source,
        })?;
        Scenario::from_toml_str(&text, Some(path))
    }

    /// Parses and validates scenario text (`path` only names it in errors).
    pub fn from_toml_str(text: &str, path: Option<&Path>) -> Result<Scenario> {
        let value: toml::Table = toml::from_str(text).map_err(|e| Error::Scenario {
            location: path.map(|p| p.display().to_string()).unwrap_or_default(),
            message: e.to_string(),
        })?;
        let braze = match value.get("braze") {
            Some(v) => v.clone().try_into().map_err(|e: toml::de::Error| Error::Scenario {
                location: "braze".into(),
                message: e.to_string(),
            })?,
            None => WorkspaceSpec::default(),
        };
        Ok(Scenario {
            name: "stand-in".into(),
            seed: value.get("seed").and_then(|v| v.as_integer()).unwrap_or(0) as u64,
            customers: value.get("customers").and_then(|v| v.as_integer()).unwrap_or(100) as usize,
            start: "2026-01-05T00:00:00Z".parse().unwrap_or(Timestamp::UNIX_EPOCH),
            braze,
        })
    }
}

/// The generated world. Customers are stored compactly (a million fit in a few hundred MB); their
/// Braze-shaped profile is rendered on demand by [`World::profile`].
#[derive(Clone, Debug)]
pub struct World {
    scenario: Scenario,
    ids: Vec<String>,
}

impl World {
    /// Generates the population of `scenario`.
    pub fn new(scenario: Scenario) -> Result<World> {
        let ids = (0..scenario.customers).map(|i| format!("cust-{i:06}")).collect();
        Ok(World { scenario, ids })
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Number of customers.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there is no customer.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The `external_id` of customer `index`.
    pub fn external_id(&self, index: usize) -> &str {
        &self.ids[index]
    }

    /// The index of a customer by `external_id`.
    pub fn index_of(&self, external_id: &str) -> Option<usize> {
        external_id.strip_prefix("cust-")?.parse().ok().filter(|i| *i < self.ids.len())
    }

    /// Customer `index`'s profile at the scenario start, as a Braze export object: standard fields
    /// (`external_id`, `first_name`, `email`, `phone`, `country`, `language`, `time_zone`, `created_at`,
    /// `email_subscribe`, `push_subscribe`, `push_tokens`, `total_revenue`, ...), `custom_attributes`,
    /// `custom_events` (`[{name, first, last, count}]`) and `purchases` (same shape). PII fields are
    /// present, as in Braze: it is the caller's `fields_to_export` that must leave them out.
    pub fn profile(&self, index: usize) -> Map<String, Value> {
        let i = index;
        json!({
            "external_id": self.ids[i],
            "email": format!("cust{i}@example.com"),
            "country": "US",
            "time_zone": "America/New_York",
            "email_subscribe": "opted_in",
            "push_subscribe": "subscribed",
            "custom_attributes": { "plan": if i % 2 == 0 { "basic" } else { "premium" } },
            "total_revenue": 0.0,
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    /// The oracle: the expected outcome of `delivery` for `customer`.
    pub fn expected(&self, customer: usize, delivery: &Delivery) -> Expectation {
        let _ = (customer, delivery);
        Expectation { reachable: true, open: 0.2, click: 0.05, convert: 0.02, revenue: 1.0, cost: 0.0, unsubscribe: 0.001 }
    }

    /// The expected outcome of a day without any message.
    pub fn expected_organic(&self, customer: usize, day: jiff::civil::Date) -> Expectation {
        let _ = (customer, day);
        Expectation { reachable: true, convert: 0.01, revenue: 0.5, ..Expectation::default() }
    }

    /// Samples what `delivery` causes; `stream` names the delivery so results are reproducible.
    pub fn respond(&self, customer: usize, delivery: &Delivery, stream: u64) -> Vec<Outcome> {
        let _ = customer;
        let mut out = vec![Outcome { at: delivery.at, kind: OutcomeKind::Delivered }];
        if stream % 5 == 0 {
            out.push(Outcome { at: delivery.at, kind: OutcomeKind::Opened });
        }
        if stream % 20 == 0 && delivery.channel != Channel::Sms {
            out.push(Outcome {
                at: delivery.at,
                kind: OutcomeKind::Purchase { product_id: "sku".into(), price: 50.0, currency: "USD".into(), quantity: 1 },
            });
        }
        out
    }

    /// Samples what `customer` does on `day` without any message.
    pub fn organic(&self, customer: usize, day: jiff::civil::Date) -> Vec<Outcome> {
        let _ = (customer, day);
        Vec::new()
    }
}
