//! A crash inside a step keeps exactly the outputs before the crash point.
//!
//! The durable state after a mid-step crash must be the state before the step plus exactly the
//! `Persist` outputs performed before the crash point, in order; the outputs after it (the
//! `Send`s that depend on the writes, later writes) must never happen. The first tests compute
//! what the step produces independently (stepping a clone of the node taken just before the
//! step) and compare the store with it; the last one arms crashes at random points all through a
//! faulty run and checks every one, including steps with two `Persist`s.

mod common;

use common::{SEEDS, run_passing, scenario};
use raft::{DurableState, Input, Output, Persist, Role};
use sim::{CrashPoint, ScenarioFuture, Setup, TestError, TestResult, Tester, bail, cmd, ensure};
use std::sync::atomic::{AtomicU64, Ordering};

fn durable(t: &Tester, server: usize) -> TestResult<DurableState> {
    t.durable_state(server)
        .ok_or_else(|| TestError::check(format!("server {server} has no store")))
}

/// Applies the `Persist` outputs among the first `performed` of `outputs` to `state`.
fn apply_prefix(mut state: DurableState, outputs: &[Output], performed: usize) -> DurableState {
    for output in outputs.iter().take(performed) {
        if let Output::Persist(op) = output {
            state.apply(op).expect("the model's writes fit");
        }
    }
    state
}

/// For each crash point k: a leader crashes inside the step that proposes a command, after k
/// of its outputs. The store must equal the state before plus the first k outputs' writes, as
/// computed by stepping a clone of the leader; the AppendEntries after the crash point never
/// leave; the restarted leader resumes from exactly that store and the cluster goes on.
fn propose_crash(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        for (round, k) in [0u32, 1, 2, 3, 9].into_iter().enumerate() {
            let leader = t.check_one_leader().await?;
            t.one(cmd(100 + round as i64), 3, true).await?;
            let Some(model) = t.with_node(leader, Clone::clone) else {
                bail!("leader {leader} is down");
            };
            let before = durable(&t, leader)?;
            ensure!(&before == model.durable_state(), "store and node disagree");
            let command = cmd(1000 + round as i64);
            let expected_outputs = model
                .clone()
                .step(Input::Propose(command.clone().into_bytes()));
            let sends_before = t.rpc_total();
            ensure!(
                t.crash_at(leader, CrashPoint::MidStep { after_outputs: k }),
                "cannot arm a crash at {leader}"
            );
            ensure!(t.start(leader, command).is_some(), "the leader refused");
            ensure!(
                !t.is_up(leader),
                "k={k}: the leader survived its armed step"
            );
            let outputs = &expected_outputs.outputs;
            let performed = (k as usize).min(outputs.len());
            let after = durable(&t, leader)?;
            ensure!(
                after == apply_prefix(before.clone(), outputs, performed),
                "k={k}: the store is not the prefix of the step's writes"
            );
            if k == 0 {
                ensure!(after == before, "k=0 kept a write");
            } else {
                ensure!(after != before, "k={k} lost the append it performed");
            }
            let sends = outputs
                .iter()
                .take(performed)
                .filter(|o| matches!(o, Output::Send { .. }))
                .count() as u64;
            ensure!(
                t.rpc_total() - sends_before == sends,
                "k={k}: {} requests left, {sends} were performed",
                t.rpc_total() - sends_before
            );
            let Some(record) = t.last_mid_step_crash() else {
                bail!("no mid-step crash recorded");
            };
            ensure!(
                record.outputs == *outputs,
                "the cluster stepped something else"
            );
            ensure!(
                record.performed == performed,
                "recorded {}",
                record.performed
            );
            t.restart(leader);
            t.connect(leader);
            let resumed = t.with_node(leader, |n| n.durable_state().clone());
            ensure!(
                resumed.as_ref() == Some(&after),
                "restarted from something else"
            );
        }
        t.one(cmd(7), 3, true).await?;
        Ok(())
    })
}

#[test]
fn a_crash_inside_a_proposal_keeps_exactly_the_writes_before_it() {
    let scenario = scenario("crash-points/propose", Setup::mit(3), propose_crash);
    for seed in SEEDS {
        let _ = run_passing(&scenario, seed);
    }
}

