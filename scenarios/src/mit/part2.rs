//! MIT 6.5840 2B / 3B: log replication (`LAB_SCENARIOS.md` §2, "2B: log replication").

use sim::tester::RAFT_ELECTION_TIMEOUT_MS;
use sim::{Cmd, Lab, Scenario, ScenarioFuture, Setup, TestResult, Tester, bail, cmd, ensure};

/// The part-2 scenarios, in the lab's order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "mit/part2/basic_agree",
        lab: Lab::Mit,
        part: "part2",
        summary: "3 servers agree on commands at indices 1, 2, 3; nothing commits before Start",
        setup: Setup::mit(3),
        run: basic_agree,
    },
    Scenario {
        name: "mit/part2/rpc_bytes",
        lab: Lab::Mit,
        part: "part2",
        summary: "ten 5000-byte commands cost at most 3 × 50 000 + 50 000 RPC bytes",
        setup: Setup::mit(3),
        run: rpc_bytes,
    },
    Scenario {
        name: "mit/part2/follower_failure",
        lab: Lab::Mit,
        part: "part2",
        summary: "agreement with one follower cut off; nothing commits with both cut off",
        setup: Setup::mit(3),
        run: follower_failure,
    },
    Scenario {
        name: "mit/part2/leader_failure",
        lab: Lab::Mit,
        part: "part2",
        summary: "agreement after the leader is cut off; nothing commits after the next one is",
        setup: Setup::mit(3),
        run: leader_failure,
    },
    Scenario {
        name: "mit/part2/fail_agree",
        lab: Lab::Mit,
        part: "part2",
        summary: "agreement while a follower is cut off, and with all 3 after it rejoins",
        setup: Setup::mit(3),
        run: fail_agree,
    },
    Scenario {
        name: "mit/part2/fail_no_agree",
        lab: Lab::Mit,
        part: "part2",
        summary: "no commit with 3 of 5 followers cut off; agreement after they return",
        setup: Setup::mit(5),
        run: fail_no_agree,
    },
    Scenario {
        name: "mit/part2/concurrent_starts",
        lab: Lab::Mit,
        part: "part2",
        summary: "5 concurrent Starts on the leader all commit",
        setup: Setup::mit(3),
        run: concurrent_starts,
    },
    Scenario {
        name: "mit/part2/rejoin",
        lab: Lab::Mit,
        part: "part2",
        summary: "a partitioned leader's 3 uncommitted entries are overwritten when it rejoins",
        setup: Setup::mit(3),
        run: rejoin,
    },
    Scenario {
        name: "mit/part2/backup",
        lab: Lab::Mit,
        part: "part2",
        summary: "leaders back up quickly over 50 conflicting entries, twice, across partitions",
        setup: Setup::mit(5),
        run: backup,
    },
    Scenario {
        name: "mit/part2/count",
        lab: Lab::Mit,
        part: "part2",
        summary: "RPC counts: ≤ 30 to elect, ≤ 42 for 10 entries, ≤ 60 in 1 s of idleness",
        setup: Setup::mit(3),
        run: count,
    },
];

/// TestBasicAgree2B.
fn basic_agree(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        for index in 1..=3_u64 {
            let (committed, _) = t.n_committed(index)?;
            ensure!(committed == 0, "some have committed before Start()");

            let xindex = t
                .one(cmd(command_value(index * 100)), servers, false)
                .await?;
            ensure!(xindex == index, "got index {xindex} but expected {index}");
        }
        Ok(())
    })
}

/// TestRPCBytes2B: checks, by counting RPC bytes, that each command is sent to each peer about
/// once. The lab counts labgob bytes of requests and replies; here they are the postcard bytes
/// of our messages, which carry each command's bytes as they are, so the bound means the same.
fn rpc_bytes(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        t.one(cmd(99), servers, false).await?;
        let bytes0 = t.bytes_total();

        let iters = 10;
        let mut sent = 0;
        for index in 2..iters + 2 {
            let command = random_string(&t, 5000);
            sent += command.len() as u64;
            let xindex = t.one(command, servers, false).await?;
            ensure!(xindex == index, "got index {xindex} but expected {index}");
        }

        let got = t.bytes_total() - bytes0;
        let expected = servers as u64 * sent;
        ensure!(
            got <= expected + 50_000,
            "too many RPC bytes; got {got}, expected {expected}"
        );
        Ok(())
    })
}

