//! `offerloop policy init|decide|learn|evaluate`: the batch JSONL interface to a policy.
//!
//! A policy lives in one self-contained **model file** ([`model::ModelFile`]): the use case's TOML text
//! and the policy's [`offerloop_policy::Snapshot`], so `decide`, `learn` and `evaluate` need nothing
//! else. Customers, feedback and logs are JSON Lines, one record a line ([`jsonl`]):
//!
//! - `init --use-case FILE [--algorithm NAME] --out model.json` builds a new policy;
//! - `decide --model M --contexts day.jsonl --out decisions.jsonl` decides one joint action per line;
//! - `learn --model M --feedback feedback.jsonl` learns from rewards and replaces the model file;
//! - `evaluate [--model M] --logs logs.jsonl` estimates a policy's value off-policy from logged decisions.
//!
//! # No clock
//! The interface reads no clock. Time is counted in **rounds**: the model file holds the number of
//! `learn` calls so far (`rounds`), `decide` decides in that round unless `--round N` says otherwise,
//! and a round `r` is dated `1970-01-01T00:00:00Z + r days` (so [`offerloop_policy::DecisionRound::at`]
//! of that date gives `r` back). Feedback without a `decided_at` is dated in the model's current round.
//! One `decide` then one `learn` per day keeps rounds and days in step, which is how the policies'
//! day-based settings (forgetting, explore-then-commit) read them.
//!
//! # Errors and atomicity
//! A malformed line is reported as `FILE:LINE: what is wrong` and stops the command, unless
//! `--skip-bad`: then it is skipped, counted, and reported at the end. Nothing is ever half-written:
//! decisions go to a temporary file renamed into place only on success, and the model file is replaced
//! (write, fsync, rename) only after a fully successful `learn`.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use offerloop_domain::usecase::Algorithm;

use crate::validate::{self, Verdict};

pub mod decide;
pub mod evaluate;
pub mod jsonl;
pub mod learn;
pub mod model;

/// The `offerloop policy` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Build a new policy for a use case and write its model file.
    Init(InitArgs),
    /// Decide one joint action for every customer of a JSONL file.
    Decide(decide::DecideArgs),
    /// Learn from a JSONL file of rewards and replace the model file.
    Learn(learn::LearnArgs),
    /// Estimate a policy's value off-policy from logged decisions (IPS, SNIPS, DM, DR, SNDR).
    Evaluate(evaluate::EvaluateArgs),
}

/// Arguments of `offerloop policy init`.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// The use-case file.
    #[arg(long = "use-case", value_name = "FILE")]
    pub use_case: PathBuf,
    /// The algorithm: uniform, fixed, explore_then_commit, beta_ts, gaussian_ts, lin_ucb, lin_ts or
    /// logistic_ts. Default: the use case's `[policy] algorithm`.
    #[arg(long, value_name = "NAME", value_parser = parse_algorithm)]
    pub algorithm: Option<Algorithm>,
    /// Where to write the model file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Overwrite an existing model file (its learning is lost).
    #[arg(long)]
    pub force: bool,
}

/// What a command prints: the product on standard output, progress and warnings on standard error.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    /// Text for standard output.
    pub stdout: String,
    /// Text for standard error.
    pub stderr: String,
    /// The command failed after reporting why in `stderr` (an invalid use case, reported as `validate`
    /// reports it); the process exits with status 1.
    pub failed: bool,
}

/// Runs one `offerloop policy` subcommand.
///
/// # Errors
/// Whatever stops the command: an unreadable or invalid file, a malformed line without `--skip-bad`,
/// a policy that refuses its input. Nothing has been written when it fails.
pub fn run(command: &PolicyCommand) -> anyhow::Result<Output> {
    match command {
        PolicyCommand::Init(args) => init(args),
        PolicyCommand::Decide(args) => decide::run(args),
        PolicyCommand::Learn(args) => learn::run(args),
        PolicyCommand::Evaluate(args) => evaluate::run(args),
    }
}

