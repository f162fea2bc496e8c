//! Every scenario, by name, in a stable order (lab, then part, then the lab's order).

use sim::Scenario;

/// Every scenario, in a stable order.
#[must_use]
pub fn all() -> Vec<Scenario> {
    let groups: &[&[Scenario]] = &[
        crate::mit::part1::SCENARIOS,
        crate::mit::part2::SCENARIOS,
        crate::mit::part3::SCENARIOS,
        crate::mit::part4::SCENARIOS,
        crate::mit::kv::SCENARIOS,
        crate::sjtu::part1::SCENARIOS,
        crate::sjtu::part2::SCENARIOS,
        crate::sjtu::part3::SCENARIOS,
        crate::sjtu::part4::SCENARIOS,
        crate::sjtu::part5::kv::SCENARIOS,
        crate::sjtu::part5::chfs::SCENARIOS,
        crate::swarm::SCENARIOS,
    ];
    groups
        .iter()
        .flat_map(|group| group.iter().copied())
        .collect()
}

/// The scenario named `name`, if any.
#[must_use]
pub fn find(name: &str) -> Option<Scenario> {
    all().into_iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_well_formed() {
        let scenarios = all();
        let mut names: Vec<&str> = scenarios.iter().map(|s| s.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate scenario names");
        for s in &scenarios {
            let parts: Vec<&str> = s.name.split('/').collect();
            assert_eq!(parts.len(), 3, "{} is not lab/part/name", s.name);
            assert_eq!(parts[0], s.lab.name(), "{}: lab mismatch", s.name);
            assert_eq!(parts[1], s.part, "{}: part mismatch", s.name);
            assert!(!s.summary.is_empty(), "{} has no summary", s.name);
        }
    }
}
