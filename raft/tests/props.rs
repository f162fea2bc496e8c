//! Property tests: arbitrary inputs to one node never panic and keep its invariants after every
//! step; arbitrary bytes never panic the decoders.
//!
//! Inputs are generated symbolically ("a term two above the node's", "an index near its last")
//! and made concrete against the node's state when stepped, so the messages hit the interesting
//! cases (matching prefixes, current terms) often, besides arbitrary and far-off values.

mod common;

use common::*;
use proptest::prelude::*;
use raft::{
    Accepted, AppendResult, ConflictHint, DurableState, Entry, Index, Input, Message, Node, NodeId,
    Output, Payload, Rejected, Role, Snapshot, Step, Term,
};
use std::collections::BTreeMap;

// ----- Symbolic inputs -----

#[derive(Clone, Debug)]
enum TermPick {
    Relative(i8),
    Absolute(u64),
}

#[derive(Clone, Debug)]
enum IndexPick {
    NearLast(i8),
    NearCommit(i8),
    NearSnapshot(i8),
    Absolute(u64),
}

#[derive(Clone, Debug)]
enum PrevTermPick {
    /// The term the node holds at the previous index (so the append usually matches).
    Held,
    Other(TermPick),
}

#[derive(Clone, Debug)]
struct EntriesPick {
    /// Per entry: term increment over the previous entry (ascending) and command length.
    steps: Vec<(u8, u8)>,
    /// Terms relative to the message's term instead of ascending from the previous entry.
    random_terms: Option<Vec<TermPick>>,
    /// Shift every index off the contiguous run.
    index_shift: Option<i8>,
}

#[derive(Clone, Debug)]
enum ResultPick {
    Success(IndexPick),
    Conflict {
        term: Option<TermPick>,
        first: IndexPick,
        last: IndexPick,
    },
}

#[derive(Clone, Debug)]
enum PayloadPick {
    RequestVote {
        last_index: IndexPick,
        last_term: TermPick,
    },
    VoteReply {
        granted: bool,
    },
    Append {
        prev: IndexPick,
        prev_term: PrevTermPick,
        entries: EntriesPick,
        commit: IndexPick,
    },
    AppendReply {
        prev: IndexPick,
        result: ResultPick,
    },
    InstallSnapshot {
        index: IndexPick,
        term: PrevTermPick,
        data: Vec<u8>,
    },
    SnapshotReply {
        match_index: IndexPick,
    },
}

#[derive(Clone, Debug)]
enum Op {
    Tick,
    Propose(Vec<u8>),
    Compact {
        index: IndexPick,
    },
    Receive {
        from: u32,
        term: TermPick,
        payload: PayloadPick,
    },
    /// Crash and restore from the persisted state.
    Restart,
}

fn term_pick() -> impl Strategy<Value = TermPick> {
    // A huge term sticks for the rest of a run, so it is rare enough that most runs stay in
    // ordinary terms.
    prop_oneof![
        240 => (-2i8..=2).prop_map(TermPick::Relative),
        60 => (0u64..8).prop_map(TermPick::Absolute),
        1 => prop_oneof![Just(u64::MAX), Just(u64::MAX - 1), any::<u64>()]
            .prop_map(TermPick::Absolute),
    ]
}

fn index_pick() -> impl Strategy<Value = IndexPick> {
    prop_oneof![
        5 => (-4i8..=3).prop_map(IndexPick::NearLast),
        2 => (-2i8..=2).prop_map(IndexPick::NearCommit),
        2 => (-2i8..=2).prop_map(IndexPick::NearSnapshot),
        1 => prop_oneof![0u64..20, Just(u64::MAX), any::<u64>()].prop_map(IndexPick::Absolute),
    ]
}

fn prev_term_pick() -> impl Strategy<Value = PrevTermPick> {
    prop_oneof![
        4 => Just(PrevTermPick::Held),
        1 => term_pick().prop_map(PrevTermPick::Other),
    ]
}

