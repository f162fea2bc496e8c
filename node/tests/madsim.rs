//! The runtime on madsim: the same `node` code (driver, TCP transport, file storage, client
//! serving, clerks) on madsim's simulated time, network and scheduler, so kills, restarts and
//! partitions replay exactly from a seed.
//!
//! Build and run with `RUSTFLAGS="--cfg madsim"` (see `just madsim`; the `madsim` profile is
//! release at `opt-level = 1`, and without the default `cli` feature the binaries, clap and
//! the regex engine are not built):
//!
//! ```text
//! RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target/madsim MADSIM_TEST_NUM=20 \
//!     cargo test --profile madsim --no-default-features -p node --test madsim
//! ```
//!
//! `MADSIM_TEST_SEED=<decimal>` pins the first seed and `MADSIM_TEST_NUM` runs that many
//! consecutive seeds; a failure prints the seed that reproduces it. `RUST_LOG=<level>` shows
//! the nodes' logs in simulated time.
//!
//! The servers' data directories are real directories (madsim does not simulate the file
//! system); a simulated kill drops the node's tasks, unsynced staged writes included, as a
//! SIGKILL would. They live on tmpfs (`/dev/shm`) when there is one: a killed process loses
//! nothing the kernel already holds, so what a real fsync adds is protection from power loss,
//! which these tests do not model, and on a disk it took three quarters of their time.
//!
//! Clients append to their own keys, read any key and write shared ones (`common/mod.rs`).
//! Every clerk operation, the final reads included, is recorded in simulated time and the whole
//! history must be linearizable (lincheck); each client's own key must also pass the labs'
//! append check: every acknowledged append in the final value exactly once and in order. Each
//! run also plants a stale read in its own history and requires the checker to reject it.

#![cfg(madsim)]

mod common;

use common::history::{Recorder, Verdict};
use madsim::net::NetSim;
use madsim::rand::{Rng, thread_rng};
use madsim::runtime::{Handle, NodeHandle};
use node::kv::TcpTransport;
use node::runtime::{NodeOptions, RunningNode};
use node::serve::{ServeOptions, serve};
use raft::NodeId;
use services::clerk::{Clerk, Transport};
use services::kv::{KvStore, Op};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing_subscriber::filter::LevelFilter;

const RAFT_PORT: u16 = 7000;
const CLIENT_PORT: u16 = 8000;

/// Simulated addresses: they exist only inside madsim's network, no packet leaves the process.
fn server_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 77, 0, i as u8 + 1))
}

fn client_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 77, 1, i as u8 + 1))
}

fn raft_addrs(n: usize) -> BTreeMap<NodeId, SocketAddr> {
    (0..n)
        .map(|i| {
            (
                NodeId(i as u32 + 1),
                SocketAddr::new(server_ip(i), RAFT_PORT),
            )
        })
        .collect()
}

fn client_addrs(n: usize) -> Vec<SocketAddr> {
    (0..n)
        .map(|i| SocketAddr::new(server_ip(i), CLIENT_PORT))
        .collect()
}

/// One server: opens its data directory, runs the node and serves clients until killed.
async fn run_server(i: usize, n: usize, dir: PathBuf) {
    let id = NodeId(i as u32 + 1);
    let peers = raft_addrs(n);
    let listener = tokio::net::TcpListener::bind(peers[&id]).await.unwrap();
    let clients = tokio::net::TcpListener::bind(SocketAddr::new(server_ip(i), CLIENT_PORT))
        .await
        .unwrap();
    let seed = thread_rng().r#gen::<u64>();
    let config = raft::Config::new(id, peers.keys().copied().collect(), seed);
    let mut options = NodeOptions::new(config, dir, listener, peers);
    options.compact_threshold_bytes = Some(16 << 10);
    let node = RunningNode::start(options, KvStore::new())
        .await
        .expect("a server restarts from its own directory");
    let serve_options = ServeOptions {
        client_addrs: (0..n)
            .map(|k| (NodeId(k as u32 + 1), client_addrs(n)[k].to_string()))
            .collect(),
        ..ServeOptions::default()
    };
    serve(clients, node.handle(), serve_options).await;
}

/// Where the servers' data directories go: tmpfs if the machine has one (see the module docs).
fn data_root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

struct Sim {
    n: usize,
    dir: PathBuf,
    servers: Vec<NodeHandle>,
}

