//! The Raft state machine: one `Node`, stepped by inputs, answering with outputs.
//!
//! Roles follow the paper's Figure 2; per-role handling lives in `handle_*` methods, the
//! per-follower bookkeeping in [`crate::progress`], majority arithmetic in [`crate::quorum`] and
//! the log in [`crate::log`].

use crate::bytes::SharedBytes;
use crate::config::{Config, ConfigError};
use crate::durable::{DurableState, HardState, Persist};
use crate::log::Log;
use crate::message::{AppendResult, ConflictHint, Entry, Message, Payload, Snapshot};
use crate::progress::{Progress, ReplicationState};
use crate::quorum;
use crate::types::{Index, NodeId, Term};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

/// What a node currently believes it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asks for votes in its current term.
    Candidate,
    /// Won an election in its current term.
    Leader,
}

/// One thing that happens to a node. Each is handled by one call to [`Node::step`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// One unit of logical time has passed.
    Tick,
    /// A message arrived from a peer. Any message, however stale, duplicated or nonsensical, is
    /// handled without panicking.
    Receive {
        /// The sender.
        from: NodeId,
        /// What it said.
        message: Message,
    },
    /// A client command. Accepted only by a leader. The bytes are shared, not copied, into the
    /// new entry (build them with `.into()` from a `Vec<u8>`, a `&[u8]` or a `String`).
    Propose(SharedBytes),
    /// The application has a snapshot covering every entry up to `index` (which it has applied);
    /// the node discards its log up to there.
    Compact {
        /// The last index the snapshot covers.
        index: Index,
        /// The application's serialized state.
        snapshot: Vec<u8>,
    },
}

/// One thing the driver must do. Outputs come in order and must be performed in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Make this durable before performing any later output of the same step.
    Persist(Persist),
    /// Send a message to a peer (one-way; losing it is safe).
    Send {
        /// The receiver.
        to: NodeId,
        /// The message.
        message: Message,
    },
    /// Apply these committed entries to the state machine, in order. Each index is delivered
    /// exactly once per incarnation of the node.
    Apply(Vec<Entry>),
    /// Replace the state machine's state with this snapshot (it is always newer than anything
    /// applied before).
    Restore(Snapshot),
}

/// The result of a step the node accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// The input was handled.
    Done,
    /// The proposal was appended to the leader's log at `index` in `term`. It is not committed
    /// yet: watch the `Apply` outputs for that index and term.
    Proposed {
        /// Where the command sits in the log.
        index: Index,
        /// The leader's term.
        term: Term,
    },
}

/// Why a node refused an input. The node's state is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// Only a leader accepts proposals.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The leader this node last heard from in its current term.
        leader_hint: Option<NodeId>,
    },
    /// A snapshot cannot cover entries the application has not applied.
    #[error("cannot compact to {index}: only {last_applied} is applied")]
    CompactBeyondApplied {
        /// The requested index.
        index: Index,
        /// The node's last applied index.
        last_applied: Index,
    },
    /// The log ends at [`Index::LAST`], so no entry can follow it (only reachable through a
    /// nonsense snapshot or a corrupt durable state).
    #[error("the log is full: it ends at {last_index}")]
    LogFull {
        /// The log's last index.
        last_index: Index,
    },
}

/// Everything one step produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// What the driver must do, in order.
    pub outputs: Vec<Output>,
    /// Whether the input was accepted.
    pub result: Result<Accepted, Rejected>,
}

/// A node's durable state could not be resumed from.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The stored vote names a node outside the cluster.
    #[error("the stored vote is for {0}, which is not a voter")]
    UnknownVote(NodeId),
    /// The stored term is lower than the log's last term.
    #[error("the stored term {term} is lower than the last log term {last_log_term}")]
    TermBehindLog {
        /// The stored term.
        term: Term,
        /// The last log entry's term.
        last_log_term: Term,
    },
}

