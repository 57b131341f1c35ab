//! The winback example activated through the real client against the simulated winback world: each
//! decided customer gets exactly one message, from the campaign of their channel, at their local send
//! time, with the decision's properties; profile attributes land on the profiles.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;
use jiff::civil::Date;
use offerloop_activation::{ActivationRequest, Activator, BatchKind, BatchOutcome, BrazeActivator};
use offerloop_braze::{ApiKey, BrazeClient, BrazeConfig};
use offerloop_domain::config::parse_use_case;
use offerloop_domain::dimension::{MessageTarget, OptionPayload};
use offerloop_domain::{CustomerId, UseCase};
use offerloop_sim::state::DEFAULT_API_KEY;
use offerloop_sim::{Scenario, SimBraze, SimConfig, World};
use serde_json::{Value, json};

fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// `examples/winback.toml` pointed at `base_url`.
fn winback_use_case(base_url: &str) -> UseCase {
    let source = std::fs::read_to_string(repo("examples/winback.toml")).unwrap();
    let source = source.replace("https://rest.iad-01.braze.com", base_url);
    parse_use_case(&source, "examples/winback.toml").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn winback_decisions_reach_each_customer_exactly_once_with_their_properties() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let scenario = Scenario::from_file(&repo("crates/sim/scenarios/winback.toml"))
        .unwrap()
        .with_customers(400);
    let world = World::new(scenario).unwrap();
    let sim = SimBraze::start(world, SimConfig::default()).await.unwrap();
    let base = sim.base_url();
    let use_case = winback_use_case(&base);
    assert_eq!(use_case.braze.endpoint, base);
    let config = BrazeConfig::builder(base.clone(), ApiKey::new(DEFAULT_API_KEY).unwrap())
        .request_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let activator = BrazeActivator::new(Arc::new(BrazeClient::new(config).unwrap()));

    // 170 of the 400 customers decided (every combination of offer, channel, send time, subject),
    // the others not: they must receive nothing.
    let (externals, zones): (Vec<String>, Vec<String>) = {
        let ws = sim.state().lock();
        (0..400)
            .map(|i| {
                let profile = ws.users.profile(&ws.world, i);
                (
                    ws.world.external_id(i).to_owned(),
                    profile["time_zone"].as_str().unwrap().to_owned(),
                )
            })
            .unzip()
    };
    let dimensions = use_case.actions.dimensions();
    let sizes: Vec<u32> = dimensions.iter().map(|d| u32::try_from(d.len()).unwrap()).collect();
    let requests: Vec<ActivationRequest> = (0..170u32)
        .map(|i| {
            let mut rest = i;
            let options = sizes
                .iter()
                .map(|&n| {
                    let o = rest % n;
                    rest /= n;
                    o
                })
                .collect();
            ActivationRequest {
                decision_id: format!("winback/2026-01-05/{i:04}"),
                customer_id: CustomerId::new(externals[i as usize * 2].clone()).unwrap(),
                options,
                time_zone: Some(zones[i as usize * 2].clone()),
                previous: None,
                not_before: None,
            }
        })
        .collect();

    let date: Date = "2026-01-05".parse().unwrap();
    let batches = activator.plan(&use_case, date, &requests).unwrap();
    for batch in &batches {
        let outcome = activator.execute(batch).await;
        let BatchOutcome::Sent { id, notice } = outcome else {
            panic!("batch {:?} failed: {outcome:?}", batch.kind)
        };
        assert_eq!(notice, None);
        assert_eq!(
            id.is_some(),
            batch.kind != BatchKind::TrackAttributes,
            "{:?}",
            batch.kind
        );
    }

    // What each decided customer must get.
    let index = |name: &str| use_case.actions.dimension_index(name).unwrap();
    let expected: BTreeMap<String, (String, String, Value)> = requests
        .iter()
        .map(|r| {
            let option = |d: usize| &dimensions[d].options[r.options[d] as usize];
            let OptionPayload::Channel {
                target: MessageTarget::Campaign(campaign),
                ..
            } = &option(index("channel")).payload
            else {
                panic!("winback channels are campaigns")
            };
            let OptionPayload::SendTime { local_time } = &option(index("send_time")).payload else {
                panic!("send-time option")
            };
            let mut properties = serde_json::Map::new();
            for d in ["offer", "send_time", "subject"] {
                for (key, value) in &option(index(d)).properties {
                    properties.insert(key.clone(), value.clone());
                }
            }
            for d in ["offer", "send_time", "subject"] {
                properties.insert(d.to_owned(), json!(option(index(d)).id.as_str()));
            }
            (
                r.customer_id.as_str().to_owned(),
                (campaign.clone(), local_time.to_string(), Value::Object(properties)),
            )
        })
        .collect();

    // The schedules hold each recipient with the decision's properties.
    {
        let ws = sim.state().lock();
        let mut scheduled = 0;
        for schedule in &ws.sends.schedules {
            for target in &schedule.targets {
                let external = ws.world.external_id(target.target.user);
                let (_, _, properties) = &expected[external];
                assert_eq!(
                    &Value::Object(target.target.properties.clone()),
                    properties,
                    "{external}"
                );
                assert!(target.due.is_some(), "{external}: local time already passed");
                scheduled += 1;
            }
        }
        assert_eq!(scheduled, requests.len());
        // Profile attributes were written through /users/track.
        let first = &requests[0];
        let user = ws.world.index_of(first.customer_id.as_str()).unwrap();
        let profile = ws.users.profile(&ws.world, user);
        let text = Value::Object(profile).to_string();
        assert!(text.contains("offerloop_offer"), "{text}");
    }

    // Two simulated days later, every schedule has run.
    sim.advance_clock(SignedDuration::from_hours(48));
    let http = reqwest::Client::builder().build().unwrap();
    let sends: Value = http
        .get(format!("{base}/_sim/sends"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut per_customer: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for send in sends["sends"].as_array().unwrap() {
        per_customer
            .entry(send["external_user_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(send);
    }
    assert_eq!(per_customer.len(), expected.len(), "only decided customers receive");
    for (customer, (campaign, local_time, _)) in &expected {
        let got = &per_customer[customer];
        assert_eq!(got.len(), 1, "{customer}: {got:?}");
        assert_eq!(got[0]["campaign_id"], json!(campaign), "{customer}");
        let at: jiff::Timestamp = got[0]["time"].as_str().unwrap().parse().unwrap();
        let zone = &zones[externals.iter().position(|e| e == customer).unwrap()];
        let local = at.in_tz(zone).unwrap();
        assert_eq!(local.date(), date, "{customer}");
        assert_eq!(local.strftime("%H:%M").to_string(), *local_time, "{customer} in {zone}");
    }
}
