//! `postsuper`: delete, hold, release, requeue and expire queued mail, and
//! check the queue (POSTFIX-FACTS §3).
//!
//! ```text
//! postsuper [-psSv] [-d queue_id] [-e queue_id] [-f queue_id]
//!           [-h queue_id] [-H queue_id] [-r queue_id] [queue ...]
//! ```
//!
//! - `-d -h -H -r -e -f` each take a queue ID, `ALL` (upper case only) or
//!   `-` (IDs from stdin, one per line); they may be repeated and run in
//!   command-line order, after `-s`/`-p`. Trailing queue names (`hold`,
//!   `incoming`, `active`, `deferred`, `corrupt`; `maildrop` and Postfix's
//!   log directories are accepted and match nothing) replace each
//!   operation's default queues ([`sluice_storage::admin`] has the rules).
//! - Output goes to stderr, as Postfix's `msg_info` does: one
//!   `postsuper: QID: removed` (…) line per message named by ID, then one
//!   summary per requested kind, even when 0 (`postsuper: Deleted: 0
//!   messages`). Exit 0; fatal errors are `postsuper: fatal: …`, exit 1.
//! - `-s` (and `-S`): when the daemon is stopped, open every shard's log
//!   read-write, which truncates torn tails and deletes dead segments, and
//!   report what recovery found. `-p`: remove maildrop temporary files
//!   older than a day and, when the daemon is stopped, its stale control
//!   sockets. No options at all means `-s -p`.
//!
//! **Daemon running** (its lock is held): each operation is sent to the
//! shards' control sockets (`postsuper <op> <queues|-> <target>…`, split
//! under [`admin::MAX_REQUEST_LINE`]; an ID goes only to the shard it
//! names), and the daemon commits the records through its group committer.
//! **Daemon stopped**: this command takes the queue lock for its whole run
//! (a daemon starting meanwhile refuses to), opens each shard's log, and
//! appends each plan as one durable batch before printing its lines.
//!
//! Only root or the mail owner may run it. Run as root, it acts as the
//! owner of the queue directory (Postfix runs as mail_owner), so that any
//! segment it creates belongs to the daemon's user.

use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, SystemTime};

use sluice_engine::config::Config;
use sluice_engine::control;
use sluice_engine::master::{self, MasterError};
use sluice_storage::admin::{self, AdminOp, AnswerLine, Counts, Target};
use sluice_storage::log::{Batch, LogOptions, RecoveryReport, ShardLog};
use sluice_storage::maildrop;
use sluice_storage::qid::QueueId;
use sluice_storage::record::QueueState;

/// Postfix's exit status for `msg_fatal`.
const FATAL: i32 = 1;
/// Temporary files older than this are debris (postsuper.c MAX_TEMP_AGE).
const MAX_TEMP_AGE: Duration = Duration::from_secs(60 * 60 * 24);
/// How long to wait for a daemon's answer: a plan over a large queue is
/// one write and one fdatasync, but the shard may be busy.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(60);
/// Postfix's longest queue ID (mail_queue_id_ok: VALID_HOSTNAME_LEN).
const POSTFIX_MAX_QUEUE_ID: usize = 255;

const USAGE: &str = "usage: postsuper [-d queue_id (delete)] [-e queue_id (expire)] \
[-f queue_id (expire and release)] [-h queue_id (hold)] [-H queue_id (un-hold)] \
[-p (purge temporary files)] [-r queue_id (requeue)] [-s (structure fix)] \
[-S (redundant structure fix)] [-v (verbose)] [queue...]";

/// Queue directories Postfix's postsuper accepts that hold no Sluice
/// messages.
const EMPTY_QUEUES: &[&str] = &["maildrop", "bounce", "defer", "trace", "flush"];

/// Where the command reads IDs (`-`) and writes its report.
pub struct Io<'a> {
    pub stdin: &'a mut dyn BufRead,
    pub stderr: &'a mut dyn Write,
}

