//! The runtime on madsim: the same `node` code (driver, TCP transport, file storage, client
//! serving, clerks) on madsim's simulated time, network and scheduler, and on a simulated disk,
//! so kills, power failures, restarts and partitions replay exactly from a seed.
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
//! Each server keeps its data directory on its own [`SimDisk`], which survives the server's
//! restarts. madsim's own file system has no rename, no directory sync and no power failure, so
//! it cannot show whether the storage's crash guarantees hold; the simulated disk models all
//! three (`node/src/storage/disk.rs`). Two kinds of crash:
//!
//! * a kill, as a SIGKILL: the node's tasks stop, maybe in the middle of a flush (before a
//!   random one of its next writes and syncs), and the disk keeps every write (the kernel holds
//!   them);
//! * a power failure: the disk may first die in the middle of a write (after a random number of
//!   further writes), then loses what was not synced — unsynced appends in part, unsynced
//!   renames and new names — before the node restarts.
//!
//! A third test takes the power from every server at once, repeatedly: with no survivor to copy
//! from, an acknowledged write survives only if it was durable before it was acknowledged.
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
use node::storage::disk::SimDisk;
use raft::NodeId;
use services::clerk::{Clerk, Transport};
use services::kv::{KvStore, Op};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
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

/// One server: opens its data directory on its disk, runs the node and serves clients until
/// killed.
async fn run_server(i: usize, n: usize, disk: SimDisk) {
    let id = NodeId(i as u32 + 1);
    let peers = raft_addrs(n);
    let listener = tokio::net::TcpListener::bind(peers[&id]).await.unwrap();
    let clients = tokio::net::TcpListener::bind(SocketAddr::new(server_ip(i), CLIENT_PORT))
        .await
        .unwrap();
    let seed = thread_rng().r#gen::<u64>();
    let config = raft::Config::new(id, peers.keys().copied().collect(), seed);
    let mut options = NodeOptions::new(config, format!("data/n{}", i + 1).into(), listener, peers);
    options.disk = Box::new(disk);
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

struct Sim {
    n: usize,
    servers: Vec<NodeHandle>,
    disks: Vec<SimDisk>,
}

impl Sim {
    fn start(n: usize) -> Sim {
        let handle = Handle::current();
        let disks: Vec<SimDisk> = (0..n)
            .map(|_| SimDisk::new(thread_rng().r#gen::<u64>()))
            .collect();
        let servers = (0..n)
            .map(|i| {
                let disk = disks[i].clone();
                handle
                    .create_node()
                    .name(format!("server-{}", i + 1))
                    .ip(server_ip(i))
                    .init(move || run_server(i, n, disk.clone()))
                    .build()
            })
            .collect();
        Sim { n, servers, disks }
    }

    fn clerk(&self, client: u64) -> Clerk<TcpTransport> {
        Clerk::new(TcpTransport::new(client_addrs(self.n)), client)
    }
}

/// Takes the power from a server: its disk dies after a random number of further writes and
/// syncs (or the wait runs out first), then the node stops and the disk loses what was not
/// synced. The caller restarts it.
async fn power_fail(disk: &SimDisk, node: madsim::task::NodeId) {
    disk.fail_after(thread_rng().gen_range(0..40));
    wait_for_stop(disk).await;
    Handle::current().kill(node);
    disk.power_fail();
}

/// Kills a server's process: it stops before a random one of its next writes and syncs (or when
/// the wait runs out), as a SIGKILL in the middle of a flush would; the disk keeps everything
/// written. The caller restarts it.
async fn kill(disk: &SimDisk, node: madsim::task::NodeId) {
    disk.kill_after(thread_rng().gen_range(0..40));
    wait_for_stop(disk).await;
    Handle::current().kill(node);
    disk.restart_process();
}

/// Waits up to 300 ms of simulated time for an armed disk to stop.
async fn wait_for_stop(disk: &SimDisk) {
    let wait_until =
        tokio::time::Instant::now() + Duration::from_millis(thread_rng().gen_range(0..300));
    while !disk.is_dead() && tokio::time::Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Faults chosen by the seed, started every 0.2-1.5 s and lasting 0.1-3 s, so they overlap:
/// a node killed and restarted, a node losing power and restarting, a node cut off from
/// everyone, or one link cut both ways. Two overlapping faults can take a majority away for a
/// while; the clerks must ride it out.
async fn inject_faults(sim: &Sim, duration: Duration) -> usize {
    let mut rng = thread_rng();
    let end = tokio::time::Instant::now() + duration;
    let mut faults = Vec::new();
    // A node already down is not crashed again (its restart belongs to the first crash).
    let down: Arc<Mutex<Vec<bool>>> = Arc::new(Mutex::new(vec![false; sim.n]));
    while tokio::time::Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(200..1500))).await;
        let victim_index = rng.gen_range(0..sim.n);
        let other_index = (victim_index + rng.gen_range(1..sim.n)) % sim.n;
        let victim = sim.servers[victim_index].id();
        let other = sim.servers[other_index].id();
        let disk = sim.disks[victim_index].clone();
        let length = Duration::from_millis(rng.gen_range(100..3000));
        let mut kind = rng.gen_range(0..4);
        if kind <= 1 {
            let mut down = down.lock().unwrap();
            if down[victim_index] {
                kind = 2;
            } else {
                down[victim_index] = true;
            }
        }
        let down = down.clone();
        faults.push(tokio::spawn(async move {
            let handle = Handle::current();
            let net = NetSim::current();
            match kind {
                0 | 1 => {
                    if kind == 0 {
                        kill(&disk, victim).await;
                    } else {
                        power_fail(&disk, victim).await;
                    }
                    tokio::time::sleep(length).await;
                    handle.restart(victim);
                    down.lock().unwrap()[victim_index] = false;
                }
                2 => {
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

/// Takes the power from every server at once, every 1-4 s, and brings them back 0.1-1 s later.
async fn cluster_power_failures(sim: &Sim, duration: Duration) -> usize {
    let mut rng = thread_rng();
    let end = tokio::time::Instant::now() + duration;
    let mut outages = 0;
    while tokio::time::Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1000..4000))).await;
        // Each disk dies after its own number of writes; whatever they are doing when the wait
        // ends, every server goes down at the same instant.
        for disk in &sim.disks {
            disk.fail_after(rng.gen_range(0..40));
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..300))).await;
        for (disk, server) in sim.disks.iter().zip(&sim.servers) {
            Handle::current().kill(server.id());
            disk.power_fail();
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..1000))).await;
        for server in &sim.servers {
            Handle::current().restart(server.id());
        }
        outages += 1;
    }
    outages
}

