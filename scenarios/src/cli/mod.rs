//! The `sim` command line: list, run, replay, fuzz, shrink, bench.

pub mod args;
pub mod fuzz;
pub mod junit;
pub mod report;
