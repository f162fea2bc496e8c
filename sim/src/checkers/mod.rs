//! Safety checkers, run on every output and after every step of every simulated node.
//!
//! One module per property, named after it: `election_safety`, `log_matching`,
//! `leader_completeness`, `state_machine_safety`, `committed_immutable`, `apply_order`,
//! `snapshot_monotonic`, `monotonic`, `index_bounds`, `persist_first` (the core's
//! persist-before-send contract) and `truncation` (logs are truncated only at a conflict). [`Checkers`] feeds each event to
//! the checkers that care about it and stops at the first violation.
//!
//! Logs are compared by chained prefix fingerprints (`hash`): the log-matching checker keeps a
//! mirror of every node's log built from its `Persist` outputs (`mirror`), the
//! committed-immutable checker keeps the committed prefix, and the other log checkers read both.
//! Everything is indexed by node slot or log index (`Vec`, `BTreeMap`), never iterated from a
//! hash map, and history below every node's snapshot is forgotten, so memory follows the live
//! logs rather than the length of the run.
//!
//! Cost: a step that only sends (heartbeats, replies) costs O(1) per output and O(1) for
//! `after_step`, with no allocation; entries cost O(1) each (plus hashing the command) when
//! appended, committed or applied; a commit advance or a new leader costs O(log terms); a restart
//! costs O(held log).

mod apply_order;
mod committed_immutable;
mod election_safety;
mod hash;
mod index_bounds;
mod leader_completeness;
mod log_matching;
mod mirror;
mod monotonic;
mod persist_first;
mod snapshot_monotonic;
mod state_machine_safety;
#[cfg(test)]
mod tests;
mod truncation;
mod window;

use apply_order::ApplyOrder;
use committed_immutable::CommittedImmutable;
use election_safety::ElectionSafety;
use index_bounds::IndexBounds;
use leader_completeness::LeaderCompleteness;
use log_matching::LogMatching;
use monotonic::Monotonic;
use persist_first::PersistFirst;
use raft::{Node, NodeId, Output, Persist};
use snapshot_monotonic::SnapshotMonotonic;
use state_machine_safety::StateMachineSafety;
use std::fmt;

/// The name of violations that are the driver's mistakes, not the core's: an event for a node
/// the checkers do not know, or for a crashed node.
const DRIVER: &str = "driver";

/// A safety property that does not hold: which checker saw it and what it saw. The message names
/// the node, the indices and terms involved, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The checker's name, after the property (`election_safety`, `log_matching`, …).
    pub checker: &'static str,
    /// What happened, for a reader who has to act on it.
    pub message: String,
}

impl Violation {
    pub(crate) fn new(checker: &'static str, message: String) -> Violation {
        Violation { checker, message }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.checker, self.message)
    }
}

impl std::error::Error for Violation {}

/// Every safety checker of a simulated cluster. Feed it every output of every step in order
/// ([`Checkers::on_output`]), then the node ([`Checkers::after_step`]); report crashes and
/// restarts. The first violation is returned; after one, the checkers' state is unspecified and
/// the run should stop.
#[derive(Clone, Debug)]
pub struct Checkers {
    /// The checked nodes, sorted; a node's position is its slot in every per-node table.
    ids: Vec<NodeId>,
    /// Per node: crashed and not yet restarted.
    down: Vec<bool>,
    election_safety: ElectionSafety,
    log_matching: LogMatching,
    leader_completeness: LeaderCompleteness,
    state_machine_safety: StateMachineSafety,
    committed_immutable: CommittedImmutable,
    apply_order: ApplyOrder,
    snapshot_monotonic: SnapshotMonotonic,
    monotonic: Monotonic,
    index_bounds: IndexBounds,
    persist_first: PersistFirst,
}

impl Checkers {
    /// Checkers for a cluster of `nodes`, all starting from empty durable state.
    #[must_use]
    pub fn new(nodes: &[NodeId]) -> Checkers {
        let mut ids = nodes.to_vec();
        ids.sort();
        ids.dedup();
        Checkers {
            down: vec![false; ids.len()],
            election_safety: ElectionSafety::new(&ids),
            log_matching: LogMatching::new(&ids),
            leader_completeness: LeaderCompleteness::new(ids.len()),
            state_machine_safety: StateMachineSafety::new(&ids),
            committed_immutable: CommittedImmutable::new(&ids),
            apply_order: ApplyOrder::new(&ids),
            snapshot_monotonic: SnapshotMonotonic::new(&ids),
            monotonic: Monotonic::new(&ids),
            index_bounds: IndexBounds,
            persist_first: PersistFirst::new(&ids),
            ids,
        }
    }

