//! smtp: the SMTP delivery agent's conversation with one server, over a
//! connection the engine has already opened (Postfix's smtp(8) after
//! `smtp_connect()`).
//!
//! **Role.** [`Connection::open`] reads the greeting and says EHLO (HELO
//! when EHLO is refused); [`Connection::deliver`] runs one mail
//! transaction — MAIL FROM, RCPT TO for each recipient, DATA, the
//! dot-stuffed content — pipelined when the server announced PIPELINING,
//! and turns each reply into a [`RcptOutcome`](crate::delivery::RcptOutcome)
//! in Postfix's words;
//! [`Connection::reset`] probes a cached connection with RSET before
//! reuse; [`Connection::quit`] says goodbye. Finding the server (DNS, MX
//! order), connecting and the connection cache are the engine's; STARTTLS
//! ([`Connection::open_tls`]) follows the policy the engine looks up for
//! the destination ([`tls`]).
//!
//! **Trust.** The server is untrusted. A server that stalls costs one
//! timeout (each read of a reply and each write is bounded by the
//! `smtp_*_timeout` of its stage); one that sends an endless or garbled
//! reply costs at most `max_reply_bytes` of reading and a deferral
//! ([`SessionError`]); nothing it sends makes this code panic or hold more
//! than a read buffer and about two reply lines. The envelope and content
//! come from our queue and are trusted, except that envelope values with
//! control characters are refused rather than sent (they would split a
//! command on the wire).
//!
//! **Touches.** The stream it is given, and a [`Clock`](crate::runtime::Clock) for
//! timeouts.
//! Nothing on disk.
//!
//! **Limits.** Replies: `line_length_limit` per line (truncated beyond),
//! `max_reply_bytes` per reply (an error beyond). Pipelined commands are
//! sent in bursts of at most [`PIPELINING_BUFSIZE`] bytes before their
//! replies are read, as Postfix does, so that neither side can block the
//! other with full socket buffers. Content goes out in
//! [`BODY_CHUNK`]-sized writes, each bounded by `smtp_data_xfer_timeout`;
//! a content line longer than `smtp_line_length_limit` (998) is broken
//! with `<CR><LF><SPACE>` on the way out, as Postfix does (see
//! [`DotStuffer`](sluice_protocols::smtp::client::data::DotStuffer)).
//!
//! **Parameters** ([`SmtpParams`]): `smtp_helo_name`, the `smtp_*_timeout`
//! family, whether to pipeline, `smtp_line_length_limit`,
//! `line_length_limit`, `max_reply_bytes`, `smtp_starttls_timeout`, and
//! the `smtp_sasl_*` settings ([`auth`]); the `smtp_tls_*` ones are in
//! [`tls`].
//!
//! ```ignore
//! let mut conn = Connection::open(stream, "mx.example[192.0.2.1]:25".into(), &params, &clock).await?;
//! match conn.deliver(&request, &content, &clock).await {
//!     Ok(outcomes) if conn.is_reusable() => { /* report; offer conn to scache */ }
//!     Ok(outcomes) => { /* report; */ conn.quit(&clock).await }
//!     Err(failed) => { /* report failed.outcomes; drop the connection */ }
//! }
//! ```

pub mod auth;
mod error;
mod io;
mod session;
mod starttls;
mod stream;
pub mod tls;
mod transaction;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use error::{DeliverError, SessionError, Stage};
pub use session::Connection;

use sluice_protocols::smtp::client::data::SMTP_LINE_LENGTH_LIMIT;
use sluice_protocols::smtp::client::reply::{LINE_LENGTH_LIMIT, MAX_REPLY_BYTES};

/// Postfix's PIPELINING burst: at most this many bytes of commands are
/// sent before the replies to them are read (`VSTREAM_BUFSIZE`).
pub const PIPELINING_BUFSIZE: usize = 4096;

/// Content is dot-stuffed and written this many input bytes at a time.
pub const BODY_CHUNK: usize = 64 * 1024;

