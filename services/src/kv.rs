//! A replicated key/value store: the state machine every replica runs.
//!
//! [`KvStore`] implements [`raft::StateMachine`] over [`Command`]s (Get, Put, Append, Delete),
//! each tagged with the issuing clerk's id and a per-clerk sequence number. Its [`Reply`] serves
//! both labs' semantics:
//!
//! | operation | `succ` | `value` |
//! |---|---|---|
//! | Get, key present | true | the value |
//! | Get, key missing | false | `""` (MIT: a missing key reads as empty) |
//! | Put, new key | true | the new value |
//! | Put, key present (replaced) | false | the old value |
//! | Append, key present | true | `""` |
//! | Append, key missing (acts as Put) | false | `""` |
//! | Delete, key present | true | the old value |
//! | Delete, key missing | false | `""` |
//!
//! **Exactly once.** A clerk retries a command until it hears back, so a command can commit
//! several times. The store keeps, per clerk, the last sequence number applied and its reply
//! (the dedup table, part of the replicated state and of the snapshot): a command whose sequence
//! number is the last one gets the cached reply and changes nothing; an older one gets
//! [`Output::Stale`]. Clerks issue one command at a time, so the latest reply is all a retry can
//! need.
//!
//! A Get changes nothing, so its reply is not cached (a value can be large, and the table is in
//! every snapshot): a retried Get reads again. That is still linearizable: the clerk is waiting
//! on that very command, so the second read also falls inside its call.

use raft::{Index, StateMachine};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a command does to the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Reads a key.
    Get {
        /// The key.
        key: String,
    },
    /// Sets a key, replacing any value.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Appends to a key's value (a missing key counts as empty).
    Append {
        /// The key.
        key: String,
        /// What to append.
        value: String,
    },
    /// Removes a key.
    Delete {
        /// The key.
        key: String,
    },
}

impl Op {
    /// The key the operation touches.
    #[must_use]
    pub fn key(&self) -> &str {
        match self {
            Op::Get { key } | Op::Put { key, .. } | Op::Append { key, .. } | Op::Delete { key } => {
                key
            }
        }
    }
}

/// A clerk's command: the operation, who sent it, and its place in that clerk's sequence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// The clerk's id (unique per clerk; the store assumes nothing else about it).
    pub client: u64,
    /// The clerk's sequence number for this command: 1, 2, … (each retry reuses it).
    pub seq: u64,
    /// The operation.
    pub op: Op,
}

/// The result of an operation (see the table in the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// SJTU's `succ`: the key was present (Get, Delete, Append) or absent (Put).
    pub succ: bool,
    /// The value read, written, replaced or removed.
    pub value: String,
}

/// What applying a command returns to the clerk that proposed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    /// The command's reply: fresh, or the cached one for a retried command.
    Reply(Reply),
    /// The command is older than the clerk's latest applied one: a delayed copy of a command
    /// the clerk has already moved past. Nothing was applied.
    Stale {
        /// The clerk's latest applied sequence number.
        last_seq: u64,
    },
}

/// The dedup record of one clerk: its last applied sequence number and that command's reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The last sequence number applied.
    pub seq: u64,
    /// Its reply, returned again to a retry; `None` for a Get, which a retry runs again.
    pub reply: Option<Reply>,
}

/// Why a snapshot does not restore.
#[derive(Debug, thiserror::Error)]
pub enum KvSnapshotError {
    /// The bytes do not start with the key/value snapshot tag.
    #[error("not a key/value snapshot (tag {found:?})")]
    WrongTag {
        /// The first bytes found.
        found: Vec<u8>,
    },
    /// The bytes do not decode.
    #[error("snapshot does not decode: {0}")]
    Decode(#[from] postcard::Error),
    /// Bytes are left over after the snapshot.
    #[error("{0} trailing bytes after the snapshot")]
    Trailing(usize),
}

/// The first bytes of every snapshot: a format tag, so that another service's snapshot (or
/// noise that happens to decode) is refused.
const SNAPSHOT_TAG: [u8; 4] = *b"kv1\0";

/// The snapshot's body: applied index, data, dedup table.
#[derive(Deserialize)]
struct Image {
    applied: u64,
    data: BTreeMap<String, String>,
    sessions: BTreeMap<u64, Session>,
}

/// [`Image`] by reference, to encode a snapshot without copying the store first.
#[derive(Serialize)]
struct ImageRef<'a> {
    applied: u64,
    data: &'a BTreeMap<String, String>,
    sessions: &'a BTreeMap<u64, Session>,
}

