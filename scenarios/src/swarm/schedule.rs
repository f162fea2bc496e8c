//! A swarm run as data: a list of timed actions, then a liveness phase.
//!
//! Every fault and every proposal of a swarm run is one [`Timed`] action in a [`Schedule`].
//! Actions that end by themselves carry their own end (a partition its `heal_after_ms`, a crash
//! its `restart_after_ms`, a pause its length), so removing any one action leaves a valid
//! schedule: that is what lets `sim shrink` cut a failing run down one action at a time. A
//! schedule is written and read as JSON (`sim shrink --out`, `sim replay --schedule`).

use super::params::{NetworkFaults, PartitionKind, SwarmParams, rng_u32};
use serde::{Deserialize, Serialize};
use sim::CrashPoint;
use sim::rng::SimRng;

/// Which links a partition cuts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cut {
    /// `node` cannot send to or receive from anyone.
    Isolate {
        /// The node cut off.
        node: u32,
    },
    /// `side` and the rest cannot reach each other.
    Split {
        /// One side (the other is every other node).
        side: Vec<u32>,
    },
    /// Messages from `from` to the rest are lost; the rest still reach `from`.
    OneWay {
        /// The group whose outgoing messages are lost.
        from: Vec<u32>,
    },
    /// Whoever leads when the partition starts is isolated (nothing happens without a leader).
    IsolateLeader,
}

/// One thing a swarm run does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// The network's faults from now on (until the next `Network` action).
    Network(NetworkFaults),
    /// Cuts links, and restores them after `heal_after_ms`.
    Partition {
        /// The links cut.
        cut: Cut,
        /// How long the cut lasts.
        heal_after_ms: u64,
    },
    /// Crashes `node` at `point`, and restarts it after `restart_after_ms` (never, before the
    /// liveness phase, when `None`). A crash of a node that is down or already crashing does
    /// nothing, and neither does its restart.
    Crash {
        /// The node.
        node: u32,
        /// Between steps, or inside the next persisting step.
        point: CrashPoint,
        /// The outage.
        restart_after_ms: Option<u64>,
    },
    /// Pauses `node`'s process for `for_ms`.
    Pause {
        /// The node.
        node: u32,
        /// How long.
        for_ms: u64,
    },
    /// Skews `node`'s clock by `per_mille` from now on.
    Skew {
        /// The node.
        node: u32,
        /// Slower when positive, faster when negative.
        per_mille: i32,
    },
    /// `node` snapshots its state machine and compacts its log.
    Snapshot {
        /// The node.
        node: u32,
    },
    /// Client `client` proposes `value`, trying servers from `first_server` on until one
    /// accepts (a stale leader may accept it too).
    Propose {
        /// The client (for reading schedules; clients propose independently).
        client: u32,
        /// The command's value (unique within the run).
        value: i64,
        /// The first server tried.
        first_server: u32,
    },
    /// The canary: corrupts the durable log of `node` (or, if it has no committed entry yet, of
    /// the next node that has one) and restarts it. Must always be caught.
    Corrupt {
        /// The node tried first.
        node: u32,
    },
}

/// An action and when it happens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timed {
    /// Virtual milliseconds since the start of the run.
    pub at_ms: u64,
    /// What happens.
    pub action: Action,
}

/// Which nodes the liveness phase brings back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Restart {
    /// Every crashed node.
    All,
    /// Only the crashed nodes among `nodes` (a majority); the others stay down.
    Quorum {
        /// The nodes that must be up.
        nodes: Vec<u32>,
    },
}

/// The liveness phase after the faults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Liveness {
    /// Which crashed nodes come back.
    pub restart: Restart,
    /// Virtual milliseconds within which there must be one leader, new commands must commit and
    /// every live replica must converge.
    pub budget_ms: u64,
    /// How many new commands must commit.
    pub commands: u32,
}

/// A whole swarm run as data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// Cluster size (must match the scenario's).
    pub nodes: u32,
    /// When the fault phase ends and the liveness phase starts, in milliseconds.
    pub fault_phase_ms: u64,
    /// The actions, by time (equal times keep their order).
    pub events: Vec<Timed>,
    /// The liveness phase.
    pub liveness: Liveness,
}

