//! `offerloop policy evaluate [--model M] --logs L`: what would a policy have earned on logged decisions?
//!
//! Log lines: `{"customer_id", "features", "action": {dim: option}, "propensity", "reward"}` with an
//! optional `"target_propensity"` (the evaluated policy's probability of the logged action) and an
//! optional `"position"` (slot-based logs). `propensity` is the logging policy's probability, in
//! `(0, 1]`.
//!
//! - **Without `--model`**, every line must carry `target_propensity`, in `[0, 1]`; only IPS and SNIPS
//!   are estimated, as no reward model over the actions that were not taken exists. Features and
//!   action are then not read.
//! - **With `--model`**, the target propensity is the model's
//!   [`offerloop_policy::Policy::action_probability`] in the model's current round (or `--round`); a
//!   `target_propensity` in the line is ignored. Where a customer's eligible actions can be enumerated
//!   ([`offerloop_policy::sampling::Eligible::enumerable`]), DM, DR and SNDR are estimated too, with a
//!   tabular reward model (the mean reward of each joint action in the logs): the model's value of the
//!   logged action, and `Σ π(a|x) r̂(a)` over the eligible actions for the target. When some customer's
//!   eligible actions are too many to enumerate, DM, DR and SNDR are not estimated at all (they need
//!   model values for every sample).
//!
//! `position` is part of the context only when the use case declares a feature named `position`: then a
//! top-level `"position"` fills that feature when `"features"` has no `position` of its own. Otherwise
//! it is ignored.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use offerloop_domain::ActionId;
use offerloop_policy::ope::{self, Estimate, LoggedSample, OpeConfig, TabularRewardModel};
use offerloop_policy::sampling::Eligible;
use serde_json::{Map, Value, json};

use super::jsonl::{self, BadLines, Lines};
use rayon::prelude::*;

use super::{Output, decision_round, model};

/// Pseudo-observations of the overall mean reward that each joint action's mean in the reward model
/// starts from (shrinks actions seen only a few times).
const REWARD_MODEL_PRIOR_WEIGHT: f64 = 1.0;

/// Arguments of `offerloop policy evaluate`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvaluateArgs {
    /// The model file of the policy to evaluate. Without it, every log line needs `target_propensity`
    /// (then only IPS and SNIPS are estimated).
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Logged decisions, one JSON object a line:
    /// `{"customer_id", "features", "action", "propensity", "reward"}` (optional `"target_propensity"`,
    /// `"position"`).
    #[arg(long, value_name = "FILE")]
    pub logs: PathBuf,
    /// The round the model decides in. Default: the model's number of `learn` calls.
    #[arg(long, value_name = "N", requires = "model")]
    pub round: Option<u64>,
    /// Skip and count malformed lines instead of stopping at the first.
    #[arg(long)]
    pub skip_bad: bool,
    /// Print the estimates as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `offerloop policy evaluate`.
///
/// # Errors
/// An unreadable or invalid model or log file, a malformed line (without `--skip-bad`), a line without
/// `target_propensity` when there is no model, no usable line at all, or an estimator failure.
pub fn run(args: &EvaluateArgs) -> anyhow::Result<Output> {
    let mut lines = Lines::open(&args.logs)?;
    let mut bad = BadLines::new(args.skip_bad);
    let (samples, evaluated, note) = match &args.model {
        None => (
            logged_targets(&mut lines, &mut bad)?,
            "the logged target propensities".to_owned(),
            Some("DM, DR and SNDR need a reward model over the actions not taken: pass --model to estimate them"),
        ),
        Some(path) => {
            let loaded = model::load(path)?;
            let round = decision_round(args.round.unwrap_or(loaded.file.rounds))?;
            let samples = model_targets(&mut lines, &mut bad, &loaded, &round)?;
            let partial = samples.iter().any(|s| s.model_target.is_none());
            (
                samples,
                format!(
                    "{} ({}, round {})",
                    path.display(),
                    loaded.policy.model_version(),
                    round.round
                ),
                partial.then_some(
                    "some customers have too many eligible actions to enumerate: DM, DR and SNDR are not estimated",
                ),
            )
        }
    };
    if samples.is_empty() {
        bail!("{}: no logged decision to evaluate", lines.file());
    }
    let estimates = ope::evaluate(&samples, &OpeConfig::default()).context("off-policy evaluation")?;

    let mut output = Output::default();
    if args.json {
        let rows: Vec<Value> = estimates
            .iter()
            .map(|e| {
                json!({"estimator": e.estimator.as_str(), "value": e.value, "ci_low": e.ci_low,
                       "ci_high": e.ci_high, "ess": e.ess, "n": e.n})
            })
            .collect();
        let doc = json!({"logs": lines.file(), "policy": evaluated, "n": samples.len(),
                         "skipped_lines": bad.count(), "note": note, "estimates": rows});
        let _ = writeln!(output.stdout, "{doc}");
    } else {
        let _ = writeln!(
            output.stdout,
            "off-policy estimates of {evaluated} from {} logged decisions in {}",
            samples.len(),
            lines.file()
        );
        output.stdout.push_str(&table(&estimates));
        if let Some(note) = note {
            let _ = writeln!(output.stdout, "note: {note}");
        }
    }
    bad.report(&mut output.stderr);
    Ok(output)
}

