//! The simulated Braze workspace the server mutates: users (profiles), catalog (campaigns, canvases,
//! segments, email templates, send ids), the send log and schedules, segment exports, the event log,
//! and the simulated clock. One `Workspace` per server, behind a mutex; handlers lock it briefly.
//!
//! Ownership while it is being built: `mod.rs`, `users.rs`, `exports.rs`, `currents.rs` (users,
//! outcomes, clock, exports, Currents feed) by one author; `catalog.rs`, `sends.rs` (catalog,
//! send log, schedules, analytics) by another; `spec.rs` and `events.rs` are the shared contract.

pub mod catalog;
pub mod events;
pub mod exports;
pub mod sends;
pub mod spec;
pub mod users;

use std::sync::Arc;

use jiff::Timestamp;

pub use self::events::{Event, EventKind, MessageRef};
pub use self::spec::{DEFAULT_API_KEY, WorkspaceSpec};
use crate::world::World;

/// The whole mutable state of one simulated workspace.
#[derive(Debug)]
pub struct Workspace {
    /// The world behind it (profiles at start, response model).
    pub world: Arc<World>,
    /// Simulated now.
    pub now: Timestamp,
    /// Every send and outcome so far.
    pub events: Vec<Event>,
    /// Profiles: what changed since the world's start (tracked attributes, events, purchases, received messages).
    pub users: users::Users,
    /// Segment exports in progress or done.
    pub exports: exports::Exports,
    /// Campaigns, canvases, segments, email templates, send ids.
    pub catalog: catalog::Catalog,
    /// Dispatches and schedules.
    pub sends: sends::Sends,
}

impl Workspace {
    /// A workspace at the scenario's start.
    pub fn new(world: Arc<World>) -> Workspace {
        let now = world.scenario().start;
        Workspace {
            world,
            now,
            events: Vec::new(),
            users: users::Users::default(),
            exports: exports::Exports::default(),
            catalog: catalog::Catalog::default(),
            sends: sends::Sends::default(),
        }
    }
}

impl Workspace {
    /// Moves the simulated clock to `until` (never backwards): runs due schedules, then applies the
    /// outcomes that have become due.
    pub fn advance_to(&mut self, until: Timestamp) {
        if until <= self.now {
            return;
        }
        sends::run_due_schedules(self, until);
        self.now = until;
    }
}
