//! smtpd_forbid_unauth_pipelining (RFC 2920 command groups).

use super::*;

const SYNC: &str = "554 5.5.0 Error: SMTP protocol synchronization";

#[test]
fn talking_before_the_greeting() {
    let mut s = Session::new(Rc::new(cfg()));
    let p = s.receive(b"EHLO early\r\n", &mut TestPolicy::default());
    assert_eq!((p.consumed, p.want), (0, Want::Close));
    assert_eq!(s.output().as_slice(), format!("{SYNC}\r\n").as_bytes());
    assert_eq!(s.improper_pipelining(), Some("CONNECT"));
    // Nothing before greet() is not a violation.
    let mut s = Session::new(Rc::new(cfg()));
    assert_eq!(s.receive(b"", &mut TestPolicy::default()).want, Want::More);
    assert_eq!(s.improper_pipelining(), None);
}

#[test]
fn talking_before_the_greeting_when_allowed() {
    let mut s = Session::new(Rc::new(split_cfg()));
    let p = s.receive(b"HELO early\r\n", &mut TestPolicy::default());
    assert_eq!((p.consumed, p.want), (12, Want::More));
    assert_eq!(
        s.output().as_slice(),
        b"220 mx.example ESMTP Postfix\r\n250 mx.example\r\n"
    );
    assert_eq!(s.improper_pipelining(), Some("CONNECT"));
}

#[test]
fn commands_that_must_end_a_group() {
    for (first, name) in [
        ("EHLO c", "EHLO"),
        ("HELO c", "HELO"),
        ("NOOP", "NOOP"),
        ("VRFY a@b", "VRFY"),
    ] {
        let mut t = T::new();
        let input = format!("{first}\r\nRSET\r\n");
        assert_eq!(t.send(input.as_bytes()), SYNC, "{first}");
        assert_eq!(t.last.want, Want::Close);
        assert_eq!(t.s.improper_pipelining(), Some(name));
    }
}

#[test]
fn without_ehlo_nothing_may_be_pipelined() {
    let mut t = T::new();
    assert_eq!(t.cmd("HELO c"), "250 mx.example");
    assert_eq!(t.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"), SYNC);
    assert_eq!(t.s.improper_pipelining(), Some("MAIL"));
}

#[test]
fn after_ehlo_mail_rcpt_data_may_be_pipelined() {
    let mut t = T::new();
    assert!(t.cmd("EHLO c").starts_with("250-"));
    assert_eq!(
        t.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRSET\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>"
    );
    // QUIT may follow the end of data in the same packet.
    assert_eq!(
        t.send(b"x\r\n.\r\nQUIT\r\n"),
        "250 2.0.0 Ok: queued as QID1\r\n221 2.0.0 Bye"
    );
    assert_eq!(t.s.improper_pipelining(), None);
}

#[test]
fn content_sent_with_the_data_command_is_refused() {
    let mut t = T::new();
    t.ready();
    assert_eq!(t.send(b"DATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n"), SYNC);
    assert_eq!(t.last.want, Want::Close);
    assert_eq!(t.last.consumed, 6);
    assert!(t.messages.is_empty());
    assert_eq!(t.s.improper_pipelining(), Some("DATA"));
}

#[test]
fn when_allowed_the_violation_is_only_noted() {
    let mut t = T::with(split_cfg());
    t.ready();
    assert_eq!(
        t.send(b"DATA\r\nhi\r\n.\r\n"),
        "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as QID1"
    );
    assert_eq!(t.s.improper_pipelining(), Some("DATA"));
}
