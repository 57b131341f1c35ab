//! `offerloop status`: the last runs of a use case, its unknown batches and its model version, and,
//! for a day shared by workers, its shards, their leases and the workers.

use std::fmt::Write as _;

use jiff::Timestamp;
use offerloop_store::{BatchState, ShardState, Store};

/// The status report of `use_case` in `store`, leases judged at `now`.
///
/// # Errors
/// A store error.
pub fn status_at(store: &dyn Store, use_case: &str, now: Timestamp) -> anyhow::Result<String> {
    let mut out = status(store, use_case)?;
    let runs = store.runs(use_case, 10)?;
    if let Some((run, plan)) = runs
        .iter()
        .find_map(|r| store.shard_plan(r.id).ok().flatten().map(|p| (r, p)))
    {
        shards_section(&mut out, store, run, &plan, now)?;
    }
    let workers: Vec<_> = store
        .workers(20)?
        .into_iter()
        .filter(|w| w.use_case == use_case)
        .collect();
    if !workers.is_empty() {
        let _ = writeln!(out, "workers (most recently seen first):");
        for w in workers {
            let _ = writeln!(
                out,
                "  {}  pid {} on {}  last seen {} ago  {}",
                w.id,
                w.pid,
                w.host,
                ago(now, w.last_seen),
                w.status
            );
        }
    }
    Ok(out)
}

/// The shards of the last day shared by workers, with every live or expired lease.
fn shards_section(
    out: &mut String,
    store: &dyn Store,
    run: &offerloop_store::RunRecord,
    plan: &offerloop_store::ShardPlan,
    now: Timestamp,
) -> anyhow::Result<()> {
    let shards = store.shards(run.id)?;
    let count = |state: ShardState| shards.iter().filter(|s| s.state == state).count();
    let _ = writeln!(
        out,
        "shards of {} (run {}): {} of {} customers each; {} done, {} leased, {} open; model {}",
        run.date,
        run.id,
        plan.shards,
        plan.shard_size,
        count(ShardState::Done),
        count(ShardState::Leased),
        count(ShardState::Open),
        plan.model_version
    );
    for s in shards.iter().filter(|s| s.state == ShardState::Leased) {
        let expiry = match s.expires_at {
            Some(at) if at < now => format!("EXPIRED {} ago: the next worker takes it over", ago(now, at)),
            Some(at) => format!("expires in {}", ago(at, now)),
            None => "no expiry".to_owned(),
        };
        let _ = writeln!(
            out,
            "  shard {:>4}  leased by {} (token {})  {expiry}",
            s.shard,
            s.holder.as_deref().unwrap_or("?"),
            s.token
        );
    }
    Ok(())
}

/// `later - earlier` in whole seconds, for people.
fn ago(later: Timestamp, earlier: Timestamp) -> String {
    let seconds = later.duration_since(earlier).as_secs().max(0);
    format!("{seconds}s")
}

