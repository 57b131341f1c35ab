//! The simulator as a whole, through its HTTP API: the same scenario and seed give byte-identical
//! exports and outcomes, and what the server makes customers do matches the oracle's expectation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use common::Sim;
use jiff::{SignedDuration, Timestamp};
use offerloop_sim::server::ratelimit::RateLimits;
use offerloop_sim::state::DEFAULT_API_KEY;
use offerloop_sim::world::{Channel, Delivery};
use offerloop_sim::{Scenario, SimConfig, World};
use serde_json::{Map, Value, json};

const KEY: &str = DEFAULT_API_KEY;
const EMAIL: &str = "6f1c2a9e-winback-email";
const SMS: &str = "a27d0c41-winback-sms";
const PUSH: &str = "c90be8f3-winback-push";

fn winback(customers: usize, seed: Option<u64>) -> World {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/winback.toml");
    let mut scenario = Scenario::from_file(&path).unwrap();
    scenario.customers = customers;
    if let Some(seed) = seed {
        scenario.seed = seed;
    }
    World::new(scenario).unwrap()
}

fn config() -> SimConfig {
    SimConfig {
        rate_limits: RateLimits::unlimited(),
        export_delay: Duration::ZERO,
        ..SimConfig::default()
    }
}

/// Triggers `campaign` for `users` in requests of 50, with request-level `properties`.
async fn trigger(sim: &Sim, campaign: &str, users: &[String], properties: &Value) {
    for chunk in users.chunks(50) {
        let recipients: Vec<Value> = chunk.iter().map(|id| json!({ "external_user_id": id })).collect();
        let reply = sim
            .post(
                "/campaigns/trigger/send",
                KEY,
                json!({ "campaign_id": campaign, "trigger_properties": properties, "recipients": recipients }),
            )
            .await;
        assert!(
            reply.status < 300,
            "trigger {campaign}: {} {}",
            reply.status,
            reply.body
        );
    }
}

async fn advance(sim: &Sim, seconds: i64) {
    let reply = sim
        .send(
            reqwest::Method::POST,
            "/_sim/clock/advance",
            None,
            Some(&json!({ "seconds": seconds })),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// A segment export's files (name and content, in archive order).
async fn export(sim: &Sim, segment: &str) -> Vec<(String, String)> {
    let reply = sim
        .post(
            "/users/export/segment",
            KEY,
            json!({ "segment_id": segment, "fields_to_export": ["external_id", "custom_attributes", "purchases",
                    "total_revenue", "campaigns_received", "email_subscribe"] }),
        )
        .await;
    assert!(reply.status < 300, "{}", reply.body);
    let url = reply.body["url"].as_str().unwrap().to_string();
    let bytes = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let answer = sim.http.get(&url).send().await.unwrap();
            if answer.status().is_success() {
                break answer.bytes().await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the export of segment {segment} was not ready within 60 s"));
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).unwrap();
            let mut text = String::new();
            file.read_to_string(&mut text).unwrap();
            (file.name().unwrap().to_string(), text)
        })
        .collect()
}

