//! Swarm runs: the liveness phase, schedules as data, the canary and shrinking.

use scenarios::swarm::schedule::{Liveness, Restart};
use scenarios::swarm::{self, Action, Schedule, Timed, exec};
use sim::{CrashPoint, FailureKind, RunOptions, Scenario, ensure};

fn scenario(name: &str) -> Scenario {
    scenarios::registry::find(name).unwrap_or_else(|| panic!("no scenario {name}"))
}

/// A schedule that crashes nodes and keeps them down until the liveness phase.
fn crashes_that_stay_down(nodes: u32, down: &[u32], restart: Restart) -> Schedule {
    let events = down
        .iter()
        .map(|&node| Timed {
            at_ms: 500,
            action: Action::Crash {
                node,
                point: CrashPoint::BetweenSteps,
                restart_after_ms: None,
            },
        })
        .chain((1..=20).map(|i| Timed {
            at_ms: 1000 + 50 * i,
            action: Action::Propose {
                client: 0,
                value: i as i64,
                first_server: 0,
            },
        }))
        .collect();
    Schedule {
        nodes,
        fault_phase_ms: 3000,
        events,
        liveness: Liveness {
            restart,
            budget_ms: 12_000,
            commands: 3,
        },
    }
}

/// Runs `schedule` on `scenario`, then `after` on the tester once the liveness phase passed.
fn run_then(
    scenario: &Scenario,
    seed: u64,
    schedule: Schedule,
    after: fn(&sim::Tester) -> sim::TestResult,
) -> sim::RunReport {
    sim::run_with(scenario, seed, &RunOptions::default(), move |t| {
        Box::pin(async move {
            exec::execute(t.clone(), schedule).await?;
            after(&t)
        })
    })
}

#[test]
fn the_liveness_phase_restarts_every_crashed_node_or_only_a_quorum() {
    let n5 = scenario("swarm/default/n5");
    for seed in 1..=4 {
        let all = crashes_that_stay_down(5, &[0, 1, 2], Restart::All);
        let report = run_then(&n5, seed, all, |t| {
            ensure!((0..5).all(|s| t.is_up(s)), "a node is still down");
            Ok(())
        });
        assert!(report.passed(), "seed {seed}: {:?}", report.failure);

        let quorum = Restart::Quorum {
            nodes: vec![1, 2, 4],
        };
        let some = crashes_that_stay_down(5, &[0, 1, 2], quorum);
        let report = run_then(&n5, seed, some, |t| {
            let up: Vec<usize> = (0..5).filter(|&s| t.is_up(s)).collect();
            ensure!(
                up == vec![1, 2, 3, 4],
                "up after the liveness phase: {up:?}"
            );
            Ok(())
        });
        assert!(report.passed(), "seed {seed}: {:?}", report.failure);
    }
}

#[test]
fn a_liveness_phase_without_time_is_a_liveness_failure_not_a_safety_one() {
    let n3 = scenario("swarm/default/n3");
    for seed in 1..=4 {
        let mut schedule = crashes_that_stay_down(3, &[2], Restart::All);
        schedule.liveness.budget_ms = 0;
        let report = swarm::run_schedule(&n3, seed, &schedule, &RunOptions::default());
        let failure = report.failure.expect("no time to commit anything");
        assert_eq!(failure.kind, FailureKind::Liveness, "{failure}");
        assert!(failure.message.contains("liveness phase"), "{failure}");
        assert_eq!(failure.kind.exit_code(), 4);
    }
}

#[test]
fn a_schedule_that_does_not_fit_the_cluster_is_a_check_failure() {
    let n3 = scenario("swarm/default/n3");
    let schedule = crashes_that_stay_down(5, &[4], Restart::All);
    let report = swarm::run_schedule(&n3, 1, &schedule, &RunOptions::default());
    let failure = report.failure.expect("a 5-node schedule on 3 nodes");
    assert_eq!(failure.kind, FailureKind::Check);
    assert!(failure.message.contains("bad schedule"), "{failure}");
}

#[test]
fn a_run_from_its_own_schedule_is_the_run_of_its_seed() {
    for name in ["swarm/default/n3", "swarm/snapshots/n5"] {
        let scenario = scenario(name);
        for seed in [5, 6] {
            let (_, schedule) = swarm::plan_of(&scenario, seed).expect("a swarm scenario");
            let from_seed = sim::run(&scenario, seed, &RunOptions::default());
            let from_data = swarm::run_schedule(&scenario, seed, &schedule, &RunOptions::default());
            assert!(from_seed.passed(), "{name} {seed}: {:?}", from_seed.failure);
            assert_eq!(from_seed.trace_hash, from_data.trace_hash, "{name} {seed}");
        }
    }
}

/// Not every swarm run is quiet: across a few seeds, the fault kinds really happen.
#[test]
fn swarm_runs_inject_every_fault_kind() {
    use sim::trace::EventKind;
    let mut seen = [false; 7];
    for seed in 0..30 {
        let scenario = scenario("swarm/snapshots/n5");
        let options = RunOptions {
            record_trace: true,
            ..RunOptions::default()
        };
        let report = sim::run(&scenario, seed, &options);
        assert!(report.passed(), "seed {seed}: {:?}", report.failure);
        for record in report.trace.unwrap_or_default() {
            let kind = match record.kind {
                EventKind::CrashMidStep { .. } => 0,
                EventKind::Crash => 1,
                EventKind::Pause { .. } => 2,
                EventKind::Link { cut: true, .. } => 3,
                EventKind::Reorder { per_mille, .. } if per_mille > 0 => 4,
                EventKind::Skew { .. } => 5,
                EventKind::Deliver {
                    message: sim::trace::MessageKind::InstallSnapshot,
                    ..
                } => 6,
                _ => continue,
            };
            seen[kind] = true;
        }
    }
    assert_eq!(
        seen, [true; 7],
        "mid-step crash, crash, pause, cut, reorder, skew, install"
    );
}
