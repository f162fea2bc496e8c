//! The search for one partition: Wing and Gong's backtracking over call and return events, with
//! Lowe's memoization of (linearized set, state), as Porcupine does it.
//!
//! The history becomes a doubly linked list of events sorted by time. From the head, the search
//! tries, in order, each operation whose call comes before the first return event: if the model
//! accepts it and the resulting (linearized set, state) is new, the operation is *lifted* out of
//! the list (its call and return events unlinked) and the scan restarts from the head. Reaching a
//! return event means its operation had to be linearized already: the last choice is undone
//! (*unlifted*, dancing-links style) and the scan goes on after it. An empty choice stack at a
//! return event means no order works.
//!
//! Operations with an unknown outcome have a call event and no return event: they may be
//! linearized at any point after their call, and the search succeeds as soon as every operation
//! with a known return is linearized, leaving out the unknown ones it did not need. Their calls
//! sit in a second list, tried only after every known candidate failed (see [`Events`]).

use crate::bitset::Bitset;
use crate::model::{Model, Operation};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, DefaultHasher, Hash, Hasher};

/// Steps left for the whole check; one step is one iteration of the search loop.
#[derive(Debug)]
pub(crate) struct Steps {
    left: u64,
}

impl Steps {
    /// A budget of `max` steps.
    pub(crate) fn new(max: u64) -> Steps {
        Steps { left: max }
    }

    /// Sets aside up to `max` of the steps left, for a search that must not take them all.
    pub(crate) fn split(&mut self, max: u64) -> Steps {
        let taken = self.left.min(max);
        self.left -= taken;
        Steps { left: taken }
    }

    /// Returns what is left of steps set aside with [`Steps::split`].
    pub(crate) fn join(&mut self, rest: Steps) {
        self.left += rest.left;
    }

    /// Takes one step; `false` when none is left.
    fn take(&mut self) -> bool {
        match self.left.checked_sub(1) {
            Some(left) => {
                self.left = left;
                true
            }
            None => false,
        }
    }
}

/// How the search of one partition ended. Operation ids are indices into the slice searched.
#[derive(Debug)]
pub(crate) enum Outcome<S> {
    /// Some order of the operations is legal.
    Legal,
    /// No order is.
    Illegal(Failure<S>),
    /// The budget ran out first.
    OutOfSteps,
}

/// Where the deepest attempt of an illegal partition got stuck.
#[derive(Debug)]
pub(crate) struct Failure<S> {
    /// The longest linearizable prefix found, in linearization order.
    pub(crate) prefix: Vec<usize>,
    /// The state after that prefix.
    pub(crate) state: S,
    /// The operation whose return was reached without a legal way to place it.
    pub(crate) blocker: usize,
    /// The other operations that could have come next (called, not yet linearized), none of
    /// which leads to a legal order from that state.
    pub(crate) pending: Vec<usize>,
}

/// Node 0: the sentinel of the list of returns and of calls with a known outcome.
const KNOWN: u32 = 0;
/// Node 1: the sentinel of the list of calls with an unknown outcome.
const UNKNOWN: u32 = 1;
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
struct Events {
    next: Vec<u32>,
    prev: Vec<u32>,
    /// The operation of each node (unused for the sentinels).
    op: Vec<u32>,
    /// Whether each node is a call (else a return).
    is_call: Vec<bool>,
    /// The call node of each operation.
    call_node: Vec<u32>,
    /// The return node of each operation, if its outcome is known.
    return_node: Vec<Option<u32>>,
}

