//! Why a session failed, in Postfix's words (`smtp_stream_except()`,
//! `smtp_site_fail()`), and what that means for the recipients and for the
//! destination's concurrency feedback.

use std::fmt;

use sluice_protocols::smtp::reply::EnhancedCode;
use thiserror::Error;

use super::tls::TlsFailure;
use crate::delivery::{Feedback, RcptOutcome};

/// Where in the conversation the client was. `Display` gives Postfix's
/// phrase for "… while <stage>".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    Greeting,
    Ehlo,
    Helo,
    /// STARTTLS and the TLS handshake.
    StartTls,
    /// SMTP AUTH.
    Auth,
    Mail,
    Rcpt,
    Data,
    Body,
    Dot,
    /// RSET after a failed transaction.
    FinalRset,
    /// RSET before reusing a cached connection.
    RsetProbe,
    Quit,
}

impl Stage {
    /// Postfix's name for the command a reply answers ("in reply to …").
    pub fn request(self) -> &'static str {
        match self {
            Stage::Greeting => "initial server greeting",
            Stage::Ehlo => "EHLO command",
            Stage::Helo => "HELO command",
            Stage::StartTls => "STARTTLS command",
            Stage::Auth => "AUTH command",
            Stage::Mail => "MAIL FROM command",
            Stage::Rcpt => "RCPT TO command",
            Stage::Data => "DATA command",
            Stage::Body | Stage::Dot => "end of DATA command",
            Stage::FinalRset => "final RSET command",
            Stage::RsetProbe => "RSET probe",
            Stage::Quit => "QUIT command",
        }
    }

    /// Whether a failure here is a failure to establish the session (which
    /// counts against the destination), rather than one during mail
    /// transfer with a working server.
    pub fn is_handshake(self) -> bool {
        matches!(
            self,
            Stage::Greeting | Stage::Ehlo | Stage::Helo | Stage::StartTls
        )
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Greeting => "receiving the initial server greeting",
            Stage::Ehlo => "performing the EHLO handshake",
            Stage::Helo => "performing the HELO handshake",
            Stage::StartTls => "sending STARTTLS",
            Stage::Auth => "performing SASL authentication",
            Stage::Mail => "sending MAIL FROM",
            Stage::Rcpt => "sending RCPT TO",
            Stage::Data => "sending DATA command",
            Stage::Body => "sending message body",
            Stage::Dot => "sending end of data -- message may be sent more than once",
            Stage::FinalRset => "sending final RSET",
            Stage::RsetProbe => "sending RSET probe",
            Stage::Quit => "sending QUIT",
        })
    }
}

/// A session that cannot go on. `peer` is `host[ip]`, as Postfix names a
/// server in reasons. The `Display` text is the reason.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SessionError {
    #[error("conversation with {peer} timed out while {stage}")]
    Timeout { peer: String, stage: Stage },
    /// End of file, or a read or write error.
    #[error("lost connection with {peer} while {stage}")]
    Lost { peer: String, stage: Stage },
    /// The server's reply did not end within `max_reply_bytes`.
    #[error("conversation with {peer} failed while {stage}: server reply exceeds {limit} bytes")]
    ReplyTooLong {
        peer: String,
        stage: Stage,
        limit: usize,
    },
    /// The greeting, or EHLO and then HELO, got a non-2xx reply. `dsn` is the
    /// reply's, except that a 5xx greeting counts as 4xx
    /// (`smtp_skip_5xx_greeting = yes`): another server may take the mail.
    #[error("host {peer} refused to talk to me: {reply}")]
    Refused {
        peer: String,
        stage: Stage,
        reply: String,
        dsn: EnhancedCode,
    },
    /// The server rejected RSET: the connection cannot be reused.
    #[error("host {peer} said: {reply} (in reply to {})", stage.request())]
    Rejected {
        peer: String,
        stage: Stage,
        reply: String,
        dsn: EnhancedCode,
    },
    /// The server sent something nobody asked for, so replies can no longer
    /// be matched to commands.
    #[error("unexpected server reply from {peer} while {stage}")]
    Unsynchronised { peer: String, stage: Stage },
    /// `smtp_helo_name` cannot be sent.
    #[error("local configuration error: bad smtp_helo_name {name:?}")]
    BadHeloName { name: String },
    /// Mandatory TLS failed (levels `encrypt` and up), in Postfix's words.
    #[error("{}", failure.reason(peer, reply))]
    Tls {
        peer: String,
        failure: TlsFailure,
        /// The server's reply to STARTTLS, when it refused.
        reply: String,
    },
    /// The handshake failed at level `may`: connect again and go on in
    /// plaintext (Postfix's `RETRY_AS_PLAINTEXT`).
    #[error("Cannot start TLS: handshake failure with {peer}")]
    TlsRetryPlaintext { peer: String },
    /// SMTP AUTH failed: refused, or no mechanism allowed.
    #[error("{reason}")]
    Sasl { reason: String, dsn: EnhancedCode },
    /// The connection failed earlier and was used again.
    #[error("connection with {peer} is no longer usable")]
    Closed { peer: String },
}

