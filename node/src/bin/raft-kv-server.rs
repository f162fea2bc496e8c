//! `raft-kv-server`: one node of the replicated key/value store, over TCP and fsync'd files.
//!
//! ```text
//! raft-kv-server --id 1 --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 \
//!     --data-dir data/n1 --client-addr 127.0.0.1:8001 \
//!     --client-peers 1=127.0.0.1:8001,2=127.0.0.1:8002,3=127.0.0.1:8003
//! ```
//!
//! Logs go to stderr through `tracing` (`RUST_LOG=debug` for more). Exit codes: 0 after Ctrl-C,
//! 1 when the node stops on an error (a failed write), 2 when it cannot start (bad flags, a
//! corrupt data directory, an address in use).

use clap::Parser;
use node::kv::{parse_peer_list, random_u64};
use node::runtime::{NodeOptions, RunningNode};
use node::serve::{ServeOptions, serve};
use raft::NodeId;
use services::kv::KvStore;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};

/// One node of the replicated key/value store.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// This node's id (one of the ids in --peers).
    #[arg(long)]
    id: u32,
    /// Every node's Raft address, this one included: id=ip:port,...
    #[arg(long)]
    peers: String,
    /// Where this node keeps its log, hard state and snapshot (created if missing).
    #[arg(long)]
    data_dir: PathBuf,
    /// Where clients connect to this node.
    #[arg(long)]
    client_addr: String,
    /// Every node's client address (id=ip:port,...), so followers can point clients to the
    /// leader.
    #[arg(long)]
    client_peers: Option<String>,
    /// Milliseconds per Raft tick (elections time out after 30-60 ticks, heartbeats every 10).
    #[arg(long, default_value_t = 10)]
    tick_ms: u64,
    /// Snapshot the store when the Raft log reaches this many bytes.
    #[arg(long, default_value_t = 4 << 20)]
    compact_bytes: usize,
    /// How long a request may wait to commit before the client is told to retry.
    #[arg(long, default_value_t = 1000)]
    request_timeout_ms: u64,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("raft-kv-server: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let node = match start(&args).await {
        Ok(node) => node,
        Err(error) => {
            eprintln!("raft-kv-server: {error}");
            return ExitCode::from(2);
        }
    };
    let mut node = node;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("interrupted; shutting down");
            match node.shutdown().await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("raft-kv-server: {error}");
                    ExitCode::from(1)
                }
            }
        }
        result = node.wait() => {
            if let Err(error) = result {
                eprintln!("raft-kv-server: the node stopped: {error}");
            }
            ExitCode::from(1)
        }
    }
}

/// Connections a listener queues before it accepts them (the kernel caps it at somaxconn).
/// The default of 128 overflowed when 256 clients connected at once: the dropped SYNs were
/// retried a second later, which showed as one-second latencies.
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with [`LISTEN_BACKLOG`].
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A listener on the first of `addr`'s addresses (a host name may have several) that binds.
async fn listen_any(addr: &str) -> std::io::Result<TcpListener> {
    let mut last_error = None;
    for resolved in tokio::net::lookup_host(addr).await? {
        match listen(resolved) {
            Ok(listener) => return Ok(listener),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "the name has no address")
    }))
}

async fn start(args: &Args) -> Result<RunningNode<KvStore>, String> {
    let id = NodeId(args.id);
    let peers = parse_peer_list(&args.peers).map_err(|e| format!("--peers: {e}"))?;
    let Some(&raft_addr) = peers.get(&id) else {
        return Err(format!("--peers has no address for --id {}", args.id));
    };
    let client_addrs = match &args.client_peers {
        Some(list) => parse_peer_list(list)
            .map_err(|e| format!("--client-peers: {e}"))?
            .into_iter()
            .map(|(id, addr)| (id, addr.to_string()))
            .collect(),
        None => Default::default(),
    };
    let listener =
        listen(raft_addr).map_err(|e| format!("cannot listen on {raft_addr} for peers: {e}"))?;
    let client_listener = listen_any(&args.client_addr)
        .await
        .map_err(|e| format!("cannot listen on {} for clients: {e}", args.client_addr))?;
    let voters = peers.keys().copied().collect();
    // A fresh seed per incarnation, so a restarted node does not draw the same timeouts.
    let config = raft::Config::new(id, voters, random_u64());
    config
        .validate()
        .map_err(|e| format!("configuration: {e}"))?;
    let mut options = NodeOptions::new(config, args.data_dir.clone(), listener, peers);
    options.tick = Duration::from_millis(args.tick_ms.max(1));
    options.compact_threshold_bytes = Some(args.compact_bytes);
    let started = std::time::Instant::now();
    let node = RunningNode::start(options, KvStore::new())
        .await
        .map_err(|e| format!("cannot start: {e}"))?;
    tracing::info!(
        %id,
        %raft_addr,
        client_addr = %args.client_addr,
        recovered_in_ms = started.elapsed().as_millis() as u64,
        "node started"
    );
    let serve_options = ServeOptions {
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        client_addrs,
        ..ServeOptions::default()
    };
    tokio::spawn(serve(client_listener, node.handle(), serve_options));
    tokio::spawn(log_stats(node.handle()));
    Ok(node)
}

/// Logs the node's counters every ten seconds while they move.
async fn log_stats(handle: node::runtime::Handle<KvStore>) {
    let mut last = handle.status();
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let status = handle.status();
        if status.last_applied != last.last_applied
            || status.messages_dropped != last.messages_dropped
        {
            tracing::info!(
                term = %status.term,
                leader = ?status.leader.map(|l| l.0),
                last_applied = %status.last_applied,
                snapshot_index = %status.snapshot_index,
                fsyncs = status.storage.syncs,
                messages_sent = status.messages_sent,
                messages_dropped = status.messages_dropped,
                "stats"
            );
        }
        last = status;
    }
}