impl Events {
    /// The events of `ops`, sorted by time. At equal times, returns of operations that took time
    /// come first (a return at `t` precedes a call at `t`), then calls of instantaneous
    /// operations (call = return), then their returns, then the other calls; so an
    /// instantaneous operation follows what returned at its time and precedes what is called at
    /// its time, and two instantaneous operations at the same time are concurrent.
    fn new<I, O>(ops: &[&Operation<I, O>]) -> Events {
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
    fn lift(&mut self, op: usize) {
        self.unlink(self.call_node[op]);
        if let Some(ret) = self.return_node[op] {
            self.unlink(ret);
        }
    }

    /// Undoes the last [`Events::lift`], which must have been of `op`.
    fn unlift(&mut self, op: usize) {
        if let Some(ret) = self.return_node[op] {
            self.relink(ret);
        }
        self.relink(self.call_node[op]);
    }
}

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
struct Lookahead {
    reads: Chain,
    resets: Chain,
}

impl Lookahead {
    /// The lookahead of `ops`; one that never prunes unless `prune`.
    fn new<M: Model>(
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

    fn remove(&mut self, id: usize) {
        self.reads.remove(id);
        self.resets.remove(id);
    }

    fn restore(&mut self, id: usize) {
        self.resets.restore(id);
        self.reads.restore(id);
    }

    /// The read that `state` must still be able to grow into: the next read to return, if no
    /// operation that does more than grow the state can come before it (none is called before
    /// that read returns).
    fn next_read(&self, events: &Events) -> Option<usize> {
        let read = self.reads.first()?;
        let read_return = events.return_node[read]?;
        match self.resets.first() {
            Some(reset) if events.call_node[reset] < read_return => None,
            _ => Some(read),
        }
    }
}

/// A hasher for keys that are already well-mixed hashes.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// One memoized configuration: a linearized set (canonical form, its middle words in the
/// arena) and the state it led to.
struct Seen<S> {
    lo: u32,
    len: u32,
    start: usize,
    state: S,
    /// The next configuration with the same key (`u32::MAX` ends the chain).
    next: u32,
}

/// Lowe's memo: every (linearized set, state) the search has already explored.
struct Memo<S> {
    heads: HashMap<u64, u32, BuildHasherDefault<IdentityHasher>>,
    seen: Vec<Seen<S>>,
    words: Vec<u64>,
}

impl<S: Clone + Eq + Hash> Memo<S> {
    fn new() -> Memo<S> {
        Memo {
            heads: HashMap::default(),
            seen: Vec::new(),
            words: Vec::new(),
        }
    }

