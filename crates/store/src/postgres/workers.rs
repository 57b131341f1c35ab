//! The PostgreSQL side of a day shared by workers (the crate's `workers` module): shard plans, shard
//! leases and the worker registry.
//!
//! A lease is one statement: the lowest open (or expired) shard is picked with
//! `SELECT … ORDER BY shard LIMIT 1 FOR UPDATE SKIP LOCKED` and updated in place, its token
//! incremented. Two workers leasing at once never wait on each other: each skips the row the other
//! has locked, and a row leased by a transaction that committed meanwhile is re-checked against the
//! condition (READ COMMITTED re-reads the newest version of a locked row), so it is never taken
//! twice. Renewals and completions name the token they hold: an older token changes nothing and is
//! [`Error::LeaseLost`].

use std::time::Duration;

use jiff::Timestamp;
use offerloop_domain::Decision;

use super::codec::{self, DECISION_COLUMNS};
use super::{PgCtx as _, PostgresStore, chunks, connection, execute, query, query_opt, require_run};
use crate::{AudienceRow, Error, Result, ShardLease, ShardPlan, ShardRecord, ShardState, WorkerRecord};

/// A stored shard number or count read back.
fn shard_number(what: &'static str, value: i64) -> Result<u32> {
    u32::try_from(value).map_err(|e| codec::corrupt(what, e))
}

/// The error of a renewal or completion with a lease that is no longer the shard's.
fn lease_lost(lease: &ShardLease) -> Error {
    Error::LeaseLost {
        run_id: lease.run_id,
        shard: lease.shard,
        holder: lease.holder.clone(),
        token: lease.token,
    }
}

/// The shard plan of `run_id`, if any.
async fn read_plan(client: &impl deadpool_postgres::GenericClient, run_id: i64) -> Result<Option<ShardPlan>> {
    query_opt(
        client,
        "read the shard plan",
        "SELECT shards, shard_size, customers, model_version, fingerprint, planned_at, prepared \
         FROM shard_plans WHERE run_id = $1",
        &[&run_id],
    )
    .await?
    .map(|row| {
        let shard_size: i64 = codec::get(&row, 1, "shard size")?;
        let customers: i64 = codec::get(&row, 2, "customers")?;
        Ok(ShardPlan {
            run_id,
            shards: shard_number("shard count", codec::get(&row, 0, "shard count")?)?,
            shard_size: u64::try_from(shard_size).map_err(|e| codec::corrupt("shard size", e))?,
            customers: u64::try_from(customers).map_err(|e| codec::corrupt("customers", e))?,
            model_version: codec::get(&row, 3, "model version")?,
            fingerprint: codec::get(&row, 4, "use case fingerprint")?,
            planned_at: codec::read_time("shard plan time", codec::get(&row, 5, "shard plan time")?)?,
            prepared: codec::read_json("shard plan summary", codec::get(&row, 6, "shard plan summary")?)?,
        })
    })
    .transpose()
}

impl PostgresStore {
    pub(super) fn pg_audience_range(&self, run_id: i64, offset: u64, limit: u64) -> Result<Vec<AudienceRow>> {
        const OP: &str = "read the audience";
        let offset = codec::unsigned(offset);
        let limit = codec::unsigned(limit);
        self.read(OP, move |client| async move {
            query(
                &client,
                OP,
                "SELECT customer_id, features, time_zone FROM audience WHERE run_id = $1 \
                 ORDER BY seq OFFSET $2 LIMIT $3",
                &[&run_id, &offset, &limit],
                |row| {
                    Ok(AudienceRow {
                        customer_id: codec::get(row, 0, "audience customer")?,
                        features: codec::get(row, 1, "audience features")?,
                        time_zone: codec::get(row, 2, "audience time zone")?,
                    })
                },
            )
            .await
        })
    }

    pub(super) fn pg_decisions_by_id(&self, ids: &[String]) -> Result<Vec<Decision>> {
        const OP: &str = "read decisions by id";
        let ids = ids.to_vec();
        self.read(OP, move |client| async move {
            let mut found = Vec::with_capacity(ids.len());
            for r in chunks(ids.len()) {
                found.extend(
                    query(
                        &client,
                        OP,
                        &format!("SELECT {DECISION_COLUMNS} FROM decisions d WHERE d.id = ANY($1::text[])"),
                        &[&&ids[r]],
                        codec::decision,
                    )
                    .await?,
                );
            }
            Ok(found)
        })
    }

