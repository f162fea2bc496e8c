//! Committed entries never change: once any node's commit index covers an entry, every node that
//! commits that index holds the same entry (and the same prefix before it), no node truncates at
//! or below its own commit index, and snapshots only ever cover the committed prefix.
//!
//! The checker keeps the committed record: for every index committed by any node, the term and
//! prefix fingerprint of the entry as first committed. A commit advance compares the node's
//! prefix fingerprint at the new commit index (or the record's end) with the record's, one
//! comparison for the whole advance, then extends the record with the newly committed entries.
//! It also keeps, per term, the highest index committed up to that term, for the leader
//! completeness checker. Cost: O(1) per step without a commit advance; O(log terms) per advance
//! plus O(1) per newly committed entry; O(1) per append and snapshot.

use super::Violation;
use super::mirror::LogMirror;
use super::window::Window;
use raft::{Entry, Index, Node, NodeId, Snapshot, Term};
use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Unbounded};

/// The checker's name in violations.
pub(crate) const NAME: &str = "committed_immutable";

/// One committed entry as first committed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Committed {
    /// The entry's term.
    pub(crate) term: Term,
    /// The fingerprint of the committed prefix ending at the entry.
    pub(crate) hash: u64,
    /// The first node whose commit index covered it.
    pub(crate) by: NodeId,
    /// That node's term then: the term in which the entry was committed.
    pub(crate) in_term: Term,
}

/// The committed-immutable checker; it also owns the committed record, which the leader
/// completeness checker reads.
#[derive(Clone, Debug)]
pub(crate) struct CommittedImmutable {
    ids: Vec<NodeId>,
    /// Index -> the committed entry; index 0 is the empty prefix. Forgets indices below every
    /// node's snapshot.
    record: Window<Committed>,
    /// The highest index committed in any term up to a given one, as a staircase: term ->
    /// the highest index committed in that term or an earlier one, kept only where it rises
    /// (values increase with keys). "The highest index committed before term T" is one lookup.
    highest_up_to_term: BTreeMap<Term, Index>,
    /// Per node: the commit index of its current incarnation (of the crashed one until restart).
    commit: Vec<Index>,
}

impl CommittedImmutable {
    pub(crate) fn new(ids: &[NodeId]) -> CommittedImmutable {
        let mut record = Window::new(0);
        record.push(Committed {
            term: Term(0),
            hash: super::hash::EMPTY_PREFIX,
            by: NodeId(0),
            in_term: Term(0),
        });
        CommittedImmutable {
            ids: ids.to_vec(),
            record,
            highest_up_to_term: BTreeMap::new(),
            commit: vec![Index(0); ids.len()],
        }
    }

    /// The highest index any node has committed.
    pub(crate) fn highest_committed(&self) -> Index {
        Index(self.record.end().saturating_sub(1))
    }

    /// The committed entry at `index`, if committed and not forgotten.
    pub(crate) fn at(&self, index: Index) -> Option<&Committed> {
        self.record.get(index.0)
    }

    /// The highest index committed in a term before `term`, with its record (`None` if
    /// forgotten, which happens only below every node's snapshot). O(log terms).
    pub(crate) fn highest_committed_before(
        &self,
        term: Term,
    ) -> Option<(Index, Option<&Committed>)> {
        let (_, &index) = self.highest_up_to_term.range(..term).next_back()?;
        Some((index, self.at(index)))
    }

    /// Records that `index` was committed in `term`; true if that is news for the leaders of
    /// later terms. Amortized O(log terms).
    fn note_committed_in(&mut self, term: Term, index: Index) -> bool {
        let covered = self
            .highest_up_to_term
            .range(..=term)
            .next_back()
            .is_some_and(|(_, &highest)| highest >= index);
        if covered {
            return false;
        }
        self.highest_up_to_term.insert(term, index);
        // Later terms whose step the new one reaches are no longer steps.
        while let Some((&later, &highest)) = self
            .highest_up_to_term
            .range((Excluded(term), Unbounded))
            .next()
            && highest <= index
        {
            self.highest_up_to_term.remove(&later);
        }
        true
    }

    /// Forgets the record below `index`.
    pub(crate) fn forget_below(&mut self, index: Index) {
        self.record.forget_below(index.0);
    }

