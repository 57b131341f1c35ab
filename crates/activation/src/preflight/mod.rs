//! Preflight checks of a use case against its Braze workspace (`offerloop check`).
//!
//! Most failed launches are set-up mistakes in Braze: a campaign that is not API-triggered, a Braze
//! control variant competing with offerloop's own control group, a stopped canvas that silently sends
//! nothing, a Liquid tag naming a property offerloop never sends. [`preflight`] finds them with
//! **read calls only** (`/segments/details|data_series`, `/campaigns/details`, `/canvas/details`) and
//! returns one [`CheckResult`] per finding, each failure with a one-line fix:
//!
//! 1. **permissions** — the API key's permissions are probed by the CLI (the probes need the HTTP
//!    client's raw requests, which the [`BrazeApi`] seam does not expose); [`permission_check`] turns
//!    the probe results into a row. A read below that the key may not make is a ⚠ "not checked", so
//!    a missing permission fails exactly one row.
//! 2. **audience segment** — it exists, and its latest size (last 7 days of `/segments/data_series`)
//!    gives the minimum detectable uplift at 95 % confidence and 80 % power for the configured control
//!    share ([`Power`]): two-sample normal approximation, `MDE = (z₀.₉₇₅ + z₀.₈) · σ · √(1/n_t + 1/n_c)`.
//!    For a binary metric it is reported in percentage points at an assumed [`ASSUMED_BASELINE`] of
//!    5 % (⚠ above [`WARN_RELATIVE_MDE`] relative, ✗ above [`FAIL_RELATIVE_MDE`], i.e. not even a
//!    doubling of the rate is detectable); for value metrics in standard deviations of the reward (⚠
//!    above [`WARN_MDE_SD`], ✗ above [`FAIL_MDE_SD`]; the bounds match the binary ones at the 5 %
//!    baseline, where σ = √(0.05 · 0.95) and 20 % of 5 % is 0.046 σ). An empty segment is a ⚠ (Braze
//!    reports 0 for a segment whose size is not computed yet), a missing one a ✗.
//! 3. **campaigns** — every campaign an option (or `activation`'s default target) names exists, is
//!    API-triggered (`schedule_type` `api_triggered`), not archived, active, has a message for the
//!    option's channel, and has no Braze control variant.
//! 4. **canvases** — every canvas exists, is API-triggered, enabled and not archived.
//! 5. **Liquid** — every message field of those campaigns and canvas steps, and of the Braze email
//!    templates the options' `template`s name (looked up by name; a template not synced yet is a ⚠),
//!    is scanned
//!    ([`scan_liquid`]) for `api_trigger_properties.${…}`, `canvas_entry_properties.${…}`,
//!    `context.${…}` and `custom_attribute.${…}`: a property offerloop never sends is a ✗, a property
//!    in the wrong namespace (a campaign reads `api_trigger_properties`, a canvas `context` or
//!    `canvas_entry_properties`) a ✗, a property only some options send used without a `default:`
//!    filter or an `{% if %}` guard a ⚠, a property offerloop sends that no message uses a ⚠, and a
//!    custom attribute with offerloop's `attribute_prefix` that offerloop does not write a ✗.
//! 6. **conversion event** — the success metric's custom event or purchase is among each campaign's
//!
//! Each job is its own module: `power` (the segment row and the holdout's power), `liquid` (the
//! scanner and the Liquid rows), `audit` (the campaign and canvas rows), `templates` (the options'
//! email templates) and `conversions` (conversion behaviours against the metric). This module holds
//! the rows' types, the permissions row and [`preflight`], which runs the others in the order above.

mod audit;
mod conversions;
mod liquid;
mod power;
mod templates;

use std::fmt;

use offerloop_braze::probe::PermissionStatus;
use offerloop_braze::{BrazeApi, BrazeError, Endpoint};
use offerloop_domain::UseCase;
use serde::Serialize;

