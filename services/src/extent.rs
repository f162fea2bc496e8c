//! The extent store of SJTU's 2022 ChFS lab as a replicated state machine.
//!
//! An extent is a numbered blob of bytes with a type (file or directory) and three timestamps;
//! the filesystem layer ([`crate::fs`]) keeps file contents and directory tables in extents. The
//! lab's `extent_server` keeps them in an `inode_manager` over a 16 MiB in-memory disk; here they
//! are plain vectors, with the lab's limits kept as typed errors:
//!
//! * an extent holds at most [`MAX_FILE_BLOCKS`] blocks of [`BLOCK_SIZE`] bytes (the lab's
//!   `MAXFILE = NDIRECT + NINDIRECT`, 100 direct and 128 indirect blocks: 116 736 bytes);
//! * extent ids run from 1 to [`INODE_NUM`]` - 1` (the lab's inode table), 1 being the root
//!   directory, created at initialisation;
//! * every extent's blocks (plus the indirect block of a file past [`NDIRECT`] blocks) come out
//!   of the disk's [`DATA_BLOCKS`].
//!
//! Replicas apply the same commands at different virtual times, so the time an operation
//! stamps on an extent travels inside the command ([`ExtentCommand::time_us`]), set by the
//! client. A client that retries a command (a lost reply, a leader that lost its term) would
//! otherwise create two extents; commands carry a [`RequestId`], and the store keeps, per
//! client, the last sequence number it applied and the answer it gave, as part of the replicated
//! state and of the snapshot: a retry gets the first answer again.
//!
//! Timestamp rules follow the lab's `inode_manager`: creation sets all three, `Put` sets mtime
//! and ctime, `Get` sets atime, `GetAttr` and `Remove` change nothing.

use raft::{Index, StateMachine};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The lab's `BLOCK_SIZE`: bytes per disk block.
pub const BLOCK_SIZE: u64 = 512;

/// The lab's `NDIRECT`: block addresses held in the inode itself.
pub const NDIRECT: u64 = 100;

/// The lab's `NINDIRECT`: block addresses held in the indirect block (`BLOCK_SIZE / 4`).
pub const NINDIRECT: u64 = BLOCK_SIZE / 4;

/// The lab's `MAXFILE`: the most data blocks one extent can have.
pub const MAX_FILE_BLOCKS: u64 = NDIRECT + NINDIRECT;

/// The most bytes one extent can hold (`MAXFILE * BLOCK_SIZE` = 116 736).
pub const MAX_EXTENT_BYTES: u64 = MAX_FILE_BLOCKS * BLOCK_SIZE;

/// The lab's `INODE_NUM`: extent ids are `1..INODE_NUM` (1 023 extents, the root included).
pub const INODE_NUM: u64 = 1024;

/// Blocks on the lab's disk (`DISK_SIZE / BLOCK_SIZE`, 16 MiB of 512-byte blocks).
pub const DISK_BLOCKS: u64 = 16 * 1024 * 1024 / BLOCK_SIZE;

/// Blocks the lab's layout spends before the first data block: boot block, super block, eight
/// bitmap blocks (`BLOCK_NUM / BPB`), one block per inode (`IPB = 1`) and the spare one its
/// `IBLOCK` macro leaves.
pub const METADATA_BLOCKS: u64 = 2 + DISK_BLOCKS / (BLOCK_SIZE * 8) + INODE_NUM + 1;

/// Blocks left for extent contents (and indirect blocks).
pub const DATA_BLOCKS: u64 = DISK_BLOCKS - METADATA_BLOCKS;

/// An extent's number (the lab's `extentid_t`, an inode number for the filesystem).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct ExtentId(pub u64);

impl ExtentId {
    /// The root directory, created when the store is.
    pub const ROOT: ExtentId = ExtentId(1);
}

impl fmt::Display for ExtentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What an extent holds (the lab's `T_FILE` and `T_DIR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ExtentType {
    /// A regular file's bytes.
    File,
    /// A directory's table (its encoding is the filesystem layer's business).
    Dir,
}

/// An extent's attributes (the lab's `extent_protocol::attr`), times in virtual microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtentAttr {
    /// File or directory.
    pub kind: ExtentType,
    /// Bytes held.
    pub size: u64,
    /// Last `Get`.
    pub atime_us: u64,
    /// Last `Put` (or creation).
    pub mtime_us: u64,
    /// Last `Put` (or creation): there is no metadata change apart from contents.
    pub ctime_us: u64,
}

