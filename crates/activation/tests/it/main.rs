//! Integration tests of `offerloop-activation`: planned batches executed through the real Braze
//! client against the simulator (`offerloop-sim`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bodies;
mod sim;
