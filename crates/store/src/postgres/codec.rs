//! Conversions between the store's records and PostgreSQL columns, the same representations as the
//! SQLite store's (see `schema`): times as `BIGINT` nanoseconds, enums as their snake_case names,
//! JSON as text, action ids as their 64 bits in a signed `BIGINT`; and rows decoded into checked
//! domain values.

use jiff::Timestamp;
use jiff::civil::Date;
use offerloop_domain::{ActionId, CustomerId, Decision, Group, Probability, Reward, RewardStatus};
use tokio_postgres::Row;
use tokio_postgres::types::FromSql;

use crate::{BatchRecord, BatchState, BatchTarget, Error, Result, RunPhase, RunRecord};

/// A time as stored: nanoseconds since the Unix epoch.
///
/// # Errors
/// [`Error::Unstorable`] for a time outside what an `i64` of nanoseconds holds (about 1678 to 2261).
pub(super) fn time(what: &'static str, at: Timestamp) -> Result<i64> {
    i64::try_from(at.as_nanosecond()).map_err(|_| Error::Unstorable {
        what,
        message: format!("{at} is outside the years 1678 to 2261"),
    })
}

/// A query bound as stored: like [`time`], but saturating, so any range can be asked.
pub(super) fn bound(at: Timestamp) -> i64 {
    let nanos = at.as_nanosecond();
    i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX })
}

/// A stored time read back.
pub(super) fn read_time(what: &'static str, nanos: i64) -> Result<Timestamp> {
    Timestamp::from_nanosecond(i128::from(nanos)).map_err(|error| corrupt(what, error))
}

/// An optional stored time read back.
pub(super) fn read_opt_time(what: &'static str, nanos: Option<i64>) -> Result<Option<Timestamp>> {
    nanos.map(|nanos| read_time(what, nanos)).transpose()
}

/// `now + ttl` (a lease's expiry), saturating at the largest time (which [`time`] then refuses).
pub(super) fn expiry(now: Timestamp, ttl: std::time::Duration) -> Timestamp {
    jiff::SignedDuration::try_from(ttl)
        .ok()
        .and_then(|ttl| now.checked_add(ttl).ok())
        .unwrap_or(Timestamp::MAX)
}

/// A date as stored (`YYYY-MM-DD`).
pub(super) fn date(date: Date) -> String {
    date.to_string()
}

/// A JSON value (or any serialisable value) as stored text.
pub(super) fn json<T: serde::Serialize + ?Sized>(what: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|error| Error::Unstorable {
        what,
        message: error.to_string(),
    })
}

/// Stored JSON text read back.
pub(super) fn read_json<T: serde::de::DeserializeOwned>(what: &'static str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|error| corrupt(what, error))
}

/// An action id as stored: its 64 bits reinterpreted as a signed integer (the store never orders by
/// action, so only the bits matter).
pub(super) fn action(action: ActionId) -> i64 {
    i64::from_ne_bytes(action.0.to_ne_bytes())
}

/// A stored action id read back.
pub(super) fn read_action(bits: i64) -> ActionId {
    ActionId(u64::from_ne_bytes(bits.to_ne_bytes()))
}

/// A count as stored.
pub(super) fn count(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// An unsigned number as stored (saturating: the store never holds more than `i64::MAX` of anything).
pub(super) fn unsigned(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The error for a stored value that does not decode.
pub(super) fn corrupt(what: &'static str, error: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        what,
        message: error.to_string(),
    }
}

/// Column `index` of `row`, or [`Error::Corrupt`] naming `what`.
pub(super) fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize, what: &'static str) -> Result<T> {
    row.try_get(index).map_err(|error| corrupt(what, error))
}

/// A run phase's stored name.
pub(super) fn phase(phase: RunPhase) -> &'static str {
    match phase {
        RunPhase::Started => "started",
        RunPhase::Audience => "audience",
        RunPhase::Outcomes => "outcomes",
        RunPhase::Learned => "learned",
        RunPhase::Decided => "decided",
        RunPhase::Activated => "activated",
        RunPhase::Done => "done",
    }
}

