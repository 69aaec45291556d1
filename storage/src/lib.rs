//! Sluice's queue: a per-shard, append-only log of records.
//!
//! See the module docs of [`log`] for the on-disk model.

pub mod qid;
pub mod record;
pub mod segment;
pub mod index;
pub mod log;
