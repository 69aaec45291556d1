//! Golden transcripts: whole messages in, exact bytes out, with a fixed
//! arrival date so nothing depends on the machine's time zone.

use std::net::IpAddr;

use proptest::prelude::*;
use sluice_protocols::envelope::{ClientInfo, Envelope, Notify, Protocol, Recipient};

use super::*;

const QID: &str = "4jcJb04xz6z1ShQN";
const ARRIVAL: i64 = 1_795_890_117;
const DATE: &str = "Sat, 28 Nov 2026 18:21:57 +0000 (UTC)";
const MSGID: &str = "<4jcJb04xz6z1ShQN@mx.example.com>";

fn params() -> CleanupParams {
    CleanupParams::new("mx.example.com", "example.com")
}

fn client(name: &str, addr: &str, helo: Option<&str>, protocol: Protocol) -> ClientInfo {
    ClientInfo {
        name: name.to_owned(),
        addr: addr.parse::<IpAddr>().expect("test address"),
        port: 40000,
        helo: helo.map(str::to_owned),
        protocol,
    }
}

fn esmtp_client() -> ClientInfo {
    client(
        "client.example.net",
        "192.0.2.10",
        Some("client.example.net"),
        Protocol::Esmtp,
    )
}

fn envelope(sender: &str, rcpts: &[&str]) -> Envelope {
    Envelope {
        sender: sender.to_owned(),
        recipients: rcpts.iter().map(|r| Recipient::new(*r)).collect(),
        ..Envelope::default()
    }
}

fn run(
    params: &CleanupParams,
    origin: Origin<'_>,
    env: &mut Envelope,
    content: &[u8],
) -> Result<Cleaned, CleanupError> {
    run_as(params, origin, env, content, false)
}

/// [`run`] for an smtpd client that matched (or not)
/// local_header_rewrite_clients.
fn run_as(
    params: &CleanupParams,
    origin: Origin<'_>,
    env: &mut Envelope,
    content: &[u8],
    rewrite_client: bool,
) -> Result<Cleaned, CleanupError> {
    cleanup_with_date(
        params,
        CleanupInput {
            qid: QID,
            arrival_secs: ARRIVAL,
            origin,
            envelope: env,
            content,
            authenticated: false,
            authenticated_sender: None,
            tls: None,
            rewrite_client,
        },
        DATE,
    )
}

fn smtp(env: &mut Envelope, content: &str) -> Cleaned {
    let c = esmtp_client();
    run(
        &params(),
        Origin::Smtp { client: &c },
        env,
        content.as_bytes(),
    )
    .expect("accepted")
}

fn text(c: &Cleaned) -> &str {
    std::str::from_utf8(&c.content).expect("test output is UTF-8")
}

/// Our Received: header for `esmtp_client()` and one recipient.
fn received_for(rcpt: &str) -> String {
    format!(
        "Received: from client.example.net (client.example.net [192.0.2.10])\r\n\
         \tby mx.example.com (Sluice) with ESMTP id {QID}\r\n\
         \tfor <{rcpt}>; {DATE}\r\n"
    )
}

/// The three headers cleanup adds, for sender `from`.
fn added(from: &str) -> String {
    format!("Message-Id: {MSGID}\r\nDate: {DATE}\r\nFrom: {from}\r\n")
}

#[test]
fn fixed_date_is_what_datetime_writes_for_utc() {
    assert_eq!(datetime::rfc2822_with_offset(ARRIVAL, 0, "UTC"), DATE);
}

#[test]
fn golden_smtp_one_recipient() {
    let mut env = envelope("alice@example.net", &["bob@example.org"]);
    let out = smtp(
        &mut env,
        "Subject: hello\r\nTo: bob@example.org\r\n\r\nHi Bob.\r\n",
    );
    let want = format!(
        "{}Subject: hello\r\nTo: bob@example.org\r\n{}\r\nHi Bob.\r\n",
        received_for("bob@example.org"),
        added("alice@example.net"),
    );
    assert_eq!(text(&out), want);
    assert_eq!(out.message_id, MSGID);
    assert_eq!(out.resent_message_id, None);
    assert_eq!(out.hops, 1);
    assert_eq!(
        log_message_id(QID, &out),
        format!("{QID}: message-id=<{QID}@mx.example.com>")
    );
    assert_eq!(log_resent_message_id(QID, &out), None);
}

