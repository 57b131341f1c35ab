//! [`Progress`]: how the engine reports the progress of its long phases. The engine draws nothing:
//! the CLI renders progress bars from it, a service may log it, tests ignore it ([`Silent`]).

use std::sync::Arc;

/// A long phase of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Waiting for and reading the audience export (no known length).
    Export,
    /// Deciding for the audience (customers).
    Decide,
    /// Sending the planned batches (batches).
    Send,
}

impl Phase {
    /// A short label for people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Export => "exporting the audience",
            Self::Decide => "deciding",
            Self::Send => "sending",
        }
    }
}

/// Receives the progress of a run's phases. `Send + Sync`: batches are sent concurrently.
pub trait Progress: Send + Sync + std::fmt::Debug {
    /// `phase` starts, with `total` steps when known; the returned tracker is advanced as steps
    /// complete and finished when dropped.
    fn start(&self, phase: Phase, total: Option<u64>) -> Box<dyn PhaseProgress>;
}

/// One phase's progress; dropping it finishes the phase.
pub trait PhaseProgress: Send + Sync {
    /// `steps` more steps are done.
    fn advance(&self, steps: u64);
}

/// Reports nothing (the default).
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _phase: Phase, _total: Option<u64>) -> Box<dyn PhaseProgress> {
        Box::new(Silent)
    }
}

impl PhaseProgress for Silent {
    fn advance(&self, _steps: u64) {}
}

/// The default progress sink: [`Silent`].
pub fn silent() -> Arc<dyn Progress> {
    Arc::new(Silent)
}
