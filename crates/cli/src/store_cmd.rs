//! Which store a command uses, and `offerloop store migrate | export`.
//!
//! A command's store is, first found: `--store` (an SQLite file path or a `postgres://` URL), the
//! use case's `[store] url`, the default file [`crate::run_cmd::DEFAULT_STORE`]. A PostgreSQL
//! password is read from the environment variable the use case's `[store] password_env` names
//! (default [`DEFAULT_PASSWORD_ENV`]), never from a file or a URL.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use jiff::civil::Date;
use offerloop_domain::UseCase;
use offerloop_store::{DEFAULT_PASSWORD_ENV, RunRecord, Store, StoreLocation};
use serde::Serialize;

use crate::run_cmd::DEFAULT_STORE;

/// The store a command of `use_case` uses: `flag` (`--store`), else `[store] url`, else the default
/// file.
///
/// # Errors
/// An invalid PostgreSQL URL (or one holding a password).
pub fn location(flag: Option<&str>, use_case: Option<&UseCase>) -> anyhow::Result<StoreLocation> {
    let settings = use_case.map(|u| &u.store);
    let password_env = settings
        .and_then(|s| s.password_env.as_deref())
        .unwrap_or(DEFAULT_PASSWORD_ENV);
    let text = flag
        .or_else(|| settings.and_then(|s| s.url.as_deref()))
        .unwrap_or(DEFAULT_STORE);
    StoreLocation::parse(text, password_env)
        .with_context(|| "choosing the store (`--store` or `[store] url`)".to_owned())
}

/// Opens (creating an SQLite file's directory, migrating either back-end) the store at `location`.
///
/// # Errors
/// The directory cannot be created, the database cannot be reached or migrated.
pub fn open(location: &StoreLocation) -> anyhow::Result<Arc<dyn Store>> {
    if let StoreLocation::Sqlite(path) = location
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    offerloop_store::open(location).with_context(|| format!("opening the store {location}"))
}

/// `offerloop store migrate`: opens the store, which brings its schema to this offerloop's version
/// (in one transaction; several processes opening it at once migrate it once), and says so.
///
/// # Errors
/// As [`open`].
pub fn migrate(location: &StoreLocation) -> anyhow::Result<String> {
    open(location)?;
    let version = match location {
        StoreLocation::Sqlite(_) => offerloop_store::SqliteStore::SCHEMA_VERSION,
        _ => offerloop_store::PostgresStore::SCHEMA_VERSION,
    };
    Ok(format!(
        "store {location}: schema at version {version}, the newest this offerloop knows\n"
    ))
}

/// One line of `offerloop store export --format jsonl`: a decision with its logged propensity, the
/// options it chose, and what became of it (reward, delivery) as far as the store knows.
#[derive(Debug, Serialize)]
pub struct DecisionLine {
    /// The decision's id (`<use case>:<date>:<customer>`).
    pub decision_id: String,
    /// The use case.
    pub use_case: String,
    /// The run's date.
    pub date: Date,
    /// The customer's `external_id`.
    pub customer_id: String,
    /// When it was decided (RFC 3339).
    pub decided_at: jiff::Timestamp,
    /// `treatment`, `control` or `random_control`.
    pub group: String,
    /// The joint action's id.
    pub action_id: u64,
    /// The chosen option of each dimension, by dimension name.
    pub options: serde_json::Map<String, serde_json::Value>,
    /// The probability the policy chose this action with (for off-policy estimates).
    pub propensity: f64,
    /// The model version (or the control's name) that decided.
    pub policy_version: String,
    /// When the message was scheduled, if it was.
    pub planned_send_at: Option<jiff::Timestamp>,
    /// The options' cost.
    pub cost: f64,
    /// The reward so far, if any.
    pub reward: Option<f64>,
    /// `pending` or `final`.
    pub reward_status: Option<String>,
    /// What became of a message that did not simply arrive (`rejected`, `late`, `not_sent`,
    /// `bounced`).
    pub delivery: Option<String>,
}

