//! The key/value store of MIT 6.5840's lab (Porcupine's `models/kv.go`): Get, Put and Append on
//! string keys, partitioned by key.

use crate::model::{Model, Operation};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

/// What a key/value client asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvInput {
    /// Reads `key`; a key never written reads as the empty string.
    Get {
        /// The key read.
        key: String,
    },
    /// Replaces the value of `key` with `value`.
    Put {
        /// The key written.
        key: String,
        /// The new value.
        value: String,
    },
    /// Appends `value` to the value of `key` (to the empty string if it was never written).
    Append {
        /// The key written.
        key: String,
        /// What is appended.
        value: String,
    },
}

impl KvInput {
    /// The key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            KvInput::Get { key } | KvInput::Put { key, .. } | KvInput::Append { key, .. } => key,
        }
    }
}

/// What a key/value client gets back. Only a Get's output is compared; the output of a Put or an
/// Append carries nothing and is ignored.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KvOutput {
    /// The value a Get read.
    pub value: String,
}

/// One operation of a key/value history.
pub type KvOperation = Operation<KvInput, KvOutput>;

/// A key, the partition of a key/value history. Displays as `key "x"` (escaped like a Rust
/// string literal, so keys with quotes or newlines stay readable).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KvKey(pub String);

impl fmt::Display for KvKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key {:?}", self.0)
    }
}

/// The value of one key: shared behind an `Rc` so that memoizing it costs a reference count,
/// not a copy, with its hash computed once (and extended, not recomputed, by an append).
#[derive(Clone, Debug)]
pub struct KvValue {
    text: Rc<str>,
    hash: u64,
}

impl KvValue {
    /// A value holding `text`.
    pub fn new(text: &str) -> KvValue {
        KvValue {
            text: Rc::from(text),
            hash: fnv1a(FNV_OFFSET, text),
        }
    }

    /// The value followed by `suffix`.
    pub fn appended(&self, suffix: &str) -> KvValue {
        let mut text = String::with_capacity(self.text.len() + suffix.len());
        text.push_str(&self.text);
        text.push_str(suffix);
        KvValue {
            text: Rc::from(text),
            hash: fnv1a(self.hash, suffix),
        }
    }

    /// The text of the value.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for KvValue {
    fn eq(&self, other: &KvValue) -> bool {
        self.hash == other.hash && (Rc::ptr_eq(&self.text, &other.text) || self.text == other.text)
    }
}

impl Eq for KvValue {}

impl Hash for KvValue {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over `text`, continuing from `hash`: `fnv1a(fnv1a(FNV_OFFSET, a), b)` is the hash of
/// `a + b`, which is what lets an append extend its value's hash.
fn fnv1a(hash: u64, text: &str) -> u64 {
    text.bytes().fold(hash, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
    })
}

/// MIT's key/value semantics, one key at a time: the state is the key's value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvModel;

impl Model for KvModel {
    type State = KvValue;
    type Input = KvInput;
    type Output = KvOutput;
    type Partition = KvKey;

    fn init(&self) -> KvValue {
        KvValue::new("")
    }

    fn step(&self, state: &KvValue, input: &KvInput, output: Option<&KvOutput>) -> Option<KvValue> {
        match input {
            KvInput::Get { .. } => match output {
                Some(output) if output.value != state.as_str() => None,
                _ => Some(state.clone()),
            },
            KvInput::Put { value, .. } => Some(KvValue::new(value)),
            KvInput::Append { value, .. } => Some(state.appended(value)),
        }
    }

    fn partition(&self, input: &KvInput) -> KvKey {
        KvKey(input.key().to_owned())
    }

    fn is_read_only(&self, input: &KvInput) -> bool {
        matches!(input, KvInput::Get { .. })
    }

    /// A read is always omitted, and so is a write whose value appears in no Get output of its
    /// key that may come after it (an empty append always; an empty put never). Sound because a
    /// key's value only grows by appends until the next put: a Get after the write and before
    /// the next put reads a value that contains the written one, so if no Get read it, none came
    /// in that stretch, and leaving the write out changes no Get. A Get that returned no later
    /// than the write was called comes before it in every order, so it is not searched.
    fn can_omit_unknown(&self, op: &KvOperation, partition: &[&KvOperation]) -> bool {
        let written = match &op.input {
            KvInput::Get { .. } => return true,
            // Appending nothing changes nothing; an empty put can be read by any Get.
            KvInput::Append { value, .. } if value.is_empty() => return true,
            KvInput::Put { value, .. } if value.is_empty() => return false,
            KvInput::Put { value, .. } | KvInput::Append { value, .. } => value.as_str(),
        };
        !partition.iter().any(|read| {
            matches!(read.input, KvInput::Get { .. })
                // A return before its own call counts as at the call (as in `events`).
                && read.return_.is_none_or(|ret| ret.max(read.call) > op.call)
                && read
                    .output
                    .as_ref()
                    .is_some_and(|output| output.value.contains(written))
        })
    }

    fn only_grows(&self, input: &KvInput) -> bool {
        !matches!(input, KvInput::Put { .. })
    }

    fn can_grow_into(&self, state: &KvValue, read: &KvOperation) -> bool {
        read.output
            .as_ref()
            .is_none_or(|output| output.value.starts_with(state.as_str()))
    }

