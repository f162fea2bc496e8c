//! A filesystem over the extent store: what the lab's `chfs_client` does between FUSE and the
//! extent server.
//!
//! Every file and directory is an extent; its extent id is its inode number, and the root
//! directory is extent 1. A directory's extent holds its entries, `(name, inode)` pairs sorted
//! by name and encoded with postcard (an empty extent is an empty directory). Names are UTF-8 and
//! may contain any character but `/` and NUL — spaces, tabs and newlines included, as the lab's
//! test names do.
//!
//! The filesystem reaches the store through an [`ExtentClient`], which may fail: locally
//! ([`LocalExtents`], for tests and tools) or over the network (the simulator's retrying client
//! in the ChFS scenarios). Operations are `async` so that the same code runs in the simulator's
//! virtual time. Like the lab's client, an operation is several extent calls with no lock
//! around them: one filesystem client at a time is assumed, and a failure between two calls can
//! leave an orphan extent (never a directory entry without its extent: entries are removed
//! before their extent, and added after it).

use crate::extent::{
    ExtentAttr, ExtentCommand, ExtentError, ExtentId, ExtentOp, ExtentReply, ExtentStore,
    ExtentType, MAX_EXTENT_BYTES,
};
use raft::StateMachine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;

/// An inode number: the id of the extent that holds the file or directory.
pub type Inum = ExtentId;

/// The longest name accepted, in bytes (Linux's `NAME_MAX`).
pub const NAME_MAX_BYTES: usize = 255;

/// Why an extent call brought no answer of the expected shape.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The store refused the operation.
    #[error(transparent)]
    Extent(#[from] ExtentError),
    /// No answer (no leader, the network, a deadline): the operation may or may not have
    /// taken effect.
    #[error("extent service unavailable: {0}")]
    Unavailable(String),
    /// An answer that does not fit the operation (a protocol bug).
    #[error("unexpected answer to {op}: {answer}")]
    Unexpected {
        /// The operation's name.
        op: &'static str,
        /// What came back.
        answer: String,
    },
}

fn unexpected(op: &'static str, answer: &ExtentReply) -> CallError {
    CallError::Unexpected {
        op,
        answer: format!("{answer:?}"),
    }
}

/// The extent store as the filesystem sees it. An implementation provides [`ExtentClient::call`];
/// the typed operations are built on it.
pub trait ExtentClient {
    /// Performs one operation on the store.
    fn call(&mut self, op: ExtentOp) -> impl Future<Output = Result<ExtentReply, CallError>>;

    /// Creates an empty extent of `kind`; returns its id.
    fn create(&mut self, kind: ExtentType) -> impl Future<Output = Result<ExtentId, CallError>> {
        async move {
            match self.call(ExtentOp::Create(kind)).await? {
                ExtentReply::Created(id) => Ok(id),
                other => Err(unexpected("create", &other)),
            }
        }
    }

    /// Replaces the extent's bytes.
    fn put(&mut self, id: ExtentId, data: Vec<u8>) -> impl Future<Output = Result<(), CallError>> {
        async move {
            match self.call(ExtentOp::Put(id, data)).await? {
                ExtentReply::Put => Ok(()),
                other => Err(unexpected("put", &other)),
            }
        }
    }

    /// Reads the extent's bytes.
    fn get(&mut self, id: ExtentId) -> impl Future<Output = Result<Vec<u8>, CallError>> {
        async move {
            match self.call(ExtentOp::Get(id)).await? {
                ExtentReply::Data(data) => Ok(data),
                other => Err(unexpected("get", &other)),
            }
        }
    }

    /// Reads the extent's attributes.
    fn getattr(&mut self, id: ExtentId) -> impl Future<Output = Result<ExtentAttr, CallError>> {
        async move {
            match self.call(ExtentOp::GetAttr(id)).await? {
                ExtentReply::Attr(attr) => Ok(attr),
                other => Err(unexpected("getattr", &other)),
            }
        }
    }

    /// Frees the extent.
    fn remove(&mut self, id: ExtentId) -> impl Future<Output = Result<(), CallError>> {
        async move {
            match self.call(ExtentOp::Remove(id)).await? {
                ExtentReply::Removed => Ok(()),
                other => Err(unexpected("remove", &other)),
            }
        }
    }
}

/// An [`ExtentClient`] over an in-process [`ExtentStore`]: every call is applied at once, as
/// the next log index, stamped with a clock that moves one microsecond per call (or as set).
#[derive(Clone, Debug, Default)]
pub struct LocalExtents {
    store: ExtentStore,
    time_us: u64,
}

