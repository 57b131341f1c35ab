//! The Braze contract suite: every operation of [`offerloop_braze::BrazeApi`], run through a real
//! [`BrazeClient`] against a target, asserting that the client's typed response is what the server's
//! state says, plus the error contract (401, 403, 400, 429, and the API key never printed).
//!
//! # Targets
//!
//! By default each test starts its own [`SimBraze`] on a small seeded scenario ([`SCENARIO`]), so tests
//! are independent; sim-only checks read the simulator's workspace (the event log, the catalog, the
//! profiles) and its `/_sim/*` admin endpoints.
//!
//! Against a **real Braze workspace** when `OFFERLOOP_CONTRACT_BRAZE_URL` is set. Then all of these are
//! required (a test fails naming the missing ones):
//! - `OFFERLOOP_CONTRACT_BRAZE_URL`: the REST endpoint, e.g. `https://rest.iad-01.braze.com`;
//! - `OFFERLOOP_CONTRACT_BRAZE_KEY`: a REST API key with every permission the suite uses;
//! - `OFFERLOOP_CONTRACT_CAMPAIGN_ID`: an API-triggered campaign with an email message;
//! - `OFFERLOOP_CONTRACT_CANVAS_ID`: an API-triggered Canvas;
//! - `OFFERLOOP_CONTRACT_SEGMENT_ID`: a small segment (it is exported);
//! - `OFFERLOOP_CONTRACT_EXTERNAL_IDS`: comma-separated `external_id`s of test users (written to by
//!   `/users/track`, and the recipients of sends).
//!
//! Optional:
//! - `OFFERLOOP_CONTRACT_ALLOW_SENDS=1`: without it, tests that would send or schedule messages are
//!   skipped against real Braze, with a printed reason;
//! - `OFFERLOOP_CONTRACT_LIMITED_KEY`: a key of the same workspace **without** `campaigns.list`, for the
//!   403 test (skipped without it).
//!
//! Checks that need the simulator's state (tiny rate limits, faults, exact analytics, list pagination
//! over a known catalog) are skipped against real Braze with a printed reason; the typed-response
//! checks run.
//!
//! What a real-Braze run assumes and leaves behind: the workspace has **no export bucket** (a segment
//! export answers with a download `url`); `/users/track` writes the custom attributes `contract_tier`
//! and `contract_flag`, a `contract_event` event and a two-unit `contract-sku` purchase to the first test
//! user; every run creates a few email templates named `Contract: ...` and two or three send ids (of
//! Braze's 100 per day); with `OFFERLOOP_CONTRACT_ALLOW_SENDS=1` the campaign and Canvas really send to
//! the test users, and schedules fire 30 minutes to 3 hours later.
//!
//! Run: `cargo test -p offerloop-tests --test e2e braze_contract`.

#![allow(clippy::print_stderr)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::MutexGuard;
use std::time::Duration;

use futures::TryStreamExt as _;
use jiff::{SignedDuration, Timestamp};
use offerloop_braze::api::catalog::{
    CampaignDataSeriesRequest, CampaignDetailsRequest, CampaignListRequest, CanvasDataSeriesRequest,
    CanvasDetailsRequest, CanvasListRequest, SegmentDataSeriesRequest, SegmentDetailsRequest, SegmentListRequest,
    SendDataSeriesRequest, SendIdCreateRequest, SortDirection,
};
use offerloop_braze::api::messaging::{
    CampaignTriggerScheduleRequest, CampaignTriggerSendRequest, CanvasTriggerScheduleRequest, CanvasTriggerSendRequest,
    MessagesScheduleRequest, MessagesSendRequest, Recipient, Schedule,
};
use offerloop_braze::api::templates::{
    EmailTemplateCreateRequest, EmailTemplateInfoRequest, EmailTemplateListRequest, EmailTemplateUpdateRequest,
};
use offerloop_braze::api::users::{
    AttributesObject, EventObject, ExportIdsRequest, ExportSegmentRequest, PurchaseObject, TrackRequest, UserIdentifier,
};
use offerloop_braze::export::{ExportPoll, ExportReader, ExportSource};
use offerloop_braze::limits;
use offerloop_braze::paginate::all_pages;
use offerloop_braze::retry::RetryPolicy;
use offerloop_braze::{ApiKey, BrazeApi, BrazeClient, BrazeConfig, BrazeError, Endpoint, RateLimitPool, SendFate};
use offerloop_sim::server::{Faults, Limit, RateLimits};
use offerloop_sim::state::{DEFAULT_API_KEY, Event, EventKind, Workspace};
use offerloop_sim::{Scenario, SimBraze, SimConfig, World};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------------
// The scenario: everything the simulator target is seeded with. Keep it in this one place.
// ---------------------------------------------------------------------------------------------------

/// The API-triggered email campaign every send test uses.
const CAMPAIGN: &str = "camp-contract-email";
/// A campaign that is not API-triggered (triggering it is a 400).
const CAMPAIGN_NOT_API: &str = "camp-contract-dashboard";
/// An archived campaign (hidden from `/campaigns/list` unless `include_archived`).
const CAMPAIGN_ARCHIVED: &str = "camp-contract-archived";
/// A paused (stopped) API-triggered campaign: triggers succeed with a `notice` and send nothing.
const CAMPAIGN_PAUSED: &str = "camp-contract-paused";
/// An API-triggered campaign with a Braze control variant.
const CAMPAIGN_CONTROL: &str = "camp-contract-control";
/// The API-triggered Canvas.
const CANVAS: &str = "canvas-contract";
/// A disabled (paused) Canvas: triggers succeed with a `notice` and send nothing.
const CANVAS_PAUSED: &str = "canvas-contract-paused";
/// The Canvas's first step.
const CANVAS_STEP: &str = "step-contract-entry";
/// A segment of about half the customers (`plan = premium`).
const SEGMENT: &str = "seg-contract-premium";
/// The template that exists at start.
const TEMPLATE: &str = "tmpl-contract-welcome";
/// The full-permission key of [`AUTH_KEYS`].
const FULL_KEY: &str = "contract-key-full-4f1c9a";
/// The key of [`AUTH_KEYS`] that lacks `campaigns.list`.
const LIMITED_KEY: &str = "contract-key-limited-7d2e0b";
/// The permission [`LIMITED_KEY`] lacks.
const MISSING_PERMISSION: &str = "campaigns.list";

/// The simulated world and Braze workspace of every sim test.
const SCENARIO: &str = r#"
name = "braze-contract"
seed = 20261129
customers = 40
start = "2026-01-05T09:00:00Z"

[[trait]]
name = "price_sensitivity"

[[attribute]]
name = "plan"
type = "category"
categories = { premium = 0.5, basic = 0.5 }

[[attribute]]
name = "country"
field = "country"
type = "category"
categories = { US = 0.6, FR = 0.4 }

[[attribute]]
name = "time_zone"
field = "time_zone"
type = "category"
categories = { "America/New_York" = 0.5, "Europe/Paris" = 0.5 }

[[attribute]]
name = "email_subscribe"
field = "email_subscribe"
type = "category"
categories = { opted_in = 0.7, subscribed = 0.3 }

[[lever]]
name = "offer"
options = { none = {}, pct20 = { discount = 0.2 } }

[conversion]
type = "purchase"
product_id = "sku"
value = { kind = "lognormal", median = 50, sigma = 0.3 }

[response]
open = { base = 1.0 }
click = { base = 0.5 }
convert = { base = 0.5 }
unsubscribe = { base = -6.0 }
organic = { base = -7.0 }

[braze]

[[braze.campaigns]]
id = "camp-contract-email"
name = "Contract: API email"
channels = ["email"]
tags = ["contract"]
conversion_events = ["purchase"]
created_at = "2026-01-01T00:00:00Z"
[[braze.campaigns.messages]]
channel = "email"
name = "Variant A"
subject = "Hello {{${first_name}}}"
body = "<p>Your offer: {{api_trigger_properties.${offer}}}</p>"

[[braze.campaigns]]
id = "camp-contract-dashboard"
name = "Contract: dashboard-scheduled"
channels = ["email"]
api_triggered = false
created_at = "2026-01-02T00:00:00Z"

[[braze.campaigns]]
id = "camp-contract-archived"
name = "Contract: archived"
channels = ["push"]
archived = true
created_at = "2026-01-03T00:00:00Z"

[[braze.campaigns]]
id = "camp-contract-paused"
name = "Contract: paused"
channels = ["email"]
paused = true
created_at = "2026-01-04T00:00:00Z"
[[braze.campaigns.messages]]
channel = "email"
subject = "Paused"
body = "<p>never sent</p>"

[[braze.campaigns]]
id = "camp-contract-control"
name = "Contract: with control"
channels = ["email"]
control_variant = true
created_at = "2026-01-04T12:00:00Z"
[[braze.campaigns.messages]]
channel = "email"
name = "Treatment"
subject = "Treated"
body = "<p>t</p>"

[[braze.canvases]]
id = "canvas-contract"
name = "Contract: onboarding"
tags = ["contract"]
created_at = "2026-01-01T00:00:00Z"
[[braze.canvases.steps]]
id = "step-contract-entry"
name = "Entry email"
[[braze.canvases.steps.messages]]
channel = "email"
subject = "Welcome"
body = "<p>{{context.${offer}}}</p>"
[[braze.canvases.steps]]
id = "step-contract-follow-up"
name = "Follow-up push"
[[braze.canvases.steps.messages]]
channel = "push"
body = "Still there?"

[[braze.canvases]]
id = "canvas-contract-paused"
name = "Contract: paused canvas"
enabled = false
created_at = "2026-01-02T00:00:00Z"
[[braze.canvases.steps]]
id = "step-contract-paused"
name = "Entry"
[[braze.canvases.steps.messages]]
channel = "email"
body = "<p>never sent</p>"

[[braze.segments]]
id = "seg-contract-premium"
name = "Contract: premium plan"
tags = ["contract"]
created_at = "2026-01-01T00:00:00Z"
[[braze.segments.filter]]
field = "custom_attributes.plan"
eq = "premium"

[[braze.segments]]
id = "seg-contract-everyone"
name = "Contract: everyone"
created_at = "2026-01-02T00:00:00Z"

[[braze.email_templates]]
id = "tmpl-contract-welcome"
name = "Contract: welcome"
subject = "Welcome aboard"
body = "<p>Hello</p>"
tags = ["contract"]
"#;

/// [`SCENARIO`] with two API keys: [`FULL_KEY`] (every permission) and [`LIMITED_KEY`] (every
/// permission the suite uses except [`MISSING_PERMISSION`]).
fn scenario_with_keys() -> String {
    let limited: Vec<String> = Endpoint::ALL
        .iter()
        .map(|e| e.permission())
        .filter(|p| *p != MISSING_PERMISSION)
        .map(|p| format!("\"{p}\""))
        .collect();
    format!(
        "{SCENARIO}\n[[braze.api_keys]]\nkey = \"{FULL_KEY}\"\npermissions = [\"*\"]\n\n\
         [[braze.api_keys]]\nkey = \"{LIMITED_KEY}\"\npermissions = [{}]\n",
        limited.join(", ")
    )
}

/// Extra catalog objects so listings span more than one page of 100: `campaigns` campaigns,
/// `canvases` canvases and `segments` segments, created one minute apart in 2025 (before the seeded
/// ones), every seventh campaign and canvas archived.
fn scenario_with_many(campaigns: usize, canvases: usize, segments: usize) -> String {
    let mut text = SCENARIO.to_owned();
    let at = |i: usize| format!("2025-06-01T{:02}:{:02}:00Z", i / 60, i % 60);
    for i in 0..campaigns {
        text.push_str(&format!(
            "\n[[braze.campaigns]]\nid = \"camp-bulk-{i:03}\"\nname = \"Bulk campaign {i}\"\nchannels = [\"email\"]\n\
             archived = {}\ncreated_at = \"{}\"\n",
            i % 7 == 3,
            at(i)
        ));
    }
    for i in 0..canvases {
        text.push_str(&format!(
            "\n[[braze.canvases]]\nid = \"canvas-bulk-{i:03}\"\nname = \"Bulk canvas {i}\"\narchived = {}\n\
             created_at = \"{}\"\n[[braze.canvases.steps]]\nid = \"bulk-step-{i:03}\"\nname = \"Step\"\n\
             [[braze.canvases.steps.messages]]\nchannel = \"email\"\nbody = \"x\"\n",
            i % 7 == 3,
            at(i)
        ));
    }
    for i in 0..segments {
        text.push_str(&format!(
            "\n[[braze.segments]]\nid = \"seg-bulk-{i:03}\"\nname = \"Bulk segment {i}\"\ncreated_at = \"{}\"\n",
            at(i)
        ));
    }
    text
}

// ---------------------------------------------------------------------------------------------------
// Targets.
// ---------------------------------------------------------------------------------------------------

/// What a test runs against.
struct Contract {
    /// The client under test, with the target's key and fast retries.
    client: BrazeClient,
    /// The target's base URL.
    url: String,
    /// The key `client` uses.
    key: String,
    /// The API-triggered campaign to use.
    campaign: String,
    /// The API-triggered Canvas to use.
    canvas: String,
    /// The segment to export and query.
    segment: String,
    /// Test users' `external_id`s (four on the simulator).
    users: Vec<String>,
    /// The simulator; `None` against real Braze.
    sim: Option<SimBraze>,
    /// Whether tests may send messages (always on the simulator).
    allow_sends: bool,
    /// A key lacking [`MISSING_PERMISSION`], when there is one.
    limited_key: Option<String>,
}

/// The real-Braze settings, when `OFFERLOOP_CONTRACT_BRAZE_URL` is set (see the module docs). No
/// `Debug`: it holds the key.
struct RealEnv {
    /// `OFFERLOOP_CONTRACT_BRAZE_URL`.
    url: String,
    /// `OFFERLOOP_CONTRACT_BRAZE_KEY`.
    key: String,
    /// `OFFERLOOP_CONTRACT_CAMPAIGN_ID`.
    campaign: String,
    /// `OFFERLOOP_CONTRACT_CANVAS_ID`.
    canvas: String,
    /// `OFFERLOOP_CONTRACT_SEGMENT_ID`.
    segment: String,
    /// `OFFERLOOP_CONTRACT_EXTERNAL_IDS`, split on commas.
    users: Vec<String>,
    /// `OFFERLOOP_CONTRACT_ALLOW_SENDS=1`.
    allow_sends: bool,
    /// `OFFERLOOP_CONTRACT_LIMITED_KEY`.
    limited_key: Option<String>,
}

