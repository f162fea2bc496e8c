//! File storage for one node: what survives a crash, in three files under a data directory.
//!
//! * `log` — an append-only file of CRC-checked records ([`record`]), starting with a header
//!   record (the format version). An append record is one `Persist::Append`: remove every entry
//!   from its first index on, then append its entries. Each sync ends the records it writes
//!   with a commit record holding where they start and their CRC-32. A rewritten log ends with
//!   two: the second vouches for the first, as a rewrite (atomic) cannot be torn.
//! * `hard_state` — the term and vote, one record, replaced atomically.
//! * `snapshot` — the latest snapshot, one record, replaced atomically.
//!
//! "Replaced atomically" means: write `NAME.tmp`, fsync it, rename it over `NAME`, fsync the
//! directory. A snapshot also rewrites `log` the same way, keeping only the entries after it.
//!
//! [`Storage::apply`] stages a `Persist` output and [`Storage::sync`] makes everything staged
//! durable, so a driver can apply the outputs of several steps and pay for one fsync. Until
//! `sync` returns nothing staged may be relied on. Staged writes are ordered so that every crash
//! leaves a state the node could have persisted: the hard state (whose term is at least every
//! log entry's term) is made durable before the log entries written with it.
//!
//! [`Storage::open`] recovers. The log is read up to its first bad record (a bad checksum, a
//! record cut short, an impossible length, zeros). If a batch that a later sync committed
//! follows the damage (its commit record's checksum holds), synced records were damaged: that
//! is a [`StorageError::Corrupt`] naming the file and byte offset, and the node refuses to
//! start. Otherwise the damage is what the last, interrupted write left, however its pages
//! landed: it is cut off and reported in the [`RecoveryReport`]. Damage in a file that is only
//! ever replaced atomically is always `Corrupt`. A missing or empty directory starts a fresh
//! node. A log in the format before headers and commit records is judged as it was then (only
//! damage that runs exactly to the end of the file is cut) and rewritten in the current format;
//! a build from before cannot read the current format (it refuses the log as undecodable).
//!
//! Limitation: damage inside the records of the last sync since the log was last rewritten, or
//! damage that reaches the end of the file, looks exactly like a torn final write (no later
//! commit vouches for it), so it is cut off and reported, not refused.

mod atomic;
pub mod disk;
pub mod record;

use disk::{Disk, OsDisk, parent};
use raft::{DurableState, Entry, HardState, Index, Log, Persist, PersistError, Snapshot};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// Name of the log file inside the data directory.
pub const LOG_FILE: &str = "log";
/// Name of the hard-state file inside the data directory.
pub const HARD_STATE_FILE: &str = "hard_state";
/// Name of the snapshot file inside the data directory.
pub const SNAPSHOT_FILE: &str = "snapshot";

/// Entries per record when the log is rewritten (bounds the size of one record).
const REWRITE_ENTRIES_PER_RECORD: usize = 1024;
/// The default for [`Storage::set_log_garbage_bytes_max`].
pub const LOG_GARBAGE_BYTES_MAX: u64 = 8 << 20;

/// A log record as written (borrowing the entries).
#[derive(Serialize)]
enum LogRecordRef<'a> {
    Append(&'a [Entry]),
    Commit { batch_start: u64, batch_crc: u32 },
    Header { version: u32 },
}

/// The log format [`LogRecord::Header`] names: batches end with commit records.
const LOG_FORMAT_VERSION: u32 = 1;

/// A log record as read back; encodes exactly like [`LogRecordRef`].
#[derive(Deserialize)]
enum LogRecord {
    /// Remove every entry from the first entry's index on, then append these.
    Append(Vec<Entry>),
    /// Ends the records one sync wrote: they start at byte `batch_start` of the file and have
    /// checksum `batch_crc` (CRC-32 of their bytes). Recovery uses it to tell damage to synced
    /// records (a committed batch follows it) from the torn remains of the last write.
    Commit {
        /// Where the batch's first record starts.
        batch_start: u64,
        /// CRC-32 of the bytes from `batch_start` to this record.
        batch_crc: u32,
    },
    /// The first record of a log in the current format (older logs start with an append and
    /// have no commit records; they are rewritten in this format when opened).
    Header {
        /// [`LOG_FORMAT_VERSION`] when written; a newer version is refused.
        version: u32,
    },
}

