//! The checkers against histories with a known answer.
//!
//! Legal histories come from real `raft::Node`s driven by a small in-test cluster ([`Harness`]):
//! a scripted one (elections, replication, truncation of uncommitted entries, snapshots, crashes
//! and restarts) and many random ones (drops, duplicates, reordering, partitions, crashes,
//! compaction). None may trip a checker: a false alarm is as bad as a miss.
//!
//! Violations are fabricated: real nodes pushed into states no correct cluster reaches (votes
//! granted by a peer that never voted, durable state edited between incarnations), or outputs
//! and durable states written by hand. Each test asserts which checker fires.

use super::committed_immutable::CommittedImmutable;
use super::hash;
use super::index_bounds::IndexBounds;
use super::mirror::{Held, LogMirror};
use super::{Checkers, Violation};
use crate::rng::{Purpose, SimRng};
use raft::{
    Accepted, Config, DurableState, Entry, HardState, Index, Input, Log, Message, Node, NodeId,
    Output, Payload, Persist, Rejected, Role, Snapshot, Term,
};
use std::collections::VecDeque;

// ----- A tiny cluster of real nodes, every event checked -----

/// Nodes `1..=size` wired by a FIFO network, each with a durable store fed by its `Persist`
/// outputs, every output and step reported to the checkers.
struct Harness {
    checkers: Checkers,
    configs: Vec<Config>,
    nodes: Vec<Option<Node>>,
    stores: Vec<DurableState>,
    starts: Vec<u64>,
    connected: Vec<bool>,
    network: VecDeque<(NodeId, NodeId, Message)>,
    /// What the history exercised, so a legal-history test can tell it checked something.
    seen: Seen,
}

/// Counts of the legal but delicate events a history went through.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    /// Appends that replaced entries (a follower dropping uncommitted entries).
    truncations: u64,
    /// Snapshots persisted (compactions and installs).
    snapshots: u64,
    /// `Restore` outputs (snapshots installed from a leader).
    restores: u64,
    /// Restarts.
    restarts: u64,
    /// The highest commit index any node reached.
    commit_max: u64,
}

/// At most this many messages per drain, so a livelock fails the test instead of hanging it.
const DRAIN_MESSAGES_MAX: usize = 100_000;

fn id(slot: usize) -> NodeId {
    NodeId(u32::try_from(slot).expect("small cluster") + 1)
}

fn slot_of(id: NodeId) -> usize {
    usize::try_from(id.0 - 1).expect("small cluster")
}

fn config(me: NodeId, size: u32, seed: u64) -> Config {
    let mut config = Config::new(me, (1..=size).map(NodeId).collect(), seed);
    config.election_ticks = 10;
    config.heartbeat_ticks = 2;
    config.max_entries_per_append = 4;
    config.max_inflight_appends = 4;
    config
}

impl Harness {
    fn new(size: u32, seed: u64) -> Harness {
        let ids: Vec<NodeId> = (1..=size).map(NodeId).collect();
        let configs: Vec<Config> = ids
            .iter()
            .map(|&me| config(me, size, seed.wrapping_mul(1000) + u64::from(me.0)))
            .collect();
        let nodes = configs
            .iter()
            .map(|c| Some(Node::new(c.clone()).expect("valid config")))
            .collect();
        let n = ids.len();
        Harness {
            checkers: Checkers::new(&ids),
            configs,
            nodes,
            stores: vec![DurableState::default(); n],
            starts: vec![0; n],
            connected: vec![true; n],
            network: VecDeque::new(),
            seen: Seen::default(),
        }
    }

    fn node(&self, slot: usize) -> &Node {
        self.nodes[slot].as_ref().expect("the node is up")
    }

    /// Steps the node in `slot` and reports everything to the checkers, as the simulator does.
    fn step(&mut self, slot: usize, input: Input) -> Result<Result<Accepted, Rejected>, Violation> {
        let node = self.nodes[slot]
            .as_mut()
            .expect("stepping a node that is up");
        let step = node.step(input);
        for output in &step.outputs {
            self.checkers.on_output(id(slot), output)?;
            match output {
                Output::Persist(op) => {
                    let store = &mut self.stores[slot];
                    match op {
                        Persist::Append(entries)
                            if entries
                                .first()
                                .is_some_and(|e| e.index <= store.log.last_index()) =>
                        {
                            self.seen.truncations += 1;
                        }
                        Persist::Snapshot(_) => self.seen.snapshots += 1,
                        Persist::Append(_) | Persist::HardState(_) => {}
                    }
                    store.apply(op).expect("the store fits");
                }
                Output::Send { to, message } => {
                    if self.connected[slot] {
                        self.network.push_back((id(slot), *to, message.clone()));
                    }
                }
                Output::Restore(_) => self.seen.restores += 1,
                Output::Apply(_) => {}
            }
        }
        let node = self.nodes[slot].as_ref().expect("still up");
        self.checkers.after_step(node)?;
        self.seen.commit_max = self.seen.commit_max.max(node.commit_index().0);
        Ok(step.result)
    }

    fn deliver(&mut self, from: NodeId, to: NodeId, message: Message) -> Result<(), Violation> {
        let slot = slot_of(to);
        if self.nodes[slot].is_none() || !self.connected[slot] || !self.connected[slot_of(from)] {
            return Ok(());
        }
        self.step(slot, Input::Receive { from, message })?
            .expect("messages are always accepted");
        Ok(())
    }

