//! `sluice postsuper` end to end: hold, release, delete by ID, `ALL` and
//! stdin, with the daemon running (over its control sockets) and stopped
//! (on the log directly); held mail is not delivered until released; the
//! per-message lines and summaries on stderr are Postfix's; non-root
//! callers are refused.

mod common;
use common::*;

use std::process::Command;
use std::time::Duration;

const ALICE: &str = "alice@example.com";

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Run postsuper, expect exit 0, return its stderr.
///
/// The `--` keeps clap (tools/src/cli.rs) from taking postsuper's `-h`
/// (hold) for its own help flag; clap drops it, and postsuper's getopt
/// would too. `dash_h_is_hold_not_help` tests the plain form.
fn postsuper(inst: &Instance, args: &[&str]) -> String {
    let mut v = vec!["postsuper", "--"];
    v.extend_from_slice(args);
    let out = inst.sluice(&v);
    assert_eq!(
        out.status.code(),
        Some(0),
        "postsuper {args:?}: {}",
        show(&out)
    );
    assert!(
        out.stdout.is_empty(),
        "postsuper prints on stderr only: {}",
        show(&out)
    );
    stderr(&out)
}

/// The mailq line of a message (the one starting with its ID).
fn mailq_line(mailq: &str, qid: &str) -> Option<String> {
    mailq
        .lines()
        .find(|l| l.starts_with(qid))
        .map(str::to_string)
}

/// Queue three messages (mail stays: smtp is deferred) and wait until the
/// queue manager has seen them all.
fn three_messages(inst: &Instance) -> Vec<String> {
    let ids: Vec<String> = (0..3)
        .map(|i| {
            inst.submit(
                ALICE,
                &["bob@example.org"],
                &format!("Subject: m{i}\r\n\r\nbody {i}\r\n"),
            )
        })
        .collect();
    assert!(
        wait_until(Duration::from_secs(20), || inst.queue_json().len() == 3),
        "three queued: {:?}",
        inst.queue_json()
    );
    ids
}

/// Hold, release, delete by ID / stdin / ALL against a running daemon.
#[test]
fn hold_release_delete_with_the_daemon_running() {
    let mut inst = Instance::new("ps-run", "");
    inst.start();
    let ids = three_messages(&inst);

    let err = postsuper(&inst, &["-h", &ids[0]]);
    assert_eq!(
        err,
        format!(
            "postsuper: {}: placed on hold\npostsuper: Placed on hold: 1 message\n",
            ids[0]
        )
    );
    assert_eq!(inst.queue_of(&ids[0]).as_deref(), Some("hold"));
    let q = inst.mailq();
    let line = mailq_line(&q, &ids[0]).unwrap_or_else(|| panic!("{} not listed:\n{q}", ids[0]));
    assert!(
        line.starts_with(&format!("{}! ", ids[0])) || line.starts_with(&format!("{}!", ids[0])),
        "`!` after a held ID: {line:?}"
    );
    for other in &ids[1..] {
        let l = mailq_line(&q, other).unwrap_or_else(|| panic!("{other} not listed:\n{q}"));
        assert!(!l.contains('!'), "only the held one is marked: {l:?}");
    }

    let err = postsuper(&inst, &["-H", &ids[0]]);
    assert_eq!(
        err,
        format!(
            "postsuper: {}: released from hold\npostsuper: Released from hold: 1 message\n",
            ids[0]
        )
    );
    assert_ne!(inst.queue_of(&ids[0]).as_deref(), Some("hold"));
    let q = inst.mailq();
    let line = mailq_line(&q, &ids[0]).unwrap_or_else(|| panic!("{} not listed:\n{q}", ids[0]));
    assert!(
        !line[..ids[0].len() + 1].contains('!'),
        "no `!` after release: {line:?}"
    );

    // Releasing what is not held: no line, a zero summary.
    let err = postsuper(&inst, &["-H", &ids[1]]);
    assert_eq!(err, "postsuper: Released from hold: 0 messages\n");

    // Delete by ID.
    let err = postsuper(&inst, &["-d", &ids[0]]);
    assert_eq!(
        err,
        format!(
            "postsuper: {}: removed\npostsuper: Deleted: 1 message\n",
            ids[0]
        )
    );
    assert_eq!(inst.queue_of(&ids[0]), None);

    // Delete from stdin (`-d -`). An empty line is an invalid ID, warned
    // about as Postfix's delete_one does.
    let out = inst.sluice_input(
        &["postsuper", "-d", "-"],
        format!("\n{}\n", ids[1]).as_bytes(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "postsuper: warning: invalid mail queue id: \n\
             postsuper: {}: removed\npostsuper: Deleted: 1 message\n",
            ids[1]
        )
    );

    // Hold the last one, then ALL deletes it from hold too, and a fresh one.
    let fourth = inst.submit(ALICE, &["carol@example.org"], "Subject: m3\r\n\r\nbody\r\n");
    assert!(wait_until(Duration::from_secs(20), || inst
        .queue_json()
        .len()
        == 2));
    postsuper(&inst, &["-h", &ids[2]]);
    // `all` is not `ALL`: it is a (well-formed, absent) queue ID.
    let err = postsuper(&inst, &["-d", "all"]);
    assert_eq!(err, "postsuper: Deleted: 0 messages\n");
    let err = postsuper(&inst, &["-d", "ALL"]);
    assert_eq!(
        err, "postsuper: Deleted: 2 messages\n",
        "ALL prints only the summary"
    );
    assert!(inst.queue_json().is_empty(), "{:?}", inst.queue_json());
    assert_eq!(inst.queue_of(&fourth), None);
    assert_eq!(inst.mailq(), "Mail queue is empty\n");

    // Nothing left: the summary still appears, with 0.
    let err = postsuper(&inst, &["-d", "ALL"]);
    assert_eq!(err, "postsuper: Deleted: 0 messages\n");

    // The deletions are in the log, not just in the daemon's memory.
    inst.stop();
    assert!(
        read_queue(&inst.queue_dir()).is_empty(),
        "the log holds nothing"
    );
}

