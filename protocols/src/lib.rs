//! Sans-IO codecs and state machines for Sluice.
//!
//! Nothing here touches a socket, a file or a clock: callers hand in bytes
//! (and, where time matters, the current time) and get back events and bytes
//! to send. That keeps every parser testable with plain `#[test]`s,
//! property tests and fuzzers.
//!
//! - [`envelope`]: the envelope a message carries from smtpd to the queue.
//! - [`smtp`]: the SMTP server state machine and its replies.

pub mod envelope;
pub mod smtp;
