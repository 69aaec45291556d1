//! The source: a parallel SMTP client that sends test mail, as Postfix's
//! smtp-source(1) does, and measures how fast and how promptly a server
//! accepts it.
//!
//! Role: open `sessions` threads; each claims message numbers from a
//! shared counter until `messages` are claimed or `time_limit` has passed,
//! and sends each message over its connection (a new connection per
//! message unless `reuse`, like smtp-source without and with `-d`).
//! With PIPELINING (when both sides want it) MAIL, every RCPT and DATA go
//! in one write, as Postfix's smtp client sends them.
//!
//! Latency is measured per accepted message from writing MAIL to reading
//! the final 250; connection set-up, greeting, EHLO and QUIT are not in
//! it (they are in the throughput). Rejected messages are counted, not
//! timed: a quick 4xx would flatter the percentiles.
//!
//! Outcomes: a message is accepted (final 250), a temporary or permanent
//! failure (the first 4xx/5xx that stopped it: MAIL, all RCPTs, DATA or
//! the final dot), or an error (connection or protocol trouble; the
//! session reconnects for its next message). Every read and write has a
//! timeout, so a run ends within `time_limit` plus one `timeout`.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use sluice_protocols::smtp::client::data::DotStuffer;

use self::conn::{Conn, Opened, Outcome, SessionError};
use super::histogram::Histogram;

mod conn;

/// What to send, and how. [`SourceConfig::new`] gives smtp-source's
/// defaults (one session, one message, one recipient, new connections).
#[derive(Clone, Debug)]
pub struct SourceConfig {
    pub target: SocketAddr,
    /// Sessions in parallel (smtp-source -s).
    pub sessions: usize,
    /// Messages in all, over all sessions (smtp-source -m).
    pub messages: u64,
    /// Bytes of body after the generated headers (smtp-source -l); ignored
    /// when `body` is set.
    pub size: usize,
    /// Recipients per message (smtp-source -r). With more than one, each
    /// gets a number prepended: `1foo@example.com`, `2foo@example.com`.
    pub recipients: usize,
    /// Send every message of a session over one connection (smtp-source
    /// -d); otherwise connect, send one message, QUIT.
    pub reuse: bool,
    pub from: String,
    /// A recipient address, or a bare domain (then `rcpt@domain`).
    pub to: String,
    pub helo: String,
    /// No message is started after this much time.
    pub time_limit: Duration,
    /// Pipeline MAIL/RCPT/DATA when the server announces PIPELINING.
    pub pipelining: bool,
    /// Connect, read and write timeout.
    pub timeout: Duration,
    /// The whole message (headers and body, CRLF lines, not dot-stuffed)
    /// to send instead of the generated one.
    pub body: Option<Vec<u8>>,
    /// Draw a progress line on stderr once a second.
    pub progress: bool,
}

impl SourceConfig {
    pub fn new(target: SocketAddr) -> Self {
        SourceConfig {
            target,
            sessions: 1,
            messages: 1,
            size: 0,
            recipients: 1,
            reuse: false,
            from: "foo@localhost".to_owned(),
            to: "foo@localhost".to_owned(),
            helo: "localhost".to_owned(),
            time_limit: Duration::from_secs(3600),
            pipelining: true,
            timeout: Duration::from_secs(60),
            body: None,
            progress: false,
        }
    }

    /// The recipients of every message.
    pub fn recipient_addresses(&self) -> Vec<String> {
        let base = if self.to.contains('@') {
            self.to.clone()
        } else {
            format!("rcpt@{}", self.to)
        };
        if self.recipients <= 1 {
            return vec![base];
        }
        (1..=self.recipients)
            .map(|i| format!("{i}{base}"))
            .collect()
    }

    /// Message `n`'s content before dot-stuffing: `body` if set, else
    /// generated headers and `size` bytes of body.
    pub fn message(&self, n: u64) -> Vec<u8> {
        if let Some(b) = &self.body {
            return b.clone();
        }
        let mut m = self.headers(n, &self.recipient_addresses());
        m.extend_from_slice(&generated_body(self.size));
        m
    }

