//! SJTU CSE lab 3 part 3: persistence (`LAB_SCENARIOS.md` §4, "Part 3: persistence").
//!
//! `restart(i)` is the lab's crash and recover: a fresh node and an empty list state machine
//! from what the node persisted, **re-enabled at once** (MIT's restarted server stays
//! disconnected). The tests still call `enable_node` after it, which is then a no-op.

use sim::{Lab, Scenario, ScenarioFuture, Setup, TestResult, Tester, cmd};

/// The part-3 scenarios, in the lab's order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "sjtu/part3/persist1",
        lab: Lab::Sjtu,
        part: "part3",
        summary: "3 nodes keep agreeing across restarts of every node, the leader and a follower",
        setup: Setup::sjtu(3),
        run: persist1,
    },
    Scenario {
        name: "sjtu/part3/persist2",
        lab: Lab::Sjtu,
        part: "part3",
        summary: "5 rounds of partitions and restarts on 5 nodes; all 5 hold index 16",
        setup: Setup::sjtu(5),
        run: persist2,
    },
    Scenario {
        name: "sjtu/part3/persist3",
        lab: Lab::Sjtu,
        part: "part3",
        summary: "a partitioned leader and follower restart and rejoin a lagging node",
        setup: Setup::sjtu(3),
        run: persist3,
    },
    Scenario {
        name: "sjtu/part3/figure8",
        lab: Lab::Sjtu,
        part: "part3",
        summary: "1000 rounds of disabling the leader and restarting nodes; all 5 agree at the end",
        setup: Setup::sjtu(5),
        run: figure8,
    },
    Scenario {
        name: "sjtu/part3/unreliable_agree",
        lab: Lab::Sjtu,
        part: "part3",
        summary: "245 concurrent appends on an unreliable network, then agreement of all 5",
        setup: Setup::sjtu(5),
        run: unreliable_agree,
    },
    Scenario {
        name: "sjtu/part3/unreliable_figure_8",
        lab: Lab::Sjtu,
        part: "part3",
        summary: "100 figure-8 rounds on an unreliable network; all 5 agree at the end",
        setup: Setup::sjtu(5),
        run: unreliable_figure_8,
    },
];

/// part3.persist1 ("Basic persistence").
fn persist1(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        t.sleep_ms(100).await;
        t.one(cmd(11), servers, true).await?;

        // Restart every node, then disable and enable each one.
        for i in 0..servers {
            t.restart(i);
        }
        for i in 0..servers {
            t.disconnect(i);
            t.connect(i);
        }
        t.one(cmd(12), servers, true).await?;

        let leader1 = t.check_one_leader().await?;
        t.disconnect(leader1);
        t.restart(leader1);
        t.connect(leader1);
        t.one(cmd(13), servers, true).await?;

        let leader2 = t.check_one_leader().await?;
        t.disconnect(leader2);
        t.one(cmd(14), servers - 1, true).await?;
        t.restart(leader2);
        t.connect(leader2);

        // Wait for leader2 to join before disabling i3.
        t.wait(4, servers, None).await?;

        let i3 = (t.check_one_leader().await? + 1) % servers;
        t.disconnect(i3);
        t.one(cmd(15), servers - 1, true).await?;
        t.restart(i3);
        t.connect(i3);

        t.one(cmd(16), servers, true).await?;
        Ok(())
    })
}

/// part3.persist2 ("More persistence"). Unlike MIT's TestPersist22C, it ends by waiting for all
/// 5 nodes to hold the last index (16).
fn persist2(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        let mut index: u64 = 1;
        for _ in 0..5 {
            t.one(cmd(10 + index as i64), servers, true).await?;
            index += 1;

            let leader1 = t.check_one_leader().await?;
            let node = |k: usize| (leader1 + k) % servers;
            t.disconnect(node(1));
            t.disconnect(node(2));

            t.one(cmd(10 + index as i64), servers - 2, true).await?;
            index += 1;

            t.disconnect(node(0));
            t.disconnect(node(3));
            t.disconnect(node(4));

            t.restart(node(1));
            t.restart(node(2));
            t.connect(node(1));
            t.connect(node(2));

            t.sleep_ms(1000).await;

            t.restart(node(3));
            t.connect(node(3));

            t.one(cmd(10 + index as i64), servers - 2, true).await?;
            index += 1;

            t.connect(node(0));
            t.connect(node(4));
        }
        t.one(cmd(1000), servers, true).await?;
        t.wait(index, servers, None).await?;
        Ok(())
    })
}

