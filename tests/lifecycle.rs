//! start / stop / status, the pid lock, refused ports, the embedded default.

mod common;
use common::*;

use std::process::Command;
use std::time::Duration;

#[test]
fn start_status_stop_detached() {
    let inst = Instance::new("detach", "");
    let out = inst.sluice(&["start"]);
    assert!(
        out.status.success(),
        "start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = inst.sluice(&["status"]);
    assert!(st.status.success());
    assert!(String::from_utf8_lossy(&st.stderr).contains("is running"));
    // A second start is refused while the first runs.
    let again = inst.sluice(&["start"]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already running"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let mut c = inst.connect();
    assert!(c.reply().starts_with("220 "));
    c.cmd("QUIT");
    let stop = inst.sluice(&["stop"]);
    assert!(
        stop.status.success(),
        "stop: {}",
        String::from_utf8_lossy(&stop.stderr)
    );
    let st = inst.sluice(&["status"]);
    assert!(!st.status.success());
    assert!(
        std::net::TcpStream::connect(inst.addr()).is_err(),
        "still listening after stop"
    );
}

/// Whether process `pid` is gone (or a zombie: exited, not yet reaped).
fn exited(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

/// `stop` returns only once the daemon's process has exited, and says so
/// in Postfix's words; `status` and `stop` on a stopped system exit 1.
#[test]
fn stop_waits_for_the_process_and_status_says_not_running() {
    let inst = Instance::new("stopwait", "");
    let out = inst.sluice(&["start"]);
    assert!(out.status.success(), "{}", show(&out));
    let pid: i32 = std::fs::read_to_string(inst.queue_dir().join("pid/master.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // An open session makes the stop take a moment (it drains).
    let mut c = inst.connect();
    assert!(c.reply().starts_with("220 "));
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        c.cmd("QUIT");
    });
    let stop = inst.sluice(&["stop"]);
    assert!(stop.status.success(), "{}", show(&stop));
    assert!(exited(pid), "pid {pid} still running after stop");
    let err = String::from_utf8_lossy(&stop.stderr);
    assert!(
        err.starts_with("sluice: stopping the mail system\n"),
        "{err}"
    );
    assert!(
        err.contains("waiting for the mail system to terminate"),
        "{err}"
    );
    closer.join().unwrap();

    let st = inst.sluice(&["status"]);
    assert_eq!(st.status.code(), Some(1), "{}", show(&st));
    assert_eq!(
        String::from_utf8_lossy(&st.stderr),
        "sluice: the mail system is not running\n"
    );
    let again = inst.sluice(&["stop"]);
    assert_eq!(again.status.code(), Some(1), "{}", show(&again));
    assert_eq!(
        String::from_utf8_lossy(&again.stderr),
        "sluice: fatal: the mail system is not running\n"
    );
}

#[test]
fn a_port_held_by_another_program_is_refused() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let inst = Instance::new("held", "");
    std::fs::write(
        inst.config_dir().join("master.cf"),
        format!("127.0.0.1:{port} inet n - n - - smtpd\n"),
    )
    .unwrap();
    let out = inst.sluice(&["start-fg"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // It names the holder (this test), found through /proc.
    let holder = format!("already in use by pid {}", std::process::id());
    assert!(err.contains(&holder), "{err}");
}

#[test]
fn sigterm_lets_a_session_finish_its_message() {
    let mut inst = Instance::new("drain", "");
    inst.start();
    let mut c = inst.connect();
    c.reply();
    c.cmd("EHLO client.example.org");
    c.cmd("MAIL FROM:<a@example.org>");
    c.cmd("RCPT TO:<b@example.net>");
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: in flight\r\n\r\nhalf");
    let pid = inst.child.as_ref().unwrap().id() as i32;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(300));
    // New connections are refused while draining…
    assert!(std::net::TcpStream::connect(inst.addr()).is_err());
    // …but the open session completes its message.
    c.send(b" and the rest\r\n.\r\n");
    assert!(queued_as(&c.reply()).is_some());
    c.cmd("QUIT");
    let mut child = inst.child.take().unwrap();
    let st = wait_timeout(&mut child, Duration::from_secs(30)).expect("did not exit");
    assert!(st.success());
    assert_eq!(read_queue(&inst.queue_dir()).len(), 1);
}

#[test]
fn malformed_main_cf_names_file_and_line() {
    let inst = Instance::new("badcf", "message_size_limit = lots");
    let out = inst.sluice(&["start-fg"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let main_cf = inst.config_dir().join("main.cf");
    assert!(err.contains(&format!("{}:", main_cf.display())), "{err}");
    assert!(err.contains("message_size_limit"), "{err}");
}

#[test]
fn embedded_default_listens_on_2525() {
    let dir = TempDir::new("embedded");
    // Only when 2525 is free: another program may hold it on a shared machine.
    if std::net::TcpListener::bind("127.0.0.1:2525").is_err() {
        eprintln!("skipping: 127.0.0.1:2525 is in use");
        return;
    }
    let mut child = Command::new(SLUICE)
        .args(["start-fg"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = dir.path().join("sluice-queue/pid/master.ready");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !ready.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ready.exists(), "embedded default did not start");
    let mut c = Client::connect("127.0.0.1:2525".parse().unwrap());
    assert!(c.reply().starts_with("220 "));
    c.cmd("QUIT");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(wait_timeout(&mut child, Duration::from_secs(30))
        .unwrap()
        .success());
}

#[test]
fn reload_takes_new_parameters_without_dropping_sessions_or_mail() {
    let sink = sluice_tools::load::Sink::start(sluice_tools::load::SinkConfig::new(
        "127.0.0.1:0".parse().unwrap(),
    ))
    .unwrap();
    let mut inst = Instance::new("reload", "");
    inst.start();
    // A session open across the reload, and a message queued before it.
    let mut open = inst.connect();
    assert!(open.reply().starts_with("220 mx.example.test ESMTP Sluice"));
    open.cmd("EHLO client.example.org");
    let before = queued_as(&open.send_mail(
        "a@example.org",
        &["b@example.net"],
        b"Subject: before\r\n\r\nx\r\n",
    ))
    .unwrap();

    let main_cf = inst.config_dir().join("main.cf");
    let mut text = std::fs::read_to_string(&main_cf).unwrap();
    text.push_str(&format!(
        "defer_transports =\nrelayhost = [127.0.0.1]:{}\nsmtpd_banner = $myhostname ESMTP reloaded\n",
        sink.addr().port()
    ));
    std::fs::write(&main_cf, text).unwrap();
    let out = inst.sluice(&["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // Every shard (the instance has two) applies it.
    while inst.log().matches("configuration reloaded").count() < 2
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    // The open session goes on and queues another message.
    let after = queued_as(&open.send_mail(
        "a@example.org",
        &["c@example.net"],
        b"Subject: after\r\n\r\ny\r\n",
    ))
    .unwrap();
    open.cmd("QUIT");
    // New sessions see the new banner.
    let mut fresh = inst.connect();
    assert_eq!(fresh.reply(), "220 mx.example.test ESMTP reloaded");
    fresh.cmd("QUIT");
    // The deferred message goes out under the new relay settings.
    let flush = inst.sluice(&["postqueue", "-f"]);
    assert!(
        flush.status.success(),
        "{}",
        String::from_utf8_lossy(&flush.stderr)
    );
    assert!(
        sink.wait_for(2, Duration::from_secs(20)),
        "not delivered after reload; log:\n{}",
        inst.log()
    );
    assert!(inst.stop().success());
    let log = inst.log();
    assert!(
        log.contains(&format!("{before}: removed")) && log.contains(&format!("{after}: removed")),
        "{log}"
    );
}
