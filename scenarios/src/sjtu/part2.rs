//! SJTU CSE lab 3 part 2: log replication (`LAB_SCENARIOS.md` §4, "Part 2: log replication").
//!
//! "append(v, k)" in the lab is [`Tester::one`]`(v, k, true)`; `new_command` on one node is
//! [`Tester::start`]; `disable_node` / `enable_node` are [`Tester::disconnect`] /
//! [`Tester::connect`].

use sim::{Lab, Scenario, ScenarioFuture, Setup, TestResult, Tester, bail, cmd, ensure};

/// The part-2 scenarios, in the lab's order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "sjtu/part2/basic_agree",
        lab: Lab::Sjtu,
        part: "part2",
        summary: "3 nodes agree on 3 commands at indices 1..3, none committed early",
        setup: Setup::sjtu(3),
        run: basic_agree,
    },
    Scenario {
        name: "sjtu/part2/fail_agree",
        lab: Lab::Sjtu,
        part: "part2",
        summary: "2 of 3 agree while the leader is disabled; all 3 once it is back",
        setup: Setup::sjtu(3),
        run: fail_agree,
    },
    Scenario {
        name: "sjtu/part2/fail_no_agree",
        lab: Lab::Sjtu,
        part: "part2",
        summary: "a leader with 3 of 5 followers disabled accepts but cannot commit",
        setup: Setup::sjtu(5),
        run: fail_no_agree,
    },
    Scenario {
        name: "sjtu/part2/concurrent_start",
        lab: Lab::Sjtu,
        part: "part2",
        summary: "5 concurrent new_command calls in one term all commit",
        setup: Setup::sjtu(3),
        run: concurrent_start,
    },
    Scenario {
        name: "sjtu/part2/rejoin",
        lab: Lab::Sjtu,
        part: "part2",
        summary: "a partitioned leader with 3 stale entries rejoins and is overwritten",
        setup: Setup::sjtu(3),
        run: rejoin,
    },
    Scenario {
        name: "sjtu/part2/backup",
        lab: Lab::Sjtu,
        part: "part2",
        summary: "a leader backs up quickly over 50-entry runs of incorrect follower logs",
        setup: Setup::sjtu(5),
        run: backup,
    },
    Scenario {
        name: "sjtu/part2/rpc_count",
        lab: Lab::Sjtu,
        part: "part2",
        summary: "call attempts stay low: election <= 30, 10 entries <= 42, 1 s idle <= 60",
        setup: Setup::sjtu(3),
        run: rpc_count,
    },
];

/// part2.basic_agree ("Basic Agreement").
fn basic_agree(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        t.sleep_ms(300).await;
        for i in 1..=3_u64 {
            let (committed, _) = t.n_committed(i)?;
            ensure!(committed == 0, "The log {i} should not be committed!");
            let index = t.one(cmd(i as i64 * 100), 3, true).await?;
            ensure!(index == i, "got index {index}, but expect {i}");
        }
        Ok(())
    })
}

/// part2.fail_agree ("Fail Agreement"). The lab disables the *leader* (MIT's TestFailAgree
/// disconnects a follower).
fn fail_agree(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        t.one(cmd(101), 3, true).await?;
        let leader = t.check_one_leader().await?;
        t.disconnect(leader);

        t.one(cmd(102), 2, true).await?;
        t.one(cmd(103), 2, true).await?;
        t.sleep_ms(1000).await;
        t.one(cmd(104), 2, true).await?;
        t.one(cmd(105), 2, true).await?;

        t.connect(leader);
        t.one(cmd(106), 3, true).await?;
        t.sleep_ms(1000).await;
        t.one(cmd(107), 3, true).await?;
        Ok(())
    })
}