/// part3.persist3 ("Partitioned leader and one follower crash, leader restarts").
fn persist3(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        t.one(cmd(101), servers, true).await?;
        let leader = t.check_one_leader().await?;
        let node = |k: usize| (leader + k) % servers;
        t.disconnect(node(2));

        t.one(cmd(102), servers - 1, true).await?;

        t.disconnect(node(0));
        t.disconnect(node(1));
        t.connect(node(2));

        t.restart(node(0));
        t.connect(node(0));
        t.one(cmd(103), 2, true).await?;

        t.restart(node(1));
        t.one(cmd(104), servers, true).await?;

        t.wait(4, servers, None).await?;
        Ok(())
    })
}

/// The lab's `figure_8_test(group, num_tries)`: every round proposes on every node, sleeps a
/// little (a long sleep one round in ten), disables the leader and, while fewer than 3 nodes
/// are thought up, restarts a random disabled node. Then every node restarts and all 5 must
/// agree.
///
/// Difference from the lab: it proposes on every node, disabled ones included, and takes the
/// last node that accepted as the leader; a disabled stale leader keeps accepting, so it is
/// picked and counted down again and `nup` drifts below the number of reachable nodes. Here
/// proposals still go to every node (stale leaders keep growing uncommittable entries, as in
/// the lab), but only a *reachable* node that accepted counts as the leader, so `nup` is the
/// number of reachable nodes, as in MIT's TestFigure82C.
async fn figure_8_test(t: &Tester, num_tries: u64) -> TestResult {
    let servers = t.servers();
    t.one(cmd(2048), 1, true).await?;
    let mut nup = servers;
    for iters in 0..num_tries {
        let mut leader = None;
        for i in 0..servers {
            if t.start(i, cmd(iters as i64)).is_some() && t.is_connected(i) {
                leader = Some(i);
            }
        }
        let sleep_ms = if t.fault_chance(100, 1000) {
            t.random_below(500)
        } else {
            t.random_below(13)
        };
        t.sleep_ms(sleep_ms).await;
        if let Some(leader) = leader {
            t.disconnect(leader);
            nup -= 1;
        }
        if nup < 3 {
            let s = t.random_server();
            if !t.is_connected(s) {
                t.restart(s);
                nup += 1;
            }
        }
    }

    for i in 0..servers {
        t.restart(i);
    }
    t.one(cmd(1024), servers, true).await?;
    Ok(())
}

/// part3.figure8 ("Raft paper figure 8" in 2021, "Case ppt63" in 2022), with the 2021 count of
/// 1000 rounds (2022: 100). See [`figure_8_test`] for the difference from the lab.
fn figure8(t: Tester) -> ScenarioFuture {
    Box::pin(async move { figure_8_test(&t, 1000).await })
}

/// part3.unreliable_agree ("Agreement under unreliable network"). The 196 threads are client
/// tasks. Unlike MIT's TestUnreliableAgree2C, the final append to all 5 also runs on the
/// unreliable network.
fn unreliable_agree(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        t.set_reliable(false);
        let mut workers = Vec::new();
        for iters in 1..50_i64 {
            for j in 0..4 {
                let t2 = t.clone();
                workers.push(t.spawn(async move {
                    t2.one(cmd(100 * iters + j), 1, true).await?;
                    Ok(())
                }));
            }
            t.one(cmd(iters), 1, true).await?;
        }
        for worker in workers {
            worker.await;
        }
        t.one(cmd(4096), servers, true).await?;
        Ok(())
    })
}

/// part3.unreliable_figure_8 ("Raft paper Figure 8 under unreliable network"): 100 rounds of
/// [`figure_8_test`] with the network unreliable throughout, the final restarts and append
/// included (SJTU's unreliable network drops 10% of requests and has no long reordering).
fn unreliable_figure_8(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        t.set_reliable(false);
        figure_8_test(&t, 100).await
    })
}