/// The variables a real-Braze run needs besides the URL.
const REQUIRED_VARS: [&str; 5] = [
    "OFFERLOOP_CONTRACT_BRAZE_KEY",
    "OFFERLOOP_CONTRACT_CAMPAIGN_ID",
    "OFFERLOOP_CONTRACT_CANVAS_ID",
    "OFFERLOOP_CONTRACT_SEGMENT_ID",
    "OFFERLOOP_CONTRACT_EXTERNAL_IDS",
];

impl RealEnv {
    /// From the process environment; panics naming every missing variable when the URL is set.
    fn from_env() -> Option<RealEnv> {
        RealEnv::from_vars(|name| std::env::var(name).ok()).map(|r| r.unwrap_or_else(|e| panic!("{e}")))
    }

    /// `None` when `OFFERLOOP_CONTRACT_BRAZE_URL` is unset; an error naming every missing (or blank)
    /// required variable otherwise.
    fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Option<Result<RealEnv, String>> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let url = var("OFFERLOOP_CONTRACT_BRAZE_URL")?;
        let missing: Vec<&str> = REQUIRED_VARS.iter().copied().filter(|n| var(n).is_none()).collect();
        if !missing.is_empty() {
            return Some(Err(format!(
                "OFFERLOOP_CONTRACT_BRAZE_URL is set, so the contract suite runs against real Braze, but these \
                 variables are missing: {} (see the top of tests/e2e/braze_contract.rs)",
                missing.join(", ")
            )));
        }
        let get = |name: &str| var(name).unwrap_or_default();
        let users: Vec<String> = get("OFFERLOOP_CONTRACT_EXTERNAL_IDS")
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if users.is_empty() {
            return Some(Err("OFFERLOOP_CONTRACT_EXTERNAL_IDS lists no external_id".to_owned()));
        }
        Some(Ok(RealEnv {
            url,
            key: get("OFFERLOOP_CONTRACT_BRAZE_KEY"),
            campaign: get("OFFERLOOP_CONTRACT_CAMPAIGN_ID"),
            canvas: get("OFFERLOOP_CONTRACT_CANVAS_ID"),
            segment: get("OFFERLOOP_CONTRACT_SEGMENT_ID"),
            users,
            allow_sends: var("OFFERLOOP_CONTRACT_ALLOW_SENDS").is_some_and(|v| v == "1"),
            limited_key: var("OFFERLOOP_CONTRACT_LIMITED_KEY"),
        }))
    }
}

#[test]
fn real_braze_settings_name_every_missing_variable() {
    let vars = |pairs: &[(&str, &str)]| {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    };
    assert!(RealEnv::from_vars(vars(&[])).is_none(), "no URL: the simulator");
    let Some(Err(message)) = RealEnv::from_vars(vars(&[
        ("OFFERLOOP_CONTRACT_BRAZE_URL", "https://rest.iad-01.braze.com"),
        ("OFFERLOOP_CONTRACT_BRAZE_KEY", "k"),
        ("OFFERLOOP_CONTRACT_CANVAS_ID", " "),
    ])) else {
        panic!("a URL without the ids must be an error");
    };
    for name in [
        "OFFERLOOP_CONTRACT_CAMPAIGN_ID",
        "OFFERLOOP_CONTRACT_CANVAS_ID",
        "OFFERLOOP_CONTRACT_SEGMENT_ID",
        "OFFERLOOP_CONTRACT_EXTERNAL_IDS",
    ] {
        assert!(message.contains(name), "{name} named in: {message}");
    }
    assert!(!message.contains("OFFERLOOP_CONTRACT_BRAZE_KEY"), "{message}");
    let all = [
        ("OFFERLOOP_CONTRACT_BRAZE_URL", "https://rest.iad-01.braze.com"),
        ("OFFERLOOP_CONTRACT_BRAZE_KEY", "k"),
        ("OFFERLOOP_CONTRACT_CAMPAIGN_ID", "c"),
        ("OFFERLOOP_CONTRACT_CANVAS_ID", "v"),
        ("OFFERLOOP_CONTRACT_SEGMENT_ID", "s"),
        ("OFFERLOOP_CONTRACT_EXTERNAL_IDS", "u1, u2,"),
    ];
    let Some(Ok(env)) = RealEnv::from_vars(vars(&all)) else {
        panic!("complete settings");
    };
    assert_eq!(env.users, vec!["u1".to_owned(), "u2".to_owned()]);
    assert!(
        !env.allow_sends,
        "sends are off unless OFFERLOOP_CONTRACT_ALLOW_SENDS=1"
    );
    let mut with_sends = all.to_vec();
    with_sends.push(("OFFERLOOP_CONTRACT_ALLOW_SENDS", "1"));
    assert!(matches!(
        RealEnv::from_vars(vars(&with_sends)),
        Some(Ok(RealEnv { allow_sends: true, .. }))
    ));
}

/// Fast retries, so 5xx/429 paths finish quickly.
fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
        max_rate_limit_wait: Duration::from_secs(30),
    }
}

/// A client for `url` with `key`.
fn client_for(url: &str, key: &str, retry: RetryPolicy) -> BrazeClient {
    let config = BrazeConfig::builder(url, ApiKey::new(key).expect("valid key"))
        .request_timeout(Duration::from_secs(20))
        .retry(retry)
        .build()
        .expect("valid client configuration");
    BrazeClient::new(config).expect("client builds")
}

impl Contract {
    /// The default target on [`SCENARIO`].
    async fn start() -> Contract {
        Contract::start_with(SCENARIO, SimConfig::default()).await
    }

    /// Real Braze when configured, else a fresh simulator on `scenario` with `config` and its
    /// default key.
    async fn start_with(scenario: &str, config: SimConfig) -> Contract {
        Contract::start_keyed(scenario, config, DEFAULT_API_KEY).await
    }

    /// As [`Contract::start_with`], with the simulator's client using `key`.
    async fn start_keyed(scenario: &str, config: SimConfig, key: &str) -> Contract {
        if let Some(real) = RealEnv::from_env() {
            return Contract {
                client: client_for(&real.url, &real.key, fast_retry()),
                url: real.url,
                key: real.key,
                campaign: real.campaign,
                canvas: real.canvas,
                segment: real.segment,
                users: real.users,
                sim: None,
                allow_sends: real.allow_sends,
                limited_key: real.limited_key,
            };
        }
        let scenario = Scenario::from_toml_str(scenario, None).expect("the contract scenario parses");
        let world = World::new(scenario).expect("the contract world generates");
        let sim = SimBraze::start(world, config).await.expect("the simulator starts");
        let url = sim.base_url();
        let users = {
            let ws = sim.state().workspace.lock().expect("workspace lock");
            (0..4).map(|i| ws.world.external_id(i).to_owned()).collect()
        };
        Contract {
            client: client_for(&url, key, fast_retry()),
            url,
            key: key.to_owned(),
            campaign: CAMPAIGN.to_owned(),
            canvas: CANVAS.to_owned(),
            segment: SEGMENT.to_owned(),
            users,
            sim: Some(sim),
            allow_sends: true,
            limited_key: Some(LIMITED_KEY.to_owned()),
        }
    }

    fn is_real(&self) -> bool {
        self.sim.is_none()
    }

    /// Whether to skip a test that sends messages (real Braze without `OFFERLOOP_CONTRACT_ALLOW_SENDS=1`).
    fn skip_sends(&self, test: &str) -> bool {
        let skip = self.is_real() && !self.allow_sends;
        if skip {
            eprintln!("{test}: skipped against real Braze: it sends messages; set OFFERLOOP_CONTRACT_ALLOW_SENDS=1");
        }
        skip
    }

    /// Whether to skip the sim-only part of a test, printing why.
    fn skip_sim_only(&self, test: &str, why: &str) -> bool {
        if self.is_real() {
            eprintln!("{test}: sim-only check skipped against real Braze: {why}");
        }
        self.is_real()
    }

    /// The simulator's workspace (sim only).
    fn ws(&self) -> MutexGuard<'_, Workspace> {
        self.sim
            .as_ref()
            .expect("a sim-only check ran against real Braze")
            .state()
            .lock()
    }

    /// The first `n` test users (fewer against real Braze if fewer were configured).
    fn users(&self, n: usize) -> Vec<String> {
        self.users.iter().take(n).cloned().collect()
    }

    /// The target's "now": the simulated clock, or the wall clock against real Braze.
    fn now(&self) -> Timestamp {
        match &self.sim {
            Some(_) => self.ws().now,
            // Real Braze lives on the wall clock; only this path reads it.
            #[allow(clippy::disallowed_methods)]
            None => Timestamp::now(),
        }
    }

    /// The `Send` events of `dispatch_id`.
    fn sends_of(&self, dispatch_id: &str) -> Vec<Sent> {
        let ws = self.ws();
        ws.events
            .iter()
            .filter(|e| e.kind == EventKind::Send)
            .filter_map(|e: &Event| {
                let m = e.message.as_ref()?;
                (m.dispatch_id == dispatch_id).then(|| Sent {
                    user: e.external_user_id.clone(),
                    campaign: m.campaign_id.clone(),
                    canvas: m.canvas_id.clone(),
                    step: m.canvas_step_id.clone(),
                })
            })
            .collect()
    }

    /// The users of the `Send` events of `dispatch_id`, sorted.
    fn recipients_of(&self, dispatch_id: &str) -> Vec<String> {
        let mut users: Vec<String> = self.sends_of(dispatch_id).into_iter().map(|s| s.user).collect();
        users.sort();
        users
    }

    /// Sends a raw JSON request with this target's key and returns `(status, body)`: for the checks
    /// that need the wire response itself (requested fields only, Braze's error message).
    async fn raw(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.raw_as(&self.key, method, path, body).await
    }

    /// As [`Contract::raw`], with another key.
    async fn raw_as(&self, key: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.url.trim_end_matches('/'));
        let http = self.client.http();
        let builder = match method {
            "GET" => http.get(&url),
            "PUT" => http.put(&url).json(body.unwrap_or(&Value::Null)),
            "POST" => http.post(&url).json(body.unwrap_or(&Value::Null)),
            other => panic!("unsupported method {other}"),
        };
        let response = builder.bearer_auth(key).send().await.expect("raw request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("raw body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// A simulator admin call (`/_sim/...`), asserting a 2xx.
    async fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (status, value) = self.raw(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path} answered {status}: {value}"
        );
        value
    }

    /// Moves the simulated clock forward by `by` ([`SimBraze::advance_clock`]; the HTTP admin route
    /// `POST /_sim/clock/advance` has its own test, so a problem there fails one test, not all).
    async fn advance(&self, by: SignedDuration) {
        let sim = self.sim.as_ref().expect("a sim-only step ran against real Braze");
        let before = sim.now();
        let after = sim.advance_clock(by);
        assert_eq!(after, before + by, "the clock moved by {by:?}");
    }

    /// Segment members by the simulator's current profiles: sorted `external_id`s.
    fn segment_members(&self, segment_id: &str) -> Vec<String> {
        let ws = self.ws();
        let spec = ws
            .world
            .scenario()
            .braze
            .segments
            .iter()
            .find(|s| s.id == segment_id)
            .cloned()
            .expect("segment in the scenario");
        let mut members: Vec<String> = (0..ws.users.len(&ws.world))
            .filter(|&i| spec.contains(&ws.users.profile(&ws.world, i)))
            .filter_map(|i| ws.users.external_id(&ws.world, i).map(str::to_owned))
            .collect();
        members.sort();
        members
    }

    /// A profile by `external_id` as the simulator holds it.
    fn profile(&self, external_id: &str) -> Map<String, Value> {
        let ws = self.ws();
        let index = ws.users.index_of(&ws.world, external_id).expect("known user");
        ws.users.profile(&ws.world, index)
    }
}

/// One `Send` of the simulator's event log.
#[derive(Debug)]
struct Sent {
    /// `external_user_id`.
    user: String,
    /// The campaign, if sent through one.
    campaign: Option<String>,
    /// The Canvas, if sent through one.
    canvas: Option<String>,
    /// The Canvas step.
    step: Option<String>,
}

/// A JSON object literal as a map.
fn props(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("an object literal")
}

/// `time` as Braze's ISO-8601 with a `Z`.
fn iso(time: Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Sum of `stat` over every channel entry of `channel` in data-series `messages` maps.
fn channel_stat<'a>(
    points: impl IntoIterator<Item = &'a BTreeMap<String, Vec<Map<String, Value>>>>,
    channel: &str,
    stat: &str,
) -> u64 {
    points
        .into_iter()
        .filter_map(|m| m.get(channel))
        .flatten()
        .filter_map(|entry| entry.get(stat).and_then(Value::as_u64))
        .sum()
}

/// Asserts the `time`s of a data series are `length` distinct, ascending days ending on `last_day`
/// (when given).
fn check_days(times: &[&str], length: usize, last_day: Option<jiff::civil::Date>, what: &str) {
    assert_eq!(times.len(), length, "{what}: one entry per day of `length`: {times:?}");
    let days: Vec<jiff::civil::Date> = times
        .iter()
        .map(|t| {
            let head = t.get(..10).unwrap_or(t);
            head.parse()
                .unwrap_or_else(|e| panic!("{what}: time `{t}` is not a date: {e}"))
        })
        .collect();
    assert!(
        days.windows(2).all(|w| w[0] < w[1]),
        "{what}: days ascend, one apart: {days:?}"
    );
    assert!(
        days.windows(2).all(|w| w[0].tomorrow().ok() == Some(w[1])),
        "{what}: consecutive days: {days:?}"
    );
    if let Some(last) = last_day {
        assert_eq!(
            days.last().copied(),
            Some(last),
            "{what}: the series ends on `ending_at`'s day"
        );
    }
}

