//! Determinism: a node is a function of its config (seed included), its durable state and the
//! inputs it steps. The same config, seed and inputs give identical outputs, for one node and for
//! a whole driven cluster; a different seed gives different election timing, so these checks are
//! not vacuous.

mod common;

use common::driver::{Cluster, Counter, Record};
use common::*;
use raft::{Config, Index, Input, Node, Payload, Role, Step, Term};

// ----- Comparing runs -----

/// Fails at the first step where two runs differ, showing only that step (a whole run is too
/// long to read in an assertion message).
fn assert_same_steps(a: &[(Input, Step)], b: &[(Input, Step)]) {
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x, y, "the runs differ at step {k}");
    }
    assert_eq!(a.len(), b.len(), "the runs have different lengths");
}

/// Fails at the first record where two cluster traces differ.
fn assert_same_trace(a: &[Record], b: &[Record]) {
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x, y, "the traces differ at record {k}");
    }
    assert_eq!(a.len(), b.len(), "the traces have different lengths");
}

// ----- One node -----

/// A node that remembers every input it stepped and what came out.
struct Recorded {
    node: Node,
    steps: Vec<(Input, Step)>,
}

impl Recorded {
    fn new(config: Config) -> Recorded {
        Recorded {
            node: Node::new(config).expect("valid config"),
            steps: Vec::new(),
        }
    }

    fn step(&mut self, input: Input) {
        let step = self.node.step(input.clone());
        self.steps.push((input, step));
    }

    fn receive(&mut self, from: u32, term: Term, payload: Payload) {
        let message = raft::Message { term, payload };
        self.step(Input::Receive {
            from: id(from),
            message,
        });
    }

    fn ticks(&mut self, n: u32) {
        for _ in 0..n {
            self.step(Input::Tick);
        }
    }
}

/// Node 1 of three through a whole life: campaign, lead, replicate with lagging acks, compact,
/// repair a conflicting follower, step down to a new leader, follow it, campaign again, vote.
/// The inputs adapt to the node's state (its term, its log), so they hit the real code paths.
fn scripted_life(config: Config) -> Recorded {
    let mut r = Recorded::new(config);
    for _ in 0..200 {
        if r.node.role() != Role::Follower {
            break;
        }
        r.step(Input::Tick);
    }
    let term = r.node.term();
    r.receive(2, term, Payload::RequestVoteReply { granted: true });
    assert_eq!(r.node.role(), Role::Leader, "the script needs a leader");
    let start = r.node.log().last_index();
    r.receive(2, term, append_ok(start, start));
    r.receive(3, term, append_ok(start, start));
    for k in 0u8..40 {
        r.step(Input::Propose(vec![k; usize::from(k % 7)].into()));
        if k % 8 == 7 {
            let last = r.node.log().last_index();
            r.receive(2, term, append_ok(last, last));
            r.receive(3, term, append_ok(last.prev(), last.prev()));
        }
        r.step(Input::Tick);
    }
    let applied = r.node.last_applied();
    r.step(Input::Compact {
        index: applied,
        snapshot: b"state".to_vec(),
    });
    r.ticks(25);
    let hint = raft::ConflictHint {
        conflict_term: None,
        first_index_of_term: Index(3),
        last_index: Index(2),
    };
    r.receive(3, term, append_conflict(Index(30), hint));
    r.ticks(12);
    let last = r.node.log().last_index();
    let (next, last_term) = (term.next(), r.node.log().last_term());
    let new = entries(last.0 + 1, &[next.0, next.0]);
    r.receive(2, next, append(last.0, last_term.0, new, last.0 + 1));
    r.ticks(130);
    let far = Term(r.node.term().0 + 3);
    r.receive(3, far, request_vote(last.0 + 10, far.0));
    r.ticks(5);
    r
}

fn config_seeded(seed: u64) -> Config {
    let mut config = config(1, 3);
    config.seed = seed;
    config
}

/// Steps `inputs` into a fresh node with `config`.
fn replay(config: Config, inputs: impl IntoIterator<Item = Input>) -> Vec<(Input, Step)> {
    let mut r = Recorded::new(config);
    for input in inputs {
        r.step(input);
    }
    r.steps
}

#[test]
fn one_node_with_the_same_seed_and_inputs_gives_identical_outputs() {
    let recorded = scripted_life(config_seeded(7));
    let inputs = recorded.steps.iter().map(|(input, _)| input.clone());
    let replayed = replay(config_seeded(7), inputs);
    assert_same_steps(&recorded.steps, &replayed);

    // The script went where it meant to: elections, replication, commits, a compaction.
    let outputs: Vec<_> = recorded
        .steps
        .iter()
        .flat_map(|(_, s)| s.outputs.clone())
        .collect();
    assert!(applied_indices(&outputs).len() >= 30);
    assert!(recorded.node.log().snapshot_index() > Index(0));
    assert!(recorded.node.term() > Term(3));
}

#[test]
fn one_node_with_another_seed_and_the_same_inputs_gives_other_outputs() {
    let recorded = scripted_life(config_seeded(7));
    let inputs = recorded.steps.iter().map(|(input, _)| input.clone());
    let replayed = replay(config_seeded(8), inputs);
    assert_ne!(
        recorded.steps, replayed,
        "the seed drives the election timeouts, so the outputs must change with it"
    );
}

