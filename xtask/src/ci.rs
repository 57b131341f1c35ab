//! `cargo xtask ci`: every check CI runs, in order, stopping at the first failure.
//!
//! The steps are tidy (in-process, fast), rustfmt, clippy with warnings denied (all features, so the
//! `mocks` code is linted too), rustdoc with warnings denied (broken links, missing docs), then the test suite:
//! cargo-nextest when it is installed (plus `cargo test --doc`, because nextest skips doctests), plain
//! `cargo test` otherwise, and last the report check (in-process, `cargo xtask report-check`: the demo's HTML
//! report in headless Chromium). The step list is built as data first ([`plan`]) so what CI runs can be read
//! and tested without running it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::{report_check, tidy};

/// One external command of the CI run.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    /// Short name, printed as `==> name: command` and in failure messages.
    name: &'static str,
    /// Arguments to `cargo`.
    args: Vec<&'static str>,
    /// Whether this step runs tests (and so gets `CI=true`).
    tests: bool,
    /// Extra environment variables.
    env: Vec<(&'static str, &'static str)>,
}

impl Step {
    fn new(name: &'static str, args: &[&'static str], tests: bool) -> Self {
        Self {
            name,
            args: args.to_vec(),
            tests,
            env: Vec::new(),
        }
    }

    fn with_env(mut self, name: &'static str, value: &'static str) -> Self {
        self.env.push((name, value));
        self
    }

    fn display(&self) -> String {
        let env: String = self.env.iter().map(|(k, v)| format!("{k}=\"{v}\" ")).collect();
        format!("{env}cargo {}", self.args.join(" "))
    }
}

/// Runs the whole CI check from the repository root.
///
/// # Errors
///
/// The first failing step, named: [`Error::Tidy`], [`Error::StepFailed`] or [`Error::Spawn`] (or, from the
/// report check, [`Error::Io`]).
pub(crate) fn run(root: &Path) -> Result<()> {
    let started = Instant::now();
    let mut timings: Vec<(&'static str, Duration)> = Vec::new();

    println!("==> tidy: (in-process) cargo xtask tidy");
    let step_started = Instant::now();
    let tidy_result = tidy::run(root);
    timings.push(("tidy", step_started.elapsed()));
    finish_step(tidy_result, &timings, started)?;

    let has_lock = root.join("Cargo.lock").is_file();
    let has_nextest = nextest_available(root);
    if !has_nextest {
        println!("note: cargo-nextest not found; running the tests with `cargo test`");
    }
    for step in plan(has_lock, has_nextest) {
        let command = step.display();
        println!("==> {}: {command}", step.name);
        let step_started = Instant::now();
        let result = run_step(root, &step, &command);
        timings.push((step.name, step_started.elapsed()));
        finish_step(result, &timings, started)?;
    }

    println!("==> {}: (in-process) cargo xtask report-check", report_check::STEP);
    let step_started = Instant::now();
    let report_result = report_check::run(root);
    timings.push((report_check::STEP, step_started.elapsed()));
    finish_step(report_result, &timings, started)?;

    print_timings(&timings, started.elapsed());
    println!("ci: all steps passed");
    Ok(())
}

/// The external steps, given whether `Cargo.lock` exists and whether cargo-nextest is installed.
fn plan(has_lock: bool, has_nextest: bool) -> Vec<Step> {
    let mut clippy = vec!["clippy", "--workspace", "--all-targets", "--all-features"];
    let mut doc = vec!["doc", "--workspace", "--no-deps", "--all-features"];
    if has_lock {
        clippy.push("--locked");
        doc.push("--locked");
    }
    clippy.extend(["--", "-D", "warnings"]);
    let mut steps = vec![
        Step::new("fmt", &["fmt", "--all", "--check"], false),
        Step::new("clippy", &clippy, false),
        Step::new("docs", &doc, false).with_env("RUSTDOCFLAGS", "-D warnings"),
    ];
    if has_nextest {
        steps.push(Step::new(
            "tests",
            &["nextest", "run", "--workspace", "--no-fail-fast"],
            true,
        ));
        steps.push(Step::new("doctests", &["test", "--workspace", "--doc"], true));
    } else {
        steps.push(Step::new("tests", &["test", "--workspace"], true));
    }
    steps
}

/// Whether `cargo nextest --version` works here.
fn nextest_available(root: &Path) -> bool {
    Command::new(crate::cargo())
        .args(["nextest", "--version"])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn run_step(root: &Path, step: &Step, command: &str) -> Result<()> {
    let mut cmd = Command::new(crate::cargo());
    cmd.args(&step.args).current_dir(root);
    for (name, value) in &step.env {
        cmd.env(name, value);
    }
    // With CI set, insta fails on a mismatching snapshot instead of writing a new one.
    if step.tests && std::env::var_os("CI").is_none() {
        cmd.env("CI", "true");
    }
    let status = cmd.status().map_err(|source| Error::Spawn {
        step: step.name,
        command: command.to_owned(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::StepFailed {
            step: step.name,
            command: command.to_owned(),
            status,
        })
    }
}

/// Prints the step's time; on failure also the timings so far, then passes the error on.
fn finish_step(result: Result<()>, timings: &[(&'static str, Duration)], started: Instant) -> Result<()> {
    if let Some((name, elapsed)) = timings.last() {
        let verdict = if result.is_ok() { "ok" } else { "FAILED" };
        println!("    {name}: {verdict} in {:.1}s", elapsed.as_secs_f64());
    }
    if result.is_err() {
        print_timings(timings, started.elapsed());
    }
    result
}

fn print_timings(timings: &[(&'static str, Duration)], total: Duration) {
    println!("==> timings");
    for (name, elapsed) in timings {
        println!("    {name:<10} {:>7.1}s", elapsed.as_secs_f64());
    }
    println!("    {:<10} {:>7.1}s", "total", total.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::plan;

    fn commands(has_lock: bool, has_nextest: bool) -> Vec<String> {
        plan(has_lock, has_nextest)
            .iter()
            .map(|s| format!("{}: {}", s.name, s.display()))
            .collect()
    }

    #[test]
    fn with_nextest_and_lock_file() {
        assert_eq!(
            commands(true, true),
            [
                "fmt: cargo fmt --all --check",
                "clippy: cargo clippy --workspace --all-targets --all-features --locked -- -D warnings",
                "docs: RUSTDOCFLAGS=\"-D warnings\" cargo doc --workspace --no-deps --all-features --locked",
                "tests: cargo nextest run --workspace --no-fail-fast",
                "doctests: cargo test --workspace --doc",
            ]
        );
    }

    #[test]
    fn without_nextest_or_lock_file() {
        assert_eq!(
            commands(false, false),
            [
                "fmt: cargo fmt --all --check",
                "clippy: cargo clippy --workspace --all-targets --all-features -- -D warnings",
                "docs: RUSTDOCFLAGS=\"-D warnings\" cargo doc --workspace --no-deps --all-features",
                "tests: cargo test --workspace",
            ]
        );
    }

    #[test]
    fn only_test_steps_get_ci_true() {
        let tests: Vec<bool> = plan(true, true).iter().map(|s| s.tests).collect();
        assert_eq!(tests, [false, false, false, true, true]);
    }
}
