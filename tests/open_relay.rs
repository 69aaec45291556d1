//! Open relay through routed and domain-less recipients (issue 7): a
//! client outside mynetworks may not relay with `far!u`, `u%far`,
//! `"u@far"`, `u%far@[our ip]` or any other of nmap's smtp-open-relay
//! forms, while it may still mail our own and our relay domains, and a
//! mynetworks client may still relay.
//!
//! The client is Python's smtplib (its `docmd`, so that the recipient goes
//! out byte for byte, quotes included), bound to 127.0.0.5: a loopback
//! address outside `mynetworks = 127.0.0.1/32`. The last test runs nmap's
//! own smtp-open-relay script; it fails when nmap is missing (.ci/run
//! installs it).

mod common;
use common::*;

use std::process::Command;
use std::time::Duration;

/// A loopback address outside the instances' mynetworks.
const STRANGER: &str = "127.0.0.5";
/// What nmap's script calls the foreign domain.
const FAR: &str = "foreign.example";
/// The harness's myhostname (in the default mydestination).
const MYHOSTNAME: &str = "mx.example.test";

/// nmap's 16 smtp-open-relay recipients (smtp-open-relay.nse, `tests`),
/// with `ip` our own address and `srv` the name in our banner, then the
/// same tricks against a domain that is not ours.
fn relay_attempts(ip: &str, srv: &str) -> Vec<String> {
    let mut v = vec![
        format!("relaytest@{FAR}"),
        format!("relaytest%{FAR}@[{ip}]"),
        format!("relaytest%{FAR}@{srv}"),
        format!("\"relaytest@{FAR}\""),
        format!("\"relaytest%{FAR}\""),
        format!("relaytest@{FAR}@[{ip}]"),
        format!("\"relaytest@{FAR}\"@[{ip}]"),
        format!("relaytest@{FAR}@{srv}"),
        format!("@[{ip}]:relaytest@{FAR}"),
        format!("@{srv}:relaytest@{FAR}"),
        format!("{FAR}!relaytest"),
        format!("{FAR}!relaytest@[{ip}]"),
        format!("{FAR}!relaytest@{srv}"),
        // The issue's own form, and a bang path inside quotes.
        format!("relaytest%{FAR}"),
        format!("\"{FAR}!relaytest\""),
    ];
    for other in ["other.example", srv] {
        v.push(format!("@{other}:u@{FAR}"));
        v.push(format!("\"u@{FAR}\"@{other}"));
        v.push(format!("u%{FAR}@{other}"));
        v.push(format!("{FAR}!u@{other}"));
    }
    v
}

