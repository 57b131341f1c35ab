//! `cargo xtask ci`: every check CI runs, in order, stopping at the first failure.
//!
//! Before any step, the programs the steps need besides Rust are found or installed (`crate::tools`), so
//! a missing browser fails the run in its first second, not at its last step. The steps are tidy
//! (in-process, fast), rustfmt, clippy with warnings denied (all features, so the `mocks` code is linted
//! too), rustdoc with warnings denied (broken links, missing docs; if cargo cannot query rustc, which a
//! build running beside it has caused, it is retried once in its own `target/doc-check`), then the test suite: cargo-nextest when it is
//! installed (plus `cargo test --doc`, because nextest skips doctests), plain `cargo test` otherwise, the
//! report check (in-process, `cargo xtask report-check`: the demo's HTML report in headless Chromium), and
//! last every fuzz target for [`fuzz::CI_SECONDS`] (in-process, `cargo xtask fuzz --all`). The step list
//! is built as data first ([`plan`]) so what CI runs can be read and tested without running it.

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::fuzz::{self, FuzzArgs, Which};
use crate::{report_check, tidy, tools};

/// Cargo's message when it could not query rustc about the target, which a build running at the same time
/// has caused (the docs step is retried once, in its own target directory, when its output says this).
const RUSTC_PROBE_FAILED: &str = "failed to run `rustc` to learn about target-specific information";

/// Where the docs step's retry builds: apart from `target/`, so whatever else builds there cannot
/// interfere (a cold directory: the dependencies are checked again, about 3 minutes on 2 cores).
const DOC_RETRY_TARGET_DIR: &str = "target/doc-check";

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
    /// Run the step once more, with `retry_args` added, when it fails with this text in its error output.
    retry_if: Option<&'static str>,
    /// Arguments added to the retry.
    retry_args: Vec<&'static str>,
}

impl Step {
    fn new(name: &'static str, args: &[&'static str], tests: bool) -> Self {
        Self {
            name,
            args: args.to_vec(),
            tests,
            env: Vec::new(),
            retry_if: None,
            retry_args: Vec::new(),
        }
    }

    fn retry_if(mut self, text: &'static str, args: &[&'static str]) -> Self {
        self.retry_if = Some(text);
        self.retry_args = args.to_vec();
        self
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

    println!("==> tools: (in-process) what the steps need besides Rust");
    let step_started = Instant::now();
    let tools_result = tools::ensure(root);
    timings.push(("tools", step_started.elapsed()));
    let tool_env = finish_step(tools_result, &timings, started)?.vars;

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
        let result = run_step(root, &step, &command, &tool_env);
        timings.push((step.name, step_started.elapsed()));
        finish_step(result, &timings, started)?;
    }

    println!("==> {}: (in-process) cargo xtask report-check", report_check::STEP);
    let step_started = Instant::now();
    let report_result = report_check::run(root);
    timings.push((report_check::STEP, step_started.elapsed()));
    finish_step(report_result, &timings, started)?;

    println!(
        "==> fuzz: (in-process) cargo xtask fuzz --all --seconds {}",
        fuzz::CI_SECONDS
    );
    let step_started = Instant::now();
    let args = FuzzArgs {
        which: Which::All,
        seconds: fuzz::CI_SECONDS,
    };
    let fuzz_result = fuzz::run(root, &args);
    timings.push(("fuzz", step_started.elapsed()));
    finish_step(fuzz_result, &timings, started)?;

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
        Step::new("docs", &doc, false)
            .with_env("RUSTDOCFLAGS", "-D warnings")
            .retry_if(RUSTC_PROBE_FAILED, &["--target-dir", DOC_RETRY_TARGET_DIR]),
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

/// Runs one step with the tools' environment; a step with `retry_if` runs once more, with its
/// `retry_args`, when it fails saying that text.
fn run_step(root: &Path, step: &Step, command: &str, tool_env: &[(&'static str, OsString)]) -> Result<()> {
    let mut cmd = Command::new(crate::cargo());
    cmd.args(&step.args).current_dir(root);
    for (name, value) in tool_env {
        cmd.env(name, value);
    }
    for (name, value) in &step.env {
        cmd.env(name, value);
    }
    // With CI set, insta fails on a mismatching snapshot instead of writing a new one.
    if step.tests && std::env::var_os("CI").is_none() {
        cmd.env("CI", "true");
    }
    let spawn_error = |source| Error::Spawn {
        step: step.name,
        command: command.to_owned(),
        source,
    };
    let mut attempt = 1;
    loop {
        let (status, said) = match step.retry_if {
            None => (cmd.status().map_err(spawn_error)?, false),
            Some(text) => status_watching_stderr(&mut cmd, text).map_err(spawn_error)?,
        };
        if status.success() {
            return Ok(());
        }
        if said && attempt == 1 {
            println!(
                "note: step `{}` failed with \"{}\", which a build running at the same time can cause; \
                 retrying once, with {}",
                step.name,
                step.retry_if.unwrap_or_default(),
                step.retry_args.join(" ")
            );
            cmd.args(&step.retry_args);
            attempt += 1;
            continue;
        }
        return Err(Error::StepFailed {
            step: step.name,
            command: command.to_owned(),
            status,
        });
    }
}

/// Runs `cmd`, copying its stderr to ours line by line, and says whether a line contained `text`.
fn status_watching_stderr(cmd: &mut Command, text: &str) -> std::io::Result<(std::process::ExitStatus, bool)> {
    let mut child = cmd.stderr(Stdio::piped()).spawn()?;
    let mut said = false;
    if let Some(stderr) = child.stderr.take() {
        let mut ours = std::io::stderr();
        for line in BufReader::new(stderr).split(b'\n') {
            let line = line?;
            said |= line.windows(text.len()).any(|w| w == text.as_bytes());
            ours.write_all(&line)?;
            ours.write_all(b"\n")?;
        }
    }
    Ok((child.wait()?, said))
}

/// Prints the step's time; on failure also the timings so far, then passes the result on.
fn finish_step<T>(result: Result<T>, timings: &[(&'static str, Duration)], started: Instant) -> Result<T> {
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
        println!("    {name:<12} {:>7.1}s", elapsed.as_secs_f64());
    }
    println!("    {:<12} {:>7.1}s", "total", total.as_secs_f64());
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
    fn only_the_docs_step_is_retried_in_its_own_target_dir() {
        let retried: Vec<(&str, Vec<&str>)> = plan(true, true)
            .iter()
            .filter(|s| s.retry_if.is_some())
            .map(|s| (s.name, s.retry_args.clone()))
            .collect();
        assert_eq!(retried, [("docs", vec!["--target-dir", "target/doc-check"])]);
    }

    #[test]
    fn a_failure_is_recognised_by_what_it_says_on_stderr() {
        let mut says = std::process::Command::new("sh");
        says.args([
            "-c",
            "echo 'error: failed to run `rustc` to learn about target-specific information' >&2; exit 101",
        ]);
        let (status, said) = super::status_watching_stderr(&mut says, super::RUSTC_PROBE_FAILED).unwrap();
        assert!(!status.success() && said);
        let mut other = std::process::Command::new("sh");
        other.args(["-c", "echo 'error: unresolved link' >&2; exit 101"]);
        let (status, said) = super::status_watching_stderr(&mut other, super::RUSTC_PROBE_FAILED).unwrap();
        assert!(!status.success() && !said);
    }

    #[test]
    fn only_test_steps_get_ci_true() {
        let tests: Vec<bool> = plan(true, true).iter().map(|s| s.tests).collect();
        assert_eq!(tests, [false, false, false, true, true]);
    }
}
