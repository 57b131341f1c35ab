//! The server infrastructure and user routes against a running `SimBraze`: authentication (401,
//! quoted key, 403, IP allowlist), rate-limit headers and 429s, 404/405, `/users/track` validation and
//! partial success, `/users/export/ids`, the segment export lifecycle, the `/_sim` clock, fault
//! injection ("applied but response lost", resets, 5xx) and the Currents feed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Read as _;
use std::time::Duration;

use common::Sim;
use jiff::SignedDuration;
use offerloop_sim::SimConfig;
use offerloop_sim::server::{Limit, RateLimits};
use offerloop_sim::state::{EventKind, MessageRef};
use offerloop_sim::world::Channel;
use reqwest::Method;
use serde_json::{Map, Value, json};

const ALL: &str = "all-permissions";
const TRACK_ONLY: &str = "track-only";
const OFFICE: &str = "office-only";

const SCENARIO: &str = r#"
name = "users"
seed = 5
customers = 40
start = "2026-01-05T00:00:00Z"

[[attribute]]
name = "plan"
field = "custom_attributes.plan"
type = "category"
categories = { basic = 0.5, premium = 0.5 }

[conversion]
type = "purchase"
product_id = "sku"
value = { kind = "fixed", value = 50 }

[response]
open = { base = 8.0 }
click = { base = 8.0 }
convert = { base = 8.0 }
unsubscribe = { base = -12.0 }
organic = { base = -20.0 }

[[braze.api_keys]]
key = "all-permissions"
permissions = ["*"]

[[braze.api_keys]]
key = "track-only"
permissions = ["users.track"]

[[braze.api_keys]]
key = "office-only"
permissions = ["*"]
ip_allowlist = ["10.0.0.0/8"]

[[braze.campaigns]]
id = "camp"
name = "Campaign"
channels = ["email"]

[[braze.segments]]
id = "seg-premium"
name = "Premium"
filter = [{ field = "custom_attributes.plan", eq = "premium" }]

[[braze.segments]]
id = "seg-all"
name = "Everyone"
"#;

fn quick_exports() -> SimConfig {
    SimConfig {
        export_delay: Duration::from_millis(300),
        export_users_per_file: 7,
        ..SimConfig::default()
    }
}

async fn start() -> Sim {
    Sim::start(SCENARIO, SimConfig::default()).await
}

fn track_event(id: &str) -> Value {
    json!({"external_id": id, "name": "app_opened", "time": "2026-01-04T10:00:00Z"})
}

// ---------------------------------------------------------------- auth, routing, headers

#[tokio::test]
async fn authentication_failures_are_401_and_missing_permissions_403() {
    let sim = start().await;
    let body = json!({});
    let missing = sim.send(Method::POST, "/users/track", None, Some(&body)).await;
    assert_eq!(missing.status, 401);
    assert!(
        missing.message().contains("Error authenticating credentials"),
        "{}",
        missing.message()
    );
    assert_eq!(sim.post("/users/track", "nope", body.clone()).await.status, 401);
    assert_eq!(
        sim.post("/users/track", "\"all-permissions\"", body.clone())
            .await
            .status,
        401
    );
    assert_eq!(
        sim.post("/users/track", "'all-permissions'", body.clone()).await.status,
        401
    );
    // The default key is not accepted when the scenario declares keys.
    assert_eq!(
        sim.post("/users/track", offerloop_sim::state::DEFAULT_API_KEY, body.clone())
            .await
            .status,
        401
    );
    assert_eq!(sim.post("/users/track", TRACK_ONLY, body.clone()).await.status, 201);
    let denied = sim
        .post(
            "/users/export/ids",
            TRACK_ONLY,
            json!({"external_ids": ["x"], "fields_to_export": ["external_id"]}),
        )
        .await;
    assert_eq!(denied.status, 403);
    assert!(denied.message().starts_with("Access Denied"), "{}", denied.message());
    // Tests connect from 127.0.0.1, outside the office allowlist.
    let outside = sim.post("/users/track", OFFICE, body.clone()).await;
    assert_eq!(outside.status, 401);
    assert_eq!(outside.message(), "Invalid whitelisted IPs");
    let keys = sim.sim.api_keys();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[1].permissions, ["users.track"]);
}

#[tokio::test]
async fn the_default_key_has_every_permission_when_none_is_declared() {
    let sim = Sim::start("seed = 1\ncustomers = 3\n", SimConfig::default()).await;
    let key = offerloop_sim::state::DEFAULT_API_KEY;
    assert_eq!(sim.sim.api_keys()[0].key, key);
    assert_eq!(sim.post("/users/track", key, json!({})).await.status, 201);
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405_with_rate_limit_headers() {
    let sim = start().await;
    let unknown = sim.post("/users/nope", ALL, json!({})).await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.message().starts_with("Not Found"));
    assert!(unknown.header("x-ratelimit-limit").is_some());
    let wrong = sim.get("/users/track", ALL).await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("POST"));
    assert_eq!(wrong.header("x-ratelimit-limit"), Some("3000"));
}

