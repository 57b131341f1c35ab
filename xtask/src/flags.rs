//! Command-line parsing for xtask, by hand: a closed set of tasks, each with its own `--help`.
//!
//! There is no argument library on purpose (xtask is std-only so it builds in seconds). The grammar is
//! `cargo xtask <task> [--help]`, plus `fuzz`'s and `bench`'s own arguments; anything else is a usage
//! error, reported with exit code 2.

use crate::fuzz::{DEFAULT_SECONDS, FuzzArgs, Which};

/// The usage text printed by `cargo xtask --help` and after a usage error.
pub(crate) const USAGE: &str = "\
Usage: cargo xtask <TASK>

Tasks:
  ci            Run every check CI runs: tidy, rustfmt, clippy, docs, the test suite, report-check, then fuzz
                (first installing what they need where it can)
  tidy          Check repository rules: doc headers, crate layering, no todo!/unimplemented!
  report-check  Render the demo's HTML report in headless Chromium and check what it shows
  fuzz          Run a fuzz target: `cargo xtask fuzz TARGET|--all [--seconds N]`, `cargo xtask fuzz --list`
  tools         Find or install what `ci` needs besides Rust (its first step, alone)
  bench         Run a crate's benchmarks: `cargo xtask bench policy|domain|braze|sim|store|daily-run|loop|currents`
  help          Print this message (also: --help, -h, or `cargo xtask <TASK> --help`)";

const CI_HELP: &str = "\
Usage: cargo xtask ci

First finds what the steps need besides Rust, installing what is missing where it can:
Chromium (apt-get, as root), moto and Azurite (under target/ci-tools/, passed to the tests
as OFFERLOOP_MOTO_SERVER and OFFERLOOP_AZURITE_BLOB), the nightly toolchain (rustup) and
cargo-fuzz (cargo install). Whatever is still missing is listed with how to install it, and
nothing runs. Then runs, in order, stopping at the first failure:
  1. tidy     (in-process) repository rules, as `cargo xtask tidy`
  2. fmt      cargo fmt --all --check
  3. clippy   cargo clippy --workspace --all-targets --all-features [--locked] -- -D warnings
              (--locked when Cargo.lock exists)
  4. docs     RUSTDOCFLAGS=\"-D warnings\" cargo doc --workspace --no-deps --all-features [--locked]
              (when cargo cannot query rustc, which a build running beside it has caused,
              retried once with --target-dir target/doc-check, apart from that build)
  5. tests    cargo nextest run --workspace --no-fail-fast, then cargo test --workspace --doc
              (nextest skips doctests); without cargo-nextest: cargo test --workspace
  6. report-check  (in-process) the demo's HTML report in headless Chromium, as
              `cargo xtask report-check`
  7. fuzz     (in-process) every fuzz target for 30 s, as `cargo xtask fuzz --all --seconds 30`

The test steps run with CI=true unless CI is already set, so a mismatching insta snapshot
fails instead of being written. Prints the elapsed seconds of every step and the total.";

const TIDY_HELP: &str = "\
Usage: cargo xtask tidy

Checks, reporting every violation with its file and then failing:
  docs      every .rs file under crates/ and xtask/ opens with a `//!` doc comment
            (directories named `fixtures` or `target` are skipped)
  layering  crates/<x>/Cargo.toml is package offerloop-<x>, and its [dependencies] name only the
            internal crates its layer allows (see docs/ARCHITECTURE.md); domain and policy
            depend on no I/O crate (tokio, reqwest, rusqlite, tokio-postgres, axum)
  todo      no todo!/unimplemented! macro calls in crates/ or xtask/ source (comments aside)

The same checks run as #[test]s in the xtask crate, so `cargo test --workspace` catches them.";

const REPORT_CHECK_HELP: &str = "\
Usage: cargo xtask report-check

