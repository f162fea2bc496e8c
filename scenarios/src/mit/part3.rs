//! MIT 6.5840 part 3.

use sim::Scenario;

/// The part-3 scenarios, in the lab's order.
pub const SCENARIOS: &[Scenario] = &[];
