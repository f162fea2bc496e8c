//! Micro-benchmarks of the core's hot paths, stepping one node directly (no driver, no I/O).
//!
//! - `leader/propose`: one `Propose` on the established leader of three whose followers are in
//!   the replicate state: the leader appends the entry (one `Persist`) and streams it to both
//!   followers (two `Send`s). Only the `step_into` calls are timed, with the output buffer cleared
//!   after each (the cheapest possible driver). Every `ACK_EVERY` proposals both followers ack
//!   everything, untimed, so the inflight windows never fill (a full window would stop the sends
//!   and make proposals look cheaper), and every `COMPACT_EVERY` the leader compacts, untimed, so
//!   the log stays bounded.
//! - `leader/propose_and_ack`: the same cycle with the acks (commit, `Apply` of `ACK_EVERY`
//!   entries) and compactions timed too, reported per proposal: the leader's amortized cost of
//!   one replicated command.
//! - `follower/append_64`: a follower handling an `AppendEntries` of 64 entries (16-byte commands)
//!   that extends its empty log: the match check, one `Persist`, the reply. Each iteration gets a
//!   fresh clone of the follower and the message (`iter_batched`, untimed).
//! - `follower/append_64_commit`: the same, with the leader's commit covering the 64 entries, so
//!   the step also emits their `Apply`.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use raft::{
    AppendResult, Config, Entry, Index, Input, Message, Node, NodeId, Output, Payload, Role, Term,
};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Proposals between two rounds of acks (below the default inflight window of 64).
const ACK_EVERY: u64 = 32;
/// Proposals between two compactions.
const COMPACT_EVERY: u64 = 1024;
/// Bytes per command.
const COMMAND_BYTES: usize = 16;
/// Entries in the follower's `AppendEntries`.
const APPEND_ENTRIES: u64 = 64;

fn config(id: u32) -> Config {
    Config::new(
        NodeId(id),
        vec![NodeId(1), NodeId(2), NodeId(3)],
        u64::from(id),
    )
}

fn receive(node: &mut Node, from: u32, payload: Payload, outputs: &mut Vec<Output>) {
    let message = Message {
        term: node.term(),
        payload,
    };
    let input = Input::Receive {
        from: NodeId(from),
        message,
    };
    node.step_into(input, outputs)
        .expect("messages are accepted");
    outputs.clear();
}

/// Both followers report a match at the leader's last index.
fn ack_all(leader: &mut Node, outputs: &mut Vec<Output>) {
    let last = leader.log().last_index();
    for peer in [2, 3] {
        let payload = Payload::AppendEntriesReply {
            prev_index: last,
            result: AppendResult::Success { match_index: last },
        };
        receive(leader, peer, payload, outputs);
    }
}

/// Node 1, elected leader of three, both followers acknowledged and replicating.
fn established_leader() -> Node {
    let mut node = Node::new(config(1)).expect("valid config");
    let mut outputs = Vec::new();
    for _ in 0..1000 {
        if node.role() == Role::Candidate {
            receive(
                &mut node,
                2,
                Payload::RequestVoteReply { granted: true },
                &mut outputs,
            );
        }
        if node.role() == Role::Leader {
            break;
        }
        node.step_into(Input::Tick, &mut outputs)
            .expect("ticks are accepted");
        outputs.clear();
    }
    assert_eq!(node.role(), Role::Leader, "the leader won its election");
    ack_all(&mut node, &mut outputs);
    node
}

/// The leader's upkeep between timed proposals: acks, and now and then a compaction.
fn upkeep(leader: &mut Node, proposed: u64, outputs: &mut Vec<Output>) {
    if proposed.is_multiple_of(ACK_EVERY) {
        ack_all(leader, outputs);
    }
    if proposed.is_multiple_of(COMPACT_EVERY) {
        let compact = Input::Compact {
            index: leader.last_applied(),
            snapshot: vec![0; 64],
        };
        leader
            .step_into(compact, outputs)
            .expect("compacting applied entries");
        outputs.clear();
    }
}

