//! The in-memory index of one shard's queue.
//!
//! It maps each live message's queue ID to what `postqueue`, `postsuper`
//! and qmgr need without touching the disk ([`MessageMeta`]), and counts
//! live messages per segment. It is rebuilt by replaying records in log
//! order ([`Index::apply`]) and kept current by applying each committed
//! batch the same way, so that replay and live operation cannot disagree.
//!
//! # State rules (Postfix's, POSTFIX-FACTS §3 and §6)
//!
//! - `Message`: a new arrival is `incoming` (qmgr moves it to `active`
//!   in memory; after a restart it is `incoming` again, as Postfix moves
//!   `active` back to `incoming` at start-up). A second `Message` record
//!   for a known ID relocates it (compaction copies messages forward) and
//!   keeps its state.
//! - `RcptStatus`: delivered and bounced recipients are done (bounced ones
//!   keep their reason); a deferral keeps the recipient, records the reason
//!   and moves the message to `deferred` unless it is on hold.
//! - `Done`, `Delete`: the message leaves the queue.
//! - `Hold`: to `hold` (`postsuper -h`). `Release`: from `hold` to
//!   `deferred` (`postsuper -H`: "released from hold (to deferred)").
//!   `Requeue`: back to `incoming`, reasons and forced expiry cleared, hold
//!   released (`postsuper -r` sends mail through pickup/cleanup again).
//!   `Expire`: sets forced expiry (`postsuper -e`).
//! - A damaged record puts its message in `corrupt`, creating an entry
//!   when the message is otherwise unknown; `corrupt` is sticky: only
//!   `Done` or `Delete` ends it. Records for unknown IDs are otherwise
//!   ignored: their message finished and its segment was reclaimed.
//!
//! # Segment reclamation
//!
//! A segment may be deleted only when no live message has its `Message`
//! record in it **or in any older segment**. The prefix rule matters: a
//! segment without live messages can still hold the `Done` record, or the
//! "delivered" status, of a message whose `Message` record is in an older
//! segment that still exists; deleting it alone would resurrect that
//! message, or re-deliver a recipient, at the next replay.

use std::collections::BTreeMap;

use hashbrown::HashMap;

use crate::qid::QueueId;
use crate::record::{QueueState, RecipientStatus, Record};
use crate::segment::ScannedRecord;

/// Where a record lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    pub segment: u64,
    pub offset: u64,
    pub len: u64,
}

/// One recipient as the queue listing needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RcptMeta {
    pub address: String,
    pub orcpt: Option<String>,
    /// The last defer (or bounce) reason.
    pub reason: Option<String>,
    /// Delivered or bounced: no further attempts.
    pub done: bool,
}

/// One live message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageMeta {
    pub qid: QueueId,
    pub arrival_us: u64,
    /// Content bytes (`postqueue -p`'s Size column).
    pub size: u64,
    pub sender: String,
    pub recipients: Vec<RcptMeta>,
    pub state: QueueState,
    pub forced_expire: bool,
    /// The `Message` record (for a `corrupt` entry without one: the
    /// damaged bytes).
    pub location: Location,
    /// The latest next-attempt time of a deferral, if any.
    pub next_attempt_us: Option<u64>,
}

impl MessageMeta {
    /// Recipients that still need delivery.
    pub fn pending_recipients(&self) -> impl Iterator<Item = (usize, &RcptMeta)> {
        self.recipients.iter().enumerate().filter(|(_, r)| !r.done)
    }
}

/// The index of one shard's live messages.
#[derive(Debug, Default)]
pub struct Index {
    messages: HashMap<QueueId, MessageMeta>,
    /// Live messages per segment (by their `location`); segments with none
    /// are absent.
    live: BTreeMap<u64, usize>,
}

