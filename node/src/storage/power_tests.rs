//! Power failures against [`Storage`] on the simulated disk: whatever moment the power goes —
//! between two calls, or in the middle of a write — the state a restart recovers is one the
//! node could have persisted, holds everything the last completed sync made durable, and never
//! has a hard state older than its log. Crashes during recovery itself are covered too.

use super::disk::{Disk, SimDisk};
use super::*;
use proptest::prelude::*;
use raft::{NodeId, Term};
use std::collections::BTreeSet;

const DIR: &str = "data/n1";

fn open(disk: &SimDisk) -> Result<(Storage, RecoveryReport), StorageError> {
    Storage::open_on(Box::new(disk.clone()), DIR)
}

fn entry(index: u64, term: Term) -> Entry {
    Entry {
        index: Index(index),
        term,
        command: format!("c{index}.{}", term.0).into(),
    }
}

// ---------------------------------------------------------------------------------------------
// The simulated disk on its own.

#[test]
fn synced_data_survives_and_unsynced_appends_survive_as_a_prefix() {
    let mut outcomes = BTreeSet::new();
    for seed in 0..64 {
        let mut disk = SimDisk::new(seed);
        let path = Path::new("f");
        disk.append(path, b"durable").unwrap();
        disk.sync_file(path).unwrap();
        disk.sync_dir(Path::new(".")).unwrap();
        disk.append(path, b"-volatile").unwrap();
        disk.power_fail();
        let after = disk.read(path).unwrap().expect("a synced name survives");
        assert!(after.starts_with(b"durable"), "seed {seed}: {after:?}");
        let rest = &after[b"durable".len()..];
        let zeros_from = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        assert!(
            b"-volatile".starts_with(&rest[..zeros_from]),
            "seed {seed}: {after:?} is not the synced data, a prefix of the rest, then zeros"
        );
        assert!(rest[zeros_from..].iter().all(|&b| b == 0), "seed {seed}");
        outcomes.insert((rest.len(), zeros_from));
    }
    // Both extremes and torn writes with zero tails all happen.
    assert!(outcomes.contains(&(0, 0)), "{outcomes:?}");
    assert!(outcomes.contains(&(9, 9)), "{outcomes:?}");
    assert!(outcomes.iter().any(|(len, z)| z < len), "{outcomes:?}");
}

#[test]
fn a_new_name_needs_its_directory_synced() {
    let mut vanished = 0;
    for seed in 0..32 {
        let mut disk = SimDisk::new(seed);
        disk.create_dir_all(Path::new("d")).unwrap();
        disk.sync_dir(Path::new(".")).unwrap();
        disk.write(Path::new("d/synced"), b"a").unwrap();
        disk.sync_file(Path::new("d/synced")).unwrap();
        disk.sync_dir(Path::new("d")).unwrap();
        disk.write(Path::new("d/unsynced"), b"b").unwrap();
        disk.sync_file(Path::new("d/unsynced")).unwrap();
        disk.power_fail();
        assert_eq!(
            disk.read(Path::new("d/synced")).unwrap(),
            Some(b"a".to_vec())
        );
        match disk.read(Path::new("d/unsynced")).unwrap() {
            None => vanished += 1,
            Some(bytes) => assert_eq!(bytes, b"b"),
        }
    }
    assert!(vanished > 0 && vanished < 32, "vanished {vanished} of 32");
}

#[test]
fn an_unsynced_directory_takes_its_files_with_it() {
    let mut vanished = 0;
    for seed in 0..32 {
        let mut disk = SimDisk::new(seed);
        disk.create_dir_all(Path::new("a/b")).unwrap();
        disk.write(Path::new("a/b/f"), b"x").unwrap();
        disk.sync_file(Path::new("a/b/f")).unwrap();
        disk.sync_dir(Path::new("a/b")).unwrap();
        disk.power_fail();
        match disk.read(Path::new("a/b/f")).unwrap() {
            None => vanished += 1,
            Some(bytes) => assert_eq!(bytes, b"x"),
        }
    }
    assert!(
        vanished > 0,
        "a file under never-synced directories always survived"
    );
}