// ---------------------------------------------------------------------------------------------------
// Users.
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn export_ids_returns_the_profiles_with_only_the_requested_fields() {
    let t = Contract::start().await;
    let users = t.users(2);
    let fields = ["external_id", "country", "custom_attributes", "email_subscribe"];
    let mut ids = users.clone();
    ids.push("contract-no-such-user".to_owned());
    let response = t
        .client
        .export_ids(ExportIdsRequest::by_external_ids(ids.clone()).fields_to_export(fields))
        .await
        .expect("export_ids");
    assert_eq!(response.message, "success");
    let mut got: Vec<String> = response.users.iter().filter_map(|u| u.external_id.clone()).collect();
    got.sort();
    let mut want = users.clone();
    want.sort();
    assert_eq!(got, want, "every known user comes back once");
    assert_eq!(response.invalid_user_ids, vec!["contract-no-such-user".to_owned()]);

    // On the wire: only the requested fields (and null/empty ones omitted).
    let body = json!({ "external_ids": ids, "fields_to_export": fields });
    let raw = t
        .client
        .execute_raw(Endpoint::UsersExportIds, &body)
        .await
        .expect("raw export_ids");
    let raw_users = raw["users"].as_array().expect("users array");
    assert_eq!(raw_users.len(), users.len());
    for user in raw_users {
        let keys: BTreeSet<&str> = user
            .as_object()
            .expect("user object")
            .keys()
            .map(String::as_str)
            .collect();
        let allowed: BTreeSet<&str> = fields.into_iter().collect();
        assert!(keys.is_subset(&allowed), "fields beyond fields_to_export: {keys:?}");
        assert!(keys.contains("external_id"));
    }

    if t.skip_sim_only("export_ids", "compares with the simulator's profiles") {
        return;
    }
    for user in &response.users {
        let id = user.external_id.as_deref().expect("external_id");
        let profile = t.profile(id);
        assert_eq!(
            user.country.as_deref(),
            profile.get("country").and_then(Value::as_str),
            "{id}: country"
        );
        assert_eq!(
            user.email_subscribe.as_deref(),
            profile.get("email_subscribe").and_then(Value::as_str),
            "{id}: email_subscribe"
        );
        let attrs: BTreeMap<String, Value> = profile
            .get("custom_attributes")
            .and_then(Value::as_object)
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default();
        assert_eq!(user.custom_attributes, attrs, "{id}: custom_attributes");
    }
}

#[tokio::test]
async fn track_then_export_ids_returns_what_was_written() {
    let t = Contract::start().await;
    let user = t.users(1).remove(0);
    let now = t.now();
    let tier = format!("gold-{}", now.as_second());
    let request = TrackRequest::new()
        .attributes([
            AttributesObject::new(UserIdentifier::external_id(&user)).attribute("contract_tier", tier.as_str())
        ])
        .events([
            EventObject::new(UserIdentifier::external_id(&user), "contract_event", iso(now))
                .property("source", "contract"),
        ])
        .purchases([PurchaseObject::new(
            UserIdentifier::external_id(&user),
            "contract-sku",
            "USD",
            12.5,
            iso(now),
        )
        .quantity(2)]);
    let response = t.client.track(request).await.expect("track");
    // On the wire, an accepted /users/track is a 201 (documented).
    let (status, body) = t
        .raw(
            "POST",
            "/users/track",
            Some(&json!({ "attributes": [{ "external_id": user, "contract_raw": 1 }] })),
        )
        .await;
    assert_eq!((status, body["message"].as_str()), (201, Some("success")), "{body}");
    assert_eq!(response.message, "success");
    assert_eq!(response.attributes_processed, Some(1));
    assert_eq!(response.events_processed, Some(1));
    assert_eq!(response.purchases_processed, Some(1));
    assert!(response.errors.is_empty(), "{:?}", response.errors);

    // Attributes only: the other counters are absent (they are present only when the array was sent).
    let only_attributes = TrackRequest::new()
        .attributes([AttributesObject::new(UserIdentifier::external_id(&user)).attribute("contract_flag", true)]);
    let response = t.client.track(only_attributes).await.expect("track attributes only");
    assert_eq!(response.attributes_processed, Some(1));
    assert_eq!((response.events_processed, response.purchases_processed), (None, None));

    // Real Braze processes /users/track asynchronously: poll the export for a while.
    let fields = ["external_id", "custom_attributes", "custom_events", "purchases"];
    let mut last = None;
    for _ in 0..(if t.is_real() { 20 } else { 1 }) {
        let exported = t
            .client
            .export_ids(ExportIdsRequest::by_external_ids([user.clone()]).fields_to_export(fields))
            .await
            .expect("export_ids");
        let found = exported.users.into_iter().next().expect("the tracked user exists");
        if found.custom_attributes.get("contract_tier") == Some(&json!(tier)) {
            last = Some(found);
            break;
        }
        last = Some(found);
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let user_now = last.expect("exported");
    assert_eq!(
        user_now.custom_attributes.get("contract_tier"),
        Some(&json!(tier)),
        "written attribute read back"
    );
    assert_eq!(user_now.custom_attributes.get("contract_flag"), Some(&json!(true)));
    let event = user_now
        .custom_events
        .iter()
        .find(|e| e.name == "contract_event")
        .expect("tracked event listed");
    assert!(event.count >= 1);
    let purchase = user_now
        .purchases
        .iter()
        .find(|p| p.name == "contract-sku")
        .expect("tracked purchase listed");
    if !t.is_real() {
        assert_eq!(event.count, 1);
        // Braze counts a quantity-2 purchase as two purchases.
        assert_eq!(purchase.count, 2);
    }

    // A new external_id is created by an attribute write (not `_update_existing_only`).
    if t.skip_sim_only("track", "creates a new profile") {
        return;
    }
    let newcomer = "contract-newcomer-1";
    t.client
        .track(
            TrackRequest::new().attributes([
                AttributesObject::new(UserIdentifier::external_id(newcomer)).attribute("plan", "premium")
            ]),
        )
        .await
        .expect("track newcomer");
    let exported = t
        .client
        .export_ids(
            ExportIdsRequest::by_external_ids([newcomer]).fields_to_export(["external_id", "custom_attributes"]),
        )
        .await
        .expect("export newcomer");
    assert_eq!(exported.users.len(), 1, "the newcomer was created");
    assert_eq!(exported.users[0].custom_attributes.get("plan"), Some(&json!("premium")));
}

#[tokio::test]
async fn export_segment_then_fetch_export_yields_the_segments_users_with_the_requested_fields() {
    let t = Contract::start().await;
    let fields = ["external_id", "custom_attributes"];
    let started = t
        .client
        .export_segment(ExportSegmentRequest::new(&t.segment, fields))
        .await
        .expect("export_segment");
    assert_eq!(started.message, "success");
    assert!(!started.object_prefix.is_empty(), "object_prefix");
    let Some(url) = started.url.clone() else {
        panic!("no `url` in the export response: the contract suite expects a workspace without a bucket");
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let poll = ExportPoll::default()
        .with_initial_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_millis(if t.is_real() { 10_000 } else { 250 }))
        .with_timeout(Duration::from_secs(if t.is_real() { 1800 } else { 30 }));
    let files = t
        .client
        .fetch_export(ExportSource::Download { url }, dir.path().to_path_buf(), poll)
        .await
        .expect("fetch_export");
    assert!(!files.is_empty());

    // The raw files: newline-delimited JSON objects with only the requested fields.
    let mut raw_ids = Vec::new();
    for file in &files {
        let archive = std::fs::File::open(file).expect("export file");
        let mut zip = zip::ZipArchive::new(archive).expect("a ZIP archive");
        assert!(!zip.is_empty(), "the ZIP has entries");
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i).expect("zip entry");
            let name = entry.name().expect("an entry name").into_owned();
            assert!(name.ends_with(".json"), "entry `{name}` is a .json file");
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).expect("utf-8 entry");
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let user: Map<String, Value> = serde_json::from_str(line).expect("one JSON object per line");
                let keys: BTreeSet<&str> = user.keys().map(String::as_str).collect();
                assert!(
                    keys.is_subset(&fields.into_iter().collect()),
                    "export line has fields beyond fields_to_export: {keys:?}"
                );
                raw_ids.push(user["external_id"].as_str().expect("external_id").to_owned());
            }
        }
    }
    raw_ids.sort();
    assert!(raw_ids.windows(2).all(|w| w[0] != w[1]), "each user once");

    // The client's reader sees the same users.
    let mut read_ids: Vec<String> = ExportReader::new(files.clone())
        .fields_to_export(fields)
        .map(|u| u.expect("a readable user").external_id.expect("external_id"))
        .collect();
    read_ids.sort();
    assert_eq!(read_ids, raw_ids);

    if t.skip_sim_only("export_segment", "compares with the simulator's segment membership") {
        return;
    }
    let members = t.segment_members(&t.segment);
    assert!(
        !members.is_empty() && members.len() < 40,
        "the scenario's segment is a strict subset"
    );
    assert_eq!(raw_ids, members, "the export holds exactly the segment's members");
}

// ---------------------------------------------------------------------------------------------------
// Messaging.
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn send_messages_dispatches_to_the_listed_users() {
    let t = Contract::start().await;
    if t.skip_sends("send_messages") {
        return;
    }
    let users = t.users(2);
    let request = MessagesSendRequest::new()
        .external_user_ids(users.clone())
        .campaign_id(&t.campaign)
        .messages(json!({
            "email": { "app_id": "contract-app", "subject": "Hi", "from": "Contract <c@example.com>", "body": "<p>hi</p>" }
        }));
    let response = t.client.send_messages(request).await.expect("send_messages");
    assert_eq!(response.message, "success");
    let dispatch = response.dispatch_id.expect("a dispatch_id");
    assert!(!dispatch.is_empty());
    if t.skip_sim_only("send_messages", "reads the simulator's send log") {
        return;
    }
    let mut want = users;
    want.sort();
    assert_eq!(
        t.recipients_of(&dispatch),
        want,
        "one email send per listed user under the dispatch_id"
    );
}

#[tokio::test]
async fn schedule_messages_sends_when_the_clock_reaches_the_time() {
    let t = Contract::start().await;
    if t.skip_sends("schedule_messages") {
        return;
    }
    let users = t.users(2);
    let at = t.now() + SignedDuration::from_hours(2);
    let request = MessagesScheduleRequest::new(Schedule::new(iso(at)))
        .external_user_ids(users.clone())
        .messages(json!({ "email": { "app_id": "contract-app", "subject": "Later", "body": "<p>later</p>" } }));
    let response = t.client.schedule_messages(request).await.expect("schedule_messages");
    assert_eq!(response.message, "success");
    let dispatch = response.dispatch_id.expect("a dispatch_id");
    let schedule = response.schedule_id.expect("a schedule_id");
    assert!(!schedule.is_empty());
    if t.skip_sim_only("schedule_messages", "moves the simulated clock") {
        return;
    }
    assert!(
        t.recipients_of(&dispatch).is_empty(),
        "nothing is sent before the scheduled time"
    );
    t.advance(SignedDuration::from_hours(1)).await;
    assert!(t.recipients_of(&dispatch).is_empty(), "nothing is sent an hour early");
    t.advance(SignedDuration::from_hours(1)).await;
    let mut want = users;
    want.sort();
    assert_eq!(
        t.recipients_of(&dispatch),
        want,
        "sent at the scheduled time, under the returned dispatch_id"
    );
}

#[tokio::test]
async fn trigger_campaign_sends_once_per_recipient_and_never_dedupes_across_requests() {
    let t = Contract::start().await;
    if t.skip_sends("trigger_campaign") {
        return;
    }
    let users = t.users(2);
    let mut recipients: Vec<Recipient> = users
        .iter()
        .map(|u| {
            Recipient::external_user_id(u)
                .trigger_properties(props(json!({ "offer": "pct20", "note": format!("for-{u}") })))
        })
        .collect();
    // The same user twice in one request: Braze sends once.
    recipients.push(Recipient::external_user_id(&users[0]));
    let request = CampaignTriggerSendRequest::new(&t.campaign)
        .trigger_properties(props(json!({ "offer": "none", "source": "contract" })))
        .recipients(recipients);
    let first = t
        .client
        .trigger_campaign(request.clone())
        .await
        .expect("trigger_campaign");
    assert_eq!(first.message, "success");
    assert!(
        first.notice.is_none(),
        "an active campaign has no notice: {:?}",
        first.notice
    );
    let dispatch = first.dispatch_id.expect("a dispatch_id");

    if t.skip_sim_only("trigger_campaign", "reads the simulator's send log") {
        return;
    }
    let sends = t.sends_of(&dispatch);
    let mut want = users.clone();
    want.sort();
    assert_eq!(t.recipients_of(&dispatch), want, "one send per distinct recipient");
    assert!(
        sends
            .iter()
            .all(|s| s.campaign.as_deref() == Some(CAMPAIGN) && s.canvas.is_none()),
        "sends belong to the campaign: {sends:?}"
    );

    // No idempotency: the same request again is a second send with a new dispatch_id.
    let second = t.client.trigger_campaign(request).await.expect("second trigger");
    let dispatch2 = second.dispatch_id.expect("a second dispatch_id");
    assert_ne!(dispatch2, dispatch, "every request gets its own dispatch_id");
    assert_eq!(t.recipients_of(&dispatch2), want, "the repeated request sends again");

    // The admin view of sends carries the dispatch and the merged properties.
    let listed = t.admin("GET", "/_sim/sends", None).await;
    let text = listed.to_string();
    assert!(
        text.contains(&dispatch) && text.contains(&dispatch2),
        "GET /_sim/sends lists both dispatches: {text}"
    );
}

#[tokio::test]
async fn schedule_campaign_sends_when_due() {
    let t = Contract::start().await;
    if t.skip_sends("schedule_campaign") {
        return;
    }
    let users = t.users(2);
    let at = t.now() + SignedDuration::from_hours(3);
    let request = CampaignTriggerScheduleRequest::new(&t.campaign, Schedule::new(iso(at)))
        .recipients(users.iter().map(Recipient::external_user_id));
    let response = t.client.schedule_campaign(request).await.expect("schedule_campaign");
    assert_eq!(response.message, "success");
    let dispatch = response.dispatch_id.expect("a dispatch_id");
    assert!(response.schedule_id.is_some_and(|s| !s.is_empty()), "a schedule_id");
    if t.skip_sim_only("schedule_campaign", "moves the simulated clock") {
        return;
    }
    assert!(t.recipients_of(&dispatch).is_empty(), "nothing before the time");
    t.advance(SignedDuration::from_hours(3)).await;
    let mut want = users;
    want.sort();
    assert_eq!(t.recipients_of(&dispatch), want);
    assert!(
        t.sends_of(&dispatch)
            .iter()
            .all(|s| s.campaign.as_deref() == Some(CAMPAIGN))
    );
}