impl SessionError {
    /// Postfix's reason text (the `Display` form).
    pub fn reason(&self) -> String {
        self.to_string()
    }

    /// The enhanced status code for the affected recipients.
    pub fn dsn(&self) -> EnhancedCode {
        match self {
            SessionError::Timeout { .. }
            | SessionError::Lost { .. }
            | SessionError::Closed { .. } => EnhancedCode(4, 4, 2),
            SessionError::ReplyTooLong { .. } | SessionError::Unsynchronised { .. } => {
                EnhancedCode(4, 5, 0)
            }
            SessionError::Refused { dsn, .. } | SessionError::Rejected { dsn, .. } => *dsn,
            SessionError::Tls { failure, .. } => {
                let (class, subject, detail) = failure.dsn();
                EnhancedCode(class, subject, detail)
            }
            SessionError::TlsRetryPlaintext { .. } => EnhancedCode(4, 7, 5),
            SessionError::Sasl { dsn, .. } => *dsn,
            // "system configuration error" — the mail waits for a fix.
            SessionError::BadHeloName { .. } => EnhancedCode(4, 3, 5),
        }
    }

    /// Whether the failure is permanent for the mail (a 5xx to HELO).
    pub fn is_permanent(&self) -> bool {
        self.dsn().0 == 5
    }

    /// Whether this is a connect/handshake failure, which counts toward
    /// the destination's failed cohort (Postfix's concurrency feedback).
    pub fn is_handshake_failure(&self) -> bool {
        match self {
            SessionError::Timeout { stage, .. }
            | SessionError::Lost { stage, .. }
            | SessionError::ReplyTooLong { stage, .. }
            | SessionError::Refused { stage, .. }
            | SessionError::Unsynchronised { stage, .. } => stage.is_handshake(),
            // The server answered; only the TLS policy failed.
            SessionError::Tls { failure, .. } => failure == &TlsFailure::HandshakeFailed,
            SessionError::TlsRetryPlaintext { .. } | SessionError::Sasl { .. } => false,
            SessionError::Rejected { .. }
            | SessionError::BadHeloName { .. }
            | SessionError::Closed { .. } => false,
        }
    }

    /// qmgr's concurrency feedback for this failure.
    pub fn feedback(&self) -> Feedback {
        if self.is_handshake_failure() {
            Feedback::Failure
        } else {
            Feedback::Success
        }
    }

    /// The outcome for a recipient this failure left undecided.
    pub fn outcome(&self) -> RcptOutcome {
        let (dsn, reason) = (self.dsn().to_string(), self.reason());
        if self.is_permanent() {
            RcptOutcome::Bounced { dsn, reason }
        } else {
            RcptOutcome::Deferred { dsn, reason }
        }
    }
}

/// A transaction cut short by a session failure. `outcomes` still holds
/// one outcome per recipient: what the server had already decided, and
/// for the rest a deferral with the failure's reason (as Postfix's
/// `smtp_bulk_fail()` does). The connection must not be reused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{error}")]
pub struct DeliverError {
    pub error: SessionError,
    pub outcomes: Vec<RcptOutcome>,
}

impl DeliverError {
    /// Every one of `n` recipients undecided.
    pub(super) fn all(error: SessionError, n: usize) -> Self {
        DeliverError {
            outcomes: vec![error.outcome(); n],
            error,
        }
    }
}
