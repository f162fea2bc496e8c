//! Figure 2, RequestVote and the rules for all servers, candidates and the election timer: one
//! node, scripted inputs, asserted outputs.

mod common;

use common::*;
use raft::{HardState, Index, Input, Message, Node, NodeId, Payload, Persist, Role, Term};

fn vote_reply(message: &Message) -> bool {
    match message.payload {
        Payload::RequestVoteReply { granted } => granted,
        ref other => panic!("expected RequestVoteReply, got {other:?}"),
    }
}

fn hard_state(term: u64, voted_for: Option<u32>) -> Persist {
    Persist::HardState(HardState {
        term: Term(term),
        voted_for: voted_for.map(NodeId),
    })
}

// ----- RequestVote receiver -----

#[test]
fn request_vote_from_an_older_term_is_refused() {
    let mut node = follower_with_log(3, 5, &[1, 2]);
    let step = receive(&mut node, id(2), Term(4), request_vote(10, 4));
    let reply = only_send(&step.outputs, id(2));
    assert!(!vote_reply(&reply));
    assert_eq!(reply.term, Term(5), "the refusal carries the current term");
    assert!(persists(&step.outputs).is_empty());
    assert_eq!(node.voted_for(), None);
    assert_eq!(node.term(), Term(5));
}

#[test]
fn vote_is_granted_when_none_cast_and_candidate_log_up_to_date() {
    let mut node = fresh();
    let step = receive(&mut node, id(2), Term(1), request_vote(0, 0));
    assert!(vote_reply(&only_send(&step.outputs, id(2))));
    assert_eq!(node.term(), Term(1));
    assert_eq!(node.voted_for(), Some(id(2)));
    assert_eq!(node.role(), Role::Follower);
}

#[test]
fn vote_is_persisted_before_the_reply_is_sent() {
    let mut node = fresh();
    let step = receive(&mut node, id(2), Term(1), request_vote(0, 0));
    assert_eq!(kinds(&step.outputs), ["persist", "send"]);
    assert_eq!(persists(&step.outputs), [hard_state(1, Some(2))]);
}

#[test]
fn vote_is_granted_again_to_the_same_candidate() {
    let mut node = fresh();
    receive(&mut node, id(2), Term(1), request_vote(0, 0));
    let again = receive(&mut node, id(2), Term(1), request_vote(0, 0));
    assert!(vote_reply(&only_send(&again.outputs, id(2))));
    assert_eq!(node.voted_for(), Some(id(2)));
}

#[test]
fn vote_is_never_granted_to_a_second_candidate_in_one_term() {
    let mut node = fresh();
    receive(&mut node, id(2), Term(1), request_vote(0, 0));
    let second = receive(&mut node, id(3), Term(1), request_vote(5, 1));
    assert!(!vote_reply(&only_send(&second.outputs, id(3))));
    assert!(persists(&second.outputs).is_empty());
    assert_eq!(node.voted_for(), Some(id(2)));
}

#[test]
fn candidate_never_grants_a_vote_in_its_own_term() {
    let mut node = fresh();
    tick_until_campaign(&mut node);
    let step = receive(&mut node, id(2), Term(1), request_vote(0, 0));
    assert!(!vote_reply(&only_send(&step.outputs, id(2))));
    assert_eq!(node.voted_for(), Some(id(1)));
    assert_eq!(node.role(), Role::Candidate);
}

// ----- The election restriction (§5.4.1): by last term, then by last index -----

#[test]
fn election_restriction_refuses_an_older_last_term_even_if_longer() {
    let mut node = follower_with_log(3, 3, &[1, 1, 3]);
    let step = receive(&mut node, id(2), Term(4), request_vote(10, 2));
    assert!(!vote_reply(&only_send(&step.outputs, id(2))));
    assert_eq!(node.voted_for(), None);
    // The term is still adopted (and persisted before the refusal).
    assert_eq!(node.term(), Term(4));
    assert_eq!(persists(&step.outputs), [hard_state(4, None)]);
    assert_eq!(kinds(&step.outputs), ["persist", "send"]);
}

