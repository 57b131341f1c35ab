//! Planning: decisions in, deterministic Braze request batches out. Pure: no I/O, no clock.
//!
//! # From a decision to a recipient
//! - The **channel** dimension's option names the API-triggered campaign or canvas
//!   ([`MessageTarget`]); without a channel dimension, `activation.default_target` does.
//! - Every **other** dimension contributes its option's free-form `properties` and
//!   `"<dimension name>": "<option id>"` to the recipient's personalisation: `trigger_properties` for a
//!   campaign (`{{api_trigger_properties.${offer}}}`), `context` for a canvas
//!   (`{{context.${offer}}}`, the current name of canvas entry properties). Dimensions are visited in
//!   their use-case order and the `"<dimension>": "<option id>"` keys are written last, so they win
//!   over a free-form property of the same name.
//! - A **frequency** option with `skip = true` sends nothing (and writes no profile attribute).
//! - A **send-time** option schedules the message at that local time on the run date; a
//!   **day-of-week** option moves it to the first matching weekday on or after the run date (without
//!   a send time it is sent at once when that day is the run date, else scheduled at the end of the
//!   use case's quiet hours, or at [`DEFAULT_DAY_SEND_TIME`] without quiet hours). Without either, the
//!   message is sent at once (`.../trigger/send`).
//! - With `activation.in_local_time` a schedule is a wall-clock time without a zone and
//!   `in_local_time: true`: Braze converts it per recipient, so one request serves every time zone.
//!   Otherwise the local time is converted to UTC in the customer's time zone (the use case's when the
//!   customer has none, or an unknown one), which splits the recipients by instant.
//!
//! # A local time that has passed moves to its next occurrence
//! Braze loses a schedule whose local time has already passed for a recipient: with `in_local_time`
//! the request is refused (400) only when the time has passed in *every* time zone (schedule object
//! docs), and recipients who missed the send time by more than an hour are not sent to (campaign FAQ,
//! "How do I schedule a local time zone campaign?"; those within the hour get it at once, late); a UTC
//! time in the past is refused. The request still succeeds, so the ledger would say `sent` for
//! messages nobody receives. So every schedule is placed with [`ActivationRequest::not_before`], the
//! earliest instant it may fall on (the engine's decision time plus a safety margin, so that the
//! request reaches Braze before the time):
//!
//! **the send goes out at the first occurrence of its local time, in the customer's time zone, that
//! is not before `not_before`**: the run date (or the weekday option's day) when that is still ahead,
//! else the same local time on the next day; a day-of-week option moves by whole weeks to its next
//! occurrence. [`Scheduler::slot`] is that rule; the engine uses it to record each decision's
//! `planned_send_at` and passes that instant back as `not_before`, so activation schedules exactly
//! what was decided (and a resumed run plans the same bytes). The local time of day never changes, so
//! the quiet-hours guardrail (checked on the option's local time) holds for a moved send. The
//! customer's zone is the request's `time_zone`, else the use case's (Braze uses the company's zone
//! for a profile without one: keep the two equal). Without `not_before` nothing moves (Braze decides).
//!
//! # Batches
//! Recipients are grouped by (kind, target, schedule) and cut into requests of at most
//! [`MAX_RECIPIENTS`] in increasing decision-id order, so any permutation of the same decisions gives
//! the same batches, ids and bytes. With `activation.write_profile_attributes`, `/users/track` batches
//! of at most `[braze] track_objects_per_request` ([`MAX_TRACK_OBJECTS`] by default) attribute objects `{"external_id", "_update_existing_only": true,
//! "<prefix><dimension>": "<option id>", ...}` come first (profile attributes are applied
//! asynchronously by Braze; sending them first gives them the best chance to be there when the
//! message renders). A batch id is the xxh3-128 hash (hex) of the use case, run date, kind, schedule
//! and decision ids.
//!
//! # Profile attributes are deltas
//! An attribute object carries only the dimensions whose option differs from
//! [`ActivationRequest::previous`] (the options already on the profile); a decision whose options
//! all equal `previous` gets no attribute object and so is in no `/users/track` batch. Without
//! `previous` every dimension is written. A skip writes nothing. The caller decides what `previous`
//! is; it must only name options whose write is known to have landed, since a wrong `previous` leaves
//! a stale attribute on the profile (the engine uses the customer's latest earlier message
//! decision if its `/users/track` batch was sent, and nothing if that batch's fate is unknown).

use std::collections::{BTreeMap, HashSet};

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use offerloop_braze::api::messaging::{
    CampaignTriggerScheduleRequest, CampaignTriggerSendRequest, CanvasTriggerScheduleRequest, CanvasTriggerSendRequest,
    Recipient, Schedule,
};
use offerloop_braze::api::users::{AttributesObject, TrackRequest, UserIdentifier};
use offerloop_braze::limits::{MAX_PROPERTIES_BYTES, MAX_RECIPIENTS, MAX_TRACK_OBJECTS};
use offerloop_domain::dimension::{DimensionKind, LocalTime, MessageTarget, OptionPayload, OptionSpec};
use offerloop_domain::{Dimension, UseCase};
use serde_json::{Map, Value};
use xxhash_rust::xxh3::Xxh3;

use crate::{ActivationRequest, BatchKind, Error, PlannedBatch, Result};

/// The local send time of a day-of-week option without a send-time dimension, when the use case has
/// no quiet hours (with quiet hours, their end is used: the first local minute a message may go out).
pub const DEFAULT_DAY_SEND_TIME: (u8, u8) = (9, 0);

/// When a group of recipients is sent.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
enum When {
    /// At once (`.../trigger/send`).
    Now,
    /// At this wall-clock time in each recipient's own time zone (`in_local_time: true`).
    Local(DateTime),
    /// At this instant (a UTC schedule).
    At(Timestamp),
}

impl When {
    /// The Braze `schedule` object, `None` for an immediate send.
    fn schedule(self) -> Option<Schedule> {
        match self {
            Self::Now => None,
            Self::Local(civil) => {
                Some(Schedule::new(civil.strftime("%Y-%m-%dT%H:%M:%S").to_string()).in_local_time(true))
            }
            Self::At(at) => Some(Schedule::new(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())),
        }
    }

    /// Canonical text for the batch id.
    fn key(self) -> String {
        match self {
            Self::Now => "now".to_owned(),
            Self::Local(civil) => format!("local {}", civil.strftime("%Y-%m-%dT%H:%M:%S")),
            Self::At(at) => format!("utc {}", at.strftime("%Y-%m-%dT%H:%M:%SZ")),
        }
    }
}

/// Which object delivers, in a sortable form.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
enum Target {
    /// An API-triggered campaign.
    Campaign(String),
    /// An API-triggered canvas.
    Canvas(String),
}

impl Target {
    fn from_message_target(target: &MessageTarget) -> Self {
        match target {
            MessageTarget::Campaign(id) => Self::Campaign(id.clone()),
            MessageTarget::Canvas(id) => Self::Canvas(id.clone()),
        }
    }

    fn kind(&self, when: When) -> BatchKind {
        match (self, when) {
            (Self::Campaign(id), When::Now) => BatchKind::CampaignSend {
                campaign_id: id.clone(),
            },
            (Self::Campaign(id), _) => BatchKind::CampaignSchedule {
                campaign_id: id.clone(),
            },
            (Self::Canvas(id), When::Now) => BatchKind::CanvasSend { canvas_id: id.clone() },
            (Self::Canvas(id), _) => BatchKind::CanvasSchedule { canvas_id: id.clone() },
        }
    }
}

/// When a decision's message goes out, by the rule of the [module docs](self).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SendSlot {
    /// At once (`.../trigger/send`).
    Now,
    /// Scheduled.
    Scheduled {
        /// The wall-clock time in the customer's zone (the `schedule.time` of an `in_local_time`
        /// request).
        local: DateTime,
        /// The instant it falls on in that zone (the `schedule.time` of a UTC schedule).
        at: Timestamp,
    },
}

impl SendSlot {
    /// The instant of a scheduled send, `None` for an immediate one.
    pub fn at(self) -> Option<Timestamp> {
        match self {
            Self::Now => None,
            Self::Scheduled { at, .. } => Some(at),
        }
    }
}

