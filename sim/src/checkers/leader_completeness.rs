//! Leader completeness: a node that becomes leader of term T holds every entry committed in the
//! terms before T (§5.4).
//!
//! When a node is first seen leading a term (per incarnation), take the highest index committed
//! in an earlier term; the leader's prefix fingerprint there must equal the committed record's,
//! or its snapshot must cover the index (snapshots cover committed prefixes only, which the
//! committed-immutable checker enforces). Entries committed in T itself or later are not
//! required: a stale candidate can still win T after a newer leader has committed.
//!
//! A leader of an older term may learn of a commit after the leader of T was elected (its
//! followers' acknowledgements arrive late). The entry was on a majority before any of them
//! voted in T, so the leader of T held it from its election on: such a late commit makes every
//! leader of a later term be checked again at its next step. Cost: O(1) per step; O(log terms)
//! when a node becomes leader or a late commit makes it check again.

use super::Violation;
use super::committed_immutable::CommittedImmutable;
use super::mirror::LogMirror;
use raft::{Node, Role, Term};

/// The checker's name in violations.
pub(crate) const NAME: &str = "leader_completeness";

/// The leader-completeness checker.
#[derive(Clone, Debug)]
pub(crate) struct LeaderCompleteness {
    /// Per node: the term in which the current incarnation was last checked as leader.
    checked_term: Vec<Option<Term>>,
}

impl LeaderCompleteness {
    pub(crate) fn new(nodes: usize) -> LeaderCompleteness {
        LeaderCompleteness {
            checked_term: vec![None; nodes],
        }
    }

    /// After a step: check a node that has just become leader.
    pub(crate) fn after_step(
        &mut self,
        slot: usize,
        node: &Node,
        mirror: &LogMirror,
        committed: &CommittedImmutable,
    ) -> Result<(), Violation> {
        if node.role() != Role::Leader {
            return Ok(());
        }
        let term = node.term();
        if self.checked_term[slot] == Some(term) {
            return Ok(());
        }
        self.checked_term[slot] = Some(term);
        let Some((index, record)) = committed.highest_committed_before(term) else {
            return Ok(());
        };
        if index <= mirror.snapshot_index() {
            return Ok(());
        }
        let Some(record) = record else {
            // Forgotten only below every node's snapshot, which this leader's covers.
            return Ok(());
        };
        let id = node.id();
        let why = match mirror.held(index) {
            Some(held) if held.hash == record.hash => return Ok(()),
            Some(held) => format!(
                "its entry there has {} and its log up to there differs from the committed \
                 entries (first difference at {})",
                held.term,
                committed.first_difference(mirror, index)
            ),
            None => format!(
                "its log ends at {} {}",
                mirror.last_index(),
                mirror.last().term
            ),
        };
        Err(Violation::new(
            NAME,
            format!(
                "{id} became leader of {term}, but entry {index} {} was committed in an earlier \
                 term (by {} in {}) and {why}: a leader must hold every entry committed in \
                 earlier terms",
                record.term, record.by, record.in_term
            ),
        ))
    }

    /// A crash: the next incarnation is checked afresh.
    pub(crate) fn on_crash(&mut self, slot: usize) {
        self.checked_term[slot] = None;
    }

    /// Entries were committed in `term` that leaders of later terms may not have been checked
    /// against: check them again at their next step. O(nodes).
    pub(crate) fn on_commit_in(&mut self, term: Term) {
        for checked in &mut self.checked_term {
            if checked.is_some_and(|leading| leading > term) {
                *checked = None;
            }
        }
    }
}
