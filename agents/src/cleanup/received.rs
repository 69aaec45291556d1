//! The `Received:` header of the injector, in Postfix's exact shapes.
//!
//! In Postfix this header is written by smtpd (`smtpd.c`, `data_cmd()`)
//! and pickup (`pickup.c`), not by cleanup; here cleanup writes it on their
//! behalf so that the content is built in one pass.
//!
//! Continuation lines start with one TAB (shown here as four spaces).
//!
//! smtpd, one recipient:
//!
//! ```text
//! Received: from <helo> (<name> [<addr>])
//!     by <myhostname> (<mail_name>) with <ESMTP|SMTP> id <qid>
//!     for <rcpt>; <date>
//! ```
//!
//! smtpd, any other number of recipients (the `for` clause would reveal
//! Bcc recipients):
//!
//! ```text
//! Received: from <helo> (<name> [<addr>])
//!     by <myhostname> (<mail_name>) with <ESMTP|SMTP> id <qid>;
//!     <date>
//! ```
//!
//! Under TLS the protocol is `ESMTPS`, and with
//! `smtpd_tls_received_header = yes` the `(using …)` clause follows the
//! `from` line. With `smtpd_sasl_authenticated_header = yes` and a SASL
//! login, a line `(Authenticated sender: <login>)` comes next (after the
//! TLS clause, as in Postfix's `smtpd.c`); after any login the protocol
//! gets an `A`: `ESMTPA`, or `ESMTPSA` under TLS (RFC 3848).
//!
//! `<helo>` is the client's name when it sent no HELO/EHLO; nothing is
//! special about a HELO equal to the name. `<addr>` is Postfix's
//! `rfc_addr`: `IPv6:` before an IPv6 address, and an IPv4-mapped IPv6
//! address shown as IPv4. `<rcpt>` is the address as the client gave it,
//! local part quoted as in a header (`quote_822_local`).
//!
//! pickup:
//!
//! ```text
//! Received: by <myhostname> (<mail_name>, from userid <uid>)
//!     id <qid>; <date>
//! ```

use std::net::IpAddr;

use sluice_protocols::envelope::{ClientInfo, Protocol, Recipient};

use super::{CleanupParams, Origin, ReceivedTls};
use crate::rewrite::quote_822_local;

/// What the Received: header says about one message.
pub(super) struct Received<'a> {
    pub qid: &'a str,
    pub origin: &'a Origin<'a>,
    /// The client logged in (SMTP AUTH).
    pub authenticated: bool,
    /// smtpd's SASL login, when smtpd_sasl_authenticated_header = yes.
    pub authenticated_sender: Option<&'a str>,
    /// smtpd under TLS.
    pub tls: Option<ReceivedTls<'a>>,
    pub recipients: &'a [Recipient],
    pub date: &'a str,
}

