//! The simulated Braze Currents connector: applied events written the way Braze writes them to a
//! customer's bucket (braze-currents.md), here a local directory standing for the bucket.
//!
//! - **Keys** (§1.1): `<prefix>/dataexport.prod-01.<conn>.integration.<id>/event_type=<type>/
//!   date=<YYYY-MM-DD-HH>/version=<n>/<environment>/dataexport.prod-01.<conn>.integration.<id>+0+<offset>.avro`
//!   ([`Layout::Versioned`]), or the older `…/date=…/<schema id>/<zone>/…` ([`Layout::SchemaId`]).
//!   `date=` is the UTC hour the event was **queued**, not its time; `<offset>` is the offset of the
//!   file's first record in its event type's stream.
//! - **Cadence** (§1.2): one event type per file; a file per [`CurrentsConfig::flush_minutes`] window
//!   of queue time with events, split at [`CurrentsConfig::max_records_per_file`]; never an empty
//!   file. A file is written under a hidden temporary name and renamed into place, so a reader
//!   never sees it half-written (unless [`CurrentsConfig::truncated_rate`] asks for exactly that).
//! - **Files** (§1.3): Avro object containers with only `avro.schema` in their metadata (codec
//!   null), Braze's schemas and field order ([`schemas`]).
//! - **Delivery** (§2): at least once ([`CurrentsConfig::duplicate_rate`]: the same event, same `id`,
//!   queued again up to three hours later, so in another file and often another `date=` folder);
//!   late behaviour events ([`CurrentsConfig::late_rate`]: queued hours after their `time`, as from
//!   an offline device); optionally a truncated file followed by a complete one with the same events
//!   ([`CurrentsConfig::truncated_rate`], what GCS can leave behind).
//! - Events are written once the simulated clock reaches their queue time ([`Currents::flush`]).

pub mod container;
pub mod records;
pub mod schemas;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use apache_avro::Schema;
use apache_avro::types::Value;
use jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use self::records::{Identity, Record};
use self::schemas::Field;
use super::events::{Event, EventKind};
use crate::error::{Error, Result};

/// The kind of bucket the connector writes to; it names the connector folder (`…​.S3.integration…`)
/// and the records' namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connector {
    /// Amazon S3 (`S3`).
    S3,
    /// Google Cloud Storage (`GCS`).
    Gcs,
    /// Azure Blob Storage (`AzureBlob`).
    AzureBlob,
}

impl Connector {
    fn key_name(self) -> &'static str {
        match self {
            Self::S3 => "S3",
            Self::Gcs => "GCS",
            Self::AzureBlob => "AzureBlob",
        }
    }
}

/// The key layout between `date=` and the file name (braze-currents.md §1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `version=<n>/<environment>` (current docs), e.g. `version=10/us-01`.
    Versioned {
        /// The Currents release.
        version: u32,
        /// The Braze environment.
        environment: String,
    },
    /// `<schema id>/<zone>` (older docs), e.g. `2/us-01`.
    SchemaId {
        /// The schema id.
        schema_id: u32,
        /// The zone.
        zone: String,
    },
}

/// How the simulated connector writes.
#[derive(Clone, Debug)]
pub struct CurrentsConfig {
    /// The directory standing for the bucket.
    pub dir: PathBuf,
    /// The connector's folder path in the bucket (S3's default: `currents`).
    pub prefix: String,
    /// The kind of bucket.
    pub connector: Connector,
    /// The path segments after `date=`.
    pub layout: Layout,
    /// Minutes of queue time per file (Braze: 5).
    pub flush_minutes: u32,
    /// Records per file at most (Braze: 15,000; up to 100,000 under load).
    pub max_records_per_file: usize,
    /// Fraction of events written a second time (same `id`), queued 5 minutes to 3 hours later.
    pub duplicate_rate: f64,
    /// Fraction of purchases and custom events queued late: 1 hour to `max_late_hours` after their time.
    pub late_rate: f64,
    /// How late a late event can be queued.
    pub max_late_hours: u32,
    /// Fraction of files first written truncated (two thirds of the bytes) under one key, then
    /// complete under another.
    pub truncated_rate: f64,
    /// Seed of the ids, duplicates, lateness and truncation.
    pub seed: u64,
}

