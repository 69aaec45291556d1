//! The SMTP client against a scripted fake server over an in-memory pipe.

mod long_lines;
mod pipe;
mod server;
mod starttls;

use std::time::Duration;

use futures_lite::future;
use sluice_protocols::envelope::{Body, MailParams, Notify, Ret};

use self::pipe::{duplex, End, TestClock};
use self::server::{postfix_ehlo, say, serve, Act, Script, Transcript};
use super::{Connection, DeliverError, SessionError, SmtpParams, Stage, PIPELINING_BUFSIZE};
use crate::delivery::{DeliveryRcpt, DeliveryRequest, Destination, Feedback, RcptOutcome};

const PEER: &str = "mx.example[192.0.2.1]:25";
const NAMADDR: &str = "mx.example[192.0.2.1]";

fn params() -> SmtpParams {
    SmtpParams::postfix_defaults("relay.sluice.example")
}

fn request(rcpts: &[&str]) -> DeliveryRequest {
    DeliveryRequest {
        qid: "QID1".into(),
        sender: "sender@origin.example".into(),
        mail: MailParams::default(),
        arrival_us: 0,
        destination: Destination::new("smtp", "example.org"),
        recipients: rcpts
            .iter()
            .enumerate()
            .map(|(i, a)| DeliveryRcpt {
                index: i as u32,
                address: a.to_string(),
                orcpt: None,
                notify: Notify::NONE_GIVEN,
            })
            .collect(),
    }
}

type Delivered = Result<Vec<RcptOutcome>, DeliverError>;

/// What one client session did.
struct Run {
    opened: Result<(), SessionError>,
    results: Vec<Delivered>,
    resets: Vec<Result<(), SessionError>>,
    uses: u32,
    dsn: bool,
    esmtp: bool,
    server: Transcript,
}

/// Opens a session, delivers each message (with an RSET probe between
/// them), quits, and returns what both sides saw.
fn run_with(
    script: Script,
    params: &SmtpParams,
    clock: TestClock,
    pipe_cap: usize,
    messages: &[(&DeliveryRequest, &[u8])],
) -> Run {
    let (client_end, server_end) = duplex(pipe_cap);
    let client = async {
        let mut run = Run {
            opened: Ok(()),
            results: Vec::new(),
            resets: Vec::new(),
            uses: 0,
            dsn: false,
            esmtp: false,
            server: Transcript::default(),
        };
        let mut conn: Connection<End> =
            match Connection::open(client_end, PEER.into(), params, &clock).await {
                Ok(c) => c,
                Err(e) => {
                    run.opened = Err(e);
                    return run;
                }
            };
        assert_eq!(conn.peer(), PEER);
        run.dsn = conn.peer_supports_dsn();
        run.esmtp = conn.is_esmtp();
        for (i, (req, content)) in messages.iter().enumerate() {
            if i > 0 {
                let r = conn.reset(&clock).await;
                let failed = r.is_err();
                run.resets.push(r);
                if failed {
                    break;
                }
            }
            run.results.push(conn.deliver(req, content, &clock).await);
        }
        run.uses = conn.uses();
        conn.quit(&clock).await;
        run
    };
    let (mut run, transcript) = drive(future::zip(client, serve(server_end, script)));
    run.server = transcript;
    run
}

/// Polls `f` to completion. Everything here is in memory, so a future that
/// stays pending through many polls is stuck for good: a deadlock fails
/// the test instead of hanging it (which `block_on` would do).
fn drive<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..1_000_000 {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("deadlock: client and server both wait");
}

fn run(script: Script, req: &DeliveryRequest, content: &[u8]) -> Run {
    run_with(
        script,
        &params(),
        TestClock::default(),
        1 << 16,
        &[(req, content)],
    )
}

fn delivered(reason: &str) -> RcptOutcome {
    RcptOutcome::Delivered {
        dsn: "2.0.0".into(),
        reason: reason.into(),
    }
}

const QUEUED: &str = "250 2.0.0 Ok: queued as ABC123";
const CONTENT: &[u8] = b"Subject: test\r\n\r\nHello.\r\n";

