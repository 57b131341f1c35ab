//! Conversions between the store's records and SQLite columns: times as integer nanoseconds, enums as
//! their snake_case names, JSON as text, and raw rows decoded into checked domain values.

use jiff::Timestamp;
use jiff::civil::Date;
use offerloop_domain::{ActionId, CustomerId, Decision, Group, Probability, Reward, RewardStatus};

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

/// A date as stored (`YYYY-MM-DD`).
pub(super) fn date(date: Date) -> String {
    date.to_string()
}

/// A stored date read back.
pub(super) fn read_date(text: &str) -> Result<Date> {
    text.parse().map_err(|error| corrupt("run date", error))
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

/// An action id as stored: its 64 bits reinterpreted as a signed integer (SQLite integers are signed;
/// the store never orders by action, so only the bits matter).
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

/// A stored count read back.
pub(super) fn read_count(what: &'static str, count: i64) -> Result<usize> {
    usize::try_from(count).map_err(|error| corrupt(what, error))
}

/// The error for a stored value that does not decode.
pub(super) fn corrupt(what: &'static str, error: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        what,
        message: error.to_string(),
    }
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

/// A stored batch target read back from its kind and id columns.
pub(super) fn read_batch_target(kind: &str, id: Option<String>) -> Result<BatchTarget> {
    let shown = format!("`{kind}` with id {id:?}");
    BatchTarget::from_parts(kind, id).ok_or_else(|| corrupt("batch target", format!("unknown target {shown}")))
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

/// A group's stored name.
pub(super) fn group(group: Group) -> &'static str {
    group.as_str()
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

/// The columns of a run, in the order [`RawRun`] reads them.
pub(super) const RUN_COLUMNS: &str = "id, use_case, date, phase, started_at, updated_at, summary";

/// A run row as read.
#[derive(Debug)]
pub(super) struct RawRun {
    id: i64,
    use_case: String,
    date: String,
    phase: String,
    started_at: i64,
    updated_at: i64,
    summary: Option<String>,
}

impl RawRun {
    /// Reads the [`RUN_COLUMNS`] of `row`.
    pub(super) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            use_case: row.get(1)?,
            date: row.get(2)?,
            phase: row.get(3)?,
            started_at: row.get(4)?,
            updated_at: row.get(5)?,
            summary: row.get(6)?,
        })
    }

    /// The checked record.
    pub(super) fn decode(self) -> Result<RunRecord> {
        Ok(RunRecord {
            id: self.id,
            use_case: self.use_case,
            date: read_date(&self.date)?,
            phase: read_phase(&self.phase)?,
            started_at: read_time("run start", self.started_at)?,
            updated_at: read_time("run update time", self.updated_at)?,
            summary: self
                .summary
                .as_deref()
                .map(|text| read_json("run summary", text))
                .transpose()?,
        })
    }
}

/// The columns of a decision (prefix `d.`), in the order [`RawDecision`] reads them.
pub(super) const DECISION_COLUMNS: &str = "d.id, d.use_case, d.customer_id, d.decided_at, d.decision_group, \
     d.action_id, d.propensity, d.policy_version, d.planned_send_at, d.cost";

/// How many columns [`DECISION_COLUMNS`] has (the next column's index).
pub(super) const DECISION_WIDTH: usize = 10;

/// A decision row as read.
#[derive(Debug)]
pub(super) struct RawDecision {
    id: String,
    use_case: String,
    customer_id: String,
    decided_at: i64,
    group: String,
    action: i64,
    propensity: f64,
    policy_version: String,
    planned_send_at: Option<i64>,
    cost: f64,
}