pub use liquid::{LiquidNamespace, LiquidRef, scan_liquid};
pub use power::{
    ASSUMED_BASELINE, FAIL_MDE_SD, FAIL_RELATIVE_MDE, Power, SEGMENT_SERIES_DAYS, WARN_MDE_SD, WARN_RELATIVE_MDE,
    minimum_detectable_effect, power_multiplier,
};

/// The names of the checks, as [`CheckResult::name`] carries them.
pub mod names {
    /// The API key holds every permission the use case needs.
    pub const PERMISSIONS: &str = "permissions";
    /// The audience segment exists and is large enough to measure uplift.
    pub const SEGMENT: &str = "audience segment";
    /// A campaign passed every campaign check.
    pub const CAMPAIGN: &str = "campaign";
    /// A campaign does not exist (or cannot be read).
    pub const CAMPAIGN_EXISTS: &str = "campaign exists";
    /// A campaign is not API-triggered.
    pub const CAMPAIGN_API_TRIGGERED: &str = "campaign API-triggered";
    /// A campaign is archived.
    pub const CAMPAIGN_ARCHIVED: &str = "campaign not archived";
    /// A campaign is stopped or a draft.
    pub const CAMPAIGN_ACTIVE: &str = "campaign active";
    /// A campaign has no message for an option's channel.
    pub const CAMPAIGN_CHANNEL: &str = "campaign channel";
    /// A campaign has a Braze control variant.
    pub const CAMPAIGN_CONTROL: &str = "campaign control variant";
    /// A canvas passed every canvas check.
    pub const CANVAS: &str = "canvas";
    /// A canvas does not exist (or cannot be read).
    pub const CANVAS_EXISTS: &str = "canvas exists";
    /// A canvas is not API-triggered.
    pub const CANVAS_API_TRIGGERED: &str = "canvas API-triggered";
    /// A canvas is stopped.
    pub const CANVAS_ENABLED: &str = "canvas enabled";
    /// A canvas is archived.
    pub const CANVAS_ARCHIVED: &str = "canvas not archived";
    /// Every Liquid reference is sound (or some messages could not be read).
    pub const LIQUID: &str = "Liquid references";
    /// A Liquid property offerloop never sends.
    pub const LIQUID_UNKNOWN: &str = "unknown Liquid property";
    /// A Liquid property read from the other kind of target's namespace.
    pub const LIQUID_NAMESPACE: &str = "Liquid namespace";
    /// A property only some options send, used without `default:` or `{% if %}`.
    pub const LIQUID_UNGUARDED: &str = "unguarded Liquid property";
    /// A `custom_attribute` with offerloop's prefix that offerloop does not write.
    pub const LIQUID_ATTRIBUTE: &str = "unknown custom attribute";
    /// Properties offerloop sends that no message uses.
    pub const LIQUID_UNUSED: &str = "unused property";
    /// The campaigns' conversion behaviours against the success metric.
    pub const CONVERSION: &str = "conversion event";
    /// The Braze email templates of the options' `template`s (synced by `offerloop templates sync`).
    pub const TEMPLATE: &str = "email template";
}

/// How a check ended.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Ready (✓).
    Pass,
    /// Will not work as intended (✗): `offerloop check` exits non-zero.
    Fail,
    /// Works, but deserves a look (⚠).
    Warn,
}

impl CheckStatus {
    /// The mark printed for people: ✓, ✗ or ⚠.
    pub fn mark(self) -> &'static str {
        match self {
            Self::Pass => "✓",
            Self::Fail => "✗",
            Self::Warn => "⚠",
        }
    }
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Warn => "warn",
        })
    }
}

/// One row of `offerloop check`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct CheckResult {
    /// What was checked: one of [`names`].
    pub name: String,
    /// How it ended.
    pub status: CheckStatus,
    /// What was found, naming the object (campaign id, property, ...).
    pub detail: String,
    /// How to fix it (always set on a failure, sometimes on a warning).
    pub fix: Option<String>,
}

