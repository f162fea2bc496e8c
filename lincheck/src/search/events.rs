//! The events of a partition's history as linked lists the search lifts operations out of.

use crate::model::Operation;

/// Node 0: the sentinel of the list of returns and of calls with a known outcome.
pub(super) const KNOWN: u32 = 0;
/// Node 1: the sentinel of the list of calls with an unknown outcome.
pub(super) const UNKNOWN: u32 = 1;
/// Nodes before the first event.
const SENTINELS: usize = 2;

/// The events of a history as two circular doubly linked lists over arrays: the calls and
/// returns of operations with a known outcome (from [`KNOWN`]), and the calls of those with an
/// unknown outcome (from [`UNKNOWN`]). Events are numbered in time order, so comparing two nodes
/// compares their times.
///
/// Keeping the unknown calls apart lets the search try every operation with a known outcome
/// before it guesses that an unknown one took effect: a client that gave up on an operation most
/// often did so because it was lost, and a pending unknown operation would otherwise be the
/// first candidate at every step for the rest of the history.
pub(super) struct Events {
    pub(super) next: Vec<u32>,
    pub(super) prev: Vec<u32>,
    /// The operation of each node (unused for the sentinels).
    pub(super) op: Vec<u32>,
    /// Whether each node is a call (else a return).
    pub(super) is_call: Vec<bool>,
    /// The call node of each operation.
    pub(super) call_node: Vec<u32>,
    /// The return node of each operation, if its outcome is known.
    pub(super) return_node: Vec<Option<u32>>,
}

impl Events {
    /// The events of `ops`, sorted by time. At equal times, returns of operations that took time
    /// come first (a return at `t` precedes a call at `t`), then calls of instantaneous
    /// operations (call = return), then their returns, then the other calls; so an
    /// instantaneous operation follows what returned at its time and precedes what is called at
    /// its time, and two instantaneous operations at the same time are concurrent.
    pub(super) fn new<I, O>(ops: &[&Operation<I, O>]) -> Events {
        // (time, rank, op, is_call)
        let mut sorted: Vec<(u64, u8, u32, bool)> = Vec::with_capacity(2 * ops.len());
        for (id, op) in ops.iter().enumerate() {
            let id = id as u32;
            match op.return_.map(|r| r.max(op.call)) {
                Some(ret) if ret == op.call => {
                    sorted.push((op.call, 1, id, true));
                    sorted.push((ret, 2, id, false));
                }
                Some(ret) => {
                    sorted.push((op.call, 3, id, true));
                    sorted.push((ret, 0, id, false));
                }
                None => sorted.push((op.call, 3, id, true)),
            }
        }
        sorted.sort_unstable();
        let nodes = sorted.len() + SENTINELS;
        let mut events = Events {
            next: vec![0; nodes],
            prev: vec![0; nodes],
            op: vec![0; nodes],
            is_call: vec![false; nodes],
            call_node: vec![0; ops.len()],
            return_node: vec![None; ops.len()],
        };
        // The last node of each list so far.
        let mut tails = [KNOWN, UNKNOWN];
        for (i, &(_, _, id, is_call)) in sorted.iter().enumerate() {
            let node = (i + SENTINELS) as u32;
            events.op[node as usize] = id;
            events.is_call[node as usize] = is_call;
            if is_call {
                events.call_node[id as usize] = node;
            } else {
                events.return_node[id as usize] = Some(node);
            }
            let list = usize::from(is_call && ops[id as usize].return_.is_none());
            events.next[tails[list] as usize] = node;
            events.prev[node as usize] = tails[list];
            tails[list] = node;
        }
        for (sentinel, tail) in [KNOWN, UNKNOWN].into_iter().zip(tails) {
            events.next[tail as usize] = sentinel;
            events.prev[sentinel as usize] = tail;
        }
        events
    }

    fn unlink(&mut self, node: u32) {
        let (prev, next) = (self.prev[node as usize], self.next[node as usize]);
        self.next[prev as usize] = next;
        self.prev[next as usize] = prev;
    }

    /// Puts back a node unlinked last (its own links still point at its old neighbours).
    fn relink(&mut self, node: u32) {
        let (prev, next) = (self.prev[node as usize], self.next[node as usize]);
        self.next[prev as usize] = node;
        self.prev[next as usize] = node;
    }

    /// Takes an operation's events out of the list.
    pub(super) fn lift(&mut self, op: usize) {
        self.unlink(self.call_node[op]);
        if let Some(ret) = self.return_node[op] {
            self.unlink(ret);
        }
    }

    /// Undoes the last [`Events::lift`], which must have been of `op`.
    pub(super) fn unlift(&mut self, op: usize) {
        if let Some(ret) = self.return_node[op] {
            self.relink(ret);
        }
        self.relink(self.call_node[op]);
    }
}
