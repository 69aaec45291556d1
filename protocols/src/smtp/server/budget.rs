//! The memory budget for message content in flight (`sluice_inflight_memory_limit`).
//!
//! **Role.** smtpd holds a message's content in memory from the first byte
//! of DATA (or BDAT) until the group commit has made it durable. Without a
//! bound, a few hundred slow clients each sending a `message_size_limit`
//! message could take gigabytes. A [`Budget`] is a byte count shared by the
//! sessions of one shard; each transaction holds a [`Reservation`] on it
//! that grows *before* its content buffer does, so the bytes held by all
//! content buffers never exceed the limit. A session whose reservation
//! cannot grow stops storing, reads the rest of the message and answers
//! `451 4.3.0 Error: insufficient system resources`: the client keeps the
//! message and retries, nothing is queued.
//!
//! **Trust.** None needed: plain accounting, no input parsing, no I/O.
//! Single-threaded (`Rc`/`Cell`): each shard owns its budget, as it owns
//! the rest of its state.
//!
//! **Release.** A reservation gives its bytes back when it is dropped, so
//! every way out of a transaction (end of data, RSET, a refused message,
//! a lost connection, a timeout, a failed commit, a cancelled task)
//! releases it without a code path having to remember to.
//!
//! **Growth.** [`Content`] grows its buffer in steps (doubling from 4 KiB,
//! then 1 MiB at a time; smaller steps when the budget is nearly spent)
//! with `reserve_exact`, so what is counted is what is allocated, not only
//! what was received; a buffer is never more than one step (1 MiB) larger
//! than its content.
//!
//! **Twice.** A buffer's capacity is reserved twice ([`COPIES`]): once for
//! itself and once for the copy cleanup makes when the message is stored
//! (content plus new headers, which the commit encodes once more after the
//! original is gone). So a message that was received whole is never
//! refused for memory afterwards. Not counted: the commit's batch buffer
//! (which holds the encoded records of a batch) and allocator slack;
//! measured, they add about half the limit at worst.

use std::cell::Cell;
use std::rc::Rc;

/// The smallest content buffer step.
const STEP_MIN: usize = 4 * 1024;
/// The largest content buffer step: the most a buffer exceeds its content.
const STEP_MAX: usize = 1024 * 1024;
/// Bytes reserved per byte of content buffer: the buffer and the copy made
/// while the message is stored.
pub const COPIES: u64 = 2;

/// A shard's byte budget for message content; cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct Budget(Rc<Account>);

#[derive(Debug)]
struct Account {
    /// 0 = unlimited.
    limit: Cell<u64>,
    /// Messages refused for want of room, for the log.
    refusals: Cell<u64>,
    used: Cell<u64>,
}

impl Budget {
    /// A budget of `limit` bytes; 0 means unlimited (Postfix's convention
    /// for size limits).
    pub fn new(limit: u64) -> Budget {
        Budget(Rc::new(Account {
            limit: Cell::new(limit),
            used: Cell::new(0),
            refusals: Cell::new(0),
        }))
    }

    /// No limit (tests, tools, trusted local submission).
    pub fn unlimited() -> Budget {
        Budget::new(0)
    }

    /// The limit in bytes (0 = unlimited).
    pub fn limit(&self) -> u64 {
        self.0.limit.get()
    }

    /// A new limit (configuration reload). Reservations already made stay;
    /// a lower limit only refuses growth until they are released.
    pub fn set_limit(&self, limit: u64) {
        self.0.limit.set(limit);
    }

    /// How many times a content buffer could not grow (a message refused).
    pub fn refusals(&self) -> u64 {
        self.0.refusals.get()
    }

    /// Bytes reserved now, by all reservations together.
    pub fn used(&self) -> u64 {
        self.0.used.get()
    }

    /// An empty reservation on this budget.
    pub fn reservation(&self) -> Reservation {
        Reservation {
            budget: self.clone(),
            bytes: 0,
        }
    }

    fn take(&self, n: u64) -> bool {
        let used = self.0.used.get();
        let Some(after) = used.checked_add(n) else {
            return false;
        };
        let limit = self.0.limit.get();
        if limit > 0 && after > limit {
            return false;
        }
        self.0.used.set(after);
        true
    }

    fn give(&self, n: u64) {
        let used = self.0.used.get();
        debug_assert!(n <= used, "released {n} of {used} reserved bytes");
        self.0.used.set(used.saturating_sub(n));
    }
}

/// Bytes held on a [`Budget`]; released when dropped.
#[derive(Debug)]
#[must_use = "a reservation is released when dropped"]
pub struct Reservation {
    budget: Budget,
    bytes: u64,
}

impl Reservation {
    /// Reserve `n` more bytes, all or nothing. `false`: the budget has no
    /// room, and nothing changed.
    pub fn try_grow(&mut self, n: u64) -> bool {
        if !self.budget.take(n) {
            return false;
        }
        self.bytes += n;
        true
    }

    /// Give back everything beyond `n` bytes.
    pub fn shrink_to(&mut self, n: u64) {
        if n < self.bytes {
            self.budget.give(self.bytes - n);
            self.bytes = n;
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give(self.bytes);
    }
}

/// Where the DATA scanner and BDAT put message content.
pub trait ContentSink {
    /// Append `bytes`; `false` if there is no memory for them (the sink is
    /// then unchanged).
    fn append(&mut self, bytes: &[u8]) -> bool;
    /// Drop what was stored and its memory (the message is refused).
    fn discard(&mut self);
}

/// A plain buffer: no budget, always room.
impl ContentSink for Vec<u8> {
    fn append(&mut self, bytes: &[u8]) -> bool {
        self.extend_from_slice(bytes);
        true
    }

    fn discard(&mut self) {
        *self = Vec::new();
    }
}

/// A content buffer whose capacity is reserved ([`COPIES`] times) on a
/// [`Budget`].
#[derive(Debug)]
pub struct Content {
    bytes: Vec<u8>,
    hold: Reservation,
}

impl Content {
    pub fn new(budget: &Budget) -> Content {
        Content {
            bytes: Vec::new(),
            hold: budget.reservation(),
        }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Make room for `more` bytes beyond the content, growing in steps;
    /// `false` if the budget cannot cover the larger buffer.
    pub fn try_reserve(&mut self, more: usize) -> bool {
        let Some(needed) = self.bytes.len().checked_add(more) else {
            return false;
        };
        let cap = self.bytes.capacity();
        if needed <= cap {
            return true;
        }
        // Near the limit the step halves until it fits, down to the bytes
        // needed: the last of the room is used in a few reallocations.
        let mut step = cap.clamp(STEP_MIN, STEP_MAX);
        let target = loop {
            let target = needed.max(cap.saturating_add(step));
            if self.hold.try_grow((target - cap) as u64 * COPIES) {
                break target;
            }
            if target == needed {
                let refusals = &self.hold.budget.0.refusals;
                refusals.set(refusals.get() + 1);
                return false;
            }
            step /= 2;
        };
        self.bytes.reserve_exact(target - self.bytes.len());
        debug_assert!(self.bytes.capacity() as u64 * COPIES <= self.hold.bytes());
        true
    }

    /// The content and the reservation that covers it.
    pub fn into_parts(self) -> (Vec<u8>, Reservation) {
        (self.bytes, self.hold)
    }
}

impl ContentSink for Content {
    fn append(&mut self, bytes: &[u8]) -> bool {
        if !self.try_reserve(bytes.len()) {
            return false;
        }
        self.bytes.extend_from_slice(bytes);
        true
    }

    fn discard(&mut self) {
        self.bytes = Vec::new();
        self.hold.shrink_to(0);
    }
}
