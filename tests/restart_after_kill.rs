//! An immediate restart after SIGKILL. The killed daemon's listening
//! sockets outlive it for a moment (io_uring tears down asynchronously),
//! so the new one must wait for them instead of failing with "address
//! already in use"; and it is ready only once its own listeners accept.

mod common;
use common::*;

/// Kill-and-restart rounds; each must start and accept mail.
const ROUNDS: usize = 8;
/// Sessions open (in DATA) when the daemon is killed.
const OPEN_SESSIONS: usize = 4;

/// Open `n` sessions, each halfway through a message.
fn sessions_in_data(inst: &Instance, n: usize) -> Vec<Client> {
    (0..n)
        .map(|i| {
            let mut c = inst.connect();
            assert!(c.reply().starts_with("220 "));
            c.cmd("EHLO load.example.org");
            c.cmd(&format!("MAIL FROM:<load{i}@example.org>"));
            c.cmd("RCPT TO:<sink@example.net>");
            assert!(c.cmd("DATA").starts_with("354"));
            c.send(b"Subject: cut short\r\n\r\nhalf a message");
            c
        })
        .collect()
}

#[test]
fn restart_right_after_sigkill_succeeds_every_time() {
    let mut inst = Instance::new("restart", "");
    inst.start();
    let mut queued = Vec::new();
    for round in 0..ROUNDS {
        let open = sessions_in_data(&inst, OPEN_SESSIONS);
        inst.kill();
        drop(open);
        // start() fails the test if the daemon exits during start-up.
        inst.start();
        let qid = inst.submit(
            "a@example.org",
            &["b@example.net"],
            &format!("Subject: round {round}\r\n\r\nx\r\n"),
        );
        queued.push(qid);
    }
    let log = inst.log();
    assert!(!log.contains("fatal:"), "{log}");
    let mailq = inst.mailq();
    for qid in &queued {
        assert!(mailq.contains(qid.as_str()), "{qid} missing:\n{mailq}");
    }
    assert!(inst.stop().success());
}
