//! A day shared by workers, on both back-ends: the shard plan is stored once, shards are leased
//! lowest first and never to two workers, an expired lease is taken over with a new fencing token
//! (the old holder's renewals and completions are refused), and workers report themselves.

use std::collections::BTreeSet;
use std::time::Duration;

use offerloop_store::{AudienceRow, Error, ShardPlan, ShardState, Store, WorkerRecord};
use serde_json::json;

use crate::{at, decision, with_run};

const MINUTE: Duration = Duration::from_secs(60);

fn plan(run_id: i64, shards: u32) -> ShardPlan {
    ShardPlan {
        run_id,
        shards,
        shard_size: 1000,
        customers: u64::from(shards) * 1000 - 10,
        model_version: "linucb@4".to_owned(),
        fingerprint: "f00d".to_owned(),
        planned_at: at("2026-11-29T07:00:00Z"),
        prepared: json!({"audience": u64::from(shards) * 1000 - 10, "learned": 12}),
    }
}

fn plan_shards_stores_the_plan_once_with_every_shard_open(store: &dyn Store) {
    let run = with_run(store);
    assert_eq!(store.shard_plan(run).unwrap(), None);
    assert!(store.shards(run).unwrap().is_empty());
    let planned = store.plan_shards(&plan(run, 3)).unwrap();
    assert_eq!(planned, plan(run, 3));
    assert_eq!(store.shard_plan(run).unwrap(), Some(plan(run, 3)));
    // Planning again (another participant, or after a crash) returns the stored plan unchanged.
    let mut other = plan(run, 5);
    other.model_version = "linucb@5".to_owned();
    assert_eq!(store.plan_shards(&other).unwrap(), plan(run, 3));
    let shards = store.shards(run).unwrap();
    assert_eq!(shards.iter().map(|s| s.shard).collect::<Vec<_>>(), [0, 1, 2]);
    for shard in &shards {
        assert_eq!(shard.run_id, run);
        assert_eq!(shard.state, ShardState::Open);
        assert_eq!(
            (shard.holder.as_deref(), shard.expires_at, shard.token),
            (None, None, 0)
        );
        assert_eq!((shard.done_at, &shard.summary), (None, &None));
    }
    assert!(matches!(
        store.plan_shards(&plan(run + 100, 2)),
        Err(Error::NotFound { what: "run", .. })
    ));
}

fn shards_are_leased_lowest_first_renewed_and_completed(store: &dyn Store) {
    let run = with_run(store);
    store.plan_shards(&plan(run, 2)).unwrap();
    let now = at("2026-11-29T07:00:00Z");
    let a = store.lease_shard(run, "worker-a", MINUTE, now).unwrap().unwrap();
    assert_eq!((a.shard, a.token, a.taken_over), (0, 1, false));
    assert_eq!(
        (a.holder.as_str(), a.expires_at),
        ("worker-a", at("2026-11-29T07:01:00Z"))
    );
    let b = store.lease_shard(run, "worker-b", MINUTE, now).unwrap().unwrap();
    assert_eq!((b.shard, b.token), (1, 1));
    // Every shard is held by a live lease.
    assert_eq!(store.lease_shard(run, "worker-c", MINUTE, now).unwrap(), None);

    let renewed = store.renew_shard(&a, MINUTE * 2, at("2026-11-29T07:00:50Z")).unwrap();
    assert_eq!(renewed.expires_at, at("2026-11-29T07:02:50Z"));
    assert_eq!((renewed.shard, renewed.token), (a.shard, a.token));
    // Still held at 07:01:30 thanks to the renewal.
    assert_eq!(
        store
            .lease_shard(run, "worker-c", MINUTE, at("2026-11-29T07:01:30Z"))
            .unwrap()
            .map(|l| l.shard),
        Some(1)
    );

    store
        .complete_shard(&renewed, &json!({"decided": 1000}), at("2026-11-29T07:02:00Z"))
        .unwrap();
    let shards = store.shards(run).unwrap();
    assert_eq!(shards[0].state, ShardState::Done);
    assert_eq!(shards[0].holder.as_deref(), Some("worker-a"));
    assert_eq!(shards[0].done_at, Some(at("2026-11-29T07:02:00Z")));
    assert_eq!(shards[0].summary, Some(json!({"decided": 1000})));
    assert_eq!(shards[0].token, 1);
    // A done shard is never leased again, however late.
    assert_eq!(
        store
            .lease_shard(run, "worker-d", MINUTE, at("2026-11-30T00:00:00Z"))
            .unwrap()
            .map(|l| l.shard),
        Some(1)
    );
    // And its lease is gone.
    assert!(matches!(
        store.renew_shard(&renewed, MINUTE, at("2026-11-29T07:02:01Z")),
        Err(Error::LeaseLost { shard: 0, token: 1, .. })
    ));
    // An unknown run has nothing to lease.
    assert_eq!(store.lease_shard(run + 100, "worker-a", MINUTE, now).unwrap(), None);
}

