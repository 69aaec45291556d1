//! *Where* and *in what order*: one scheduling shard's per-destination
//! ready queues (STYLE.md, "When apart from where").
//!
//! Each destination (`transport:nexthop`) has a FIFO of deliveries, each
//! at most `<transport>_destination_recipient_limit` recipients of **one**
//! message, and a concurrency [`Window`]. [`Scheduler::next_delivery`] picks the
//! next delivery round-robin over transports, then round-robin over that
//! transport's destinations that are below their window (Postfix's
//! `qmgr_transport_select` / `qmgr_queue_select`); a transport stops at its
//! process limit (master.cf maxproc). [`Scheduler::done`] feeds the
//! delivery's outcome back into the window.
//!
//! **Dead destinations.** When a failure trips the failed-cohort rule the
//! destination is suspended for `minimal_backoff_time`: `done` hands back
//! every delivery still queued for it, and `enqueue` refuses new entries,
//! both to be deferred with "delivery temporarily suspended: <reason>". A
//! delivery in flight that succeeds, the end of the suspension, or
//! [`Scheduler::forget_dead`] (trigger F, `postqueue -f`) brings it back.
//!
//! **Bounds.** Entries waiting here are limited to
//! `qmgr_message_recipient_limit` (20000); `enqueue` gives back what does
//! not fit. Entries in flight are bounded by what was taken out of that.
//! Per-transport state exists once per transport name (few: master.cf and
//! transport_maps define them); per-destination state lives while the
//! destination has work, is busy, or is suspended.
//!
//! Not here (yet): Postfix's job preemption between messages of one
//! transport (entries of different messages to one destination are FIFO),
//! `*_destination_rate_delay`, and per-recipient queues for transports with
//! a recipient limit of 1 (Postfix names such a queue after the recipient
//! so that concurrency is per mailbox).
//!
//! Pure: no clock (time is an argument), no I/O, no executor.

use std::collections::VecDeque;
use std::hash::Hash;
use std::time::Duration;

use hashbrown::HashMap;
use sluice_agents::delivery::{Destination, Feedback};

use super::params::{TransportParams, TransportTable};
use super::window::Window;

/// What the scheduler needs to know about an entry: which message it
/// belongs to (entries of one message to one destination are batched).
pub trait Entry {
    type Key: Eq + Hash + Clone;
    fn message(&self) -> &Self::Key;
}

/// The scheduler's limits.
#[derive(Clone, Debug)]
pub struct SchedulerParams {
    pub transports: TransportTable,
    /// qmgr_message_recipient_limit (20000): entries waiting in queues.
    pub recipient_limit: usize,
    /// minimal_backoff_time (300s): how long a dead destination stays
    /// suspended.
    pub suspend: Duration,
}

impl Default for SchedulerParams {
    fn default() -> Self {
        SchedulerParams {
            transports: TransportTable::default(),
            recipient_limit: 20_000,
            suspend: Duration::from_secs(300),
        }
    }
}

/// Entries the scheduler did not take; the caller defers them.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub struct Refused<E> {
    pub entries: Vec<E>,
    pub why: Refusal,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The destination is dead; `reason` is the deferral text
    /// (`delivery temporarily suspended: connect to …: Connection refused`).
    Suspended { reason: String },
    /// qmgr_message_recipient_limit is reached; try again after some
    /// deliveries complete.
    Full,
}

struct Suspension {
    until_us: u64,
    reason: String,
}

struct Queue<E> {
    window: Window,
    busy: u32,
    todo: VecDeque<Vec<E>>,
    /// Listed in its transport's ready ring (possibly stale).
    in_ring: bool,
    dead: Option<Suspension>,
    /// After a failure that did not kill it, the destination's window and
    /// failed cohorts are remembered until then, even while it is idle:
    /// otherwise failures that come one at a time (each delivery ends
    /// before the next entry arrives) would never add up to a dead
    /// destination.
    failing_until_us: Option<u64>,
}

impl<E> Queue<E> {
    fn ready(&self) -> bool {
        self.dead.is_none() && !self.todo.is_empty() && self.window.may_start(self.busy)
    }

    fn idle(&self) -> bool {
        self.dead.is_none()
            && self.failing_until_us.is_none()
            && self.todo.is_empty()
            && self.busy == 0
    }
}

struct Transport {
    params: TransportParams,
    busy: u32,
    /// Destinations that were ready when listed (checked again on use).
    ready: VecDeque<Destination>,
    /// Listed in the scheduler's transport ring.
    in_ring: bool,
}

impl Transport {
    fn has_capacity(&self) -> bool {
        self.params.process_limit == 0 || self.busy < self.params.process_limit
    }
}

