//! The applications the labs' testers attach to every node, and their checks.
//!
//! * MIT (`config.go`): the tester itself is the application. It keeps a record per server of
//!   the command applied at every index (`cfg.logs[i]`), kept across crashes, and checks every
//!   apply against every other server's record and for order. The snapshotting applier
//!   (`applierSnap`) also asks for a snapshot at every index `i` with `(i + 1) % 10 == 0`, and
//!   ingests snapshots on `Restore` and on restart.
//! * SJTU (`raft_test_utils.h`): every node has a list state machine (`store`, with a placeholder
//!   at position 0 so that position = index) that dies with the node; a restarted node starts
//!   empty and rebuilds from its durable snapshot, then by re-applying. `num_append_logs` counts
//!   applied commands and is not changed by a snapshot restore.
//!
//! Every check failure here is a violation of state-machine safety (a `Safety` failure).

use crate::service::{Service, ServiceSpec};
use crate::tester::cmd::Cmd;
use raft::{Entry, Index, Snapshot, Term};
use std::collections::VecDeque;
use std::fmt;

/// The labs' `SnapShotInterval`: MIT's snapshotting applier compacts at every index `i` with
/// `(i + 1) % 10 == 0`.
pub const SNAPSHOT_INTERVAL: u64 = 10;

/// Which application the tester attaches to the nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppKind {
    /// MIT's `applier`: records and checks, never snapshots.
    MitPlain,
    /// MIT's `applierSnap`: records and checks, snapshots every [`SNAPSHOT_INTERVAL`] entries.
    MitSnapshot,
    /// SJTU's list state machine, snapshotted only by explicit `save_snapshot` calls.
    SjtuList,
    /// A replicated service (the part-5 key/value store, extent store, …).
    Service(ServiceSpec),
}

/// A snapshot the application asks the node to take (`Input::Compact`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compaction {
    /// The last index the snapshot covers.
    pub index: Index,
    /// The application's encoded state.
    pub snapshot: Vec<u8>,
}

/// The per-node applications of one run.
#[derive(Debug)]
pub enum Apps {
    /// MIT's tester record.
    Mit(MitRecord),
    /// SJTU's list state machines.
    Sjtu(Vec<ListMachine>),
    /// A replicated service's instances.
    Service(ServiceApps),
}

impl Apps {
    /// Fresh applications for `nodes` nodes.
    #[must_use]
    pub fn new(kind: AppKind, nodes: usize) -> Apps {
        match kind {
            AppKind::MitPlain => Apps::Mit(MitRecord::new(nodes, false)),
            AppKind::MitSnapshot => Apps::Mit(MitRecord::new(nodes, true)),
            AppKind::SjtuList => Apps::Sjtu(vec![ListMachine::new(); nodes]),
            AppKind::Service(spec) => Apps::Service(ServiceApps::new(spec, nodes)),
        }
    }

    /// Applies committed entries of `node`; snapshots the application wants taken are pushed to
    /// `compactions`.
    pub fn apply(
        &mut self,
        node: usize,
        entries: Vec<Entry>,
        compactions: &mut Vec<Compaction>,
    ) -> Result<(), String> {
        match self {
            Apps::Mit(record) => record.apply(node, entries, compactions),
            Apps::Sjtu(machines) => match machines.get_mut(node) {
                Some(machine) => machine.apply(node, entries),
                None => Err(format!("apply on unknown node {node}")),
            },
            Apps::Service(services) => services.apply(node, entries),
        }
    }

    /// Replaces `node`'s application state with `snapshot` (an `Output::Restore`).
    pub fn restore(&mut self, node: usize, snapshot: &Snapshot) -> Result<(), String> {
        match self {
            Apps::Mit(record) => record.ingest(node, snapshot),
            Apps::Sjtu(machines) => match machines.get_mut(node) {
                Some(machine) => machine.restore(node, snapshot),
                None => Err(format!("restore on unknown node {node}")),
            },
            Apps::Service(services) => services.restore(node, snapshot),
        }
    }

