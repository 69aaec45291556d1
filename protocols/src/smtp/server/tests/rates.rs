//! MAIL and RCPT wait for the owner's per-client rate decision (Postfix's
//! anvil) at Postfix's check points, and the refusal is Postfix's.

use super::*;

fn limited(mail: u32, rcpt: u32) -> T {
    let mut t = T::new();
    t.policy.rate_limits = Some((mail, rcpt));
    t
}

#[test]
fn without_limits_nothing_is_asked() {
    let mut s = Session::new(Rc::new(split_cfg()));
    s.greet();
    let input = b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n";
    let p = s.receive(input, &mut TestPolicy::default());
    assert_eq!((p.consumed, p.want), (input.len(), Want::More));
}

#[test]
fn a_suspended_command_is_not_consumed() {
    let mut s = Session::new(Rc::new(split_cfg()));
    let mut policy = TestPolicy {
        rate_limits: Some((5, 5)),
        ..TestPolicy::default()
    };
    s.greet();
    let ehlo = b"EHLO c\r\n";
    let input = b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n";
    let p = s.receive(input, &mut policy);
    assert_eq!(
        (p.consumed, p.want),
        (ehlo.len(), Want::Decide(RateEvent::Mail))
    );
    // Asked again before an answer: the same question, nothing consumed.
    let again = s.receive(&input[ehlo.len()..], &mut policy);
    assert_eq!(
        (again.consumed, again.want),
        (0, Want::Decide(RateEvent::Mail))
    );
    s.decide(Ok(()));
    let rest = &input[ehlo.len()..];
    let p = s.receive(rest, &mut policy);
    let mail_len = b"MAIL FROM:<a@b>\r\n".len();
    assert_eq!(
        (p.consumed, p.want),
        (mail_len, Want::Decide(RateEvent::Rcpt))
    );
    s.decide(Ok(()));
    let p = s.receive(&rest[mail_len..], &mut policy);
    assert_eq!((p.consumed, p.want), (rest.len() - mail_len, Want::More));
    let out = String::from_utf8(s.output().clone()).unwrap();
    assert!(out.ends_with("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"), "{out}");
}

#[test]
fn too_much_mail() {
    let mut t = limited(2, 0);
    t.cmd("EHLO c");
    assert_eq!(t.cmd("MAIL FROM:<a@b>"), "250 2.1.0 Ok");
    assert_eq!(t.cmd("RSET"), "250 2.0.0 Ok");
    assert_eq!(t.cmd("MAIL FROM:<a@b>"), "250 2.1.0 Ok");
    assert_eq!(t.cmd("RSET"), "250 2.0.0 Ok");
    assert_eq!(
        t.cmd("MAIL FROM:<a@b>"),
        "450 4.7.1 Error: too much mail from 127.0.0.5"
    );
    assert_eq!(t.s.error_count(), 1, "a refusal counts as an error");
    // No transaction was opened.
    assert_eq!(t.cmd("RCPT TO:<c@d>"), "503 5.5.1 Error: need MAIL command");
    assert_eq!(t.policy.rates.0, 3);
}

#[test]
fn too_many_recipients() {
    let mut t = limited(0, 2);
    t.cmd("EHLO c");
    t.cmd("MAIL FROM:<a@b>");
    assert_eq!(t.cmd("RCPT TO:<c1@d>"), "250 2.1.5 Ok");
    assert_eq!(t.cmd("RCPT TO:<c2@d>"), "250 2.1.5 Ok");
    assert_eq!(
        t.cmd("RCPT TO:<c3@d>"),
        "450 4.7.1 Error: too many recipients from 127.0.0.5"
    );
    assert_eq!(t.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
    assert_eq!(t.send(b"x\r\n.\r\n"), "250 2.0.0 Ok: queued as QID1");
    assert_eq!(t.messages[0].envelope.recipients.len(), 2);
    assert_eq!(t.cmd("QUIT"), "221 2.0.0 Bye");
    assert_eq!(
        t.s.command_stats(),
        "ehlo=1 mail=1 rcpt=2/3 data=1 quit=1 commands=6/7"
    );
}

#[test]
fn state_and_syntax_come_before_the_question() {
    let mut t = limited(1, 1);
    t.cmd("EHLO c");
    assert_eq!(t.cmd("RCPT TO:<c@d>"), "503 5.5.1 Error: need MAIL command");
    assert_eq!(
        t.cmd("MAIL TO:<a@b>"),
        "501 5.5.4 Syntax: MAIL FROM:<address>"
    );
    assert_eq!(t.policy.rates, (0, 0), "nothing asked yet");
    assert_eq!(t.cmd("MAIL FROM:<a@b>"), "250 2.1.0 Ok");
    assert_eq!(
        t.cmd("MAIL FROM:<a@b>"),
        "503 5.5.1 Error: nested MAIL command"
    );
    assert_eq!(
        t.cmd("RCPT FROM:<c@d>"),
        "501 5.5.4 Syntax: RCPT TO:<address>"
    );
    assert_eq!(t.policy.rates, (1, 0));
    // Asked before the address is parsed, as Postfix does.
    assert_eq!(
        t.cmd("RCPT TO:<bad address>"),
        "501 5.1.3 Bad recipient address syntax"
    );
    assert_eq!(t.policy.rates, (1, 1));
}

#[test]
fn every_split_gives_the_same_replies() {
    let input: &[u8] =
        b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c1@d>\r\nRCPT TO:<c2@d>\r\nDATA\r\nx\r\n.\r\nMAIL FROM:<a@b>\r\nQUIT\r\n";
    let policy = || TestPolicy {
        rate_limits: Some((1, 1)),
        ..TestPolicy::default()
    };
    let whole = drive_with(split_cfg(), policy(), &[input]);
    assert!(whole
        .output
        .contains("450 4.7.1 Error: too many recipients from 127.0.0.5"));
    assert!(whole
        .output
        .contains("450 4.7.1 Error: too much mail from 127.0.0.5"));
    assert_eq!(whole.messages.len(), 1);
    for cut in 1..input.len() {
        let split = drive_with(split_cfg(), policy(), &[&input[..cut], &input[cut..]]);
        assert_eq!(split, whole, "split at {cut}");
    }
}
