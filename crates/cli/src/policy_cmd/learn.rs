//! `offerloop policy learn --model M --feedback F`: learn from rewards, then replace the model file.
//!
//! Input, one a line:
//! `{"customer_id": "c1", "features": {...}, "action": {"offer": "pct10", ...}, "propensity": 0.25, "reward": 12.5}`
//! with an optional `"decided_at"` (RFC 3339; default: the date of the model's current round, see
//! [`crate::policy_cmd`]). The propensity is the logging policy's probability of the action, in
//! `(0, 1]`; the action must not be excluded by a rule; the reward must be in its metric's plausible
//! range ([`offerloop_policy::reward`]): between 0 and 1 for a 0/1 metric; for an amount at most 10^12
//! in magnitude, and never negative unless the metric subtracts the options' cost. A reward outside it
//! is refused as ``FILE:LINE: `reward` 1e200 is outside [0, 1]: ...``, never clipped.
//!
//! The model file is only replaced by a model every number of which is finite
//! ([`offerloop_policy::Snapshot::check`]); otherwise `learn` fails and the file stays as it was.
//!
//! Every line is read and checked before the policy learns anything; the model file is replaced
//! (temporary file, fsync, rename) only after the whole batch was learned, with its `rounds` counter
//! incremented. A failed `learn` leaves the model file byte for byte as it was.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::bail;
use offerloop_policy::{Feedback, Setup, UpdateReport};
use serde_json::{Map, Value};

use super::jsonl::{self, BadLines, Lines};
use super::{Output, model, round_date};

/// Arguments of `offerloop policy learn`.
#[derive(Debug, Clone, clap::Args)]
pub struct LearnArgs {
    /// The model file (replaced when learning succeeds).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Feedback, one JSON object a line:
    /// `{"customer_id", "features", "action", "propensity", "reward"}` (optional `"decided_at"`).
    #[arg(long, value_name = "FILE")]
    pub feedback: PathBuf,
    /// Skip and count malformed lines instead of stopping at the first.
    #[arg(long)]
    pub skip_bad: bool,
}

/// Runs `offerloop policy learn`.
///
/// # Errors
/// An unreadable or invalid model, an unreadable input, a malformed line (without `--skip-bad`), feedback
/// the policy refuses, or a write failure; the model file is then untouched.
pub fn run(args: &LearnArgs) -> anyhow::Result<Output> {
    let mut loaded = model::load(&args.model)?;
    let default_date = round_date(loaded.file.rounds)?;
    let setup = loaded.setup.clone();
    let schema = setup.schema();
    let mut lines = Lines::open(&args.feedback)?;
    let mut bad = BadLines::new(args.skip_bad);
    let mut numbers = Vec::new();
    let mut batch = Vec::new();
    while let Some((n, bytes)) = lines.next_line()? {
        let parsed = bytes.and_then(jsonl::parse_object).and_then(|line| {
            let customer = jsonl::customer(&line, schema)?;
            feedback(&line, &setup, customer.features, default_date)
        });
        match parsed {
            Ok(f) => {
                numbers.push(n);
                batch.push(f);
            }
            Err(message) => {
                let error = lines.error(n, message);
                bad.handle(error)?;
            }
        }
    }
    let report = update(loaded.policy.as_mut(), &mut batch, &mut numbers, &lines, &mut bad)?;
    loaded.file.rounds += 1;
    loaded.file.snapshot = loaded.policy.snapshot();
    model::save(&args.model, &loaded.file)?;

    let mut output = Output::default();
    let _ = write!(
        output.stderr,
        "learned {} record{} from {} → {} (model version {}, round {})",
        report.learned,
        if report.learned == 1 { "" } else { "s" },
        lines.file(),
        args.model.display(),
        report.model_version,
        loaded.file.rounds,
    );
    if report.alerts.is_empty() {
        output.stderr.push('\n');
    } else {
        let _ = writeln!(
            output.stderr,
            "; {} drift alert{}",
            report.alerts.len(),
            if report.alerts.len() == 1 { "" } else { "s" }
        );
        for alert in &report.alerts {
            let what = match (&alert.dimension, &alert.option) {
                (Some(d), Some(o)) => format!("{d} = {o}"),
                (Some(d), None) => d.clone(),
                _ => "the reward".to_owned(),
            };
            let _ = writeln!(
                output.stderr,
                "warning: drift in {what} detected at {} (shift {:.4})",
                alert.detected_at, alert.magnitude
            );
        }
    }
    bad.report(&mut output.stderr);
    Ok(output)
}

