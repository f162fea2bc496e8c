//! Helpers for the isolated rule tests: build a node, make it leader, build messages, and pick
//! outputs apart. Every test file uses a different subset.

#![allow(dead_code)]

pub mod driver;

use raft::{
    AppendResult, Config, ConflictHint, DurableState, Entry, HardState, Index, Input, Log, Message,
    Node, NodeId, Output, Payload, Persist, Role, Snapshot, Step, Term,
};

/// The node under test in every isolated test.
pub const ME: NodeId = NodeId(1);

/// A node id.
pub fn id(n: u32) -> NodeId {
    NodeId(n)
}

/// The config of node `me` in a cluster of voters `1..=voters`, seeded by its id.
pub fn config(me: u32, voters: u32) -> Config {
    Config::new(
        NodeId(me),
        (1..=voters).map(NodeId).collect(),
        u64::from(me),
    )
}

/// A fresh node 1 in a cluster of three.
pub fn fresh() -> Node {
    Node::new(config(1, 3)).expect("valid config")
}

/// An entry whose command names its index and term, so different entries never compare equal.
pub fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index: Index(index),
        term: Term(term),
        command: format!("i{index}t{term}").into(),
    }
}

/// Entries at `first, first + 1, ...` with the given terms.
pub fn entries(first: u64, terms: &[u64]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(k, &term)| entry(first + k as u64, term))
        .collect()
}

/// A durable state with the given hard state and a log `1..` of the given terms.
pub fn durable(term: u64, voted_for: Option<u32>, log_terms: &[u64]) -> DurableState {
    DurableState {
        hard_state: HardState {
            term: Term(term),
            voted_for: voted_for.map(NodeId),
        },
        log: Log::from_parts(None, entries(1, log_terms)).expect("a well-formed log"),
    }
}

/// Node 1 of a cluster of `voters`, restored as a follower in `term` with the given log.
pub fn follower_with_log(voters: u32, term: u64, log_terms: &[u64]) -> Node {
    Node::restore(config(1, voters), durable(term, None, log_terms)).expect("valid durable state")
}

/// Ticks until the node campaigns (at most two election timeouts' worth) and returns that step.
pub fn tick_until_campaign(node: &mut Node) -> Step {
    let limit = 2 * node.config().election_ticks;
    for _ in 0..limit {
        let step = node.step(Input::Tick);
        if node.role() == Role::Candidate || node.role() == Role::Leader {
            return step;
        }
    }
    panic!("node {} did not campaign within {limit} ticks", node.id());
}

/// Makes the node leader of the next term: ticks until it campaigns, then grants it votes from
/// its peers in id order until it wins. Returns the outputs of the step that made it leader (its
/// first appends).
pub fn make_leader(node: &mut Node) -> Vec<Output> {
    let step = tick_until_campaign(node);
    if node.role() == Role::Leader {
        return step.outputs;
    }
    let term = node.term();
    let peers: Vec<NodeId> = node
        .config()
        .voters
        .iter()
        .copied()
        .filter(|&p| p != node.id())
        .collect();
    for peer in peers {
        let step = receive(
            node,
            peer,
            term,
            Payload::RequestVoteReply { granted: true },
        );
        if node.role() == Role::Leader {
            return step.outputs;
        }
    }
    panic!("node {} did not win with every vote", node.id());
}

/// Makes the node leader and answers its first probes with a match at its last index, so every
/// follower is in the optimistic replicate state. Returns the leader's term.
pub fn make_replicating_leader(node: &mut Node) -> Term {
    make_leader(node);
    let term = node.term();
    let last = node.log().last_index();
    for peer in peers_of(node) {
        receive(node, peer, term, append_ok(last, last));
    }
    term
}

/// The node's voters other than itself.
pub fn peers_of(node: &Node) -> Vec<NodeId> {
    node.config()
        .voters
        .iter()
        .copied()
        .filter(|&p| p != node.id())
        .collect()
}

/// Steps a message from `from` in `term` into the node.
pub fn receive(node: &mut Node, from: NodeId, term: Term, payload: Payload) -> Step {
    node.step(Input::Receive {
        from,
        message: Message { term, payload },
    })
}

/// Ticks the node `n` times and returns all outputs.
pub fn tick_n(node: &mut Node, n: u32) -> Vec<Output> {
    (0..n)
        .flat_map(|_| node.step(Input::Tick).outputs)
        .collect()
}

// ----- Payloads -----

/// A RequestVote.
pub fn request_vote(last_log_index: u64, last_log_term: u64) -> Payload {
    Payload::RequestVote {
        last_log_index: Index(last_log_index),
        last_log_term: Term(last_log_term),
    }
}

/// An AppendEntries.
pub fn append(prev_index: u64, prev_term: u64, entries: Vec<Entry>, commit: u64) -> Payload {
    Payload::AppendEntries {
        prev_index: Index(prev_index),
        prev_term: Term(prev_term),
        entries,
        leader_commit: Index(commit),
    }
}

