use super::*;
use raft::{NodeId, Term};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TestDir(PathBuf);

impl TestDir {
    pub(crate) fn new(name: &str) -> TestDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("node-storage-{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        TestDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index: Index(index),
        term: Term(term),
        command: format!("cmd{index}").into(),
    }
}

fn hard(term: u64, vote: Option<u32>) -> Persist {
    Persist::HardState(HardState {
        term: Term(term),
        voted_for: vote.map(NodeId),
    })
}

fn append(range: std::ops::RangeInclusive<u64>, term: u64) -> Persist {
    Persist::Append(range.map(|i| entry(i, term)).collect())
}

fn snapshot(index: u64, term: u64) -> Persist {
    Persist::Snapshot(Snapshot {
        index: Index(index),
        term: Term(term),
        data: vec![7; 100],
    })
}

/// Applies `ops` to a fresh storage in `dir` (syncing after each) and to a reference
/// `DurableState`, and returns the reference.
fn write_all(dir: &Path, ops: &[Persist]) -> DurableState {
    let (mut storage, report) = Storage::open(dir).unwrap();
    assert!(report.fresh);
    let mut expected = DurableState::default();
    for op in ops {
        storage.persist(op).unwrap();
        expected.apply(op).unwrap();
    }
    assert_eq!(storage.durable(), &expected);
    expected
}

fn reopen(dir: &Path) -> (DurableState, RecoveryReport) {
    let (storage, report) = Storage::open(dir).unwrap();
    (storage.durable().clone(), report)
}

#[test]
fn fresh_and_empty_directories_start_fresh() {
    let dir = TestDir::new("fresh");
    let (state, report) = reopen(&dir.path().join("missing/nested"));
    assert_eq!(state, DurableState::default());
    assert!(report.fresh);

    fs::create_dir_all(dir.path().join("empty")).unwrap();
    let (state, report) = reopen(&dir.path().join("empty"));
    assert_eq!(state, DurableState::default());
    assert!(report.fresh);
}

#[test]
fn round_trip_with_truncation_and_votes() {
    let dir = TestDir::new("round-trip");
    let ops = [
        hard(1, Some(1)),
        append(1..=5, 1),
        hard(2, None),
        append(4..=6, 2),
        append(7..=7, 2),
        hard(3, Some(2)),
    ];
    let expected = write_all(dir.path(), &ops);
    let (state, report) = reopen(dir.path());
    assert_eq!(state, expected);
    assert_eq!(state.log.last_index(), Index(7));
    assert_eq!(state.log.term_at(Index(4)), Some(Term(2)));
    assert_eq!(
        report,
        RecoveryReport {
            log_records: 3,
            ..RecoveryReport::default()
        }
    );
    // Reopening again changes nothing.
    assert_eq!(reopen(dir.path()).0, expected);
}

#[test]
fn batched_apply_is_durable_after_one_sync() {
    let dir = TestDir::new("batched");
    let (mut storage, _) = Storage::open(dir.path()).unwrap();
    let ops = [
        hard(1, Some(1)),
        append(1..=3, 1),
        hard(2, Some(2)),
        append(4..=4, 2),
    ];
    let mut expected = DurableState::default();
    for op in &ops {
        storage.apply(op).unwrap();
        expected.apply(op).unwrap();
    }
    assert!(storage.has_staged());
    storage.sync().unwrap();
    assert!(!storage.has_staged());
    assert_eq!(storage.stats().syncs, 1);
    drop(storage);
    assert_eq!(reopen(dir.path()).0, expected);
}

#[test]
fn unsynced_appends_are_lost_but_synced_ones_survive() {
    let dir = TestDir::new("unsynced");
    let (mut storage, _) = Storage::open(dir.path()).unwrap();
    storage.persist(&hard(1, None)).unwrap();
    storage.persist(&append(1..=2, 1)).unwrap();
    let synced = storage.durable().clone();
    storage.apply(&append(3..=4, 1)).unwrap();
    drop(storage); // a crash before sync
    assert_eq!(reopen(dir.path()).0, synced);
}