/// The same operations with the daemon stopped: postsuper writes the log
/// itself, and the daemon started afterwards sees the result.
#[test]
fn hold_and_delete_with_the_daemon_stopped() {
    let mut inst = Instance::new("ps-stopped", "");
    inst.start();
    let ids = three_messages(&inst);
    inst.stop();

    let err = postsuper(&inst, &["-h", &ids[0], "-h", &ids[1]]);
    assert_eq!(
        err,
        format!(
            "postsuper: {}: placed on hold\npostsuper: {}: placed on hold\npostsuper: Placed on hold: 2 messages\n",
            ids[0], ids[1]
        )
    );
    let q = inst.mailq();
    for id in &ids[..2] {
        let l = mailq_line(&q, id).unwrap_or_else(|| panic!("{id} not listed:\n{q}"));
        assert!(
            l.starts_with(&format!("{id}!")),
            "held while stopped: {l:?}"
        );
    }
    let err = postsuper(&inst, &["-d", &ids[2]]);
    assert_eq!(
        err,
        format!(
            "postsuper: {}: removed\npostsuper: Deleted: 1 message\n",
            ids[2]
        )
    );

    inst.start();
    assert_eq!(inst.queue_of(&ids[0]).as_deref(), Some("hold"));
    assert_eq!(inst.queue_of(&ids[1]).as_deref(), Some("hold"));
    assert_eq!(
        inst.queue_of(&ids[2]),
        None,
        "deleted while stopped stays deleted"
    );
    let err = postsuper(&inst, &["-d", "ALL", "hold"]);
    assert_eq!(err, "postsuper: Deleted: 2 messages\n");
    assert!(inst.queue_json().is_empty());
    inst.stop();
}

