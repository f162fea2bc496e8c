//! Property tests: histories that are linearizable by construction are accepted, a corrupted
//! read is caught, and no input, however malformed, makes the JSON reader panic.

mod common;

use common::{Shape, linearizable_history};
use lincheck::history::{from_json, to_json};
use lincheck::{Budget, CheckResult, History, KvInput, KvOutput, check_json, check_kv};
use proptest::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

fn shapes() -> impl Strategy<Value = (u64, Shape)> {
    (
        any::<u64>(),
        1usize..=5,
        1usize..=3,
        0usize..=60,
        // A few unknown outcomes per history, as when clients give up on lost requests: each
        // pending one multiplies the orders the search may have to try.
        prop_oneof![Just(0u32), 0u32..=300],
        prop_oneof![Just(1000u32), 100u32..=900],
    )
        .prop_map(|(seed, clients, keys, operations, unknown, advance)| {
            (
                seed,
                Shape {
                    clients,
                    keys,
                    operations,
                    unknown_per_mille: unknown,
                    advance_per_mille: advance,
                },
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Operations that each take effect at one moment inside their [call, return] always have
    /// a legal order.
    #[test]
    fn generated_histories_are_accepted((seed, shape) in shapes()) {
        let history = linearizable_history(&mut ChaCha8Rng::seed_from_u64(seed), shape);
        prop_assert_eq!(history.len(), shape.operations);
        let result = check_kv(&history, Budget::DEFAULT);
        prop_assert!(result == CheckResult::Ok, "{:?}\n{}", result, to_json(&History::Kv(history)));
    }

    /// A read of a value that was never written is always caught, on its key.
    #[test]
    fn a_corrupted_read_is_caught((seed, shape) in shapes(), pick in any::<prop::sample::Index>()) {
        let mut history = linearizable_history(&mut ChaCha8Rng::seed_from_u64(seed), shape);
        let reads: Vec<usize> = (0..history.len())
            .filter(|&i| matches!(history[i].input, KvInput::Get { .. }) && history[i].output.is_some())
            .collect();
        prop_assume!(!reads.is_empty());
        let read = reads[pick.index(reads.len())];
        history[read].output = Some(KvOutput { value: "never written".into() });
        match check_kv(&history, Budget::DEFAULT) {
            CheckResult::Illegal(explanation) => {
                prop_assert_eq!(explanation.partitions.len(), 1);
                let key = history[read].input.key();
                prop_assert_eq!(&explanation.partitions[0].partition, &format!("key {key:?}"));
            }
            other => prop_assert!(false, "corrupted read {} accepted: {:?}", read, other),
        }
    }

    /// Writing a history and reading it back gives the same history.
    #[test]
    fn json_round_trip((seed, shape) in shapes()) {
        let history = History::Kv(linearizable_history(&mut ChaCha8Rng::seed_from_u64(seed), shape));
        prop_assert_eq!(from_json(&to_json(&history)), Ok(history));
    }

    /// Arbitrary text, and text made of JSON's own characters, never makes the reader panic.
    #[test]
    fn arbitrary_text_never_panics(
        text in prop_oneof![
            any::<String>(),
            r#"[\[\]{}",:0-9a-z\- \n.enulrtfsaoplkyvcidxg_]{0,200}"#,
        ],
    ) {
        let _ = check_json(&text, Budget { max_steps: 10_000 });
    }

    /// Valid histories with a few bytes changed never make the reader or checker panic.
    #[test]
    fn mutated_histories_never_panic(
        (seed, shape) in shapes(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let history = History::Kv(linearizable_history(&mut ChaCha8Rng::seed_from_u64(seed), shape));
        let mut bytes = to_json(&history).into_bytes();
        for (at, byte, kind) in edits {
            let at = at.index(bytes.len() + 1);
            match kind {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ if at < bytes.len() => { bytes.remove(at); }
                _ => {}
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let _ = check_json(&text, Budget { max_steps: 10_000 });
    }

    /// Structurally odd JSON (right field names, wrong shapes and values) never panics.
    #[test]
    fn odd_json_values_never_panic(value in odd_json()) {
        let text = value.to_string();
        let _ = check_json(&text, Budget { max_steps: 10_000 });
    }
}

fn odd_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let names = prop_oneof![
        Just("model"),
        Just("operations"),
        Just("client_id"),
        Just("input"),
        Just("output"),
        Just("call"),
        Just("return"),
        Just("op"),
        Just("key"),
        Just("value"),
        Just("x"),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("kv"),
            Just("get"),
            Just("put"),
            Just("append"),
            Just("k"),
            Just("")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((names.clone(), inner), 0..6).prop_map(|fields| {
                Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}
