//! postqueue -p / -j: ask the running daemon's shards over their control
//! sockets, or, when it is stopped, replay the queue log read-only.

use sluice_engine::config::Config;
use sluice_engine::control::{self, ControlError, QueueSummary};
use sluice_engine::master;
use sluice_engine::user_acl::{display_user, UserAcl};

use crate::cli::exit;
use crate::showq::{self, ShowqEntry, ShowqRecipient};

/// The queues in the order Postfix's showq scans them (corrupt last: a
/// Sluice state that Postfix does not list, shown so it is not missed).
const QUEUE_ORDER: &[&str] = &[
    "maildrop", "active", "incoming", "deferred", "hold", "corrupt",
];

/// Hand every queued message to `f`, queue by queue, without holding the
/// whole listing: from the daemon's shards when it runs, else from each
/// shard's log.
pub fn for_each(
    config: &Config,
    mut f: impl FnMut(QueueSummary) -> std::io::Result<()>,
) -> Result<(), QueueError> {
    let queue_dir = &config.params.queue_directory;
    let shards =
        control::shard_dirs(queue_dir).map_err(|e| format!("{}: {e}", queue_dir.display()))?;
    if master::running_pid(queue_dir).is_some() {
        for q in QUEUE_ORDER {
            for (n, _) in &shards {
                control::stream_showq_from(&control::showq_socket(queue_dir, *n), Some(q), &mut f)
                    .map_err(denied_or_text)?;
            }
        }
        return Ok(());
    }
    // Daemon down: one shard's log at a time (replaying a shard reads its
    // segments; holding every shard at once would multiply that), each
    // shard's messages queue by queue.
    for (n, dir) in &shards {
        let (log, _) = sluice_storage::log::ShardLog::open_readonly(queue_dir, *n as u16)
            .map_err(|e| format!("queue log {}: {e}", dir.display()))?;
        for q in QUEUE_ORDER {
            for m in log.index().iter().filter(|m| m.state.name() == *q) {
                f(control::summarize(m)).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

/// The whole queue, from the daemon when it runs, else from the log (for
/// counts and tests; the listings stream through [`for_each`]).
pub fn collect(config: &Config) -> Result<Vec<QueueSummary>, QueueError> {
    let mut all = Vec::new();
    for_each(config, |s| {
        all.push(s);
        Ok(())
    })?;
    Ok(all)
}

fn to_entry(s: QueueSummary) -> ShowqEntry {
    ShowqEntry {
        queue_name: s.queue_name,
        queue_id: s.queue_id,
        arrival_time: s.arrival_secs,
        message_size: s.size,
        forced_expire: s.forced_expire,
        sender: s.sender,
        recipients: s
            .recipients
            .into_iter()
            .map(|r| ShowqRecipient {
                address: r.address,
                orig_address: r.orcpt,
                reason: r.reason,
            })
            .collect(),
    }
}

/// `postqueue -p` (json = false) or `-j`, streamed: memory stays bounded
/// by one chunk of the answer, whatever the size of the queue.
pub fn list(config: &Config, json: bool) -> i32 {
    if let Err(code) = permitted(config, &config.params.authorized_mailq_users, "view") {
        return code;
    }
    let stdout = std::io::stdout();
    let out = std::io::BufWriter::new(stdout.lock());
    let result = if json {
        let mut w = showq::JsonWriter::new(out);
        for_each(config, |s| w.entry(&to_entry(s))).and_then(|()| {
            std::io::Write::flush(&mut w.finish()).map_err(|e| QueueError::from(e.to_string()))
        })
    } else {
        let mut w =
            showq::MailqWriter::new(out, true, sluice_agents::datetime::BrokenDownTime::local);
        for_each(config, |s| w.entry(&to_entry(s))).and_then(|()| {
            w.finish()
                .and_then(|mut o| std::io::Write::flush(&mut o))
                .map_err(|e| QueueError::from(e.to_string()))
        })
    };
    match result {
        Ok(()) => exit::OK,
        Err(QueueError::Denied(text)) => {
            eprintln!("postqueue: fatal: {text}");
            exit::NOPERM
        }
        Err(e) if e.to_string().contains("Broken pipe") => exit::OK,
        Err(e) => {
            eprintln!("postqueue: fatal: Queue report unavailable: {e}");
            exit::UNAVAILABLE
        }
    }
}

/// Why the queue could not be listed or flushed.
#[derive(Debug)]
pub enum QueueError {
    /// The daemon refused the caller (Postfix's text): EX_NOPERM.
    Denied(String),
    /// Anything else, described: EX_UNAVAILABLE.
    Unavailable(String),
}

impl std::fmt::Display for QueueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueError::Denied(t) | QueueError::Unavailable(t) => f.write_str(t),
        }
    }
}

impl From<String> for QueueError {
    fn from(text: String) -> QueueError {
        QueueError::Unavailable(text)
    }
}

fn denied_or_text(e: ControlError) -> QueueError {
    match e {
        ControlError::Denied(text) => QueueError::Denied(text),
        e => QueueError::Unavailable(e.to_string()),
    }
}

/// Postfix's check before postqueue does anything: root and the mail
/// owner (mail_owner, or the owner of the queue directory in a private
/// instance) always, anyone else per the list. The daemon checks again on
/// its side of the control socket.
fn permitted(config: &Config, acl: &UserAcl, what: &str) -> Result<(), i32> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let queue_owner = std::fs::metadata(&config.params.queue_directory).map(|m| m.uid());
    let owners: Vec<u32> = config
        .params
        .mail_owner_uid
        .into_iter()
        .chain(queue_owner.ok())
        .collect();
    if acl.allows_uid(uid, &owners) {
        return Ok(());
    }
    eprintln!(
        "postqueue: fatal: User {} is not allowed to {what} the mail queue",
        display_user(uid)
    );
    Err(exit::NOPERM)
}

