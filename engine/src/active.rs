//! qmgr's storing half: the active queue of the messages this shard stores.
//!
//! It takes messages from the incoming queue (new arrivals, and everything
//! recovered at start) and deferred messages whose retry time has come,
//! alternately as Postfix does, keeping at most `qmgr_message_active_limit`
//! (divided over the shards) in flight. For each active message it asks
//! trivial-rewrite's resolve for every pending recipient's destination and
//! sends one entry per recipient to the shard that schedules that
//! destination. Outcomes come back here; they are appended to this shard's
//! log (RcptStatus records, group-committed) before they count. When no
//! delivery is in flight for a message: every recipient finished means a
//! bounce for the failed ones (a new message through cleanup, durable
//! before the original's `Done`) and then `Done`; otherwise the message
//! waits in the deferred queue until the backoff says to retry.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use hashbrown::HashMap;
use sluice_agents::bounce::{self, Action, Diagnostic, NoticeKind, NoticeParams, NoticeRcpt};
use sluice_agents::cleanup::CleanupParams;
use sluice_agents::delivery::{DeliveryRcpt, Destination, RcptOutcome};
use sluice_agents::resolve::{resolve, ResolveParams};
use sluice_protocols::envelope::{Envelope, Notify, Recipient};
use sluice_storage::log::ShardLog;
use sluice_storage::qid::{QidGenerator, QueueId};
use sluice_storage::record::{MessageRecord, QueueState, RecipientStatus, Record};

use crate::commit::Committer;
use crate::dispatch::now_us;
use crate::mesh::{MessageShared, Outcome, QmgrEntry};
use crate::qmgr::backoff::{self, BackoffParams};

/// New arrivals keep their content in memory for their first attempt only
/// while the incoming queue is shorter than this; past it they are read
/// back from the log when their turn comes (bounded memory).
const FRESH_CONTENT_LIMIT: usize = 1024;
/// ... and while the content they keep is under this many bytes: without
/// it, 1024 arrivals of `message_size_limit` would pin 10 GB after smtpd's
/// in-flight budget (`sluice_inflight_memory_limit`) let them go. Reading a
/// just-written record back costs a page-cache read.
const FRESH_CONTENT_BYTES: usize = 64 << 20;
/// Longest sleep of the feeder when nothing is due (it wakes earlier on
/// every arrival and outcome).
const IDLE_TICK: Duration = Duration::from_secs(1);

/// Sends entries to the shard that schedules a destination.
pub trait Router {
    fn route(&self, dest: Destination, entries: Vec<QmgrEntry>);
}

pub struct ActiveParams {
    /// This shard's share of qmgr_message_active_limit.
    pub active_limit: usize,
    pub backoff: BackoffParams,
    pub resolve: ResolveParams,
    pub defer_transports: Vec<String>,
    pub notice: NoticeParams,
    pub cleanup: CleanupParams,
}

struct Flight {
    outstanding: u32,
    /// Remote MTA per recipient index, for bounce reports.
    remote: HashMap<u32, String>,
    /// Recipients delivered to a next hop without DSN that asked NOTIFY=SUCCESS.
    relayed: Vec<u32>,
}

pub struct Active {
    shard: usize,
    log: Rc<RefCell<ShardLog>>,
    committer: Rc<Committer>,
    qidgen: Rc<RefCell<QidGenerator>>,
    params: RefCell<Rc<ActiveParams>>,
    router: RefCell<Option<Rc<dyn Router>>>,
    incoming: RefCell<VecDeque<(QueueId, Option<Box<MessageRecord>>)>>,
    /// Content bytes kept in `incoming` (bounded by FRESH_CONTENT_BYTES).
    fresh_bytes: Cell<usize>,
    deferred: RefCell<BTreeSet<(u64, QueueId)>>,
    in_flight: RefCell<HashMap<QueueId, Flight>>,
    /// Messages that got their delay notice (delay_warning_time).
    delay_warned: RefCell<hashbrown::HashSet<QueueId>>,
    take_deferred_next: Cell<bool>,
    woken: Cell<bool>,
    waker: Cell<Option<Waker>>,
    closed: Cell<bool>,
}

