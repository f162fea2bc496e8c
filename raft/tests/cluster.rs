//! Whole three-node clusters driven by `common::driver`: outputs are shuttled between nodes
//! directly (a FIFO network, round-robin ticks, no simulator). Every scenario commits a few
//! hundred commands and then checks that all replicas applied exactly those commands, in order.

mod common;

use common::driver::{Cluster, Counter};
use raft::{Index, Input, Role, StateMachine, encode_command};

/// Commands per scenario.
const COMMANDS: u64 = 300;

/// Each scenario runs once per seed; a run is cheap (about a millisecond).
const SEEDS: std::ops::Range<u64> = 0..32;

/// Runs `scenario` for every seed in `SEEDS`, naming the seed that fails.
fn for_seeds(scenario: fn(u64)) {
    for seed in SEEDS {
        if std::panic::catch_unwind(|| scenario(seed)).is_err() {
            panic!("the scenario failed with cluster seed {seed} (see the panic above)");
        }
    }
}

/// The `k`-th command of a run; distinct and not simply `k`, so a swap or a skip changes the
/// digest.
fn command(k: u64) -> u64 {
    k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16
}

/// Commits commands `from..to` one by one, with a round (ticks and heartbeats) after each so time
/// passes while the log grows. Returns the index of the last one.
fn commit_range(cluster: &mut Cluster, from: u64, to: u64) -> Index {
    assert!(from < to, "an empty range commits nothing");
    let mut last = Index(0);
    for k in from..to {
        let index = cluster.commit(command(k));
        assert!(
            index > last,
            "command {k} committed at {index:?}, not after {last:?}"
        );
        last = index;
        cluster.round();
    }
    last
}

/// The state a replica reaches by applying `commands` in order from scratch.
fn expected_state(commands: &[u64]) -> Counter {
    let mut counter = Counter::default();
    for (k, &c) in commands.iter().enumerate() {
        counter.apply(Index(k as u64 + 1), c);
    }
    counter
}

/// Every node is up and has applied exactly `commands`, in order, up to its commit index, which
/// is `last` everywhere; the cluster committed nothing else.
fn assert_replicas_agree(cluster: &Cluster, commands: &[u64], last: Index) {
    assert_eq!(
        cluster.committed_commands(),
        commands,
        "the committed commands are exactly the proposed ones, in order, each once"
    );
    let expected = expected_state(commands);
    for slot in 0..cluster.size() {
        let node = cluster.node(slot).expect("every node is up at the end");
        assert_eq!(node.commit_index(), last, "node {slot} commit index");
        assert_eq!(
            node.last_applied(),
            node.commit_index(),
            "node {slot} applied all"
        );
        assert_eq!(cluster.state(slot), &expected, "node {slot} state machine");
    }
    for slot in 1..cluster.size() {
        let (a, b) = (cluster.node(0), cluster.node(slot));
        let (a, b) = (a.expect("up"), b.expect("up"));
        // Logs may be compacted to different points; they agree on every index both hold.
        let from = a.log().first_index().max(b.log().first_index());
        for i in from.0..=last.0 {
            assert_eq!(
                a.log().entry(Index(i)),
                b.log().entry(Index(i)),
                "log matching: nodes 0 and {slot} differ at {i}"
            );
        }
    }
    cluster.check_histories();
}

fn commands(from: u64, to: u64) -> Vec<u64> {
    (from..to).map(command).collect()
}

#[test]
fn three_nodes_commit_300_commands_in_the_same_order() {
    for_seeds(three_nodes_commit_300_commands_in_the_same_order_with_seed);
}

fn three_nodes_commit_300_commands_in_the_same_order_with_seed(seed: u64) {
    let mut cluster = Cluster::new(3, seed);
    let last = commit_range(&mut cluster, 0, COMMANDS);
    cluster.wait_applied_everywhere(last);
    assert_eq!(last, Index(COMMANDS), "no failures, so no index is wasted");
    assert_replicas_agree(&cluster, &commands(0, COMMANDS), last);
    for slot in 0..3 {
        assert_eq!(cluster.state(slot).count, COMMANDS);
        assert_eq!(cluster.restores(slot), 0, "nothing was compacted");
    }
}

#[test]
fn leader_crash_midway_loses_only_its_uncommitted_entry_and_it_rejoins() {
    for_seeds(leader_crash_midway_loses_only_its_uncommitted_entry_and_it_rejoins_with_seed);
}

