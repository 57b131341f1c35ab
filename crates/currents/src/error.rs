//! The crate's one error type: every error names the object key, and for a record its index and field.

/// A `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong reading Currents data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key that looks like a Currents file (`event_type=`, `date=`, `.avro`) with an unreadable part.
    #[error("Currents key `{key}`: {reason}")]
    Key {
        /// The object key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The file is not a readable Avro object container (truncated, corrupt, unknown codec).
    #[error("Currents file `{key}`: not a readable Avro object container{}: {source}", at_record(*record))]
    Avro {
        /// The object key.
        key: String,
        /// The record being read when it failed (0-based), if the header was read.
        record: Option<usize>,
        /// Avro's error.
        #[source]
        source: Box<apache_avro::Error>,
    },
    /// The file is not a readable Avro object container, found while reading it field by field
    /// (truncated, corrupt, an unknown codec); the reason names the record.
    #[error("Currents file `{key}`: not a readable Avro object container: {reason}")]
    Container {
        /// The object key.
        key: String,
        /// What is wrong, and where.
        reason: String,
    },
    /// The bucket cannot be opened, listed or read.
    #[error("Currents bucket `{url}`: {reason}")]
    Bucket {
        /// The bucket's URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// A record lacks a required field or has one of another type.
    #[error("Currents file `{key}`, record {record}, field `{field}`: {reason}")]
    Field {
        /// The object key.
        key: String,
        /// The record (0-based).
        record: usize,
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

fn at_record(record: Option<usize>) -> String {
    record.map(|r| format!(" (at record {r})")).unwrap_or_default()
}