#[tokio::test]
async fn trigger_canvas_enters_the_recipients_at_the_first_step() {
    let t = Contract::start().await;
    if t.skip_sends("trigger_canvas") {
        return;
    }
    let users = t.users(2);
    let request = CanvasTriggerSendRequest::new(&t.canvas)
        .context(props(json!({ "offer": "pct20" })))
        .recipients(users.iter().map(Recipient::external_user_id));
    let response = t.client.trigger_canvas(request).await.expect("trigger_canvas");
    assert_eq!(response.message, "success");
    assert!(response.notice.is_none(), "{:?}", response.notice);
    let dispatch = response.dispatch_id.expect("a dispatch_id");
    if t.skip_sim_only("trigger_canvas", "reads the simulator's send log") {
        return;
    }
    let sends = t.sends_of(&dispatch);
    let mut want = users;
    want.sort();
    assert_eq!(
        t.recipients_of(&dispatch),
        want,
        "the first step's one email per entered user"
    );
    assert!(
        sends.iter().all(|s| s.campaign.is_none()
            && s.canvas.as_deref() == Some(CANVAS)
            && s.step.as_deref() == Some(CANVAS_STEP)),
        "sends belong to the canvas's first step: {sends:?}"
    );
    // On the wire the Canvas trigger answers 201 (documented), with the old entry-properties name too.
    let body = json!({
        "canvas_id": CANVAS,
        "canvas_entry_properties": { "offer": "none" },
        "recipients": [{ "external_user_id": want[0] }],
    });
    let (status, raw) = t.raw("POST", "/canvas/trigger/send", Some(&body)).await;
    assert_eq!(status, 201, "{raw}");
    let raw_dispatch = raw["dispatch_id"].as_str().expect("dispatch_id").to_owned();
    assert_eq!(t.recipients_of(&raw_dispatch), vec![want[0].clone()]);
}

#[tokio::test]
async fn schedule_canvas_enters_when_due() {
    let t = Contract::start().await;
    if t.skip_sends("schedule_canvas") {
        return;
    }
    let users = t.users(2);
    let at = t.now() + SignedDuration::from_mins(30);
    let request = CanvasTriggerScheduleRequest::new(&t.canvas, Schedule::new(iso(at)))
        .canvas_entry_properties(props(json!({ "offer": "none" })))
        .recipients(users.iter().map(Recipient::external_user_id));
    let response = t.client.schedule_canvas(request).await.expect("schedule_canvas");
    assert_eq!(response.message, "success");
    let dispatch = response.dispatch_id.expect("a dispatch_id");
    assert!(response.schedule_id.is_some_and(|s| !s.is_empty()), "a schedule_id");
    if t.skip_sim_only("schedule_canvas", "moves the simulated clock") {
        return;
    }
    assert!(t.recipients_of(&dispatch).is_empty());
    t.advance(SignedDuration::from_mins(30)).await;
    let mut want = users;
    want.sort();
    assert_eq!(t.recipients_of(&dispatch), want);
    assert!(
        t.sends_of(&dispatch)
            .iter()
            .all(|s| s.canvas.as_deref() == Some(CANVAS))
    );
}

// ---------------------------------------------------------------------------------------------------
// Catalog: lists, details, analytics, send ids.
// ---------------------------------------------------------------------------------------------------

/// 150 campaigns, 120 canvases and 110 segments on top of [`SCENARIO`].
async fn many() -> Contract {
    Contract::start_with(&scenario_with_many(150, 120, 110), SimConfig::default()).await
}

/// Ids in a list are distinct and every full page is exactly 100 long.
fn check_pages(pages: &[usize], ids: &[String], what: &str) {
    let (last, full) = pages.split_last().expect("at least one page");
    assert!(
        full.iter().all(|&n| n == 100),
        "{what}: every page but the last has 100 items: {pages:?}"
    );
    assert!(*last < 100, "{what}: the last page is short: {pages:?}");
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "{what}: no item on two pages");
}

#[tokio::test]
async fn list_campaigns_paginates_by_creation_time() {
    let t = many().await;
    let mut sizes = Vec::new();
    let mut ids = Vec::new();
    for page in 0.. {
        let response = t
            .client
            .list_campaigns(CampaignListRequest::new().page(page))
            .await
            .expect("list_campaigns");
        assert_eq!(response.message, "success");
        sizes.push(response.campaigns.len());
        ids.extend(response.campaigns.into_iter().map(|c| c.id));
        if *sizes.last().expect("a page") < 100 {
            break;
        }
    }
    check_pages(&sizes, &ids, "campaigns");
    let streamed: Vec<String> = t
        .client
        .list_all(CampaignListRequest::new())
        .map_ok(|c| c.id)
        .try_collect()
        .await
        .expect("list_all campaigns");
    assert_eq!(streamed, ids, "list_all walks the same pages");

    if t.skip_sim_only("list_campaigns", "compares with the scenario's catalog") {
        return;
    }
    // Not archived, oldest first: the bulk ones (2025) then the seeded ones (2026).
    let mut want: Vec<String> = (0..150)
        .filter(|i| i % 7 != 3)
        .map(|i| format!("camp-bulk-{i:03}"))
        .collect();
    want.extend([
        CAMPAIGN.to_owned(),
        CAMPAIGN_NOT_API.to_owned(),
        CAMPAIGN_PAUSED.to_owned(),
        CAMPAIGN_CONTROL.to_owned(),
    ]);
    assert_eq!(ids, want);
    assert_eq!(sizes, vec![100, want.len() - 100]);

    let all: Vec<_> = all_pages(CampaignListRequest::new().include_archived(true), |r| {
        t.client.list_campaigns(r)
    })
    .try_collect()
    .await
    .expect("with archived");
    assert_eq!(all.len(), 150 + 5, "include_archived lists archived ones too");
    assert!(all.iter().any(|c| c.id == CAMPAIGN_ARCHIVED));
    let api = all.iter().find(|c| c.id == CAMPAIGN).expect("seeded campaign");
    assert!(api.is_api_campaign);
    assert_eq!(api.name, "Contract: API email");
    assert_eq!(api.tags, vec!["contract".to_owned()]);
    assert!(
        !all.iter()
            .find(|c| c.id == CAMPAIGN_NOT_API)
            .expect("dashboard campaign")
            .is_api_campaign
    );

    let desc: Vec<String> = t
        .client
        .list_all(CampaignListRequest::new().sort_direction(SortDirection::Desc))
        .map_ok(|c| c.id)
        .try_collect()
        .await
        .expect("desc");
    let mut reversed = want;
    reversed.reverse();
    assert_eq!(desc, reversed, "sort_direction=desc is newest first");
}

#[tokio::test]
async fn campaign_details_match_the_scenario() {
    let t = Contract::start().await;
    let details = t
        .client
        .campaign_details(CampaignDetailsRequest::new(&t.campaign))
        .await
        .expect("campaign_details");
    assert_eq!(details.message, "success");
    assert!(details.name.as_deref().is_some_and(|n| !n.is_empty()));
    assert!(!details.channels.is_empty());
    assert!(!details.messages.is_empty(), "an API campaign has at least one message");
    assert!(details.created_at.is_some());
    if t.skip_sim_only("campaign_details", "compares with the scenario") {
        return;
    }
    assert_eq!(details.name.as_deref(), Some("Contract: API email"));
    assert_eq!(details.channels, vec!["email".to_owned()]);
    assert_eq!(details.tags, vec!["contract".to_owned()]);
    assert!(!details.archived && !details.draft && details.enabled);
    assert_eq!(details.messages.len(), 1);
    let message = details.messages.values().next().expect("one message");
    assert_eq!(message.channel.as_deref(), Some("email"));
    assert_eq!(message.name.as_deref(), Some("Variant A"));
    assert!(!message.is_control());
    assert_eq!(message.str_field("subject"), Some("Hello {{${first_name}}}"));
    assert_eq!(
        message.str_field("body"),
        Some("<p>Your offer: {{api_trigger_properties.${offer}}}</p>")
    );
    assert_eq!(details.conversion_behaviors.len(), 1);
    assert_eq!(details.conversion_behaviors[0].kind, "Makes Any Purchase");

    // A control variant shows as a message of type `control` (what `offerloop check` must catch).
    let control = t
        .client
        .campaign_details(CampaignDetailsRequest::new(CAMPAIGN_CONTROL))
        .await
        .expect("control campaign details");
    let kinds: Vec<bool> = control.messages.values().map(|m| m.is_control()).collect();
    assert_eq!(
        kinds.iter().filter(|c| **c).count(),
        1,
        "one control message: {:?}",
        control.messages
    );
    assert_eq!(kinds.len(), 2, "the treatment and the control: {:?}", control.messages);

    let archived = t
        .client
        .campaign_details(CampaignDetailsRequest::new(CAMPAIGN_ARCHIVED))
        .await
        .expect("archived details");
    assert!(archived.archived);
    let unknown = t
        .client
        .campaign_details(CampaignDetailsRequest::new("camp-nope"))
        .await;
    assert!(
        matches!(
            unknown,
            Err(BrazeError::BadRequest { status: 400, .. } | BrazeError::NotFound { .. })
        ),
        "an unknown campaign is refused: {unknown:?}"
    );
}

#[tokio::test]
async fn campaign_data_series_has_one_point_per_day_and_counts_sends() {
    let t = Contract::start().await;
    if !t.skip_sends("campaign_data_series (sending part)") {
        let users = t.users(2);
        t.client
            .trigger_campaign(
                CampaignTriggerSendRequest::new(&t.campaign).recipients(users.iter().map(Recipient::external_user_id)),
            )
            .await
            .expect("trigger");
    }
    if !t.is_real() {
        t.advance(SignedDuration::from_hours(1)).await;
    }
    let ending = t.now();
    let response = t
        .client
        .campaign_data_series(CampaignDataSeriesRequest::new(&t.campaign, 7).ending_at(iso(ending)))
        .await
        .expect("campaign_data_series");
    assert_eq!(response.message, "success");
    let times: Vec<&str> = response.data.iter().map(|p| p.time.as_str()).collect();
    check_days(
        &times,
        7,
        Some(ending.to_zoned_datetime(jiff::tz::TimeZone::UTC).date()),
        "campaigns/data_series",
    );
    if t.skip_sim_only("campaign_data_series", "counts the simulator's sends") {
        return;
    }
    let sent = channel_stat(response.data.iter().map(|p| &p.messages), "email", "sent");
    assert_eq!(sent, 2, "two emails sent today: {:?}", response.data.last());

    for bad in [0, 101] {
        let refused = t
            .client
            .campaign_data_series(CampaignDataSeriesRequest::new(&t.campaign, bad))
            .await;
        assert!(
            matches!(refused, Err(BrazeError::BadRequest { status: 400, .. })),
            "length {bad} is out of 1..=100: {refused:?}"
        );
    }
}

#[tokio::test]
async fn list_canvases_paginates() {
    let t = many().await;
    let mut sizes = Vec::new();
    let mut ids = Vec::new();
    for page in 0.. {
        let response = t
            .client
            .list_canvases(CanvasListRequest::new().page(page))
            .await
            .expect("list_canvases");
        assert_eq!(response.message, "success");
        sizes.push(response.canvases.len());
        ids.extend(response.canvases.into_iter().map(|c| c.id));
        if *sizes.last().expect("a page") < 100 {
            break;
        }
    }
    check_pages(&sizes, &ids, "canvases");
    if t.skip_sim_only("list_canvases", "compares with the scenario's catalog") {
        return;
    }
    let mut want: Vec<String> = (0..120)
        .filter(|i| i % 7 != 3)
        .map(|i| format!("canvas-bulk-{i:03}"))
        .collect();
    want.extend([CANVAS.to_owned(), CANVAS_PAUSED.to_owned()]);
    assert_eq!(ids, want, "not archived (stopped ones included), oldest first");
    let all: Vec<_> = t
        .client
        .list_all(CanvasListRequest::new().include_archived(true))
        .try_collect()
        .await
        .expect("with archived");
    assert_eq!(all.len(), 122);
    let seeded = all.iter().find(|c| c.id == CANVAS).expect("seeded canvas");
    assert_eq!(seeded.name, "Contract: onboarding");
    assert_eq!(seeded.tags, vec!["contract".to_owned()]);
}

#[tokio::test]
async fn canvas_details_match_the_scenario() {
    let t = Contract::start().await;
    let details = t
        .client
        .canvas_details(CanvasDetailsRequest::new(&t.canvas))
        .await
        .expect("canvas_details");
    assert_eq!(details.message, "success");
    assert!(!details.steps.is_empty());
    assert!(!details.variants.is_empty());
    if t.skip_sim_only("canvas_details", "compares with the scenario") {
        return;
    }
    assert_eq!(details.name.as_deref(), Some("Contract: onboarding"));
    assert!(details.enabled && !details.archived);
    let steps: Vec<(&str, &str)> = details.steps.iter().map(|s| (s.id.as_str(), s.name.as_str())).collect();
    assert_eq!(
        steps,
        vec![
            (CANVAS_STEP, "Entry email"),
            ("step-contract-follow-up", "Follow-up push")
        ]
    );
    assert_eq!(
        details.steps[0].next_step_ids,
        vec!["step-contract-follow-up".to_owned()]
    );
    let first = details.variants[0].first_step_ids.clone();
    assert_eq!(first, vec![CANVAS_STEP.to_owned()]);
    let channels: BTreeSet<&str> = details.channels.iter().map(String::as_str).collect();
    assert!(channels.contains("email"), "{channels:?}");
    let step_message = details.steps[0]
        .messages
        .values()
        .next()
        .expect("the entry step's message");
    assert_eq!(step_message.channel.as_deref(), Some("email"));
}

