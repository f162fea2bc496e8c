//! The replicated log: an optional snapshot covering a prefix, then the entries after it.
//!
//! The same type is the node's in-memory log and the log inside [`DurableState`]: the node applies
//! every [`Persist`] operation to its own copy with the same function a driver uses on its store,
//! so the two cannot drift apart.
//!
//! [`DurableState`]: crate::DurableState
//! [`Persist`]: crate::Persist

use crate::message::{Entry, Snapshot};
use crate::types::{Index, Term};

/// A snapshot plus the log entries that follow it, contiguous by index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Log {
    snapshot: Option<Snapshot>,
    /// `entries[k].index == first_index() + k`.
    entries: Vec<Entry>,
    /// Sum of `Entry::encoded_len` over `entries`.
    entry_bytes: usize,
}

/// A log whose parts do not fit together (only reachable from a corrupt durable state or a
/// driver bug; the core never produces one).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// Entries are not contiguous, or do not follow the snapshot or the existing log.
    #[error("entry {found} does not follow index {after}")]
    Gap {
        /// The index the entry should have followed.
        after: Index,
        /// The entry's index.
        found: Index,
    },
    /// Terms go backwards along the log.
    #[error("entry {index} has term {term}, lower than term {previous} before it")]
    TermRegression {
        /// Where the regression is.
        index: Index,
        /// The entry's term.
        term: Term,
        /// The term of the entry before it.
        previous: Term,
    },
    /// An append would replace entries already covered by the snapshot.
    #[error("append at {index} would rewrite the snapshot, which covers up to {snapshot_index}")]
    BeforeSnapshot {
        /// The first appended index.
        index: Index,
        /// The snapshot's last index.
        snapshot_index: Index,
    },
}

impl Log {
    /// Builds a log from a snapshot and the entries after it, checking that they fit together.
    pub fn from_parts(snapshot: Option<Snapshot>, entries: Vec<Entry>) -> Result<Log, LogError> {
        let mut log = Log {
            snapshot,
            entries: Vec::new(),
            entry_bytes: 0,
        };
        log.append(entries)?;
        Ok(log)
    }

    /// The snapshot, if the log has been compacted.
    #[must_use]
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// The last index covered by the snapshot (0 without one).
    #[must_use]
    pub fn snapshot_index(&self) -> Index {
        self.snapshot.as_ref().map_or(Index(0), |s| s.index)
    }

    /// The term of the snapshot's last entry (0 without one).
    #[must_use]
    pub fn snapshot_term(&self) -> Term {
        self.snapshot.as_ref().map_or(Term(0), |s| s.term)
    }

    /// The entries after the snapshot.
    #[must_use]
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The first index held as an entry (one past the snapshot).
    #[must_use]
    pub fn first_index(&self) -> Index {
        self.snapshot_index().next()
    }

    /// The last index in the log, counting the snapshot.
    #[must_use]
    pub fn last_index(&self) -> Index {
        self.snapshot_index().plus(self.entries.len() as u64)
    }

