//! Outcomes, rewards, matured feedback, models and drift alerts.

use jiff::Timestamp;
use offerloop_domain::{CustomerId, Outcome, OutcomeKind, Reward, RewardStatus};
use offerloop_store::{AudienceRow, DriftAlertRecord, Error, Store};
use serde_json::json;

use crate::{at, day, decision, with_run};

fn outcome(key: &str, customer: &str, when: &str, kind: OutcomeKind, value: f64) -> Outcome {
    Outcome {
        customer_id: CustomerId::new(customer).unwrap(),
        kind,
        occurred_at: at(when),
        value,
        dedupe_key: key.to_owned(),
    }
}

/// Decisions `d0`, `d1`, `d2` of customers `c0`–`c2` in `run`, stored.
fn record_three_decisions(store: &dyn Store, run: i64) -> Vec<offerloop_domain::Decision> {
    let decisions: Vec<_> = (0..3)
        .map(|i| decision(&format!("d{i}"), &format!("c{i}"), i))
        .collect();
    store.record_decisions(run, &decisions).unwrap();
    decisions
}

fn reward(id: &str, value: f64, status: RewardStatus, outcomes: usize) -> Reward {
    Reward {
        decision_id: id.to_owned(),
        value,
        status,
        attributed_outcomes: outcomes,
    }
}

fn outcomes_round_trip_and_are_deduplicated_per_use_case(store: &dyn Store) {
    let all = vec![
        outcome(
            "p1",
            "c1",
            "2026-11-29T10:00:00.5Z",
            OutcomeKind::Purchase {
                product_id: "sku-1".to_owned(),
            },
            42.5,
        ),
        outcome(
            "e1",
            "c2",
            "2026-11-29T11:00:00Z",
            OutcomeKind::CustomEvent {
                name: "app_open".to_owned(),
            },
            0.0,
        ),
        outcome(
            "u1",
            "c3",
            "2026-11-29T12:00:00Z",
            OutcomeKind::Unsubscribe { channel: None },
            0.0,
        ),
    ];
    assert_eq!(store.record_outcomes("winback", &all).unwrap(), 3);
    // The same outcomes seen again in the next export, plus a new one and a duplicate inside the call.
    let mut again = all.clone();
    let new = outcome(
        "u2",
        "c4",
        "2026-11-29T13:00:00Z",
        OutcomeKind::Unsubscribe {
            channel: Some("email".to_owned()),
        },
        0.0,
    );
    again.push(new.clone());
    again.push(new.clone());
    assert_eq!(store.record_outcomes("winback", &again).unwrap(), 1);
    // Another use case keeps its own outcomes, even with the same keys.
    assert_eq!(store.record_outcomes("onboarding", &all[..1]).unwrap(), 1);

    let stored = store
        .outcomes_between("winback", Timestamp::MIN, Timestamp::MAX)
        .unwrap();
    let mut expected = all.clone();
    expected.push(new);
    assert_eq!(stored, expected);
    let window = store
        .outcomes_between("winback", at("2026-11-29T11:00:00Z"), at("2026-11-29T13:00:00Z"))
        .unwrap();
    assert_eq!(window, all[1..].to_vec(), "[from, to)");
}

