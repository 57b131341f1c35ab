//! Fault injection for Braze routes (never `/_sim/*`): added latency, 5xx answers, 429 storms,
//! connection resets (closed without a response) and "applied but response lost" (the handler runs,
//! so the side effect happens, then the connection is closed before the response is written).
//!
//! Faults are drawn from a seeded RNG, so a sequence of requests meets the same faults on every run.
//! [`Faults`] is part of [`super::SimConfig`] and can be replaced at runtime by `PUT /_sim/faults`
//! (which reseeds the RNG with the new `seed`).

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use serde::{Deserialize, Serialize};

/// What faults to inject, as probabilities per request (checked in this order: reset, lost response,
/// 5xx, 429; at most one per request).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Latency added to every Braze request, in milliseconds.
    pub latency_ms: u64,
    /// Extra latency drawn uniformly in `0..=latency_jitter_ms`.
    pub latency_jitter_ms: u64,
    /// P(answer a 5xx without running the handler).
    pub error_rate: f64,
    /// The 5xx statuses drawn from (uniformly); empty: 500, 502, 503, 504.
    pub error_statuses: Vec<u16>,
    /// P(answer 429 without consuming the bucket): a "429 storm" when high.
    pub rate_limit_rate: f64,
    /// P(close the connection without a response and without running the handler).
    pub reset_rate: f64,
    /// P(run the handler, then close the connection without the response).
    pub lost_response_rate: f64,
    /// Only requests whose path starts with one of these are affected; empty: every Braze path.
    pub paths: Vec<String>,
    /// Seed of the fault RNG.
    pub seed: u64,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            latency_ms: 0,
            latency_jitter_ms: 0,
            error_rate: 0.0,
            error_statuses: Vec::new(),
            rate_limit_rate: 0.0,
            reset_rate: 0.0,
            lost_response_rate: 0.0,
            paths: Vec::new(),
            seed: 0,
        }
    }
}

impl Faults {
    /// Checks that rates are probabilities and statuses are 5xx.
    ///
    /// # Errors
    /// A message naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        let rates = [
            ("error_rate", self.error_rate),
            ("rate_limit_rate", self.rate_limit_rate),
            ("reset_rate", self.reset_rate),
            ("lost_response_rate", self.lost_response_rate),
        ];
        for (name, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be within 0..=1, got {rate}"));
            }
        }
        if let Some(s) = self.error_statuses.iter().find(|s| !(500..=599).contains(*s)) {
            return Err(format!("error_statuses must be 5xx, got {s}"));
        }
        Ok(())
    }
}

/// What to do with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Serve it normally.
    Serve,
    /// Answer this 5xx status without running the handler.
    ServerError(u16),
    /// Answer 429 without running the handler.
    RateLimited,
    /// Close the connection without answering (handler not run).
    Reset,
    /// Run the handler, then close the connection without answering.
    LoseResponse,
}

/// The faults in force and their RNG.
#[derive(Debug)]
pub struct FaultState {
    faults: Faults,
    rng: StdRng,
}

impl FaultState {
    /// A state for `faults`, seeded with `faults.seed`.
    pub fn new(faults: Faults) -> FaultState {
        let rng = StdRng::seed_from_u64(faults.seed);
        FaultState { faults, rng }
    }

    /// The faults in force.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Replaces the faults and reseeds.
    pub fn set(&mut self, faults: Faults) {
        *self = FaultState::new(faults);
    }

    /// Draws the latency and action of one request to `path`.
    pub fn draw(&mut self, path: &str) -> (Duration, Action) {
        let f = &self.faults;
        if !f.paths.is_empty() && !f.paths.iter().any(|p| path.starts_with(p.as_str())) {
            return (Duration::ZERO, Action::Serve);
        }
        let jitter = if f.latency_jitter_ms > 0 {
            self.rng.random_range(0..=f.latency_jitter_ms)
        } else {
            0
        };
        let latency = Duration::from_millis(f.latency_ms + jitter);
        let u: f64 = self.rng.random();
        let mut edge = f.reset_rate;
        let action = if u < edge {
            Action::Reset
        } else if u < {
            edge += f.lost_response_rate;
            edge
        } {
            Action::LoseResponse
        } else if u < {
            edge += f.error_rate;
            edge
        } {
            const DEFAULT: [u16; 4] = [500, 502, 503, 504];
            let statuses: &[u16] = if f.error_statuses.is_empty() {
                &DEFAULT
            } else {
                &f.error_statuses
            };
            Action::ServerError(statuses[self.rng.random_range(0..statuses.len())])
        } else if u < edge + f.rate_limit_rate {
            Action::RateLimited
        } else {
            Action::Serve
        };
        (latency, action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_faults_serves_everything() {
        let mut state = FaultState::new(Faults::default());
        for _ in 0..100 {
            assert_eq!(state.draw("/users/track"), (Duration::ZERO, Action::Serve));
        }
    }

    #[test]
    fn certain_faults_always_happen_and_only_on_listed_paths() {
        let mut state = FaultState::new(Faults {
            reset_rate: 1.0,
            paths: vec!["/messages".into()],
            ..Faults::default()
        });
        assert_eq!(state.draw("/messages/send").1, Action::Reset);
        assert_eq!(state.draw("/users/track").1, Action::Serve);
        state.set(Faults {
            error_rate: 1.0,
            error_statuses: vec![503],
            latency_ms: 5,
            ..Faults::default()
        });
        assert_eq!(state.draw("/x"), (Duration::from_millis(5), Action::ServerError(503)));
        state.set(Faults {
            lost_response_rate: 1.0,
            ..Faults::default()
        });
        assert_eq!(state.draw("/x").1, Action::LoseResponse);
        state.set(Faults {
            rate_limit_rate: 1.0,
            ..Faults::default()
        });
        assert_eq!(state.draw("/x").1, Action::RateLimited);
    }

    #[test]
    fn draws_are_seeded_and_rates_roughly_hold() {
        let faults = Faults {
            error_rate: 0.3,
            rate_limit_rate: 0.2,
            seed: 42,
            ..Faults::default()
        };
        let run = || {
            let mut s = FaultState::new(faults.clone());
            (0..2000).map(|_| s.draw("/x").1).collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let errors = a.iter().filter(|x| matches!(x, Action::ServerError(_))).count();
        let limited = a.iter().filter(|x| **x == Action::RateLimited).count();
        assert!((500..700).contains(&errors), "{errors}");
        assert!((320..480).contains(&limited), "{limited}");
        for x in &a {
            if let Action::ServerError(s) = x {
                assert!([500, 502, 503, 504].contains(s));
            }
        }
    }

    #[test]
    fn validation_rejects_bad_rates_and_statuses() {
        assert!(
            Faults {
                error_rate: 1.5,
                ..Faults::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            Faults {
                error_statuses: vec![404],
                ..Faults::default()
            }
            .validate()
            .is_err()
        );
        assert!(Faults::default().validate().is_ok());
    }
}