/// part2.fail_no_agree ("Fail No Agreement").
fn fail_no_agree(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        t.sleep_ms(300).await;
        t.one(cmd(10), 5, true).await?;

        // 3 of 5 followers are disabled.
        let leader = t.check_one_leader().await?;
        for k in 1..=3 {
            t.disconnect((leader + k) % servers);
        }
        let Some((index, _)) = t.start(leader, cmd(20)) else {
            bail!("node {leader} is leader, but it rejects the command.");
        };
        ensure!(index == 2, "expected index 2, got {index}");

        t.sleep_ms(2000).await;
        let (committed, _) = t.n_committed(index)?;
        ensure!(
            committed == 0,
            "There is no majority, but index {index} is committed"
        );

        // Repair.
        for k in 1..=3 {
            t.connect((leader + k) % servers);
        }
        let leader2 = t.check_one_leader().await?;
        let Some((index, _)) = t.start(leader2, cmd(30)) else {
            bail!("leader2 reject the new command");
        };
        ensure!(index == 2 || index == 3, "unexpected index {index}");

        t.one(cmd(1000), 5, true).await?;
        Ok(())
    })
}

/// part2.concurrent_start ("Concurrent starts"). The 5 threads are 5 client tasks, started
/// together and joined. In the lab the `success` flag starts uninitialized; here it starts
/// false, as intended (five failed tries fail the test).
fn concurrent_start(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        for tries in 0..5 {
            if tries > 0 {
                t.sleep_ms(3000).await; // Give the solution some time to settle.
            }
            let leader = t.check_one_leader().await?;
            let Some((_, term)) = t.start(leader, cmd(1)) else {
                continue; // The leader moved on really quickly.
            };

            let mut workers = Vec::new();
            for i in 0..5 {
                let t2 = t.clone();
                workers.push(t.spawn(async move {
                    let accepted = t2.start(leader, cmd(100 + i));
                    Ok(accepted.and_then(|(index, at)| (at == term).then_some(index)))
                }));
            }
            let mut indices = Vec::new();
            for worker in workers {
                if let Some(Some(index)) = worker.await {
                    indices.push(index);
                }
            }

            // The term changed: the indices may not be committed.
            let moved = (0..servers).any(|s| t.get_state(s).is_some_and(|(at, _)| at != term));
            if moved {
                continue;
            }

            let mut values = Vec::new();
            let mut failed = false;
            for &index in &indices {
                match t.wait(index, servers, Some(term)).await? {
                    Some(value) => values.push(value),
                    None => {
                        failed = true; // The nodes have moved on to later terms.
                        break;
                    }
                }
            }
            if failed {
                continue;
            }
            for i in 0..5 {
                ensure!(
                    values.contains(&cmd(100 + i)),
                    "cmd {} missing in {values:?}",
                    100 + i
                );
            }
            return Ok(());
        }
        bail!("term change too often")
    })
}

/// part2.rejoin ("Rejoin of partitioned leader"). The new leader is looked up before the next
/// append, as in the lab (MIT appends first).
fn rejoin(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        t.one(cmd(101), 3, true).await?;
        let leader1 = t.check_one_leader().await?;

        // The leader's network fails; it still tries to agree on some entries.
        t.disconnect(leader1);
        for value in [102, 103, 104] {
            let _ = t.start(leader1, cmd(value));
        }

        // The new leader commits, also at index 2.
        let leader2 = t.check_one_leader().await?;
        t.one(cmd(103), 2, true).await?;

        // The new leader's network fails; the old leader comes back.
        t.disconnect(leader2);
        t.connect(leader1);
        t.one(cmd(104), 2, true).await?;

        // All together now.
        t.connect(leader2);
        t.one(cmd(105), 3, true).await?;
        Ok(())
    })
}