/// A Raft node: a deterministic function of its `Config` (including the seed), the durable state
/// it was restored from, and the inputs it has stepped. No I/O, clock, threads or global
/// randomness.
#[derive(Clone, Debug)]
pub struct Node {
    config: Config,
    /// Voters other than this node, sorted by id.
    peers: Vec<NodeId>,
    rng: ChaCha8Rng,
    /// Exactly what the node has asked the driver to persist so far.
    durable: DurableState,
    role: Role,
    leader: Option<NodeId>,
    commit_index: Index,
    last_applied: Index,
    election_elapsed_ticks: u32,
    election_timeout_ticks: u32,
    /// Leader: ticks since the last heartbeat; candidate: since it last asked for votes.
    heartbeat_elapsed_ticks: u32,
    /// Candidate: the voters that granted their vote (this node included).
    votes_granted: Vec<NodeId>,
    /// Candidate: the voters that refused their vote.
    votes_refused: Vec<NodeId>,
    /// Leader: one entry per peer, in `peers` order.
    progress: Vec<Progress>,
    /// Outputs of the step in progress, by kind; joined in this order at the end of the step, so
    /// every `Persist` precedes every `Send` and every delivery to the state machine.
    persists: Vec<Output>,
    sends: Vec<Output>,
    deliveries: Vec<Output>,
    /// Scratch space for commit computation (no allocation on the leader's hot path).
    scratch: Vec<Index>,
}

impl Node {
    /// A fresh node with empty durable state.
    pub fn new(config: Config) -> Result<Node, ConfigError> {
        config.validate()?;
        Ok(Node::from_parts(config, DurableState::default()))
    }

    /// Resumes a node from exactly what it persisted before. The application's state must be the
    /// durable snapshot (if any): the node starts with `last_applied` at the snapshot's index.
    /// Give each incarnation a different `config.seed`, or it will draw the same timeouts again.
    pub fn restore(config: Config, durable: DurableState) -> Result<Node, RestoreError> {
        config.validate()?;
        if let Some(vote) = durable.hard_state.voted_for
            && !config.voters.contains(&vote)
        {
            return Err(RestoreError::UnknownVote(vote));
        }
        if durable.hard_state.term < durable.log.last_term() {
            return Err(RestoreError::TermBehindLog {
                term: durable.hard_state.term,
                last_log_term: durable.log.last_term(),
            });
        }
        Ok(Node::from_parts(config, durable))
    }

    fn from_parts(config: Config, durable: DurableState) -> Node {
        let mut peers: Vec<NodeId> = config
            .voters
            .iter()
            .copied()
            .filter(|&id| id != config.id)
            .collect();
        peers.sort();
        let snapshot_index = durable.log.snapshot_index();
        let mut node = Node {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            peers,
            durable,
            role: Role::Follower,
            leader: None,
            commit_index: snapshot_index,
            last_applied: snapshot_index,
            election_elapsed_ticks: 0,
            election_timeout_ticks: 0,
            heartbeat_elapsed_ticks: 0,
            votes_granted: Vec::new(),
            votes_refused: Vec::new(),
            progress: Vec::new(),
            persists: Vec::new(),
            sends: Vec::new(),
            deliveries: Vec::new(),
            scratch: Vec::new(),
            config,
        };
        node.reset_election_timer();
        node
    }

    // ----- Queries -----

    /// This node's id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// The node's config.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current term.
    #[must_use]
    pub fn term(&self) -> Term {
        self.durable.hard_state.term
    }

    /// The vote cast in the current term.
    #[must_use]
    pub fn voted_for(&self) -> Option<NodeId> {
        self.durable.hard_state.voted_for
    }

    /// The current role.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// The leader of the current term, if known.
    #[must_use]
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// The highest index known to be committed.
    #[must_use]
    pub fn commit_index(&self) -> Index {
        self.commit_index
    }

    /// The highest index handed to the state machine (by `Apply` or `Restore`).
    #[must_use]
    pub fn last_applied(&self) -> Index {
        self.last_applied
    }

    /// The log (snapshot and entries).
    #[must_use]
    pub fn log(&self) -> &Log {
        &self.durable.log
    }

    /// What the node has asked to be persisted: what a restart would resume from, once the
    /// driver has performed every `Persist` output.
    #[must_use]
    pub fn durable_state(&self) -> &DurableState {
        &self.durable
    }

