//! The JSON history format: round trips, checks, and every kind of error with its path.

use lincheck::history::{from_json, to_json};
use lincheck::{
    Budget, CheckResult, History, HistoryError, KvInput, KvOperation, KvOutput, check_json,
};

fn sample() -> Vec<KvOperation> {
    vec![
        KvOperation {
            client_id: 0,
            input: KvInput::Put {
                key: "k".into(),
                value: "v".into(),
            },
            output: None,
            call: 12,
            return_: Some(30),
        },
        KvOperation {
            client_id: 1,
            input: KvInput::Append {
                key: "tricky \"key\"\n\t\u{e9}".into(),
                value: "".into(),
            },
            output: Some(KvOutput {
                value: "ignored".into(),
            }),
            call: 13,
            return_: None,
        },
        KvOperation {
            client_id: u64::MAX,
            input: KvInput::Get { key: "k".into() },
            output: Some(KvOutput { value: "v".into() }),
            call: 31,
            return_: Some(u64::MAX),
        },
        KvOperation {
            client_id: 2,
            input: KvInput::Get { key: "k".into() },
            output: None,
            call: 40,
            return_: None,
        },
    ]
}

#[test]
fn round_trip() {
    let history = History::Kv(sample());
    let text = to_json(&history);
    assert_eq!(from_json(&text), Ok(history));
    assert_eq!(
        from_json(&to_json(&History::Kv(Vec::new()))),
        Ok(History::Kv(Vec::new()))
    );
}

#[test]
fn written_in_the_documented_format() {
    let text = to_json(&History::Kv(sample()[..1].to_vec()));
    assert_eq!(
        text,
        "{\"model\": \"kv\", \"operations\": [\n  \
         {\"client_id\":0,\"input\":{\"op\":\"put\",\"key\":\"k\",\"value\":\"v\"},\"output\":null,\"call\":12,\"return\":30}\n\
         ]}\n"
    );
    let get = to_json(&History::Kv(sample()[2..3].to_vec()));
    assert!(get.contains("{\"op\":\"get\",\"key\":\"k\"}"), "{get}");
}

#[test]
fn reads_the_brief_example_and_optional_fields() {
    let text = r#"{"model": "kv", "operations": [
        {"client_id": 0, "input": {"op": "put", "key": "k", "value": "v"}, "output": null, "call": 12, "return": 30},
        {"client_id": 1, "input": {"op": "get", "key": "k", "value": "ignored"}, "output": {"value": "v"}, "call": 31, "return": 40},
        {"client_id": 1, "input": {"op": "get", "key": "k", "value": null}, "call": 41}
    ]}"#;
    let History::Kv(ops) = from_json(text).expect("valid history");
    assert_eq!(ops.len(), 3);
    assert_eq!(ops[1].input, KvInput::Get { key: "k".into() });
    assert_eq!(ops[2].output, None);
    assert_eq!(ops[2].return_, None);
    assert_eq!(check_json(text, Budget::DEFAULT), Ok(CheckResult::Ok));
}

#[test]
fn check_json_finds_violations() {
    let text = r#"{"model": "kv", "operations": [
        {"client_id": 0, "input": {"op": "put", "key": "k", "value": "a"}, "output": null, "call": 0, "return": 10},
        {"client_id": 1, "input": {"op": "get", "key": "k"}, "output": {"value": "b"}, "call": 20, "return": 30}
    ]}"#;
    match check_json(text, Budget::DEFAULT) {
        Ok(CheckResult::Illegal(explanation)) => {
            assert_eq!(explanation.partitions[0].unplaceable.index, 1);
        }
        other => panic!("expected a violation, got {other:?}"),
    }
}

/// The `Invalid` error of `text`, as `path: message`.
fn invalid(text: &str) -> (String, String) {
    match from_json(text) {
        Err(HistoryError::Invalid { path, message }) => (path, message),
        other => panic!("expected an invalid history, got {other:?}"),
    }
}

/// A history with one operation whose JSON is `op`.
fn with_op(op: &str) -> String {
    format!(
        r#"{{"model": "kv", "operations": [
            {{"client_id": 0, "input": {{"op": "get", "key": "k"}}, "output": null, "call": 1, "return": 2}},
            {op}
        ]}}"#
    )
}