#[test]
fn golden_smtp_many_recipients_has_no_for_clause() {
    let c = client(
        "unknown",
        "192.0.2.10",
        Some("helo.example"),
        Protocol::Smtp,
    );
    let mut env = envelope(
        "alice@example.net",
        &["bob@example.org", "carol@example.org"],
    );
    let out = run(
        &params(),
        Origin::Smtp { client: &c },
        &mut env,
        b"Subject: s\r\n\r\nbody\r\n",
    )
    .expect("accepted");
    let want = format!(
        "Received: from helo.example (unknown [192.0.2.10])\r\n\
         \tby mx.example.com (Sluice) with SMTP id {QID};\r\n\
         \t{DATE}\r\n\
         Subject: s\r\n{}\r\nbody\r\n",
        added("alice@example.net")
    );
    assert_eq!(text(&out), want);
}

#[test]
fn received_header_shapes() {
    // (client, recipients, first two lines of the expected Received:)
    let cases: &[(ClientInfo, &[&str], &str)] = &[
        // No HELO: the name stands in for it.
        (
            client("mail.example.net", "198.51.100.7", None, Protocol::Smtp),
            &["bob@example.org"],
            "Received: from mail.example.net (mail.example.net [198.51.100.7])\r\n\
             \tby mx.example.com (Sluice) with SMTP id ",
        ),
        // IPv6 clients are shown as [IPv6:...].
        (
            client(
                "v6.example.net",
                "2001:db8::25",
                Some("v6.example.net"),
                Protocol::Esmtp,
            ),
            &["bob@example.org"],
            "Received: from v6.example.net (v6.example.net [IPv6:2001:db8::25])\r\n\
             \tby mx.example.com (Sluice) with ESMTP id ",
        ),
        // IPv4-mapped IPv6 is shown as IPv4.
        (
            client("unknown", "::ffff:203.0.113.9", Some("x"), Protocol::Esmtp),
            &["bob@example.org"],
            "Received: from x (unknown [203.0.113.9])\r\n\
             \tby mx.example.com (Sluice) with ESMTP id ",
        ),
        // Control characters from the client cannot start a new header.
        (
            client(
                "unknown",
                "192.0.2.1",
                Some("evil\r\nX-Injected: 1"),
                Protocol::Esmtp,
            ),
            &["bob@example.org"],
            "Received: from evil??X-Injected: 1 (unknown [192.0.2.1])\r\n\
             \tby mx.example.com (Sluice) with ESMTP id ",
        ),
    ];
    for (c, rcpts, want_prefix) in cases {
        let mut env = envelope("a@example.net", rcpts);
        let out = run(&params(), Origin::Smtp { client: c }, &mut env, b"").expect("accepted");
        assert!(
            text(&out).starts_with(want_prefix),
            "got {:?}, want prefix {want_prefix:?}",
            text(&out)
        );
    }
}

#[test]
fn received_for_clause_quotes_the_local_part_and_uses_the_address_as_given() {
    let mut env = envelope("a@example.net", &["\"john doe\"@example.org"]);
    let out = smtp(&mut env, "");
    assert!(text(&out).starts_with(&received_for("\"john doe\"@example.org")));

    // Before rewriting: the client said "bob", the envelope now says
    // bob@example.com.
    let mut env = envelope("a@example.net", &["bob"]);
    let out = smtp(&mut env, "");
    assert!(text(&out).starts_with(&received_for("bob")));
    assert_eq!(env.recipients[0].address, "bob@example.com");
}

