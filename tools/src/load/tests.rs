//! Source against sink, in process, over loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use super::cli::parse_endpoint;
use super::*;

fn loopback() -> SocketAddr {
    ([127, 0, 0, 1], 0).into()
}

fn sink(f: impl FnOnce(&mut SinkConfig)) -> Sink {
    let mut cfg = SinkConfig::new(loopback());
    cfg.read_timeout = Duration::from_secs(10);
    f(&mut cfg);
    Sink::start(cfg).expect("sink starts")
}

fn source_cfg(sink: &Sink, sessions: usize, messages: u64) -> SourceConfig {
    SourceConfig {
        sessions,
        messages,
        size: 1000,
        from: "alice@example.org".into(),
        to: "bob@example.net".into(),
        timeout: Duration::from_secs(10),
        time_limit: Duration::from_secs(30),
        ..SourceConfig::new(sink.addr())
    }
}

/// The number in "Subject: sluice source message N".
fn subject_number(content: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(content);
    text.lines()
        .find_map(|l| l.strip_prefix("Subject: sluice source message "))
        .and_then(|n| n.trim().parse().ok())
        .expect("generated subject")
}

fn run_and_check_round_trip(reuse: bool, pipelining: bool) {
    let sink = sink(|_| {});
    let cfg = SourceConfig {
        reuse,
        pipelining,
        ..source_cfg(&sink, 4, 200)
    };
    let report = run_source(&cfg).expect("runs");
    assert_eq!((report.messages, report.failures), (200, 0), "{report:?}");
    assert!(sink.wait_for(200, Duration::from_secs(5)));
    assert_eq!(sink.messages(), 200);
    let want_connections = if reuse { 4 } else { 200 };
    assert_eq!(report.connections, want_connections);
    assert_eq!(sink.connections(), want_connections);
    let got = sink.received();
    assert_eq!(got.len(), 200);
    let mut seen: Vec<u64> = got.iter().map(|m| subject_number(&m.content)).collect();
    for m in &got {
        assert_eq!(m.mail_from, "alice@example.org");
        assert_eq!(m.rcpt_to, ["bob@example.net"]);
        assert_eq!(m.content, cfg.message(subject_number(&m.content)));
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..200).collect::<Vec<_>>(), "every message once");
    assert!(report.latency_ms_p50 > 0.0);
    assert!(report.latency_ms_p50 <= report.latency_ms_p90);
    assert!(report.latency_ms_p99 <= report.latency_ms_p999);
    assert!(report.latency_ms_p999 <= report.latency_ms_max);
    sink.stop();
}

#[test]
fn two_hundred_messages_new_connection_each() {
    run_and_check_round_trip(false, true);
}

#[test]
fn two_hundred_messages_reused_connections() {
    run_and_check_round_trip(true, true);
}

#[test]
fn two_hundred_messages_without_pipelining() {
    run_and_check_round_trip(true, false);
}

/// Lines that need stuffing, including a lone "." that would end DATA.
const DOTTY: &[u8] =
    b"Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nmid.dle\r\n. \r\n\r\n...\r\nlast\r\n";

#[test]
fn dot_stuffing_round_trips() {
    let sink = sink(|_| {});
    for pipelining in [true, false] {
        let cfg = SourceConfig {
            body: Some(DOTTY.to_vec()),
            pipelining,
            reuse: true,
            ..source_cfg(&sink, 2, 10)
        };
        let report = run_source(&cfg).expect("runs");
        assert_eq!(report.messages, 10, "{report:?}");
    }
    let got = sink.received();
    assert_eq!(got.len(), 20);
    assert!(got.iter().all(|m| m.content == DOTTY));
}