    fn describe_operation(&self, input: &KvInput, output: Option<&KvOutput>) -> String {
        match input {
            KvInput::Get { key } => match output {
                Some(output) => format!("get({}) -> {}", quote(key), quote(&output.value)),
                None => format!("get({}) -> ?", quote(key)),
            },
            KvInput::Put { key, value } => format!("put({}, {})", quote(key), quote(value)),
            KvInput::Append { key, value } => format!("append({}, {})", quote(key), quote(value)),
        }
    }

    fn describe_state(&self, state: &KvValue) -> String {
        quote(state.as_str())
    }
}

/// Characters of a string shown in full; longer ones are cut in the middle.
const QUOTE_CHARS_MAX: usize = 64;
/// Characters kept from each end of a string that is cut.
const QUOTE_CHARS_END: usize = 24;

/// A string as a quoted, escaped literal; a long one keeps its two ends and its length, since
/// a key/value value built by appends differs from the expected one mostly at its end.
fn quote(text: &str) -> String {
    let chars = text.chars().count();
    if chars <= QUOTE_CHARS_MAX {
        return format!("{text:?}");
    }
    let head: String = text.chars().take(QUOTE_CHARS_END).collect();
    let tail: String = text.chars().skip(chars - QUOTE_CHARS_END).collect();
    let head = format!("{head:?}");
    let tail = format!("{tail:?}");
    // Join the two literals into one: drop the closing quote of the head and the opening quote
    // of the tail.
    format!(
        "{}…{} ({} chars)",
        &head[..head.len() - 1],
        &tail[1..],
        chars
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(key: &str) -> KvInput {
        KvInput::Get { key: key.into() }
    }

    fn out(value: &str) -> KvOutput {
        KvOutput {
            value: value.into(),
        }
    }

    #[test]
    fn missing_key_reads_empty() {
        let state = KvModel.init();
        assert!(KvModel.step(&state, &get("k"), Some(&out(""))).is_some());
        assert!(KvModel.step(&state, &get("k"), Some(&out("a"))).is_none());
    }

    #[test]
    fn put_replaces_and_append_concatenates() {
        let state = KvModel.init();
        let put = KvInput::Put {
            key: "k".into(),
            value: "ab".into(),
        };
        let append = KvInput::Append {
            key: "k".into(),
            value: "c".into(),
        };
        let state = KvModel
            .step(&state, &put, None)
            .expect("put is always legal");
        // Put and Append outputs are never compared.
        let state = KvModel
            .step(&state, &append, Some(&out("whatever")))
            .expect("append is always legal");
        assert_eq!(state.as_str(), "abc");
        assert_eq!(state, KvValue::new("abc"));
        assert_ne!(state, KvValue::new("abd"));
        assert!(KvModel.step(&state, &get("k"), Some(&out("abc"))).is_some());
        assert!(KvModel.step(&state, &get("k"), Some(&out("ab"))).is_none());
        assert!(KvModel.step(&state, &get("k"), None).is_some());
    }

    #[test]
    fn unknown_writes_no_read_saw_are_omitted() {
        let op = |input: KvInput, output: Option<&str>, call: u64, ret: Option<u64>| KvOperation {
            client_id: 0,
            input,
            output: output.map(out),
            call,
            return_: ret,
        };
        let append = |value: &str| KvInput::Append {
            key: "k".into(),
            value: value.into(),
        };
        let put = |value: &str| KvInput::Put {
            key: "k".into(),
            value: value.into(),
        };
        let history = [
            op(get("k"), Some("xyz"), 10, Some(20)),
            op(get("k"), Some("old"), 0, Some(5)),
            op(get("k"), None, 10, Some(20)),
        ];
        let history: Vec<&KvOperation> = history.iter().collect();
        let unknown = |input: KvInput, call: u64| op(input, None, call, None);
        assert!(!KvModel.can_omit_unknown(&unknown(append("y"), 0), &history));
        assert!(!KvModel.can_omit_unknown(&unknown(put("xy"), 0), &history));
        assert!(KvModel.can_omit_unknown(&unknown(append("q"), 0), &history));
        assert!(KvModel.can_omit_unknown(&unknown(put("zx"), 0), &history));
        // Called when the read of "xyz" had returned (a return at a call's time precedes it).
        assert!(KvModel.can_omit_unknown(&unknown(append("y"), 20), &history));
        assert!(!KvModel.can_omit_unknown(&unknown(append("y"), 19), &history));
        // "old" was read before the put was called.
        assert!(KvModel.can_omit_unknown(&unknown(put("old"), 5), &history));
        // An empty append changes nothing; an empty put can be seen by any read.
        assert!(KvModel.can_omit_unknown(&unknown(append(""), 0), &history));
        assert!(!KvModel.can_omit_unknown(&unknown(put(""), 0), &history));
        assert!(KvModel.can_omit_unknown(&unknown(get("k"), 0), &history));
    }

    #[test]
    fn descriptions_quote_and_cut_long_values() {
        let long = "x".repeat(100) + "END";
        let described = KvModel.describe_operation(&get("k\n"), Some(&out(&long)));
        assert!(
            described.starts_with("get(\"k\\n\") -> \"xxxx"),
            "{described}"
        );
        assert!(described.ends_with("xxEND\" (103 chars)"), "{described}");
        assert!(described.contains('…'), "{described}");
        assert_eq!(KvKey("a b".into()).to_string(), "key \"a b\"");
    }
}
