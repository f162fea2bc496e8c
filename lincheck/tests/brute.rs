//! The checker against a brute-force oracle on small random histories, legal or not: the
//! verdicts must agree. The oracle tries every order of every subset of the operations that
//! contains all those with a known outcome, on the whole key/value map at once (no partitions,
//! no memo, no pruning), with precedence defined directly from the times.

use lincheck::{Budget, CheckResult, KvInput, KvOperation, KvOutput, check_kv};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// Where an event sits among events at the same time: a return of an operation that took
/// time, then an instantaneous call, then an instantaneous return, then any other call.
fn call_rank(op: &KvOperation) -> (u64, u8) {
    match op.return_ {
        Some(ret) if ret <= op.call => (op.call, 1),
        _ => (op.call, 3),
    }
}

fn return_rank(op: &KvOperation) -> Option<(u64, u8)> {
    op.return_.map(|ret| {
        if ret <= op.call {
            (op.call, 2)
        } else {
            (ret, 0)
        }
    })
}

/// Whether `a` must come before `b` in any linearization.
fn precedes(a: &KvOperation, b: &KvOperation) -> bool {
    return_rank(a).is_some_and(|ret| ret < call_rank(b))
}

/// The sequential key/value map: the next map, or `None` if the operation is illegal.
fn apply(map: &BTreeMap<String, String>, op: &KvOperation) -> Option<BTreeMap<String, String>> {
    let mut map = map.clone();
    match &op.input {
        KvInput::Get { key } => {
            let value = map.get(key).map_or("", String::as_str);
            if op.output.as_ref().is_some_and(|out| out.value != value) {
                return None;
            }
        }
        KvInput::Put { key, value } => {
            map.insert(key.clone(), value.clone());
        }
        KvInput::Append { key, value } => map.entry(key.clone()).or_default().push_str(value),
    }
    Some(map)
}

fn linearizable(
    history: &[KvOperation],
    used: &mut Vec<bool>,
    map: &BTreeMap<String, String>,
) -> bool {
    let known_done = history
        .iter()
        .zip(used.iter())
        .all(|(op, &used)| used || op.return_.is_none());
    if known_done {
        return true;
    }
    for next in 0..history.len() {
        let ready = !used[next]
            && (0..history.len())
                .all(|other| used[other] || !precedes(&history[other], &history[next]));
        if !ready {
            continue;
        }
        if let Some(after) = apply(map, &history[next]) {
            used[next] = true;
            let found = linearizable(history, used, &after);
            used[next] = false;
            if found {
                return true;
            }
        }
    }
    false
}

fn operation() -> impl Strategy<Value = KvOperation> {
    let key = prop_oneof![3 => Just("x"), 1 => Just("y")];
    let value = prop_oneof![Just(""), Just("a"), Just("b"), Just("ab")];
    let read = prop_oneof![
        Just(""),
        Just("a"),
        Just("b"),
        Just("ab"),
        Just("ba"),
        Just("aa"),
        Just("bab")
    ];
    (
        0u8..3,
        key,
        value,
        prop::option::weighted(0.8, read),
        0u64..8,
        prop::option::weighted(0.8, 0u64..4),
        0u64..3,
    )
        .prop_map(|(kind, key, value, read, call, duration, client)| {
            let (key, value) = (key.to_owned(), value.to_owned());
            let input = match kind {
                0 => KvInput::Get { key },
                1 => KvInput::Put { key, value },
                _ => KvInput::Append { key, value },
            };
            let output = match (&input, read) {
                (KvInput::Get { .. }, Some(read)) => Some(KvOutput {
                    value: read.to_owned(),
                }),
                _ => None,
            };
            KvOperation {
                client_id: client,
                input,
                output,
                call,
                return_: duration.map(|d| call + d),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn agrees_with_brute_force(history in prop::collection::vec(operation(), 0..8)) {
        let expected = linearizable(&history, &mut vec![false; history.len()], &BTreeMap::new());
        let got = check_kv(&history, Budget::UNLIMITED);
        match got {
            CheckResult::Ok => prop_assert!(expected, "checker accepted an illegal history"),
            CheckResult::Illegal(explanation) => {
                prop_assert!(!expected, "checker rejected a legal history: {}", explanation)
            }
            CheckResult::Unknown => prop_assert!(false, "unlimited budget ran out"),
        }
    }
}
