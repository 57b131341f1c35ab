//! [`ExportReader`]: the files of a segment export in, typed [`ExportedUser`] records out, one at a
//! time, in constant memory.
//!
//! A segment export is a set of files of newline-delimited JSON (one user object per line, about 5,000
//! users per file): a ZIP of entries usually named `.json` (Braze-hosted download, or bucket default;
//! every file entry is read, whatever its name), gzip files (bucket with `output_format: "gzip"`), or
//! plain files. The reader goes through the files in the order given, the file entries of a ZIP in
//! name order, and the lines of each in order. It holds one
//! line at a time in a reused buffer and never collects, so its memory does not grow with the number
//! of users; a line longer than [`ExportReader::max_line_bytes`] is reported instead of buffered.
//!
//! The iterator is synchronous (blocking file I/O and decompression): run it on a blocking thread, or
//! use [`ExportReader::into_stream`], which does that and hands records over a bounded channel.
//!
//! Why ZIP entries are decompressed here and not by the `zip` crate's reader: a `zip::read::ZipFile`
//! borrows its archive, so an iterator that owns its state cannot keep one open across calls to
//! `next`. The `zip` crate reads the archive's directory and locates each entry's data; the entry is
//! then read through its own file handle, inflated with `flate2`, and checked against the CRC-32 and
//! size the directory records.

use std::fmt;
use std::fs::File;
use std::future::Future as _;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use serde::de::DeserializeSeed;

use super::ExportError;
use super::ExportedUser;
use super::fields::{AttributeFilter, FieldSet, UserSeed};

/// The I/O buffer size of each file or entry being read.
const BUFFER_BYTES: usize = 64 * 1024;

/// A line buffer grown beyond this is shrunk back before the next line.
const SHRINK_LINE_ABOVE: usize = 1024 * 1024;

/// Records per batch sent from the blocking reader thread to an [`ExportStream`] (one channel message
/// per record would cost a thread wake-up per record).
const STREAM_BATCH: usize = 64;

/// Batches buffered between the blocking reader thread and an [`ExportStream`]: at most
/// `STREAM_BATCH * (STREAM_BATCHES + 2)` records are in flight.
const STREAM_BATCHES: usize = 4;

/// Streams the users of a segment export's files. See the [module documentation](crate::export).
///
/// Yields `Ok(user)` per non-blank line. On a malformed line it yields [`ExportError::Malformed`]
/// (naming the file, or `archive!entry`, and the line number) and then ends, unless
/// [`ExportReader::skip_malformed`] was set, in which case the line is counted and skipped. Any other
/// error (unreadable file, corrupt archive, failed CRC check) is yielded once and ends the iteration.
pub struct ExportReader {
    files: std::vec::IntoIter<PathBuf>,
    fields: FieldSet,
    attributes: AttributeFilter,
    skip_malformed: bool,
    max_line_bytes: usize,
    /// The ZIP archive whose entries are being read, if any.
    zip: Option<ZipCursor>,
    /// The file or entry whose lines are being read.
    current: Option<LineSource>,
    /// The current line, reused from line to line.
    line: Vec<u8>,
    users: u64,
    skipped: u64,
    done: bool,
}

impl fmt::Debug for ExportReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportReader")
            .field("files_left", &self.files.as_slice())
            .field("current", &self.current.as_ref().map(|s| (&s.label, s.line)))
            .field("fields", &self.fields)
            .field("attributes", &self.attributes)
            .field("skip_malformed", &self.skip_malformed)
            .field("users", &self.users)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

impl ExportReader {
    /// A reader of these files, in this order, filling in every typed field, stopping at the first
    /// malformed line, with lines of at most 16 MiB. Nothing is opened until the first call to `next`.
    pub fn new<I, P>(files: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        Self {
            files: files.into_iter().map(Into::into).collect::<Vec<_>>().into_iter(),
            fields: FieldSet::all(),
            attributes: AttributeFilter::all(),
            skip_malformed: false,
            max_line_bytes: 16 * 1024 * 1024,
            zip: None,
            current: None,
            line: Vec::new(),
            users: 0,
            skipped: 0,
            done: false,
        }
    }