    /// Postcard size of the hard state and log entries (the labs' `RaftStateSize`).
    #[must_use]
    pub fn raft_state_size_bytes(&self) -> usize {
        self.durable.raft_state_size_bytes()
    }

    /// The leader's view of `peer`, when this node is leader.
    #[must_use]
    pub fn progress(&self, peer: NodeId) -> Option<&Progress> {
        if self.role != Role::Leader {
            return None;
        }
        let slot = self.peers.iter().position(|&p| p == peer)?;
        self.progress.get(slot)
    }

    /// The election timeout currently in force, in ticks.
    #[must_use]
    pub fn election_timeout_ticks(&self) -> u32 {
        self.election_timeout_ticks
    }

    // ----- Stepping -----

    /// Handles one input and returns what the driver must do.
    ///
    /// # The persistence contract
    ///
    /// Outputs must be performed in the order given. Everything a `Persist` output writes must be
    /// durable before the driver performs any later output of the same step. Within a step, every
    /// `Persist` comes before every `Send`, `Apply` and `Restore`: a vote, a term or a log entry
    /// is on disk before any message that depends on it leaves the node (etcd's rule: persist
    /// before send). That is what lets a node restarted from its durable state never contradict
    /// what it said before the crash: it cannot vote twice in a term, and it cannot forget an
    /// entry it acknowledged to a leader who then counted it towards a commit.
    pub fn step(&mut self, input: Input) -> Step {
        let mut outputs = Vec::new();
        let result = self.step_into(input, &mut outputs);
        Step { outputs, result }
    }

    /// Like [`Node::step`], appending the outputs to `outputs` so a driver can reuse one buffer.
    pub fn step_into(
        &mut self,
        input: Input,
        outputs: &mut Vec<Output>,
    ) -> Result<Accepted, Rejected> {
        let result = match input {
            Input::Tick => {
                self.tick();
                Ok(Accepted::Done)
            }
            Input::Receive { from, message } => {
                self.receive(from, message);
                Ok(Accepted::Done)
            }
            Input::Propose(command) => self.propose(command),
            Input::Compact { index, snapshot } => self.compact(index, snapshot),
        };
        self.deliver_committed();
        outputs.append(&mut self.persists);
        outputs.append(&mut self.sends);
        outputs.append(&mut self.deliveries);
        self.debug_assert_invariants();
        result
    }

    fn tick(&mut self) {
        match self.role {
            Role::Leader => self.tick_leader(),
            Role::Follower | Role::Candidate => {
                self.election_elapsed_ticks += 1;
                if self.election_elapsed_ticks >= self.election_timeout_ticks {
                    self.campaign();
                } else if self.role == Role::Candidate {
                    self.tick_candidate();
                }
            }
        }
    }

    /// A candidate asks again, every heartbeat interval, the voters that have not answered: a
    /// request or its reply may have been lost or be late (§5.1: servers retry RPCs that get no
    /// timely response). A voter that already granted grants again and restarts its election
    /// timer, so slow replies do not let the candidate's own voters time out under it.
    fn tick_candidate(&mut self) {
        self.heartbeat_elapsed_ticks += 1;
        if self.heartbeat_elapsed_ticks < self.config.heartbeat_ticks {
            return;
        }
        self.heartbeat_elapsed_ticks = 0;
        for slot in 0..self.peers.len() {
            let peer = self.peers[slot];
            if !self.votes_granted.contains(&peer) && !self.votes_refused.contains(&peer) {
                self.send(peer, self.vote_request());
            }
        }
    }

    /// This candidate's RequestVote: its last log index and term (the election restriction).
    fn vote_request(&self) -> Payload {
        let log = &self.durable.log;
        Payload::RequestVote {
            last_log_index: log.last_index(),
            last_log_term: log.last_term(),
        }
    }

