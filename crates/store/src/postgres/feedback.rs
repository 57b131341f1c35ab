//! The PostgreSQL side of outcomes, rewards, learning marks, delivery records, models and drift
//! alerts (the SQLite store's semantics, statement for statement: see `sqlite.rs`).

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use offerloop_domain::{CustomerId, Outcome, Reward, RewardStatus};

use super::codec::{self, DECISION_COLUMNS, DECISION_WIDTH};
use super::{PgCtx as _, PostgresStore, chunks, connection, execute, first_missing_decision, query, query_opt};
use crate::{DeliveryRecord, DeliveryStatus, DriftAlertRecord, Error, FeedbackRow, ModelRecord, Result};

/// The values of `decisions.learned` (as in the SQLite store's schema version 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Learned {
    /// Not learned yet.
    No = 0,
    /// Learned, from a final reward or with the final reward judged by the drift detectors.
    Done = 1,
    /// Learned from a partial reward; the final reward is still to be judged by the drift detectors.
    Early = 2,
}

/// Outcomes as columns.
struct OutcomeColumns {
    dedupe_key: Vec<String>,
    customer: Vec<String>,
    kind: Vec<String>,
    occurred_at: Vec<i64>,
    value: Vec<f64>,
}

impl OutcomeColumns {
    /// The columns of `outcomes`, or the first reason one of them cannot be stored.
    fn new(outcomes: &[Outcome]) -> Result<Self> {
        let mut columns = Self {
            dedupe_key: Vec::with_capacity(outcomes.len()),
            customer: Vec::with_capacity(outcomes.len()),
            kind: Vec::with_capacity(outcomes.len()),
            occurred_at: Vec::with_capacity(outcomes.len()),
            value: Vec::with_capacity(outcomes.len()),
        };
        for outcome in outcomes {
            if outcome.value.is_nan() {
                return Err(Error::Unstorable {
                    what: "outcome value",
                    message: format!("outcome `{}` has value NaN", outcome.dedupe_key),
                });
            }
            columns.kind.push(codec::json("outcome kind", &outcome.kind)?);
            columns
                .occurred_at
                .push(codec::time("outcome time", outcome.occurred_at)?);
            columns.dedupe_key.push(outcome.dedupe_key.clone());
            columns.customer.push(outcome.customer_id.as_str().to_owned());
            columns.value.push(outcome.value);
        }
        Ok(columns)
    }

    /// Inserts them for `use_case`, ignoring those whose `dedupe_key` is stored; returns how many
    /// were new.
    async fn insert(&self, tx: &deadpool_postgres::Transaction<'_>, use_case: &str) -> Result<u64> {
        const OP: &str = "record outcomes";
        let mut new = 0;
        for r in chunks(self.dedupe_key.len()) {
            new += execute(
                tx,
                OP,
                "INSERT INTO outcomes (use_case, dedupe_key, customer_id, kind, occurred_at, value) \
                 SELECT $1, u.dedupe_key, u.customer_id, u.kind, u.occurred_at, u.value \
                 FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::float8[]) WITH ORDINALITY \
                 AS u(dedupe_key, customer_id, kind, occurred_at, value, n) \
                 ORDER BY u.n ON CONFLICT (use_case, dedupe_key) DO NOTHING",
                &[
                    &use_case,
                    &&self.dedupe_key[r.clone()],
                    &&self.customer[r.clone()],
                    &&self.kind[r.clone()],
                    &&self.occurred_at[r.clone()],
                    &&self.value[r],
                ],
            )
            .await?;
        }
        Ok(new)
    }
}

/// A count of rows as the trait returns it.
fn rows(count: u64) -> Result<usize> {
    usize::try_from(count).map_err(|e| codec::corrupt("row count", e))
}

impl PostgresStore {
    pub(super) fn pg_record_outcomes(&self, use_case: &str, outcomes: &[Outcome]) -> Result<usize> {
        const OP: &str = "record outcomes";
        let columns = OutcomeColumns::new(outcomes)?;
        let use_case = use_case.to_owned();
        let pool = self.pool();
        self.bridge.run(OP, async move {
            let mut client = connection(&pool, OP).await?;
            let tx = client.transaction().await.ctx(OP)?;
            let new = columns.insert(&tx, &use_case).await?;
            tx.commit().await.ctx(OP)?;
            rows(new)
        })
    }

