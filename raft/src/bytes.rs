//! Immutable byte buffers that are cheap to clone: log-entry commands.
//!
//! A command is written once (by the proposer, or by the decoder of a message or a durable
//! state) and then only read, while copies of it travel everywhere: into every `AppendEntries`
//! the leader sends, into the durable store, into `Apply` outputs, and in a simulator into the
//! network, its checkers and its state machines. Sharing one buffer makes each of those copies a
//! reference-count increment instead of an allocation and a `memcpy`.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// An immutable, shared byte buffer. `clone` shares the bytes; nothing can change them.
///
/// It reads as a `&[u8]` (`Deref`, `AsRef`, `Borrow`), is built from a `Vec<u8>`, a `&[u8]`, a
/// byte-string literal or a `String`, compares equal to byte slices and vectors with the same
/// contents, and prints (`Debug`) exactly as the equivalent `Vec<u8>` would.
///
/// Its serde encoding is the one of `Vec<u8>` in postcard: a varint length, then the bytes. A
/// struct holding `SharedBytes` encodes byte for byte as the same struct holding `Vec<u8>`, so
/// switching between the two changes no wire message and no stored state.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SharedBytes(Arc<[u8]>);

impl SharedBytes {
    /// The bytes, as a slice.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// True when `self` and `other` share one buffer (not merely equal contents).
    #[must_use]
    pub fn ptr_eq(&self, other: &SharedBytes) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Deref for SharedBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Borrow<[u8]> for SharedBytes {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The same text as `Vec<u8>`, so debug output and anything derived from it are unchanged.
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<Vec<u8>> for SharedBytes {
    fn from(bytes: Vec<u8>) -> SharedBytes {
        SharedBytes(Arc::from(bytes))
    }
}

impl From<Box<[u8]>> for SharedBytes {
    fn from(bytes: Box<[u8]>) -> SharedBytes {
        SharedBytes(Arc::from(bytes))
    }
}

impl From<&[u8]> for SharedBytes {
    fn from(bytes: &[u8]) -> SharedBytes {
        SharedBytes(Arc::from(bytes))
    }
}

impl<const N: usize> From<&[u8; N]> for SharedBytes {
    fn from(bytes: &[u8; N]) -> SharedBytes {
        SharedBytes(Arc::from(&bytes[..]))
    }
}

impl<const N: usize> From<[u8; N]> for SharedBytes {
    fn from(bytes: [u8; N]) -> SharedBytes {
        SharedBytes(Arc::from(&bytes[..]))
    }
}

impl From<String> for SharedBytes {
    fn from(text: String) -> SharedBytes {
        SharedBytes::from(text.into_bytes())
    }
}

impl From<&str> for SharedBytes {
    fn from(text: &str) -> SharedBytes {
        SharedBytes::from(text.as_bytes())
    }
}

impl From<SharedBytes> for Vec<u8> {
    fn from(bytes: SharedBytes) -> Vec<u8> {
        bytes.0.to_vec()
    }
}

impl PartialEq<[u8]> for SharedBytes {
    fn eq(&self, other: &[u8]) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&[u8]> for SharedBytes {
    fn eq(&self, other: &&[u8]) -> bool {
        *self.0 == **other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for SharedBytes {
    fn eq(&self, other: &[u8; N]) -> bool {
        *self.0 == other[..]
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for SharedBytes {
    fn eq(&self, other: &&[u8; N]) -> bool {
        *self.0 == other[..]
    }
}

impl PartialEq<Vec<u8>> for SharedBytes {
    fn eq(&self, other: &Vec<u8>) -> bool {
        *self.0 == other[..]
    }
}

impl PartialEq<SharedBytes> for Vec<u8> {
    fn eq(&self, other: &SharedBytes) -> bool {
        self[..] == *other.0
    }
}

impl PartialEq<SharedBytes> for [u8] {
    fn eq(&self, other: &SharedBytes) -> bool {
        *self == *other.0
    }
}

impl PartialEq<SharedBytes> for &[u8] {
    fn eq(&self, other: &SharedBytes) -> bool {
        **self == *other.0
    }
}

impl Serialize for SharedBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // postcard writes bytes as a varint length and the raw bytes, exactly as it writes a
        // `Vec<u8>` (a sequence length, then each `u8` as one byte). Self-describing formats
        // (JSON) write a byte array as a list of numbers, also like `Vec<u8>`.
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for SharedBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SharedBytes, D::Error> {
        deserializer.deserialize_byte_buf(SharedBytesVisitor)
    }
}

/// Accepts every shape a byte buffer arrives in: postcard's borrowed bytes, owned buffers, and
/// the sequences of numbers that self-describing formats use for `Vec<u8>`.
struct SharedBytesVisitor;

impl<'de> Visitor<'de> for SharedBytesVisitor {
    type Value = SharedBytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte array")
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<SharedBytes, E> {
        Ok(SharedBytes::from(bytes))
    }

    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<SharedBytes, E> {
        Ok(SharedBytes::from(bytes))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SharedBytes, A::Error> {
        // Cap the preallocation: the length hint comes from untrusted input.
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(byte) = seq.next_element::<u8>()? {
            bytes.push(byte);
        }
        Ok(SharedBytes::from(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct WithVec {
        tag: u64,
        bytes: Vec<u8>,
        more: Vec<Vec<u8>>,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct WithShared {
        tag: u64,
        bytes: SharedBytes,
        more: Vec<SharedBytes>,
    }

    fn pair(tag: u64, bytes: &[u8], more: &[&[u8]]) -> (WithVec, WithShared) {
        (
            WithVec {
                tag,
                bytes: bytes.to_vec(),
                more: more.iter().map(|b| b.to_vec()).collect(),
            },
            WithShared {
                tag,
                bytes: SharedBytes::from(bytes),
                more: more.iter().map(|b| SharedBytes::from(*b)).collect(),
            },
        )
    }

    #[test]
    fn postcard_encoding_is_byte_identical_to_vec() {
        let long = vec![0xa5; 300]; // a two-byte varint length
        let huge = vec![7; 20_000]; // a three-byte varint length
        for (tag, bytes, more) in [
            (0, &b""[..], vec![]),
            (1, &b"x"[..], vec![&b""[..]]),
            (u64::MAX, &long[..], vec![&b"ab"[..], &huge[..]]),
            (300, &[0u8, 0x80, 0xff][..], vec![&long[..]]),
        ] {
            let (with_vec, with_shared) = pair(tag, bytes, &more);
            let expected = postcard::to_allocvec(&with_vec).unwrap();
            assert_eq!(postcard::to_allocvec(&with_shared).unwrap(), expected);
            let decoded: WithShared = postcard::from_bytes(&expected).unwrap();
            assert_eq!(decoded, with_shared);
        }
    }

    #[test]
    fn json_encoding_matches_vec_and_round_trips() {
        let (with_vec, with_shared) = pair(9, b"hi", &[b"", b"\x00\xff"]);
        let text = serde_json::to_string(&with_vec).unwrap();
        assert_eq!(serde_json::to_string(&with_shared).unwrap(), text);
        let decoded: WithShared = serde_json::from_str(&text).unwrap();
        assert_eq!(decoded, with_shared);
        assert!(serde_json::from_str::<SharedBytes>("[1, 256]").is_err());
    }

    #[test]
    fn bad_bytes_are_typed_errors() {
        let (with_vec, with_shared) = pair(5, b"hello", &[b"world"]);
        let bytes = postcard::to_allocvec(&with_shared).unwrap();
        for cut in 0..bytes.len() {
            let truncated = &bytes[..cut];
            let shared = postcard::from_bytes::<WithShared>(truncated);
            let vec = postcard::from_bytes::<WithVec>(truncated);
            assert!(shared.is_err(), "cut at {cut} decoded: {shared:?}");
            assert!(vec.is_err());
        }
        // A length far beyond the input is refused without allocating it.
        let lying = [0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3];
        assert!(postcard::from_bytes::<SharedBytes>(&lying).is_err());
        assert_eq!(
            postcard::from_bytes::<WithVec>(&bytes).unwrap(),
            with_vec,
            "the shared encoding decodes as the Vec one"
        );
    }

    #[test]
    fn clones_share_and_read_like_slices() {
        let a = SharedBytes::from(vec![1, 2, 3]);
        let b = a.clone();
        assert!(a.ptr_eq(&b));
        assert!(!a.ptr_eq(&SharedBytes::from(&[1, 2, 3])));
        assert_eq!(a, SharedBytes::from(&[1, 2, 3]));
        assert_eq!(a, vec![1, 2, 3]);
        assert_eq!(a, [1, 2, 3]);
        assert_eq!(a, &[1u8, 2, 3][..]);
        assert_eq!(&a[..2], &[1, 2]);
        assert_eq!(a.len(), 3);
        assert_eq!(format!("{a:?}"), format!("{:?}", vec![1u8, 2, 3]));
        assert_eq!(Vec::from(a), vec![1, 2, 3]);
        assert_eq!(SharedBytes::from("ab"), *b"ab");
        assert_eq!(SharedBytes::from(String::from("ab")), b"ab");
        assert!(SharedBytes::default().is_empty());
    }
}
