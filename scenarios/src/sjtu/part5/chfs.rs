//! SJTU 2022 part 5: ChFS over the replicated extent store (`chfs_basic`, `chfs_persist`).

use sim::Scenario;

/// The filesystem scenarios, in the lab's order.
pub const SCENARIOS: &[Scenario] = &[];