#[test]
fn an_unsynced_rename_leaves_the_old_or_the_new_file() {
    let mut seen = BTreeSet::new();
    for seed in 0..32 {
        let mut disk = SimDisk::new(seed);
        let (target, tmp) = (Path::new("t"), Path::new("t.tmp"));
        disk.write(target, b"old").unwrap();
        disk.sync_file(target).unwrap();
        disk.sync_dir(Path::new(".")).unwrap();
        disk.write(tmp, b"new").unwrap();
        disk.sync_file(tmp).unwrap();
        disk.rename(tmp, target).unwrap();
        disk.power_fail();
        let content = disk
            .read(target)
            .unwrap()
            .expect("the target never disappears");
        assert!(content == b"old" || content == b"new", "{content:?}");
        seen.insert(content);
    }
    assert_eq!(seen.len(), 2, "both outcomes happen");
}

#[test]
fn a_dying_disk_tears_the_failing_write_and_refuses_later_calls() {
    let mut torn = BTreeSet::new();
    for seed in 0..32 {
        let mut disk = SimDisk::new(seed);
        let path = Path::new("log");
        disk.fail_after(1);
        disk.append(path, b"first").unwrap();
        assert!(disk.append(path, b"second").is_err());
        assert!(disk.is_dead());
        assert!(disk.read(path).is_err());
        assert!(disk.sync_file(path).is_err());
        disk.power_fail();
        assert!(!disk.is_dead());
        // Nothing was synced, not even the name: any prefix of what was written, or nothing.
        let after = disk.read(path).unwrap().unwrap_or_default();
        let real = after.iter().rposition(|&b| b != 0).map_or(0, |at| at + 1);
        assert!(b"firstsecond".starts_with(&after[..real]), "{after:?}");
        torn.insert(after.len());
        disk.append(path, b"!").unwrap();
    }
    assert!(
        torn.len() > 3,
        "power failures keep varied amounts: {torn:?}"
    );
}

#[test]
fn a_sync_the_disk_dies_on_does_not_happen() {
    let mut lost = 0;
    for seed in 0..32 {
        let mut disk = SimDisk::new(seed);
        let path = Path::new("f");
        disk.write(path, b"kept").unwrap();
        disk.sync_file(path).unwrap();
        disk.sync_dir(Path::new(".")).unwrap();
        disk.append(path, b"+maybe").unwrap();
        disk.fail_after(0);
        assert!(disk.sync_file(path).is_err());
        disk.power_fail();
        let after = disk.read(path).unwrap().unwrap();
        assert!(after.starts_with(b"kept"), "{after:?}");
        if after != b"kept+maybe" {
            lost += 1;
        }
    }
    assert!(
        lost > 0,
        "the failed sync made the append durable on every seed"
    );
}

#[test]
fn a_duplicate_is_independent() {
    let mut disk = SimDisk::new(1);
    disk.write(Path::new("f"), b"one").unwrap();
    let mut copy = disk.duplicate();
    copy.write(Path::new("f"), b"two").unwrap();
    assert_eq!(disk.read(Path::new("f")).unwrap(), Some(b"one".to_vec()));
    assert_eq!(copy.read(Path::new("f")).unwrap(), Some(b"two".to_vec()));
}

// ---------------------------------------------------------------------------------------------
// Storage under power failures.

/// A fresh data directory's own name is made durable: without the parent-directory syncs in
/// `Storage::open`, this loses the synced vote on some seeds.
#[test]
fn a_new_data_directory_survives_a_power_failure() {
    for seed in 0..32 {
        let disk = SimDisk::new(seed);
        let hard = HardState {
            term: Term(3),
            voted_for: Some(NodeId(2)),
        };
        {
            let (mut storage, _) = open(&disk).unwrap();
            storage.persist(&Persist::HardState(hard)).unwrap();
        }
        disk.power_fail();
        let (storage, report) = open(&disk).unwrap();
        assert_eq!(storage.durable().hard_state, hard, "seed {seed}");
        assert!(!report.fresh, "seed {seed}");
    }
}

/// Media corruption of a synced record is refused with the file and offset, on the simulated
/// disk as on the real one, and a power failure never turns it into a clean start.
#[test]
fn a_corrupt_synced_record_is_refused_after_a_power_failure() {
    let disk = SimDisk::new(5);
    {
        let (mut storage, _) = open(&disk).unwrap();
        storage
            .persist(&Persist::HardState(HardState {
                term: Term(1),
                voted_for: None,
            }))
            .unwrap();
        for i in 1..=3 {
            storage
                .persist(&Persist::Append(vec![entry(i, Term(1))]))
                .unwrap();
        }
    }
    let log = Path::new(DIR).join(LOG_FILE);
    // The first append record, right after the log's header record.
    let first = log_header().len() as u64;
    assert!(disk.corrupt(&log, first + record::HEADER_BYTES as u64 + 2, 3));
    disk.power_fail();
    let (path, offset, _) = expect_corrupt(&disk);
    assert_eq!((path, offset), (log.clone(), first));
    assert!(!disk.corrupt(&log, 1 << 20, 0), "past the end of the file");
}