/// Checks, untimed, that a proposal on the leader persists the entry and streams it to both
/// followers, as the benchmark claims.
fn assert_propose_streams(command: &[u8]) {
    let mut leader = established_leader();
    let mut outputs = Vec::new();
    for _ in 0..ACK_EVERY {
        let input = Input::Propose(command.into());
        leader.step_into(input, &mut outputs).expect("leader");
        let sends = outputs
            .iter()
            .filter(|o| matches!(o, Output::Send { .. }))
            .count();
        assert!(matches!(outputs[0], Output::Persist(_)), "{outputs:?}");
        assert_eq!((outputs.len(), sends), (3, 2), "{outputs:?}");
        outputs.clear();
    }
}

fn bench_leader(c: &mut Criterion) {
    let mut group = c.benchmark_group("leader");
    let command = vec![7u8; COMMAND_BYTES];
    assert_propose_streams(&command);

    group.bench_function("propose", |b| {
        let mut leader = established_leader();
        let mut outputs = Vec::with_capacity(8);
        let mut proposed = 0u64;
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let batch = (iters - done).min(ACK_EVERY - proposed % ACK_EVERY);
                let start = Instant::now();
                for _ in 0..batch {
                    let input = Input::Propose(command.clone().into());
                    black_box(leader.step_into(input, &mut outputs)).expect("leader");
                    outputs.clear();
                }
                timed += start.elapsed();
                done += batch;
                proposed += batch;
                upkeep(&mut leader, proposed, &mut outputs);
            }
            timed
        });
    });

    group.bench_function("propose_and_ack", |b| {
        let mut leader = established_leader();
        let mut outputs = Vec::with_capacity(8);
        let mut proposed = 0u64;
        b.iter(|| {
            let input = Input::Propose(command.clone().into());
            black_box(leader.step_into(input, &mut outputs)).expect("leader");
            outputs.clear();
            proposed += 1;
            upkeep(&mut leader, proposed, &mut outputs);
        });
    });
    group.finish();
}

/// Node 2, following leader 1 in term 1, with an empty log.
fn fresh_follower() -> Node {
    let mut node = Node::new(config(2)).expect("valid config");
    let heartbeat = Message {
        term: Term(1),
        payload: Payload::AppendEntries {
            prev_index: Index(0),
            prev_term: Term(0),
            entries: Vec::new(),
            leader_commit: Index(0),
        },
    };
    let input = Input::Receive {
        from: NodeId(1),
        message: heartbeat,
    };
    node.step(input).result.expect("messages are accepted");
    assert_eq!(node.leader(), Some(NodeId(1)));
    node
}

/// An `AppendEntries` from leader 1 in term 1 carrying entries `1..=APPEND_ENTRIES`.
fn append_64(leader_commit: Index) -> Input {
    let entries = (1..=APPEND_ENTRIES)
        .map(|i| Entry {
            index: Index(i),
            term: Term(1),
            command: vec![i as u8; COMMAND_BYTES].into(),
        })
        .collect();
    let message = Message {
        term: Term(1),
        payload: Payload::AppendEntries {
            prev_index: Index(0),
            prev_term: Term(0),
            entries,
            leader_commit,
        },
    };
    Input::Receive {
        from: NodeId(1),
        message,
    }
}

fn bench_follower(c: &mut Criterion) {
    let mut group = c.benchmark_group("follower");
    let follower = fresh_follower();
    for (name, commit) in [
        ("append_64", Index(0)),
        ("append_64_commit", Index(APPEND_ENTRIES)),
    ] {
        let input = append_64(commit);
        // Check once, untimed, that the step does what the benchmark claims.
        let mut check = follower.clone();
        check.step(input.clone()).result.expect("accepted");
        assert_eq!(check.log().last_index(), Index(APPEND_ENTRIES));
        assert_eq!(check.last_applied(), commit);

        group.bench_function(name, |b| {
            b.iter_batched(
                || (follower.clone(), input.clone(), Vec::with_capacity(4)),
                |(mut node, input, mut outputs)| {
                    black_box(node.step_into(input, &mut outputs)).expect("accepted");
                    (node, outputs)
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, bench_leader, bench_follower);
criterion_main!(benches);
