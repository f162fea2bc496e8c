//! Apply order: each incarnation applies committed entries in index order, with no gaps, each
//! exactly once; a restore moves the next expected index to just after the snapshot.
//!
//! Per node, the index the state machine has reached in this incarnation; every applied entry
//! must be the next one, and after each step the node's own `last_applied` must agree with what
//! its outputs delivered. Cost: O(1) per applied entry and per step.

use super::Violation;
use raft::{Entry, Index, Node, NodeId, Snapshot};

/// The checker's name in violations.
pub(crate) const NAME: &str = "apply_order";

/// The apply-order checker.
#[derive(Clone, Debug)]
pub(crate) struct ApplyOrder {
    ids: Vec<NodeId>,
    /// Per node: the last index its current incarnation's state machine has reached.
    applied: Vec<Index>,
}

impl ApplyOrder {
    pub(crate) fn new(ids: &[NodeId]) -> ApplyOrder {
        ApplyOrder {
            ids: ids.to_vec(),
            applied: vec![Index(0); ids.len()],
        }
    }

    /// An `Apply` output of the node in `slot`.
    pub(crate) fn on_apply(&mut self, slot: usize, entries: &[Entry]) -> Result<(), Violation> {
        for entry in entries {
            let applied = self.applied[slot];
            let expected = applied.next();
            if entry.index != expected {
                let id = self.ids[slot];
                let message = if entry.index <= applied {
                    format!(
                        "{id} applies {} again: this incarnation has already applied up to \
                         {applied} (expected {expected} next); each index is applied exactly \
                         once per incarnation",
                        entry.index
                    )
                } else {
                    format!(
                        "{id} applies {} but has applied only up to {applied}: expected \
                         {expected} next, so {expected}..{} would be skipped",
                        entry.index, entry.index
                    )
                };
                return Err(Violation::new(NAME, message));
            }
            self.applied[slot] = entry.index;
        }
        Ok(())
    }

    /// A `Restore` output: the state machine jumps to the snapshot (whether that is forward is
    /// the snapshot-monotonic checker's question).
    pub(crate) fn on_restore(&mut self, slot: usize, snapshot: &Snapshot) {
        self.applied[slot] = snapshot.index;
    }

    /// After a step: the node's `last_applied` is what its outputs delivered.
    pub(crate) fn after_step(&self, slot: usize, node: &Node) -> Result<(), Violation> {
        let applied = self.applied[slot];
        if node.last_applied() == applied {
            return Ok(());
        }
        Err(Violation::new(
            NAME,
            format!(
                "{} reports last_applied {}, but its Apply and Restore outputs in this \
                 incarnation delivered up to {applied}",
                node.id(),
                node.last_applied()
            ),
        ))
    }

    /// A restart: the new state machine starts from the durable snapshot.
    pub(crate) fn on_restart(&mut self, slot: usize, node: &Node) {
        self.applied[slot] = node.last_applied();
    }
}
