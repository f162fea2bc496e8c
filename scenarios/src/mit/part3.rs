//! MIT 6.5840 2C / 3C: persistence (`LAB_SCENARIOS.md` §2, "2C: persistence").
//!
//! A crash is MIT's `crash1` ([`Tester::crash`]); a restart is `start1` with the plain applier
//! ([`Tester::restart`]), which leaves the server disconnected until it is connected again.

use sim::{JoinHandle, Lab, Scenario, ScenarioFuture, Setup, Tester, bail, cmd, ensure};
use std::cell::Cell;
use std::collections::BTreeSet;
use std::rc::Rc;

/// The part-3 scenarios, in the lab's order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "mit/part3/persist1",
        lab: Lab::Mit,
        part: "part3",
        summary: "agreement survives restarting all servers, then leaders, then a follower",
        setup: Setup::mit(3),
        run: persist1,
    },
    Scenario {
        name: "mit/part3/persist2",
        lab: Lab::Mit,
        part: "part3",
        summary: "5 rounds of partitions and restarts where only the up-to-date server can win",
        setup: Setup::mit(5),
        run: persist2,
    },
    Scenario {
        name: "mit/part3/persist3",
        lab: Lab::Mit,
        part: "part3",
        summary: "a partitioned follower, then the leader and the other follower crash",
        setup: Setup::mit(3),
        run: persist3,
    },
    Scenario {
        name: "mit/part3/figure8",
        lab: Lab::Mit,
        part: "part3",
        summary: "1000 rounds of crashing the leader mid-replication (the paper's Figure 8)",
        setup: Setup::mit(5),
        run: figure8,
    },
    Scenario {
        name: "mit/part3/unreliable_agree",
        lab: Lab::Mit,
        part: "part3",
        summary: "245 concurrent agreements on an unreliable network",
        setup: Setup::mit(5).unreliable(),
        run: unreliable_agree,
    },
    Scenario {
        name: "mit/part3/figure8_unreliable",
        lab: Lab::Mit,
        part: "part3",
        summary: "Figure 8 with leader disconnects, an unreliable network and long reordering",
        setup: Setup::mit(5).unreliable(),
        run: figure8_unreliable,
    },
    Scenario {
        name: "mit/part3/reliable_churn",
        lab: Lab::Mit,
        part: "part3",
        summary: "3 clients while servers are disconnected, crashed and restarted at random",
        setup: Setup::mit(5),
        run: reliable_churn,
    },
    Scenario {
        name: "mit/part3/unreliable_churn",
        lab: Lab::Mit,
        part: "part3",
        summary: "churn with 3 clients on an unreliable network",
        setup: Setup::mit(5).unreliable(),
        run: unreliable_churn,
    },
];

/// TestPersist12C.
fn persist1(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        t.one(cmd(11), servers, true).await?;

        // Crash and restart all.
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

        // Wait for leader2 to join before killing i3.
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

/// TestPersist22C.
fn persist2(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        let mut index = 1;
        for _ in 0..5 {
            t.one(cmd(10 + index), servers, true).await?;
            index += 1;

            let leader1 = t.check_one_leader().await?;
            let peer = |offset: usize| (leader1 + offset) % servers;
            t.disconnect(peer(1));
            t.disconnect(peer(2));

            t.one(cmd(10 + index), servers - 2, true).await?;
            index += 1;

            t.disconnect(peer(0));
            t.disconnect(peer(3));
            t.disconnect(peer(4));

            // The two servers that missed the last entry come back first...
            t.restart(peer(1));
            t.restart(peer(2));
            t.connect(peer(1));
            t.connect(peer(2));

            t.sleep_election_timeout().await;

            // ...and only the one with the newest entry can make them a majority.
            t.restart(peer(3));
            t.connect(peer(3));

            t.one(cmd(10 + index), servers - 2, true).await?;
            index += 1;

            t.connect(peer(4));
            t.connect(peer(0));
        }
        t.one(cmd(1000), servers, true).await?;
        Ok(())
    })
}

/// TestPersist32C.
fn persist3(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        t.one(cmd(101), 3, true).await?;

        let leader = t.check_one_leader().await?;
        t.disconnect((leader + 2) % servers);

        t.one(cmd(102), 2, true).await?;

        t.crash(leader);
        t.crash((leader + 1) % servers);
        t.connect((leader + 2) % servers);
        t.restart(leader);
        t.connect(leader);

        // The restarted leader must win: the other live server lacks entry 2.
        t.one(cmd(103), 2, true).await?;

        t.restart((leader + 1) % servers);
        t.connect((leader + 1) % servers);

        t.one(cmd(104), servers, true).await?;
        Ok(())
    })
}

/// The sleep of one Figure 8 round: with chance 10%, U[0, 500) ms (half an election timeout);
/// otherwise U[0, 13) ms.
async fn figure8_pause(t: &Tester) {
    let ms = if t.random_below(1000) < 100 {
        t.random_below(sim::tester::RAFT_ELECTION_TIMEOUT_MS / 2)
    } else {
        t.random_below(13)
    };
    t.sleep_ms(ms).await;
}

/// TestFigure82C.
fn figure8(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        t.one(cmd(t.random_value()), 1, true).await?;

        let mut nup = servers;
        for _ in 0..1000 {
            let mut leader = None;
            for i in 0..servers {
                // `start` refuses on a crashed server, as the lab skips `rafts[i] == nil`.
                if t.start(i, cmd(t.random_value())).is_some() {
                    leader = Some(i);
                }
            }

            figure8_pause(&t).await;

            if let Some(leader) = leader {
                t.crash(leader);
                nup -= 1;
            }

            if nup < 3 {
                let s = t.random_server();
                if !t.is_up(s) {
                    t.restart(s);
                    t.connect(s);
                    nup += 1;
                }
            }
        }

        for i in 0..servers {
            if !t.is_up(i) {
                t.restart(i);
                t.connect(i);
            }
        }
        t.one(cmd(t.random_value()), servers, true).await?;
        Ok(())
    })
}

