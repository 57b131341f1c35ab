//! The send ledger: planning is idempotent, the state machine refuses every undocumented move.

use offerloop_store::{BatchMark, BatchRecord, BatchState, BatchTarget, Error, Store};
use serde_json::json;

use crate::{at, with_run};

fn batch(id: &str, run_id: i64) -> BatchRecord {
    BatchRecord {
        id: id.to_owned(),
        run_id,
        target: BatchTarget::Campaign("camp-1".to_owned()),
        decision_ids: vec!["d1".to_owned(), "d2".to_owned()],
        request: json!({
            "campaign_id": "camp-1",
            "recipients": [
                {"external_user_id": "c1", "trigger_properties": {"offer": "10%"}},
                {"external_user_id": "c2", "trigger_properties": {"offer": "free_shipping"}}
            ]
        })
        .to_string(),
        state: BatchState::Planned,
        detail: None,
        retryable: false,
        dry_run: false,
        updated_at: at("2026-11-29T08:00:00Z"),
    }
}

/// A move to `state` with `detail` (retryable when failed).
fn mark(state: BatchState, detail: Option<&str>) -> BatchMark {
    BatchMark {
        state,
        detail: detail.map(str::to_owned),
        retryable: state == BatchState::Failed,
        dry_run: false,
    }
}

fn a_planned_batch_round_trips_and_planning_again_changes_nothing(store: &dyn Store) {
    let run = with_run(store);
    let planned = store.plan_batch(&batch("b1", run)).unwrap();
    assert_eq!(planned, batch("b1", run));
    store
        .mark_batch("b1", &mark(BatchState::Sending, None), at("2026-11-29T08:00:01Z"))
        .unwrap();

    // Re-planning after a crash returns the stored batch as it is, without resetting it.
    let mut replanned = batch("b1", run);
    replanned.request = json!({"different": true}).to_string();
    let returned = store.plan_batch(&replanned).unwrap();
    assert_eq!(returned.state, BatchState::Sending);
    assert_eq!(returned.request, batch("b1", run).request);
    assert_eq!(store.batches(run).unwrap(), vec![returned]);
}

fn plan_batches_plans_the_new_ones_in_one_call_and_leaves_existing_ones_alone(store: &dyn Store) {
    let run = with_run(store);
    store.plan_batch(&batch("b1", run)).unwrap();
    store
        .mark_batch("b1", &mark(BatchState::Sending, None), at("2026-11-29T08:00:01Z"))
        .unwrap();
    let mut again = batch("b1", run);
    again.request = json!({"different": true}).to_string();
    let mut sent = batch("b3", run);
    sent.state = BatchState::Sent;
    store.plan_batches(&[again, batch("b2", run), sent]).unwrap();
    let stored = store.batches(run).unwrap();
    let state = |id: &str| stored.iter().find(|b| b.id == id).map(|b| b.state);
    assert_eq!(stored.len(), 3);
    assert_eq!(
        state("b1"),
        Some(BatchState::Sending),
        "an existing batch is left as it is"
    );
    assert_eq!(
        stored.iter().find(|b| b.id == "b1").unwrap().request,
        batch("b1", run).request
    );
    assert_eq!(state("b2"), Some(BatchState::Planned));
    assert_eq!(state("b3"), Some(BatchState::Planned), "always recorded as planned");

    // A batch of an unknown run fails the whole call: none of it is stored.
    let err = store
        .plan_batches(&[batch("b4", run), batch("b5", run + 7)])
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { what: "run", .. }), "{err}");
    assert_eq!(store.batches(run).unwrap().len(), 3);
}

fn plan_batch_records_the_planned_state_whatever_the_record_says(store: &dyn Store) {
    let run = with_run(store);
    let mut sent = batch("b1", run);
    sent.state = BatchState::Sent;
    assert_eq!(store.plan_batch(&sent).unwrap().state, BatchState::Planned);
    assert!(matches!(
        store.plan_batch(&batch("b2", run + 7)),
        Err(Error::NotFound { what: "run", .. })
    ));
}

