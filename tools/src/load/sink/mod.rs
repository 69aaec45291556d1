//! The sink: an SMTP server that accepts mail and throws it away, as
//! Postfix's smtp-sink(1) does, to measure a client (Sluice's smtp
//! delivery agent, or the source) rather than a server.
//!
//! Role: answer SMTP like Postfix's smtpd would on the happy path
//! (POSTFIX-FACTS §7 reply texts), with injected faults: a deterministic
//! fraction of MAIL, RCPT or end-of-data answered 4xx or 5xx, and delays
//! before replies. For tests it can keep what it receives in memory
//! ([`Sink::received`], bounded by [`SinkConfig::keep_received`]) or write
//! each message to a dump directory.
//!
//! Threads: one accept thread, and one thread per connection (up to
//! [`SinkConfig::max_connections`]; beyond it a connection gets 421 and
//! is closed). [`Sink::stop`] (or dropping the [`Sink`]) shuts every
//! connection down and joins every thread.
//!
//! Limits, after the Postfix parameters whose defaults they take:
//! line_length_limit for command lines, message_size_limit for content
//! (beyond it the rest is read and discarded, then 552), smtpd_timeout
//! per read, smtpd_recipient_limit per transaction.
//!
//! Replies are buffered and written when the client has nothing more
//! pipelined (the input buffer is empty), as Postfix's smtpd does, so a
//! pipelined MAIL/RCPT/DATA group costs one write.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use self::session::Session;

mod session;

/// line_length_limit default: the longest command line taken whole.
pub const LINE_LENGTH_LIMIT: usize = 2048;
/// message_size_limit default (bytes of content, after un-stuffing).
pub const MESSAGE_SIZE_LIMIT: usize = 10_240_000;
/// smtpd_timeout default: how long one read may wait.
pub const SMTPD_TIMEOUT: Duration = Duration::from_secs(300);
/// smtpd_recipient_limit default.
pub const SMTPD_RECIPIENT_LIMIT: usize = 1000;
/// Content is read in pieces of at most this many bytes; a longer line is
/// taken in several pieces (only a line's first piece is un-stuffed).
const CONTENT_CHUNK: usize = 64 * 1024;
/// Pending replies are written once they reach this size even if more
/// input is buffered, so a client that pipelines without reading cannot
/// grow our output without bound.
const OUTPUT_FLUSH: usize = 16 * 1024;
/// How often the accept thread looks at the stop flag while idle.
const ACCEPT_POLL: Duration = Duration::from_millis(50);
/// Session threads only hold small buffers; 256 KiB of stack is plenty
/// and keeps a thousand sessions cheap.
const SESSION_STACK: usize = 256 * 1024;

/// Which reply the failure fractions apply to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailAt {
    Mail,
    Rcpt,
    /// The reply to the final dot (the content has been sent).
    Data,
}

/// What the sink does. [`SinkConfig::new`] gives smtp-sink's behaviour
/// with Postfix's limits.
#[derive(Clone, Debug)]
pub struct SinkConfig {
    /// Where to listen; port 0 picks a free port (see [`Sink::addr`]).
    pub listen: SocketAddr,
    /// The name in the greeting and the EHLO reply (smtp-sink's default).
    pub hostname: String,
    /// Sessions at once; more get `421 4.7.0` and are closed.
    pub max_connections: usize,
    /// Fraction (0..=1) of [`SinkConfig::fail_at`] replies that are 4xx.
    pub reply_temp_fail: f64,
    /// Fraction (0..=1) of [`SinkConfig::fail_at`] replies that are 5xx.
    /// `reply_temp_fail + reply_perm_fail` must not exceed 1.
    pub reply_perm_fail: f64,
    pub fail_at: FailAt,
    /// Wait this long before answering the final dot (a slow next hop).
    pub delay: Duration,
    /// Wait this long before every other reply (a slow network or server).
    pub command_delay: Duration,
    pub announce_pipelining: bool,
    pub announce_dsn: bool,
    /// Write each accepted message to `<dir>/<n>.eml`: envelope as
    /// `X-Sink-Mail-From:` / `X-Sink-Rcpt-To:` lines, then the content.
    pub dump_dir: Option<PathBuf>,
    /// Keep up to this many accepted messages (the first ones) in memory
    /// for [`Sink::received`]; 0 keeps none and never copies content.
    pub keep_received: usize,
    /// Accept this many messages, then answer 421 to everything.
    pub count_limit: Option<u64>,
    pub message_size_limit: usize,
    pub line_length_limit: usize,
    pub read_timeout: Duration,
    pub recipient_limit: usize,
    /// listen(2) backlog; `None` keeps the standard library's (128).
    pub backlog: Option<i32>,
}