#[tokio::test]
async fn canvas_data_series_lengths_and_breakdowns() {
    let t = Contract::start().await;
    if !t.skip_sends("canvas_data_series (sending part)") {
        t.client
            .trigger_canvas(
                CanvasTriggerSendRequest::new(&t.canvas).recipients(t.users(2).iter().map(Recipient::external_user_id)),
            )
            .await
            .expect("trigger_canvas");
    }
    if !t.is_real() {
        t.advance(SignedDuration::from_hours(1)).await;
    }
    let ending = t.now();
    let plain = t
        .client
        .canvas_data_series(CanvasDataSeriesRequest::new(&t.canvas, 3).ending_at(iso(ending)))
        .await
        .expect("canvas_data_series");
    assert_eq!(plain.message, "success");
    let times: Vec<&str> = plain.data.stats.iter().map(|s| s.time.as_str()).collect();
    check_days(
        &times,
        3,
        Some(ending.to_zoned_datetime(jiff::tz::TimeZone::UTC).date()),
        "canvas/data_series",
    );
    assert!(
        plain
            .data
            .stats
            .iter()
            .all(|s| s.step_stats.is_none() && s.variant_stats.is_none()),
        "no breakdown unless asked"
    );

    // `starting_at` instead of `length`: the days from it to `ending_at`.
    let since = t
        .client
        .canvas_data_series(
            CanvasDataSeriesRequest::since(&t.canvas, iso(ending - SignedDuration::from_hours(48)))
                .ending_at(iso(ending)),
        )
        .await
        .expect("canvas_data_series since");
    let times: Vec<&str> = since.data.stats.iter().map(|s| s.time.as_str()).collect();
    check_days(
        &times,
        3,
        Some(ending.to_zoned_datetime(jiff::tz::TimeZone::UTC).date()),
        "canvas/data_series since",
    );

    let broken_down = t
        .client
        .canvas_data_series(
            CanvasDataSeriesRequest::new(&t.canvas, 3)
                .ending_at(iso(ending))
                .include_step_breakdown(true)
                .include_variant_breakdown(true),
        )
        .await
        .expect("with breakdowns");
    assert!(
        broken_down
            .data
            .stats
            .iter()
            .all(|s| s.step_stats.is_some() && s.variant_stats.is_some())
    );
    if t.skip_sim_only("canvas_data_series", "counts the simulator's entries") {
        return;
    }
    assert_eq!(plain.data.name, "Contract: onboarding");
    let entries: u64 = plain.data.stats.iter().filter_map(|s| s.total_stats.entries).sum();
    assert_eq!(entries, 2, "two users entered today");
    let last = broken_down.data.stats.last().expect("today");
    let steps = last.step_stats.as_ref().expect("step stats");
    assert!(
        steps.contains_key(CANVAS_STEP),
        "step breakdown keyed by step id: {:?}",
        steps.keys()
    );
    let sent = channel_stat(steps.values().map(|s| &s.messages), "email", "sent");
    assert_eq!(sent, 2, "the entry step sent two emails");

    for bad in [0, 15] {
        let refused = t
            .client
            .canvas_data_series(CanvasDataSeriesRequest::new(&t.canvas, bad))
            .await;
        assert!(
            matches!(refused, Err(BrazeError::BadRequest { status: 400, .. })),
            "length {bad} is out of 1..=14: {refused:?}"
        );
    }
}

#[tokio::test]
async fn list_segments_paginates() {
    let t = many().await;
    let mut sizes = Vec::new();
    let mut ids = Vec::new();
    for page in 0.. {
        let response = t
            .client
            .list_segments(SegmentListRequest::new().page(page))
            .await
            .expect("list_segments");
        assert_eq!(response.message, "success");
        sizes.push(response.segments.len());
        ids.extend(response.segments.into_iter().map(|s| s.id));
        if *sizes.last().expect("a page") < 100 {
            break;
        }
    }
    check_pages(&sizes, &ids, "segments");
    if t.skip_sim_only("list_segments", "compares with the scenario's catalog") {
        return;
    }
    let mut want: Vec<String> = (0..110).map(|i| format!("seg-bulk-{i:03}")).collect();
    want.extend([SEGMENT.to_owned(), "seg-contract-everyone".to_owned()]);
    assert_eq!(ids, want, "oldest first");
    let desc: Vec<String> = t
        .client
        .list_all(SegmentListRequest::new().sort_direction(SortDirection::Desc))
        .map_ok(|s| s.id)
        .try_collect()
        .await
        .expect("desc");
    want.reverse();
    assert_eq!(desc, want);
}

#[tokio::test]
async fn segment_details_match_the_scenario() {
    let t = Contract::start().await;
    let details = t
        .client
        .segment_details(SegmentDetailsRequest::new(&t.segment))
        .await
        .expect("segment_details");
    assert_eq!(details.message, "success");
    assert!(details.name.is_some());
    if t.skip_sim_only("segment_details", "compares with the scenario") {
        return;
    }
    assert_eq!(details.name.as_deref(), Some("Contract: premium plan"));
    assert_eq!(details.tags, vec!["contract".to_owned()]);
    assert!(details.created_at.is_some());
    let description = details.description.unwrap_or_default();
    assert!(
        description.contains("plan") && description.contains("premium"),
        "the description states the filter: `{description}`"
    );
}

#[tokio::test]
async fn segment_data_series_has_one_size_per_day() {
    let t = Contract::start().await;
    let ending = t.now();
    let response = t
        .client
        .segment_data_series(SegmentDataSeriesRequest::new(&t.segment, 5).ending_at(iso(ending)))
        .await
        .expect("segment_data_series");
    assert_eq!(response.message, "success");
    let times: Vec<&str> = response.data.iter().map(|p| p.time.as_str()).collect();
    check_days(
        &times,
        5,
        Some(ending.to_zoned_datetime(jiff::tz::TimeZone::UTC).date()),
        "segments/data_series",
    );
    if t.skip_sim_only("segment_data_series", "compares with the simulator's membership") {
        return;
    }
    let members = t.segment_members(&t.segment).len() as u64;
    assert_eq!(
        response.data.last().and_then(|p| p.size),
        Some(members),
        "today's size is the membership"
    );
    let refused = t
        .client
        .segment_data_series(SegmentDataSeriesRequest::new(&t.segment, 101))
        .await;
    assert!(
        matches!(refused, Err(BrazeError::BadRequest { status: 400, .. })),
        "{refused:?}"
    );
}

/// A send id for this run: fixed against the simulator, new each run against real Braze (where a
/// send id lives on).
fn run_send_id(t: &Contract, name: &str) -> String {
    if t.is_real() {
        format!("contract-{name}-{}", t.now().as_second())
    } else {
        format!("contract-{name}")
    }
}

#[tokio::test]
async fn create_send_id_returns_the_given_or_a_generated_id() {
    let t = Contract::start().await;
    let send_id = run_send_id(&t, "send-1");
    let created = t
        .client
        .create_send_id(SendIdCreateRequest::new(&t.campaign).send_id(&send_id))
        .await
        .expect("create_send_id");
    assert_eq!(created.message, "success");
    assert_eq!(created.send_id, send_id);
    let generated = t
        .client
        .create_send_id(SendIdCreateRequest::new(&t.campaign))
        .await
        .expect("generated send id");
    assert!(!generated.send_id.is_empty() && generated.send_id != send_id);

    for bad in ["x".repeat(65), "contract-sénd".to_owned()] {
        let refused = t
            .client
            .create_send_id(SendIdCreateRequest::new(&t.campaign).send_id(&bad))
            .await;
        assert!(
            matches!(refused, Err(BrazeError::BadRequest { status: 400, .. })),
            "send_id `{bad}` (over 64 chars or not ASCII): {refused:?}"
        );
    }
    let unknown = t
        .client
        .create_send_id(SendIdCreateRequest::new("camp-does-not-exist"))
        .await;
    assert!(
        matches!(unknown, Err(BrazeError::BadRequest { status: 400, .. })),
        "unknown campaign: {unknown:?}"
    );
    if t.skip_sim_only("create_send_id", "reads the simulator's catalog") {
        return;
    }
    let ws = t.ws();
    assert!(ws.catalog.has_send_id(CAMPAIGN, &send_id));
    assert!(ws.catalog.has_send_id(CAMPAIGN, &generated.send_id));
}

#[tokio::test]
async fn send_data_series_counts_the_sends_of_a_send_id() {
    let t = Contract::start().await;
    if t.skip_sends("send_data_series") {
        return;
    }
    let send_id = run_send_id(&t, "send-2");
    t.client
        .create_send_id(SendIdCreateRequest::new(&t.campaign).send_id(&send_id))
        .await
        .expect("create_send_id");
    let users = t.users(2);
    let sent = t
        .client
        .trigger_campaign(
            CampaignTriggerSendRequest::new(&t.campaign)
                .send_id(&send_id)
                .recipients(users.iter().map(Recipient::external_user_id)),
        )
        .await
        .expect("trigger with send_id");
    if let Some(echoed) = &sent.send_id {
        assert_eq!(echoed, &send_id, "a tracked send echoes its send_id");
    }
    // Another send without the send id: not counted in the send's series.
    t.client
        .trigger_campaign(
            CampaignTriggerSendRequest::new(&t.campaign).recipients(users.iter().map(Recipient::external_user_id)),
        )
        .await
        .expect("untracked trigger");
    if !t.is_real() {
        t.advance(SignedDuration::from_hours(1)).await;
    }
    let ending = t.now();
    let series = t
        .client
        .send_data_series(SendDataSeriesRequest::new(&t.campaign, &send_id, 2).ending_at(iso(ending)))
        .await
        .expect("send_data_series");
    assert_eq!(series.message, "success");
    let times: Vec<&str> = series.data.iter().map(|p| p.time.as_str()).collect();
    check_days(
        &times,
        2,
        Some(ending.to_zoned_datetime(jiff::tz::TimeZone::UTC).date()),
        "sends/data_series",
    );
    if t.skip_sim_only("send_data_series", "counts the simulator's sends") {
        return;
    }
    assert_eq!(
        channel_stat(series.data.iter().map(|p| &p.messages), "email", "sent"),
        users.len() as u64,
        "only the sends tagged with the send_id: {series:?}"
    );
    let refused = t
        .client
        .send_data_series(SendDataSeriesRequest::new(&t.campaign, "contract-never-created", 2))
        .await;
    assert!(
        matches!(refused, Err(BrazeError::BadRequest { status: 400, .. })),
        "an unknown send_id: {refused:?}"
    );
}

// ---------------------------------------------------------------------------------------------------
// Email templates.
// ---------------------------------------------------------------------------------------------------

/// Creates a template named `name` and returns its id.
async fn create_template(t: &Contract, name: &str) -> String {
    let response = t
        .client
        .create_email_template(
            EmailTemplateCreateRequest::new(name, "Contract subject", "<p>Contract body {{${first_name}}}</p>")
                .plaintext_body("Contract body")
                .preheader("Contract preheader")
                .should_inline_css(true),
        )
        .await
        .expect("create_email_template");
    assert_eq!(response.message, "success");
    assert!(!response.email_template_id.is_empty());
    response.email_template_id
}

#[tokio::test]
async fn create_email_template_then_info_returns_it() {
    let t = Contract::start().await;
    let id = create_template(&t, "Contract: created").await;
    let info = t
        .client
        .email_template_info(EmailTemplateInfoRequest::new(&id))
        .await
        .expect("email_template_info");
    assert_eq!(info.message, "success");
    assert_eq!(info.email_template_id, id);
    assert_eq!(info.template_name, "Contract: created");
    assert_eq!(info.subject.as_deref(), Some("Contract subject"));
    assert_eq!(info.body.as_deref(), Some("<p>Contract body {{${first_name}}}</p>"));
    assert_eq!(info.plaintext_body.as_deref(), Some("Contract body"));
    assert_eq!(info.preheader.as_deref(), Some("Contract preheader"));
    assert_eq!(info.should_inline_css, Some(true));
    assert!(info.created_at.is_some() && info.updated_at.is_some());

    let nameless = t
        .client
        .create_email_template(EmailTemplateCreateRequest::new("", "s", "b"))
        .await;
    assert!(
        matches!(nameless, Err(BrazeError::BadRequest { status: 400, .. })),
        "no name: {nameless:?}"
    );
}

#[tokio::test]
async fn update_email_template_changes_only_the_given_fields() {
    let t = Contract::start().await;
    let id = create_template(&t, "Contract: to update").await;
    let updated = t
        .client
        .update_email_template(EmailTemplateUpdateRequest::new(&id).subject("Updated subject"))
        .await
        .expect("update_email_template");
    assert_eq!(updated.message, "success");
    let info = t
        .client
        .email_template_info(EmailTemplateInfoRequest::new(&id))
        .await
        .expect("info");
    assert_eq!(info.subject.as_deref(), Some("Updated subject"));
    assert_eq!(info.template_name, "Contract: to update", "untouched fields stay");
    assert_eq!(info.body.as_deref(), Some("<p>Contract body {{${first_name}}}</p>"));
    let (created, changed) = (
        info.created_at.expect("created_at"),
        info.updated_at.expect("updated_at"),
    );
    let created: Timestamp = created.parse().expect("ISO created_at");
    let changed: Timestamp = changed.parse().expect("ISO updated_at");
    assert!(changed >= created);

    let unknown = t
        .client
        .update_email_template(EmailTemplateUpdateRequest::new("tmpl-nope").subject("x"))
        .await;
    assert!(
        matches!(
            unknown,
            Err(BrazeError::BadRequest { .. } | BrazeError::NotFound { .. })
        ),
        "an unknown template is refused: {unknown:?}"
    );
}

#[tokio::test]
async fn email_template_info_of_the_seeded_template() {
    let t = Contract::start().await;
    if t.skip_sim_only("email_template_info", "reads the scenario's template") {
        return;
    }
    let info = t
        .client
        .email_template_info(EmailTemplateInfoRequest::new(TEMPLATE))
        .await
        .expect("info");
    assert_eq!(info.template_name, "Contract: welcome");
    assert_eq!(info.subject.as_deref(), Some("Welcome aboard"));
    assert_eq!(info.body.as_deref(), Some("<p>Hello</p>"));
    assert_eq!(info.tags, vec!["contract".to_owned()]);
}