impl CheckResult {
    fn new(name: &str, status: CheckStatus, detail: impl Into<String>, fix: Option<String>) -> Self {
        Self {
            name: name.to_owned(),
            status,
            detail: detail.into(),
            fix,
        }
    }

    fn pass(name: &str, detail: impl Into<String>) -> Self {
        Self::new(name, CheckStatus::Pass, detail, None)
    }

    fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, CheckStatus::Fail, detail, Some(fix.into()))
    }

    fn warn(name: &str, detail: impl Into<String>, fix: Option<String>) -> Self {
        Self::new(name, CheckStatus::Warn, detail, fix)
    }
}

/// The permissions row from the CLI's probes: one `(endpoint, why the use case needs it, status)`
/// per endpoint. ✗ when any permission is missing or could not be probed.
pub fn permission_check<'a>(
    probes: impl IntoIterator<Item = (Endpoint, &'a str, &'a PermissionStatus)>,
) -> CheckResult {
    let mut held = 0usize;
    let mut missing = Vec::new();
    let mut permissions = Vec::new();
    let mut failed = Vec::new();
    for (endpoint, why, status) in probes {
        match status {
            PermissionStatus::Granted => held += 1,
            PermissionStatus::Missing => {
                missing.push(format!("`{}` ({why})", endpoint.permission()));
                permissions.push(format!("`{}`", endpoint.permission()));
            }
            PermissionStatus::Failed(e) => failed.push(format!("`{}`: {e}", endpoint.permission())),
        }
    }
    if !failed.is_empty() {
        return CheckResult::fail(
            names::PERMISSIONS,
            format!("could not probe {}", failed.join("; ")),
            "check the REST endpoint, the API key and the network, then run `offerloop check` again",
        );
    }
    if !missing.is_empty() {
        let list = permissions.join(", ");
        return CheckResult::fail(
            names::PERMISSIONS,
            format!("the API key lacks {}", missing.join(", ")),
            format!("add {list} to the key in Braze (Settings > APIs and Identifiers), or create a key with them"),
        );
    }
    CheckResult::pass(
        names::PERMISSIONS,
        format!("the API key holds all {held} permission(s) the use case needs"),
    )
}

// ------------------------------------------------------------------------------------------------
// What the checks share.

/// The fix of a row whose read failed for a reason other than a missing object or permission.
const RETRY_FIX: &str = "check the REST endpoint and the network, then run `offerloop check` again";

