//! Reading Braze Currents at scale: 10,000,000 events of 100,000 users over 30 days, written by the
//! simulator's Currents connector (Avro files of 5 minutes or 15,000 events per event type, Braze's
//! key layout, 0.5 % duplicates, 1 % late behaviour events) into a local bucket, then read.
//!
//! `cargo xtask bench currents` (= `cargo bench -p offerloop-cli --bench currents`). Two passes:
//! 1. **Stream**: every file read, decoded and deduplicated (`Bucket::for_each_new` with the default
//!    48-hour window), each event attributed to its customer's decision (a purchase's value, within
//!    the 14-day window) as it comes; peak RSS after this pass is the streaming reader's.
//! 2. **Engine path**: what a daily run does on its first day with this bucket: `CurrentsFeed::outcomes`
//!    (every purchase and custom event, checkpoint empty), then `attribute` over 100,000 decisions,
//!    and `CurrentsFeed::message_events` for the last three days (a delivery grace period).
//!
//! The bucket is generated once under `target/bench-data/` and reused. Environment:
//! `CURRENTS_EVENTS` (default 10,000,000), `CURRENTS_USERS` (default 100,000).

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};
use offerloop_currents::{Bucket, Dedupe, EventType, Select};
use offerloop_domain::{ActionId, CustomerId, Decision, Group, Probability};
use offerloop_engine::{CurrentsFeed, OutcomeSource as _};
use offerloop_sim::state::currents::records::Identity;
use offerloop_sim::state::currents::{Currents, CurrentsConfig};
use offerloop_sim::state::{Event, EventKind, MessageRef};
use offerloop_sim::world::Channel;
use offerloop_store::{SqliteStore, Store};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USE_CASE: &str = include_str!("../../../examples/winback.toml");
const START: &str = "2026-01-05T00:00:00Z";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[path = "support/rss.rs"]
#[allow(dead_code)]
mod rss;

/// Peak resident set size of this process so far, in MiB.
fn peak_rss_mib() -> f64 {
    rss::peak_rss_mib("self")
}

fn user(u: usize) -> String {
    format!("cust-{u:07}")
}

/// Writes `events` Currents records of `users` users over 30 days under `dir` (skipped when a
/// previous run finished it).
fn generate(dir: &Path, events: usize, users: usize) -> CurrentsConfig {
    let config = CurrentsConfig {
        seed: 7,
        ..CurrentsConfig::new(dir)
    };
    let done = dir.join("done");
    if done.exists() {
        return config;
    }
    let _ = std::fs::remove_dir_all(dir);
    let started = Instant::now();
    let mut feed = Currents::new(config.clone());
    let start: Timestamp = START.parse().unwrap();
    let span = SignedDuration::from_hours(30 * 24).as_secs_f64();
    let message = |channel, d: usize| {
        Arc::new(MessageRef {
            campaign_id: Some("winback-email".into()),
            canvas_id: None,
            canvas_step_id: None,
            message_variation_id: Some("variant-a".into()),
            dispatch_id: format!("dispatch-{d}"),
            send_id: None,
            channel,
        })
    };
    let mut next_flush = start + SignedDuration::from_hours(1);
    let mut written = 0;
    let mut i = 0_usize;
    while written < events {
        let at = start + SignedDuration::from_secs_f64(span * written as f64 / events as f64);
        if at >= next_flush {
            feed.flush(at).unwrap();
            next_flush = at + SignedDuration::from_hours(1);
        }
        let u = (i.wrapping_mul(2_654_435_761)) % users;
        let (kind, channel) = match i % 20 {
            0 | 1 => (
                EventKind::Purchase {
                    product_id: "sku-1".into(),
                    price: 19.99,
                    currency: "USD".into(),
                    quantity: 1,
                },
                None,
            ),
            2 => (
                EventKind::CustomEvent {
                    name: "points_redeemed".into(),
                    properties: serde_json::Map::new(),
                },
                None,
            ),
            3..=7 => (EventKind::Send, Some(Channel::Email)),
            8..=12 => (EventKind::Delivery, Some(Channel::Email)),
            13..=15 => (EventKind::Open, Some(Channel::Email)),
            16 => (EventKind::Click, Some(Channel::Email)),
            17 => (EventKind::Send, Some(Channel::Push)),
            18 => (EventKind::Open, Some(Channel::Push)),
            _ => (EventKind::Bounce, Some(Channel::Email)),
        };
        let event = Event {
            time: at,
            external_user_id: user(u),
            kind,
            message: channel.map(|c| message(c, u)),
        };
        let braze_id = format!("{u:024x}");
        feed.push(
            &event,
            &Identity {
                user_id: &braze_id,
                timezone: Some("America/New_York"),
            },
        );
        written += 1;
        i += 1;
    }
    feed.flush(start + SignedDuration::from_hours(40 * 24)).unwrap();
    std::fs::write(
        &done,
        format!("{events} events of {users} users, {} files\n", feed.files_written()),
    )
    .unwrap();
    eprintln!(
        "generated {events} events ({} files) in {:.1} s",
        feed.files_written(),
        started.elapsed().as_secs_f64()
    );
    config
}

