//! The parsers on their own: tokenizer, paths, parameters, DATA scanner.

use super::super::address::{parse_path, valid_hostname, AddressError};
use super::super::command::{is_forbidden, tokenize, Verb};
use super::super::data::{DataScanner, Refusal, Scan};
use super::super::params::{parse_mail_params, parse_rcpt_params, xtext_decode, ParamError};
use crate::envelope::Notify;
use crate::smtp::BareNewline;

fn words(line: &str) -> Vec<(String, bool)> {
    let mut toks = Vec::new();
    tokenize(line.as_bytes(), &mut toks);
    toks.iter()
        .map(|t| {
            (
                String::from_utf8_lossy(t.text(line.as_bytes())).into_owned(),
                t.unterminated,
            )
        })
        .collect()
}

#[test]
fn tokenizer_follows_smtpd_token() {
    let ok = |w: &[&str]| w.iter().map(|s| (s.to_string(), false)).collect::<Vec<_>>();
    let cases: &[(&str, Vec<(String, bool)>)] = &[
        ("MAIL FROM:<a@b>", ok(&["MAIL", "FROM:", "<a@b>"])),
        (
            "mail from: <a@b> SIZE=1",
            ok(&["mail", "from:", "<a@b>", "SIZE=1"]),
        ),
        ("RCPT TO:<\"a b\"@c>", ok(&["RCPT", "TO:", "<\"a b\"@c>"])),
        ("RCPT TO:<a <b> c>", ok(&["RCPT", "TO:", "<a <b> c>"])),
        ("  NOOP  x\t y ", ok(&["NOOP", "x", "y"])),
        ("X-Y:z", ok(&["X-Y:z"])),
        ("a\\ b", ok(&["a\\ b"])),
        ("", vec![]),
        (
            "MAIL FROM:<a@b",
            vec![
                ("MAIL".into(), false),
                ("FROM:".into(), false),
                ("<a@b".into(), true),
            ],
        ),
        (
            "x \"open",
            vec![("x".into(), false), ("\"open".into(), true)],
        ),
    ];
    for (line, want) in cases {
        assert_eq!(&words(line), want, "{line:?}");
    }
}

#[test]
fn verbs() {
    assert_eq!(Verb::parse(b"ehlo"), Some(Verb::Ehlo));
    assert_eq!(Verb::parse(b"BdAt"), Some(Verb::Bdat));
    assert_eq!(Verb::parse(b"EHLOX"), None);
    assert!(is_forbidden(b"get") && is_forbidden(b"Subject:") && is_forbidden(b"<x>"));
    assert!(!is_forbidden(b"XYZZY") && !is_forbidden(b"STARTTLS"));
}

#[test]
fn paths() {
    let cases: &[(&str, Result<&str, AddressError>)] = &[
        ("<a@b.example>", Ok("a@b.example")),
        ("a@b.example", Ok("a@b.example")),
        ("<>", Ok("")),
        ("<@x,@y:a@b>", Ok("a@b")),
        ("<\"a b\"@c>", Ok("\"a b\"@c")),
        ("<\"a\\\"b\"@c>", Ok("\"a\\\"b\"@c")),
        ("<postmaster>", Ok("postmaster")),
        ("<a@[IPv6:2001:db8::1]>", Ok("a@[IPv6:2001:db8::1]")),
        ("<jöe@bücher.example>", Ok("jöe@bücher.example")),
        ("<a@b", Err(AddressError::Brackets)),
        ("<a b@c>", Err(AddressError::LocalPart)),
        ("<@x>", Err(AddressError::LocalPart)),
        ("<@c>", Err(AddressError::LocalPart)),
        ("<a@>", Err(AddressError::Domain)),
        ("<a@b@c>", Err(AddressError::Domain)),
        ("<a@b c>", Err(AddressError::Domain)),
        ("<a,b@c>", Err(AddressError::LocalPart)),
        ("<\"ab@c>", Err(AddressError::LocalPart)),
        ("<\"a\"b@c>", Err(AddressError::LocalPart)),
        ("<a@[]>", Err(AddressError::Domain)),
    ];
    for (path, want) in cases {
        let got = parse_path(path.as_bytes()).map(|a| std::str::from_utf8(a).unwrap_or("?"));
        assert_eq!(got, *want, "{path}");
    }
}

#[test]
fn hostnames() {
    for good in ["example.org", "a", "x_y.example", "mx-1.example"] {
        assert!(valid_hostname(good.as_bytes()), "{good}");
    }
    for bad in ["", "-a.example", "a..b", "1.2.3.4", "a b", &"x".repeat(64)] {
        assert!(!valid_hostname(bad.as_bytes()), "{bad}");
    }
}

fn mail(params: &str) -> Result<crate::envelope::MailParams, ParamError> {
    parse_mail_params(params.split_whitespace().map(str::as_bytes))
}