fn rewards_round_trip_and_a_final_reward_is_never_replaced_by_a_pending_one(store: &dyn Store) {
    let run = with_run(store);
    record_three_decisions(store, run);

    store
        .upsert_rewards(&[
            reward("d0", 0.0, RewardStatus::Pending, 0),
            reward("d1", 10.0, RewardStatus::Pending, 1),
        ])
        .unwrap();
    // Pending grows, then becomes final; a late pending recomputation does not undo it.
    store
        .upsert_rewards(&[
            reward("d0", 5.0, RewardStatus::Pending, 1),
            reward("d1", 12.0, RewardStatus::Final, 2),
        ])
        .unwrap();
    store
        .upsert_rewards(&[reward("d1", 0.0, RewardStatus::Pending, 0)])
        .unwrap();
    let stored = store
        .rewards_between("winback", Timestamp::MIN, Timestamp::MAX)
        .unwrap();
    assert_eq!(
        stored,
        vec![
            reward("d0", 5.0, RewardStatus::Pending, 1),
            reward("d1", 12.0, RewardStatus::Final, 2),
        ]
    );
    // A final reward may be corrected by another final one.
    store
        .upsert_rewards(&[reward("d1", 13.0, RewardStatus::Final, 3)])
        .unwrap();
    let in_window = store
        .rewards_between("winback", at("2026-11-29T08:00:01Z"), at("2026-11-29T08:00:02Z"))
        .unwrap();
    assert_eq!(in_window, vec![reward("d1", 13.0, RewardStatus::Final, 3)]);

    // A reward of an unknown decision is refused, and with it the whole call.
    assert!(matches!(
        store.upsert_rewards(&[
            reward("d2", 1.0, RewardStatus::Final, 1),
            reward("ghost", 1.0, RewardStatus::Final, 1),
        ]),
        Err(Error::NotFound { what: "decision", .. })
    ));
    assert_eq!(
        store
            .rewards_between("winback", Timestamp::MIN, Timestamp::MAX)
            .unwrap()
            .len(),
        2
    );
}

fn matured_feedback_joins_final_rewards_with_the_features_and_forgets_what_was_learned(store: &dyn Store) {
    let run = with_run(store);
    store
        .record_audience(
            run,
            &[
                AudienceRow {
                    customer_id: "c0".to_owned(),
                    features: json!({"recency": 3.0}).to_string(),
                    time_zone: None,
                },
                AudienceRow {
                    customer_id: "c1".to_owned(),
                    features: json!({"recency": 9.0}).to_string(),
                    time_zone: None,
                },
            ],
        )
        .unwrap();
    // The same customer in the next run has other features: feedback uses its own run's.
    let next = store
        .begin_run("winback", day("2026-11-30"), at("2026-11-30T06:00:00Z"))
        .unwrap();
    store
        .record_audience(
            next.id,
            &[AudienceRow {
                customer_id: "c0".to_owned(),
                features: json!({"recency": 4.0}).to_string(),
                time_zone: None,
            }],
        )
        .unwrap();
    let decisions = record_three_decisions(store, run);
    let later = decision("n0", "c0", 86_400);
    store.record_decisions(next.id, std::slice::from_ref(&later)).unwrap();
    store
        .upsert_rewards(&[
            reward("d0", 1.0, RewardStatus::Final, 1),
            reward("d1", 2.0, RewardStatus::Pending, 1),
            reward("d2", 0.0, RewardStatus::Final, 0),
            reward("n0", 7.0, RewardStatus::Final, 1),
        ])
        .unwrap();

    let feedback = store.matured_feedback("winback").unwrap();
    let rows: Vec<_> = feedback
        .iter()
        .map(|row| (row.decision.id.as_str(), row.reward, row.features.clone()))
        .collect();
    assert_eq!(
        rows,
        [
            ("d0", 1.0, json!({"recency": 3.0}).to_string()),
            ("d2", 0.0, "null".to_owned()),
            ("n0", 7.0, json!({"recency": 4.0}).to_string()),
        ]
    );
    assert_eq!(feedback[0].decision, decisions[0]);
    assert_eq!(feedback[2].decision, later);
    assert!(store.matured_feedback("onboarding").unwrap().is_empty());

    store
        .mark_learned(&["d0".to_owned(), "n0".to_owned(), "ghost".to_owned()])
        .unwrap();
    let ids: Vec<_> = store
        .matured_feedback("winback")
        .unwrap()
        .into_iter()
        .map(|row| row.decision.id)
        .collect();
    assert_eq!(ids, ["d2"]);
    // Once d1's reward is final it matures.
    store
        .upsert_rewards(&[reward("d1", 2.0, RewardStatus::Final, 1)])
        .unwrap();
    let ids: Vec<_> = store
        .matured_feedback("winback")
        .unwrap()
        .into_iter()
        .map(|row| row.decision.id)
        .collect();
    assert_eq!(ids, ["d1", "d2"]);
}

