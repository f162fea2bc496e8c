//! The `sim` command line: list, run, replay, fuzz, bench.

pub mod args;
pub mod fuzz;
pub mod report;
