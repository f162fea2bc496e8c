//! Arbitrary bytes as a schedule: the decoder behind the coverage-guided fuzz target.
//!
//! A coverage-guided fuzzer (`cargo fuzz`, see `fuzz/`) mutates byte strings; this turns any byte
//! string into a valid [`Schedule`] for a cluster of a given size, so the fuzzer explores fault
//! schedules rather than parse errors. The decoding is total (every input decodes, none panics)
//! and bounded ([`ACTIONS_MAX`] actions, a fault phase of at most [`FAULT_PHASE_MS_MAX`]). Each
//! action takes one opcode byte and a few argument bytes; a missing byte reads as 0.

use super::params::NetworkFaults;
use super::schedule::{Action, Cut, Liveness, Restart, Schedule, Timed};
use sim::CrashPoint;

/// The most actions decoded from one input.
pub const ACTIONS_MAX: usize = 256;

/// The longest fault phase a decoded schedule has, in milliseconds.
pub const FAULT_PHASE_MS_MAX: u64 = 20_000;

/// Reads bytes, yielding 0 once they run out.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn u8(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&first, rest)) => {
                self.bytes = rest;
                first
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// A node of `0..nodes`.
    fn node(&mut self, nodes: u32) -> u32 {
        u32::from(self.u8()) % nodes.max(1)
    }

    /// Milliseconds in `0..=max` from two bytes.
    fn ms(&mut self, max: u64) -> u64 {
        u64::from(self.u16()) % (max + 1)
    }

    /// A per-mille chance from one byte (0..=1000, coarse).
    fn per_mille(&mut self) -> u32 {
        u32::from(self.u8()) * 1000 / 255
    }
}

/// Decodes `bytes` into a schedule for `nodes` nodes. Total and bounded: any input gives a
/// schedule that passes [`Schedule::validate`] for `nodes`.
#[must_use]
pub fn schedule_from_bytes(nodes: u32, bytes: &[u8]) -> Schedule {
    let nodes = nodes.max(1);
    let mut reader = Reader { bytes };
    let fault_phase_ms = 1_000 + reader.ms(FAULT_PHASE_MS_MAX - 1_000);
    let restart = if reader.u8().is_multiple_of(4) {
        let first = reader.node(nodes);
        let majority = nodes / 2 + 1;
        let mut quorum: Vec<u32> = (0..majority).map(|k| (first + k) % nodes).collect();
        quorum.sort_unstable();
        Restart::Quorum { nodes: quorum }
    } else {
        Restart::All
    };
    let mut events = Vec::new();
    let mut at_ms = 0;
    let mut value = 0;
    while !reader.is_empty() && events.len() < ACTIONS_MAX {
        at_ms = (at_ms + u64::from(reader.u8()) * 4).min(fault_phase_ms - 1);
        value += 1;
        let action = action(&mut reader, nodes, value);
        events.push(Timed { at_ms, action });
    }
    Schedule {
        nodes,
        fault_phase_ms,
        events,
        liveness: Liveness {
            restart,
            budget_ms: 20 * 600,
            commands: 3,
        },
    }
}

fn action(reader: &mut Reader<'_>, nodes: u32, value: i64) -> Action {
    match reader.u8() % 9 {
        0 => Action::Network(NetworkFaults {
            drop_per_mille: reader.per_mille() / 2,
            dup_per_mille: reader.per_mille() / 2,
            delay_ms_min: 0,
            delay_ms_max: u64::from(reader.u8()),
            reorder_per_mille: reader.per_mille() / 2,
            reorder_ms_max: reader.ms(2_000),
        }),
        1 => {
            let cut = match reader.u8() % 4 {
                0 => Cut::Isolate {
                    node: reader.node(nodes),
                },
                1 => Cut::Split {
                    side: group(reader, nodes),
                },
                2 => Cut::OneWay {
                    from: group(reader, nodes),
                },
                _ => Cut::IsolateLeader,
            };
            Action::Partition {
                cut,
                heal_after_ms: reader.ms(5_000),
            }
        }
        2 => {
            let node = reader.node(nodes);
            let point = match reader.u8() % 5 {
                4 => CrashPoint::BetweenSteps,
                after_outputs => CrashPoint::MidStep {
                    after_outputs: u32::from(after_outputs),
                },
            };
            let outage = reader.ms(10_000);
            Action::Crash {
                node,
                point,
                restart_after_ms: (outage != 0).then_some(outage),
            }
        }
        3 => Action::Pause {
            node: reader.node(nodes),
            for_ms: reader.ms(2_000),
        },
        4 => Action::Skew {
            node: reader.node(nodes),
            per_mille: i32::from(reader.u8()) * 2 - 255,
        },
        5 => Action::Snapshot {
            node: reader.node(nodes),
        },
        _ => Action::Propose {
            client: 0,
            value,
            first_server: reader.node(nodes),
        },
    }
}

/// A proper, non-empty subset of the nodes, from a bit mask byte.
fn group(reader: &mut Reader<'_>, nodes: u32) -> Vec<u32> {
    let mask = reader.u8();
    let mut side: Vec<u32> = (0..nodes.min(8)).filter(|n| mask & (1 << n) != 0).collect();
    if side.is_empty() || side.len() as u32 >= nodes {
        side = vec![u32::from(mask) % nodes];
    }
    side
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic byte generator (xorshift) for the tests.
    fn bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn any_bytes_decode_to_a_valid_bounded_schedule() {
        for nodes in [1, 3, 5, 7] {
            for seed in 0..300 {
                let len = (seed as usize * 7) % 3000;
                let schedule = schedule_from_bytes(nodes, &bytes(seed, len));
                schedule
                    .validate(nodes)
                    .expect("decoded schedules are valid");
                assert!(schedule.events.len() <= ACTIONS_MAX);
                assert!(schedule.fault_phase_ms <= FAULT_PHASE_MS_MAX);
                assert!(
                    schedule
                        .events
                        .iter()
                        .all(|e| e.at_ms < schedule.fault_phase_ms)
                );
            }
        }
        assert!(schedule_from_bytes(3, &[]).events.is_empty());
        assert_eq!(
            schedule_from_bytes(3, &[0xff; 64]),
            schedule_from_bytes(3, &[0xff; 64])
        );
    }

    #[test]
    fn decoded_schedules_run() {
        let scenario = crate::registry::find("swarm/default/n3").expect("registered");
        for seed in 0..5 {
            let schedule = schedule_from_bytes(3, &bytes(seed, 200));
            let report =
                crate::swarm::run_schedule(&scenario, seed, &schedule, &sim::RunOptions::default());
            assert!(report.passed(), "seed {seed}: {:?}", report.failure);
        }
    }
}
