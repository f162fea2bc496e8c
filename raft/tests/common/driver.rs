//! A tiny deterministic driver for whole clusters, without the simulator: a FIFO of messages,
//! ticks in round-robin, one `DurableState` per node fed by its `Persist` outputs, and a typed
//! state machine per node fed through an `Applier`. Crashes, restarts and disconnections are
//! explicit calls, so a test reads as a script.
//!
//! Every step is checked on the way: the driver's store equals the node's durable view, the
//! applier is exactly where the node says it applied to, no two nodes lead one term (election
//! safety), and no two nodes apply different commands at one index (state-machine safety).

use raft::{
    Accepted, Applied, Applier, Config, DurableState, Index, Input, Message, Node, NodeId, Output,
    Role, StateMachine, Step, Term, encode_command,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// A counter whose state depends on the order of the commands (the digest), so two replicas
/// agree only if they applied the same commands in the same order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    /// Commands applied.
    pub count: u64,
    /// Sum of the commands.
    pub sum: u64,
    /// An order-sensitive digest of the commands.
    pub digest: u64,
}

impl StateMachine for Counter {
    type Command = u64;
    type Output = u64;

    fn apply(&mut self, _index: Index, command: u64) -> u64 {
        self.count += 1;
        self.sum = self.sum.wrapping_add(command);
        self.digest = self.digest.wrapping_mul(1_000_003).wrapping_add(command);
        self.sum
    }

    fn snapshot(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("encoding into a Vec never fails")
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        *self = postcard::from_bytes(snapshot)?;
        Ok(())
    }
}

/// One handled input and everything it produced, for determinism checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Which node (0-based slot).
    pub slot: usize,
    /// What went in.
    pub input: Input,
    /// What came out, and whether the input was accepted.
    pub step: Step,
}

/// At most this many messages are delivered per round, so a bug cannot loop forever.
const MESSAGES_PER_ROUND_MAX: usize = 100_000;

/// Three (or any number of) nodes wired together by a FIFO network.
pub struct Cluster {
    configs: Vec<Config>,
    nodes: Vec<Option<Node>>,
    durable: Vec<DurableState>,
    appliers: Vec<Applier<Counter>>,
    connected: Vec<bool>,
    network: VecDeque<(NodeId, NodeId, Message)>,
    incarnations: Vec<u64>,
    /// Every command applied anywhere, by index: state-machine safety is checked against it.
    committed: BTreeMap<Index, (Term, u64)>,
    /// Per node, the indices and commands applied in its current incarnation, in order.
    history: Vec<Vec<(Index, u64)>>,
    /// The leader of every term that had one: election safety is checked against it.
    leaders: BTreeMap<Term, NodeId>,
    /// Per node, how many snapshots it was handed by `Restore` outputs (across incarnations).
    restores: Vec<u64>,
    /// Messages sent, by kind.
    pub sent: BTreeMap<&'static str, u64>,
    /// Every step, when recording.
    pub trace: Option<Vec<Record>>,
    /// Compact a node once it has applied this many entries past its snapshot.
    pub compact_after_entries: Option<u64>,
}

impl Cluster {
    /// `size` fresh nodes with ids `1..=size`; node seeds derive from `seed`.
    pub fn new(size: u32, seed: u64) -> Cluster {
        let voters: Vec<NodeId> = (1..=size).map(NodeId).collect();
        let configs: Vec<Config> = voters
            .iter()
            .map(|&id| {
                Config::new(
                    id,
                    voters.clone(),
                    seed.wrapping_mul(1000).wrapping_add(u64::from(id.0)),
                )
            })
            .collect();
        let nodes = configs
            .iter()
            .map(|c| Some(Node::new(c.clone()).expect("valid config")))
            .collect();
        let n = voters.len();
        Cluster {
            configs,
            nodes,
            durable: vec![DurableState::default(); n],
            appliers: (0..n).map(|_| Applier::new(Counter::default())).collect(),
            connected: vec![true; n],
            network: VecDeque::new(),
            incarnations: vec![0; n],
            committed: BTreeMap::new(),
            history: vec![Vec::new(); n],
            leaders: BTreeMap::new(),
            restores: vec![0; n],
            sent: BTreeMap::new(),
            trace: None,
            compact_after_entries: None,
        }
    }

    /// The node in `slot` (0-based), if it is up.
    pub fn node(&self, slot: usize) -> Option<&Node> {
        self.nodes[slot].as_ref()
    }

    /// The number of nodes, up or down.
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// The state machine of the node in `slot`.
    pub fn state(&self, slot: usize) -> &Counter {
        self.appliers[slot].state()
    }

