//! A [`Report`] from what the store recorded.
//!
//! Inputs: the use case, a [`Store`] (runs, decisions, audience snapshots, rewards, outcomes, the
//! ledger, models, drift alerts), the period, "now", and Braze's analytics already fetched by the caller
//! ([`BrazeSide`]; this crate knows no HTTP). Everything else is computed here:
//!
//! - **performance**: each decision with a final value counts once, in its group, on its decision
//!   date; the success metric is the stored final reward; the guardrail metrics (conversion,
//!   revenue, unsubscribe) are re-attributed from the stored outcomes with the same rule as rewards
//!   ([`offerloop_domain::attribution`]) once the decision's window has closed;
//! - **what-if**: off-policy estimates ([`offerloop_policy::ope`], IPS and SNIPS with bootstrap
//!   intervals) on the treatment and random-control decisions, with their logged propensities, of the
//!   latest model, business as usual, the best single joint action and the uniform policy;
//! - **insights**: option shares per day, per-option feature effects from `Policy::explain` on a
//!   sample of the last run's audience, segment tables, the learning curve;
//! - **drift**: the stored alerts on a timeline of runs and model versions.
//!
//! It holds the period's decisions in memory (about 200 bytes each).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use jiff::civil::Date;
use offerloop_domain::attribution::attribute_outcomes;
use offerloop_domain::{
    ActionId, Customer, Decision, FeatureType, FeatureValue, Group, JointAction, MetricKind, Outcome, OutcomeKind,
    RewardStatus, UseCase,
};
use offerloop_policy::ope::{Estimator, LoggedSample, OpeConfig};
use offerloop_policy::sampling::Eligible;
use offerloop_policy::{DecisionRound, Policy, Setup, Snapshot};
use offerloop_store::{ModelRecord, RunPhase, RunRecord, Store};
use serde::Deserialize;

use crate::model::*;
use crate::stats::{self, MeanAccumulator};
use crate::{Error, Result};

/// The policy version of a control decision that sends nothing (the engine's convention).
pub const NO_MESSAGE_VERSION: &str = "control/no_message";

/// What a report is built from.
pub struct ReportInput<'a> {
    /// The use case.
    pub use_case: &'a UseCase,
    /// Its store.
    pub store: &'a dyn Store,
    /// First decision date (default: the first run's).
    pub from: Option<Date>,
    /// Last decision date (default: the last run's).
    pub to: Option<Date>,
    /// Now (rewards whose window has not closed are pending).
    pub now: Timestamp,
    /// Braze's figures for the period, fetched by the caller (`offerloop_messages` is filled here).
    pub braze: BrazeSide,
    /// Customers of the last run explained for the feature effects.
    pub explain_sample: usize,
    /// Bootstrap resamples and seed of the what-if intervals.
    pub ope: OpeConfig,
}

impl std::fmt::Debug for ReportInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportInput")
            .field("use_case", &self.use_case.name)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl<'a> ReportInput<'a> {
    /// Defaults: the whole history, no Braze figures, 500 customers explained, 200 bootstrap resamples.
    pub fn new(use_case: &'a UseCase, store: &'a dyn Store, now: Timestamp) -> Self {
        Self {
            use_case,
            store,
            from: None,
            to: None,
            now,
            braze: BrazeSide::default(),
            explain_sample: 500,
            ope: OpeConfig {
                bootstrap_samples: 200,
                ..OpeConfig::default()
            },
        }
    }
}

/// One decision as the report sees it.
struct Row {
    decision: Decision,
    date: Date,
    features: Option<Vec<FeatureValue>>,
    time_zone: Option<String>,
    message: bool,
    success: Option<f64>,
    conversion: Option<f64>,
    revenue: Option<f64>,
    unsubscribe: Option<f64>,
}

/// The JSON of an audience row's features (the engine's `AudienceFeatures`; counters ignored).
#[derive(Deserialize)]
struct StoredFeatures {
    values: Vec<FeatureValue>,
}

fn group_name(g: Group) -> &'static str {
    match g {
        Group::Treatment => TREATMENT,
        Group::Control => CONTROL,
        Group::RandomControl => RANDOM_CONTROL,
    }
}

const GROUPS: [Group; 3] = [Group::Treatment, Group::Control, Group::RandomControl];

/// Builds the report.
///
/// # Errors
/// A store read that fails, a stored model that cannot be restored, stored JSON that does not read back.
pub fn build(input: &ReportInput<'_>) -> Result<Report> {
    let uc = input.use_case;
    let name = uc.name.as_str();
    let setup = Setup::from_use_case(uc)?;
    let runs = period_runs(input)?;
    let from = input.from.or_else(|| runs.first().map(|r| r.date));
    let to = input.to.or_else(|| runs.last().map(|r| r.date));
    let mut notes = Vec::new();
    if runs.is_empty() {
        notes.push("No finished daily run in the period: nothing to report yet.".to_owned());
    }

    let mut rows = decision_rows(input, &runs)?;
    let pending = settle(input, &mut rows)?;
    let final_rewards = rows.iter().filter(|r| r.success.is_some()).count() as u64;
    if final_rewards == 0 && !rows.is_empty() {
        notes.push(format!(
            "No reward is final yet: a decision's reward becomes final {} days after it.",
            uc.metric.attribution_window_days
        ));
    }
    let performance = performance(uc, &rows);
    let headline_uplift = headline_uplift(&performance);

    // The model now deciding.
    let model = input.store.latest_model(name)?;
    let policy = restore_policy(&setup, model.as_ref())?;
    let round = DecisionRound::at(input.now);
    let what_if = what_if(uc, &setup, policy.as_deref(), &round, &rows, &input.ope, &mut notes)?;
    let insights = insights(uc, policy.as_deref(), &rows, input.explain_sample);
    let drift = drift(input, &runs)?;
    let mut braze = input.braze.clone();
    fill_offerloop_messages(input.store, &runs, &mut braze)?;

    let customers = rows
        .iter()
        .map(|r| r.decision.customer_id.as_str())
        .collect::<BTreeSet<_>>()
        .len() as u64;
    Ok(Report {
        version: REPORT_VERSION,
        use_case: name.to_owned(),
        generated_at: input.now.to_string(),
        from: from.map(|d| d.to_string()).unwrap_or_default(),
        to: to.map(|d| d.to_string()).unwrap_or_default(),
        metric: MetricInfo {
            kind: uc.metric.kind.name().to_owned(),
            label: metric_label(uc),
            window_days: uc.metric.attribution_window_days,
        },
        headline: Headline {
            uplift: headline_uplift,
            customers,
            decisions: rows.len() as u64,
            messages: rows.iter().filter(|r| r.message).count() as u64,
            runs: runs.len() as u64,
            final_rewards,
            pending_rewards: pending,
            model_version: model.map(|m| m.version),
        },
        performance,
        what_if,
        insights,
        drift,
        braze,
        notes,
    })
}