#[tokio::test]
async fn rate_limit_headers_are_on_every_response_and_a_tiny_bucket_answers_429() {
    let sim = Sim::start(
        SCENARIO,
        SimConfig {
            rate_limits: RateLimits::tiny(),
            ..SimConfig::default()
        },
    )
    .await;
    let ok = sim.post("/users/track", ALL, json!({})).await;
    assert_eq!(ok.status, 201);
    assert_eq!(ok.header("x-ratelimit-limit"), Some("3"));
    assert_eq!(ok.header("x-ratelimit-remaining"), Some("2"));
    let reset: u64 = ok.header("x-ratelimit-reset").unwrap().parse().unwrap();
    assert!(reset > 1_700_000_000, "epoch seconds: {reset}");
    // An auth failure carries the headers and does not take a token.
    let unauthorized = sim.post("/users/track", "nope", json!({})).await;
    assert_eq!(unauthorized.status, 401);
    assert_eq!(unauthorized.header("x-ratelimit-remaining"), Some("2"));
    // A validation error does take one (the request reached the endpoint).
    let bad = sim.post("/users/track", ALL, json!({"events": 3})).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.header("x-ratelimit-remaining"), Some("1"));
    assert_eq!(
        sim.post("/users/track", ALL, json!({}))
            .await
            .header("x-ratelimit-remaining"),
        Some("0")
    );
    let limited = sim.post("/users/track", ALL, json!({})).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
    assert!(limited.header("retry-after").is_some());
    assert!(!limited.message().is_empty());
    // Another pool is separate.
    let other = sim
        .post(
            "/users/export/ids",
            ALL,
            json!({"external_ids": ["x"], "fields_to_export": ["external_id"]}),
        )
        .await;
    assert_eq!(other.status, 201);
    assert_eq!(other.header("x-ratelimit-remaining"), Some("2"));
}

#[tokio::test]
async fn messaging_requests_to_an_audience_count_in_the_broadcast_pool() {
    let limits = RateLimits {
        broadcast: Limit::new(1, Duration::from_secs(60)),
        ..RateLimits::default()
    };
    let sim = Sim::start(
        SCENARIO,
        SimConfig {
            rate_limits: limits,
            ..SimConfig::default()
        },
    )
    .await;
    let broadcast = json!({"campaign_id": "camp", "broadcast": true});
    let first = sim.post("/campaigns/trigger/send", ALL, broadcast.clone()).await;
    assert_eq!(first.header("x-ratelimit-limit"), Some("1"));
    assert_eq!(sim.post("/campaigns/trigger/send", ALL, broadcast).await.status, 429);
    let listed = sim
        .post(
            "/campaigns/trigger/send",
            ALL,
            json!({"campaign_id": "camp", "recipients": [{"external_user_id": sim.id(0)}]}),
        )
        .await;
    assert_ne!(listed.status, 429);
    assert_eq!(listed.header("x-ratelimit-limit"), Some("250000"));
}

// ---------------------------------------------------------------- /users/track

#[tokio::test]
async fn track_rejects_arrays_over_75_objects_and_applies_nothing() {
    let sim = start().await;
    let id = sim.id(0);
    let events: Vec<Value> = (0..76).map(|_| track_event(&id)).collect();
    let reply = sim
        .post(
            "/users/track",
            ALL,
            json!({"events": events, "attributes": [{"external_id": id, "x": 1}]}),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.message(), "Max Input Length Exceeded");
    let ws = sim.ws();
    assert!(ws.users.delta(0).is_none());
    assert!(ws.events.is_empty());
}

/// Workspaces on the "Monthly Active Users CY 24-25" package accept 50 updates per request,
/// attributes, events and purchases combined; the scenario says so with `track_updates_per_request`.
#[tokio::test]
async fn a_combined_track_limit_refuses_a_request_over_it_and_applies_nothing() {
    let scenario = SCENARIO.replacen(
        "[[braze.api_keys]]",
        "[braze]\ntrack_updates_per_request = 50\n\n[[braze.api_keys]]",
        1,
    );
    let sim = Sim::start(&scenario, SimConfig::default()).await;
    let id = sim.id(0);
    let over: Vec<Value> = (0..50).map(|_| track_event(&id)).collect();
    let reply = sim
        .post(
            "/users/track",
            ALL,
            json!({"events": over, "attributes": [{"external_id": id, "x": 1}]}),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.message(), "Max Input Length Exceeded");
    assert!(sim.ws().events.is_empty() && sim.ws().users.delta(0).is_none());
    let attributes: Vec<Value> = (0..50).map(|i| json!({"external_id": id, "x": i})).collect();
    let reply = sim.post("/users/track", ALL, json!({"attributes": attributes})).await;
    assert_eq!(reply.status, 201, "50 updates are within the limit");
}

