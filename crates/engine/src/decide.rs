//! Holdout, guardrails and decisions for one run's audience.
//!
//! Every customer goes to a holdout group ([`offerloop_domain::Holdout::assign`], a salted hash):
//! - **control** receives the business-as-usual joint action (propensity 1), or nothing when the use
//!   case's control is `no_message` (or when the business-as-usual action is not eligible for them);
//!   such "no message" decisions are stored for the report but never activated nor learned from;
//! - **random control** receives a uniformly random eligible joint action, with propensity
//!   `1 / eligible count`, drawn from a generator seeded by (policy seed, round, customer);
//! - **treatment** is decided by the policy, in parallel ([`Policy::decide_batch`]); while the
//!   unsubscribe guardrail pauses treatment, treated customers get business as usual instead
//!   ([`PAUSED_VERSION`]).
//!
//! Guardrails are checked first (frequency, spacing, eligibility); then a message whose send time
//! falls in the quiet hours is dropped, and the run's budgets are spent in audience order.
//!
//! # When a message goes out
//! A message's `planned_send_at` is placed by activation's one rule
//! ([`offerloop_activation::Scheduler::slot`]): the first occurrence of its send-time (and
//! day-of-week) option's local time, in the customer's zone, that is not before
//! [`DecideContext::not_before`] — the time of the decide phase plus
//! [`crate::RunOptions::schedule_margin`]. A 07:30 send decided at 11:00 local goes out at 07:30 the
//! next day instead of being skipped by Braze (which does not send to recipients whose local time has
//! passed); activation schedules exactly that instant. The action and its logged propensity do not
//! change (the option means "the next 07:30"), the attribution window still starts at the decision,
//! and the local time of day is the option's, so the quiet-hours check holds for a moved send. The
//! frequency guardrails count decisions (`decided_at`), as before: every send goes out within a day
//! (plus the margin) of its decision, moved or not — a 19:00 send decided at 01:00 already did — so
//! `min_days_between_messages` keeps its meaning of days between decisions.
//!
//! Everything is a pure function of the audience, the model, the round, the earlier messages and
//! `not_before`, so a resumed run decides exactly the same actions (a decide phase resumed after a
//! send time has passed places the rest of its messages later, which is what Braze needs).

use jiff::Timestamp;
use jiff::civil::Date;
use offerloop_activation::Scheduler;
use offerloop_domain::dimension::OptionPayload;
use offerloop_domain::{ActionId, Customer, Decision, Group, JointAction, LocalTime, Probability, UseCase};
use offerloop_policy::sampling::{Eligible, customer_rng};
use offerloop_policy::{DecisionRound, Policy, Setup};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::guardrails::{Blocked, Budget, GuardrailCounts, MessageHistory, in_quiet_hours};

/// The `policy_version` of a control decision that sends nothing.
pub const NO_MESSAGE_VERSION: &str = "control/no_message";
/// The `policy_version` of a business-as-usual control decision.
pub const BUSINESS_AS_USUAL_VERSION: &str = "control/business_as_usual";
/// The `policy_version` of a random-control decision.
pub const RANDOM_CONTROL_VERSION: &str = "random_control/uniform";
/// The `policy_version` of a treatment decision while treatment is paused by the unsubscribe
/// guardrail (the business-as-usual action, propensity 1).
pub const PAUSED_VERSION: &str = "treatment/paused";
/// Messages each of treatment and control needs before the unsubscribe guardrail can pause treatment.
pub const MIN_MESSAGES_FOR_UNSUBSCRIBE_GUARDRAIL: usize = 200;
/// The random stream of random-control draws (distinct from every policy stream).
const RANDOM_CONTROL_STREAM: u64 = 0x7261_6e64_6374_726c;

/// The stable id of a customer's decision in a run: one per use case, date and customer.
pub fn decision_id(use_case: &str, date: Date, customer: &str) -> String {
    format!("{use_case}:{date}:{customer}")
}

/// Whether a decision sends a message (not a "no message" control, no "skip" option).
pub fn is_message(use_case: &UseCase, decision: &Decision) -> bool {
    if decision.policy_version == NO_MESSAGE_VERSION {
        return false;
    }
    match use_case.actions.decode(decision.action) {
        Ok(action) => !action.0.iter().enumerate().any(|(d, &o)| {
            use_case
                .actions
                .dimensions()
                .get(d)
                .and_then(|dim| dim.options.get(o as usize))
                .is_some_and(offerloop_domain::OptionSpec::is_skip)
        }),
        Err(_) => false,
    }
}

