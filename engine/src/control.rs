//! The control socket: how the command line asks a running daemon.
//!
//! Each shard listens on its own Unix socket, `queue_directory/public/
//! showq.<shard>`, and answers from its own index, so no shard ever reads
//! another's state. A client sends one request line and reads the answer
//! until the daemon closes the connection. Today's request is `showq`;
//! the answer is one line per message in a small tab-separated form
//! ([`encode_entry`] / [`decode_entry`]) that both ends of this crate share,
//! sent in bounded chunks and read as a stream ([`stream_showq_from`]).
//!
//! Debug builds (`cfg(debug_assertions)`) also answer `debug-panic`: the
//! shard panics on the spot, so that the end-to-end tests can check that
//! a panicking shard takes the daemon down promptly (tests/shard_panic.rs).
//! Release builds do not know the request.
//!
//! When the daemon is down the same listing is built by replaying the log
//! read-only ([`read_offline`]), so `mailq` works either way.
//!
//! Trust: anyone may connect (the sockets are mode 0666, as Postfix's
//! `public/showq`). Each request is checked against the caller's uid as
//! the kernel reports it (`SO_PEERCRED`): `showq` per
//! `authorized_mailq_users`, the flush requests per
//! `authorized_flush_users`, everything else (postsuper) for root and the
//! mail owner only. A refusal is answered `denied TEXT` with Postfix's
//! text, and the client exits 77 as Postfix's commands do.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice_storage::index::MessageMeta;
use sluice_storage::log::ShardLog;

/// One message as `postqueue` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSummary {
    pub queue_name: String,
    pub queue_id: String,
    pub arrival_secs: i64,
    pub size: u64,
    pub forced_expire: bool,
    pub sender: String,
    pub recipients: Vec<RcptSummary>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RcptSummary {
    pub address: String,
    pub orcpt: Option<String>,
    pub reason: Option<String>,
}

/// A request line longer than this is refused (bounded reads).
const MAX_REQUEST: usize = 1024;
/// How long a client waits for a daemon's answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

pub fn public_dir(queue_dir: &Path) -> PathBuf {
    queue_dir.join("public")
}

pub fn showq_socket(queue_dir: &Path, shard: usize) -> PathBuf {
    public_dir(queue_dir).join(format!("showq.{shard}"))
}

pub fn summarize(meta: &MessageMeta) -> QueueSummary {
    QueueSummary {
        queue_name: meta.state.name().to_string(),
        queue_id: meta.qid.as_str().to_string(),
        arrival_secs: (meta.arrival_us / 1_000_000) as i64,
        size: meta.size,
        forced_expire: meta.forced_expire,
        sender: meta.sender.clone(),
        recipients: meta
            .recipients
            .iter()
            .filter(|r| !r.done)
            .map(|r| RcptSummary {
                address: r.address.clone(),
                orcpt: r.orcpt.clone(),
                reason: r.reason.clone(),
            })
            .collect(),
    }
}

fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1f}' => out.push_str("\\u"),
            c => out.push(c),
        }
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('u') => out.push('\u{1f}'),
            Some(o) => out.push(o),
            None => {}
        }
    }
    out
}

/// One line (with its `\n`): `queue id arrival size expire sender rcpt…`,
/// tab-separated; each recipient is `address US orcpt US reason`.
pub fn encode_entry(e: &QueueSummary, out: &mut String) {
    escape_into(&e.queue_name, out);
    out.push('\t');
    escape_into(&e.queue_id, out);
    out.push_str(&format!(
        "\t{}\t{}\t{}\t",
        e.arrival_secs,
        e.size,
        u8::from(e.forced_expire)
    ));
    escape_into(&e.sender, out);
    for r in &e.recipients {
        out.push('\t');
        escape_into(&r.address, out);
        out.push('\u{1f}');
        if let Some(o) = &r.orcpt {
            out.push('+');
            escape_into(o, out);
        }
        out.push('\u{1f}');
        if let Some(o) = &r.reason {
            out.push('+');
            escape_into(o, out);
        }
    }
    out.push('\n');
}

