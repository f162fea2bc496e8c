//! A run is a function of its scenario and seed: the same pair gives the same trace hash and the
//! same counts, in this thread or another; a different seed gives a different trace; keeping the
//! records (or turning the checkers off) observes the run without changing it.

mod common;

use common::scenario;
use sim::trace::Trace;
use sim::{RunOptions, RunReport, Scenario, ScenarioFuture, Setup, Tester, cmd, ensure};

/// A busy run that uses every source of randomness: an unreliable network, a concurrent client,
/// workload and fault draws, a disconnect, a crash and a restart.
fn busy(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let client = {
            let t = t.clone();
            t.clone().spawn(async move {
                for _ in 0..10 {
                    let value = t.random_value();
                    let _ = t.one(cmd(value), 3, true).await?;
                }
                Ok(())
            })
        };
        let _ = t.check_one_leader().await?;
        for _ in 0..3 {
            let server = t.random_server();
            t.disconnect(server);
            t.sleep_ms(400 + t.random_below(400)).await;
            t.connect(server);
        }
        let server = t.random_server();
        t.crash(server);
        t.sleep_ms(800).await;
        t.restart(server);
        t.connect(server);
        ensure!(client.await.is_some(), "the client failed");
        let _ = t.one(cmd(-1), 5, true).await?;
        Ok(())
    })
}

fn busy_scenario() -> Scenario {
    scenario("determinism/busy", Setup::mit(5).unreliable(), busy)
}

/// The parts of a report that must repeat exactly.
fn fingerprint(report: &RunReport) -> (u64, u64, u64, u64, bool) {
    (
        report.trace_hash,
        report.events,
        report.virtual_us,
        report.messages,
        report.passed(),
    )
}

fn run(scenario: &Scenario, seed: u64, options: RunOptions) -> RunReport {
    let report = sim::run(scenario, seed, &options);
    assert!(
        report.passed(),
        "seed {seed}: {}",
        report
            .failure
            .as_ref()
            .map_or_else(String::new, ToString::to_string)
    );
    report
}

#[test]
fn the_same_seed_gives_the_same_trace_in_any_thread() {
    let scenario = busy_scenario();
    for seed in [1, 2, 77, u64::MAX] {
        let first = run(&scenario, seed, RunOptions::default());
        let again = run(&scenario, seed, RunOptions::default());
        assert_eq!(fingerprint(&first), fingerprint(&again), "seed {seed}");
        let elsewhere = std::thread::spawn(move || {
            fingerprint(&run(&busy_scenario(), seed, RunOptions::default()))
        })
        .join()
        .expect("the other thread's run");
        assert_eq!(
            fingerprint(&first),
            elsewhere,
            "seed {seed} in another thread"
        );
        assert!(
            first.events > 1_000,
            "seed {seed}: only {} events",
            first.events
        );
    }
}

#[test]
fn different_seeds_give_different_traces() {
    let scenario = busy_scenario();
    let mut hashes: Vec<u64> = (0..16)
        .map(|seed| run(&scenario, seed, RunOptions::default()).trace_hash)
        .collect();
    hashes.sort_unstable();
    hashes.dedup();
    assert_eq!(hashes.len(), 16, "two of 16 seeds gave the same trace");
}

#[test]
fn recording_the_trace_observes_the_run_without_changing_it() {
    let scenario = busy_scenario();
    for seed in [3, 4] {
        let plain = run(&scenario, seed, RunOptions::default());
        assert!(plain.trace.is_none(), "records kept without being asked");
        let recording = RunOptions {
            record_trace: true,
            ..RunOptions::default()
        };
        let recorded = run(&scenario, seed, recording);
        assert_eq!(fingerprint(&plain), fingerprint(&recorded), "seed {seed}");
        let records = recorded.trace.expect("records were asked for");
        assert_eq!(
            records.len() as u64,
            recorded.events,
            "one record per event"
        );
        let numbers: Vec<u64> = records.iter().map(|r| r.event).collect();
        let expected: Vec<u64> = (1..=recorded.events).collect();
        assert_eq!(numbers, expected, "events are numbered 1, 2, 3, … in order");
        assert!(
            records
                .windows(2)
                .all(|pair| pair[0].at_us <= pair[1].at_us),
            "time never runs backwards"
        );
        // The hash is exactly the hash of the records.
        let mut trace = Trace::new(false);
        records.iter().for_each(|&record| trace.push(record));
        assert_eq!(trace.hash(), recorded.trace_hash, "seed {seed}");
    }
}

#[test]
fn the_checkers_observe_the_run_without_changing_it() {
    let scenario = busy_scenario();
    for seed in [5, 6] {
        let checked = run(&scenario, seed, RunOptions::default());
        let unchecked = RunOptions {
            checkers: false,
            ..RunOptions::default()
        };
        let bare = run(&scenario, seed, unchecked);
        assert_eq!(fingerprint(&checked), fingerprint(&bare), "seed {seed}");
    }
}

/// A run whose scenario uses no randomness of its own still differs between seeds: the seed
/// reaches the node timers and the network.
fn idle(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        t.sleep_ms(2_000).await;
        Ok(())
    })
}

#[test]
fn the_seed_reaches_the_cluster_even_when_the_scenario_draws_nothing() {
    let scenario = scenario("determinism/idle", Setup::mit(3), idle);
    let a = run(&scenario, 10, RunOptions::default());
    let b = run(&scenario, 11, RunOptions::default());
    assert_ne!(a.trace_hash, b.trace_hash);
    assert_eq!(
        a.trace_hash,
        run(&scenario, 10, RunOptions::default()).trace_hash
    );
}
