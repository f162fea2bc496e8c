//! Executing a [`Schedule`]: the fault phase action by action, then the liveness phase.
//!
//! One task walks a timeline of steps ordered by `(time, sequence)`: the schedule's actions, and
//! the steps they schedule themselves (a partition's heal, a crash's restart). Links are cut by
//! counting: two overlapping partitions that cut the same link restore it only when both have
//! healed. Crashes own their outage: a crash of a node that is already down (or already armed
//! to crash mid-step) does nothing, and neither does its restart, so removing any action from a
//! schedule leaves a schedule that still makes sense.

use super::liveness;
use super::params::NetworkFaults;
use super::schedule::{Action, Cut, Schedule, Timed};
use sim::network::{BASE_LATENCY_US, LinkFaults};
use sim::{
    CrashPoint, JoinHandle, NetworkProfile, Reorder, TestError, TestResult, Tester, US_PER_MS,
};
use std::collections::BTreeMap;

/// One step of the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    /// The schedule's action at this position.
    Action(usize),
    /// Restores links a partition cut.
    Heal(Vec<(u32, u32)>),
    /// Restarts `node` if the crash at schedule position `owner` still owns its outage.
    Restart {
        /// The node.
        node: u32,
        /// The crash action's position.
        owner: usize,
    },
}

/// What the fault phase left behind, for the liveness phase to undo.
pub(crate) struct Faults {
    nodes: usize,
    /// `cuts[from * nodes + to]`: how many active partitions cut the link.
    cuts: Vec<u32>,
    /// Per node: the crash action whose outage the node is in (or is armed for).
    outage_owner: Vec<Option<usize>>,
    /// The canary's task, once started.
    pub(crate) canary: Option<JoinHandle<()>>,
}

impl Faults {
    fn new(nodes: usize) -> Faults {
        Faults {
            nodes,
            cuts: vec![0; nodes * nodes],
            outage_owner: vec![None; nodes],
            canary: None,
        }
    }

    /// Restores every cut link and forgets every outage (the liveness phase's heal).
    pub(crate) fn clear(&mut self, t: &Tester) {
        self.cuts.iter_mut().for_each(|c| *c = 0);
        t.heal_links();
        self.outage_owner.iter_mut().for_each(|o| *o = None);
    }

    fn cut(&mut self, t: &Tester, links: &[(u32, u32)]) {
        for &(from, to) in links {
            let (from, to) = (from as usize, to as usize);
            let count = &mut self.cuts[from * self.nodes + to];
            *count += 1;
            if *count == 1 {
                t.set_link(from, to, false);
            }
        }
    }

    fn heal(&mut self, t: &Tester, links: &[(u32, u32)]) {
        for &(from, to) in links {
            let (from, to) = (from as usize, to as usize);
            let count = &mut self.cuts[from * self.nodes + to];
            *count = count.saturating_sub(1);
            if *count == 0 {
                t.set_link(from, to, true);
            }
        }
    }
}

/// The most events a swarm run may take: a hundred times what the largest runs need. A run
/// past it is a storm (a core that never settles) and fails as a liveness failure, in bounded
/// time and memory.
pub const EVENTS_MAX: u64 = 4_000_000;

/// Runs `schedule` on the cluster: its fault phase, then its liveness phase.
pub async fn execute(t: Tester, schedule: Schedule) -> TestResult {
    let nodes = u32::try_from(t.servers()).unwrap_or(u32::MAX);
    schedule
        .validate(nodes)
        .map_err(|error| TestError::check(format!("bad schedule: {error}")))?;
    let _watchdog = t.spawn(watchdog(t.clone()));
    let mut faults = Faults::new(t.servers());
    let mut timeline: BTreeMap<(u64, u64), Step> = schedule
        .events
        .iter()
        .enumerate()
        .map(|(position, timed)| ((timed.at_ms, position as u64), Step::Action(position)))
        .collect();
    let mut next_seq = schedule.events.len() as u64;
    let end_ms = schedule.fault_phase_ms;
    while let Some(((at_ms, _), step)) = timeline.pop_first() {
        if at_ms >= end_ms {
            break;
        }
        sleep_until_ms(&t, at_ms).await;
        let follow_up = match step {
            Step::Action(position) => apply(&t, &schedule.events[position], position, &mut faults),
            Step::Heal(links) => {
                faults.heal(&t, &links);
                None
            }
            Step::Restart { node, owner } => {
                restart(&t, node, owner, &mut faults);
                None
            }
        };
        if let Some((after_ms, step)) = follow_up {
            timeline.insert((at_ms.saturating_add(after_ms), next_seq), step);
            next_seq += 1;
        }
    }
    sleep_until_ms(&t, end_ms).await;
    liveness::check(&t, &schedule.liveness, &mut faults).await
}

/// Fails the run once it has taken more than [`EVENTS_MAX`] events (checked every 50 ms of
/// virtual time).
async fn watchdog(t: Tester) -> TestResult {
    loop {
        t.sleep_ms(50).await;
        if t.events() > EVENTS_MAX {
            return Err(TestError::liveness(format!(
                "more than {EVENTS_MAX} events by {} ms: the cluster never settles",
                t.now_ms()
            )));
        }
    }
}

async fn sleep_until_ms(t: &Tester, at_ms: u64) {
    let target_us = at_ms.saturating_mul(US_PER_MS);
    let now_us = t.now().as_us();
    if target_us > now_us {
        t.sleep_us(target_us - now_us).await;
    }
}