/// What a read error means for a check.
pub(super) enum ReadFailure {
    /// Braze does not know the id (400 "Invalid … ID" or 404).
    Missing,
    /// The key lacks the permission: the permissions row reports it.
    NoPermission(&'static str),
    /// Anything else (network, server, decoding).
    Other(String),
}

pub(super) fn classify(error: &BrazeError) -> ReadFailure {
    match error {
        BrazeError::BadRequest { .. } | BrazeError::NotFound { .. } => ReadFailure::Missing,
        BrazeError::MissingPermission { permission, .. } => ReadFailure::NoPermission(permission),
        other => ReadFailure::Other(other.to_string()),
    }
}

pub(super) fn not_checked(name: &str, what: &str, permission: &str) -> CheckResult {
    CheckResult::warn(
        name,
        format!("{what}: not checked, the API key lacks `{permission}` (see permissions)"),
        None,
    )
}

/// Checks that `use_case` is ready to run against the workspace behind `api`, with read calls only;
/// see the [module docs](self). The permissions row is the CLI's ([`permission_check`]): put it first.
/// Never fails: a read that fails becomes a row.
pub async fn preflight(api: &dyn BrazeApi, use_case: &UseCase) -> Vec<CheckResult> {
    let mut rows = vec![power::segment_check(api, use_case).await];
    let (campaigns, canvases) = audit::targets(use_case);
    let mut sources = Vec::new();
    let mut unread = Vec::new();
    let mut read_campaigns = Vec::new();
    for (id, users) in &campaigns {
        let (campaign_rows, details) = audit::campaign_checks(api, id, users).await;
        rows.extend(campaign_rows);
        match details {
            Some(details) => {
                sources.extend(liquid::campaign_sources(id, &details));
                read_campaigns.push((id.clone(), details));
            }
            None => unread.push(format!("campaign `{id}`")),
        }
    }
    for (id, users) in &canvases {
        let (canvas_rows, details) = audit::canvas_checks(api, id, users).await;
        rows.extend(canvas_rows);
        match details {
            Some(details) => sources.extend(liquid::canvas_sources(id, &details)),
            None => unread.push(format!("canvas `{id}`")),
        }
    }
    let (template_rows, template_sources) = templates::template_checks(api, use_case, &mut unread).await;
    rows.extend(template_rows);
    sources.extend(template_sources);
    rows.extend(liquid::liquid_checks(use_case, &sources, &unread));
    if read_campaigns.len() == campaigns.len() {
        rows.extend(conversions::conversion_checks(use_case, &read_campaigns));
    } else {
        rows.push(CheckResult::warn(
            names::CONVERSION,
            "not checked for every campaign: some could not be read",
            None,
        ));
        rows.extend(
            conversions::conversion_checks(use_case, &read_campaigns)
                .into_iter()
                .filter(|r| r.status != CheckStatus::Pass),
        );
    }
    rows
}

#[cfg(test)]
mod tests {
    use offerloop_braze::MockBrazeApi;
    use offerloop_braze::api::catalog::{CampaignDetailsResponse, SegmentDataSeriesResponse, SegmentDetailsResponse};
    use offerloop_braze::api::templates::{EmailTemplateInfo, EmailTemplateListResponse};
    use offerloop_braze::limits::TEMPLATE_LIST_MAX_LIMIT;
    use serde_json::json;

    use super::*;

    /// A Liquid body that reads every property the winback example sends, each guarded where needed.
    pub(super) const EVERY_PROPERTY: &str = "{{api_trigger_properties.${offer}}}{{api_trigger_properties.${send_time}}}{{api_trigger_properties.${subject}}}{{api_trigger_properties.${subject_text}}}{% if api_trigger_properties.${discount_pct} %}{{api_trigger_properties.${coupon_prefix}}}{% endif %}{% if api_trigger_properties.${free_shipping} %}!{% endif %}";

    /// Each row's `(name, status)`.
    pub(super) fn statuses(rows: &[CheckResult]) -> Vec<(&str, CheckStatus)> {
        rows.iter().map(|r| (r.name.as_str(), r.status)).collect()
    }

    /// The winback example with a Braze email template (`wb-miss-you`) on its `subject.miss_you` option.
    pub(super) fn winback_with_template() -> UseCase {
        let path = format!("{}/../../examples/winback.toml", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "properties = { subject_text = \"We miss you, come see what's new\" }",
            "properties = { subject_text = \"We miss you, come see what's new\" }\n  template = { name = \"wb-miss-you\", html = \"miss_you.html\" }",
        );
        offerloop_domain::config::parse_use_case(&text, &path).unwrap()
    }

    #[test]
    fn permission_rows_name_what_is_missing() {
        let granted = PermissionStatus::Granted;
        let missing = PermissionStatus::Missing;
        let row = permission_check([
            (Endpoint::CampaignsDetails, "check campaigns", &granted),
            (Endpoint::SegmentsDetails, "check the segment", &granted),
        ]);
        assert_eq!((row.status, row.detail.contains("all 2")), (CheckStatus::Pass, true));
        let row = permission_check([
            (Endpoint::CampaignsDetails, "check campaigns", &missing),
            (Endpoint::SegmentsDetails, "check the segment", &granted),
        ]);
        assert_eq!(row.status, CheckStatus::Fail);
        assert!(
            row.detail.contains("`campaigns.details` (check campaigns)"),
            "{}",
            row.detail
        );
        assert!(row.fix.unwrap().starts_with("add `campaigns.details` to the key"));
        let failed = PermissionStatus::Failed(BrazeError::Config("no route".to_owned()));
        let row = permission_check([(Endpoint::CampaignsDetails, "check campaigns", &failed)]);
        assert_eq!(row.status, CheckStatus::Fail);
        assert!(row.detail.contains("could not probe"));
    }

