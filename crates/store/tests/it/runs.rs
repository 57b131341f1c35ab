//! Runs and their phases, and the audience.

use offerloop_store::{AudienceRow, Error, RunPhase, Store};
use serde_json::json;

use crate::{at, day, with_run};

fn begin_run_creates_once_and_returns_the_existing_run_whatever_its_phase(store: &dyn Store) {
    let first = store
        .begin_run("winback", day("2026-11-29"), at("2026-11-29T06:00:00Z"))
        .unwrap();
    assert_eq!(first.phase, RunPhase::Started);
    assert_eq!(first.use_case, "winback");
    assert_eq!(first.date, day("2026-11-29"));
    assert_eq!(first.started_at, at("2026-11-29T06:00:00Z"));
    assert_eq!(first.updated_at, first.started_at);
    assert_eq!(first.summary, None);

    store
        .advance_run(first.id, RunPhase::Decided, at("2026-11-29T06:10:00Z"))
        .unwrap();
    let again = store
        .begin_run("winback", day("2026-11-29"), at("2026-11-29T07:00:00Z"))
        .unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(again.phase, RunPhase::Decided);
    assert_eq!(again.started_at, first.started_at);
    assert_eq!(store.runs("winback", 10).unwrap().len(), 1);

    // Another date or another use case is another run.
    let next_day = store
        .begin_run("winback", day("2026-11-30"), at("2026-11-30T06:00:00Z"))
        .unwrap();
    let other = store
        .begin_run("onboarding", day("2026-11-29"), at("2026-11-29T06:00:00Z"))
        .unwrap();
    assert_ne!(next_day.id, first.id);
    assert_ne!(other.id, first.id);
    assert_eq!(store.run("winback", day("2026-11-29")).unwrap(), Some(again));
    assert_eq!(store.run("winback", day("2026-12-01")).unwrap(), None);
}

fn phases_only_move_forward(store: &dyn Store) {
    let run = with_run(store);
    store
        .advance_run(run, RunPhase::Outcomes, at("2026-11-29T06:01:00Z"))
        .unwrap();
    store
        .advance_run(run, RunPhase::Audience, at("2026-11-29T06:02:00Z"))
        .unwrap();
    let stored = store.run("winback", day("2026-11-29")).unwrap().unwrap();
    assert_eq!(stored.phase, RunPhase::Outcomes);
    assert_eq!(
        stored.updated_at,
        at("2026-11-29T06:01:00Z"),
        "an ignored move changes nothing"
    );

    store
        .advance_run(run, RunPhase::Activated, at("2026-11-29T06:03:00Z"))
        .unwrap();
    let stored = store.run("winback", day("2026-11-29")).unwrap().unwrap();
    assert_eq!(stored.phase, RunPhase::Activated);
    assert_eq!(stored.updated_at, at("2026-11-29T06:03:00Z"));

    assert!(matches!(
        store.advance_run(run + 100, RunPhase::Done, at("2026-11-29T06:03:00Z")),
        Err(Error::NotFound { what: "run", .. })
    ));
}

fn finish_run_stores_the_summary_and_marks_it_done(store: &dyn Store) {
    let run = with_run(store);
    let summary = json!({"decided": 1000, "sent": 990, "unknown_batches": 0, "budget": {"spent": 12.5}});
    store.finish_run(run, &summary, at("2026-11-29T06:30:00Z")).unwrap();
    let stored = store.run("winback", day("2026-11-29")).unwrap().unwrap();
    assert_eq!(stored.phase, RunPhase::Done);
    assert_eq!(stored.summary, Some(summary));
    assert_eq!(stored.updated_at, at("2026-11-29T06:30:00Z"));
    // Done is the last phase: nothing moves it back.
    store
        .advance_run(run, RunPhase::Decided, at("2026-11-29T06:31:00Z"))
        .unwrap();
    assert_eq!(
        store.run("winback", day("2026-11-29")).unwrap().unwrap().phase,
        RunPhase::Done
    );
}

fn runs_lists_the_last_runs_of_a_use_case_newest_first(store: &dyn Store) {
    for date in ["2026-11-27", "2026-11-29", "2026-11-28", "2026-11-30"] {
        store
            .begin_run("winback", day(date), at("2026-11-30T06:00:00Z"))
            .unwrap();
    }
    store
        .begin_run("onboarding", day("2026-12-01"), at("2026-12-01T06:00:00Z"))
        .unwrap();
    let dates: Vec<String> = store
        .runs("winback", 3)
        .unwrap()
        .into_iter()
        .map(|run| run.date.to_string())
        .collect();
    assert_eq!(dates, ["2026-11-30", "2026-11-29", "2026-11-28"]);
    assert_eq!(store.runs("winback", usize::MAX).unwrap().len(), 4);
    assert!(store.runs("nobody", 10).unwrap().is_empty());
}

fn the_audience_round_trips_in_order_and_a_customer_is_stored_once_per_run(store: &dyn Store) {
    let run = with_run(store);
    let rows = vec![
        AudienceRow {
            customer_id: "c2".to_owned(),
            features: json!({"days_since_purchase": 40.0, "tier": "gold"}).to_string(),
            time_zone: Some("Europe/Paris".to_owned()),
        },
        AudienceRow {
            customer_id: "c1".to_owned(),
            features: json!({"days_since_purchase": null, "tier": "none"}).to_string(),
            time_zone: None,
        },
    ];
    assert_eq!(store.record_audience(run, &rows).unwrap(), 2);
    let mut changed = rows[0].clone();
    changed.features = json!({"days_since_purchase": 1.0}).to_string();
    let more = vec![
        changed,
        AudienceRow {
            customer_id: "c3".to_owned(),
            features: json!({}).to_string(),
            time_zone: Some("UTC".to_owned()),
        },
    ];
    assert_eq!(store.record_audience(run, &more).unwrap(), 1, "c2 is already stored");
    let stored = store.audience(run).unwrap();
    assert_eq!(stored, vec![rows[0].clone(), rows[1].clone(), more[1].clone()]);

    // Another run has its own audience.
    let other = store
        .begin_run("winback", day("2026-11-30"), at("2026-11-30T06:00:00Z"))
        .unwrap();
    assert!(store.audience(other.id).unwrap().is_empty());
    assert_eq!(store.record_audience(other.id, &rows).unwrap(), 2);
    assert!(matches!(
        store.record_audience(other.id + 100, &rows),
        Err(Error::NotFound { what: "run", .. })
    ));
}

both!(
    begin_run_creates_once_and_returns_the_existing_run_whatever_its_phase,
    phases_only_move_forward,
    finish_run_stores_the_summary_and_marks_it_done,
    runs_lists_the_last_runs_of_a_use_case_newest_first,
    the_audience_round_trips_in_order_and_a_customer_is_stored_once_per_run,
);
