//! One sink session: the SMTP conversation, content un-stuffing, and
//! what happens to an accepted message (counted, kept, dumped).

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use super::{FailAt, ReceivedMessage, Shared, Verdict, CONTENT_CHUNK, OUTPUT_FLUSH};

/// How a line read ended.
#[derive(Debug, PartialEq, Eq)]
enum LineEnd {
    /// The line ends with LF.
    Complete,
    /// `max` bytes without LF: the line goes on.
    Partial,
    /// The connection closed (any bytes of an unfinished line are dropped).
    Eof,
}

/// Read one line of at most `max` bytes into `line` (cleared first).
fn read_line<R: BufRead>(r: &mut R, line: &mut Vec<u8>, max: usize) -> io::Result<LineEnd> {
    line.clear();
    let n = r.by_ref().take(max as u64).read_until(b'\n', line)?;
    Ok(if line.last() == Some(&b'\n') {
        LineEnd::Complete
    } else if n == max {
        LineEnd::Partial
    } else {
        LineEnd::Eof
    })
}

fn trim_eol(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n'] = s {
        s = rest;
    }
    s
}

/// `FROM:<addr> PARAMS` / `TO:<addr> PARAMS` → (addr, params), or None
/// when the keyword is missing.
fn parse_path<'a>(arg: &'a str, keyword: &str) -> Option<(&'a str, &'a str)> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    if let Some(inner) = rest.strip_prefix('<') {
        let end = inner.find('>')?;
        Some((&inner[..end], inner[end + 1..].trim()))
    } else {
        let (addr, params) = rest.split_once(' ').unwrap_or((rest, ""));
        (!addr.is_empty()).then_some((addr, params.trim()))
    }
}

/// The SIZE= value among MAIL parameters.
fn size_param(params: &str) -> Option<u64> {
    params.split_ascii_whitespace().find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.eq_ignore_ascii_case("SIZE").then(|| v.parse().ok())?
    })
}

/// A message's content as read after DATA.
struct Content {
    /// Un-stuffed content; empty unless the sink keeps or dumps messages.
    bytes: Vec<u8>,
    /// Bytes after un-stuffing; `None` once over message_size_limit.
    size: Option<usize>,
}

/// Close the session after this reply?
#[derive(PartialEq, Eq)]
enum Next {
    Continue,
    Close,
}

pub(super) struct Session<'a> {
    shared: &'a Shared,
    id: u64,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    out: Vec<u8>,
    line: Vec<u8>,
    mail_from: Option<String>,
    rcpt_tried: bool,
    rcpt_to: Vec<String>,
}

impl<'a> Session<'a> {
    pub(super) fn new(shared: &'a Shared, stream: TcpStream, id: u64) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(shared.cfg.read_timeout))?;
        stream.set_write_timeout(Some(shared.cfg.read_timeout))?;
        let writer = stream.try_clone()?;
        Ok(Session {
            shared,
            id,
            reader: BufReader::with_capacity(CONTENT_CHUNK, stream),
            writer,
            out: Vec::with_capacity(1024),
            line: Vec::with_capacity(1024),
            mail_from: None,
            rcpt_tried: false,
            rcpt_to: Vec::new(),
        })
    }

    fn host(&self) -> &str {
        &self.shared.cfg.hostname
    }

