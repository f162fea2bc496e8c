//! Figure 13, InstallSnapshot, and log compaction: what `Compact` discards, when a leader falls
//! back to a snapshot, and what a follower keeps, ignores and restores.

mod common;

use common::*;
use raft::progress::ReplicationState;
use raft::{Accepted, Index, Input, Message, Node, Payload, Persist, Rejected, Snapshot, Term};

fn compact(node: &mut Node, index: u64) -> raft::Step {
    node.step(Input::Compact {
        index: Index(index),
        snapshot: format!("state@{index}").into_bytes(),
    })
}

fn install(snapshot: Snapshot) -> Payload {
    Payload::InstallSnapshot { snapshot }
}

fn snapshot_reply_index(message: &Message) -> Index {
    match message.payload {
        Payload::InstallSnapshotReply { match_index } => match_index,
        ref other => panic!("expected InstallSnapshotReply, got {other:?}"),
    }
}

/// A follower of leader 2 in term 1 holding `len` entries, `commit` of them committed.
fn follower(len: u64, commit: u64) -> Node {
    let mut node = fresh();
    let terms = vec![1; len as usize];
    receive(
        &mut node,
        id(2),
        Term(1),
        append(0, 0, entries(1, &terms), commit),
    );
    assert_eq!(node.last_applied(), Index(commit));
    node
}

// ----- Compact -----

#[test]
fn compact_discards_the_log_prefix() {
    let mut node = follower(5, 5);
    let step = compact(&mut node, 3);
    assert_eq!(step.result, Ok(Accepted::Done));
    assert_eq!(persists(&step.outputs), [Persist::Snapshot(snapshot(3, 1))]);
    assert_eq!(kinds(&step.outputs), ["persist"]);
    assert_eq!(node.log().first_index(), Index(4));
    assert_eq!(node.log().entries(), entries(4, &[1, 1]).as_slice());
    assert_eq!(node.log().last_index(), Index(5));
    assert_eq!(node.durable_state().log.snapshot(), Some(&snapshot(3, 1)));
    assert_eq!(node.durable_state().log.first_index(), Index(4));
}

#[test]
fn compact_beyond_last_applied_is_rejected() {
    let mut node = follower(5, 3);
    let before = node.durable_state().clone();
    let step = compact(&mut node, 4);
    assert_eq!(
        step.result,
        Err(Rejected::CompactBeyondApplied {
            index: Index(4),
            last_applied: Index(3)
        })
    );
    assert!(step.outputs.is_empty());
    assert_eq!(node.durable_state(), &before);
}

#[test]
fn compact_at_or_below_the_snapshot_changes_nothing() {
    let mut node = follower(5, 5);
    compact(&mut node, 3);
    for index in [3, 2] {
        let step = compact(&mut node, index);
        assert_eq!(step.result, Ok(Accepted::Done));
        assert!(step.outputs.is_empty());
        assert_eq!(node.log().snapshot_index(), Index(3));
    }
}

// ----- Leader: falling back to a snapshot -----

/// A leader of term 1 with entries 1..=5 committed (follower 2 has them all) and compacted up
/// to 4; follower 3 has acknowledged nothing.
fn compacted_leader() -> Node {
    let mut node = fresh();
    let term = make_replicating_leader(&mut node);
    for command in [b"a", b"b", b"c", b"d", b"e"] {
        node.step(Input::Propose(command.into()));
    }
    receive(&mut node, id(2), term, append_ok(Index(4), Index(5)));
    assert_eq!(node.last_applied(), Index(5));
    assert_eq!(compact(&mut node, 4).result, Ok(Accepted::Done));
    node
}

#[test]
fn leader_sends_install_snapshot_when_a_follower_needs_discarded_entries() {
    let mut node = compacted_leader();
    // Follower 3 lost everything: its rejection sends the leader back below the snapshot.
    let hint = raft::ConflictHint {
        conflict_term: None,
        first_index_of_term: Index(1),
        last_index: Index(0),
    };
    let step = receive(&mut node, id(3), Term(1), append_conflict(Index(4), hint));
    let message = only_send(&step.outputs, id(3));
    let expected = Snapshot {
        index: Index(4),
        term: Term(1),
        data: b"state@4".to_vec(),
    };
    assert_eq!(message.payload, install(expected));
    assert!(matches!(
        node.progress(id(3)).unwrap().state,
        ReplicationState::Snapshot {
            index: Index(4),
            ..
        }
    ));
}