#[test]
fn dot_stuff_table() {
    let table: &[(&[u8], &[u8])] = &[
        (b"", b""),
        (b"a\r\n", b"a\r\n"),
        (b".\r\n", b"..\r\n"),
        (b"..x\r\n", b"...x\r\n"),
        (b"a\nb", b"a\r\nb\r\n"),
        (b"a.b\r\n.\n", b"a.b\r\n..\r\n"),
        // A bare CR is a line ending of its own (as in the SMTP client),
        // so no next hop can read the lines differently.
        (b"x\r\r\n", b"x\r\n\r\n"),
        (b"a\r.b\r\n", b"a\r\n..b\r\n"),
    ];
    for (raw, want) in table {
        assert_eq!(dot_stuff(raw), *want, "{:?}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn generated_body_has_the_asked_size() {
    // (size asked, body bytes sent): a remainder too short for a line is
    // rounded up to one character and CRLF.
    for (size, want) in [
        (0usize, 0usize),
        (1, 3),
        (2, 3),
        (3, 3),
        (80, 80),
        (81, 83),
        (4096, 4096),
    ] {
        let cfg = SourceConfig {
            size,
            ..SourceConfig::new(loopback())
        };
        let m = cfg.message(1);
        let body_start = m
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("headers end")
            + 4;
        assert_eq!(m.len() - body_start, want, "size {size}");
        assert!(m.ends_with(b"\r\n"));
        if size >= 16 * 80 {
            assert!(m[body_start..]
                .split(|&b| b == b'\n')
                .any(|l| l.starts_with(b".")));
        }
    }
}

#[test]
fn temporary_rcpt_failures_are_counted() {
    for pipelining in [true, false] {
        let sink = sink(|c| c.reply_temp_fail = 0.1);
        let cfg = SourceConfig {
            pipelining,
            reuse: true,
            ..source_cfg(&sink, 4, 200)
        };
        let r = run_source(&cfg).expect("runs");
        assert_eq!(
            (r.messages, r.temp_failures, r.perm_failures, r.errors),
            (180, 20, 0, 0),
            "{r:?}"
        );
        assert_eq!(r.failures, 20);
        assert_eq!(
            r.first_rejection.as_deref(),
            Some("450 4.2.0 <bob@example.net>: Recipient address rejected: sink temporary failure")
        );
        assert!(r
            .to_json()
            .contains("\"first_rejection\":\"450 4.2.0 <bob@"));
        assert_eq!(sink.messages(), 180);
        assert_eq!(sink.stats().temp_rejects, 20);
    }
}

#[test]
fn permanent_data_failures_are_counted() {
    let sink = sink(|c| {
        c.reply_perm_fail = 0.25;
        c.fail_at = FailAt::Data;
    });
    let r = run_source(&source_cfg(&sink, 4, 200)).expect("runs");
    assert_eq!(
        (r.messages, r.temp_failures, r.perm_failures, r.errors),
        (150, 0, 50, 0),
        "{r:?}"
    );
    assert_eq!(sink.messages(), 150);
}

#[test]
fn mixed_mail_failures_are_counted() {
    let sink = sink(|c| {
        c.reply_temp_fail = 0.1;
        c.reply_perm_fail = 0.1;
        c.fail_at = FailAt::Mail;
    });
    let cfg = SourceConfig {
        reuse: true,
        ..source_cfg(&sink, 4, 200)
    };
    let r = run_source(&cfg).expect("runs");
    assert_eq!(
        (r.messages, r.temp_failures, r.perm_failures),
        (160, 20, 20),
        "{r:?}"
    );
}

#[test]
fn partly_refused_recipients_still_deliver() {
    let sink = sink(|c| c.reply_temp_fail = 0.1);
    let cfg = SourceConfig {
        recipients: 3,
        ..source_cfg(&sink, 2, 60)
    };
    let r = run_source(&cfg).expect("runs");
    // 180 RCPTs, every tenth refused: never all three of one message.
    assert_eq!(
        (r.messages, r.failures, r.rcpt_rejected),
        (60, 0, 18),
        "{r:?}"
    );
    let got = sink.received();
    assert_eq!(got.iter().map(|m| m.rcpt_to.len()).sum::<usize>(), 162);
    assert!(got.iter().flat_map(|m| &m.rcpt_to).all(|r| [
        "1bob@example.net",
        "2bob@example.net",
        "3bob@example.net"
    ]
    .contains(&r.as_str())));
}

#[test]
fn json_report_has_every_key() {
    let sink = sink(|_| {});
    let r = run_source(&source_cfg(&sink, 2, 20)).expect("runs");
    let json = r.to_json();
    assert!(json.starts_with('{') && json.ends_with('}'));
    for key in [
        "messages",
        "failures",
        "temp_failures",
        "perm_failures",
        "errors",
        "rcpt_rejected",
        "connections",
        "elapsed_s",
        "msgs_per_s",
        "latency_ms_p50",
        "latency_ms_p90",
        "latency_ms_p99",
        "latency_ms_p999",
        "latency_ms_max",
        "first_error",
        "first_rejection",
    ] {
        assert!(json.contains(&format!("\"{key}\":")), "{key} in {json}");
    }
    assert!(json.contains("\"messages\":20,"));
    assert!(json.contains("\"first_error\":null"));
    assert!(r.to_text().contains("20 messages accepted"));
}

#[test]
fn unreachable_server_is_an_error_not_a_hang() {
    // A port that was free a moment ago: connections are refused.
    let port = TcpListener::bind(loopback())
        .and_then(|l| l.local_addr())
        .expect("free port");
    let cfg = SourceConfig {
        messages: 3,
        timeout: Duration::from_secs(2),
        ..SourceConfig::new(port)
    };
    let r = run_source(&cfg).expect("runs");
    assert_eq!((r.messages, r.errors, r.failures), (0, 3, 3));
    let json = r.to_json();
    assert!(json.contains("\"first_error\":\""), "{json}");
}

#[test]
fn time_limit_bounds_the_run() {
    let sink = sink(|c| c.delay = Duration::from_millis(50));
    let cfg = SourceConfig {
        time_limit: Duration::from_millis(300),
        reuse: true,
        ..source_cfg(&sink, 1, 1_000_000)
    };
    let r = run_source(&cfg).expect("runs");
    assert!(r.messages >= 1 && r.messages <= 10, "{r:?}");
    assert!(r.elapsed < Duration::from_secs(2));
    assert!(
        r.latency_ms_p50 >= 50.0,
        "the sink's delay is in the latency"
    );
}

/// A raw conversation with the sink.
struct Talk {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Talk {
    fn open(addr: SocketAddr) -> Talk {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        Talk {
            r: BufReader::new(s.try_clone().expect("clone")),
            w: s,
        }
    }
    /// Read one reply (all its lines).
    fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            self.r.read_line(&mut line).expect("read");
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }
    fn send(&mut self, s: &str) {
        self.w.write_all(s.as_bytes()).expect("write");
    }
    fn say(&mut self, cmd: &str) -> String {
        self.send(&format!("{cmd}\r\n"));
        self.reply()
    }
}

#[test]
fn sink_transcript() {
    let sink = sink(|c| {
        c.message_size_limit = 100;
        c.line_length_limit = 64;
    });
    let mut t = Talk::open(sink.addr());
    assert_eq!(t.reply(), "220 smtp-sink ESMTP\r\n");
    assert_eq!(
        t.say("EHLO client"),
        "250-smtp-sink\r\n250-PIPELINING\r\n250-SIZE 100\r\n250-8BITMIME\r\n250-DSN\r\n250 ENHANCEDSTATUSCODES\r\n"
    );
    let table = [
        ("RCPT TO:<a@b>", "503 5.5.1 Error: need MAIL command"),
        ("DATA", "503 5.5.1 Error: need MAIL command"),
        (
            "MAIL FROM:<a@b> SIZE=101",
            "552 5.3.4 Message size exceeds fixed limit",
        ),
        ("MAIL FRM:<a@b>", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        ("MAIL FROM:<a@b> SIZE=100", "250 2.1.0 Ok"),
        ("MAIL FROM:<a@b>", "503 5.5.1 Error: nested MAIL command"),
        ("DATA", "503 5.5.1 Error: need RCPT command"),
        ("RCPT TO:<c@d>", "250 2.1.5 Ok"),
        ("NOOP", "250 2.0.0 Ok"),
        ("VRFY x", "252 2.0.0 x"),
        ("BOGUS", "500 5.5.2 Error: command not recognized"),
        (&"X".repeat(200), "500 5.5.2 Error: bad syntax"),
        ("DATA", "354 End data with <CR><LF>.<CR><LF>"),
    ];
    for (cmd, want) in table {
        assert_eq!(t.say(cmd), format!("{want}\r\n"), "{cmd}");
    }
    // Too big: read to the dot, then 552; the session goes on.
    t.send(&format!("{}\r\n.\r\n", "y".repeat(300)));
    assert_eq!(t.reply(), "552 5.3.4 Error: message file too big\r\n");
    assert_eq!(t.say("MAIL FROM:<>"), "250 2.1.0 Ok\r\n");
    assert_eq!(t.say("RCPT TO:<e@f>"), "250 2.1.5 Ok\r\n");
    assert_eq!(t.say("DATA"), "354 End data with <CR><LF>.<CR><LF>\r\n");
    t.send("..one\r\ntwo\r\n.\r\n");
    assert_eq!(t.reply(), "250 2.0.0 Ok: queued as 1\r\n");
    assert_eq!(t.say("RSET"), "250 2.0.0 Ok\r\n");
    assert_eq!(t.say("QUIT"), "221 2.0.0 Bye\r\n");
    let mut rest = String::new();
    assert_eq!(t.r.read_to_string(&mut rest).expect("eof"), 0);
    let got = sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].mail_from.as_str(), got[0].content.as_slice()),
        ("", &b".one\r\ntwo\r\n"[..])
    );
    assert_eq!(got[0].connection, 1);
}

