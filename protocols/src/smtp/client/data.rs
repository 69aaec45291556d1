//! The DATA encoder: message content to the bytes that follow a 354
//! reply (RFC 5321 §4.5.2), ending with `.<CR><LF>`.
//!
//! - A line that starts with `.` gets a second `.` (dot-stuffing).
//! - **SMTP smuggling.** A bare LF and a bare CR each become CRLF, so what
//!   we send has no line ending that one server reads as the end of a line
//!   and another does not. `\n.\n` and `\r.\r` in the content therefore go
//!   out as `\r\n..\r\n`: content, never an end of data, at any next hop.
//! - The content is completed with CRLF when its last line has none, so
//!   that `.<CR><LF>` always stands on a line of its own.
//!
//! Content from the queue normally has CRLF line endings already; then
//! the output is the input plus one `.` per dot-led line.
//!
//! **Hot path.** One `memchr2` per line to find its end; runs between
//! line ends are copied whole. The encoder keeps three states of memory
//! across calls, so content can be encoded in chunks of any size.

use memchr::memchr2;

/// Where the encoder is within the current line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a line (also: at the start of the content).
    Start,
    /// Inside a line.
    Mid,
    /// Just after a `\r` (not yet written) whose partner may be the first
    /// byte of the next chunk.
    Cr,
}

/// Incremental dot-stuffing encoder; see the module docs.
#[derive(Clone, Debug)]
pub struct DotStuffer {
    state: State,
}

impl Default for DotStuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl DotStuffer {
    pub fn new() -> Self {
        DotStuffer {
            state: State::Start,
        }
    }

    /// Encodes `input`, appending to `out`. Any split of the content into
    /// calls gives the same bytes.
    ///
    /// Contract: no I/O; `out` grows by at most `2 * input.len() + 2`.
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Start => {
                    if input[i] == b'.' {
                        out.push(b'.');
                    }
                    self.state = State::Mid;
                }
                State::Cr => {
                    // CRLF, or a bare CR: either way one CRLF goes out.
                    out.extend_from_slice(b"\r\n");
                    if input[i] == b'\n' {
                        i += 1;
                    }
                    self.state = State::Start;
                }
                State::Mid => match memchr2(b'\r', b'\n', &input[i..]) {
                    None => {
                        out.extend_from_slice(&input[i..]);
                        i = input.len();
                    }
                    Some(k) => {
                        let j = i + k;
                        out.extend_from_slice(&input[i..j]);
                        if input[j] == b'\n' {
                            out.extend_from_slice(b"\r\n");
                            self.state = State::Start;
                        } else {
                            self.state = State::Cr;
                        }
                        i = j + 1;
                    }
                },
            }
        }
    }

    /// Ends the content: completes an unfinished last line with CRLF and
    /// appends the end-of-data line `.<CR><LF>`.
    pub fn finish(self, out: &mut Vec<u8>) {
        match self.state {
            State::Start => {}
            State::Mid | State::Cr => out.extend_from_slice(b"\r\n"),
        }
        out.extend_from_slice(b".\r\n");
    }
}

/// The whole DATA payload for `content`, end-of-data line included.
pub fn dot_stuff(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + content.len() / 64 + 5);
    let mut enc = DotStuffer::new();
    enc.encode(content, &mut out);
    enc.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::smtp::server::data::{DataScanner, Scan};
    use crate::smtp::BareNewline;

    /// What the content means: bare CR and bare LF as CRLF, and a CRLF at
    /// the end when the last line has none. (Written byte by byte on
    /// purpose: an independent model of the encoder.)
    fn normalised(content: &[u8]) -> Vec<u8> {
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
    fn unstuff(wire: &[u8], step: usize) -> (Vec<u8>, usize, DataScanner) {
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

    fn content_strategy() -> impl Strategy<Value = Vec<u8>> {
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
}
