//! `cargo xtask fuzz`: the cargo-fuzz (libFuzzer) targets of `crates/fuzz`, built and run with nightly.
//!
//! `crates/fuzz` is a cargo-fuzz project and a workspace of its own (excluded from the main one), so
//! this task runs `cargo +nightly fuzz … --fuzz-dir crates/fuzz` from the repository root: cargo-fuzz
//! builds into `crates/fuzz/target`, apart from the main `target/`. A target reads two corpus
//! directories: `crates/fuzz/corpus/<target>` (not committed; where libFuzzer keeps the inputs that found
//! new coverage, so local runs build on each other) and the committed seeds `crates/fuzz/seeds/<target>`
//! (small real inputs: the examples, the simulator's export ZIP and Currents files, hand-written JSONL).
//! A crash stops the run; libFuzzer writes the input to `crates/fuzz/artifacts/<target>/` and the task
//! fails naming it. `docs/fuzzing.md` says how to turn it into a regression test.
//!
//! The target list is read from `crates/fuzz/fuzz_targets/*.rs` (each file is a `[[bin]]` of the same
//! name in `crates/fuzz/Cargo.toml`, checked by a test below), so listing needs neither nightly nor
//! cargo-fuzz.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::tools::{on_path, runs};

/// The cargo-fuzz project, relative to the repository root.
pub(crate) const FUZZ_DIR: &str = "crates/fuzz";

/// Seconds each target runs in `cargo xtask ci`.
pub(crate) const CI_SECONDS: u64 = 30;

/// Seconds a target runs when `--seconds` is not given.
pub(crate) const DEFAULT_SECONDS: u64 = 60;

/// Seed directories a target reads besides `crates/fuzz/seeds/<target>`: inputs the repository keeps for
/// other reasons, read where they are so the seeds follow them.
const SHARED_SEEDS: &[(&str, &[&str])] = &[(
    "use_case",
    &["examples", "tests/fixtures/valid", "tests/fixtures/invalid"],
)];

/// Build flags of every `cargo fuzz build` and `run` (the same for both, or `run` would build again):
/// no AddressSanitizer. offerloop has no unsafe code (`unsafe_code = "forbid"`), so the targets look for
/// panics (overflow checks and debug assertions are on), hangs, broken invariants and memory blow-ups,
/// none of which needs ASan, while ASan made the build 55 % longer (11m54s against 7m40s on 2 busy
/// cores) and every input slower. Its memory checks are one `cargo +nightly fuzz run` away (ASan is
/// cargo-fuzz's default).
const BUILD_FLAGS: [&str; 2] = ["-s", "none"];

/// An input that runs longer than this many seconds is reported as a hang (libFuzzer's `-timeout`).
const INPUT_TIMEOUT_SECONDS: u64 = 20;

/// Which targets to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Which {
    /// Print the targets.
    List,
    /// One target, by name.
    One(String),
    /// Every target, one after the other.
    All,
}

/// `cargo xtask fuzz`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FuzzArgs {
    /// Which targets.
    pub(crate) which: Which,
    /// How long each target runs.
    pub(crate) seconds: u64,
}

