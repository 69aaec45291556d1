//! Commands the client sends, with the ESMTP parameters Postfix's
//! `smtp_loop()` adds: each parameter only when the server announced the
//! extension that defines it.
//!
//! Addresses go out as stored (already in the form smtpd accepted). A
//! value with a control character (CR, LF, NUL, …) is refused rather than
//! sent: on the wire it would end the command early and let the rest be
//! read as another command.

use thiserror::Error;

use super::ehlo::Extensions;
use crate::envelope::{Body, MailParams, Notify, Ret};

pub const DATA: &[u8] = b"DATA\r\n";
pub const RSET: &[u8] = b"RSET\r\n";
pub const QUIT: &[u8] = b"QUIT\r\n";

/// Why a command could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum CommandError {
    #[error("sender address contains a control character")]
    UnsafeSender,
    #[error("recipient address contains a control character")]
    UnsafeRecipient,
    #[error("HELO name is empty or contains white space or a control character")]
    UnsafeHeloName,
}

/// `EHLO name` (`smtp_helo_name`).
pub fn ehlo(out: &mut Vec<u8>, helo_name: &str) -> Result<(), CommandError> {
    hello(out, b"EHLO ", helo_name)
}

/// `HELO name`, after a server rejected EHLO.
pub fn helo(out: &mut Vec<u8>, helo_name: &str) -> Result<(), CommandError> {
    hello(out, b"HELO ", helo_name)
}

fn hello(out: &mut Vec<u8>, verb: &[u8], name: &str) -> Result<(), CommandError> {
    if name.is_empty() || name.bytes().any(|c| c <= b' ' || c == 0x7f) {
        return Err(CommandError::UnsafeHeloName);
    }
    out.extend_from_slice(verb);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// How the content is encoded, for `BODY=`.
fn body_keyword(mail: &MailParams, eight_bit_content: bool) -> Option<&'static str> {
    match mail.body {
        // Sluice sends with DATA, never BDAT, so BINARYMIME content goes
        // out as 8BITMIME (what Postfix, which has no BINARYMIME, does).
        Body::EightBitMime | Body::BinaryMime => Some("8BITMIME"),
        _ if eight_bit_content => Some("8BITMIME"),
        Body::SevenBit => Some("7BIT"),
        Body::Unspecified => None,
    }
}