#[tokio::test]
async fn track_validation_errors_are_partial_with_the_good_objects_applied() {
    let sim = start().await;
    let (a, b) = (sim.id(1), sim.id(2));
    let body = json!({
        "attributes": [
            {"external_id": a, "favourite": "tea"},
            {"favourite": "no identifier"},
            {"external_id": a, "braze_id": "b-1", "favourite": "two identifiers"},
            {"external_id": a, "email_subscribe": "maybe"},
        ],
        "events": [
            track_event(&a),
            {"external_id": a, "time": "2026-01-04T10:00:00Z"},
            {"external_id": a, "name": "no_time"},
            {"external_id": a, "name": "bad_time", "time": "yesterday"},
            {"external_id": a, "name": "reserved", "time": "2026-01-04T10:00:00Z", "properties": {"time": 1}},
            {"external_id": a, "name": "reserved", "time": "2026-01-04T10:00:00Z", "properties": {"event_name": "x"}},
            {"external_id": a, "name": "dollar", "time": "2026-01-04T10:00:00Z", "properties": {"$x": 1}},
        ],
        "purchases": [
            {"external_id": b, "product_id": "sku", "currency": "USD", "price": 12.5, "quantity": 2, "time": "2026-01-04T10:00:00Z"},
            {"external_id": b, "currency": "USD", "price": 1, "time": "2026-01-04T10:00:00Z"},
            {"external_id": b, "product_id": "sku", "price": 1, "time": "2026-01-04T10:00:00Z"},
            {"external_id": b, "product_id": "sku", "currency": "USD", "time": "2026-01-04T10:00:00Z"},
            {"external_id": b, "product_id": "sku", "currency": "USD", "price": 1, "quantity": 101, "time": "2026-01-04T10:00:00Z"},
            {"external_id": b, "product_id": "sku", "currency": "USD", "price": 1},
        ],
    });
    let reply = sim.post("/users/track", ALL, body).await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.message(), "success");
    assert_eq!(reply.body["attributes_processed"], 1);
    assert_eq!(reply.body["events_processed"], 1);
    assert_eq!(reply.body["purchases_processed"], 1);
    let errors = reply.body["errors"].as_array().unwrap();
    let at = |array: &str, index: usize| {
        errors
            .iter()
            .find(|e| e["input_array"] == array && e["index"] == index)
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no error for {array}[{index}] in {errors:?}"))
    };
    assert!(at("attributes", 1).contains("is required"));
    assert!(at("attributes", 2).contains("only one"));
    assert!(at("attributes", 3).contains("email_subscribe"));
    assert!(at("events", 1).contains("'name' is required"));
    assert!(at("events", 2).contains("'time' is required"));
    assert!(at("events", 3).contains("ISO-8601"));
    assert!(at("events", 4).contains("reserved"));
    assert!(at("events", 5).contains("reserved"));
    assert!(at("events", 6).contains('$'));
    assert!(at("purchases", 1).contains("product_id"));
    assert!(at("purchases", 2).contains("currency"));
    assert!(at("purchases", 3).contains("price"));
    assert!(at("purchases", 4).contains("quantity"));
    assert!(at("purchases", 5).contains("time"));
    assert_eq!(errors.len(), 14);

    let ws = sim.ws();
    let pa = ws.users.profile(&ws.world, 1);
    assert_eq!(pa["custom_attributes"]["favourite"], "tea");
    assert_eq!(
        pa["custom_events"],
        json!([{"name": "app_opened", "first": "2026-01-04T10:00:00Z", "last": "2026-01-04T10:00:00Z", "count": 1}])
    );
    let pb = ws.users.profile(&ws.world, 2);
    assert_eq!(pb["purchases"][0]["count"], 2);
    assert_eq!(pb["total_revenue"], 25.0);
    let logged: Vec<_> = ws.events.iter().map(|e| &e.kind).collect();
    assert_eq!(logged.len(), 2);
}

#[tokio::test]
async fn track_counters_are_only_present_for_arrays_sent() {
    let sim = start().await;
    let reply = sim
        .post("/users/track", ALL, json!({"events": [track_event(&sim.id(0))]}))
        .await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.body["events_processed"], 1);
    assert!(reply.body.get("attributes_processed").is_none());
    assert!(reply.body.get("purchases_processed").is_none());
    assert!(reply.body.get("errors").is_none());
}

#[tokio::test]
async fn track_rejects_malformed_bodies_and_non_array_fields() {
    let sim = start().await;
    let resp = sim
        .http
        .post(sim.url("/users/track"))
        .bearer_auth(ALL)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(sim.post("/users/track", ALL, json!([1, 2])).await.status, 400);
    let reply = sim
        .post("/users/track", ALL, json!({"attributes": {"external_id": "x"}}))
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply.message().contains("must be an array"));
}

