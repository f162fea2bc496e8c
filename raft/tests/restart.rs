//! Crash and restart: a node restored from exactly what it persisted resumes from there and never
//! contradicts what it said before the crash.

mod common;

use common::*;
use raft::{
    DurableState, HardState, Index, Input, Node, Output, Payload, RestoreError, Role, Term,
};

/// Steps `inputs` into `node`, returning every output.
fn run(node: &mut Node, inputs: Vec<Input>) -> Vec<Output> {
    inputs
        .into_iter()
        .flat_map(|i| node.step(i).outputs)
        .collect()
}

fn from(peer: u32, term: u64, payload: Payload) -> Input {
    Input::Receive {
        from: id(peer),
        message: raft::Message {
            term: Term(term),
            payload,
        },
    }
}

/// The node a driver would restart from `node`'s persist outputs (with a new seed).
fn restart(outputs: &[Output]) -> Node {
    let durable = replay_persists(&DurableState::default(), outputs);
    let mut config = config(1, 3);
    config.seed += 100;
    Node::restore(config, durable).expect("restore from own persists")
}

fn granted(outputs: &[Output], to: u32) -> bool {
    match sends_to(outputs, id(to)).last().map(|m| &m.payload) {
        Some(Payload::RequestVoteReply { granted }) => *granted,
        other => panic!("expected a vote reply, got {other:?}"),
    }
}

#[test]
fn persist_outputs_replayed_give_exactly_the_nodes_durable_state() {
    let mut node = fresh();
    let outputs = run(
        &mut node,
        vec![
            from(2, 1, request_vote(0, 0)),
            from(2, 1, append(0, 0, entries(1, &[1, 1, 1]), 1)),
            from(3, 2, append(2, 1, entries(3, &[2, 2]), 3)),
            Input::Compact {
                index: Index(2),
                snapshot: b"two".to_vec(),
            },
        ],
    );
    let replayed = replay_persists(&DurableState::default(), &outputs);
    assert_eq!(&replayed, node.durable_state());
    assert_eq!(replayed.hard_state.term, Term(2));
    assert_eq!(replayed.log.snapshot_index(), Index(2));
    assert_eq!(replayed.log.last_index(), Index(4));
}

#[test]
fn restored_node_resumes_term_vote_and_log() {
    let mut node = fresh();
    let outputs = run(
        &mut node,
        vec![
            from(2, 2, request_vote(0, 0)),
            from(2, 2, append(0, 0, entries(1, &[1, 2, 2]), 2)),
        ],
    );
    let restored = restart(&outputs);
    assert_eq!(restored.term(), Term(2));
    assert_eq!(restored.voted_for(), Some(id(2)));
    assert_eq!(restored.log(), node.log());
    assert_eq!(restored.role(), Role::Follower);
    assert_eq!(restored.leader(), None);
    // Commit and apply state are volatile: they restart at the (absent) snapshot.
    assert_eq!(restored.commit_index(), Index(0));
    assert_eq!(restored.last_applied(), Index(0));
}

#[test]
fn restored_node_starts_commit_and_apply_at_its_snapshot() {
    let mut node = fresh();
    let mut outputs = run(
        &mut node,
        vec![from(2, 1, append(0, 0, entries(1, &[1; 6]), 5))],
    );
    outputs.extend(
        node.step(Input::Compact {
            index: Index(4),
            snapshot: b"four".to_vec(),
        })
        .outputs,
    );
    let mut restored = restart(&outputs);
    assert_eq!(restored.commit_index(), Index(4));
    assert_eq!(restored.last_applied(), Index(4));
    assert_eq!(restored.log().first_index(), Index(5));
    assert_eq!(restored.log().last_index(), Index(6));
    assert_eq!(restored.log().snapshot().unwrap().data, b"four");
    // Delivery resumes right after the snapshot, each entry once.
    let step = receive(&mut restored, id(2), Term(1), append(6, 1, vec![], 6));
    assert_eq!(applied_indices(&step.outputs), [5, 6]);
}