fn decisions(users: usize, at: Timestamp) -> Vec<Decision> {
    (0..users)
        .map(|u| Decision {
            id: format!("d-{u}"),
            use_case: "winback-lapsed-90d".into(),
            customer_id: CustomerId::new(user(u)).unwrap(),
            decided_at: at,
            group: Group::Treatment,
            action: ActionId(0),
            propensity: Probability::new(0.5).unwrap(),
            policy_version: "bench".into(),
            planned_send_at: None,
            cost: 0.0,
        })
        .collect()
}

fn bytes_under(dir: &Path) -> (u64, usize) {
    let (mut bytes, mut files) = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else if entry.path().extension().is_some_and(|e| e == "avro") {
                bytes += meta.len();
                files += 1;
            }
        }
    }
    (bytes, files)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let events = env("CURRENTS_EVENTS", 10_000_000);
    let users = env("CURRENTS_USERS", 100_000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-data");
    let dir = root.join(format!("currents-{events}-{users}"));
    let config = generate(&dir, events, users);
    let (bytes, files) = bytes_under(&config.prefix_dir());
    let url = url::Url::from_directory_path(std::path::absolute(config.prefix_dir()).unwrap())
        .unwrap()
        .to_string();
    println!(
        "bucket: {files} files, {:.1} MiB, {events} events written (duplicates included) of {users} users",
        bytes as f64 / 1_048_576.0
    );
    let start: Timestamp = START.parse().unwrap();
    let window = SignedDuration::from_hours(14 * 24);

    // Pass 1: stream, deduplicate, attribute as events come.
    let baseline = peak_rss_mib();
    let started = Instant::now();
    let bucket = Bucket::open(&url).unwrap();
    let decided: HashMap<String, Timestamp> = (0..users).map(|u| (user(u), start)).collect();
    let mut revenue: HashMap<&str, f64> = HashMap::new();
    let mut by_type: HashMap<String, usize> = HashMap::new();
    let mut dedupe = Dedupe::default();
    let read = bucket
        .for_each_new(&HashSet::new(), &mut dedupe, &Select::all(), |file, event| {
            *by_type.entry(file.parsed.event_type.clone()).or_default() += 1;
            if event.event_type == EventType::Purchase
                && let Some((customer, decided_at)) =
                    event.external_user_id.as_deref().and_then(|c| decided.get_key_value(c))
                && event.time >= *decided_at
                && event.time < *decided_at + window
            {
                *revenue.entry(customer.as_str()).or_default() += event.price.unwrap_or(0.0);
            }
        })
        .await
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    let r = &read.report;
    println!(
        "stream: {} files, {} events kept, {} duplicates dropped, {} customers with revenue in {:.1} s ({:.0} events/s); peak RSS {:.0} MiB (before: {:.0} MiB), dedupe window holds {} ids at the end",
        r.files_read,
        r.events,
        r.duplicates,
        revenue.len(),
        secs,
        (r.events + r.duplicates) as f64 / secs,
        peak_rss_mib(),
        baseline,
        dedupe.len()
    );
    drop(revenue);

    // Pass 2: the engine's path on the first run over this bucket.
    let tmp = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&tmp.path().join("state.db")).unwrap());
    let use_case = offerloop_domain::config::parse_use_case(USE_CASE, "winback.toml").unwrap();
    let feed = CurrentsFeed::open(&url, store).unwrap();
    let end = start + SignedDuration::from_hours(30 * 24);
    let started = Instant::now();
    let outcomes = feed.outcomes(&use_case, start, end).await.unwrap();
    let read_secs = started.elapsed().as_secs_f64();
    let decisions = decisions(users, start);
    let rewards = offerloop_domain::attribution::attribute(&use_case.metric, &decisions, &outcomes, end);
    let attribute_secs = started.elapsed().as_secs_f64() - read_secs;
    let grace_from = end - SignedDuration::from_hours(3 * 24);
    let messages = feed
        .message_events(&use_case, grace_from, end)
        .await
        .unwrap()
        .unwrap_or_default();
    let total = started.elapsed().as_secs_f64();
    println!(
        "engine: {} outcomes read in {:.1} s, {} rewards attributed in {:.1} s, {} message events of the last 3 days in {:.1} s; total {:.1} s; peak RSS {:.0} MiB",
        outcomes.len(),
        read_secs,
        rewards.len(),
        attribute_secs,
        messages.len(),
        total - read_secs - attribute_secs,
        total,
        peak_rss_mib()
    );
    for (t, n) in {
        let mut v: Vec<_> = by_type.into_iter().collect();
        v.sort();
        v
    } {
        println!("  {t}: {n}");
    }
}
