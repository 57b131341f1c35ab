//! Integration and property tests of `offerloop-domain` (one test binary, to keep link time down).

mod action_props;
mod holdout_props;
