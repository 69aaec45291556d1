//! qmgr's scheduling half: the destinations this shard schedules, and the
//! smtp deliveries it runs for them.
//!
//! Storing shards send entries (one per recipient) for every destination
//! whose hash picks this shard ([`crate::mesh::shard_for`]). The pure
//! [`Scheduler`](crate::qmgr::scheduler::Scheduler) decides which
//! destination may start a delivery next (concurrency windows, recipient
//! limits, dead destinations); this module runs each delivery as a task:
//! take a cached connection or resolve and connect, speak SMTP through the
//! smtp agent, log Postfix's `to=<…>, relay=…, status=…` lines, and send
//! the outcome back to the storing shard.
//!
//! Trust: next hops are hostile; every step has Postfix's timeout and the
//! agent bounds what it reads.

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glommio::net::TcpStream;
use sluice_agents::delivery::{
    DeliveryReport, DeliveryRequest, Destination, Feedback, RcptOutcome,
};
use sluice_agents::dns::Resolver;
use sluice_agents::smtp::tls::{TlsClient, TlsLevel, TlsPolicy};
use sluice_agents::smtp::{Connection, SessionError, SmtpParams};

use crate::mesh::{Outcome, QmgrEntry};
use crate::qmgr::{Refusal, Scheduler};
use crate::runtime::{GlommioClock, GlommioDns};
use crate::scache::{Cached, Scache};

/// How many addresses of a destination are tried per delivery
/// (smtp_mx_address_limit).
const MX_ADDRESS_LIMIT: usize = 5;
/// How long a server whose TLS handshake failed at level `may` is talked
/// to in plaintext without trying STARTTLS again (Postfix retries in
/// plaintext once per connection; remembering it a while keeps a broken
/// server from costing two connections per delivery).
const PLAINTEXT_RETRY: Duration = Duration::from_secs(300);
/// The most servers remembered so (oldest dropped first).
const PLAINTEXT_RETRY_LIMIT: usize = 1024;
/// How often idle cached connections are swept.
const SCACHE_SWEEP: Duration = Duration::from_millis(500);

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Postfix's delay format: whole seconds from 100 s, else two significant
/// digits with at most two decimals, trailing zeros dropped.
pub fn fmt_delay(s: f64) -> String {
    let s = if s.is_finite() && s > 0.0 { s } else { 0.0 };
    let text = if s >= 10.0 {
        format!("{s:.0}")
    } else if s >= 1.0 {
        format!("{s:.1}")
    } else {
        format!("{s:.2}")
    };
    if text.contains('.') {
        let t = text.trim_end_matches('0').trim_end_matches('.');
        if t.is_empty() {
            "0".to_string()
        } else {
            t.to_string()
        }
    } else {
        text
    }
}

/// Where an outcome goes: the storing shard (through the mesh, or by a
/// direct call when that is us).
pub trait OutcomeSink {
    fn deliver_outcome(&self, origin: usize, outcome: Outcome);
}

pub struct Dispatch {
    pub shard: usize,
    sched: RefCell<Scheduler<QmgrEntry>>,
    scache: RefCell<Scache<Connection<TcpStream>>>,
    resolver: RefCell<Rc<Resolver<GlommioDns>>>,
    smtp: RefCell<Rc<SmtpParams>>,
    /// This shard's TLS client, or why it could not be built.
    tls: RefCell<Rc<Result<TlsClient, String>>>,
    /// Servers whose handshake failed at `may`, until when.
    plaintext_only: RefCell<hashbrown::HashMap<SocketAddr, Instant>>,
    sink: Rc<dyn OutcomeSink>,
    wake: Cell<Option<Waker>>,
    woken: Cell<bool>,
    closed: Cell<bool>,
    running: Cell<usize>,
}

impl Dispatch {
    pub fn new(
        shard: usize,
        sched: Scheduler<QmgrEntry>,
        scache: Scache<Connection<TcpStream>>,
        resolver: Resolver<GlommioDns>,
        smtp: SmtpParams,
        tls: Result<TlsClient, String>,
        sink: Rc<dyn OutcomeSink>,
    ) -> Rc<Dispatch> {
        Rc::new(Dispatch {
            shard,
            sched: RefCell::new(sched),
            scache: RefCell::new(scache),
            resolver: RefCell::new(Rc::new(resolver)),
            smtp: RefCell::new(Rc::new(smtp)),
            tls: RefCell::new(Rc::new(tls)),
            plaintext_only: RefCell::new(hashbrown::HashMap::new()),
            sink,
            wake: Cell::new(None),
            woken: Cell::new(false),
            closed: Cell::new(false),
            running: Cell::new(0),
        })
    }

