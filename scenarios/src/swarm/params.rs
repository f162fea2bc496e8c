//! What a swarm run injects, drawn from its seed: the fault mix as data.
//!
//! Swarm testing (Groce et al., 2012): instead of every fault at a moderate rate in every run,
//! each run switches whole fault kinds off at random and draws the rates of the others, so some
//! runs hammer one mechanism (only crashes, only duplication) that a uniform mix would dilute.
//! [`SwarmParams::draw`] is a pure function of the seed and the [`Mix`]; the schedule is then
//! generated from the parameters ([`super::schedule`]).

use serde::{Deserialize, Serialize};
use sim::rng::SimRng;

/// Which fault mix a swarm scenario draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mix {
    /// Every fault kind on or off at random.
    Default,
    /// Snapshots and crashes always on, with long outages, so restarted nodes catch up by
    /// snapshot install; the other kinds at random.
    Snapshots,
}

/// Per-message network faults while the network is faulty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkFaults {
    /// Chance of losing a message, per mille.
    pub drop_per_mille: u32,
    /// Chance of delivering a second copy, per mille.
    pub dup_per_mille: u32,
    /// Shortest delay, in milliseconds.
    pub delay_ms_min: u64,
    /// Longest delay, in milliseconds (uniform between min and max).
    pub delay_ms_max: u64,
    /// Chance of holding a message back further, per mille (reordering).
    pub reorder_per_mille: u32,
    /// The longest extra hold-back, in milliseconds.
    pub reorder_ms_max: u64,
}

impl NetworkFaults {
    /// True when this injects nothing beyond the base latency.
    #[must_use]
    pub fn is_reliable(&self) -> bool {
        self.drop_per_mille == 0
            && self.dup_per_mille == 0
            && self.delay_ms_max == 0
            && self.reorder_per_mille == 0
    }
}

/// Network faults come and go: faulty and reliable periods alternate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkParams {
    /// The faults of a faulty period.
    pub faults: NetworkFaults,
    /// Mean length of a faulty period, in milliseconds.
    pub faulty_ms_mean: u64,
    /// Mean length of a reliable period, in milliseconds.
    pub reliable_ms_mean: u64,
}

/// The kinds of partition a run may draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PartitionKind {
    /// One node cut off both ways.
    IsolateOne,
    /// A random minority cut off from the rest, both ways.
    Halves,
    /// One direction only: a random group cannot reach the others, who still reach it.
    Asymmetric,
    /// Whoever leads at that moment is cut off both ways.
    IsolateLeader,
}

/// Partitions: how often, which kinds, how long.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionParams {
    /// The kinds drawn from (never empty).
    pub kinds: Vec<PartitionKind>,
    /// Mean time between two partitions, in milliseconds.
    pub every_ms_mean: u64,
    /// The longest a partition lasts, in milliseconds.
    pub heal_after_ms_max: u64,
}

/// Crashes and restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashParams {
    /// Mean time between two crashes, in milliseconds.
    pub every_ms_mean: u64,
    /// The longest short outage, in milliseconds.
    pub outage_ms_max: u64,
    /// Chance that an outage is long (long enough that the others compact past the node's
    /// log, forcing a snapshot install when snapshots are on), per mille.
    pub long_outage_per_mille: u32,
    /// The shortest long outage, in milliseconds.
    pub long_outage_ms_min: u64,
    /// The longest long outage, in milliseconds.
    pub long_outage_ms_max: u64,
    /// Chance that a crash lands inside a step (between two of its outputs) rather than
    /// between steps, per mille.
    pub mid_step_per_mille: u32,
    /// Chance that a crashed node stays down until the liveness phase, per mille.
    pub stay_down_per_mille: u32,
}

/// Process pauses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseParams {
    /// Mean time between two pauses, in milliseconds.
    pub every_ms_mean: u64,
    /// The longest pause, in milliseconds.
    pub pause_ms_max: u64,
}

/// The client workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientParams {
    /// Concurrent clients, each proposing on its own.
    pub clients: u32,
    /// Mean time between two proposals of one client, in milliseconds.
    pub propose_every_ms_mean: u64,
}

/// Everything a swarm run injects. A `None` fault kind is switched off for the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmParams {
    /// The mix drawn from.
    pub mix: Mix,
    /// Cluster size.
    pub nodes: u32,
    /// How long faults are injected before the liveness phase, in milliseconds.
    pub fault_phase_ms: u64,
    /// Message drops, duplicates, delays and reordering.
    pub network: Option<NetworkParams>,
    /// Partitions.
    pub partitions: Option<PartitionParams>,
    /// Crashes and restarts.
    pub crashes: Option<CrashParams>,
    /// Process pauses.
    pub pauses: Option<PauseParams>,
    /// Per-node clock skew: each node's tick interval is off by up to this many per mille.
    pub tick_skew_per_mille_max: Option<u32>,
    /// Mean time between two snapshots (of a random node), in milliseconds.
    pub snapshot_every_ms_mean: Option<u64>,
    /// Proposals.
    pub clients: ClientParams,
    /// Whether the liveness phase restarts only a random quorum (otherwise every node).
    pub liveness_quorum_only: bool,
}

