//! `sluice sendmail` end to end: mail submitted while the daemon is down
//! waits in maildrop/ and is delivered once it starts; the usage, no
//! recipient and configuration failures exit with their sysexits codes
//! and Postfix's texts; `-bs` speaks SMTP on stdio.

mod common;
use common::*;

use std::process::Command;
use std::time::Duration;

/// How long delivery to the loopback sink may take (pickup scan, queue
/// manager, one SMTP session; generous for a loaded 2-core machine).
const DELIVERY: Duration = Duration::from_secs(30);

fn uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

/// `sendmail -t` while the daemon is down: the message waits in the
/// maildrop, then the started daemon picks it up and relays it with the
/// header recipients as the envelope and pickup's Received: header.
#[test]
fn sendmail_t_while_down_is_delivered_after_start() {
    let sink = start_sink(|_| {});
    let mut inst = Instance::new("sm-t", &relay_to(sink.addr().port()));
    let message = "From: Alice <alice@example.com>\n\
                   To: Bob <bob@example.org>, carol@example.net\n\
                   Cc: dave@example.org\n\
                   Subject: submitted while down\n\
                   \n\
                   first line of the body\n\
                   .leading dot\n";
    let out = inst.sluice_input(
        &["sendmail", "-t", "-i", "-f", "alice@example.com"],
        message.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(0), "sendmail -t: {}", show(&out));
    assert!(out.stderr.is_empty(), "sendmail said: {}", show(&out));
    let maildrop = inst.queue_dir().join("maildrop");
    let files = std::fs::read_dir(&maildrop)
        .map(|d| d.flatten().count())
        .unwrap_or(0);
    assert_eq!(files, 1, "one file in {}", maildrop.display());

    inst.start();
    assert!(
        sink.wait_for(1, DELIVERY),
        "the sink got nothing; daemon log:\n{}",
        inst.log()
    );
    let got = sink.received();
    assert_eq!(got.len(), 1, "exactly one message relayed");
    let m = &got[0];
    assert_eq!(m.mail_from, "alice@example.com");
    let mut rcpts = m.rcpt_to.clone();
    rcpts.sort();
    assert_eq!(
        rcpts,
        ["bob@example.org", "carol@example.net", "dave@example.org"],
        "envelope recipients from To: and Cc:"
    );
    let content = String::from_utf8_lossy(&m.content);
    let received = format!(
        "Received: by mx.example.test (Sluice, from userid {})",
        uid()
    );
    assert!(
        content.starts_with(&received),
        "pickup's Received: header first; content:\n{content}"
    );
    assert!(
        content.contains("\tid "),
        "Received: has `id QID`:\n{content}"
    );
    assert!(
        content.contains("Subject: submitted while down\r\n"),
        "{content}"
    );
    assert!(
        content.contains("\r\n\r\nfirst line of the body\r\n.leading dot\r\n"),
        "body intact, with CRLF, the dot line kept under -i:\n{content}"
    );
    // The maildrop file is gone and the queue is empty.
    assert!(
        wait_until(Duration::from_secs(10), || {
            inst.queue_json().is_empty()
                && std::fs::read_dir(&maildrop).map_or(true, |d| d.flatten().count() == 0)
        }),
        "queue not empty after delivery: {:?}",
        inst.queue_json()
    );
    let log = inst.log();
    assert!(
        log.contains(&format!("uid={} from=<alice@example.com>", uid())),
        "{log}"
    );
    assert!(log.contains("status=sent"), "{log}");
    inst.stop();
}

/// Without -t and without recipients: Postfix's text, exit 64, nothing
/// queued. With -t but no recipient headers: the other text.
#[test]
fn no_recipients_is_a_usage_error() {
    let inst = Instance::new("sm-norcpt", "");
    let out = inst.sluice_input(
        &["sendmail", "-f", "a@example.com"],
        b"Subject: x\n\nbody\n",
    );
    assert_eq!(out.status.code(), Some(64), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "sendmail: fatal: Recipient addresses must be specified on the command line or via the -t option\n"
    );
    let out = inst.sluice_input(
        &["sendmail", "-t", "-f", "a@example.com"],
        b"From: a@example.com\nSubject: no To\n\nbody\n",
    );
    assert_eq!(out.status.code(), Some(64), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("sendmail: fatal: a@example.com(")
            && err.ends_with("): No recipient addresses found in message header\n"),
        "{err}"
    );
    let maildrop = inst.queue_dir().join("maildrop");
    let files = std::fs::read_dir(&maildrop).map_or(0, |d| d.flatten().count());
    assert_eq!(files, 0, "nothing deposited");
}