#[test]
fn torn_tail_is_cut_and_reported() {
    let dir = TestDir::new("torn");
    write_all(dir.path(), &[hard(1, None), append(1..=3, 1)]);
    let intact = reopen(dir.path()).0;
    let log_path = dir.path().join(LOG_FILE);
    let intact_len = fs::metadata(&log_path).unwrap().len();
    // A second append whose write was cut short by a crash.
    let mut tail = Vec::new();
    let payload =
        postcard::to_allocvec(&LogRecordRef::Append(&[entry(4, 1), entry(5, 1)])).unwrap();
    record::encode(&payload, &mut tail);
    let mut file = OpenOptions::new().append(true).open(&log_path).unwrap();
    file.write_all(&tail[..tail.len() - 3]).unwrap();
    drop(file);

    let (state, report) = reopen(dir.path());
    assert_eq!(state, intact);
    assert_eq!(
        report.torn_tail,
        Some(TornTail {
            path: log_path.clone(),
            offset: intact_len,
            bytes_cut: tail.len() as u64 - 3,
        })
    );
    assert_eq!(fs::metadata(&log_path).unwrap().len(), intact_len);
    // The cut is durable: the next open finds nothing to repair, and appends continue.
    let (mut storage, report) = Storage::open(dir.path()).unwrap();
    assert_eq!(report.torn_tail, None);
    storage.persist(&append(4..=4, 1)).unwrap();
    drop(storage);
    assert_eq!(reopen(dir.path()).0.log.last_index(), Index(4));
}

#[test]
fn corrupt_middle_record_refuses_to_start_naming_the_offset() {
    let dir = TestDir::new("corrupt-middle");
    write_all(
        dir.path(),
        &[
            hard(1, None),
            append(1..=2, 1),
            append(3..=4, 1),
            append(5..=5, 1),
        ],
    );
    let log_path = dir.path().join(LOG_FILE);
    let mut bytes = fs::read(&log_path).unwrap();
    let scan = record::scan(&bytes);
    let second = scan.records[1].offset;
    let flip_at = second as usize + record::HEADER_BYTES + 2;
    bytes[flip_at] ^= 0x40;
    fs::write(&log_path, &bytes).unwrap();

    match Storage::open(dir.path()) {
        Err(StorageError::Corrupt {
            path,
            offset,
            reason,
        }) => {
            assert_eq!(path, log_path);
            assert_eq!(offset, second);
            assert!(
                reason.starts_with("checksum mismatch, before a batch committed at byte"),
                "{reason}"
            );
        }
        other => panic!("expected a corruption error, got {other:?}"),
    }
    // Nothing was cut: the file is as it was.
    assert_eq!(fs::read(&log_path).unwrap(), bytes);
}

#[test]
fn corrupt_hard_state_refuses_to_start() {
    let dir = TestDir::new("corrupt-hard-state");
    write_all(dir.path(), &[hard(4, Some(2)), append(1..=1, 4)]);
    let path = dir.path().join(HARD_STATE_FILE);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    let err = Storage::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, StorageError::Corrupt { path: p, offset: 0, .. } if *p == path),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("hard_state is corrupt at byte 0"),
        "{err}"
    );

    // A truncated hard-state file is corruption too (it is only ever replaced atomically).
    fs::write(&path, &bytes[..3]).unwrap();
    assert!(matches!(
        Storage::open(dir.path()),
        Err(StorageError::Corrupt { .. })
    ));
}

#[test]
fn crash_between_tmp_write_and_rename_keeps_the_old_state() {
    let dir = TestDir::new("tmp-crash");
    let expected = write_all(dir.path(), &[hard(2, Some(1)), append(1..=2, 2)]);
    // The next hard state reached its temporary file, then the process died before the rename.
    let newer = postcard::to_allocvec(&HardState {
        term: Term(9),
        voted_for: Some(NodeId(3)),
    })
    .unwrap();
    let mut bytes = Vec::new();
    record::encode(&newer, &mut bytes);
    let hs_tmp = atomic::write_tmp(
        &mut OsDisk::new(),
        &dir.path().join(HARD_STATE_FILE),
        &bytes,
    )
    .unwrap();
    // Likewise a half-written snapshot temporary file.
    let snap_tmp = atomic::tmp_path(&dir.path().join(SNAPSHOT_FILE));
    fs::write(&snap_tmp, b"partial").unwrap();

    let (state, report) = reopen(dir.path());
    assert_eq!(state, expected);
    let mut removed = vec![hs_tmp.clone(), snap_tmp.clone()];
    removed.sort();
    assert_eq!(report.removed_tmp_files, removed);
    assert!(!hs_tmp.exists() && !snap_tmp.exists());
}

