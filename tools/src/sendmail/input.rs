//! Reading the message sendmail is given, and `-t`'s recipients.
//!
//! Input (Postfix's `enqueue()` with `sendmail_fix_line_endings =
//! always`): lines end at LF; trailing CRs are stripped and the line is
//! stored with CRLF; leading `From ` lines (also `>From `, `>>From `, …) are
//! dropped; without `-i` a line holding only `.` ends the input and the
//! rest is not read. A last line without a newline is kept without one, as
//! Postfix keeps it. Nothing else changes (no dot-unstuffing).
//!
//! Headers (`-t`): the primary header section is the lines up to the first
//! empty line or the first line that is neither a header (`name:`) nor a
//! continuation (starting with a space or tab). Recipients come from
//! `To:`, `Cc:` and `Bcc:`, or, when any `Resent-To:`, `Resent-Cc:` or
//! `Resent-Bcc:` is present, from those only.

use std::io::{self, BufRead, Read};

use super::addrlist;

/// Why the message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("error reading input: {0}")]
    Read(#[source] io::Error),
    /// Postfix stops such a message with a file size limit
    /// (`message_size_limit`); we stop reading at it.
    #[error("message file too big (message_size_limit = {limit} bytes)")]
    TooBig { limit: u64 },
}

/// Reads the message from `r`; see the module docs. `size_limit` is
/// `message_size_limit` (0: none), on the content as stored (CRLF).
pub fn read_message(
    r: &mut dyn BufRead,
    dot_ends_input: bool,
    size_limit: u64,
) -> Result<Vec<u8>, InputError> {
    let mut content = Vec::new();
    let mut line = Vec::new();
    let mut skip_from = true;
    loop {
        line.clear();
        let n = read_line(r, &mut line, size_limit)?;
        if n == 0 {
            break;
        }
        let ends_in_newline = line.last() == Some(&b'\n');
        if ends_in_newline {
            line.pop();
            while line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        if skip_from {
            let unquoted = &line[line.iter().take_while(|&&c| c == b'>').count()..];
            if unquoted.starts_with(b"From ") {
                continue;
            }
            skip_from = false;
        }
        if dot_ends_input && line == b"." {
            break;
        }
        let added = line.len() + if ends_in_newline { 2 } else { 0 };
        if size_limit > 0 && (content.len() + added) as u64 > size_limit {
            return Err(InputError::TooBig { limit: size_limit });
        }
        content.extend_from_slice(&line);
        if ends_in_newline {
            content.extend_from_slice(b"\r\n");
        }
    }
    Ok(content)
}

/// One line, LF included, into `line`; 0 at end of input. A line longer
/// than the whole message may be is refused before it is all buffered.
/// (`read_until` finds the LF with std's memchr.)
fn read_line(
    r: &mut dyn BufRead,
    line: &mut Vec<u8>,
    size_limit: u64,
) -> Result<usize, InputError> {
    // Room for the longest acceptable line, its CRs and LF, plus one byte
    // to notice that it is longer.
    let bound = if size_limit == 0 {
        u64::MAX
    } else {
        size_limit.saturating_add(3)
    };
    let n = loop {
        match (&mut *r).take(bound).read_until(b'\n', line) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(InputError::Read(e)),
        }
    };
    if n as u64 >= bound && line.last() != Some(&b'\n') {
        return Err(InputError::TooBig { limit: size_limit });
    }
    Ok(n)
}

/// Which recipients `-t` takes from the header section of `content`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderRecipients {
    pub addresses: Vec<String>,
    /// The header section has non-ASCII bytes (SMTPUTF8 autodetection).
    pub non_ascii_headers: bool,
}

