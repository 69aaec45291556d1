//! One open SMTP session: the handshake (Postfix's `smtp_helo()` without
//! TLS and SASL), the RSET probe for reuse, and QUIT.

use futures_lite::{AsyncRead, AsyncWrite};
use sluice_protocols::smtp::client::{command, ehlo::Extensions, reply::ServerReply};
use sluice_protocols::smtp::reply::EnhancedCode;

use super::error::{SessionError, Stage};
use super::io::{Fail, Io};
use super::tls::{TlsInfo, TlsLevel, TlsSetup};
use super::SmtpParams;
use crate::runtime::Clock;

/// An SMTP session with a server, ready for mail transactions.
pub struct Connection<S> {
    pub(super) io: Io<S>,
    /// `host[ip]:port`, for logs (`relay=`).
    peer: String,
    /// `host[ip]`, for reasons (Postfix's `namaddr`).
    pub(super) namaddr: String,
    pub(super) params: SmtpParams,
    pub(super) ext: Extensions,
    esmtp: bool,
    pub(super) uses: u32,
    /// False once the session is out of step or broken.
    pub(super) usable: bool,
    /// The TLS level the session was opened under (for scache: a session
    /// is reused only under the same policy).
    pub(super) tls_level: TlsLevel,
    /// The TLS session, once STARTTLS succeeded.
    pub(super) tls: Option<TlsInfo>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Reads the greeting and does EHLO, falling back to HELO when the
    /// server rejects EHLO with anything but 421 (Postfix's rule). `peer`
    /// is `host[ip]:port`.
    pub async fn open<C: Clock>(
        stream: S,
        peer: String,
        params: &SmtpParams,
        clock: &C,
    ) -> Result<Connection<S>, SessionError> {
        Self::open_tls(stream, peer, params, None, clock).await
    }

    /// [`Connection::open`], then STARTTLS as `tls` says (no TLS when
    /// `None`, level `none`). [`SessionError::TlsRetryPlaintext`] asks the
    /// caller to connect again and open without TLS.
    pub async fn open_tls<C: Clock>(
        stream: S,
        peer: String,
        params: &SmtpParams,
        tls: Option<&TlsSetup>,
        clock: &C,
    ) -> Result<Connection<S>, SessionError> {
        let mut conn = Connection {
            io: Io::new(stream, params.line_length_limit, params.max_reply_bytes),
            namaddr: namaddr(&peer).to_string(),
            peer,
            params: params.clone(),
            ext: Extensions::default(),
            esmtp: false,
            uses: 0,
            usable: true,
            tls_level: TlsLevel::None,
            tls: None,
        };
        let greeting = conn.read_reply(clock, Stage::Greeting).await?;
        if !greeting.is_positive_completion() {
            let mut dsn = greeting.dsn();
            // smtp_skip_5xx_greeting = yes: a 5xx greeting is treated as
            // 4xx, so that the next MX host (or a later try) gets the mail.
            if greeting.class() == 5 {
                dsn.0 = 4;
            }
            return Err(conn.refused(Stage::Greeting, &greeting, dsn));
        }

        let ehlo = conn.hello(clock, Stage::Ehlo).await?;
        if ehlo.is_positive_completion() {
            conn.ext = Extensions::from_ehlo(&ehlo);
            conn.esmtp = true;
            if let Some(setup) = tls {
                conn.negotiate_tls(setup, clock).await?;
            }
            return Ok(conn);
        }
        if ehlo.code == 421 {
            return Err(conn.refused(Stage::Ehlo, &ehlo, ehlo.dsn()));
        }
        let helo = conn.hello(clock, Stage::Helo).await?;
        if !helo.is_positive_completion() {
            return Err(conn.refused(Stage::Helo, &helo, failure_dsn(&helo)));
        }
        if let Some(setup) = tls {
            // After HELO nothing is offered: plaintext, or a deferral.
            conn.negotiate_tls(setup, clock).await?;
        }
        Ok(conn)
    }

    /// Sends EHLO or HELO and reads the reply.
    pub(super) async fn hello<C: Clock>(
        &mut self,
        clock: &C,
        stage: Stage,
    ) -> Result<ServerReply, SessionError> {
        let mut cmd = Vec::with_capacity(self.params.helo_name.len() + 7);
        let built = match stage {
            Stage::Ehlo => command::ehlo(&mut cmd, &self.params.helo_name),
            _ => command::helo(&mut cmd, &self.params.helo_name),
        };
        if built.is_err() {
            return Err(SessionError::BadHeloName {
                name: self.params.helo_name.clone(),
            });
        }
        self.write(clock, stage, &cmd).await?;
        self.read_reply(clock, stage).await
    }

