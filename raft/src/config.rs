//! A node's configuration: who it is, who its peers are, its timing and its limits.

use crate::types::NodeId;

/// Everything a node needs to start. Two nodes with equal configs, durable state and inputs
/// produce equal outputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node's id; must be one of `voters`.
    pub id: NodeId,
    /// Every voting member of the cluster, this node included.
    pub voters: Vec<NodeId>,
    /// The election timeout is drawn uniformly from `[election_ticks, 2 * election_ticks)`.
    pub election_ticks: u32,
    /// A leader sends heartbeats every `heartbeat_ticks` ticks; must be below `election_ticks`.
    pub heartbeat_ticks: u32,
    /// At most this many entries in one `AppendEntries`.
    pub max_entries_per_append: usize,
    /// At most this many command bytes in one `AppendEntries` (at least one entry is always sent,
    /// whatever its size, so a large command cannot stall replication).
    pub max_bytes_per_append: usize,
    /// At most this many `AppendEntries` carrying entries in flight to one follower.
    pub max_inflight_appends: usize,
    /// Seeds the node's own RNG (election timeouts). Give every node a different seed.
    pub seed: u64,
}

impl Config {
    /// A config with the defaults the simulator's lab profiles use: with a 10 ms tick, elections
    /// time out after 300–600 ms and heartbeats go out every 100 ms (the labs allow at most ten
    /// heartbeats a second and demand a new leader within five seconds).
    #[must_use]
    pub fn new(id: NodeId, voters: Vec<NodeId>, seed: u64) -> Config {
        Config {
            id,
            voters,
            election_ticks: 30,
            heartbeat_ticks: 10,
            max_entries_per_append: 256,
            max_bytes_per_append: 1 << 20,
            max_inflight_appends: 64,
            seed,
        }
    }

    /// Checks the config for values the protocol cannot work with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.voters.is_empty() {
            return Err(ConfigError::NoVoters);
        }
        if !self.voters.contains(&self.id) {
            return Err(ConfigError::NotAVoter(self.id));
        }
        let mut sorted = self.voters.clone();
        sorted.sort();
        if let Some(pair) = sorted.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(ConfigError::DuplicateVoter(pair[0]));
        }
        if self.heartbeat_ticks == 0 || self.heartbeat_ticks >= self.election_ticks {
            return Err(ConfigError::Timing {
                heartbeat_ticks: self.heartbeat_ticks,
                election_ticks: self.election_ticks,
            });
        }
        if self.election_ticks > u32::MAX / 2 {
            return Err(ConfigError::ElectionTicksTooLarge(self.election_ticks));
        }
        if self.max_entries_per_append == 0 || self.max_inflight_appends == 0 {
            return Err(ConfigError::ZeroLimit);
        }
        Ok(())
    }
}

/// A config the node refuses to start with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The voter list is empty.
    #[error("the cluster has no voters")]
    NoVoters,
    /// The node's own id is not among the voters.
    #[error("node {0} is not in its own voter list")]
    NotAVoter(NodeId),
    /// A voter is listed twice.
    #[error("voter {0} is listed twice")]
    DuplicateVoter(NodeId),
    /// Heartbeats must be more frequent than elections, and not zero.
    #[error(
        "heartbeat_ticks ({heartbeat_ticks}) must be at least 1 and below election_ticks ({election_ticks})"
    )]
    Timing {
        /// The configured heartbeat interval.
        heartbeat_ticks: u32,
        /// The configured election timeout.
        election_ticks: u32,
    },
    /// `2 * election_ticks` must fit in a `u32`.
    #[error("election_ticks ({0}) is too large")]
    ElectionTicksTooLarge(u32),
    /// Entry and inflight limits must be at least one.
    #[error("max_entries_per_append and max_inflight_appends must be at least 1")]
    ZeroLimit,
}
