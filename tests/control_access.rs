//! End to end: the control socket checks who is calling (SO_PEERCRED) on
//! the daemon's side. An ordinary user (`nobody`) who talks to the socket
//! directly, skipping the command line's own checks, may list and flush
//! the queue only as `authorized_mailq_users` / `authorized_flush_users`
//! allow, and may never run postsuper requests; root always may.
//!
//! Needs root (to run a client as another uid): as anyone else it fails.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use common::{show, Instance};

const NOBODY: u32 = 65534;

/// Send one request line to every shard's control socket (the tests run
/// two) as `uid`, with Python's socket module; returns the answers one
/// after the other.
fn ask_as(uid: u32, inst: &Instance, request: &str) -> String {
    (0..2)
        .map(|n| ask_shard_as(uid, inst, n, request))
        .collect()
}

fn ask_shard_as(uid: u32, inst: &Instance, shard: usize, request: &str) -> String {
    let sock = inst
        .queue_dir()
        .join("public")
        .join(format!("showq.{shard}"));
    let script = r#"import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.write(out.decode())
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&sock)
        .arg(request)
        .uid(uid)
        .output()
        .expect("run python3");
    assert!(out.status.success(), "python3 as uid {uid}: {}", show(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn sluice_as(uid: u32, inst: &Instance, args: &[&str]) -> Output {
    Command::new(common::SLUICE)
        .arg("-c")
        .arg(inst.config_dir())
        .args(args)
        .uid(uid)
        .output()
        .expect("run sluice")
}

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test runs a client as another user and must run as root"
    );
}

/// The configuration must be readable by `nobody` (the queue directory
/// and its public/ sockets already are).
fn open_path(inst: &Instance) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |m| std::fs::Permissions::from_mode(m);
    std::fs::set_permissions(inst.config_dir(), mode(0o755)).unwrap();
    for f in ["main.cf", "master.cf"] {
        std::fs::set_permissions(inst.config_dir().join(f), mode(0o644)).unwrap();
    }
}

#[test]
fn postsuper_requests_are_for_root_and_the_owner_only() {
    require_root();
    let mut inst = Instance::new("ctlpriv", "");
    open_path(&inst);
    inst.start();
    let qid = inst.submit(
        "alice@example.org",
        &["bob@example.net"],
        "Subject: x\r\n\r\nbody\r\n",
    );

    let answer = ask_as(NOBODY, &inst, "postsuper delete ALL");
    assert_eq!(
        answer,
        "denied use of this command is reserved for the superuser\n.\n".repeat(2),
        "nobody's postsuper request"
    );
    assert!(
        inst.mailq().contains(&qid),
        "the message must still be queued"
    );

    // By default everyone may list and flush.
    let listing = ask_as(NOBODY, &inst, "showq");
    assert!(listing.contains(&qid), "nobody's showq: {listing}");
    assert!(listing.ends_with(".\n"), "{listing}");
    assert_eq!(ask_as(NOBODY, &inst, "flush"), ".\n.\n");
    let out = sluice_as(NOBODY, &inst, &["postqueue", "-p"]);
    assert!(
        out.status.success(),
        "postqueue -p as nobody: {}",
        show(&out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&qid));
    inst.stop();
}

#[test]
fn mailq_and_flush_acls_are_enforced_by_the_daemon() {
    require_root();
    let mut inst = Instance::new(
        "ctlacl",
        "authorized_mailq_users = root\nauthorized_flush_users = !nobody, static:anyone\n",
    );
    open_path(&inst);
    inst.start();
    let qid = inst.submit(
        "alice@example.org",
        &["bob@example.net"],
        "Subject: x\r\n\r\nbody\r\n",
    );

    assert_eq!(
        ask_shard_as(NOBODY, &inst, 0, "showq"),
        "denied User nobody(65534) is not allowed to view the mail queue\n.\n"
    );
    assert_eq!(
        ask_shard_as(NOBODY, &inst, 1, "flush-site example.net"),
        "denied User nobody(65534) is not allowed to flush the mail queue\n.\n"
    );
    // root is always allowed.
    assert!(ask_as(0, &inst, "showq").contains(&qid));

    // The command line says the same, with Postfix's exit code.
    let out = sluice_as(NOBODY, &inst, &["postqueue", "-p"]);
    assert_eq!(out.status.code(), Some(77), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "postqueue: fatal: User nobody(65534) is not allowed to view the mail queue\n"
    );
    let out = sluice_as(NOBODY, &inst, &["postqueue", "-f"]);
    assert_eq!(out.status.code(), Some(77), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not allowed to flush"));
    inst.stop();
}
