//! The liveness phase: after the faults, the cluster must recover on its own.
//!
//! The network is healed (reliable, no cuts, no extra reordering), pauses end, armed crashes are
//! disarmed, and crashed nodes restart (every one, or only those of a random quorum). Then,
//! within the budget: new commands must commit on every live server, one after the other, and
//! every live server must converge: one leader that all others follow in the same term, equal
//! commit indices at the end of equal logs, and equal applied states. Any shortfall is a
//! liveness failure (exit code 4), distinct from a safety violation.

use super::exec::{Faults, leader, set_network};
use super::schedule::{Liveness, RELIABLE, Restart};
use sim::{SimTime, TestError, TestResult, Tester, US_PER_MS};

/// Values of the liveness phase's commands: negative, so they never equal a workload value.
const COMMAND_BASE: i64 = -1_000_000;

/// Heals everything, then checks that the cluster elects a leader, commits `liveness.commands`
/// new commands and converges, within `liveness.budget_ms`.
pub(crate) async fn check(t: &Tester, liveness: &Liveness, faults: &mut Faults) -> TestResult {
    heal(t, &liveness.restart, faults);
    let deadline = t
        .now()
        .plus_us(liveness.budget_ms.saturating_mul(US_PER_MS));
    let live: Vec<usize> = (0..t.servers()).filter(|&s| t.is_up(s)).collect();
    for k in 0..liveness.commands {
        let value = COMMAND_BASE - i64::from(k);
        commit(t, &live, value, deadline, liveness.budget_ms).await?;
    }
    converge(t, &live, deadline, liveness.budget_ms).await?;
    if let Some(canary) = faults.canary.take() {
        // The canary must have fired (and failed the run) by now; wait for it if not.
        canary.await;
    }
    Ok(())
}

fn heal(t: &Tester, restart: &Restart, faults: &mut Faults) {
    set_network(t, &RELIABLE);
    faults.clear(t);
    let must_run: Vec<usize> = match restart {
        Restart::All => (0..t.servers()).collect(),
        Restart::Quorum { nodes } => nodes.iter().map(|&n| n as usize).collect(),
    };
    for server in 0..t.servers() {
        t.disarm_crash(server);
        t.resume(server);
        if must_run.contains(&server) && !t.is_up(server) {
            t.restart(server);
        }
    }
}

/// Proposes `value` to the leader until every live server has applied it.
async fn commit(
    t: &Tester,
    live: &[usize],
    value: i64,
    deadline: SimTime,
    budget_ms: u64,
) -> TestResult {
    loop {
        if let Some(index) = propose_to_leader(t, value) {
            // Wait up to 2 s for it to reach everyone; a new leader may have dropped it.
            let give_up = t.now().plus_us(2_000 * US_PER_MS).min(deadline);
            while t.now() < give_up {
                if applied_everywhere(t, live, index, value)? {
                    return Ok(());
                }
                t.sleep_ms(10).await;
            }
        }
        if t.now() >= deadline {
            return Err(TestError::liveness(format!(
                "liveness phase: command {value} not applied by every live server {live:?} \
                 within {budget_ms} ms after healing; {}",
                describe(t, live)
            )));
        }
        t.sleep_ms(10).await;
    }
}

fn propose_to_leader(t: &Tester, value: i64) -> Option<u64> {
    let leader = leader(t)?;
    t.start(leader, value).map(|(index, _)| index)
}

/// Whether every live server has applied `index`, and it holds `value` there. An index that
/// holds another value was overwritten before committing: `Ok(false)`, propose again.
fn applied_everywhere(t: &Tester, live: &[usize], index: u64, value: i64) -> TestResult<bool> {
    let all = live.iter().all(|&s| {
        t.applied_digest(s)
            .is_some_and(|(applied, _)| applied >= index)
    });
    if !all {
        return Ok(false);
    }
    let (_, held) = t.n_committed(index)?;
    Ok(held.and_then(|c| c.as_int()) == Some(value))
}

/// Waits until the live servers agree on everything (see [`agreement`]).
async fn converge(t: &Tester, live: &[usize], deadline: SimTime, budget_ms: u64) -> TestResult {
    loop {
        let Err(problem) = agreement(t, live) else {
            return Ok(());
        };
        if t.now() >= deadline {
            return Err(TestError::liveness(format!(
                "liveness phase: the live servers {live:?} did not converge within {budget_ms} \
                 ms after healing: {problem}; {}",
                describe(t, live)
            )));
        }
        t.sleep_ms(10).await;
    }
}

/// One server's view, for comparing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct View {
    term: u64,
    leads: bool,
    leader: Option<u32>,
    commit: u64,
    last_index: u64,
    last_term: u64,
    applied: Option<(u64, u64)>,
}

fn view(t: &Tester, server: usize) -> Option<View> {
    let applied = t.applied_digest(server);
    t.with_node(server, |node| View {
        term: node.term().0,
        leads: node.role() == raft::Role::Leader,
        leader: node.leader().map(|l| l.0),
        commit: node.commit_index().0,
        last_index: node.log().last_index().0,
        last_term: node.log().last_term().0,
        applied,
    })
}

/// `Ok` when the live servers have one leader that every other follows in the same term, the
/// same log end and commit index (the commit at the end of the log), and the same applied
/// state, up to the commit index.
fn agreement(t: &Tester, live: &[usize]) -> Result<(), String> {
    let views: Vec<(usize, View)> = live
        .iter()
        .map(|&s| {
            view(t, s)
                .map(|v| (s, v))
                .ok_or(format!("server {s} is down"))
        })
        .collect::<Result<_, _>>()?;
    let leaders: Vec<usize> = views
        .iter()
        .filter(|(_, v)| v.leads)
        .map(|(s, _)| *s)
        .collect();
    let [leader] = leaders[..] else {
        return Err(format!("{} leaders {leaders:?}", leaders.len()));
    };
    let (_, first) = views[0];
    for (server, v) in &views {
        if v.term != first.term {
            return Err(format!(
                "server {server} is in term {}, not {}",
                v.term, first.term
            ));
        }
        if !v.leads && v.leader != u32::try_from(leader).ok() {
            return Err(format!(
                "server {server} follows {:?}, not {leader}",
                v.leader
            ));
        }
        let same_log = (v.commit, v.last_index, v.last_term)
            == (first.commit, first.last_index, first.last_term);
        if !same_log || v.commit != v.last_index {
            return Err(format!("server {server}'s log or commit index differs"));
        }
        match v.applied {
            Some((applied, _)) if applied == v.commit && v.applied == first.applied => {}
            _ => return Err(format!("server {server}'s applied state differs")),
        }
    }
    Ok(())
}

/// Every live server's term, role, commit, log end and applied index, for failure messages.
fn describe(t: &Tester, live: &[usize]) -> String {
    let parts: Vec<String> = live
        .iter()
        .map(|&s| match view(t, s) {
            Some(v) => format!(
                "s{s}: term {} {} commit {} log end {}@t{} applied {}",
                v.term,
                if v.leads { "leader" } else { "follower" },
                v.commit,
                v.last_index,
                v.last_term,
                v.applied.map_or(0, |(applied, _)| applied)
            ),
            None => format!("s{s}: down"),
        })
        .collect();
    parts.join("; ")
}