    fn wake(&self) {
        self.woken.set(true);
        if let Some(w) = self.wake.take() {
            w.wake();
        }
    }

    /// `sluice reload`: new smtp parameters, resolver and transport limits
    /// for deliveries that start from now on.
    pub fn set_params(
        &self,
        smtp: SmtpParams,
        tls: Result<TlsClient, String>,
        resolver: Resolver<GlommioDns>,
        sched: crate::qmgr::SchedulerParams,
    ) {
        *self.smtp.borrow_mut() = Rc::new(smtp);
        *self.tls.borrow_mut() = Rc::new(tls);
        *self.resolver.borrow_mut() = Rc::new(resolver);
        self.sched.borrow_mut().set_params(sched);
        self.wake();
    }

    /// Entries for a destination we schedule.
    pub fn enqueue(&self, dest: Destination, entries: Vec<QmgrEntry>) {
        let refused = self
            .sched
            .borrow_mut()
            .enqueue(dest.clone(), entries, now_us());
        if let Some(r) = refused {
            let reason = match r.why {
                Refusal::Suspended { reason } => reason,
                Refusal::Full => {
                    "delivery temporarily suspended: too many recipients queued".to_string()
                }
            };
            self.defer_entries(&dest, r.entries, "4.4.1", reason);
        }
        self.wake();
    }

    /// Stop starting deliveries; running ones finish.
    pub fn close(&self) {
        self.closed.set(true);
        self.wake();
    }

    pub fn running(&self) -> usize {
        self.running.get()
    }

    /// The scheduling loop: start every delivery the scheduler allows,
    /// then sleep until something changes.
    pub async fn run(self: Rc<Self>) {
        let sweeper = {
            let me = self.clone();
            glommio::spawn_local(async move {
                while !me.closed.get() {
                    glommio::timer::sleep(SCACHE_SWEEP).await;
                    let old = me.scache.borrow_mut().expire(Instant::now());
                    for c in old {
                        glommio::spawn_local(async move { c.quit(&GlommioClock).await }).detach();
                    }
                    // Dead destinations come back to life on their own time.
                    me.wake();
                }
            })
        };
        loop {
            if self.closed.get() {
                break;
            }
            loop {
                let next = self.sched.borrow_mut().next_delivery();
                let Some((dest, entries)) = next else { break };
                let me = self.clone();
                self.running.set(self.running.get() + 1);
                glommio::spawn_local(async move {
                    me.deliver(dest, entries).await;
                    me.running.set(me.running.get() - 1);
                    me.wake();
                })
                .detach();
            }
            std::future::poll_fn(|cx| {
                // A wake-up that came while we were starting deliveries
                // counts: check the flag before sleeping.
                if self.closed.get() || self.woken.replace(false) {
                    return Poll::Ready(());
                }
                self.wake.set(Some(cx.waker().clone()));
                Poll::Pending
            })
            .await;
        }
        sweeper.await;
        let idle = self.scache.borrow_mut().drain();
        for c in idle {
            c.quit(&GlommioClock).await;
        }
    }

    fn defer_entries(
        &self,
        dest: &Destination,
        entries: Vec<QmgrEntry>,
        dsn: &str,
        reason: String,
    ) {
        let outcome = RcptOutcome::Deferred {
            dsn: dsn.to_string(),
            reason: reason.clone(),
        };
        let none = DeliveryReport {
            outcomes: Vec::new(),
            relay: "none".to_string(),
            conn_use: 0,
            setup_s: 0.0,
            transmission_s: 0.0,
            feedback: Feedback::Success,
            peer_dsn: false,
        };
        let now = now_us();
        for e in &entries {
            log_delivery(&e.msg, &e.rcpt, &outcome, &none, now);
        }
        // Group by message: one outcome per message. A dead destination
        // can hand back up to qmgr_message_recipient_limit entries, so
        // this is a map, not a search per entry.
        let mut by_msg: hashbrown::HashMap<
            sluice_storage::qid::QueueId,
            (std::sync::Arc<crate::mesh::MessageShared>, Vec<u32>),
        > = hashbrown::HashMap::new();
        for e in entries {
            by_msg
                .entry(e.msg.qid.clone())
                .or_insert_with(|| (e.msg.clone(), Vec::new()))
                .1
                .push(e.rcpt.index);
        }
        for (_, (msg, idx)) in by_msg {
            let report = DeliveryReport {
                outcomes: idx
                    .into_iter()
                    .map(|i| {
                        (
                            i,
                            RcptOutcome::Deferred {
                                dsn: dsn.to_string(),
                                reason: reason.clone(),
                            },
                        )
                    })
                    .collect(),
                relay: "none".to_string(),
                conn_use: 0,
                setup_s: 0.0,
                transmission_s: 0.0,
                feedback: Feedback::Success,
                peer_dsn: false,
            };
            self.sink.deliver_outcome(
                msg.origin,
                Outcome {
                    qid: msg.qid.clone(),
                    destination: dest.clone(),
                    report,
                },
            );
        }
    }

