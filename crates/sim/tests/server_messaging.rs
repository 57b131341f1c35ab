//! `/messages/*`, `/campaigns/trigger/*` and `/canvas/trigger/*` against a running `SimBraze`:
//! validation (status and Braze's message), notices, non-idempotent repeats, duplicate recipients,
//! property merging, schedules (UTC and per-recipient local time) and `/sends/id/create`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::http;
use std::collections::BTreeSet;

use jiff::Timestamp;
use offerloop_sim::state::{EventKind, Workspace};
use offerloop_sim::world::Channel;
use offerloop_sim::{Scenario, SimBraze, SimConfig, World};
use serde_json::{Value, json};

const SCENARIO: &str = r#"
name = "messaging"
seed = 11
customers = 40
start = "2026-01-05T00:00:00Z"

[[attribute]]
name = "tz"
field = "time_zone"
type = "category"
categories = { "America/New_York" = 0.5, "Asia/Tokyo" = 0.5 }

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
open = { base = 0.0 }
click = { base = -1.0 }
convert = { base = -1.0 }
unsubscribe = { base = -6.0 }
organic = { base = -9.0 }

[[braze.campaigns]]
id = "camp-live"
name = "Live"
channels = ["email", "push"]

[[braze.campaigns]]
id = "camp-paused"
name = "Paused"
channels = ["email"]
paused = true

[[braze.campaigns]]
id = "camp-archived"
name = "Archived"
channels = ["email"]
archived = true

[[braze.campaigns]]
id = "camp-scheduled-only"
name = "Not API-triggered"
channels = ["email"]
api_triggered = false

[[braze.canvases]]
id = "canvas-live"
name = "Journey"
steps = [{ id = "step-1", name = "Welcome", messages = [{ channel = "email", body = "hi" }] }]

[[braze.canvases]]
id = "canvas-paused"
name = "Paused journey"
enabled = false
steps = [{ id = "step-p", name = "Welcome", messages = [{ channel = "email", body = "hi" }] }]

[[braze.segments]]
id = "seg-premium"
name = "Premium"
filter = [{ field = "custom_attributes.plan", eq = "premium" }]
"#;

struct Sim {
    sim: SimBraze,
}

impl Sim {
    async fn start() -> Sim {
        Sim::start_with(SCENARIO).await
    }

    async fn start_with(scenario: &str) -> Sim {
        let world = World::new(Scenario::from_toml_str(scenario, None).unwrap()).unwrap();
        let sim = SimBraze::start(world, SimConfig::default()).await.unwrap();
        Sim { sim }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        http::request(&self.sim.base_url(), "POST", path, Some(body.to_string())).await
    }

    fn ws(&self) -> std::sync::MutexGuard<'_, Workspace> {
        self.sim.state().workspace.lock().unwrap()
    }

    fn id(&self, index: usize) -> String {
        self.ws().world.external_id(index).to_owned()
    }

    /// `(external_user_id, channel, time)` of every `Send` of `dispatch_id`.
    fn sends_of(&self, dispatch_id: &str) -> Vec<(String, Channel, Timestamp)> {
        self.ws()
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Send)
            .filter_map(|e| {
                let m = e.message.as_ref()?;
                (m.dispatch_id == dispatch_id).then(|| (e.external_user_id.clone(), m.channel, e.time))
            })
            .collect()
    }

    fn send_count(&self) -> usize {
        self.ws().events.iter().filter(|e| e.kind == EventKind::Send).count()
    }
}

fn dispatch(body: &Value) -> String {
    body["dispatch_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no dispatch_id in {body}"))
        .to_owned()
}

