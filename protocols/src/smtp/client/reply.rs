//! Server replies as the client reads them (RFC 5321 §4.2), the way
//! Postfix's `smtp_chat_resp()` reads them.
//!
//! A reply is one or more lines; every line but the last has `-` after
//! the three-digit code, the last has a space (or nothing). Like Postfix,
//! a line that does not look like a reply line is kept as text and treated
//! as a continuation: only `NNN SP` or a bare `NNN` ends a reply.
//!
//! **Bounds.** A line longer than `line_length_limit` (2048, Postfix's
//! `line_length_limit`, which its SMTP client also uses for replies) is
//! truncated and the rest of it skipped. At most `line_length_limit`
//! bytes of a multi-line reply are kept as text (Postfix's defence against
//! a server that sends an endless reply); later lines are read and
//! dropped. And a whole reply may not exceed `max_reply_bytes` on the
//! wire: past that the parser gives [`ReplyError::TooLong`] instead of
//! reading on, so a server that never ends its reply costs one deferral,
//! not an open-ended read.

use memchr::memchr;
use thiserror::Error;

use crate::smtp::reply::EnhancedCode;

/// Postfix's `line_length_limit` default: the longest reply line kept.
pub const LINE_LENGTH_LIMIT: usize = 2048;

/// Default for the whole-reply bound: 32 lines at `line_length_limit`.
/// Postfix has no such parameter (it relies on its timeouts); a real
/// EHLO or rejection reply is well under 4 KiB.
pub const MAX_REPLY_BYTES: usize = 32 * LINE_LENGTH_LIMIT;

/// Why a reply could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ReplyError {
    /// The reply went on past `max_reply_bytes` without ending.
    #[error("server reply exceeds {limit} bytes")]
    TooLong { limit: usize },
}

/// One complete server reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerReply {
    /// The code of the last line (the one that ended the reply).
    pub code: u16,
    /// The enhanced status code (RFC 3463) from the last line, when it is
    /// valid and its class matches a 2xx, 4xx or 5xx reply (Postfix ignores
    /// out-of-protocol codes).
    pub enhanced: Option<EnhancedCode>,
    /// The lines as received, codes included, joined with `\n`; control
    /// characters and invalid UTF-8 shown as `?` (Postfix's `printable()`).
    /// Capped at about `line_length_limit` bytes.
    pub text: String,
}

impl ServerReply {
    /// The first digit of the code.
    pub fn class(&self) -> u16 {
        self.code / 100
    }

    pub fn is_positive_completion(&self) -> bool {
        self.class() == 2
    }

    pub fn is_intermediate(&self) -> bool {
        self.class() == 3
    }

    /// The status for a DSN: the enhanced code when given, else derived
    /// from the reply code (`2.0.0`, `4.0.0`, `5.0.0`), else `5.5.0` for a
    /// code outside the protocol (Postfix's "SAFETY! protocol error").
    pub fn dsn(&self) -> EnhancedCode {
        match (self.enhanced, self.class()) {
            (Some(e), _) => e,
            (None, c @ (2 | 4 | 5)) => EnhancedCode(c as u8, 0, 0),
            (None, _) => EnhancedCode(5, 5, 0),
        }
    }

    /// The reply on one line, as Postfix logs it (`translit(str, "\n", " ")`).
    pub fn one_line(&self) -> String {
        self.text.replace('\n', " ")
    }

    /// Each line's text after the code and its separator (`250-SIZE 10` gives
    /// `SIZE 10`). Lines without a code are given whole.
    pub fn line_texts(&self) -> impl Iterator<Item = &str> {
        self.text.split('\n').map(|line| {
            let b = line.as_bytes();
            let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 3 && matches!(b.get(3), Some(b'-' | b' ')) {
                &line[4..]
            } else if digits == 3 && b.len() == 3 {
                ""
            } else {
                line
            }
        })
    }
}

/// Incremental reply reader; see the module docs. Feed it whatever the
/// socket gave; it consumes up to the end of one reply and hands it back.
#[derive(Clone, Debug)]
pub struct ReplyParser {
    line_limit: usize,
    reply_limit: usize,
    /// The current line so far, at most `line_limit` bytes.
    line: Vec<u8>,
    /// Text of the reply so far.
    text: String,
    /// Wire bytes of the reply so far, for `reply_limit`.
    total: usize,
}

