//! End to end: a real `sluice` on loopback, spoken to with raw sockets.

mod common;
use common::*;

#[test]
fn greeting_ehlo_and_a_queued_message() {
    let mut inst = Instance::new("basic", "");
    inst.start();
    let mut c = inst.connect();
    assert_eq!(c.reply(), "220 mx.example.test ESMTP Sluice");
    let ehlo = c.cmd("EHLO client.example.org");
    assert_eq!(
        ehlo,
        "250-mx.example.test\n250-PIPELINING\n250-SIZE 10240000\n250-VRFY\n250-ETRN\n\
         250-ENHANCEDSTATUSCODES\n250-8BITMIME\n250-DSN\n250-SMTPUTF8\n250 CHUNKING"
    );
    let r = c.send_mail(
        "alice@example.org",
        &["bob@example.net"],
        b"Subject: hello\r\n\r\nHi Bob.\r\n..dot line\r\n",
    );
    let qid = queued_as(&r).unwrap_or_else(|| panic!("not queued: {r}"));
    assert!(
        qid.len() <= 17 && qid.chars().all(|c| c.is_ascii_alphanumeric()),
        "{qid}"
    );
    assert_eq!(c.cmd("QUIT"), "221 2.0.0 Bye");

    // The daemon lists it over its control socket…
    let json = inst.queue_json();
    assert_eq!(json.len(), 1, "{json:?}");
    assert!(
        json[0].contains(&format!("\"queue_id\": \"{qid}\"")),
        "{}",
        json[0]
    );
    assert!(
        json[0].contains("\"sender\": \"alice@example.org\""),
        "{}",
        json[0]
    );
    assert!(
        json[0].contains("\"address\": \"bob@example.net\""),
        "{}",
        json[0]
    );
    let p = inst.sluice(&["postqueue", "-p"]);
    let text = String::from_utf8_lossy(&p.stdout);
    assert!(
        text.starts_with(
            "----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(&qid) && text.trim_end().ends_with("in 1 Request."),
        "{text}"
    );

    // …and after a clean stop the log has it, with cleanup's headers.
    assert!(inst.stop().success());
    let q = read_queue(&inst.queue_dir());
    assert_eq!(q.len(), 1);
    let (id, sender, rcpts, content) = &q[0];
    assert_eq!(id, &qid);
    assert_eq!(sender, "alice@example.org");
    assert_eq!(rcpts, &vec!["bob@example.net".to_string()]);
    let text = String::from_utf8_lossy(content);
    assert!(text.starts_with("Received: from client.example.org (localhost [127.0.0.1])\r\n\tby mx.example.test (Sluice) with ESMTP id "), "{text}");
    assert!(text.contains("\tfor <bob@example.net>; "), "{text}");
    assert!(
        text.contains("\r\nMessage-Id: <") || text.contains("\r\nMessage-ID: <"),
        "{text}"
    );
    assert!(
        text.contains("\r\nDate: ") && text.contains("\r\nFrom: "),
        "{text}"
    );
    assert_eq!(body_of(content), b"Hi Bob.\r\n.dot line\r\n");
    // And mailq still answers with the daemon down.
    let json2 = inst.queue_json();
    assert_eq!(json2, json);
    assert!(
        inst.log().contains(&format!("{qid}: message-id=<")),
        "{}",
        inst.log()
    );
}

#[test]
fn relay_control_and_limits() {
    // 127.0.0.1 is outside mynetworks here, so it may only send to us.
    let mut inst = Instance::new(
        "relay",
        "mynetworks = 10.0.0.0/8\nmydestination = $myhostname, example.test\n\
         smtpd_recipient_limit = 2\nmessage_size_limit = 2000\nsmtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
    );
    inst.start();
    let mut c = inst.connect();
    c.reply();
    c.cmd("EHLO outsider.example.org");
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.org> SIZE=5000"),
        "552 5.3.4 Message size exceeds fixed limit"
    );
    assert_eq!(c.cmd("MAIL FROM:<a@example.org> SIZE=100"), "250 2.1.0 Ok");
    assert_eq!(
        c.cmd("RCPT TO:<x@elsewhere.org>"),
        "554 5.7.1 <x@elsewhere.org>: Relay access denied"
    );
    assert_eq!(c.cmd("RCPT TO:<u1@example.test>"), "250 2.1.5 Ok");
    assert_eq!(c.cmd("RCPT TO:<u2@example.test>"), "250 2.1.5 Ok");
    assert_eq!(
        c.cmd("RCPT TO:<u3@example.test>"),
        "452 4.5.3 Error: too many recipients"
    );
    assert!(c.cmd("DATA").starts_with("354"));
    let big = vec![b'x'; 100];
    for _ in 0..40 {
        c.send(&big);
        c.send(b"\r\n");
    }
    c.send(b".\r\n");
    assert_eq!(c.reply(), "552 5.3.4 Error: message file too big");
    // The session goes on after the refusal.
    assert_eq!(c.cmd("RSET"), "250 2.0.0 Ok");
    assert_eq!(c.cmd("QUIT"), "221 2.0.0 Bye");
    assert!(inst.stop().success());
    assert!(read_queue(&inst.queue_dir()).is_empty());
    assert!(inst.log().contains("NOQUEUE: reject: RCPT from localhost[127.0.0.1]: 554 5.7.1 <x@elsewhere.org>: Relay access denied"), "{}", inst.log());
}