/// How long the liveness phase may take, in (longest, fully skewed) election timeouts.
pub const LIVENESS_ELECTION_TIMEOUTS: u64 = 20;

impl SwarmParams {
    /// The parameters of the run of `mix` on `nodes` nodes drawn from `rng` (the swarm's own
    /// stream of the run's seed).
    #[must_use]
    pub fn draw(mix: Mix, nodes: u32, rng: &mut SimRng) -> SwarmParams {
        let on = |rng: &mut SimRng| rng.chance(1, 2);
        let fault_phase_ms = rng.between(3_000, 20_000);
        let network = on(rng).then(|| draw_network(rng));
        let partitions = on(rng).then(|| draw_partitions(rng));
        let crashes = (mix == Mix::Snapshots || on(rng)).then(|| draw_crashes(mix, rng));
        let pauses = on(rng).then(|| PauseParams {
            every_ms_mean: rng.between(100, 3_000),
            pause_ms_max: rng.between(50, 2_000),
        });
        let tick_skew_per_mille_max = on(rng).then(|| rng_u32(rng, 1, 300));
        let snapshot_every_ms_mean =
            (mix == Mix::Snapshots || on(rng)).then(|| rng.between(100, 3_000));
        let clients = ClientParams {
            clients: rng_u32(rng, 1, 5),
            propose_every_ms_mean: rng.between(10, 300),
        };
        SwarmParams {
            mix,
            nodes,
            fault_phase_ms,
            network,
            partitions,
            crashes,
            pauses,
            tick_skew_per_mille_max,
            snapshot_every_ms_mean,
            clients,
            liveness_quorum_only: rng.chance(1, 4),
        }
    }

    /// The parameters as lines a person reads (`sim run swarm/... --seed S` prints them).
    #[must_use]
    pub fn describe(&self) -> Vec<String> {
        let off = || "off".to_string();
        let mut lines = vec![format!(
            "mix {:?}, {} nodes, fault phase {} ms, then liveness (restart {})",
            self.mix,
            self.nodes,
            self.fault_phase_ms,
            if self.liveness_quorum_only {
                "a random quorum"
            } else {
                "every node"
            }
        )];
        lines.push(format!(
            "network:    {}",
            self.network.map_or_else(off, |n| format!(
                "drop {}‰, dup {}‰, delay {}-{} ms, reorder {}‰ by up to {} ms; faulty ~{} ms, reliable ~{} ms",
                n.faults.drop_per_mille,
                n.faults.dup_per_mille,
                n.faults.delay_ms_min,
                n.faults.delay_ms_max,
                n.faults.reorder_per_mille,
                n.faults.reorder_ms_max,
                n.faulty_ms_mean,
                n.reliable_ms_mean
            ))
        ));
        lines.push(format!(
            "partitions: {}",
            self.partitions.as_ref().map_or_else(off, |p| format!(
                "{:?} every ~{} ms, healed within {} ms",
                p.kinds, p.every_ms_mean, p.heal_after_ms_max
            ))
        ));
        lines.push(format!(
            "crashes:    {}",
            self.crashes.map_or_else(off, |c| format!(
                "every ~{} ms, {}‰ mid-step; outages up to {} ms, {}‰ long ({}-{} ms), {}‰ stay down",
                c.every_ms_mean,
                c.mid_step_per_mille,
                c.outage_ms_max,
                c.long_outage_per_mille,
                c.long_outage_ms_min,
                c.long_outage_ms_max,
                c.stay_down_per_mille
            ))
        ));
        lines.push(format!(
            "pauses:     {}",
            self.pauses.map_or_else(off, |p| format!(
                "every ~{} ms, up to {} ms",
                p.every_ms_mean, p.pause_ms_max
            ))
        ));
        lines.push(format!(
            "skew:       {}",
            self.tick_skew_per_mille_max
                .map_or_else(off, |max| format!("up to ±{max}‰ per node"))
        ));
        lines.push(format!(
            "snapshots:  {}",
            self.snapshot_every_ms_mean
                .map_or_else(off, |mean| format!("every ~{mean} ms on a random node"))
        ));
        lines.push(format!(
            "clients:    {}, each proposing every ~{} ms",
            self.clients.clients, self.clients.propose_every_ms_mean
        ));
        lines
    }

    /// The names of the fault kinds switched on, for one-line summaries.
    #[must_use]
    pub fn kinds_on(&self) -> Vec<&'static str> {
        let mut on = Vec::new();
        if self.network.is_some() {
            on.push("network");
        }
        if self.partitions.is_some() {
            on.push("partitions");
        }
        if self.crashes.is_some() {
            on.push("crashes");
        }
        if self.pauses.is_some() {
            on.push("pauses");
        }
        if self.tick_skew_per_mille_max.is_some() {
            on.push("skew");
        }
        if self.snapshot_every_ms_mean.is_some() {
            on.push("snapshots");
        }
        on
    }
}

