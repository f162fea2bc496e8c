//! A linearizability checker for histories of concurrent operations.
//!
//! A history is linearizable if its operations can be put in one sequential order that respects
//! real time (an operation that returned before another was called comes first) and that a
//! sequential [`Model`] accepts. The checker is Wing and Gong's backtracking search with Lowe's
//! memoization of (linearized set, state), as in Porcupine, run on each partition (each key of a
//! key/value store) separately.
//!
//! - Operations whose outcome is unknown (the client gave up: `return_: None`) may take effect
//!   anywhere after their call, or never. The search tries them only after every operation with a
//!   known outcome, and the model may rule out beforehand those no order needs
//!   ([`Model::can_omit_unknown`]: for the key/value store, writes whose value no read saw), since
//!   each pending one multiplies the orders to try.
//! - A lookahead ([`Model::can_grow_into`]) abandons a state as soon as it can no longer become
//!   the value the next read saw (for the key/value store: while only appends can come before
//!   that read), which keeps concurrent appends read at the end from being exponential.
//! - A return at time `t` precedes a call at the same time `t`: the two are not concurrent.
//! - The search is bounded by a [`Budget`] of steps, not seconds, so a check gives the same
//!   answer on every machine; when it runs out the result is [`CheckResult::Unknown`] (unless a
//!   partition was already proven illegal).
//! - A failure comes with an [`Explanation`]: per illegal partition, the longest linearizable
//!   prefix found and the operation that cannot be placed after it.
//!
//! The checker is pure, deterministic and single-threaded.
//!
//! # Example
//!
//! A stale read: `x` was overwritten with `"b"` before the Get was called, yet it read `"a"`.
//!
//! ```
//! use lincheck::models::kv::{KvInput, KvOutput};
//! use lincheck::{Budget, CheckResult, Operation, check_kv};
//!
//! let put = |value: &str, call, ret| Operation {
//!     client_id: 0,
//!     input: KvInput::Put { key: "x".into(), value: value.into() },
//!     output: None,
//!     call,
//!     return_: Some(ret),
//! };
//! let get = Operation {
//!     client_id: 1,
//!     input: KvInput::Get { key: "x".into() },
//!     output: Some(KvOutput { value: "a".into() }),
//!     call: 30,
//!     return_: Some(40),
//! };
//! let history = vec![put("a", 0, 10), put("b", 10, 20), get];
//! match check_kv(&history, Budget::DEFAULT) {
//!     CheckResult::Illegal(explanation) => {
//!         let failure = &explanation.partitions[0];
//!         assert_eq!(failure.partition, "key \"x\"");
//!         assert_eq!(failure.prefix.len(), 2);
//!         assert_eq!(failure.unplaceable.index, 2);
//!         println!("{explanation}");
//!     }
//!     other => panic!("expected a violation, got {other:?}"),
//! }
//!
//! // As JSON (the format `sim run --history` writes): an append whose client gave up
//! // (`"return": null`) may still have taken effect, which explains the read of "ab".
//! let json = r#"{"model": "kv", "operations": [
//!   {"client_id": 0, "input": {"op": "put", "key": "x", "value": "a"}, "output": null, "call": 0, "return": 10},
//!   {"client_id": 0, "input": {"op": "append", "key": "x", "value": "b"}, "output": null, "call": 20, "return": null},
//!   {"client_id": 1, "input": {"op": "get", "key": "x"}, "output": {"value": "ab"}, "call": 30, "return": 40}
//! ]}"#;
//! assert_eq!(lincheck::check_json(json, Budget::DEFAULT), Ok(CheckResult::Ok));
//! ```

#![deny(missing_docs)]

mod bitset;
mod explain;
pub mod history;
pub mod model;
pub mod models;
mod search;

pub use explain::{Explanation, IllegalPartition, OperationSummary, SHOWN_PREFIX_MAX};
pub use history::{History, HistoryError};
pub use model::{Model, Operation};
pub use models::kv::{KvInput, KvModel, KvOperation, KvOutput};

use search::{Outcome, Steps, search};
use std::collections::BTreeMap;

/// How much search a check may do, counted in steps (one step is one move of the search:
/// trying an operation or undoing one), so that the answer does not depend on the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Steps for the whole check, shared by all partitions.
    pub max_steps: u64,
}

impl Budget {
    /// Ten million steps: a fraction of a second to a few seconds of search on one core (steps
    /// cost 30 to 300 ns), in the spirit of the one-second timeout MIT's tester gives Porcupine.
    /// Ordinary histories of 100,000 operations need a few hundred thousand.
    pub const DEFAULT: Budget = Budget {
        max_steps: 10_000_000,
    };

    /// No limit: the check runs until it decides (it may take exponential time).
    pub const UNLIMITED: Budget = Budget {
        max_steps: u64::MAX,
    };
}

impl Default for Budget {
    fn default() -> Budget {
        Budget::DEFAULT
    }
}

