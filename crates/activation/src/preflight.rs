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
//!    conversion behaviours (a ⚠ otherwise: Braze's own reports would count something else).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use offerloop_braze::api::catalog::PagedRequest;
use offerloop_braze::api::catalog::{
    CampaignDetailsRequest, CampaignDetailsResponse, CampaignMessage, CanvasDetailsRequest, CanvasDetailsResponse,
    ConversionBehavior, SegmentDataSeriesRequest, SegmentDetailsRequest,
};
use offerloop_braze::api::templates::{EmailTemplateInfoRequest, EmailTemplateListRequest, TEMPLATE_LIST_MAX_LIMIT};
use offerloop_braze::probe::PermissionStatus;
use offerloop_braze::{BrazeApi, BrazeError, Endpoint};
use offerloop_domain::UseCase;
use offerloop_domain::dimension::{Channel, MessageTarget, OptionPayload};
use offerloop_domain::metric::{ConversionOn, MetricKind};
use offerloop_domain::usecase::AudienceSource;
use serde::Serialize;
use serde_json::Value;
use statrs::distribution::{ContinuousCDF, Normal};

use crate::plan;

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
// Statistical power of the holdout.

/// Baseline conversion rate assumed for binary metrics when stating the minimum detectable uplift.
pub const ASSUMED_BASELINE: f64 = 0.05;
/// A binary metric's minimum detectable uplift above this share of the baseline is a ⚠.
pub const WARN_RELATIVE_MDE: f64 = 0.20;
/// A binary metric's minimum detectable uplift above this share of the baseline is a ✗.
pub const FAIL_RELATIVE_MDE: f64 = 1.0;
/// A value metric's minimum detectable uplift above this many standard deviations is a ⚠.
pub const WARN_MDE_SD: f64 = 0.05;
/// A value metric's minimum detectable uplift above this many standard deviations is a ✗.
pub const FAIL_MDE_SD: f64 = 0.25;
/// Days of `/segments/data_series` read for the segment's recent size.
pub const SEGMENT_SERIES_DAYS: u32 = 7;

/// `z₀.₉₇₅ + z₀.₈ ≈ 2.8016`: the two-sided 95 % confidence and 80 % power multiplier.
pub fn power_multiplier() -> f64 {
    let normal = Normal::standard();
    normal.inverse_cdf(0.975) + normal.inverse_cdf(0.8)
}

/// The minimum detectable difference of means, in standard deviations of the reward, between
/// `n_treatment` and `n_control` customers (two-sample normal approximation, equal variances):
/// `(z₀.₉₇₅ + z₀.₈) · √(1/n_t + 1/n_c)`. `None` when a group has fewer than one customer.
pub fn minimum_detectable_effect(n_treatment: f64, n_control: f64) -> Option<f64> {
    (n_treatment >= 1.0 && n_control >= 1.0).then(|| power_multiplier() * (1.0 / n_treatment + 1.0 / n_control).sqrt())
}

/// The holdout's power for an audience of a given size.
#[derive(Clone, Copy, PartialEq, Debug, Serialize)]
pub struct Power {
    /// Customers in the audience.
    pub audience: u64,
    /// Expected treated customers (the policy decides): `audience · (1 − control − random control)`.
    pub n_treatment: f64,
    /// Expected control customers: `audience · control`.
    pub n_control: f64,
    /// [`minimum_detectable_effect`] of the two groups, in standard deviations.
    pub mde_sd: Option<f64>,
}

impl Power {
    /// The power of an audience of `audience` customers split by the holdout shares.
    pub fn new(audience: u64, control: f64, random_control: f64) -> Self {
        let n = audience as f64;
        let n_control = n * control;
        let n_treatment = n * (1.0 - control - random_control).max(0.0);
        Self {
            audience,
            n_treatment,
            n_control,
            mde_sd: minimum_detectable_effect(n_treatment, n_control),
        }
    }

    /// For a binary metric at `baseline`: the minimum detectable uplift in absolute terms (a rate,
    /// e.g. 0.0204 for 2.04 percentage points), `σ = √(p(1 − p))` times [`Power::mde_sd`].
    pub fn binary_mde(&self, baseline: f64) -> Option<f64> {
        self.mde_sd.map(|sd| sd * (baseline * (1.0 - baseline)).sqrt())
    }
}

/// Thousands separated by commas, for counts people read.
fn count(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The segment row's verdict on a measured size.
fn power_result(use_case: &UseCase, segment_id: &str, size: u64) -> CheckResult {
    let control = use_case.holdout.control_fraction().get();
    let random_control = use_case.holdout.random_control_fraction().get();
    if size == 0 {
        return CheckResult::warn(
            names::SEGMENT,
            format!(
                "segment `{segment_id}` exists but Braze reports 0 customers in it over the last {SEGMENT_SERIES_DAYS} days"
            ),
            Some(
                "check the segment's filters in Braze; a new segment's size appears after Braze computes it".to_owned(),
            ),
        );
    }
    if control <= 0.0 {
        return CheckResult::warn(
            names::SEGMENT,
            format!(
                "segment `{segment_id}`: {} customers, but the holdout has no control group, so uplift cannot be measured",
                count(size as f64)
            ),
            Some("set `holdout.control_fraction` (e.g. 0.1)".to_owned()),
        );
    }
    let power = Power::new(size, control, random_control);
    let groups = format!(
        "{} customers: about {} treated, {} control ({:.0} % control share)",
        count(size as f64),
        count(power.n_treatment),
        count(power.n_control),
        control * 100.0
    );
    let fix = format!(
        "use a larger audience segment, or raise `holdout.control_fraction` ({:.0} % now) toward 50 %",
        control * 100.0
    );
    let Some(sd) = power.mde_sd else {
        return CheckResult::fail(
            names::SEGMENT,
            format!("segment `{segment_id}`: {groups}: a group would be empty, so uplift cannot be measured"),
            fix,
        );
    };
    let (status, what) = if use_case.metric.kind.is_binary() {
        let absolute = power.binary_mde(ASSUMED_BASELINE).unwrap_or(f64::INFINITY);
        let relative = absolute / ASSUMED_BASELINE;
        let status = if relative > FAIL_RELATIVE_MDE {
            CheckStatus::Fail
        } else if relative > WARN_RELATIVE_MDE {
            CheckStatus::Warn
        } else {
            CheckStatus::Pass
        };
        (
            status,
            format!(
                "minimum detectable uplift {:.2} percentage points on an assumed {:.0} % baseline ({:.0} % relative)",
                absolute * 100.0,
                ASSUMED_BASELINE * 100.0,
                relative * 100.0
            ),
        )
    } else {
        let status = if sd > FAIL_MDE_SD {
            CheckStatus::Fail
        } else if sd > WARN_MDE_SD {
            CheckStatus::Warn
        } else {
            CheckStatus::Pass
        };
        (
            status,
            format!("minimum detectable uplift {sd:.3} standard deviations of the reward"),
        )
    };
    let detail = format!("segment `{segment_id}`: {groups}; {what} at 95 % confidence and 80 % power");
    match status {
        CheckStatus::Pass => CheckResult::pass(names::SEGMENT, detail),
        CheckStatus::Warn => CheckResult::warn(
            names::SEGMENT,
            format!("{detail}: only a large effect will be measurable"),
            Some(fix),
        ),
        CheckStatus::Fail => CheckResult::fail(
            names::SEGMENT,
            format!("{detail}: too small to measure any realistic effect"),
            fix,
        ),
    }
}

// ------------------------------------------------------------------------------------------------
// Liquid.

/// Where a Liquid reference reads from.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LiquidNamespace {
    /// `api_trigger_properties.${…}`: an API-triggered campaign's per-recipient properties.
    ApiTriggerProperties,
    /// `canvas_entry_properties.${…}`: a canvas's entry properties (older name of `context`).
    CanvasEntryProperties,
    /// `context.${…}`: a canvas's context.
    Context,
    /// `custom_attribute.${…}`: a profile attribute.
    CustomAttribute,
}

