//! smtpd: the SMTP server session, sans-IO.
//!
//! **Role.** One [`Session`] per client connection. It turns the bytes the
//! client sent into replies (appended to [`Session::output`]) and, at the end
//! of DATA or `BDAT … LAST`, into a [`Message`] for its owner to queue. It
//! behaves like Postfix's smtpd(8): the same commands, reply texts, error
//! counters, pipelining rules and SMTP-smuggling defences.
//!
//! **Trust.** Everything it reads comes from the network and is untrusted.
//! Nothing here panics on input, and no input makes a buffer grow without
//! bound: an over-long command line is discarded, an over-size message is
//! read to its end and dropped (`552 5.3.4`), never held.
//!
//! **Touches.** Nothing: no socket, file or clock. The owner reads and
//! writes the socket, calls [`Session::on_timeout`] when `smtpd_timeout`
//! expires, and answers recipient questions through [`Policy`].
//!
//! **Limits** (Postfix parameters, in [`ServerConfig`]): `line_length_limit`
//! for command lines, `message_size_limit`, `smtpd_recipient_limit` (plus
//! Postfix's fixed `smtpd_recipient_overshoot_limit` of 1000),
//! `smtpd_soft_error_limit`, `smtpd_hard_error_limit`,
//! `smtpd_junk_command_limit`, `smtpd_error_sleep_time`,
//! `smtpd_forbid_bare_newline`, `smtpd_forbid_unauth_pipelining`,
//! `disable_vrfy_command`, `smtpd_sasl_auth_enable` and
//! `smtpd_tls_auth_only` (SMTP AUTH, in `session/auth.rs`: the session
//! collects the credentials; its owner verifies them).
//!
//! **Memory.** A session holds one message's content at a time, reserved
//! on its shard's [`Budget`] (`sluice_inflight_memory_limit`) before the
//! buffer grows; beyond the budget the message is read to its end and
//! refused with `451 4.3.0` (see [`budget`]).
//!
//! ```
//! use std::rc::Rc;
//! use sluice_protocols::smtp::server::{AcceptAll, ServerConfig, Session, Want};
//!
//! let mut s = Session::new(Rc::new(ServerConfig::for_tests("mx.example")));
//! s.greet();
//! let input = b"EHLO c.example\r\n";
//! let p = s.receive(input, &mut AcceptAll);
//! assert_eq!((p.consumed, p.want), (input.len(), Want::More));
//! assert!(s.output().starts_with(b"220 mx.example ESMTP Postfix\r\n250-mx.example\r\n"));
//! ```
//!
//! Layout: [`command`] tokenises command lines, [`address`] checks
//! MAIL/RCPT paths, [`params`] parses ESMTP parameters, [`data`] scans DATA
//! content, `session` runs the state machine (`session/auth.rs`: SMTP
//! AUTH), `stats` keeps Postfix's
//! per-command counters.

pub mod address;
pub mod budget;
pub mod command;
pub mod data;
pub mod params;
mod replies;
mod session;
mod stats;
#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::envelope::{Envelope, Protocol};
use crate::smtp::{reply::Reply, BareNewline};

pub use budget::Budget;
pub use session::{AuthRequest, AuthVerdict, Mechanism, SaslLogin, Session, TlsInfo};

/// Postfix's `smtpd_recipient_overshoot_limit` default: recipients beyond
/// `smtpd_recipient_limit` that get `452` without counting as errors.
pub const SMTPD_RECIPIENT_OVERSHOOT_LIMIT: u32 = 1000;

/// The smtpd parameters a session needs, computed once at start-up.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// `$myhostname`, used in 421 texts and EHLO/HELO replies.
    pub hostname: String,
    /// Expanded `smtpd_banner`; the greeting is `220 {banner}`.
    pub banner: String,
    /// `message_size_limit` in bytes of content; 0 = unlimited.
    pub message_size_limit: u64,
    /// `smtpd_recipient_limit` (default 1000); 0 = unlimited.
    pub recipient_limit: usize,
    /// `line_length_limit` (2048) for command lines.
    pub line_length_limit: usize,
    /// `smtpd_hard_error_limit` (20).
    pub hard_error_limit: u32,
    /// `smtpd_soft_error_limit` (10).
    pub soft_error_limit: u32,
    /// `smtpd_junk_command_limit` (100).
    pub junk_command_limit: u32,
    /// `smtpd_error_sleep_time` (1s).
    pub error_sleep: Duration,
    /// `smtpd_forbid_bare_newline`.
    pub bare_newline: BareNewline,
    /// `smtpd_forbid_unauth_pipelining` (yes).
    pub forbid_unauth_pipelining: bool,
    /// `disable_vrfy_command` (no).
    pub disable_vrfy: bool,
    /// `smtpd_sasl_auth_enable` (no): offer and accept AUTH.
    pub sasl_auth_enable: bool,
    /// STARTTLS is offered and accepted: a certificate is configured,
    /// `smtpd_tls_security_level` is `may` or `encrypt`, and the listener
    /// is not in wrapper mode.
    pub starttls: bool,
    /// `smtpd_tls_security_level = encrypt`: before TLS, commands other
    /// than EHLO, HELO, STARTTLS, RSET, NOOP, HELP and QUIT get `530 5.7.0
    /// Must issue a STARTTLS command first`.
    pub tls_required: bool,
    /// `smtpd_tls_auth_only` (no): AUTH is offered and accepted only under
    /// TLS.
    pub tls_auth_only: bool,
}

