//! Catalog reads, analytics and email templates against a running `SimBraze`: list pagination and
//! sorting, details shapes and unknown ids, `*/data_series` numbers checked against the event log,
//! `length` limits, breakdown flags, send-analytics retention, segment sizes, and
//! `/templates/email/*` with their validation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::http;
use std::fmt::Write as _;

use offerloop_sim::state::{EventKind, Workspace};
use offerloop_sim::{Scenario, SimBraze, SimConfig, World};
use serde_json::{Value, json};

const BASE: &str = r#"
name = "catalog"
seed = 5
customers = 30
start = "2026-01-05T00:00:00Z"

[[attribute]]
name = "plan"
field = "custom_attributes.plan"
type = "category"
categories = { basic = 0.5, premium = 0.5 }

[conversion]
type = "purchase"
product_id = "sku"
value = { kind = "fixed", value = 40 }

[response]
open = { base = 1.0 }
click = { base = 0.0 }
convert = { base = 0.0 }
unsubscribe = { base = -6.0 }
organic = { base = -9.0 }

[[braze.campaigns]]
id = "camp-a"
name = "A"
channels = ["email", "push"]
conversion_events = ["purchase"]
tags = ["offers"]
control_variant = true
messages = [{ channel = "email", name = "Mail", subject = "Hi", body = "<p>{{api_trigger_properties.${offer}}}</p>" }]
created_at = "2025-06-01T00:00:00Z"

[[braze.canvases]]
id = "canvas-a"
name = "Journey"
tags = ["journeys"]
steps = [
  { id = "step-1", name = "Welcome", messages = [{ channel = "email", body = "hi" }] },
  { id = "step-2", name = "Follow-up", messages = [{ channel = "push", body = "psst" }] },
]

[[braze.segments]]
id = "seg-premium"
name = "Premium"
filter = [{ field = "custom_attributes.plan", eq = "premium" }]

[[braze.email_templates]]
name = "existing"
subject = "S"
body = "B"
tags = ["offers"]
"#;

/// `BASE` plus `n` more campaigns (every 10th archived), one a day from 2025-01-01.
fn scenario(n: usize) -> String {
    let mut text = BASE.to_owned();
    for i in 0..n {
        let day = jiff::civil::date(2025, 1, 1)
            .checked_add(jiff::Span::new().days(i as i64))
            .unwrap();
        write!(
            text,
            "\n[[braze.campaigns]]\nid = \"bulk-{i:03}\"\nname = \"Bulk {i}\"\nchannels = [\"email\"]\narchived = {}\ncreated_at = \"{day}T00:00:00Z\"\n",
            i % 10 == 9
        )
        .unwrap();
    }
    text
}

struct Sim {
    sim: SimBraze,
}

impl Sim {
    async fn start(extra_campaigns: usize) -> Sim {
        let world = World::new(Scenario::from_toml_str(&scenario(extra_campaigns), None).unwrap()).unwrap();
        let sim = SimBraze::start(world, SimConfig::default()).await.unwrap();
        Sim { sim }
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", http::encode(k), http::encode(v)))
            .collect();
        let target = if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{}", query.join("&"))
        };
        http::request(&self.sim.base_url(), "GET", &target, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        http::request(&self.sim.base_url(), "POST", path, Some(body.to_string())).await
    }