    fn drain(&mut self) -> Result<(), Violation> {
        for _ in 0..DRAIN_MESSAGES_MAX {
            let Some((from, to, message)) = self.network.pop_front() else {
                return Ok(());
            };
            self.deliver(from, to, message)?;
        }
        panic!("the network did not drain");
    }

    fn tick(&mut self, slot: usize) -> Result<(), Violation> {
        self.step(slot, Input::Tick)?
            .expect("ticks are always accepted");
        Ok(())
    }

    /// Ticks only `slot` until it campaigns, then lets the election run: it wins if a majority
    /// is connected and will vote for it.
    fn elect(&mut self, slot: usize) -> Result<(), Violation> {
        for _ in 0..100 {
            self.tick(slot)?;
            if self.node(slot).role() != Role::Follower {
                break;
            }
        }
        self.drain()?;
        assert_eq!(self.node(slot).role(), Role::Leader, "{} won", id(slot));
        Ok(())
    }

    /// One heartbeat round from the leader in `slot`: followers learn its commit index.
    fn heartbeat(&mut self, slot: usize) -> Result<(), Violation> {
        for _ in 0..self.configs[slot].heartbeat_ticks {
            self.tick(slot)?;
        }
        self.drain()
    }

    /// Proposes at the leader in `slot`, replicates, and spreads the commit index.
    fn commit(&mut self, slot: usize, command: &[u8]) -> Result<Index, Violation> {
        let Ok(Accepted::Proposed { index, .. }) =
            self.step(slot, Input::Propose(command.into()))?
        else {
            panic!("{} accepts proposals", id(slot));
        };
        self.drain()?;
        self.heartbeat(slot)?;
        Ok(index)
    }

    /// Compacts the node's log up to what it has applied.
    fn compact(&mut self, slot: usize) -> Result<(), Violation> {
        let index = self.node(slot).last_applied();
        let snapshot = format!("state@{}", index.0).into_bytes();
        self.step(slot, Input::Compact { index, snapshot })?
            .expect("compacting up to the applied index");
        Ok(())
    }

    fn crash(&mut self, slot: usize) {
        self.nodes[slot] = None;
        self.checkers.on_crash(id(slot));
        self.network.retain(|(_, to, _)| *to != id(slot));
    }

    /// A new incarnation from the durable store, with a new seed.
    fn restart(&mut self, slot: usize) -> Result<(), Violation> {
        self.starts[slot] += 1;
        let mut config = self.configs[slot].clone();
        config.seed = config.seed.wrapping_add(self.starts[slot] << 32);
        let node =
            Node::restore(config, self.stores[slot].clone()).expect("restore from own store");
        self.checkers.on_restart(&node)?;
        self.nodes[slot] = Some(node);
        self.seen.restarts += 1;
        Ok(())
    }

    fn disconnect(&mut self, slot: usize) {
        self.connected[slot] = false;
        self.network
            .retain(|(from, to, _)| *from != id(slot) && *to != id(slot));
    }

    fn connect(&mut self, slot: usize) {
        self.connected[slot] = true;
    }

    /// Hands the node in `slot` a vote that no peer cast: the way to fabricate a second leader.
    fn forge_vote(&mut self, slot: usize, voter: NodeId) -> Result<(), Violation> {
        let term = self.node(slot).term();
        let message = Message {
            term,
            payload: Payload::RequestVoteReply { granted: true },
        };
        let input = Input::Receive {
            from: voter,
            message,
        };
        self.step(slot, input)?
            .expect("messages are always accepted");
        Ok(())
    }

    /// Ticks only `slot` until it is a candidate.
    fn campaign(&mut self, slot: usize) -> Result<(), Violation> {
        for _ in 0..100 {
            self.tick(slot)?;
            if self.node(slot).role() != Role::Follower {
                return Ok(());
            }
        }
        panic!("{} did not campaign", id(slot));
    }
}

// ----- Fabricated pieces -----

fn entry(index: u64, term: u64, command: &str) -> Entry {
    Entry {
        index: Index(index),
        term: Term(term),
        command: command.into(),
    }
}

fn snapshot(index: u64, term: u64) -> Snapshot {
    Snapshot {
        index: Index(index),
        term: Term(term),
        data: format!("state@{index}").into_bytes(),
    }
}

fn durable(
    term: u64,
    voted_for: Option<u32>,
    snap: Option<Snapshot>,
    log: Vec<Entry>,
) -> DurableState {
    DurableState {
        hard_state: HardState {
            term: Term(term),
            voted_for: voted_for.map(NodeId),
        },
        log: Log::from_parts(snap, log).expect("a well-formed log"),
    }
}

/// Node `me` of a cluster of `size`, resumed from `state`.
fn restored(me: u32, size: u32, state: DurableState) -> Node {
    Node::restore(config(NodeId(me), size, u64::from(me)), state).expect("a valid durable state")
}

fn hard_state(term: u64, voted_for: Option<u32>) -> Output {
    Output::Persist(Persist::HardState(HardState {
        term: Term(term),
        voted_for: voted_for.map(NodeId),
    }))
}

fn append(entries: Vec<Entry>) -> Output {
    Output::Persist(Persist::Append(entries))
}

fn apply(entries: Vec<Entry>) -> Output {
    Output::Apply(entries)
}

/// The checker the violation names, with its message printed on a mismatch.
#[track_caller]
fn assert_fires<T: std::fmt::Debug>(result: Result<T, Violation>, checker: &str) -> Violation {
    match result {
        Err(violation) => {
            assert_eq!(
                violation.checker, checker,
                "expected {checker} to fire, got: {violation}"
            );
            assert!(!violation.message.is_empty());
            violation
        }
        Ok(value) => panic!("expected {checker} to fire, but the event passed ({value:?})"),
    }
}

