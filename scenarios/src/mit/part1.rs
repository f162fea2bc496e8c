//! MIT 6.5840 2A / 3A: leader election (`LAB_SCENARIOS.md` §2, "2A: election").

use sim::{Lab, Scenario, ScenarioFuture, Setup, Tester, ensure};

/// The part-1 scenarios, in the lab's order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "mit/part1/initial_election",
        lab: Lab::Mit,
        part: "part1",
        summary: "3 servers elect one leader, and the term stays put without failures",
        setup: Setup::mit(3),
        run: initial_election,
    },
    Scenario {
        name: "mit/part1/re_election",
        lab: Lab::Mit,
        part: "part1",
        summary: "a new leader after the leader is cut off; none without a majority",
        setup: Setup::mit(3),
        run: re_election,
    },
    Scenario {
        name: "mit/part1/many_elections",
        lab: Lab::Mit,
        part: "part1",
        summary: "7 servers keep electing a leader while 3 random ones are cut off, 9 times",
        setup: Setup::mit(7),
        run: many_elections,
    },
];

/// TestInitialElection2A. The lab only *warns* when the term changes during 2 s without
/// failures; here it is a failure, since a stable cluster on a reliable network that changes
/// term has a real bug (spurious elections).
fn initial_election(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        t.check_one_leader().await?;
        t.sleep_ms(50).await;
        let term1 = t.check_terms()?;
        ensure!(term1 >= 1, "term is {term1}, but should be at least 1");
        t.sleep_ms(2 * sim::tester::RAFT_ELECTION_TIMEOUT_MS).await;
        let term2 = t.check_terms()?;
        ensure!(
            term1 == term2,
            "term changed from {term1} to {term2} even though there were no failures"
        );
        t.check_one_leader().await?;
        Ok(())
    })
}

/// TestReElection2A.
fn re_election(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let servers = t.servers();
        let leader1 = t.check_one_leader().await?;

        // If the leader disconnects, a new one should be elected.
        t.disconnect(leader1);
        t.check_one_leader().await?;

        // If the old leader rejoins, that shouldn't disturb the new leader.
        t.connect(leader1);
        let leader2 = t.check_one_leader().await?;

        // If there's no quorum, no new leader should be elected.
        t.disconnect(leader2);
        t.disconnect((leader2 + 1) % servers);
        t.sleep_ms(2 * sim::tester::RAFT_ELECTION_TIMEOUT_MS).await;
        // Only the one connected server is checked, as in the lab.
        t.check_no_leader()?;

        // If a quorum arises, it should elect a leader.
        t.connect((leader2 + 1) % servers);
        t.check_one_leader().await?;

        // Re-join of the last node shouldn't prevent a leader from existing.
        t.connect(leader2);
        t.check_one_leader().await?;
        Ok(())
    })
}

/// TestManyElections2A.
fn many_elections(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        t.check_one_leader().await?;
        for _ in 1..10 {
            // Disconnect three nodes (repeats allowed, as in the lab).
            let picked = [t.random_server(), t.random_server(), t.random_server()];
            for &server in &picked {
                t.disconnect(server);
            }
            // Either the current leader should still be alive, or the remaining four should
            // elect a new one.
            t.check_one_leader().await?;
            for &server in &picked {
                t.connect(server);
            }
        }
        t.check_one_leader().await?;
        Ok(())
    })
}