    /// Fills in only the typed fields named in the export's `fields_to_export`: a field the export did
    /// not request is left empty even if the file carries it, and is skipped without being parsed
    /// (see [`FieldSet`]).
    #[must_use]
    pub fn fields_to_export<I, S>(self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.fields(FieldSet::from_fields_to_export(names))
    }

    /// Fills in only these typed fields.
    #[must_use]
    pub fn fields(mut self, fields: FieldSet) -> Self {
        self.fields = fields;
        self
    }

    /// Keeps only these custom attributes (by top-level name, as in the export's
    /// `custom_attributes_to_export`): any other attribute a file carries is skipped without being
    /// parsed or stored. By default every custom attribute is kept.
    #[must_use]
    pub fn custom_attributes<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.attributes = AttributeFilter::only(names);
        self
    }

    /// Whether to skip malformed lines (counted in [`ExportReader::skipped_lines`] and logged with
    /// their file and line at `warn`) instead of yielding an error and stopping. Default: `false`.
    #[must_use]
    pub fn skip_malformed(mut self, skip: bool) -> Self {
        self.skip_malformed = skip;
        self
    }

    /// The longest line accepted, in bytes (default 16 MiB); a longer line is malformed. This bounds
    /// the reader's memory whatever the file holds.
    #[must_use]
    pub fn max_line_bytes(mut self, bytes: usize) -> Self {
        self.max_line_bytes = bytes.max(1);
        self
    }

    /// Users yielded so far.
    pub fn users_read(&self) -> u64 {
        self.users
    }

    /// Malformed lines skipped so far (always 0 unless [`ExportReader::skip_malformed`] is set).
    pub fn skipped_lines(&self) -> u64 {
        self.skipped
    }

    /// Runs this reader on a Tokio blocking thread (`spawn_blocking`) and yields its items as an
    /// [`ExportStream`], through a bounded channel of 4 batches of 64 records, so a slow consumer holds
    /// the reader back instead of letting records pile up. The thread starts at the first poll and stops soon
    /// after the stream is dropped.
    pub fn into_stream(self) -> ExportStream {
        ExportStream {
            state: StreamState::Idle(Box::new(self)),
        }
    }

    /// Reads the next non-blank line of the current source into `self.line`. `Ok(None)` at the end of
    /// the source; `Ok(Some(Err(message)))` for a line that is too long (then skipped to its end).
    fn next_line(&mut self) -> Result<Option<Result<(), String>>, ExportError> {
        let Some(source) = self.current.as_mut() else {
            return Ok(None);
        };
        loop {
            self.line.clear();
            if self.line.capacity() > SHRINK_LINE_ABOVE {
                // Give back what one exceptionally long line took.
                self.line.shrink_to(BUFFER_BYTES);
            }
            let limit = u64::try_from(self.max_line_bytes).unwrap_or(u64::MAX).saturating_add(1);
            let read = (&mut source.reader).take(limit).read_until(b'\n', &mut self.line);
            let n = read.map_err(|e| source.read_error(e))?;
            if n == 0 {
                return Ok(None);
            }
            source.line += 1;
            if self.line.len() > self.max_line_bytes && self.line.last() != Some(&b'\n') {
                source.reader.skip_until(b'\n').map_err(|e| source.read_error(e))?;
                self.line.clear();
                return Ok(Some(Err(format!("line longer than {} bytes", self.max_line_bytes))));
            }
            if !self.line.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some(Ok(())));
            }
        }
    }

    /// Opens the next source: the next entry of the current ZIP archive, else the next file.
    /// `Ok(false)` when there is nothing left.
    fn open_next(&mut self) -> Result<bool, ExportError> {
        if let Some(zip) = self.zip.as_mut() {
            if let Some(source) = zip.open_next()? {
                self.current = Some(source);
                return Ok(true);
            }
            self.zip = None;
        }
        let Some(path) = self.files.next() else {
            return Ok(false);
        };
        match open_file(&path)? {
            Opened::Lines(source) => self.current = Some(source),
            Opened::Zip(zip) => self.zip = Some(zip),
        }
        Ok(true)
    }
}

