//! smtpd's connection under TLS: the socket, plaintext or wrapped by
//! futures-rustls, and the server handshake (after STARTTLS, or before the
//! greeting on a wrapper-mode listener).
//!
//! **Bounds.** The handshake runs on the shard's executor like any other
//! I/O, never blocking it: rustls's sans-IO `ServerConnection` is driven
//! by futures-rustls as bytes arrive. The whole handshake must end within
//! `smtpd_starttls_timeout` (each read also within `smtpd_timeout`); a
//! client that sends garbage, or stops, is logged and closed while the
//! shard serves everyone else.
//!
//! **Trust.** The handshake bytes are hostile; rustls parses them.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncWrite, FutureExt};
use futures_rustls::server::TlsStream;
use futures_rustls::TlsAcceptor;
use glommio::net::TcpStream;
use rustls::ServerConfig;
use sluice_protocols::envelope::ClientInfo;
use sluice_protocols::smtp::server::TlsInfo;

use crate::tls::{tls_info, SmtpdTls};

/// The client's connection.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// A failed handshake consumed the socket.
    Closed,
}

impl Conn {
    /// The server handshake on a plaintext connection, bounded by
    /// `smtpd_starttls_timeout`. On failure the socket is closed and the
    /// error says why (for `SSL_accept error from …: why`).
    pub async fn accept(
        &mut self,
        config: Arc<ServerConfig>,
        tls: &SmtpdTls,
    ) -> Result<TlsInfo, String> {
        let Conn::Plain(tcp) = std::mem::replace(self, Conn::Closed) else {
            return Err("TLS is already active".into());
        };
        let timeout = tls.starttls_timeout;
        let handshake = async {
            TlsAcceptor::from(config)
                .accept(tcp)
                .await
                .map_err(|e| e.to_string())
        };
        let timer = async {
            glommio::timer::sleep(timeout).await;
            Err(format!("handshake timed out after {}", secs(timeout)))
        };
        let stream = handshake.or(timer).await?;
        let info = tls_info(stream.get_ref().1, tls.cert.as_ref());
        *self = Conn::Tls(Box::new(stream));
        Ok(info)
    }
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

/// Postfix's log lines for the handshake's start and end.
pub fn log_started(tls: &SmtpdTls, client: &ClientInfo) {
    if tls.loglevel >= 2 {
        tracing::info!(target: "smtpd", "setting up TLS connection from {}", client.display());
    }
}

pub fn log_established(tls: &SmtpdTls, client: &ClientInfo, info: &TlsInfo) {
    if tls.loglevel >= 1 {
        tracing::info!(
            target: "smtpd",
            "Anonymous TLS connection established from {}: {info}",
            client.display()
        );
    }
}

pub fn log_failed(client: &ClientInfo, after: &str, why: &str) {
    tracing::info!(target: "smtpd", "SSL_accept error from {}: {why}", client.display());
    tracing::info!(target: "smtpd", "lost connection after {after} from {}", client.display());
}

/// CVE-2011-0411: plaintext that followed STARTTLS was dropped.
pub fn log_discarded(client: &ClientInfo, bytes: usize) {
    tracing::warn!(
        target: "smtpd",
        "warning: {}: discarding {bytes} bytes of plaintext pipelined after STARTTLS",
        client.display()
    );
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Conn::Closed => Poll::Ready(Ok(0)),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Conn::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Conn::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_close(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
            Conn::Closed => Poll::Ready(Ok(())),
        }
    }
}