/// The faults of a run.
#[derive(Clone, Copy, Debug)]
enum Faults {
    /// Overlapping kills, power failures and partitions of single nodes and links.
    Mixed,
    /// Power failures of the whole cluster at once.
    ClusterPowerFailures,
}

/// Runs `clients` clients against an `n`-node cluster under `kind` faults for `duration` of
/// simulated time, then heals everything, reads every client's key and checks the history.
async fn run(n: usize, clients: usize, duration: Duration, kind: Faults) {
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
    let faults = match kind {
        Faults::Mixed => inject_faults(&sim, duration).await,
        Faults::ClusterPowerFailures => cluster_power_failures(&sim, duration).await,
    };
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let values = final_reads(&sim, clients as u64, &recorder).await;

    let run = format!("seed {}", Handle::current().seed());
    let checked = common::check_run(&recorder.operations(), &values, &run);
    let (power_failures, bytes_lost, names_lost) =
        sim.disks
            .iter()
            .map(SimDisk::stats)
            .fold((0, 0, 0), |acc, s| {
                (
                    acc.0 + s.power_failures,
                    acc.1 + s.bytes_lost,
                    acc.2 + s.names_lost,
                )
            });
    println!(
        "{run}: {n} nodes, {faults} faults ({kind:?}; {power_failures} disk power failures lost \
         {bytes_lost} unsynced bytes and {names_lost} unsynced names), {} operations ({} gave \
         up), {:?}; {} appends acknowledged and present once, {} unknown",
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
    run(3, 3, Duration::from_secs(20), Faults::Mixed).await;
}

#[madsim::test]
async fn five_nodes_under_kills_and_partitions() {
    run(5, 4, Duration::from_secs(20), Faults::Mixed).await;
}

#[madsim::test]
async fn three_nodes_under_cluster_power_failures() {
    run(3, 3, Duration::from_secs(20), Faults::ClusterPowerFailures).await;
}