    fn ws(&self) -> std::sync::MutexGuard<'_, Workspace> {
        self.sim.state().workspace.lock().unwrap()
    }
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn campaign_lists_page_by_100_in_creation_order_and_end_with_a_short_page() {
    let sim = Sim::start(250).await;
    // 250 bulk campaigns (25 archived) + camp-a = 226 listed by default.
    let mut all = Vec::new();
    for page in 0.. {
        let (status, body) = sim.get("/campaigns/list", &[("page", &page.to_string())]).await;
        assert_eq!(status, 200, "{body}");
        let page_ids = ids(&body, "campaigns");
        let len = page_ids.len();
        all.extend(page_ids);
        if len < 100 {
            assert_eq!(page, 2);
            assert_eq!(len, 26);
            break;
        }
    }
    assert_eq!(all.len(), 226);
    assert_eq!(all[0], "bulk-000", "oldest first");
    assert!(
        all.iter().all(|id| !id.ends_with('9') || id == "camp-a"),
        "archived campaigns are left out"
    );
    let (_, desc) = sim
        .get("/campaigns/list", &[("page", "0"), ("sort_direction", "desc")])
        .await;
    let desc = ids(&desc, "campaigns");
    assert_eq!(desc[0], all[all.len() - 1], "newest first");
    let (_, with_archived) = sim
        .get("/campaigns/list", &[("page", "2"), ("include_archived", "true")])
        .await;
    assert_eq!(ids(&with_archived, "campaigns").len(), 51);
    let (_, empty) = sim.get("/campaigns/list", &[("page", "7")]).await;
    assert_eq!(ids(&empty, "campaigns").len(), 0);
    let (_, recent) = sim
        .get("/campaigns/list", &[("last_edit.time[gt]", "2025-08-01T00:00:00")])
        .await;
    let recent = ids(&recent, "campaigns");
    assert!(!recent.is_empty() && recent.len() < 100);
    assert!(!recent.contains(&"camp-a".to_owned()), "camp-a was last edited in June");
    let (_, first) = sim.get("/campaigns/list", &[]).await;
    let entry = &first["campaigns"][0];
    assert_eq!(entry["is_api_campaign"], true);
    assert!(entry["last_edited"].is_string() && entry["tags"].is_array() && entry["name"].is_string());
    for bad in [
        ("page", "-1"),
        ("sort_direction", "sideways"),
        ("include_archived", "maybe"),
        ("last_edit.time[gt]", "soon"),
    ] {
        let (status, _) = sim.get("/campaigns/list", &[bad]).await;
        assert_eq!(status, 400, "{bad:?}");
    }
}

#[tokio::test]
async fn canvas_and_segment_lists_and_details_have_braze_shapes() {
    let sim = Sim::start(0).await;
    let (status, canvases) = sim.get("/canvas/list", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&canvases, "canvases"), ["canvas-a"]);
    let (_, segments) = sim.get("/segments/list", &[("page", "0")]).await;
    assert_eq!(segments["segments"][0]["analytics_tracking_enabled"], true);
    assert_eq!(ids(&segments, "segments"), ["seg-premium"]);

    let (status, details) = sim.get("/campaigns/details", &[("campaign_id", "camp-a")]).await;
    assert_eq!(status, 200, "{details}");
    assert_eq!(details["message"], "success");
    assert_eq!(details["schedule_type"], "api_triggered");
    assert_eq!(details["channels"], json!(["email", "ios_push"]));
    let messages = details["messages"].as_object().unwrap();
    assert_eq!(
        messages.len(),
        3,
        "email, generated push variation and the control: {details}"
    );
    assert!(messages.values().any(|m| m["type"] == "control"));
    assert!(
        messages
            .values()
            .any(|m| m["channel"] == "email" && m["subject"] == "Hi")
    );
    assert_eq!(details["conversion_behaviors"][0]["type"], "Makes Any Purchase");
    assert_eq!(details["created_at"], "2025-06-01T00:00:00+00:00");

    let (_, canvas) = sim.get("/canvas/details", &[("canvas_id", "canvas-a")]).await;
    assert_eq!(canvas["enabled"], true);
    assert_eq!(canvas["steps"].as_array().unwrap().len(), 2);
    assert_eq!(canvas["steps"][0]["next_step_ids"], json!(["step-2"]));
    assert_eq!(canvas["variants"][0]["first_step_ids"], json!(["step-1"]));
    let (_, segment) = sim.get("/segments/details", &[("segment_id", "seg-premium")]).await;
    assert_eq!(segment["name"], "Premium");
    assert!(
        segment["description"]
            .as_str()
            .unwrap()
            .contains("custom_attributes.plan")
    );

    for (path, key, message) in [
        ("/campaigns/details", "campaign_id", "Invalid Campaign ID"),
        ("/canvas/details", "canvas_id", "Invalid Canvas ID"),
        ("/segments/details", "segment_id", "Invalid Segment ID"),
    ] {
        let (status, body) = sim.get(path, &[(key, "missing")]).await;
        assert_eq!((status, body["message"].as_str()), (400, Some(message)), "{path}");
    }
}