/// A stored run phase read back.
pub(super) fn read_phase(name: &str) -> Result<RunPhase> {
    Ok(match name {
        "started" => RunPhase::Started,
        "audience" => RunPhase::Audience,
        "outcomes" => RunPhase::Outcomes,
        "learned" => RunPhase::Learned,
        "decided" => RunPhase::Decided,
        "activated" => RunPhase::Activated,
        "done" => RunPhase::Done,
        other => return Err(corrupt("run phase", format!("unknown phase `{other}`"))),
    })
}

/// A batch state's stored name.
pub(super) fn batch_state(state: BatchState) -> &'static str {
    match state {
        BatchState::Planned => "planned",
        BatchState::Sending => "sending",
        BatchState::Sent => "sent",
        BatchState::Failed => "failed",
        BatchState::Unknown => "unknown",
    }
}

/// A stored batch state read back.
pub(super) fn read_batch_state(name: &str) -> Result<BatchState> {
    Ok(match name {
        "planned" => BatchState::Planned,
        "sending" => BatchState::Sending,
        "sent" => BatchState::Sent,
        "failed" => BatchState::Failed,
        "unknown" => BatchState::Unknown,
        other => return Err(corrupt("batch state", format!("unknown state `{other}`"))),
    })
}

/// A stored batch target read back from its kind and id columns.
pub(super) fn read_batch_target(kind: &str, id: Option<String>) -> Result<BatchTarget> {
    let shown = format!("`{kind}` with id {id:?}");
    BatchTarget::from_parts(kind, id).ok_or_else(|| corrupt("batch target", format!("unknown target {shown}")))
}

/// A reward status's stored name.
pub(super) fn reward_status(status: RewardStatus) -> &'static str {
    match status {
        RewardStatus::Pending => "pending",
        RewardStatus::Final => "final",
    }
}

/// A stored reward status read back.
pub(super) fn read_reward_status(name: &str) -> Result<RewardStatus> {
    Ok(match name {
        "pending" => RewardStatus::Pending,
        "final" => RewardStatus::Final,
        other => return Err(corrupt("reward status", format!("unknown status `{other}`"))),
    })
}

/// A stored group read back.
pub(super) fn read_group(name: &str) -> Result<Group> {
    Ok(match name {
        "control" => Group::Control,
        "random_control" => Group::RandomControl,
        "treatment" => Group::Treatment,
        other => return Err(corrupt("decision group", format!("unknown group `{other}`"))),
    })
}

/// The columns of a run, in the order [`run`] reads them.
pub(super) const RUN_COLUMNS: &str = "id, use_case, date, phase, started_at, updated_at, summary";

/// A run from the [`RUN_COLUMNS`] of `row`.
pub(super) fn run(row: &Row) -> Result<RunRecord> {
    let date: String = get(row, 2, "run date")?;
    let summary: Option<String> = get(row, 6, "run summary")?;
    Ok(RunRecord {
        id: get(row, 0, "run id")?,
        use_case: get(row, 1, "run use case")?,
        date: date.parse().map_err(|error| corrupt("run date", error))?,
        phase: read_phase(get(row, 3, "run phase")?)?,
        started_at: read_time("run start", get(row, 4, "run start")?)?,
        updated_at: read_time("run update time", get(row, 5, "run update time")?)?,
        summary: summary
            .as_deref()
            .map(|text| read_json("run summary", text))
            .transpose()?,
    })
}

/// The columns of a decision (prefix `d.`), in the order [`decision`] reads them.
pub(super) const DECISION_COLUMNS: &str = "d.id, d.use_case, d.customer_id, d.decided_at, d.decision_group, \
     d.action_id, d.propensity, d.policy_version, d.planned_send_at, d.cost";

/// How many columns [`DECISION_COLUMNS`] has (the next column's index).
pub(super) const DECISION_WIDTH: usize = 10;