fn ids(size: u32) -> Vec<NodeId> {
    (1..=size).map(NodeId).collect()
}

// ----- Legal histories -----

#[test]
fn scripted_legal_history_passes() -> Result<(), Violation> {
    let mut h = Harness::new(3, 1);
    // Elect node 1 and replicate to everyone.
    h.elect(0)?;
    let a = h.commit(0, b"a")?;
    let b = h.commit(0, b"b")?;
    assert_eq!((a, b), (Index(1), Index(2)));
    for slot in 0..3 {
        assert_eq!(h.node(slot).last_applied(), Index(2));
    }

    // Node 1 appends an entry nobody else sees, then loses the leadership to node 2, which
    // commits a different entry at the same index: node 1 must truncate its uncommitted entry.
    h.disconnect(0);
    assert!(matches!(
        h.step(0, Input::Propose(b"lost".into()))?,
        Ok(Accepted::Proposed {
            index: Index(3),
            ..
        })
    ));
    h.elect(1)?;
    assert_eq!(h.commit(1, b"c")?, Index(3));
    h.connect(0);
    h.heartbeat(1)?;
    h.heartbeat(1)?;
    assert_eq!(h.node(0).role(), Role::Follower);
    assert_eq!(h.node(0).last_applied(), Index(3));

    // Compaction on the leader while node 3 is away; node 3 catches up from the snapshot.
    h.disconnect(2);
    for command in [b"d", b"e", b"f", b"g"] {
        h.commit(1, command)?;
    }
    h.compact(1)?;
    h.compact(0)?;
    assert_eq!(h.node(1).log().snapshot_index(), Index(7));
    h.connect(2);
    for _ in 0..4 {
        h.heartbeat(1)?;
    }
    assert_eq!(h.node(2).log().snapshot_index(), Index(7));
    assert_eq!(h.node(2).last_applied(), Index(7));

    // A follower crashes: it restarts with its commit index at its snapshot and applies again
    // from there (without a snapshot: see the next test).
    h.commit(1, b"h")?;
    h.crash(2);
    h.restart(2)?;
    assert_eq!(h.node(2).commit_index(), Index(7));
    h.heartbeat(1)?;
    assert_eq!(h.node(2).last_applied(), Index(8));

    // The leader and the other follower restart from their snapshots; a new leader is elected.
    h.crash(1);
    h.restart(1)?;
    h.crash(0);
    h.restart(0)?;
    assert_eq!(h.node(0).last_applied(), Index(7));
    h.elect(0)?;
    h.commit(0, b"i")?;
    h.heartbeat(0)?;
    for slot in 0..3 {
        assert_eq!(h.node(slot).last_applied(), Index(9));
    }
    Ok(())
}

#[test]
fn restart_without_a_snapshot_applies_again_from_the_start() -> Result<(), Violation> {
    let mut h = Harness::new(3, 2);
    h.elect(0)?;
    h.commit(0, b"a")?;
    h.commit(0, b"b")?;
    h.crash(2);
    h.restart(2)?;
    assert_eq!(h.node(2).commit_index(), Index(0));
    h.heartbeat(0)?;
    assert_eq!(h.node(2).last_applied(), Index(2));
    // The whole cluster down and up again.
    for slot in 0..3 {
        h.crash(slot);
    }
    for slot in 0..3 {
        h.restart(slot)?;
    }
    h.elect(1)?;
    h.commit(1, b"c")?;
    Ok(())
}

/// Random but legal histories: real nodes under message loss, duplication, reordering,
/// partitions, crashes, restarts and compaction. The checkers must stay quiet.
#[test]
fn random_legal_histories_pass() {
    const SEEDS: u64 = 60;
    const EVENTS: u32 = 20_000;
    let mut total = Seen::default();
    for seed in 0..SEEDS {
        let size = if seed % 2 == 0 { 3 } else { 5 };
        let seen = match random_history(seed, size, EVENTS) {
            Ok(seen) => seen,
            Err(violation) => panic!("seed {seed}: false alarm: {violation}"),
        };
        total.truncations += seen.truncations;
        total.snapshots += seen.snapshots;
        total.restores += seen.restores;
        total.restarts += seen.restarts;
        total.commit_max += seen.commit_max;
    }
    // The histories must go through what the checkers could mistake for a violation.
    assert!(total.commit_max > SEEDS * 50, "{total:?}");
    assert!(total.truncations > SEEDS, "{total:?}");
    assert!(total.snapshots > SEEDS * 10, "{total:?}");
    assert!(total.restores > SEEDS, "{total:?}");
    assert!(total.restarts > SEEDS * 10, "{total:?}");
}