impl CurrentsConfig {
    /// Braze's cadence and layout under `dir` (prefix `currents`, an S3 connector), with 0.5 %
    /// duplicates, 1 % late behaviour events up to 48 hours, and no truncated file.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            prefix: "currents".to_owned(),
            connector: Connector::S3,
            layout: Layout::Versioned {
                version: 10,
                environment: "us-01".to_owned(),
            },
            flush_minutes: 5,
            max_records_per_file: 15_000,
            duplicate_rate: 0.005,
            late_rate: 0.01,
            max_late_hours: 48,
            truncated_rate: 0.0,
            seed: 0,
        }
    }

    /// The directory of the connector's prefix: what a reader is pointed at (as a `file://` URL).
    pub fn prefix_dir(&self) -> PathBuf {
        self.dir.join(&self.prefix)
    }
}

/// One event waiting for its queue time.
#[derive(Debug)]
struct Queued {
    at: Timestamp,
    event_type: &'static str,
    record: Value,
}

/// The feed: events queued until the clock reaches their queue time, written by [`Currents::flush`].
pub struct Currents {
    config: CurrentsConfig,
    integration: String,
    rng: StdRng,
    queued: Vec<Queued>,
    /// Parsed schemas by event type.
    schemas: HashMap<&'static str, (Vec<Field>, String, Schema)>,
    /// The next offset of each event type's stream.
    offsets: HashMap<&'static str, u64>,
    next_id: u64,
    files: u64,
}

