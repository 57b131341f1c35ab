//! `offerloop status`: the last runs of a use case, its unknown batches and its model version.

use std::fmt::Write as _;

use offerloop_store::{BatchState, Store};

/// The status report of `use_case` in `store`.
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
        let batches = store.batches(r.id)?;
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
}
