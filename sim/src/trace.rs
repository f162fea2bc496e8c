//! The trace: one compact record per handled event, a stable hash over all of them, and the
//! records themselves when asked for.
//!
//! The hash is FNV-1a (64 bit) over each record's postcard encoding, implemented here so that it
//! never depends on std's randomly keyed hashers, on addresses or on the platform. Two runs of the
//! same scenario and seed give the same hash; `--check-determinism` compares them.

use crate::network::LostReason;
use crate::service::RpcStep;
use raft::{Node, Payload, Role};
use serde::Serialize;
use std::fmt;

/// The kind of a message, for traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum MessageKind {
    /// `RequestVote`.
    RequestVote,
    /// `RequestVoteReply`.
    RequestVoteReply,
    /// `AppendEntries` (heartbeats included).
    AppendEntries,
    /// `AppendEntriesReply`.
    AppendEntriesReply,
    /// `InstallSnapshot`.
    InstallSnapshot,
    /// `InstallSnapshotReply`.
    InstallSnapshotReply,
}

impl MessageKind {
    /// The kind of `payload`.
    #[must_use]
    pub fn of(payload: &Payload) -> MessageKind {
        match payload {
            Payload::RequestVote { .. } => MessageKind::RequestVote,
            Payload::RequestVoteReply { .. } => MessageKind::RequestVoteReply,
            Payload::AppendEntries { .. } => MessageKind::AppendEntries,
            Payload::AppendEntriesReply { .. } => MessageKind::AppendEntriesReply,
            Payload::InstallSnapshot { .. } => MessageKind::InstallSnapshot,
            Payload::InstallSnapshotReply { .. } => MessageKind::InstallSnapshotReply,
        }
    }
}

/// A node's role, for traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum RoleTag {
    /// `Role::Follower`.
    Follower,
    /// `Role::Candidate`.
    Candidate,
    /// `Role::Leader`.
    Leader,
}

impl From<Role> for RoleTag {
    fn from(role: Role) -> RoleTag {
        match role {
            Role::Follower => RoleTag::Follower,
            Role::Candidate => RoleTag::Candidate,
            Role::Leader => RoleTag::Leader,
        }
    }
}

/// What happened in one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum EventKind {
    /// The node's clock ticked.
    Tick,
    /// A message from `from` was delivered to the node.
    Deliver {
        /// The sender.
        from: u32,
        /// The message's kind.
        message: MessageKind,
        /// The message's term.
        term: u64,
    },
    /// A message from `from` to the node was lost in flight (at delivery time).
    Lost {
        /// The sender.
        from: u32,
        /// The message's kind.
        message: MessageKind,
        /// Why.
        reason: LostReason,
    },
    /// The tester proposed a command; `index` is set when the node accepted it.
    Propose {
        /// Where the node put it.
        index: Option<u64>,
    },
    /// The application compacted the node's log up to `index`.
    Compact {
        /// The snapshot's last index.
        index: u64,
        /// Whether the node accepted it.
        accepted: bool,
    },
    /// The node crashed.
    Crash,
    /// The node restarted from its durable state.
    Restart,
    /// The node was connected (MIT `connect`, SJTU `enable_node`).
    Connect,
    /// The node was disconnected (MIT `disconnect`, SJTU `disable_node`).
    Disconnect,
    /// The one-way link from the node to `to` was cut (or restored when `cut` is false).
    Link {
        /// The other end.
        to: u32,
        /// Cut or restored.
        cut: bool,
    },
    /// Every cut link was restored.
    HealLinks,
    /// The network's fault profile changed (`reliable` / `long_reordering` as now set).
    Network {
        /// Whether the profile drops or delays nothing beyond the base latency.
        reliable: bool,
        /// Whether labrpc's long reordering is on.
        long_reordering: bool,
    },
    /// A client call moved on (the record's node is the server called).
    Rpc {
        /// The client.
        client: u32,
        /// The call.
        rpc: u64,
        /// What happened.
        step: RpcStep,
    },
    /// A scenario task's timer fired.
    Wake {
        /// The task.
        task: u64,
    },
    /// The node crashed inside its step, after `performed` of its `outputs` outputs.
    CrashMidStep {
        /// Outputs performed before the crash.
        performed: u32,
        /// Outputs the step produced.
        outputs: u32,
    },
    /// The node's process was paused until `until_us`.
    Pause {
        /// When the pause ends, in virtual microseconds.
        until_us: u64,
    },
    /// A pause was ended early.
    Resume,
    /// The node's clock was skewed: it now ticks every `tick_interval_us`.
    Skew {
        /// The new tick interval.
        tick_interval_us: u64,
    },
    /// The network's extra reordering changed.
    Reorder {
        /// Chance of holding a message back, per mille.
        per_mille: u32,
        /// The longest extra delay.
        delay_us_max: u64,
    },
    /// The canary corrupted the node's durable log from `index` on.
    Corrupt {
        /// The first corrupted index.
        index: u64,
    },
}

