//! (being written by the activation helper)

/// Writes batches as JSONL instead of sending them (being written).
#[derive(Debug)]
pub struct DryRunActivator {}
