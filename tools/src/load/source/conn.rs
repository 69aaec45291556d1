//! One client connection of the source: greeting, EHLO, one transaction
//! at a time (pipelined when the server allows), replies read and
//! bounded.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use super::super::MAX_REPLY_LINE;
use super::{dot_stuff, Run, SourceConfig};

/// Lines in one multi-line reply (an EHLO reply has about a dozen); a
/// server that goes on is treated as broken rather than buffered.
const MAX_REPLY_LINES: usize = 100;

/// Trouble that ends a connection.
#[derive(Debug, thiserror::Error)]
pub(super) enum SessionError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("connection closed by server")]
    Closed,
    #[error("malformed reply: {0:?}")]
    Malformed(String),
    #[error("unexpected reply: {0}")]
    Unexpected(String),
}

/// A new connection: ready for mail, or refused in the greeting.
pub(super) enum Opened {
    Ready(Conn),
    Refused(Outcome),
}

/// One (possibly multi-line) server reply.
struct ServerReply {
    code: u16,
    /// The lines' texts after the code, joined by '\n'.
    text: String,
}

impl ServerReply {
    fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
    fn describe(&self) -> String {
        format!("{} {}", self.code, self.text.replace('\n', " / "))
    }
}

/// How one message ended (errors come as `Err`).
pub(super) enum Outcome {
    Accepted { latency_us: u64, rcpt_rejected: u64 },
    Rejected { permanent: bool, reply: String },
}

/// One connection, after the greeting and EHLO.
pub(super) struct Conn {
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
    pipelining: bool,
    line: Vec<u8>,
}

impl Conn {
    pub(super) fn open(cfg: &SourceConfig) -> Result<Opened, SessionError> {
        let stream = TcpStream::connect_timeout(&cfg.target, cfg.timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(cfg.timeout))?;
        stream.set_write_timeout(Some(cfg.timeout))?;
        let mut c = Conn {
            reader: BufReader::with_capacity(16 * 1024, stream.try_clone()?),
            writer: BufWriter::with_capacity(64 * 1024, stream),
            pipelining: false,
            line: Vec::with_capacity(MAX_REPLY_LINE),
        };
        let greeting = c.read_reply()?;
        if greeting.code != 220 {
            if greeting.code >= 400 {
                return Ok(Opened::Refused(rejected(&greeting)));
            }
            return Err(SessionError::Unexpected(greeting.describe()));
        }
        c.command(&format!("EHLO {}", cfg.helo))?;
        let ehlo = c.read_reply()?;
        if ehlo.code == 250 {
            c.pipelining = cfg.pipelining
                && ehlo.text.lines().skip(1).any(|l| {
                    l.split_ascii_whitespace()
                        .next()
                        .is_some_and(|k| k.eq_ignore_ascii_case("PIPELINING"))
                });
        } else {
            c.command(&format!("HELO {}", cfg.helo))?;
            let helo = c.read_reply()?;
            if helo.code != 250 {
                return Err(SessionError::Unexpected(helo.describe()));
            }
        }
        Ok(Opened::Ready(c))
    }

    /// Queue one command line (written at the next flush).
    fn command(&mut self, line: &str) -> io::Result<()> {
        self.writer.write_all(line.as_bytes())?;
        self.writer.write_all(b"\r\n")?;
        if !self.pipelining {
            self.writer.flush()?;
        }
        Ok(())
    }

    fn read_reply(&mut self) -> Result<ServerReply, SessionError> {
        self.writer.flush()?;
        let mut code = 0;
        let mut text = String::new();
        let mut lines = 0;
        loop {
            self.line.clear();
            let n = (&mut self.reader)
                .take(MAX_REPLY_LINE as u64)
                .read_until(b'\n', &mut self.line)?;
            if self.line.last() != Some(&b'\n') {
                return Err(if n == MAX_REPLY_LINE {
                    SessionError::Malformed("reply line too long".to_owned())
                } else {
                    SessionError::Closed
                });
            }
            lines += 1;
            if lines > MAX_REPLY_LINES {
                return Err(SessionError::Malformed("reply too long".to_owned()));
            }
            let line = String::from_utf8_lossy(&self.line);
            let line = line.trim_end_matches(['\r', '\n']);
            let b = line.as_bytes();
            let this: u16 = match line.get(..3).and_then(|c| c.parse().ok()) {
                Some(c) if b[0].is_ascii_digit() && (200..600).contains(&c) => c,
                _ => return Err(SessionError::Malformed(line.to_owned())),
            };
            if code != 0 && this != code {
                return Err(SessionError::Malformed(line.to_owned()));
            }
            code = this;
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(line.get(4..).unwrap_or(""));
            match b.get(3) {
                Some(b'-') => continue,
                None | Some(b' ') => return Ok(ServerReply { code, text }),
                Some(_) => return Err(SessionError::Malformed(line.to_owned())),
            }
        }
    }

