//! Decisions: round-trips, never decided twice, ranges, and a failing call that stores none.

use offerloop_domain::{ActionId, Group, Probability};
use offerloop_store::{Error, Store};

use crate::{at, day, decision, with_run};

fn decisions_round_trip_exactly(store: &dyn Store) {
    let run = with_run(store);
    let mut control = decision("d-control", "c1", 1);
    control.group = Group::Control;
    control.propensity = Probability::ONE;
    control.action = ActionId(u64::MAX);
    let mut random = decision("d-random", "c2", 2);
    random.group = Group::RandomControl;
    random.propensity = Probability::new(1.0 / 36.0).unwrap();
    random.action = ActionId(35);
    let mut treated = decision("d-treated", "c3", 3);
    treated.decided_at = at("2026-11-29T08:00:03.123456789Z");
    treated.planned_send_at = Some(at("2026-11-29T17:30:00Z"));
    treated.cost = 0.0;
    let all = vec![control, random, treated];
    assert_eq!(store.record_decisions(run, &all).unwrap(), 3);
    assert_eq!(store.decisions(run).unwrap(), all);
}

fn a_decision_is_stored_once_whatever_is_recorded_again(store: &dyn Store) {
    let run = with_run(store);
    let first: Vec<_> = (0..10)
        .map(|i| decision(&format!("d{i}"), &format!("c{i}"), i))
        .collect();
    assert_eq!(store.record_decisions(run, &first).unwrap(), 10);
    assert_eq!(store.record_decisions(run, &first).unwrap(), 0);

    // A re-decision of a stored id (e.g. after a crash) never replaces the original.
    let mut redecided = first[3].clone();
    redecided.action = ActionId(99);
    let new = decision("d10", "c10", 10);
    assert_eq!(
        store
            .record_decisions(run, &[redecided, new.clone(), new.clone()])
            .unwrap(),
        1,
        "only d10 is new, and it counts once even when given twice"
    );
    let stored = store.decisions(run).unwrap();
    assert_eq!(stored.len(), 11);
    assert_eq!(stored[3], first[3]);
    assert_eq!(stored[10], new);
}

fn decisions_between_is_half_open_and_per_use_case(store: &dyn Store) {
    let run = with_run(store);
    let mut other = decision("o1", "c1", 5);
    other.use_case = "onboarding".to_owned();
    let decisions: Vec<_> = (0..5).map(|i| decision(&format!("d{i}"), "c1", i * 10)).collect();
    store.record_decisions(run, &decisions).unwrap();
    let onboarding = store
        .begin_run("onboarding", day("2026-11-29"), at("2026-11-29T06:00:00Z"))
        .unwrap();
    store
        .record_decisions(onboarding.id, std::slice::from_ref(&other))
        .unwrap();

    let found = store
        .decisions_between("winback", at("2026-11-29T08:00:10Z"), at("2026-11-29T08:00:30Z"))
        .unwrap();
    let ids: Vec<_> = found.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["d1", "d2"], "from is included, to is not");
    let everything = store
        .decisions_between("winback", jiff::Timestamp::MIN, jiff::Timestamp::MAX)
        .unwrap();
    assert_eq!(everything.len(), 5);
    assert_eq!(
        store
            .decisions_between("onboarding", jiff::Timestamp::MIN, jiff::Timestamp::MAX)
            .unwrap(),
        vec![other]
    );
}

fn a_call_that_fails_midway_stores_none_of_its_decisions(store: &dyn Store) {
    let run = with_run(store);
    store.record_decisions(run, &[decision("before", "c0", 0)]).unwrap();
    let mut batch: Vec<_> = (1..=100)
        .map(|i| decision(&format!("d{i}"), &format!("c{i}"), i))
        .collect();
    // The 51st decision cannot be stored (a cost that is not a number).
    batch[50].cost = f64::NAN;
    assert!(matches!(
        store.record_decisions(run, &batch),
        Err(Error::Unstorable {
            what: "decision cost",
            ..
        })
    ));
    let stored = store.decisions(run).unwrap();
    assert_eq!(stored.len(), 1, "the first 50 were rolled back with the rest");
    assert_eq!(stored[0].id, "before");

    // A time the store cannot represent fails the same way.
    let mut batch: Vec<_> = (1..=10).map(|i| decision(&format!("e{i}"), "c", i)).collect();
    batch[9].planned_send_at = Some(jiff::Timestamp::MAX);
    assert!(matches!(
        store.record_decisions(run, &batch),
        Err(Error::Unstorable { .. })
    ));
    assert_eq!(store.decisions(run).unwrap().len(), 1);
}

fn decisions_of_an_unknown_run_are_refused(store: &dyn Store) {
    let run = with_run(store);
    assert!(matches!(
        store.record_decisions(run + 1, &[decision("d", "c", 0)]),
        Err(Error::NotFound { what: "run", .. })
    ));
    assert!(store.decisions(run + 1).unwrap().is_empty());
    // The run exists on another date too: decisions belong to the run they were recorded in.
    let next = store
        .begin_run("winback", day("2026-11-30"), at("2026-11-30T06:00:00Z"))
        .unwrap();
    store.record_decisions(next.id, &[decision("d", "c", 0)]).unwrap();
    assert!(store.decisions(run).unwrap().is_empty());
    assert_eq!(store.decisions(next.id).unwrap().len(), 1);
}

fn a_decision_of_another_use_case_is_refused_with_the_whole_call(store: &dyn Store) {
    let run = with_run(store);
    let mut stray = decision("o1", "c1", 5);
    stray.use_case = "onboarding".to_owned();
    match store.record_decisions(run, &[decision("d1", "c1", 0), stray]) {
        Err(Error::Unstorable {
            what: "decision",
            message,
        }) => {
            assert!(message.contains("onboarding"), "{message}");
        }
        other => panic!("expected Unstorable, got {other:?}"),
    }
    assert!(store.decisions(run).unwrap().is_empty());
}

fn threads_sharing_one_store_each_store_their_decisions(store: &dyn Store) {
    let run = with_run(store);
    std::thread::scope(|scope| {
        for thread in 0..4 {
            scope.spawn(move || {
                for chunk in 0..10 {
                    let decisions: Vec<_> = (0..25)
                        .map(|i| {
                            let id = format!("t{thread}-{chunk}-{i}");
                            decision(&id, &id, i)
                        })
                        .collect();
                    assert_eq!(store.record_decisions(run, &decisions).unwrap(), 25);
                }
            });
        }
    });
    assert_eq!(store.decisions(run).unwrap().len(), 4 * 10 * 25);
}

both!(
    decisions_round_trip_exactly,
    a_decision_is_stored_once_whatever_is_recorded_again,
    decisions_between_is_half_open_and_per_use_case,
    a_call_that_fails_midway_stores_none_of_its_decisions,
    decisions_of_an_unknown_run_are_refused,
    a_decision_of_another_use_case_is_refused_with_the_whole_call,
    threads_sharing_one_store_each_store_their_decisions,
);