fn every_documented_move_is_allowed_with_its_detail(store: &dyn Store) {
    let run = with_run(store);
    for (id, end) in [
        ("ok", BatchState::Sent),
        ("lost", BatchState::Unknown),
        ("no", BatchState::Failed),
    ] {
        store.plan_batch(&batch(id, run)).unwrap();
        store
            .mark_batch(id, &mark(BatchState::Sending, None), at("2026-11-29T08:00:01Z"))
            .unwrap();
        store
            .mark_batch(id, &mark(end, Some("dispatch-123")), at("2026-11-29T08:00:02Z"))
            .unwrap();
    }
    // A certainly-rejected batch may be retried, then succeed.
    store
        .mark_batch("no", &mark(BatchState::Sending, None), at("2026-11-29T08:01:00Z"))
        .unwrap();
    store
        .mark_batch(
            "no",
            &mark(BatchState::Sent, Some("dispatch-456")),
            at("2026-11-29T08:01:01Z"),
        )
        .unwrap();

    let batches = store.batches(run).unwrap();
    let states: Vec<_> = batches
        .iter()
        .map(|b| (b.id.as_str(), b.state, b.detail.as_deref()))
        .collect();
    assert_eq!(
        states,
        [
            ("ok", BatchState::Sent, Some("dispatch-123")),
            ("lost", BatchState::Unknown, Some("dispatch-123")),
            ("no", BatchState::Sent, Some("dispatch-456")),
        ]
    );
    assert_eq!(batches[2].updated_at, at("2026-11-29T08:01:01Z"));
}

fn every_other_move_is_refused_and_changes_nothing(store: &dyn Store) {
    use BatchState::{Failed, Planned, Sending, Sent, Unknown};
    let run = with_run(store);
    // Bring one batch to each state, then try every refused move from it.
    let paths: [(&str, &[BatchState]); 5] = [
        ("planned", &[]),
        ("sending", &[Sending]),
        ("sent", &[Sending, Sent]),
        ("failed", &[Sending, Failed]),
        ("unknown", &[Sending, Unknown]),
    ];
    let refused = [
        (Planned, [Planned, Sent, Failed, Unknown].as_slice()),
        (Sending, [Planned, Sending].as_slice()),
        (Sent, [Planned, Sending, Sent, Failed, Unknown].as_slice()),
        (Failed, [Planned, Sent, Failed, Unknown].as_slice()),
        (Unknown, [Planned, Sending, Sent, Failed, Unknown].as_slice()),
    ];
    for ((id, path), (state, moves)) in paths.iter().zip(refused) {
        store.plan_batch(&batch(id, run)).unwrap();
        for step in *path {
            store
                .mark_batch(id, &mark(*step, None), at("2026-11-29T08:00:01Z"))
                .unwrap();
        }
        for to in moves {
            match store.mark_batch(id, &mark(*to, Some("x")), at("2026-11-29T09:00:00Z")) {
                Err(Error::BatchState { batch, from, to: asked }) => {
                    assert_eq!((batch.as_str(), from, asked), (*id, state, *to));
                }
                other => panic!("{id}: {state:?} -> {to:?} gave {other:?}"),
            }
        }
        let stored = store.batches(run).unwrap().into_iter().find(|b| b.id == *id).unwrap();
        assert_eq!(stored.state, state);
        assert_eq!(stored.detail, None);
    }
    assert!(matches!(
        store.mark_batch("nope", &mark(Sending, None), at("2026-11-29T09:00:00Z")),
        Err(Error::NotFound { what: "batch", .. })
    ));
}