impl Iterator for ExportReader {
    type Item = Result<ExportedUser, ExportError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let line = match self.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => {
                    self.current = None;
                    match self.open_next() {
                        Ok(true) => continue,
                        Ok(false) => self.done = true,
                        Err(e) => {
                            self.done = true;
                            return Some(Err(e));
                        }
                    }
                    continue;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            let parsed = line.and_then(|()| parse_line(&self.line, self.fields, &self.attributes));
            match parsed {
                Ok(user) => {
                    self.users += 1;
                    return Some(Ok(user));
                }
                Err(message) => {
                    let (file, line) = self
                        .current
                        .as_ref()
                        .map_or((String::new(), 0), |s| (s.label.clone(), s.line));
                    if self.skip_malformed {
                        self.skipped += 1;
                        tracing::warn!(%file, line, %message, "skipping a malformed line of a segment export");
                        continue;
                    }
                    self.done = true;
                    return Some(Err(ExportError::Malformed { file, line, message }));
                }
            }
        }
        None
    }
}

impl std::iter::FusedIterator for ExportReader {}

/// The records of an [`ExportReader`] as a `futures::Stream`, read on a Tokio blocking thread; see
/// [`ExportReader::into_stream`]. Polling it outside a Tokio runtime yields [`ExportError::Worker`].
#[derive(Debug)]
pub struct ExportStream {
    state: StreamState,
}

#[derive(Debug)]
enum StreamState {
    Idle(Box<ExportReader>),
    Running {
        batches: tokio::sync::mpsc::Receiver<Vec<Result<ExportedUser, ExportError>>>,
        batch: std::vec::IntoIter<Result<ExportedUser, ExportError>>,
        thread: tokio::task::JoinHandle<()>,
    },
    Done,
}

impl futures::Stream for ExportStream {
    type Item = Result<ExportedUser, ExportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match &mut self.state {
                StreamState::Idle(_) => {
                    let runtime = match tokio::runtime::Handle::try_current() {
                        Ok(runtime) => runtime,
                        Err(e) => {
                            self.state = StreamState::Done;
                            return Poll::Ready(Some(Err(ExportError::Worker(e.to_string()))));
                        }
                    };
                    let StreamState::Idle(reader) = std::mem::replace(&mut self.state, StreamState::Done) else {
                        continue;
                    };
                    let (tx, batches) = tokio::sync::mpsc::channel(STREAM_BATCHES);
                    let thread = runtime.spawn_blocking(move || {
                        let mut batch = Vec::with_capacity(STREAM_BATCH);
                        for item in *reader {
                            batch.push(item);
                            if batch.len() == STREAM_BATCH {
                                let full = std::mem::replace(&mut batch, Vec::with_capacity(STREAM_BATCH));
                                if tx.blocking_send(full).is_err() {
                                    return; // The stream was dropped.
                                }
                            }
                        }
                        if !batch.is_empty() {
                            let _ = tx.blocking_send(batch);
                        }
                    });
                    self.state = StreamState::Running {
                        batches,
                        batch: Vec::new().into_iter(),
                        thread,
                    };
                }
                StreamState::Running { batches, batch, thread } => {
                    if let Some(item) = batch.next() {
                        return Poll::Ready(Some(item));
                    }
                    if let Some(next) = std::task::ready!(batches.poll_recv(cx)) {
                        *batch = next.into_iter();
                        continue;
                    }
                    // The channel is closed: the reader is done, or its thread died.
                    let joined = std::task::ready!(Pin::new(thread).poll(cx));
                    self.state = StreamState::Done;
                    if let Err(e) = joined {
                        return Poll::Ready(Some(Err(ExportError::Worker(e.to_string()))));
                    }
                }
                StreamState::Done => return Poll::Ready(None),
            }
        }
    }
}

