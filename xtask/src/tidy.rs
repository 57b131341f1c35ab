//! `cargo xtask tidy`: the repository rules that rustc and clippy cannot see.
//!
//! Three checks, each returning every violation it finds (never stopping at the first):
//! - **docs**: every `.rs` file under `crates/` and `xtask/` opens with a `//!` paragraph;
//! - **layering**: each `crates/<x>` is package `offerloop-<x>` and depends only on the internal crates
//!   its layer allows, and the pure crates depend on no I/O crate (the table below mirrors the
//!   dependency diagram in `docs/ARCHITECTURE.md`; change both in the same commit);
//! - **todo**: no `todo!` or `unimplemented!` macro call is left in the source.
//!
//! The checks also run as `#[test]`s at the end of this file, so `cargo test --workspace` enforces them
//! without xtask being invoked.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::manifest;

/// The package prefix of every internal crate: `crates/<x>` is package `offerloop-<x>`.
const PREFIX: &str = "offerloop-";

/// Which internal crates a layer may depend on.
#[derive(Debug, Clone, Copy)]
enum Allowed {
    /// Exactly these (short names, without the prefix).
    Only(&'static [&'static str]),
    /// Any internal crate (the composition root).
    Any,
}

/// The layering of the workspace, by crate directory name.
const LAYERS: &[(&str, Allowed)] = &[
    ("domain", Allowed::Only(&[])),
    ("braze", Allowed::Only(&[])),
    ("currents", Allowed::Only(&[])),
    ("policy", Allowed::Only(&["domain"])),
    ("store", Allowed::Only(&["domain"])),
    ("activation", Allowed::Only(&["domain", "braze"])),
    (
        "engine",
        Allowed::Only(&["domain", "braze", "currents", "policy", "store", "activation"]),
    ),
    ("sim", Allowed::Only(&["domain"])),
    ("report", Allowed::Only(&["domain", "policy", "store"])),
    ("cli", Allowed::Any),
    // The fuzz targets (a cargo-fuzz workspace of its own, excluded from the main one) call whichever
    // crate owns the parser they fuzz, the CLI's included; nothing depends on them.
    ("fuzz", Allowed::Any),
];

/// Crates that must stay pure: no I/O, no async runtime.
const PURE: &[&str] = &["domain", "policy"];

/// External crates that do I/O, which a pure crate must not depend on.
const IO_CRATES: &[&str] = &["tokio", "reqwest", "rusqlite", "tokio-postgres", "axum"];

/// Directories (by name) whose contents are not checked: build output and test inputs.
const SKIPPED_DIRS: &[&str] = &["target", "fixtures"];

/// One broken rule, located in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    /// Which check found it: `docs`, `layering` or `todo`.
    pub(crate) check: &'static str,
    /// The file, relative to the repository root.
    pub(crate) path: PathBuf,
    /// The 1-based line, when the violation is on one.
    pub(crate) line: Option<usize>,
    /// What is wrong, and what is allowed instead.
    pub(crate) message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": [{}] {}", self.check, self.message)
    }
}

/// Runs every check, prints every violation, and fails if there was any.
///
/// # Errors
///
/// [`Error::Tidy`] with the number of violations, or [`Error::Io`] if the repository cannot be read.
pub(crate) fn run(root: &Path) -> Result<()> {
    let violations = check_all(root)?;
    for violation in &violations {
        eprintln!("{violation}");
    }
    if violations.is_empty() {
        println!("tidy: ok (doc headers, crate layering, no todo!/unimplemented!)");
        Ok(())
    } else {
        Err(Error::Tidy {
            violations: violations.len(),
        })
    }
}

/// Every violation of every check, in a stable order.
pub(crate) fn check_all(root: &Path) -> Result<Vec<Violation>> {
    let mut violations = check_doc_headers(root)?;
    violations.extend(check_layering(root)?);
    violations.extend(check_no_todo(root)?);
    Ok(violations)
}

/// **docs**: every `.rs` file under `crates/` and `xtask/` opens with a `//!` doc comment.
pub(crate) fn check_doc_headers(root: &Path) -> Result<Vec<Violation>> {
    let mut violations = Vec::new();
    for path in rust_files(root)? {
        let text = read(&path)?;
        if let Some(message) = doc_header_problem(&text) {
            violations.push(Violation {
                check: "docs",
                path: relative(root, &path),
                line: Some(1),
                message,
            });
        }
    }
    Ok(violations)
}

/// Why a file's opening does not satisfy the docs rule, if it does not.
fn doc_header_problem(text: &str) -> Option<String> {
    match text.lines().find(|line| !line.trim().is_empty()) {
        Some(first) if first.trim_start().starts_with("//!") => None,
        Some(_) => Some("file does not start with a `//!` doc comment saying what it is for".to_owned()),
        None => Some("file is empty; start it with a `//!` doc comment saying what it is for".to_owned()),
    }
}

