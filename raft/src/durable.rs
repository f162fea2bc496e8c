//! What a node keeps across crashes, and the operations that change it.

use crate::log::{Log, LogError};
use crate::message::{Entry, Snapshot, varint_len};
use crate::types::{NodeId, Term};
use serde::{Deserialize, Serialize};

/// The vote and term, which must survive a crash so a node never votes twice in one term.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term the node has seen.
    pub term: Term,
    /// The candidate the node voted for in `term`, if any.
    pub voted_for: Option<NodeId>,
}

impl HardState {
    /// The postcard-encoded size in bytes.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        varint_len(self.term.0)
            + self
                .voted_for
                .map_or(1, |id| 1 + varint_len(u64::from(id.0)))
    }
}

/// One durable write. A driver applies these to its store in order, and each must be durable
/// before the driver performs any later output of the same step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Persist {
    /// Replace the hard state.
    HardState(HardState),
    /// Remove every log entry from the first given entry's index on, then append the entries.
    /// Never empty; the first index is at most one past the current last index.
    Append(Vec<Entry>),
    /// Store this snapshot, replacing the older one. Log entries after it are kept only if the
    /// log holds the snapshot's last entry with the same term; otherwise the log is emptied.
    Snapshot(Snapshot),
}

/// Everything a node persisted: what `Node::restore` resumes from after a crash. Applying a
/// node's `Persist` outputs in order to a `DurableState` gives exactly the node's own durable view.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DurableParts", into = "DurableParts")]
pub struct DurableState {
    /// The term and vote.
    pub hard_state: HardState,
    /// The snapshot and the log after it.
    pub log: Log,
}

/// A persist operation that does not fit the durable state: a driver bug or corrupt storage.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PersistError {
    /// An append that does not fit the log.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The term of a hard-state write goes backwards.
    #[error("hard state term {new} is lower than the stored term {stored}")]
    TermRegression {
        /// The stored term.
        stored: Term,
        /// The term written.
        new: Term,
    },
}

impl DurableState {
    /// Applies one persist operation, as a driver's store must.
    pub fn apply(&mut self, op: &Persist) -> Result<(), PersistError> {
        match op {
            Persist::HardState(hard_state) => {
                if hard_state.term < self.hard_state.term {
                    return Err(PersistError::TermRegression {
                        stored: self.hard_state.term,
                        new: hard_state.term,
                    });
                }
                self.hard_state = *hard_state;
            }
            Persist::Append(entries) => self.log.append(entries.clone())?,
            Persist::Snapshot(snapshot) => {
                self.log.install_snapshot(snapshot.clone());
            }
        }
        Ok(())
    }

    /// Applies one persist operation the caller owns, exactly as [`DurableState::apply`] does,
    /// but moving its entries or snapshot into the log instead of copying them.
    pub fn apply_owned(&mut self, op: Persist) -> Result<(), PersistError> {
        match op {
            Persist::HardState(_) => self.apply(&op)?,
            Persist::Append(entries) => self.log.append(entries)?,
            Persist::Snapshot(snapshot) => {
                self.log.install_snapshot(snapshot);
            }
        }
        Ok(())
    }

    /// Postcard size of the hard state and log entries, without the snapshot: the labs'
    /// `RaftStateSize`.
    #[must_use]
    pub fn raft_state_size_bytes(&self) -> usize {
        self.hard_state.encoded_len() + self.log.entries_encoded_len()
    }

    /// Postcard size of the snapshot's data (0 without a snapshot).
    #[must_use]
    pub fn snapshot_size_bytes(&self) -> usize {
        self.log.snapshot().map_or(0, |s| s.data.len())
    }

    /// Encodes the whole durable state with postcard.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("postcard encoding into a Vec never fails")
    }

    /// Decodes a durable state, checking that its log fits together.
    pub fn decode(bytes: &[u8]) -> Result<DurableState, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

/// The serialized shape of `DurableState`; decoding checks the log's consistency.
#[derive(Serialize, Deserialize)]
struct DurableParts {
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
}

impl TryFrom<DurableParts> for DurableState {
    type Error = LogError;

    fn try_from(parts: DurableParts) -> Result<DurableState, LogError> {
        Ok(DurableState {
            hard_state: parts.hard_state,
            log: Log::from_parts(parts.snapshot, parts.entries)?,
        })
    }
}

impl From<DurableState> for DurableParts {
    fn from(state: DurableState) -> DurableParts {
        DurableParts {
            hard_state: state.hard_state,
            snapshot: state.log.snapshot().cloned(),
            entries: state.log.entries().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Entry, Index, Term};

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index: Index(index),
            term: Term(term),
            command: vec![u8::try_from(index).unwrap_or(0)].into(),
        }
    }

    #[test]
    fn apply_owned_accepts_and_refuses_what_apply_does() {
        let ops = [
            Persist::HardState(HardState {
                term: Term(2),
                voted_for: None,
            }),
            Persist::Append(vec![entry(1, 1), entry(2, 2)]),
            Persist::Append(vec![entry(4, 2)]),
            Persist::HardState(HardState {
                term: Term(1),
                voted_for: None,
            }),
            Persist::Append(vec![entry(3, 1)]),
            Persist::Append(vec![entry(3, 2)]),
        ];
        let mut by_ref = DurableState::default();
        let mut by_value = DurableState::default();
        let mut refused = 0;
        for op in ops {
            let expected = by_ref.apply(&op);
            refused += usize::from(expected.is_err());
            assert_eq!(by_value.apply_owned(op), expected);
            assert_eq!(by_value, by_ref);
        }
        assert_eq!(refused, 3, "the gap, the term regressions are refused");
        assert_eq!(by_value.log.last_index(), Index(3));
    }
}
