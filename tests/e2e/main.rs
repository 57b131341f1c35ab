//! End-to-end tests of offerloop (one test binary, to keep link time down).

// Test helpers may panic: a broken fixture should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod braze_contract;
mod check;
mod config;
mod currents_s3;
mod daily_run;
mod delivered;
mod templates;