/// One operation on the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExtentOp {
    /// Allocates the lowest free id for an empty extent of this type.
    Create(ExtentType),
    /// Replaces an extent's bytes.
    Put(ExtentId, Vec<u8>),
    /// Reads an extent's bytes.
    Get(ExtentId),
    /// Reads an extent's attributes.
    GetAttr(ExtentId),
    /// Frees an extent (not the root).
    Remove(ExtentId),
}

/// Who sent a command, for answering retries once: a client numbers its commands 1, 2, 3, …
/// and sends the next only after an answer to the previous one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId {
    /// The client's id, unique among the store's clients.
    pub client: u64,
    /// The command's number in the client's sequence.
    pub seq: u64,
}

/// A replicated command: an operation, the client's virtual time, and (for clients that may
/// retry) who sent it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtentCommand {
    /// `Some` makes a retried command take effect once; `None` applies every copy.
    pub request: Option<RequestId>,
    /// The client's virtual time when it issued the command: the time stamped on the extent.
    pub time_us: u64,
    /// What to do.
    pub op: ExtentOp,
}

/// What a successful operation returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExtentReply {
    /// `Create`: the new extent's id.
    Created(ExtentId),
    /// `Put` done.
    Put,
    /// `Get`: the extent's bytes.
    Data(Vec<u8>),
    /// `GetAttr`: the extent's attributes.
    Attr(ExtentAttr),
    /// `Remove` done.
    Removed,
}

/// Why an operation failed. The store is unchanged by a failed operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ExtentError {
    /// No extent has this id.
    #[error("no extent {0}")]
    NotFound(ExtentId),
    /// A `Put` of more bytes than an extent can hold.
    #[error("{size} bytes do not fit in an extent (at most {max})")]
    TooLarge {
        /// Bytes offered.
        size: u64,
        /// [`MAX_EXTENT_BYTES`].
        max: u64,
    },
    /// Every id below [`INODE_NUM`] is in use.
    #[error("no free extent id (all {} in use)", INODE_NUM - 1)]
    OutOfExtents,
    /// The disk's data blocks would run out.
    #[error("no space: {needed} more blocks needed, {free} free")]
    NoSpace {
        /// Blocks the operation would add.
        needed: u64,
        /// Blocks free.
        free: u64,
    },
    /// The root directory cannot be removed.
    #[error("the root directory cannot be removed")]
    RemoveRoot,
    /// A command older than the client's last one (a late duplicate nobody waits for).
    #[error("request {seq} of client {client} is older than its last, {last}")]
    Stale {
        /// The client.
        client: u64,
        /// The command's sequence number.
        seq: u64,
        /// The last sequence number applied for the client.
        last: u64,
    },
}

/// What applying a command returns to the client.
pub type ExtentOutput = Result<ExtentReply, ExtentError>;

/// A snapshot that cannot be restored; the store is left unchanged.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExtentSnapshotError {
    /// The bytes do not decode as a snapshot.
    #[error("snapshot does not decode: {0}")]
    Decode(String),
    /// Bytes follow the snapshot.
    #[error("{0} bytes follow the snapshot")]
    TrailingBytes(usize),
    /// A snapshot of another format (or not a snapshot at all).
    #[error("snapshot format {found:#x}, expected {expected:#x}")]
    Format {
        /// The format word read.
        found: u32,
        /// [`SNAPSHOT_FORMAT`].
        expected: u32,
    },
    /// The snapshot decodes but describes a state the store cannot be in.
    #[error("invalid snapshot: {0}")]
    Invalid(String),
}

/// The first word of every snapshot (`"EXT1"`), so that bytes of another kind are refused.
pub const SNAPSHOT_FORMAT: u32 = u32::from_be_bytes(*b"EXT1");

/// One extent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Extent {
    kind: ExtentType,
    data: Vec<u8>,
    atime_us: u64,
    mtime_us: u64,
    ctime_us: u64,
}

impl Extent {
    fn attr(&self) -> ExtentAttr {
        ExtentAttr {
            kind: self.kind,
            size: self.data.len() as u64,
            atime_us: self.atime_us,
            mtime_us: self.mtime_us,
            ctime_us: self.ctime_us,
        }
    }
}