    pub(super) fn pg_feed_keys_read(&self, use_case: &str, source: &str) -> Result<HashSet<String>> {
        const OP: &str = "read the feed checkpoint";
        let use_case = use_case.to_owned();
        let source = source.to_owned();
        self.read(OP, move |client| async move {
            let keys = query(
                &client,
                OP,
                "SELECT key FROM feed_keys WHERE use_case = $1 AND source = $2",
                &[&use_case, &source],
                |row| codec::get::<String>(row, 0, "feed key"),
            )
            .await?;
            Ok(keys.into_iter().collect())
        })
    }

    pub(super) fn pg_record_feed_outcomes(
        &self,
        use_case: &str,
        source: &str,
        keys: &[String],
        outcomes: &[Outcome],
        now: Timestamp,
    ) -> Result<usize> {
        const OP: &str = "record feed outcomes";
        let columns = OutcomeColumns::new(outcomes)?;
        let now = codec::time("feed read time", now)?;
        let use_case = use_case.to_owned();
        let source = source.to_owned();
        let keys = keys.to_vec();
        let pool = self.pool();
        self.bridge.run(OP, async move {
            let mut client = connection(&pool, OP).await?;
            let tx = client.transaction().await.ctx(OP)?;
            let new = columns.insert(&tx, &use_case).await?;
            for r in chunks(keys.len()) {
                execute(
                    &tx,
                    "record the feed checkpoint",
                    "INSERT INTO feed_keys (use_case, source, key, read_at) \
                     SELECT $1, $2, u.key, $4 FROM unnest($3::text[]) AS u(key) ON CONFLICT DO NOTHING",
                    &[&use_case, &source, &&keys[r], &now],
                )
                .await?;
            }
            tx.commit().await.ctx(OP)?;
            rows(new)
        })
    }

