//! SJTU CSE lab 3 part 4: snapshots (`LAB_SCENARIOS.md` §4, "Part 4: snapshots").
//!
//! Snapshots are taken only when the test calls `save_snapshot()` ([`Tester::save_snapshot`]).
//! The checks read the list state machine's `num_append_logs` (commands applied one by one; a
//! snapshot restore does not count) to tell a node that caught up from a snapshot from one that
//! replayed the whole log.

use sim::{Lab, Scenario, ScenarioFuture, Setup, Tester, cmd, ensure};

/// The part-4 scenarios, in the lab's order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "sjtu/part4/basic_snapshot",
        lab: Lab::Sjtu,
        part: "part4",
        summary: "a node disabled for 99 entries catches up from a snapshot (< 90 applies)",
        setup: Setup::sjtu(3),
        run: basic_snapshot,
    },
    Scenario {
        name: "sjtu/part4/restore_snapshot",
        lab: Lab::Sjtu,
        part: "part4",
        summary: "a restarted leader restores its persisted snapshot (< 90 applies)",
        setup: Setup::sjtu(3),
        run: restore_snapshot,
    },
    Scenario {
        name: "sjtu/part4/override_snapshot",
        lab: Lab::Sjtu,
        part: "part4",
        summary: "a second snapshot replaces the first; the restarted leader applies < 50",
        setup: Setup::sjtu(3),
        run: override_snapshot,
    },
];

/// part4.basic_snapshot ("Basic snapshot").
fn basic_snapshot(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        let leader = t.check_one_leader().await?;
        let killed = (leader + 1) % servers;
        t.disconnect(killed);
        for i in 1..100 {
            t.one(cmd(100 + i), servers - 1, true).await?;
        }
        let leader = t.check_one_leader().await?;
        let mut other = (leader + 1) % servers;
        if other == killed {
            other = (leader + 2) % servers;
        }
        ensure!(t.save_snapshot(leader), "leader cannot save snapshot");
        ensure!(t.save_snapshot(other), "follower cannot save snapshot");
        t.sleep_ms(2000).await;
        t.connect(killed);
        t.check_one_leader().await?;
        t.one(cmd(1024), servers, true).await?;
        ensure!(
            t.num_append_logs(killed) < 90,
            "the snapshot does not work: node {killed} applied {} commands one by one",
            t.num_append_logs(killed)
        );
        Ok(())
    })
}

/// part4.restore_snapshot ("Restore snapshot after failure").
fn restore_snapshot(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        t.check_one_leader().await?;
        for i in 1..100 {
            t.one(cmd(100 + i), servers - 1, true).await?;
        }
        let leader = t.check_one_leader().await?;
        ensure!(t.save_snapshot(leader), "leader cannot save snapshot");
        t.sleep_ms(2000).await;
        t.restart(leader);
        t.one(cmd(1024), servers, true).await?;
        ensure!(
            t.num_append_logs(leader) < 90,
            "the snapshot does not work: node {leader} applied {} commands one by one",
            t.num_append_logs(leader)
        );
        Ok(())
    })
}

/// part4.override_snapshot ("Overrive snapshot" in the lab).
fn override_snapshot(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        t.check_one_leader().await?;
        for i in 1..30 {
            t.one(cmd(100 + i), servers - 1, true).await?;
        }
        let leader = t.check_one_leader().await?;
        ensure!(t.save_snapshot(leader), "leader cannot save snapshot");
        for i in 30..60 {
            t.one(cmd(100 + i), servers - 1, true).await?;
        }
        let leader = t.check_one_leader().await?;
        ensure!(t.save_snapshot(leader), "leader cannot save snapshot");
        t.sleep_ms(2000).await;
        t.restart(leader);
        t.one(cmd(1024), servers, true).await?;
        ensure!(
            t.num_append_logs(leader) < 50,
            "the snapshot does not work: node {leader} applied {} commands one by one",
            t.num_append_logs(leader)
        );
        Ok(())
    })
}