    /// A `Persist::Append` from the node in `slot`: it must not replace committed entries.
    pub(crate) fn on_append(&self, slot: usize, entries: &[Entry]) -> Result<(), Violation> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let commit = self.commit[slot];
        if first.index > commit {
            return Ok(());
        }
        let committed = self.at(first.index).map_or(String::new(), |c| {
            format!(
                " (the committed entry there has {}, committed by {} in {})",
                c.term, c.by, c.in_term
            )
        });
        Err(Violation::new(
            NAME,
            format!(
                "{} persisted an append that rewrites its log from {} (new term {}), but it has \
                 committed up to {}{}: committed entries must never change",
                self.ids[slot], first.index, first.term, commit, committed
            ),
        ))
    }

    /// The committed prefix's fingerprint at a snapshot's index (the empty prefix's without a
    /// snapshot). A snapshot must cover committed entries only, with the committed term.
    pub(crate) fn snapshot_hash(
        &self,
        id: NodeId,
        snapshot: Option<&Snapshot>,
    ) -> Result<u64, Violation> {
        let Some(snapshot) = snapshot else {
            return Ok(super::hash::EMPTY_PREFIX);
        };
        let Some(committed) = self.at(snapshot.index) else {
            let why = if snapshot.index > self.highest_committed() {
                format!(
                    "beyond the highest index any node has committed ({})",
                    self.highest_committed()
                )
            } else {
                format!(
                    "below every snapshot the checkers still track ({}): a durable snapshot went \
                     backwards",
                    Index(self.record.start())
                )
            };
            return Err(Violation::new(
                NAME,
                format!(
                    "{id} holds a snapshot at {} {}, {why}: snapshots must cover committed \
                     entries only",
                    snapshot.index, snapshot.term
                ),
            ));
        };
        if committed.term != snapshot.term {
            return Err(Violation::new(
                NAME,
                format!(
                    "{id} holds a snapshot at {} with {}, but the committed entry there has {} \
                     (committed by {} in {}): snapshots must cover the committed prefix",
                    snapshot.index, snapshot.term, committed.term, committed.by, committed.in_term
                ),
            ));
        }
        Ok(committed.hash)
    }

    /// A `Persist::Snapshot` from the node in `slot`. Returns the committed fingerprint at the
    /// snapshot's index, or `None` when the log ignores the snapshot (not newer than its own).
    pub(crate) fn on_snapshot(
        &self,
        slot: usize,
        snapshot: &Snapshot,
        mirror: &LogMirror,
    ) -> Result<Option<u64>, Violation> {
        if mirror.ignores_snapshot(snapshot.index) {
            return Ok(None);
        }
        let id = self.ids[slot];
        let hash = self.snapshot_hash(id, Some(snapshot))?;
        match mirror.held(snapshot.index) {
            Some(held) if held.term == snapshot.term => {
                if held.hash != hash {
                    return Err(Violation::new(
                        NAME,
                        format!(
                            "{id} installs a snapshot at {} {} over its own log, but its log up \
                             to there differs from the committed entries (first difference at \
                             {}): a snapshot must describe the committed prefix",
                            snapshot.index,
                            snapshot.term,
                            self.first_difference(mirror, snapshot.index)
                        ),
                    ));
                }
            }
            _ => {
                // The log is replaced by the snapshot: nothing committed may be discarded.
                let commit = self.commit[slot];
                let discarded_max = commit.min(mirror.last_index());
                if discarded_max > snapshot.index {
                    return Err(Violation::new(
                        NAME,
                        format!(
                            "{id} installs a snapshot at {} {} that replaces its whole log, \
                             discarding entries {}..={} which it has committed",
                            snapshot.index,
                            snapshot.term,
                            snapshot.index.next(),
                            discarded_max
                        ),
                    ));
                }
            }
        }
        Ok(Some(hash))
    }

    /// After a step: a commit advance must cover the committed entries; new ones join the
    /// record. Returns the node's term when the advance is news for the leaders of later terms
    /// (they must hold what it covers). O(1) without an advance, O(log terms) plus O(1) per newly
    /// committed entry with one.
    pub(crate) fn after_step(
        &mut self,
        slot: usize,
        node: &Node,
        mirror: &LogMirror,
    ) -> Result<Option<Term>, Violation> {
        let (old, new) = (self.commit[slot], node.commit_index());
        self.commit[slot] = new;
        if new <= old {
            // A decrease is the monotonic checker's to report.
            return Ok(None);
        }
        self.check_advance(slot, node.term(), old, new, mirror)?;
        // Every commit index a node learns was decided by a leader of the node's term or an
        // earlier one, so "committed in the node's term" never claims too early a term.
        let news = self.note_committed_in(node.term(), new);
        Ok(news.then_some(node.term()))
    }

    fn check_advance(
        &mut self,
        slot: usize,
        node_term: Term,
        old: Index,
        new: Index,
        mirror: &LogMirror,
    ) -> Result<(), Violation> {
        let id = self.ids[slot];
        let highest = self.highest_committed();
        // One fingerprint comparison covers every entry up to `compared`.
        let compared = new.min(highest);
        if compared >= mirror.snapshot_index()
            && let Some(committed) = self.at(compared)
        {
            let held = mirror.held(compared);
            if held.map(|h| h.hash) != Some(committed.hash) {
                return Err(Violation::new(
                    NAME,
                    format!(
                        "{id}'s commit index moved from {old} to {new}, but its log up to \
                         {compared} differs from the committed entries (its entry at {compared}: \
                         {}; committed: {} by {} in {}; first difference at {}): an entry, once \
                         committed, never changes",
                        held.map_or("none".to_string(), |h| h.term.to_string()),
                        committed.term,
                        committed.by,
                        committed.in_term,
                        self.first_difference(mirror, compared)
                    ),
                ));
            }
        }
        let mut index = highest.next();
        while index <= new {
            let Some(held) = mirror.held(index) else {
                return Err(Violation::new(
                    NAME,
                    format!(
                        "{id} commits {index}, which its log does not hold (snapshot at {}, last \
                         entry {}) and no node has committed before",
                        mirror.snapshot_index(),
                        mirror.last_index()
                    ),
                ));
            };
            self.record.push(Committed {
                term: held.term,
                hash: held.hash,
                by: id,
                in_term: node_term,
            });
            index = index.next();
        }
        Ok(())
    }

    /// A restart: the durable log must still hold what the last incarnation committed. The
    /// mirror is already rebuilt from the durable state.
    pub(crate) fn on_restart(
        &mut self,
        slot: usize,
        node: &Node,
        mirror: &LogMirror,
    ) -> Result<(), Violation> {
        let before = self.commit[slot];
        self.commit[slot] = node.commit_index();
        if before <= mirror.snapshot_index() {
            return Ok(());
        }
        let id = self.ids[slot];
        let committed_hash = self.at(before).map(|c| c.hash);
        match mirror.held(before) {
            None => Err(Violation::new(
                NAME,
                format!(
                    "{id} restarted with a durable log ending at {}, but before the crash it had \
                     committed up to {before}: committed entries were lost from durable storage",
                    mirror.last_index()
                ),
            )),
            Some(held) if Some(held.hash) != committed_hash && committed_hash.is_some() => {
                Err(Violation::new(
                    NAME,
                    format!(
                        "{id} restarted with a durable log that differs from the committed \
                         entries it had committed before the crash (up to {before}; first \
                         difference at {})",
                        self.first_difference(mirror, before)
                    ),
                ))
            }
            Some(_) => Ok(()),
        }
    }

    /// The lowest index from which `mirror` differs from the record, searching down from
    /// `upto` (where they are known to differ). Only on the violation path: O(log length).
    pub(crate) fn first_difference(&self, mirror: &LogMirror, upto: Index) -> Index {
        let floor = mirror.snapshot_index().max(Index(self.record.start()));
        let mut index = upto;
        while index > floor {
            let previous = index.prev();
            let same = match (mirror.held(previous), self.at(previous)) {
                (Some(held), Some(committed)) => held.hash == committed.hash,
                _ => false,
            };
            if same {
                break;
            }
            index = previous;
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_committed_before_a_term_is_a_staircase() {
        let mut checker = CommittedImmutable::new(&[NodeId(1)]);
        let before =
            |c: &CommittedImmutable, t| c.highest_committed_before(Term(t)).map(|(i, _)| i.0);
        assert!(checker.note_committed_in(Term(2), Index(5)));
        assert!(checker.note_committed_in(Term(4), Index(7)));
        // Not news: term 4 already reaches 7; term 3 is below term 4's step but covered by 5.
        assert!(!checker.note_committed_in(Term(4), Index(6)));
        assert!(!checker.note_committed_in(Term(3), Index(5)));
        assert_eq!(before(&checker, 2), None);
        assert_eq!(before(&checker, 3), Some(5));
        assert_eq!(before(&checker, 5), Some(7));
        // A late commit in an old term that reaches past later steps replaces them.
        assert!(checker.note_committed_in(Term(1), Index(9)));
        assert_eq!(before(&checker, 2), Some(9));
        assert_eq!(before(&checker, 9), Some(9));
        assert_eq!(checker.highest_up_to_term.len(), 1);
        assert!(checker.note_committed_in(Term(6), Index(10)));
        assert_eq!(before(&checker, 6), Some(9));
        assert_eq!(before(&checker, 7), Some(10));
    }
}
