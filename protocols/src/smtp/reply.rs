//! SMTP replies with enhanced status codes (RFC 3463).

use std::fmt;

/// An enhanced status code `class.subject.detail` (RFC 3463).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnhancedCode(pub u8, pub u16, pub u16);

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// One SMTP reply. `text` may hold several lines separated by `\n`; they
/// are sent as a multi-line reply, each line with the code (and the
/// enhanced code, when there is one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub enhanced: Option<EnhancedCode>,
    pub text: String,
}

/// Postfix caps replies at 510 characters per line (RFC 5321 §4.5.3.1.5).
pub const MAX_REPLY_LINE: usize = 510;

impl Reply {
    /// A reply with an enhanced code, e.g. `Reply::new(250, (2, 1, 0), "Ok")`.
    pub fn new(code: u16, enhanced: (u8, u16, u16), text: impl Into<String>) -> Self {
        debug_assert_eq!(
            u16::from(enhanced.0),
            code / 100,
            "the enhanced code's class must equal the reply's first digit"
        );
        Reply {
            code,
            enhanced: Some(EnhancedCode(enhanced.0, enhanced.1, enhanced.2)),
            text: text.into(),
        }
    }

    /// A reply without an enhanced code (the greeting, HELO, EHLO).
    pub fn plain(code: u16, text: impl Into<String>) -> Self {
        Reply {
            code,
            enhanced: None,
            text: text.into(),
        }
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// Appends the wire form (CRLF-terminated lines) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut lines = self.text.split('\n').peekable();
        while let Some(line) = lines.next() {
            let sep = if lines.peek().is_some() { '-' } else { ' ' };
            let start = out.len();
            match self.enhanced {
                Some(e) => {
                    out.extend_from_slice(format!("{}{}{} {}", self.code, sep, e, line).as_bytes())
                }
                None => out.extend_from_slice(format!("{}{}{}", self.code, sep, line).as_bytes()),
            }
            out.truncate(start + (out.len() - start).min(MAX_REPLY_LINE));
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The wire form as a string (for logs and tests), without the final CRLF.
    pub fn to_wire_string(&self) -> String {
        let mut v = Vec::new();
        self.write_to(&mut v);
        v.truncate(v.len() - 2);
        String::from_utf8_lossy(&v).into_owned()
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_wire_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_with_enhanced_code() {
        assert_eq!(
            Reply::new(250, (2, 1, 0), "Ok").to_wire_string(),
            "250 2.1.0 Ok"
        );
    }

    #[test]
    fn multi_line_uses_dash_until_the_last() {
        let r = Reply::plain(250, "mx.example\nPIPELINING\nSIZE 10240000");
        let mut v = Vec::new();
        r.write_to(&mut v);
        assert_eq!(
            v,
            b"250-mx.example\r\n250-PIPELINING\r\n250 SIZE 10240000\r\n"
        );
    }

    #[test]
    fn long_lines_are_capped() {
        let r = Reply::new(550, (5, 7, 1), "x".repeat(2000));
        let mut v = Vec::new();
        r.write_to(&mut v);
        assert_eq!(v.len(), MAX_REPLY_LINE + 2);
    }
}
