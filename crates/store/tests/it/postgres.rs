//! What only the PostgreSQL store has: its schema's migrations (concurrent, refused when newer or
//! foreign), the password kept out of every message, advisory locks that die with their
//! connection or process, `SKIP LOCKED` leases, and its own runtime called from inside others.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use offerloop_store::{DEFAULT_PASSWORD_ENV, Error, PostgresConfig, PostgresStore, ShardPlan, Store};
use secrecy::SecretString;
use serde_json::json;

use crate::locks::{assert_busy, holder};
use crate::{at, backend, day, decision, with_run};

/// Runs `check` until it returns true, for at most `limit`.
fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn a_new_schema_is_created_and_migrated_once_by_stores_connecting_at_once() {
    let Some(config) = backend::config() else {
        return;
    };
    let stores: Vec<PostgresStore> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| PostgresStore::connect(&config).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for store in &stores {
        assert_eq!(store.schema_version().unwrap(), PostgresStore::SCHEMA_VERSION);
    }
    let versions = backend::query(config.schema(), "SELECT version::text FROM offerloop_schema");
    assert_eq!(
        versions,
        [Some(PostgresStore::SCHEMA_VERSION.to_string())],
        "one version row"
    );
    // Each sees the others' writes; connecting again changes nothing.
    let run = stores[0]
        .begin_run("winback", day("2026-11-29"), at("2026-11-29T06:00:00Z"))
        .unwrap();
    assert_eq!(stores[3].run("winback", day("2026-11-29")).unwrap(), Some(run.clone()));
    let again = PostgresStore::connect(&config).unwrap();
    assert_eq!(again.run("winback", day("2026-11-29")).unwrap(), Some(run));
    const { assert!(PostgresStore::SCHEMA_VERSION >= 1) };
}

#[test]
fn a_schema_from_a_newer_offerloop_is_refused_untouched() {
    let Some(config) = backend::config() else {
        return;
    };
    let store = PostgresStore::connect(&config).unwrap();
    let run = with_run(&store);
    drop(store);
    backend::execute(config.schema(), "UPDATE offerloop_schema SET version = 99");
    match PostgresStore::connect(&config) {
        Err(error @ Error::SchemaTooNew { found: 99, .. }) => {
            assert!(error.to_string().contains("upgrade offerloop"), "{error}");
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert_eq!(
        backend::query(config.schema(), "SELECT id::text FROM runs"),
        [Some(run.to_string())]
    );
}

#[test]
fn a_schema_holding_another_programs_tables_is_refused_untouched() {
    let Some(config) = backend::config() else {
        return;
    };
    let schema = config.schema().to_owned();
    backend::execute(
        "public",
        &format!("CREATE SCHEMA {schema}; CREATE TABLE {schema}.invoices (id int)"),
    );
    let err = PostgresStore::connect(&config).unwrap_err();
    assert!(matches!(err, Error::Foreign { tables: 1 }), "{err}");
    assert!(err.to_string().contains("not an offerloop store"), "{err}");
    assert_eq!(
        backend::query(
            &schema,
            &format!("SELECT tablename::text FROM pg_tables WHERE schemaname = '{schema}'")
        ),
        [Some("invoices".to_owned())]
    );
}

/// The password is in no error, `Debug` or display of the configuration, the store or a failed
/// connection.
#[test]
fn the_password_never_shows() {
    const SECRET: &str = "pw-5b1e0c-never-shown";
    let secret = || Some(SecretString::from(SECRET));
    // A server that is not there: the connection error names the operation, not the password.
    let nowhere =
        PostgresConfig::from_url("postgres://offerloop@127.0.0.1:1/loop?connect_timeout=2", "X", secret()).unwrap();
    let err = PostgresStore::connect(&nowhere).unwrap_err();
    assert!(matches!(err, Error::Pool { .. }), "{err:?}");
    let text = format!("{err} {err:?} {nowhere:?} {}", nowhere.display());
    assert!(text.contains("migrate the schema"), "{text}");
    assert!(!text.contains(SECRET), "{text}");
    let Some(config) = backend::config() else {
        return;
    };
    // A real store (the test server trusts the user, or the password from the environment is the
    // right one: either way a wrong one is only shown if it leaks).
    let config = match std::env::var(DEFAULT_PASSWORD_ENV) {
        Ok(_) => config,
        Err(_) => config.with_password(secret()),
    };
    let store = PostgresStore::connect(&config).unwrap();
    let shown = format!("{store:?} {:?} {}", store.config(), store.config().display());
    assert!(!shown.contains(SECRET), "{shown}");
    if let Ok(password) = std::env::var(DEFAULT_PASSWORD_ENV) {
        assert!(!shown.contains(&password), "{shown}");
    }
    let err = store.record_decisions(9999, &[decision("d", "c", 0)]).unwrap_err();
    assert!(!format!("{err} {err:?}").contains(SECRET));
}

#[test]
fn a_store_is_used_and_dropped_inside_async_runtimes() {
    let Some(config) = backend::config() else {
        return;
    };
    // A current-thread runtime: the store's calls block this thread, and run on the store's own.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = PostgresStore::connect(&config).unwrap();
            let run = with_run(&store);
            assert_eq!(store.record_decisions(run, &[decision("d", "c", 0)]).unwrap(), 1);
            let lock = store.lock_use_case("winback", &holder("offerloop run", 1)).unwrap();
            drop(store);
            // The lock outlives its store, and is released inside the runtime.
            drop(lock);
        });
    // A multi-thread runtime, from a worker thread and from `block_in_place`.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = std::sync::Arc::new(PostgresStore::connect(&config).unwrap());
            let moved = std::sync::Arc::clone(&store);
            tokio::spawn(async move { moved.decisions(1).unwrap().len() })
                .await
                .unwrap();
            tokio::task::block_in_place(|| store.lock_use_case("winback", &holder("offerloop run", 2)).unwrap());
            let blocking = std::sync::Arc::clone(&store);
            tokio::task::spawn_blocking(move || blocking.decisions(1).unwrap().len())
                .await
                .unwrap();
        });
}