    /// How many snapshots the node in `slot` has been handed by `Restore` outputs.
    pub fn restores(&self, slot: usize) -> u64 {
        self.restores[slot]
    }

    /// Steps one input into the node in `slot` and performs its outputs in order.
    pub fn step(&mut self, slot: usize, input: Input) -> Result<Accepted, raft::Rejected> {
        let node = self.nodes[slot].as_mut().expect("stepping a crashed node");
        let recorded = self.trace.is_some().then(|| input.clone());
        let step = node.step(input);
        let from = node.id();
        for output in &step.outputs {
            self.perform(slot, from, output);
        }
        self.check_after_step(slot);
        let result = step.result;
        if let (Some(trace), Some(input)) = (self.trace.as_mut(), recorded) {
            trace.push(Record { slot, input, step });
        }
        result
    }

    /// The per-step checks: store, applier and election safety.
    fn check_after_step(&mut self, slot: usize) {
        let node = self.nodes[slot].as_ref().expect("still up");
        assert_eq!(
            &self.durable[slot],
            node.durable_state(),
            "the driver's store and the node's durable view agree"
        );
        assert_eq!(self.appliers[slot].last_applied(), node.last_applied());
        if node.role() == Role::Leader {
            let first = *self.leaders.entry(node.term()).or_insert(node.id());
            assert_eq!(
                first,
                node.id(),
                "election safety: two leaders in {:?}",
                node.term()
            );
        }
    }

    fn perform(&mut self, slot: usize, from: NodeId, output: &Output) {
        match output {
            Output::Persist(op) => self.durable[slot]
                .apply(op)
                .expect("persist fits the store"),
            Output::Send { to, message } => {
                *self.sent.entry(message.payload.kind()).or_default() += 1;
                if self.connected[slot] {
                    self.network.push_back((from, *to, message.clone()));
                }
            }
            Output::Apply(_) | Output::Restore(_) => {
                let applied = self.appliers[slot].handle(output).expect("in-order apply");
                for a in applied {
                    self.record_applied(slot, output, a);
                }
            }
        }
    }

    fn record_applied(&mut self, slot: usize, output: &Output, applied: Applied<u64>) {
        match applied {
            Applied::Command { index, term, .. } => {
                let Output::Apply(entries) = output else {
                    unreachable!("commands come from Apply outputs")
                };
                let entry = entries
                    .iter()
                    .find(|e| e.index == index)
                    .expect("applied entry");
                let command: u64 = postcard::from_bytes(&entry.command).expect("a u64 command");
                let first = *self.committed.entry(index).or_insert((term, command));
                assert_eq!(
                    first,
                    (term, command),
                    "state-machine safety: node {slot} applied a different command at {index}"
                );
                self.history[slot].push((index, command));
            }
            Applied::Undecodable { index, error } => {
                panic!("node {slot} applied an undecodable entry at {index}: {error}")
            }
            Applied::Restored { .. } => {
                self.restores[slot] += 1;
                self.history[slot].clear();
            }
        }
    }

    /// Delivers the oldest message; returns false when the network is empty.
    pub fn deliver_one(&mut self) -> bool {
        let Some((from, to, message)) = self.network.pop_front() else {
            return false;
        };
        let slot = self.slot_of(to);
        if self.nodes[slot].is_some() && self.connected[slot] {
            self.step(slot, Input::Receive { from, message })
                .expect("messages are always accepted");
        }
        true
    }

    /// Delivers messages until the network is empty.
    pub fn drain(&mut self) {
        for _ in 0..MESSAGES_PER_ROUND_MAX {
            if !self.deliver_one() {
                return;
            }
        }
        panic!("the network did not drain within {MESSAGES_PER_ROUND_MAX} messages");
    }

    /// One round: every up node ticks once (in id order), then the network drains; then nodes
    /// that have applied enough compact.
    pub fn round(&mut self) {
        for slot in 0..self.nodes.len() {
            if self.nodes[slot].is_some() {
                self.step(slot, Input::Tick)
                    .expect("ticks are always accepted");
            }
        }
        self.drain();
        self.compact_where_due();
    }

    /// Runs `n` rounds.
    pub fn rounds(&mut self, n: u32) {
        for _ in 0..n {
            self.round();
        }
    }

    fn compact_where_due(&mut self) {
        let Some(threshold) = self.compact_after_entries else {
            return;
        };
        for slot in 0..self.nodes.len() {
            let Some(node) = &self.nodes[slot] else {
                continue;
            };
            if node.last_applied().0 - node.log().snapshot_index().0 >= threshold {
                let input = self.appliers[slot].compact_input();
                self.step(slot, input)
                    .expect("compacting up to the applied index");
            }
        }
    }

