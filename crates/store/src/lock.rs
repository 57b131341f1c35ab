//! One runner per use case and store: [`UseCaseLock`], taken by `offerloop run`, `report` and
//! `templates sync` before they touch a use case's state, so two of them never interleave.
//!
//! [`SqliteStore`](crate::SqliteStore) locks a file beside the database
//! (`<store>.locks/<use case>.lock`) with an exclusive advisory lock (`flock` on Unix, `LockFileEx`
//! on Windows) and writes its [`LockHolder`] into it. The operating system releases the lock when
//! its process ends, however it ends, so a lock left by a killed process is taken over by the next
//! runner without any expiry to wait for or guess (the previous holder is logged). The lock is
//! local to the hosts that share the file's lock manager: on a network file system without working
//! `flock`, run one host per store. An in-memory store locks within its own process.
//!
//! [`PostgresStore`](crate::PostgresStore) takes a session-level advisory lock of the database on a
//! connection of its own, kept inside the [`UseCaseLock`], and writes its [`LockHolder`] in a table:
//! the server releases it when that connection ends, however its process ends, so it works across
//! hosts (see `postgres::lock`).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Who holds (or asks for) a use case's lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// What runs, for people (`offerloop run`, `offerloop report`, ...).
    pub command: String,
    /// Its process id.
    pub pid: u32,
    /// The host it runs on.
    pub host: String,
    /// Since when it holds the lock.
    pub since: Timestamp,
}

impl LockHolder {
    /// This process, running `command`, from `since`.
    pub fn this_process(command: impl Into<String>, since: Timestamp) -> Self {
        Self {
            command: command.into(),
            pid: std::process::id(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            since,
        }
    }
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` (pid {} on host {}, since {})",
            self.command, self.pid, self.host, self.since
        )
    }
}

/// A held lock of one use case in one store; released when dropped (or when its process ends).
#[derive(Debug)]
pub struct UseCaseLock {
    use_case: String,
    held: Held,
}

impl UseCaseLock {
    /// The use case it locks.
    pub fn use_case(&self) -> &str {
        &self.use_case
    }
}

/// What keeps the lock held.
#[derive(Debug)]
enum Held {
    /// An open, locked file: closing it releases the lock.
    File(File),
    /// An entry in an in-memory store's table, removed on drop.
    Memory(#[allow(dead_code, reason = "held for its Drop")] MemoryLock),
    /// A PostgreSQL advisory lock held by a connection of its own, released on drop.
    Postgres(#[allow(dead_code, reason = "held for its Drop")] crate::postgres::PgLock),
}

impl UseCaseLock {
    /// The lock of `use_case` held by a PostgreSQL connection.
    pub(crate) fn postgres(use_case: &str, lock: crate::postgres::PgLock) -> Self {
        Self {
            use_case: use_case.to_owned(),
            held: Held::Postgres(lock),
        }
    }
}

/// The locks of one in-memory store.
pub(crate) type MemoryLocks = Arc<Mutex<HashMap<String, LockHolder>>>;

#[derive(Debug)]
struct MemoryLock {
    table: MemoryLocks,
    use_case: String,
}

impl Drop for MemoryLock {
    fn drop(&mut self) {
        self.table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.use_case);
    }
}

/// Takes the lock of `use_case` in an in-memory store's table.
pub(crate) fn lock_in_memory(table: &MemoryLocks, use_case: &str, holder: &LockHolder) -> Result<UseCaseLock> {
    let mut locks = table.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(current) = locks.get(use_case) {
        return Err(Error::Locked {
            use_case: use_case.to_owned(),
            holder: Some(Box::new(current.clone())),
            path: None,
        });
    }
    locks.insert(use_case.to_owned(), holder.clone());
    Ok(UseCaseLock {
        use_case: use_case.to_owned(),
        held: Held::Memory(MemoryLock {
            table: Arc::clone(table),
            use_case: use_case.to_owned(),
        }),
    })
}

/// The lock file of `use_case` for the database at `database`.
pub fn lock_path(database: &Path, use_case: &str) -> PathBuf {
    let mut dir = database.as_os_str().to_owned();
    dir.push(".locks");
    PathBuf::from(dir).join(format!("{}.lock", file_name(use_case)))
}

/// A file name for a use case name: its safe characters, and a hash of the whole name when any
/// character had to be replaced (so two names never share a file).
fn file_name(use_case: &str) -> String {
    let safe: String = use_case
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe == use_case && !safe.is_empty() {
        safe
    } else {
        format!("{safe}-{:016x}", xxhash_rust::xxh3::xxh3_64(use_case.as_bytes()))
    }
}

/// Takes the file lock of `use_case` beside the store file `database` (the lock
/// [`SqliteStore::lock_use_case`](crate::SqliteStore) takes), without opening the store: for a
/// command that changes a use case's Braze objects but not its state (`templates sync`).
///
/// # Errors
/// [`Error::Locked`] naming the holder; an I/O error when the lock file cannot be made.
pub fn lock_file(database: &Path, use_case: &str, holder: &LockHolder) -> Result<UseCaseLock> {
    let path = lock_path(database, use_case);
    let io = |source| Error::Open {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(Error::Locked {
                use_case: use_case.to_owned(),
                holder: read_holder(&mut file).map(Box::new),
                path: Some(path),
            });
        }
        Err(std::fs::TryLockError::Error(source)) => return Err(io(source)),
    }
    if let Some(previous) = read_holder(&mut file) {
        // Whoever wrote it has released the lock: its process ended (or it dropped the lock without
        // clearing the file, which it never does on a clean exit).
        tracing::warn!(use_case, %previous, "took over a lock left by a process that is no longer running");
    }
    let text = serde_json::to_string(holder).map_err(|e| Error::Unstorable {
        what: "lock holder",
        message: e.to_string(),
    })?;
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_data().map_err(io)?;
    Ok(UseCaseLock {
        use_case: use_case.to_owned(),
        held: Held::File(file),
    })
}

/// The holder written in a lock file, if it can be read.
fn read_holder(file: &mut File) -> Option<LockHolder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(64 * 1024).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// A clean release empties the lock file before unlocking it, so the next holder does not report a
/// takeover.
impl Drop for UseCaseLock {
    fn drop(&mut self) {
        if let Held::File(file) = &self.held {
            // Best effort: a failure only makes the next holder log a takeover.
            let _ = file.set_len(0);
            let _ = file.unlock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_case_names_map_to_distinct_safe_file_names() {
        assert_eq!(file_name("winback"), "winback");
        assert_eq!(file_name("cross-sell_2"), "cross-sell_2");
        let odd = file_name("win back/../x");
        assert!(odd.starts_with("win_back____x-"), "{odd}");
        assert_ne!(file_name("a b"), file_name("a_b"));
        assert_ne!(file_name("a b"), file_name("a.b"));
    }
}