#[tokio::test]
async fn a_campaign_trigger_sends_on_each_channel_once_per_user_and_repeats_are_not_deduplicated() {
    let sim = Sim::start().await;
    let (a, b) = (sim.id(0), sim.id(1));
    let body = json!({
        "campaign_id": "camp-live",
        "trigger_properties": {"offer": "pct20", "season": "winter"},
        "recipients": [
            {"external_user_id": a, "trigger_properties": {"offer": "none"}},
            {"external_user_id": b},
            {"external_user_id": a},
            {"external_user_id": "nobody-knows-me"},
        ],
    });
    let (status, first) = sim.post("/campaigns/trigger/send", body.clone()).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["message"], "success");
    let sends = sim.sends_of(&dispatch(&first));
    let users: BTreeSet<&str> = sends.iter().map(|(u, _, _)| u.as_str()).collect();
    assert_eq!(
        users,
        BTreeSet::from([a.as_str(), b.as_str()]),
        "duplicates collapse, unknown ids are skipped"
    );
    assert_eq!(sends.len(), 4, "two users on email and push: {sends:?}");
    let channels: BTreeSet<Channel> = sends.iter().map(|(_, c, _)| *c).collect();
    assert_eq!(channels, BTreeSet::from([Channel::Email, Channel::Push]));

    let (status, second) = sim.post("/campaigns/trigger/send", body).await;
    assert_eq!(status, 201);
    assert_ne!(dispatch(&first), dispatch(&second), "every request is a new dispatch");
    assert_eq!(sim.sends_of(&dispatch(&second)).len(), 4, "a repeat sends again");
}

