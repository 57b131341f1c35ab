//! Versioned, serialisable model state: what `offerloop policy init|learn` write to `model.json`.

use offerloop_domain::usecase::Algorithm;
use serde::{Deserialize, Serialize};

/// The snapshot format this build writes. A snapshot of another format is refused by
/// [`crate::restore`] with a message naming both versions.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// A policy's whole state. `serde_json` writes floats so that they read back bit-for-bit
/// (`float_roundtrip`), so a restored policy decides exactly as the original.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// [`SNAPSHOT_FORMAT`] when written.
    pub format: u32,
    /// The algorithm that wrote it.
    pub algorithm: Algorithm,
    /// A fingerprint of the action space and feature schema it was learned on
    /// ([`crate::sampling::space_fingerprint`]); restoring onto another space is refused.
    pub fingerprint: u64,
    /// The algorithm's own state.
    pub state: serde_json::Value,
}
