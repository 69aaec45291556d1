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
//! - **Long lines** ([`DotStuffer::with_line_limit`], Postfix's
//!   `smtp_line_length_limit`, default 998): a line longer than the limit
//!   is broken by inserting `<CR><LF><SPACE>`, exactly as Postfix's
//!   `smtp_text_out()` (smtp_proto.c) does, in message headers and body
//!   alike. The first piece holds `limit` bytes of the line; each later
//!   piece is the inserted space and up to `limit - 1` bytes more. A break
//!   is made only when the line goes on: a line of exactly `limit` bytes
//!   is sent as it is. The limit counts the line's bytes without its CRLF
//!   and without the dot added by dot-stuffing (RFC 5321 §4.5.3.1.6 counts
//!   neither). A piece never begins with `.`, since every piece after the
//!   first begins with the space. A limit of 0 disables breaking. (Postfix
//!   loops forever on a limit of 1; here 1 is taken as 2, the smallest
//!   limit that makes progress.)
//!
//! Lines at or under the limit go out byte for byte as without a limit,
//! so a DKIM signature over them survives. A broken header stays a header
//! (the space makes each piece a continuation line); a broken body line
//! gains a space per break, which Postfix accepts "to minimize the damage
//! to MIME formatted mail".
//!
//! Content from the queue normally has CRLF line endings already; then
//! the output is the input plus one `.` per dot-led line and one
//! `<CR><LF><SPACE>` per break.
//!
//! **Hot path.** One `memchr2` per line, or per `limit` bytes of a long
//! line, to find its end; runs between line ends and breaks are copied
//! whole. The encoder keeps its place in the line (the state and how many
//! bytes of the line are out) across calls, so content can be encoded in
//! chunks of any size, and it never holds content itself.

use memchr::memchr2;

/// Postfix's `smtp_line_length_limit` default: the longest line sent, not
/// counting its CRLF (RFC 5321's 1000 bytes with CRLF).
pub const SMTP_LINE_LENGTH_LIMIT: usize = 998;

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
    /// The most content bytes on one output line; `usize::MAX` when
    /// breaking is off.
    limit: usize,
    /// Content bytes on the current output line so far (an inserted space
    /// included, a stuffed dot not). Meaningful in `Mid` only.
    col: usize,
}

impl Default for DotStuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl DotStuffer {
    /// An encoder that never breaks lines (the load tools, and callers
    /// that want the content as it is).
    pub fn new() -> Self {
        Self::with_line_limit(0)
    }

    /// An encoder that breaks lines longer than `limit` bytes (Postfix's
    /// `smtp_line_length_limit`); 0 disables breaking.
    pub fn with_line_limit(limit: usize) -> Self {
        DotStuffer {
            state: State::Start,
            limit: match limit {
                0 => usize::MAX,
                n => n.max(2),
            },
            col: 0,
        }
    }

    /// Encodes `input`, appending to `out`. Any split of the content into
    /// calls gives the same bytes.
    ///
    /// Contract: no I/O; `out` grows by at most `4 * input.len() + 2`
    /// (`2 * input.len() + 2` without breaks, plus three bytes per break,
    /// of which there is at most one per `limit - 1` input bytes).
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Start => {
                    if input[i] == b'.' {
                        out.push(b'.');
                    }
                    self.state = State::Mid;
                    self.col = 0;
                }
                State::Cr => {
                    // CRLF, or a bare CR: either way one CRLF goes out.
                    out.extend_from_slice(b"\r\n");
                    if input[i] == b'\n' {
                        i += 1;
                    }
                    self.state = State::Start;
                }
                State::Mid => i = self.mid(input, i, out),
            }
        }
    }

    /// Copies from `input[i..]` up to the next line end, the next break or
    /// the end of the input, whichever comes first; returns where it
    /// stopped.
    fn mid(&mut self, input: &[u8], i: usize, out: &mut Vec<u8>) -> usize {
        // The room left on this output line, and one byte more: the byte
        // after a full line decides whether the line ends there or breaks.
        let room = self.limit - self.col;
        let end = input.len().min(i.saturating_add(room).saturating_add(1));
        match memchr2(b'\r', b'\n', &input[i..end]) {
            Some(k) => {
                let j = i + k;
                out.extend_from_slice(&input[i..j]);
                if input[j] == b'\n' {
                    out.extend_from_slice(b"\r\n");
                    self.state = State::Start;
                } else {
                    self.state = State::Cr;
                }
                j + 1
            }
            None if end - i > room => {
                // The line is full and goes on: break it as smtp_text_out()
                // does, with a space that makes the rest a continuation.
                out.extend_from_slice(&input[i..i + room]);
                out.extend_from_slice(b"\r\n ");
                self.col = 1;
                i + room
            }
            None => {
                out.extend_from_slice(&input[i..end]);
                self.col += end - i;
                end
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
    dot_stuff_limited(content, 0)
}

/// The whole DATA payload for `content` with lines broken at `limit`
/// (`smtp_line_length_limit`; 0: not broken).
pub fn dot_stuff_limited(content: &[u8], limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + content.len() / 64 + 5);
    let mut enc = DotStuffer::with_line_limit(limit);
    enc.encode(content, &mut out);
    enc.finish(&mut out);
    out
}

#[cfg(test)]
mod long_lines;
#[cfg(test)]
mod tests;