    /// `node` was started again with `snapshot` as its durable snapshot.
    pub fn on_restart(&mut self, node: usize, snapshot: Option<&Snapshot>) -> Result<(), String> {
        match self {
            Apps::Mit(record) => record.on_restart(node, snapshot),
            Apps::Sjtu(machines) => {
                let Some(machine) = machines.get_mut(node) else {
                    return Err(format!("restart of unknown node {node}"));
                };
                *machine = ListMachine::new();
                match snapshot {
                    Some(snapshot) => machine.restore(node, snapshot),
                    None => Ok(()),
                }
            }
            Apps::Service(services) => services.on_restart(node, snapshot),
        }
    }

    /// The labs' `nCommitted` / `num_committed`: how many nodes have applied `index`, and the
    /// value they agree on. Disagreement is an error.
    pub fn n_committed(&self, index: Index) -> Result<(u32, Option<Cmd>), String> {
        let values: Vec<Option<&Cmd>> = match self {
            Apps::Mit(record) => (0..record.logs.len())
                .map(|node| record.value(node, index))
                .collect(),
            Apps::Sjtu(machines) => machines.iter().map(|m| m.value(index)).collect(),
            // A service's commands are its own; the labs' agreement counts do not apply.
            Apps::Service(_) => Vec::new(),
        };
        let mut count = 0;
        let mut agreed: Option<(usize, &Cmd)> = None;
        for (node, value) in values.into_iter().enumerate() {
            let Some(value) = value else { continue };
            if let Some((first, seen)) = agreed
                && seen != value
            {
                return Err(format!(
                    "committed values do not match: index {} server {first} has {seen}, \
                     server {node} has {value}",
                    index.0
                ));
            }
            count += 1;
            agreed = Some((node, value));
        }
        Ok((count, agreed.map(|(_, value)| value.clone())))
    }

    /// The highest index any node has applied (the labs' "agreements").
    #[must_use]
    pub fn max_index(&self) -> u64 {
        match self {
            Apps::Mit(record) => record.max_index,
            Apps::Sjtu(machines) => machines
                .iter()
                .map(ListMachine::last_index)
                .max()
                .unwrap_or(0),
            Apps::Service(services) => services
                .nodes
                .iter()
                .map(|n| n.last_applied)
                .max()
                .unwrap_or(0),
        }
    }

    /// SJTU's `num_append_logs` of `node` (None for MIT applications).
    #[must_use]
    pub fn num_append_logs(&self, node: usize) -> Option<u64> {
        match self {
            Apps::Mit(_) | Apps::Service(_) => None,
            Apps::Sjtu(machines) => machines.get(node).map(|m| m.num_append_logs),
        }
    }

    /// SJTU's `snapshot()` of `node`: its last applied index and the encoded store.
    #[must_use]
    pub fn snapshot_of(&self, node: usize) -> Option<Compaction> {
        match self {
            Apps::Mit(_) => None,
            Apps::Sjtu(machines) => machines.get(node).map(ListMachine::snapshot),
            Apps::Service(services) => services.snapshot_of(node),
        }
    }

    /// `node`'s last applied index and an FNV-1a hash of the commands it applied at
    /// `1..=last` (`None` for services and unknown nodes).
    #[must_use]
    pub fn applied_digest(&self, node: usize) -> Option<(u64, u64)> {
        let values: Vec<&Cmd> = match self {
            Apps::Mit(record) => {
                let log = record.logs.get(node)?;
                log.iter().skip(1).map_while(Option::as_ref).collect()
            }
            Apps::Sjtu(machines) => machines.get(node)?.store.iter().skip(1).collect(),
            Apps::Service(_) => return None,
        };
        let mut hash = crate::trace::Fnv64::new();
        for value in &values {
            hash.write(&(value.len() as u64).to_le_bytes());
            hash.write(value.as_bytes());
        }
        Some((values.len() as u64, hash.finish()))
    }

