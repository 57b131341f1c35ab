//! Store throughput: `record_decisions` of 100,000 decisions in one call (decisions/s), into a fresh
//! file store (WAL, `synchronous = NORMAL`, as `offerloop run` uses it), into memory and into
//! PostgreSQL; reading them back with `decisions`; `plan_batches` of 2,000 batches of 50 recipients
//! in one call (batches/s) and 1,000 `mark_batch` calls one after the other (marks/s), on a file
//! store and on PostgreSQL.
//!
//! PostgreSQL: `OFFERLOOP_BENCH_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`; `skip`
//! to leave PostgreSQL out) names the database; each benchmark uses a schema of its own
//! (`bench_<pid>_<n>`, dropped at the end), and every iteration a new run in it, so the tables grow
//! across iterations as a store's history does (a file store starts empty each iteration).
//!
//! Run: `cargo bench -p offerloop-store --bench store`. With `OFFERLOOP_BENCH_MILLION=1` it first
//! times one `record_decisions` of 1,000,000 decisions into a fresh file store (and PostgreSQL) and
//! prints it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use offerloop_domain::{ActionId, CustomerId, Decision, Group, Probability};
use offerloop_store::{
    BatchMark, BatchRecord, BatchState, BatchTarget, DEFAULT_PASSWORD_ENV, PostgresConfig, PostgresStore, SqliteStore,
    Store,
};

const COUNT: usize = 100_000;
const BATCHES: usize = 2_000;
const MARKS: usize = 1_000;

fn decisions(count: usize) -> Vec<Decision> {
    decisions_of("2026-11-29", 0, count)
}

