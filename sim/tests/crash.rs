//! A crash loses exactly the volatile state and keeps exactly what was persisted.
//!
//! Each scenario crashes a server that has applied entries, checks it is gone while down, and
//! checks the restarted incarnation against the durable store read before the restart: term,
//! vote and log equal, commit index and last applied back at the snapshot index, counters reset,
//! and connectivity as the lab's `start1` / `restart` leave it.

mod common;

use common::{SEEDS, run_passing, run_traced, scenario};
use raft::{DurableState, Index, NodeId, Role};
use sim::trace::EventKind;
use sim::{Flavour, ScenarioFuture, Setup, TestError, TestResult, Tester, bail, cmd, ensure};

/// The durable store of `server`, which every server has.
fn durable(t: &Tester, server: usize) -> TestResult<DurableState> {
    t.durable_state(server)
        .ok_or_else(|| TestError::check(format!("server {server} has no store")))
}

/// Checks that a freshly restarted `server` resumed from exactly `stored`, with every volatile
/// field back at its starting value.
fn check_resumed_from(t: &Tester, server: usize, stored: &DurableState) -> TestResult {
    let resumed = t.with_node(server, |node| {
        (
            node.durable_state().clone(),
            node.voted_for(),
            node.role(),
            node.leader(),
            node.commit_index(),
            node.last_applied(),
        )
    });
    let Some((state, voted_for, role, leader, commit, applied)) = resumed else {
        bail!("server {server} is not running after its restart");
    };
    ensure!(
        &state == stored,
        "server {server} resumed from something else than its store"
    );
    let term = t.get_state(server).map(|(term, _)| term);
    ensure!(
        term == Some(stored.hard_state.term.0),
        "restarted term {term:?}"
    );
    ensure!(
        voted_for == stored.hard_state.voted_for,
        "restarted vote {voted_for:?}"
    );
    ensure!(role == Role::Follower, "restarted as {role:?}");
    ensure!(
        leader.is_none(),
        "restarted still knowing leader {leader:?}"
    );
    let snapshot_index = stored.log.snapshot_index();
    ensure!(
        commit == snapshot_index,
        "restarted commit {commit}, snapshot {snapshot_index}"
    );
    ensure!(
        applied == snapshot_index,
        "restarted applied {applied}, snapshot {snapshot_index}"
    );
    Ok(())
}

/// The server after `leader`.
fn follower_of(t: &Tester, leader: usize) -> usize {
    (leader + 1) % t.servers()
}

/// MIT: a crashed follower is gone, its store frozen; `start1` resumes it from the store,
/// disconnected and with its volatile state reset, and it catches up only once connected.
fn mit_crash_follower(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let leader = t.check_one_leader().await?;
        let mut last = 0;
        for value in 1..=25 {
            last = t.one(cmd(value), 3, false).await?;
        }
        let victim = follower_of(&t, leader);
        let before = t.with_node(victim, |n| (n.durable_state().clone(), n.commit_index()));
        let Some((persisted, commit)) = before else {
            bail!("server {victim} is down before the crash");
        };
        ensure!(
            commit == Index(last),
            "victim commit {commit} before the crash, expected {last}"
        );
        ensure!(
            durable(&t, victim)? == persisted,
            "the store differs from what the node asked to persist"
        );

        t.crash(victim);
        ensure!(
            t.get_state(victim).is_none(),
            "crashed server {victim} still answers GetState"
        );
        ensure!(
            !t.is_up(victim) && !t.is_connected(victim),
            "crash1 leaves it disconnected"
        );
        ensure!(
            t.with_node(victim, |_| ()).is_none(),
            "a crashed node is still readable"
        );
        // The others go on; the crashed server's store does not move.
        last = t.one(cmd(26), 2, false).await?;
        t.sleep_ms(1_000).await;
        let stored = durable(&t, victim)?;
        ensure!(stored == persisted, "the store of a crashed server changed");

        t.restart(victim);
        check_resumed_from(&t, victim, &stored)?;
        ensure!(
            t.rpc_count(victim) == 0,
            "a new incarnation starts with rpcCount 0"
        );
        ensure!(
            !t.is_connected(victim),
            "MIT start1 must leave the server disconnected"
        );
        t.sleep_ms(2_000).await;
        ensure!(
            t.rpc_count(victim) == 0,
            "a disconnected restarted server received requests"
        );
        let commit = t.with_node(victim, |n| n.commit_index());
        ensure!(
            commit == Some(stored.log.snapshot_index()),
            "disconnected, it learned commit {commit:?}"
        );
        let (term, _) = t.get_state(victim).unwrap_or_default();
        ensure!(
            term > stored.hard_state.term.0,
            "alone, it never timed out (term {term})"
        );

        t.connect(victim);
        let index = t.one(cmd(27), 3, true).await?;
        ensure!(index > last, "agreement at {index} after {last}");
        let commit = t.with_node(victim, |n| n.commit_index());
        ensure!(
            commit >= Some(Index(index)),
            "reconnected, it stays at commit {commit:?}"
        );
        Ok(())
    })
}