/// Places sends in time: the one rule for send-time and day-of-week options (see the
/// [module docs](self)), shared by planning and by the engine's decisions.
#[derive(Clone, Debug)]
pub struct Scheduler<'a> {
    use_case: &'a UseCase,
    send_time: Option<usize>,
    day: Option<usize>,
    /// The use case's own time zone (customers without a valid one).
    time_zone: Option<TimeZone>,
    /// The local time of a day-of-week option without a send-time dimension.
    day_time: LocalTime,
}

impl<'a> Scheduler<'a> {
    /// The scheduler of `use_case`.
    ///
    /// # Errors
    /// [`Error::UseCase`] when the end of its quiet hours is not a valid time (never for a parsed use
    /// case).
    pub fn new(use_case: &'a UseCase) -> Result<Self> {
        let day_time = match use_case.guardrails.quiet_hours {
            Some((_, end)) => end,
            None => LocalTime::new(DEFAULT_DAY_SEND_TIME.0, DEFAULT_DAY_SEND_TIME.1).map_err(|e| Error::UseCase {
                use_case: use_case.name.to_string(),
                message: e.to_string(),
            })?,
        };
        Ok(Self {
            use_case,
            send_time: use_case.dimension_of_kind(DimensionKind::SendTime),
            day: use_case.dimension_of_kind(DimensionKind::DayOfWeek),
            time_zone: TimeZone::get(&use_case.time_zone).ok(),
            day_time,
        })
    }

    /// When the joint action `options` (one option index per dimension) decided on the run `date`
    /// goes out for a customer in `time_zone` (the use case's zone when `None` or unknown): the first
    /// occurrence of its local time that is not before `not_before` (see the [module docs](self)).
    ///
    /// # Errors
    /// [`Error::UseCase`] for options that do not fit the use case or a time zone that cannot be
    /// resolved.
    pub fn slot(
        &self,
        options: &[u32],
        date: Date,
        time_zone: Option<&str>,
        not_before: Option<Timestamp>,
    ) -> Result<SendSlot> {
        let dimensions = self.use_case.actions.dimensions();
        let payload = |d: Option<usize>| -> Result<Option<&OptionPayload>> {
            let Some(d) = d else { return Ok(None) };
            options
                .get(d)
                .and_then(|&o| dimensions.get(d)?.options.get(o as usize))
                .map(|o| Some(&o.payload))
                .ok_or_else(|| self.error(format!("no option {:?} for dimension {d}", options.get(d))))
        };
        let (send_time, day) = (payload(self.send_time)?, payload(self.day)?);
        self.place(send_time, day, date, time_zone, not_before)
            .map_err(|message| self.error(message))
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::UseCase {
            use_case: self.use_case.name.to_string(),
            message: message.into(),
        }
    }

    /// The rule itself, on the payloads of the send-time and day-of-week options.
    fn place(
        &self,
        send_time: Option<&OptionPayload>,
        day: Option<&OptionPayload>,
        date: Date,
        time_zone: Option<&str>,
        not_before: Option<Timestamp>,
    ) -> std::result::Result<SendSlot, String> {
        let local_time = match send_time {
            None => None,
            Some(OptionPayload::SendTime { local_time }) => Some(*local_time),
            Some(_) => return Err("a send-time option without a local time".into()),
        };
        let weekday = match day {
            None => None,
            Some(OptionPayload::DayOfWeek { weekday }) => Some(*weekday),
            Some(_) => return Err("a day-of-week option without a weekday".into()),
        };
        let first = match weekday {
            None => date,
            Some(weekday) => {
                let ahead =
                    (weekday.to_jiff().to_monday_zero_offset() - date.weekday().to_monday_zero_offset()).rem_euclid(7);
                add_days(date, i64::from(ahead))?
            }
        };
        let local_time = match (local_time, weekday) {
            (Some(time), _) => time,
            (None, None) => return Ok(SendSlot::Now),
            (None, Some(_)) if first == date => return Ok(SendSlot::Now),
            (None, Some(_)) => self.day_time,
        };
        let zone = time_zone
            .and_then(|name| TimeZone::get(name).ok())
            .or_else(|| self.time_zone.clone())
            .ok_or_else(|| {
                format!(
                    "unknown time zone `{}`: cannot place local send times",
                    self.use_case.time_zone
                )
            })?;
        // `LocalTime` guarantees hour 0–23 and minute 0–59, so both conversions succeed.
        let (hour, minute) = (
            i8::try_from(local_time.hour()).unwrap_or(0),
            i8::try_from(local_time.minute()).unwrap_or(0),
        );
        let place = |day: Date| -> std::result::Result<SendSlot, String> {
            let local = day.at(hour, minute, 0, 0);
            let at = local
                .to_zoned_datetime(zone.clone())
                .map_err(|e| format!("cannot place {local} in its time zone: {e}"))?
                .timestamp();
            Ok(SendSlot::Scheduled { local, at })
        };
        let slot = place(first)?;
        let Some(not_before) = not_before else {
            return Ok(slot);
        };
        if slot.at().is_some_and(|at| at >= not_before) {
            return Ok(slot);
        }
        // Whole steps (a day, or a week for a weekday option) to the first occurrence at or after
        // `not_before`: jump to one step before the local date of `not_before`, then walk (a DST
        // change moves an occurrence by an hour at most, so a few steps always suffice).
        let step: i64 = if weekday.is_some() { 7 } else { 1 };
        let target = zone.to_datetime(not_before).date();
        let behind = (target - first).get_days().max(0);
        let mut k = (i64::from(behind) / step - 1).max(1) * step;
        for _ in 0..8 {
            let slot = place(add_days(first, k)?)?;
            if slot.at().is_some_and(|at| at >= not_before) {
                return Ok(slot);
            }
            k += step;
        }
        Err(format!("no occurrence of {local_time} after {not_before}"))
    }
}

/// `date` plus `days`.
fn add_days(date: Date, days: i64) -> std::result::Result<Date, String> {
    date.checked_add(jiff::Span::new().days(days))
        .map_err(|e| format!("no date {days} day(s) after {date}: {e}"))
}

/// Where the dimensions that steer activation are.
#[derive(Debug)]
struct Layout<'a> {
    use_case: &'a UseCase,
    dimensions: &'a [Dimension],
    channel: Option<usize>,
    frequency: Option<usize>,
    /// When sends go out.
    scheduler: Scheduler<'a>,
}

impl<'a> Layout<'a> {
    fn new(use_case: &'a UseCase) -> Result<Self> {
        let dimensions = use_case.actions.dimensions();
        let layout = Self {
            use_case,
            dimensions,
            channel: use_case.dimension_of_kind(DimensionKind::Channel),
            frequency: use_case.dimension_of_kind(DimensionKind::Frequency),
            scheduler: Scheduler::new(use_case)?,
        };
        if layout.channel.is_none() && use_case.activation.default_target.is_none() {
            return Err(layout.use_case_error(
                "no channel dimension and no `activation` campaign_id or canvas_id: nothing says which campaign or canvas sends",
            ));
        }
        Ok(layout)
    }

    fn use_case_error(&self, message: impl Into<String>) -> Error {
        Error::UseCase {
            use_case: self.use_case.name.to_string(),
            message: message.into(),
        }
    }

