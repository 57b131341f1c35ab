//! The audience of a run: a segment export, or an ids file exported 50 at a time, read into
//! customers with only the fields the use case needs.
//!
//! The fields requested are the use case's [`UseCase::export_fields`] plus the non-identifying
//! counters outcomes are derived from (`custom_events`, `purchases`, `total_revenue`,
//! `campaigns_received`); every one of them, and every custom attribute, passes the domain's PII
//! guard ([`check_export_fields`]) before any call is made.
//!
//! A segment export arrives as a ZIP of whole Braze profiles (personal data: whatever Braze put in
//! them), downloaded into [`AudienceOptions::download_dir`]. The run needs it only until its
//! audience has been read, so by default ([`offerloop_domain::usecase::Audience::keep_exports_days`]
//! = 0) it is deleted right then, on the error path too (a guard deletes it however the read ends,
//! a cancelled run included), and so is any download an earlier run left in the use case's other
//! dated directories (a killed run, or a run before this rule). With `keep_exports_days = n`, a
//! download is kept and deleted by the first run dated more than `n` days later. Only the files the
//! client writes ([`DOWNLOAD_FILE_NAME`] and its `.part`) are ever deleted, then their directory if
//! it is left empty.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use offerloop_braze::BrazeApi;
use offerloop_braze::api::catalog::SegmentDataSeriesRequest;
use offerloop_braze::api::users::{ExportIdsRequest, ExportSegmentRequest};
use offerloop_braze::export::{DOWNLOAD_FILE_NAME, ExportDestination, ExportPoll, export_segment};
use offerloop_domain::UseCase;
use offerloop_domain::pii::{check_custom_attribute, check_profile_field};
use offerloop_domain::usecase::AudienceSource;
use offerloop_store::AudienceRow;

use crate::profile::{AudienceFeatures, ExportedCustomer, customer_from_export};
use crate::{Error, Result};

/// Identifiers per `/users/export/ids` request: Braze's limit, [`offerloop_braze::limits::MAX_EXPORT_IDS`].
pub const IDS_PER_EXPORT: usize = offerloop_braze::limits::MAX_EXPORT_IDS;

/// Profile fields exported besides the features', for outcome deltas (none is personal data).
pub const OUTCOME_FIELDS: [&str; 4] = ["campaigns_received", "custom_events", "purchases", "total_revenue"];

/// The `fields_to_export` and `custom_attributes_to_export` of a run, after the PII guard.
///
/// # Errors
/// [`Error::Pii`] for the first field or attribute that is personal data.
pub fn check_export_fields(use_case: &UseCase) -> Result<(Vec<String>, Vec<String>)> {
    let (fields, attributes) = use_case.export_fields();
    let fields: BTreeSet<String> = fields
        .into_iter()
        .chain(OUTCOME_FIELDS.iter().map(|f| (*f).to_owned()))
        .collect();
    for f in &fields {
        check_profile_field(f)?;
    }
    for a in &attributes {
        check_custom_attribute(a)?;
    }
    Ok((fields.into_iter().collect(), attributes))
}

/// Where and how the audience is read.
#[derive(Clone, Debug)]
pub struct AudienceOptions {
    /// A fresh directory for this export's downloaded files. The engine names it
    /// `<export_dir>/<use case>/<run date>`: its siblings are the use case's other runs' downloads,
    /// which the retention rule (see the [module docs](self)) purges by the dates of their names.
    pub download_dir: PathBuf,
    /// How long and how often to wait for a segment export.
    pub poll: ExportPoll,
    /// The directory an ids file's relative path is resolved against (the use-case file's).
    pub base_dir: PathBuf,
}

/// The audience as it is kept: the stored row of each customer (features as JSON text).
fn to_row(c: ExportedCustomer) -> AudienceRow {
    AudienceRow {
        customer_id: c.customer.id.as_str().to_owned(),
        features: AudienceFeatures {
            values: c.customer.features,
            counters: c.counters,
        }
        .to_json(),
        time_zone: c.customer.time_zone,
    }
}

/// Keeps the first `limit` distinct customers, as stored rows, counting wrong-typed feature values.
struct Collector {
    limit: usize,
    seen: HashSet<String>,
    rows: Vec<AudienceRow>,
    mismatches: usize,
}

impl Collector {
    fn full(&self) -> bool {
        self.rows.len() >= self.limit
    }

    fn keep(&mut self, c: ExportedCustomer) {
        if !self.full() && self.seen.insert(c.customer.id.as_str().to_owned()) {
            self.mismatches += c.mismatches;
            self.rows.push(to_row(c));
        }
    }
}