#[test]
fn every_error_names_its_path() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"client_id": 0, "input": {"op": "del", "key": "k"}, "call": 1, "return": 2}"#,
            "operations[1].input.op",
            "unknown op \"del\" (expected \"get\", \"put\" or \"append\")",
        ),
        (
            r#"{"client_id": 0, "input": {"op": "get", "key": "k"}, "call": 12, "return": 10}"#,
            "operations[1]",
            "return 10 before call 12",
        ),
        (
            r#"{"client_id": 0, "input": {"op": "put", "key": "k"}, "call": 1, "return": 2}"#,
            "operations[1].input.value",
            "missing",
        ),
        (
            r#"{"client_id": 0, "input": {"op": "put", "key": 7, "value": "v"}, "call": 1}"#,
            "operations[1].input.key",
            "expected a string, found 7",
        ),
        (
            r#"{"client_id": 0, "input": {"op": "get", "key": "k", "value": 3}, "call": 1}"#,
            "operations[1].input.value",
            "expected a string, found 3",
        ),
        (
            r#"{"client_id": -1, "input": {"op": "get", "key": "k"}, "call": 1}"#,
            "operations[1].client_id",
            "expected a non-negative integer, found -1",
        ),
        (
            r#"{"client_id": 0, "input": {"op": "get", "key": "k"}, "call": 1.5}"#,
            "operations[1].call",
            "expected a non-negative integer, found 1.5",
        ),
        (
            r#"{"client_id": 0, "input": {"op": "get", "key": "k"}, "call": 1, "return": "2"}"#,
            "operations[1].return",
            "expected a non-negative integer, found the string \"2\"",
        ),
        (
            r#"{"client_id": 0, "input": {"op": "get", "key": "k"}}"#,
            "operations[1].call",
            "missing",
        ),
        (
            r#"{"input": {"op": "get", "key": "k"}, "call": 1}"#,
            "operations[1].client_id",
            "missing",
        ),
        (
            r#"{"client_id": 0, "call": 1}"#,
            "operations[1].input",
            "missing",
        ),
        (
            r#"{"client_id": 0, "input": ["get"], "call": 1}"#,
            "operations[1].input",
            "expected an object, found an array",
        ),
        (
            r#"{"client_id": 0, "input": {"key": "k"}, "call": 1}"#,
            "operations[1].input.op",
            "missing",
        ),
        (
            r#"{"client_id": 0, "input": {"op": "get", "key": "k"}, "output": "v", "call": 1}"#,
            "operations[1].output",
            "expected an object, found the string \"v\"",
        ),
        (
            r#"{"client_id": 0, "input": {"op": "get", "key": "k"}, "output": {}, "call": 1}"#,
            "operations[1].output.value",
            "missing",
        ),
        (
            r#"{"client_id": 0, "input": {"op": "get", "key": "k"}, "output": {"value": "v", "ok": true}, "call": 1}"#,
            "operations[1].output.ok",
            "unknown field (expected one of: value)",
        ),
        (
            r#"{"client_id": 0, "input": {"op": "get", "key": "k"}, "call": 1, "retrun": 2}"#,
            "operations[1].retrun",
            "unknown field (expected one of: client_id, input, output, call, return)",
        ),
        (r#"null"#, "operations[1]", "expected an object, found null"),
    ];
    for &(op, path, message) in cases {
        let got = invalid(&with_op(op));
        assert_eq!(got, (path.to_owned(), message.to_owned()), "for {op}");
    }
}

#[test]
fn document_level_errors() {
    assert_eq!(
        invalid(r#"{"model": "etcd", "operations": []}"#),
        (
            "model".to_owned(),
            "unknown model \"etcd\" (known: \"kv\")".to_owned()
        )
    );
    assert_eq!(
        invalid(r#"{"operations": []}"#),
        ("model".to_owned(), "missing".to_owned())
    );
    assert_eq!(
        invalid(r#"{"model": "kv"}"#),
        ("operations".to_owned(), "missing".to_owned())
    );
    assert_eq!(
        invalid(r#"{"model": "kv", "operations": {}}"#),
        (
            "operations".to_owned(),
            "expected an array, found an object".to_owned()
        )
    );
    assert_eq!(
        invalid(r#"{"model": "kv", "operations": [], "seed": 4}"#),
        (
            "seed".to_owned(),
            "unknown field (expected one of: model, operations)".to_owned()
        )
    );
    assert_eq!(
        invalid("[]"),
        (
            "$".to_owned(),
            "expected an object, found an array".to_owned()
        )
    );
    let error = from_json(r#"{"model": 1, "operations": []}"#).expect_err("model is a number");
    assert_eq!(error.to_string(), "model: expected a string, found 1");
}

#[test]
fn syntax_errors_give_line_and_column() {
    let text = "{\"model\": \"kv\",\n  \"operations\": [\n    {\"client_id\": 0,,}\n]}";
    match from_json(text) {
        Err(HistoryError::Syntax {
            line,
            column,
            message,
        }) => {
            // The second comma, 1-based.
            assert_eq!((line, column), (3, 21));
            assert!(!message.contains("line"), "{message}");
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    let error = from_json("").expect_err("empty");
    assert!(
        error.to_string().starts_with("line 1, column 0: EOF"),
        "{error}"
    );
    assert!(matches!(
        check_json("{} trailing", Budget::DEFAULT),
        Err(HistoryError::Syntax { line: 1, .. })
    ));
}