    pub(super) fn pg_outcomes_between(&self, use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Outcome>> {
        const OP: &str = "read outcomes";
        let use_case = use_case.to_owned();
        let (from, to) = (codec::bound(from), codec::bound(to));
        self.read(OP, move |client| async move {
            query(
                &client,
                OP,
                "SELECT customer_id, kind, occurred_at, value, dedupe_key FROM outcomes \
                 WHERE use_case = $1 AND occurred_at >= $2 AND occurred_at < $3 ORDER BY occurred_at, id",
                &[&use_case, &from, &to],
                |row| {
                    let customer: String = codec::get(row, 0, "outcome customer")?;
                    Ok(Outcome {
                        customer_id: CustomerId::new(customer)
                            .map_err(|error| codec::corrupt("outcome customer", error))?,
                        kind: codec::read_json("outcome kind", codec::get(row, 1, "outcome kind")?)?,
                        occurred_at: codec::read_time("outcome time", codec::get(row, 2, "outcome time")?)?,
                        value: codec::get(row, 3, "outcome value")?,
                        dedupe_key: codec::get(row, 4, "outcome key")?,
                    })
                },
            )
            .await
        })
    }

    /// Upserts in one statement: the rewards of one decision given several times are first merged as
    /// applying them in turn would (the last final one, else the last one), and the statement keeps
    /// a stored final reward against a pending one.
    pub(super) fn pg_upsert_rewards(&self, rewards: &[Reward]) -> Result<()> {
        const OP: &str = "store rewards";
        let nan = rewards.iter().position(|r| r.value.is_nan());
        let ids: Vec<String> = rewards.iter().map(|r| r.decision_id.clone()).collect();
        let mut merged: Vec<&Reward> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for reward in rewards {
            match index.get(reward.decision_id.as_str()) {
                Some(&at) => {
                    if merged[at].status != RewardStatus::Final || reward.status == RewardStatus::Final {
                        merged[at] = reward;
                    }
                }
                None => {
                    index.insert(&reward.decision_id, merged.len());
                    merged.push(reward);
                }
            }
        }
        // Sorted by decision, so that concurrent upserts lock rows in one order.
        merged.sort_by(|a, b| a.decision_id.cmp(&b.decision_id));
        let merged_ids: Vec<String> = merged.iter().map(|r| r.decision_id.clone()).collect();
        let values: Vec<f64> = merged.iter().map(|r| r.value).collect();
        let statuses: Vec<&'static str> = merged.iter().map(|r| codec::reward_status(r.status)).collect();
        let attributed: Vec<i64> = merged.iter().map(|r| codec::count(r.attributed_outcomes)).collect();
        let nan = nan.map(|at| (at, rewards[at].decision_id.clone()));
        let pool = self.pool();
        self.bridge.run(OP, async move {
            let mut client = connection(&pool, OP).await?;
            let tx = client.transaction().await.ctx(OP)?;
            let missing = first_missing_decision(&tx, OP, &ids).await?;
            // The first reward in the given order that cannot be stored decides the error.
            match (nan, missing) {
                (Some((at, id)), missing) if missing.as_ref().is_none_or(|(m, _)| at <= *m) => {
                    return Err(Error::Unstorable {
                        what: "reward value",
                        message: format!("the reward of decision `{id}` is NaN"),
                    });
                }
                (_, Some((_, id))) => return Err(Error::NotFound { what: "decision", id }),
                _ => {}
            }
            for r in chunks(merged_ids.len()) {
                execute(
                    &tx,
                    OP,
                    "INSERT INTO rewards (decision_id, value, status, attributed_outcomes) \
                     SELECT u.id, u.value, u.status, u.attributed \
                     FROM unnest($1::text[], $2::float8[], $3::text[], $4::bigint[]) AS u(id, value, status, attributed) \
                     ON CONFLICT (decision_id) DO UPDATE SET value = excluded.value, status = excluded.status, \
                     attributed_outcomes = excluded.attributed_outcomes \
                     WHERE rewards.status <> 'final' OR excluded.status = 'final'",
                    &[
                        &&merged_ids[r.clone()],
                        &&values[r.clone()],
                        &&statuses[r.clone()],
                        &&attributed[r],
                    ],
                )
                .await?;
            }
            tx.commit().await.ctx(OP)?;
            Ok(())
        })
    }

    pub(super) fn pg_rewards_between(&self, use_case: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Reward>> {
        const OP: &str = "read rewards";
        let use_case = use_case.to_owned();
        let (from, to) = (codec::bound(from), codec::bound(to));
        self.read(OP, move |client| async move {
            query(
                &client,
                OP,
                "SELECT r.decision_id, r.value, r.status, r.attributed_outcomes \
                 FROM rewards r JOIN decisions d ON d.id = r.decision_id \
                 WHERE d.use_case = $1 AND d.decided_at >= $2 AND d.decided_at < $3 \
                 ORDER BY d.decided_at, d.seq",
                &[&use_case, &from, &to],
                codec::reward,
            )
            .await
        })
    }

    /// Decisions of `use_case` in learning state `learned` whose reward has `status`, with the reward
    /// and the features of their run's audience row (`null` when it has none), in the order the
    /// decisions were stored.
    pub(super) fn pg_feedback(
        &self,
        use_case: &str,
        learned: Learned,
        status: RewardStatus,
    ) -> Result<Vec<FeedbackRow>> {
        let operation = match (learned, status) {
            (Learned::Early, _) => "read unmonitored feedback",
            (_, RewardStatus::Final) => "read matured feedback",
            (_, RewardStatus::Pending) => "read pending feedback",
        };
        let use_case = use_case.to_owned();
        let learned = learned as i16;
        let status = codec::reward_status(status);
        self.read(operation, move |client| async move {
            query(
                &client,
                operation,
                &format!(
                    "SELECT {DECISION_COLUMNS}, r.value, a.features \
                     FROM decisions d JOIN rewards r ON r.decision_id = d.id \
                     LEFT JOIN audience a ON a.run_id = d.run_id AND a.customer_id = d.customer_id \
                     WHERE d.use_case = $1 AND d.learned = $3 AND r.status = $2 \
                     ORDER BY d.seq"
                ),
                &[&use_case, &status, &learned],
                |row| {
                    let features: Option<String> = codec::get(row, DECISION_WIDTH + 1, "decision features")?;
                    Ok(FeedbackRow {
                        decision: codec::decision(row)?,
                        reward: codec::get(row, DECISION_WIDTH, "reward value")?,
                        features: features.unwrap_or_else(|| "null".to_owned()),
                    })
                },
            )
            .await
        })
    }

    /// Sets `learned` to `to` for the decisions among `decision_ids` whose current state matches
    /// `condition` (on `d.learned`), in one transaction.
    pub(super) fn pg_set_learned(
        &self,
        decision_ids: &[String],
        condition: &'static str,
        to: Learned,
        operation: &'static str,
    ) -> Result<()> {
        let mut ids = decision_ids.to_vec();
        // Sorted, so that concurrent marks lock rows in one order.
        ids.sort_unstable();
        ids.dedup();
        let to = to as i16;
        let pool = self.pool();
        self.bridge.run(operation, async move {
            let mut client = connection(&pool, operation).await?;
            let tx = client.transaction().await.ctx(operation)?;
            let sql = format!(
                "UPDATE decisions d SET learned = $2 FROM unnest($1::text[]) AS u(id) WHERE d.id = u.id AND {condition}"
            );
            for r in chunks(ids.len()) {
                execute(&tx, operation, &sql, &[&&ids[r], &to]).await?;
            }
            tx.commit().await.ctx(operation)?;
            Ok(())
        })
    }

    pub(super) fn pg_record_deliveries(&self, records: &[DeliveryRecord]) -> Result<usize> {
        const OP: &str = "record deliveries";
        let ids: Vec<String> = records.iter().map(|r| r.decision_id.clone()).collect();
        let statuses: Vec<&'static str> = records.iter().map(|r| r.status.as_str()).collect();
        let mut times = Vec::with_capacity(records.len());
        let mut unstorable = None;
        for (at, record) in records.iter().enumerate() {
            match codec::time("delivery time", record.noted_at) {
                Ok(time) => times.push(time),
                Err(error) => {
                    unstorable = Some((at, error));
                    break;
                }
            }
        }
        let pool = self.pool();
        self.bridge.run(OP, async move {
            let mut client = connection(&pool, OP).await?;
            let tx = client.transaction().await.ctx(OP)?;
            let missing = first_missing_decision(&tx, OP, &ids).await?;
            // The first record in the given order that cannot be stored decides the error.
            match (missing, unstorable) {
                (Some((m, id)), unstorable) if unstorable.as_ref().is_none_or(|(at, _)| m <= *at) => {
                    return Err(Error::Unstorable {
                        what: "delivery record",
                        message: format!("decision `{id}` is not stored"),
                    });
                }
                (_, Some((_, error))) => return Err(error),
                _ => {}
            }
            let mut new = 0;
            for r in chunks(ids.len()) {
                new += execute(
                    &tx,
                    OP,
                    "INSERT INTO deliveries (decision_id, status, noted_at) \
                     SELECT u.id, u.status, u.noted_at \
                     FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS u(id, status, noted_at, n) \
                     ORDER BY u.n ON CONFLICT (decision_id) DO NOTHING",
                    &[&&ids[r.clone()], &&statuses[r.clone()], &&times[r]],
                )
                .await?;
            }
            tx.commit().await.ctx(OP)?;
            rows(new)
        })
    }

    pub(super) fn pg_retract_rejections(&self, decision_ids: &[String]) -> Result<usize> {
        const OP: &str = "retract rejections";
        let mut ids = decision_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let rejected = DeliveryStatus::Rejected.as_str();
        let pool = self.pool();
        self.bridge.run(OP, async move {
            let mut client = connection(&pool, OP).await?;
            let tx = client.transaction().await.ctx(OP)?;
            let mut retracted = 0;
            for r in chunks(ids.len()) {
                let chunk = &ids[r];
                execute(
                    &tx,
                    OP,
                    "UPDATE decisions d SET learned = 0 FROM unnest($1::text[]) AS u(id) \
                     WHERE d.id = u.id AND d.learned = 1 \
                     AND EXISTS (SELECT 1 FROM deliveries x WHERE x.decision_id = d.id AND x.status = $2)",
                    &[&chunk, &rejected],
                )
                .await?;
                retracted += execute(
                    &tx,
                    OP,
                    "DELETE FROM deliveries WHERE decision_id = ANY($1::text[]) AND status = $2",
                    &[&chunk, &rejected],
                )
                .await?;
            }
            tx.commit().await.ctx(OP)?;
            rows(retracted)
        })
    }

    pub(super) fn pg_deliveries_between(
        &self,
        use_case: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<DeliveryRecord>> {
        const OP: &str = "read deliveries";
        let use_case = use_case.to_owned();
        let (from, to) = (codec::bound(from), codec::bound(to));
        self.read(OP, move |client| async move {
            query(
                &client,
                OP,
                "SELECT x.decision_id, x.status, x.noted_at FROM deliveries x JOIN decisions d ON d.id = x.decision_id \
                 WHERE d.use_case = $1 AND d.decided_at >= $2 AND d.decided_at < $3 ORDER BY d.decided_at, d.seq",
                &[&use_case, &from, &to],
                |row| {
                    let status: &str = codec::get(row, 1, "delivery status")?;
                    Ok(DeliveryRecord {
                        decision_id: codec::get(row, 0, "delivery decision")?,
                        status: DeliveryStatus::from_name(status)
                            .ok_or_else(|| codec::corrupt("delivery status", format!("unknown status `{status}`")))?,
                        noted_at: codec::read_time("delivery time", codec::get(row, 2, "delivery time")?)?,
                    })
                },
            )
            .await
        })
    }

    pub(super) fn pg_save_model(
        &self,
        use_case: &str,
        version: &str,
        snapshot: &serde_json::Value,
        now: Timestamp,
    ) -> Result<()> {
        const OP: &str = "save a model";
        let snapshot = codec::json("model snapshot", snapshot)?;
        let now = codec::time("model save time", now)?;
        let use_case = use_case.to_owned();
        let version = version.to_owned();
        self.read(OP, move |client| async move {
            execute(
                &client,
                OP,
                "INSERT INTO models (use_case, version, snapshot, saved_at) VALUES ($1, $2, $3, $4)",
                &[&use_case, &version, &snapshot, &now],
            )
            .await?;
            Ok(())
        })
    }

    /// The snapshot of `use_case` saved last (by order of saving, whatever the clock said).
    pub(super) fn pg_latest_model(&self, use_case: &str) -> Result<Option<ModelRecord>> {
        const OP: &str = "read the latest model";
        let use_case = use_case.to_owned();
        self.read(OP, move |client| async move {
            query_opt(
                &client,
                OP,
                "SELECT use_case, version, snapshot, saved_at FROM models WHERE use_case = $1 ORDER BY id DESC LIMIT 1",
                &[&use_case],
            )
            .await?
            .map(|row| {
                Ok(ModelRecord {
                    use_case: codec::get(&row, 0, "model use case")?,
                    version: codec::get(&row, 1, "model version")?,
                    snapshot: codec::read_json("model snapshot", codec::get(&row, 2, "model snapshot")?)?,
                    saved_at: codec::read_time("model save time", codec::get(&row, 3, "model save time")?)?,
                })
            })
            .transpose()
        })
    }

    /// Stores drift alerts; an alert identical to a stored one (same use case, run, dimension, option
    /// and detection time) is ignored.
    pub(super) fn pg_record_drift_alerts(&self, use_case: &str, alerts: &[DriftAlertRecord]) -> Result<()> {
        const OP: &str = "record drift alerts";
        let mut times = Vec::with_capacity(alerts.len());
        for alert in alerts {
            if alert.magnitude.is_nan() {
                return Err(Error::Unstorable {
                    what: "drift magnitude",
                    message: "NaN".to_owned(),
                });
            }
            times.push(codec::time("drift detection time", alert.detected_at)?);
        }
        let dimensions: Vec<Option<String>> = alerts.iter().map(|a| a.dimension.clone()).collect();
        let options: Vec<Option<String>> = alerts.iter().map(|a| a.option.clone()).collect();
        let magnitudes: Vec<f64> = alerts.iter().map(|a| a.magnitude).collect();
        let runs: Vec<Option<i64>> = alerts.iter().map(|a| a.run_id).collect();
        let use_case = use_case.to_owned();
        self.read(OP, move |client| async move {
            execute(
                &client,
                OP,
                "INSERT INTO drift_alerts (use_case, dimension, option_id, detected_at, magnitude, run_id) \
                 SELECT $1, u.dimension, u.option_id, u.detected_at, u.magnitude, u.run_id \
                 FROM unnest($2::text[], $3::text[], $4::bigint[], $5::float8[], $6::bigint[]) WITH ORDINALITY \
                 AS u(dimension, option_id, detected_at, magnitude, run_id, n) \
                 ORDER BY u.n ON CONFLICT DO NOTHING",
                &[&use_case, &dimensions, &options, &times, &magnitudes, &runs],
            )
            .await?;
            Ok(())
        })
    }

    pub(super) fn pg_drift_alerts(&self, use_case: &str) -> Result<Vec<DriftAlertRecord>> {
        const OP: &str = "read drift alerts";
        let use_case = use_case.to_owned();
        self.read(OP, move |client| async move {
            query(
                &client,
                OP,
                "SELECT dimension, option_id, detected_at, magnitude, run_id FROM drift_alerts \
                 WHERE use_case = $1 ORDER BY detected_at, id",
                &[&use_case],
                |row| {
                    Ok(DriftAlertRecord {
                        dimension: codec::get(row, 0, "drift dimension")?,
                        option: codec::get(row, 1, "drift option")?,
                        detected_at: codec::read_time(
                            "drift detection time",
                            codec::get(row, 2, "drift detection time")?,
                        )?,
                        magnitude: codec::get(row, 3, "drift magnitude")?,
                        run_id: codec::get(row, 4, "drift run")?,
                    })
                },
            )
            .await
        })
    }
}