    /// The up, connected node that leads the highest term, if any.
    pub fn leader(&self) -> Option<usize> {
        (0..self.nodes.len())
            .filter(|&s| self.connected[s])
            .filter_map(|s| self.nodes[s].as_ref().map(|n| (s, n)))
            .filter(|(_, n)| n.role() == Role::Leader)
            .max_by_key(|(_, n)| n.term())
            .map(|(s, _)| s)
    }

    /// Runs rounds until a connected leader exists whose term no other connected node exceeds.
    pub fn wait_for_leader(&mut self) -> usize {
        for _ in 0..1000 {
            if let Some(slot) = self.leader() {
                let term = self.nodes[slot].as_ref().map(Node::term);
                let highest = (0..self.nodes.len())
                    .filter(|&s| self.connected[s])
                    .filter_map(|s| self.nodes[s].as_ref().map(Node::term))
                    .max();
                if term == highest {
                    return slot;
                }
            }
            self.round();
        }
        panic!("no leader within 1000 rounds");
    }

    /// Proposes `command` at the leader until it is committed, like the labs' `one()`; returns
    /// its index. Each attempt gets a few rounds; a lost leadership means another attempt.
    pub fn commit(&mut self, command: u64) -> Index {
        for _ in 0..20 {
            let leader = self.wait_for_leader();
            let Ok(Accepted::Proposed { index, term }) =
                self.step(leader, Input::Propose(encode_command(&command).into()))
            else {
                continue;
            };
            for _ in 0..50 {
                self.drain();
                if let Some(&(t, c)) = self.committed.get(&index) {
                    if (t, c) == (term, command) {
                        return index;
                    }
                    break; // Another entry won the index: propose again.
                }
                self.round();
            }
        }
        panic!("command {command} was not committed in 20 attempts");
    }

    /// Runs rounds until every up node has applied `index` (a disconnected node never will).
    pub fn wait_applied_everywhere(&mut self, index: Index) {
        for _ in 0..1000 {
            let done = (0..self.nodes.len())
                .filter_map(|s| self.nodes[s].as_ref())
                .all(|n| n.last_applied() >= index);
            if done {
                return;
            }
            self.round();
        }
        panic!("index {index} was not applied everywhere within 1000 rounds");
    }

    /// Loses every volatile thing about the node; its durable store survives.
    pub fn crash(&mut self, slot: usize) {
        self.nodes[slot] = None;
        let id = self.configs[slot].id;
        self.network.retain(|(_, to, _)| *to != id);
    }

    /// Restarts a crashed node from its durable store, with a fresh state machine restored from
    /// the durable snapshot and a new seed for the new incarnation.
    pub fn restart(&mut self, slot: usize) {
        assert!(self.nodes[slot].is_none(), "restart only a crashed node");
        self.incarnations[slot] += 1;
        let mut config = self.configs[slot].clone();
        config.seed = config.seed.wrapping_add(self.incarnations[slot] << 32);
        let durable = self.durable[slot].clone();
        self.appliers[slot] = Applier::restored(Counter::default(), durable.log.snapshot())
            .expect("the durable snapshot restores");
        self.history[slot].clear();
        self.nodes[slot] = Some(Node::restore(config, durable).expect("restore from own store"));
    }

    /// Cuts the node off: its messages and those to it are lost.
    pub fn disconnect(&mut self, slot: usize) {
        self.connected[slot] = false;
        let id = self.configs[slot].id;
        self.network
            .retain(|(from, to, _)| *from != id && *to != id);
    }

    /// Reconnects the node.
    pub fn connect(&mut self, slot: usize) {
        self.connected[slot] = true;
    }

    /// The durable store of the node in `slot`.
    pub fn durable(&self, slot: usize) -> &DurableState {
        &self.durable[slot]
    }

    /// Every node's applied commands in its current incarnation match the committed commands at
    /// the same indices, and are consecutive.
    pub fn check_histories(&self) {
        for (slot, history) in self.history.iter().enumerate() {
            for pair in history.windows(2) {
                assert_eq!(pair[1].0, pair[0].0.next(), "node {slot} skipped an index");
            }
            for (index, command) in history {
                assert_eq!(self.committed[index].1, *command, "node {slot} at {index}");
            }
        }
    }

    /// The commands committed so far, in index order.
    pub fn committed_commands(&self) -> Vec<u64> {
        self.committed.values().map(|&(_, c)| c).collect()
    }

    fn slot_of(&self, id: NodeId) -> usize {
        self.configs
            .iter()
            .position(|c| c.id == id)
            .expect("messages go to cluster members")
    }
}
