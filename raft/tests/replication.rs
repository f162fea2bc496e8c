//! Figure 2, AppendEntries and the leader's rules: the follower's log checks, truncation and
//! commit; the leader's commit rule (Figure 8), its per-follower bookkeeping and its backing up
//! over divergent logs; and the delivery of committed entries.

mod common;

use common::*;
use raft::progress::ReplicationState;
use raft::{
    Accepted, AppendResult, Config, ConflictHint, Index, Input, Node, Output, Persist, Rejected,
    Role, Term,
};

fn success(match_index: u64) -> AppendResult {
    AppendResult::Success {
        match_index: Index(match_index),
    }
}

fn conflict(conflict_term: Option<u64>, first_index_of_term: u64, last_index: u64) -> AppendResult {
    AppendResult::Conflict(ConflictHint {
        conflict_term: conflict_term.map(Term),
        first_index_of_term: Index(first_index_of_term),
        last_index: Index(last_index),
    })
}

/// The single reply to leader 2, as (prev_index, result).
fn reply_to_leader(outputs: &[Output]) -> (Index, AppendResult) {
    as_append_reply(&only_send(outputs, id(2)))
}

// ----- AppendEntries receiver -----

#[test]
fn append_entries_from_an_older_term_is_refused() {
    let mut node = follower_with_log(3, 3, &[1, 2]);
    let step = receive(
        &mut node,
        id(2),
        Term(2),
        append(2, 2, vec![entry(3, 2)], 3),
    );
    let reply = only_send(&step.outputs, id(2));
    assert_eq!(reply.term, Term(3), "the refusal carries the newer term");
    assert!(persists(&step.outputs).is_empty());
    assert_eq!(log_terms(&node), [1, 2]);
    assert_eq!(node.commit_index(), Index(0));
    assert_eq!(node.leader(), None, "a stale leader is not followed");
}

#[test]
fn leader_steps_down_on_a_reply_with_a_higher_term() {
    let mut node = fresh();
    make_leader(&mut node);
    let step = receive(&mut node, id(2), Term(5), append_ok(Index(0), Index(0)));
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.term(), Term(5));
    assert!(sends(&step.outputs).is_empty());
}

#[test]
fn append_entries_conflicts_when_the_log_has_no_entry_at_prev_index() {
    let mut node = follower_with_log(3, 2, &[1, 1, 2]);
    let step = receive(
        &mut node,
        id(2),
        Term(2),
        append(5, 2, vec![entry(6, 2)], 0),
    );
    assert_eq!(
        reply_to_leader(&step.outputs),
        (Index(5), conflict(None, 4, 3))
    );
    assert!(persists(&step.outputs).is_empty());
    assert_eq!(log_terms(&node), [1, 1, 2]);
}

#[test]
fn append_entries_conflicts_with_the_term_and_first_index_of_the_conflicting_entry() {
    let mut node = follower_with_log(3, 3, &[1, 1, 2, 2, 2]);
    let step = receive(
        &mut node,
        id(2),
        Term(3),
        append(4, 3, vec![entry(5, 3)], 0),
    );
    assert_eq!(
        reply_to_leader(&step.outputs),
        (Index(4), conflict(Some(2), 3, 5))
    );
    assert!(persists(&step.outputs).is_empty());
    assert_eq!(
        log_terms(&node),
        [1, 1, 2, 2, 2],
        "a mismatch truncates nothing"
    );
}

#[test]
fn truncation_happens_only_at_the_first_conflicting_entry() {
    let mut node = follower_with_log(3, 3, &[1, 1, 2, 2, 2]);
    let step = receive(
        &mut node,
        id(2),
        Term(3),
        append(1, 1, entries(2, &[1, 3]), 0),
    );
    // Entry 2 matches and is kept as is; the log is rewritten from entry 3 on.
    assert_eq!(
        persists(&step.outputs),
        [Persist::Append(vec![entry(3, 3)])]
    );
    assert_eq!(log_terms(&node), [1, 1, 3]);
    assert_eq!(reply_to_leader(&step.outputs), (Index(1), success(3)));
}

