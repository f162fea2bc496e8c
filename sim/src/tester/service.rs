//! The tester's side of a hosted service: clients, their calls, and the key/value labs'
//! partition helpers (`KV_SCENARIOS.md` §1.4).

use super::Tester;
use crate::service::{ClientId, RpcError};
use raft::NodeId;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

fn id(server: usize) -> NodeId {
    NodeId(u32::try_from(server).unwrap_or(u32::MAX))
}

impl Tester {
    /// labrpc `makeClient(to)`: a new client whose links to `servers` are enabled (the others
    /// exist, disabled, until [`Tester::connect_client`]).
    pub fn make_client(&self, servers: &[usize]) -> ClientId {
        let ids: Vec<NodeId> = servers.iter().copied().map(id).collect();
        self.inner.cluster.borrow_mut().add_client(&ids)
    }

    /// A new client connected to every server.
    pub fn make_client_to_all(&self) -> ClientId {
        let all: Vec<usize> = (0..self.servers()).collect();
        self.make_client(&all)
    }

    /// `ConnectClient(ck, to)`: enables the client's links to `servers`.
    pub fn connect_client(&self, client: ClientId, servers: &[usize]) {
        let mut cluster = self.inner.cluster.borrow_mut();
        for &server in servers {
            cluster.set_client_link(client, id(server), true);
        }
    }

    /// `DisconnectClient(ck, from)`: disables the client's links to `servers`.
    pub fn disconnect_client(&self, client: ClientId, servers: &[usize]) {
        let mut cluster = self.inner.cluster.borrow_mut();
        for &server in servers {
            cluster.set_client_link(client, id(server), false);
        }
    }

    /// Calls `server` on behalf of `client` with `request` (a command the server proposes to
    /// its node). Resolves to the service's reply once the command is applied, or to why not.
    pub fn call(&self, client: ClientId, server: usize, request: Vec<u8>) -> RpcCall {
        let rpc = self
            .inner
            .cluster
            .borrow_mut()
            .call(client, id(server), request);
        RpcCall {
            tester: self.clone(),
            rpc,
            done: false,
        }
    }

    /// The kv config's `partition(p1, p2)`: servers in one group keep their links to each other
    /// and lose those to the other group. Only server-to-server links change; clients keep
    /// reaching both sides. Servers in neither group are cut off from both.
    pub fn partition(&self, p1: &[usize], p2: &[usize]) {
        let group = |server: usize| {
            if p1.contains(&server) {
                Some(1)
            } else if p2.contains(&server) {
                Some(2)
            } else {
                None
            }
        };
        let servers = self.servers();
        let mut cluster = self.inner.cluster.borrow_mut();
        for a in 0..servers {
            cluster.set_connected(id(a), true);
            for b in 0..servers {
                if a != b {
                    let together = group(a).is_some() && group(a) == group(b);
                    cluster.set_link_cut(id(a), id(b), !together);
                }
            }
        }
    }

    /// `ConnectAll()`: every server reaches every other server.
    pub fn connect_all(&self) {
        let servers = self.servers();
        let mut cluster = self.inner.cluster.borrow_mut();
        cluster.heal_links();
        for server in 0..servers {
            cluster.set_connected(id(server), true);
        }
    }

    /// The kv config's `Leader()`: the first server that believes it is leader, if any.
    #[must_use]
    pub fn leader(&self) -> Option<usize> {
        (0..self.servers()).find(|&server| self.is_leader(server))
    }

    /// `SnapshotSize()`: the largest persisted snapshot over all servers, in bytes.
    #[must_use]
    pub fn snapshot_size(&self) -> usize {
        let cluster = self.inner.cluster.borrow();
        cluster
            .stores()
            .iter()
            .map(crate::storage::Store::snapshot_size_bytes)
            .max()
            .unwrap_or(0)
    }

    /// The reply `server`'s service instance produced for the entry at `index`, if it applied
    /// that entry recently and the entry has `term` (SJTU part 5 waits on the leader's result
    /// for the command it submitted).
    #[must_use]
    pub fn applied_result(&self, server: usize, index: u64, term: u64) -> Option<Vec<u8>> {
        let cluster = self.inner.cluster.borrow();
        let (entry_term, reply) = cluster.apps().services()?.result(server, index)?;
        (entry_term.0 == term).then(|| reply.to_vec())
    }

    /// Runs `future` for at most `ms` virtual milliseconds: `Some(output)` if it finished in
    /// time, `None` if not (the future is then dropped).
    pub fn timeout<F: Future>(&self, ms: u64, future: F) -> Timeout<F> {
        Timeout {
            future: Box::pin(future),
            sleep: self.sleep_ms(ms),
        }
    }

    /// The last index `server`'s service instance applied.
    #[must_use]
    pub fn service_last_applied(&self, server: usize) -> u64 {
        let cluster = self.inner.cluster.borrow();
        cluster
            .apps()
            .services()
            .map_or(0, |s| s.last_applied(server))
    }
}

/// A future with a virtual-time limit (see [`Tester::timeout`]).
pub struct Timeout<F> {
    future: Pin<Box<F>>,
    sleep: super::Sleep,
}

impl<F> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("sleep", &self.sleep)
            .finish()
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(output) = self.future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        match Pin::new(&mut self.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A client call in flight (see [`Tester::call`]).
pub struct RpcCall {
    tester: Tester,
    rpc: u64,
    done: bool,
}

impl fmt::Debug for RpcCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcCall").field("rpc", &self.rpc).finish()
    }
}

impl Future for RpcCall {
    type Output = Result<Vec<u8>, RpcError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = self
            .tester
            .inner
            .cluster
            .borrow_mut()
            .poll_rpc(self.rpc, cx.waker());
        match result {
            Some(result) => {
                self.done = true;
                Poll::Ready(result)
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for RpcCall {
    fn drop(&mut self) {
        if !self.done
            && let Ok(mut cluster) = self.tester.inner.cluster.try_borrow_mut()
        {
            cluster.forget_rpc(self.rpc);
        }
    }
}