#[test]
fn golden_pickup() {
    let mut env = envelope("alice", &["bob"]);
    let out = run(
        &params(),
        Origin::Pickup { uid: 1000 },
        &mut env,
        b"Subject: local\n\nbody without final newline",
    )
    .expect("accepted");
    let want = format!(
        "Received: by mx.example.com (Sluice, from userid 1000)\r\n\
         \tid {QID}; {DATE}\r\n\
         Subject: local\r\n{}\r\nbody without final newline",
        added("alice@example.com")
    );
    assert_eq!(text(&out), want);
    assert_eq!(env.sender, "alice@example.com");
    assert_eq!(env.recipients, vec![Recipient::new("bob@example.com")]);
}

#[test]
fn existing_message_id_date_from_are_kept_whatever_their_case() {
    let mut env = envelope("alice@example.net", &["bob@example.org"]);
    let input = "message-ID: <orig@client.example.net>\r\n\
                 DATE: Fri, 27 Nov 2026 10:00:00 +0100\r\n\
                 from: Alice <alice@example.net>\r\n\
                 \r\n\
                 body\r\n";
    let out = smtp(&mut env, input);
    assert_eq!(
        text(&out),
        format!("{}{input}", received_for("bob@example.org"))
    );
    assert_eq!(out.message_id, "<orig@client.example.net>");
    assert_eq!(
        log_message_id(QID, &out),
        format!("{QID}: message-id=<orig@client.example.net>")
    );
}

#[test]
fn only_the_missing_headers_are_added() {
    let mut env = envelope("alice@example.net", &["bob@example.org"]);
    let out = smtp(
        &mut env,
        "Date: Fri, 27 Nov 2026 10:00:00 +0100\r\n\r\nb\r\n",
    );
    assert_eq!(
        text(&out),
        format!(
            "{}Date: Fri, 27 Nov 2026 10:00:00 +0100\r\nMessage-Id: {MSGID}\r\n\
             From: alice@example.net\r\n\r\nb\r\n",
            received_for("bob@example.org")
        )
    );
}

#[test]
fn resent_headers_switch_the_added_headers_to_resent_forms() {
    let mut env = envelope("alice@example.net", &["bob@example.org"]);
    let input = "From: orig@example.org\r\nResent-From: alice@example.net\r\n\r\nb\r\n";
    let out = smtp(&mut env, input);
    assert_eq!(
        text(&out),
        format!(
            "{}From: orig@example.org\r\nResent-From: alice@example.net\r\n\
             Resent-Message-Id: {MSGID}\r\nResent-Date: {DATE}\r\n\r\nb\r\n",
            received_for("bob@example.org")
        )
    );
    // Postfix logs "message-id=<>" when the message has no Message-Id.
    assert_eq!(out.message_id, "<>");
    assert_eq!(out.resent_message_id.as_deref(), Some(MSGID));
    assert_eq!(
        log_resent_message_id(QID, &out),
        Some(format!("{QID}: resent-message-id={MSGID}"))
    );
}

#[test]
fn null_sender_gets_from_mailer_daemon() {
    let mut env = envelope("", &["bob@example.org"]);
    let out = smtp(&mut env, "Subject: bounce\r\n\r\nb\r\n");
    assert!(text(&out).contains(&format!("\r\n{}\r\n", added("MAILER-DAEMON"))));
    assert_eq!(env.sender, "");
}

#[test]
fn sender_with_specials_is_quoted_in_from() {
    let mut env = envelope("john doe@example.net", &["bob@example.org"]);
    let out = smtp(&mut env, "");
    assert!(text(&out).ends_with("From: \"john doe\"@example.net\r\n"));
}

fn with_received(n: usize, name: &str) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!("{name}: from hop{i}.example by x; {DATE}\r\n"));
    }
    s.push_str("Subject: loop\r\n\r\nbody\r\n");
    s
}