    pub(super) fn pg_plan_shards(&self, plan: &ShardPlan) -> Result<ShardPlan> {
        const OP: &str = "plan shards";
        let planned_at = codec::time("shard plan time", plan.planned_at)?;
        let prepared = codec::json("shard plan summary", &plan.prepared)?;
        let plan = plan.clone();
        let pool = self.pool();
        self.bridge.run(OP, async move {
            let mut client = connection(&pool, OP).await?;
            let tx = client.transaction().await.ctx(OP)?;
            require_run(&tx, plan.run_id).await?;
            // A concurrent planner of the same run makes this insert wait for its commit, then do
            // nothing: its plan is the one returned.
            let inserted = execute(
                &tx,
                OP,
                "INSERT INTO shard_plans (run_id, shards, shard_size, customers, model_version, fingerprint, \
                 planned_at, prepared) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (run_id) DO NOTHING",
                &[
                    &plan.run_id,
                    &i64::from(plan.shards),
                    &codec::unsigned(plan.shard_size),
                    &codec::unsigned(plan.customers),
                    &plan.model_version,
                    &plan.fingerprint,
                    &planned_at,
                    &prepared,
                ],
            )
            .await?;
            if inserted == 0 {
                let existing = read_plan(&tx, plan.run_id).await?.ok_or_else(|| Error::NotFound {
                    what: "shard plan",
                    id: plan.run_id.to_string(),
                })?;
                return Ok(existing);
            }
            // The day's audience was just bulk-loaded, before autovacuum's next look at the table:
            // without fresh statistics the planner estimates a run's audience at a few thousand rows
            // and reads every shard's range by sorting the whole day's audience (2.8 s a shard for a
            // million customers, against 0.03–0.6 s by the index once analysed).
            execute(&tx, OP, "ANALYZE audience", &[]).await?;
            execute(
                &tx,
                OP,
                "INSERT INTO shards (run_id, shard, state) SELECT $1, g, 'open' FROM generate_series(0::bigint, $2::bigint - 1) AS g",
                &[&plan.run_id, &i64::from(plan.shards)],
            )
            .await?;
            tx.commit().await.ctx(OP)?;
            Ok(plan)
        })
    }

    pub(super) fn pg_shard_plan(&self, run_id: i64) -> Result<Option<ShardPlan>> {
        self.read("read the shard plan", move |client| async move {
            read_plan(&client, run_id).await
        })
    }