/// What one [`ReplyParser::feed`] call did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// Bytes of the input consumed: all of it, or up to the end of the
    /// reply returned.
    pub consumed: usize,
    pub reply: Option<ServerReply>,
}

impl ReplyParser {
    /// `line_limit`: Postfix's `line_length_limit`; `reply_limit`: the most
    /// wire bytes one reply may take.
    pub fn new(line_limit: usize, reply_limit: usize) -> Self {
        ReplyParser {
            line_limit: line_limit.max(8),
            reply_limit: reply_limit.max(line_limit),
            line: Vec::new(),
            text: String::new(),
            total: 0,
        }
    }

    /// Whether part of a reply has been read.
    pub fn in_reply(&self) -> bool {
        self.total > 0
    }

    /// Consumes `input` up to the end of the next reply. A reply split
    /// over several calls is assembled; bytes after the reply are left for
    /// the next call (pipelined replies arrive together).
    ///
    /// Contract: no I/O; memory held is bounded by about twice
    /// `line_limit` whatever the input.
    pub fn feed(&mut self, input: &[u8]) -> Result<Parsed, ReplyError> {
        let mut i = 0;
        while i < input.len() {
            let (end, has_lf) = match memchr(b'\n', &input[i..]) {
                Some(k) => (i + k, true),
                None => (input.len(), false),
            };
            self.total += end - i + usize::from(has_lf);
            if self.total > self.reply_limit {
                self.reset();
                return Err(ReplyError::TooLong {
                    limit: self.reply_limit,
                });
            }
            let room = self.line_limit.saturating_sub(self.line.len());
            let piece = &input[i..end];
            self.line.extend_from_slice(&piece[..piece.len().min(room)]);
            if !has_lf {
                return Ok(Parsed {
                    consumed: input.len(),
                    reply: None,
                });
            }
            i = end + 1;
            if let Some(reply) = self.end_line() {
                return Ok(Parsed {
                    consumed: i,
                    reply: Some(reply),
                });
            }
        }
        Ok(Parsed {
            consumed: input.len(),
            reply: None,
        })
    }

    /// Finishes the current line; gives the reply when the line ends it.
    fn end_line(&mut self) -> Option<ServerReply> {
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        let digits = self.line.iter().take_while(|c| c.is_ascii_digit()).count();
        let last = digits == 3 && matches!(self.line.get(3), None | Some(b' '));
        // Postfix keeps multi-line text only while it is under the limit.
        if self.text.len() < self.line_limit {
            if !self.text.is_empty() {
                self.text.push('\n');
            }
            push_printable(&mut self.text, &self.line);
        }
        if !last {
            self.line.clear();
            return None;
        }
        let code = u16::from(self.line[0] - b'0') * 100
            + u16::from(self.line[1] - b'0') * 10
            + u16::from(self.line[2] - b'0');
        let enhanced = match self.line[0] {
            c @ (b'2' | b'4' | b'5') => {
                parse_enhanced(self.line.get(4..).unwrap_or(&[])).filter(|e| e.0 == c - b'0')
            }
            _ => None,
        };
        let reply = ServerReply {
            code,
            enhanced,
            text: std::mem::take(&mut self.text),
        };
        self.reset();
        Some(reply)
    }

    fn reset(&mut self) {
        self.line.clear();
        self.text.clear();
        self.total = 0;
    }
}

/// Appends `bytes` as text, with control characters and invalid UTF-8
/// replaced by `?`.
fn push_printable(out: &mut String, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        out.extend(
            chunk
                .valid()
                .chars()
                .map(|c| if c.is_control() { '?' } else { c }),
        );
        if !chunk.invalid().is_empty() {
            out.push('?');
        }
    }
}

