//! MIT 6.5840 part 4.

use sim::Scenario;

/// The part-4 scenarios, in the lab's order.
pub const SCENARIOS: &[Scenario] = &[];
