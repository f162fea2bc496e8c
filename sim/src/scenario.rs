//! Scenarios: named, seeded test bodies and the cluster they run on.
//!
//! A [`Scenario`] is a name, the lab it comes from, a [`Setup`] (how many nodes, which tester
//! semantics, which application, which network) and a body: an `async` function of a
//! [`Tester`] that reads like the lab's test. [`crate::run()`] builds the cluster from the setup and
//! the seed, and drives the body and the cluster in one deterministic loop.
//!
//! ```ignore
//! fn basic_agree(t: Tester) -> ScenarioFuture {
//!     Box::pin(async move {
//!         for index in 1..=3 {
//!             let (count, _) = t.n_committed(Index(index))?;
//!             ensure!(count == 0, "some have committed before Start()");
//!             let got = t.one(cmd(index as i64 * 100), 3, false).await?;
//!             ensure!(got == Index(index), "got index {got}, expected {index}");
//!         }
//!         Ok(())
//!     })
//! }
//! ```

use crate::clock::{US_PER_MS, US_PER_S};
use crate::network::NetworkProfile;
use crate::tester::{AppKind, TestResult, Tester};
use std::future::Future;
use std::pin::Pin;

/// Where a scenario comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lab {
    /// MIT 6.5840 (2023 names; 2024 is the same with 2x → 3x).
    Mit,
    /// SJTU CSE lab 3.
    Sjtu,
    /// Our own randomized workloads.
    Swarm,
}

impl Lab {
    /// A short lowercase name (`mit`, `sjtu`, `swarm`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Lab::Mit => "mit",
            Lab::Sjtu => "sjtu",
            Lab::Swarm => "swarm",
        }
    }
}

/// Whose tester semantics a run follows where the labs differ (see `LAB_SCENARIOS.md` 5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flavour {
    /// labrpc + `config.go`: `rpc_count` counts delivered requests per receiver;
    /// `set_reliable(false)` is MIT's unreliable profile (request and reply drops).
    Mit,
    /// rpcs + `raft_test_utils.h`: `rpc_count` counts request attempts per sender;
    /// `set_reliable(false)` is SJTU's unreliable profile (request drops only).
    Sjtu,
}

/// The cluster a scenario runs on. Build one with [`Setup::mit`] or [`Setup::sjtu`] and adjust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    /// Number of nodes (ids 0..nodes).
    pub nodes: u32,
    /// Tester semantics.
    pub flavour: Flavour,
    /// The application attached to every node.
    pub app: AppKind,
    /// Whether the network starts reliable.
    pub reliable: bool,
    /// Virtual microseconds between two ticks of a node.
    pub tick_us: u64,
    /// Per-node clock skew, drawn uniformly in ±this many per mille (0: all clocks exact).
    pub tick_skew_per_mille_max: u32,
    /// The core's `election_ticks` (timeouts in `[e, 2e)` ticks).
    pub election_ticks: u32,
    /// The core's `heartbeat_ticks`.
    pub heartbeat_ticks: u32,
    /// The run fails (liveness) when virtual time passes this.
    pub time_limit_us: u64,
}

impl Setup {
    /// MIT's `make_config(nodes, unreliable = false, snapshot = false)`: plain applier, reliable
    /// network, 10 ms ticks, the core's default timing (300–600 ms elections, 100 ms
    /// heartbeats), and MIT's 120 s limit per test.
    #[must_use]
    pub const fn mit(nodes: u32) -> Setup {
        Setup {
            nodes,
            flavour: Flavour::Mit,
            app: AppKind::MitPlain,
            reliable: true,
            tick_us: 10 * US_PER_MS,
            tick_skew_per_mille_max: 0,
            election_ticks: 30,
            heartbeat_ticks: 10,
            time_limit_us: 120 * US_PER_S,
        }
    }

    /// SJTU's `raft_group(nodes)`: list state machines, reliable network, the same timing. The
    /// SJTU tester has no per-test limit; 300 s of virtual time stands in as a safety net.
    #[must_use]
    pub const fn sjtu(nodes: u32) -> Setup {
        Setup {
            flavour: Flavour::Sjtu,
            app: AppKind::SjtuList,
            time_limit_us: 300 * US_PER_S,
            ..Setup::mit(nodes)
        }
    }

    /// The same setup, starting on the flavour's unreliable network.
    #[must_use]
    pub const fn unreliable(self) -> Setup {
        Setup {
            reliable: false,
            ..self
        }
    }

    /// The same setup with MIT's snapshotting applier (`applierSnap`).
    #[must_use]
    pub const fn snapshots(self) -> Setup {
        Setup {
            app: AppKind::MitSnapshot,
            ..self
        }
    }

    /// The network profile for this flavour and reliability.
    #[must_use]
    pub fn network_profile(&self, reliable: bool) -> NetworkProfile {
        match (self.flavour, reliable) {
            (Flavour::Mit, true) => NetworkProfile::MIT_RELIABLE,
            (Flavour::Mit, false) => NetworkProfile::MIT_UNRELIABLE,
            (Flavour::Sjtu, true) => NetworkProfile::SJTU_RELIABLE,
            (Flavour::Sjtu, false) => NetworkProfile::SJTU_UNRELIABLE,
        }
    }
}

/// The future a scenario body returns.
pub type ScenarioFuture = Pin<Box<dyn Future<Output = TestResult>>>;

/// A scenario body: builds the test's future from the tester of a fresh cluster.
pub type ScenarioFn = fn(Tester) -> ScenarioFuture;

/// A named, seeded test.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// The full name, e.g. `mit/part2/basic_agree`.
    pub name: &'static str,
    /// Where it comes from.
    pub lab: Lab,
    /// The lab part, e.g. `part2`.
    pub part: &'static str,
    /// One line saying what it checks.
    pub summary: &'static str,
    /// The cluster it runs on.
    pub setup: Setup,
    /// The body.
    pub run: ScenarioFn,
}

/// Finds a scenario by exact name.
#[must_use]
pub fn find<'a>(scenarios: &'a [Scenario], name: &str) -> Option<&'a Scenario> {
    scenarios.iter().find(|s| s.name == name)
}