/// Runs one random history and says what it went through.
fn random_history(seed: u64, size: u32, events: u32) -> Result<Seen, Violation> {
    let mut h = Harness::new(size, seed);
    let mut rng = SimRng::new(seed, Purpose::Faults);
    let n = u64::from(size);
    let mut proposals = 0u64;
    for _ in 0..events {
        let slot = usize::try_from(rng.below(n)).expect("small");
        match rng.below(100) {
            0..=39 => {
                if h.nodes[slot].is_some() {
                    h.tick(slot)?;
                }
            }
            40..=79 => deliver_random(&mut h, &mut rng)?,
            80..=89 => {
                if h.nodes[slot].is_some() {
                    proposals += 1;
                    let command = format!("s{seed}c{proposals}");
                    // Refused by a non-leader: fine.
                    let _ = h.step(slot, Input::Propose(command.into()))?;
                }
            }
            90..=93 => {
                if let Some(node) = &h.nodes[slot]
                    && node.last_applied() > node.log().snapshot_index()
                {
                    h.compact(slot)?;
                }
            }
            94..=95 => {
                if h.nodes[slot].is_some() {
                    h.crash(slot);
                } else {
                    h.restart(slot)?;
                }
            }
            96..=97 => {
                if h.connected[slot] {
                    h.disconnect(slot);
                } else {
                    h.connect(slot);
                }
            }
            _ => {
                // Heal everything now and then, so the cluster makes progress.
                for s in 0..h.nodes.len() {
                    h.connect(s);
                    if h.nodes[s].is_none() {
                        h.restart(s)?;
                    }
                }
            }
        }
    }
    Ok(h.seen)
}

/// Delivers any message in flight (reordering); some are lost, some duplicated.
fn deliver_random(h: &mut Harness, rng: &mut SimRng) -> Result<(), Violation> {
    const IN_FLIGHT_MAX: usize = 1_000;
    let len = h.network.len() as u64;
    let k = usize::try_from(rng.below(len)).expect("small");
    let Some((from, to, message)) = h.network.remove(k) else {
        return Ok(());
    };
    if rng.chance_per_mille(100) {
        return Ok(());
    }
    if rng.chance_per_mille(50) && h.network.len() < IN_FLIGHT_MAX {
        h.network.push_back((from, to, message.clone()));
    }
    h.network.truncate(IN_FLIGHT_MAX);
    h.deliver(from, to, message)
}

// ----- Election safety -----

#[test]
fn election_safety_fires_on_two_leaders_in_one_term() -> Result<(), Violation> {
    let mut h = Harness::new(3, 3);
    h.disconnect(0);
    h.disconnect(1);
    h.campaign(0)?;
    h.campaign(1)?;
    assert_eq!((h.node(0).term(), h.node(1).term()), (Term(1), Term(1)));
    // Node 3 "votes" for both.
    h.forge_vote(0, NodeId(3))?;
    assert_eq!(h.node(0).role(), Role::Leader);
    let violation = assert_fires(h.forge_vote(1, NodeId(3)), "election_safety");
    assert!(violation.message.contains("n1"), "{violation}");
    Ok(())
}

#[test]
fn election_safety_fires_on_a_second_vote_in_one_term() {
    let mut checkers = Checkers::new(&ids(3));
    checkers.on_output(NodeId(1), &hard_state(2, None)).unwrap();
    checkers
        .on_output(NodeId(1), &hard_state(2, Some(2)))
        .unwrap();
    checkers
        .on_output(NodeId(1), &hard_state(2, Some(2)))
        .unwrap();
    assert_fires(
        checkers.on_output(NodeId(1), &hard_state(2, Some(3))),
        "election_safety",
    );
}

#[test]
fn election_safety_fires_on_a_vote_forgotten_across_a_restart() {
    let mut checkers = Checkers::new(&ids(3));
    checkers
        .on_output(NodeId(1), &hard_state(2, Some(2)))
        .unwrap();
    checkers.on_crash(NodeId(1));
    let node = restored(1, 3, durable(2, None, None, vec![]));
    assert_fires(checkers.on_restart(&node), "election_safety");
}

// ----- Persist first -----

fn send_to(to: u32) -> Output {
    Output::Send {
        to: NodeId(to),
        message: Message {
            term: Term(2),
            payload: Payload::RequestVoteReply { granted: true },
        },
    }
}

#[test]
fn persist_first_fires_on_a_write_after_a_send_of_the_same_step() {
    let mut checkers = Checkers::new(&ids(3));
    // Write, then send: the contract.
    checkers
        .on_output(NodeId(1), &hard_state(2, Some(2)))
        .unwrap();
    checkers.on_output(NodeId(1), &send_to(2)).unwrap();
    // A new step of another node, and of the same node after its step ended, start clean.
    checkers.on_output(NodeId(2), &hard_state(2, None)).unwrap();
    let node = restored(1, 3, durable(2, Some(2), None, vec![]));
    checkers.after_step(&node).unwrap();
    checkers
        .on_output(NodeId(1), &hard_state(2, Some(2)))
        .unwrap();
    checkers.on_output(NodeId(1), &send_to(2)).unwrap();
    // Send, then write, in one step: the vote could be forgotten after the reply left.
    let violation = assert_fires(
        checkers.on_output(NodeId(1), &hard_state(3, Some(3))),
        "persist_first",
    );
    assert!(violation.message.contains("n1"), "{violation}");
}

#[test]
fn persist_first_forgets_a_step_cut_short_by_a_crash() {
    let mut checkers = Checkers::new(&ids(3));
    checkers.on_output(NodeId(1), &send_to(2)).unwrap();
    checkers.on_crash(NodeId(1));
    let node = restored(1, 3, durable(2, None, None, vec![]));
    checkers.on_restart(&node).unwrap();
    checkers
        .on_output(NodeId(1), &hard_state(3, Some(1)))
        .unwrap();
}

// ----- Log matching -----

#[test]
fn log_matching_fires_on_logs_that_agree_at_an_index_and_term_but_differ_before() {
    let mut checkers = Checkers::new(&ids(3));
    let one = restored(
        1,
        3,
        durable(3, None, None, vec![entry(1, 1, "a"), entry(2, 3, "c")]),
    );
    checkers.on_restart(&one).unwrap();
    let two = restored(
        2,
        3,
        durable(3, None, None, vec![entry(1, 2, "b"), entry(2, 3, "c")]),
    );
    let violation = assert_fires(checkers.on_restart(&two), "log_matching");
    assert!(
        violation.message.contains("first differ at i1"),
        "{violation}"
    );
}