#[tokio::test]
async fn validation_errors_are_fatal_and_send_nothing() {
    let sim = Sim::start().await;
    let a = sim.id(0);
    let many: Vec<Value> = (0..51).map(|i| json!({"external_user_id": format!("u{i}")})).collect();
    let ids: Vec<String> = (0..40).map(|i| format!("u{i}")).collect();
    let aliases: Vec<Value> = (0..11)
        .map(|i| json!({"alias_name": format!("a{i}"), "alias_label": "crm"}))
        .collect();
    let big = "x".repeat(51 * 1024);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/campaigns/trigger/send",
            json!({"campaign_id": "camp-live", "recipients": many}),
            "The max number of external_ids and aliases per request was exceeded",
        ),
        (
            "/messages/send",
            json!({"external_user_ids": ids, "user_aliases": aliases, "messages": {"email": {"body": "x"}}}),
            "The max number of external_ids and aliases per request was exceeded",
        ),
        (
            "/campaigns/trigger/send",
            json!({"campaign_id": "camp-live", "broadcast": true, "recipients": [{"external_user_id": a}]}),
            "Cannot set broadcast to true when recipients are specified",
        ),
        (
            "/campaigns/trigger/send",
            json!({"campaign_id": "camp-live"}),
            "No Recipients",
        ),
        (
            "/campaigns/trigger/send",
            json!({"campaign_id": "camp-live", "recipients": []}),
            "No Recipients",
        ),
        (
            "/canvas/trigger/send",
            json!({"canvas_id": "canvas-live"}),
            "No Recipients",
        ),
        (
            "/messages/send",
            json!({"messages": {"email": {"body": "x"}}}),
            "No Recipients",
        ),
        (
            "/campaigns/trigger/send",
            json!({"campaign_id": "camp-live", "recipients": [{"external_user_id": "new", "send_to_existing_only": false}]}),
            "attributes are required when send_to_existing_only is false",
        ),
        (
            "/campaigns/trigger/send",
            json!({"campaign_id": "camp-live", "recipients": [{"user_alias": {"alias_name": "a", "alias_label": "l"}, "send_to_existing_only": false, "attributes": {"plan": "x"}}]}),
            "send_to_existing_only cannot be false for a user_alias",
        ),
        (
            "/campaigns/trigger/send",
            json!({"campaign_id": "nope", "recipients": [{"external_user_id": a}]}),
            "Invalid Campaign ID",
        ),
        (
            "/campaigns/trigger/send",
            json!({"recipients": [{"external_user_id": a}]}),
            "Invalid Campaign ID",
        ),
        (
            "/campaigns/trigger/send",
            json!({"campaign_id": "camp-scheduled-only", "recipients": [{"external_user_id": a}]}),
            "Invalid Campaign ID",
        ),
        (
            "/campaigns/trigger/send",
            json!({"campaign_id": "camp-archived", "recipients": [{"external_user_id": a}]}),
            "The campaign is archived. Unarchive the campaign to ensure trigger requests will take effect.",
        ),
        (
            "/canvas/trigger/send",
            json!({"canvas_id": "nope", "recipients": [{"external_user_id": a}]}),
            "Invalid Canvas ID",
        ),
        (
            "/campaigns/trigger/send",
            json!({"campaign_id": "camp-live", "trigger_properties": {"k": big}, "recipients": [{"external_user_id": a}]}),
            "trigger_properties must be less than 50KB",
        ),
        (
            "/canvas/trigger/send",
            json!({"canvas_id": "canvas-live", "recipients": [{"external_user_id": a, "context": {"k": big}}]}),
            "context must be less than 50KB",
        ),
        (
            "/campaigns/trigger/send",
            json!({"campaign_id": "camp-live", "send_id": "x".repeat(65), "recipients": [{"external_user_id": a}]}),
            "send_id must be at most 64 characters",
        ),
        (
            "/campaigns/trigger/send",
            json!({"campaign_id": "camp-live", "send_id": "été", "recipients": [{"external_user_id": a}]}),
            "send_id must contain only ASCII characters",
        ),
        (
            "/campaigns/trigger/send",
            json!({"campaign_id": "camp-live", "send_id": "never-created", "recipients": [{"external_user_id": a}]}),
            "Invalid send_id: create it with /sends/id/create first",
        ),
        (
            "/campaigns/trigger/send",
            json!({"campaign_id": "camp-live", "recipients": [{"external_user_id": a, "braze_id": "b"}]}),
            "Each recipient must have exactly one of external_user_id, user_alias, braze_id or email",
        ),
        (
            "/campaigns/trigger/schedule/create",
            json!({"campaign_id": "camp-live", "recipients": [{"external_user_id": a}], "schedule": {"time": "next tuesday"}}),
            "Invalid schedule time: next tuesday is not an ISO-8601 time",
        ),
        (
            "/campaigns/trigger/schedule/create",
            json!({"campaign_id": "camp-live", "recipients": [{"external_user_id": a}], "schedule": {"time": "2026-01-03T09:00:00", "in_local_time": true}}),
            "The schedule time has already passed in every time zone",
        ),
        (
            "/campaigns/trigger/schedule/create",
            json!({"campaign_id": "camp-live", "recipients": [{"external_user_id": a}], "schedule": {"time": "2026-01-04T09:00:00Z"}}),
            "The schedule time has already passed",
        ),
        (
            "/campaigns/trigger/schedule/create",
            json!({"campaign_id": "camp-live", "recipients": [{"external_user_id": a}]}),
            "schedule is required",
        ),
        (
            "/messages/send",
            json!({"external_user_ids": [a]}),
            "No message to send",
        ),
        (
            "/messages/send",
            json!({"external_user_ids": [a], "messages": {"apple_push": {"alert": "x", "extra": "no"}}}),
            "Invalid Extra Push Payload",
        ),
        (
            "/messages/send",
            json!({"segment_id": "seg-premium", "messages": {"email": {"body": "x"}}}),
            "broadcast must be true to send to a whole segment",
        ),
        (
            "/messages/send",
            json!({"broadcast": true, "audience": {"last_used_app": {"comparison": "after"}}, "messages": {"email": {"body": "x"}}}),
            "Invalid audience: unsupported filter last_used_app",
        ),
    ];
    for (path, body, message) in cases {
        let (status, response) = sim.post(path, body).await;
        assert_eq!(status, 400, "{path}: {response}");
        assert_eq!(response["message"], message, "{path}");
    }
    let (status, response) = sim.post("/campaigns/trigger/send", json!("not an object")).await;
    assert_eq!(status, 400, "{response}");
    assert_eq!(sim.send_count(), 0, "no fatal error sends anything");
    assert!(sim.ws().sends.schedules.is_empty());
}

