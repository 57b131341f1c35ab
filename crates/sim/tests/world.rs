//! Integration tests of the simulated world: every shipped scenario parses and generates; errors are
//! located; generation and responses are deterministic; the oracle is the expectation of the sampler
//! (open, click, caused conversion, revenue, unsubscribe, organic); drift changes the oracle from its
//! date only; reachability; the planted truths of the default (win-back) scenario; alignment with the
//! example use cases; and memory.

// Helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::civil::{Date, date};
use jiff::tz::TimeZone;
use offerloop_sim::world::{Channel, Delivery, Expectation, OutcomeKind};
use offerloop_sim::{Error, Scenario, World};
use serde_json::{Map, Value, json};
use xxhash_rust::xxh3::xxh3_64;

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

fn scenario(name: &str) -> Scenario {
    Scenario::from_file(&scenarios_dir().join(name)).unwrap()
}

fn winback(customers: usize) -> World {
    World::new(scenario("winback.toml").with_customers(customers)).unwrap()
}

/// The instant of `hour:minute` local time on `day` for customer `c`.
fn local(world: &World, c: usize, day: Date, hour: i8, minute: i8) -> Timestamp {
    let tz_name = world.profile(c)["time_zone"].as_str().unwrap().to_owned();
    let tz = TimeZone::get(&tz_name).unwrap();
    day.at(hour, minute, 0, 0).to_zoned_datetime(tz).unwrap().timestamp()
}

fn delivery(channel: Channel, props: Value, at: Timestamp, recent_sends: u32) -> Delivery {
    let campaign = match channel {
        Channel::Email => "6f1c2a9e-winback-email",
        Channel::Sms => "a27d0c41-winback-sms",
        _ => "c90be8f3-winback-push",
    };
    Delivery {
        channel,
        campaign_id: Some(campaign.into()),
        canvas_id: None,
        properties: props.as_object().cloned().unwrap_or_default(),
        at,
        recent_sends,
    }
}

fn offer(offer: &str, subject: &str, channel: &str) -> Value {
    json!({ "offer": offer, "subject": subject, "channel": channel, "send_time": "morning" })
}

fn trait_f64(world: &World, c: usize, name: &str) -> f64 {
    world.hidden_traits(c)[name].as_f64().unwrap()
}

fn trait_str(world: &World, c: usize, name: &str) -> String {
    world.hidden_traits(c)[name].as_str().unwrap().to_owned()
}

fn reaches(world: &World, c: usize, channel: Channel) -> bool {
    world.reachable(c, channel)
}