Checks the HTML report as a browser renders it:
  1. builds the debug binary (cargo build -p offerloop-cli --bin offerloop) and runs
     target/debug/offerloop demo --days 21 --customers 3000 --out target/report-check/demo
  2. runs headless Chromium (CHROME, else chromium, chromium-browser or google-chrome on PATH;
     install it with `apt-get install chromium`) on the report twice, 120 s at most each:
     a screenshot, kept as target/report-check/report.png (a PNG of more than 10 KiB), and
     --dump-dom, kept as target/report-check/dom.html with Chromium's log beside it
  3. fails unless the rendered DOM has an id=\"headline-uplift\" element holding a number and at
     least 4 <figure class=\"chart\"> each with an <svg>, the page logged nothing to the console
     (Chromium logs console.error like console.log, so any message fails), and nothing in it
     loads another file (src=, <link href=): the report must be self-contained.";

const TOOLS_HELP: &str = "\
Usage: cargo xtask tools

The first step of `cargo xtask ci`, alone: finds the programs the checks need besides Rust and
installs the missing ones where it can, printing where each one is:
  chromium    report-check   CHROME, else chromium, chromium-browser or google-chrome on PATH;
                             as root with apt-get: apt-get install chromium
  moto        Currents S3 tests   OFFERLOOP_MOTO_SERVER, else moto_server on PATH; else
                             pip install moto[server] into target/ci-tools/moto (a virtualenv)
  azurite     Currents Azure tests   OFFERLOOP_AZURITE_BLOB, else azurite-blob on PATH; else
                             npm install azurite@3 into target/ci-tools/azurite
  cargo-fuzz  fuzz           rustup's nightly toolchain (installed with rustup when missing) and
                             cargo-fuzz (cargo install cargo-fuzz --locked)
Python 3 and npm themselves are installed with apt-get when missing, as root. Whatever is still
missing is listed with the command that installs it, and the task fails.";

const FUZZ_HELP: &str = "\
Usage: cargo xtask fuzz TARGET [--seconds N]
       cargo xtask fuzz --all [--seconds N]
       cargo xtask fuzz --list

Runs a cargo-fuzz (libFuzzer) target of crates/fuzz for N seconds (default 60), or every target
one after the other; --list prints the targets (the files of crates/fuzz/fuzz_targets/).
Installs the nightly toolchain (rustup) and cargo-fuzz (cargo install cargo-fuzz --locked) when
missing, builds every target once (cargo +nightly fuzz build --fuzz-dir crates/fuzz -s none, into
crates/fuzz/target; without AddressSanitizer, as offerloop has no unsafe code), then runs each as
  cargo +nightly fuzz run --fuzz-dir crates/fuzz -s none TARGET crates/fuzz/corpus/TARGET \\
      crates/fuzz/seeds/TARGET -- -max_total_time=N -timeout=20
A crash fails the task and leaves the input in crates/fuzz/artifacts/TARGET/; see docs/fuzzing.md.";

const BENCH_HELP: &str = "\
Usage: cargo xtask bench <CRATE>

Runs the benchmarks of one crate in release mode and prints their figures:
  policy  cargo bench -p offerloop-policy --bench policy   decide/update throughput, model size
  domain  cargo bench -p offerloop-domain                  action space, holdout, config parsing
  braze   cargo bench -p offerloop-braze --bench export    segment-export streaming, peak RSS
  sim     cargo bench -p offerloop-sim --bench scale       1M-customer world: generate, segment export, trigger rate
  store   cargo bench -p offerloop-store --bench store     decisions recorded and read back per second (SQLite)
  daily-run  cargo bench -p offerloop-cli --bench daily_run  one daily run for 1M customers against the simulator
  loop    cargo bench -p offerloop-cli --bench loop        decision quality in the daily loop: every scenario of
          crates/sim/scenarios/ × 3 seeds × 30 days against the simulator's oracle (about 25 min;
          LOOP_CUSTOMERS, LOOP_DAYS, LOOP_SEEDS, LOOP_SCENARIOS, LOOP_CURVE_SAMPLE)
  currents  cargo bench -p offerloop-cli --bench currents  10M Currents events of 100k users in a local
          bucket (generated once): streamed, deduplicated and attributed; the engine's read; peak RSS
          (CURRENTS_EVENTS, CURRENTS_USERS)

Record what matters in docs/benchmarks.md with the command that produced it.";

