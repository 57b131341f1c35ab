//! Property: whatever decisions are recorded, in whatever chunks and repetitions, each id is stored
//! exactly once, as first recorded, and the counts returned add up to the distinct ids.

use std::collections::BTreeMap;

use offerloop_domain::ActionId;
use offerloop_store::Store;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::{decision, store_with_run};

fn check_props(picks: &[(u8, u8)], chunk_sizes: &[usize]) -> Result<(), TestCaseError> {
    let (store, run) = store_with_run();
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
    fn record_decisions_stores_each_id_exactly_once(
        picks in prop::collection::vec((0_u8..40, any::<u8>()), 0..120),
        chunk_sizes in prop::collection::vec(1_usize..50, 1..8),
    ) {
        check_props(&picks, &chunk_sizes)?;
    }
}

/// Property: after any sequence of upserts of one decision's reward, the stored reward is the last
/// final one if there was any, else the last pending one.
fn check_rewards(upserts: &[(bool, u8)]) -> Result<(), TestCaseError> {
    use offerloop_domain::{Reward, RewardStatus};
    let (store, run) = store_with_run();
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
    fn a_final_reward_never_regresses(upserts in prop::collection::vec((any::<bool>(), any::<u8>()), 0..12)) {
        check_rewards(&upserts)?;
    }
}
