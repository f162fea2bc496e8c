//! MIT 6.5840 2D / 3D: snapshots (`LAB_SCENARIOS.md` §2, "2D: snapshots").
//!
//! Every scenario runs MIT's snapshotting applier (`applierSnap`, [`Setup::snapshots`]): the
//! tester asks a server for a snapshot at every applied index ≡ 9 mod 10, and a restarted server
//! reloads its record from its persisted snapshot.

use sim::tester::MAX_LOG_SIZE;
use sim::tester::apps::SNAPSHOT_INTERVAL;
use sim::{Lab, Scenario, ScenarioFuture, Setup, TestResult, Tester, bail, cmd, ensure};

/// The part-4 scenarios, in the lab's order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "mit/part4/snapshot_basic",
        lab: Lab::Mit,
        part: "part4",
        summary: "30 rounds of 5-14 commands keep the log small through snapshots",
        setup: Setup::mit(3).snapshots(),
        run: snapshot_basic,
    },
    Scenario {
        name: "mit/part4/snapshot_install",
        lab: Lab::Mit,
        part: "part4",
        summary: "a follower cut off each round catches up, by InstallSnapshot if need be",
        setup: Setup::mit(3).snapshots(),
        run: snapshot_install,
    },
    Scenario {
        name: "mit/part4/snapshot_install_unreliable",
        lab: Lab::Mit,
        part: "part4",
        summary: "snapshot_install on an unreliable network",
        setup: Setup::mit(3).snapshots().unreliable(),
        run: snapshot_install_unreliable,
    },
    Scenario {
        name: "mit/part4/snapshot_install_crash",
        lab: Lab::Mit,
        part: "part4",
        summary: "a follower crashed each round restarts from its snapshot and catches up",
        setup: Setup::mit(3).snapshots(),
        run: snapshot_install_crash,
    },
    Scenario {
        name: "mit/part4/snapshot_install_uncrash",
        lab: Lab::Mit,
        part: "part4",
        summary: "snapshot_install_crash on an unreliable network",
        setup: Setup::mit(3).snapshots().unreliable(),
        run: snapshot_install_uncrash,
    },
    Scenario {
        name: "mit/part4/snapshot_all_crash",
        lab: Lab::Mit,
        part: "part4",
        summary: "5 rounds of crashing and restarting every server; the index never decreases",
        setup: Setup::mit(3).snapshots(),
        run: snapshot_all_crash,
    },
    Scenario {
        name: "mit/part4/snapshot_init",
        lab: Lab::Mit,
        part: "part4",
        summary: "a snapshot survives two restarts of every server with a write in between",
        setup: Setup::mit(3).snapshots(),
        run: snapshot_init,
    },
];

/// TestSnapshotBasic2D.
fn snapshot_basic(t: Tester) -> ScenarioFuture {
    Box::pin(snapcommon(t, false, false))
}

/// TestSnapshotInstall2D.
fn snapshot_install(t: Tester) -> ScenarioFuture {
    Box::pin(snapcommon(t, true, false))
}

/// TestSnapshotInstallUnreliable2D.
fn snapshot_install_unreliable(t: Tester) -> ScenarioFuture {
    Box::pin(snapcommon(t, true, false))
}

/// TestSnapshotInstallCrash2D.
fn snapshot_install_crash(t: Tester) -> ScenarioFuture {
    Box::pin(snapcommon(t, false, true))
}

/// TestSnapshotInstallUnCrash2D.
fn snapshot_install_uncrash(t: Tester) -> ScenarioFuture {
    Box::pin(snapcommon(t, false, true))
}

