//! A log-linear latency histogram (the HdrHistogram layout, cut down).
//!
//! Why not keep every sample and sort: a time-bounded run has no bound on
//! its sample count (at 5,000 msg/s an hour is 18 million samples, 144 MB),
//! while this histogram is a fixed 26 KiB per session whatever the run
//! length, records in O(1) without allocating, and merges by adding
//! counters. The price is resolution: values are exact below
//! [`SUB_BUCKETS`] µs and within 1/128 (0.8 %) above, which is finer than
//! the noise of any latency measured on a shared machine.
//!
//! Layout: values `v < 128` have a bucket each. Above that, each power of
//! two `[2^e, 2^(e+1))` is split into 128 equal buckets, so the bucket
//! width grows with the value and the relative error stays constant.

/// Bits of linear resolution inside each power of two.
const SUB_BITS: u32 = 7;
/// Buckets per power of two (and the number of exactly-kept small values).
pub const SUB_BUCKETS: u64 = 1 << SUB_BITS;
/// The largest value kept apart: 2^32 µs is 71 minutes, far beyond any
/// SMTP timeout (smtp_data_done_timeout is 600 s). Larger samples are
/// clamped into the last bucket; [`Histogram::max`] still reports them
/// exactly.
const MAX_TRACKABLE: u64 = (1 << 32) - 1;
const BUCKETS: usize = bucket_index(MAX_TRACKABLE) + 1;

/// The bucket holding `v` (`v <= MAX_TRACKABLE`).
const fn bucket_index(v: u64) -> usize {
    if v < SUB_BUCKETS {
        return v as usize;
    }
    // e = floor(log2 v) >= SUB_BITS; keep the top SUB_BITS+1 bits.
    let e = 63 - v.leading_zeros();
    let shift = e - SUB_BITS;
    let mantissa = v >> shift; // in [SUB_BUCKETS, 2 * SUB_BUCKETS)
    (shift as u64 * SUB_BUCKETS + mantissa) as usize
}

/// The largest value that falls in bucket `i` (inverse of [`bucket_index`]).
fn bucket_high(i: usize) -> u64 {
    let i = i as u64;
    if i < 2 * SUB_BUCKETS {
        return i;
    }
    let shift = i / SUB_BUCKETS - 1;
    let mantissa = i - shift * SUB_BUCKETS;
    ((mantissa + 1) << shift) - 1
}

/// Counts of samples (in microseconds) by log-linear bucket.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Record one sample, in microseconds.
    pub fn record(&mut self, us: u64) {
        self.counts[bucket_index(us.min(MAX_TRACKABLE))] += 1;
        self.total += 1;
        self.min = self.min.min(us);
        self.max = self.max.max(us);
    }

    /// Add another histogram's samples to this one.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest sample (exact), 0 when empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The smallest sample (exact), 0 when empty.
    pub fn min(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            self.min
        }
    }

    /// The `q`-quantile (`0.0..=1.0`) by nearest rank: the smallest value
    /// with at least `ceil(q * n)` samples at or below it. Reported as the
    /// top of its bucket (clamped to the exact min and max), so it never
    /// understates a latency. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        // Rank in 1..=total; ceil(q * n) computed in f64 is exact for any
        // sample count a run can reach (< 2^53).
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_high(i).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// [`Histogram::quantile`] in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.quantile(q) as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_are_contiguous_and_invert() {
        for v in (0..5000).chain([MAX_TRACKABLE - 1, MAX_TRACKABLE]) {
            let i = bucket_index(v);
            assert!(bucket_high(i) >= v, "v={v} i={i}");
            if i > 0 {
                assert!(bucket_high(i - 1) < v, "v={v} i={i}");
            }
        }
        assert_eq!(bucket_index(MAX_TRACKABLE), BUCKETS - 1);
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.9), 90);
        assert_eq!(h.quantile(0.99), 99);
        assert_eq!(h.quantile(0.999), 100);
        assert_eq!(h.quantile(1.0), 100);
        assert_eq!(h.quantile(0.0), 1);
        assert_eq!((h.min(), h.max(), h.count()), (1, 100, 100));
    }

    #[test]
    fn known_distribution_in_milliseconds() {
        // 1 ms .. 10 s in 1 ms steps: the q-quantile is q * 10,000 ms.
        let mut h = Histogram::new();
        for ms in 1..=10_000u64 {
            h.record(ms * 1000);
        }
        for (q, want_ms) in [
            (0.5, 5000.0),
            (0.9, 9000.0),
            (0.99, 9900.0),
            (0.999, 9990.0),
        ] {
            let got = h.quantile_ms(q);
            assert!(
                got >= want_ms && got <= want_ms * (1.0 + 1.0 / 128.0),
                "q={q} got={got} want={want_ms}"
            );
        }
        assert_eq!(h.quantile_ms(1.0), 10_000.0);
    }

    #[test]
    fn empty_and_clamped() {
        let h = Histogram::new();
        assert_eq!((h.quantile(0.5), h.min(), h.max(), h.count()), (0, 0, 0, 0));
        let mut h = Histogram::new();
        h.record(u64::MAX);
        assert_eq!(h.max(), u64::MAX);
        assert_eq!(h.quantile(0.5), u64::MAX, "clamped to the exact max");
    }

    #[test]
    fn merge_adds() {
        let (mut a, mut b) = (Histogram::new(), Histogram::new());
        (1..=50).for_each(|v| a.record(v));
        (51..=100).for_each(|v| b.record(v));
        a.merge(&b);
        assert_eq!(
            (a.count(), a.min(), a.max(), a.quantile(0.5)),
            (100, 1, 100, 50)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Against sorting: the histogram's quantile is within 1/128 above
        /// the exact nearest-rank quantile, and never below it.
        #[test]
        fn quantiles_match_sorting(mut v in proptest::collection::vec(0u64..50_000_000, 1..400),
                                   q in 0.0f64..=1.0) {
            let mut h = Histogram::new();
            v.iter().for_each(|&x| h.record(x));
            v.sort_unstable();
            let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
            let exact = v[rank - 1];
            let got = h.quantile(q);
            prop_assert!(got >= exact);
            prop_assert!(got as f64 <= exact as f64 * (1.0 + 1.0 / 128.0) + 1.0);
        }
    }
}