/// A draw in `[low, high]` as a `u32`.
pub(crate) fn rng_u32(rng: &mut SimRng, low: u32, high: u32) -> u32 {
    u32::try_from(rng.between(u64::from(low), u64::from(high))).unwrap_or(low)
}

/// A sub-knob: on with chance 1/2, then drawn in `[low, high]`; 0 when off.
fn knob(rng: &mut SimRng, low: u32, high: u32) -> u32 {
    if rng.chance(1, 2) {
        rng_u32(rng, low, high)
    } else {
        0
    }
}

fn draw_network(rng: &mut SimRng) -> NetworkParams {
    let drop_per_mille = knob(rng, 10, 400);
    let dup_per_mille = knob(rng, 10, 300);
    let (delay_ms_min, delay_ms_max) = if rng.chance(1, 2) {
        let min = rng.between(0, 10);
        let spread = rng.between(1, 200);
        (min, rng.between(min, min + spread))
    } else {
        (0, 0)
    };
    let reorder_per_mille = knob(rng, 10, 300);
    let reorder_ms_max = if reorder_per_mille > 0 {
        rng.between(10, 2_000)
    } else {
        0
    };
    let mut faults = NetworkFaults {
        drop_per_mille,
        dup_per_mille,
        delay_ms_min,
        delay_ms_max,
        reorder_per_mille,
        reorder_ms_max,
    };
    if faults.is_reliable() {
        // Network faults were switched on: at least drop something.
        faults.drop_per_mille = rng_u32(rng, 10, 400);
    }
    NetworkParams {
        faults,
        faulty_ms_mean: rng.between(200, 5_000),
        reliable_ms_mean: rng.between(0, 3_000),
    }
}

fn draw_partitions(rng: &mut SimRng) -> PartitionParams {
    let all = [
        PartitionKind::IsolateOne,
        PartitionKind::Halves,
        PartitionKind::Asymmetric,
        PartitionKind::IsolateLeader,
    ];
    let mut kinds: Vec<PartitionKind> = all.iter().copied().filter(|_| rng.chance(1, 2)).collect();
    if kinds.is_empty() {
        let pick = usize::try_from(rng.below(all.len() as u64)).unwrap_or(0);
        kinds.push(all[pick]);
    }
    PartitionParams {
        kinds,
        every_ms_mean: rng.between(100, 3_000),
        heal_after_ms_max: rng.between(100, 5_000),
    }
}

fn draw_crashes(mix: Mix, rng: &mut SimRng) -> CrashParams {
    let long_outage_per_mille = match mix {
        Mix::Snapshots => rng_u32(rng, 300, 1000),
        Mix::Default => knob(rng, 50, 500),
    };
    CrashParams {
        every_ms_mean: rng.between(100, 3_000),
        outage_ms_max: rng.between(10, 2_000),
        long_outage_per_mille,
        long_outage_ms_min: 3_000,
        long_outage_ms_max: rng.between(3_000, 10_000),
        mid_step_per_mille: rng_u32(rng, 250, 1000),
        stay_down_per_mille: knob(rng, 10, 200),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::rng::Purpose;

    #[test]
    fn draws_are_reproducible_and_switch_kinds_off() {
        let draw =
            |seed| SwarmParams::draw(Mix::Default, 5, &mut SimRng::new(seed, Purpose::Faults));
        assert_eq!(draw(7), draw(7));
        let params: Vec<SwarmParams> = (0..200).map(draw).collect();
        // Every kind is off in some runs and on in others (swarm testing).
        for kind in [
            "network",
            "partitions",
            "crashes",
            "pauses",
            "skew",
            "snapshots",
        ] {
            let on = params
                .iter()
                .filter(|p| p.kinds_on().contains(&kind))
                .count();
            assert!(on > 40 && on < 160, "{kind} on in {on} of 200 runs");
        }
        for p in &params {
            assert!((3_000..=20_000).contains(&p.fault_phase_ms));
            assert!((1..=5).contains(&p.clients.clients));
            if let Some(network) = p.network {
                assert!(!network.faults.is_reliable());
                assert!(network.faults.delay_ms_min <= network.faults.delay_ms_max);
            }
            if let Some(partitions) = &p.partitions {
                assert!(!partitions.kinds.is_empty());
            }
        }
    }

    #[test]
    fn the_snapshot_mix_always_crashes_and_snapshots() {
        for seed in 0..50 {
            let p = SwarmParams::draw(Mix::Snapshots, 5, &mut SimRng::new(seed, Purpose::Faults));
            assert!(p.snapshot_every_ms_mean.is_some());
            let crashes = p.crashes.expect("crashes are on");
            assert!(crashes.long_outage_per_mille >= 300);
        }
    }
}
