//! Replicated services written as single-node state machines over [`raft::StateMachine`]:
//! a key/value store ([`kv`]), an extent store ([`extent`]) and a filesystem over it ([`fs`]),
//! and the client side ([`clerk`]) that finds the leader, retries, and never applies a command
//! twice.

#![deny(missing_docs)]

pub mod clerk;
pub mod extent;
pub mod fs;
pub mod kv;
