//! The SQLite side of a day shared by workers (the crate's `workers` module): shard plans, shard
//! leases and the worker registry. SQLite has no `SKIP LOCKED`: a lease is taken inside one
//! `IMMEDIATE` transaction, which holds the database's single write lock, so two workers (threads or
//! processes on one host) never take the same shard.

use std::time::Duration;

use jiff::Timestamp;
use offerloop_domain::Decision;
use rusqlite::{OptionalExtension as _, params};

use super::codec::{self, DECISION_COLUMNS, RawDecision};
use super::{Ctx as _, SqliteStore, collect, require_run};
use crate::{AudienceRow, Error, Result, ShardLease, ShardPlan, ShardRecord, ShardState, WorkerRecord};

/// Decision ids looked up per statement (SQLite's default limit of bound parameters is 32,766).
const IDS_PER_QUERY: usize = 10_000;

/// `now + ttl`, saturating.
fn expiry(now: Timestamp, ttl: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(ttl)
        .ok()
        .and_then(|ttl| now.checked_add(ttl).ok())
        .unwrap_or(Timestamp::MAX)
}

fn shard_number(what: &'static str, value: i64) -> Result<u32> {
    u32::try_from(value).map_err(|e| codec::corrupt(what, e))
}

fn lease_lost(lease: &ShardLease) -> Error {
    Error::LeaseLost {
        run_id: lease.run_id,
        shard: lease.shard,
        holder: lease.holder.clone(),
        token: lease.token,
    }
}