fn entries_pick() -> impl Strategy<Value = EntriesPick> {
    (
        prop::collection::vec((prop_oneof![4 => Just(0u8), 1 => 1u8..3], 0u8..4), 0..6),
        prop::option::weighted(0.1, prop::collection::vec(term_pick(), 6)),
        prop::option::weighted(0.1, -3i8..=3),
    )
        .prop_map(|(steps, random_terms, index_shift)| EntriesPick {
            steps,
            random_terms,
            index_shift,
        })
}

fn result_pick() -> impl Strategy<Value = ResultPick> {
    prop_oneof![
        index_pick().prop_map(ResultPick::Success),
        (prop::option::of(term_pick()), index_pick(), index_pick())
            .prop_map(|(term, first, last)| ResultPick::Conflict { term, first, last }),
    ]
}

fn payload_pick() -> impl Strategy<Value = PayloadPick> {
    prop_oneof![
        2 => (index_pick(), term_pick()).prop_map(|(last_index, last_term)| {
            PayloadPick::RequestVote { last_index, last_term }
        }),
        2 => any::<bool>().prop_map(|granted| PayloadPick::VoteReply { granted }),
        4 => (index_pick(), prev_term_pick(), entries_pick(), index_pick()).prop_map(
            |(prev, prev_term, entries, commit)| PayloadPick::Append {
                prev,
                prev_term,
                entries,
                commit,
            }
        ),
        3 => (index_pick(), result_pick())
            .prop_map(|(prev, result)| PayloadPick::AppendReply { prev, result }),
        1 => (index_pick(), prev_term_pick(), prop::collection::vec(any::<u8>(), 0..4))
            .prop_map(|(index, term, data)| PayloadPick::InstallSnapshot { index, term, data }),
        1 => index_pick().prop_map(|match_index| PayloadPick::SnapshotReply { match_index }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => Just(Op::Tick),
        3 => prop::collection::vec(any::<u8>(), 0..8).prop_map(Op::Propose),
        1 => index_pick().prop_map(|index| Op::Compact { index }),
        // Peers 2 and 3 mostly; 0 and 4 are unknown, 1 is the node itself.
        14 => (prop_oneof![8 => 2u32..=3, 1 => 0u32..=4], term_pick(), payload_pick())
            .prop_map(|(from, term, payload)| Op::Receive { from, term, payload }),
        1 => Just(Op::Restart),
    ]
}

// ----- Making symbolic inputs concrete -----

fn shift(base: u64, delta: i8) -> u64 {
    base.saturating_add_signed(i64::from(delta))
}

fn term_of(pick: &TermPick, node: &Node) -> Term {
    match *pick {
        TermPick::Relative(d) => Term(shift(node.term().0, d)),
        TermPick::Absolute(t) => Term(t),
    }
}

fn index_of(pick: &IndexPick, node: &Node) -> Index {
    match *pick {
        IndexPick::NearLast(d) => Index(shift(node.log().last_index().0, d)),
        IndexPick::NearCommit(d) => Index(shift(node.commit_index().0, d)),
        IndexPick::NearSnapshot(d) => Index(shift(node.log().snapshot_index().0, d)),
        IndexPick::Absolute(i) => Index(i),
    }
}

fn prev_term_of(pick: &PrevTermPick, index: Index, node: &Node) -> Term {
    match pick {
        PrevTermPick::Held => node.log().term_at(index).unwrap_or(node.term()),
        PrevTermPick::Other(t) => term_of(t, node),
    }
}

fn entries_of(
    pick: &EntriesPick,
    prev: Index,
    prev_term: Term,
    message_term: Term,
    node: &Node,
) -> Vec<Entry> {
    let mut term = prev_term;
    pick.steps
        .iter()
        .enumerate()
        .map(|(k, &(step, len))| {
            term = match &pick.random_terms {
                Some(terms) => Term(term_of(&terms[k], node).0.min(message_term.0.max(1))),
                None => Term(term.0.saturating_add(u64::from(step)).min(message_term.0)),
            };
            let index = prev.0.saturating_add(k as u64 + 1);
            let index = pick.index_shift.map_or(index, |d| shift(index, d));
            Entry {
                index: Index(index),
                term,
                command: vec![k as u8; usize::from(len)].into(),
            }
        })
        .collect()
}

fn payload_of(pick: &PayloadPick, term: Term, node: &Node) -> Payload {
    match pick {
        PayloadPick::RequestVote {
            last_index,
            last_term,
        } => Payload::RequestVote {
            last_log_index: index_of(last_index, node),
            last_log_term: term_of(last_term, node),
        },
        PayloadPick::VoteReply { granted } => Payload::RequestVoteReply { granted: *granted },
        PayloadPick::Append {
            prev,
            prev_term,
            entries,
            commit,
        } => {
            let prev_index = index_of(prev, node);
            let prev_term = prev_term_of(prev_term, prev_index, node);
            Payload::AppendEntries {
                prev_index,
                prev_term,
                entries: entries_of(entries, prev_index, prev_term, term, node),
                leader_commit: index_of(commit, node),
            }
        }
        PayloadPick::AppendReply { prev, result } => Payload::AppendEntriesReply {
            prev_index: index_of(prev, node),
            result: match result {
                ResultPick::Success(m) => AppendResult::Success {
                    match_index: index_of(m, node),
                },
                ResultPick::Conflict { term, first, last } => {
                    AppendResult::Conflict(ConflictHint {
                        conflict_term: term.as_ref().map(|t| term_of(t, node)),
                        first_index_of_term: index_of(first, node),
                        last_index: index_of(last, node),
                    })
                }
            },
        },
        PayloadPick::InstallSnapshot { index, term, data } => {
            let index = index_of(index, node);
            Payload::InstallSnapshot {
                snapshot: Snapshot {
                    index,
                    term: prev_term_of(term, index, node),
                    data: data.clone(),
                },
            }
        }
        PayloadPick::SnapshotReply { match_index } => Payload::InstallSnapshotReply {
            match_index: index_of(match_index, node),
        },
    }
}

fn input_of(op: &Op, node: &Node) -> Option<Input> {
    Some(match op {
        Op::Tick => Input::Tick,
        Op::Propose(command) => Input::Propose(command.clone().into()),
        Op::Compact { index } => Input::Compact {
            index: index_of(index, node),
            snapshot: b"snap".to_vec(),
        },
        Op::Receive {
            from,
            term,
            payload,
        } => {
            let term = term_of(term, node);
            Input::Receive {
                from: NodeId(*from),
                message: Message {
                    term,
                    payload: payload_of(payload, term, node),
                },
            }
        }
        Op::Restart => return None,
    })
}

// ----- The invariants, checked after every step -----

/// What the checker remembers between steps of one node (across restarts).
struct Checker {
    term: Term,
    vote: Option<NodeId>,
    commit: Index,
    applied: Index,
    /// What a driver's store holds: the persist outputs, replayed.
    durable: DurableState,
    /// The same persists replayed by value (`apply_owned`): must end up equal to `durable`.
    durable_owned: DurableState,
    /// Every entry delivered to the state machine in this incarnation, by index: committed
    /// entries never change.
    delivered: BTreeMap<Index, Entry>,
}

impl Checker {
    fn new() -> Checker {
        Checker {
            term: Term(0),
            vote: None,
            commit: Index(0),
            applied: Index(0),
            durable: DurableState::default(),
            durable_owned: DurableState::default(),
            delivered: BTreeMap::new(),
        }
    }

    fn restarted(&mut self, node: &Node) {
        // A restarted node knows only its snapshot to be committed; past that, only a real
        // leader (not these arbitrary messages) keeps committed entries from being rewritten.
        self.delivered.clear();
        self.commit = node.commit_index();
        self.applied = node.last_applied();
        assert_eq!(self.applied, self.durable.log.snapshot_index());
    }

    fn check(&mut self, node: &Node, was_leader: bool, input: &Input, step: &Step) {
        self.check_outputs(node, step);
        self.check_terms_and_votes(node);
        self.check_indices(node);
        self.check_result(node, was_leader, input, step);
    }

    fn check_outputs(&mut self, node: &Node, step: &Step) {
        assert_persists_first(&step.outputs);
        for output in &step.outputs {
            match output {
                Output::Persist(op) => {
                    self.durable.apply(op).expect("persists fit the store");
                    self.durable_owned
                        .apply_owned(op.clone())
                        .expect("persists fit the store when moved in");
                }
                Output::Send { to, message } => {
                    assert_ne!(*to, node.id(), "never sends to itself");
                    assert!(node.config().voters.contains(to), "sends only to voters");
                    assert_eq!(message.term, node.term(), "messages carry the current term");
                }
                Output::Apply(entries) => {
                    assert!(!entries.is_empty(), "no empty Apply");
                    for entry in entries {
                        assert_eq!(
                            entry.index,
                            self.applied.next(),
                            "applied indices are consecutive"
                        );
                        self.applied = entry.index;
                        if let Some(held) = node.log().entry(entry.index) {
                            assert_eq!(held, entry, "applies what the log holds");
                        }
                        self.delivered.insert(entry.index, entry.clone());
                    }
                }
                Output::Restore(snapshot) => {
                    assert!(
                        snapshot.index > self.applied,
                        "a restore only moves forward"
                    );
                    self.applied = snapshot.index;
                }
            }
        }
        assert_eq!(
            &self.durable,
            node.durable_state(),
            "replayed persists = durable view"
        );
        assert_eq!(
            &self.durable_owned,
            node.durable_state(),
            "persists replayed by value = durable view"
        );
        assert_eq!(self.applied, node.last_applied());
    }

    fn check_terms_and_votes(&mut self, node: &Node) {
        assert!(node.term() >= self.term, "term is monotonic");
        if node.term() == self.term && self.vote.is_some() {
            assert_eq!(node.voted_for(), self.vote, "at most one vote per term");
        }
        self.term = node.term();
        self.vote = node.voted_for();
        if node.role() == Role::Leader {
            assert_eq!(
                node.voted_for(),
                Some(node.id()),
                "leads only a term it voted itself in"
            );
            assert_eq!(node.leader(), Some(node.id()));
        }
        assert!(
            node.log().last_term() <= node.term(),
            "no entry from a future term"
        );
    }

    fn check_indices(&mut self, node: &Node) {
        let log = node.log();
        assert!(node.commit_index() >= self.commit, "commit is monotonic");
        self.commit = node.commit_index();
        assert!(
            node.commit_index() <= log.last_index(),
            "commit <= last index"
        );
        assert!(
            node.last_applied() <= node.commit_index(),
            "applied <= commit"
        );
        assert!(
            log.snapshot_index() <= node.last_applied(),
            "snapshot <= applied"
        );
        for (index, entry) in self.delivered.range(log.first_index()..) {
            if let Some(held) = log.entry(*index) {
                assert_eq!(held, entry, "a committed entry never changes");
            }
        }
        if node.role() == Role::Leader {
            for peer in peers_of(node) {
                let progress = node.progress(peer).expect("a leader tracks every peer");
                assert!(progress.next_index > progress.match_index);
                assert!(progress.match_index <= log.last_index());
            }
        }
    }

    fn check_result(&self, node: &Node, was_leader: bool, input: &Input, step: &Step) {
        match (input, &step.result) {
            (Input::Propose(_), Ok(Accepted::Proposed { index, term })) => {
                assert!(was_leader, "only a leader accepts proposals");
                assert_eq!(*term, node.term());
                assert_eq!(node.log().term_at(*index), Some(*term));
            }
            (Input::Propose(_), Err(Rejected::NotLeader { .. })) => {
                assert!(!was_leader);
                assert!(step.outputs.is_empty(), "a rejected input changes nothing");
            }
            (Input::Propose(_), Err(Rejected::LogFull { last_index })) => {
                assert!(was_leader);
                assert!(*last_index >= Index::LAST);
                assert!(step.outputs.is_empty(), "a rejected input changes nothing");
            }
            (Input::Propose(_), Err(Rejected::CompactBeyondApplied { .. })) => {
                panic!("a proposal is not a compaction")
            }
            (Input::Compact { .. }, Err(_)) => assert!(step.outputs.is_empty()),
            (_, Ok(Accepted::Proposed { .. })) => panic!("only proposals are proposed"),
            (_, _) => {}
        }
    }
}

/// Short timeouts and small limits, so elections, retries and the limits all happen within a
/// few hundred inputs.
fn small_config() -> raft::Config {
    let mut config = config(1, 3);
    config.election_ticks = 4;
    config.heartbeat_ticks = 2;
    config.max_entries_per_append = 3;
    config.max_inflight_appends = 2;
    config
}

fn run_ops(ops: &[Op]) {
    let config = small_config();
    let mut node = Node::new(config.clone()).expect("valid config");
    let mut checker = Checker::new();
    let mut incarnation = 0;
    for op in ops {
        let Some(input) = input_of(op, &node) else {
            incarnation += 1;
            let mut config = config.clone();
            config.seed += incarnation;
            node = Node::restore(config, checker.durable.clone()).expect("restore own persists");
            checker.restarted(&node);
            continue;
        };
        let was_leader = node.role() == Role::Leader;
        let step = node.step(input.clone());
        checker.check(&node, was_leader, &input, &step);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_inputs_never_panic_and_keep_the_invariants(
        ops in prop::collection::vec(op(), 1..300)
    ) {
        run_ops(&ops);
    }
}

// ----- A campaign that makes the node leader first, so the leader paths get most inputs -----

fn run_ops_as_leader(ops: &[Op]) {
    let mut node = Node::new(small_config()).expect("valid config");
    let mut checker = Checker::new();
    let step = tick_until_campaign(&mut node);
    checker.check(&node, false, &Input::Tick, &step);
    let input = Input::Receive {
        from: id(2),
        message: Message {
            term: node.term(),
            payload: Payload::RequestVoteReply { granted: true },
        },
    };
    let step = node.step(input.clone());
    checker.check(&node, false, &input, &step);
    assert_eq!(node.role(), Role::Leader);
    for op in ops {
        let Some(input) = input_of(op, &node) else {
            continue;
        };
        let was_leader = node.role() == Role::Leader;
        let step = node.step(input.clone());
        checker.check(&node, was_leader, &input, &step);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_inputs_to_a_leader_never_panic_and_keep_the_invariants(
        ops in prop::collection::vec(op(), 1..200)
    ) {
        run_ops_as_leader(&ops);
    }
}

// ----- Decoders -----

/// `Entry` as it was before commands were shared: the encodings must stay byte-identical.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct VecEntry {
    index: u64,
    term: u64,
    command: Vec<u8>,
}

impl From<&Entry> for VecEntry {
    fn from(entry: &Entry) -> VecEntry {
        VecEntry {
            index: entry.index.0,
            term: entry.term.0,
            command: entry.command.to_vec(),
        }
    }
}

fn arbitrary_entry() -> impl Strategy<Value = Entry> {
    (
        any::<u64>(),
        any::<u64>(),
        prop::collection::vec(any::<u8>(), 0..6),
    )
        .prop_map(|(index, term, command)| Entry {
            index: Index(index),
            term: Term(term),
            command: command.into(),
        })
}

fn arbitrary_message() -> impl Strategy<Value = Message> {
    let index = || any::<u64>().prop_map(Index);
    let term = || any::<u64>().prop_map(Term);
    let payload = prop_oneof![
        (index(), term()).prop_map(|(last_log_index, last_log_term)| Payload::RequestVote {
            last_log_index,
            last_log_term
        }),
        any::<bool>().prop_map(|granted| Payload::RequestVoteReply { granted }),
        (
            index(),
            term(),
            prop::collection::vec(arbitrary_entry(), 0..4),
            index()
        )
            .prop_map(|(prev_index, prev_term, entries, leader_commit)| {
                Payload::AppendEntries {
                    prev_index,
                    prev_term,
                    entries,
                    leader_commit,
                }
            }),
        (index(), index()).prop_map(|(prev_index, match_index)| Payload::AppendEntriesReply {
            prev_index,
            result: AppendResult::Success { match_index }
        }),
        (index(), prop::option::of(term()), index(), index()).prop_map(
            |(prev_index, conflict_term, first_index_of_term, last_index)| {
                Payload::AppendEntriesReply {
                    prev_index,
                    result: AppendResult::Conflict(ConflictHint {
                        conflict_term,
                        first_index_of_term,
                        last_index,
                    }),
                }
            }
        ),
        (index(), term(), prop::collection::vec(any::<u8>(), 0..8)).prop_map(
            |(index, term, data)| Payload::InstallSnapshot {
                snapshot: Snapshot { index, term, data }
            }
        ),
        index().prop_map(|match_index| Payload::InstallSnapshotReply { match_index }),
    ];
    (term(), payload).prop_map(|(term, payload)| Message { term, payload })
}

/// A valid durable state, built by a short run of arbitrary inputs.
fn valid_durable_state(ops: &[Op]) -> DurableState {
    let mut node = Node::new(small_config()).expect("valid config");
    for op in ops {
        if let Some(input) = input_of(op, &node) {
            node.step(input);
        }
    }
    node.durable_state().clone()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn message_decode_of_arbitrary_bytes_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..64)
    ) {
        if let Ok(message) = Message::decode(&bytes) {
            prop_assert_eq!(Message::decode(&message.encode()).ok(), Some(message));
        }
    }

    #[test]
    fn message_decode_of_a_corrupted_encoding_never_panics(
        message in arbitrary_message(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = message.encode();
        prop_assert_eq!(Message::decode(&bytes).ok(), Some(message));
        for (at, value) in flips {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        let _ = Message::decode(&bytes);
        bytes.truncate(cut.index(bytes.len()));
        let _ = Message::decode(&bytes);
    }

    #[test]
    fn entries_encode_and_decode_exactly_as_with_vec_commands(
        entries in prop::collection::vec(arbitrary_entry(), 0..4),
        bytes in prop::collection::vec(any::<u8>(), 0..48),
    ) {
        let mirror: Vec<VecEntry> = entries.iter().map(VecEntry::from).collect();
        let encoded = postcard::to_allocvec(&mirror).unwrap();
        prop_assert_eq!(postcard::to_allocvec(&entries).unwrap(), encoded.clone());
        prop_assert_eq!(postcard::from_bytes::<Vec<Entry>>(&encoded).ok(), Some(entries));
        // Arbitrary bytes: both shapes accept exactly the same inputs, with the same contents.
        let shared = postcard::from_bytes::<Vec<Entry>>(&bytes).ok();
        let plain = postcard::from_bytes::<Vec<VecEntry>>(&bytes).ok();
        prop_assert_eq!(shared.map(|e| e.iter().map(VecEntry::from).collect::<Vec<_>>()), plain);
    }

    #[test]
    fn message_encoded_len_is_the_postcard_size(message in arbitrary_message()) {
        prop_assert_eq!(message.encoded_len(), message.encode().len());
    }

    #[test]
    fn durable_state_decode_of_arbitrary_bytes_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..96)
    ) {
        if let Ok(state) = DurableState::decode(&bytes) {
            prop_assert_eq!(DurableState::decode(&state.encode()).ok(), Some(state.clone()));
            // Whatever decodes either restores or is refused with a typed error.
            if let Ok(mut node) = Node::restore(config(1, 3), state) {
                for _ in 0..100 {
                    node.step(Input::Tick);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn durable_state_decode_of_a_corrupted_encoding_never_panics(
        ops in prop::collection::vec(op(), 1..60),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let state = valid_durable_state(&ops);
        let mut bytes = state.encode();
        prop_assert_eq!(DurableState::decode(&bytes).ok(), Some(state));
        for (at, value) in flips {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        if let Ok(state) = DurableState::decode(&bytes)
            && let Ok(mut node) = Node::restore(config(1, 3), state)
        {
            for _ in 0..100 {
                node.step(Input::Tick);
            }
        }
    }
}