#[test]
fn smuggled_end_of_data_is_content() {
    let mut inst = Instance::new("smuggle", "");
    inst.start();
    let mut c = inst.connect();
    c.reply();
    c.cmd("EHLO client.example.org");
    c.cmd("MAIL FROM:<a@example.org>");
    c.cmd("RCPT TO:<b@example.net>");
    assert!(c.cmd("DATA").starts_with("354"));
    // Each of these would end DATA on a lax server; here all are content.
    c.send(b"Subject: s\r\n\r\nline\n.\nMAIL FROM:<evil@x>\r\nmore\r.\rRCPT TO:<y@z>\r\n.\nx\n.\r\nend");
    c.send(b"\r\n.\r\n");
    let r = c.reply();
    let qid = queued_as(&r).unwrap_or_else(|| panic!("{r}"));
    // Nothing was smuggled: the next command is answered as a command.
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok");
    c.cmd("QUIT");
    assert!(inst.stop().success());
    let q = read_queue(&inst.queue_dir());
    assert_eq!(q.len(), 1, "exactly one message, no smuggled second one");
    assert_eq!(q[0].0, qid);
    let body = String::from_utf8_lossy(body_of(&q[0].3)).into_owned();
    assert!(
        body.contains("MAIL FROM:<evil@x>")
            && body.contains("RCPT TO:<y@z>")
            && body.ends_with("end\r\n"),
        "{body:?}"
    );
}

#[test]
fn bare_newline_reject_mode() {
    let mut inst = Instance::new("bare-reject", "smtpd_forbid_bare_newline = reject");
    inst.start();
    let mut c = inst.connect();
    c.reply();
    c.cmd("EHLO client.example.org");
    c.cmd("MAIL FROM:<a@example.org>");
    c.cmd("RCPT TO:<b@example.net>");
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: s\r\n\r\nline\n.\nmore\r\n.\r\n");
    let r = c.reply();
    assert!(r.starts_with("550 5.5.2"), "{r}");
    c.cmd("QUIT");
    assert!(inst.stop().success());
    assert!(read_queue(&inst.queue_dir()).is_empty());
}

#[test]
fn pipelining_after_data_is_refused() {
    let mut inst = Instance::new("pipe", "");
    inst.start();
    let mut c = inst.connect();
    c.reply();
    c.cmd("EHLO client.example.org");
    // MAIL and RCPT may be pipelined (PIPELINING); content right after DATA may not.
    c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n");
    assert_eq!(c.reply(), "250 2.1.0 Ok");
    assert_eq!(c.reply(), "250 2.1.5 Ok");
    let r = c.reply();
    assert!(r.starts_with("554 5.5.0"), "{r}");
    drop(c);
    assert!(inst.stop().success());
    assert!(read_queue(&inst.queue_dir()).is_empty());
}

#[test]
fn bdat_chunks() {
    let mut inst = Instance::new("bdat", "");
    inst.start();
    let mut c = inst.connect();
    c.reply();
    c.cmd("EHLO client.example.org");
    c.cmd("MAIL FROM:<a@example.org>");
    c.cmd("RCPT TO:<b@example.net>");
    let part1 = b"Subject: chunked\r\n\r\nfirst ";
    let part2 = b"second\r\n.\r\n";
    c.send(format!("BDAT {}\r\n", part1.len()).as_bytes());
    c.send(part1);
    assert_eq!(c.reply(), format!("250 2.0.0 Ok: {} bytes", part1.len()));
    c.send(format!("BDAT {} LAST\r\n", part2.len()).as_bytes());
    c.send(part2);
    let r = c.reply();
    let qid = queued_as(&r).unwrap_or_else(|| panic!("not queued: {r}"));
    c.cmd("QUIT");
    assert!(inst.stop().success());
    let q = read_queue(&inst.queue_dir());
    assert_eq!(q[0].0, qid);
    assert_eq!(body_of(&q[0].3), b"first second\r\n.\r\n");
}

#[test]
fn too_many_hops() {
    let mut inst = Instance::new("hops", "hopcount_limit = 3");
    inst.start();
    let mut c = inst.connect();
    c.reply();
    c.cmd("EHLO client.example.org");
    let hdrs = "Received: from a\r\nReceived: from b\r\nReceived: from c\r\nReceived: from d\r\n\r\nbody\r\n";
    let r = c.send_mail("a@example.org", &["b@example.net"], hdrs.as_bytes());
    assert_eq!(r, "554 5.4.0 Error: too many hops");
    c.cmd("QUIT");
    assert!(inst.stop().success());
    assert!(read_queue(&inst.queue_dir()).is_empty());
}

#[test]
fn idle_client_times_out() {
    let mut inst = Instance::new("timeout", "smtpd_timeout = 1s");
    inst.start();
    let mut c = inst.connect();
    c.reply();
    c.cmd("EHLO client.example.org");
    let t = std::time::Instant::now();
    assert_eq!(
        c.reply(),
        "421 4.4.2 mx.example.test Error: timeout exceeded"
    );
    assert!(t.elapsed() >= std::time::Duration::from_millis(900));
    assert!(c.closed());
    assert!(inst.stop().success());
    assert!(
        inst.log()
            .contains("timeout after EHLO from localhost[127.0.0.1]"),
        "{}",
        inst.log()
    );
}