#[test]
fn log_matching_fires_on_appends_that_agree_at_an_index_and_term_but_differ_before() {
    let mut checkers = Checkers::new(&ids(3));
    checkers
        .on_output(NodeId(1), &append(vec![entry(1, 1, "a"), entry(2, 1, "b")]))
        .unwrap();
    checkers
        .on_output(NodeId(2), &append(vec![entry(1, 1, "a")]))
        .unwrap();
    // Same index and term, different command.
    let violation = assert_fires(
        checkers.on_output(NodeId(2), &append(vec![entry(2, 1, "x")])),
        "log_matching",
    );
    assert!(
        violation.message.contains("different command"),
        "{violation}"
    );
    // A different term at an index is fine (an uncommitted entry another leader replaced).
    let mut checkers = Checkers::new(&ids(3));
    checkers
        .on_output(NodeId(1), &append(vec![entry(1, 1, "a"), entry(2, 2, "b")]))
        .unwrap();
    checkers
        .on_output(NodeId(2), &append(vec![entry(1, 1, "a"), entry(2, 3, "y")]))
        .unwrap();
    // A log that replaced its entry at 2 and agrees at 3 with another, after a different 2.
    checkers
        .on_output(
            NodeId(3),
            &append(vec![entry(1, 1, "a"), entry(2, 2, "b"), entry(3, 4, "z")]),
        )
        .unwrap();
    assert_fires(
        checkers.on_output(NodeId(2), &append(vec![entry(3, 4, "z")])),
        "log_matching",
    );
}

#[test]
fn log_matching_fires_on_an_append_that_does_not_fit_the_log() {
    let mut checkers = Checkers::new(&ids(3));
    checkers
        .on_output(NodeId(1), &append(vec![entry(1, 1, "a")]))
        .unwrap();
    assert_fires(
        checkers.on_output(NodeId(1), &append(vec![entry(3, 1, "c")])),
        "log_matching",
    );
    assert_fires(
        checkers.on_output(NodeId(1), &append(vec![entry(2, 2, "b"), entry(4, 2, "d")])),
        "log_matching",
    );
}

#[test]
fn log_matching_fires_when_a_log_changes_without_a_persist_output() -> Result<(), Violation> {
    let mut h = Harness::new(3, 4);
    h.elect(0)?;
    // The proposal's Persist output is not reported.
    let node = h.nodes[0].as_mut().expect("up");
    node.step(Input::Propose(b"hidden".into()));
    let node = h.nodes[0].as_ref().expect("up");
    assert_fires(h.checkers.after_step(node), "log_matching");
    Ok(())
}

// ----- Leader completeness -----

#[test]
fn leader_completeness_fires_on_a_leader_missing_a_committed_entry() -> Result<(), Violation> {
    let mut h = Harness::new(3, 5);
    h.elect(0)?;
    h.disconnect(2);
    h.commit(0, b"a")?;
    assert_eq!(h.node(0).commit_index(), Index(1));
    assert_eq!(h.node(2).log().last_index(), Index(0));
    // Node 3 (empty log) wins term 2 with a vote node 2 never cast.
    h.campaign(2)?;
    let violation = assert_fires(h.forge_vote(2, NodeId(2)), "leader_completeness");
    assert!(violation.message.contains("i1"), "{violation}");
    Ok(())
}

#[test]
fn leader_completeness_fires_on_a_leader_elected_before_a_late_commit() -> Result<(), Violation> {
    let mut h = Harness::new(3, 13);
    h.elect(0)?;
    h.disconnect(2);
    h.step(0, Input::Propose(b"a".into()))?
        .expect("the leader accepts");
    // Node 2 stores the entry; its acknowledgement is held back.
    let appends: Vec<_> = h.network.drain(..).collect();
    for (from, to, message) in appends {
        h.deliver(from, to, message)?;
    }
    let held_back: Vec<_> = h.network.drain(..).collect();
    assert_eq!(held_back.len(), 1);
    // Node 3 (empty log) wins term 2 with a vote node 2 never cast; nothing is committed yet.
    h.campaign(2)?;
    h.forge_vote(2, NodeId(2))?;
    assert_eq!(h.node(2).role(), Role::Leader);
    // Node 1, still leading term 1, now learns that a@1 is committed.
    for (from, to, message) in held_back {
        h.deliver(from, to, message)?;
    }
    assert_eq!(h.node(0).commit_index(), Index(1));
    let violation = assert_fires(h.tick(2), "leader_completeness");
    assert!(
        violation.message.contains("n3 became leader of t2"),
        "{violation}"
    );
    Ok(())
}

#[test]
fn leader_completeness_fires_on_a_leader_holding_a_different_committed_prefix()
-> Result<(), Violation> {
    let mut h = Harness::new(3, 6);
    h.elect(0)?;
    h.disconnect(2);
    h.commit(0, b"a")?;
    // Node 3 (which never committed anything) comes back with another entry at 1, of a later
    // term so that log matching allows it, and wins term 5 with a forged vote.
    h.crash(2);
    h.stores[2] = durable(4, None, None, vec![entry(1, 4, "other")]);
    h.restart(2)?;
    h.campaign(2)?;
    let violation = assert_fires(h.forge_vote(2, NodeId(2)), "leader_completeness");
    assert!(
        violation.message.contains("first difference at i1"),
        "{violation}"
    );
    Ok(())
}

