//! The lookahead of [`Model::can_grow_into`]: which read a new state must still be able to
//! grow into.

use super::events::Events;
use crate::model::{Model, Operation};

/// Operations in a fixed order, as a doubly linked list that operations leave when they are
/// linearized and rejoin when that is undone (in LIFO order, like the event lists): its first
/// member is the earliest one not linearized.
struct Chain {
    next: Vec<u32>,
    prev: Vec<u32>,
    member: Vec<bool>,
}

impl Chain {
    /// A chain of `members` (operation ids, in order) out of `ops` operations.
    fn new(ops: usize, members: &[u32]) -> Chain {
        let sentinel = ops as u32;
        let mut chain = Chain {
            next: vec![sentinel; ops + 1],
            prev: vec![sentinel; ops + 1],
            member: vec![false; ops],
        };
        let mut tail = sentinel;
        for &id in members {
            chain.member[id as usize] = true;
            chain.next[tail as usize] = id;
            chain.prev[id as usize] = tail;
            tail = id;
        }
        chain.next[tail as usize] = sentinel;
        chain.prev[sentinel as usize] = tail;
        chain
    }

    /// The first member not linearized.
    fn first(&self) -> Option<usize> {
        let first = self.next[self.member.len()] as usize;
        (first < self.member.len()).then_some(first)
    }

    fn remove(&mut self, id: usize) {
        if self.member[id] {
            let (prev, next) = (self.prev[id], self.next[id]);
            self.next[prev as usize] = next;
            self.prev[next as usize] = prev;
        }
    }

    fn restore(&mut self, id: usize) {
        if self.member[id] {
            let (prev, next) = (self.prev[id], self.next[id]);
            self.next[prev as usize] = id as u32;
            self.prev[next as usize] = id as u32;
        }
    }
}

/// The lookahead of [`Model::can_grow_into`]: the reads with a recorded output in the order
/// of their returns, and the operations that do not only grow the state in the order of their
/// calls.
pub(super) struct Lookahead {
    reads: Chain,
    resets: Chain,
}

impl Lookahead {
    /// The lookahead of `ops`; one that never prunes unless `prune`.
    pub(super) fn new<M: Model>(
        model: &M,
        ops: &[&Operation<M::Input, M::Output>],
        events: &Events,
        prune: bool,
    ) -> Self {
        let mut reads: Vec<u32> = (0..ops.len() as u32)
            .filter(|&id| {
                let op = ops[id as usize];
                prune
                    && op.output.is_some()
                    && op.return_.is_some()
                    && model.is_read_only(&op.input)
            })
            .collect();
        reads.sort_unstable_by_key(|&id| events.return_node[id as usize]);
        let mut resets: Vec<u32> = (0..ops.len() as u32)
            .filter(|&id| !model.only_grows(&ops[id as usize].input))
            .collect();
        resets.sort_unstable_by_key(|&id| events.call_node[id as usize]);
        Lookahead {
            reads: Chain::new(ops.len(), &reads),
            resets: Chain::new(ops.len(), &resets),
        }
    }

    pub(super) fn remove(&mut self, id: usize) {
        self.reads.remove(id);
        self.resets.remove(id);
    }

    pub(super) fn restore(&mut self, id: usize) {
        self.resets.restore(id);
        self.reads.restore(id);
    }

    /// The read that `state` must still be able to grow into: the next read to return, if no
    /// operation that does more than grow the state can come before it (none is called before
    /// that read returns).
    pub(super) fn next_read(&self, events: &Events) -> Option<usize> {
        let read = self.reads.first()?;
        let read_return = events.return_node[read]?;
        match self.resets.first() {
            Some(reset) if events.call_node[reset] < read_return => None,
            _ => Some(read),
        }
    }
}
