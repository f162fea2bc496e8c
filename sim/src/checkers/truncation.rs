//! Truncation only at a conflict (Figure 2, AppendEntries receiver rule 3): a log loses entries
//! only when a new entry conflicts with an existing one (same index, different term). An append
//! whose entries all match the log must leave the rest of it alone: a stale or duplicated
//! AppendEntries that truncates drops entries the node may already have acknowledged, and the
//! leader may have counted them towards a commit.
//!
//! The other log checkers only see such a bug once it has lost a committed entry somewhere; this
//! one sees the truncation itself. Cost: nothing for an append at the end of the log (the common
//! case); O(entries) for one that overlaps the log.

use super::Violation;
use super::mirror::LogMirror;
use raft::{Entry, NodeId};

/// The checker's name in violations.
pub(crate) const NAME: &str = "truncation";

/// A `Persist::Append` from node `id`, before it is applied to the node's `mirror`.
pub(crate) fn on_append(
    id: NodeId,
    mirror: &LogMirror,
    entries: &[Entry],
) -> Result<(), Violation> {
    let Some(last) = entries.last() else {
        return Ok(());
    };
    if last.index >= mirror.last_index() {
        return Ok(()); // Nothing after the appended entries to lose.
    }
    let conflict = entries
        .iter()
        .any(|e| mirror.held(e.index).is_none_or(|held| held.term != e.term));
    if conflict {
        return Ok(());
    }
    Err(Violation::new(
        NAME,
        format!(
            "{id} persisted an append of {}..={} whose entries all match its log, which drops its \
             entries {}..={}: a log is truncated only at a conflicting entry (a stale or \
             duplicated AppendEntries must change nothing)",
            entries[0].index,
            last.index,
            last.index.next(),
            mirror.last_index()
        ),
    ))
}