    fn tick_leader(&mut self) {
        for slot in 0..self.peers.len() {
            if let ReplicationState::Snapshot { elapsed_ticks, .. } = &mut self.progress[slot].state
            {
                *elapsed_ticks += 1;
                if *elapsed_ticks >= self.config.election_ticks {
                    // The snapshot (or its reply) was probably lost: send the latest again.
                    self.send_snapshot(slot);
                }
            }
        }
        self.heartbeat_elapsed_ticks += 1;
        if self.heartbeat_elapsed_ticks >= self.config.heartbeat_ticks {
            self.heartbeat_elapsed_ticks = 0;
            for slot in 0..self.peers.len() {
                self.send_heartbeat(slot);
            }
        }
    }

    fn propose(&mut self, command: SharedBytes) -> Result<Accepted, Rejected> {
        if self.role != Role::Leader {
            return Err(Rejected::NotLeader {
                leader_hint: self.leader,
            });
        }
        let last_index = self.durable.log.last_index();
        if last_index >= Index::LAST {
            // One more entry would leave no room for a follower's `next_index` past it.
            return Err(Rejected::LogFull { last_index });
        }
        let entry = Entry {
            index: last_index.next(),
            term: self.term(),
            command,
        };
        let (index, term) = (entry.index, entry.term);
        self.persist(Persist::Append(vec![entry]));
        for slot in 0..self.peers.len() {
            self.send_append(slot, false);
        }
        self.leader_maybe_commit();
        Ok(Accepted::Proposed { index, term })
    }

    fn compact(&mut self, index: Index, data: Vec<u8>) -> Result<Accepted, Rejected> {
        if index <= self.durable.log.snapshot_index() {
            return Ok(Accepted::Done);
        }
        if index > self.last_applied {
            return Err(Rejected::CompactBeyondApplied {
                index,
                last_applied: self.last_applied,
            });
        }
        let term = self
            .durable
            .log
            .term_at(index)
            .expect("entries between the snapshot and last_applied are held in the log");
        self.persist(Persist::Snapshot(Snapshot { index, term, data }));
        Ok(Accepted::Done)
    }

    // ----- Receiving -----

    fn receive(&mut self, from: NodeId, message: Message) {
        if from == self.config.id || !self.peers.contains(&from) {
            return;
        }
        if message.term > self.term() {
            self.become_follower(message.term, None);
        } else if message.term < self.term() {
            self.answer_stale(from, &message.payload);
            return;
        }
        match message.payload {
            Payload::RequestVote {
                last_log_index,
                last_log_term,
            } => self.handle_request_vote(from, last_log_index, last_log_term),
            Payload::RequestVoteReply { granted } => self.handle_vote_reply(from, granted),
            Payload::AppendEntries {
                prev_index,
                prev_term,
                entries,
                leader_commit,
            } => self.handle_append_entries(from, prev_index, prev_term, entries, leader_commit),
            Payload::AppendEntriesReply { prev_index, result } => {
                self.handle_append_reply(from, prev_index, result);
            }
            Payload::InstallSnapshot { snapshot } => self.handle_install_snapshot(from, snapshot),
            Payload::InstallSnapshotReply { match_index } => {
                self.handle_snapshot_reply(from, match_index);
            }
        }
    }

    /// A request from an older term gets a refusal carrying our term, so its sender steps down.
    /// Replies from older terms are ignored. The refusals claim nothing a leader could act on.
    fn answer_stale(&mut self, from: NodeId, payload: &Payload) {
        let reply = match payload {
            Payload::RequestVote { .. } => Payload::RequestVoteReply { granted: false },
            Payload::AppendEntries { prev_index, .. } => Payload::AppendEntriesReply {
                prev_index: *prev_index,
                result: AppendResult::Success {
                    match_index: Index(0),
                },
            },
            Payload::InstallSnapshot { .. } => Payload::InstallSnapshotReply {
                match_index: Index(0),
            },
            Payload::RequestVoteReply { .. }
            | Payload::AppendEntriesReply { .. }
            | Payload::InstallSnapshotReply { .. } => return,
        };
        self.send(from, reply);
    }