/// What a log file turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    /// No intact record.
    Empty,
    /// Starts with a [`LogRecord::Header`].
    Current,
    /// Written before headers and commit records existed.
    Legacy,
}

/// The header record every log in the current format starts with.
fn log_header() -> Vec<u8> {
    let payload = postcard::to_allocvec(&LogRecordRef::Header {
        version: LOG_FORMAT_VERSION,
    })
    .expect("postcard encoding into a Vec never fails");
    let mut bytes = Vec::new();
    record::encode(&payload, &mut bytes);
    bytes
}

/// Appends the commit record of the batch `bytes[batch_start_in_bytes..]`, which starts at byte
/// `batch_start` of the file.
fn encode_commit(bytes: &mut Vec<u8>, batch_start_in_bytes: usize, batch_start: u64) {
    let commit = LogRecordRef::Commit {
        batch_start,
        batch_crc: crc32fast::hash(&bytes[batch_start_in_bytes..]),
    };
    let payload = postcard::to_allocvec(&commit).expect("postcard encoding into a Vec never fails");
    record::encode(&payload, bytes);
}

/// The batch start and checksum of a commit record's payload, if it is one.
fn parse_commit(payload: &[u8]) -> Option<(u64, u32)> {
    match postcard::from_bytes(payload).ok()? {
        LogRecord::Commit {
            batch_start,
            batch_crc,
        } => Some((batch_start, batch_crc)),
        LogRecord::Append(_) | LogRecord::Header { .. } => None,
    }
}

/// Storage failed. Every variant names what it was doing and where.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A file-system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A file is damaged where a crash cannot have damaged it. The node refuses to start.
    #[error("{path} is corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the damaged record.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A persist operation does not fit the stored state (a driver or core bug).
    #[error("persist operation does not fit the stored state: {0}")]
    Persist(#[from] PersistError),
    /// A single record would exceed [`record::MAX_PAYLOAD_BYTES`].
    #[error("a {what} record of {bytes} bytes exceeds the record limit")]
    TooLarge {
        /// What was being written.
        what: &'static str,
        /// Its encoded size.
        bytes: usize,
    },
    /// An earlier write failed, so the files may not match what was staged; reopen to recover.
    #[error("an earlier write failed; reopen the storage to recover")]
    Poisoned,
}

/// What [`Storage::open`] found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The directory held no state: the node starts fresh.
    pub fresh: bool,
    /// A torn final record was cut off the log.
    pub torn_tail: Option<TornTail>,
    /// Temporary files of an interrupted atomic replace, removed.
    pub removed_tmp_files: Vec<PathBuf>,
    /// The log held entries the snapshot had superseded (a crash between writing a snapshot and
    /// rewriting the log), so it was rewritten.
    pub log_rewritten: bool,
    /// Intact append records read from the log (commit records are not counted).
    pub log_records: usize,
}

/// Where a torn tail was cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The file that was cut.
    pub path: PathBuf,
    /// The new length of the file: the offset of the torn record.
    pub offset: u64,
    /// How many bytes were cut.
    pub bytes_cut: u64,
}

/// Counters for benchmarks and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Calls to [`Storage::sync`] that wrote something.
    pub syncs: u64,
    /// Bytes appended to the log file.
    pub log_bytes_appended: u64,
    /// Whole rewrites of the log file (snapshots and garbage collection).
    pub log_rewrites: u64,
    /// Snapshot files written.
    pub snapshots_written: u64,
}

/// One node's durable state in a data directory. See the module docs for the file layout and
/// the crash guarantees.
#[derive(Debug)]
pub struct Storage {
    disk: Box<dyn Disk>,
    dir: PathBuf,
    /// Everything applied so far, staged or durable: what a restart resumes from after `sync`.
    durable: DurableState,
    log_file_bytes: u64,
    staged_log: Vec<u8>,
    hard_state_staged: bool,
    poisoned: bool,
    stats: StorageStats,
    log_garbage_bytes_max: u64,
}

fn io_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io { op, path, source }
}

impl Storage {
    /// Opens (or creates) the data directory `dir` on the real file system and recovers the
    /// durable state in it.
    pub fn open(dir: impl AsRef<Path>) -> Result<(Storage, RecoveryReport), StorageError> {
        Storage::open_on(Box::new(OsDisk::new()), dir)
    }

