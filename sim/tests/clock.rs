//! Per-node clock skew: with `tick_skew_per_mille_max` set, nodes tick at different, steady
//! intervals within the bound (seen in the trace), their elections run on their own clocks, and
//! the cluster still elects exactly one leader.

mod common;

use common::{SEEDS, run_traced, scenario};
use sim::trace::{EventKind, RoleTag, TraceRecord};
use sim::{ScenarioFuture, Setup, Tester, US_PER_MS, cmd, ensure};
use std::collections::BTreeMap;

/// Elects a leader, checks it is the only one in the highest term, and commits on all five.
fn elect(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let leader = t.check_one_leader().await?;
        let (term, _) = t.get_state(leader).unwrap_or_default();
        for server in (0..t.servers()).filter(|&s| s != leader) {
            let state = t.get_state(server);
            ensure!(
                state == Some((term, false)),
                "server {server} is at {state:?}, leader t{term}"
            );
        }
        let _ = t.one(cmd(1), 5, false).await?;
        t.sleep_ms(2_000).await;
        ensure!(
            t.check_terms()? == term,
            "the term moved while the leader was up"
        );
        Ok(())
    })
}

/// Each node's tick intervals, from consecutive `Tick` records (no node restarts here).
fn tick_intervals_us(records: &[TraceRecord]) -> BTreeMap<u32, Vec<u64>> {
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    let mut intervals: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for record in records.iter().filter(|r| r.kind == EventKind::Tick) {
        let node = record.node.expect("a tick belongs to a node");
        if let Some(previous) = last.insert(node, record.at_us) {
            intervals
                .entry(node)
                .or_default()
                .push(record.at_us - previous);
        }
    }
    intervals
}

/// Each node's one steady interval; fails if a node's ticks are unevenly spaced.
fn steady_intervals_us(records: &[TraceRecord], seed: u64) -> Vec<u64> {
    let intervals = tick_intervals_us(records);
    assert_eq!(intervals.len(), 5, "seed {seed}: every node ticks");
    intervals
        .iter()
        .map(|(node, spaced)| {
            let first = spaced[0];
            assert!(
                spaced.iter().all(|&i| i == first),
                "seed {seed}: node {node} ticks unevenly"
            );
            first
        })
        .collect()
}

/// The time of the first `Candidate` view of any node: when the first election started.
fn first_campaign_us(records: &[TraceRecord]) -> u64 {
    records
        .iter()
        .find(|r| r.after.is_some_and(|view| view.role == RoleTag::Candidate))
        .map(|r| r.at_us)
        .expect("someone campaigns")
}

#[test]
fn skewed_clocks_tick_at_different_steady_rates_and_still_elect_one_leader() {
    let skewed = Setup {
        tick_skew_per_mille_max: 200,
        ..Setup::mit(5)
    };
    let exact = Setup::mit(5);
    let skewed_scenario = scenario("clock/skewed", skewed, elect);
    let exact_scenario = scenario("clock/exact", exact, elect);
    let tick_us = skewed.tick_us;
    let (low, high) = (tick_us * 800 / 1000, tick_us * 1200 / 1000);
    let mut distinct_total = 0;
    for seed in SEEDS {
        let (skewed_report, records) = run_traced(&skewed_scenario, seed);
        let intervals = steady_intervals_us(&records, seed);
        assert!(
            intervals.iter().all(|i| (low..=high).contains(i)),
            "seed {seed}: tick intervals {intervals:?} outside {low}..={high} us"
        );
        let mut distinct = intervals.clone();
        distinct.sort_unstable();
        distinct.dedup();
        println!("seed {seed}: skewed tick intervals {intervals:?} us");
        assert!(
            distinct.len() >= 2,
            "seed {seed}: all clocks tick at {intervals:?}"
        );
        distinct_total += distinct.len();

        let (exact_report, exact_records) = run_traced(&exact_scenario, seed);
        let exact_intervals = steady_intervals_us(&exact_records, seed);
        assert!(
            exact_intervals.iter().all(|&i| i == tick_us),
            "{exact_intervals:?}"
        );
        // Same seeds for the node timers' phases and the cores: only the skew differs, and it
        // moves the first election.
        assert_ne!(
            skewed_report.trace_hash, exact_report.trace_hash,
            "seed {seed}"
        );
        let (skewed_first, exact_first) = (
            first_campaign_us(&records),
            first_campaign_us(&exact_records),
        );
        println!(
            "seed {seed}: first campaign at {} ms skewed, {} ms exact",
            skewed_first / US_PER_MS,
            exact_first / US_PER_MS
        );
        assert_ne!(
            skewed_first, exact_first,
            "seed {seed}: skew did not move the election"
        );
    }
    // 5 nodes drawing from 401 skews: nearly always 5 different clocks.
    assert!(
        distinct_total >= 4 * SEEDS.len(),
        "only {distinct_total} distinct clocks"
    );
}

#[test]
fn a_skewed_node_times_out_on_its_own_clock() {
    // Exact clocks: a follower cut off from a leader campaigns after 30–60 of its ticks, i.e.
    // 300–600 ms; a skewed clock scales that window by its own interval.
    let skewed = Setup {
        tick_skew_per_mille_max: 300,
        ..Setup::mit(3)
    };
    let scenario = scenario("clock/timeout", skewed, lonely_campaigns);
    for seed in SEEDS {
        let (_, records) = run_traced(&scenario, seed);
        let intervals = tick_intervals_us(&records);
        let disconnect = records
            .iter()
            .find(|r| r.kind == EventKind::Disconnect)
            .expect("a disconnect");
        let node = disconnect.node.expect("a disconnect has a node");
        let interval = intervals[&node][0];
        let connect = records
            .iter()
            .find(|r| r.kind == EventKind::Connect && r.node == Some(node))
            .map_or(u64::MAX, |r| r.event);
        // Campaign starts of the isolated node after the disconnect (ticks that raise its term;
        // a candidate's other ticks with outputs only ask again for missing votes): consecutive
        // ones are one election timeout apart, a whole number of its own ticks in [30, 60).
        let mut term = 0;
        let mut campaigns: Vec<u64> = Vec::new();
        for r in records.iter().filter(|r| r.node == Some(node)) {
            let Some(after) = r.after else { continue };
            let raised = after.term > term;
            term = after.term;
            if raised
                && r.kind == EventKind::Tick
                && r.event > disconnect.event
                && r.event < connect
            {
                campaigns.push(r.at_us);
            }
        }
        assert!(
            campaigns.len() >= 4,
            "seed {seed}: {} campaigns",
            campaigns.len()
        );
        for pair in campaigns.windows(2) {
            let gap = pair[1] - pair[0];
            assert_eq!(
                gap % interval,
                0,
                "seed {seed}: a gap of {gap} us, ticks of {interval}"
            );
            let ticks = gap / interval;
            assert!(
                (30..60).contains(&ticks),
                "seed {seed}: timeout of {ticks} ticks"
            );
        }
    }
}

/// Disconnects a follower for 5 s so it campaigns alone, on its own clock.
fn lonely_campaigns(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let leader = t.check_one_leader().await?;
        let lonely = (leader + 1) % t.servers();
        t.disconnect(lonely);
        t.sleep_ms(5_000).await;
        t.connect(lonely);
        let _ = t.check_one_leader().await?;
        Ok(())
    })
}