#[test]
fn leader_resumes_appends_after_the_snapshot_is_installed() {
    let mut node = compacted_leader();
    let hint = raft::ConflictHint {
        conflict_term: None,
        first_index_of_term: Index(1),
        last_index: Index(0),
    };
    receive(&mut node, id(3), Term(1), append_conflict(Index(4), hint));
    let step = receive(
        &mut node,
        id(3),
        Term(1),
        Payload::InstallSnapshotReply {
            match_index: Index(4),
        },
    );
    let progress = node.progress(id(3)).unwrap();
    assert_eq!(progress.match_index, Index(4));
    assert_eq!(progress.state, ReplicationState::Replicate);
    let (prev_index, prev_term, entries, _) = as_append(&only_send(&step.outputs, id(3)));
    assert_eq!((prev_index, prev_term), (Index(4), Term(1)));
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].index, Index(5));
}

#[test]
fn leader_resends_the_snapshot_after_an_election_timeout_without_reply() {
    let mut node = compacted_leader();
    let hint = raft::ConflictHint {
        conflict_term: None,
        first_index_of_term: Index(1),
        last_index: Index(0),
    };
    receive(&mut node, id(3), Term(1), append_conflict(Index(4), hint));
    let is_snapshot = |m: &Message| matches!(m.payload, Payload::InstallSnapshot { .. });
    let wait = node.config().election_ticks;
    let quiet = tick_n(&mut node, wait - 1);
    assert!(!sends_to(&quiet, id(3)).iter().any(is_snapshot));
    let resent = tick_n(&mut node, 1);
    assert_eq!(
        sends_to(&resent, id(3))
            .iter()
            .filter(|m| is_snapshot(m))
            .count(),
        1
    );
}

// ----- Follower: InstallSnapshot -----

#[test]
fn install_snapshot_persists_then_restores() {
    let mut node = follower(2, 1);
    let step = receive(&mut node, id(2), Term(1), install(snapshot(6, 1)));
    assert_eq!(kinds(&step.outputs), ["persist", "send", "restore"]);
    assert_eq!(persists(&step.outputs), [Persist::Snapshot(snapshot(6, 1))]);
    assert_eq!(restores(&step.outputs), [snapshot(6, 1)]);
    assert_eq!(
        snapshot_reply_index(&only_send(&step.outputs, id(2))),
        Index(6)
    );
    assert_eq!(node.commit_index(), Index(6));
    assert_eq!(node.last_applied(), Index(6));
}

#[test]
fn follower_keeps_the_entries_after_a_snapshot_describing_a_prefix_of_its_log() {
    let mut node = follower(6, 2);
    receive(&mut node, id(2), Term(1), install(snapshot(4, 1)));
    assert_eq!(node.log().snapshot_index(), Index(4));
    assert_eq!(node.log().entries(), entries(5, &[1, 1]).as_slice());
    assert_eq!(node.log().last_index(), Index(6));
}

#[test]
fn follower_discards_its_log_when_the_snapshot_does_not_describe_it() {
    // Entries 1..=4 from term 1, never committed; the leader of term 2 has a different history.
    let mut node = follower_with_log(3, 1, &[1, 1, 1, 1]);
    receive(&mut node, id(2), Term(2), install(snapshot(3, 2)));
    assert!(node.log().entries().is_empty());
    assert_eq!(node.log().last_index(), Index(3));
    assert_eq!(node.log().last_term(), Term(2));
}

#[test]
fn follower_discards_its_log_when_the_snapshot_goes_past_its_end() {
    let mut node = follower(3, 1);
    receive(&mut node, id(2), Term(1), install(snapshot(10, 1)));
    assert!(node.log().entries().is_empty());
    assert_eq!(node.log().last_index(), Index(10));
    assert_eq!(node.last_applied(), Index(10));
}

