//! offerloop-report: the evidence that per-customer decisions work, and why.
//!
//! - [`stats`]: the statistics (means and uplifts with 95 % intervals, Horvitz–Thompson / Hájek
//!   estimates per group), each checked against hand-computed values;
//! - [`build`]: a [`Report`] from the store's decisions, rewards, outcomes and audience snapshots,
//!   the latest model (what-if through `offerloop_policy::ope`, feature effects through
//!   `Policy::explain`) and Braze's analytics (given as data: this crate knows no HTTP);
//! - [`html`]: one self-contained HTML file (inline SVG charts, no network) and [`Report`] as JSON.
//!
//! The JSON shape ([`model`]) is the crate's API boundary and is versioned.

pub mod build;
mod charts;
mod error;
pub mod html;
pub mod model;
pub mod stats;

pub use error::{Error, Result};
pub use model::{REPORT_VERSION, Report};
