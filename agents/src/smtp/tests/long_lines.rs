//! Long content lines on the wire: broken at `smtp_line_length_limit`
//! across several `BODY_CHUNK`s, or sent as they are when it is 0.

use super::pipe::TestClock;
use super::server::Script;
use super::{delivered, params, request, run_with, QUEUED};
use crate::smtp::BODY_CHUNK;

/// Headers with a 2,508-byte line, then a body with a 999-byte line and a
/// line longer than two `BODY_CHUNK`s.
fn long_content() -> Vec<u8> {
    let mut c = b"Subject: long\r\nX-Long: ".to_vec();
    c.extend(std::iter::repeat_n(b'h', 2_500));
    c.extend_from_slice(b"\r\n\r\n");
    c.extend(std::iter::repeat_n(b'n', 999));
    c.extend_from_slice(b"\r\n");
    c.extend((0..2 * BODY_CHUNK + 100).map(|i| b'a' + (i % 26) as u8));
    c.extend_from_slice(b"\r\n.end\r\n");
    c
}

#[test]
fn long_lines_are_broken_on_the_wire() {
    let content = long_content();
    let req = request(&["a@example.org"]);
    let r = run_with(
        Script::default(),
        &params(),
        TestClock::default(),
        3000,
        &[(&req, &content)],
    );
    assert_eq!(r.results, [Ok(vec![delivered(QUEUED)])]);
    let (raw, decoded) = &r.server.messages[0];
    for line in raw.split_inclusive(|&b| b == b'\n') {
        assert!(line.len() <= 998 + 2, "{} bytes", line.len());
    }
    // The header stays one header: its pieces are continuation lines.
    let header_end = decoded.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let x_long = &decoded[b"Subject: long\r\n".len()..header_end];
    assert_eq!(x_long.split(|&b| b == b'\n').count(), 3);
    assert!(x_long.split(|&b| b == b'\n').skip(1).all(|l| l[0] == b' '));
    // Only the breaks were added.
    let unbroken: Vec<u8> = {
        let mut out = Vec::new();
        let mut i = 0;
        while i < decoded.len() {
            if decoded[i..].starts_with(b"\r\n ") {
                i += 3;
            } else {
                out.push(decoded[i]);
                i += 1;
            }
        }
        out
    };
    assert_eq!(unbroken, content);
    assert!(raw.ends_with(b"\r\n..end\r\n.\r\n"));
}

#[test]
fn limit_zero_sends_long_lines_as_they_are() {
    let content = long_content();
    let req = request(&["a@example.org"]);
    let mut p = params();
    p.smtp_line_length_limit = 0;
    let r = run_with(
        Script::default(),
        &p,
        TestClock::default(),
        3000,
        &[(&req, &content)],
    );
    assert_eq!(r.results, [Ok(vec![delivered(QUEUED)])]);
    let (_, decoded) = &r.server.messages[0];
    assert_eq!(decoded, &content);
}
