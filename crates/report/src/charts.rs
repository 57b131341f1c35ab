//! The report's charts: inline SVG drawn with plotters' SVG backend, one `<figure>` each.
//!
//! Every chart is a pure function of the [`Report`]. Decision dates (`YYYY-MM-DD`) are mapped to
//! their index on the x axis and the ticks are labelled with the dates. Values that are not finite are
//! dropped before drawing, so no `NaN` reaches the SVG, and a chart with nothing to draw becomes a
//! figure with a "not enough data yet" note instead of an empty frame.
//!
//! Text inside the SVG is escaped by plotters' SVG backend; captions and labels drawn in HTML are
//! escaped with [`esc`].

use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::html::{esc, fmt_num, fmt_signed, group_label};
use crate::model::{CONTROL, Interval, MetricPerformance, RANDOM_CONTROL, Report, TREATMENT};
use crate::{Error, Result};

/// Width of every chart, in SVG user units (the page scales it down on narrow screens).
const WIDTH: u32 = 760;
/// Height of the time charts.
const HEIGHT: u32 = 300;
/// The SVG font: whatever sans-serif face the reader's browser has (no font is embedded or fetched).
const FONT: &str = "sans-serif";
/// At most this many date labels on an x axis.
const DATE_LABELS: usize = 6;
/// Bars shown in the feature-effects chart.
const TOP_EFFECTS: usize = 12;
/// Longest row label (characters) before it is shortened with an ellipsis.
const MAX_LABEL: usize = 44;

const INK: RGBColor = RGBColor(51, 65, 85);
const MUTED: RGBColor = RGBColor(100, 116, 139);
const GRID: RGBColor = RGBColor(226, 232, 240);
const AXIS: RGBColor = RGBColor(148, 163, 184);
const TREATMENT_COLOUR: RGBColor = RGBColor(37, 99, 235);
const CONTROL_COLOUR: RGBColor = RGBColor(234, 88, 12);
const RANDOM_COLOUR: RGBColor = RGBColor(100, 116, 139);
const POSITIVE: RGBColor = RGBColor(13, 148, 136);
const NEGATIVE: RGBColor = RGBColor(220, 38, 38);
const CHANGE: RGBColor = RGBColor(124, 58, 237);
/// Categorical colours for options (Tableau 10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(225, 87, 89),
    RGBColor(118, 183, 178),
    RGBColor(89, 161, 79),
    RGBColor(237, 201, 72),
    RGBColor(176, 122, 161),
    RGBColor(255, 157, 167),
    RGBColor(156, 117, 95),
    RGBColor(186, 176, 172),
];