    /// Send message `n`: MAIL, RCPTs, DATA, content, dot.
    pub(super) fn send(&mut self, run: &Run<'_>, n: u64) -> Result<Outcome, SessionError> {
        let started = Instant::now();
        self.command(&format!("MAIL FROM:<{}>", run.cfg.from))?;
        if self.pipelining {
            for rcpt in &run.rcpts {
                self.command(&format!("RCPT TO:<{rcpt}>"))?;
            }
            self.command("DATA")?;
            // A 421 means the server has closed: the rest of the group
            // will not be answered.
            let mail = self.read_reply()?;
            if mail.code == 421 {
                return Ok(rejected(&mail));
            }
            let mut rcpts = Vec::with_capacity(run.rcpts.len());
            for _ in &run.rcpts {
                let r = self.read_reply()?;
                if r.code == 421 {
                    return Ok(rejected(&r));
                }
                rcpts.push(r);
            }
            let data = self.read_reply()?;
            return match (envelope_verdict(&mail, &rcpts), data.code == 354) {
                (Ok(refused), true) => self.content(run, n, started, refused),
                (Ok(_), false) => Ok(rejected(&data)),
                (Err(outcome), true) => {
                    // The server took DATA with nothing to deliver: end
                    // the empty content, report the envelope's rejection.
                    self.writer.write_all(b".\r\n")?;
                    self.read_reply()?;
                    Ok(outcome)
                }
                (Err(outcome), false) => Ok(outcome),
            };
        }
        let mail = self.read_reply()?;
        if !mail.is_positive() {
            return Ok(rejected(&mail));
        }
        let mut rcpts = Vec::with_capacity(run.rcpts.len());
        for rcpt in &run.rcpts {
            self.command(&format!("RCPT TO:<{rcpt}>"))?;
            rcpts.push(self.read_reply()?);
        }
        let refused = match envelope_verdict(&mail, &rcpts) {
            Ok(refused) => refused,
            Err(outcome) => return Ok(outcome),
        };
        self.command("DATA")?;
        let data = self.read_reply()?;
        if data.code != 354 {
            return Ok(rejected(&data));
        }
        self.content(run, n, started, refused)
    }

    /// After 354: the content, the dot, and the final reply.
    fn content(
        &mut self,
        run: &Run<'_>,
        n: u64,
        started: Instant,
        rcpt_rejected: u64,
    ) -> Result<Outcome, SessionError> {
        if run.cfg.body.is_none() {
            self.writer
                .write_all(&dot_stuff(&run.cfg.headers(n, &run.rcpts)))?;
        }
        self.writer.write_all(&run.stuffed_body)?;
        self.writer.write_all(b".\r\n")?;
        let r = self.read_reply()?;
        if r.code / 100 != 2 {
            return Ok(rejected(&r));
        }
        let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        Ok(Outcome::Accepted {
            latency_us,
            rcpt_rejected,
        })
    }

    pub(super) fn rset(&mut self) -> Result<(), SessionError> {
        self.command("RSET")?;
        let r = self.read_reply()?;
        if r.is_positive() {
            Ok(())
        } else {
            Err(SessionError::Unexpected(r.describe()))
        }
    }

    /// Say goodbye; the server's answer does not matter any more.
    pub(super) fn quit(mut self) {
        if self.command("QUIT").is_ok() {
            let _ = self.read_reply();
        }
    }
}

fn rejected(r: &ServerReply) -> Outcome {
    Outcome::Rejected {
        permanent: r.code >= 500,
        reply: r.describe(),
    }
}

/// The envelope's fate: `Ok(refused RCPTs)` if the message can go on, or
/// the rejection that stopped it. With every RCPT refused, the message
/// counts as a temporary failure if any refusal was temporary (a retry
/// could deliver it).
fn envelope_verdict(mail: &ServerReply, rcpts: &[ServerReply]) -> Result<u64, Outcome> {
    if !mail.is_positive() {
        return Err(rejected(mail));
    }
    let refused = rcpts.iter().filter(|r| !r.is_positive()).count();
    if refused < rcpts.len() {
        return Ok(refused as u64);
    }
    let worst = rcpts.iter().find(|r| r.code < 500).or(rcpts.first());
    match worst {
        Some(r) => Err(rejected(r)),
        None => Ok(0),
    }
}