impl std::fmt::Debug for Currents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Currents")
            .field("dir", &self.config.dir)
            .field("queued", &self.queued.len())
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl Currents {
    /// A feed written as `config` says. Its folder is created at once, as Braze creates the
    /// connector's folder path when the connector is set up (a reader pointed at it finds no file,
    /// not no bucket).
    pub fn new(config: CurrentsConfig) -> Currents {
        if let Err(error) = std::fs::create_dir_all(config.prefix_dir()) {
            tracing::error!(%error, dir = %config.prefix_dir().display(), "creating the Currents folder failed");
        }
        let integration = format!(
            "{:016x}{:08x}",
            xxh3_64_with_seed(b"integration", config.seed),
            xxh3_64_with_seed(b"integration2", config.seed) as u32
        );
        Currents {
            rng: StdRng::seed_from_u64(config.seed),
            config,
            integration,
            queued: Vec::new(),
            schemas: HashMap::new(),
            offsets: HashMap::new(),
            next_id: 0,
            files: 0,
        }
    }

    /// The directory standing for the bucket.
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// Files written so far.
    pub fn files_written(&self) -> u64 {
        self.files
    }

    /// Events queued and not yet written.
    pub fn queued(&self) -> usize {
        self.queued.len()
    }

    /// Queues the Currents records of `event` (none when it has no Currents counterpart) of the
    /// user `who`.
    pub fn push(&mut self, event: &Event, who: &Identity<'_>) {
        let late = matches!(event.kind, EventKind::Purchase { .. } | EventKind::CustomEvent { .. })
            && self.rng.random::<f64>() < self.config.late_rate;
        let at = if late {
            let hours = f64::from(self.config.max_late_hours.max(1));
            event.time + SignedDuration::from_secs_f64(3600.0 * (1.0 + self.rng.random::<f64>() * (hours - 1.0)))
        } else {
            event.time
        };
        for record in records::records_of(event, who) {
            self.queue(record, at);
        }
    }

    fn queue(&mut self, record: Record, at: Timestamp) {
        let id = self.event_id();
        let Some((fields, _, _)) = self.schema(record.event_type) else {
            return;
        };
        let avro = match records::avro_record(&record, &id, fields) {
            Ok(avro) => avro,
            Err(missing) => {
                tracing::error!(?missing, "a simulated Currents record lacks a required field");
                return;
            }
        };
        if self.rng.random::<f64>() < self.config.duplicate_rate {
            let later = SignedDuration::from_secs(self.rng.random_range(300..=3 * 3600));
            self.queued.push(Queued {
                at: at + later,
                event_type: record.event_type,
                record: avro.clone(),
            });
        }
        self.queued.push(Queued {
            at,
            event_type: record.event_type,
            record: avro,
        });
    }

    /// A UUID-shaped event id, unique within the feed.
    fn event_id(&mut self) -> String {
        let n = self.next_id;
        self.next_id += 1;
        let a = xxh3_64_with_seed(&n.to_le_bytes(), self.config.seed);
        let b = xxh3_64_with_seed(&n.to_le_bytes(), self.config.seed ^ 0x9e37_79b9_7f4a_7c15);
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }

    fn schema(&mut self, event_type: &'static str) -> Option<&(Vec<Field>, String, Schema)> {
        if !self.schemas.contains_key(event_type) {
            let fields = schemas::fields(event_type)?;
            let json = schemas::schema_json(event_type, &fields, self.config.connector.key_name());
            // The schemas' validity is tested (schemas::tests); a bad one is logged and skipped.
            let schema = match Schema::parse_str(&json) {
                Ok(schema) => schema,
                Err(error) => {
                    tracing::error!(event_type, %error, "a simulated Currents schema does not parse");
                    return None;
                }
            };
            self.schemas.insert(event_type, (fields, json, schema));
        }
        self.schemas.get(event_type)
    }

    /// Writes every event queued at or before `now`: a file per event type and
    /// [`CurrentsConfig::flush_minutes`] window of queue time, at most
    /// [`CurrentsConfig::max_records_per_file`] records each.
    ///
    /// # Errors
    /// [`Error::Io`] when a directory or file cannot be written; the events of the files not
    /// written stay queued.
    pub fn flush(&mut self, now: Timestamp) -> Result<()> {
        let started = std::time::Instant::now();
        let files_before = self.files;
        let (mut due, rest): (Vec<Queued>, Vec<Queued>) =
            std::mem::take(&mut self.queued).into_iter().partition(|q| q.at <= now);
        self.queued = rest;
        due.sort_by(|a, b| (a.event_type, a.at).cmp(&(b.event_type, b.at)));
        let window = i64::from(self.config.flush_minutes.max(1)) * 60;
        let mut files: Vec<Vec<Queued>> = Vec::new();
        for q in due {
            let starts_new = files.last().and_then(|f| f.first()).is_none_or(|first| {
                first.event_type != q.event_type
                    || first.at.as_second().div_euclid(window) != q.at.as_second().div_euclid(window)
            }) || files
                .last()
                .is_some_and(|f| f.len() >= self.config.max_records_per_file);
            if starts_new {
                files.push(Vec::new());
            }
            if let Some(file) = files.last_mut() {
                file.push(q);
            }
        }
        let mut files = files.into_iter();
        while let Some(file) = files.next() {
            if let Err(error) = self.write_file(&file) {
                self.queued.extend(file);
                self.queued.extend(files.flatten());
                return Err(error);
            }
        }
        tracing::debug!(
            files = self.files - files_before,
            still_queued = self.queued.len(),
            ms = started.elapsed().as_millis(),
            "Currents flushed"
        );
        Ok(())
    }

    /// Writes one file (and, at [`CurrentsConfig::truncated_rate`], a truncated copy first).
    fn write_file(&mut self, file: &[Queued]) -> Result<()> {
        let Some(first) = file.first() else {
            return Ok(());
        };
        let event_type = first.event_type;
        let hour = first
            .at
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .strftime("%Y-%m-%d-%H")
            .to_string();
        let mut sync = [0_u8; 16];
        self.rng.fill(&mut sync);
        let truncate = self.rng.random::<f64>() < self.config.truncated_rate;
        let Some((_, json, schema)) = self.schema(event_type) else {
            return Ok(());
        };
        let records: Vec<Value> = file.iter().map(|q| q.record.clone()).collect();
        let bytes = container::container(json, schema, records, sync).map_err(|e| Error::Io {
            path: self.config.dir.clone(),
            source: std::io::Error::other(format!("{event_type}: {e}")),
        })?;
        if truncate {
            let cut = bytes.len() * 2 / 3;
            let path = self.next_path(event_type, &hour, 1);
            write_atomically(&path, &bytes[..cut])?;
        }
        let path = self.next_path(event_type, &hour, file.len() as u64);
        write_atomically(&path, &bytes)?;
        self.files += 1;
        Ok(())
    }

    /// The path of the next file of `event_type` in queue hour `hour`, taking `records` offsets.
    fn next_path(&mut self, event_type: &'static str, hour: &str, records: u64) -> PathBuf {
        let offset = self.offsets.entry(event_type).or_insert(0);
        let first = *offset;
        *offset += records;
        let conn = self.config.connector.key_name();
        let connector = format!("dataexport.prod-01.{conn}.integration.{}", self.integration);
        let (a, b) = match &self.config.layout {
            Layout::Versioned { version, environment } => (format!("version={version}"), environment.clone()),
            Layout::SchemaId { schema_id, zone } => (schema_id.to_string(), zone.clone()),
        };
        self.config
            .prefix_dir()
            .join(&connector)
            .join(format!("event_type={event_type}"))
            .join(format!("date={hour}"))
            .join(a)
            .join(b)
            .join(format!("{connector}+0+{first}.avro"))
    }
}

