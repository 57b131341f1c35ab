//! A Currents bucket: every event file under a connector's URL, listed recursively and read once.
//!
//! [`Bucket::open`] takes `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix` (or
//! `abfs://`, `https://<account>.blob.core.windows.net/…`) or `file:///path`. Credentials come from the
//! environment the way each cloud's SDK reads them (`AWS_ACCESS_KEY_ID`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`…; `GOOGLE_SERVICE_ACCOUNT`…; `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_*`…),
//! never from a use-case file. [`Bucket::read_new`] reads the event files whose keys are not in the
//! caller's checkpoint, deduplicates events by `(event type, id)` against the ids the caller has
//! seen, and reports what it skipped.

use std::collections::HashSet;
use std::sync::Arc;

use futures::TryStreamExt as _;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _};

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
    /// Objects under the prefix that are not event files (no `.avro` name, no `event_type=`/`date=`).
    pub not_event_files: usize,
    /// Files that could not be read, with the reason; they are not checkpointed, so a later complete
    /// copy's events are read and this one is retried (and reported) again.
    pub unreadable: Vec<(String, String)>,
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
        let mut files = Vec::new();
        let mut others = 0;
        for meta in objects {
            let key = meta.location.to_string();
            match CurrentsKey::parse(&key)? {
                Some(parsed) => files.push(EventFile {
                    key,
                    parsed,
                    size: meta.size,
                }),
                None => others += 1,
            }
        }
        files.sort_by(|a, b| a.key.cmp(&b.key));
        Ok((files, others))
    }

    /// Reads every event file whose key is not in `checkpoint`, dropping events whose `(event type,
    /// id)` is in `seen` (and adding the new ones to it). A file that cannot be read is reported in
    /// [`ReadReport::unreadable`] and skipped; the others are still read.
    ///
    /// # Errors
    /// [`Error::Bucket`] when listing or fetching fails (the read stops: nothing is lost, since no key
    /// of this call has been checkpointed by the caller yet).
    pub async fn read_new(
        &self,
        checkpoint: &HashSet<String>,
        seen: &mut HashSet<(String, String)>,
    ) -> Result<NewEvents> {
        self.read_new_where(checkpoint, seen, |_| true).await
    }

    /// [`Bucket::read_new`] for the files whose key `wanted` accepts (an event type, an hour range).
    ///
    /// # Errors
    /// As [`Bucket::read_new`].
    pub async fn read_new_where(
        &self,
        checkpoint: &HashSet<String>,
        seen: &mut HashSet<(String, String)>,
        wanted: impl Fn(&CurrentsKey) -> bool,
    ) -> Result<NewEvents> {
        let (files, others) = self.list().await?;
        let mut out = NewEvents::default();
        out.report.not_event_files = others;
        for file in files
            .into_iter()
            .filter(|f| !checkpoint.contains(&f.key) && wanted(&f.parsed))
        {
            let bytes = self.fetch(&file.key).await?;
            let events = match file::decode(&file.key, &file.parsed.event_type, &bytes) {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(key = %file.key, error = %e, "skipping an unreadable Currents file");
                    out.report.unreadable.push((file.key, e.to_string()));
                    continue;
                }
            };
            for event in events {
                if seen.insert((file.parsed.event_type.clone(), event.id.clone())) {
                    out.report.without_external_id += usize::from(event.external_user_id.is_none());
                    out.events.push(event);
                } else {
                    out.report.duplicates += 1;
                }
            }
            out.report.files_read += 1;
            out.keys.push(file.key);
        }
        out.report.events = out.events.len();
        Ok(out)
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
        put(&local, "currents/_SUCCESS", b"ok".to_vec()).await;

        let mut checkpoint = HashSet::new();
        let mut seen = HashSet::new();
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
        use std::io::{Read as _, Write as _};
        use std::net::{TcpListener, TcpStream};
        use std::process::{Child, Command, Stdio};
        use std::time::{Duration, Instant};

        use object_store::aws::AmazonS3Builder;

        use super::*;

        struct Moto {
            child: Child,
            endpoint: String,
        }

        impl Drop for Moto {
            fn drop(&mut self) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }

        fn start_moto() -> Option<Moto> {
            let program = std::env::var("OFFERLOOP_MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let child = match Command::new(&program)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                Ok(child) => child,
                Err(e) => {
                    assert!(
                        std::env::var_os("CI").is_none(),
                        "CI must provide an S3 server: `{program}` did not start ({e}); .ci/run installs moto"
                    );
                    eprintln!(
                        "SKIPPED: no S3 server (`{program}`: {e}); install `moto[server]` or set OFFERLOOP_MOTO_SERVER"
                    );
                    return None;
                }
            };
            let moto = Moto {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "moto did not listen on port {port} within 30 s"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            Some(moto)
        }

        /// `PUT /<bucket>`: moto accepts unsigned requests.
        fn create_bucket(endpoint: &str, bucket: &str) {
            let host = endpoint.trim_start_matches("http://");
            let mut stream = TcpStream::connect(host).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            write!(
                stream,
                "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn reads_a_connector_layout_from_an_s3_server_across_list_pages() {
            let Some(moto) = start_moto() else { return };
            create_bucket(&moto.endpoint, "acme-currents");
            let s3 = AmazonS3Builder::new()
                .with_endpoint(&moto.endpoint)
                .with_allow_http(true)
                .with_bucket_name("acme-currents")
                .with_region("us-east-1")
                .with_access_key_id("testing")
                .with_secret_access_key("testing")
                .build()
                .unwrap();
            let store: Arc<dyn ObjectStore> = Arc::new(s3);
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
            let mut seen = HashSet::new();
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
}