/// Messages kept in memory by default: enough for any test, bounded for
/// an in-process benchmark (1,000 × 4 KiB).
pub const DEFAULT_KEEP_RECEIVED: usize = 1000;

impl SinkConfig {
    pub fn new(listen: SocketAddr) -> Self {
        SinkConfig {
            listen,
            hostname: "smtp-sink".to_owned(),
            max_connections: 512,
            reply_temp_fail: 0.0,
            reply_perm_fail: 0.0,
            fail_at: FailAt::Rcpt,
            delay: Duration::ZERO,
            command_delay: Duration::ZERO,
            announce_pipelining: true,
            announce_dsn: true,
            dump_dir: None,
            keep_received: DEFAULT_KEEP_RECEIVED,
            count_limit: None,
            message_size_limit: MESSAGE_SIZE_LIMIT,
            line_length_limit: LINE_LENGTH_LIMIT,
            read_timeout: SMTPD_TIMEOUT,
            recipient_limit: SMTPD_RECIPIENT_LIMIT,
            backlog: None,
        }
    }

    fn validate(&self) -> io::Result<()> {
        let frac = |p: f64| (0.0..=1.0).contains(&p);
        if !frac(self.reply_temp_fail)
            || !frac(self.reply_perm_fail)
            || self.reply_temp_fail + self.reply_perm_fail > 1.0
        {
            return Err(invalid(
                "failure fractions must be within 0..=1 and add up to at most 1",
            ));
        }
        if self.max_connections == 0 || self.line_length_limit < 16 {
            return Err(invalid(
                "max_connections must be positive and line_length_limit at least 16",
            ));
        }
        Ok(())
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// One accepted message, as kept by the sink (content un-stuffed, line
/// endings as received).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The number in "queued as <n>", from 1.
    pub id: u64,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub content: Vec<u8>,
    /// The connection it came over, numbered from 1 in accept order.
    pub connection: u64,
    pub at: Instant,
}

/// Counters since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    pub connections: u64,
    /// Connections closed at once because of max_connections.
    pub refused: u64,
    pub messages: u64,
    pub recipients: u64,
    /// Content bytes of accepted messages.
    pub bytes: u64,
    pub temp_rejects: u64,
    pub perm_rejects: u64,
}

/// The outcome chosen for one fault-injection event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Ok,
    Temp,
    Perm,
}

const PPM: u128 = 1_000_000;

/// Event `k` (from 0) of a sequence in which fractions `temp_ppm` and
/// `perm_ppm` (parts per million) must fail. Bresenham-style: after `n`
/// events exactly `floor(n * (t + p))` have failed, spread evenly; the
/// failures alternate between permanent and temporary in proportion. So
/// the count of each kind over a run is known exactly, whatever the
/// interleaving of sessions.
fn verdict(k: u64, temp_ppm: u64, perm_ppm: u64) -> Verdict {
    let both = u128::from(temp_ppm + perm_ppm);
    if both == 0 {
        return Verdict::Ok;
    }
    let k = u128::from(k);
    let before = k * both / PPM;
    if (k + 1) * both / PPM == before {
        return Verdict::Ok;
    }
    // This is failure number `before` (from 0); pick its kind the same way.
    let perm = u128::from(perm_ppm);
    if (before + 1) * perm / both > before * perm / both {
        Verdict::Perm
    } else {
        Verdict::Temp
    }
}

fn to_ppm(p: f64) -> u64 {
    (p * 1e6).round() as u64
}

struct Shared {
    cfg: SinkConfig,
    temp_ppm: u64,
    perm_ppm: u64,
    stop: AtomicBool,
    /// Set once count_limit messages have been accepted.
    done: AtomicBool,
    connections: AtomicU64,
    refused: AtomicU64,
    active: AtomicUsize,
    /// Messages accepted and recorded.
    messages: AtomicU64,
    /// Messages accepted or being accepted (count_limit applies to these).
    reserved: AtomicU64,
    /// The last "queued as" number handed out.
    next_id: AtomicU64,
    recipients: AtomicU64,
    bytes: AtomicU64,
    temp_rejects: AtomicU64,
    perm_rejects: AtomicU64,
    /// Fault-injection events seen so far (the `k` of [`verdict`]).
    events: AtomicU64,
    received: Mutex<Vec<ReceivedMessage>>,
    /// Paired with `progress`: notified after each accepted message.
    progress_lock: Mutex<()>,
    progress: Condvar,
    /// Open connections, so that stop can shut them down.
    streams: Mutex<HashMap<u64, TcpStream>>,
}