pub fn decode_entry(line: &str) -> Option<QueueSummary> {
    let mut f = line.trim_end_matches('\n').split('\t');
    let queue_name = unescape(f.next()?);
    let queue_id = unescape(f.next()?);
    let arrival_secs = f.next()?.parse().ok()?;
    let size = f.next()?.parse().ok()?;
    let forced_expire = f.next()? == "1";
    let sender = unescape(f.next()?);
    let mut recipients = Vec::new();
    for r in f {
        let mut p = r.split('\u{1f}');
        let address = unescape(p.next()?);
        let opt = |s: Option<&str>| s.and_then(|s| s.strip_prefix('+')).map(unescape);
        let orcpt = opt(p.next());
        let reason = opt(p.next());
        recipients.push(RcptSummary {
            address,
            orcpt,
            reason,
        });
    }
    Some(QueueSummary {
        queue_name,
        queue_id,
        arrival_secs,
        size,
        forced_expire,
        sender,
        recipients,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: malformed answer from the daemon")]
    Malformed { path: PathBuf },
    /// The daemon refused the caller; the text is Postfix's for it.
    #[error("{0}")]
    Denied(String),
    #[error("queue log {path}: {message}")]
    Log { path: PathBuf, message: String },
}

/// An answer line longer than this is refused: one message's entry with
/// smtpd_recipient_limit (1000) long addresses and reasons fits easily.
const MAX_ANSWER_LINE: u64 = 4 << 20;

/// Send one request line and hand each answer line (without its `\n`) to
/// `f` until the `.` that ends the answer. `?` (unknown request), a
/// refusal (`denied TEXT` as the first line), a missing end, or an
/// over-long line is an error.
fn exchange(
    socket: &Path,
    request: &str,
    mut f: impl FnMut(&str) -> Result<(), ControlError>,
) -> Result<(), ControlError> {
    let io = |source| ControlError::Io {
        path: socket.to_path_buf(),
        source,
    };
    let malformed = || ControlError::Malformed {
        path: socket.to_path_buf(),
    };
    let mut s = UnixStream::connect(socket).map_err(io)?;
    s.set_read_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
    s.set_write_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
    s.write_all(format!("{request}\n").as_bytes()).map_err(io)?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    let mut first = true;
    loop {
        if !line.is_empty() {
            first = false;
        }
        line.clear();
        let n = Read::take(&mut r, MAX_ANSWER_LINE)
            .read_line(&mut line)
            .map_err(io)?;
        // EOF before the end marker: the daemon went away mid-answer.
        if n == 0 || !line.ends_with('\n') {
            return Err(malformed());
        }
        match line.trim_end_matches('\n') {
            "." => return Ok(()),
            "?" => return Err(malformed()),
            l if first && l.starts_with("denied ") => {
                return Err(ControlError::Denied(l["denied ".len()..].to_string()))
            }
            l => f(l)?,
        }
    }
}

/// Send one request and collect the answer's lines.
pub fn request(socket: &Path, request: &str) -> Result<Vec<String>, ControlError> {
    let mut lines = Vec::new();
    exchange(socket, request, |l| {
        lines.push(l.to_string());
        Ok(())
    })?;
    Ok(lines)
}

/// The shard directories present under the queue directory (`0`, `1`, …).
pub fn shard_dirs(queue_dir: &Path) -> std::io::Result<Vec<(usize, PathBuf)>> {
    let mut v = Vec::new();
    let rd = match std::fs::read_dir(queue_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(v),
        Err(e) => return Err(e),
    };
    for e in rd {
        let e = e?;
        if let Some(n) = e.file_name().to_str().and_then(|s| s.parse::<usize>().ok()) {
            if e.file_type()?.is_dir() {
                v.push((n, e.path()));
            }
        }
    }
    v.sort();
    Ok(v)
}

/// Build the listing from the log itself (daemon stopped).
pub fn read_offline(queue_dir: &Path) -> Result<Vec<QueueSummary>, ControlError> {
    let dirs = shard_dirs(queue_dir).map_err(|source| ControlError::Io {
        path: queue_dir.to_path_buf(),
        source,
    })?;
    let mut all = Vec::new();
    for (n, dir) in dirs {
        let (log, _) =
            ShardLog::open_readonly(queue_dir, n as u16).map_err(|e| ControlError::Log {
                path: dir.clone(),
                message: e.to_string(),
            })?;
        all.extend(log.index().iter().map(summarize));
    }
    Ok(all)
}

/// Serve one control connection (runs on the shard it connected to).
///
/// Requests (one line): `showq`; `flush` (every deferred message due now,
/// and pickup scans maildrop/); `postsuper …` (see
/// [`sluice_storage::admin::decode_request`]).
pub async fn serve(
    stream: glommio::net::UnixStream,
    shard: std::rc::Rc<crate::shard::Shard>,
) -> std::io::Result<()> {
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    let mut stream = stream;
    let mut req = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !req.contains(&b'\n') {
        let n = stream.read(&mut buf).await?;
        if n == 0 || req.len() + n > MAX_REQUEST {
            return Ok(());
        }
        req.extend_from_slice(&buf[..n]);
    }
    let line = req.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line).into_owned();
    if let Err(denial) = authorize(&stream, &shard.params(), &line) {
        stream
            .write_all(format!("denied {denial}\n.\n").as_bytes())
            .await?;
        return stream.close().await;
    }
    if line == "showq" || line.starts_with("showq ") {
        let queue = line.strip_prefix("showq ").map(str::trim);
        return stream_showq(&mut stream, &shard, queue).await;
    }
    let answer = match line.as_str() {
        #[cfg(debug_assertions)]
        "debug-panic" => panic!("debug-panic requested on the control socket"),
        "flush" => {
            shard.active.flush();
            if let Some(p) = &shard.pickup {
                p.wake();
            }
            ".\n".to_string()
        }
        l if l.starts_with("postsuper ") => postsuper(&shard, l).await,
        l if l.starts_with("flush-qid ") => {
            if let Ok(q) = sluice_storage::qid::QueueId::parse(&l["flush-qid ".len()..]) {
                if shard.log.borrow().index().get(&q).is_some() {
                    shard.active.make_due(q);
                }
            }
            ".\n".to_string()
        }
        l if l.starts_with("flush-site ") => {
            let site = l["flush-site ".len()..]
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase();
            let due: Vec<sluice_storage::qid::QueueId> = shard
                .log
                .borrow()
                .index()
                .iter()
                .filter(|m| m.state == sluice_storage::record::QueueState::Deferred)
                .filter(|m| {
                    m.recipients.iter().any(|r| {
                        !r.done
                            && r.address
                                .rsplit_once('@')
                                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(&site))
                    })
                })
                .map(|m| m.qid.clone())
                .collect();
            for q in due {
                shard.active.make_due(q);
            }
            ".\n".to_string()
        }
        _ => "?\n".to_string(),
    };
    stream.write_all(answer.as_bytes()).await?;
    stream.close().await
}

