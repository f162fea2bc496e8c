//! Safety checkers run after every simulated event (being written).