/// What plotters' SVG backend reports when drawing fails.
type DrawResult = std::result::Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// Every chart of the report, in reading order, as HTML `<figure>` elements.
pub(crate) fn render_all(report: &Report) -> Result<String> {
    let mut out = String::new();
    out.push_str(&cumulative(report)?);
    out.push_str(&uplift(report)?);
    out.push_str(&option_shares(report)?);
    out.push_str(&what_if(report)?);
    out.push_str(&learning_curve(report)?);
    out.push_str(&drift(report)?);
    out.push_str(&feature_effects(report)?);
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The charts.

/// The performance entry of the success metric (the first non-guardrail one if none is keyed
/// `success`).
fn success(report: &Report) -> Option<&MetricPerformance> {
    report
        .performance
        .iter()
        .find(|p| p.metric == "success")
        .or_else(|| report.performance.iter().find(|p| !p.guardrail))
}

/// a. Cumulative mean of the success metric per group, with its interval as a band.
fn cumulative(report: &Report) -> Result<String> {
    let key = "cumulative";
    let caption = format!(
        "Cumulative mean of {} per decision, by group, over decision dates; the shaded band is the \
         95 % interval.",
        report.metric.label
    );
    let Some(perf) = success(report) else {
        return Ok(empty_figure(key, &caption));
    };
    let dates: Vec<String> = perf.daily.iter().map(|d| d.date.clone()).collect();
    let mut groups: Vec<String> = [TREATMENT, CONTROL, RANDOM_CONTROL]
        .iter()
        .map(|g| (*g).to_owned())
        .collect();
    for day in &perf.daily {
        for g in &day.groups {
            if !groups.contains(&g.group) {
                groups.push(g.group.clone());
            }
        }
    }
    let mut bands = Vec::new();
    let mut lines = Vec::new();
    for (i, group) in groups.iter().enumerate() {
        let intervals: Vec<Option<Interval>> = perf
            .daily
            .iter()
            .map(|d| d.groups.iter().find(|g| &g.group == group).map(|g| g.cumulative))
            .collect();
        if intervals.iter().all(Option::is_none) {
            continue;
        }
        let colour = group_colour(group, i);
        bands.push(Band {
            colour,
            values: intervals
                .iter()
                .map(|iv| iv.and_then(|iv| finite_pair(iv.low, iv.high)))
                .collect(),
        });
        lines.push(Line {
            name: group_label(group),
            colour,
            values: intervals.iter().map(|iv| iv.map(|iv| iv.estimate)).collect(),
        });
    }
    time_figure(
        &TimeChart {
            key,
            caption: &caption,
            dates,
            bands,
            lines,
            zero_line: false,
            percent: false,
            legend: true,
        },
        None,
    )
}

/// b. Cumulative treatment − control uplift with its band and a zero line.
fn uplift(report: &Report) -> Result<String> {
    let key = "uplift";
    let caption = format!(
        "AI (treatment) minus business as usual (control) on {}, cumulative up to each decision \
         date, with its 95 % interval; above the dashed zero line the AI is ahead.",
        report.metric.label
    );
    let Some(perf) = success(report) else {
        return Ok(empty_figure(key, &caption));
    };
    let dates: Vec<String> = perf.daily.iter().map(|d| d.date.clone()).collect();
    let values: Vec<Option<Interval>> = perf.daily.iter().map(|d| d.cumulative_uplift).collect();
    let band = Band {
        colour: TREATMENT_COLOUR,
        values: values
            .iter()
            .map(|iv| iv.and_then(|iv| finite_pair(iv.low, iv.high)))
            .collect(),
    };
    let line = Line {
        name: "uplift".to_owned(),
        colour: TREATMENT_COLOUR,
        values: values.iter().map(|iv| iv.map(|iv| iv.estimate)).collect(),
    };
    time_figure(
        &TimeChart {
            key,
            caption: &caption,
            dates,
            bands: vec![band],
            lines: vec![line],
            zero_line: true,
            percent: false,
            legend: false,
        },
        None,
    )
}

/// c. One chart per dimension: each option's share of the treatment group's messages.
fn option_shares(report: &Report) -> Result<String> {
    let dims = &report.insights.option_shares;
    if dims.is_empty() {
        return Ok(empty_figure(
            "option-shares",
            "Share of the AI's messages per option, per decision date.",
        ));
    }
    let mut out = String::new();
    for dim in dims {
        let key = format!("option-shares-{}", dim.dimension);
        let caption = format!(
            "Option shares for \u{201c}{}\u{201d}: each option's share of the AI's (treatment) \
             messages per decision date.",
            dim.dimension
        );
        let lines = dim
            .options
            .iter()
            .enumerate()
            .map(|(i, line)| Line {
                name: line.option.clone(),
                colour: PALETTE[i % PALETTE.len()],
                values: (0..dim.dates.len()).map(|d| line.shares.get(d).copied()).collect(),
            })
            .collect();
        out.push_str(&time_figure(
            &TimeChart {
                key: &key,
                caption: &caption,
                dates: dim.dates.clone(),
                bands: Vec::new(),
                lines,
                zero_line: false,
                percent: true,
                legend: true,
            },
            None,
        )?);
    }
    Ok(out)
}

/// d. Per policy, one estimator's value (SNIPS when there is one) with its interval.
fn what_if(report: &Report) -> Result<String> {
    let key = "what-if";
    let mut rows = Vec::new();
    let mut reference = None;
    for policy in &report.what_if.policies {
        let Some(row) = policy
            .estimates
            .iter()
            .find(|e| e.estimator == "snips")
            .or_else(|| policy.estimates.first())
        else {
            continue;
        };
        let v = row.value;
        if !v.estimate.is_finite() {
            continue;
        }
        let colour = match policy.kind.as_str() {
            "current" => TREATMENT_COLOUR,
            "business_as_usual" => {
                reference = Some(v.estimate);
                CONTROL_COLOUR
            }
            _ => RANDOM_COLOUR,
        };
        rows.push(Row {
            label: format!("{} ({})", policy.name, row.estimator),
            colour,
            value: v.estimate,
            range: finite_pair(v.low, v.high),
        });
    }
    let caption = format!(
        "What if another policy had decided: estimated {} per decision on the logged data, with \
         95 % intervals (estimator in brackets, SNIPS when available).",
        report.metric.label
    );
    if rows.is_empty() {
        return Ok(empty_figure(key, &caption));
    }
    let svg = row_chart(
        key,
        &rows,
        RowStyle::Whiskers,
        reference.map(|x| (x, "business as usual")),
    )?;
    Ok(figure(key, &caption, &svg))
}

/// e. Daily mean final reward per group.
fn learning_curve(report: &Report) -> Result<String> {
    let key = "learning-curve";
    let caption = format!(
        "Learning curve: mean {} of each decision date's decisions (final rewards only), per group.",
        report.metric.label
    );
    let points = &report.insights.learning_curve;
    let dates = points.iter().map(|p| p.date.clone()).collect();
    let lines = vec![
        Line {
            name: group_label(TREATMENT),
            colour: TREATMENT_COLOUR,
            values: points.iter().map(|p| p.treatment).collect(),
        },
        Line {
            name: group_label(CONTROL),
            colour: CONTROL_COLOUR,
            values: points.iter().map(|p| p.control).collect(),
        },
        Line {
            name: group_label(RANDOM_CONTROL),
            colour: RANDOM_COLOUR,
            values: points.iter().map(|p| p.random_control).collect(),
        },
    ];
    time_figure(
        &TimeChart {
            key,
            caption: &caption,
            dates,
            bands: Vec::new(),
            lines,
            zero_line: false,
            percent: false,
            legend: true,
        },
        None,
    )
}

/// f. Runs, changes and drift alerts on a calendar axis.
fn drift(report: &Report) -> Result<String> {
    let key = "drift";
    let caption = "Timeline: daily runs (ticks), model and configuration changes (circles) and \
                   drift alerts (red triangles, labelled with dimension/option and size).";
    let mut candidates: Vec<&str> = vec![report.from.as_str(), report.to.as_str()];
    candidates.extend(report.drift.timeline.iter().map(|e| day_of(&e.date)));
    candidates.extend(report.drift.alerts.iter().map(|a| day_of(&a.detected_at)));
    let axis = calendar(&candidates);
    if axis.is_empty() {
        return Ok(empty_figure(key, caption));
    }
    let index = |day: &str| axis.iter().position(|d| d == day_of(day)).map(to_i32);

    let runs: Vec<i32> = report
        .drift
        .timeline
        .iter()
        .filter(|e| e.kind == "run")
        .filter_map(|e| index(&e.date))
        .collect();
    let changes: Vec<(i32, String)> = report
        .drift
        .timeline
        .iter()
        .filter(|e| e.kind != "run" && e.kind != "drift")
        .filter_map(|e| index(&e.date).map(|x| (x, e.label.clone())))
        .collect();
    let mut alerts: Vec<(i32, String)> = report
        .drift
        .alerts
        .iter()
        .filter_map(|a| {
            let what = match (&a.dimension, &a.option) {
                (Some(d), Some(o)) => format!("{d}/{o}"),
                (Some(d), None) => d.clone(),
                (None, Some(o)) => o.clone(),
                (None, None) => "policy".to_owned(),
            };
            index(&a.detected_at).map(|x| (x, format!("{what} {}", fmt_num(a.magnitude))))
        })
        .collect();
    // Drift events of the timeline that no alert accounts for (an inconsistent report) still show.
    for e in report.drift.timeline.iter().filter(|e| e.kind == "drift") {
        if let Some(x) = index(&e.date)
            && !alerts.iter().any(|(ax, _)| *ax == x)
        {
            alerts.push((x, e.label.clone()));
        }
    }

    let dates = axis;
    let x_max = to_i32(dates.len().saturating_sub(1)).max(1);
    let label_changes = changes.len() <= 8;
    let lanes = ["runs", "model / config", "drift alerts"];
    let svg = draw_svg(key, (WIDTH, 200), |root| {
        let mut ctx = ChartBuilder::on(root)
            .margin(12)
            .margin_right(28)
            .x_label_area_size(30)
            .y_label_area_size(110)
            .build_cartesian_2d(0..x_max, 0.0..3.0)?;
        let formatter = |i: &i32| date_label(&dates, *i);
        ctx.configure_mesh()
            .x_labels(DATE_LABELS)
            .y_labels(0)
            .disable_y_mesh()
            .x_label_formatter(&formatter)
            .bold_line_style(GRID)
            .light_line_style(WHITE)
            .axis_style(AXIS)
            .label_style(text_style(12))
            .draw()?;
        for (lane, name) in lanes.iter().enumerate() {
            let (px, py) = ctx.backend_coord(&(0, lane as f64 + 0.5));
            root.draw(&Text::new(
                (*name).to_owned(),
                (px - 10, py),
                text_style(12).pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
        }
        let mid = x_max / 2;
        ctx.draw_series(
            runs.iter()
                .map(|&x| PathElement::new(vec![(x, 0.25), (x, 0.75)], MUTED.stroke_width(2))),
        )?;
        if runs.is_empty() {
            ctx.draw_series(std::iter::once(Text::new(
                "no run in the period".to_owned(),
                (mid, 0.5),
                text_style(12).pos(Pos::new(HPos::Center, VPos::Center)),
            )))?;
        }
        ctx.draw_series(
            changes
                .iter()
                .map(|(x, _)| Circle::new((*x, 1.5), 4, CHANGE.stroke_width(2))),
        )?;
        if label_changes {
            for (i, (x, label)) in changes.iter().enumerate() {
                let dy = if i % 2 == 0 { -8 } else { 16 };
                ctx.draw_series(std::iter::once(
                    EmptyElement::at((*x, 1.5))
                        + Text::new(shorten(label, 28), (6, dy), text_style(10).pos(anchor_for(*x, x_max))),
                ))?;
            }
        }
        for (i, (x, label)) in alerts.iter().enumerate() {
            ctx.draw_series(std::iter::once(PathElement::new(
                vec![(*x, 0.0), (*x, 3.0)],
                NEGATIVE.mix(0.35).stroke_width(1),
            )))?;
            ctx.draw_series(std::iter::once(TriangleMarker::new((*x, 2.5), 7, NEGATIVE.filled())))?;
            let dy = if i % 2 == 0 { -10 } else { 12 };
            let dx = if x * 10 > x_max * 6 { -10 } else { 10 };
            ctx.draw_series(std::iter::once(
                EmptyElement::at((*x, 2.5))
                    + Text::new(
                        shorten(label, 36),
                        (dx, dy),
                        text_style(11).color(&NEGATIVE).pos(anchor_for(*x, x_max)),
                    ),
            ))?;
        }
        if alerts.is_empty() {
            ctx.draw_series(std::iter::once(Text::new(
                "no drift alert".to_owned(),
                (mid, 2.5),
                text_style(13).pos(Pos::new(HPos::Center, VPos::Center)),
            )))?;
        }
        Ok(())
    })?;
    Ok(figure(key, caption, &svg))
}

/// g. The largest feature effects as horizontal bars.
fn feature_effects(report: &Report) -> Result<String> {
    let key = "feature-effects";
    let mut effects: Vec<_> = report
        .insights
        .feature_effects
        .iter()
        .filter(|e| e.effect.is_finite())
        .collect();
    effects.sort_by(|a, b| b.effect.abs().total_cmp(&a.effect.abs()));
    effects.truncate(TOP_EFFECTS);
    let caption = format!(
        "The {}largest feature effects on option scores (in {} units, averaged over the \
         audience): teal favours the option, red disfavours it.",
        if effects.is_empty() {
            String::new()
        } else {
            format!("{} ", effects.len())
        },
        report.metric.label
    );
    if effects.is_empty() {
        return Ok(empty_figure(key, &caption));
    }
    let rows: Vec<Row> = effects
        .iter()
        .map(|e| Row {
            label: format!("{}={} \u{b7} {}", e.dimension, e.option, e.feature),
            colour: if e.effect >= 0.0 { POSITIVE } else { NEGATIVE },
            value: e.effect,
            range: None,
        })
        .collect();
    let svg = row_chart(key, &rows, RowStyle::Bars, None)?;
    Ok(figure(key, &caption, &svg))
}

// ---------------------------------------------------------------------------------------------
// Time charts: lines and bands over decision dates.

/// A chart over decision dates.
struct TimeChart<'a> {
    /// `data-chart` key.
    key: &'a str,
    /// Figure caption (plain text; escaped when written).
    caption: &'a str,
    /// The x axis.
    dates: Vec<String>,
    /// Shaded intervals, drawn first.
    bands: Vec<Band>,
    /// Lines, drawn over the bands.
    lines: Vec<Line>,
    /// Draw a dashed line at zero (and keep zero in view).
    zero_line: bool,
    /// The y axis is a share (0–1), labelled in percent.
    percent: bool,
    /// Draw a legend of the lines.
    legend: bool,
}

/// A shaded interval: `(low, high)` per date, `None` where there is none.
struct Band {
    colour: RGBColor,
    values: Vec<Option<(f64, f64)>>,
}

/// A line: one value per date, `None` (or not finite) where there is none; gaps break the line.
struct Line {
    name: String,
    colour: RGBColor,
    values: Vec<Option<f64>>,
}

/// Draws a [`TimeChart`] (or its "not enough data yet" figure).
fn time_figure(chart: &TimeChart<'_>, height: Option<u32>) -> Result<String> {
    let line_segments: Vec<(&Line, Segments<f64>)> = chart
        .lines
        .iter()
        .map(|l| (l, segments(&l.values)))
        .filter(|(_, segs)| !segs.is_empty())
        .collect();
    let band_segments: Vec<(&Band, Segments<(f64, f64)>)> = chart
        .bands
        .iter()
        .map(|b| (b, segments(&b.values)))
        .filter(|(_, segs)| !segs.is_empty())
        .collect();
    if chart.dates.is_empty() || line_segments.is_empty() {
        return Ok(empty_figure(chart.key, chart.caption));
    }
    let values = line_segments
        .iter()
        .flat_map(|(_, segs)| segs.iter().flatten().map(|(_, v)| *v))
        .chain(
            band_segments
                .iter()
                .flat_map(|(_, segs)| segs.iter().flatten().flat_map(|(_, (lo, hi))| [*lo, *hi])),
        );
    let legend_rows = if chart.legend { line_segments.len() } else { 0 };
    let y_range = if chart.percent {
        let high = values.fold(1.0_f64, f64::max);
        0.0..(high * (1.0 + 0.09 * legend_rows as f64))
    } else {
        match value_range(values, chart.zero_line) {
            Some(r) => {
                // Headroom so the legend (upper left) does not hide the data.
                let span = r.end - r.start;
                r.start..(r.end + span * 0.09 * legend_rows as f64)
            }
            None => return Ok(empty_figure(chart.key, chart.caption)),
        }
    };
    let span = y_range.end - y_range.start;
    let x_max = to_i32(chart.dates.len().saturating_sub(1)).max(1);
    let show_points = chart.dates.len() <= 31;
    let percent = chart.percent;
    let svg = draw_svg(chart.key, (WIDTH, height.unwrap_or(HEIGHT)), |root| {
        let mut ctx = ChartBuilder::on(root)
            .margin(12)
            .margin_right(28)
            .x_label_area_size(30)
            .y_label_area_size(64)
            .build_cartesian_2d(0..x_max, y_range.clone())?;
        let x_fmt = |i: &i32| date_label(&chart.dates, *i);
        let y_fmt = |v: &f64| {
            if percent {
                format!("{:.0} %", v * 100.0)
            } else {
                axis_number(*v, span)
            }
        };
        ctx.configure_mesh()
            .x_labels(DATE_LABELS)
            .y_labels(6)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .bold_line_style(GRID)
            .light_line_style(WHITE)
            .axis_style(AXIS)
            .label_style(text_style(12))
            .draw()?;
        if chart.zero_line {
            ctx.draw_series(DashedLineSeries::new(
                vec![(0, 0.0), (x_max, 0.0)],
                5,
                4,
                INK.stroke_width(1),
            ))?;
        }
        for (band, segs) in &band_segments {
            for seg in segs {
                if seg.len() >= 2 {
                    let points: Vec<(i32, f64)> = seg
                        .iter()
                        .map(|(x, (_, hi))| (*x, *hi))
                        .chain(seg.iter().rev().map(|(x, (lo, _))| (*x, *lo)))
                        .collect();
                    ctx.draw_series(std::iter::once(Polygon::new(points, band.colour.mix(0.15).filled())))?;
                } else {
                    ctx.draw_series(seg.iter().map(|(x, (lo, hi))| {
                        PathElement::new(vec![(*x, *lo), (*x, *hi)], band.colour.mix(0.4).stroke_width(3))
                    }))?;
                }
            }
        }
        for (line, segs) in &line_segments {
            let colour = line.colour;
            for (i, seg) in segs.iter().enumerate() {
                let drawn = ctx.draw_series(LineSeries::new(seg.iter().copied(), colour.stroke_width(2)))?;
                if chart.legend && i == 0 {
                    drawn
                        .label(shorten(&line.name, 32))
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(3)));
                }
                if show_points || seg.len() == 1 {
                    ctx.draw_series(seg.iter().map(|p| Circle::new(*p, 2, colour.filled())))?;
                }
            }
        }
        if chart.legend {
            ctx.configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .margin(8)
                .legend_area_size(24)
                .background_style(WHITE.mix(0.85))
                .border_style(GRID)
                .label_font(text_style(12))
                .draw()?;
        }
        Ok(())
    })?;
    Ok(figure(chart.key, chart.caption, &svg))
}