/// A schedule that does not fit its cluster.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The schedule is for another cluster size.
    #[error("the schedule is for {schedule} nodes, the scenario has {scenario}")]
    Nodes {
        /// The schedule's size.
        schedule: u32,
        /// The scenario's size.
        scenario: u32,
    },
    /// An action names a node the cluster does not have.
    #[error("event {event} names node {node}, but the cluster has nodes 0..{nodes}")]
    UnknownNode {
        /// The event's position.
        event: usize,
        /// The node named.
        node: u32,
        /// Cluster size.
        nodes: u32,
    },
    /// The events are not in time order.
    #[error("event {event} at {at_ms} ms comes before the previous event's time")]
    Unordered {
        /// The event's position.
        event: usize,
        /// Its time.
        at_ms: u64,
    },
    /// More events than a schedule may hold.
    #[error("the schedule has {events} events; at most {max} are allowed")]
    TooLong {
        /// Events in the schedule.
        events: usize,
        /// The limit, [`EVENTS_MAX`].
        max: usize,
    },
    /// The liveness phase's quorum is not a majority of distinct nodes.
    #[error("the liveness quorum {nodes:?} is not a majority of distinct nodes")]
    Quorum {
        /// The quorum given.
        nodes: Vec<u32>,
    },
}

/// The most events a schedule may hold (the executor's bound).
pub const EVENTS_MAX: usize = 100_000;

impl Schedule {
    /// Generates the schedule of a run from its parameters and the swarm's stream.
    #[must_use]
    pub fn generate(params: &SwarmParams, rng: &mut SimRng) -> Schedule {
        let mut events: Vec<Timed> = Vec::new();
        let end = params.fault_phase_ms;
        let nodes = params.nodes.max(1);
        if let Some(max) = params.tick_skew_per_mille_max {
            for node in 0..nodes {
                let drawn = rng.between(0, 2 * u64::from(max));
                let per_mille = i32::try_from(drawn).unwrap_or(0) - i32::try_from(max).unwrap_or(0);
                let action = Action::Skew { node, per_mille };
                events.push(Timed { at_ms: 0, action });
            }
        }
        if let Some(network) = params.network {
            network_periods(network, end, rng, &mut events);
        }
        if let Some(partitions) = &params.partitions {
            every(partitions.every_ms_mean, end, rng, &mut events, |rng| {
                let pick = usize::try_from(rng.below(partitions.kinds.len() as u64)).unwrap_or(0);
                let cut = draw_cut(partitions.kinds[pick], nodes, rng);
                let heal_after_ms = rng.between(50, partitions.heal_after_ms_max.max(50));
                Action::Partition { cut, heal_after_ms }
            });
        }
        if let Some(crashes) = params.crashes {
            every(crashes.every_ms_mean, end, rng, &mut events, |rng| {
                let node = rng_u32(rng, 0, nodes - 1);
                let point = if rng.chance_per_mille(crashes.mid_step_per_mille) {
                    let after_outputs = rng_u32(rng, 0, 3);
                    CrashPoint::MidStep { after_outputs }
                } else {
                    CrashPoint::BetweenSteps
                };
                let restart_after_ms = if rng.chance_per_mille(crashes.stay_down_per_mille) {
                    None
                } else if rng.chance_per_mille(crashes.long_outage_per_mille) {
                    Some(rng.between(crashes.long_outage_ms_min, crashes.long_outage_ms_max))
                } else {
                    Some(rng.between(1, crashes.outage_ms_max))
                };
                Action::Crash {
                    node,
                    point,
                    restart_after_ms,
                }
            });
        }
        if let Some(pauses) = params.pauses {
            every(pauses.every_ms_mean, end, rng, &mut events, |rng| {
                Action::Pause {
                    node: rng_u32(rng, 0, nodes - 1),
                    for_ms: rng.between(10, pauses.pause_ms_max.max(10)),
                }
            });
        }
        if let Some(mean) = params.snapshot_every_ms_mean {
            every(mean, end, rng, &mut events, |rng| Action::Snapshot {
                node: rng_u32(rng, 0, nodes - 1),
            });
        }
        for client in 0..params.clients.clients {
            let mut sequence: i64 = 0;
            let mean = params.clients.propose_every_ms_mean;
            every(mean, end, rng, &mut events, |rng| {
                sequence += 1;
                Action::Propose {
                    client,
                    value: (i64::from(client) + 1) * 1_000_000_000 + sequence,
                    first_server: rng_u32(rng, 0, nodes - 1),
                }
            });
        }
        events.sort_by_key(|timed| timed.at_ms);
        events.truncate(EVENTS_MAX);
        Schedule {
            nodes,
            fault_phase_ms: end,
            events,
            liveness: draw_liveness(params, rng),
        }
    }