    fn handle_request_vote(&mut self, from: NodeId, last_log_index: Index, last_log_term: Term) {
        let log = &self.durable.log;
        // The election restriction (§5.4.1): only a candidate at least as up to date as we are.
        let up_to_date = (last_log_term, last_log_index) >= (log.last_term(), log.last_index());
        let free = match self.voted_for() {
            None => true,
            Some(vote) => vote == from,
        };
        let granted = free && up_to_date;
        if granted {
            self.durable.hard_state.voted_for = Some(from);
            self.persist_hard_state();
            self.election_elapsed_ticks = 0;
        }
        self.send(from, Payload::RequestVoteReply { granted });
    }

    fn handle_vote_reply(&mut self, from: NodeId, granted: bool) {
        if self.role != Role::Candidate {
            return;
        }
        if !granted {
            if !self.votes_refused.contains(&from) {
                self.votes_refused.push(from);
            }
            return;
        }
        if !self.votes_granted.contains(&from) {
            self.votes_granted.push(from);
        }
        if self.votes_granted.len() >= quorum::majority(self.config.voters.len()) {
            self.become_leader();
        }
    }

    fn handle_append_entries(
        &mut self,
        from: NodeId,
        prev_index: Index,
        prev_term: Term,
        mut entries: Vec<Entry>,
        leader_commit: Index,
    ) {
        if !self.accept_leader(from) {
            return;
        }
        let request_prev_index = prev_index;
        let log = &self.durable.log;
        // Entries up to our snapshot are committed, hence equal to the leader's: skip them.
        let snapshot_index = log.snapshot_index();
        let (mut prev_index, mut prev_term) = (prev_index, prev_term);
        if prev_index < snapshot_index {
            let behind = snapshot_index.0 - prev_index.0;
            let skip = usize::try_from(behind)
                .unwrap_or(usize::MAX)
                .min(entries.len());
            entries.drain(..skip);
            prev_index = snapshot_index;
            prev_term = log.snapshot_term();
        }
        let result = match log.term_at(prev_index) {
            None => AppendResult::Conflict(ConflictHint {
                conflict_term: None,
                first_index_of_term: log.last_index().next(),
                last_index: log.last_index(),
            }),
            Some(term) if term != prev_term => AppendResult::Conflict(ConflictHint {
                conflict_term: Some(term),
                first_index_of_term: log.first_index_of_term_at(prev_index),
                last_index: log.last_index(),
            }),
            Some(_) => {
                let Some(match_index) = self.append_from_leader(prev_index, entries) else {
                    return;
                };
                let commit = leader_commit.min(match_index);
                if commit > self.commit_index {
                    self.commit_index = commit;
                }
                AppendResult::Success { match_index }
            }
        };
        self.send(
            from,
            Payload::AppendEntriesReply {
                prev_index: request_prev_index,
                result,
            },
        );
    }

    /// Stores the leader's entries after a matching `prev_index`, truncating only at the first
    /// conflicting entry: a stale or duplicate `AppendEntries` whose entries we already hold
    /// changes nothing. Returns the index up to which our log now matches the leader's, or `None`
    /// when the message would rewrite committed entries (impossible from a real leader; such a
    /// message is dropped).
    fn append_from_leader(&mut self, prev_index: Index, mut entries: Vec<Entry>) -> Option<Index> {
        let match_index = prev_index.plus(entries.len() as u64);
        if match_index > Index::LAST {
            return None; // Past the last usable index: nonsense.
        }
        let log = &self.durable.log;
        let first_new = entries
            .iter()
            .position(|e| log.term_at(e.index) != Some(e.term));
        let expected = |k: usize| prev_index.plus(k as u64 + 1);
        if entries
            .iter()
            .enumerate()
            .any(|(k, e)| e.index != expected(k))
        {
            return None;
        }
        // Terms never decrease along a leader's log; a message where they do is nonsense.
        let prev_term = log.term_at(prev_index).unwrap_or(Term(0));
        if !std::iter::once(prev_term)
            .chain(entries.iter().map(|e| e.term))
            .is_sorted()
        {
            return None;
        }
        if let Some(k) = first_new {
            let new_entries = entries.split_off(k);
            if new_entries[0].index <= self.commit_index
                || new_entries.last().is_some_and(|e| e.term > self.term())
            {
                return None;
            }
            self.persist(Persist::Append(new_entries));
        }
        Some(match_index)
    }

