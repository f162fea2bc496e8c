//! SJTU CSE lab 3 part 5: the 2021 key/value store and the 2022 ChFS filesystem.

use sim::Scenario;

/// The part-5 scenarios, in the lab's order.
pub const SCENARIOS: &[Scenario] = &[];