/// TestFollowerFailure2B: progressive failure of followers.
fn follower_failure(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        t.one(cmd(101), servers, false).await?;

        // Disconnect one follower from the network.
        let leader1 = t.check_one_leader().await?;
        t.disconnect((leader1 + 1) % servers);

        // The leader and remaining follower should be able to agree despite the disconnected
        // follower.
        t.one(cmd(102), servers - 1, false).await?;
        t.sleep_election_timeout().await;
        t.one(cmd(103), servers - 1, false).await?;

        // Disconnect the remaining follower.
        let leader2 = t.check_one_leader().await?;
        t.disconnect((leader2 + 1) % servers);
        t.disconnect((leader2 + 2) % servers);

        // Submit a command.
        let Some((index, _)) = t.start(leader2, cmd(104)) else {
            bail!("leader rejected Start()");
        };
        ensure!(index == 4, "expected index 4, got {index}");

        t.sleep_ms(2 * RAFT_ELECTION_TIMEOUT_MS).await;

        // Check that command 104 did not commit.
        let (committed, _) = t.n_committed(index)?;
        ensure!(committed == 0, "{committed} committed but no majority");
        Ok(())
    })
}

/// TestLeaderFailure2B: failure of leaders.
fn leader_failure(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        t.one(cmd(101), servers, false).await?;

        // Disconnect the first leader.
        let leader1 = t.check_one_leader().await?;
        t.disconnect(leader1);

        // The remaining followers should elect a new leader.
        t.one(cmd(102), servers - 1, false).await?;
        t.sleep_election_timeout().await;
        t.one(cmd(103), servers - 1, false).await?;

        // Disconnect the new leader.
        let leader2 = t.check_one_leader().await?;
        t.disconnect(leader2);

        // Submit a command to each server (whether each accepts does not matter).
        for server in 0..servers {
            let _ = t.start(server, cmd(104));
        }

        t.sleep_ms(2 * RAFT_ELECTION_TIMEOUT_MS).await;

        // Check that command 104 did not commit.
        let (committed, _) = t.n_committed(4)?;
        ensure!(committed == 0, "{committed} committed but no majority");
        Ok(())
    })
}

/// TestFailAgree2B: a follower participates after disconnect and re-connect.
fn fail_agree(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        t.one(cmd(101), servers, false).await?;

        // Disconnect one follower from the network.
        let leader = t.check_one_leader().await?;
        t.disconnect((leader + 1) % servers);

        // The leader and remaining follower should be able to agree despite the disconnected
        // follower.
        t.one(cmd(102), servers - 1, false).await?;
        t.one(cmd(103), servers - 1, false).await?;
        t.sleep_election_timeout().await;
        t.one(cmd(104), servers - 1, false).await?;
        t.one(cmd(105), servers - 1, false).await?;

        // Re-connect.
        t.connect((leader + 1) % servers);

        // The full set of servers should preserve previous agreements, and be able to agree on
        // new commands.
        t.one(cmd(106), servers, true).await?;
        t.sleep_election_timeout().await;
        t.one(cmd(107), servers, true).await?;
        Ok(())
    })
}

/// TestFailNoAgree2B: no agreement if too many followers disconnect.
fn fail_no_agree(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        t.one(cmd(10), servers, false).await?;

        // 3 of 5 followers disconnect.
        let leader = t.check_one_leader().await?;
        for offset in 1..=3 {
            t.disconnect((leader + offset) % servers);
        }

        let Some((index, _)) = t.start(leader, cmd(20)) else {
            bail!("leader rejected Start()");
        };
        ensure!(index == 2, "expected index 2, got {index}");

        t.sleep_ms(2 * RAFT_ELECTION_TIMEOUT_MS).await;

        let (committed, _) = t.n_committed(index)?;
        ensure!(committed == 0, "{committed} committed but no majority");

        // Repair.
        for offset in 1..=3 {
            t.connect((leader + offset) % servers);
        }

        // The disconnected majority may have chosen a leader from among their own ranks,
        // forgetting index 2.
        let leader2 = t.check_one_leader().await?;
        let Some((index2, _)) = t.start(leader2, cmd(30)) else {
            bail!("leader2 rejected Start()");
        };
        ensure!((2..=3).contains(&index2), "unexpected index {index2}");

        t.one(cmd(1000), servers, true).await?;
        Ok(())
    })
}