fn unknown_batches_are_listed_per_use_case_across_runs(store: &dyn Store) {
    let run = with_run(store);
    let next = store
        .begin_run("winback", crate::day("2026-11-30"), at("2026-11-30T06:00:00Z"))
        .unwrap();
    let other = store
        .begin_run("onboarding", crate::day("2026-11-30"), at("2026-11-30T06:00:00Z"))
        .unwrap();
    for (id, run_id, end) in [
        ("a", run, BatchState::Unknown),
        ("b", run, BatchState::Sent),
        ("c", next.id, BatchState::Unknown),
        ("d", other.id, BatchState::Unknown),
    ] {
        store.plan_batch(&batch(id, run_id)).unwrap();
        store
            .mark_batch(id, &mark(BatchState::Sending, None), at("2026-11-30T08:00:00Z"))
            .unwrap();
        store
            .mark_batch(id, &mark(end, Some("timeout")), at("2026-11-30T08:00:01Z"))
            .unwrap();
    }
    let ids: Vec<_> = store
        .unknown_batches("winback")
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(ids, ["a", "c"]);
    assert_eq!(store.unknown_batches("onboarding").unwrap().len(), 1);
    assert!(store.unknown_batches("nobody").unwrap().is_empty());
}

fn a_batchs_target_retryability_and_dry_run_are_typed_and_detail_is_kept_for_people(store: &dyn Store) {
    let run = with_run(store);
    let mut track = batch("t", run);
    track.target = BatchTarget::UsersTrack;
    let mut canvas = batch("c", run);
    canvas.target = BatchTarget::CanvasSchedule("cv:1".to_owned());
    store.plan_batches(&[batch("a", run), track, canvas]).unwrap();
    let now = at("2026-11-29T08:00:01Z");
    for id in ["a", "t", "c"] {
        store.mark_batch(id, &BatchMark::sending(), now).unwrap();
    }
    store
        .mark_batch("a", &BatchMark::failed("retryable: looks like a prefix", true), now)
        .unwrap();
    store
        .mark_batch("t", &BatchMark::failed("401 invalid key", false), now)
        .unwrap();
    store
        .mark_batch("c", &BatchMark::dry_run(Some("dry run".to_owned())), now)
        .unwrap();
    let states = store.batch_states(run).unwrap();
    let fates: Vec<_> = states
        .iter()
        .map(|b| {
            (
                b.id.as_str(),
                b.target.clone(),
                b.state,
                b.retryable,
                b.dry_run,
                b.detail.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        fates,
        [
            (
                "a",
                BatchTarget::Campaign("camp-1".into()),
                BatchState::Failed,
                true,
                false,
                Some("retryable: looks like a prefix")
            ),
            (
                "t",
                BatchTarget::UsersTrack,
                BatchState::Failed,
                false,
                false,
                Some("401 invalid key")
            ),
            (
                "c",
                BatchTarget::CanvasSchedule("cv:1".into()),
                BatchState::Sent,
                false,
                true,
                Some("dry run")
            ),
        ]
    );
    // The full records agree with the states, and a retry clears what no longer holds.
    let records = store.batches(run).unwrap();
    assert!(
        records
            .iter()
            .zip(&states)
            .all(|(r, s)| r.retryable == s.retryable && r.dry_run == s.dry_run && r.target == s.target)
    );
    store.mark_batch("a", &BatchMark::sending(), now).unwrap();
    store
        .mark_batch("a", &BatchMark::sent(Some("d-1".into())), now)
        .unwrap();
    let a = &store.batch_states(run).unwrap()[0];
    assert_eq!(
        (a.state, a.retryable, a.detail.as_deref()),
        (BatchState::Sent, false, Some("d-1"))
    );
}

both!(
    a_planned_batch_round_trips_and_planning_again_changes_nothing,
    plan_batches_plans_the_new_ones_in_one_call_and_leaves_existing_ones_alone,
    plan_batch_records_the_planned_state_whatever_the_record_says,
    every_documented_move_is_allowed_with_its_detail,
    every_other_move_is_refused_and_changes_nothing,
    unknown_batches_are_listed_per_use_case_across_runs,
    a_batchs_target_retryability_and_dry_run_are_typed_and_detail_is_kept_for_people,
);
