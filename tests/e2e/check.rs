//! `offerloop check` against the simulator: the winback workspace as shipped passes every check, and
//! each broken workspace (non-API campaign, Braze control variant, stopped canvas, unknown Liquid
//! property, missing permission, tiny segment) fails exactly the check it breaks; every shipped
//! example passes against its own simulated world, its local inputs (the ids file) included.

use offerloop_activation::preflight::{CheckResult, CheckStatus, names};
use offerloop_braze::{ApiKey, BrazeClient, BrazeConfig, Endpoint};
use offerloop_cli::{check_cmd, demo_cmd};
use offerloop_domain::UseCase;
use offerloop_sim::state::spec::{ApiKeySpec, MessageSpec};
use offerloop_sim::world::Channel;
use offerloop_sim::{Scenario, SimBraze, SimConfig, World};

const FULL_KEY: &str = "check-full-key";
const NO_DETAILS_KEY: &str = "check-no-campaign-details-key";

const EMAIL_CAMPAIGN: &str = "6f1c2a9e-winback-email";
const SMS_CAMPAIGN: &str = "a27d0c41-winback-sms";

const LEAD_NURTURE_SCENARIO: &str = include_str!("../../crates/sim/scenarios/lead-nurture.toml");
const LEAD_NURTURE_USE_CASE: &str = include_str!("../../examples/lead-nurture.toml");
const NURTURE_CANVAS: &str = "7a5e0c39-nurture-email-canvas";

/// The winback scenario as shipped, with a full key and a key without `campaigns.details`.
fn winback() -> Scenario {
    with_keys(Scenario::from_toml_str(demo_cmd::SCENARIO, None).unwrap())
}

fn with_keys(mut scenario: Scenario) -> Scenario {
    let all_but_details = Endpoint::ALL
        .iter()
        .filter(|e| **e != Endpoint::CampaignsDetails)
        .map(|e| e.permission().to_owned())
        .collect();
    scenario.braze.api_keys = vec![
        ApiKeySpec {
            key: FULL_KEY.into(),
            permissions: vec!["*".into()],
            ip_allowlist: vec![],
        },
        ApiKeySpec {
            key: NO_DETAILS_KEY.into(),
            permissions: all_but_details,
            ip_allowlist: vec![],
        },
    ];
    scenario
}

/// Starts the simulator on `scenario`, points `use_case_text` (whose endpoint is `endpoint`) at it
/// and runs every check with `key`.
async fn check_with(
    scenario: Scenario,
    use_case_text: &str,
    endpoint: &str,
    key: &str,
) -> (SimBraze, Vec<CheckResult>) {
    let sim = SimBraze::start(World::new(scenario).unwrap(), SimConfig::default())
        .await
        .unwrap();
    let text = use_case_text.replace(
        &format!("endpoint = \"{endpoint}\""),
        &format!("endpoint = \"{}\"", sim.base_url()),
    );
    assert_ne!(text, use_case_text, "the endpoint was not rewritten");
    let use_case: UseCase = offerloop_domain::config::parse_use_case(&text, "use-case.toml").unwrap();
    let config = BrazeConfig::builder(sim.base_url(), ApiKey::new(key).unwrap())
        .build()
        .unwrap();
    let client = BrazeClient::new(config).unwrap();
    let results = check_cmd::check(&client, &use_case).await;
    (sim, results)
}

async fn check_winback(scenario: Scenario, key: &str) -> (SimBraze, Vec<CheckResult>) {
    check_with(scenario, demo_cmd::USE_CASE, "https://rest.iad-01.braze.com", key).await
}

fn with_status(results: &[CheckResult], status: CheckStatus) -> Vec<&CheckResult> {
    results.iter().filter(|r| r.status == status).collect()
}

/// Exactly one failure, named `name`, whose detail mentions `mentions`; returns it.
fn fails_only<'r>(results: &'r [CheckResult], name: &str, mentions: &str) -> &'r CheckResult {
    let table = check_cmd::render(results);
    let failures = with_status(results, CheckStatus::Fail);
    assert_eq!(failures.len(), 1, "{table}");
    let failure = failures[0];
    assert_eq!(failure.name, name, "{table}");
    assert!(failure.detail.contains(mentions), "{table}");
    assert!(failure.fix.as_deref().is_some_and(|f| !f.is_empty()), "{table}");
    assert_eq!(check_cmd::exit_code(results), 1);
    failure
}