/// `postsuper ARGS…` (`args` without the program name; `-c` is the
/// caller's business). Checks the caller's privilege, acts as the queue
/// directory's owner, then [`run`]s with the process's stdin and stderr.
pub fn main(args: &[String], config: &Config) -> i32 {
    if !authorized(&config.params.mail_owner) {
        eprintln!("postsuper: fatal: use of this command is reserved for the superuser");
        return FATAL;
    }
    if let Err(e) = become_queue_owner(&config.params.queue_directory) {
        eprintln!("postsuper: fatal: {e}");
        return FATAL;
    }
    let stdin = io::stdin();
    let mut stdin = stdin.lock();
    let stderr = io::stderr();
    let mut stderr = stderr.lock();
    run(
        args,
        config,
        &mut Io {
            stdin: &mut stdin,
            stderr: &mut stderr,
        },
    )
}

/// The command without the privilege checks (tests run it in-process).
pub fn run(args: &[String], config: &Config, io: &mut Io<'_>) -> i32 {
    match execute(args, config, io) {
        Ok(()) => 0,
        Err(Fatal(msg)) => {
            let _ = writeln!(io.stderr, "postsuper: fatal: {msg}");
            FATAL
        }
    }
}

/// A `msg_fatal` text.
#[derive(Debug)]
struct Fatal(String);

impl<E: std::fmt::Display> From<E> for Fatal {
    fn from(e: E) -> Fatal {
        Fatal(e.to_string())
    }
}

/// The parsed command line.
#[derive(Debug, Default, PartialEq, Eq)]
struct Options {
    /// Each operation with its argument (a queue ID, `ALL` or `-`), in
    /// command-line order.
    ops: Vec<(AdminOp, String)>,
    structure: bool,
    purge: bool,
    /// `None`: each operation's defaults. `Some` may be empty (only
    /// queues without Sluice messages were named).
    queues: Option<Vec<QueueState>>,
}

fn parse_options(args: &[String]) -> Result<Options, Fatal> {
    let (opts, operands) = getopt(args, "defhHr", "psSv").map_err(|_| Fatal(USAGE.into()))?;
    let mut o = Options::default();
    for (c, arg) in opts {
        match (c, arg) {
            ('p', _) => o.purge = true,
            ('s' | 'S', _) => o.structure = true,
            ('v', _) => {}
            (c, Some(arg)) => match AdminOp::from_option(c) {
                Some(op) => o.ops.push((op, arg)),
                None => return Err(Fatal(USAGE.into())),
            },
            _ => return Err(Fatal(USAGE.into())),
        }
    }
    if o.ops.is_empty() && !o.structure && !o.purge {
        o.structure = true;
        o.purge = true;
    }
    if !operands.is_empty() {
        let mut states = Vec::new();
        for name in &operands {
            match admin::queue_state_from_name(name) {
                Some(s) => {
                    if !states.contains(&s) {
                        states.push(s);
                    }
                }
                None if EMPTY_QUEUES.contains(&name.as_str()) => {}
                None => return Err(Fatal(format!("invalid directory name: {name}"))),
            }
        }
        o.queues = Some(states);
    }
    Ok(o)
}

/// Options in order (each with its argument, if it takes one), then the
/// operands.
pub(crate) type Parsed = (Vec<(char, Option<String>)>, Vec<String>);