    /// The option of every dimension, checked against the use case.
    fn options(&self, request: &ActivationRequest) -> Result<Vec<&'a OptionSpec>> {
        if request.options.len() != self.dimensions.len() {
            return Err(bad(
                request,
                format!(
                    "{} option(s) for {} dimension(s)",
                    request.options.len(),
                    self.dimensions.len()
                ),
            ));
        }
        self.dimensions
            .iter()
            .zip(&request.options)
            .map(|(dimension, &index)| {
                dimension.options.get(index as usize).ok_or_else(|| {
                    bad(
                        request,
                        format!(
                            "option {index} of dimension `{}` does not exist (it has {})",
                            dimension.name,
                            dimension.options.len()
                        ),
                    )
                })
            })
            .collect()
    }

    /// The campaign or canvas of a decision.
    fn target(&self, request: &ActivationRequest, options: &[&OptionSpec]) -> Result<Target> {
        match self.channel {
            Some(d) => match &options[d].payload {
                OptionPayload::Channel { target, .. } => Ok(Target::from_message_target(target)),
                _ => Err(bad(
                    request,
                    format!("channel option `{}` names no campaign or canvas", options[d].id),
                )),
            },
            None => self
                .use_case
                .activation
                .default_target
                .as_ref()
                .map(Target::from_message_target)
                .ok_or_else(|| self.use_case_error("no channel dimension and no default target")),
        }
    }

    /// When a decision is sent ([`Scheduler::slot`]'s rule).
    fn when(&self, request: &ActivationRequest, options: &[&OptionSpec], date: Date) -> Result<When> {
        let payload = |d: Option<usize>| d.map(|d| &options[d].payload);
        let scheduler = &self.scheduler;
        let slot = scheduler
            .place(
                payload(scheduler.send_time),
                payload(scheduler.day),
                date,
                request.time_zone.as_deref(),
                request.not_before,
            )
            .map_err(|message| {
                if message.starts_with("unknown time zone") {
                    self.use_case_error(message)
                } else {
                    bad(request, message)
                }
            })?;
        Ok(match slot {
            SendSlot::Now => When::Now,
            SendSlot::Scheduled { local, .. } if self.use_case.activation.in_local_time => When::Local(local),
            SendSlot::Scheduled { at, .. } => When::At(at),
        })
    }

    /// The per-recipient personalisation of a decision.
    fn properties(&self, options: &[&OptionSpec]) -> Map<String, Value> {
        let mut map = Map::new();
        let others = || {
            self.dimensions
                .iter()
                .zip(options)
                .enumerate()
                .filter(|(d, _)| Some(*d) != self.channel)
                .map(|(_, pair)| pair)
        };
        for (_, option) in others() {
            for (key, value) in &option.properties {
                map.insert(key.clone(), value.clone());
            }
        }
        for (dimension, option) in others() {
            map.insert(dimension.name.to_string(), Value::String(option.id.to_string()));
        }
        map
    }

    /// The profile attributes of a decision: `<prefix><dimension>` → option id, for every dimension
    /// whose option differs from `previous` (every dimension without one).
    fn attributes(&self, entry: &Entry<'_, '_>) -> AttributesObject {
        let prefix = &self.use_case.activation.attribute_prefix;
        self.dimensions
            .iter()
            .zip(&entry.options)
            .zip(entry.chosen)
            .enumerate()
            .filter(|(d, (_, chosen))| entry.previous.is_none_or(|previous| previous.get(*d) != Some(chosen)))
            .fold(
                AttributesObject::new(UserIdentifier::external_id(entry.customer)).update_existing_only(true),
                |object, (_, ((dimension, option), _))| {
                    object.attribute(format!("{prefix}{}", dimension.name), option.id.to_string())
                },
            )
    }
}

/// A [`Error::BadDecision`] for `request`.
fn bad(request: &ActivationRequest, message: impl Into<String>) -> Error {
    Error::BadDecision {
        decision: request.decision_id.clone(),
        message: message.into(),
    }
}

/// One recipient of a group: its properties and attributes are built from `options` only when its
/// batch is, so planning a million recipients holds their option choices, not their JSON.
#[derive(Debug)]
struct Entry<'r, 'u> {
    decision_id: &'r str,
    customer: &'r str,
    options: Vec<&'u OptionSpec>,
    /// The decision's option indices ([`ActivationRequest::options`]).
    chosen: &'r [u32],
    /// The options already on the profile ([`ActivationRequest::previous`]), checked to have one
    /// entry per dimension.
    previous: Option<&'r [u32]>,
}

/// The batches for `requests` of `use_case` on `date`; see the [module docs](self). Both activators
/// plan with it; [`crate::Activator::plan`] is this function.
///
/// # Errors
/// [`Error::BadDecision`] for a decision whose options (or previous options) do not fit the use
/// case, or a decision id or customer listed twice; [`Error::UseCase`] when the use case names no campaign or canvas, a
/// decision's personalisation exceeds [`MAX_PROPERTIES_BYTES`], or a UTC conversion needs an unknown
/// time zone.
pub fn plan(use_case: &UseCase, date: Date, requests: &[ActivationRequest]) -> Result<Vec<PlannedBatch>> {
    let layout = Layout::new(use_case)?;
    let mut order: Vec<&ActivationRequest> = requests.iter().collect();
    order.sort_by(|a, b| {
        a.decision_id
            .cmp(&b.decision_id)
            .then_with(|| a.customer_id.cmp(&b.customer_id))
    });
    for pair in order.windows(2) {
        if pair[0].decision_id == pair[1].decision_id {
            return Err(bad(pair[1], "the decision is listed twice"));
        }
    }
    let mut customers: HashSet<&str> = HashSet::with_capacity(order.len());
    let mut checked_sizes: HashSet<&[u32]> = HashSet::new();
    let mut groups: BTreeMap<(Target, When), Vec<Entry<'_, '_>>> = BTreeMap::new();
    let mut attributes: Vec<Entry<'_, '_>> = Vec::new();
    for request in order {
        let customer = request.customer_id.as_str();
        if !customers.insert(customer) {
            return Err(bad(
                request,
                format!("customer `{customer}` has another decision in the same plan"),
            ));
        }
        let options = layout.options(request)?;
        if layout.frequency.is_some_and(|d| options[d].is_skip()) {
            continue;
        }
        let target = layout.target(request, &options)?;
        let when = layout.when(request, &options, date)?;
        if checked_sizes.insert(request.options.as_slice()) {
            let size = serde_json::to_vec(&layout.properties(&options)).map_or(usize::MAX, |bytes| bytes.len());
            if size > MAX_PROPERTIES_BYTES {
                return Err(layout.use_case_error(format!(
                    "the properties of decision {} take {size} bytes; Braze accepts at most {MAX_PROPERTIES_BYTES}",
                    request.decision_id
                )));
            }
        }
        let previous = request.previous.as_deref();
        if let Some(previous) = previous
            && previous.len() != request.options.len()
        {
            return Err(bad(
                request,
                format!(
                    "{} previous option(s) for {} dimension(s)",
                    previous.len(),
                    request.options.len()
                ),
            ));
        }
        let entry = Entry {
            decision_id: &request.decision_id,
            customer,
            options,
            chosen: &request.options,
            previous,
        };
        if use_case.activation.write_profile_attributes && previous != Some(entry.chosen) {
            attributes.push(Entry {
                options: entry.options.clone(),
                ..entry
            });
        }
        groups.entry((target, when)).or_default().push(entry);
    }

    let per_request = usize::try_from(use_case.braze.track_objects_per_request)
        .unwrap_or(MAX_TRACK_OBJECTS)
        .clamp(1, MAX_TRACK_OBJECTS);
    let mut batches = Vec::with_capacity(attributes.len().div_ceil(per_request) + groups.len());
    let mut chunks = attributes.into_iter().peekable();
    while chunks.peek().is_some() {
        let chunk: Vec<Entry<'_, '_>> = chunks.by_ref().take(per_request).collect();
        let decision_ids: Vec<String> = chunk.iter().map(|e| e.decision_id.to_owned()).collect();
        let request = TrackRequest::new().attributes(chunk.iter().map(|e| layout.attributes(e)));
        batches.push(batch(
            use_case,
            date,
            BatchKind::TrackAttributes,
            When::Now,
            decision_ids,
            &request,
        )?);
    }
    for ((target, when), entries) in groups {
        let kind = target.kind(when);
        let mut entries = entries.into_iter().peekable();
        while entries.peek().is_some() {
            let chunk: Vec<Entry<'_, '_>> = entries.by_ref().take(MAX_RECIPIENTS).collect();
            let decision_ids: Vec<String> = chunk.iter().map(|e| e.decision_id.to_owned()).collect();
            let canvas = matches!(target, Target::Canvas(_));
            let recipients = chunk.into_iter().map(|entry| {
                let recipient = Recipient::external_user_id(entry.customer);
                let properties = layout.properties(&entry.options);
                match (properties.is_empty(), canvas) {
                    (true, _) => recipient,
                    (false, false) => recipient.trigger_properties(properties),
                    (false, true) => recipient.context(properties),
                }
            });
            let planned = match (&target, when.schedule()) {
                (Target::Campaign(id), None) => {
                    let request = CampaignTriggerSendRequest::new(id.clone()).recipients(recipients);
                    batch(use_case, date, kind.clone(), when, decision_ids, &request)?
                }
                (Target::Campaign(id), Some(schedule)) => {
                    let request = CampaignTriggerScheduleRequest::new(id.clone(), schedule).recipients(recipients);
                    batch(use_case, date, kind.clone(), when, decision_ids, &request)?
                }
                (Target::Canvas(id), None) => {
                    let request = CanvasTriggerSendRequest::new(id.clone()).recipients(recipients);
                    batch(use_case, date, kind.clone(), when, decision_ids, &request)?
                }
                (Target::Canvas(id), Some(schedule)) => {
                    let request = CanvasTriggerScheduleRequest::new(id.clone(), schedule).recipients(recipients);
                    batch(use_case, date, kind.clone(), when, decision_ids, &request)?
                }
            };
            batches.push(planned);
        }
    }
    Ok(batches)
}