/// Sends `camp-a` (under send id `s-1`, which must exist) to users 0..n and `canvas-a` to users 0..m
/// (each only when there is someone to send to), then lets two days pass.
async fn send_some(sim: &Sim, n: usize, m: usize) {
    let recipients = |k: usize| -> Vec<Value> {
        let ws = sim.ws();
        (0..k)
            .map(|i| json!({"external_user_id": ws.world.external_id(i)}))
            .collect()
    };
    if n > 0 {
        let (status, camp) = sim
            .post(
                "/campaigns/trigger/send",
                json!({"campaign_id": "camp-a", "send_id": "s-1", "recipients": recipients(n)}),
            )
            .await;
        assert_eq!(status, 201, "{camp}");
    }
    if m > 0 {
        let (status, canvas) = sim
            .post(
                "/canvas/trigger/send",
                json!({"canvas_id": "canvas-a", "recipients": recipients(m)}),
            )
            .await;
        assert_eq!(status, 201, "{canvas}");
    }
    sim.ws().advance_to("2026-01-07T00:00:00Z".parse().unwrap());
}

/// Counts the log's events of `kind` whose message matches.
fn count(ws: &Workspace, kind: &EventKind, matches: impl Fn(&offerloop_sim::state::MessageRef) -> bool) -> u64 {
    ws.events
        .iter()
        .filter(|e| &e.kind == kind && e.message.as_deref().is_some_and(&matches))
        .count() as u64
}

