//! Hand-written key/value histories that are and are not linearizable, with the explanations
//! the checker gives.

use lincheck::{
    Budget, CheckResult, Explanation, IllegalPartition, KvInput, KvOperation, KvOutput, check_kv,
};

fn get(client: u64, key: &str, value: &str, call: u64, ret: u64) -> KvOperation {
    KvOperation {
        client_id: client,
        input: KvInput::Get { key: key.into() },
        output: Some(KvOutput {
            value: value.into(),
        }),
        call,
        return_: Some(ret),
    }
}

fn put(client: u64, key: &str, value: &str, call: u64, ret: u64) -> KvOperation {
    KvOperation {
        client_id: client,
        input: KvInput::Put {
            key: key.into(),
            value: value.into(),
        },
        output: None,
        call,
        return_: Some(ret),
    }
}

fn append(client: u64, key: &str, value: &str, call: u64, ret: u64) -> KvOperation {
    KvOperation {
        client_id: client,
        input: KvInput::Append {
            key: key.into(),
            value: value.into(),
        },
        output: None,
        call,
        return_: Some(ret),
    }
}

/// The same operation with its outcome unknown: the client gave up waiting.
fn gave_up(mut op: KvOperation) -> KvOperation {
    op.return_ = None;
    op.output = None;
    op
}

fn check(history: &[KvOperation]) -> CheckResult {
    check_kv(history, Budget::DEFAULT)
}

fn illegal(history: &[KvOperation]) -> Explanation {
    match check(history) {
        CheckResult::Illegal(explanation) => explanation,
        other => panic!("expected a violation, got {other:?}"),
    }
}

/// The only illegal partition of an explanation.
fn only(explanation: &Explanation) -> &IllegalPartition {
    assert_eq!(explanation.partitions.len(), 1, "{explanation}");
    &explanation.partitions[0]
}

fn prefix_indices(failure: &IllegalPartition) -> Vec<usize> {
    failure.prefix.iter().map(|op| op.index).collect()
}

#[test]
fn empty_history_is_linearizable() {
    assert_eq!(check(&[]), CheckResult::Ok);
    assert_eq!(check_kv(&[], Budget { max_steps: 0 }), CheckResult::Ok);
}

#[test]
fn missing_key_reads_empty() {
    assert_eq!(check(&[get(0, "x", "", 0, 5)]), CheckResult::Ok);
    let failure = only(&illegal(&[get(0, "x", "a", 0, 5)])).clone();
    assert_eq!(failure.prefix, vec![]);
    assert_eq!(failure.state, "\"\"");
}

#[test]
fn sequential_history_is_linearizable() {
    let history = [
        put(0, "x", "a", 0, 10),
        get(1, "x", "a", 11, 20),
        append(0, "x", "b", 21, 30),
        get(1, "x", "ab", 31, 40),
        put(2, "x", "", 41, 50),
        get(0, "x", "", 51, 60),
    ];
    assert_eq!(check(&history), CheckResult::Ok);
}

#[test]
fn stale_read_is_illegal() {
    let history = [
        put(0, "x", "a", 0, 10),
        put(0, "x", "b", 20, 30),
        get(1, "x", "a", 40, 50),
    ];
    let explanation = illegal(&history);
    let failure = only(&explanation);
    assert_eq!(failure.partition, "key \"x\"");
    assert_eq!(failure.operations, 3);
    assert_eq!(prefix_indices(failure), vec![0, 1]);
    assert_eq!(failure.state, "\"b\"");
    assert_eq!(failure.unplaceable.index, 2);
    assert_eq!(failure.unplaceable.description, "get(\"x\") -> \"a\"");
    assert!(failure.pending.is_empty());

    // Had the read overlapped the second put, "a" would have been fine.
    let overlapping = [
        put(0, "x", "a", 0, 10),
        put(0, "x", "b", 20, 30),
        get(1, "x", "a", 25, 50),
    ];
    assert_eq!(check(&overlapping), CheckResult::Ok);
}

#[test]
fn lost_write_is_illegal() {
    let history = [
        put(0, "x", "a", 0, 10),
        append(1, "x", "b", 20, 30),
        get(2, "x", "a", 40, 50),
        get(2, "x", "ab", 60, 70),
    ];
    let explanation = illegal(&history);
    let failure = only(&explanation);
    assert_eq!(prefix_indices(failure), vec![0, 1]);
    assert_eq!(failure.state, "\"ab\"");
    assert_eq!(failure.unplaceable.index, 2);
}

