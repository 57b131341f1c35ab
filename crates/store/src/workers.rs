//! The records of a day shared by several workers: the day's [`ShardPlan`], each shard's lease
//! ([`ShardRecord`], [`ShardLease`]) and the registry of workers ([`WorkerRecord`]).
//!
//! The protocol (implemented by the engine's `sharded` module, stored by every back-end):
//! 1. one participant, holding the use case's lock, exports the audience, attributes outcomes, learns
//!    once and stores the day's model, then plans the shards ([`crate::Store::plan_shards`]): shard `k`
//!    is the audience rows `k × shard_size ..` in the order they were stored;
//! 2. every participant leases shards ([`crate::Store::lease_shard`]: an open shard, or one whose
//!    lease has expired, taken with `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL), decides and
//!    activates it, renewing the lease as it goes, and completes it;
//! 3. once every shard is done, one participant, holding the lock again, writes the day's summary.
//!
//! A lease carries a fencing `token` that grows each time the shard changes hands: a renewal or a
//! completion with an older token is refused ([`crate::Error::LeaseLost`]), so a worker that was
//! presumed dead cannot complete a shard someone else took over.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// How a run's day is split for workers; stored once, before any shard is leased.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPlan {
    /// The run.
    pub run_id: i64,
    /// How many shards.
    pub shards: u32,
    /// Customers per shard (the last one may have fewer).
    pub shard_size: u64,
    /// The audience's size.
    pub customers: u64,
    /// The model version every shard decides with (learned once, by the planner).
    pub model_version: String,
    /// The use case's fingerprint: a worker with another version of the use case refuses to join.
    pub fingerprint: String,
    /// When it was planned.
    pub planned_at: Timestamp,
    /// What the planner did before the shards (export, outcomes, learning): the engine's partial
    /// run summary (JSON, opaque to the store), merged with the shards' summaries at the end.
    pub prepared: serde_json::Value,
}

impl ShardPlan {
    /// The audience rows of `shard`: `(offset, limit)` in storage order.
    pub fn range(&self, shard: u32) -> (u64, u64) {
        let offset = u64::from(shard).saturating_mul(self.shard_size);
        let limit = self.shard_size.min(self.customers.saturating_sub(offset));
        (offset, limit)
    }
}

/// Where a shard stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardState {
    /// Nobody has it (never leased, or released).
    Open,
    /// A worker holds its lease (which may have expired: then it may be taken over).
    Leased,
    /// Decided and activated; never leased again.
    Done,
}

impl ShardState {
    /// The name stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Leased => "leased",
            Self::Done => "done",
        }
    }

    /// The state named `text`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(Self::Open),
            "leased" => Some(Self::Leased),
            "done" => Some(Self::Done),
            _ => None,
        }
    }
}

/// One shard as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// The run.
    pub run_id: i64,
    /// Its number, `0 .. plan.shards`.
    pub shard: u32,
    /// Where it stands.
    pub state: ShardState,
    /// The worker that holds (or last held) it.
    pub holder: Option<String>,
    /// When the current lease expires.
    pub expires_at: Option<Timestamp>,
    /// The fencing token: how many times it was leased.
    pub token: i64,
    /// When it was done.
    pub done_at: Option<Timestamp>,
    /// What its worker reported (JSON), once done.
    pub summary: Option<serde_json::Value>,
}

/// A shard leased to a worker until `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardLease {
    /// The run.
    pub run_id: i64,
    /// The shard.
    pub shard: u32,
    /// The worker holding it.
    pub holder: String,
    /// The fencing token of this lease (see the module docs).
    pub token: i64,
    /// When it expires unless renewed.
    pub expires_at: Timestamp,
    /// Whether an earlier lease of it expired (the shard is taken over after a worker died).
    pub taken_over: bool,
}

/// A worker as it registered itself (and last reported).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// Its id (host, pid and a random part: unique across restarts).
    pub id: String,
    /// The use case it works on.
    pub use_case: String,
    /// Its host.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// When it started.
    pub started_at: Timestamp,
    /// When it last reported.
    pub last_seen: Timestamp,
    /// What it is doing, for people (`waiting`, `shard 3 of run 12`, `stopped`, ...).
    pub status: String,
}