#[tokio::test]
async fn paused_campaigns_and_canvases_answer_success_with_a_notice_and_send_nothing() {
    let sim = Sim::start().await;
    let a = sim.id(0);
    let (status, body) = sim
        .post(
            "/campaigns/trigger/send",
            json!({"campaign_id": "camp-paused", "recipients": [{"external_user_id": a}]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["message"], "success");
    assert!(
        body["notice"].as_str().unwrap().starts_with("The campaign is paused"),
        "{body}"
    );
    let (status, body) = sim
        .post(
            "/canvas/trigger/send",
            json!({"canvas_id": "canvas-paused", "recipients": [{"external_user_id": a}]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["notice"],
        "The Canvas is paused. Resume the Canvas to ensure trigger requests will take effect."
    );
    assert!(body["dispatch_id"].is_string());
    assert_eq!(sim.send_count(), 0);
}

#[tokio::test]
async fn canvas_entries_receive_the_first_step_with_merged_context() {
    let sim = Sim::start().await;
    let (a, b) = (sim.id(2), sim.id(3));
    let (status, body) = sim
        .post(
            "/canvas/trigger/send",
            json!({
                "canvas_id": "canvas-live",
                "context": {"arm": "a"},
                "recipients": [{"external_user_id": a, "canvas_entry_properties": {"arm": "b"}}, {"external_user_id": b}],
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let ws = sim.ws();
    let sends: Vec<_> = ws
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Send)
        .filter_map(|e| e.message.as_ref())
        .collect();
    assert_eq!(sends.len(), 2);
    for m in sends {
        assert_eq!(m.canvas_id.as_deref(), Some("canvas-live"));
        assert_eq!(m.canvas_step_id.as_deref(), Some("step-1"));
        assert!(m.message_variation_id.is_some());
        assert_eq!(m.dispatch_id, body["dispatch_id"].as_str().unwrap());
    }
}

#[tokio::test]
async fn messages_send_reaches_listed_users_a_segment_broadcast_or_an_audience() {
    let sim = Sim::start().await;
    let premium: BTreeSet<String> = {
        let ws = sim.ws();
        (0..ws.world.len())
            .filter(|i| ws.users.profile(&ws.world, *i)["custom_attributes"]["plan"] == "premium")
            .map(|i| ws.world.external_id(i).to_owned())
            .collect()
    };
    assert!(!premium.is_empty() && premium.len() < 40, "the scenario mixes plans");
    let (status, body) = sim
        .post("/messages/send", json!({"segment_id": "seg-premium", "broadcast": true, "messages": {"email": {"subject": "s", "body": "b"}}}))
        .await;
    assert_eq!(status, 201, "{body}");
    let reached: BTreeSet<String> = sim.sends_of(&dispatch(&body)).into_iter().map(|(u, _, _)| u).collect();
    assert_eq!(reached, premium);

    let audience =
        json!({"custom_attribute": {"custom_attribute_name": "plan", "comparison": "equals", "value": "premium"}});
    let (status, body) = sim
        .post(
            "/campaigns/trigger/send",
            json!({"campaign_id": "camp-live", "broadcast": true, "audience": audience}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let reached: BTreeSet<String> = sim.sends_of(&dispatch(&body)).into_iter().map(|(u, _, _)| u).collect();
    assert_eq!(reached, premium);
    assert!(
        body["send_id"].is_string(),
        "a campaign broadcast is tracked under a generated send id: {body}"
    );

    let listed: Vec<String> = (0..5).map(|i| sim.id(i)).collect();
    let (status, body) = sim
        .post(
            "/messages/send",
            json!({"external_user_ids": listed, "segment_id": "seg-premium", "messages": {"sms": {"body": "b"}}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let reached: BTreeSet<String> = sim.sends_of(&dispatch(&body)).into_iter().map(|(u, _, _)| u).collect();
    let expected: BTreeSet<String> = listed.into_iter().filter(|u| premium.contains(u)).collect();
    assert_eq!(reached, expected, "listed users outside the segment are left out");
}

#[tokio::test]
async fn send_to_existing_only_false_creates_the_user_with_its_attributes() {
    let sim = Sim::start().await;
    let (status, body) = sim
        .post(
            "/campaigns/trigger/send",
            json!({"campaign_id": "camp-live", "recipients": [{"external_user_id": "brand-new", "send_to_existing_only": false, "attributes": {"plan": "gold", "first_name": "Ada"}}]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let sends = sim.sends_of(&dispatch(&body));
    assert!(sends.iter().all(|(u, _, _)| u == "brand-new") && !sends.is_empty());
    let ws = sim.ws();
    let index = ws.users.index_of(&ws.world, "brand-new").unwrap();
    let profile = ws.users.profile(&ws.world, index);
    assert_eq!(profile["custom_attributes"]["plan"], "gold");
    assert_eq!(profile["first_name"], "Ada");
}

#[tokio::test]
async fn send_ids_are_created_then_accepted_and_validated() {
    let sim = Sim::start().await;
    let a = sim.id(0);
    let (status, body) = sim
        .post(
            "/sends/id/create",
            json!({"campaign_id": "camp-live", "send_id": "winter-1"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["send_id"], "winter-1");
    let (status, body) = sim.post("/sends/id/create", json!({"campaign_id": "camp-live"})).await;
    assert_eq!(status, 201);
    assert!(body["send_id"].as_str().is_some_and(|s| !s.is_empty()));
    for (request, message) in [
        (json!({"campaign_id": "nope", "send_id": "x"}), "Invalid Campaign ID"),
        (
            json!({"campaign_id": "camp-live", "send_id": "y".repeat(65)}),
            "send_id must be at most 64 characters",
        ),
        (
            json!({"campaign_id": "camp-live", "send_id": "naïve"}),
            "send_id must contain only ASCII characters",
        ),
    ] {
        let (status, body) = sim.post("/sends/id/create", request).await;
        assert_eq!((status, body["message"].as_str()), (400, Some(message)));
    }
    let (status, body) = sim
        .post(
            "/campaigns/trigger/send",
            json!({"campaign_id": "camp-live", "send_id": "winter-1", "recipients": [{"external_user_id": a}]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["send_id"], "winter-1");
    let ws = sim.ws();
    assert!(
        ws.events
            .iter()
            .filter_map(|e| e.message.as_ref())
            .all(|m| m.send_id.as_deref() == Some("winter-1"))
    );
}

#[tokio::test]
async fn utc_schedules_run_at_their_time_when_the_clock_advances() {
    let sim = Sim::start().await;
    let (a, b) = (sim.id(0), sim.id(1));
    let (status, body) = sim
        .post(
            "/campaigns/trigger/schedule/create",
            json!({"campaign_id": "camp-live", "recipients": [{"external_user_id": a}, {"external_user_id": b}], "schedule": {"time": "2026-01-05T06:30:00Z"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["schedule_id"].is_string());
    let id = dispatch(&body);
    assert!(sim.sends_of(&id).is_empty(), "nothing is sent before the time");
    sim.ws().advance_to("2026-01-05T06:00:00Z".parse().unwrap());
    assert!(sim.sends_of(&id).is_empty());
    sim.ws().advance_to("2026-01-05T12:00:00Z".parse().unwrap());
    let sends = sim.sends_of(&id);
    assert_eq!(sends.len(), 4);
    let at: Timestamp = "2026-01-05T06:30:00Z".parse().unwrap();
    assert!(sends.iter().all(|(_, _, t)| *t == at), "{sends:?}");
    sim.ws().advance_to("2026-01-06T12:00:00Z".parse().unwrap());
    assert_eq!(sim.sends_of(&id).len(), 4, "a schedule runs once");
}

#[tokio::test]
async fn local_time_schedules_deliver_at_each_recipients_wall_clock_time() {
    let sim = Sim::start().await;
    let users: Vec<(String, String)> = {
        let ws = sim.ws();
        (0..12)
            .map(|i| {
                let tz = ws.users.profile(&ws.world, i)["time_zone"]
                    .as_str()
                    .unwrap_or("UTC")
                    .to_owned();
                (ws.world.external_id(i).to_owned(), tz)
            })
            .collect()
    };
    let zones: BTreeSet<&str> = users.iter().map(|(_, tz)| tz.as_str()).collect();
    assert!(zones.len() > 1, "the test needs several time zones: {zones:?}");
    let recipients: Vec<Value> = users.iter().map(|(u, _)| json!({"external_user_id": u})).collect();
    let (status, body) = sim
        .post(
            "/canvas/trigger/schedule/create",
            json!({"canvas_id": "canvas-live", "recipients": recipients, "schedule": {"time": "2026-01-06T09:00:00", "in_local_time": true}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    sim.ws().advance_to("2026-01-08T00:00:00Z".parse().unwrap());
    let sends = sim.sends_of(&dispatch(&body));
    assert_eq!(sends.len(), users.len());
    for (user, tz) in &users {
        let (_, _, at) = sends.iter().find(|(u, _, _)| u == user).unwrap();
        let local = at.to_zoned_datetime(jiff::tz::TimeZone::get(tz).unwrap());
        assert_eq!(
            local.datetime().to_string(),
            "2026-01-06T09:00:00",
            "{user} in {tz} got it at {at}"
        );
    }
    let times: Vec<Timestamp> = sim
        .ws()
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Send)
        .map(|e| e.time)
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "schedules run in time order");
}

#[tokio::test]
async fn messages_schedules_carry_their_channels_and_campaign() {
    let sim = Sim::start().await;
    let a = sim.id(4);
    let (status, body) = sim
        .post(
            "/messages/schedule/create",
            json!({"external_user_ids": [a], "campaign_id": "camp-live", "messages": {"email": {"body": "x"}, "webhook": {"url": "https://x"}}, "schedule": {"time": "2026-01-05T01:00:00Z"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["schedule_id"].is_string() && body["dispatch_id"].is_string());
    sim.ws().advance_to("2026-01-05T02:00:00Z".parse().unwrap());
    let channels: BTreeSet<Channel> = sim.sends_of(&dispatch(&body)).into_iter().map(|(_, c, _)| c).collect();
    assert_eq!(channels, BTreeSet::from([Channel::Email, Channel::Webhook]));
}

/// Serves only this crate's messaging routes (no auth, routing table or rate-limit middleware) on
/// the same state: `.../schedule/update|delete` are not in the middleware's route table yet.
async fn bare_messaging_server(sim: &Sim) -> String {
    let app = offerloop_sim::server::messaging::routes().with_state(sim.sim.state().clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn schedules_can_be_moved_and_deleted_before_they_run() {
    let sim = Sim::start().await;
    let bare = bare_messaging_server(&sim).await;
    let a = sim.id(0);
    let create = |time: &str| json!({"campaign_id": "camp-live", "recipients": [{"external_user_id": a}], "schedule": {"time": time}});
    let (_, moved) = sim
        .post("/campaigns/trigger/schedule/create", create("2026-01-05T03:00:00Z"))
        .await;
    let (_, deleted) = sim
        .post("/campaigns/trigger/schedule/create", create("2026-01-05T03:00:00Z"))
        .await;
    let update = json!({"campaign_id": "camp-live", "schedule_id": moved["schedule_id"], "schedule": {"time": "2026-01-05T05:00:00Z"}});
    let (status, body) = http::request(
        &bare,
        "POST",
        "/campaigns/trigger/schedule/update",
        Some(update.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let delete = json!({"campaign_id": "camp-live", "schedule_id": deleted["schedule_id"]});
    let (status, body) = http::request(
        &bare,
        "POST",
        "/campaigns/trigger/schedule/delete",
        Some(delete.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let wrong = json!({"schedule_id": moved["schedule_id"], "schedule": {"time": "2026-01-05T06:00:00Z"}});
    let (status, body) = http::request(
        &bare,
        "POST",
        "/canvas/trigger/schedule/update",
        Some(wrong.to_string()),
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("Invalid schedule_id")),
        "a campaign schedule is not a Canvas one"
    );
    let (status, _) = http::request(
        &bare,
        "POST",
        "/messages/schedule/delete",
        Some(json!({"schedule_id": "nope"}).to_string()),
    )
    .await;
    assert_eq!(status, 400);

    sim.ws().advance_to("2026-01-05T04:00:00Z".parse().unwrap());
    assert!(sim.sends_of(&dispatch(&moved)).is_empty(), "moved to 05:00");
    sim.ws().advance_to("2026-01-05T06:00:00Z".parse().unwrap());
    let sends = sim.sends_of(&dispatch(&moved));
    let at: Timestamp = "2026-01-05T05:00:00Z".parse().unwrap();
    assert!(!sends.is_empty() && sends.iter().all(|(_, _, t)| *t == at), "{sends:?}");
    assert!(
        sim.sends_of(&dispatch(&deleted)).is_empty(),
        "a deleted schedule never runs"
    );
}

#[tokio::test]
async fn recipients_named_by_braze_id_or_email_are_found_by_profile_lookup() {
    let sim = Sim::start().await;
    let (external_id, profile) = {
        let ws = sim.ws();
        (ws.world.external_id(6).to_owned(), ws.users.profile(&ws.world, 6))
    };
    let mut recipients = Vec::new();
    for field in ["braze_id", "email"] {
        if let Some(value) = profile.get(field).and_then(Value::as_str) {
            recipients.push(json!({ field: value }));
        }
    }
    assert!(
        !recipients.is_empty(),
        "the world's profiles carry a braze_id or an email: {profile:?}"
    );
    recipients.push(json!({"braze_id": "no-such-braze-id"}));
    let (status, body) = sim
        .post(
            "/campaigns/trigger/send",
            json!({"campaign_id": "camp-live", "recipients": recipients}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let reached: BTreeSet<String> = sim.sends_of(&dispatch(&body)).into_iter().map(|(u, _, _)| u).collect();
    assert_eq!(
        reached,
        BTreeSet::from([external_id]),
        "both identifiers name the same user, once"
    );
}

#[tokio::test]
async fn at_most_100_send_ids_are_created_per_day() {
    let sim = Sim::start().await;
    for i in 0..100 {
        let (status, body) = sim
            .post(
                "/sends/id/create",
                json!({"campaign_id": "camp-live", "send_id": format!("s-{i}")}),
            )
            .await;
        assert_eq!(status, 201, "{i}: {body}");
    }
    let (status, body) = sim
        .post(
            "/sends/id/create",
            json!({"campaign_id": "camp-live", "send_id": "one-too-many"}),
        )
        .await;
    assert_eq!(status, 429, "{body}");
    assert!(!sim.ws().catalog.has_send_id("camp-live", "one-too-many"));
}

#[tokio::test]
async fn an_unknown_segment_is_fatal_before_anything_changes() {
    let sim = Sim::start().await;
    let listed: Vec<String> = (0..3).map(|i| sim.id(i)).collect();
    let cases = [
        json!({"campaign_id": "camp-live", "segment_id": "seg-nope", "broadcast": true, "messages": {"email": {"body": "x"}}}),
        json!({"external_user_ids": listed, "segment_id": "seg-nope", "messages": {"email": {"body": "x"}}}),
    ];
    for body in cases {
        let (status, response) = sim.post("/messages/send", body).await;
        assert_eq!(status, 400, "{response}");
        assert_eq!(response["message"], "Invalid segment_id");
    }
    assert_eq!(sim.send_count(), 0);
    assert!(
        sim.ws().catalog.send_ids.is_empty(),
        "a refused broadcast tracks no generated send id: {:?}",
        sim.ws().catalog.send_ids
    );
}

#[tokio::test]
async fn campaign_and_canvas_broadcasts_reach_all_users_without_a_target_segment() {
    let sim = Sim::start().await;
    let everyone: BTreeSet<String> = (0..40).map(|i| sim.id(i)).collect();
    for body in [
        json!({"campaign_id": "camp-live", "broadcast": true}),
        json!({"canvas_id": "canvas-live", "broadcast": true}),
    ] {
        let path = if body.get("campaign_id").is_some() {
            "/campaigns/trigger/send"
        } else {
            "/canvas/trigger/send"
        };
        let (status, response) = sim.post(path, body).await;
        assert_eq!(status, 201, "{path}: {response}");
        let reached: BTreeSet<String> = sim
            .sends_of(&dispatch(&response))
            .into_iter()
            .map(|(u, _, _)| u)
            .collect();
        assert_eq!(reached, everyone, "{path}: Braze's All Users");
    }
}

#[tokio::test]
async fn campaign_and_canvas_sends_reach_only_their_target_segment() {
    let scenario = format!(
        "{SCENARIO}
[[braze.campaigns]]
id = \"camp-premium\"
name = \"Premium only\"
channels = [\"email\"]
segment = \"seg-premium\"

[[braze.canvases]]
id = \"canvas-premium\"
name = \"Premium journey\"
segment = \"seg-premium\"
steps = [{{ id = \"step-q\", name = \"Welcome\", messages = [{{ channel = \"email\", body = \"hi\" }}] }}]
"
    );
    let sim = Sim::start_with(&scenario).await;
    let premium: BTreeSet<String> = {
        let ws = sim.ws();
        (0..ws.world.len())
            .filter(|i| ws.users.profile(&ws.world, *i)["custom_attributes"]["plan"] == "premium")
            .map(|i| ws.world.external_id(i).to_owned())
            .collect()
    };
    assert!(!premium.is_empty() && premium.len() < 40, "the scenario mixes plans");
    let listed: Vec<String> = (0..10).map(|i| sim.id(i)).collect();
    let recipients: Vec<Value> = listed.iter().map(|u| json!({"external_user_id": u})).collect();
    for (path, id_key, id) in [
        ("/campaigns/trigger/send", "campaign_id", "camp-premium"),
        ("/canvas/trigger/send", "canvas_id", "canvas-premium"),
    ] {
        let (status, body) = sim.post(path, json!({id_key: id, "broadcast": true})).await;
        assert_eq!(status, 201, "{path}: {body}");
        let reached: BTreeSet<String> = sim.sends_of(&dispatch(&body)).into_iter().map(|(u, _, _)| u).collect();
        assert_eq!(reached, premium, "{path}: a broadcast reaches the target segment");
        let (status, body) = sim.post(path, json!({id_key: id, "recipients": recipients})).await;
        assert_eq!(status, 201, "{path}: {body}");
        let reached: BTreeSet<String> = sim.sends_of(&dispatch(&body)).into_iter().map(|(u, _, _)| u).collect();
        let expected: BTreeSet<String> = listed.iter().filter(|u| premium.contains(*u)).cloned().collect();
        assert_eq!(
            reached, expected,
            "{path}: listed users outside the segment receive nothing"
        );
    }
    let broken = scenario.replace(
        "segment = \"seg-premium\"\n\n[[braze.canvases]]",
        "segment = \"seg-gone\"\n\n[[braze.canvases]]",
    );
    let error = Scenario::from_toml_str(&broken, None).unwrap_err().to_string();
    assert!(error.contains("segment") && error.contains("seg-gone"), "{error}");
}

/// A workspace with control variants on a single-channel and a multichannel campaign.
const CONTROL_SCENARIO: &str = r#"
name = "control"
seed = 4
customers = 5
start = "2026-01-05T00:00:00Z"

[conversion]
type = "purchase"
product_id = "sku"
value = { kind = "fixed", value = 10 }

[response]
open = { base = 0.0 }
click = { base = -1.0 }
convert = { base = -1.0 }
unsubscribe = { base = -6.0 }
organic = { base = -9.0 }

[[braze.campaigns]]
id = "camp-sms-control"
name = "SMS with control"
channels = ["sms"]
control_variant = true

[[braze.campaigns]]
id = "camp-push-email-control"
name = "Push and email with control"
channels = ["push", "email"]
control_variant = true
"#;

#[tokio::test]
async fn a_control_variant_carries_the_campaigns_channel_and_type_control() {
    let world = World::new(Scenario::from_toml_str(CONTROL_SCENARIO, None).unwrap()).unwrap();
    let sim = SimBraze::start(world, SimConfig::default()).await.unwrap();
    for (campaign, channel) in [("camp-sms-control", "sms"), ("camp-push-email-control", "ios_push")] {
        let (status, details) = http::request(
            &sim.base_url(),
            "GET",
            &format!("/campaigns/details?campaign_id={campaign}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{details}");
        let messages = details["messages"].as_object().unwrap();
        let controls: Vec<&Value> = messages.values().filter(|m| m["type"] == "control").collect();
        assert_eq!(
            controls,
            [&json!({"channel": channel, "type": "control"})],
            "{campaign}: {details}"
        );
        let channels: Vec<&str> = details["channels"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            messages
                .values()
                .all(|m| channels.contains(&m["channel"].as_str().unwrap_or("?"))),
            "every message, the control included, is on one of the campaign's channels: {details}"
        );
    }
}
