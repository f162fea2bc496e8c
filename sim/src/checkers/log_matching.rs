//! Log matching: two logs that hold an entry with the same index and term are identical up to
//! and including it (§5.3).
//!
//! Each node's log is mirrored from its `Persist` outputs as chained prefix fingerprints
//! (see [`LogMirror`]). A global table records, for every index, each term seen there with the
//! fingerprint of the prefix ending at it. Every entry a node comes to hold is looked up by
//! (index, term): a different fingerprint means two logs agree on the entry's index and term but
//! not on the prefix, which is the violation. Cost: O(1) per appended entry (plus hashing its
//! command), nothing per heartbeat, O(held entries) per restart.

use super::Violation;
use super::hash;
use super::mirror::{Held, LogMirror};
use super::window::{Slot, Window};
use raft::{Entry, Index, Log, Node, NodeId, Snapshot, Term};

/// The checker's name in violations.
pub(crate) const NAME: &str = "log_matching";

/// One (term, prefix) seen at an index, and the first node seen holding it.
#[derive(Clone, Copy, Debug)]
struct Version {
    term: Term,
    hash: u64,
    holder: usize,
}

/// The versions seen at one index: almost always one, so the first is kept inline.
#[derive(Clone, Debug, Default)]
struct Versions {
    first: Option<Version>,
    more: Vec<Version>,
}

impl Versions {
    fn find(&self, term: Term) -> Option<Version> {
        self.first
            .into_iter()
            .chain(self.more.iter().copied())
            .find(|v| v.term == term)
    }

    fn add(&mut self, version: Version) {
        if self.first.is_none() {
            self.first = Some(version);
        } else {
            self.more.push(version);
        }
    }
}

/// The log-matching checker; it also owns every node's log mirror, which the other log checkers
/// read.
#[derive(Clone, Debug)]
pub(crate) struct LogMatching {
    ids: Vec<NodeId>,
    mirrors: Vec<LogMirror>,
    /// Index -> the versions any log has held there. Forgets indices below every node's snapshot:
    /// no log can hold them again.
    versions: Window<Versions>,
}

impl LogMatching {
    pub(crate) fn new(ids: &[NodeId]) -> LogMatching {
        LogMatching {
            ids: ids.to_vec(),
            mirrors: ids.iter().map(|_| LogMirror::new()).collect(),
            versions: Window::new(0),
        }
    }

    /// The mirror of the node in `slot`.
    pub(crate) fn mirror(&self, slot: usize) -> &LogMirror {
        &self.mirrors[slot]
    }

    /// The lowest snapshot index of any node: below it, no log can change or be read again.
    pub(crate) fn horizon(&self) -> Index {
        self.mirrors
            .iter()
            .map(LogMirror::snapshot_index)
            .min()
            .unwrap_or(Index(0))
    }

    /// Forgets the versions below `index`.
    pub(crate) fn forget_below(&mut self, index: Index) {
        self.versions.forget_below(index.0);
    }

