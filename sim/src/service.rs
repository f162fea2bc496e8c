//! Hosting a replicated service on the simulated cluster, and the client RPCs that reach it.
//!
//! A [`Service`] is what a library user writes: a single-node state machine over committed
//! command bytes. The simulator runs one instance per node, feeds it the node's `Apply` and
//! `Restore` outputs, snapshots it when the node's persisted Raft state passes
//! [`ServiceSpec::max_raft_state`] (MIT's `maxraftstate`), and rebuilds it on restart from the
//! durable snapshot and the log.
//!
//! Clients reach the servers over the same simulated network as Raft's own messages (labrpc
//! carries both), with labrpc's rules (`KV_SCENARIOS.md` §1.2):
//! * a call over a disabled client link, or to a crashed server, fails after 0–99 ms;
//! * on an unreliable network the request waits 0–26 ms and 10 % are lost (the caller learns of
//!   it then), and 10 % of replies are lost after the server acted;
//! * a server hands the request to its node as a proposal: a node that is not leader answers
//!   [`RpcError::WrongLeader`] at once; a leader answers with the service's output when the
//!   entry it proposed is applied, or [`RpcError::WrongLeader`] when it loses the term first, or
//!   [`RpcError::Timeout`] after [`SERVER_TIMEOUT_US`] (a stale leader in a minority never
//!   hangs a client);
//! * a crash fails every call the server was handling.
//!
//! Client links are separate from server-to-server links: partitions cut only the latter, as in
//! the labs.

use raft::Index;
use serde::Serialize;
use std::fmt;

/// How long a server holds a proposed request before answering [`RpcError::Timeout`].
pub const SERVER_TIMEOUT_US: u64 = 1_000_000;

/// labrpc's delay before a call over a dead link or to a dead server fails: `0..100` ms.
pub const UNREACHABLE_DELAY_US_MAX: u64 = 100_000;

/// A replicated service: a deterministic single-node state machine over committed commands.
///
/// Everything a replica's behaviour depends on must come from the commands (a timestamp, a
/// client id): replicas apply the same commands at different virtual times.
pub trait Service {
    /// Applies the committed command at `index` and returns the reply for the client that
    /// proposed it (ignored when no client waits for it).
    fn apply(&mut self, index: Index, command: &[u8]) -> Vec<u8>;

    /// The service's whole state, for a snapshot covering every applied command.
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the state with a snapshot's. An error is a safety failure of the run.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String>;
}

/// Hosts a typed [`raft::StateMachine`] as a [`Service`]: commands are decoded with postcard
/// (as [`raft::encode_command`] encodes them) and outputs encoded with postcard. A command that
/// does not decode is not applied and gets an empty reply.
#[derive(Clone, Debug, Default)]
pub struct Typed<S>(pub S);

impl<S> Service for Typed<S>
where
    S: raft::StateMachine,
    S::Output: serde::Serialize,
{
    fn apply(&mut self, index: Index, command: &[u8]) -> Vec<u8> {
        match postcard::from_bytes::<S::Command>(command) {
            Ok(command) => encode_sized(&self.0.apply(index, command)),
            Err(_) => Vec::new(),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0.snapshot()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        self.0.restore(snapshot).map_err(|e| e.to_string())
    }
}

/// Encodes `value` with postcard into a buffer allocated once at its exact size: a reply can be a
/// whole key's value (kilobytes in the KV tests), and growing the buffer by doubling copied it
/// several times on every replica's every apply. The bytes are those of `postcard::to_allocvec`.
fn encode_sized<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain data into a growable Vec cannot fail; an empty reply is the fallback.
    let size =
        postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default()).unwrap_or(0);
    postcard::serialize_with_flavor(value, SizedVec(Vec::with_capacity(size))).unwrap_or_default()
}

/// A postcard output that appends to a pre-sized `Vec` with `extend_from_slice` (a `memcpy`;
/// postcard's generic `Extend` flavor copies byte by byte).
struct SizedVec(Vec<u8>);

impl postcard::ser_flavors::Flavor for SizedVec {
    type Output = Vec<u8>;

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.0)
    }
}

/// Which service runs on every node, and when it snapshots.
#[derive(Clone, Copy)]
pub struct ServiceSpec {
    /// A short name for reports (`kv`, `extent`).
    pub name: &'static str,
    /// Builds an empty instance (at boot and at every restart).
    pub make: fn() -> Box<dyn Service>,
    /// Snapshot when the node's persisted Raft state reaches this many bytes (MIT's
    /// `maxraftstate`); `None` never snapshots on its own.
    pub max_raft_state: Option<usize>,
}

impl fmt::Debug for ServiceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceSpec")
            .field("name", &self.name)
            .field("max_raft_state", &self.max_raft_state)
            .finish()
    }
}

impl PartialEq for ServiceSpec {
    fn eq(&self, other: &ServiceSpec) -> bool {
        // Two specs with one name are one service; function addresses are not comparable.
        self.name == other.name && self.max_raft_state == other.max_raft_state
    }
}

impl Eq for ServiceSpec {}

/// A client of the service (a clerk's network identity).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ClientId(pub u32);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// Why a client call returned no reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum RpcError {
    /// The network failed the call (link down, server down, request or reply lost): the
    /// command may or may not have been applied.
    Unreachable,
    /// The server is not the leader, or lost its term before the command committed.
    WrongLeader,
    /// The leader did not see the command applied within [`SERVER_TIMEOUT_US`].
    Timeout,
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcError::Unreachable => f.write_str("unreachable"),
            RpcError::WrongLeader => f.write_str("wrong leader"),
            RpcError::Timeout => f.write_str("timeout"),
        }
    }
}

impl std::error::Error for RpcError {}

/// What happened to a client call, for traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum RpcStep {
    /// The request reached the server.
    Delivered,
    /// The server answered (the answer is on its way).
    Answered,
    /// The caller received a reply.
    Replied,
    /// The caller received a failure.
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sized_encoding_is_postcards_and_allocates_exactly() {
        let big = "v".repeat(10_000);
        let values: [(u64, Option<&str>, Vec<u8>); 4] = [
            (0, None, Vec::new()),
            (1, Some(""), vec![1]),
            (u64::MAX, Some("value"), vec![0xff; 300]),
            (7, Some(&big), vec![2; 20_000]),
        ];
        for value in &values {
            let encoded = encode_sized(value);
            assert_eq!(encoded, postcard::to_allocvec(value).unwrap());
            assert_eq!(encoded.capacity(), encoded.len());
        }
    }
}
