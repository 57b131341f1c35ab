//! The model file: a versioned JSON document that holds everything `decide`, `learn` and `evaluate`
//! need, and its atomic replacement.
//!
//! ```json
//! {"format": 1, "use_case_file": "examples/winback.toml", "use_case": "<the TOML text>",
//!  "rounds": 0, "snapshot": {"format": 1, "algorithm": "uniform", "fingerprint": 123, "state": {...}}}
//! ```
//!
//! The use case is embedded as text, so the model is self-contained: it is re-parsed when the model is
//! loaded, and the snapshot restores only onto the same action space and schema (its fingerprint).
//!
//! A model whose state holds a number that is not finite is never written ([`save`] checks the
//! snapshot first), and a truncated or otherwise unreadable file is refused on load with the line and
//! column where reading stopped.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use offerloop_domain::UseCase;
use offerloop_policy::{Policy, Setup, Snapshot};
use serde::{Deserialize, Serialize};

use crate::validate::{self, Verdict};

/// The model-file format this build writes and reads.
pub const MODEL_FORMAT: u32 = 1;

/// The content of a model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    /// [`MODEL_FORMAT`] when written.
    pub format: u32,
    /// The use-case file's path as given to `init` (names the use case in diagnostics).
    pub use_case_file: String,
    /// The full TOML source of the use case.
    pub use_case: String,
    /// How many `learn` calls the model has seen: the default decision round (see the module docs of
    /// [`crate::policy_cmd`]).
    #[serde(default)]
    pub rounds: u64,
    /// The policy's state.
    pub snapshot: Snapshot,
}

/// A model file read back, its use case parsed and its policy restored.
pub struct Loaded {
    /// The file as read (the snapshot in it is the one the policy was restored from).
    pub file: ModelFile,
    /// The embedded use case.
    pub use_case: UseCase,
    /// The policy setup of the use case.
    pub setup: Setup,
    /// The restored policy.
    pub policy: Box<dyn Policy>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("use_case", &self.use_case.name)
            .field("rounds", &self.file.rounds)
            .field("model_version", &self.policy.model_version())
            .finish_non_exhaustive()
    }
}

/// Reads a model file, re-parses its use case and restores its policy.
///
/// # Errors
/// An unreadable file, one that is not a model file or of another format, an embedded use case this
/// build finds invalid (reported as `validate` does), or a snapshot that does not restore.
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let name = path.display();
    let bytes = std::fs::read(path).with_context(|| format!("{name}: cannot read the model file"))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| unreadable(path, &e))?;
    match value.get("format").and_then(serde_json::Value::as_u64) {
        Some(f) if f == u64::from(MODEL_FORMAT) => {}
        Some(f) => bail!("{name}: model file format {f} cannot be read by this build (it reads format {MODEL_FORMAT})"),
        None => bail!("{name}: not a model file (no `format` number)"),
    }
    let file: ModelFile = serde_json::from_value(value).with_context(|| format!("{name}: not a model file"))?;
    let use_case = match validate::check_source(&file.use_case, &file.use_case_file) {
        Verdict::Valid(use_case) => *use_case,
        Verdict::Invalid(diagnostics) => bail!(
            "{name}: the embedded use case is not valid for this build:\n{}",
            validate::render_problems(&file.use_case_file, &file.use_case, &diagnostics)
        ),
        Verdict::Unreadable(message) => bail!("{name}: {message}"),
    };
    let setup = Setup::from_use_case(&use_case).with_context(|| format!("{name}: policy setup"))?;
    let policy = offerloop_policy::restore(setup.clone(), file.snapshot.clone())
        .with_context(|| format!("{name}: restoring the policy"))?;
    Ok(Loaded {
        file,
        use_case,
        setup,
        policy,
    })
}

/// Why a model file's bytes are not JSON, located: a file that ends inside the document is called
/// truncated (an interrupted copy, a full disk), anything else invalid JSON.
fn unreadable(path: &Path, e: &serde_json::Error) -> anyhow::Error {
    let name = path.display();
    let (line, column) = (e.line(), e.column());
    if e.is_eof() {
        anyhow::anyhow!(
            "{name}:{line}:{column}: the model file ends in the middle of its JSON document (truncated?); restore it from a copy or run `offerloop policy init` again"
        )
    } else {
        anyhow::anyhow!("{name}:{line}:{column}: not a model file (invalid JSON: {e})")
    }
}

