//! Integration tests of `offerloop-store` through the `Store` trait: round-trips of every record,
//! idempotency, the send ledger's state machine, rewards that never regress, files, migrations and
//! crash consistency. One binary (see the crate's `Cargo.toml`) to keep link time down.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod batches;
mod decisions;
mod files;
mod locks;
mod outcomes;
mod props;
mod runs;

use jiff::Timestamp;
use jiff::civil::Date;
use offerloop_domain::{ActionId, CustomerId, Decision, Group, Probability};
use offerloop_store::{SqliteStore, Store};

/// A timestamp from RFC 3339 text.
pub fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// A date from `YYYY-MM-DD`.
pub fn day(text: &str) -> Date {
    text.parse().unwrap()
}

/// A fresh in-memory store with the run of `winback` on 2026-11-29; returns the store and the run id.
pub fn store_with_run() -> (SqliteStore, i64) {
    let store = SqliteStore::in_memory().unwrap();
    let run = store
        .begin_run("winback", day("2026-11-29"), at("2026-11-29T06:00:00Z"))
        .unwrap();
    (store, run.id)
}

/// A decision of `winback` for `customer`, decided at second `second` of 2026-11-29 08:00 UTC.
pub fn decision(id: &str, customer: &str, second: i64) -> Decision {
    Decision {
        id: id.to_owned(),
        use_case: "winback".to_owned(),
        customer_id: CustomerId::new(customer).unwrap(),
        decided_at: at("2026-11-29T08:00:00Z") + jiff::SignedDuration::from_secs(second),
        group: Group::Treatment,
        action: ActionId(7),
        propensity: Probability::new(0.25).unwrap(),
        policy_version: "linucb@3".to_owned(),
        planned_send_at: None,
        cost: 0.5,
    }
}
