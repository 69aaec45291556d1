//! trivial-rewrite's address rewriting: the "standard form" of an address.
//!
//! Role: turn an envelope address as a client wrote it into the form the
//! rest of the system works with (Postfix's `rewrite_tree()` in the `local`
//! context, with main.cf defaults):
//!
//! 1. `@a,@b:user@d` loses its source route → `user@d`;
//! 2. an address without `@`: `site!user` → `user@site` (when
//!    `swap_bangpath = yes`, the default), else `user%d` → `user@d` (when
//!    `allow_percent_hack = yes`, the default; the last `%`), else `user` →
//!    `user@$myorigin` (when `append_at_myorigin = yes`, the default);
//! 3. `.$mydomain` is **not** appended (`append_dot_mydomain = no`, the
//!    default since Postfix 3.0);
//! 4. one trailing dot is removed (`user@d.` → `user@d`), but not from
//!    `..` or `@.`, which stay as they are so diagnostics show them.
//!
//! The null address `""` stays `""`, and a lone `@` becomes `""`.
//!
//! Trust: the input is whatever a client sent; nothing here panics or
//! allocates more than a copy of the address. Addresses are tokenized the
//! way Postfix's `tok822_scan()` does it, so quoted strings (`"a%b"@d`),
//! domain literals (`[1.2.3.4]`), comments and backslash escapes are opaque:
//! an `@`, `!`, `%` or `.` inside them is not an operator. Unlike Postfix,
//! which rebuilds the string from tokens, the text between operators is
//! kept byte for byte (so a quoted local part comes out exactly as it went
//! in); only leading and trailing white space is trimmed.
//!
//! No I/O, no lookups: canonical, virtual and transport maps are elsewhere.
//! The same function serves cleanup (the envelope as queued) and, through
//! [`crate::resolve::resolve_external`], smtpd's relay check, so that
//! both see one address.

use std::borrow::Cow;

/// Postfix's single-character operators (`tok822_opchar`): RFC 822
/// specials plus `%`, `!` and `|`.
const OPCHARS: &[u8] = b"|%!()<>@,;:\\\".[]";

/// trivial-rewrite's parameters for the standard form (main.cf names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewriteParams {
    /// `myorigin`: the domain of an address without one.
    pub myorigin: String,
    /// `swap_bangpath` (yes): `site!user` → `user@site`.
    pub swap_bangpath: bool,
    /// `allow_percent_hack` (yes): `user%domain` → `user@domain`.
    pub allow_percent_hack: bool,
    /// `append_at_myorigin` (yes): `user` → `user@$myorigin`.
    pub append_at_myorigin: bool,
}

impl RewriteParams {
    /// Postfix's defaults with this `myorigin`.
    pub fn new(myorigin: impl Into<String>) -> RewriteParams {
        RewriteParams {
            myorigin: myorigin.into(),
            swap_bangpath: true,
            allow_percent_hack: true,
            append_at_myorigin: true,
        }
    }
}

/// One token of an address, with its byte span in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A single-character operator such as `@`, `!`, `%`, `.`, `:`.
    Op(u8),
    /// Anything opaque: an atom, a quoted string, a domain literal or a
    /// comment.
    Word,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Splits an address into tokens as `tok822_scan()` does (white space
/// outside quotes separates tokens and is dropped). Unterminated quotes,
/// literals and comments run to the end of the input.
pub(crate) fn tokenize(s: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'"' => i = skip_delimited(s, i + 1, b'"'),
            b'[' => i = skip_delimited(s, i + 1, b']'),
            b'(' => i = skip_comment(s, i + 1),
            _ if c != b'\\' && OPCHARS.contains(&c) => {
                out.push(Token {
                    tok: Tok::Op(c),
                    start,
                    end: i + 1,
                });
                i += 1;
                continue;
            }
            _ => {
                // An atom: up to white space or an operator; a backslash
                // quotes the next byte.
                while i < s.len() {
                    let b = s[i];
                    if b == b'\\' {
                        i = (i + 2).min(s.len());
                    } else if b.is_ascii_whitespace() || OPCHARS.contains(&b) {
                        break;
                    } else {
                        i += 1;
                    }
                }
            }
        }
        out.push(Token {
            tok: Tok::Word,
            start,
            end: i,
        });
    }
    out
}