#[test]
fn stale_append_entries_with_a_prefix_of_held_entries_never_truncates() {
    let mut node = fresh();
    receive(
        &mut node,
        id(2),
        Term(1),
        append(0, 0, entries(1, &[1; 5]), 0),
    );
    assert_eq!(node.log().last_index(), Index(5));

    // An older AppendEntries of the same leader, overtaken by the one above.
    let stale = receive(
        &mut node,
        id(2),
        Term(1),
        append(1, 1, entries(2, &[1, 1]), 0),
    );
    assert!(persists(&stale.outputs).is_empty());
    assert_eq!(node.log().last_index(), Index(5));
    assert_eq!(reply_to_leader(&stale.outputs), (Index(1), success(3)));

    let heartbeat = receive(&mut node, id(2), Term(1), append(2, 1, vec![], 0));
    assert!(persists(&heartbeat.outputs).is_empty());
    assert_eq!(node.log().last_index(), Index(5));
    assert_eq!(reply_to_leader(&heartbeat.outputs), (Index(2), success(2)));
}

#[test]
fn duplicate_append_entries_changes_nothing() {
    let mut node = fresh();
    let message = append(0, 0, entries(1, &[1, 1, 1]), 0);
    receive(&mut node, id(2), Term(1), message.clone());
    let log = node.log().clone();
    let again = receive(&mut node, id(2), Term(1), message);
    assert!(persists(&again.outputs).is_empty());
    assert_eq!(node.log(), &log);
    assert_eq!(reply_to_leader(&again.outputs), (Index(0), success(3)));
}

#[test]
fn new_entries_are_appended_and_persisted_before_the_reply() {
    let mut node = fresh();
    let step = receive(
        &mut node,
        id(2),
        Term(1),
        append(0, 0, entries(1, &[1, 1]), 0),
    );
    assert_eq!(kinds(&step.outputs), ["persist", "persist", "send"]);
    assert_eq!(
        persists(&step.outputs)[1],
        Persist::Append(entries(1, &[1, 1])),
        "after the new term"
    );
    assert_eq!(reply_to_leader(&step.outputs), (Index(0), success(2)));
    assert_eq!(node.log().entries(), entries(1, &[1, 1]).as_slice());
    assert_eq!(node.leader(), Some(id(2)));
}

#[test]
fn commit_index_is_min_of_leader_commit_and_index_of_last_new_entry() {
    let mut node = fresh();
    receive(
        &mut node,
        id(2),
        Term(1),
        append(0, 0, entries(1, &[1, 1]), 5),
    );
    assert_eq!(node.commit_index(), Index(2));
    receive(
        &mut node,
        id(2),
        Term(1),
        append(2, 1, entries(3, &[1, 1]), 3),
    );
    assert_eq!(node.commit_index(), Index(3));
}

#[test]
fn commit_index_never_moves_back() {
    let mut node = fresh();
    receive(
        &mut node,
        id(2),
        Term(1),
        append(0, 0, entries(1, &[1, 1, 1]), 3),
    );
    assert_eq!(node.commit_index(), Index(3));
    receive(&mut node, id(2), Term(1), append(1, 1, vec![], 1));
    assert_eq!(node.commit_index(), Index(3));
}

#[test]
fn leader_commit_never_commits_entries_beyond_the_verified_prefix() {
    // Entries 3 and 4 come from an old term and may not be the new leader's.
    let mut node = follower_with_log(3, 1, &[1, 1, 1, 1]);
    receive(&mut node, id(2), Term(2), append(2, 1, vec![], 4));
    assert_eq!(node.commit_index(), Index(2));
}

#[test]
fn append_entries_rewriting_committed_entries_is_dropped() {
    let mut node = fresh();
    receive(
        &mut node,
        id(2),
        Term(1),
        append(0, 0, entries(1, &[1, 1]), 2),
    );
    assert_eq!(node.commit_index(), Index(2));
    // No real leader of term 2 can disagree with a committed entry; drop it rather than obey.
    let step = receive(&mut node, id(3), Term(2), append(1, 1, entries(2, &[2]), 2));
    assert!(sends(&step.outputs).is_empty());
    assert_eq!(log_terms(&node), [1, 1]);
}

// ----- Leaders: proposals and commit -----

