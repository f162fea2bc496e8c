//! What a history is checked against: operations as clients saw them, and a sequential model.

use std::fmt;
use std::hash::Hash;

/// One operation of a concurrent history, as the client that issued it saw it.
///
/// Times are virtual microseconds (any monotonic unit works; only their order matters).
/// `return_: None` means the outcome is unknown (the client gave up waiting): the operation may
/// have taken effect at any moment after its call, or never. `output: None` with a known return
/// means the result was not recorded: the operation took effect between call and return, but its
/// output is not compared.
///
/// An operation is concurrent with another unless one returned no later than the other was
/// called: a return at time `t` precedes a call at the same time `t`.
///
/// That tie rule is stricter than Porcupine's (which calls such operations concurrent). It is
/// sound when an operation cannot take effect at the instant it is called, as in the simulator,
/// where every request and reply spends at least the network's base latency in flight. For
/// histories stamped by a coarse real clock, widen each interval by the clock's resolution.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Operation<I, O> {
    /// Which client issued the operation (for explanations only; the check does not use it).
    pub client_id: u64,
    /// What the client asked for.
    pub input: I,
    /// What the client got back, if it knows.
    pub output: Option<O>,
    /// When the client issued the operation.
    pub call: u64,
    /// When the client got the answer; `None` if it never did (outcome unknown).
    ///
    /// A return earlier than the call is read as equal to the call (the JSON reader rejects
    /// such histories instead).
    pub return_: Option<u64>,
}

impl<I, O> Operation<I, O> {
    /// Whether the client never learnt the outcome (`return_` is `None`).
    pub fn outcome_unknown(&self) -> bool {
        self.return_.is_none()
    }
}

/// A sequential specification: the states an object can be in and how each operation moves it.
///
/// The checker asks whether the operations of a history can be put in one order that respects
/// real time (an operation that returned before another was called comes first) and in which
/// every operation, applied with [`Model::step`], is legal. Models must be pure: the same
/// arguments always give the same answer.
pub trait Model {
    /// The object's state. Hashed and compared with `==` to memoize the search, so two states
    /// that behave the same should compare equal; cloned once per step, so make clones and
    /// hashes cheap (share large values behind an `Rc`, cache their hash).
    type State: Clone + Eq + Hash;
    /// What a client asks for.
    type Input;
    /// What a client gets back.
    type Output;
    /// The independent part of the object an operation touches (a key of a key/value store).
    /// Operations in different partitions never constrain each other, so each partition is
    /// checked on its own; its `Display` names it in explanations (for example `key "x"`).
    type Partition: Ord + Clone + fmt::Display;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// Applies `input` to `state`: the next state if the operation is legal there and, when
    /// `output` is `Some`, produces exactly that output; `None` if it is illegal. With `output`
    /// equal to `None` (outcome or result unknown), any output is accepted.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;

    /// The partition `input` belongs to. A model without independent parts returns the same
    /// value for every input.
    fn partition(&self, input: &Self::Input) -> Self::Partition;

    /// Whether `input` never changes the state (a read). The checker drops read-only operations
    /// whose output is unknown before the search: they constrain nothing. The default, `false`,
    /// is always correct, only slower.
    fn is_read_only(&self, input: &Self::Input) -> bool {
        let _ = input;
        false
    }

    /// Whether `op`, whose outcome is unknown (`return_: None`), can be left out of the search
    /// without changing the verdict: return `true` only if every legal order of the partition
    /// that includes it stays legal without it (typically: its effect is visible in no recorded
    /// output of an operation that could come after it; `partition` holds every operation of
    /// its partition, `op` included). Each pending unknown operation multiplies the orders the
    /// search may try, and most are requests that were lost, so this is where a model saves the
    /// most. The default, `false`, is always correct.
    fn can_omit_unknown(
        &self,
        op: &Operation<Self::Input, Self::Output>,
        partition: &[&Operation<Self::Input, Self::Output>],
    ) -> bool {
        let _ = (op, partition);
        false
    }

    /// Lookahead: whether `input` only grows the state, in the sense of
    /// [`Model::can_grow_into`] (reads and appends of a key/value store; not puts). The default,
    /// `false`, turns the lookahead off.
    fn only_grows(&self, input: &Self::Input) -> bool {
        let _ = input;
        false
    }

    /// Lookahead: whether operations for which [`Model::only_grows`] holds can take `state` to
    /// one where `read` (a read-only operation with a recorded output) is legal. Return `false`
    /// only when they cannot (for a key/value store: the value read does not start with the
    /// current one). When every operation that could come before the next read only grows the
    /// state, the search abandons a state that cannot grow into it at once, instead of finding
    /// out when it reaches the read: without it, appends to one key with a single read at the
    /// end are exponential. The default, `true`, is always correct.
    fn can_grow_into(
        &self,
        state: &Self::State,
        read: &Operation<Self::Input, Self::Output>,
    ) -> bool {
        let _ = (state, read);
        true
    }

    /// One line describing an operation for explanations, for example `get("x") -> "a"`.
    fn describe_operation(&self, input: &Self::Input, output: Option<&Self::Output>) -> String;

    /// One line describing a state for explanations.
    fn describe_state(&self, state: &Self::State) -> String;
}