    /// Records (`set`, `state`); `false` if it was already there.
    fn insert(&mut self, set: &Bitset, state: &S) -> bool {
        let (lo, middle) = set.canonical();
        // A fixed-key hasher: the memo behaves the same in every run.
        let mut hasher = DefaultHasher::new();
        state.hash(&mut hasher);
        let key = set.hash() ^ hasher.finish();
        let head = self.heads.get(&key).copied().unwrap_or(u32::MAX);
        let mut cursor = head;
        while let Some(seen) = self.seen.get(cursor as usize) {
            let start = seen.start;
            if seen.lo as usize == lo
                && self.words[start..start + seen.len as usize] == *middle
                && seen.state == *state
            {
                return false;
            }
            cursor = seen.next;
        }
        let index = self.seen.len() as u32;
        self.seen.push(Seen {
            lo: lo as u32,
            len: middle.len() as u32,
            start: self.words.len(),
            state: state.clone(),
            next: head,
        });
        self.words.extend_from_slice(middle);
        self.heads.insert(key, index);
        true
    }
}

/// The longest prefix seen so far at a dead end, kept up to date in amortized O(1) per push.
struct Deepest<S> {
    prefix: Vec<usize>,
    /// The lowest the choice stack went since `prefix` was recorded: `prefix[..low_water]` is
    /// still the bottom of the stack.
    low_water: usize,
    found: Option<(S, usize, Vec<usize>)>,
}

/// Where the scan for the next operation to linearize is.
#[derive(Clone, Copy, Debug)]
enum Cursor {
    /// At a node of the known list: calls are candidates until the first return.
    Known(u32),
    /// At a node of the unknown list: calls are candidates while they come before `limit`,
    /// the first return of the known list.
    Unknown { node: u32, limit: u32 },
}

/// One choice of the search: the operation linearized, the state before it, and for an
/// operation with an unknown outcome the `limit` its scan had.
struct Choice<S> {
    id: usize,
    previous: S,
    limit: u32,
}

/// Searches for a legal order of `ops` (one partition) within `steps`, pruning with the model's
/// lookahead if `prune` (see [`Model::can_grow_into`]).
pub(crate) fn search<M: Model>(
    model: &M,
    ops: &[&Operation<M::Input, M::Output>],
    prune: bool,
    steps: &mut Steps,
) -> Outcome<M::State> {
    let mut events = Events::new(ops);
    let mut lookahead = Lookahead::new(model, ops, &events, prune);
    let mut linearized = Bitset::new(ops.len());
    let mut memo = Memo::new();
    let mut choices: Vec<Choice<M::State>> = Vec::new();
    let mut state = model.init();
    let mut known_left = ops.iter().filter(|op| op.return_.is_some()).count();
    let mut deepest = Deepest {
        prefix: Vec::new(),
        low_water: 0,
        found: None,
    };
    let mut cursor = Cursor::Known(events.next[KNOWN as usize]);
    while known_left > 0 {
        if !steps.take() {
            return Outcome::OutOfSteps;
        }
        let (node, limit) = match cursor {
            // The sentinel cannot be reached while an operation with a return is left (its
            // return stops the scan first); treating it as the limit keeps the loop safe.
            Cursor::Known(node) if node == KNOWN || !events.is_call[node as usize] => {
                cursor = Cursor::Unknown {
                    node: events.next[UNKNOWN as usize],
                    limit: node,
                };
                continue;
            }
            Cursor::Known(node) => (node, KNOWN),
            Cursor::Unknown { node, limit } if node != UNKNOWN && node < limit => (node, limit),
            Cursor::Unknown { limit, .. } => {
                let blocker = events.op[limit as usize] as usize;
                let pending = pending(&events, limit, blocker);
                record(&mut deepest, &choices, None, blocker, &state, pending);
                let Some(choice) = choices.pop() else {
                    let (state, blocker, pending) =
                        deepest.found.take().unwrap_or((state, blocker, Vec::new()));
                    return Outcome::Illegal(Failure {
                        prefix: deepest.prefix,
                        state,
                        blocker,
                        pending,
                    });
                };
                deepest.low_water = deepest.low_water.min(choices.len());
                state = choice.previous;
                linearized.remove(choice.id);
                events.unlift(choice.id);
                lookahead.restore(choice.id);
                let after = events.next[events.call_node[choice.id] as usize];
                cursor = if ops[choice.id].return_.is_some() {
                    known_left += 1;
                    Cursor::Known(after)
                } else {
                    Cursor::Unknown {
                        node: after,
                        limit: choice.limit,
                    }
                };
                continue;
            }
        };
        let id = events.op[node as usize] as usize;
        let op = ops[id];
        if let Some(next_state) = model.step(&state, &op.input, op.output.as_ref()) {
            lookahead.remove(id);
            if let Some(read) = lookahead.next_read(&events)
                && !model.can_grow_into(&next_state, ops[read])
            {
                // The state can no longer become one the next read accepts: a dead end one
                // step deeper, with that read as the operation that cannot be placed.
                record(
                    &mut deepest,
                    &choices,
                    Some(id),
                    read,
                    &next_state,
                    Vec::new(),
                );
                lookahead.restore(id);
            } else {
                linearized.insert(id);
                if memo.insert(&linearized, &next_state) {
                    choices.push(Choice {
                        id,
                        previous: std::mem::replace(&mut state, next_state),
                        limit,
                    });
                    if op.return_.is_some() {
                        known_left -= 1;
                    }
                    events.lift(id);
                    cursor = Cursor::Known(events.next[KNOWN as usize]);
                    continue;
                }
                linearized.remove(id);
                lookahead.restore(id);
            }
        }
        let next = events.next[node as usize];
        cursor = match cursor {
            Cursor::Known(_) => Cursor::Known(next),
            Cursor::Unknown { limit, .. } => Cursor::Unknown { node: next, limit },
        };
    }
    Outcome::Legal
}

/// The operations that could have come next at a dead end (`limit`, the return of `blocker`):
/// called and not linearized.
fn pending(events: &Events, limit: u32, blocker: usize) -> Vec<usize> {
    let mut pending = Vec::new();
    for sentinel in [KNOWN, UNKNOWN] {
        let mut cursor = events.next[sentinel as usize];
        while cursor != sentinel && cursor < limit {
            if events.is_call[cursor as usize] && events.op[cursor as usize] as usize != blocker {
                pending.push(events.op[cursor as usize] as usize);
            }
            cursor = events.next[cursor as usize];
        }
    }
    pending.sort_unstable();
    pending
}

/// At a dead end (the choices, then `last` if the dead end is found one step ahead, after which
/// `blocker` cannot be placed), records the prefix if it is the deepest so far, with the state
/// after it and the operations that could have been tried instead.
fn record<S: Clone>(
    deepest: &mut Deepest<S>,
    choices: &[Choice<S>],
    last: Option<usize>,
    blocker: usize,
    state: &S,
    pending: Vec<usize>,
) {
    let depth = choices.len() + usize::from(last.is_some());
    if deepest.found.is_some() && depth <= deepest.prefix.len() {
        return;
    }
    let keep = deepest.low_water.min(deepest.prefix.len());
    deepest.prefix.truncate(keep);
    deepest
        .prefix
        .extend(choices[keep..].iter().map(|choice| choice.id));
    deepest.prefix.extend(last);
    deepest.low_water = choices.len();
    deepest.found = Some((state.clone(), blocker, pending));
}
