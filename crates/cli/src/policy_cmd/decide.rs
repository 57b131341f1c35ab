//! `offerloop policy decide --model M --contexts C --out O`: one decision per customer line.
//!
//! Input, one a line: `{"customer_id": "c1", "features": {"tenure_days": 713, "region": "west"}}` (other
//! keys are ignored). Output, one a line in input order:
//! `{"customer_id": "c1", "action": {"offer": "pct10", ...}, "propensity": 0.25, "model_version": "uniform/0"}`,
//! the action's dimensions in the use case's order.
//!
//! Lines are read in chunks of [`CHUNK_LINES`] and each chunk is decided by one
//! [`offerloop_policy::Policy::decide_batch`] call (parallel across cores), so memory stays bounded on
//! large files. When a batch fails (a customer with no eligible action), the chunk is decided customer
//! by customer to name the line. Decisions are written to a temporary file renamed onto `--out` only
//! when every line has been decided.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use offerloop_domain::{ActionId, ActionSpace, Customer};
use offerloop_policy::{DecisionRound, Policy, PolicyDecision};
use serde::Serialize;
use serde::ser::SerializeMap as _;

use super::jsonl::{self, BadLines, Lines};
use super::model::{self, AtomicFile};
use super::{Output, decision_round};

/// Customers decided per `decide_batch` call.
pub const CHUNK_LINES: usize = 100_000;

/// Arguments of `offerloop policy decide`.
#[derive(Debug, Clone, clap::Args)]
pub struct DecideArgs {
    /// The model file.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Customers, one JSON object a line: `{"customer_id": ..., "features": {...}}`.
    #[arg(long, value_name = "FILE")]
    pub contexts: PathBuf,
    /// Where to write the decisions (JSON Lines, in input order).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The decision round (mixed into every random draw). Default: the model's number of `learn` calls.
    #[arg(long, value_name = "N")]
    pub round: Option<u64>,
    /// Skip and count malformed lines instead of stopping at the first.
    #[arg(long)]
    pub skip_bad: bool,
}

/// Runs `offerloop policy decide`.
///
/// # Errors
/// An unreadable or invalid model, an unreadable input, a malformed line (without `--skip-bad`), a
/// customer the policy cannot decide for, or a write failure; `--out` is then untouched.
pub fn run(args: &DecideArgs) -> anyhow::Result<Output> {
    let loaded = model::load(&args.model)?;
    let round_number = args.round.unwrap_or(loaded.file.rounds);
    let round = decision_round(round_number)?;
    let space = loaded.setup.space();
    let schema = loaded.setup.schema();
    let mut lines = Lines::open(&args.contexts)?;
    let mut bad = BadLines::new(args.skip_bad);
    let mut out = AtomicFile::create(&args.out)?;
    let mut decided = 0usize;
    let mut numbers: Vec<usize> = Vec::new();
    let mut customers: Vec<Customer> = Vec::new();
    let mut more = true;
    while more {
        numbers.clear();
        customers.clear();
        while customers.len() < CHUNK_LINES {
            let Some((n, bytes)) = lines.next_line()? else {
                more = false;
                break;
            };
            match bytes
                .and_then(jsonl::parse_object)
                .and_then(|line| jsonl::customer(&line, schema))
            {
                Ok(customer) => {
                    numbers.push(n);
                    customers.push(customer);
                }
                Err(message) => {
                    let error = lines.error(n, message);
                    bad.handle(error)?;
                }
            }
        }
        let decisions = decide_chunk(loaded.policy.as_ref(), &numbers, &customers, &round, &lines, &mut bad)?;
        for (customer, decision) in decisions {
            write_decision(out.writer(), space, customer, &decision)
                .with_context(|| format!("writing {}", args.out.display()))?;
            decided += 1;
        }
    }
    out.commit()?;
    let mut output = Output::default();
    let _ = writeln!(
        output.stderr,
        "decided {decided} customer{} → {} (model version {}, round {round_number})",
        if decided == 1 { "" } else { "s" },
        args.out.display(),
        loaded.policy.model_version(),
    );
    bad.report(&mut output.stderr);
    Ok(output)
}

/// Decides a chunk in one batch; when the batch fails, customer by customer, to name the failing line
/// (skipped with `--skip-bad`).
fn decide_chunk<'a>(
    policy: &dyn Policy,
    numbers: &[usize],
    customers: &'a [Customer],
    round: &DecisionRound,
    lines: &Lines,
    bad: &mut BadLines,
) -> anyhow::Result<Vec<(&'a Customer, PolicyDecision)>> {
    if customers.is_empty() {
        return Ok(Vec::new());
    }
    if let Ok(decisions) = policy.decide_batch(customers, round) {
        return Ok(customers.iter().zip(decisions).collect());
    }
    let mut decided = Vec::with_capacity(customers.len());
    for (n, customer) in numbers.iter().zip(customers) {
        match policy.decide(customer, round) {
            Ok(decision) => decided.push((customer, decision)),
            Err(e) => bad.handle(lines.error(*n, e.to_string()))?,
        }
    }
    Ok(decided)
}

/// One output line.
#[derive(Serialize)]
struct DecisionLine<'a> {
    customer_id: &'a str,
    action: ActionNames<'a>,
    propensity: f64,
    model_version: &'a str,
}

/// A joint action as `{dimension: option id}`, in dimension order.
struct ActionNames<'a> {
    space: &'a ActionSpace,
    action: ActionId,
}

impl Serialize for ActionNames<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let dims = self.space.dimensions();
        let mut map = serializer.serialize_map(Some(dims.len()))?;
        for (d, dim) in dims.iter().enumerate() {
            let option = dim
                .options
                .get(self.space.option_of(self.action, d))
                .map_or("", |o| o.id.as_str());
            map.serialize_entry(dim.name.as_str(), option)?;
        }
        map.end()
    }
}

fn write_decision(
    out: &mut impl std::io::Write,
    space: &ActionSpace,
    customer: &Customer,
    decision: &PolicyDecision,
) -> anyhow::Result<()> {
    let line = DecisionLine {
        customer_id: customer.id.as_str(),
        action: ActionNames {
            space,
            action: decision.action,
        },
        propensity: decision.propensity,
        model_version: &decision.model_version,
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")?;
    Ok(())
}
