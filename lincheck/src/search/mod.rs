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
//!
//! A state the model's lookahead rules out ([`crate::Model::can_grow_into`]) is a dead end at
//! once, one step deeper than the choices made.

mod bitset;
mod events;
mod lookahead;
mod memo;

use crate::model::{Model, Operation};
use bitset::Bitset;
use events::{Events, KNOWN, UNKNOWN};
use lookahead::Lookahead;
use memo::Memo;

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

/// The longest prefix seen so far at a dead end, kept up to date in amortized O(1) per push.
struct Deepest<S> {
    prefix: Vec<usize>,
    /// The lowest the choice stack went since `prefix` was recorded: `prefix[..low_water]` is
    /// still the bottom of the stack.
    low_water: usize,
    /// The state after `prefix`, the operation that cannot be placed, the other candidates.
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
/// lookahead if `prune`.
pub(crate) fn search<M: Model>(
    model: &M,
    ops: &[&Operation<M::Input, M::Output>],
    prune: bool,
    steps: &mut Steps,
) -> Outcome<M::State> {
    let events = Events::new(ops);
    let lookahead = Lookahead::new(model, ops, &events, prune);
    let search = Search {
        model,
        ops,
        events,
        lookahead,
        linearized: Bitset::new(ops.len()),
        memo: Memo::new(),
        choices: Vec::new(),
        state: model.init(),
        known_left: ops.iter().filter(|op| op.return_.is_some()).count(),
        deepest: Deepest {
            prefix: Vec::new(),
            low_water: 0,
            found: None,
        },
    };
    search.run(steps)
}

/// The search of one partition in progress.
struct Search<'a, M: Model> {
    model: &'a M,
    ops: &'a [&'a Operation<M::Input, M::Output>],
    events: Events,
    lookahead: Lookahead,
    linearized: Bitset,
    memo: Memo<M::State>,
    /// The operations linearized, in order, each with the state before it.
    choices: Vec<Choice<M::State>>,
    /// The state after `choices`.
    state: M::State,
    /// Operations with a known outcome not linearized yet: the search is done at zero.
    known_left: usize,
    deepest: Deepest<M::State>,
}

impl<M: Model> Search<'_, M> {
    fn run(mut self, steps: &mut Steps) -> Outcome<M::State> {
        let mut cursor = Cursor::Known(self.events.next[KNOWN as usize]);
        while self.known_left > 0 {
            if !steps.take() {
                return Outcome::OutOfSteps;
            }
            cursor = match cursor {
                // The sentinel cannot be reached while an operation with a return is left (its
                // return stops the scan first); treating it as the limit keeps the loop safe.
                Cursor::Known(node) if node == KNOWN || !self.events.is_call[node as usize] => {
                    Cursor::Unknown {
                        node: self.events.next[UNKNOWN as usize],
                        limit: node,
                    }
                }
                Cursor::Known(node) => {
                    if self.linearize(node, KNOWN) {
                        Cursor::Known(self.events.next[KNOWN as usize])
                    } else {
                        Cursor::Known(self.events.next[node as usize])
                    }
                }
                Cursor::Unknown { node, limit } if node != UNKNOWN && node < limit => {
                    if self.linearize(node, limit) {
                        Cursor::Known(self.events.next[KNOWN as usize])
                    } else {
                        Cursor::Unknown {
                            node: self.events.next[node as usize],
                            limit,
                        }
                    }
                }
                Cursor::Unknown { limit, .. } => match self.backtrack(limit) {
                    Some(cursor) => cursor,
                    None => return self.fail(limit),
                },
            };
        }
        Outcome::Legal
    }

    /// Tries to linearize the operation whose call is `node` next (`limit` bounds the scan it
    /// was found in); `true` if it was.
    fn linearize(&mut self, node: u32, limit: u32) -> bool {
        let id = self.events.op[node as usize] as usize;
        let op = self.ops[id];
        let Some(next_state) = self.model.step(&self.state, &op.input, op.output.as_ref()) else {
            return false;
        };
        self.lookahead.remove(id);
        if let Some(read) = self.lookahead.next_read(&self.events)
            && !self.model.can_grow_into(&next_state, self.ops[read])
        {
            // The state can no longer become one the next read accepts: a dead end one step
            // deeper, with that read as the operation that cannot be placed.
            record(
                &mut self.deepest,
                &self.choices,
                Some(id),
                read,
                &next_state,
                Vec::new(),
            );
            self.lookahead.restore(id);
            return false;
        }
        self.linearized.insert(id);
        if !self.memo.insert(&self.linearized, &next_state) {
            self.linearized.remove(id);
            self.lookahead.restore(id);
            return false;
        }
        self.choices.push(Choice {
            id,
            previous: std::mem::replace(&mut self.state, next_state),
            limit,
        });
        if op.return_.is_some() {
            self.known_left -= 1;
        }
        self.events.lift(id);
        true
    }

    /// At a dead end (`limit`, the return of an operation not linearized, reached with no
    /// candidate left): records it, undoes the last choice and says where to scan next; `None`
    /// if there is no choice to undo.
    fn backtrack(&mut self, limit: u32) -> Option<Cursor> {
        let blocker = self.events.op[limit as usize] as usize;
        let pending = pending(&self.events, limit, blocker);
        record(
            &mut self.deepest,
            &self.choices,
            None,
            blocker,
            &self.state,
            pending,
        );
        let choice = self.choices.pop()?;
        self.deepest.low_water = self.deepest.low_water.min(self.choices.len());
        self.state = choice.previous;
        self.linearized.remove(choice.id);
        self.events.unlift(choice.id);
        self.lookahead.restore(choice.id);
        let after = self.events.next[self.events.call_node[choice.id] as usize];
        Some(if self.ops[choice.id].return_.is_some() {
            self.known_left += 1;
            Cursor::Known(after)
        } else {
            Cursor::Unknown {
                node: after,
                limit: choice.limit,
            }
        })
    }

    /// The verdict once no choice is left to undo at the dead end `limit`.
    fn fail(self, limit: u32) -> Outcome<M::State> {
        let blocker = self.events.op[limit as usize] as usize;
        let (state, blocker, pending) =
            self.deepest
                .found
                .unwrap_or((self.state, blocker, Vec::new()));
        Outcome::Illegal(Failure {
            prefix: self.deepest.prefix,
            state,
            blocker,
            pending,
        })
    }
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
