//! Whole-notice golden tests and structural properties.

use proptest::prelude::*;
use sluice_protocols::envelope::{Notify, Ret};

use super::*;
use crate::datetime::rfc2822_with_offset;

/// 2026-11-28 18:21:57 UTC.
const NOW: i64 = 1_795_890_117;
/// Five hours earlier.
const ARRIVAL: i64 = NOW - 5 * 3600;

const ORIGINAL: &str = "Received: from client.example.org (client.example.org [192.0.2.7])\r\n\
\tby mx.example.org (Sluice) with ESMTP id ORIGQID\r\n\
\tfor <bob@example.net>; Sat, 28 Nov 2026 13:21:57 +0000 (UTC)\r\n\
From: Jane <jane@example.org>\r\n\
To: bob@example.net\r\n\
Subject: hello\r\n\
\r\n\
Hi Bob.\r\n";

fn utc(t: i64) -> String {
    rfc2822_with_offset(t, 0, "UTC")
}

fn params() -> NoticeParams {
    NoticeParams::new("mx.example.org", "example.org")
}

fn notice<'a>(kind: NoticeKind, rcpts: &'a [NoticeRcpt]) -> Notice<'a> {
    Notice {
        kind,
        qid: "ORIGQID",
        sender: "jane@example.org",
        arrival_secs: ARRIVAL,
        envid: None,
        ret: None,
        smtputf8: false,
        recipients: rcpts,
        original: ORIGINAL.as_bytes(),
        notice_qid: "NOTICEQID",
        now_secs: NOW,
    }
}

fn bob_rejected() -> NoticeRcpt {
    NoticeRcpt {
        address: "bob@example.net".to_owned(),
        original: None,
        orcpt: Some("rfc822;bob@example.net".to_owned()),
        notify: Notify::NONE_GIVEN,
        action: Action::Failed,
        status: "5.1.1".to_owned(),
        remote_mta: Some("mx.example.net".to_owned()),
        diagnostic: Some(Diagnostic::smtp(
            "550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown",
        )),
        reason: "host mx.example.net[192.0.2.25] said: 550 5.1.1 <bob@example.net>: \
                 Recipient address rejected: User unknown (in reply to RCPT TO command)"
            .to_owned(),
    }
}

fn build_utc(p: &NoticeParams, n: &Notice<'_>) -> Option<String> {
    build_with_dates(p, n, &utc).map(|b| String::from_utf8(b).expect("notice is UTF-8"))
}

/// Golden texts are written with `\n`; notices use CRLF throughout.
fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