impl Index {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, qid: &QueueId) -> Option<&MessageMeta> {
        self.messages.get(qid)
    }

    /// Every live message, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &MessageMeta> {
        self.messages.values()
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Live messages whose record is in segment `seq`.
    pub fn live_in_segment(&self, seq: u64) -> usize {
        self.live.get(&seq).copied().unwrap_or(0)
    }

    /// The oldest segment holding a live message. Every older segment can
    /// be deleted (see the module doc).
    pub fn oldest_live_segment(&self) -> Option<u64> {
        self.live.keys().next().copied()
    }

    /// qmgr took the message into its active window (in memory only, as in
    /// Postfix; a restart makes it `incoming` again). Returns false when
    /// the message is unknown or on hold or corrupt.
    pub fn set_active(&mut self, qid: &QueueId) -> bool {
        match self.messages.get_mut(qid) {
            Some(m) if matches!(m.state, QueueState::Incoming | QueueState::Deferred) => {
                m.state = QueueState::Active;
                true
            }
            Some(m) => m.state == QueueState::Active,
            None => false,
        }
    }

    /// Applies one record found at `rec.offset` in segment `segment`.
    pub fn apply(&mut self, segment: u64, rec: &ScannedRecord) {
        let location = Location {
            segment,
            offset: rec.offset,
            len: rec.len,
        };
        match &rec.record {
            Record::Message(m) => {
                if let Some(old) = self.messages.get_mut(&m.qid) {
                    let from = old.location.segment;
                    old.location = location;
                    if old.recipients.is_empty() {
                        // A corrupt placeholder learns what it can.
                        old.arrival_us = m.arrival_us;
                        old.size = rec.content_len;
                        old.sender.clone_from(&m.envelope.sender);
                        old.recipients = rcpt_metas(&m.envelope.recipients);
                    }
                    self.unlink(from);
                    self.link(segment);
                    return;
                }
                self.messages.insert(
                    m.qid.clone(),
                    MessageMeta {
                        qid: m.qid.clone(),
                        arrival_us: m.arrival_us,
                        size: rec.content_len,
                        sender: m.envelope.sender.clone(),
                        recipients: rcpt_metas(&m.envelope.recipients),
                        state: QueueState::Incoming,
                        forced_expire: false,
                        location,
                        next_attempt_us: None,
                    },
                );
                self.link(segment);
            }
            Record::Done { qid } | Record::Delete { qid } => self.remove(qid),
            Record::RcptStatus { qid, rcpt, status } => {
                let Some(m) = self.messages.get_mut(qid) else {
                    return;
                };
                let Some(r) = usize::try_from(*rcpt)
                    .ok()
                    .and_then(|i| m.recipients.get_mut(i))
                else {
                    // The log contradicts itself: keep the message, but
                    // where an operator will look at it.
                    tracing::warn!(
                        "warning: {qid}: status for recipient {rcpt}, which the message does not have; message moved to the corrupt queue"
                    );
                    m.state = QueueState::Corrupt;
                    return;
                };
                match status {
                    RecipientStatus::Delivered => {
                        r.done = true;
                        r.reason = None;
                    }
                    RecipientStatus::Bounced { reason } => {
                        r.done = true;
                        r.reason = Some(reason.clone());
                    }
                    RecipientStatus::Deferred {
                        reason,
                        next_attempt_us,
                    } => {
                        r.reason = Some(reason.clone());
                        m.next_attempt_us = Some(*next_attempt_us);
                        if !matches!(m.state, QueueState::Hold | QueueState::Corrupt) {
                            m.state = QueueState::Deferred;
                        }
                    }
                }
            }
            Record::Hold { qid } => self.transition(qid, |m| m.state = QueueState::Hold),
            Record::Release { qid } => self.transition(qid, |m| {
                if m.state == QueueState::Hold {
                    m.state = QueueState::Deferred;
                }
            }),
            Record::Requeue { qid } => self.transition(qid, |m| {
                m.state = QueueState::Incoming;
                m.forced_expire = false;
                m.next_attempt_us = None;
                for r in &mut m.recipients {
                    r.reason = None;
                }
            }),
            Record::Expire { qid } => {
                if let Some(m) = self.messages.get_mut(qid) {
                    m.forced_expire = true;
                }
            }
            // About the log, not a message: recovery acts on it before
            // replaying (see `crate::log`).
            Record::Void { .. } => {}
        }
    }

    /// A damaged record for `qid` was found at `location`.
    pub fn mark_corrupt(&mut self, qid: &QueueId, location: Location) {
        if let Some(m) = self.messages.get_mut(qid) {
            m.state = QueueState::Corrupt;
            return;
        }
        self.messages.insert(
            qid.clone(),
            MessageMeta {
                qid: qid.clone(),
                arrival_us: qid.time_us().unwrap_or(0),
                size: 0,
                sender: String::new(),
                recipients: Vec::new(),
                state: QueueState::Corrupt,
                forced_expire: false,
                location,
                next_attempt_us: None,
            },
        );
        self.link(location.segment);
    }

    /// A state change that `corrupt` ignores.
    fn transition(&mut self, qid: &QueueId, f: impl FnOnce(&mut MessageMeta)) {
        if let Some(m) = self.messages.get_mut(qid) {
            if m.state != QueueState::Corrupt {
                f(m);
            }
        }
    }

    fn remove(&mut self, qid: &QueueId) {
        if let Some(m) = self.messages.remove(qid) {
            self.unlink(m.location.segment);
        }
    }

    fn link(&mut self, segment: u64) {
        *self.live.entry(segment).or_insert(0) += 1;
    }

    fn unlink(&mut self, segment: u64) {
        if let Some(n) = self.live.get_mut(&segment) {
            *n -= 1;
            if *n == 0 {
                self.live.remove(&segment);
            }
        }
    }
}

fn rcpt_metas(recipients: &[sluice_protocols::envelope::Recipient]) -> Vec<RcptMeta> {
    recipients
        .iter()
        .map(|r| RcptMeta {
            address: r.address.clone(),
            orcpt: r.orcpt.clone(),
            reason: None,
            done: false,
        })
        .collect()
}

#[cfg(test)]
mod tests;
