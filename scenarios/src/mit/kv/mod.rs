//! MIT 6.5840 key/value service tests (kvraft: 2023 `3A`/`3B`, 2024 `4A`/`4B`), in virtual time
//! (`KV_SCENARIOS.md`).
//!
//! Every node runs a [`services::kv::KvStore`] (see [`crate::kv_client`]); clients are
//! [`services::clerk::Clerk`]s over the simulated network. Most tests are one
//! [`generic::generic_test`] with the lab's arguments; the others are in [`standalone`]. Every
//! test records each clerk operation and ends with a linearizability check of the history.
//!
//! **Size bounds.** The lab's bounds were tuned for Go's gob encoding: `maxraftstate` = 1000
//! bytes, persisted Raft state ≤ 8 × `maxraftstate` ("logs were not trimmed") and a one-key
//! snapshot ≤ 500 bytes. Here the Raft state and the snapshot are postcard, which is more compact
//! than gob (varint integers, no type descriptors), so the same byte counts hold more entries.
//! We keep the numbers, and so their ratios: [`MAX_RAFT_STATE`] = 1000 bytes,
//! [`LOG_SIZE_FACTOR`] × it = 8000 bytes, [`SNAPSHOT_SIZE_MAX`] = 500 bytes (half of
//! `maxraftstate`). A one-key, one-clerk store snapshots to about 30 bytes, so the snapshot bound
//! still catches a snapshot that carries history; the log bound catches a service that never
//! compacts (8000 bytes is a few hundred postcard entries).

mod generic;
mod standalone;

pub use generic::{Generic, check_clnt_appends, check_concurrent_appends, generic_test};

use crate::kv_client::kv_spec;
use sim::tester::AppKind;
use sim::{Lab, Scenario, ScenarioFuture, Setup, Tester};

/// MIT's `maxraftstate` in the 3B/4B tests, in (postcard) bytes.
pub const MAX_RAFT_STATE: usize = 1000;

/// The persisted Raft state may reach this many times `maxraftstate` at a check.
pub const LOG_SIZE_FACTOR: usize = 8;

/// TestSnapshotSize's bound on a snapshot, in bytes (half of [`MAX_RAFT_STATE`], as in the lab).
pub const SNAPSHOT_SIZE_MAX: usize = 500;

/// GenericTestSpeed's number of sequential Appends.
pub const SPEED_OPS: u64 = 1000;

/// GenericTestSpeed's bound per operation: a 100 ms heartbeat interval over 3 operations.
pub const SPEED_US_PER_OP_MAX: u64 = 100_000 / 3;

/// `servers` MIT servers running the key/value store with `max_raft_state`, reliable network.
const fn kv(servers: u32, max_raft_state: Option<usize>) -> Setup {
    Setup {
        app: AppKind::Service(kv_spec(max_raft_state)),
        ..Setup::mit(servers)
    }
}

const SNAP: Option<usize> = Some(MAX_RAFT_STATE);

/// One GenericTest scenario: `run` names a function that calls [`generic_test`] with `params`.
macro_rules! generic {
    ($fn:ident, $clients:expr, $crash:expr, $partitions:expr, $max:expr, $random:expr) => {
        fn $fn(t: Tester) -> ScenarioFuture {
            Box::pin(generic_test(
                t,
                Generic {
                    clients: $clients,
                    crash: $crash,
                    partitions: $partitions,
                    max_raft_state: $max,
                    random_keys: $random,
                },
            ))
        }
    };
}

// (nclients, crash, partitions, maxraftstate, randomkeys); servers and reliability are in the
// scenario's setup below.
generic!(basic, 1, false, false, None, false);
generic!(concurrent, 5, false, false, None, false);
generic!(unreliable, 5, false, false, None, false);
generic!(many_partitions_one_client, 1, false, true, None, false);
generic!(many_partitions_many_clients, 5, false, true, None, false);
generic!(persist_one_client, 1, true, false, None, false);
generic!(persist_concurrent, 5, true, false, None, false);
generic!(persist_concurrent_unreliable, 5, true, false, None, false);
generic!(persist_partition, 5, true, true, None, false);
generic!(persist_partition_unreliable, 5, true, true, None, false);
generic!(
    persist_partition_unreliable_linearizable,
    15,
    true,
    true,
    None,
    true
);
generic!(snapshot_recover, 1, true, false, SNAP, false);
generic!(snapshot_recover_many_clients, 20, true, false, SNAP, false);
generic!(snapshot_unreliable, 5, false, false, SNAP, false);
generic!(snapshot_unreliable_recover, 5, true, false, SNAP, false);
generic!(
    snapshot_unreliable_recover_concurrent_partition,
    5,
    true,
    true,
    SNAP,
    false
);
generic!(
    snapshot_unreliable_recover_concurrent_partition_linearizable,
    15,
    true,
    true,
    SNAP,
    true
);

fn speed(t: Tester) -> ScenarioFuture {
    Box::pin(generic::generic_test_speed(t))
}

fn speed_snapshot(t: Tester) -> ScenarioFuture {
    Box::pin(generic::generic_test_speed(t))
}

fn unreliable_one_key(t: Tester) -> ScenarioFuture {
    Box::pin(standalone::unreliable_one_key(t))
}

fn one_partition(t: Tester) -> ScenarioFuture {
    Box::pin(standalone::one_partition(t))
}

fn snapshot_rpc(t: Tester) -> ScenarioFuture {
    Box::pin(standalone::snapshot_rpc(t))
}