#[test]
fn proposal_on_a_follower_is_rejected_with_the_leader_hint() {
    let mut node = fresh();
    receive(&mut node, id(2), Term(1), append(0, 0, vec![], 0));
    let step = node.step(Input::Propose(b"x".into()));
    assert_eq!(
        step.result,
        Err(Rejected::NotLeader {
            leader_hint: Some(id(2))
        })
    );
    assert!(step.outputs.is_empty());
    assert!(node.log().entries().is_empty());
}

#[test]
fn proposal_on_the_leader_is_persisted_then_sent_to_every_follower() {
    let mut node = fresh();
    let term = make_replicating_leader(&mut node);
    let step = node.step(Input::Propose(b"x".into()));
    assert_eq!(
        step.result,
        Ok(Accepted::Proposed {
            index: Index(1),
            term
        })
    );
    assert_eq!(kinds(&step.outputs), ["persist", "send", "send"]);
    for peer in [id(2), id(3)] {
        let (prev_index, prev_term, entries, _) = as_append(&sends_to(&step.outputs, peer)[0]);
        assert_eq!((prev_index, prev_term), (Index(0), Term(0)));
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].command, b"x");
    }
    assert_eq!(
        node.commit_index(),
        Index(0),
        "not committed before a majority stores it"
    );
}

#[test]
fn leader_commits_a_current_term_entry_once_a_majority_stores_it() {
    let mut node = fresh();
    let term = make_replicating_leader(&mut node);
    node.step(Input::Propose(b"x".into()));
    let step = receive(&mut node, id(2), term, append_ok(Index(0), Index(1)));
    assert_eq!(node.commit_index(), Index(1));
    assert_eq!(applied_indices(&step.outputs), [1]);
}

#[test]
fn figure_8_an_old_term_entry_on_a_majority_is_not_committed_by_counting() {
    // The leader of term 3 holds entry 2 from term 2, and so does every follower.
    let mut node = follower_with_log(3, 2, &[1, 2]);
    make_leader(&mut node);
    let term = node.term();
    assert_eq!(term, Term(3));
    receive(&mut node, id(2), term, append_ok(Index(2), Index(2)));
    let step = receive(&mut node, id(3), term, append_ok(Index(2), Index(2)));
    assert_eq!(node.progress(id(2)).unwrap().match_index, Index(2));
    assert_eq!(node.commit_index(), Index(0));
    assert!(applied_indices(&step.outputs).is_empty());

    // A heartbeat round changes nothing either.
    let interval = node.config().heartbeat_ticks;
    tick_n(&mut node, interval);
    assert_eq!(node.commit_index(), Index(0));
}

#[test]
fn figure_8_old_term_entries_commit_with_a_current_term_entry_above_them() {
    let mut node = follower_with_log(3, 2, &[1, 2]);
    make_leader(&mut node);
    let term = node.term();
    receive(&mut node, id(2), term, append_ok(Index(2), Index(2)));
    node.step(Input::Propose(b"x".into()));
    let step = receive(&mut node, id(2), term, append_ok(Index(2), Index(3)));
    assert_eq!(node.commit_index(), Index(3));
    assert_eq!(applied_indices(&step.outputs), [1, 2, 3]);
}

// ----- Leaders: per-follower bookkeeping -----

/// A leader of term 1 whose follower 2 has acknowledged entries up to 3 of 5.
fn leader_with_follower_at_3() -> (Node, Term) {
    let mut node = fresh();
    let term = make_replicating_leader(&mut node);
    for command in [b"a", b"b", b"c", b"d", b"e"] {
        node.step(Input::Propose(command.into()));
    }
    receive(&mut node, id(2), term, append_ok(Index(2), Index(3)));
    let progress = node.progress(id(2)).unwrap();
    assert_eq!(progress.match_index, Index(3));
    assert_eq!(progress.state, ReplicationState::Replicate);
    (node, term)
}

#[test]
fn stale_or_duplicate_success_never_moves_match_index_back() {
    let (mut node, term) = leader_with_follower_at_3();
    receive(&mut node, id(2), term, append_ok(Index(0), Index(1)));
    receive(&mut node, id(2), term, append_ok(Index(2), Index(3)));
    let progress = node.progress(id(2)).unwrap();
    assert_eq!(progress.match_index, Index(3));
    assert!(progress.next_index >= Index(4));
}

