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

fn canary_schedule(scenario: &Scenario, seed: u64) -> Schedule {
    let (_, schedule) = swarm::plan_of(scenario, seed).expect("a swarm scenario");
    let node = u32::try_from(seed % u64::from(schedule.nodes)).unwrap_or(0);
    schedule.with_canary(node)
}

#[test]
fn the_canary_is_caught_by_a_checker_in_every_run() {
    for scenario in swarm::SCENARIOS {
        for seed in 0..40 {
            let schedule = canary_schedule(scenario, seed);
            let report = swarm::run_schedule(scenario, seed, &schedule, &RunOptions::default());
            let failure = report.failure.unwrap_or_else(|| {
                panic!("{} seed {seed}: the canary was not caught", scenario.name)
            });
            assert_eq!(failure.kind, FailureKind::Safety, "{failure}");
            assert!(failure.message.starts_with("checker "), "{failure}");
        }
    }
}

#[test]
fn the_canary_shrinks_to_a_tiny_schedule_that_fails_the_same_checker() {
    use swarm::shrink::{Budget, Signature, shrink};
    let scenario = scenario("swarm/default/n5");
    for seed in [3, 4] {
        let schedule = canary_schedule(&scenario, seed);
        let before = schedule.events.len();
        let original = swarm::run_schedule(&scenario, seed, &schedule, &RunOptions::default())
            .failure
            .expect("the canary fails");
        let budget = Budget {
            runs_max: 2000,
            stop: &mut || false,
            progress: &mut |_| {},
        };
        let shrunk = shrink(&scenario, seed, schedule, budget).expect("it fails, so it shrinks");
        assert_eq!(shrunk.events_before, before);
        assert!(
            shrunk.events_after <= 3 && shrunk.events_after < before,
            "seed {seed}: {before} -> {} events: {:?}",
            shrunk.events_after,
            shrunk.schedule.events
        );
        assert!(
            shrunk
                .schedule
                .events
                .iter()
                .any(|e| matches!(e.action, Action::Corrupt { .. })),
            "the corruption itself cannot go"
        );
        assert_eq!(Signature::of(&shrunk.failure), Signature::of(&original));
        // The minimal schedule replays to the same failure, through its file format too.
        let file = swarm::shrink::ScheduleFile {
            scenario: scenario.name.to_string(),
            seed,
            signature: Some(Signature::of(&shrunk.failure)),
            events_before: Some(before),
            schedule: shrunk.schedule.clone(),
        };
        let back = swarm::shrink::ScheduleFile::parse(&file.to_text()).expect("parses");
        assert_eq!(back, file);
        let replayed = swarm::run_schedule(&scenario, seed, &back.schedule, &RunOptions::default());
        assert_eq!(replayed.failure, Some(shrunk.failure.clone()));
    }
}

#[test]
fn shrinking_a_passing_run_is_refused() {
    use swarm::shrink::{Budget, ShrinkError, shrink};
    let scenario = scenario("swarm/default/n3");
    let (_, schedule) = swarm::plan_of(&scenario, 1).expect("a swarm scenario");
    let budget = Budget {
        runs_max: 10,
        stop: &mut || false,
        progress: &mut |_| {},
    };
    assert_eq!(
        shrink(&scenario, 1, schedule, budget).map(|s| s.events_after),
        Err(ShrinkError::Passes)
    );
}

/// The `sim` binary: exit codes of the canary campaign, schedule replays and JUnit output.
#[test]
fn the_cli_reports_canaries_replays_schedules_and_writes_junit() {
    let binary = env!("CARGO_BIN_EXE_sim");
    let dir = std::env::temp_dir().join(format!("sim-swarm-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let sim = |args: &[&str]| {
        std::process::Command::new(binary)
            .args(args)
            .output()
            .expect("the sim binary runs")
    };
    let canary = sim(&[
        "fuzz",
        "--canary",
        "--seeds",
        "4",
        "--jobs",
        "1",
        "--seed-base",
        "9",
    ]);
    assert_eq!(
        canary.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&canary.stdout)
    );
    assert!(String::from_utf8_lossy(&canary.stdout).contains("20 of 20 runs caught"));

    let junit = dir.join("junit.xml");
    let junit_arg = junit.to_string_lossy().to_string();
    let fuzz = sim(&[
        "fuzz",
        "swarm/default/n3",
        "mit/part2",
        "--seeds",
        "2",
        "--junit",
        &junit_arg,
    ]);
    assert_eq!(fuzz.status.code(), Some(0));
    let xml = std::fs::read_to_string(&junit).expect("the JUnit file");
    assert!(xml.contains("name=\"swarm/default/n3\""), "{xml}");
    assert!(xml.contains("classname=\"mit.part2\""), "{xml}");

    let file = dir.join("stuck.json");
    let mut schedule = crashes_that_stay_down(3, &[1], Restart::All);
    schedule.liveness.budget_ms = 0;
    let text = swarm::shrink::ScheduleFile {
        scenario: "swarm/default/n3".into(),
        seed: 5,
        signature: None,
        events_before: None,
        schedule,
    }
    .to_text();
    std::fs::write(&file, text).expect("write the schedule");
    let file_arg = file.to_string_lossy().to_string();
    let replay = sim(&["replay", "swarm/default/n3", "--schedule", &file_arg]);
    assert_eq!(replay.status.code(), Some(4), "a liveness failure exits 4");
    let wrong = sim(&["replay", "swarm/default/n5", "--schedule", &file_arg]);
    assert_eq!(
        wrong.status.code(),
        Some(2),
        "a 3-node schedule on 5 nodes is bad input"
    );
    let not_swarm = sim(&["fuzz", "--canary", "mit/part2/backup", "--seeds", "1"]);
    assert_eq!(not_swarm.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}