#[test]
fn a_bad_option_is_a_usage_error() {
    let inst = Instance::new("sm-badopt", "");
    let out = inst.sluice_input(&["sendmail", "-k", "bob@example.org"], b"");
    assert_eq!(out.status.code(), Some(64), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "sendmail: invalid option -- 'k'\nsendmail: fatal: usage: sendmail [options]\n"
    );
    // Postfix: other -b<c> is fatal "unsupported".
    let out = inst.sluice_input(&["sendmail", "-bq"], b"");
    assert_eq!(out.status.code(), Some(64), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sendmail: fatal: unsupported: -bq"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_broken_config_exits_78() {
    // A line that is not `name = value`.
    let inst = Instance::new("sm-badcf", "this line is not a parameter");
    let out = inst.sluice_input(&["sendmail", "bob@example.org"], b"Subject: x\n\nbody\n");
    assert_eq!(out.status.code(), Some(78), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("sendmail: fatal: "), "{err}");
    assert!(err.contains("main.cf"), "the error names the file: {err}");

    // main.cf that cannot be read (a directory: root reads any file).
    let dir = TempDir::new("sm-unreadable");
    std::fs::create_dir(dir.path().join("main.cf")).unwrap();
    let mut cmd = Command::new(SLUICE);
    cmd.arg("sendmail")
        .arg("-C")
        .arg(dir.path())
        .arg("bob@example.org");
    let out = run_with_input(cmd, b"Subject: x\n\nbody\n", Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(78), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("sendmail: fatal: "),
        "{}",
        show(&out)
    );
}

/// argv[0] `sendmail` (an install-links symlink) takes -C for the config.
#[test]
fn sendmail_symlink_with_dash_c() {
    let inst = Instance::new("sm-link", "");
    let links = TempDir::new("sm-links");
    let out = inst.sluice(&["install-links", links.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", show(&out));
    let mut cmd = Command::new(links.path().join("sendmail"));
    cmd.arg("-C")
        .arg(inst.config_dir())
        .arg("-f")
        .arg("alice@example.com")
        .arg("bob@example.org");
    let out = run_with_input(
        cmd,
        b"Subject: via the symlink\n\nbody\n",
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let files =
        std::fs::read_dir(inst.queue_dir().join("maildrop")).map_or(0, |d| d.flatten().count());
    assert_eq!(files, 1, "one maildrop file");
}

/// `sendmail -bs`: an SMTP session on stdin/stdout; the message lands in
/// the maildrop under the ID it announced, and is listed by mailq.
#[test]
fn bs_session_on_stdio() {
    let mut inst = Instance::new("sm-bs", "");
    let script = "EHLO local.example\r\n\
                  MAIL FROM:<alice@example.com>\r\n\
                  RCPT TO:<bob@example.org>\r\n\
                  DATA\r\n\
                  Subject: over -bs\r\n\
                  \r\n\
                  hello\r\n\
                  .\r\n\
                  QUIT\r\n";
    let out = inst.sluice_input(&["sendmail", "-bs"], script.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(
        lines.first().copied(),
        Some("220 mx.example.test ESMTP Sluice"),
        "{text}"
    );
    assert!(lines.contains(&"250-mx.example.test"), "{text}");
    assert!(lines.contains(&"250 2.1.0 Ok"), "{text}");
    assert!(lines.contains(&"250 2.1.5 Ok"), "{text}");
    assert!(
        lines.contains(&"354 End data with <CR><LF>.<CR><LF>"),
        "{text}"
    );
    assert_eq!(lines.last().copied(), Some("221 2.0.0 Bye"), "{text}");
    let qid = lines
        .iter()
        .find_map(|l| queued_as(l))
        .unwrap_or_else(|| panic!("no `queued as`: {text}"));
    let maildrop = inst.queue_dir().join("maildrop");
    assert!(
        maildrop.join(&qid).exists(),
        "maildrop/{qid} exists: {:?}",
        std::fs::read_dir(&maildrop)
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );

    // Picked up once the daemon starts (mail stays queued: smtp is deferred).
    inst.start();
    assert!(
        wait_until(Duration::from_secs(20), || inst.queue_json().len() == 1
            && !maildrop.join(&qid).exists()),
        "picked up: {:?}\n{}",
        inst.queue_json(),
        inst.log()
    );
    let q = inst.queue_json();
    assert!(q[0].contains("\"sender\": \"alice@example.com\""), "{q:?}");
    assert!(q[0].contains("\"address\": \"bob@example.org\""), "{q:?}");
    inst.stop();
}

/// A malformed maildrop file is moved aside with a log line, never retried
/// forever and never lost silently; good files next to it are queued.
#[test]
fn a_malformed_maildrop_file_is_moved_aside() {
    let mut inst = Instance::new("maildrop-bad", "");
    // A good submission while the daemon is down, and a damaged file.
    let mut cmd = std::process::Command::new(SLUICE);
    cmd.args(["sendmail", "-C"]).arg(inst.config_dir()).args([
        "-f",
        "alice@example.org",
        "bob@example.net",
    ]);
    let out = run_with_input(
        cmd,
        b"Subject: good\n\nfine\n",
        std::time::Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let maildrop = inst.queue_dir().join("maildrop");
    std::fs::write(
        maildrop.join("1700000000.000001.1.0"),
        b"\xA7SLd garbage that is no maildrop file",
    )
    .unwrap();
    inst.start();
    let bad_dir = inst.queue_dir().join("maildrop-bad");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while std::time::Instant::now() < deadline
        && (std::fs::read_dir(&bad_dir).map_or(0, |d| d.count()) == 0
            || std::fs::read_dir(&maildrop).map_or(1, |d| d.count()) > 0)
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        std::fs::read_dir(&maildrop).unwrap().count(),
        0,
        "maildrop/ emptied"
    );
    assert_eq!(
        std::fs::read_dir(&bad_dir).unwrap().count(),
        1,
        "the damaged file kept aside"
    );
    let json = inst.queue_json();
    assert_eq!(json.len(), 1, "the good message is queued: {json:?}");
    assert!(inst.stop().success());
    assert!(inst.log().contains("moved to"), "{}", inst.log());
}