/// Held mail is not delivered; released, it is.
#[test]
fn held_mail_waits_until_released() {
    let sink = start_sink(|_| {});
    // Fast retries from the start, but nothing leaves while smtp is deferred.
    let mut inst = Instance::new(
        "ps-deliver",
        "minimal_backoff_time = 1s\nmaximal_backoff_time = 2s\nqueue_run_delay = 1s",
    );
    inst.start();
    let qid = inst.submit(
        ALICE,
        &["bob@example.org"],
        "Subject: held\r\n\r\nheld body\r\n",
    );
    assert!(wait_until(Duration::from_secs(20), || inst
        .queue_of(&qid)
        .is_some()));
    let err = postsuper(&inst, &["-h", &qid]);
    assert!(
        err.ends_with("postsuper: Placed on hold: 1 message\n"),
        "{err}"
    );
    assert!(mailq_line(&inst.mailq(), &qid).is_some_and(|l| l.starts_with(&format!("{qid}!"))));
    inst.stop();

    // Now the same queue with a next hop that answers.
    inst.append_main_cf(&relay_to(sink.addr().port()));
    inst.start();
    // Several retry periods pass: nothing may leave the hold queue.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        sink.messages(),
        0,
        "held mail was delivered; log:\n{}",
        inst.log()
    );
    assert_eq!(inst.queue_of(&qid).as_deref(), Some("hold"));

    let err = postsuper(&inst, &["-H", &qid]);
    assert_eq!(
        err,
        format!("postsuper: {qid}: released from hold\npostsuper: Released from hold: 1 message\n")
    );
    assert!(
        sink.wait_for(1, Duration::from_secs(30)),
        "released mail was not delivered; queue {:?}; log:\n{}",
        inst.queue_json(),
        inst.log()
    );
    let got = sink.received();
    assert_eq!(got[0].rcpt_to, ["bob@example.org"]);
    assert!(String::from_utf8_lossy(&got[0].content).contains("held body"));
    assert!(
        wait_until(Duration::from_secs(10), || inst.queue_json().is_empty()),
        "{:?}",
        inst.queue_json()
    );
    inst.stop();
}

/// Only root (or mail_owner) may run postsuper; `nobody` is refused
/// before anything is touched.
#[test]
fn postsuper_as_nobody_is_refused() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test switches to another user and must run as root"
    );
    let inst = Instance::new("ps-nobody", "");
    // The config directory must be readable by nobody (TempDir is 0755 with
    // the usual umask; make sure).
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(inst.config_dir(), std::fs::Permissions::from_mode(0o755));
    let mut cmd = if have_program("setpriv") {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", SLUICE]);
        c
    } else if have_program("runuser") {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--", SLUICE]);
        c
    } else {
        panic!("neither setpriv nor runuser is installed: this test needs one");
    };
    cmd.arg("-c")
        .arg(inst.config_dir())
        .args(["postsuper", "-d", "ALL"]);
    let out = run_with_input(cmd, b"", Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("setpriv:") && !err.contains("runuser:"),
        "cannot switch user here: {}",
        show(&out)
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(
        stderr(&out),
        "postsuper: fatal: use of this command is reserved for the superuser\n"
    );
}

/// `postsuper -h QID` is hold, in every spelling a Postfix user types:
/// `sluice postsuper -h`, and the `postsuper` symlink. (clap's automatic
/// `-h, --help` flag must not shadow it: printing help and exiting 0
/// silently holds nothing.)
#[test]
fn dash_h_is_hold_not_help() {
    let mut inst = Instance::new("ps-dash-h", "");
    inst.start();
    let qid = inst.submit(ALICE, &["bob@example.org"], "Subject: h\r\n\r\nbody\r\n");
    assert!(wait_until(Duration::from_secs(20), || inst
        .queue_of(&qid)
        .is_some()));

    let out = inst.sluice(&["postsuper", "-h", &qid]);
    assert_eq!(
        stderr(&out),
        format!("postsuper: {qid}: placed on hold\npostsuper: Placed on hold: 1 message\n"),
        "BUG (tools/src/cli.rs): `sluice postsuper -h QID` must hold QID, not print clap's help: {}",
        show(&out)
    );
    postsuper(&inst, &["-H", &qid]);

    let links = TempDir::new("ps-links");
    let out = inst.sluice(&["install-links", links.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", show(&out));
    let mut cmd = Command::new(links.path().join("postsuper"));
    cmd.arg("-c").arg(inst.config_dir()).args(["-h", &qid]);
    let out = run_with_input(cmd, b"", Duration::from_secs(30));
    assert_eq!(
        stderr(&out),
        format!("postsuper: {qid}: placed on hold\npostsuper: Placed on hold: 1 message\n"),
        "BUG (tools/src/cli.rs): the `postsuper` symlink's -h must hold, not print help: {}",
        show(&out)
    );
    assert_eq!(inst.queue_of(&qid).as_deref(), Some("hold"));
    inst.stop();
}
