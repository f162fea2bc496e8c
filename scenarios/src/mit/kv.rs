//! MIT 6.5840 key/value service tests (kvraft 3A/3B, 2024: 4A/4B).

use sim::Scenario;

/// The key/value scenarios, in the lab's order.
pub const SCENARIOS: &[Scenario] = &[];