    /// Probes the session with RSET before it is reused. An error means:
    /// do not reuse it (quit or drop it).
    pub async fn reset<C: Clock>(&mut self, clock: &C) -> Result<(), SessionError> {
        let stage = Stage::RsetProbe;
        if !self.usable {
            return Err(SessionError::Closed {
                peer: self.namaddr.clone(),
            });
        }
        // Anything the server sent while the session sat idle (a 421
        // timeout notice, junk) would be taken for the reply to RSET.
        if self.io.has_unread() {
            self.usable = false;
            return Err(SessionError::Unsynchronised {
                peer: self.namaddr.clone(),
                stage,
            });
        }
        self.write(clock, stage, command::RSET).await?;
        let reply = self.read_reply(clock, stage).await?;
        if !reply.is_positive_completion() {
            self.usable = false;
            return Err(SessionError::Rejected {
                peer: self.namaddr.clone(),
                stage,
                reply: reply.one_line(),
                dsn: failure_dsn(&reply),
            });
        }
        Ok(())
    }

    /// Sends QUIT and closes the stream. Like Postfix
    /// (`smtp_skip_quit_response = yes`) it does not wait for the reply.
    pub async fn quit<C: Clock>(mut self, clock: &C) {
        if self.usable {
            let _ = self.write(clock, Stage::Quit, command::QUIT).await;
        }
        self.io.close(clock, self.params.quit_timeout).await;
    }

    /// `host[ip]:port`, as given to [`Connection::open`].
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Whether the server announced DSN (then NOTIFY=SUCCESS is passed on,
    /// not answered with a "relayed" notice).
    pub fn peer_supports_dsn(&self) -> bool {
        self.ext.dsn
    }

    /// The extensions the server announced (none after HELO).
    pub fn extensions(&self) -> &Extensions {
        &self.ext
    }

    /// The TLS session, when STARTTLS succeeded.
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// The TLS level the session was opened under (`none` without TLS
    /// setup).
    pub fn tls_level(&self) -> TlsLevel {
        self.tls_level
    }

    /// Whether the server took EHLO (`ESMTP`) or only HELO (`SMTP`).
    pub fn is_esmtp(&self) -> bool {
        self.esmtp
    }

    /// Mail transactions started on this session, counting the current
    /// one (Postfix's `conn_use=`).
    pub fn uses(&self) -> u32 {
        self.uses
    }

    /// Whether the session is in step and may be cached for reuse (after a
    /// successful [`Connection::reset`]).
    pub fn is_reusable(&self) -> bool {
        self.usable
    }

    /// Reads a reply with the time limit of `stage`.
    pub(super) async fn read_reply<C: Clock>(
        &mut self,
        clock: &C,
        stage: Stage,
    ) -> Result<ServerReply, SessionError> {
        let limit = self.params.timeout(stage);
        match self.io.read_reply(clock, limit).await {
            Ok(reply) => Ok(reply),
            Err(fail) => Err(self.fail(stage, fail)),
        }
    }

    /// Writes with the time limit of `stage`.
    pub(super) async fn write<C: Clock>(
        &mut self,
        clock: &C,
        stage: Stage,
        bytes: &[u8],
    ) -> Result<(), SessionError> {
        let limit = self.params.timeout(stage);
        match self.io.write(clock, limit, bytes).await {
            Ok(()) => Ok(()),
            Err(fail) => Err(self.fail(stage, fail)),
        }
    }

    /// The session error for an I/O failure; the session is done for.
    fn fail(&mut self, stage: Stage, fail: Fail) -> SessionError {
        self.usable = false;
        let peer = self.namaddr.clone();
        match fail {
            Fail::Timeout => SessionError::Timeout { peer, stage },
            Fail::Lost => SessionError::Lost { peer, stage },
            Fail::TooLong { limit } => SessionError::ReplyTooLong { peer, stage, limit },
        }
    }

    pub(super) fn refused(
        &mut self,
        stage: Stage,
        reply: &ServerReply,
        dsn: EnhancedCode,
    ) -> SessionError {
        self.usable = false;
        SessionError::Refused {
            peer: self.namaddr.clone(),
            stage,
            reply: reply.one_line(),
            dsn,
        }
    }
}

/// The status for a reply that means failure: its own when it is a 4xx or
/// 5xx one, else `5.5.0` (a positive reply where a failure was concluded
/// is out of protocol, Postfix's "SAFETY! protocol error").
pub(super) fn failure_dsn(reply: &ServerReply) -> EnhancedCode {
    let dsn = reply.dsn();
    if matches!(dsn.0, 4 | 5) {
        dsn
    } else {
        EnhancedCode(5, 5, 0)
    }
}

/// `host[ip]` from `host[ip]:port`.
fn namaddr(peer: &str) -> &str {
    match peer.rfind("]:") {
        Some(i) if peer[i + 2..].bytes().all(|c| c.is_ascii_digit()) => &peer[..=i],
        _ => peer,
    }
}

#[cfg(test)]
mod tests {
    use super::namaddr;

    #[test]
    fn namaddr_drops_the_port() {
        assert_eq!(namaddr("mx.example[192.0.2.1]:25"), "mx.example[192.0.2.1]");
        assert_eq!(
            namaddr("mx.example[2001:db8::1]:2525"),
            "mx.example[2001:db8::1]"
        );
        assert_eq!(namaddr("mx.example[192.0.2.1]"), "mx.example[192.0.2.1]");
        assert_eq!(namaddr("odd"), "odd");
    }
}
