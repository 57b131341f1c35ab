//! `offerloop validate FILE...`: report every problem of each use-case file, located.

use std::fmt::Write as _;
use std::path::Path;

use offerloop_domain::config::{Diagnostic, parse_use_case};
use offerloop_domain::{Error, UseCase};

/// The verdict on one file.
#[derive(Debug)]
pub enum Verdict {
    /// The file is a valid use case.
    Valid(Box<UseCase>),
    /// The file has problems, in source order.
    Invalid(Vec<Diagnostic>),
    /// The file could not be read.
    Unreadable(String),
}

/// Reads and validates one file. `display_name` is how the file is named in diagnostics.
pub fn check_file(path: &Path) -> (Verdict, String) {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(source) => (check_source(&source, &name), source),
        Err(e) => (Verdict::Unreadable(format!("{name}: cannot read: {e}")), String::new()),
    }
}

/// Validates use-case TOML `source`, named `name` in diagnostics.
pub fn check_source(source: &str, name: &str) -> Verdict {
    match parse_use_case(source, name) {
        Ok(use_case) => Verdict::Valid(Box::new(use_case)),
        Err(Error::Config(diagnostics)) => Verdict::Invalid(diagnostics.0),
        Err(other) => Verdict::Invalid(vec![Diagnostic {
            file: name.to_owned(),
            line: 1,
            column: 1,
            path: String::new(),
            message: other.to_string(),
            span: 0..0,
        }]),
    }
}

/// A one-line summary of a valid use case.
pub fn summary(name: &str, use_case: &UseCase) -> String {
    let space = &use_case.actions;
    let dims: Vec<String> = space
        .dimensions()
        .iter()
        .map(|d| format!("{} ({})", d.name, d.options.len()))
        .collect();
    let mut out = format!(
        "ok {name}: use case `{}` ({}), metric {} over {} days; dimensions {}; {} of {} joint actions allowed by the rules",
        use_case.name,
        use_case.kind,
        use_case.metric.kind.name(),
        use_case.metric.attribution_window_days,
        dims.join(" × "),
        space.count(),
        space.size(),
    );
    let _ = write!(
        out,
        "; control {:.1} %, random control {:.1} %; algorithm {}",
        use_case.holdout.control_fraction().get() * 100.0,
        use_case.holdout.random_control_fraction().get() * 100.0,
        use_case.policy.algorithm.as_str(),
    );
    let explored = use_case.policy.exploration_floor * space.count() as f64;
    if explored > 0.0 {
        let _ = write!(
            out,
            "; exploration floor {:.1} % of the AI group's decisions",
            explored * 100.0
        );
    }
    if explored > MAX_QUIET_EXPLORATION {
        let _ = write!(
            out,
            "\nnote: policy.exploration_floor {} × {} joint actions keeps {:.1} % of the AI group's decisions uniformly random, \
             and each costs what a random action loses against the model's choice; the random control group already explores, \
             so a floor near {:.1e} (1 %) is enough (docs/configuration.md)",
            use_case.policy.exploration_floor,
            space.count(),
            explored * 100.0,
            0.01 / space.count() as f64,
        );
    }
    out
}

/// Above this share of uniformly random decisions, `validate` notes what the floor costs.
const MAX_QUIET_EXPLORATION: f64 = 0.05;

/// The text of a failed verdict: every diagnostic with its source line, then a count.
pub fn render_problems(name: &str, source: &str, diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&d.render(source));
        out.push_str("\n\n");
    }
    let n = diagnostics.len();
    let _ = write!(out, "error: {name}: {n} problem{}", if n == 1 { "" } else { "s" });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_winback_example_is_valid_and_summarised() {
        let source = include_str!("../../../examples/winback.toml");
        let Verdict::Valid(use_case) = check_source(source, "winback.toml") else {
            panic!("invalid")
        };
        let line = summary("winback.toml", &use_case);
        assert!(line.contains("64 of 72 joint actions"), "{line}");
    }

    #[test]
    fn a_floor_that_explores_more_than_five_percent_is_noted_with_its_cost() {
        let source = include_str!("../../../examples/winback.toml");
        let heavy = source.replace(
            &source[source.find("exploration_floor = ").unwrap_or(0)..]
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
            "exploration_floor = 0.002",
        );
        let Verdict::Valid(use_case) = check_source(&heavy, "winback.toml") else {
            panic!("invalid")
        };
        let line = summary("winback.toml", &use_case);
        assert!(
            line.contains("exploration floor 12.8 % of the AI group's decisions"),
            "{line}"
        );
        assert!(
            line.contains("\nnote: policy.exploration_floor 0.002 × 64 joint actions keeps 12.8 %"),
            "{line}"
        );
        let light = heavy.replace("exploration_floor = 0.002", "exploration_floor = 0.00015");
        let Verdict::Valid(use_case) = check_source(&light, "winback.toml") else {
            panic!("invalid")
        };
        let line = summary("winback.toml", &use_case);
        assert!(line.contains("exploration floor 1.0 %"), "{line}");
        assert!(!line.contains("note:"), "{line}");
    }

    #[test]
    fn problems_are_counted() {
        let Verdict::Invalid(d) = check_source("[use_case]\nname = 1\n", "x.toml") else {
            panic!("valid")
        };
        let text = render_problems("x.toml", "[use_case]\nname = 1\n", &d);
        assert!(
            text.contains("\nx.toml:2:8 use_case.name: expected a string, found an integer\n"),
            "{text}"
        );
        // Missing sections are reported too, located at the top of the file.
        assert!(text.starts_with("x.toml:1:1 audience: missing"), "{text}");
        assert!(
            text.ends_with(&format!("error: x.toml: {} problems", d.len())),
            "{text}"
        );
    }
}
