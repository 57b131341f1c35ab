//! Segment exports (`POST /users/export/segment`, braze-api.md §6): the registry of exports and the
//! ZIP writer.
//!
//! An export is registered as running (one per segment at a time, at most
//! [`MAX_CONCURRENT_EXPORTS`]), written in the background (the server sleeps
//! [`crate::SimConfig::export_delay`] of real time first), then served at its `url` until it expires
//! ([`crate::SimConfig::export_ttl`], real time). The ZIP holds newline-delimited JSON entries named
//! `00000.json`, `00001.json`, ... of `users_per_file` users each; users are rendered chunk by chunk
//! ([`write_zip`] asks for one chunk of user indices at a time), so memory does not grow with the
//! number of users.

use std::collections::HashMap;
use std::io::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::error::{Error, Result};

/// Most segment exports running at once (Braze: 100 per company).
pub const MAX_CONCURRENT_EXPORTS: usize = 100;

/// User indices rendered per lock of the workspace while writing an export.
pub const RENDER_CHUNK: usize = 2_000;

/// Where an export is.
#[derive(Clone, Debug, PartialEq)]
pub enum ExportStatus {
    /// Being written (or waiting for its delay).
    Running,
    /// Written to `path`, downloadable until `expires_at`.
    Ready {
        /// The ZIP.
        path: PathBuf,
        /// Real time after which the URL answers 404.
        expires_at: Instant,
    },
    /// Writing failed.
    Failed(String),
    /// Expired (the file is deleted).
    Expired,
}

/// One segment export.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportJob {
    /// The segment.
    pub segment_id: String,
    /// `object_prefix` of the response.
    pub object_prefix: String,
    /// Standard fields to export.
    pub fields_to_export: Vec<String>,
    /// Named custom attributes to export (when `custom_attributes` is not in `fields_to_export`).
    pub custom_attributes_to_export: Vec<String>,
    /// Where to POST `{"success": true, "url": ...}` when done.
    pub callback_endpoint: Option<String>,
    /// Status.
    pub status: ExportStatus,
    /// Users written (once ready).
    pub users: usize,
    /// Files in the ZIP (once ready).
    pub files: usize,
}

/// Every export of the workspace, by `object_prefix`.
#[derive(Debug, Default)]
pub struct Exports {
    jobs: HashMap<String, ExportJob>,
    started: u64,
}

impl Exports {
    /// Why a new export of `segment_id` cannot start now (a Braze 429), if it cannot.
    pub fn refuse(&self, segment_id: &str) -> Option<&'static str> {
        let running: Vec<_> = self
            .jobs
            .values()
            .filter(|j| j.status == ExportStatus::Running)
            .collect();
        if running.iter().any(|j| j.segment_id == segment_id) {
            Some("An export of this segment is already in progress; wait for it to finish")
        } else if running.len() >= MAX_CONCURRENT_EXPORTS {
            Some("Too many concurrent segment exports")
        } else {
            None
        }
    }

    /// Registers a running export and returns its `object_prefix` (`<uuid-like>-<epoch seconds>`;
    /// `seed` and `now_secs` make it reproducible).
    pub fn start(&mut self, mut job: ExportJob, seed: u64, now_secs: i64) -> String {
        self.started += 1;
        let h = xxhash_rust::xxh3::xxh3_128(format!("{seed}:{}:{}", self.started, job.segment_id).as_bytes());
        let hex = format!("{h:032x}");
        let prefix = format!(
            "{}-{}-{}-{}-{}-{now_secs}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        );
        job.object_prefix.clone_from(&prefix);
        job.status = ExportStatus::Running;
        self.jobs.insert(prefix.clone(), job);
        prefix
    }

    /// The export with `object_prefix`.
    pub fn get(&self, object_prefix: &str) -> Option<&ExportJob> {
        self.jobs.get(object_prefix)
    }

    /// Marks an export done (ready or failed).
    pub fn finish(&mut self, object_prefix: &str, status: ExportStatus, users: usize, files: usize) {
        if let Some(job) = self.jobs.get_mut(object_prefix) {
            job.status = status;
            job.users = users;
            job.files = files;
        }
    }

    /// The file of a ready, unexpired export; expires (and deletes) it when its time is up.
    pub fn download(&mut self, object_prefix: &str, now: Instant) -> Option<PathBuf> {
        let job = self.jobs.get_mut(object_prefix)?;
        match &job.status {
            ExportStatus::Ready { path, expires_at } if now < *expires_at => Some(path.clone()),
            ExportStatus::Ready { path, .. } => {
                let _ = std::fs::remove_file(path);
                job.status = ExportStatus::Expired;
                None
            }
            _ => None,
        }
    }

    /// Every export.
    pub fn jobs(&self) -> impl Iterator<Item = &ExportJob> {
        self.jobs.values()
    }
}