/// Parses one line into a user; the error message names the failing field and column but quotes
/// nothing from the line.
fn parse_line(line: &[u8], fields: FieldSet, attributes: &AttributeFilter) -> Result<ExportedUser, String> {
    let seed = UserSeed { fields, attributes };
    let mut de = serde_json::Deserializer::from_slice(line);
    let parsed = seed.deserialize(&mut de).and_then(|user| de.end().map(|()| user));
    parsed.map_err(|e| {
        // The slow path, for errors only: parse again, tracking the path to the failing value.
        let mut track = serde_path_to_error::Track::new();
        let mut de = serde_json::Deserializer::from_slice(line);
        let path = match seed.deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track)) {
            Err(_) => track.path().to_string(),
            Ok(_) => String::from("."),
        };
        describe(&e, &path)
    })
}

/// A description of a `serde_json` error without the values it may quote (`invalid type: string
/// "jane@example.com", expected u32` becomes `invalid type, expected u32`).
fn describe(error: &serde_json::Error, path: &str) -> String {
    let full = error.to_string();
    let text = full.rsplit_once(" at line ").map_or(full.as_str(), |(text, _)| text);
    let what = match error.classify() {
        serde_json::error::Category::Data => match (text.split_once(':'), text.rsplit_once(", expected ")) {
            (Some((kind, _)), Some((_, expected))) => format!("{kind}, expected {expected}"),
            _ => String::from("invalid value"),
        },
        // Syntax and end-of-input messages describe the JSON grammar, never the data.
        _ => text.to_owned(),
    };
    if path == "." || path.is_empty() {
        format!("{what} (column {})", error.column())
    } else {
        format!("`{path}`: {what} (column {})", error.column())
    }
}

/// A file or ZIP entry being read line by line.
struct LineSource {
    /// `path` or `path!entry`.
    label: String,
    reader: Box<dyn BufRead + Send>,
    /// Lines read so far (blank ones included).
    line: u64,
}

impl LineSource {
    fn new(label: String, reader: impl Read + Send + 'static) -> Self {
        Self {
            label,
            reader: Box::new(BufReader::with_capacity(BUFFER_BYTES, reader)),
            line: 0,
        }
    }

    fn read_error(&self, source: io::Error) -> ExportError {
        ExportError::Read {
            file: self.label.clone(),
            line: self.line,
            source,
        }
    }
}

enum Opened {
    Lines(LineSource),
    Zip(ZipCursor),
}

/// What a file holds, from its first bytes.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Format {
    Zip,
    Gzip,
    Plain,
}

impl Format {
    fn sniff(magic: &[u8]) -> Self {
        match magic {
            [b'P', b'K', 3, 4, ..] | [b'P', b'K', 5, 6, ..] | [b'P', b'K', 7, 8, ..] => Self::Zip,
            [0x1f, 0x8b, ..] => Self::Gzip,
            _ => Self::Plain,
        }
    }

    /// The format a file's extension promises, if any.
    fn of_extension(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "zip" => Some(Self::Zip),
            "gz" | "gzip" => Some(Self::Gzip),
            _ => None,
        }
    }
}

/// Opens one file of the export, recognising ZIP and gzip by their magic bytes (anything else is read
/// as plain newline-delimited JSON). A `.zip` or `.gz` file whose content is not one is an error
/// rather than garbage lines.
fn open_file(path: &Path) -> Result<Opened, ExportError> {
    let label = path.display().to_string();
    let mut file = File::open(path).map_err(|e| ExportError::io(path, e))?;
    let mut magic = [0u8; 4];
    let mut filled = 0;
    while filled < magic.len() {
        match file.read(&mut magic[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ExportError::io(path, e)),
        }
    }
    file.seek(SeekFrom::Start(0)).map_err(|e| ExportError::io(path, e))?;
    let format = Format::sniff(&magic[..filled]);
    if let Some(promised) = Format::of_extension(path).filter(|f| *f != format) {
        let reason = format!("the file extension says {promised:?} but the content is not");
        return Err(ExportError::Archive { file: label, reason });
    }
    Ok(match format {
        Format::Zip => Opened::Zip(ZipCursor::open(path, file)?),
        Format::Gzip => {
            let gz = flate2::bufread::MultiGzDecoder::new(BufReader::with_capacity(BUFFER_BYTES, file));
            Opened::Lines(LineSource::new(label, gz))
        }
        Format::Plain => Opened::Lines(LineSource::new(label, file)),
    })
}

