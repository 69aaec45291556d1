//! Fault suite: hostile sessions against the real daemon. Many idle and
//! slowloris connections do not stop a normal client from being served;
//! 100,000 one-byte BDAT chunks keep the daemon's memory bounded; refused
//! input (CR in names, UTF-8 without SMTPUTF8, a rejected end of data)
//! leaves no state behind and reaches no header.

mod common;
use common::*;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

const IDLE: usize = 2_000;
const SLOWLORIS: usize = 200;
const NOFILE: u64 = 16_384;

fn raise_nofile() {
    // SAFETY: getrlimit/setrlimit on our own process with structs we own.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut r), 0);
        r.rlim_cur = r.rlim_max.min(NOFILE);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &r), 0);
    }
}

/// The daemon's resident memory, in KiB.
fn rss_kib(inst: &Instance) -> u64 {
    let pid = inst.child.as_ref().unwrap().id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn start(inst: &mut Instance) {
    inst.start_with(|c| {
        // SAFETY: only setrlimit between fork and exec.
        unsafe {
            c.pre_exec(|| {
                let r = libc::rlimit {
                    rlim_cur: NOFILE,
                    rlim_max: NOFILE,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
    });
}

#[test]
fn idle_and_slowloris_connections_do_not_starve_a_normal_client() {
    raise_nofile();
    // Room for every session (the default cap, 100 per service, would
    // keep the 2,200 waiting in the backlog, as Postfix does).
    let mut inst = Instance::new("hostile-idle", "default_process_limit = 5000\n");
    start(&mut inst);
    let rss_before = rss_kib(&inst);
    let idle: Vec<TcpStream> = (0..IDLE)
        .map(|i| {
            TcpStream::connect(inst.addr()).unwrap_or_else(|e| panic!("idle connection {i}: {e}"))
        })
        .collect();
    // Slowloris clients wait for the greeting (talking first is refused
    // as improper pipelining), then trickle.
    let mut slow: Vec<TcpStream> = (0..SLOWLORIS)
        .map(|_| {
            let s = TcpStream::connect(inst.addr()).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut greeting = String::new();
            BufReader::new(&s).read_line(&mut greeting).unwrap();
            assert!(greeting.starts_with("220"), "{greeting}");
            s
        })
        .collect();
    // One byte of "EHLO slow.example" per connection every 2 s.
    let line = b"EHLO slowloris.example.org\r\n";
    let started = Instant::now();
    let mut sent = 0;
    let mut normal = None;
    while started.elapsed() < Duration::from_secs(6) {
        for s in &mut slow {
            s.write_all(&line[sent % (line.len() - 2)..][..1]).unwrap();
        }
        sent += 1;
        if normal.is_none() && started.elapsed() > Duration::from_secs(2) {
            let t = Instant::now();
            let qid = inst.submit(
                "normal@example.org",
                &["r@example.net"],
                "Subject: normal\r\n\r\nserved\r\n",
            );
            normal = Some((t.elapsed(), qid));
        }
        std::thread::sleep(Duration::from_millis(2_000));
    }
    let (took, _) = normal.expect("the normal client ran");
    let rss = rss_kib(&inst);
    eprintln!(
        "{IDLE} idle + {SLOWLORIS} slowloris sessions: normal client served in {took:?}; \
         daemon RSS {rss_before} KiB before, {rss} KiB with them open"
    );
    assert!(took < Duration::from_secs(5), "normal client took {took:?}");
    drop(idle);
    drop(slow);
    assert!(inst.stop().success());
}

#[test]
fn a_hundred_thousand_one_byte_bdat_chunks_keep_memory_bounded() {
    const CHUNKS: usize = 100_000;
    let mut inst = Instance::new("hostile-bdat", "");
    start(&mut inst);
    let mut c = inst.connect();
    assert!(c.reply().starts_with("220"));
    assert!(c.cmd("EHLO chunky.example.org").contains("CHUNKING"));
    assert_eq!(c.cmd("MAIL FROM:<c@example.org>"), "250 2.1.0 Ok");
    assert_eq!(c.cmd("RCPT TO:<r@example.net>"), "250 2.1.5 Ok");
    let rss_before = rss_kib(&inst);
    // Replies are read on their own thread so that neither side blocks.
    let reader = c.stream.try_clone().unwrap();
    let replies = std::thread::spawn(move || {
        let mut r = BufReader::new(reader);
        let (mut ok, mut line, mut last) = (0usize, String::new(), String::new());
        while ok <= CHUNKS {
            line.clear();
            if r.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if line.starts_with("250") {
                ok += 1;
            }
            last = line.trim_end().to_string();
        }
        (ok, last)
    });
    let mut w = c.stream.try_clone().unwrap();
    let mut peak = rss_before;
    let mut batch = Vec::new();
    for i in 0..CHUNKS {
        batch.extend_from_slice(b"BDAT 1\r\n");
        batch.push(b'a' + (i % 26) as u8);
        if batch.len() >= 64 * 1024 {
            w.write_all(&batch).unwrap();
            batch.clear();
            peak = peak.max(rss_kib(&inst));
        }
    }
    w.write_all(&batch).unwrap();
    w.write_all(b"BDAT 0 LAST\r\n").unwrap();
    let (ok, last) = replies.join().unwrap();
    peak = peak.max(rss_kib(&inst));
    assert_eq!(ok, CHUNKS + 1, "last reply: {last}");
    assert!(queued_as(&last).is_some(), "{last}");
    eprintln!("{CHUNKS} one-byte BDAT chunks: daemon RSS {rss_before} KiB before, peak {peak} KiB");
    // 100 KB of content; the session may hold it, nothing per chunk.
    assert!(
        peak < rss_before + 32 * 1024,
        "RSS grew from {rss_before} to {peak} KiB"
    );
    c.cmd("QUIT");
    assert!(inst.stop().success());
}

#[test]
fn refused_input_leaves_no_state_and_reaches_no_header() {
    let mut inst = Instance::new("hostile-input", "message_size_limit = 2000");
    inst.start();
    let mut c = inst.connect();
    c.reply();
    c.send(b"EHLO evil.example\rX-Injected: yes\r\n");
    assert_eq!(c.reply(), "550 5.5.2 Error: bare <CR> received");
    assert!(c.cmd("EHLO client.example.org").starts_with("250"));
    c.send(b"MAIL FROM:<a@example.org> ENVID=x\rX-Inj: 1\r\n");
    assert_eq!(c.reply(), "550 5.5.2 Error: bare <CR> received");
    let utf8 = "553 5.6.7 Must declare SMTPUTF8 to send unicode address";
    assert_eq!(c.cmd("MAIL FROM:<jös@example.org>"), utf8);
    assert_eq!(
        c.cmd("RCPT TO:<r@example.net>"),
        "503 5.5.1 Error: need MAIL command"
    );
    assert_eq!(c.cmd("VRFY <bö@example.net>"), utf8);
    // A rejected end of data (too big), then RCPT and DATA without MAIL.
    assert_eq!(c.cmd("MAIL FROM:<a@example.org>"), "250 2.1.0 Ok");
    assert_eq!(c.cmd("RCPT TO:<bö@example.net>"), utf8);
    assert_eq!(c.cmd("RCPT TO:<r@example.net>"), "250 2.1.5 Ok");
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(format!("Subject: big\r\n\r\n{}\r\n.\r\n", "x".repeat(3_000)).as_bytes());
    assert_eq!(c.reply(), "552 5.3.4 Error: message file too big");
    assert_eq!(
        c.cmd("RCPT TO:<r2@example.net>"),
        "503 5.5.1 Error: need MAIL command"
    );
    assert_eq!(c.cmd("DATA"), "503 5.5.1 Error: need RCPT command");
    // The same after a rejected BDAT LAST.
    assert_eq!(c.cmd("MAIL FROM:<a@example.org>"), "250 2.1.0 Ok");
    assert_eq!(c.cmd("RCPT TO:<r@example.net>"), "250 2.1.5 Ok");
    c.send(format!("BDAT 3000 LAST\r\n{}", "y".repeat(3_000)).as_bytes());
    assert_eq!(c.reply(), "552 5.3.4 Error: message file too big");
    assert_eq!(
        c.cmd("RCPT TO:<r2@example.net>"),
        "503 5.5.1 Error: need MAIL command"
    );
    assert_eq!(c.cmd("DATA"), "503 5.5.1 Error: need RCPT command");
    // One good message: its Received: names the clean EHLO only.
    let r = c.send_mail(
        "a@example.org",
        &["r@example.net"],
        b"Subject: ok\r\n\r\nok\r\n",
    );
    assert!(queued_as(&r).is_some(), "{r}");
    c.cmd("QUIT");
    assert!(inst.stop().success());
    let q = read_queue(&inst.queue_dir());
    assert_eq!(q.len(), 1, "only the good message is queued");
    let content = String::from_utf8_lossy(&q[0].3);
    assert!(
        content.starts_with("Received: from client.example.org "),
        "{content}"
    );
    assert!(
        !content.contains("Inj") && !content.contains("evil"),
        "{content}"
    );
}
