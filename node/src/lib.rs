//! The networked runtime: drives a [`raft::Node`] with real time, TCP and files.
//!
//! * [`storage`] — the node's durable state in a data directory: an append-only log of
//!   CRC-checked records and atomically replaced hard-state and snapshot files, with recovery
//!   that cuts a torn tail and refuses to start on corruption; its file-system calls go through
//!   [`storage::disk::Disk`], real ([`storage::disk::OsDisk`]) or simulated with power failures
//!   ([`storage::disk::SimDisk`]).
//! * [`transport`] — length-prefixed postcard frames over TCP, one connection per peer.
//! * [`runtime`] — the driver task that owns the node and honours the persistence contract.
//! * [`serve`] — serving the node's state machine to clients over TCP (followers point to the
//!   leader), and the client's connection.
//! * [`kv`] — the key/value service's clerk transport over TCP, and what its binaries share.

#![deny(missing_docs)]

pub mod kv;
pub mod runtime;
pub mod serve;
pub mod storage;
pub mod transport;

mod tasks;
