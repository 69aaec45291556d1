//! STARTTLS (RFC 3207) in the session: the command, the restart after the
//! handshake, the `encrypt` gate, and the plaintext-injection defence
//! (CVE-2011-0411).
//!
//! The session never touches TLS itself: STARTTLS queues `220 2.0.0 Ready
//! to start TLS` and returns [`Want::StartTls`]; the owner flushes that
//! reply in plaintext, runs the handshake, and calls
//! [`Session::tls_established`] (or closes the connection when the
//! handshake fails). Whatever the client sent after `STARTTLS\r\n` before
//! the handshake is plaintext that an attacker in the middle may have
//! injected: it is consumed and dropped, never answered inside TLS
//! ([`Session::plaintext_discarded`] says how much, for the log).

use std::fmt;

use super::{Outcome, Session};
use crate::smtp::server::command::Token;
use crate::smtp::server::Want;

pub(super) const READY: &[u8] = b"220 2.0.0 Ready to start TLS\r\n";
pub(super) const SYNTAX: &[u8] = b"501 5.5.4 Syntax: STARTTLS\r\n";
pub(super) const ALREADY_ACTIVE: &[u8] = b"554 5.5.1 Error: TLS already active\r\n";
pub(super) const NOT_IMPLEMENTED: &[u8] = b"502 5.5.1 Error: command not implemented\r\n";
pub(super) const MUST_STARTTLS: &[u8] = b"530 5.7.0 Must issue a STARTTLS command first\r\n";

/// What the handshake negotiated, for the log line and the Received:
/// header (`smtpd_tls_received_header`), in Postfix's words.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.2` or `TLSv1.3`.
    pub protocol: String,
    /// The cipher suite, OpenSSL's name (`TLS_AES_256_GCM_SHA384`,
    /// `ECDHE-ECDSA-AES256-GCM-SHA384`).
    pub cipher: String,
    /// The cipher's secret bits (Postfix prints `(bits/bits bits)`).
    pub bits: u16,
    /// The key exchange group (`X25519`, `prime256v1`), when known.
    pub key_exchange: Option<String>,
    /// Our certificate's signature algorithm (`ECDSA (P-256)`, `RSA-PSS`).
    pub server_signature: Option<String>,
    /// Its digest (`SHA256`), when known.
    pub server_digest: Option<String>,
}

impl fmt::Display for TlsInfo {
    /// Postfix 3.4+'s summary: `TLSv1.3 with cipher TLS_AES_256_GCM_SHA384
    /// (256/256 bits) key-exchange X25519 server-signature ECDSA (P-256)
    /// server-digest SHA256`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} with cipher {} ({}/{} bits)",
            self.protocol, self.cipher, self.bits, self.bits
        )?;
        self.fmt_details(f, " ")
    }
}

impl TlsInfo {
    /// The key-exchange / server-signature / server-digest words, each
    /// after `sep`.
    pub fn fmt_details(&self, f: &mut dyn fmt::Write, sep: &str) -> fmt::Result {
        let mut first = true;
        for (name, value) in [
            ("key-exchange", &self.key_exchange),
            ("server-signature", &self.server_signature),
            ("server-digest", &self.server_digest),
        ] {
            if let Some(v) = value {
                write!(f, "{}{name} {v}", if first { sep } else { " " })?;
                first = false;
            }
        }
        Ok(())
    }
}

impl Session {
    /// The handshake after STARTTLS (or a wrapper-mode listener's, before
    /// the greeting) succeeded. RFC 3207 §4.2: everything learned before
    /// it is forgotten (HELO/EHLO name, transaction); the client must send
    /// EHLO again, and STARTTLS is no longer offered. A SASL login made in
    /// clear is forgotten too, as Postfix does.
    pub fn tls_established(&mut self, info: TlsInfo) {
        self.auth_logout();
        self.tls = Some(info);
        self.starting_tls = false;
        self.helo = None;
        self.esmtp = false;
        self.txn = None;
    }

    /// TLS is active on this connection.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// What the handshake negotiated, once TLS is active.
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// Bytes of plaintext that followed STARTTLS before the handshake and
    /// were discarded (CVE-2011-0411); the owner logs them.
    pub fn plaintext_discarded(&self) -> usize {
        self.plaintext_discarded
    }

    /// EHLO offers STARTTLS: a certificate is configured, the level is
    /// `may` or `encrypt`, and TLS is not active yet.
    pub(super) fn offers_starttls(&self) -> bool {
        self.cfg.starttls && self.tls.is_none()
    }

    /// `smtpd_tls_security_level = encrypt` and no TLS yet: the 530 for
    /// a command that may not run in plaintext.
    pub(super) fn tls_gate(&mut self, pre_tls: bool) -> Option<Outcome> {
        (self.cfg.tls_required && self.tls.is_none() && !pre_tls).then(|| self.fail(MUST_STARTTLS))
    }

    pub(super) fn starttls_cmd(&mut self, args: &[Token]) -> Outcome {
        if !args.is_empty() {
            return self.fail(SYNTAX);
        }
        if self.tls.is_some() {
            return self.fail(ALREADY_ACTIVE);
        }
        if !self.cfg.starttls {
            return self.fail(NOT_IMPLEMENTED);
        }
        self.starting_tls = true;
        self.reply(READY)
    }

    /// After STARTTLS was accepted: the rest of this input is plaintext
    /// sent before the handshake, consumed and dropped.
    pub(super) fn discard_after_starttls(&mut self, input: &[u8], pos: usize) -> (usize, Want) {
        let rest = input.len() - pos;
        if rest > 0 {
            self.plaintext_discarded = self.plaintext_discarded.saturating_add(rest);
            self.improper_pipelining.get_or_insert("STARTTLS");
        }
        (input.len(), Want::StartTls)
    }
}