impl LiquidNamespace {
    /// Every namespace.
    pub const ALL: [Self; 4] = [
        Self::ApiTriggerProperties,
        Self::CanvasEntryProperties,
        Self::Context,
        Self::CustomAttribute,
    ];

    /// The Liquid object name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiTriggerProperties => "api_trigger_properties",
            Self::CanvasEntryProperties => "canvas_entry_properties",
            Self::Context => "context",
            Self::CustomAttribute => "custom_attribute",
        }
    }

    /// Whether it carries the properties offerloop sends with a message (all but custom attributes).
    pub fn is_property(self) -> bool {
        !matches!(self, Self::CustomAttribute)
    }
}

/// One reference found by [`scan_liquid`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LiquidRef {
    /// The namespace.
    pub namespace: LiquidNamespace,
    /// The name inside `${…}`.
    pub name: String,
    /// Followed, in the same tag, by a `default:` filter.
    pub has_default: bool,
    /// Part of an `{% if %}`, `{% elsif %}`, `{% unless %}` or `{% case %}` condition (a test, which
    /// is harmless when the property is absent).
    pub in_condition: bool,
    /// Property names (of any property namespace) whose presence the enclosing branches test: the
    /// reference renders only when each of them is present. For `a or b`, only names in every clause.
    pub guards: BTreeSet<String>,
}

impl LiquidRef {
    /// The reference as written: `namespace.${name}`.
    pub fn text(&self) -> String {
        format!("{}.${{{}}}", self.namespace.as_str(), self.name)
    }
}

/// One Liquid tag: `{{ … }}` (output) or `{% … %}` (logic), its inside and where it ends.
struct Tag<'t> {
    logic: bool,
    inner: &'t str,
    end: usize,
}

/// The next tag at or after byte `from`. Quoted strings and `${…}` inside a tag are skipped when
/// looking for its end, so `{{api_trigger_properties.${x}}}` ends after the third brace.
fn next_tag(text: &str, from: usize) -> Option<Tag<'_>> {
    let bytes = text.as_bytes();
    let mut start = from;
    let logic = loop {
        let at = text.get(start..)?.find('{')? + start;
        match bytes.get(at + 1) {
            Some(b'{') => {
                start = at;
                break false;
            }
            Some(b'%') => {
                start = at;
                break true;
            }
            Some(_) => start = at + 1,
            None => return None,
        }
    };
    let close = if logic { b'%' } else { b'}' };
    let mut i = start + 2;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if b == b'$' && bytes.get(i + 1) == Some(&b'{') => {
                match text.get(i..).and_then(|rest| rest.find('}')) {
                    Some(offset) => i += offset,
                    None => i = bytes.len(),
                }
            }
            None if b == close && bytes.get(i + 1) == Some(&b'}') => {
                return Some(Tag {
                    logic,
                    inner: text.get(start + 2..i).unwrap_or(""),
                    end: i + 2,
                });
            }
            None => {}
        }
        i += 1;
    }
    Some(Tag {
        logic,
        inner: text.get(start + 2..).unwrap_or(""),
        end: bytes.len(),
    })
}

