//! The DATA scanner: finds the end of DATA, undoes dot-stuffing, normalises
//! line endings and enforces `message_size_limit`, across any split of the
//! input into reads.
//!
//! **SMTP smuggling.** The end of DATA is where a sloppy server and a strict
//! one can disagree about where one message stops and the next command
//! starts. With [`BareNewline::Normalize`] (the default) and
//! [`BareNewline::Reject`] only `<CR><LF>.<CR><LF>` ends DATA: `\n.\n`,
//! `\r.\r`, `\n.\r\n` and `\r\n.\n` are all message content. A bare LF ends
//! a content line and is stored as CRLF; a bare CR is stored as is. With
//! `Reject`, a bare LF or bare CR anywhere poisons the message (it is read
//! to the real end and refused with `550 5.5.2`). [`BareNewline::No`] is
//! the pre-3.9 behaviour: any line that is just `.` ends DATA.
//!
//! **Memory.** Content goes to a [`ContentSink`]: a plain `Vec`, or a
//! budgeted [`Content`](super::budget::Content) that can refuse to grow;
//! then nothing more is stored and the message is refused with
//! [`Refusal::NoMemory`] once its end is read.
//!
//! **Hot path.** No allocation besides growing the content buffer, which
//! receives whole runs of bytes between `memchr2` hits via
//! `extend_from_slice`; a typical CRLF line costs one `memchr2` call and two
//! byte comparisons.

use memchr::memchr2;

use super::budget::ContentSink;
use crate::smtp::BareNewline;

/// Where the scanner is within the current content line. Bytes of a line's
/// leading `.` (and a `\r` after it) are held back in the state, not
/// stored, until the next byte says whether they are the terminator, a
/// lone-dot content line, or stuffing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    /// At the start of a line. `after_crlf`: the previous line ended with a
    /// real CRLF (or this is the first line of the message).
    Start { after_crlf: bool },
    /// Saw `.` at the start of a line.
    Dot { after_crlf: bool },
    /// Saw `.` `\r` at the start of a line.
    DotCr { after_crlf: bool },
    /// Inside a line.
    Mid,
    /// Inside a line, just after a `\r` (already stored) whose partner `\n`
    /// has not been seen yet.
    MidCr,
}

/// Whether the terminator has been seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// All input was consumed; the message continues.
    More,
    /// `<CR><LF>.<CR><LF>` (or, with `BareNewline::No`, any lone-dot line)
    /// was consumed; the message is complete.
    End,
}

/// Why the content of a finished message must be refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `BareNewline::Reject` and a bare LF was seen.
    BareLf,
    /// `BareNewline::Reject` and a bare CR was seen.
    BareCr,
    /// The content exceeded `message_size_limit`.
    TooBig,
    /// The content sink had no memory for it (the shard's
    /// `sluice_inflight_memory_limit`): `451 4.3.0`, the client retries.
    NoMemory,
}

/// Incremental DATA content scanner; see the module docs.
#[derive(Clone, Debug)]
pub struct DataScanner {
    line: Line,
    mode: BareNewline,
    /// `message_size_limit`; 0 = unlimited.
    size_limit: u64,
    too_big: bool,
    /// The sink refused an append; nothing more is stored.
    no_memory: bool,
    bare_lf: bool,
    bare_cr: bool,
    /// Content bytes seen so far (stored or not), for logs.
    seen: u64,
    /// Content bytes that count against `message_size_limit` (kept even
    /// when the sink ran out of memory, so an over-size message still gets
    /// its permanent 552 rather than a 451 and a retry).
    stored: u64,
}

impl DataScanner {
    pub fn new(mode: BareNewline, size_limit: u64) -> Self {
        DataScanner {
            line: Line::Start { after_crlf: true },
            mode,
            size_limit,
            too_big: false,
            no_memory: false,
            bare_lf: false,
            bare_cr: false,
            seen: 0,
            stored: 0,
        }
    }