    /// One delivery: the scheduler gave us up to the recipient limit of
    /// one message's recipients for `dest`.
    async fn deliver(&self, dest: Destination, entries: Vec<QmgrEntry>) {
        let Some(first) = entries.first() else {
            return;
        };
        let msg = first.msg.clone();
        let started_us = now_us();
        let req = DeliveryRequest {
            qid: msg.qid.as_str().to_string(),
            sender: msg.sender.clone(),
            mail: msg.mail.clone(),
            arrival_us: msg.arrival_us,
            destination: dest.clone(),
            recipients: entries.iter().map(|e| e.rcpt.clone()).collect(),
        };
        let report = self.attempt(&dest, &req, &msg.content).await;
        for (e, (_, outcome)) in entries.iter().zip(report.outcomes.iter()) {
            log_delivery(&msg, &e.rcpt, outcome, &report, started_us);
        }
        let why = report
            .outcomes
            .first()
            .map(|(_, o)| o.reason().to_string())
            .unwrap_or_default();
        let dead = self
            .sched
            .borrow_mut()
            .done(&dest, report.feedback, &why, now_us());
        tracing::debug!(target: "qmgr", "{dest}: feedback {:?}, {} dropped", report.feedback, dead.len());
        if !dead.is_empty() {
            self.defer_entries(
                &dest,
                dead,
                "4.4.1",
                format!("delivery temporarily suspended: {why}"),
            );
        }
        self.sink.deliver_outcome(
            msg.origin,
            Outcome {
                qid: msg.qid.clone(),
                destination: dest,
                report,
            },
        );
    }

    async fn attempt(
        &self,
        dest: &Destination,
        req: &DeliveryRequest,
        content: &[u8],
    ) -> DeliveryReport {
        let setup_start = Instant::now();
        let tls = self.tls.borrow().clone();
        let policy = match tls.as_ref() {
            Ok(t) => t.params().policy_for(&dest.nexthop),
            Err(_) => TlsPolicy::level(TlsLevel::None),
        };
        let mut cached = self.scache.borrow_mut().take(dest, setup_start);
        // A cached session is reused only under the policy it was opened
        // with: never a plaintext one where TLS is now required.
        if let Some(c) = cached.take_if(|c| c.conn.tls_level() != policy.level) {
            glommio::spawn_local(async move { c.conn.quit(&GlommioClock).await }).detach();
        }
        if cached.is_none() {
            match self.connect(dest, &tls, &policy).await {
                Ok(c) => {
                    cached = Some(Cached {
                        conn: c,
                        born: Instant::now(),
                        uses: 0,
                    })
                }
                Err((outcome, feedback, relay)) => {
                    return all(
                        req,
                        outcome,
                        relay,
                        0,
                        setup_start.elapsed().as_secs_f64(),
                        feedback,
                        false,
                    );
                }
            }
        }
        let Some(mut c) = cached else {
            return all(
                req,
                RcptOutcome::Deferred {
                    dsn: "4.4.1".into(),
                    reason: "no connection".into(),
                },
                "none".into(),
                0,
                0.0,
                Feedback::Failure,
                false,
            );
        };
        let setup_s = setup_start.elapsed().as_secs_f64();
        let relay = c.conn.peer().to_string();
        let peer_dsn = c.conn.peer_supports_dsn();
        let xfer_start = Instant::now();
        let result = c.conn.deliver(req, content, &GlommioClock).await;
        let transmission_s = xfer_start.elapsed().as_secs_f64();
        c.uses = c.conn.uses();
        match result {
            Ok(outcomes) => {
                let conn_use = c.uses;
                // Reuse: RSET now, then offer it to the cache.
                let now = Instant::now();
                if c.conn.is_reusable()
                    && self.scache.borrow().reusable(c.born, c.uses, now)
                    && c.conn.reset(&GlommioClock).await.is_ok()
                {
                    if let Some(extra) =
                        self.scache
                            .borrow_mut()
                            .put(req.destination.clone(), c, Instant::now())
                    {
                        glommio::spawn_local(async move { extra.quit(&GlommioClock).await })
                            .detach();
                    }
                } else {
                    glommio::spawn_local(async move { c.conn.quit(&GlommioClock).await }).detach();
                }
                DeliveryReport {
                    outcomes: req
                        .recipients
                        .iter()
                        .map(|r| r.index)
                        .zip(outcomes)
                        .collect(),
                    relay,
                    conn_use,
                    setup_s,
                    transmission_s,
                    feedback: Feedback::Success,
                    peer_dsn,
                }
            }
            Err(e) => {
                // Recipients the server already decided keep their outcome;
                // the rest carry the failure (Postfix's smtp_bulk_fail).
                glommio::spawn_local(async move { c.conn.quit(&GlommioClock).await }).detach();
                DeliveryReport {
                    outcomes: req
                        .recipients
                        .iter()
                        .map(|r| r.index)
                        .zip(e.outcomes)
                        .collect(),
                    relay,
                    conn_use: c.uses,
                    setup_s,
                    transmission_s,
                    feedback: Feedback::Success,
                    peer_dsn,
                }
            }
        }
    }

