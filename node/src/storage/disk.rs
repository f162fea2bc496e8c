//! The file operations [`Storage`](super::Storage) needs, behind a trait with two
//! implementations:
//!
//! * [`OsDisk`] — the real file system (`std::fs`), with real `fsync`s.
//! * [`SimDisk`] — an in-memory file system that models what survives a power failure, for
//!   tests and the madsim runs: written data lives in a page cache until its file is synced, and
//!   a directory's entries (created, renamed and removed names) until the directory is synced.
//!   [`SimDisk::power_fail`] keeps what was synced plus, chosen by a seed, part of what was not;
//!   [`SimDisk::fail_after`] stops the disk in the middle of a sequence of writes.
//!
//! Paths are whole paths; the operations mirror the system calls the storage makes, so a
//! `Disk` is also a record of exactly which calls the crash guarantees rest on.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The file-system calls the storage makes. Every method names one path; none follows or
/// creates symbolic links. Nothing a method writes is durable until the matching sync:
/// [`Disk::sync_file`] for a file's content and [`Disk::sync_dir`] for the names in a directory
/// (including a directory created in it).
pub trait Disk: fmt::Debug + Send {
    /// Creates `dir` and any missing parents (like `mkdir -p`); an existing directory is fine.
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()>;
    /// The whole content of the file at `path`, or `None` if there is none.
    fn read(&mut self, path: &Path) -> io::Result<Option<Vec<u8>>>;
    /// The paths of the entries (files and directories) in `dir`, sorted.
    fn list(&mut self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    /// Creates the file at `path`, or empties an existing one, and writes `bytes` to it.
    fn write(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Appends `bytes` to the file at `path`, creating it if missing.
    fn append(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Shortens (or zero-extends) the file at `path` to `len` bytes.
    fn set_len(&mut self, path: &Path, len: u64) -> io::Result<()>;
    /// The length of the file at `path`.
    fn len(&mut self, path: &Path) -> io::Result<u64>;
    /// Makes the content of the file at `path` durable (`fsync`).
    fn sync_file(&mut self, path: &Path) -> io::Result<()>;
    /// Renames `from` over `to` (atomically replacing it); both in the same directory.
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes the file at `path`.
    fn remove(&mut self, path: &Path) -> io::Result<()>;
    /// Makes the names in directory `dir` durable (`fsync` on the directory).
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()>;
}

/// The parent directory of `path` (`.` for a bare name).
pub fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The real file system. Keeps the files it appends to open between calls, so appending to
/// the log costs one `write` and its sync one `fdatasync`.
#[derive(Debug, Default)]
pub struct OsDisk {
    open: BTreeMap<PathBuf, File>,
}

impl OsDisk {
    /// A handle on the real file system.
    #[must_use]
    pub fn new() -> OsDisk {
        OsDisk::default()
    }

    /// The open handle on `path` (opened for appending, created only if `create`).
    fn file(&mut self, path: &Path, create: bool) -> io::Result<&mut File> {
        if !self.open.contains_key(path) {
            let file = OpenOptions::new().create(create).append(true).open(path)?;
            self.open.insert(path.to_path_buf(), file);
        }
        Ok(self.open.get_mut(path).expect("inserted above"))
    }
}

impl Disk for OsDisk {
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn read(&mut self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        match fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn list(&mut self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut paths = fs::read_dir(dir)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<io::Result<Vec<_>>>()?;
        paths.sort();
        Ok(paths)
    }

    fn write(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        // Not cached: the cache holds append-mode handles only (`file`).
        self.open.remove(path);
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?
            .write_all(bytes)
    }

    fn append(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.file(path, true)?.write_all(bytes)
    }

    fn set_len(&mut self, path: &Path, len: u64) -> io::Result<()> {
        self.file(path, false)?.set_len(len)
    }

    fn len(&mut self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }

    fn sync_file(&mut self, path: &Path) -> io::Result<()> {
        // fdatasync: the data and what is needed to read it back (the size), not the times.
        self.file(path, false)?.sync_data()
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        self.open.remove(from);
        self.open.remove(to);
        fs::rename(from, to)
    }

    fn remove(&mut self, path: &Path) -> io::Result<()> {
        self.open.remove(path);
        fs::remove_file(path)
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// A simulated file system with a page cache that a power failure loses.
///
/// Clones share one disk, so a test keeps a clone while a node runs on another, and restarts
/// the node on the same disk after a crash. What the model keeps:
///
/// * **A process crash** (dropping the node) loses nothing: the kernel still holds every write.
/// * **A power failure** ([`SimDisk::power_fail`]) keeps, for each file, the content of its
///   last [`Disk::sync_file`] — plus, if it was only appended to since, either a random part of
///   the appended bytes, possibly followed by zeros (a file system may extend a file before the
///   data lands), or all of the new size with each 4 KiB page of the appended range holding its
///   data or zeros (so a hole can come before data that landed). If it was rewritten or
///   truncated since, either the synced or the current content.
///   For each directory, it keeps the names as of its last [`Disk::sync_dir`], plus a random
///   prefix of the name changes made since (an ordered metadata journal, as ext4 keeps).
///   A file no durable name points at is gone.
/// * **A dying disk** ([`SimDisk::fail_after`]): after a given number of further writes and
///   syncs, the next one fails — a write applies only in part (a random prefix of its bytes),
///   a sync not at all — and so does every later call, as if the power went at that moment;
///   [`SimDisk::power_fail`] then decides what survived. [`SimDisk::kill_after`] stops the
///   process instead, between two calls, and loses nothing.
///
/// Everything random comes from the seed given to [`SimDisk::new`], so a run replays exactly.
#[derive(Clone)]
pub struct SimDisk {
    state: Arc<Mutex<SimState>>,
}

impl fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("SimDisk")
            .field("files", &state.inodes.len())
            .field("writes", &state.stats.writes)
            .field("power_failures", &state.stats.power_failures)
            .finish_non_exhaustive()
    }
}

/// Counters of a [`SimDisk`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimDiskStats {
    /// Calls that change data or names.
    pub writes: u64,
    /// File and directory syncs.
    pub syncs: u64,
    /// Calls to [`SimDisk::power_fail`].
    pub power_failures: u64,
    /// Bytes of file content a power failure lost.
    pub bytes_lost: u64,
    /// Directory changes a power failure lost.
    pub names_lost: u64,
}

/// The page size of the simulated page cache: a power failure may lose any page of an unsynced
/// append on its own.
const PAGE_BYTES: usize = 4096;

/// How a disk armed by [`SimDisk::fail_after`] or [`SimDisk::kill_after`] stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    PowerCut,
    ProcessKill,
}

/// One change to a directory's names, kept until the directory is synced.
#[derive(Clone, Debug)]
enum NameChange {
    /// `name` now points at `node`.
    Link { name: PathBuf, node: Node },
    /// `name` is gone.
    Unlink { name: PathBuf },
    /// `from` now goes by `to` (replacing what `to` was): one atomic change.
    Rename { from: PathBuf, to: PathBuf },
}

/// What a name points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    File(u64),
    Dir,
}

/// A file's content, and what of it is durable. Appends and syncs cost what they write, not
/// the file's size: while the file only grows, the durable content is a prefix of the current
/// one; the first rewrite or shrink after a sync copies the durable content aside.
#[derive(Clone, Debug, Default)]
struct Inode {
    /// What reads see (the page cache).
    data: Vec<u8>,
    /// When `old` is `None`, the durable content is `data[..stable]`.
    stable: usize,
    /// The durable content, when `data` no longer starts with it.
    old: Option<Vec<u8>>,
}

impl Inode {
    /// Before `data[from..]` changes other than by appending: keep the durable content.
    fn preserve_from(&mut self, from: usize) {
        if self.old.is_none() && from < self.stable {
            self.old = Some(self.data[..self.stable].to_vec());
        }
    }