/// `MAIL FROM:<sender>` with, as Postfix sends them: `SIZE=` (the content
/// size) when the server announced SIZE; `BODY=8BITMIME` when the message
/// is 8-bit (declared so, or with 8-bit content) and `BODY=7BIT` when it
/// was declared 7-bit, both only when the server announced 8BITMIME;
/// `ENVID=` (xtext) and `RET=` only when the server announced DSN;
/// `SMTPUTF8` when the sender asked for it and the server announced it.
pub fn mail_from(
    out: &mut Vec<u8>,
    sender: &str,
    mail: &MailParams,
    size: u64,
    eight_bit_content: bool,
    ext: &Extensions,
) -> Result<(), CommandError> {
    if has_control(sender) {
        return Err(CommandError::UnsafeSender);
    }
    out.extend_from_slice(b"MAIL FROM:<");
    out.extend_from_slice(sender.as_bytes());
    out.push(b'>');
    if ext.size.is_some() {
        out.extend_from_slice(format!(" SIZE={size}").as_bytes());
    }
    if ext.eight_bit_mime {
        if let Some(body) = body_keyword(mail, eight_bit_content) {
            out.extend_from_slice(b" BODY=");
            out.extend_from_slice(body.as_bytes());
        }
    }
    if ext.dsn {
        if let Some(envid) = mail.envid.as_deref().filter(|e| !e.is_empty()) {
            out.extend_from_slice(b" ENVID=");
            xtext_encode(out, envid.as_bytes());
        }
        match mail.ret {
            Some(Ret::Full) => out.extend_from_slice(b" RET=FULL"),
            Some(Ret::Hdrs) => out.extend_from_slice(b" RET=HDRS"),
            None => {}
        }
    }
    if mail.smtputf8 && ext.smtputf8 {
        out.extend_from_slice(b" SMTPUTF8");
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// `RCPT TO:<address>` with, when the server announced DSN, `ORCPT=`
/// (`type;xtext`, or RFC 6533 `utf-8;uxtext`) and `NOTIFY=`. An ORCPT
/// that is not `type;address` is left out rather than sent malformed.
pub fn rcpt_to(
    out: &mut Vec<u8>,
    address: &str,
    notify: Notify,
    orcpt: Option<&str>,
    ext: &Extensions,
) -> Result<(), CommandError> {
    if has_control(address) {
        return Err(CommandError::UnsafeRecipient);
    }
    out.extend_from_slice(b"RCPT TO:<");
    out.extend_from_slice(address.as_bytes());
    out.push(b'>');
    if ext.dsn {
        if let Some((kind, addr)) = orcpt.and_then(|o| o.split_once(';')) {
            if !kind.is_empty() && kind.bytes().all(|c| c.is_ascii_graphic() && c != b'=') {
                out.extend_from_slice(b" ORCPT=");
                out.extend_from_slice(kind.as_bytes());
                out.push(b';');
                if kind.eq_ignore_ascii_case("utf-8") {
                    uxtext_encode(out, addr);
                } else {
                    xtext_encode(out, addr.as_bytes());
                }
            }
        }
        if notify.0 != 0 {
            out.extend_from_slice(b" NOTIFY=");
            write_notify(out, notify);
        }
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// `NEVER`, or the set bits in Postfix's order `SUCCESS,FAILURE,DELAY`.
fn write_notify(out: &mut Vec<u8>, notify: Notify) {
    if notify.contains(Notify::NEVER) {
        out.extend_from_slice(b"NEVER");
        return;
    }
    let mut first = true;
    for (bit, name) in [
        (Notify::SUCCESS, "SUCCESS"),
        (Notify::FAILURE, "FAILURE"),
        (Notify::DELAY, "DELAY"),
    ] {
        if notify.contains(bit) {
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(name.as_bytes());
            first = false;
        }
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// RFC 3461 xtext: `!`..`~` except `+` and `=` as themselves, every other
/// byte as `+XX`.
pub fn xtext_encode(out: &mut Vec<u8>, value: &[u8]) {
    for &c in value {
        if (b'!'..=b'~').contains(&c) && c != b'+' && c != b'=' {
            out.push(c);
        } else {
            out.extend_from_slice(&[b'+', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]);
        }
    }
}

/// RFC 6533 utf-8-addr-xtext: printable ASCII except `+`, `=` and `\` as
/// themselves, every other character as `\x{HEX}` of its code point.
pub fn uxtext_encode(out: &mut Vec<u8>, value: &str) {
    for c in value.chars() {
        if c.is_ascii_graphic() && !matches!(c, '+' | '=' | '\\') {
            out.push(c as u8);
        } else {
            out.extend_from_slice(format!("\\x{{{:X}}}", u32::from(c)).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::server::params::xtext_decode;

    fn all() -> Extensions {
        Extensions {
            pipelining: true,
            size: Some(0),
            eight_bit_mime: true,
            dsn: true,
            smtputf8: true,
            chunking: true,
            enhanced_status_codes: true,
            starttls: false,
            auth: Vec::new(),
        }
    }

    fn mail(sender: &str, params: &MailParams, size: u64, eight: bool, ext: &Extensions) -> String {
        let mut out = Vec::new();
        mail_from(&mut out, sender, params, size, eight, ext).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn rcpt(addr: &str, notify: u8, orcpt: Option<&str>, ext: &Extensions) -> String {
        let mut out = Vec::new();
        rcpt_to(&mut out, addr, Notify(notify), orcpt, ext).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn mail_from_with_everything_announced() {
        let params = MailParams {
            size: Some(5),
            body: Body::EightBitMime,
            smtputf8: true,
            ret: Some(Ret::Hdrs),
            envid: Some("id+1=x y".into()),
        };
        assert_eq!(
            mail("a@b.example", &params, 1234, false, &all()),
            "MAIL FROM:<a@b.example> SIZE=1234 BODY=8BITMIME ENVID=id+2B1+3Dx+20y RET=HDRS SMTPUTF8\r\n"
        );
    }

    #[test]
    fn mail_from_parameters_only_when_announced() {
        let params = MailParams {
            size: None,
            body: Body::EightBitMime,
            smtputf8: true,
            ret: Some(Ret::Full),
            envid: Some("x".into()),
        };
        let none = Extensions::default();
        assert_eq!(mail("", &params, 10, true, &none), "MAIL FROM:<>\r\n");
        let dsn_only = Extensions {
            dsn: true,
            ..Extensions::default()
        };
        assert_eq!(
            mail("", &params, 10, true, &dsn_only),
            "MAIL FROM:<> ENVID=x RET=FULL\r\n"
        );
    }

    #[test]
    fn body_keyword_table() {
        let ext = Extensions {
            eight_bit_mime: true,
            ..Extensions::default()
        };
        for (body, eight, want) in [
            (Body::Unspecified, false, ""),
            (Body::Unspecified, true, " BODY=8BITMIME"),
            (Body::SevenBit, false, " BODY=7BIT"),
            (Body::SevenBit, true, " BODY=8BITMIME"),
            (Body::EightBitMime, false, " BODY=8BITMIME"),
            (Body::BinaryMime, false, " BODY=8BITMIME"),
        ] {
            let params = MailParams {
                body,
                ..MailParams::default()
            };
            assert_eq!(
                mail("s@x", &params, 0, eight, &ext),
                format!("MAIL FROM:<s@x>{want}\r\n"),
                "{body:?} {eight}"
            );
        }
    }

    #[test]
    fn rcpt_to_dsn_parameters() {
        assert_eq!(
            rcpt(
                "r@x",
                Notify::SUCCESS | Notify::FAILURE,
                Some("rfc822;R+1@X"),
                &all()
            ),
            "RCPT TO:<r@x> ORCPT=rfc822;R+2B1@X NOTIFY=SUCCESS,FAILURE\r\n"
        );
        assert_eq!(
            rcpt("r@x", Notify::NEVER, None, &all()),
            "RCPT TO:<r@x> NOTIFY=NEVER\r\n"
        );
        assert_eq!(
            rcpt("r@x", Notify::DELAY, Some("utf-8;jö+@x"), &all()),
            "RCPT TO:<r@x> ORCPT=utf-8;j\\x{F6}\\x{2B}@x NOTIFY=DELAY\r\n"
        );
        assert_eq!(
            rcpt("r@x", 0, Some("no-semicolon"), &all()),
            "RCPT TO:<r@x>\r\n"
        );
        assert_eq!(
            rcpt(
                "r@x",
                Notify::DELAY,
                Some("rfc822;a@b"),
                &Extensions::default()
            ),
            "RCPT TO:<r@x>\r\n"
        );
    }

    #[test]
    fn control_characters_are_refused() {
        let mut out = Vec::new();
        let ext = all();
        let p = MailParams::default();
        assert_eq!(
            mail_from(&mut out, "a@b>\r\nRCPT TO:<x@y", &p, 0, false, &ext),
            Err(CommandError::UnsafeSender)
        );
        assert_eq!(
            rcpt_to(&mut out, "a\n@b", Notify(0), None, &ext),
            Err(CommandError::UnsafeRecipient)
        );
        assert_eq!(
            ehlo(&mut out, "bad name"),
            Err(CommandError::UnsafeHeloName)
        );
        assert!(out.is_empty());
        ehlo(&mut out, "mx.example").unwrap();
        assert_eq!(out, b"EHLO mx.example\r\n");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn xtext_round_trips(s in "\\PC{0,40}") {
            let mut out = Vec::new();
            xtext_encode(&mut out, s.as_bytes());
            proptest::prop_assert!(out.iter().all(|c| c.is_ascii_graphic() && *c != b'='));
            proptest::prop_assert_eq!(xtext_decode(&out), Some(s));
        }
    }
}