    /// Resolve the nexthop and connect to the first address that answers.
    async fn connect(
        &self,
        dest: &Destination,
        tls: &Result<TlsClient, String>,
        policy: &TlsPolicy,
    ) -> Result<Connection<TcpStream>, ConnectFailure> {
        let (host, port, mx) = parse_nexthop(&dest.nexthop);
        let resolver = self.resolver.borrow().clone();
        let smtp = self.smtp.borrow().clone();
        let lookup = if mx {
            resolver.mx_hosts(&host, now_us()).await.map(|hosts| {
                hosts
                    .into_iter()
                    .flat_map(|h| {
                        let name = h.name.clone();
                        h.addrs.into_iter().map(move |a| (name.clone(), a))
                    })
                    .collect::<Vec<_>>()
            })
        } else {
            resolver
                .host_addrs(&host)
                .await
                .map(|addrs| addrs.into_iter().map(|a| (host.clone(), a)).collect())
        };
        let candidates: Vec<(String, IpAddr)> = match lookup {
            Ok(c) => c,
            Err(e) => {
                let outcome = if e.is_permanent() {
                    RcptOutcome::Bounced {
                        dsn: e.dsn().to_string(),
                        reason: e.reason(),
                    }
                } else {
                    RcptOutcome::Deferred {
                        dsn: e.dsn().to_string(),
                        reason: e.reason(),
                    }
                };
                let fb = if e.is_permanent() {
                    Feedback::Success
                } else {
                    Feedback::Failure
                };
                return Err((outcome, fb, "none".into()));
            }
        };
        let mut last = format!("no address for {host}");
        let mut last_feedback = Feedback::Failure;
        let mut last_permanent = false;
        let mut last_dsn = "4.4.1".to_string();
        let mut last_relay = "none".to_string();
        for (name, ip) in candidates.into_iter().take(MX_ADDRESS_LIMIT) {
            let addr = SocketAddr::new(ip, port);
            let peer = format!("{name}[{ip}]:{port}");
            let setup = match tls_setup(tls, policy, &name, &host) {
                Ok(setup) => setup,
                Err(reason) => {
                    return Err((
                        RcptOutcome::Deferred {
                            dsn: "4.7.5".into(),
                            reason,
                        },
                        Feedback::Success,
                        "none".into(),
                    ))
                }
            };
            let mut plaintext = setup.is_none() || self.plaintext_only(addr);
            let opened = loop {
                let stream = match TcpStream::connect_timeout(addr, smtp.connect_timeout).await {
                    Ok(s) => s,
                    Err(e) => {
                        break Err(format!(
                            "connect to {name}[{ip}]:{port}: {}",
                            io_reason(&std::io::Error::from(e))
                        ))
                    }
                };
                let _ = stream.set_nodelay(true);
                let use_tls = if plaintext { None } else { setup.as_ref() };
                match Connection::open_tls(stream, peer.clone(), &smtp, use_tls, &GlommioClock)
                    .await
                {
                    Err(SessionError::TlsRetryPlaintext { .. }) if !plaintext => {
                        // Postfix: at `may`, a failed handshake is retried
                        // in plaintext on a new connection.
                        self.remember_plaintext(addr);
                        plaintext = true;
                    }
                    other => break Ok(other),
                }
            };
            match opened {
                Err(reason) => last = reason,
                Ok(Ok(c)) => match self.authenticate(c, &smtp, &name, dest).await {
                    Ok(c) => return Ok(c),
                    Err(e) => {
                        last_relay = peer.clone();
                        last = e.reason();
                        last_feedback = e.feedback();
                        if e.is_permanent() {
                            return Err((e.outcome(), last_feedback, last_relay));
                        }
                        last_dsn = e.dsn().to_string();
                    }
                },
                Ok(Err(e)) => {
                    // The server answered: Postfix names it in relay=.
                    last_relay = peer.clone();
                    last = e.reason();
                    last_feedback = e.feedback();
                    last_permanent = e.is_permanent();
                    if last_permanent {
                        return Err((e.outcome(), last_feedback, last_relay));
                    }
                    if let SessionError::Tls { .. } = e {
                        last_dsn = e.dsn().to_string();
                    }
                }
            }
        }
        debug_assert!(!last_permanent);
        Err((
            RcptOutcome::Deferred {
                dsn: last_dsn,
                reason: last,
            },
            last_feedback,
            last_relay,
        ))
    }
}

