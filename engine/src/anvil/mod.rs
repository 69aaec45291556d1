//! anvil: per-client connection counts and request rates, as Postfix's
//! anvil(8) keeps them for smtpd's `smtpd_client_*_limit` parameters.
//!
//! **Role.** Counts, per (service, client address): simultaneous
//! connections, and within the current rate window connection attempts,
//! MAIL FROM requests, RCPT TO requests and new TLS sessions. It answers
//! with numbers; smtpd compares them with its own limits (which a master.cf
//! `-o` may set per service), logs and replies, as Postfix does.
//!
//! **Sharding.** A client's connections land on different shards
//! (SO_REUSEPORT hashes the 4-tuple), so one shard owns each client's
//! entry: [`shard_for_client`]. Sessions on other shards ask it over the
//! mesh ([`service`]); the owner answers from this core. No state is
//! shared between shards.
//!
//! **Windows, as anvil.c has them.** A fixed window of
//! `anvil_rate_time_unit` (60s) starts with a client's first event; the
//! first event after `start + unit` starts a new window and resets every
//! rate (a connect then counts 1, as `ANVIL_REMOTE_NEXT_CONN` does). The
//! connection count is not a rate and is never reset.
//!
//! **Bounds.** An entry whose connection count drops to 0 (or that was
//! created by a MAIL/RCPT event alone) is forgotten `anvil_rate_time_unit`
//! later, as Postfix's `anvil_remote_expire` timer does; the sweep runs at
//! most once per time unit, from the calls themselves (no timer). The table
//! holds at most [`ANVIL_TABLE_LIMIT`] entries per shard: a new client at
//! the cap evicts the longest-idle entry; with no idle entry at all (the
//! cap of live connections on one shard) the new client is not tracked and
//! gets the counts of a first event.
//!
//! **Trust.** The keys are client addresses from accepted sockets; nothing
//! here parses network input. Pure: no I/O, no clock (`now` is an
//! argument), so it is tested without an executor.

pub mod client;
pub mod service;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hashbrown::HashMap;

/// Entries per shard. Live entries are bounded by the sessions the shard's
/// clients hold (master.cf maxproc, default 100); the rest are clients idle
/// for less than `anvil_rate_time_unit`. 100,000 entries of ~100 bytes is
/// ~10 MB per shard at worst.
pub const ANVIL_TABLE_LIMIT: usize = 100_000;

/// Whose counts: Postfix's anvil ident `service:address`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey {
    /// The master.cf service name (`smtp`, `127.0.0.1:2525`).
    pub service: String,
    pub addr: IpAddr,
}

/// A rate-limited request (anvil's `message`, `recipient`, `newtls`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Message,
    Recipient,
    NewTls,
}

/// What a connect reports: connections now open (this one included) and
/// connection attempts in the current window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectCounts {
    pub count: u32,
    pub rate: u32,
}

#[derive(Clone, Debug)]
struct Remote {
    count: u32,
    rate: u32,
    mail: u32,
    rcpt: u32,
    ntls: u32,
    /// Start of the current rate window.
    start: Instant,
    /// When the count last dropped to 0 (or the entry was made without a
    /// connection); `None` while connections are open.
    idle_since: Option<Instant>,
}

impl Remote {
    fn new(now: Instant) -> Remote {
        Remote {
            count: 0,
            rate: 0,
            mail: 0,
            rcpt: 0,
            ntls: 0,
            start: now,
            idle_since: Some(now),
        }
    }

    /// anvil.c: `if (start + unit < now)` a new window begins.
    fn roll_window(&mut self, now: Instant, unit: Duration) {
        if self.start + unit < now {
            self.start = now;
            self.rate = 0;
            self.mail = 0;
            self.rcpt = 0;
            self.ntls = 0;
        }
    }

    fn slot(&mut self, event: Event) -> &mut u32 {
        match event {
            Event::Message => &mut self.mail,
            Event::Recipient => &mut self.rcpt,
            Event::NewTls => &mut self.ntls,
        }
    }
}

