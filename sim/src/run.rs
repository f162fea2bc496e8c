//! Running one scenario on one seed: build the cluster, drive the scenario's tasks and the event
//! queue in one deterministic loop, and report what happened.

use crate::cluster::{Cluster, Next};
use crate::scenario::{Scenario, ScenarioFuture};
use crate::tester::Tester;
use crate::tester::exec::Executor;
use crate::trace::TraceRecord;
use std::fmt;

/// How a run failed. The CLI's exit code is [`FailureKind::exit_code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailureKind {
    /// A check of the scenario (the lab's tester) failed: wrong count, wrong value, no leader.
    Check,
    /// A safety invariant was violated (a checker fired, or an application saw inconsistent
    /// applies).
    Safety,
    /// No progress within the budget: the time limit, the event budget, or a stalled run.
    Liveness,
}

impl FailureKind {
    /// The process exit code for this kind: 1 check, 3 safety, 4 liveness.
    #[must_use]
    pub fn exit_code(self) -> i32 {
        match self {
            FailureKind::Check => 1,
            FailureKind::Safety => 3,
            FailureKind::Liveness => 4,
        }
    }

    /// A lowercase name (`check`, `safety`, `liveness`) for reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Check => "check",
            FailureKind::Safety => "safety",
            FailureKind::Liveness => "liveness",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The first failure of a run, stamped with where it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// What went wrong (for a checker: `checker NAME: …`).
    pub message: String,
    /// Virtual time of the failure, in microseconds.
    pub at_us: u64,
    /// The number of the event during which it happened (events are numbered from 1).
    pub event: u64,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.at_us / 1000;
        let frac = self.at_us % 1000;
        write!(
            f,
            "{} failure at {ms}.{frac:03} ms (event {}): {}",
            self.kind, self.event, self.message
        )
    }
}

/// How to run a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOptions {
    /// Run the safety checkers after every event (on by default; off only for benchmarks).
    pub checkers: bool,
    /// Keep every trace record (for `--trace`); the hash is computed either way.
    pub record_trace: bool,
    /// The run fails (liveness) after this many events.
    pub max_events: u64,
    /// The run fails (liveness: a message storm) when the postcard bytes of the messages in
    /// flight at once exceed this ([`crate::cluster::IN_FLIGHT_BYTES_MAX`] by default; lower
    /// only in tests of the cap itself).
    pub in_flight_bytes_max: u64,
    /// Keep the client history a scenario publishes (for `--history`), in
    /// [`RunReport::history`]. Off, [`crate::Tester::publish_history`] never builds the JSON: a
    /// history of the many-client scenarios runs to hundreds of megabytes, and only `sim run
    /// --history` reads it.
    pub record_history: bool,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            checkers: true,
            record_trace: false,
            max_events: 50_000_000,
            in_flight_bytes_max: crate::cluster::IN_FLIGHT_BYTES_MAX,
            record_history: false,
        }
    }
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The scenario's name.
    pub scenario: &'static str,
    /// The root seed.
    pub seed: u64,
    /// The first failure, if any.
    pub failure: Option<Failure>,
    /// The FNV-1a hash of every trace record: equal for equal runs.
    pub trace_hash: u64,
    /// Events handled.
    pub events: u64,
    /// Virtual time at the end of the run, in microseconds.
    pub virtual_us: u64,
    /// Messages handed to the network.
    pub messages: u64,
    /// Every trace record, if [`RunOptions::record_trace`] was set.
    pub trace: Option<Vec<TraceRecord>>,
    /// The client history the scenario published ([`crate::Tester::publish_history`]), as JSON
    /// in `sim lincheck`'s format; always `None` unless [`RunOptions::record_history`] was set.
    pub history: Option<String>,
}

impl RunReport {
    /// True if the run passed.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// Runs `scenario` under root seed `seed`: the scenario's body and the clients it spawns are
/// polled whenever they are woken, and the cluster handles one event at a time in between, until
/// the body finishes or the run fails. Deterministic: the same scenario, seed and options give
/// the same report (and trace hash) in any build and any process.
#[must_use]
pub fn run(scenario: &Scenario, seed: u64, options: &RunOptions) -> RunReport {
    run_with(scenario, seed, options, scenario.run)
}

/// [`run`] with another body than the scenario's own, on the scenario's setup: for bodies built
/// from data, such as a fault schedule read from a file (`sim replay --schedule`). The report
/// carries the scenario's name.
#[must_use]
pub fn run_with(
    scenario: &Scenario,
    seed: u64,
    options: &RunOptions,
    body: impl FnOnce(Tester) -> ScenarioFuture,
) -> RunReport {
    let guarded = std::panic::AssertUnwindSafe(|| run_unguarded(scenario, seed, options, body));
    match std::panic::catch_unwind(guarded) {
        Ok(report) => report,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(ToString::to_string)
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string());
            RunReport {
                scenario: scenario.name,
                seed,
                failure: Some(Failure {
                    kind: FailureKind::Safety,
                    message: format!("panicked: {message}"),
                    at_us: 0,
                    event: 0,
                }),
                trace_hash: 0,
                events: 0,
                virtual_us: 0,
                messages: 0,
                trace: None,
                history: None,
            }
        }
    }
}

/// [`run`] without catching panics (a panic in the core or the simulator is a failure of the
/// run, reported with the seed, not a crash of the campaign).
fn run_unguarded(
    scenario: &Scenario,
    seed: u64,
    options: &RunOptions,
    body: impl FnOnce(Tester) -> ScenarioFuture,
) -> RunReport {
    let cluster = Cluster::new(&scenario.setup, seed, options);
    let executor = Executor::new();
    let tester = Tester::new(cluster, executor.clone(), options.record_history);
    let body = body(tester.clone());
    let main = tester.spawn_main(body);
    loop {
        executor.poll_ready();
        if main.is_finished() || tester.failed() {
            break;
        }
        match tester.next_event() {
            Next::Handled | Next::Woke => {}
            Next::Stop => break,
            Next::Idle => {
                // Nodes tick forever, so an empty queue means every node is down and no task
                // is sleeping: the body waits for something that can never happen.
                tester.fail_liveness("nothing is scheduled: every task waits on nothing".into());
                break;
            }
        }
    }
    executor.shutdown();
    tester.finish(scenario.name, seed)
}