impl LocalExtents {
    /// A fresh store (only the root directory).
    #[must_use]
    pub fn new() -> LocalExtents {
        LocalExtents::default()
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &ExtentStore {
        &self.store
    }

    /// Sets the clock stamped on the next calls.
    pub fn set_time_us(&mut self, time_us: u64) {
        self.time_us = time_us;
    }
}

impl ExtentClient for LocalExtents {
    fn call(&mut self, op: ExtentOp) -> impl Future<Output = Result<ExtentReply, CallError>> {
        let index = self.store.applied_index().next();
        let command = ExtentCommand {
            request: None,
            time_us: self.time_us,
            op,
        };
        self.time_us += 1;
        let output: Result<ExtentReply, ExtentError> = self.store.apply(index, command);
        std::future::ready(output.map_err(CallError::from))
    }
}

/// A name the filesystem refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The empty name.
    #[error("empty name")]
    Empty,
    /// `.` or `..`, which name the directory and its parent.
    #[error("`{0}` is reserved")]
    Reserved(String),
    /// A name with `/` in it.
    #[error("name contains `/`")]
    Slash,
    /// A name with NUL in it.
    #[error("name contains NUL")]
    Nul,
    /// A name longer than [`NAME_MAX_BYTES`].
    #[error("name of {0} bytes is longer than {NAME_MAX_BYTES}")]
    TooLong(usize),
}

/// Checks that `name` can be a directory entry.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name == "." || name == ".." {
        return Err(NameError::Reserved(name.to_string()));
    }
    if name.contains('/') {
        return Err(NameError::Slash);
    }
    if name.contains('\0') {
        return Err(NameError::Nul);
    }
    if name.len() > NAME_MAX_BYTES {
        return Err(NameError::TooLong(name.len()));
    }
    Ok(())
}

/// Why a filesystem operation failed; [`FsError::errno`] names the POSIX error it stands for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    /// The directory has no entry of this name.
    #[error("no entry named {0:?}")]
    NotFound(String),
    /// No file or directory has this inode number.
    #[error("no inode {0}")]
    NoInode(Inum),
    /// The directory already has an entry of this name.
    #[error("an entry named {0:?} exists")]
    Exists(String),
    /// A directory was needed.
    #[error("inode {0} is not a directory")]
    NotDir(Inum),
    /// A file was needed.
    #[error("inode {0} is a directory")]
    IsDir(Inum),
    /// The name cannot be an entry.
    #[error("invalid name: {0}")]
    InvalidName(#[from] NameError),
    /// The file would grow past what an extent holds.
    #[error("a file cannot reach {end} bytes (at most {max})")]
    FileTooLarge {
        /// The size the operation asked for (saturated at `u64::MAX`).
        end: u64,
        /// [`MAX_EXTENT_BYTES`].
        max: u64,
    },
    /// A directory's extent does not decode as a directory.
    #[error("directory {dir} is corrupt: {reason}")]
    CorruptDirectory {
        /// The directory.
        dir: Inum,
        /// What is wrong.
        reason: String,
    },
    /// The disk or the inode table is full.
    #[error("no space: {0}")]
    NoSpace(ExtentError),
    /// The extent service did not answer (see [`CallError::Unavailable`]).
    #[error("{0}")]
    Unavailable(String),
    /// The extent service answered something that makes no sense here.
    #[error("{0}")]
    Protocol(String),
}

impl FsError {
    /// The POSIX error this stands for (`ENOENT`, `EEXIST`, …).
    #[must_use]
    pub fn errno(&self) -> &'static str {
        match self {
            FsError::NotFound(_) | FsError::NoInode(_) => "ENOENT",
            FsError::Exists(_) => "EEXIST",
            FsError::NotDir(_) => "ENOTDIR",
            FsError::IsDir(_) => "EISDIR",
            FsError::InvalidName(NameError::TooLong(_)) => "ENAMETOOLONG",
            FsError::InvalidName(_) => "EINVAL",
            FsError::FileTooLarge { .. } => "EFBIG",
            FsError::NoSpace(_) => "ENOSPC",
            FsError::CorruptDirectory { .. } | FsError::Unavailable(_) | FsError::Protocol(_) => {
                "EIO"
            }
        }
    }
}

