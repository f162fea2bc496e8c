//! Monotonic: a node's term never decreases, across incarnations too (it is durable); its
//! commit index never decreases within an incarnation; its durable snapshot never goes back
//! across a restart. Cost: O(1) per step, hard-state write and snapshot.

use super::Violation;
use raft::{HardState, Index, Node, NodeId, Snapshot, Term};

/// The checker's name in violations.
pub(crate) const NAME: &str = "monotonic";

/// The monotonic checker.
#[derive(Clone, Debug)]
pub(crate) struct Monotonic {
    ids: Vec<NodeId>,
    /// Per node: the highest term seen, over all incarnations.
    term: Vec<Term>,
    /// Per node: the commit index of the current incarnation.
    commit: Vec<Index>,
    /// Per node: the highest snapshot index persisted.
    snapshot: Vec<Index>,
}

impl Monotonic {
    pub(crate) fn new(ids: &[NodeId]) -> Monotonic {
        Monotonic {
            ids: ids.to_vec(),
            term: vec![Term(0); ids.len()],
            commit: vec![Index(0); ids.len()],
            snapshot: vec![Index(0); ids.len()],
        }
    }

    /// After a step: term and commit index only move forward.
    pub(crate) fn after_step(&mut self, slot: usize, node: &Node) -> Result<(), Violation> {
        self.check_term(slot, node.term(), "is now at")?;
        let (before, now) = (self.commit[slot], node.commit_index());
        self.commit[slot] = now;
        if now < before {
            return Err(Violation::new(
                NAME,
                format!(
                    "{}'s commit index went back from {before} to {now} within one incarnation",
                    self.ids[slot]
                ),
            ));
        }
        Ok(())
    }

    /// A `Persist::HardState`: the durable term only moves forward.
    pub(crate) fn on_hard_state(
        &mut self,
        slot: usize,
        hard_state: &HardState,
    ) -> Result<(), Violation> {
        self.check_term(slot, hard_state.term, "persisted")
    }

    /// A `Persist::Snapshot`: the log keeps the newest snapshot it was given.
    pub(crate) fn on_snapshot(&mut self, slot: usize, snapshot: &Snapshot) {
        self.snapshot[slot] = self.snapshot[slot].max(snapshot.index);
    }

    /// A restart: the durable term and snapshot are where the last incarnation left them.
    pub(crate) fn on_restart(&mut self, slot: usize, node: &Node) -> Result<(), Violation> {
        self.commit[slot] = node.commit_index();
        self.check_term(slot, node.term(), "restarted with")?;
        let (before, now) = (self.snapshot[slot], node.log().snapshot_index());
        self.snapshot[slot] = now;
        if now < before {
            return Err(Violation::new(
                NAME,
                format!(
                    "{} restarted with a durable snapshot at {now}, below the snapshot at \
                     {before} it had persisted: snapshots are durable",
                    self.ids[slot]
                ),
            ));
        }
        Ok(())
    }

    fn check_term(&mut self, slot: usize, now: Term, action: &str) -> Result<(), Violation> {
        let before = self.term[slot];
        if now < before {
            return Err(Violation::new(
                NAME,
                format!(
                    "{} {action} {now}, below the {before} it had reached: a node's term never \
                     decreases, across crashes too",
                    self.ids[slot]
                ),
            ));
        }
        self.term[slot] = now;
        Ok(())
    }
}