/// The SMTP client's settings, named after Postfix's parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpParams {
    /// `smtp_helo_name` (default `$myhostname`).
    pub helo_name: String,
    /// `smtp_connect_timeout` (30s). Used by the engine, which connects.
    pub connect_timeout: Duration,
    /// `smtp_helo_timeout` (300s): the greeting and the EHLO/HELO reply.
    pub helo_timeout: Duration,
    /// `smtp_mail_timeout` (300s).
    pub mail_timeout: Duration,
    /// `smtp_rcpt_timeout` (300s).
    pub rcpt_timeout: Duration,
    /// `smtp_data_init_timeout` (120s): the reply to DATA.
    pub data_init_timeout: Duration,
    /// `smtp_data_xfer_timeout` (180s): each write of the content.
    pub data_xfer_timeout: Duration,
    /// `smtp_data_done_timeout` (600s): the reply to the final dot.
    pub data_done_timeout: Duration,
    /// `smtp_starttls_timeout` (300s): the reply to STARTTLS, and the
    /// TLS handshake.
    pub starttls_timeout: Duration,
    /// `smtp_quit_timeout` (300s).
    pub quit_timeout: Duration,
    /// `smtp_rset_timeout` (20s).
    pub rset_timeout: Duration,
    /// Pipeline commands when the server announces PIPELINING. Postfix has
    /// no switch of its own for this; it is turned off there with
    /// `smtp_discard_ehlo_keywords = pipelining`, which sets this to false.
    pub pipelining: bool,
    /// `smtp_line_length_limit` (998): content lines longer than this are
    /// broken on the way out; 0 sends them as they are.
    pub smtp_line_length_limit: usize,
    /// `line_length_limit` (2048): the longest reply line kept.
    pub line_length_limit: usize,
    /// `smtp_sasl_auth_enable` with its settings; `None` when off.
    pub sasl: Option<auth::SaslClientParams>,
    /// The most bytes one server reply may take before the session is
    /// given up (no Postfix equivalent; see
    /// [`MAX_REPLY_BYTES`](sluice_protocols::smtp::client::reply::MAX_REPLY_BYTES)).
    pub max_reply_bytes: usize,
}

impl SmtpParams {
    /// Postfix's defaults, with `smtp_helo_name = helo_name`.
    pub fn postfix_defaults(helo_name: &str) -> Self {
        SmtpParams {
            helo_name: helo_name.to_string(),
            connect_timeout: Duration::from_secs(30),
            helo_timeout: Duration::from_secs(300),
            mail_timeout: Duration::from_secs(300),
            rcpt_timeout: Duration::from_secs(300),
            data_init_timeout: Duration::from_secs(120),
            data_xfer_timeout: Duration::from_secs(180),
            data_done_timeout: Duration::from_secs(600),
            starttls_timeout: Duration::from_secs(300),
            quit_timeout: Duration::from_secs(300),
            rset_timeout: Duration::from_secs(20),
            pipelining: true,
            smtp_line_length_limit: SMTP_LINE_LENGTH_LIMIT,
            line_length_limit: LINE_LENGTH_LIMIT,
            max_reply_bytes: MAX_REPLY_BYTES,
            sasl: None,
        }
    }

    /// The time limit for one read or write in `stage`.
    pub fn timeout(&self, stage: Stage) -> Duration {
        match stage {
            Stage::Greeting | Stage::Ehlo | Stage::Helo => self.helo_timeout,
            Stage::StartTls => self.starttls_timeout,
            Stage::Auth => self.helo_timeout,
            Stage::Mail => self.mail_timeout,
            Stage::Rcpt => self.rcpt_timeout,
            Stage::Data => self.data_init_timeout,
            Stage::Body => self.data_xfer_timeout,
            Stage::Dot => self.data_done_timeout,
            Stage::FinalRset | Stage::RsetProbe => self.rset_timeout,
            Stage::Quit => self.quit_timeout,
        }
    }
}