#[tokio::test]
async fn list_email_templates_pages_with_limit_and_offset() {
    let t = Contract::start().await;
    let a = create_template(&t, "Contract: list A").await;
    let b = create_template(&t, "Contract: list B").await;
    let listed = t
        .client
        .list_email_templates(EmailTemplateListRequest::new())
        .await
        .expect("list");
    assert_eq!(listed.message, "success");
    let ids: BTreeSet<&str> = listed.templates.iter().map(|t| t.email_template_id.as_str()).collect();
    assert!(
        ids.contains(a.as_str()) && ids.contains(b.as_str()),
        "created templates are listed"
    );
    assert!(listed.count >= listed.templates.len() as u64);

    // One per page: list_all walks them all, each once.
    let one_by_one: Vec<String> = t
        .client
        .list_all(EmailTemplateListRequest::new().limit(1))
        .map_ok(|t| t.email_template_id)
        .try_collect()
        .await
        .expect("list_all with limit 1");
    let distinct: BTreeSet<&String> = one_by_one.iter().collect();
    assert_eq!(distinct.len(), one_by_one.len(), "no template twice");
    let all: BTreeSet<&str> = one_by_one.iter().map(String::as_str).collect();
    assert!(all.contains(a.as_str()) && all.contains(b.as_str()));

    if t.skip_sim_only("list_email_templates", "counts the simulator's templates") {
        return;
    }
    assert_eq!(one_by_one.len(), 3, "the seeded template and the two created");
    assert!(all.contains(TEMPLATE));
    let page = t
        .client
        .list_email_templates(EmailTemplateListRequest::new().limit(2).offset(2))
        .await
        .expect("offset 2");
    assert_eq!(page.templates.len(), 1, "offset skips");
    // The client clamps `limit` to Braze's maximum, so it never sends 1001; on the wire the simulator
    // refuses it.
    let clamped = t
        .client
        .list_email_templates(EmailTemplateListRequest::new().limit(1001))
        .await
        .expect("the client sends limit=1000");
    assert_eq!(clamped.templates.len(), 3);
    let (status, body) = t.raw("GET", "/templates/email/list?limit=1001", None).await;
    assert_eq!(status, 400, "limit above 1000 on the wire: {body}");
}

// ---------------------------------------------------------------------------------------------------
// The error contract.
// ---------------------------------------------------------------------------------------------------

/// Asserts that neither the Display nor the Debug of `error` contains `key`.
fn assert_key_hidden(error: &BrazeError, key: &str) {
    let display = error.to_string();
    let debug = format!("{error:?}");
    assert!(!display.contains(key), "the API key leaked into Display: {display}");
    assert!(!debug.contains(key), "the API key leaked into Debug: {debug}");
}

#[tokio::test]
async fn a_bad_key_is_an_auth_error_and_never_printed() {
    let t = Contract::start().await;
    let bad_key = "contract-wrong-key-93b1d7e5";
    let client = client_for(&t.url, bad_key, fast_retry());
    let read = client
        .list_campaigns(CampaignListRequest::new())
        .await
        .expect_err("a wrong key is refused");
    assert!(
        matches!(&read, BrazeError::Unauthorized { endpoint: Endpoint::CampaignsList, message } if !message.is_empty()),
        "{read:?}"
    );
    assert_key_hidden(&read, bad_key);
    let (status, body) = t.raw_as(bad_key, "GET", "/campaigns/list", None).await;
    assert_eq!(status, 401, "{body}");
    if let BrazeError::Unauthorized { message, .. } = &read {
        assert_eq!(
            Some(message.as_str()),
            body["message"].as_str(),
            "the client keeps Braze's message"
        );
    }
    assert!(
        !format!("{client:?}").contains(bad_key),
        "the client's Debug hides the key"
    );

    let send = client
        .trigger_campaign(
            CampaignTriggerSendRequest::new(&t.campaign).recipients(t.users(1).iter().map(Recipient::external_user_id)),
        )
        .await
        .expect_err("a wrong key cannot send");
    assert!(
        matches!(
            send,
            BrazeError::Unauthorized {
                endpoint: Endpoint::CampaignsTriggerSend,
                ..
            }
        ),
        "{send:?}"
    );
    assert_eq!(
        send.send_fate(),
        SendFate::NotAccepted,
        "a 401 send was certainly not accepted"
    );
    assert_key_hidden(&send, bad_key);
    if !t.is_real() {
        assert!(t.ws().events.is_empty(), "nothing was sent with a wrong key");
    }
}

#[tokio::test]
async fn a_key_without_the_permission_is_a_permission_error_naming_it() {
    let t = Contract::start_keyed(&scenario_with_keys(), SimConfig::default(), FULL_KEY).await;
    let Some(limited) = t.limited_key.clone() else {
        eprintln!("403 test skipped: set OFFERLOOP_CONTRACT_LIMITED_KEY to a key without `{MISSING_PERMISSION}`");
        return;
    };
    // The full key works.
    t.client
        .list_campaigns(CampaignListRequest::new())
        .await
        .expect("the full key lists campaigns");

    let client = client_for(&t.url, &limited, fast_retry());
    let error = client
        .list_campaigns(CampaignListRequest::new())
        .await
        .expect_err("refused");
    match &error {
        BrazeError::MissingPermission {
            endpoint,
            permission,
            message,
        } => {
            assert_eq!(*endpoint, Endpoint::CampaignsList);
            assert_eq!(*permission, MISSING_PERMISSION);
            assert!(!message.is_empty(), "Braze's message is kept");
        }
        other => panic!("expected MissingPermission, got {other:?}"),
    }
    let text = error.to_string();
    assert!(
        text.contains(MISSING_PERMISSION) && text.contains("/campaigns/list"),
        "{text}"
    );
    assert_key_hidden(&error, &limited);
    assert_key_hidden(&error, FULL_KEY);
    // Other endpoints still work with the limited key.
    client
        .list_segments(SegmentListRequest::new())
        .await
        .expect("segments.list is granted");
    // The simulator's default key is not accepted once the scenario declares keys.
    if !t.is_real() {
        let default = client_for(&t.url, DEFAULT_API_KEY, fast_retry());
        let refused = default.list_segments(SegmentListRequest::new()).await;
        assert!(matches!(refused, Err(BrazeError::Unauthorized { .. })), "{refused:?}");
    }
}

#[tokio::test]
async fn validation_errors_are_bad_requests_carrying_brazes_message() {
    let t = Contract::start().await;

    // An unknown campaign: nothing sent, Braze's message kept.
    let body = json!({ "campaign_id": "camp-does-not-exist", "recipients": [{ "external_user_id": t.users[0] }] });
    let (status, raw) = t.raw("POST", "/campaigns/trigger/send", Some(&body)).await;
    assert_eq!(status, 400, "{raw}");
    let braze_message = raw["message"].as_str().expect("a message").to_owned();
    let error = t
        .client
        .trigger_campaign(
            CampaignTriggerSendRequest::new("camp-does-not-exist")
                .recipients([Recipient::external_user_id(&t.users[0])]),
        )
        .await
        .expect_err("unknown campaign");
    match &error {
        BrazeError::BadRequest {
            endpoint,
            status,
            message,
            ..
        } => {
            assert_eq!(*endpoint, Endpoint::CampaignsTriggerSend);
            assert_eq!(*status, 400);
            assert_eq!(message, &braze_message, "the client keeps Braze's message");
        }
        other => panic!("expected BadRequest, got {other:?}"),
    }
    assert!(error.to_string().contains(&braze_message));
    assert_eq!(error.send_fate(), SendFate::NotAccepted);
    assert_key_hidden(&error, &t.key);

    // More than Braze's 75 attribute objects: refused whole.
    let attributes: Vec<AttributesObject> = (0..=limits::MAX_TRACK_OBJECTS)
        .map(|i| AttributesObject::new(UserIdentifier::external_id(format!("contract-bulk-{i}"))).attribute("n", i))
        .collect();
    let error = t
        .client
        .track(TrackRequest::new().attributes(attributes))
        .await
        .expect_err("one object over the limit");
    match &error {
        BrazeError::BadRequest {
            endpoint,
            status,
            message,
            ..
        } => {
            assert_eq!((*endpoint, *status), (Endpoint::UsersTrack, 400));
            assert!(message.contains("Max Input Length Exceeded"), "{message}");
        }
        other => panic!("expected BadRequest, got {other:?}"),
    }
    assert_key_hidden(&error, &t.key);

    if t.skip_sim_only(
        "validation errors",
        "checks the simulator's state and API-only campaigns",
    ) {
        return;
    }
    let exported = t
        .client
        .export_ids(ExportIdsRequest::by_external_ids(["contract-bulk-0"]).fields_to_export(["external_id"]))
        .await
        .expect("export");
    assert!(exported.users.is_empty(), "a refused /users/track wrote nothing");
    assert!(t.ws().events.is_empty(), "a refused trigger sent nothing");

    // A campaign that is not API-triggered.
    let error = t
        .client
        .trigger_campaign(
            CampaignTriggerSendRequest::new(CAMPAIGN_NOT_API).recipients([Recipient::external_user_id(&t.users[0])]),
        )
        .await
        .expect_err("not an API campaign");
    assert!(matches!(error, BrazeError::BadRequest { status: 400, .. }), "{error:?}");

    // broadcast together with recipients.
    let error = t
        .client
        .trigger_campaign(
            CampaignTriggerSendRequest::new(CAMPAIGN)
                .broadcast(true)
                .recipients([Recipient::external_user_id(&t.users[0])]),
        )
        .await
        .expect_err("broadcast with recipients");
    assert!(matches!(error, BrazeError::BadRequest { status: 400, .. }), "{error:?}");

    // More than Braze's 50 recipients.
    let error = t
        .client
        .trigger_campaign(
            CampaignTriggerSendRequest::new(CAMPAIGN)
                .recipients((0..=limits::MAX_RECIPIENTS).map(|i| Recipient::external_user_id(format!("u{i}")))),
        )
        .await
        .expect_err("one recipient over the limit");
    assert!(matches!(error, BrazeError::BadRequest { status: 400, .. }), "{error:?}");
    assert!(t.ws().events.is_empty(), "no refused request sent anything");
}

/// The simulator keeps its own copy of Braze's limits, so that it checks the client's contract instead
/// of sharing its mistakes; both copies must be Braze's documented numbers. The tests above prove the
/// client's against the target (the simulator, or real Braze): one over each limit is refused.
#[test]
fn the_simulator_and_the_client_hold_the_same_braze_limits() {
    use offerloop_sim::server::{catalog, messaging, templates, users};
    assert_eq!(messaging::MAX_RECIPIENTS, limits::MAX_RECIPIENTS);
    assert_eq!(users::MAX_TRACK_OBJECTS, limits::MAX_TRACK_OBJECTS);
    assert_eq!(users::MAX_EXPORT_IDS, limits::MAX_EXPORT_IDS);
    assert_eq!(catalog::PAGE_SIZE, limits::LIST_PAGE_SIZE);
    assert_eq!(templates::MAX_LIMIT, limits::TEMPLATE_LIST_MAX_LIMIT as usize);
    assert_eq!(templates::DEFAULT_LIMIT, limits::TEMPLATE_LIST_DEFAULT_LIMIT as usize);
}

// Braze's "50 KB" of `trigger_properties`: the client stays under either kilobyte, the simulator
// refuses only above the larger, so nothing the client sends is refused for its size.
const _: () = assert!(limits::MAX_PROPERTIES_BYTES <= offerloop_sim::server::messaging::MAX_PROPERTIES_BYTES);

/// A simulator whose `/users/track` pool holds 2 requests per 6 seconds.
async fn throttled(retry_after: bool) -> Contract {
    let rate_limits = RateLimits {
        // One token back every 3 s: wide enough that a loaded machine does not refill the bucket
        // between the requests below.
        users_track: Limit::new(2, Duration::from_secs(6)),
        retry_after,
        ..RateLimits::default()
    };
    Contract::start_with(
        SCENARIO,
        SimConfig {
            rate_limits,
            ..SimConfig::default()
        },
    )
    .await
}

#[tokio::test]
async fn rate_limits_answer_429_which_the_client_retries_per_its_policy() {
    if RealEnv::from_env().is_some() {
        eprintln!("429 test skipped against real Braze: it needs the simulator's tiny rate limits");
        return;
    }
    for retry_after in [true, false] {
        let t = throttled(retry_after).await;
        let user = t.users(1).remove(0);
        let track = || {
            TrackRequest::new()
                .attributes([AttributesObject::new(UserIdentifier::external_id(&user)).attribute("n", 1)])
        };

        // Two requests spend the window.
        let first = client_for(&t.url, &t.key, RetryPolicy::disabled());
        first.track(track()).await.expect("1st request in the window");
        first.track(track()).await.expect("2nd request in the window");
        let window = first.rate_limit_window(RateLimitPool::UsersTrack);
        assert_eq!(
            window.remaining,
            Some(0),
            "X-RateLimit-Remaining counts down: {window:?}"
        );
        assert!(window.reset_at.is_some(), "X-RateLimit-Reset is sent: {window:?}");

        // A client that has not seen the window (so does not wait for it) and may not retry gets the 429.
        let no_retry = client_for(&t.url, &t.key, RetryPolicy::disabled());
        let refused = no_retry
            .track(track())
            .await
            .expect_err("3rd request is over the limit");
        match &refused {
            BrazeError::RateLimited {
                endpoint,
                reset_at,
                retry_after: header,
            } => {
                assert_eq!(*endpoint, Endpoint::UsersTrack);
                assert!(reset_at.is_some(), "the 429 carries X-RateLimit-Reset");
                assert_eq!(
                    header.is_some(),
                    retry_after,
                    "Retry-After only when the simulator is asked to send it"
                );
            }
            other => panic!("expected RateLimited, got {other:?}"),
        }
        assert_eq!(refused.send_fate(), SendFate::NotAccepted);
        assert_key_hidden(&refused, &t.key);

        // A retrying client gets its 429, waits (Retry-After, else X-RateLimit-Reset) and gets through.
        let started = std::time::Instant::now();
        let response = t.client.track(track()).await.expect("retried until accepted");
        assert_eq!(response.attributes_processed, Some(1));
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "the client waited for the bucket to refill (took {:?})",
            started.elapsed()
        );
        // Other pools are unaffected.
        t.client
            .list_segments(SegmentListRequest::new())
            .await
            .expect("the default pool is not exhausted");
    }
}