/// One scripted month: sends on three channels, a local-time schedule, tracked events, time passing,
/// then the export and the whole event log.
async fn scripted_run(world: World) -> (Vec<(String, String)>, String, String) {
    let sim = Sim::start_world(world, config()).await;
    let ids: Vec<String> = (0..600).map(|i| sim.id(i)).collect();
    trigger(
        &sim,
        EMAIL,
        &ids[..200],
        &json!({ "offer": "pct10", "subject": "miss_you" }),
    )
    .await;
    trigger(&sim, SMS, &ids[200..400], &json!({ "offer": "pct20" })).await;
    for chunk in ids[400..600].chunks(50) {
        let recipients: Vec<Value> = chunk.iter().map(|id| json!({ "external_user_id": id })).collect();
        let reply = sim
            .post(
                "/campaigns/trigger/schedule/create",
                KEY,
                json!({ "campaign_id": PUSH, "recipients": recipients,
                        "trigger_properties": { "offer": "free_shipping" },
                        "schedule": { "time": "2026-01-06T18:30:00", "in_local_time": true } }),
            )
            .await;
        assert!(reply.status < 300, "{}", reply.body);
    }
    advance(&sim, 3 * 86_400).await;
    let reply = sim
        .post(
            "/users/track",
            KEY,
            json!({ "events": [{ "external_id": ids[0], "name": "site_visit", "time": "2026-01-08T10:00:00Z" }] }),
        )
        .await;
    assert!(reply.status < 300, "{}", reply.body);
    advance(&sim, 11 * 86_400).await;
    let files = export(&sim, "0c6a8e14-all-customers").await;
    let events = sim
        .send(reqwest::Method::GET, "/_sim/events", None, None)
        .await
        .body
        .to_string();
    let sends = sim
        .send(reqwest::Method::GET, "/_sim/sends", None, None)
        .await
        .body
        .to_string();
    (files, events, sends)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_scenario_and_seed_give_byte_identical_exports_and_outcomes() {
    let (files_a, events_a, sends_a) = scripted_run(winback(1_500, None)).await;
    let (files_b, events_b, sends_b) = scripted_run(winback(1_500, None)).await;
    assert!(!files_a.is_empty());
    let exported: usize = files_a.iter().map(|(_, text)| text.lines().count()).sum();
    assert_eq!(exported, 1_500, "the all-customers segment exports everyone");
    assert!(events_a.contains("purchase"), "a month of sends causes purchases");
    assert_eq!(files_a, files_b, "export files (names and bytes)");
    assert_eq!(events_a, events_b, "event log");
    assert_eq!(sends_a, sends_b, "sends and their dispatch ids");

    // Not vacuous: another seed is another world.
    let (files_c, events_c, _) = scripted_run(winback(1_500, Some(7))).await;
    assert_ne!(files_a, files_c);
    assert_ne!(events_a, events_c);
}

/// Customers with at least one purchase in `[from, to)`, among `users`.
fn converted(events: &Value, users: &[String], from: Timestamp, to: Timestamp) -> usize {
    let wanted: std::collections::HashSet<&str> = users.iter().map(String::as_str).collect();
    let mut buyers = std::collections::HashSet::new();
    for event in events["events"].as_array().unwrap() {
        let user = event["external_user_id"].as_str().unwrap_or_default();
        let time: Timestamp = event["time"].as_str().unwrap().parse().unwrap();
        if event["kind"]["type"] == "purchase" && wanted.contains(user) && time >= from && time < to {
            buyers.insert(user.to_string());
        }
    }
    buyers.len()
}

/// One action's recipients: campaign, ids, and the oracle's P(convert) and P(open) of each.
type Group<'a> = (&'a str, Vec<String>, Vec<f64>, Vec<f64>);

