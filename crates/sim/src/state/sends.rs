//! The send log and schedules: what every accepted `/messages/*`, `/campaigns/trigger/*` and
//! `/canvas/trigger/*` request does to the workspace once validated.
//!
//! A request becomes a [`SendPlan`] (what to send: which campaign, Canvas or inline messages, with
//! which `dispatch_id` and `send_id`) and a list of [`Target`]s (who, with their merged properties).
//! [`execute`] turns them into one [`Workspace::deliver`](super::Workspace::deliver) call per user and
//! channel. A schedule keeps the plan and a due time per recipient (local-time schedules give every
//! recipient its own instant); [`run_due_schedules`] executes the due ones in time order when the
//! clock advances, each at its scheduled instant so the world sees the recipient's local hour.
//!
//! Choices where Braze is unspecified or the simulator is simpler (documented, deliberate):
//! - a campaign with several channels sends on **each** of its channels; with several variations on a
//!   channel a user gets one, chosen by a stable hash of campaign and user;
//! - a campaign with a control variant keeps a stable share `1 / (variations + 1)` of users out;
//! - a Canvas entry receives the messages of the first step that has messages (the single variant);
//! - broadcast and segment audiences are resolved when the request (or schedule) is accepted.

use jiff::Timestamp;
use serde_json::{Map, Value};

use super::Workspace;
use super::catalog::IdGen;
use super::events::MessageRef;
use crate::world::Channel;

/// What a send delivers.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// `/messages/send` content: the channels of its `messages` object, each with the
    /// `message_variation_id` the request named (if any).
    Messages {
        /// The campaign the send counts toward.
        campaign_id: Option<String>,
        /// Channels with their optional variation id.
        channels: Vec<(Channel, Option<String>)>,
    },
    /// An API-triggered campaign.
    Campaign {
        /// `campaign_id`.
        campaign_id: String,
    },
    /// An API-triggered Canvas.
    Canvas {
        /// `canvas_id`.
        canvas_id: String,
    },
}

/// One accepted send: what, and under which ids.
#[derive(Clone, Debug, PartialEq)]
pub struct SendPlan {
    /// What to deliver.
    pub source: Source,
    /// The request's `dispatch_id`.
    pub dispatch_id: String,
    /// The request's `send_id` (campaigns only).
    pub send_id: Option<String>,
}

/// One recipient of a send with its properties (recipient-level keys already merged over the
/// request-level ones).
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// User index (see [`super::users::Users`]).
    pub user: usize,
    /// `trigger_properties` / Canvas `context` for this user.
    pub properties: Map<String, Value>,
}

/// A record of one executed dispatch (immediate or one scheduled run).
#[derive(Clone, Debug, PartialEq)]
pub struct Dispatch {
    /// What was sent.
    pub plan: SendPlan,
    /// When.
    pub at: Timestamp,
    /// Messages handed to delivery (users × channels).
    pub messages: usize,
    /// The schedule it ran for, if any.
    pub schedule_id: Option<String>,
}

/// When a schedule sends.
#[derive(Clone, Debug, PartialEq)]
pub enum ScheduleTime {
    /// At one instant for everybody.
    At(Timestamp),
    /// At this wall-clock time in each recipient's `time_zone` (`in_local_time` / `at_optimal_time`).
    Local(jiff::civil::DateTime),
}

/// A recipient of a schedule and its due instant.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduledTarget {
    /// Who and with what.
    pub target: Target,
    /// When it is due; `None` when the local time had already passed for this user (not sent).
    pub due: Option<Timestamp>,
    /// Whether it was sent.
    pub done: bool,
}

/// A stored schedule (`schedule_id`).
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// `schedule_id`.
    pub schedule_id: String,
    /// What to send (the plan's `dispatch_id` is the one returned at creation).
    pub plan: SendPlan,
    /// When.
    pub time: ScheduleTime,
    /// Recipients with their due instants.
    pub targets: Vec<ScheduledTarget>,
    /// When it was created.
    pub created_at: Timestamp,
    /// Deleted through a `.../schedule/delete` call.
    pub deleted: bool,
}

