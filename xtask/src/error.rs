//! The one error type of xtask: every task returns [`Result`], and `main` prints the error and exits 1.
//!
//! It is std-only (no `anyhow`, no `thiserror`) to keep `cargo xtask` fast to build; each variant
//! carries enough context that the message alone tells a reader what failed and where.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitStatus;

/// `Result` with xtask's [`Error`].
pub(crate) type Result<T> = std::result::Result<T, Error>;

/// Why a task failed.
#[derive(Debug)]
pub(crate) enum Error {
    /// Reading the repository failed (a file or a directory).
    Io {
        /// The file or directory that could not be read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A CI step could not be started at all (e.g. the program is missing).
    Spawn {
        /// The step's name, as printed in `==> step: command`.
        step: &'static str,
        /// The command line.
        command: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A CI step ran and failed.
    StepFailed {
        /// The step's name, as printed in `==> step: command`.
        step: &'static str,
        /// The command line.
        command: String,
        /// How it ended.
        status: ExitStatus,
    },
    /// `tidy` found this many rule violations (each was already printed).
    Tidy {
        /// How many violations were found.
        violations: usize,
    },
    /// Programs a step needs are missing and could not be installed here.
    Missing {
        /// One line per program: what it is for and how to install it.
        tools: Vec<String>,
    },
    /// `cargo xtask fuzz NAME` names no target.
    NoSuchFuzzTarget {
        /// The name given.
        name: String,
        /// The targets there are.
        known: Vec<String>,
    },
    /// A fuzz target crashed (or hung, or ran out of memory) on an input.
    FuzzFailed {
        /// The target.
        target: String,
        /// How `cargo fuzz run` ended.
        status: ExitStatus,
        /// Where libFuzzer wrote the input, relative to the repository root.
        artifacts: PathBuf,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "reading {}: {source}", path.display()),
            Self::Spawn { step, command, source } => {
                write!(f, "step `{step}` could not start `{command}`: {source}")
            }
            Self::StepFailed { step, command, status } => {
                write!(f, "step `{step}` failed ({status}): {command}")
            }
            Self::Tidy { violations } => {
                let s = if *violations == 1 { "" } else { "s" };
                write!(
                    f,
                    "step `tidy` failed: {violations} violation{s} of the repository rules"
                )
            }
            Self::Missing { tools } => {
                write!(f, "missing what the checks need (nothing was run):")?;
                for tool in tools {
                    write!(f, "\n  - {tool}")?;
                }
                Ok(())
            }
            Self::NoSuchFuzzTarget { name, known } => {
                write!(f, "no fuzz target `{name}`; the targets are: {}", known.join(", "))
            }
            Self::FuzzFailed {
                target,
                status,
                artifacts,
            } => write!(
                f,
                "fuzz target `{target}` failed ({status}): the input is in {}/ (cargo fuzz printed how to \
                 reproduce it); minimise it with `cargo +nightly fuzz tmin --fuzz-dir crates/fuzz -s none {target} FILE` \
                 and add it as a regression test of the crate that owns the code (docs/fuzzing.md)",
                artifacts.display()
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } | Self::Spawn { source, .. } => Some(source),
            Self::StepFailed { .. }
            | Self::Tidy { .. }
            | Self::Missing { .. }
            | Self::NoSuchFuzzTarget { .. }
            | Self::FuzzFailed { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn missing_tools_are_listed_one_a_line_with_how_to_install_them() {
        let error = Error::Missing {
            tools: vec![
                "Chromium: `apt-get install chromium`".to_owned(),
                "moto: `pip install moto`".to_owned(),
            ],
        };
        assert_eq!(
            error.to_string(),
            "missing what the checks need (nothing was run):\n  - Chromium: `apt-get install chromium`\n  - moto: `pip install moto`"
        );
    }
}
