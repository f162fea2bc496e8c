//! Durable storage: what survives a crash.
//!
//! Each node has a [`Store`] holding a [`raft::DurableState`], fed by the node's `Persist`
//! outputs in order. A crash discards the node and keeps the store; a restart resumes a new node
//! from a clone of it. Writes are durable as soon as they are applied (no torn or lost writes
//! yet; the store is where those faults will go).

use raft::{DurableState, Persist, PersistError};

/// One node's durable store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Store {
    durable: DurableState,
    writes: u64,
}

impl Store {
    /// An empty store (a node that never ran).
    #[must_use]
    pub fn new() -> Store {
        Store::default()
    }

    /// Makes one persist operation durable. An error means the core asked for a write that does
    /// not fit what it persisted before: a core or simulator bug.
    pub fn apply(&mut self, op: &Persist) -> Result<(), PersistError> {
        self.durable.apply(op)?;
        self.writes += 1;
        Ok(())
    }

    /// Applies one persist operation the caller owns (no copy of its entries); see
    /// [`Store::apply`].
    pub fn apply_owned(&mut self, op: Persist) -> Result<(), PersistError> {
        self.durable.apply_owned(op)?;
        self.writes += 1;
        Ok(())
    }

    /// Replaces everything stored with `durable`, as corrupt storage would (the canary's hook;
    /// counted as one write).
    pub fn overwrite(&mut self, durable: DurableState) {
        self.durable = durable;
        self.writes += 1;
    }

    /// Everything persisted so far: what a restart resumes from.
    #[must_use]
    pub fn durable(&self) -> &DurableState {
        &self.durable
    }

    /// The labs' `RaftStateSize`: postcard size of the hard state and the log entries.
    #[must_use]
    pub fn raft_state_size_bytes(&self) -> usize {
        self.durable.raft_state_size_bytes()
    }

    /// The labs' `SnapshotSize`: bytes of snapshot data.
    #[must_use]
    pub fn snapshot_size_bytes(&self) -> usize {
        self.durable.snapshot_size_bytes()
    }

    /// How many persist operations the store has applied.
    #[must_use]
    pub fn writes(&self) -> u64 {
        self.writes
    }
}