/// Two stores (two processes) in one schema: the lock is the database's, not the store's.
#[test]
fn a_use_case_lock_is_shared_by_every_store_of_the_schema_and_not_by_other_schemas() {
    let Some(config) = backend::config() else {
        return;
    };
    let first = PostgresStore::connect(&config).unwrap();
    let second = PostgresStore::connect(&config).unwrap();
    let held = first.lock_use_case("winback", &holder("offerloop run", 4242)).unwrap();
    assert_busy(
        second.lock_use_case("winback", &holder("offerloop report", 7)),
        "`offerloop run` (pid 4242 on host host-a, since 2026-12-07T06:00:00Z)",
    );
    // Another schema of the same database is another store.
    let elsewhere = PostgresStore::connect(&backend::config().unwrap()).unwrap();
    drop(elsewhere.lock_use_case("winback", &holder("offerloop run", 5)).unwrap());
    drop(held);
    let taken = second.lock_use_case("winback", &holder("offerloop report", 7)).unwrap();
    assert_eq!(taken.use_case(), "winback");
    assert_busy(first.lock_use_case("winback", &holder("offerloop run", 8)), "pid 7");
}

/// The server ends the lock's connection (an administrator, a network failure noticed): the lock
/// is free, and the next holder takes it over.
#[test]
fn a_lock_whose_connection_dies_is_released() {
    let Some(config) = backend::config() else {
        return;
    };
    let store = PostgresStore::connect(&config).unwrap();
    let held = store.lock_use_case("winback", &holder("offerloop run", 1)).unwrap();
    // The server's view of a 64-bit advisory key: its high and low halves, `objsubid` 1.
    let key = u64::from_ne_bytes(store.lock_key("winback").to_ne_bytes());
    let killed = backend::query(
        "public",
        &format!(
            "SELECT pg_terminate_backend(pid)::text FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND classid = {} AND objid = {} AND objsubid = 1 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            key >> 32,
            key & 0xffff_ffff
        ),
    );
    assert_eq!(killed, [Some("true".to_owned())], "one connection holds the lock");
    assert!(
        eventually(Duration::from_secs(10), || store
            .lock_use_case("winback", &holder("offerloop run", 2))
            .is_ok()),
        "the lock of a terminated connection is free"
    );
    // Dropping the dead guard is harmless.
    drop(held);
}