/// Runs of consecutive dates with a value, each point as `(date index, value)`.
type Segments<T> = Vec<Vec<(i32, T)>>;

/// Runs of consecutive dates with a finite value, as `(date index, value)`.
fn segments<T: Copy + Finite>(values: &[Option<T>]) -> Segments<T> {
    let mut out: Segments<T> = Vec::new();
    let mut current = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) if v.finite() => current.push((to_i32(i), *v)),
            _ => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// A value that can be checked for `NaN` and infinities.
trait Finite {
    fn finite(&self) -> bool;
}

impl Finite for f64 {
    fn finite(&self) -> bool {
        self.is_finite()
    }
}

impl Finite for (f64, f64) {
    fn finite(&self) -> bool {
        self.0.is_finite() && self.1.is_finite()
    }
}

/// `(low, high)` when both are finite, ordered.
fn finite_pair(low: f64, high: f64) -> Option<(f64, f64)> {
    (low.is_finite() && high.is_finite()).then(|| (low.min(high), low.max(high)))
}

/// A padded y range over finite `values` (with zero when asked); `None` when there is no value.
fn value_range(values: impl Iterator<Item = f64>, with_zero: bool) -> Option<Range<f64>> {
    let (mut lo, mut hi) = values
        .filter(|v| v.is_finite())
        .fold(None, |acc: Option<(f64, f64)>, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })?;
    if with_zero {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    let span = hi - lo;
    let pad = if span > 0.0 {
        span * 0.06
    } else {
        (hi.abs() * 0.1).max(1e-3)
    };
    lo -= pad;
    hi += pad;
    (lo.is_finite() && hi.is_finite() && hi > lo).then_some(lo..hi)
}