fn leader_crash_midway_loses_only_its_uncommitted_entry_and_it_rejoins_with_seed(seed: u64) {
    let mut cluster = Cluster::new(3, seed);
    let half = COMMANDS / 2;
    commit_range(&mut cluster, 0, half);
    let old_leader = cluster.wait_for_leader();
    let old_term = cluster.node(old_leader).expect("up").term();

    // The leader appends a command nobody else ever sees (its sends are lost), then crashes.
    let orphan = u64::MAX;
    cluster.disconnect(old_leader);
    let proposed = cluster.step(old_leader, Input::Propose(encode_command(&orphan).into()));
    assert!(proposed.is_ok(), "a leader accepts proposals: {proposed:?}");
    let orphan_index = cluster.node(old_leader).expect("up").log().last_index();
    cluster.crash(old_leader);
    cluster.connect(old_leader);

    let last = commit_range(&mut cluster, half, COMMANDS);
    let new_leader = cluster.wait_for_leader();
    assert_ne!(new_leader, old_leader);
    assert!(cluster.node(new_leader).expect("up").term() > old_term);

    cluster.restart(old_leader);
    let restarted = cluster.node(old_leader).expect("restarted");
    assert_eq!(
        restarted.log().last_index(),
        orphan_index,
        "the orphan is durable"
    );
    assert_eq!(
        restarted.last_applied(),
        Index(0),
        "no snapshot: it reapplies from scratch"
    );
    cluster.wait_applied_everywhere(last);

    let restarted = cluster.node(old_leader).expect("up");
    assert_ne!(
        restarted.role(),
        Role::Leader,
        "its log is behind; it cannot win"
    );
    assert_ne!(
        restarted.log().entry(orphan_index).map(|e| e.term),
        Some(old_term),
        "the uncommitted entry was overwritten by the new leader's"
    );
    assert!(!cluster.committed_commands().contains(&orphan));
    assert_replicas_agree(&cluster, &commands(0, COMMANDS), last);
}

/// The first follower (by slot) of the current leader.
fn a_follower(cluster: &mut Cluster) -> usize {
    let leader = cluster.wait_for_leader();
    (0..cluster.size())
        .find(|&s| s != leader)
        .expect("three nodes")
}

#[test]
fn disconnected_follower_catches_up_by_appends() {
    for_seeds(disconnected_follower_catches_up_by_appends_with_seed);
}

fn disconnected_follower_catches_up_by_appends_with_seed(seed: u64) {
    let mut cluster = Cluster::new(3, seed);
    let third = COMMANDS / 3;
    commit_range(&mut cluster, 0, third);
    let follower = a_follower(&mut cluster);
    cluster.disconnect(follower);

    let before = commit_range(&mut cluster, third, 2 * third);
    let behind = cluster.node(follower).expect("up").last_applied();
    assert!(
        behind < before,
        "a disconnected follower applies nothing new"
    );
    cluster.connect(follower);

    let last = commit_range(&mut cluster, 2 * third, COMMANDS);
    cluster.wait_applied_everywhere(last);
    assert_eq!(cluster.restores(follower), 0, "no log was compacted");
    assert_replicas_agree(&cluster, &commands(0, COMMANDS), last);
}

#[test]
fn disconnected_follower_catches_up_by_snapshot() {
    for_seeds(disconnected_follower_catches_up_by_snapshot_with_seed);
}

fn disconnected_follower_catches_up_by_snapshot_with_seed(seed: u64) {
    let mut cluster = Cluster::new(3, seed);
    cluster.compact_after_entries = Some(25);
    let third = COMMANDS / 3;
    commit_range(&mut cluster, 0, third);
    let follower = a_follower(&mut cluster);
    cluster.disconnect(follower);

    commit_range(&mut cluster, third, 2 * third);
    let behind = cluster.node(follower).expect("up").last_applied();
    let leader = cluster.wait_for_leader();
    let leader_first = cluster.node(leader).expect("up").log().first_index();
    assert!(
        leader_first > behind.next(),
        "the leader no longer holds what the follower needs ({leader_first:?} > {behind:?} + 1)"
    );
    cluster.connect(follower);

    let last = commit_range(&mut cluster, 2 * third, COMMANDS);
    cluster.wait_applied_everywhere(last);
    assert!(
        cluster.restores(follower) >= 1,
        "it caught up through a snapshot"
    );
    assert!(cluster.sent.get("InstallSnapshot").is_some_and(|&n| n >= 1));
    assert_replicas_agree(&cluster, &commands(0, COMMANDS), last);

    // A restart resumes from the durable snapshot, not from scratch, and rejoins.
    cluster.crash(follower);
    cluster.restart(follower);
    let snapshot_index = cluster.durable(follower).log.snapshot_index();
    assert!(snapshot_index > Index(0));
    assert_eq!(
        cluster.node(follower).expect("up").last_applied(),
        snapshot_index
    );
    cluster.wait_applied_everywhere(last);
    assert_replicas_agree(&cluster, &commands(0, COMMANDS), last);
}