fn snapshot_size(t: Tester) -> ScenarioFuture {
    Box::pin(standalone::snapshot_size(t))
}

/// A scenario of this module.
const fn scenario(
    name: &'static str,
    summary: &'static str,
    setup: Setup,
    run: sim::ScenarioFn,
) -> Scenario {
    Scenario {
        name,
        lab: Lab::Mit,
        part: "kv",
        summary,
        setup,
        run,
    }
}

/// The key/value scenarios, in the lab's order (3A, then 3B).
pub const SCENARIOS: &[Scenario] = &[
    scenario(
        "mit/kv/basic",
        "one client appends and reads its key for 3 × 5 s; every Get fresh; no snapshot",
        kv(5, None),
        basic,
    ),
    scenario(
        "mit/kv/speed",
        "1000 sequential Appends average ≤ 33.3 ms (3 per heartbeat); all present in order",
        kv(3, None),
        speed,
    ),
    scenario(
        "mit/kv/concurrent",
        "5 clients on their own keys for 3 × 5 s; per-client freshness and append order",
        kv(5, None),
        concurrent,
    ),
    scenario(
        "mit/kv/unreliable",
        "5 clients on a lossy network (10 % requests and replies lost): no duplicate appends",
        kv(5, None).unreliable(),
        unreliable,
    ),
    scenario(
        "mit/kv/unreliable_one_key",
        "5 clerks append 10 tags each to one key on a lossy network; all once, in order",
        kv(3, None).unreliable(),
        unreliable_one_key,
    ),
    scenario(
        "mit/kv/one_partition",
        "majority progresses; the old leader's minority completes nothing for 1 s; heals",
        kv(5, None),
        one_partition,
    ),
    scenario(
        "mit/kv/many_partitions_one_client",
        "one client while random partitions change every 1.0–1.2 s",
        kv(5, None),
        many_partitions_one_client,
    ),
    scenario(
        "mit/kv/many_partitions_many_clients",
        "5 clients while random partitions change every 1.0–1.2 s",
        kv(5, None),
        many_partitions_many_clients,
    ),
    scenario(
        "mit/kv/persist_one_client",
        "one client; the whole cluster crashes and restarts after each iteration",
        kv(5, None),
        persist_one_client,
    ),
    scenario(
        "mit/kv/persist_concurrent",
        "5 clients; whole-cluster crash and restart after each iteration",
        kv(5, None),
        persist_concurrent,
    ),
    scenario(
        "mit/kv/persist_concurrent_unreliable",
        "5 clients, lossy network, whole-cluster crash and restart after each iteration",
        kv(5, None).unreliable(),
        persist_concurrent_unreliable,
    ),
    scenario(
        "mit/kv/persist_partition",
        "5 clients, random partitions, whole-cluster crash and restart",
        kv(5, None),
        persist_partition,
    ),
    scenario(
        "mit/kv/persist_partition_unreliable",
        "5 clients, lossy network, random partitions, whole-cluster crash and restart",
        kv(5, None).unreliable(),
        persist_partition_unreliable,
    ),
    scenario(
        "mit/kv/persist_partition_unreliable_linearizable",
        "15 clients on random keys, 7 servers, every fault; judged by linearizability only",
        kv(7, None).unreliable(),
        persist_partition_unreliable_linearizable,
    ),
    scenario(
        "mit/kv/snapshot_rpc",
        "a majority trims its log past a cut-off server, which then catches up by snapshot",
        kv(3, SNAP),
        snapshot_rpc,
    ),
    scenario(
        "mit/kv/snapshot_size",
        "800 Put/Get on one key: log ≤ 8 × maxraftstate, snapshot ≤ 500 bytes",
        kv(3, SNAP),
        snapshot_size,
    ),
    scenario(
        "mit/kv/speed_snapshot",
        "1000 sequential Appends average ≤ 33.3 ms with snapshots (maxraftstate 1000)",
        kv(3, SNAP),
        speed_snapshot,
    ),
    scenario(
        "mit/kv/snapshot_recover",
        "one client, snapshots, whole-cluster crash and restart; log ≤ 8 × maxraftstate",
        kv(5, SNAP),
        snapshot_recover,
    ),
    scenario(
        "mit/kv/snapshot_recover_many_clients",
        "20 clients, snapshots, whole-cluster crash and restart",
        kv(5, SNAP),
        snapshot_recover_many_clients,
    ),
    scenario(
        "mit/kv/snapshot_unreliable",
        "5 clients, snapshots, lossy network",
        kv(5, SNAP).unreliable(),
        snapshot_unreliable,
    ),
    scenario(
        "mit/kv/snapshot_unreliable_recover",
        "5 clients, snapshots, lossy network, whole-cluster crash and restart",
        kv(5, SNAP).unreliable(),
        snapshot_unreliable_recover,
    ),
    scenario(
        "mit/kv/snapshot_unreliable_recover_concurrent_partition",
        "5 clients, snapshots, lossy network, partitions, crash and restart",
        kv(5, SNAP).unreliable(),
        snapshot_unreliable_recover_concurrent_partition,
    ),
    scenario(
        "mit/kv/snapshot_unreliable_recover_concurrent_partition_linearizable",
        "15 clients on random keys, 7 servers, snapshots, every fault; linearizability",
        kv(7, SNAP).unreliable(),
        snapshot_unreliable_recover_concurrent_partition_linearizable,
    ),
];