/// Exports the audience of `use_case` (at most `max_customers_per_run`, in export order, without
/// duplicates), each customer as the row the store keeps: a segment export is read a user at a
/// time, so only the rows are ever held, never the exported profiles.
///
/// # Errors
/// [`Error::Pii`] before any call; the Braze error of a refused call (401, 403 naming the permission);
/// [`Error::Export`] when the export's files cannot be read; [`Error::Io`] for an unreadable ids file.
pub async fn export_audience(
    api: &dyn BrazeApi,
    use_case: &UseCase,
    options: &AudienceOptions,
) -> Result<Vec<AudienceRow>> {
    let (fields, attributes) = check_export_fields(use_case)?;
    let limit = use_case
        .audience
        .max_customers_per_run
        .and_then(|m| usize::try_from(m).ok())
        .unwrap_or(usize::MAX);
    let mut collector = Collector {
        limit,
        seen: HashSet::new(),
        rows: Vec::new(),
        mismatches: 0,
    };
    match &use_case.audience.source {
        AudienceSource::Segment { segment_id } => {
            let keep_days = use_case.audience.keep_exports_days;
            purge_earlier_downloads(&options.download_dir, keep_days);
            std::fs::create_dir_all(&options.download_dir).map_err(|source| Error::Io {
                path: options.download_dir.clone(),
                source,
            })?;
            // Deletes the day's download when the branch ends, whichever way, unless it is kept.
            let _download = DownloadGuard {
                dir: &options.download_dir,
                keep: keep_days > 0,
            };
            let request = ExportSegmentRequest::new(segment_id.clone(), fields).custom_attributes_to_export(attributes);
            let destination = ExportDestination::BrazeHosted {
                download_dir: options.download_dir.clone(),
            };
            let reader = export_segment(api, request, &destination, &options.poll).await?;
            let schema = use_case.features.clone();
            collector = tokio::task::spawn_blocking(move || {
                for user in reader {
                    let user = user.map_err(|e| Error::Export(e.to_string()))?;
                    if let Some(c) = customer_from_export(&schema, &user) {
                        collector.keep(c);
                    }
                }
                Ok::<_, Error>(collector)
            })
            .await
            .map_err(|e| Error::Task(e.to_string()))??;
            if collector.rows.is_empty() {
                refuse_empty_export(api, segment_id).await?;
            }
        }
        AudienceSource::IdsFile { path } => {
            let ids = read_ids(&options.base_dir.join(path))?;
            for chunk in ids.chunks(IDS_PER_EXPORT) {
                if collector.full() {
                    break;
                }
                let request = ExportIdsRequest::by_external_ids(chunk.iter().cloned()).fields_to_export(fields.clone());
                let response = api.export_ids(request).await?;
                for u in &response.users {
                    if let Some(c) = customer_from_export(&use_case.features, u) {
                        collector.keep(c);
                    }
                }
            }
        }
    }
    if collector.mismatches > 0 {
        tracing::warn!(
            mismatches = collector.mismatches,
            "feature values of the wrong type were read as missing"
        );
    }
    Ok(collector.rows)
}

/// Deletes a run's download directory's export files when dropped, unless they are kept.
struct DownloadGuard<'a> {
    dir: &'a Path,
    keep: bool,
}

impl Drop for DownloadGuard<'_> {
    fn drop(&mut self) {
        if !self.keep && remove_download(self.dir) > 0 {
            tracing::info!(dir = %self.dir.display(), "deleted the downloaded segment export");
        }
    }
}

/// Deletes the files a download writes into `dir` ([`DOWNLOAD_FILE_NAME`] and its `.part`), then
/// `dir` itself if that left it empty; returns the number of files deleted. Nothing else is touched,
/// and a failure is logged, not raised: the run goes on, and the next one tries again.
fn remove_download(dir: &Path) -> usize {
    let mut removed = 0;
    for name in [DOWNLOAD_FILE_NAME.to_owned(), format!("{DOWNLOAD_FILE_NAME}.part")] {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "could not delete a downloaded segment export")
            }
        }
    }
    // Fails, as intended, when the directory holds anything else (or is already gone).
    let _ = std::fs::remove_dir(dir);
    removed
}

