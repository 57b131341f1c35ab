//! Waiting for an export in a local directory that the customer's bucket is synced to.
//!
//! With a bucket configured, Braze writes an export's files under
//! `segment-export/<segment_id>/<YYYY-MM-dd>/<object_prefix>/<random>.zip` (`.gz` with gzip output),
//! where `object_prefix` comes back from `POST /users/export/segment` and the date is only known once
//! the export is done. [`find_export_files`] therefore searches the whole tree under the root for a
//! directory named after the prefix; [`wait_for_directory`] polls it on the [`ExportPoll`] schedule
//! until files are there and their sizes are the same on two consecutive checks (a sync tool may still
//! be writing them).

use std::io;
use std::path::{Path, PathBuf};

use super::poll::Wait;
use super::{ExportError, ExportPoll};
use crate::Endpoint;

/// The export files in a prefix directory, with their sizes, sorted by path.
type Snapshot = Vec<(PathBuf, u64)>;

/// Waits until the export's files are present and stable under `root`, and returns them sorted by
/// path (ready for [`super::ExportReader::new`]).
///
/// # Errors
/// [`ExportError::NotReady`] when `policy`'s timeout passes first (no files yet, or still changing);
/// [`ExportError::Io`] if `root` itself cannot be read (a missing root is a configuration error, not
/// an export in progress).
pub async fn wait_for_directory(
    root: &Path,
    object_prefix: &str,
    policy: &ExportPoll,
) -> Result<Vec<PathBuf>, ExportError> {
    let mut wait = Wait::start(policy, Endpoint::UsersExportSegment);
    let mut previous: Option<Snapshot> = None;
    loop {
        let attempts = wait.check();
        let snapshot = scan(root, object_prefix).await?;
        if !snapshot.is_empty() && previous.as_ref() == Some(&snapshot) {
            wait.ready();
            tracing::info!(
                attempts,
                files = snapshot.len(),
                object_prefix,
                "segment export files are ready"
            );
            return Ok(snapshot.into_iter().map(|(path, _)| path).collect());
        }
        let why = match snapshot.len() {
            0 => "no files yet".to_owned(),
            n => format!("{n} file(s), still changing"),
        };
        previous = Some(snapshot);
        wait.not_ready(why).await?;
    }
}

/// [`find_export_files`] on a blocking thread.
async fn scan(root: &Path, object_prefix: &str) -> Result<Snapshot, ExportError> {
    let (root_owned, prefix) = (root.to_path_buf(), object_prefix.to_owned());
    tokio::task::spawn_blocking(move || find_export_files(&root_owned, &prefix))
        .await
        .map_err(|e| ExportError::Worker(e.to_string()))?
        .map_err(|e| ExportError::io(root, e))
}

/// The export files under `root` in a directory named `object_prefix` (at any depth, `root` itself
/// included), with their sizes, sorted by path. Export files are `.zip`, `.gz`, `.json`, `.ndjson` and
/// `.jsonl` files not starting with `.` (sync tools' temporary files usually do). Symbolic links are
/// not followed; a directory that vanishes during the walk is skipped.
///
/// # Errors
/// Any I/O error other than a vanished directory below `root`.
pub fn find_export_files(root: &Path, object_prefix: &str) -> io::Result<Vec<(PathBuf, u64)>> {
    let mut found = Vec::new();
    // (directory, whether it is inside a prefix directory)
    let mut stack = vec![(root.to_path_buf(), root.file_name().is_some_and(|n| n == object_prefix))];
    let mut first = true;
    while let Some((dir, in_prefix)) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !first => continue,
            Err(e) => return Err(e),
        };
        first = false;
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            let name = entry.file_name();
            if kind.is_dir() {
                stack.push((entry.path(), in_prefix || name == object_prefix));
            } else if kind.is_file() && in_prefix && is_export_file(&name.to_string_lossy()) {
                let size = match entry.metadata() {
                    Ok(meta) => meta.len(),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                found.push((entry.path(), size));
            }
        }
    }
    found.sort();
    Ok(found)
}

