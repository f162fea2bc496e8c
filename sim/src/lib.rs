//! A seeded discrete-event simulator for the `raft` core.

pub mod checkers;