/// The use case's runs of the period that reached their decisions, by date.
fn period_runs(input: &ReportInput<'_>) -> Result<Vec<RunRecord>> {
    let mut runs: Vec<RunRecord> = input
        .store
        .runs(input.use_case.name.as_str(), 100_000)?
        .into_iter()
        .filter(|r| r.phase >= RunPhase::Decided)
        .filter(|r| input.from.is_none_or(|f| r.date >= f) && input.to.is_none_or(|t| r.date <= t))
        .collect();
    runs.sort_by_key(|r| r.date);
    Ok(runs)
}

/// Every decision of `runs`, with the features and time zone its customer was decided with (when
/// the audience row is there); values are filled in by [`settle`].
fn decision_rows(input: &ReportInput<'_>, runs: &[RunRecord]) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for run in runs {
        let audience: HashMap<String, (String, Option<String>)> = input
            .store
            .audience(run.id)?
            .into_iter()
            .map(|a| (a.customer_id, (a.features, a.time_zone)))
            .collect();
        for d in input.store.decisions(run.id)? {
            let (features, time_zone) = match audience.get(d.customer_id.as_str()) {
                Some((json, tz)) => (Some(stored_features(json)?), tz.clone()),
                None => (None, None),
            };
            let message = is_message(input.use_case, &d);
            rows.push(Row {
                decision: d,
                date: run.date,
                features,
                time_zone,
                message,
                success: None,
                conversion: None,
                revenue: None,
                unsubscribe: None,
            });
        }
    }
    Ok(rows)
}

/// The feature values of an audience row's stored JSON.
fn stored_features(json: &str) -> Result<Vec<FeatureValue>> {
    serde_json::from_str::<StoredFeatures>(json)
        .map(|f| f.values)
        .map_err(|e| Error::Corrupt {
            what: "an audience row's features",
            message: e.to_string(),
        })
}

/// Fills in each row's final reward and, once its window has closed, its guardrail metrics
/// (re-attributed from the stored outcomes); returns how many rewards are still pending.
fn settle(input: &ReportInput<'_>, rows: &mut [Row]) -> Result<u64> {
    let uc = input.use_case;
    let name = uc.name.as_str();
    let window = uc.metric.window();
    let (start, end) = match (
        rows.iter().map(|r| r.decision.decided_at).min(),
        rows.iter().map(|r| r.decision.decided_at).max(),
    ) {
        (Some(a), Some(b)) => (a, b),
        _ => (input.now, input.now),
    };
    let rewards: HashMap<String, (f64, RewardStatus)> = input
        .store
        .rewards_between(
            name,
            start,
            end.saturating_add(jiff::SignedDuration::from_secs(1)).unwrap_or(end),
        )?
        .into_iter()
        .map(|r| (r.decision_id, (r.value, r.status)))
        .collect();
    let outcomes = input.store.outcomes_between(name, start, input.now)?;
    let decisions: Vec<Decision> = rows.iter().map(|r| r.decision.clone()).collect();
    let attributed = attribute_outcomes(window, &decisions, &outcomes, |_| true);
    drop(decisions);
    let mut pending = 0u64;
    for (row, outs) in rows.iter_mut().zip(&attributed) {
        if let Some((value, status)) = rewards.get(&row.decision.id) {
            if *status == RewardStatus::Final {
                row.success = Some(*value);
            } else {
                pending += 1;
            }
        } else if uc.metric.window_end(row.decision.decided_at) > input.now {
            pending += 1;
        }
        if uc.metric.window_end(row.decision.decided_at) <= input.now {
            let (conversion, revenue, unsubscribe) = guardrail_values(outs);
            row.conversion = Some(conversion);
            row.revenue = Some(revenue);
            row.unsubscribe = Some(unsubscribe);
        }
    }
    Ok(pending)
}

/// The success metric's performance per group, then the three guardrail metrics'.
fn performance(uc: &UseCase, rows: &[Row]) -> Vec<MetricPerformance> {
    let shares = group_shares(uc);
    vec![
        metric_performance("success", &metric_label(uc), false, rows, &shares, |r| r.success),
        metric_performance(
            "conversion",
            "conversion (any purchase or tracked event in the window)",
            true,
            rows,
            &shares,
            |r| r.conversion,
        ),
        metric_performance(
            "revenue",
            "revenue in the window (before offer cost)",
            true,
            rows,
            &shares,
            |r| r.revenue,
        ),
        metric_performance("unsubscribe", "unsubscribed in the window", true, rows, &shares, |r| {
            r.unsubscribe
        }),
    ]
}

/// Treatment against control on the success metric (the first of `performance`), or a zero
/// difference with a note while either group has no final reward.
fn headline_uplift(performance: &[MetricPerformance]) -> Uplift {
    performance
        .first()
        .and_then(|p| p.uplift_vs_control.clone())
        .unwrap_or_else(|| Uplift {
            metric: "success".into(),
            group: TREATMENT.into(),
            baseline: CONTROL.into(),
            difference: Interval {
                estimate: 0.0,
                low: 0.0,
                high: 0.0,
            },
            relative: None,
            method: stats::UPLIFT_METHOD.into(),
            includes_zero: true,
            note: Some("Not enough final rewards in both groups yet to compare them.".into()),
        })
}

/// The policy of the stored `model`, if there is one.
fn restore_policy(setup: &Setup, model: Option<&ModelRecord>) -> Result<Option<Box<dyn Policy>>> {
    let Some(model) = model else {
        return Ok(None);
    };
    let snapshot: Snapshot = serde_json::from_value(model.snapshot.clone()).map_err(|e| Error::Corrupt {
        what: "the stored model",
        message: e.to_string(),
    })?;
    Ok(Some(offerloop_policy::restore(setup.clone(), snapshot)?))
}

/// Whether `d` sends a message: not a no-message control, and no "skip" option.
fn is_message(uc: &UseCase, d: &Decision) -> bool {
    if d.policy_version == NO_MESSAGE_VERSION {
        return false;
    }
    match uc.actions.decode(d.action) {
        Ok(action) => !uc
            .actions
            .dimensions()
            .iter()
            .zip(&action.0)
            .any(|(dim, &o)| dim.options.get(o as usize).is_some_and(|opt| opt.is_skip())),
        Err(_) => false,
    }
}