    /// Checks that the schedule fits a cluster of `nodes` nodes.
    pub fn validate(&self, nodes: u32) -> Result<(), ScheduleError> {
        if self.nodes != nodes {
            return Err(ScheduleError::Nodes {
                schedule: self.nodes,
                scenario: nodes,
            });
        }
        if self.events.len() > EVENTS_MAX {
            return Err(ScheduleError::TooLong {
                events: self.events.len(),
                max: EVENTS_MAX,
            });
        }
        let mut previous = 0;
        for (event, timed) in self.events.iter().enumerate() {
            if timed.at_ms < previous {
                return Err(ScheduleError::Unordered {
                    event,
                    at_ms: timed.at_ms,
                });
            }
            previous = timed.at_ms;
            for node in timed.action.nodes() {
                if node >= nodes {
                    return Err(ScheduleError::UnknownNode { event, node, nodes });
                }
            }
        }
        if let Restart::Quorum { nodes: quorum } = &self.liveness.restart {
            let mut distinct = quorum.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let majority = distinct.len() == quorum.len()
                && distinct.len() as u64 > u64::from(nodes) / 2
                && distinct.iter().all(|&n| n < nodes);
            if !majority {
                return Err(ScheduleError::Quorum {
                    nodes: quorum.clone(),
                });
            }
        }
        Ok(())
    }

    /// The same schedule with the canary's corruption halfway through the fault phase.
    #[must_use]
    pub fn with_canary(mut self, node: u32) -> Schedule {
        let at_ms = self.fault_phase_ms / 2;
        let position = self.events.partition_point(|timed| timed.at_ms <= at_ms);
        let action = Action::Corrupt { node };
        self.events.insert(position, Timed { at_ms, action });
        self
    }

    /// How many events of each kind, for one-line summaries (`"3 crash, 120 propose"`).
    #[must_use]
    pub fn census(&self) -> String {
        let mut counts: Vec<(&'static str, usize)> = Vec::new();
        for timed in &self.events {
            let name = timed.action.name();
            match counts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, count)) => *count += 1,
                None => counts.push((name, 1)),
            }
        }
        counts.sort_unstable();
        let parts: Vec<String> = counts.iter().map(|(n, c)| format!("{c} {n}")).collect();
        if parts.is_empty() {
            "no events".to_string()
        } else {
            parts.join(", ")
        }
    }
}

impl Action {
    /// A short name of the action's kind.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Action::Network(_) => "network",
            Action::Partition { .. } => "partition",
            Action::Crash { .. } => "crash",
            Action::Pause { .. } => "pause",
            Action::Skew { .. } => "skew",
            Action::Snapshot { .. } => "snapshot",
            Action::Propose { .. } => "propose",
            Action::Corrupt { .. } => "corrupt",
        }
    }

    /// Every node the action names.
    #[must_use]
    pub fn nodes(&self) -> Vec<u32> {
        match self {
            Action::Network(_)
            | Action::Partition {
                cut: Cut::IsolateLeader,
                ..
            } => Vec::new(),
            Action::Partition {
                cut: Cut::Isolate { node },
                ..
            }
            | Action::Crash { node, .. }
            | Action::Pause { node, .. }
            | Action::Skew { node, .. }
            | Action::Snapshot { node }
            | Action::Corrupt { node } => vec![*node],
            Action::Partition {
                cut: Cut::Split { side: group } | Cut::OneWay { from: group },
                ..
            } => group.clone(),
            Action::Propose { first_server, .. } => vec![*first_server],
        }
    }
}

/// Pushes `make(rng)` at times spaced `U[1, 2 * mean]` apart, up to `end`.
fn every(
    mean_ms: u64,
    end_ms: u64,
    rng: &mut SimRng,
    events: &mut Vec<Timed>,
    mut make: impl FnMut(&mut SimRng) -> Action,
) {
    let mut at_ms = 0;
    loop {
        at_ms += rng.between(1, 2 * mean_ms.max(1));
        if at_ms >= end_ms || events.len() >= EVENTS_MAX {
            return;
        }
        let action = make(rng);
        events.push(Timed { at_ms, action });
    }
}

/// Alternating faulty and reliable periods, starting with either.
fn network_periods(
    network: super::params::NetworkParams,
    end_ms: u64,
    rng: &mut SimRng,
    events: &mut Vec<Timed>,
) {
    let mut faulty = rng.chance(1, 2);
    let mut at_ms = 0;
    while at_ms < end_ms {
        let (faults, mean) = if faulty {
            (network.faults, network.faulty_ms_mean)
        } else {
            (RELIABLE, network.reliable_ms_mean)
        };
        if faulty || at_ms > 0 {
            events.push(Timed {
                at_ms,
                action: Action::Network(faults),
            });
        }
        at_ms += rng.between(1, 2 * mean.max(1));
        faulty = !faulty;
    }
}

/// No network faults.
pub const RELIABLE: NetworkFaults = NetworkFaults {
    drop_per_mille: 0,
    dup_per_mille: 0,
    delay_ms_min: 0,
    delay_ms_max: 0,
    reorder_per_mille: 0,
    reorder_ms_max: 0,
};