#[test]
fn hop_limit_rejects_at_the_limit_counting_our_own_received() {
    let p = params();
    assert_eq!(p.hopcount_limit, 50);
    let c = esmtp_client();

    // 48 incoming + ours = 49 < 50: accepted.
    let mut env = envelope("a@example.net", &["b"]);
    let out = run(
        &p,
        Origin::Smtp { client: &c },
        &mut env,
        with_received(48, "Received").as_bytes(),
    )
    .expect("49 hops are fine");
    assert_eq!(out.hops, 49);

    // 49 incoming + ours = 50: rejected, envelope untouched.
    let mut env = envelope("a@example.net", &["b"]);
    let err = run(
        &p,
        Origin::Smtp { client: &c },
        &mut env,
        with_received(49, "Received").as_bytes(),
    )
    .expect_err("50 hops are too many");
    assert_eq!(err, CleanupError::TooManyHops { hops: 50 });
    assert_eq!(
        err.reply().to_wire_string(),
        "554 5.4.0 Error: too many hops"
    );
    assert_eq!(err.to_string(), "message rejected: hopcount exceeded");
    assert_eq!(env, envelope("a@example.net", &["b"]));

    // Well over the limit, and counted case-insensitively.
    let mut env = envelope("a@example.net", &["b"]);
    let err = run(
        &p,
        Origin::Smtp { client: &c },
        &mut env,
        with_received(60, "rEcEiVeD").as_bytes(),
    )
    .expect_err("61 hops");
    assert_eq!(err, CleanupError::TooManyHops { hops: 61 });
}

#[test]
fn hop_count_ignores_delivered_to_and_the_body() {
    let mut env = envelope("a@example.net", &["b@example.org"]);
    let mut input = String::new();
    for _ in 0..60 {
        input.push_str("Delivered-To: b@example.org\r\n");
    }
    input.push_str("\r\n");
    for _ in 0..60 {
        input.push_str("Received: in the body\r\n");
    }
    let out = smtp(&mut env, &input);
    assert_eq!(out.hops, 1);
}

#[test]
fn a_small_hop_limit() {
    let mut p = params();
    p.hopcount_limit = 2;
    let c = esmtp_client();
    let mut env = envelope("a@example.net", &["b"]);
    assert!(run(&p, Origin::Smtp { client: &c }, &mut env, b"Subject: x\r\n").is_ok());
    let mut env = envelope("a@example.net", &["b"]);
    assert_eq!(
        run(
            &p,
            Origin::Smtp { client: &c },
            &mut env,
            b"Received: x\r\n"
        ),
        Err(CleanupError::TooManyHops { hops: 2 })
    );
}

#[test]
fn header_size_limit_truncates_one_logical_header() {
    let mut p = params();
    p.header_size_limit = 20;
    let c = esmtp_client();
    let mut env = envelope("a@example.net", &["b@example.org"]);
    let input = "Subject: 0123456789abcdefghij\r\n\tcontinued\r\nTo: b@example.org\r\n\r\nbody\r\n";
    let out = run(&p, Origin::Smtp { client: &c }, &mut env, input.as_bytes()).expect("accepted");
    assert_eq!(
        text(&out),
        format!(
            "{}Subject: 0123456789a\r\nTo: b@example.org\r\n{}\r\nbody\r\n",
            received_for("b@example.org"),
            added("a@example.net")
        )
    );
}

#[test]
fn header_size_limit_default_keeps_a_big_folded_header_up_to_the_limit() {
    let mut env = envelope("a@example.net", &["b@example.org"]);
    let mut input = String::from("X-Big: start");
    while input.len() < 150_000 {
        input.push_str("\r\n\tfolded line of filler text");
    }
    input.push_str("\r\nSubject: after\r\n\r\nbody\r\n");
    let out = smtp(&mut env, &input);
    let t = text(&out);
    let start = t.find("X-Big:").expect("kept");
    let end = t.find("Subject: after").expect("next header kept");
    let kept = &t[start..end];
    // Postfix's measure: line breaks count one byte.
    let measured = kept.len() - kept.matches("\r\n").count();
    assert!(measured <= 102_400 + 1, "measured {measured}");
    assert!(measured > 102_400 - 30, "measured {measured}");
    assert!(t.ends_with("\r\nbody\r\n"));
}