impl Schedule {
    /// The earliest instant still due (for listing and tests).
    pub fn next_due(&self) -> Option<Timestamp> {
        if self.deleted {
            return None;
        }
        self.targets.iter().filter(|t| !t.done).filter_map(|t| t.due).min()
    }
}

/// Dispatches and schedules.
#[derive(Debug)]
pub struct Sends {
    /// Every executed dispatch, in execution order.
    pub dispatches: Vec<Dispatch>,
    /// Every schedule, in creation order (deleted ones stay, marked).
    pub schedules: Vec<Schedule>,
    ids: IdGen,
}

impl Default for Sends {
    fn default() -> Sends {
        Sends {
            dispatches: Vec::new(),
            schedules: Vec::new(),
            ids: IdGen::new(0x5e_4d_5f_1d),
        }
    }
}

impl Sends {
    /// A fresh `dispatch_id`.
    pub fn new_dispatch_id(&mut self) -> String {
        self.ids.next_id("dispatch")
    }

    /// A fresh `schedule_id`.
    pub fn new_schedule_id(&mut self) -> String {
        self.ids.next_id("schedule")
    }

    /// A fresh generated `send_id` (for tracked broadcasts).
    pub fn new_send_id(&mut self) -> String {
        self.ids.next_id("send")
    }

    /// The schedule with `id`, unless deleted.
    pub fn schedule_mut(&mut self, id: &str) -> Option<&mut Schedule> {
        self.schedules.iter_mut().find(|s| s.schedule_id == id && !s.deleted)
    }

    /// The schedule with `id`, unless deleted.
    pub fn schedule(&self, id: &str) -> Option<&Schedule> {
        self.schedules.iter().find(|s| s.schedule_id == id && !s.deleted)
    }
}

/// The IANA time zone of user `index` (profile `time_zone`), UTC when missing or unknown.
pub fn time_zone_of(workspace: &Workspace, user: usize) -> jiff::tz::TimeZone {
    workspace
        .users
        .time_zone(&workspace.world, user)
        .and_then(|name| jiff::tz::TimeZone::get(&name).ok())
        .unwrap_or(jiff::tz::TimeZone::UTC)
}

/// The instant at which `time` falls for `user`: the wall-clock time in the user's zone for local
/// schedules (DST gaps resolve forward, folds to the earlier instant).
pub fn due_instant(workspace: &Workspace, user: usize, time: &ScheduleTime) -> Option<Timestamp> {
    match time {
        ScheduleTime::At(at) => Some(*at),
        ScheduleTime::Local(civil) => civil
            .to_zoned_datetime(time_zone_of(workspace, user))
            .ok()
            .map(|z| z.timestamp()),
    }
}

/// Stores a schedule of `plan` for `targets` at `time` and returns its `schedule_id`. Recipients whose
/// local time has already passed (before `workspace.now`) are kept but never sent.
pub fn add_schedule(workspace: &mut Workspace, plan: SendPlan, targets: Vec<Target>, time: ScheduleTime) -> String {
    let schedule_id = workspace.sends.new_schedule_id();
    let now = workspace.now;
    let targets = targets
        .into_iter()
        .map(|target| {
            let due = due_instant(workspace, target.user, &time).filter(|due| *due >= now);
            ScheduledTarget {
                target,
                due,
                done: false,
            }
        })
        .collect();
    workspace.sends.schedules.push(Schedule {
        schedule_id: schedule_id.clone(),
        plan,
        time,
        targets,
        created_at: now,
        deleted: false,
    });
    schedule_id
}

/// Moves a schedule's unsent recipients to `time`. Returns false when there is no such schedule.
pub fn reschedule(workspace: &mut Workspace, schedule_id: &str, time: ScheduleTime) -> bool {
    let Some(index) = workspace
        .sends
        .schedules
        .iter()
        .position(|s| s.schedule_id == schedule_id && !s.deleted)
    else {
        return false;
    };
    let now = workspace.now;
    let users: Vec<(usize, bool)> = workspace.sends.schedules[index]
        .targets
        .iter()
        .map(|t| (t.target.user, t.done))
        .collect();
    let dues: Vec<Option<Timestamp>> = users
        .iter()
        .map(|(user, done)| {
            if *done {
                None
            } else {
                due_instant(workspace, *user, &time).filter(|d| *d >= now)
            }
        })
        .collect();
    let schedule = &mut workspace.sends.schedules[index];
    for (target, due) in schedule.targets.iter_mut().zip(dues) {
        if !target.done {
            target.due = due;
        }
    }
    schedule.time = time;
    true
}

