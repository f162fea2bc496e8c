//! Turning a run's result into what a person or CI reads: lines, JSON, exit codes, replay commands.

use serde_json::json;

pub use sim::FailureKind;

/// A failed run's kind and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// What went wrong, with virtual time and event number.
    pub message: String,
}

/// One finished run.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The scenario's name.
    pub scenario: &'static str,
    /// The seed.
    pub seed: u64,
    /// `None` when the run passed.
    pub failure: Option<Failure>,
    /// The stable hash of the trace.
    pub trace_hash: u64,
    /// Events handled.
    pub events: u64,
    /// Virtual time simulated, in microseconds.
    pub virtual_us: u64,
    /// Real time taken, in microseconds.
    pub wall_us: u64,
}

/// The one line that replays a run exactly, with its trace.
#[must_use]
pub fn replay_command(scenario: &str, seed: u64) -> String {
    format!("cargo run --release --bin sim -- replay {scenario} {seed:#x} --trace")
}

impl RunResult {
    /// A one-line human summary.
    #[must_use]
    pub fn line(&self) -> String {
        let status = match &self.failure {
            None => "pass".to_string(),
            Some(failure) => format!("FAIL ({})", failure.kind.name()),
        };
        format!(
            "{status:<16} {:<48} seed {:#018x}  trace {:016x}  {} events  {:.3} s virtual  {:.1} ms wall",
            self.scenario,
            self.seed,
            self.trace_hash,
            self.events,
            self.virtual_us as f64 / 1e6,
            self.wall_us as f64 / 1e3,
        )
    }

    /// The JSON object `sim run --json` prints.
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        json!({
            "scenario": self.scenario,
            "seed": self.seed,
            "outcome": if self.failure.is_none() { "pass" } else { "fail" },
            "failure": self.failure.as_ref().map(|f| json!({"kind": f.kind.name(), "message": f.message})),
            "trace_hash": format!("{:016x}", self.trace_hash),
            "events": self.events,
            "virtual_ms": self.virtual_us / 1000,
            "wall_ms": self.wall_us / 1000,
        })
    }
}