/// (converted, revenue, unsubscribed) of one decision's attributed outcomes.
fn guardrail_values(outcomes: &[&Outcome]) -> (f64, f64, f64) {
    let mut converted = false;
    let mut revenue = 0.0;
    let mut unsubscribed = false;
    for o in outcomes {
        match &o.kind {
            OutcomeKind::Purchase { .. } => {
                converted = true;
                revenue += o.value;
            }
            OutcomeKind::CustomEvent { .. } => converted = true,
            OutcomeKind::Unsubscribe { .. } => unsubscribed = true,
            _ => {}
        }
    }
    (
        f64::from(u8::from(converted)),
        revenue,
        f64::from(u8::from(unsubscribed)),
    )
}

fn metric_label(uc: &UseCase) -> String {
    let days = uc.metric.attribution_window_days;
    match &uc.metric.kind {
        MetricKind::Revenue {
            subtract_option_cost: true,
            ..
        } => format!("revenue in {days} days − offer cost"),
        MetricKind::Revenue { .. } => format!("revenue in {days} days"),
        MetricKind::Conversion { .. } => format!("conversion rate within {days} days"),
        other => format!("{} within {days} days", other.name()),
    }
}

/// Each group's share of the audience (its assignment probability).
fn group_shares(uc: &UseCase) -> HashMap<&'static str, f64> {
    let control = uc.holdout.control_fraction().get();
    let random = uc.holdout.random_control_fraction().get();
    HashMap::from([
        (TREATMENT, (1.0 - control - random).max(0.0)),
        (CONTROL, control),
        (RANDOM_CONTROL, random),
    ])
}

fn metric_performance(
    key: &str,
    label: &str,
    guardrail: bool,
    rows: &[Row],
    shares: &HashMap<&'static str, f64>,
    value: impl Fn(&Row) -> Option<f64>,
) -> MetricPerformance {
    let mut totals: HashMap<&str, MeanAccumulator> = HashMap::new();
    let mut values: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut by_day: BTreeMap<Date, HashMap<&str, MeanAccumulator>> = BTreeMap::new();
    let mut population = 0.0;
    for r in rows {
        let Some(v) = value(r) else { continue };
        let g = group_name(r.decision.group);
        totals.entry(g).or_default().push(v);
        values.entry(g).or_default().push(v);
        by_day.entry(r.date).or_default().entry(g).or_default().push(v);
        population += 1.0;
    }
    let groups = GROUPS
        .iter()
        .map(|&g| group_name(g))
        .filter_map(|g| {
            let acc = totals.get(g)?;
            let mean = acc.interval().or_else(|| {
                acc.mean().map(|m| Interval {
                    estimate: m,
                    low: m,
                    high: m,
                })
            })?;
            let vs = values.get(g).map(Vec::as_slice).unwrap_or_default();
            let share = shares.get(g).copied().unwrap_or(0.0);
            let (ips, snips) = if share > 0.0 {
                let inclusion = vec![share; vs.len()];
                (
                    stats::horvitz_thompson(vs, &inclusion, population),
                    stats::hajek(vs, &inclusion),
                )
            } else {
                (None, None)
            };
            Some(GroupStats {
                group: g.to_owned(),
                n: acc.n(),
                mean,
                ips,
                snips,
            })
        })
        .collect();
    let empty = MeanAccumulator::default();
    let t = totals.get(TREATMENT).unwrap_or(&empty);
    let uplift_vs_control = stats::uplift(key, TREATMENT, CONTROL, t, totals.get(CONTROL).unwrap_or(&empty));
    let uplift_vs_random = stats::uplift(
        key,
        TREATMENT,
        RANDOM_CONTROL,
        t,
        totals.get(RANDOM_CONTROL).unwrap_or(&empty),
    );
    let mut cumulative: HashMap<&str, MeanAccumulator> = HashMap::new();
    let daily = by_day
        .into_iter()
        .map(|(date, day)| {
            let mut groups = Vec::new();
            for g in GROUPS.map(group_name) {
                let Some(acc) = day.get(g) else { continue };
                let cum = cumulative.entry(g).or_default();
                cum.merge(acc);
                let mean = acc.mean().unwrap_or(0.0);
                let c = cum.mean().unwrap_or(0.0);
                groups.push(DailyGroup {
                    group: g.to_owned(),
                    n: acc.n(),
                    mean,
                    cumulative: cum.interval().unwrap_or(Interval {
                        estimate: c,
                        low: c,
                        high: c,
                    }),
                });
            }
            let cumulative_uplift = match (cumulative.get(TREATMENT), cumulative.get(CONTROL)) {
                (Some(a), Some(b)) => stats::difference(a, b),
                _ => None,
            };
            DailyPoint {
                date: date.to_string(),
                groups,
                cumulative_uplift,
            }
        })
        .collect();
    MetricPerformance {
        metric: key.to_owned(),
        label: label.to_owned(),
        guardrail,
        groups,
        uplift_vs_control,
        uplift_vs_random,
        daily,
    }
}

/// The customer a row was decided for, when its features were stored.
fn customer_of(row: &Row) -> Option<Customer> {
    Some(Customer {
        id: row.decision.customer_id.clone(),
        features: row.features.clone()?,
        time_zone: row.time_zone.clone(),
    })
}

