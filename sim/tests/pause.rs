//! Process pauses and clock skew set during a run.
//!
//! A paused process does nothing: no ticks, no deliveries, no proposals; the messages sent to
//! it wait and arrive once it resumes. A skewed clock ticks at its new rate from its next tick.

mod common;

use common::{SEEDS, run_traced, scenario};
use sim::trace::EventKind;
use sim::{ScenarioFuture, Setup, Tester, cmd, ensure};

/// The leader pauses for 3 s: the others elect a new leader meanwhile, the paused one stays in
/// its old term without stepping, refuses proposals, and steps down as soon as it resumes.
fn paused_leader(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let old = t.check_one_leader().await?;
        t.one(cmd(1), 3, true).await?;
        let (term, _) = t.get_state(old).unwrap_or_default();
        ensure!(t.pause(old, 3_000), "cannot pause a running server");
        ensure!(t.is_paused(old), "not paused");
        ensure!(
            t.start(old, cmd(2)).is_none(),
            "a paused leader accepted a proposal"
        );
        t.sleep_ms(2_500).await;
        let new = t.check_one_leader().await?;
        ensure!(
            new != old,
            "the paused leader is still the highest-term leader"
        );
        ensure!(
            t.get_state(old) == Some((term, true)),
            "the paused node changed"
        );
        t.one(cmd(3), 2, true).await?;
        t.sleep_ms(1_000).await;
        ensure!(!t.is_paused(old), "still paused after its pause ended");
        ensure!(
            !t.is_leader(old),
            "the old leader did not step down after resuming"
        );
        t.one(cmd(4), 3, true).await?;
        Ok(())
    })
}

#[test]
fn a_paused_leader_misses_its_term_and_steps_down_when_it_resumes() {
    let scenario = scenario("pause/leader", Setup::sjtu(3), paused_leader);
    for seed in SEEDS {
        let (_, records) = run_traced(&scenario, seed);
        let pause = records
            .iter()
            .find_map(|r| match (r.kind, r.node) {
                (EventKind::Pause { until_us }, Some(node)) => Some((r.at_us, until_us, node)),
                _ => None,
            })
            .expect("the pause is traced");
        let (from, until, node) = pause;
        let stepped = records.iter().any(|r| {
            r.node == Some(node)
                && r.at_us > from
                && r.at_us < until
                && matches!(r.kind, EventKind::Tick | EventKind::Deliver { .. })
        });
        assert!(
            !stepped,
            "seed {seed}: the paused node stepped during its pause"
        );
        let delivered_at_resume = records.iter().any(|r| {
            r.node == Some(node) && r.at_us == until && matches!(r.kind, EventKind::Deliver { .. })
        });
        assert!(
            delivered_at_resume,
            "seed {seed}: no message waited for the pause"
        );
    }
}

/// Skewing one node's clock to +500 ‰ makes it tick 1.5 times slower than its peers.
fn skewed(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        t.set_tick_skew(0, 500);
        t.set_tick_skew(1, -500);
        t.sleep_ms(10_000).await;
        Ok(())
    })
}

#[test]
fn a_skewed_clock_ticks_at_its_new_rate() {
    let scenario = scenario("pause/skew", Setup::sjtu(3), skewed);
    let (_, records) = run_traced(&scenario, 3);
    let ticks = |node: u32| {
        records
            .iter()
            .filter(|r| r.node == Some(node) && r.kind == EventKind::Tick)
            .count()
    };
    // 10 s of 10 ms ticks: 1000 at the base rate, 667 at +500 ‰, 2000 at -500 ‰.
    assert!(
        (660..=670).contains(&ticks(0)),
        "slow node ticked {}",
        ticks(0)
    );
    assert!(
        (1990..=2010).contains(&ticks(1)),
        "fast node ticked {}",
        ticks(1)
    );
    assert!(
        (990..=1010).contains(&ticks(2)),
        "exact node ticked {}",
        ticks(2)
    );
}