#[test]
fn stale_conflict_never_moves_next_index_below_match_plus_one() {
    let (mut node, term) = leader_with_follower_at_3();
    // An answer to an append sent before the follower acknowledged 3.
    let stale = conflict(None, 1, 0);
    let step = receive(
        &mut node,
        id(2),
        term,
        append_conflict(Index(1), hint_of(stale)),
    );
    assert!(step.outputs.is_empty(), "a stale rejection is ignored");
    let progress = node.progress(id(2)).unwrap();
    assert_eq!(progress.match_index, Index(3));
    assert_eq!(progress.state, ReplicationState::Replicate);
    assert!(progress.next_index >= Index(4));
}

#[test]
fn current_conflict_with_a_lying_hint_still_keeps_next_index_above_match() {
    let (mut node, term) = leader_with_follower_at_3();
    // A rejection of the append after the match, whose hint points below the match.
    let hint = hint_of(conflict(None, 1, 0));
    let step = receive(&mut node, id(2), term, append_conflict(Index(4), hint));
    let progress = node.progress(id(2)).unwrap();
    assert_eq!(progress.match_index, Index(3));
    assert_eq!(progress.next_index, Index(4));
    assert_eq!(progress.state, ReplicationState::Probe);
    let (prev_index, _, entries, _) = as_append(&only_send(&step.outputs, id(2)));
    assert_eq!(prev_index, Index(3));
    assert_eq!(entries.len(), 2);
}

fn hint_of(result: AppendResult) -> ConflictHint {
    match result {
        AppendResult::Conflict(hint) => hint,
        AppendResult::Success { .. } => unreachable!("built as a conflict"),
    }
}

#[test]
fn inflight_appends_to_one_follower_are_limited() {
    let mut config = config(1, 3);
    config.max_inflight_appends = 2;
    let mut node = Node::new(config).unwrap();
    let term = make_replicating_leader(&mut node);
    let mut outputs = Vec::new();
    for command in [b"a", b"b", b"c", b"d"] {
        outputs.extend(node.step(Input::Propose(command.into())).outputs);
    }
    assert_eq!(
        sends_to(&outputs, id(2)).len(),
        2,
        "the window holds two appends"
    );
    assert_eq!(node.progress(id(2)).unwrap().inflight_count(), 2);

    let step = receive(&mut node, id(2), term, append_ok(Index(0), Index(1)));
    let (prev_index, _, entries, _) = as_append(&only_send(&step.outputs, id(2)));
    assert_eq!(prev_index, Index(2));
    assert_eq!(
        entries.len(),
        2,
        "the freed slot carries everything pending"
    );
}

#[test]
fn leader_sends_heartbeats_with_its_commit_every_heartbeat_interval() {
    let mut node = fresh();
    let term = make_replicating_leader(&mut node);
    node.step(Input::Propose(b"x".into()));
    receive(&mut node, id(2), term, append_ok(Index(0), Index(1)));
    let interval = node.config().heartbeat_ticks;
    // The heartbeat clock restarted when the node became leader; count from there.
    let mut ticks = 0;
    let heartbeats = loop {
        ticks += 1;
        let outputs = node.step(Input::Tick).outputs;
        if !outputs.is_empty() {
            break outputs;
        }
        assert!(ticks <= interval, "no heartbeat within {interval} ticks");
    };
    for peer in [id(2), id(3)] {
        let (_, _, entries, leader_commit) = as_append(&only_of(&heartbeats, peer));
        assert!(entries.is_empty());
        assert_eq!(leader_commit, Index(1));
    }
    assert!(tick_n(&mut node, interval - 1).is_empty());
    assert_eq!(sends(&tick_n(&mut node, 1)).len(), 2);
}

fn only_of(outputs: &[Output], to: raft::NodeId) -> raft::Message {
    let mut messages = sends_to(outputs, to);
    assert_eq!(messages.len(), 1);
    messages.remove(0)
}

// ----- Backing up over divergent logs with the conflict hints -----

