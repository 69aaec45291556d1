//! RFC 822 address lists, as sendmail reads them from its command line
//! and (with `-t`) from `To:`, `Cc:` and `Bcc:` headers.
//!
//! A simplified `tok822_parse()` + `tok822_grep(TOK822_ADDR)`: the list is
//! split at commas (and at the `;` that ends a group) outside quoted
//! strings, comments, domain literals and angle brackets; in each element
//! the address is the text inside `<…>` when there is one, else the whole
//! element; comments and white space outside quotes are dropped; a group's
//! display name (`undisclosed-recipients:`) is dropped; a source route
//! (`<@a,@b:user@d>`) is dropped. Quoted local parts are kept as written,
//! as smtpd keeps them; cleanup turns addresses into standard form.
//!
//! Unterminated quotes, comments and literals run to the end of the text.
//! Nothing here panics, whatever the input.

/// The addresses in `text`, in order. `<>` is an empty address (the null
/// sender, for `-f '<>'`); an element with no address at all (`,,`, a
/// bare comment) yields nothing.
pub fn parse(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut element = Element::default();
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        match c {
            '"' => {
                let buf = element.target();
                buf.push('"');
                while let Some((_, q)) = chars.next() {
                    buf.push(q);
                    match q {
                        '\\' => {
                            if let Some((_, e)) = chars.next() {
                                buf.push(e);
                            }
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '(' => {
                // A comment, possibly nested; dropped.
                let mut depth = 1u32;
                while let Some((_, q)) = chars.next() {
                    match q {
                        '\\' => {
                            chars.next();
                        }
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            '[' => {
                let buf = element.target();
                buf.push('[');
                while let Some((_, q)) = chars.next() {
                    buf.push(q);
                    match q {
                        '\\' => {
                            if let Some((_, e)) = chars.next() {
                                buf.push(e);
                            }
                        }
                        ']' => break,
                        _ => {}
                    }
                }
            }
            '\\' => {
                let buf = element.target();
                buf.push('\\');
                if let Some((_, e)) = chars.next() {
                    buf.push(e);
                }
            }
            '<' if element.angle_open.is_none() => element.angle_open = Some(String::new()),
            '>' if element.angle_open.is_some() => element.angle = element.angle_open.take(),
            ',' | ';' if element.angle_open.is_none() => element.finish(&mut out),
            ':' if element.angle_open.is_none() => {
                // A group's display name ends here; its members follow.
                element.phrase.clear();
            }
            c if c.is_whitespace() => {}
            c => element.target().push(c),
        }
    }
    element.finish(&mut out);
    out
}

/// The element being read.
#[derive(Default)]
struct Element {
    /// Text outside angle brackets, without white space and comments.
    phrase: String,
    /// The last complete `<…>`.
    angle: Option<String>,
    /// Inside `<…>`, not yet closed.
    angle_open: Option<String>,
}

impl Element {
    fn target(&mut self) -> &mut String {
        match &mut self.angle_open {
            Some(a) => a,
            None => &mut self.phrase,
        }
    }

    fn finish(&mut self, out: &mut Vec<String>) {
        // An unclosed `<` is closed by the end of the element.
        let angle = self.angle_open.take().or(self.angle.take());
        let phrase = std::mem::take(&mut self.phrase);
        match angle {
            Some(a) => out.push(strip_route(&a).to_owned()),
            None if !phrase.is_empty() => out.push(phrase),
            None => {}
        }
    }
}

/// `@a,@b:user@d` → `user@d`.
fn strip_route(addr: &str) -> &str {
    if addr.starts_with('@') {
        if let Some(colon) = addr.find(':') {
            return &addr[colon + 1..];
        }
    }
    addr
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn table() {
        let cases: &[(&str, &[&str])] = &[
            ("bob@example.org", &["bob@example.org"]),
            ("bob", &["bob"]),
            ("a@x, b@y,c@z", &["a@x", "b@y", "c@z"]),
            ("Bob Smith <bob@example.org>", &["bob@example.org"]),
            (
                "\"Smith, Bob\" <bob@example.org>, carol@example.net",
                &["bob@example.org", "carol@example.net"],
            ),
            ("bob@example.org (Bob Smith)", &["bob@example.org"]),
            ("(a, comment) bob@x", &["bob@x"]),
            ("(nested (comment, here)) bob@x", &["bob@x"]),
            ("bob @ example . org", &["bob@example.org"]),
            ("\"john doe\"@example.org", &["\"john doe\"@example.org"]),
            ("\"a,b\"@x, c@y", &["\"a,b\"@x", "c@y"]),
            (
                "<@relay.example,@b.example:bob@example.org>",
                &["bob@example.org"],
            ),
            ("undisclosed-recipients:;", &[]),
            ("friends: a@x, b@y;, c@z", &["a@x", "b@y", "c@z"]),
            ("user@[192.0.2.1]", &["user@[192.0.2.1]"]),
            ("<>", &[""]),
            ("", &[]),
            (" , ,, ", &[]),
            ("(only a comment)", &[]),
            ("Name <bob@x", &["bob@x"]),
            ("\"unterminated", &["\"unterminated"]),
            ("a\\,b@x", &["a\\,b@x"]),
            ("jöran@exämple.org", &["jöran@exämple.org"]),
            ("a@x,\r\n\tb@y", &["a@x", "b@y"]),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), *want, "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,60}") {
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_on_specials(s in "[<>()\\[\\]\",;:@\\\\ a]{0,40}") {
            let _ = parse(&s);
        }
    }
}
