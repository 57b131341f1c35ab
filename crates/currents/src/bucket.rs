//! A Currents bucket: every event file under a connector's URL, listed recursively and read once.
//!
//! [`Bucket::open`] takes `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix` (or
//! `abfs://`, `https://<account>.blob.core.windows.net/…`) or `file:///path`. Credentials come from the
//! environment the way each cloud's SDK reads them (`AWS_ACCESS_KEY_ID`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`…; `GOOGLE_SERVICE_ACCOUNT`…; `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_*`…),
//! never from a use-case file. [`Bucket::for_each_new`] streams the events of the files whose keys are
//! not in the caller's checkpoint, in queue-hour order, deduplicated by `(event type, id)` over a
//! window ([`Dedupe`]), and reports what it skipped; [`Bucket::read_new`] collects them.

use std::collections::HashSet;
use std::sync::Arc;

use futures::{StreamExt as _, TryStreamExt as _, stream};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt as _};

use crate::dedupe::Dedupe;
use crate::event::CurrentsEvent;
use crate::file;
use crate::key::CurrentsKey;

use crate::{Error, Result};

/// An opened bucket prefix.
#[derive(Clone)]
pub struct Bucket {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The store's Debug may show configuration; the URL is what identifies the bucket.
        f.debug_struct("Bucket").field("url", &self.url).finish_non_exhaustive()
    }
}

/// One event file of the bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFile {
    /// The object key, relative to the bucket (the prefix included).
    pub key: String,
    /// What the key says.
    pub parsed: CurrentsKey,
    /// Its size in bytes.
    pub size: u64,
}

/// What one [`Bucket::read_new`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadReport {
    /// Event files read completely (their keys are returned for the checkpoint).
    pub files_read: usize,
    /// Events returned.
    pub events: usize,
    /// Events dropped because an event with the same type and id was seen before (Braze delivers at
    /// least once).
    pub duplicates: usize,
    /// Returned events without an `external_user_id` (anonymous users, or a profile without one).
    pub without_external_id: usize,
    /// Objects in the `event_type=` folders read that are not event files (no `.avro` name, no
    /// `date=`).
    pub not_event_files: usize,
    /// Files that could not be read, with the reason; they are not checkpointed, so a later complete
    /// copy's events are read and this one is retried (and reported) again.
    pub unreadable: Vec<(String, String)>,
}

/// Which files [`Bucket::for_each_new`] lists and reads: the event types wanted and, optionally,
/// only the files Braze queued from an hour on. Only the wanted `event_type=` folders are listed,
/// each from its `date=` of `queued_since` on, so a read of a few types or hours does not list
/// the whole bucket.
pub struct Select<'a> {
    /// Whether files of an event type are wanted.
    pub event_type: &'a (dyn Fn(&str) -> bool + Sync),
    /// Only files queued at or after this hour.
    pub queued_since: Option<jiff::Timestamp>,
}

impl std::fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Select")
            .field("queued_since", &self.queued_since)
            .finish_non_exhaustive()
    }
}

impl Select<'_> {
    /// Every file.
    pub fn all() -> Select<'static> {
        Select {
            event_type: &|_| true,
            queued_since: None,
        }
    }
}

/// How deep below the prefix the `event_type=` folders may be (the connector folder is one level).
pub const MAX_FOLDER_DEPTH: usize = 4;

/// How many files [`Bucket::for_each_new`] fetches and decodes ahead.
pub const FILES_IN_FLIGHT: usize = 4;

/// What [`Bucket::for_each_new`] read.
#[derive(Debug, Default)]
pub struct FilesRead {
    /// The keys read completely: add them to the checkpoint once their events are stored.
    pub keys: Vec<String>,
    /// What was read and skipped.
    pub report: ReadReport,
}

/// The result of [`Bucket::read_new`].
#[derive(Debug, Default)]
pub struct NewEvents {
    /// The new, deduplicated events, file by file in key order.
    pub events: Vec<CurrentsEvent>,
    /// The keys read completely: add them to the checkpoint once the events are stored.
    pub keys: Vec<String>,
    /// What was read and skipped.
    pub report: ReadReport,
}