/// Why no session could be opened: the outcome for every recipient, the
/// concurrency feedback, and `relay=` (`none` when no server answered).
type ConnectFailure = (RcptOutcome, Feedback, String);

impl Dispatch {
    /// SMTP AUTH on a new session when `smtp_sasl_auth_enable` is on and
    /// `smtp_sasl_password_maps` has credentials for this server.
    async fn authenticate(
        &self,
        mut conn: Connection<TcpStream>,
        smtp: &SmtpParams,
        mx_host: &str,
        dest: &Destination,
    ) -> Result<Connection<TcpStream>, SessionError> {
        let Some(sasl) = &smtp.sasl else {
            return Ok(conn);
        };
        let Some(creds) = sasl.credentials(mx_host, &dest.nexthop) else {
            return Ok(conn);
        };
        match conn.authenticate(&creds, sasl, &GlommioClock).await {
            Ok(()) => Ok(conn),
            Err(e) => {
                glommio::spawn_local(async move { conn.quit(&GlommioClock).await }).detach();
                Err(e)
            }
        }
    }

    /// Whether `addr` failed a handshake at `may` recently.
    fn plaintext_only(&self, addr: SocketAddr) -> bool {
        let mut map = self.plaintext_only.borrow_mut();
        match map.get(&addr) {
            Some(&until) if until > Instant::now() => true,
            Some(_) => {
                map.remove(&addr);
                false
            }
            None => false,
        }
    }