impl Active {
    pub fn new(
        shard: usize,
        log: Rc<RefCell<ShardLog>>,
        committer: Rc<Committer>,
        qidgen: Rc<RefCell<QidGenerator>>,
        params: ActiveParams,
    ) -> Rc<Active> {
        let a = Rc::new(Active {
            shard,
            log,
            committer,
            qidgen,
            params: RefCell::new(Rc::new(params)),
            router: RefCell::new(None),
            incoming: RefCell::new(VecDeque::new()),
            fresh_bytes: Cell::new(0),
            deferred: RefCell::new(BTreeSet::new()),
            in_flight: RefCell::new(HashMap::new()),
            delay_warned: RefCell::new(hashbrown::HashSet::new()),
            take_deferred_next: Cell::new(false),
            woken: Cell::new(false),
            waker: Cell::new(None),
            closed: Cell::new(false),
        });
        a.load_from_index();
        a
    }

    fn params(&self) -> Rc<ActiveParams> {
        self.params.borrow().clone()
    }

    /// `sluice reload`: new resolve tables and queue parameters for every
    /// decision from now on (messages in flight finish under the old ones).
    pub fn set_params(&self, p: ActiveParams) {
        *self.params.borrow_mut() = Rc::new(p);
        self.wake();
    }

    pub fn set_router(&self, r: Rc<dyn Router>) {
        *self.router.borrow_mut() = Some(r);
    }

    /// Everything the log holds goes back to where it was: incoming and
    /// active to incoming (oldest first), deferred to the deferred queue.
    fn load_from_index(&self) {
        let log = self.log.borrow();
        let mut incoming: Vec<(u64, QueueId)> = Vec::new();
        let mut deferred = self.deferred.borrow_mut();
        for m in log.index().iter() {
            match m.state {
                QueueState::Incoming | QueueState::Active => {
                    incoming.push((m.arrival_us, m.qid.clone()))
                }
                QueueState::Deferred => {
                    deferred.insert((m.next_attempt_us.unwrap_or(0), m.qid.clone()));
                }
                QueueState::Hold | QueueState::Corrupt => {}
            }
        }
        incoming.sort();
        self.incoming
            .borrow_mut()
            .extend(incoming.into_iter().map(|(_, q)| (q, None)));
    }

