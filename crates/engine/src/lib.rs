//! offerloop-engine: the daily run.
//!
//! [`DailyRun`] joins the layers through their ports for one use case and one date: it exports the
//! audience ([`offerloop_braze::BrazeApi`]), turns what customers did since into rewards (profile
//! deltas, or an [`OutcomeSource`] such as a Currents feed, attributed to the latest decision within
//! the metric's window), updates the policy and snapshots it, assigns holdout groups, applies the
//! guardrails, decides, and activates through an [`offerloop_activation::Activator`] following the
//! send ledger of the [`offerloop_store::Store`]. Each phase is recorded when complete, so a re-run
//! of the same date resumes at the first unfinished one and nobody is decided or sent twice.
//!
//! What is learned is what was delivered: no send is planned for a local time Braze would skip
//! (activation's [`offerloop_activation::Scheduler`], placed at decision time), and a message that
//! still never goes out is found ([`delivery`]), counted in [`RunSummary::deliveries`] and not
//! learned from.
//!
//! The key design decision: the engine reads time only from the injected [`Clock`] and keeps every
//! decision a pure function of stored inputs (audience, model, round, earlier messages), so a resumed
//! run recomputes exactly what an interrupted one would have.

mod attribution;
mod audience;
mod clock;
mod currents_feed;
mod decide;
pub mod delivery;
mod early;
mod error;
mod guardrails;
mod outcomes;
pub mod pause;
mod profile;
pub mod progress;
mod run;
mod summary;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod worker_tests;

pub use attribution::{attribute, attribute_outcomes, unsubscribe_rates};
pub use audience::{IDS_PER_EXPORT, OUTCOME_FIELDS, check_export_fields, ids_file_path, read_ids};
pub use clock::{Clock, ManualClock};
pub use currents_feed::CurrentsFeed;
pub use decide::{
    BUSINESS_AS_USUAL_VERSION, GroupCounts, MIN_MESSAGES_FOR_UNSUBSCRIBE_GUARDRAIL, NO_MESSAGE_VERSION, PAUSED_VERSION,
    RANDOM_CONTROL_VERSION, decision_id, is_message,
};
pub use delivery::DeliveryCounts;
pub use early::{DelaySummary, NO_MESSAGE_GROUP};
pub use error::{Error, Result};
pub use guardrails::{Blocked, Budget, GuardrailCounts, MessageHistory, in_quiet_hours};
pub use outcomes::{MessageEvent, MessageEventKind, OutcomeSource};
pub use profile::{
    AudienceFeatures, Counter, ExportedCustomer, ProfileCounters, counters_of, customer_from_export,
    profile_delta_outcomes,
};
pub use progress::{Phase, PhaseProgress, Progress, Silent};
pub use run::{
    DEFAULT_EARLY_LEARNING_SHARE, DailyRun, DailyRunBuilder, RunOptions, WorkerOptions, WorkerReport, target_of,
};
pub use summary::{BatchCounts, RunSummary};
