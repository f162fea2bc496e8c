//! The MIT 6.5840 and SJTU CSE lab 3 Raft tests as named, seeded scenarios, and the `sim` CLI.

pub mod bench;
pub mod cli;
pub mod kv_client;
pub mod mit;
pub mod registry;
pub mod seeds;
pub mod sjtu;