/// Sends `plan` to `targets` at `at` (one [`Workspace::deliver`](super::Workspace::deliver) per user
/// and channel) and records the dispatch. Returns the number of messages handed to delivery.
pub fn execute(workspace: &mut Workspace, plan: &SendPlan, targets: &[Target], at: Timestamp) -> usize {
    execute_for(workspace, plan, targets, at, None)
}

fn execute_for(
    workspace: &mut Workspace,
    plan: &SendPlan,
    targets: &[Target],
    at: Timestamp,
    schedule_id: Option<String>,
) -> usize {
    let mut messages = 0;
    // Recipients of one request share its message references (one per channel and variation).
    let mut shared: std::collections::HashMap<MessageRef, std::sync::Arc<MessageRef>> =
        std::collections::HashMap::new();
    for target in targets {
        for message in message_refs(workspace, plan, target.user) {
            let message = std::sync::Arc::clone(
                shared
                    .entry(message)
                    .or_insert_with_key(|m| std::sync::Arc::new(m.clone())),
            );
            workspace.deliver(target.user, message, target.properties.clone(), at);
            messages += 1;
        }
    }
    workspace.sends.dispatches.push(Dispatch {
        plan: plan.clone(),
        at,
        messages,
        schedule_id,
    });
    messages
}

/// The messages `plan` sends to `user`: one per channel (see the module docs for variants and control).
pub fn message_refs(workspace: &Workspace, plan: &SendPlan, user: usize) -> Vec<MessageRef> {
    let base = |channel: Channel| MessageRef {
        campaign_id: None,
        canvas_id: None,
        canvas_step_id: None,
        message_variation_id: None,
        dispatch_id: plan.dispatch_id.clone(),
        send_id: plan.send_id.clone(),
        channel,
    };
    match &plan.source {
        Source::Messages { campaign_id, channels } => channels
            .iter()
            .map(|(channel, variation)| MessageRef {
                campaign_id: campaign_id.clone(),
                message_variation_id: variation.clone(),
                ..base(*channel)
            })
            .collect(),
        Source::Campaign { campaign_id } => {
            let Some(campaign) = workspace.catalog.campaign(campaign_id) else {
                return Vec::new();
            };
            let external_id = workspace.users.external_id(&workspace.world, user).unwrap_or_default();
            let hash = xxhash_rust::xxh3::xxh3_64(format!("{campaign_id}\u{0}{external_id}").as_bytes());
            let channels = campaign.channels();
            let widest = channels
                .iter()
                .map(|c| campaign.variations.iter().filter(|v| v.channel == *c).count())
                .max()
                .unwrap_or(1)
                .max(1) as u64;
            if campaign.control_id.is_some() && hash % (widest + 1) == widest {
                return Vec::new();
            }
            channels
                .into_iter()
                .map(|channel| {
                    let options: Vec<&str> = campaign
                        .variations
                        .iter()
                        .filter(|v| v.channel == channel)
                        .map(|v| v.id.as_str())
                        .collect();
                    let variation = if options.is_empty() {
                        None
                    } else {
                        let pick = usize::try_from((hash >> 16) % options.len() as u64).unwrap_or(0);
                        options.get(pick).map(|s| (*s).to_owned())
                    };
                    MessageRef {
                        campaign_id: Some(campaign_id.clone()),
                        message_variation_id: variation,
                        ..base(channel)
                    }
                })
                .collect()
        }
        Source::Canvas { canvas_id } => {
            let Some(canvas) = workspace.catalog.canvas(canvas_id) else {
                return Vec::new();
            };
            let Some(step) = canvas.steps.iter().find(|s| !s.variations.is_empty()) else {
                return Vec::new();
            };
            step.variations
                .iter()
                .map(|v| MessageRef {
                    canvas_id: Some(canvas_id.clone()),
                    canvas_step_id: Some(step.id.clone()),
                    message_variation_id: Some(v.id.clone()),
                    ..base(v.channel)
                })
                .collect()
        }
    }
}