/// The local send time of a joint action (its send-time option), if it has one.
fn send_time(use_case: &UseCase, action: &JointAction) -> Option<LocalTime> {
    use_case
        .actions
        .dimensions()
        .iter()
        .zip(&action.0)
        .find_map(|(dim, &o)| match dim.options.get(o as usize).map(|opt| &opt.payload) {
            Some(OptionPayload::SendTime { local_time }) => Some(*local_time),
            _ => None,
        })
}

/// Customers per group among a run's decisions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCounts {
    /// Decided by the policy.
    pub treatment: u64,
    /// Business as usual.
    pub control: u64,
    /// Uniformly random.
    pub random_control: u64,
    /// Control decisions that send nothing.
    pub no_message: u64,
}

impl GroupCounts {
    /// Counts the groups of `decisions`.
    pub fn of(decisions: &[Decision]) -> Self {
        let mut c = Self::default();
        for d in decisions {
            match d.group {
                Group::Treatment => c.treatment += 1,
                Group::Control => c.control += 1,
                Group::RandomControl => c.random_control += 1,
            }
            if d.policy_version == NO_MESSAGE_VERSION {
                c.no_message += 1;
            }
        }
        c
    }
}

/// Everything one run's decisions depend on besides the customers.
#[derive(Clone, Copy)]
pub struct DecideContext<'a> {
    /// The use case.
    pub use_case: &'a UseCase,
    /// Its policy setup.
    pub setup: &'a Setup,
    /// The policy (treatment).
    pub policy: &'a dyn Policy,
    /// The round (decision time and day).
    pub round: DecisionRound,
    /// The run's date.
    pub date: Date,
    /// Messages of the week before.
    pub history: &'a MessageHistory,
    /// Customers per policy call.
    pub chunk: usize,
    /// Treatment is paused (unsubscribe guardrail): treated customers get business as usual.
    pub paused: bool,
    /// The earliest instant a message may be scheduled at (the decide phase's time plus the run's
    /// schedule margin): a local send time before it moves to its next occurrence.
    pub not_before: Timestamp,
}

impl std::fmt::Debug for DecideContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecideContext")
            .field("use_case", &self.use_case.name)
            .field("round", &self.round)
            .field("date", &self.date)
            .field("not_before", &self.not_before)
            .finish_non_exhaustive()
    }
}

enum Pending {
    Done(Decision),
    Treatment(usize),
}

/// Decides a run's audience a slice at a time, in audience order, carrying the run's budget and
/// guardrail counts from one slice to the next: slice by slice gives exactly the decisions one call
/// for the whole audience gives, without holding it all in memory.
#[derive(Debug)]
pub struct Decider<'a> {
    ctx: DecideContext<'a>,
    budget: Budget,
    counts: GuardrailCounts,
}

impl<'a> Decider<'a> {
    /// A decider with nothing admitted yet, spending `budget` (`Budget::default()`: the run's whole
    /// budgets; [`Budget::share_of`]: a shard's share of them).
    pub fn with_budget(ctx: DecideContext<'a>, budget: Budget) -> Self {
        Self {
            ctx,
            budget,
            counts: GuardrailCounts::default(),
        }
    }

    /// Customers stopped by each guardrail so far.
    pub fn guardrails(&self) -> GuardrailCounts {
        self.counts.clone()
    }

    /// Decides for `customers`, the next slice of the audience.
    ///
    /// # Errors
    /// The policy's error for a customer it cannot decide for, or an invalid propensity.
    pub fn decide(
        &mut self,
        customers: &[Customer],
        progress: &dyn crate::progress::PhaseProgress,
    ) -> Result<Vec<Decision>> {
        let ctx = self.ctx;
        decide_slice(ctx, customers, progress, &mut self.budget, &mut self.counts)
    }
}

