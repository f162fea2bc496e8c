//! Newtypes for the protocol's numbers, so a term can never be passed where an index is meant.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A Raft term: a logical clock that only moves forward. Term 0 means "before any election".
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Term(pub u64);

/// A position in the replicated log. The first entry has index 1; index 0 is the empty prefix.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Index(pub u64);

/// The identity of a node in the cluster.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct NodeId(pub u32);

impl Term {
    /// The next term (saturating: a term never wraps around).
    #[must_use]
    pub fn next(self) -> Term {
        Term(self.0.saturating_add(1))
    }
}

impl Index {
    /// The largest index an entry or a snapshot may have. One more must stay representable: a
    /// leader's `next_index` for a follower is one past its match, and must stay above it.
    pub const LAST: Index = Index(u64::MAX - 1);

    /// The index after this one (saturating).
    #[must_use]
    pub fn next(self) -> Index {
        Index(self.0.saturating_add(1))
    }

    /// The index before this one; `Index(0)` stays `Index(0)`.
    #[must_use]
    pub fn prev(self) -> Index {
        Index(self.0.saturating_sub(1))
    }

    /// `self + n`, saturating.
    #[must_use]
    pub fn plus(self, n: u64) -> Index {
        Index(self.0.saturating_add(n))
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

impl fmt::Display for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "i{}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}