/// A node's state after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct NodeView {
    /// Its role.
    pub role: RoleTag,
    /// Its term.
    pub term: u64,
    /// Its commit index.
    pub commit: u64,
}

impl NodeView {
    /// The view of `node` now.
    #[must_use]
    pub fn of(node: &Node) -> NodeView {
        NodeView {
            role: node.role().into(),
            term: node.term().0,
            commit: node.commit_index().0,
        }
    }
}

/// One handled event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TraceRecord {
    /// The event number (1 for the first event of a run).
    pub event: u64,
    /// Virtual time, microseconds.
    pub at_us: u64,
    /// The node the event happened to, if any.
    pub node: Option<u32>,
    /// What happened.
    pub kind: EventKind,
    /// How many outputs the node's step produced (0 when no node stepped).
    pub outputs: u32,
    /// The node's state after the event, if a live node was involved.
    pub after: Option<NodeView>,
}

impl TraceRecord {
    /// The record as one line of JSON (for `--trace-json`).
    #[must_use]
    pub fn to_json_line(&self) -> String {
        // Plain data with string keys: serde_json cannot fail on it.
        serde_json::to_string(self).unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"))
    }
}

impl fmt::Display for TraceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.at_us / 1000;
        let us = self.at_us % 1000;
        write!(f, "{ms:>8}.{us:03}ms #{:<7}", self.event)?;
        match self.node {
            Some(node) => write!(f, " n{node:<2}")?,
            None => write!(f, "    ")?,
        }
        write_kind(f, &self.kind)?;
        if self.outputs > 0 {
            write!(f, " ({} out)", self.outputs)?;
        }
        if let Some(view) = self.after {
            write!(f, " -> {:?} t{} c{}", view.role, view.term, view.commit)?;
        }
        Ok(())
    }
}

fn write_kind(f: &mut fmt::Formatter<'_>, kind: &EventKind) -> fmt::Result {
    match kind {
        EventKind::Tick => write!(f, " tick"),
        EventKind::Deliver {
            from,
            message,
            term,
        } => write!(f, " <- n{from} {message:?} t{term}"),
        EventKind::Lost {
            from,
            message,
            reason,
        } => write!(f, " lost from n{from} {message:?} ({reason:?})"),
        EventKind::Propose { index: Some(index) } => write!(f, " propose accepted at i{index}"),
        EventKind::Propose { index: None } => write!(f, " propose rejected"),
        EventKind::Compact { index, accepted } => write!(f, " compact to i{index} ({accepted})"),
        EventKind::Crash => write!(f, " CRASH"),
        EventKind::Restart => write!(f, " RESTART"),
        EventKind::Connect => write!(f, " connect"),
        EventKind::Disconnect => write!(f, " disconnect"),
        EventKind::Link { to, cut: true } => write!(f, " cut link to n{to}"),
        EventKind::Link { to, cut: false } => write!(f, " restore link to n{to}"),
        EventKind::HealLinks => write!(f, " heal all links"),
        EventKind::Network {
            reliable,
            long_reordering,
        } => write!(
            f,
            " network reliable={reliable} long_reordering={long_reordering}"
        ),
        EventKind::Rpc { client, rpc, step } => write!(f, " rpc {rpc} of c{client}: {step:?}"),
        EventKind::Wake { task } => write!(f, " wake task {task}"),
        EventKind::CrashMidStep { performed, outputs } => {
            write!(
                f,
                " CRASH inside the step after {performed} of {outputs} outputs"
            )
        }
        EventKind::Pause { until_us } => write!(f, " pause until {}us", until_us),
        EventKind::Resume => write!(f, " resume"),
        EventKind::Skew { tick_interval_us } => {
            write!(f, " clock ticks every {tick_interval_us}us")
        }
        EventKind::Reorder {
            per_mille,
            delay_us_max,
        } => write!(f, " reorder {per_mille}‰ by up to {delay_us_max}us"),
        EventKind::Corrupt { index } => write!(f, " CANARY corrupts the durable log from i{index}"),
    }
}