/// **layering**: package names and internal dependencies of every `crates/*/Cargo.toml`.
pub(crate) fn check_layering(root: &Path) -> Result<Vec<Violation>> {
    let crates_dir = root.join("crates");
    if !crates_dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut violations = Vec::new();
    for dir in sorted_entries(&crates_dir)? {
        let manifest_path = dir.join("Cargo.toml");
        let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !manifest_path.is_file() {
            continue;
        }
        let text = read(&manifest_path)?;
        let path = relative(root, &manifest_path);
        violations.extend(
            layering_problems(name, &text)
                .into_iter()
                .map(|(line, message)| Violation {
                    check: "layering",
                    path: path.clone(),
                    line,
                    message,
                }),
        );
    }
    Ok(violations)
}

/// The layering problems of the manifest of `crates/<name>`, as `(line, message)`.
fn layering_problems(name: &str, manifest_text: &str) -> Vec<(Option<usize>, String)> {
    let manifest = manifest::parse(manifest_text);
    let expected = format!("{PREFIX}{name}");
    let mut problems = Vec::new();
    if manifest.package_name.as_deref() != Some(expected.as_str()) {
        let found = manifest.package_name.as_deref().unwrap_or("(none)");
        problems.push((
            None,
            format!("package name is `{found}`; crates/{name} must be package `{expected}`"),
        ));
    }
    let Some(&(_, allowed)) = LAYERS.iter().find(|(layer, _)| *layer == name) else {
        problems.push((
            None,
            format!(
                "crates/{name} has no layering rule; add it to LAYERS in xtask/src/tidy.rs and to the \
                 dependency diagram in docs/ARCHITECTURE.md"
            ),
        ));
        return problems;
    };
    for dependency in &manifest.dependencies {
        if let Some(internal) = dependency.package.strip_prefix(PREFIX)
            && let Allowed::Only(list) = allowed
            && !list.contains(&internal)
        {
            let allowed_list = if list.is_empty() {
                "none".to_owned()
            } else {
                list.iter()
                    .map(|l| format!("{PREFIX}{l}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            problems.push((
                Some(dependency.line),
                format!(
                    "`{expected}` must not depend on `{}` (allowed internal dependencies: {allowed_list})",
                    dependency.package
                ),
            ));
        }
        if PURE.contains(&name) && IO_CRATES.contains(&dependency.package.as_str()) {
            problems.push((
                Some(dependency.line),
                format!(
                    "`{expected}` is pure (no I/O) and must not depend on `{}`; move the I/O to an outer layer",
                    dependency.package
                ),
            ));
        }
    }
    problems
}

/// **todo**: no `todo!` / `unimplemented!` calls in `crates/` or `xtask/` source (comments excepted).
pub(crate) fn check_no_todo(root: &Path) -> Result<Vec<Violation>> {
    let mut violations = Vec::new();
    for path in rust_files(root)? {
        let text = read(&path)?;
        for (line, found) in unfinished_code(&text) {
            violations.push(Violation {
                check: "todo",
                path: relative(root, &path),
                line: Some(line),
                message: format!("`{found}..)` left in the code; finish it or return an error"),
            });
        }
    }
    Ok(violations)
}

/// The `(line, macro)` of every unfinished-code macro call outside `//` comments.
fn unfinished_code(text: &str) -> Vec<(usize, &'static str)> {
    // Spelled in two halves so this file does not trip its own check.
    const MACROS: [&str; 2] = [concat!("todo", "!("), concat!("unimplemented", "!(")];
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        for needle in MACROS {
            if code.contains(needle) {
                found.push((index + 1, needle));
            }
        }
    }
    found
}

/// Every `.rs` file under `crates/` and `xtask/`, sorted, skipping [`SKIPPED_DIRS`] and hidden dirs.
fn rust_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for top in ["crates", "xtask", "tests"] {
        let dir = root.join(top);
        if dir.is_dir() {
            collect_rust_files(&dir, &mut files)?;
        }
    }
    files.sort();
    Ok(files)
}