fn pending_feedback_is_the_unlearned_open_windows_and_learning_early_retires_them(store: &dyn Store) {
    let run = with_run(store);
    store
        .record_audience(
            run,
            &[AudienceRow {
                customer_id: "c0".to_owned(),
                features: json!({"recency": 3.0}).to_string(),
                time_zone: None,
            }],
        )
        .unwrap();
    record_three_decisions(store, run);
    store
        .upsert_rewards(&[
            reward("d0", 1.0, RewardStatus::Pending, 1),
            reward("d1", 2.0, RewardStatus::Final, 1),
            reward("d2", 0.0, RewardStatus::Pending, 0),
        ])
        .unwrap();
    let rows: Vec<_> = store
        .pending_feedback("winback")
        .unwrap()
        .into_iter()
        .map(|row| (row.decision.id, row.reward, row.features))
        .collect();
    assert_eq!(
        rows,
        [
            ("d0".to_owned(), 1.0, json!({"recency": 3.0}).to_string()),
            ("d2".to_owned(), 0.0, "null".to_owned()),
        ]
    );
    assert!(store.pending_feedback("onboarding").unwrap().is_empty());
    // Learned early, d0 is never returned again, not even once its window has closed.
    store.mark_learned(&["d0".to_owned()]).unwrap();
    store
        .upsert_rewards(&[reward("d0", 1.0, RewardStatus::Final, 1)])
        .unwrap();
    let pending: Vec<_> = store
        .pending_feedback("winback")
        .unwrap()
        .into_iter()
        .map(|row| row.decision.id)
        .collect();
    assert_eq!(pending, ["d2"]);
    let matured: Vec<_> = store
        .matured_feedback("winback")
        .unwrap()
        .into_iter()
        .map(|row| row.decision.id)
        .collect();
    assert_eq!(matured, ["d1"]);
}

fn the_latest_model_is_the_last_saved(store: &dyn Store) {
    assert_eq!(store.latest_model("winback").unwrap(), None);
    store
        .save_model(
            "winback",
            "v1",
            &json!({"theta": [0.1, 0.2]}),
            at("2026-11-29T06:05:00Z"),
        )
        .unwrap();
    store
        .save_model(
            "winback",
            "v2",
            &json!({"theta": [0.3, 0.4]}),
            at("2026-11-28T06:05:00Z"),
        )
        .unwrap();
    store
        .save_model("onboarding", "v9", &json!(null), at("2026-11-30T06:05:00Z"))
        .unwrap();
    let latest = store.latest_model("winback").unwrap().unwrap();
    assert_eq!(latest.use_case, "winback");
    assert_eq!(latest.version, "v2", "saved last, even with an earlier clock");
    assert_eq!(latest.snapshot, json!({"theta": [0.3, 0.4]}));
    assert_eq!(latest.saved_at, at("2026-11-28T06:05:00Z"));
    assert_eq!(store.latest_model("onboarding").unwrap().unwrap().version, "v9");
}

fn drift_alerts_round_trip_oldest_first_and_are_not_recorded_twice(store: &dyn Store) {
    let run = with_run(store);
    let alerts = vec![
        DriftAlertRecord {
            dimension: Some("offer".to_owned()),
            option: Some("ten_percent".to_owned()),
            detected_at: at("2026-11-29T06:05:00Z"),
            magnitude: 0.12,
            run_id: Some(run),
        },
        DriftAlertRecord {
            dimension: None,
            option: None,
            detected_at: at("2026-11-28T06:05:00Z"),
            magnitude: 3.5,
            run_id: None,
        },
    ];
    store.record_drift_alerts("winback", &alerts).unwrap();
    store.record_drift_alerts("winback", &alerts).unwrap();
    assert_eq!(
        store.drift_alerts("winback").unwrap(),
        vec![alerts[1].clone(), alerts[0].clone()]
    );
    assert!(store.drift_alerts("onboarding").unwrap().is_empty());
}