    /// The service instances, if the run hosts a service.
    #[must_use]
    pub fn services(&self) -> Option<&ServiceApps> {
        match self {
            Apps::Service(services) => Some(services),
            Apps::Mit(_) | Apps::Sjtu(_) => None,
        }
    }

    /// The service instances, mutably.
    pub fn services_mut(&mut self) -> Option<&mut ServiceApps> {
        match self {
            Apps::Service(services) => Some(services),
            Apps::Mit(_) | Apps::Sjtu(_) => None,
        }
    }
}

/// MIT's tester record: per server, the command applied at each index (`cfg.logs`), and for the
/// snapshotting applier the last applied index (`cfg.lastApplied`).
#[derive(Clone, Debug)]
pub struct MitRecord {
    snapshots: bool,
    /// `logs[server][index]`; index 0 is never a command.
    logs: Vec<Vec<Option<Cmd>>>,
    last_applied: Vec<u64>,
    max_index: u64,
}

/// MIT's snapshot encoding: the last included index and the commands at 0..=index.
type MitSnapshot = (u64, Vec<Option<Cmd>>);

impl MitRecord {
    fn new(nodes: usize, snapshots: bool) -> MitRecord {
        MitRecord {
            snapshots,
            logs: vec![Vec::new(); nodes],
            last_applied: vec![0; nodes],
            max_index: 0,
        }
    }

    fn value(&self, node: usize, index: Index) -> Option<&Cmd> {
        let position = usize::try_from(index.0).ok()?;
        self.logs.get(node)?.get(position)?.as_ref()
    }

    fn apply(
        &mut self,
        node: usize,
        entries: Vec<Entry>,
        compactions: &mut Vec<Compaction>,
    ) -> Result<(), String> {
        for entry in entries {
            let index = entry.index.0;
            if self.snapshots {
                let expected = self.last_applied.get(node).copied().unwrap_or(0) + 1;
                if index != expected {
                    return Err(format!(
                        "server {node} apply out of order, expected index {expected}, got {index}"
                    ));
                }
            }
            self.check_logs(node, entry.index, Cmd::bytes(entry.command))?;
            if let Some(last) = self.last_applied.get_mut(node) {
                *last = index;
            }
            if self.snapshots && (index + 1) % SNAPSHOT_INTERVAL == 0 {
                compactions.push(self.snapshot(node, entry.index)?);
            }
        }
        Ok(())
    }

    /// `cfg.checkLogs`: the value must equal every other server's at that index, and the server
    /// must have applied the index before.
    fn check_logs(&mut self, node: usize, index: Index, value: Cmd) -> Result<(), String> {
        for (other, log) in self.logs.iter().enumerate() {
            let held = usize::try_from(index.0)
                .ok()
                .and_then(|p| log.get(p)?.as_ref());
            if let Some(held) = held
                && *held != value
            {
                return Err(format!(
                    "commit index={} server={node} {value} != server={other} {held}",
                    index.0
                ));
            }
        }
        let position = usize::try_from(index.0).map_err(|_| format!("index {index} too large"))?;
        let Some(log) = self.logs.get_mut(node) else {
            return Err(format!("apply on unknown node {node}"));
        };
        if log.len() <= position {
            log.resize(position + 1, None);
        }
        log[position] = Some(value);
        self.max_index = self.max_index.max(index.0);
        let previous_held = position > 1 && log[position - 1].is_some();
        if index.0 > 1 && !previous_held {
            return Err(format!("server {node} apply out of order {}", index.0));
        }
        Ok(())
    }

