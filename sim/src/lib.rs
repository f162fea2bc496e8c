//! A seeded discrete-event simulator for the `raft` core.
//!
//! A run is a [`Scenario`] (a named, `async` test body over a [`Tester`]) and a root seed. The
//! simulator builds a cluster of real [`raft::Node`]s, delivers their messages through a
//! simulated network with the labs' fault models, crashes and restarts nodes against a durable
//! store, runs the safety [`checkers`] after every event, and hashes a trace of every event. The
//! same scenario and seed give the same trace, byte for byte, in any build and any process.
//!
//! ```
//! use sim::{RunOptions, Scenario, Setup, Lab, ScenarioFuture, Tester, cmd, ensure};
//!
//! fn agree(t: Tester) -> ScenarioFuture {
//!     Box::pin(async move {
//!         t.check_one_leader().await?;
//!         let index = t.one(cmd(100), 3, false).await?;
//!         ensure!(index == 1, "got index {index}, expected 1");
//!         Ok(())
//!     })
//! }
//!
//! let scenario = Scenario {
//!     name: "example/agree",
//!     lab: Lab::Mit,
//!     part: "part2",
//!     summary: "one command reaches all three servers",
//!     setup: Setup::mit(3),
//!     run: agree,
//! };
//! let report = sim::run(&scenario, 42, &RunOptions::default());
//! assert!(report.passed(), "{:?}", report.failure);
//! assert_eq!(report.trace_hash, sim::run(&scenario, 42, &RunOptions::default()).trace_hash);
//! ```

#![deny(missing_docs)]

pub mod checkers;
pub mod clock;
pub mod cluster;
pub mod engine;
pub mod fault;
pub mod network;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod service;
pub mod storage;
pub mod tester;
pub mod trace;

pub use clock::{SimTime, US_PER_MS, US_PER_S};
pub use fault::{CrashPoint, MidStepCrash};
pub use network::{NetworkProfile, Reorder};
pub use run::{Failure, FailureKind, RunOptions, RunReport, run, run_with};
pub use scenario::{Flavour, Lab, Scenario, ScenarioFn, ScenarioFuture, Setup, find};
pub use service::{ClientId, RpcError, Service, ServiceSpec};
pub use tester::{Cmd, JoinHandle, TestError, TestResult, Tester, cmd};
