//! STARTTLS in the smtp client (Postfix's `smtp_start_tls()`): after EHLO,
//! as the destination's [`TlsPolicy`](super::tls::TlsPolicy) decides —
//! STARTTLS, the 220, the handshake under `smtp_starttls_timeout`, EHLO
//! again — or plaintext, a retry without TLS, or a deferral.

use futures_lite::{AsyncRead, AsyncWrite};
use futures_rustls::TlsConnector;
use sluice_protocols::smtp::client::ehlo::Extensions;

use super::error::{SessionError, Stage};
use super::session::Connection;
use super::stream::Stream;
use super::tls::{decide, Handshake, TlsAction, TlsEvent, TlsFailure, TlsInfo, TlsSetup};
use crate::runtime::{with_timeout, Clock};

const STARTTLS: &[u8] = b"STARTTLS\r\n";

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Runs the TLS part of the handshake after a successful EHLO (or
    /// HELO). `Ok` means go on: over TLS when [`Connection::tls_info`] is
    /// set, else in plaintext as the policy allows.
    pub(super) async fn negotiate_tls<C: Clock>(
        &mut self,
        setup: &TlsSetup,
        clock: &C,
    ) -> Result<(), SessionError> {
        self.tls_level = setup.level;
        let offered = self.ext.starttls;
        match decide(setup.level, TlsEvent::Ehlo { offered }) {
            TlsAction::StartTls => {}
            TlsAction::Defer(failure) => return Err(self.tls_failed(failure, String::new())),
            _ => return Ok(()),
        }
        self.write(clock, Stage::StartTls, STARTTLS).await?;
        let reply = self.read_reply(clock, Stage::StartTls).await?;
        let positive = reply.is_positive_completion();
        match decide(setup.level, TlsEvent::StartTlsReply { positive }) {
            TlsAction::Handshake => {}
            TlsAction::Defer(failure) => return Err(self.tls_failed(failure, reply.one_line())),
            _ => return Ok(()),
        }
        let dropped = self.io.discard_unread();
        if dropped > 0 {
            tracing::warn!(
                target: "smtp",
                "warning: {}: discarding {dropped} bytes the server sent after its reply to STARTTLS",
                self.peer()
            );
        }
        let handshake = self.handshake(setup, clock).await;
        match decide(setup.level, TlsEvent::Handshake(handshake)) {
            TlsAction::Encrypted => {}
            TlsAction::RetryPlaintext => {
                self.usable = false;
                return Err(SessionError::TlsRetryPlaintext {
                    peer: self.namaddr.clone(),
                });
            }
            TlsAction::Defer(failure) => return Err(self.tls_failed(failure, String::new())),
            other => unreachable!("decide() after a handshake gave {other:?}"),
        }
        if let Some(info) = &self.tls {
            if setup.loglevel >= 1 {
                tracing::info!(
                    target: "smtp",
                    "{} TLS connection established to {}: {} with cipher {} ({}/{} bits)",
                    if info.verified { "Verified" } else { "Untrusted" },
                    self.peer(),
                    info.protocol,
                    info.cipher,
                    info.bits,
                    info.bits
                );
            }
        }
        // RFC 3207 §4.2: forget what was learnt in plaintext and ask again.
        self.ext = Extensions::default();
        let ehlo = self.hello(clock, Stage::Ehlo).await?;
        if !ehlo.is_positive_completion() {
            return Err(self.refused(Stage::Ehlo, &ehlo, super::session::failure_dsn(&ehlo)));
        }
        self.ext = Extensions::from_ehlo(&ehlo);
        Ok(())
    }

    /// The handshake, within `smtp_starttls_timeout`. The socket moves
    /// into the TLS layer; when the handshake fails it is gone.
    async fn handshake<C: Clock>(&mut self, setup: &TlsSetup, clock: &C) -> Handshake {
        let Stream::Plain(socket) = std::mem::replace(&mut self.io.stream, Stream::Gone) else {
            return Handshake::Failed;
        };
        let connector = TlsConnector::from(setup.config.clone());
        let connect = connector.connect(setup.server_name.clone(), socket);
        let limit = self.params.timeout(Stage::StartTls);
        let (error, not_verified) = match with_timeout(clock, limit, connect).await {
            Some(Ok(tls)) => {
                let verified = setup.level.must_verify();
                self.tls = Some(TlsInfo::from_connection(tls.get_ref().1, verified));
                self.io.stream = Stream::Tls(Box::new(tls));
                return Handshake::Done;
            }
            Some(Err(e)) => {
                let rustls_error = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
                let bad_cert = matches!(rustls_error, Some(rustls::Error::InvalidCertificate(_)));
                (e.to_string(), bad_cert)
            }
            None => ("timeout".to_string(), false),
        };
        tracing::info!(target: "smtp", "SSL_connect error to {}: {error}", self.peer());
        if not_verified {
            Handshake::NotVerified
        } else {
            Handshake::Failed
        }
    }

    fn tls_failed(&mut self, failure: TlsFailure, reply: String) -> SessionError {
        self.usable = false;
        SessionError::Tls {
            peer: self.namaddr.clone(),
            failure,
            reply,
        }
    }
}