// ----- State-machine safety -----

#[test]
fn state_machine_safety_fires_on_two_commands_applied_at_one_index() {
    let mut checkers = Checkers::new(&ids(3));
    checkers
        .on_output(NodeId(1), &apply(vec![entry(1, 1, "a"), entry(2, 1, "b")]))
        .unwrap();
    checkers
        .on_output(NodeId(2), &apply(vec![entry(1, 1, "a")]))
        .unwrap();
    let violation = assert_fires(
        checkers.on_output(NodeId(2), &apply(vec![entry(2, 1, "x")])),
        "state_machine_safety",
    );
    assert!(violation.message.contains("n1"), "{violation}");
    // A different term at the index is caught too.
    assert_fires(
        checkers.on_output(NodeId(3), &apply(vec![entry(1, 2, "a")])),
        "state_machine_safety",
    );
}

#[test]
fn state_machine_safety_fires_on_a_restore_to_a_different_entry() {
    let mut checkers = Checkers::new(&ids(3));
    checkers
        .on_output(NodeId(1), &apply(vec![entry(1, 1, "a"), entry(2, 1, "b")]))
        .unwrap();
    assert_fires(
        checkers.on_output(NodeId(2), &Output::Restore(snapshot(2, 2))),
        "state_machine_safety",
    );
}

// ----- Committed entries never change -----

#[test]
fn committed_immutable_fires_on_an_append_over_a_committed_entry() -> Result<(), Violation> {
    let mut h = Harness::new(3, 7);
    h.elect(0)?;
    h.commit(0, b"a")?;
    h.commit(0, b"b")?;
    assert_eq!(h.node(1).commit_index(), Index(2));
    let violation = assert_fires(
        h.checkers
            .on_output(NodeId(2), &append(vec![entry(2, 2, "overwrite")])),
        "committed_immutable",
    );
    assert!(
        violation.message.contains("committed up to i2"),
        "{violation}"
    );
    // Past the commit index, a follower may replace entries.
    h.checkers
        .on_output(NodeId(2), &append(vec![entry(3, 2, "uncommitted")]))?;
    h.checkers
        .on_output(NodeId(2), &append(vec![entry(3, 3, "replacement")]))?;
    Ok(())
}

#[test]
fn truncation_fires_on_an_append_that_matches_the_log_but_drops_its_tail() -> Result<(), Violation>
{
    let mut h = Harness::new(3, 7);
    h.elect(0)?;
    h.commit(0, b"a")?;
    h.commit(0, b"b")?;
    let (e3, e4) = (entry(3, 2, "u3"), entry(4, 2, "u4"));
    h.checkers
        .on_output(NodeId(2), &append(vec![e3.clone(), e4.clone()]))?;
    // A duplicate of the first append: matches entry for entry, so it must not drop entry 4.
    let violation = assert_fires(
        h.checkers.on_output(NodeId(2), &append(vec![e3.clone()])),
        "truncation",
    );
    assert!(
        violation.message.contains("drops its entries i4..=i4"),
        "{violation}"
    );
    // Appends that conflict, from the first entry or a later one, may truncate; so may one that
    // matches and ends at the end of the log.
    h.checkers
        .on_output(NodeId(2), &append(vec![e3.clone(), entry(4, 3, "r4")]))?;
    h.checkers
        .on_output(NodeId(2), &append(vec![entry(3, 3, "r3")]))?;
    h.checkers
        .on_output(NodeId(2), &append(vec![entry(3, 3, "r3")]))?;
    // With entries 3..=5 held: a batch whose first entry matches and a later one conflicts
    // may truncate, though it ends before the log does; one that matches throughout may not.
    h.checkers.on_output(
        NodeId(2),
        &append(vec![entry(4, 4, "a4"), entry(5, 4, "a5")]),
    )?;
    h.checkers.on_output(
        NodeId(2),
        &append(vec![entry(3, 3, "r3"), entry(4, 5, "b4")]),
    )?;
    h.checkers.on_output(
        NodeId(2),
        &append(vec![entry(5, 5, "b5"), entry(6, 5, "b6")]),
    )?;
    let violation = assert_fires(
        h.checkers.on_output(
            NodeId(2),
            &append(vec![entry(3, 3, "r3"), entry(4, 5, "b4")]),
        ),
        "truncation",
    );
    assert!(
        violation.message.contains("drops its entries i5..=i6"),
        "{violation}"
    );
    Ok(())
}

#[test]
fn committed_immutable_fires_on_a_commit_of_a_different_entry() {
    // Through the whole checker set, the Apply output that comes with a commit trips state-machine
    // safety first; this drives the committed-immutable checker alone to see its own check. Two
    // restored nodes have their commit index at their snapshot; the mirrors say what they hold.
    let mut checker = CommittedImmutable::new(&ids(3));
    let mirror_of = |entries: &[Entry]| {
        let mut mirror = LogMirror::new();
        let mut previous = hash::EMPTY_PREFIX;
        for e in entries {
            previous = hash::chain(previous, e.term, hash::command(&e.command));
            mirror.push(Held {
                term: e.term,
                hash: previous,
            });
        }
        mirror
    };
    let one = restored(1, 3, durable(1, None, Some(snapshot(2, 1)), vec![]));
    let ones = mirror_of(&[entry(1, 1, "a"), entry(2, 1, "b")]);
    checker.after_step(0, &one, &ones).unwrap();
    assert_eq!(checker.highest_committed(), Index(2));
    // The same entries: fine. A different prefix under the same last entry: the violation.
    let two = restored(2, 3, durable(1, None, Some(snapshot(2, 1)), vec![]));
    checker.after_step(1, &two, &ones).unwrap();
    let three = restored(3, 3, durable(2, None, Some(snapshot(2, 1)), vec![]));
    let threes = mirror_of(&[entry(1, 2, "x"), entry(2, 1, "b")]);
    let violation = assert_fires(
        checker.after_step(2, &three, &threes),
        "committed_immutable",
    );
    assert!(
        violation.message.contains("first difference at i1"),
        "{violation}"
    );
}