fn collect_rust_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for path in sorted_entries(dir)? {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() {
            if !name.starts_with('.') && !SKIPPED_DIRS.contains(&name) {
                collect_rust_files(&path, files)?;
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    Ok(())
}

/// The entries of a directory, sorted by path.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        entries.push(entry.map_err(io)?.path());
    }
    entries.sort();
    Ok(entries)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn relative(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{Violation, doc_header_problem, layering_problems, unfinished_code};

    fn root() -> PathBuf {
        crate::project_root()
    }

    fn render(violations: &[Violation]) -> String {
        violations.iter().map(|v| format!("\n  {v}")).collect()
    }

    // The rules, checked on the real repository.

    #[test]
    fn every_rust_file_opens_with_a_doc_comment() {
        let violations = super::check_doc_headers(&root()).unwrap();
        assert!(
            violations.is_empty(),
            "files without a `//!` header:{}",
            render(&violations)
        );
    }

    #[test]
    fn crates_respect_the_layering() {
        let violations = super::check_layering(&root()).unwrap();
        assert!(violations.is_empty(), "layering violations:{}", render(&violations));
    }

    #[test]
    fn no_unfinished_code() {
        let violations = super::check_no_todo(&root()).unwrap();
        assert!(violations.is_empty(), "unfinished code:{}", render(&violations));
    }

    // The checks themselves, on small inline inputs.

    #[test]
    fn layering_detects_a_forbidden_internal_dependency() {
        let manifest = r#"
[package]
name = "offerloop-policy"

[dependencies]
offerloop-domain.workspace = true
store = { package = "offerloop-store", path = "../store" }
tokio = { workspace = true }

[dev-dependencies]
offerloop-sim.workspace = true
"#;
        let problems = layering_problems("policy", manifest);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].0, Some(7));
        assert!(
            problems[0].1.contains("must not depend on `offerloop-store`"),
            "{problems:?}"
        );
        assert!(
            problems[0]
                .1
                .contains("allowed internal dependencies: offerloop-domain"),
            "{problems:?}"
        );
        assert_eq!(problems[1].0, Some(8));
        assert!(
            problems[1]
                .1
                .contains("is pure (no I/O) and must not depend on `tokio`"),
            "{problems:?}"
        );
    }

    #[test]
    fn layering_accepts_allowed_dependencies_and_checks_names() {
        let engine = "[package]\nname = \"offerloop-engine\"\n[dependencies]\nofferloop-store.workspace = true\n\
                      offerloop-braze.workspace = true\ntokio.workspace = true\n";
        assert_eq!(layering_problems("engine", engine), []);
        let cli = "[package]\nname = \"offerloop-cli\"\n[dependencies]\nofferloop-engine.workspace = true\n";
        assert_eq!(layering_problems("cli", cli), []);

        let misnamed = "[package]\nname = \"domain\"\n";
        assert!(
            layering_problems("domain", misnamed)[0]
                .1
                .contains("must be package `offerloop-domain`")
        );
        let unknown = "[package]\nname = \"offerloop-web\"\n";
        assert!(layering_problems("web", unknown)[0].1.contains("has no layering rule"));
    }

    #[test]
    fn check_all_reports_every_violation_in_a_small_repository() {
        let root = std::env::temp_dir().join(format!("xtask-tidy-{}", std::process::id()));
        let write = |path: &str, text: &str| {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "crates/domain/Cargo.toml",
            "[package]\nname = \"offerloop-domain\"\n[dependencies]\nreqwest = \"0.13\"\n",
        );
        write("crates/domain/src/lib.rs", "//! The domain.\n");
        write("crates/domain/src/bare.rs", "pub fn f() {}\n");
        write("crates/domain/tests/fixtures/input.rs", "not rust, and no header\n");
        write("crates/domain/target/debug/build.rs", "no header either\n");
        write(
            "xtask/src/main.rs",
            &["//! Tasks.\nfn main() { ", "todo", "!() }\n"].concat(),
        );

        let found = super::check_all(&root);
        std::fs::remove_dir_all(&root).unwrap();
        let rendered: Vec<String> = found.unwrap().iter().map(ToString::to_string).collect();
        assert_eq!(
            rendered,
            [
                "crates/domain/src/bare.rs:1: [docs] file does not start with a `//!` doc comment saying what it is for",
                "crates/domain/Cargo.toml:4: [layering] `offerloop-domain` is pure (no I/O) and must not depend on \
                 `reqwest`; move the I/O to an outer layer",
                &[
                    "xtask/src/main.rs:2: [todo] `",
                    "todo",
                    "!(..)` left in the code; finish it or return an error"
                ]
                .concat(),
            ]
        );
    }

    #[test]
    fn doc_header_rule() {
        assert_eq!(doc_header_problem("\n//! Does a thing.\nfn f() {}\n"), None);
        assert!(doc_header_problem("/// Item doc.\nfn f() {}\n").is_some());
        assert!(doc_header_problem("#![allow(x)]\n//! Late.\n").is_some());
        assert!(doc_header_problem("").is_some());
    }

    #[test]
    fn unfinished_code_is_found_outside_comments() {
        let source = [
            "fn a() {\n    ",
            "todo",
            "!()\n}\n// ",
            "todo",
            "!() in a comment is fine\nfn b() { ",
            "unimplemented",
            "!(\"x\") }\n",
        ]
        .concat();
        assert_eq!(
            unfinished_code(&source),
            [(2, concat!("todo", "!(")), (5, concat!("unimplemented", "!("))]
        );
    }
}