/// The ticks (1-based) at which a node that never hears from anyone starts a campaign.
fn campaign_ticks(seed: u64, ticks: u32) -> Vec<u32> {
    let mut node = Node::new(config_seeded(seed)).expect("valid config");
    let mut campaigns = Vec::new();
    for t in 1..=ticks {
        let term = node.term();
        node.step(Input::Tick);
        if node.term() > term {
            campaigns.push(t);
        }
    }
    campaigns
}

#[test]
fn election_timing_is_fixed_by_the_seed_and_differs_between_seeds() {
    assert_eq!(campaign_ticks(1, 1000), campaign_ticks(1, 1000));
    assert_ne!(campaign_ticks(1, 1000), campaign_ticks(2, 1000));

    let config = config_seeded(0);
    let (min, max) = (config.election_ticks, 2 * config.election_ticks);
    let mut firsts: Vec<u32> = (0..32).map(|seed| campaign_ticks(seed, max)[0]).collect();
    assert!(firsts.iter().all(|t| (min..=max).contains(t)), "{firsts:?}");
    firsts.sort();
    firsts.dedup();
    assert!(firsts.len() >= 8, "32 seeds gave only {firsts:?}");
}

// ----- A whole cluster -----

/// The round in which the cluster first has a leader, and which slot it is.
fn first_election(seed: u64) -> (u32, usize) {
    let mut cluster = Cluster::new(3, seed);
    for round in 0..1000 {
        if let Some(leader) = cluster.leader() {
            return (round, leader);
        }
        cluster.round();
    }
    panic!("seed {seed}: no leader within 1000 rounds");
}

#[test]
fn cluster_election_timing_is_fixed_by_the_seed_and_differs_between_seeds() {
    let firsts: Vec<(u32, usize)> = (0..16).map(first_election).collect();
    let again: Vec<(u32, usize)> = (0..16).map(first_election).collect();
    assert_eq!(firsts, again);
    let mut rounds: Vec<u32> = firsts.iter().map(|&(round, _)| round).collect();
    rounds.sort();
    rounds.dedup();
    assert!(
        rounds.len() >= 4,
        "16 seeds elected only in rounds {rounds:?}"
    );
    let mut leaders: Vec<usize> = firsts.iter().map(|&(_, leader)| leader).collect();
    leaders.sort();
    leaders.dedup();
    assert!(leaders.len() >= 2, "16 seeds always elected {leaders:?}");
}

/// A traced run with every kind of event: commits, a disconnected follower that catches up by
/// snapshot, and (with `crash`) a leader crash and restart. Returns the trace and final states.
fn traced_run(seed: u64, crash: bool) -> (Cluster, Vec<Record>, Vec<Counter>) {
    let mut cluster = Cluster::new(3, seed);
    cluster.trace = Some(Vec::new());
    cluster.compact_after_entries = Some(16);
    let mut command = 0u64;
    let mut commit_n = |cluster: &mut Cluster, n: u32| {
        let mut last = Index(0);
        for _ in 0..n {
            command += 1;
            last = cluster.commit(command);
            cluster.round();
        }
        last
    };
    commit_n(&mut cluster, 30);
    let leader = cluster.wait_for_leader();
    let follower = (leader + 1) % 3;
    cluster.disconnect(follower);
    commit_n(&mut cluster, 40);
    cluster.connect(follower);
    commit_n(&mut cluster, 10);
    if crash {
        let leader = cluster.wait_for_leader();
        cluster.crash(leader);
        commit_n(&mut cluster, 30);
        cluster.restart(leader);
    }
    let last = commit_n(&mut cluster, 10);
    cluster.wait_applied_everywhere(last);
    let trace = cluster.trace.take().expect("tracing");
    let states = (0..3).map(|s| cluster.state(s).clone()).collect();
    (cluster, trace, states)
}

#[test]
fn a_cluster_run_twice_with_one_seed_gives_identical_traces() {
    let (cluster, trace, states) = traced_run(5, true);
    let (_, again, states_again) = traced_run(5, true);
    assert_same_trace(&trace, &again);
    assert_eq!(states, states_again);
    assert!(cluster.restores(0) + cluster.restores(1) + cluster.restores(2) >= 1);
    assert!(
        trace.len() > 1000,
        "the run did something: {} steps",
        trace.len()
    );

    let (_, other, _) = traced_run(6, true);
    assert_ne!(trace, other, "another seed gives another run");
}

#[test]
fn every_node_of_a_cluster_run_replays_from_its_config_and_inputs_alone() {
    // No crash: each node is one incarnation, so its inputs in the trace are its whole life.
    let (cluster, trace, _) = traced_run(9, false);
    for slot in 0..3 {
        let config = cluster.node(slot).expect("up").config().clone();
        let recorded: Vec<(Input, Step)> = trace
            .iter()
            .filter(|r| r.slot == slot)
            .map(|r| (r.input.clone(), r.step.clone()))
            .collect();
        let replayed = replay(config, recorded.iter().map(|(input, _)| input.clone()));
        assert!(
            recorded.len() > 100,
            "node {slot} stepped {}",
            recorded.len()
        );
        assert_same_steps(&recorded, &replayed);
    }
}