/// A poisoned lock only means a session thread panicked; the data under
/// it (counters, a list) is still consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn next_verdict(&self, at: FailAt) -> Verdict {
        if at != self.cfg.fail_at {
            return Verdict::Ok;
        }
        let k = self.events.fetch_add(1, Ordering::Relaxed);
        verdict(k, self.temp_ppm, self.perm_ppm)
    }

    fn closing(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.done.load(Ordering::Relaxed)
    }

    /// Reserve a place for one more message, unless count_limit places
    /// are taken.
    fn reserve(&self) -> bool {
        let limit = self.cfg.count_limit.unwrap_or(u64::MAX);
        self.reserved
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| {
                (m < limit).then_some(m + 1)
            })
            .is_ok()
    }

    /// Give back a reservation whose message was not accepted after all.
    fn unreserve(&self) {
        self.reserved.fetch_sub(1, Ordering::SeqCst);
    }

    /// Count, keep and announce an accepted message (before its 250 goes
    /// out, so that whoever saw the 250 also sees the message here).
    fn record(&self, msg: ReceivedMessage, size: usize) {
        self.recipients
            .fetch_add(msg.rcpt_to.len() as u64, Ordering::Relaxed);
        self.bytes.fetch_add(size as u64, Ordering::Relaxed);
        if self.cfg.keep_received > 0 {
            let mut kept = lock(&self.received);
            if kept.len() < self.cfg.keep_received {
                kept.push(msg);
            }
        }
        let n = self.messages.fetch_add(1, Ordering::SeqCst) + 1;
        if self.cfg.count_limit.is_some_and(|l| n >= l) {
            self.done.store(true, Ordering::SeqCst);
        }
        self.notify();
    }

    fn notify(&self) {
        let _g = lock(&self.progress_lock);
        self.progress.notify_all();
    }

    fn keeps_content(&self) -> bool {
        self.cfg.keep_received > 0 || self.cfg.dump_dir.is_some()
    }
}

/// A running sink. Dropping it stops it.
pub struct Sink {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl Sink {
    /// Bind and start accepting.
    pub fn start(cfg: SinkConfig) -> io::Result<Sink> {
        cfg.validate()?;
        if let Some(dir) = &cfg.dump_dir {
            fs::create_dir_all(dir)?;
        }
        let listener = TcpListener::bind(cfg.listen)?;
        if let Some(backlog) = cfg.backlog {
            // SAFETY: a second listen(2) on a listening socket only changes
            // its backlog; the descriptor is ours and open.
            if unsafe { libc::listen(listener.as_raw_fd(), backlog) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // Non-blocking so that the accept thread can notice `stop`; it
        // waits in poll(2), so a new connection is taken at once.
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            temp_ppm: to_ppm(cfg.reply_temp_fail),
            perm_ppm: to_ppm(cfg.reply_perm_fail),
            cfg,
            stop: AtomicBool::new(false),
            done: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            messages: AtomicU64::new(0),
            reserved: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            recipients: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            temp_rejects: AtomicU64::new(0),
            perm_rejects: AtomicU64::new(0),
            events: AtomicU64::new(0),
            received: Mutex::new(Vec::new()),
            progress_lock: Mutex::new(()),
            progress: Condvar::new(),
            streams: Mutex::new(HashMap::new()),
        });
        let s = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("sink-accept".into())
            .spawn(move || accept_loop(listener, s))?;
        Ok(Sink {
            shared,
            addr,
            accept: Some(accept),
        })
    }

    /// The address actually bound (the port, when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Messages accepted (answered "250 … queued as").
    pub fn messages(&self) -> u64 {
        self.shared.messages.load(Ordering::SeqCst)
    }

    /// Connections accepted, including refused ones.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    pub fn stats(&self) -> SinkStats {
        let s = &self.shared;
        let ld = |a: &AtomicU64| a.load(Ordering::SeqCst);
        SinkStats {
            connections: ld(&s.connections),
            refused: ld(&s.refused),
            messages: ld(&s.messages),
            recipients: ld(&s.recipients),
            bytes: ld(&s.bytes),
            temp_rejects: ld(&s.temp_rejects),
            perm_rejects: ld(&s.perm_rejects),
        }
    }

    /// The messages kept so far (at most `keep_received`, oldest first).
    pub fn received(&self) -> Vec<ReceivedMessage> {
        lock(&self.shared.received).clone()
    }

