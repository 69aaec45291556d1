//! Conversations with Postfix's exact replies.

use super::*;
use crate::envelope::{Body, Notify, Protocol, Ret};

/// Runs `(command, expected reply)` rows in one session.
fn table(t: &mut T, rows: &[(&str, &str)]) {
    for (cmd, want) in rows {
        assert_eq!(t.cmd(cmd), *want, "after {cmd:?}");
    }
}

const EHLO_REPLY: &str = "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n\
250-ETRN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING";

#[test]
fn greeting_is_220_banner() {
    let mut s = Session::new(Rc::new(cfg()));
    s.greet();
    s.greet(); // once only
    assert_eq!(s.output().as_slice(), b"220 mx.example ESMTP Postfix\r\n");
}

#[test]
fn ehlo_announces_extensions_in_postfix_order() {
    let mut t = T::new();
    assert_eq!(t.cmd("EHLO client.example"), EHLO_REPLY);
    assert_eq!(t.s.protocol(), Protocol::Esmtp);
}

#[test]
fn ehlo_without_size_limit_or_vrfy() {
    let mut t = T::with(ServerConfig {
        message_size_limit: 0,
        disable_vrfy: true,
        ..cfg()
    });
    let reply = t.cmd("ehlo x");
    assert!(reply.contains("250-SIZE\r\n250-ETRN"), "{reply}");
    assert!(!reply.contains("VRFY"));
    assert_eq!(t.cmd("VRFY a@b"), "502 5.5.1 VRFY command is disabled");
}

#[test]
fn basic_transaction() {
    let mut t = T::new();
    table(
        &mut t,
        &[
            ("HELO client.example", "250 mx.example"),
            ("MAIL FROM:<jane@a.example>", "250 2.1.0 Ok"),
            ("RCPT TO:<joe@b.example>", "250 2.1.5 Ok"),
            ("RCPT TO:<ann@b.example>", "250 2.1.5 Ok"),
            ("DATA", "354 End data with <CR><LF>.<CR><LF>"),
        ],
    );
    assert_eq!(
        t.send(b"Subject: hi\r\n\r\n..dot\r\nbody\r\n.\r\n"),
        "250 2.0.0 Ok: queued as QID1"
    );
    assert_eq!(t.cmd("QUIT"), "221 2.0.0 Bye");
    assert_eq!(t.last.want, Want::Close);
    let m = &t.messages[0];
    assert_eq!(m.envelope.sender, "jane@a.example");
    let rcpts: Vec<_> = m
        .envelope
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(rcpts, ["joe@b.example", "ann@b.example"]);
    assert_eq!(m.content, b"Subject: hi\r\n\r\n.dot\r\nbody\r\n");
    assert_eq!(m.helo.as_deref(), Some("client.example"));
    assert_eq!(m.protocol, Protocol::Smtp);
    assert_eq!(
        t.s.command_stats(),
        "helo=1 mail=1 rcpt=2 data=1 quit=1 commands=6"
    );
}

#[test]
fn verbs_are_case_insensitive_and_mail_needs_no_helo() {
    let mut t = T::new();
    table(
        &mut t,
        &[
            ("mail from:<a@b.example>", "250 2.1.0 Ok"),
            ("rCpT To:<c@d.example>", "250 2.1.5 Ok"),
            ("rset", "250 2.0.0 Ok"),
            ("noop", "250 2.0.0 Ok"),
            ("NOOP with an argument", "250 2.0.0 Ok"),
        ],
    );
}

#[test]
fn sequence_errors() {
    let mut t = T::new();
    table(
        &mut t,
        &[
            (
                "RCPT TO:<a@b.example>",
                "503 5.5.1 Error: need MAIL command",
            ),
            ("DATA", "503 5.5.1 Error: need RCPT command"),
            ("MAIL FROM:<a@b.example>", "250 2.1.0 Ok"),
            (
                "MAIL FROM:<a@b.example>",
                "503 5.5.1 Error: nested MAIL command",
            ),
            ("DATA", "554 5.5.1 Error: no valid recipients"),
            (
                "RCPT TO:<x@relay.invalid>",
                "554 5.7.1 <x@relay.invalid>: Relay access denied",
            ),
            ("DATA", "554 5.5.1 Error: no valid recipients"),
            ("RCPT TO:<x@ok.example>", "250 2.1.5 Ok"),
            ("DATA extra", "501 5.5.4 Syntax: DATA"),
            ("RSET extra", "501 5.5.4 Syntax: RSET"),
            ("RSET", "250 2.0.0 Ok"),
            (
                "RCPT TO:<a@b.example>",
                "503 5.5.1 Error: need MAIL command",
            ),
        ],
    );
    assert_eq!(t.s.error_count(), 9);
    assert_eq!(
        t.s.command_stats(),
        "mail=1/2 rcpt=1/4 data=0/4 rset=1/2 commands=3/12"
    );
}