/// Everything before the first part: the same for every failure notice
/// to jane with this original.
const FAILURE_HEAD: &str = "\
Received: by mx.example.org (Sluice)
\tid NOTICEQID; Sat, 28 Nov 2026 18:21:57 +0000 (UTC)
Date: Sat, 28 Nov 2026 18:21:57 +0000 (UTC)
From: MAILER-DAEMON@example.org (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: jane@example.org
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary=\"ORIGQID.1795890117/mx.example.org\"
Content-Transfer-Encoding: 8bit
Message-Id: <NOTICEQID@mx.example.org>

This is a MIME-encapsulated message.

--ORIGQID.1795890117/mx.example.org
Content-Description: Notification
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

This is the mail system at host mx.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

For further assistance, please send mail to postmaster.

If you do so, please include this problem report. You can
delete your own text from the attached returned message.

                   The mail system
";

#[test]
fn failure_one_recipient() {
    let rcpts = [bob_rejected()];
    let got = build_utc(&params(), &notice(NoticeKind::Failure, &rcpts)).unwrap();
    let want = crlf(&format!(
        "{FAILURE_HEAD}
<bob@example.net>: host mx.example.net[192.0.2.25] said: 550 5.1.1
    <bob@example.net>: Recipient address rejected: User unknown (in reply to
    RCPT TO command)

--ORIGQID.1795890117/mx.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
X-Sluice-Queue-ID: ORIGQID
X-Sluice-Sender: rfc822; jane@example.org
Arrival-Date: Sat, 28 Nov 2026 13:21:57 +0000 (UTC)

Final-Recipient: rfc822; bob@example.net
Original-Recipient: rfc822;bob@example.net
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.net
Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected:
    User unknown

--ORIGQID.1795890117/mx.example.org
Content-Description: Undelivered Message
Content-Type: message/rfc822
Content-Transfer-Encoding: 8bit

Return-Path: <jane@example.org>
"
    )) + ORIGINAL
        + &crlf("\n--ORIGQID.1795890117/mx.example.org--\n");
    assert_eq!(got, want);
}

#[test]
fn failure_several_recipients() {
    let local = NoticeRcpt {
        address: "carol@example.org".to_owned(),
        original: Some("sales@example.org".to_owned()),
        orcpt: None,
        notify: Notify(Notify::FAILURE | Notify::DELAY),
        // Failure notices say "failed" whatever the agent reported.
        action: Action::Delayed,
        status: "5.2.2".to_owned(),
        remote_mta: None,
        diagnostic: None,
        reason: "cannot update mailbox /var/mail/carol for user carol. \
                 error writing message: File too large"
            .to_owned(),
    };
    // NOTIFY=SUCCESS alone: not reported in a failure notice.
    let quiet = NoticeRcpt {
        notify: Notify(Notify::SUCCESS),
        address: "dave@example.net".to_owned(),
        ..bob_rejected()
    };
    let rcpts = [bob_rejected(), quiet, local];
    let got = build_utc(&params(), &notice(NoticeKind::Failure, &rcpts)).unwrap();
    let want = crlf(&format!(
        "{FAILURE_HEAD}
<bob@example.net>: host mx.example.net[192.0.2.25] said: 550 5.1.1
    <bob@example.net>: Recipient address rejected: User unknown (in reply to
    RCPT TO command)

<carol@example.org> (expanded from <sales@example.org>): cannot update mailbox
    /var/mail/carol for user carol. error writing message: File too large

--ORIGQID.1795890117/mx.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
X-Sluice-Queue-ID: ORIGQID
X-Sluice-Sender: rfc822; jane@example.org
Arrival-Date: Sat, 28 Nov 2026 13:21:57 +0000 (UTC)

Final-Recipient: rfc822; bob@example.net
Original-Recipient: rfc822;bob@example.net
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.net
Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected:
    User unknown

Final-Recipient: rfc822; carol@example.org
Original-Recipient: rfc822;sales@example.org
Action: failed
Status: 5.2.2
Diagnostic-Code: X-Sluice; cannot update mailbox /var/mail/carol for user
    carol. error writing message: File too large

--ORIGQID.1795890117/mx.example.org
Content-Description: Undelivered Message
"
    ));
    assert!(got.starts_with(&want), "got:\n{got}");
    assert!(!got.contains("dave@"));
}

#[test]
fn delay_notice() {
    let rcpt = NoticeRcpt {
        action: Action::Delayed,
        status: "4.4.1".to_owned(),
        remote_mta: None,
        diagnostic: None,
        reason: "connect to mx.example.net[192.0.2.25]:25: Connection refused".to_owned(),
        ..bob_rejected()
    };
    let rcpts = [rcpt];
    let mut p = params();
    p.delay_warning_time_s = 4 * 3600;
    let got = build_utc(&p, &notice(NoticeKind::Delay, &rcpts)).unwrap();
    let want = crlf(
        "\
Received: by mx.example.org (Sluice)
\tid NOTICEQID; Sat, 28 Nov 2026 18:21:57 +0000 (UTC)
Date: Sat, 28 Nov 2026 18:21:57 +0000 (UTC)
From: MAILER-DAEMON@example.org (Mail Delivery System)
Subject: Delayed Mail (still being retried)
To: jane@example.org
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary=\"ORIGQID.1795890117/mx.example.org\"
Content-Transfer-Encoding: 8bit
Message-Id: <NOTICEQID@mx.example.org>

This is a MIME-encapsulated message.

--ORIGQID.1795890117/mx.example.org
Content-Description: Notification
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

This is the mail system at host mx.example.org.

####################################################################
# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #
####################################################################

Your message could not be delivered for more than 4 hour(s).
It will be retried until it is 5 day(s) old.

For further assistance, please send mail to postmaster.

If you do so, please include this problem report. You can
delete your own text from the attached returned message.

                   The mail system

<bob@example.net>: connect to mx.example.net[192.0.2.25]:25: Connection refused

--ORIGQID.1795890117/mx.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
X-Sluice-Queue-ID: ORIGQID
X-Sluice-Sender: rfc822; jane@example.org
Arrival-Date: Sat, 28 Nov 2026 13:21:57 +0000 (UTC)

Final-Recipient: rfc822; bob@example.net
Original-Recipient: rfc822;bob@example.net
Action: delayed
Status: 4.4.1
Diagnostic-Code: X-Sluice; connect to mx.example.net[192.0.2.25]:25: Connection
    refused
Will-Retry-Until: Thu, 03 Dec 2026 13:21:57 +0000 (UTC)

--ORIGQID.1795890117/mx.example.org
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers
Content-Transfer-Encoding: 8bit

Return-Path: <jane@example.org>
Received: from client.example.org (client.example.org [192.0.2.7])
\tby mx.example.org (Sluice) with ESMTP id ORIGQID
\tfor <bob@example.net>; Sat, 28 Nov 2026 13:21:57 +0000 (UTC)
From: Jane <jane@example.org>
To: bob@example.net
Subject: hello

--ORIGQID.1795890117/mx.example.org--
",
    );
    assert_eq!(got, want);
}

#[test]
fn success_notice() {
    let relayed = NoticeRcpt {
        notify: Notify(Notify::SUCCESS),
        action: Action::Relayed,
        status: "2.0.0".to_owned(),
        diagnostic: Some(Diagnostic::smtp("250 2.0.0 Ok: queued as 4XyZ")),
        reason: "delivery via mx.example.net[192.0.2.25]:25: 250 2.0.0 Ok: queued as 4XyZ"
            .to_owned(),
        ..bob_rejected()
    };
    let local = NoticeRcpt {
        address: "carol@example.org".to_owned(),
        original: None,
        orcpt: None,
        notify: Notify(Notify::SUCCESS | Notify::FAILURE),
        action: Action::Delivered,
        status: "2.0.0".to_owned(),
        remote_mta: None,
        diagnostic: None,
        reason: "delivered to mailbox".to_owned(),
    };
    // Notify not given: no success notice for this one.
    let silent = NoticeRcpt {
        address: "erin@example.org".to_owned(),
        notify: Notify::NONE_GIVEN,
        ..local.clone()
    };
    let rcpts = [relayed, silent, local];
    let got = build_utc(&params(), &notice(NoticeKind::Success, &rcpts)).unwrap();
    let want = crlf(
        "\
Received: by mx.example.org (Sluice)
\tid NOTICEQID; Sat, 28 Nov 2026 18:21:57 +0000 (UTC)
Date: Sat, 28 Nov 2026 18:21:57 +0000 (UTC)
From: MAILER-DAEMON@example.org (Mail Delivery System)
Subject: Successful Mail Delivery Report
To: jane@example.org
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary=\"ORIGQID.1795890117/mx.example.org\"
Content-Transfer-Encoding: 8bit
Message-Id: <NOTICEQID@mx.example.org>

This is a MIME-encapsulated message.

--ORIGQID.1795890117/mx.example.org
Content-Description: Notification
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

This is the mail system at host mx.example.org.

Your message was successfully delivered to the destination(s)
listed below. If the message was delivered to mailbox you will
receive no further notifications. Otherwise you may still receive
notifications of mail delivery errors from other systems.

                   The mail system

<bob@example.net>: delivery via mx.example.net[192.0.2.25]:25: 250 2.0.0 Ok:
    queued as 4XyZ

<carol@example.org>: delivered to mailbox

--ORIGQID.1795890117/mx.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
X-Sluice-Queue-ID: ORIGQID
X-Sluice-Sender: rfc822; jane@example.org
Arrival-Date: Sat, 28 Nov 2026 13:21:57 +0000 (UTC)

Final-Recipient: rfc822; bob@example.net
Original-Recipient: rfc822;bob@example.net
Action: relayed
Status: 2.0.0
Remote-MTA: dns; mx.example.net
Diagnostic-Code: smtp; 250 2.0.0 Ok: queued as 4XyZ

Final-Recipient: rfc822; carol@example.org
Original-Recipient: rfc822;carol@example.org
Action: delivered
Status: 2.0.0
Diagnostic-Code: X-Sluice; delivered to mailbox

--ORIGQID.1795890117/mx.example.org
Content-Description: Message Headers
Content-Type: text/rfc822-headers
Content-Transfer-Encoding: 8bit

Return-Path: <jane@example.org>
Received: from client.example.org (client.example.org [192.0.2.7])
\tby mx.example.org (Sluice) with ESMTP id ORIGQID
\tfor <bob@example.net>; Sat, 28 Nov 2026 13:21:57 +0000 (UTC)
From: Jane <jane@example.org>
To: bob@example.net
Subject: hello

--ORIGQID.1795890117/mx.example.org--
",
    );
    assert_eq!(got, want);
}

/// The returned part from its `Content-Description:` to the end.
fn third_part(notice: &str) -> &str {
    let at = notice
        .rfind("--ORIGQID.1795890117/mx.example.org\r\nContent-Description: ")
        .expect("third part");
    &notice[at..]
}

const HEADERS_ONLY_PART: &str = "\
--ORIGQID.1795890117/mx.example.org
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers
Content-Transfer-Encoding: 8bit

Return-Path: <jane@example.org>
Received: from client.example.org (client.example.org [192.0.2.7])
\tby mx.example.org (Sluice) with ESMTP id ORIGQID
\tfor <bob@example.net>; Sat, 28 Nov 2026 13:21:57 +0000 (UTC)
From: Jane <jane@example.org>
To: bob@example.net
Subject: hello

--ORIGQID.1795890117/mx.example.org--
";

#[test]
fn ret_hdrs_returns_headers_only() {
    let rcpts = [bob_rejected()];
    let mut n = notice(NoticeKind::Failure, &rcpts);
    n.ret = Some(Ret::Hdrs);
    let got = build_utc(&params(), &n).unwrap();
    assert_eq!(third_part(&got), crlf(HEADERS_ONLY_PART));
    // RET=FULL is the default.
    n.ret = Some(Ret::Full);
    let got = build_utc(&params(), &n).unwrap();
    assert!(third_part(&got).contains("\r\nHi Bob.\r\n"));
}

#[test]
fn bounce_size_limit_returns_headers_only() {
    let rcpts = [bob_rejected()];
    let n = notice(NoticeKind::Failure, &rcpts);
    let mut p = params();
    p.bounce_size_limit = ORIGINAL.len() - 1;
    assert_eq!(
        third_part(&build_utc(&p, &n).unwrap()),
        crlf(HEADERS_ONLY_PART)
    );
    // At the limit, the whole message comes back.
    p.bounce_size_limit = ORIGINAL.len();
    let got = build_utc(&p, &n).unwrap();
    assert!(third_part(&got).starts_with(
        "--ORIGQID.1795890117/mx.example.org\r\n\
         Content-Description: Undelivered Message\r\n\
         Content-Type: message/rfc822\r\n"
    ));
    assert!(got.ends_with("\r\nHi Bob.\r\n\r\n--ORIGQID.1795890117/mx.example.org--\r\n"));
    // 0: no limit.
    p.bounce_size_limit = 0;
    assert!(third_part(&build_utc(&p, &n).unwrap()).contains("Hi Bob."));
}

#[test]
fn envid_is_reported() {
    let rcpts = [bob_rejected()];
    let mut n = notice(NoticeKind::Failure, &rcpts);
    n.envid = Some("QQ314159");
    let got = build_utc(&params(), &n).unwrap();
    assert!(got.contains(
        "\r\nReporting-MTA: dns; mx.example.org\r\n\
         Original-Envelope-Id: QQ314159\r\n\
         X-Sluice-Queue-ID: ORIGQID\r\n"
    ));
    n.envid = Some("");
    assert!(!build_utc(&params(), &n)
        .unwrap()
        .contains("Original-Envelope-Id"));
}

#[test]
fn null_sender_and_notify_rules() {
    let rcpts = [bob_rejected()];
    let mut n = notice(NoticeKind::Failure, &rcpts);
    n.sender = "";
    assert_eq!(build_utc(&params(), &n), None);

    let never = [NoticeRcpt {
        notify: Notify(Notify::NEVER),
        ..bob_rejected()
    }];
    for kind in [NoticeKind::Failure, NoticeKind::Delay, NoticeKind::Success] {
        assert_eq!(build_utc(&params(), &notice(kind, &never)), None);
    }

    let (f, d, s, nv) = (
        Notify::FAILURE,
        Notify::DELAY,
        Notify::SUCCESS,
        Notify::NEVER,
    );
    let table: &[(NoticeKind, u8, &str, bool)] = &[
        (NoticeKind::Failure, 0, "jane@example.org", true),
        (NoticeKind::Failure, f, "jane@example.org", true),
        (NoticeKind::Failure, d | s, "jane@example.org", false),
        (NoticeKind::Failure, nv, "jane@example.org", false),
        (NoticeKind::Failure, 0, "", false),
        (NoticeKind::Delay, 0, "jane@example.org", true),
        (NoticeKind::Delay, d, "jane@example.org", true),
        (NoticeKind::Delay, f | s, "jane@example.org", false),
        (NoticeKind::Delay, nv, "jane@example.org", false),
        (NoticeKind::Success, 0, "jane@example.org", false),
        (NoticeKind::Success, s, "jane@example.org", true),
        (NoticeKind::Success, s | f | d, "jane@example.org", true),
        (NoticeKind::Success, f | d, "jane@example.org", false),
        (NoticeKind::Success, s, "", false),
    ];
    for &(kind, notify, sender, want) in table {
        assert_eq!(
            should_notify(kind, Notify(notify), sender),
            want,
            "{kind:?} notify={notify} sender={sender:?}"
        );
    }
}

#[test]
fn seven_bit_when_smtputf8_is_off() {
    let rcpts = [bob_rejected()];
    let mut p = params();
    p.smtputf8_enable = false;
    let got = build_utc(&p, &notice(NoticeKind::Failure, &rcpts)).unwrap();
    assert!(got.contains("\r\nContent-Transfer-Encoding: 7bit\r\nMessage-Id: "));
    assert!(got.contains(
        "Content-Description: Notification\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    ));
    assert!(got.contains("Content-Type: message/rfc822\r\n\r\nReturn-Path: "));
    assert_eq!(got.matches("8bit").count(), 0);

    // An 8-bit original makes it 8bit again; reasons stay ASCII-safe.
    let original = "Subject: caf\u{e9}\r\n\r\nbody\r\n";
    let rcpts = [NoticeRcpt {
        reason: "b\u{f6}se".to_owned(),
        ..bob_rejected()
    }];
    let mut n = notice(NoticeKind::Failure, &rcpts);
    n.original = original.as_bytes();
    let got = build_utc(&p, &n).unwrap();
    assert!(got.contains(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
    ));
    assert!(got.contains("<bob@example.net>: b\u{f6}se\r\n"));
}

#[test]
fn smtputf8_original_uses_global_types() {
    let rcpts = [NoticeRcpt {
        address: "j\u{f6}rg@b\u{fc}cher.example".to_owned(),
        orcpt: None,
        ..bob_rejected()
    }];
    let mut n = notice(NoticeKind::Failure, &rcpts);
    n.smtputf8 = true;
    n.sender = "s\u{e9}verine@example.org";
    let got = build_utc(&params(), &n).unwrap();
    assert!(got.contains(
        "Content-Description: Delivery report\r\n\
         Content-Type: message/global-delivery-status\r\n\
         Content-Transfer-Encoding: 8bit\r\n"
    ));
    assert!(got.contains("X-Sluice-Sender: utf-8; s\u{e9}verine@example.org\r\n"));
    assert!(got.contains("Final-Recipient: utf-8; j\u{f6}rg@b\u{fc}cher.example\r\n"));
    assert!(got.contains("Original-Recipient: utf-8;j\u{f6}rg@b\u{fc}cher.example\r\n"));
    assert!(got.contains("Content-Type: message/global\r\n"));
    n.ret = Some(Ret::Hdrs);
    let got = build_utc(&params(), &n).unwrap();
    assert!(got.contains("Content-Type: message/global-headers\r\n"));
}

#[test]
fn mail_name_postfix_gives_postfix_field_names() {
    let rcpts = [NoticeRcpt {
        diagnostic: None,
        ..bob_rejected()
    }];
    let mut p = params();
    p.mail_name = "Postfix".to_owned();
    let got = build_utc(&p, &notice(NoticeKind::Failure, &rcpts)).unwrap();
    assert!(got.starts_with("Received: by mx.example.org (Postfix)\r\n"));
    assert!(got.contains("\r\nX-Postfix-Queue-ID: ORIGQID\r\nX-Postfix-Sender: rfc822; "));
    assert!(got.contains("\r\nDiagnostic-Code: X-Postfix; host mx.example.net"));
}

#[test]
fn sender_is_quoted_like_postfix() {
    let rcpts = [bob_rejected()];
    let mut n = notice(NoticeKind::Failure, &rcpts);
    n.sender = "john doe@example.org";
    let got = build_utc(&params(), &n).unwrap();
    assert!(got.contains("\r\nTo: \"john doe\"@example.org\r\n"));
    assert!(got.contains("\r\nX-Sluice-Sender: rfc822; \"john doe\"@example.org\r\n"));
    assert!(got.contains("\r\nReturn-Path: <\"john doe\"@example.org>\r\n"));
}

#[test]
fn original_without_final_line_end_is_terminated() {
    let rcpts = [bob_rejected()];
    let mut n = notice(NoticeKind::Failure, &rcpts);
    n.original = b"Subject: x\r\n\r\nno newline";
    let got = build_utc(&params(), &n).unwrap();
    assert!(got.ends_with("\r\nno newline\r\n\r\n--ORIGQID.1795890117/mx.example.org--\r\n"));
}

#[test]
fn hostile_text_cannot_break_the_structure() {
    let rcpts = [NoticeRcpt {
        address: "a@b\r\n--ORIGQID.1795890117/mx.example.org--".to_owned(),
        reason: "x\r\n\r\n--ORIGQID.1795890117/mx.example.org\r\nX: y".to_owned(),
        status: "5.0.0\r\nInjected: 1".to_owned(),
        remote_mta: Some("h\nX: 1".to_owned()),
        diagnostic: Some(Diagnostic::smtp("550\r\n\r\nEvil: 1")),
        ..bob_rejected()
    }];
    let mut n = notice(NoticeKind::Failure, &rcpts);
    n.envid = Some("e\r\nX: 1");
    let got = build_utc(&params(), &n).unwrap();
    check_structure(got.as_bytes(), "ORIGQID.1795890117/mx.example.org");
    assert!(!got.contains("\r\nInjected"));
    assert!(!got.contains("\r\nEvil"));
    assert!(!got.contains("\r\nX: "));
}

#[test]
fn from_outcome_maps_the_variants() {
    let req = crate::delivery::DeliveryRcpt {
        index: 3,
        address: "bob@example.net".to_owned(),
        orcpt: Some("rfc822;Bob@Example.net".to_owned()),
        notify: Notify(Notify::SUCCESS),
    };
    let bounced = RcptOutcome::Bounced {
        dsn: "5.1.1".to_owned(),
        reason: "host h said: 550 no".to_owned(),
    };
    let r = NoticeRcpt::from_outcome(&req, &bounced, Action::Relayed);
    assert_eq!(r.action, Action::Failed);
    assert_eq!(r.status, "5.1.1");
    assert_eq!(r.reason, "host h said: 550 no");
    assert_eq!(r.orcpt.as_deref(), Some("rfc822;Bob@Example.net"));
    assert_eq!(r.notify, Notify(Notify::SUCCESS));
    let sent = RcptOutcome::Delivered {
        dsn: "2.0.0".to_owned(),
        reason: "250 ok".to_owned(),
    };
    assert_eq!(
        NoticeRcpt::from_outcome(&req, &sent, Action::Relayed).action,
        Action::Relayed
    );
    let deferred = RcptOutcome::Deferred {
        dsn: "4.4.1".to_owned(),
        reason: "timeout".to_owned(),
    };
    assert_eq!(
        NoticeRcpt::from_outcome(&req, &deferred, Action::Relayed).action,
        Action::Delayed
    );
}

/// Parses the notice as MIME far enough to check its shape: a header
/// section declaring `multipart/report` with `boundary`, then exactly three
/// parts with the expected types, then the closing delimiter as the last
/// line; every line CRLF-terminated; no other line starts a part.
fn check_structure(notice: &[u8], boundary: &str) {
    let text = String::from_utf8_lossy(notice);
    assert!(text.ends_with("\r\n"), "last line unterminated");
    assert!(
        !text.replace("\r\n", "").contains(['\r', '\n']),
        "bare CR or LF"
    );
    let (head, body) = text.split_once("\r\n\r\n").expect("header section");
    let unfolded = head.replace("\r\n\t", " ");
    assert!(unfolded.contains(&format!(
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\""
    )));
    let delimiter = format!("--{boundary}");
    let lines: Vec<&str> = body.split("\r\n").collect();
    let starts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with(&delimiter))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(starts.len(), 4, "three parts and a close:\n{text}");
    for &i in &starts[..3] {
        assert_eq!(lines[i], delimiter);
    }
    assert_eq!(lines[starts[3]], format!("{delimiter}--"));
    assert_eq!(lines.len(), starts[3] + 2, "nothing after the close");
    let part_type = |i: usize| {
        lines[i + 1..]
            .iter()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix("Content-Type: "))
            .unwrap_or("")
            .to_owned()
    };
    assert!(part_type(starts[0]).starts_with("text/plain; charset="));
    assert!(part_type(starts[1]).ends_with("delivery-status"));
    let third = part_type(starts[2]);
    assert!(
        [
            "message/rfc822",
            "text/rfc822-headers",
            "message/global",
            "message/global-headers"
        ]
        .contains(&third.as_str()),
        "{third}"
    );
}

#[test]
fn golden_notices_have_three_parts() {
    let rcpts = [bob_rejected()];
    for kind in [NoticeKind::Failure, NoticeKind::Delay] {
        let got = build_with_dates(&params(), &notice(kind, &rcpts), &utc).unwrap();
        check_structure(&got, "ORIGQID.1795890117/mx.example.org");
    }
}

fn any_rcpt() -> impl Strategy<Value = NoticeRcpt> {
    (
        "[ -~\u{e9}\r\n]{0,40}",
        proptest::option::of("[ -~]{0,30}"),
        proptest::option::of("[ -~]{0,30}"),
        0u8..16,
        "[ -~\t\r\n\u{fc}]{0,300}",
        proptest::option::of("[ -~\r\n]{0,120}"),
    )
        .prop_map(
            |(address, original, orcpt, notify, reason, diag)| NoticeRcpt {
                address,
                original,
                orcpt,
                notify: Notify(notify),
                action: Action::Delayed,
                status: "4.0.0".to_owned(),
                remote_mta: Some("mx.example.net".to_owned()),
                diagnostic: diag.map(Diagnostic::smtp),
                reason,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the recipients and the original, a notice is either not
    /// sent or is a well-formed three-part report; the full original comes
    /// back only within bounce_size_limit.
    #[test]
    fn always_well_formed(
        rcpts in proptest::collection::vec(any_rcpt(), 0..5),
        original in proptest::collection::vec(any::<u8>(), 0..400),
        kind in prop_oneof![
            Just(NoticeKind::Failure),
            Just(NoticeKind::Delay),
            Just(NoticeKind::Success)
        ],
        limit in 0usize..500,
        utf8 in any::<bool>(),
        smtputf8 in any::<bool>(),
    ) {
        // The queue holds CRLF lines; make the random original so.
        let original = String::from_utf8_lossy(&original)
            .replace(['\r', '\n'], "")
            .replace('\u{0}', "")
            + "\r\n";
        let mut p = params();
        p.bounce_size_limit = limit;
        p.smtputf8_enable = utf8;
        let mut n = notice(kind, &rcpts);
        n.original = original.as_bytes();
        n.smtputf8 = smtputf8;
        let want_any = rcpts.iter().any(|r| should_notify(kind, r.notify, n.sender));
        match build_with_dates(&p, &n, &utc) {
            None => prop_assert!(!want_any),
            Some(bytes) => {
                prop_assert!(want_any);
                check_structure(&bytes, "ORIGQID.1795890117/mx.example.org");
            }
        }
    }
}
