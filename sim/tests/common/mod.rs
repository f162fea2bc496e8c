//! Shared helpers for the simulator's integration tests: building ad-hoc scenarios, running them
//! with the trace kept, and reading the trace.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use sim::trace::{EventKind, TraceRecord};
use sim::{Lab, RunOptions, RunReport, Scenario, ScenarioFn, Setup};

/// Seeds every scenario test runs on: a handful, so a property is not a one-seed accident.
pub const SEEDS: [u64; 4] = [1, 2, 3, 0xDEAD_BEEF];

/// A scenario named `name` over `setup`, running `body`.
#[must_use]
pub fn scenario(name: &'static str, setup: Setup, body: ScenarioFn) -> Scenario {
    Scenario {
        name,
        lab: Lab::Swarm,
        part: "sim-tests",
        summary: "an integration test of the simulator itself",
        setup,
        run: body,
    }
}

/// Runs `scenario` on `seed` with every trace record kept, and fails the test (with the seed and
/// the failure) unless the run passed.
#[must_use]
pub fn run_traced(scenario: &Scenario, seed: u64) -> (RunReport, Vec<TraceRecord>) {
    let options = RunOptions {
        record_trace: true,
        ..RunOptions::default()
    };
    let mut report = sim::run(scenario, seed, &options);
    assert!(
        report.passed(),
        "{} failed on seed {seed}: {}",
        scenario.name,
        report
            .failure
            .as_ref()
            .map_or_else(String::new, ToString::to_string),
    );
    let records = report.trace.take().expect("record_trace keeps the records");
    (report, records)
}

/// Runs `scenario` on `seed` with the default options and fails the test unless it passed.
#[must_use]
pub fn run_passing(scenario: &Scenario, seed: u64) -> RunReport {
    let report = sim::run(scenario, seed, &RunOptions::default());
    assert!(
        report.passed(),
        "{} failed on seed {seed}: {}",
        scenario.name,
        report
            .failure
            .as_ref()
            .map_or_else(String::new, ToString::to_string),
    );
    report
}

/// A message delivery read back from the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The event number.
    pub event: u64,
    /// The sender.
    pub from: u32,
    /// The receiver.
    pub to: u32,
}

/// Every delivery in `records`, in order.
#[must_use]
pub fn deliveries(records: &[TraceRecord]) -> Vec<Delivery> {
    records
        .iter()
        .filter_map(|record| match (record.kind, record.node) {
            (EventKind::Deliver { from, .. }, Some(to)) => Some(Delivery {
                event: record.event,
                from,
                to,
            }),
            _ => None,
        })
        .collect()
}

/// The event number of the first record matching `kind` at `node`.
#[must_use]
pub fn first_event(records: &[TraceRecord], node: Option<u32>, kind: EventKind) -> Option<u64> {
    records
        .iter()
        .find(|record| record.node == node && record.kind == kind)
        .map(|record| record.event)
}