/// Opens `disk`, which must be refused as corrupt; returns the file, offset and reason.
fn expect_corrupt(disk: &SimDisk) -> (PathBuf, u64, String) {
    match open(disk) {
        Err(StorageError::Corrupt {
            path,
            offset,
            reason,
        }) => (path, offset, reason),
        Ok((storage, report)) => panic!(
            "expected a corruption error, but it opened (synced data cut?): last index {}, {:?}",
            storage.durable().log.last_index(),
            report.torn_tail
        ),
        Err(e) => panic!("expected a corruption error, got {e}"),
    }
}

fn voted() -> HardState {
    HardState {
        term: Term(3),
        voted_for: Some(NodeId(2)),
    }
}

/// A data directory created by an open that was killed before it synced the parent (or by
/// `mkdir -p`) is made durable by the next open, though that open creates nothing.
#[test]
fn a_data_directory_left_by_a_killed_open_is_made_durable() {
    for seed in 0..32 {
        let mut disk = SimDisk::new(seed);
        disk.create_dir_all(Path::new(DIR)).unwrap();
        {
            let (mut storage, _) = open(&disk).unwrap();
            storage.persist(&Persist::HardState(voted())).unwrap();
        }
        disk.power_fail();
        let (storage, _) = open(&disk).unwrap();
        assert_eq!(storage.durable().hard_state, voted(), "seed {seed}");
    }
}

/// A storage with hard state and entries 1..=3 synced, one record each, on a fresh disk.
fn three_synced_entries(seed: u64) -> (SimDisk, PathBuf) {
    let disk = SimDisk::new(seed);
    {
        let (mut storage, _) = open(&disk).unwrap();
        storage.persist(&Persist::HardState(voted())).unwrap();
        for i in 1..=3 {
            storage
                .persist(&Persist::Append(vec![entry(i, Term(3))]))
                .unwrap();
        }
    }
    (disk, Path::new(DIR).join(LOG_FILE))
}

fn log_record(entries: &[Entry]) -> Vec<u8> {
    let mut bytes = Vec::new();
    record::encode(
        &postcard::to_allocvec(&LogRecordRef::Append(entries)).unwrap(),
        &mut bytes,
    );
    bytes
}

/// Entries 1..=3 of term 3 with `command`, each persisted (synced) on its own, on a fresh disk;
/// returns the disk, the log's path and the offset of each entry's record.
fn synced_entries_with(command: &[u8]) -> (SimDisk, PathBuf, Vec<u64>) {
    let disk = SimDisk::new(9);
    {
        let (mut storage, _) = open(&disk).unwrap();
        storage.persist(&Persist::HardState(voted())).unwrap();
        for i in 1..=3 {
            let entry = Entry {
                index: Index(i),
                term: Term(3),
                command: command.into(),
            };
            storage.persist(&Persist::Append(vec![entry])).unwrap();
        }
    }
    let log = Path::new(DIR).join(LOG_FILE);
    let bytes = disk.clone().read(&log).unwrap().unwrap();
    // Each sync wrote an append record and its commit record.
    let appends = record::scan(&bytes)
        .records
        .iter()
        .filter(|r| matches!(postcard::from_bytes(r.payload), Ok(LogRecord::Append(_))))
        .map(|r| r.offset)
        .collect();
    (disk, log, appends)
}

/// Bit rot in a synced record, followed by an unsynced append the file system zero-filled: a
/// later sync's commit record proves the record was synced, so it is refused, not cut — also
/// when the commands are all zeros and the damaged record ends in a zero byte.
#[test]
fn bit_rot_in_a_synced_record_before_a_zero_tail_is_refused() {
    for command in [&b"c.3"[..], &[0u8; 1024][..]] {
        let (disk, log, appends) = synced_entries_with(command);
        assert!(disk.corrupt(&log, appends[1] + record::HEADER_BYTES as u64 + 5, 2));
        let mut handle = disk.clone();
        handle.append(&log, &[0; 64]).unwrap();
        handle.sync_file(&log).unwrap();
        let (path, offset, reason) = expect_corrupt(&disk);
        assert_eq!((path, offset), (log.clone(), appends[1]));
        assert!(reason.contains("before a batch committed"), "{reason}");
    }
}

