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

mod check;
mod explain;
pub mod history;
pub mod model;
pub mod models;
mod search;

pub use explain::{Explanation, IllegalPartition, OperationSummary, SHOWN_PREFIX_MAX};
pub use history::{History, HistoryError};
pub use model::{Model, Operation};
pub use models::kv::{KvInput, KvModel, KvOperation, KvOutput};

pub use check::check;

/// How much search a check may do, counted in steps (one step is one move of the search:
/// trying an operation or undoing one), so that the answer does not depend on the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Steps for the whole check, shared by all partitions.
    pub max_steps: u64,
}

impl Budget {
    /// Ten million steps: a fraction of a second to a few seconds of search on one core (steps
    /// cost 30 to 300 ns) and at most a few hundred MB of memo, in the spirit of the one-second
    /// timeout MIT's tester gives Porcupine. Ordinary histories of 100,000 operations need a few
    /// hundred thousand steps.
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