    /// A `Persist::Append`: truncate from the first entry's index, then hold each entry.
    pub(crate) fn on_append(&mut self, slot: usize, entries: &[Entry]) -> Result<(), Violation> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let mirror = &self.mirrors[slot];
        if !mirror.accepts_append_at(first.index) {
            return Err(Violation::new(
                NAME,
                format!(
                    "{} persisted an append starting at {} that does not fit its log (snapshot at \
                     {}, last entry {}): an append must start after the snapshot and at most one \
                     past the last entry",
                    self.ids[slot],
                    first.index,
                    mirror.snapshot_index(),
                    mirror.last_index()
                ),
            ));
        }
        self.mirrors[slot].truncate_from(first.index);
        for entry in entries {
            self.hold(slot, entry)?;
        }
        Ok(())
    }

    /// A `Persist::Snapshot` that the log does not ignore, with the committed prefix's
    /// fingerprint at its index.
    pub(crate) fn on_snapshot(&mut self, slot: usize, snapshot: &Snapshot, hash: u64) {
        self.mirrors[slot].install_snapshot(snapshot.index, snapshot.term, hash);
    }

    /// A restart: rebuild the mirror from the durable log, checking every entry again (the
    /// durable store is the source of truth for the new incarnation).
    pub(crate) fn on_restart(
        &mut self,
        slot: usize,
        log: &Log,
        snapshot_hash: u64,
    ) -> Result<(), Violation> {
        self.mirrors[slot].reset(
            log.snapshot().is_some(),
            log.snapshot_index(),
            log.snapshot_term(),
            snapshot_hash,
        );
        for entry in log.entries() {
            self.hold(slot, entry)?;
        }
        Ok(())
    }

    /// After a step: the node's log must be the one its outputs built. O(1).
    pub(crate) fn after_step(&self, slot: usize, node: &Node) -> Result<(), Violation> {
        let log = node.log();
        let mirror = &self.mirrors[slot];
        if mirror.snapshot_index() == log.snapshot_index()
            && mirror.last_index() == log.last_index()
            && mirror.last().term == log.last_term()
        {
            return Ok(());
        }
        Err(Violation::new(
            NAME,
            format!(
                "{}'s log (snapshot at {}, last entry {} {}) is not the log its Persist outputs \
                 built (snapshot at {}, last entry {} {}): an output was not reported to the \
                 checkers, or the log changed without one",
                self.ids[slot],
                log.snapshot_index(),
                log.last_index(),
                log.last_term(),
                mirror.snapshot_index(),
                mirror.last_index(),
                mirror.last().term,
            ),
        ))
    }

    /// Appends `entry` to the mirror after checking it against every log that held its index
    /// and term.
    fn hold(&mut self, slot: usize, entry: &Entry) -> Result<(), Violation> {
        let mirror = &self.mirrors[slot];
        let previous = mirror.last();
        let expected = mirror.last_index().next();
        if entry.index != expected || entry.term < previous.term {
            return Err(Violation::new(
                NAME,
                format!(
                    "{} holds entry {} {} right after {} {}: entries must be consecutive with \
                     terms that never decrease",
                    self.ids[slot],
                    entry.index,
                    entry.term,
                    mirror.last_index(),
                    previous.term
                ),
            ));
        }
        let hash = hash::chain(previous.hash, entry.term, hash::command(&entry.command));
        self.check_version(slot, entry.index, entry.term, hash)?;
        self.mirrors[slot].push(Held {
            term: entry.term,
            hash,
        });
        Ok(())
    }

    fn check_version(
        &mut self,
        slot: usize,
        index: Index,
        term: Term,
        hash: u64,
    ) -> Result<(), Violation> {
        let versions = match self.versions.get_or_grow(index.0) {
            Slot::Held(versions) => versions,
            Slot::Forgotten => return Ok(()),
            Slot::TooFar => {
                return Err(Violation::new(
                    NAME,
                    format!(
                        "{} holds entry {} {}, implausibly far past every index any log has held",
                        self.ids[slot], index, term
                    ),
                ));
            }
        };
        let other = match versions.find(term) {
            None => {
                versions.add(Version {
                    term,
                    hash,
                    holder: slot,
                });
                return Ok(());
            }
            Some(version) if version.hash == hash => return Ok(()),
            Some(version) => version,
        };
        Err(self.diverged(slot, index, term, other))
    }

    /// Describes two logs that hold `index`/`term` after different prefixes, naming where they
    /// first differ when the other log still holds its version.
    fn diverged(&self, slot: usize, index: Index, term: Term, other: Version) -> Violation {
        let (this_id, other_id) = (self.ids[slot], self.ids[other.holder]);
        let this_log = &self.mirrors[slot];
        let other_log = &self.mirrors[other.holder];
        let where_ = if other_log.held(index).is_some_and(|h| h.hash == other.hash) {
            // `this_log` holds up to `index - 1`; the two differ at `index` by construction.
            let floor = this_log.snapshot_index().max(other_log.snapshot_index());
            let mut first = index;
            while first > floor {
                let (a, b) = (this_log.held(first.prev()), other_log.held(first.prev()));
                if a.is_some() && a.map(|h| h.hash) == b.map(|h| h.hash) {
                    break;
                }
                first = first.prev();
            }
            let term_of = |log: &LogMirror| log.held(first).map_or(term, |h| h.term);
            let this_term = if first == index {
                term
            } else {
                term_of(this_log)
            };
            format!(
                "the logs first differ at {first} ({this_id} has {this_term} there, {other_id} has \
                 {}{})",
                term_of(other_log),
                if first == index {
                    ", same term but a different command"
                } else {
                    ""
                }
            )
        } else {
            format!("{other_id} has since replaced that entry, so where they differ is unknown")
        };
        Violation::new(
            NAME,
            format!(
                "{this_id} holds entry {index} {term} after a log prefix different from the one \
                 {other_id} held it after: two logs with an entry of the same index and term \
                 must be identical up to it; {where_}"
            ),
        )
    }
}
