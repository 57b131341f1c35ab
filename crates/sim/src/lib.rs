//! offerloop's simulated world, so offerloop can be tried, tested and benchmarked without Braze.
//!
//! Two halves:
//! - [`world`]: a seeded population of customers whose observable profile fields are exported like
//!   Braze's and whose **hidden** traits (price sensitivity, preferred channel, active hours, fatigue,
//!   churn risk) drive a known response model, configured by a TOML [`scenario`](world::Scenario).
//!   The [`World::expected`](world::World::expected) oracle gives the expected outcome of any delivery
//!   for any customer; it is for tests and benchmarks and is never reachable through the Braze API.
//! - [`server`]: [`SimBraze`], an axum server on 127.0.0.1 that behaves like Braze's
//!   REST API (authentication and per-key permissions, validation, limits, rate-limit headers and 429s,
//!   pagination, the asynchronous segment export, `/users/track`, API-triggered sends and schedules,
//!   analytics), with a simulated clock and fault injection under `/_sim/*`.
//!
//! [`state`] holds the workspace the server mutates (users, catalog, sends, schedules, exports).

pub mod error;
pub mod server;
pub mod state;
pub mod world;

pub use error::{Error, Result};
pub use server::{SimBraze, SimConfig};
pub use world::{Scenario, World};
