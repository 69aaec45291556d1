//! The SMTP client side, sans-IO: what Postfix's smtp(8) delivery agent
//! says and how it reads what the server says back.
//!
//! **Role.** Codecs for the delivery driver in `sluice_agents::smtp`:
//! [`reply`] reads server replies (multi-line, bounded), [`ehlo`] reads the
//! extensions a server announces, [`command`] builds EHLO/HELO, MAIL FROM
//! and RCPT TO with exactly the ESMTP parameters the server announced,
//! [`auth`] builds the SASL PLAIN and LOGIN exchanges (RFC 4954), and
//! [`data`] dot-stuffs the content with smuggling-safe line endings and
//! breaks lines longer than `smtp_line_length_limit`.
//!
//! **Trust.** Replies come from the network and are untrusted: nothing
//! here panics on them, and no reply makes a buffer grow past
//! `line_length_limit` (kept text) or `max_reply_bytes` (read). Envelope
//! values come from our own queue; a control character in one is still
//! refused rather than sent, since on the wire it would split a command.
//!
//! **Touches.** Nothing: no socket, file or clock.
//!
//! ```
//! use sluice_protocols::envelope::MailParams;
//! use sluice_protocols::smtp::client::{command, data, ehlo::Extensions, reply::ReplyParser};
//!
//! let mut p = ReplyParser::new(2048, 65536);
//! let wire = b"250-mx.example\r\n250-SIZE 1000\r\n250 DSN\r\n";
//! let reply = p.feed(wire).unwrap().reply.unwrap();
//! let ext = Extensions::from_ehlo(&reply);
//! let mut out = Vec::new();
//! command::mail_from(&mut out, "a@example.org", &MailParams::default(), 42, false, &ext).unwrap();
//! assert_eq!(out, b"MAIL FROM:<a@example.org> SIZE=42\r\n");
//! assert_eq!(data::dot_stuff(b".hidden\n.\n"), b"..hidden\r\n..\r\n.\r\n");
//! ```

pub mod auth;
pub mod command;
pub mod data;
pub mod ehlo;
pub mod reply;
