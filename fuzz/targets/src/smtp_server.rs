//! The SMTP server session: fuzzes `smtp::server::Session` with inputs
//! mapped onto the SMTP alphabet (as smtp-proto's fuzzer does), so random
//! bytes reach MAIL, RCPT, DATA, BDAT and the end-of-data scanner instead
//! of dying at "500 command not recognized".
//!
//! Input layout: the first byte picks the configuration (bits: 0-1 bare
//! newline handling, 2 unauthenticated pipelining, 3 size limit, 4 no
//! greeting, 5 rate limits, 6 STARTTLS offered, 7 `smtpd_tls_auth_only`,
//! and with 6 also TLS required); AUTH is always enabled. Each following
//! byte is a word of the alphabet, except `0xE0..=0xEF` (the next byte goes
//! in raw) and `0xF0..=0xFF` (a read boundary).
//!
//! Checked: no panic, `consumed <= input`, the caller never buffers more
//! than `line_length_limit + 2` bytes of a command line, every reply line is
//! `ddd[ -]text\r\n`, and every message has a recipient and fits the size
//! limit.

use std::rc::Rc;

use sluice_protocols::smtp::reply::Reply;
use sluice_protocols::smtp::server::{
    AuthVerdict, Policy, RateEvent, ServerConfig, Session, TlsInfo, Want,
};
use sluice_protocols::smtp::BareNewline;

const ALPHABET: &[&[u8]] = &[
    b"EHLO c\r\n",
    b"HELO c\r\n",
    b"MAIL FROM:<a@b>",
    b"MAIL FROM:<>",
    b"RCPT TO:<c@d>",
    b"RCPT TO:<x@deny>",
    b"DATA",
    b"BDAT ",
    b" LAST",
    b"RSET",
    b"NOOP",
    b"VRFY ",
    b"ETRN ",
    b"HELP",
    b"QUIT",
    b" SIZE=",
    b" BODY=8BITMIME",
    b" SMTPUTF8",
    b" RET=HDRS",
    b" ENVID=",
    b" NOTIFY=",
    b"SUCCESS,DELAY",
    b" ORCPT=rfc822;",
    b"+40",
    b"\r\n",
    b"\n",
    b"\r",
    b".",
    b"\r\n.\r\n",
    b"..",
    b" ",
    b"<",
    b">",
    b"\"",
    b"@",
    b":",
    b"0",
    b"1",
    b"7",
    b"64",
    b"x",
    b"\xc3\xb6",
    b"Subject: hi",
    // Appended last, so that older seeds keep their meaning.
    b"STARTTLS\r\n",
    // SMTP AUTH: PLAIN/LOGIN, \0jane\0secret, jane, secret, cancel, AUTH=.
    b"AUTH PLAIN",
    b"AUTH LOGIN",
    b"AGphbmUAc2VjcmV0",
    b"amFuZQ==",
    b"c2VjcmV0",
    b"*",
    b"=",
    b" AUTH=",
];

/// Refuses recipients in the `deny` domain; with rate limits on, every
/// MAIL/RCPT waits for a decision (every third one refused).
struct Deny {
    rate_limits: bool,
    events: u32,
}

impl Policy for Deny {
    fn rate_limited(&mut self, _event: RateEvent) -> bool {
        self.rate_limits
    }

    fn check_recipient(&mut self, _sender: &str, recipient: &str) -> Result<(), Reply> {
        if recipient.ends_with("@deny") {
            Err(Reply::new(554, (5, 7, 1), "Relay access denied"))
        } else {
            Ok(())
        }
    }
}

fn well_formed(output: &[u8]) -> bool {
    let Some(body) = output.strip_suffix(b"\r\n") else {
        return output.is_empty();
    };
    body.split(|&c| c == b'\n').all(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        line.len() >= 4
            && line[..3].iter().all(u8::is_ascii_digit)
            && matches!(line[3], b' ' | b'-')
            && !line.contains(&b'\r')
    })
}

/// The target: see the module docs for the input layout.
pub fn run(data: &[u8]) {
    if data.len() > crate::MAX_INPUT {
        return;
    }
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let cfg = ServerConfig {
        bare_newline: match flags % 3 {
            0 => BareNewline::Normalize,
            1 => BareNewline::Reject,
            _ => BareNewline::No,
        },
        forbid_unauth_pipelining: flags & 4 != 0,
        message_size_limit: if flags & 8 != 0 { 64 } else { 0 },
        recipient_limit: 3,
        line_length_limit: 64,
        hard_error_limit: 50,
        starttls: flags & 64 != 0,
        tls_required: flags & 64 != 0 && flags & 128 != 0,
        sasl_auth_enable: true,
        tls_auth_only: flags & 128 != 0,
        ..ServerConfig::for_tests("fuzz.example")
    };
    let size_limit = cfg.message_size_limit;
    let bound = cfg.line_length_limit + 2;

    let mut input = Vec::new();
    let mut cuts = Vec::new();
    let mut bytes = rest.iter();
    while let Some(&b) = bytes.next() {
        match b {
            0xF0..=0xFF => cuts.push(input.len()),
            0xE0..=0xEF => input.extend(bytes.next()),
            _ => input.extend_from_slice(ALPHABET[usize::from(b) % ALPHABET.len()]),
        }
    }
    cuts.push(input.len());

    let mut s = Session::new(Rc::new(cfg));
    if flags & 16 == 0 {
        s.greet();
    }
    let mut policy = Deny {
        rate_limits: flags & 32 != 0,
        events: 0,
    };
    let mut buf = Vec::new();
    let mut from = 0;
    'reads: for cut in cuts {
        buf.extend_from_slice(&input[from..cut]);
        from = cut;
        loop {
            let p = s.receive(&buf, &mut policy);
            assert!(p.consumed <= buf.len());
            buf.drain(..p.consumed);
            match p.want {
                Want::Message => {
                    let m = s.take_message().expect("a message with Want::Message");
                    assert!(!m.envelope.recipients.is_empty());
                    assert!(size_limit == 0 || m.content.len() as u64 <= size_limit);
                    s.message_done(Ok("FUZZ1"));
                }
                Want::More => {
                    assert!(buf.len() <= bound);
                    break;
                }
                Want::Decide(_) => {
                    policy.events += 1;
                    s.decide(if policy.events.is_multiple_of(3) {
                        Err(Reply::new(
                            450,
                            (4, 7, 1),
                            "Error: too much mail from 192.0.2.1",
                        ))
                    } else {
                        Ok(())
                    });
                }
                Want::StartTls => {
                    // The driver's handshake, always successful here; the
                    // session itself dropped what followed STARTTLS.
                    s.tls_established(TlsInfo {
                        protocol: "TLSv1.3".into(),
                        cipher: "TLS_AES_128_GCM_SHA256".into(),
                        bits: 128,
                        ..TlsInfo::default()
                    });
                }
                Want::Authenticate => {
                    let r = s
                        .take_auth_request()
                        .expect("a request with Want::Authenticate");
                    assert!(!r.username.is_empty());
                    s.auth_done(if r.password == "secret" {
                        AuthVerdict::Ok {
                            username: r.username,
                        }
                    } else {
                        AuthVerdict::Fail {
                            reason: "no".into(),
                        }
                    });
                }
                Want::Close => break 'reads,
            }
        }
    }
    let _ = s.on_timeout();
    assert!(well_formed(s.output()));
    let _ = s.command_stats();
}