/// The crates `cargo xtask bench` knows, with the cargo arguments that run their benchmarks.
pub(crate) const BENCHES: &[(&str, &[&str])] = &[
    ("policy", &["bench", "-p", "offerloop-policy", "--bench", "policy"]),
    ("domain", &["bench", "-p", "offerloop-domain"]),
    ("braze", &["bench", "-p", "offerloop-braze", "--bench", "export"]),
    ("sim", &["bench", "-p", "offerloop-sim", "--bench", "scale"]),
    ("store", &["bench", "-p", "offerloop-store", "--bench", "store"]),
    ("daily-run", &["bench", "-p", "offerloop-cli", "--bench", "daily_run"]),
    ("loop", &["bench", "-p", "offerloop-cli", "--bench", "loop"]),
    ("currents", &["bench", "-p", "offerloop-cli", "--bench", "currents"]),
];

/// What to do, parsed from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Task {
    /// Print a help text and succeed.
    Help(&'static str),
    /// `cargo xtask ci`.
    Ci,
    /// `cargo xtask tidy`.
    Tidy,
    /// `cargo xtask report-check`.
    ReportCheck,
    /// `cargo xtask bench <crate>`: the cargo arguments to run.
    Bench(&'static [&'static str]),
    /// `cargo xtask fuzz …`.
    Fuzz(FuzzArgs),
    /// `cargo xtask tools`.
    Tools,
}

/// Parses the arguments after the program name.
///
/// # Errors
///
/// A message naming the unknown task or argument.
pub(crate) fn parse(args: &[String]) -> Result<Task, String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let is_help = |a: &str| matches!(a, "--help" | "-h" | "help");
    match args.as_slice() {
        [] => Err("no task given".to_owned()),
        [one] if is_help(one) => Ok(Task::Help(USAGE)),
        ["help", task] | [task, "--help" | "-h"] => help_for(task),
        ["ci"] => Ok(Task::Ci),
        ["tidy"] => Ok(Task::Tidy),
        ["report-check"] => Ok(Task::ReportCheck),
        ["tools"] => Ok(Task::Tools),
        ["bench"] => Err(
            "which benchmarks? `cargo xtask bench policy|domain|braze|sim|store|daily-run|loop|currents`".to_owned(),
        ),
        ["bench", name] => BENCHES
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, args)| Task::Bench(args))
            .ok_or_else(|| {
                format!(
                    "no benchmarks for `{name}`; choose one of: {}",
                    BENCHES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                )
            }),
        ["fuzz"] => Err("which fuzz target? `cargo xtask fuzz --list` lists them, `--all` runs each".to_owned()),
        ["fuzz", rest @ ..] => parse_fuzz(rest).map(Task::Fuzz),
        ["ci" | "tidy" | "report-check" | "tools", extra, ..] => Err(format!("unexpected argument `{extra}`")),
        [task, ..] => Err(format!("unknown task `{task}`")),
    }
}

/// The arguments after `fuzz`: one of `TARGET`, `--all`, `--list`, and an optional `--seconds N`.
fn parse_fuzz(args: &[&str]) -> Result<FuzzArgs, String> {
    let mut which = None;
    let mut seconds = None;
    let mut args = args.iter();
    while let Some(&arg) = args.next() {
        let next = match arg {
            "--seconds" => {
                let value = args.next().ok_or("`--seconds` needs a number of seconds")?;
                let n = value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("`--seconds {value}`: expected a whole number of seconds above 0"))?;
                seconds = Some(n);
                continue;
            }
            "--list" => Which::List,
            "--all" => Which::All,
            flag if flag.starts_with('-') => return Err(format!("unexpected argument `{flag}`")),
            name => Which::One(name.to_owned()),
        };
        if which.replace(next).is_some() {
            return Err(format!(
                "unexpected argument `{arg}`: give one target, `--all` or `--list`"
            ));
        }
    }
    let which = which.ok_or("which fuzz target? `cargo xtask fuzz --list` lists them, `--all` runs each")?;
    if which == Which::List && seconds.is_some() {
        return Err("`--list` takes no `--seconds`".to_owned());
    }
    Ok(FuzzArgs {
        which,
        seconds: seconds.unwrap_or(DEFAULT_SECONDS),
    })
}