/// One feedback record from a parsed line.
fn feedback(
    line: &Map<String, Value>,
    setup: &Setup,
    features: Vec<offerloop_domain::FeatureValue>,
    default_date: jiff::Timestamp,
) -> Result<Feedback, String> {
    let space = setup.space();
    let action = jsonl::action(line, space)?;
    let joint = space.decode(action).map_err(|e| format!("`action`: {e}"))?;
    if let Some(rule) = space.excluding_rule(&joint) {
        return Err(format!("`action` is excluded by rule `{}`", rule.name));
    }
    let propensity = jsonl::propensity(line, "propensity")?;
    let reward = jsonl::number(line, "reward")?;
    offerloop_policy::reward::check(setup, reward, 1.0).map_err(|e| format!("`reward` {e}"))?;
    let decided_at = match line.get("decided_at") {
        None | Some(Value::Null) => default_date,
        Some(Value::String(s)) => s
            .parse()
            .map_err(|e| format!("`decided_at` is not an RFC 3339 timestamp: {e}"))?,
        Some(other) => {
            return Err(format!(
                "`decided_at` must be an RFC 3339 timestamp, found {}",
                jsonl::describe(other)
            ));
        }
    };
    Ok(Feedback {
        features,
        action,
        propensity,
        reward,
        decided_at,
        observed: 1.0,
    })
}

