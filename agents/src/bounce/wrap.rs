//! Postfix's `line_wrap()`: how a notice folds long recipient lines and
//! the `Remote-MTA:` / `Diagnostic-Code:` fields.
//!
//! Rules, as `util/line_wrap.c` has them:
//! - words are split at every space or TAB (so two spaces make an empty
//!   word, and the spacing inside a line is kept as it was);
//! - a line is broken before the word whose end would pass the limit, but
//!   only if the line already holds something: a word longer than the limit
//!   stays whole on a line of its own;
//! - trailing white space of each output line is dropped, and leading white
//!   space of the next line is skipped;
//! - the first line may use all `width` columns; the following lines are
//!   indented by `indent` spaces and hold `width - indent` columns of text.
//!
//! Bytes, not characters, are counted (as in Postfix); breaks only happen
//! at ASCII spaces, so a UTF-8 sequence is never cut.

use memchr::memchr2;

/// Line length Postfix's bounce daemon wraps at (`LENGTH` in
/// `bounce_notify_util.c`).
pub(super) const WRAP_WIDTH: usize = 79;
/// Indent of the continuation lines (`INDENT` there).
pub(super) const WRAP_INDENT: usize = 4;

/// `ISSPACE()`: the C locale's white space.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Appends `text` to `out` as CRLF-terminated lines wrapped at `width`
/// columns, continuation lines indented by `indent` spaces. `indent` must
/// be below `width` (the callers use the constants above).
pub(super) fn push_wrapped(out: &mut Vec<u8>, text: &[u8], width: usize, indent: usize) {
    let mut start = 0;
    let mut line_room = width;
    let mut line_indent = 0;
    let mut first = true;
    let mut word = Some(0);
    while let Some(w) = word {
        let rest = text.get(w..).unwrap_or_default();
        let next_space = w + memchr2(b' ', b'\t', rest).unwrap_or(rest.len());
        // `w` can lag behind `start` after leading spaces were skipped; C
        // compares the pointers and does nothing in that case.
        if w > start && next_space - start > line_room {
            emit(out, &text[start..w], line_indent);
            let mut next = w;
            while next < text.len() && is_space(text[next]) {
                next += 1;
            }
            if first {
                first = false;
                line_indent += indent;
                line_room = line_room.saturating_sub(indent);
            }
            start = next;
        }
        word = (next_space < text.len()).then_some(next_space + 1);
    }
    emit(out, text.get(start..).unwrap_or_default(), line_indent);
}

/// One output line: indent, text without trailing white space, CRLF.
fn emit(out: &mut Vec<u8>, line: &[u8], indent: usize) {
    let end = line
        .iter()
        .rposition(|&b| !is_space(b))
        .map_or(0, |last| last + 1);
    out.resize(out.len() + indent, b' ');
    out.extend_from_slice(&line[..end]);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn wrap(text: &str) -> String {
        let mut out = Vec::new();
        push_wrapped(&mut out, text.as_bytes(), WRAP_WIDTH, WRAP_INDENT);
        String::from_utf8(out).unwrap().replace("\r\n", "\n")
    }

    /// Lines from notices that Postfix 3.x sent (public bounce samples).
    #[test]
    fn matches_postfix_output() {
        assert_eq!(
            wrap(
                "Diagnostic-Code: smtp; 554 5.7.1 [CS01] Message rejected due to local \
                 policy. Please visit https://support.apple.com/en-us/HT204137"
            ),
            "Diagnostic-Code: smtp; 554 5.7.1 [CS01] Message rejected due to local policy.\n    \
             Please visit https://support.apple.com/en-us/HT204137\n"
        );
        // Double spaces inside a line are kept.
        assert_eq!(
            wrap(
                "<2157593173@qq.com>: host mx3.qq.com[58.251.110.111] said: 550 SPF check \
                 failed [MNMd/iBQy6N9sE7LEmi7VALmV7Qk3Rub5BKtpGtN0eQbM+int3YLGrxF3VPwzKE+3g==  \
                 IP: 139.129.209.233]. \
                 http://service.mail.qq.com/cgi-bin/help?subtype=1&&no=1001445&&id=20022. \
                 (in reply to end of DATA command)"
            ),
            "<2157593173@qq.com>: host mx3.qq.com[58.251.110.111] said: 550 SPF check failed\n    \
             [MNMd/iBQy6N9sE7LEmi7VALmV7Qk3Rub5BKtpGtN0eQbM+int3YLGrxF3VPwzKE+3g==  IP:\n    \
             139.129.209.233].\n    \
             http://service.mail.qq.com/cgi-bin/help?subtype=1&&no=1001445&&id=20022.\n    \
             (in reply to end of DATA command)\n"
        );
    }

    #[test]
    fn edges() {
        assert_eq!(wrap(""), "\n");
        assert_eq!(wrap("short  "), "short\n");
        // Exactly 79 columns fit; 80 do not.
        let a75 = "a".repeat(75);
        assert_eq!(wrap(&format!("abc {a75}")), format!("abc {a75}\n"));
        let a76 = "a".repeat(76);
        assert_eq!(wrap(&format!("abc {a76}")), format!("abc\n    {a76}\n"));
        // Continuation lines hold 75 columns after the indent.
        let next = format!("{} {}", "d".repeat(37), "e".repeat(37));
        assert_eq!(
            wrap(&format!("{} {next}", "x".repeat(79))),
            format!("{}\n    {next}\n", "x".repeat(79))
        );
        let over = format!("{} {}", "d".repeat(37), "e".repeat(38));
        assert_eq!(
            wrap(&format!("{} {over}", "x".repeat(79))),
            format!(
                "{}\n    {}\n    {}\n",
                "x".repeat(79),
                "d".repeat(37),
                "e".repeat(38)
            )
        );
        let fits = format!("{} {}", "b".repeat(39), "c".repeat(39));
        assert_eq!(wrap(&fits), format!("{fits}\n"));
        // A word longer than the line stays whole.
        let long = "x".repeat(100);
        assert_eq!(wrap(&long), format!("{long}\n"));
        assert_eq!(
            wrap(&format!("a {long} b")),
            format!("a\n    {long}\n    b\n")
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Wrapping loses no words, and no line passes the limit unless it
        /// is one word too long on its own.
        #[test]
        fn keeps_words_and_width(words in proptest::collection::vec("[a-z]{1,30}", 0..40)) {
            let text = words.join(" ");
            let out = wrap(&text);
            let got: Vec<&str> = out.split_whitespace().collect();
            prop_assert_eq!(&got, &words.iter().map(String::as_str).collect::<Vec<_>>());
            for line in out.lines() {
                prop_assert!(line.len() <= WRAP_WIDTH || !line.trim().contains(' '));
            }
        }
    }
}
