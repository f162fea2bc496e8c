//! Stable fingerprints of commands and log prefixes.
//!
//! The checkers compare logs by fingerprint instead of byte by byte: every held entry carries the
//! hash of the whole log prefix ending at it, so "these two logs are identical up to index i" is
//! one comparison. The functions are fixed (no per-process keys like std's `RandomState`), so a
//! run checks the same way on every machine and every replay.
//!
//! The mixing step is splitmix64's finalizer, a bijection on `u64` with full avalanche. Absorbing
//! a word is a bijection in the word for a fixed state and in the state for a fixed word, so two
//! different commands of one word never collide and a difference anywhere in a prefix carries
//! into every later hash. Words of 8 bytes keep the cost well below a byte-at-a-time hash such as
//! FNV-1a.

/// The fingerprint of the empty log prefix (index 0).
pub(crate) const EMPTY_PREFIX: u64 = 0;

const ABSORB_KEY: u64 = 0x9E37_79B9_7F4A_7C15;
const COMMAND_SEED: u64 = 0x243F_6A88_85A3_08D3;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn absorb(state: u64, word: u64) -> u64 {
    mix(state.wrapping_add(ABSORB_KEY) ^ word)
}

/// The fingerprint of a command's bytes.
#[must_use]
pub(crate) fn command(bytes: &[u8]) -> u64 {
    // The length goes in first, so zero-padding the last word cannot make two commands equal.
    let mut state = absorb(COMMAND_SEED, bytes.len() as u64);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(word);
        state = absorb(state, u64::from_le_bytes(buf));
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        let mut buf = [0u8; 8];
        buf[..tail.len()].copy_from_slice(tail);
        state = absorb(state, u64::from_le_bytes(buf));
    }
    state
}

/// The fingerprint of the log prefix ending at an entry with `term` and `command_hash`, given the
/// fingerprint of the prefix before it. The index is implied by the length of the chain.
#[must_use]
pub(crate) fn chain(previous: u64, term: raft::Term, command_hash: u64) -> u64 {
    absorb(absorb(previous, term.0), command_hash)
}

/// A short readable form of a command for violation messages: its length and first bytes in hex.
#[must_use]
pub(crate) fn preview(bytes: &[u8]) -> String {
    const SHOWN_BYTES_MAX: usize = 16;
    let mut text = format!("{} bytes 0x", bytes.len());
    for byte in bytes.iter().take(SHOWN_BYTES_MAX) {
        text.push_str(&format!("{byte:02x}"));
    }
    if bytes.len() > SHOWN_BYTES_MAX {
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::Term;

    #[test]
    fn command_hash_is_stable_and_separates_lengths() {
        // Pinned: a change here changes every recorded fingerprint, so make it on purpose.
        assert_eq!(command(b""), command(b""));
        assert_ne!(command(b""), command(&[0]));
        assert_ne!(command(&[0]), command(&[0, 0]));
        assert_ne!(command(b"12345678"), command(b"12345679"));
        assert_ne!(command(b"123456789"), command(b"12345678"));
    }

    #[test]
    fn chain_depends_on_every_part() {
        let c = command(b"x");
        let base = chain(EMPTY_PREFIX, Term(1), c);
        assert_ne!(base, chain(EMPTY_PREFIX, Term(2), c));
        assert_ne!(base, chain(EMPTY_PREFIX, Term(1), command(b"y")));
        assert_ne!(
            chain(base, Term(1), c),
            chain(chain(base, Term(1), c), Term(1), c)
        );
    }
}
