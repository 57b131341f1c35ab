//! Segment exports: from `POST /users/export/segment` to a stream of typed [`ExportedUser`] records.
//!
//! A segment export is asynchronous. Its response names where the result will appear, an
//! [`ExportSource`]: a Braze-hosted `url` (no bucket configured), or the `object_prefix` under which
//! Braze writes into the customer's bucket, which offerloop reads from a local directory the bucket is
//! synced to. [`ExportSource::wait_until_ready`] polls either one with exponential backoff bounded by a
//! timeout ([`ExportPoll`]; [`download_when_ready`], [`wait_for_directory`]) and returns local files;
//! [`ExportReader`] then streams their users, one line at a time, in memory that does not grow with
//! the number of users. [`export_segment`] does all three through any [`crate::BrazeApi`].
//!
//! ```no_run
//! # async fn run(http: &reqwest::Client) -> Result<(), offerloop_braze::export::ExportError> {
//! use offerloop_braze::export::{ExportPoll, ExportReader, ExportSource};
//!
//! let source = ExportSource::Download { url: "https://example.invalid/export.zip".into() };
//! let dir = std::path::Path::new("/var/lib/offerloop/exports/run-42");
//! let files = source.wait_until_ready(http, dir, &ExportPoll::default()).await?;
//! let reader = ExportReader::new(files).fields_to_export(["external_id", "custom_attributes"]);
//! // A blocking iterator: run it on `spawn_blocking`, or use `reader.into_stream()`.
//! # let _ = reader;
//! # Ok(()) }
//! ```
//!
//! Architecture invariant: nothing here keeps a user's data beyond the record being yielded, and
//! nothing keeps a field the export did not ask for or offerloop does not model (PII in particular);
//! see [`FieldSet`].

mod directory;
mod download;
mod error;
mod fields;
mod poll;
mod reader;
#[cfg(test)]
mod test_support;
mod user;

use std::fmt;
use std::path::{Path, PathBuf};

pub use directory::{find_export_files, wait_for_directory};
pub use download::download_when_ready;
pub use error::ExportError;
pub use fields::{AttributeFilter, FieldSet, TYPED_FIELDS};
pub use poll::{ExportPoll, ExportProgress, ExportWait, PROGRESS_LOG_INTERVAL};
pub use reader::{ExportReader, ExportStream};
pub use user::{CampaignReceived, CanvasReceived, EventSummary, ExportedUser};

/// The name of the file a Braze-hosted export is downloaded to, inside the caller's directory.
pub const DOWNLOAD_FILE_NAME: &str = "segment-export.zip";

/// Where a segment export's result appears.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportSource {
    /// A single ZIP hosted by Braze, at the `url` of the export's response (no bucket configured). The
    /// URL answers 404/403 until the export is done and expires a few hours later.
    Download {
        /// The download URL (a bearer credential: it is never logged, and `Debug` hides its query).
        url: String,
    },
    /// A local directory the customer's bucket is synced to, where Braze writes the export's files
    /// under `segment-export/<segment_id>/<YYYY-MM-dd>/<object_prefix>/`.
    Directory {
        /// The synced directory (the bucket root, or any directory above the prefix directory).
        root: PathBuf,
        /// The `object_prefix` of the export's response.
        object_prefix: String,
    },
}

impl fmt::Debug for ExportSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Download { url } => {
                let shown = url.split_once('?').map_or(url.as_str(), |(base, _)| base);
                f.debug_struct("Download").field("url", &shown).finish_non_exhaustive()
            }
            Self::Directory { root, object_prefix } => f
                .debug_struct("Directory")
                .field("root", root)
                .field("object_prefix", object_prefix)
                .finish(),
        }
    }
}

impl ExportSource {
    /// Waits until the export is ready and returns its local files, in reading order: for
    /// [`ExportSource::Download`], the ZIP downloaded into `download_dir` as [`DOWNLOAD_FILE_NAME`] (use
    /// one directory per export); for [`ExportSource::Directory`], the files found under the root
    /// (`download_dir` is not used).
    ///
    /// # Errors
    /// See [`download_when_ready`] and [`wait_for_directory`].
    pub async fn wait_until_ready(
        &self,
        http: &reqwest::Client,
        download_dir: &Path,
        policy: &ExportPoll,
    ) -> Result<Vec<PathBuf>, ExportError> {
        match self {
            Self::Download { url } => {
                let dest = download_dir.join(DOWNLOAD_FILE_NAME);
                Ok(vec![download_when_ready(http, url, &dest, policy).await?])
            }
            Self::Directory { root, object_prefix } => wait_for_directory(root, object_prefix, policy).await,
        }
    }
}

/// Where offerloop reads a segment export's result from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportDestination {
    /// No bucket is configured in Braze: download the ZIP Braze hosts into `download_dir` (one
    /// directory per export; it must exist).
    BrazeHosted {
        /// Where the ZIP is written.
        download_dir: PathBuf,
    },
    /// Braze writes exports to the customer's bucket, which is synced to the local directory `root`.
    SyncedBucket {
        /// The synced directory (the bucket root, or any directory above the export's prefix).
        root: PathBuf,
    },
}

impl ExportSource {
    /// Where the export `response` started appears, read through `destination`.
    ///
    /// # Errors
    /// [`ExportError::NoDownloadUrl`] when the destination is [`ExportDestination::BrazeHosted`] but
    /// the response has no `url` (the workspace writes exports to a bucket).
    pub fn from_response(
        response: &crate::api::users::ExportSegmentResponse,
        destination: &ExportDestination,
    ) -> Result<Self, ExportError> {
        match destination {
            ExportDestination::SyncedBucket { root } => Ok(Self::Directory {
                root: root.clone(),
                object_prefix: response.object_prefix.clone(),
            }),
            ExportDestination::BrazeHosted { .. } => match &response.url {
                Some(url) => Ok(Self::Download { url: url.clone() }),
                None => Err(ExportError::NoDownloadUrl {
                    object_prefix: response.object_prefix.clone(),
                }),
            },
        }
    }
}