#[test]
fn every_shipped_scenario_parses_and_generates() {
    let mut names: Vec<String> = std::fs::read_dir(scenarios_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    let expected = [
        "cross-sell",
        "lead-nurture",
        "loyalty",
        "referral",
        "renewal",
        "repeat-purchase",
        "winback",
    ]
    .map(|n| format!("{n}.toml"));
    assert_eq!(names, expected.to_vec());
    for name in &names {
        let s = scenario(name);
        assert!(
            (5_000..=20_000).contains(&s.customers),
            "{name}: default size {}",
            s.customers
        );
        let world = World::new(s.with_customers(300)).unwrap();
        assert_eq!(world.len(), 300);
        for c in [0, 1, 299] {
            let p = world.profile(c);
            assert_eq!(world.index_of(p["external_id"].as_str().unwrap()), Some(c), "{name}");
            assert!(p.contains_key("custom_attributes"), "{name}");
            TimeZone::get(p["time_zone"].as_str().unwrap()).unwrap();
        }
        // Every declared segment matches somebody, and nobody is matched by a segment that filters
        // on a field the world does not generate.
        for seg in &world.scenario().braze.segments {
            let members = (0..world.len()).filter(|c| seg.contains(&world.profile(*c))).count();
            assert!(members > 0, "{name}: segment {} is empty", seg.id);
        }
    }
}

/// Every `campaign_id` / `canvas_id` anywhere in a use case.
fn braze_ids(value: &toml::Value, out: &mut Vec<(String, String, Option<String>)>) {
    match value {
        toml::Value::Table(t) => {
            let channel = t.get("channel").and_then(|c| c.as_str()).map(str::to_owned);
            for key in ["campaign_id", "canvas_id"] {
                if let Some(id) = t.get(key).and_then(|v| v.as_str()) {
                    out.push((key.to_owned(), id.to_owned(), channel.clone()));
                }
            }
            t.values().for_each(|v| braze_ids(v, out));
        }
        toml::Value::Array(a) => a.iter().for_each(|v| braze_ids(v, out)),
        _ => {}
    }
}

/// Each scenario matches its use case in examples/: segment, campaigns and canvases (with the right
/// channel, API-triggered), features present in the exported profiles, a lever per decision
/// dimension with the same option ids, and the metric's conversion event.
#[test]
fn scenarios_are_aligned_with_the_example_use_cases() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for name in [
        "winback",
        "cross-sell",
        "renewal",
        "repeat-purchase",
        "referral",
        "lead-nurture",
        "loyalty",
    ] {
        let use_case: toml::Value =
            toml::from_str(&std::fs::read_to_string(examples.join(format!("{name}.toml"))).unwrap()).unwrap();
        let s = scenario(&format!("{name}.toml"));
        let braze = &s.braze;
        if let Some(segment) = use_case["audience"].get("segment_id").and_then(|v| v.as_str()) {
            assert!(
                braze.segments.iter().any(|g| g.id == segment),
                "{name}: segment {segment}"
            );
        }
        let mut ids = Vec::new();
        braze_ids(&use_case, &mut ids);
        assert!(!ids.is_empty(), "{name}");
        for (kind, id, channel) in ids {
            // The simulator has no WhatsApp channel (see lead-nurture.toml).
            if channel.as_deref() == Some("whatsapp") {
                continue;
            }
            let channels: Vec<Channel> = if kind == "campaign_id" {
                let c = braze
                    .campaigns
                    .iter()
                    .find(|c| c.id == id)
                    .unwrap_or_else(|| panic!("{name}: campaign {id}"));
                assert!(c.api_triggered && !c.messages.is_empty(), "{name}: {id}");
                c.channels.clone()
            } else {
                let c = braze
                    .canvases
                    .iter()
                    .find(|c| c.id == id)
                    .unwrap_or_else(|| panic!("{name}: canvas {id}"));
                assert!(c.api_triggered && !c.steps.is_empty(), "{name}: {id}");
                c.steps[0].messages.iter().map(|m| m.channel).collect()
            };
            if let Some(channel) = channel {
                let channel: Channel = serde_json::from_value(json!(channel)).unwrap();
                assert!(channels.contains(&channel), "{name}: {id} sends {channel:?}");
            }
        }
        // Features read fields the world generates (some customers have each).
        let world = World::new(s.clone().with_customers(400)).unwrap();
        let profiles: Vec<Map<String, Value>> = (0..world.len()).map(|c| world.profile(c)).collect();
        for feature in use_case["feature"].as_array().unwrap() {
            let field = feature["field"].as_str().unwrap();
            let present = profiles
                .iter()
                .filter(|p| offerloop_sim::state::spec::lookup(p, field).is_some())
                .count();
            assert!(present > 0, "{name}: feature field {field} is never generated");
        }
        // Decision dimensions other than channel, send time and weekday are levers with the same options.
        let levers = s.levers();
        for dim in use_case["dimension"].as_array().unwrap() {
            let kind = dim["kind"].as_str().unwrap();
            if ["channel", "send_time", "day_of_week"].contains(&kind) {
                continue;
            }
            let dim_name = dim["name"].as_str().unwrap();
            let mut options: Vec<&str> = dim["options"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_str().unwrap())
                .collect();
            options.sort();
            let lever = levers
                .iter()
                .find(|l| l.0 == dim_name)
                .unwrap_or_else(|| panic!("{name}: no lever {dim_name}"));
            let mut have = lever.2.clone();
            have.sort();
            assert_eq!(have, options, "{name}: options of {dim_name}");
        }
        // The metric's event is what the world emits on conversion.
        let metric = &use_case["metric"];
        let event = metric
            .get("event")
            .or_else(|| metric.get("active_event"))
            .and_then(|v| v.as_str());
        let first_day = world.scenario().start.to_zoned_datetime(TimeZone::UTC).date();
        let world = &world;
        let conversions: Vec<OutcomeKind> = (0..world.len())
            .flat_map(|c| (0..40).flat_map(move |d| world.organic(c, first_day + jiff::Span::new().days(d))))
            .map(|o| o.kind)
            .collect();
        assert!(!conversions.is_empty(), "{name}: no organic conversions at all");
        for kind in conversions {
            match (event, kind) {
                (Some(e), OutcomeKind::CustomEvent { name: got, properties }) => {
                    assert_eq!(got, e, "{name}");
                    if let Some(p) = metric.get("property").and_then(|v| v.as_str()) {
                        assert!(properties.contains_key(p), "{name}: event lacks {p}");
                    }
                }
                (None, OutcomeKind::Purchase { .. }) => {}
                (e, k) => panic!("{name}: metric event {e:?} but the world emits {k:?}"),
            }
        }
    }
}

#[test]
fn default_scenario_is_winback() {
    assert_eq!(offerloop_sim::world::DEFAULT_SCENARIO, "winback.toml");
    let s = scenario(offerloop_sim::world::DEFAULT_SCENARIO);
    assert_eq!(s.name, "winback");
}

