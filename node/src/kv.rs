//! The key/value service over the network: a [`Transport`] that lets a
//! [`services::clerk::Clerk`] reach the servers over TCP, and helpers the binaries share.
//!
//! The servers run [`services::kv::KvStore`] under [`crate::runtime`] and answer clients with
//! [`crate::serve`]. A follower answers with the leader's client address; the transport then
//! sends the same request there at once and remembers it, so a clerk pays for a wrong guess
//! once, not on every call.

use crate::serve::{ClientConnection, ClientReply};
use raft::NodeId;
use services::clerk::{CallError, Transport};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a call may take, connect included, before it counts as unreachable (longer than
/// the server's own request timeout, so a slow leader answers `Timeout` first).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// The pause between two rounds of failed calls.
pub const ROUND_PAUSE: Duration = Duration::from_millis(50);

/// A clerk's way to the servers: one lazily opened connection per server.
#[derive(Debug)]
pub struct TcpTransport {
    servers: Vec<SocketAddr>,
    connections: Vec<Option<ClientConnection>>,
    /// The server that answered last, or that a follower pointed to.
    leader: Option<usize>,
    started: Instant,
}

impl TcpTransport {
    /// A transport to the servers' client addresses.
    #[must_use]
    pub fn new(servers: Vec<SocketAddr>) -> TcpTransport {
        TcpTransport {
            connections: servers.iter().map(|_| None).collect(),
            servers,
            leader: None,
            started: Instant::now(),
        }
    }

    /// The server (by position in the list) that last answered as leader, if any.
    #[must_use]
    pub fn leader(&self) -> Option<usize> {
        self.leader
    }

    async fn call_one(&mut self, server: usize, request: Vec<u8>) -> Result<ClientReply, ()> {
        let addr = self.servers[server];
        let connection = &mut self.connections[server];
        let result = tokio::time::timeout(CALL_TIMEOUT, async {
            if connection.is_none() {
                *connection = Some(ClientConnection::connect(addr).await.map_err(|_| ())?);
            }
            let Some(open) = connection.as_mut() else {
                return Err(());
            };
            open.call(request).await.map_err(|_| ())
        })
        .await;
        match result {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(())) | Err(_) => {
                // The connection is in an unknown state (a reply may still be on its way).
                *connection = None;
                Err(())
            }
        }
    }

    fn classify(
        &mut self,
        server: usize,
        reply: Result<ClientReply, ()>,
    ) -> Result<Vec<u8>, CallError> {
        match reply {
            Ok(ClientReply::Applied(output)) => {
                self.leader = Some(server);
                Ok(output)
            }
            Ok(ClientReply::NotLeader { .. } | ClientReply::Unknown) => {
                self.leader = None;
                Err(CallError::WrongLeader)
            }
            Ok(ClientReply::Timeout) => {
                self.leader = None;
                Err(CallError::Timeout)
            }
            Ok(ClientReply::BadRequest(error)) => {
                tracing::error!(%error, "the server could not decode a command");
                Err(CallError::Unreachable)
            }
            Ok(ClientReply::Stopped) | Err(()) => {
                self.leader = None;
                Err(CallError::Unreachable)
            }
        }
    }
}

impl Transport for TcpTransport {
    fn servers(&self) -> usize {
        self.servers.len()
    }

    async fn call(&mut self, server: usize, request: Vec<u8>) -> Result<Vec<u8>, CallError> {
        let target = self.leader.unwrap_or(server) % self.servers.len();
        let reply = self.call_one(target, request.clone()).await;
        let redirect = match &reply {
            Ok(ClientReply::NotLeader {
                leader_addr: Some(addr),
                ..
            }) => addr
                .parse::<SocketAddr>()
                .ok()
                .and_then(|addr| self.servers.iter().position(|s| *s == addr))
                .filter(|&leader| leader != target),
            _ => None,
        };
        match redirect {
            Some(leader) => {
                let reply = self.call_one(leader, request).await;
                self.classify(leader, reply)
            }
            None => self.classify(target, reply),
        }
    }

    async fn pause(&mut self) {
        tokio::time::sleep(ROUND_PAUSE).await;
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// A malformed `id=addr,...` list.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad peer list entry {entry:?}: {reason} (expected id=ip:port,...)")]
pub struct PeerListError {
    /// The offending entry.
    pub entry: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Parses `1=127.0.0.1:7001,2=127.0.0.1:7002`.
pub fn parse_peer_list(list: &str) -> Result<BTreeMap<NodeId, SocketAddr>, PeerListError> {
    let mut peers = BTreeMap::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let error = |reason: &str| PeerListError {
            entry: entry.to_string(),
            reason: reason.to_string(),
        };
        let (id, addr) = entry.split_once('=').ok_or_else(|| error("no '='"))?;
        let id: u32 = id
            .trim()
            .parse()
            .map_err(|_| error("the id is not a number"))?;
        let addr: SocketAddr = addr
            .trim()
            .parse()
            .map_err(|_| error("the address is not ip:port"))?;
        if peers.insert(NodeId(id), addr).is_some() {
            return Err(error("the id is listed twice"));
        }
    }
    if peers.is_empty() {
        return Err(PeerListError {
            entry: list.to_string(),
            reason: "no peers".to_string(),
        });
    }
    Ok(peers)
}

/// A random 64-bit number from the OS's entropy (client ids, per-incarnation Raft seeds).
#[must_use]
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_lists_parse_and_errors_name_the_entry() {
        let peers = parse_peer_list("1=127.0.0.1:7001, 2=127.0.0.1:7002").unwrap();
        assert_eq!(peers[&NodeId(2)], "127.0.0.1:7002".parse().unwrap());
        let error = parse_peer_list("1=127.0.0.1:7001,x=1").unwrap_err();
        assert_eq!(error.entry, "x=1");
        assert!(parse_peer_list("1=localhost").is_err());
        assert!(parse_peer_list("1=127.0.0.1:1,1=127.0.0.1:2").is_err());
        assert!(parse_peer_list("").is_err());
    }
}