/// The verdict on a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckResult {
    /// The history is linearizable.
    Ok,
    /// The history is not linearizable; the explanation says where.
    Illegal(Explanation),
    /// The budget ran out before every partition was decided, and none was proven illegal.
    Unknown,
}

/// The most steps spent re-searching an illegal partition without the lookahead, for a longer
/// prefix to explain with (taken from the check's budget).
const EXPLANATION_STEPS_MAX: u64 = 1_000_000;

/// Checks a key/value history against MIT's key/value semantics ([`KvModel`]).
pub fn check_kv(operations: &[KvOperation], budget: Budget) -> CheckResult {
    check(&KvModel, operations, budget)
}

/// Parses a JSON history ([`history`] describes the format) and checks it with its model.
///
/// Malformed input is an error naming where the problem is; the checker never panics on input.
pub fn check_json(text: &str, budget: Budget) -> Result<CheckResult, HistoryError> {
    match history::from_json(text)? {
        History::Kv(operations) => Ok(check_kv(&operations, budget)),
    }
}

/// Checks whether `operations` are linearizable with respect to `model`.
///
/// Each partition is searched on its own, smallest first (ties by partition order), all sharing
/// `budget`. The result is [`CheckResult::Illegal`] if any partition is proven illegal (its
/// explanation lists every such partition), else [`CheckResult::Unknown`] if the budget ran out,
/// else [`CheckResult::Ok`].
pub fn check<M: Model>(
    model: &M,
    operations: &[Operation<M::Input, M::Output>],
    budget: Budget,
) -> CheckResult {
    let mut partitions: BTreeMap<M::Partition, Vec<usize>> = BTreeMap::new();
    for (index, op) in operations.iter().enumerate() {
        partitions
            .entry(model.partition(&op.input))
            .or_default()
            .push(index);
    }
    let mut partitions: Vec<(M::Partition, Vec<usize>)> = partitions.into_iter().collect();
    // Stable: equal sizes stay in partition order.
    partitions.sort_by_key(|(_, indices)| indices.len());

    let mut steps = Steps::new(budget.max_steps);
    let mut illegal = Vec::new();
    let mut undecided = Vec::new();
    for (partition, indices) in partitions {
        let total = indices.len();
        let all: Vec<&Operation<M::Input, M::Output>> =
            indices.iter().map(|&i| &operations[i]).collect();
        // Operations that constrain nothing: reads whose output is unknown, and unknown
        // outcomes the model can tell no order needs. (Whether one is omittable depends only on
        // recorded outputs, which are never omitted, so the order of these tests is free.)
        let mut indices: Vec<usize> = indices
            .into_iter()
            .filter(|&i| {
                let op = &operations[i];
                let unconstrained = op.output.is_none() && model.is_read_only(&op.input);
                let omittable = op.return_.is_none() && model.can_omit_unknown(op, &all);
                !unconstrained && !omittable
            })
            .collect();
        // Numbering operations in call order keeps the search's linearized sets compact.
        indices.sort_by_key(|&i| (operations[i].call, i));
        let ops: Vec<&Operation<M::Input, M::Output>> =
            indices.iter().map(|&i| &operations[i]).collect();
        let outcome = match search(model, &ops, true, &mut steps) {
            Outcome::Illegal(pruned) => {
                // The lookahead abandons a doomed state early, so its dead ends can be short;
                // the plain search reaches the true longest prefix, if it can in a few steps.
                let mut explaining = steps.split(EXPLANATION_STEPS_MAX);
                let plain = search(model, &ops, false, &mut explaining);
                steps.join(explaining);
                match plain {
                    Outcome::Illegal(plain) if plain.prefix.len() > pruned.prefix.len() => {
                        Outcome::Illegal(plain)
                    }
                    _ => Outcome::Illegal(pruned),
                }
            }
            other => other,
        };
        match outcome {
            Outcome::Legal => {}
            Outcome::OutOfSteps => undecided.push(partition.to_string()),
            Outcome::Illegal(failure) => {
                let summary = |id: usize| {
                    let index = indices[id];
                    let op = &operations[index];
                    OperationSummary {
                        index,
                        client_id: op.client_id,
                        call: op.call,
                        return_: op.return_,
                        description: model.describe_operation(&op.input, op.output.as_ref()),
                    }
                };
                illegal.push(IllegalPartition {
                    partition: partition.to_string(),
                    operations: total,
                    prefix: failure.prefix.iter().map(|&id| summary(id)).collect(),
                    state: model.describe_state(&failure.state),
                    unplaceable: summary(failure.blocker),
                    pending: failure.pending.iter().map(|&id| summary(id)).collect(),
                });
            }
        }
    }
    if !illegal.is_empty() {
        CheckResult::Illegal(Explanation {
            partitions: illegal,
            undecided,
        })
    } else if !undecided.is_empty() {
        CheckResult::Unknown
    } else {
        CheckResult::Ok
    }
}