/// Parses `class.subject.detail` at the start of `text` (after leading
/// spaces), as Postfix's `dsn_valid()`: one digit, then one to three
/// digits twice, then the end or white space.
pub fn parse_enhanced(text: &[u8]) -> Option<EnhancedCode> {
    let start = text.iter().take_while(|&&c| c == b' ').count();
    let t = &text[start..];
    let number = |t: &[u8], max: usize| -> Option<(u16, usize)> {
        let n = t.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > max {
            return None;
        }
        let v = t[..n]
            .iter()
            .fold(0u16, |v, &c| v * 10 + u16::from(c - b'0'));
        Some((v, n))
    };
    let (class, n1) = number(t, 1)?;
    if t.get(n1) != Some(&b'.') {
        return None;
    }
    let (subject, n2) = number(&t[n1 + 1..], 3)?;
    let at = n1 + 1 + n2;
    if t.get(at) != Some(&b'.') {
        return None;
    }
    let (detail, n3) = number(&t[at + 1..], 3)?;
    match t.get(at + 1 + n3) {
        None | Some(b' ' | b'\t') => Some(EnhancedCode(class as u8, subject, detail)),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Vec<ServerReply> {
        let mut p = ReplyParser::new(LINE_LENGTH_LIMIT, MAX_REPLY_BYTES);
        let mut out = Vec::new();
        let mut rest = input;
        while !rest.is_empty() {
            let r = p.feed(rest).expect("within limits");
            rest = &rest[r.consumed..];
            out.extend(r.reply);
        }
        out
    }

    #[test]
    fn single_and_multi_line() {
        let r =
            parse_all(b"250 2.1.0 Ok\r\n250-mx.example\r\n250-PIPELINING\r\n250 SIZE 10240000\r\n");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].code, 250);
        assert_eq!(r[0].enhanced, Some(EnhancedCode(2, 1, 0)));
        assert_eq!(r[0].text, "250 2.1.0 Ok");
        assert_eq!(
            r[1].text,
            "250-mx.example\n250-PIPELINING\n250 SIZE 10240000"
        );
        assert_eq!(
            r[1].line_texts().collect::<Vec<_>>(),
            ["mx.example", "PIPELINING", "SIZE 10240000"]
        );
        assert_eq!(r[1].enhanced, None);
    }

    /// A reply line; the enhanced code it carries; the DSN it stands for.
    type Case = (&'static [u8], Option<(u8, u16, u16)>, (u8, u16, u16));

    #[test]
    fn enhanced_codes_table() {
        let table: &[Case] = &[
            (b"550 5.1.1 <x@y>: no", Some((5, 1, 1)), (5, 1, 1)),
            (b"550 5.1.1", Some((5, 1, 1)), (5, 1, 1)),
            (b"451 4.3.0  text", Some((4, 3, 0)), (4, 3, 0)),
            (b"550 4.1.1 class mismatch", None, (5, 0, 0)),
            (b"354 3.0.0 go ahead", None, (5, 5, 0)),
            (b"250 Ok", None, (2, 0, 0)),
            (b"421", None, (4, 0, 0)),
            (b"550 5.1.1234 too long", None, (5, 0, 0)),
            (b"550 5.1.1x", None, (5, 0, 0)),
            (b"999 9.9.9 odd", None, (5, 5, 0)),
        ];
        for (line, enhanced, dsn) in table {
            let mut wire = line.to_vec();
            wire.extend_from_slice(b"\r\n");
            let r = &parse_all(&wire)[0];
            assert_eq!(
                r.enhanced,
                enhanced.map(|(a, b, c)| EnhancedCode(a, b, c)),
                "{}",
                String::from_utf8_lossy(line)
            );
            assert_eq!(r.dsn(), EnhancedCode(dsn.0, dsn.1, dsn.2));
        }
    }

    #[test]
    fn every_split_gives_the_same_replies() {
        let wire = b"220 mx ESMTP\r\n250-a\r\n250 b\r\n550 5.1.1 no\n";
        let whole = parse_all(wire);
        for cut in 0..wire.len() {
            let mut p = ReplyParser::new(LINE_LENGTH_LIMIT, MAX_REPLY_BYTES);
            let mut got = Vec::new();
            for part in [&wire[..cut], &wire[cut..]] {
                let mut rest = part;
                while !rest.is_empty() {
                    let r = p.feed(rest).unwrap();
                    rest = &rest[r.consumed..];
                    got.extend(r.reply);
                }
            }
            assert_eq!(got, whole, "cut at {cut}");
        }
    }

    #[test]
    fn garbage_lines_continue_the_reply_and_are_censored() {
        let r = parse_all(b"hello\r\n25x\x01\r\n250-\xffok\r\n250 done\r\n");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].code, 250);
        assert_eq!(r[0].text, "hello\n25x?\n250-?ok\n250 done");
    }

    #[test]
    fn long_lines_are_truncated_and_text_is_capped() {
        let mut wire = b"550-".to_vec();
        wire.extend(std::iter::repeat_n(b'x', 10_000));
        wire.extend_from_slice(b"\r\n");
        for _ in 0..10 {
            wire.extend_from_slice(b"550-");
            wire.extend(std::iter::repeat_n(b'y', 1000));
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"550 5.7.1 end\r\n");
        let r = &parse_all(&wire)[0];
        assert_eq!(r.code, 550);
        assert_eq!(r.enhanced, Some(EnhancedCode(5, 7, 1)));
        assert!(
            r.text.len() <= 2 * LINE_LENGTH_LIMIT + 1,
            "{}",
            r.text.len()
        );
        assert!(r.text.starts_with("550-xxx"));
    }

    #[test]
    fn endless_reply_is_an_error_not_a_buffer() {
        let mut p = ReplyParser::new(LINE_LENGTH_LIMIT, 4096);
        let chunk = b"250-more and more and more\r\n".repeat(10);
        let mut fed = 0;
        let err = loop {
            match p.feed(&chunk) {
                Ok(r) => {
                    assert!(r.reply.is_none());
                    fed += r.consumed;
                }
                Err(e) => break e,
            }
            assert!(fed < 10_000);
        };
        assert_eq!(err, ReplyError::TooLong { limit: 4096 });
        // The parser is usable again afterwards.
        let r = p.feed(b"250 ok\r\n").unwrap();
        assert_eq!(r.reply.map(|r| r.code), Some(250));
    }

    #[test]
    fn endless_line_without_newline_is_bounded() {
        let mut p = ReplyParser::new(LINE_LENGTH_LIMIT, MAX_REPLY_BYTES);
        let chunk = vec![b'z'; 4096];
        let mut result = Ok(());
        for _ in 0..100 {
            if let Err(e) = p.feed(&chunk) {
                result = Err(e);
                break;
            }
            assert!(p.line.len() <= LINE_LENGTH_LIMIT);
        }
        assert_eq!(
            result,
            Err(ReplyError::TooLong {
                limit: MAX_REPLY_BYTES
            })
        );
    }

    fn run(p: &mut ReplyParser, input: &[u8], step: usize) -> Vec<Result<ServerReply, ReplyError>> {
        let mut out = Vec::new();
        for chunk in input.chunks(step.max(1)) {
            let mut rest = chunk;
            while !rest.is_empty() {
                match p.feed(rest) {
                    Ok(r) => {
                        rest = &rest[r.consumed..];
                        out.extend(r.reply.map(Ok));
                    }
                    Err(e) => {
                        // The connection is given up after an error.
                        out.push(Err(e));
                        return out;
                    }
                }
                assert!(p.line.len() <= p.line_limit);
                assert!(p.text.len() <= 2 * p.line_limit + 1);
            }
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any bytes: no panic, bounded memory, and the replies read do not
        /// depend on how the input was split into reads.
        #[test]
        fn any_input_any_split(
            pieces in proptest::collection::vec(proptest::prop_oneof![
                proptest::prelude::Just(b"250-".to_vec()),
                proptest::prelude::Just(b"550 5.1.1 ".to_vec()),
                proptest::prelude::Just(b"\r\n".to_vec()),
                proptest::prelude::Just(b"\n".to_vec()),
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            ], 0..40),
            step in 1usize..50,
        ) {
            let input = pieces.concat();
            let whole = run(&mut ReplyParser::new(64, 512), &input, input.len());
            let split = run(&mut ReplyParser::new(64, 512), &input, step);
            proptest::prop_assert_eq!(whole, split);
        }
    }
}