#[test]
fn vote_is_never_granted_twice_in_a_term_across_a_restart() {
    let mut node = fresh();
    let outputs = run(&mut node, vec![from(2, 1, request_vote(0, 0))]);
    assert!(granted(&outputs, 2));

    let mut restored = restart(&outputs);
    let other = restored.step(from(3, 1, request_vote(5, 1))).outputs;
    assert!(!granted(&other, 3), "already voted for 2 in term 1");
    let same = restored.step(from(2, 1, request_vote(0, 0))).outputs;
    assert!(
        granted(&same, 2),
        "a retransmitted request from the same candidate"
    );
}

#[test]
fn candidate_restarted_never_votes_for_another_in_its_term() {
    let mut node = fresh();
    let outputs = tick_until_campaign(&mut node).outputs;
    let mut restored = restart(&outputs);
    assert_eq!(restored.term(), Term(1));
    assert_eq!(restored.role(), Role::Follower);
    let step = restored.step(from(2, 1, request_vote(0, 0)));
    assert!(!granted(&step.outputs, 2));
}

#[test]
fn restored_follower_keeps_every_entry_it_acknowledged() {
    let mut node = fresh();
    let outputs = run(
        &mut node,
        vec![from(2, 1, append(0, 0, entries(1, &[1, 1, 1]), 0))],
    );
    let mut restored = restart(&outputs);
    assert_eq!(log_terms(&restored), [1, 1, 1]);
    // So it refuses a candidate missing them.
    let step = restored.step(from(3, 2, request_vote(2, 1)));
    assert!(!granted(&step.outputs, 3));
}

#[test]
fn restored_leader_comes_back_as_a_follower_of_the_same_term() {
    let mut node = fresh();
    let mut outputs = tick_until_campaign(&mut node).outputs;
    outputs.extend(make_leader_outputs_after_campaign(&mut node));
    outputs.extend(node.step(Input::Propose(b"x".into())).outputs);
    assert_eq!(node.role(), Role::Leader);
    let restored = restart(&outputs);
    assert_eq!(restored.role(), Role::Follower);
    assert_eq!(restored.term(), Term(1));
    assert_eq!(restored.voted_for(), Some(id(1)));
    assert_eq!(
        restored.log().last_index(),
        Index(1),
        "its own proposal was persisted"
    );
}

fn make_leader_outputs_after_campaign(node: &mut Node) -> Vec<Output> {
    receive(
        node,
        id(2),
        Term(1),
        Payload::RequestVoteReply { granted: true },
    )
    .outputs
}

#[test]
fn restore_rejects_a_vote_for_a_node_outside_the_cluster() {
    let durable = durable(3, Some(9), &[1]);
    assert_eq!(
        Node::restore(config(1, 3), durable).err(),
        Some(RestoreError::UnknownVote(id(9)))
    );
}

#[test]
fn restore_rejects_a_term_behind_the_log() {
    let durable = durable(1, None, &[1, 2]);
    assert_eq!(
        Node::restore(config(1, 3), durable).err(),
        Some(RestoreError::TermBehindLog {
            term: Term(1),
            last_log_term: Term(2)
        })
    );
}

#[test]
fn durable_state_round_trips_through_its_encoding() {
    let mut node = fresh();
    run(
        &mut node,
        vec![
            from(2, 2, request_vote(0, 0)),
            from(2, 2, append(0, 0, entries(1, &[1, 2, 2, 2]), 3)),
            Input::Compact {
                index: Index(2),
                snapshot: b"two".to_vec(),
            },
        ],
    );
    let state = node.durable_state();
    let decoded = DurableState::decode(&state.encode()).expect("decodes");
    assert_eq!(&decoded, state);
}

#[test]
fn raft_state_size_is_the_postcard_size_of_hard_state_and_entries() {
    let mut node = fresh();
    run(
        &mut node,
        vec![
            from(2, 300, request_vote(0, 0)),
            from(2, 300, append(0, 0, entries(1, &[1, 2, 300, 300]), 3)),
        ],
    );
    let state = node.durable_state();
    let hard: HardState = state.hard_state;
    let expected = postcard::to_allocvec(&hard).unwrap().len()
        + postcard::to_allocvec(state.log.entries()).unwrap().len();
    assert_eq!(node.raft_state_size_bytes(), expected);
}
