//! What nodes say to each other, and what the log holds. All of it derives serde; postcard is the
//! wire and storage encoding.

use crate::bytes::SharedBytes;
use crate::types::{Index, Term};
use serde::{Deserialize, Serialize};

/// One log entry. Commands are opaque bytes to the core; the typed layer encodes them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The entry's position in the log.
    pub index: Index,
    /// The term of the leader that created the entry.
    pub term: Term,
    /// The application's command: shared, so copies of the entry (in messages, stores and
    /// `Apply` outputs) do not copy it.
    pub command: SharedBytes,
}

impl Entry {
    /// The entry's postcard-encoded size in bytes, without encoding it.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        varint_len(self.index.0)
            + varint_len(self.term.0)
            + varint_len(self.command.len() as u64)
            + self.command.len()
    }
}

/// A state-machine snapshot covering every entry up to and including `index`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The last log index the snapshot covers.
    pub index: Index,
    /// The term of the entry at `index`.
    pub term: Term,
    /// The application's serialized state.
    pub data: Vec<u8>,
}

/// Every message carries the sender's term; the payload says what kind it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The sender's current term.
    pub term: Term,
    /// What the message says.
    pub payload: Payload,
}

/// The kinds of message in the protocol: three requests and their replies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// A candidate asks for a vote (Figure 2, RequestVote arguments).
    RequestVote {
        /// Index of the candidate's last log entry.
        last_log_index: Index,
        /// Term of the candidate's last log entry.
        last_log_term: Term,
    },
    /// The answer to `RequestVote`.
    RequestVoteReply {
        /// True when the vote was granted in the message's term.
        granted: bool,
    },
    /// The leader replicates entries, or sends a heartbeat when `entries` is empty.
    AppendEntries {
        /// Index of the entry just before `entries`.
        prev_index: Index,
        /// Term of the entry at `prev_index`.
        prev_term: Term,
        /// Entries to store, in index order, starting at `prev_index + 1`.
        entries: Vec<Entry>,
        /// The leader's commit index.
        leader_commit: Index,
    },
    /// The answer to `AppendEntries`.
    AppendEntriesReply {
        /// The `prev_index` of the request this answers, so a leader can tell stale replies.
        prev_index: Index,
        /// What the follower did.
        result: AppendResult,
    },
    /// The leader sends its whole snapshot in one message to a follower that needs discarded
    /// entries.
    InstallSnapshot {
        /// The snapshot.
        snapshot: Snapshot,
    },
    /// The answer to `InstallSnapshot`.
    InstallSnapshotReply {
        /// The follower's log is now known to match the leader's up to this index.
        match_index: Index,
    },
}

/// The outcome of an `AppendEntries` on the follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendResult {
    /// The follower's log matches the leader's up to `match_index`.
    Success {
        /// The last index the follower now shares with the leader.
        match_index: Index,
    },
    /// The follower's log has no entry matching `prev_index`/`prev_term`; the hint lets the
    /// leader skip a whole term of conflicting entries per round trip.
    Conflict(ConflictHint),
}

/// Why an `AppendEntries` did not match, and where the leader should try next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictHint {
    /// The term of the follower's entry at `prev_index`, or `None` if its log is shorter.
    pub conflict_term: Option<Term>,
    /// The first index the follower holds with `conflict_term` (when it is `Some`).
    pub first_index_of_term: Index,
    /// The follower's last log index.
    pub last_index: Index,
}

impl Payload {
    /// True for the three requests, false for the replies. The simulator's fault profiles treat
    /// them differently (the labs drop requests and replies with separate probabilities).
    #[must_use]
    pub fn is_request(&self) -> bool {
        match self {
            Payload::RequestVote { .. }
            | Payload::AppendEntries { .. }
            | Payload::InstallSnapshot { .. } => true,
            Payload::RequestVoteReply { .. }
            | Payload::AppendEntriesReply { .. }
            | Payload::InstallSnapshotReply { .. } => false,
        }
    }

    /// A short name for traces and counters.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::RequestVote { .. } => "RequestVote",
            Payload::RequestVoteReply { .. } => "RequestVoteReply",
            Payload::AppendEntries { .. } => "AppendEntries",
            Payload::AppendEntriesReply { .. } => "AppendEntriesReply",
            Payload::InstallSnapshot { .. } => "InstallSnapshot",
            Payload::InstallSnapshotReply { .. } => "InstallSnapshotReply",
        }
    }
}

/// A message that could not be decoded from bytes.
#[derive(Debug, thiserror::Error)]
#[error("malformed message: {0}")]
pub struct DecodeError(#[from] postcard::Error);

impl Message {
    /// Encodes the message with postcard.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain data structs into a growable Vec cannot fail.
        postcard::to_allocvec(self).expect("postcard encoding into a Vec never fails")
    }

    /// Decodes a message from postcard bytes; malformed input is a typed error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        Ok(postcard::from_bytes(bytes)?)
    }

    /// The message's postcard-encoded size in bytes (what the labs' byte counters add up).
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        let payload = match &self.payload {
            Payload::RequestVote {
                last_log_index,
                last_log_term,
            } => varint_len(last_log_index.0) + varint_len(last_log_term.0),
            Payload::RequestVoteReply { .. } => 1,
            Payload::AppendEntries {
                prev_index,
                prev_term,
                entries,
                leader_commit,
            } => {
                varint_len(prev_index.0)
                    + varint_len(prev_term.0)
                    + varint_len(entries.len() as u64)
                    + entries.iter().map(Entry::encoded_len).sum::<usize>()
                    + varint_len(leader_commit.0)
            }
            Payload::AppendEntriesReply { prev_index, result } => {
                varint_len(prev_index.0)
                    + 1
                    + match result {
                        AppendResult::Success { match_index } => varint_len(match_index.0),
                        AppendResult::Conflict(hint) => {
                            hint.conflict_term.map_or(1, |t| 1 + varint_len(t.0))
                                + varint_len(hint.first_index_of_term.0)
                                + varint_len(hint.last_index.0)
                        }
                    }
            }
            Payload::InstallSnapshot { snapshot } => snapshot_encoded_len(snapshot),
            Payload::InstallSnapshotReply { match_index } => varint_len(match_index.0),
        };
        // One byte of enum discriminant (fewer than 128 variants).
        varint_len(self.term.0) + 1 + payload
    }
}

/// A snapshot's postcard-encoded size in bytes.
#[must_use]
pub fn snapshot_encoded_len(snapshot: &Snapshot) -> usize {
    varint_len(snapshot.index.0)
        + varint_len(snapshot.term.0)
        + varint_len(snapshot.data.len() as u64)
        + snapshot.data.len()
}

/// Bytes postcard uses for an unsigned varint.
#[must_use]
pub(crate) fn varint_len(v: u64) -> usize {
    let bits = 64 - v.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}
