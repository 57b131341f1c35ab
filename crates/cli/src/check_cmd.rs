//! `offerloop check`: is a use case ready to run?
//!
//! One table of checks — the API key's permissions (the probes of [`crate::braze_check`]), then the
//! audience segment, the campaigns and canvases, the Liquid references and the conversion events
//! ([`offerloop_activation::preflight`]), then the run's inputs outside Braze, the audience's ids file
//! and the Currents bucket ([`crate::check_inputs`]) — each ✓, ✗ or ⚠, with a one-line fix under
//! every ✗ and ⚠ that has one. Any ✗ makes the command exit 1. Against real Braze it makes only read
//! calls and the side-effect-free permission probes.

use std::fmt::Write as _;
use std::path::Path;

use offerloop_activation::preflight::{self, CheckResult, CheckStatus};
use offerloop_braze::BrazeApi;
use offerloop_domain::UseCase;

use crate::run_cmd::{braze_client, load_use_case};
use crate::{braze_check, check_inputs};

/// Loads the use case at `use_case_path`, connects to its Braze workspace (the key from the
/// environment variable it names) and runs every check.
///
/// # Errors
/// An invalid use-case file, or a missing key variable or invalid endpoint. Braze's own answers
/// (refusals, unreachable server) become rows, not errors.
pub async fn run(use_case_path: &Path) -> anyhow::Result<Vec<CheckResult>> {
    let use_case = load_use_case(use_case_path)?;
    let client = braze_client(&use_case)?;
    let mut results = check(client.as_ref(), &use_case).await;
    results.extend(check_inputs::check_inputs(&use_case, &check_inputs::base_dir(use_case_path)).await);
    Ok(results)
}

/// Every check of `use_case` through `client`: the permissions row first, then
/// [`preflight::preflight`]'s.
pub async fn check(client: &dyn BrazeApi, use_case: &UseCase) -> Vec<CheckResult> {
    let probes = braze_check::check(client, use_case).await;
    let mut results = vec![preflight::permission_check(
        probes.iter().map(|row| (row.endpoint, row.why, &row.status)),
    )];
    results.extend(preflight::preflight(client, use_case).await);
    results
}

/// The table printed for people: one line per check (mark, name, detail), the fix indented under
/// each failure and warning that has one, and a summary line.
pub fn render(results: &[CheckResult]) -> String {
    let width = results.iter().map(|r| r.name.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for result in results {
        let _ = writeln!(
            out,
            "{} {:<width$}  {}",
            result.status.mark(),
            result.name,
            result.detail
        );
        if let Some(fix) = result.fix.as_ref().filter(|_| result.status != CheckStatus::Pass) {
            let _ = writeln!(out, "  {:<width$}  → {fix}", "");
        }
    }
    let tally = |status: CheckStatus| results.iter().filter(|r| r.status == status).count();
    let (failed, warned, passed) = (
        tally(CheckStatus::Fail),
        tally(CheckStatus::Warn),
        tally(CheckStatus::Pass),
    );
    let verdict = if failed == 0 {
        "ready to run"
    } else {
        "not ready: fix every ✗ first"
    };
    let _ = writeln!(
        out,
        "\n{passed} passed, {warned} warning(s), {failed} failed: {verdict}"
    );
    out
}

/// The process exit code: 1 when any check failed, else 0.
pub fn exit_code(results: &[CheckResult]) -> u8 {
    u8::from(results.iter().any(|r| r.status == CheckStatus::Fail))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, status: CheckStatus, fix: Option<&str>) -> CheckResult {
        CheckResult {
            name: name.to_owned(),
            status,
            detail: format!("{name} detail"),
            fix: fix.map(str::to_owned),
        }
    }

    #[test]
    fn render_marks_each_row_and_puts_fixes_under_failures() {
        let results = [
            row("permissions", CheckStatus::Pass, None),
            row("campaign control variant", CheckStatus::Fail, Some("remove it")),
            row("unused property", CheckStatus::Warn, Some("use it")),
        ];
        let text = render(&results);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("✓ permissions "), "{text}");
        assert!(lines[1].starts_with("✗ campaign control variant  campaign control variant detail"));
        assert!(lines[2].trim_start().starts_with("→ remove it"), "{text}");
        assert!(lines[3].starts_with("⚠ unused property"), "{text}");
        assert!(lines[4].trim_start().starts_with("→ use it"), "{text}");
        assert!(text.ends_with("1 passed, 1 warning(s), 1 failed: not ready: fix every ✗ first\n"));
        assert_eq!(exit_code(&results), 1);
        assert_eq!(exit_code(&results[..1]), 0);
        assert_eq!(exit_code(&[results[0].clone(), results[2].clone()]), 0);
        assert!(render(&results[..1]).contains("ready to run"));
    }
}