/// A log rewrite is atomic (temporary file, fsync, rename), so no crash tears it: damage in a
/// freshly rewritten log is refused, though no later sync has committed anything yet.
#[test]
fn bit_rot_in_a_rewritten_log_is_refused() {
    let disk = SimDisk::new(9);
    {
        let (mut storage, _) = open(&disk).unwrap();
        storage.persist(&Persist::HardState(voted())).unwrap();
        let entries: Vec<Entry> = (1..=3000).map(|i| entry(i, Term(3))).collect();
        storage.persist(&Persist::Append(entries)).unwrap();
        storage
            .persist(&Persist::Snapshot(Snapshot {
                index: Index(5),
                term: Term(3),
                data: vec![7; 10],
            }))
            .unwrap();
        assert_eq!(storage.stats().log_rewrites, 1);
    }
    let log = Path::new(DIR).join(LOG_FILE);
    let first = log_header().len() as u64;
    assert!(disk.corrupt(&log, first + record::HEADER_BYTES as u64 + 5, 2));
    assert_eq!(expect_corrupt(&disk).1, first);
}

/// A log written before headers and commit records: damage with records after it is refused,
/// a torn last record is cut, and an intact one is rewritten in the current format on open.
#[test]
fn a_log_in_the_old_format_is_judged_as_before_and_rewritten() {
    let legacy = |damage: Option<u64>, cut: usize| {
        let disk = SimDisk::new(9);
        {
            let (mut storage, _) = open(&disk).unwrap();
            storage.persist(&Persist::HardState(voted())).unwrap();
        }
        let log = Path::new(DIR).join(LOG_FILE);
        let mut bytes: Vec<u8> = (1..=3)
            .flat_map(|i| log_record(&[entry(i, Term(3))]))
            .collect();
        bytes.truncate(bytes.len() - cut);
        let mut handle = disk.clone();
        handle.write(&log, &bytes).unwrap();
        handle.sync_file(&log).unwrap();
        if let Some(at) = damage {
            assert!(disk.corrupt(&log, at, 2));
        }
        (disk, log)
    };
    let (disk, _) = legacy(Some(record::HEADER_BYTES as u64 + 3), 0);
    assert_eq!(expect_corrupt(&disk).1, 0);

    let (disk, _) = legacy(None, 3);
    let (storage, report) = open(&disk).unwrap();
    assert_eq!(storage.durable().log.last_index(), Index(2));
    assert!(report.torn_tail.is_some() && report.log_rewritten);

    let (disk, log) = legacy(None, 0);
    let (storage, report) = open(&disk).unwrap();
    assert_eq!(storage.durable().log.last_index(), Index(3));
    assert!(report.log_rewritten);
    let bytes = disk.clone().read(&log).unwrap().unwrap();
    assert!(bytes.starts_with(&log_header()), "rewritten with a header");
    drop(storage);
    assert_eq!(open(&disk).unwrap().0.durable().log.last_index(), Index(3));
}

/// The known limit: damage in the last sync's records cannot be told from a torn write (no
/// later commit vouches for them), so it is cut and reported, not refused.
#[test]
fn damage_in_the_last_synced_batch_is_cut_and_reported() {
    let (disk, log, appends) = synced_entries_with(b"c.3");
    assert!(disk.corrupt(&log, appends[2] + record::HEADER_BYTES as u64 + 5, 2));
    let (storage, report) = open(&disk).unwrap();
    assert_eq!(storage.durable().log.last_index(), Index(2));
    assert_eq!(report.torn_tail.map(|t| t.offset), Some(appends[2]));
}