/// Exports a segment end to end: starts the export (`POST /users/export/segment`), waits for its
/// result through `destination` (bounded by `poll`), and returns a reader of its users that parses
/// only the requested `fields_to_export` and, when the request names its custom attributes
/// (`custom_attributes_to_export`), only those: any other attribute in the files is skipped
/// unparsed, whatever Braze wrote.
///
/// Braze's non-fatal `errors` of the start response are logged as a warning and otherwise ignored:
/// they never name users, and the export proceeds.
///
/// # Errors
/// The start request's [`crate::BrazeError`], or [`crate::BrazeError::Export`] when the result does
/// not appear in time (naming the segment and the timeout) or cannot be fetched.
pub async fn export_segment(
    api: &dyn crate::BrazeApi,
    request: crate::api::users::ExportSegmentRequest,
    destination: &ExportDestination,
    poll: &ExportPoll,
) -> crate::Result<ExportReader> {
    let fields = request.exported_fields();
    let attributes = request.custom_attributes_to_export.clone();
    let segment_id = request.segment_id.clone();
    let response = api.export_segment(request).await?;
    if !response.errors.is_empty() {
        tracing::warn!(
            segment_id,
            errors = response.errors.len(),
            "segment export started with non-fatal errors"
        );
    }
    let source = ExportSource::from_response(&response, destination)?;
    let download_dir = match destination {
        ExportDestination::BrazeHosted { download_dir } => download_dir.clone(),
        ExportDestination::SyncedBucket { root } => root.clone(),
    };
    let files = match api.fetch_export(source, download_dir, poll.clone()).await {
        Err(crate::BrazeError::Export(ExportError::NotReady {
            endpoint,
            segment_id: None,
            waited,
            timeout,
            attempts,
        })) => {
            return Err(ExportError::NotReady {
                endpoint,
                segment_id: Some(segment_id),
                waited,
                timeout,
                attempts,
            }
            .into());
        }
        other => other?,
    };
    let reader = ExportReader::new(files).fields_to_export(fields);
    Ok(if attributes.is_empty() {
        reader
    } else {
        reader.custom_attributes(attributes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_download_urls_query() {
        let source = ExportSource::Download {
            url: "https://x.invalid/e.zip?X-Amz-Signature=secret".into(),
        };
        let shown = format!("{source:?}");
        assert!(
            shown.contains("https://x.invalid/e.zip") && !shown.contains("secret"),
            "{shown}"
        );
    }

    fn mock_export(files: Vec<PathBuf>) -> crate::MockBrazeApi {
        let mut api = crate::MockBrazeApi::new();
        api.expect_export_segment().returning(|_| {
            Ok(crate::api::users::ExportSegmentResponse {
                object_prefix: "p".into(),
                url: Some("https://braze.example.invalid/export.zip".into()),
                ..Default::default()
            })
        });
        api.expect_fetch_export().returning(move |_, _, _| Ok(files.clone()));
        api
    }

    /// Braze may return every custom attribute of a profile (an account whose API ignores
    /// `custom_attributes_to_export`, or a file written by another export): only the named ones
    /// reach the caller.
    #[tokio::test]
    async fn custom_attributes_not_named_in_the_request_are_dropped_while_reading() {
        let dir = tempfile::tempdir().unwrap();
        let line = serde_json::json!({"external_id": "u1", "custom_attributes": {
            "loyalty_tier": "gold", "work_email": "jane@example.com", "orders": 3}});
        let file = test_support::write_plain(dir.path(), "part-0.json", &format!("{line}\n"));
        let api = mock_export(vec![file]);
        let request = crate::api::users::ExportSegmentRequest::new("seg-1", ["external_id", "custom_attributes"])
            .custom_attributes_to_export(["loyalty_tier"]);
        let destination = ExportDestination::BrazeHosted {
            download_dir: dir.path().to_path_buf(),
        };
        let users: Vec<ExportedUser> = export_segment(&api, request, &destination, &ExportPoll::default())
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(users.len(), 1);
        let names: Vec<&str> = users[0].custom_attributes.keys().map(String::as_str).collect();
        assert_eq!(names, ["loyalty_tier"]);
    }

    #[tokio::test]
    async fn an_export_that_is_never_ready_names_its_segment() {
        let mut api = crate::MockBrazeApi::new();
        api.expect_export_segment().returning(|_| {
            Ok(crate::api::users::ExportSegmentResponse {
                object_prefix: "p".into(),
                url: Some("https://braze.example.invalid/export.zip".into()),
                ..Default::default()
            })
        });
        api.expect_fetch_export().returning(|_, _, _| {
            Err(ExportError::NotReady {
                endpoint: crate::Endpoint::UsersExportSegment,
                segment_id: None,
                waited: std::time::Duration::from_secs(600),
                timeout: std::time::Duration::from_secs(600),
                attempts: 25,
            }
            .into())
        });
        let request = crate::api::users::ExportSegmentRequest::new("seg-9", ["external_id"]);
        let destination = ExportDestination::BrazeHosted {
            download_dir: std::env::temp_dir(),
        };
        let error = export_segment(&api, request, &destination, &ExportPoll::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("POST /users/export/segment export of segment `seg-9` not ready after waiting 10m (timeout of 10m, 25 checks)"),
            "{error}"
        );
    }
}