fn draw_cut(kind: PartitionKind, nodes: u32, rng: &mut SimRng) -> Cut {
    match kind {
        PartitionKind::IsolateOne => Cut::Isolate {
            node: rng_u32(rng, 0, nodes - 1),
        },
        PartitionKind::Halves => Cut::Split {
            side: random_group(nodes, rng_u32(rng, 1, (nodes / 2).max(1)), rng),
        },
        PartitionKind::Asymmetric => Cut::OneWay {
            from: random_group(nodes, rng_u32(rng, 1, (nodes - 1).max(1)), rng),
        },
        PartitionKind::IsolateLeader => Cut::IsolateLeader,
    }
}

/// `size` distinct nodes out of `0..nodes`, sorted.
fn random_group(nodes: u32, size: u32, rng: &mut SimRng) -> Vec<u32> {
    let mut pool: Vec<u32> = (0..nodes).collect();
    let mut group = Vec::new();
    for _ in 0..size.min(nodes) {
        let pick = usize::try_from(rng.below(pool.len() as u64)).unwrap_or(0);
        group.push(pool.swap_remove(pick));
    }
    group.sort_unstable();
    group
}

fn draw_liveness(params: &SwarmParams, rng: &mut SimRng) -> Liveness {
    let restart = if params.liveness_quorum_only {
        let majority = params.nodes / 2 + 1;
        Restart::Quorum {
            nodes: random_group(params.nodes, majority, rng),
        }
    } else {
        Restart::All
    };
    // The longest election timeout: 2 * 30 ticks of 10 ms, slowed by the worst skew.
    let skew = u64::from(params.tick_skew_per_mille_max.unwrap_or(0));
    let election_timeout_ms = 600 * (1000 + skew) / 1000;
    Liveness {
        restart,
        budget_ms: super::params::LIVENESS_ELECTION_TIMEOUTS * election_timeout_ms,
        commands: 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::params::Mix;
    use sim::rng::Purpose;

    fn generated(seed: u64, nodes: u32) -> Schedule {
        let mut rng = SimRng::new(seed, Purpose::Faults);
        let params = SwarmParams::draw(Mix::Default, nodes, &mut rng);
        Schedule::generate(&params, &mut rng)
    }

    #[test]
    fn generated_schedules_are_valid_ordered_and_round_trip_through_json() {
        for seed in 0..100 {
            let nodes = [3, 5, 7][usize::try_from(seed % 3).unwrap_or(0)];
            let schedule = generated(seed, nodes);
            schedule
                .validate(nodes)
                .expect("a generated schedule is valid");
            assert!(
                schedule
                    .events
                    .iter()
                    .all(|e| e.at_ms < schedule.fault_phase_ms)
            );
            let json = serde_json::to_string(&schedule).expect("encodes");
            let back: Schedule = serde_json::from_str(&json).expect("decodes");
            assert_eq!(back, schedule);
        }
    }

    #[test]
    fn validation_rejects_what_does_not_fit() {
        let schedule = generated(3, 5);
        assert!(matches!(
            schedule.validate(3),
            Err(ScheduleError::Nodes { .. })
        ));
        let mut bad = schedule.clone();
        bad.events.push(Timed {
            at_ms: bad.fault_phase_ms,
            action: Action::Snapshot { node: 9 },
        });
        assert!(matches!(
            bad.validate(5),
            Err(ScheduleError::UnknownNode { node: 9, .. })
        ));
        let mut unordered = schedule.clone();
        unordered.events.insert(
            0,
            Timed {
                at_ms: u64::MAX,
                action: Action::Snapshot { node: 0 },
            },
        );
        if unordered.events.len() > 1 {
            assert!(matches!(
                unordered.validate(5),
                Err(ScheduleError::Unordered { .. })
            ));
        }
        let mut long = schedule.clone();
        let last = long.events.last().cloned().unwrap_or(Timed {
            at_ms: 0,
            action: Action::Snapshot { node: 0 },
        });
        long.events.resize(EVENTS_MAX + 1, last);
        assert!(matches!(
            long.validate(5),
            Err(ScheduleError::TooLong { .. })
        ));
        let mut quorum = schedule;
        quorum.liveness.restart = Restart::Quorum {
            nodes: vec![1, 1, 2],
        };
        assert!(matches!(
            quorum.validate(5),
            Err(ScheduleError::Quorum { .. })
        ));
    }

    #[test]
    fn the_canary_lands_halfway_in_order() {
        let schedule = generated(11, 3).with_canary(1);
        schedule.validate(3).expect("still valid");
        let corrupt: Vec<&Timed> = schedule
            .events
            .iter()
            .filter(|e| matches!(e.action, Action::Corrupt { node: 1 }))
            .collect();
        assert_eq!(corrupt.len(), 1);
        assert_eq!(corrupt[0].at_ms, schedule.fault_phase_ms / 2);
    }
}