/// Whether a schedule's source may still send (the campaign is not paused, archived or a draft; the
/// Canvas is enabled and not archived); checked when a scheduled run comes due.
fn source_active(workspace: &Workspace, source: &Source) -> bool {
    match source {
        Source::Messages { .. } => true,
        Source::Campaign { campaign_id } => workspace
            .catalog
            .campaign(campaign_id)
            .is_some_and(|c| !c.spec.paused && !c.spec.archived && !c.spec.draft),
        Source::Canvas { canvas_id } => workspace
            .catalog
            .canvas(canvas_id)
            .is_some_and(|c| c.spec.enabled && !c.spec.archived),
    }
}

/// Executes the schedules due at or before `until` (sends them as of their time). Called by
/// [`super::Workspace::advance_to`].
///
/// Due (schedule, recipient) pairs run in order of due instant (ties: schedule creation order, then
/// recipient order); recipients of one schedule due at the same instant form one dispatch.
pub fn run_due_schedules(workspace: &mut Workspace, until: jiff::Timestamp) {
    let mut due: Vec<(Timestamp, usize, usize)> = Vec::new();
    for (s, schedule) in workspace.sends.schedules.iter().enumerate() {
        if schedule.deleted {
            continue;
        }
        for (r, target) in schedule.targets.iter().enumerate() {
            if let Some(at) = target.due
                && !target.done
                && at <= until
            {
                due.push((at, s, r));
            }
        }
    }
    due.sort_unstable();
    let mut i = 0;
    while i < due.len() {
        let (at, s, _) = due[i];
        let mut j = i;
        while j < due.len() && due[j].0 == at && due[j].1 == s {
            j += 1;
        }
        let schedule = &mut workspace.sends.schedules[s];
        let mut targets = Vec::with_capacity(j - i);
        for &(_, _, r) in &due[i..j] {
            schedule.targets[r].done = true;
            targets.push(schedule.targets[r].target.clone());
        }
        let plan = schedule.plan.clone();
        let schedule_id = schedule.schedule_id.clone();
        if source_active(workspace, &plan.source) {
            execute_for(workspace, &plan, &targets, at, Some(schedule_id));
        }
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::state::EventKind;
    use crate::world::{Scenario, World};

    const SCENARIO: &str = r#"
name = "sends"
seed = 9
customers = 200
start = "2026-01-05T00:00:00Z"

[conversion]
type = "purchase"
product_id = "sku"
value = { kind = "fixed", value = 10 }

[response]
open = { base = 0.0 }
click = { base = -1.0 }
convert = { base = -1.0 }
unsubscribe = { base = -6.0 }
organic = { base = -9.0 }

[[braze.campaigns]]
id = "ab"
name = "A/B with control"
channels = ["email", "sms"]
control_variant = true
messages = [{ channel = "email", name = "A" }, { channel = "email", name = "B" }]

[[braze.campaigns]]
id = "paused"
name = "Paused"
channels = ["email"]
paused = true
"#;

    fn workspace() -> Workspace {
        let scenario = Scenario::from_toml_str(SCENARIO, None).unwrap();
        Workspace::new(Arc::new(World::new(scenario).unwrap()))
    }

    fn plan(campaign: &str, dispatch: &str) -> SendPlan {
        SendPlan {
            source: Source::Campaign {
                campaign_id: campaign.into(),
            },
            dispatch_id: dispatch.into(),
            send_id: None,
        }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn campaign_variants_are_stable_per_user_and_the_control_keeps_a_share_out() {
        let ws = workspace();
        let mut control = 0;
        let mut per_variation: std::collections::BTreeMap<String, usize> = Default::default();
        for user in 0..200 {
            let refs = message_refs(&ws, &plan("ab", "d1"), user);
            assert_eq!(refs, message_refs(&ws, &plan("ab", "d1"), user), "deterministic");
            if refs.is_empty() {
                control += 1;
                continue;
            }
            let channels: Vec<Channel> = refs.iter().map(|m| m.channel).collect();
            assert_eq!(channels, [Channel::Email, Channel::Sms], "one message per channel");
            let email = refs[0].message_variation_id.clone().unwrap();
            *per_variation.entry(email.clone()).or_default() += 1;
            let again = message_refs(&ws, &plan("ab", "d2"), user);
            assert_eq!(
                again[0].message_variation_id.as_deref(),
                Some(email.as_str()),
                "same variant on every send"
            );
        }
        // Two email variants + control: a third of the users each, roughly.
        assert!((40..=95).contains(&control), "control share {control}");
        assert_eq!(per_variation.len(), 2);
        assert!(per_variation.values().all(|n| *n >= 40), "{per_variation:?}");
    }

    #[test]
    fn due_schedules_run_in_time_order_once_and_skip_paused_sources() {
        let mut ws = workspace();
        let target = |user| Target {
            user,
            properties: Map::new(),
        };
        let late = add_schedule(
            &mut ws,
            plan("ab", "late"),
            vec![target(1), target(2)],
            ScheduleTime::At(t("2026-01-05T10:00:00Z")),
        );
        add_schedule(
            &mut ws,
            plan("ab", "early"),
            vec![target(3)],
            ScheduleTime::At(t("2026-01-05T02:00:00Z")),
        );
        add_schedule(
            &mut ws,
            plan("paused", "never"),
            vec![target(4)],
            ScheduleTime::At(t("2026-01-05T01:00:00Z")),
        );
        assert_eq!(
            ws.sends.schedule(&late).and_then(Schedule::next_due),
            Some(t("2026-01-05T10:00:00Z"))
        );
        run_due_schedules(&mut ws, t("2026-01-05T05:00:00Z"));
        let dispatched: Vec<&str> = ws
            .sends
            .dispatches
            .iter()
            .map(|d| d.plan.dispatch_id.as_str())
            .collect();
        assert_eq!(dispatched, ["early"], "paused sources and later schedules do not run");
        run_due_schedules(&mut ws, t("2026-01-06T00:00:00Z"));
        run_due_schedules(&mut ws, t("2026-01-07T00:00:00Z"));
        let dispatched: Vec<&str> = ws
            .sends
            .dispatches
            .iter()
            .map(|d| d.plan.dispatch_id.as_str())
            .collect();
        assert_eq!(
            dispatched,
            ["early", "late"],
            "recipients due together form one dispatch, run once"
        );
        let sends: Vec<Timestamp> = ws
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Send)
            .map(|e| e.time)
            .collect();
        assert!(sends.windows(2).all(|w| w[0] <= w[1]));
        assert!(
            ws.events
                .iter()
                .all(|e| e.message.as_ref().is_none_or(|m| m.dispatch_id != "never"))
        );
        assert_eq!(ws.sends.schedule(&late).and_then(Schedule::next_due), None);
    }

    #[test]
    fn rescheduling_moves_only_unsent_recipients() {
        let mut ws = workspace();
        let id = add_schedule(
            &mut ws,
            plan("ab", "d"),
            vec![Target {
                user: 5,
                properties: Map::new(),
            }],
            ScheduleTime::At(t("2026-01-05T03:00:00Z")),
        );
        assert!(reschedule(&mut ws, &id, ScheduleTime::At(t("2026-01-05T04:00:00Z"))));
        assert!(!reschedule(
            &mut ws,
            "missing",
            ScheduleTime::At(t("2026-01-05T04:00:00Z"))
        ));
        run_due_schedules(&mut ws, t("2026-01-05T03:30:00Z"));
        assert!(ws.sends.dispatches.is_empty());
        run_due_schedules(&mut ws, t("2026-01-05T04:00:00Z"));
        assert_eq!(ws.sends.dispatches.len(), 1);
        assert_eq!(ws.sends.dispatches[0].at, t("2026-01-05T04:00:00Z"));
    }
}
