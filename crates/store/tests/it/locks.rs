//! One runner per use case and store: a second holder is refused with the first one named, a
//! released or killed holder's lock is taken over. The SQLite file locks are tested here; the
//! PostgreSQL advisory locks' own cases (a killed holder, two stores) are in `postgres`.

use std::process::{Command, Stdio};
use std::time::Duration;

use offerloop_store::{Error, LockHolder, SqliteStore, Store, lock_path};

use crate::at;

pub fn holder(command: &str, pid: u32) -> LockHolder {
    LockHolder {
        command: command.to_owned(),
        pid,
        host: "host-a".to_owned(),
        since: at("2026-12-07T06:00:00Z"),
    }
}

pub fn assert_busy(result: offerloop_store::Result<offerloop_store::UseCaseLock>, by: &str) {
    match result {
        Err(err @ Error::Locked { .. }) => {
            let text = err.to_string();
            assert!(text.contains(by), "{text}");
            assert!(text.contains("winback"), "{text}");
        }
        other => panic!("expected the lock to be busy, got {other:?}"),
    }
}

#[test]
fn a_second_runner_on_the_same_file_is_refused_naming_the_holder_until_the_first_releases() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let first = SqliteStore::open(&path).unwrap();
    // Another process opening the same file: its own connection and its own lock file handle.
    let second = SqliteStore::open(&path).unwrap();
    let held = first.lock_use_case("winback", &holder("offerloop run", 4242)).unwrap();
    assert_busy(
        second.lock_use_case("winback", &holder("offerloop report", 7)),
        "`offerloop run` (pid 4242 on host host-a, since 2026-12-07T06:00:00Z)",
    );
    // Other use cases are independent.
    let other = second.lock_use_case("cross-sell", &holder("offerloop run", 7)).unwrap();
    assert_eq!(other.use_case(), "cross-sell");
    drop(held);
    let again = second.lock_use_case("winback", &holder("offerloop report", 7)).unwrap();
    assert_eq!(again.use_case(), "winback");
}

/// Both back-ends: within one store, a second holder is refused naming the first, other use cases
/// are independent, and a released lock is free at once.
fn a_second_holder_is_refused_naming_the_first_until_it_releases(store: &dyn Store) {
    let held = store.lock_use_case("winback", &holder("offerloop run", 4242)).unwrap();
    assert_eq!(held.use_case(), "winback");
    assert_busy(
        store.lock_use_case("winback", &holder("offerloop report", 7)),
        "`offerloop run` (pid 4242 on host host-a, since 2026-12-07T06:00:00Z)",
    );
    let other = store.lock_use_case("cross-sell", &holder("offerloop run", 7)).unwrap();
    drop(held);
    let again = store.lock_use_case("winback", &holder("offerloop report", 7)).unwrap();
    assert_busy(store.lock_use_case("winback", &holder("offerloop run", 8)), "pid 7");
    drop((again, other));
}

both!(a_second_holder_is_refused_naming_the_first_until_it_releases);

#[test]
fn an_in_memory_store_locks_within_itself() {
    let store = SqliteStore::in_memory().unwrap();
    let held = store.lock_use_case("winback", &holder("offerloop run", 1)).unwrap();
    assert_busy(
        store.lock_use_case("winback", &holder("offerloop run", 2)),
        "pid 1 on host host-a",
    );
    drop(held);
    store.lock_use_case("winback", &holder("offerloop run", 2)).unwrap();
}

/// A process holding the lock is killed with SIGKILL: its lock is free at once, and the next runner
/// takes it over (the stale holder's details are still in the file until then).
#[test]
fn a_lock_left_by_a_killed_process_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).unwrap();
    // Create the lock file, then let `flock(1)` hold it.
    drop(store.lock_use_case("winback", &holder("offerloop run", 1)).unwrap());
    let file = lock_path(&path, "winback");
    let mut child = Command::new("flock")
        .args(["--exclusive", "--no-fork"])
        .arg(&file)
        .args(["sleep", "600"])
        .stdout(Stdio::null())
        .spawn()
        .expect("flock(1) from util-linux runs this test");
    // Bounded wait for the child to take the lock.
    let mut busy = false;
    for _ in 0..200 {
        if store.lock_use_case("winback", &holder("offerloop run", 2)).is_err() {
            busy = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(busy, "the child never took the lock within 5 s");
    // What a runner holding it would have written (the lock is advisory: the file stays writable).
    std::fs::write(&file, serde_json::to_string(&holder("offerloop run", 99)).unwrap()).unwrap();
    assert_busy(store.lock_use_case("winback", &holder("offerloop run", 2)), "pid 99");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let taken = store.lock_use_case("winback", &holder("offerloop run", 2)).unwrap();
    assert_eq!(taken.use_case(), "winback");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\"pid\":2"), "the new holder is written: {text}");
}