#[test]
fn syntax_errors() {
    let mut t = T::with(ServerConfig {
        hard_error_limit: 100,
        ..cfg()
    });
    table(
        &mut t,
        &[
            ("HELO", "501 Syntax: HELO hostname"),
            ("EHLO", "501 Syntax: EHLO hostname"),
            ("", "500 5.5.2 Error: bad syntax"),
            ("   ", "500 5.5.2 Error: bad syntax"),
            ("FOO bar", "500 5.5.2 Error: command not recognized"),
            ("MAIL", "501 5.5.4 Syntax: MAIL FROM:<address>"),
            ("MAIL TO:<a@b>", "501 5.5.4 Syntax: MAIL FROM:<address>"),
            ("MAIL FROM:", "501 5.5.4 Syntax: MAIL FROM:<address>"),
            ("MAIL FROM:<a@b", "501 5.1.7 Bad sender address syntax"),
            ("MAIL FROM:<a b@c>", "501 5.1.7 Bad sender address syntax"),
            ("MAIL FROM:<a@b@c>", "501 5.1.7 Bad sender address syntax"),
            ("MAIL FROM:<a@>", "501 5.1.7 Bad sender address syntax"),
            (
                "MAIL FROM:<\"unclosed@b>",
                "501 5.1.7 Bad sender address syntax",
            ),
            ("VRFY", "501 5.5.4 Syntax: VRFY address"),
            ("VRFY <>", "501 5.1.3 Bad recipient address syntax"),
            (
                "HELP",
                "214 2.0.0 Commands: BDAT DATA EHLO ETRN HELO HELP MAIL NOOP QUIT RCPT RSET VRFY",
            ),
            ("VRFY jane@example.org", "252 2.0.0 jane@example.org"),
            ("VRFY <jane@example.org>", "252 2.0.0 <jane@example.org>"),
        ],
    );
    assert_eq!(t.cmd("MAIL FROM:<>"), "250 2.1.0 Ok");
    table(
        &mut t,
        &[
            ("RCPT", "501 5.5.4 Syntax: RCPT TO:<address>"),
            ("RCPT FROM:<a@b>", "501 5.5.4 Syntax: RCPT TO:<address>"),
            ("RCPT TO:<>", "501 5.1.3 Bad recipient address syntax"),
            (
                "RCPT TO:<a@b.example",
                "501 5.1.3 Bad recipient address syntax",
            ),
            (
                "RCPT TO:<@route.example>",
                "501 5.1.3 Bad recipient address syntax",
            ),
        ],
    );
}

#[test]
fn addresses_are_stored_as_given() {
    let mut t = T::new();
    table(
        &mut t,
        &[
            ("EHLO c", EHLO_REPLY),
            ("MAIL FROM: <>", "250 2.1.0 Ok"),
            (
                "RCPT TO:<@a.example,@b.example:user@d.example>",
                "250 2.1.5 Ok",
            ),
            ("RCPT TO:<\"john doe\"@d.example>", "250 2.1.5 Ok"),
            ("RCPT TO:bare@d.example", "250 2.1.5 Ok"),
            ("RCPT TO: <spaced@d.example>", "250 2.1.5 Ok"),
            ("RCPT TO:<postmaster>", "250 2.1.5 Ok"),
            ("RCPT TO:<x@[192.0.2.1]>", "250 2.1.5 Ok"),
            (
                "RCPT TO:<jöe@d.example>",
                "553 5.6.7 Must declare SMTPUTF8 to send unicode address",
            ),
            ("DATA", "354 End data with <CR><LF>.<CR><LF>"),
        ],
    );
    assert_eq!(t.send(b".\r\n"), "250 2.0.0 Ok: queued as QID1");
    let m = &t.messages[0];
    assert_eq!(m.envelope.sender, "");
    let rcpts: Vec<_> = m
        .envelope
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(
        rcpts,
        [
            "user@d.example",
            "\"john doe\"@d.example",
            "bare@d.example",
            "spaced@d.example",
            "postmaster",
            "x@[192.0.2.1]"
        ]
    );
    assert!(m.content.is_empty());
    assert_eq!(m.protocol, Protocol::Esmtp);
}