    fn wake(&self) {
        self.woken.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    pub fn close(&self) {
        self.closed.set(true);
        self.wake();
    }

    /// A message smtpd (or pickup, or bounce) just made durable.
    pub fn accept_new(&self, rec: MessageRecord) {
        let mut q = self.incoming.borrow_mut();
        let bytes = self.fresh_bytes.get() + rec.content.len();
        let keep = q.len() < FRESH_CONTENT_LIMIT && bytes <= FRESH_CONTENT_BYTES;
        if keep {
            self.fresh_bytes.set(bytes);
        }
        q.push_back((rec.qid.clone(), keep.then(|| Box::new(rec))));
        drop(q);
        self.wake();
    }

    /// A released or requeued message (postsuper) becomes eligible now.
    pub fn make_due(&self, qid: QueueId) {
        self.deferred.borrow_mut().retain(|(_, q)| *q != qid);
        self.incoming.borrow_mut().push_back((qid, None));
        self.wake();
    }

    /// Every deferred message becomes due now (postqueue -f / sluice flush).
    pub fn flush(&self) {
        let all: Vec<QueueId> = std::mem::take(&mut *self.deferred.borrow_mut())
            .into_iter()
            .map(|(_, q)| q)
            .collect();
        let mut inc = self.incoming.borrow_mut();
        for q in all {
            inc.push_back((q, None));
        }
        drop(inc);
        self.wake();
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.borrow().len()
    }

    /// Take the next message: incoming and due deferred alternately.
    fn next_candidate(&self, now: u64) -> Option<(QueueId, Option<Box<MessageRecord>>)> {
        let due = {
            let d = self.deferred.borrow();
            d.first().is_some_and(|(t, _)| *t <= now)
        };
        let has_incoming = !self.incoming.borrow().is_empty();
        let take_deferred = due && (!has_incoming || self.take_deferred_next.get());
        self.take_deferred_next.set(!take_deferred);
        if take_deferred {
            let (_, q) = self.deferred.borrow_mut().pop_first()?;
            Some((q, None))
        } else {
            let next = self.incoming.borrow_mut().pop_front();
            if let Some((_, Some(rec))) = &next {
                let kept = self.fresh_bytes.get();
                self.fresh_bytes.set(kept.saturating_sub(rec.content.len()));
            }
            next
        }
    }

    /// The feeder loop.
    pub async fn run(self: Rc<Self>) {
        loop {
            if self.closed.get() {
                break;
            }
            while self.in_flight.borrow().len() < self.params().active_limit.max(1) {
                let Some((qid, rec)) = self.next_candidate(now_us()) else {
                    break;
                };
                if self.in_flight.borrow().contains_key(&qid) {
                    continue;
                }
                self.clone().activate(qid, rec).await;
            }
            let sleep_for = {
                let d = self.deferred.borrow();
                match d.first() {
                    Some((t, _)) => {
                        Duration::from_micros(t.saturating_sub(now_us())).min(IDLE_TICK)
                    }
                    None => IDLE_TICK,
                }
            };
            let wait = std::future::poll_fn(|cx| {
                if self.closed.get() || self.woken.replace(false) {
                    return Poll::Ready(());
                }
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            });
            futures_lite::future::or(wait, glommio::timer::sleep(sleep_for)).await;
        }
    }

    async fn activate(self: Rc<Self>, qid: QueueId, fresh: Option<Box<MessageRecord>>) {
        let now = now_us();
        let (sender, arrival_us, size, pending) = {
            let log = self.log.borrow();
            let Some(m) = log.index().get(&qid) else {
                return; // deleted meanwhile
            };
            if matches!(m.state, QueueState::Hold | QueueState::Corrupt) {
                return;
            }
            let pending: Vec<u32> = m
                .recipients
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.done)
                .map(|(i, _)| i as u32)
                .collect();
            (m.sender.clone(), m.arrival_us, m.size, pending)
        };
        if pending.is_empty() {
            // Everything was finished before a restart: only the wrap-up is left.
            self.in_flight.borrow_mut().insert(
                qid.clone(),
                Flight {
                    outstanding: 0,
                    remote: HashMap::new(),
                    relayed: Vec::new(),
                },
            );
            self.finish(&qid).await;
            return;
        }
        let rec = match fresh {
            Some(r) => *r,
            None => match self.log.borrow().read_message(&qid) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(target: "qmgr", "warning: {qid}: cannot read queue file: {e}");
                    return;
                }
            },
        };
        self.log.borrow_mut().set_active(&qid);
        tracing::info!(
            target: "qmgr",
            "{qid}: from=<{sender}>, size={size}, nrcpt={} (queue active)",
            rec.envelope.recipients.len()
        );
        let shared = Arc::new(MessageShared {
            origin: self.shard,
            qid: qid.clone(),
            sender,
            mail: rec.envelope.mail.clone(),
            arrival_us,
            active_us: now,
            content: Arc::new(rec.content),
            segment: None,
        });
        let mut groups: HashMap<Destination, Vec<QmgrEntry>> = HashMap::new();
        let mut immediate: Vec<(u32, RcptOutcome)> = Vec::new();
        for i in pending {
            let Some(r) = rec.envelope.recipients.get(i as usize) else {
                continue;
            };
            let resolved = resolve(&self.params().resolve, &r.address);
            if let Some((dsn, reason)) = resolved.error {
                immediate.push((i, RcptOutcome::Bounced { dsn, reason }));
                continue;
            }
            let dest = resolved.destination;
            if self.params().defer_transports.contains(&dest.transport) {
                immediate.push((
                    i,
                    RcptOutcome::Deferred {
                        dsn: "4.3.2".into(),
                        reason: "deferred transport".into(),
                    },
                ));
                continue;
            }
            if !matches!(dest.transport.as_str(), "smtp" | "relay") {
                immediate.push((
                    i,
                    RcptOutcome::Deferred {
                        dsn: "4.3.0".into(),
                        reason: format!(
                            "{} delivery is not available",
                            if dest.transport.starts_with("local") {
                                "local"
                            } else {
                                dest.transport.as_str()
                            }
                        ),
                    },
                ));
                continue;
            }
            let entry = QmgrEntry {
                msg: shared.clone(),
                rcpt: DeliveryRcpt {
                    index: i,
                    address: r.address.clone(),
                    orcpt: r.orcpt.clone(),
                    notify: r.notify,
                },
            };
            groups.entry(dest).or_default().push(entry);
        }
        let outstanding = groups.len() as u32 + u32::from(!immediate.is_empty());
        self.in_flight.borrow_mut().insert(
            qid.clone(),
            Flight {
                outstanding,
                remote: HashMap::new(),
                relayed: Vec::new(),
            },
        );
        let router = self.router.borrow().clone();
        if let Some(router) = router {
            for (dest, entries) in groups {
                router.route(dest, entries);
            }
        }
        if !immediate.is_empty() {
            for (i, o) in &immediate {
                if let Some(r) = rec.envelope.recipients.get(*i as usize) {
                    log_local_outcome(&qid, r, o, arrival_us, now);
                }
            }
            let me = self.clone();
            let report = sluice_agents::delivery::DeliveryReport {
                outcomes: immediate,
                relay: "none".into(),
                conn_use: 0,
                setup_s: 0.0,
                transmission_s: 0.0,
                feedback: sluice_agents::delivery::Feedback::Success,
                peer_dsn: false,
            };
            glommio::spawn_local(async move {
                me.on_outcome(Outcome {
                    qid,
                    destination: Destination::new("none", "none"),
                    report,
                })
                .await;
            })
            .detach();
        }
    }

    /// A delivery's results: make them durable, then see what is left.
    pub async fn on_outcome(self: Rc<Self>, o: Outcome) {
        let now = now_us();
        let (arrival, null_sender, forced) = {
            let log = self.log.borrow();
            match log.index().get(&o.qid) {
                Some(m) => (m.arrival_us, m.sender.is_empty(), m.forced_expire),
                None => {
                    // Deleted (postsuper -d) while in flight.
                    self.in_flight.borrow_mut().remove(&o.qid);
                    return;
                }
            }
        };
        let expired =
            forced || backoff::is_expired(arrival, now, &self.params().backoff, null_sender);
        let mut records = Vec::with_capacity(o.report.outcomes.len());
        for (idx, outcome) in &o.report.outcomes {
            let status = match outcome {
                RcptOutcome::Delivered { .. } => {
                    if let Some(f) = self.in_flight.borrow_mut().get_mut(&o.qid) {
                        if !o.report.peer_dsn {
                            f.relayed.push(*idx);
                        }
                    }
                    RecipientStatus::Delivered
                }
                RcptOutcome::Bounced { dsn, reason } => {
                    self.note_remote(&o.qid, *idx, &o.report.relay);
                    RecipientStatus::Bounced {
                        reason: format!("{dsn} {reason}"),
                    }
                }
                RcptOutcome::Deferred { dsn, reason } if expired => {
                    self.note_remote(&o.qid, *idx, &o.report.relay);
                    tracing::info!(target: "qmgr", "{}: status=expired, returned to sender ({reason})", o.qid);
                    RecipientStatus::Bounced {
                        reason: format!("{dsn} {reason}"),
                    }
                }
                RcptOutcome::Deferred { reason, .. } => RecipientStatus::Deferred {
                    reason: reason.clone(),
                    next_attempt_us: backoff::next_attempt_us(arrival, now, &self.params().backoff),
                },
            };
            records.push(Record::RcptStatus {
                qid: o.qid.clone(),
                rcpt: *idx,
                status,
            });
        }
        if let Err(e) = self.committer.commit_all(&records).await {
            // Not durable: the recipients stay pending and are tried again
            // at the next queue run; never acknowledged as done.
            tracing::warn!(target: "qmgr", "warning: {}: cannot record delivery status: {e:?}", o.qid);
        }
        let last = {
            let mut f = self.in_flight.borrow_mut();
            match f.get_mut(&o.qid) {
                Some(fl) => {
                    fl.outstanding = fl.outstanding.saturating_sub(1);
                    fl.outstanding == 0
                }
                None => false,
            }
        };
        if last {
            self.finish(&o.qid).await;
        }
    }

    fn note_remote(&self, qid: &QueueId, idx: u32, relay: &str) {
        if relay != "none" {
            if let Some(f) = self.in_flight.borrow_mut().get_mut(qid) {
                f.remote.insert(idx, relay.to_string());
            }
        }
    }

    /// No delivery in flight for `qid`: bounce and remove, or defer.
    async fn finish(&self, qid: &QueueId) {
        let flight = self.in_flight.borrow_mut().remove(qid);
        let meta = match self.log.borrow().index().get(qid) {
            Some(m) => m.clone(),
            None => return,
        };
        if meta.recipients.iter().any(|r| !r.done) {
            let next = meta.next_attempt_us.unwrap_or_else(|| {
                backoff::next_attempt_us(meta.arrival_us, now_us(), &self.params().backoff)
            });
            if meta.state != QueueState::Hold {
                self.deferred.borrow_mut().insert((next, qid.clone()));
            }
            let warned = self.delay_warned.borrow().contains(qid);
            if backoff::delay_warning_due(meta.arrival_us, now_us(), &self.params().backoff, warned)
            {
                // One delay notice per message (remembered in memory: a
                // restart may send a second one, never none).
                self.delay_warned.borrow_mut().insert(qid.clone());
                let delayed: Vec<(u32, String, Option<String>, String)> = meta
                    .recipients
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| !r.done)
                    .map(|(i, r)| {
                        (
                            i as u32,
                            r.address.clone(),
                            r.orcpt.clone(),
                            r.reason.clone().unwrap_or_default(),
                        )
                    })
                    .collect();
                let remote = HashMap::new();
                self.send_notice(NoticeKind::Delay, qid, &meta, &delayed, &remote)
                    .await;
            }
            self.wake();
            return;
        }
        self.delay_warned.borrow_mut().remove(qid);
        // NOTIFY=SUCCESS recipients handed to a next hop without DSN get a
        // "relayed" notice (bounce::build leaves out those who did not ask).
        if let Some(f) = flight.as_ref().filter(|f| !f.relayed.is_empty()) {
            let relayed: Vec<(u32, String, Option<String>, String)> = f
                .relayed
                .iter()
                .filter_map(|i| meta.recipients.get(*i as usize).map(|r| (*i, r)))
                .map(|(i, r)| {
                    (
                        i,
                        r.address.clone(),
                        r.orcpt.clone(),
                        "2.0.0 delivery via a next hop without DSN".to_string(),
                    )
                })
                .collect();
            let remote = f.remote.clone();
            // Best effort: a success notice is not worth keeping mail for.
            self.send_notice(NoticeKind::Success, qid, &meta, &relayed, &remote)
                .await;
        }
        // Every recipient is finished. Bounce the failed ones first, so
        // that the notice is durable before the original goes.
        let failed: Vec<(u32, &sluice_storage::index::RcptMeta)> = meta
            .recipients
            .iter()
            .enumerate()
            .filter(|(_, r)| r.reason.is_some())
            .map(|(i, r)| (i as u32, r))
            .collect();
        let mut ok = true;
        if !failed.is_empty() {
            let remote = flight
                .as_ref()
                .map(|f| f.remote.clone())
                .unwrap_or_default();
            let failed: Vec<(u32, String, Option<String>, String)> = failed
                .iter()
                .map(|(i, r)| {
                    (
                        *i,
                        r.address.clone(),
                        r.orcpt.clone(),
                        r.reason.clone().unwrap_or_default(),
                    )
                })
                .collect();
            ok = self
                .send_notice(NoticeKind::Failure, qid, &meta, &failed, &remote)
                .await;
        }
        if !ok {
            // The notice is not durable: keep the message and try again later.
            self.deferred.borrow_mut().insert((
                now_us() + self.params().backoff.minimal_backoff.as_micros() as u64,
                qid.clone(),
            ));
            return;
        }
        match self
            .committer
            .commit(&Record::Done { qid: qid.clone() })
            .await
        {
            Ok(()) => tracing::info!(target: "qmgr", "{qid}: removed"),
            Err(e) => {
                tracing::warn!(target: "qmgr", "warning: {qid}: cannot record completion: {e:?}");
                self.deferred
                    .borrow_mut()
                    .insert((now_us() + 1_000_000, qid.clone()));
            }
        }
    }

    /// Build a notice (failure, delay or success) for the original's
    /// sender about `items` — (recipient index, address, ORCPT, stored
    /// "dsn reason") — and queue it durably. `false` when it could not be
    /// made durable (the caller keeps the original and tries again);
    /// `true` also when no notice is due (null sender: a double bounce is
    /// logged and dropped, as Postfix does with its default
    /// notify_classes; or NOTIFY said no).
    async fn send_notice(
        &self,
        kind: NoticeKind,
        qid: &QueueId,
        meta: &sluice_storage::index::MessageMeta,
        failed: &[(u32, String, Option<String>, String)],
        remote: &HashMap<u32, String>,
    ) -> bool {
        if meta.sender.is_empty() {
            if kind == NoticeKind::Failure {
                tracing::info!(target: "bounce", "{qid}: undeliverable null-sender message discarded (double bounce)");
            }
            return true;
        }
        let (default_dsn, action) = match kind {
            NoticeKind::Failure => ("5.0.0", Action::Failed),
            NoticeKind::Delay => ("4.0.0", Action::Delayed),
            NoticeKind::Success => ("2.0.0", Action::Relayed),
        };
        let original = match self.log.borrow().read_message(qid) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(target: "bounce", "warning: {qid}: cannot read the original for a notice: {e}");
                return false;
            }
        };
        let rcpts: Vec<NoticeRcpt> = failed
            .iter()
            .map(|(i, address, orcpt, stored)| {
                let (dsn, text) = match stored.split_once(' ') {
                    Some((d, t)) if d.chars().all(|c| c.is_ascii_digit() || c == '.') => (d, t),
                    _ => (default_dsn, stored.as_str()),
                };
                let remote_mta = remote
                    .get(i)
                    .map(|s| s.split('[').next().unwrap_or(s).to_string());
                NoticeRcpt {
                    address: address.clone(),
                    original: None,
                    orcpt: orcpt.clone(),
                    notify: original
                        .envelope
                        .recipients
                        .get(*i as usize)
                        .map_or(Notify::NONE_GIVEN, |r| r.notify),
                    action,
                    status: dsn.to_string(),
                    diagnostic: remote_mta
                        .as_ref()
                        .map(|_| Diagnostic::smtp(diagnostic_reply(text))),
                    remote_mta,
                    reason: text.to_string(),
                }
            })
            .collect();
        let now = now_us();
        let new_qid = self.qidgen.borrow_mut().next(now);
        let Some(content) = bounce::build(
            &self.params().notice,
            &bounce::Notice {
                kind,
                qid: qid.as_str(),
                sender: &meta.sender,
                arrival_secs: (meta.arrival_us / 1_000_000) as i64,
                envid: original.envelope.mail.envid.as_deref(),
                ret: original.envelope.mail.ret,
                smtputf8: original.envelope.mail.smtputf8,
                recipients: &rcpts,
                original: &original.content,
                notice_qid: new_qid.as_str(),
                now_secs: (now / 1_000_000) as i64,
            },
        ) else {
            return true; // NOTIFY=NEVER (or no failure notice asked for)
        };
        // A notice is complete as built (Received:, Date:, Message-Id:,
        // From:), in Postfix's post_mail form: it does not go through cleanup.
        let record = Record::Message(MessageRecord {
            qid: new_qid.clone(),
            arrival_us: now,
            envelope: Envelope {
                sender: String::new(),
                recipients: vec![Recipient::new(meta.sender.clone())],
                mail: Default::default(),
            },
            client: None,
            content,
        });
        if self.committer.commit(&record).await.is_err() {
            return false;
        }
        tracing::info!(
            target: "cleanup",
            "{new_qid}: message-id=<{new_qid}@{}>",
            self.params().notice.myhostname
        );
        let what = match kind {
            NoticeKind::Failure => "non-delivery",
            NoticeKind::Delay => "delay",
            NoticeKind::Success => "delivery status",
        };
        tracing::info!(target: "bounce", "{qid}: sender {what} notification: {new_qid}");
        if let Record::Message(rec) = record {
            self.accept_new(rec);
        }
        true
    }
}