    fn handle_install_snapshot(&mut self, from: NodeId, snapshot: Snapshot) {
        if !self.accept_leader(from) {
            return;
        }
        if snapshot.index <= self.commit_index
            || snapshot.term > self.term()
            || snapshot.index > Index::LAST
        {
            // Nothing new (we hold everything it covers), or nonsense: from the future, or past
            // the last usable index.
            let match_index = self.commit_index;
            self.send(from, Payload::InstallSnapshotReply { match_index });
            return;
        }
        let index = snapshot.index;
        self.persist(Persist::Snapshot(snapshot.clone()));
        self.commit_index = index;
        self.last_applied = index;
        self.deliveries.push(Output::Restore(snapshot));
        self.send(from, Payload::InstallSnapshotReply { match_index: index });
    }

    /// A current-term message from a leader: follow it. Returns false if we lead this term
    /// ourselves (two leaders in one term cannot happen with correct peers; ignore the sender).
    fn accept_leader(&mut self, from: NodeId) -> bool {
        match self.role {
            Role::Leader => return false,
            Role::Candidate => self.become_follower(self.term(), Some(from)),
            Role::Follower => {}
        }
        self.leader = Some(from);
        self.election_elapsed_ticks = 0;
        true
    }

    fn handle_append_reply(&mut self, from: NodeId, prev_index: Index, result: AppendResult) {
        if self.role != Role::Leader {
            return;
        }
        let Some(slot) = self.slot_of(from) else {
            return;
        };
        match result {
            AppendResult::Success { match_index } => self.on_follower_match(slot, match_index),
            AppendResult::Conflict(hint) => self.on_follower_conflict(slot, prev_index, hint),
        }
    }

    fn handle_snapshot_reply(&mut self, from: NodeId, match_index: Index) {
        if self.role != Role::Leader {
            return;
        }
        if let Some(slot) = self.slot_of(from) {
            self.on_follower_match(slot, match_index);
        }
    }

    /// The follower's log matches ours up to `match_index`. Every success from the current term
    /// is true when received: within a term a follower only truncates entries that conflict with
    /// this leader's, so a stale success still describes a prefix it holds.
    fn on_follower_match(&mut self, slot: usize, match_index: Index) {
        if match_index > self.durable.log.last_index() {
            return; // Claims entries we never sent.
        }
        let progress = &mut self.progress[slot];
        let news = progress.on_match(match_index);
        match progress.state {
            ReplicationState::Probe => progress.become_replicate(),
            ReplicationState::Snapshot { .. } => {
                if self.durable.log.term_at(progress.match_index).is_some() {
                    progress.become_replicate();
                }
            }
            ReplicationState::Replicate => {}
        }
        if news {
            self.leader_maybe_commit();
        }
        self.send_append(slot, false);
    }

    /// The follower's log does not match at `prev_index`: back up using its hint, skipping a
    /// whole conflicting term per round trip. Stale rejections are ignored, so `next_index`
    /// never drops below `match_index + 1`.
    fn on_follower_conflict(&mut self, slot: usize, prev_index: Index, hint: ConflictHint) {
        let progress = &self.progress[slot];
        let current = match progress.state {
            ReplicationState::Replicate => prev_index > progress.match_index,
            ReplicationState::Probe => prev_index.next() == progress.next_index,
            ReplicationState::Snapshot { .. } => false,
        };
        if !current {
            return;
        }
        let suggested = match hint.conflict_term {
            None => hint.last_index.next(),
            Some(term) => match self.durable.log.last_index_of_term(term) {
                Some(last) => last.next(),
                None => hint.first_index_of_term,
            },
        };
        // Always back up by at least one, and never past the match.
        let next = suggested.min(prev_index).max(Index(1));
        self.progress[slot].become_probe(next);
        self.send_append(slot, true);
    }

    // ----- Leader: sending -----