#[test]
fn mail_parameters() {
    let mut t = T::new();
    table(
        &mut t,
        &[
            ("EHLO c", EHLO_REPLY),
            (
                "MAIL FROM:<a@b> SIZE=abc",
                "501 5.5.4 Bad message size syntax",
            ),
            ("MAIL FROM:<a@b> SIZE=", "501 5.5.4 Bad message size syntax"),
            (
                "MAIL FROM:<a@b> SIZE=99999999999999999999",
                "552 5.3.4 Message size exceeds file system imposed limit",
            ),
            (
                "MAIL FROM:<a@b> SIZE=10240001",
                "552 5.3.4 Message size exceeds fixed limit",
            ),
            (
                "MAIL FROM:<a@b> RET=ALL",
                "501 5.5.4 Bad RET parameter syntax",
            ),
            (
                "MAIL FROM:<a@b> RET=FULL RET=HDRS",
                "501 5.5.4 Bad RET parameter syntax",
            ),
            (
                "MAIL FROM:<a@b> ENVID=a+2",
                "501 5.5.4 Bad ENVID parameter syntax",
            ),
            (
                "MAIL FROM:<a@b> BODY=BINARYMIME",
                "555 5.5.4 Unsupported option: BODY=BINARYMIME",
            ),
            (
                "MAIL FROM:<a@b> XYZZY=1",
                "555 5.5.4 Unsupported option: XYZZY=1",
            ),
            (
                // Postfix's answer while AUTH is off (smtpd_sasl_mail_opt).
                "MAIL FROM:<a@b> AUTH=<>",
                "503 5.5.4 Error: authentication disabled",
            ),
            (
                "MAIL FROM:<jöe@b> SIZE=100 BODY=8bitmime SMTPUTF8 ret=hdrs ENVID=QQ+2B1",
                "250 2.1.0 Ok",
            ),
        ],
    );
    assert_eq!(t.s.sender(), Some("jöe@b"));
    table(
        &mut t,
        &[
            (
                "RCPT TO:<a@b> NOTIFY=NEVER,DELAY",
                "501 5.5.4 Error: Bad NOTIFY parameter syntax",
            ),
            (
                "RCPT TO:<a@b> NOTIFY=SOMETIMES",
                "501 5.5.4 Error: Bad NOTIFY parameter syntax",
            ),
            (
                "RCPT TO:<a@b> ORCPT=nosemicolon",
                "501 5.5.4 Error: Bad ORCPT parameter syntax",
            ),
            (
                "RCPT TO:<a@b> ORCPT=;a@b",
                "501 5.5.4 Error: Bad ORCPT parameter syntax",
            ),
            ("RCPT TO:<a@b> FOO", "555 5.5.4 Unsupported option: FOO"),
            (
                "RCPT TO:<jöe@b> NOTIFY=success,FAILURE ORCPT=rfc822;j+C3+B6e@b",
                "250 2.1.5 Ok",
            ),
            ("RCPT TO:<n@b> NOTIFY=NEVER", "250 2.1.5 Ok"),
            ("DATA", "354 End data with <CR><LF>.<CR><LF>"),
        ],
    );
    t.send(b"x\r\n.\r\n");
    let env = &t.messages[0].envelope;
    assert_eq!(env.mail.size, Some(100));
    assert_eq!(env.mail.body, Body::EightBitMime);
    assert!(env.mail.smtputf8);
    assert_eq!(env.mail.ret, Some(Ret::Hdrs));
    assert_eq!(env.mail.envid.as_deref(), Some("QQ+1"));
    let r = &env.recipients[0];
    assert_eq!(r.address, "jöe@b");
    assert!(r.notify.contains(Notify::SUCCESS) && r.notify.contains(Notify::FAILURE));
    assert!(!r.notify.contains(Notify::DELAY));
    assert_eq!(r.orcpt.as_deref(), Some("rfc822;jöe@b"));
    assert_eq!(env.recipients[1].notify, Notify(Notify::NEVER));
    assert_eq!(env.recipients[1].orcpt, None);
}

#[test]
fn helo_and_ehlo_reset_the_transaction() {
    let mut t = T::new();
    table(
        &mut t,
        &[
            ("EHLO one", EHLO_REPLY),
            ("MAIL FROM:<a@b>", "250 2.1.0 Ok"),
            ("HELO two (x) <y>", "250 mx.example"),
            ("RCPT TO:<c@d>", "503 5.5.1 Error: need MAIL command"),
        ],
    );
    assert_eq!(t.s.helo(), Some("two??x???y?"));
    // A HELO after EHLO does not downgrade the protocol (Postfix).
    assert_eq!(t.s.protocol(), Protocol::Esmtp);
}