    fn headers(&self, n: u64, rcpts: &[String]) -> Vec<u8> {
        let to = rcpts.join(", ");
        format!(
            "From: <{}>\r\nTo: {to}\r\nSubject: sluice source message {n}\r\n\
             Message-Id: <{n}.{}@{}>\r\n\r\n",
            self.from,
            std::process::id(),
            self.helo
        )
        .into_bytes()
    }
}

/// `size` bytes of body: 78 printable characters and CRLF a line, every
/// 16th line starting with a dot so that each run exercises the server's
/// un-stuffing. A remainder too short for a line is rounded up to one.
fn generated_body(size: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut out = Vec::with_capacity(size + 2);
    let mut i = 0usize;
    while out.len() < size {
        let len = (size - out.len()).saturating_sub(2).clamp(1, 78);
        for j in 0..len {
            out.push(if j == 0 && i % 16 == 15 {
                b'.'
            } else {
                ALPHABET[(i + j) % ALPHABET.len()]
            });
        }
        out.extend_from_slice(b"\r\n");
        i += 1;
    }
    out
}

/// Dot-stuff `raw` for DATA (RFC 5321 §4.5.2) and make every line end in
/// CRLF (a bare LF or bare CR becomes CRLF; a missing final line break is
/// added). The terminating `.` line is not included, so that the headers
/// and the body can be stuffed apart and sent one after the other.
///
/// This is the SMTP client's encoder
/// ([`sluice_protocols::smtp::client::data::DotStuffer`]), so the load
/// source sends exactly what Sluice's own smtp client would.
pub fn dot_stuff(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 64 + 5);
    let mut enc = DotStuffer::new();
    enc.encode(raw, &mut out);
    enc.finish(&mut out);
    // `finish` completes the last line, then appends exactly the
    // end-of-data line; the caller sends that once, after the body.
    out.truncate(out.len().saturating_sub(END_OF_DATA.len()));
    out
}

/// What [`DotStuffer::finish`] appends after the content.
const END_OF_DATA: &[u8] = b".\r\n";

/// The outcome of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceReport {
    /// Messages accepted (final 250).
    pub messages: u64,
    /// Messages not accepted: `temp_failures + perm_failures + errors`.
    pub failures: u64,
    pub temp_failures: u64,
    pub perm_failures: u64,
    /// Messages lost to connection or protocol errors.
    pub errors: u64,
    /// RCPTs refused in messages that were still sent to other recipients.
    pub rcpt_rejected: u64,
    pub connections: u64,
    pub elapsed: Duration,
    /// Accepted messages per second of `elapsed`.
    pub msgs_per_s: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p90: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_p999: f64,
    pub latency_ms_max: f64,
    /// The first error, for the user.
    pub first_error: Option<String>,
    /// The first 4xx/5xx reply that failed a message, for the user.
    pub first_rejection: Option<String>,
}

impl SourceReport {
    /// A one-object JSON rendering (keys as the field names, elapsed as
    /// `elapsed_s`).
    pub fn to_json(&self) -> String {
        let opt = |s: &Option<String>| s.as_deref().map_or_else(|| "null".to_owned(), json_string);
        let (first_error, first_rejection) = (opt(&self.first_error), opt(&self.first_rejection));
        format!(
            "{{\"messages\":{},\"failures\":{},\"temp_failures\":{},\"perm_failures\":{},\
             \"errors\":{},\"rcpt_rejected\":{},\"connections\":{},\"elapsed_s\":{:.6},\
             \"msgs_per_s\":{:.3},\"latency_ms_p50\":{:.3},\"latency_ms_p90\":{:.3},\
             \"latency_ms_p99\":{:.3},\"latency_ms_p999\":{:.3},\"latency_ms_max\":{:.3},\
             \"first_error\":{first_error},\"first_rejection\":{first_rejection}}}",
            self.messages,
            self.failures,
            self.temp_failures,
            self.perm_failures,
            self.errors,
            self.rcpt_rejected,
            self.connections,
            self.elapsed.as_secs_f64(),
            self.msgs_per_s,
            self.latency_ms_p50,
            self.latency_ms_p90,
            self.latency_ms_p99,
            self.latency_ms_p999,
            self.latency_ms_max,
        )
    }

