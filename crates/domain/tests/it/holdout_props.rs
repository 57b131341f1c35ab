//! Property tests of holdout assignment: stable, monotone, and close to the configured shares.

use offerloop_domain::{ControlAction, CustomerId, Fraction, Group, Holdout};
use proptest::prelude::*;

fn holdout(salt: &str, control: f64, random: f64) -> Holdout {
    Holdout::new(
        salt,
        Fraction::new(control).expect("valid"),
        Fraction::new(random).expect("valid"),
        ControlAction::NoMessage,
    )
    .expect("shares below 1")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn same_salt_and_id_give_the_same_group(
        salt in "[a-z0-9-]{1,16}",
        id in "[A-Za-z0-9_@.-]{1,40}",
        control in 0.0f64..0.5,
        random in 0.0f64..0.4,
    ) {
        let customer = CustomerId::new(id).expect("non-empty");
        let a = holdout(&salt, control, random);
        let b = holdout(&salt, control, random);
        prop_assert_eq!(a.assign(&customer), b.assign(&customer));
        prop_assert_eq!(a.position(&customer).to_bits(), b.position(&customer).to_bits());
    }

    #[test]
    fn raising_the_control_share_only_moves_treatment_into_control(
        salt in "[a-z0-9]{1,8}",
        id in "[a-z0-9]{1,20}",
        low in 0.0f64..0.5,
        extra in 0.0f64..0.4,
    ) {
        let customer = CustomerId::new(id).expect("non-empty");
        let before = holdout(&salt, low, 0.0).assign(&customer);
        let after = holdout(&salt, low + extra, 0.0).assign(&customer);
        if before == Group::Control {
            prop_assert_eq!(after, Group::Control);
        }
    }

    #[test]
    fn shares_are_within_tolerance(
        salt in "[a-z0-9]{1,12}",
        control in 0.01f64..0.5,
        random in 0.0f64..0.3,
    ) {
        let h = holdout(&salt, control, random);
        let n = 20_000usize;
        let mut counts = [0usize; 3];
        for i in 0..n {
            let customer = CustomerId::new(format!("customer-{i}")).expect("non-empty");
            match h.assign(&customer) {
                Group::Control => counts[0] += 1,
                Group::RandomControl => counts[1] += 1,
                Group::Treatment => counts[2] += 1,
            }
        }
        // Five binomial standard deviations: a false alarm is ~1 in 1.7 million per check.
        for (count, p) in [(counts[0], control), (counts[1], random)] {
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            let diff = (count as f64 - n as f64 * p).abs();
            prop_assert!(diff <= 5.0 * sd + 1.0, "share {p}: {count} of {n} (sd {sd:.1})");
        }
    }
}

#[test]
fn assignment_is_pinned_across_releases() {
    // If this changes, every deployed control group would reshuffle: treat it as a breaking change.
    let h = holdout("winback-2026", 0.1, 0.05);
    let groups: Vec<&str> = (0..12)
        .map(|i| h.assign(&CustomerId::new(format!("c{i}")).expect("non-empty")).as_str())
        .collect();
    insta::assert_snapshot!(groups.join(" "));
}