#[tokio::test]
async fn track_creates_unknown_users_unless_update_existing_only_and_applies_nested_ops() {
    let sim = start().await;
    let id = sim.id(3);
    let reply = sim
        .post(
            "/users/track",
            ALL,
            json!({"attributes": [
                {"external_id": "brand-new", "first_name": "Ada", "country": "fr", "visits": 1},
                {"external_id": "ghost", "_update_existing_only": true, "x": 1},
                {"external_id": id, "visits": {"inc": 2}, "tags": ["a", "b", "a"]},
                {"external_id": id, "visits": {"inc": 3}, "tags": {"add": ["c", "a"]}},
                {"external_id": id, "tags": {"remove": ["b"]}, "plan": null},
                {"external_id": id, "email_subscribe": "unsubscribed", "time_zone": "Europe/Paris"},
            ]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["attributes_processed"], 2);
    let ws = sim.ws();
    let world = ws.world.clone();
    let created = ws.users.index_of(&world, "brand-new").unwrap();
    assert_eq!(created, 40);
    let p = ws.users.profile(&world, created);
    assert_eq!(p["first_name"], "Ada");
    assert_eq!(p["country"], "FR");
    assert_eq!(p["custom_attributes"]["visits"], 1);
    assert!(p.contains_key("created_at"));
    assert!(ws.users.index_of(&world, "ghost").is_none());
    let p = ws.users.profile(&world, 3);
    assert_eq!(p["custom_attributes"]["visits"], 5);
    assert_eq!(p["custom_attributes"]["tags"], json!(["a", "c"]));
    assert!(p["custom_attributes"].get("plan").is_none());
    assert_eq!(p["email_subscribe"], "unsubscribed");
    assert_eq!(p["time_zone"], "Europe/Paris");
}

// ---------------------------------------------------------------- /users/export/ids

#[tokio::test]
async fn export_ids_limits_identifier_kinds_and_filters_fields() {
    let sim = start().await;
    let too_many: Vec<String> = (0..51).map(|i| format!("u{i}")).collect();
    let reply = sim
        .post(
            "/users/export/ids",
            ALL,
            json!({"external_ids": too_many, "fields_to_export": ["external_id"]}),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.message(),
        "The max number of external_ids and aliases per request was exceeded"
    );
    let reply = sim
        .post(
            "/users/export/ids",
            ALL,
            json!({"email_address": "a@b.c", "phone": "+1555", "fields_to_export": ["external_id"]}),
        )
        .await;
    assert_eq!(reply.status, 400);
    let reply = sim
        .post("/users/export/ids", ALL, json!({"external_ids": [sim.id(0)]}))
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply.message().contains("fields_to_export"));
    let reply = sim
        .post(
            "/users/export/ids",
            ALL,
            json!({"external_ids": [sim.id(0)], "fields_to_export": ["ssn"]}),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        sim.post("/users/export/ids", ALL, json!({"fields_to_export": ["external_id"]}))
            .await
            .status,
        400
    );

    let ids: Vec<String> = (0..50).map(|i| sim.id(i % 40)).collect();
    sim.post(
        "/users/track",
        ALL,
        json!({"attributes": [{"external_id": sim.id(5), "first_name": ""}]}),
    )
    .await;
    let reply = sim
        .post(
            "/users/export/ids",
            ALL,
            json!({"external_ids": ids, "fields_to_export": ["external_id", "custom_attributes", "first_name", "purchases"]}),
        )
        .await;
    assert_eq!(reply.status, 201);
    let users = reply.body["users"].as_array().unwrap();
    assert_eq!(users.len(), 40, "duplicates collapse");
    for user in users {
        let keys: Vec<&str> = user.as_object().unwrap().keys().map(String::as_str).collect();
        assert!(
            keys.iter()
                .all(|k| ["external_id", "custom_attributes", "first_name"].contains(k)),
            "only requested fields: {keys:?}"
        );
        assert!(user.get("email").is_none());
        assert!(user.get("purchases").is_none(), "empty fields are omitted");
    }
    let five = users.iter().find(|u| u["external_id"] == sim.id(5)).unwrap();
    assert!(five.get("first_name").is_none(), "an empty string is omitted: {five}");
    assert!(reply.body.get("invalid_user_ids").is_none());

    let reply = sim
        .post(
            "/users/export/ids",
            ALL,
            json!({"external_ids": [sim.id(0), "nobody"], "fields_to_export": ["external_id"]}),
        )
        .await;
    assert_eq!(reply.body["users"], json!([{"external_id": sim.id(0)}]));
    assert_eq!(reply.body["invalid_user_ids"], json!(["nobody"]));
}

#[tokio::test]
async fn export_ids_finds_users_by_email_after_a_tracked_change() {
    let sim = start().await;
    let id = sim.id(7);
    sim.post(
        "/users/track",
        ALL,
        json!({"attributes": [{"external_id": id, "email": "seven@example.org"}]}),
    )
    .await;
    let reply = sim
        .post(
            "/users/export/ids",
            ALL,
            json!({"email_address": "seven@example.org", "fields_to_export": ["external_id", "email"]}),
        )
        .await;
    assert_eq!(
        reply.body["users"],
        json!([{"external_id": id, "email": "seven@example.org"}])
    );
    sim.post(
        "/users/track",
        ALL,
        json!({"attributes": [{"external_id": id, "email": "new@example.org"}]}),
    )
    .await;
    let reply = sim
        .post(
            "/users/export/ids",
            ALL,
            json!({"email_address": "seven@example.org", "fields_to_export": ["external_id"]}),
        )
        .await;
    assert_eq!(reply.body["users"], json!([]));
    assert_eq!(reply.body["invalid_user_ids"], json!(["seven@example.org"]));
}

#[tokio::test]
async fn track_by_an_unknown_email_creates_an_email_only_profile() {
    let sim = start().await;
    let email = "walk-in@example.org";
    let reply = sim
        .post(
            "/users/track",
            ALL,
            json!({
                "attributes": [{"email": email, "first_name": "Walk", "plan": "basic"}],
                "events": [{"email": email, "name": "app_opened", "time": "2026-01-04T10:00:00Z"}],
                "purchases": [{"email": email, "product_id": "sku", "currency": "USD", "price": 5.0, "time": "2026-01-04T11:00:00Z"}],
            }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["attributes_processed"], 1, "{}", reply.body);
    assert_eq!(reply.body["events_processed"], 1);
    assert_eq!(reply.body["purchases_processed"], 1);
    assert!(reply.body.get("errors").is_none(), "{}", reply.body);
    // Later objects with the same email update that profile.
    sim.post(
        "/users/track",
        ALL,
        json!({"attributes": [{"email": email, "last_name": "In"}]}),
    )
    .await;
    {
        let ws = sim.ws();
        assert_eq!(ws.users.len(&ws.world), 41, "one profile was created");
    }

    let fields = [
        "external_id",
        "email",
        "first_name",
        "last_name",
        "custom_attributes",
        "custom_events",
        "purchases",
        "total_revenue",
        "created_at",
    ];
    let reply = sim
        .post(
            "/users/export/ids",
            ALL,
            json!({"email_address": email, "fields_to_export": fields}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let users = reply.body["users"].as_array().unwrap();
    assert_eq!(users.len(), 1, "{}", reply.body);
    let user = &users[0];
    assert!(user.get("external_id").is_none(), "email-only: {user}");
    assert_eq!(user["email"], email);
    assert_eq!(user["first_name"], "Walk");
    assert_eq!(user["last_name"], "In");
    assert_eq!(user["custom_attributes"], json!({"plan": "basic"}));
    assert_eq!(user["custom_events"][0]["name"], "app_opened");
    assert_eq!(user["purchases"][0]["name"], "sku");
    assert_eq!(user["total_revenue"], 5.0);
    assert!(user["created_at"].is_string(), "{user}");

    // `_update_existing_only: true` creates nobody.
    let reply = sim
        .post(
            "/users/track",
            ALL,
            json!({"attributes": [{"email": "ghost@example.org", "_update_existing_only": true, "plan": "x"}]}),
        )
        .await;
    assert_eq!(reply.body["attributes_processed"], 0, "{}", reply.body);
    let reply = sim
        .post(
            "/users/export/ids",
            ALL,
            json!({"email_address": "ghost@example.org", "fields_to_export": ["email"]}),
        )
        .await;
    assert_eq!(reply.body["users"], json!([]));
    assert_eq!(reply.body["invalid_user_ids"], json!(["ghost@example.org"]));
}

// ---------------------------------------------------------------- /users/export/segment

/// A one-shot HTTP server that records the body of the first request it receives.
async fn callback_server() -> (String, tokio::sync::oneshot::Receiver<Value>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/export-done", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            data.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&data).to_string();
            if let Some(split) = text.find("\r\n\r\n") {
                let length: usize = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap();
                if data.len() >= split + 4 + length {
                    let body: Value = serde_json::from_slice(&data[split + 4..split + 4 + length]).unwrap();
                    stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .unwrap();
                    let _ = tx.send(body);
                    return;
                }
            }
            assert!(n > 0, "connection closed early");
        }
    });
    (url, rx)
}

fn zip_entries(bytes: &[u8]) -> Vec<(String, Vec<Value>)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut entry = archive.by_index(i).unwrap();
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            (
                entry.name().unwrap().into_owned(),
                text.lines().map(|l| serde_json::from_str(l).unwrap()).collect(),
            )
        })
        .collect()
}

