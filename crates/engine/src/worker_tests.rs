//! Tests of a day shared by workers ([`crate::DailyRun::work`]) on the real store in memory: the
//! shards decide what one process decides, every batch is sent once, a dead worker's shard is taken
//! over without a second send, and a worker of another version refuses to join.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use offerloop_store::{BatchState, RunPhase, ShardState, Store};

use crate::testing::FakeActivator;
use crate::tests::{CUSTOMERS, DAY, braze, run, use_case, world};
use crate::{Clock as _, DailyRun, Error, WorkerOptions};

/// Options of worker `n` with shards of 50 customers (240 customers: 5 shards).
fn worker(w: &crate::tests::World, n: usize) -> WorkerOptions {
    WorkerOptions {
        shard_size: 50,
        lease_ttl: Duration::from_secs(60),
        poll: Duration::from_millis(5),
        ..WorkerOptions::new(format!("test-worker-{n}"), w.clock.now())
    }
}

/// Each decision's (id, action, propensity, group) in a store's run.
fn decided(store: &dyn Store, run_id: i64) -> BTreeMap<String, (u64, String, String)> {
    store
        .decisions(run_id)
        .unwrap()
        .into_iter()
        .map(|d| {
            (
                d.id.clone(),
                (
                    d.action.0,
                    format!("{:.12}", d.propensity.get()),
                    format!("{:?}", d.group),
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_workers_share_a_day_and_decide_and_send_what_one_process_does() {
    // One process, for reference.
    let alone = world();
    let solo = run(&alone, braze(), Arc::new(FakeActivator::default()), DAY)
        .execute()
        .await
        .unwrap();

    let w = world();
    let activator = Arc::new(FakeActivator::default());
    let day = run(&w, braze(), activator.clone(), DAY);
    let workers: Vec<WorkerOptions> = (0..4).map(|n| worker(&w, n)).collect();
    let reports = futures::future::try_join_all(workers.iter().map(|o| day.work(o)))
        .await
        .unwrap();

    assert_eq!(
        reports.iter().filter(|r| r.planned).count(),
        1,
        "one planner: {reports:?}"
    );
    assert_eq!(reports.iter().filter(|r| r.finished).count(), 1, "one finisher");
    let mut shards: Vec<u32> = reports.iter().flat_map(|r| r.shards.clone()).collect();
    shards.sort_unstable();
    assert_eq!(shards, vec![0, 1, 2, 3, 4], "every shard worked once");

    let summary = &reports[0].summary;
    assert!(reports.iter().all(|r| &r.summary == summary), "one summary for the day");
    assert_eq!(summary.audience, CUSTOMERS as u64);
    assert_eq!(summary.decisions, solo.decisions);
    assert_eq!(summary.messages, solo.messages);
    assert_eq!(summary.groups, solo.groups);
    assert_eq!(summary.guardrails, solo.guardrails);
    assert_eq!(
        decided(w.store.as_ref(), summary.run_id),
        decided(alone.store.as_ref(), solo.run_id),
        "the shards decide exactly what one process decides"
    );

    let batches = w.store.batches(summary.run_id).unwrap();
    assert!(batches.iter().all(|b| b.state == BatchState::Sent));
    assert_eq!(summary.batches.sent as usize, batches.len());
    let executed = activator.executed.lock().unwrap().clone();
    let unique: HashSet<&String> = executed.iter().collect();
    assert_eq!(executed.len(), batches.len(), "no batch executed twice");
    assert_eq!(unique.len(), batches.len());
    let sent: usize = batches.iter().map(|b| b.decision_ids.len()).sum();
    assert_eq!(sent as u64, summary.messages, "every message in one sent batch");
    assert_eq!(
        w.store.run(use_case().name.as_str(), DAY).unwrap().unwrap().phase,
        RunPhase::Done
    );
    assert!(
        w.store
            .shards(summary.run_id)
            .unwrap()
            .iter()
            .all(|s| s.state == ShardState::Done)
    );
    assert!(
        w.store.workers(10).unwrap().iter().all(|r| r.status == "done"),
        "every worker reported itself done"
    );

    // A worker joining a finished day does nothing.
    let late = day.work(&worker(&w, 9)).await.unwrap();
    assert!(late.shards.is_empty() && !late.planned && !late.finished);
    assert_eq!(&late.summary, summary);
    assert_eq!(activator.executed.lock().unwrap().len(), executed.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_shard_is_taken_over_without_a_second_send() {
    let w = world();
    let activator = Arc::new(FakeActivator::default());
    let day = run(&w, braze(), activator.clone(), DAY);
    // The first worker "dies" (every store write refused) after a few batches of its shard:
    // whatever it left — a batch `sending`, batches `planned`, its lease — stays as it was.
    let doomed = worker(&w, 0);
    let before = w.store.writes();
    *w.store.fail_writes_from.lock().unwrap() = Some(before + 40);
    let died = day.work(&doomed).await;
    assert!(died.is_err(), "the worker died: {died:?}");
    *w.store.fail_writes_from.lock().unwrap() = None;
    let run_id = w.store.run(use_case().name.as_str(), DAY).unwrap().unwrap().id;
    let held: Vec<u32> = w
        .store
        .shards(run_id)
        .unwrap()
        .iter()
        .filter(|s| s.state == ShardState::Leased)
        .map(|s| s.shard)
        .collect();
    assert_eq!(held.len(), 1, "the dead worker held one shard");
    let sent_before: Vec<String> = activator.executed.lock().unwrap().clone();
    assert!(!sent_before.is_empty(), "it sent some batches before dying");

    // A single-process run refuses the day: it belongs to the workers.
    let refused = run(&w, braze(), activator.clone(), DAY).execute().await.unwrap_err();
    assert!(matches!(refused, Error::SharedDay { .. }), "{refused}");
    assert!(refused.to_string().contains("offerloop worker"), "{refused}");

    // A second worker finishes every other shard, then waits for the dead worker's lease; once it
    // expires, it takes the shard over.
    let survivor = worker(&w, 1);
    let clock = w.clock.clone();
    let expire = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        clock.advance(jiff::SignedDuration::from_secs(120));
    };
    let (report, ()) = tokio::join!(day.work(&survivor), expire);
    let report = report.unwrap();
    assert_eq!(report.taken_over, held, "{report:?}");
    assert!(report.finished);

    let batches = w.store.batches(run_id).unwrap();
    let executed = activator.executed.lock().unwrap().clone();
    let unique: HashSet<&String> = executed.iter().collect();
    assert_eq!(unique.len(), executed.len(), "no batch executed twice: {executed:?}");
    let unknown = batches.iter().filter(|b| b.state == BatchState::Unknown).count();
    assert!(unknown <= 1, "at most the batch in flight is unknown: {unknown}");
    assert_eq!(
        batches.iter().filter(|b| b.state == BatchState::Sent).count() + unknown,
        batches.len(),
        "every other batch was sent"
    );
    assert_eq!(report.summary.batches.unknown as usize, unknown);
    assert_eq!(
        w.store.run(use_case().name.as_str(), DAY).unwrap().unwrap().phase,
        RunPhase::Done
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_another_version_of_the_use_case_refuses_to_join() {
    let w = world();
    let activator = Arc::new(FakeActivator::default());
    let day = run(&w, braze(), activator.clone(), DAY);
    // Plan the day (and work it) with the shipped version.
    day.work(&worker(&w, 0)).await.unwrap();
    // Another date, planned by the shipped version, joined by a changed one.
    let next = DAY.tomorrow().unwrap();
    w.clock.advance(jiff::SignedDuration::from_hours(24));
    let planner = run(&w, braze(), activator.clone(), next);
    let mut changed = use_case();
    changed.guardrails.max_cost_per_run = Some(1.0);
    let other = DailyRun::builder(changed, next)
        .braze(Arc::new(braze()))
        .store(w.store.clone())
        .activator(activator.clone())
        .clock(w.clock.clone())
        .options(planner.options().clone())
        .build()
        .unwrap();
    planner.work(&worker(&w, 1)).await.unwrap();
    let refused = other.work(&worker(&w, 2)).await.unwrap_err();
    assert!(matches!(refused, Error::WorkerVersion { .. }), "{refused}");
    assert!(refused.to_string().contains("same use-case file"), "{refused}");
}
