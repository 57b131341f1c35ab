//! Use-case files end to end: every shipped example validates, and every invalid fixture yields exactly
//! the located errors recorded in its snapshot.

use offerloop_cli::validate::{Verdict, check_source};
use offerloop_tests::{repo_root, toml_files};

/// Validates a file as `offerloop validate` does, naming it by its path relative to the repository.
fn verdict(path: &std::path::Path) -> (String, Verdict) {
    let source = std::fs::read_to_string(path).expect("fixture readable");
    let name = path.strip_prefix(repo_root()).unwrap_or(path).display().to_string();
    let verdict = check_source(&source, &name);
    (name, verdict)
}

#[test]
fn every_example_validates() {
    let files = toml_files("examples");
    assert!(
        files.len() >= 7,
        "expected the seven use-case examples, found {}",
        files.len()
    );
    for path in files {
        let (name, verdict) = verdict(&path);
        if let Verdict::Invalid(problems) = verdict {
            let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
            panic!("{name} is invalid:\n{}", text.join("\n"));
        }
    }
}

#[test]
fn the_minimal_fixture_validates() {
    let (name, verdict) = verdict(&repo_root().join("tests/fixtures/valid/minimal.toml"));
    assert!(matches!(verdict, Verdict::Valid(_)), "{name}: {verdict:?}");
}

#[test]
fn every_invalid_fixture_yields_its_located_errors() {
    let files = toml_files("tests/fixtures/invalid");
    assert!(
        files.len() >= 12,
        "expected at least 12 invalid fixtures, found {}",
        files.len()
    );
    for path in files {
        let (name, verdict) = verdict(&path);
        let Verdict::Invalid(problems) = verdict else {
            panic!("{name} should be invalid");
        };
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("fixture")
            .to_owned();
        insta::assert_snapshot!(stem, text.join("\n"));
    }
}