    /// Opens (or creates) the data directory `dir` on `disk` and recovers the durable state in
    /// it. Tests pass a [`disk::SimDisk`] to see what survives a power failure.
    pub fn open_on(
        mut disk: Box<dyn Disk>,
        dir: impl AsRef<Path>,
    ) -> Result<(Storage, RecoveryReport), StorageError> {
        let dir = dir.as_ref().to_path_buf();
        disk.create_dir_all(&dir)
            .map_err(io_error("create directory", &dir))?;
        // A directory's name is durable only once its parent is synced. Without this a power
        // failure could take the whole data directory, synced files and all — also when an
        // earlier open was killed after creating it, or someone else created it, so every open
        // syncs every ancestor, not only the ones it created.
        // Above the data directory's parent, a directory we may not read (a 0711 home, say)
        // cannot be synced by us; that is logged, not fatal.
        let mut at = dir.as_path();
        loop {
            let up = parent(at);
            match sync_dir(&mut *disk, up) {
                Err(StorageError::Io { source, .. })
                    if at != dir.as_path() && source.kind() == io::ErrorKind::PermissionDenied =>
                {
                    tracing::warn!(dir = %up.display(), "cannot fsync an ancestor of the data directory: permission denied");
                }
                result => result?,
            }
            if up == at || up == Path::new(".") || up == Path::new("/") {
                break;
            }
            at = up;
        }
        let mut report = RecoveryReport {
            removed_tmp_files: remove_tmp_files(&mut *disk, &dir)?,
            ..RecoveryReport::default()
        };
        let hard_state: Option<HardState> = read_single(&mut *disk, &dir.join(HARD_STATE_FILE))?;
        let snapshot: Option<Snapshot> = read_single(&mut *disk, &dir.join(SNAPSHOT_FILE))?;
        let log_path = dir.join(LOG_FILE);
        let (replayed, format) = read_log(&mut *disk, &log_path, &mut report)?;
        report.fresh = hard_state.is_none() && snapshot.is_none() && replayed.is_empty();
        let replayed_len = replayed.len();
        let log = assemble_log(&log_path, snapshot, replayed)?;
        disk.append(&log_path, &[])
            .map_err(io_error("open", &log_path))?;
        if disk.len(&log_path).map_err(io_error("stat", &log_path))? == 0 {
            disk.append(&log_path, &log_header())
                .map_err(io_error("append to", &log_path))?;
        }
        // What was just read may sit only in the page cache: a process killed between a write
        // and its fsync leaves it there. The node is about to act on it (acknowledge entries,
        // vote), so it must be durable first.
        disk.sync_file(&log_path)
            .map_err(io_error("fsync", &log_path))?;
        let log_file_bytes = disk.len(&log_path).map_err(io_error("stat", &log_path))?;
        let mut storage = Storage {
            disk,
            dir,
            durable: DurableState {
                hard_state: hard_state.unwrap_or_default(),
                log,
            },
            log_file_bytes,
            staged_log: Vec::new(),
            hard_state_staged: false,
            poisoned: false,
            stats: StorageStats::default(),
            log_garbage_bytes_max: LOG_GARBAGE_BYTES_MAX,
        };
        // Entries the snapshot superseded, or a log in the old format: write it afresh.
        if replayed_len != storage.durable.log.entries().len() || format == LogFormat::Legacy {
            storage.rewrite_log()?;
            report.log_rewritten = true;
        }
        // The log file may just have been created: make its directory entry durable.
        sync_dir(&mut *storage.disk, &storage.dir)?;
        Ok((storage, report))
    }

    /// The data directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Everything applied so far: after [`Storage::sync`], exactly what a restart recovers.
    #[must_use]
    pub fn durable(&self) -> &DurableState {
        &self.durable
    }

    /// Counters of the work done.
    #[must_use]
    pub fn stats(&self) -> StorageStats {
        self.stats
    }

    /// Rewrites the log file once it holds more than `bytes` beyond twice the live entries
    /// (overwritten suffixes pile up otherwise). Defaults to [`LOG_GARBAGE_BYTES_MAX`].
    pub fn set_log_garbage_bytes_max(&mut self, bytes: u64) {
        self.log_garbage_bytes_max = bytes;
    }

    /// True when applied operations are waiting for [`Storage::sync`].
    #[must_use]
    pub fn has_staged(&self) -> bool {
        self.hard_state_staged || !self.staged_log.is_empty()
    }