#[test]
fn a_commit_of_a_different_entry_is_caught_through_the_checker_set() -> Result<(), Violation> {
    let mut h = Harness::new(3, 8);
    h.elect(0)?;
    h.disconnect(2);
    h.commit(0, b"a")?;
    // Node 3, which never committed anything, comes back holding another entry at 1 (of a later
    // term, which log matching allows) and hears from a "leader" of that term that 1 is
    // committed. Its Apply of the other entry is the first symptom.
    h.crash(2);
    h.stores[2] = durable(2, None, None, vec![entry(1, 2, "other")]);
    h.restart(2)?;
    h.connect(2);
    let message = Message {
        term: Term(2),
        payload: Payload::AppendEntries {
            prev_index: Index(1),
            prev_term: Term(2),
            entries: vec![],
            leader_commit: Index(1),
        },
    };
    h.network.push_back((NodeId(2), NodeId(3), message));
    assert_fires(h.drain(), "state_machine_safety");
    Ok(())
}

#[test]
fn committed_immutable_fires_on_a_snapshot_of_uncommitted_entries() {
    let mut checkers = Checkers::new(&ids(3));
    checkers
        .on_output(NodeId(1), &append(vec![entry(1, 1, "a"), entry(2, 1, "b")]))
        .unwrap();
    let violation = assert_fires(
        checkers.on_output(
            NodeId(1),
            &Output::Persist(Persist::Snapshot(snapshot(2, 1))),
        ),
        "committed_immutable",
    );
    assert!(violation.message.contains("beyond"), "{violation}");
}

#[test]
fn committed_immutable_fires_on_a_restart_that_lost_committed_entries() -> Result<(), Violation> {
    let mut h = Harness::new(3, 9);
    h.elect(0)?;
    h.commit(0, b"a")?;
    h.commit(0, b"b")?;
    assert_eq!(h.node(1).commit_index(), Index(2));
    h.crash(1);
    h.stores[1] = durable(1, Some(1), None, vec![entry(1, 1, "a")]);
    let violation = assert_fires(h.restart(1), "committed_immutable");
    assert!(violation.message.contains("lost"), "{violation}");
    Ok(())
}

// ----- Apply order -----

#[test]
fn apply_order_fires_on_a_gap() {
    let mut checkers = Checkers::new(&ids(3));
    checkers
        .on_output(NodeId(1), &apply(vec![entry(1, 1, "a")]))
        .unwrap();
    assert_fires(
        checkers.on_output(NodeId(1), &apply(vec![entry(3, 1, "c")])),
        "apply_order",
    );
}

#[test]
fn apply_order_fires_on_entries_out_of_order() {
    let mut checkers = Checkers::new(&ids(3));
    assert_fires(
        checkers.on_output(NodeId(1), &apply(vec![entry(2, 1, "b"), entry(1, 1, "a")])),
        "apply_order",
    );
}

#[test]
fn apply_order_fires_on_an_entry_applied_twice_in_one_incarnation() {
    let mut checkers = Checkers::new(&ids(3));
    checkers
        .on_output(NodeId(1), &apply(vec![entry(1, 1, "a"), entry(2, 1, "b")]))
        .unwrap();
    let violation = assert_fires(
        checkers.on_output(NodeId(1), &apply(vec![entry(2, 1, "b")])),
        "apply_order",
    );
    assert!(violation.message.contains("again"), "{violation}");
}

#[test]
fn apply_order_allows_applying_again_after_a_restart() {
    let mut checkers = Checkers::new(&ids(3));
    checkers
        .on_output(NodeId(1), &append(vec![entry(1, 1, "a"), entry(2, 1, "b")]))
        .unwrap();
    checkers
        .on_output(NodeId(1), &apply(vec![entry(1, 1, "a"), entry(2, 1, "b")]))
        .unwrap();
    checkers.on_crash(NodeId(1));
    let node = restored(
        1,
        3,
        durable(1, None, None, vec![entry(1, 1, "a"), entry(2, 1, "b")]),
    );
    checkers.on_restart(&node).unwrap();
    checkers
        .on_output(NodeId(1), &apply(vec![entry(1, 1, "a")]))
        .unwrap();
}

#[test]
fn apply_order_fires_when_last_applied_disagrees_with_the_outputs() -> Result<(), Violation> {
    let mut h = Harness::new(3, 10);
    h.elect(0)?;
    h.commit(0, b"a")?;
    assert_eq!(h.node(1).last_applied(), Index(1));
    // An Apply output the node does not account for in its own last_applied.
    h.checkers
        .on_output(NodeId(2), &apply(vec![entry(2, 1, "phantom")]))?;
    let node = h.nodes[1].as_ref().expect("up");
    assert_fires(h.checkers.after_step(node), "apply_order");
    Ok(())
}

// ----- Snapshots never move a state machine back -----