/// POSIX `getopt` with a leading `+` (as Postfix calls it): options may
/// be clustered (`-sp`, `-dQID`), an option's argument may be the next
/// word, and the first operand (or `--`) ends the options. Returns the
/// options in order and the operands; `Err(c)` for an unknown option or a
/// missing argument.
pub(crate) fn getopt(args: &[String], with_arg: &str, flags: &str) -> Result<Parsed, char> {
    let mut opts = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            i += 1;
            break;
        }
        let Some(cluster) = a.strip_prefix('-').filter(|c| !c.is_empty()) else {
            break;
        };
        for (at, c) in cluster.char_indices() {
            if flags.contains(c) {
                opts.push((c, None));
            } else if with_arg.contains(c) {
                let rest = &cluster[at + c.len_utf8()..];
                let value = if !rest.is_empty() {
                    rest.to_string()
                } else {
                    i += 1;
                    args.get(i).cloned().ok_or(c)?
                };
                opts.push((c, Some(value)));
                break;
            } else {
                return Err(c);
            }
        }
        i += 1;
    }
    Ok((opts, args[i.min(args.len())..].to_vec()))
}

fn execute(args: &[String], config: &Config, io: &mut Io<'_>) -> Result<(), Fatal> {
    let o = parse_options(args)?;
    let queue_dir = config.params.queue_directory.as_path();
    if let Err(e) = std::fs::read_dir(queue_dir) {
        return Err(Fatal(format!(
            "chdir {}: {}",
            queue_dir.display(),
            os_text(&e)
        )));
    }
    // Expand every operation's targets first: `-` reads stdin once, as
    // Postfix does (a second `-` finds end of file).
    let mut work = Vec::new();
    for (op, arg) in &o.ops {
        work.push((*op, targets(arg, io)?));
    }
    let shards: Vec<u16> = control::shard_dirs(queue_dir)
        .map_err(|e| Fatal(format!("scan {}: {}", queue_dir.display(), os_text(&e))))?
        .into_iter()
        .filter_map(|(n, _)| u16::try_from(n).ok())
        .collect();
    let mut counts = Counts::default();
    match master::lock(queue_dir) {
        Ok(_lock) => {
            // `_lock` is held until the end of this arm.
            let mut logs = Vec::new();
            if !work.is_empty() || o.structure {
                let opts = LogOptions {
                    segment_size: config.params.sluice_segment_size,
                    ..LogOptions::default()
                };
                for &n in &shards {
                    let (log, report) = ShardLog::open(queue_dir, n, opts.clone())
                        .map_err(|e| Fatal(format!("queue log shard {n}: {e}")))?;
                    if o.structure {
                        report_recovery(n, &report, io);
                    }
                    logs.push(log);
                }
            }
            if o.purge {
                purge_maildrop(queue_dir, io);
                remove_stale_sockets(queue_dir, io);
            }
            for (op, targets) in &work {
                for log in &mut logs {
                    apply_offline(log, *op, targets, o.queues.as_deref(), &mut counts, io)?;
                }
            }
        }
        Err(MasterError::AlreadyRunning { pid, .. }) => {
            if o.purge {
                purge_maildrop(queue_dir, io);
            }
            for (op, targets) in &work {
                for &n in &shards {
                    let mine: Vec<Target> = targets
                        .iter()
                        .filter(|t| routes_to(t, n, &shards))
                        .cloned()
                        .collect();
                    ask_daemon(
                        queue_dir,
                        n,
                        pid,
                        *op,
                        &mine,
                        o.queues.as_deref(),
                        &mut counts,
                        io,
                    )?;
                }
            }
        }
        Err(e) => return Err(e.into()),
    }
    let ops: Vec<AdminOp> = o.ops.iter().map(|(op, _)| *op).collect();
    for s in admin::summaries(&ops, &counts) {
        say(io, &s);
    }
    Ok(())
}

/// One line to stderr with Postfix's `msg_info` prefix.
fn say(io: &mut Io<'_>, text: &str) {
    let _ = writeln!(io.stderr, "postsuper: {text}");
}

fn warn(io: &mut Io<'_>, text: &str) {
    let _ = writeln!(io.stderr, "postsuper: warning: {text}");
}