    /// Queue a reply, after `delay`.
    fn reply(&mut self, text: &str, delay: Duration) {
        if !delay.is_zero() {
            thread::sleep(delay);
        }
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    fn command_reply(&mut self, text: &str) {
        self.reply(text, self.shared.cfg.command_delay);
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.writer.write_all(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpt_tried = false;
        self.rcpt_to.clear();
    }

    pub(super) fn run(&mut self) -> io::Result<()> {
        if self.shared.closing() {
            let text = format!("421 4.3.2 {} Service shutting down", self.host());
            self.reply(&text, Duration::ZERO);
            return self.flush();
        }
        let greeting = format!("220 {} ESMTP", self.host());
        self.command_reply(&greeting);
        loop {
            if self.reader.buffer().is_empty() || self.out.len() >= OUTPUT_FLUSH {
                self.flush()?;
            }
            let max = self.shared.cfg.line_length_limit;
            let end = match read_line(&mut self.reader, &mut self.line, max) {
                Ok(end) => end,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    let text = format!("421 4.4.2 {} Error: timeout exceeded", self.host());
                    self.reply(&text, Duration::ZERO);
                    return self.flush();
                }
                Err(e) => return Err(e),
            };
            let next = match end {
                LineEnd::Eof => return Ok(()),
                LineEnd::Partial => self.too_long()?,
                LineEnd::Complete => {
                    let line = String::from_utf8_lossy(trim_eol(&self.line)).into_owned();
                    self.command(&line)?
                }
            };
            if next == Next::Close {
                return self.flush();
            }
        }
    }

    /// A command line over line_length_limit: discard the rest of it.
    fn too_long(&mut self) -> io::Result<Next> {
        let max = self.shared.cfg.line_length_limit;
        loop {
            match read_line(&mut self.reader, &mut self.line, max)? {
                LineEnd::Partial => continue,
                LineEnd::Complete => break,
                LineEnd::Eof => return Ok(Next::Close),
            }
        }
        self.command_reply("500 5.5.2 Error: bad syntax");
        Ok(Next::Continue)
    }

    fn command(&mut self, line: &str) -> io::Result<Next> {
        let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
        let verb = verb.to_ascii_uppercase();
        if self.shared.closing() && verb != "QUIT" {
            let text = format!("421 4.3.2 {} Service shutting down", self.host());
            self.reply(&text, Duration::ZERO);
            return Ok(Next::Close);
        }
        match verb.as_str() {
            "EHLO" => {
                self.reset();
                let cfg = &self.shared.cfg;
                let mut text = format!("250-{}\r\n", cfg.hostname);
                if cfg.announce_pipelining {
                    text.push_str("250-PIPELINING\r\n");
                }
                text.push_str(&format!(
                    "250-SIZE {}\r\n250-8BITMIME\r\n",
                    cfg.message_size_limit
                ));
                if cfg.announce_dsn {
                    text.push_str("250-DSN\r\n");
                }
                text.push_str("250 ENHANCEDSTATUSCODES");
                self.command_reply(&text);
            }
            "HELO" => {
                self.reset();
                let text = format!("250 {}", self.host());
                self.command_reply(&text);
            }
            "MAIL" => self.mail(arg),
            "RCPT" => self.rcpt(arg),
            "DATA" => return self.data(),
            "RSET" => {
                self.reset();
                self.command_reply("250 2.0.0 Ok");
            }
            "NOOP" => self.command_reply("250 2.0.0 Ok"),
            "VRFY" => self.command_reply(&format!("252 2.0.0 {arg}")),
            "QUIT" => {
                self.command_reply("221 2.0.0 Bye");
                return Ok(Next::Close);
            }
            _ => self.command_reply("500 5.5.2 Error: command not recognized"),
        }
        Ok(Next::Continue)
    }

    fn mail(&mut self, arg: &str) {
        if self.mail_from.is_some() {
            return self.command_reply("503 5.5.1 Error: nested MAIL command");
        }
        let Some((addr, params)) = parse_path(arg, "FROM:") else {
            return self.command_reply("501 5.5.4 Syntax: MAIL FROM:<address>");
        };
        let limit = self.shared.cfg.message_size_limit as u64;
        if size_param(params).is_some_and(|s| s > limit) {
            return self.command_reply("552 5.3.4 Message size exceeds fixed limit");
        }
        match self.shared.next_verdict(FailAt::Mail) {
            Verdict::Ok => {
                self.mail_from = Some(addr.to_owned());
                self.command_reply("250 2.1.0 Ok");
            }
            v => self.reject(
                v,
                "450 4.7.1",
                "550 5.7.1",
                &format!("<{addr}>: Sender address rejected"),
                self.shared.cfg.command_delay,
            ),
        }
    }

    fn rcpt(&mut self, arg: &str) {
        if self.mail_from.is_none() {
            return self.command_reply("503 5.5.1 Error: need MAIL command");
        }
        let Some((addr, _params)) = parse_path(arg, "TO:") else {
            return self.command_reply("501 5.5.4 Syntax: RCPT TO:<address>");
        };
        self.rcpt_tried = true;
        if self.rcpt_to.len() >= self.shared.cfg.recipient_limit {
            return self.command_reply("452 4.5.3 Error: too many recipients");
        }
        match self.shared.next_verdict(FailAt::Rcpt) {
            Verdict::Ok => {
                self.rcpt_to.push(addr.to_owned());
                self.command_reply("250 2.1.5 Ok");
            }
            v => self.reject(
                v,
                "450 4.2.0",
                "550 5.1.1",
                &format!("<{addr}>: Recipient address rejected"),
                self.shared.cfg.command_delay,
            ),
        }
    }

    /// Count and queue an injected failure reply.
    fn reject(&mut self, v: Verdict, temp: &str, perm: &str, what: &str, delay: Duration) {
        let (counter, code, kind) = if v == Verdict::Perm {
            (&self.shared.perm_rejects, perm, "permanent")
        } else {
            (&self.shared.temp_rejects, temp, "temporary")
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.reply(&format!("{code} {what}: sink {kind} failure"), delay);
    }

    fn data(&mut self) -> io::Result<Next> {
        if self.mail_from.is_none() {
            self.command_reply("503 5.5.1 Error: need MAIL command");
            return Ok(Next::Continue);
        }
        if self.rcpt_to.is_empty() {
            let text = if self.rcpt_tried {
                "554 5.5.1 Error: no valid recipients"
            } else {
                "503 5.5.1 Error: need RCPT command"
            };
            self.command_reply(text);
            return Ok(Next::Continue);
        }
        self.command_reply("354 End data with <CR><LF>.<CR><LF>");
        self.flush()?;
        let Some(content) = self.read_content()? else {
            return Ok(Next::Close);
        };
        let next = self.end_of_data(content);
        self.reset();
        Ok(next)
    }

    /// Read content up to the final dot, un-stuffing it; `None` at end
    /// of input.
    fn read_content(&mut self) -> io::Result<Option<Content>> {
        let keep = self.shared.keeps_content();
        let limit = self.shared.cfg.message_size_limit;
        let mut content = Vec::new();
        let mut size: Option<usize> = Some(0);
        let mut at_line_start = true;
        loop {
            let end = read_line(&mut self.reader, &mut self.line, CONTENT_CHUNK)?;
            if end == LineEnd::Eof {
                return Ok(None);
            }
            let complete = end == LineEnd::Complete;
            let mut bytes = &self.line[..];
            if at_line_start {
                if complete && (bytes == b".\r\n" || bytes == b".\n") {
                    return Ok(Some(Content {
                        bytes: content,
                        size,
                    }));
                }
                if bytes.first() == Some(&b'.') {
                    bytes = &bytes[1..];
                }
            }
            at_line_start = complete;
            size = size.map(|s| s + bytes.len()).filter(|&s| s <= limit);
            match size {
                // Over the limit: keep reading to the dot, keep nothing.
                None => content = Vec::new(),
                Some(_) if keep => content.extend_from_slice(bytes),
                Some(_) => {}
            }
        }
    }

    fn end_of_data(&mut self, content: Content) -> Next {
        // The delay stands for a slow next hop: it comes before the
        // outcome, whatever that is, and before the message is counted.
        let delay = self.shared.cfg.delay;
        if !delay.is_zero() {
            thread::sleep(delay);
        }
        let Some(size) = content.size else {
            self.reply("552 5.3.4 Error: message file too big", Duration::ZERO);
            return Next::Continue;
        };
        match self.shared.next_verdict(FailAt::Data) {
            Verdict::Ok => {}
            v => {
                self.reject(v, "451 4.3.0", "554 5.3.0", "Error", Duration::ZERO);
                return Next::Continue;
            }
        }
        let s = self.shared;
        if !s.reserve() {
            let text = format!("421 4.3.2 {} Service shutting down", self.host());
            self.reply(&text, Duration::ZERO);
            return Next::Close;
        }
        let msg = ReceivedMessage {
            id: s.next_id.fetch_add(1, Ordering::SeqCst) + 1,
            mail_from: self.mail_from.take().unwrap_or_default(),
            rcpt_to: std::mem::take(&mut self.rcpt_to),
            content: content.bytes,
            connection: self.id,
            at: Instant::now(),
        };
        if let Some(dir) = &s.cfg.dump_dir {
            if dump(dir, &msg).is_err() {
                s.unreserve();
                s.temp_rejects.fetch_add(1, Ordering::Relaxed);
                // Postfix's wording when the queue file cannot be written.
                self.reply("451 4.3.0 Error: queue file write error", Duration::ZERO);
                return Next::Continue;
            }
        }
        let reply = format!("250 2.0.0 Ok: queued as {}", msg.id);
        s.record(msg, size);
        self.reply(&reply, Duration::ZERO);
        Next::Continue
    }
}

/// Write `<dir>/<id>.eml` through a temporary name, so that a reader
/// polling the directory never sees half a file.
fn dump(dir: &Path, msg: &ReceivedMessage) -> io::Result<()> {
    let mut data = Vec::with_capacity(msg.content.len() + 256);
    write!(data, "X-Sink-Mail-From: <{}>\r\n", msg.mail_from)?;
    for r in &msg.rcpt_to {
        write!(data, "X-Sink-Rcpt-To: <{r}>\r\n")?;
    }
    data.extend_from_slice(&msg.content);
    let tmp = dir.join(format!("{:08}.tmp", msg.id));
    fs::write(&tmp, &data)?;
    fs::rename(&tmp, dir.join(format!("{:08}.eml", msg.id)))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn paths_and_params() {
        assert_eq!(
            parse_path("FROM:<a@b> SIZE=10", "FROM:"),
            Some(("a@b", "SIZE=10"))
        );
        assert_eq!(parse_path("from: <>", "FROM:"), Some(("", "")));
        assert_eq!(parse_path("TO:c@d", "TO:"), Some(("c@d", "")));
        assert_eq!(parse_path("TO:<c@d", "TO:"), None);
        assert_eq!(parse_path("FRM:<a>", "FROM:"), None);
        assert_eq!(parse_path("", "FROM:"), None);
        assert_eq!(size_param("BODY=8BITMIME size=123"), Some(123));
        assert_eq!(size_param("SIZE=x"), None);
    }
}