// ---------------------------------------------------------------------------------------------
// Row charts: one horizontal bar or point-with-whiskers per labelled row.

/// One row of a row chart.
struct Row {
    label: String,
    colour: RGBColor,
    value: f64,
    /// The interval drawn as whiskers.
    range: Option<(f64, f64)>,
}

/// How a row is drawn.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RowStyle {
    /// A bar from zero to the value.
    Bars,
    /// A point at the value with whiskers over its interval.
    Whiskers,
}

/// Draws rows top to bottom, labels on the left, values beside the marks; `reference` adds a
/// labelled vertical dashed line.
fn row_chart(key: &str, rows: &[Row], style: RowStyle, reference: Option<(f64, &str)>) -> Result<String> {
    let k = rows.len();
    let height = HEIGHT.max(70 + 30 * u32::try_from(k).unwrap_or(u32::MAX / 64));
    let labels: Vec<String> = rows.iter().map(|r| shorten(&r.label, MAX_LABEL)).collect();
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let label_area = u32::try_from(longest * 6 + 20).unwrap_or(300).clamp(80, 300);
    let mut xs: Vec<f64> = Vec::new();
    for r in rows {
        xs.push(r.value);
        if let Some((lo, hi)) = r.range {
            xs.extend([lo, hi]);
        }
    }
    if let Some((x, _)) = reference {
        xs.push(x);
    }
    let Some(base) = value_range(xs.into_iter(), style == RowStyle::Bars) else {
        return Ok(String::new());
    };
    // Room for the value labels beside the marks.
    let extra = (base.end - base.start) * 0.12;
    let x_range = (base.start - if base.start < 0.0 { extra } else { 0.0 })..(base.end + extra);
    let span = x_range.end - x_range.start;
    let y_top = k as f64 - 0.4;
    let y_of = |i: usize| (k - 1 - i) as f64;
    draw_svg(key, (WIDTH, height), |root| {
        let mut ctx = ChartBuilder::on(root)
            .margin(12)
            .margin_right(28)
            .x_label_area_size(30)
            .y_label_area_size(label_area)
            .build_cartesian_2d(x_range.clone(), -0.6..y_top)?;
        let x_fmt = |v: &f64| axis_number(*v, span);
        ctx.configure_mesh()
            .x_labels(7)
            .y_labels(0)
            .disable_y_mesh()
            .x_label_formatter(&x_fmt)
            .bold_line_style(GRID)
            .light_line_style(WHITE)
            .axis_style(AXIS)
            .label_style(text_style(12))
            .draw()?;
        if style == RowStyle::Bars {
            ctx.draw_series(std::iter::once(PathElement::new(
                vec![(0.0, -0.6), (0.0, y_top)],
                AXIS.stroke_width(1),
            )))?;
        }
        if let Some((x, name)) = reference {
            ctx.draw_series(DashedLineSeries::new(
                vec![(x, -0.6), (x, y_top)],
                5,
                4,
                CONTROL_COLOUR.mix(0.7).stroke_width(1),
            ))?;
            ctx.draw_series(std::iter::once(
                EmptyElement::at((x, y_top))
                    + Text::new(
                        name.to_owned(),
                        (4, 2),
                        text_style(10)
                            .color(&CONTROL_COLOUR)
                            .pos(Pos::new(HPos::Left, VPos::Top)),
                    ),
            ))?;
        }
        for (i, (row, label)) in rows.iter().zip(&labels).enumerate() {
            let y = y_of(i);
            let (px, py) = ctx.backend_coord(&(x_range.start, y));
            root.draw(&Text::new(
                label.clone(),
                (px - 8, py),
                text_style(12).pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
            let value_text = match style {
                RowStyle::Bars => fmt_signed(row.value),
                RowStyle::Whiskers => fmt_num(row.value),
            };
            match style {
                RowStyle::Bars => {
                    ctx.draw_series(std::iter::once(Rectangle::new(
                        [(0.0, y - 0.3), (row.value, y + 0.3)],
                        row.colour.filled(),
                    )))?;
                    let (dx, h) = if row.value >= 0.0 {
                        (5, HPos::Left)
                    } else {
                        (-5, HPos::Right)
                    };
                    ctx.draw_series(std::iter::once(
                        EmptyElement::at((row.value, y))
                            + Text::new(value_text, (dx, 0), text_style(11).pos(Pos::new(h, VPos::Center))),
                    ))?;
                }
                RowStyle::Whiskers => {
                    let stroke = row.colour.stroke_width(2);
                    if let Some((lo, hi)) = row.range {
                        ctx.draw_series([
                            PathElement::new(vec![(lo, y), (hi, y)], stroke),
                            PathElement::new(vec![(lo, y - 0.18), (lo, y + 0.18)], stroke),
                            PathElement::new(vec![(hi, y - 0.18), (hi, y + 0.18)], stroke),
                        ])?;
                    }
                    ctx.draw_series(std::iter::once(Circle::new((row.value, y), 5, row.colour.filled())))?;
                    ctx.draw_series(std::iter::once(
                        EmptyElement::at((row.value, y))
                            + Text::new(
                                value_text,
                                (0, -10),
                                text_style(11).pos(Pos::new(HPos::Center, VPos::Bottom)),
                            ),
                    ))?;
                }
            }
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Shared helpers.

/// Draws one SVG document into a string with plotters' SVG backend.
fn draw_svg<F>(key: &str, size: (u32, u32), draw: F) -> Result<String>
where
    F: FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> DrawResult,
{
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| chart_error(key, &e))?;
        draw(&root).map_err(|e| chart_error(key, &e))?;
        root.present().map_err(|e| chart_error(key, &e))?;
    }
    Ok(buf)
}

fn chart_error(key: &str, e: &dyn std::fmt::Display) -> Error {
    Error::Chart {
        chart: key.to_owned(),
        message: e.to_string(),
    }
}

/// A chart's figure: caption (escaped) and its SVG.
fn figure(key: &str, caption: &str, svg: &str) -> String {
    format!(
        "<figure class=\"chart\" data-chart=\"{}\">\n<figcaption>{}</figcaption>\n{}</figure>\n",
        esc(key),
        esc(caption),
        svg
    )
}

/// The figure of a chart without data.
fn empty_figure(key: &str, caption: &str) -> String {
    format!(
        "<figure class=\"chart empty\" data-chart=\"{}\">\n<figcaption>{}</figcaption>\n\
         <p class=\"no-data\">not enough data yet</p>\n</figure>\n",
        esc(key),
        esc(caption)
    )
}

fn text_style(size: u32) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).color(&INK)
}

/// Left-anchored text near the left of the axis, right-anchored near its right end.
fn anchor_for(x: i32, x_max: i32) -> Pos {
    let h = if x * 10 > x_max * 6 { HPos::Right } else { HPos::Left };
    Pos::new(h, VPos::Center)
}

/// The date of index `i`, or nothing between dates and beyond the axis.
fn date_label(dates: &[String], i: i32) -> String {
    usize::try_from(i)
        .ok()
        .and_then(|i| dates.get(i))
        .cloned()
        .unwrap_or_default()
}

/// An axis tick with as many decimals as the axis span needs.
fn axis_number(v: f64, span: f64) -> String {
    let decimals = if span >= 100.0 {
        0
    } else if span >= 10.0 {
        1
    } else if span >= 1.0 {
        2
    } else if span >= 0.1 {
        3
    } else {
        4
    };
    // Avoid "-0.00".
    let v = if v.abs() < 0.5 * 10f64.powi(-decimals) { 0.0 } else { v };
    crate::html::group_thousands(&format!("{v:.prec$}", prec = decimals as usize))
}

/// The `YYYY-MM-DD` part of a date or an RFC 3339 timestamp.
fn day_of(s: &str) -> &str {
    s.get(..10).unwrap_or(s)
}

/// Every calendar day from the earliest to the latest of the given dates (those that parse), as
/// `YYYY-MM-DD`; the distinct dates themselves if the span is implausibly long.
fn calendar(candidates: &[&str]) -> Vec<String> {
    let mut days: Vec<jiff::civil::Date> = candidates
        .iter()
        .filter_map(|s| s.parse::<jiff::civil::Date>().ok())
        .collect();
    days.sort();
    days.dedup();
    let (Some(first), Some(last)) = (days.first().copied(), days.last().copied()) else {
        return Vec::new();
    };
    const MAX_DAYS: usize = 1500;
    let mut out = Vec::new();
    let mut day = first;
    while day <= last && out.len() <= MAX_DAYS {
        out.push(day.to_string());
        match day.tomorrow() {
            Ok(next) => day = next,
            Err(_) => break,
        }
    }
    if out.len() > MAX_DAYS {
        return days.iter().map(ToString::to_string).collect();
    }
    out
}

/// Shortens a label to `max` characters with an ellipsis.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('\u{2026}');
    out
}

/// The colour of a group; groups the report does not know take a palette colour.
fn group_colour(group: &str, i: usize) -> RGBColor {
    match group {
        TREATMENT => TREATMENT_COLOUR,
        CONTROL => CONTROL_COLOUR,
        RANDOM_CONTROL => RANDOM_COLOUR,
        _ => PALETTE[i % PALETTE.len()],
    }
}

/// An index as an axis coordinate (saturating: no axis has two billion dates).
fn to_i32(i: usize) -> i32 {
    i32::try_from(i).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_split_at_gaps_and_non_finite_values() {
        let values = [Some(1.0), Some(2.0), None, Some(f64::NAN), Some(3.0)];
        assert_eq!(segments(&values), vec![vec![(0, 1.0), (1, 2.0)], vec![(4, 3.0)]]);
    }

    #[test]
    fn value_range_pads_a_single_value_and_keeps_zero() {
        let r = value_range([2.0].into_iter(), false).unwrap();
        assert!(r.start < 2.0 && r.end > 2.0);
        let r = value_range([2.0, 3.0].into_iter(), true).unwrap();
        assert!(r.start < 0.0 && r.end > 3.0);
        assert!(value_range([f64::NAN].into_iter(), false).is_none());
    }

    #[test]
    fn calendar_fills_missing_days() {
        let days = calendar(&["2025-03-03", "2025-02-27", "not a date", ""]);
        assert_eq!(
            days,
            ["2025-02-27", "2025-02-28", "2025-03-01", "2025-03-02", "2025-03-03"]
        );
    }

    #[test]
    fn axis_numbers_follow_the_span() {
        assert_eq!(axis_number(1234.0, 500.0), "1,234");
        assert_eq!(axis_number(0.25, 0.5), "0.250");
        assert_eq!(axis_number(-0.00001, 0.5), "0.000");
    }
}
