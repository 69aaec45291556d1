//! `postcat`: show a queued message the way Postfix's postcat shows a
//! queue file (POSTFIX-FACTS §4, postcat.c).
//!
//! ```text
//! postcat [-beh] [-q] queue_id ...
//! ```
//!
//! - `-e` envelope, `-h` headers, `-b` body; none of them means all three.
//!   The `*** … ***` section markers are part of the envelope output, so
//!   `postcat -bq ID` prints the body alone, as Postfix does.
//! - `-q` is accepted for compatibility: operands are always queue IDs (a
//!   path such as `deferred/4/ID`, as postcat's own markers print it, names
//!   the ID after its last `/`). Reading a raw queue file from stdin has no
//!   meaning here: Sluice's queue is a log, not one file per message.
//! - The message is read with [`ShardLog::open_readonly`] on the shard its
//!   ID names: safe while the daemon runs.
//! - Errors are Postfix's: `postcat: fatal: open queue file ID: No such
//!   file or directory`, `postcat: fatal: bad mail queue ID: X`; exit 1.
//!
//! Output, for a message received by SMTP (times in the local zone, as
//! `asctime(localtime())`):
//!
//! ```text
//! *** ENVELOPE RECORDS deferred/4/4jcJb04xz60 ***
//! message_size:             332             186               1               0             332               0
//! message_arrival_time: Sat Nov 28 18:21:25 2026
//! create_time: Sat Nov 28 18:21:25 2026
//! named_attribute: rewrite_context=remote
//! named_attribute: log_client_name=localhost
//! …
//! sender: alice@example.com
//! original_recipient: bob@example.org
//! recipient: bob@example.org
//! *** MESSAGE CONTENTS deferred/4/4jcJb04xz60 ***
//! Received: …
//! *** HEADER EXTRACTED deferred/4/4jcJb04xz60 ***
//! *** MESSAGE FILE END deferred/4/4jcJb04xz60 ***
//! ```
//!
//! The `message_size` fields are Postfix's: content size, data offset
//! (here: where the content starts in its segment file), recipient count,
//! queue manager flags (0), content length, SMTPUTF8 flags.

use std::collections::hash_map::{Entry, HashMap};
use std::io::{self, BufRead, Write};
use std::net::IpAddr;

use sluice_agents::datetime::BrokenDownTime;
use sluice_engine::config::Config;
use sluice_protocols::envelope::{Body, ClientInfo, Protocol, Ret};
use sluice_storage::index::MessageMeta;
use sluice_storage::log::ShardLog;
use sluice_storage::qid::QueueId;
use sluice_storage::record::MessageRecord;
use sluice_storage::StorageError;

/// Postfix's exit status for `msg_fatal`.
const FATAL: i32 = 1;
/// Postfix's longest queue ID (mail_queue_id_ok).
const POSTFIX_MAX_QUEUE_ID: usize = 255;
/// `SMTPUTF8_FLAG_REQUESTED` in the size record.
const SMTPUTF8_FLAG_REQUESTED: u8 = 1;
/// Linux's address family numbers, which Postfix logs as
/// `client_address_type`.
const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;

const USAGE: &str = "usage: postcat [-b (body text)] [-e (envelope records)] \
[-h (header text)] [-q (access queue)] queue_id...";

/// Which parts to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sections {
    pub envelope: bool,
    pub header: bool,
    pub body: bool,
}

impl Sections {
    pub const ALL: Sections = Sections {
        envelope: true,
        header: true,
        body: true,
    };
}

/// Queue directory hashing, for the path in the markers
/// (`hash_queue_names`, `hash_queue_depth`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueLayout {
    pub hash_queue_names: Vec<String>,
    pub hash_queue_depth: usize,
}

impl QueueLayout {
    pub fn from_config(config: &Config) -> QueueLayout {
        QueueLayout {
            hash_queue_names: config
                .main
                .get_list("hash_queue_names")
                .unwrap_or_else(|_| vec!["deferred".into(), "defer".into()]),
            hash_queue_depth: config
                .main
                .get_int("hash_queue_depth")
                .ok()
                .and_then(|d| usize::try_from(d).ok())
                .unwrap_or(1),
        }
    }

    /// Postfix's `mail_queue_path(queue, id)`: `active/ID`, or for a
    /// hashed queue `deferred/4/ID`, the subdirectories named by the
    /// upper-case hex microseconds of a long ID (the ID itself for other
    /// IDs), one character per level.
    pub fn path(&self, queue: &str, qid: &QueueId) -> String {
        let mut p = format!("{queue}/");
        if self
            .hash_queue_names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(queue))
        {
            let key = match qid.time_us() {
                Some(t) => format!("{:05X}", t % 1_000_000),
                None => qid.as_str().to_string(),
            };
            let mut chars = key.chars();
            for _ in 0..self.hash_queue_depth {
                // dir_forest pads a short name with `_`.
                p.push(chars.next().unwrap_or('_'));
                p.push('/');
            }
        }
        p.push_str(qid.as_str());
        p
    }
}