fn an_expired_lease_is_taken_over_and_the_old_token_is_fenced_off(store: &dyn Store) {
    let run = with_run(store);
    store.plan_shards(&plan(run, 1)).unwrap();
    let old = store
        .lease_shard(run, "worker-a", MINUTE, at("2026-11-29T07:00:00Z"))
        .unwrap()
        .unwrap();
    // Not expired at its expiry instant itself.
    assert_eq!(
        store
            .lease_shard(run, "worker-b", MINUTE, at("2026-11-29T07:01:00Z"))
            .unwrap(),
        None
    );
    let new = store
        .lease_shard(run, "worker-b", MINUTE, at("2026-11-29T07:01:00.000000001Z"))
        .unwrap()
        .unwrap();
    assert_eq!((new.shard, new.token, new.taken_over), (0, 2, true));
    assert_eq!(new.holder, "worker-b");
    // The presumed-dead worker comes back: refused.
    match store.renew_shard(&old, MINUTE, at("2026-11-29T07:01:10Z")) {
        Err(err @ Error::LeaseLost { .. }) => {
            let text = err.to_string();
            assert!(text.contains("worker-a") && text.contains("token 1"), "{text}");
        }
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    assert!(matches!(
        store.complete_shard(&old, &json!({}), at("2026-11-29T07:01:10Z")),
        Err(Error::LeaseLost { token: 1, .. })
    ));
    store
        .complete_shard(&new, &json!({"by": "b"}), at("2026-11-29T07:01:20Z"))
        .unwrap();
    let shard = &store.shards(run).unwrap()[0];
    assert_eq!(
        (shard.state, shard.token, shard.holder.as_deref()),
        (ShardState::Done, 2, Some("worker-b"))
    );
    assert!(matches!(
        store.complete_shard(&new, &json!({}), at("2026-11-29T07:01:30Z")),
        Err(Error::LeaseLost { token: 2, .. })
    ));
}

/// Four threads lease until nothing is left: every shard is leased exactly once.
fn concurrent_leasers_never_get_the_same_shard(store: &dyn Store) {
    let run = with_run(store);
    store.plan_shards(&plan(run, 40)).unwrap();
    let now = at("2026-11-29T07:00:00Z");
    let leased: Vec<u32> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    while let Some(lease) = store.lease_shard(run, &format!("worker-{w}"), MINUTE, now).unwrap() {
                        mine.push(lease.shard);
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let distinct: BTreeSet<u32> = leased.iter().copied().collect();
    assert_eq!(leased.len(), 40, "{leased:?}");
    assert_eq!(distinct, (0..40).collect());
    assert!(
        store
            .shards(run)
            .unwrap()
            .iter()
            .all(|s| s.state == ShardState::Leased && s.token == 1)
    );
}

fn a_shard_reads_its_audience_range_in_storage_order_and_its_decisions_by_id(store: &dyn Store) {
    let run = with_run(store);
    // Stored in an order that is neither alphabetical nor numeric.
    let rows: Vec<AudienceRow> = (0..25)
        .map(|i| AudienceRow {
            customer_id: format!("c{}", (i * 7) % 25),
            features: json!({"i": i}).to_string(),
            time_zone: (i % 2 == 0).then(|| "Europe/Paris".to_owned()),
        })
        .collect();
    store.record_audience(run, &rows[..10]).unwrap();
    store.record_audience(run, &rows[10..]).unwrap();
    assert_eq!(store.audience_range(run, 0, 10).unwrap(), rows[..10].to_vec());
    assert_eq!(store.audience_range(run, 20, 10).unwrap(), rows[20..].to_vec());
    assert_eq!(store.audience_range(run, 8, 4).unwrap(), rows[8..12].to_vec());
    assert!(store.audience_range(run, 25, 10).unwrap().is_empty());
    assert!(store.audience_range(run, 0, 0).unwrap().is_empty());
    assert_eq!(store.audience_range(run, 0, u64::MAX).unwrap(), rows);
    assert_eq!(store.audience(run).unwrap(), rows);

    let decisions: Vec<_> = (0..5)
        .map(|i| decision(&format!("d{i}"), &format!("c{i}"), i))
        .collect();
    store.record_decisions(run, &decisions).unwrap();
    let ids = ["d3".to_owned(), "ghost".to_owned(), "d1".to_owned(), "d3".to_owned()];
    let mut found = store.decisions_by_id(&ids).unwrap();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(found, vec![decisions[1].clone(), decisions[3].clone()]);
    assert!(store.decisions_by_id(&[]).unwrap().is_empty());
}

fn workers_register_and_are_listed_most_recently_seen_first(store: &dyn Store) {
    let worker = |id: &str, seen: &str, status: &str| WorkerRecord {
        id: id.to_owned(),
        use_case: "winback".to_owned(),
        host: "host-a".to_owned(),
        pid: 4242,
        started_at: at("2026-11-29T06:00:00Z"),
        last_seen: at(seen),
        status: status.to_owned(),
    };
    assert!(store.workers(10).unwrap().is_empty());
    store
        .report_worker(&worker("w1", "2026-11-29T07:00:00Z", "waiting"))
        .unwrap();
    store
        .report_worker(&worker("w2", "2026-11-29T07:01:00Z", "shard 0 of run 1"))
        .unwrap();
    store
        .report_worker(&worker("w3", "2026-11-29T06:59:00Z", "waiting"))
        .unwrap();
    // w1 reports again: its status and last report change, not its start.
    let mut again = worker("w1", "2026-11-29T07:02:00Z", "stopped");
    again.started_at = at("2026-11-29T07:02:00Z");
    store.report_worker(&again).unwrap();
    let listed = store.workers(10).unwrap();
    assert_eq!(
        listed.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(),
        ["w1", "w2", "w3"]
    );
    assert_eq!(listed[0], worker("w1", "2026-11-29T07:02:00Z", "stopped"));
    assert_eq!(store.workers(2).unwrap().len(), 2);
}

both!(
    plan_shards_stores_the_plan_once_with_every_shard_open,
    shards_are_leased_lowest_first_renewed_and_completed,
    an_expired_lease_is_taken_over_and_the_old_token_is_fenced_off,
    concurrent_leasers_never_get_the_same_shard,
    a_shard_reads_its_audience_range_in_storage_order_and_its_decisions_by_id,
    workers_register_and_are_listed_most_recently_seen_first,
);
