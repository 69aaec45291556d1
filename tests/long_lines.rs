//! Long lines end to end (issue 7): a real `sluice` relays a message with
//! a 100,000-byte body line, a 2,508-byte header line and a 999-byte line
//! to a strict next hop that refuses lines over 998 bytes, as some do
//! (`500 Line too long`). Postfix breaks such lines at
//! `smtp_line_length_limit` with `<CR><LF><SPACE>`; so must Sluice, and
//! `smtp_line_length_limit = 0` must turn that off.

mod common;
use common::*;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// RFC 5321 §4.5.3.1.6: 1000 bytes with CRLF, the stuffed dot not counted.
const MAX_LINE: usize = 998;

/// One DATA transaction as the sink saw it.
struct Seen {
    /// The DATA lines as they came on the wire, up to the final dot.
    wire: Vec<u8>,
    /// The content, dot-stuffing removed.
    content: Vec<u8>,
    /// The longest content line, without CRLF.
    longest: usize,
}

/// A next hop that records the wire and answers `500 Line too long` at the
/// end of data when a line is longer than 998 bytes.
struct StrictSink {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl StrictSink {
    fn start() -> StrictSink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let record = record.clone();
                std::thread::spawn(move || serve(stream, &record));
            }
        });
        StrictSink { addr, seen }
    }

    fn wait(&self, n: usize) -> bool {
        wait_until(Duration::from_secs(30), || {
            self.seen.lock().unwrap().len() >= n
        })
    }
}

/// One SMTP session; ends at QUIT, EOF or an error.
fn serve(stream: TcpStream, record: &Mutex<Vec<Seen>>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut out = stream.try_clone().unwrap();
    let mut input = BufReader::new(stream);
    let mut say = |text: &str| out.write_all(format!("{text}\r\n").as_bytes()).is_ok();
    say("220 strict.example ESMTP");
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
            return;
        }
        let verb = String::from_utf8_lossy(&line).to_ascii_uppercase();
        let ok = if verb.starts_with("DATA") {
            say("354 End data with <CR><LF>.<CR><LF>");
            let Some(seen) = read_data(&mut input) else {
                return;
            };
            let reply = if seen.longest > MAX_LINE {
                "500 5.5.2 Line too long"
            } else {
                "250 2.0.0 Ok: queued as STRICT1"
            };
            record.lock().unwrap().push(seen);
            say(reply)
        } else if verb.starts_with("QUIT") {
            say("221 2.0.0 Bye");
            return;
        } else if verb.starts_with("EHLO") || verb.starts_with("HELO") {
            say("250 strict.example")
        } else {
            say("250 2.0.0 Ok")
        };
        if !ok {
            return;
        }
    }
}

/// Reads DATA lines up to the final dot.
fn read_data(input: &mut BufReader<TcpStream>) -> Option<Seen> {
    let mut seen = Seen {
        wire: Vec::new(),
        content: Vec::new(),
        longest: 0,
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        if line == b".\r\n" {
            return Some(seen);
        }
        seen.wire.extend_from_slice(&line);
        let text = line.strip_prefix(b".").unwrap_or(&line);
        let body = text.strip_suffix(b"\r\n").unwrap_or(text);
        seen.longest = seen.longest.max(body.len());
        seen.content.extend_from_slice(text);
    }
}

/// `bytes` with every `<CR><LF><SPACE>` taken out.
fn without_breaks(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"\r\n ") {
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Line text of `n` bytes: no line end, no space, no dot.
fn text(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| b'a' + ((i + seed as usize) % 26) as u8)
        .collect()
}

/// The message as the client means it (before dot-stuffing): a 2,508-byte
/// header line, then body lines of 999, 100,000 and 998 bytes, and a
/// dot-led line.
fn long_message() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut header = b"X-Long: ".to_vec();
    header.extend(text(2_500, 1));
    assert_eq!(header.len(), 2_508);
    let mut body = text(999, 2);
    body.extend_from_slice(b"\r\n");
    body.extend(text(100_000, 3));
    body.extend_from_slice(b"\r\n");
    body.extend(text(MAX_LINE, 4));
    body.extend_from_slice(b"\r\n.dot-led line\r\nend\r\n");
    let mut message = b"Subject: long lines\r\n".to_vec();
    message.extend_from_slice(&header);
    message.extend_from_slice(b"\r\n\r\n");
    message.extend_from_slice(&body);
    (message, header, body)
}