    /// Sends entries from `next_index` if the follower's state allows it; with `allow_empty`, also
    /// when there is nothing new (a probe). Falls back to the snapshot when the entries are gone.
    fn send_append(&mut self, slot: usize, allow_empty: bool) {
        let progress = &self.progress[slot];
        if !progress.can_send(self.config.max_inflight_appends) {
            return;
        }
        let log = &self.durable.log;
        let prev_index = progress.next_index.prev();
        let Some(prev_term) = log.term_at(prev_index) else {
            self.send_snapshot(slot);
            return;
        };
        let entries = log.slice(
            progress.next_index,
            self.config.max_entries_per_append,
            self.config.max_bytes_per_append,
        );
        if entries.is_empty() && !allow_empty {
            return;
        }
        let last = prev_index.plus(entries.len() as u64);
        self.progress[slot].on_sent(last);
        self.send_append_message(slot, prev_index, prev_term, entries);
    }

    /// A heartbeat keeps followers from starting elections and carries the commit index. It does
    /// not count against the inflight window; its reply confirms or repairs the follower's log.
    fn send_heartbeat(&mut self, slot: usize) {
        let progress = &mut self.progress[slot];
        match progress.state {
            ReplicationState::Probe => {
                progress.probe_sent = false;
                self.send_append(slot, true);
            }
            ReplicationState::Replicate => {
                let prev_index = progress.next_index.prev();
                match self.durable.log.term_at(prev_index) {
                    Some(prev_term) => {
                        self.send_append_message(slot, prev_index, prev_term, Vec::new());
                    }
                    None => self.send_snapshot(slot),
                }
            }
            ReplicationState::Snapshot { .. } => {
                // Index 0 matches every log; the reply reports how far the follower has got.
                self.send_append_message(slot, Index(0), Term(0), Vec::new());
            }
        }
    }

    fn send_snapshot(&mut self, slot: usize) {
        let Some(snapshot) = self.durable.log.snapshot().cloned() else {
            return; // Every index is held when there is no snapshot; nothing to fall back to.
        };
        self.progress[slot].become_snapshot(snapshot.index);
        self.send(self.peers[slot], Payload::InstallSnapshot { snapshot });
    }

    fn send_append_message(
        &mut self,
        slot: usize,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
    ) {
        let payload = Payload::AppendEntries {
            prev_index,
            prev_term,
            entries,
            leader_commit: self.commit_index,
        };
        self.send(self.peers[slot], payload);
    }

    /// Commits the highest index a majority holds, but only if it is from the current term
    /// (Figure 8: an old-term entry is committed only indirectly, by a current-term one after it).
    fn leader_maybe_commit(&mut self) {
        self.scratch.clear();
        self.scratch.push(self.durable.log.last_index());
        self.scratch
            .extend(self.progress.iter().map(|p| p.match_index));
        let candidate = quorum::committed_index(&mut self.scratch);
        if candidate > self.commit_index && self.durable.log.term_at(candidate) == Some(self.term())
        {
            self.commit_index = candidate;
        }
    }

    // ----- Role changes -----

    fn campaign(&mut self) {
        let term = self.term().next();
        if term == self.term() {
            // The term is saturated (only a nonsense message gets it there): campaigning in it
            // again would cast a second vote in one term.
            self.reset_election_timer();
            return;
        }
        self.durable.hard_state = HardState {
            term,
            voted_for: Some(self.config.id),
        };
        self.persist_hard_state();
        self.role = Role::Candidate;
        self.leader = None;
        self.progress.clear();
        self.votes_granted.clear();
        self.votes_granted.push(self.config.id);
        self.votes_refused.clear();
        self.heartbeat_elapsed_ticks = 0;
        self.reset_election_timer();
        if self.votes_granted.len() >= quorum::majority(self.config.voters.len()) {
            self.become_leader();
            return;
        }
        let payload = self.vote_request();
        for slot in 0..self.peers.len() {
            self.send(self.peers[slot], payload.clone());
        }
    }