#[test]
fn snapshot_compacts_the_log_file() {
    let dir = TestDir::new("compact");
    let ops = [
        hard(1, None),
        append(1..=10, 1),
        snapshot(6, 1),
        append(11..=12, 1),
    ];
    let expected = write_all(dir.path(), &ops);
    assert_eq!(expected.log.first_index(), Index(7));
    let bytes = fs::read(dir.path().join(LOG_FILE)).unwrap();
    let scan = record::scan(&bytes);
    let Ok(LogRecord::Header { .. }) = postcard::from_bytes(scan.records[0].payload) else {
        panic!("the rewritten log starts with its header");
    };
    let Ok(LogRecord::Append(first)) = postcard::from_bytes(scan.records[1].payload) else {
        panic!("the header is followed by an append");
    };
    assert_eq!(
        first.first().map(|e| e.index),
        Some(Index(7)),
        "covered entries are gone"
    );
    assert_eq!(reopen(dir.path()).0, expected);
}

#[test]
fn snapshot_that_conflicts_with_the_log_replaces_it() {
    let dir = TestDir::new("snapshot-conflict");
    let ops = [
        hard(3, None),
        append(1..=4, 1),
        snapshot(6, 3),
        append(7..=7, 3),
    ];
    let expected = write_all(dir.path(), &ops);
    assert_eq!(expected.log.entries().len(), 1);
    assert_eq!(reopen(dir.path()).0, expected);
}

#[test]
fn crash_between_snapshot_and_log_rewrite_recovers_the_installed_state() {
    for (snap_index, snap_term) in [(6, 1), (8, 3), (20, 3)] {
        let dir = TestDir::new("snapshot-crash");
        let before = write_all(dir.path(), &[hard(3, None), append(1..=10, 1)]);
        let old_log = fs::read(dir.path().join(LOG_FILE)).unwrap();
        let op = snapshot(snap_index, snap_term);
        let mut expected = before.clone();
        expected.apply(&op).unwrap();
        let (mut storage, _) = Storage::open(dir.path()).unwrap();
        storage.persist(&op).unwrap();
        drop(storage);
        // Put back the log as it was before the rewrite: the crash hit between the two.
        fs::write(dir.path().join(LOG_FILE), &old_log).unwrap();

        let (state, report) = reopen(dir.path());
        assert_eq!(state, expected, "snapshot at {snap_index}");
        assert!(report.log_rewritten);
        // Appends continue after the repaired log.
        let (mut storage, report) = Storage::open(dir.path()).unwrap();
        assert!(!report.log_rewritten);
        let next = state.log.last_index().next().0;
        storage.persist(&append(next..=next, 3)).unwrap();
        expected.apply(&append(next..=next, 3)).unwrap();
        drop(storage);
        assert_eq!(reopen(dir.path()).0, expected);
    }
}

#[test]
fn invalid_persist_is_a_typed_error() {
    let dir = TestDir::new("invalid");
    let (mut storage, _) = Storage::open(dir.path()).unwrap();
    storage.persist(&hard(5, None)).unwrap();
    assert!(matches!(
        storage.apply(&hard(4, None)),
        Err(StorageError::Persist(_))
    ));
    assert!(matches!(
        storage.apply(&append(3..=3, 5)),
        Err(StorageError::Persist(_))
    ));
    assert_eq!(storage.durable().hard_state.term, Term(5));
}

#[test]
fn overwritten_suffixes_are_garbage_collected() {
    let dir = TestDir::new("gc");
    let (mut storage, _) = Storage::open(dir.path()).unwrap();
    storage.set_log_garbage_bytes_max(64 << 10);
    storage.persist(&hard(1, None)).unwrap();
    let big = |index: u64| Entry {
        index: Index(index),
        term: Term(1),
        command: vec![0; 4 << 10].into(),
    };
    // The same index rewritten until the file holds far more than the live log.
    for _ in 0..100 {
        storage.persist(&Persist::Append(vec![big(1)])).unwrap();
    }
    assert!(storage.stats().log_rewrites >= 1);
    let file_len = fs::metadata(dir.path().join(LOG_FILE)).unwrap().len();
    assert!(
        file_len <= 2 * (4 << 10) + (64 << 10) + (8 << 10),
        "{file_len}"
    );
    let expected = storage.durable().clone();
    drop(storage);
    assert_eq!(reopen(dir.path()).0, expected);
}