/// FNV-1a, 64 bit: a fixed, platform-independent hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv64(u64);

impl Fnv64 {
    /// The FNV-1a offset basis.
    pub const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// A hash of nothing.
    #[must_use]
    pub fn new() -> Fnv64 {
        Fnv64(Fnv64::OFFSET_BASIS)
    }

    /// Adds `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        let mut hash = self.0;
        for &byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(Fnv64::PRIME);
        }
        self.0 = hash;
    }

    /// The hash so far.
    #[must_use]
    pub fn finish(self) -> u64 {
        self.0
    }
}

impl Default for Fnv64 {
    fn default() -> Fnv64 {
        Fnv64::new()
    }
}

/// A postcard output that feeds every encoded byte straight into a hash.
struct HashFlavor<'a>(&'a mut Fnv64);

impl postcard::ser_flavors::Flavor for HashFlavor<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.write(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.write(&[data]);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Collects the run's trace: always the hash, the records only when asked.
#[derive(Clone, Debug)]
pub struct Trace {
    hash: Fnv64,
    records: Option<Vec<TraceRecord>>,
    count: u64,
}

impl Trace {
    /// A trace that keeps its records when `record` is true.
    #[must_use]
    pub fn new(record: bool) -> Trace {
        Trace {
            hash: Fnv64::new(),
            records: record.then(Vec::new),
            count: 0,
        }
    }

    /// Adds one record.
    pub fn push(&mut self, record: TraceRecord) {
        // Hash the postcard encoding as it is produced: the same bytes as encoding into a buffer
        // first, without the buffer copies (a derived `Serialize` of a record cannot fail).
        let _ = postcard::serialize_with_flavor(&record, HashFlavor(&mut self.hash));
        self.count += 1;
        if let Some(records) = &mut self.records {
            records.push(record);
        }
    }

    /// The hash over every record so far.
    #[must_use]
    pub fn hash(&self) -> u64 {
        self.hash.finish()
    }

    /// How many records were added.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.count
    }

    /// True when nothing was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Takes the kept records (None if the trace was not asked to keep them).
    pub fn take_records(&mut self) -> Option<Vec<TraceRecord>> {
        self.records.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vectors() {
        let mut hash = Fnv64::new();
        hash.write(b"");
        assert_eq!(hash.finish(), 0xcbf2_9ce4_8422_2325);
        let mut hash = Fnv64::new();
        hash.write(b"a");
        assert_eq!(hash.finish(), 0xaf63_dc4c_8601_ec8c);
        let mut hash = Fnv64::new();
        hash.write(b"foobar");
        assert_eq!(hash.finish(), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn records_render_and_hash() {
        let record = TraceRecord {
            event: 3,
            at_us: 12_345,
            node: Some(1),
            kind: EventKind::Deliver {
                from: 0,
                message: MessageKind::AppendEntries,
                term: 2,
            },
            outputs: 1,
            after: Some(NodeView {
                role: RoleTag::Follower,
                term: 2,
                commit: 4,
            }),
        };
        let line = record.to_string();
        assert!(line.contains("<- n0 AppendEntries t2"), "{line}");
        assert!(record.to_json_line().contains("\"at_us\":12345"));
        let mut a = Trace::new(false);
        let mut b = Trace::new(true);
        a.push(record);
        b.push(record);
        assert_eq!(a.hash(), b.hash());
        assert_ne!(a.hash(), Trace::new(false).hash());
        assert_eq!(b.take_records().map(|r| r.len()), Some(1));
    }

    #[test]
    fn hash_is_fnv_over_the_postcard_encoding_of_each_record() {
        let first = TraceRecord {
            event: 300,
            at_us: u64::MAX,
            node: Some(4),
            kind: EventKind::Deliver {
                from: 2,
                message: MessageKind::AppendEntriesReply,
                term: 1 << 40,
            },
            outputs: 7,
            after: Some(NodeView {
                role: RoleTag::Leader,
                term: 1 << 40,
                commit: 128,
            }),
        };
        let second = TraceRecord {
            node: None,
            after: None,
            ..first
        };
        let mut trace = Trace::new(false);
        let mut expected = Fnv64::new();
        for record in [first, second] {
            trace.push(record);
            expected.write(&postcard::to_allocvec(&record).expect("encodes"));
        }
        assert_eq!(trace.hash(), expected.finish());
    }
}
