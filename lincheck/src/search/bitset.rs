//! The set of linearized operations, with what the search's memo needs: an O(1) hash and a
//! short canonical form.
//!
//! Operations are numbered in call order, so the set the search holds is almost always a run of
//! ones (everything long finished), a few mixed words (the operations in flight), then zeros.
//! The canonical form keeps only the middle: `lo` = how many leading words are all ones, and
//! the words from `lo` up to the last non-zero one. Two sets are equal exactly when their `lo`
//! and middles are, so the memo stores a handful of words per entry instead of the whole set.

/// A fixed-size set of operation ids with an incrementally maintained Zobrist hash.
#[derive(Clone, Debug)]
pub(crate) struct Bitset {
    words: Vec<u64>,
    /// Leading words that are all ones.
    lo: usize,
    /// One past the last non-zero word, never below `lo`.
    hi: usize,
    hash: u64,
}

impl Bitset {
    /// An empty set for ids `0..len`.
    pub(crate) fn new(len: usize) -> Bitset {
        Bitset {
            words: vec![0; len.div_ceil(64)],
            lo: 0,
            hi: 0,
            hash: 0,
        }
    }

    /// Whether `id` is in the set.
    #[cfg(test)]
    pub(crate) fn contains(&self, id: usize) -> bool {
        self.words[id / 64] & (1 << (id % 64)) != 0
    }

    /// Adds `id`, which must not be in the set.
    pub(crate) fn insert(&mut self, id: usize) {
        let word = id / 64;
        let bit = 1u64 << (id % 64);
        debug_assert_eq!(self.words[word] & bit, 0, "{id} inserted twice");
        self.words[word] |= bit;
        self.hash ^= zobrist(id);
        if word == self.lo {
            while self.lo < self.words.len() && self.words[self.lo] == u64::MAX {
                self.lo += 1;
            }
        }
        self.hi = self.hi.max(word + 1).max(self.lo);
    }

    /// Removes `id`, which must be in the set.
    pub(crate) fn remove(&mut self, id: usize) {
        let word = id / 64;
        let bit = 1u64 << (id % 64);
        debug_assert_ne!(self.words[word] & bit, 0, "{id} removed but absent");
        self.words[word] &= !bit;
        self.hash ^= zobrist(id);
        self.lo = self.lo.min(word);
        while self.hi > self.lo && self.words[self.hi - 1] == 0 {
            self.hi -= 1;
        }
    }

    /// The Zobrist hash of the set: equal sets have equal hashes.
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    /// The canonical form: leading all-ones words, and the words after them up to the last
    /// non-zero one.
    pub(crate) fn canonical(&self) -> (usize, &[u64]) {
        (self.lo, &self.words[self.lo..self.hi])
    }
}

/// A fixed pseudo-random 64-bit value per id (splitmix64), so that the XOR of the values of a
/// set's members is a well-mixed hash of the set.
fn zobrist(id: usize) -> u64 {
    let mut z = (id as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// The canonical form computed the slow way.
    fn canonical_naive(words: &[u64]) -> (usize, Vec<u64>) {
        let lo = words.iter().take_while(|&&w| w == u64::MAX).count();
        let hi = words
            .iter()
            .rposition(|&w| w != 0)
            .map_or(0, |i| i + 1)
            .max(lo);
        (lo, words[lo..hi].to_vec())
    }

    proptest! {
        /// Any sequence of toggles keeps the hash and canonical form equal to a recomputation.
        #[test]
        fn canonical_form_and_hash_follow_the_set(
            len in 1usize..300,
            toggles in prop::collection::vec(0usize..300, 0..600),
        ) {
            let mut set = Bitset::new(len);
            let mut model = BTreeSet::new();
            for id in toggles.into_iter().map(|t| t % len) {
                if model.insert(id) {
                    set.insert(id);
                } else {
                    model.remove(&id);
                    set.remove(id);
                }
                let (lo, middle) = set.canonical();
                let (lo_naive, middle_naive) = canonical_naive(&set.words);
                prop_assert_eq!(lo, lo_naive);
                prop_assert_eq!(middle, &middle_naive[..]);
                let hash = model.iter().fold(0, |h, &id| h ^ zobrist(id));
                prop_assert_eq!(set.hash(), hash);
                for id in 0..len {
                    prop_assert_eq!(set.contains(id), model.contains(&id));
                }
            }
        }
    }

    #[test]
    fn full_words_leave_the_middle() {
        let mut set = Bitset::new(200);
        for id in 0..130 {
            set.insert(id);
        }
        let (lo, middle) = set.canonical();
        assert_eq!(lo, 2);
        assert_eq!(middle, &[0b11]);
        set.remove(5);
        let (lo, middle) = set.canonical();
        assert_eq!(lo, 0);
        assert_eq!(middle, &[!(1 << 5), u64::MAX, 0b11]);
    }
}