/// Runs `cargo xtask fuzz`: lists the targets, or builds them once and runs the chosen ones, each for
/// `args.seconds`, then prints how long the build and the runs took.
///
/// # Errors
/// [`Error::NoSuchFuzzTarget`], [`Error::Missing`] when nightly or cargo-fuzz cannot be installed,
/// [`Error::StepFailed`] when the build fails, [`Error::FuzzFailed`] when a target crashes.
pub(crate) fn run(root: &Path, args: &FuzzArgs) -> Result<()> {
    let known = targets(root)?;
    let chosen = match &args.which {
        Which::List => {
            for name in &known {
                println!("{name}");
            }
            return Ok(());
        }
        Which::All => known,
        Which::One(name) if known.contains(name) => vec![name.clone()],
        Which::One(name) => {
            return Err(Error::NoSuchFuzzTarget {
                name: name.clone(),
                known,
            });
        }
    };
    let versions = ensure_toolchain()?;
    println!("    {versions}");

    let started = Instant::now();
    let mut build_args = vec!["fuzz", "build", "--fuzz-dir", FUZZ_DIR];
    build_args.extend(BUILD_FLAGS);
    nightly_cargo(root, "fuzz", &build_args)?;
    let build = started.elapsed();

    let started = Instant::now();
    for name in &chosen {
        run_target(root, name, args.seconds)?;
    }
    println!(
        "fuzz: built in {:.1}s; {} target{} × {} s ran in {:.1}s, no crash",
        build.as_secs_f64(),
        chosen.len(),
        if chosen.len() == 1 { "" } else { "s" },
        args.seconds,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The fuzz targets: the file stems of `crates/fuzz/fuzz_targets/*.rs`, sorted.
pub(crate) fn targets(root: &Path) -> Result<Vec<String>> {
    let dir = root.join(FUZZ_DIR).join("fuzz_targets");
    let io = |source| Error::Io {
        path: dir.clone(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|ext| ext == "rs")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            names.push(stem.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Runs one target for `seconds`, from its corpus and its seeds.
fn run_target(root: &Path, name: &str, seconds: u64) -> Result<()> {
    let corpus = Path::new(FUZZ_DIR).join("corpus").join(name);
    std::fs::create_dir_all(root.join(&corpus)).map_err(|source| Error::Io {
        path: root.join(&corpus),
        source,
    })?;
    let corpus = corpus.to_string_lossy().into_owned();
    let seeds: Vec<String> = seed_dirs(root, name)
        .iter()
        .map(|dir| dir.to_string_lossy().into_owned())
        .collect();
    let max_time = format!("-max_total_time={seconds}");
    let timeout = format!("-timeout={INPUT_TIMEOUT_SECONDS}");
    let mut args = vec!["fuzz", "run", "--fuzz-dir", FUZZ_DIR];
    args.extend(BUILD_FLAGS);
    args.extend([name, &corpus]);
    args.extend(seeds.iter().map(String::as_str));
    args.extend(["--", &max_time, &timeout, "-print_final_stats=1"]);
    match nightly_cargo(root, "fuzz", &args) {
        Err(Error::StepFailed { status, .. }) => Err(Error::FuzzFailed {
            target: name.to_owned(),
            status,
            artifacts: PathBuf::from(FUZZ_DIR).join("artifacts").join(name),
        }),
        other => other,
    }
}

/// The seed directories of a target that exist, relative to the root: its own, then the shared ones.
fn seed_dirs(root: &Path, name: &str) -> Vec<PathBuf> {
    let own = Path::new(FUZZ_DIR).join("seeds").join(name);
    let shared = SHARED_SEEDS
        .iter()
        .filter(|(target, _)| *target == name)
        .flat_map(|(_, dirs)| dirs.iter().map(PathBuf::from));
    std::iter::once(own)
        .chain(shared)
        .filter(|dir| root.join(dir).is_dir())
        .collect()
}

/// Runs `cargo +nightly <args>` in the repository root, inheriting the terminal.
fn nightly_cargo(root: &Path, step: &'static str, args: &[&str]) -> Result<()> {
    let command = format!("cargo +nightly {}", args.join(" "));
    println!("==> {command}");
    // `cargo` from PATH, rustup's proxy, which understands `+nightly` (`CARGO` is stable's own binary).
    let status = Command::new("cargo")
        .arg("+nightly")
        .args(args)
        .current_dir(root)
        .env_remove("RUSTUP_TOOLCHAIN")
        .status()
        .map_err(|source| Error::Spawn {
            step,
            command: command.clone(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::StepFailed { step, command, status })
    }
}

/// Makes sure rustup has a nightly toolchain and cargo-fuzz is installed, installing either when
/// missing (with a message, as this takes a minute or two); returns their versions for the log.
///
/// # Errors
/// [`Error::Missing`] when there is no rustup or an installation fails.
pub(crate) fn ensure_toolchain() -> Result<String> {
    let missing = |what: &str| Error::Missing {
        tools: vec![format!(
            "{what} (the fuzz step builds its targets with cargo-fuzz on nightly): install rustup \
             (https://rustup.rs), then `rustup toolchain install nightly --profile minimal` and \
             `cargo install cargo-fuzz --locked`"
        )],
    };
    if on_path("rustup").is_none() {
        return Err(missing("rustup"));
    }
    if !has_nightly() {
        println!(
            "==> installing the nightly toolchain (rustup toolchain install nightly --profile minimal): cargo-fuzz needs it"
        );
        let ok = Command::new("rustup")
            .args(["toolchain", "install", "nightly", "--profile", "minimal"])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok || !has_nightly() {
            return Err(missing("a nightly toolchain"));
        }
    }
    if !runs("cargo", &["+nightly", "fuzz", "--version"]) {
        println!("==> installing cargo-fuzz (cargo install cargo-fuzz --locked; about 2 minutes on 2 cores)");
        let ok = Command::new(crate::cargo())
            .args(["install", "cargo-fuzz", "--locked"])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok || !runs("cargo", &["+nightly", "fuzz", "--version"]) {
            return Err(missing("cargo-fuzz"));
        }
    }
    let version = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    Ok(format!(
        "{}, {}",
        version("cargo", &["+nightly", "fuzz", "--version"]),
        version("rustc", &["+nightly", "--version"])
    ))
}

/// Whether `rustup toolchain list` names a nightly toolchain.
fn has_nightly() -> bool {
    Command::new("rustup")
        .args(["toolchain", "list"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|line| line.starts_with("nightly"))
        })
}

#[cfg(test)]
mod tests {
    use super::{FUZZ_DIR, SHARED_SEEDS, seed_dirs, targets};

    #[test]
    fn every_target_file_is_a_bin_of_the_fuzz_crate_with_seeds() {
        let root = crate::project_root();
        let names = targets(&root).unwrap();
        assert!(names.len() >= 4, "{names:?}");
        let manifest = std::fs::read_to_string(root.join(FUZZ_DIR).join("Cargo.toml")).unwrap();
        for name in &names {
            let bin = format!("[[bin]]\nname = \"{name}\"\npath = \"fuzz_targets/{name}.rs\"\n");
            assert!(
                manifest.contains(&bin),
                "crates/fuzz/Cargo.toml has no [[bin]] `{name}`:\n{bin}"
            );
            let seeds = root.join(FUZZ_DIR).join("seeds").join(name);
            let count = std::fs::read_dir(&seeds).map_or(0, Iterator::count);
            assert!(count > 0, "no seeds in {}", seeds.display());
        }
        for (name, dirs) in SHARED_SEEDS {
            assert!(
                names.iter().any(|n| n == name),
                "shared seeds for an unknown target `{name}`"
            );
            assert_eq!(
                seed_dirs(&root, name).len(),
                1 + dirs.len(),
                "a shared seed directory is gone"
            );
        }
    }

    #[test]
    fn the_fuzz_crate_is_excluded_from_the_main_workspace() {
        let root = crate::project_root();
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("exclude = [\"{FUZZ_DIR}\"]")),
            "root Cargo.toml"
        );
    }
}
