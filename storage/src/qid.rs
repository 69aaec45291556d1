//! Queue IDs and their per-shard generator.
//!
//! IDs follow Postfix's long-ID format (`enable_long_queue_ids = yes`,
//! POSTFIX-FACTS §5): the arrival second in base 52 (6 characters, more
//! after the year 2596), the microsecond in base 52 (4 characters), a `z`,
//! then — where Postfix puts the inode number — the shard number in base 51
//! (the same alphabet without `z`, so the last `z` always separates the
//! two). Example: `4jcJb04xz60`. The alphabet is in ASCII order, so IDs of
//! one width sort by time.
//!
//! Uniqueness: the shard suffix makes IDs from different shards differ;
//! within a shard the generator never hands out the same microsecond twice
//! (`t = max(now_us, last_us + 1)`), and after a restart it starts above
//! `floor_us`, the highest time recovered from the log, so a clock that
//! stepped back cannot repeat an ID.

use std::fmt;

use crate::StorageError;

/// Postfix's base-52 alphabet for long queue IDs: digits and consonants.
const ALPHABET: &[u8; 52] = b"0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";
/// Base 52 for the time fields.
const TIME_BASE: u64 = 52;
/// Base 51 (no `z`) for the shard field, as Postfix's inode field.
const SHARD_BASE: u64 = 51;
/// Width of the seconds field (Postfix: "at least 6").
const SECONDS_WIDTH: usize = 6;
/// Width of the microseconds field (52^4 > 10^6).
const USEC_WIDTH: usize = 4;
/// Postfix's long-ID column in `postqueue -p` is 17 wide; every ID we
/// accept fits it.
pub const MAX_QUEUE_ID_LEN: usize = 17;

/// Queue ID: letters and digits only, at most 17 chars, unique across
/// shards and restarts.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct QueueId(String);

impl QueueId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Accepts 1 to [`MAX_QUEUE_ID_LEN`] ASCII letters and digits (what
    /// `postsuper -d` and `postcat -q` are given).
    pub fn parse(s: &str) -> Result<QueueId, StorageError> {
        if Self::is_valid(s.as_bytes()) {
            Ok(QueueId(s.to_owned()))
        } else {
            Err(StorageError::InvalidQueueId(s.to_owned()))
        }
    }

    pub(crate) fn is_valid(s: &[u8]) -> bool {
        !s.is_empty() && s.len() <= MAX_QUEUE_ID_LEN && s.iter().all(u8::is_ascii_alphanumeric)
    }

    /// The time encoded in an ID made by [`QidGenerator`], in microseconds
    /// since the epoch; `None` for an ID of another shape.
    pub fn time_us(&self) -> Option<u64> {
        let (time, shard) = self.split()?;
        decode_base(shard, SHARD_BASE)?;
        let (secs, usec) = time.split_at(time.len() - USEC_WIDTH);
        let usec = decode_base(usec, TIME_BASE)?;
        if usec >= 1_000_000 {
            return None;
        }
        decode_base(secs, TIME_BASE)?
            .checked_mul(1_000_000)?
            .checked_add(usec)
    }

    /// The shard number encoded in an ID made by [`QidGenerator`].
    pub fn shard(&self) -> Option<u16> {
        let (_, shard) = self.split()?;
        u16::try_from(decode_base(shard, SHARD_BASE)?).ok()
    }

    /// Splits at the last `z` into (seconds+microseconds, shard).
    fn split(&self) -> Option<(&[u8], &[u8])> {
        let b = self.0.as_bytes();
        let z = memchr::memrchr(b'z', b)?;
        let (time, shard) = (&b[..z], &b[z + 1..]);
        (time.len() >= SECONDS_WIDTH + USEC_WIDTH && !shard.is_empty()).then_some((time, shard))
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn digit_value(c: u8, base: u64) -> Option<u64> {
    let v = ALPHABET.iter().position(|&a| a == c)? as u64;
    (v < base).then_some(v)
}

fn decode_base(digits: &[u8], base: u64) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, &c| {
        acc.checked_mul(base)?.checked_add(digit_value(c, base)?)
    })
}

/// Appends `value` in `base`, left-padded with `0` to at least `width`.
fn encode_base(out: &mut String, mut value: u64, base: u64, width: usize) {
    let mut digits = [0u8; 16]; // 52^16 > u64::MAX
    let mut n = 0;
    while value > 0 || n < width {
        digits[n] = ALPHABET[(value % base) as usize];
        value /= base;
        n += 1;
    }
    out.extend(digits[..n].iter().rev().map(|&d| char::from(d)));
}

/// Per-shard generator, Postfix long-ID style: seconds base 52 (6 chars),
/// microseconds base 52 (4), 'z', then the shard number in base 51
/// (alphabet without 'z').
///
/// Strictly increasing time per shard: `t = max(now_us, last_us + 1)`.
#[derive(Debug, Clone)]
pub struct QidGenerator {
    /// `z` followed by the shard number, computed once.
    suffix: String,
    last_us: u64,
}