/// Shuttles messages between leader 1 and follower 2 until the leader knows the follower matches
/// its whole log; returns the number of round trips.
fn round_trips_to_match(leader: &mut Node, follower: &mut Node, first: Vec<Output>) -> usize {
    let mut to_follower = sends_to(&first, id(2));
    for trips in 1..=100 {
        let mut to_leader = Vec::new();
        for message in to_follower.drain(..) {
            let step = follower.step(Input::Receive {
                from: id(1),
                message,
            });
            to_leader.extend(sends_to(&step.outputs, id(1)));
        }
        for message in to_leader {
            let step = leader.step(Input::Receive {
                from: id(2),
                message,
            });
            to_follower.extend(sends_to(&step.outputs, id(2)));
        }
        if leader.progress(id(2)).unwrap().match_index == leader.log().last_index() {
            return trips;
        }
    }
    panic!("the leader never caught the follower up");
}

fn node_with_log(me: u32, term: u64, log_terms: &[u64]) -> Node {
    Node::restore(config(me, 3), durable(term, None, log_terms)).unwrap()
}

#[test]
fn leader_backs_up_over_a_long_divergent_log_in_few_round_trips() {
    let mut leader = node_with_log(1, 3, &[1, 3, 3, 3, 3, 3]);
    let mut stale = vec![1];
    stale.extend([2; 50]);
    let mut follower = node_with_log(2, 2, &stale);
    let first = make_leader(&mut leader);
    let trips = round_trips_to_match(&mut leader, &mut follower, first);
    assert!(trips <= 3, "took {trips} round trips");
    assert_eq!(log_terms(&follower), log_terms(&leader));
}

#[test]
fn leader_skips_to_after_its_own_last_entry_of_the_conflicting_term() {
    let mut leader = node_with_log(1, 4, &[1, 2, 2, 4, 4]);
    let mut follower = node_with_log(2, 3, &[1, 2, 2, 2, 2, 2, 3, 3]);
    let first = make_leader(&mut leader);
    let trips = round_trips_to_match(&mut leader, &mut follower, first);
    assert_eq!(trips, 2);
    assert_eq!(log_terms(&follower), [1, 2, 2, 4, 4]);
}

#[test]
fn leader_jumps_to_the_end_of_a_short_follower_log() {
    let mut leader = node_with_log(1, 3, &[1; 40]);
    let mut follower = node_with_log(2, 3, &[1]);
    let first = make_leader(&mut leader);
    let trips = round_trips_to_match(&mut leader, &mut follower, first);
    assert_eq!(trips, 2);
    assert_eq!(follower.log().last_index(), Index(40));
}

// ----- Delivery to the state machine -----

#[test]
fn committed_entries_are_applied_once_in_index_order_after_the_persists() {
    let mut node = fresh();
    let first = receive(
        &mut node,
        id(2),
        Term(1),
        append(0, 0, entries(1, &[1; 3]), 2),
    );
    assert_eq!(
        kinds(&first.outputs),
        ["persist", "persist", "send", "apply"]
    );
    assert_eq!(applied_indices(&first.outputs), [1, 2]);

    let second = receive(&mut node, id(2), Term(1), append(3, 1, entries(4, &[1]), 4));
    assert_eq!(kinds(&second.outputs), ["persist", "send", "apply"]);
    assert_eq!(applied_indices(&second.outputs), [3, 4]);

    let duplicate = receive(
        &mut node,
        id(2),
        Term(1),
        append(0, 0, entries(1, &[1; 3]), 2),
    );
    assert!(applied_indices(&duplicate.outputs).is_empty());
    let heartbeat = receive(&mut node, id(2), Term(1), append(4, 1, vec![], 4));
    assert!(applied_indices(&heartbeat.outputs).is_empty());
    assert_eq!(node.last_applied(), Index(4));
}

#[test]
fn applied_entries_carry_the_commands_that_were_proposed() {
    let mut node = Node::new(Config::new(id(1), vec![id(1)], 1)).unwrap();
    tick_until_campaign(&mut node);
    let mut applied = Vec::new();
    for command in [&b"a"[..], b"bb", b"ccc"] {
        let outputs = node.step(Input::Propose(command.into())).outputs;
        for output in outputs {
            if let Output::Apply(entries) = output {
                applied.extend(entries.into_iter().map(|e| e.command));
            }
        }
    }
    assert_eq!(applied, [b"a".to_vec(), b"bb".to_vec(), b"ccc".to_vec()]);
}
