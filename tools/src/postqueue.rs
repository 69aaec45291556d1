//! postqueue -p / -j: ask the running daemon's shards over their control
//! sockets, or, when it is stopped, replay the queue log read-only.

use sluice_engine::config::Config;
use sluice_engine::control::{self, QueueSummary};
use sluice_engine::master;

use crate::cli::exit;
use crate::showq::{self, ShowqEntry, ShowqRecipient};

/// Postfix lists maildrop, active, incoming, deferred, hold in that order.
fn queue_rank(name: &str) -> u8 {
    match name {
        "maildrop" => 0,
        "active" => 1,
        "incoming" => 2,
        "deferred" => 3,
        "hold" => 4,
        _ => 5,
    }
}

/// The whole queue, from the daemon when it runs, else from the log.
pub fn collect(config: &Config) -> Result<Vec<QueueSummary>, String> {
    let queue_dir = &config.params.queue_directory;
    let mut all = if master::running_pid(queue_dir).is_some() {
        let shards =
            control::shard_dirs(queue_dir).map_err(|e| format!("{}: {e}", queue_dir.display()))?;
        let mut v = Vec::new();
        for (n, _) in shards {
            let sock = control::showq_socket(queue_dir, n);
            v.extend(control::query_showq(&sock).map_err(|e| e.to_string())?);
        }
        v
    } else {
        control::read_offline(queue_dir).map_err(|e| e.to_string())?
    };
    all.sort_by(|a, b| {
        (queue_rank(&a.queue_name), a.arrival_secs, &a.queue_id).cmp(&(
            queue_rank(&b.queue_name),
            b.arrival_secs,
            &b.queue_id,
        ))
    });
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

/// `postqueue -p` (json = false) or `-j`.
pub fn list(config: &Config, json: bool) -> i32 {
    let entries: Vec<ShowqEntry> = match collect(config) {
        Ok(v) => v.into_iter().map(to_entry).collect(),
        Err(e) => {
            eprintln!("postqueue: fatal: Queue report unavailable: {e}");
            return exit::UNAVAILABLE;
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let r = if json {
        showq::format_json(&entries, &mut out)
    } else {
        showq::format_mailq(&entries, true, &mut out)
    };
    match r.and_then(|()| std::io::Write::flush(&mut out)) {
        Ok(()) => exit::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            eprintln!("postqueue: fatal: write error: {e}");
            exit::TEMPFAIL
        }
    }
}

/// Send one control request to every shard of a running daemon.
fn ask_all(config: &Config, request: &str) -> Result<(), String> {
    let queue_dir = &config.params.queue_directory;
    if master::running_pid(queue_dir).is_none() {
        return Err("mail system is down".to_string());
    }
    let shards =
        control::shard_dirs(queue_dir).map_err(|e| format!("{}: {e}", queue_dir.display()))?;
    for (n, _) in shards {
        control::request(&control::showq_socket(queue_dir, n), request)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `postqueue -f`: every deferred message becomes due now; pickup scans.
pub fn flush(config: &Config) -> i32 {
    match ask_all(config, "flush") {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("postqueue: fatal: Cannot flush mail queue - {e}");
            exit::UNAVAILABLE
        }
    }
}

/// `postqueue -s site`: the deferred mail for one site becomes due.
pub fn flush_site(config: &Config, site: &str) -> i32 {
    match ask_all(config, &format!("flush-site {site}")) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("postqueue: fatal: Cannot flush mail queue - {e}");
            exit::UNAVAILABLE
        }
    }
}

/// `postqueue -i QID`: one message becomes due now.
pub fn flush_one(config: &Config, qid: &str) -> i32 {
    match ask_all(config, &format!("flush-qid {qid}")) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("postqueue: fatal: Cannot flush mail queue - {e}");
            exit::UNAVAILABLE
        }
    }
}