impl QidGenerator {
    /// `floor_us`: the highest time recovered from the log
    /// ([`crate::log::RecoveryReport::max_arrival_us`]); every ID this
    /// generator makes encodes a later time.
    pub fn new(shard: u16, floor_us: u64) -> Self {
        let mut suffix = String::from("z");
        encode_base(&mut suffix, u64::from(shard), SHARD_BASE, 1);
        QidGenerator {
            suffix,
            last_us: floor_us,
        }
    }

    /// A new ID for a message arriving at `now_us` (microseconds since the
    /// epoch, read by the caller). Use [`QidGenerator::next_with_time`] to
    /// learn the time the ID encodes.
    pub fn next(&mut self, now_us: u64) -> QueueId {
        self.next_with_time(now_us).0
    }

    /// As [`QidGenerator::next`], also returning the time the ID encodes
    /// (`max(now_us, last + 1)`), the best `arrival_us` for the message.
    pub fn next_with_time(&mut self, now_us: u64) -> (QueueId, u64) {
        let t = now_us.max(self.last_us.saturating_add(1));
        self.last_us = t;
        let mut s = String::with_capacity(MAX_QUEUE_ID_LEN);
        encode_base(&mut s, t / 1_000_000, TIME_BASE, SECONDS_WIDTH);
        encode_base(&mut s, t % 1_000_000, TIME_BASE, USEC_WIDTH);
        s.push_str(&self.suffix);
        debug_assert!(QueueId::is_valid(s.as_bytes()), "{s}");
        (QueueId(s), t)
    }

    /// The time encoded in the last ID handed out (or the floor).
    pub fn last_us(&self) -> u64 {
        self.last_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    const NOW: u64 = 1_700_000_000_123_456;

    #[test]
    fn format_matches_postfix_long_ids() {
        let mut g = QidGenerator::new(0, 0);
        let id = g.next(NOW);
        assert_eq!(id.as_str().len(), 12);
        assert_eq!(&id.as_str()[10..], "z0");
        assert_eq!(id.time_us(), Some(NOW));
        assert_eq!(id.shard(), Some(0));
        // Postfix's observed example decodes as a time (inode in place of
        // our shard number does not fit a u16).
        let pf = QueueId::parse("4jcJb04xz6z1ShQN").unwrap();
        assert!(pf.time_us().is_some());
        assert_eq!(pf.shard(), None);
    }

    #[test]
    fn parse_rejects_non_alphanumerics_and_long_ids() {
        for bad in ["", "abc_def", "a b", "ABCDEF0123456789XY", "é"] {
            assert!(QueueId::parse(bad).is_err(), "{bad:?}");
        }
        for good in ["451ED9948E3", "4jcJb04xz6z1ShQN", "A"] {
            assert_eq!(QueueId::parse(good).unwrap().to_string(), good);
        }
    }

    #[test]
    fn backwards_clock_never_repeats() {
        let mut g = QidGenerator::new(3, 0);
        let mut seen = HashSet::new();
        let mut clock = NOW;
        for i in 0..2000u64 {
            // The clock steps back by a second every 100 IDs.
            clock = if i % 100 == 99 {
                clock - 1_000_000
            } else {
                clock + 7
            };
            let id = g.next(clock);
            assert!(seen.insert(id.clone()), "repeated {id}");
        }
    }

    #[test]
    fn restart_with_clock_behind_floor_continues_above_it() {
        let mut g = QidGenerator::new(1, 0);
        let last = (0..10).map(|_| g.next(NOW)).last().unwrap();
        let floor = last.time_us().unwrap();
        let mut restarted = QidGenerator::new(1, floor);
        let next = restarted.next(NOW - 60_000_000);
        assert!(next.time_us().unwrap() > floor);
        assert!(next > last);
    }

    #[test]
    fn shards_never_collide() {
        let mut seen = HashSet::new();
        for shard in [0u16, 1, 50, 51, 52, 2600, 2601, u16::MAX] {
            let mut g = QidGenerator::new(shard, 0);
            for _ in 0..50 {
                let id = g.next(NOW);
                assert_eq!(id.shard(), Some(shard));
                assert!(id.as_str().len() <= MAX_QUEUE_ID_LEN);
                assert!(seen.insert(id));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn ids_round_trip_and_increase(shard: u16, start in 0u64..u64::MAX / 2, steps in proptest::collection::vec(-5_000_000i64..5_000_000, 1..40)) {
            let mut g = QidGenerator::new(shard, 0);
            let mut now = start;
            let mut prev: Option<(QueueId, u64)> = None;
            for step in steps {
                now = now.saturating_add_signed(step);
                let (id, t) = g.next_with_time(now);
                prop_assert!(QueueId::parse(id.as_str()).is_ok());
                prop_assert_eq!(id.time_us(), Some(t));
                prop_assert_eq!(id.shard(), Some(shard));
                if let Some((p, pt)) = &prev {
                    prop_assert!(t > *pt);
                    prop_assert!(&id != p);
                }
                prev = Some((id, t));
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,30}") {
            if let Ok(id) = QueueId::parse(&s) {
                let _ = (id.time_us(), id.shard());
            }
        }
    }
}