#[test]
fn mit_crash_keeps_exactly_the_store_and_start1_stays_disconnected() {
    let scenario = scenario("crash/mit-follower", Setup::mit(3), mit_crash_follower);
    for seed in SEEDS {
        let _ = run_passing(&scenario, seed);
    }
}

#[test]
fn mit_crash_with_snapshots_restarts_at_the_snapshot_index() {
    let setup = Setup::mit(3).snapshots();
    let scenario = scenario("crash/mit-snapshot", setup, mit_crash_follower);
    for seed in SEEDS {
        let (_, records) = run_traced(&scenario, seed);
        // 26 entries applied before the restart, snapshots every 10: the restart resumes at 19.
        let restart = records
            .iter()
            .find(|r| r.kind == EventKind::Restart)
            .and_then(|r| r.after)
            .expect("a restart with the node's state");
        assert_eq!(restart.commit, 19, "seed {seed}: resumed commit index");
    }
}

/// A leader crashes: a new leader takes over, the old one comes back as a follower from its
/// store, with the term it persisted, and learns the new term once connected. Then `start1` of
/// the running server crashes it and resumes it from its store, disconnected.
fn mit_crash_leader(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let leader = t.check_one_leader().await?;
        let index = t.one(cmd(1), 3, false).await?;
        let vote_before = t.with_node(leader, |n| n.voted_for()).flatten();
        ensure!(
            vote_before == Some(NodeId(leader as u32)),
            "leader {leader} voted for {vote_before:?}"
        );
        t.crash(leader);
        let next = t.check_one_leader().await?;
        ensure!(next != leader, "the crashed server is still the leader");
        let stored = durable(&t, leader)?;
        t.restart(leader);
        check_resumed_from(&t, leader, &stored)?;
        ensure!(
            !t.is_leader(leader),
            "a restarted leader came back as leader"
        );
        let Some((term, _)) = t.get_state(next) else {
            bail!("new leader {next} is down");
        };
        ensure!(
            term > stored.hard_state.term.0,
            "the new leader kept the old term"
        );
        t.connect(leader);
        let after = t.one(cmd(2), 3, true).await?;
        ensure!(after > index, "agreement at {after} after {index}");
        // start1 on a running, connected server: crash, resume from the store, disconnected.
        let stored = durable(&t, leader)?;
        t.restart(leader);
        check_resumed_from(&t, leader, &stored)?;
        ensure!(
            !t.is_connected(leader),
            "MIT start1 must leave the server disconnected"
        );
        Ok(())
    })
}

#[test]
fn a_crashed_leader_restarts_as_a_follower_with_its_persisted_vote() {
    let scenario = scenario("crash/mit-leader", Setup::mit(3), mit_crash_leader);
    for seed in SEEDS {
        let _ = run_passing(&scenario, seed);
    }
}

