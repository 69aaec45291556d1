//! Tests of the DATA encoder without a line length limit.

use proptest::prelude::*;

use super::*;
use crate::smtp::server::data::{DataScanner, Scan};
use crate::smtp::BareNewline;

/// What the content means: bare CR and bare LF as CRLF, and a CRLF at
/// the end when the last line has none. (Written byte by byte on
/// purpose: an independent model of the encoder.)
pub(super) fn normalised(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < content.len() {
        match content[i] {
            b'\r' if content.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
            }
            b'\r' | b'\n' => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[test]
fn table() {
    let table: &[(&[u8], &[u8])] = &[
        (b"", b".\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b"a", b"a\r\n.\r\n"),
        (b".\r\n", b"..\r\n.\r\n"),
        (b"a\r\n.b\r\n..\r\n", b"a\r\n..b\r\n...\r\n.\r\n"),
        (b"mid.dot\r\n", b"mid.dot\r\n.\r\n"),
        // Smuggling sequences: each becomes a stuffed content line.
        (
            b"a\n.\nMAIL FROM:<x>\n",
            b"a\r\n..\r\nMAIL FROM:<x>\r\n.\r\n",
        ),
        (b"a\r.\rb", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\r\n.\nb", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\n.\r\nb", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\r\r\n", b"a\r\n\r\n.\r\n"),
        (b"a\r", b"a\r\n.\r\n"),
        (b"\n", b"\r\n.\r\n"),
    ];
    for (input, want) in table {
        assert_eq!(
            dot_stuff(input),
            *want,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

/// Runs `wire` through smtpd's DATA scanner in pieces of `step` bytes.
pub(super) fn unstuff(wire: &[u8], step: usize) -> (Vec<u8>, usize, DataScanner) {
    let mut scanner = DataScanner::new(BareNewline::Reject, 0);
    let mut content = Vec::new();
    let mut at = 0;
    while at < wire.len() {
        let end = (at + step).min(wire.len());
        let (used, scan) = scanner.feed(&wire[at..end], &mut content);
        at += used;
        if scan == Scan::End {
            return (content, at, scanner);
        }
    }
    panic!("no end of data in {:?}", String::from_utf8_lossy(wire));
}

pub(super) fn content_strategy() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => "[a-z .]{0,12}".prop_map(String::into_bytes),
        2 => Just(b"\r\n".to_vec()),
        1 => Just(b"\n".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => Just(b".".to_vec()),
        1 => Just(b"\r\n.\r\n".to_vec()),
        1 => Just(b"\n.\n".to_vec()),
        1 => Just(b"\r.\r".to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// What we send decodes, at the next hop, to exactly the normalised
    /// content, ends exactly where we end it, and has no bare CR or LF
    /// (smtpd in `reject` mode would refuse it otherwise).
    #[test]
    fn round_trips_through_smtpd(content in content_strategy(), step in 1usize..64) {
        let wire = dot_stuff(&content);
        let (decoded, used, scanner) = unstuff(&wire, step);
        prop_assert_eq!(used, wire.len(), "ended early");
        prop_assert_eq!(scanner.refusal(), None);
        prop_assert_eq!(decoded, normalised(&content));
    }

    /// Any split of the content into `encode` calls gives the same bytes.
    #[test]
    fn chunking_does_not_matter(content in content_strategy(), cuts in proptest::collection::vec(0usize..200, 0..6)) {
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(content.len())).collect();
        cuts.sort_unstable();
        let mut enc = DotStuffer::new();
        let mut out = Vec::new();
        let mut at = 0;
        for cut in cuts {
            enc.encode(&content[at..cut], &mut out);
            at = cut;
        }
        enc.encode(&content[at..], &mut out);
        enc.finish(&mut out);
        prop_assert_eq!(out, dot_stuff(&content));
    }
}
