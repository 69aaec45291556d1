//! The primary header section: where it ends, which headers it has, and
//! what of it is copied.
//!
//! This is the part of Postfix's `mime_state_update()` (primary headers
//! only, no MIME) and `cleanup_header_callback()` that cleanup needs:
//!
//! - A header starts with a name of printable ASCII other than `:` (Postfix's
//!   `is_header()`), optional blanks, then `:`. The obsolete `Name :` form
//!   is normalised to `Name:`. Lines that start with a blank continue it.
//! - The section ends at the first empty line, at the end of the content,
//!   or at the first line that is neither a header nor a continuation. In
//!   the last case Postfix (`mime_state.c`: "force output of one blank
//!   line"; `non_empty_end_of_header_action = fix_quietly` in 3.11+)
//!   inserts an empty line, so that line becomes the first body line
//!   instead of being parsed as a header by whoever reads the message next.
//! - `Bcc:`, `Content-Length:`, `Resent-Bcc:` and `Return-Path:` are dropped
//!   (`message_drop_headers`); `Received:` headers are counted for the hop
//!   limit; `Message-Id:`, `Date:` and `From:` and their `Resent-` twins
//!   are noted so that missing ones can be added; any `Resent-` header
//!   switches the added headers to their `Resent-` form.
//! - `header_size_limit` bounds one logical header, measured as Postfix
//!   does (the lines without their CRLF, plus one byte per line break).
//!   The excess is discarded. Postfix discards it in whole
//!   `line_length_limit` records, so its headers can overshoot by up to
//!   2 KiB; here the bound is exact.
//!
//! Header lines are copied with CRLF endings whatever ending they came
//! with; the body is not touched here.
//!
//! Hot path: one `memchr` per line, header bytes copied straight into the
//! output, no allocation except the Message-Id text kept for the log.

use memchr::memchr;

/// How the header section ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum HeaderEnd {
    /// The content ended inside the header section: there is no body.
    EndOfContent,
    /// An empty line ended the section; the body starts at this offset of
    /// the content (just after the empty line).
    EmptyLine { body_start: usize },
    /// A line that is not a header ended the section; it starts at this
    /// offset and is the first body line. An empty line must be inserted
    /// before it.
    NonHeader { body_start: usize },
}

impl HeaderEnd {
    /// Where the body starts in the content, if there is a body.
    pub(super) fn body_start(self) -> Option<usize> {
        match self {
            HeaderEnd::EndOfContent => None,
            HeaderEnd::EmptyLine { body_start } | HeaderEnd::NonHeader { body_start } => {
                Some(body_start)
            }
        }
    }
}

/// What the scan found out about the header section.
#[derive(Debug)]
pub(super) struct HeaderScan {
    pub(super) end: HeaderEnd,
    /// `Received:` headers in the incoming section.
    pub(super) received: u32,
    /// Bit set of [`Seen`] flags.
    pub(super) seen: u8,
    /// A `Resent-*` header was present.
    pub(super) resent: bool,
    /// The first `Message-Id:` value, unfolded and trimmed, for the log.
    pub(super) message_id: Option<String>,
    /// The first `Resent-Message-Id:` value, likewise.
    pub(super) resent_message_id: Option<String>,
}

/// Headers whose presence decides what cleanup adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Seen {
    MessageId = 1 << 0,
    ResentMessageId = 1 << 1,
    Date = 1 << 2,
    ResentDate = 1 << 3,
    From = 1 << 4,
    ResentFrom = 1 << 5,
}

impl HeaderScan {
    pub(super) fn has(&self, h: Seen) -> bool {
        self.seen & h as u8 != 0
    }
}

/// The headers cleanup treats specially (Postfix's `header_opts` table, the
/// part that matters here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Other,
    Received,
    Seen(Seen),
    /// Removed from the message (`message_drop_headers`).
    Drop,
}