    pub(super) fn pg_lease_shard(
        &self,
        run_id: i64,
        holder: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Option<ShardLease>> {
        const OP: &str = "lease a shard";
        let now_nanos = codec::time("lease time", now)?;
        let expires_at = codec::expiry(now, ttl);
        let expires_nanos = codec::time("lease expiry", expires_at)?;
        let holder = holder.to_owned();
        self.read(OP, move |client| async move {
            let row = query_opt(
                &client,
                OP,
                "UPDATE shards s SET state = 'leased', holder = $2, expires_at = $4, token = s.token + 1 \
                 FROM (SELECT shard, state FROM shards \
                       WHERE run_id = $1 AND (state = 'open' OR (state = 'leased' AND expires_at < $3)) \
                       ORDER BY shard LIMIT 1 FOR UPDATE SKIP LOCKED) AS free \
                 WHERE s.run_id = $1 AND s.shard = free.shard \
                 RETURNING s.shard, s.token, free.state",
                &[&run_id, &holder, &now_nanos, &expires_nanos],
            )
            .await?;
            row.map(|row| {
                let previous: &str = codec::get(&row, 2, "shard state")?;
                Ok(ShardLease {
                    run_id,
                    shard: shard_number("shard number", codec::get(&row, 0, "shard number")?)?,
                    token: codec::get(&row, 1, "lease token")?,
                    taken_over: previous == ShardState::Leased.as_str(),
                    holder,
                    expires_at,
                })
            })
            .transpose()
        })
    }

    pub(super) fn pg_renew_shard(&self, lease: &ShardLease, ttl: Duration, now: Timestamp) -> Result<ShardLease> {
        const OP: &str = "renew a shard lease";
        let expires_at = codec::expiry(now, ttl);
        let expires_nanos = codec::time("lease expiry", expires_at)?;
        let lease = lease.clone();
        self.read(OP, move |client| async move {
            let changed = execute(
                &client,
                OP,
                "UPDATE shards SET expires_at = $4 \
                 WHERE run_id = $1 AND shard = $2 AND token = $3 AND state = 'leased'",
                &[&lease.run_id, &i64::from(lease.shard), &lease.token, &expires_nanos],
            )
            .await?;
            if changed == 0 {
                return Err(lease_lost(&lease));
            }
            Ok(ShardLease { expires_at, ..lease })
        })
    }

    pub(super) fn pg_complete_shard(
        &self,
        lease: &ShardLease,
        summary: &serde_json::Value,
        now: Timestamp,
    ) -> Result<()> {
        const OP: &str = "complete a shard";
        let now = codec::time("shard completion time", now)?;
        let summary = codec::json("shard summary", summary)?;
        let lease = lease.clone();
        self.read(OP, move |client| async move {
            let changed = execute(
                &client,
                OP,
                "UPDATE shards SET state = 'done', done_at = $4, summary = $5, expires_at = NULL \
                 WHERE run_id = $1 AND shard = $2 AND token = $3 AND state = 'leased'",
                &[&lease.run_id, &i64::from(lease.shard), &lease.token, &now, &summary],
            )
            .await?;
            if changed == 0 {
                return Err(lease_lost(&lease));
            }
            Ok(())
        })
    }

    pub(super) fn pg_shards(&self, run_id: i64) -> Result<Vec<ShardRecord>> {
        const OP: &str = "read shards";
        self.read(OP, move |client| async move {
            query(
                &client,
                OP,
                "SELECT shard, state, holder, expires_at, token, done_at, summary FROM shards \
                 WHERE run_id = $1 ORDER BY shard",
                &[&run_id],
                |row| {
                    let state: &str = codec::get(row, 1, "shard state")?;
                    let summary: Option<&str> = codec::get(row, 6, "shard summary")?;
                    Ok(ShardRecord {
                        run_id,
                        shard: shard_number("shard number", codec::get(row, 0, "shard number")?)?,
                        state: ShardState::parse(state).ok_or_else(|| codec::corrupt("shard state", state))?,
                        holder: codec::get(row, 2, "shard holder")?,
                        expires_at: codec::read_opt_time("lease expiry", codec::get(row, 3, "lease expiry")?)?,
                        token: codec::get(row, 4, "lease token")?,
                        done_at: codec::read_opt_time(
                            "shard completion time",
                            codec::get(row, 5, "shard completion time")?,
                        )?,
                        summary: summary.map(|s| codec::read_json("shard summary", s)).transpose()?,
                    })
                },
            )
            .await
        })
    }

    pub(super) fn pg_report_worker(&self, worker: &WorkerRecord) -> Result<()> {
        const OP: &str = "report a worker";
        let started_at = codec::time("worker start", worker.started_at)?;
        let last_seen = codec::time("worker report time", worker.last_seen)?;
        let worker = worker.clone();
        self.read(OP, move |client| async move {
            execute(
                &client,
                OP,
                "INSERT INTO workers (id, use_case, host, pid, started_at, last_seen, status) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, status = excluded.status, \
                 use_case = excluded.use_case",
                &[
                    &worker.id,
                    &worker.use_case,
                    &worker.host,
                    &i64::from(worker.pid),
                    &started_at,
                    &last_seen,
                    &worker.status,
                ],
            )
            .await?;
            Ok(())
        })
    }

    pub(super) fn pg_workers(&self, limit: usize) -> Result<Vec<WorkerRecord>> {
        const OP: &str = "read workers";
        let limit = codec::count(limit);
        self.read(OP, move |client| async move {
            query(
                &client,
                OP,
                "SELECT id, use_case, host, pid, started_at, last_seen, status FROM workers \
                 ORDER BY last_seen DESC, id LIMIT $1",
                &[&limit],
                |row| {
                    let pid: i64 = codec::get(row, 3, "worker pid")?;
                    Ok(WorkerRecord {
                        id: codec::get(row, 0, "worker id")?,
                        use_case: codec::get(row, 1, "worker use case")?,
                        host: codec::get(row, 2, "worker host")?,
                        pid: u32::try_from(pid).map_err(|e| codec::corrupt("worker pid", e))?,
                        started_at: codec::read_time("worker start", codec::get(row, 4, "worker start")?)?,
                        last_seen: codec::read_time("worker report time", codec::get(row, 5, "worker report time")?)?,
                        status: codec::get(row, 6, "worker status")?,
                    })
                },
            )
            .await
        })
    }
}