/// `postcat ARGS…` (`args` without the program name; `-c` is the caller's
/// business), printing to stdout with local times.
pub fn main(args: &[String], config: &Config) -> i32 {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let stderr = io::stderr();
    let mut err = stderr.lock();
    let code = run(args, config, &mut out, &mut err, &BrokenDownTime::local);
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe && code == 0 => {
            let _ = writeln!(err, "postcat: fatal: write error: {e}");
            FATAL
        }
        _ => code,
    }
}

/// The command with its streams and time zone given (tests).
pub fn run(
    args: &[String],
    config: &Config,
    out: &mut dyn Write,
    err: &mut dyn Write,
    tm: &dyn Fn(i64) -> BrokenDownTime,
) -> i32 {
    match execute(args, config, out, tm) {
        Ok(()) => 0,
        // A closed pipe (`postcat -q ID | head`) is not an error.
        Err(Failure::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(Failure::Write(e)) => {
            let _ = writeln!(err, "postcat: fatal: write error: {e}");
            FATAL
        }
        Err(Failure::Fatal(msg)) => {
            let _ = out.flush();
            let _ = writeln!(err, "postcat: fatal: {msg}");
            FATAL
        }
    }
}

enum Failure {
    Fatal(String),
    Write(io::Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::Write(e)
    }
}

fn execute(
    args: &[String],
    config: &Config,
    out: &mut dyn Write,
    tm: &dyn Fn(i64) -> BrokenDownTime,
) -> Result<(), Failure> {
    let usage = || Failure::Fatal(USAGE.to_string());
    let (opts, operands) = crate::postsuper::getopt(args, "", "behqv").map_err(|_| usage())?;
    let mut sections = Sections {
        envelope: false,
        header: false,
        body: false,
    };
    for (c, _) in opts {
        match c {
            'b' => sections.body = true,
            'e' => sections.envelope = true,
            'h' => sections.header = true,
            _ => {}
        }
    }
    if sections
        == (Sections {
            envelope: false,
            header: false,
            body: false,
        })
    {
        sections = Sections::ALL;
    }
    if operands.is_empty() {
        return Err(usage());
    }
    let queue_dir = config.params.queue_directory.as_path();
    let layout = QueueLayout::from_config(config);
    let mut logs: HashMap<u16, ShardLog> = HashMap::new();
    for operand in &operands {
        let id = operand.rsplit('/').next().unwrap_or(operand);
        let postfix_ok = !id.is_empty()
            && id.len() <= POSTFIX_MAX_QUEUE_ID
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !postfix_ok {
            return Err(Failure::Fatal(format!("bad mail queue ID: {id}")));
        }
        let not_found =
            || Failure::Fatal(format!("open queue file {id}: No such file or directory"));
        let qid = QueueId::parse(id).map_err(|_| not_found())?;
        let shard = qid.shard().ok_or_else(not_found)?;
        let log = match logs.entry(shard) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                // A shard that does not exist holds no mail (and opening
                // it read-only must not create it).
                if !queue_dir.join(shard.to_string()).is_dir() {
                    return Err(not_found());
                }
                let (log, _) = ShardLog::open_readonly(queue_dir, shard)
                    .map_err(|e| Failure::Fatal(format!("open queue file {id}: {e}")))?;
                e.insert(log)
            }
        };
        let meta = log.index().get(&qid).ok_or_else(not_found)?;
        let msg = log.read_message(&qid).map_err(|e| match e {
            StorageError::NotFound(_) => not_found(),
            e => Failure::Fatal(format!("open queue file {id}: {e}")),
        })?;
        let path = layout.path(meta.state.name(), &qid);
        render(out, &msg, meta, &path, sections, tm)?;
    }
    out.flush()?;
    Ok(())
}

/// Prints one message in postcat's layout. `tm` converts a Unix time for
/// `asctime` (the local zone in the command; UTC in tests).
pub fn render(
    out: &mut dyn Write,
    msg: &MessageRecord,
    meta: &MessageMeta,
    path: &str,
    sections: Sections,
    tm: &dyn Fn(i64) -> BrokenDownTime,
) -> io::Result<()> {
    if sections.envelope {
        writeln!(out, "*** ENVELOPE RECORDS {path} ***")?;
        envelope(out, msg, meta, tm)?;
        writeln!(out, "*** MESSAGE CONTENTS {path} ***")?;
    }
    if sections.header || sections.body {
        content(out, &msg.content, sections)?;
    }
    if sections.envelope {
        writeln!(out, "*** HEADER EXTRACTED {path} ***")?;
        let encoding = match msg.envelope.mail.body {
            Body::Unspecified => None,
            Body::SevenBit => Some("7bit"),
            Body::EightBitMime | Body::BinaryMime => Some("8bit"),
        };
        if let Some(e) = encoding {
            writeln!(out, "named_attribute: encoding={e}")?;
        }
        writeln!(out, "*** MESSAGE FILE END {path} ***")?;
    }
    Ok(())
}