impl From<CallError> for FsError {
    fn from(error: CallError) -> FsError {
        match error {
            CallError::Extent(ExtentError::NotFound(id)) => FsError::NoInode(id),
            CallError::Extent(
                error @ (ExtentError::NoSpace { .. } | ExtentError::OutOfExtents),
            ) => FsError::NoSpace(error),
            CallError::Extent(ExtentError::TooLarge { size, max }) => {
                FsError::FileTooLarge { end: size, max }
            }
            CallError::Extent(error @ (ExtentError::RemoveRoot | ExtentError::Stale { .. })) => {
                FsError::Protocol(error.to_string())
            }
            CallError::Unavailable(why) => FsError::Unavailable(why),
            error @ CallError::Unexpected { .. } => FsError::Protocol(error.to_string()),
        }
    }
}

/// A directory's table: names to inode numbers.
pub type Entries = BTreeMap<String, Inum>;

/// One encoded directory entry.
#[derive(Serialize, Deserialize)]
struct DirEntry {
    name: String,
    inum: Inum,
}

/// Encodes a directory's entries (sorted by name).
#[must_use]
pub fn encode_dir(entries: &Entries) -> Vec<u8> {
    let list: Vec<DirEntry> = entries
        .iter()
        .map(|(name, inum)| DirEntry {
            name: name.clone(),
            inum: *inum,
        })
        .collect();
    postcard::to_allocvec(&list).expect("postcard encoding into a Vec never fails")
}

/// Decodes a directory extent; `Err` says what is wrong with it. The empty extent is the empty
/// directory.
pub fn decode_dir(bytes: &[u8]) -> Result<Entries, String> {
    if bytes.is_empty() {
        return Ok(Entries::new());
    }
    let (list, rest) =
        postcard::take_from_bytes::<Vec<DirEntry>>(bytes).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} bytes after the entries", rest.len()));
    }
    let mut entries = Entries::new();
    for entry in list {
        validate_name(&entry.name).map_err(|e| format!("entry {:?}: {e}", entry.name))?;
        if entries
            .last_key_value()
            .is_some_and(|(last, _)| *last >= entry.name)
        {
            return Err(format!("entry {:?} out of order", entry.name));
        }
        entries.insert(entry.name, entry.inum);
    }
    Ok(entries)
}

fn check_end(offset: u64, len: u64) -> Result<usize, FsError> {
    let end = offset.saturating_add(len);
    if end > MAX_EXTENT_BYTES {
        return Err(FsError::FileTooLarge {
            end,
            max: MAX_EXTENT_BYTES,
        });
    }
    // Below MAX_EXTENT_BYTES: fits any usize.
    Ok(usize::try_from(end).unwrap_or(usize::MAX))
}

/// The filesystem (see the module docs).
#[derive(Clone, Debug)]
pub struct Fs<C> {
    client: C,
}

impl<C: ExtentClient> Fs<C> {
    /// A filesystem over `client`'s store (whose extent 1 is the root directory).
    pub fn new(client: C) -> Fs<C> {
        Fs { client }
    }

    /// The extent client.
    pub fn client(&self) -> &C {
        &self.client
    }

    /// The extent client, mutably.
    pub fn client_mut(&mut self) -> &mut C {
        &mut self.client
    }

    /// The root directory's inode number.
    #[must_use]
    pub fn root(&self) -> Inum {
        ExtentId::ROOT
    }

    /// A file's or directory's attributes.
    pub async fn getattr(&mut self, inum: Inum) -> Result<ExtentAttr, FsError> {
        Ok(self.client.getattr(inum).await?)
    }

    /// Whether `inum` is a directory (the lab's `isdir`).
    pub async fn is_dir(&mut self, inum: Inum) -> Result<bool, FsError> {
        Ok(self.getattr(inum).await?.kind == ExtentType::Dir)
    }

    async fn kind_must_be(&mut self, inum: Inum, kind: ExtentType) -> Result<(), FsError> {
        let attr = self.getattr(inum).await?;
        match (attr.kind, kind) {
            (ExtentType::Dir, ExtentType::Dir) | (ExtentType::File, ExtentType::File) => Ok(()),
            (ExtentType::File, ExtentType::Dir) => Err(FsError::NotDir(inum)),
            (ExtentType::Dir, ExtentType::File) => Err(FsError::IsDir(inum)),
        }
    }

    async fn read_dir(&mut self, dir: Inum) -> Result<Entries, FsError> {
        self.kind_must_be(dir, ExtentType::Dir).await?;
        let bytes = self.client.get(dir).await?;
        decode_dir(&bytes).map_err(|reason| FsError::CorruptDirectory { dir, reason })
    }

