//! Snapshots never move a state machine back: a `Restore` must be past everything the
//! incarnation has applied. Cost: O(1) per `Apply` and `Restore`, nothing per step.

use super::Violation;
use raft::{Entry, Index, Node, NodeId, Snapshot};

/// The checker's name in violations.
pub(crate) const NAME: &str = "snapshot_monotonic";

/// The snapshot-monotonic checker.
#[derive(Clone, Debug)]
pub(crate) struct SnapshotMonotonic {
    ids: Vec<NodeId>,
    /// Per node: the highest index its current incarnation's state machine reflects.
    applied: Vec<Index>,
}

impl SnapshotMonotonic {
    pub(crate) fn new(ids: &[NodeId]) -> SnapshotMonotonic {
        SnapshotMonotonic {
            ids: ids.to_vec(),
            applied: vec![Index(0); ids.len()],
        }
    }

    /// An `Apply` output.
    pub(crate) fn on_apply(&mut self, slot: usize, entries: &[Entry]) {
        if let Some(last) = entries.last() {
            self.applied[slot] = self.applied[slot].max(last.index);
        }
    }

    /// A `Restore` output: it must move the state machine forward.
    pub(crate) fn on_restore(&mut self, slot: usize, snapshot: &Snapshot) -> Result<(), Violation> {
        let applied = self.applied[slot];
        if snapshot.index <= applied {
            return Err(Violation::new(
                NAME,
                format!(
                    "{} restores a snapshot ending at {} {}, but its state machine has already \
                     applied up to {applied} in this incarnation: a restore must move it forward",
                    self.ids[slot], snapshot.index, snapshot.term
                ),
            ));
        }
        self.applied[slot] = snapshot.index;
        Ok(())
    }

    /// A restart: the new state machine starts from the durable snapshot.
    pub(crate) fn on_restart(&mut self, slot: usize, node: &Node) {
        self.applied[slot] = node.last_applied();
    }
}