#[tokio::test]
async fn campaign_data_series_match_the_event_log() {
    let sim = Sim::start(0).await;
    let (status, _) = sim
        .post("/sends/id/create", json!({"campaign_id": "camp-a", "send_id": "s-1"}))
        .await;
    assert_eq!(status, 201);
    send_some(&sim, 20, 5).await;
    let (status, body) = sim
        .get("/campaigns/data_series", &[("campaign_id", "camp-a"), ("length", "3")])
        .await;
    assert_eq!(status, 200, "{body}");
    let data = body["data"].as_array().unwrap();
    let days: Vec<&str> = data.iter().map(|d| d["time"].as_str().unwrap()).collect();
    assert_eq!(days, ["2026-01-05", "2026-01-06", "2026-01-07"]);
    let sum = |channel: &str, key: &str| -> u64 {
        data.iter()
            .flat_map(|d| d["messages"][channel].as_array().cloned().unwrap_or_default())
            .map(|v| v[key].as_u64().unwrap())
            .sum()
    };
    {
        let ws = sim.ws();
        let camp = |m: &offerloop_sim::state::MessageRef| m.campaign_id.as_deref() == Some("camp-a");
        let email = |m: &offerloop_sim::state::MessageRef| camp(m) && m.channel == offerloop_sim::world::Channel::Email;
        assert!(
            count(&ws, &EventKind::Send, camp) > 0,
            "the control variant keeps only part of the users out"
        );
        assert_eq!(sum("email", "sent"), count(&ws, &EventKind::Send, email));
        assert_eq!(sum("email", "opens"), count(&ws, &EventKind::Open, email));
        assert_eq!(sum("email", "delivered"), count(&ws, &EventKind::Delivery, email));
        assert_eq!(sum("email", "bounces"), count(&ws, &EventKind::Bounce, email));
        assert_eq!(sum("email", "clicks"), count(&ws, &EventKind::Click, email));
        let push = |m: &offerloop_sim::state::MessageRef| camp(m) && m.channel == offerloop_sim::world::Channel::Push;
        assert_eq!(sum("ios_push", "sent"), count(&ws, &EventKind::Send, push));
        let purchases: Vec<f64> = ws
            .events
            .iter()
            .filter(|e| e.message.as_deref().is_some_and(camp))
            .filter_map(|e| match &e.kind {
                EventKind::Purchase { price, quantity, .. } => Some(price * f64::from(*quantity)),
                _ => None,
            })
            .collect();
        let conversions: u64 = data.iter().map(|d| d["conversions"].as_u64().unwrap()).sum();
        let revenue: f64 = data.iter().map(|d| d["revenue"].as_f64().unwrap()).sum();
        assert!(
            sum("email", "opens") > 0 && !purchases.is_empty(),
            "the scenario opens and converts often"
        );
        assert_eq!(conversions, purchases.len() as u64);
        assert!((revenue - purchases.iter().sum::<f64>()).abs() < 1e-6);
        let by_send: u64 = data
            .iter()
            .map(|d| d["conversions_by_send_time"].as_u64().unwrap())
            .sum();
        assert_eq!(by_send, conversions, "every conversion's send is inside the window");
    }

    let (_, future) = sim
        .get(
            "/campaigns/data_series",
            &[
                ("campaign_id", "camp-a"),
                ("length", "2"),
                ("ending_at", "2026-03-01T00:00:00Z"),
            ],
        )
        .await;
    assert!(
        future["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["messages"] == json!({}) && d["unique_recipients"] == 0)
    );

    for length in ["0", "101", "x"] {
        let (status, body) = sim
            .get(
                "/campaigns/data_series",
                &[("campaign_id", "camp-a"), ("length", length)],
            )
            .await;
        assert_eq!(status, 400, "{length}: {body}");
    }
    let (status, _) = sim
        .get(
            "/campaigns/data_series",
            &[("campaign_id", "camp-a"), ("length", "100")],
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = sim
        .get("/campaigns/data_series", &[("campaign_id", "nope"), ("length", "1")])
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn send_data_series_count_the_send_and_vanish_after_14_days() {
    let sim = Sim::start(0).await;
    sim.post("/sends/id/create", json!({"campaign_id": "camp-a", "send_id": "s-1"}))
        .await;
    send_some(&sim, 10, 0).await;
    let query = [("campaign_id", "camp-a"), ("send_id", "s-1"), ("length", "5")];
    let (status, body) = sim.get("/sends/data_series", &query).await;
    assert_eq!(status, 200, "{body}");
    let sent: u64 = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["messages"]["email"].as_array().cloned().unwrap_or_default())
        .map(|v| v["sent"].as_u64().unwrap())
        .sum();
    let expected = {
        let ws = sim.ws();
        count(&ws, &EventKind::Send, |m| {
            m.send_id.as_deref() == Some("s-1") && m.channel == offerloop_sim::world::Channel::Email
        })
    };
    assert_eq!(sent, expected);
    assert!(sent > 0);
    sim.ws().advance_to("2026-01-25T00:00:00Z".parse().unwrap());
    let (_, later) = sim
        .get(
            "/sends/data_series",
            &[("campaign_id", "camp-a"), ("send_id", "s-1"), ("length", "30")],
        )
        .await;
    assert!(
        later["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["messages"] == json!({})),
        "{later}"
    );
    let (status, _) = sim
        .get(
            "/sends/data_series",
            &[("campaign_id", "camp-a"), ("send_id", "unknown"), ("length", "1")],
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn canvas_data_series_count_entries_and_add_breakdowns_only_when_asked() {
    let sim = Sim::start(0).await;
    send_some(&sim, 0, 7).await;
    let (status, body) = sim
        .get("/canvas/data_series", &[("canvas_id", "canvas-a"), ("length", "3")])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["name"], "Journey");
    let stats = body["data"]["stats"].as_array().unwrap();
    assert_eq!(stats.len(), 3);
    let entries: u64 = stats
        .iter()
        .map(|s| s["total_stats"]["entries"].as_u64().unwrap())
        .sum();
    assert_eq!(entries, 7);
    assert!(
        stats
            .iter()
            .all(|s| s.get("variant_stats").is_none() && s.get("step_stats").is_none())
    );

    let (_, both) = sim
        .get(
            "/canvas/data_series",
            &[
                ("canvas_id", "canvas-a"),
                ("starting_at", "2026-01-05T00:00:00Z"),
                ("ending_at", "2026-01-06T00:00:00Z"),
                ("include_variant_breakdown", "true"),
                ("include_step_breakdown", "true"),
            ],
        )
        .await;
    let stats = both["data"]["stats"].as_array().unwrap();
    assert_eq!(stats.len(), 2);
    let day = &stats[0];
    assert_eq!(day["variant_stats"].as_object().unwrap().len(), 1);
    let steps = day["step_stats"].as_object().unwrap();
    assert_eq!(steps["step-1"]["name"], "Welcome");
    assert_eq!(steps["step-1"]["messages"]["email"][0]["sent"], 7);
    assert_eq!(
        steps["step-2"]["messages"],
        json!({}),
        "entries only get the first step"
    );

    for (key, value) in [("length", "0"), ("length", "15")] {
        let (status, _) = sim
            .get("/canvas/data_series", &[("canvas_id", "canvas-a"), (key, value)])
            .await;
        assert_eq!(status, 400, "{key}={value}");
    }
    let (status, _) = sim
        .get("/canvas/data_series", &[("canvas_id", "canvas-a"), ("length", "14")])
        .await;
    assert_eq!(status, 200);
    let (status, body) = sim.get("/canvas/data_series", &[("canvas_id", "canvas-a")]).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn segment_data_series_report_the_membership() {
    let sim = Sim::start(0).await;
    let premium = {
        let ws = sim.ws();
        (0..ws.world.len())
            .filter(|i| ws.users.profile(&ws.world, *i)["custom_attributes"]["plan"] == "premium")
            .count() as u64
    };
    let (status, body) = sim
        .get(
            "/segments/data_series",
            &[("segment_id", "seg-premium"), ("length", "1")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!([{"time": "2026-01-05", "size": premium}]));
    for length in ["0", "101"] {
        let (status, _) = sim
            .get(
                "/segments/data_series",
                &[("segment_id", "seg-premium"), ("length", length)],
            )
            .await;
        assert_eq!(status, 400);
    }
    let (status, _) = sim
        .get("/segments/data_series", &[("segment_id", "nope"), ("length", "1")])
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn email_templates_are_created_updated_read_and_listed() {
    let sim = Sim::start(0).await;
    let (status, created) = sim
        .post(
            "/templates/email/create",
            json!({"template_name": "offer-a", "subject": "Your offer", "body": "<p>x</p>", "tags": ["offers"], "should_inline_css": true, "preheader": "p"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["email_template_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);

    let (status, info) = sim.get("/templates/email/info", &[("email_template_id", &id)]).await;
    assert_eq!(status, 200);
    assert_eq!(info["template_name"], "offer-a");
    assert_eq!(info["should_inline_css"], true);
    assert_eq!(info["tags"], json!(["offers"]));
    assert_eq!(info["preheader"], "p");

    sim.ws().advance_to("2026-01-06T00:00:00Z".parse().unwrap());
    let (status, updated) = sim
        .post(
            "/templates/email/update",
            json!({"email_template_id": id, "subject": "New subject"}),
        )
        .await;
    assert_eq!(status, 201, "{updated}");
    let (_, info) = sim.get("/templates/email/info", &[("email_template_id", &id)]).await;
    assert_eq!(info["subject"], "New subject");
    assert_eq!(info["template_name"], "offer-a");
    assert_ne!(info["updated_at"], info["created_at"]);

    let (_, all) = sim.get("/templates/email/list", &[]).await;
    assert_eq!(all["count"], 2);
    let (_, page) = sim
        .get("/templates/email/list", &[("limit", "1"), ("offset", "1")])
        .await;
    assert_eq!(page["templates"].as_array().unwrap().len(), 1);
    assert_eq!(page["templates"][0]["email_template_id"], id.as_str());
    let (_, recent) = sim
        .get("/templates/email/list", &[("modified_after", "2026-01-05T12:00:00Z")])
        .await;
    assert_eq!(recent["count"], 1);
    let (_, old) = sim
        .get("/templates/email/list", &[("modified_before", "2026-01-05T00:00:00Z")])
        .await;
    assert_eq!(old["count"], 1, "bounds are inclusive");
    for limit in ["0", "1001"] {
        let (status, _) = sim.get("/templates/email/list", &[("limit", limit)]).await;
        assert_eq!(status, 400);
    }

    let cases = [
        (json!({"subject": "s", "body": "b"}), "Template name is required"),
        (
            json!({"template_name": "t", "subject": "s", "body": "b", "tags": "offers"}),
            "Tags must be an array",
        ),
        (
            json!({"template_name": "t", "subject": "s", "body": "b", "tags": [1]}),
            "All tags must be strings",
        ),
        (
            json!({"template_name": "t", "subject": "s", "body": "b", "tags": ["nope"]}),
            "Some tags could not be found",
        ),
        (
            json!({"template_name": "t", "subject": "s", "body": "b", "should_inline_css": "true"}),
            "Invalid value for `should_inline_css`. One of `true` or `false` was expected",
        ),
    ];
    for (body, message) in cases {
        let (status, response) = sim.post("/templates/email/create", body).await;
        assert_eq!((status, response["message"].as_str()), (400, Some(message)));
    }
    let (status, body) = sim
        .post(
            "/templates/email/update",
            json!({"email_template_id": id, "should_inline_css": 1}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = sim
        .post(
            "/templates/email/update",
            json!({"email_template_id": "nope", "subject": "x"}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = sim.get("/templates/email/info", &[("email_template_id", "nope")]).await;
    assert_eq!(status, 400);
    let (_, all) = sim.get("/templates/email/list", &[]).await;
    assert_eq!(all["count"], 2, "refused creations leave nothing behind");
}