#[test]
fn election_restriction_refuses_a_shorter_log_with_the_same_last_term() {
    let mut node = follower_with_log(3, 3, &[1, 1, 3, 3]);
    let step = receive(&mut node, id(2), Term(4), request_vote(3, 3));
    assert!(!vote_reply(&only_send(&step.outputs, id(2))));
    assert_eq!(node.voted_for(), None);
}

#[test]
fn election_restriction_grants_a_newer_last_term_even_if_shorter() {
    let mut node = follower_with_log(3, 3, &[1, 1, 3, 3]);
    let step = receive(&mut node, id(2), Term(5), request_vote(1, 4));
    assert!(vote_reply(&only_send(&step.outputs, id(2))));
    assert_eq!(node.voted_for(), Some(id(2)));
}

#[test]
fn election_restriction_grants_an_equal_or_longer_log_with_the_same_last_term() {
    let mut node = follower_with_log(3, 3, &[1, 1, 3, 3]);
    let equal = receive(&mut node, id(2), Term(4), request_vote(4, 3));
    assert!(vote_reply(&only_send(&equal.outputs, id(2))));

    let mut node = follower_with_log(3, 3, &[1, 1, 3, 3]);
    let longer = receive(&mut node, id(3), Term(4), request_vote(9, 3));
    assert!(vote_reply(&only_send(&longer.outputs, id(3))));
}

// ----- Higher terms: every server steps down -----

#[test]
fn higher_term_request_vote_makes_a_leader_step_down() {
    let mut node = fresh();
    make_leader(&mut node);
    assert_eq!(node.term(), Term(1));
    let step = receive(&mut node, id(3), Term(5), request_vote(0, 0));
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.term(), Term(5));
    assert_eq!(node.leader(), None);
    assert!(
        node.progress(id(2)).is_none(),
        "a follower tracks no progress"
    );
    // The new term and the vote go out as one write, before the reply.
    assert_eq!(persists(&step.outputs), [hard_state(5, Some(3))]);
    assert!(vote_reply(&only_send(&step.outputs, id(3))));
}

#[test]
fn higher_term_append_entries_makes_a_leader_follow_the_new_leader() {
    let mut node = fresh();
    make_leader(&mut node);
    receive(&mut node, id(2), Term(3), append(0, 0, vec![], 0));
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.term(), Term(3));
    assert_eq!(node.leader(), Some(id(2)));
    assert_eq!(node.voted_for(), None);
}

#[test]
fn higher_term_reply_makes_a_candidate_step_down() {
    let mut node = fresh();
    tick_until_campaign(&mut node);
    let step = receive(
        &mut node,
        id(2),
        Term(3),
        Payload::RequestVoteReply { granted: false },
    );
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.term(), Term(3));
    assert_eq!(node.voted_for(), None);
    assert_eq!(persists(&step.outputs), [hard_state(3, None)]);
}

#[test]
fn candidate_follows_a_leader_of_its_own_term() {
    let mut node = fresh();
    tick_until_campaign(&mut node);
    let step = receive(&mut node, id(2), Term(1), append(0, 0, vec![], 0));
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.term(), Term(1));
    assert_eq!(node.leader(), Some(id(2)));
    assert_eq!(
        node.voted_for(),
        Some(id(1)),
        "the vote of the term stays cast"
    );
    assert!(persists(&step.outputs).is_empty());
}

#[test]
fn leader_ignores_append_entries_claiming_its_own_term() {
    let mut node = fresh();
    make_leader(&mut node);
    let step = receive(
        &mut node,
        id(2),
        Term(1),
        append(0, 0, vec![entry(1, 1)], 1),
    );
    assert!(step.outputs.is_empty());
    assert_eq!(node.role(), Role::Leader);
    assert!(node.log().entries().is_empty());
}

// ----- Election timer and candidates -----

