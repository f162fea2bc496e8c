//! Majority arithmetic, kept apart from the protocol so it can be read and tested on its own.

use crate::types::Index;

/// The number of votes that make a majority of `voters`.
#[must_use]
pub fn majority(voters: usize) -> usize {
    voters / 2 + 1
}

/// The highest index that a majority of voters have stored, given each voter's match index.
/// `matched` is reordered in place (no allocation on the leader's hot path).
#[must_use]
pub fn committed_index(matched: &mut [Index]) -> Index {
    if matched.is_empty() {
        return Index(0);
    }
    matched.sort_unstable_by(|a, b| b.cmp(a));
    matched[majority(matched.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(v: &[u64]) -> Vec<Index> {
        v.iter().map(|&i| Index(i)).collect()
    }

    #[test]
    fn majorities() {
        assert_eq!(majority(1), 1);
        assert_eq!(majority(2), 2);
        assert_eq!(majority(3), 2);
        assert_eq!(majority(4), 3);
        assert_eq!(majority(5), 3);
        assert_eq!(majority(7), 4);
    }

    #[test]
    fn committed_is_the_majority_minimum() {
        assert_eq!(committed_index(&mut idx(&[5])), Index(5));
        assert_eq!(committed_index(&mut idx(&[5, 3, 9])), Index(5));
        assert_eq!(committed_index(&mut idx(&[1, 9, 9, 2, 2])), Index(2));
        assert_eq!(committed_index(&mut idx(&[4, 4, 0, 0])), Index(0));
        assert_eq!(committed_index(&mut idx(&[])), Index(0));
    }
}