/// TestUnreliableAgree2C: each round runs 4 concurrent clients beside the main one.
fn unreliable_agree(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        let mut clients: Vec<JoinHandle<u64>> = Vec::new();
        for iters in 1..50 {
            for j in 0..4 {
                let client = t.clone();
                clients
                    .push(t.spawn(async move { client.one(cmd(100 * iters + j), 1, true).await }));
            }
            t.one(cmd(iters), 1, true).await?;
        }

        t.set_reliable(true);
        for client in clients {
            if client.await.is_none() {
                bail!("a client failed to reach agreement");
            }
        }

        t.one(cmd(100), servers, true).await?;
        Ok(())
    })
}

/// TestFigure8Unreliable2C. Long reordering is turned on at round 200 and stays on, through the
/// final agreement.
fn figure8_unreliable(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        t.one(cmd(t.random_value() % 10_000), 1, true).await?;

        let mut nup = servers;
        for iters in 0..1000 {
            if iters == 200 {
                t.set_long_reordering(true);
            }
            let mut leader = None;
            for i in 0..servers {
                let accepted = t.start(i, cmd(t.random_value() % 10_000)).is_some();
                if accepted && t.is_connected(i) {
                    leader = Some(i);
                }
            }

            figure8_pause(&t).await;

            if let Some(leader) = leader
                && t.fault_chance(sim::tester::RAFT_ELECTION_TIMEOUT_MS / 2, 1000)
            {
                t.disconnect(leader);
                nup -= 1;
            }

            if nup < 3 {
                let s = t.random_server();
                if !t.is_connected(s) {
                    t.connect(s);
                    nup += 1;
                }
            }
        }

        for i in 0..servers {
            if !t.is_connected(i) {
                t.connect(i);
            }
        }
        t.one(cmd(t.random_value() % 10_000), servers, true).await?;
        Ok(())
    })
}

/// TestReliableChurn2C.
fn reliable_churn(t: Tester) -> ScenarioFuture {
    Box::pin(churn(t))
}

/// TestUnreliableChurn2C.
fn unreliable_churn(t: Tester) -> ScenarioFuture {
    Box::pin(churn(t))
}

/// One churn client (`cfn` of the lab's `internalChurn`): until `stop`, proposes a random value
/// on every live server and, if one accepted, polls for up to about 380 ms for its index to
/// commit. Returns the values it saw committed at the index it was given.
async fn churn_client(t: Tester, me: u64, stop: Rc<Cell<bool>>) -> sim::TestResult<Vec<i64>> {
    let mut values = Vec::new();
    while !stop.get() {
        let x = t.random_value();
        let mut index = None;
        for i in 0..t.servers() {
            // Try them all; maybe one of them is a leader.
            if let Some((index1, _)) = t.start(i, cmd(x)) {
                index = Some(index1);
            }
        }
        let Some(index) = index else {
            t.sleep_ms(79 + me * 17).await;
            continue;
        };
        // Maybe the leader will commit our value, maybe not; but don't wait forever.
        for to in [10, 20, 50, 100, 200] {
            let (nd, command) = t.n_committed(index)?;
            if nd > 0 {
                let Some(xx) = command.and_then(|command| command.as_int()) else {
                    bail!("wrong command type");
                };
                if xx == x {
                    values.push(x);
                }
                break;
            }
            t.sleep_ms(to).await;
        }
    }
    Ok(values)
}

/// The lab's `internalChurn`, on a network that starts reliable or not per the setup: 3
/// clients propose while, for 20 rounds 700 ms apart, random servers are disconnected,
/// restarted and crashed; then every value a client saw committed must be committed on all 5.
async fn churn(t: Tester) -> sim::TestResult {
    let servers = t.servers();
    let stop = Rc::new(Cell::new(false));
    let clients: Vec<JoinHandle<Vec<i64>>> = (0..3)
        .map(|me| t.spawn(churn_client(t.clone(), me, Rc::clone(&stop))))
        .collect();

    for _ in 0..20 {
        if t.fault_chance(200, 1000) {
            t.disconnect(t.random_server());
        }
        if t.fault_chance(500, 1000) {
            let i = t.random_server();
            if !t.is_up(i) {
                t.restart(i);
            }
            t.connect(i);
        }
        if t.fault_chance(200, 1000) {
            let i = t.random_server();
            if t.is_up(i) {
                t.crash(i);
            }
        }
        // Crashes and restarts infrequent enough that the servers can still make progress
        // despite an unreliable network.
        t.sleep_ms(sim::tester::RAFT_ELECTION_TIMEOUT_MS * 7 / 10)
            .await;
    }

    t.sleep_election_timeout().await;
    t.set_reliable(true);
    for i in 0..servers {
        if !t.is_up(i) {
            t.restart(i);
        }
        t.connect(i);
    }

    stop.set(true);
    let mut values = Vec::new();
    for client in clients {
        let Some(acknowledged) = client.await else {
            bail!("client failed");
        };
        values.extend(acknowledged);
    }

    t.sleep_election_timeout().await;

    let last_index = t.one(cmd(t.random_value()), servers, true).await?;
    let mut really = BTreeSet::new();
    for index in 1..=last_index {
        let value = t.wait(index, servers, None).await?;
        let Some(vi) = value.and_then(|value| value.as_int()) else {
            bail!("not an int");
        };
        really.insert(vi);
    }

    for v1 in values {
        ensure!(really.contains(&v1), "didn't find a value");
    }
    Ok(())
}