/// Returns the index just past `close`, honouring backslash escapes.
pub(crate) fn skip_delimited(s: &[u8], mut i: usize, close: u8) -> usize {
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b if b == close => return i + 1,
            _ => i += 1,
        }
    }
    s.len()
}

/// Returns the index just past the `)` that closes a (nested) comment.
fn skip_comment(s: &[u8], mut i: usize) -> usize {
    let mut depth = 1usize;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth -= 1;
                i += 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    s.len()
}

/// The standard form of `addr` (see the module docs). `myorigin` is
/// appended to an address without a domain; when it is empty, nothing is.
///
/// ```
/// use sluice_agents::rewrite::{standard_form, RewriteParams};
/// let p = RewriteParams::new("o.example");
/// assert_eq!(standard_form("@relay.example:jane@example.org", &p), "jane@example.org");
/// assert_eq!(standard_form("uucphost!joe", &p), "joe@uucphost");
/// assert_eq!(standard_form("joe%example.net", &p), "joe@example.net");
/// assert_eq!(standard_form("root", &p), "root@o.example");
/// assert_eq!(standard_form("", &p), "");
/// ```
pub fn standard_form(addr: &str, p: &RewriteParams) -> String {
    let mut s: Cow<'_, str> = Cow::Borrowed(addr.trim_matches(|c: char| c.is_ascii_whitespace()));
    if s.is_empty() {
        return String::new();
    }
    let mut toks = tokenize(s.as_bytes());

    // A lone "@" is the null address.
    if let [only] = toks.as_slice() {
        if only.tok == Tok::Op(b'@') {
            return String::new();
        }
    }

    // Strip a source route: "@a,@b:" before the mailbox, when the colon is
    // not the last token.
    if toks.first().map(|t| t.tok) == Some(Tok::Op(b'@')) {
        let colon = toks.iter().position(|t| t.tok == Tok::Op(b':'));
        if let Some(c) = colon.filter(|&c| c + 1 < toks.len()) {
            let after = toks[c + 1].start;
            s = Cow::Owned(s[after..].to_owned());
            toks = tokenize(s.as_bytes());
        }
    }

    if !toks.iter().any(|t| t.tok == Tok::Op(b'@')) {
        let op = |c: u8| move |t: &&Token| t.tok == Tok::Op(c);
        let bang = toks.iter().find(op(b'!')).filter(|_| p.swap_bangpath);
        let pct = toks
            .iter()
            .rev()
            .find(op(b'%'))
            .filter(|_| p.allow_percent_hack);
        if let Some(bang) = bang {
            // site!user → user@site (the first "!" splits).
            let site = &s[..bang.start];
            let user = &s[bang.end..];
            s = Cow::Owned(format!("{user}@{site}"));
        } else if let Some(pct) = pct {
            // user%domain → user@domain (the last "%" becomes the "@").
            s = Cow::Owned(format!("{}@{}", &s[..pct.start], &s[pct.end..]));
        } else if p.append_at_myorigin && !p.myorigin.is_empty() {
            s = Cow::Owned(format!("{s}@{}", p.myorigin));
        }
        toks = tokenize(s.as_bytes());
    }

    // One trailing dot goes, unless it follows another dot or the "@".
    if let [.., prev, last] = toks.as_slice() {
        if last.tok == Tok::Op(b'.') && prev.tok != Tok::Op(b'.') && prev.tok != Tok::Op(b'@') {
            let cut = last.start;
            let mut owned = s.into_owned();
            owned.truncate(cut);
            owned.truncate(owned.trim_end().len());
            return owned;
        }
    }
    s.into_owned()
}