/// The recipients `-t` extracts (see the module docs).
pub fn header_recipients(content: &[u8]) -> HeaderRecipients {
    let mut primary = Vec::new();
    let mut resent = Vec::new();
    let mut any_resent = false;
    let mut non_ascii = false;
    for (name, value) in headers(content) {
        non_ascii |= !value.is_ascii();
        let (list, is_resent) = if name.eq_ignore_ascii_case(b"to")
            || name.eq_ignore_ascii_case(b"cc")
            || name.eq_ignore_ascii_case(b"bcc")
        {
            (&mut primary, false)
        } else if name.eq_ignore_ascii_case(b"resent-to")
            || name.eq_ignore_ascii_case(b"resent-cc")
            || name.eq_ignore_ascii_case(b"resent-bcc")
        {
            (&mut resent, true)
        } else {
            continue;
        };
        any_resent |= is_resent;
        // Header text that is not UTF-8 can only be in display names and
        // comments of a valid address; lossy decoding keeps the addresses.
        list.extend(addrlist::parse(&String::from_utf8_lossy(&value)));
    }
    HeaderRecipients {
        addresses: if any_resent { resent } else { primary },
        non_ascii_headers: non_ascii,
    }
}

/// The logical headers of the primary header section: name and unfolded
/// value (continuation lines joined, their line breaks dropped).
fn headers(content: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut rest = content;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        // Reading from a slice cannot fail; `read_until` finds the LF with
        // std's memchr.
        if rest.read_until(b'\n', &mut raw).unwrap_or(0) == 0 {
            break;
        }
        let line = raw
            .strip_suffix(b"\n")
            .map_or(&raw[..], |l| l.strip_suffix(b"\r").unwrap_or(l));
        if line.is_empty() {
            break;
        }
        if matches!(line[0], b' ' | b'\t') {
            match out.last_mut() {
                Some((_, value)) => value.extend_from_slice(line),
                None => break,
            }
            continue;
        }
        match header_name(line) {
            Some((name, value)) => out.push((name.to_vec(), value.to_vec())),
            None => break,
        }
    }
    out
}