    fn replace(&mut self, bytes: &[u8]) {
        self.preserve_from(0);
        self.data = bytes.to_vec();
    }

    fn set_len(&mut self, len: usize) {
        self.preserve_from(len);
        self.data.resize(len, 0);
    }

    fn sync(&mut self) {
        self.stable = self.data.len();
        self.old = None;
    }
}

#[derive(Debug)]
struct SimState {
    /// Every name that reads see, whole path → what it points at. The root always exists.
    names: BTreeMap<PathBuf, Node>,
    /// The names a power failure keeps for sure.
    durable_names: BTreeMap<PathBuf, Node>,
    /// Name changes per directory since its last sync, in order.
    pending: BTreeMap<PathBuf, Vec<NameChange>>,
    inodes: BTreeMap<u64, Inode>,
    next_inode: u64,
    /// Writes left before the disk dies; `None` never.
    calls_left: Option<u64>,
    /// What stops the disk when the countdown ends: a power cut tears the failing write, a
    /// process kill stops before it.
    stop: Stop,
    dead: bool,
    rng: ChaCha8Rng,
    stats: SimDiskStats,
}

fn dead_disk() -> io::Error {
    io::Error::other("simulated power failure: the disk is gone")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

impl SimDisk {
    /// An empty disk whose losses and torn writes are chosen by `seed`.
    #[must_use]
    pub fn new(seed: u64) -> SimDisk {
        SimDisk {
            state: Arc::new(Mutex::new(SimState {
                names: BTreeMap::new(),
                durable_names: BTreeMap::new(),
                pending: BTreeMap::new(),
                inodes: BTreeMap::new(),
                next_inode: 1,
                calls_left: None,
                stop: Stop::PowerCut,
                dead: false,
                rng: ChaCha8Rng::seed_from_u64(seed),
                stats: SimDiskStats::default(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panic while holding the lock leaves the state consistent (every change is applied
        // in one step), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An independent copy of the disk as it is now, page cache, pending changes and random
    /// state included: what happens to one no longer affects the other.
    #[must_use]
    pub fn duplicate(&self) -> SimDisk {
        let state = self.lock();
        let copy = SimState {
            names: state.names.clone(),
            durable_names: state.durable_names.clone(),
            pending: state.pending.clone(),
            inodes: state.inodes.clone(),
            next_inode: state.next_inode,
            calls_left: state.calls_left,
            stop: state.stop,
            dead: state.dead,
            rng: state.rng.clone(),
            stats: state.stats,
        };
        SimDisk {
            state: Arc::new(Mutex::new(copy)),
        }
    }

    /// The disk's counters.
    #[must_use]
    pub fn stats(&self) -> SimDiskStats {
        self.lock().stats
    }

    /// Lets `calls` more writes and syncs through, then fails the next one and every later
    /// call, as a power failure at that moment would: a failing write applies in part (a
    /// random prefix of its bytes), a failing sync not at all. [`SimDisk::power_fail`]
    /// brings the disk back.
    pub fn fail_after(&self, calls: u64) {
        let mut state = self.lock();
        state.calls_left = Some(calls);
        state.stop = Stop::PowerCut;
    }

    /// Lets `calls` more writes and syncs through, then fails the next one, untouched, and every
    /// later call: the process was killed there and the kernel keeps everything written so far.
    /// [`SimDisk::restart_process`] (or [`SimDisk::power_fail`]) brings the disk back.
    pub fn kill_after(&self, calls: u64) {
        let mut state = self.lock();
        state.calls_left = Some(calls);
        state.stop = Stop::ProcessKill;
    }

    /// A new process takes over after [`SimDisk::kill_after`] stopped the old one: nothing is
    /// lost, calls work again.
    pub fn restart_process(&self) {
        let mut state = self.lock();
        state.dead = false;
        state.calls_left = None;
    }

    /// True once the disk has stopped (see [`SimDisk::fail_after`], [`SimDisk::kill_after`]).
    #[must_use]
    pub fn is_dead(&self) -> bool {
        self.lock().dead
    }

    /// The power fails and comes back: unsynced data and names are lost, in part or in full
    /// (see the type's docs), and a dead disk works again.
    pub fn power_fail(&self) {
        self.lock().power_fail();
    }

    /// Flips one bit of the file at `path` in both its current and its synced content, as
    /// media corruption would. Returns false if there is no such file or it is shorter.
    pub fn corrupt(&self, path: &Path, offset: u64, bit: u8) -> bool {
        let mut state = self.lock();
        let Some(Node::File(ino)) = state.names.get(path).copied() else {
            return false;
        };
        let inode = state.inodes.get_mut(&ino).expect("named inodes exist");
        let Ok(at) = usize::try_from(offset) else {
            return false;
        };
        let mut flipped = false;
        // The durable content is a prefix of `data` unless it was set aside.
        for bytes in [Some(&mut inode.data), inode.old.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(b) = bytes.get_mut(at) {
                *b ^= 1 << (bit % 8);
                flipped = true;
            }
        }
        flipped
    }
}

/// Applies one directory change to a set of names.
fn apply_change(names: &mut BTreeMap<PathBuf, Node>, change: NameChange) {
    match change {
        NameChange::Link { name, node } => {
            names.insert(name, node);
        }
        NameChange::Unlink { name } => {
            names.remove(&name);
        }
        NameChange::Rename { from, to } => {
            if let Some(node) = names.remove(&from) {
                names.insert(to, node);
            }
        }
    }
}

impl SimState {
    /// Drops the files no name can reach any more, now or after a power failure.
    fn collect_garbage(&mut self) {
        let mut live: BTreeSet<u64> = BTreeSet::new();
        let files = |node: &Node| match node {
            Node::File(ino) => Some(*ino),
            Node::Dir => None,
        };
        live.extend(self.names.values().filter_map(files));
        live.extend(self.durable_names.values().filter_map(files));
        for change in self.pending.values().flatten() {
            if let NameChange::Link { node, .. } = change {
                live.extend(files(node));
            }
        }
        self.inodes.retain(|ino, _| live.contains(ino));
    }

    fn check_alive(&self) -> io::Result<()> {
        if self.dead {
            return Err(dead_disk());
        }
        Ok(())
    }

    /// Counts a write; `Ok(false)` means the disk dies on this one (apply it in part, if at
    /// all, then fail).
    fn begin_write(&mut self) -> io::Result<bool> {
        self.check_alive()?;
        self.stats.writes += 1;
        Ok(self.countdown())
    }

    /// Counts a sync; `Ok(false)` means the disk dies before it (it does not happen).
    fn begin_sync(&mut self) -> io::Result<bool> {
        self.check_alive()?;
        self.stats.syncs += 1;
        Ok(self.countdown())
    }

    /// One more call through [`SimDisk::fail_after`]'s gate: false when the disk dies on it.
    fn countdown(&mut self) -> bool {
        match self.calls_left {
            Some(0) => {
                self.dead = true;
                self.calls_left = None;
                false
            }
            Some(n) => {
                self.calls_left = Some(n - 1);
                true
            }
            None => true,
        }
    }

    fn is_dir(&self, dir: &Path) -> bool {
        dir == Path::new("/") || dir == Path::new(".") || self.names.get(dir) == Some(&Node::Dir)
    }

    fn file(&self, path: &Path) -> io::Result<u64> {
        match self.names.get(path) {
            Some(Node::File(ino)) => Ok(*ino),
            Some(Node::Dir) => Err(io::Error::other(format!(
                "{}: is a directory",
                path.display()
            ))),
            None => Err(not_found(path)),
        }
    }

    fn check_parent(&self, path: &Path) -> io::Result<()> {
        let dir = parent(path);
        if self.is_dir(dir) {
            Ok(())
        } else {
            Err(not_found(dir))
        }
    }

    fn link(&mut self, name: &Path, node: Node) {
        self.names.insert(name.to_path_buf(), node);
        self.pending
            .entry(parent(name).to_path_buf())
            .or_default()
            .push(NameChange::Link {
                name: name.to_path_buf(),
                node,
            });
    }

    fn unlink(&mut self, name: &Path) {
        self.names.remove(name);
        self.pending
            .entry(parent(name).to_path_buf())
            .or_default()
            .push(NameChange::Unlink {
                name: name.to_path_buf(),
            });
    }

    /// The file at `path`, created (empty, with a pending name) if missing.
    fn file_or_create(&mut self, path: &Path) -> io::Result<u64> {
        if let Some(node) = self.names.get(path) {
            return match node {
                Node::File(ino) => Ok(*ino),
                Node::Dir => self.file(path),
            };
        }
        self.check_parent(path)?;
        let ino = self.next_inode;
        self.next_inode += 1;
        self.inodes.insert(ino, Inode::default());
        self.link(path, Node::File(ino));
        Ok(ino)
    }

    fn power_fail(&mut self) {
        self.stats.power_failures += 1;
        // Names: per directory, a random prefix of the changes since its last sync.
        let pending = std::mem::take(&mut self.pending);
        for (_, changes) in pending {
            let kept = self.rng.random_range(0..=changes.len());
            self.stats.names_lost += (changes.len() - kept) as u64;
            for change in changes.into_iter().take(kept) {
                apply_change(&mut self.durable_names, change);
            }
        }
        // A name whose directory did not survive is gone with it.
        let names = std::mem::take(&mut self.durable_names);
        let dirs: BTreeSet<PathBuf> = names
            .iter()
            .filter(|(_, node)| **node == Node::Dir)
            .map(|(name, _)| name.clone())
            .collect();
        let reachable = |name: &Path| {
            let mut dir = parent(name);
            loop {
                if dir == Path::new("/") || dir == Path::new(".") {
                    return true;
                }
                if !dirs.contains(dir) {
                    return false;
                }
                dir = parent(dir);
            }
        };
        self.durable_names = names
            .into_iter()
            .filter(|(name, _)| reachable(name))
            .collect();
        // Data: the synced content, plus part of what was appended since.
        let live: BTreeSet<u64> = self
            .durable_names
            .values()
            .filter_map(|node| match node {
                Node::File(ino) => Some(*ino),
                Node::Dir => None,
            })
            .collect();
        self.inodes.retain(|ino, _| live.contains(ino));
        for inode in self.inodes.values_mut() {
            let current_len = inode.data.len();
            match inode.old.take() {
                None if self.rng.random_range(0..3u32) == 0 => {
                    // Only appended to since the sync, and the new size landed but not every
                    // page: each page of the appended range holds its data or zeros.
                    let mut at = inode.stable;
                    while at < current_len {
                        let end = ((at / PAGE_BYTES + 1) * PAGE_BYTES).min(current_len);
                        if self.rng.random_range(0..2u32) == 0 {
                            inode.data[at..end].fill(0);
                        }
                        at = end;
                    }
                }
                None => {
                    // Only appended to since the sync: a prefix of the appended bytes landed,
                    // maybe followed by zeros where the size landed before the data.
                    let extra = current_len - inode.stable;
                    let kept = self.rng.random_range(0..=extra);
                    inode.data.truncate(inode.stable + kept);
                    if kept < extra && self.rng.random_range(0..4u32) == 0 {
                        let zeros = self.rng.random_range(1..=extra - kept);
                        inode.data.resize(inode.data.len() + zeros, 0);
                    }
                }
                Some(old) => {
                    if self.rng.random_range(0..2u32) == 0 {
                        inode.data = old;
                    }
                }
            }
            self.stats.bytes_lost += current_len.saturating_sub(inode.data.len()) as u64;
            inode.sync();
        }
        self.names = self.durable_names.clone();
        self.dead = false;
        self.calls_left = None;
    }
}

impl SimDisk {
    /// A write of `bytes` to the file at `path` (created if missing) by `apply`. On a disk that
    /// dies on this call, a power cut applies a random prefix of the bytes, a kill none.
    fn write_data(
        &self,
        path: &Path,
        bytes: &[u8],
        apply: impl FnOnce(&mut Inode, &[u8]),
    ) -> io::Result<()> {
        let mut state = self.lock();
        let whole = state.begin_write()?;
        if !whole && state.stop == Stop::ProcessKill {
            return Err(dead_disk());
        }
        let ino = state.file_or_create(path)?;
        let part = if whole {
            bytes.len()
        } else {
            state.rng.random_range(0..=bytes.len())
        };
        apply(
            state.inodes.get_mut(&ino).expect("named inodes exist"),
            &bytes[..part],
        );
        if whole { Ok(()) } else { Err(dead_disk()) }
    }
}

impl Disk for SimDisk {
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.check_alive()?;
        let mut missing = Vec::new();
        let mut at = dir;
        while !state.is_dir(at) && !at.as_os_str().is_empty() {
            if state.names.contains_key(at) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{}: is a file", at.display()),
                ));
            }
            missing.push(at.to_path_buf());
            at = parent(at);
        }
        missing.reverse();
        for d in &missing {
            if !state.begin_write()? {
                return Err(dead_disk());
            }
            state.link(d, Node::Dir);
        }
        Ok(())
    }

    fn read(&mut self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        let state = self.lock();
        state.check_alive()?;
        match state.names.get(path) {
            None => Ok(None),
            Some(_) => {
                let ino = state.file(path)?;
                Ok(Some(state.inodes[&ino].data.clone()))
            }
        }
    }

    fn list(&mut self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let state = self.lock();
        state.check_alive()?;
        if !state.is_dir(dir) {
            return Err(not_found(dir));
        }
        Ok(state
            .names
            .keys()
            .filter(|name| parent(name) == dir)
            .cloned()
            .collect())
    }

    fn write(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.write_data(path, bytes, Inode::replace)
    }

    fn append(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.write_data(path, bytes, |inode, bytes| {
            inode.data.extend_from_slice(bytes)
        })
    }

    fn set_len(&mut self, path: &Path, len: u64) -> io::Result<()> {
        let mut state = self.lock();
        if !state.begin_write()? {
            return Err(dead_disk());
        }
        let ino = state.file(path)?;
        let len = usize::try_from(len).map_err(io::Error::other)?;
        state
            .inodes
            .get_mut(&ino)
            .expect("named inodes exist")
            .set_len(len);
        Ok(())
    }

    fn len(&mut self, path: &Path) -> io::Result<u64> {
        let state = self.lock();
        state.check_alive()?;
        let ino = state.file(path)?;
        Ok(state.inodes[&ino].data.len() as u64)
    }

    fn sync_file(&mut self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.check_alive()?;
        let ino = state.file(path)?;
        if !state.begin_sync()? {
            return Err(dead_disk());
        }
        state
            .inodes
            .get_mut(&ino)
            .expect("named inodes exist")
            .sync();
        Ok(())
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.check_alive()?;
        let ino = state.file(from)?;
        if parent(from) != parent(to) {
            return Err(io::Error::other(format!(
                "rename {} to {}: the simulated disk renames within one directory only",
                from.display(),
                to.display()
            )));
        }
        if matches!(state.names.get(to), Some(Node::Dir)) {
            return Err(io::Error::other(format!(
                "{}: is a directory",
                to.display()
            )));
        }
        if !state.begin_write()? {
            return Err(dead_disk());
        }
        state.names.remove(from);
        state.names.insert(to.to_path_buf(), Node::File(ino));
        state
            .pending
            .entry(parent(to).to_path_buf())
            .or_default()
            .push(NameChange::Rename {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
            });
        Ok(())
    }

    fn remove(&mut self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.check_alive()?;
        state.file(path)?;
        if !state.begin_write()? {
            return Err(dead_disk());
        }
        state.unlink(path);
        Ok(())
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.check_alive()?;
        if !state.is_dir(dir) {
            return Err(not_found(dir));
        }
        if !state.begin_sync()? {
            return Err(dead_disk());
        }
        for change in state.pending.remove(dir).unwrap_or_default() {
            apply_change(&mut state.durable_names, change);
        }
        state.collect_garbage();
        Ok(())
    }
}
