//! Persist first: within one step, every `Persist` output comes before every `Send`, `Apply` and
//! `Restore` (the core's contract, etcd's "persist before send"). A write after a message of
//! the same step is a vote or an acknowledgement that a crash between the two would make the
//! node forget while its peers act on it; the crash points of the swarm runs land exactly
//! there, but the consequence (a second vote in the same term, a lost acknowledged entry) needs
//! more luck to show than the order itself. Cost: O(1) per output.

use super::Violation;
use raft::{NodeId, Output};

/// The checker's name in violations.
pub(crate) const NAME: &str = "persist_first";

/// Per node: whether the current step has already sent, applied or restored something.
#[derive(Clone, Debug)]
pub(crate) struct PersistFirst {
    ids: Vec<NodeId>,
    acted: Vec<bool>,
}

impl PersistFirst {
    pub(crate) fn new(ids: &[NodeId]) -> PersistFirst {
        PersistFirst {
            ids: ids.to_vec(),
            acted: vec![false; ids.len()],
        }
    }

    /// One output of the current step of the node in `slot`, in order.
    pub(crate) fn on_output(&mut self, slot: usize, output: &Output) -> Result<(), Violation> {
        match output {
            Output::Send { .. } | Output::Apply(_) | Output::Restore(_) => {
                self.acted[slot] = true;
                Ok(())
            }
            Output::Persist(op) if self.acted[slot] => Err(Violation::new(
                NAME,
                format!(
                    "{} persisted {} after sending or applying in the same step: a crash between \
                     the two makes it forget what its peers already rely on",
                    self.ids[slot],
                    match op {
                        raft::Persist::HardState(_) => "its hard state",
                        raft::Persist::Append(_) => "log entries",
                        raft::Persist::Snapshot(_) => "a snapshot",
                    }
                ),
            )),
            Output::Persist(_) => Ok(()),
        }
    }

    /// The step is over (or the node crashed or restarted): the next one starts clean.
    pub(crate) fn end_step(&mut self, slot: usize) {
        self.acted[slot] = false;
    }
}
