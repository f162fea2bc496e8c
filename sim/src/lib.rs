//! A seeded discrete-event simulator for the `raft` core.

pub mod checkers;
pub mod clock;
pub mod engine;
pub mod network;
pub mod rng;
pub mod storage;
pub mod trace;