#[test]
fn etrn_is_refused_without_a_flush_service() {
    let mut t = T::new();
    table(
        &mut t,
        &[
            ("ETRN", "500 Syntax: ETRN domain"),
            ("ETRN a b", "500 Syntax: ETRN domain"),
            ("ETRN -bad-", "501 Error: invalid parameter syntax"),
            ("ETRN example.org", "458 Unable to queue messages"),
            ("ETRN @example.org", "458 Unable to queue messages"),
            ("ETRN [192.0.2.1]", "458 Unable to queue messages"),
            ("MAIL FROM:<a@b>", "250 2.1.0 Ok"),
            (
                "ETRN example.org",
                "503 Error: MAIL transaction in progress",
            ),
        ],
    );
}

#[test]
fn forbidden_commands_end_the_session() {
    for line in [
        "GET / HTTP/1.0",
        "POST /x",
        "CONNECT a:25",
        "Subject: spam",
        "From: x",
        "123",
    ] {
        let mut t = T::new();
        assert_eq!(
            t.cmd(line),
            "221 2.7.0 Error: I can break rules, too. Goodbye.",
            "{line}"
        );
        assert_eq!(t.last.want, Want::Close);
        assert!(t.s.is_closed());
    }
}

#[test]
fn timeout_and_shutdown_say_421_and_close() {
    let mut t = T::new();
    assert_eq!(t.s.on_timeout(), Want::Close);
    assert_eq!(
        t.take_output(),
        "421 4.4.2 mx.example Error: timeout exceeded"
    );
    assert_eq!(t.s.on_timeout(), Want::Close);
    assert_eq!(t.take_output(), "");
    assert_eq!(t.s.receive(b"NOOP\r\n", &mut t.policy).want, Want::Close);

    let mut t = T::new();
    t.s.shutdown();
    assert_eq!(
        t.take_output(),
        "421 4.3.2 mx.example Service shutting down"
    );
    let p = t.s.receive(b"NOOP\r\n", &mut t.policy);
    assert_eq!((p.consumed, p.want), (0, Want::Close));
}

#[test]
fn message_rejected_by_the_owner() {
    let mut t = T::new();
    t.ready();
    assert_eq!(t.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
    let p = t.s.receive(b"x\r\n.\r\nNOOP\r\n", &mut t.policy);
    assert_eq!((p.consumed, p.want), (6, Want::Message));
    // While the message is out, nothing is read.
    let again = t.s.receive(b"NOOP\r\n", &mut t.policy);
    assert_eq!((again.consumed, again.want), (0, Want::Message));
    assert_eq!(t.s.sender(), Some("s@a.example"));
    assert!(t.s.take_message().is_some());
    assert!(t.s.take_message().is_none());
    t.s.message_done(Err(Reply::new(
        451,
        (4, 3, 0),
        "Error: queue file write error",
    )));
    assert_eq!(t.take_output(), "451 4.3.0 Error: queue file write error");
    assert_eq!(t.s.error_count(), 1);
    assert_eq!(t.s.sender(), None);
    assert_eq!(t.cmd("NOOP"), "250 2.0.0 Ok");
    assert_eq!(
        t.s.command_stats(),
        "ehlo=1 mail=1 rcpt=1 data=0/1 noop=1 commands=4/5"
    );
}

#[test]
fn queued_message_resets_error_counters() {
    let mut t = T::new();
    for _ in 0..12 {
        assert_eq!(t.cmd("BOGUS"), "500 5.5.2 Error: command not recognized");
    }
    assert_eq!(t.s.reply_delay(), Some(std::time::Duration::from_secs(1)));
    t.ready();
    t.cmd("DATA");
    assert_eq!(t.send(b".\r\n"), "250 2.0.0 Ok: queued as QID1");
    assert_eq!(t.s.error_count(), 0);
    assert_eq!(t.s.reply_delay(), None);
    assert_eq!(
        t.s.command_stats(),
        "ehlo=1 mail=1 rcpt=1 data=1 unknown=0/12 commands=4/16"
    );
}

#[test]
fn a_second_transaction_follows_the_first() {
    let mut t = T::new();
    t.ready();
    t.cmd("DATA");
    assert_eq!(t.send(b"one\r\n.\r\n"), "250 2.0.0 Ok: queued as QID1");
    assert_eq!(t.cmd("MAIL FROM:<x@y>"), "250 2.1.0 Ok");
    assert_eq!(t.cmd("RCPT TO:<z@w>"), "250 2.1.5 Ok");
    t.cmd("DATA");
    assert_eq!(t.send(b"two\r\n.\r\n"), "250 2.0.0 Ok: queued as QID2");
    assert_eq!(t.messages.len(), 2);
    assert_eq!(t.messages[1].envelope.sender, "x@y");
    assert_eq!(t.messages[1].content, b"two\r\n");
    assert_eq!(t.s.last_command(), "END-OF-MESSAGE");
}
