//! [`Clock`]: "now", injected, so the simulator moves time and tests are deterministic.

use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

/// The current time. Object-safe: `Arc<dyn Clock>`. The binary implements it with the wall clock;
/// the engine never reads the wall clock itself.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// A clock that says what it is told: tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    /// A clock at `now`.
    pub fn new(now: Timestamp) -> Self {
        Self { now: Mutex::new(now) }
    }

    /// Moves the clock to `now`.
    pub fn set(&self, now: Timestamp) {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = now;
    }

    /// Moves the clock forward by `by` and returns the new time.
    pub fn advance(&self, by: SignedDuration) -> Timestamp {
        let mut now = self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now = now.saturating_add(by).unwrap_or(Timestamp::MAX);
        *now
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_when_told() {
        let c = ManualClock::new(Timestamp::from_second(100).unwrap());
        assert_eq!(c.advance(SignedDuration::from_secs(5)).as_second(), 105);
        c.set(Timestamp::from_second(7).unwrap());
        assert_eq!(c.now().as_second(), 7);
    }
}