impl RawDecision {
    /// Reads the [`DECISION_COLUMNS`] of `row`.
    pub(super) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            use_case: row.get(1)?,
            customer_id: row.get(2)?,
            decided_at: row.get(3)?,
            group: row.get(4)?,
            action: row.get(5)?,
            propensity: row.get(6)?,
            policy_version: row.get(7)?,
            planned_send_at: row.get(8)?,
            cost: row.get(9)?,
        })
    }

    /// The checked decision.
    pub(super) fn decode(self) -> Result<Decision> {
        Ok(Decision {
            customer_id: CustomerId::new(self.customer_id).map_err(|error| corrupt("decision customer", error))?,
            propensity: Probability::new(self.propensity).map_err(|error| corrupt("decision propensity", error))?,
            decided_at: read_time("decision time", self.decided_at)?,
            planned_send_at: read_opt_time("planned send time", self.planned_send_at)?,
            group: read_group(&self.group)?,
            action: read_action(self.action),
            id: self.id,
            use_case: self.use_case,
            policy_version: self.policy_version,
            cost: self.cost,
        })
    }
}

/// The columns of a batch (prefix `b.`), in the order [`RawBatch`] reads them.
pub(super) const BATCH_COLUMNS: &str = "b.id, b.run_id, b.target_kind, b.target_id, b.decision_ids, b.request, b.state, \
     b.detail, b.retryable, b.dry_run, b.updated_at";

/// A batch row as read.
#[derive(Debug)]
pub(super) struct RawBatch {
    id: String,
    run_id: i64,
    target_kind: String,
    target_id: Option<String>,
    decision_ids: String,
    request: String,
    state: String,
    detail: Option<String>,
    retryable: bool,
    dry_run: bool,
    updated_at: i64,
}

impl RawBatch {
    /// Reads the [`BATCH_COLUMNS`] of `row`.
    pub(super) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            run_id: row.get(1)?,
            target_kind: row.get(2)?,
            target_id: row.get(3)?,
            decision_ids: row.get(4)?,
            request: row.get(5)?,
            state: row.get(6)?,
            detail: row.get(7)?,
            retryable: row.get(8)?,
            dry_run: row.get(9)?,
            updated_at: row.get(10)?,
        })
    }

    /// The checked record.
    pub(super) fn decode(self) -> Result<BatchRecord> {
        Ok(BatchRecord {
            decision_ids: read_json("batch decision ids", &self.decision_ids)?,
            request: self.request,
            state: read_batch_state(&self.state)?,
            updated_at: read_time("batch update time", self.updated_at)?,
            id: self.id,
            run_id: self.run_id,
            target: read_batch_target(&self.target_kind, self.target_id)?,
            detail: self.detail,
            retryable: self.retryable,
            dry_run: self.dry_run,
        })
    }
}

/// A reward row as read (`decision_id, value, status, attributed_outcomes`).
#[derive(Debug)]
pub(super) struct RawReward {
    decision_id: String,
    value: f64,
    status: String,
    attributed_outcomes: i64,
}

impl RawReward {
    /// Reads a reward's four columns from `row`.
    pub(super) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            decision_id: row.get(0)?,
            value: row.get(1)?,
            status: row.get(2)?,
            attributed_outcomes: row.get(3)?,
        })
    }

    /// The checked reward.
    pub(super) fn decode(self) -> Result<Reward> {
        Ok(Reward {
            status: read_reward_status(&self.status)?,
            attributed_outcomes: read_count("attributed outcomes", self.attributed_outcomes)?,
            decision_id: self.decision_id,
            value: self.value,
        })
    }
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
        for group_ in [Group::Control, Group::RandomControl, Group::Treatment] {
            assert_eq!(read_group(group(group_)).unwrap(), group_);
        }
        assert!(matches!(read_phase("later"), Err(Error::Corrupt { .. })));
        assert!(matches!(read_batch_state("lost"), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn times_round_trip_to_the_nanosecond_and_refuse_what_does_not_fit() {
        let at: Timestamp = "2026-11-29T12:34:56.123456789Z".parse().unwrap();
        assert_eq!(read_time("t", time("t", at).unwrap()).unwrap(), at);
        assert!(matches!(time("t", Timestamp::MAX), Err(Error::Unstorable { .. })));
        assert_eq!(bound(Timestamp::MAX), i64::MAX);
        assert_eq!(bound(Timestamp::MIN), i64::MIN);
    }

    #[test]
    fn action_ids_keep_all_64_bits() {
        for bits in [0, 1, 35, u64::MAX, 1 << 63] {
            assert_eq!(read_action(action(ActionId(bits))), ActionId(bits));
        }
    }
}