#[test]
fn bcc_content_length_return_path_and_resent_bcc_are_dropped() {
    let mut env = envelope("a@example.net", &["b@example.org"]);
    let input = "Return-Path: <x@example.net>\r\n\
                 To: b@example.org\r\n\
                 BCC: secret@example.org,\r\n\
                 \tother@example.org\r\n\
                 Content-Length: 12\r\n\
                 Subject: s\r\n\
                 \r\n\
                 Bcc: in the body stays\r\n";
    let out = smtp(&mut env, input);
    assert_eq!(
        text(&out),
        format!(
            "{}To: b@example.org\r\nSubject: s\r\n{}\r\nBcc: in the body stays\r\n",
            received_for("b@example.org"),
            added("a@example.net")
        )
    );

    // Resent-Bcc goes too, and like every Resent- header it asks for
    // Resent- headers.
    let mut env = envelope("a@example.net", &["b@example.org"]);
    let out = smtp(&mut env, "Resent-Bcc: x@example.org\r\n\r\nb\r\n");
    assert_eq!(
        text(&out),
        format!(
            "{}Resent-Message-Id: {MSGID}\r\nResent-Date: {DATE}\r\n\
             Resent-From: a@example.net\r\n\r\nb\r\n",
            received_for("b@example.org")
        )
    );
}

#[test]
fn duplicate_recipients_are_removed() {
    let mut env = envelope("a@example.net", &[]);
    let notify = |addr: &str, bits: u8| Recipient {
        notify: Notify(bits),
        ..Recipient::new(addr)
    };
    let orcpt = |addr: &str, o: &str| Recipient {
        orcpt: Some(o.to_owned()),
        ..Recipient::new(addr)
    };
    env.recipients = vec![
        Recipient::new("bob@example.org"),
        Recipient::new("carol@example.org"),
        Recipient::new("bob@example.org"),
        notify("bob@example.org", Notify::SUCCESS),
        notify("bob@example.org", Notify::SUCCESS),
        orcpt("bob@example.org", "rfc822;bob@old.example"),
        // Different as given, same after rewriting: Postfix keeps both.
        Recipient::new("dave"),
        Recipient::new("dave@example.com"),
        Recipient::new("carol@example.org"),
    ];
    let out = smtp(&mut env, "Subject: s\r\n\r\nb\r\n");
    assert_eq!(
        env.recipients,
        vec![
            Recipient::new("bob@example.org"),
            Recipient::new("carol@example.org"),
            notify("bob@example.org", Notify::SUCCESS),
            orcpt("bob@example.org", "rfc822;bob@old.example"),
            Recipient::new("dave@example.com"),
            Recipient::new("dave@example.com"),
        ]
    );
    // Nine RCPT commands: no "for" clause.
    assert!(text(&out).contains(&format!("id {QID};\r\n\t{DATE}\r\n")));
}

#[test]
fn two_identical_rcpts_still_hide_the_recipient() {
    let mut env = envelope("a@example.net", &["bob@example.org", "bob@example.org"]);
    let out = smtp(&mut env, "");
    assert!(!text(&out).contains("for <"));
    assert_eq!(env.recipients, vec![Recipient::new("bob@example.org")]);
}

#[test]
fn envelope_is_rewritten_to_standard_form() {
    let mut env = envelope(
        "@relay.example:alice@example.net.",
        &["uucp!joe", "joe%other.example", "root"],
    );
    smtp(&mut env, "");
    assert_eq!(env.sender, "alice@example.net");
    let got: Vec<&str> = env.recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(got, ["joe@uucp", "joe@other.example", "root@example.com"]);
}