/// Appends the Received: header (with its final CRLF) to `out`.
pub(super) fn push_received(out: &mut Vec<u8>, params: &CleanupParams, r: &Received<'_>) {
    let (qid, date) = (r.qid, r.date);
    match r.origin {
        Origin::Smtp { client } => push_smtpd(out, params, r, client),
        Origin::Pickup { uid } => {
            out.extend_from_slice(b"Received: by ");
            out.extend_from_slice(params.myhostname.as_bytes());
            out.extend_from_slice(b" (");
            out.extend_from_slice(params.mail_name.as_bytes());
            out.extend_from_slice(format!(", from userid {uid})\r\n\tid ").as_bytes());
            out.extend_from_slice(qid.as_bytes());
            out.extend_from_slice(b"; ");
            out.extend_from_slice(date.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

fn push_smtpd(out: &mut Vec<u8>, params: &CleanupParams, r: &Received<'_>, client: &ClientInfo) {
    let (qid, recipients, date) = (r.qid, r.recipients, r.date);
    out.extend_from_slice(b"Received: from ");
    push_sanitized(out, client.helo.as_deref().unwrap_or(&client.name));
    out.extend_from_slice(b" (");
    push_sanitized(out, &client.name);
    out.extend_from_slice(b" [");
    out.extend_from_slice(rfc_addr(client.addr).as_bytes());
    out.extend_from_slice(b"])\r\n");
    if let Some(tls) = r.tls.filter(|t| t.clause) {
        push_tls_clause(out, tls.info);
    }
    if let Some(login) = r.authenticated_sender {
        // Postfix's smtpd: `\t(Authenticated sender: <login>)`.
        out.extend_from_slice(b"\t(Authenticated sender: ");
        push_sanitized(out, login);
        out.extend_from_slice(b")\r\n");
    }
    out.extend_from_slice(b"\tby ");
    out.extend_from_slice(params.myhostname.as_bytes());
    out.extend_from_slice(b" (");
    out.extend_from_slice(params.mail_name.as_bytes());
    out.extend_from_slice(b") with ");
    out.extend_from_slice(client.protocol.as_str().as_bytes());
    // RFC 3848: ESMTPS under TLS, ESMTPA after a login, ESMTPSA with
    // both (Postfix's Received: only; `proto=` in the logs stays ESMTP).
    if client.protocol == Protocol::Esmtp {
        if r.tls.is_some() {
            out.push(b'S');
        }
        if r.authenticated {
            out.push(b'A');
        }
    }
    out.extend_from_slice(b" id ");
    out.extend_from_slice(qid.as_bytes());
    if let [only] = recipients {
        out.extend_from_slice(b"\r\n\tfor <");
        push_sanitized(out, &quote_822_local(&only.address));
        out.extend_from_slice(b">; ");
    } else {
        out.extend_from_slice(b";\r\n\t");
    }
    out.extend_from_slice(date.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Postfix 3.4+'s TLS clause (smtpd_tls_received_header = yes):
///
/// ```text
///     (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
///      key-exchange X25519 server-signature ECDSA (P-256) server-digest SHA256)
///     (No client certificate requested)
/// ```
fn push_tls_clause(out: &mut Vec<u8>, info: &sluice_protocols::smtp::server::TlsInfo) {
    let mut text = format!(
        "\t(using {} with cipher {} ({}/{} bits)",
        info.protocol, info.cipher, info.bits, info.bits
    );
    let mut details = String::new();
    let _ = info.fmt_details(&mut details, "");
    if !details.is_empty() {
        text.push_str("\r\n\t ");
        text.push_str(&details);
    }
    text.push_str(")\r\n\t(No client certificate requested)\r\n");
    push_sanitized_lines(out, &text);
}

/// Our own text with its CRLF TAB folds, other control bytes neutered.
fn push_sanitized_lines(out: &mut Vec<u8>, text: &str) {
    out.extend(text.bytes().map(|b| {
        if b.is_ascii_control() && !matches!(b, b'\r' | b'\n' | b'\t') {
            b'?'
        } else {
            b
        }
    }));
}

/// Postfix's `rfc_addr`: the address as it appears between brackets.
fn rfc_addr(addr: IpAddr) -> String {
    match addr.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("IPv6:{v6}"),
    }
}

/// Copies client-supplied text into a header, replacing control characters
/// with `?` (as Postfix's `printable()`), so that nothing a client sends can
/// end the header line or start a new one.
pub(super) fn push_sanitized(out: &mut Vec<u8>, text: &str) {
    out.extend(
        text.bytes()
            .map(|b| if b.is_ascii_control() { b'?' } else { b }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_addr_table() {
        let cases: &[(&str, &str)] = &[
            ("192.0.2.1", "192.0.2.1"),
            ("2001:db8::1", "IPv6:2001:db8::1"),
            ("::1", "IPv6:::1"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
            ("2001:db8:0:1:0:0:0:1", "IPv6:2001:db8:0:1::1"),
        ];
        for (addr, want) in cases {
            let ip: IpAddr = addr.parse().expect("test address");
            assert_eq!(rfc_addr(ip), *want);
        }
    }

    #[test]
    fn sanitizing_removes_line_breaks() {
        let mut out = Vec::new();
        push_sanitized(&mut out, "evil\r\nX-Injected: yes\tné");
        assert_eq!(out, "evil??X-Injected: yes?né".as_bytes());
    }
}