fn help_for(task: &str) -> Result<Task, String> {
    match task {
        "ci" => Ok(Task::Help(CI_HELP)),
        "tidy" => Ok(Task::Help(TIDY_HELP)),
        "report-check" => Ok(Task::Help(REPORT_CHECK_HELP)),
        "bench" => Ok(Task::Help(BENCH_HELP)),
        "fuzz" => Ok(Task::Help(FUZZ_HELP)),
        "tools" => Ok(Task::Help(TOOLS_HELP)),
        "help" => Ok(Task::Help(USAGE)),
        other => Err(format!("unknown task `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::{Task, parse};
    use crate::fuzz::{DEFAULT_SECONDS, FuzzArgs, Which};

    fn check(args: &[&str]) -> Result<Task, String> {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        parse(&args)
    }

    #[test]
    fn tasks_and_help() {
        assert_eq!(check(&["ci"]), Ok(Task::Ci));
        assert_eq!(check(&["tidy"]), Ok(Task::Tidy));
        assert_eq!(check(&["report-check"]), Ok(Task::ReportCheck));
        assert_eq!(check(&["tools"]), Ok(Task::Tools));
        assert!(matches!(check(&["tools", "--help"]), Ok(Task::Help(text)) if text.contains("target/ci-tools")));
        assert!(matches!(check(&["report-check", "--help"]), Ok(Task::Help(text)) if text.contains("chromium")));
        assert!(matches!(check(&["ci", "--help"]), Ok(Task::Help(text)) if text.contains("report-check")));
        assert!(matches!(check(&["bench", "policy"]), Ok(Task::Bench(args)) if args.contains(&"offerloop-policy")));
        assert!(check(&["bench", "nope"]).is_err_and(|e| e.contains("policy")));
        assert!(
            matches!(check(&["bench", "loop"]), Ok(Task::Bench(args)) if args == ["bench", "-p", "offerloop-cli", "--bench", "loop"])
        );
        assert!(matches!(check(&["bench", "daily-run"]), Ok(Task::Bench(args)) if args.contains(&"daily_run")));
        assert!(matches!(check(&["--help"]), Ok(Task::Help(text)) if text.contains("Tasks:")));
        assert!(matches!(check(&["ci", "--help"]), Ok(Task::Help(text)) if text.contains("nextest")));
        assert!(matches!(check(&["help", "tidy"]), Ok(Task::Help(text)) if text.contains("layering")));
    }

    #[test]
    fn fuzz_arguments() {
        let fuzz = |which, seconds| Ok(Task::Fuzz(FuzzArgs { which, seconds }));
        assert_eq!(check(&["fuzz", "--list"]), fuzz(Which::List, DEFAULT_SECONDS));
        assert_eq!(
            check(&["fuzz", "use_case"]),
            fuzz(Which::One("use_case".into()), DEFAULT_SECONDS)
        );
        assert_eq!(
            check(&["fuzz", "use_case", "--seconds", "5"]),
            fuzz(Which::One("use_case".into()), 5)
        );
        assert_eq!(check(&["fuzz", "--seconds", "30", "--all"]), fuzz(Which::All, 30));
        assert!(matches!(check(&["fuzz", "--help"]), Ok(Task::Help(text)) if text.contains("--list")));
        assert!(check(&["fuzz"]).is_err_and(|e| e.contains("--list")));
        assert!(check(&["fuzz", "a", "b"]).is_err_and(|e| e.contains("`b`")));
        assert!(check(&["fuzz", "a", "--seconds"]).is_err_and(|e| e.contains("needs a number")));
        assert!(check(&["fuzz", "a", "--seconds", "0"]).is_err_and(|e| e.contains("above 0")));
        assert!(check(&["fuzz", "a", "--fast"]).is_err_and(|e| e.contains("`--fast`")));
        assert!(check(&["fuzz", "--list", "--seconds", "3"]).is_err());
    }

    #[test]
    fn usage_errors_name_the_culprit() {
        assert_eq!(check(&[]), Err("no task given".to_owned()));
        assert_eq!(check(&["deploy"]), Err("unknown task `deploy`".to_owned()));
        assert_eq!(check(&["ci", "--fast"]), Err("unexpected argument `--fast`".to_owned()));
        assert_eq!(check(&["report-check", "x"]), Err("unexpected argument `x`".to_owned()));
        assert_eq!(check(&["help", "deploy"]), Err("unknown task `deploy`".to_owned()));
    }
}
