//! The inputs of a run that are not in Braze, checked by `offerloop check` beside the Braze checks:
//! the audience's ids file and the Currents bucket outcomes are read from.
//!
//! Each is checked the way `offerloop run` will use it, so a use case that passes `check` does not
//! fail its first run on a missing input: the ids file is resolved against the use-case file's
//! directory ([`offerloop_engine::ids_file_path`]) and read with the run's own parser
//! ([`offerloop_engine::read_ids`]); the Currents bucket is opened with the environment's credentials
//! as the run opens it and its `event_type=` folders are listed (read calls only). Each gives one
//! [`CheckResult`] row, with a fix under every ✗ and ⚠.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use offerloop_activation::preflight::{CheckResult, CheckStatus};
use offerloop_currents::Bucket;
use offerloop_domain::UseCase;

/// The names of the rows this module adds.
pub mod names {
    /// The audience's file of external ids exists and can be read.
    pub const IDS_FILE: &str = "audience ids file";
    /// The Currents bucket of `[outcomes] currents` can be opened and listed.
    pub const CURRENTS: &str = "Currents bucket";
}

/// The longest a bucket listing may take before the check gives up on it.
pub const CURRENTS_LIST_TIMEOUT: Duration = Duration::from_secs(60);

/// The directory a run resolves the use case's relative paths against: the use-case file's own.
pub fn base_dir(use_case_path: &Path) -> PathBuf {
    use_case_path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Every local-input row of `use_case`, whose file is in `base_dir`: the ids file (for an ids-file
/// audience) and the Currents bucket (when `[outcomes] currents` names one). Empty when the use case
/// has neither.
pub async fn check_inputs(use_case: &UseCase, base_dir: &Path) -> Vec<CheckResult> {
    let mut rows: Vec<CheckResult> = ids_file(use_case, base_dir).into_iter().collect();
    if let Some(url) = &use_case.outcomes.currents {
        rows.push(currents(url).await);
    }
    rows
}

fn row(name: &str, status: CheckStatus, detail: String, fix: Option<String>) -> CheckResult {
    CheckResult {
        name: name.to_owned(),
        status,
        detail,
        fix,
    }
}

/// The ids-file row: ✓ with the number of ids, ⚠ when the file holds none, ✗ when it cannot be
/// read. `None` for a segment audience.
pub fn ids_file(use_case: &UseCase, base_dir: &Path) -> Option<CheckResult> {
    let path = offerloop_engine::ids_file_path(use_case, base_dir)?;
    let shown = path.display();
    Some(match offerloop_engine::read_ids(&path) {
        Ok(ids) if ids.is_empty() => row(
            names::IDS_FILE,
            CheckStatus::Warn,
            format!("{shown} holds no id: a run would decide for nobody"),
            Some("write today's audience into it, one external id per line, before the run".to_owned()),
        ),
        Ok(ids) => {
            let distinct = ids.iter().collect::<HashSet<_>>().len();
            let duplicates = ids.len() - distinct;
            let extra = if duplicates > 0 {
                format!(" ({duplicates} repeated: each customer is decided once)")
            } else {
                String::new()
            };
            row(
                names::IDS_FILE,
                CheckStatus::Pass,
                format!("{shown}: {distinct} external ids{extra}"),
                None,
            )
        }
        Err(e) => row(
            names::IDS_FILE,
            CheckStatus::Fail,
            format!("cannot read the ids file the run needs: {e}"),
            Some(format!(
                "create {shown} (one external id per line; blank lines and `#` comments are skipped), or fix \
                 `[audience] ids_file`: a relative path is resolved against the use-case file's directory ({})",
                base_dir.display()
            )),
        ),
    })
}

/// The Currents row: ✓ with the event types found, ⚠ when the prefix holds no `event_type=` folder
/// yet, ✗ when the bucket cannot be opened or listed (within [`CURRENTS_LIST_TIMEOUT`]).
pub async fn currents(url: &str) -> CheckResult {
    let fix = || {
        Some(format!(
            "check the URL (s3://bucket/prefix, gs://bucket/prefix, az://container/prefix or file:///path: the \
             prefix the Currents connector writes to) and the credentials in this environment (AWS_*, \
             GOOGLE_*, AZURE_STORAGE_*); `offerloop currents scan {url}` shows what the bucket holds"
        ))
    };
    let bucket = match Bucket::open(url) {
        Ok(bucket) => bucket,
        Err(e) => return row(names::CURRENTS, CheckStatus::Fail, format!("cannot open: {e}"), fix()),
    };
    let folders = match tokio::time::timeout(CURRENTS_LIST_TIMEOUT, bucket.event_type_folders()).await {
        Ok(Ok(folders)) => folders,
        Ok(Err(e)) => return row(names::CURRENTS, CheckStatus::Fail, format!("cannot list: {e}"), fix()),
        Err(_) => {
            return row(
                names::CURRENTS,
                CheckStatus::Fail,
                format!(
                    "Currents bucket `{url}`: no answer to the listing within {} s",
                    CURRENTS_LIST_TIMEOUT.as_secs()
                ),
                fix(),
            );
        }
    };
    let mut types: Vec<String> = folders.into_iter().map(|(_, event_type)| event_type).collect();
    types.sort();
    types.dedup();
    if types.is_empty() {
        return row(
            names::CURRENTS,
            CheckStatus::Warn,
            format!("{url}: listed, but it holds no `event_type=` folder yet: a run would read no outcome from it"),
            Some(
                "check that the Currents connector writes under this prefix (its folders appear with its first \
                 files); until then the run learns nothing from Currents"
                    .to_owned(),
            ),
        );
    }
    row(
        names::CURRENTS,
        CheckStatus::Pass,
        format!("{url}: {} event types ({})", types.len(), types.join(", ")),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lead-nurture example (an ids-file audience), optionally reading outcomes from `currents`.
    fn lead_nurture(currents: Option<&str>) -> UseCase {
        let mut text = include_str!("../../../examples/lead-nurture.toml").to_owned();
        if let Some(url) = currents {
            text.push_str(&format!("\n[outcomes]\ncurrents = \"{url}\"\n"));
        }
        offerloop_domain::config::parse_use_case(&text, "lead-nurture.toml").unwrap()
    }

    /// The finding: `check` passed lead-nurture although its ids file did not exist, and the
    /// run then failed. The row is a ✗ naming the resolved path and how it is resolved.
    #[tokio::test]
    async fn a_missing_ids_file_fails_naming_the_path_the_run_reads() {
        let dir = tempfile::tempdir().unwrap();
        let rows = check_inputs(&lead_nurture(None), dir.path()).await;
        assert_eq!(rows.len(), 1, "{rows:#?}");
        let row = &rows[0];
        assert_eq!((row.name.as_str(), row.status), (names::IDS_FILE, CheckStatus::Fail));
        let expected = dir.path().join("audiences/open-mqls.txt");
        assert!(row.detail.contains(&expected.display().to_string()), "{row:?}");
        let fix = row.fix.as_deref().unwrap();
        assert!(fix.contains("use-case file's directory"), "{fix}");
    }

    #[tokio::test]
    async fn an_ids_file_is_resolved_against_the_use_case_files_directory_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("audiences")).unwrap();
        let file = dir.path().join("audiences/open-mqls.txt");
        std::fs::write(&file, "# today's MQLs\nld-1\n\nld-2\n ld-1 \n").unwrap();
        let row = ids_file(&lead_nurture(None), dir.path()).unwrap();
        assert_eq!(row.status, CheckStatus::Pass, "{row:?}");
        assert!(
            row.detail
                .ends_with(": 2 external ids (1 repeated: each customer is decided once)"),
            "{row:?}"
        );
        std::fs::write(&file, "# nobody today\n").unwrap();
        assert_eq!(
            ids_file(&lead_nurture(None), dir.path()).unwrap().status,
            CheckStatus::Warn
        );
        // A segment audience has no ids file to check.
        let winback = offerloop_domain::config::parse_use_case(crate::demo_cmd::USE_CASE, "winback.toml").unwrap();
        assert!(ids_file(&winback, dir.path()).is_none());
        assert_eq!(base_dir(Path::new("uc.toml")), PathBuf::from(""));
        assert_eq!(base_dir(Path::new("/a/b/uc.toml")), PathBuf::from("/a/b"));
    }

    #[tokio::test]
    async fn a_currents_bucket_is_opened_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = dir.path().join("currents");
        std::fs::create_dir_all(&bucket).unwrap();
        let url = format!("file://{}", bucket.display());
        // Listed, but the connector has written nothing yet.
        let empty = currents(&url).await;
        assert_eq!(empty.status, CheckStatus::Warn, "{empty:?}");
        // The connector's layout: <prefix>/<connector>/event_type=<type>/date=<hour>/<file>.avro
        let folder =
            bucket.join("dataexport.prod-01.S3.integration.abc/event_type=users.behaviors.Purchase/date=2026-01-05-01");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("0.avro"), b"Obj\x01").unwrap();
        let found = currents(&url).await;
        assert_eq!(found.status, CheckStatus::Pass, "{found:?}");
        assert!(found.detail.contains("users.behaviors.Purchase"), "{found:?}");
        // A prefix that does not exist, and a scheme Currents does not write to.
        for bad in [
            format!("file://{}", dir.path().join("missing").display()),
            "ftp://x/y".to_owned(),
        ] {
            let row = currents(&bad).await;
            assert_eq!(row.status, CheckStatus::Fail, "{row:?}");
            assert!(
                row.fix.as_deref().unwrap().contains("offerloop currents scan"),
                "{row:?}"
            );
        }
        let rows = check_inputs(&lead_nurture(Some(&url)), dir.path()).await;
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, [names::IDS_FILE, names::CURRENTS]);
    }
}
