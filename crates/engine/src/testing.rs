//! In-memory fakes of the ports for the engine's unit tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Mutex;

use apache_avro::types::Value;
use apache_avro::{Codec, Schema, Writer};
use async_trait::async_trait;
use jiff::civil::Date;
use offerloop_activation::{ActivationRequest, Activator, BatchKind, BatchOutcome, PlannedBatch};
use offerloop_domain::UseCase;

/// The real `SqliteStore` in memory behind the store crate's fault-injecting wrapper.
pub type FakeStore = offerloop_store::faults::FaultyStore;

/// An activator that plans one batch per decision group of 50 and records executions; its fate per
/// execution index is scripted.
#[derive(Debug, Default)]
pub struct FakeActivator {
    pub executed: Mutex<Vec<String>>,
    /// Fates by execution index (default: sent).
    pub script: Mutex<HashMap<usize, BatchOutcome>>,
}

#[async_trait]
impl Activator for FakeActivator {
    fn plan(
        &self,
        _use_case: &UseCase,
        date: Date,
        requests: &[ActivationRequest],
    ) -> offerloop_activation::Result<Vec<PlannedBatch>> {
        Ok(requests
            .chunks(offerloop_braze::limits::MAX_RECIPIENTS)
            .enumerate()
            .map(|(i, chunk)| PlannedBatch {
                // Unique across the shards of a day: named by its first decision.
                id: format!("{date}-{i}-{}", chunk[0].decision_id),
                kind: BatchKind::CampaignSend {
                    campaign_id: "c".into(),
                },
                decision_ids: chunk.iter().map(|r| r.decision_id.clone()).collect(),
                request:
                    serde_json::json!({"recipients": chunk.iter().map(|r| r.customer_id.as_str()).collect::<Vec<_>>()})
                        .to_string(),
            })
            .collect())
    }
    async fn execute(&self, batch: &PlannedBatch) -> BatchOutcome {
        let mut executed = self.executed.lock().unwrap();
        let index = executed.len();
        executed.push(batch.id.clone());
        self.script
            .lock()
            .unwrap()
            .remove(&index)
            .unwrap_or(BatchOutcome::Sent {
                id: Some(format!("dispatch-{index}")),
                notice: None,
            })
    }
}

// ---------------------------------------------------------------- Currents files

/// A minimal `users.behaviors.Purchase` writer schema (the reader reads fields by name).
pub const PURCHASE: &str = r#"{"type":"record","name":"Purchase","namespace":"dataexport.S3.inner.users.behaviors","fields":[{"name":"id","type":"string"},{"name":"user_id","type":"string"},{"name":"external_user_id","type":["null","string"],"default":null},{"name":"time","type":"int"},{"name":"product_id","type":"string"},{"name":"price","type":"float"},{"name":"currency","type":"string"},{"name":"properties","type":"string"}]}"#;
/// A minimal `users.messages.email.Delivery` writer schema.
pub const DELIVERY: &str = r#"{"type":"record","name":"Delivery","namespace":"dataexport.S3.inner.users.messages.email","fields":[{"name":"id","type":"string"},{"name":"user_id","type":"string"},{"name":"external_user_id","type":["null","string"],"default":null},{"name":"time","type":"int"},{"name":"campaign_id","type":["null","string"],"default":null}]}"#;

/// A key in Braze's layout.
pub fn currents_key(event_type: &str, hour: &str, n: u32) -> String {
    format!(
        "currents/dataexport.prod-01.S3.integration.69cadaaed2d51b7c75b1a3e5/event_type={event_type}/date={hour}/version=10/us-01/f+0+{n}.avro"
    )
}

/// An optional string field's value.
pub fn opt(v: Option<&str>) -> Value {
    match v {
        Some(s) => Value::Union(1, Box::new(Value::String(s.into()))),
        None => Value::Union(0, Box::new(Value::Null)),
    }
}

/// Writes an Avro container of `records` at `key` under `dir`.
pub fn write_avro(dir: &std::path::Path, key: &str, schema: &str, records: Vec<Vec<(&str, Value)>>) {
    let schema = Schema::parse_str(schema).unwrap();
    let mut w = Writer::with_codec(&schema, Vec::new(), Codec::Null).unwrap();
    for r in records {
        w.append_value(Value::Record(r.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
            .unwrap();
    }
    let path = dir.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, w.into_inner().unwrap()).unwrap();
}

/// A purchase record of [`PURCHASE`].
pub fn purchase(id: &str, customer: Option<&str>, time: i32, price: f32) -> Vec<(&'static str, Value)> {
    vec![
        ("id", Value::String(id.into())),
        ("user_id", Value::String("5f0c1b2a3d4e5f6071829304".into())),
        ("external_user_id", opt(customer)),
        ("time", Value::Int(time)),
        ("product_id", Value::String("boots".into())),
        ("price", Value::Float(price)),
        ("currency", Value::String("USD".into())),
        ("properties", Value::String("{}".into())),
    ]
}
