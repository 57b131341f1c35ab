//! `offerloop report`: the evidence for a use case over a period, as `report.html` and `report.json`.
//!
//! The report crate knows no HTTP: this module fetches Braze's own analytics
//! (`/campaigns/data_series`, `/canvas/data_series`) for every campaign and canvas the use case's
//! channel options target, and hands them over as data. A refused or failed call does not stop the
//! report: it becomes a note in its Braze section.

use std::collections::BTreeSet;
use std::path::PathBuf;

use jiff::Timestamp;
use jiff::civil::Date;
use offerloop_braze::BrazeApi;
use offerloop_braze::api::catalog::{CampaignDataSeriesRequest, CanvasDataSeriesRequest};
use offerloop_domain::dimension::OptionPayload;
use offerloop_domain::{MessageTarget, UseCase};
use offerloop_report::Report;
use offerloop_report::build::{ReportInput, build};
use offerloop_report::html::{Written, write};
use offerloop_report::model::{BrazeDay, BrazeSeries, BrazeSide};

use offerloop_engine::Clock;

use crate::run_cmd::{braze_client, load_use_case};

/// What `offerloop report` was asked for.
#[derive(Debug, Clone)]
pub struct ReportArgs {
    /// The use-case file.
    pub use_case: PathBuf,
    /// First decision date.
    pub from: Option<Date>,
    /// Last decision date.
    pub to: Option<Date>,
    /// Output directory.
    pub out: PathBuf,
    /// The store (an SQLite file or a `postgres://` URL; default: the use case's `[store] url`, else
    /// the default file).
    pub store: Option<String>,
    /// Fetch Braze's analytics (off: the Braze section says so).
    pub braze: bool,
}

/// Builds and writes the report.
///
/// # Errors
/// An unreadable use case or store, a report that cannot be built or written.
pub async fn run(args: &ReportArgs, clock: &dyn Clock) -> anyhow::Result<(Report, Written)> {
    let use_case = load_use_case(&args.use_case)?;
    let location = crate::store_cmd::location(args.store.as_deref(), Some(&use_case))?;
    let store = crate::store_cmd::open(&location)?;
    let _lock = crate::run_cmd::lock(store.as_ref(), use_case.name.as_str(), "offerloop report", clock)?;
    let now = clock.now();
    let braze = if args.braze {
        match braze_client(&use_case) {
            Ok(client) => braze_side(client.as_ref(), &use_case, store.as_ref(), args.from, args.to, now).await,
            Err(e) => BrazeSide {
                note: Some(format!("Braze analytics not fetched: {e:#}")),
                series: Vec::new(),
            },
        }
    } else {
        BrazeSide {
            note: Some("Braze analytics not fetched (--no-braze).".into()),
            series: Vec::new(),
        }
    };
    let mut input = ReportInput::new(&use_case, store.as_ref(), now);
    input.from = args.from;
    input.to = args.to;
    input.braze = braze;
    let report = build(&input)?;
    let written = write(&report, &args.out)?;
    Ok((report, written))
}

/// The campaigns and canvases the use case's channel options target.
pub fn targets(use_case: &UseCase) -> Vec<MessageTarget> {
    let mut out = BTreeSet::new();
    for dim in use_case.actions.dimensions() {
        for option in &dim.options {
            if let OptionPayload::Channel { target, .. } = &option.payload {
                out.insert(match target {
                    MessageTarget::Campaign(id) => ("campaign", id.clone()),
                    MessageTarget::Canvas(id) => ("canvas", id.clone()),
                });
            }
        }
    }
    out.into_iter()
        .map(|(kind, id)| {
            if kind == "campaign" {
                MessageTarget::Campaign(id)
            } else {
                MessageTarget::Canvas(id)
            }
        })
        .collect()
}

/// Braze's daily figures for every target over the period (the store's runs when `from`/`to` are
/// not given). Failures become the section's note.
pub async fn braze_side(
    api: &dyn BrazeApi,
    use_case: &UseCase,
    store: &dyn offerloop_store::Store,
    from: Option<Date>,
    to: Option<Date>,
    now: Timestamp,
) -> BrazeSide {
    let runs = store.runs(use_case.name.as_str(), 100_000).unwrap_or_default();
    let first = from.or_else(|| runs.iter().map(|r| r.date).min());
    let last = to.or_else(|| runs.iter().map(|r| r.date).max());
    let (Some(first), Some(last)) = (first, last) else {
        return BrazeSide {
            note: Some("No run yet: no period to ask Braze about.".into()),
            series: Vec::new(),
        };
    };
    // Up to the end of the last day, or now if earlier; the window's length in days.
    let end = jiff::tz::TimeZone::UTC
        .to_timestamp(
            last.saturating_add(jiff::Span::new().days(1))
                .to_datetime(jiff::civil::Time::midnight()),
        )
        .unwrap_or(now)
        .min(now);
    let length = u32::try_from(last.since(first).map_or(1, |s| s.get_days() + 1).max(1)).unwrap_or(1);
    let mut series = Vec::new();
    let mut failures = Vec::new();
    for target in targets(use_case) {
        match &target {
            MessageTarget::Campaign(id) => {
                let mut request = CampaignDataSeriesRequest::new(id.clone(), length.min(100));
                request.ending_at = Some(end.to_string());
                match api.campaign_data_series(request).await {
                    Ok(response) => {
                        let days: Vec<BrazeDay> = response
                            .data
                            .iter()
                            .map(|p| BrazeDay {
                                date: p.time.get(..10).unwrap_or(&p.time).to_owned(),
                                sent: p
                                    .messages
                                    .values()
                                    .flatten()
                                    .filter_map(|m| m.get("sent").and_then(serde_json::Value::as_u64))
                                    .sum(),
                                conversions: p.conversions.unwrap_or(0),
                                revenue: p.revenue,
                            })
                            .collect();
                        series.push(totals("campaign", id, None, days));
                    }
                    Err(e) => failures.push(format!("campaign {id}: {e}")),
                }
            }
            MessageTarget::Canvas(id) => {
                let mut request = CanvasDataSeriesRequest::new(id.clone(), length.min(14));
                request.ending_at = Some(end.to_string());
                match api.canvas_data_series(request).await {
                    Ok(response) => {
                        let days: Vec<BrazeDay> = response
                            .data
                            .stats
                            .iter()
                            .map(|s| BrazeDay {
                                date: s.time.get(..10).unwrap_or(&s.time).to_owned(),
                                sent: s.total_stats.entries.unwrap_or(0),
                                conversions: s.total_stats.conversions.unwrap_or(0),
                                revenue: s.total_stats.revenue,
                            })
                            .collect();
                        let name = Some(response.data.name.clone()).filter(|n| !n.is_empty());
                        series.push(totals("canvas", id, name, days));
                    }
                    Err(e) => failures.push(format!("canvas {id}: {e}")),
                }
            }
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }
    BrazeSide {
        note: (!failures.is_empty())
            .then(|| format!("Some Braze analytics could not be fetched: {}", failures.join("; "))),
        series,
    }
}

fn totals(kind: &str, id: &str, name: Option<String>, days: Vec<BrazeDay>) -> BrazeSeries {
    let revenue: Vec<f64> = days.iter().filter_map(|d| d.revenue).collect();
    BrazeSeries {
        kind: kind.to_owned(),
        id: id.to_owned(),
        name,
        braze_sent: days.iter().map(|d| d.sent).sum(),
        braze_conversions: days.iter().map(|d| d.conversions).sum(),
        braze_revenue: (!revenue.is_empty()).then(|| revenue.iter().sum()),
        offerloop_messages: 0,
        days,
    }
}