fn a_decision_keeps_its_first_delivery_record_and_unknown_decisions_are_refused(store: &dyn Store) {
    use offerloop_store::{DeliveryRecord, DeliveryStatus};
    let run = with_run(store);
    store
        .record_decisions(
            run,
            &[
                decision("d1", "c1", 0),
                decision("d2", "c2", 1),
                decision("d3", "c3", 2),
            ],
        )
        .unwrap();
    let record = |id: &str, status, when: &str| DeliveryRecord {
        decision_id: id.to_owned(),
        status,
        noted_at: at(when),
    };
    let first = [
        record("d1", DeliveryStatus::Late, "2026-11-29T09:00:00Z"),
        record("d2", DeliveryStatus::Bounced, "2026-11-30T09:00:00Z"),
    ];
    assert_eq!(store.record_deliveries(&first).unwrap(), 2);
    // The feed later finds d1 without events too: the first finding stays, and only d3 is new.
    let later = [
        record("d1", DeliveryStatus::NotSent, "2026-11-30T09:00:00Z"),
        record("d3", DeliveryStatus::NotSent, "2026-11-30T09:00:00Z"),
    ];
    assert_eq!(store.record_deliveries(&later).unwrap(), 1);
    let all = store
        .deliveries_between("winback", at("2026-11-29T00:00:00Z"), at("2026-12-01T00:00:00Z"))
        .unwrap();
    assert_eq!(all, vec![first[0].clone(), first[1].clone(), later[1].clone()]);
    assert!(all.iter().filter(|r| r.status.never_sent()).count() == 2);
    assert!(
        store
            .deliveries_between("other", at("2026-11-29T00:00:00Z"), at("2026-12-01T00:00:00Z"))
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.record_deliveries(&[record("nope", DeliveryStatus::Rejected, "2026-11-30T09:00:00Z")]),
        Err(Error::Unstorable { .. })
    ));
    for status in [
        DeliveryStatus::Rejected,
        DeliveryStatus::Late,
        DeliveryStatus::NotSent,
        DeliveryStatus::Bounced,
    ] {
        assert_eq!(DeliveryStatus::from_name(status.as_str()), Some(status));
    }
}

fn decisions_learned_early_come_back_once_final_for_the_drift_detectors(store: &dyn Store) {
    let run = with_run(store);
    record_three_decisions(store, run);
    store
        .upsert_rewards(&[
            reward("d0", 1.0, RewardStatus::Pending, 1),
            reward("d1", 0.0, RewardStatus::Pending, 0),
            reward("d2", 2.0, RewardStatus::Pending, 1),
        ])
        .unwrap();
    // d0 and d1 are learned early, d2 (closed by a later decision, say) learned as final.
    store.mark_learned_early(&["d0".to_owned(), "d1".to_owned()]).unwrap();
    store.mark_learned(&["d2".to_owned()]).unwrap();
    let ids = |rows: Vec<offerloop_store::FeedbackRow>| rows.into_iter().map(|r| r.decision.id).collect::<Vec<_>>();
    assert!(ids(store.pending_feedback("winback").unwrap()).is_empty());
    // While their windows are open there is nothing to judge.
    assert!(ids(store.unmonitored_feedback("winback").unwrap()).is_empty());
    store
        .upsert_rewards(&[
            reward("d0", 3.0, RewardStatus::Final, 2),
            reward("d1", 0.0, RewardStatus::Final, 0),
            reward("d2", 2.0, RewardStatus::Final, 1),
        ])
        .unwrap();
    let finals = store.unmonitored_feedback("winback").unwrap();
    assert_eq!(
        finals
            .iter()
            .map(|r| (r.decision.id.as_str(), r.reward))
            .collect::<Vec<_>>(),
        [("d0", 3.0), ("d1", 0.0)],
        "the final rewards of the decisions learned early, not of the one learned final"
    );
    assert!(
        ids(store.matured_feedback("winback").unwrap()).is_empty(),
        "nothing is learned twice"
    );
    assert!(store.unmonitored_feedback("onboarding").unwrap().is_empty());
    store.mark_monitored(&["d0".to_owned()]).unwrap();
    assert_eq!(ids(store.unmonitored_feedback("winback").unwrap()), ["d1"]);
    // Marking early never demotes a decision already learned, and marking monitored touches only
    // decisions learned early.
    store.mark_learned_early(&["d2".to_owned()]).unwrap();
    store.mark_monitored(&["d2".to_owned()]).unwrap();
    assert_eq!(ids(store.unmonitored_feedback("winback").unwrap()), ["d1"]);
}