/// `offerloop store export --format jsonl`: writes the decision log of `use_case` (every run from
/// `from` to `to`, inclusive) to `out`, one JSON object per line, a run at a time. Returns how many
/// lines were written.
///
/// # Errors
/// A store error, an undecodable action, a write error.
pub fn export_jsonl(
    store: &dyn Store,
    use_case: &UseCase,
    from: Option<Date>,
    to: Option<Date>,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let name = use_case.name.as_str();
    let mut runs: Vec<RunRecord> = store
        .runs(name, usize::MAX >> 1)?
        .into_iter()
        .filter(|r| from.is_none_or(|f| r.date >= f) && to.is_none_or(|t| r.date <= t))
        .collect();
    runs.sort_by_key(|r| r.date);
    let dimensions = use_case.actions.dimensions();
    let mut lines = 0;
    for run in &runs {
        let decisions = store.decisions(run.id)?;
        let (Some(first), Some(last)) = (
            decisions.iter().map(|d| d.decided_at).min(),
            decisions.iter().map(|d| d.decided_at).max(),
        ) else {
            continue;
        };
        let end = last
            .checked_add(jiff::SignedDuration::from_nanos(1))
            .unwrap_or(jiff::Timestamp::MAX);
        let rewards: std::collections::HashMap<String, offerloop_domain::Reward> = store
            .rewards_between(name, first, end)?
            .into_iter()
            .map(|r| (r.decision_id.clone(), r))
            .collect();
        let deliveries: std::collections::HashMap<String, String> = store
            .deliveries_between(name, first, end)?
            .into_iter()
            .map(|d| (d.decision_id.clone(), d.status.as_str().to_owned()))
            .collect();
        for d in decisions {
            let joint = use_case
                .actions
                .decode(d.action)
                .with_context(|| format!("decision {}: action {}", d.id, d.action.0))?;
            let options = dimensions
                .iter()
                .zip(&joint.0)
                .map(|(dim, &i)| {
                    let option = dim
                        .options
                        .get(i as usize)
                        .map_or_else(String::new, |o| o.id.to_string());
                    (dim.name.to_string(), serde_json::Value::String(option))
                })
                .collect();
            let reward = rewards.get(&d.id);
            let line = DecisionLine {
                use_case: d.use_case.clone(),
                date: run.date,
                customer_id: d.customer_id.as_str().to_owned(),
                decided_at: d.decided_at,
                group: serde_json::to_value(d.group)?.as_str().unwrap_or_default().to_owned(),
                action_id: d.action.0,
                options,
                propensity: d.propensity.get(),
                policy_version: d.policy_version.clone(),
                planned_send_at: d.planned_send_at,
                cost: d.cost,
                reward: reward.map(|r| r.value),
                reward_status: reward.map(|r| format!("{:?}", r.status).to_lowercase()),
                delivery: deliveries.get(&d.id).cloned(),
                decision_id: d.id,
            };
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
            lines += 1;
        }
    }
    out.flush()?;
    Ok(lines)
}