#[test]
fn sink_without_pipelining_and_dsn() {
    let sink = sink(|c| {
        c.announce_dsn = false;
        c.announce_pipelining = false;
        c.hostname = "mx.test".into();
    });
    let mut t = Talk::open(sink.addr());
    assert_eq!(t.reply(), "220 mx.test ESMTP\r\n");
    assert_eq!(
        t.say("EHLO c"),
        "250-mx.test\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"
    );
    assert_eq!(t.say("HELO c"), "250 mx.test\r\n");
    // The source still works, one command at a time.
    let r = run_source(&source_cfg(&sink, 2, 10)).expect("runs");
    assert_eq!(r.messages, 10);
}

#[test]
fn all_recipients_refused_gives_554_to_data() {
    let sink = sink(|c| c.reply_perm_fail = 1.0);
    let mut t = Talk::open(sink.addr());
    t.reply();
    t.say("EHLO c");
    t.send("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    assert_eq!(t.reply(), "250 2.1.0 Ok\r\n");
    assert_eq!(
        t.reply(),
        "550 5.1.1 <c@d>: Recipient address rejected: sink permanent failure\r\n"
    );
    assert_eq!(t.reply(), "554 5.5.1 Error: no valid recipients\r\n");
}

#[test]
fn count_limit_then_421() {
    let sink = sink(|c| c.count_limit = Some(5));
    let cfg = SourceConfig {
        reuse: true,
        ..source_cfg(&sink, 1, 8)
    };
    let r = run_source(&cfg).expect("runs");
    // The sixth MAIL gets 421; so do the next two connections' greetings.
    assert_eq!((r.messages, r.temp_failures, r.errors), (5, 3, 0), "{r:?}");
    assert_eq!(r.connections, 3);
    assert!(sink.is_done());
    assert_eq!(sink.messages(), 5);
    let mut t = Talk::open(sink.addr());
    assert!(t.reply().starts_with("421 4.3.2 "));
}

#[test]
fn max_connections_refuses_with_421() {
    let sink = sink(|c| c.max_connections = 1);
    let mut first = Talk::open(sink.addr());
    assert!(first.reply().starts_with("220 "));
    let mut second = Talk::open(sink.addr());
    assert_eq!(
        second.reply(),
        "421 4.7.0 smtp-sink Error: too many connections\r\n"
    );
    assert_eq!(sink.stats().refused, 1);
    assert_eq!(first.say("QUIT"), "221 2.0.0 Bye\r\n");
}

#[test]
fn dump_dir_holds_envelope_and_content() {
    let dir = std::env::temp_dir().join(format!("sluice-sink-dump-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.clone();
    let sink = sink(move |c| {
        c.dump_dir = Some(d);
        c.keep_received = 0;
    });
    let cfg = SourceConfig {
        body: Some(DOTTY.to_vec()),
        recipients: 2,
        ..source_cfg(&sink, 1, 3)
    };
    assert_eq!(run_source(&cfg).expect("runs").messages, 3);
    assert!(sink.received().is_empty());
    let file = std::fs::read(dir.join("00000002.eml")).expect("dump file");
    let mut want = b"X-Sink-Mail-From: <alice@example.org>\r\nX-Sink-Rcpt-To: <1bob@example.net>\r\nX-Sink-Rcpt-To: <2bob@example.net>\r\n".to_vec();
    want.extend_from_slice(DOTTY);
    assert_eq!(file, want);
    sink.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stop_closes_idle_sessions() {
    let sink = sink(|_| {});
    let mut t = Talk::open(sink.addr());
    t.reply();
    let started = std::time::Instant::now();
    sink.stop();
    assert!(started.elapsed() < Duration::from_secs(2));
    let mut rest = Vec::new();
    let _ = t.r.read_to_end(&mut rest);
}

#[test]
fn endpoints() {
    let table = [
        ("127.0.0.1:2525", "127.0.0.1:2525"),
        ("inet:127.0.0.1:25", "127.0.0.1:25"),
        (":2525", "0.0.0.0:2525"),
        ("127.0.0.1", "127.0.0.1:25"),
        ("[::1]:26", "[::1]:26"),
    ];
    for (s, want) in table {
        assert_eq!(parse_endpoint(s).expect(s).to_string(), want, "{s}");
    }
    assert!(parse_endpoint("localhost:2525").is_ok());
    assert!(parse_endpoint("no such host.invalid:1").is_err());
}

#[test]
fn command_lines_parse() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(source_main(&s(&["--help"])), 0);
    assert_eq!(source_main(&s(&["-x", "127.0.0.1:1"])), 64);
    assert_eq!(source_main(&s(&[])), 64);
    assert_eq!(
        sink_main(&s(&[
            "--temp-fail",
            "0.7",
            "--perm-fail",
            "0.7",
            "127.0.0.1:0"
        ])),
        64
    );
    let a = <cli::SourceArgs as clap::Parser>::try_parse_from([
        "source",
        "-s",
        "20",
        "-m",
        "100",
        "-l",
        "4096",
        "-r",
        "2",
        "-d",
        "-f",
        "a@b",
        "-t",
        "c@d",
        "--json",
        "127.0.0.1:2525",
    ])
    .expect("parses");
    assert_eq!(
        (
            a.sessions,
            a.messages,
            a.size,
            a.recipients,
            a.reuse,
            a.json
        ),
        (20, 100, 4096, 2, true, true)
    );
    let a = <cli::SinkArgs as clap::Parser>::try_parse_from([
        "sink",
        "--temp-fail",
        "0.1",
        "--fail-at",
        "data",
        "--delay",
        "5",
        "--no-dsn",
        "--count",
        "9",
        ":2525",
        "100",
    ])
    .expect("parses");
    assert_eq!(
        (a.count, a.backlog, a.no_dsn, a.delay_ms),
        (Some(9), Some(100), true, 5)
    );
}

#[test]
fn failed_dump_is_451_and_frees_its_place() {
    let dir = std::env::temp_dir().join(format!("sluice-sink-bad-dump-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.clone();
    let sink = sink(move |c| {
        c.dump_dir = Some(d);
        c.count_limit = Some(1);
    });
    // Replace the directory by a file: the dump cannot be written.
    std::fs::remove_dir(&dir).expect("rmdir");
    std::fs::write(&dir, b"").expect("file in the way");
    let mut t = Talk::open(sink.addr());
    t.reply();
    t.say("HELO c");
    t.send("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    assert_eq!(
        t.reply() + &t.reply() + &t.reply(),
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    );
    t.send("x\r\n.\r\n");
    assert_eq!(t.reply(), "451 4.3.0 Error: queue file write error\r\n");
    assert_eq!(
        (sink.messages(), sink.stats().temp_rejects, sink.is_done()),
        (0, 1, false)
    );
    // With the directory back, the count limit's one place is still free.
    std::fs::remove_file(&dir).expect("rm");
    std::fs::create_dir(&dir).expect("mkdir");
    t.send("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    t.reply();
    t.reply();
    t.reply();
    t.send("x\r\n.\r\n");
    assert_eq!(t.reply(), "250 2.0.0 Ok: queued as 2\r\n");
    assert!(sink.is_done() && sink.wait_for(1, Duration::ZERO));
    assert!(dir.join("00000002.eml").exists());
    sink.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