#[test]
fn mail_params() {
    assert_eq!(mail("SIZE=0").map(|m| m.size), Ok(Some(0)));
    assert_eq!(mail("SIZE=1 SIZE=2").map(|m| m.size), Ok(Some(2)));
    assert_eq!(mail("ENVID=a+2Bb").map(|m| m.envid), Ok(Some("a+b".into())));
    assert_eq!(mail("ENVID=a ENVID=b"), Err(ParamError::Envid));
    assert_eq!(mail("ENVID=+0A"), Err(ParamError::Envid));
    assert_eq!(
        mail(&format!("ENVID={}", "x".repeat(101))),
        Err(ParamError::Envid)
    );
    assert_eq!(mail("SIZE=-1"), Err(ParamError::SizeSyntax));
    assert_eq!(
        mail("SMTPUTF8=yes"),
        Err(ParamError::Unsupported("SMTPUTF8=yes".into()))
    );
    let mut out = Vec::new();
    ParamError::Unsupported("X\u{1}".into()).write_reply(&mut out);
    assert_eq!(out, b"555 5.5.4 Unsupported option: X\x01\r\n");
}

#[test]
fn rcpt_params() {
    let rcpt = |p: &str| parse_rcpt_params(p.split_whitespace().map(str::as_bytes));
    assert_eq!(
        rcpt("NOTIFY=DELAY").map(|r| r.notify),
        Ok(Notify(Notify::DELAY))
    );
    assert_eq!(
        rcpt("NOTIFY=never").map(|r| r.notify),
        Ok(Notify(Notify::NEVER))
    );
    assert_eq!(rcpt("NOTIFY="), Err(ParamError::Notify));
    assert_eq!(rcpt("NOTIFY=DELAY,"), Err(ParamError::Notify));
    assert_eq!(rcpt("NOTIFY=DELAY NOTIFY=DELAY"), Err(ParamError::Notify));
    assert_eq!(
        rcpt("ORCPT=rfc822;a+40b").map(|r| r.orcpt),
        Ok(Some("rfc822;a@b".into()))
    );
    assert_eq!(
        rcpt("ORCPT=rfc822;a ORCPT=rfc822;b"),
        Err(ParamError::Orcpt)
    );
    assert_eq!(rcpt("ORCPT=rfc822;a+4"), Err(ParamError::Orcpt));
    assert_eq!(xtext_decode(b"+e2+82+ac"), Some("€".into()));
    assert_eq!(xtext_decode(b"+FF"), None);
}

/// Feeds `input` to a fresh scanner in one piece.
fn scan(mode: BareNewline, limit: u64, input: &[u8]) -> (usize, Scan, Vec<u8>, Option<Refusal>) {
    let mut s = DataScanner::new(mode, limit);
    let mut content = Vec::new();
    let (n, r) = s.feed(input, &mut content);
    (n, r, content, s.refusal())
}

/// Mode, input, bytes consumed, result, stored content, refusal.
type ScanRow = (
    BareNewline,
    &'static [u8],
    usize,
    Scan,
    &'static [u8],
    Option<Refusal>,
);

#[test]
fn scanner_table() {
    use BareNewline::*;
    let cases: &[ScanRow] = &[
        (Normalize, b".\r\n", 3, Scan::End, b"", None),
        (Normalize, b"a\r\n.\r\nNOOP", 6, Scan::End, b"a\r\n", None),
        (Normalize, b"..\r\n.\r\n", 7, Scan::End, b".\r\n", None),
        (Normalize, b"a\r\n..b", 6, Scan::More, b"a\r\n.b", None),
        (Normalize, b"a\n.\nb", 5, Scan::More, b"a\r\n.\r\nb", None),
        (Normalize, b".\n", 2, Scan::More, b".\r\n", None),
        (Normalize, b"a\r", 2, Scan::More, b"a\r", None),
        (
            Reject,
            b"a\nb\r\n.\r\n",
            8,
            Scan::End,
            b"",
            Some(Refusal::BareLf),
        ),
        (
            Reject,
            b"a\rb\r\n.\r\n",
            8,
            Scan::End,
            b"",
            Some(Refusal::BareCr),
        ),
        (Reject, b"a\r\n.\r\n", 6, Scan::End, b"a\r\n", None),
        (No, b"a\n.\nb", 4, Scan::End, b"a\r\n", None),
        (No, b"a\r\n.\n", 5, Scan::End, b"a\r\n", None),
        (No, b"a\r.\r", 4, Scan::More, b"a\r.\r", None),
    ];
    for (mode, input, n, r, content, refusal) in cases {
        let got = scan(*mode, 0, input);
        let ctx = format!("{mode:?} {:?}", String::from_utf8_lossy(input));
        assert_eq!(got.0, *n, "{ctx}");
        assert_eq!(got.1, *r, "{ctx}");
        assert_eq!(got.2, *content, "{ctx}");
        assert_eq!(got.3, *refusal, "{ctx}");
    }
}

#[test]
fn scanner_size_limit_drops_content() {
    let (_, r, content, refusal) = scan(BareNewline::Normalize, 4, b"abcd\r\n.\r\n");
    assert_eq!(
        (r, content.capacity(), refusal),
        (Scan::End, 0, Some(Refusal::TooBig))
    );
    let (_, _, content, refusal) = scan(BareNewline::Normalize, 6, b"abcd\r\n.\r\n");
    assert_eq!(
        (content.as_slice(), refusal),
        (b"abcd\r\n".as_slice(), None)
    );
}