/// The status report of `use_case` in `store` (runs, model, unknown batches, drift).
///
/// # Errors
/// A store error.
pub fn status(store: &dyn Store, use_case: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    let _ = writeln!(out, "use case `{use_case}`");
    match store.latest_model(use_case)? {
        Some(m) => {
            let _ = writeln!(out, "model: {} (saved {})", m.version, m.saved_at);
        }
        None => {
            let _ = writeln!(out, "model: none yet");
        }
    }
    let runs = store.runs(use_case, 10)?;
    if runs.is_empty() {
        let _ = writeln!(out, "no runs yet");
    } else {
        let _ = writeln!(out, "last runs:");
    }
    for r in &runs {
        let batches = store.batch_states(r.id)?;
        let count = |s: BatchState| batches.iter().filter(|b| b.state == s).count();
        let decisions = r
            .summary
            .as_ref()
            .and_then(|s| s.get("decisions"))
            .and_then(serde_json::Value::as_u64)
            .map_or_else(|| "-".to_owned(), |d| d.to_string());
        let _ = writeln!(
            out,
            "  {}  phase {:<9}  decisions {:>7}  batches: {} sent, {} failed, {} unknown, {} pending",
            r.date,
            format!("{:?}", r.phase).to_lowercase(),
            decisions,
            count(BatchState::Sent),
            count(BatchState::Failed),
            count(BatchState::Unknown),
            count(BatchState::Planned) + count(BatchState::Sending),
        );
    }
    let unknown = store.unknown_batches(use_case)?;
    if !unknown.is_empty() {
        let _ = writeln!(
            out,
            "unknown batches (maybe applied; never resent automatically — check Braze before resending by hand):"
        );
        for b in &unknown {
            let _ = writeln!(
                out,
                "  {}  run {}  {}  {} recipients  {}",
                b.id,
                b.run_id,
                b.target,
                b.decision_ids.len(),
                b.detail.as_deref().unwrap_or("")
            );
        }
    }
    let alerts = store.drift_alerts(use_case)?;
    if let Some(last) = alerts.last() {
        let _ = writeln!(
            out,
            "drift alerts: {} (last {} on {}={})",
            alerts.len(),
            last.detected_at,
            last.dimension.as_deref().unwrap_or("*"),
            last.option.as_deref().unwrap_or("*")
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use offerloop_store::SqliteStore;

    #[test]
    fn an_empty_store_says_so() {
        let store = SqliteStore::in_memory().unwrap();
        let text = status(&store, "uc").unwrap();
        assert_eq!(text, "use case `uc`\nmodel: none yet\nno runs yet\n");
    }

    #[test]
    fn runs_and_unknown_batches_are_listed() {
        let store = SqliteStore::in_memory().unwrap();
        let now: jiff::Timestamp = "2026-01-05T12:00:00Z".parse().unwrap();
        let run = store
            .begin_run("uc", jiff::civil::Date::constant(2026, 1, 5), now)
            .unwrap();
        store
            .plan_batch(&offerloop_store::BatchRecord {
                id: "b1".into(),
                run_id: run.id,
                target: offerloop_store::BatchTarget::Campaign("c".into()),
                decision_ids: vec!["d1".into()],
                request: "{}".to_owned(),
                state: BatchState::Planned,
                detail: None,
                retryable: false,
                dry_run: false,
                updated_at: now,
            })
            .unwrap();
        store
            .mark_batch("b1", &offerloop_store::BatchMark::sending(), now)
            .unwrap();
        store
            .mark_batch("b1", &offerloop_store::BatchMark::unknown("timeout"), now)
            .unwrap();
        let text = status(&store, "uc").unwrap();
        assert!(text.contains("2026-01-05  phase started"), "{text}");
        assert!(text.contains("0 sent, 0 failed, 1 unknown"), "{text}");
        assert!(text.contains("b1  run 1  campaign c  1 recipients  timeout"), "{text}");
    }

    #[test]
    fn shards_leases_and_workers_are_shown_with_expired_leases_called_out() {
        let store = SqliteStore::in_memory().unwrap();
        let now: jiff::Timestamp = "2026-01-05T12:00:00Z".parse().unwrap();
        let run = store
            .begin_run("uc", jiff::civil::Date::constant(2026, 1, 5), now)
            .unwrap();
        store
            .plan_shards(&offerloop_store::ShardPlan {
                run_id: run.id,
                shards: 3,
                shard_size: 10,
                customers: 25,
                model_version: "lin_ts/1+run1".into(),
                fingerprint: "f".into(),
                planned_at: now,
                prepared: serde_json::json!({}),
            })
            .unwrap();
        let ttl = std::time::Duration::from_secs(60);
        let lease = store.lease_shard(run.id, "w-a", ttl, now).unwrap().unwrap();
        store.complete_shard(&lease, &serde_json::json!({}), now).unwrap();
        store.lease_shard(run.id, "w-b", ttl, now).unwrap().unwrap();
        store
            .report_worker(&offerloop_store::WorkerRecord {
                id: "w-b".into(),
                use_case: "uc".into(),
                host: "h".into(),
                pid: 7,
                started_at: now,
                last_seen: now,
                status: "shard 2 of 3 (run 1)".into(),
            })
            .unwrap();
        let later = now + jiff::SignedDuration::from_secs(90);
        let text = status_at(&store, "uc", later).unwrap();
        assert!(
            text.contains("3 of 10 customers each; 1 done, 1 leased, 1 open"),
            "{text}"
        );
        assert!(
            text.contains("shard    1  leased by w-b (token 1)  EXPIRED 30s ago"),
            "{text}"
        );
        assert!(
            text.contains("w-b  pid 7 on h  last seen 90s ago  shard 2 of 3 (run 1)"),
            "{text}"
        );
        let early = status_at(&store, "uc", now + jiff::SignedDuration::from_secs(10)).unwrap();
        assert!(early.contains("expires in 50s"), "{early}");
    }
}