/// `count` decisions with ids unique to `prefix`, decided `day` days after 2026-11-29 (a store's
/// history grows at the end of its time index, as days go by).
fn decisions_of(prefix: &str, day: i64, count: usize) -> Vec<Decision> {
    let start: Timestamp = "2026-11-29T08:00:00Z".parse().unwrap();
    let start = start + SignedDuration::from_hours(24 * day);
    (0..count)
        .map(|i| Decision {
            id: format!("winback/{prefix}/customer-{i:07}"),
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

/// `count` planned batches of 50 recipients of `run_id`, with ids unique to the run.
fn batches(run_id: i64, count: usize) -> Vec<BatchRecord> {
    (0..count)
        .map(|i| {
            let recipients: Vec<String> = (0..50).map(|r| format!("customer-{:07}", i * 50 + r)).collect();
            let request = serde_json::json!({
                "campaign_id": "8f14e45f-ceea-467f-a0e6-b2b3c4d5e6f7",
                "recipients": recipients
                    .iter()
                    .map(|id| serde_json::json!({"external_user_id": id, "trigger_properties": {"offer": "ten_percent"}}))
                    .collect::<Vec<_>>(),
            });
            BatchRecord {
                id: format!("run-{run_id}/batch-{i:05}"),
                run_id,
                target: BatchTarget::Campaign("8f14e45f-ceea-467f-a0e6-b2b3c4d5e6f7".to_owned()),
                decision_ids: recipients.iter().map(|c| format!("winback/{c}")).collect(),
                request: request.to_string(),
                state: BatchState::Planned,
                detail: None,
                retryable: false,
                dry_run: false,
                updated_at: "2026-11-29T09:00:00Z".parse().unwrap(),
            }
        })
        .collect()
}

/// A PostgreSQL store in a schema of its own, or `None` when PostgreSQL is left out.
struct Postgres {
    store: PostgresStore,
    url: String,
    /// Runs begun so far (each iteration takes a new date).
    runs: std::cell::Cell<u32>,
}

impl Postgres {
    fn connect(name: &str) -> Option<Self> {
        let url = std::env::var("OFFERLOOP_BENCH_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        if url == "skip" {
            return None;
        }
        let schema = format!("bench_{}_{name}", std::process::id());
        let config = PostgresConfig::parse(&url, DEFAULT_PASSWORD_ENV)
            .unwrap()
            .with_schema(&schema)
            .unwrap();
        let store = PostgresStore::connect(&config).unwrap_or_else(|e| {
            panic!("PostgreSQL at {url}: {e} (set OFFERLOOP_BENCH_POSTGRES to another server, or to `skip`)")
        });
        Some(Self {
            store,
            url,
            runs: std::cell::Cell::new(0),
        })
    }

    /// A new run (a new date of `winback`).
    fn run(&self) -> i64 {
        self.runs.set(self.runs.get() + 1);
        let date = jiff::civil::date(2020, 1, 1) + jiff::Span::new().days(i64::from(self.runs.get()));
        self.store
            .begin_run("winback", date, "2026-11-29T06:00:00Z".parse().unwrap())
            .unwrap()
            .id
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let schema = self.store.config().schema().to_owned();
        let Ok(mut config) = self.url.parse::<tokio_postgres::Config>() else {
            return;
        };
        if let Ok(password) = std::env::var(DEFAULT_PASSWORD_ENV) {
            config.password(password);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            if let Ok((client, connection)) = config.connect(tokio_postgres::NoTls).await {
                tokio::spawn(connection);
                let _ = client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await;
            }
        });
    }
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
    if let Some(pg) = Postgres::connect("million") {
        let run = pg.run();
        let started = std::time::Instant::now();
        assert_eq!(pg.store.record_decisions(run, &all).unwrap(), all.len());
        let elapsed = started.elapsed();
        eprintln!(
            "record_decisions of 1,000,000 decisions into PostgreSQL: {:.2} s ({:.0} decisions/s)",
            elapsed.as_secs_f64(),
            1e6 / elapsed.as_secs_f64()
        );
    }
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
    if let Some(pg) = Postgres::connect("decisions") {
        group.bench_function("record_decisions/postgres/100k", |b| {
            b.iter_batched(
                || {
                    let run = pg.run();
                    (run, decisions_of(&run.to_string(), run, COUNT))
                },
                |(run, decisions)| {
                    assert_eq!(pg.store.record_decisions(run, black_box(&decisions)).unwrap(), COUNT);
                    decisions
                },
                BatchSize::PerIteration,
            );
        });
        let run = pg.run();
        pg.store
            .record_decisions(run, &decisions_of("read", run, COUNT))
            .unwrap();
        group.bench_function("decisions/postgres/100k", |b| {
            b.iter(|| assert_eq!(pg.store.decisions(black_box(run)).unwrap().len(), COUNT));
        });
    }
    let (store, run) = fresh(&dir, &mut n);
    store.record_decisions(run, &all).unwrap();
    group.bench_function("decisions/file/100k", |b| {
        b.iter(|| assert_eq!(store.decisions(black_box(run)).unwrap().len(), COUNT));
    });
    group.finish();

    let mut group = c.benchmark_group("ledger");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(u64::try_from(BATCHES).unwrap()));
    group.bench_function("plan_batches/file/2k", |b| {
        b.iter_batched(
            || {
                let (store, run) = fresh(&dir, &mut n);
                (store, batches(run, BATCHES))
            },
            |(store, batches)| {
                store.plan_batches(black_box(&batches)).unwrap();
                store
            },
            BatchSize::PerIteration,
        );
    });
    let pg = Postgres::connect("ledger");
    if let Some(pg) = &pg {
        group.bench_function("plan_batches/postgres/2k", |b| {
            b.iter_batched(
                || batches(pg.run(), BATCHES),
                |batches| pg.store.plan_batches(black_box(&batches)).unwrap(),
                BatchSize::PerIteration,
            );
        });
    }
    group.throughput(Throughput::Elements(u64::try_from(MARKS).unwrap()));
    let sending = BatchMark::sending();
    let now: Timestamp = "2026-11-29T09:00:01Z".parse().unwrap();
    group.bench_function("mark_batch/file/1k", |b| {
        b.iter_batched(
            || {
                let (store, run) = fresh(&dir, &mut n);
                let planned = batches(run, MARKS);
                store.plan_batches(&planned).unwrap();
                (store, planned)
            },
            |(store, planned)| {
                for batch in &planned {
                    store.mark_batch(&batch.id, &sending, now).unwrap();
                }
                store
            },
            BatchSize::PerIteration,
        );
    });
    if let Some(pg) = &pg {
        group.bench_function("mark_batch/postgres/1k", |b| {
            b.iter_batched(
                || {
                    let planned = batches(pg.run(), MARKS);
                    pg.store.plan_batches(&planned).unwrap();
                    planned
                },
                |planned| {
                    for batch in &planned {
                        pg.store.mark_batch(&batch.id, &sending, now).unwrap();
                    }
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