/// One unsynced write of two records where the first's page never landed and the second's did:
/// only unsynced data is damaged, so the node starts, without either.
#[test]
fn a_hole_before_data_that_landed_is_a_torn_tail() {
    let (disk, log) = three_synced_entries(5);
    let mut handle = disk.clone();
    let intact = handle.len(&log).unwrap();
    let fourth = log_record(&[entry(4, Term(3))]);
    handle.append(&log, &vec![0; fourth.len()]).unwrap();
    handle
        .append(&log, &log_record(&[entry(5, Term(3))]))
        .unwrap();
    handle.sync_file(&log).unwrap();
    let (storage, report) = open(&disk).expect("only unsynced data was damaged");
    assert_eq!(storage.durable().log.last_index(), Index(3));
    assert_eq!(report.torn_tail.map(|t| t.offset), Some(intact));
}

/// A process killed between writing a record and syncing it leaves the record in the page cache.
/// The restarted node reads it and will act on it, so the open makes it durable: a power
/// failure right after must not take it away.
#[test]
fn what_a_restart_reads_is_durable_before_the_node_uses_it() {
    for seed in 0..16 {
        let (disk, _) = three_synced_entries(seed);
        {
            let (mut storage, _) = open(&disk).unwrap();
            storage
                .apply(&Persist::Append(vec![entry(4, Term(3))]))
                .unwrap();
            disk.kill_after(1); // The append goes through; the process dies before its fsync.
            assert!(storage.sync().is_err());
        }
        disk.restart_process();
        let after_kill = open(&disk).unwrap().0.durable().clone();
        assert_eq!(
            after_kill.log.last_index(),
            Index(4),
            "the kernel kept the record"
        );
        disk.power_fail();
        let after_power = open(&disk).unwrap().0.durable().clone();
        assert_eq!(after_power, after_kill, "seed {seed}");
    }
}

/// What the test asks of the storage, interpreted against the current state so that every
/// operation is one the core could emit.
#[derive(Clone, Debug)]
enum Action {
    /// A new term (and maybe a vote), or a vote in the current term if there is none yet.
    Hard { new_term: bool, vote: u8 },
    /// Entries of the current term from `back` entries before the end (a follower overwriting
    /// a suffix, or a leader appending when `back` is 0).
    Append { back: u8, count: u8 },
    /// A snapshot `back` entries before the end of the log, or past it (installed from a
    /// leader) when `past` is set.
    Snapshot { back: u8, past: bool, size: u16 },
    /// Make everything staged durable.
    Sync,
    /// The node crashes now; the disk of the next run stops the same way after `dies_after`
    /// writes and syncs, if set (in the middle of recovery, or of a later operation).
    Crash { kind: Crash, dies_after: Option<u8> },
}

/// How a node goes down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Crash {
    /// The power fails: what was not synced is lost, in part or in full.
    Power,
    /// The process is killed: the kernel keeps every write.
    Kill,
}

impl Crash {
    fn arm(self, disk: &SimDisk, calls: u8) {
        match self {
            Crash::Power => disk.fail_after(u64::from(calls)),
            Crash::Kill => disk.kill_after(u64::from(calls)),
        }
    }

    fn recover(self, disk: &SimDisk) {
        match self {
            Crash::Power => disk.power_fail(),
            Crash::Kill => disk.restart_process(),
        }
    }
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        2 => (any::<bool>(), 0..4u8).prop_map(|(new_term, vote)| Action::Hard { new_term, vote }),
        5 => (0..4u8, 1..5u8).prop_map(|(back, count)| Action::Append { back, count }),
        1 => (0..6u8, any::<bool>(), 0..300u16)
            .prop_map(|(back, past, size)| Action::Snapshot { back, past, size }),
        3 => Just(Action::Sync),
        2 => (
            prop_oneof![3 => Just(Crash::Power), 1 => Just(Crash::Kill)],
            proptest::option::weighted(0.8, 0..40u8),
        )
            .prop_map(|(kind, dies_after)| Action::Crash { kind, dies_after }),
    ]
}