#[test]
fn read_of_a_value_never_written_is_illegal() {
    let history = [
        put(0, "x", "a", 0, 10),
        append(1, "x", "b", 5, 15),
        get(2, "x", "ba", 20, 30),
    ];
    let explanation = illegal(&history);
    let failure = only(&explanation);
    // Both orders of the two writes are tried; the deepest reaches both writes.
    assert_eq!(failure.prefix.len(), 2);
    assert_eq!(failure.unplaceable.index, 2);
    assert_eq!(failure.unplaceable.description, "get(\"x\") -> \"ba\"");
}

#[test]
fn concurrent_appends_observed_in_an_impossible_order_are_illegal() {
    // Two appends overlap, so either order is possible, but not both.
    let history = [
        append(1, "x", "1", 0, 100),
        append(2, "x", "2", 0, 100),
        get(3, "x", "12", 110, 120),
        get(3, "x", "21", 130, 140),
    ];
    let explanation = illegal(&history);
    let failure = only(&explanation);
    assert_eq!(prefix_indices(failure), vec![0, 1, 2]);
    assert_eq!(failure.state, "\"12\"");
    assert_eq!(failure.unplaceable.index, 3);

    // One reader seeing one order, while the appends are in flight, is fine in either order.
    for order in ["12", "21"] {
        let history = [
            append(1, "x", "1", 0, 100),
            append(2, "x", "2", 0, 100),
            get(3, "x", order, 50, 120),
            get(4, "x", order, 130, 140),
        ];
        assert_eq!(check(&history), CheckResult::Ok, "order {order}");
    }
    // A reader seeing only the second append's value is impossible.
    let history = [
        append(1, "x", "1", 0, 100),
        append(2, "x", "2", 0, 100),
        get(3, "x", "2", 50, 60),
        get(3, "x", "21", 110, 120),
    ];
    assert!(matches!(check(&history), CheckResult::Ok));
    let history = [
        append(1, "x", "1", 0, 100),
        append(2, "x", "2", 0, 100),
        get(3, "x", "2", 50, 60),
        get(3, "x", "12", 110, 120),
    ];
    assert_eq!(only(&illegal(&history)).unplaceable.index, 3);
}

#[test]
fn unknown_outcomes_can_make_a_history_legal() {
    // The append's client gave up, yet the read shows it took effect.
    let history = [
        put(0, "x", "a", 0, 10),
        gave_up(append(0, "x", "b", 20, 0)),
        get(1, "x", "ab", 30, 40),
    ];
    assert_eq!(check(&history), CheckResult::Ok);

    // It may also take effect long after the client gave up...
    let history = [
        put(0, "x", "a", 0, 10),
        gave_up(append(0, "x", "b", 20, 0)),
        get(1, "x", "a", 30, 40),
        get(1, "x", "a", 50, 60),
        get(1, "x", "ab", 70, 80),
    ];
    assert_eq!(check(&history), CheckResult::Ok);

    // ...or never.
    let history = [
        put(0, "x", "a", 0, 10),
        gave_up(append(0, "x", "b", 20, 0)),
        gave_up(put(2, "x", "c", 25, 0)),
        get(1, "x", "a", 30, 40),
    ];
    assert_eq!(check(&history), CheckResult::Ok);

    // A read whose outcome is unknown constrains nothing.
    let history = [put(0, "x", "a", 0, 10), gave_up(get(1, "x", "zzz", 5, 0))];
    assert_eq!(check(&history), CheckResult::Ok);
}

#[test]
fn unknown_outcomes_cannot_undo_or_precede() {
    // Once a read saw the append, a later read cannot miss it.
    let history = [
        put(0, "x", "a", 0, 10),
        gave_up(append(0, "x", "b", 20, 0)),
        get(1, "x", "ab", 30, 40),
        get(1, "x", "a", 50, 60),
    ];
    let explanation = illegal(&history);
    let failure = only(&explanation);
    assert_eq!(prefix_indices(failure), vec![0, 1, 2]);
    assert_eq!(failure.unplaceable.index, 3);

    // An operation cannot take effect before it was called.
    let history = [
        put(0, "x", "a", 0, 10),
        get(1, "x", "ab", 30, 40),
        gave_up(append(0, "x", "b", 41, 0)),
    ];
    let explanation = illegal(&history);
    let failure = only(&explanation);
    assert_eq!(failure.unplaceable.index, 1);
    assert_eq!(failure.unplaceable.return_, Some(40));

    // Nor twice.
    let history = [
        gave_up(append(0, "x", "b", 0, 0)),
        get(1, "x", "bb", 30, 40),
    ];
    assert_eq!(only(&illegal(&history)).unplaceable.index, 1);
}