fn envelope(
    out: &mut dyn Write,
    msg: &MessageRecord,
    meta: &MessageMeta,
    tm: &dyn Fn(i64) -> BrokenDownTime,
) -> io::Result<()> {
    let env = &msg.envelope;
    let size = msg.content.len() as u64;
    // Where the content starts in its segment: it is the record's tail.
    let data_offset = (meta.location.offset + meta.location.len).saturating_sub(size);
    let utf8 = if env.mail.smtputf8 {
        SMTPUTF8_FLAG_REQUESTED
    } else {
        0
    };
    writeln!(
        out,
        "message_size: {size:>15} {data_offset:>15} {:>15} {:>15} {size:>15} {utf8:>15}",
        env.recipients.len(),
        0
    )?;
    let secs = i64::try_from(msg.arrival_us / 1_000_000).unwrap_or(i64::MAX);
    let when = tm(secs);
    writeln!(out, "message_arrival_time: {}", when.asctime())?;
    writeln!(out, "create_time: {}", when.asctime())?;
    let local = msg
        .client
        .as_ref()
        .is_none_or(|c| c.protocol == Protocol::Local);
    let context = if local { "local" } else { "remote" };
    writeln!(out, "named_attribute: rewrite_context={context}")?;
    if let Some(c) = &msg.client {
        client_attributes(out, c)?;
    }
    writeln!(out, "sender: {}", env.sender)?;
    if let Some(id) = &env.mail.envid {
        writeln!(out, "named_attribute: envelope_id={id}")?;
    }
    if let Some(ret) = env.mail.ret {
        let flags = match ret {
            Ret::Full => 1,
            Ret::Hdrs => 2,
        };
        writeln!(out, "named_attribute: ret_flags={flags}")?;
    }
    for (i, r) in env.recipients.iter().enumerate() {
        if let Some(o) = &r.orcpt {
            writeln!(out, "named_attribute: dsn_orig_rcpt={o}")?;
        }
        if r.notify.0 != 0 {
            writeln!(out, "named_attribute: notify_flags={}", r.notify.0)?;
        }
        writeln!(out, "original_recipient: {}", r.address)?;
        let done = meta.recipients.get(i).is_some_and(|m| m.done);
        let kind = if done { "done_recipient" } else { "recipient" };
        writeln!(out, "{kind}: {}", r.address)?;
    }
    Ok(())
}

/// The attributes smtpd passes to cleanup about its client.
fn client_attributes(out: &mut dyn Write, c: &ClientInfo) -> io::Result<()> {
    let proto = c.protocol.as_str();
    let family = match c.addr {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    };
    let mut attr = |name: &str, value: &dyn std::fmt::Display| {
        writeln!(out, "named_attribute: {name}={value}")
    };
    attr("log_client_name", &c.name)?;
    attr("log_client_address", &c.addr)?;
    attr("log_client_port", &c.port)?;
    attr("log_message_origin", &c.display())?;
    if let Some(h) = &c.helo {
        attr("log_helo_name", h)?;
    }
    attr("log_protocol_name", &proto)?;
    attr("client_name", &c.name)?;
    attr("reverse_client_name", &c.name)?;
    attr("client_address", &c.addr)?;
    attr("client_port", &c.port)?;
    if let Some(h) = &c.helo {
        attr("helo_name", h)?;
    }
    attr("protocol_name", &proto)?;
    attr("client_address_type", &family)
}

/// Header and body lines without their line ends, split as postcat's
/// state machine does: the header ends at the first line that is neither
/// a header nor a continuation (the empty line belongs to the body).
fn content(out: &mut dyn Write, content: &[u8], sections: Sections) -> io::Result<()> {
    let mut in_header = true;
    // `read_until` on a slice finds each newline with std's memchr.
    let mut rest = content;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if rest.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if in_header && !is_header(line) && !line.starts_with(b" ") && !line.starts_with(b"\t") {
            in_header = false;
            if !sections.body && !sections.envelope {
                break;
            }
        }
        let print = if in_header {
            sections.header
        } else {
            sections.body
        };
        if print {
            out.write_all(line)?;
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}

/// Postfix's `is_header()`: a label of printable ASCII (spaces allowed
/// only between the label and the colon), then `:`.
fn is_header(line: &[u8]) -> bool {
    let mut label = 0usize;
    let mut spaced = false;
    for &c in line {
        match c {
            b':' => return label > 0,
            b' ' | b'\t' => {
                if label == 0 {
                    return false;
                }
                spaced = true;
            }
            c if c == 0 || !c.is_ascii() || c.is_ascii_control() => return false,
            _ if spaced => return false,
            _ => label += 1,
        }
    }
    false
}

#[cfg(test)]
mod tests;