/// Writes `file` to `path` atomically (temporary file in the same directory, fsync, rename), after
/// checking that every number of its snapshot is finite.
///
/// # Errors
/// A snapshot with a non-finite number ([`offerloop_policy::Error::NonFiniteSnapshot`]), or a file that
/// cannot be written; then `path` is untouched.
pub fn save(path: &Path, file: &ModelFile) -> anyhow::Result<()> {
    file.snapshot
        .check()
        .with_context(|| format!("{}: the model was not saved", path.display()))?;
    let mut out = AtomicFile::create(path)?;
    serde_json::to_writer(out.writer(), file).with_context(|| format!("writing {}", path.display()))?;
    out.writer()
        .write_all(b"\n")
        .with_context(|| format!("writing {}", path.display()))?;
    out.commit()
}

/// A file written beside its target and renamed into place by [`AtomicFile::commit`]; dropped
/// uncommitted, the temporary file is removed and the target is untouched.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    writer: BufWriter<File>,
    tmp: TempPath,
}

/// Removes its file when dropped, unless disarmed.
#[derive(Debug)]
struct TempPath {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl AtomicFile {
    /// Starts writing `target` (through a temporary file in the same directory).
    ///
    /// # Errors
    /// When `target` has no file name or the temporary file cannot be created.
    pub fn create(target: &Path) -> anyhow::Result<Self> {
        let Some(name) = target.file_name() else {
            bail!("{}: not a file path", target.display());
        };
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let path = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
        let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self {
            target: target.to_path_buf(),
            writer: BufWriter::with_capacity(1 << 16, file),
            tmp: TempPath { path, armed: true },
        })
    }

    /// The writer of the temporary file.
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        &mut self.writer
    }

    /// Flushes, fsyncs and renames the temporary file onto the target.
    ///
    /// # Errors
    /// When any step fails; then the temporary file is removed and the target untouched.
    pub fn commit(self) -> anyhow::Result<()> {
        let Self {
            target,
            writer,
            mut tmp,
        } = self;
        let file = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", tmp.path.display()))?;
        file.sync_all()
            .with_context(|| format!("syncing {}", tmp.path.display()))?;
        drop(file);
        std::fs::rename(&tmp.path, &target)
            .with_context(|| format!("moving {} to {}", tmp.path.display(), target.display()))?;
        tmp.armed = false;
        // The rename is durable once the directory is synced; not every platform can open a directory.
        if let Some(dir) = target.parent().filter(|p| !p.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uncommitted_file_leaves_no_trace_and_a_committed_one_replaces_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.jsonl");
        std::fs::write(&target, "old\n").unwrap();
        {
            let mut f = AtomicFile::create(&target).unwrap();
            f.writer().write_all(b"half").unwrap();
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old\n");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temporary file removed"
        );
        let mut f = AtomicFile::create(&target).unwrap();
        f.writer().write_all(b"new\n").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = AtomicFile::create(&dir.path().join("no/such/out.json")).unwrap_err();
        assert!(format!("{err:#}").contains("cannot create"), "{err:#}");
    }

    #[test]
    fn a_truncated_model_file_is_located_and_named_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.json");
        std::fs::write(
            &path,
            "{\"format\": 1, \"use_case_file\": \"uc.toml\",\n \"use_case\": \"[use_",
        )
        .unwrap();
        let err = format!("{:#}", load(&path).unwrap_err());
        assert!(
            err.starts_with(&format!("{}:2:", path.display())) && err.contains("truncated"),
            "{err}"
        );
        std::fs::write(&path, "{\"format\": 1,\n  oops}").unwrap();
        let err = format!("{:#}", load(&path).unwrap_err());
        assert!(
            err.starts_with(&format!("{}:2:3: not a model file (invalid JSON: ", path.display())),
            "{err}"
        );
    }

    #[test]
    fn a_snapshot_with_a_non_finite_number_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.json");
        std::fs::write(&path, "previous model\n").unwrap();
        let file = ModelFile {
            format: MODEL_FORMAT,
            use_case_file: "uc.toml".into(),
            use_case: String::new(),
            rounds: 1,
            snapshot: Snapshot::capture(offerloop_domain::usecase::Algorithm::LinTs, 7, &vec![1.0, f64::NAN]),
        };
        let err = format!("{:#}", save(&path, &file).unwrap_err());
        assert_eq!(
            err,
            format!(
                "{}: the model was not saved: model snapshot: the lin_ts state holds NaN at `[1]`, not a finite number; it cannot be saved",
                path.display()
            )
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "previous model\n");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