/// The samples of logs that carry their target propensity (no model).
fn logged_targets(lines: &mut Lines, bad: &mut BadLines) -> anyhow::Result<Vec<LoggedSample>> {
    let mut samples = Vec::new();
    while let Some((n, bytes)) = lines.next_line()? {
        let parsed = bytes.and_then(jsonl::parse_object).and_then(|line| {
            jsonl::customer_id(&line)?;
            let target_propensity = match line.get("target_propensity") {
                None | Some(Value::Null) => {
                    return Err("missing `target_propensity` (pass --model to compute it from a model)".to_owned());
                }
                Some(_) => target(&line)?,
            };
            Ok(LoggedSample {
                reward: jsonl::number(&line, "reward")?,
                logging_propensity: jsonl::propensity(&line, "propensity")?,
                target_propensity,
                model_logged: None,
                model_target: None,
            })
        });
        match parsed {
            Ok(sample) => samples.push(sample),
            Err(message) => {
                let error = lines.error(n, message);
                bad.handle(error)?;
            }
        }
    }
    Ok(samples)
}

/// A `target_propensity` in `[0, 1]`.
fn target(line: &Map<String, Value>) -> Result<f64, String> {
    let p = jsonl::number(line, "target_propensity")?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("`target_propensity` must be in [0, 1], got {p}"))
    }
}

/// One parsed log line, before the reward model exists.
struct Logged {
    line: usize,
    customer: offerloop_domain::Customer,
    action: ActionId,
    reward: f64,
    propensity: f64,
}

/// The samples of logs evaluated against a model: target propensities from the policy, and a tabular
/// reward model for DM, DR and SNDR.
fn model_targets(
    lines: &mut Lines,
    bad: &mut BadLines,
    loaded: &model::Loaded,
    round: &offerloop_policy::DecisionRound,
) -> anyhow::Result<Vec<LoggedSample>> {
    let space = loaded.setup.space();
    let schema = loaded.setup.schema();
    let position = schema.index_of("position");
    let mut logged = Vec::new();
    while let Some((n, bytes)) = lines.next_line()? {
        let parsed = bytes.and_then(jsonl::parse_object).and_then(|mut line| {
            if position.is_some() {
                move_position_into_features(&mut line);
            }
            let customer = jsonl::customer(&line, schema)?;
            Ok(Logged {
                line: n,
                customer,
                action: jsonl::action(&line, space)?,
                reward: jsonl::number(&line, "reward")?,
                propensity: jsonl::propensity(&line, "propensity")?,
            })
        });
        match parsed {
            Ok(l) => logged.push(l),
            Err(message) => {
                let error = lines.error(n, message);
                bad.handle(error)?;
            }
        }
    }
    let rewards = TabularRewardModel::fit(logged.iter().map(|l| (l.action, l.reward)), REWARD_MODEL_PRIOR_WEIGHT);
    let policy = loaded.policy.as_ref();
    // One scoring per log line (the whole distribution at once), lines in parallel; results keep
    // the file's order, so errors are reported by line as before.
    let scored: Vec<offerloop_policy::Result<LoggedSample>> = logged
        .par_iter()
        .map(|l| {
            let eligible = Eligible::of(space, &l.customer)?;
            if !eligible.enumerable() {
                let target_propensity = policy.action_probability(&l.customer, l.action, round)?;
                return Ok(LoggedSample {
                    reward: l.reward,
                    logging_propensity: l.propensity,
                    target_propensity,
                    model_logged: None,
                    model_target: None,
                });
            }
            let distribution = policy.action_distribution(&l.customer, &eligible, round)?;
            let target_propensity = distribution
                .iter()
                .find(|(a, _)| *a == l.action)
                .map_or(0.0, |(_, p)| *p);
            let model_target = distribution.iter().map(|(a, p)| p * rewards.mean(a)).sum();
            Ok(LoggedSample {
                reward: l.reward,
                logging_propensity: l.propensity,
                target_propensity,
                model_logged: Some(rewards.mean(&l.action)),
                model_target: Some(model_target),
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(logged.len());
    for (l, sample) in logged.iter().zip(scored) {
        match sample {
            Ok(s) => samples.push(s),
            Err(e) => bad.handle(lines.error(l.line, e.to_string()))?,
        }
    }
    Ok(samples)
}

/// Copies a top-level `"position"` into `"features"` when the features have none.
fn move_position_into_features(line: &mut Map<String, Value>) {
    let Some(position) = line.get("position").cloned() else {
        return;
    };
    if let Some(Value::Object(features)) = line.get_mut("features") {
        features.entry("position").or_insert(position);
    }
}

/// The estimates as an aligned text table.
fn table(estimates: &[Estimate]) -> String {
    let mut out = format!(
        "{:<9} {:>12} {:>12} {:>12} {:>10} {:>8}\n",
        "estimator", "value", "ci_low", "ci_high", "ess", "n"
    );
    for e in estimates {
        let _ = writeln!(
            out,
            "{:<9} {:>12.6} {:>12.6} {:>12.6} {:>10.1} {:>8}",
            e.estimator.as_str(),
            e.value,
            e.ci_low,
            e.ci_high,
            e.ess,
            e.n
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_fills_the_feature_only_when_absent() {
        let mut line = match json!({"position": 2, "features": {"plan": "gold"}}) {
            Value::Object(m) => m,
            _ => panic!(),
        };
        move_position_into_features(&mut line);
        assert_eq!(line["features"]["position"], 2);
        let mut line = match json!({"position": 2, "features": {"position": 5}}) {
            Value::Object(m) => m,
            _ => panic!(),
        };
        move_position_into_features(&mut line);
        assert_eq!(line["features"]["position"], 5);
    }
}