    fn remember_plaintext(&self, addr: SocketAddr) {
        let mut map = self.plaintext_only.borrow_mut();
        if map.len() >= PLAINTEXT_RETRY_LIMIT {
            let now = Instant::now();
            map.retain(|_, until| *until > now);
            if map.len() >= PLAINTEXT_RETRY_LIMIT {
                if let Some(oldest) = map.iter().min_by_key(|(_, u)| **u).map(|(a, _)| *a) {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(addr, Instant::now() + PLAINTEXT_RETRY);
    }
}

/// The STARTTLS setup for one server, `None` at level `none`. Without a
/// TLS client (its CA file became unreadable after load) `may` goes on in
/// plaintext and mandatory levels defer, as Postfix does when its TLS
/// engine is unavailable.
fn tls_setup(
    tls: &Result<TlsClient, String>,
    policy: &TlsPolicy,
    mx_host: &str,
    nexthop_host: &str,
) -> Result<Option<sluice_agents::smtp::tls::TlsSetup>, String> {
    if policy.level == TlsLevel::None {
        return Ok(None);
    }
    match tls {
        Ok(client) => client.setup(policy, mx_host, nexthop_host),
        Err(_) if !policy.level.is_required() => Ok(None),
        Err(e) => Err(format!(
            "TLS is required, but our TLS engine is unavailable: {e}"
        )),
    }
}

/// The C library's words for the usual connect errors, as Postfix logs them.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "Connection refused".into(),
        std::io::ErrorKind::TimedOut => "Connection timed out".into(),
        std::io::ErrorKind::HostUnreachable => "No route to host".into(),
        std::io::ErrorKind::NetworkUnreachable => "Network is unreachable".into(),
        _ => e.to_string(),
    }
}

/// `[host]:port` (no MX), `host:port`, `host`, or `[ip]`.
pub fn parse_nexthop(nexthop: &str) -> (String, u16, bool) {
    let (hostpart, port) = match nexthop.rsplit_once(':') {
        Some((h, p))
            if !h.is_empty()
                && p.chars().all(|c| c.is_ascii_digit())
                && !h.ends_with(':')
                && (h.starts_with('[') || !h.contains(':')) =>
        {
            (h, p.parse().unwrap_or(25))
        }
        _ => (nexthop, 25),
    };
    match hostpart.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(h) => (
            h.strip_prefix("IPv6:").unwrap_or(h).to_string(),
            port,
            false,
        ),
        None => (hostpart.to_string(), port, true),
    }
}

fn all(
    req: &DeliveryRequest,
    outcome: RcptOutcome,
    relay: String,
    conn_use: u32,
    setup_s: f64,
    feedback: Feedback,
    peer_dsn: bool,
) -> DeliveryReport {
    DeliveryReport {
        outcomes: req
            .recipients
            .iter()
            .map(|r| (r.index, outcome.clone()))
            .collect(),
        relay,
        conn_use,
        setup_s,
        transmission_s: 0.0,
        feedback,
        peer_dsn,
    }
}

fn log_delivery(
    msg: &crate::mesh::MessageShared,
    rcpt: &sluice_agents::delivery::DeliveryRcpt,
    outcome: &RcptOutcome,
    report: &DeliveryReport,
    started_us: u64,
) {
    let now = now_us();
    let s = |a: u64, b: u64| b.saturating_sub(a) as f64 / 1e6;
    let delay = s(msg.arrival_us, now);
    let a = s(msg.arrival_us, msg.active_us);
    let b = s(msg.active_us, started_us);
    let orig = match rcpt
        .orcpt
        .as_deref()
        .and_then(|o| o.split_once(';'))
        .map(|(_, a)| a.trim())
    {
        Some(o) if !o.eq_ignore_ascii_case(&rcpt.address) => format!(", orig_to=<{o}>"),
        _ => String::new(),
    };
    let conn_use = if report.conn_use > 1 {
        format!(", conn_use={}", report.conn_use)
    } else {
        String::new()
    };
    tracing::info!(
        target: "smtp",
        "{}: to=<{}>{orig}, relay={}{conn_use}, delay={}, delays={}/{}/{}/{}, dsn={}, status={} ({})",
        msg.qid,
        rcpt.address,
        report.relay,
        fmt_delay(delay),
        fmt_delay(a),
        fmt_delay(b),
        fmt_delay(report.setup_s),
        fmt_delay(report.transmission_s),
        outcome.dsn(),
        outcome.status_word(),
        outcome.reason()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_in_postfix_format() {
        assert_eq!(fmt_delay(0.0), "0");
        assert_eq!(fmt_delay(0.004), "0");
        assert_eq!(fmt_delay(0.123), "0.12");
        assert_eq!(fmt_delay(0.1), "0.1");
        assert_eq!(fmt_delay(1.26), "1.3");
        assert_eq!(fmt_delay(12.6), "13");
        assert_eq!(fmt_delay(345.2), "345");
    }

    #[test]
    fn nexthops() {
        assert_eq!(
            parse_nexthop("example.org"),
            ("example.org".into(), 25, true)
        );
        assert_eq!(
            parse_nexthop("[mx.example.org]:2525"),
            ("mx.example.org".into(), 2525, false)
        );
        assert_eq!(
            parse_nexthop("[127.0.0.1]:2526"),
            ("127.0.0.1".into(), 2526, false)
        );
        assert_eq!(
            parse_nexthop("example.org:587"),
            ("example.org".into(), 587, true)
        );
        assert_eq!(parse_nexthop("[IPv6:::1]:25"), ("::1".into(), 25, false));
    }
}