#[test]
fn a_non_header_line_starts_the_body_after_an_inserted_empty_line() {
    let mut env = envelope("a@example.net", &["b@example.org"]);
    let out = smtp(
        &mut env,
        "Subject: s\r\nThis is text, not a header\r\nTo: x\r\n",
    );
    assert_eq!(
        text(&out),
        format!(
            "{}Subject: s\r\n{}\r\nThis is text, not a header\r\nTo: x\r\n",
            received_for("b@example.org"),
            added("a@example.net")
        )
    );

    // An 8-bit header name is not a header either.
    let mut env = envelope("a@example.net", &["b@example.org"]);
    let out = smtp(&mut env, "Rece\u{ed}ved: x\r\nFrom: y@example.net\r\n");
    assert_eq!(
        text(&out),
        format!(
            "{}{}\r\nRece\u{ed}ved: x\r\nFrom: y@example.net\r\n",
            received_for("b@example.org"),
            added("a@example.net")
        )
    );
}

#[test]
fn a_message_of_headers_only_gets_no_empty_line() {
    let mut env = envelope("a@example.net", &["b@example.org"]);
    let out = smtp(&mut env, "Subject: s\r\nTo: b@example.org");
    assert_eq!(
        text(&out),
        format!(
            "{}Subject: s\r\nTo: b@example.org\r\n{}",
            received_for("b@example.org"),
            added("a@example.net")
        )
    );
}

#[test]
fn empty_content() {
    let mut env = envelope("a@example.net", &["b@example.org"]);
    let out = smtp(&mut env, "");
    assert_eq!(
        text(&out),
        format!(
            "{}{}",
            received_for("b@example.org"),
            added("a@example.net")
        )
    );
}

#[test]
fn body_is_copied_byte_for_byte() {
    let mut env = envelope("a@example.net", &["b@example.org"]);
    let body: &[u8] = b"line\r\nbare lf\nbare cr\r\r\n\x00\xff binary\r\n\r\n.\r\nno final crlf";
    let mut input = b"Subject: s\r\n\r\n".to_vec();
    input.extend_from_slice(body);
    let c = esmtp_client();
    let out = run(&params(), Origin::Smtp { client: &c }, &mut env, &input).expect("accepted");
    assert!(out.content.ends_with(body));
    let head_len = out.content.len() - body.len();
    assert!(out.content[..head_len].ends_with(b"\r\n\r\n"));
}

#[test]
fn from_lines_become_x_mailbox_line_for_smtp_but_not_pickup() {
    let mut env = envelope("a@example.net", &["b@example.org"]);
    let out = smtp(
        &mut env,
        "From a@example.net Sat Nov 28 18:21:57 2026\r\nSubject: s\r\n\r\nb\r\n",
    );
    assert_eq!(
        text(&out),
        format!(
            "{}X-Mailbox-Line: From a@example.net Sat Nov 28 18:21:57 2026\r\nSubject: s\r\n{}\r\nb\r\n",
            received_for("b@example.org"),
            added("a@example.net")
        )
    );

    let mut env = envelope("a", &["b"]);
    let out = run(
        &params(),
        Origin::Pickup { uid: 0 },
        &mut env,
        b"From x\nSubject: s\n",
    )
    .expect("accepted");
    assert!(text(&out).ends_with("\r\n\r\nFrom x\nSubject: s\n"));
}

#[test]
fn missing_headers_need_the_flag_a_rewrite_client_or_pickup() {
    let mut p = params();
    p.always_add_missing_headers = false;

    let remote = esmtp_client();
    let mut env = envelope("a@example.net", &["b@example.org"]);
    let out = run(
        &p,
        Origin::Smtp { client: &remote },
        &mut env,
        b"Subject: s\r\n\r\nb\r\n",
    )
    .expect("accepted");
    assert_eq!(
        text(&out),
        format!("{}Subject: s\r\n\r\nb\r\n", received_for("b@example.org"))
    );
    assert_eq!(out.message_id, "<>");

    // Whether a client matches local_header_rewrite_clients is the
    // engine's decision (loopback by default, anyone with static:all).
    let mut env = envelope("a@example.net", &["b@example.org"]);
    let out = run_as(&p, Origin::Smtp { client: &remote }, &mut env, b"", true).expect("accepted");
    assert!(text(&out).ends_with(&added("a@example.net")));

    let mut env = envelope("a", &["b"]);
    let out = run(&p, Origin::Pickup { uid: 5 }, &mut env, b"").expect("accepted");
    assert!(text(&out).ends_with(&added("a@example.com")));
}