impl Bucket {
    /// Opens `url` with credentials from the environment.
    ///
    /// # Errors
    /// [`Error::Bucket`] for an unsupported scheme or a configuration the cloud's builder refuses.
    pub fn open(url: &str) -> Result<Self> {
        let bad = |reason: String| Error::Bucket {
            url: url.to_owned(),
            reason,
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(format!("not a URL: {e}")))?;
        let (store, prefix): (Arc<dyn ObjectStore>, Path) = match parsed.scheme() {
            "file" => {
                let dir = parsed
                    .to_file_path()
                    .map_err(|()| bad("a file:// URL needs an absolute path".to_owned()))?;
                let local = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| bad(format!("{}: {e}", dir.display())))?;
                (Arc::new(local), Path::default())
            }
            "s3" | "s3a" => {
                let s3 = object_store::aws::AmazonS3Builder::from_env()
                    .with_url(url)
                    .build()
                    .map_err(|e| bad(e.to_string()))?;
                (Arc::new(s3), url_prefix(&parsed))
            }
            "gs" => {
                let gcs = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(url)
                    .build()
                    .map_err(|e| bad(e.to_string()))?;
                (Arc::new(gcs), url_prefix(&parsed))
            }
            "az" | "adl" | "azure" | "abfs" | "abfss" => {
                let azure = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(url)
                    .build()
                    .map_err(|e| bad(e.to_string()))?;
                (Arc::new(azure), url_prefix(&parsed))
            }
            other => {
                return Err(bad(format!(
                    "scheme `{other}` is not one Currents writes to; use s3://, gs://, az:// or file://"
                )));
            }
        };
        Ok(Self::from_store(url, store, prefix))
    }

    /// A bucket over any object store (tests, an in-memory store, a store configured by hand).
    pub fn from_store(url: &str, store: Arc<dyn ObjectStore>, prefix: Path) -> Self {
        Self {
            url: url.to_owned(),
            store,
            prefix,
        }
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every event file under the prefix, in key order, and the number of other objects.
    ///
    /// # Errors
    /// [`Error::Bucket`] when listing fails (permissions, network), [`Error::Key`] for a key that
    /// looks like an event file but cannot be read.
    pub async fn list(&self) -> Result<(Vec<EventFile>, usize)> {
        let objects: Vec<_> = self
            .store
            .list(Some(&self.prefix))
            .try_collect()
            .await
            .map_err(|e| self.error(format!("listing `{}`: {e}", self.prefix)))?;
        let (mut files, mut others) = (Vec::new(), 0);
        split_objects(objects, &mut files, &mut others)?;
        files.sort_by(|a, b| a.key.cmp(&b.key));
        Ok((files, others))
    }

    /// The event files `select` picks, and the number of other objects in the folders listed. Lists
    /// only the wanted `event_type=` folders ([`Bucket::event_type_folders`]), each from `date=` of
    /// `queued_since` on.
    ///
    /// # Errors
    /// As [`Bucket::list`].
    pub async fn list_selected(&self, select: &Select<'_>) -> Result<(Vec<EventFile>, usize)> {
        let mut files = Vec::new();
        let mut others = 0;
        for (folder, event_type) in self.event_type_folders().await? {
            if !(select.event_type)(&event_type) {
                continue;
            }
            let listing = match select.queued_since {
                Some(since) => {
                    let hour = jiff::tz::TimeZone::UTC
                        .to_datetime(since)
                        .strftime("%Y-%m-%d-%H")
                        .to_string();
                    let offset = folder.clone().join(format!("date={hour}"));
                    // The offset is also applied here: a server may ignore it (Azure's `startFrom`
                    // is recent; Azurite, for one, lists everything), and reading files from before
                    // the hour would only cost time, but listing them must not depend on the server.
                    self.store
                        .list_with_offset(Some(&folder), &offset)
                        .try_filter(move |o| std::future::ready(o.location > offset))
                        .boxed()
                }
                None => self.store.list(Some(&folder)),
            };
            let objects: Vec<_> = listing
                .try_collect()
                .await
                .map_err(|e| self.error(format!("listing `{folder}`: {e}")))?;
            split_objects(objects, &mut files, &mut others)?;
        }
        files.sort_by(|a, b| a.key.cmp(&b.key));
        Ok((files, others))
    }

    /// The `event_type=` folders under the prefix, with their event types: found by walking the
    /// folders (a delimiter listing per level, at most [`MAX_FOLDER_DEPTH`] levels) until a folder's
    /// name starts with `event_type=`; the folders above it (the connector's) are opaque.
    ///
    /// # Errors
    /// [`Error::Bucket`] when listing fails.
    pub async fn event_type_folders(&self) -> Result<Vec<(Path, String)>> {
        let mut found = Vec::new();
        let mut level = vec![self.prefix.clone()];
        for _ in 0..MAX_FOLDER_DEPTH {
            let mut next = Vec::new();
            for folder in level {
                let folder = (folder.as_ref() != "").then_some(folder);
                let listing = self
                    .store
                    .list_with_delimiter(folder.as_ref())
                    .await
                    .map_err(|e| self.error(format!("listing `{}`: {e}", folder.clone().unwrap_or_default())))?;
                for sub in listing.common_prefixes {
                    let name = sub.filename().unwrap_or_default().to_owned();
                    match name.strip_prefix("event_type=") {
                        Some(event_type) => found.push((sub.clone(), event_type.to_owned())),
                        None => next.push(sub),
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            level = next;
        }
        Ok(found)
    }

    /// Reads every event file whose key is not in `checkpoint`, dropping events already seen
    /// (`seen`, by `(event type, id)`). A file that cannot be read is reported in
    /// [`ReadReport::unreadable`] and skipped; the others are still read.
    ///
    /// # Errors
    /// [`Error::Bucket`] when listing or fetching fails (the read stops: nothing is lost, since no key
    /// of this call has been checkpointed by the caller yet).
    pub async fn read_new(&self, checkpoint: &HashSet<String>, seen: &mut Dedupe) -> Result<NewEvents> {
        self.read_new_where(checkpoint, seen, &Select::all()).await
    }

    /// [`Bucket::read_new`] for the files `select` picks, every event collected.
    /// [`Bucket::for_each_new`] streams them instead.
    ///
    /// # Errors
    /// As [`Bucket::read_new`].
    pub async fn read_new_where(
        &self,
        checkpoint: &HashSet<String>,
        seen: &mut Dedupe,
        select: &Select<'_>,
    ) -> Result<NewEvents> {
        let mut events = Vec::new();
        let read = self
            .for_each_new(checkpoint, seen, select, |_, event| events.push(event))
            .await?;
        Ok(NewEvents {
            events,
            keys: read.keys,
            report: read.report,
        })
    }

    /// Streams the new events of the files `select` picks and `checkpoint` lacks, file by file in
    /// queue-hour order, to `each`: up to [`FILES_IN_FLIGHT`] files are fetched and
    /// decoded (on the blocking pool) ahead of the one being handed over, so memory holds a few files
    /// and `seen`'s window, whatever the number of files. `seen` is advanced to each file's queue
    /// hour before its events are checked.
    ///
    /// # Errors
    /// As [`Bucket::read_new`].
    pub async fn for_each_new(
        &self,
        checkpoint: &HashSet<String>,
        seen: &mut Dedupe,
        select: &Select<'_>,
        mut each: impl FnMut(&EventFile, CurrentsEvent),
    ) -> Result<FilesRead> {
        let (files, others) = self.list_selected(select).await?;
        let mut files: Vec<EventFile> = files
            .into_iter()
            .filter(|f| !checkpoint.contains(&f.key))
            .filter(|f| select.queued_since.is_none_or(|s| f.parsed.queued_hour >= s))
            .collect();
        files.sort_by(|a, b| (a.parsed.queued_hour, &a.key).cmp(&(b.parsed.queued_hour, &b.key)));
        let mut out = FilesRead::default();
        out.report.not_event_files = others;
        let mut decoded = stream::iter(files)
            .map(|file| self.fetch_and_decode(file))
            .buffered(FILES_IN_FLIGHT);
        while let Some(next) = decoded.next().await {
            let (file, events) = next?;
            let events = match events {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(key = %file.key, error = %e, "skipping an unreadable Currents file");
                    out.report.unreadable.push((file.key, e.to_string()));
                    continue;
                }
            };
            seen.advance(file.parsed.queued_hour);
            for event in events {
                if seen.first_time(&file.parsed.event_type, &event.id, file.parsed.queued_hour) {
                    out.report.without_external_id += usize::from(event.external_user_id.is_none());
                    out.report.events += 1;
                    each(&file, event);
                } else {
                    out.report.duplicates += 1;
                }
            }
            out.report.files_read += 1;
            out.keys.push(file.key);
        }
        Ok(out)
    }

    /// `file`'s bytes, decoded on the blocking pool: a fetch error stops the read, a decode error
    /// is the file's.
    async fn fetch_and_decode(&self, file: EventFile) -> Result<(EventFile, Result<Vec<CurrentsEvent>>)> {
        let bytes = self.fetch(&file.key).await?;
        let (key, event_type) = (file.key.clone(), file.parsed.event_type.clone());
        let events = tokio::task::spawn_blocking(move || file::decode(&key, &event_type, &bytes))
            .await
            .map_err(|e| self.error(format!("decoding `{}`: {e}", file.key)))?;
        Ok((file, events))
    }

    /// The bytes of `key`.
    ///
    /// # Errors
    /// [`Error::Bucket`] when the object cannot be read.
    pub async fn fetch(&self, key: &str) -> Result<bytes::Bytes> {
        let path = Path::from(key);
        let got = self
            .store
            .get(&path)
            .await
            .map_err(|e| self.error(format!("reading `{key}`: {e}")))?;
        got.bytes()
            .await
            .map_err(|e| self.error(format!("reading `{key}`: {e}")))
    }

    fn error(&self, reason: String) -> Error {
        Error::Bucket {
            url: self.url.clone(),
            reason,
        }
    }
}

/// Adds the event files of `objects` to `files` and counts the others in `others`.
fn split_objects(objects: Vec<ObjectMeta>, files: &mut Vec<EventFile>, others: &mut usize) -> Result<()> {
    for meta in objects {
        let key = meta.location.to_string();
        match CurrentsKey::parse(&key)? {
            Some(parsed) => files.push(EventFile {
                key,
                parsed,
                size: meta.size,
            }),
            None => *others += 1,
        }
    }
    Ok(())
}

/// The key prefix of a cloud URL: its path without the leading `/`.
fn url_prefix(url: &url::Url) -> Path {
    Path::from(url.path().trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use apache_avro::Codec;
    use object_store::PutPayload;

    use super::*;
    use crate::testing::{PURCHASE_TYPE, purchase, purchase_file};

    fn key(hour: &str, name: &str) -> String {
        format!(
            "currents/dataexport.prod-01.S3.integration.69cadaaed2d51b7c75b1a3e5/event_type={PURCHASE_TYPE}/date={hour}/version=10/us-01/{name}.avro"
        )
    }

    async fn put(store: &dyn ObjectStore, key: &str, bytes: Vec<u8>) {
        store.put(&Path::from(key), PutPayload::from(bytes)).await.unwrap();
    }

    #[tokio::test]
    async fn a_selection_lists_only_its_event_types_from_its_hour_on() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = Bucket::open(&format!("file://{}", dir.path().display())).unwrap();
        let local = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        for (hour, id) in [("2025-12-31-23", "a"), ("2026-01-01-00", "b"), ("2026-01-01-01", "c")] {
            let bytes = purchase_file(Codec::Null, vec![purchase(id, Some("c1"), 1.0)]);
            put(&local, &key(hour, &format!("f+0+{id}")), bytes.clone()).await;
            let other = key(hour, &format!("f+0+{id}")).replace(PURCHASE_TYPE, "users.behaviors.CustomEvent");
            put(&local, &other, bytes).await;
        }
        let folders = bucket.event_type_folders().await.unwrap();
        let mut types: Vec<&str> = folders.iter().map(|(_, t)| t.as_str()).collect();
        types.sort_unstable();
        assert_eq!(types, ["users.behaviors.CustomEvent", PURCHASE_TYPE]);
        let select = Select {
            event_type: &|t| t == PURCHASE_TYPE,
            queued_since: Some("2026-01-01T00:30:00Z".parse().unwrap()),
        };
        let (files, _) = bucket.list_selected(&select).await.unwrap();
        let hours: Vec<String> = files.iter().map(|f| f.parsed.queued_hour.to_string()).collect();
        assert_eq!(
            hours,
            ["2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"],
            "the hour holding the instant on"
        );
        assert!(files.iter().all(|f| f.parsed.event_type == PURCHASE_TYPE));
        let got = bucket
            .read_new_where(&HashSet::new(), &mut Dedupe::unbounded(), &select)
            .await
            .unwrap();
        let ids: Vec<&str> = got.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["c"], "files queued before the instant's hour are not read");
    }

    #[tokio::test]
    async fn reads_new_files_once_drops_duplicates_and_skips_broken_files_until_a_complete_one_comes() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let bucket = Bucket::open(&url).unwrap();
        let local = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();

        let first = purchase_file(
            Codec::Null,
            vec![purchase("e1", Some("c1"), 10.0), purchase("e2", None, 5.0)],
        );
        put(&local, &key("2026-01-01-00", "f+0+1"), first).await;
        // The same event e2 again, in a later hour's folder (at-least-once), and a new one.
        let second = purchase_file(
            Codec::Snappy,
            vec![purchase("e2", None, 5.0), purchase("e3", Some("c3"), 7.5)],
        );
        put(&local, &key("2026-01-01-01", "f+0+2"), second).await;
        // A truncated file, and a marker that is not an event file.
        let full = purchase_file(Codec::Null, vec![purchase("e4", Some("c4"), 1.0)]);
        let truncated = full[..full.len() - 3].to_vec();
        put(&local, &key("2026-01-01-01", "f+0+3"), truncated).await;
        // A marker inside an event-type folder (counted) and one beside the connector (not listed).
        put(
            &local,
            &key("2026-01-01-01", "f+0+4").replace(".avro", ".json"),
            b"{}".to_vec(),
        )
        .await;
        put(&local, "currents/_SUCCESS", b"ok".to_vec()).await;

        let mut checkpoint = HashSet::new();
        let mut seen = Dedupe::unbounded();
        let got = bucket.read_new(&checkpoint, &mut seen).await.unwrap();
        let ids: Vec<&str> = got.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["e1", "e2", "e3"]);
        assert_eq!(got.report.duplicates, 1);
        assert_eq!(got.report.without_external_id, 1);
        assert_eq!(got.report.files_read, 2);
        assert_eq!(got.report.not_event_files, 1);
        assert_eq!(got.report.unreadable.len(), 1);
        assert!(got.report.unreadable[0].0.ends_with("f+0+3.avro"));
        assert!(
            got.report.unreadable[0].1.contains("not a readable Avro"),
            "{:?}",
            got.report.unreadable
        );
        checkpoint.extend(got.keys);

        // Braze writes the complete file later; the broken one is still there and still reported.
        put(&local, &key("2026-01-01-02", "f+0+4"), full).await;
        let got = bucket.read_new(&checkpoint, &mut seen).await.unwrap();
        let ids: Vec<&str> = got.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["e4"]);
        assert_eq!(got.report.unreadable.len(), 1);
        checkpoint.extend(got.keys);

        let got = bucket.read_new(&checkpoint, &mut seen).await.unwrap();
        assert!(got.events.is_empty() && got.keys.is_empty());
    }

    #[test]
    fn unsupported_schemes_and_bad_urls_say_what() {
        for (url, says) in [
            ("ftp://host/x", "scheme `ftp`"),
            ("not a url", "not a URL"),
            ("file://relative", "absolute path"),
        ] {
            let err = Bucket::open(url).unwrap_err().to_string();
            assert!(err.contains(url) && err.contains(says), "{err}");
        }
    }

    #[test]
    fn cloud_urls_keep_their_prefix() {
        let bucket = Bucket::open("s3://acme-currents/currents/prod").unwrap();
        assert_eq!(bucket.prefix.as_ref(), "currents/prod");
        assert!(!format!("{bucket:?}").contains("Amazon"), "Debug shows the URL only");
    }

    /// A real S3-compatible server (moto), started by the test: `OFFERLOOP_MOTO_SERVER` or
    /// `moto_server` on the PATH (`.ci/run` installs it). Without one the test says it is skipped,
    /// except under CI, where it fails.
    mod s3 {
        use super::*;
        use crate::test_servers::MotoServer;

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn reads_a_connector_layout_from_an_s3_server_across_list_pages() {
            let Some(moto) = MotoServer::start() else { return };
            moto.create_bucket("acme-currents");
            let store = moto.store("acme-currents");
            // More files than one ListObjectsV2 page (1,000 keys), plus a file of another connector
            // outside the prefix.
            let files = 1_030;
            for i in 0..files {
                let bytes = purchase_file(Codec::Null, vec![purchase(&format!("e{i}"), Some("c"), 1.0)]);
                put(
                    store.as_ref(),
                    &key(
                        &format!("2026-01-{:02}-{:02}", 1 + i / 24 % 28, i % 24),
                        &format!("f+0+{i}"),
                    ),
                    bytes,
                )
                .await;
            }
            put(
                store.as_ref(),
                "other/event_type=users.behaviors.Purchase/date=2026-01-01-00/x.avro",
                vec![0],
            )
            .await;
            let bucket = Bucket::from_store("s3://acme-currents/currents", store, Path::from("currents"));
            let mut seen = Dedupe::unbounded();
            let got = bucket.read_new(&HashSet::new(), &mut seen).await.unwrap();
            assert_eq!(got.report.files_read, files);
            assert_eq!(got.events.len(), files);
            assert!(
                got.report.unreadable.is_empty(),
                "the other connector's file is outside the prefix"
            );
            let checkpoint: HashSet<String> = got.keys.into_iter().collect();
            let again = bucket.read_new(&checkpoint, &mut seen).await.unwrap();
            assert!(again.events.is_empty() && again.keys.is_empty());
        }
    }

    /// Azure Blob Storage through Azurite, started by the test (`OFFERLOOP_AZURITE_BLOB` or
    /// `azurite-blob` on the PATH; `.ci/run` installs it). Skipped, and said so, without one,
    /// except under CI.
    mod azure {
        use super::*;
        use crate::test_servers::AzuriteServer;

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn reads_a_connector_layout_from_azure_blob_storage() {
            let Some(azurite) = AzuriteServer::start() else { return };
            azurite.create_container("acme-currents");
            let store = azurite.store("acme-currents");
            let azure_key =
                |hour: &str, name: &str| key(hour, name).replace(".S3.integration.", ".AzureBlob.integration.");
            for (i, hour) in ["2026-01-01-00", "2026-01-01-01", "2026-01-01-02"].iter().enumerate() {
                let bytes = purchase_file(Codec::Null, vec![purchase(&format!("e{i}"), Some("c"), 2.5)]);
                put(store.as_ref(), &azure_key(hour, &format!("f+0+{i}")), bytes).await;
            }
            // A duplicate of e0 an hour later, and a truncated file.
            let again = purchase_file(Codec::Snappy, vec![purchase("e0", Some("c"), 2.5)]);
            put(store.as_ref(), &azure_key("2026-01-01-01", "f+0+9"), again).await;
            let full = purchase_file(Codec::Null, vec![purchase("e7", Some("c"), 1.0)]);
            put(
                store.as_ref(),
                &azure_key("2026-01-01-02", "f+0+8"),
                full[..full.len() / 2].to_vec(),
            )
            .await;

            let bucket = Bucket::from_store("az://acme-currents/currents", store, Path::from("currents"));
            let got = bucket.read_new(&HashSet::new(), &mut Dedupe::default()).await.unwrap();
            let ids: Vec<&str> = got.events.iter().map(|e| e.id.as_str()).collect();
            assert_eq!(ids, ["e0", "e1", "e2"]);
            assert_eq!(got.report.duplicates, 1);
            assert_eq!(got.report.unreadable.len(), 1);
            let since = Select {
                event_type: &|t| t == PURCHASE_TYPE,
                queued_since: Some("2026-01-01T02:00:00Z".parse().unwrap()),
            };
            let (files, _) = bucket.list_selected(&since).await.unwrap();
            assert_eq!(files.len(), 2, "the two files of 02:00, listed from that date= on");
        }
    }
}
