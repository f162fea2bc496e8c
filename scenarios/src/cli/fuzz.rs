//! Fuzz campaigns: many scenarios on many seeds, spread over worker threads.
//!
//! Each run is single-threaded and deterministic; threads only run different runs side by side.
//! Run number `k` maps to a scenario (`k mod scenarios`) and a seed derived from the campaign's
//! seed base and `k div scenarios`, so a campaign is reproducible from its seed base, and shards
//! (`k mod n == i`) split it without overlap.

use super::args::Shard;
use super::report::{Failure, RunResult};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When a campaign stops.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    /// This many seeds for every scenario.
    SeedsPerScenario(u64),
    /// Start no new run after this much real time.
    Time(Duration),
}

/// A campaign's settings.
pub struct Campaign<'a> {
    /// The scenario names, in registry order.
    pub scenarios: Vec<&'static str>,
    /// When to stop.
    pub budget: Budget,
    /// Worker threads.
    pub jobs: usize,
    /// Which runs this process does.
    pub shard: Shard,
    /// Stop after this many failures.
    pub max_failures: Option<usize>,
    /// Seeds derive from this.
    pub seed_base: u64,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
    /// Runs one scenario on one seed.
    pub run: &'a (dyn Fn(&'static str, u64) -> RunResult + Sync),
    /// The command that replays a failed run (scenario, seed).
    pub replay: fn(&str, u64) -> String,
}

/// A failure and when the campaign found it.
#[derive(Clone, Debug)]
pub struct Found {
    /// The failed run.
    pub result: RunResult,
    /// Real time from the campaign's start to the end of the failing run.
    pub after: Duration,
}

/// What a campaign did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Runs completed.
    pub runs: u64,
    /// Failed runs, in the order of their run numbers.
    pub failures: Vec<Found>,
    /// Events handled over all runs.
    pub events: u64,
    /// Virtual time simulated over all runs, in microseconds.
    pub virtual_us: u64,
    /// Real time of the campaign.
    pub wall: Duration,
    /// Summed real time of the runs themselves (CPU-side; exceeds `wall` with several jobs).
    pub run_wall_us: u64,
    /// Per scenario that ran: its runs and their summed real time.
    pub per_scenario: BTreeMap<&'static str, ScenarioRuns>,
}

/// One scenario's share of a campaign.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScenarioRuns {
    /// Runs completed.
    pub runs: u64,
    /// Of which failed.
    pub failures: u64,
    /// Their summed real time, in microseconds.
    pub wall_us: u64,
}

/// The seed of the `index`-th seed of a campaign (SplitMix64 of the base and the index).
#[must_use]
pub fn campaign_seed(seed_base: u64, index: u64) -> u64 {
    let mut z = seed_base.wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs a campaign to its budget (or its failure limit) and returns what happened.
pub fn run_campaign(campaign: &Campaign<'_>) -> Summary {
    let scenario_count = campaign.scenarios.len() as u64;
    let total_runs = match campaign.budget {
        Budget::SeedsPerScenario(seeds) => Some(seeds.saturating_mul(scenario_count)),
        Budget::Time(_) => None,
    };
    let bar = progress_bar(campaign, total_runs);
    let start = Instant::now();
    let next = AtomicU64::new(campaign.shard.index);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<(u64, RunResult, Duration)>> = Mutex::new(Vec::new());
    let failures = AtomicU64::new(0);

    let worker = || {
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let k = next.fetch_add(campaign.shard.count, Ordering::Relaxed);
            let within = match campaign.budget {
                Budget::SeedsPerScenario(_) => total_runs.is_some_and(|total| k < total),
                Budget::Time(limit) => start.elapsed() < limit,
            };
            if !within || scenario_count == 0 {
                return;
            }
            let scenario = campaign.scenarios[(k % scenario_count) as usize];
            let seed = campaign_seed(campaign.seed_base, k / scenario_count);
            let result = (campaign.run)(scenario, seed);
            let failed = result.failure.is_some();
            if failed {
                bar.println(format!(
                    "FAIL {} seed {seed:#x}: {}\n  replay: {}",
                    scenario,
                    result.failure.as_ref().map_or("", |f: &Failure| &f.message),
                    (campaign.replay)(scenario, seed)
                ));
                let found = failures.fetch_add(1, Ordering::Relaxed) + 1;
                if campaign.max_failures.is_some_and(|max| found >= max as u64) {
                    stop.store(true, Ordering::Relaxed);
                }
            }
            bar.inc(1);
            let elapsed = start.elapsed();
            results
                .lock()
                .expect("a worker panicked while holding the results")
                .push((k, result, elapsed));
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..campaign.jobs.max(1) {
            scope.spawn(worker);
        }
    });
    bar.finish_and_clear();

    let mut results = results.into_inner().expect("workers finished");
    results.sort_by_key(|(k, _, _)| *k);
    let mut summary = Summary {
        wall: start.elapsed(),
        ..Summary::default()
    };
    for (_, result, after) in results {
        summary.runs += 1;
        summary.events += result.events;
        summary.virtual_us += result.virtual_us;
        summary.run_wall_us += result.wall_us;
        let share = summary.per_scenario.entry(result.scenario).or_default();
        share.runs += 1;
        share.wall_us += result.wall_us;
        share.failures += u64::from(result.failure.is_some());
        if result.failure.is_some() {
            summary.failures.push(Found { result, after });
        }
    }
    summary
}

