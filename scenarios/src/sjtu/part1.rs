//! SJTU CSE lab 3 part 1: leader election (`LAB_SCENARIOS.md` §4, "Part 1: election").

use sim::{Lab, Scenario, ScenarioFuture, Setup, Tester, ensure};

/// The part-1 scenarios, in the lab's order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "sjtu/part1/leader_election",
        lab: Lab::Sjtu,
        part: "part1",
        summary: "3 nodes elect exactly one leader, and every node keeps the same term for 2 s",
        setup: Setup::sjtu(3),
        run: leader_election,
    },
    Scenario {
        name: "sjtu/part1/re_election",
        lab: Lab::Sjtu,
        part: "part1",
        summary: "5 nodes elect a new leader after each of 3 leaders is disabled; none with 2 left",
        setup: Setup::sjtu(5),
        run: re_election,
    },
];

/// part1.leader_election ("Initial election"). As in the lab, a term change during the 2 s
/// without failures is a hard failure (MIT only warns).
fn leader_election(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        // 1. Exactly one leader.
        t.sleep_ms(300).await;
        t.check_one_leader().await?;

        // 2. Every node has the same term.
        t.sleep_ms(2000).await;
        let term1 = t.check_terms()?;

        // 3. The term does not change after a few seconds.
        t.sleep_ms(2000).await;
        let term2 = t.check_terms()?;
        ensure!(term1 == term2, "inconsistent term: {term1}, {term2}");
        t.check_one_leader().await?;
        Ok(())
    })
}

/// part1.re_election ("Election after network failure").
fn re_election(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        // 1. Exactly one leader.
        t.sleep_ms(300).await;
        let leader1 = t.check_one_leader().await?;

        // 2. Disable the leader: a new one is elected.
        t.disconnect(leader1);
        t.sleep_ms(1000).await;
        let leader2 = t.check_one_leader().await?;
        ensure!(
            leader1 != leader2,
            "node {leader2} is killed, which should not be the new leader!"
        );

        // 3. Disable the second leader.
        t.disconnect(leader2);
        t.sleep_ms(1000).await;
        let leader3 = t.check_one_leader().await?;
        ensure!(
            leader3 != leader1 && leader3 != leader2,
            "node {leader3} is killed, which should not be the new leader!"
        );

        // 4. Disable the third leader: 2 of 5 nodes left, no majority, no leader.
        t.disconnect(leader3);
        t.sleep_ms(1000).await;
        t.check_no_leader()?;

        // 5. Enable one node: 3 of 5, a leader again.
        t.connect(leader1);
        t.sleep_ms(1000).await;
        t.check_one_leader().await?;
        Ok(())
    })
}
