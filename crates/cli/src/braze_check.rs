//! `offerloop braze check --use-case FILE`: does the API key hold every permission the use case needs?
//!
//! The permissions follow from the use case: how the audience is read, which campaigns or canvases
//! deliver its options (sent now or scheduled), whether profile attributes are written, and the
//! analytics its report reads. Each is checked with a side-effect-free probe
//! ([`offerloop_braze::probe`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use offerloop_braze::probe::PermissionStatus;
use offerloop_braze::{BrazeApi, Endpoint};
use offerloop_domain::dimension::OptionPayload;
use offerloop_domain::usecase::AudienceSource;
use offerloop_domain::{DimensionKind, MessageTarget, UseCase};

/// The endpoints a use case calls, each with why.
pub fn required_endpoints(use_case: &UseCase) -> BTreeMap<Endpoint, &'static str> {
    let mut needs = BTreeMap::new();
    match &use_case.audience.source {
        AudienceSource::Segment { .. } => {
            needs.insert(Endpoint::UsersExportSegment, "export the audience segment");
            needs.insert(Endpoint::SegmentsDetails, "check the audience segment exists");
            needs.insert(Endpoint::SegmentsDataSeries, "size the audience for the control group");
        }
        AudienceSource::IdsFile { .. } => {
            needs.insert(Endpoint::UsersExportIds, "export the audience profiles");
        }
    }
    needs.insert(
        Endpoint::UsersExportIds,
        "read outcomes from decided customers' profiles",
    );
    let scheduled = use_case.dimension_of_kind(DimensionKind::SendTime).is_some()
        || use_case.dimension_of_kind(DimensionKind::DayOfWeek).is_some();
    let mut targets: Vec<&MessageTarget> = use_case
        .actions
        .dimensions()
        .iter()
        .flat_map(|d| &d.options)
        .filter_map(|o| match &o.payload {
            OptionPayload::Channel { target, .. } => Some(target),
            _ => None,
        })
        .collect();
    targets.extend(use_case.activation.default_target.as_ref());
    for target in targets {
        match (target, scheduled) {
            (MessageTarget::Campaign(_), false) => {
                needs.insert(Endpoint::CampaignsTriggerSend, "send API-triggered campaigns");
            }
            (MessageTarget::Campaign(_), true) => {
                needs.insert(
                    Endpoint::CampaignsTriggerScheduleCreate,
                    "schedule API-triggered campaigns in local time",
                );
            }
            (MessageTarget::Canvas(_), false) => {
                needs.insert(
                    Endpoint::CanvasTriggerSend,
                    "enter customers into API-triggered canvases",
                );
            }
            (MessageTarget::Canvas(_), true) => {
                needs.insert(
                    Endpoint::CanvasTriggerScheduleCreate,
                    "schedule canvas entries in local time",
                );
            }
        }
        match target {
            MessageTarget::Campaign(_) => {
                needs.insert(Endpoint::CampaignsDetails, "check campaigns before the first send");
                needs.insert(
                    Endpoint::CampaignsDataSeries,
                    "reconcile the report with Braze's campaign analytics",
                );
            }
            MessageTarget::Canvas(_) => {
                needs.insert(Endpoint::CanvasDetails, "check canvases before the first send");
                needs.insert(
                    Endpoint::CanvasDataSeries,
                    "reconcile the report with Braze's canvas analytics",
                );
            }
        }
    }
    if use_case.activation.write_profile_attributes {
        needs.insert(Endpoint::UsersTrack, "write the chosen options to profiles");
    }
    let templates = use_case
        .actions
        .dimensions()
        .iter()
        .flat_map(|d| &d.options)
        .any(|o| o.template.is_some());
    if templates {
        needs.insert(
            Endpoint::TemplatesEmailList,
            "find the options' email templates by name",
        );
        needs.insert(
            Endpoint::TemplatesEmailInfo,
            "compare the options' email templates with their files",
        );
    }
    needs
}

/// One row of the report.
#[derive(Debug)]
pub struct Row {
    /// The endpoint probed.
    pub endpoint: Endpoint,
    /// Why the use case needs it.
    pub why: &'static str,
    /// What the probe found.
    pub status: PermissionStatus,
}

/// Probes every endpoint the use case needs, in order.
pub async fn check(client: &dyn BrazeApi, use_case: &UseCase) -> Vec<Row> {
    let mut rows = Vec::new();
    for (endpoint, why) in required_endpoints(use_case) {
        let status = client.probe_permission(endpoint).await;
        rows.push(Row { endpoint, why, status });
    }
    rows
}

/// The table printed for people, and whether every permission is held.
pub fn render(rows: &[Row]) -> (String, bool) {
    let width = rows
        .iter()
        .map(|r| r.endpoint.permission().len())
        .max()
        .unwrap_or(10)
        .max(10);
    let mut out = format!("{:<width$}  {:<7}  why\n", "permission", "status");
    let mut all_ok = true;
    for row in rows {
        let (mark, detail) = match &row.status {
            PermissionStatus::Granted => ("ok", String::new()),
            PermissionStatus::Missing => {
                all_ok = false;
                ("missing", format!("  → add `{}` to the key", row.endpoint.permission()))
            }
            PermissionStatus::Failed(e) => {
                all_ok = false;
                ("error", format!("  → {e}"))
            }
        };
        let _ = writeln!(
            out,
            "{:<width$}  {mark:<7}  {}{detail}",
            row.endpoint.permission(),
            row.why
        );
    }
    (out, all_ok)
}
