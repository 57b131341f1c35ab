//! Fuzz target `policy_jsonl`: any bytes as a JSON Lines input of `offerloop policy`.
//!
//! The input is written to a file and read as `policy decide`, `learn` and `evaluate` read theirs
//! (`offerloop_cli::policy_cmd::jsonl`): line by line, each line parsed as an object, its customer
//! read by the schema of `examples/renewal.toml` (number, category, boolean and timestamp features),
//! its action by the example's action space, its propensities and reward as numbers, every bad line
//! counted with `--skip-bad`'s rules. Nothing may panic, a customer has one value per schema feature,
//! an action that was read decodes, and a propensity that was accepted is in (0, 1].
//!
//! The CLI's module is compiled into this target from its file (`#[path]`) rather than through a
//! dependency on `offerloop-cli`: the module needs only the domain, `serde_json`, `anyhow` and `jiff`,
//! while the CLI crate would bring its whole tree (SQLite, the engine, the simulator, the report's
//! charts) into every fuzz build, several minutes on 2 cores, and break the fuzz build whenever any of
//! those crates is mid-change. Should the module ever use more of the CLI, depend on `offerloop-cli`.

#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use offerloop_domain::UseCase;
use offerloop_domain::config::parse_use_case;

/// `offerloop_cli::policy_cmd::jsonl`, the code under test.
#[path = "../../cli/src/policy_cmd/jsonl.rs"]
#[allow(dead_code)]
mod jsonl;

use jsonl::{BadLines, Lines};

/// The use case whose schema and action space the lines are read by.
static USE_CASE: LazyLock<UseCase> = LazyLock::new(|| {
    let source = include_str!("../../../examples/renewal.toml");
    // Invariant: the shipped examples are valid (the e2e tests validate every one of them).
    parse_use_case(source, "renewal.toml").expect("examples/renewal.toml is valid")
});

/// The file each input is written to, in a directory of this fuzzing process's own.
static FILE: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("offerloop-fuzz-jsonl-{}", std::process::id()));
    // Invariant of the harness, not of the code under test: the temporary directory is writable.
    std::fs::create_dir_all(&dir).expect("create the fuzzing process's temporary directory");
    dir.join("input.jsonl")
});

fuzz_target!(|data: &[u8]| {
    let (schema, space) = (&USE_CASE.features, &USE_CASE.actions);
    // Invariant of the harness: the process's own temporary directory is writable.
    std::fs::write(&*FILE, data).expect("write the input file");
    let Ok(mut lines) = Lines::open(&FILE) else {
        return;
    };
    let mut bad = BadLines::new(true);
    loop {
        let (n, parsed) = match lines.next_line() {
            Ok(Some((n, line))) => (n, line.and_then(|bytes| read_line(bytes, schema, space))),
            Ok(None) | Err(_) => break,
        };
        if let Err(message) = parsed {
            let error = lines.error(n, message);
            let _ = error.to_string();
            assert!(bad.handle(error).is_ok(), "bad lines are skipped");
        }
    }
    let mut report = String::new();
    bad.report(&mut report);
});

/// Reads one line the ways the policy commands do; the first problem as their message.
fn read_line(
    bytes: &[u8],
    schema: &offerloop_domain::FeatureSchema,
    space: &offerloop_domain::ActionSpace,
) -> Result<(), String> {
    let line = jsonl::parse_object(bytes)?;
    let _ = jsonl::customer_id(&line);
    for key in ["propensity", "target_propensity"] {
        if let Ok(p) = jsonl::propensity(&line, key) {
            assert!(p > 0.0 && p <= 1.0, "accepted propensity {p}");
        }
    }
    if let Ok(reward) = jsonl::number(&line, "reward") {
        assert!(reward.is_finite(), "accepted reward {reward}");
    }
    for value in line.values() {
        let _ = jsonl::describe(value);
    }
    let customer = jsonl::customer(&line, schema)?;
    assert_eq!(customer.features.len(), schema.len(), "one value per schema feature");
    let action = jsonl::action(&line, space)?;
    let joint = space.decode(action).map_err(|e| e.to_string())?;
    let _ = space.excluding_rule(&joint);
    Ok(())
}
