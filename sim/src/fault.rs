//! Faults beyond the network's: where in a step a crash lands, and what a mid-step crash lost.
//!
//! A node's step returns its outputs in order (every `Persist` first, then `Send`s, then
//! `Apply`/`Restore`). A crash *between* steps loses only volatile state. A crash *inside* a step
//! lands between two outputs: the outputs before the crash point were performed (their writes
//! are durable, their messages are on the wire), the ones after it never happen. That is the
//! window the persist-before-send rule exists for: a vote or an entry acknowledged to a peer must
//! already be on disk.

use raft::{DurableState, NodeId, Output};
use serde::{Deserialize, Serialize};

/// Where a crash lands relative to the node's steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CrashPoint {
    /// At once, between two steps: only volatile state is lost.
    BetweenSteps,
    /// Inside the node's next step that persists something, after its first `after_outputs`
    /// outputs were performed (all of them if the step has fewer): 0 loses the whole step,
    /// 1 keeps the first `Persist` and loses the rest, and so on.
    MidStep {
        /// How many of the step's outputs are performed before the crash.
        after_outputs: u32,
    },
}

/// What a mid-step crash cut short: kept for the run's last such crash, for tests and for
/// explaining a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MidStepCrash {
    /// The node that crashed.
    pub node: NodeId,
    /// Its durable state before the step.
    pub durable_before: DurableState,
    /// Every output the step produced, in order.
    pub outputs: Vec<Output>,
    /// How many of them were performed before the crash.
    pub performed: usize,
}

impl MidStepCrash {
    /// The durable state the crash must leave: `durable_before` with exactly the `Persist`
    /// outputs among the first `performed` outputs applied, in order.
    pub fn expected_durable(&self) -> Result<DurableState, raft::PersistError> {
        let mut durable = self.durable_before.clone();
        for output in self.outputs.iter().take(self.performed) {
            if let Output::Persist(op) = output {
                durable.apply(op)?;
            }
        }
        Ok(durable)
    }

    /// How many `Persist` outputs the crash lost.
    #[must_use]
    pub fn persists_lost(&self) -> usize {
        self.outputs
            .iter()
            .skip(self.performed)
            .filter(|o| matches!(o, Output::Persist(_)))
            .count()
    }
}
