//! Integration tests of `offerloop-braze` against `wiremock` servers on loopback (one test binary).

// Test helpers may panic: a broken fixture should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod client;
mod endpoints;
mod support;
