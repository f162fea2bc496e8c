//! Virtual time and per-node tick clocks.
//!
//! Time in a run is a `u64` count of microseconds since the run started ([`SimTime`]); nothing in
//! the simulator reads a real clock. Each node has a [`NodeClock`]: a tick interval (the run's
//! `tick_us`, optionally skewed per node) and a phase, so nodes do not tick in lockstep.

use crate::rng::SimRng;
use serde::Serialize;
use std::fmt;

/// Microseconds in a millisecond.
pub const US_PER_MS: u64 = 1_000;
/// Microseconds in a second.
pub const US_PER_S: u64 = 1_000_000;

/// A point in virtual time: microseconds since the run started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SimTime(pub u64);

impl SimTime {
    /// The start of a run.
    pub const ZERO: SimTime = SimTime(0);

    /// Microseconds since the start of the run.
    #[must_use]
    pub fn as_us(self) -> u64 {
        self.0
    }

    /// This time plus `delay_us` (saturating: time never wraps).
    #[must_use]
    pub fn plus_us(self, delay_us: u64) -> SimTime {
        SimTime(self.0.saturating_add(delay_us))
    }

    /// Microseconds from `earlier` to `self` (0 if `earlier` is later).
    #[must_use]
    pub fn since_us(self, earlier: SimTime) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}ms", self.0 / US_PER_MS, self.0 % US_PER_MS)
    }
}

/// How one node's ticks are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeClock {
    /// Virtual microseconds between two ticks of this node (never 0).
    pub tick_interval_us: u64,
}

impl NodeClock {
    /// A clock ticking every `tick_us`, skewed by a per-mille amount drawn uniformly from
    /// `[-skew_per_mille_max, +skew_per_mille_max]` (capped at ±500 ‰).
    pub fn draw(rng: &mut SimRng, tick_us: u64, skew_per_mille_max: u32) -> NodeClock {
        let max = u64::from(skew_per_mille_max.min(500));
        let drawn = rng.between(0, 2 * max);
        // 1000 + skew, where skew = drawn - max lies in [-max, +max].
        let factor = 1000 + drawn - max;
        let tick_interval_us = (tick_us.saturating_mul(factor) / 1000).max(1);
        NodeClock { tick_interval_us }
    }

    /// The first tick of a freshly started node: a random phase within one interval, so nodes
    /// started together do not tick in lockstep.
    pub fn first_tick(&self, rng: &mut SimRng, now: SimTime) -> SimTime {
        now.plus_us(rng.between(1, self.tick_interval_us))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Purpose;

    #[test]
    fn skew_stays_within_bounds() {
        let mut rng = SimRng::new(1, Purpose::Timers);
        for _ in 0..1000 {
            let clock = NodeClock::draw(&mut rng, 10_000, 50);
            assert!((9_500..=10_500).contains(&clock.tick_interval_us));
            let first = clock.first_tick(&mut rng, SimTime(100));
            assert!(first > SimTime(100) && first <= SimTime(100 + clock.tick_interval_us));
        }
        let exact = NodeClock::draw(&mut rng, 10_000, 0);
        assert_eq!(exact.tick_interval_us, 10_000);
    }
}