#[test]
fn happy_path_pipelined() {
    let req = request(&["a@example.org", "b@example.org"]);
    let r = run(Script::default(), &req, CONTENT);
    assert_eq!(r.opened, Ok(()));
    assert_eq!(r.results, [Ok(vec![delivered(QUEUED), delivered(QUEUED)])]);
    let t = &r.server;
    assert_eq!(t.verbs(), ["EHLO", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"]);
    assert_eq!(t.commands[0], "EHLO relay.sluice.example");
    assert_eq!(t.commands[1], "MAIL FROM:<sender@origin.example> SIZE=25");
    assert_eq!(t.commands[2], "RCPT TO:<a@example.org>");
    // MAIL, both RCPTs and DATA came in one write.
    assert!(
        t.read_of[1..5].iter().all(|&n| n == t.read_of[1]),
        "{:?}",
        t.read_of
    );
    assert_eq!(t.messages.len(), 1);
    assert_eq!(t.messages[0].1, CONTENT);
    assert_eq!(r.uses, 1);
    assert!(r.esmtp && r.dsn);
}

#[test]
fn happy_path_without_pipelining() {
    let req = request(&["a@example.org", "b@example.org"]);
    for (script, params) in [
        (
            Script {
                ehlo: postfix_ehlo(&["PIPELINING"]),
                ..Script::default()
            },
            params(),
        ),
        (
            Script::default(),
            SmtpParams {
                pipelining: false,
                ..params()
            },
        ),
    ] {
        let r = run_with(
            script,
            &params,
            TestClock::default(),
            1 << 16,
            &[(&req, CONTENT)],
        );
        assert_eq!(r.results, [Ok(vec![delivered(QUEUED), delivered(QUEUED)])]);
        let t = &r.server;
        assert_eq!(t.verbs(), ["EHLO", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"]);
        // Each command waited for the previous reply.
        for w in t.read_of[..5].windows(2) {
            assert!(w[0] < w[1], "{:?}", t.read_of);
        }
    }
}

#[test]
fn helo_fallback_when_ehlo_is_rejected() {
    let mut req = request(&["a@example.org"]);
    req.mail = MailParams {
        body: Body::EightBitMime,
        ret: Some(Ret::Full),
        envid: Some("E1".into()),
        ..MailParams::default()
    };
    req.recipients[0].notify = Notify(Notify::SUCCESS);
    let script = Script {
        ehlo: say(&["502 5.5.2 Error: command not recognized"]),
        ..Script::default()
    };
    let r = run(script, &req, CONTENT);
    assert_eq!(r.results, [Ok(vec![delivered(QUEUED)])]);
    assert!(!r.esmtp && !r.dsn);
    let t = &r.server;
    assert_eq!(t.verbs(), ["EHLO", "HELO", "MAIL", "RCPT", "DATA", "QUIT"]);
    assert_eq!(t.commands[1], "HELO relay.sluice.example");
    // No ESMTP parameters after HELO.
    assert_eq!(t.commands[2], "MAIL FROM:<sender@origin.example>");
    assert_eq!(t.commands[3], "RCPT TO:<a@example.org>");
}

#[test]
fn ehlo_421_and_helo_5xx_are_refusals() {
    let req = request(&["a@example.org"]);
    let r = run(
        Script {
            ehlo: say(&["421 4.3.2 mx.example Service not available"]),
            ..Script::default()
        },
        &req,
        CONTENT,
    );
    let e = r.opened.unwrap_err();
    assert_eq!(
        e.reason(),
        "host mx.example[192.0.2.1] refused to talk to me: 421 4.3.2 mx.example Service not available"
    );
    assert_eq!(e.dsn().to_string(), "4.3.2");
    assert!(e.is_handshake_failure());
    assert_eq!(r.server.verbs(), ["EHLO"]);

    let r = run(
        Script {
            ehlo: say(&["500 5.5.2 what"]),
            helo: say(&["550 5.7.1 no thanks"]),
            ..Script::default()
        },
        &req,
        CONTENT,
    );
    let e = r.opened.unwrap_err();
    assert_eq!(
        e.reason(),
        "host mx.example[192.0.2.1] refused to talk to me: 550 5.7.1 no thanks"
    );
    assert!(e.is_permanent());
    assert!(matches!(e.outcome(), RcptOutcome::Bounced { .. }));
}

#[test]
fn greeting_5xx_is_a_handshake_deferral() {
    let script = Script {
        greeting: say(&["554-mx.example go away", "554 5.7.1 really"]),
        ..Script::default()
    };
    let r = run(script, &request(&["a@example.org"]), CONTENT);
    let e = r.opened.unwrap_err();
    assert_eq!(
        e.reason(),
        "host mx.example[192.0.2.1] refused to talk to me: 554-mx.example go away 554 5.7.1 really"
    );
    // smtp_skip_5xx_greeting: another server may take it.
    assert_eq!(e.dsn().to_string(), "4.7.1");
    assert_eq!(e.feedback(), Feedback::Failure);
    assert!(matches!(e.outcome(), RcptOutcome::Deferred { .. }));
}

#[test]
fn per_recipient_replies() {
    let script = Script {
        rcpt: Box::new(|line| {
            if line.contains("bad@") {
                say(&["550 5.1.1 <bad@example.org>: Recipient address rejected: User unknown in local recipient table"])
            } else if line.contains("later@") {
                say(&["450 4.2.0 <later@example.org>: Recipient address rejected: Greylisted"])
            } else if line.contains("odd@") {
                say(&["553 no enhanced code"])
            } else {
                say(&["250 2.1.5 Ok"])
            }
        }),
        ..Script::default()
    };
    let req = request(&[
        "bad@example.org",
        "ok@example.org",
        "later@example.org",
        "odd@example.org",
    ]);
    let r = run(script, &req, CONTENT);
    assert_eq!(
        r.results,
        [Ok(vec![
            RcptOutcome::Bounced {
                dsn: "5.1.1".into(),
                reason: "host mx.example[192.0.2.1] said: 550 5.1.1 <bad@example.org>: Recipient \
                         address rejected: User unknown in local recipient table (in reply to RCPT \
                         TO command)"
                    .into(),
            },
            delivered(QUEUED),
            RcptOutcome::Deferred {
                dsn: "4.2.0".into(),
                reason:
                    "host mx.example[192.0.2.1] said: 450 4.2.0 <later@example.org>: Recipient \
                         address rejected: Greylisted (in reply to RCPT TO command)"
                        .into(),
            },
            RcptOutcome::Bounced {
                dsn: "5.0.0".into(),
                reason:
                    "host mx.example[192.0.2.1] said: 553 no enhanced code (in reply to RCPT TO \
                         command)"
                        .into(),
            },
        ])]
    );
    assert_eq!(r.server.messages.len(), 1);
}

#[test]
fn all_recipients_rejected_means_no_data_and_rset() {
    let script = Script {
        rcpt: Box::new(|_| say(&["550 5.1.1 no such user"])),
        data: say(&["554 5.5.1 Error: no valid recipients"]),
        ..Script::default()
    };
    let req = request(&["a@example.org", "b@example.org"]);
    // Pipelined: DATA went out with the RCPTs; its 554 changes nothing.
    let r = run(script, &req, CONTENT);
    let outcomes = r.results[0].as_ref().unwrap();
    assert!(outcomes
        .iter()
        .all(|o| o.dsn() == "5.1.1" && o.status_word() == "bounced"));
    assert_eq!(
        r.server.verbs(),
        ["EHLO", "MAIL", "RCPT", "RCPT", "DATA", "RSET", "QUIT"]
    );

    // Without pipelining DATA is not sent at all.
    let script = Script {
        ehlo: postfix_ehlo(&["PIPELINING"]),
        rcpt: Box::new(|_| say(&["550 5.1.1 no such user"])),
        ..Script::default()
    };
    let r = run(script, &req, CONTENT);
    assert_eq!(
        r.server.verbs(),
        ["EHLO", "MAIL", "RCPT", "RCPT", "RSET", "QUIT"]
    );
    assert!(r.server.messages.is_empty());
}

#[test]
fn mail_4xx_defers_everyone_and_ignores_rcpt_replies() {
    let script = Script {
        mail: say(&["451 4.3.0 <sender@origin.example>: Temporary lookup failure"]),
        rcpt: Box::new(|_| say(&["550 5.1.1 would bounce"])),
        data: say(&["503 5.5.1 Error: need RCPT command"]),
        ..Script::default()
    };
    let req = request(&["a@example.org", "b@example.org"]);
    let r = run(script, &req, CONTENT);
    let want = RcptOutcome::Deferred {
        dsn: "4.3.0".into(),
        reason: "host mx.example[192.0.2.1] said: 451 4.3.0 <sender@origin.example>: Temporary \
                 lookup failure (in reply to MAIL FROM command)"
            .into(),
    };
    assert_eq!(r.results, [Ok(vec![want.clone(), want])]);
    assert_eq!(
        r.server.verbs(),
        ["EHLO", "MAIL", "RCPT", "RCPT", "DATA", "RSET", "QUIT"]
    );
    assert!(r.server.messages.is_empty());
}

#[test]
fn mail_5xx_without_pipelining_sends_no_rcpt() {
    let script = Script {
        ehlo: postfix_ehlo(&["PIPELINING"]),
        mail: say(&["553 5.7.1 <sender@origin.example>: Sender address rejected"]),
        ..Script::default()
    };
    let r = run(script, &request(&["a@example.org"]), CONTENT);
    let outcomes = r.results[0].as_ref().unwrap();
    assert_eq!(outcomes[0].dsn(), "5.7.1");
    assert_eq!(outcomes[0].status_word(), "bounced");
    assert_eq!(r.server.verbs(), ["EHLO", "MAIL", "RSET", "QUIT"]);
}

#[test]
fn data_rejections_apply_to_accepted_recipients_only() {
    // 5xx after the final dot.
    let script = Script {
        rcpt: Box::new(|l| {
            if l.contains("bad@") {
                say(&["550 5.1.1 unknown"])
            } else {
                say(&["250 2.1.5 Ok"])
            }
        }),
        dot: say(&["550 5.7.1 Message content rejected"]),
        ..Script::default()
    };
    let req = request(&["a@example.org", "bad@example.org", "c@example.org"]);
    let r = run(script, &req, CONTENT);
    let outcomes = r.results[0].as_ref().unwrap();
    let content_rejected = RcptOutcome::Bounced {
        dsn: "5.7.1".into(),
        reason: "host mx.example[192.0.2.1] said: 550 5.7.1 Message content rejected (in reply \
                 to end of DATA command)"
            .into(),
    };
    assert_eq!(outcomes[0], content_rejected);
    assert_eq!(outcomes[1].dsn(), "5.1.1");
    assert_eq!(outcomes[2], content_rejected);

    // 4xx to DATA itself.
    let script = Script {
        data: say(&["451 4.3.0 Try later"]),
        ..Script::default()
    };
    let r = run(script, &request(&["a@example.org"]), CONTENT);
    assert_eq!(
        r.results,
        [Ok(vec![RcptOutcome::Deferred {
            dsn: "4.3.0".into(),
            reason: "host mx.example[192.0.2.1] said: 451 4.3.0 Try later (in reply to DATA \
                     command)"
                .into(),
        }])]
    );
    assert_eq!(
        r.server.verbs(),
        ["EHLO", "MAIL", "RCPT", "DATA", "RSET", "QUIT"]
    );
}

#[test]
fn dsn_parameters_only_when_announced() {
    let mut req = request(&["a@example.org"]);
    req.mail = MailParams {
        size: Some(1),
        body: Body::EightBitMime,
        smtputf8: false,
        ret: Some(Ret::Hdrs),
        envid: Some("env id+1".into()),
    };
    req.recipients[0].notify = Notify(Notify::SUCCESS | Notify::DELAY);
    req.recipients[0].orcpt = Some("rfc822;A@Example.org".into());

    let r = run(Script::default(), &req, CONTENT);
    assert!(r.dsn);
    assert_eq!(
        r.server.command("MAIL"),
        Some("MAIL FROM:<sender@origin.example> SIZE=25 BODY=8BITMIME ENVID=env+20id+2B1 RET=HDRS")
    );
    assert_eq!(
        r.server.command("RCPT"),
        Some("RCPT TO:<a@example.org> ORCPT=rfc822;A@Example.org NOTIFY=SUCCESS,DELAY")
    );

    let script = Script {
        ehlo: postfix_ehlo(&["DSN", "8BITMIME", "SMTPUTF8"]),
        ..Script::default()
    };
    let r = run(script, &req, CONTENT);
    assert!(!r.dsn);
    assert_eq!(
        r.server.command("MAIL"),
        Some("MAIL FROM:<sender@origin.example> SIZE=25")
    );
    assert_eq!(r.server.command("RCPT"), Some("RCPT TO:<a@example.org>"));
}

#[test]
fn size_limit_bounces_without_a_transaction() {
    let script = Script {
        ehlo: say(&["250-mx.example", "250-PIPELINING", "250 SIZE 100"]),
        ..Script::default()
    };
    let content = vec![b'x'; 200];
    let r = run(
        script,
        &request(&["a@example.org", "b@example.org"]),
        &content,
    );
    let want = RcptOutcome::Bounced {
        dsn: "5.3.4".into(),
        reason: "message size 200 exceeds size limit 100 of server mx.example[192.0.2.1]".into(),
    };
    assert_eq!(r.results, [Ok(vec![want.clone(), want])]);
    assert_eq!(r.server.verbs(), ["EHLO", "QUIT"]);
}

#[test]
fn smtputf8_required_but_not_offered() {
    let mut req = request(&["jöran@example.org"]);
    req.mail.smtputf8 = true;
    let script = Script {
        ehlo: postfix_ehlo(&["SMTPUTF8"]),
        ..Script::default()
    };
    let r = run(script, &req, CONTENT);
    assert_eq!(
        r.results,
        [Ok(vec![RcptOutcome::Bounced {
            dsn: "5.6.7".into(),
            reason: "SMTPUTF8 is required, but was not offered by host mx.example[192.0.2.1]"
                .into(),
        }])]
    );
    // Offered: the parameter is passed on.
    let r = run(Script::default(), &req, CONTENT);
    assert!(r.server.command("MAIL").unwrap().ends_with(" SMTPUTF8"));
}

#[test]
fn dot_stuffing_on_the_wire_through_a_small_pipe() {
    // Several BODY_CHUNKs through a pipe far smaller than one of them.
    let mut content = Vec::new();
    for i in 0..20_000 {
        content.extend_from_slice(if i % 3 == 0 {
            b".dot line\r\n"
        } else {
            b"plain line\r\n"
        });
    }
    content.extend_from_slice(b".\r\n..\r\n");
    let req = request(&["a@example.org"]);
    let r = run_with(
        Script::default(),
        &params(),
        TestClock::default(),
        3000,
        &[(&req, &content)],
    );
    assert_eq!(r.results, [Ok(vec![delivered(QUEUED)])]);
    let (raw, decoded) = &r.server.messages[0];
    assert!(raw.starts_with(b"..dot line\r\nplain line\r\n"));
    assert!(raw.ends_with(b"\r\n..\r\n...\r\n.\r\n"));
    assert_eq!(decoded, &content);
}

#[test]
fn smuggling_sequences_are_normalised() {
    let content = b"Subject: x\r\n\r\nhi\n.\nMAIL FROM:<evil@x>\nRCPT TO:<victim@y>\r.\rDATA\r\n";
    let req = request(&["a@example.org"]);
    let r = run(Script::default(), &req, content);
    assert_eq!(r.results, [Ok(vec![delivered(QUEUED)])]);
    let t = &r.server;
    assert_eq!(t.verbs(), ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]);
    assert_eq!(t.messages.len(), 1);
    let (raw, decoded) = &t.messages[0];
    assert_eq!(
        raw.as_slice(),
        b"Subject: x\r\n\r\nhi\r\n..\r\nMAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\n..\r\nDATA\r\n.\r\n"
    );
    // No bare CR or LF reached the wire.
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' {
            assert_eq!(raw[i - 1], b'\r');
        }
        if b == b'\r' {
            assert_eq!(raw[i + 1], b'\n');
        }
    }
    assert_eq!(
        decoded.as_slice(),
        b"Subject: x\r\n\r\nhi\r\n.\r\nMAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\n.\r\nDATA\r\n"
    );
}

#[test]
fn reuse_with_rset() {
    let one = request(&["a@example.org"]);
    let two = request(&["b@example.org", "c@example.org"]);
    let r = run_with(
        Script::default(),
        &params(),
        TestClock::default(),
        1 << 16,
        &[(&one, CONTENT), (&two, b"second\r\n")],
    );
    assert_eq!(r.resets, [Ok(())]);
    assert_eq!(r.results.len(), 2);
    assert_eq!(r.results[1], Ok(vec![delivered(QUEUED), delivered(QUEUED)]));
    assert_eq!(r.uses, 2);
    assert_eq!(
        r.server.verbs(),
        ["EHLO", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"]
    );
    assert_eq!(r.server.messages[1].1, b"second\r\n");
}

#[test]
fn rejected_rset_probe_stops_reuse() {
    let one = request(&["a@example.org"]);
    let script = Script {
        rset: say(&["421 4.4.2 mx.example Error: timeout exceeded"]),
        ..Script::default()
    };
    let r = run_with(
        script,
        &params(),
        TestClock::default(),
        1 << 16,
        &[(&one, CONTENT), (&one, CONTENT)],
    );
    assert_eq!(r.results.len(), 1);
    let e = r.resets[0].as_ref().unwrap_err();
    assert_eq!(
        e.reason(),
        "host mx.example[192.0.2.1] said: 421 4.4.2 mx.example Error: timeout exceeded (in reply \
         to RSET probe)"
    );
    assert!(!e.is_handshake_failure());
    // No QUIT on a connection that is out of step.
    assert_eq!(r.server.verbs(), ["EHLO", "MAIL", "RCPT", "DATA", "RSET"]);
}

#[test]
fn many_recipients_go_in_bounded_bursts() {
    let addrs: Vec<String> = (0..300)
        .map(|i| format!("user{i:04}@example.org"))
        .collect();
    let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let req = request(&refs);
    // 300 RCPTs are 9600 bytes of commands and 4200 bytes of replies. With
    // each direction of the pipe holding 2048 bytes, sending them all
    // before reading a reply would deadlock (the server blocks on its
    // replies, the client on its commands); bursts of PIPELINING_BUFSIZE
    // (128 RCPTs, 1792 bytes of replies) do not.
    assert_eq!(PIPELINING_BUFSIZE, 4096);
    let r = run_with(
        Script::default(),
        &params(),
        TestClock::default(),
        2048,
        &[(&req, CONTENT)],
    );
    let outcomes = r.results[0].as_ref().unwrap();
    assert_eq!(outcomes.len(), 300);
    assert!(outcomes.iter().all(|o| *o == delivered(QUEUED)));
    assert_eq!(r.server.commands.len(), 304);
}

#[test]
fn unsafe_recipient_is_bounced_locally() {
    let req = request(&["a@example.org", "evil@x>\r\nRSET"]);
    let r = run(Script::default(), &req, CONTENT);
    let outcomes = r.results[0].as_ref().unwrap();
    assert_eq!(outcomes[0], delivered(QUEUED));
    assert_eq!(outcomes[1].dsn(), "5.1.3");
    assert_eq!(r.server.verbs(), ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]);
}

#[test]
fn endless_multi_line_reply_is_bounded() {
    let params = SmtpParams {
        max_reply_bytes: 16 * 1024,
        ..params()
    };
    let script = Script {
        ehlo: Act::Endless,
        ..Script::default()
    };
    let req = request(&["a@example.org"]);
    let r = run_with(
        script,
        &params,
        TestClock::default(),
        4096,
        &[(&req, CONTENT)],
    );
    let e = r.opened.unwrap_err();
    assert_eq!(
        e,
        SessionError::ReplyTooLong {
            peer: NAMADDR.into(),
            stage: Stage::Ehlo,
            limit: 16 * 1024
        }
    );
    assert_eq!(e.dsn().to_string(), "4.5.0");
    assert!(e.is_handshake_failure());
}

#[test]
fn no_greeting_is_a_timeout_deferral() {
    let p = params();
    let script = Script {
        greeting: Act::Silent,
        ..Script::default()
    };
    let clock = TestClock {
        fires: Some(p.helo_timeout),
    };
    let req = request(&["a@example.org"]);
    let r = run_with(script, &p, clock, 4096, &[(&req, CONTENT)]);
    let e = r.opened.unwrap_err();
    assert_eq!(
        e.reason(),
        "conversation with mx.example[192.0.2.1] timed out while receiving the initial server \
         greeting"
    );
    assert_eq!(e.dsn().to_string(), "4.4.2");
    assert_eq!(e.feedback(), Feedback::Failure);
    assert!(matches!(e.outcome(), RcptOutcome::Deferred { .. }));
}

#[test]
fn timeout_mid_transaction_defers_the_undecided() {
    // Distinct timeouts, so that only the RCPT one fires.
    let p = SmtpParams {
        rcpt_timeout: Duration::from_secs(301),
        ..params()
    };
    let script = Script {
        ehlo: postfix_ehlo(&["PIPELINING"]),
        rcpt: Box::new(|l| {
            if l.contains("bad@") {
                say(&["550 5.1.1 unknown"])
            } else {
                Act::Silent
            }
        }),
        ..Script::default()
    };
    let clock = TestClock {
        fires: Some(p.rcpt_timeout),
    };
    let req = request(&["bad@example.org", "a@example.org"]);
    let r = run_with(script, &p, clock, 4096, &[(&req, CONTENT)]);
    let e = r.results[0].as_ref().unwrap_err();
    assert_eq!(
        e.error.reason(),
        "conversation with mx.example[192.0.2.1] timed out while sending RCPT TO"
    );
    assert!(!e.error.is_handshake_failure());
    assert_eq!(e.outcomes[0].dsn(), "5.1.1");
    assert_eq!(
        e.outcomes[1],
        RcptOutcome::Deferred {
            dsn: "4.4.2".into(),
            reason: "conversation with mx.example[192.0.2.1] timed out while sending RCPT TO"
                .into(),
        }
    );
}

#[test]
fn lost_connection_in_data_defers() {
    let script = Script {
        data: Act::Say(vec!["354 go ahead".into()]),
        dot: Act::Hangup,
        ..Script::default()
    };
    let req = request(&["a@example.org"]);
    let r = run(script, &req, CONTENT);
    let e = r.results[0].as_ref().unwrap_err();
    assert_eq!(
        e.error.reason(),
        "lost connection with mx.example[192.0.2.1] while sending end of data -- message may be \
         sent more than once"
    );
    assert_eq!(e.outcomes[0].status_word(), "deferred");
    assert_eq!(e.outcomes[0].dsn(), "4.4.2");

    let script = Script {
        rcpt: Box::new(|_| Act::Hangup),
        ..Script::default()
    };
    let r = run(script, &req, CONTENT);
    let e = r.results[0].as_ref().unwrap_err();
    assert_eq!(
        e.error.reason(),
        "lost connection with mx.example[192.0.2.1] while sending RCPT TO"
    );
}

#[test]
fn garbage_reply_is_read_as_text_not_trusted_as_success() {
    // Lines that are not reply lines continue the reply (Postfix); the
    // code comes from the line that ends it.
    let script = Script {
        rcpt: Box::new(|_| say(&["HTTP/1.1 400 Bad Request", "<html>", "550 5.7.1 no"])),
        ..Script::default()
    };
    let r = run(script, &request(&["a@example.org"]), CONTENT);
    let outcomes = r.results[0].as_ref().unwrap();
    assert_eq!(
        outcomes[0].reason(),
        "host mx.example[192.0.2.1] said: HTTP/1.1 400 Bad Request <html> 550 5.7.1 no (in reply \
         to RCPT TO command)"
    );
}

#[test]
fn eight_bit_content_is_declared() {
    let req = request(&["a@example.org"]);
    let r = run(
        Script::default(),
        &req,
        "Subject: caf\u{e9}\r\n\r\n\r\n".as_bytes(),
    );
    assert_eq!(
        r.server.command("MAIL"),
        Some("MAIL FROM:<sender@origin.example> SIZE=20 BODY=8BITMIME")
    );
    let r = run(Script::default(), &req, CONTENT);
    assert_eq!(
        r.server.command("MAIL"),
        Some("MAIL FROM:<sender@origin.example> SIZE=25")
    );
}
