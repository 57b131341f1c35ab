//! Properties of both back-ends: whatever decisions are recorded, in whatever chunks and
//! repetitions, each id is stored exactly once, as first recorded, and the counts returned add up to
//! the distinct ids; a final reward never regresses. Each case runs on a fresh store (in memory for
//! SQLite, a fresh schema for PostgreSQL, with fewer cases: a schema takes tens of milliseconds).

use std::collections::BTreeMap;

use offerloop_domain::ActionId;
use offerloop_store::Store;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::{backend, decision, with_run};

/// Cases of each property run against PostgreSQL.
const POSTGRES_CASES: u32 = 16;

fn picks_and_chunks() -> impl Strategy<Value = (Vec<(u8, u8)>, Vec<usize>)> {
    (
        prop::collection::vec((0_u8..40, any::<u8>()), 0..120),
        prop::collection::vec(1_usize..50, 1..8),
    )
}

fn check_props(store: &dyn Store, picks: &[(u8, u8)], chunk_sizes: &[usize]) -> Result<(), TestCaseError> {
    let run = with_run(store);
    // Each pick is (id, action): the same id may come back with another action, which must not win.
    let decisions: Vec<_> = picks
        .iter()
        .enumerate()
        .map(|(i, (id, action))| {
            let mut d = decision(&format!("d{id}"), &format!("c{id}"), i64::try_from(i).unwrap());
            d.action = ActionId(u64::from(*action));
            d
        })
        .collect();
    let mut first = BTreeMap::new();
    for d in &decisions {
        first.entry(d.id.clone()).or_insert_with(|| d.clone());
    }

    let mut new = 0;
    let mut rest = decisions.as_slice();
    let mut sizes = chunk_sizes.iter().cycle();
    while !rest.is_empty() {
        let size = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(size);
        new += store.record_decisions(run, chunk).unwrap();
        rest = tail;
    }
    // Recording everything again adds nothing.
    prop_assert_eq!(store.record_decisions(run, &decisions).unwrap(), 0);

    let stored = store.decisions(run).unwrap();
    prop_assert_eq!(new, first.len());
    prop_assert_eq!(stored.len(), first.len());
    for d in &stored {
        prop_assert_eq!(Some(d), first.get(&d.id));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn record_decisions_stores_each_id_exactly_once_sqlite((picks, chunk_sizes) in picks_and_chunks()) {
        check_props(&*backend::sqlite(), &picks, &chunk_sizes)?;
    }
}

#[test]
fn record_decisions_stores_each_id_exactly_once_postgres() {
    if !backend::enabled() {
        return;
    }
    TestRunner::new(Config::with_cases(POSTGRES_CASES))
        .run(&picks_and_chunks(), |(picks, chunk_sizes)| {
            check_props(&backend::postgres().unwrap(), &picks, &chunk_sizes)
        })
        .unwrap();
}

/// Property: after any sequence of upserts of one decision's reward, the stored reward is the last
/// final one if there was any, else the last pending one.
fn check_rewards(store: &dyn Store, upserts: &[(bool, u8)]) -> Result<(), TestCaseError> {
    use offerloop_domain::{Reward, RewardStatus};
    let run = with_run(store);
    store.record_decisions(run, &[decision("d", "c", 0)]).unwrap();
    let rewards: Vec<_> = upserts
        .iter()
        .map(|(is_final, value)| Reward {
            decision_id: "d".to_owned(),
            value: f64::from(*value),
            status: if *is_final {
                RewardStatus::Final
            } else {
                RewardStatus::Pending
            },
            attributed_outcomes: usize::from(*value),
        })
        .collect();
    for reward in &rewards {
        store.upsert_rewards(std::slice::from_ref(reward)).unwrap();
    }
    let expected = rewards
        .iter()
        .rev()
        .find(|r| r.status == RewardStatus::Final)
        .or(rewards.last());
    let stored = store
        .rewards_between("winback", jiff::Timestamp::MIN, jiff::Timestamp::MAX)
        .unwrap();
    prop_assert_eq!(stored.first(), expected);
    prop_assert!(stored.len() <= 1);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_final_reward_never_regresses_sqlite(upserts in upserts()) {
        check_rewards(&*backend::sqlite(), &upserts)?;
    }
}

fn upserts() -> impl Strategy<Value = Vec<(bool, u8)>> {
    prop::collection::vec((any::<bool>(), any::<u8>()), 0..12)
}

/// The same on PostgreSQL, where the upserts also go in one call: one statement merges the
/// rewards of one decision given several times as applying them in turn would.
#[test]
fn a_final_reward_never_regresses_postgres() {
    use offerloop_domain::{Reward, RewardStatus};
    if !backend::enabled() {
        return;
    }
    TestRunner::new(Config::with_cases(POSTGRES_CASES))
        .run(&upserts(), |upserts| {
            let store = backend::postgres().unwrap();
            check_rewards(&store, &upserts)?;
            // All at once, into a second decision: the same reward is kept.
            let run = with_run(&store);
            store.record_decisions(run, &[decision("e", "c", 1)]).unwrap();
            let rewards: Vec<_> = upserts
                .iter()
                .map(|(is_final, value)| Reward {
                    decision_id: "e".to_owned(),
                    value: f64::from(*value),
                    status: if *is_final {
                        RewardStatus::Final
                    } else {
                        RewardStatus::Pending
                    },
                    attributed_outcomes: usize::from(*value),
                })
                .collect();
            store.upsert_rewards(&rewards).unwrap();
            let stored = store
                .rewards_between("winback", jiff::Timestamp::MIN, jiff::Timestamp::MAX)
                .unwrap();
            let d = stored
                .iter()
                .find(|r| r.decision_id == "d")
                .map(|r| (r.value, r.status));
            let e = stored
                .iter()
                .find(|r| r.decision_id == "e")
                .map(|r| (r.value, r.status));
            prop_assert_eq!(d, e);
            Ok(())
        })
        .unwrap();
}