/// TestConcurrentStarts2B. The lab's five goroutines are five spawned clients; each calls
/// `Start` on the leader once, so they all run within one instant of virtual time, as
/// goroutines that do not block would.
fn concurrent_starts(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        for attempt in 0..5 {
            if attempt > 0 {
                // Give the solution some time to settle.
                t.sleep_ms(3000).await;
            }
            if concurrent_starts_try(&t).await? {
                return Ok(());
            }
        }
        bail!("term changed too often")
    })
}

/// One try of [`concurrent_starts`]: `Ok(false)` when the term moved on and the lab would try
/// again.
async fn concurrent_starts_try(t: &Tester) -> TestResult<bool> {
    let servers = t.servers();
    let iters = 5;
    let leader = t.check_one_leader().await?;
    let Some((_, term)) = t.start(leader, cmd(1)) else {
        // The leader moved on really quickly.
        return Ok(false);
    };

    let clients: Vec<_> = (0..iters)
        .map(|i| {
            let client = t.clone();
            t.spawn(async move {
                Ok(match client.start(leader, cmd(100 + i)) {
                    Some((index, term1)) if term1 == term => Some(index),
                    Some(_) | None => None,
                })
            })
        })
        .collect();
    let mut indices = Vec::new();
    for client in clients {
        if let Some(Some(index)) = client.await {
            indices.push(index);
        }
    }

    for server in 0..servers {
        if t.get_state(server).map(|(term, _)| term) != Some(term) {
            // The term changed: can't expect all Start()s to have succeeded.
            return Ok(false);
        }
    }

    let mut cmds = Vec::new();
    for index in indices {
        let Some(value) = t.wait(index, servers, Some(term)).await? else {
            // Peers have moved on to later terms, so we can't expect all Start()s to have
            // succeeded.
            return Ok(false);
        };
        let Some(ix) = value.as_int() else {
            bail!("value {value} is not an int");
        };
        cmds.push(ix);
    }

    for i in 0..iters {
        let x = 100 + i;
        ensure!(cmds.contains(&x), "cmd {x} missing in {cmds:?}");
    }
    Ok(true)
}

/// TestRejoin2B: rejoin of a partitioned leader.
fn rejoin(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        t.one(cmd(101), servers, true).await?;

        // Leader network failure.
        let leader1 = t.check_one_leader().await?;
        t.disconnect(leader1);

        // Make the old leader try to agree on some entries.
        for value in [102, 103, 104] {
            let _ = t.start(leader1, cmd(value));
        }

        // The new leader commits, also for index 2.
        t.one(cmd(103), 2, true).await?;

        // New leader network failure.
        let leader2 = t.check_one_leader().await?;
        t.disconnect(leader2);

        // Old leader connected again.
        t.connect(leader1);

        t.one(cmd(104), 2, true).await?;

        // All together now.
        t.connect(leader2);

        t.one(cmd(105), servers, true).await?;
        Ok(())
    })
}

/// TestBackup2B: the leader backs up quickly over incorrect follower logs.
fn backup(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        t.one(cmd(t.random_value()), servers, true).await?;

        // Put the leader and one follower in a partition.
        let leader1 = t.check_one_leader().await?;
        for offset in 2..=4 {
            t.disconnect((leader1 + offset) % servers);
        }

        // Submit lots of commands that won't commit.
        for _ in 0..50 {
            let _ = t.start(leader1, cmd(t.random_value()));
        }

        t.sleep_ms(RAFT_ELECTION_TIMEOUT_MS / 2).await;

        t.disconnect(leader1);
        t.disconnect((leader1 + 1) % servers);

        // Allow the other partition to recover.
        for offset in 2..=4 {
            t.connect((leader1 + offset) % servers);
        }

        // Lots of successful commands to the new group.
        for _ in 0..50 {
            t.one(cmd(t.random_value()), 3, true).await?;
        }

        // Now another partitioned leader and one follower.
        let leader2 = t.check_one_leader().await?;
        let mut other = (leader1 + 2) % servers;
        if leader2 == other {
            other = (leader2 + 1) % servers;
        }
        t.disconnect(other);

        // Lots more commands that won't commit.
        for _ in 0..50 {
            let _ = t.start(leader2, cmd(t.random_value()));
        }

        t.sleep_ms(RAFT_ELECTION_TIMEOUT_MS / 2).await;

        // Bring the original leader back to life.
        for server in 0..servers {
            t.disconnect(server);
        }
        t.connect(leader1);
        t.connect((leader1 + 1) % servers);
        t.connect(other);

        // Lots of successful commands to the new group.
        for _ in 0..50 {
            t.one(cmd(t.random_value()), 3, true).await?;
        }

        // Now everyone.
        for server in 0..servers {
            t.connect(server);
        }
        t.one(cmd(t.random_value()), servers, true).await?;
        Ok(())
    })
}