fn campaign_mut<'s>(scenario: &'s mut Scenario, id: &str) -> &'s mut offerloop_sim::state::spec::CampaignSpec {
    scenario.braze.campaigns.iter_mut().find(|c| c.id == id).unwrap()
}

#[tokio::test]
async fn the_winback_workspace_is_ready_to_run() {
    let (sim, results) = check_winback(winback(), FULL_KEY).await;
    let table = check_cmd::render(&results);
    assert!(with_status(&results, CheckStatus::Fail).is_empty(), "{table}");
    assert_eq!(check_cmd::exit_code(&results), 0);

    // The rows that must pass.
    let passed = |name: &str| {
        results
            .iter()
            .filter(|r| r.name == name && r.status == CheckStatus::Pass)
            .count()
    };
    assert_eq!(passed(names::PERMISSIONS), 1, "{table}");
    assert_eq!(passed(names::CAMPAIGN), 3, "{table}");
    assert_eq!(passed(names::LIQUID), 1, "{table}");
    assert_eq!(passed(names::CONVERSION), 1, "{table}");
    assert!(table.contains("✓ permissions"), "{table}");

    // The two warnings are real:
    // - ~7,700 lapsed customers with a 10 % control group cannot show a small revenue uplift in a
    //   run (about 0.1 standard deviations is the smallest detectable);
    // - the dimension names `offer`, `send_time` and `subject` are sent but the messages use the
    //   options' properties (discount_pct, coupon_prefix, free_shipping, subject_text) instead.
    let warnings = with_status(&results, CheckStatus::Warn);
    let warned: Vec<&str> = warnings.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(warned, [names::SEGMENT, names::LIQUID_UNUSED], "{table}");
    let segment = warnings[0];
    assert!(segment.detail.contains("standard deviations"), "{table}");
    assert!(segment.detail.contains("3b4f5c2e-lapsed-90d"), "{table}");
    let unused = warnings[1];
    for property in ["`offer`", "`send_time`", "`subject`"] {
        assert!(unused.detail.contains(property), "{table}");
    }
    for used in ["discount_pct", "coupon_prefix", "free_shipping", "subject_text"] {
        assert!(!unused.detail.contains(used), "{table}");
    }
    // Read calls and side-effect-free probes only: nothing was sent or recorded.
    let ws = sim.state().lock();
    assert!(ws.events.is_empty(), "{:?}", ws.events.first());
}

#[tokio::test]
async fn a_campaign_that_is_not_api_triggered_fails() {
    let mut scenario = winback();
    campaign_mut(&mut scenario, SMS_CAMPAIGN).api_triggered = false;
    let (_sim, results) = check_winback(scenario, FULL_KEY).await;
    fails_only(&results, names::CAMPAIGN_API_TRIGGERED, SMS_CAMPAIGN);
}

#[tokio::test]
async fn a_braze_control_variant_fails() {
    let mut scenario = winback();
    campaign_mut(&mut scenario, EMAIL_CAMPAIGN).control_variant = true;
    let (_sim, results) = check_winback(scenario, FULL_KEY).await;
    let failure = fails_only(&results, names::CAMPAIGN_CONTROL, EMAIL_CAMPAIGN);
    assert!(failure.detail.contains("control"), "{failure:?}");
}

#[tokio::test]
async fn an_unknown_liquid_property_fails() {
    let mut scenario = winback();
    campaign_mut(&mut scenario, EMAIL_CAMPAIGN).messages.push(MessageSpec {
        channel: Channel::Email,
        name: Some("Variant 2".into()),
        subject: Some("{{api_trigger_properties.${subject_text} | default: 'Hello'}}".into()),
        body: "<p>Your tier: {{api_trigger_properties.${loyalty_tier}}}</p>".into(),
    });
    let (_sim, results) = check_winback(scenario, FULL_KEY).await;
    let failure = fails_only(
        &results,
        names::LIQUID_UNKNOWN,
        "api_trigger_properties.${loyalty_tier}",
    );
    assert!(failure.detail.contains("Variant 2"), "{failure:?}");
    assert!(failure.fix.as_deref().unwrap().contains("discount_pct"), "{failure:?}");
}