/// `|observed - p| <= 4 sigma` for a binomial frequency over `n` draws.
fn assert_binomial(label: &str, hits: usize, n: usize, p: f64) {
    let freq = hits as f64 / n as f64;
    let sigma = (p * (1.0 - p) / n as f64).sqrt();
    assert!(
        (freq - p).abs() <= 4.0 * sigma + 1e-9,
        "{label}: sampled {freq:.5} vs oracle {p:.5} (4 sigma = {:.5})",
        4.0 * sigma
    );
}

/// P(no organic conversion) and expected organic revenue over the oracle's horizon for a delivery at `at`.
fn organic_part(world: &World, c: usize, at: Timestamp) -> (f64, f64) {
    let mut day = at.to_zoned_datetime(TimeZone::UTC).date();
    let (mut none, mut revenue) = (1.0, 0.0);
    for _ in 0..world.scenario().horizon_days {
        let e = world.expected_organic(c, day);
        none *= 1.0 - e.convert;
        revenue += e.revenue;
        day = day.tomorrow().unwrap();
    }
    (none, revenue)
}

#[test]
fn sampled_responses_converge_to_the_oracle() {
    let world = winback(2_000);
    let day = date(2026, 1, 13);
    // Customer types: reachable on the channel, with contrasting hidden traits.
    let pick = |pred: &dyn Fn(usize) -> bool| (0..world.len()).find(|c| pred(*c)).unwrap();
    let sms_evening = pick(&|c| {
        reaches(&world, c, Channel::Sms)
            && trait_str(&world, c, "active_hours") == "evening"
            && trait_str(&world, c, "preferred_channel") == "sms"
    });
    let sensitive_email =
        pick(&|c| reaches(&world, c, Channel::Email) && trait_f64(&world, c, "price_sensitivity") > 0.85);
    let tired_push = pick(&|c| reaches(&world, c, Channel::Push) && trait_f64(&world, c, "fatigue_sensitivity") > 0.8);
    let cases = [
        (sms_evening, Channel::Sms, offer("pct20", "miss_you", "sms"), 19, 0),
        (sms_evening, Channel::Sms, offer("none", "new_arrivals", "sms"), 9, 0),
        (
            sensitive_email,
            Channel::Email,
            offer("pct20", "miss_you", "email"),
            9,
            1,
        ),
        (
            sensitive_email,
            Channel::Email,
            offer("free_shipping", "new_arrivals", "email"),
            23,
            0,
        ),
        (tired_push, Channel::Push, offer("pct10", "miss_you", "push"), 12, 4),
    ];
    let n = 20_000;
    let horizon = jiff::SignedDuration::from_hours(24 * i64::from(world.scenario().horizon_days));
    for (c, channel, props, hour, recent) in cases {
        let d = delivery(channel, props.clone(), local(&world, c, day, hour, 30), recent);
        let e = world.expected(c, &d);
        assert!(e.reachable);
        let (no_organic, organic_revenue) = organic_part(&world, c, d.at);
        let caused = 1.0 - (1.0 - e.convert) / no_organic;
        let caused_revenue = e.revenue - organic_revenue;
        let (mut opens, mut clicks, mut convs, mut unsubs) = (0, 0, 0, 0);
        let (mut revenue, mut revenue_sq) = (0.0, 0.0);
        for stream in 0..n as u64 {
            let outcomes = world.respond(c, &d, stream);
            assert_eq!(outcomes[0].kind, OutcomeKind::Delivered);
            for o in &outcomes {
                assert!(o.at >= d.at && o.at < d.at + horizon, "{o:?} outside the horizon");
                match &o.kind {
                    OutcomeKind::Opened => opens += 1,
                    OutcomeKind::Clicked => clicks += 1,
                    OutcomeKind::Unsubscribed => unsubs += 1,
                    OutcomeKind::Purchase { price, .. } => {
                        convs += 1;
                        revenue += price;
                        revenue_sq += price * price;
                    }
                    OutcomeKind::Delivered => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert!(outcomes.windows(2).all(|w| w[0].at <= w[1].at), "time order");
        }
        let label = format!("customer {c} {channel:?} {props} {hour}h");
        assert_binomial(&format!("{label} open"), opens, n, e.open);
        assert_binomial(&format!("{label} click"), clicks, n, e.click);
        assert_binomial(&format!("{label} convert"), convs, n, caused);
        assert_binomial(&format!("{label} unsubscribe"), unsubs, n, e.unsubscribe);
        let mean = revenue / n as f64;
        let sd = ((revenue_sq / n as f64 - mean * mean).max(0.0) / n as f64).sqrt();
        assert!(
            (mean - caused_revenue).abs() <= 4.0 * sd + 0.01,
            "{label} revenue: sampled {mean:.4} vs oracle {caused_revenue:.4} (sd {sd:.4})"
        );
        if channel == Channel::Sms {
            assert_eq!(e.open, 0.0, "SMS has no opens");
        }
    }
}

#[test]
fn sampled_organic_days_converge_to_the_oracle() {
    let world = winback(5_000);
    let days: Vec<Date> = (0..30).map(|i| date(2026, 1, 25) + jiff::Span::new().days(i)).collect();
    let (mut hits, mut p_sum, mut var_sum, mut revenue, mut expected_revenue) = (0usize, 0.0, 0.0, 0.0, 0.0);
    for c in 0..world.len() {
        for day in &days {
            let e = world.expected_organic(c, *day);
            p_sum += e.convert;
            var_sum += e.convert * (1.0 - e.convert);
            expected_revenue += e.revenue;
            for o in world.organic(c, *day) {
                assert_eq!(o.at.to_zoned_datetime(TimeZone::UTC).date(), *day);
                hits += 1;
                if let OutcomeKind::Purchase { price, .. } = o.kind {
                    revenue += price;
                }
            }
        }
    }
    assert!(hits > 50, "too few organic conversions to test: {hits}");
    assert!(
        (hits as f64 - p_sum).abs() <= 4.0 * var_sum.sqrt(),
        "organic: {hits} vs {p_sum:.1}"
    );
    let per = expected_revenue / p_sum;
    assert!(
        (revenue - expected_revenue).abs() <= 4.0 * var_sum.sqrt() * per * 1.5,
        "organic revenue {revenue:.0} vs {expected_revenue:.0}"
    );
}

#[test]
fn generation_and_responses_are_deterministic() {
    let hash = |world: &World, n: usize| {
        let mut text = String::new();
        for c in 0..n {
            text.push_str(&serde_json::to_string(&world.profile(c)).unwrap());
        }
        xxh3_64(text.as_bytes())
    };
    let a = winback(1_000);
    let b = winback(1_000);
    assert_eq!(hash(&a, 1_000), hash(&b, 1_000));
    // Customer i depends on (seed, i) only: a bigger world starts with the same customers.
    let bigger = winback(2_500);
    assert_eq!(hash(&a, 1_000), hash(&bigger, 1_000));
    // Another seed is another population.
    let mut other = scenario("winback.toml").with_customers(1_000);
    other.seed += 1;
    assert_ne!(hash(&a, 1_000), hash(&World::new(other).unwrap(), 1_000));

    let d = delivery(
        Channel::Email,
        offer("pct10", "miss_you", "email"),
        local(&a, 3, date(2026, 1, 8), 9, 0),
        0,
    );
    let run = |w: &World| (0..200).map(|s| w.respond(3, &d, s)).collect::<Vec<_>>();
    assert_eq!(run(&a), run(&b));
    // Call order does not matter: sampling stream 7 alone gives what it gave within the run.
    assert_eq!(a.respond(3, &d, 7), run(&a)[7]);
    assert!(run(&a).iter().any(|o| o.len() > 1), "some deliveries must be opened");
    let day = date(2026, 1, 10);
    assert_eq!(a.organic(5, day), b.organic(5, day));
}

#[test]
fn drift_changes_the_oracle_from_its_date_only() {
    let world = winback(2_000);
    let c = (0..world.len())
        .find(|c| reaches(&world, *c, Channel::Sms) && trait_str(&world, *c, "preferred_channel") == "sms")
        .unwrap();
    // Local 10:00 on these days is the same UTC date everywhere the scenario has customers.
    let at = |day: Date, channel: Channel| {
        let name = if channel == Channel::Sms { "sms" } else { "email" };
        delivery(
            channel,
            offer("pct10", "miss_you", name),
            local(&world, c, day, 10, 0),
            0,
        )
    };
    let close = |a: &Expectation, b: &Expectation| {
        (a.open - b.open).abs() < 1e-12
            && (a.click - b.click).abs() < 1e-12
            && (a.convert - b.convert).abs() < 1e-12
            && (a.revenue - b.revenue).abs() < 1e-9
    };
    let before_1 = world.expected(c, &at(date(2026, 1, 11), Channel::Sms));
    let before_2 = world.expected(c, &at(date(2026, 1, 18), Channel::Sms));
    let after = world.expected(c, &at(date(2026, 1, 19), Channel::Sms));
    assert!(
        close(&before_1, &before_2),
        "no drift before 2026-01-19: {before_1:?} vs {before_2:?}"
    );
    assert!(
        after.click < before_2.click - 0.01,
        "SMS loses half its fit on 2026-01-19: {before_2:?} -> {after:?}"
    );
    assert!(after.convert < before_2.convert);
    // Email is not touched by the SMS drift (same weekday, and organic windows with the same
    // weekdays and no drift).
    let email_before = world.expected(c, &at(date(2026, 1, 12), Channel::Email));
    let email_after = world.expected(c, &at(date(2026, 1, 19), Channel::Email));
    if reaches(&world, c, Channel::Email) {
        assert!(
            close(&email_before, &email_after),
            "{email_before:?} vs {email_after:?}"
        );
    }
    // And the sampler follows the oracle across the date: same streams, fewer clicks after.
    let count = |d: &Delivery| {
        (0..4_000)
            .filter(|s| world.respond(c, d, *s).iter().any(|o| o.kind == OutcomeKind::Clicked))
            .count()
    };
    assert!(count(&at(date(2026, 1, 19), Channel::Sms)) < count(&at(date(2026, 1, 18), Channel::Sms)));
}

#[test]
fn unreachable_channels_bounce() {
    let world = winback(2_000);
    let no_sms = (0..world.len())
        .find(|c| world.profile(*c)["custom_attributes"]["sms_marketing_consent"] == json!(false))
        .unwrap();
    let d = delivery(
        Channel::Sms,
        offer("pct20", "miss_you", "sms"),
        local(&world, no_sms, date(2026, 1, 8), 12, 30),
        0,
    );
    let e = world.expected(no_sms, &d);
    assert!(!e.reachable);
    assert_eq!((e.open, e.click, e.cost, e.unsubscribe), (0.0, 0.0, 0.0, 0.0));
    let (no_organic, organic_revenue) = organic_part(&world, no_sms, d.at);
    assert!(
        (e.convert - (1.0 - no_organic)).abs() < 1e-12,
        "only organic conversions remain"
    );
    assert!((e.revenue - organic_revenue).abs() < 1e-9);
    for s in 0..50 {
        let out = world.respond(no_sms, &d, s);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, OutcomeKind::Bounced);
    }
    // Push needs a subscription and a token; email an address that did not unsubscribe.
    for c in 0..world.len() {
        let p = world.profile(c);
        let push_ok =
            matches!(p["push_subscribe"].as_str(), Some("opted_in" | "subscribed")) && p.contains_key("push_tokens");
        assert_eq!(reaches(&world, c, Channel::Push), push_ok, "customer {c}");
        let email_ok = p["email_subscribe"] != json!("unsubscribed");
        assert_eq!(reaches(&world, c, Channel::Email), email_ok, "customer {c}");
        let sms_ok = p.contains_key("phone") && p["custom_attributes"]["sms_marketing_consent"] == json!(true);
        assert_eq!(reaches(&world, c, Channel::Sms), sms_ok, "customer {c}");
    }
}

#[test]
fn malformed_scenarios_report_file_line_and_field() {
    let good = std::fs::read_to_string(scenarios_dir().join("winback.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let check = |text: &str, needle: &str, field: &str| {
        let path = dir.path().join("broken.toml");
        std::fs::write(&path, text).unwrap();
        let line = text.lines().position(|l| l.contains(needle)).unwrap() + 1;
        match Scenario::from_file(&path) {
            Err(Error::Scenario { location, message }) => {
                assert_eq!(location, format!("{}:{line}: {field}", path.display()), "{message}");
            }
            other => panic!("expected a located error, got {other:?}"),
        }
    };
    // An unknown key (deny_unknown_fields).
    check(
        &good.replace(
            "horizon_days = 14",
            "horizon_days = 14
horizon_dayz = 3",
        ),
        "horizon_dayz",
        "horizon_dayz",
    );
    // A wrong type.
    check(&good.replace("seed = 20261128", "seed = \"x\""), "seed = \"x\"", "seed");
    // An effect on an option the lever does not have.
    check(
        &good.replace(r#"is = "pct20" }, { trait"#, r#"is = "pct25" }, { trait"#),
        "pct25",
        "effect[14].when[0].is",
    );
    // A shift from a source that does not exist.
    check(
        &good.replace("shift = { churn_risk = 0.6 }", "shift = { churn = 0.6 }"),
        "shift = { churn = 0.6 }",
        "attribute[7].shift.churn",
    );
    // A drift on an unknown effect.
    check(
        &good.replace(r#"effect = "sms_fit""#, r#"effect = "sms_fitt""#),
        "sms_fitt",
        "drift[0].effect",
    );
    // A bad time zone category.
    check(
        &good.replace("\"Europe/London\" = 1.0", "\"Europe/Londres\" = 1.0"),
        "Europe/Londres",
        "attribute[1].by.GB.Europe/Londres",
    );
    // Unreadable file.
    assert!(matches!(
        Scenario::from_file(&dir.path().join("missing.toml")),
        Err(Error::ReadScenario { .. })
    ));
}

#[test]
fn planted_truths_of_the_winback_scenario() {
    let world = winback(4_000);
    let day = date(2026, 1, 7);
    // Price-sensitive customers prefer pct20; the others do not.
    let mut by_group: BTreeMap<(&str, &str), (f64, usize)> = BTreeMap::new();
    for c in 0..world.len() {
        if !reaches(&world, c, Channel::Email) {
            continue;
        }
        let ps = trait_f64(&world, c, "price_sensitivity");
        let group = if ps > 0.7 {
            "sensitive"
        } else if ps < 0.3 {
            "insensitive"
        } else {
            continue;
        };
        for o in ["none", "pct10", "pct20", "free_shipping"] {
            let e = world.expected(
                c,
                &delivery(
                    Channel::Email,
                    offer(o, "miss_you", "email"),
                    local(&world, c, day, 9, 0),
                    0,
                ),
            );
            let entry = by_group.entry((group, o)).or_default();
            entry.0 += e.revenue - e.cost;
            entry.1 += 1;
        }
    }
    let mean = |g, o| by_group[&(g, o)].0 / by_group[&(g, o)].1 as f64;
    for o in ["none", "pct10", "free_shipping"] {
        assert!(
            mean("sensitive", "pct20") > mean("sensitive", o) * 1.1,
            "sensitive: pct20 beats {o}: {by_group:?}"
        );
    }
    assert!(
        mean("insensitive", "pct20") < mean("insensitive", "pct10"),
        "{by_group:?}"
    );
    assert!(
        mean("insensitive", "pct20") < mean("insensitive", "none"),
        "{by_group:?}"
    );

    // An SMS customer's best send time (of the use case's 09:00, 12:30, 19:00) is in their active
    // hours, before and after the SMS drift.
    let slots = [("morning", 9, 0), ("midday", 12, 30), ("evening", 19, 0)];
    let mut right = 0;
    let mut total = 0;
    for (c, day) in (0..world.len()).flat_map(|c| [(c, day), (c, date(2026, 1, 21))]) {
        if !reaches(&world, c, Channel::Sms) {
            continue;
        }
        let active = trait_str(&world, c, "active_hours");
        let value = |h, m| {
            let e = world.expected(
                c,
                &delivery(
                    Channel::Sms,
                    offer("pct10", "miss_you", "sms"),
                    local(&world, c, day, h, m),
                    0,
                ),
            );
            e.revenue - e.cost
        };
        let best = slots
            .iter()
            .max_by(|a, b| value(a.1, a.2).total_cmp(&value(b.1, b.2)))
            .unwrap()
            .0;
        total += 1;
        right += usize::from(best == active);
    }
    assert!(
        total > 200 && right == total,
        "best SMS time = active hours for {right} of {total}"
    );

    // Hidden traits show through observable fields: favourite_daypart tracks active hours, AOV tracks
    // price sensitivity, SMS consent tracks the preferred channel.
    let n = world.len() as f64;
    let agree = (0..world.len())
        .filter(|c| {
            world.profile(*c)["custom_attributes"]["favourite_daypart"]
                .as_str()
                .unwrap()
                == trait_str(&world, *c, "active_hours")
        })
        .count() as f64;
    assert!(
        agree / n > 0.6,
        "favourite_daypart agrees with active hours for {:.2}",
        agree / n
    );
    let aov = |lo: f64, hi: f64| {
        let xs: Vec<f64> = (0..world.len())
            .filter(|c| (lo..hi).contains(&trait_f64(&world, *c, "price_sensitivity")))
            .map(|c| {
                world.profile(c)["custom_attributes"]["avg_order_value"]
                    .as_f64()
                    .unwrap()
            })
            .collect();
        xs.iter().sum::<f64>() / xs.len() as f64
    };
    assert!(
        aov(0.8, 1.0) < aov(0.0, 0.2) * 0.7,
        "price-sensitive customers have smaller baskets"
    );
}

#[test]
fn memory_per_customer_fits_a_million_in_well_under_a_gigabyte() {
    let world = winback(1_000);
    let per = world.bytes_per_customer();
    assert!(per * 1_000_000 < 200_000_000, "{per} bytes per customer");
}

/// The real thing: a million customers generated and indexed. Slow in a debug build, so ignored
/// (reported as such) unless asked for: `cargo test -p offerloop-sim --test world -- --ignored`. How
/// fast it is, is measured by the `scale` bench (`cargo xtask bench sim`), not here.
#[test]
#[ignore = "slow (a million-customer world): run with --ignored"]
fn a_million_customers_are_generated_and_indexed() {
    let big = winback(1_000_000);
    assert_eq!(big.len(), 1_000_000);
    assert_eq!(big.index_of(big.external_id(999_999)), Some(999_999));
    assert!(big.bytes_per_customer() * 1_000_000 < 200_000_000);
}

#[test]
fn external_ids_round_trip_and_reject_strangers() {
    let world = winback(1_234);
    assert_eq!(world.external_id(0), "wb-000000");
    assert_eq!(world.external_id(1_233), "wb-001233");
    assert_eq!(world.external_id(1_234), "");
    assert_eq!(world.index_of("wb-001233"), Some(1_233));
    for stranger in ["wb-001234", "wb-1233", "cust-000001", "wb-00123x", "", "wb-0012330"] {
        assert_eq!(world.index_of(stranger), None, "{stranger}");
    }
    assert!(world.profile(1_234).is_empty());
    assert!(
        world
            .respond(
                1_234,
                &delivery(Channel::Email, json!({}), world.scenario().start, 0),
                0
            )
            .is_empty()
    );
    let empty: Map<String, Value> = world.hidden_traits(5_000);
    assert!(empty.is_empty());
}

mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The oracle is a set of probabilities and non-negative amounts for any customer, option,
        /// channel, hour and fatigue.
        #[test]
        fn oracle_values_are_probabilities(c in 0usize..500, o in 0usize..5, ch in 0usize..4, minutes in 0i64..(14 * 24 * 60), recent in 0u32..10) {
            let world = super::winback(500);
            let offers = ["none", "pct10", "pct20", "free_shipping", "unknown"];
            let channel = [Channel::Email, Channel::Sms, Channel::Push, Channel::ContentCard][ch];
            let at = world.scenario().start + jiff::SignedDuration::from_mins(minutes);
            let d = delivery(channel, offer(offers[o], "miss_you", "x"), at, recent);
            let e = world.expected(c, &d);
            for p in [e.open, e.click, e.convert, e.unsubscribe] {
                prop_assert!((0.0..=1.0).contains(&p), "{e:?}");
            }
            let has_opens = matches!(channel, Channel::Email | Channel::Push);
            prop_assert!(!has_opens || !e.reachable || e.click <= e.open + 1e-12, "click implies open: {:?}", e);
            prop_assert!(e.revenue >= 0.0 && e.cost >= 0.0);
            let organic = organic_part(&world, c, at);
            prop_assert!(e.convert + 1e-12 >= 1.0 - organic.0, "a message never lowers P(convert) below organic");
        }
    }
}

/// In every scenario each lever matters to a contextual policy: at least two of its options are the
/// oracle's best choice for at least 5 % of the customers each (other levers at their first option).
#[test]
fn every_lever_has_context_dependent_winners() {
    for name in [
        "winback",
        "cross-sell",
        "renewal",
        "repeat-purchase",
        "referral",
        "lead-nurture",
        "loyalty",
    ] {
        let world = World::new(scenario(&format!("{name}.toml")).with_customers(600)).unwrap();
        let levers = world.scenario().levers();
        let day = date(2026, 1, 14);
        for (lever, property, options) in &levers {
            let mut wins: BTreeMap<&str, usize> = BTreeMap::new();
            let mut counted = 0;
            for c in 0..world.len() {
                let Some(channel) = [Channel::Email, Channel::Push, Channel::InApp]
                    .into_iter()
                    .find(|ch| world.reachable(c, *ch))
                else {
                    continue;
                };
                let score = |option: &str| {
                    let mut props = Map::new();
                    for (other, p, opts) in &levers {
                        props.insert((*p).to_owned(), json!(if other == lever { option } else { opts[0] }));
                    }
                    props.insert((*property).to_owned(), json!(option));
                    let d = Delivery {
                        channel,
                        campaign_id: None,
                        canvas_id: None,
                        properties: props,
                        at: local(&world, c, day, 12, 0),
                        recent_sends: 0,
                    };
                    let e = world.expected(c, &d);
                    // Revenue net of cost where conversions have a value, else the conversion rate.
                    if e.revenue > 0.0 { e.revenue - e.cost } else { e.convert }
                };
                let best = options.iter().max_by(|a, b| score(a).total_cmp(&score(b))).unwrap();
                *wins.entry(best).or_default() += 1;
                counted += 1;
            }
            let strong = wins.values().filter(|w| **w * 20 >= counted).count();
            assert!(
                strong >= 2,
                "{name}: lever {lever} has one winner for everybody: {wins:?}"
            );
        }
    }
}

/// The oracle also holds for custom-event conversions with a value property (referral, email) and for
/// webhook deliveries, which have no open or click stage (lead nurture's sales-rep task).
#[test]
fn sampled_custom_event_and_webhook_conversions_converge_to_the_oracle() {
    let referral = World::new(scenario("referral.toml").with_customers(300)).unwrap();
    let nurture = World::new(scenario("lead-nurture.toml").with_customers(300)).unwrap();
    let cases = [
        (
            &referral,
            Channel::Email,
            json!({ "incentive": "give60_get30", "subject": "ends_sunday", "send_time": "after_dinner" }),
            "referral_signup",
            Some("first_box_value"),
        ),
        (
            &nurture,
            Channel::Webhook,
            json!({ "content": "roi_calculator", "cadence": "weekly", "channel": "sdr_task" }),
            "trial_started",
            None,
        ),
    ];
    let n = 20_000;
    for (world, channel, props, event, value_key) in cases {
        let c = (0..world.len()).find(|c| world.reachable(*c, channel)).unwrap();
        let d = Delivery {
            channel,
            campaign_id: None,
            canvas_id: None,
            properties: props.as_object().cloned().unwrap(),
            at: local(world, c, date(2026, 1, 15), 19, 30),
            recent_sends: 1,
        };
        let e = world.expected(c, &d);
        let (no_organic, organic_revenue) = organic_part(world, c, d.at);
        let caused = 1.0 - (1.0 - e.convert) / no_organic;
        let (mut convs, mut value, mut value_sq) = (0, 0.0, 0.0);
        for stream in 0..n as u64 {
            for o in world.respond(c, &d, stream) {
                match o.kind {
                    OutcomeKind::CustomEvent { name, properties } => {
                        assert_eq!(name, event);
                        convs += 1;
                        if let Some(key) = value_key {
                            let v = properties[key].as_f64().unwrap();
                            value += v;
                            value_sq += v * v;
                        }
                    }
                    OutcomeKind::Opened | OutcomeKind::Clicked => {
                        assert_ne!(channel, Channel::Webhook, "webhooks are neither opened nor clicked");
                    }
                    _ => {}
                }
            }
        }
        assert_binomial(&format!("{event} conversions"), convs, n, caused);
        if value_key.is_some() {
            let mean = value / n as f64;
            let sd = ((value_sq / n as f64 - mean * mean).max(0.0) / n as f64).sqrt();
            let oracle = e.revenue - organic_revenue;
            assert!(
                (mean - oracle).abs() <= 4.0 * sd + 0.01,
                "{event} value {mean:.4} vs {oracle:.4}"
            );
        } else {
            assert!((e.revenue).abs() < 1e-12, "no value, no revenue");
        }
        if channel == Channel::Webhook {
            assert_eq!((e.open, e.click), (0.0, 0.0));
        }
    }
}

#[test]
fn the_caused_part_and_the_organic_days_rebuild_the_oracle() {
    let world = winback(500);
    let day = date(2026, 1, 13);
    let mut reached = 0;
    for c in 0..world.len() {
        for (channel, hour) in [(Channel::Email, 9), (Channel::Sms, 19), (Channel::Push, 12)] {
            let d = delivery(
                channel,
                offer("pct20", "miss_you", "sms"),
                local(&world, c, day, hour, 0),
                1,
            );
            let (e, caused) = (world.expected(c, &d), world.expected_caused(c, &d));
            let (no_organic, organic_revenue) = organic_part(&world, c, d.at);
            assert!((e.convert - (1.0 - (1.0 - caused.convert) * no_organic)).abs() < 1e-12);
            assert!((e.revenue - (caused.revenue + organic_revenue)).abs() < 1e-9);
            assert_eq!(
                (e.open, e.click, e.cost, e.unsubscribe),
                (caused.open, caused.click, caused.cost, caused.unsubscribe)
            );
            assert_eq!(e.reachable, caused.reachable);
            if !caused.reachable {
                assert_eq!((caused.convert, caused.revenue), (0.0, 0.0));
            } else {
                reached += 1;
                assert!(caused.convert > 0.0 && caused.revenue > 0.0);
            }
        }
    }
    assert!(reached > 500, "{reached}");
}

#[test]
fn each_scenario_names_its_conversion() {
    use offerloop_sim::world::ConversionEvent;
    assert_eq!(
        scenario("winback.toml").conversion(),
        ConversionEvent::Purchase {
            product_id: "winback-order".into()
        }
    );
    assert_eq!(
        scenario("referral.toml").conversion(),
        ConversionEvent::CustomEvent {
            name: "referral_signup".into(),
            value_property: Some("first_box_value".into())
        }
    );
    assert_eq!(
        scenario("lead-nurture.toml").conversion(),
        ConversionEvent::CustomEvent {
            name: "trial_started".into(),
            value_property: None
        }
    );
}
