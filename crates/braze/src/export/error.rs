//! The error type of segment exports: waiting for the result, downloading it, unpacking it, and parsing
//! its lines.
//!
//! Each variant says what the caller can do: wait longer or start again ([`ExportError::NotReady`]),
//! fix the URL or start a new export ([`ExportError::DownloadStatus`], [`ExportError::Request`]), look
//! at the disk ([`ExportError::Io`]), or look at the file Braze produced ([`ExportError::Zip`],
//! [`ExportError::Archive`], [`ExportError::Read`], [`ExportError::Malformed`]). Messages never quote
//! values read from an export file, because a file may carry PII that offerloop did not ask for.
//! `BrazeError` wraps this type with `#[from]`.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong obtaining and reading a segment export.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The export did not become available within the poll timeout.
    #[error(
        "{endpoint} export{} not ready after waiting {} (timeout of {}, {attempts} checks); it may still be running in Braze: raise the timeout (`--export-timeout`), or export a smaller segment",
        segment_id.as_ref().map(|s| format!(" of segment `{s}`")).unwrap_or_default(),
        human(*waited),
        human(*timeout)
    )]
    NotReady {
        /// The export endpoint whose result was awaited (`POST /users/export/segment`).
        endpoint: crate::Endpoint,
        /// The segment exported, when the caller knows it.
        segment_id: Option<String>,
        /// How long we waited, by the (injectable) Tokio clock.
        waited: Duration,
        /// The timeout that ended the wait ([`super::ExportPoll::with_timeout`]).
        timeout: Duration,
        /// How many times availability was checked.
        attempts: u32,
    },
    /// The export's response has no download `url` (Braze writes the result to the customer's bucket)
    /// and no synced directory was given to read the bucket from.
    #[error(
        "segment export `{object_prefix}` has no download url: Braze writes it to your bucket; give the directory the bucket is synced to"
    )]
    NoDownloadUrl {
        /// The export's `object_prefix`.
        object_prefix: String,
    },
    /// The download URL answered with a status that waiting will not fix (for example 410 once the
    /// URL has expired, or 400/401).
    #[error("segment export download failed with HTTP {status}; start a new export if the URL has expired")]
    DownloadStatus {
        /// The HTTP status.
        status: u16,
    },
    /// The download request could not even be built (typically an invalid URL).
    #[error("segment export download request is invalid")]
    Request(#[source] reqwest::Error),
    /// A local file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A ZIP archive's directory could not be read.
    #[error("{file}: not a readable ZIP archive: {source}")]
    Zip {
        /// The archive.
        file: String,
        /// The `zip` crate's error.
        source: zip::result::ZipError,
    },
    /// An archive entry or file cannot be read by this reader (encrypted, unsupported compression, or
    /// a content that does not match its extension).
    #[error("{file}: {reason}")]
    Archive {
        /// The file, or `archive!entry` for a ZIP entry.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or decompressing data failed part-way (truncated gzip, corrupt deflate stream, CRC
    /// mismatch, disk error).
    #[error("{file}: read failed after line {line}: {source}")]
    Read {
        /// The file, or `archive!entry` for a ZIP entry.
        file: String,
        /// The last line read completely (0 if none).
        line: u64,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A line is not a valid user object.
    #[error("{file}:{line}: malformed user object: {message}")]
    Malformed {
        /// The file, or `archive!entry` for a ZIP entry (e.g. `export.zip!part-0003.json`).
        file: String,
        /// The line number within that file or entry, from 1 (blank lines count).
        line: u64,
        /// What is wrong, without quoting any value from the line.
        message: String,
    },
    /// The background thread of [`super::ExportReader::into_stream`] stopped abnormally.
    #[error("segment export reader thread failed: {0}")]
    Worker(String),
}

/// A duration for people, to the second: `2h`, `45m`, `1h 30m`, `90s` → `1m 30s`, `0s`.
fn human(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let parts: Vec<String> = [(h, "h"), (m, "m"), (s, "s")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        format!("{}ms", d.as_millis())
    } else {
        parts.join(" ")
    }
}

impl ExportError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