/// Applies the retention rule to the downloads of the use case's other runs, the sibling directories
/// of `download_dir`: with `keep_days` = 0 every one of them is deleted; else those whose name is a
/// date more than `keep_days` days before the date `download_dir` is named after (none when it is
/// not named after a date).
fn purge_earlier_downloads(download_dir: &Path, keep_days: u32) {
    let Some(parent) = download_dir.parent() else {
        return;
    };
    let date_of = |path: &Path| {
        path.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<jiff::civil::Date>().ok())
    };
    let oldest_kept = if keep_days == 0 {
        None
    } else {
        let days = jiff::Span::new().days(i64::from(keep_days));
        let Some(oldest) = date_of(download_dir).and_then(|d| d.checked_sub(days).ok()) else {
            return;
        };
        Some(oldest)
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return; // No earlier download (or nothing readable to purge).
    };
    let mut purged = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path == download_dir || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let expired = match oldest_kept {
            None => true,
            Some(oldest) => date_of(&path).is_some_and(|d| d < oldest),
        };
        if expired {
            purged += remove_download(&path);
        }
    }
    if purged > 0 {
        tracing::info!(purged, dir = %parent.display(), keep_days, "deleted earlier runs' segment exports");
    }
}

/// A segment export that yielded no customer: an error when Braze estimates the segment non-empty
/// (the files were not read as users: their names, their format), so a run never decides for an
/// empty audience by mistake. Without an estimate (no `segments.data_series` permission, analytics not
/// tracked for the segment) the empty audience stands, with a warning.
///
/// # Errors
/// [`Error::Export`] naming the segment and its estimated size.
async fn refuse_empty_export(api: &dyn BrazeApi, segment_id: &str) -> Result<()> {
    let request = SegmentDataSeriesRequest::new(segment_id, 1);
    match api.segment_data_series(request).await {
        Ok(series) => match series.data.iter().filter_map(|d| d.size).next_back() {
            Some(size) if size > 0 => Err(Error::Export(format!(
                "segment `{segment_id}`: the export yielded no users, but Braze estimates the segment at \
                 {size} users; its files were not read as users (check the export's files), so no run \
                 is made for an empty audience"
            ))),
            _ => Ok(()),
        },
        Err(e) => {
            tracing::warn!(segment_id, error = %e, "the segment export yielded no users and its size could not be checked");
            Ok(())
        }
    }
}

/// Where a run reads the ids file of an ids-file audience: `[audience] ids_file` resolved against
/// `base_dir`, the use-case file's directory ([`crate::RunOptions::base_dir`]). `None` for a segment.
pub fn ids_file_path(use_case: &UseCase, base_dir: &Path) -> Option<PathBuf> {
    match &use_case.audience.source {
        AudienceSource::IdsFile { path } => Some(base_dir.join(path)),
        AudienceSource::Segment { .. } => None,
    }
}