#[test]
fn a_return_at_the_time_of_a_call_precedes_it() {
    // The put returned at 10 and the read was called at 10: the read must see the put.
    let history = [put(0, "x", "a", 0, 10), get(1, "x", "", 10, 20)];
    let failure = only(&illegal(&history)).clone();
    assert_eq!(prefix_indices(&failure), vec![0]);
    assert_eq!(failure.unplaceable.index, 1);
    assert_eq!(
        check(&[put(0, "x", "a", 0, 10), get(1, "x", "a", 10, 20)]),
        CheckResult::Ok
    );
    // One microsecond earlier, the two overlap and the read may come first.
    assert_eq!(
        check(&[put(0, "x", "a", 0, 10), get(1, "x", "", 9, 20)]),
        CheckResult::Ok
    );
}

#[test]
fn instantaneous_operations_follow_the_tie_rule() {
    // Call = return: after what returned at that time, before what is called at that time.
    let history = [
        put(0, "x", "a", 0, 10),
        append(1, "x", "b", 10, 10),
        get(2, "x", "ab", 10, 20),
    ];
    assert_eq!(check(&history), CheckResult::Ok);
    let history = [
        put(0, "x", "a", 0, 10),
        append(1, "x", "b", 10, 10),
        get(2, "x", "a", 10, 20),
    ];
    assert_eq!(only(&illegal(&history)).unplaceable.index, 2);
    // Two instantaneous operations at the same time: either order.
    for seen in ["bc", "cb"] {
        let history = [
            append(1, "x", "b", 10, 10),
            append(2, "x", "c", 10, 10),
            get(3, "x", seen, 11, 12),
        ];
        assert_eq!(check(&history), CheckResult::Ok, "{seen}");
    }
    // A return before its call is read as an instantaneous operation at the call.
    let history = [put(0, "x", "a", 10, 3), get(1, "x", "", 10, 20)];
    assert!(matches!(check(&history), CheckResult::Illegal(_)));
}

#[test]
fn keys_are_checked_separately_and_named() {
    let mut history = Vec::new();
    for (k, key) in ["a", "b", "c", "d"].into_iter().enumerate() {
        let t = 100 * k as u64;
        history.push(put(0, key, key, t, t + 10));
        history.push(append(1, key, "!", t + 5, t + 20));
        history.push(get(2, key, &format!("{key}!"), t + 30, t + 40));
    }
    assert_eq!(check(&history), CheckResult::Ok);
    // A stale read on "c" only.
    history.push(get(3, "c", "c", 1000, 1010));
    let explanation = illegal(&history);
    let failure = only(&explanation);
    assert_eq!(failure.partition, "key \"c\"");
    assert_eq!(failure.operations, 4);
    assert_eq!(failure.unplaceable.index, 12);
    assert_eq!(failure.unplaceable.client_id, 3);
    assert!(explanation.undecided.is_empty());
    // And one on "a": both are reported, smallest partition first.
    history.push(get(3, "a", "", 1000, 1010));
    history.push(get(3, "a", "", 1020, 1030));
    let explanation = illegal(&history);
    let names: Vec<&str> = explanation
        .partitions
        .iter()
        .map(|p| p.partition.as_str())
        .collect();
    assert_eq!(names, ["key \"c\"", "key \"a\""]);
}

#[test]
fn explanation_reads_well() {
    let history = [
        put(7, "x", "a", 0, 10),
        put(7, "x", "b", 20, 30),
        get(8, "x", "a", 40, 50),
        gave_up(get(9, "x", "b", 45, 0)),
        append(9, "x", "c", 45, 60),
    ];
    let text = illegal(&history).to_string();
    let expected = "\
not linearizable: 1 partition(s) have no legal order
key \"x\" (5 operations): the longest linearizable prefix has 3 operations
    1. #0 client 7 [0, 10] put(\"x\", \"a\")
    2. #1 client 7 [20, 30] put(\"x\", \"b\")
    3. #4 client 9 [45, 60] append(\"x\", \"c\")
  state after the prefix: \"bc\"
  cannot be placed next (it returned before any legal order reached it): #2 client 8 [40, 50] get(\"x\") -> \"a\"";
    assert_eq!(text, expected);
}

