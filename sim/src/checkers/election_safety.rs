//! Election safety: at most one leader per term, ever — across crashes too (§5.2).
//!
//! Every (term, leader) pair ever seen is recorded with the incarnation that won it; a second
//! node, or a second incarnation of the same node, leading that term is the violation. The
//! mechanism behind it is checked too: a node's vote, once persisted, never changes within its
//! term, including across a restart. Cost: O(1) per step (a cached "already leader of this
//! term"), O(log terms) when a node becomes leader, O(1) per hard-state write.

use super::Violation;
use raft::{HardState, Node, NodeId, Role, Term};
use std::collections::BTreeMap;

/// The checker's name in violations.
pub(crate) const NAME: &str = "election_safety";

/// The election-safety checker.
#[derive(Clone, Debug)]
pub(crate) struct ElectionSafety {
    ids: Vec<NodeId>,
    /// Term -> the node (slot) and incarnation that led it.
    leaders: BTreeMap<Term, (usize, u32)>,
    /// Per node: the term its current incarnation is known to lead.
    leading: Vec<Option<Term>>,
    /// Per node: its incarnation number (0 for the first).
    incarnation: Vec<u32>,
    /// Per node: its last persisted term and vote.
    hard_state: Vec<HardState>,
}

impl ElectionSafety {
    pub(crate) fn new(ids: &[NodeId]) -> ElectionSafety {
        ElectionSafety {
            ids: ids.to_vec(),
            leaders: BTreeMap::new(),
            leading: vec![None; ids.len()],
            incarnation: vec![0; ids.len()],
            hard_state: vec![HardState::default(); ids.len()],
        }
    }

    /// After a step: record a node that leads a term for the first time.
    pub(crate) fn after_step(&mut self, slot: usize, node: &Node) -> Result<(), Violation> {
        if node.role() != Role::Leader {
            return Ok(());
        }
        let term = node.term();
        if self.leading[slot] == Some(term) {
            return Ok(());
        }
        self.leading[slot] = Some(term);
        let incarnation = self.incarnation[slot];
        let &mut (first_slot, first_incarnation) =
            self.leaders.entry(term).or_insert((slot, incarnation));
        if (first_slot, first_incarnation) == (slot, incarnation) {
            return Ok(());
        }
        let (id, first) = (self.ids[slot], self.ids[first_slot]);
        let message = if first_slot == slot {
            format!(
                "{id} became leader of {term} again in incarnation {incarnation}, after leading \
                 it in incarnation {first_incarnation}: a term has at most one election winner"
            )
        } else {
            format!(
                "{id} became leader of {term}, which {first} already led (incarnation \
                 {first_incarnation}): at most one leader per term"
            )
        };
        Err(Violation::new(NAME, message))
    }

    /// A `Persist::HardState`: the vote in a term never changes once cast.
    pub(crate) fn on_hard_state(
        &mut self,
        slot: usize,
        hard_state: &HardState,
    ) -> Result<(), Violation> {
        self.check_vote(slot, hard_state, "persisted")
    }

    /// A crash: the node leads nothing until re-elected.
    pub(crate) fn on_crash(&mut self, slot: usize) {
        self.leading[slot] = None;
    }

    /// A restart: a new incarnation, whose durable vote must be the one cast before.
    pub(crate) fn on_restart(&mut self, slot: usize, node: &Node) -> Result<(), Violation> {
        self.leading[slot] = None;
        self.incarnation[slot] = self.incarnation[slot].saturating_add(1);
        self.check_vote(slot, &node.durable_state().hard_state, "restarted with")
    }

    fn check_vote(
        &mut self,
        slot: usize,
        hard_state: &HardState,
        action: &str,
    ) -> Result<(), Violation> {
        let before = self.hard_state[slot];
        if hard_state.term == before.term
            && before.voted_for.is_some()
            && hard_state.voted_for != before.voted_for
        {
            let vote = |v: Option<NodeId>| v.map_or("no vote".to_string(), |id| id.to_string());
            return Err(Violation::new(
                NAME,
                format!(
                    "{} {action} a vote for {} in {}, after voting for {} in that term: a node \
                     votes at most once per term, across crashes too",
                    self.ids[slot],
                    vote(hard_state.voted_for),
                    hard_state.term,
                    vote(before.voted_for)
                ),
            ));
        }
        if hard_state.term >= before.term {
            self.hard_state[slot] = *hard_state;
        }
        Ok(())
    }
}
