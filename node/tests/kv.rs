//! The key/value service end to end in one process: three servers over loopback TCP with real
//! files, clerks over the TCP client transport, a leader stopped and restarted.

// Real sockets, files and processes; the simulated counterpart is tests/madsim.rs.
#![cfg(not(madsim))]

use node::kv::TcpTransport;
use node::runtime::{NodeOptions, RunningNode};
use node::serve::{ServeOptions, serve};
use raft::{NodeId, Role};
use services::clerk::Clerk;
use services::kv::KvStore;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;

const BOUND: Duration = Duration::from_secs(20);

struct Server {
    node: RunningNode<KvStore>,
    serving: tokio::task::JoinHandle<()>,
}

struct Cluster {
    dir: PathBuf,
    raft_addrs: BTreeMap<NodeId, SocketAddr>,
    client_addrs: BTreeMap<NodeId, SocketAddr>,
    servers: BTreeMap<NodeId, Server>,
    incarnation: u64,
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = std::env::temp_dir().join(format!("node-kv-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut raft_addrs = BTreeMap::new();
        let mut client_addrs = BTreeMap::new();
        let mut listeners = Vec::new();
        for id in 1..=3 {
            let raft = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let client = TcpListener::bind("127.0.0.1:0").await.unwrap();
            raft_addrs.insert(NodeId(id), raft.local_addr().unwrap());
            client_addrs.insert(NodeId(id), client.local_addr().unwrap());
            listeners.push((NodeId(id), raft, client));
        }
        let mut cluster = Cluster {
            dir,
            raft_addrs,
            client_addrs,
            servers: BTreeMap::new(),
            incarnation: 0,
        };
        for (id, raft, client) in listeners {
            cluster.start_server(id, raft, client).await;
        }
        cluster
    }

    async fn start_server(&mut self, id: NodeId, raft: TcpListener, client: TcpListener) {
        self.incarnation += 1;
        let voters = self.raft_addrs.keys().copied().collect();
        let mut config = raft::Config::new(id, voters, self.incarnation);
        config.election_ticks = 20;
        config.heartbeat_ticks = 3;
        let data_dir = self.dir.join(format!("n{}", id.0));
        let mut options = NodeOptions::new(config, data_dir, raft, self.raft_addrs.clone());
        options.tick = Duration::from_millis(5);
        options.compact_threshold_bytes = Some(2048);
        options.transport.backoff_max = Duration::from_millis(50);
        let node = RunningNode::start(options, KvStore::new()).await.unwrap();
        let serve_options = ServeOptions {
            client_addrs: self
                .client_addrs
                .iter()
                .map(|(id, addr)| (*id, addr.to_string()))
                .collect(),
            request_timeout: Duration::from_millis(500),
            ..ServeOptions::default()
        };
        let serving = tokio::spawn(serve(client, node.handle(), serve_options));
        self.servers.insert(id, Server { node, serving });
    }

    async fn stop(&mut self, id: NodeId) {
        let server = self.servers.remove(&id).unwrap();
        server.serving.abort();
        let _ = server.serving.await;
        server.node.shutdown().await.unwrap();
    }

    async fn restart(&mut self, id: NodeId) {
        let raft = TcpListener::bind(self.raft_addrs[&id]).await.unwrap();
        let client = TcpListener::bind(self.client_addrs[&id]).await.unwrap();
        self.start_server(id, raft, client).await;
    }

    async fn leader(&self) -> NodeId {
        tokio::time::timeout(BOUND, async {
            loop {
                let leader = self
                    .servers
                    .values()
                    .map(|s| s.node.handle().status())
                    .find(|s| s.role == Some(Role::Leader));
                if let Some(status) = leader {
                    return status.id;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("a leader")
    }

    fn clerk(&self, client: u64) -> Clerk<TcpTransport> {
        Clerk::new(
            TcpTransport::new(self.client_addrs.values().copied().collect()),
            client,
        )
    }
}

async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, future)
        .await
        .expect("within the bound")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clerks_over_tcp_survive_a_leader_stop_and_restart() {
    let mut cluster = Cluster::start().await;
    let mut clerk = cluster.clerk(1);
    bounded(clerk.put("greeting", "hello")).await.unwrap();
    bounded(clerk.append("greeting", ", world")).await.unwrap();
    assert_eq!(
        bounded(clerk.get("greeting")).await.unwrap(),
        "hello, world"
    );

    // Enough writes that the store snapshots (2 KiB threshold).
    let mut other = cluster.clerk(2);
    for i in 0..100 {
        bounded(other.append("log", &format!("{i};")))
            .await
            .unwrap();
    }

    let leader = cluster.leader().await;
    cluster.stop(leader).await;
    bounded(clerk.append("greeting", "!")).await.unwrap();
    assert_eq!(
        bounded(clerk.get("greeting")).await.unwrap(),
        "hello, world!"
    );

    cluster.restart(leader).await;
    let deleted = bounded(clerk.delete("greeting")).await.unwrap();
    assert!(deleted.succ);
    assert_eq!(deleted.value, "hello, world!");
    let expected: String = (0..100).map(|i| format!("{i};")).collect();
    assert_eq!(bounded(other.get("log")).await.unwrap(), expected);

    // The restarted node converges to the same store.
    let handles: Vec<_> = cluster.servers.values().map(|s| s.node.handle()).collect();
    let target = cluster.servers[&cluster.leader().await]
        .node
        .handle()
        .status()
        .last_applied;
    for handle in &handles {
        let mut watch = handle.watch_status();
        bounded(watch.wait_for(|s| s.last_applied >= target))
            .await
            .unwrap();
    }
    for handle in &handles {
        let (log, greeting) = handle
            .read(|kv: &KvStore| {
                (
                    kv.value("log").map(str::to_owned),
                    kv.value("greeting").is_some(),
                )
            })
            .await
            .unwrap();
        assert_eq!(log.as_deref(), Some(expected.as_str()));
        assert!(!greeting);
    }
    let ids: Vec<NodeId> = cluster.servers.keys().copied().collect();
    for id in ids {
        cluster.stop(id).await;
    }
    let _ = std::fs::remove_dir_all(&cluster.dir);
}
