//! Sluice's queue: a per-shard, append-only log of records.
//!
//! Each shard owns `queue_directory/<shard>/`, a sequence of segment files
//! (`0000000000000001.seg`, …). A message is stored once, as one
//! [`record::Record::Message`] holding its envelope and content; everything
//! that happens to it afterwards (a recipient delivered, deferred or
//! bounced, hold, release, delete, …) is a small record appended later. The
//! in-memory [`index::Index`] says where each live message is and what state
//! it is in; it is rebuilt at start-up by replaying the segments in order.
//!
//! There is no async runtime in this crate. The engine does the file I/O on
//! its executor; this crate *plans* each write ([`log::ShardLog::prepare`])
//! and *applies* its result ([`log::ShardLog::complete`]). A blocking std
//! implementation ([`log::ShardLog::append_blocking`]) serves tools, tests
//! and benchmarks.
//!
//! ```
//! use sluice_protocols::envelope::{Envelope, Recipient};
//! use sluice_storage::log::{Batch, LogOptions, ShardLog};
//! use sluice_storage::qid::QidGenerator;
//! use sluice_storage::record::{MessageRecord, Record};
//!
//! # let dir = std::env::temp_dir().join(format!("sluice-doc-{}", std::process::id()));
//! let (mut log, report) = ShardLog::open(&dir, 0, LogOptions::default())?;
//! assert_eq!(report.messages, 0);
//!
//! let mut qids = QidGenerator::new(0, report.max_arrival_us);
//! let now_us = 1_700_000_000_000_000;
//! let qid = qids.next(now_us);
//! let envelope = Envelope {
//!     sender: "alice@example.com".into(),
//!     recipients: vec![Recipient::new("bob@example.org")],
//!     ..Envelope::default()
//! };
//! let mut batch = Batch::new();
//! batch.push(&Record::Message(MessageRecord {
//!     qid: qid.clone(),
//!     arrival_us: now_us,
//!     envelope,
//!     client: None,
//!     content: b"Subject: hi\r\n\r\nhello\r\n".to_vec(),
//! }));
//! // One write and one fdatasync for the whole batch (group commit).
//! log.append_blocking(batch)?;
//! assert_eq!(log.index().get(&qid).map(|m| m.size), Some(22));
//! assert_eq!(log.read_message(&qid)?.content, b"Subject: hi\r\n\r\nhello\r\n");
//! # drop(log);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), sluice_storage::StorageError>(())
//! ```

pub mod admin;
pub mod error;
pub mod index;
pub mod log;
pub mod maildrop;
pub mod qid;
pub mod record;
pub mod segment;
pub mod table;
mod wire;

pub use error::StorageError;
