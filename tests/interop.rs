//! Interoperability with independent SMTP implementations: swaks and
//! Postfix's smtp-source as clients of Sluice's smtpd, Postfix's
//! smtp-sink as the next hop of Sluice's smtp client. A test whose
//! program is not installed fails, saying so; `.ci/run` installs them.

mod common;
use common::*;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The program's path; a missing program fails the test (it must never
/// pass without having run).
fn require(program: &str, fallback: &str) -> String {
    if have_program(program) {
        program.to_string()
    } else if have_program(fallback) {
        fallback.to_string()
    } else {
        panic!("{program} is not installed: this test needs it (.ci/run installs it)");
    }
}

fn swaks(inst: &Instance, extra: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(require("swaks", "/usr/bin/swaks"));
    cmd.args(["--server", "127.0.0.1", "--port", &inst.port.to_string()])
        .args(["--ehlo", "swaks.example.test", "--timeout", "30"])
        .args(extra);
    run_with_input(cmd, b"", Duration::from_secs(60))
}

/// swaks, plain and pipelined, one and several recipients; every message
/// is queued with the envelope swaks sent.
#[test]
fn swaks_sends_to_sluice() {
    let mut inst = Instance::new("swaks", "");
    inst.start();

    let out = swaks(
        &inst,
        &[
            "--from",
            "alice@example.com",
            "--to",
            "bob@example.org",
            "--header",
            "Subject: from swaks",
            "--body",
            "plain body",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "swaks: {}", show(&out));
    let transcript = text(&out.stdout);
    assert!(
        transcript.contains("<-  220 mx.example.test ESMTP Sluice"),
        "{transcript}"
    );
    assert!(transcript.contains("<-  250-PIPELINING"), "{transcript}");
    assert!(transcript.contains("<-  250 2.1.0 Ok"), "{transcript}");
    assert!(
        transcript.contains("<-  354 End data with <CR><LF>.<CR><LF>"),
        "{transcript}"
    );
    let qid1 = transcript
        .lines()
        .find_map(|l| l.strip_prefix("<-  ").and_then(queued_as))
        .unwrap_or_else(|| panic!("no `queued as`: {transcript}"));
    assert!(transcript.contains("<-  221 2.0.0 Bye"), "{transcript}");

    let out = swaks(
        &inst,
        &[
            "--pipeline",
            "--from",
            "carol@example.com",
            "--to",
            "dave@example.org,erin@example.net",
            "--body",
            "pipelined body",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "swaks --pipeline: {}",
        show(&out)
    );
    let transcript = text(&out.stdout);
    let qid2 = transcript
        .lines()
        .find_map(|l| l.strip_prefix("<-  ").and_then(queued_as))
        .unwrap_or_else(|| panic!("no `queued as`: {transcript}"));

    // A recipient Sluice refuses: swaks reports the failure (exit 24:
    // "error after RCPT").
    let out = swaks(&inst, &["--from", "a@example.com", "--to", "<>"]);
    assert_eq!(
        out.status.code(),
        Some(24),
        "an empty RCPT must fail: {}",
        show(&out)
    );
    assert!(
        text(&out.stdout).contains("<** 501 5.1.3 Bad recipient address syntax"),
        "{}",
        show(&out)
    );

    inst.stop();
    let q = read_queue(&inst.queue_dir());
    assert_eq!(q.len(), 2, "two messages queued: {q:?}");
    let find = |qid: &str| {
        q.iter()
            .find(|m| m.0 == qid)
            .unwrap_or_else(|| panic!("{qid} not in the queue"))
    };
    let m1 = find(&qid1);
    assert_eq!(m1.1, "alice@example.com");
    assert_eq!(m1.2, ["bob@example.org"]);
    let c1 = text(&m1.3);
    assert!(c1.contains("Subject: from swaks\r\n"), "{c1}");
    assert!(c1.contains("\r\n\r\nplain body\r\n"), "{c1}");
    let m2 = find(&qid2);
    assert_eq!(m2.1, "carol@example.com");
    assert_eq!(m2.2, ["dave@example.org", "erin@example.net"]);
    assert!(text(&m2.3).contains("pipelined body"));
}

/// Postfix's smtp-source: many sessions at once, many messages each.
#[test]
fn smtp_source_sends_to_sluice() {
    let source = require("smtp-source", "/usr/sbin/smtp-source");
    let mut inst = Instance::new("smtp-source", "");
    inst.start();
    const MESSAGES: usize = 40;
    let mut cmd = Command::new(source);
    cmd.args([
        "-s",
        "4",
        "-m",
        &MESSAGES.to_string(),
        "-r",
        "2",
        "-l",
        "2048",
    ])
    .args(["-f", "source@example.com", "-t", "sink@example.org"])
    .args(["-M", "mx.example.test"])
    .arg(format!("127.0.0.1:{}", inst.port));
    let out = run_with_input(cmd, b"", Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(0), "smtp-source: {}", show(&out));
    assert!(
        wait_until(Duration::from_secs(20), || inst.queue_json().len()
            == MESSAGES),
        "{MESSAGES} queued; have {}",
        inst.queue_json().len()
    );
    inst.stop();
    let q = read_queue(&inst.queue_dir());
    assert_eq!(q.len(), MESSAGES);
    for m in &q {
        assert_eq!(m.1, "source@example.com");
        // -r 2: two recipients per message, numbered by smtp-source.
        assert_eq!(m.2.len(), 2, "{:?}", m.2);
        assert!(
            m.2.iter().all(|r| r.ends_with("sink@example.org")),
            "{:?}",
            m.2
        );
    }
    let log = inst.log();
    assert_eq!(
        log.matches(": client=localhost[127.0.0.1]").count(),
        MESSAGES,
        "one smtpd client= line per message:\n{log}"
    );
}

/// Postfix's smtp-sink, its `-c` counter read from stdout.
struct SmtpSink {
    child: Child,
    port: u16,
    output: Arc<Mutex<String>>,
}

impl SmtpSink {
    fn start(program: &str) -> SmtpSink {
        let port = free_port();
        let mut cmd = Command::new(program);
        cmd.arg("-c");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            // Required when run as root.
            cmd.args(["-u", "nobody"]);
        }
        let mut child = cmd
            .arg(format!("127.0.0.1:{port}"))
            .arg("64")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn smtp-sink");
        let output = Arc::new(Mutex::new(String::new()));
        for mut pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let sink = SmtpSink {
            child,
            port,
            output,
        };
        assert!(
            wait_until(Duration::from_secs(10), || std::net::TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "smtp-sink does not listen: {}",
            sink.output()
        );
        sink
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// The last `mesg=N` of the `-c` counter.
    fn messages(&self) -> usize {
        let out = self.output();
        out.rsplit("mesg=")
            .next()
            .filter(|_| out.contains("mesg="))
            .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sluice relays N messages to Postfix's smtp-sink, and they all arrive.
#[test]
fn sluice_relays_to_postfix_smtp_sink() {
    let program = require("smtp-sink", "/usr/sbin/smtp-sink");
    let sink = SmtpSink::start(&program);
    let mut inst = Instance::new("to-smtp-sink", &relay_to(sink.port));
    inst.start();
    // The probe connection above counts as a session, not a message.
    const MESSAGES: usize = 25;
    for i in 0..MESSAGES {
        inst.submit(
            "alice@example.com",
            &[&format!("user{i}@example.org")],
            &format!("Subject: relay {i}\r\n\r\nbody {i}\r\n"),
        );
    }
    assert!(
        wait_until(Duration::from_secs(60), || sink.messages() >= MESSAGES),
        "smtp-sink counted {} of {MESSAGES}; sink said: {:?}\nqueue: {:?}\nlog:\n{}",
        sink.messages(),
        sink.output(),
        inst.queue_json(),
        inst.log()
    );
    assert!(
        wait_until(Duration::from_secs(10), || inst.queue_json().is_empty()),
        "queue empty after delivery: {:?}",
        inst.queue_json()
    );
    let log = inst.log();
    let sent = log
        .lines()
        .filter(|l| {
            l.contains(&format!("relay=127.0.0.1[127.0.0.1]:{}", sink.port))
                && l.contains("status=sent (250 ")
        })
        .count();
    assert_eq!(sent, MESSAGES, "one status=sent line per message:\n{log}");
    assert_eq!(sink.messages(), MESSAGES, "no duplicates");
    inst.stop();
}
