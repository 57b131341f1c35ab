//! The `offerloop` binary as a process: arguments, exit codes, files written, text printed.

// Test helpers may panic: a broken fixture should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod policy;
mod workers;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn offerloop(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_offerloop"))
        .args(args)
        .current_dir(dir)
        .env_remove("OFFERLOOP_LOG")
        .output()
        .expect("the offerloop binary runs")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every command of the binary, with its subcommands.
const COMMANDS: &[(&str, &[&str])] = &[
    ("init", &[]),
    ("validate", &[]),
    ("braze", &["check"]),
    ("policy", &["init", "decide", "learn", "evaluate"]),
    ("check", &[]),
    ("templates", &["sync"]),
    ("run", &[]),
    ("status", &[]),
    ("worker", &[]),
    ("store", &["migrate", "export"]),
    ("report", &[]),
    ("demo", &[]),
    ("sim", &["serve"]),
    ("currents", &["scan"]),
];

/// The commands a `--help` lists under `Commands:` (clap's own `help` left out).
fn listed_commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A wrapped description continues further indented.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// The top-level help lists every command and nothing stale; every command's and subcommand's help
/// renders and says nothing stale either.
#[test]
fn help_lists_every_command_and_is_current() {
    let out = offerloop(&["--help"], &repo());
    assert!(out.status.success());
    let help = text(&out.stdout);
    let expected: Vec<&str> = COMMANDS.iter().map(|(c, _)| *c).collect();
    assert_eq!(listed_commands(&help), expected, "{help}");
    let stale = |text: &str| text.contains("as layers land") || text.contains("capacity.py");
    assert!(!stale(&help), "{help}");
    for (command, subcommands) in COMMANDS {
        let out = offerloop(&[command, "--help"], &repo());
        let help = text(&out.stdout);
        assert!(out.status.success() && !stale(&help), "{command}: {help}");
        assert_eq!(listed_commands(&help), *subcommands, "{command}: {help}");
        for sub in *subcommands {
            let out = offerloop(&[command, sub, "--help"], &repo());
            let help = text(&out.stdout);
            assert!(out.status.success() && !stale(&help), "{command} {sub}: {help}");
        }
    }
    let run = text(&offerloop(&["run", "--help"], &repo()).stdout);
    assert!(
        run.contains("--export-timeout <DURATION>") && run.contains("[default: 2h]"),
        "{run}"
    );
    let check = text(&offerloop(&["check", "--help"], &repo()).stdout);
    assert!(
        check.contains("ids file") && check.contains("Currents bucket"),
        "{check}"
    );
}

#[test]
fn run_refuses_an_export_timeout_that_is_not_a_duration() {
    let out = offerloop(
        &["run", "--use-case", "examples/winback.toml", "--export-timeout", "soon"],
        &repo(),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("`soon` is not a duration"), "{stderr}");
}

#[test]
fn validate_accepts_every_example_and_exits_zero() {
    let repo = repo();
    let mut args = vec!["validate"];
    let files: Vec<String> = std::fs::read_dir(repo.join("examples"))
        .unwrap()
        .map(|e| format!("examples/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|f| f.ends_with(".toml"))
        .collect();
    args.extend(files.iter().map(String::as_str));
    let out = offerloop(&args, &repo);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).lines().filter(|l| l.starts_with("ok ")).count(),
        files.len()
    );
}

#[test]
fn validate_reports_located_errors_and_exits_non_zero() {
    let out = offerloop(&["validate", "tests/fixtures/invalid/many-problems.toml"], &repo());
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(
            "tests/fixtures/invalid/many-problems.toml:4:8 use_case.kind: unknown value `win_back`; did you mean `winback`?"
        ),
        "{stderr}"
    );
    // The offending line is shown with a caret under the problem.
    assert!(
        stderr.contains("4 | kind = \"win_back\"\n  |        ^^^^^^^^^^"),
        "{stderr}"
    );
    assert!(
        stderr
            .trim_end()
            .ends_with("error: tests/fixtures/invalid/many-problems.toml: 6 problems"),
        "{stderr}"
    );
}

#[test]
fn validate_names_an_unreadable_file() {
    let out = offerloop(&["validate", "no/such/file.toml"], &repo());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("error: no/such/file.toml: cannot read:"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn init_writes_a_valid_template_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = offerloop(&["init", "--template", "winback"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = dir.path().join("winback.toml");
    assert_eq!(
        std::fs::read_to_string(&written).unwrap(),
        include_str!("../../../../examples/winback.toml")
    );
    let check = offerloop(&["validate", "winback.toml"], dir.path());
    assert!(check.status.success(), "{}", text(&check.stderr));

    let again = offerloop(&["init", "--template", "winback"], dir.path());
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("already exists; pass --force"),
        "{}",
        text(&again.stderr)
    );
    let forced = offerloop(&["init", "--template", "winback", "--force"], dir.path());
    assert!(forced.status.success());
}

#[test]
fn init_renames_the_kind_of_shared_templates_and_writes_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let out = offerloop(&["init", "--template", "upsell", "--out", "-"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("kind = \"upsell\""));
    let out = offerloop(&["init", "--template", "retention", "--out", "ret.toml"], dir.path());
    assert!(out.status.success());
    let check = offerloop(&["validate", "ret.toml"], dir.path());
    assert!(text(&check.stdout).contains("(retention)"), "{}", text(&check.stdout));
}

#[test]
fn init_lists_templates_for_an_unknown_kind() {
    let dir = tempfile::tempdir().unwrap();
    let out = offerloop(&["init", "--template", "growth_hack"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no template for `growth_hack`") && stderr.contains("lead_nurture"),
        "{stderr}"
    );
}

/// A copy of the minimal use case pointed at `base_url`, written into `dir`.
fn use_case_for(dir: &Path, base_url: &str) -> PathBuf {
    let source = std::fs::read_to_string(repo().join("tests/fixtures/valid/minimal.toml")).unwrap();
    let patched = source.replace("https://rest.fra-01.braze.eu", base_url);
    let path = dir.join("uc.toml");
    std::fs::write(&path, patched).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn braze_check_prints_a_permission_table_and_fails_on_a_missing_one() {
    use wiremock::matchers::{header, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let server = MockServer::start().await;
    // The key lacks `segments.details`; everything else answers as Braze would to a probe.
    Mock::given(path("/segments/details"))
        .respond_with(ResponseTemplate::new(403).set_body_json(serde_json::json!({"message": "Access Denied"})))
        .mount(&server)
        .await;
    Mock::given(header("authorization", "Bearer sk-cli-test"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({"message": "Invalid Campaign ID"})))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let uc = use_case_for(dir.path(), &server.uri());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_offerloop"))
            .args(["braze", "check", "--use-case"])
            .arg(&uc)
            .env("BRAZE_API_KEY", "sk-cli-test")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("segments.details"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("segments.details") && l.contains("missing")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("campaigns.trigger.send") && l.contains(" ok ")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("users.export.segment") && l.contains(" ok ")),
        "{stdout}"
    );
    assert!(!stdout.contains("sk-cli-test") && !text(&out.stderr).contains("sk-cli-test"));
}

#[test]
fn braze_check_names_the_missing_key_variable() {
    let dir = tempfile::tempdir().unwrap();
    let uc = use_case_for(dir.path(), "http://127.0.0.1:9");
    let out = Command::new(env!("CARGO_BIN_EXE_offerloop"))
        .args(["braze", "check", "--use-case"])
        .arg(&uc)
        .env_remove("BRAZE_API_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("`BRAZE_API_KEY`"), "{}", text(&out.stderr));
}
