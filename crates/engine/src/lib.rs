//! offerloop-engine: the daily run (being written).