/// Keeps only the fields of `fields` in `profile`, dropping nulls and empty strings, arrays and
/// objects; `custom_attributes` keeps only `custom_attributes_to_export` unless `custom_attributes`
/// itself is in `fields`.
pub fn filter_fields(
    mut profile: Map<String, Value>,
    fields: &[String],
    custom_attributes: &[String],
) -> Map<String, Value> {
    let mut out = Map::new();
    for field in fields {
        if let Some(mut value) = profile.remove(field.as_str()) {
            if let Value::Object(map) = &mut value {
                map.retain(|_, v| !v.is_null());
            }
            if is_empty(&value) {
                continue;
            }
            out.insert(field.clone(), value);
        }
    }
    if !custom_attributes.is_empty()
        && !fields.iter().any(|f| f == "custom_attributes")
        && let Some(Value::Object(attrs)) = profile.get("custom_attributes")
    {
        let picked: Map<String, Value> = custom_attributes
            .iter()
            .filter_map(|k| {
                attrs
                    .get(k.as_str())
                    .filter(|v| !v.is_null())
                    .map(|v| (k.clone(), v.clone()))
            })
            .collect();
        if !picked.is_empty() {
            out.insert("custom_attributes".into(), Value::Object(picked));
        }
    }
    out
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Writes a ZIP of newline-delimited JSON entries of `users_per_file` users each to `path` (through
/// a temporary name, renamed when complete). `render` is called with consecutive ranges of user
/// indices covering `0..total` and returns the export lines (one JSON object each, no newline) of
/// the users of that range that are in the export. Returns (users, files).
///
/// # Errors
/// [`Error::Io`] when the file cannot be written.
pub fn write_zip(
    path: &Path,
    total: usize,
    users_per_file: usize,
    mut render: impl FnMut(Range<usize>) -> Vec<Vec<u8>>,
) -> Result<(usize, usize)> {
    let io = |source: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let zip_io = |e: zip::result::ZipError| io(std::io::Error::other(e));
    let tmp = path.with_extension("zip.partial");
    let file = std::fs::File::create(&tmp).map_err(io)?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    // Deflate at level 1: a real compressed export, at a fraction of the default level's cost (the
    // simulator writes one a day per use case; a 30-day demo spent seconds compressing).
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1));
    let per_file = users_per_file.max(1);
    let (mut users, mut files, mut in_file) = (0usize, 0usize, 0usize);
    let mut start = 0;
    while start < total {
        let end = (start + RENDER_CHUNK).min(total);
        for line in render(start..end) {
            if files == 0 || in_file == per_file {
                zip.start_file(format!("{files:05}.json"), options).map_err(zip_io)?;
                files += 1;
                in_file = 0;
            }
            zip.write_all(&line).map_err(io)?;
            zip.write_all(b"\n").map_err(io)?;
            in_file += 1;
            users += 1;
        }
        start = end;
    }
    if files == 0 {
        // An empty segment still yields one (empty) file, so readers find a JSON entry.
        zip.start_file("00000.json", options).map_err(zip_io)?;
        files = 1;
    }
    let mut writer = zip.finish().map_err(zip_io)?;
    writer.flush().map_err(io)?;
    drop(writer);
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok((users, files))
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use serde_json::json;

    use super::*;

    fn job(segment: &str) -> ExportJob {
        ExportJob {
            segment_id: segment.into(),
            object_prefix: String::new(),
            fields_to_export: vec!["external_id".into()],
            custom_attributes_to_export: vec![],
            callback_endpoint: None,
            status: ExportStatus::Running,
            users: 0,
            files: 0,
        }
    }

    #[test]
    fn one_running_export_per_segment() {
        let mut exports = Exports::default();
        assert!(exports.refuse("s1").is_none());
        let prefix = exports.start(job("s1"), 7, 1_700_000_000);
        assert!(prefix.ends_with("-1700000000"));
        assert_eq!(prefix.len(), 36 + 11);
        assert!(exports.refuse("s1").is_some());
        assert!(exports.refuse("s2").is_none());
        let now = Instant::now();
        assert!(exports.download(&prefix, now).is_none());
        exports.finish(
            &prefix,
            ExportStatus::Ready {
                path: "/nonexistent".into(),
                expires_at: now + std::time::Duration::from_secs(5),
            },
            0,
            1,
        );
        assert!(exports.refuse("s1").is_none());
        assert!(exports.download(&prefix, now).is_some());
        assert!(
            exports
                .download(&prefix, now + std::time::Duration::from_secs(6))
                .is_none()
        );
        assert_eq!(exports.get(&prefix).map(|j| &j.status), Some(&ExportStatus::Expired));
        let second = exports.start(job("s1"), 7, 1_700_000_000);
        assert_ne!(second, prefix);
    }

    #[test]
    fn filtering_keeps_requested_non_empty_fields() {
        let profile = json!({
            "external_id": "u1", "email": "a@b.c", "first_name": "", "purchases": [],
            "custom_attributes": {"plan": "gold", "age": 3, "gone": null}, "total_revenue": 0.0,
        });
        let p = profile.as_object().cloned().unwrap();
        let fields = [
            "external_id".to_owned(),
            "first_name".into(),
            "purchases".into(),
            "total_revenue".into(),
        ];
        let out = filter_fields(p.clone(), &fields, &["plan".into(), "gone".into()]);
        assert_eq!(
            Value::Object(out),
            json!({"external_id": "u1", "total_revenue": 0.0, "custom_attributes": {"plan": "gold"}})
        );
        let all = filter_fields(p, &["custom_attributes".into()], &["plan".into()]);
        assert_eq!(all["custom_attributes"], json!({"plan": "gold", "age": 3}));
    }

    #[test]
    fn zip_entries_hold_at_most_users_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.zip");
        let (users, files) = write_zip(&path, 10_001, 3_000, |range| {
            range
                .filter(|i| i % 2 == 0)
                .map(|i| format!("{{\"external_id\":\"u{i}\"}}").into_bytes())
                .collect()
        })
        .unwrap();
        assert_eq!((users, files), (5_001, 2));
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
        let mut lines = Vec::new();
        for i in 0..archive.len() {
            let mut text = String::new();
            archive.by_index(i).unwrap().read_to_string(&mut text).unwrap();
            lines.push(text.lines().count());
        }
        assert_eq!(lines, [3_000, 2_001]);
        assert!(!dir.path().join("x.zip.partial").exists());
    }

    proptest::proptest! {
        #[test]
        fn filtered_profiles_hold_only_requested_non_empty_fields(
            present in proptest::collection::btree_map("[a-e]", proptest::option::of("[a-z]{0,3}"), 0..5),
            requested in proptest::collection::vec("[a-e]", 0..5),
        ) {
            let profile: Map<String, Value> =
                present.iter().map(|(k, v)| (k.clone(), v.clone().map_or(Value::Null, Value::String))).collect();
            let out = filter_fields(profile, &requested, &[]);
            for (key, value) in &out {
                proptest::prop_assert!(requested.contains(key));
                proptest::prop_assert!(!is_empty(value));
            }
            for key in &requested {
                let kept = present.get(key).and_then(|v| v.as_ref()).is_some_and(|v| !v.is_empty());
                proptest::prop_assert_eq!(out.contains_key(key), kept);
            }
        }
    }
}