/// A remote reply inside a reason like `host x[1.2.3.4] said: 550 5.1.1 …
/// (in reply to RCPT TO command)`: the reply itself, for Diagnostic-Code.
fn diagnostic_reply(reason: &str) -> String {
    let r = reason.split_once(" said: ").map_or(reason, |(_, r)| r);
    r.rsplit_once(" (in reply to ")
        .map_or(r, |(a, _)| a)
        .to_string()
}

fn log_local_outcome(qid: &QueueId, r: &Recipient, o: &RcptOutcome, arrival_us: u64, now: u64) {
    let delay = crate::dispatch::fmt_delay(now.saturating_sub(arrival_us) as f64 / 1e6);
    tracing::info!(
        target: "qmgr",
        "{qid}: to=<{}>, relay=none, delay={delay}, delays={delay}/0/0/0, dsn={}, status={} ({})",
        r.address,
        o.dsn(),
        o.status_word(),
        o.reason()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostic_from_reason() {
        assert_eq!(
            diagnostic_reply("host mx.example[1.2.3.4] said: 550 5.1.1 <a@b>: unknown (in reply to RCPT TO command)"),
            "550 5.1.1 <a@b>: unknown"
        );
        assert_eq!(diagnostic_reply("plain"), "plain");
    }
}