/// The ids of an ids file: one per line, surrounding whitespace, blank lines and `#` comments
/// skipped (duplicates are kept; the run keeps a customer's first occurrence).
///
/// # Errors
/// [`Error::Io`] naming the file when it cannot be read as UTF-8 text.
pub fn read_ids(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use offerloop_braze::api::catalog::{SegmentDataSeriesResponse, SegmentSize};
    use offerloop_braze::api::users::ExportSegmentResponse;
    use offerloop_braze::{BrazeError, Endpoint, MockBrazeApi};

    use super::*;

    fn use_case() -> UseCase {
        let text = include_str!("../../../examples/winback.toml");
        offerloop_domain::config::parse_use_case(text, "winback.toml").unwrap()
    }

    /// A segment export whose one file holds no user, and a size estimate (or an error) for it.
    fn api(size: std::result::Result<u64, ()>, dir: &Path) -> MockBrazeApi {
        let file = dir.join("part-1.json");
        std::fs::write(&file, "").unwrap();
        let mut api = MockBrazeApi::new();
        api.expect_export_segment().returning(|_| {
            Ok(ExportSegmentResponse {
                object_prefix: "p".into(),
                url: Some("https://braze.example.invalid/export.zip".into()),
                ..ExportSegmentResponse::default()
            })
        });
        api.expect_fetch_export()
            .returning(move |_, _, _| Ok(vec![file.clone()]));
        api.expect_segment_data_series().returning(move |_| match size {
            Ok(size) => Ok(SegmentDataSeriesResponse {
                data: vec![SegmentSize {
                    time: "2026-12-06".into(),
                    size: Some(size),
                }],
                ..SegmentDataSeriesResponse::default()
            }),
            Err(()) => Err(BrazeError::MissingPermission {
                endpoint: Endpoint::SegmentsDataSeries,
                permission: "segments.data_series",
                message: "Access Denied".into(),
            }),
        });
        api
    }

    fn options(dir: &Path) -> AudienceOptions {
        AudienceOptions {
            download_dir: dir.join("download"),
            poll: ExportPoll::default(),
            base_dir: dir.to_path_buf(),
        }
    }

    #[tokio::test]
    async fn an_export_without_users_of_a_non_empty_segment_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = export_audience(&api(Ok(1_200), dir.path()), &use_case(), &options(dir.path()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("3b4f5c2e-lapsed-90d") && err.contains("1200 users"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_empty_segment_or_an_unknown_size_is_an_empty_audience() {
        for size in [Ok(0), Err(())] {
            let dir = tempfile::tempdir().unwrap();
            let rows = export_audience(&api(size, dir.path()), &use_case(), &options(dir.path()))
                .await
                .unwrap();
            assert!(rows.is_empty());
        }
    }

    /// An empty ZIP archive: its end-of-central-directory record alone.
    const EMPTY_ZIP: [u8; 22] = [
        0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    /// A segment export downloaded the way the client does it: `content` written as
    /// `segment-export.zip` into the download directory the engine gives; the segment is empty.
    fn downloading(content: &'static [u8]) -> MockBrazeApi {
        let mut api = MockBrazeApi::new();
        api.expect_export_segment().returning(|_| {
            Ok(ExportSegmentResponse {
                object_prefix: "p".into(),
                url: Some("https://braze.example.invalid/export.zip".into()),
                ..ExportSegmentResponse::default()
            })
        });
        api.expect_fetch_export().returning(move |_, dir, _| {
            let path = dir.join(offerloop_braze::export::DOWNLOAD_FILE_NAME);
            std::fs::write(&path, content).unwrap();
            Ok(vec![path])
        });
        api.expect_segment_data_series()
            .returning(|_| Ok(SegmentDataSeriesResponse::default()));
        api
    }

    /// The download directory of the winback use case's run of `date`, under `root`.
    fn dated(root: &Path, date: &str) -> AudienceOptions {
        AudienceOptions {
            download_dir: root.join("exports/winback").join(date),
            poll: ExportPoll::default(),
            base_dir: root.to_path_buf(),
        }
    }

    /// Leaves a download of an earlier run of `date` under `root`, as a run before this fix did.
    fn earlier_download(root: &Path, date: &str) -> PathBuf {
        let dir = root.join("exports/winback").join(date);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(offerloop_braze::export::DOWNLOAD_FILE_NAME);
        std::fs::write(&file, EMPTY_ZIP).unwrap();
        file
    }

    /// Defect 7: the raw export (whole profiles) stayed on disk indefinitely. By default it is gone
    /// once the audience has been read, and so are the downloads earlier runs left behind.
    #[tokio::test]
    async fn by_default_the_downloaded_export_is_deleted_once_read_and_earlier_ones_too() {
        let dir = tempfile::tempdir().unwrap();
        let older = earlier_download(dir.path(), "2026-01-02");
        let options = dated(dir.path(), "2026-01-20");
        let rows = export_audience(&downloading(&EMPTY_ZIP), &use_case(), &options)
            .await
            .unwrap();
        assert!(rows.is_empty());
        let download = options.download_dir.join(offerloop_braze::export::DOWNLOAD_FILE_NAME);
        assert!(!download.exists(), "the day's export is still on disk");
        assert!(!options.download_dir.exists(), "its emptied directory is removed");
        assert!(!older.exists(), "an earlier run's export is still on disk");
    }

    /// On the error path too: an export that cannot be read is deleted, not left for the next run.
    #[tokio::test]
    async fn an_export_that_fails_to_read_is_deleted_too() {
        let dir = tempfile::tempdir().unwrap();
        let options = dated(dir.path(), "2026-01-20");
        let error = export_audience(
            &downloading(b"{\"email\": \"jane@example.com\"}\n"),
            &use_case(),
            &options,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(error.contains("segment-export.zip"), "{error}");
        assert!(
            !options
                .download_dir
                .join(offerloop_braze::export::DOWNLOAD_FILE_NAME)
                .exists()
        );
    }

    /// `keep_exports_days = 7` keeps the day's export and the week before it; older ones go, and
    /// nothing but the client's own files is ever deleted.
    #[tokio::test]
    async fn kept_exports_are_deleted_after_their_days() {
        let dir = tempfile::tempdir().unwrap();
        let mut use_case = use_case();
        use_case.audience.keep_exports_days = 7;
        let expired = earlier_download(dir.path(), "2026-01-12");
        let kept = earlier_download(dir.path(), "2026-01-13");
        let notes = dir.path().join("exports/winback/2026-01-12/notes.txt");
        std::fs::write(&notes, "mine").unwrap();
        let options = dated(dir.path(), "2026-01-20");
        export_audience(&downloading(&EMPTY_ZIP), &use_case, &options)
            .await
            .unwrap();
        assert!(
            options
                .download_dir
                .join(offerloop_braze::export::DOWNLOAD_FILE_NAME)
                .exists()
        );
        assert!(kept.exists(), "7 days old: kept");
        assert!(!expired.exists(), "8 days old: deleted");
        assert!(notes.exists(), "a file offerloop did not write is never deleted");
    }
}