/// Classifies a header by its name (without the colon), case-insensitively.
/// The second value is Postfix's `HDR_OPT_RR`: a `Resent-` header that
/// makes the added headers `Resent-` ones.
fn classify(name: &[u8]) -> (Kind, bool) {
    const TABLE: &[(&[u8], Kind, bool)] = &[
        (b"received", Kind::Received, false),
        (b"message-id", Kind::Seen(Seen::MessageId), false),
        (b"date", Kind::Seen(Seen::Date), false),
        (b"from", Kind::Seen(Seen::From), false),
        (b"bcc", Kind::Drop, false),
        (b"content-length", Kind::Drop, false),
        (b"return-path", Kind::Drop, false),
        (b"resent-bcc", Kind::Drop, true),
        (
            b"resent-message-id",
            Kind::Seen(Seen::ResentMessageId),
            true,
        ),
        (b"resent-date", Kind::Seen(Seen::ResentDate), true),
        (b"resent-from", Kind::Seen(Seen::ResentFrom), true),
        (b"resent-cc", Kind::Other, true),
        (b"resent-reply-to", Kind::Other, true),
        (b"resent-sender", Kind::Other, true),
        (b"resent-to", Kind::Other, true),
    ];
    TABLE
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
        .map_or((Kind::Other, false), |&(_, kind, rr)| (kind, rr))
}

/// Postfix's `is_header()`: the length of the header name when `line`
/// starts with a name, optional blanks and a colon.
pub(super) fn is_header(line: &[u8]) -> Option<usize> {
    let mut name_len = 0;
    let mut in_space = false;
    for &c in line {
        match c {
            b':' => return (name_len > 0).then_some(name_len),
            b' ' | b'\t' if name_len > 0 => in_space = true,
            _ if c.is_ascii_graphic() && !in_space => name_len += 1,
            _ => return None,
        }
    }
    None
}

/// The logical header being copied.
struct Current {
    kind: Kind,
    /// Postfix's measure of the header so far.
    len: usize,
    /// The limit was reached: further continuation lines are discarded.
    truncated: bool,
    /// Output offset just after the colon, for capturing Message-Id values.
    value_start: usize,
}

/// Copies the header section of `content` into `out` and reports on it.
///
/// `from_lines`: convert leading `From ` / `>From ` lines into
/// `X-Mailbox-Line:` headers, as Postfix's smtpd does (sendmail drops them
/// instead, before pickup sees the message).
pub(super) fn scan(
    content: &[u8],
    header_size_limit: usize,
    from_lines: bool,
    out: &mut Vec<u8>,
) -> HeaderScan {
    let mut scan = HeaderScan {
        end: HeaderEnd::EndOfContent,
        received: 0,
        seen: 0,
        resent: false,
        message_id: None,
        resent_message_id: None,
    };
    let mut cur: Option<Current> = None;
    let mut leading = from_lines;
    let mut pos = 0;
    while pos < content.len() {
        let rest = &content[pos..];
        let (raw, next) = match memchr(b'\n', rest) {
            Some(i) => (&rest[..i], pos + i + 1),
            None => (rest, content.len()),
        };
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);

        if leading {
            let unquoted = &line[line.iter().take_while(|&&b| b == b'>').count()..];
            if unquoted.starts_with(b"From ") {
                finish(&mut scan, cur.take(), out);
                // A complete header of its own: smtpd writes it as one
                // record, so a blank-led line after it starts the body.
                let start = out.len();
                out.extend_from_slice(b"X-Mailbox-Line: ");
                let value_start = out.len();
                out.extend_from_slice(line);
                let limit = header_size_limit.max(value_start - start);
                out.truncate(start + (out.len() - start).min(limit));
                out.extend_from_slice(b"\r\n");
                pos = next;
                continue;
            }
            leading = false;
        }

        if line.is_empty() {
            finish(&mut scan, cur.take(), out);
            scan.end = HeaderEnd::EmptyLine { body_start: next };
            return scan;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some(c) = cur.as_mut() {
                continuation(c, line, header_size_limit, out);
                pos = next;
                continue;
            }
        } else if let Some(name_len) = is_header(line) {
            finish(&mut scan, cur.take(), out);
            cur = Some(start_header(
                &mut scan,
                line,
                name_len,
                header_size_limit,
                out,
            ));
            pos = next;
            continue;
        }
        // Neither a header nor a continuation of one.
        finish(&mut scan, cur.take(), out);
        scan.end = HeaderEnd::NonHeader { body_start: pos };
        return scan;
    }
    finish(&mut scan, cur.take(), out);
    scan
}

