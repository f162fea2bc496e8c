//! The cap on message bytes in flight (`RunOptions::in_flight_bytes_max`): a run whose messages
//! in flight at once exceed it fails as a liveness failure (a message storm) instead of growing
//! without bound, while a run that sends far more than the cap in total, a little at a time,
//! passes (bytes leave the count when they are delivered).

mod common;

use common::{SEEDS, scenario};
use sim::{Cmd, FailureKind, RunOptions, ScenarioFuture, Setup, Tester, ensure};

/// The cap under test: far above one round of small messages, far below a burst of commands.
const CAP_BYTES: u64 = 64 << 10;

/// Commands in a burst, and each one's size: together twice the cap, sent to each follower.
const COMMANDS: u8 = 64;
const COMMAND_BYTES: usize = 1024;

fn command(i: u8) -> Cmd {
    Cmd::bytes(vec![i; COMMAND_BYTES])
}

fn capped() -> RunOptions {
    RunOptions {
        in_flight_bytes_max: CAP_BYTES,
        ..RunOptions::default()
    }
}

/// Commits the commands one at a time: more than the cap crosses the network in all, never more
/// than one command's worth at once.
fn one_at_a_time(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        for i in 0..COMMANDS {
            t.one(command(i), 3, false).await?;
        }
        let sent = t.bytes_total();
        ensure!(sent > 2 * CAP_BYTES, "only {sent} bytes sent in all");
        Ok(())
    })
}

/// Proposes every command at once on the leader: it replicates them all to both followers
/// without waiting for acknowledgements, twice the cap in flight.
fn burst(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let leader = t.check_one_leader().await?;
        let mut last = 0;
        for i in 0..COMMANDS {
            let Some((index, _)) = t.start(leader, command(i)) else {
                sim::bail!("leader {leader} refused command {i}");
            };
            last = index;
        }
        // Long enough to commit everything several times over when nothing stops the run.
        t.sleep_ms(2_000).await;
        let (count, _) = t.n_committed(last)?;
        ensure!(
            count == 3,
            "the burst's last command committed on {count} of 3"
        );
        Ok(())
    })
}

#[test]
fn a_burst_over_the_cap_fails_the_run_as_a_message_storm() {
    let scenario = scenario("sim/message_storm/burst", Setup::mit(3), burst);
    for seed in SEEDS {
        let report = sim::run(&scenario, seed, &capped());
        let failure = report
            .failure
            .expect("a burst over the cap must fail the run");
        assert_eq!(
            failure.kind,
            FailureKind::Liveness,
            "seed {seed}: {failure}"
        );
        assert!(
            failure.message.contains("message storm")
                && failure
                    .message
                    .contains(&format!("over the cap of {CAP_BYTES}")),
            "seed {seed}: {failure}"
        );
        // The same burst under the default cap passes: the cap, nothing else, failed the run.
        let report = sim::run(&scenario, seed, &RunOptions::default());
        assert!(report.passed(), "seed {seed}: {:?}", report.failure);
    }
}

#[test]
fn bytes_delivered_leave_the_count() {
    let scenario = scenario(
        "sim/message_storm/one_at_a_time",
        Setup::mit(3),
        one_at_a_time,
    );
    for seed in SEEDS {
        let report = sim::run(&scenario, seed, &capped());
        assert!(report.passed(), "seed {seed}: {:?}", report.failure);
    }
}
