//! Project automation for offerloop, in Rust instead of shell scripts (the rust-analyzer `xtask` pattern).
//!
//! Run it as `cargo xtask <command>` (an alias in `.cargo/config.toml`). The crate is deliberately
//! std-only so that it builds in a few seconds on a cold clone: `ci` is the one command that checks
//! everything and first installs what its steps need (`.ci/run` calls nothing else), `fuzz` runs the
//! cargo-fuzz targets of `crates/fuzz` with nightly, and `tidy` enforces the repository rules that rustc
//! and clippy cannot see, such as which crate may depend on which. The tidy checks also run as ordinary
//! `#[test]`s, so a plain `cargo test --workspace` catches a broken rule too.

// xtask is a command-line tool: it talks to people through stdout and stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod ci;
mod error;
mod flags;
mod fuzz;
mod manifest;
mod report_check;
mod tidy;
mod tools;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::flags::Task;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = match flags::parse(&args) {
        Ok(task) => task,
        Err(message) => {
            eprintln!("error: {message}\n\n{}", flags::USAGE);
            return ExitCode::from(2);
        }
    };
    let root = project_root();
    let result = match task {
        Task::Help(text) => {
            println!("{text}");
            Ok(())
        }
        Task::Ci => ci::run(&root),
        Task::Tidy => tidy::run(&root),
        Task::ReportCheck => report_check::run(&root),
        Task::Bench(args) => run_cargo(&root, "bench", args),
        Task::Fuzz(args) => fuzz::run(&root, &args),
        Task::Tools => tools::ensure(&root).map(|_| ()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `cargo <args>` in the repository root, inheriting the terminal; `step` names it in errors.
pub(crate) fn run_cargo(root: &Path, step: &'static str, args: &[&str]) -> error::Result<()> {
    let command = format!("cargo {}", args.join(" "));
    println!("==> {command}");
    let status = std::process::Command::new(cargo())
        .args(args)
        .current_dir(root)
        .status()
        .map_err(|source| error::Error::Spawn {
            step,
            command: command.clone(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(error::Error::StepFailed { step, command, status })
    }
}

/// The workspace root: the parent of this crate's manifest directory, fixed at compile time, so
/// `cargo xtask` works from any sub-directory of the repository.
pub(crate) fn project_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// The cargo target directory: `CARGO_TARGET_DIR` (relative to the root) if set, else `<root>/target`.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |dir| root.join(dir))
}

/// The `cargo` that launched us (cargo sets `CARGO` for `cargo run`), else whatever `cargo` is on `PATH`.
pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}
