//! Why a history is not linearizable, in terms a person can check by hand.

use std::fmt;

/// Prefix operations [`Explanation`]'s `Display` shows per partition (the last ones: where the
/// search got stuck); the struct itself keeps the whole prefix.
pub const SHOWN_PREFIX_MAX: usize = 20;

/// One operation of the history, described for a reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationSummary {
    /// Its position in the checked history (`operations[index]` in the JSON form).
    pub index: usize,
    /// The client that issued it.
    pub client_id: u64,
    /// When it was called.
    pub call: u64,
    /// When it returned; `None` if its outcome is unknown.
    pub return_: Option<u64>,
    /// What it did, in the model's words (for a key/value store, `get("x") -> "a"`).
    pub description: String,
}

impl fmt::Display for OperationSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} client {} [{}, ",
            self.index, self.client_id, self.call
        )?;
        match self.return_ {
            Some(ret) => write!(f, "{ret}]")?,
            None => write!(f, "?]")?,
        }
        write!(f, " {}", self.description)
    }
}

/// Where the search of one partition (a key) got stuck.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IllegalPartition {
    /// The partition, as the model displays it (for a key/value store, `key "x"`).
    pub partition: String,
    /// How many operations of the history belong to it.
    pub operations: usize,
    /// The longest prefix of a legal order the search found, in that order.
    pub prefix: Vec<OperationSummary>,
    /// The model's state after the prefix.
    pub state: String,
    /// An operation that returned before it could be placed after the prefix: no operation
    /// pending at that point leads to a legal state, and this one had to come by its return.
    pub unplaceable: OperationSummary,
    /// The other operations that could have come next after the prefix; the model accepts none
    /// of them in that state either.
    pub pending: Vec<OperationSummary>,
}

impl fmt::Display for IllegalPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} ({} operations): the longest linearizable prefix has {} operations",
            self.partition,
            self.operations,
            self.prefix.len()
        )?;
        let hidden = self.prefix.len().saturating_sub(SHOWN_PREFIX_MAX);
        if hidden > 0 {
            writeln!(f, "    ... {hidden} earlier operations")?;
        }
        for (position, op) in self.prefix.iter().enumerate().skip(hidden) {
            writeln!(f, "    {}. {op}", position + 1)?;
        }
        writeln!(f, "  state after the prefix: {}", self.state)?;
        write!(
            f,
            "  cannot be placed next (it returned before any legal order reached it): {}",
            self.unplaceable
        )?;
        for op in &self.pending {
            write!(f, "\n  nor can the concurrent: {op}")?;
        }
        Ok(())
    }
}

/// Why a history is not linearizable: each partition (key) that has no legal order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The partitions proven not linearizable, in the order they were checked (smallest first).
    pub partitions: Vec<IllegalPartition>,
    /// Partitions the budget ran out on before they were decided (displayed names): they may
    /// hold more violations.
    pub undecided: Vec<String>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not linearizable: {} partition(s) have no legal order",
            self.partitions.len()
        )?;
        for partition in &self.partitions {
            write!(f, "\n{partition}")?;
        }
        if !self.undecided.is_empty() {
            write!(
                f,
                "\n(the step budget ran out before {} other partition(s) were decided)",
                self.undecided.len()
            )?;
        }
        Ok(())
    }
}