    /// The human summary.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "sluice source: {} messages accepted in {:.3} s, {:.1} msg/s, {} connections\n\
             sluice source: {} failed ({} temporary, {} permanent, {} errors), {} recipients refused\n\
             sluice source: latency ms, MAIL to final 250: p50 {:.3} p90 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}\n",
            self.messages,
            self.elapsed.as_secs_f64(),
            self.msgs_per_s,
            self.connections,
            self.failures,
            self.temp_failures,
            self.perm_failures,
            self.errors,
            self.rcpt_rejected,
            self.latency_ms_p50,
            self.latency_ms_p90,
            self.latency_ms_p99,
            self.latency_ms_p999,
            self.latency_ms_max,
        );
        if let Some(e) = &self.first_error {
            s.push_str(&format!("sluice source: first error: {e}\n"));
        }
        if let Some(r) = &self.first_rejection {
            s.push_str(&format!("sluice source: first rejection: {r}\n"));
        }
        s
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Per-session results, merged at the end.
#[derive(Default)]
struct Tally {
    accepted: u64,
    temp: u64,
    perm: u64,
    errors: u64,
    rcpt_rejected: u64,
    connections: u64,
    hist: Histogram,
    first_error: Option<String>,
    first_rejection: Option<String>,
}

impl Tally {
    fn error(&mut self, run: &Run<'_>, e: &SessionError) {
        self.errors += 1;
        self.first_error.get_or_insert_with(|| e.to_string());
        run.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Count one message's outcome; true if the server is closing the
    /// connection (it said 421).
    fn account(&mut self, run: &Run<'_>, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Accepted {
                latency_us,
                rcpt_rejected,
            } => {
                self.accepted += 1;
                self.rcpt_rejected += rcpt_rejected;
                self.hist.record(latency_us);
                run.accepted.fetch_add(1, Ordering::Relaxed);
                false
            }
            Outcome::Rejected { permanent, reply } => {
                if permanent {
                    self.perm += 1;
                } else {
                    self.temp += 1;
                }
                let closing = reply.starts_with("421");
                self.first_rejection.get_or_insert(reply);
                run.failed.fetch_add(1, Ordering::Relaxed);
                closing
            }
        }
    }
}

/// State shared by the sessions of one run.
struct Run<'a> {
    cfg: &'a SourceConfig,
    /// The dot-stuffed body (generated, or the whole `body` message),
    /// built once for the run.
    stuffed_body: Vec<u8>,
    rcpts: Vec<String>,
    next: AtomicU64,
    start: Instant,
    accepted: AtomicU64,
    failed: AtomicU64,
    finished: AtomicBool,
}

impl Run<'_> {
    /// The next message number to send, or None when the run is over.
    fn claim(&self) -> Option<u64> {
        if self.start.elapsed() >= self.cfg.time_limit {
            return None;
        }
        let total = self.cfg.messages;
        self.next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < total).then_some(n + 1)
            })
            .ok()
    }
}