/// The environment variable that makes [`lock_holder_child`] hold a lock.
const CHILD: &str = "OFFERLOOP_IT_LOCK_CHILD";

/// Not a test of its own: the process that `a_lock_held_by_a_killed_process_is_released` starts
/// (this binary again, running only this function, with [`CHILD`] set to the store's URL). It takes
/// the lock, says so, and waits to be killed.
#[test]
fn lock_holder_child() {
    let Ok(url) = std::env::var(CHILD) else {
        return;
    };
    let config = PostgresConfig::parse(&url, DEFAULT_PASSWORD_ENV).unwrap();
    let store = PostgresStore::connect(&config).unwrap();
    let _lock = store
        .lock_use_case("winback", &holder("offerloop child", std::process::id()))
        .unwrap();
    let mut out = std::io::stdout();
    writeln!(out, "child-holds-the-lock").unwrap();
    out.flush().unwrap();
    std::thread::sleep(Duration::from_secs(600));
}

/// A process holding the lock is killed with SIGKILL: its operating system closes its socket, the
/// server ends its session and the lock is free at once; the next runner takes it over.
#[test]
fn a_lock_held_by_a_killed_process_is_released() {
    let Some(config) = backend::config() else {
        return;
    };
    let store = PostgresStore::connect(&config).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "postgres::lock_holder_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, config.display())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (said, heard) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("child-holds-the-lock") {
                let _ = said.send(());
            }
        }
    });
    if heard.recv_timeout(Duration::from_secs(60)).is_err() {
        child.kill().unwrap();
        panic!("the child never took the lock");
    }
    assert_busy(
        store.lock_use_case("winback", &holder("offerloop run", 2)),
        &format!("pid {}", child.id()),
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || store
            .lock_use_case("winback", &holder("offerloop run", 2))
            .is_ok()),
        "the lock of a killed process is free"
    );
}

fn one_shard_plan(run_id: i64, shards: u32) -> ShardPlan {
    ShardPlan {
        run_id,
        shards,
        shard_size: 10,
        customers: u64::from(shards) * 10,
        model_version: "v".to_owned(),
        fingerprint: "f".to_owned(),
        planned_at: at("2026-11-29T07:00:00Z"),
        prepared: json!({}),
    }
}

/// A shard row locked by another transaction (a worker in the middle of leasing it) is skipped at
/// once, not waited for.
#[test]
fn a_lease_skips_a_shard_another_transaction_has_locked() {
    let Some(config) = backend::config() else {
        return;
    };
    let store = PostgresStore::connect(&config).unwrap();
    let run = with_run(&store);
    store.plan_shards(&one_shard_plan(run, 3)).unwrap();
    let leased = backend::with_connection(config.schema(), async |client| {
        client
            .batch_execute(&format!(
                "BEGIN; SELECT * FROM shards WHERE run_id = {run} AND shard = 0 FOR UPDATE"
            ))
            .await
            .unwrap();
        let started = Instant::now();
        let store = &store;
        let lease = std::thread::scope(|scope| {
            scope
                .spawn(|| store.lease_shard(run, "worker-b", Duration::from_secs(60), at("2026-11-29T07:00:00Z")))
                .join()
                .unwrap()
        })
        .unwrap()
        .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5), "the lease did not wait");
        client.batch_execute("ROLLBACK").await.unwrap();
        lease
    });
    assert_eq!((leased.shard, leased.token), (1, 1));
    // Released, shard 0 is the next one.
    let next = store
        .lease_shard(run, "worker-c", Duration::from_secs(60), at("2026-11-29T07:00:00Z"))
        .unwrap()
        .unwrap();
    assert_eq!(next.shard, 0);
}