    /// Stages one `Persist` output, with the same semantics as [`DurableState::apply`]. It is
    /// durable once [`Storage::sync`] returns. A snapshot is written (with everything staged
    /// before it) before this returns.
    pub fn apply(&mut self, op: &Persist) -> Result<(), StorageError> {
        if self.poisoned {
            return Err(StorageError::Poisoned);
        }
        match op {
            Persist::HardState(_) => {
                self.durable.apply(op)?;
                self.hard_state_staged = true;
            }
            Persist::Append(entries) => {
                let payload = postcard::to_allocvec(&LogRecordRef::Append(entries))
                    .expect("postcard encoding into a Vec never fails");
                if payload.len() > record::MAX_PAYLOAD_BYTES {
                    return Err(StorageError::TooLarge {
                        what: "log append",
                        bytes: payload.len(),
                    });
                }
                self.durable.apply(op)?;
                record::encode(&payload, &mut self.staged_log);
            }
            Persist::Snapshot(snapshot) => {
                let payload = postcard::to_allocvec(snapshot)
                    .expect("postcard encoding into a Vec never fails");
                if payload.len() > record::MAX_PAYLOAD_BYTES {
                    return Err(StorageError::TooLarge {
                        what: "snapshot",
                        bytes: payload.len(),
                    });
                }
                self.durable.apply(op)?;
                self.poison_on_error(|s| s.write_snapshot(&payload))?;
            }
        }
        Ok(())
    }

    /// Applies one operation and makes it durable at once.
    pub fn persist(&mut self, op: &Persist) -> Result<(), StorageError> {
        self.apply(op)?;
        self.sync()
    }

    /// Makes everything staged durable: the hard state first (atomic replace), then the log
    /// records (append and fdatasync).
    pub fn sync(&mut self) -> Result<(), StorageError> {
        if self.poisoned {
            return Err(StorageError::Poisoned);
        }
        if !self.has_staged() {
            return Ok(());
        }
        self.poison_on_error(Storage::sync_staged)?;
        self.stats.syncs += 1;
        Ok(())
    }

    fn poison_on_error(
        &mut self,
        f: impl FnOnce(&mut Storage) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let result = f(self);
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn sync_staged(&mut self) -> Result<(), StorageError> {
        self.sync_hard_state()?;
        if !self.staged_log.is_empty() {
            encode_commit(&mut self.staged_log, 0, self.log_file_bytes);
            let path = self.dir.join(LOG_FILE);
            self.disk
                .append(&path, &self.staged_log)
                .map_err(io_error("append to", &path))?;
            self.disk
                .sync_file(&path)
                .map_err(io_error("fsync", &path))?;
            self.log_file_bytes += self.staged_log.len() as u64;
            self.stats.log_bytes_appended += self.staged_log.len() as u64;
            self.staged_log.clear();
        }
        let live_bytes = self.durable.log.entries_encoded_len() as u64;
        if self.log_file_bytes > 2 * live_bytes + self.log_garbage_bytes_max {
            self.rewrite_log()?;
        }
        Ok(())
    }

    fn sync_hard_state(&mut self) -> Result<(), StorageError> {
        if !self.hard_state_staged {
            return Ok(());
        }
        let payload = postcard::to_allocvec(&self.durable.hard_state)
            .expect("postcard encoding into a Vec never fails");
        let mut bytes = Vec::with_capacity(record::HEADER_BYTES + payload.len());
        record::encode(&payload, &mut bytes);
        let path = self.dir.join(HARD_STATE_FILE);
        atomic::replace(&mut *self.disk, &path, &bytes).map_err(io_error("replace", &path))?;
        self.hard_state_staged = false;
        Ok(())
    }

    /// Writes the snapshot file, then rewrites the log without the entries it covers. A crash
    /// in between leaves the new snapshot and the old log, which `open` reconciles.
    fn write_snapshot(&mut self, payload: &[u8]) -> Result<(), StorageError> {
        self.sync_hard_state()?;
        let mut bytes = Vec::with_capacity(record::HEADER_BYTES + payload.len());
        record::encode(payload, &mut bytes);
        let path = self.dir.join(SNAPSHOT_FILE);
        atomic::replace(&mut *self.disk, &path, &bytes).map_err(io_error("replace", &path))?;
        self.stats.snapshots_written += 1;
        self.rewrite_log()
    }

    /// Replaces the log file with the live entries (staged ones included, which makes them
    /// durable too).
    fn rewrite_log(&mut self) -> Result<(), StorageError> {
        let mut bytes = log_header();
        for chunk in self
            .durable
            .log
            .entries()
            .chunks(REWRITE_ENTRIES_PER_RECORD)
        {
            let payload = postcard::to_allocvec(&LogRecordRef::Append(chunk))
                .expect("postcard encoding into a Vec never fails");
            if payload.len() > record::MAX_PAYLOAD_BYTES {
                return Err(StorageError::TooLarge {
                    what: "log rewrite",
                    bytes: payload.len(),
                });
            }
            record::encode(&payload, &mut bytes);
        }
        let first_commit = bytes.len();
        encode_commit(&mut bytes, 0, 0);
        // The file is replaced atomically, so no crash can tear it: a second commit record,
        // vouching for the first alone, makes any damage to the records before it refused.
        encode_commit(&mut bytes, first_commit, first_commit as u64);
        let path = self.dir.join(LOG_FILE);
        atomic::replace(&mut *self.disk, &path, &bytes).map_err(io_error("replace", &path))?;
        self.log_file_bytes = bytes.len() as u64;
        self.staged_log.clear();
        self.stats.log_rewrites += 1;
        Ok(())
    }
}

fn sync_dir(disk: &mut dyn Disk, dir: &Path) -> Result<(), StorageError> {
    disk.sync_dir(dir).map_err(io_error("fsync directory", dir))
}

/// Removes `*.tmp` files left by a replace that a crash interrupted before its rename: the
/// target still holds the old, complete content.
fn remove_tmp_files(disk: &mut dyn Disk, dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let mut removed = Vec::new();
    for path in disk.list(dir).map_err(io_error("list", dir))? {
        let is_tmp = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(atomic::TMP_SUFFIX));
        if is_tmp {
            disk.remove(&path).map_err(io_error("remove", &path))?;
            tracing::warn!(path = %path.display(), "removed the temporary file of an interrupted replace");
            removed.push(path);
        }
    }
    if !removed.is_empty() {
        sync_dir(disk, dir)?;
    }
    Ok(removed)
}