impl Sim {
    fn start(n: usize) -> Sim {
        let handle = Handle::current();
        let dir = data_root().join(format!(
            "node-madsim-{}-{}-{n}",
            std::process::id(),
            handle.seed()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let servers = (0..n)
            .map(|i| {
                let data = dir.join(format!("n{}", i + 1));
                handle
                    .create_node()
                    .name(format!("server-{}", i + 1))
                    .ip(server_ip(i))
                    .init(move || run_server(i, n, data.clone()))
                    .build()
            })
            .collect();
        Sim { n, dir, servers }
    }

    fn clerk(&self, client: u64) -> Clerk<TcpTransport> {
        Clerk::new(TcpTransport::new(client_addrs(self.n)), client)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(Path::new(&self.dir));
    }
}

/// Faults chosen by the seed, started every 0.2-1.5 s and lasting 0.1-3 s, so they overlap:
/// a node killed and restarted, a node cut off from everyone, or one link cut both ways. Two
/// overlapping faults can take a majority away for a while; the clerks must ride it out.
async fn inject_faults(sim: &Sim, duration: Duration) -> usize {
    let mut rng = thread_rng();
    let end = tokio::time::Instant::now() + duration;
    let mut faults = Vec::new();
    // A node already down is not killed again (its restart belongs to the first kill).
    let down: Arc<Mutex<Vec<bool>>> = Arc::new(Mutex::new(vec![false; sim.n]));
    while tokio::time::Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(200..1500))).await;
        let victim_index = rng.gen_range(0..sim.n);
        let other_index = (victim_index + rng.gen_range(1..sim.n)) % sim.n;
        let victim = sim.servers[victim_index].id();
        let other = sim.servers[other_index].id();
        let length = Duration::from_millis(rng.gen_range(100..3000));
        let mut kind = rng.gen_range(0..3);
        if kind == 0 {
            let mut down = down.lock().unwrap();
            if down[victim_index] {
                kind = 1;
            } else {
                down[victim_index] = true;
            }
        }
        let down = down.clone();
        faults.push(tokio::spawn(async move {
            let handle = Handle::current();
            let net = NetSim::current();
            match kind {
                0 => {
                    handle.kill(victim);
                    tokio::time::sleep(length).await;
                    handle.restart(victim);
                    down.lock().unwrap()[victim_index] = false;
                }
                1 => {
                    net.clog_node(victim);
                    tokio::time::sleep(length).await;
                    net.unclog_node(victim);
                }
                _ => {
                    net.clog_link(victim, other);
                    net.clog_link(other, victim);
                    tokio::time::sleep(length).await;
                    net.unclog_link(victim, other);
                    net.unclog_link(other, victim);
                }
            }
        }));
    }
    let count = faults.len();
    for fault in faults {
        fault.await.unwrap();
    }
    count
}

/// Runs `clients` clients against an `n`-node cluster under faults for `duration` of simulated
/// time, then heals everything, reads every client's key and checks the history.
async fn run(n: usize, clients: usize, duration: Duration) {
    // A level only: the madsim build leaves out env-filter and its regex engine.
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|level| level.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::OFF);
    let _ = tracing_subscriber::fmt().with_max_level(level).try_init();
    let sim = Sim::start(n);
    let stop = Arc::new(AtomicBool::new(false));
    let recorder = Arc::new(Recorder::new());
    let tasks = spawn_clients(&sim, clients as u64, &stop, &recorder);
    let faults = inject_faults(&sim, duration).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let values = final_reads(&sim, clients as u64, &recorder).await;

    let run = format!("seed {}", Handle::current().seed());
    let checked = common::check_run(&recorder.operations(), &values, &run);
    println!(
        "{run}: {n} nodes, {faults} faults, {} operations ({} gave up), {:?}; {} appends \
         acknowledged and present once, {} unknown",
        checked.operations, checked.gave_up, checked.verdict, checked.acked, checked.unknown
    );
    assert!(checked.acked > 0, "{run}: no append was acknowledged");
    assert_eq!(
        checked.verdict,
        Verdict::Linearizable,
        "{run}: the check was not decided"
    );
}

/// Starts client `0..clients`, each on its own simulated machine, running the common workload
/// until `stop`.
fn spawn_clients(
    sim: &Sim,
    clients: u64,
    stop: &Arc<AtomicBool>,
    recorder: &Arc<Recorder>,
) -> Vec<madsim::task::JoinHandle<()>> {
    let handle = Handle::current();
    (0..clients)
        .map(|id| {
            let node = handle
                .create_node()
                .name(format!("client-{id}"))
                .ip(client_ip(id as usize))
                .build();
            // Clerk ids must be unique and non-zero; the history knows the client by `id`.
            let mut clerk = sim.clerk(id + 1);
            let (stop, recorder) = (stop.clone(), recorder.clone());
            node.spawn(async move {
                let random = || thread_rng().r#gen::<u64>();
                let timeout_us = 5_000_000;
                common::run_client(
                    id, clients, &mut clerk, &recorder, &stop, random, timeout_us,
                )
                .await;
            })
        })
        .collect()
}

/// Reads every client's key from a fresh machine once the faults are over, recording the reads.
async fn final_reads(sim: &Sim, clients: u64, recorder: &Arc<Recorder>) -> Vec<String> {
    let reader_node = Handle::current()
        .create_node()
        .name("reader")
        .ip(client_ip(100))
        .build();
    let mut reader = sim.clerk(1_000);
    let recorder = recorder.clone();
    reader_node
        .spawn(async move {
            let mut values = Vec::new();
            for id in 0..clients {
                let deadline = reader.transport().now_us() + 30_000_000;
                let get = Op::Get {
                    key: common::key(id),
                };
                let reply = recorder.execute(&mut reader, READER, get, deadline).await;
                values.push(reply.expect("the healed cluster answers").value);
            }
            values
        })
        .await
        .unwrap()
}

/// The final reader's client id in the history.
const READER: u64 = 1_000;

#[madsim::test]
async fn three_nodes_under_kills_and_partitions() {
    run(3, 3, Duration::from_secs(20)).await;
}

#[madsim::test]
async fn five_nodes_under_kills_and_partitions() {
    run(5, 4, Duration::from_secs(20)).await;
}
