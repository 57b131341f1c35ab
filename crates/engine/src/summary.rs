//! The run summary: what a daily run did, stored with the run and returned to the caller.

use std::collections::BTreeMap;

use offerloop_store::RunPhase;
use serde::{Deserialize, Serialize};

use crate::decide::GroupCounts;
use crate::delivery::DeliveryCounts;
use crate::guardrails::GuardrailCounts;

/// Send batches by state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchCounts {
    /// Planned, not sent.
    pub planned: u64,
    /// In flight (only seen mid-run).
    pub sending: u64,
    /// Accepted by Braze.
    pub sent: u64,
    /// Certainly rejected.
    pub failed: u64,
    /// Maybe applied: reported, never resent.
    pub unknown: u64,
    /// Retries of certainly-rejected batches made by this invocation.
    pub retries: u64,
}

/// What a daily run did. Counts of phases completed by an earlier (interrupted) invocation are those
/// that can be re-read from the store; `resumed_from` says where this invocation started.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Use case.
    pub use_case: String,
    /// Run date.
    pub date: String,
    /// Store id of the run.
    pub run_id: i64,
    /// The phase already completed when this invocation started (`None`: a fresh run).
    pub resumed_from: Option<RunPhase>,
    /// Customers in the audience.
    pub audience: u64,
    /// Outcomes newly stored by this run.
    pub outcomes_new: u64,
    /// Rewards computed (pending and final).
    pub rewards_pending: u64,
    /// Rewards that became final.
    pub rewards_final: u64,
    /// Rewards the policy learned from (final, closed or early: see [`crate::RunOptions::early_learning_share`]).
    pub rewards_learned: u64,
    /// Of the decisions learned, those whose window was still open: closed early by a later decision
    /// of the same customer, or learned from the share observed so far.
    #[serde(default)]
    pub rewards_learned_early: u64,
    /// Rewards outside their metric's plausible range (a negative purchase price for a metric that
    /// does not subtract costs, a conversion reward of 2...): not learned, and consumed so they never
    /// block a later run; they stay in the store and the report. Logged with the first one's decision.
    #[serde(default)]
    pub rewards_refused: u64,
    /// The delay model the early learning used.
    #[serde(default)]
    pub delay: Option<crate::early::DelaySummary>,
    /// Drift alerts raised while learning.
    pub drift_alerts: Vec<String>,
    /// The model version that decided.
    pub model_version: String,
    /// Decisions stored.
    pub decisions: u64,
    /// Decisions that send a message.
    pub messages: u64,
    /// Decisions per group.
    pub groups: GroupCounts,
    /// Customers stopped by guardrails.
    pub guardrails: GuardrailCounts,
    /// Treatment was paused by the unsubscribe guardrail (treated customers got business as usual).
    #[serde(default)]
    pub treatment_paused: bool,
    /// Total option cost of the messages.
    pub cost: f64,
    /// Batches by state.
    pub batches: BatchCounts,
    /// Messages this run found not delivered as decided ([`DeliveryCounts::not_delivered`]: rejected,
    /// late or never sent, not learned from; their rewards still count in the report, by intention
    /// to treat) or bounced (learned), by status ([`crate::delivery`]). A message is counted once, by
    /// the run that finds it: the ledger's findings by the run that sent it, the feed's by the first
    /// run after its grace period.
    #[serde(default)]
    pub deliveries: DeliveryCounts,
    /// Seconds per phase of this invocation.
    pub durations: BTreeMap<String, f64>,
    /// [`offerloop_domain::UseCase::fingerprint`] of the configuration the run used.
    #[serde(default)]
    pub config_fingerprint: String,
}

impl RunSummary {
    /// Adds what a shard of a day shared by workers did (decisions, messages, groups, guardrails,
    /// cost, retries, deliveries, phase durations) to this summary of the day.
    pub fn absorb_shard(&mut self, shard: &Self) {
        self.decisions += shard.decisions;
        self.messages += shard.messages;
        let (g, s) = (&mut self.groups, &shard.groups);
        g.treatment += s.treatment;
        g.control += s.control;
        g.random_control += s.random_control;
        g.no_message += s.no_message;
        let (g, s) = (&mut self.guardrails, &shard.guardrails);
        g.frequency_cap += s.frequency_cap;
        g.min_days_between += s.min_days_between;
        g.ineligible += s.ineligible;
        g.max_sends_per_run += s.max_sends_per_run;
        g.max_cost_per_run += s.max_cost_per_run;
        g.quiet_hours += s.quiet_hours;
        self.treatment_paused |= shard.treatment_paused;
        self.cost += shard.cost;
        self.batches.retries += shard.batches.retries;
        self.deliveries.add(&shard.deliveries);
        for (phase, seconds) in &shard.durations {
            *self.durations.entry(phase.clone()).or_default() += seconds;
        }
    }

    /// As stored.
    pub fn to_json(&self) -> serde_json::Value {
        // Plain data: serialising into a `Value` cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}