fn read_optional(disk: &mut dyn Disk, path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    disk.read(path).map_err(io_error("read", path))
}

/// Reads a file that holds exactly one record and is only ever replaced atomically, so any
/// damage is corruption (a crash cannot tear it).
fn read_single<T: for<'de> Deserialize<'de>>(
    disk: &mut dyn Disk,
    path: &Path,
) -> Result<Option<T>, StorageError> {
    let Some(bytes) = read_optional(disk, path)? else {
        return Ok(None);
    };
    let corrupt = |offset: u64, reason: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let scan = record::scan(&bytes);
    if let Some(bad) = scan.bad {
        return Err(corrupt(bad.offset, bad.reason));
    }
    match scan.records.as_slice() {
        [only] => postcard::from_bytes(only.payload)
            .map(Some)
            .map_err(|e| corrupt(only.offset, format!("undecodable record: {e}"))),
        [] => Err(corrupt(0, "no record".to_string())),
        [_, second, ..] => Err(corrupt(second.offset, "more than one record".to_string())),
    }
}

/// Reads the log file, cutting a torn tail, and replays its records into the entries they
/// leave: a contiguous run starting wherever the file's first append record starts.
///
/// Damage followed by a whole batch that a later sync committed hit records that were already
/// synced: refused. Otherwise it is what the last, interrupted write left, and it is cut. A log
/// in the old format has no commit records to tell by; there only damage that runs exactly to
/// the end of the file as one record (cut short, or a bad checksum on the last record, or
/// zeros) is cut, as before.
fn read_log(
    disk: &mut dyn Disk,
    path: &Path,
    report: &mut RecoveryReport,
) -> Result<(Vec<Entry>, LogFormat), StorageError> {
    let Some(bytes) = read_optional(disk, path)? else {
        return Ok((Vec::new(), LogFormat::Empty));
    };
    let corrupt = |offset: u64, reason: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let scan = record::scan(&bytes);
    let format = match scan.records.first() {
        None => LogFormat::Empty,
        Some(first) => match postcard::from_bytes(first.payload) {
            Ok(LogRecord::Header { version }) if version > LOG_FORMAT_VERSION => {
                return Err(corrupt(
                    first.offset,
                    format!("log format {version} is newer than this build's {LOG_FORMAT_VERSION}"),
                ));
            }
            Ok(LogRecord::Header { .. }) => LogFormat::Current,
            _ => LogFormat::Legacy,
        },
    };
    if let Some(bad) = &scan.bad {
        let offset = usize::try_from(bad.offset).unwrap_or(usize::MAX);
        if format == LogFormat::Current {
            if let Some(commit) = record::committed_batch_after(&bytes, offset, parse_commit) {
                return Err(corrupt(
                    bad.offset,
                    format!("{}, before a batch committed at byte {commit}", bad.reason),
                ));
            }
        } else if !record::reaches_the_end(&bytes, offset) {
            return Err(corrupt(bad.offset, bad.reason.clone()));
        }
    }
    let mut entries: Vec<Entry> = Vec::new();
    for rec in &scan.records {
        let record = postcard::from_bytes(rec.payload)
            .map_err(|e| corrupt(rec.offset, format!("undecodable record: {e}")))?;
        if let LogRecord::Append(appended) = record {
            replay_append(&mut entries, appended).map_err(|reason| corrupt(rec.offset, reason))?;
            report.log_records += 1;
        }
    }
    if let Some(bad) = scan.bad {
        cut_torn_tail(disk, path, bad.offset, bytes.len() as u64, report)?;
    }
    Ok((entries, format))
}

