//! SJTU CSE lab 3 part 2.

use sim::Scenario;

/// The part-2 scenarios, in the lab's order.
pub const SCENARIOS: &[Scenario] = &[];
