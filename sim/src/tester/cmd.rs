//! Test commands: opaque bytes to the core, integers (or raw bytes) to the tester.

use raft::SharedBytes;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A command as the tester proposes and records it. Integer values are postcard-encoded `i64`s
/// (what the labs' tests use); raw byte commands carry arbitrary payloads (MIT's RPCBytes test
/// proposes 5000-byte strings). The bytes are shared with the log entries that carry them, so
/// proposing, retrying and recording a command never copies it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cmd(SharedBytes);

/// The integer command `value` (shorthand for [`Cmd::int`]).
#[must_use]
pub fn cmd(value: i64) -> Cmd {
    Cmd::int(value)
}

impl Cmd {
    /// The integer command `value`.
    #[must_use]
    pub fn int(value: i64) -> Cmd {
        // Encoding an i64 into a growable Vec cannot fail.
        Cmd(postcard::to_allocvec(&value).unwrap_or_default().into())
    }

    /// A command with these exact bytes.
    #[must_use]
    pub fn bytes(bytes: impl Into<SharedBytes>) -> Cmd {
        Cmd(bytes.into())
    }

    /// The integer this command encodes, if it is exactly one postcard `i64`.
    #[must_use]
    pub fn as_int(&self) -> Option<i64> {
        match postcard::take_from_bytes::<i64>(&self.0) {
            Ok((value, [])) => Some(value),
            Ok(_) | Err(_) => None,
        }
    }

    /// The command's bytes (what goes into the log).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The command's bytes, by value (shared, not copied).
    #[must_use]
    pub fn into_bytes(self) -> SharedBytes {
        self.0
    }

    /// Its length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty command.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<i64> for Cmd {
    fn from(value: i64) -> Cmd {
        Cmd::int(value)
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_int() {
            Some(value) => write!(f, "{value}"),
            None => write!(f, "<{} bytes>", self.0.len()),
        }
    }
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cmd({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_round_trip_and_bytes_stay_bytes() {
        for value in [0, 1, -1, 101, i64::MAX, i64::MIN] {
            assert_eq!(Cmd::int(value).as_int(), Some(value));
        }
        let raw = Cmd::bytes(vec![b'x'; 5000]);
        assert_eq!(raw.as_int(), None);
        assert_eq!(raw.to_string(), "<5000 bytes>");
        assert_eq!(cmd(7).to_string(), "7");
        assert_eq!(Cmd::from(7), cmd(7));
    }
}