/// Quotes the local part of `addr` for use in a message header, as
/// Postfix's `quote_822_local()` (8-bit clean): a local part that is not an
/// RFC 822 dot-atom becomes a quoted string, with `"`, `\` and CR escaped.
/// A source route before the local part is left alone. A local part that is
/// already a quoted string (the external form that SMTP clients send) is
/// kept as it is rather than quoted twice.
pub fn quote_822_local(addr: &str) -> Cow<'_, str> {
    let start = match addr.strip_prefix('@').and_then(|_| addr.find(':')) {
        Some(colon) => colon + 1,
        None => 0,
    };
    let end = addr[start..].rfind('@').map_or(addr.len(), |at| start + at);
    let local = &addr[start..end];
    if is_dot_string(local) || is_quoted_string(local) {
        return Cow::Borrowed(addr);
    }
    let mut out = String::with_capacity(addr.len() + 4);
    out.push_str(&addr[..start]);
    out.push('"');
    for c in local.chars() {
        if matches!(c, '"' | '\\' | '\r') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out.push_str(&addr[end..]);
    Cow::Owned(out)
}

/// Postfix's `is_822_dot_string()` with 8-bit data allowed.
fn is_dot_string(local: &str) -> bool {
    let b = local.as_bytes();
    if b.is_empty() || b[0] == b'.' || b[b.len() - 1] == b'.' {
        return false;
    }
    !b.windows(2).any(|w| w == b"..")
        && !b
            .iter()
            .any(|&c| c == b' ' || c.is_ascii_control() || b"()<>@,;:\\\"[]".contains(&c))
}