/// The key/value state machine (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvStore {
    applied: Index,
    data: BTreeMap<String, String>,
    sessions: BTreeMap<u64, Session>,
}

impl KvStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> KvStore {
        KvStore::default()
    }

    /// The value of `key`, if present (a local read, for tests and tools; clients read through
    /// the log).
    #[must_use]
    pub fn value(&self, key: &str) -> Option<&str> {
        self.data.get(key).map(String::as_str)
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when no key is present.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The index of the last command applied (or restored).
    #[must_use]
    pub fn applied(&self) -> Index {
        self.applied
    }

    /// The dedup record of `client`, if it has had a command applied.
    #[must_use]
    pub fn session(&self, client: u64) -> Option<&Session> {
        self.sessions.get(&client)
    }

    /// Applies `op` to the data (no dedup).
    fn execute(&mut self, op: Op) -> Reply {
        match op {
            Op::Get { key } => match self.data.get(&key) {
                Some(value) => Reply {
                    succ: true,
                    value: value.clone(),
                },
                None => Reply::default(),
            },
            Op::Put { key, value } => match self.data.insert(key, value.clone()) {
                Some(old) => Reply {
                    succ: false,
                    value: old,
                },
                None => Reply { succ: true, value },
            },
            Op::Append { key, value } => {
                let present = self.data.contains_key(&key);
                self.data.entry(key).or_default().push_str(&value);
                Reply {
                    succ: present,
                    value: String::new(),
                }
            }
            Op::Delete { key } => match self.data.remove(&key) {
                Some(old) => Reply {
                    succ: true,
                    value: old,
                },
                None => Reply::default(),
            },
        }
    }
}

impl StateMachine for KvStore {
    type Command = Command;
    type Output = Output;

    fn apply(&mut self, index: Index, command: Command) -> Output {
        self.applied = index;
        let Command { client, seq, op } = command;
        if let Some(session) = self.sessions.get(&client) {
            if seq < session.seq {
                return Output::Stale {
                    last_seq: session.seq,
                };
            }
            if seq == session.seq
                && let Some(reply) = &session.reply
            {
                return Output::Reply(reply.clone());
            }
        }
        let is_get = matches!(op, Op::Get { .. });
        let reply = self.execute(op);
        let cached = (!is_get).then(|| reply.clone());
        self.sessions.insert(client, Session { seq, reply: cached });
        Output::Reply(reply)
    }

    fn snapshot(&self) -> Vec<u8> {
        let image = ImageRef {
            applied: self.applied.0,
            data: &self.data,
            sessions: &self.sessions,
        };
        // Room for every string and a few bytes of framing each, so that the buffer is
        // allocated once: snapshots are taken often and can be large.
        let strings: usize = self.data.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
        let sessions: usize = self
            .sessions
            .values()
            .map(|s| 24 + s.reply.as_ref().map_or(0, |r| r.value.len() + 4))
            .sum();
        let mut bytes = Vec::with_capacity(SNAPSHOT_TAG.len() + 16 + strings + sessions);
        bytes.extend_from_slice(&SNAPSHOT_TAG);
        match postcard::to_extend(&image, bytes) {
            Ok(bytes) => bytes,
            Err(error) => unreachable!("postcard encoding into a Vec never fails: {error}"),
        }
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        *self = KvStore::decode(snapshot)?;
        Ok(())
    }
}

