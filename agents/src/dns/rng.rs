//! A small seeded generator for shuffling equal-preference exchangers and
//! picking query IDs. Not cryptographic: query IDs only have to be hard to
//! guess for an off-path attacker who also has to match the question and
//! hit the source port the kernel chose.

/// xorshift64* seeded through splitmix64, so that nearby seeds (0, 1, 2…)
/// give unrelated streams and no seed yields the stuck all-zero state.
#[derive(Clone, Debug)]
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> Self {
        let s = splitmix64(seed);
        XorShift(if s == 0 { 0x9E37_79B9_7F4A_7C15 } else { s })
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n`; `n` must be non-zero. The modulo bias is
    /// irrelevant for lists of a few dozen entries.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        // Fisher–Yates, from the back.
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

pub(crate) fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Shuffle `items` in place, the same way for the same `seed`: what
/// Postfix's `smtp_randomize_addresses` does to a list of equally
/// preferred addresses, made reproducible for tests.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    XorShift::new(seed).shuffle(items);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn shuffle_is_a_deterministic_permutation(mut v in proptest::collection::vec(any::<u16>(), 0..40), seed: u64) {
            let mut a = v.clone();
            let mut b = v.clone();
            shuffle(&mut a, seed);
            shuffle(&mut b, seed);
            prop_assert_eq!(&a, &b);
            a.sort_unstable();
            v.sort_unstable();
            prop_assert_eq!(a, v);
        }
    }

    #[test]
    fn every_position_is_reachable() {
        // Over many seeds, each of three items lands first at least once.
        let mut seen = [false; 3];
        for seed in 0..64 {
            let mut v = [0usize, 1, 2];
            shuffle(&mut v, seed);
            seen[v[0]] = true;
        }
        assert_eq!(seen, [true; 3]);
    }
}