/// Exports to the file `path` (written beside it, then renamed into place: a failed export leaves
/// no partial file), or to stdout for `-`.
///
/// # Errors
/// As [`export_jsonl`], or the file cannot be written.
pub fn export_to(
    store: &dyn Store,
    use_case: &UseCase,
    from: Option<Date>,
    to: Option<Date>,
    path: &Path,
) -> anyhow::Result<u64> {
    if path == Path::new("-") {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        return export_jsonl(store, use_case, from, to, &mut out);
    }
    let partial = path.with_extension("jsonl.partial");
    let file = std::fs::File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let lines = match export_jsonl(store, use_case, from, to, &mut out) {
        Ok(lines) => lines,
        Err(e) => {
            drop(out);
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    drop(out);
    std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use offerloop_domain::{ActionId, CustomerId, Decision, Group, Probability, Reward, RewardStatus};
    use offerloop_store::{DeliveryRecord, DeliveryStatus, SqliteStore};

    fn use_case() -> UseCase {
        let text = include_str!("../../../examples/winback.toml");
        offerloop_domain::config::parse_use_case(text, "winback.toml").unwrap()
    }

    #[test]
    fn the_decision_log_has_propensities_options_rewards_and_deliveries() {
        let uc = use_case();
        let store = SqliteStore::in_memory().unwrap();
        let at: jiff::Timestamp = "2026-01-05T06:00:00Z".parse().unwrap();
        let date = Date::constant(2026, 1, 5);
        let run = store.begin_run(uc.name.as_str(), date, at).unwrap();
        let decision = |customer: &str, action: u64, group: Group, p: f64| Decision {
            id: format!("{}:{date}:{customer}", uc.name.as_str()),
            use_case: uc.name.as_str().to_owned(),
            customer_id: CustomerId::new(customer).unwrap(),
            decided_at: at,
            group,
            action: ActionId(action),
            propensity: Probability::new(p).unwrap(),
            policy_version: "logistic_ts/1".into(),
            planned_send_at: None,
            cost: 0.5,
        };
        let (a, b) = (
            decision("c-1", 3, Group::Treatment, 0.25),
            decision("c-2", 0, Group::Control, 1.0),
        );
        store.record_decisions(run.id, &[a.clone(), b.clone()]).unwrap();
        store
            .upsert_rewards(&[Reward {
                decision_id: a.id.clone(),
                value: 12.5,
                status: RewardStatus::Final,
                attributed_outcomes: 1,
            }])
            .unwrap();
        store
            .record_deliveries(&[DeliveryRecord {
                decision_id: b.id.clone(),
                status: DeliveryStatus::Bounced,
                noted_at: at,
            }])
            .unwrap();
        let mut out = Vec::new();
        let lines = export_jsonl(&store, &uc, None, None, &mut out).unwrap();
        assert_eq!(lines, 2);
        let rows: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let first = rows.iter().find(|r| r["customer_id"] == "c-1").unwrap();
        assert_eq!(first["propensity"], 0.25);
        assert_eq!(first["group"], "treatment");
        assert_eq!(first["reward"], 12.5);
        assert_eq!(first["reward_status"], "final");
        let joint = uc.actions.decode(ActionId(3)).unwrap();
        for (dim, &i) in uc.actions.dimensions().iter().zip(&joint.0) {
            assert_eq!(first["options"][dim.name.as_str()], dim.options[i as usize].id.as_str());
        }
        let second = rows.iter().find(|r| r["customer_id"] == "c-2").unwrap();
        assert_eq!(second["delivery"], "bounced");
        assert!(second["reward"].is_null());
        // A period without runs exports nothing.
        let mut none = Vec::new();
        let later = Date::constant(2026, 2, 1);
        assert_eq!(export_jsonl(&store, &uc, Some(later), None, &mut none).unwrap(), 0);
    }

    #[test]
    fn a_failed_export_leaves_no_file() {
        let uc = use_case();
        let store = SqliteStore::in_memory().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let run = store
            .begin_run(
                uc.name.as_str(),
                Date::constant(2026, 1, 5),
                "2026-01-05T06:00:00Z".parse().unwrap(),
            )
            .unwrap();
        // An action id the use case cannot decode makes the export fail half-way.
        let bad = Decision {
            id: "x".into(),
            use_case: uc.name.as_str().to_owned(),
            customer_id: CustomerId::new("c").unwrap(),
            decided_at: "2026-01-05T06:00:00Z".parse().unwrap(),
            group: Group::Treatment,
            action: ActionId(u64::MAX >> 1),
            propensity: Probability::new(0.5).unwrap(),
            policy_version: "v".into(),
            planned_send_at: None,
            cost: 0.0,
        };
        store.record_decisions(run.id, &[bad]).unwrap();
        let path = dir.path().join("log.jsonl");
        let err = export_to(&store, &uc, None, None, &path).unwrap_err();
        assert!(format!("{err:#}").contains("decision x"), "{err:#}");
        assert!(!path.exists() && !path.with_extension("jsonl.partial").exists());
    }
}
