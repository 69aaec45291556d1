//! Tests of line breaking at `smtp_line_length_limit` (Postfix's
//! `smtp_text_out()`): tables at the limit, every split across chunks,
//! and properties against an independent model.

use proptest::prelude::*;

use super::tests::{content_strategy, normalised, unstuff};
use super::*;

const LIMIT: usize = SMTP_LINE_LENGTH_LIMIT;

/// `n` bytes of line text, none of them a line end, a dot or a space.
fn text(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Encodes `content` split at `cuts` (sorted offsets) with `limit`.
fn encode_split(content: &[u8], cuts: &[usize], limit: usize) -> Vec<u8> {
    let mut enc = DotStuffer::with_line_limit(limit);
    let mut out = Vec::new();
    let mut at = 0;
    for &cut in cuts {
        enc.encode(&content[at..cut], &mut out);
        at = cut;
    }
    enc.encode(&content[at..], &mut out);
    enc.finish(&mut out);
    out
}

/// Asserts that every split of `content` into two chunks, and the split
/// into single bytes, gives `want`.
fn assert_every_split(content: &[u8], limit: usize, want: &[u8]) {
    for cut in 0..=content.len() {
        let got = encode_split(content, &[cut], limit);
        assert!(got == want, "split at {cut} of {} bytes", content.len());
    }
    let bytes: Vec<usize> = (1..content.len()).collect();
    assert!(encode_split(content, &bytes, limit) == want, "byte by byte");
}

/// The independent model: Postfix's `smtp_text_out()` applied to each
/// whole line of the normalised content, byte by byte.
fn model(content: &[u8], limit: usize) -> Vec<u8> {
    let limit = if limit == 0 { usize::MAX } else { limit.max(2) };
    let norm = normalised(content);
    let mut out = Vec::new();
    for line in norm.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let line = &line[..line.len() - 1]; // the CR
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        let mut space_left = limit;
        for &b in line {
            if space_left == 0 {
                out.extend_from_slice(b"\r\n ");
                space_left = limit - 1;
            }
            out.push(b);
            space_left -= 1;
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[test]
fn lines_around_the_limit_in_the_body() {
    for n in [997, 998, 999, 1000] {
        let line = text(n);
        let mut content = b"Subject: s\r\n\r\n".to_vec();
        content.extend_from_slice(&line);
        content.extend_from_slice(b"\r\nnext\r\n");
        let mut want = b"Subject: s\r\n\r\n".to_vec();
        if n <= LIMIT {
            want.extend_from_slice(&line);
        } else {
            want.extend_from_slice(&line[..LIMIT]);
            want.extend_from_slice(b"\r\n ");
            want.extend_from_slice(&line[LIMIT..]);
        }
        want.extend_from_slice(b"\r\nnext\r\n.\r\n");
        assert_every_split(&content, LIMIT, &want);
    }
}

#[test]
fn header_lines_around_the_limit_become_continuations() {
    for n in [997, 998, 999, 1000] {
        let mut header = b"X-Long: ".to_vec();
        header.extend_from_slice(&text(n - header.len()));
        let mut content = header.clone();
        content.extend_from_slice(b"\r\nSubject: s\r\n\r\nbody\r\n");
        let mut want = Vec::new();
        if n <= LIMIT {
            want.extend_from_slice(&header);
        } else {
            want.extend_from_slice(&header[..LIMIT]);
            want.extend_from_slice(b"\r\n ");
            want.extend_from_slice(&header[LIMIT..]);
        }
        want.extend_from_slice(b"\r\nSubject: s\r\n\r\nbody\r\n.\r\n");
        assert_every_split(&content, LIMIT, &want);
    }
}

#[test]
fn a_line_ending_exactly_at_the_limit_is_not_broken() {
    let line = text(LIMIT);
    // With CRLF, a bare LF, a bare CR, or at the end of the content.
    for end in [&b"\r\n"[..], b"\n", b"\r", b""] {
        let mut content = line.clone();
        content.extend_from_slice(end);
        let mut want = line.clone();
        want.extend_from_slice(b"\r\n.\r\n");
        assert_every_split(&content, LIMIT, &want);
    }
}

#[test]
fn crlf_straddling_chunks_at_the_limit() {
    let mut content = text(LIMIT);
    content.extend_from_slice(b"\r\n");
    content.extend_from_slice(&text(LIMIT + 1));
    content.extend_from_slice(b"\r\n");
    let mut want = text(LIMIT);
    want.extend_from_slice(b"\r\n");
    want.extend_from_slice(&text(LIMIT));
    want.extend_from_slice(b"\r\n ");
    want.push(text(LIMIT + 1)[LIMIT]);
    want.extend_from_slice(b"\r\n.\r\n");
    // Cuts around both line ends: before the CR, between CR and LF, after.
    for a in [LIMIT, LIMIT + 1, LIMIT + 2] {
        for b in [2 * LIMIT + 2, 2 * LIMIT + 3, 2 * LIMIT + 4] {
            assert_eq!(encode_split(&content, &[a, b], LIMIT), want, "{a} {b}");
        }
    }
    assert_every_split(&content, LIMIT, &want);
}

#[test]
fn a_piece_that_starts_with_a_dot_is_not_stuffed() {
    // The piece after the break begins with the inserted space, so its
    // dot is no longer at the start of a line.
    let mut content = text(LIMIT);
    content.extend_from_slice(b".\r\n");
    let mut want = text(LIMIT);
    want.extend_from_slice(b"\r\n .\r\n.\r\n");
    assert_every_split(&content, LIMIT, &want);
    // A dot-led long line: the stuffed dot does not count.
    let mut content = b".".to_vec();
    content.extend_from_slice(&text(LIMIT + 1));
    let mut want = b"..".to_vec();
    want.extend_from_slice(&content[1..LIMIT]);
    want.extend_from_slice(b"\r\n ");
    want.extend_from_slice(&content[LIMIT..]);
    want.extend_from_slice(b"\r\n.\r\n");
    assert_every_split(&content, LIMIT, &want);
}

#[test]
fn a_very_long_line_is_broken_every_limit_minus_one_bytes() {
    let line = text(100_000);
    let wire = dot_stuff_limited(&line, LIMIT);
    let lines: Vec<&[u8]> = wire.split(|&b| b == b'\n').collect();
    // 998 bytes, then a space and 997 bytes each, then the end of data.
    let pieces = 1 + (100_000 - LIMIT).div_ceil(LIMIT - 1);
    assert_eq!(lines.len(), pieces + 2);
    assert_eq!(lines[0].len(), LIMIT + 1);
    assert!(lines[1..pieces].iter().all(|l| l[0] == b' '));
    assert!(lines[1..pieces - 1].iter().all(|l| l.len() == LIMIT + 1));
    let mut back = line.clone();
    back.extend_from_slice(b"\r\n.\r\n");
    assert_eq!(without_breaks(&wire), back);
}

#[test]
fn limit_zero_disables_breaking() {
    let mut content = text(100_000);
    content.extend_from_slice(b"\r\n");
    assert_eq!(dot_stuff_limited(&content, 0), dot_stuff(&content));
    let mut want = content.clone();
    want.extend_from_slice(b".\r\n");
    assert_eq!(dot_stuff_limited(&content, 0), want);
}

#[test]
fn tiny_limits_make_progress() {
    // Postfix would loop forever on 1; here it is taken as 2.
    assert_eq!(
        dot_stuff_limited(b"abcd\r\n", 1),
        b"ab\r\n c\r\n d\r\n.\r\n"
    );
    assert_eq!(
        dot_stuff_limited(b"abcd\r\n", 2),
        b"ab\r\n c\r\n d\r\n.\r\n"
    );
    assert_eq!(dot_stuff_limited(b"abcd\r\n", 3), b"abc\r\n d\r\n.\r\n");
}

/// Content whose normalised lines never begin with a space, so that every
/// `<CR><LF><SPACE>` on the wire is a break the encoder made.
fn unspaced(mut content: Vec<u8>) -> Vec<u8> {
    for i in 0..content.len() {
        if content[i] == b' ' && (i == 0 || matches!(content[i - 1], b'\r' | b'\n')) {
            content[i] = b'x';
        }
    }
    content
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any chunking gives the model's bytes.
    #[test]
    fn matches_the_model(
        content in content_strategy(),
        limit in 0usize..40,
        cuts in proptest::collection::vec(0usize..300, 0..6),
    ) {
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(content.len())).collect();
        cuts.sort_unstable();
        prop_assert_eq!(encode_split(&content, &cuts, limit), model(&content, limit));
    }

    /// Every line fits; the next hop reads the content back with only the
    /// breaks added; the wire has no bare CR or LF.
    #[test]
    fn lines_fit_and_breaks_are_all_that_is_added(
        content in content_strategy().prop_map(unspaced),
        limit in 2usize..40,
        step in 1usize..64,
    ) {
        let wire = dot_stuff_limited(&content, limit);
        for line in wire.split_inclusive(|&b| b == b'\n') {
            let stuffed = usize::from(line.starts_with(b".."));
            prop_assert!(line.len() <= limit + 2 + stuffed, "{:?}", String::from_utf8_lossy(line));
        }
        let (decoded, used, scanner) = unstuff(&wire, step);
        prop_assert_eq!(used, wire.len());
        prop_assert_eq!(scanner.refusal(), None);
        for line in decoded.split_inclusive(|&b| b == b'\n') {
            prop_assert!(line.len() <= limit + 2);
        }
        prop_assert_eq!(without_breaks(&decoded), normalised(&content));
    }

    /// Lines at or under the limit go out byte for byte as with no limit.
    #[test]
    fn lines_within_the_limit_are_untouched(content in content_strategy(), extra in 0usize..2) {
        let norm = normalised(&content);
        let longest = norm.split(|&b| b == b'\n').map(|l| l.len().saturating_sub(1)).max().unwrap_or(0);
        let limit = longest.max(2) + extra;
        prop_assert_eq!(dot_stuff_limited(&content, limit), dot_stuff(&content));
    }
}