/// Two stores (two worker processes) lease concurrently until nothing is left: every shard once.
#[test]
fn two_stores_leasing_at_once_never_get_the_same_shard() {
    let Some(config) = backend::config() else {
        return;
    };
    let stores = [
        PostgresStore::connect(&config).unwrap(),
        PostgresStore::connect(&config).unwrap(),
    ];
    let run = with_run(&stores[0]);
    let shards = 200;
    stores[0].plan_shards(&one_shard_plan(run, shards)).unwrap();
    let leased: Vec<(usize, u32)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let store = &stores[t % 2];
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    while let Some(lease) = store
                        .lease_shard(
                            run,
                            &format!("w{t}"),
                            Duration::from_secs(60),
                            at("2026-11-29T07:00:00Z"),
                        )
                        .unwrap()
                    {
                        mine.push((t, lease.shard));
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut numbers: Vec<u32> = leased.iter().map(|(_, s)| *s).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (0..shards).collect::<Vec<_>>(), "each shard exactly once");
    let by_thread = |t: usize| leased.iter().filter(|(w, _)| *w == t).count();
    assert!((0..4).filter(|t| by_thread(*t) > 0).count() >= 2, "the work was shared");
    // Every lease is recorded with its holder.
    for shard in stores[1].shards(run).unwrap() {
        let (t, _) = leased.iter().find(|(_, s)| *s == shard.shard).unwrap();
        assert_eq!(shard.holder, Some(format!("w{t}")));
    }
}

/// Bulk writes larger than one statement's chunk keep the order given and count new rows once.
#[test]
fn bulk_writes_larger_than_a_chunk_keep_their_order_and_count() {
    let Some(store) = backend::postgres() else {
        return;
    };
    let run = with_run(&store);
    let decisions: Vec<_> = (0..45_000)
        .map(|i| decision(&format!("d{:05}", 45_000 - i), &format!("c{i}"), i % 3600))
        .collect();
    assert_eq!(store.record_decisions(run, &decisions).unwrap(), 45_000);
    assert_eq!(store.record_decisions(run, &decisions[30_000..]).unwrap(), 0);
    let stored = store.decisions(run).unwrap();
    assert_eq!(stored.len(), 45_000);
    assert!(stored.iter().zip(&decisions).all(|(a, b)| a == b), "in the order given");
    let ids: Vec<String> = decisions.iter().map(|d| d.id.clone()).collect();
    store.mark_learned(&ids).unwrap();
    assert_eq!(store.learned_decisions(false).unwrap().len(), 45_000);
    assert!(store.learned_decisions(true).unwrap().is_empty());
}

/// The fault-injecting wrapper works over PostgreSQL too, its inspection helpers included.
#[cfg(feature = "faults")]
#[test]
fn a_faulty_store_wraps_postgres() {
    use offerloop_store::StoreLocation;
    use offerloop_store::faults::FaultyStore;
    let Some(config) = backend::config() else {
        return;
    };
    let store = FaultyStore::open(&StoreLocation::Postgres(config)).unwrap();
    let run = with_run(&store);
    store
        .record_decisions(run, &[decision("d1", "c1", 0), decision("d2", "c2", 1)])
        .unwrap();
    store.mark_learned_early(&["d1".to_owned()]).unwrap();
    assert_eq!(store.learned().unwrap().len(), 1);
    assert_eq!(store.unmonitored().unwrap().len(), 1);
    *store.fail_writes_from.lock().unwrap() = Some(store.writes() + 1);
    assert!(store.mark_learned(&["d2".to_owned()]).is_err());
    assert!(
        store
            .lease_shard(run, "w", Duration::from_secs(1), at("2026-11-29T07:00:00Z"))
            .is_err()
    );
    assert_eq!(store.learned().unwrap().len(), 1, "the failed write was not applied");
    let shared = FaultyStore::from_dyn(std::sync::Arc::new(offerloop_store::SqliteStore::in_memory().unwrap()));
    assert!(matches!(shared.learned(), Err(Error::Unsupported { .. })));
}