    /// The inode `name` stands for in directory `parent`.
    pub async fn lookup(&mut self, parent: Inum, name: &str) -> Result<Inum, FsError> {
        validate_name(name)?;
        let entries = self.read_dir(parent).await?;
        entries
            .get(name)
            .copied()
            .ok_or_else(|| FsError::NotFound(name.to_string()))
    }

    /// A directory's entries, sorted by name (bytewise).
    pub async fn readdir(&mut self, dir: Inum) -> Result<Vec<(String, Inum)>, FsError> {
        Ok(self.read_dir(dir).await?.into_iter().collect())
    }

    /// Creates an empty file `name` in `parent`.
    pub async fn create(&mut self, parent: Inum, name: &str) -> Result<Inum, FsError> {
        self.make(parent, name, ExtentType::File).await
    }

    /// Creates an empty directory `name` in `parent`.
    pub async fn mkdir(&mut self, parent: Inum, name: &str) -> Result<Inum, FsError> {
        self.make(parent, name, ExtentType::Dir).await
    }

    async fn make(&mut self, parent: Inum, name: &str, kind: ExtentType) -> Result<Inum, FsError> {
        validate_name(name)?;
        let mut entries = self.read_dir(parent).await?;
        if entries.contains_key(name) {
            return Err(FsError::Exists(name.to_string()));
        }
        let inum = self.client.create(kind).await?;
        entries.insert(name.to_string(), inum);
        if let Err(error) = self.client.put(parent, encode_dir(&entries)).await {
            // The store refused the put: the directory does not name the new extent, so it can
            // go (best effort; its removal may fail as well). Without an answer the put may
            // have taken effect, and removing the extent could leave an entry naming a free id
            // that the next create hands out again: keep it (at worst an orphan).
            if matches!(error, CallError::Extent(_)) {
                let _orphan = self.client.remove(inum).await;
            }
            return Err(match error {
                // The directory's table outgrew an extent: the directory is full.
                CallError::Extent(error @ ExtentError::TooLarge { .. }) => FsError::NoSpace(error),
                error => error.into(),
            });
        }
        Ok(inum)
    }

    /// Up to `len` bytes of file `inum` from `offset` (fewer at the end of the file, none past
    /// it).
    pub async fn read(&mut self, inum: Inum, offset: u64, len: u64) -> Result<Vec<u8>, FsError> {
        self.kind_must_be(inum, ExtentType::File).await?;
        let data = self.client.get(inum).await?;
        let size = data.len() as u64;
        let start = offset.min(size);
        let end = offset.saturating_add(len).min(size);
        // Both are at most the data's length, which is a usize.
        let (start, end) = (
            usize::try_from(start).unwrap_or(0),
            usize::try_from(end).unwrap_or(0),
        );
        Ok(data[start..end].to_vec())
    }

    /// Writes `bytes` into file `inum` at `offset`, filling any gap past the end with zeros;
    /// returns how many bytes were written (all of them).
    pub async fn write(&mut self, inum: Inum, offset: u64, bytes: &[u8]) -> Result<u64, FsError> {
        let end = check_end(offset, bytes.len() as u64)?;
        self.kind_must_be(inum, ExtentType::File).await?;
        if bytes.is_empty() {
            return Ok(0); // POSIX: writing nothing does not extend the file.
        }
        let mut data = self.client.get(inum).await?;
        if data.len() < end {
            data.resize(end, 0);
        }
        let start = end - bytes.len();
        data[start..end].copy_from_slice(bytes);
        self.client.put(inum, data).await?;
        Ok(bytes.len() as u64)
    }

    /// Sets file `inum`'s size: cuts it, or extends it with zeros.
    pub async fn truncate(&mut self, inum: Inum, size: u64) -> Result<(), FsError> {
        let size = check_end(size, 0)?;
        self.kind_must_be(inum, ExtentType::File).await?;
        let mut data = self.client.get(inum).await?;
        data.resize(size, 0);
        self.client.put(inum, data).await?;
        Ok(())
    }

    /// Removes file `name` from `parent` and frees it (files only: a directory is
    /// [`FsError::IsDir`]).
    pub async fn unlink(&mut self, parent: Inum, name: &str) -> Result<(), FsError> {
        validate_name(name)?;
        let mut entries = self.read_dir(parent).await?;
        let Some(inum) = entries.remove(name) else {
            return Err(FsError::NotFound(name.to_string()));
        };
        self.kind_must_be(inum, ExtentType::File).await?;
        self.client.put(parent, encode_dir(&entries)).await?;
        self.client.remove(inum).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