    /// The term of the last entry, counting the snapshot.
    #[must_use]
    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.snapshot_term(), |e| e.term)
    }

    /// The term at `index`: known for the snapshot's last index and every held entry; `None` for
    /// indices compacted away or past the end.
    #[must_use]
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.snapshot_index() {
            return Some(self.snapshot_term());
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`, if held.
    #[must_use]
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        let offset = index.0.checked_sub(self.first_index().0)?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Entries from `from` on, at most `max_entries` of them and at most `max_bytes` of encoded
    /// size, but always at least one if any exists at `from`.
    #[must_use]
    pub fn slice(&self, from: Index, max_entries: usize, max_bytes: usize) -> Vec<Entry> {
        let Some(start) = from.0.checked_sub(self.first_index().0) else {
            return Vec::new();
        };
        let Ok(start) = usize::try_from(start) else {
            return Vec::new();
        };
        let Some(available) = self.entries.get(start..) else {
            return Vec::new();
        };
        let count = if self.entry_bytes <= max_bytes {
            // All the held entries together fit the byte limit, so any run of them does.
            available.len().min(max_entries)
        } else {
            let mut bytes = 0;
            let mut count = 0;
            for entry in available.iter().take(max_entries) {
                bytes += entry.encoded_len();
                if count > 0 && bytes > max_bytes {
                    break;
                }
                count += 1;
            }
            count
        };
        available[..count].to_vec()
    }

    /// The first index of the run of entries with the same term as the entry at `index` (never
    /// below the first held entry).
    #[must_use]
    pub fn first_index_of_term_at(&self, index: Index) -> Index {
        let Some(term) = self.term_at(index) else {
            return index;
        };
        let mut first = index;
        while first > self.first_index() {
            match self.term_at(first.prev()) {
                Some(t) if t == term => first = first.prev(),
                _ => break,
            }
        }
        first
    }

    /// The last index holding an entry of `term`, searching held entries and the snapshot point.
    #[must_use]
    pub fn last_index_of_term(&self, term: Term) -> Option<Index> {
        // Terms never decrease along the log, so search from the end and stop once below `term`.
        for entry in self.entries.iter().rev() {
            if entry.term == term {
                return Some(entry.index);
            }
            if entry.term < term {
                return None;
            }
        }
        (self.snapshot.is_some() && self.snapshot_term() == term).then(|| self.snapshot_index())
    }

    /// Postcard size of the entries (what the labs call the Raft state, beside the hard state).
    #[must_use]
    pub fn entries_encoded_len(&self) -> usize {
        crate::message::varint_len(self.entries.len() as u64) + self.entry_bytes
    }

    /// Removes every entry from `entries[0].index` on, then appends `entries`. An empty list
    /// changes nothing.
    pub fn append(&mut self, entries: Vec<Entry>) -> Result<(), LogError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        if first.index <= self.snapshot_index() {
            return Err(LogError::BeforeSnapshot {
                index: first.index,
                snapshot_index: self.snapshot_index(),
            });
        }
        if first.index > self.last_index().next() {
            return Err(LogError::Gap {
                after: self.last_index(),
                found: first.index,
            });
        }
        // Validate before mutating, so an error leaves the log untouched.
        let mut previous_term = self.term_at(first.index.prev()).unwrap_or(Term(0));
        let mut expected = first.index;
        for entry in &entries {
            if entry.index != expected {
                return Err(LogError::Gap {
                    after: expected.prev(),
                    found: entry.index,
                });
            }
            if entry.term < previous_term {
                return Err(LogError::TermRegression {
                    index: entry.index,
                    term: entry.term,
                    previous: previous_term,
                });
            }
            previous_term = entry.term;
            expected = expected.next();
        }
        self.truncate_from(first.index);
        self.entry_bytes += entries.iter().map(Entry::encoded_len).sum::<usize>();
        self.entries.extend(entries);
        Ok(())
    }

    /// Installs `snapshot`. Entries after it are kept only when the log holds the snapshot's last
    /// entry with the same term (the snapshot then describes a prefix of this log); otherwise the
    /// whole log is replaced by the snapshot. A snapshot not newer than the current one changes
    /// nothing and returns false.
    pub fn install_snapshot(&mut self, snapshot: Snapshot) -> bool {
        if self.snapshot.is_some() && snapshot.index <= self.snapshot_index() {
            return false;
        }
        if self.term_at(snapshot.index) == Some(snapshot.term) {
            let keep_from = snapshot.index.next();
            let drop = usize::try_from(keep_from.0 - self.first_index().0).unwrap_or(usize::MAX);
            let drop = drop.min(self.entries.len());
            let removed: usize = self.entries[..drop].iter().map(Entry::encoded_len).sum();
            self.entries.drain(..drop);
            self.entry_bytes -= removed;
        } else {
            self.entries.clear();
            self.entry_bytes = 0;
        }
        self.snapshot = Some(snapshot);
        true
    }

    fn truncate_from(&mut self, index: Index) {
        let keep = usize::try_from(index.0 - self.first_index().0).unwrap_or(usize::MAX);
        if keep < self.entries.len() {
            let removed: usize = self.entries[keep..].iter().map(Entry::encoded_len).sum();
            self.entries.truncate(keep);
            self.entry_bytes -= removed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index: Index(index),
            term: Term(term),
            command: vec![index as u8].into(),
        }
    }

    fn log_of(terms: &[u64]) -> Log {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(k, t)| entry(k as u64 + 1, *t))
            .collect();
        Log::from_parts(None, entries).unwrap()
    }

    #[test]
    fn append_truncates_from_first_new_index() {
        let mut log = log_of(&[1, 1, 2, 2]);
        log.append(vec![entry(3, 3)]).unwrap();
        assert_eq!(log.last_index(), Index(3));
        assert_eq!(log.term_at(Index(3)), Some(Term(3)));
        assert_eq!(log.term_at(Index(4)), None);
    }

    #[test]
    fn append_rejects_gaps_and_term_regressions_without_change() {
        let mut log = log_of(&[1, 2]);
        assert!(matches!(
            log.append(vec![entry(4, 2)]),
            Err(LogError::Gap { .. })
        ));
        assert!(matches!(
            log.append(vec![entry(3, 1)]),
            Err(LogError::TermRegression { .. })
        ));
        assert_eq!(log, log_of(&[1, 2]));
    }

    #[test]
    fn entry_bytes_track_postcard_size() {
        let mut log = log_of(&[1, 1, 2]);
        log.append(vec![entry(2, 3), entry(3, 3)]).unwrap();
        let encoded = postcard::to_allocvec(log.entries()).unwrap();
        assert_eq!(log.entries_encoded_len(), encoded.len());
        log.install_snapshot(Snapshot {
            index: Index(2),
            term: Term(3),
            data: vec![],
        });
        let encoded = postcard::to_allocvec(log.entries()).unwrap();
        assert_eq!(log.entries_encoded_len(), encoded.len());
    }

    #[test]
    fn snapshot_keeps_suffix_only_when_it_describes_a_prefix() {
        let mut log = log_of(&[1, 1, 2, 2]);
        assert!(log.install_snapshot(Snapshot {
            index: Index(2),
            term: Term(1),
            data: vec![],
        }));
        assert_eq!(log.first_index(), Index(3));
        assert_eq!(log.last_index(), Index(4));

        let mut log = log_of(&[1, 1, 2, 2]);
        log.install_snapshot(Snapshot {
            index: Index(3),
            term: Term(5),
            data: vec![],
        });
        assert_eq!(log.last_index(), Index(3));
        assert!(log.entries().is_empty());
        assert_eq!(log.last_term(), Term(5));
    }

    #[test]
    fn older_snapshot_is_ignored() {
        let mut log = log_of(&[1, 1, 2, 2]);
        let snap = |i| Snapshot {
            index: Index(i),
            term: Term(1),
            data: vec![],
        };
        assert!(log.install_snapshot(snap(2)));
        assert!(!log.install_snapshot(snap(1)));
        assert_eq!(log.snapshot_index(), Index(2));
    }

    #[test]
    fn slice_respects_limits_but_sends_at_least_one() {
        let log = log_of(&[1, 1, 1, 1]);
        assert_eq!(log.slice(Index(2), 2, usize::MAX).len(), 2);
        assert_eq!(log.slice(Index(2), 10, 1).len(), 1);
        assert_eq!(log.slice(Index(5), 10, 100).len(), 0);
        assert_eq!(log.slice(Index(0), 10, 100).len(), 0);
        // Byte limits between the whole log's size and one entry's cut the run short.
        let one = log.entries()[0].encoded_len();
        assert_eq!(log.slice(Index(1), 10, 2 * one).len(), 2);
        assert_eq!(log.slice(Index(1), 10, 4 * one - 1).len(), 3);
        assert_eq!(log.slice(Index(1), 10, 4 * one).len(), 4);
        assert_eq!(log.slice(Index(2), 2, 4 * one).len(), 2);
    }

    #[test]
    fn term_boundaries() {
        let log = log_of(&[1, 1, 2, 2, 2, 4]);
        assert_eq!(log.first_index_of_term_at(Index(5)), Index(3));
        assert_eq!(log.last_index_of_term(Term(2)), Some(Index(5)));
        assert_eq!(log.last_index_of_term(Term(3)), None);
    }
}