/// TestCount2B: RPC counts aren't too high. The counts are MIT's: requests delivered to each
/// server.
fn count(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        t.check_one_leader().await?;
        let total1 = rpcs(&t);
        ensure!(
            (1..=30).contains(&total1),
            "too many or few RPCs ({total1}) to elect initial leader"
        );

        let mut total2 = None;
        for attempt in 0..5 {
            if attempt > 0 {
                // Give the solution some time to settle.
                t.sleep_ms(3000).await;
            }
            total2 = count_try(&t).await?;
            if total2.is_some() {
                break;
            }
        }
        let Some(total2) = total2 else {
            bail!("term changed too often");
        };

        t.sleep_election_timeout().await;

        let total3 = rpcs(&t);
        ensure!(
            total3 - total2 <= 3 * 20,
            "too many RPCs ({}) for 1 second of idleness",
            total3 - total2
        );
        Ok(())
    })
}

/// One try of [`count`]: the RPC total after 10 agreements, or `None` when the term moved on and
/// the lab would try again.
async fn count_try(t: &Tester) -> TestResult<Option<u64>> {
    let servers = t.servers();
    let iters = 10;
    let leader = t.check_one_leader().await?;
    let total1 = rpcs(t);

    let Some((starti, term)) = t.start(leader, cmd(1)) else {
        // The leader moved on really quickly.
        return Ok(None);
    };
    let mut cmds = Vec::new();
    for i in 1..iters + 2 {
        let x = random_int31(t);
        cmds.push(x);
        let Some((index1, term1)) = t.start(leader, cmd(x)) else {
            // No longer the leader, so the term has changed.
            return Ok(None);
        };
        if term1 != term {
            // The term changed while starting.
            return Ok(None);
        }
        ensure!(starti + i == index1, "Start() failed");
    }

    // The first 10 of the 11 commands (the lab waits for 10).
    for (i, &expected) in (1..iters + 1).zip(&cmds) {
        match t.wait(starti + i, servers, Some(term)).await? {
            // The term changed: try again.
            None => return Ok(None),
            Some(value) if value.as_int() == Some(expected) => {}
            Some(value) => bail!(
                "wrong value {value} committed for index {}; expected {cmds:?}",
                starti + i
            ),
        }
    }

    let mut failed = false;
    for server in 0..servers {
        if t.get_state(server).map(|(term, _)| term) != Some(term) {
            // The term changed: can't expect low RPC counts.
            failed = true;
        }
    }
    let total2 = rpcs(t);
    if failed {
        return Ok(None);
    }

    ensure!(
        total2 - total1 <= (iters + 1 + 3) * 3,
        "too many RPCs ({}) for {iters} entries",
        total2 - total1
    );
    Ok(Some(total2))
}

/// The sum over servers of delivered incoming RPCs (TestCount2B's `rpcs()`).
fn rpcs(t: &Tester) -> u64 {
    (0..t.servers()).map(|server| t.rpc_count(server)).sum()
}

/// The lab's `rand.Int31()`: a non-negative 31-bit value.
fn random_int31(t: &Tester) -> i64 {
    i64::try_from(t.random_below(1 << 31)).unwrap_or(0)
}

/// An integer command value from an index-sized number.
fn command_value(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The lab's `randstring(n)`: `n` characters of URL-safe base64 (random bytes, encoded).
fn random_string(t: &Tester, n: usize) -> Cmd {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes: Vec<u8> = (0..n)
        .map(|_| ALPHABET[usize::try_from(t.random_below(64)).unwrap_or(0)])
        .collect();
    Cmd::bytes(bytes)
}