/// Learns `batch`. A record the policy refuses is named by its line; with `--skip-bad` it is dropped and
/// the batch retried (a refused batch teaches the policy nothing).
fn update(
    policy: &mut dyn offerloop_policy::Policy,
    batch: &mut Vec<Feedback>,
    numbers: &mut Vec<usize>,
    lines: &Lines,
    bad: &mut BadLines,
) -> anyhow::Result<UpdateReport> {
    loop {
        match policy.update(batch) {
            Ok(report) => return Ok(report),
            Err(offerloop_policy::Error::BadFeedback { index, message }) if index < batch.len() => {
                bad.handle(lines.error(numbers[index], message))?;
                batch.remove(index);
                numbers.remove(index);
            }
            Err(e) => bail!(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn space() -> Setup {
        let source = include_str!("../../../../tests/fixtures/valid/minimal.toml");
        Setup::from_use_case(&offerloop_domain::config::parse_use_case(source, "minimal.toml").unwrap()).unwrap()
    }

    fn line(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn a_feedback_line_becomes_a_record() {
        let epoch = jiff::Timestamp::UNIX_EPOCH;
        let l = line(json!({"action": {"offer": "pct10", "channel": "email"}, "propensity": 0.5, "reward": 1}));
        let f = feedback(&l, &space(), Vec::new(), epoch).unwrap();
        assert_eq!((f.action.0, f.propensity, f.reward, f.decided_at), (2, 0.5, 1.0, epoch));
        let l = line(
            json!({"action": {"offer": "none", "channel": "sms"}, "propensity": 1, "reward": 0,
            "decided_at": "2026-03-01T10:00:00+01:00"}),
        );
        let f = feedback(&l, &space(), Vec::new(), epoch).unwrap();
        assert_eq!(f.decided_at.to_string(), "2026-03-01T09:00:00Z");
    }

    #[test]
    fn bad_feedback_lines_say_what_is_wrong() {
        let check = |v: Value, expected: &str| {
            let err = feedback(&line(v), &space(), Vec::new(), jiff::Timestamp::UNIX_EPOCH).unwrap_err();
            assert_eq!(err, expected);
        };
        let ok_action = json!({"offer": "none", "channel": "email"});
        check(
            json!({"action": {"offer": "pct10", "channel": "sms"}, "propensity": 0.5, "reward": 1}),
            "`action` is excluded by rule `no sms discount`",
        );
        check(
            json!({"action": {"offer": "pct15", "channel": "sms"}, "propensity": 0.5, "reward": 1}),
            "`action`: unknown option `pct15` in dimension `offer` (options: none, pct10)",
        );
        check(
            json!({"action": {"offer": "none", "chanel": "sms"}, "propensity": 0.5, "reward": 1}),
            "`action`: unknown dimension `chanel` (dimensions: offer, channel)",
        );
        check(
            json!({"action": {"offer": "none"}, "propensity": 0.5, "reward": 1}),
            "`action`: joint action does not fit the action space: no option chosen for dimension `channel`",
        );
        check(
            json!({"action": {"offer": 1, "channel": "sms"}, "propensity": 0.5, "reward": 1}),
            "`action.offer` must be an option id (a string), found number 1",
        );
        check(
            json!({"action": ok_action, "propensity": 1.5, "reward": 1}),
            "`propensity` must be in (0, 1], got 1.5",
        );
        check(json!({"action": ok_action, "propensity": 0.5}), "missing `reward`");
        check(
            json!({"action": ok_action, "propensity": 0.5, "reward": 1, "decided_at": 3}),
            "`decided_at` must be an RFC 3339 timestamp, found number 3",
        );
        check(json!({"propensity": 0.5, "reward": 1}), "missing `action`");
        check(
            json!({"action": ok_action, "propensity": 0.5, "reward": -1}),
            "`reward` -1 is outside [0, 1]: conversion rewards are 0 or 1",
        );
        check(
            json!({"action": ok_action, "propensity": 0.5, "reward": 1e200}),
            "`reward` 1e200 is outside [0, 1]: conversion rewards are 0 or 1",
        );
        check(
            json!({"action": ok_action, "propensity": 0.0, "reward": 1}),
            "`propensity` must be in (0, 1], got 0",
        );
    }
}

#[cfg(test)]
mod hostile {
    //! Hostile feedback through the whole command: located errors, and a model file left as it was.

    use std::path::Path;

    use offerloop_domain::usecase::Algorithm;

    use super::*;
    use crate::policy_cmd::decide::{self, DecideArgs};
    use crate::policy_cmd::{InitArgs, init};

    /// A work directory with the minimal use case and a new model of `algorithm`.
    fn workspace(algorithm: Algorithm) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("uc.toml"),
            include_str!("../../../../tests/fixtures/valid/minimal.toml"),
        )
        .unwrap();
        init(&InitArgs {
            use_case: dir.path().join("uc.toml"),
            algorithm: Some(algorithm),
            out: dir.path().join("model.json"),
            force: false,
        })
        .unwrap();
        dir
    }

    fn learn(dir: &Path, lines: &[String]) -> anyhow::Result<Output> {
        let feedback = dir.join("feedback.jsonl");
        std::fs::write(&feedback, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
        run(&LearnArgs {
            model: dir.join("model.json"),
            feedback,
            skip_bad: false,
        })
    }

    fn line(reward: &str, propensity: &str) -> String {
        format!(
            r#"{{"customer_id": "c1", "features": {{"plan": "gold", "sms_ok": true}}, "action": {{"offer": "pct10", "channel": "email"}}, "propensity": {propensity}, "reward": {reward}}}"#
        )
    }

    fn decide_works(dir: &Path) {
        std::fs::write(
            dir.join("day.jsonl"),
            "{\"customer_id\": \"c1\", \"features\": {\"plan\": \"gold\", \"sms_ok\": true}}\n",
        )
        .unwrap();
        decide::run(&DecideArgs {
            model: dir.join("model.json"),
            contexts: dir.join("day.jsonl"),
            out: dir.join("decisions.jsonl"),
            round: None,
            skip_bad: false,
        })
        .unwrap();
    }

    #[test]
    fn a_huge_finite_reward_is_refused_by_line_and_the_model_stays_usable() {
        for algorithm in Algorithm::ALL {
            let dir = workspace(algorithm);
            let before = std::fs::read(dir.path().join("model.json")).unwrap();
            let good = line("1", "0.5");
            let err = learn(dir.path(), &[good.clone(), line("1e200", "0.5")]).unwrap_err();
            let message = format!("{err:#}");
            assert!(
                message.contains("feedback.jsonl:2: `reward` 1e200 is outside"),
                "{}: {message}",
                algorithm.as_str()
            );
            assert_eq!(std::fs::read(dir.path().join("model.json")).unwrap(), before);
            learn(dir.path(), &[good]).unwrap();
            decide_works(dir.path());
        }
    }
}