/// A planned batch: its id, and `request` serialised exactly as it will be sent.
fn batch(
    use_case: &UseCase,
    date: Date,
    kind: BatchKind,
    when: When,
    decision_ids: Vec<String>,
    request: &impl serde::Serialize,
) -> Result<PlannedBatch> {
    let request = serde_json::to_string(request).map_err(|e| Error::UseCase {
        use_case: use_case.name.to_string(),
        message: format!("cannot serialise a Braze request: {e}"),
    })?;
    Ok(PlannedBatch {
        id: batch_id(use_case.name.as_str(), date, &kind, when, &decision_ids),
        kind,
        decision_ids,
        request,
    })
}

/// The xxh3-128 hash (32 hex digits) of the use case, date, kind, schedule and decision ids, each
/// field length-prefixed so no two different inputs share a byte string.
fn batch_id(use_case: &str, date: Date, kind: &BatchKind, when: When, decision_ids: &[String]) -> String {
    let (kind_name, target) = match kind {
        BatchKind::CampaignSend { campaign_id } => ("campaign_send", campaign_id.as_str()),
        BatchKind::CampaignSchedule { campaign_id } => ("campaign_schedule", campaign_id.as_str()),
        BatchKind::CanvasSend { canvas_id } => ("canvas_send", canvas_id.as_str()),
        BatchKind::CanvasSchedule { canvas_id } => ("canvas_schedule", canvas_id.as_str()),
        BatchKind::TrackAttributes => ("track_attributes", ""),
    };
    let mut hasher = Xxh3::new();
    let mut field = |bytes: &[u8]| {
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(b"offerloop-activation batch v1");
    field(use_case.as_bytes());
    field(date.to_string().as_bytes());
    field(kind_name.as_bytes());
    field(target.as_bytes());
    field(when.key().as_bytes());
    for id in decision_ids {
        field(id.as_bytes());
    }
    format!("{:032x}", hasher.digest128())
}

/// Every Liquid property offerloop sends (as `trigger_properties` or `context`) for `use_case`, with
/// the ids of the options, across dimensions, that send it. Mirrors the planning rules: every
/// non-channel dimension sends `"<dimension name>": "<option id>"` (so every one of its options sends
/// the dimension's name), and every non-channel option sends its own `properties` keys. A frequency
/// "skip" option sends nothing, so it never appears. Used by `offerloop check` to judge Liquid.
pub fn sent_properties(use_case: &UseCase) -> BTreeMap<String, std::collections::BTreeSet<String>> {
    let channel = use_case.dimension_of_kind(DimensionKind::Channel);
    let mut sent: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for (d, dimension) in use_case.actions.dimensions().iter().enumerate() {
        if Some(d) == channel {
            continue;
        }
        for option in dimension.options.iter().filter(|o| !o.is_skip()) {
            let id = option.id.to_string();
            sent.entry(dimension.name.to_string()).or_default().insert(id.clone());
            for key in option.properties.keys() {
                sent.entry(key.clone()).or_default().insert(id.clone());
            }
        }
    }
    sent
}

/// The properties of [`sent_properties`] that every message carries, whatever the decision: the
/// properties some non-channel dimension sends with each of its (non-skip) options — its own name,
/// and any key all of its options carry.
pub fn always_sent_properties(use_case: &UseCase) -> std::collections::BTreeSet<String> {
    let channel = use_case.dimension_of_kind(DimensionKind::Channel);
    let mut always = std::collections::BTreeSet::new();
    for (d, dimension) in use_case.actions.dimensions().iter().enumerate() {
        if Some(d) == channel {
            continue;
        }
        let mut sending = dimension.options.iter().filter(|o| !o.is_skip());
        let Some(first) = sending.next() else {
            continue;
        };
        always.insert(dimension.name.to_string());
        let mut common: std::collections::BTreeSet<&String> = first.properties.keys().collect();
        for option in sending {
            common.retain(|key| option.properties.contains_key(*key));
        }
        always.extend(common.into_iter().cloned());
    }
    always
}

/// The profile attributes offerloop writes for `use_case` (`<attribute_prefix><dimension>` for every
/// dimension), empty unless `activation.write_profile_attributes` is set.
pub fn written_attributes(use_case: &UseCase) -> std::collections::BTreeSet<String> {
    if !use_case.activation.write_profile_attributes {
        return std::collections::BTreeSet::new();
    }
    let prefix = &use_case.activation.attribute_prefix;
    use_case
        .actions
        .dimensions()
        .iter()
        .map(|d| format!("{prefix}{}", d.name))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use offerloop_braze::api::messaging::{
        CampaignTriggerScheduleRequest, CampaignTriggerSendRequest, CanvasTriggerScheduleRequest,
        CanvasTriggerSendRequest,
    };
    use offerloop_braze::api::users::TrackRequest;
    use offerloop_domain::CustomerId;
    use offerloop_domain::config::parse_use_case;
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// A shipped example use case.
    pub(crate) fn example(name: &str) -> UseCase {
        let path = format!("{}/../../examples/{name}.toml", env!("CARGO_MANIFEST_DIR"));
        let source = std::fs::read_to_string(&path).unwrap();
        parse_use_case(&source, &path).unwrap()
    }

    /// A decision `id` for customer `customer` choosing `choices` (dimension, option id); the first
    /// option of every other dimension.
    pub(crate) fn request(use_case: &UseCase, id: &str, customer: &str, choices: &[(&str, &str)]) -> ActivationRequest {
        let mut options = vec![0; use_case.actions.dimensions().len()];
        for (dimension, option) in choices {
            let (d, o) = use_case.actions.resolve(dimension, option).unwrap();
            options[d] = u32::try_from(o).unwrap();
        }
        ActivationRequest {
            decision_id: id.to_owned(),
            customer_id: CustomerId::new(customer).unwrap(),
            options,
            time_zone: None,
            previous: None,
            not_before: None,
        }
    }

    fn date(text: &str) -> Date {
        text.parse().unwrap()
    }

    /// `n` winback decisions cycling through every offer, channel, send time and subject.
    fn winback_requests(use_case: &UseCase, n: usize) -> Vec<ActivationRequest> {
        let sizes: Vec<usize> = use_case.actions.dimensions().iter().map(Dimension::len).collect();
        (0..n)
            .map(|i| {
                let mut rest = i;
                let options = sizes
                    .iter()
                    .map(|&size| {
                        let o = rest % size;
                        rest = rest / size + i;
                        u32::try_from(o).unwrap()
                    })
                    .collect();
                ActivationRequest {
                    decision_id: format!("d-{i:05}"),
                    customer_id: CustomerId::new(format!("wb-{i}")).unwrap(),
                    options,
                    time_zone: None,
                    previous: None,
                    not_before: None,
                }
            })
            .collect()
    }

    fn recipients(batch: &PlannedBatch) -> Vec<Value> {
        batch.request_json().unwrap()["recipients"].as_array().unwrap().clone()
    }

    #[test]
    fn winback_batches_hold_at_most_50_recipients_grouped_by_campaign_and_local_time() {
        let use_case = example("winback");
        let requests = winback_requests(&use_case, 1000);
        let batches = plan(&use_case, date("2026-01-05"), &requests).unwrap();
        let mut seen = BTreeSet::new();
        let mut sends = 0;
        for batch in &batches {
            if batch.kind == BatchKind::TrackAttributes {
                continue;
            }
            let BatchKind::CampaignSchedule { campaign_id } = &batch.kind else {
                panic!("winback has send times: {:?}", batch.kind);
            };
            assert_eq!(batch.request_json().unwrap()["campaign_id"], json!(campaign_id));
            let list = recipients(batch);
            assert!(!list.is_empty() && list.len() <= MAX_RECIPIENTS, "{}", list.len());
            assert_eq!(list.len(), batch.decision_ids.len());
            let schedule = &batch.request_json().unwrap()["schedule"];
            assert_eq!(schedule["in_local_time"], json!(true));
            let time = schedule["time"].as_str().unwrap();
            assert!(
                ["2026-01-05T09:00:00", "2026-01-05T12:30:00", "2026-01-05T19:00:00"].contains(&time),
                "{time}"
            );
            let channel = use_case.actions.dimension_index("channel").unwrap();
            let send_time = use_case.actions.dimension_index("send_time").unwrap();
            for (recipient, decision) in list.iter().zip(&batch.decision_ids) {
                let request = requests.iter().find(|r| &r.decision_id == decision).unwrap();
                assert_eq!(recipient["external_user_id"], json!(request.customer_id.as_str()));
                // Every recipient of the batch chose its campaign and its local time.
                let dims = use_case.actions.dimensions();
                let OptionPayload::Channel { target, .. } =
                    &dims[channel].options[request.options[channel] as usize].payload
                else {
                    panic!("channel option without target")
                };
                assert_eq!(target, &MessageTarget::Campaign(campaign_id.clone()));
                let OptionPayload::SendTime { local_time } =
                    &dims[send_time].options[request.options[send_time] as usize].payload
                else {
                    panic!("send-time option without time")
                };
                assert!(time.ends_with(&format!("{local_time}:00")), "{time} vs {local_time}");
                assert!(seen.insert(decision.clone()), "{decision} in two batches");
                assert!(recipient.get("context").is_none());
            }
            let mut sorted = batch.decision_ids.clone();
            sorted.sort();
            assert_eq!(sorted, batch.decision_ids, "recipients in decision-id order");
            sends += list.len();
        }
        assert_eq!(sends, 1000);
        // Groups are cut into full batches except the last of each group.
        let groups: BTreeSet<(String, String)> = batches
            .iter()
            .filter(|b| b.kind != BatchKind::TrackAttributes)
            .map(|b| {
                (
                    format!("{:?}", b.kind),
                    b.request_json().unwrap()["schedule"]["time"].to_string(),
                )
            })
            .collect();
        let send_batches = batches.iter().filter(|b| b.kind != BatchKind::TrackAttributes).count();
        assert!(
            send_batches <= groups.len() + 1000 / MAX_RECIPIENTS,
            "{send_batches} batches for {} groups",
            groups.len()
        );
    }

    #[test]
    fn campaign_recipients_carry_trigger_properties_of_every_other_dimension() {
        let use_case = example("winback");
        let decision = request(
            &use_case,
            "d-1",
            "wb-1",
            &[
                ("offer", "pct20"),
                ("channel", "sms"),
                ("send_time", "lunch"),
                ("subject", "new_arrivals"),
            ],
        );
        let batches = plan(&use_case, date("2026-01-05"), &[decision]).unwrap();
        let send = batches.iter().find(|b| b.kind != BatchKind::TrackAttributes).unwrap();
        assert_eq!(
            send.kind,
            BatchKind::CampaignSchedule {
                campaign_id: "a27d0c41-winback-sms".into()
            }
        );
        assert_eq!(
            send.request_json().unwrap(),
            json!({
                "campaign_id": "a27d0c41-winback-sms",
                "recipients": [{
                    "external_user_id": "wb-1",
                    "trigger_properties": {
                        "offer": "pct20",
                        "discount_pct": 20,
                        "coupon_prefix": "WB20",
                        "send_time": "lunch",
                        "subject": "new_arrivals",
                        "subject_text": "New arrivals picked for you",
                    },
                }],
                "schedule": {"time": "2026-01-05T12:30:00", "in_local_time": true},
            })
        );
    }

    /// Workspaces whose contract allows 50 updates per request set it; nothing else changes.
    #[test]
    fn profile_attributes_follow_the_use_cases_objects_per_request() {
        let mut use_case = example("winback");
        use_case.braze.track_objects_per_request = 50;
        let requests = winback_requests(&use_case, 120);
        let batches = plan(&use_case, date("2026-01-05"), &requests).unwrap();
        let sizes: Vec<usize> = batches
            .iter()
            .filter(|b| b.kind == BatchKind::TrackAttributes)
            .map(|b| b.decision_ids.len())
            .collect();
        assert_eq!(sizes, [50, 50, 20]);
    }

    #[test]
    fn profile_attributes_are_batched_75_to_a_request_with_the_prefix() {
        let use_case = example("winback");
        let requests = winback_requests(&use_case, 200);
        let batches = plan(&use_case, date("2026-01-05"), &requests).unwrap();
        let track: Vec<&PlannedBatch> = batches
            .iter()
            .filter(|b| b.kind == BatchKind::TrackAttributes)
            .collect();
        assert_eq!(
            track.iter().map(|b| b.decision_ids.len()).collect::<Vec<_>>(),
            [75, 75, 50]
        );
        // They come before the sends.
        assert!(batches[..3].iter().all(|b| b.kind == BatchKind::TrackAttributes));
        let first = &track[0].request_json().unwrap()["attributes"][0];
        assert_eq!(first["external_id"], json!("wb-0"));
        assert_eq!(first["_update_existing_only"], json!(true));
        for key in [
            "offerloop_offer",
            "offerloop_channel",
            "offerloop_send_time",
            "offerloop_subject",
        ] {
            assert!(first[key].is_string(), "{key} missing in {first}");
        }
        let typed: TrackRequest = serde_json::from_str(&track[0].request).unwrap();
        assert_eq!(typed.attributes.len(), 75);

        let mut quiet = use_case;
        quiet.activation.write_profile_attributes = false;
        let batches = plan(&quiet, date("2026-01-05"), &requests).unwrap();
        assert!(batches.iter().all(|b| b.kind != BatchKind::TrackAttributes));
    }

    /// The attribute objects of `batches`' `/users/track` requests, by `external_id`.
    fn attribute_objects(batches: &[PlannedBatch]) -> BTreeMap<String, Value> {
        batches
            .iter()
            .filter(|b| b.kind == BatchKind::TrackAttributes)
            .flat_map(|b| b.request_json().unwrap()["attributes"].as_array().unwrap().clone())
            .map(|object| (object["external_id"].as_str().unwrap().to_owned(), object))
            .collect()
    }

    #[test]
    fn profile_attributes_are_deltas_against_the_previous_options() {
        let use_case = example("winback");
        let choices = [
            ("offer", "pct20"),
            ("channel", "sms"),
            ("send_time", "lunch"),
            ("subject", "new_arrivals"),
        ];
        // The same options as before: the message goes out, no attribute is written.
        let mut same = request(&use_case, "d-1", "wb-1", &choices);
        same.previous = Some(same.options.clone());
        // Only the offer changed (pct10 before): only `offerloop_offer` is written.
        let mut offer_changed = request(&use_case, "d-2", "wb-2", &choices);
        let before = [("offer", "pct10"), choices[1], choices[2], choices[3]];
        offer_changed.previous = Some(request(&use_case, "x", "wb-2", &before).options);
        // Nothing known: every dimension is written.
        let unknown = request(&use_case, "d-3", "wb-3", &choices);
        let batches = plan(&use_case, date("2026-01-05"), &[same.clone(), offer_changed, unknown]).unwrap();

        let objects = attribute_objects(&batches);
        assert_eq!(objects.keys().collect::<Vec<_>>(), ["wb-2", "wb-3"]);
        assert_eq!(
            objects["wb-2"],
            json!({"external_id": "wb-2", "_update_existing_only": true, "offerloop_offer": "pct20"})
        );
        assert_eq!(
            objects["wb-3"],
            json!({
                "external_id": "wb-3",
                "_update_existing_only": true,
                "offerloop_offer": "pct20",
                "offerloop_channel": "sms",
                "offerloop_send_time": "lunch",
                "offerloop_subject": "new_arrivals",
            })
        );
        let track: Vec<&PlannedBatch> = batches
            .iter()
            .filter(|b| b.kind == BatchKind::TrackAttributes)
            .collect();
        assert_eq!(track.len(), 1);
        assert_eq!(track[0].decision_ids, ["d-2", "d-3"], "d-1 has nothing to write");
        // Every decision is still sent.
        let sent: BTreeSet<&String> = batches
            .iter()
            .filter(|b| b.kind != BatchKind::TrackAttributes)
            .flat_map(|b| &b.decision_ids)
            .collect();
        assert_eq!(sent.len(), 3);

        // A decision with nothing new alone: its message, and no `/users/track` request at all.
        let alone = plan(&use_case, date("2026-01-05"), std::slice::from_ref(&same)).unwrap();
        assert_eq!(alone.len(), 1);
        assert_ne!(alone[0].kind, BatchKind::TrackAttributes);
    }

    #[test]
    fn previous_options_that_do_not_fit_the_use_case_are_refused() {
        let use_case = example("winback");
        let mut decision = request(&use_case, "d-1", "wb-1", &[]);
        decision.previous = Some(vec![0]);
        assert!(matches!(
            plan(&use_case, date("2026-01-05"), &[decision]),
            Err(Error::BadDecision { .. })
        ));
    }

    #[test]
    fn deltas_are_batched_75_to_a_request_in_decision_order() {
        let use_case = example("winback");
        let offer = use_case.actions.dimension_index("offer").unwrap();
        let offers = use_case.actions.dimensions()[offer].len();
        let mut requests = winback_requests(&use_case, 300);
        // Every third decision changed nothing; the others changed their offer only.
        for (i, r) in requests.iter_mut().enumerate() {
            let mut previous = r.options.clone();
            if i % 3 != 0 {
                previous[offer] = (previous[offer] + 1) % u32::try_from(offers).unwrap();
            }
            r.previous = Some(previous);
        }
        let batches = plan(&use_case, date("2026-01-05"), &requests).unwrap();
        let track: Vec<&PlannedBatch> = batches
            .iter()
            .filter(|b| b.kind == BatchKind::TrackAttributes)
            .collect();
        assert_eq!(
            track.iter().map(|b| b.decision_ids.len()).collect::<Vec<_>>(),
            [75, 75, 50]
        );
        let written: Vec<&String> = track.iter().flat_map(|b| &b.decision_ids).collect();
        let expected: Vec<String> = (0..300).filter(|i| i % 3 != 0).map(|i| format!("d-{i:05}")).collect();
        assert_eq!(written, expected.iter().collect::<Vec<_>>());
        for object in attribute_objects(&batches).values() {
            let keys: BTreeSet<&str> = object.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                BTreeSet::from(["external_id", "_update_existing_only", "offerloop_offer"])
            );
        }
        // Deterministic: the same inputs, the same ids and bytes.
        assert_eq!(plan(&use_case, date("2026-01-05"), &requests).unwrap(), batches);
    }

    #[test]
    fn a_skip_sends_nothing_and_canvases_get_context() {
        let use_case = example("lead-nurture");
        let skip = request(&use_case, "d-1", "l-1", &[("channel", "email"), ("cadence", "skip")]);
        let email = request(
            &use_case,
            "d-2",
            "l-2",
            &[("channel", "email"), ("content", "roi_calculator")],
        );
        let whatsapp = request(&use_case, "d-3", "l-3", &[("channel", "whatsapp")]);
        assert!(
            plan(&use_case, date("2026-03-02"), std::slice::from_ref(&skip))
                .unwrap()
                .is_empty()
        );

        let batches = plan(&use_case, date("2026-03-02"), &[skip, email, whatsapp]).unwrap();
        let decided: Vec<&String> = batches.iter().flat_map(|b| &b.decision_ids).collect();
        assert!(
            !decided.contains(&&"d-1".to_owned()),
            "a skip has no batch, not even attributes"
        );
        let canvas = batches
            .iter()
            .find(|b| matches!(b.kind, BatchKind::CanvasSend { .. }))
            .unwrap();
        assert_eq!(
            canvas.kind,
            BatchKind::CanvasSend {
                canvas_id: "7a5e0c39-nurture-email-canvas".into()
            }
        );
        let recipient = &recipients(canvas)[0];
        assert_eq!(recipient["external_user_id"], json!("l-2"));
        assert_eq!(recipient["context"]["content"], json!("roi_calculator"));
        assert_eq!(recipient["context"]["cadence"], json!("weekly"));
        assert!(recipient.get("trigger_properties").is_none());
        assert!(
            recipient["context"].get("channel").is_none(),
            "the channel selects the target instead"
        );
        assert!(
            canvas.request_json().unwrap().get("schedule").is_none(),
            "no send time: immediate"
        );
        let campaign = batches
            .iter()
            .find(|b| matches!(b.kind, BatchKind::CampaignSend { .. }))
            .unwrap();
        assert_eq!(
            campaign.request_json().unwrap()["campaign_id"],
            json!("e8d21f4b-nurture-whatsapp")
        );
        assert!(recipients(campaign)[0]["trigger_properties"].is_object());
    }

    #[test]
    fn a_weekday_schedules_on_the_next_matching_day_or_sends_today() {
        let use_case = example("repeat-purchase");
        // 2026-01-05 is a Monday.
        let monday = request(&use_case, "d-1", "r-1", &[("channel", "email"), ("day", "monday")]);
        let thursday = request(&use_case, "d-2", "r-2", &[("channel", "email"), ("day", "thursday")]);
        let sunday = request(&use_case, "d-3", "r-3", &[("channel", "push"), ("day", "sunday")]);
        let batches = plan(&use_case, date("2026-01-05"), &[monday, thursday, sunday]).unwrap();
        let by_decision = |id: &str| {
            batches
                .iter()
                .find(|b| b.decision_ids.contains(&id.to_owned()))
                .unwrap()
        };
        assert!(matches!(by_decision("d-1").kind, BatchKind::CampaignSend { .. }));
        // The end of the quiet hours (09:00 in repeat-purchase) on the next Thursday.
        assert_eq!(
            by_decision("d-2").request_json().unwrap()["schedule"],
            json!({"time": "2026-01-08T09:00:00", "in_local_time": true})
        );
        let sunday = by_decision("d-3");
        assert!(matches!(sunday.kind, BatchKind::CanvasSchedule { .. }));
        assert_eq!(
            sunday.request_json().unwrap()["schedule"]["time"],
            json!("2026-01-11T09:00:00")
        );
        assert!(recipients(sunday)[0]["context"].is_object());

        // The next Monday from a Tuesday is six days later; without quiet hours, 09:00.
        let mut no_quiet = use_case.clone();
        no_quiet.guardrails.quiet_hours = None;
        let monday = request(&use_case, "d-1", "r-1", &[("channel", "email"), ("day", "monday")]);
        let batches = plan(&no_quiet, date("2026-01-06"), &[monday]).unwrap();
        assert_eq!(
            batches[0].request_json().unwrap()["schedule"]["time"],
            json!("2026-01-12T09:00:00")
        );
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// The referral example's run at 00:00 UTC (11:00 in Sydney, 08:00 in Perth), with the engine's
    /// default 15-minute margin: a 07:30 send has passed there, so it moves to 07:30 the next day;
    /// 19:30 is still ahead and stays on the run date.
    #[test]
    fn a_passed_local_send_time_moves_to_the_next_day() {
        let mut use_case = example("referral");
        use_case.activation.write_profile_attributes = false;
        let not_before = Some(ts("2026-01-05T00:15:00Z"));
        let at = |id: &str, customer: &str, zone: &str, time: &str| {
            let mut r = request(&use_case, id, customer, &[("send_time", time)]);
            r.time_zone = Some(zone.into());
            r.not_before = not_before;
            r
        };
        let requests = [
            at("d-1", "rf-1", "Australia/Sydney", "breakfast"),
            at("d-2", "rf-2", "Australia/Sydney", "after_dinner"),
            at("d-3", "rf-3", "Australia/Perth", "breakfast"),
        ];
        let schedules = |use_case: &UseCase| -> Vec<(Value, Vec<String>)> {
            plan(use_case, date("2026-01-05"), &requests)
                .unwrap()
                .iter()
                .map(|b| (b.request_json().unwrap()["schedule"].clone(), b.decision_ids.clone()))
                .collect()
        };
        assert_eq!(
            schedules(&use_case),
            [
                (
                    json!({"time": "2026-01-05T19:30:00", "in_local_time": true}),
                    vec!["d-2".to_owned()]
                ),
                (
                    json!({"time": "2026-01-06T07:30:00", "in_local_time": true}),
                    vec!["d-1".to_owned(), "d-3".to_owned()]
                ),
            ]
        );
        // Converted to UTC the same rule holds: 07:30 on the 6th in Sydney (UTC+11) and Perth (UTC+8).
        let mut utc = use_case.clone();
        utc.activation.in_local_time = false;
        assert_eq!(
            schedules(&utc),
            [
                (json!({"time": "2026-01-05T08:30:00Z"}), vec!["d-2".to_owned()]),
                (json!({"time": "2026-01-05T20:30:00Z"}), vec!["d-1".to_owned()]),
                (json!({"time": "2026-01-05T23:30:00Z"}), vec!["d-3".to_owned()]),
            ]
        );
        // Without `not_before` nothing moves (the behaviour that let Braze skip the 07:30 sends).
        let legacy: Vec<ActivationRequest> = requests
            .iter()
            .cloned()
            .map(|r| ActivationRequest { not_before: None, ..r })
            .collect();
        let batches = plan(&use_case, date("2026-01-05"), &legacy).unwrap();
        assert!(
            batches
                .iter()
                .any(|b| b.request_json().unwrap()["schedule"]["time"] == json!("2026-01-05T07:30:00"))
        );
    }

    #[test]
    fn the_margin_boundary_and_weekdays_move_by_whole_occurrences() {
        let use_case = example("referral");
        let scheduler = Scheduler::new(&use_case).unwrap();
        let breakfast = {
            let r = request(&use_case, "d", "c", &[("send_time", "breakfast")]);
            r.options
        };
        let day = date("2026-01-05");
        let slot = |not_before: &str| {
            scheduler
                .slot(&breakfast, day, Some("Australia/Sydney"), Some(ts(not_before)))
                .unwrap()
        };
        // 07:30 in Sydney on the 5th is 2026-01-04T20:30:00Z: exactly then is still on time.
        assert_eq!(slot("2026-01-04T20:30:00Z").at(), Some(ts("2026-01-04T20:30:00Z")));
        assert_eq!(slot("2026-01-04T20:30:01Z").at(), Some(ts("2026-01-05T20:30:00Z")));
        // A run replayed days late still lands on the first occurrence ahead, not a past one.
        assert_eq!(slot("2026-01-09T21:00:00Z").at(), Some(ts("2026-01-10T20:30:00Z")));
        assert_eq!(
            scheduler
                .slot(&breakfast, day, Some("Australia/Sydney"), None)
                .unwrap()
                .at(),
            Some(ts("2026-01-04T20:30:00Z"))
        );

        // repeat-purchase: weekday options without a send time (09:00, the end of its quiet hours,
        // America/Chicago). 2026-01-05 is a Monday.
        let use_case = example("repeat-purchase");
        let scheduler = Scheduler::new(&use_case).unwrap();
        let thursday = request(&use_case, "d", "c", &[("channel", "email"), ("day", "thursday")]).options;
        let monday = request(&use_case, "d", "c", &[("channel", "email"), ("day", "monday")]).options;
        // Thursday 09:00 in Chicago is 15:00Z; asked for after it, the send goes a week later.
        let on = |options: &[u32], not_before: &str| scheduler.slot(options, day, None, Some(ts(not_before))).unwrap();
        assert_eq!(
            on(&thursday, "2026-01-05T12:00:00Z").at(),
            Some(ts("2026-01-08T15:00:00Z"))
        );
        assert_eq!(
            on(&thursday, "2026-01-08T15:10:00Z").at(),
            Some(ts("2026-01-15T15:00:00Z"))
        );
        // The run date's own weekday without a send time goes at once.
        assert_eq!(on(&monday, "2026-01-05T23:00:00Z"), SendSlot::Now);
    }

    #[test]
    fn without_local_time_the_send_time_is_converted_to_utc_per_customer() {
        let mut use_case = example("winback");
        use_case.activation.in_local_time = false;
        use_case.activation.write_profile_attributes = false;
        let choices = [("channel", "email"), ("send_time", "morning")];
        let mut paris = request(&use_case, "d-1", "c-1", &choices);
        paris.time_zone = Some("Europe/Paris".into());
        let new_york = request(&use_case, "d-2", "c-2", &choices);
        let mut unknown = request(&use_case, "d-3", "c-3", &choices);
        unknown.time_zone = Some("Mars/Olympus".into());
        let batches = plan(&use_case, date("2026-01-05"), &[paris, new_york, unknown]).unwrap();
        let times: Vec<(Value, Vec<String>)> = batches
            .iter()
            .map(|b| (b.request_json().unwrap()["schedule"].clone(), b.decision_ids.clone()))
            .collect();
        assert_eq!(
            times,
            [
                (json!({"time": "2026-01-05T08:00:00Z"}), vec!["d-1".to_owned()]),
                // New York (the use case's zone) for the customer without one and the unknown zone.
                (
                    json!({"time": "2026-01-05T14:00:00Z"}),
                    vec!["d-2".to_owned(), "d-3".to_owned()]
                ),
            ]
        );
    }

    #[test]
    fn without_a_channel_dimension_the_default_target_sends() {
        let use_case = example("referral");
        let decision = request(&use_case, "d-1", "f-1", &[("incentive", "give60_get30")]);
        let batches = plan(&use_case, date("2026-05-04"), std::slice::from_ref(&decision)).unwrap();
        let send = batches.iter().find(|b| b.kind != BatchKind::TrackAttributes).unwrap();
        assert_eq!(
            send.kind,
            BatchKind::CampaignSchedule {
                campaign_id: "f61c2d84-referral-email".into()
            }
        );
        let track = batches.iter().find(|b| b.kind == BatchKind::TrackAttributes).unwrap();
        assert_eq!(
            track.request_json().unwrap()["attributes"][0]["offerloop_ref_incentive"],
            json!("give60_get30")
        );

        let mut orphan = use_case;
        orphan.activation.default_target = None;
        assert!(matches!(
            plan(&orphan, date("2026-05-04"), &[decision]),
            Err(Error::UseCase { .. })
        ));
    }

    #[test]
    fn bad_decisions_are_refused() {
        let use_case = example("winback");
        let good = request(&use_case, "d-1", "c-1", &[]);
        let mut short = good.clone();
        short.options.pop();
        let mut out_of_range = good.clone();
        out_of_range.options[0] = 99;
        let mut same_customer = good.clone();
        same_customer.decision_id = "d-2".into();
        for requests in [
            vec![short],
            vec![out_of_range],
            vec![good.clone(), good.clone()],
            vec![good, same_customer],
        ] {
            let error = plan(&use_case, date("2026-01-05"), &requests).unwrap_err();
            assert!(matches!(error, Error::BadDecision { .. }), "{error}");
        }
    }

    #[test]
    fn oversized_properties_are_refused_and_the_examples_stay_far_below_the_limit() {
        for name in [
            "winback",
            "lead-nurture",
            "loyalty",
            "renewal",
            "referral",
            "cross-sell",
            "repeat-purchase",
        ] {
            let use_case = example(name);
            // The biggest properties of every dimension together.
            let largest: Vec<&OptionSpec> = use_case
                .actions
                .dimensions()
                .iter()
                .map(|d| {
                    d.options
                        .iter()
                        .max_by_key(|o| serde_json::to_vec(&o.properties).unwrap().len())
                        .unwrap()
                })
                .collect();
            let layout = Layout::new(&use_case).unwrap();
            let size = serde_json::to_vec(&layout.properties(&largest)).unwrap().len();
            assert!(size < MAX_PROPERTIES_BYTES / 10, "{name}: {size} bytes");
        }
        let mut use_case = example("winback");
        let offer = use_case.actions.dimension_index("offer").unwrap();
        let mut dimensions = use_case.actions.dimensions().to_vec();
        dimensions[offer].options[1]
            .properties
            .insert("blob".into(), json!("x".repeat(MAX_PROPERTIES_BYTES)));
        use_case.actions = offerloop_domain::ActionSpace::new(
            dimensions,
            use_case.actions.rules().to_vec(),
            use_case.actions.eligibility_rules().to_vec(),
        )
        .unwrap();
        let big = request(&use_case, "d-1", "c-1", &[("offer", "pct10")]);
        let small = request(&use_case, "d-2", "c-2", &[("offer", "none")]);
        assert!(plan(&use_case, date("2026-01-05"), std::slice::from_ref(&small)).is_ok());
        assert!(matches!(
            plan(&use_case, date("2026-01-05"), &[small, big]),
            Err(Error::UseCase { .. })
        ));
    }

    #[test]
    fn every_request_reads_back_into_its_typed_request_unchanged() {
        for (name, day) in [
            ("winback", "2026-01-05"),
            ("lead-nurture", "2026-03-02"),
            ("repeat-purchase", "2026-01-05"),
            ("loyalty", "2026-02-02"),
        ] {
            let use_case = example(name);
            let sizes: Vec<usize> = use_case.actions.dimensions().iter().map(Dimension::len).collect();
            let requests: Vec<ActivationRequest> = (0..300)
                .map(|i| ActivationRequest {
                    decision_id: format!("{name}-{i:04}"),
                    customer_id: CustomerId::new(format!("c-{i}")).unwrap(),
                    options: sizes
                        .iter()
                        .enumerate()
                        .map(|(d, &n)| u32::try_from((i * (d + 3) + i / 7) % n).unwrap())
                        .collect(),
                    time_zone: None,
                    previous: None,
                    not_before: None,
                })
                .collect();
            let batches = plan(&use_case, date(day), &requests).unwrap();
            assert!(!batches.is_empty(), "{name}");
            for batch in batches {
                let back = match &batch.kind {
                    BatchKind::CampaignSend { .. } => serde_json::to_value(
                        serde_json::from_str::<CampaignTriggerSendRequest>(&batch.request).unwrap(),
                    ),
                    BatchKind::CampaignSchedule { .. } => serde_json::to_value(
                        serde_json::from_str::<CampaignTriggerScheduleRequest>(&batch.request).unwrap(),
                    ),
                    BatchKind::CanvasSend { .. } => {
                        serde_json::to_value(serde_json::from_str::<CanvasTriggerSendRequest>(&batch.request).unwrap())
                    }
                    BatchKind::CanvasSchedule { .. } => serde_json::to_value(
                        serde_json::from_str::<CanvasTriggerScheduleRequest>(&batch.request).unwrap(),
                    ),
                    BatchKind::TrackAttributes => {
                        serde_json::to_value(serde_json::from_str::<TrackRequest>(&batch.request).unwrap())
                    }
                }
                .unwrap();
                assert_eq!(back, batch.request_json().unwrap(), "{name}: {:?}", batch.kind);
                assert_eq!(batch.id.len(), 32);
            }
        }
    }

    #[test]
    fn batch_ids_depend_on_date_and_decisions() {
        let use_case = example("winback");
        let requests = winback_requests(&use_case, 60);
        let ids = |day: &str, requests: &[ActivationRequest]| -> Vec<String> {
            plan(&use_case, date(day), requests)
                .unwrap()
                .into_iter()
                .map(|b| b.id)
                .collect()
        };
        let monday = ids("2026-01-05", &requests);
        let unique: BTreeSet<&String> = monday.iter().collect();
        assert_eq!(unique.len(), monday.len(), "ids are unique within a plan");
        assert_eq!(monday, ids("2026-01-05", &requests));
        assert!(ids("2026-01-06", &requests).iter().all(|id| !monday.contains(id)));
        let fewer = ids("2026-01-05", &requests[1..]);
        assert!(fewer.iter().any(|id| !monday.contains(id)));
    }

    /// Time zones from UTC−10 to UTC+14, with and without daylight saving time.
    const ZONES: [&str; 9] = [
        "Pacific/Honolulu",
        "America/Los_Angeles",
        "America/New_York",
        "Europe/London",
        "Europe/Berlin",
        "Asia/Kolkata",
        "Australia/Perth",
        "Australia/Sydney",
        "Pacific/Kiritimati",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// No planned schedule falls before `not_before` (the run time plus the margin) for any
        /// recipient, whatever the run time, the zones and the options; and a send-time schedule is
        /// the first occurrence after it (at most a day and a DST hour later).
        #[test]
        fn no_planned_schedule_is_before_the_run_time_plus_margin(
            n in 1usize..120,
            minutes in 0i64..(3 * 24 * 60),
            margin in 0i64..120,
            zones in proptest::collection::vec(0usize..ZONES.len(), 1..120),
            local in any::<bool>(),
            weekdays in any::<bool>(),
        ) {
            let (mut use_case, date) = if weekdays {
                (example("repeat-purchase"), date("2026-03-27"))
            } else {
                (example("winback"), date("2026-03-27"))
            };
            use_case.activation.in_local_time = local;
            use_case.activation.write_profile_attributes = false;
            // From a day before the run date's midnight UTC to two days after, across the 2026-03-29
            // European and the 2026-03-08 American DST changes' neighbourhood.
            let now = ts("2026-03-26T00:00:00Z") + jiff::SignedDuration::from_mins(minutes);
            let not_before = now + jiff::SignedDuration::from_mins(margin);
            let sizes: Vec<usize> = use_case.actions.dimensions().iter().map(Dimension::len).collect();
            let requests: Vec<ActivationRequest> = (0..n)
                .map(|i| ActivationRequest {
                    decision_id: format!("d-{i:05}"),
                    customer_id: CustomerId::new(format!("c-{i}")).unwrap(),
                    options: sizes.iter().enumerate().map(|(d, &k)| u32::try_from((i * (d + 5) + i / 3) % k).unwrap()).collect(),
                    time_zone: Some(ZONES[zones[i % zones.len()]].to_owned()),
                    previous: None,
                    not_before: Some(not_before),
                })
                .collect();
            let scheduler = Scheduler::new(&use_case).unwrap();
            let by_id: BTreeMap<&str, &ActivationRequest> = requests.iter().map(|r| (r.decision_id.as_str(), r)).collect();
            let step = jiff::SignedDuration::from_hours(if weekdays { 7 * 24 } else { 24 } + 1);
            for batch in plan(&use_case, date, &requests).unwrap() {
                let body = batch.request_json().unwrap();
                let Some(time) = body["schedule"]["time"].as_str() else { continue };
                for id in &batch.decision_ids {
                    let request = by_id[id.as_str()];
                    let zone = request.time_zone.as_deref().unwrap();
                    let at = if local {
                        let civil: DateTime = time.parse().unwrap();
                        civil.to_zoned_datetime(TimeZone::get(zone).unwrap()).unwrap().timestamp()
                    } else {
                        time.parse::<Timestamp>().unwrap()
                    };
                    prop_assert!(at >= not_before, "{id} in {zone}: {time} before {not_before}");
                    // Unmoved when the run date's occurrence is ahead; else the first one after.
                    let on_date = scheduler.slot(&request.options, date, Some(zone), None).unwrap().at().unwrap();
                    if on_date >= not_before {
                        prop_assert_eq!(at, on_date);
                    } else {
                        prop_assert!(at < not_before + step, "{time} is not the first occurrence after {not_before}");
                    }
                }
            }
        }

        #[test]
        fn any_permutation_gives_the_same_batches(
            n in 1usize..260,
            seed in any::<u64>(),
            local in any::<bool>(),
        ) {
            let mut use_case = example("winback");
            use_case.activation.in_local_time = local;
            let requests = winback_requests(&use_case, n);
            let mut shuffled = requests.clone();
            // A Fisher-Yates shuffle driven by the seed (splitmix64).
            let mut state = seed;
            for i in (1..shuffled.len()).rev() {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                shuffled.swap(i, usize::try_from(z % (i as u64 + 1)).unwrap());
            }
            let a = plan(&use_case, date("2026-01-05"), &requests).unwrap();
            let b = plan(&use_case, date("2026-01-05"), &shuffled).unwrap();
            prop_assert_eq!(serde_json::to_vec(&a).unwrap(), serde_json::to_vec(&b).unwrap());
            let sent: usize = a.iter().filter(|b| b.kind != BatchKind::TrackAttributes).map(|b| b.decision_ids.len()).sum();
            prop_assert_eq!(sent, n);
            for batch in &a {
                let limit = if batch.kind == BatchKind::TrackAttributes { MAX_TRACK_OBJECTS } else { MAX_RECIPIENTS };
                prop_assert!(batch.decision_ids.len() <= limit);
            }
        }
    }
}
