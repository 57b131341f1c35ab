//! (being written by the activation helper)

/// Executes batches against Braze (being written).
#[derive(Debug)]
pub struct BrazeActivator {}