#[test]
fn explanation_lists_the_pending_operations_and_cuts_long_prefixes() {
    let mut history = Vec::new();
    for i in 0..30u64 {
        history.push(append(0, "x", "a", 10 * i, 10 * i + 5));
    }
    // Two reads in flight together, neither possible.
    history.push(get(1, "x", "nope", 1000, 1010));
    history.push(get(2, "x", "nor", 1001, 1011));
    let explanation = illegal(&history);
    let failure = only(&explanation);
    assert_eq!(failure.prefix.len(), 30);
    assert_eq!(failure.unplaceable.index, 30);
    let pending: Vec<usize> = failure.pending.iter().map(|op| op.index).collect();
    assert_eq!(pending, [31]);
    let text = explanation.to_string();
    assert!(
        text.contains("    ... 10 earlier operations\n    11. #10 client 0"),
        "{text}"
    );
    assert!(!text.contains("#9 client"), "{text}");
    assert!(
        text.ends_with("nor can the concurrent: #31 client 2 [1001, 1011] get(\"x\") -> \"nor\""),
        "{text}"
    );
}

/// A long legal history: more steps than a small budget allows.
fn long_history() -> Vec<KvOperation> {
    (0..1_000)
        .flat_map(|i| {
            let t = 100 * i;
            [
                append(0, "x", "a", t, t + 20),
                get(1, "x", &"a".repeat(i as usize + 1), t + 30, t + 40),
            ]
        })
        .collect()
}

#[test]
fn budget_exhaustion_yields_unknown() {
    let history = long_history();
    assert_eq!(
        check_kv(&history, Budget { max_steps: 1_000 }),
        CheckResult::Unknown
    );
    assert_eq!(check_kv(&history, Budget::DEFAULT), CheckResult::Ok);
}

#[test]
fn a_proven_violation_wins_over_an_exhausted_budget() {
    let mut history = long_history();
    history.push(put(0, "y", "a", 0, 10));
    history.push(get(0, "y", "b", 20, 30));
    let explanation = match check_kv(&history, Budget { max_steps: 1_000 }) {
        CheckResult::Illegal(explanation) => explanation,
        other => panic!("expected a violation, got {other:?}"),
    };
    assert_eq!(only(&explanation).partition, "key \"y\"");
    assert_eq!(explanation.undecided, ["key \"x\""]);
    assert!(
        explanation
            .to_string()
            .ends_with("(the step budget ran out before 1 other partition(s) were decided)")
    );
}

/// MIT's unreliable_one_key: five clients each append ten tags to one key, their appends
/// overlapping, then one read. Without the lookahead (the read constrains every state on the
/// way) the search tries the orders of the appends one by one.
#[test]
fn concurrent_appends_with_one_final_read_are_decided() {
    let mut history = Vec::new();
    // Linearized at call + 3 × (4 - client): later clients' appends take effect first.
    let mut effects = Vec::new();
    for client in 0..5u64 {
        for i in 0..10u64 {
            let call = 20 * i + client;
            let tag = format!("x {client} {i} y");
            history.push(append(client, "k", &tag, call, call + 15));
            effects.push((call + 3 * (4 - client), tag));
        }
    }
    effects.sort();
    let value: String = effects.iter().map(|(_, tag)| tag.as_str()).collect();
    let mut read = get(9, "k", &value, 1000, 1010);
    history.push(read.clone());
    assert_eq!(check_kv(&history, Budget::DEFAULT), CheckResult::Ok);

    // Two appends of one client swapped: impossible, since they did not overlap.
    let swapped = value
        .replacen("x 2 3 y", "@", 1)
        .replacen("x 2 4 y", "x 2 3 y", 1);
    read.output = Some(KvOutput {
        value: swapped.replacen('@', "x 2 4 y", 1),
    });
    *history.last_mut().expect("the read") = read;
    let explanation = illegal(&history);
    assert_eq!(only(&explanation).unplaceable.index, 50);
}

#[test]
fn a_read_that_returns_before_its_call_still_counts_as_seeing_an_unknown_write() {
    // The API does not forbid return < call; such a read counts as returning at its call, so
    // the unknown append called before it may be what it saw and must not be dropped.
    let unknown = KvOperation {
        client_id: 0,
        input: KvInput::Append {
            key: "k".into(),
            value: "b".into(),
        },
        output: None,
        call: 7,
        return_: None,
    };
    let read_backwards = get(1, "k", "b", 10, 5);
    assert_eq!(
        check_kv(&[unknown.clone(), read_backwards], Budget::DEFAULT),
        CheckResult::Ok
    );
    let read = get(1, "k", "b", 10, 10);
    assert_eq!(check_kv(&[unknown, read], Budget::DEFAULT), CheckResult::Ok);
}