fn replay_append(entries: &mut Vec<Entry>, appended: Vec<Entry>) -> Result<(), String> {
    let Some(first) = appended.first().map(|e| e.index) else {
        return Err("empty append record".to_string());
    };
    if let Some(pair) = appended
        .windows(2)
        .find(|p| p[1].index != p[0].index.next())
    {
        return Err(format!(
            "entry {} follows {} in one record",
            pair[1].index, pair[0].index
        ));
    }
    if let Some(base) = entries.first().map(|e| e.index) {
        let end = base.plus(entries.len() as u64);
        if first < base || first > end {
            return Err(format!(
                "append at {first} outside the log's entries {base}..{end}"
            ));
        }
        entries.truncate(usize::try_from(first.0 - base.0).unwrap_or(usize::MAX));
    }
    entries.extend(appended);
    Ok(())
}

fn cut_torn_tail(
    disk: &mut dyn Disk,
    path: &Path,
    offset: u64,
    file_len: u64,
    report: &mut RecoveryReport,
) -> Result<(), StorageError> {
    disk.set_len(path, offset)
        .map_err(io_error("truncate", path))?;
    disk.sync_file(path).map_err(io_error("fsync", path))?;
    let torn = TornTail {
        path: path.to_path_buf(),
        offset,
        bytes_cut: file_len - offset,
    };
    tracing::warn!(path = %path.display(), offset, bytes_cut = torn.bytes_cut, "cut a torn record off the end of the log");
    report.torn_tail = Some(torn);
    Ok(())
}

/// Puts the snapshot and the replayed entries together exactly as installing the snapshot on
/// that log would have: the entries after the snapshot are kept when the log holds the
/// snapshot's last entry with its term, or starts right after it (the log was already rewritten);
/// otherwise the snapshot replaces the whole log.
fn assemble_log(
    path: &Path,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
) -> Result<Log, StorageError> {
    let first = entries.first().map(|e| e.index);
    let kept = match &snapshot {
        None => entries,
        Some(s) => match first {
            None => Vec::new(),
            Some(first) if first == s.index.next() => entries,
            Some(first) if first > s.index.next() => {
                return Err(StorageError::Corrupt {
                    path: path.to_path_buf(),
                    offset: 0,
                    reason: format!(
                        "log starts at {first}, after a gap from the snapshot at {}",
                        s.index
                    ),
                });
            }
            Some(first) => {
                let at = usize::try_from(s.index.0 - first.0).unwrap_or(usize::MAX);
                match entries.get(at) {
                    Some(e) if e.term == s.term => entries[at + 1..].to_vec(),
                    _ => Vec::new(),
                }
            }
        },
    };
    let fresh_start = snapshot.as_ref().map_or(Index(1), |s| s.index.next());
    Log::from_parts(snapshot, kept).map_err(|e| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        reason: format!(
            "log entries do not fit together (expected to start at {fresh_start}): {e}"
        ),
    })
}

#[cfg(test)]
mod power_tests;
#[cfg(test)]
mod tests;