#[test]
fn follower_campaigns_exactly_when_its_election_timeout_elapses() {
    let mut node = fresh();
    let timeout = node.election_timeout_ticks();
    let election_ticks = node.config().election_ticks;
    assert!((election_ticks..2 * election_ticks).contains(&timeout));
    assert!(tick_n(&mut node, timeout - 1).is_empty());
    assert_eq!(node.role(), Role::Follower);

    let step = node.step(Input::Tick);
    assert_eq!(node.role(), Role::Candidate);
    assert_eq!(node.term(), Term(1));
    assert_eq!(node.voted_for(), Some(id(1)));
    assert_eq!(kinds(&step.outputs), ["persist", "send", "send"]);
    assert_eq!(persists(&step.outputs), [hard_state(1, Some(1))]);
    for peer in [id(2), id(3)] {
        let request = sends_to(&step.outputs, peer);
        assert_eq!(request.len(), 1);
        assert_eq!(request[0].term, Term(1));
        assert_eq!(request[0].payload, request_vote(0, 0));
    }
}

#[test]
fn candidate_asks_with_its_last_log_index_and_term() {
    let mut node = follower_with_log(3, 4, &[1, 2, 4]);
    let step = tick_until_campaign(&mut node);
    assert_eq!(node.term(), Term(5));
    for (_, message) in sends(&step.outputs) {
        assert_eq!(message.payload, request_vote(3, 4));
    }
}

#[test]
fn messages_from_a_leader_reset_the_election_timer() {
    let mut node = fresh();
    receive(&mut node, id(2), Term(1), append(0, 0, vec![], 0));
    for _ in 0..3 {
        let timeout = node.election_timeout_ticks();
        tick_n(&mut node, timeout - 1);
        receive(&mut node, id(2), Term(1), append(0, 0, vec![], 0));
    }
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.term(), Term(1));
}

#[test]
fn granting_a_vote_resets_the_election_timer() {
    // Already in the candidate's term, so only the grant itself can reset the timer.
    let mut node = follower_with_log(3, 1, &[1]);
    let timeout = node.election_timeout_ticks();
    tick_n(&mut node, timeout - 1);
    receive(&mut node, id(2), Term(1), request_vote(1, 1));
    assert_eq!(node.voted_for(), Some(id(2)));
    assert!(tick_n(&mut node, timeout - 1).is_empty());
    assert_eq!(node.role(), Role::Follower);
}

#[test]
fn a_higher_term_from_a_candidate_it_refuses_does_not_restart_the_election_timer() {
    // Figure 2: only a leader's AppendEntries, a granted vote or a campaign restart the timer.
    // A candidate whose log is behind, at a higher term, must not hold this node back, or
    // stale candidates with fast clocks keep an up-to-date node from ever campaigning.
    let mut node = follower_with_log(3, 2, &[1, 2]);
    let timeout = node.election_timeout_ticks();
    tick_n(&mut node, timeout - 1);
    let refused = receive(&mut node, id(2), Term(5), request_vote(1, 1));
    assert!(!vote_reply(&only_send(&refused.outputs, id(2))));
    assert_eq!(node.term(), Term(5));
    assert_eq!(
        node.election_timeout_ticks(),
        timeout,
        "the timeout was drawn again"
    );
    tick_n(&mut node, 1);
    assert_eq!(
        node.role(),
        Role::Candidate,
        "the timer restarted on a refused vote"
    );
    assert_eq!(node.term(), Term(6));
}

#[test]
fn a_leader_stepping_down_on_a_higher_term_campaigns_within_one_timeout() {
    let mut node = fresh();
    make_leader(&mut node);
    tick_n(&mut node, 100);
    receive(&mut node, id(2), Term(9), request_vote(0, 0));
    assert_eq!(node.role(), Role::Follower);
    let limit = node.election_timeout_ticks();
    tick_n(&mut node, limit);
    assert_eq!(node.role(), Role::Candidate);
}

#[test]
fn candidate_starts_a_new_election_when_its_timeout_elapses_again() {
    let mut node = fresh();
    tick_until_campaign(&mut node);
    assert_eq!(node.term(), Term(1));
    let timeout = node.election_timeout_ticks();
    let outputs = tick_n(&mut node, timeout);
    assert_eq!(node.role(), Role::Candidate);
    assert_eq!(node.term(), Term(2));
    assert_eq!(persists(&outputs), [hard_state(2, Some(1))]);
}