/// A ZIP archive, its file entries sorted by name, and the next one to read.
struct ZipCursor {
    path: PathBuf,
    archive: zip::ZipArchive<BufReader<File>>,
    /// `(name, index in the archive)`, sorted by name.
    entries: Vec<(String, usize)>,
    next: usize,
}

impl ZipCursor {
    fn open(path: &Path, file: File) -> Result<Self, ExportError> {
        let zip_error = |source| ExportError::Zip {
            file: path.display().to_string(),
            source,
        };
        let archive = zip::ZipArchive::new(BufReader::new(file)).map_err(zip_error)?;
        let mut entries = Vec::new();
        for index in 0..archive.len() {
            let entry = archive.by_index_data(index).map_err(zip_error)?;
            let name = entry.name().map_err(zip_error)?;
            // Every file entry holds users, whatever its name: Braze does not promise an extension.
            if entry.is_file() {
                entries.push((name.into_owned(), index));
            }
        }
        entries.sort();
        Ok(Self {
            path: path.to_path_buf(),
            archive,
            entries,
            next: 0,
        })
    }

    /// Opens the next file entry for reading, or `None` after the last one.
    fn open_next(&mut self) -> Result<Option<LineSource>, ExportError> {
        let Some((name, index)) = self.entries.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        let label = format!("{}!{name}", self.path.display());
        let archive_error = |reason: String| ExportError::Archive {
            file: label.clone(),
            reason,
        };
        // `by_index_raw` reads the entry's local header, which gives where its data starts.
        let entry = self.archive.by_index_raw(*index).map_err(|source| ExportError::Zip {
            file: label.clone(),
            source,
        })?;
        if entry.encrypted() {
            return Err(archive_error(String::from("encrypted entries are not supported")));
        }
        let method = entry.compression();
        let (compressed, size, crc) = (entry.compressed_size(), entry.size(), entry.crc32());
        let start = entry
            .data_start()
            .ok_or_else(|| archive_error(String::from("entry data not found")))?;
        drop(entry);

        let mut file = File::open(&self.path).map_err(|e| ExportError::io(&self.path, e))?;
        file.seek(SeekFrom::Start(start))
            .map_err(|e| ExportError::io(&self.path, e))?;
        let raw = BufReader::with_capacity(BUFFER_BYTES, file).take(compressed);
        let data: Box<dyn Read + Send> = match method {
            zip::CompressionMethod::Stored => Box::new(raw),
            zip::CompressionMethod::Deflated => Box::new(flate2::bufread::DeflateDecoder::new(raw)),
            other => {
                return Err(archive_error(format!(
                    "compression method {other} is not supported (only stored and deflate)"
                )));
            }
        };
        Ok(Some(LineSource::new(
            label,
            Verified {
                inner: data,
                crc: flate2::Crc::new(),
                read: 0,
                size,
                expected_crc: crc,
            },
        )))
    }
}

/// Checks an entry's decompressed bytes against the size and CRC-32 of the ZIP directory: a mismatch
/// is an `InvalidData` error at the end of the entry (or as soon as it grows too long).
struct Verified {
    inner: Box<dyn Read + Send>,
    crc: flate2::Crc,
    read: u64,
    size: u64,
    expected_crc: u32,
}

impl Read for Verified {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let chunk = buf.get(..n).unwrap_or_default();
        self.crc.update(chunk);
        self.read += n as u64;
        let invalid = |message: String| Err(io::Error::new(io::ErrorKind::InvalidData, message));
        if self.read > self.size {
            return invalid(format!(
                "entry is longer than the {} bytes its header declares",
                self.size
            ));
        }
        if n == 0 && !buf.is_empty() {
            if self.read != self.size {
                return invalid(format!("entry is truncated: {} of {} bytes", self.read, self.size));
            }
            if self.crc.sum() != self.expected_crc {
                return invalid(String::from("CRC-32 mismatch: the entry is corrupt"));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