/// What the client sends after DATA: the message, dot-stuffed.
fn stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 16);
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out
}

/// Starts a daemon relaying to `sink`, submits the long message and
/// returns the instance and the queue ID.
fn relay_long_message(tag: &str, sink: &StrictSink, extra: &str) -> (Instance, String) {
    let mut inst = Instance::new(tag, &format!("{}{extra}", relay_to(sink.addr.port())));
    inst.start();
    let mut c = inst.connect();
    c.reply();
    c.cmd("EHLO client.example.org");
    let (message, _, _) = long_message();
    let reply = c.send_mail(
        "alice@example.org",
        &["bob@example.net"],
        &stuffed(&message),
    );
    let qid = queued_as(&reply).unwrap_or_else(|| panic!("not queued: {reply}"));
    c.cmd("QUIT");
    (inst, qid)
}

#[test]
fn long_lines_are_broken_and_the_strict_next_hop_accepts() {
    let sink = StrictSink::start();
    let (mut inst, qid) = relay_long_message("longlines", &sink, "");
    assert!(sink.wait(1), "nothing relayed; log:\n{}", inst.log());
    let seen = sink.seen.lock().unwrap();
    let got = &seen[0];
    assert!(got.longest <= MAX_LINE, "a {}-byte line", got.longest);
    for line in got.wire.split_inclusive(|&b| b == b'\n') {
        let stuffed = usize::from(line.starts_with(b".."));
        assert!(line.len() <= MAX_LINE + 2 + stuffed, "{} bytes", line.len());
        assert!(line.ends_with(b"\r\n"));
    }
    // Only the breaks were added: the header line is whole again once they
    // are taken out, and so is the body.
    let (_, header, body) = long_message();
    let unbroken = without_breaks(&got.content);
    let mut whole_header = b"\r\n".to_vec();
    whole_header.extend_from_slice(&header);
    whole_header.extend_from_slice(b"\r\n");
    assert!(unbroken
        .windows(whole_header.len())
        .any(|w| w == whole_header));
    let mut whole_body = b"\r\n\r\n".to_vec();
    whole_body.extend_from_slice(&body);
    assert!(unbroken.ends_with(&whole_body));
    // The 998-byte line went out as it was.
    let mut exact = b"\r\n".to_vec();
    exact.extend(text(MAX_LINE, 4));
    exact.extend_from_slice(b"\r\n");
    assert!(got.wire.windows(exact.len()).any(|w| w == exact));
    drop(seen);
    assert!(
        wait_until(Duration::from_secs(10), || inst
            .log()
            .contains(&format!("{qid}: to=<bob@example.net>"))),
        "{}",
        inst.log()
    );
    let log = inst.log();
    assert!(
        log.contains("status=sent (250 2.0.0 Ok: queued as STRICT1)"),
        "{log}"
    );
    assert!(inst.stop().success());
}

#[test]
fn limit_zero_sends_long_lines_as_they_are() {
    let sink = StrictSink::start();
    let (mut inst, qid) = relay_long_message("longlines0", &sink, "smtp_line_length_limit = 0\n");
    assert!(sink.wait(1), "nothing relayed; log:\n{}", inst.log());
    let longest = sink.seen.lock().unwrap()[0].longest;
    assert_eq!(longest, 100_000);
    assert!(
        wait_until(Duration::from_secs(10), || inst
            .log()
            .contains(&format!("{qid}: to=<bob@example.net>"))),
        "{}",
        inst.log()
    );
    let log = inst.log();
    assert!(log.contains("status=bounced"), "{log}");
    assert!(log.contains("500 5.5.2 Line too long"), "{log}");
    assert!(inst.stop().success());
}