/// Parses an algorithm by its configuration name (`lin_ts`), for `--algorithm`.
///
/// # Errors
/// A message listing the known names.
pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    Algorithm::ALL.into_iter().find(|a| a.as_str() == name).ok_or_else(|| {
        let known: Vec<&str> = Algorithm::ALL.iter().map(|a| a.as_str()).collect();
        format!("unknown algorithm `{name}`; expected one of {}", known.join(", "))
    })
}

/// `offerloop policy init`: parses the use case, builds the policy and writes a new model file. An
/// invalid use case is reported exactly as `validate` reports it, in a failed [`Output`].
///
/// # Errors
/// An unreadable use case, an algorithm that is unavailable or cannot honour the settings, an existing
/// output file without `force`, or a write failure.
pub fn init(args: &InitArgs) -> anyhow::Result<Output> {
    let name = args.use_case.display().to_string();
    let (use_case, source) = match validate::check_file(&args.use_case) {
        (Verdict::Valid(use_case), source) => (use_case, source),
        (Verdict::Invalid(diagnostics), source) => {
            return Ok(Output {
                stderr: format!("{}\n", validate::render_problems(&name, &source, &diagnostics)),
                failed: true,
                ..Output::default()
            });
        }
        (Verdict::Unreadable(message), _) => bail!("{message}"),
    };
    if args.out.exists() && !args.force {
        bail!(
            "{} already exists; pass --force to overwrite it (its learning is lost)",
            args.out.display()
        );
    }
    let algorithm = args.algorithm.unwrap_or(use_case.policy.algorithm);
    let setup = offerloop_policy::Setup::from_use_case(&use_case).with_context(|| format!("{name}: policy setup"))?;
    let policy = offerloop_policy::build_with(setup, algorithm)
        .with_context(|| format!("{name}: building a `{}` policy", algorithm.as_str()))?;
    let file = model::ModelFile {
        format: model::MODEL_FORMAT,
        use_case_file: name.clone(),
        use_case: source,
        rounds: 0,
        snapshot: policy.snapshot(),
    };
    model::save(&args.out, &file)?;
    let mut out = Output::default();
    let _ = writeln!(
        out.stdout,
        "wrote {} (use case `{}`, algorithm {}, {} joint actions, model version {})",
        args.out.display(),
        use_case.name,
        algorithm.as_str(),
        use_case.actions.count(),
        policy.model_version()
    );
    Ok(out)
}

/// The date of round `round`: the Unix epoch plus `round` days (the interface has no clock).
///
/// # Errors
/// When the date does not fit a timestamp.
pub fn round_date(round: u64) -> anyhow::Result<jiff::Timestamp> {
    i64::try_from(round)
        .ok()
        .and_then(|r| r.checked_mul(86_400))
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .with_context(|| format!("round {round} is too large to be dated"))
}

/// The decision round `round`, dated by [`round_date`].
///
/// # Errors
/// As [`round_date`].
pub fn decision_round(round: u64) -> anyhow::Result<offerloop_policy::DecisionRound> {
    Ok(offerloop_policy::DecisionRound {
        decided_at: round_date(round)?,
        round,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_parse_by_their_configuration_names() {
        for a in Algorithm::ALL {
            assert_eq!(parse_algorithm(a.as_str()), Ok(a));
        }
        let err = parse_algorithm("thompson").unwrap_err();
        assert!(
            err.contains("unknown algorithm `thompson`") && err.contains("logistic_ts"),
            "{err}"
        );
    }

    #[test]
    fn rounds_are_dated_in_days_since_the_epoch() {
        let round = decision_round(3).unwrap();
        assert_eq!(round.decided_at.to_string(), "1970-01-04T00:00:00Z");
        assert_eq!(offerloop_policy::DecisionRound::at(round.decided_at), round);
        assert!(round_date(u64::MAX).is_err());
    }
}