#[test]
fn cleanup_dates_in_the_local_zone() {
    let mut env = envelope("a@example.net", &["b@example.org"]);
    let c = esmtp_client();
    let out = cleanup(
        &params(),
        CleanupInput {
            qid: QID,
            arrival_secs: ARRIVAL,
            origin: Origin::Smtp { client: &c },
            envelope: &mut env,
            content: b"",
            authenticated: false,
            authenticated_sender: None,
            tls: None,
            rewrite_client: false,
        },
    )
    .expect("accepted");
    let date = datetime::rfc2822_local(ARRIVAL);
    assert!(text(&out).ends_with(&format!("Date: {date}\r\nFrom: a@example.net\r\n")));
}

#[test]
fn received_names_the_authenticated_sender() {
    let mut env = envelope("a@example.net", &["b@example.org"]);
    let c = esmtp_client();
    let out = cleanup(
        &params(),
        CleanupInput {
            qid: QID,
            arrival_secs: ARRIVAL,
            origin: Origin::Smtp { client: &c },
            envelope: &mut env,
            content: b"",
            authenticated: true,
            authenticated_sender: Some("jane\r\nX: y"),
            tls: None,
            rewrite_client: false,
        },
    )
    .expect("accepted");
    assert!(
        text(&out).starts_with(
            "Received: from client.example.net (client.example.net [192.0.2.10])\r\n\
             \t(Authenticated sender: jane??X: y)\r\n\tby mx.example.com (Sluice) with ESMTPA id "
        ),
        "{}",
        text(&out)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn never_panics_and_always_starts_with_received(
        content in proptest::collection::vec(any::<u8>(), 0..2048),
        limit in 0usize..200,
        hops in 0u32..5,
        pickup in any::<bool>(),
    ) {
        let mut p = params();
        p.header_size_limit = limit;
        p.hopcount_limit = hops;
        let c = esmtp_client();
        let origin = if pickup { Origin::Pickup { uid: 1 } } else { Origin::Smtp { client: &c } };
        let mut env = envelope("a", &["b", "b", "c"]);
        if let Ok(out) = run(&p, origin, &mut env, &content) {
            prop_assert!(out.content.starts_with(b"Received: "));
            prop_assert!(out.hops >= 1 && out.hops < hops.max(1));
        }
    }

    #[test]
    fn headers_then_body_keeps_the_body_exactly(
        headers in proptest::collection::vec("[A-Za-z-]{1,12}: [ -~]{0,30}", 0..8),
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut input = Vec::new();
        for h in &headers {
            input.extend_from_slice(h.as_bytes());
            input.extend_from_slice(b"\r\n");
        }
        input.extend_from_slice(b"\r\n");
        input.extend_from_slice(&body);
        let c = esmtp_client();
        let mut env = envelope("a@example.net", &["b@example.org"]);
        let out = run(&params(), Origin::Smtp { client: &c }, &mut env, &input).expect("accepted");
        prop_assert!(out.content.ends_with(&body));
        let head = &out.content[..out.content.len() - body.len()];
        prop_assert!(head.ends_with(b"\r\n\r\n"));
        // Exactly one empty line: the one that ends the header section.
        prop_assert_eq!(memchr::memmem::find(head, b"\r\n\r\n"), Some(head.len() - 4));
    }
}

#[test]
fn long_lines_are_kept_whole() {
    // Postfix's cleanup_out() only stores a line longer than
    // line_length_limit as several records (REC_TYPE_CONT), which smtp
    // joins again; the line itself is not changed. Breaking it is smtp's
    // job, at smtp_line_length_limit.
    let header = format!("X-Long: {}", "h".repeat(2_500));
    let body = format!("{}\r\n{}\r\n", "b".repeat(100_000), "c".repeat(999));
    let mut env = envelope("a@example.org", &["b@example.net"]);
    let c = smtp(&mut env, &format!("Subject: s\r\n{header}\r\n\r\n{body}"));
    let out = text(&c);
    assert!(out.contains(&format!("\r\n{header}\r\n")), "header changed");
    assert!(out.ends_with(&format!("\r\n\r\n{body}")), "body changed");
}

/// smtpd under TLS: `with ESMTPS` always; the `(using …)` clause only with
/// smtpd_tls_received_header = yes, in Postfix 3.4+'s shape.
#[test]
fn received_header_under_tls() {
    let info = sluice_protocols::smtp::server::TlsInfo {
        protocol: "TLSv1.3".into(),
        cipher: "TLS_AES_256_GCM_SHA384".into(),
        bits: 256,
        key_exchange: Some("X25519".into()),
        server_signature: Some("ECDSA (P-256)".into()),
        server_digest: Some("SHA256".into()),
    };
    let c = esmtp_client();
    for clause in [false, true] {
        let mut env = envelope("a@example.net", &["b@example.org"]);
        let out = cleanup_with_date(
            &params(),
            CleanupInput {
                qid: QID,
                arrival_secs: ARRIVAL,
                origin: Origin::Smtp { client: &c },
                envelope: &mut env,
                content: b"Subject: x\r\n",
                authenticated: false,
                authenticated_sender: None,
                tls: Some(super::ReceivedTls {
                    info: &info,
                    clause,
                }),
                rewrite_client: false,
            },
            DATE,
        )
        .expect("accepted");
        let using = if clause {
            "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\r\n\
             \t key-exchange X25519 server-signature ECDSA (P-256) server-digest SHA256)\r\n\
             \t(No client certificate requested)\r\n"
        } else {
            ""
        };
        let want = format!(
            "Received: from client.example.net (client.example.net [192.0.2.10])\r\n\
             {using}\tby mx.example.com (Sluice) with ESMTPS id {QID}\r\n\
             \tfor <b@example.org>; {DATE}\r\n"
        );
        assert!(text(&out).starts_with(&want), "{}", text(&out));
    }
}

/// TLS and AUTH together: `with ESMTPSA` (RFC 3848), the TLS clause first
/// and then `(Authenticated sender: …)`, in the order of Postfix's
/// smtpd.c; a login without the header still says ESMTPSA.
#[test]
fn received_header_under_tls_after_login() {
    let info = sluice_protocols::smtp::server::TlsInfo {
        protocol: "TLSv1.3".into(),
        cipher: "TLS_AES_128_GCM_SHA256".into(),
        bits: 128,
        ..Default::default()
    };
    let c = esmtp_client();
    for sender in [Some("jane"), None] {
        let mut env = envelope("a@example.net", &["b@example.org"]);
        let out = cleanup_with_date(
            &params(),
            CleanupInput {
                qid: QID,
                arrival_secs: ARRIVAL,
                origin: Origin::Smtp { client: &c },
                envelope: &mut env,
                content: b"Subject: x\r\n",
                authenticated: true,
                authenticated_sender: sender,
                tls: Some(super::ReceivedTls {
                    info: &info,
                    clause: true,
                }),
                rewrite_client: false,
            },
            DATE,
        )
        .expect("accepted");
        let login = sender.map_or(String::new(), |s| {
            format!("\t(Authenticated sender: {s})\r\n")
        });
        let want = format!(
            "Received: from client.example.net (client.example.net [192.0.2.10])\r\n\
             \t(using TLSv1.3 with cipher TLS_AES_128_GCM_SHA256 (128/128 bits))\r\n\
             \t(No client certificate requested)\r\n\
             {login}\tby mx.example.com (Sluice) with ESMTPSA id {QID}\r\n\
             \tfor <b@example.org>; {DATE}\r\n"
        );
        assert!(text(&out).starts_with(&want), "{}", text(&out));
    }
}
