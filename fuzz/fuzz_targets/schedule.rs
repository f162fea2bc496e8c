//! Bytes → a swarm scenario, a seed and a fault schedule → one simulated run. Any failure of the
//! run (a checker violation, a liveness shortfall, a panic) is a finding: the input reproduces it.
//! Shrink it with `sim shrink`-style minimisation (`cargo fuzz tmin`), and turn it into a schedule
//! file with the same decoder (`scenarios::swarm::bytes::schedule_from_bytes`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use scenarios::swarm::{self, bytes::schedule_from_bytes};
use sim::RunOptions;

fuzz_target!(|data: &[u8]| {
    let (pick, rest) = data.split_first().unwrap_or((&0, &[]));
    let scenario = &swarm::SCENARIOS[usize::from(*pick) % swarm::SCENARIOS.len()];
    let (seed_bytes, rest) = rest.split_at(rest.len().min(8));
    let mut seed = [0u8; 8];
    seed[..seed_bytes.len()].copy_from_slice(seed_bytes);
    let seed = u64::from_le_bytes(seed);
    let schedule = schedule_from_bytes(scenario.setup.nodes, rest);
    let report = swarm::run_schedule(scenario, seed, &schedule, &RunOptions::default());
    if let Some(failure) = report.failure {
        panic!("{} seed {seed:#x}: {failure}", scenario.name);
    }
});