    /// After the driver performed one output of `node`'s current step (called for every output,
    /// in order).
    pub fn on_output(&mut self, node: NodeId, output: &Output) -> Result<(), Violation> {
        if let Output::Send { .. } = output {
            // The common case (heartbeats, replies): only the step's order is noted.
            if let Ok(slot) = self.slot(node) {
                self.persist_first.on_output(slot, output)?;
            }
            return Ok(());
        }
        let slot = self.live_slot(node)?;
        self.persist_first.on_output(slot, output)?;
        match output {
            Output::Send { .. } => Ok(()),
            Output::Persist(Persist::HardState(hard_state)) => {
                self.monotonic.on_hard_state(slot, hard_state)?;
                self.election_safety.on_hard_state(slot, hard_state)
            }
            Output::Persist(Persist::Append(entries)) => {
                self.committed_immutable.on_append(slot, entries)?;
                truncation::on_append(self.ids[slot], self.log_matching.mirror(slot), entries)?;
                self.log_matching.on_append(slot, entries)
            }
            Output::Persist(Persist::Snapshot(snapshot)) => {
                self.monotonic.on_snapshot(slot, snapshot);
                let mirror = self.log_matching.mirror(slot);
                let Some(hash) = self
                    .committed_immutable
                    .on_snapshot(slot, snapshot, mirror)?
                else {
                    return Ok(());
                };
                self.log_matching.on_snapshot(slot, snapshot, hash);
                self.forget_history();
                Ok(())
            }
            Output::Apply(entries) => {
                self.apply_order.on_apply(slot, entries)?;
                self.snapshot_monotonic.on_apply(slot, entries);
                self.state_machine_safety.on_apply(slot, entries)
            }
            Output::Restore(snapshot) => {
                self.snapshot_monotonic.on_restore(slot, snapshot)?;
                self.apply_order.on_restore(slot, snapshot);
                self.state_machine_safety.on_restore(slot, snapshot)
            }
        }
    }

    /// After a step completed (all its outputs performed), with the node's state.
    pub fn after_step(&mut self, node: &Node) -> Result<(), Violation> {
        let slot = self.live_slot(node.id())?;
        self.persist_first.end_step(slot);
        self.index_bounds.check(node)?;
        self.monotonic.after_step(slot, node)?;
        self.apply_order.after_step(slot, node)?;
        self.log_matching.after_step(slot, node)?;
        self.election_safety.after_step(slot, node)?;
        let mirror = self.log_matching.mirror(slot);
        self.leader_completeness
            .after_step(slot, node, mirror, &self.committed_immutable)?;
        if let Some(term) = self.committed_immutable.after_step(slot, node, mirror)? {
            self.leader_completeness.on_commit_in(term);
        }
        Ok(())
    }

    /// The node crashed: its volatile state is gone.
    pub fn on_crash(&mut self, node: NodeId) {
        let Ok(slot) = self.slot(node) else {
            return;
        };
        self.down[slot] = true;
        self.persist_first.end_step(slot);
        self.election_safety.on_crash(slot);
        self.leader_completeness.on_crash(slot);
    }

    /// A new incarnation started from its durable state (`node.durable_state()`).
    pub fn on_restart(&mut self, node: &Node) -> Result<(), Violation> {
        let slot = self.slot(node.id())?;
        self.down[slot] = false;
        self.persist_first.end_step(slot);
        self.leader_completeness.on_crash(slot);
        self.apply_order.on_restart(slot, node);
        self.snapshot_monotonic.on_restart(slot, node);
        self.monotonic.on_restart(slot, node)?;
        self.election_safety.on_restart(slot, node)?;
        let log = &node.durable_state().log;
        let hash = self
            .committed_immutable
            .snapshot_hash(node.id(), log.snapshot())?;
        self.log_matching.on_restart(slot, log, hash)?;
        let mirror = self.log_matching.mirror(slot);
        self.committed_immutable.on_restart(slot, node, mirror)?;
        self.index_bounds.check(node)
    }

    fn slot(&self, node: NodeId) -> Result<usize, Violation> {
        // The ids are sorted and distinct, and usually 0..n: a node's slot is then its id.
        if let Ok(i) = usize::try_from(node.0)
            && self.ids.get(i) == Some(&node)
        {
            return Ok(i);
        }
        self.ids
            .binary_search(&node)
            .map_err(|_| self.unknown_node(node))
    }

    #[cold]
    fn unknown_node(&self, node: NodeId) -> Violation {
        Violation::new(
            DRIVER,
            format!(
                "{node} is not one of the checked nodes {:?}",
                self.ids.iter().map(ToString::to_string).collect::<Vec<_>>()
            ),
        )
    }

    fn live_slot(&self, node: NodeId) -> Result<usize, Violation> {
        let slot = self.slot(node)?;
        if self.down[slot] {
            return Err(Violation::new(
                DRIVER,
                format!("{node} produced an event while crashed (no restart reported)"),
            ));
        }
        Ok(slot)
    }

    /// Drops history below every node's snapshot: no log can hold, commit or apply it again.
    fn forget_history(&mut self) {
        let horizon = self.log_matching.horizon();
        self.log_matching.forget_below(horizon);
        self.committed_immutable.forget_below(horizon);
        self.state_machine_safety.forget_below(horizon);
    }
}