    /// Wait until at least `n` messages were accepted; false on timeout.
    pub fn wait_for(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut g = lock(&self.shared.progress_lock);
        loop {
            if self.messages() >= n {
                return true;
            }
            let left = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return false,
                },
                None => Duration::from_secs(3600),
            };
            g = match self.shared.progress.wait_timeout(g, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Sessions open now.
    pub fn active_sessions(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// Has count_limit been reached?
    pub fn is_done(&self) -> bool {
        self.shared.done.load(Ordering::SeqCst)
    }

    /// Stop accepting, close every connection, join every thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Wait up to `timeout` for a connection to be ready on `listener`.
fn poll_readable(listener: &TcpListener, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd, count 1.
    unsafe { libc::poll(&mut pfd, 1, ms) > 0 }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut sessions: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        sessions.retain(|h| !h.is_finished());
        if !poll_readable(&listener, ACCEPT_POLL) {
            continue;
        }
        let stream = match listener.accept() {
            Ok((stream, _peer)) => stream,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => {
                // EMFILE and friends: back off rather than spin; the
                // connection stays in the backlog until a slot frees.
                thread::sleep(ACCEPT_POLL);
                continue;
            }
        };
        let id = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(h) = spawn_session(&shared, stream, id) {
            sessions.push(h);
        }
    }
    // Shut every open connection down so that blocked reads return, then
    // wait for the session threads.
    for s in lock(&shared.streams).values() {
        let _ = s.shutdown(Shutdown::Both);
    }
    for h in sessions {
        let _ = h.join();
    }
}

fn refuse(shared: &Shared, mut stream: TcpStream) {
    shared.refused.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = write!(
        stream,
        "421 4.7.0 {} Error: too many connections\r\n",
        shared.cfg.hostname
    );
}

fn spawn_session(shared: &Arc<Shared>, stream: TcpStream, id: u64) -> Option<JoinHandle<()>> {
    if shared.active.load(Ordering::SeqCst) >= shared.cfg.max_connections {
        refuse(shared, stream);
        return None;
    }
    let registered = stream.try_clone().ok()?;
    shared.active.fetch_add(1, Ordering::SeqCst);
    lock(&shared.streams).insert(id, registered);
    let s = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name(format!("sink-{id}"))
        .stack_size(SESSION_STACK)
        .spawn(move || {
            // Errors end the session; the client sees the connection close.
            let _ = Session::new(&s, stream, id).and_then(|mut sess| sess.run());
            lock(&s.streams).remove(&id);
            s.active.fetch_sub(1, Ordering::SeqCst);
        });
    match spawned {
        Ok(h) => Some(h),
        Err(_) => {
            // Out of threads: undo, and treat it as over the limit.
            if let Some(stream) = lock(&shared.streams).remove(&id) {
                refuse(shared, stream);
            }
            shared.active.fetch_sub(1, Ordering::SeqCst);
            None
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn verdicts_hit_exact_fractions() {
        // (temp, perm, events) -> (temp count, perm count)
        for (t, p, n) in [
            (0.1, 0.0, 200u64),
            (0.0, 0.25, 200),
            (0.1, 0.1, 200),
            (0.05, 0.15, 1000),
            (0.0, 0.0, 100),
            (1.0, 0.0, 10),
            (0.5, 0.5, 10),
        ] {
            let (tp, pp) = (to_ppm(t), to_ppm(p));
            let v: Vec<Verdict> = (0..n).map(|k| verdict(k, tp, pp)).collect();
            let count = |x| v.iter().filter(|&&y| y == x).count() as f64;
            let n = n as f64;
            assert_eq!(
                count(Verdict::Temp) + count(Verdict::Perm),
                ((t + p) * n).floor()
            );
            assert!((count(Verdict::Perm) - p * n).abs() <= 1.0, "t={t} p={p}");
            assert!((count(Verdict::Temp) - t * n).abs() <= 1.0, "t={t} p={p}");
        }
        // Evenly spread: with 10 %, every tenth event.
        let tp = to_ppm(0.1);
        let hits: Vec<u64> = (0..30)
            .filter(|&k| verdict(k, tp, 0) != Verdict::Ok)
            .collect();
        assert_eq!(hits, [9, 19, 29]);
    }

    #[test]
    fn config_is_validated() {
        let mut c = SinkConfig::new(([127, 0, 0, 1], 0).into());
        c.reply_temp_fail = 0.7;
        c.reply_perm_fail = 0.4;
        assert!(Sink::start(c.clone()).is_err());
        c.reply_perm_fail = -0.1;
        assert!(Sink::start(c).is_err());
    }
}
