//! Scenarios used only by `sim bench` (not in the registry).

use sim::{Lab, Scenario, ScenarioFuture, Setup, Tester};

/// Five nodes on a reliable network, idle for 60 s of virtual time after electing a leader:
/// ticks and heartbeats only. Measures the simulator's cost per virtual second.
pub const IDLE_FIVE: Scenario = Scenario {
    name: "bench/idle/five_nodes",
    lab: Lab::Swarm,
    part: "idle",
    summary: "5 nodes idle with heartbeats for 60 s of virtual time",
    setup: Setup::mit(5),
    run: idle,
};

fn idle(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        t.check_one_leader().await?;
        t.sleep_ms(60_000).await;
        t.check_one_leader().await?;
        Ok(())
    })
}
