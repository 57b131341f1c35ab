//! (being written)

/// (being written)
#[derive(Debug, Default)]
pub struct Catalog {}