// ---------------------------------------------------------------------------------------------------
// Faults (sim only): the client's "never blindly retry a send" promise, and retries of reads.
// ---------------------------------------------------------------------------------------------------

/// A simulator injecting `faults`, or `None` (with a printed reason) against real Braze.
async fn faulty(faults: Faults, test: &str) -> Option<Contract> {
    if RealEnv::from_env().is_some() {
        eprintln!("{test}: skipped against real Braze: it needs the simulator's fault injection");
        return None;
    }
    Some(
        Contract::start_with(
            SCENARIO,
            SimConfig {
                faults,
                ..SimConfig::default()
            },
        )
        .await,
    )
}

#[tokio::test]
async fn a_send_whose_response_is_lost_is_outcome_unknown_and_not_sent_twice() {
    let faults = Faults {
        lost_response_rate: 1.0,
        paths: vec!["/campaigns/trigger/send".to_owned()],
        ..Faults::default()
    };
    let Some(t) = faulty(faults, "lost response").await else {
        return;
    };
    let users = t.users(2);
    let error = t
        .client
        .trigger_campaign(
            CampaignTriggerSendRequest::new(&t.campaign).recipients(users.iter().map(Recipient::external_user_id)),
        )
        .await
        .expect_err("the response never arrives");
    assert!(
        matches!(
            error,
            BrazeError::OutcomeUnknown {
                endpoint: Endpoint::CampaignsTriggerSend,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.send_fate(), SendFate::Unknown, "the send may have happened");
    assert_key_hidden(&error, &t.key);
    // The simulator applied it exactly once: the client did not retry.
    let ws = t.ws();
    let dispatches: BTreeSet<String> = ws
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Send)
        .filter_map(|e| e.message.as_ref().map(|m| m.dispatch_id.clone()))
        .collect();
    let sends = ws.events.iter().filter(|e| e.kind == EventKind::Send).count();
    drop(ws);
    assert_eq!(dispatches.len(), 1, "one request reached the handler: {dispatches:?}");
    assert_eq!(sends, users.len(), "one send per recipient, once");
}

#[tokio::test]
async fn a_5xx_on_a_send_is_outcome_unknown_but_on_a_read_is_retried() {
    let faults = Faults {
        error_rate: 1.0,
        error_statuses: vec![503],
        ..Faults::default()
    };
    let Some(t) = faulty(faults, "5xx").await else {
        return;
    };
    let send = t
        .client
        .trigger_campaign(
            CampaignTriggerSendRequest::new(&t.campaign).recipients([Recipient::external_user_id(&t.users[0])]),
        )
        .await
        .expect_err("503");
    assert!(
        matches!(
            send,
            BrazeError::OutcomeUnknown {
                endpoint: Endpoint::CampaignsTriggerSend,
                ..
            }
        ),
        "{send:?}"
    );
    assert_eq!(send.send_fate(), SendFate::Unknown);
    let read = t
        .client
        .list_campaigns(CampaignListRequest::new())
        .await
        .expect_err("503 every time");
    match &read {
        BrazeError::Server {
            endpoint,
            status,
            attempts,
        } => {
            assert_eq!((*endpoint, *status), (Endpoint::CampaignsList, 503));
            assert_eq!(
                *attempts,
                fast_retry().max_attempts,
                "a read is retried up to the policy's attempts"
            );
        }
        other => panic!("expected Server, got {other:?}"),
    }
    assert_key_hidden(&read, &t.key);

    // Faults off at runtime (PUT /_sim/faults): the same calls work.
    t.admin("PUT", "/_sim/faults", Some(&json!({}))).await;
    t.client
        .list_campaigns(CampaignListRequest::new())
        .await
        .expect("no fault any more");
}

#[tokio::test]
async fn sim_admin_clock_and_sends_routes() {
    let t = Contract::start().await;
    if t.skip_sim_only("admin routes", "`/_sim/*` exists only in the simulator") {
        return;
    }
    let before = t.now();
    let clock = t.admin("GET", "/_sim/clock", None).await;
    let shown: Timestamp = clock["now"].as_str().expect("now").parse().expect("RFC 3339");
    assert_eq!(shown, before);
    let moved = t
        .admin("POST", "/_sim/clock/advance", Some(&json!({ "seconds": 3600 })))
        .await;
    let moved: Timestamp = moved["now"].as_str().expect("now").parse().expect("RFC 3339");
    assert_eq!(moved, before + SignedDuration::from_hours(1));
    assert_eq!(t.now(), moved, "the workspace clock moved");
    let (status, _) = t
        .raw("POST", "/_sim/clock/advance", Some(&json!({ "seconds": -1 })))
        .await;
    assert_eq!(status, 400, "the clock never goes back");

    let users = t.users(1);
    let response = t
        .client
        .trigger_campaign(
            CampaignTriggerSendRequest::new(&t.campaign).recipients(users.iter().map(Recipient::external_user_id)),
        )
        .await
        .expect("trigger");
    let dispatch = response.dispatch_id.expect("dispatch_id");
    let listed = t.admin("GET", "/_sim/sends", None).await;
    let sends = listed["sends"].as_array().expect("sends array");
    assert_eq!(sends.len(), 1, "{listed}");
    assert_eq!(sends[0]["dispatch_id"], json!(dispatch));
    assert_eq!(sends[0]["external_user_id"], json!(users[0]));
    assert_eq!(sends[0]["campaign_id"], json!(CAMPAIGN));
    assert_eq!(sends[0]["channel"], json!("email"));
}

// ---------------------------------------------------------------------------------------------------
// More of the messaging contract (sim only where it needs the scenario's paused objects or the log).
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn paused_campaigns_and_canvases_answer_success_with_a_notice_and_send_nothing() {
    let t = Contract::start().await;
    if t.skip_sim_only(
        "paused campaign/canvas",
        "needs the scenario's paused campaign and Canvas",
    ) {
        return;
    }
    let users = t.users(2);
    let campaign = t
        .client
        .trigger_campaign(
            CampaignTriggerSendRequest::new(CAMPAIGN_PAUSED).recipients(users.iter().map(Recipient::external_user_id)),
        )
        .await
        .expect("a paused campaign still answers success");
    assert_eq!(campaign.message, "success");
    assert!(
        campaign.notice.as_deref().is_some_and(|n| !n.is_empty()),
        "a paused campaign's trigger carries a notice: {campaign:?}"
    );
    let canvas = t
        .client
        .trigger_canvas(
            CanvasTriggerSendRequest::new(CANVAS_PAUSED).recipients(users.iter().map(Recipient::external_user_id)),
        )
        .await
        .expect("a paused Canvas still answers success");
    assert_eq!(canvas.message, "success");
    let notice = canvas.notice.clone().unwrap_or_default();
    assert!(notice.contains("paused"), "Braze's notice names the pause: {canvas:?}");
    let sends = t.ws().events.iter().filter(|e| e.kind == EventKind::Send).count();
    assert_eq!(sends, 0, "nothing was sent");
}

#[tokio::test]
async fn trigger_campaign_skips_unknown_users_and_creates_them_only_when_asked() {
    let t = Contract::start().await;
    if t.skip_sim_only("recipient creation", "creates users and reads the simulator's log") {
        return;
    }
    let known = t.users(1).remove(0);
    // An unknown external_id is silently skipped (send_to_existing_only defaults to true).
    let response = t
        .client
        .trigger_campaign(CampaignTriggerSendRequest::new(CAMPAIGN).recipients([
            Recipient::external_user_id(&known),
            Recipient::external_user_id("contract-ghost"),
        ]))
        .await
        .expect("unknown users are not an error");
    let dispatch = response.dispatch_id.expect("dispatch_id");
    assert_eq!(
        t.recipients_of(&dispatch),
        vec![known.clone()],
        "only the known user is sent to"
    );

    // send_to_existing_only=false with attributes creates the user first, then sends.
    let response = t
        .client
        .trigger_campaign(
            CampaignTriggerSendRequest::new(CAMPAIGN).recipients([Recipient::external_user_id(
                "contract-new-recipient",
            )
            .send_to_existing_only(false)
            .attributes(props(json!({ "plan": "premium", "email_subscribe": "opted_in" })))]),
        )
        .await
        .expect("create and send");
    let dispatch = response.dispatch_id.expect("dispatch_id");
    assert_eq!(t.recipients_of(&dispatch), vec!["contract-new-recipient".to_owned()]);
    let exported = t
        .client
        .export_ids(
            ExportIdsRequest::by_external_ids(["contract-new-recipient"]).fields_to_export([
                "external_id",
                "custom_attributes",
                "campaigns_received",
            ]),
        )
        .await
        .expect("export the new recipient");
    let user = exported.users.first().expect("the recipient was created");
    assert_eq!(
        user.custom_attributes.get("plan"),
        Some(&json!("premium")),
        "attributes applied before the send"
    );
    assert!(
        user.campaigns_received
            .iter()
            .any(|c| c.api_campaign_id.as_deref() == Some(CAMPAIGN)),
        "the profile lists the campaign received: {:?}",
        user.campaigns_received
    );

    // send_to_existing_only=false without attributes is refused.
    let refused = t
        .client
        .trigger_campaign(
            CampaignTriggerSendRequest::new(CAMPAIGN)
                .recipients([Recipient::external_user_id("contract-other").send_to_existing_only(false)]),
        )
        .await;
    assert!(
        matches!(refused, Err(BrazeError::BadRequest { status: 400, .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn send_messages_to_a_segment_reaches_exactly_its_members() {
    let t = Contract::start().await;
    if t.skip_sim_only("segment broadcast", "compares with the simulator's segment membership") {
        return;
    }
    let response =
        t.client
            .send_messages(MessagesSendRequest::new().segment_id(SEGMENT).broadcast(true).messages(
                json!({ "email": { "app_id": "contract-app", "subject": "All premium", "body": "<p>hi</p>" } }),
            ))
            .await
            .expect("segment send");
    let dispatch = response.dispatch_id.expect("dispatch_id");
    assert_eq!(t.recipients_of(&dispatch), t.segment_members(SEGMENT));
}

#[tokio::test]
async fn campaign_analytics_and_profiles_agree_with_the_event_log() {
    let t = Contract::start().await;
    if t.skip_sim_only("analytics consistency", "compares with the simulator's event log") {
        return;
    }
    let users: Vec<String> = {
        let ws = t.ws();
        (0..20).map(|i| ws.world.external_id(i).to_owned()).collect()
    };
    let response = t
        .client
        .trigger_campaign(
            CampaignTriggerSendRequest::new(CAMPAIGN)
                .trigger_properties(props(json!({ "offer": "pct20" })))
                .recipients(users.iter().map(Recipient::external_user_id)),
        )
        .await
        .expect("trigger");
    let dispatch = response.dispatch_id.expect("dispatch_id");
    t.advance(SignedDuration::from_hours(4 * 24)).await;
    let ending = t.now();
    let series = t
        .client
        .campaign_data_series(CampaignDataSeriesRequest::new(CAMPAIGN, 7).ending_at(iso(ending)))
        .await
        .expect("data series");

    // The same numbers, recomputed from the event log, per UTC day.
    #[derive(Default, Debug, PartialEq)]
    struct Day {
        sent: u64,
        delivered: u64,
        opens: u64,
        clicks: u64,
        bounces: u64,
        conversions: u64,
        revenue_cents: i64,
    }
    let mut expected: BTreeMap<String, Day> = BTreeMap::new();
    {
        let ws = t.ws();
        for e in &ws.events {
            if e.message.as_ref().and_then(|m| m.campaign_id.as_deref()) != Some(CAMPAIGN) {
                continue;
            }
            let day = e.time.to_zoned_datetime(jiff::tz::TimeZone::UTC).date().to_string();
            let d = expected.entry(day).or_default();
            match &e.kind {
                EventKind::Send => d.sent += 1,
                EventKind::Delivery => d.delivered += 1,
                EventKind::Open => d.opens += 1,
                EventKind::Click => d.clicks += 1,
                EventKind::Bounce => d.bounces += 1,
                EventKind::Purchase { price, quantity, .. } => {
                    d.conversions += 1;
                    d.revenue_cents += (price * f64::from(*quantity) * 100.0).round() as i64;
                }
                _ => {}
            }
        }
    }
    assert_eq!(expected.values().map(|d| d.sent).sum::<u64>(), 20, "20 sends logged");
    // Seeded, so stable: with the scenario's high response rates some emails are opened and some
    // conversions attributed, so the comparison below is not vacuous.
    assert!(
        expected.values().any(|d| d.opens > 0 && d.conversions > 0),
        "the scenario should produce opens and conversions: {expected:?}"
    );
    for point in &series.data {
        let day = point.time.get(..10).unwrap_or(&point.time).to_owned();
        let want = expected.remove(&day).unwrap_or_default();
        let stat = |name: &str| channel_stat([&point.messages], "email", name);
        let got = Day {
            sent: stat("sent"),
            delivered: stat("delivered"),
            opens: stat("opens"),
            clicks: stat("clicks"),
            bounces: stat("bounces"),
            conversions: point.conversions.unwrap_or(0),
            revenue_cents: (point.revenue.unwrap_or(0.0) * 100.0).round() as i64,
        };
        assert_eq!(got, want, "campaigns/data_series for {day} matches the event log");
    }
    assert!(expected.is_empty(), "events outside the series' days: {expected:?}");

    // Profiles: every recipient lists the campaign, `converted` iff a conversion is attributed.
    let exported = t
        .client
        .export_ids(
            ExportIdsRequest::by_external_ids(users.clone()).fields_to_export(["external_id", "campaigns_received"]),
        )
        .await
        .expect("export recipients");
    assert_eq!(exported.users.len(), 20);
    let ws = t.ws();
    for user in &exported.users {
        let id = user.external_id.clone().expect("external_id");
        let received = user
            .campaigns_received
            .iter()
            .find(|c| c.api_campaign_id.as_deref() == Some(CAMPAIGN))
            .unwrap_or_else(|| panic!("{id} lists the campaign: {:?}", user.campaigns_received));
        let converted = ws.events.iter().any(|e| {
            e.external_user_id == id
                && matches!(e.kind, EventKind::Purchase { .. })
                && e.message.as_ref().is_some_and(|m| m.dispatch_id == dispatch)
        });
        assert_eq!(received.converted, converted, "{id}: converted flag matches the log");
        let opened = ws.events.iter().any(|e| {
            e.external_user_id == id
                && e.kind == EventKind::Open
                && e.message.as_ref().is_some_and(|m| m.dispatch_id == dispatch)
        });
        assert_eq!(
            received.engaged.get("opened_email").copied().unwrap_or(false),
            opened,
            "{id}: engaged.opened_email matches the log"
        );
    }
}

#[tokio::test]
async fn segment_exports_follow_tracked_changes_and_allow_one_run_per_segment() {
    let t = Contract::start().await;
    if t.skip_sim_only("segment export vs track", "changes the simulator's profiles") {
        return;
    }
    // A user outside the segment joins it through /users/track; a member leaves it.
    let before = t.segment_members(SEGMENT);
    let (joiner, leaver) = {
        let ws = t.ws();
        let ids: Vec<String> = (0..ws.world.len())
            .map(|i| ws.world.external_id(i).to_owned())
            .collect();
        let joiner = ids
            .iter()
            .find(|id| !before.contains(id))
            .cloned()
            .expect("a non-member");
        (joiner, before[0].clone())
    };
    t.client
        .track(
            TrackRequest::new().attributes([
                AttributesObject::new(UserIdentifier::external_id(&joiner))
                    .attribute("plan", "premium")
                    .attribute("contract_extra", "x"),
                AttributesObject::new(UserIdentifier::external_id(&leaver)).attribute("plan", "basic"),
            ]),
        )
        .await
        .expect("track");
    let mut want = before.clone();
    want.retain(|id| id != &leaver);
    want.push(joiner.clone());
    want.sort();
    assert_eq!(t.segment_members(SEGMENT), want, "the simulator's own membership moved");

    let started = t
        .client
        .export_segment(ExportSegmentRequest::new(SEGMENT, ["external_id"]).custom_attributes_to_export(["plan"]))
        .await
        .expect("export");
    // A second export of the same segment while the first runs: 429.
    let second = client_for(&t.url, &t.key, RetryPolicy::disabled())
        .export_segment(ExportSegmentRequest::new(SEGMENT, ["external_id"]))
        .await;
    assert!(
        matches!(
            second,
            Err(BrazeError::RateLimited {
                endpoint: Endpoint::UsersExportSegment,
                ..
            })
        ),
        "one running export per segment: {second:?}"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let poll = ExportPoll::default()
        .with_initial_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_millis(250))
        .with_timeout(Duration::from_secs(30));
    let files = t
        .client
        .fetch_export(
            ExportSource::Download {
                url: started.url.expect("url"),
            },
            dir.path().to_path_buf(),
            poll,
        )
        .await
        .expect("fetch");
    let users: Vec<_> = ExportReader::new(files)
        .fields_to_export(["external_id", "custom_attributes"])
        .collect::<Result<_, _>>()
        .expect("readable");
    let mut ids: Vec<String> = users.iter().filter_map(|u| u.external_id.clone()).collect();
    ids.sort();
    assert_eq!(ids, want, "the export reflects the tracked changes");
    for user in &users {
        let keys: Vec<&String> = user.custom_attributes.keys().collect();
        assert_eq!(keys, vec!["plan"], "only custom_attributes_to_export: {user:?}");
        assert_eq!(user.custom_attributes["plan"], json!("premium"));
    }
}

#[tokio::test]
async fn a_local_time_schedule_sends_at_each_recipients_local_hour() {
    let t = Contract::start().await;
    if t.skip_sim_only(
        "in_local_time",
        "moves the simulated clock and reads profiles' time zones",
    ) {
        return;
    }
    // Recipients in both of the scenario's zones.
    let (users, zones): (Vec<String>, Vec<String>) = {
        let ws = t.ws();
        let mut picked: Vec<(String, String)> = Vec::new();
        for i in 0..ws.world.len() {
            let profile = ws.users.profile(&ws.world, i);
            let zone = profile
                .get("time_zone")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            if picked.iter().filter(|(_, z)| *z == zone).count() < 2 {
                picked.push((ws.world.external_id(i).to_owned(), zone));
            }
        }
        picked.into_iter().unzip()
    };
    let distinct: BTreeSet<&String> = zones.iter().collect();
    assert_eq!(
        distinct.len(),
        2,
        "the scenario spreads users over two zones: {zones:?}"
    );

    // 10:00 local on the day after the start (2026-01-06): Paris at 09:00Z, New York at 15:00Z.
    let response = t
        .client
        .schedule_campaign(
            CampaignTriggerScheduleRequest::new(CAMPAIGN, Schedule::new("2026-01-06T10:00:00").in_local_time(true))
                .recipients(users.iter().map(Recipient::external_user_id)),
        )
        .await
        .expect("local-time schedule");
    let dispatch = response.dispatch_id.expect("dispatch_id");
    t.advance(SignedDuration::from_hours(2 * 24)).await;
    let sends: Vec<(String, Timestamp)> = t
        .ws()
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Send && e.message.as_ref().is_some_and(|m| m.dispatch_id == dispatch))
        .map(|e| (e.external_user_id.clone(), e.time))
        .collect();
    assert_eq!(sends.len(), users.len(), "every recipient got it: {sends:?}");
    for (user, at) in sends {
        let zone = &zones[users.iter().position(|u| *u == user).expect("a recipient")];
        let local = at.to_zoned_datetime(jiff::tz::TimeZone::get(zone).expect("IANA zone"));
        assert_eq!(
            (local.date().to_string(), local.hour(), local.minute()),
            ("2026-01-06".to_owned(), 10, 0),
            "{user} in {zone} got it at {at}"
        );
    }

    // A local time already passed everywhere is refused.
    let past = t
        .client
        .schedule_campaign(
            CampaignTriggerScheduleRequest::new(CAMPAIGN, Schedule::new("2026-01-05T10:00:00").in_local_time(true))
                .recipients(users.iter().map(Recipient::external_user_id)),
        )
        .await;
    assert!(
        matches!(past, Err(BrazeError::BadRequest { status: 400, .. })),
        "in_local_time in the past everywhere: {past:?}"
    );
    let garbage = t
        .client
        .schedule_messages(
            MessagesScheduleRequest::new(Schedule::new("next tuesday"))
                .external_user_ids(users.clone())
                .messages(json!({ "email": { "app_id": "contract-app", "subject": "s", "body": "b" } })),
        )
        .await;
    assert!(
        matches!(garbage, Err(BrazeError::BadRequest { status: 400, .. })),
        "an unparseable schedule time: {garbage:?}"
    );
}

#[tokio::test]
async fn export_ids_limits_are_bad_requests() {
    let t = Contract::start().await;
    let too_many = t
        .client
        .export_ids(
            ExportIdsRequest::by_external_ids((0..=limits::MAX_EXPORT_IDS).map(|i| format!("contract-u{i}")))
                .fields_to_export(["external_id"]),
        )
        .await;
    match &too_many {
        Err(BrazeError::BadRequest {
            endpoint,
            status,
            message,
            ..
        }) => {
            assert_eq!((*endpoint, *status), (Endpoint::UsersExportIds, 400));
            assert!(message.contains("max number"), "Braze's wording: {message}");
        }
        other => panic!("one external id over the limit: expected BadRequest, got {other:?}"),
    }
    let two_lookups = t
        .client
        .export_ids(
            ExportIdsRequest::new()
                .email_address("a@example.com")
                .phone("+15555550100")
                .fields_to_export(["external_id"]),
        )
        .await;
    assert!(
        matches!(two_lookups, Err(BrazeError::BadRequest { status: 400, .. })),
        "more than one of device_id/email_address/phone: {two_lookups:?}"
    );
}

#[tokio::test]
async fn email_template_tags_must_exist() {
    let t = Contract::start().await;
    if t.skip_sim_only("template tags", "the tag `contract` exists only in the scenario") {
        return;
    }
    let tagged = t
        .client
        .create_email_template(EmailTemplateCreateRequest::new("Contract: tagged", "s", "<p>b</p>").tags(["contract"]))
        .await
        .expect("an existing tag");
    let info = t
        .client
        .email_template_info(EmailTemplateInfoRequest::new(&tagged.email_template_id))
        .await
        .expect("info");
    assert_eq!(info.tags, vec!["contract".to_owned()]);
    let unknown = t
        .client
        .create_email_template(
            EmailTemplateCreateRequest::new("Contract: bad tag", "s", "<p>b</p>").tags(["no-such-tag"]),
        )
        .await;
    match &unknown {
        Err(BrazeError::BadRequest {
            status: 400, message, ..
        }) => {
            assert!(
                message.contains("tags could not be found"),
                "Braze's wording: {message}"
            );
        }
        other => panic!("an unknown tag: expected BadRequest, got {other:?}"),
    }
    let listed = t
        .client
        .list_email_templates(EmailTemplateListRequest::new())
        .await
        .expect("list");
    assert!(
        listed.templates.iter().all(|t| t.template_name != "Contract: bad tag"),
        "a refused create made nothing"
    );
}

#[tokio::test]
async fn list_campaigns_filters_by_last_edit_time() {
    let t = many().await;
    if t.skip_sim_only("last_edit.time[gt]", "compares with the scenario's creation times") {
        return;
    }
    let recent: Vec<String> = t
        .client
        .list_all(CampaignListRequest::new().last_edit_time_gt("2025-12-31T00:00:00"))
        .map_ok(|c| c.id)
        .try_collect()
        .await
        .expect("filtered list");
    assert_eq!(
        recent,
        vec![
            CAMPAIGN.to_owned(),
            CAMPAIGN_NOT_API.to_owned(),
            CAMPAIGN_PAUSED.to_owned(),
            CAMPAIGN_CONTROL.to_owned(),
        ],
        "only campaigns edited after the time (none edited since creation)"
    );
}

#[tokio::test]
async fn a_wrong_base_path_is_not_found() {
    let t = Contract::start().await;
    let client = client_for(
        &format!("{}/not-braze", t.url.trim_end_matches('/')),
        &t.key,
        fast_retry(),
    );
    let error = client
        .list_segments(SegmentListRequest::new())
        .await
        .expect_err("no such path");
    assert!(
        matches!(
            error,
            BrazeError::NotFound {
                endpoint: Endpoint::SegmentsList,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.send_fate(), SendFate::NotAccepted);
    assert_key_hidden(&error, &t.key);
}

#[tokio::test]
async fn track_applies_the_good_objects_of_a_partly_bad_batch() {
    let t = Contract::start().await;
    let user = t.users(1).remove(0);
    let id = || UserIdentifier::external_id(&user);
    let now = iso(t.now());
    let response = t
        .client
        .track(
            TrackRequest::new()
                .events([
                    EventObject::new(id(), "contract_good_event", now.as_str()),
                    EventObject::new(id(), "contract_bad_event", "not a time"),
                ])
                .purchases([
                    PurchaseObject::new(id(), "contract-good-sku", "USD", 5.0, now.as_str()),
                    PurchaseObject::new(id(), "contract-bad-sku", "USD", 5.0, now.as_str()).quantity(101),
                ]),
        )
        .await
        .expect("a partly bad batch is still a success");
    assert_eq!(response.message, "success");
    assert_eq!(
        response.errors.len(),
        2,
        "one non-fatal error per bad object: {:?}",
        response.errors
    );
    if t.skip_sim_only(
        "partial track",
        "reads back at once (real Braze is eventually consistent)",
    ) {
        return;
    }
    let exported = t
        .client
        .export_ids(ExportIdsRequest::by_external_ids([user.clone()]).fields_to_export(["custom_events", "purchases"]))
        .await
        .expect("export");
    let found = exported.users.first().expect("the user");
    let events: Vec<&str> = found.custom_events.iter().map(|e| e.name.as_str()).collect();
    let purchases: Vec<&str> = found.purchases.iter().map(|p| p.name.as_str()).collect();
    assert!(
        events.contains(&"contract_good_event") && !events.contains(&"contract_bad_event"),
        "{events:?}"
    );
    assert!(
        purchases.contains(&"contract-good-sku") && !purchases.contains(&"contract-bad-sku"),
        "{purchases:?}"
    );
}

#[tokio::test]
async fn the_export_segment_helper_works_through_dyn_braze_api() {
    let t = Contract::start().await;
    let api: &dyn BrazeApi = &t.client;
    let dir = tempfile::tempdir().expect("temp dir");
    let poll = ExportPoll::default()
        .with_initial_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_millis(if t.is_real() { 10_000 } else { 250 }))
        .with_timeout(Duration::from_secs(if t.is_real() { 1800 } else { 30 }));
    let reader = offerloop_braze::export::export_segment(
        api,
        ExportSegmentRequest::new(&t.segment, ["external_id", "country"]),
        &offerloop_braze::export::ExportDestination::BrazeHosted {
            download_dir: dir.path().to_path_buf(),
        },
        &poll,
    )
    .await
    .expect("export_segment helper");
    let users: Vec<_> = reader.collect::<Result<_, _>>().expect("readable export");
    assert!(users.iter().all(|u| u.external_id.is_some()));
    assert!(
        users
            .iter()
            .all(|u| u.custom_attributes.is_empty() && u.email_subscribe.is_none()),
        "fields not requested stay empty"
    );
    if t.skip_sim_only("export_segment helper", "compares with the simulator's membership") {
        return;
    }
    let mut ids: Vec<String> = users.iter().filter_map(|u| u.external_id.clone()).collect();
    ids.sort();
    assert_eq!(ids, t.segment_members(SEGMENT));
    for user in &users {
        let id = user.external_id.as_deref().expect("external_id");
        assert_eq!(
            user.country.as_deref(),
            t.profile(id).get("country").and_then(Value::as_str),
            "{id}: country"
        );
    }
}
