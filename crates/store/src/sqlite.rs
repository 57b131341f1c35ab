//! SQLite implementation (being written by the store helper).

/// The embedded SQLite store.
#[derive(Debug)]
pub struct SqliteStore {}