/// Turns an action into a persist operation valid on `state`, if there is one.
fn persist_op(state: &DurableState, action: &Action) -> Option<Persist> {
    let hard = state.hard_state;
    let log = &state.log;
    match *action {
        Action::Hard { new_term, vote } => {
            let voted_for = (vote > 0).then(|| NodeId(u32::from(vote)));
            if new_term {
                Some(Persist::HardState(HardState {
                    term: Term(hard.term.0 + 1),
                    voted_for,
                }))
            } else if hard.voted_for.is_none() && voted_for.is_some() {
                Some(Persist::HardState(HardState {
                    term: hard.term,
                    voted_for,
                }))
            } else {
                None
            }
        }
        Action::Append { back, count } => {
            if hard.term == Term(0) {
                return None;
            }
            let last = log.last_index().0;
            let first = (last + 1)
                .saturating_sub(u64::from(back))
                .max(log.snapshot_index().0 + 1);
            let entries = (first..first + u64::from(count))
                .map(|i| entry(i, hard.term))
                .collect();
            Some(Persist::Append(entries))
        }
        Action::Snapshot { back, past, size } => {
            if hard.term == Term(0) {
                return None;
            }
            let last = log.last_index().0;
            let (index, term) = if past {
                (last + u64::from(back) + 1, hard.term)
            } else {
                let index = last.checked_sub(u64::from(back))?;
                if index <= log.snapshot_index().0 {
                    return None;
                }
                (index, log.term_at(Index(index))?)
            };
            Some(Persist::Snapshot(Snapshot {
                index: Index(index),
                term,
                data: vec![index as u8; usize::from(size)],
            }))
        }
        Action::Sync | Action::Crash { .. } => None,
    }
}

/// What a restart may recover, given the states since the last completed sync.
struct Allowed {
    /// The state when the last sync (or snapshot write) returned, then after each operation
    /// applied since.
    states: Vec<DurableState>,
    /// A snapshot whose write failed part way: it may have landed on any of those logs.
    failed_snapshot: Option<Snapshot>,
}

impl Allowed {
    fn synced(state: DurableState) -> Allowed {
        Allowed {
            states: vec![state],
            failed_snapshot: None,
        }
    }

    /// Ok if `recovered` is one of the states since the last sync, or one of their logs with
    /// the failed snapshot installed, under a hard state at least as new as that log.
    fn check(&self, recovered: &DurableState) -> Result<(), String> {
        let newest_hard = self
            .states
            .iter()
            .rposition(|s| s.hard_state == recovered.hard_state)
            .ok_or_else(|| {
                format!(
                    "hard state {:?} is none of {:?}",
                    recovered.hard_state,
                    self.states.iter().map(|s| s.hard_state).collect::<Vec<_>>()
                )
            })?;
        let oldest_log = self.states.iter().position(|s| s.log == recovered.log);
        let with_snapshot = self.failed_snapshot.as_ref().and_then(|snapshot| {
            self.states.iter().find(|s| {
                let mut log = s.log.clone();
                log.install_snapshot(snapshot.clone());
                log == recovered.log
            })
        });
        let log_at = match (oldest_log, with_snapshot) {
            (Some(at), _) => at,
            // The snapshot's write comes after the newest hard state is written.
            (None, Some(_)) => self.states.len() - 1,
            (None, None) => {
                return Err(format!(
                    "the log (snapshot {}, entries {:?}) is none of the logs since the last sync",
                    recovered.log.snapshot_index(),
                    recovered
                        .log
                        .entries()
                        .iter()
                        .map(|e| (e.index.0, e.term.0))
                        .collect::<Vec<_>>()
                ));
            }
        };
        if newest_hard < log_at {
            return Err(format!(
                "hard state {:?} is older than the log, which includes operation {log_at}",
                recovered.hard_state
            ));
        }
        Ok(())
    }
}

/// Opens the storage on `disk`, armed to stop as `arm` says; a failed open is followed by the
/// crash's recovery and a clean open. Either way the result must be what an uninterrupted open
/// of the same disk recovers. Returns the storage and whether the disk is still armed.
fn open_checked(
    disk: &SimDisk,
    arm: Option<(Crash, u8)>,
) -> Result<(Storage, bool), TestCaseError> {
    let reference = disk.duplicate();
    let expected = open(&reference)
        .map_err(|e| TestCaseError::fail(format!("recovery failed: {e}")))?
        .0
        .durable()
        .clone();
    if let Some((kind, calls)) = arm {
        kind.arm(disk, calls);
    }
    let (storage, armed) = match open(disk) {
        Ok((storage, _)) => (storage, arm.is_some()),
        Err(_) => {
            prop_assert!(disk.is_dead(), "only the dying disk may fail an open");
            arm.expect("the disk was armed").0.recover(disk);
            let storage = open(disk)
                .map_err(|e| {
                    TestCaseError::fail(format!("recovery after a crash in recovery: {e}"))
                })?
                .0;
            (storage, false)
        }
    };
    prop_assert_eq!(
        storage.durable(),
        &expected,
        "an interrupted recovery changed the state"
    );
    Ok((storage, armed))
}

