//! Every scenario on every `seeds.txt` seed that names it, plus fresh seeds.
//!
//! * `SIM_SEEDS=N` — fresh seeds per scenario (default 2; 0 runs only `seeds.txt`).
//! * `SIM_SEED=S` — run every scenario on seed S instead of fresh seeds (decimal or 0x hex).
//!
//! Every failure names the scenario, the seed and the command that replays it.

use scenarios::cli::report::replay_command;
use scenarios::registry;
use scenarios::seeds::{self, parse_seed};
use sim::RunOptions;
use std::time::{SystemTime, UNIX_EPOCH};

fn seeds_file() -> Vec<seeds::SeedLine> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../seeds.txt");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    seeds::parse(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Fresh seeds for this process: from `SIM_SEED`, or `SIM_SEEDS` seeds derived from the clock.
fn fresh_seeds() -> Vec<u64> {
    if let Ok(text) = std::env::var("SIM_SEED") {
        let seed = parse_seed(text.trim()).unwrap_or_else(|e| panic!("SIM_SEED: {e}"));
        return vec![seed];
    }
    let count: u64 = match std::env::var("SIM_SEEDS") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("SIM_SEEDS=`{text}` is not a number of seeds")),
        Err(_) => 2,
    };
    let base = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    (0..count)
        .map(|i| scenarios::cli::fuzz::campaign_seed(base, i))
        .collect()
}

#[test]
fn every_scenario_passes_on_seeds_txt_and_fresh_seeds() {
    let regression = seeds_file();
    let fresh = fresh_seeds();
    eprintln!(
        "fresh seeds: {} (pin one with SIM_SEED=<seed>)",
        fresh
            .iter()
            .map(|s| format!("{s:#x}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut failures = Vec::new();
    let mut runs = 0;
    for scenario in registry::all() {
        let pinned = regression
            .iter()
            .filter(|line| line.scenario == scenario.name)
            .map(|line| line.seed);
        for seed in pinned.chain(fresh.iter().copied()) {
            runs += 1;
            let report = sim::run(&scenario, seed, &RunOptions::default());
            if let Some(failure) = report.failure {
                failures.push(format!(
                    "{} seed {seed:#x}: {failure}\n  replay: {}",
                    scenario.name,
                    replay_command(scenario.name, seed)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn seeds_txt_names_only_existing_scenarios() {
    let names: Vec<&str> = registry::all().iter().map(|s| s.name).collect();
    for line in seeds_file() {
        assert!(
            names.contains(&line.scenario.as_str()),
            "seeds.txt line {}: unknown scenario `{}`",
            line.line,
            line.scenario
        );
    }
}

#[test]
fn same_seed_same_trace_and_different_seeds_differ() {
    for scenario in registry::all() {
        let options = RunOptions::default();
        let a = sim::run(&scenario, 11, &options);
        let b = sim::run(&scenario, 11, &options);
        let c = sim::run(&scenario, 12, &options);
        assert_eq!(
            a.trace_hash, b.trace_hash,
            "{}: seed 11 gave two different traces",
            scenario.name
        );
        assert_eq!(a.events, b.events, "{}", scenario.name);
        assert_ne!(
            a.trace_hash, c.trace_hash,
            "{}: seeds 11 and 12 gave the same trace",
            scenario.name
        );
    }
}

/// The `sim` binary, run as two separate processes, gives the hashes this process computes.
#[test]
fn traces_are_identical_across_processes() {
    let binary = env!("CARGO_BIN_EXE_sim");
    let hashes_of_process = || -> Vec<(String, String)> {
        let output = std::process::Command::new(binary)
            .args(["run", "all", "--seed", "0x2a", "--json"])
            .output()
            .expect("the sim binary runs");
        let stdout = String::from_utf8(output.stdout).expect("utf-8 output");
        stdout
            .lines()
            .map(|line| {
                let value: serde_json::Value = serde_json::from_str(line).expect("JSON lines");
                (
                    value["scenario"].as_str().unwrap_or_default().to_string(),
                    value["trace_hash"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    let in_process: Vec<(String, String)> = registry::all()
        .iter()
        .map(|scenario| {
            let report = sim::run(scenario, 0x2a, &RunOptions::default());
            (
                scenario.name.to_string(),
                format!("{:016x}", report.trace_hash),
            )
        })
        .collect();
    assert_eq!(hashes_of_process(), in_process, "first process differs");
    assert_eq!(hashes_of_process(), in_process, "second process differs");
}
