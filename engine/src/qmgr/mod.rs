//! The queue manager's pure core: *when* mail is tried again and *where*
//! it goes next, with Postfix's discipline (POSTFIX-FACTS.md §6).
//!
//! - [`backoff`]: the retry schedule, expiry and delay warnings, as pure
//!   functions of a message's arrival time and the current time.
//! - [`window`]: one destination's concurrency window with positive and
//!   negative feedback and the failed-cohort rule.
//! - [`scheduler`]: one scheduling shard's per-destination ready queues:
//!   recipient batching, round-robin selection, dead destinations, bounds.
//! - [`params`]: the per-transport parameters (`<transport>_*` overrides)
//!   and trivial-rewrite's resolver parameters, read from the
//!   configuration.
//!
//! No executor and no clock here: time is an argument (microseconds since
//! the epoch, as in the queue log), so everything is tested with plain
//! `#[test]`s and property tests. The shard-facing driver that feeds the
//! scheduler from the queue log and runs delivery agents lives elsewhere.

//! ```
//! use sluice_agents::delivery::{Destination, Feedback};
//! use sluice_engine::qmgr::{backoff, BackoffParams, Entry, Scheduler, SchedulerParams};
//!
//! /// What the lead's shards send a scheduler: one entry per recipient.
//! struct Rcpt {
//!     qid: String,
//!     index: u32,
//! }
//! impl Entry for Rcpt {
//!     type Key = String;
//!     fn message(&self) -> &String {
//!         &self.qid
//!     }
//! }
//!
//! let now_us = 1_700_000_000_000_000;
//! let mut s = Scheduler::new(SchedulerParams::default());
//! let dest = Destination::new("smtp", "example.org");
//! let rcpts = (0..3).map(|index| Rcpt { qid: "4jcJb04xz6z1ShQN".into(), index });
//! assert!(s.enqueue(dest.clone(), rcpts.collect(), now_us).is_none());
//!
//! // One delivery with all three recipients of the message.
//! let (to, batch) = s.next_delivery().unwrap();
//! assert_eq!((to.to_string(), batch.len()), ("smtp:example.org".to_string(), 3));
//!
//! // The agent reached the server: positive feedback, nothing to defer.
//! assert!(s.done(&dest, Feedback::Success, "", now_us).is_empty());
//!
//! // Had a recipient been deferred, it would be tried again in 300 s.
//! let p = BackoffParams::default();
//! assert_eq!(backoff::next_attempt_us(now_us, now_us, &p), now_us + 300_000_000);
//! ```

pub mod backoff;
pub mod params;
pub mod scheduler;
pub mod window;

pub use backoff::BackoffParams;
pub use params::{resolve_params, TransportParams, TransportTable};
pub use scheduler::{Entry, Refusal, Refused, Scheduler, SchedulerParams};
pub use window::{ConcurrencyFeedback, Window, WindowParams};