/// Send the configured load and report. Errors only for a configuration
/// that cannot run (no sessions, no recipients) or when threads cannot be
/// started; trouble talking to the server is counted in the report.
pub fn run_source(cfg: &SourceConfig) -> io::Result<SourceReport> {
    if cfg.sessions == 0 || cfg.recipients == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "sessions and recipients must be at least 1",
        ));
    }
    let run = Run {
        cfg,
        stuffed_body: match &cfg.body {
            Some(b) => dot_stuff(b),
            None => dot_stuff(&generated_body(cfg.size)),
        },
        rcpts: cfg.recipient_addresses(),
        next: AtomicU64::new(0),
        start: Instant::now(),
        accepted: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        finished: AtomicBool::new(false),
    };
    let sessions = cfg
        .sessions
        .min(usize::try_from(cfg.messages).unwrap_or(usize::MAX))
        .max(1);
    let tallies = thread::scope(|scope| -> io::Result<Vec<Tally>> {
        let progress = cfg.progress.then(|| scope.spawn(|| draw_progress(&run)));
        let mut handles = Vec::with_capacity(sessions);
        for i in 0..sessions {
            let h = thread::Builder::new()
                .name(format!("source-{i}"))
                .spawn_scoped(scope, || session(&run));
            match h {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // Let the started sessions finish nothing more.
                    run.next.store(cfg.messages, Ordering::Relaxed);
                    run.finished.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        let tallies: Vec<Tally> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect();
        run.finished.store(true, Ordering::Relaxed);
        if let Some(p) = progress {
            let _ = p.join();
        }
        Ok(tallies)
    })?;
    let elapsed = run.start.elapsed();
    let mut total = Tally::default();
    for t in tallies {
        total.accepted += t.accepted;
        total.temp += t.temp;
        total.perm += t.perm;
        total.errors += t.errors;
        total.rcpt_rejected += t.rcpt_rejected;
        total.connections += t.connections;
        total.hist.merge(&t.hist);
        total.first_error = total.first_error.or(t.first_error);
        total.first_rejection = total.first_rejection.or(t.first_rejection);
    }
    let h = &total.hist;
    Ok(SourceReport {
        messages: total.accepted,
        failures: total.temp + total.perm + total.errors,
        temp_failures: total.temp,
        perm_failures: total.perm,
        errors: total.errors,
        rcpt_rejected: total.rcpt_rejected,
        connections: total.connections,
        elapsed,
        msgs_per_s: total.accepted as f64 / elapsed.as_secs_f64().max(1e-9),
        latency_ms_p50: h.quantile_ms(0.5),
        latency_ms_p90: h.quantile_ms(0.9),
        latency_ms_p99: h.quantile_ms(0.99),
        latency_ms_p999: h.quantile_ms(0.999),
        latency_ms_max: h.max() as f64 / 1000.0,
        first_error: total.first_error,
        first_rejection: total.first_rejection,
    })
}

fn draw_progress(run: &Run<'_>) {
    let mut last = Instant::now();
    while !run.finished.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(100));
        if last.elapsed() < Duration::from_secs(1) {
            continue;
        }
        last = Instant::now();
        let ok = run.accepted.load(Ordering::Relaxed);
        let failed = run.failed.load(Ordering::Relaxed);
        let secs = run.start.elapsed().as_secs_f64().max(1e-9);
        eprint!(
            "\rsluice source: {ok} accepted, {failed} failed, {:.0} msg/s   ",
            ok as f64 / secs
        );
    }
    eprintln!();
}

/// One session thread: claim messages and send them until the run ends.
fn session(run: &Run<'_>) -> Tally {
    let mut tally = Tally::default();
    let mut conn: Option<Conn> = None;
    while let Some(n) = run.claim() {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::open(run.cfg) {
                Ok(Opened::Ready(c)) => {
                    tally.connections += 1;
                    conn.insert(c)
                }
                Ok(Opened::Refused(outcome)) => {
                    // A 4xx/5xx greeting refuses the message it was for.
                    tally.connections += 1;
                    tally.account(run, outcome);
                    continue;
                }
                Err(e) => {
                    tally.error(run, &e);
                    continue;
                }
            },
        };
        let keep = match c.send(run, n) {
            Ok(outcome) => {
                // After a failed transaction, RSET before the next one.
                let failed = matches!(outcome, Outcome::Rejected { .. });
                let closing = tally.account(run, outcome);
                run.cfg.reuse && !closing && (!failed || c.rset().is_ok())
            }
            Err(e) => {
                tally.error(run, &e);
                conn = None;
                continue;
            }
        };
        if !keep {
            if let Some(c) = conn.take() {
                c.quit();
            }
        }
    }
    if let Some(c) = conn {
        c.quit();
    }
    tally
}
