//! Three in-process nodes over loopback TCP with real files: election, replication, restart.

// Real sockets, files and processes; the simulated counterpart is tests/madsim.rs.
#![cfg(not(madsim))]

use node::runtime::{Handle, NodeOptions, ProposeError, RunningNode, Status};
use raft::{Index, NodeId, Role, StateMachine};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::TcpListener;

/// Failure bound for every wait: the tests never rely on it to pass.
const BOUND: Duration = Duration::from_secs(20);

/// A state machine that sums the numbers proposed to it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Sum {
    total: u64,
    count: u64,
}

impl StateMachine for Sum {
    type Command = u64;
    type Output = u64;

    fn apply(&mut self, _index: Index, command: u64) -> u64 {
        self.total += command;
        self.count += 1;
        self.total
    }

    fn snapshot(&self) -> Vec<u8> {
        postcard::to_allocvec(&(self.total, self.count)).unwrap()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        (self.total, self.count) = postcard::from_bytes(snapshot)?;
        Ok(())
    }
}

struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> TestDir {
        let path = std::env::temp_dir().join(format!("node-cluster-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TestDir(path)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Cluster {
    dir: TestDir,
    addrs: BTreeMap<NodeId, SocketAddr>,
    nodes: BTreeMap<NodeId, RunningNode<Sum>>,
    incarnations: u64,
}

impl Cluster {
    async fn start(name: &str, n: u32) -> Cluster {
        let mut listeners = BTreeMap::new();
        for id in 1..=n {
            listeners.insert(NodeId(id), TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let addrs = listeners
            .iter()
            .map(|(id, l)| (*id, l.local_addr().unwrap()))
            .collect();
        let mut cluster = Cluster {
            dir: TestDir::new(name),
            addrs,
            nodes: BTreeMap::new(),
            incarnations: 0,
        };
        for (id, listener) in listeners {
            cluster.start_node(id, listener).await;
        }
        cluster
    }

    fn data_dir(&self, id: NodeId) -> PathBuf {
        Path::new(&self.dir.0).join(format!("n{}", id.0))
    }

    async fn start_node(&mut self, id: NodeId, listener: TcpListener) {
        self.incarnations += 1;
        let voters = self.addrs.keys().copied().collect();
        let mut raft = raft::Config::new(id, voters, u64::from(id.0) * 1000 + self.incarnations);
        raft.election_ticks = 20;
        raft.heartbeat_ticks = 3;
        let mut options = NodeOptions::new(raft, self.data_dir(id), listener, self.addrs.clone());
        options.tick = Duration::from_millis(5);
        // Small enough that the leader compacts while a follower is down, so the follower
        // needs the snapshot to catch up.
        options.compact_threshold_bytes = Some(512);
        options.transport.backoff_max = Duration::from_millis(50);
        let node = RunningNode::start(options, Sum::default()).await.unwrap();
        self.nodes.insert(id, node);
    }

    async fn restart(&mut self, id: NodeId) -> node::storage::RecoveryReport {
        let listener = TcpListener::bind(self.addrs[&id]).await.unwrap();
        self.start_node(id, listener).await;
        self.nodes[&id].recovery().clone()
    }

    fn handle(&self, id: NodeId) -> Handle<Sum> {
        self.nodes[&id].handle()
    }

    /// Waits until one running node is leader with every running node agreeing on it.
    async fn leader(&self) -> NodeId {
        tokio::time::timeout(BOUND, async {
            loop {
                let statuses: Vec<Status> =
                    self.nodes.values().map(|n| n.handle().status()).collect();
                let leaders: Vec<&Status> = statuses
                    .iter()
                    .filter(|s| s.role == Some(Role::Leader))
                    .collect();
                if let [leader] = leaders.as_slice()
                    && statuses
                        .iter()
                        .all(|s| s.leader == Some(leader.id) && s.term == leader.term)
                {
                    return leader.id;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("a leader all nodes agree on")
    }

    /// Proposes `values` concurrently through the leader; returns how many were acknowledged
    /// and how many ended with an unknown outcome.
    async fn propose_all(&self, values: std::ops::Range<u64>) -> (u64, u64) {
        let leader = self.handle(self.leader().await);
        let mut tasks = Vec::new();
        for value in values {
            let leader = leader.clone();
            tasks.push(tokio::spawn(async move { leader.propose(value).await }));
        }
        let (mut ok, mut unknown) = (0, 0);
        for task in tasks {
            match tokio::time::timeout(BOUND, task).await.unwrap().unwrap() {
                Ok(_) => ok += 1,
                Err(ProposeError::Unknown | ProposeError::NotLeader { .. }) => unknown += 1,
                Err(error) => panic!("proposal failed: {error}"),
            }
        }
        (ok, unknown)
    }

    /// Waits until every running node has applied `index`.
    async fn all_applied(&self, index: Index) {
        for node in self.nodes.values() {
            let mut watch = node.handle().watch_status();
            tokio::time::timeout(BOUND, watch.wait_for(|s| s.last_applied >= index))
                .await
                .expect("applied within the bound")
                .unwrap();
        }
    }

    async fn states(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        for node in self.nodes.values() {
            out.push(
                node.handle()
                    .read(|s: &Sum| (s.total, s.count))
                    .await
                    .unwrap(),
            );
        }
        out
    }

    async fn shutdown(self) {
        for (_, node) in self.nodes {
            node.shutdown().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_commit_and_a_restarted_node_catches_up() {
    let mut cluster = Cluster::start("three", 3).await;
    let leader = cluster.leader().await;
    let follower = NodeId(leader.0 % 3 + 1);
    assert!(matches!(
        cluster.handle(follower).propose(1).await,
        Err(ProposeError::NotLeader { leader_hint: Some(hint) }) if hint == leader
    ));

    let (ok, unknown) = cluster.propose_all(1..101).await;
    assert!(ok >= 100 - unknown);
    let applied = cluster.handle(leader).status().last_applied;
    cluster.all_applied(applied).await;
    let states = cluster.states().await;
    assert!(states.iter().all(|s| *s == states[0]), "{states:?}");
    let (total, count) = states[0];
    assert!(
        count >= ok && count <= ok + unknown,
        "{count} applied, {ok} acknowledged"
    );
    assert!(ok < 100 || total == (1..101).sum::<u64>());

    // Stop a follower; the other two carry on and compact past what it has.
    let down = NodeId(leader.0 % 3 + 1);
    cluster
        .nodes
        .remove(&down)
        .unwrap()
        .shutdown()
        .await
        .unwrap();
    let (ok2, unknown2) = cluster.propose_all(101..201).await;
    assert!(ok2 >= 100 - unknown2);
    let leader_status = cluster.handle(cluster.leader().await).status();
    assert!(
        leader_status.snapshot_index > applied,
        "the leader compacted past the stopped node: {leader_status:?}"
    );

    // Restart it from its directory: it recovers its own state, then catches up.
    let report = cluster.restart(down).await;
    assert!(!report.fresh, "{report:?}");
    assert_eq!(report.torn_tail, None);
    cluster.all_applied(leader_status.last_applied).await;
    let states = cluster.states().await;
    assert!(states.iter().all(|s| *s == states[0]), "{states:?}");
    assert!(states[0].1 >= ok + ok2);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_are_served_by_the_leader_and_pointed_to_it_by_followers() {
    use node::serve::{ClientConnection, ClientReply, ServeOptions, serve};
    let cluster = Cluster::start("serve", 3).await;
    let mut client_addrs = BTreeMap::new();
    let mut listeners = BTreeMap::new();
    for id in cluster.nodes.keys() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        client_addrs.insert(*id, listener.local_addr().unwrap());
        listeners.insert(*id, listener);
    }
    let options = ServeOptions {
        client_addrs: client_addrs
            .iter()
            .map(|(id, a)| (*id, a.to_string()))
            .collect(),
        ..ServeOptions::default()
    };
    for (id, listener) in listeners {
        tokio::spawn(serve(listener, cluster.handle(id), options.clone()));
    }
    let leader = cluster.leader().await;
    let follower = NodeId(leader.0 % 3 + 1);

    let mut conn = ClientConnection::connect(client_addrs[&follower])
        .await
        .unwrap();
    let reply = conn.call(raft::encode_command(&5u64)).await.unwrap();
    assert_eq!(
        reply,
        ClientReply::NotLeader {
            leader: Some(leader),
            leader_addr: Some(client_addrs[&leader].to_string())
        }
    );
    let reply = conn.call(vec![0xff; 11]).await.unwrap();
    assert!(matches!(reply, ClientReply::BadRequest(_)), "{reply:?}");

    let mut conn = ClientConnection::connect(client_addrs[&leader])
        .await
        .unwrap();
    for (value, total) in [(5u64, 5u64), (7, 12)] {
        let reply = conn.call(raft::encode_command(&value)).await.unwrap();
        assert_eq!(reply, ClientReply::Applied(raft::encode_command(&total)));
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_whole_cluster_restart() {
    let mut cluster = Cluster::start("restart-all", 3).await;
    let (ok, unknown) = cluster.propose_all(1..51).await;
    let ids: Vec<NodeId> = cluster.nodes.keys().copied().collect();
    for id in &ids {
        cluster.nodes.remove(id).unwrap().shutdown().await.unwrap();
    }
    for id in &ids {
        let report = cluster.restart(*id).await;
        assert!(!report.fresh);
    }
    // A new leader learns what was committed once it commits an entry of its own term.
    let (ok_after, _) = cluster.propose_all(1000..1001).await;
    assert_eq!(ok_after, 1);
    let applied = cluster.handle(cluster.leader().await).status().last_applied;
    cluster.all_applied(applied).await;
    let states = cluster.states().await;
    assert!(states.iter().all(|s| *s == states[0]), "{states:?}");
    let (total, count) = states[0];
    assert!(
        count > ok && count <= ok + unknown + 1,
        "{count} applied, {ok} acknowledged"
    );
    if unknown == 0 {
        assert_eq!(total, (1..51).sum::<u64>() + 1000);
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_log_tail_is_cut_at_restart_and_a_corrupt_record_refuses_to_start() {
    use std::io::Write;
    let mut cluster = Cluster::start("torn", 3).await;
    cluster.propose_all(1..21).await;
    let leader = cluster.leader().await;
    let down = NodeId(leader.0 % 3 + 1);
    let applied = cluster.handle(leader).status().last_applied;
    cluster.all_applied(applied).await;
    cluster
        .nodes
        .remove(&down)
        .unwrap()
        .shutdown()
        .await
        .unwrap();

    // An interrupted final write: half a record at the end of the log.
    let log = cluster.data_dir(down).join(node::storage::LOG_FILE);
    let intact_len = std::fs::metadata(&log).unwrap().len();
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(&[40, 0, 0, 0, 1, 2, 3, 4, 5, 6]).unwrap();
    drop(file);
    let report = cluster.restart(down).await;
    assert_eq!(report.torn_tail.map(|t| t.offset), Some(intact_len));
    cluster.propose_all(21..31).await;
    let applied = cluster.handle(cluster.leader().await).status().last_applied;
    cluster.all_applied(applied).await;

    // A flipped bit in the first append record (after the log's header record): the node
    // refuses to start, naming file and offset.
    let down = NodeId(cluster.leader().await.0 % 3 + 1);
    cluster
        .nodes
        .remove(&down)
        .unwrap()
        .shutdown()
        .await
        .unwrap();
    let log = cluster.data_dir(down).join(node::storage::LOG_FILE);
    let mut bytes = std::fs::read(&log).unwrap();
    assert!(bytes.len() > 40, "the log holds several records");
    let first = node::storage::record::scan(&bytes).records[1].offset;
    bytes[first as usize + 10] ^= 0x08;
    std::fs::write(&log, &bytes).unwrap();
    let listener = TcpListener::bind(cluster.addrs[&down]).await.unwrap();
    let voters = cluster.addrs.keys().copied().collect();
    let options = NodeOptions::new(
        raft::Config::new(down, voters, 1),
        cluster.data_dir(down),
        listener,
        cluster.addrs.clone(),
    );
    match RunningNode::start(options, Sum::default()).await {
        Err(node::runtime::StartError::Storage(node::storage::StorageError::Corrupt {
            path,
            offset,
            ..
        })) => assert_eq!((path, offset), (log, first)),
        Err(other) => panic!("expected corruption at offset {first}, got {other}"),
        Ok(_) => panic!("a corrupt log must refuse to start"),
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_disk_fails_stops_and_its_vote_never_counts() {
    let mut cluster = Cluster::start("disk-fails", 3).await;
    let leader = cluster.leader().await;
    let broken = NodeId(leader.0 % 3 + 1);
    let third = NodeId(broken.0 % 3 + 1);
    assert_ne!(third, leader);
    // Swap the data directory for a file: the log file already open keeps working, but the next
    // hard-state write (a new term or a vote) cannot create its temporary file.
    let dir = cluster.data_dir(broken);
    std::fs::rename(&dir, dir.with_extension("moved")).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    let start_term = cluster.handle(third).status().term;
    cluster
        .nodes
        .remove(&leader)
        .unwrap()
        .shutdown()
        .await
        .unwrap();

    // An election follows: the broken node must persist a term or a vote, fails, and stops.
    let mut broken_node = cluster.nodes.remove(&broken).unwrap();
    let result = tokio::time::timeout(BOUND, broken_node.wait())
        .await
        .expect("the broken node stops");
    assert!(
        matches!(result, Err(node::runtime::DriverError::Storage(_))),
        "{result:?}"
    );
    // Its vote never left the process: the third node, which needs it, campaigns in vain.
    let mut watch = cluster.handle(third).watch_status();
    let seen = *tokio::time::timeout(
        BOUND,
        watch.wait_for(|s| s.role == Some(Role::Leader) || s.term.0 >= start_term.0 + 4),
    )
    .await
    .expect("the third node campaigns")
    .unwrap();
    assert_ne!(seen.role, Some(Role::Leader), "{seen:?}");

    let _ = std::fs::remove_file(&dir);
    let _ = std::fs::remove_dir_all(dir.with_extension("moved"));
    cluster.shutdown().await;
}