/// Who may ask for what, checked here on the server side with the
/// kernel's word for the caller (`SO_PEERCRED`), so that a client that
/// skips the command line's own checks gains nothing: listing the queue
/// per `authorized_mailq_users`, flushing per `authorized_flush_users`,
/// and everything else (postsuper) for root and the mail owner only.
/// The answer to a refusal is Postfix's message for it.
fn authorize(
    stream: &glommio::net::UnixStream,
    params: &crate::config::MainParams,
    line: &str,
) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let uid =
        peer_uid(stream.as_raw_fd()).map_err(|e| format!("cannot tell who is calling: {e}"))?;
    // SAFETY: geteuid has no preconditions.
    let own = unsafe { libc::geteuid() };
    let owners: Vec<u32> = std::iter::once(own).chain(params.mail_owner_uid).collect();
    let verb = line.split(' ').next().unwrap_or_default();
    let (acl, what) = match verb {
        "showq" => (&params.authorized_mailq_users, "view"),
        "flush" | "flush-qid" | "flush-site" => (&params.authorized_flush_users, "flush"),
        _ if uid == 0 || owners.contains(&uid) => return Ok(()),
        _ => return Err("use of this command is reserved for the superuser".to_string()),
    };
    if acl.allows_uid(uid, &owners) {
        Ok(())
    } else {
        Err(format!(
            "User {} is not allowed to {what} the mail queue",
            crate::user_acl::display_user(uid)
        ))
    }
}

