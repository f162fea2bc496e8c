//! State-machine safety: no two nodes apply different commands at one index (§5.4.3).
//!
//! A global record holds, per index, the term and command fingerprint first applied there and by
//! whom; every later apply of that index, by any node or incarnation, must match it. A restore
//! must agree with the record at the snapshot's index. Cost: O(1) per applied entry plus hashing
//! its command; nothing per step.

use super::Violation;
use super::hash;
use super::window::{Slot, Window};
use raft::{Entry, Index, NodeId, Snapshot, Term};

/// The checker's name in violations.
pub(crate) const NAME: &str = "state_machine_safety";

#[derive(Clone, Copy, Debug)]
struct AppliedEntry {
    term: Term,
    command_hash: u64,
    by: usize,
}

/// The state-machine-safety checker.
#[derive(Clone, Debug)]
pub(crate) struct StateMachineSafety {
    ids: Vec<NodeId>,
    /// Index -> what was first applied there. Forgets indices below every node's snapshot: no
    /// node applies them again.
    applied: Window<Option<AppliedEntry>>,
}

impl StateMachineSafety {
    pub(crate) fn new(ids: &[NodeId]) -> StateMachineSafety {
        StateMachineSafety {
            ids: ids.to_vec(),
            applied: Window::new(0),
        }
    }

    /// Forgets the record below `index`.
    pub(crate) fn forget_below(&mut self, index: Index) {
        self.applied.forget_below(index.0);
    }

    /// An `Apply` output of the node in `slot`.
    pub(crate) fn on_apply(&mut self, slot: usize, entries: &[Entry]) -> Result<(), Violation> {
        for entry in entries {
            let command_hash = hash::command(&entry.command);
            let cell = match self.applied.get_or_grow(entry.index.0) {
                Slot::Held(cell) => cell,
                Slot::Forgotten => continue,
                Slot::TooFar => {
                    return Err(Violation::new(
                        NAME,
                        format!(
                            "{} applies {} {}, implausibly far past every index applied so far",
                            self.ids[slot], entry.index, entry.term
                        ),
                    ));
                }
            };
            let first = match *cell {
                None => {
                    *cell = Some(AppliedEntry {
                        term: entry.term,
                        command_hash,
                        by: slot,
                    });
                    continue;
                }
                Some(first) if first.term == entry.term && first.command_hash == command_hash => {
                    continue;
                }
                Some(first) => first,
            };
            let what = if first.term == entry.term {
                "a different command in the same term".to_string()
            } else {
                format!("the entry of {}", first.term)
            };
            return Err(Violation::new(
                NAME,
                format!(
                    "{} applies {} {} (command {}), but {} applied {what} at that index: no two \
                     state machines apply different commands at one index",
                    self.ids[slot],
                    entry.index,
                    entry.term,
                    hash::preview(&entry.command),
                    self.ids[first.by]
                ),
            ));
        }
        Ok(())
    }

    /// A `Restore` output of the node in `slot`: the snapshot must end where the others applied.
    pub(crate) fn on_restore(&self, slot: usize, snapshot: &Snapshot) -> Result<(), Violation> {
        match self.applied.get(snapshot.index.0) {
            Some(Some(first)) if first.term != snapshot.term => Err(Violation::new(
                NAME,
                format!(
                    "{} restores a snapshot ending at {} {}, but {} applied the entry of {} at \
                     that index",
                    self.ids[slot], snapshot.index, snapshot.term, self.ids[first.by], first.term
                ),
            )),
            _ => Ok(()),
        }
    }
}