/// Customers who opened a message of `campaign`, among `users`.
fn opened(events: &Value, users: &[String], campaign: &str) -> usize {
    let wanted: std::collections::HashSet<&str> = users.iter().map(String::as_str).collect();
    let mut openers = std::collections::HashSet::new();
    for event in events["events"].as_array().unwrap() {
        let user = event["external_user_id"].as_str().unwrap_or_default();
        if event["kind"]["type"] == "open" && event["message"]["campaign_id"] == campaign && wanted.contains(user) {
            openers.insert(user.to_string());
        }
    }
    openers.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversions_through_the_server_match_the_oracle() {
    let world = winback(30_000, None);
    let horizon = i64::from(world.scenario().horizon_days);
    let start = world.scenario().start;
    let sim = Sim::start_world(world, config()).await;
    let actions = [
        (
            EMAIL,
            Channel::Email,
            json!({ "offer": "pct20", "subject": "miss_you" }),
        ),
        (SMS, Channel::Sms, json!({ "offer": "none" })),
        (
            PUSH,
            Channel::Push,
            json!({ "offer": "pct10", "subject": "new_arrivals" }),
        ),
    ];
    let n = sim.ws().world.len();
    // Customers k, k+3, k+6... get action k; the oracle's expectation for exactly them, sent now.
    let mut groups: Vec<Group<'_>> = Vec::new();
    for (k, (campaign, channel, properties)) in actions.iter().enumerate() {
        let users: Vec<usize> = (k..n).step_by(actions.len()).collect();
        let ids: Vec<String> = users.iter().map(|&i| sim.id(i)).collect();
        let delivery = Delivery {
            channel: *channel,
            campaign_id: Some((*campaign).to_string()),
            canvas_id: None,
            properties: properties.as_object().cloned().unwrap_or_else(Map::new),
            at: start,
            recent_sends: 0,
        };
        let (p, opens): (Vec<f64>, Vec<f64>) = {
            let ws = sim.ws();
            users
                .iter()
                .map(|&i| {
                    let e = ws.world.expected(i, &delivery);
                    (e.convert, e.open)
                })
                .unzip()
        };
        trigger(&sim, campaign, &ids, properties).await;
        groups.push((campaign, ids, p, opens));
    }
    advance(&sim, (horizon + 1) * 86_400).await;
    let events = sim.send(reqwest::Method::GET, "/_sim/events", None, None).await.body;
    let end = start.checked_add(SignedDuration::from_hours(24 * horizon)).unwrap();
    for (campaign, ids, p, opens) in &groups {
        for (what, p, observed) in [
            ("conversions", p, converted(&events, ids, start, end)),
            ("opens", opens, opened(&events, ids, campaign)),
        ] {
            let expected: f64 = p.iter().sum();
            let sd = p.iter().map(|p| p * (1.0 - p)).sum::<f64>().sqrt();
            let observed = observed as f64;
            eprintln!(
                "{campaign}: {observed} {what} of {}, oracle expects {expected:.1} ± {sd:.1}",
                ids.len()
            );
            if *campaign == SMS && what == "opens" {
                assert_eq!(observed, 0.0, "SMS has no opens");
                continue;
            }
            assert!(
                expected > 50.0,
                "{campaign}: too few expected {what} to test ({expected:.1})"
            );
            assert!(
                (observed - expected).abs() <= 4.0 * sd,
                "{campaign}: observed {observed} {what}, the oracle expects {expected:.1} ± {sd:.1}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsubscribe_since_the_start_closes_the_channel() {
    let sim = Sim::start_world(winback(300, None), config()).await;
    // Customers the world reaches by email at start.
    let reachable: Vec<String> = {
        let ws = sim.ws();
        (0..300)
            .filter(|&i| ws.world.reachable(i, Channel::Email))
            .take(20)
            .map(|i| ws.world.external_id(i).to_string())
            .collect()
    };
    assert_eq!(reachable.len(), 20);
    let attributes: Vec<Value> = reachable[..10]
        .iter()
        .map(|id| json!({ "external_id": id, "email_subscribe": "unsubscribed" }))
        .collect();
    let reply = sim.post("/users/track", KEY, json!({ "attributes": attributes })).await;
    assert!(reply.status < 300, "{}", reply.body);
    trigger(&sim, EMAIL, &reachable, &json!({ "offer": "none" })).await;
    advance(&sim, 86_400).await;
    let events = sim.send(reqwest::Method::GET, "/_sim/events", None, None).await.body;
    let kinds = |user: &str| -> Vec<String> {
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["external_user_id"] == user && e["message"]["campaign_id"] == EMAIL)
            .map(|e| e["kind"]["type"].as_str().unwrap().to_string())
            .collect()
    };
    for id in &reachable[..10] {
        assert_eq!(kinds(id), ["send", "bounce"], "{id} unsubscribed: bounced");
    }
    for id in &reachable[10..] {
        assert!(
            kinds(id).contains(&"delivery".to_string()),
            "{id} still subscribed: delivered"
        );
    }
}

#[test]
fn whatsapp_reaches_exactly_the_consenting_leads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/lead-nurture.toml");
    let world = World::new(Scenario::from_file(&path).unwrap()).unwrap();
    let (mut with, mut without) = (0, 0);
    for i in 0..world.len().min(2_000) {
        let consent = world.profile(i)["custom_attributes"]["whatsapp_marketing_consent"] == json!(true);
        assert_eq!(world.reachable(i, Channel::WhatsApp), consent, "lead {i}");
        if consent { with += 1 } else { without += 1 }
    }
    assert!(with > 100 && without > 100, "{with} with consent, {without} without");
}