/// The per-destination ready queues of one scheduling shard.
pub struct Scheduler<E: Entry> {
    params: SchedulerParams,
    queues: HashMap<Destination, Queue<E>>,
    transports: HashMap<String, Transport>,
    /// Transports that had a ready destination and capacity when listed.
    ready: VecDeque<String>,
    /// Suspensions in the order they end (the suspension time is fixed,
    /// so this is also the order they began).
    suspensions: VecDeque<(u64, Destination)>,
    queued: usize,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl<E: Entry> Scheduler<E> {
    pub fn new(params: SchedulerParams) -> Scheduler<E> {
        Scheduler {
            params,
            queues: HashMap::new(),
            transports: HashMap::new(),
            ready: VecDeque::new(),
            suspensions: VecDeque::new(),
            queued: 0,
        }
    }

    /// Queues `entries` for `dest`, batching entries of the same message
    /// (in the order of their first appearance) up to the transport's
    /// recipient limit; the newest batch of a message still waiting is
    /// topped up first. Returns what it did not take: everything while the
    /// destination is suspended, the overflow past
    /// qmgr_message_recipient_limit.
    #[must_use = "refused entries must be deferred"]
    pub fn enqueue(
        &mut self,
        dest: Destination,
        mut entries: Vec<E>,
        now_us: u64,
    ) -> Option<Refused<E>> {
        self.expire_suspensions(now_us);
        if entries.is_empty() {
            return None;
        }
        if let Some(dead) = self.queues.get(&dest).and_then(|q| q.dead.as_ref()) {
            return Some(Refused {
                entries,
                why: Refusal::Suspended {
                    reason: dead.reason.clone(),
                },
            });
        }
        let room = self.params.recipient_limit.saturating_sub(self.queued);
        let overflow = (entries.len() > room).then(|| entries.split_off(room));
        if !entries.is_empty() {
            self.queued += entries.len();
            let params = self.transport(&dest.transport);
            let limit = match params.recipient_limit {
                0 => usize::MAX,
                n => usize::try_from(n).unwrap_or(usize::MAX),
            };
            let queue = self.queues.entry(dest.clone()).or_insert_with(|| Queue {
                window: Window::new(params.window),
                busy: 0,
                todo: VecDeque::new(),
                in_ring: false,
                dead: None,
                failing_until_us: None,
            });
            batch_into(&mut queue.todo, entries, limit);
            self.refresh(&dest);
        }
        overflow.map(|entries| Refused {
            entries,
            why: Refusal::Full,
        })
    }

    /// The next delivery to start, if any destination may start one. The
    /// destination counts it as busy until [`Scheduler::done`].
    pub fn next_delivery(&mut self) -> Option<(Destination, Vec<E>)> {
        while let Some(name) = self.ready.pop_front() {
            let Some(transport) = self.transports.get_mut(&name) else {
                continue;
            };
            transport.in_ring = false;
            if !transport.has_capacity() {
                continue;
            }
            while let Some(dest) = transport.ready.pop_front() {
                let Some(queue) = self.queues.get_mut(&dest) else {
                    continue;
                };
                queue.in_ring = false;
                if !queue.ready() {
                    continue;
                }
                let Some(batch) = queue.todo.pop_front() else {
                    continue;
                };
                self.queued -= batch.len();
                queue.busy += 1;
                transport.busy += 1;
                if queue.ready() {
                    queue.in_ring = true;
                    transport.ready.push_back(dest.clone());
                }
                if transport.has_capacity() && !transport.ready.is_empty() {
                    transport.in_ring = true;
                    self.ready.push_back(name);
                }
                return Some((dest, batch));
            }
        }
        None
    }

    /// A delivery to `dest` finished. `feedback` is the agent's verdict on
    /// the destination; `reason` is the failure's text (used when this
    /// failure kills the destination). Returns the entries still queued
    /// for a destination that just died, to be deferred with
    /// [`Scheduler::suspended`]'s reason.
    #[must_use]
    pub fn done(
        &mut self,
        dest: &Destination,
        feedback: Feedback,
        reason: &str,
        now_us: u64,
    ) -> Vec<E> {
        self.expire_suspensions(now_us);
        let mut dropped = Vec::new();
        let Some(queue) = self.queues.get_mut(dest) else {
            debug_assert!(false, "done() for unknown destination {dest}");
            return dropped;
        };
        match feedback {
            // busy still counts this delivery, as in Postfix.
            Feedback::Success => {
                queue.window.on_success(queue.busy);
                queue.dead = None;
                queue.failing_until_us = None;
            }
            Feedback::Failure => {
                let until_us = now_us.saturating_add(micros(self.params.suspend));
                if queue.failing_until_us.is_none() {
                    self.suspensions.push_back((until_us, dest.clone()));
                    queue.failing_until_us = Some(until_us);
                }
                if queue.window.on_failure() {
                    let until_us = now_us.saturating_add(micros(self.params.suspend));
                    queue.dead = Some(Suspension {
                        until_us,
                        reason: format!("delivery temporarily suspended: {reason}"),
                    });
                    self.suspensions.push_back((until_us, dest.clone()));
                    dropped = queue.todo.drain(..).flatten().collect();
                    self.queued -= dropped.len();
                }
            }
        }
        queue.busy = queue.busy.saturating_sub(1);
        if let Some(t) = self.transports.get_mut(&dest.transport) {
            t.busy = t.busy.saturating_sub(1);
        }
        self.refresh(dest);
        dropped
    }

    /// Ends every suspension now (trigger F: forget dead destinations).
    pub fn forget_dead(&mut self) {
        self.expire_suspensions(u64::MAX);
    }

    /// Ends the suspensions that are over at `now_us` (also done by
    /// `enqueue` and `done`).
    pub fn expire_suspensions(&mut self, now_us: u64) {
        while let Some((until_us, _)) = self.suspensions.front() {
            if *until_us > now_us {
                break;
            }
            let Some((until_us, dest)) = self.suspensions.pop_front() else {
                break;
            };
            if let Some(queue) = self.queues.get_mut(&dest) {
                // A success may have revived it already, and it may have
                // died again since (a later entry covers that).
                if queue.dead.as_ref().is_some_and(|d| d.until_us == until_us) {
                    queue.dead = None;
                    queue.window.revive(queue.busy);
                    self.refresh(&dest);
                } else if queue.failing_until_us.is_some_and(|u| u <= now_us) {
                    // Long enough without news: forget the failures.
                    queue.failing_until_us = None;
                    self.refresh(&dest);
                }
            }
        }
    }

    /// The deferral text while `dest` is suspended.
    pub fn suspended(&self, dest: &Destination) -> Option<&str> {
        self.queues
            .get(dest)
            .and_then(|q| q.dead.as_ref())
            .map(|d| d.reason.as_str())
    }

    /// Deliveries in flight to `dest`.
    pub fn busy(&self, dest: &Destination) -> u32 {
        self.queues.get(dest).map_or(0, |q| q.busy)
    }

    /// `dest`'s window (0 while suspended), if the scheduler knows it.
    pub fn concurrency(&self, dest: &Destination) -> Option<u32> {
        self.queues.get(dest).map(|q| q.window.concurrency())
    }

    /// Entries waiting (not in flight), over all destinations.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Entries waiting for `dest`.
    pub fn queued_for(&self, dest: &Destination) -> usize {
        self.queues
            .get(dest)
            .map_or(0, |q| q.todo.iter().map(Vec::len).sum())
    }

    /// Destinations with work, deliveries in flight, or a suspension.
    pub fn destinations(&self) -> usize {
        self.queues.len()
    }

    /// New limits (reload). Destinations already known keep their window
    /// state; transports take their new limits at once.
    pub fn set_params(&mut self, params: SchedulerParams) {
        for (name, t) in self.transports.iter_mut() {
            t.params = *params.transports.get(name);
        }
        self.params = params;
    }

    pub fn params(&self) -> &SchedulerParams {
        &self.params
    }

    /// The transport's parameters, creating its state on first use.
    fn transport(&mut self, name: &str) -> TransportParams {
        if let Some(t) = self.transports.get(name) {
            return t.params;
        }
        let params = *self.params.transports.get(name);
        self.transports.insert(
            name.to_string(),
            Transport {
                params,
                busy: 0,
                ready: VecDeque::new(),
                in_ring: false,
            },
        );
        params
    }

    /// Re-lists `dest` and its transport where they are ready and not
    /// listed, and forgets `dest` once it is idle.
    fn refresh(&mut self, dest: &Destination) {
        let Some(transport) = self.transports.get_mut(&dest.transport) else {
            return;
        };
        if let Some(queue) = self.queues.get_mut(dest) {
            if queue.idle() {
                self.queues.remove(dest);
            } else if queue.ready() && !queue.in_ring {
                queue.in_ring = true;
                transport.ready.push_back(dest.clone());
            }
        }
        if !transport.in_ring && transport.has_capacity() && !transport.ready.is_empty() {
            transport.in_ring = true;
            self.ready.push_back(dest.transport.clone());
        }
    }
}

/// Appends `entries` to `todo` in batches of one message, at most `limit`
/// each; the last batch of a message already waiting is filled first.
fn batch_into<E: Entry>(todo: &mut VecDeque<Vec<E>>, entries: Vec<E>, limit: usize) {
    let limit = limit.max(1);
    // Open batch of each message in this call: its index in `todo`.
    let mut open: HashMap<E::Key, usize> = HashMap::new();
    if let Some(last) = todo.back().and_then(|b| b.first()) {
        open.insert(last.message().clone(), todo.len() - 1);
    }
    for e in entries {
        let key = e.message();
        match open.get(key) {
            Some(&i) if todo[i].len() < limit => todo[i].push(e),
            _ => {
                open.insert(key.clone(), todo.len());
                todo.push_back(vec![e]);
            }
        }
    }
}

#[cfg(test)]
mod tests;
