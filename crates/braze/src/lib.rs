//! `offerloop-braze`: the layer that talks to Braze. Every byte offerloop sends to or reads from Braze
//! goes through it.
//!
//! The key design decision: **a request's error says whether it may have been received.** Braze has no
//! idempotency key for message sends, so a timeout or a 5xx on `/campaigns/trigger/send` leaves the send's
//! fate unknown; retrying would risk a double send. The client retries reads and idempotent writes
//! (rate limits, 5xx, timeouts, connection errors, with exponential backoff and full jitter), but for
//! message sends it returns a [`BrazeError`] whose [`BrazeError::send_fate`] tells the caller whether
//! the request was certainly not accepted (safe to retry) or its outcome is unknown (must be
//! reconciled). The activation layer decides.
//!
//! This crate knows nothing of offerloop's domain: it is a general Braze client behind the
//! [`BrazeApi`] trait, which other layers depend on (and mock, with the `mocks` feature), never on
//! `reqwest`.

#![deny(missing_docs)]

pub mod api;
mod braze_api;
mod client;
pub mod config;
pub mod endpoint;
pub mod error;
pub mod export;
pub mod limits;
pub mod paginate;
pub mod probe;
pub mod ratelimit;
pub mod retry;
mod secret;

pub use braze_api::BrazeApi;
#[cfg(any(test, feature = "mocks"))]
pub use braze_api::MockBrazeApi;
pub use client::BrazeClient;
pub use config::{BrazeConfig, BrazeConfigBuilder, RateLimit};
pub use endpoint::{Endpoint, Method, RateLimitPool, Request};
pub use error::{BrazeError, Result, SendFate};
pub use export::ExportedUser;
pub use secret::ApiKey;
