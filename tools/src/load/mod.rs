//! The load tools: `sluice source` and `sluice sink`, Sluice's own
//! smtp-source(1) and smtp-sink(1).
//!
//! - [`source`]: a parallel SMTP client that sends well-formed mail
//!   (CRLF, dot-stuffed) over many sessions, bounded by a message count
//!   and a time limit, and measures per-message latency (MAIL to the final
//!   250) into a [`histogram::Histogram`].
//! - [`sink`]: an SMTP server that accepts and throws away (or keeps, for
//!   tests) what it is sent, answering like Postfix's smtp-sink, with
//!   deterministic temporary/permanent failure fractions and delays.
//! - [`cli`]: the command lines, `sluice source …` and `sluice sink …`.
//!
//! Both are plain std code: threads and blocking sockets, one thread per
//! session. They are test and benchmark harnesses, not part of the mail
//! system, so they stay out of the engine's executor and can run beside
//! it (or beside Postfix) without sharing anything.
//!
//! Trust: none needed. The source trusts nothing it reads (replies are
//! bounded to [`MAX_REPLY_LINE`] bytes a line); the sink bounds every
//! input by a Postfix parameter's default (line_length_limit,
//! message_size_limit, smtpd_timeout, smtpd_recipient_limit). Neither
//! touches the disk, except the sink's optional dump directory.

pub mod cli;
pub mod histogram;
pub mod sink;
pub mod source;

pub use cli::{sink_main, source_main};
pub use histogram::Histogram;
pub use sink::{FailAt, ReceivedMessage, Sink, SinkConfig, SinkStats};
pub use source::{dot_stuff, run_source, SourceConfig, SourceReport};

/// RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets with CRLF.
/// Longer lines from a server are cut there and the rest discarded.
pub const MAX_REPLY_LINE: usize = 512;

/// Is stderr a terminal? Progress lines are drawn only then.
pub fn stderr_is_tty() -> bool {
    // SAFETY: isatty only inspects the descriptor number.
    unsafe { libc::isatty(libc::STDERR_FILENO) == 1 }
}

#[cfg(test)]
mod tests;
