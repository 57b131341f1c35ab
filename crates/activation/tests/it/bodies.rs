//! The exact request bodies activation sends, pinned as insta snapshots: a change to a Braze wire
//! format shows up as a reviewed snapshot diff, not as a silent change. Each body was checked
//! against Braze's documentation when its snapshot was first accepted (`recipients` with
//! `external_user_id` and `trigger_properties` / `canvas_entry_properties`, `schedule.time` with
//! `in_local_time`, `/users/track`'s `attributes` with `external_id`).

use offerloop_activation::{ActivationRequest, Activator, DryRunActivator};
use offerloop_domain::config::parse_use_case;
use offerloop_domain::{CustomerId, UseCase};
use serde_json::{Value, json};

fn example(name: &str) -> UseCase {
    let path = format!("{}/../../examples/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&path).unwrap();
    parse_use_case(&source, &path).unwrap()
}

/// Three decisions of `use_case`: option `i mod size` of every dimension for decision `i`, the
/// customers in New York, London and Sydney.
fn requests(use_case: &UseCase) -> Vec<ActivationRequest> {
    let zones = ["America/New_York", "Europe/London", "Australia/Sydney"];
    (0..3)
        .map(|i| ActivationRequest {
            decision_id: format!("d-{i}"),
            customer_id: CustomerId::new(format!("c-{i}")).unwrap(),
            options: use_case
                .actions
                .dimensions()
                .iter()
                .map(|d| u32::try_from(i % d.len()).unwrap())
                .collect(),
            time_zone: Some(zones[i].to_owned()),
            previous: None,
            not_before: Some("2026-01-05T06:00:00Z".parse().unwrap()),
        })
        .collect()
}

/// Every planned batch of the example as `{kind, request}`, in plan order.
fn bodies(name: &str) -> Value {
    let use_case = example(name);
    let activator = DryRunActivator::new(std::env::temp_dir().join("unused.jsonl"));
    let batches = activator
        .plan(&use_case, "2026-01-05".parse().unwrap(), &requests(&use_case))
        .unwrap();
    Value::Array(
        batches
            .iter()
            .map(|b| json!({"kind": b.kind, "request": b.request_json().unwrap()}))
            .collect(),
    )
}

#[test]
fn campaign_sends_schedules_and_profile_attributes_of_winback() {
    insta::assert_json_snapshot!(bodies("winback"));
}

#[test]
fn canvas_entries_of_renewal() {
    insta::assert_json_snapshot!(bodies("renewal"));
}