/// Writes `bytes` to `path` under a hidden temporary name, then renames it into place (atomic
/// visibility, as an object store gives; not synced to disk: the simulated bucket needs no
/// durability, and a sync per file would make the connector's thousands of files a day slow).
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.partial"));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use super::*;
    use crate::state::MessageRef;
    use crate::world::Channel;

    const WHO: Identity<'static> = Identity {
        user_id: "0123456789abcdef01234567",
        timezone: None,
    };

    fn event(time: &str, kind: EventKind, channel: Option<Channel>) -> Event {
        Event {
            time: time.parse().unwrap(),
            external_user_id: "u1".into(),
            kind,
            message: channel.map(|channel| {
                Arc::new(MessageRef {
                    campaign_id: Some("c1".into()),
                    canvas_id: None,
                    canvas_step_id: None,
                    message_variation_id: None,
                    dispatch_id: "d1".into(),
                    send_id: None,
                    channel,
                })
            }),
        }
    }

    fn purchase(time: &str) -> Event {
        let kind = EventKind::Purchase {
            product_id: "sku".into(),
            price: 9.5,
            currency: "USD".into(),
            quantity: 1,
        };
        event(time, kind, None)
    }

    /// Every `.avro` file under `dir`, relative to it, sorted.
    fn files(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.push(path.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        out.sort();
        out
    }

    fn ids(path: &Path) -> Vec<String> {
        let bytes = std::fs::read(path).unwrap();
        apache_avro::Reader::new(&bytes[..])
            .unwrap()
            .map(|r| match r.unwrap() {
                Value::Record(f) => match &f[0] {
                    (name, Value::String(id)) if name == "id" => id.clone(),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn quiet(dir: &Path) -> CurrentsConfig {
        CurrentsConfig {
            duplicate_rate: 0.0,
            late_rate: 0.0,
            ..CurrentsConfig::new(dir)
        }
    }

    #[test]
    fn files_follow_the_documented_key_layout_one_event_type_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut feed = Currents::new(quiet(dir.path()));
        feed.push(
            &event("2026-01-05T10:01:00Z", EventKind::Send, Some(Channel::Email)),
            &WHO,
        );
        feed.push(
            &event("2026-01-05T10:02:00Z", EventKind::Delivery, Some(Channel::Email)),
            &WHO,
        );
        feed.push(&purchase("2026-01-05T10:03:00Z"), &WHO);
        feed.flush("2026-01-05T11:00:00Z".parse().unwrap()).unwrap();
        let files = files(dir.path());
        assert_eq!(files.len(), 3, "{files:?}");
        let id = &feed.integration;
        let purchase_key = format!(
            "currents/dataexport.prod-01.S3.integration.{id}/event_type=users.behaviors.Purchase/date=2026-01-05-10/version=10/us-01/dataexport.prod-01.S3.integration.{id}+0+0.avro"
        );
        assert!(files.contains(&purchase_key), "{files:?}");
        assert!(files.iter().all(|f| f.contains("/event_type=users.")));
        assert_eq!(id.len(), 24);
    }

    #[test]
    fn a_file_per_five_minutes_of_queue_time_and_never_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut feed = Currents::new(quiet(dir.path()));
        for t in ["10:00:00", "10:04:59", "10:05:00", "10:31:00"] {
            feed.push(&purchase(&format!("2026-01-05T{t}Z")), &WHO);
        }
        feed.flush("2026-01-05T10:30:00Z".parse().unwrap()).unwrap();
        assert_eq!(files(dir.path()).len(), 2, "the 10:31 event waits for its queue time");
        assert_eq!(feed.queued(), 1);
        feed.flush("2026-01-05T10:30:00Z".parse().unwrap()).unwrap();
        assert_eq!(files(dir.path()).len(), 2, "nothing due: no file");
        feed.flush("2026-01-05T12:00:00Z".parse().unwrap()).unwrap();
        let files = files(dir.path());
        assert_eq!(files.len(), 3);
        assert!(files.iter().any(|f| f.ends_with("+0+0.avro")));
        assert!(
            files.iter().any(|f| f.ends_with("+0+2.avro")),
            "offsets count records: {files:?}"
        );
        assert!(files.iter().any(|f| f.ends_with("+0+3.avro")));
    }

    #[test]
    fn files_are_split_at_the_record_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut feed = Currents::new(CurrentsConfig {
            max_records_per_file: 4,
            ..quiet(dir.path())
        });
        for _ in 0..10 {
            feed.push(&purchase("2026-01-05T10:00:00Z"), &WHO);
        }
        feed.flush("2026-01-05T11:00:00Z".parse().unwrap()).unwrap();
        let files = files(dir.path());
        let sizes: Vec<usize> = files.iter().map(|f| ids(&dir.path().join(f)).len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 10);
        assert!(sizes.iter().all(|n| *n <= 4), "{sizes:?}");
    }

    #[test]
    fn duplicates_repeat_ids_in_later_files_and_late_events_land_in_later_hours() {
        let dir = tempfile::tempdir().unwrap();
        let mut feed = Currents::new(CurrentsConfig {
            duplicate_rate: 0.2,
            late_rate: 0.2,
            ..CurrentsConfig::new(dir.path())
        });
        for m in 0..500 {
            let at = Timestamp::from_second(1_767_607_200 + m * 60).unwrap();
            feed.push(&purchase(&at.to_string()), &WHO);
        }
        feed.flush("2026-01-12T00:00:00Z".parse().unwrap()).unwrap();
        let mut seen = HashSet::new();
        let mut duplicates = 0;
        let mut late = 0;
        for f in files(dir.path()) {
            let hour = f.split("date=").nth(1).unwrap()[..13].to_owned();
            let bytes = std::fs::read(dir.path().join(&f)).unwrap();
            for r in apache_avro::Reader::new(&bytes[..]).unwrap() {
                let Value::Record(fields) = r.unwrap() else { panic!() };
                let get = |n: &str| fields.iter().find(|(k, _)| k == n).unwrap().1.clone();
                let Value::String(id) = get("id") else { panic!() };
                let Value::Int(time) = get("time") else { panic!() };
                let queued = jiff::civil::DateTime::strptime("%Y-%m-%d-%H", &hour).unwrap();
                let event_hour = Timestamp::from_second(i64::from(time))
                    .unwrap()
                    .to_zoned_datetime(jiff::tz::TimeZone::UTC)
                    .datetime();
                if event_hour < queued - SignedDuration::from_hours(1) {
                    late += 1;
                }
                if !seen.insert(id) {
                    duplicates += 1;
                }
            }
        }
        assert_eq!(seen.len(), 500);
        assert!((60..=140).contains(&duplicates), "{duplicates}");
        assert!(late > 50, "{late}");
    }

    #[test]
    fn a_truncated_file_is_followed_by_a_complete_one_with_the_same_events() {
        let dir = tempfile::tempdir().unwrap();
        let mut feed = Currents::new(CurrentsConfig {
            truncated_rate: 1.0,
            connector: Connector::Gcs,
            layout: Layout::SchemaId {
                schema_id: 2,
                zone: "us-01".into(),
            },
            ..quiet(dir.path())
        });
        for _ in 0..50 {
            feed.push(&purchase("2026-01-05T10:00:00Z"), &WHO);
        }
        feed.flush("2026-01-05T11:00:00Z".parse().unwrap()).unwrap();
        let files = files(dir.path());
        assert_eq!(files.len(), 2);
        assert!(
            files
                .iter()
                .all(|f| f.contains(".GCS.integration.") && f.contains("/date=2026-01-05-10/2/us-01/"))
        );
        let read = |f: &String| -> std::result::Result<usize, String> {
            let bytes = std::fs::read(dir.path().join(f)).unwrap();
            let reader = apache_avro::Reader::new(&bytes[..]).map_err(|e| e.to_string())?;
            reader
                .map(|r| r.map_err(|e| e.to_string()))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map(|v| v.len())
        };
        let results: Vec<_> = files.iter().map(read).collect();
        assert!(results.iter().any(std::result::Result::is_err), "{results:?}");
        assert!(results.contains(&Ok(50)), "{results:?}");
    }
}