/// The OS error text without Rust's ` (os error N)` suffix, as `%m`.
fn os_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// An option's argument as targets: `ALL`, `-` (stdin), or one ID. IDs
/// Postfix would refuse get its warning; well-formed IDs that cannot be
/// Sluice's simply match nothing, as in Postfix.
fn targets(arg: &str, io: &mut Io<'_>) -> Result<Vec<Target>, Fatal> {
    let mut out: Vec<Target> = Vec::new();
    match arg {
        "ALL" => out.push(Target::All),
        "-" => {
            let mut line = String::new();
            let mut seen = HashSet::new();
            loop {
                line.clear();
                if io
                    .stdin
                    .read_line(&mut line)
                    .map_err(|e| Fatal(format!("read standard input: {}", os_text(&e))))?
                    == 0
                {
                    break;
                }
                let id = line.strip_suffix('\n').unwrap_or(&line).to_string();
                if let Some(t) = target(&id, io) {
                    // Large lists: keep the first of each ID, in order.
                    if seen.insert(t.clone()) {
                        out.push(t);
                    }
                }
            }
        }
        id => out.extend(target(id, io)),
    }
    Ok(out)
}

fn target(id: &str, io: &mut Io<'_>) -> Option<Target> {
    if let Ok(q) = QueueId::parse(id) {
        return Some(Target::Qid(q));
    }
    let postfix_ok = !id.is_empty()
        && id.len() <= POSTFIX_MAX_QUEUE_ID
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !postfix_ok {
        warn(io, &format!("invalid mail queue id: {id}"));
    }
    None
}

/// Does `t` go to shard `n`? An ID goes to the shard it names when that
/// shard exists; anything else (ALL, an ID of another shape) to all.
fn routes_to(t: &Target, n: u16, shards: &[u16]) -> bool {
    match t {
        Target::Qid(q) => match q.shard() {
            Some(s) if shards.contains(&s) => s == n,
            _ => true,
        },
        Target::All => true,
    }
}

/// Plans `op` on one shard, commits it as one batch, then prints.
fn apply_offline(
    log: &mut ShardLog,
    op: AdminOp,
    targets: &[Target],
    queues: Option<&[QueueState]>,
    counts: &mut Counts,
    io: &mut Io<'_>,
) -> Result<(), Fatal> {
    let plan = admin::plan(log.index(), op, targets, queues);
    if !plan.is_empty() {
        let mut batch = Batch::new();
        for r in &plan.records {
            batch.push(r);
        }
        log.append_blocking(batch)
            .map_err(|e| Fatal(format!("queue log shard {}: {e}", log.shard())))?;
    }
    for l in &plan.lines {
        say(io, l);
    }
    counts.add(&plan.counts);
    Ok(())
}

/// Sends `op` to shard `n`'s control socket and prints its answers.
#[allow(clippy::too_many_arguments)]
fn ask_daemon(
    queue_dir: &Path,
    n: u16,
    pid: i32,
    op: AdminOp,
    targets: &[Target],
    queues: Option<&[QueueState]>,
    counts: &mut Counts,
    io: &mut Io<'_>,
) -> Result<(), Fatal> {
    if matches!(queues, Some(q) if q.is_empty()) {
        return Ok(());
    }
    let socket = control::showq_socket(queue_dir, usize::from(n));
    for request in admin::encode_requests(op, queues, targets) {
        let lost = |e: io::Error| {
            Fatal(format!(
                "{}: the mail system (pid {pid}) does not answer: {}",
                socket.display(),
                os_text(&e)
            ))
        };
        let mut s = UnixStream::connect(&socket).map_err(lost)?;
        s.set_read_timeout(Some(DAEMON_TIMEOUT)).map_err(lost)?;
        s.set_write_timeout(Some(DAEMON_TIMEOUT)).map_err(lost)?;
        s.write_all(format!("{request}\n").as_bytes())
            .map_err(lost)?;
        let mut reader = BufReader::new(s);
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).map_err(lost)? == 0 {
                return Err(Fatal(format!(
                    "{}: the mail system closed the connection before the end of its answer",
                    socket.display()
                )));
            }
            // The daemon's own check of the caller (SO_PEERCRED).
            if let Some(text) = line.trim_end().strip_prefix("denied ") {
                return Err(Fatal(text.to_string()));
            }
            match admin::decode_answer_line(op, &line) {
                Ok(AnswerLine::Message(m)) => say(io, &m),
                Ok(AnswerLine::Count(c)) => counts.add(&c),
                Ok(AnswerLine::Error(text)) => return Err(Fatal(text)),
                Ok(AnswerLine::End) => break,
                Err(_) if line.trim_end() == "?" => {
                    return Err(Fatal(format!(
                        "{}: the running mail system does not support postsuper requests",
                        socket.display()
                    )))
                }
                Err(e) => return Err(Fatal(format!("{}: {e}", socket.display()))),
            }
        }
    }
    Ok(())
}

