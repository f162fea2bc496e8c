//! SJTU 2021 part 5: the replicated key/value store (`basic_kv`, `persist_kv`, `snapshot_kv`).

use sim::Scenario;

/// The key/value scenarios, in the lab's order.
pub const SCENARIOS: &[Scenario] = &[];
