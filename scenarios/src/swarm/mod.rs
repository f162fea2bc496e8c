//! Swarm scenarios: randomized fault campaigns on 3, 5 and 7 nodes.
//!
//! A swarm run is data. From the run's seed it draws [`SwarmParams`] (which fault kinds are on
//! and at what rates), generates a [`Schedule`] (every fault and proposal as a timed action),
//! and executes it: the fault phase, then the liveness phase. The safety checkers watch every
//! event; the liveness phase fails the run (exit code 4) if the healed cluster does not elect a
//! leader, commit new commands and converge within its budget.
//!
//! Because the schedule is data, a failing run can be shrunk ([`shrink`]), written to a file and
//! replayed from it ([`run_schedule`]), and a campaign can plant a canary in it
//! ([`Schedule::with_canary`]).

pub mod bytes;
pub mod exec;
mod liveness;
pub mod params;
pub mod schedule;
pub mod shrink;

pub use params::{Mix, SwarmParams};
pub use schedule::{Action, Schedule, Timed};

use sim::rng::{Purpose, SimRng, mix64};
use sim::{Lab, Scenario, ScenarioFuture, Setup, Tester, US_PER_S};

/// The swarm scenarios.
pub const SCENARIOS: &[Scenario] = &[
    swarm("swarm/default/n3", "default", 3, default_mix),
    swarm("swarm/default/n5", "default", 5, default_mix),
    swarm("swarm/default/n7", "default", 7, default_mix),
    swarm("swarm/snapshots/n3", "snapshots", 3, snapshot_mix),
    swarm("swarm/snapshots/n5", "snapshots", 5, snapshot_mix),
];

const fn swarm(
    name: &'static str,
    part: &'static str,
    nodes: u32,
    run: sim::ScenarioFn,
) -> Scenario {
    Scenario {
        name,
        lab: Lab::Swarm,
        part,
        summary: match part.as_bytes() {
            b"snapshots" => {
                "swarm faults with snapshots and long outages (installs), then a liveness phase"
            }
            _ => "random fault mix: network, partitions, crashes mid-step, pauses, skew, snapshots",
        },
        setup: Setup {
            time_limit_us: 120 * US_PER_S,
            ..Setup::sjtu(nodes)
        },
        run,
    }
}

fn default_mix(t: Tester) -> ScenarioFuture {
    Box::pin(run_mix(t, Mix::Default))
}

fn snapshot_mix(t: Tester) -> ScenarioFuture {
    Box::pin(run_mix(t, Mix::Snapshots))
}

async fn run_mix(t: Tester, mix: Mix) -> sim::TestResult {
    let nodes = u32::try_from(t.servers()).unwrap_or(0);
    let (_, schedule) = plan(mix, nodes, t.seed());
    exec::execute(t, schedule).await
}

/// The mix of a swarm scenario, by name (`None` for other scenarios).
#[must_use]
pub fn mix_of(scenario: &Scenario) -> Option<Mix> {
    if scenario.lab != Lab::Swarm {
        return None;
    }
    SCENARIOS
        .iter()
        .find(|s| s.name == scenario.name)
        .map(|s| match s.part {
            "snapshots" => Mix::Snapshots,
            _ => Mix::Default,
        })
}

/// The parameters and schedule of the run of `mix` on `nodes` nodes under `seed`: a pure
/// function of the three (the swarm draws from its own stream, apart from the simulator's).
#[must_use]
pub fn plan(mix: Mix, nodes: u32, seed: u64) -> (SwarmParams, Schedule) {
    let mut rng = SimRng::new(mix64(seed ^ SWARM_STREAM), Purpose::Faults);
    let params = SwarmParams::draw(mix, nodes, &mut rng);
    let schedule = Schedule::generate(&params, &mut rng);
    (params, schedule)
}

/// Keeps the swarm's stream apart from the simulator's own fault stream of the same seed.
const SWARM_STREAM: u64 = 0x5357_4152_4d00_0001;

/// The plan of swarm scenario `scenario` under `seed` (`None` for other scenarios).
#[must_use]
pub fn plan_of(scenario: &Scenario, seed: u64) -> Option<(SwarmParams, Schedule)> {
    mix_of(scenario).map(|mix| plan(mix, scenario.setup.nodes, seed))
}

/// Runs `scenario` on `seed` with `schedule` instead of the one its seed draws.
#[must_use]
pub fn run_schedule(
    scenario: &Scenario,
    seed: u64,
    schedule: &Schedule,
    options: &sim::RunOptions,
) -> sim::RunReport {
    let schedule = schedule.clone();
    sim::run_with(scenario, seed, options, move |t| {
        Box::pin(exec::execute(t, schedule))
    })
}