/// Send one control request to every shard of a running daemon.
fn ask_all(config: &Config, request: &str) -> Result<(), QueueError> {
    let queue_dir = &config.params.queue_directory;
    if master::running_pid(queue_dir).is_none() {
        return Err(QueueError::Unavailable("mail system is down".to_string()));
    }
    let shards =
        control::shard_dirs(queue_dir).map_err(|e| format!("{}: {e}", queue_dir.display()))?;
    for (n, _) in shards {
        control::request(&control::showq_socket(queue_dir, n), request).map_err(denied_or_text)?;
    }
    Ok(())
}

/// `postqueue -f`: every deferred message becomes due now; pickup scans.
pub fn flush(config: &Config) -> i32 {
    if let Err(code) = permitted(config, &config.params.authorized_flush_users, "flush") {
        return code;
    }
    match ask_all(config, "flush") {
        Ok(()) => exit::OK,
        Err(e) => flush_failed(&e),
    }
}

/// `postqueue -s site`: the deferred mail for one site becomes due.
pub fn flush_site(config: &Config, site: &str) -> i32 {
    if let Err(code) = permitted(config, &config.params.authorized_flush_users, "flush") {
        return code;
    }
    match ask_all(config, &format!("flush-site {site}")) {
        Ok(()) => exit::OK,
        Err(e) => flush_failed(&e),
    }
}

/// `postqueue -i QID`: one message becomes due now.
pub fn flush_one(config: &Config, qid: &str) -> i32 {
    if let Err(code) = permitted(config, &config.params.authorized_flush_users, "flush") {
        return code;
    }
    match ask_all(config, &format!("flush-qid {qid}")) {
        Ok(()) => exit::OK,
        Err(e) => flush_failed(&e),
    }
}

fn flush_failed(e: &QueueError) -> i32 {
    match e {
        QueueError::Denied(text) => {
            eprintln!("postqueue: fatal: {text}");
            exit::NOPERM
        }
        QueueError::Unavailable(e) => {
            eprintln!("postqueue: fatal: Cannot flush mail queue - {e}");
            exit::UNAVAILABLE
        }
    }
}
