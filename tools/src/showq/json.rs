//! `postqueue -j`: one JSON object per message and line, as Postfix's
//! `showq_json.c` prints it: keys in a fixed order, `", "` and `": "` as
//! separators, strings made printable and then escaped.
//!
//! ```text
//! {"queue_name": "deferred", "queue_id": "451ED9948E3", "arrival_time": 1795890085, "message_size": 229, "forced_expire": false, "sender": "alice@example.com", "recipients": [{"orig_address": "bob@example.org", "address": "bob@example.org", "delay_reason": "deferred transport"}]}
//! ```

use std::io::{self, BufWriter, Write};

use super::address::{external_address, printable};
use super::{listing_order, ShowqEntry};

/// Output buffer of [`format_json`], as for `postqueue -p`.
const OUTPUT_BUFFER_BYTES: usize = 64 * 1024;

/// Writes the `postqueue -j` listing of `entries`: one object per line,
/// nothing at all for an empty queue.
pub fn format_json(entries: &[ShowqEntry], out: &mut impl Write) -> io::Result<()> {
    let mut writer = JsonWriter::new(BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, out));
    for entry in entries {
        writer.entry(entry)?;
    }
    writer.finish().flush()
}

/// The `postqueue -j` listing, one message at a time. Give it a buffered
/// writer.
pub struct JsonWriter<W: Write> {
    out: W,
    /// Recipient listing order, reused across messages.
    order: Vec<usize>,
}

impl<W: Write> JsonWriter<W> {
    pub fn new(out: W) -> Self {
        JsonWriter {
            out,
            order: Vec::new(),
        }
    }

    /// Writes one message's line.
    pub fn entry(&mut self, entry: &ShowqEntry) -> io::Result<()> {
        let out = &mut self.out;
        out.write_all(b"{\"queue_name\": ")?;
        write_json_string(out, &entry.queue_name)?;
        out.write_all(b", \"queue_id\": ")?;
        write_json_string(out, &entry.queue_id)?;
        write!(
            out,
            ", \"arrival_time\": {}, \"message_size\": {}, \"forced_expire\": {}, \"sender\": ",
            entry.arrival_time, entry.message_size, entry.forced_expire
        )?;
        write_json_string(out, &external_address(&entry.sender))?;
        out.write_all(b", \"recipients\": [")?;
        listing_order(&entry.recipients, &mut self.order);
        for (n, &i) in self.order.iter().enumerate() {
            let recipient = &entry.recipients[i];
            out.write_all(if n == 0 { b"{" } else { b", {" })?;
            let address = external_address(&recipient.address);
            out.write_all(b"\"orig_address\": ")?;
            match &recipient.orig_address {
                Some(orig) => write_json_string(out, &external_address(orig))?,
                None => write_json_string(out, &address)?,
            }
            out.write_all(b", \"address\": ")?;
            write_json_string(out, &address)?;
            let reason = recipient.reason();
            if !reason.is_empty() {
                out.write_all(b", \"delay_reason\": ")?;
                write_json_string(out, &printable(reason))?;
            }
            out.write_all(b"}")?;
        }
        out.write_all(b"]}\n")
    }

    /// Hands back the writer, unflushed. (There is no trailer.)
    pub fn finish(self) -> W {
        self.out
    }
}

/// Writes `text` as a JSON string the way Postfix's `quote_for_json()`
/// does: `"` and `\` escaped, `\b \f \n \r \t` short, other controls
/// (including DEL) as `\u00XX` in upper case, `/` and non-ASCII as is.
fn write_json_string(out: &mut impl Write, text: &str) -> io::Result<()> {
    out.write_all(b"\"")?;
    let bytes = text.as_bytes();
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0C => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            _ if b.is_ascii_control() => 0,
            _ => continue,
        };
        out.write_all(&bytes[run_start..i])?;
        run_start = i + 1;
        if short == 0 {
            write!(out, "\\u{b:04X}")?;
        } else {
            out.write_all(&[b'\\', short])?;
        }
    }
    out.write_all(&bytes[run_start..])?;
    out.write_all(b"\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(text: &str) -> String {
        let mut out = Vec::new();
        write_json_string(&mut out, text).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The cases of Postfix's own quote_for_json test.
    #[test]
    fn quote_for_json_table() {
        let table: &[(&str, &str)] = &[
            (" abcABC012.,[]{}/", "\" abcABC012.,[]{}/\""),
            ("\u{8}\u{c}\r\n\t", "\"\\b\\f\\r\\n\\t\""),
            (
                "\0\u{1}\u{1f} ~\u{7f}",
                "\"\\u0000\\u0001\\u001F ~\\u007F\"",
            ),
            ("\\*\\uasd\\u007F", "\"\\\\*\\\\uasd\\\\u007F\""),
            ("say \"hi\"", "\"say \\\"hi\\\"\""),
            ("héllo", "\"héllo\""),
            ("", "\"\""),
        ];
        for &(input, want) in table {
            assert_eq!(quoted(input), want, "input {input:?}");
        }
    }
}