#[tokio::test]
async fn a_missing_permission_fails_and_the_reads_it_blocks_are_not_checked() {
    let (_sim, results) = check_winback(winback(), NO_DETAILS_KEY).await;
    let failure = fails_only(&results, names::PERMISSIONS, "campaigns.details");
    assert!(
        failure.fix.as_deref().unwrap().contains("`campaigns.details`"),
        "{failure:?}"
    );
    // The campaign reads it blocks are warnings that point at the permissions row.
    let blocked: Vec<&CheckResult> = results.iter().filter(|r| r.name == names::CAMPAIGN_EXISTS).collect();
    assert_eq!(blocked.len(), 3, "{results:#?}");
    assert!(
        blocked
            .iter()
            .all(|r| r.status == CheckStatus::Warn && r.detail.contains("not checked"))
    );
    // The segment was still checked.
    assert!(
        results
            .iter()
            .any(|r| r.name == names::SEGMENT && r.detail.contains("minimum detectable uplift"))
    );
}

#[tokio::test]
async fn a_tiny_segment_fails() {
    let mut scenario = winback();
    scenario.customers = 100;
    let (_sim, results) = check_winback(scenario, FULL_KEY).await;
    let failure = fails_only(&results, names::SEGMENT, "too small");
    assert!(failure.detail.contains("standard deviations"), "{failure:?}");
    assert!(
        failure.fix.as_deref().unwrap().contains("control_fraction"),
        "{failure:?}"
    );
}

#[tokio::test]
async fn a_stopped_canvas_fails() {
    let mut scenario = with_keys(Scenario::from_toml_str(LEAD_NURTURE_SCENARIO, None).unwrap());
    let (_sim, results) = check_with(
        scenario.clone(),
        LEAD_NURTURE_USE_CASE,
        "https://rest.iad-02.braze.com",
        FULL_KEY,
    )
    .await;
    let table = check_cmd::render(&results);
    assert!(with_status(&results, CheckStatus::Fail).is_empty(), "{table}");
    assert!(
        results
            .iter()
            .any(|r| r.name == names::CANVAS && r.status == CheckStatus::Pass),
        "{table}"
    );

    scenario
        .braze
        .canvases
        .iter_mut()
        .find(|c| c.id == NURTURE_CANVAS)
        .unwrap()
        .enabled = false;
    let (_sim, results) = check_with(
        scenario,
        LEAD_NURTURE_USE_CASE,
        "https://rest.iad-02.braze.com",
        FULL_KEY,
    )
    .await;
    fails_only(&results, names::CANVAS_ENABLED, NURTURE_CANVAS);
}

#[tokio::test]
async fn run_needs_the_key_variable_the_use_case_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("winback.toml");
    let text = demo_cmd::USE_CASE.replace(
        "api_key_env = \"OFFERLOOP_BRAZE_API_KEY\"",
        "api_key_env = \"OFFERLOOP_CHECK_TEST_KEY_NEVER_SET\"",
    );
    std::fs::write(&path, text).unwrap();
    let error = check_cmd::run(&path).await.unwrap_err();
    assert!(
        format!("{error:#}").contains("OFFERLOOP_CHECK_TEST_KEY_NEVER_SET"),
        "{error:#}"
    );
    std::fs::write(&path, "[use_case]\nname = 1\n").unwrap();
    assert!(check_cmd::run(&path).await.is_err());
}

/// Every shipped example, as shipped in `examples/` (its ids file resolved against that directory,
/// as `offerloop run --use-case examples/<file>` resolves it), passes `check` against the simulated
/// world aligned with it: no ✗, Braze's rows and the run's local inputs alike.
#[tokio::test]
async fn every_shipped_example_passes_check_against_its_world() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    assert_eq!(demo_cmd::WORLDS.len(), 7, "the seven shipped worlds");
    for (name, scenario, file, _) in demo_cmd::WORLDS {
        // The file on disk, not the embedded copy: what a user runs.
        let text = std::fs::read_to_string(examples.join(file)).unwrap();
        let endpoint = text
            .lines()
            .find_map(|l| l.strip_prefix("endpoint = \""))
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap();
        let scenario = with_keys(Scenario::from_toml_str(scenario, None).unwrap());
        let (_sim, mut results) = check_with(scenario, &text, endpoint, FULL_KEY).await;
        let use_case = offerloop_domain::config::parse_use_case(&text, file).unwrap();
        let inputs = offerloop_cli::check_inputs::check_inputs(&use_case, &examples).await;
        if matches!(
            use_case.audience.source,
            offerloop_domain::usecase::AudienceSource::IdsFile { .. }
        ) {
            assert_eq!(inputs.len(), 1, "{name}: the ids file is checked");
        }
        results.extend(inputs);
        let table = check_cmd::render(&results);
        assert!(with_status(&results, CheckStatus::Fail).is_empty(), "{name}:\n{table}");
        assert_eq!(check_cmd::exit_code(&results), 0, "{name}:\n{table}");
    }
}