/// The uid of the process at the other end of a Unix socket.
fn peer_uid(fd: std::os::fd::RawFd) -> std::io::Result<u32> {
    // SAFETY: all-zero is a valid ucred.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(cred.uid)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Entries rendered per write: the answer for a large queue goes out in
/// bounded pieces instead of one string as large as the queue.
const SHOWQ_CHUNK: usize = 512;

/// Answer `showq [queue]` from this shard's index, in chunks. The index is
/// borrowed only while a chunk is rendered, never across a write.
async fn stream_showq(
    stream: &mut glommio::net::UnixStream,
    shard: &crate::shard::Shard,
    queue: Option<&str>,
) -> std::io::Result<()> {
    use futures_lite::AsyncWriteExt;
    let ids: Vec<sluice_storage::qid::QueueId> = shard
        .log
        .borrow()
        .index()
        .iter()
        .filter(|m| queue.is_none_or(|q| m.state.name() == q))
        .map(|m| m.qid.clone())
        .collect();
    for chunk in ids.chunks(SHOWQ_CHUNK) {
        let text = {
            let log = shard.log.borrow();
            let mut out = String::new();
            for q in chunk {
                // Gone since the list was taken: nothing to show.
                if let Some(m) = log.index().get(q) {
                    encode_entry(&summarize(m), &mut out);
                }
            }
            out
        };
        stream.write_all(text.as_bytes()).await?;
    }
    stream.write_all(b".\n").await?;
    stream.close().await
}

/// Ask one shard for its listing of `queue` (all queues: `None`), handing
/// each entry to `f` as it arrives.
pub fn stream_showq_from(
    socket: &Path,
    queue: Option<&str>,
    mut f: impl FnMut(QueueSummary) -> std::io::Result<()>,
) -> Result<(), ControlError> {
    let req = match queue {
        Some(q) => format!("showq {q}"),
        None => "showq".to_string(),
    };
    exchange(socket, &req, |l| {
        let e = decode_entry(l).ok_or_else(|| ControlError::Malformed {
            path: socket.to_path_buf(),
        })?;
        f(e).map_err(|source| ControlError::Io {
            path: socket.to_path_buf(),
            source,
        })
    })
}

/// Apply a postsuper request to this shard's messages: plan from the
/// index, make the records durable, then answer the per-message lines.
async fn postsuper(shard: &crate::shard::Shard, line: &str) -> String {
    use sluice_storage::admin::{self, AdminOp};
    let (op, queues, targets) = match admin::decode_request(line) {
        Ok(r) => r,
        Err(e) => return admin::encode_error_answer(&e.to_string()),
    };
    let plan = admin::plan(shard.log.borrow().index(), op, &targets, queues.as_deref());
    if let Err(e) = shard.committer.commit_all(&plan.records).await {
        return admin::encode_error_answer(&format!("queue write failed: {e:?}"));
    }
    if matches!(
        op,
        AdminOp::Release | AdminOp::Requeue | AdminOp::ExpireRelease | AdminOp::Expire
    ) {
        for r in &plan.records {
            shard.active.make_due(r.qid().clone());
        }
    }
    for l in &plan.lines {
        tracing::info!(target: "postsuper", "{l}");
    }
    admin::encode_answer(op, &plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_with_awkward_text() {
        let e = QueueSummary {
            queue_name: "deferred".into(),
            queue_id: "4jcJb04xz6z1ShQN".into(),
            arrival_secs: 1_795_000_000,
            size: 4096,
            forced_expire: true,
            sender: String::new(),
            recipients: vec![
                RcptSummary {
                    address: "a\tb\\c@example.org".into(),
                    orcpt: None,
                    reason: Some("connect to x[1.2.3.4]:25: Connection refused\nmore".into()),
                },
                RcptSummary {
                    address: "bob@example.org".into(),
                    orcpt: Some("rfc822;Bob@Example.org".into()),
                    reason: None,
                },
            ],
        };
        let mut s = String::new();
        encode_entry(&e, &mut s);
        assert_eq!(s.matches('\n').count(), 1);
        assert_eq!(decode_entry(&s), Some(e));
    }

    #[test]
    fn garbage_is_rejected_not_panicked() {
        assert_eq!(decode_entry("incoming\tX\tnot-a-number\t1\t0\ts"), None);
        assert_eq!(decode_entry(""), None);
    }
}