#[tokio::test]
async fn segment_export_lifecycle() {
    let sim = Sim::start(SCENARIO, quick_exports()).await;
    let (callback, received) = callback_server().await;
    let missing = sim
        .post("/users/export/segment", ALL, json!({"segment_id": "seg-premium"}))
        .await;
    assert_eq!(missing.status, 400);
    let unknown = sim
        .post(
            "/users/export/segment",
            ALL,
            json!({"segment_id": "nope", "fields_to_export": ["external_id"]}),
        )
        .await;
    assert_eq!(unknown.status, 400);

    let reply = sim
        .post(
            "/users/export/segment",
            ALL,
            json!({"segment_id": "seg-premium", "fields_to_export": ["external_id", "email"], "custom_attributes_to_export": ["plan"], "callback_endpoint": callback}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let prefix = reply.body["object_prefix"].as_str().unwrap().to_owned();
    let url = reply.body["url"].as_str().unwrap().to_owned();
    assert!(url.ends_with(&format!("{prefix}.zip")));
    // One export per segment at a time; another segment may start.
    let again = sim
        .post(
            "/users/export/segment",
            ALL,
            json!({"segment_id": "seg-premium", "fields_to_export": ["external_id"]}),
        )
        .await;
    assert_eq!(again.status, 429);
    let other = sim
        .post(
            "/users/export/segment",
            ALL,
            json!({"segment_id": "seg-all", "fields_to_export": ["external_id"]}),
        )
        .await;
    assert_eq!(other.status, 201);
    // Not ready yet.
    assert_eq!(sim.http.get(&url).send().await.unwrap().status().as_u16(), 404);

    let done = tokio::time::timeout(Duration::from_secs(10), received)
        .await
        .expect("the export's callback within 10 s")
        .expect("the callback server got a request");
    assert_eq!(done, json!({"success": true, "url": url}));
    let resp = sim.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let entries = zip_entries(&resp.bytes().await.unwrap());
    let expected: Vec<String> = {
        let ws = sim.ws();
        (0..40)
            .filter(|i| ws.users.profile(&ws.world, *i)["custom_attributes"]["plan"] == "premium")
            .map(|i| ws.world.external_id(i).to_owned())
            .collect()
    };
    assert!(
        expected.len() > 7,
        "the scenario should put more than one file's worth in the segment"
    );
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[0], "00000.json");
    assert_eq!(entries.len(), expected.len().div_ceil(7));
    assert!(entries.iter().all(|(_, users)| users.len() <= 7));
    let users: Vec<&Value> = entries.iter().flat_map(|(_, u)| u).collect();
    let ids: Vec<&str> = users.iter().map(|u| u["external_id"].as_str().unwrap()).collect();
    assert_eq!(ids, expected);
    for user in users {
        let keys: Vec<&str> = user.as_object().unwrap().keys().map(String::as_str).collect();
        assert!(
            keys.iter()
                .all(|k| ["external_id", "email", "custom_attributes"].contains(k)),
            "{keys:?}"
        );
        assert_eq!(user["custom_attributes"], json!({"plan": "premium"}));
    }
    // Done: the segment may be exported again.
    let next = sim
        .post(
            "/users/export/segment",
            ALL,
            json!({"segment_id": "seg-premium", "fields_to_export": ["external_id"]}),
        )
        .await;
    assert_eq!(next.status, 201);
}

/// Polls `url` every 20 ms until it is served (200), for at most `limit` of the test's clock; fails
/// with a message instead of hanging.
async fn wait_until_served(sim: &Sim, url: &str, limit: Duration) {
    tokio::time::timeout(limit, async {
        while sim.http.get(url).send().await.unwrap().status().as_u16() != 200 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{url} not served within {limit:?}"));
}

/// On the paused clock: the export is served after its delay, for its TTL, then no more.
#[tokio::test(start_paused = true)]
async fn segment_export_urls_expire() {
    let ttl = Duration::from_millis(200);
    let config = SimConfig {
        export_ttl: ttl,
        ..quick_exports()
    };
    let delay = config.export_delay;
    let sim = Sim::start(SCENARIO, config).await;
    let started = tokio::time::Instant::now();
    let reply = sim
        .post(
            "/users/export/segment",
            ALL,
            json!({"segment_id": "seg-all", "fields_to_export": ["external_id"]}),
        )
        .await;
    let url = reply.body["url"].as_str().unwrap().to_owned();
    assert_eq!(
        sim.http.get(&url).send().await.unwrap().status().as_u16(),
        404,
        "not before the delay"
    );
    wait_until_served(&sim, &url, Duration::from_secs(10)).await;
    let seen = started.elapsed();
    assert!(seen >= delay, "served after {seen:?}, before the {delay:?} delay");
    // It became ready at most one 20 ms poll before `seen`: still served 150 ms later (< TTL),
    // gone 250 ms later (> TTL + one poll).
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        sim.http.get(&url).send().await.unwrap().status().as_u16(),
        200,
        "within the TTL"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        sim.http.get(&url).send().await.unwrap().status().as_u16(),
        404,
        "after the TTL"
    );
}

// ---------------------------------------------------------------- clock, faults, Currents

fn attr(sim: &Sim, user: usize, key: &str) -> Option<Value> {
    let ws = sim.ws();
    ws.users.custom_attribute(&ws.world, user, key)
}

fn message(dispatch: &str) -> MessageRef {
    MessageRef {
        campaign_id: Some("camp".into()),
        canvas_id: None,
        canvas_step_id: None,
        message_variation_id: None,
        dispatch_id: dispatch.into(),
        send_id: None,
        channel: Channel::Email,
    }
}

#[tokio::test]
async fn advancing_the_clock_applies_outcomes() {
    let sim = start().await;
    let now = {
        let mut ws = sim.ws();
        let now = ws.now;
        ws.deliver(0, message("d-1"), Map::new(), now);
        now
    };
    let clock = sim.send(Method::GET, "/_sim/clock", None, None).await;
    assert_eq!(clock.body["now"], now.to_string());
    let before = sim.ws().events.len();
    assert_eq!(
        sim.send(Method::POST, "/_sim/clock/advance", None, Some(&json!({"seconds": -1})))
            .await
            .status,
        400
    );
    assert_eq!(
        sim.send(
            Method::POST,
            "/_sim/clock/advance",
            None,
            Some(&json!({"to": "2020-01-01T00:00:00Z"}))
        )
        .await
        .status,
        400
    );
    let advanced = sim
        .send(
            Method::POST,
            "/_sim/clock/advance",
            None,
            Some(&json!({"seconds": 3 * 86_400})),
        )
        .await;
    assert_eq!(advanced.status, 200);
    assert_eq!(advanced.body["now"], (now + SignedDuration::from_hours(72)).to_string());
    {
        let ws = sim.ws();
        assert!(ws.events.len() > before);
        assert!(ws.events.iter().any(|e| e.kind == EventKind::Open));
    }
    let to = sim
        .send(
            Method::POST,
            "/_sim/clock/advance",
            None,
            Some(&json!({"to": "2026-01-20T00:00:00Z"})),
        )
        .await;
    assert_eq!(to.body["now"], "2026-01-20T00:00:00Z");
    let sends = sim.send(Method::GET, "/_sim/sends", None, None).await;
    assert_eq!(sends.body["sends"].as_array().unwrap().len(), 1);
    assert_eq!(sends.body["sends"][0]["dispatch_id"], "d-1");
    assert_eq!(sends.body["sends"][0]["channel"], "email");
    let now = sim.sim.advance_clock(SignedDuration::from_hours(1));
    assert_eq!(now.to_string(), "2026-01-20T01:00:00Z");
}

#[tokio::test]
async fn a_lost_response_still_applies_the_side_effect_and_a_reset_does_not() {
    let sim = start().await;
    let id = sim.id(4);
    let set = sim
        .send(
            Method::PUT,
            "/_sim/faults",
            None,
            Some(&json!({"lost_response_rate": 1.0, "paths": ["/users/track"]})),
        )
        .await;
    assert_eq!(set.status, 200);
    let lost = sim
        .try_send(
            Method::POST,
            "/users/track",
            Some(ALL),
            Some(&json!({"attributes": [{"external_id": id, "lost": 1}]})),
        )
        .await;
    assert!(lost.is_err(), "no response expected");
    assert_eq!(attr(&sim, 4, "lost"), Some(json!(1)));
    // Other paths are unaffected.
    assert_eq!(
        sim.post(
            "/users/export/ids",
            ALL,
            json!({"external_ids": [id], "fields_to_export": ["external_id"]})
        )
        .await
        .status,
        201
    );

    sim.send(Method::PUT, "/_sim/faults", None, Some(&json!({"reset_rate": 1.0})))
        .await;
    let reset = sim
        .try_send(
            Method::POST,
            "/users/track",
            Some(ALL),
            Some(&json!({"attributes": [{"external_id": id, "reset": 1}]})),
        )
        .await;
    assert!(reset.is_err());
    assert_eq!(attr(&sim, 4, "reset"), None);

    sim.send(
        Method::PUT,
        "/_sim/faults",
        None,
        Some(&json!({"error_rate": 1.0, "error_statuses": [503]})),
    )
    .await;
    let unavailable = sim
        .post(
            "/users/track",
            ALL,
            json!({"attributes": [{"external_id": id, "e": 1}]}),
        )
        .await;
    assert_eq!(unavailable.status, 503);
    assert!(unavailable.header("x-ratelimit-limit").is_some());
    assert_eq!(attr(&sim, 4, "e"), None);

    sim.send(
        Method::PUT,
        "/_sim/faults",
        None,
        Some(&json!({"rate_limit_rate": 1.0})),
    )
    .await;
    assert_eq!(sim.post("/users/track", ALL, json!({})).await.status, 429);

    assert_eq!(
        sim.send(Method::PUT, "/_sim/faults", None, Some(&json!({"error_rate": 2.0})))
            .await
            .status,
        400
    );
    assert_eq!(
        sim.send(Method::PUT, "/_sim/faults", None, Some(&json!({"typo": 1})))
            .await
            .status,
        400
    );
    sim.send(Method::PUT, "/_sim/faults", None, Some(&json!({}))).await;
    assert_eq!(sim.post("/users/track", ALL, json!({})).await.status, 201);
    let current = sim.send(Method::GET, "/_sim/faults", None, None).await;
    assert_eq!(current.body["error_rate"], 0.0);
}

/// On the paused clock, so the delay is exact and a busy machine cannot make the test fail.
#[tokio::test(start_paused = true)]
async fn latency_faults_delay_responses() {
    let config = SimConfig {
        faults: offerloop_sim::server::Faults {
            latency_ms: 150,
            ..Default::default()
        },
        ..SimConfig::default()
    };
    let sim = Sim::start(SCENARIO, config).await;
    let started = tokio::time::Instant::now();
    assert_eq!(sim.post("/users/track", ALL, json!({})).await.status, 201);
    assert_eq!(started.elapsed(), Duration::from_millis(150));
    // The admin routes are never delayed or faulted.
    let started = tokio::time::Instant::now();
    sim.send(Method::GET, "/_sim/clock", None, None).await;
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test]
async fn the_currents_feed_writes_applied_events_as_avro_under_brazes_key_layout() {
    let dir = tempfile::tempdir().unwrap();
    let config = SimConfig {
        currents: Some(offerloop_sim::state::currents::CurrentsConfig {
            duplicate_rate: 0.0,
            late_rate: 0.0,
            ..offerloop_sim::state::currents::CurrentsConfig::new(dir.path())
        }),
        ..SimConfig::default()
    };
    let sim = Sim::start(SCENARIO, config).await;
    {
        let mut ws = sim.ws();
        let now = ws.now;
        ws.deliver(2, message("d-9"), Map::new(), now);
    }
    sim.post("/users/track", ALL, json!({"events": [track_event(&sim.id(2))]}))
        .await;
    sim.send(
        Method::POST,
        "/_sim/clock/advance",
        None,
        Some(&json!({"seconds": 2 * 86_400})),
    )
    .await;
    let mut records: Vec<(String, Vec<(String, apache_avro::types::Value)>)> = Vec::new();
    let mut stack = vec![dir.path().join("currents")];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let key = path.strip_prefix(dir.path()).unwrap().to_string_lossy().into_owned();
            assert!(key.ends_with(".avro") && key.contains("/version=10/us-01/"), "{key}");
            let event_type = key
                .split("event_type=")
                .nth(1)
                .unwrap()
                .split('/')
                .next()
                .unwrap()
                .to_owned();
            let bytes = std::fs::read(&path).unwrap();
            for r in apache_avro::Reader::new(&bytes[..]).unwrap() {
                let apache_avro::types::Value::Record(fields) = r.unwrap() else {
                    panic!()
                };
                records.push((event_type.clone(), fields));
            }
        }
    }
    let types: Vec<&str> = records.iter().map(|(t, _)| t.as_str()).collect();
    assert!(types.contains(&"users.messages.email.Send"), "{types:?}");
    assert!(types.contains(&"users.messages.email.Delivery"));
    assert!(types.contains(&"users.behaviors.CustomEvent"));
    let (_, send) = records.iter().find(|(t, _)| t == "users.messages.email.Send").unwrap();
    let get = |name: &str| send.iter().find(|(k, _)| k == name).unwrap().1.clone();
    let some = |s: &str| apache_avro::types::Value::Union(1, Box::new(apache_avro::types::Value::String(s.into())));
    assert_eq!(get("dispatch_id"), some("d-9"));
    assert_eq!(get("campaign_id"), some("camp"));
    assert_eq!(get("external_user_id"), some(&sim.id(2)));
    assert!(matches!(get("time"), apache_avro::types::Value::Int(_)));
    let apache_avro::types::Value::String(user_id) = get("user_id") else {
        panic!()
    };
    assert_eq!(user_id.len(), 24, "the Braze id, not the external id");
}