/// A successful AppendEntriesReply.
pub fn append_ok(prev_index: Index, match_index: Index) -> Payload {
    Payload::AppendEntriesReply {
        prev_index,
        result: AppendResult::Success { match_index },
    }
}

/// A conflicting AppendEntriesReply.
pub fn append_conflict(prev_index: Index, hint: ConflictHint) -> Payload {
    Payload::AppendEntriesReply {
        prev_index,
        result: AppendResult::Conflict(hint),
    }
}

/// A snapshot with a recognisable payload.
pub fn snapshot(index: u64, term: u64) -> Snapshot {
    Snapshot {
        index: Index(index),
        term: Term(term),
        data: format!("state@{index}").into_bytes(),
    }
}

// ----- Picking outputs apart -----

/// Every `Send`, in order.
pub fn sends(outputs: &[Output]) -> Vec<(NodeId, Message)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { to, message } => Some((*to, message.clone())),
            Output::Persist(_) | Output::Apply(_) | Output::Restore(_) => None,
        })
        .collect()
}

/// The messages sent to `to`, in order.
pub fn sends_to(outputs: &[Output], to: NodeId) -> Vec<Message> {
    sends(outputs)
        .into_iter()
        .filter(|(target, _)| *target == to)
        .map(|(_, m)| m)
        .collect()
}

/// The one message the step sent, to `to`; fails if it sent anything else.
pub fn only_send(outputs: &[Output], to: NodeId) -> Message {
    let all = sends(outputs);
    assert_eq!(all.len(), 1, "expected exactly one send, got {all:?}");
    let (target, message) = all.into_iter().next().expect("one send");
    assert_eq!(target, to, "sent to the wrong node");
    message
}

/// Every `Persist`, in order.
pub fn persists(outputs: &[Output]) -> Vec<Persist> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Persist(p) => Some(p.clone()),
            Output::Send { .. } | Output::Apply(_) | Output::Restore(_) => None,
        })
        .collect()
}

/// The indices of every applied entry, in order.
pub fn applied_indices(outputs: &[Output]) -> Vec<u64> {
    outputs
        .iter()
        .flat_map(|o| match o {
            Output::Apply(entries) => entries.iter().map(|e| e.index.0).collect(),
            Output::Persist(_) | Output::Send { .. } | Output::Restore(_) => Vec::new(),
        })
        .collect()
}

/// Every `Restore`, in order.
pub fn restores(outputs: &[Output]) -> Vec<Snapshot> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Restore(s) => Some(s.clone()),
            Output::Persist(_) | Output::Send { .. } | Output::Apply(_) => None,
        })
        .collect()
}

/// The kind of each output, in order: "persist", "send", "apply", "restore".
pub fn kinds(outputs: &[Output]) -> Vec<&'static str> {
    outputs
        .iter()
        .map(|o| match o {
            Output::Persist(_) => "persist",
            Output::Send { .. } => "send",
            Output::Apply(_) => "apply",
            Output::Restore(_) => "restore",
        })
        .collect()
}

/// Fails unless every `Persist` of the step comes before its first other output.
pub fn assert_persists_first(outputs: &[Output]) {
    let kinds = kinds(outputs);
    let first_other = kinds.iter().position(|&k| k != "persist");
    if let Some(first_other) = first_other {
        assert!(
            kinds[first_other..].iter().all(|&k| k != "persist"),
            "a persist comes after another output: {kinds:?}"
        );
    }
}

/// The durable state a driver would hold after performing these `Persist` outputs on `base`.
pub fn replay_persists(base: &DurableState, outputs: &[Output]) -> DurableState {
    let mut state = base.clone();
    for op in persists(outputs) {
        state
            .apply(&op)
            .expect("the core's persists fit its durable state");
    }
    state
}

/// The terms of the node's log entries after its snapshot.
pub fn log_terms(node: &Node) -> Vec<u64> {
    node.log().entries().iter().map(|e| e.term.0).collect()
}

/// The AppendEntries fields of a message, or a failure naming what it was instead.
pub fn as_append(message: &Message) -> (Index, Term, Vec<Entry>, Index) {
    match &message.payload {
        Payload::AppendEntries {
            prev_index,
            prev_term,
            entries,
            leader_commit,
        } => (*prev_index, *prev_term, entries.clone(), *leader_commit),
        other => panic!("expected AppendEntries, got {other:?}"),
    }
}

/// The AppendEntriesReply fields of a message.
pub fn as_append_reply(message: &Message) -> (Index, AppendResult) {
    match &message.payload {
        Payload::AppendEntriesReply { prev_index, result } => (*prev_index, *result),
        other => panic!("expected AppendEntriesReply, got {other:?}"),
    }
}