fn decide_slice(
    ctx: DecideContext<'_>,
    customers: &[Customer],
    progress: &dyn crate::progress::PhaseProgress,
    budget: &mut Budget,
    counts: &mut GuardrailCounts,
) -> Result<Vec<Decision>> {
    let use_case = ctx.use_case;
    let scheduler = Scheduler::new(use_case)?;
    let name = use_case.name.as_str();
    let at = ctx.round.decided_at;
    let space = ctx.setup.space();
    let seed = use_case.policy.seed;
    let mut pending = Vec::with_capacity(customers.len());
    let mut treated: Vec<Customer> = Vec::new();
    let make = |c: &Customer, group, action: ActionId, propensity: Probability, version: &str, cost: f64| Decision {
        id: decision_id(name, ctx.date, c.id.as_str()),
        use_case: name.to_owned(),
        customer_id: c.id.clone(),
        decided_at: at,
        group,
        action,
        propensity,
        policy_version: version.to_owned(),
        planned_send_at: None,
        cost,
    };
    for c in customers {
        if let Err(why) = ctx.history.check(&use_case.guardrails, c.id.as_str(), at) {
            counts.count(why);
            continue;
        }
        let eligible = match Eligible::of(space, c) {
            Ok(e) => e,
            Err(_) => {
                counts.count(Blocked::Ineligible);
                continue;
            }
        };
        match use_case.holdout.assign(&c.id) {
            group @ (Group::Control | Group::Treatment) if group == Group::Control || ctx.paused => {
                let version = if group == Group::Control {
                    BUSINESS_AS_USUAL_VERSION
                } else {
                    PAUSED_VERSION
                };
                let decision = match ctx.setup.business_as_usual().filter(|a| eligible.contains(a)) {
                    Some(bau) => make(
                        c,
                        group,
                        eligible.encode(bau),
                        Probability::ONE,
                        version,
                        ctx.setup.cost(bau),
                    ),
                    None => make(c, group, ActionId(0), Probability::ONE, NO_MESSAGE_VERSION, 0.0),
                };
                pending.push(Pending::Done(decision));
            }
            Group::RandomControl => {
                let mut rng = customer_rng(seed, ctx.round.round, RANDOM_CONTROL_STREAM, c.id.as_str());
                let (id, action) = eligible.sample_uniform(&mut rng);
                let propensity = Probability::new(1.0 / eligible.count() as f64)?;
                pending.push(Pending::Done(make(
                    c,
                    Group::RandomControl,
                    id,
                    propensity,
                    RANDOM_CONTROL_VERSION,
                    ctx.setup.cost(&action),
                )));
            }
            // Control always took the arm above.
            Group::Treatment | Group::Control => {
                pending.push(Pending::Treatment(treated.len()));
                treated.push(c.clone());
            }
        }
    }
    progress.advance((customers.len() - treated.len()) as u64);
    let mut policy_decisions = Vec::with_capacity(treated.len());
    for chunk in treated.chunks(ctx.chunk.max(1)) {
        policy_decisions.extend(ctx.policy.decide_batch(chunk, &ctx.round)?);
        progress.advance(chunk.len() as u64);
    }
    let zones: std::collections::HashMap<&str, Option<&str>> = customers
        .iter()
        .map(|c| (c.id.as_str(), c.time_zone.as_deref()))
        .collect();
    let mut decisions = Vec::with_capacity(pending.len());
    for p in pending {
        let decision = match p {
            Pending::Done(d) => d,
            Pending::Treatment(i) => {
                let (c, pd) = (&treated[i], &policy_decisions[i]);
                let action = space.decode(pd.action)?;
                make(
                    c,
                    Group::Treatment,
                    pd.action,
                    Probability::new(pd.propensity)?,
                    &pd.model_version,
                    ctx.setup.cost(&action),
                )
            }
        };
        let mut decision = decision;
        if is_message(use_case, &decision) {
            let action = space.decode(decision.action)?;
            if let (Some(quiet), Some(t)) = (use_case.guardrails.quiet_hours, send_time(use_case, &action))
                && in_quiet_hours(quiet, t)
            {
                counts.count(Blocked::QuietHours);
                continue;
            }
            if let Err(why) = budget.admit(&use_case.guardrails, decision.cost) {
                counts.count(why);
                continue;
            }
            let zone = zones.get(decision.customer_id.as_str()).copied().flatten();
            decision.planned_send_at = scheduler.slot(&action.0, ctx.date, zone, Some(ctx.not_before))?.at();
        }
        decisions.push(decision);
    }
    Ok(decisions)
}
