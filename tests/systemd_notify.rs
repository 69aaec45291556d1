//! systemd readiness (tools/systemd/sluice.service is `Type=notify`):
//! `start-fg` under a `$NOTIFY_SOCKET` sends `READY=1` only once its SMTP
//! port and its control socket answer, and `STOPPING=1` on SIGTERM. The
//! test plays the service manager with a Unix datagram socket of its own.

mod common;
use common::*;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn recv(sock: &UnixDatagram) -> Option<String> {
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn ready_is_notified_only_once_the_daemon_accepts_and_stopping_on_sigterm() {
    let mut inst = Instance::new("sd-notify", "");
    let path = inst.config_dir().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let log = std::fs::File::create(inst.log_path()).unwrap();
    let child = Command::new(SLUICE)
        .arg("-c")
        .arg(inst.config_dir())
        .arg("start-fg")
        .env("NOTIFY_SOCKET", &path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let pid = child.id();
    inst.child = Some(child);

    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        if let Some(m) = recv(&sock) {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "no READY=1; log:\n{}",
            inst.log()
        );
    };
    // At once: the port greets and the control socket answers (a flush
    // request needs the running daemon).
    let mut c = inst.connect();
    let greeting = c.reply();
    assert!(greeting.starts_with("220 "), "{greeting}");
    let flush = inst.sluice(&["postqueue", "-f"]);
    assert!(flush.status.success(), "control socket: {}", show(&flush));
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(
        ready.lines().any(|l| l == format!("MAINPID={pid}")),
        "{ready:?}"
    );
    c.cmd("QUIT");

    // SIGTERM: STOPPING=1, then a clean exit.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let stopping = recv(&sock).expect("no STOPPING=1 after SIGTERM");
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    let mut child = inst.child.take().unwrap();
    let st = wait_timeout(&mut child, Duration::from_secs(40)).expect("did not stop");
    assert!(st.success(), "{st}; log:\n{}", inst.log());
}

/// Without `$NOTIFY_SOCKET` nothing changes, and an unusable one is a
/// warning, not a failure to start.
#[test]
fn an_unusable_notify_socket_is_a_warning() {
    let mut inst = Instance::new("sd-notify-bad", "");
    let missing = inst.config_dir().join("no-such.sock");
    inst.start_with(|c| {
        c.env("NOTIFY_SOCKET", &missing);
    });
    let mut c = inst.connect();
    assert!(c.reply().starts_with("220 "));
    c.cmd("QUIT");
    assert!(inst.stop().success());
    assert!(
        inst.log().contains("cannot notify the service manager"),
        "{}",
        inst.log()
    );
}

/// The shipped unit is the one this test checks for: Type=notify, start-fg,
/// reload by SIGHUP, restart on failure.
#[test]
fn the_shipped_unit_is_type_notify() {
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/systemd/sluice.service"),
    )
    .unwrap();
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "ExecStart=/usr/sbin/sluice -c /etc/sluice start-fg",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
    ] {
        assert!(unit.lines().any(|l| l == line), "missing {line:?}");
    }
    if have_program("systemd-analyze") {
        let dir = TempDir::new("unit");
        let p = dir.path().join("sluice.service");
        std::fs::write(&p, &unit).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&p)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        // The binary's path need not exist on the build machine.
        assert!(
            err.lines()
                .all(|l| l.contains("/usr/sbin/sluice") || l.trim().is_empty()),
            "{err}"
        );
    }
}