/// A decision from the [`DECISION_COLUMNS`] of `row`.
pub(super) fn decision(row: &Row) -> Result<Decision> {
    let customer: String = get(row, 2, "decision customer")?;
    let propensity: f64 = get(row, 6, "decision propensity")?;
    Ok(Decision {
        id: get(row, 0, "decision id")?,
        use_case: get(row, 1, "decision use case")?,
        customer_id: CustomerId::new(customer).map_err(|error| corrupt("decision customer", error))?,
        decided_at: read_time("decision time", get(row, 3, "decision time")?)?,
        group: read_group(get(row, 4, "decision group")?)?,
        action: read_action(get(row, 5, "decision action")?),
        propensity: Probability::new(propensity).map_err(|error| corrupt("decision propensity", error))?,
        policy_version: get(row, 7, "policy version")?,
        planned_send_at: read_opt_time("planned send time", get(row, 8, "planned send time")?)?,
        cost: get(row, 9, "decision cost")?,
    })
}

/// The columns of a batch (prefix `b.`), in the order [`batch`] reads them.
pub(super) const BATCH_COLUMNS: &str = "b.id, b.run_id, b.target_kind, b.target_id, b.decision_ids, b.request, b.state, \
     b.detail, b.retryable, b.dry_run, b.updated_at";

/// A batch from the [`BATCH_COLUMNS`] of `row`.
pub(super) fn batch(row: &Row) -> Result<BatchRecord> {
    let decision_ids: &str = get(row, 4, "batch decision ids")?;
    Ok(BatchRecord {
        id: get(row, 0, "batch id")?,
        run_id: get(row, 1, "batch run")?,
        target: read_batch_target(get(row, 2, "batch target")?, get(row, 3, "batch target")?)?,
        decision_ids: read_json("batch decision ids", decision_ids)?,
        request: get(row, 5, "batch request")?,
        state: read_batch_state(get(row, 6, "batch state")?)?,
        detail: get(row, 7, "batch detail")?,
        retryable: get(row, 8, "batch retryability")?,
        dry_run: get(row, 9, "batch dry run")?,
        updated_at: read_time("batch update time", get(row, 10, "batch update time")?)?,
    })
}

/// A reward from `decision_id, value, status, attributed_outcomes`.
pub(super) fn reward(row: &Row) -> Result<Reward> {
    let attributed: i64 = get(row, 3, "attributed outcomes")?;
    Ok(Reward {
        decision_id: get(row, 0, "reward decision")?,
        value: get(row, 1, "reward value")?,
        status: read_reward_status(get(row, 2, "reward status")?)?,
        attributed_outcomes: usize::try_from(attributed).map_err(|error| corrupt("attributed outcomes", error))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_their_names() {
        for phase_ in [
            RunPhase::Started,
            RunPhase::Audience,
            RunPhase::Outcomes,
            RunPhase::Learned,
            RunPhase::Decided,
            RunPhase::Activated,
            RunPhase::Done,
        ] {
            assert_eq!(read_phase(phase(phase_)).unwrap(), phase_);
        }
        for state in [
            BatchState::Planned,
            BatchState::Sending,
            BatchState::Sent,
            BatchState::Failed,
            BatchState::Unknown,
        ] {
            assert_eq!(read_batch_state(batch_state(state)).unwrap(), state);
        }
        for status in [RewardStatus::Pending, RewardStatus::Final] {
            assert_eq!(read_reward_status(reward_status(status)).unwrap(), status);
        }
        for group in [Group::Control, Group::RandomControl, Group::Treatment] {
            assert_eq!(read_group(group.as_str()).unwrap(), group);
        }
    }

    #[test]
    fn times_and_actions_keep_every_bit() {
        let at: Timestamp = "2026-11-29T12:34:56.123456789Z".parse().unwrap();
        assert_eq!(read_time("t", time("t", at).unwrap()).unwrap(), at);
        assert!(matches!(time("t", Timestamp::MAX), Err(Error::Unstorable { .. })));
        assert_eq!(bound(Timestamp::MIN), i64::MIN);
        for bits in [0, 1, u64::MAX, 1 << 63] {
            assert_eq!(read_action(action(ActionId(bits))), ActionId(bits));
        }
        assert_eq!(expiry(at, std::time::Duration::MAX), Timestamp::MAX);
    }
}