#[test]
fn snapshot_monotonic_fires_on_a_restore_that_moves_back() {
    let mut checkers = Checkers::new(&ids(3));
    checkers
        .on_output(
            NodeId(1),
            &apply(vec![entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 1, "c")]),
        )
        .unwrap();
    let violation = assert_fires(
        checkers.on_output(NodeId(1), &Output::Restore(snapshot(2, 1))),
        "snapshot_monotonic",
    );
    assert!(violation.message.contains("i3"), "{violation}");
    // Forward is fine.
    let mut checkers = Checkers::new(&ids(3));
    checkers
        .on_output(NodeId(1), &apply(vec![entry(1, 1, "a")]))
        .unwrap();
    checkers
        .on_output(NodeId(1), &Output::Restore(snapshot(3, 1)))
        .unwrap();
}

// ----- Monotonic -----

#[test]
fn monotonic_fires_on_a_term_that_goes_down() {
    let mut checkers = Checkers::new(&ids(3));
    checkers.on_output(NodeId(1), &hard_state(3, None)).unwrap();
    assert_fires(
        checkers.on_output(NodeId(1), &hard_state(2, None)),
        "monotonic",
    );
    // Across a restart too.
    let mut checkers = Checkers::new(&ids(3));
    checkers.on_output(NodeId(1), &hard_state(3, None)).unwrap();
    checkers.on_crash(NodeId(1));
    let node = restored(1, 3, durable(2, None, None, vec![]));
    assert_fires(checkers.on_restart(&node), "monotonic");
}

#[test]
fn monotonic_fires_on_a_commit_index_that_goes_down() -> Result<(), Violation> {
    let mut h = Harness::new(3, 11);
    h.elect(0)?;
    let before = h.node(1).clone();
    h.commit(0, b"a")?;
    assert_eq!(h.node(1).commit_index(), Index(1));
    // The same incarnation reporting an older state: its commit index went back.
    assert_fires(h.checkers.after_step(&before), "monotonic");
    Ok(())
}

#[test]
fn monotonic_fires_on_a_durable_snapshot_lost_across_a_restart() -> Result<(), Violation> {
    let mut h = Harness::new(3, 12);
    h.elect(0)?;
    h.commit(0, b"a")?;
    h.commit(0, b"b")?;
    h.compact(1)?;
    h.crash(1);
    h.stores[1] = durable(1, Some(1), None, vec![entry(1, 1, "a"), entry(2, 1, "b")]);
    assert_fires(h.restart(1), "monotonic");
    Ok(())
}

// ----- Index bounds -----

#[test]
fn index_bounds_fires_on_each_broken_order() {
    let check = |snapshot, applied, commit, last| {
        IndexBounds.check_values(
            NodeId(1),
            Index(snapshot),
            Index(applied),
            Index(commit),
            Index(last),
        )
    };
    assert!(check(0, 0, 0, 0).is_ok());
    assert!(check(2, 3, 4, 5).is_ok());
    assert!(check(3, 3, 3, 3).is_ok());
    let violation = assert_fires(check(4, 3, 4, 5), "index_bounds");
    assert!(
        violation.message.contains("snapshot is past"),
        "{violation}"
    );
    let violation = assert_fires(check(2, 5, 4, 5), "index_bounds");
    assert!(violation.message.contains("applied before"), "{violation}");
    let violation = assert_fires(check(2, 3, 6, 5), "index_bounds");
    assert!(
        violation.message.contains("past the log's end"),
        "{violation}"
    );
}

#[test]
fn index_bounds_runs_after_every_step_and_restart() {
    // A real node never breaks the bounds, so the checker sees only good ones here; this pins
    // that restored nodes (commit and applied at the snapshot) pass.
    let mut checkers = Checkers::new(&ids(3));
    checkers
        .on_output(NodeId(1), &append(vec![entry(1, 1, "a")]))
        .unwrap();
    let node = restored(1, 3, durable(1, None, None, vec![entry(1, 1, "a")]));
    checkers.on_restart(&node).unwrap();
    checkers.after_step(&node).unwrap();
}

// ----- Driver mistakes -----

#[test]
fn driver_mistakes_are_reported_as_such() {
    let mut checkers = Checkers::new(&ids(3));
    assert_fires(
        checkers.on_output(NodeId(9), &hard_state(1, None)),
        "driver",
    );
    checkers.on_crash(NodeId(2));
    assert_fires(
        checkers.on_output(NodeId(2), &hard_state(1, None)),
        "driver",
    );
    // Sends are only noted for the persist-first order (the hot path).
    let send = Output::Send {
        to: NodeId(1),
        message: Message {
            term: Term(1),
            payload: Payload::RequestVoteReply { granted: true },
        },
    };
    assert!(checkers.on_output(NodeId(2), &send).is_ok());
}

#[test]
fn slots_are_found_for_ids_that_are_not_zero_to_n() {
    let mut checkers = Checkers::new(&[NodeId(7), NodeId(3)]);
    let vote = |term| {
        Output::Persist(Persist::HardState(HardState {
            term: Term(term),
            voted_for: None,
        }))
    };
    checkers
        .on_output(NodeId(3), &vote(1))
        .expect("n3 is checked");
    checkers
        .on_output(NodeId(7), &vote(2))
        .expect("n7 is checked");
    for unknown in [0, 1, 4] {
        let violation = checkers
            .on_output(NodeId(unknown), &vote(3))
            .expect_err("not a checked node");
        assert!(
            violation
                .to_string()
                .contains("not one of the checked nodes")
        );
    }
    // The ids keep their own slots: a term regression on n7 is caught against n7's term.
    assert!(checkers.on_output(NodeId(7), &vote(1)).is_err());
}