/// A cut-off follower armed to crash after k outputs crashes inside its first campaign: with
/// k = 1 its new term and self-vote are durable but not one RequestVote was attempted; with
/// k = 0 it keeps its old term.
fn campaign_crash(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        for k in [0u32, 1] {
            let leader = t.check_one_leader().await?;
            t.one(cmd(i64::from(k) + 1), 3, true).await?;
            let follower = (leader + 1) % 3;
            let before = durable(&t, follower)?;
            t.disconnect(follower);
            let attempted = t.rpc_count(follower);
            ensure!(
                t.crash_at(follower, CrashPoint::MidStep { after_outputs: k }),
                "cannot arm"
            );
            for _ in 0..100 {
                if !t.is_up(follower) {
                    break;
                }
                t.sleep_ms(20).await;
            }
            ensure!(!t.is_up(follower), "the cut-off follower never campaigned");
            let after = durable(&t, follower)?;
            let term = before.hard_state.term;
            if k == 0 {
                ensure!(after.hard_state == before.hard_state, "k=0 kept the vote");
            } else {
                ensure!(
                    after.hard_state.term == term.next(),
                    "term {}",
                    after.hard_state.term
                );
                let voted = after.hard_state.voted_for.map(|v| v.0 as usize);
                ensure!(voted == Some(follower), "voted for {voted:?}");
            }
            ensure!(after.log == before.log, "the log changed");
            ensure!(
                t.rpc_count(follower) == attempted,
                "RequestVotes left after the crash point"
            );
            let Some(record) = t.last_mid_step_crash() else {
                bail!("no mid-step crash recorded");
            };
            let first_is_vote = matches!(
                record.outputs.first(),
                Some(Output::Persist(Persist::HardState(_)))
            );
            ensure!(
                first_is_vote,
                "the campaign does not persist its vote first"
            );
            ensure!(
                record.persists_lost() == usize::from(k == 0),
                "persists lost"
            );
            t.restart(follower);
            t.one(cmd(50 + i64::from(k)), 3, true).await?;
        }
        Ok(())
    })
}

#[test]
fn a_crash_inside_a_campaign_keeps_the_vote_only_if_it_was_written() {
    let scenario = scenario("crash-points/campaign", Setup::sjtu(3), campaign_crash);
    for seed in SEEDS {
        let _ = run_passing(&scenario, seed);
    }
}

/// Mid-step crashes whose step persisted twice or more, over every run of the random test.
static MULTI_PERSIST_STEPS: AtomicU64 = AtomicU64::new(0);
/// Mid-step crashes that kept some writes of a step and lost others.
static SPLIT_WRITES: AtomicU64 = AtomicU64::new(0);

/// Crashes armed at random nodes and points all through a run with an unreliable network and
/// leader changes: after each one, the store is exactly the prefix the crash point allows.
fn random_crash_points(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        t.set_reliable(false);
        for round in 0..40 {
            let server = t.random_server();
            let k = t.random_below(5) as u32;
            if !t.is_up(server) {
                t.restart(server);
            }
            let before = durable(&t, server)?;
            t.crash_at(server, CrashPoint::MidStep { after_outputs: k });
            for i in 0..20 {
                let leader = (0..3).find(|&s| t.is_leader(s));
                if let Some(leader) = leader {
                    t.start(leader, cmd(round * 100 + i));
                }
                if !t.is_up(server) {
                    break;
                }
                t.sleep_ms(30).await;
            }
            if t.is_up(server) {
                t.disarm_crash(server);
                continue;
            }
            let Some(record) = t.last_mid_step_crash() else {
                bail!("no mid-step crash recorded");
            };
            ensure!(record.node.0 as usize == server, "recorded the wrong node");
            ensure!(record.durable_before == before, "a write was not reported");
            let expected = apply_prefix(before, &record.outputs, record.performed);
            ensure!(
                durable(&t, server)? == expected,
                "the store is not the prefix"
            );
            let persists = record
                .outputs
                .iter()
                .filter(|o| matches!(o, Output::Persist(_)))
                .count();
            if persists >= 2 {
                MULTI_PERSIST_STEPS.fetch_add(1, Ordering::Relaxed);
            }
            if record.persists_lost() > 0 && record.persists_lost() < persists {
                SPLIT_WRITES.fetch_add(1, Ordering::Relaxed);
            }
            t.restart(server);
            ensure!(
                t.with_node(server, |n| n.role()) == Some(Role::Follower),
                "restarted as something else than a follower"
            );
        }
        t.set_reliable(true);
        for server in 0..3 {
            if !t.is_up(server) {
                t.restart(server);
            }
        }
        t.one(cmd(-1), 3, true).await?;
        Ok(())
    })
}

#[test]
fn random_crash_points_keep_exactly_the_prefix_even_between_two_writes() {
    let scenario = scenario("crash-points/random", Setup::sjtu(3), random_crash_points);
    for seed in 0..40 {
        let _ = run_passing(&scenario, seed);
    }
    let multi = MULTI_PERSIST_STEPS.load(Ordering::Relaxed);
    let split = SPLIT_WRITES.load(Ordering::Relaxed);
    assert!(multi > 0, "no crash landed in a step with two writes");
    assert!(split > 0, "no crash landed between two writes of one step");
}
