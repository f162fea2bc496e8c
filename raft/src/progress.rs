//! What a leader knows about one follower: how far its log matches, where to send next, and how
//! the leader is currently talking to it.

use crate::types::Index;
use std::collections::VecDeque;

/// How a leader replicates to one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicationState {
    /// The leader does not know where the follower's log diverges: it sends one `AppendEntries`
    /// at a time and waits for the answer (or the next heartbeat) before sending another.
    Probe,
    /// The follower's log is known to match: the leader streams entries optimistically, with at
    /// most `max_inflight_appends` unanswered.
    Replicate,
    /// The follower needs entries the leader has discarded: a snapshot is on its way.
    Snapshot {
        /// The index of the snapshot sent.
        index: Index,
        /// Ticks since it was sent; the leader resends after an election timeout's worth.
        elapsed_ticks: u32,
    },
}

/// The leader's view of one follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Highest index known to be replicated on the follower. Never moves backwards.
    pub match_index: Index,
    /// Next index to send. Always at least `match_index + 1`.
    pub next_index: Index,
    /// The replication mode.
    pub state: ReplicationState,
    /// In `Probe`: an append is outstanding, so wait before sending another.
    pub probe_sent: bool,
    /// In `Replicate`: the last index of each unanswered append, oldest first.
    inflight: VecDeque<Index>,
}

impl Progress {
    /// A fresh follower entry for a new leader whose log ends at `last_index`.
    #[must_use]
    pub fn new(last_index: Index) -> Progress {
        Progress {
            match_index: Index(0),
            next_index: last_index.next(),
            state: ReplicationState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
        }
    }

    /// Records that the follower holds everything up to `index`. Returns true if that is news.
    pub fn on_match(&mut self, index: Index) -> bool {
        while self.inflight.front().is_some_and(|&last| last <= index) {
            self.inflight.pop_front();
        }
        if index <= self.match_index {
            return false;
        }
        self.match_index = index;
        if self.next_index <= index {
            self.next_index = index.next();
        }
        true
    }

    /// Switches to optimistic streaming from just past the match.
    pub fn become_replicate(&mut self) {
        self.state = ReplicationState::Replicate;
        self.next_index = self.match_index.next();
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// Switches to probing at `next_index` (clamped to at least `match_index + 1`).
    pub fn become_probe(&mut self, next_index: Index) {
        self.state = ReplicationState::Probe;
        self.next_index = next_index.max(self.match_index.next());
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// Switches to waiting for a snapshot at `index` to be installed.
    pub fn become_snapshot(&mut self, index: Index) {
        self.state = ReplicationState::Snapshot {
            index,
            elapsed_ticks: 0,
        };
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// Whether the leader may send an append with entries now.
    #[must_use]
    pub fn can_send(&self, max_inflight: usize) -> bool {
        match self.state {
            ReplicationState::Probe => !self.probe_sent,
            ReplicationState::Replicate => self.inflight.len() < max_inflight,
            ReplicationState::Snapshot { .. } => false,
        }
    }

    /// Records that an append ending at `last_index` was sent.
    pub fn on_sent(&mut self, last_index: Index) {
        match self.state {
            ReplicationState::Probe => self.probe_sent = true,
            ReplicationState::Replicate => {
                self.inflight.push_back(last_index);
                self.next_index = last_index.next();
            }
            ReplicationState::Snapshot { .. } => {}
        }
    }

    /// Appends currently unanswered in `Replicate`.
    #[must_use]
    pub fn inflight_count(&self) -> usize {
        self.inflight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_never_moves_back_and_next_stays_above_it() {
        let mut p = Progress::new(Index(10));
        assert!(p.on_match(Index(5)));
        assert!(!p.on_match(Index(3)));
        assert_eq!(p.match_index, Index(5));
        p.become_probe(Index(2));
        assert_eq!(p.next_index, Index(6));
    }

    #[test]
    fn replicate_window_fills_and_drains() {
        let mut p = Progress::new(Index(0));
        p.become_replicate();
        p.on_sent(Index(3));
        p.on_sent(Index(6));
        assert!(!p.can_send(2));
        assert_eq!(p.next_index, Index(7));
        p.on_match(Index(3));
        assert!(p.can_send(2));
        assert_eq!(p.inflight_count(), 1);
        p.on_match(Index(6));
        assert_eq!(p.inflight_count(), 0);
    }

    #[test]
    fn probe_sends_one_at_a_time() {
        let mut p = Progress::new(Index(4));
        assert!(p.can_send(8));
        p.on_sent(Index(5));
        assert!(!p.can_send(8));
        assert_eq!(
            p.next_index,
            Index(5),
            "probing does not advance next optimistically"
        );
    }
}
