//! Off-policy evaluation (being written).