impl KvStore {
    /// Decodes a snapshot made by [`StateMachine::snapshot`].
    pub fn decode(snapshot: &[u8]) -> Result<KvStore, KvSnapshotError> {
        let Some(body) = snapshot.strip_prefix(&SNAPSHOT_TAG) else {
            let found = snapshot.iter().take(SNAPSHOT_TAG.len()).copied().collect();
            return Err(KvSnapshotError::WrongTag { found });
        };
        let (image, rest): (Image, &[u8]) = postcard::take_from_bytes(body)?;
        if !rest.is_empty() {
            return Err(KvSnapshotError::Trailing(rest.len()));
        }
        Ok(KvStore {
            applied: Index(image.applied),
            data: image.data,
            sessions: image.sessions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn get(key: &str) -> Op {
        Op::Get { key: key.into() }
    }
    fn put(key: &str, value: &str) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
        }
    }
    fn append(key: &str, value: &str) -> Op {
        Op::Append {
            key: key.into(),
            value: value.into(),
        }
    }
    fn delete(key: &str) -> Op {
        Op::Delete { key: key.into() }
    }
    fn reply(succ: bool, value: &str) -> Output {
        Output::Reply(Reply {
            succ,
            value: value.into(),
        })
    }

    /// Applies `op` as client 1's next command.
    fn run(store: &mut KvStore, seq: u64, op: Op) -> Output {
        let index = store.applied().next();
        store.apply(index, Command { client: 1, seq, op })
    }

    #[test]
    fn sjtu_semantics() {
        let mut s = KvStore::new();
        assert_eq!(run(&mut s, 1, get("k")), reply(false, ""));
        assert_eq!(run(&mut s, 2, put("k", "v1")), reply(true, "v1"));
        assert_eq!(run(&mut s, 3, put("k", "v2")), reply(false, "v1"));
        assert_eq!(run(&mut s, 4, get("k")), reply(true, "v2"));
        assert_eq!(run(&mut s, 5, delete("k")), reply(true, "v2"));
        assert_eq!(run(&mut s, 6, delete("k")), reply(false, ""));
        assert_eq!(run(&mut s, 7, get("k")), reply(false, ""));
        assert!(s.is_empty());
        assert_eq!(s.applied(), Index(7));
    }

    #[test]
    fn mit_semantics_append_concatenates_and_missing_reads_empty() {
        let mut s = KvStore::new();
        assert_eq!(run(&mut s, 1, append("k", "x 0 0 y")), reply(false, ""));
        assert_eq!(run(&mut s, 2, append("k", "x 0 1 y")), reply(true, ""));
        assert_eq!(run(&mut s, 3, get("k")), reply(true, "x 0 0 yx 0 1 y"));
        assert_eq!(run(&mut s, 4, get("other")), reply(false, ""));
        assert_eq!(run(&mut s, 5, put("k", "")), reply(false, "x 0 0 yx 0 1 y"));
        assert_eq!(s.value("k"), Some(""));
    }

    #[test]
    fn a_retried_command_returns_the_cached_reply_and_changes_nothing() {
        let mut s = KvStore::new();
        assert_eq!(run(&mut s, 1, append("k", "a")), reply(false, ""));
        // The same (client, seq) again: cached reply, no second append.
        assert_eq!(run(&mut s, 1, append("k", "a")), reply(false, ""));
        assert_eq!(s.value("k"), Some("a"));
        assert_eq!(run(&mut s, 2, put("k", "b")), reply(false, "a"));
        assert_eq!(run(&mut s, 2, put("k", "b")), reply(false, "a"));
        // An older command is stale and not applied.
        assert_eq!(
            run(&mut s, 1, append("k", "a")),
            Output::Stale { last_seq: 2 }
        );
        assert_eq!(s.value("k"), Some("b"));
        // Another clerk with the same seq is a different session.
        let other = Command {
            client: 2,
            seq: 2,
            op: append("k", "c"),
        };
        assert_eq!(s.apply(Index(9), other), reply(true, ""));
        assert_eq!(s.value("k"), Some("bc"));
        assert_eq!(s.session(1).map(|x| x.seq), Some(2));
    }

    #[test]
    fn a_retried_get_reads_again_and_is_not_cached() {
        let mut s = KvStore::new();
        run(&mut s, 1, put("k", "a"));
        assert_eq!(run(&mut s, 2, get("k")), reply(true, "a"));
        assert_eq!(s.session(1).and_then(|x| x.reply.clone()), None);
        let other = Command {
            client: 2,
            seq: 1,
            op: put("k", "b"),
        };
        s.apply(Index(3), other);
        // Client 1 is still waiting on seq 2: the retry reads the current value.
        assert_eq!(run(&mut s, 2, get("k")), reply(true, "b"));
        assert_eq!(run(&mut s, 1, get("k")), Output::Stale { last_seq: 2 });
    }

    #[test]
    fn snapshot_round_trips_data_index_and_dedup_table() {
        let mut s = KvStore::new();
        run(&mut s, 1, put("a", "1"));
        run(&mut s, 2, append("a", "2"));
        let bytes = s.snapshot();
        let mut restored = KvStore::new();
        restored.restore(&bytes).unwrap();
        assert_eq!(restored, s);
        assert_eq!(restored.applied(), Index(2));
        // The dedup table came along: a retry of seq 2 does not append again.
        assert_eq!(run(&mut restored, 2, append("a", "2")), reply(true, ""));
        assert_eq!(restored.value("a"), Some("12"));
    }

    #[test]
    fn restore_rejects_garbage_with_typed_errors() {
        assert!(matches!(
            KvStore::decode(b""),
            Err(KvSnapshotError::WrongTag { .. })
        ));
        assert!(matches!(
            KvStore::decode(b"journal"),
            Err(KvSnapshotError::WrongTag { .. })
        ));
        let mut truncated = KvStore::new();
        run(&mut truncated, 1, put("key", "value"));
        let bytes = truncated.snapshot();
        assert!(matches!(
            KvStore::decode(&bytes[..bytes.len() - 3]),
            Err(KvSnapshotError::Decode(_))
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            KvStore::decode(&long),
            Err(KvSnapshotError::Trailing(1))
        ));
        // A failed restore leaves the store as it was.
        let mut s = truncated.clone();
        assert!(s.restore(b"kv1\0\xff\xff\xff").is_err());
        assert_eq!(s, truncated);
    }

    #[test]
    fn one_key_snapshot_is_small() {
        // MIT's TestSnapshotSize bound (500 bytes) must leave room: one key, one clerk.
        let mut s = KvStore::new();
        let client = u64::MAX >> 2;
        for seq in 1..=800 {
            let value = (seq % 2).to_string();
            s.apply(
                Index(seq),
                Command {
                    client,
                    seq,
                    op: put("x", &value),
                },
            );
        }
        assert!(s.snapshot().len() < 64, "{} bytes", s.snapshot().len());
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        let key = prop::sample::select(vec!["a", "b", "c"]);
        let value = "[a-z]{0,3}";
        prop_oneof![
            key.clone().prop_map(get),
            (key.clone(), value).prop_map(|(k, v)| put(k, &v)),
            (key.clone(), value).prop_map(|(k, v)| append(k, &v)),
            key.prop_map(delete),
        ]
    }

    /// The reference: applies each (client, seq) once, in first-delivery order.
    fn reference(op: &Op, data: &mut BTreeMap<String, String>) -> Reply {
        let mut store = KvStore {
            data: std::mem::take(data),
            ..KvStore::default()
        };
        let reply = store.execute(op.clone());
        *data = store.data;
        reply
    }

    proptest! {
        /// Clerks issue commands one at a time; the network delivers each several times (a
        /// retry after a lost reply) and may deliver an old one late. The store must match a
        /// model that applies each command exactly once, and a retry must see the first reply.
        #[test]
        fn duplicates_apply_exactly_once(
            script in prop::collection::vec((0u64..3, arb_op(), 1usize..4, any::<bool>()), 1..60),
            snapshot_at in 0usize..60,
        ) {
            let mut store = KvStore::new();
            let mut model: BTreeMap<String, String> = BTreeMap::new();
            let mut seqs = [0u64; 3];
            let mut index = 0u64;
            let mut past: Vec<Command> = Vec::new();
            for (step, (client, op, copies, late)) in script.into_iter().enumerate() {
                if step == snapshot_at {
                    let mut restored = KvStore::new();
                    restored.restore(&store.snapshot()).unwrap();
                    prop_assert_eq!(&restored, &store);
                    store = restored;
                }
                let slot = usize::try_from(client).unwrap();
                seqs[slot] += 1;
                let command = Command { client, seq: seqs[slot], op: op.clone() };
                let expected = reference(&op, &mut model);
                for _ in 0..copies {
                    index += 1;
                    let got = store.apply(Index(index), command.clone());
                    prop_assert_eq!(got, Output::Reply(expected.clone()));
                }
                // A late copy of an older command of the same clerk changes nothing.
                if late && let Some(old) = past.iter().rev().find(|c| c.client == client) {
                    index += 1;
                    let got = store.apply(Index(index), old.clone());
                    prop_assert_eq!(got, Output::Stale { last_seq: seqs[slot] });
                }
                past.push(command);
                prop_assert_eq!(&store.data, &model);
            }
        }
    }
}
