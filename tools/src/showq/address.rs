//! Addresses as showq shows them: the null sender spelled out, the local
//! part quoted when it is not an RFC 822 dot-string, control characters
//! replaced. Postfix's `quote_822_local()` (with its default flag,
//! 8-bit clean) and `printable()` (with SMTPUTF8 on, so valid UTF-8
//! passes; a `&str` is always valid UTF-8).
//!
//! Each function returns the input borrowed when nothing changes, which is
//! the common case, so a listing copies no address it does not alter.

use std::borrow::Cow;

/// What the null sender is shown as: Postfix's `empty_address_recipient`
/// default.
pub const EMPTY_ADDRESS_RECIPIENT: &str = "MAILER-DAEMON";

/// The address as showq lists it: `""` becomes [`EMPTY_ADDRESS_RECIPIENT`],
/// then [`quote_822_local`], then [`printable`].
pub fn external_address(address: &str) -> Cow<'_, str> {
    if address.is_empty() {
        return Cow::Borrowed(EMPTY_ADDRESS_RECIPIENT);
    }
    match quote_822_local(address) {
        Cow::Borrowed(quoted) => printable(quoted),
        Cow::Owned(quoted) => Cow::Owned(printable(&quoted).into_owned()),
    }
}

/// Replaces ASCII control characters (0x00–0x1F, 0x7F) with `?`.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(|b| b.is_ascii_control()) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| if c.is_ascii_control() { '?' } else { c })
            .collect(),
    )
}

/// Quotes the local part of `mailbox` unless it is an RFC 822 dot-string:
/// `john doe@example.com` becomes `"john doe"@example.com`. The local part
/// ends at the last `@`; a source route (`@a,@b:user@c`) is kept as is.
/// Inside the quotes, `"`, `\` and CR get a backslash.
pub fn quote_822_local(mailbox: &str) -> Cow<'_, str> {
    let start = match mailbox.find(':') {
        Some(colon) if mailbox.starts_with('@') => colon + 1,
        _ => 0,
    };
    let end = mailbox[start..]
        .rfind('@')
        .map_or(mailbox.len(), |at| start + at);
    let local = &mailbox[start..end];
    if is_822_dot_string(local) {
        return Cow::Borrowed(mailbox);
    }
    let mut quoted = String::with_capacity(mailbox.len() + 4);
    quoted.push_str(&mailbox[..start]);
    quoted.push('"');
    for c in local.chars() {
        if matches!(c, '"' | '\\' | '\r') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted.push_str(&mailbox[end..]);
    Cow::Owned(quoted)
}

/// A sequence of atoms separated by single dots. 8-bit bytes are atom
/// characters (the 8-bit clean default).
fn is_822_dot_string(local: &str) -> bool {
    let bytes = local.as_bytes();
    if bytes.is_empty() || bytes[0] == b'.' || bytes[bytes.len() - 1] == b'.' {
        return false;
    }
    if local.contains("..") {
        return false;
    }
    !bytes.iter().any(|&b| {
        b == b' '
            || b.is_ascii_control()
            || matches!(
                b,
                b'(' | b')' | b'<' | b'>' | b'@' | b',' | b';' | b':' | b'\\' | b'"' | b'[' | b']'
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_822_local_table() {
        let table: &[(&str, &str)] = &[
            ("alice@example.com", "alice@example.com"),
            ("first.last@example.com", "first.last@example.com"),
            ("postmaster", "postmaster"),
            ("john doe@example.com", "\"john doe\"@example.com"),
            (".alice@example.com", "\".alice\"@example.com"),
            ("alice.@example.com", "\"alice.\"@example.com"),
            ("a..b@example.com", "\"a..b\"@example.com"),
            ("a\"b@example.com", "\"a\\\"b\"@example.com"),
            ("a\\b@example.com", "\"a\\\\b\"@example.com"),
            ("a@b@example.com", "\"a@b\"@example.com"),
            ("a(b)@x", "\"a(b)\"@x"),
            ("a,b;c:d@x", "\"a,b;c:d\"@x"),
            ("[a]@x", "\"[a]\"@x"),
            ("<a>@x", "\"<a>\"@x"),
            ("@x", "\"\"@x"),
            ("@relay:user@example.com", "@relay:user@example.com"),
            ("@relay:us er@example.com", "@relay:\"us er\"@example.com"),
            ("jöe@example.com", "jöe@example.com"),
            ("a+tag=x/y@example.com", "a+tag=x/y@example.com"),
        ];
        for &(input, want) in table {
            assert_eq!(quote_822_local(input), want, "input {input:?}");
        }
    }

    #[test]
    fn external_address_table() {
        let table: &[(&str, &str)] = &[
            ("", "MAILER-DAEMON"),
            ("bob@example.org", "bob@example.org"),
            ("bo\u{1b}b@x", "\"bo?b\"@x"),
            ("a\rb@x", "\"a\\?b\"@x"),
            ("bob@exa\tmple.org", "bob@exa?mple.org"),
        ];
        for &(input, want) in table {
            assert_eq!(external_address(input), want, "input {input:?}");
        }
    }

    #[test]
    fn unchanged_addresses_are_borrowed() {
        assert!(matches!(
            external_address("alice@example.com"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(printable("héllo"), Cow::Borrowed(_)));
    }

    #[test]
    fn printable_keeps_utf8_and_replaces_controls() {
        assert_eq!(printable("a\u{0}b\u{7f}c\u{1f}é"), "a?b?c?é");
    }
}