fn run_actions(seed: u64, actions: &[Action]) -> Result<(), TestCaseError> {
    let disk = SimDisk::new(seed);
    let (mut storage, _) = open_checked(&disk, None)?;
    // Small enough that syncs also rewrite the log to drop overwritten records.
    storage.set_log_garbage_bytes_max(512);
    let mut allowed = Allowed::synced(storage.durable().clone());
    // How the disk stops if it is armed.
    let mut armed: Option<Crash> = None;
    for (step, action) in actions.iter().enumerate() {
        let result = match action {
            Action::Sync => storage.sync(),
            Action::Crash { .. } => Err(StorageError::Poisoned),
            _ => {
                let Some(op) = persist_op(storage.durable(), action) else {
                    continue;
                };
                let before = storage.durable().clone();
                let result = storage.apply(&op);
                if result.is_ok() || disk.is_dead() {
                    let mut after = before;
                    after.apply(&op).expect("generated operations are valid");
                    allowed.states.push(after);
                    if let Persist::Snapshot(snapshot) = &op {
                        allowed.failed_snapshot = Some(snapshot.clone());
                    }
                }
                result
            }
        };
        match result {
            Ok(()) => {
                // A sync, or a snapshot write, makes everything applied so far durable.
                if matches!(action, Action::Sync | Action::Snapshot { .. }) {
                    allowed = Allowed::synced(storage.durable().clone());
                }
            }
            Err(e) => {
                drop(storage);
                let next = match *action {
                    Action::Crash { kind, dies_after } => {
                        kind.recover(&disk);
                        dies_after.map(|calls| (kind, calls))
                    }
                    _ => {
                        prop_assert!(disk.is_dead(), "step {step}: {e}");
                        armed.expect("only an armed disk dies").recover(&disk);
                        None
                    }
                };
                let (reopened, still_armed) = open_checked(&disk, next)?;
                storage = reopened;
                storage.set_log_garbage_bytes_max(512);
                armed = next.filter(|_| still_armed).map(|(kind, _)| kind);
                allowed
                    .check(storage.durable())
                    .map_err(|e| TestCaseError::fail(format!("step {step}: {e}")))?;
                allowed = Allowed::synced(storage.durable().clone());
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn power_failures_keep_every_synced_state(
        seed in any::<u64>(),
        actions in proptest::collection::vec(action(), 1..120),
    ) {
        run_actions(seed, &actions)?;
    }
}

/// Whatever bytes the three files hold, opening them gives a state or a typed error, never a
/// panic; a state it gives is one the storage can go on from.
fn open_arbitrary_files(
    log: Option<Vec<u8>>,
    hard_state: Option<Vec<u8>>,
    snapshot: Option<Vec<u8>>,
) -> Result<(), TestCaseError> {
    let mut disk = SimDisk::new(0);
    disk.create_dir_all(Path::new(DIR)).unwrap();
    for (name, bytes) in [
        (LOG_FILE, log),
        (HARD_STATE_FILE, hard_state),
        (SNAPSHOT_FILE, snapshot),
    ] {
        if let Some(bytes) = bytes {
            disk.write(&Path::new(DIR).join(name), &bytes).unwrap();
        }
    }
    match open(&disk) {
        Ok((mut storage, _)) => {
            let state = storage.durable().clone();
            let term = state.hard_state.term.0.max(1);
            let next = state.log.last_index().0 + 1;
            storage
                .persist(&Persist::HardState(HardState {
                    term: Term(term),
                    voted_for: None,
                }))
                .map_err(|e| TestCaseError::fail(format!("cannot go on: {e}")))?;
            storage
                .persist(&Persist::Append(vec![entry(next, Term(term))]))
                .map_err(|e| TestCaseError::fail(format!("cannot go on: {e}")))?;
            let reopened = open(&disk)
                .map_err(|e| TestCaseError::fail(format!("cannot reopen: {e}")))?
                .0;
            prop_assert_eq!(reopened.durable(), storage.durable());
        }
        Err(StorageError::Corrupt { path, .. }) => {
            prop_assert!(path.starts_with(DIR), "{}", path.display());
        }
        Err(e) => return Err(TestCaseError::fail(format!("not a corruption error: {e}"))),
    }
    Ok(())
}

/// Valid files of a short history, to mutate.
fn valid_files() -> [Vec<u8>; 3] {
    let (disk, _) = three_synced_entries(1);
    {
        let (mut storage, _) = open(&disk).unwrap();
        storage
            .persist(&Persist::Snapshot(Snapshot {
                index: Index(2),
                term: Term(3),
                data: b"snap".to_vec(),
            }))
            .unwrap();
        storage
            .persist(&Persist::Append(vec![entry(4, Term(3))]))
            .unwrap();
    }
    let mut disk = disk;
    [LOG_FILE, HARD_STATE_FILE, SNAPSHOT_FILE]
        .map(|name| disk.read(&Path::new(DIR).join(name)).unwrap().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_files_give_a_state_or_a_corruption_error(
        log in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
        hard_state in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        snapshot in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..60)),
    ) {
        open_arbitrary_files(log, hard_state, snapshot)?;
    }

    #[test]
    fn damaged_valid_files_give_a_state_or_a_corruption_error(
        file in 0..3usize,
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), 0..8u8), 1..4),
        cut in proptest::option::of(any::<proptest::sample::Index>()),
    ) {
        let mut files = valid_files();
        let bytes = &mut files[file];
        for (at, bit) in flips {
            let at = at.index(bytes.len());
            bytes[at] ^= 1 << bit;
        }
        if let Some(cut) = cut {
            let len = cut.index(bytes.len() + 1);
            bytes.truncate(len);
        }
        let [log, hard_state, snapshot] = files;
        open_arbitrary_files(Some(log), Some(hard_state), Some(snapshot))?;
    }
}