    fn become_leader(&mut self) {
        debug_assert_eq!(
            self.role,
            Role::Candidate,
            "only a candidate wins an election"
        );
        debug_assert_eq!(
            self.voted_for(),
            Some(self.config.id),
            "a leader voted for itself"
        );
        self.role = Role::Leader;
        self.leader = Some(self.config.id);
        self.votes_granted.clear();
        self.votes_refused.clear();
        self.heartbeat_elapsed_ticks = 0;
        let last = self.durable.log.last_index();
        self.progress = self.peers.iter().map(|_| Progress::new(last)).collect();
        for slot in 0..self.peers.len() {
            self.send_append(slot, true);
        }
    }

    /// Follows `leader` in `term`. A higher term clears the vote (and is persisted).
    ///
    /// The election timer keeps running: only a leader's AppendEntries, a granted vote or a new
    /// campaign restart it (Figure 2). Restarting it on every higher term lets candidates that
    /// cannot win (their logs are behind) hold back, election after election, the nodes that
    /// could: with clocks that make the stale nodes time out first, the cluster never elects a
    /// leader again (found by swarm/snapshots/n5, seed 0x7a12ece75a6b704).
    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.term() {
            self.durable.hard_state = HardState {
                term,
                voted_for: None,
            };
            self.persist_hard_state();
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.progress.clear();
        self.votes_granted.clear();
        self.votes_refused.clear();
    }

    fn reset_election_timer(&mut self) {
        let min = self.config.election_ticks;
        self.election_timeout_ticks = self.rng.random_range(min..2 * min);
        self.election_elapsed_ticks = 0;
    }

    // ----- Outputs -----

    /// Applies `op` to the node's own durable view and queues it for the driver, so both evolve
    /// through the same code.
    fn persist(&mut self, op: Persist) {
        if let Err(error) = self.durable.apply(&op) {
            unreachable!("the core produced a persist operation that does not fit: {error}");
        }
        self.persists.push(Output::Persist(op));
    }

    /// Queues the current hard state; two writes in one step collapse into the last.
    fn persist_hard_state(&mut self) {
        let op = Output::Persist(Persist::HardState(self.durable.hard_state));
        if let Some(last @ Output::Persist(Persist::HardState(_))) = self.persists.last_mut() {
            *last = op;
        } else {
            self.persists.push(op);
        }
    }

    fn send(&mut self, to: NodeId, payload: Payload) {
        let message = Message {
            term: self.term(),
            payload,
        };
        self.sends.push(Output::Send { to, message });
    }

    /// Queues newly committed entries for the state machine, in index order, each once.
    fn deliver_committed(&mut self) {
        if self.commit_index <= self.last_applied {
            return;
        }
        let from = self.last_applied.next();
        let count =
            usize::try_from(self.commit_index.0 - self.last_applied.0).unwrap_or(usize::MAX);
        let entries = self.durable.log.slice(from, count, usize::MAX);
        debug_assert_eq!(
            entries.len(),
            count,
            "committed entries above the snapshot are held"
        );
        self.last_applied = self.commit_index;
        self.deliveries.push(Output::Apply(entries));
    }

    fn slot_of(&self, peer: NodeId) -> Option<usize> {
        self.peers.iter().position(|&p| p == peer)
    }

    fn debug_assert_invariants(&self) {
        let log = &self.durable.log;
        debug_assert!(
            log.snapshot_index() <= self.last_applied,
            "snapshot <= applied"
        );
        debug_assert!(self.last_applied <= self.commit_index, "applied <= commit");
        debug_assert!(
            self.commit_index <= log.last_index(),
            "commit <= last index"
        );
        debug_assert!(
            log.last_term() <= self.term(),
            "no log entry from the future"
        );
        if self.role == Role::Leader {
            debug_assert_eq!(self.voted_for(), Some(self.config.id));
            debug_assert_eq!(self.progress.len(), self.peers.len());
            for progress in &self.progress {
                debug_assert!(progress.next_index > progress.match_index);
                debug_assert!(progress.match_index <= log.last_index());
            }
        } else {
            debug_assert!(self.progress.is_empty(), "only a leader tracks progress");
        }
    }
}