/// The lab's `snapcommon(disconnect, reliable, crash)` (the network's reliability comes from
/// the setup): 30 rounds in which a victim is disconnected or crashed (or neither), 5–14
/// commands are proposed on a sender that may not be leader, and the persisted Raft state must
/// stay below [`MAX_LOG_SIZE`]; then the victim comes back and must catch up.
async fn snapcommon(t: Tester, disconnect: bool, crash: bool) -> TestResult {
    let servers = t.servers();
    t.one(cmd(t.random_value()), servers, true).await?;
    let mut leader1 = t.check_one_leader().await?;

    for i in 0..30 {
        let (sender, victim) = if i % 3 == 1 {
            ((leader1 + 1) % servers, leader1)
        } else {
            (leader1, (leader1 + 1) % servers)
        };

        if disconnect {
            t.disconnect(victim);
            t.one(cmd(t.random_value()), servers - 1, true).await?;
        }
        if crash {
            t.crash(victim);
            t.one(cmd(t.random_value()), servers - 1, true).await?;
        }

        // Perhaps send enough to get a snapshot.
        let nn = SNAPSHOT_INTERVAL / 2 + t.random_below(SNAPSHOT_INTERVAL);
        for _ in 0..nn {
            t.start(sender, cmd(t.random_value()));
        }

        // Let the appliers catch up with the starts.
        if !disconnect && !crash {
            // Make sure all followers have caught up, so that snapshot_basic needs no
            // InstallSnapshot.
            t.one(cmd(t.random_value()), servers, true).await?;
        } else {
            t.one(cmd(t.random_value()), servers - 1, true).await?;
        }

        ensure!(t.log_size() < MAX_LOG_SIZE, "Log size too large");
        if disconnect {
            // Reconnect a follower, who may be behind and need a snapshot to catch up.
            t.connect(victim);
            t.one(cmd(t.random_value()), servers, true).await?;
            leader1 = t.check_one_leader().await?;
        }
        if crash {
            t.restart(victim);
            t.connect(victim);
            t.one(cmd(t.random_value()), servers, true).await?;
            leader1 = t.check_one_leader().await?;
        }
    }
    Ok(())
}

/// Crashes every server, then restarts and connects every one (from its persisted state).
fn crash_and_revive_all(t: &Tester) {
    for i in 0..t.servers() {
        t.crash(i);
    }
    for i in 0..t.servers() {
        t.restart(i);
        t.connect(i);
    }
}

/// TestSnapshotAllCrash2D.
fn snapshot_all_crash(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        t.one(cmd(t.random_value()), servers, true).await?;

        for _ in 0..5 {
            // Perhaps enough to get a snapshot.
            let nn = SNAPSHOT_INTERVAL / 2 + t.random_below(SNAPSHOT_INTERVAL);
            for _ in 0..nn {
                t.one(cmd(t.random_value()), servers, true).await?;
            }
            let index1 = t.one(cmd(t.random_value()), servers, true).await?;

            crash_and_revive_all(&t);

            let index2 = t.one(cmd(t.random_value()), servers, true).await?;
            if index2 < index1 + 1 {
                bail!("index decreased from {index1} to {index2}");
            }
        }
        Ok(())
    })
}

/// TestSnapshotInit2D.
fn snapshot_init(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        t.one(cmd(t.random_value()), servers, true).await?;

        // Enough commands to make a snapshot.
        for _ in 0..=SNAPSHOT_INTERVAL {
            t.one(cmd(t.random_value()), servers, true).await?;
        }

        crash_and_revive_all(&t);

        // A single command, so that something is written back to persistent storage.
        t.one(cmd(t.random_value()), servers, true).await?;

        crash_and_revive_all(&t);

        // Another command, to trigger a server that lost its snapshot on the last write.
        t.one(cmd(t.random_value()), servers, true).await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::RunOptions;
    use sim::trace::{EventKind, MessageKind};

    fn count(scenario: &Scenario, seed: u64, wanted: impl Fn(&EventKind) -> bool) -> usize {
        let options = RunOptions {
            record_trace: true,
            ..RunOptions::default()
        };
        let report = sim::run(scenario, seed, &options);
        assert!(report.passed(), "{}: {:?}", scenario.name, report.failure);
        let trace = report.trace.unwrap_or_default();
        trace.iter().filter(|record| wanted(&record.kind)).count()
    }

    /// The snapshot scenarios are not vacuous: the applier compacts, and a lagging follower is
    /// caught up by InstallSnapshot.
    #[test]
    fn snapshots_are_taken_and_installed() {
        let compacted =
            |kind: &EventKind| matches!(kind, EventKind::Compact { accepted: true, .. });
        let installed = |kind: &EventKind| {
            matches!(
                kind,
                EventKind::Deliver {
                    message: MessageKind::InstallSnapshot,
                    ..
                }
            )
        };
        for scenario in SCENARIOS {
            assert!(
                count(scenario, 1, compacted) > 0,
                "{} never compacted",
                scenario.name
            );
        }
        for scenario in &SCENARIOS[1..5] {
            assert!(
                count(scenario, 1, installed) > 0,
                "{} never installed",
                scenario.name
            );
        }
    }
}