/// Classifies a new header, records what it tells us, and copies its first
/// line (normalised and bounded) unless it is dropped.
fn start_header(
    scan: &mut HeaderScan,
    line: &[u8],
    name_len: usize,
    limit: usize,
    out: &mut Vec<u8>,
) -> Current {
    let name = &line[..name_len];
    // Skip "Name  :" blanks so the colon follows the name.
    let colon = name_len + line[name_len..].iter().take_while(|&&b| b != b':').count();
    let value = &line[colon..];
    let (kind, resent) = classify(name);
    scan.resent |= resent;
    match kind {
        Kind::Received => scan.received = scan.received.saturating_add(1),
        Kind::Seen(s) => scan.seen |= s as u8,
        Kind::Other | Kind::Drop => {}
    }
    let len = name_len + value.len();
    let mut cur = Current {
        kind,
        len,
        truncated: false,
        value_start: 0,
    };
    if kind == Kind::Drop {
        return cur;
    }
    let start = out.len();
    out.extend_from_slice(name);
    out.extend_from_slice(value);
    cur.value_start = start + name_len + 1;
    if len > limit {
        // Keep at least "Name:" so the line stays a header.
        out.truncate(start + limit.max(name_len + 1));
        cur.len = limit;
        cur.truncated = true;
    }
    out.extend_from_slice(b"\r\n");
    cur
}