/// `-s`: what opening shard `n` read-write found and repaired.
fn report_recovery(n: u16, r: &RecoveryReport, io: &mut Io<'_>) {
    if r.torn_tail_truncated_bytes > 0 {
        warn(
            io,
            &format!(
                "queue log shard {n}: truncated an incomplete write of {} bytes at the end of the log",
                r.torn_tail_truncated_bytes
            ),
        );
    }
    for q in &r.corrupt {
        warn(
            io,
            &format!("{q}: damaged queue record; message moved to the corrupt queue"),
        );
    }
    for p in &r.unreadable_segments {
        warn(
            io,
            &format!("{}: not a usable queue segment; left in place", p.display()),
        );
    }
}

/// `-p`: maildrop temporary files a crashed writer left, older than a
/// day (silent, as in Postfix).
fn purge_maildrop(queue_dir: &Path, io: &mut Io<'_>) {
    match maildrop::remove_stale_temps(queue_dir, MAX_TEMP_AGE, SystemTime::now()) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => warn(
            io,
            &format!(
                "{}: {}",
                maildrop::maildrop_dir(queue_dir).display(),
                os_text(&e)
            ),
        ),
    }
}

/// `-p` with the daemon stopped: its control sockets are stale.
fn remove_stale_sockets(queue_dir: &Path, io: &mut Io<'_>) {
    let public = control::public_dir(queue_dir);
    let Ok(entries) = std::fs::read_dir(&public) else {
        return;
    };
    for e in entries.flatten() {
        let stale = e.file_name().to_string_lossy().starts_with("showq.")
            && e.file_type().is_ok_and(|t| t.is_socket());
        if stale {
            if let Err(err) = std::fs::remove_file(e.path()) {
                if err.kind() != io::ErrorKind::NotFound {
                    warn(
                        io,
                        &format!("remove file {}: {}", e.path().display(), os_text(&err)),
                    );
                }
            }
        }
    }
}

/// Root, or the mail owner.
fn authorized(mail_owner: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    euid == 0 || sluice_engine::passwd::by_name(mail_owner).is_some_and(|p| p.uid == euid)
}

/// Run as root: switch to the queue directory's owner and group, as
/// Postfix's postsuper switches to mail_owner before touching the queue.
/// A root-owned queue (a private instance run by root) stays root.
fn become_queue_owner(queue_dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let Ok(meta) = std::fs::metadata(queue_dir) else {
        // Reported, with Postfix's words, when the run needs the directory.
        return Ok(());
    };
    let (uid, gid) = (meta.uid(), meta.gid());
    if uid == 0 {
        return Ok(());
    }
    let failed = |what: &str| format!("{what}: {}", os_text(&io::Error::last_os_error()));
    // SAFETY: plain credential system calls with valid arguments; the
    // group list is one element long.
    unsafe {
        if libc::setgroups(1, &gid) != 0 {
            return Err(failed("setgroups"));
        }
        if libc::setgid(gid) != 0 {
            return Err(failed(&format!("setgid({gid})")));
        }
        if libc::setuid(uid) != 0 {
            return Err(failed(&format!("setuid({uid})")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