    /// Scans `input`, appending unstuffed, CRLF-normalised content to
    /// `content`. Returns the bytes consumed (all of `input` unless the
    /// terminator was found) and whether the terminator was seen.
    ///
    /// Contract: no I/O, no allocation other than growing `content`; any
    /// split of the input across calls gives the same result.
    pub fn feed<S: ContentSink + ?Sized>(
        &mut self,
        input: &[u8],
        content: &mut S,
    ) -> (usize, Scan) {
        let legacy = self.mode == BareNewline::No;
        let mut i = 0; // next byte to look at
        let mut run = 0; // first byte of `input` not yet stored
        while i < input.len() {
            match self.line {
                Line::Start { after_crlf } => {
                    if input[i] == b'.' {
                        self.store(content, &input[run..i]);
                        i += 1;
                        run = i;
                        self.line = Line::Dot { after_crlf };
                    } else {
                        self.line = Line::Mid;
                    }
                }
                Line::Dot { after_crlf } => match input[i] {
                    b'\r' => {
                        i += 1;
                        run = i;
                        self.line = Line::DotCr { after_crlf };
                    }
                    b'\n' if legacy => return (i + 1, Scan::End),
                    b'\n' => {
                        // `.` + bare LF: a content line holding a lone dot.
                        self.bare_lf = true;
                        self.store(content, b".\r\n");
                        i += 1;
                        run = i;
                        self.line = Line::Start { after_crlf: false };
                    }
                    // Dot-stuffing: the dot was dropped, the byte is content.
                    _ => self.line = Line::Mid,
                },
                Line::DotCr { after_crlf } => {
                    if input[i] == b'\n' {
                        if after_crlf || legacy {
                            return (i + 1, Scan::End);
                        }
                        // `\n.\r\n`: after a bare LF a lone dot is content.
                        self.store(content, b".\r\n");
                        i += 1;
                        run = i;
                        self.line = Line::Start { after_crlf: true };
                    } else {
                        // `.\r` + more: stuffing dot dropped, the CR was bare.
                        self.bare_cr = true;
                        self.store(content, b"\r");
                        self.line = Line::Mid;
                    }
                }
                Line::Mid => match memchr2(b'\r', b'\n', &input[i..]) {
                    None => i = input.len(),
                    Some(k) => {
                        let j = i + k;
                        if input[j] == b'\n' {
                            // Bare LF: store the line with a CRLF instead.
                            self.bare_lf = true;
                            self.store(content, &input[run..j]);
                            self.store(content, b"\r\n");
                            i = j + 1;
                            run = i;
                            self.line = Line::Start { after_crlf: legacy };
                        } else if input.get(j + 1) == Some(&b'\n') {
                            i = j + 2;
                            self.line = Line::Start { after_crlf: true };
                        } else {
                            i = j + 1;
                            self.line = Line::MidCr;
                        }
                    }
                },
                Line::MidCr => {
                    if input[i] == b'\n' {
                        i += 1;
                        self.line = Line::Start { after_crlf: true };
                    } else {
                        self.bare_cr = true;
                        self.line = Line::Mid;
                    }
                }
            }
        }
        self.store(content, &input[run..]);
        (input.len(), Scan::More)
    }

    /// Appends `bytes` unless the message is already refused; an append that
    /// would cross the size limit, or that the sink has no memory for,
    /// drops the content instead (oversized input changes state, not
    /// buffers).
    fn store<S: ContentSink + ?Sized>(&mut self, content: &mut S, bytes: &[u8]) {
        self.seen += bytes.len() as u64;
        if self.too_big || self.poisoned() {
            return;
        }
        self.stored += bytes.len() as u64;
        if self.size_limit > 0 && self.stored > self.size_limit {
            self.too_big = true;
            content.discard();
            return;
        }
        if self.no_memory {
            return;
        }
        if !content.append(bytes) {
            self.no_memory = true;
            content.discard();
        }
    }

    /// With `BareNewline::Reject`, a bare LF or CR means nothing more needs
    /// to be stored.
    fn poisoned(&self) -> bool {
        self.mode == BareNewline::Reject && (self.bare_lf || self.bare_cr)
    }

    /// Why the finished message must be refused, if it must.
    pub fn refusal(&self) -> Option<Refusal> {
        if self.mode == BareNewline::Reject {
            if self.bare_lf {
                return Some(Refusal::BareLf);
            }
            if self.bare_cr {
                return Some(Refusal::BareCr);
            }
        }
        if self.too_big {
            return Some(Refusal::TooBig);
        }
        self.no_memory.then_some(Refusal::NoMemory)
    }

    /// Whether a bare LF was seen (for logging in `normalize` mode).
    pub fn saw_bare_lf(&self) -> bool {
        self.bare_lf
    }

    /// Content bytes received so far, after unstuffing and normalisation,
    /// whether stored or not (Postfix logs this on lost connections).
    pub fn bytes_seen(&self) -> u64 {
        self.seen
    }
}
