//! Lowe's memo: the (linearized set, state) configurations the search has already explored.

use super::bitset::Bitset;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, DefaultHasher, Hash, Hasher};

/// A hasher for keys that are already well-mixed hashes.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// One memoized configuration: a linearized set (canonical form, its middle words in the
/// arena) and the state it led to.
struct Seen<S> {
    lo: u32,
    len: u32,
    start: usize,
    state: S,
    /// The next configuration with the same key (`u32::MAX` ends the chain).
    next: u32,
}

/// Lowe's memo: every (linearized set, state) the search has already explored.
pub(super) struct Memo<S> {
    heads: HashMap<u64, u32, BuildHasherDefault<IdentityHasher>>,
    seen: Vec<Seen<S>>,
    words: Vec<u64>,
}

impl<S: Clone + Eq + Hash> Memo<S> {
    pub(super) fn new() -> Memo<S> {
        Memo {
            heads: HashMap::default(),
            seen: Vec::new(),
            words: Vec::new(),
        }
    }

    /// Records (`set`, `state`); `false` if it was already there.
    pub(super) fn insert(&mut self, set: &Bitset, state: &S) -> bool {
        let (lo, middle) = set.canonical();
        // A fixed-key hasher: the memo behaves the same in every run.
        let mut hasher = DefaultHasher::new();
        state.hash(&mut hasher);
        let key = set.hash() ^ hasher.finish();
        let head = self.heads.get(&key).copied().unwrap_or(u32::MAX);
        let mut cursor = head;
        while let Some(seen) = self.seen.get(cursor as usize) {
            let start = seen.start;
            if seen.lo as usize == lo
                && self.words[start..start + seen.len as usize] == *middle
                && seen.state == *state
            {
                return false;
            }
            cursor = seen.next;
        }
        let index = self.seen.len() as u32;
        self.seen.push(Seen {
            lo: lo as u32,
            len: middle.len() as u32,
            start: self.words.len(),
            state: state.clone(),
            next: head,
        });
        self.words.extend_from_slice(middle);
        self.heads.insert(key, index);
        true
    }
}
