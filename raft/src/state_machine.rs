//! The typed layer: a user writes a single-node state machine over typed commands; the
//! [`Applier`] decodes committed entries (postcard) and feeds them to it in order.

use crate::message::Snapshot;
use crate::node::{Input, Output};
use crate::types::{Index, Term};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a snapshot restore can fail with (the state machine's own decoding error).
pub type SnapshotError = Box<dyn std::error::Error + Send + Sync>;

/// A deterministic single-node state machine. Replicas that apply the same commands in the same
/// order from the same snapshot must reach the same state.
pub trait StateMachine {
    /// The commands clients propose; encoded with postcard in log entries.
    type Command: Serialize + DeserializeOwned;
    /// What applying a command returns to the client.
    type Output;

    /// Applies one committed command at `index`.
    fn apply(&mut self, index: Index, command: Self::Command) -> Self::Output;

    /// Serializes the whole state.
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the whole state with a snapshot produced by `snapshot`.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), SnapshotError>;
}

/// Encodes a command for [`Input::Propose`].
#[must_use]
pub fn encode_command<C: Serialize>(command: &C) -> Vec<u8> {
    postcard::to_allocvec(command).expect("postcard encoding into a Vec never fails")
}

/// What one committed entry or snapshot did to the state machine.
#[derive(Debug)]
pub enum Applied<O> {
    /// A command was applied.
    Command {
        /// Its log index.
        index: Index,
        /// Its term (a client matches it against the term its proposal was accepted in).
        term: Term,
        /// The state machine's answer.
        output: O,
    },
    /// A committed entry did not decode as a command; every replica skips it the same way.
    Undecodable {
        /// Its log index.
        index: Index,
        /// Why it did not decode.
        error: postcard::Error,
    },
    /// The state was replaced by a snapshot up to `index`.
    Restored {
        /// The snapshot's last index.
        index: Index,
    },
}

/// The applier was handed something that would move the state machine wrongly.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// An entry arrived out of order (a driver bug: `Apply` outputs must be performed in order).
    #[error("expected entry {expected}, got {got}")]
    OutOfOrder {
        /// The next index the state machine needs.
        expected: Index,
        /// The index delivered.
        got: Index,
    },
    /// A snapshot older than the applied state (it would move the state machine back).
    #[error("snapshot at {snapshot} is behind the applied index {applied}")]
    StaleSnapshot {
        /// The snapshot's index.
        snapshot: Index,
        /// The state machine's applied index.
        applied: Index,
    },
    /// The state machine could not decode the snapshot.
    #[error("snapshot at {index} does not restore: {source}")]
    Restore {
        /// The snapshot's index.
        index: Index,
        /// The state machine's error.
        source: SnapshotError,
    },
}

/// Feeds a node's `Apply` and `Restore` outputs into a [`StateMachine`], decoding commands.
#[derive(Debug)]
pub struct Applier<S> {
    state: S,
    last_applied: Index,
}

impl<S: StateMachine> Applier<S> {
    /// An applier over a state machine in its initial state.
    pub fn new(state: S) -> Applier<S> {
        Applier {
            state,
            last_applied: Index(0),
        }
    }

    /// An applier over a state machine restored from the node's durable snapshot (for a restart).
    pub fn restored(mut state: S, snapshot: Option<&Snapshot>) -> Result<Applier<S>, ApplyError> {
        let Some(snapshot) = snapshot else {
            return Ok(Applier::new(state));
        };
        state
            .restore(&snapshot.data)
            .map_err(|source| ApplyError::Restore {
                index: snapshot.index,
                source,
            })?;
        Ok(Applier {
            state,
            last_applied: snapshot.index,
        })
    }

    /// The state machine.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The last index applied to the state machine.
    pub fn last_applied(&self) -> Index {
        self.last_applied
    }

    /// The input that compacts the node's log up to what is applied here.
    pub fn compact_input(&self) -> Input {
        Input::Compact {
            index: self.last_applied,
            snapshot: self.state.snapshot(),
        }
    }

    /// Performs one output if it is an `Apply` or a `Restore`; other outputs are the driver's
    /// and return nothing. Call it for every output, in order.
    pub fn handle(&mut self, output: &Output) -> Result<Vec<Applied<S::Output>>, ApplyError> {
        match output {
            Output::Apply(entries) => {
                let mut applied = Vec::with_capacity(entries.len());
                for entry in entries {
                    let expected = self.last_applied.next();
                    if entry.index != expected {
                        return Err(ApplyError::OutOfOrder {
                            expected,
                            got: entry.index,
                        });
                    }
                    self.last_applied = entry.index;
                    applied.push(match postcard::from_bytes(&entry.command) {
                        Ok(command) => Applied::Command {
                            index: entry.index,
                            term: entry.term,
                            output: self.state.apply(entry.index, command),
                        },
                        Err(error) => Applied::Undecodable {
                            index: entry.index,
                            error,
                        },
                    });
                }
                Ok(applied)
            }
            Output::Restore(snapshot) => {
                if snapshot.index <= self.last_applied {
                    return Err(ApplyError::StaleSnapshot {
                        snapshot: snapshot.index,
                        applied: self.last_applied,
                    });
                }
                self.state
                    .restore(&snapshot.data)
                    .map_err(|source| ApplyError::Restore {
                        index: snapshot.index,
                        source,
                    })?;
                self.last_applied = snapshot.index;
                Ok(vec![Applied::Restored {
                    index: snapshot.index,
                }])
            }
            Output::Persist(_) | Output::Send { .. } => Ok(Vec::new()),
        }
    }
}