fn a_feed_checkpoint_is_written_with_its_outcomes_per_use_case_and_source(store: &dyn Store) {
    let purchase = |key: &str| {
        outcome(
            key,
            "c1",
            "2026-01-02T10:00:00Z",
            OutcomeKind::Purchase {
                product_id: "sku".to_owned(),
            },
            10.0,
        )
    };
    let source = "s3://acme-currents/currents";
    let now = at("2026-01-03T06:00:00Z");
    assert!(store.feed_keys_read("winback", source).unwrap().is_empty());
    let keys = vec!["a.avro".to_owned(), "b.avro".to_owned()];
    let new = store
        .record_feed_outcomes(
            "winback",
            source,
            &keys,
            &[purchase("currents:e1"), purchase("currents:e2")],
            now,
        )
        .unwrap();
    assert_eq!(new, 2);
    let read = store.feed_keys_read("winback", source).unwrap();
    assert_eq!(read.len(), 2);
    assert!(read.contains("a.avro") && read.contains("b.avro"));
    // Another use case or another bucket has its own checkpoint.
    assert!(store.feed_keys_read("renewal", source).unwrap().is_empty());
    assert!(
        store
            .feed_keys_read("winback", "gs://other/currents")
            .unwrap()
            .is_empty()
    );
    // The same event again in a later file is not a new outcome; the key is recorded once.
    let new = store
        .record_feed_outcomes(
            "winback",
            source,
            &["b.avro".to_owned(), "c.avro".to_owned()],
            &[purchase("currents:e2")],
            now,
        )
        .unwrap();
    assert_eq!(new, 0);
    assert_eq!(store.feed_keys_read("winback", source).unwrap().len(), 3);
    // A failed write records neither its outcomes nor its keys.
    let mut broken = purchase("currents:e3");
    broken.value = f64::NAN;
    assert!(
        store
            .record_feed_outcomes("winback", source, &["d.avro".to_owned()], &[broken], now)
            .is_err()
    );
    assert!(!store.feed_keys_read("winback", source).unwrap().contains("d.avro"));
}

both!(
    outcomes_round_trip_and_are_deduplicated_per_use_case,
    rewards_round_trip_and_a_final_reward_is_never_replaced_by_a_pending_one,
    matured_feedback_joins_final_rewards_with_the_features_and_forgets_what_was_learned,
    pending_feedback_is_the_unlearned_open_windows_and_learning_early_retires_them,
    the_latest_model_is_the_last_saved,
    drift_alerts_round_trip_oldest_first_and_are_not_recorded_twice,
    a_decision_keeps_its_first_delivery_record_and_unknown_decisions_are_refused,
    decisions_learned_early_come_back_once_final_for_the_drift_detectors,
    a_feed_checkpoint_is_written_with_its_outcomes_per_use_case_and_source,
);