/// Every write position of one fixed workload, so each crash point is hit for sure.
#[test]
fn every_crash_point_of_a_fixed_workload_recovers() {
    let workload = [
        Action::Hard {
            new_term: true,
            vote: 1,
        },
        Action::Append { back: 0, count: 3 },
        Action::Sync,
        Action::Append { back: 1, count: 2 },
        Action::Hard {
            new_term: true,
            vote: 2,
        },
        Action::Append { back: 2, count: 3 },
        Action::Sync,
        Action::Snapshot {
            back: 1,
            past: false,
            size: 40,
        },
        Action::Append { back: 0, count: 2 },
        Action::Sync,
        Action::Snapshot {
            back: 2,
            past: true,
            size: 10,
        },
        Action::Append { back: 0, count: 1 },
        Action::Sync,
    ];
    for dies_after in 0..60u8 {
        for seed in 0..4 {
            let kind = if seed % 2 == 0 {
                Crash::Power
            } else {
                Crash::Kill
            };
            let mut actions = vec![Action::Crash {
                kind,
                dies_after: Some(dies_after),
            }];
            actions.extend(workload.iter().cloned());
            actions.push(Action::Crash {
                kind: Crash::Power,
                dies_after: None,
            });
            if let Err(e) = run_actions(seed, &actions) {
                panic!("dies after {dies_after} calls, seed {seed}: {e}");
            }
        }
    }
}

/// The check itself fails on the states a broken storage would recover.
#[test]
fn the_check_rejects_lost_votes_and_logs_newer_than_their_hard_state() {
    let mut synced = DurableState::default();
    synced
        .apply(&Persist::HardState(HardState {
            term: Term(1),
            voted_for: None,
        }))
        .unwrap();
    let mut allowed = Allowed::synced(synced.clone());
    let mut voted = synced.clone();
    voted
        .apply(&Persist::HardState(HardState {
            term: Term(2),
            voted_for: Some(NodeId(2)),
        }))
        .unwrap();
    allowed.states.push(voted.clone());
    let mut appended = voted.clone();
    appended
        .apply(&Persist::Append(vec![entry(1, Term(2))]))
        .unwrap();
    allowed.states.push(appended.clone());

    assert!(allowed.check(&synced).is_ok());
    assert!(allowed.check(&voted).is_ok());
    assert!(allowed.check(&appended).is_ok());
    // The entry without the vote that came before it.
    let mut log_first = synced.clone();
    log_first.log = appended.log.clone();
    assert!(allowed.check(&log_first).is_err());
    // A vote nobody cast.
    let mut forged = voted.clone();
    forged.hard_state.voted_for = Some(NodeId(3));
    assert!(allowed.check(&forged).is_err());
    // Less than the last sync.
    assert!(Allowed::synced(appended).check(&synced).is_err());
}