fn describe(uc: &UseCase, action: &JointAction) -> String {
    uc.actions
        .dimensions()
        .iter()
        .zip(&action.0)
        .map(|(d, &o)| {
            let option = d.options.get(o as usize).map_or("?", |o| o.id.as_str());
            format!("{}={option}", d.name)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Minimum effective sample size for a static action to be a "best single action" candidate.
const MIN_STATIC_ESS: f64 = 30.0;

fn what_if(
    uc: &UseCase,
    setup: &Setup,
    policy: Option<&dyn Policy>,
    round: &DecisionRound,
    rows: &[Row],
    config: &OpeConfig,
    notes: &mut Vec<String>,
) -> Result<WhatIf> {
    let space = setup.space();
    // Logged samples: treatment and random control with a final reward and stored features.
    struct Logged {
        customer: Customer,
        action: ActionId,
        propensity: f64,
        reward: f64,
        eligible_count: f64,
        eligible_bau: Option<ActionId>,
    }
    let bau = setup.business_as_usual();
    let mut logged = Vec::new();
    for r in rows {
        if r.decision.group == Group::Control {
            continue;
        }
        let (Some(reward), Some(customer)) = (r.success, customer_of(r)) else {
            continue;
        };
        let Ok(eligible) = Eligible::of(space, &customer) else {
            continue;
        };
        let eligible_bau = bau.filter(|a| eligible.contains(a)).map(|a| eligible.encode(a));
        logged.push(Logged {
            action: r.decision.action,
            propensity: r.decision.propensity.get(),
            reward,
            eligible_count: eligible.count() as f64,
            eligible_bau,
            customer,
        });
    }
    let method = format!(
        "Off-policy estimates on {} logged treatment and random-control decisions with final rewards, \
         weighted by their logged propensities: IPS (inverse propensity scoring) and SNIPS \
         (self-normalised); {} % bootstrap percentile intervals ({} resamples); effective sample size \
         is Kish's (Σw)²/Σw². A small effective sample size means the estimate rests on few decisions.",
        logged.len(),
        (config.confidence * 100.0).round(),
        config.bootstrap_samples
    );
    let mut policies = Vec::new();
    if logged.is_empty() {
        notes.push("What-if: no logged decision with a final reward yet.".into());
        return Ok(WhatIf {
            samples: 0,
            method,
            policies,
        });
    }
    // An estimator that cannot estimate a policy (no logged decision it would have taken: no overlap)
    // leaves its row out and says so in the notes; the report goes on.
    let skipped = std::cell::RefCell::new(Vec::new());
    let estimate_of = |target: &[f64]| -> Result<Vec<EstimateRow>> {
        let samples: Vec<LoggedSample> = logged
            .iter()
            .zip(target)
            .map(|(l, &t)| LoggedSample::new(l.reward, l.propensity, t))
            .collect();
        let mut rows = Vec::new();
        for e in [Estimator::Ips, Estimator::Snips] {
            match offerloop_policy::ope::estimate(&samples, e, config) {
                Ok(est) => rows.push(EstimateRow {
                    estimator: e.as_str().to_owned(),
                    value: Interval {
                        estimate: est.value,
                        low: est.ci_low,
                        high: est.ci_high,
                    },
                    effective_sample_size: est.ess,
                }),
                Err(err) => skipped.borrow_mut().push(err.to_string()),
            }
        }
        Ok(rows)
    };
    if let Some(policy) = policy {
        let target = logged
            .iter()
            .map(|l| policy.action_probability(&l.customer, l.action, round))
            .collect::<std::result::Result<Vec<f64>, _>>()?;
        policies.push(PolicyEstimate {
            kind: "current".into(),
            name: format!("current policy ({})", policy.model_version()),
            estimates: estimate_of(&target)?,
        });
    }
    if bau.is_some() {
        let target: Vec<f64> = logged
            .iter()
            .map(|l| f64::from(u8::from(l.eligible_bau == Some(l.action))))
            .collect();
        policies.push(PolicyEstimate {
            kind: "business_as_usual".into(),
            name: "business as usual (the control's action)".into(),
            estimates: estimate_of(&target)?,
        });
    }
    // The best single joint action, as an A/B test over every joint action would pick it: the one
    // with the highest SNIPS among those with enough effective support.
    let mut candidates: Vec<(ActionId, f64)> = Vec::new();
    let mut by_action: HashMap<ActionId, (f64, f64, f64, f64)> = HashMap::new();
    for l in &logged {
        let w = 1.0 / l.propensity;
        let e = by_action.entry(l.action).or_default();
        e.0 += w * l.reward;
        e.1 += w;
        e.2 += w * w;
        e.3 += 1.0;
    }
    for (a, (wr, w, w2, _)) in &by_action {
        let ess = w * w / w2;
        if ess >= MIN_STATIC_ESS {
            candidates.push((*a, wr / w));
        }
    }
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if let Some(&(best, _)) = candidates.first() {
        let target: Vec<f64> = logged.iter().map(|l| f64::from(u8::from(l.action == best))).collect();
        let described = uc.actions.decode(best).map(|a| describe(uc, &a)).unwrap_or_default();
        policies.push(PolicyEstimate {
            kind: "best_static".into(),
            name: format!("best single action (what an A/B test would pick): {described}"),
            estimates: estimate_of(&target)?,
        });
    } else {
        notes.push(format!(
            "What-if: no single joint action has an effective sample size of {MIN_STATIC_ESS} yet, so the best static action is not estimated."
        ));
    }
    let target: Vec<f64> = logged.iter().map(|l| 1.0 / l.eligible_count).collect();
    policies.push(PolicyEstimate {
        kind: "uniform".into(),
        name: "uniform random over eligible actions".into(),
        estimates: estimate_of(&target)?,
    });
    for why in skipped.into_inner() {
        notes.push(format!("What-if: an estimate was left out: {why}."));
    }
    policies.retain(|p| !p.estimates.is_empty());
    Ok(WhatIf {
        samples: logged.len() as u64,
        method,
        policies,
    })
}

/// The segment a feature value falls in (numbers by the bands of `edges`).
fn segment_of(value: &FeatureValue, edges: Option<&[f64]>) -> Option<String> {
    match value {
        FeatureValue::Category(c) => Some(c.clone()),
        FeatureValue::Boolean(b) => Some(b.to_string()),
        FeatureValue::Number(x) => {
            let edges = edges?;
            let band = edges.iter().filter(|e| *x >= **e).count();
            let low = if band == 0 { None } else { edges.get(band - 1) };
            let high = edges.get(band);
            Some(match (low, high) {
                (None, Some(h)) => format!("< {}", fmt_edge(*h)),
                (Some(l), Some(h)) => format!("{}–{}", fmt_edge(*l), fmt_edge(*h)),
                (Some(l), None) => format!("≥ {}", fmt_edge(*l)),
                (None, None) => "all".to_owned(),
            })
        }
        FeatureValue::Missing => Some("missing".to_owned()),
        _ => None,
    }
}

fn fmt_edge(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// Quartile edges of a numeric feature (distinct, sorted).
fn quartiles(mut values: Vec<f64>) -> Vec<f64> {
    values.retain(|v| v.is_finite());
    if values.len() < 8 {
        return Vec::new();
    }
    values.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> = [0.25, 0.5, 0.75]
        .iter()
        .map(|q| values[((values.len() - 1) as f64 * q).round() as usize])
        .collect();
    edges.dedup();
    edges
}

/// What was learned: option shares per day, feature effects, segment tables and the learning curve.
fn insights(uc: &UseCase, policy: Option<&dyn Policy>, rows: &[Row], explain_sample: usize) -> Insights {
    let dates: Vec<Date> = rows
        .iter()
        .map(|r| r.date)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let feature_effects = match (policy, dates.last()) {
        (Some(policy), Some(last)) => feature_effects(uc, policy, rows, *last, explain_sample),
        _ => Vec::new(),
    };
    Insights {
        option_shares: option_shares(uc, rows, &dates),
        feature_effects,
        segments: segment_tables(uc, rows, &dates),
        learning_curve: learning_curve(rows),
    }
}

/// Each dimension's option shares of the treatment messages, per day of `dates`.
fn option_shares(uc: &UseCase, rows: &[Row], dates: &[Date]) -> Vec<OptionShares> {
    let dims = uc.actions.dimensions();
    let date_index: HashMap<Date, usize> = dates.iter().enumerate().map(|(i, d)| (*d, i)).collect();
    // counts[dimension][option][day]
    let mut counts: Vec<Vec<Vec<u64>>> = dims
        .iter()
        .map(|dim| vec![vec![0u64; dates.len()]; dim.options.len()])
        .collect();
    let mut totals = vec![0u64; dates.len()];
    let treated = rows
        .iter()
        .filter(|r| r.decision.group == Group::Treatment && r.message)
        .filter_map(|r| Some((r, uc.actions.decode(r.decision.action).ok()?)));
    for (r, action) in treated {
        let Some(&i) = date_index.get(&r.date) else { continue };
        totals[i] += 1;
        for (d, &o) in action.0.iter().enumerate() {
            if let Some(c) = counts.get_mut(d).and_then(|c| c.get_mut(o as usize)) {
                c[i] += 1;
            }
        }
    }
    dims.iter()
        .zip(&counts)
        .map(|(dim, counts)| OptionShares {
            dimension: dim.name.to_string(),
            dates: dates.iter().map(ToString::to_string).collect(),
            options: dim
                .options
                .iter()
                .zip(counts)
                .map(|(opt, per_day)| OptionShareLine {
                    option: opt.id.to_string(),
                    shares: per_day
                        .iter()
                        .zip(&totals)
                        .map(|(&c, &t)| if t == 0 { 0.0 } else { c as f64 / t as f64 })
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

/// Per-option feature effects from the model's explanations of (up to `explain_sample` of) the
/// customers decided on `last`, largest first; each effect is the mean of a feature's contribution
/// to an option, centred on the dimension's mean over its options.
fn feature_effects(
    uc: &UseCase,
    policy: &dyn Policy,
    rows: &[Row],
    last: Date,
    explain_sample: usize,
) -> Vec<FeatureEffect> {
    let dims = uc.actions.dimensions();
    let sample: Vec<Customer> = rows
        .iter()
        .filter(|r| r.date == last)
        .filter_map(customer_of)
        .take(explain_sample)
        .collect();
    let mut effects = Vec::new();
    for ((d, o, feature), (sum, n)) in centred_contributions(policy, &sample) {
        let effect = sum / n as f64;
        if effect.abs() < 1e-9 {
            continue;
        }
        let (Some(dim), Some(opt)) = (dims.get(d), dims.get(d).and_then(|dim| dim.options.get(o))) else {
            continue;
        };
        effects.push(FeatureEffect {
            dimension: dim.name.to_string(),
            option: opt.id.to_string(),
            feature,
            effect,
        });
    }
    effects.sort_by(|a, b| b.effect.abs().total_cmp(&a.effect.abs()));
    effects
}

/// (dimension, option, feature) → (sum, count) of each feature's contribution to each option over the
/// `customers`, centred per customer on the dimension's mean over its options. Customers the policy
/// cannot explain are skipped.
fn centred_contributions(policy: &dyn Policy, customers: &[Customer]) -> BTreeMap<(usize, usize, String), (f64, u64)> {
    let mut sums: BTreeMap<(usize, usize, String), (f64, u64)> = BTreeMap::new();
    for c in customers {
        let Ok(explanation) = policy.explain(c) else { continue };
        for (d, dim) in explanation.dimensions.iter().enumerate() {
            let mut per_feature: BTreeMap<&str, Vec<(usize, f64)>> = BTreeMap::new();
            for (o, opt) in dim.options.iter().enumerate() {
                for (feature, v) in &opt.contributions {
                    per_feature.entry(feature.as_str()).or_default().push((o, *v));
                }
            }
            for (feature, list) in per_feature {
                let mean = list.iter().map(|(_, v)| v).sum::<f64>() / list.len() as f64;
                for (o, v) in list {
                    let e = sums.entry((d, o, feature.to_owned())).or_default();
                    e.0 += v - mean;
                    e.1 += 1;
                }
            }
        }
    }
    sums
}

/// Fewest and most segments a feature may have for its table to be shown.
const SEGMENTS_SHOWN: std::ops::RangeInclusive<usize> = 2..=12;

/// A table per feature: every category or boolean value, numbers in quartile bands; a feature with
/// fewer than 2 or more than 12 segments has none.
fn segment_tables(uc: &UseCase, rows: &[Row], dates: &[Date]) -> Vec<SegmentTable> {
    let channel_dim = uc
        .actions
        .dimensions()
        .iter()
        .position(|d| d.kind == offerloop_domain::DimensionKind::Channel);
    let last_week: BTreeSet<Date> = dates.iter().rev().take(7).copied().collect();
    let mut tables = Vec::new();
    for (f, spec) in uc.features.specs().iter().enumerate() {
        let Some(edges) = segment_edges(rows, f, spec.ty) else {
            continue;
        };
        let mut by_segment: BTreeMap<String, Segment<'_>> = BTreeMap::new();
        for r in rows {
            let Some(value) = r.features.as_ref().and_then(|v| v.get(f)) else {
                continue;
            };
            let Some(segment) = segment_of(value, edges.as_deref()) else {
                continue;
            };
            by_segment
                .entry(segment)
                .or_insert_with(|| Segment::new(uc.actions.dimensions().len()))
                .add(uc, r, channel_dim, &last_week);
        }
        if !SEGMENTS_SHOWN.contains(&by_segment.len()) {
            continue;
        }
        tables.push(SegmentTable {
            feature: spec.name.to_string(),
            rows: by_segment
                .into_iter()
                .map(|(segment, seg)| seg.into_row(segment, uc.actions.dimensions(), channel_dim))
                .collect(),
        });
    }
    tables
}

/// How feature `f` is cut into segments: `Some(None)` by value (categories, booleans),
/// `Some(Some(edges))` in the quartile bands of its numbers; `None` when it is not segmented (a
/// timestamp, or too few numbers for quartiles).
fn segment_edges(rows: &[Row], f: usize, ty: FeatureType) -> Option<Option<Vec<f64>>> {
    match ty {
        FeatureType::Number => {
            let edges = quartiles(
                rows.iter()
                    .filter_map(|r| match r.features.as_ref()?.get(f)? {
                        FeatureValue::Number(x) => Some(*x),
                        _ => None,
                    })
                    .collect(),
            );
            (!edges.is_empty()).then_some(Some(edges))
        }
        FeatureType::Category | FeatureType::Boolean => Some(None),
        _ => None,
    }
}

/// What one segment of a feature accumulates over the rows.
struct Segment<'r> {
    customers: BTreeSet<&'r str>,
    treatment: MeanAccumulator,
    control: MeanAccumulator,
    /// Per dimension, the treatment messages of the last week per option.
    options: Vec<BTreeMap<usize, u64>>,
    /// Treatment messages of the last week.
    messages: u64,
    /// (metric, dimension, given channel option, option) → (values, logged propensities).
    logged: BTreeMap<LoggedKey, (Vec<f64>, Vec<f64>)>,
}

impl<'r> Segment<'r> {
    fn new(dimensions: usize) -> Self {
        Self {
            customers: BTreeSet::new(),
            treatment: MeanAccumulator::default(),
            control: MeanAccumulator::default(),
            options: vec![BTreeMap::new(); dimensions],
            messages: 0,
            logged: BTreeMap::new(),
        }
    }

    /// Counts `r`: its customer, its final reward in its group, its logged values (messages of the
    /// explored groups) and, for a treatment message of the last week, its options.
    fn add(&mut self, uc: &UseCase, r: &'r Row, channel_dim: Option<usize>, last_week: &BTreeSet<Date>) {
        self.customers.insert(r.decision.customer_id.as_str());
        match (r.decision.group, r.success) {
            (Group::Treatment, Some(v)) => self.treatment.push(v),
            (Group::Control, Some(v)) => self.control.push(v),
            _ => {}
        }
        if r.decision.group != Group::Control
            && r.message
            && let Ok(action) = uc.actions.decode(r.decision.action)
        {
            self.log(r, &action, channel_dim);
        }
        if r.decision.group == Group::Treatment
            && r.message
            && last_week.contains(&r.date)
            && let Ok(action) = uc.actions.decode(r.decision.action)
        {
            self.messages += 1;
            for (d, &o) in action.0.iter().enumerate() {
                *self.options[d].entry(o as usize).or_default() += 1;
            }
        }
    }

    /// Logs `r`'s success and conversion values with its propensity, under each of its options, and
    /// under each non-channel option given its channel option.
    fn log(&mut self, r: &Row, action: &JointAction, channel_dim: Option<usize>) {
        let p = r.decision.propensity.get();
        let channel = channel_dim.and_then(|c| action.0.get(c).map(|&o| o as usize));
        for (metric, value) in [(SUCCESS, r.success), (CONVERSION, r.conversion)] {
            let Some(value) = value else { continue };
            for (d, &o) in action.0.iter().enumerate() {
                let mut keys = vec![(metric, d, None, o as usize)];
                if Some(d) != channel_dim
                    && let Some(c) = channel
                {
                    keys.push((metric, d, Some(c), o as usize));
                }
                for key in keys {
                    let e = self.logged.entry(key).or_default();
                    e.0.push(value);
                    e.1.push(p);
                }
            }
        }
    }

    /// The table row: customers, the option chosen most per dimension, the uplift and the estimated
    /// best options.
    fn into_row(self, segment: String, dims: &[offerloop_domain::Dimension], channel_dim: Option<usize>) -> SegmentRow {
        SegmentRow {
            segment,
            customers: self.customers.len() as u64,
            preferred: dims
                .iter()
                .enumerate()
                .filter_map(|(d, dim)| {
                    let (&o, &n) = self.options[d].iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))?;
                    Some(PreferredOption {
                        dimension: dim.name.to_string(),
                        option: dim.options.get(o)?.id.to_string(),
                        share: n as f64 / self.messages.max(1) as f64,
                    })
                })
                .collect(),
            uplift: stats::difference(&self.treatment, &self.control),
            best: estimated_best(dims, channel_dim, &self.logged),
        }
    }
}

/// The mean final reward per group, per decision date.
fn learning_curve(rows: &[Row]) -> Vec<LearningPoint> {
    let mut curve: BTreeMap<Date, HashMap<&str, MeanAccumulator>> = BTreeMap::new();
    for r in rows {
        if let Some(v) = r.success {
            curve
                .entry(r.date)
                .or_default()
                .entry(group_name(r.decision.group))
                .or_default()
                .push(v);
        }
    }
    curve
        .into_iter()
        .map(|(date, g)| LearningPoint {
            date: date.to_string(),
            treatment: g.get(TREATMENT).and_then(MeanAccumulator::mean),
            control: g.get(CONTROL).and_then(MeanAccumulator::mean),
            random_control: g.get(RANDOM_CONTROL).and_then(MeanAccumulator::mean),
        })
        .collect()
}

/// Fewest decisions behind an option for its estimate to be listed.
const MIN_OPTION_DECISIONS: usize = 30;

/// Metric keys of the "what works best" estimates.
const SUCCESS: &str = "success";
/// Conversion (any purchase or tracked event in the window).
const CONVERSION: &str = "conversion";

/// (metric, dimension, given channel option, option).
type LoggedKey = (&'static str, usize, Option<usize>, usize);

/// Per dimension (and per channel for the others) the option with the highest Hájek estimate.
fn estimated_best(
    dims: &[offerloop_domain::Dimension],
    channel_dim: Option<usize>,
    logged: &BTreeMap<LoggedKey, (Vec<f64>, Vec<f64>)>,
) -> Vec<EstimatedBest> {
    // (metric, dimension, given channel option) → [(option, estimate, decisions)].
    type Estimates = Vec<(usize, Interval, u64)>;
    let mut groups: BTreeMap<(&str, usize, Option<usize>), Estimates> = BTreeMap::new();
    for ((metric, d, given, o), (rewards, propensities)) in logged {
        if rewards.len() < MIN_OPTION_DECISIONS {
            continue;
        }
        if let Some(value) = stats::hajek(rewards, propensities) {
            groups
                .entry((*metric, *d, *given))
                .or_default()
                .push((*o, value, rewards.len() as u64));
        }
    }
    let mut out = Vec::new();
    for ((metric, d, given), mut list) in groups {
        if list.len() < 2 {
            continue;
        }
        list.sort_by(|a, b| b.1.estimate.total_cmp(&a.1.estimate).then(a.0.cmp(&b.0)));
        let Some(dim) = dims.get(d) else { continue };
        let option_id = |o: usize| dim.options.get(o).map(|x| x.id.to_string()).unwrap_or_default();
        let given = given.and_then(|c| {
            let cd = dims.get(channel_dim?)?;
            Some(format!("{}={}", cd.name, cd.options.get(c)?.id))
        });
        out.push(EstimatedBest {
            metric: metric.to_owned(),
            dimension: dim.name.to_string(),
            given,
            option: option_id(list[0].0),
            value: list[0].1,
            options: list
                .iter()
                .map(|(o, v, n)| OptionValue {
                    option: option_id(*o),
                    value: v.estimate,
                    n: *n,
                })
                .collect(),
        });
    }
    out
}

fn drift(input: &ReportInput<'_>, runs: &[RunRecord]) -> Result<Drift> {
    let name = input.use_case.name.as_str();
    let (first, last) = match (runs.first(), runs.last()) {
        (Some(a), Some(b)) => (a.date, b.date),
        _ => {
            return Ok(Drift {
                alerts: Vec::new(),
                timeline: Vec::new(),
            });
        }
    };
    let tz = jiff::tz::TimeZone::get(&input.use_case.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let alerts: Vec<DriftAlert> = input
        .store
        .drift_alerts(name)?
        .into_iter()
        .filter(|a| {
            let date = tz.to_datetime(a.detected_at).date();
            date >= first && date <= last.saturating_add(jiff::Span::new().days(1))
        })
        .map(|a| DriftAlert {
            detected_at: a.detected_at.to_string(),
            dimension: a.dimension,
            option: a.option,
            magnitude: a.magnitude,
        })
        .collect();
    let mut timeline = Vec::new();
    let mut last_model: Option<String> = None;
    let mut last_config: Option<String> = None;
    for run in runs {
        let summary = run.summary.as_ref();
        let get = |k: &str| {
            summary
                .and_then(|s| s.get(k))
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
        };
        timeline.push(TimelineEvent {
            date: run.date.to_string(),
            kind: "run".into(),
            label: format!("{} decisions, {} messages", get("decisions"), get("messages")),
        });
        let model = summary
            .and_then(|s| s.get("model_version"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        let config = summary
            .and_then(|s| s.get("config_fingerprint"))
            .and_then(serde_json::Value::as_str)
            .filter(|f| !f.is_empty())
            .map(str::to_owned);
        if let (Some(before), Some(now)) = (&last_config, &config)
            && before != now
        {
            timeline.push(TimelineEvent {
                date: run.date.to_string(),
                kind: "config".into(),
                label: format!("configuration changed ({before} → {now})"),
            });
        }
        if config.is_some() {
            last_config = config;
        }
        if model.is_some() && model != last_model {
            timeline.push(TimelineEvent {
                date: run.date.to_string(),
                kind: "model".into(),
                label: format!("model {}", model.as_deref().unwrap_or_default()),
            });
            last_model = model;
        }
    }
    for a in &alerts {
        timeline.push(TimelineEvent {
            date: a.detected_at.get(..10).unwrap_or_default().to_owned(),
            kind: "drift".into(),
            label: format!(
                "drift: {}={} (magnitude {:.3})",
                a.dimension.as_deref().unwrap_or("*"),
                a.option.as_deref().unwrap_or("*"),
                a.magnitude
            ),
        });
    }
    timeline.sort_by(|a, b| a.date.cmp(&b.date));
    Ok(Drift { alerts, timeline })
}

/// Messages offerloop sent to each campaign or canvas (accepted batches of the ledger).
fn fill_offerloop_messages(store: &dyn Store, runs: &[RunRecord], braze: &mut BrazeSide) -> Result<()> {
    let mut sent: HashMap<String, u64> = HashMap::new();
    for run in runs {
        for b in store.batches(run.id)? {
            if b.state != offerloop_store::BatchState::Sent || b.dry_run {
                continue;
            }
            use offerloop_store::BatchTarget;
            let (kind, id) = match &b.target {
                BatchTarget::Campaign(id) | BatchTarget::CampaignSchedule(id) => ("campaign", id),
                BatchTarget::Canvas(id) | BatchTarget::CanvasSchedule(id) => ("canvas", id),
                BatchTarget::UsersTrack => continue,
            };
            *sent.entry(format!("{kind}:{id}")).or_default() += b.decision_ids.len() as u64;
        }
    }
    for s in &mut braze.series {
        s.offerloop_messages = sent.get(&format!("{}:{}", s.kind, s.id)).copied().unwrap_or(0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use offerloop_domain::{CustomerId, Probability, Reward};
    use offerloop_store::{AudienceRow, SqliteStore};

    use super::*;

    fn use_case() -> UseCase {
        let path = format!("{}/../../examples/winback.toml", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        offerloop_domain::config::parse_use_case(&text, &path).unwrap()
    }

    /// One day: treatment rewards 3, 5, 7 (mean 5), control 1, 3 (mean 2), random control 4, 4.
    #[test]
    fn a_report_from_a_hand_made_store_has_the_hand_computed_uplift() {
        let uc = use_case();
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
        let day: Date = "2026-01-05".parse().unwrap();
        let at: Timestamp = "2026-01-05T06:00:00Z".parse().unwrap();
        let run = store.begin_run(uc.name.as_str(), day, at).unwrap();
        let rows = [
            ("t1", Group::Treatment, 3.0),
            ("t2", Group::Treatment, 5.0),
            ("t3", Group::Treatment, 7.0),
            ("c1", Group::Control, 1.0),
            ("c2", Group::Control, 3.0),
            ("r1", Group::RandomControl, 4.0),
            ("r2", Group::RandomControl, 4.0),
        ];
        let features = format!(
            "{{\"values\": {}}}",
            serde_json::to_string(&vec![FeatureValue::Missing; uc.features.len()]).unwrap()
        );
        let audience: Vec<AudienceRow> = rows
            .iter()
            .map(|(id, _, _)| AudienceRow {
                customer_id: (*id).to_owned(),
                features: features.clone(),
                time_zone: None,
            })
            .collect();
        store.record_audience(run.id, &audience).unwrap();
        let decisions: Vec<Decision> = rows
            .iter()
            .map(|(id, group, _)| Decision {
                id: format!("d-{id}"),
                use_case: uc.name.to_string(),
                customer_id: CustomerId::new(*id).unwrap(),
                decided_at: at,
                group: *group,
                action: ActionId(0),
                propensity: Probability::new(0.5).unwrap(),
                policy_version: "test".into(),
                planned_send_at: None,
                cost: 0.0,
            })
            .collect();
        store.record_decisions(run.id, &decisions).unwrap();
        store
            .upsert_rewards(
                &rows
                    .iter()
                    .map(|(id, _, value)| Reward {
                        decision_id: format!("d-{id}"),
                        value: *value,
                        status: RewardStatus::Final,
                        attributed_outcomes: 1,
                    })
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        for phase in [
            RunPhase::Audience,
            RunPhase::Outcomes,
            RunPhase::Learned,
            RunPhase::Decided,
        ] {
            store.advance_run(run.id, phase, at).unwrap();
        }
        let now: Timestamp = "2026-02-05T06:00:00Z".parse().unwrap();
        let report = build(&ReportInput::new(&uc, &store, now)).unwrap();

        assert_eq!(report.headline.decisions, 7);
        assert_eq!(report.headline.final_rewards, 7);
        assert_eq!((report.from.as_str(), report.to.as_str()), ("2026-01-05", "2026-01-05"));
        let u = &report.headline.uplift;
        // 5 − 2 = 3; Welch SE = sqrt(4/3 + 2/2) = sqrt(7/3); half-width = 1.96 · 1.5275 = 2.994.
        assert!((u.difference.estimate - 3.0).abs() < 1e-12);
        let half = stats::Z95 * (7.0f64 / 3.0).sqrt();
        assert!((u.difference.high - u.difference.estimate - half).abs() < 1e-9);
        assert!(!u.includes_zero);
        let success = &report.performance[0];
        assert_eq!(success.metric, "success");
        let group = |g: &str| success.groups.iter().find(|s| s.group == g).unwrap();
        assert_eq!(group(TREATMENT).n, 3);
        assert!((group(TREATMENT).mean.estimate - 5.0).abs() < 1e-12);
        assert!((group(CONTROL).mean.estimate - 2.0).abs() < 1e-12);
        // Hájek with one inclusion probability per group is the plain mean.
        assert!((group(RANDOM_CONTROL).snips.unwrap().estimate - 4.0).abs() < 1e-12);
        // Horvitz–Thompson: Σ r / share / N = 15 / 0.85 / 7.
        let ht = group(TREATMENT).ips.unwrap().estimate;
        assert!((ht - 15.0 / 0.85 / 7.0).abs() < 1e-9, "{ht}");
        assert_eq!(success.daily.len(), 1);
        assert!(report.drift.timeline.iter().any(|e| e.kind == "run"));
        // Guardrail metrics: no outcome was stored, so nobody converted.
        let conversion = &report.performance[1];
        assert!(conversion.groups.iter().all(|g| g.mean.estimate == 0.0));
    }

    /// A treatment message decided on `day` with `features` and a final reward of `success`.
    fn row(day: &str, features: Vec<FeatureValue>, success: f64) -> Row {
        Row {
            decision: Decision {
                id: format!("d-{day}"),
                use_case: "uc".into(),
                customer_id: CustomerId::new("c").unwrap(),
                decided_at: format!("{day}T06:00:00Z").parse().unwrap(),
                group: Group::Treatment,
                action: ActionId(0),
                propensity: Probability::new(0.5).unwrap(),
                policy_version: "test".into(),
                planned_send_at: None,
                cost: 0.0,
            },
            date: day.parse().unwrap(),
            features: Some(features),
            time_zone: None,
            message: true,
            success: Some(success),
            conversion: None,
            revenue: None,
            unsubscribe: None,
        }
    }

    #[test]
    fn numbers_are_segmented_by_quartiles_categories_by_value_timestamps_not_at_all() {
        let rows: Vec<Row> = (0..8)
            .map(|i| row("2026-01-05", vec![FeatureValue::Number(f64::from(i))], 0.0))
            .collect();
        // Quartiles of 0..=7 at ranks round(7 × q): 2, 4, 5.
        assert_eq!(
            segment_edges(&rows, 0, FeatureType::Number),
            Some(Some(vec![2.0, 4.0, 5.0]))
        );
        assert_eq!(
            segment_edges(&rows[..7], 0, FeatureType::Number),
            None,
            "too few numbers"
        );
        assert_eq!(segment_edges(&rows, 0, FeatureType::Category), Some(None));
        assert_eq!(segment_edges(&rows, 0, FeatureType::Timestamp), None);
        let edges = [2.0, 4.0, 5.0];
        let band = |x: f64| segment_of(&FeatureValue::Number(x), Some(&edges));
        assert_eq!(
            [band(1.0), band(2.0), band(4.5), band(7.0)],
            [
                Some("< 2".to_owned()),
                Some("2–4".to_owned()),
                Some("4–5".to_owned()),
                Some("≥ 5".to_owned())
            ]
        );
    }

    #[test]
    fn the_learning_curve_is_the_mean_reward_per_day_and_group() {
        let rows = [
            row("2026-01-05", vec![], 1.0),
            row("2026-01-05", vec![], 3.0),
            row("2026-01-06", vec![], 5.0),
        ];
        let curve = learning_curve(&rows);
        let points: Vec<(&str, Option<f64>, Option<f64>)> = curve
            .iter()
            .map(|p| (p.date.as_str(), p.treatment, p.control))
            .collect();
        assert_eq!(
            points,
            [("2026-01-05", Some(2.0), None), ("2026-01-06", Some(5.0), None)]
        );
    }

    #[test]
    fn an_empty_store_gives_an_empty_report_with_a_note() {
        let uc = use_case();
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
        let report = build(&ReportInput::new(&uc, &store, "2026-02-05T06:00:00Z".parse().unwrap())).unwrap();
        assert_eq!(report.headline.decisions, 0);
        assert!(report.headline.uplift.includes_zero);
        assert!(report.notes.iter().any(|n| n.contains("nothing to report")));
        assert!(report.what_if.policies.is_empty());
    }
}