#[test]
fn candidate_asks_again_every_heartbeat_the_voters_that_have_not_answered() {
    let mut node = Node::new(config(1, 5)).unwrap();
    tick_until_campaign(&mut node);
    let term = node.term();
    receive(
        &mut node,
        id(2),
        term,
        Payload::RequestVoteReply { granted: true },
    );
    receive(
        &mut node,
        id(3),
        term,
        Payload::RequestVoteReply { granted: false },
    );
    let heartbeat = node.config().heartbeat_ticks;
    assert!(heartbeat < node.election_timeout_ticks());
    assert!(tick_n(&mut node, heartbeat - 1).is_empty());

    let outputs = tick_n(&mut node, 1);
    assert_eq!(node.role(), Role::Candidate);
    assert_eq!(node.term(), term, "asking again is not a new election");
    assert!(persists(&outputs).is_empty());
    let asked: Vec<NodeId> = sends(&outputs).into_iter().map(|(to, _)| to).collect();
    assert_eq!(
        asked,
        [id(4), id(5)],
        "only the voters that have not answered"
    );
    for (_, message) in sends(&outputs) {
        assert_eq!(message.term, term);
        assert_eq!(message.payload, request_vote(0, 0));
    }
}

#[test]
fn candidate_wins_only_with_a_majority_of_distinct_granted_votes() {
    let mut node = Node::new(config(1, 5)).unwrap();
    tick_until_campaign(&mut node);
    let granted = Payload::RequestVoteReply { granted: true };
    let refused = Payload::RequestVoteReply { granted: false };
    receive(&mut node, id(2), Term(1), granted.clone());
    receive(&mut node, id(2), Term(1), granted.clone());
    assert_eq!(node.role(), Role::Candidate, "a duplicate vote counts once");
    receive(&mut node, id(3), Term(1), refused);
    assert_eq!(node.role(), Role::Candidate, "a refusal does not count");
    let step = receive(&mut node, id(4), Term(1), granted);
    assert_eq!(node.role(), Role::Leader, "self + 2 + 4 is a majority of 5");
    assert_eq!(node.leader(), Some(id(1)));
    assert_eq!(
        sends(&step.outputs).len(),
        4,
        "a first append to every follower"
    );
}

#[test]
fn vote_replies_from_an_older_term_are_not_counted() {
    let mut node = follower_with_log(3, 3, &[]);
    tick_until_campaign(&mut node);
    assert_eq!(node.term(), Term(4));
    let step = receive(
        &mut node,
        id(2),
        Term(3),
        Payload::RequestVoteReply { granted: true },
    );
    assert!(step.outputs.is_empty());
    assert_eq!(node.role(), Role::Candidate);
}

#[test]
fn new_leader_probes_every_follower_at_its_last_entry() {
    let mut node = follower_with_log(3, 2, &[1, 1, 2]);
    let outputs = make_leader(&mut node);
    assert_eq!(node.term(), Term(3));
    for peer in [id(2), id(3)] {
        let probe = sends_to(&outputs, peer);
        assert_eq!(probe.len(), 1);
        assert_eq!(probe[0].term, Term(3));
        assert_eq!(probe[0].payload, append(3, 2, vec![], 0));
        let progress = node.progress(peer).expect("leader tracks every peer");
        assert_eq!(progress.next_index, Index(4));
        assert_eq!(progress.match_index, Index(0));
    }
}

#[test]
fn single_voter_elects_itself_and_commits_alone() {
    let mut node = Node::new(config(1, 1)).unwrap();
    let step = tick_until_campaign(&mut node);
    assert_eq!(node.role(), Role::Leader);
    assert!(sends(&step.outputs).is_empty());
    let step = node.step(Input::Propose(b"x".into()));
    assert_eq!(node.commit_index(), Index(1));
    assert_eq!(applied_indices(&step.outputs), [1]);
    assert_eq!(kinds(&step.outputs), ["persist", "apply"]);
}

#[test]
fn messages_from_unknown_nodes_or_from_itself_are_ignored() {
    let mut node = fresh();
    for from in [id(0), id(1), id(9)] {
        let step = receive(&mut node, from, Term(7), request_vote(9, 7));
        assert!(step.outputs.is_empty(), "from {from}");
        assert_eq!(node.term(), Term(0));
    }
}