/// `name: value` → (name, value): a name of printable ASCII other than
/// `:`, optional blanks, then the colon (Postfix's `is_header()`).
fn header_name(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let name_len = line
        .iter()
        .take_while(|&&c| c.is_ascii_graphic() && c != b':')
        .count();
    if name_len == 0 {
        return None;
    }
    let after = &line[name_len..];
    let blanks = after
        .iter()
        .take_while(|&&c| c == b' ' || c == b'\t')
        .count();
    match after.get(blanks) {
        Some(b':') => Some((&line[..name_len], &after[blanks + 1..])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8], dot: bool) -> Vec<u8> {
        read_message(&mut &input[..], dot, 0).unwrap()
    }

    #[test]
    fn line_endings_become_crlf() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"a\nb\n", b"a\r\nb\r\n"),
            (b"a\r\nb\r\n", b"a\r\nb\r\n"),
            (b"a\r\r\nb\n", b"a\r\nb\r\n"),
            (b"mid\rcr\n", b"mid\rcr\r\n"),
            (b"no final newline", b"no final newline"),
            (b"a\n\n\nb\n", b"a\r\n\r\n\r\nb\r\n"),
            (b"", b""),
            (b"nul\0byte\n", b"nul\0byte\r\n"),
        ];
        for (input, want) in cases {
            assert_eq!(
                read(input, false),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn leading_from_lines_are_dropped() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"From alice Mon Jan 1\nSubject: x\n", b"Subject: x\r\n"),
            (
                b">From alice\n>>From bob\nFrom c\nSubject: x\n",
                b"Subject: x\r\n",
            ),
            (b"Subject: x\nFrom alice\n", b"Subject: x\r\nFrom alice\r\n"),
            (b"From: alice\n", b"From: alice\r\n"),
            (b"\nFrom alice\n", b"\r\nFrom alice\r\n"),
        ];
        for (input, want) in cases {
            assert_eq!(
                read(input, false),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn lone_dot_ends_input_unless_i() {
        let input = b"Subject: x\n\nbody\n.\nafter\n";
        assert_eq!(read(input, true), b"Subject: x\r\n\r\nbody\r\n");
        assert_eq!(
            read(input, false),
            b"Subject: x\r\n\r\nbody\r\n.\r\nafter\r\n"
        );
        // ".\r\n" is a lone dot too (the CR is stripped first); ".." and
        // " ." are not, and nothing is unstuffed.
        assert_eq!(read(b"a\n.\r\nb\n", true), b"a\r\n");
        assert_eq!(read(b"..\n .\nx\n", true), b"..\r\n .\r\nx\r\n");
        // A lone dot at the very end, without newline.
        assert_eq!(read(b"a\n.", true), b"a\r\n");
    }

    /// With a lone dot, what follows is not even read: an interactive
    /// user's terminal is not waited on.
    #[test]
    fn lone_dot_stops_reading() {
        let mut input: &[u8] = b"a\n.\nrest\n";
        let mut r = io::BufReader::with_capacity(2, &mut input);
        read_message(&mut r, true, 0).unwrap();
        let mut rest = Vec::new();
        io::Read::read_to_end(&mut r, &mut rest).unwrap();
        assert_eq!(rest, b"rest\n");
    }

    #[test]
    fn size_limit() {
        assert_eq!(
            read_message(&mut &b"abc\n"[..], false, 5).unwrap(),
            b"abc\r\n"
        );
        assert!(matches!(
            read_message(&mut &b"abcd\n"[..], false, 5),
            Err(InputError::TooBig { limit: 5 })
        ));
        // A huge line without newline is refused without being buffered.
        let big = vec![b'x'; 100_000];
        assert!(matches!(
            read_message(&mut &big[..], false, 1000),
            Err(InputError::TooBig { .. })
        ));
    }

    fn rcpts(content: &str) -> Vec<String> {
        header_recipients(content.as_bytes()).addresses
    }

    #[test]
    fn t_extraction() {
        assert_eq!(
            rcpts("To: a@x, B <b@y>\r\nCc: c@z\r\nBcc: d@w\r\nSubject: s\r\n\r\nTo: body@x\r\n"),
            ["a@x", "b@y", "c@z", "d@w"]
        );
        // Folded headers.
        assert_eq!(
            rcpts("To: a@x,\r\n\tb@y,\r\n c@z\r\nSubject: s\r\n\r\n"),
            ["a@x", "b@y", "c@z"]
        );
        // Case-insensitive names, blanks before the colon.
        assert_eq!(rcpts("tO : a@x\r\nCC:b@y\r\n\r\n"), ["a@x", "b@y"]);
        // Other headers are not recipients.
        assert_eq!(
            rcpts("From: f@x\r\nReply-To: r@x\r\nX-To: no@x\r\n\r\n"),
            Vec::<String>::new()
        );
        // A non-header line ends the header section.
        assert_eq!(rcpts("To: a@x\r\nnot a header\r\nCc: b@y\r\n\r\n"), ["a@x"]);
        // LF-only content (as tests may build it) works too.
        assert_eq!(rcpts("To: a@x\nCc: b@y\n\nTo: c@z\n"), ["a@x", "b@y"]);
        assert_eq!(
            rcpts("To: undisclosed-recipients:;\r\n\r\n"),
            Vec::<String>::new()
        );
        assert_eq!(rcpts(""), Vec::<String>::new());
    }

    #[test]
    fn resent_headers_win() {
        let msg = "To: orig@x\r\nResent-To: new@y\r\nCc: orig2@x\r\nResent-Bcc: hidden@z\r\n\r\n";
        assert_eq!(rcpts(msg), ["new@y", "hidden@z"]);
        // Resent-From alone does not switch.
        assert_eq!(rcpts("To: orig@x\r\nResent-From: r@y\r\n\r\n"), ["orig@x"]);
        assert_eq!(rcpts("Resent-Cc: a@x,\r\n b@y\r\n\r\n"), ["a@x", "b@y"]);
    }

    #[test]
    fn non_ascii_headers_are_noticed() {
        assert!(header_recipients("To: jöran@x\r\n\r\n".as_bytes()).non_ascii_headers);
        assert!(!header_recipients(b"To: a@x\r\n\r\nbody \xff\r\n").non_ascii_headers);
    }

    proptest::proptest! {
        #[test]
        fn header_scan_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = header_recipients(&bytes);
            let _ = read_message(&mut &bytes[..], true, 100);
        }
    }
}