/// Copies one continuation line of the current header, within the limit.
fn continuation(cur: &mut Current, line: &[u8], limit: usize, out: &mut Vec<u8>) {
    if cur.kind == Kind::Drop || cur.truncated {
        return;
    }
    let want = cur.len + 1 + line.len();
    if want <= limit {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
        cur.len = want;
        return;
    }
    let room = limit.saturating_sub(cur.len + 1);
    let piece = &line[..room.min(line.len())];
    // A piece of nothing but blanks would be an empty continuation line.
    if piece.iter().any(|&b| b != b' ' && b != b'\t') {
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    cur.len = limit;
    cur.truncated = true;
}

/// Ends the current header: keeps the first Message-Id values for the log.
fn finish(scan: &mut HeaderScan, cur: Option<Current>, out: &[u8]) {
    let Some(cur) = cur else { return };
    let slot = match cur.kind {
        Kind::Seen(Seen::MessageId) => &mut scan.message_id,
        Kind::Seen(Seen::ResentMessageId) => &mut scan.resent_message_id,
        _ => return,
    };
    if slot.is_some() {
        return;
    }
    let value = out.get(cur.value_start..).unwrap_or_default();
    // Unfold: drop the line breaks, keep the blanks that follow them.
    let unfolded: Vec<u8> = value
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    *slot = Some(String::from_utf8_lossy(unfolded.trim_ascii()).into_owned());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_header_table() {
        let cases: &[(&[u8], Option<usize>)] = &[
            (b"Subject: hi", Some(7)),
            (b"Subject:", Some(7)),
            (b"Subject : hi", Some(7)),
            (b"Subject\t:hi", Some(7)),
            (b"X-Odd!#$%: v", Some(9)),
            (b": no name", None),
            (b" Subject: hi", None),
            (b"Sub ject: hi", None),
            (b"Subject hi", None),
            (b"Subject", None),
            (b"", None),
            (b"Re\xc3\xa7eived: x", None),
            (b"Sub\x7fject: x", None),
            (b"Sub\x01ject: x", None),
        ];
        for (line, want) in cases {
            assert_eq!(
                is_header(line),
                *want,
                "line {:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn classify_is_case_insensitive() {
        assert_eq!(classify(b"rEcEiVeD"), (Kind::Received, false));
        assert_eq!(
            classify(b"MESSAGE-ID"),
            (Kind::Seen(Seen::MessageId), false)
        );
        assert_eq!(classify(b"Resent-BCC"), (Kind::Drop, true));
        assert_eq!(classify(b"resent-to"), (Kind::Other, true));
        assert_eq!(classify(b"Delivered-To"), (Kind::Other, false));
    }

    fn run(content: &[u8], limit: usize) -> (String, HeaderScan) {
        let mut out = Vec::new();
        let scan = scan(content, limit, true, &mut out);
        (String::from_utf8_lossy(&out).into_owned(), scan)
    }

    #[test]
    fn section_ends_table() {
        let cases: &[(&[u8], &str, HeaderEnd)] = &[
            (b"", "", HeaderEnd::EndOfContent),
            (b"A: 1\r\nB: 2", "A: 1\r\nB: 2\r\n", HeaderEnd::EndOfContent),
            (
                b"A: 1\r\n\r\nbody",
                "A: 1\r\n",
                HeaderEnd::EmptyLine { body_start: 8 },
            ),
            (
                b"A: 1\n\nbody",
                "A: 1\r\n",
                HeaderEnd::EmptyLine { body_start: 6 },
            ),
            (b"\r\nbody", "", HeaderEnd::EmptyLine { body_start: 2 }),
            (
                b"A: 1\r\nnot a header\r\n",
                "A: 1\r\n",
                HeaderEnd::NonHeader { body_start: 6 },
            ),
            (
                b" leading blank\r\n",
                "",
                HeaderEnd::NonHeader { body_start: 0 },
            ),
            (
                b"A: 1\r\n\tmore\r\n\r\n",
                "A: 1\r\n\tmore\r\n",
                HeaderEnd::EmptyLine { body_start: 15 },
            ),
        ];
        for (content, want_out, want_end) in cases {
            let (out, scan) = run(content, 1000);
            assert_eq!(
                out,
                *want_out,
                "content {:?}",
                String::from_utf8_lossy(content)
            );
            assert_eq!(
                scan.end,
                *want_end,
                "content {:?}",
                String::from_utf8_lossy(content)
            );
        }
    }

    #[test]
    fn from_lines_become_x_mailbox_line_only_at_the_start() {
        let (out, scan) = run(
            b"From joe  Sat Nov 28\r\n>From x\r\nSubject: s\r\nFrom y\r\n",
            1000,
        );
        assert_eq!(
            out,
            "X-Mailbox-Line: From joe  Sat Nov 28\r\nX-Mailbox-Line: >From x\r\nSubject: s\r\n"
        );
        assert_eq!(scan.end, HeaderEnd::NonHeader { body_start: 43 });
    }

    #[test]
    fn blank_led_line_after_from_line_starts_the_body() {
        let (out, scan) = run(b"From joe\r\n\tindented\r\n", 1000);
        assert_eq!(out, "X-Mailbox-Line: From joe\r\n");
        assert_eq!(scan.end, HeaderEnd::NonHeader { body_start: 10 });
    }

    #[test]
    fn name_space_colon_is_normalised() {
        let (out, _) = run(b"Subject  : hi\r\n", 1000);
        assert_eq!(out, "Subject: hi\r\n");
    }

    #[test]
    fn dropped_headers_lose_their_continuation_lines() {
        let (out, _) = run(b"Bcc: a,\r\n b\r\nTo: c\r\nreturn-path: <x>\r\n", 1000);
        assert_eq!(out, "To: c\r\n");
    }

    #[test]
    fn message_id_values_are_unfolded_and_trimmed() {
        let (_, scan) = run(
            b"Message-ID:\r\n <a@b> \r\nmessage-id: <second@b>\r\n",
            1000,
        );
        assert_eq!(scan.message_id.as_deref(), Some("<a@b>"));
        assert!(scan.has(Seen::MessageId));
        assert!(!scan.has(Seen::Date));
    }

    #[test]
    fn truncation_keeps_exactly_the_limit() {
        // "Subject: 0123456789" is 19 bytes; a limit of 12 keeps "Subject: 012".
        let (out, _) = run(b"Subject: 0123456789\r\n\tmore\r\nTo: x\r\n", 12);
        assert_eq!(out, "Subject: 012\r\nTo: x\r\n");
        // Continuation lines count one byte for the line break.
        let (out, _) = run(b"S: 12\r\n\tabcdef\r\n\tghi\r\n", 5 + 1 + 7 + 1 + 2);
        assert_eq!(out, "S: 12\r\n\tabcdef\r\n\tg\r\n");
        // Exactly at the limit is not truncated.
        let (out, _) = run(b"S: 12\r\n\tabc\r\n", 5 + 1 + 4);
        assert_eq!(out, "S: 12\r\n\tabc\r\n");
        // A piece that would be only blanks is left out.
        let (out, _) = run(b"S: 12\r\n\t\tabc\r\n", 5 + 1 + 1);
        assert_eq!(out, "S: 12\r\n");
        // The name and colon always survive.
        let (out, _) = run(b"Subject: x\r\n", 3);
        assert_eq!(out, "Subject:\r\n");
    }
}
