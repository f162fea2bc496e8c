//! A node's log as the checkers see it: for each held index, the entry's term and the
//! fingerprint of the log prefix ending there.

use super::hash;
use super::window::Window;
use raft::{Index, Term};

/// What the checkers keep of one log position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Held {
    /// The entry's term (the snapshot's term at the snapshot point; 0 at index 0).
    pub(crate) term: Term,
    /// The fingerprint of the log prefix ending at this index.
    pub(crate) hash: u64,
}

/// One node's log rebuilt from its `Persist` outputs with the same rules as `raft::Log`: from the
/// snapshot point (index 0 without a snapshot) to the last entry. Memory follows the held log:
/// indices the snapshot covers are forgotten.
#[derive(Clone, Debug)]
pub(crate) struct LogMirror {
    has_snapshot: bool,
    /// `held.start()` is the snapshot index; the window is never empty.
    held: Window<Held>,
}

impl LogMirror {
    /// The empty log.
    pub(crate) fn new() -> LogMirror {
        let mut mirror = LogMirror {
            has_snapshot: false,
            held: Window::new(0),
        };
        mirror.reset(false, Index(0), Term(0), hash::EMPTY_PREFIX);
        mirror
    }

    /// The index the snapshot covers up to (0 without one).
    pub(crate) fn snapshot_index(&self) -> Index {
        Index(self.held.start())
    }

    /// The last index, counting the snapshot.
    pub(crate) fn last_index(&self) -> Index {
        Index(self.held.end().saturating_sub(1))
    }

    /// The last entry (or the snapshot point).
    pub(crate) fn last(&self) -> Held {
        self.held.last().copied().unwrap_or_default()
    }

    /// The position at `index`, from the snapshot point to the last entry.
    pub(crate) fn held(&self, index: Index) -> Option<Held> {
        self.held.get(index.0).copied()
    }

    /// Whether an append starting at `first` fits: after the snapshot, at most one past the end.
    pub(crate) fn accepts_append_at(&self, first: Index) -> bool {
        first > self.snapshot_index() && first <= self.last_index().next()
    }

    /// Removes every entry from `first` on.
    pub(crate) fn truncate_from(&mut self, first: Index) {
        self.held.truncate(first.0);
    }

    /// Appends the next entry.
    pub(crate) fn push(&mut self, held: Held) {
        self.held.push(held);
    }

    /// Whether `raft::Log::install_snapshot` ignores a snapshot at `index` (not newer than the
    /// current one).
    pub(crate) fn ignores_snapshot(&self, index: Index) -> bool {
        self.has_snapshot && index <= self.snapshot_index()
    }

    /// Installs a snapshot as `raft::Log::install_snapshot` does: the entries after it stay when
    /// the log holds its last entry with the same term, otherwise the log becomes the snapshot.
    /// `hash` is the committed prefix's fingerprint at `index`; when the suffix stays, the
    /// caller has checked that the held fingerprint equals it.
    pub(crate) fn install_snapshot(&mut self, index: Index, term: Term, hash: u64) {
        if self.ignores_snapshot(index) {
            return;
        }
        if self.held(index).is_some_and(|held| held.term == term) {
            self.has_snapshot = true;
            self.held.forget_below(index.0);
        } else {
            self.reset(true, index, term, hash);
        }
    }

    /// Replaces the log by a snapshot point (or the empty prefix) with no entries after it.
    pub(crate) fn reset(&mut self, has_snapshot: bool, index: Index, term: Term, hash: u64) {
        self.has_snapshot = has_snapshot;
        self.held.reset(index.0);
        self.held.push(Held { term, hash });
    }
}
