//! Braze Currents for Data Storage, read the way Braze writes it (`../shared/braze-currents.md`):
//! object keys under a connector's prefix ([`key`]) and Avro object-container files of events
//! ([`mod@file`], [`event`]).
//!
//! What Braze guarantees and what it does not, and so what this crate does:
//! - **Keys**: only the `event_type=` and `date=` segments are read, found by their labels; everything
//!   between `date=` and the file name (a schema id and zone, or `version=<n>/<environment>`) is
//!   opaque, and only names ending `.avro` are files ([`key::CurrentsKey::parse`]).
//! - **Files**: decoded with the writer schema embedded in each file and read **by field name**, so
//!   added fields are ignored and missing optional ones are `None`; codecs null, deflate and snappy.
//!   A file that fails to decode anywhere yields an error and no events ([`file::decode`]): Braze may
//!   leave a truncated file and write a complete one later, whose events are then read.
//! - **Events** keep what attribution and delivery need: the event `id` (for at-least-once
//!   deduplication), the event `time` (not the folder's queue hour), the Braze `user_id` and the
//!   customer's `external_user_id`, the message ids and the purchase or custom-event values.
//!
//! [`Bucket`] lists and reads a connector's files from S3, GCS, Azure Blob or a local directory
//! (`object_store`); keeping the checkpoint of keys read and turning events into outcomes are the
//! caller's.

pub mod bucket;
pub mod dedupe;
pub mod error;
pub mod event;
pub mod file;
pub mod key;
mod projection;
pub mod scan;
#[cfg(any(test, feature = "test-servers"))]
pub mod test_servers;
#[cfg(test)]
mod testing;

pub use bucket::{Bucket, FilesRead, NewEvents, ReadReport, Select};
pub use dedupe::Dedupe;
pub use error::{Error, Result};
pub use event::{CurrentsEvent, EventType, MessageIds};
pub use key::CurrentsKey;
pub use scan::{ScanReport, scan};