/// Blocks an extent of `size` bytes occupies: its data blocks, and the indirect block once it
/// needs more than [`NDIRECT`].
#[must_use]
pub fn blocks_for(size: u64) -> u64 {
    let data = size.div_ceil(BLOCK_SIZE);
    if data > NDIRECT { data + 1 } else { data }
}

/// Per client: the last sequence number applied and its answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Answered {
    seq: u64,
    output: ExtentOutput,
}

/// The snapshot's encoding.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    format: u32,
    applied: u64,
    extents: Vec<(ExtentId, Extent)>,
    answered: Vec<(u64, Answered)>,
}

/// The extent store: a deterministic single-node state machine (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtentStore {
    extents: BTreeMap<ExtentId, Extent>,
    answered: BTreeMap<u64, Answered>,
    used_blocks: u64,
    applied: Index,
}

impl Default for ExtentStore {
    fn default() -> ExtentStore {
        ExtentStore::new()
    }
}

impl ExtentStore {
    /// A store holding only the empty root directory (stamped at time 0).
    #[must_use]
    pub fn new() -> ExtentStore {
        let root = Extent {
            kind: ExtentType::Dir,
            data: Vec::new(),
            atime_us: 0,
            mtime_us: 0,
            ctime_us: 0,
        };
        ExtentStore {
            extents: BTreeMap::from([(ExtentId::ROOT, root)]),
            answered: BTreeMap::new(),
            used_blocks: 0,
            applied: Index(0),
        }
    }

    /// The index of the last command applied (or restored from a snapshot).
    #[must_use]
    pub fn applied_index(&self) -> Index {
        self.applied
    }

    /// How many extents exist, the root included.
    #[must_use]
    pub fn extent_count(&self) -> usize {
        self.extents.len()
    }

    /// Data blocks in use (see [`blocks_for`]).
    #[must_use]
    pub fn used_blocks(&self) -> u64 {
        self.used_blocks
    }

