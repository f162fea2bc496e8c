//! SJTU CSE lab 3 part 1.

use sim::Scenario;

/// The part-1 scenarios, in the lab's order.
pub const SCENARIOS: &[Scenario] = &[];