/// True for a complete quoted string: `"..."` whose closing quote is the
/// last byte and not escaped.
pub(crate) fn is_quoted_string(local: &str) -> bool {
    let b = local.as_bytes();
    b.len() >= 2 && b[0] == b'"' && skip_delimited(b, 1, b'"') == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "origin.example";

    fn sf(addr: &str, origin: &str) -> String {
        standard_form(addr, &RewriteParams::new(origin))
    }

    #[test]
    fn standard_form_table() {
        let cases: &[(&str, &str)] = &[
            // Already standard.
            ("jane@example.org", "jane@example.org"),
            ("Jane.Doe+tag@Example.ORG", "Jane.Doe+tag@Example.ORG"),
            // Null address and its spellings.
            ("", ""),
            ("   ", ""),
            ("@", ""),
            // Source routes.
            ("@a.example:jane@example.org", "jane@example.org"),
            ("@a.example,@b.example:jane@example.org", "jane@example.org"),
            ("@a.example:jane", "jane@origin.example"),
            // A colon that is the last token is not a route separator.
            ("@a.example:", "@a.example:"),
            // Bang paths, only without "@"; the first "!" splits.
            ("uucphost!joe", "joe@uucphost"),
            ("a!b!c", "b!c@a"),
            ("a!b%c", "b%c@a"),
            ("host!joe@example.org", "host!joe@example.org"),
            // Percent hack, only without "@"; the last "%" becomes "@".
            ("joe%example.net", "joe@example.net"),
            ("a%b%c", "a%b@c"),
            (
                "joe%example.net@relay.example",
                "joe%example.net@relay.example",
            ),
            // Bare user.
            ("root", "root@origin.example"),
            ("MAILER-DAEMON", "MAILER-DAEMON@origin.example"),
            // Trailing dot: one removed, not after "." or "@".
            ("jane@example.org.", "jane@example.org"),
            ("jane@example.org..", "jane@example.org.."),
            ("jane@.", "jane@."),
            ("jane@[192.0.2.1].", "jane@[192.0.2.1]"),
            ("jane@[192.0.2.1]", "jane@[192.0.2.1]"),
            // No append_dot_mydomain.
            ("jane@localhost", "jane@localhost"),
            // Surrounding white space is dropped.
            (" jane@example.org ", "jane@example.org"),
        ];
        for (input, want) in cases {
            assert_eq!(sf(input, ORIGIN), *want, "input {input:?}");
        }
    }

    #[test]
    fn quoted_local_parts_are_opaque_and_kept_intact() {
        let cases: &[(&str, &str)] = &[
            ("\"john doe\"@example.org", "\"john doe\"@example.org"),
            ("\"a@b\"@example.org", "\"a@b\"@example.org"),
            // No "@" outside the quotes: the quoted "%" and "!" are not
            // operators, so @myorigin is appended.
            ("\"a%b\"", "\"a%b\"@origin.example"),
            ("\"a!b\"", "\"a!b\"@origin.example"),
            ("\"a\\\"b\"@example.org", "\"a\\\"b\"@example.org"),
            // A quoted trailing dot is not a dot.
            ("\"jane.\"", "\"jane.\"@origin.example"),
            // Domain literals are opaque too.
            ("joe%[10.0.0.1]", "joe@[10.0.0.1]"),
            // A backslash-escaped "@" is part of the atom.
            ("a\\@b", "a\\@b@origin.example"),
            // Unterminated quote: opaque to the end, nothing panics.
            ("\"abc@def", "\"abc@def@origin.example"),
        ];
        for (input, want) in cases {
            assert_eq!(sf(input, ORIGIN), *want, "input {input:?}");
        }
    }

    #[test]
    fn rewrite_switches() {
        let mut p = RewriteParams::new(ORIGIN);
        p.swap_bangpath = false;
        assert_eq!(standard_form("a!b", &p), "a!b@origin.example");
        assert_eq!(standard_form("a!b%c", &p), "a!b@c");
        let mut p = RewriteParams::new(ORIGIN);
        p.allow_percent_hack = false;
        assert_eq!(standard_form("a%b", &p), "a%b@origin.example");
        assert_eq!(standard_form("h!a%b", &p), "a%b@h");
        p.append_at_myorigin = false;
        assert_eq!(standard_form("a%b", &p), "a%b");
        assert_eq!(standard_form("root.", &p), "root");
    }

    #[test]
    fn empty_myorigin_appends_nothing() {
        assert_eq!(sf("root", ""), "root");
        assert_eq!(sf("root.", ""), "root");
    }

    #[test]
    fn quote_822_local_table() {
        let cases: &[(&str, &str)] = &[
            ("jane@example.org", "jane@example.org"),
            ("MAILER-DAEMON", "MAILER-DAEMON"),
            ("john doe@example.org", "\"john doe\"@example.org"),
            ("a\"b@example.org", "\"a\\\"b\"@example.org"),
            (".jane@example.org", "\".jane\"@example.org"),
            ("ja..ne@example.org", "\"ja..ne\"@example.org"),
            ("jane.@example.org", "\"jane.\"@example.org"),
            ("\"john doe\"@example.org", "\"john doe\"@example.org"),
            (
                "@route.example:john doe@example.org",
                "@route.example:\"john doe\"@example.org",
            ),
            ("jöhn@example.org", "jöhn@example.org"),
            ("", "\"\""),
        ];
        for (input, want) in cases {
            assert_eq!(quote_822_local(input), *want, "input {input:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn standard_form_never_panics(
            addr in "[a-z@!%.:,\"\\[\\]() \\\\]{0,24}"
        ) {
            let once = sf(&addr, ORIGIN);
            // A second pass may still strip another route or dot, but it
            // must not panic either.
            let _ = sf(&once, ORIGIN);
            let _ = quote_822_local(&addr);
        }

        #[test]
        fn plain_user_at_domain_is_unchanged(
            user in "[a-z0-9][a-z0-9._+-]{0,10}[a-z0-9]",
            domain in "[a-z0-9]{1,10}(\\.[a-z0-9]{1,10}){0,3}",
        ) {
            let addr = format!("{user}@{domain}");
            proptest::prop_assert_eq!(sf(&addr, ORIGIN), addr);
        }
    }
}