fn is_export_file(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !lower.starts_with('.')
        && [".zip", ".gz", ".json", ".ndjson", ".jsonl"]
            .iter()
            .any(|ext| lower.ends_with(ext))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;
    use crate::export::test_support::{user_line, write_gzip};

    fn policy() -> ExportPoll {
        ExportPoll::default()
            .with_initial_delay(Duration::from_secs(2))
            .with_max_delay(Duration::from_secs(10))
            .with_timeout(Duration::from_secs(120))
    }

    #[test]
    fn finds_the_prefix_directory_at_any_depth_and_ignores_other_files() {
        let root = tempfile::tempdir().unwrap();
        let prefix_dir = root.path().join("segment-export/seg-1/2026-11-29/abc-123");
        let other = root.path().join("segment-export/seg-1/2026-11-28/older-999");
        std::fs::create_dir_all(&prefix_dir).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        for name in ["b.zip", "a.gz", ".a.gz.partial", "notes.txt"] {
            std::fs::write(prefix_dir.join(name), b"x").unwrap();
        }
        std::fs::write(other.join("c.zip"), b"x").unwrap();

        let found: Vec<PathBuf> = find_export_files(root.path(), "abc-123")
            .unwrap()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(found, [prefix_dir.join("a.gz"), prefix_dir.join("b.zip")]);
        // The prefix directory itself can be the root.
        assert_eq!(find_export_files(&prefix_dir, "abc-123").unwrap().len(), 2);
        assert!(find_export_files(root.path(), "nope").unwrap().is_empty());
        assert!(find_export_files(&root.path().join("missing"), "abc-123").is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn waits_for_files_to_appear_and_settle() {
        let root = tempfile::tempdir().unwrap();
        let prefix_dir = root.path().join("segment-export/seg/2026-11-29/pfx-1");
        let writer_dir = prefix_dir.clone();
        // The "sync tool": the directory appears after 5 s, a first file after 9 s, a second after 15 s.
        let sync = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            std::fs::create_dir_all(&writer_dir).unwrap();
            tokio::time::sleep(Duration::from_secs(4)).await;
            write_gzip(&writer_dir, "part-0.gz", &[user_line(1)]);
            tokio::time::sleep(Duration::from_secs(6)).await;
            write_gzip(&writer_dir, "part-1.gz", &[user_line(2)]);
        });

        let started = Instant::now();
        let files = wait_for_directory(root.path(), "pfx-1", &policy()).await.unwrap();
        sync.await.unwrap();

        assert_eq!(files, [prefix_dir.join("part-0.gz"), prefix_dir.join("part-1.gz")]);
        // Checks at 0, 2, 6, 14 (one file), 24 (two files), 34 (same two files: ready).
        assert_eq!(started.elapsed(), Duration::from_secs(34));
        let ids: Vec<_> = crate::export::ExportReader::new(files)
            .map(|u| u.unwrap().external_id.unwrap())
            .collect();
        assert_eq!(ids, ["user-1", "user-2"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_prefix_without_files_times_out() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("segment-export/seg/2026-11-29/pfx-2")).unwrap();
        let error = wait_for_directory(root.path(), "pfx-2", &policy()).await.unwrap_err();
        let ExportError::NotReady { waited, .. } = error else {
            panic!("{error:?}")
        };
        assert_eq!(waited, Duration::from_secs(120));
    }

    /// A `MakeWriter` that keeps what the fmt layer writes.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A long wait is never silent: every check reaches the progress callback, and the log says at
    /// `info` that it is waiting, at the first check and then once a minute.
    #[tokio::test(start_paused = true)]
    async fn a_long_wait_reports_progress_and_logs_at_info_once_a_minute() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("segment-export/seg/2026-11-29/pfx-3")).unwrap();
        let reports = std::sync::Arc::new(std::sync::Mutex::new(Vec::<crate::export::ExportWait>::new()));
        let sink = std::sync::Arc::clone(&reports);
        let policy = policy()
            .with_timeout(Duration::from_secs(300))
            .with_progress(crate::export::ExportProgress::new(move |w| {
                sink.lock().unwrap().push(w.clone())
            }));
        let log = Captured::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);

        let error = wait_for_directory(root.path(), "pfx-3", &policy).await.unwrap_err();

        let ExportError::NotReady { attempts, .. } = error else {
            panic!("{error:?}")
        };
        let reports = reports.lock().unwrap();
        assert_eq!(reports.len(), attempts as usize);
        assert!(reports.iter().all(|r| !r.ready && r.status == "no files yet"));
        assert_eq!(
            reports.iter().map(|r| r.checks).collect::<Vec<_>>(),
            (1..=attempts).collect::<Vec<_>>()
        );
        let last = reports.last().unwrap();
        assert_eq!(
            (last.waited, last.timeout),
            (Duration::from_secs(300), Duration::from_secs(300))
        );
        assert_eq!(last.endpoint, Endpoint::UsersExportSegment);
        // Checks at 0, 2, 6, 14, then every 10 s: logged at 0, 64, 124, 184 and 244 s.
        let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        let waiting: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("INFO") && l.contains("waiting for the export to be ready"))
            .collect();
        assert_eq!(waiting.len(), 5, "{text}");
        assert!(
            waiting[1].contains("waited_s=64") && waiting[1].contains("timeout_s=300"),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_root_is_an_error_at_once() {
        let root = tempfile::tempdir().unwrap();
        let error = wait_for_directory(&root.path().join("not-synced"), "pfx", &policy()).await;
        assert!(matches!(error, Err(ExportError::Io { .. })), "{error:?}");
    }
}