/// A segment export of a large world (default 1,000,000 customers; `OFFERLOOP_SIM_EXPORT_USERS`
/// overrides): every user lands in the ZIP, 5,000 per file. Slow, so ignored (reported as such) unless
/// asked for: `cargo test -p offerloop-sim --test server_users -- --ignored`. Its speed is measured by
/// the `scale` bench (`cargo xtask bench sim`), not here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow (a million-customer export): run with --ignored"]
async fn large_segment_exports_stream_every_user() {
    let customers: usize = std::env::var("OFFERLOOP_SIM_EXPORT_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let world = offerloop_sim::World::new(
        offerloop_sim::Scenario::from_toml_str(SCENARIO, None)
            .unwrap()
            .with_customers(customers),
    )
    .unwrap();
    let sim = Sim::start_world(
        world,
        SimConfig {
            export_delay: Duration::ZERO,
            ..SimConfig::default()
        },
    )
    .await;
    let reply = sim
        .post(
            "/users/export/segment",
            ALL,
            json!({"segment_id": "seg-all", "fields_to_export": ["external_id", "custom_attributes"]}),
        )
        .await;
    let url = reply.body["url"].as_str().unwrap().to_owned();
    wait_until_served(&sim, &url, Duration::from_secs(600)).await;
    let bytes = sim.http.get(&url).send().await.unwrap().bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.as_ref())).unwrap();
    assert_eq!(archive.len(), customers.div_ceil(5_000));
    let mut total = 0;
    for i in 0..archive.len() {
        let mut text = String::new();
        archive.by_index(i).unwrap().read_to_string(&mut text).unwrap();
        let n = text.lines().count();
        assert!(n <= 5_000);
        total += n;
    }
    assert_eq!(total, customers);
}