    /// The ids in use, in order.
    pub fn ids(&self) -> impl Iterator<Item = ExtentId> + '_ {
        self.extents.keys().copied()
    }

    /// Applies a command outside of Raft (what [`StateMachine::apply`] does, without moving
    /// the applied index): for local use and tests.
    pub fn execute(&mut self, command: ExtentCommand) -> ExtentOutput {
        let Some(request) = command.request else {
            return self.perform(command.time_us, command.op);
        };
        if let Some(answered) = self.answered.get(&request.client) {
            if request.seq == answered.seq {
                return answered.output.clone();
            }
            if request.seq < answered.seq {
                return Err(ExtentError::Stale {
                    client: request.client,
                    seq: request.seq,
                    last: answered.seq,
                });
            }
        }
        let output = self.perform(command.time_us, command.op);
        self.answered.insert(
            request.client,
            Answered {
                seq: request.seq,
                output: output.clone(),
            },
        );
        output
    }

    fn perform(&mut self, time_us: u64, op: ExtentOp) -> ExtentOutput {
        match op {
            ExtentOp::Create(kind) => self.create(time_us, kind),
            ExtentOp::Put(id, data) => self.put(time_us, id, data),
            ExtentOp::Get(id) => {
                let extent = self.extents.get_mut(&id).ok_or(ExtentError::NotFound(id))?;
                extent.atime_us = time_us;
                Ok(ExtentReply::Data(extent.data.clone()))
            }
            ExtentOp::GetAttr(id) => {
                let extent = self.extents.get(&id).ok_or(ExtentError::NotFound(id))?;
                Ok(ExtentReply::Attr(extent.attr()))
            }
            ExtentOp::Remove(id) => {
                if id == ExtentId::ROOT {
                    return Err(ExtentError::RemoveRoot);
                }
                let extent = self.extents.remove(&id).ok_or(ExtentError::NotFound(id))?;
                self.used_blocks -= blocks_for(extent.data.len() as u64);
                Ok(ExtentReply::Removed)
            }
        }
    }

    fn create(&mut self, time_us: u64, kind: ExtentType) -> ExtentOutput {
        // The lowest id not in use: the first gap in the ordered keys.
        let mut id = ExtentId::ROOT.0;
        for used in self.extents.keys() {
            if used.0 != id {
                break;
            }
            id += 1;
        }
        if id >= INODE_NUM {
            return Err(ExtentError::OutOfExtents);
        }
        let extent = Extent {
            kind,
            data: Vec::new(),
            atime_us: time_us,
            mtime_us: time_us,
            ctime_us: time_us,
        };
        self.extents.insert(ExtentId(id), extent);
        Ok(ExtentReply::Created(ExtentId(id)))
    }

    fn put(&mut self, time_us: u64, id: ExtentId, data: Vec<u8>) -> ExtentOutput {
        let size = data.len() as u64;
        if size > MAX_EXTENT_BYTES {
            return Err(ExtentError::TooLarge {
                size,
                max: MAX_EXTENT_BYTES,
            });
        }
        let extent = self.extents.get_mut(&id).ok_or(ExtentError::NotFound(id))?;
        let before = blocks_for(extent.data.len() as u64);
        let after = blocks_for(size);
        let others = self.used_blocks - before;
        if others + after > DATA_BLOCKS {
            return Err(ExtentError::NoSpace {
                needed: after.saturating_sub(before),
                free: DATA_BLOCKS - self.used_blocks,
            });
        }
        extent.data = data;
        extent.mtime_us = time_us;
        extent.ctime_us = time_us;
        self.used_blocks = others + after;
        Ok(ExtentReply::Put)
    }

    fn encode(&self) -> Vec<u8> {
        let data = SnapshotData {
            format: SNAPSHOT_FORMAT,
            applied: self.applied.0,
            extents: self
                .extents
                .iter()
                .map(|(id, extent)| (*id, extent.clone()))
                .collect(),
            answered: self
                .answered
                .iter()
                .map(|(client, answered)| (*client, answered.clone()))
                .collect(),
        };
        postcard::to_allocvec(&data).expect("postcard encoding into a Vec never fails")
    }

    /// Decodes and checks a snapshot without touching `self`.
    fn decode(bytes: &[u8]) -> Result<ExtentStore, ExtentSnapshotError> {
        let (data, rest) = postcard::take_from_bytes::<SnapshotData>(bytes)
            .map_err(|e| ExtentSnapshotError::Decode(e.to_string()))?;
        if data.format != SNAPSHOT_FORMAT {
            return Err(ExtentSnapshotError::Format {
                found: data.format,
                expected: SNAPSHOT_FORMAT,
            });
        }
        if !rest.is_empty() {
            return Err(ExtentSnapshotError::TrailingBytes(rest.len()));
        }
        let invalid = |message: String| Err(ExtentSnapshotError::Invalid(message));
        let mut extents = BTreeMap::new();
        let mut used_blocks = 0;
        for (id, extent) in data.extents {
            if id.0 == 0 || id.0 >= INODE_NUM {
                return invalid(format!("extent id {} out of range", id.0));
            }
            let size = extent.data.len() as u64;
            if size > MAX_EXTENT_BYTES {
                return invalid(format!("extent {id} holds {size} bytes"));
            }
            used_blocks += blocks_for(size);
            if extents.insert(id, extent).is_some() {
                return invalid(format!("extent {id} appears twice"));
            }
        }
        if used_blocks > DATA_BLOCKS {
            return invalid(format!("{used_blocks} blocks used of {DATA_BLOCKS}"));
        }
        match extents.get(&ExtentId::ROOT) {
            Some(root) if root.kind == ExtentType::Dir => {}
            Some(_) => return invalid("the root is not a directory".to_string()),
            None => return invalid("no root directory".to_string()),
        }
        let mut answered = BTreeMap::new();
        for (client, entry) in data.answered {
            if answered.insert(client, entry).is_some() {
                return invalid(format!("client {client} appears twice"));
            }
        }
        Ok(ExtentStore {
            extents,
            answered,
            used_blocks,
            applied: Index(data.applied),
        })
    }
}

impl StateMachine for ExtentStore {
    type Command = ExtentCommand;
    type Output = ExtentOutput;

    fn apply(&mut self, index: Index, command: ExtentCommand) -> ExtentOutput {
        debug_assert!(
            index > self.applied,
            "apply at {index} after {}",
            self.applied
        );
        self.applied = index;
        self.execute(command)
    }

    fn snapshot(&self) -> Vec<u8> {
        self.encode()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        *self = ExtentStore::decode(snapshot)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