impl ServerConfig {
    /// Postfix's defaults, with `smtpd_banner = $myhostname ESMTP $mail_name`
    /// and `mail_name = Postfix`.
    pub fn for_tests(hostname: &str) -> Self {
        ServerConfig {
            hostname: hostname.to_owned(),
            banner: format!("{hostname} ESMTP Postfix"),
            message_size_limit: 10_240_000,
            recipient_limit: 1000,
            line_length_limit: 2048,
            hard_error_limit: 20,
            soft_error_limit: 10,
            junk_command_limit: 100,
            error_sleep: Duration::from_secs(1),
            bare_newline: BareNewline::Normalize,
            forbid_unauth_pipelining: true,
            disable_vrfy: false,
            sasl_auth_enable: false,
            starttls: false,
            tls_required: false,
            tls_auth_only: false,
        }
    }
}

/// Decisions the session asks of its owner (relay control etc.), synchronously.
pub trait Policy {
    /// Called for RCPT TO after syntax/state/limit checks passed. Ok => "250 2.1.5 Ok".
    fn check_recipient(&mut self, sender: &str, recipient: &str) -> Result<(), Reply>;

    /// Whether this MAIL FROM / RCPT TO waits for the owner's per-client
    /// rate decision (Postfix asks anvil here: after the state and syntax
    /// checks, before the address is parsed). `true` suspends the command:
    /// [`Session::receive`] returns [`Want::Decide`] without consuming it;
    /// the owner gets the answer, calls [`Session::decide`] and feeds the
    /// same input again. The default never asks.
    fn rate_limited(&mut self, _event: RateEvent) -> bool {
        false
    }
}

/// A request whose per-client rate the owner may limit
/// (`smtpd_client_message_rate_limit`, `smtpd_client_recipient_rate_limit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateEvent {
    Mail,
    Rcpt,
}

/// A [`Policy`] that accepts every recipient (tests, benchmarks, fuzzing,
/// and trusted local submission).
#[derive(Clone, Copy, Debug, Default)]
pub struct AcceptAll;

impl Policy for AcceptAll {
    fn check_recipient(&mut self, _sender: &str, _recipient: &str) -> Result<(), Reply> {
        Ok(())
    }
}

/// A complete message, handed to the owner at the end of DATA or BDAT LAST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub envelope: Envelope,
    /// Unstuffed content, CRLF line endings, without the terminating ".\r\n" (DATA) — BDAT content as sent.
    pub content: Vec<u8>,
    pub helo: Option<String>,
    /// `Smtp` after HELO, `Esmtp` after EHLO.
    pub protocol: Protocol,
}

/// What the owner should do after [`Session::receive`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// Flush output, read more input.
    More,
    /// Call [`Session::take_message`], store it, then [`Session::message_done`].
    Message,
    /// Flush output and close the connection.
    Close,
    /// Ask about this event (see [`Policy::rate_limited`]), call
    /// [`Session::decide`], then `receive` the same input again.
    Decide(RateEvent),
    /// Verify [`Session::take_auth_request`], answer with
    /// [`Session::auth_done`], flush, then `receive` the rest of the input.
    Authenticate,
    /// STARTTLS was accepted: flush output (`220 2.0.0 Ready to start
    /// TLS`) in plaintext, run the server handshake, then call
    /// [`Session::tls_established`], or close if it failed. The input
    /// was consumed to its end: plaintext after STARTTLS is dropped.
    StartTls,
}

/// The result of one [`Session::receive`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct Progress {
    /// Bytes of the input the session used; the caller keeps the rest.
    pub consumed: usize,
    pub want: Want,
}