fn progress_bar(campaign: &Campaign<'_>, total_runs: Option<u64>) -> ProgressBar {
    if !campaign.progress {
        return ProgressBar::hidden();
    }
    let bar = match total_runs {
        Some(total) => ProgressBar::new(total.div_ceil(campaign.shard.count)),
        None => ProgressBar::new_spinner(),
    };
    let template = match total_runs {
        Some(_) => "{elapsed_precise} [{bar:40}] {pos}/{len} runs ({per_sec}, eta {eta})",
        None => "{elapsed_precise} {spinner} {pos} runs ({per_sec})",
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

impl Summary {
    /// Events per second of real time, over the whole campaign.
    #[must_use]
    pub fn events_per_sec(&self) -> u64 {
        let micros = self.wall.as_micros().max(1);
        u64::try_from(u128::from(self.events) * 1_000_000 / micros).unwrap_or(u64::MAX)
    }

    /// Virtual time simulated per unit of real run time (summed over workers).
    #[must_use]
    pub fn virtual_to_real(&self) -> f64 {
        self.virtual_us as f64 / self.run_wall_us.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::report::FailureKind;

    fn fake(scenario: &'static str, seed: u64) -> RunResult {
        RunResult {
            scenario,
            seed,
            failure: (scenario == "b" && seed.is_multiple_of(3)).then(|| Failure {
                kind: FailureKind::Check,
                message: "boom".into(),
            }),
            trace_hash: seed,
            events: 10,
            virtual_us: 1000,
            wall_us: 1,
        }
    }

    fn campaign(budget: Budget, shard: Shard, max_failures: Option<usize>) -> Summary {
        run_campaign(&Campaign {
            scenarios: vec!["a", "b"],
            budget,
            jobs: 2,
            shard,
            max_failures,
            seed_base: 7,
            progress: false,
            run: &fake,
            replay: crate::cli::report::replay_command,
        })
    }

    #[test]
    fn seeds_budget_runs_every_scenario_that_many_times() {
        let all = campaign(
            Budget::SeedsPerScenario(30),
            Shard { index: 0, count: 1 },
            None,
        );
        assert_eq!(all.runs, 60);
        assert_eq!(all.events, 600);
        assert_eq!(all.per_scenario["a"].runs, 30);
        assert_eq!(all.per_scenario["a"].failures, 0);
        assert_eq!(all.per_scenario["b"].failures as usize, all.failures.len());
        let expected = (0..30)
            .filter(|i| campaign_seed(7, *i).is_multiple_of(3))
            .count();
        assert_eq!(all.failures.len(), expected);
    }

    #[test]
    fn shards_split_without_overlap() {
        let a = campaign(
            Budget::SeedsPerScenario(30),
            Shard { index: 0, count: 2 },
            None,
        );
        let b = campaign(
            Budget::SeedsPerScenario(30),
            Shard { index: 1, count: 2 },
            None,
        );
        assert_eq!(a.runs + b.runs, 60);
        let all = campaign(
            Budget::SeedsPerScenario(30),
            Shard { index: 0, count: 1 },
            None,
        );
        assert_eq!(a.failures.len() + b.failures.len(), all.failures.len());
    }

    #[test]
    fn max_failures_stops_early() {
        let s = campaign(
            Budget::SeedsPerScenario(1000),
            Shard { index: 0, count: 1 },
            Some(1),
        );
        assert!(!s.failures.is_empty());
        assert!(s.runs < 2000);
    }

    #[test]
    fn time_budget_stops() {
        let s = campaign(
            Budget::Time(Duration::from_millis(50)),
            Shard { index: 0, count: 1 },
            None,
        );
        assert!(s.runs > 0);
    }
}