impl SqliteStore {
    pub(super) fn sqlite_audience_range(&self, run_id: i64, offset: u64, limit: u64) -> Result<Vec<AudienceRow>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT customer_id, features, time_zone FROM audience WHERE run_id = ?1 \
                 ORDER BY rowid LIMIT ?2 OFFSET ?3",
            )
            .ctx("read an audience range")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![run_id, limit, offset], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get(2)?))
            })
            .ctx("read an audience range")?;
        collect(rows, "read an audience range", |(customer_id, features, time_zone)| {
            Ok(AudienceRow {
                customer_id,
                features,
                time_zone,
            })
        })
    }

    pub(super) fn sqlite_decisions_by_id(&self, ids: &[String]) -> Result<Vec<Decision>> {
        let conn = self.conn();
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {DECISION_COLUMNS} FROM decisions d WHERE d.id IN ({marks})"
                ))
                .ctx("read decisions by id")?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(chunk.iter()), RawDecision::read)
                .ctx("read decisions by id")?;
            found.extend(collect(rows, "read decisions by id", RawDecision::decode)?);
        }
        Ok(found)
    }

    pub(super) fn sqlite_plan_shards(&self, plan: &ShardPlan) -> Result<ShardPlan> {
        let planned_at = codec::time("shard plan time", plan.planned_at)?;
        let prepared = codec::json("shard plan summary", &plan.prepared)?;
        self.write("plan shards", |tx| {
            require_run(tx, plan.run_id)?;
            if let Some(existing) = read_plan(tx, plan.run_id)? {
                return Ok(existing);
            }
            tx.execute(
                "INSERT INTO shard_plans (run_id, shards, shard_size, customers, model_version, fingerprint, planned_at, prepared) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    plan.run_id,
                    plan.shards,
                    i64::try_from(plan.shard_size).unwrap_or(i64::MAX),
                    i64::try_from(plan.customers).unwrap_or(i64::MAX),
                    plan.model_version,
                    plan.fingerprint,
                    planned_at,
                    prepared
                ],
            )
            .ctx("plan shards")?;
            let mut stmt = tx
                .prepare_cached("INSERT INTO shards (run_id, shard, state) VALUES (?1, ?2, 'open')")
                .ctx("plan shards")?;
            for shard in 0..plan.shards {
                stmt.execute(params![plan.run_id, shard]).ctx("plan shards")?;
            }
            Ok(plan.clone())
        })
    }

    pub(super) fn sqlite_shard_plan(&self, run_id: i64) -> Result<Option<ShardPlan>> {
        read_plan(&self.conn(), run_id)
    }

    pub(super) fn sqlite_lease_shard(
        &self,
        run_id: i64,
        holder: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Option<ShardLease>> {
        let now_nanos = codec::time("lease time", now)?;
        let expires_at = expiry(now, ttl);
        let expires_nanos = codec::time("lease expiry", expires_at)?;
        self.write("lease a shard", |tx| {
            let free: Option<(i64, i64, String)> = tx
                .query_row(
                    "SELECT shard, token, state FROM shards WHERE run_id = ?1 \
                     AND (state = 'open' OR (state = 'leased' AND expires_at < ?2)) ORDER BY shard LIMIT 1",
                    params![run_id, now_nanos],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()
                .ctx("lease a shard")?;
            let Some((shard, token, state)) = free else {
                return Ok(None);
            };
            let token = token + 1;
            tx.execute(
                "UPDATE shards SET state = 'leased', holder = ?3, expires_at = ?4, token = ?5 \
                 WHERE run_id = ?1 AND shard = ?2",
                params![run_id, shard, holder, expires_nanos, token],
            )
            .ctx("lease a shard")?;
            Ok(Some(ShardLease {
                run_id,
                shard: shard_number("shard number", shard)?,
                holder: holder.to_owned(),
                token,
                expires_at,
                taken_over: state == "leased",
            }))
        })
    }

    pub(super) fn sqlite_renew_shard(&self, lease: &ShardLease, ttl: Duration, now: Timestamp) -> Result<ShardLease> {
        let expires_at = expiry(now, ttl);
        let expires_nanos = codec::time("lease expiry", expires_at)?;
        self.write("renew a shard lease", |tx| {
            let changed = tx
                .execute(
                    "UPDATE shards SET expires_at = ?4 \
                     WHERE run_id = ?1 AND shard = ?2 AND token = ?3 AND state = 'leased'",
                    params![lease.run_id, lease.shard, lease.token, expires_nanos],
                )
                .ctx("renew a shard lease")?;
            if changed == 0 {
                return Err(lease_lost(lease));
            }
            Ok(ShardLease {
                expires_at,
                ..lease.clone()
            })
        })
    }

    pub(super) fn sqlite_complete_shard(
        &self,
        lease: &ShardLease,
        summary: &serde_json::Value,
        now: Timestamp,
    ) -> Result<()> {
        let now = codec::time("shard completion time", now)?;
        let summary = codec::json("shard summary", summary)?;
        self.write("complete a shard", |tx| {
            let changed = tx
                .execute(
                    "UPDATE shards SET state = 'done', done_at = ?4, summary = ?5, expires_at = NULL \
                     WHERE run_id = ?1 AND shard = ?2 AND token = ?3 AND state = 'leased'",
                    params![lease.run_id, lease.shard, lease.token, now, summary],
                )
                .ctx("complete a shard")?;
            if changed == 0 {
                return Err(lease_lost(lease));
            }
            Ok(())
        })
    }

    pub(super) fn sqlite_shards(&self, run_id: i64) -> Result<Vec<ShardRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT shard, state, holder, expires_at, token, done_at, summary FROM shards \
                 WHERE run_id = ?1 ORDER BY shard",
            )
            .ctx("read shards")?;
        let rows = stmt
            .query_map([run_id], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, Option<i64>>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, Option<i64>>(5)?,
                    row.get::<_, Option<String>>(6)?,
                ))
            })
            .ctx("read shards")?;
        collect(
            rows,
            "read shards",
            |(shard, state, holder, expires_at, token, done_at, summary)| {
                Ok(ShardRecord {
                    run_id,
                    shard: shard_number("shard number", shard)?,
                    state: ShardState::parse(&state).ok_or_else(|| codec::corrupt("shard state", &state))?,
                    holder,
                    expires_at: codec::read_opt_time("lease expiry", expires_at)?,
                    token,
                    done_at: codec::read_opt_time("shard completion time", done_at)?,
                    summary: summary.map(|s| codec::read_json("shard summary", &s)).transpose()?,
                })
            },
        )
    }

    pub(super) fn sqlite_report_worker(&self, worker: &WorkerRecord) -> Result<()> {
        let started_at = codec::time("worker start", worker.started_at)?;
        let last_seen = codec::time("worker report time", worker.last_seen)?;
        self.write("report a worker", |tx| {
            tx.execute(
                "INSERT INTO workers (id, use_case, host, pid, started_at, last_seen, status) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, status = excluded.status, \
                 use_case = excluded.use_case",
                params![
                    worker.id,
                    worker.use_case,
                    worker.host,
                    worker.pid,
                    started_at,
                    last_seen,
                    worker.status
                ],
            )
            .ctx("report a worker")?;
            Ok(())
        })
    }

    pub(super) fn sqlite_workers(&self, limit: usize) -> Result<Vec<WorkerRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, use_case, host, pid, started_at, last_seen, status FROM workers \
                 ORDER BY last_seen DESC, id LIMIT ?1",
            )
            .ctx("read workers")?;
        let rows = stmt
            .query_map([codec::count(limit)], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, i64>(5)?,
                    row.get::<_, String>(6)?,
                ))
            })
            .ctx("read workers")?;
        collect(
            rows,
            "read workers",
            |(id, use_case, host, pid, started_at, last_seen, status)| {
                Ok(WorkerRecord {
                    id,
                    use_case,
                    host,
                    pid: u32::try_from(pid).map_err(|e| codec::corrupt("worker pid", e))?,
                    started_at: codec::read_time("worker start", started_at)?,
                    last_seen: codec::read_time("worker report time", last_seen)?,
                    status,
                })
            },
        )
    }
}

/// The shard plan of `run_id`, if any.
fn read_plan(conn: &rusqlite::Connection, run_id: i64) -> Result<Option<ShardPlan>> {
    type Raw = (i64, i64, i64, String, String, i64, String);
    let raw: Option<Raw> = conn
        .query_row(
            "SELECT shards, shard_size, customers, model_version, fingerprint, planned_at, prepared \
             FROM shard_plans WHERE run_id = ?1",
            [run_id],
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                ))
            },
        )
        .optional()
        .ctx("read the shard plan")?;
    raw.map(
        |(shards, shard_size, customers, model_version, fingerprint, planned_at, prepared)| {
            Ok(ShardPlan {
                run_id,
                shards: shard_number("shard count", shards)?,
                shard_size: u64::try_from(shard_size).map_err(|e| codec::corrupt("shard size", e))?,
                customers: u64::try_from(customers).map_err(|e| codec::corrupt("customers", e))?,
                model_version,
                fingerprint,
                planned_at: codec::read_time("shard plan time", planned_at)?,
                prepared: codec::read_json("shard plan summary", &prepared)?,
            })
        },
    )
    .transpose()
}