/// Every `namespace.${name}` in `expr`, with its byte offset, in order.
fn find_refs(expr: &str) -> Vec<(usize, LiquidNamespace, String)> {
    let mut found = Vec::new();
    for namespace in LiquidNamespace::ALL {
        let needle = format!("{}.${{", namespace.as_str());
        let mut from = 0;
        while let Some(offset) = expr.get(from..).and_then(|rest| rest.find(&needle)) {
            let at = from + offset;
            from = at + needle.len();
            let standalone = expr[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
            let Some(len) = expr[from..].find('}') else {
                break;
            };
            let name = expr[from..from + len].trim();
            if standalone && !name.is_empty() {
                found.push((at, namespace, name.to_owned()));
            }
            from += len;
        }
    }
    found.sort_by_key(|(at, _, _)| *at);
    found
}

/// The byte offset of the first `| default` filter in `expr`, if any.
fn default_filter_at(expr: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(offset) = expr.get(from..).and_then(|rest| rest.find('|')) {
        let at = from + offset;
        if expr[at + 1..].trim_start().starts_with("default") {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The property names a condition guarantees present: those named in every `or` clause.
fn guard_set(condition: &str) -> BTreeSet<String> {
    let mut clauses = condition.split(" or ").map(|clause| {
        find_refs(clause)
            .into_iter()
            .filter(|(_, ns, _)| ns.is_property())
            .map(|(_, _, name)| name)
            .collect::<BTreeSet<String>>()
    });
    let first = clauses.next().unwrap_or_default();
    clauses.fold(first, |acc, clause| acc.intersection(&clause).cloned().collect())
}

/// Which block a frame of the scanner's stack is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Block {
    If,
    Unless,
    Case,
    For,
}

/// An open block and what its current branch guarantees.
#[derive(Debug)]
struct Frame {
    block: Block,
    /// What the block's own condition tests (an `unless`'s `else`, a `case`'s `when`).
    condition: BTreeSet<String>,
    /// What the current branch guarantees present.
    active: BTreeSet<String>,
}

/// Every `api_trigger_properties`, `canvas_entry_properties`, `context` and `custom_attribute`
/// reference inside the Liquid tags of `text`, in order, with what guards it.
///
/// A small scanner, not a Liquid parser: it follows `if`/`elsif`/`else`/`unless`/`case`/`when`/`for`
/// blocks to know which properties the current branch tests for, skips `raw` and `comment` blocks,
/// and treats a `| default` filter in a tag as covering the references before it. It does not
/// evaluate comparisons: `{% if x == nil %}` counts as a test of `x`, like `{% if x %}`.
pub fn scan_liquid(text: &str) -> Vec<LiquidRef> {
    let mut out = Vec::new();
    let mut frames: Vec<Frame> = Vec::new();
    let mut skip_until: Option<&str> = None;
    let mut at = 0;
    while let Some(tag) = next_tag(text, at) {
        at = tag.end;
        let inner = tag.inner.trim().trim_matches('-').trim();
        let (word, args) = inner
            .split_once(char::is_whitespace)
            .map_or((inner, ""), |(w, a)| (w, a.trim()));
        if let Some(end) = skip_until {
            if tag.logic && word == end {
                skip_until = None;
            }
            continue;
        }
        let guards =
            |frames: &[Frame]| -> BTreeSet<String> { frames.iter().flat_map(|f| f.active.iter().cloned()).collect() };
        let push_expression = |out: &mut Vec<LiquidRef>, expr: &str, guards: BTreeSet<String>| {
            let default_at = default_filter_at(expr);
            for (pos, namespace, name) in find_refs(expr) {
                out.push(LiquidRef {
                    namespace,
                    name,
                    has_default: default_at.is_some_and(|d| pos < d),
                    in_condition: false,
                    guards: guards.clone(),
                });
            }
        };
        let push_condition = |out: &mut Vec<LiquidRef>, expr: &str, guards: BTreeSet<String>| {
            for (_, namespace, name) in find_refs(expr) {
                out.push(LiquidRef {
                    namespace,
                    name,
                    has_default: false,
                    in_condition: true,
                    guards: guards.clone(),
                });
            }
        };
        if !tag.logic {
            push_expression(&mut out, inner, guards(&frames));
            continue;
        }
        match word {
            "raw" => skip_until = Some("endraw"),
            "comment" => skip_until = Some("endcomment"),
            "if" | "unless" | "case" => {
                push_condition(&mut out, args, guards(&frames));
                let condition = guard_set(args);
                let (block, active) = match word {
                    "if" => (Block::If, condition.clone()),
                    "unless" => (Block::Unless, BTreeSet::new()),
                    _ => (Block::Case, BTreeSet::new()),
                };
                frames.push(Frame {
                    block,
                    condition,
                    active,
                });
            }
            "elsif" => {
                let outer = guards(frames.split_last().map_or(&[][..], |(_, rest)| rest));
                push_condition(&mut out, args, outer);
                if let Some(frame) = frames.last_mut() {
                    frame.active = guard_set(args);
                }
            }
            "when" => {
                if let Some(frame) = frames.last_mut().filter(|f| f.block == Block::Case) {
                    frame.active = frame.condition.clone();
                }
            }
            "else" => {
                if let Some(frame) = frames.last_mut() {
                    frame.active = match frame.block {
                        Block::Unless => frame.condition.clone(),
                        Block::If | Block::Case | Block::For => BTreeSet::new(),
                    };
                }
            }
            "for" => {
                push_expression(&mut out, args, guards(&frames));
                frames.push(Frame {
                    block: Block::For,
                    condition: BTreeSet::new(),
                    active: BTreeSet::new(),
                });
            }
            "endif" | "endunless" | "endcase" | "endfor" => {
                let block = match word {
                    "endif" => Block::If,
                    "endunless" => Block::Unless,
                    "endcase" => Block::Case,
                    _ => Block::For,
                };
                if let Some(i) = frames.iter().rposition(|f| f.block == block) {
                    frames.truncate(i);
                }
            }
            _ => push_expression(&mut out, args, guards(&frames)),
        }
    }
    out
}

/// What kind of Braze object a scanned text belongs to, which decides the namespaces it may read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SourceKind {
    Campaign,
    Canvas,
    /// An email template: a campaign or a canvas may use it, so every property namespace is fine.
    Template,
}

impl SourceKind {
    fn accepts(self, namespace: LiquidNamespace) -> bool {
        match self {
            Self::Campaign => namespace == LiquidNamespace::ApiTriggerProperties,
            Self::Canvas => matches!(
                namespace,
                LiquidNamespace::CanvasEntryProperties | LiquidNamespace::Context
            ),
            Self::Template => namespace.is_property(),
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Self::Campaign => "`api_trigger_properties` (an API-triggered campaign)",
            Self::Canvas => "`context` or `canvas_entry_properties` (a canvas)",
            Self::Template => "the properties of the campaign or canvas that uses it",
        }
    }
}

/// The Liquid-bearing fields of one message.
#[derive(Debug)]
struct LiquidSource {
    /// "campaign `id` message `Variant 1` (email)".
    label: String,
    kind: SourceKind,
    /// (field path, text).
    fields: Vec<(String, String)>,
}

/// Every string field of a message (nested objects and arrays included), by path.
fn message_fields(message: &CampaignMessage) -> Vec<(String, String)> {
    fn walk(path: String, value: &Value, out: &mut Vec<(String, String)>) {
        match value {
            Value::String(s) => out.push((path, s.clone())),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(format!("{path}[{i}]"), item, out);
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    walk(format!("{path}.{k}"), v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (key, value) in &message.fields {
        walk(key.clone(), value, &mut out);
    }
    out
}

fn message_source(kind: SourceKind, owner: &str, id: &str, message: &CampaignMessage) -> LiquidSource {
    let name = message.name.as_deref().unwrap_or(id);
    let channel = message.channel.as_deref().unwrap_or("?");
    LiquidSource {
        label: format!("{owner} message `{name}` ({channel})"),
        kind,
        fields: message_fields(message),
    }
}

/// The Liquid rows for the scanned sources; `unread` names the targets whose messages could not be
/// read (their references are not checked, and "unused" is not judged).
fn liquid_checks(use_case: &UseCase, sources: &[LiquidSource], unread: &[String]) -> Vec<CheckResult> {
    let sent = plan::sent_properties(use_case);
    let always = plan::always_sent_properties(use_case);
    let written = plan::written_attributes(use_case);
    let prefix = use_case.activation.attribute_prefix.as_str();
    let sent_list = || sent.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
    let mut rows: Vec<CheckResult> = Vec::new();
    let mut push = |row: CheckResult| {
        if !rows.contains(&row) {
            rows.push(row);
        }
    };
    let mut used: BTreeSet<&str> = BTreeSet::new();
    let mut references = 0usize;
    for source in sources {
        for (field, text) in &source.fields {
            for r in scan_liquid(text) {
                references += 1;
                let place = format!("`{}` in {} {field}", r.text(), source.label);
                if r.namespace == LiquidNamespace::CustomAttribute {
                    let offerloops = !prefix.is_empty() && r.name.starts_with(prefix);
                    if offerloops && !written.contains(&r.name) {
                        let fix = if use_case.activation.write_profile_attributes {
                            let list = written.iter().map(String::as_str).collect::<Vec<_>>().join(", ");
                            format!("correct the name: offerloop writes {list}")
                        } else {
                            "set `activation.write_profile_attributes = true`, or stop reading the attribute".to_owned()
                        };
                        push(CheckResult::fail(
                            names::LIQUID_ATTRIBUTE,
                            format!("{place}: offerloop never writes custom attribute `{}`", r.name),
                            fix,
                        ));
                    }
                    continue;
                }
                let Some((name, senders)) = sent.get_key_value(&r.name) else {
                    push(CheckResult::fail(
                        names::LIQUID_UNKNOWN,
                        format!("{place}: offerloop never sends `{}`", r.name),
                        format!(
                            "correct the name, or add `{}` to an option's `properties`; offerloop sends: {}",
                            r.name,
                            sent_list()
                        ),
                    ));
                    continue;
                };
                used.insert(name.as_str());
                if !source.kind.accepts(r.namespace) {
                    push(CheckResult::fail(
                        names::LIQUID_NAMESPACE,
                        format!("{place}: this message receives {}", source.kind.expected()),
                        format!("write `{}` with the right namespace", r.name),
                    ));
                    continue;
                }
                let guarded = r.has_default
                    || r.in_condition
                    || always.contains(&r.name)
                    || r.guards
                        .iter()
                        .any(|g| sent.get(g).is_some_and(|gs| gs.is_subset(senders)));
                if !guarded {
                    let options = senders.iter().map(String::as_str).collect::<Vec<_>>().join(", ");
                    push(CheckResult::warn(
                        names::LIQUID_UNGUARDED,
                        format!(
                            "{place}: only options {options} send `{}`; it renders empty for the others",
                            r.name
                        ),
                        Some(format!("add `| default: '…'` or wrap it in `{{% if {} %}}`", r.text())),
                    ));
                }
            }
        }
    }
    if unread.is_empty() {
        let unused: Vec<&str> = sent.keys().map(String::as_str).filter(|k| !used.contains(k)).collect();
        if !unused.is_empty() {
            push(CheckResult::warn(
                names::LIQUID_UNUSED,
                format!(
                    "offerloop sends {} but no message uses {}",
                    unused.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", "),
                    if unused.len() == 1 { "it" } else { "them" }
                ),
                Some(format!(
                    "use {} in a message, or drop {} from the options' `properties` (a dimension's own name is always sent)",
                    if unused.len() == 1 { "it" } else { "them" },
                    if unused.len() == 1 { "it" } else { "them" },
                )),
            ));
        }
    } else {
        push(CheckResult::warn(
            names::LIQUID,
            format!(
                "not checked for {}: their messages could not be read",
                unread.join(", ")
            ),
            None,
        ));
    }
    let clean = !rows
        .iter()
        .any(|r| r.name != names::LIQUID_UNUSED && r.name != names::LIQUID);
    if clean && !sources.is_empty() {
        let messages = sources.len();
        rows.insert(
            0,
            CheckResult::pass(
                names::LIQUID,
                format!("{references} reference(s) in {messages} message(s): every property is one offerloop sends"),
            ),
        );
    }
    rows
}

// ------------------------------------------------------------------------------------------------
// Campaigns, canvases, conversion.

/// What a read error means for a check.
enum ReadFailure {
    /// Braze does not know the id (400 "Invalid … ID" or 404).
    Missing,
    /// The key lacks the permission: the permissions row reports it.
    NoPermission(&'static str),
    /// Anything else (network, server, decoding).
    Other(String),
}

fn classify(error: &BrazeError) -> ReadFailure {
    match error {
        BrazeError::BadRequest { .. } | BrazeError::NotFound { .. } => ReadFailure::Missing,
        BrazeError::MissingPermission { permission, .. } => ReadFailure::NoPermission(permission),
        other => ReadFailure::Other(other.to_string()),
    }
}

fn not_checked(name: &str, what: &str, permission: &str) -> CheckResult {
    CheckResult::warn(
        name,
        format!("{what}: not checked, the API key lacks `{permission}` (see permissions)"),
        None,
    )
}

/// Who uses a campaign or canvas: option ids with their channel (`None` for the default target).
type Users = Vec<(String, Option<Channel>)>;

/// Campaign or canvas ids with who uses them, in order of first mention.
type Targets = Vec<(String, Users)>;

/// The campaigns and canvases the use case sends through, in order of first mention.
fn targets(use_case: &UseCase) -> (Targets, Targets) {
    let mut campaigns: Targets = Vec::new();
    let mut canvases: Targets = Vec::new();
    let mut add = |target: &MessageTarget, user: String, channel: Option<Channel>| {
        let (list, id) = match target {
            MessageTarget::Campaign(id) => (&mut campaigns, id),
            MessageTarget::Canvas(id) => (&mut canvases, id),
        };
        match list.iter_mut().find(|(known, _)| known == id) {
            Some((_, users)) => users.push((user, channel)),
            None => list.push((id.clone(), vec![(user, channel)])),
        }
    };
    for dimension in use_case.actions.dimensions() {
        for option in &dimension.options {
            if let OptionPayload::Channel { channel, target } = &option.payload {
                add(target, format!("`{}`", option.id), Some(*channel));
            }
        }
    }
    if let Some(target) = &use_case.activation.default_target {
        add(target, "the activation default target".to_owned(), None);
    }
    (campaigns, canvases)
}

/// Whether Braze's channel name (`email`, `ios_push`, `trigger_in_app_message`, ...) is `channel`.
fn braze_channel_is(channel: Channel, braze: &str) -> bool {
    let b = braze.to_ascii_lowercase();
    match channel {
        Channel::Email => b == "email",
        Channel::Sms => b == "sms" || b == "mms",
        Channel::Push => b.ends_with("push"),
        Channel::InApp => b.contains("in_app"),
        Channel::ContentCard => b.starts_with("content_card"),
        Channel::Whatsapp => b == "whats_app" || b == "whatsapp",
        Channel::Webhook => b == "webhook",
    }
}

fn users_text(users: &Users) -> String {
    let list: Vec<&str> = users.iter().map(|(u, _)| u.as_str()).collect();
    if users.iter().all(|(_, c)| c.is_some()) {
        format!("option(s) {}", list.join(", "))
    } else {
        list.join(", ")
    }
}

/// The rows of one campaign, and its details when they could be read.
async fn campaign_checks(
    api: &dyn BrazeApi,
    id: &str,
    users: &Users,
) -> (Vec<CheckResult>, Option<CampaignDetailsResponse>) {
    let who = users_text(users);
    let details = match api.campaign_details(CampaignDetailsRequest::new(id)).await {
        Ok(details) => details,
        Err(e) => {
            let row = match classify(&e) {
                ReadFailure::Missing => CheckResult::fail(
                    names::CAMPAIGN_EXISTS,
                    format!("campaign `{id}` ({who}) does not exist in this workspace"),
                    "correct the `campaign_id` (Braze: the campaign's page, API identifier)".to_owned(),
                ),
                ReadFailure::NoPermission(p) => not_checked(names::CAMPAIGN_EXISTS, &format!("campaign `{id}`"), p),
                ReadFailure::Other(message) => CheckResult::fail(
                    names::CAMPAIGN_EXISTS,
                    format!("campaign `{id}` ({who}) could not be read: {message}"),
                    "check the REST endpoint and the network, then run `offerloop check` again",
                ),
            };
            return (vec![row], None);
        }
    };
    let label = match &details.name {
        Some(name) => format!("campaign `{id}` ({name})"),
        None => format!("campaign `{id}`"),
    };
    let mut rows = Vec::new();
    match details.schedule_type.as_deref() {
        Some("api_triggered") => {}
        Some(other) => rows.push(CheckResult::fail(
            names::CAMPAIGN_API_TRIGGERED,
            format!("{label} is delivered `{other}`, not API-triggered: offerloop's sends would be refused"),
            "set its delivery to API-Triggered Delivery in Braze, or point the option at an API-triggered campaign",
        )),
        None => rows.push(CheckResult::warn(
            names::CAMPAIGN_API_TRIGGERED,
            format!("{label}: Braze did not say how it is delivered"),
            Some("make sure its delivery is API-Triggered Delivery".to_owned()),
        )),
    }
    if details.archived {
        rows.push(CheckResult::fail(
            names::CAMPAIGN_ARCHIVED,
            format!("{label} is archived"),
            "unarchive it in Braze, or point the option at a live campaign",
        ));
    } else if details.draft {
        rows.push(CheckResult::fail(
            names::CAMPAIGN_ACTIVE,
            format!("{label} is a draft: it cannot be triggered"),
            "launch the campaign in Braze",
        ));
    } else if !details.enabled {
        rows.push(CheckResult::fail(
            names::CAMPAIGN_ACTIVE,
            format!("{label} is stopped: a trigger succeeds but sends nothing"),
            "resume the campaign in Braze",
        ));
    }
    let message_channels: Vec<&str> = details
        .messages
        .values()
        .filter(|m| !m.is_control())
        .filter_map(|m| m.channel.as_deref())
        .collect();
    let channels: Vec<&str> = if message_channels.is_empty() {
        details.channels.iter().map(String::as_str).collect()
    } else {
        message_channels
    };
    for (option, channel) in users {
        let Some(channel) = channel else { continue };
        if !channels.iter().any(|c| braze_channel_is(*channel, c)) {
            rows.push(CheckResult::fail(
                names::CAMPAIGN_CHANNEL,
                format!(
                    "{label} has no {channel} message, but option {option} sends {channel} through it (it has: {})",
                    if channels.is_empty() {
                        "none".to_owned()
                    } else {
                        channels.join(", ")
                    }
                ),
                format!("add a {channel} message to the campaign, or point option {option} at a {channel} campaign"),
            ));
        }
    }
    let controls: Vec<&str> = details
        .messages
        .iter()
        .filter(|(_, m)| m.is_control())
        .map(|(key, m)| m.name.as_deref().unwrap_or(key.as_str()))
        .collect();
    if !controls.is_empty() {
        rows.push(CheckResult::fail(
            names::CAMPAIGN_CONTROL,
            format!(
                "{label} has a Braze control variant ({}): Braze would withhold the message from part of offerloop's treatment group, and offerloop's control group must be the only one",
                controls.join(", ")
            ),
            "remove the control group from the campaign's variant distribution (0 % control) in Braze",
        ));
    }
    if rows.is_empty() {
        let channel_list: BTreeSet<&str> = channels.iter().copied().collect();
        rows.push(CheckResult::pass(
            names::CAMPAIGN,
            format!(
                "{label}, for {who}: API-triggered, active, {} message(s), no control variant",
                channel_list.into_iter().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    (rows, Some(details))
}

/// The rows of one canvas, and its details when they could be read.
async fn canvas_checks(
    api: &dyn BrazeApi,
    id: &str,
    users: &Users,
) -> (Vec<CheckResult>, Option<CanvasDetailsResponse>) {
    let who = users_text(users);
    let details = match api.canvas_details(CanvasDetailsRequest::new(id)).await {
        Ok(details) => details,
        Err(e) => {
            let row = match classify(&e) {
                ReadFailure::Missing => CheckResult::fail(
                    names::CANVAS_EXISTS,
                    format!("canvas `{id}` ({who}) does not exist in this workspace"),
                    "correct the `canvas_id` (Braze: the canvas's page, API identifier)",
                ),
                ReadFailure::NoPermission(p) => not_checked(names::CANVAS_EXISTS, &format!("canvas `{id}`"), p),
                ReadFailure::Other(message) => CheckResult::fail(
                    names::CANVAS_EXISTS,
                    format!("canvas `{id}` ({who}) could not be read: {message}"),
                    "check the REST endpoint and the network, then run `offerloop check` again",
                ),
            };
            return (vec![row], None);
        }
    };
    let label = match &details.name {
        Some(name) => format!("canvas `{id}` ({name})"),
        None => format!("canvas `{id}`"),
    };
    let mut rows = Vec::new();
    if let Some(other) = details.schedule_type.as_deref().filter(|s| *s != "api_triggered") {
        rows.push(CheckResult::fail(
            names::CANVAS_API_TRIGGERED,
            format!("{label} has `{other}` entry, not API-triggered: offerloop's entries would be refused"),
            "set its entry schedule to API-Triggered in Braze, or point the option at an API-triggered canvas",
        ));
    }
    if details.archived {
        rows.push(CheckResult::fail(
            names::CANVAS_ARCHIVED,
            format!("{label} is archived"),
            "unarchive it in Braze, or point the option at a live canvas",
        ));
    }
    if !details.enabled {
        rows.push(CheckResult::fail(
            names::CANVAS_ENABLED,
            format!("{label} is stopped: entries succeed but nobody receives anything"),
            "resume (or launch) the canvas in Braze",
        ));
    }
    if rows.is_empty() {
        rows.push(CheckResult::pass(
            names::CANVAS,
            format!("{label}, for {who}: API-triggered, enabled, not archived"),
        ));
    }
    (rows, Some(details))
}

/// What the success metric counts, in conversion-behaviour terms.
enum Wanted {
    Event(String),
    Purchase(Option<String>),
    NotComparable(&'static str),
}

fn wanted(kind: &MetricKind) -> Wanted {
    match kind {
        MetricKind::Conversion {
            on: ConversionOn::CustomEvent { event },
        }
        | MetricKind::Renewal { event }
        | MetricKind::EventValue { event, .. } => Wanted::Event(event.clone()),
        MetricKind::Retention {
            active_event: Some(event),
            ..
        } => Wanted::Event(event.clone()),
        MetricKind::Retention { .. } => Wanted::NotComparable("the metric counts customers who do not churn"),
        MetricKind::Conversion {
            on: ConversionOn::Purchase { product },
        }
        | MetricKind::Revenue { product, .. }
        | MetricKind::Arpu { product }
        | MetricKind::Npv { product, .. } => Wanted::Purchase(product.clone()),
    }
}

fn wanted_text(wanted: &Wanted) -> String {
    match wanted {
        Wanted::Event(e) => format!("custom event `{e}`"),
        Wanted::Purchase(None) => "any purchase".to_owned(),
        Wanted::Purchase(Some(p)) => format!("a purchase of `{p}`"),
        Wanted::NotComparable(why) => (*why).to_owned(),
    }
}

fn behaviour_text(b: &ConversionBehavior) -> String {
    let kind = b.kind.to_ascii_lowercase();
    match (&b.custom_event_name, &b.product) {
        (Some(e), _) if kind.contains("custom event") => format!("custom event `{e}`"),
        (_, Some(p)) if kind.contains("purchase") => format!("a purchase of `{p}`"),
        _ if kind.contains("any purchase") => "any purchase".to_owned(),
        _ => format!("\"{}\"", b.kind),
    }
}

fn behaviour_matches(b: &ConversionBehavior, wanted: &Wanted) -> bool {
    let kind = b.kind.to_ascii_lowercase();
    match wanted {
        Wanted::Event(e) => kind.contains("custom event") && b.custom_event_name.as_deref() == Some(e.as_str()),
        Wanted::Purchase(None) => kind.contains("any purchase"),
        Wanted::Purchase(Some(p)) => kind.contains("specific purchase") && b.product.as_deref() == Some(p.as_str()),
        Wanted::NotComparable(_) => true,
    }
}

fn conversion_checks(use_case: &UseCase, campaigns: &[(String, CampaignDetailsResponse)]) -> Vec<CheckResult> {
    let wanted = wanted(&use_case.metric.kind);
    if let Wanted::NotComparable(why) = wanted {
        return vec![CheckResult::pass(
            names::CONVERSION,
            format!("{why}: Braze's conversion behaviours are not compared"),
        )];
    }
    let what = wanted_text(&wanted);
    let mut rows = Vec::new();
    for (id, details) in campaigns {
        if details
            .conversion_behaviors
            .iter()
            .any(|b| behaviour_matches(b, &wanted))
        {
            continue;
        }
        let tracks = if details.conversion_behaviors.is_empty() {
            "no conversion event".to_owned()
        } else {
            details
                .conversion_behaviors
                .iter()
                .map(behaviour_text)
                .collect::<Vec<_>>()
                .join(", ")
        };
        rows.push(CheckResult::warn(
            names::CONVERSION,
            format!("campaign `{id}` tracks {tracks}, but the success metric counts {what}: Braze's reports will disagree with offerloop's"),
            Some(format!("add {what} as the campaign's primary conversion event in Braze")),
        ));
    }
    if rows.is_empty() {
        let detail = if campaigns.is_empty() {
            format!("the metric counts {what}; no campaign to compare (canvas conversion events are not read)")
        } else {
            format!("every campaign tracks {what}, as the success metric does")
        };
        rows.push(CheckResult::pass(names::CONVERSION, detail));
    }
    rows
}

/// The options' email templates (`template.name` → `dimension.option`), in use-case order.
fn option_templates(use_case: &UseCase) -> Vec<(String, String)> {
    use_case
        .actions
        .dimensions()
        .iter()
        .flat_map(|d| {
            d.options.iter().filter_map(move |o| {
                o.template
                    .as_ref()
                    .map(|t| (t.name.clone(), format!("{}.{}", d.name, o.id)))
            })
        })
        .collect()
}

/// The template rows, and the Liquid sources of the templates found in Braze (looked up by name
/// through every page of `/templates/email/list`, then read with `/templates/email/info`). Templates
/// that could not be read are added to `unread`. No request when no option has a template.
async fn template_checks(
    api: &dyn BrazeApi,
    use_case: &UseCase,
    unread: &mut Vec<String>,
) -> (Vec<CheckResult>, Vec<LiquidSource>) {
    let wanted = option_templates(use_case);
    if wanted.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let mut ids: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let request = EmailTemplateListRequest::new().limit(TEMPLATE_LIST_MAX_LIMIT);
    let mut page = 0u32;
    loop {
        let response = match api.list_email_templates(request.with_page(page)).await {
            Ok(response) => response,
            Err(e) => {
                unread.extend(wanted.iter().map(|(name, _)| format!("template `{name}`")));
                let row = match classify(&e) {
                    ReadFailure::NoPermission(p) => not_checked(names::TEMPLATE, "the options' email templates", p),
                    ReadFailure::Missing | ReadFailure::Other(_) => CheckResult::warn(
                        names::TEMPLATE,
                        format!("the email templates could not be listed: {e}"),
                        None,
                    ),
                };
                return (vec![row], Vec::new());
            }
        };
        let len = EmailTemplateListRequest::page_len(&response);
        for template in response.templates {
            if let Some((name, _)) = wanted.iter().find(|(name, _)| *name == template.template_name) {
                ids.entry(name.as_str()).or_default().push(template.email_template_id);
            }
        }
        if len < request.page_size() {
            break;
        }
        page = page.saturating_add(1);
    }
    let mut rows = Vec::new();
    let mut sources = Vec::new();
    for (name, option) in &wanted {
        let label = format!("template `{name}` (option `{option}`)");
        match ids.get(name.as_str()).map(Vec::as_slice) {
            None | Some([]) => {
                unread.push(format!("template `{name}`"));
                rows.push(CheckResult::warn(
                    names::TEMPLATE,
                    format!("{label} is not in Braze yet"),
                    Some("run `offerloop templates sync --use-case FILE`".to_owned()),
                ));
            }
            Some([id]) => match api.email_template_info(EmailTemplateInfoRequest::new(id.clone())).await {
                Ok(info) => {
                    let fields = [
                        ("subject", info.subject),
                        ("preheader", info.preheader),
                        ("body", info.body),
                        ("plaintext_body", info.plaintext_body),
                    ]
                    .into_iter()
                    .filter_map(|(field, text)| text.map(|t| (field.to_owned(), t)))
                    .collect();
                    sources.push(LiquidSource {
                        label: label.clone(),
                        kind: SourceKind::Template,
                        fields,
                    });
                }
                Err(e) => {
                    unread.push(format!("template `{name}`"));
                    rows.push(match classify(&e) {
                        ReadFailure::NoPermission(p) => not_checked(names::TEMPLATE, &label, p),
                        ReadFailure::Missing | ReadFailure::Other(_) => {
                            CheckResult::warn(names::TEMPLATE, format!("{label} could not be read: {e}"), None)
                        }
                    });
                }
            },
            Some(several) => {
                unread.push(format!("template `{name}`"));
                rows.push(CheckResult::warn(
                    names::TEMPLATE,
                    format!(
                        "{label}: {} Braze templates have this name ({})",
                        several.len(),
                        several.join(", ")
                    ),
                    Some("rename all but one in Braze, or give the option another `template.name`".to_owned()),
                ));
            }
        }
    }
    if rows.is_empty() {
        rows.push(CheckResult::pass(
            names::TEMPLATE,
            format!("all {} option template(s) are in Braze", wanted.len()),
        ));
    }
    (rows, sources)
}

/// The segment row.
async fn segment_check(api: &dyn BrazeApi, use_case: &UseCase) -> CheckResult {
    let segment_id = match &use_case.audience.source {
        AudienceSource::Segment { segment_id } => segment_id,
        AudienceSource::IdsFile { path } => {
            return CheckResult::pass(
                names::SEGMENT,
                format!("the audience is the ids file `{path}`: no segment to check"),
            );
        }
    };
    if let Err(e) = api
        .segment_details(SegmentDetailsRequest::new(segment_id.clone()))
        .await
    {
        return match classify(&e) {
            ReadFailure::Missing => CheckResult::fail(
                names::SEGMENT,
                format!("segment `{segment_id}` does not exist in this workspace"),
                "correct `audience.segment_id` (Braze: Segments > the segment, API identifier)",
            ),
            ReadFailure::NoPermission(p) => not_checked(names::SEGMENT, &format!("segment `{segment_id}`"), p),
            ReadFailure::Other(message) => CheckResult::fail(
                names::SEGMENT,
                format!("segment `{segment_id}` could not be read: {message}"),
                "check the REST endpoint and the network, then run `offerloop check` again",
            ),
        };
    }
    let series = api
        .segment_data_series(SegmentDataSeriesRequest::new(segment_id.clone(), SEGMENT_SERIES_DAYS))
        .await;
    match series {
        Ok(series) => match series.data.iter().rev().find_map(|point| point.size) {
            Some(size) => power_result(use_case, segment_id, size),
            None => CheckResult::warn(
                names::SEGMENT,
                format!(
                    "segment `{segment_id}` exists, but Braze reported no size for the last {SEGMENT_SERIES_DAYS} days"
                ),
                Some("enable analytics tracking for the segment in Braze so its size is recorded".to_owned()),
            ),
        },
        Err(e) => match classify(&e) {
            ReadFailure::NoPermission(p) => {
                not_checked(names::SEGMENT, &format!("the size of segment `{segment_id}`"), p)
            }
            ReadFailure::Missing | ReadFailure::Other(_) => CheckResult::warn(
                names::SEGMENT,
                format!("segment `{segment_id}` exists, but its size could not be read: {e}"),
                None,
            ),
        },
    }
}

/// Checks that `use_case` is ready to run against the workspace behind `api`, with read calls only;
/// see the [module docs](self). The permissions row is the CLI's ([`permission_check`]): put it first.
/// Never fails: a read that fails becomes a row.
pub async fn preflight(api: &dyn BrazeApi, use_case: &UseCase) -> Vec<CheckResult> {
    let mut rows = vec![segment_check(api, use_case).await];
    let (campaigns, canvases) = targets(use_case);
    let mut sources = Vec::new();
    let mut unread = Vec::new();
    let mut read_campaigns = Vec::new();
    for (id, users) in &campaigns {
        let (campaign_rows, details) = campaign_checks(api, id, users).await;
        rows.extend(campaign_rows);
        match details {
            Some(details) => {
                let owner = format!("campaign `{id}`");
                for (key, message) in details.messages.iter().filter(|(_, m)| !m.is_control()) {
                    sources.push(message_source(SourceKind::Campaign, &owner, key, message));
                }
                read_campaigns.push((id.clone(), details));
            }
            None => unread.push(format!("campaign `{id}`")),
        }
    }
    for (id, users) in &canvases {
        let (canvas_rows, details) = canvas_checks(api, id, users).await;
        rows.extend(canvas_rows);
        match details {
            Some(details) => {
                for step in &details.steps {
                    let owner = format!("canvas `{id}` step `{}`", step.name);
                    for (key, message) in step.messages.iter().filter(|(_, m)| !m.is_control()) {
                        sources.push(message_source(SourceKind::Canvas, &owner, key, message));
                    }
                }
            }
            None => unread.push(format!("canvas `{id}`")),
        }
    }
    let (template_rows, template_sources) = template_checks(api, use_case, &mut unread).await;
    rows.extend(template_rows);
    sources.extend(template_sources);
    rows.extend(liquid_checks(use_case, &sources, &unread));
    if read_campaigns.len() == campaigns.len() {
        rows.extend(conversion_checks(use_case, &read_campaigns));
    } else {
        rows.push(CheckResult::warn(
            names::CONVERSION,
            "not checked for every campaign: some could not be read",
            None,
        ));
        rows.extend(
            conversion_checks(use_case, &read_campaigns)
                .into_iter()
                .filter(|r| r.status != CheckStatus::Pass),
        );
    }
    rows
}

#[cfg(test)]
mod tests {
    use offerloop_braze::BrazeError;
    use serde_json::json;

    use super::*;
    use crate::plan::tests::example;

    /// `(namespace, name, has_default, in_condition, guards)` of each reference.
    fn check_scan(text: &str, expect: &[(LiquidNamespace, &str, bool, bool, &[&str])]) {
        let got: Vec<(LiquidNamespace, String, bool, bool, Vec<String>)> = scan_liquid(text)
            .into_iter()
            .map(|r| {
                (
                    r.namespace,
                    r.name,
                    r.has_default,
                    r.in_condition,
                    r.guards.into_iter().collect(),
                )
            })
            .collect();
        let want: Vec<(LiquidNamespace, String, bool, bool, Vec<String>)> = expect
            .iter()
            .map(|(ns, name, d, c, g)| {
                (
                    *ns,
                    (*name).to_owned(),
                    *d,
                    *c,
                    g.iter().map(|s| (*s).to_owned()).collect(),
                )
            })
            .collect();
        assert_eq!(got, want, "{text}");
    }

    use LiquidNamespace::{
        ApiTriggerProperties as Api, CanvasEntryProperties as Entry, Context, CustomAttribute as Attr,
    };

    #[test]
    fn scanner_finds_references_inside_tags_only() {
        check_scan(
            "api_trigger_properties.${plain} {{api_trigger_properties.${a}}} and {{ context.${b} | upcase }}",
            &[(Api, "a", false, false, &[]), (Context, "b", false, false, &[])],
        );
        // `}}}` closes the `${…}` first; quotes hide braces; other objects are not references.
        check_scan(
            "{{ '}}' }}{{custom_attribute.${offerloop_offer}}}{{${first_name}}}{{my_context.${x}}}{{event_properties.${y}}}",
            &[(Attr, "offerloop_offer", false, false, &[])],
        );
        check_scan(
            "{% raw %}{{api_trigger_properties.${hidden}}}{% endraw %}{% comment %}{{context.${gone}}}{% endcomment %}{{canvas_entry_properties.${seen}}}",
            &[(Entry, "seen", false, false, &[])],
        );
        // An unterminated tag still yields its references.
        check_scan("{{api_trigger_properties.${cut}", &[(Api, "cut", false, false, &[])]);
    }

    #[test]
    fn scanner_sees_default_filters_before_the_reference_only() {
        check_scan(
            "{{api_trigger_properties.${a} | default: 'x'}}{{api_trigger_properties.${b}|default:api_trigger_properties.${c}}}",
            &[
                (Api, "a", true, false, &[]),
                (Api, "b", true, false, &[]),
                (Api, "c", false, false, &[]),
            ],
        );
        check_scan(
            "{% assign t = api_trigger_properties.${t} | default: 'none' %}{{ api_trigger_properties.${u} | append: 'default' }}",
            &[(Api, "t", true, false, &[]), (Api, "u", false, false, &[])],
        );
    }

    #[test]
    fn scanner_follows_if_elsif_else_unless_and_case() {
        // The winback SMS body.
        check_scan(
            "{{${first_name} | default: 'Hi'}}, come back: {% if api_trigger_properties.${discount_pct} %}{{api_trigger_properties.${discount_pct}}}% off, code {{api_trigger_properties.${coupon_prefix}}}{% elsif api_trigger_properties.${free_shipping} %}free shipping{% else %}{{api_trigger_properties.${after}}}{% endif %}{{api_trigger_properties.${outside}}}",
            &[
                (Api, "discount_pct", false, true, &[]),
                (Api, "discount_pct", false, false, &["discount_pct"]),
                (Api, "coupon_prefix", false, false, &["discount_pct"]),
                (Api, "free_shipping", false, true, &[]),
                (Api, "after", false, false, &[]),
                (Api, "outside", false, false, &[]),
            ],
        );
        // Nested blocks add up; `unless` guards only its `else`; `or` keeps what every clause tests.
        check_scan(
            "{%- if context.${a} and context.${b} -%}{% if context.${c} or context.${a} %}{{context.${x}}}{% endif %}{% endif %}\
             {% unless context.${u} %}{{context.${y}}}{% else %}{{context.${z}}}{% endunless %}\
             {% case context.${k} %}{% when 'v' %}{{context.${w}}}{% else %}{{context.${e}}}{% endcase %}\
             {% for i in context.${list} %}{% else %}{{context.${f}}}{% endfor %}",
            &[
                (Context, "a", false, true, &[]),
                (Context, "b", false, true, &[]),
                (Context, "c", false, true, &["a", "b"]),
                (Context, "a", false, true, &["a", "b"]),
                (Context, "x", false, false, &["a", "b"]),
                (Context, "u", false, true, &[]),
                (Context, "y", false, false, &[]),
                (Context, "z", false, false, &["u"]),
                (Context, "k", false, true, &[]),
                (Context, "w", false, false, &["k"]),
                (Context, "e", false, false, &[]),
                (Context, "list", false, false, &[]),
                (Context, "f", false, false, &[]),
            ],
        );
    }

    #[test]
    fn sent_properties_mirror_the_plan() {
        let use_case = example("winback");
        let sent = plan::sent_properties(&use_case);
        let ids = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<String>>();
        assert_eq!(sent["offer"], ids(&["none", "pct10", "pct20", "free_shipping"]));
        assert_eq!(sent["discount_pct"], ids(&["pct10", "pct20"]));
        assert_eq!(sent["free_shipping"], ids(&["free_shipping"]));
        assert_eq!(sent["subject_text"], ids(&["miss_you", "new_arrivals"]));
        assert_eq!(sent["send_time"], ids(&["morning", "lunch", "evening"]));
        assert!(!sent.contains_key("channel"), "the channel dimension sends nothing");
        assert_eq!(
            plan::always_sent_properties(&use_case),
            ids(&["offer", "send_time", "subject", "subject_text"])
        );
        assert_eq!(
            plan::written_attributes(&use_case),
            ids(&[
                "offerloop_channel",
                "offerloop_offer",
                "offerloop_send_time",
                "offerloop_subject"
            ])
        );
    }

    fn source(kind: SourceKind, body: &str) -> LiquidSource {
        LiquidSource {
            label: "campaign `c` message `m` (email)".to_owned(),
            kind,
            fields: vec![("body".to_owned(), body.to_owned())],
        }
    }

    fn statuses(rows: &[CheckResult]) -> Vec<(&str, CheckStatus)> {
        rows.iter().map(|r| (r.name.as_str(), r.status)).collect()
    }

    #[test]
    fn liquid_rows_judge_each_reference() {
        let use_case = example("winback");
        let every = "{{api_trigger_properties.${offer}}}{{api_trigger_properties.${send_time}}}{{api_trigger_properties.${subject}}}{{api_trigger_properties.${subject_text}}}{% if api_trigger_properties.${discount_pct} %}{{api_trigger_properties.${coupon_prefix}}}{% endif %}{% if api_trigger_properties.${free_shipping} %}!{% endif %}";
        let rows = liquid_checks(&use_case, &[source(SourceKind::Campaign, every)], &[]);
        assert_eq!(statuses(&rows), [(names::LIQUID, CheckStatus::Pass)], "{rows:#?}");

        let rows = liquid_checks(
            &use_case,
            &[
                source(SourceKind::Campaign, every),
                source(
                    SourceKind::Campaign,
                    "{{api_trigger_properties.${coupon_prefix}}}{{context.${offer}}}{{api_trigger_properties.${tier}}}\
                     {{custom_attribute.${offerloop_offer}}}{{custom_attribute.${offerloop_tier}}}{{custom_attribute.${membership}}}",
                ),
            ],
            &[],
        );
        assert_eq!(
            statuses(&rows),
            [
                (names::LIQUID_UNGUARDED, CheckStatus::Warn),
                (names::LIQUID_NAMESPACE, CheckStatus::Fail),
                (names::LIQUID_UNKNOWN, CheckStatus::Fail),
                (names::LIQUID_ATTRIBUTE, CheckStatus::Fail),
            ],
            "{rows:#?}"
        );
        assert!(rows[0].detail.contains("pct10, pct20"), "{rows:#?}");
        assert!(rows[1].detail.contains("api_trigger_properties"), "{rows:#?}");
        assert!(
            rows[3].detail.contains("offerloop_tier") && rows[3].fix.as_deref().unwrap().contains("offerloop_offer")
        );

        // A canvas reads `context`; unused properties are one warning; unread messages skip "unused".
        let rows = liquid_checks(
            &use_case,
            &[source(
                SourceKind::Canvas,
                "{{context.${subject_text}}}{{canvas_entry_properties.${offer}}}",
            )],
            &[],
        );
        assert_eq!(
            statuses(&rows),
            [
                (names::LIQUID, CheckStatus::Pass),
                (names::LIQUID_UNUSED, CheckStatus::Warn)
            ]
        );
        assert!(
            rows[1]
                .detail
                .contains("`coupon_prefix`, `discount_pct`, `free_shipping`, `send_time`, `subject`")
        );
        let rows = liquid_checks(&use_case, &[], &["campaign `x`".to_owned()]);
        assert_eq!(statuses(&rows), [(names::LIQUID, CheckStatus::Warn)]);
    }

    #[test]
    fn the_minimum_detectable_effect_matches_a_hand_computation() {
        // z(0.975) = 1.959964, z(0.8) = 0.841621.
        assert!((power_multiplier() - 2.801585).abs() < 1e-6);
        // 10,000 customers, 10 % control, 5 % random control: 1,000 control and 8,500 treated.
        // √(1/8500 + 1/1000) = √0.00111765 = 0.0334312; × 2.801585 = 0.093661 standard deviations.
        let power = Power::new(10_000, 0.10, 0.05);
        assert!((power.n_control - 1_000.0).abs() < 1e-9 && (power.n_treatment - 8_500.0).abs() < 1e-9);
        let sd = power.mde_sd.unwrap();
        assert!((sd - 0.093661).abs() < 1e-6, "{sd}");
        // At a 5 % baseline σ = √(0.05 · 0.95) = 0.217945: 0.093661 · 0.217945 = 0.020413, i.e.
        // 2.04 percentage points, 40.8 % of the baseline.
        let absolute = power.binary_mde(0.05).unwrap();
        assert!((absolute - 0.020413).abs() < 1e-6, "{absolute}");
        assert!(Power::new(5, 0.1, 0.0).mde_sd.is_none(), "half a control customer");
        assert!(minimum_detectable_effect(10.0, 0.0).is_none());
    }

    #[test]
    fn power_rows_follow_the_thresholds() {
        let use_case = example("winback"); // revenue: standard deviations
        let row = |size| power_result(&use_case, "seg", size);
        assert_eq!(row(0).status, CheckStatus::Warn);
        assert!(row(0).detail.contains("0 customers"));
        // 2,000,000 customers: 0.0066 SD.
        assert_eq!(row(2_000_000).status, CheckStatus::Pass);
        assert!(
            row(2_000_000).detail.contains("2,000,000 customers"),
            "{}",
            row(2_000_000).detail
        );
        assert_eq!(row(10_000).status, CheckStatus::Warn);
        assert_eq!(row(100).status, CheckStatus::Fail);
        assert_eq!(row(5).status, CheckStatus::Fail, "no control customer");
        assert!(row(5).detail.contains("would be empty"));
    }

    #[test]
    fn binary_metrics_are_judged_in_percentage_points() {
        let use_case = example("lead-nurture"); // conversion on `trial_started`
        let row = power_result(&use_case, "seg", 10_000);
        assert!(
            row.detail.contains("percentage points on an assumed 5 % baseline"),
            "{}",
            row.detail
        );
        assert_eq!(row.status, CheckStatus::Warn, "{}", row.detail);
        assert_eq!(power_result(&use_case, "seg", 5_000_000).status, CheckStatus::Pass);
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

    #[test]
    fn conversion_behaviours_are_compared_with_the_metric() {
        let behaviour = |value| serde_json::from_value::<ConversionBehavior>(value).unwrap();
        let any = behaviour(json!({"type": "Makes Any Purchase", "window": 259_200}));
        let sku = behaviour(json!({"type": "Makes Specific Purchase", "product": "sku-42"}));
        let event = behaviour(json!({"type": "Performs Custom Event", "custom_event_name": "trial_started"}));
        assert!(behaviour_matches(&any, &Wanted::Purchase(None)));
        assert!(!behaviour_matches(&sku, &Wanted::Purchase(None)));
        assert!(behaviour_matches(&sku, &Wanted::Purchase(Some("sku-42".into()))));
        assert!(!behaviour_matches(&any, &Wanted::Purchase(Some("sku-42".into()))));
        assert!(behaviour_matches(&event, &Wanted::Event("trial_started".into())));
        assert!(!behaviour_matches(&event, &Wanted::Event("signup".into())));

        let use_case = example("lead-nurture");
        let details = |b: Vec<ConversionBehavior>| CampaignDetailsResponse {
            conversion_behaviors: b,
            ..CampaignDetailsResponse::default()
        };
        let rows = conversion_checks(
            &use_case,
            &[
                ("a".into(), details(vec![any.clone(), event])),
                ("b".into(), details(vec![any])),
            ],
        );
        assert_eq!(statuses(&rows), [(names::CONVERSION, CheckStatus::Warn)]);
        assert!(
            rows[0].detail.contains("campaign `b` tracks any purchase"),
            "{}",
            rows[0].detail
        );
        assert!(rows[0].detail.contains("custom event `trial_started`"));
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
        use offerloop_braze::MockBrazeApi;
        use offerloop_braze::api::catalog::{SegmentDataSeriesResponse, SegmentDetailsResponse};
        use offerloop_braze::api::templates::{EmailTemplateInfo, EmailTemplateListResponse};

        let path = format!("{}/../../examples/winback.toml", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "properties = { subject_text = \"We miss you, come see what's new\" }",
            "properties = { subject_text = \"We miss you, come see what's new\" }\n  template = { name = \"wb-miss-you\", html = \"miss_you.html\" }",
        );
        let use_case = offerloop_domain::config::parse_use_case(&text, &path).unwrap();
        assert_eq!(
            option_templates(&use_case),
            [("wb-miss-you".to_owned(), "subject.miss_you".to_owned())]
        );

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
        let every = "{{api_trigger_properties.${offer}}}{{api_trigger_properties.${send_time}}}{{api_trigger_properties.${subject}}}{{api_trigger_properties.${subject_text}}}{% if api_trigger_properties.${discount_pct} %}{{api_trigger_properties.${coupon_prefix}}}{% endif %}{% if api_trigger_properties.${free_shipping} %}!{% endif %}";
        api.expect_campaign_details().times(3).returning(move |r| {
            Ok(match r.campaign_id.as_str() {
                "6f1c2a9e-winback-email" => campaign("email", every),
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

    #[tokio::test]
    async fn a_template_not_synced_yet_is_a_warning_and_stops_the_unused_judgement() {
        use offerloop_braze::MockBrazeApi;
        use offerloop_braze::api::templates::EmailTemplateListResponse;

        let path = format!("{}/../../examples/winback.toml", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "properties = { subject_text = \"We miss you, come see what's new\" }",
            "properties = { subject_text = \"We miss you, come see what's new\" }\n  template = { name = \"wb-miss-you\", html = \"miss_you.html\" }",
        );
        let use_case = offerloop_domain::config::parse_use_case(&text, &path).unwrap();
        let mut api = MockBrazeApi::new();
        api.expect_list_email_templates()
            .times(1)
            .returning(|_| Ok(EmailTemplateListResponse::default()));
        let mut unread = Vec::new();
        let (rows, sources) = template_checks(&api, &use_case, &mut unread).await;
        assert!(sources.is_empty());
        assert_eq!(statuses(&rows), [(names::TEMPLATE, CheckStatus::Warn)]);
        assert!(rows[0].fix.as_deref().unwrap().contains("templates sync"));
        assert_eq!(unread, ["template `wb-miss-you`"]);
    }

    #[test]
    fn braze_channel_names_map_to_offerloop_channels() {
        assert!(braze_channel_is(Channel::Push, "ios_push") && braze_channel_is(Channel::Push, "android_push"));
        assert!(braze_channel_is(Channel::InApp, "trigger_in_app_message"));
        assert!(braze_channel_is(Channel::ContentCard, "content_cards"));
        assert!(braze_channel_is(Channel::Whatsapp, "whats_app"));
        assert!(!braze_channel_is(Channel::Email, "sms") && !braze_channel_is(Channel::Sms, "email"));
    }
}