    fn snapshot(&self, node: usize, index: Index) -> Result<Compaction, String> {
        let end = usize::try_from(index.0).map_err(|_| format!("index {index} too large"))?;
        let log = self.logs.get(node).map(Vec::as_slice).unwrap_or_default();
        // Borrowed commands encode exactly as the owned `MitSnapshot` would, without copying.
        let mut commands: Vec<Option<&Cmd>> =
            log.iter().take(end + 1).map(Option::as_ref).collect();
        commands.resize(end + 1, None);
        let encoded = (index.0, commands);
        let snapshot = postcard::to_allocvec(&encoded).map_err(|e| e.to_string())?;
        Ok(Compaction { index, snapshot })
    }

    /// `applierSnap` on a `SnapshotValid` message (and `start1` on a saved snapshot): decode,
    /// check the index, replace the record and `lastApplied`.
    fn ingest(&mut self, node: usize, snapshot: &Snapshot) -> Result<(), String> {
        let (index, commands): MitSnapshot = postcard::from_bytes(&snapshot.data).map_err(|e| {
            format!(
                "server {node}: snapshot at {} does not decode: {e}",
                snapshot.index
            )
        })?;
        if index != snapshot.index.0 {
            return Err(format!(
                "server {node}: snapshot index {} does not match the encoded index {index}",
                snapshot.index.0
            ));
        }
        let (Some(log), Some(last)) = (self.logs.get_mut(node), self.last_applied.get_mut(node))
        else {
            return Err(format!("snapshot for unknown node {node}"));
        };
        *log = commands;
        *last = index;
        self.max_index = self.max_index.max(index);
        Ok(())
    }

    fn on_restart(&mut self, node: usize, snapshot: Option<&Snapshot>) -> Result<(), String> {
        if let Some(last) = self.last_applied.get_mut(node) {
            *last = 0;
        }
        match snapshot {
            Some(snapshot) if self.snapshots => self.ingest(node, snapshot),
            Some(_) | None => Ok(()),
        }
    }
}

/// SJTU's `list_state_machine`: the applied values in order, with a placeholder at position 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListMachine {
    store: Vec<Cmd>,
    num_append_logs: u64,
}

impl ListMachine {
    fn new() -> ListMachine {
        ListMachine {
            store: vec![Cmd::int(0)],
            num_append_logs: 0,
        }
    }

    fn last_index(&self) -> u64 {
        self.store.len().saturating_sub(1) as u64
    }

    fn value(&self, index: Index) -> Option<&Cmd> {
        if index.0 == 0 {
            return None;
        }
        self.store.get(usize::try_from(index.0).ok()?)
    }

    fn apply(&mut self, node: usize, entries: Vec<Entry>) -> Result<(), String> {
        for entry in entries {
            if entry.index.0 != self.store.len() as u64 {
                return Err(format!(
                    "node {node} apply out of order: expected index {}, got {}",
                    self.store.len(),
                    entry.index.0
                ));
            }
            self.store.push(Cmd::bytes(entry.command));
            self.num_append_logs += 1;
        }
        Ok(())
    }

    fn snapshot(&self) -> Compaction {
        Compaction {
            index: Index(self.last_index()),
            // Encoding plain data into a growable Vec cannot fail.
            snapshot: postcard::to_allocvec(&self.store).unwrap_or_default(),
        }
    }

    fn restore(&mut self, node: usize, snapshot: &Snapshot) -> Result<(), String> {
        let store: Vec<Cmd> = postcard::from_bytes(&snapshot.data).map_err(|e| {
            format!(
                "node {node}: snapshot at {} does not decode: {e}",
                snapshot.index
            )
        })?;
        if store.len() as u64 != snapshot.index.0 + 1 {
            return Err(format!(
                "node {node}: snapshot at {} holds {} values",
                snapshot.index.0,
                store.len().saturating_sub(1)
            ));
        }
        self.store = store;
        Ok(())
    }
}

/// How many recent results each service instance keeps for [`ServiceApps::result`].
pub const RESULTS_KEPT: usize = 4096;

/// One node's service instance.
struct ServiceNode {
    service: Box<dyn Service>,
    last_applied: u64,
    /// The most recent `(index, term, reply)` results, oldest first.
    results: VecDeque<(u64, Term, Vec<u8>)>,
}