/// SJTU: `restart` stops and starts the server at once, re-enabled, from its store; its
/// per-incarnation `rpc_count` (requests it attempted) restarts at 0 and its state machine is
/// rebuilt empty, then replays the whole log. The leader is restarted: it is the server that
/// sends requests.
fn sjtu_restart(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        ensure!(t.flavour() == Flavour::Sjtu, "an SJTU scenario");
        let victim = t.check_one_leader().await?;
        let mut last = 0;
        for value in 1..=5 {
            last = t.one(cmd(value), 3, true).await?;
        }
        ensure!(t.rpc_count(victim) > 0, "the leader attempted no requests");
        ensure!(
            t.num_append_logs(victim) == last,
            "the victim applied {last} entries"
        );
        let stored = durable(&t, victim)?;
        // Disabled first: restart re-enables it all the same.
        t.disconnect(victim);
        t.restart(victim);
        check_resumed_from(&t, victim, &stored)?;
        ensure!(
            t.is_connected(victim),
            "SJTU restart must re-enable the server"
        );
        ensure!(
            t.rpc_count(victim) == 0,
            "a new incarnation starts with rpc_count 0"
        );
        ensure!(
            t.num_append_logs(victim) == 0,
            "the state machine is rebuilt empty"
        );
        // Re-enabled at once: it takes part without any enable_node.
        let index = t.one(cmd(6), 3, true).await?;
        ensure!(
            index == last + 1,
            "agreement at {index}, expected {}",
            last + 1
        );
        let commit = t.with_node(victim, |n| n.commit_index());
        ensure!(
            commit >= Some(Index(index)),
            "restarted SJTU server at commit {commit:?}"
        );
        let replayed = t.num_append_logs(victim);
        ensure!(
            replayed == index,
            "the state machine replayed {replayed} of {index} entries"
        );
        Ok(())
    })
}

#[test]
fn sjtu_restart_resumes_from_the_store_and_re_enables_the_node() {
    let scenario = scenario("crash/sjtu-restart", Setup::sjtu(3), sjtu_restart);
    for seed in SEEDS {
        let _ = run_passing(&scenario, seed);
    }
}

/// A crash and an immediate restart under heavy traffic: messages addressed to or sent by the
/// old incarnation are lost, never delivered to the new one.
fn restart_under_traffic(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let leader = t.check_one_leader().await?;
        let victim = follower_of(&t, leader);
        for value in 1..=20 {
            let _ = t.start(leader, cmd(value));
        }
        // Let the appends leave the leader, then restart the receiver while they are in flight.
        t.sleep_us(100).await;
        t.restart(victim);
        t.sleep_ms(1_000).await;
        let index = t.one(cmd(21), 3, true).await?;
        ensure!(index == 21, "agreement at {index}, expected 21");
        Ok(())
    })
}

#[test]
fn messages_in_flight_never_reach_a_restarted_incarnation() {
    let setup = Setup::sjtu(3);
    let scenario = scenario("crash/in-flight", setup, restart_under_traffic);
    for seed in SEEDS {
        let (_, records) = run_traced(&scenario, seed);
        let restart = records
            .iter()
            .find(|r| r.kind == EventKind::Restart)
            .expect("a restart");
        let victim = restart.node.expect("a restart has a node");
        let lost_at_restart: Vec<_> = records
            .iter()
            .filter(|r| r.event > restart.event && r.at_us < restart.at_us + 1_000)
            .filter(|r| matches!(r.kind, EventKind::Lost { .. }))
            .collect();
        assert!(
            lost_at_restart.iter().any(|r| r.node == Some(victim)
                && matches!(
                    r.kind,
                    EventKind::Lost {
                        reason: sim::network::LostReason::ReceiverGone,
                        ..
                    }
                )),
            "seed {seed}: no message to the old incarnation of {victim} was lost"
        );
    }
}
