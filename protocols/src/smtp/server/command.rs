//! Command lines: the tokenizer and the verb table.
//!
//! The tokenizer follows Postfix's `smtpd_token()`: words are separated by
//! white space, except inside `<…>` and `"…"` (which nest, and may hide
//! white space); a backslash escapes the next byte; and `FROM:` / `TO:` end
//! a word even when the path follows without a space. Tokens are slices of
//! the line, kept in their external (quoted) form, so tokenizing allocates
//! nothing beyond the caller's reusable `Vec`.

/// One word of a command line: `line[start..end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub start: usize,
    pub end: usize,
    /// A `<` or `"` was not closed (Postfix's `SMTPD_TOK_ERROR`).
    pub unterminated: bool,
}

impl Token {
    pub fn text<'a>(&self, line: &'a [u8]) -> &'a [u8] {
        line.get(self.start..self.end).unwrap_or_default()
    }
}

/// Splits `line` (without its line ending) into `out`, which is cleared first.
pub fn tokenize(line: &[u8], out: &mut Vec<Token>) {
    out.clear();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            return;
        }
        let start = i;
        let mut unterminated = false;
        while i < line.len() {
            let c = line[i];
            if c.is_ascii_whitespace() {
                break;
            }
            i += 1;
            match c {
                b'<' => {
                    let (next, closed) = skip_quoted(line, i, false);
                    i = next;
                    unterminated |= !closed;
                }
                b'"' => {
                    let (next, closed) = skip_quoted(line, i, true);
                    i = next;
                    unterminated |= !closed;
                }
                b':' => {
                    let word = &line[start..i];
                    if word.eq_ignore_ascii_case(b"from:") || word.eq_ignore_ascii_case(b"to:") {
                        break;
                    }
                }
                b'\\' if i < line.len() => i += 1,
                _ => {}
            }
        }
        out.push(Token {
            start,
            end: i,
            unterminated,
        });
    }
}

/// Skips a `<…>` or `"…"` group that started just before `i`. Inside
/// angle brackets, quotes and further brackets nest; inside quotes nothing
/// nests. Returns the index after the group and whether it was closed.
fn skip_quoted(line: &[u8], mut i: usize, mut in_quote: bool) -> (usize, bool) {
    let mut angles: usize = usize::from(!in_quote);
    while i < line.len() {
        let c = line[i];
        i += 1;
        if c == b'\\' {
            if i == line.len() {
                return (i, false);
            }
            i += 1;
        } else if in_quote {
            if c == b'"' {
                in_quote = false;
                if angles == 0 {
                    return (i, true);
                }
            }
        } else if c == b'>' {
            angles -= 1;
            if angles == 0 {
                return (i, true);
            }
        } else if c == b'"' {
            in_quote = true;
        } else if c == b'<' {
            angles += 1;
        }
    }
    (i, false)
}

/// The commands smtpd knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    Helo,
    Ehlo,
    Starttls,
    /// SMTP AUTH (RFC 4954); Postfix counts it after EHLO.
    Auth,
    Mail,
    Rcpt,
    Data,
    Bdat,
    Rset,
    Noop,
    Vrfy,
    Etrn,
    Help,
    Quit,
}

impl Verb {
    /// All verbs, in the order Postfix prints its disconnect statistics.
    pub const ALL: [Verb; 14] = [
        Verb::Helo,
        Verb::Ehlo,
        Verb::Starttls,
        Verb::Auth,
        Verb::Mail,
        Verb::Rcpt,
        Verb::Data,
        Verb::Bdat,
        Verb::Rset,
        Verb::Noop,
        Verb::Vrfy,
        Verb::Etrn,
        Verb::Help,
        Verb::Quit,
    ];

    /// Case-insensitive lookup of a command word.
    pub fn parse(word: &[u8]) -> Option<Verb> {
        Verb::ALL
            .into_iter()
            .find(|v| word.eq_ignore_ascii_case(v.name().as_bytes()))
    }

    pub fn name(self) -> &'static str {
        match self {
            Verb::Helo => "HELO",
            Verb::Ehlo => "EHLO",
            Verb::Starttls => "STARTTLS",
            Verb::Mail => "MAIL",
            Verb::Rcpt => "RCPT",
            Verb::Data => "DATA",
            Verb::Bdat => "BDAT",
            Verb::Rset => "RSET",
            Verb::Noop => "NOOP",
            Verb::Vrfy => "VRFY",
            Verb::Etrn => "ETRN",
            Verb::Help => "HELP",
            Verb::Quit => "QUIT",
            Verb::Auth => "AUTH",
        }
    }

    /// Postfix's `SMTPD_CMD_FLAG_LAST` (RFC 2920 §3.1): the command must be
    /// the last in a pipelined group, so input after it is a violation.
    pub fn last_in_group(self) -> bool {
        matches!(
            self,
            Verb::Helo | Verb::Ehlo | Verb::Data | Verb::Noop | Verb::Vrfy
        )
    }

    /// Postfix's `SMTPD_CMD_FLAG_LIMIT`: repeats past
    /// `smtpd_junk_command_limit` count as errors.
    pub fn is_junk(self) -> bool {
        matches!(
            self,
            Verb::Helo | Verb::Ehlo | Verb::Rset | Verb::Noop | Verb::Vrfy | Verb::Etrn
        )
    }

    /// Postfix's `SMTPD_CMD_FLAG_PRE_TLS`: allowed before STARTTLS when
    /// `smtpd_tls_security_level = encrypt`; every other command gets
    /// `530 5.7.0 Must issue a STARTTLS command first`. HELP is not a
    /// Postfix command; it says nothing about the session, so it is
    /// allowed too.
    pub fn pre_tls(self) -> bool {
        matches!(
            self,
            Verb::Helo
                | Verb::Ehlo
                | Verb::Starttls
                | Verb::Rset
                | Verb::Noop
                | Verb::Quit
                | Verb::Help
        )
    }

    /// Index into per-verb tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Postfix's `smtpd_forbid_cmds` default (`CONNECT GET POST` and words that
/// do not start with a letter) plus its `is_header()` test: such "commands"
/// come from web clients and from message content that leaked out of DATA,
/// and end the session with `221 2.7.0`.
pub fn is_forbidden(word: &[u8]) -> bool {
    if word.eq_ignore_ascii_case(b"CONNECT")
        || word.eq_ignore_ascii_case(b"GET")
        || word.eq_ignore_ascii_case(b"POST")
    {
        return true;
    }
    if !word.first().is_some_and(u8::is_ascii_alphabetic) {
        return true;
    }
    // A header name: printable non-colon bytes, then ':'.
    match word.split_last() {
        Some((b':', name)) => {
            !name.is_empty() && name.iter().all(|&c| c.is_ascii_graphic() && c != b':')
        }
        _ => false,
    }
}
