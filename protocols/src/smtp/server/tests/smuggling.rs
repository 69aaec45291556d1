//! SMTP smuggling: which line endings end DATA, in each
//! `smtpd_forbid_bare_newline` mode, and what is stored.

use super::*;
use crate::smtp::BareNewline;

/// A message whose body tries to end DATA with `seq` and smuggle a second
/// transaction behind it.
fn attempt(seq: &[u8]) -> Vec<u8> {
    let mut v =
        b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: s\r\n\r\nhello".to_vec();
    v.extend_from_slice(seq);
    v.extend_from_slice(
        b"MAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\nDATA\r\nsmuggled\r\n.\r\nQUIT\r\n",
    );
    v
}

const SMUGGLED: &[u8] = b"MAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\nDATA\r\nsmuggled\r\n";

/// What should happen to an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// One message; the sequence is content, stored as the given bytes.
    Content(&'static [u8]),
    /// Two messages: the sequence ended DATA (the real end for CRLF.CRLF,
    /// a successful smuggle in legacy mode).
    Split,
    /// The message was refused with this reply after the real end of DATA.
    Refused(&'static str),
}

fn check(mode: BareNewline, seq: &[u8], expect: Expect) {
    let cfg = ServerConfig {
        bare_newline: mode,
        ..split_cfg()
    };
    let out = drive(cfg, &[&attempt(seq)]);
    let ctx = format!("{mode:?} {:?}", String::from_utf8_lossy(seq));
    assert!(out.closed, "{ctx}: {}", out.output);
    assert!(
        out.output.ends_with("221 2.0.0 Bye\r\n"),
        "{ctx}: {}",
        out.output
    );
    match expect {
        Expect::Content(stored) => {
            assert_eq!(out.messages.len(), 1, "{ctx}");
            let mut want = b"Subject: s\r\n\r\nhello".to_vec();
            want.extend_from_slice(stored);
            want.extend_from_slice(SMUGGLED);
            assert_eq!(
                String::from_utf8_lossy(&out.messages[0].content),
                String::from_utf8_lossy(&want),
                "{ctx}"
            );
        }
        Expect::Split => {
            assert_eq!(out.messages.len(), 2, "{ctx}");
            assert_eq!(
                out.messages[0].content, b"Subject: s\r\n\r\nhello\r\n",
                "{ctx}"
            );
            assert_eq!(out.messages[1].envelope.sender, "evil@x", "{ctx}");
        }
        Expect::Refused(reply) => {
            assert!(out.messages.is_empty(), "{ctx}");
            assert!(
                out.output.contains(&format!("\r\n{reply}\r\n")),
                "{ctx}: {}",
                out.output
            );
            // Read to the real end: the smuggled commands were content.
            assert_eq!(out.output.matches("250 2.1.0 Ok").count(), 1, "{ctx}");
        }
    }
}

const BARE_LF: &str = "550 5.5.2 Error: bare <LF> received";
const BARE_CR: &str = "550 5.5.2 Error: bare <CR> received";

#[test]
fn normalize_only_crlf_dot_crlf_ends_data() {
    use Expect::*;
    let m = BareNewline::Normalize;
    check(m, b"\n.\n", Content(b"\r\n.\r\n"));
    check(m, b"\r.\r", Content(b"\r.\r"));
    check(m, b"\n.\r\n", Content(b"\r\n.\r\n"));
    check(m, b"\r\n.\n", Content(b"\r\n.\r\n"));
    check(m, b"\r\r\n.\r\r\n", Content(b"\r\r\n\r\r\n"));
    check(m, b"\r\n.\r\n", Split);
}

#[test]
fn reject_refuses_bare_line_endings_after_the_real_end() {
    use Expect::*;
    let m = BareNewline::Reject;
    check(m, b"\n.\n", Refused(BARE_LF));
    check(m, b"\r.\r", Refused(BARE_CR));
    check(m, b"\n.\r\n", Refused(BARE_LF));
    check(m, b"\r\n.\n", Refused(BARE_LF));
    check(m, b"\r\n.\r\n", Split);
}

#[test]
fn legacy_mode_ends_data_at_any_lone_dot_line() {
    use Expect::*;
    let m = BareNewline::No;
    check(m, b"\n.\n", Split);
    check(m, b"\r.\r", Content(b"\r.\r"));
    check(m, b"\n.\r\n", Split);
    check(m, b"\r\n.\n", Split);
    check(m, b"\r\n.\r\n", Split);
}

#[test]
fn bare_lf_in_content_is_stored_as_crlf() {
    let mut t = T::new();
    t.ready();
    t.cmd("DATA");
    assert_eq!(
        t.send(b"a\nb\r\n\n\r\n.\r\n"),
        "250 2.0.0 Ok: queued as QID1"
    );
    assert_eq!(t.messages[0].content, b"a\r\nb\r\n\r\n\r\n");
}

#[test]
fn reject_mode_refuses_bare_lf_command_lines() {
    let mut t = T::with(ServerConfig {
        bare_newline: BareNewline::Reject,
        ..cfg()
    });
    assert_eq!(t.send(b"NOOP\n"), BARE_LF);
    assert_eq!(t.send(b"NO\rOP\r\n"), BARE_CR);
    assert_eq!(t.cmd("NOOP"), "250 2.0.0 Ok");
    assert_eq!(t.s.error_count(), 2);
}

#[test]
fn normalize_mode_accepts_bare_lf_command_lines() {
    let mut t = T::new();
    assert_eq!(t.send(b"NOOP\n"), "250 2.0.0 Ok");
}

#[test]
fn a_dot_split_from_its_crlf_still_ends_data() {
    // The terminator's bytes arriving one per read.
    let mut t = T::new();
    t.ready();
    t.cmd("DATA");
    for b in b"body\r\n.\r" {
        assert_eq!(t.send(&[*b]), "");
    }
    assert_eq!(t.send(b"\n"), "250 2.0.0 Ok: queued as QID1");
    assert_eq!(t.messages[0].content, b"body\r\n");
}
