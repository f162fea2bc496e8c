//! Index bounds: `snapshot index ≤ last applied ≤ commit index ≤ last log index` after every
//! step and restart. Cost: O(1) per step.

use super::Violation;
use raft::{Index, Node, NodeId};

/// The checker's name in violations.
pub(crate) const NAME: &str = "index_bounds";

/// The index-bounds checker (stateless).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IndexBounds;

impl IndexBounds {
    /// Checks a node's four indices.
    pub(crate) fn check(self, node: &Node) -> Result<(), Violation> {
        let log = node.log();
        self.check_values(
            node.id(),
            log.snapshot_index(),
            node.last_applied(),
            node.commit_index(),
            log.last_index(),
        )
    }

    /// Checks four indices of node `id`.
    pub(crate) fn check_values(
        self,
        id: NodeId,
        snapshot: Index,
        applied: Index,
        commit: Index,
        last: Index,
    ) -> Result<(), Violation> {
        let broken = if snapshot > applied {
            "the snapshot is past the applied index"
        } else if applied > commit {
            "an entry was applied before it was committed"
        } else if commit > last {
            "the commit index is past the log's end"
        } else {
            return Ok(());
        };
        Err(Violation::new(
            NAME,
            format!(
                "{id} has snapshot {snapshot}, applied {applied}, commit {commit}, last log \
                 index {last}: {broken} (expected snapshot ≤ applied ≤ commit ≤ last)"
            ),
        ))
    }
}