/// part2.backup ("Leader backs up quickly over incorrect follower logs"). Values are a running
/// counter from 0, as in the lab (MIT uses random values).
fn backup(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        let mut value: i64 = 0;
        let mut next = || {
            value += 1;
            cmd(value - 1)
        };

        t.one(next(), servers, true).await?;

        // Put the leader and one follower in a partition.
        let leader1 = t.check_one_leader().await?;
        for k in 2..=4 {
            t.disconnect((leader1 + k) % servers);
        }

        // Submit lots of commands that won't commit.
        for _ in 0..50 {
            let _ = t.start(leader1, next());
        }
        t.sleep_ms(500).await;

        t.disconnect(leader1);
        t.disconnect((leader1 + 1) % servers);

        // Allow the other partition to recover; lots of successful commands to it.
        for k in 2..=4 {
            t.connect((leader1 + k) % servers);
        }
        for _ in 0..50 {
            t.one(next(), 3, true).await?;
        }

        // Now another partitioned leader and one follower.
        let leader2 = t.check_one_leader().await?;
        let mut other = (leader1 + 2) % servers;
        if other == leader2 {
            other = (leader2 + 1) % servers;
        }
        t.disconnect(other);

        // Lots more commands that won't commit.
        for _ in 0..50 {
            let _ = t.start(leader2, next());
        }
        t.sleep_ms(500).await;

        // Bring the original leader back to life; lots of successful commands to its group.
        for s in 0..servers {
            t.disconnect(s);
        }
        t.connect(leader1);
        t.connect((leader1 + 1) % servers);
        t.connect(other);
        for _ in 0..50 {
            t.one(next(), 3, true).await?;
        }

        // Now everyone.
        for s in 0..servers {
            t.connect(s);
        }
        t.one(next(), servers, true).await?;
        Ok(())
    })
}

/// part2.rpc_count ("RPC counts aren't too high"). Counts are call attempts summed over every
/// node's clients (`rpc_count(-1)`). In the lab the submitted `value` is not reset between
/// tries, so a retry after a partial try would fail the "value at `index + i` is `i`" check;
/// here every try submits 1..=11 again, as intended.
fn rpc_count(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        const ITERS: u64 = 10;
        t.check_one_leader().await?;
        let total1 = t.rpc_total();
        ensure!(
            (1..=30).contains(&total1),
            "too many or few RPCs ({total1}) to elect initial leader"
        );

        let mut total2 = None;
        for tries in 0..5 {
            if tries > 0 {
                t.sleep_ms(3000).await; // Give the solution some time to settle.
            }
            let leader = t.check_one_leader().await?;
            let total1 = t.rpc_total();
            let Some((index, term)) = t.start(leader, cmd(1024)) else {
                continue;
            };
            if let Some(total) = count_one_try(&t, leader, index, term, ITERS).await? {
                ensure!(
                    total - total1 <= (ITERS + 1 + 3) * 3,
                    "too many RPCs ({}) for {ITERS} entries",
                    total - total1
                );
                total2 = Some(total);
                break;
            }
        }
        let Some(total2) = total2 else {
            bail!("term changed too often");
        };

        t.sleep_ms(1000).await;
        let total3 = t.rpc_total();
        ensure!(
            total3 - total2 <= 3 * 20,
            "too many RPCs ({}) for 1 second of idleness",
            total3 - total2
        );
        Ok(())
    })
}

/// One try of `rpc_count` after `new_command(1024)` was accepted at `index` in `term`: 11 more
/// commands, 10 waits. The call-attempt total at the end, or `None` if the term moved on.
async fn count_one_try(
    t: &Tester,
    leader: usize,
    index: u64,
    term: u64,
    iters: u64,
) -> TestResult<Option<u64>> {
    for i in 1..=iters + 1 {
        let Some((index1, term1)) = t.start(leader, cmd(i as i64)) else {
            return Ok(None);
        };
        if term1 != term {
            return Ok(None);
        }
        ensure!(
            index + i == index1,
            "wrong commit index {index1}, expected {}",
            index + i
        );
    }
    for i in 1..=iters {
        let Some(value) = t.wait(index + i, t.servers(), Some(term)).await? else {
            return Ok(None);
        };
        ensure!(
            value == cmd(i as i64),
            "wrong value {value} committed for index {}; expected {i}",
            index + i
        );
    }
    let moved = (0..t.servers()).any(|s| t.get_state(s).is_some_and(|(at, _)| at != term));
    if moved {
        return Ok(None);
    }
    Ok(Some(t.rpc_total()))
}