/// The service instances of a run, one per node.
pub struct ServiceApps {
    spec: ServiceSpec,
    nodes: Vec<ServiceNode>,
    /// Results of the last `apply` call, for the cluster to answer waiting clients.
    fresh: Vec<(u64, Term)>,
}

impl fmt::Debug for ServiceApps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceApps")
            .field("spec", &self.spec)
            .field(
                "last_applied",
                &self
                    .nodes
                    .iter()
                    .map(|n| n.last_applied)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl ServiceApps {
    fn new(spec: ServiceSpec, nodes: usize) -> ServiceApps {
        ServiceApps {
            spec,
            nodes: (0..nodes).map(|_| ServiceApps::fresh_node(spec)).collect(),
            fresh: Vec::new(),
        }
    }

    fn fresh_node(spec: ServiceSpec) -> ServiceNode {
        ServiceNode {
            service: (spec.make)(),
            last_applied: 0,
            results: VecDeque::new(),
        }
    }

    /// The hosted service.
    #[must_use]
    pub fn spec(&self) -> ServiceSpec {
        self.spec
    }

    /// The last index `node`'s instance applied.
    #[must_use]
    pub fn last_applied(&self, node: usize) -> u64 {
        self.nodes.get(node).map_or(0, |n| n.last_applied)
    }

    /// The reply `node`'s instance produced for the entry at `index`, with the entry's term, if
    /// it applied it recently (the last [`RESULTS_KEPT`] entries of this incarnation).
    #[must_use]
    pub fn result(&self, node: usize, index: u64) -> Option<(Term, &[u8])> {
        let results = &self.nodes.get(node)?.results;
        let position = results.binary_search_by_key(&index, |(i, _, _)| *i).ok()?;
        results
            .get(position)
            .map(|(_, term, reply)| (*term, reply.as_slice()))
    }

    /// Takes the `(index, term)` of the entries applied by the last `apply`.
    pub fn take_fresh(&mut self) -> Vec<(u64, Term)> {
        std::mem::take(&mut self.fresh)
    }

    fn apply(&mut self, node: usize, entries: Vec<Entry>) -> Result<(), String> {
        let Some(instance) = self.nodes.get_mut(node) else {
            return Err(format!("apply on unknown node {node}"));
        };
        for entry in entries {
            let expected = instance.last_applied + 1;
            if entry.index.0 != expected {
                return Err(format!(
                    "server {node} apply out of order: expected index {expected}, got {}",
                    entry.index.0
                ));
            }
            let reply = instance.service.apply(entry.index, &entry.command);
            instance.last_applied = entry.index.0;
            if instance.results.len() == RESULTS_KEPT {
                instance.results.pop_front();
            }
            instance
                .results
                .push_back((entry.index.0, entry.term, reply));
            self.fresh.push((entry.index.0, entry.term));
        }
        Ok(())
    }

    fn restore(&mut self, node: usize, snapshot: &Snapshot) -> Result<(), String> {
        let Some(instance) = self.nodes.get_mut(node) else {
            return Err(format!("restore on unknown node {node}"));
        };
        if snapshot.index.0 < instance.last_applied {
            return Err(format!(
                "server {node}: snapshot at {} would move the service back from {}",
                snapshot.index.0, instance.last_applied
            ));
        }
        instance.service.restore(&snapshot.data).map_err(|e| {
            format!(
                "server {node}: snapshot at {} does not restore: {e}",
                snapshot.index
            )
        })?;
        instance.last_applied = snapshot.index.0;
        instance.results.clear();
        Ok(())
    }

    fn on_restart(&mut self, node: usize, snapshot: Option<&Snapshot>) -> Result<(), String> {
        let spec = self.spec;
        let Some(instance) = self.nodes.get_mut(node) else {
            return Err(format!("restart of unknown node {node}"));
        };
        *instance = ServiceApps::fresh_node(spec);
        match snapshot {
            Some(snapshot) => self.restore(node, snapshot),
            None => Ok(()),
        }
    }

    /// A snapshot of `node`'s instance at its last applied index.
    #[must_use]
    pub fn snapshot_of(&self, node: usize) -> Option<Compaction> {
        let instance = self.nodes.get(node)?;
        Some(Compaction {
            index: Index(instance.last_applied),
            snapshot: instance.service.snapshot(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::Term;

    fn entry(index: u64, value: i64) -> Entry {
        Entry {
            index: Index(index),
            term: Term(1),
            command: Cmd::int(value).into_bytes(),
        }
    }

    #[test]
    fn mit_record_detects_mismatch_and_gaps() {
        let mut apps = Apps::new(AppKind::MitPlain, 2);
        let mut compactions = Vec::new();
        apps.apply(0, vec![entry(1, 10), entry(2, 20)], &mut compactions)
            .unwrap();
        assert_eq!(apps.n_committed(Index(2)).unwrap(), (1, Some(Cmd::int(20))));
        assert!(apps.apply(1, vec![entry(1, 11)], &mut compactions).is_err());
        let mut apps = Apps::new(AppKind::MitPlain, 2);
        assert!(apps.apply(0, vec![entry(2, 20)], &mut compactions).is_err());
    }

    #[test]
    fn mit_snapshot_applier_compacts_every_ten_and_ingests() {
        let mut apps = Apps::new(AppKind::MitSnapshot, 2);
        let mut compactions = Vec::new();
        let entries: Vec<Entry> = (1..=12).map(|i| entry(i, i as i64 * 100)).collect();
        apps.apply(0, entries, &mut compactions).unwrap();
        assert_eq!(compactions.len(), 1);
        assert_eq!(compactions[0].index, Index(9));
        let owned: MitSnapshot = (
            9,
            std::iter::once(None)
                .chain((1..=9).map(|i| Some(Cmd::int(i * 100))))
                .collect(),
        );
        assert_eq!(
            compactions[0].snapshot,
            postcard::to_allocvec(&owned).unwrap(),
            "the snapshot is MIT's encoding of the commands at 0..=9"
        );
        let snapshot = Snapshot {
            index: Index(9),
            term: Term(1),
            data: compactions[0].snapshot.clone(),
        };
        apps.restore(1, &snapshot).unwrap();
        assert_eq!(apps.n_committed(Index(9)).unwrap().0, 2);
        assert_eq!(apps.n_committed(Index(10)).unwrap().0, 1);
        // The next apply on node 1 must be index 10.
        assert!(
            apps.apply(1, vec![entry(11, 1100)], &mut compactions)
                .is_err()
        );
        let bad = Snapshot {
            index: Index(8),
            ..snapshot
        };
        assert!(apps.restore(1, &bad).is_err());
    }

    #[test]
    fn sjtu_list_counts_appends_not_restores() {
        let mut apps = Apps::new(AppKind::SjtuList, 2);
        let mut compactions = Vec::new();
        apps.apply(
            0,
            (1..=5).map(|i| entry(i, i as i64)).collect(),
            &mut compactions,
        )
        .unwrap();
        assert_eq!(apps.num_append_logs(0), Some(5));
        let taken = apps.snapshot_of(0).unwrap();
        assert_eq!(taken.index, Index(5));
        let snapshot = Snapshot {
            index: taken.index,
            term: Term(1),
            data: taken.snapshot,
        };
        apps.on_restart(1, Some(&snapshot)).unwrap();
        assert_eq!(apps.num_append_logs(1), Some(0));
        assert_eq!(apps.n_committed(Index(5)).unwrap(), (2, Some(Cmd::int(5))));
        apps.apply(1, vec![entry(6, 6)], &mut compactions).unwrap();
        assert_eq!(apps.num_append_logs(1), Some(1));
        assert!(apps.apply(1, vec![entry(8, 8)], &mut compactions).is_err());
    }
}