/// Performs one action; returns the step it schedules for later, with its delay.
fn apply(t: &Tester, timed: &Timed, position: usize, faults: &mut Faults) -> Option<(u64, Step)> {
    match &timed.action {
        Action::Network(network) => {
            set_network(t, network);
            None
        }
        Action::Partition { cut, heal_after_ms } => {
            let links = links_of(t, cut);
            if links.is_empty() {
                return None;
            }
            faults.cut(t, &links);
            Some((*heal_after_ms, Step::Heal(links)))
        }
        Action::Crash {
            node,
            point,
            restart_after_ms,
        } => crash(t, *node, *point, *restart_after_ms, position, faults),
        Action::Pause { node, for_ms } => {
            t.pause(*node as usize, *for_ms);
            None
        }
        Action::Skew { node, per_mille } => {
            t.set_tick_skew(*node as usize, *per_mille);
            None
        }
        Action::Snapshot { node } => {
            t.save_snapshot(*node as usize);
            None
        }
        Action::Propose {
            value,
            first_server,
            ..
        } => {
            propose(t, *value, *first_server as usize);
            None
        }
        Action::Corrupt { node } => {
            if faults.canary.is_none() {
                faults.canary = Some(t.spawn(canary(t.clone(), *node as usize)));
            }
            None
        }
    }
}

/// Sets the network's profile and reordering from a schedule's faults.
pub(crate) fn set_network(t: &Tester, network: &NetworkFaults) {
    let (delay_us_min, delay_us_max) = if network.delay_ms_max == 0 {
        (BASE_LATENCY_US, BASE_LATENCY_US)
    } else {
        (
            network.delay_ms_min.saturating_mul(US_PER_MS),
            network.delay_ms_max.saturating_mul(US_PER_MS),
        )
    };
    let faults = LinkFaults {
        delay_us_min: delay_us_min.min(delay_us_max),
        delay_us_max,
        drop_per_mille: network.drop_per_mille,
        dup_per_mille: network.dup_per_mille,
    };
    t.set_network(NetworkProfile {
        name: "swarm",
        request: faults,
        reply: faults,
    });
    t.set_reorder(Reorder {
        per_mille: network.reorder_per_mille,
        delay_us_max: network.reorder_ms_max.saturating_mul(US_PER_MS),
    });
}

/// The directed links a partition cuts, resolved now (the leader is whoever leads now).
fn links_of(t: &Tester, cut: &Cut) -> Vec<(u32, u32)> {
    let nodes = u32::try_from(t.servers()).unwrap_or(0);
    let both_ways = |group: &[u32]| -> Vec<(u32, u32)> {
        let mut links = Vec::new();
        for &inside in group {
            for outside in (0..nodes).filter(|n| !group.contains(n)) {
                links.push((inside, outside));
                links.push((outside, inside));
            }
        }
        links
    };
    match cut {
        Cut::Isolate { node } => both_ways(&[*node]),
        Cut::Split { side } => both_ways(side),
        Cut::OneWay { from } => {
            let mut links = Vec::new();
            for &inside in from {
                for outside in (0..nodes).filter(|n| !from.contains(n)) {
                    links.push((inside, outside));
                }
            }
            links
        }
        Cut::IsolateLeader => match leader(t) {
            Some(leader) => both_ways(&[u32::try_from(leader).unwrap_or(0)]),
            None => Vec::new(),
        },
    }
}

/// The leader of the highest term among the running servers, if any.
pub(crate) fn leader(t: &Tester) -> Option<usize> {
    (0..t.servers())
        .filter_map(|s| t.get_state(s).map(|(term, leads)| (term, leads, s)))
        .filter(|(_, leads, _)| *leads)
        .max_by_key(|(term, _, _)| *term)
        .map(|(_, _, s)| s)
}

fn crash(
    t: &Tester,
    node: u32,
    point: CrashPoint,
    restart_after_ms: Option<u64>,
    position: usize,
    faults: &mut Faults,
) -> Option<(u64, Step)> {
    let server = node as usize;
    if faults.outage_owner[server].is_some() || !t.is_up(server) {
        return None;
    }
    if !t.crash_at(server, point) {
        return None;
    }
    faults.outage_owner[server] = Some(position);
    restart_after_ms.map(|ms| {
        let step = Step::Restart {
            node,
            owner: position,
        };
        (ms, step)
    })
}

fn restart(t: &Tester, node: u32, owner: usize, faults: &mut Faults) {
    let server = node as usize;
    if faults.outage_owner[server] != Some(owner) {
        return;
    }
    faults.outage_owner[server] = None;
    t.disarm_crash(server);
    if !t.is_up(server) {
        t.restart(server);
    }
}

/// Proposes `value` to the servers in turn from `first`, until one accepts.
fn propose(t: &Tester, value: i64, first: usize) -> Option<(u64, u64)> {
    let servers = t.servers();
    (0..servers).find_map(|k| t.start((first + k) % servers, value))
}

/// The canary's task: corrupts `first` (or the next server that can be corrupted) as soon as
/// one has a committed entry in its durable log, retrying every 10 ms.
async fn canary(t: Tester, first: usize) -> TestResult {
    let servers = t.servers();
    loop {
        for k in 0..servers {
            if t.canary_corrupt((first + k) % servers).is_ok() {
                return Ok(());
            }
        }
        t.sleep_ms(10).await;
    }
}