/// One connection per recipient from `source` (empty: the default,
/// 127.0.0.1): MAIL, RCPT, DATA. (One session would reach
/// smtpd_hard_error_limit.) Returns, per recipient, the RCPT reply and
/// DATA's final code.
fn probe(port: u16, source: &str, rcpts: &[String]) -> Vec<(String, u16)> {
    const SCRIPT: &str = r#"
import smtplib, sys
port, source = int(sys.argv[1]), sys.argv[2]
rcpts = [l for l in sys.stdin.read().split("\n") if l]
src = (source, 0) if source else None
for r in rcpts:
    with smtplib.SMTP("127.0.0.1", port, timeout=30, source_address=src) as s:
        s.ehlo("client.example")
        code, msg = s.docmd("MAIL", "FROM:<antispam@[127.0.0.5]>")
        assert code == 250, (code, msg)
        code, msg = s.docmd("RCPT", "TO:<%s>" % r)
        try:
            done = s.data(b"Subject: open relay probe\r\n\r\nprobe\r\n")[0]
        except smtplib.SMTPDataError as e:
            done = e.smtp_code
        print("%d %s\t%d" % (code, msg.decode(), done))
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", SCRIPT, &port.to_string(), source]);
    let out = run_with_input(cmd, rcpts.join("\n").as_bytes(), Duration::from_secs(60));
    assert!(out.status.success(), "smtplib: {}", show(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let replies: Vec<(String, u16)> = text
        .lines()
        .map(|l| {
            let (reply, data) = l.rsplit_once('\t').unwrap();
            (reply.to_string(), data.parse().unwrap())
        })
        .collect();
    assert_eq!(replies.len(), rcpts.len(), "{text}");
    replies
}

/// An instance that trusts only 127.0.0.1 and relays for relay.test
/// (mail stays queued: nothing is delivered anywhere).
fn instance(tag: &str, extra: &str) -> Instance {
    let mut inst = Instance::new(
        tag,
        &format!(
            "mynetworks = 127.0.0.1/32\nrelay_domains = relay.test\n\
             defer_transports = smtp, relay, local\n{extra}"
        ),
    );
    inst.start();
    inst
}

/// Postfix's answer to a refused relay attempt, with the address as the
/// client gave it (smtpd drops a source route before anything else). An
/// unquoted local part with `@` in it fails smtpd's syntax check first.
fn denied(code: &str, rcpt: &str) -> String {
    let shown = match rcpt.strip_prefix('@') {
        Some(routed) => &routed[routed.find(':').unwrap() + 1..],
        None => rcpt,
    };
    if !shown.starts_with('"') && shown.matches('@').count() > 1 {
        return "501 5.1.3 Bad recipient address syntax".to_string();
    }
    let enhanced = if code == "554" { "5.7.1" } else { "4.7.1" };
    format!("{code} {enhanced} <{shown}>: Relay access denied")
}

/// Every attempt is refused with `code`, and DATA then has no recipient.
fn assert_all_refused(port: u16, code: &str, attempts: &[String]) {
    let replies = probe(port, STRANGER, attempts);
    let mut wrong = Vec::new();
    for (rcpt, (reply, data)) in attempts.iter().zip(&replies) {
        if *reply != denied(code, rcpt) || *data != 554 {
            wrong.push(format!("RCPT TO:<{rcpt}> -> {reply} (DATA -> {data})"));
        }
    }
    assert!(wrong.is_empty(), "not refused:\n{}", wrong.join("\n"));
}

#[test]
fn routed_recipients_from_a_stranger_are_relay_access_denied() {
    let mut inst = instance(
        "open-relay-554",
        "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n",
    );
    assert_all_refused(inst.port, "554", &relay_attempts("127.0.0.1", MYHOSTNAME));

    // Positive controls: the stranger may mail our own and our relay
    // domains, however it spells them; a mynetworks client may relay.
    let ours = [
        "postmaster@mx.example.test",
        "postmaster%mx.example.test",
        "localhost!postmaster",
        "u@relay.test",
        "u%relay.test@[127.0.0.1]",
        "\"u@relay.test\"@mx.example.test",
    ]
    .map(String::from);
    for (rcpt, (reply, data)) in ours.iter().zip(probe(inst.port, STRANGER, &ours)) {
        assert_eq!((reply.as_str(), data), ("250 2.1.5 Ok", 250), "{rcpt}");
    }
    let trusted = [format!("relaytest%{FAR}"), format!("{FAR}!relaytest")];
    for (rcpt, (reply, data)) in trusted.iter().zip(probe(inst.port, "", &trusted)) {
        assert_eq!((reply.as_str(), data), ("250 2.1.5 Ok", 250), "{rcpt}");
    }
    assert!(inst.stop().success());

    // Nothing else was queued, and the queued addresses are in the
    // standard form that delivery resolves.
    let mut queued: Vec<String> = read_queue(&inst.queue_dir())
        .into_iter()
        .flat_map(|(_, _, rcpts, _)| rcpts)
        .collect();
    queued.sort();
    let mut want = vec![
        "\"u@relay.test\"@mx.example.test",
        "postmaster@localhost",
        "postmaster@mx.example.test",
        "postmaster@mx.example.test",
        "relaytest@foreign.example",
        "relaytest@foreign.example",
        "u%relay.test@[127.0.0.1]",
        "u@relay.test",
    ];
    want.sort();
    assert_eq!(queued, want);
    let log = inst.log();
    assert!(
        log.contains("NOQUEUE: reject: RCPT from localhost[127.0.0.5]: 554 5.7.1 <foreign.example!relaytest>: Relay access denied;"),
        "{log}"
    );
}

#[test]
fn default_restrictions_and_another_mydestination_defer_the_same_attempts() {
    let mut inst = instance("open-relay-454", "mydestination = local.test\n");
    let attempts: Vec<String> = relay_attempts("127.0.0.1", "local.test");
    assert_all_refused(inst.port, "454", &attempts);
    assert!(inst.stop().success());
    assert!(read_queue(&inst.queue_dir()).is_empty());
}

/// nmap's smtp-open-relay, run against a daemon that trusts nobody on
/// 127.0.0.1 (mynetworks = 127.0.0.2/32), so nmap's connection is a
/// stranger's. `ip` is our own address: the `@[ip]` forms then name a
/// local domain, the case that needs routing to see through.
#[test]
fn nmap_smtp_open_relay_finds_no_open_relay() {
    assert!(
        have_program("nmap"),
        "nmap is not installed: this test needs it (apt-get install nmap; .ci/run does)"
    );
    let mut inst = Instance::new(
        "open-relay-nmap",
        "mynetworks = 127.0.0.2/32\nsmtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n",
    );
    inst.start();
    let port = inst.port.to_string();
    let out = Command::new("nmap")
        .args(["-Pn", "-n", "-p", &port, "--script", "+smtp-open-relay"])
        .arg(format!(
            "--script-args=smtp-open-relay.domain={FAR},smtp-open-relay.ip=127.0.0.1"
        ))
        .arg("127.0.0.1")
        .output()
        .expect("run nmap");
    let text = show(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Server doesn't seem to be an open relay, all tests failed"),
        "{text}\n--- daemon log\n{}",
        inst.log()
    );
    assert!(!text.contains("is an open relay"), "{text}");
    assert!(inst.stop().success());
    assert!(read_queue(&inst.queue_dir()).is_empty());
}
