//! Integration tests of `offerloop-store` through the `Store` trait: round-trips of every record,
//! idempotency, the send ledger's state machine, rewards that never regress, shard leases, files,
//! migrations and crash consistency. One binary (see the crate's `Cargo.toml`) to keep link time
//! down.
//!
//! One suite, two back-ends: a test written once as `fn name(store: &dyn Store)` and listed in its
//! file's `both!` runs as `<file>::sqlite::name` (an in-memory SQLite store) and
//! `<file>::postgres::name` (a fresh schema of a PostgreSQL database created for this run, see
//! `backend`). Tests of one back-end's own features (SQLite files, PostgreSQL migrations, locks
//! and `SKIP LOCKED`) are in `files`, `locks` and `postgres`.
//!
//! PostgreSQL: `OFFERLOOP_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`) names a
//! server and a database to connect to first, where the user may create databases; the password,
//! if any, is read from `OFFERLOOP_STORE_PASSWORD`. `OFFERLOOP_TEST_POSTGRES=skip` skips the
//! PostgreSQL tests (each says so on stderr); otherwise an unreachable server fails them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// Runs each listed test function (`fn name(store: &dyn Store)`) against both back-ends, as
/// `sqlite::name` and `postgres::name` in the calling module.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&*crate::backend::sqlite());
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(store) = crate::backend::postgres() {
                        super::$name(&store);
                    }
                }
            )*
        }
    };
}

mod backend;
mod batches;
mod decisions;
mod files;
mod location;
mod locks;
mod outcomes;
mod postgres;
mod props;
mod runs;
mod workers;

use jiff::Timestamp;
use jiff::civil::Date;
use offerloop_domain::{ActionId, CustomerId, Decision, Group, Probability};
use offerloop_store::Store;

/// A timestamp from RFC 3339 text.
pub fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// A date from `YYYY-MM-DD`.
pub fn day(text: &str) -> Date {
    text.parse().unwrap()
}

/// Begins the run of `winback` on 2026-11-29 in `store`; returns its id.
pub fn with_run(store: &dyn Store) -> i64 {
    store
        .begin_run("winback", day("2026-11-29"), at("2026-11-29T06:00:00Z"))
        .unwrap()
        .id
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
