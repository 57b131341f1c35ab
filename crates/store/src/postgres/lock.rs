//! The use-case lock of a PostgreSQL store: a session-level advisory lock
//! (`pg_try_advisory_lock`) held on a connection of its own, kept inside the returned
//! [`UseCaseLock`](crate::UseCaseLock).
//!
//! The key is a stable 64-bit hash (xxh3) of the store's schema and the use case, so every process
//! and host sharing the database agrees on it, and stores in different schemas of one database never
//! block each other. PostgreSQL releases a session-level lock when its connection ends, however it
//! ends: a clean drop unlocks it at once; a killed process's socket is closed by its operating
//! system, and the server ends that session (and releases the lock) as soon as it reads the closed
//! socket; a holder whose host vanished is noticed by TCP keepalives. The holder
//! ([`LockHolder`]) is written in the table `use_case_locks`, so whoever finds the lock busy is told
//! who holds it.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::NoTls;

use super::{Bridge, PgCtx as _};
use crate::{Error, LockHolder, Result, UseCaseLock};

/// How long a release waits for the server before giving up (the connection is closed anyway,
/// which releases the lock too).
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// A held advisory lock: the connection holding it, released when dropped.
pub(crate) struct PgLock {
    /// The runtime running the connection (kept alive while the lock is held, even if the store is
    /// dropped first).
    bridge: Arc<Bridge>,
    /// The connection holding the lock (`None` once released).
    client: Option<tokio_postgres::Client>,
    /// The lock's key.
    key: i64,
    /// The use case.
    use_case: String,
    /// The holder's record as written in `use_case_locks`.
    holder: String,
}

impl std::fmt::Debug for PgLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLock")
            .field("key", &self.key)
            .field("use_case", &self.use_case)
            .field("held", &self.client.is_some())
            .finish()
    }
}

/// Takes the lock `key` of `use_case` for `holder` on a new connection made with `config`, on the
/// runtime of `bridge`.
pub(super) fn lock(
    bridge: &Arc<Bridge>,
    config: &tokio_postgres::Config,
    key: i64,
    use_case: &str,
    holder: &LockHolder,
) -> Result<UseCaseLock> {
    const OP: &str = "lock the use case";
    let text = serde_json::to_string(holder).map_err(|e| Error::Unstorable {
        what: "lock holder",
        message: e.to_string(),
    })?;
    let config = config.clone();
    let name = use_case.to_owned();
    let record = text.clone();
    let client = bridge.run(OP, async move {
        let (client, connection) = config.connect(NoTls).await.ctx(OP)?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "the connection of a use-case lock ended with an error");
            }
        });
        let locked: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await
            .ctx(OP)?
            .get(0);
        let current = client
            .query_opt("SELECT holder FROM use_case_locks WHERE use_case = $1", &[&name])
            .await
            .ctx("read the use case lock's holder")?
            .and_then(|row| serde_json::from_str::<LockHolder>(row.get(0)).ok());
        if !locked {
            // Dropping the client closes its connection.
            return Err(Error::Locked {
                use_case: name,
                holder: current.map(Box::new),
                path: None,
            });
        }
        if let Some(previous) = current {
            // Whoever wrote it no longer holds the lock: its connection ended without a clean release
            // (a killed process), since a clean release deletes the record first.
            tracing::warn!(use_case = %name, %previous, "took over a lock left by a process that is no longer running");
        }
        client
            .execute(
                "INSERT INTO use_case_locks (use_case, holder) VALUES ($1, $2) \
                 ON CONFLICT (use_case) DO UPDATE SET holder = excluded.holder",
                &[&name, &record],
            )
            .await
            .ctx("record the use case lock's holder")?;
        Ok(client)
    })?;
    Ok(UseCaseLock::postgres(
        use_case,
        PgLock {
            bridge: Arc::clone(bridge),
            client: Some(client),
            key,
            use_case: use_case.to_owned(),
            holder: text,
        },
    ))
}

/// A clean release deletes the holder's record, then unlocks, then closes the connection, and waits
/// for the server (bounded), so that the lock is free when the guard is gone.
impl Drop for PgLock {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let key = self.key;
        let use_case = std::mem::take(&mut self.use_case);
        let holder = std::mem::take(&mut self.holder);
        let released = self.bridge.run("release the use case lock", async move {
            let release = async {
                client
                    .execute(
                        "DELETE FROM use_case_locks WHERE use_case = $1 AND holder = $2",
                        &[&use_case, &holder],
                    )
                    .await?;
                client.execute("SELECT pg_advisory_unlock($1)", &[&key]).await
            };
            let outcome = tokio::time::timeout(RELEASE_TIMEOUT, release).await;
            drop(client);
            match outcome {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err("timed out".to_owned()),
            }
            .or_else(|message| {
                // The connection is closed anyway, which releases the lock on the server.
                tracing::warn!(%message, "the use case lock was not released cleanly; closing its connection");
                Ok(())
            })
        });
        if let Err(error) = released {
            tracing::warn!(%error, "the use case lock was not released cleanly");
        }
    }
}