#[test]
fn snapshot_not_newer_than_the_commit_index_is_ignored() {
    let mut node = follower(6, 4);
    let before = node.durable_state().clone();
    for index in [3, 4] {
        let step = receive(&mut node, id(2), Term(1), install(snapshot(index, 1)));
        assert!(restores(&step.outputs).is_empty());
        assert!(persists(&step.outputs).is_empty());
        assert_eq!(
            snapshot_reply_index(&only_send(&step.outputs, id(2))),
            Index(4)
        );
    }
    assert_eq!(node.durable_state(), &before);
    assert_eq!(node.last_applied(), Index(4));
}

#[test]
fn snapshot_from_an_older_term_is_refused() {
    let mut node = follower_with_log(3, 3, &[1]);
    let step = receive(&mut node, id(2), Term(2), install(snapshot(5, 2)));
    assert!(restores(&step.outputs).is_empty());
    assert!(persists(&step.outputs).is_empty());
    assert_eq!(only_send(&step.outputs, id(2)).term, Term(3));
    assert_eq!(node.log().snapshot_index(), Index(0));
}

#[test]
fn leader_never_installs_a_snapshot_of_its_own_term() {
    let mut node = fresh();
    make_leader(&mut node);
    let step = receive(&mut node, id(2), Term(1), install(snapshot(5, 1)));
    assert!(step.outputs.is_empty());
    assert_eq!(node.log().snapshot_index(), Index(0));
}

#[test]
fn append_entries_overlapping_the_snapshot_skips_the_covered_entries() {
    let mut node = follower(6, 2);
    receive(&mut node, id(2), Term(1), install(snapshot(4, 1)));
    let step = receive(
        &mut node,
        id(2),
        Term(1),
        append(2, 1, entries(3, &[1; 6]), 4),
    );
    assert_eq!(
        persists(&step.outputs),
        [Persist::Append(entries(7, &[1, 1]))]
    );
    let (_, result) = as_append_reply(&only_send(&step.outputs, id(2)));
    assert_eq!(
        result,
        raft::AppendResult::Success {
            match_index: Index(8)
        }
    );
    assert_eq!(node.log().last_index(), Index(8));
}

#[test]
fn heartbeat_below_the_snapshot_matches_at_the_snapshot() {
    let mut node = follower(6, 2);
    receive(&mut node, id(2), Term(1), install(snapshot(4, 1)));
    let step = receive(&mut node, id(2), Term(1), append(0, 0, vec![], 4));
    let (prev_index, result) = as_append_reply(&only_send(&step.outputs, id(2)));
    assert_eq!(prev_index, Index(0));
    assert_eq!(
        result,
        raft::AppendResult::Success {
            match_index: Index(4)
        }
    );
    assert_eq!(node.log().last_index(), Index(6), "nothing truncated");
}

#[test]
fn a_snapshot_or_append_past_the_last_usable_index_is_ignored() {
    // A leader's next_index for a follower is one past its match: an index beyond Index::LAST
    // would leave no room for it (proptest found a leader whose next_index saturated).
    let mut node = follower(2, 2);
    let beyond = snapshot(u64::MAX, 1);
    let step = receive(&mut node, id(2), Term(1), install(beyond));
    assert!(persists(&step.outputs).is_empty(), "nothing persisted");
    assert_eq!(node.log().last_index(), Index(2));
    // A snapshot at the last usable index is taken; an entry after it is not.
    let at_last = snapshot(Index::LAST.0, 1);
    let step = receive(&mut node, id(2), Term(1), install(at_last.clone()));
    assert_eq!(persists(&step.outputs), [Persist::Snapshot(at_last)]);
    let step = receive(
        &mut node,
        id(2),
        Term(1),
        append(Index::LAST.0, 1, entries(u64::MAX, &[1]), 0),
    );
    assert!(persists(&step.outputs).is_empty(), "nothing persisted");
    assert_eq!(node.log().last_index(), Index::LAST);
}
