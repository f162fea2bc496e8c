//! `raft-kv`: the key/value store's command-line client, and a load generator.
//!
//! ```text
//! raft-kv put greeting hello
//! raft-kv get greeting
//! raft-kv append greeting ", world"
//! raft-kv delete greeting
//! raft-kv bench --clients 16 --ops 10000
//! ```
//!
//! `--servers` (or `RAFT_KV_SERVERS`) lists the servers' client addresses; the default is the
//! cluster `just cluster` starts. Each call finds the leader and retries until `--timeout-ms`;
//! retries never apply a command twice. Exit codes: 0 success, 1 a key that is not there
//! (get, delete), 2 bad arguments, 3 no answer in time.

use clap::{Parser, Subcommand, ValueEnum};
use node::kv::{TcpTransport, random_u64};
use services::clerk::{Clerk, ClerkError, Transport};
use services::kv::{Op, Reply};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Client of the replicated key/value store.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The servers' client addresses, comma-separated.
    #[arg(
        long,
        env = "RAFT_KV_SERVERS",
        default_value = "127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003"
    )]
    servers: String,
    /// Give up on an operation after this many milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Prints the value of KEY.
    Get {
        /// The key.
        key: String,
    },
    /// Sets KEY to VALUE.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Appends VALUE to KEY's value.
    Append {
        /// The key.
        key: String,
        /// What to append.
        value: String,
    },
    /// Removes KEY.
    Delete {
        /// The key.
        key: String,
    },
    /// Runs a load: N concurrent clients, each doing its share of M operations one at a time;
    /// prints throughput and latency percentiles.
    Bench {
        /// Concurrent clients (each with its own connections and session).
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Operations in total.
        #[arg(long, default_value_t = 10_000)]
        ops: usize,
        /// The operation to run.
        #[arg(long, value_enum, default_value_t = Workload::Put)]
        workload: Workload,
        /// Bytes per value written.
        #[arg(long, default_value_t = 32)]
        value_bytes: usize,
        /// Distinct keys per client.
        #[arg(long, default_value_t = 100)]
        keys: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// Every operation is a put.
    Put,
    /// Every operation is a get (reads go through the log too).
    Get,
    /// Half puts, half gets.
    Mixed,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let servers = match parse_servers(&args.servers) {
        Ok(servers) => servers,
        Err(error) => {
            eprintln!("raft-kv: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("raft-kv: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let timeout = Duration::from_millis(args.timeout_ms);
    runtime.block_on(async move {
        match args.command {
            Command::Bench {
                clients,
                ops,
                workload,
                value_bytes,
                keys,
            } => {
                let load = Load {
                    clients: clients.max(1),
                    ops,
                    workload,
                    value_bytes,
                    keys: keys.max(1),
                    timeout,
                };
                bench(servers, load).await
            }
            command => single(servers, command, timeout).await,
        }
    })
}

fn parse_servers(list: &str) -> Result<Vec<SocketAddr>, String> {
    let servers: Result<Vec<SocketAddr>, String> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| format!("--servers: {s:?} is not ip:port"))
        })
        .collect();
    let servers = servers?;
    if servers.is_empty() {
        return Err("--servers lists no server".to_string());
    }
    Ok(servers)
}

async fn run_op(
    clerk: &mut Clerk<TcpTransport>,
    op: Op,
    timeout: Duration,
) -> Result<Reply, ClerkError> {
    let deadline = clerk
        .transport()
        .now_us()
        .saturating_add(u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX));
    clerk.execute_by(op, deadline).await
}

async fn single(servers: Vec<SocketAddr>, command: Command, timeout: Duration) -> ExitCode {
    let mut clerk = Clerk::new(TcpTransport::new(servers), random_u64() >> 2);
    let (op, kind) = match command {
        Command::Get { key } => (Op::Get { key }, "get"),
        Command::Put { key, value } => (Op::Put { key, value }, "put"),
        Command::Append { key, value } => (Op::Append { key, value }, "append"),
        Command::Delete { key } => (Op::Delete { key }, "delete"),
        Command::Bench { .. } => unreachable!("bench is handled by the caller"),
    };
    let reply = match run_op(&mut clerk, op, timeout).await {
        Ok(reply) => reply,
        Err(error) => {
            eprintln!("raft-kv: {kind}: {error}");
            return ExitCode::from(3);
        }
    };
    match (kind, reply.succ) {
        ("get", true) => println!("{}", reply.value),
        ("get", false) | ("delete", false) => {
            eprintln!("not found");
            return ExitCode::from(1);
        }
        ("put", false) => println!("OK (replaced {:?})", reply.value),
        ("delete", true) => println!("deleted {:?}", reply.value),
        _ => println!("OK"),
    }
    ExitCode::SUCCESS
}

struct Load {
    clients: usize,
    ops: usize,
    workload: Workload,
    value_bytes: usize,
    keys: usize,
    timeout: Duration,
}

/// What one bench client measured.
#[derive(Default)]
struct ClientResult {
    latencies_us: Vec<u64>,
    errors: u64,
}

async fn bench(servers: Vec<SocketAddr>, load: Load) -> ExitCode {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..load.clients {
        let ops = load.ops / load.clients + usize::from(client < load.ops % load.clients);
        let servers = servers.clone();
        let (workload, value_bytes, keys, timeout) =
            (load.workload, load.value_bytes, load.keys, load.timeout);
        tasks.push(tokio::spawn(async move {
            let mut clerk = Clerk::new(TcpTransport::new(servers), random_u64() >> 2);
            let value = "x".repeat(value_bytes);
            let mut result = ClientResult::default();
            for i in 0..ops {
                let key = format!("bench-{client}-{}", i % keys);
                let read = match workload {
                    Workload::Put => false,
                    Workload::Get => true,
                    Workload::Mixed => i % 2 == 1,
                };
                let op = if read {
                    Op::Get { key }
                } else {
                    Op::Put {
                        key,
                        value: value.clone(),
                    }
                };
                let begun = Instant::now();
                match run_op(&mut clerk, op, timeout).await {
                    Ok(_) => result
                        .latencies_us
                        .push(u64::try_from(begun.elapsed().as_micros()).unwrap_or(u64::MAX)),
                    Err(_) => result.errors += 1,
                }
            }
            result
        }));
    }
    let mut latencies_us = Vec::with_capacity(load.ops);
    let mut errors = 0;
    for task in tasks {
        match task.await {
            Ok(result) => {
                latencies_us.extend(result.latencies_us);
                errors += result.errors;
            }
            Err(error) => {
                eprintln!("raft-kv: a bench client failed: {error}");
                errors += 1;
            }
        }
    }
    let wall = started.elapsed();
    latencies_us.sort_unstable();
    let percentile = |p: usize| -> f64 {
        if latencies_us.is_empty() {
            return 0.0;
        }
        let rank = (latencies_us.len() * p).div_ceil(100).max(1) - 1;
        latencies_us[rank] as f64 / 1000.0
    };
    println!(
        "bench: {} clients, {} ops ({:?}, {}-byte values) in {:.2} s",
        load.clients,
        load.ops,
        load.workload,
        load.value_bytes,
        wall.as_secs_f64()
    );
    println!(
        "throughput: {:.0} ops/s",
        latencies_us.len() as f64 / wall.as_secs_f64()
    );
    println!(
        "latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(50),
        percentile(99),
        percentile(100)
    );
    println!("errors: {errors}");
    if errors > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}
