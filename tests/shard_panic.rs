//! A shard that panics takes the daemon down at once (logged as Postfix
//! would: `fatal: shard N: panicked: …`, exit 75) instead of leaving it
//! half alive with `postqueue`, `status` and `stop` hanging; a restart
//! then works. The panic is triggered through the control socket's
//! debug-only `debug-panic` request (see engine/src/control.rs).

mod common;
use common::*;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Ask shard `shard` to panic.
fn panic_shard(inst: &Instance, shard: usize) {
    let sock = inst
        .queue_dir()
        .join("public")
        .join(format!("showq.{shard}"));
    let mut s = UnixStream::connect(&sock).expect("connect to the control socket");
    s.write_all(b"debug-panic\n").unwrap();
}

#[test]
fn a_panicking_shard_stops_the_daemon_and_a_restart_works() {
    let mut inst = Instance::new("panic", "");
    inst.start();
    // A session open on the daemon while the shard dies.
    let mut open = inst.connect();
    assert!(open.reply().starts_with("220 "));
    open.cmd("EHLO client.example.org");

    let started = Instant::now();
    panic_shard(&inst, 1);
    let mut child = inst.child.take().unwrap();
    let st = wait_timeout(&mut child, Duration::from_secs(5)).unwrap_or_else(|| {
        panic!(
            "still running 5s after a shard panicked; log:\n{}",
            inst.log()
        )
    });
    assert_eq!(st.code(), Some(75), "log:\n{}", inst.log());
    eprintln!("exited {:?} after the panic", started.elapsed());
    let log = inst.log();
    assert!(
        log.contains("fatal: shard 1: panicked: debug-panic requested on the control socket"),
        "{log}"
    );

    // Nothing hangs: status says it is down, promptly.
    let t = Instant::now();
    let st = inst.sluice(&["status"]);
    assert_eq!(st.status.code(), Some(1), "{}", show(&st));
    assert!(String::from_utf8_lossy(&st.stderr).contains("is not running"));
    assert!(t.elapsed() < Duration::from_secs(5));

    // A restart serves mail.
    inst.start();
    let qid = inst.submit(
        "a@example.org",
        &["b@example.net"],
        "Subject: after\r\n\r\nx\r\n",
    );
    assert!(inst.mailq().contains(&qid));
    assert!(inst.stop().success());
}
