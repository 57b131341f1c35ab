//! [`DryRunActivator`]: plans exactly like [`crate::BrazeActivator`] and writes each batch as one
//! JSON line instead of sending it.
//!
//! Every line is `{"id", "kind", "decision_ids", "request"}` (`kind` as in [`crate::BatchKind`]'s
//! serialisation, `request` the exact body that would be sent). A line is written with one `write_all`
//! on a file opened in append mode, under a lock, so lines from concurrent `execute` calls of one
//! activator never interleave, and a line is never split by another process appending with
//! `O_APPEND` (each line is a single write). Writing is blocking file I/O: lines are small.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use jiff::civil::Date;
use offerloop_domain::UseCase;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::{ActivationRequest, Activator, BatchKind, BatchOutcome, Error, PlannedBatch, Result, plan};

/// One line of the JSONL file: the batch, its request inline as JSON.
#[derive(Serialize)]
struct Line<'a> {
    id: &'a str,
    kind: &'a BatchKind,
    decision_ids: &'a [String],
    request: &'a RawValue,
}

/// Writes batches as JSONL to a file instead of sending them.
#[derive(Debug)]
pub struct DryRunActivator {
    path: PathBuf,
    /// Serialises appends from concurrent `execute` calls.
    lock: Mutex<()>,
}

impl DryRunActivator {
    /// An activator appending to `path` (created, with its parent directories, on the first batch).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }

    /// The JSONL file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `batch` as one line.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be created or written.
    pub fn append(&self, batch: &PlannedBatch) -> Result<()> {
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        let request: &RawValue = serde_json::from_str(&batch.request).map_err(|e| io(std::io::Error::other(e)))?;
        let line = Line {
            id: &batch.id,
            kind: &batch.kind,
            decision_ids: &batch.decision_ids,
            request,
        };
        let mut bytes = serde_json::to_vec(&line).map_err(|e| io(std::io::Error::other(e)))?;
        bytes.push(b'\n');
        // A poisoned lock only means another append panicked; the file is still usable.
        let _guard = self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        file.write_all(&bytes).map_err(io)?;
        file.flush().map_err(io)
    }
}

#[async_trait]
impl Activator for DryRunActivator {
    fn plan(&self, use_case: &UseCase, date: Date, requests: &[ActivationRequest]) -> Result<Vec<PlannedBatch>> {
        plan::plan(use_case, date, requests)
    }

    /// Appends the batch: [`BatchOutcome::Written`] with the file, or `Rejected` (retryable: nothing
    /// was sent, the file may become writable) when the file cannot be written.
    async fn execute(&self, batch: &PlannedBatch) -> BatchOutcome {
        match self.append(batch) {
            Ok(()) => BatchOutcome::Written { to: self.path.clone() },
            Err(error) => BatchOutcome::Rejected {
                error: error.to_string(),
                retryable: true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;

    use super::*;
    use crate::plan::tests::{example, request};

    #[tokio::test]
    async fn batches_become_one_json_line_each_and_plans_match_braze() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs").join("dry.jsonl");
        let activator = DryRunActivator::new(&path);
        let use_case = example("winback");
        let date: Date = "2026-01-05".parse().unwrap();
        let requests: Vec<ActivationRequest> = (0..120)
            .map(|i| {
                let channel = ["email", "sms", "push"][i % 3];
                request(
                    &use_case,
                    &format!("d-{i:03}"),
                    &format!("wb-{i}"),
                    &[("channel", channel)],
                )
            })
            .collect();
        let batches = activator.plan(&use_case, date, &requests).unwrap();
        let braze = crate::BrazeActivator::new(Arc::new(offerloop_braze::MockBrazeApi::new()));
        assert_eq!(batches, braze.plan(&use_case, date, &requests).unwrap());
        for batch in &batches {
            assert_eq!(
                activator.execute(batch).await,
                BatchOutcome::Written { to: path.clone() }
            );
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), batches.len());
        for (line, batch) in lines.iter().zip(&batches) {
            assert_eq!(line["id"], Value::String(batch.id.clone()));
            assert_eq!(line["kind"], serde_json::to_value(&batch.kind).unwrap());
            assert_eq!(line["decision_ids"], serde_json::to_value(&batch.decision_ids).unwrap());
            assert_eq!(line["request"], batch.request_json().unwrap());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_never_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dry.jsonl");
        let activator = Arc::new(DryRunActivator::new(&path));
        let use_case = example("winback");
        let requests: Vec<ActivationRequest> = (0..400)
            .map(|i| request(&use_case, &format!("d-{i:03}"), &format!("wb-{i}"), &[]))
            .collect();
        let batches = activator
            .plan(&use_case, "2026-01-05".parse().unwrap(), &requests)
            .unwrap();
        let rounds = 8;
        let tasks: Vec<_> = (0..rounds)
            .map(|_| {
                let activator = Arc::clone(&activator);
                let batches = batches.clone();
                tokio::spawn(async move {
                    for batch in &batches {
                        assert!(matches!(activator.execute(batch).await, BatchOutcome::Written { .. }));
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n'));
        let mut count = 0;
        for line in text.lines() {
            let value: Value = serde_json::from_str(line).unwrap();
            assert!(batches.iter().any(|b| value["id"] == Value::String(b.id.clone())));
            count += 1;
        }
        assert_eq!(count, rounds * batches.len());
    }

    #[tokio::test]
    async fn an_unwritable_file_is_a_retryable_rejection() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be.
        let activator = DryRunActivator::new(dir.path());
        let use_case = example("winback");
        let batches = activator
            .plan(
                &use_case,
                "2026-01-05".parse().unwrap(),
                &[request(&use_case, "d-1", "wb-1", &[])],
            )
            .unwrap();
        let outcome = activator.execute(&batches[0]).await;
        assert!(
            matches!(outcome, BatchOutcome::Rejected { retryable: true, .. }),
            "{outcome:?}"
        );
        assert!(matches!(activator.append(&batches[0]), Err(Error::Io { .. })));
    }
}