    /// Campaign details as the simulator answers them: API-triggered, live, one `channel` message.
    fn campaign(channel: &str, body: &str) -> CampaignDetailsResponse {
        serde_json::from_value(json!({
            "name": format!("Win-back {channel}"),
            "archived": false, "draft": false, "enabled": true,
            "schedule_type": "api_triggered",
            "channels": [channel],
            "messages": {"m-1": {"channel": channel, "name": "Variant 1", "body": body}},
            "conversion_behaviors": [{"type": "Makes Any Purchase", "window": 259_200}],
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn preflight_reads_templates_and_makes_only_read_calls() {
        let use_case = winback_with_template();

        // Every other method of the mock panics when called: the check only reads.
        let mut api = MockBrazeApi::new();
        api.expect_segment_details()
            .times(1)
            .returning(|_| Ok(SegmentDetailsResponse::default()));
        api.expect_segment_data_series().times(1).returning(|r| {
            assert_eq!(r.length, SEGMENT_SERIES_DAYS);
            Ok(serde_json::from_value::<SegmentDataSeriesResponse>(
                json!({"data": [{"time": "2026-01-04", "size": 1_000}, {"time": "2026-01-05", "size": 2_000_000}, {"time": "2026-01-06"}]}),
            )
            .unwrap())
        });
        api.expect_campaign_details().times(3).returning(|r| {
            Ok(match r.campaign_id.as_str() {
                "6f1c2a9e-winback-email" => campaign("email", EVERY_PROPERTY),
                "a27d0c41-winback-sms" => campaign("sms", "Hi"),
                _ => campaign("android_push", "Hi"),
            })
        });
        api.expect_list_email_templates().times(1).returning(|r| {
            assert_eq!((r.limit, r.offset), (Some(TEMPLATE_LIST_MAX_LIMIT), Some(0)));
            Ok(serde_json::from_value::<EmailTemplateListResponse>(json!({
                "count": 2,
                "templates": [
                    {"email_template_id": "t-0", "template_name": "other"},
                    {"email_template_id": "t-1", "template_name": "wb-miss-you"},
                ],
            }))
            .unwrap())
        });
        api.expect_email_template_info().times(1).returning(|r| {
            assert_eq!(r.email_template_id, "t-1");
            Ok(serde_json::from_value::<EmailTemplateInfo>(json!({
                "email_template_id": "t-1", "template_name": "wb-miss-you",
                "subject": "{{api_trigger_properties.${subject_text}}}",
                "body": "<p>{{api_trigger_properties.${loyalty_tier}}}</p>",
            }))
            .unwrap())
        });
        let rows = preflight(&api, &use_case).await;
        assert_eq!(
            statuses(&rows),
            [
                (names::SEGMENT, CheckStatus::Pass),
                (names::CAMPAIGN, CheckStatus::Pass),
                (names::CAMPAIGN, CheckStatus::Pass),
                (names::CAMPAIGN, CheckStatus::Pass),
                (names::TEMPLATE, CheckStatus::Pass),
                (names::LIQUID_UNKNOWN, CheckStatus::Fail),
                (names::CONVERSION, CheckStatus::Pass),
            ],
            "{rows:#?}"
        );
        assert!(
            rows[0].detail.contains("2,000,000 customers"),
            "the latest size: {}",
            rows[0].detail
        );
        assert!(
            rows[5]
                .detail
                .contains("template `wb-miss-you` (option `subject.miss_you`)"),
            "{}",
            rows[5].detail
        );
    }
}
