//! End-to-end tests of offerloop (one test binary, to keep link time down).

mod config;
