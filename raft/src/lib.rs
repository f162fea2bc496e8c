//! A sans-IO Raft core.
//!
//! A [`Node`] is a pure state machine: [`Node::step`] takes one [`Input`] (a tick, a message, a
//! proposal, a compaction) and returns the [`Output`]s the driver must perform, in order
//! (persist, send, apply, restore). The core does no I/O, reads no clock, starts no threads and
//! draws randomness only from its own seeded RNG, so the same config, durable state and inputs
//! always give the same outputs. Read the persistence contract on [`Node::step`] before writing a
//! driver.
//!
//! [`StateMachine`] and [`Applier`] are the typed layer: write a single-node state machine over
//! typed commands and let the applier decode committed entries into it.

#![deny(missing_docs)]

mod bytes;
mod config;
mod durable;
mod log;
mod message;
mod node;
pub mod progress;
pub mod quorum;
mod state_machine;
mod types;

pub use bytes::SharedBytes;
pub use config::{Config, ConfigError};
pub use durable::{DurableState, HardState, Persist, PersistError};
pub use log::{Log, LogError};
pub use message::{
    AppendResult, ConflictHint, DecodeError, Entry, Message, Payload, Snapshot,
    snapshot_encoded_len,
};
pub use node::{Accepted, Input, Node, Output, Rejected, RestoreError, Role, Step};
pub use state_machine::{Applied, Applier, ApplyError, StateMachine, encode_command};
pub use types::{Index, NodeId, Term};
