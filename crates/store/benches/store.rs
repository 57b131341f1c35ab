//! Store throughput: `record_decisions` of 100,000 decisions in one call (decisions/s), into a fresh
//! file store (WAL, `synchronous = NORMAL`, as `offerloop run` uses it) and into memory; and reading
//! them back with `decisions`.
//!
//! Run: `cargo bench -p offerloop-store --bench store`. With `OFFERLOOP_BENCH_MILLION=1` it first
//! times one `record_decisions` of 1,000,000 decisions into a fresh file store and prints it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use offerloop_domain::{ActionId, CustomerId, Decision, Group, Probability};
use offerloop_store::{SqliteStore, Store};

const COUNT: usize = 100_000;

fn decisions(count: usize) -> Vec<Decision> {
    let start: Timestamp = "2026-11-29T08:00:00Z".parse().unwrap();
    (0..count)
        .map(|i| Decision {
            id: format!("winback/2026-11-29/customer-{i:07}"),
            use_case: "winback".to_owned(),
            customer_id: CustomerId::new(format!("customer-{i:07}")).unwrap(),
            decided_at: start + SignedDuration::from_micros(i64::try_from(i).unwrap()),
            group: if i % 10 == 0 { Group::Control } else { Group::Treatment },
            action: ActionId(u64::try_from(i % 36).unwrap()),
            propensity: Probability::new(0.8).unwrap(),
            policy_version: "linucb@42".to_owned(),
            planned_send_at: (i % 2 == 0).then(|| start + SignedDuration::from_hours(9)),
            cost: 0.25,
        })
        .collect()
}

fn fresh(dir: &tempfile::TempDir, n: &mut u32) -> (SqliteStore, i64) {
    *n += 1;
    let store = SqliteStore::open(&dir.path().join(format!("state-{n}.db"))).unwrap();
    let run = store
        .begin_run(
            "winback",
            "2026-11-29".parse().unwrap(),
            "2026-11-29T06:00:00Z".parse().unwrap(),
        )
        .unwrap();
    (store, run.id)
}

/// One timed `record_decisions` of a million decisions (a single measurement, not a criterion bench:
/// one takes seconds).
fn million(dir: &tempfile::TempDir, n: &mut u32) {
    let all = decisions(1_000_000);
    let (store, run) = fresh(dir, n);
    let started = std::time::Instant::now();
    assert_eq!(store.record_decisions(run, &all).unwrap(), all.len());
    let elapsed = started.elapsed();
    eprintln!(
        "record_decisions of 1,000,000 decisions into a file store: {:.2} s ({:.0} decisions/s)",
        elapsed.as_secs_f64(),
        1e6 / elapsed.as_secs_f64()
    );
}

fn bench(c: &mut Criterion) {
    let all = decisions(COUNT);
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    if std::env::var_os("OFFERLOOP_BENCH_MILLION").is_some() {
        million(&dir, &mut n);
    }
    let mut group = c.benchmark_group("store");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(u64::try_from(COUNT).unwrap()));

    group.bench_function("record_decisions/file/100k", |b| {
        b.iter_batched(
            || fresh(&dir, &mut n),
            |(store, run)| {
                assert_eq!(store.record_decisions(run, black_box(&all)).unwrap(), COUNT);
                store
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("record_decisions/memory/100k", |b| {
        b.iter_batched(
            || {
                let store = SqliteStore::in_memory().unwrap();
                let run = store
                    .begin_run(
                        "winback",
                        "2026-11-29".parse().unwrap(),
                        "2026-11-29T06:00:00Z".parse().unwrap(),
                    )
                    .unwrap();
                (store, run.id)
            },
            |(store, run)| {
                assert_eq!(store.record_decisions(run, black_box(&all)).unwrap(), COUNT);
                store
            },
            BatchSize::PerIteration,
        );
    });
    let (store, run) = fresh(&dir, &mut n);
    store.record_decisions(run, &all).unwrap();
    group.bench_function("decisions/file/100k", |b| {
        b.iter(|| assert_eq!(store.decisions(black_box(run)).unwrap().len(), COUNT));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