/// One shard's slice of the anvil table.
#[derive(Debug)]
pub struct Anvil {
    table: HashMap<ClientKey, Remote>,
    time_unit: Duration,
    limit: usize,
    next_sweep: Option<Instant>,
}

impl Anvil {
    /// `time_unit` is anvil_rate_time_unit; `limit` the table's cap.
    pub fn new(time_unit: Duration, limit: usize) -> Anvil {
        Anvil {
            table: HashMap::new(),
            time_unit,
            limit: limit.max(1),
            next_sweep: None,
        }
    }

    /// A reloaded anvil_rate_time_unit applies from the next event.
    pub fn set_time_unit(&mut self, time_unit: Duration) {
        self.time_unit = time_unit;
    }

    /// A new connection from `key`; returns the counts including it.
    pub fn connect(&mut self, key: &ClientKey, now: Instant) -> ConnectCounts {
        let unit = self.time_unit;
        let Some(r) = self.entry(key, now) else {
            return ConnectCounts { count: 1, rate: 1 };
        };
        r.roll_window(now, unit);
        r.rate = r.rate.saturating_add(1);
        r.count = r.count.saturating_add(1);
        r.idle_since = None;
        ConnectCounts {
            count: r.count,
            rate: r.rate,
        }
    }

    /// A connection from `key` ended. An unknown key is ignored (anvil.c's
    /// `ANVIL_REMOTE_DROP_ONE`), so is a count already at 0.
    pub fn disconnect(&mut self, key: &ClientKey, now: Instant) {
        self.sweep(now);
        if let Some(r) = self.table.get_mut(key) {
            if r.count > 0 {
                r.count -= 1;
                if r.count == 0 {
                    r.idle_since = Some(now);
                }
            }
        }
    }

    /// One MAIL FROM, RCPT TO or TLS handshake from `key`; returns the
    /// number of such events in the current window, this one included.
    pub fn event(&mut self, key: &ClientKey, event: Event, now: Instant) -> u32 {
        let unit = self.time_unit;
        let Some(r) = self.entry(key, now) else {
            return 1;
        };
        r.roll_window(now, unit);
        let n = r.slot(event);
        *n = n.saturating_add(1);
        *n
    }

    /// Open connections from `key` (0 when unknown).
    pub fn count(&self, key: &ClientKey) -> u32 {
        self.table.get(key).map_or(0, |r| r.count)
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The entry for `key`, made if needed; `None` when the table is full
    /// of live connections.
    fn entry(&mut self, key: &ClientKey, now: Instant) -> Option<&mut Remote> {
        self.sweep(now);
        if !self.table.contains_key(key) {
            if self.table.len() >= self.limit {
                self.sweep_all(now);
            }
            if self.table.len() >= self.limit && !self.evict_longest_idle() {
                return None;
            }
            self.table.insert(key.clone(), Remote::new(now));
        }
        self.table.get_mut(key)
    }

    /// Forget idle entries, at most once per time unit.
    fn sweep(&mut self, now: Instant) {
        match self.next_sweep {
            Some(t) if now < t => {}
            _ => self.sweep_all(now),
        }
    }

    fn sweep_all(&mut self, now: Instant) {
        let unit = self.time_unit;
        self.table
            .retain(|_, r| r.idle_since.is_none_or(|idle| idle + unit > now));
        self.next_sweep = Some(now + unit);
    }

    fn evict_longest_idle(&mut self) -> bool {
        let oldest = self
            .table
            .iter()
            .filter_map(|(k, r)| r.idle_since.map(|t| (t, k)))
            .min_by_key(|(t, _)| *t)
            .map(|(_, k)| k.clone());
        match oldest {
            Some(k) => self.table.remove(&k).is_some(),
            None => false,
        }
    }
}

/// Which shard owns `addr`'s anvil entries: FNV-1a over the address's
/// bytes (IPv4-mapped IPv6 addresses as IPv4), so every shard agrees.
pub fn shard_for_client(addr: IpAddr, shards: usize) -> usize {
    let mut h: u64 = 0xcbf29ce484222325;
    let bytes: Vec<u8> = match addr.to_canonical() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % shards.max(1) as u64) as usize
}
